"""Optional trackers: imported only when asked, a clear line when missing, metrics replayed once.

The tracker libraries are not installed in CI; a small fake ``mlflow`` module records the calls, which
tests the replay logic (names, steps, run resumption) without the library.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from ncvqvae.config import RunConfig
from ncvqvae.errors import ConfigError
from ncvqvae.experiments.trackers import STATE_NAME, Tracker, open_tracker
from ncvqvae.training import MetricsLog


class FakeMlflow(types.ModuleType):
    """Records start_run / log_params / log_metrics / end_run calls like a tiny MLflow."""

    def __init__(self) -> None:
        super().__init__("mlflow")
        self.calls: list[tuple] = []
        self.runs = 0

    def start_run(self, run_id=None, run_name=None):  # noqa: ANN001, ANN201
        self.runs += 1
        self.calls.append(("start", run_id, run_name))
        return types.SimpleNamespace(info=types.SimpleNamespace(run_id=run_id or f"run{self.runs}"))

    def log_params(self, params):  # noqa: ANN001, ANN201
        self.calls.append(("params", dict(params)))

    def log_metrics(self, metrics, step):  # noqa: ANN001, ANN201
        self.calls.append(("metrics", dict(metrics), step))

    def end_run(self):  # noqa: ANN201
        self.calls.append(("end",))


def _write_metrics(run_dir: Path) -> None:
    with MetricsLog(run_dir / "stage1" / "metrics.jsonl") as log:
        log.write({"step": 1, "epoch": 0, "lr": 1e-3, "loss": 2.0, "note": "text"})
        log.write({"step": 2, "epoch": 0, "lr": 1e-3, "loss": 1.5})
        log.write({"step": 2, "epoch": 0, "event": "epoch", "loss": 1.75})


def test_no_tracker_is_a_silent_no_op(tmp_path: Path) -> None:
    tracker = open_tracker(None, tmp_path, RunConfig())
    assert type(tracker) is Tracker
    _write_metrics(tmp_path)
    assert tracker.replay_stage(tmp_path, "stage1") == 0
    tracker.log_summary({"fid": 1.0})
    tracker.close()
    assert not (tmp_path / STATE_NAME).exists()


def test_replay_logs_each_record_once_and_resumes_the_same_tracker_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeMlflow()
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    _write_metrics(tmp_path)
    tracker = open_tracker("mlflow", tmp_path, RunConfig(seed=7))
    assert tracker.replay_stage(tmp_path, "stage1") == 3
    tracker.close()
    metrics = [c for c in fake.calls if c[0] == "metrics"]
    assert metrics == [
        ("metrics", {"stage1/lr": 1e-3, "stage1/loss": 2.0}, 1),
        ("metrics", {"stage1/lr": 1e-3, "stage1/loss": 1.5}, 2),
        ("metrics", {"stage1/epoch/loss": 1.75}, 2),
    ]
    params = next(c[1] for c in fake.calls if c[0] == "params")
    assert params["seed"] == 7 and params["stage1.method"] == "vibcreg"
    # an interrupted pipeline starts again: same MLflow run, stage 1 not logged twice, the summary once
    again = open_tracker("mlflow", tmp_path, RunConfig(seed=7))
    assert again.replay_stage(tmp_path, "stage1") == 0
    again.log_summary({"fid": 1.25, "dataset": "x", "knn": None})
    again.log_summary({"fid": 1.25})
    again.close()
    starts = [c for c in fake.calls if c[0] == "start"]
    assert starts == [("start", None, tmp_path.name), ("start", "run1", tmp_path.name)]
    assert [c for c in fake.calls if c[0] == "metrics"][-1] == ("metrics", {"final/fid": 1.25}, 0)
    assert sum(1 for c in fake.calls if c[0] == "params") == 1


@pytest.mark.parametrize(
    ("name", "package"), [("mlflow", "mlflow"), ("wandb", "wandb"), ("tensorboard", "tensorboard")]
)
def test_a_missing_tracker_library_says_how_to_install_it(
    name: str, package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, package, None)  # makes the import fail like an absent package
    with pytest.raises(
        ConfigError, match=rf"--tracker {name} needs the '{package}' package: pip install {package}"
    ):
        open_tracker(name, tmp_path, RunConfig())


def test_an_unknown_tracker_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown tracker 'comet'"):
        open_tracker("comet", tmp_path, RunConfig())
