"""``ncvqvae evaluate stage1 --run DIR``: reconstruction, probes and codebook numbers of a run's tokenizer.

The numbers are merged into ``DIR/results.json`` under ``"stage1"`` (other keys are left alone) and
printed.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "stage1",
        help="evaluate a run's stage-1 tokenizer: reconstruction, KNN/SVM probes, codebook usage",
        description="Evaluate the stage-1 tokenizer of a run (final.pt, else last.pt) on its test split.",
    )
    parser.add_argument("--run", required=True, metavar="DIR", help="the run directory")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, ...")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ncvqvae.cli.train_stage1 import print_summary
    from ncvqvae.evaluation.stage1 import evaluate_stage1_run

    evaluate_stage1_run(args.run, device=args.device)
    print_summary(args.run)
    return 0
