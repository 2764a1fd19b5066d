"""``ncvqvae presets``: list the shipped presets."""

from __future__ import annotations

import argparse

from ncvqvae.config import list_presets, presets_dir


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("presets", help="list the shipped presets (named config files)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for name, description in list_presets().items():
        print(f"{name:10s} {description}")
    print(f"\n(files in {presets_dir()})")
    return 0
