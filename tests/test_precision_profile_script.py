"""benchmarks/precision_profile.py: operator kinds and the sampling phase split."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import torch


@pytest.fixture(scope="module")
def script(load_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return load_benchmark("precision_profile")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("aten::convolution_backward", "convolution"),
        ("aten::addmm", "matrix product"),
        ("aten::_fused_adamw_", "optimiser"),
        ("aten::_fft_r2c", "FFT"),
        ("aten::_to_copy", "dtype cast"),
        ("aten::topk", "other"),  # not a cast, though it contains "to"
    ],
)
def test_operators_fall_into_their_kind(script: ModuleType, name: str, kind: str) -> None:
    assert script.kind_of(name) == kind


@pytest.mark.usefixtures("one_thread")
def test_sampling_phases_time_both_phases(script: ModuleType) -> None:
    prior_ms, decoder_ms = script.sampling_phases(torch.device("cpu"), "fp32", repeats=1, batch=4)
    assert prior_ms > 0 and decoder_ms > 0
