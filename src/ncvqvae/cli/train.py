"""``ncvqvae train stage1|stage2``: train one stage of a run."""

from __future__ import annotations

import argparse

from ncvqvae.cli import train_stage1, train_stage2


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("train", help="train stage 1 (tokenizer) or stage 2 (prior)")
    stages = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    train_stage1.register(stages)
    train_stage2.register(stages)
