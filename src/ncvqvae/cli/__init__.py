"""The ``ncvqvae`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function, so the groups
stay independent: ``data``, ``train``, ``sample``, ``evaluate``, ``evaluator``, ``run``, ``sweep``,
``report`` and ``presets``. Errors a user can fix (:class:`ncvqvae.errors.NcvqvaeError`) are printed
on one line with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ncvqvae.allocator import reuse_freed_memory
from ncvqvae.errors import NcvqvaeError

GROUPS = ("data", "train", "sample", "evaluate", "evaluator", "run", "sweep", "report", "presets")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncvqvae",
        description=(
            "NC-VQVAE: class-conditional time-series generation with self-supervised VQ-VAE tokenizers."
        ),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--threads", type=int, default=_env_threads(),
        help="CPU threads of this process (default: NCVQVAE_THREADS, else every core); give each of "
        "several runs on one machine its share",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in GROUPS:
        importlib.import_module(f"ncvqvae.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 0
    if args.threads is not None:
        set_threads(args.threads)
    reuse_freed_memory()  # glibc keeps freed tensors' memory: no page faults on every step's tensors
    try:
        return int(args.func(args) or 0)
    except NcvqvaeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


def _env_threads() -> int | None:
    value = os.environ.get("NCVQVAE_THREADS")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise SystemExit(f"error: NCVQVAE_THREADS must be a positive integer, got {value!r}")
    return int(value)


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch's operators (and the BLAS libraries numpy and scipy use)."""
    if threads < 1:
        raise SystemExit(f"error: --threads must be at least 1, got {threads}")
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)  # OpenBLAS/MKL of numpy, scipy and scikit-learn (probes, FID)


if __name__ == "__main__":
    raise SystemExit(main())
