"""Does ``precision: auto`` (bf16 autocast) learn what fp32 learns? (issue 13; docs/benchmarks.md)

At equal seeds and step counts, trains the stage-1 tokenizer of each method in fp32 and under ``auto``
and prints the reconstruction error and the KNN/SVM probe accuracies side by side, for every seed in
``--seeds``, then the mean over seeds of each setting and of the difference. Then it trains the FCN
evaluator both ways (per seed in ``--evaluator-seeds``) and prints its test accuracy. Targets (issue
13): probes within 0.02, reconstruction within 5% relative, evaluator accuracy within 0.01; over several
seeds the mean difference is the figure held to the target, beside the seed-to-seed spread of fp32.

``--control`` (with ``--threads`` 2 or more) adds an fp32 run at one thread per seed: the same arithmetic
summed in another order, so its difference from fp32 is the scatter that any perturbation of the
trajectory gives, the floor a bf16 difference of one seed is read against. ``--fp32-part encoder
decoder`` adds, per part, a run under ``auto`` with that part held in fp32 (to find where a drift
comes from).

``--generator RUN_DIR`` adds the last check: one fixed, trained generator (the run's stage 1 and prior)
and one fixed evaluator (the one the run was scored with) score FID and IS with the sampling and the
evaluator's feature pass in fp32 and under ``auto`` (same sampling seed); the ``auto`` FID should lie
inside the fp32 FID's bootstrap interval.

Usage::

    python benchmarks/precision_equivalence.py --out runs/equiv --dataset gen-twopatterns --steps 300
    python benchmarks/precision_equivalence.py --out runs/equiv-ecg --dataset ECG5000 --seeds 0 1 2
    python benchmarks/precision_equivalence.py --out runs/equiv-drift --methods baseline --threads 2 \\
        --seeds 0 1 2 3 4 5 6 7 --control --fp32-part encoder decoder --evaluator-seeds
    python benchmarks/precision_equivalence.py --out runs/equiv-gen --methods --evaluator-seeds \\
        --generator runs/thesis-budget/token/ECG5000/baseline/seed0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import torch

from ncvqvae.config import RunConfig, resolve_config
from ncvqvae.data.prepare import load_prepared
from ncvqvae.evaluation.evaluator import get_evaluator
from ncvqvae.evaluation.fcn import fcn_outputs
from ncvqvae.evaluation.pipeline import EVALUATOR_SEED, _fid_is, real_reference_set
from ncvqvae.models.encoder import Decoder, Encoder
from ncvqvae.precision import full_precision, resolved
from ncvqvae.rundir import RunDir
from ncvqvae.sampling import sample
from ncvqvae.stage1 import train_stage1
from ncvqvae.stage2 import load_generator
from ncvqvae.training import derive_seed, make_generator

AUGMENTATION = {"baseline": "warp", "barlowtwins": "gauss", "vibcreg": "warp"}
PRECISIONS = ("fp32", "auto")
PARTS = {"encoder": Encoder, "decoder": Decoder}


class Setting(NamedTuple):
    """One way of training stage 1: its row label, precision, and what it changes beside the precision."""

    name: str
    precision: str
    one_thread: bool = False  # the control: fp32 at one thread
    part: str | None = None  # held in fp32 under autocast


@contextlib.contextmanager
def held_in_fp32(part: str | None):
    """Run one stage-1 part in fp32 under autocast, for one training (an experiment: the tokenizer has no
    switch for it, so the part's class ``forward`` is wrapped while the block runs)."""
    if part is None:
        yield
        return
    cls = PARTS[part]
    original = cls.forward

    def forward(self, x):
        with full_precision(x.device.type):
            return original(self, x.float())

    cls.forward = forward
    try:
        yield
    finally:
        cls.forward = original


def train_one(cfg: RunConfig, run_dir: Path, setting: Setting, n_threads: int) -> float:
    """Train one setting's stage 1 in a fresh spawned process at its thread count; its seconds.

    A fresh process per training, because switching torch's threads back up (the control's 1 to 2) inside
    one process hung at full CPU after a one-thread training (2026-12-04); a new process also starts every
    setting from the same state (allocator, kernel caches)."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(train_here, cfg, run_dir, setting, 1 if setting.one_thread else n_threads).result()


def train_here(cfg: RunConfig, run_dir: Path, setting: Setting, n_threads: int) -> float:
    """The child's side of :func:`train_one`: threads first, then the training; its seconds."""
    torch.set_num_threads(n_threads)
    start = time.perf_counter()
    with held_in_fp32(setting.part):
        train_stage1(cfg, run_dir)
    return time.perf_counter() - start


def settings(args: argparse.Namespace) -> list[Setting]:
    """fp32, auto, the fp32 control at one thread (``--control``), auto with each ``--fp32-part``."""
    return [
        *(Setting(p, p) for p in PRECISIONS),
        *([Setting("fp32-1thread", "fp32", one_thread=True)] if args.control else []),
        *(Setting(f"auto+{part}-fp32", "auto", part=part) for part in args.fp32_part),
    ]


def stage1_rows(args: argparse.Namespace) -> None:
    print(f"{args.dataset}, {args.steps} stage-1 steps (quick preset otherwise), seeds {args.seeds}")
    print(
        f"{'method':14s} {'seed':>4s} {'setting':18s} {'recon':>7s} {'KNN':>6s} {'SVM':>6s} {'seconds':>8s}"
    )
    for method in args.methods:
        runs = settings(args)
        found: dict[str, list[tuple[float, float, float]]] = {setting.name: [] for setting in runs}
        for seed in args.seeds:
            for setting in runs:
                cfg = resolve_config(
                    preset="quick",
                    overrides=[
                        f"data.dataset={args.dataset}",
                        f"stage1.method={method}",
                        f"stage1.augmentation.names=[{AUGMENTATION[method]}]",
                        f"stage1.steps={args.steps}",
                        f"precision={setting.precision}",
                        f"seed={seed}",
                        "progress=false",
                        *args.set,
                    ],
                )
                run_dir = args.out / f"{method}-s{seed}-{setting.name}"
                seconds = train_one(cfg, run_dir, setting, args.threads or torch.get_num_threads())
                stage1 = json.loads(RunDir(run_dir).results_path.read_text())["stage1"]
                recon, probes = stage1["reconstruction"]["recon"], stage1["probes"]
                found[setting.name].append((recon, probes["knn_accuracy"], probes["svm_accuracy"]))
                print(
                    f"{method:14s} {seed:4d} {setting.name:18s} {recon:7.4f} {probes['knn_accuracy']:6.3f} "
                    f"{probes['svm_accuracy']:6.3f} {seconds:8.1f}",
                    flush=True,
                )
        if len(args.seeds) > 1:
            for other in list(found)[1:]:
                summarise(method, found, other)


def summarise(method: str, found: dict[str, list[tuple[float, float, float]]], other: str = "auto") -> None:
    """Mean over seeds of fp32 and ``other``, the mean difference, and fp32's seed-to-seed standard
    deviation; then the standard deviation of the per-seed differences (how far one seed scatters)."""
    parts, scatter = [], []
    for i, name in enumerate(("recon", "KNN", "SVM")):
        a = [row[i] for row in found["fp32"]]
        b = [row[i] for row in found[other]]
        diffs = [y - x for x, y in zip(a, b, strict=True)]
        diff = statistics.mean(diffs)
        scatter.append(f"{name} {statistics.stdev(diffs):.3f}")
        if name == "recon":
            rel = diff / statistics.mean(a)
            parts.append(
                f"recon {statistics.mean(a):.4f} / {statistics.mean(b):.4f} ({rel:+.1%}"
                f" {'ok' if abs(rel) <= 0.05 else 'MISS'})"
            )
        else:
            parts.append(
                f"{name} {statistics.mean(a):.3f} / {statistics.mean(b):.3f} ({diff:+.3f} "
                f"{'ok' if abs(diff) <= 0.02 else 'MISS'}; fp32 sd {statistics.stdev(a):.3f})"
            )
    print(f"{method:14s} mean fp32 / {other}: " + "; ".join(parts), flush=True)
    print(f"{method:14s} sd of the per-seed differences, {other} − fp32: " + ", ".join(scatter), flush=True)


def evaluator_rows(args: argparse.Namespace) -> None:
    cfg = resolve_config(
        preset="quick",
        overrides=[
            f"data.dataset={args.dataset}",
            f"evaluation.evaluator_steps={args.evaluator_steps}",
            *args.set,
        ],
    )
    data = load_prepared(cfg.data, seed=0)
    for seed in args.evaluator_seeds:
        for precision in PRECISIONS:
            start = time.perf_counter()
            _, info = get_evaluator(data, cfg.evaluation, device="cpu", seed=seed, precision=precision)
            print(
                f"evaluator ({args.evaluator_steps} steps, seed {seed}) {precision:5s}: test accuracy "
                f"{info['test_accuracy']:.4f} ({time.perf_counter() - start:.1f} s)",
                flush=True,
            )


def generator_rows(run_dir: Path, n_samples: int | None) -> None:
    """FID / IS of one fixed generator and evaluator, sampling and features in fp32 and under auto."""
    cfg = RunDir(run_dir).read_config()
    data = load_prepared(cfg.data, seed=cfg.seed)
    ecfg = cfg.evaluation
    evaluator, info = get_evaluator(data, ecfg, device="cpu", seed=EVALUATOR_SEED, precision=cfg.precision)
    model = load_generator(run_dir)
    real = real_reference_set(data.X_test, n_fft=cfg.stage1.n_fft)
    n = n_samples or len(real)
    print(
        f"\n{run_dir}: {n} unconditional samples, evaluator {info['key'][:8]} "
        f"(test accuracy {info['test_accuracy']:.3f}, trained in {info.get('precision')})"
    )
    scores = {}
    for precision in PRECISIONS:
        start = time.perf_counter()
        gen = make_generator(derive_seed(cfg.seed, "precision-equivalence"), "cpu")
        fake = sample(
            replace(model, precision=precision), n, generator=gen, batch_size=ecfg.sample_batch_size
        )[0]
        out_real = fcn_outputs(evaluator, real, precision=precision)
        out_fake = fcn_outputs(evaluator, fake, precision=precision)
        # the evaluation's own FID, IS and bootstrap intervals (same seeds as a run's results.json)
        scores[precision] = got = _fid_is(
            out_real, out_fake, n, replace(ecfg, bootstrap=ecfg.bootstrap or 200), cfg.seed
        )
        low, high = got["fid_ci95"]
        print(
            f"  {precision:5s} ({resolved(precision, 'cpu')}): FID {got['fid']:.3f} [{low:.3f}, {high:.3f}]"
            f"  IS {got['is_mean']:.3f}  ({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
    low, high = scores["fp32"]["fid_ci95"]
    inside = low <= scores["auto"]["fid"] <= high
    print(f"  auto's FID inside fp32's 95% interval: {'yes' if inside else 'NO'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dataset", default="gen-twopatterns")
    parser.add_argument("--methods", nargs="*", default=["baseline", "barlowtwins", "vibcreg"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--steps", type=int, default=300, help="stage-1 optimiser steps")
    parser.add_argument("--evaluator-steps", type=int, default=400)
    parser.add_argument("--evaluator-seeds", nargs="*", type=int, default=[0])
    parser.add_argument("--generator", type=Path, default=None, help="a trained run: FID of its generator")
    parser.add_argument(
        "--samples", type=int, default=None, help="unconditional samples (default: test size)"
    )
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--control", action="store_true", help="also fp32 at one thread (the noise floor)")
    parser.add_argument(
        "--fp32-part", nargs="*", choices=sorted(PARTS), default=[], help="also auto with this part in fp32"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more overrides")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.methods:
        stage1_rows(args)
    if args.evaluator_seeds:
        evaluator_rows(args)
    if args.generator is not None:
        generator_rows(args.generator, args.samples)


if __name__ == "__main__":
    main()
