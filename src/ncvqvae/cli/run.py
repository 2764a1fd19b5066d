"""``ncvqvae run``: one experiment cell end to end — stage 1, stage 2, sampling, evaluation, report.

Examples::

    ncvqvae run                       # offline, CPU, minutes: gen-twopatterns, VIbCReg + Warp, quick preset
    ncvqvae run --dataset ECG5000 --method barlowtwins --aug slice --preset thesis --seed 3

Interrupt it anywhere (Ctrl-C, kill -9) and run the same command again: it continues from the last
checkpoint of the step it was in. A finished run prints its summary again without redoing anything.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from ncvqvae.cli.common import add_config_options, add_data_dir_option, config_from_args
from ncvqvae.config import RunConfig
from ncvqvae.experiments.variants import Variant
from ncvqvae.rundir import default_run_dir

DEFAULT_PRESET = "quick"


def register(sub: argparse._SubParsersAction) -> None:
    from ncvqvae.experiments.sweep import METHODS
    from ncvqvae.experiments.trackers import TRACKERS

    parser = sub.add_parser(
        "run",
        help="the full pipeline for one run: stage 1, stage 2, evaluation, report.md",
        description=(
            "Train the tokenizer (stage 1) and the prior (stage 2), sample, evaluate (reconstruction, "
            "probes, FID, IS, CAS) and write report.md with figures into the run directory. Resumes an "
            "interrupted run; a finished run is not redone."
        ),
    )
    parser.add_argument(
        "--dataset", help="UCR/UEA name, built-in generator (gen-...) or file path (default: gen-twopatterns)"
    )
    parser.add_argument("--method", choices=METHODS, help="stage-1 method (default: vibcreg)")
    parser.add_argument("--aug", help="augmentations of the second view, comma-separated: warp, slice, gauss")
    parser.add_argument("--seed", type=int, help="the seed every random draw derives from (default: 0)")
    parser.add_argument("--out", help="run directory (default: runs/<dataset>-<variant>-<preset>-s<seed>)")
    parser.add_argument("--device", help="auto (cuda if present), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--tracker", choices=TRACKERS, help="also log metrics to this tracker (off by default)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_data_dir_option(parser)
    add_config_options(parser)
    parser.set_defaults(func=main, preset=DEFAULT_PRESET)


def run_config(args: argparse.Namespace) -> RunConfig:
    """The run's config: preset (default quick) ← --config files ← the flags ← --set."""
    aug = [a.strip() for a in args.aug.split(",") if a.strip()] if args.aug is not None else None
    return config_from_args(
        args,
        **{
            "data.dataset": args.dataset,
            "data.data_dir": args.data_dir,
            "stage1.method": args.method,
            "stage1.augmentation.names": aug,
            "seed": args.seed,
            "device": args.device,
            "tracker": args.tracker,
            "progress": False if args.no_progress else None,
        },
    )


def main(args: argparse.Namespace) -> int:
    from ncvqvae.experiments.pipeline import run_pipeline

    cfg = run_config(args)
    run_dir = Path(args.out) if args.out else default_run_dir(cfg, Variant.from_config(cfg).name)
    print(f"run directory: {run_dir}")
    summary = run_pipeline(cfg, run_dir, progress=cfg.progress)
    print()
    print(format_summary(summary))
    print(f"\nreport: {summary.get('report', run_dir / 'report.md')}")
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    """The short table printed at the end of a run: identity, headline metrics, timings."""
    from ncvqvae.experiments.report import EXTRA, HEADLINE

    lines = [
        f"{summary.get('dataset')} · {summary.get('variant')} · seed {summary.get('seed')} "
        f"· preset {summary.get('preset') or '-'}"
    ]
    shown = {}  # the headline metrics with KID after FID (issue 17); the report has the rest
    for column, spec in HEADLINE.items():
        shown[column] = spec
        if column == "fid":
            shown["kid"] = EXTRA["kid"]
    width = max(len(label) for _, label, _ in shown.values())
    for column, (_key, label, better) in shown.items():
        value = summary.get(column)
        text = "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"
        lines.append(f"  {label:<{width}}  {text:>9}  ({better} is better)")
    seconds = [(k, summary.get(f"{k}_s")) for k in ("stage1", "stage2", "evaluation")]
    timing = ", ".join(f"{k} {v:.0f} s" for k, v in seconds if isinstance(v, int | float))
    if timing:
        lines.append(f"  time: {timing}")
    return "\n".join(lines)
