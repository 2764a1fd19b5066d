"""``ncvqvae train stage2``: not built yet."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("stage2", help="(not built yet)")
