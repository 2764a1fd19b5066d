"""benchmarks/precision_equivalence.py: its settings and the fp32 part it holds under autocast."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import torch

from ncvqvae.models.encoder import Encoder


@pytest.fixture(scope="module")
def script(load_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return load_benchmark("precision_equivalence")


def test_settings_add_the_control_and_each_part(script: ModuleType) -> None:
    args = argparse.Namespace(control=True, fp32_part=["encoder"])
    assert script.settings(args) == [
        ("fp32", "fp32", False, None),
        ("auto", "auto", False, None),
        ("fp32-1thread", "fp32", True, None),
        ("auto+encoder-fp32", "auto", False, "encoder"),
    ]
    plain = script.settings(argparse.Namespace(control=False, fp32_part=[]))
    assert [s.name for s in plain] == ["fp32", "auto"]


def test_a_held_part_runs_in_fp32_under_autocast_and_is_restored(script: ModuleType) -> None:
    torch.manual_seed(0)
    encoder = Encoder(2, hidden_dim=8, n_down=1, n_res_blocks=1).eval()
    u = torch.randn(2, 2, 5, 9)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert encoder(u).dtype == torch.bfloat16
        with script.held_in_fp32("encoder"):
            held = encoder(u)
        assert encoder(u).dtype == torch.bfloat16  # the class's forward is back
    assert held.dtype == torch.float32
    torch.testing.assert_close(held, encoder(u))  # exactly the fp32 forward


def test_the_child_sets_its_threads_then_trains_with_the_part_held(
    script: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = {}

    def fake_training(cfg: object, run_dir: Path) -> None:
        seen.update(threads=torch.get_num_threads(), held=Encoder.forward is not original, run_dir=run_dir)

    original = Encoder.forward
    monkeypatch.setattr(script, "train_stage1", fake_training)
    before = torch.get_num_threads()
    control = script.Setting("fp32-1thread", "fp32", one_thread=True)
    try:
        assert script.train_here(None, tmp_path, control, 1) >= 0
        assert seen == {"threads": 1, "held": False, "run_dir": tmp_path}
        script.train_here(None, tmp_path, script.Setting("auto+encoder-fp32", "auto", part="encoder"), 1)
        assert seen["held"] and Encoder.forward is original
    finally:
        torch.set_num_threads(before)
