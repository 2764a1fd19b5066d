"""Stage-1 training speed: samples/s of the full training step for the baseline and NC-VQVAE.

A step is what ``ncvqvae.stage1.train_stage1`` does per batch: gather a batch of the in-memory training
tensor (the epoch's batch order from :func:`ncvqvae.training.epoch_batches`), draw the augmented view
(NC methods), forward both branches, backward, AdamW step, cosine-schedule step. The data are random
series shaped like ECG5000 (n = 500, L = 140) and FordA (n = 3601, L = 500); speed does not depend
on the values. Batch 128, thesis model (``Stage1Config()`` defaults).

Reported per configuration: the median over the measured epochs (after warm-up epochs) of samples/s
and steps/s (wall clock), the process CPU seconds per step (less sensitive to other load on the
machine than the wall clock), and the share of the step spent in the data path (batch gather,
augmentation, the STFT of both input views).

Usage::

    python benchmarks/stage1_speed.py                      # all six configurations, 2 threads, CPU
    python benchmarks/stage1_speed.py --configs ecg5000-vibcreg-warp --epochs 3
    python benchmarks/stage1_speed.py --device cuda        # on a GPU (steps/s are the figure to read)
    python benchmarks/stage1_speed.py --max-steps-per-epoch 5 --epochs 2 --warmup 1   # a quick look
    python benchmarks/stage1_speed.py --profile ecg5000-vibcreg-warp    # top operators, torch.profiler

This is a benchmark, not a test: run it on a quiet machine; other processes on the same cores lower
the wall-clock figures.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

import ncvqvae.models.ssl as ssl_module
from ncvqvae.config import AugmentationConfig, Stage1Config
from ncvqvae.models import VQVAE, build_tokenizer, stft
from ncvqvae.training import cosine_schedule, epoch_batches, make_generator, pick_device


@dataclass(frozen=True)
class BenchConfig:
    """One measured configuration."""

    name: str
    n: int  # training-set size
    length: int  # series length
    method: str  # "baseline", "barlowtwins", "vibcreg"
    augmentation: str | None  # augmentation name (NC methods)
    epochs: int  # measured epochs (after warm-up) unless --epochs overrides


CONFIGS = {
    c.name: c
    for c in [
        BenchConfig("ecg5000-baseline", 500, 140, "baseline", None, 7),
        BenchConfig("ecg5000-vibcreg-warp", 500, 140, "vibcreg", "warp", 5),
        BenchConfig("ecg5000-barlowtwins-gauss", 500, 140, "barlowtwins", "gauss", 5),
        BenchConfig("forda-baseline", 3601, 500, "baseline", None, 3),
        BenchConfig("forda-vibcreg-warp", 3601, 500, "vibcreg", "warp", 3),
        BenchConfig("forda-barlowtwins-gauss", 3601, 500, "barlowtwins", "gauss", 3),
    ]
}


@dataclass
class Result:
    """The figures of one configuration."""

    name: str
    device: str
    threads: int
    batch_size: int
    steps_per_epoch: int
    samples_per_s: float  # median over measured epochs
    steps_per_s: float
    step_ms: float  # median wall-clock step time
    cpu_s_per_step: float  # process CPU seconds per step (all threads)
    data_path_share: float  # (gather + augmentation + input STFTs) / step time
    epoch_samples_per_s: list[float]
    augmentation: str


def load_augmentation(name: str | None) -> tuple[object | None, str]:
    """The package's augmentation, or a no-op (said so) when ``ncvqvae.data.augment`` cannot be imported."""
    if name is None:
        return None, "none"
    try:
        from ncvqvae.data.augment import build_augmentation
    except ImportError as err:
        return (lambda x, generator: x.clone()), f"NO-OP fallback ({err})"
    return build_augmentation(AugmentationConfig(names=(name,))), name


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_optimizer(
    model: torch.nn.Module, cfg: Stage1Config, impl: str, device: torch.device
) -> torch.optim.AdamW:
    kwargs: dict[str, bool] = {}
    if impl == "fused" and device.type in ("cpu", "cuda"):
        kwargs["fused"] = True
    elif impl == "foreach":
        kwargs["foreach"] = True
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, **kwargs)


ABLATIONS = {
    "layout": "keep the STFT in the default (NCHW) layout instead of channels-last",
    "stacked": "project the two views with two separate head calls instead of one stacked product",
    "gram": "compute the SSL losses from the D x D matrices instead of B x B Gram matrices",
}


def build(
    bench: BenchConfig, args: argparse.Namespace, device: torch.device
) -> tuple[Stage1Config, VQVAE, torch.optim.AdamW, object | None, str]:
    """The model (thesis defaults), its optimiser and the augmentation of ``bench``, with the ablations
    named in ``args.ablate`` switched off (benchmark-only monkeypatching: same values, slower paths)."""
    cfg = Stage1Config(method=bench.method, batch_size=args.batch_size)
    torch.manual_seed(0)
    model = build_tokenizer(cfg, 1, bench.length).to(device).train()
    if "layout" in args.ablate:
        model.time_frequency = lambda x: stft(x, model.n_fft)  # type: ignore[method-assign]
    if "stacked" in args.ablate and model.ssl_head is not None:
        head = model.ssl_head
        head.forward_pair = lambda z1, z2: (head(z1), head(z2))  # type: ignore[method-assign]
    if "gram" in args.ablate:
        ssl_module.off_diagonal_sq_sum = lambda a, b, diagonal: (
            (a.t() @ b).pow(2).sum() - diagonal.pow(2).sum()
        )
    optimizer = make_optimizer(model, cfg, args.adamw, device)
    augment, aug_label = load_augmentation(bench.augmentation if model.is_nc else None)
    return cfg, model, optimizer, augment, aug_label


def run_config(bench: BenchConfig, args: argparse.Namespace, device: torch.device) -> Result:
    """Train ``warmup + epochs`` epochs of ``bench`` and time them."""
    epochs = args.epochs or bench.epochs
    cfg, model, optimizer, augment, aug_label = build(bench, args, device)
    batches_per_epoch = len(epoch_batches(bench.n, cfg.batch_size, seed=0, epoch=0))
    steps = min(batches_per_epoch, args.max_steps_per_epoch or batches_per_epoch)
    scheduler = cosine_schedule(optimizer, (args.warmup + epochs) * steps)
    generator = make_generator(0, device)
    data = torch.randn(bench.n, 1, bench.length, generator=make_generator(1)).to(device)

    samples_per_s, step_times, cpu_times, data_times = [], [], [], []
    for epoch in range(args.warmup + epochs):
        batches = epoch_batches(bench.n, cfg.batch_size, seed=0, epoch=epoch)[:steps]
        synchronize(device)
        epoch_start, cpu_start, n_samples, t_data = time.perf_counter(), time.process_time(), 0, 0.0
        for idx in batches:
            t0 = time.perf_counter()
            x = data[idx.to(device)]  # (B, 1, L)
            x_aug = augment(x, generator) if augment is not None else None
            synchronize(device)
            t_data += time.perf_counter() - t0
            out = model(x, x_aug)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            optimizer.step()
            scheduler.step()
            n_samples += x.shape[0]
        synchronize(device)
        elapsed = time.perf_counter() - epoch_start
        if epoch >= args.warmup:
            samples_per_s.append(n_samples / elapsed)
            step_times.append(elapsed / len(batches))
            cpu_times.append((time.process_time() - cpu_start) / len(batches))
            data_times.append(t_data / len(batches))
    stft_time = time_input_stfts(model, data[: cfg.batch_size], device)
    step = statistics.median(step_times)
    return Result(
        name=bench.name,
        device=str(device),
        threads=torch.get_num_threads(),
        batch_size=cfg.batch_size,
        steps_per_epoch=steps,
        samples_per_s=statistics.median(samples_per_s),
        steps_per_s=1.0 / step,
        step_ms=1e3 * step,
        cpu_s_per_step=statistics.median(cpu_times),
        data_path_share=(statistics.median(data_times) + stft_time) / step,
        epoch_samples_per_s=[round(v, 1) for v in samples_per_s],
        augmentation=aug_label,
    )


def time_input_stfts(model: VQVAE, x: torch.Tensor, device: torch.device, repeats: int = 20) -> float:
    """Median seconds of the input STFT(s) of one batch (the model computes them without gradient)."""
    times = []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        for _view in range(2 if model.is_nc else 1):
            model.time_frequency(x)
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def profile_config(bench: BenchConfig, args: argparse.Namespace, device: torch.device) -> None:
    """Print the top operators of a few training steps (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    cfg, model, optimizer, augment, _ = build(bench, args, device)
    generator = make_generator(0, device)
    data = torch.randn(cfg.batch_size, 1, bench.length, generator=make_generator(1)).to(device)

    def step() -> None:
        x_aug = augment(data, generator) if augment is not None else None
        out = model(data, x_aug)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities, record_shapes=True) as prof:
        for _ in range(3):
            step()
        synchronize(device)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(
        prof.key_averages(group_by_input_shape=True).table(
            sort_by=sort, row_limit=25, max_name_column_width=32
        )
    )


def machine() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="all", help=f"comma-separated, or 'all': {', '.join(CONFIGS)}")
    parser.add_argument(
        "--epochs", type=int, default=None, help="measured epochs (default per config: 7/5/3)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="warm-up epochs, not measured")
    parser.add_argument("--max-steps-per-epoch", type=int, default=None, help="cap an epoch's steps")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (CPU)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    parser.add_argument("--adamw", choices=["fused", "foreach", "plain"], default="fused")
    parser.add_argument(
        "--ablate",
        default="",
        help="comma-separated speed-ups to switch off, to measure them: "
        + "; ".join(f"{k}: {v}" for k, v in ABLATIONS.items())
        + " (the optimiser: --adamw plain)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--profile", metavar="CONFIG", default=None, help="profile one config and exit")
    args = parser.parse_args(argv)

    args.ablate = {a.strip() for a in args.ablate.split(",") if a.strip()}
    unknown_ablations = sorted(args.ablate - set(ABLATIONS))
    if unknown_ablations:
        parser.error(f"unknown --ablate {', '.join(unknown_ablations)}; known: {', '.join(ABLATIONS)}")
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    names = (
        list(CONFIGS) if args.configs == "all" else [c.strip() for c in args.configs.split(",") if c.strip()]
    )
    unknown = [n for n in names + ([args.profile] if args.profile else []) if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown config(s) {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
    header = (
        f"machine: {machine()} | torch {torch.__version__} | device {device} "
        f"| threads {torch.get_num_threads()} | AdamW {args.adamw} | batch {args.batch_size}"
        f" | ablated: {', '.join(sorted(args.ablate)) or 'none'}"
    )
    print(header, flush=True)
    if args.profile:
        profile_config(CONFIGS[args.profile], args, device)
        return 0

    results = []
    columns = ["samples/s", "steps/s", "step ms", "CPU s/step", "data %"]
    print(f"{'config':28s} " + " ".join(f"{c:>10s}" for c in columns))
    for name in names:
        res = run_config(CONFIGS[name], args, device)
        results.append(res)
        print(
            f"{res.name:28s} {res.samples_per_s:10.1f} {res.steps_per_s:10.2f} {res.step_ms:10.0f} "
            f"{res.cpu_s_per_step:10.2f} {100 * res.data_path_share:9.1f}%   "
            f"(epochs: {res.epoch_samples_per_s}; augmentation: {res.augmentation}; "
            f"{res.steps_per_epoch} steps/epoch)",
            flush=True,
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": header, "results": [asdict(r) for r in results]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
