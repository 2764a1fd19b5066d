"""ncvqvae.precision: which bf16 instructions the CPU has, and what ``auto`` resolves to on each."""

from __future__ import annotations

import pytest
import torch

from ncvqvae import precision
from ncvqvae.errors import ConfigError


@pytest.fixture
def cpu_with(monkeypatch: pytest.MonkeyPatch):
    """Pretend this CPU has (``amx``, ``avx512_bf16``) the given instructions; the detection is redone."""

    def pretend(amx: bool, avx512_bf16: bool) -> None:
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
        precision.cpu_bf16_isa.cache_clear()

    yield pretend
    precision.cpu_bf16_isa.cache_clear()


@pytest.mark.parametrize(
    ("amx", "avx512", "isa", "auto"),
    [
        (True, True, "amx", torch.bfloat16),
        (False, True, "avx512_bf16", torch.bfloat16),
        (False, False, "none", None),
    ],
)
def test_cpu_bf16_isa_decides_auto(
    cpu_with, amx: bool, avx512: bool, isa: str, auto: torch.dtype | None
) -> None:
    cpu_with(amx, avx512)
    assert precision.cpu_bf16_isa() == isa
    assert precision.autocast_dtype("auto", "cpu") is auto
    assert precision.autocast_dtype("bf16", "cpu") is torch.bfloat16  # asked for: whatever the CPU
    assert precision.autocast_dtype("fp32", "cpu") is None


def test_unknown_precision_names_the_field() -> None:
    with pytest.raises(ConfigError, match="stage1.precision: expected auto, fp32, bf16; got 'fp16'"):
        precision.check_precision("fp16", field="stage1.precision")
