"""``ncvqvae train stage1``: train (or resume) the stage-1 tokenizer of one run.

Example::

    ncvqvae train stage1 --dataset ECG5000 --method vibcreg --aug warp --seed 1 --epochs 1000 \\
        --out runs/ECG5000-vibcreg-warp-s1 --set stage1.checkpoint_every=1000

Running the same command again resumes an interrupted run from its last checkpoint and does nothing
for a finished one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ncvqvae.cli.common import add_config_options, add_data_dir_option, config_from_args
from ncvqvae.errors import CheckpointError
from ncvqvae.experiments.variants import Variant
from ncvqvae.rundir import default_run_dir
from ncvqvae.training import RunDir

# The numbers printed after training (and by `ncvqvae evaluate stage1`), in this order.
SUMMARY_KEYS = (
    "recon", "recon_time", "recon_freq", "knn_accuracy", "svm_accuracy", "perplexity", "used_codes",
)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "stage1",
        help="train the stage-1 tokenizer (VQ-VAE, optionally with Barlow Twins / VIbCReg)",
        description="Train stage 1 of a run; resumes automatically when the run directory has a checkpoint.",
    )
    parser.add_argument(
        "--dataset", help="UCR/UEA name, built-in generator (gen-twopatterns, ...) or file path"
    )
    parser.add_argument("--method", help="baseline, barlowtwins or vibcreg")
    parser.add_argument("--aug", help="augmentations of the second view, comma-separated: warp, slice, gauss")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-steps", type=int, help="stop after N steps (schedule unchanged)")
    parser.add_argument(
        "--out", help="run directory (default: runs/<dataset>-<variant>-<preset>-s<seed>, as ncvqvae run)"
    )
    parser.add_argument("--device", help="auto (cuda if present), cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--resume", action=argparse.BooleanOptionalAction, default=None,
        help="continue from the run's last checkpoint (default: when one exists); --no-resume starts over",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_data_dir_option(parser)
    add_config_options(parser)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ncvqvae.stage1 import train_stage1

    aug = [a.strip() for a in args.aug.split(",") if a.strip()] if args.aug is not None else None
    cfg = config_from_args(
        args,
        **{
            "data.dataset": args.dataset,
            "data.data_dir": args.data_dir,
            "stage1.method": args.method,
            "stage1.augmentation.names": aug,
            "seed": args.seed,
            "stage1.epochs": args.epochs,
            "stage1.max_steps": args.max_steps,
            "device": args.device,
            "progress": False if args.no_progress else None,
        },
    )
    variant = Variant.from_config(cfg).name
    run_dir = Path(args.out) if args.out else default_run_dir(cfg, variant, legacy_stage1=True)
    run = RunDir(run_dir)
    if args.resume and not (run.is_finished("stage1") or run.checkpoint_path("stage1", "last").is_file()):
        raise CheckpointError(f"{run_dir}: --resume given, but there is no stage-1 checkpoint to resume")
    print(f"stage 1 run: {run_dir}")
    final = train_stage1(cfg, run_dir, resume=args.resume is not False)
    print(f"final checkpoint: {final}")
    print_summary(run_dir)
    return 0


def print_summary(run_dir: str | Path) -> None:
    """Print the run's stage-1 results (from results.json), computing them if they are missing."""
    from ncvqvae.evaluation.stage1 import headline, stage1_results

    stage1 = stage1_results(run_dir)
    numbers = headline(stage1)
    split = stage1.get("reconstruction", {}).get("split", "test")
    print(f"stage-1 results ({split} split, step {stage1.get('step')}, {Path(run_dir) / 'results.json'}):")
    for key in SUMMARY_KEYS:
        if key in numbers:
            value = numbers[key]
            print(f"  {key:<14} {value:.6g}" if isinstance(value, float) else f"  {key:<14} {value}")
    if "note" in stage1.get("probes", {}):
        print(f"  {stage1['probes']['note']}")



