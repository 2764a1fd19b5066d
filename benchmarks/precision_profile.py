"""Where a training step's time goes, fp32 against ``precision: auto`` (issue 13, item 3; docs/benchmarks.md).

For the steps whose ``auto ÷ fp32`` or ``auto ÷ reference`` ratio in ``precision_speed.py`` misses its
target (stage-1 baseline and NC, the FCN's training step, unconditional sampling), this profiles a few steps
under each setting with ``torch.profiler`` and sums the operators' self CPU time into kinds: convolutions
(forward and backward), matrix products, the optimiser's update, FFTs (the STFT and its inverse), dtype
casts (autocast's copies), and everything else (element-wise work, reductions, the VQ and loss arithmetic
kept in fp32). Per kind it prints milliseconds per step under both settings, their ratio and the share of
the ``auto`` step, then the bound that the kinds bf16 cannot speed up put on the whole step's ratio (Amdahl:
the step's ratio if everything but the convolutions and matrix products kept its ``auto`` time and those
became free).

It also times the FCN step at 1 and 2 threads, because its ratio is a question of thread scaling too, and
splits an unconditional sampling batch into its two phases (the prior's decoding steps, the decoder).

Usage::

    python benchmarks/precision_profile.py --threads 2           # every case
    python benchmarks/precision_profile.py --only "FCN training" --steps 5
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from precision_speed import (  # noqa: E402  (the same steps as the speed table)
    fcn_step,
    sampler,
    sampling_model,
    stage1_step,
    timed,
)

from ncvqvae.maskgit import decode_tokens  # noqa: E402
from ncvqvae.precision import autocast, resolved  # noqa: E402
from ncvqvae.sampling import decoding_prior  # noqa: E402
from ncvqvae.training import make_generator  # noqa: E402

ECG = (1, 140)  # (channels, length) of the ECG5000 shape
# autocast's copies, by exact operator name (a substring would also catch e.g. aten::topk)
CASTS = ("aten::to", "aten::_to_copy", "aten::copy_")
# (kind, substrings of operator names) in the order they are matched; the rest is "other"
KINDS = (
    ("convolution", ("conv",)),
    ("matrix product", ("addmm", "::mm", "bmm", "matmul", "linear")),
    ("optimiser", ("adam",)),
    ("FFT", ("fft",)),
)
# the kinds bf16 autocast runs in low precision; the rest it leaves in fp32 or only adds to
ACCELERATED = ("convolution", "matrix product")


def kind_of(name: str) -> str:
    if name in CASTS:
        return "dtype cast"
    lowered = name.lower()
    for kind, needles in KINDS:
        if any(n in lowered for n in needles):
            return kind
    return "other"


def profile_step(step: Callable[[], None], steps: int) -> tuple[dict[str, float], float]:
    """Milliseconds per step by kind (self CPU time of each operator, summed) and the wall ms per step."""
    for _ in range(2):
        step()
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    wall = (time.perf_counter() - start) * 1e3 / steps
    by_kind: dict[str, float] = collections.defaultdict(float)
    for event in prof.key_averages():  # self times: each microsecond is counted once
        by_kind[kind_of(event.key)] += event.self_cpu_time_total / 1e3 / steps
    return dict(by_kind), wall


def cases(device: torch.device) -> dict[str, Callable[[str], Callable[[], None]]]:
    return {
        "stage1 ecg5000 baseline": lambda p: stage1_step("baseline", None, ECG, device, p),
        "stage1 ecg5000 vibcreg+warp": lambda p: stage1_step("vibcreg", "warp", ECG, device, p),
        "stage1 ecg5000 barlowtwins+gauss": lambda p: stage1_step("barlowtwins", "gauss", ECG, device, p),
        "FCN training": lambda p: fcn_step(device, p),
        "sampling unconditional": lambda p: sampler(device, p, False),
    }


def sampling_phases(
    device: torch.device, precision: str, repeats: int, batch: int = 512
) -> tuple[float, float]:
    """Wall ms of one unconditional batch in its two phases, best of ``repeats``: the prior's
    decoding steps and the tokenizer's decoder (the body of ``ncvqvae.sampling.iter_samples``, split)."""
    model = sampling_model(device, precision)
    prior, gen = decoding_prior(model), make_generator(0, device)
    classes = torch.full((batch,), prior.null_class, device=device)
    best = [float("inf"), float("inf")]
    with torch.inference_mode():
        for _ in range(repeats + 1):  # the first is a warm-up
            start = time.perf_counter()
            tokens = decode_tokens(prior, classes, decoding=model.decoding, generator=gen)
            middle = time.perf_counter()
            with autocast(model.precision, device):
                model.decode(tokens).float()
            end = time.perf_counter()
            best = [min(best[0], (middle - start) * 1e3), min(best[1], (end - middle) * 1e3)]
    return best[0], best[1]


def report(name: str, build: Callable[[str], Callable[[], None]], steps: int) -> None:
    parts, walls = {}, {}
    for precision in ("fp32", "auto"):
        parts[precision], walls[precision] = profile_step(build(precision), steps)
    kinds = [k for k, _ in KINDS] + ["dtype cast", "other"]
    total = {p: sum(parts[p].values()) for p in parts}
    print(
        f"\n{name}: wall {walls['fp32']:.1f} → {walls['auto']:.1f} ms/step "
        f"(× {walls['fp32'] / walls['auto']:.2f}); profiled op time {total['fp32']:.1f} → {total['auto']:.1f}"
    )
    print(f"  {'kind':16s} {'fp32 ms':>8s} {'auto ms':>8s} {'ratio':>6s} {'share of auto':>13s}")
    for kind in kinds:
        a, b = parts["fp32"].get(kind, 0.0), parts["auto"].get(kind, 0.0)
        ratio = f"{a / b:6.2f}" if b > 0 else f"{'-':>6s}"
        print(f"  {kind:16s} {a:8.1f} {b:8.1f} {ratio} {100 * b / total['auto']:12.0f}%")
    rest = sum(v for k, v in parts["auto"].items() if k not in ACCELERATED)
    bound = total["fp32"] / rest if rest > 0 else float("inf")
    print(
        f"  under auto, {rest:.1f} ms ({100 * rest / total['auto']:.0f}%) of the step is outside "
        f"convolutions and matrix products: even if those cost nothing, the step is at most "
        f"× {bound:.2f} faster than fp32"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="profiled steps per setting")
    parser.add_argument("--only", default=None, help="one case: " + ", ".join(cases(torch.device("cpu"))))
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per thread-scaling figure")
    args = parser.parse_args()
    device = torch.device("cpu")
    torch.set_num_threads(args.threads)
    print(f"{torch.get_num_threads()} threads, auto = {resolved('auto', device)}, torch {torch.__version__}")
    chosen = cases(device)
    if args.only:
        if args.only not in chosen:
            parser.error(f"--only {args.only!r}: expected one of {', '.join(chosen)}")
        chosen = {args.only: chosen[args.only]}
    for name, build in chosen.items():
        report(name, build, args.steps)
    if "FCN training" in chosen:
        print("\nFCN training step, series/s by threads:")
        for threads in (1, 2):
            torch.set_num_threads(threads)
            speed = {p: timed(fcn_step(device, p), 256, device, args.seconds) for p in ("fp32", "auto")}
            print(
                f"  {threads} thread(s): fp32 {speed['fp32']:.0f}, auto {speed['auto']:.0f} "
                f"(× {speed['auto'] / speed['fp32']:.2f})"
            )
        torch.set_num_threads(args.threads)
    if "sampling unconditional" in chosen:
        print("\nunconditional sampling, batch 512, wall ms by phase (best of 3):")
        phases = {p: sampling_phases(device, p, 3) for p in ("fp32", "auto")}
        for i, phase in enumerate(("prior decoding", "tokenizer decoder")):
            a, b = phases["fp32"][i], phases["auto"][i]
            print(f"  {phase:18s} fp32 {a:7.1f}  auto {b:7.1f}  (× {a / b:.2f})")


if __name__ == "__main__":
    main()
