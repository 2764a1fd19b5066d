"""Benchmark (not a test): evaluator training speed and FID / IS cost on CPU.

Measures, on synthetic data shaped like a UCR dataset (default: ECG5000, 500 train series of length 140,
5 classes):

1. training the FCN evaluator for ``--epochs`` epochs with the SPEC recipe (batch 256), extrapolated to
   the 1000-epoch default;
2. scoring ``--n-samples`` series: FCN features and probabilities, FID against a real set of
   ``--n-real`` series, IS over 10 splits, and the bootstrap 95% intervals of both (``--bootstrap``
   resamples).

Usage::

    python benchmarks/eval_speed.py                       # ECG5000-like, 5 epochs, 5000 samples
    python benchmarks/eval_speed.py --length 500 --n-train 3601 --classes 2   # FordA-like
    python benchmarks/eval_speed.py --device cuda

Prints a markdown table row per measurement and a JSON line with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from ncvqvae.evaluation.fcn import fcn_outputs, train_fcn
from ncvqvae.evaluation.metrics import bootstrap_ci, fid, inception_score


def synthetic(n: int, length: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k: a sine of frequency k + 1 with random phase and noise, (n, 1, length)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=gen)
    t = torch.linspace(0, 2 * torch.pi, length)
    phase = torch.rand(n, 1, generator=gen) * 2 * torch.pi
    x = torch.sin((y[:, None] + 1) * t + phase) + 0.3 * torch.randn(n, length, generator=gen)
    return x[:, None, :], y


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=5, help="evaluator epochs to time")
    parser.add_argument("--n-train", type=int, default=500)
    parser.add_argument("--length", type=int, default=140)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--n-samples", type=int, default=5000, help="generated series scored")
    parser.add_argument("--n-real", type=int, default=4500, help="real (test) series for FID")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    X, y = synthetic(args.n_train, args.length, args.classes, seed=0)
    start = time.perf_counter()
    model = train_fcn(X, y, n_classes=args.classes, epochs=args.epochs, seed=0, device=args.device)
    train_s = time.perf_counter() - start

    real, _ = synthetic(args.n_real, args.length, args.classes, seed=1)
    fake, _ = synthetic(args.n_samples, args.length, args.classes, seed=2)
    start = time.perf_counter()
    out_real, out_fake = fcn_outputs(model, real), fcn_outputs(model, fake)
    features_s = time.perf_counter() - start
    start = time.perf_counter()
    fid_value = fid(out_real.features, out_fake.features)
    fid_s = time.perf_counter() - start
    start = time.perf_counter()
    is_mean, is_std = inception_score(out_fake.probs)
    is_s = time.perf_counter() - start
    start = time.perf_counter()
    fid_ci = bootstrap_ci(fid, out_real.features, out_fake.features, n=args.bootstrap, seed=0)
    fid_ci_s = time.perf_counter() - start
    start = time.perf_counter()
    is_ci = bootstrap_ci(lambda p: inception_score(p)[0], out_fake.probs, n=args.bootstrap, seed=0)
    is_ci_s = time.perf_counter() - start

    per_epoch = train_s / args.epochs
    record = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "shape": [args.n_train, 1, args.length],
        "classes": args.classes,
        "epochs": args.epochs,
        "train_s": round(train_s, 2),
        "s_per_epoch": round(per_epoch, 3),
        "train_1000_epochs_min": round(per_epoch * 1000 / 60, 1),
        "n_samples": args.n_samples,
        "n_real": args.n_real,
        "features_s": round(features_s, 2),
        "fid": round(fid_value, 4),
        "fid_s": round(fid_s, 3),
        "is": [round(is_mean, 4), round(is_std, 4)],
        "is_s": round(is_s, 3),
        "bootstrap": args.bootstrap,
        "fid_ci": [round(v, 4) for v in fid_ci],
        "fid_ci_s": round(fid_ci_s, 2),
        "is_ci": [round(v, 4) for v in is_ci],
        "is_ci_s": round(is_ci_s, 2),
    }
    shape = f"{args.n_train}×1×{args.length}, {args.classes} classes"
    print("| measurement | time |")
    print("| --- | --- |")
    print(
        f"| evaluator training, {shape} ({args.epochs} epochs) | {per_epoch:.2f} s/epoch "
        f"→ {record['train_1000_epochs_min']} min for 1000 epochs |"
    )
    print(
        f"| FCN features + probabilities, {args.n_real} real + {args.n_samples} fake | {features_s:.2f} s |"
    )
    print(f"| FID (one) / IS (10 splits) | {fid_s:.3f} s / {is_s:.3f} s |")
    print(f"| bootstrap 95% CI, {args.bootstrap} resamples: FID / IS | {fid_ci_s:.1f} s / {is_ci_s:.1f} s |")
    print(json.dumps(record))
    assert np.isfinite(fid_value)


if __name__ == "__main__":
    main()
