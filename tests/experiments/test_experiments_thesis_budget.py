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


def _kept_cell(kept: Path, where: str, evaluator: dict) -> Path:
    cell = kept / where
    cell.mkdir(parents=True)
    (cell / "results.json").write_text(json.dumps({"generation": {"evaluator": evaluator, "fid": 1.0}}))
    (cell / "DONE.json").write_text("{}")
    return cell


def test_rescore_runs_again_only_cells_another_evaluator_scored_and_keeps_the_old_files(
    driver: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, runs = tmp_path / "kept", tmp_path / "runs"
    stored = {"key": "aaaaaaaabbbbbbbb", "created": "2026-12-04T20:31:37"}
    entry = kept / "evaluators" / "DS"
    entry.mkdir(parents=True)
    (entry / "info.json").write_text(json.dumps(stored))
    (entry / "fcn.pt").write_bytes(b"weights")
    older = {"key": "aaaaaaaabbbbbbbb", "created": "2026-12-02T19:55:45"}
    old_cell = _kept_cell(kept, "token/DS/baseline/seed0", older)
    same_cell = _kept_cell(kept, "token/DS/baseline/seed1", stored)
    launched = []

    def fake_run(cmd: list[str], **_: object) -> None:  # a finished cell scored by the stored evaluator
        run_dir = Path(cmd[cmd.index("--out") + 1])
        launched.append(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "results.json").write_text(json.dumps({"generation": {"evaluator": stored, "fid": 2.0}}))
        (run_dir / "DONE.json").write_text("{}")

    monkeypatch.setattr(driver.subprocess, "run", fake_run)
    for seed in (0, 1):  # without --rescore, kept cells are never run again
        driver.run_cell(f"DS:baseline:{seed}", ["token"], 1, runs, kept, False, [])
    assert launched == []
    assert driver.scored_by_another(old_cell, kept, "DS")
    assert not driver.scored_by_another(same_cell, kept, "DS")

    for seed in (0, 1):
        driver.run_cell(f"DS:baseline:{seed}", ["token"], 1, runs, kept, False, [], rescore=True)
    assert launched == [runs / "token" / "DS" / "baseline" / "seed0"]  # seed 1 was scored by the stored one
    assert json.loads((old_cell / "results.json").read_text())["generation"]["fid"] == 2.0
    aside = tmp_path / "kept-superseded" / "token/DS/baseline/seed0" / "scored-aaaaaaaa-202612021955"
    assert sorted(p.name for p in aside.iterdir()) == ["DONE.json", "results.json"]
    assert json.loads((aside / "results.json").read_text())["generation"]["evaluator"] == older

    # rescored once: now the stored evaluator's, so a second --rescore skips it; a used run dir is refused
    driver.run_cell("DS:baseline:0", ["token"], 1, runs, kept, False, [], rescore=True)
    assert len(launched) == 1
    (old_cell / "results.json").write_text(json.dumps({"generation": {"evaluator": older}}))
    with pytest.raises(SystemExit, match="fresh run directory"):
        driver.run_cell("DS:baseline:0", ["token"], 1, runs, kept, False, [], rescore=True)
