"""``ncvqvae train stage2``: train (or resume) the MaskGIT prior over a run's frozen stage-1 tokenizer.

Example::

    ncvqvae train stage2 --stage1 runs/ECG5000-vibcreg-warp-s1 --epochs 1000
    ncvqvae train stage2 --stage1 runs/ECG5000-vibcreg-warp-s1 --out runs/ECG5000-prior-codebook \\
        --set stage2.variant=codebook

The config starts from the stage-1 run's ``config.yaml`` (same data, seed and tokenizer settings), then
``--preset``/``--config``/flags/``--set`` apply on top. By default stage 2 lives in the stage-1 run
directory; ``--out`` puts it in another one (which records where its stage 1 is). Running the same
command again resumes an interrupted stage 2 and does nothing for a finished one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ncvqvae.cli.common import add_config_options


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "stage2",
        help="train the stage-2 MaskGIT prior over a trained stage-1 tokenizer",
        description="Train stage 2 of a run; resumes automatically when it has a stage-2 checkpoint.",
    )
    parser.add_argument("--stage1", required=True, metavar="DIR", help="the stage-1 run directory")
    parser.add_argument("--out", metavar="DIR", help="stage-2 run directory (default: --stage1)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-steps", type=int, help="stop after N steps (schedule unchanged)")
    parser.add_argument("--device", help="auto (cuda if present), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--resume", action=argparse.BooleanOptionalAction, default=True,
        help="continue from the last stage-2 checkpoint when one exists (default); --no-resume starts over",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_options(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ncvqvae.stage2 import stage2_config, train_stage2

    cfg = stage2_config(
        args.stage1,
        preset=args.preset,
        files=args.config or [],
        overrides=args.overrides or [],
        fields={
            "seed": args.seed,
            "stage2.epochs": args.epochs,
            "stage2.max_steps": args.max_steps,
            "device": args.device,
            "progress": False if args.no_progress else None,
        },
    )
    run_dir = Path(args.out) if args.out else Path(args.stage1)
    print(f"stage 2 run: {run_dir} (stage 1: {args.stage1})")
    final = train_stage2(cfg, run_dir, stage1_dir=args.stage1, resume=args.resume)
    print(f"final checkpoint: {final}")
    return 0
