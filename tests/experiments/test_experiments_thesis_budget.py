"""benchmarks/thesis_budget.py: the shared evaluator (record and weights) kept, an old record set aside."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture(scope="module")
def driver(load_benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return load_benchmark("thesis_budget")


def _cached_evaluator(root: Path, key: str, created: str = "2026-12-04T20:00:00") -> dict:
    """A finished run's evaluator entry pointing at a cache folder holding weights and info."""
    cache = root / "cache" / key
    cache.mkdir(parents=True)
    info = {"key": key, "dataset": "DS", "test_accuracy": 0.9, "created": created}
    (cache / "fcn.pt").write_bytes(b"weights " + key.encode())
    (cache / "info.json").write_text(json.dumps(info))
    return {**info, "path": str(cache)}


def _finished_run(root: Path, evaluator: dict) -> Path:
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps({"generation": {"evaluator": evaluator}}))
    return run_dir


def test_a_record_without_weights_is_kept_aside_when_another_evaluator_is_stored(
    driver: ModuleType, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    entry = kept / "evaluators" / "DS"
    entry.mkdir(parents=True)
    old = {"key": "0123456789abcdef", "test_accuracy": 0.93}
    (entry / "info.json").write_text(json.dumps(old))  # weights gone with the old machine
    assert driver.stored_evaluator(kept, "DS") is None

    run_dir = _finished_run(tmp_path, _cached_evaluator(tmp_path, "fedcba9876543210"))
    files = driver.keep_evaluator(run_dir, kept, "DS")

    aside = entry / "superseded-01234567.json"
    assert set(files) == {entry / "info.json", entry / "fcn.pt", aside}  # the weights are committed
    assert json.loads(aside.read_text()) == old  # the old record is not lost
    assert json.loads((entry / "info.json").read_text())["key"] == "fedcba9876543210"
    assert (entry / "fcn.pt").read_bytes() == b"weights fedcba9876543210"
    assert driver.stored_evaluator(kept, "DS") is not None
    # now stored: a later cell changes nothing
    assert driver.keep_evaluator(run_dir, kept, "DS") == []


def test_the_same_record_written_again_sets_nothing_aside(driver: ModuleType, tmp_path: Path) -> None:
    kept = tmp_path / "kept"
    entry = kept / "evaluators" / "DS"
    entry.mkdir(parents=True)
    evaluator = _cached_evaluator(tmp_path, "aaaaaaaabbbbbbbb")
    (entry / "info.json").write_text(json.dumps({k: v for k, v in evaluator.items() if k != "path"}))

    run_dir = _finished_run(tmp_path, evaluator)
    assert driver.keep_evaluator(run_dir, kept, "DS") == [entry / "info.json", entry / "fcn.pt"]
    assert sorted(p.name for p in entry.iterdir()) == ["fcn.pt", "info.json"]  # nothing set aside


def test_one_recipe_trained_again_elsewhere_keeps_the_old_record(driver: ModuleType, tmp_path: Path) -> None:
    # same key (same recipe and data) but other weights: the first record must not be overwritten
    kept = tmp_path / "kept"
    entry = kept / "evaluators" / "DS"
    entry.mkdir(parents=True)
    old = {"key": "aaaaaaaabbbbbbbb", "test_accuracy": 0.94, "created": "2026-12-02T19:55:45"}
    (entry / "info.json").write_text(json.dumps(old))

    run_dir = _finished_run(tmp_path, _cached_evaluator(tmp_path, "aaaaaaaabbbbbbbb"))
    aside = entry / "superseded-aaaaaaaa-202612021955.json"
    assert set(driver.keep_evaluator(run_dir, kept, "DS")) == {entry / "info.json", entry / "fcn.pt", aside}
    assert json.loads(aside.read_text()) == old
    assert json.loads((entry / "info.json").read_text())["created"] == "2026-12-04T20:00:00"


def test_git_keeps_the_shared_evaluators_weights_and_no_other_weights() -> None:
    root = Path(__file__).resolve().parents[2]
    paths = [
        "benchmarks/results/thesis-budget/evaluators/ECG5000/fcn.pt",
        "benchmarks/results/thesis-budget/token/ECG5000/baseline/seed0/stage1/checkpoints/final.pt",
        "runs/x/fcn.pt",
    ]
    out = subprocess.run(
        ["git", "check-ignore", "--no-index", "--", *paths], cwd=root, capture_output=True, text=True
    )
    if out.returncode == 128:
        pytest.skip(f"not a git checkout: {out.stderr.strip()}")
    assert out.stdout.split() == paths[1:]
