"""One precision setting for every network the package trains or runs: ``auto``, ``fp32`` or ``bf16``.

``bf16`` means mixed precision: ``torch.autocast`` runs the matrix products and convolutions in bfloat16
while the weights, the optimiser state, the loss reductions and every statistic that needs the range or
the digits stay in float32 (or float64). The modules keep those parts in full precision themselves
(:func:`full_precision`), each with a comment saying why: the SSL losses' standardisation and correlation
matrices, IterNorm's whitening, the VQ distances and EMA update, the FCN's pooled features.

``auto`` (the default) is bf16 where the device computes it natively and fast, fp32 elsewhere:

- CUDA devices with bf16 support (compute capability ≥ 8);
- CPUs with AMX-BF16 tiles or AVX512-BF16 instructions, which oneDNN uses for bf16 convolutions and
  matrix products (measured on an AVX512-BF16 Xeon without AMX: the FCN's training step 2.4× faster,
  docs/benchmarks.md). Without them the casts cost more than they save.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch

from ncvqvae.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")


@functools.cache
def cpu_bf16_isa() -> str:
    """This CPU's native bf16 instructions, detected once: ``amx`` (AMX-BF16 tiles), ``avx512_bf16`` or
    ``none``. oneDNN picks its bf16 kernels by them, so a bf16 run's numbers and speed can differ between
    two machines that differ here (each run records it in ``machine.json``)."""
    probes = {"amx": "_is_amx_tile_supported", "avx512_bf16": "_is_avx512_bf16_supported"}
    if all(hasattr(torch.cpu, probe) for probe in probes.values()):  # private, hence the guard
        return next((isa for isa, probe in probes.items() if getattr(torch.cpu, probe)()), "none")
    try:  # an older torch without the probes: the kernel's CPU flags (Linux)
        flags = set(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split())
    except OSError:
        return "none"
    return "amx" if "amx_bf16" in flags else "avx512_bf16" if "avx512_bf16" in flags else "none"


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (AMX-BF16 or AVX512-BF16)."""
    return cpu_bf16_isa() != "none"


def check_precision(precision: str, *, field: str = "precision") -> str:
    """Return ``precision`` if it is one of :data:`PRECISIONS`, else raise a :class:`ConfigError`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"{field}: expected {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The low-precision dtype a network computes in on ``device`` (``None`` = fp32)."""
    check_precision(precision)
    device = torch.device(device)
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_fast_bf16() else None
    return None


def resolved(precision: str, device: torch.device | str) -> str:
    """``"bf16"`` or ``"fp32"``: what ``precision`` means on ``device`` (recorded in results)."""
    return "fp32" if autocast_dtype(precision, device) is None else "bf16"


def autocast(precision: str, device: torch.device | str) -> contextlib.AbstractContextManager[None]:
    """The autocast context of ``precision`` on ``device`` (a no-op for fp32)."""
    device = torch.device(device)
    dtype = autocast_dtype(precision, device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def full_precision(device_type: str) -> Iterator[None]:
    """Suspend autocast inside a module: what runs here sees (and should be given) float32 tensors."""
    with torch.autocast(device_type, enabled=False):
        yield


def at_least_fp32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32, or kept as it is when it already has as much precision (float64)."""
    return tensor.to(torch.promote_types(tensor.dtype, torch.float32))
