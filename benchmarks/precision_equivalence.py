"""Does ``precision: auto`` (bf16 autocast) learn what fp32 learns? (issue 13; docs/benchmarks.md)

At equal seeds and step counts, trains the stage-1 tokenizer of each method in fp32 and under ``auto``
and prints the reconstruction error and the KNN/SVM probe accuracies side by side, then trains the FCN
evaluator both ways and prints its test accuracy. Targets (issue 13): probes within 0.02, reconstruction
within 5% relative, evaluator accuracy within 0.01.

Usage::

    python benchmarks/precision_equivalence.py --out runs/equiv --dataset gen-twopatterns --steps 300
    python benchmarks/precision_equivalence.py --out runs/equiv --dataset ECG5000 --methods baseline vibcreg
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from ncvqvae.config import resolve_config
from ncvqvae.data.prepare import load_prepared
from ncvqvae.evaluation.evaluator import get_evaluator
from ncvqvae.rundir import RunDir
from ncvqvae.stage1 import train_stage1

AUGMENTATION = {"baseline": "warp", "barlowtwins": "gauss", "vibcreg": "warp"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dataset", default="gen-twopatterns")
    parser.add_argument("--methods", nargs="+", default=["baseline", "barlowtwins", "vibcreg"])
    parser.add_argument("--steps", type=int, default=300, help="stage-1 optimiser steps")
    parser.add_argument("--evaluator-steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{args.dataset}, {args.steps} stage-1 steps (quick preset otherwise), seed 0")
    print(f"{'method':24s} {'precision':9s} {'recon':>7s} {'KNN':>6s} {'SVM':>6s} {'seconds':>8s}")
    for method in args.methods:
        for precision in ("fp32", "auto"):
            cfg = resolve_config(preset="quick", overrides=[
                f"data.dataset={args.dataset}", f"stage1.method={method}",
                f"stage1.augmentation.names=[{AUGMENTATION[method]}]", f"stage1.steps={args.steps}",
                f"precision={precision}", "progress=false", *args.set,
            ])
            run_dir = args.out / f"{method}-{precision}"
            start = time.perf_counter()
            train_stage1(cfg, run_dir)
            seconds = time.perf_counter() - start
            stage1 = json.loads(RunDir(run_dir).results_path.read_text())["stage1"]
            recon, probes = stage1["reconstruction"]["recon"], stage1["probes"]
            print(f"{method:24s} {precision:9s} {recon:7.4f} {probes['knn_accuracy']:6.3f} "
                  f"{probes['svm_accuracy']:6.3f} {seconds:8.1f}", flush=True)
    cfg = resolve_config(preset="quick", overrides=[
        f"data.dataset={args.dataset}", f"evaluation.evaluator_steps={args.evaluator_steps}", *args.set,
    ])
    data = load_prepared(cfg.data, seed=0)
    for precision in ("fp32", "auto"):
        start = time.perf_counter()
        _, info = get_evaluator(data, cfg.evaluation, device="cpu", seed=0, precision=precision)
        print(f"evaluator ({args.evaluator_steps} steps) {precision:5s}: test accuracy "
              f"{info['test_accuracy']:.4f} ({time.perf_counter() - start:.1f} s)", flush=True)


if __name__ == "__main__":
    main()
