"""``ncvqvae evaluate``: not built yet (``evaluate stage1`` lives in evaluate_stage1.py)."""

from __future__ import annotations

import argparse

from ncvqvae.cli import evaluate_stage1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="evaluate a run")
    what = parser.add_subparsers(dest="what", metavar="WHAT")
    evaluate_stage1.register(what)
