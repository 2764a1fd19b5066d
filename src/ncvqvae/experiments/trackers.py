"""Optional experiment trackers: MLflow, Weights & Biases, TensorBoard.

Off by default. ``--tracker mlflow|wandb|tensorboard`` (config field ``tracker``) logs a run's metrics
through the chosen library, which is imported only then; a missing library gives one line saying how to
install it.

Design choice: the training loops know nothing of trackers. After each stage, the pipeline *replays* the
stage's ``metrics.jsonl`` into the tracker (:meth:`Tracker.replay_stage`), and logs the final summary at
the end. So the loops stay simple and tracker-free, the run directory stays the single source of truth,
and a tracker can be added to a finished run later by replaying its logs. The price: a stage's curves
appear when the stage ends, not live. ``<run>/tracker.json`` remembers the tracker's run id (an
interrupted run continues the same tracker run) and which stages were replayed (nothing is logged twice).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ncvqvae.config import RunConfig, to_dict
from ncvqvae.errors import ConfigError
from ncvqvae.home import atomic_write_json
from ncvqvae.training import read_metrics

TRACKERS = ("mlflow", "wandb", "tensorboard")
STATE_NAME = "tracker.json"
_SKIP = {"step", "epoch", "time", "event"}  # record fields that are coordinates, not metrics
_INSTALL = {"mlflow": "mlflow", "wandb": "wandb", "tensorboard": "tensorboard"}


class Tracker:
    """The tracker interface, and the do-nothing tracker used when none is asked for."""

    name = "none"

    def __init__(self, run_dir: str | Path | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.state: dict[str, Any] = _read_state(self.run_dir) if self.run_dir is not None else {}

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        """Log scalar metrics at ``step``."""

    def close(self) -> None:
        """Flush and end the tracker run."""

    def replay_stage(self, run_dir: str | Path, stage: str) -> int:
        """Log every record of ``<run_dir>/<stage>/metrics.jsonl`` once; return the number of records logged.

        Metric names are ``<stage>/<field>`` (``stage1/loss``) or ``<stage>/<event>/<field>`` for
        per-epoch and evaluation records (``stage1/epoch/loss``).
        """
        if self.name == "none" or stage in self.state.get("replayed", []):
            return 0
        records = read_metrics(Path(run_dir) / stage / "metrics.jsonl")
        for record in records:
            prefix = f"{stage}/{record['event']}/" if record.get("event") else f"{stage}/"
            metrics = {prefix + k: float(v) for k, v in record.items() if k not in _SKIP and _is_number(v)}
            if metrics:
                self.log(metrics, int(record.get("step", 0)))
        self.state.setdefault("replayed", []).append(stage)
        self._save_state()
        return len(records)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        """Log the run's final numeric results as ``final/<name>``."""
        if self.name == "none" or self.state.get("summary_logged"):
            return
        metrics = {f"final/{k}": float(v) for k, v in summary.items() if _is_number(v)}
        if metrics:
            self.log(metrics, 0)
        self.state["summary_logged"] = True
        self._save_state()

    def _save_state(self) -> None:
        if self.run_dir is not None:
            atomic_write_json(self.run_dir / STATE_NAME, {"name": self.name, **self.state})


def _read_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / STATE_NAME
    if not path.is_file():
        return {}
    state = json.loads(path.read_text(encoding="utf-8"))
    state.pop("name", None)
    return state


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _flat_params(cfg: RunConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(f"{prefix}{key}.", value)
        else:
            out[prefix.rstrip(".")] = node if isinstance(node, int | float | str | bool) else str(node)

    walk("", to_dict(cfg))
    return out


def _import(module: str, tracker: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(
            f"--tracker {tracker} needs the '{_INSTALL[tracker]}' package: pip install {_INSTALL[tracker]} "
            f"(or pip install 'ncvqvae[trackers]')"
        ) from err


class MLflowTracker(Tracker):
    """Logs to MLflow (``MLFLOW_TRACKING_URI``, default ``./mlruns``); one MLflow run per ncvqvae run."""

    name = "mlflow"

    def __init__(self, run_dir: str | Path, cfg: RunConfig) -> None:
        super().__init__(run_dir)
        self.mlflow = _import("mlflow", "mlflow")
        run = self.mlflow.start_run(run_id=self.state.get("run_id"), run_name=Path(run_dir).name)
        if "run_id" not in self.state:
            self.state["run_id"] = run.info.run_id
            self.mlflow.log_params(_flat_params(cfg))
            self._save_state()

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.mlflow.log_metrics(dict(metrics), step=step)

    def close(self) -> None:
        self.mlflow.end_run()


class WandbTracker(Tracker):
    """Logs to Weights & Biases (project ``WANDB_PROJECT``, default ``ncvqvae``); resumes its run by id."""

    name = "wandb"

    def __init__(self, run_dir: str | Path, cfg: RunConfig) -> None:
        import os

        super().__init__(run_dir)
        self.wandb = _import("wandb", "wandb")
        run_id = self.state.get("run_id") or self.wandb.util.generate_id()
        self.run = self.wandb.init(
            project=os.environ.get("WANDB_PROJECT", "ncvqvae"),
            id=run_id,
            resume="allow",
            name=Path(run_dir).name,
            config=to_dict(cfg),
            dir=str(run_dir),
        )
        # Both stages count steps from 0; a custom step metric keeps W&B from dropping "backwards" steps.
        self.run.define_metric("*", step_metric="trainer_step")
        if "run_id" not in self.state:
            self.state["run_id"] = run_id
            self._save_state()

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self.run.log({**metrics, "trainer_step": step})

    def close(self) -> None:
        self.run.finish()


class TensorBoardTracker(Tracker):
    """Writes TensorBoard event files to ``<run>/tensorboard`` (``tensorboard --logdir runs``)."""

    name = "tensorboard"

    def __init__(self, run_dir: str | Path, cfg: RunConfig) -> None:
        super().__init__(run_dir)
        _import("tensorboard", "tensorboard")  # torch's writer needs it; say so in one line
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=step)

    def close(self) -> None:
        self.writer.close()


_CLASSES: dict[str, type[Tracker]] = {
    "mlflow": MLflowTracker,
    "wandb": WandbTracker,
    "tensorboard": TensorBoardTracker,
}


def open_tracker(name: str | None, run_dir: str | Path, cfg: RunConfig) -> Tracker:
    """The tracker called ``name`` for the run in ``run_dir`` (a do-nothing :class:`Tracker` for ``None``).

    Raises:
        ConfigError: for an unknown tracker name or a tracker whose library is not installed.
    """
    if not name or name == "none":
        return Tracker(run_dir)
    if name not in _CLASSES:
        raise ConfigError(f"field 'tracker': unknown tracker {name!r}; expected one of {', '.join(TRACKERS)}")
    return _CLASSES[name](run_dir, cfg)
