"""Sweep specs, cell status, skip/resume/failure bookkeeping and the local executors.

These tests inject a small cell function (no training) so that the bookkeeping is tested on its own; the
real end-to-end sweeps (local, kill -9, Ray) are in test_experiments_sweep_e2e.py.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from ncvqvae.config import RunConfig
from ncvqvae.errors import ConfigError
from ncvqvae.experiments.pipeline import DONE_NAME
from ncvqvae.experiments.sweep import (
    FAILED_NAME,
    SPEC_NAME,
    STATUS_NAME,
    Cell,
    SweepProgress,
    Variant,
    cell_status,
    list_sweeps,
    load_sweep,
    plan_sweep,
    run_sweep,
    spec_from_dict,
    with_overrides,
)
from ncvqvae.home import atomic_write_json


def fake_cell(cfg: RunConfig, run_dir: Path, *, progress: bool = False) -> dict:
    """Stands in for run_pipeline: counts its calls, fails on seed 13, marks the cell done as it does."""
    calls = run_dir / "calls.txt"
    calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
    if cfg.seed == 13:
        raise RuntimeError("seed 13 is unlucky")
    summary = {"dataset": cfg.data.dataset, "method": cfg.stage1.method, "seed": cfg.seed, "pid": os.getpid()}
    atomic_write_json(run_dir / DONE_NAME, {"summary": summary})
    return summary


def _spec(**extra: object):
    data = {
        "name": "t",
        "preset": "smoke",
        "datasets": ["gen-twopatterns", "gen-cbf"],
        "variants": ["baseline", "bt_warp"],
        "seeds": [0, 1],
    }
    data.update(extra)
    return spec_from_dict(data, source="test.yaml")


def _calls(run_dir: Path) -> int:
    path = run_dir / "calls.txt"
    return len(path.read_text()) if path.exists() else 0


# ------------------------------------------------------------------------------------------------ specs


@pytest.mark.parametrize(
    ("text", "name", "method", "augs"),
    [
        ("baseline", "baseline", "baseline", ()),
        ("bt_warp", "bt_warp", "barlowtwins", ("warp",)),
        ("barlowtwins-slice", "bt_slice", "barlowtwins", ("slice",)),
        ("Barlow_Twins_gauss", "bt_gauss", "barlowtwins", ("gauss",)),
        ("vibcreg_warp+gauss", "vibcreg_warp+gauss", "vibcreg", ("warp", "gauss")),
        ("VIbCReg:slice", "vibcreg_slice", "vibcreg", ("slice",)),
    ],
)
def test_variant_names_parse_to_the_anchor_names(text: str, name: str, method: str, augs: tuple) -> None:
    variant = Variant.parse(text)
    assert (variant.name, variant.method, variant.augmentations) == (name, method, augs)
    assert Variant.parse(variant.name) == variant  # the canonical name reads back


@pytest.mark.parametrize("text", ["simclr_warp", "bt_flip", "vibcreg", "bt_"])
def test_bad_variants_are_refused_with_a_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="test.yaml"):
        Variant.parse(text, source="test.yaml")


def test_methods_times_augmentations_span_the_thesis_variants_in_table_order() -> None:
    spec = spec_from_dict(
        {
            "datasets": ["gen-twopatterns"],
            "methods": ["baseline", "barlowtwins", "vibcreg"],
            "augmentations": ["warp", "slice", "gauss"],
            "seeds": [0],
        },
        source="grid.yaml",
    )
    names = [v.name for v in spec.variants]
    assert names == [
        "baseline",
        "bt_warp",
        "bt_slice",
        "bt_gauss",
        "vibcreg_warp",
        "vibcreg_slice",
        "vibcreg_gauss",
    ]


def test_cell_config_layers_preset_overrides_and_cell_fields() -> None:
    spec = _spec(overrides={"stage1.lr": 3e-4, "stage2": {"depth": 1}, "data.n_train": 40})
    cell = Cell("gen-cbf", Variant.parse("bt_warp"), 1)
    cfg = spec.cell_config(cell)
    assert cfg.preset == "smoke" and cfg.stage1.max_steps == 3  # from the preset
    assert cfg.stage1.lr == pytest.approx(3e-4) and cfg.stage2.depth == 1 and cfg.data.n_train == 40
    assert (cfg.data.dataset, cfg.stage1.method, cfg.stage1.augmentation.names, cfg.seed) == (
        "gen-cbf",
        "barlowtwins",
        ("warp",),
        1,
    )
    assert cell.key == "gen-cbf/bt_warp/seed1"


def test_dataset_overrides_apply_to_that_dataset_only_and_set_wins() -> None:
    spec = _spec(
        overrides={"stage1.max_steps": 40, "stage2.depth": 1},
        dataset_overrides={"gen-cbf": {"stage1.max_steps": 20, "evaluation": {"evaluator_epochs": 7}}},
    )
    cbf = spec.cell_config(Cell("gen-cbf", Variant.parse("bt_warp"), 0))
    tp = spec.cell_config(Cell("gen-twopatterns", Variant.parse("bt_warp"), 0))
    assert (cbf.stage1.max_steps, cbf.evaluation.evaluator_epochs, cbf.stage2.depth) == (20, 7, 1)
    assert tp.stage1.max_steps == 40 and tp.evaluation.evaluator_epochs != 7 and tp.stage2.depth == 1
    assert spec_from_dict(spec.to_dict()).dataset_overrides == spec.dataset_overrides  # round trip
    forced = with_overrides(spec, ["stage1.max_steps=2"])  # --set beats both layers
    assert {forced.cell_config(c).stage1.max_steps for c in forced.cells()} == {2}
    with pytest.raises(ConfigError, match=r"test.yaml.*dataset_overrides' names dataset\(s\) ECG5000"):
        _spec(dataset_overrides={"ECG5000": {"stage1.max_steps": 1}})
    with pytest.raises(ConfigError, match=r"test.yaml \(dataset_overrides.gen-cbf\).*stage1.nope"):
        _spec(dataset_overrides={"gen-cbf": {"stage1.nope": 1}})


def test_spec_errors_name_the_file_and_the_field() -> None:
    with pytest.raises(ConfigError, match=r"test.yaml.*unknown key\(s\) dataset"):
        spec_from_dict({"dataset": ["x"], "seeds": [0]}, source="test.yaml")
    with pytest.raises(ConfigError, match=r"test.yaml.*stage1.nope"):
        _spec(overrides={"stage1.nope": 1})
    with pytest.raises(ConfigError, match="seeds"):
        _spec(seeds=["a"])
    with pytest.raises(ConfigError, match="share a run directory"):
        _spec(seeds=[0, 0])
    with pytest.raises(ConfigError, match="executor.name"):
        _spec(executor={"name": "slurm"})


def test_shipped_sweeps_load_with_the_thesis_grid_sizes() -> None:
    assert {"thesis", "thesis-offline", "demo"} <= set(list_sweeps())
    thesis = load_sweep("thesis")
    assert (len(thesis.datasets), len(thesis.variants), len(thesis.seeds)) == (13, 7, 4)
    assert len(thesis.cells()) == 364 and thesis.preset == "thesis"
    offline = load_sweep("thesis-offline")
    assert set(offline.datasets) < set(thesis.datasets) | {"gen-twopatterns"}
    assert len(offline.variants) == 7 and len(offline.seeds) == 4


def test_spec_round_trips_through_the_sweep_directory(tmp_path: Path) -> None:
    spec = _spec(overrides={"stage1.lr": 3e-4})
    run_sweep(spec, tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=None)
    again = load_sweep(tmp_path)  # a sweep directory reads back its spec (resume by directory)
    assert again.cells() == spec.cells() and again.overrides == spec.overrides
    changed = with_overrides(again, ["stage2.depth=1"], workers=2)
    assert changed.executor.workers == 2 and changed.cell_config(changed.cells()[0]).stage2.depth == 1
    assert (tmp_path / SPEC_NAME).is_file()


# ------------------------------------------------------------------------------------------------ running


def test_sweep_runs_every_cell_once_and_skips_finished_cells(tmp_path: Path) -> None:
    spec = _spec()
    overview = run_sweep(spec, tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=None)
    assert overview["done"] == 8 and overview["failed"] == 0
    for cell in spec.cells():
        assert cell_status(cell.run_dir(tmp_path)) == "done" and _calls(cell.run_dir(tmp_path)) == 1
    again = run_sweep(spec, tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=None)
    assert again["done"] == 8 and again["results"] == []  # nothing ran
    assert all(_calls(c.run_dir(tmp_path)) == 1 for c in spec.cells())
    status = json.loads((tmp_path / STATUS_NAME).read_text())
    assert status["done"] == 8 and len(status["cells"]) == 8


def test_failures_are_recorded_and_do_not_stop_the_other_cells(tmp_path: Path) -> None:
    spec = _spec(seeds=[0, 13])
    overview = run_sweep(spec, tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=None)
    assert (overview["done"], overview["failed"]) == (4, 4)
    failed = [c for c in spec.cells() if c.seed == 13]
    record = json.loads((failed[0].run_dir(tmp_path) / FAILED_NAME).read_text())
    assert record["error"] == "RuntimeError: seed 13 is unlucky" and "Traceback" in record["traceback"]
    # without --retry-failed a failed cell is listed and skipped
    plan = plan_sweep(spec, tmp_path)
    assert {row["action"] for row in plan.rows() if row["status"] == "failed"} == {
        "skip (failed; --retry-failed to rerun)"
    }
    assert all("unlucky" in row["error"] for row in plan.rows() if row["status"] == "failed")
    run_sweep(spec, tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=None)
    assert all(_calls(c.run_dir(tmp_path)) == 1 for c in failed)
    # with it, the failed cells run again (and still fail here); the finished ones are not touched
    run_sweep(spec, tmp_path, retry_failed=True, progress=False, cell_fn=fake_cell, evaluator_fn=None)
    assert all(_calls(c.run_dir(tmp_path)) == 2 for c in failed)
    assert all(_calls(c.run_dir(tmp_path)) == 1 for c in spec.cells() if c.seed == 0)


def test_dry_run_plan_reads_status_from_the_run_directories(tmp_path: Path) -> None:
    spec = _spec()
    cells = spec.cells()
    atomic_write_json(cells[0].run_dir(tmp_path) / DONE_NAME, {"summary": {}})
    partial = cells[1].run_dir(tmp_path) / "stage1" / "checkpoints" / "last.pt"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x")
    atomic_write_json(cells[2].run_dir(tmp_path) / FAILED_NAME, {"error": "boom"})
    plan = plan_sweep(spec, tmp_path, retry_failed=True)
    actions = [row["action"] for row in plan.rows()]
    assert actions[:4] == ["skip (done)", "resume", "retry", "run"]
    assert [c.key for c in plan.to_run()] == [c.key for c in cells[1:]]
    assert not (tmp_path / SPEC_NAME).exists()  # planning writes nothing


def test_evaluators_are_prepared_once_per_dataset_before_the_cells(tmp_path: Path) -> None:
    spec = _spec()
    seen: list[tuple[str, int]] = []

    def evaluator(cfg: RunConfig) -> None:
        seen.append((cfg.data.dataset, sum(cell_status(c.run_dir(tmp_path)) == "done" for c in spec.cells())))

    for cell in spec.cells():
        if cell.dataset == "gen-cbf":  # every gen-cbf cell is finished: its evaluator is not needed
            atomic_write_json(cell.run_dir(tmp_path) / DONE_NAME, {"summary": {}})
    run_sweep(spec, tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=evaluator)
    assert seen == [("gen-twopatterns", 4)]  # once, and before any gen-twopatterns cell ran


def test_worker_processes_run_cells_in_parallel_and_skip_on_rerun(tmp_path: Path) -> None:
    spec = _spec(seeds=[0])
    spec = with_overrides(spec, workers=2)
    overview = run_sweep(spec, tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=None)
    assert overview["done"] == 4
    pids = {json.loads((c.run_dir(tmp_path) / DONE_NAME).read_text())["summary"]["pid"] for c in spec.cells()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # ran in the worker processes
    assert run_sweep(spec, tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=None)["results"] == []


def interrupted_cell(cfg: RunConfig, run_dir: Path, *, progress: bool = False) -> dict:
    """Marks its cell as started, then gets Ctrl-C (SIGINT) in its worker process, as every worker does."""
    (run_dir / "calls.txt").write_text("x")
    time.sleep(0.5)  # both workers have taken a cell, and the pool has queued the next ones
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)
    raise AssertionError("SIGINT did not interrupt the cell")


def test_ctrl_c_stops_the_worker_processes_before_the_queued_cells(tmp_path: Path) -> None:
    spec = with_overrides(_spec(seeds=[0]), workers=2)  # 4 cells; the pool queues 3 beyond the running ones
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, tmp_path, progress=False, cell_fn=interrupted_cell, evaluator_fn=None)
    assert sum(_calls(c.run_dir(tmp_path)) for c in spec.cells()) <= 2


def test_a_cell_locked_by_another_process_is_not_run_twice(tmp_path: Path) -> None:
    from ncvqvae.experiments.sweep import run_cell
    from ncvqvae.home import file_lock

    spec = _spec(seeds=[0])
    cell = spec.cells()[0]
    run_dir = cell.run_dir(tmp_path)
    run_dir.mkdir(parents=True)
    cfg = spec.cell_config(cell)
    from ncvqvae.config import to_dict

    with file_lock(run_dir / "cell"):
        busy = run_cell(to_dict(cfg), str(run_dir), cell_fn=fake_cell, wait_for_lock=False)
        assert busy["status"] == "busy" and _calls(run_dir) == 0
    assert run_cell(to_dict(cfg), str(run_dir), cell_fn=fake_cell)["status"] == "done"
    assert run_cell(to_dict(cfg), str(run_dir), cell_fn=fake_cell)["status"] == "skipped"
    assert _calls(run_dir) == 1


def test_progress_overview_counts_and_eta(tmp_path: Path) -> None:
    progress = SweepProgress(
        tmp_path,
        total=4,
        slots=2,
        enabled=False,
        statuses={"a": "done", "b": "pending", "c": "pending", "d": "pending"},
    )
    assert progress.eta_seconds() is None
    progress.started("b")
    progress.started("c")
    assert progress.summary()["running"] == 2
    progress.finished("b", "done", 10.0)
    progress.finished("c", "failed", 1.0)
    info = progress.summary()
    assert (info["done"], info["failed"], info["running"], info["pending"]) == (2, 1, 0, 1)
    assert info["eta_s"] == pytest.approx(1 * 10.0 / 2)
    assert json.loads((tmp_path / STATUS_NAME).read_text())["cells"]["c"] == "failed"


def test_a_sweep_directory_refuses_other_settings_but_accepts_a_bigger_grid(tmp_path: Path) -> None:
    run_sweep(_spec(seeds=[0]), tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=None)
    with pytest.raises(ConfigError, match=r"other settings \(overrides: saved"):
        run_sweep(_spec(seeds=[0], overrides={"stage1.lr": 0.1}), tmp_path, progress=False, cell_fn=fake_cell)
    with pytest.raises(ConfigError, match=r"dataset_overrides.gen-cbf: saved None, now \{'stage1'"):
        run_sweep(_spec(seeds=[0], dataset_overrides={"gen-cbf": {"stage1.lr": 0.1}}), tmp_path,
                  progress=False, cell_fn=fake_cell)
    # a dataset the saved sweep did not run may bring its own overrides
    grid = {"datasets": ["gen-twopatterns", "gen-cbf", "gen-syntheticcontrol"], "seeds": [0]}
    run_sweep(_spec(**grid, dataset_overrides={"gen-syntheticcontrol": {"stage1.lr": 0.1}}), tmp_path,
              progress=False, cell_fn=fake_cell, evaluator_fn=None)
    with pytest.raises(ConfigError, match="preset: saved 'smoke', now 'quick'"):
        run_sweep(_spec(seeds=[0], preset="quick"), tmp_path, progress=False, cell_fn=fake_cell)
    grown = run_sweep(_spec(seeds=[0, 1]), tmp_path, progress=False, cell_fn=fake_cell, evaluator_fn=None)
    assert grown["done"] == 8 and len(grown["results"]) == 4  # only the new seed ran
