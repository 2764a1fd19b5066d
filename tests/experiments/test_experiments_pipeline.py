"""Pipeline bookkeeping: timings across kills and what a finished run is compared on.

The pipeline end to end (train, evaluate, report, resume) is tested through the CLI in
tests/cli/test_cli_run.py and through sweeps in test_experiments_sweep_e2e.py.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ncvqvae.config import RunConfig, replace, to_dict
from ncvqvae.experiments import pipeline
from ncvqvae.experiments.pipeline import TIMINGS_NAME, _timed, read_timings, result_config, run_pipeline
from ncvqvae.rundir import DONE_NAME, read_machine
from ncvqvae.training import machine_info


def test_timings_add_up_over_attempts(tmp_path: Path) -> None:
    with _timed(tmp_path, "stage1"):
        pass
    with _timed(tmp_path, "stage1"):
        pass
    with _timed(tmp_path, "stage1", skip=True):  # a finished step adds nothing
        pass
    timings = read_timings(tmp_path)
    assert set(timings) == {"stage1"} and 0.0 <= timings["stage1"] < 1.0


def test_a_killed_attempt_counts_up_to_its_last_checkpoint(tmp_path: Path) -> None:
    start = 1_000_000.0
    (tmp_path / TIMINGS_NAME).write_text(json.dumps({"stage1": 2.0, "stage1:started": start}))
    checkpoint = tmp_path / "stage1" / "checkpoints" / "final.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"x")
    os.utime(checkpoint, (start + 5.0, start + 5.0))  # the killed attempt wrote its checkpoint 5 s in
    with _timed(tmp_path, "stage1", skip=True):
        pass
    assert read_timings(tmp_path) == {"stage1": pytest.approx(7.0)}
    assert "stage1:started" not in json.loads((tmp_path / TIMINGS_NAME).read_text())


def test_an_interrupted_step_keeps_its_start_for_the_next_attempt(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), _timed(tmp_path, "evaluation"):
        raise KeyboardInterrupt
    assert "evaluation:started" in json.loads((tmp_path / TIMINGS_NAME).read_text())
    assert read_timings(tmp_path) == {}


def test_result_config_ignores_bookkeeping_fields_only() -> None:
    cfg = RunConfig()
    same = replace(
        cfg, progress=False, device="cpu", tracker="mlflow", preset="quick", **{"data.data_dir": "/x"}
    )
    assert result_config(same) == result_config(cfg)
    assert result_config(replace(cfg, **{"evaluation.cas_epochs": 3})) != result_config(cfg)
    assert result_config(replace(cfg, seed=1)) != result_config(cfg)
    for changed in ({"evaluation.figures": False}, {"stage2.guidance": 2.0}, {"stage1.max_steps": 5}):
        assert result_config(replace(cfg, **changed)) != result_config(cfg), changed
    # the logging cadence changes no result either
    assert result_config(
        replace(cfg, **{"stage1.log_every": 1, "stage2.checkpoint_every": 3})
    ) == result_config(cfg)


def test_a_done_json_of_the_older_layout_still_marks_the_run_finished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DONE.json of before the field tags held every field but progress/device/tracker/preset/data_dir."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished run was run again")

    monkeypatch.setattr(pipeline, "open_tracker", refuse)
    cfg = replace(RunConfig(), **{"data.n_train": 8})
    old = {k: v for k, v in to_dict(cfg).items() if k not in ("progress", "device", "tracker", "preset")}
    old["data"] = {k: v for k, v in old["data"].items() if k != "data_dir"}
    del old["evaluation"]["utility_steps"], old["evaluation"]["evaluator_path"]  # added since, at defaults
    (tmp_path / DONE_NAME).write_text(json.dumps({"summary": {"finished": "before"}, "config": old}))
    assert run_pipeline(replace(cfg, device="cpu"), tmp_path, progress=False) == {"finished": "before"}
    with pytest.raises(AssertionError, match="run again"):  # a new field away from its default: not finished
        run_pipeline(replace(cfg, **{"evaluation.utility_steps": 5}), tmp_path, progress=False)
    with pytest.raises(AssertionError, match="run again"):  # another result: the run is not finished
        run_pipeline(replace(cfg, seed=1), tmp_path, progress=False)


def test_each_step_that_works_records_its_machine(tmp_path: Path) -> None:
    machine = machine_info("cpu")
    with _timed(tmp_path, "stage1", machine=machine):
        pass
    with _timed(tmp_path, "stage2", skip=True, machine={**machine, "threads": 99}):  # no work: no record
        pass
    recorded = read_machine(tmp_path)
    assert set(recorded) == {"stage1"}
    assert recorded["stage1"]["device"] == "cpu" and recorded["stage1"]["threads"] >= 1
    assert recorded["stage1"]["processor"]  # a model name, never empty


def test_an_unreadable_machine_record_reads_as_none(tmp_path: Path) -> None:
    (tmp_path / "machine.json").write_text("{not json")
    assert read_machine(tmp_path) == {}
