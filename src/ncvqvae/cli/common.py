"""Options shared by several command groups (config files, overrides, data location)."""

from __future__ import annotations

import argparse

from ncvqvae.config import RunConfig, resolve_config


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--preset``, ``--config FILE`` (repeatable) and ``--set key=value`` (repeatable)."""
    parser.add_argument("--preset", help="a shipped preset (see `ncvqvae presets`)")
    parser.add_argument("--config", action="append", default=[], metavar="FILE", help="YAML config file")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
        help="override one config field, e.g. --set stage1.lr=3e-4",
    )


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        help="an existing UCR archive root (<root>/<Name>/<Name>_TRAIN.tsv); also NCVQVAE_DATA_DIR",
    )


def config_from_args(args: argparse.Namespace, *, base: dict | None = None, **fields: object) -> RunConfig:
    """Resolve the RunConfig from ``--preset``/``--config``/``--set`` plus explicit CLI flags.

    Explicit flags (``fields``, dotted names, ``None`` = not given) win over files but lose to ``--set``;
    ``base`` (nested dicts, e.g. an existing run's config) sits below everything else.
    """
    # The flags' values are used as typed (argparse already made ints of --seed); only --set is YAML.
    return resolve_config(
        base=base,
        preset=getattr(args, "preset", None),
        files=getattr(args, "config", []) or [],
        fields=fields,
        overrides=getattr(args, "overrides", []) or [],
    )
