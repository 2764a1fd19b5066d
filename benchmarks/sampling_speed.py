"""Stage-2 speed: prior training samples/s and sampling series/s on ECG5000- and FordA-shaped models.

Not a test: a measurement to record in ``docs/benchmarks.md``. The networks have the thesis sizes
(tokenizer: hidden 64, 32 codes; prior: width 256, depth 4, heads 2) and random weights, since speed does
not depend on what they learned. Data are random series of the datasets' shapes (ECG5000: 500 × 140,
5 classes, 5×8 tokens; FordA: 3601 × 500, 2 classes, 5×15 tokens).

- Training: the real :func:`ncvqvae.stage2.train_stage2` loop (batch 256, stochastic tokenization,
  class dropout), timed from the end of its second step to the end of its last.
- Sampling: :func:`ncvqvae.sampling.sample` with T = 10 decoding steps, batch 512, series decoded to
  time series: class-conditional at guidance 1 (one transformer pass per step), unconditional, and
  class-conditional with guidance 2 (conditional and unconditional passes batched together).

Rates are reported per wall second and per CPU second of this process: on a machine shared with other
jobs, run with ``--threads 1`` and read the CPU-second rates, which contention does not deflate.

Usage::

    python benchmarks/sampling_speed.py                 # both shapes, all numbers
    python benchmarks/sampling_speed.py --shape ECG5000 --train-steps 12 --samples 1024
    python benchmarks/sampling_speed.py --threads 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from ncvqvae.config import Decoding, RunConfig, Stage1Config, Stage2Config, replace
from ncvqvae.data.dataset import PreparedData
from ncvqvae.maskgit import draw_mask, masked_token_loss
from ncvqvae.models.tokenizer import build_tokenizer
from ncvqvae.sampling import sample
from ncvqvae.stage2 import GenerativeModel, build_prior, train_stage2
from ncvqvae.training import StepLog, make_generator

SHAPES = {  # name: (n_train, length, n_classes)
    "ECG5000": (500, 140, 5),
    "FordA": (3601, 500, 2),
}


def random_data(name: str) -> PreparedData:
    n, length, k = SHAPES[name]
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(n, 1, length, generator=gen)
    y = torch.arange(n) % k
    labels = tuple(str(i + 1) for i in range(k))
    return PreparedData(name=name, X_train=X, y_train=y, X_test=None, y_test=None, n_classes=k,
                        label_values=labels, class_names=labels)


def timed(fn) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of fn()."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def bench_training(name: str, tokenizer, steps: int, device: str) -> dict:
    """Samples/s of the real stage-2 training loop, between the ends of step 2 and step 2 + ``steps``.

    Each step's end is stamped (wall and process CPU time) by wrapping the loop's ``StepLog.step``, so
    setup (building the prior, precomputing the code logits) and warm-up are left out. Reported against
    wall time and against this process's CPU time; on a machine shared with other jobs the CPU-time
    rate (run with --threads 1) is the steadier one.
    """
    data = random_data(name)
    stamps: list[tuple[float, float]] = []
    real_step = StepLog.step

    def stamped(self, *args, **kwargs):
        ended_epoch = real_step(self, *args, **kwargs)
        stamps.append((time.perf_counter(), time.process_time()))
        return ended_epoch

    cfg = replace(RunConfig(), **{"device": device, "progress": False, "stage2.max_steps": steps + 2,
                                  "stage2.checkpoint_every": 10**9})
    StepLog.step = stamped
    try:
        with tempfile.TemporaryDirectory() as tmp:
            train_stage2(cfg, tmp, tokenizer=tokenizer, data=data)
    finally:
        StepLog.step = real_step
    (wall_a, cpu_a), (wall_b, cpu_b) = stamps[1], stamps[-1]
    samples = steps * cfg.stage2.batch_size
    return {"train_samples_per_s": samples / (wall_b - wall_a),
            "train_samples_per_cpu_s": samples / (cpu_b - cpu_a)}


def bench_reference_like(name: str, tokenizer, steps: int, n: int, batch_size: int) -> dict:
    """The reference implementation's per-step work, measured here in the same conditions as ours.

    Training: fp32, and the frozen encoder run on every batch to draw its stochastic codes
    (``tokenizer.encode(x, temperature=1)``) instead of drawing them from precomputed logits. Sampling:
    fp32, and the transformer run twice per step (conditional + unconditional) even at guidance 1.
    The network is this package's (the reference used x-transformers), so the ratio isolates the loop
    and precision choices; it is an estimate of the gain over the reference, not a rerun of it.
    """
    data = random_data(name)
    k = data.n_classes
    prior = build_prior(Stage2Config(), tokenizer, n_classes=k)
    optimizer = torch.optim.AdamW(prior.parameters(), lr=1e-3, weight_decay=1e-3)
    gen = make_generator(0)
    batch = Stage2Config().batch_size
    stamps = []
    prior.train()
    for _ in range(steps + 2):
        index = torch.randperm(data.X_train.shape[0], generator=gen)[:batch]
        tokens = tokenizer.encode(data.X_train[index], temperature=1.0, generator=gen)
        classes = data.y_train[index].masked_fill(torch.rand(batch, generator=gen) < 0.2, prior.null_class)
        masked = draw_mask(batch, tokens.shape[1], convention="maskgit", generator=gen)
        loss, _ = masked_token_loss(prior(tokens, classes, masked.mask), tokens, masked.loss_mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        stamps.append((time.perf_counter(), time.process_time()))
    (wall_a, cpu_a), (wall_b, cpu_b) = stamps[1], stamps[-1]
    out = {"train_samples_per_s": steps * batch / (wall_b - wall_a),
           "train_samples_per_cpu_s": steps * batch / (cpu_b - cpu_a)}
    stats = {"n_classes": k, "class_counts": [1] * k}
    model = GenerativeModel(tokenizer=tokenizer, prior=prior.eval(), data_stats=stats, precision="fp32")
    classes = torch.arange(n) % k
    # a guidance a hair above 1 takes the batched two-pass path, the reference's cost at guidance 1
    wall, cpu = timed(lambda: sample(model, n, classes=classes, decoding=Decoding(guidance=1.0 + 1e-6),
                                     generator=make_generator(0), batch_size=batch_size))
    out.update(sample_cond_g1_series_per_s=n / wall, sample_cond_g1_series_per_cpu_s=n / cpu)
    wall, cpu = timed(lambda: sample(model, n, generator=make_generator(0), batch_size=batch_size))
    out.update(sample_uncond_series_per_s=n / wall, sample_uncond_series_per_cpu_s=n / cpu)
    return out


def bench_sampling(model: GenerativeModel, n: int, batch_size: int) -> dict:
    """Series/s of class-conditional (guidance 1), unconditional and guided (s = 2) sampling."""
    out = {}
    classes = torch.arange(n) % model.n_classes
    cases = {"cond_g1": (classes, 1.0), "uncond": (None, 1.0), "cond_g2": (classes, 2.0)}
    for case, (cls, guidance) in cases.items():
        gen = make_generator(0, model.device)

        def draw(m: int, cls=cls, guidance=guidance, gen=gen) -> None:
            decoding = Decoding(steps=10, guidance=guidance)
            x, _ = sample(model, m, classes=None if cls is None else cls[:m], decoding=decoding,
                          generator=gen, batch_size=batch_size)
            assert torch.isfinite(x).all()

        draw(min(n, 64))  # warm-up
        wall, cpu = timed(lambda draw=draw: draw(n))
        out[f"sample_{case}_series_per_s"] = n / wall
        out[f"sample_{case}_series_per_cpu_s"] = n / cpu
    return out


def rounded(value):
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return round(value, 1) if isinstance(value, float) else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES), help="default: all")
    parser.add_argument("--train-steps", type=int, default=10)
    parser.add_argument("--samples", type=int, default=1024, help="series per sampling measurement")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--reference-like", action="store_true",
                        help="also time the reference's per-step work (fp32, encoder per batch, two passes)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    results = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "device": args.device, "load_average_before": os.getloadavg()},
    }
    for name in args.shape or sorted(SHAPES):
        n, length, k = SHAPES[name]
        torch.manual_seed(0)
        tokenizer = build_tokenizer(Stage1Config(method="baseline"), 1, length).to(args.device).eval()
        row = {"tokens": list(tokenizer.token_grid), "n_classes": k}
        if not args.skip_training:
            row.update(bench_training(name, tokenizer, args.train_steps, args.device))
        prior = build_prior(Stage2Config(), tokenizer, n_classes=k).to(args.device).eval()
        stats = {"n_classes": k, "class_counts": [n // k] * k, "label_values": [str(i) for i in range(k)]}
        model = GenerativeModel(tokenizer=tokenizer, prior=prior, data_stats=stats)
        row.update(bench_sampling(model, args.samples, args.batch_size))
        if args.reference_like:
            row["reference_like"] = bench_reference_like(name, tokenizer, args.train_steps, args.samples,
                                                         args.batch_size)
        results[name] = row
        print(name, json.dumps(rounded(row)))
        sys.stdout.flush()
    results["machine"]["load_average_after"] = os.getloadavg()
    print("load average before/after:", results["machine"]["load_average_before"], os.getloadavg())
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
