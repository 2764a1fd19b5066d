"""fp32 against ``precision: auto`` side by side, one run, every stage (issue 13; docs/benchmarks.md).

Times, on random data of the thesis' shapes, each network the package trains or runs, once in strict fp32
and once under the run setting ``auto`` (bf16 autocast where the device has native bf16, see
:mod:`ncvqvae.precision`), alternating the two so that drift of the machine hits both alike, and prints
series/s (steps/s on a GPU) and the ratio auto ÷ fp32:

- stage-1 training steps (forward both branches, backward, fused AdamW): baseline, VIbCReg + Warp,
  Barlow Twins + Gauss on ECG5000 (L 140) and FordA (L 500) shapes, batch 128, thesis model;
- prior training steps (thesis prior: width 256, 2 heads of 64, token variant), N 40, batch 256;
- sampling (10 decoding steps + decoder), unconditional and class-conditional, batch 512;
- FCN training steps (evaluator and CAS recipe), batch 256, L 140 (``--fcn-length``: another length, e.g.
  1024 for Mallat's CAS), and FCN feature extraction;
- with ``--real-data NAME ...`` (fetched datasets, e.g. ECG5000 Mallat): the stage-1 baseline step once
  more on each dataset's prepared training series in the training loop's batch order
  (``training.step_batches``: full batches and the epoch's short last one), next to the random-data step
  of the same shape, to tell a difference between the benchmark's step and the real loop from a
  difference between machines.

Beside ``auto`` it prints the reference implementation's figures measured on this machine kind (Intel Xeon
with AVX512-BF16, 2 threads, the reference's training step timed without Lightning; issue 13) and the ratio
to them, where one exists (those were taken on another machine when this one has no bf16). Usage:
``python benchmarks/precision_speed.py [--repeats 3] [--only stage1] [--against bf16] [--real-data ECG5000]``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ncvqvae.config import AugmentationConfig, DataConfig, Stage1Config
from ncvqvae.data.augment import build_augmentation
from ncvqvae.data.prepare import load_prepared
from ncvqvae.evaluation.fcn import FCN, fcn_outputs
from ncvqvae.maskgit import masked_token_loss
from ncvqvae.models import build_tokenizer
from ncvqvae.models.prior import BidirectionalTransformer
from ncvqvae.precision import autocast, resolved
from ncvqvae.sampling import sample
from ncvqvae.stage2 import GenerativeModel
from ncvqvae.training import make_generator, pick_device, step_batches, steps_per_epoch

# series/s of the reference code on this machine kind, 2 threads (issue 13's side-by-side measurement)
REFERENCE = {
    "stage1 ecg5000 baseline": 820,
    "stage1 ecg5000 vibcreg+warp": 131,
    "stage1 ecg5000 barlowtwins+gauss": 82,
    "prior training": 624,
    "sampling unconditional": 234,
    "sampling conditional": 119,
}


def timed(step: Callable[[], None], items: float, device: torch.device, seconds: float) -> float:
    """Items per second of ``step`` (each call handles ``items``), after two warm-up calls."""
    for _ in range(2):
        step()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start, calls = time.perf_counter(), 0
    while calls < 2 or time.perf_counter() - start < seconds:
        step()
        calls += 1
    sync()
    return items * calls / (time.perf_counter() - start)


def stage1_step(
    method: str,
    aug: str | None,
    shape: tuple[int, int],
    device: torch.device,
    precision: str,
    real: torch.Tensor | None = None,
) -> Callable:
    """One stage-1 training step on a fixed random batch of 128 series of ``shape`` (channels, length),
    or on the batches of ``real`` (N, channels, length) in the training loop's order."""
    torch.manual_seed(0)
    cfg = Stage1Config(method=method, augmentation=AugmentationConfig(names=(aug,) if aug else ("warp",)))
    model = build_tokenizer(cfg, *shape).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-3, fused=True)
    augment = build_augmentation(cfg.augmentation) if model.is_nc else None
    fixed = torch.randn(128, *shape, device=device)
    order = step_batches(len(real), 128, seed=0, start=0, total=10**9) if real is not None else None
    gen = make_generator(0, device)

    def step() -> None:
        x = fixed if order is None else real[next(order)[1]].to(device)
        x_aug = augment(x, gen) if augment is not None else None
        with autocast(precision, device):
            out = model(x, x_aug)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()

    return step


def prior_step(device: torch.device, precision: str) -> Callable:
    torch.manual_seed(0)
    prior = BidirectionalTransformer(40, 32, 4).to(device).train()
    opt = torch.optim.AdamW(prior.parameters(), lr=1e-3, weight_decay=1e-3, fused=True)
    tokens = torch.randint(0, 32, (256, 40), device=device)
    classes = torch.randint(0, 5, (256,), device=device)
    mask = torch.rand(256, 40, device=device) < 0.5

    def step() -> None:
        with autocast(precision, device):
            loss, _ = masked_token_loss(prior(tokens, classes, mask), tokens, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def sampling_model(device: torch.device, precision: str) -> GenerativeModel:
    """An untrained generator of the thesis' ECG5000 shapes (baseline tokenizer, 5 classes)."""
    torch.manual_seed(0)
    tokenizer = build_tokenizer(Stage1Config(method="baseline"), 1, 140).to(device).eval()
    prior = BidirectionalTransformer(tokenizer.n_tokens, 32, 5, codebook=tokenizer.codebook.cpu()).to(device)
    return GenerativeModel(tokenizer=tokenizer, prior=prior.eval(), precision=precision)


def sampler(device: torch.device, precision: str, conditional: bool) -> Callable:
    model = sampling_model(device, precision)
    gen = make_generator(0, device)
    classes = torch.arange(512) % 5 if conditional else None

    def step() -> None:
        sample(model, 512, classes=classes, generator=gen, batch_size=512)

    return step


def fcn_step(device: torch.device, precision: str, length: int = 140) -> Callable:
    torch.manual_seed(0)
    model = FCN(1, 5).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-5)
    x, y = torch.randn(256, 1, length, device=device), torch.randint(0, 5, (256,), device=device)

    def step() -> None:
        with autocast(precision, device):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def fcn_features(device: torch.device, precision: str, length: int = 140) -> Callable:
    torch.manual_seed(0)
    model = FCN(1, 5).to(device).eval()
    x = torch.randn(4500, 1, length)
    return lambda: fcn_outputs(model, x, precision=precision)


Case = tuple[str, str, float, Callable[[str], Callable]]  # name, group, series per call, build(precision)


def cases(device: torch.device, real_data: Sequence[str] = (), fcn_length: int = 140) -> list[Case]:
    out: list[Case] = []
    for shape, length in (("ecg5000", 140), ("forda", 500)):
        for method, aug in (("baseline", None), ("vibcreg", "warp"), ("barlowtwins", "gauss")):
            name = f"stage1 {shape} {method}" + (f"+{aug}" if aug else "")
            build = lambda p, m=method, a=aug, n=length: stage1_step(m, a, (1, n), device, p)  # noqa: E731
            out.append((name, "stage1", 128, build))
    for name in real_data:
        X = load_prepared(DataConfig(dataset=name)).X_train
        shape = tuple(X.shape[1:])
        mean_batch = len(X) / steps_per_epoch(len(X), 128)  # the loop's batches: full ones and a short last
        out.append(
            (
                f"stage1 random {shape} baseline",
                "stage1",
                128,
                lambda p, c=shape: stage1_step("baseline", None, c, device, p),
            )
        )
        out.append(
            (
                f"stage1 {name} baseline, loop order",
                "stage1",
                mean_batch,
                lambda p, c=shape, x=X: stage1_step("baseline", None, c, device, p, real=x),
            )
        )
    out.append(("prior training", "prior", 256, lambda p: prior_step(device, p)))
    out.append(("sampling unconditional", "sampling", 512, lambda p: sampler(device, p, False)))
    out.append(("sampling conditional", "sampling", 512, lambda p: sampler(device, p, True)))
    at = "" if fcn_length == 140 else f", L {fcn_length}"
    out.append((f"FCN training{at}", "fcn", 256, lambda p: fcn_step(device, p, fcn_length)))
    out.append((f"FCN features{at}", "fcn", 4500, lambda p: fcn_features(device, p, fcn_length)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seconds", type=float, default=4.0, help="timed seconds per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="alternations of fp32 and auto (best kept)")
    parser.add_argument("--only", choices=["stage1", "prior", "sampling", "fcn"], help="one group")
    parser.add_argument("--fcn-length", type=int, default=140, help="series length of the FCN cases")
    parser.add_argument("--real-data", nargs="*", default=[], metavar="NAME", help="also stage 1 on these")
    parser.add_argument(
        "--against",
        choices=["auto", "bf16"],
        default="auto",
        help="the setting timed beside fp32 (bf16: autocast even where auto means fp32, e.g. without bf16)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    low = args.against
    print(f"device {device}, {torch.get_num_threads()} threads, auto = {resolved('auto', device)}")
    header = f"{'case':38s} {'fp32':>9s} {low:>9s} {'ratio':>6s} {'reference':>9s} {'vs ref':>6s}"
    print(header + "  (series/s)")
    for name, group, items, build in cases(device, args.real_data, args.fcn_length):
        if args.only and group != args.only:
            continue
        steps = {p: build(p) for p in ("fp32", low)}
        best = {p: 0.0 for p in steps}
        for _ in range(args.repeats):
            for p, step in steps.items():
                best[p] = max(best[p], timed(step, items, device, args.seconds))
        ref = REFERENCE.get(name)
        ref_text = f"{ref:9d} {best[low] / ref:6.2f}" if ref else f"{'-':>9s} {'-':>6s}"
        ratio = best[low] / best["fp32"]
        print(f"{name:38s} {best['fp32']:9.1f} {best[low]:9.1f} {ratio:6.2f} {ref_text}", flush=True)


if __name__ == "__main__":
    main()
