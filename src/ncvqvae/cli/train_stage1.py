"""``ncvqvae train stage1``: not built yet."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("stage1", help="(not built yet)")
