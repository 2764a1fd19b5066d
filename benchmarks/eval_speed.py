"""Benchmark (not a test): evaluator training speed and FID / IS cost on CPU.

Measures, on synthetic data shaped like a UCR dataset (default: ECG5000, 500 train series of length 140,
5 classes):

1. training the FCN evaluator for ``--epochs`` epochs with the SPEC recipe (batch 256), extrapolated to
   the 1000-epoch default;
2. scoring ``--n-samples`` series: FCN features and probabilities, FID against a real set of
   ``--n-real`` series, IS over 10 splits, and the bootstrap 95% intervals of both (``--bootstrap``
   resamples);
3. the metrics beyond the thesis (issue 17): KID (100 subsets of 1000), precision/recall/density/coverage
   (k = 5), the memorisation check against ``--n-train`` training series (FCN features and z-normalised
   series), the MiniRocket FID when aeon is installed (``--minirocket``: fit on the train split,
   transform train, real and fake), and the augmentation utility (three FCNs, ``--utility-epochs``).

Usage::

    python benchmarks/eval_speed.py                       # ECG5000-like, 5 epochs, 5000 samples
    python benchmarks/eval_speed.py --length 500 --n-train 3601 --classes 2   # FordA-like
    python benchmarks/eval_speed.py --device cuda
    python benchmarks/eval_speed.py --minirocket --utility-epochs 2   # also MiniRocket (aeon) and utility

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
from ncvqvae.evaluation.metrics import bootstrap_ci, fid, fid_from_samples, inception_score, kid
from ncvqvae.evaluation.neighbours import memorisation, prdc, znormalise_series


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
    parser.add_argument("--minirocket", action="store_true", help="also time the MiniRocket FID (aeon)")
    parser.add_argument("--utility-epochs", type=int, default=0, help="time the utility (0 = skip)")
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

    X_train, y_train = synthetic(args.n_train, args.length, args.classes, seed=0)
    out_train = fcn_outputs(model, X_train)
    start = time.perf_counter()
    kid_result = kid(out_real.features, out_fake.features, subsets=100, subset_size=1000, seed=0)
    kid_s = time.perf_counter() - start
    start = time.perf_counter()
    prdc_result = prdc(out_real.features, out_fake.features, k=5)
    prdc_s = time.perf_counter() - start
    start = time.perf_counter()
    memorisation(out_train.features, out_real.features, out_fake.features)
    memo_feat_s = time.perf_counter() - start
    start = time.perf_counter()
    memorisation(znormalise_series(X_train), znormalise_series(real), znormalise_series(fake))
    memo_series_s = time.perf_counter() - start
    extra = {
        "kid": round(kid_result.mean, 5),
        "kid_s": round(kid_s, 2),
        "prdc": {k: round(v, 4) for k, v in prdc_result.as_dict().items()},
        "prdc_s": round(prdc_s, 2),
        "memorisation_features_s": round(memo_feat_s, 2),
        "memorisation_series_s": round(memo_series_s, 2),
    }
    if args.minirocket:
        from ncvqvae.evaluation.minirocket import minirocket_features

        start = time.perf_counter()
        f_train, f_real, f_fake = minirocket_features(X_train, [X_train, real, fake], seed=0)
        extra["minirocket_features_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        extra["fid_minirocket"] = round(fid_from_samples(f_real, f_fake), 4)
        extra["fid_minirocket_s"] = round(time.perf_counter() - start, 2)
    if args.utility_epochs:
        from ncvqvae.evaluation.utility import augmentation_utility

        X_test, y_test = synthetic(args.n_real, args.length, args.classes, seed=1)
        X_syn, y_syn = synthetic(args.n_train, args.length, args.classes, seed=3)
        start = time.perf_counter()
        augmentation_utility(
            X_train, y_train, X_test, y_test, X_syn, y_syn,
            n_classes=args.classes, epochs=args.utility_epochs, seed=0, device=args.device,
        )  # fmt: skip
        extra["utility_s"] = round(time.perf_counter() - start, 2)
        extra["utility_s_per_epoch"] = round(extra["utility_s"] / args.utility_epochs, 2)

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
        **extra,
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
    print(
        f"| KID (100 subsets of 1000) / PRDC (k = 5) | {kid_s:.1f} s / {prdc_s:.1f} s |\n"
        f"| memorisation vs {args.n_train} train series: features / z-normalised series "
        f"| {memo_feat_s:.1f} s / {memo_series_s:.1f} s |"
    )
    if "minirocket_features_s" in extra:
        print(
            f"| MiniRocket features ({args.n_train} + {args.n_real} + {args.n_samples} series) / its FID "
            f"| {extra['minirocket_features_s']:.1f} s / {extra['fid_minirocket_s']:.1f} s |"
        )
    if "utility_s" in extra:
        print(
            f"| augmentation utility, 3 FCNs ({args.utility_epochs} epochs) | "
            f"{extra['utility_s_per_epoch']:.2f} s/epoch |"
        )
    print(json.dumps(record))
    assert np.isfinite(fid_value)


if __name__ == "__main__":
    main()
