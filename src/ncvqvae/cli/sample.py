"""``ncvqvae sample``: not built yet."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("sample", help="(not built yet)")
