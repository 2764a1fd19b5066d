"""The run directory: its file names, layout, status and the one reader/writer of each of its files.

Every module that reads or writes a run directory asks this one for the names and the error policy;
nothing else spells ``DONE.json`` or ``results.json``. Layout::

    <run>/config.yaml                 resolved RunConfig (:meth:`RunDir.read_config`)
    <run>/<stage>/metrics.jsonl       training log of stage1 / stage2
    <run>/<stage>/checkpoints/{last,final}.pt
    <run>/stage2/source.json          the stage-1 checkpoint the prior was trained on
    <run>/evaluation/                 figures of the evaluation
    <run>/results.json                every metric (:func:`update_results`)
    <run>/timings.json                seconds per step (:func:`read_timings`)
    <run>/report.md                   the run's report
    <run>/DONE.json | FAILED.json     finished (written last) | failed sweep cell (:func:`run_status`)
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from ncvqvae.config import RunConfig, from_dict, to_dict
from ncvqvae.data.generators import LEGACY_NAMES
from ncvqvae.errors import CheckpointError, DataError
from ncvqvae.home import atomic_write_json, atomic_write_text, file_lock

log = logging.getLogger(__name__)

CONFIG_NAME = "config.yaml"
RESULTS_NAME = "results.json"
DONE_NAME = "DONE.json"  # written last, atomically: the run (sweep cell) is finished
FAILED_NAME = "FAILED.json"  # a sweep cell raised: error and traceback
TIMINGS_NAME = "timings.json"  # wall-clock seconds per step, summed over the attempts that did work
MACHINE_NAME = "machine.json"  # per step: the device, processor and threads its last attempt ran on
REPORT_NAME = "report.md"
EVALUATION_DIR = "evaluation"  # the evaluation's figures
#: timings.json key suffix: when the running attempt of a step began (epoch seconds)
TIMING_STARTED_SUFFIX = ":started"


#: In ``<run>/stage2/``: the record of the stage-1 checkpoint the prior was trained on (see stage2.py).
STAGE2_SOURCE_FILE = "source.json"


def recorded_checkpoint(record: Mapping[str, Any], run_root: Path) -> Path | None:
    """The stage-1 checkpoint a stage-2 source record names, or ``None`` when it is not there.

    The path relative to the run directory is tried first, so that a moved tree of runs still finds its
    stage 1, then the absolute one.

    Args:
        record: a ``stage2/source.json`` record (``stage1_checkpoint``, ``stage1_checkpoint_relative``).
        run_root: the stage-2 run directory the relative path starts from.
    """
    candidates = []
    if record.get("stage1_checkpoint_relative"):
        candidates.append(Path(run_root) / record["stage1_checkpoint_relative"])
    if record.get("stage1_checkpoint"):
        candidates.append(Path(record["stage1_checkpoint"]))
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    return None


@dataclass
class RunDir:
    """A self-describing run directory.

    Layout::

        <root>/config.yaml        resolved RunConfig
        <root>/<stage>/metrics.jsonl
        <root>/<stage>/checkpoints/last.pt   (periodic; rewritten atomically)
        <root>/<stage>/checkpoints/final.pt  (written once the stage is finished)
        <root>/results.json
    """

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def results_path(self) -> Path:
        return self.root / RESULTS_NAME

    @property
    def evaluation_dir(self) -> Path:
        """``<root>/evaluation``: the evaluation's figures (not created here)."""
        return self.root / EVALUATION_DIR

    def stage_dir(self, stage: str) -> Path:
        path = self.root / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def metrics_path(self, stage: str) -> Path:
        return self.stage_dir(stage) / "metrics.jsonl"

    def checkpoint_path(self, stage: str, name: str = "last") -> Path:
        return self.stage_dir(stage) / "checkpoints" / f"{name}.pt"

    def is_finished(self, stage: str) -> bool:
        return (self.root / stage / "checkpoints" / "final.pt").is_file()

    @property
    def source_path(self) -> Path:
        """``stage2/source.json``: which stage-1 checkpoint the run's prior was trained on."""
        return self.root / "stage2" / STAGE2_SOURCE_FILE

    def recorded_stage1_checkpoint(self) -> Path | None:
        """The stage-1 checkpoint named by ``stage2/source.json`` (a run whose stage 1 lives elsewhere).

        Returns:
            The checkpoint file (resolved), or ``None`` when the run has no such record or the record
            names no checkpoint (a prior trained on a tokenizer passed without one).

        Raises:
            CheckpointError: the record is not valid JSON, or the checkpoint it names is missing.
        """
        if not self.source_path.is_file():
            return None
        try:
            record = json.loads(self.source_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{self.source_path}: not valid JSON ({err})") from err
        if not record.get("stage1_checkpoint"):
            return None
        found = recorded_checkpoint(record, self.root)
        if found is None:
            raise CheckpointError(
                f"{self.source_path}: the stage-1 checkpoint of this run is missing "
                f"({record['stage1_checkpoint']}, relative {record.get('stage1_checkpoint_relative')})"
            )
        return found

    def stage1_dir(self) -> Path:
        """The folder of the run's stage 1: ``<root>/stage1``, or the one ``stage2/source.json`` names."""
        if (self.root / "stage1" / "checkpoints").is_dir():
            return self.root / "stage1"
        recorded = self.recorded_stage1_checkpoint()
        return recorded.parent.parent if recorded is not None else self.root / "stage1"

    def write_config(self, cfg: RunConfig) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config_path, yaml.safe_dump(to_dict(cfg), sort_keys=False))

    def read_config(self) -> RunConfig:
        """The run's resolved config (``config.yaml``).

        A run of a built-in generator made before the generators got their ``gen-`` prefix names it
        ``twopatterns`` (``cbf``, ``syntheticcontrol``), today the archive's dataset; its checkpoints,
        whose ``data_stats`` then had no ``source``, tell such a run apart, and its config is read with
        the generator's name today (``gen-twopatterns``), so that it evaluates and reports as before.
        """
        if not self.config_path.is_file():
            raise CheckpointError(f"{self.root}: not a run directory (no config.yaml)")
        cfg = from_dict(RunConfig, yaml.safe_load(self.config_path.read_text()), source=str(self.config_path))
        renamed = LEGACY_NAMES.get(cfg.data.dataset)
        if renamed is not None and not Path(cfg.data.dataset).exists() and self._predates_generator_prefix():
            log.debug(
                "%s: dataset %r is the generator %r (a run made before the gen- prefix)",
                self.root,
                cfg.data.dataset,
                renamed,
            )
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dataset=renamed))
        return cfg

    def _predates_generator_prefix(self) -> bool:
        """Whether the run's first checkpoint found records data stats without ``source`` (older code)."""
        candidates = [
            self.root / stage / "checkpoints" / f"{name}.pt"
            for stage in ("stage1", "stage2")
            for name in ("final", "last")
        ]
        for path in candidates:
            if path.is_file():
                try:  # mmap: only the small data_stats entry is read, not the weights
                    checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
                except Exception:  # an unreadable checkpoint: its loader reports it when it is needed
                    return False
                stats = checkpoint.get("data_stats") if isinstance(checkpoint, dict) else None
                return isinstance(stats, dict) and "source" not in stats
        return False


def read_results(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's ``results.json`` (``{}`` when it has none yet): the one reader, with one error policy.

    Raises:
        DataError: the file is not valid JSON (named; it is never overwritten silently).
    """
    path = Path(run_dir) / RESULTS_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err}); move it away to rewrite it") from err


def update_results(run_dir: str | os.PathLike[str], key: str, value: dict[str, Any]) -> dict[str, Any]:
    """Set ``results.json[key] = value`` in a run directory, leaving every other key as it was.

    Read-modify-write under an inter-process file lock, written atomically.

    Returns:
        the whole results dict as written.
    """
    path = Path(run_dir) / RESULTS_NAME
    with file_lock(path):
        results = read_results(run_dir)
        results[key] = value
        atomic_write_json(path, results)
    return results


def read_raw_timings(run_dir: str | os.PathLike[str]) -> dict[str, float]:
    """``timings.json`` as written, with the start stamps of running attempts (empty when unreadable)."""
    path = Path(run_dir) / TIMINGS_NAME
    if not path.is_file():
        return {}
    try:
        return {k: float(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    except (ValueError, AttributeError):
        return {}


def read_timings(run_dir: str | os.PathLike[str]) -> dict[str, float]:
    """Seconds spent per step (``stage1``, ``stage2``, ``evaluation``), summed over attempts."""
    return {k: v for k, v in read_raw_timings(run_dir).items() if not k.endswith(TIMING_STARTED_SUFFIX)}


RUNS_DIR = Path("runs")  # where commands put a run directory when no --out is given


def dataset_slug(name: str) -> str:
    """A folder name for a dataset name or path (``data/my.npz`` → ``my``)."""
    stem = Path(name).stem if ("/" in name or os.sep in name or "." in name) else name
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", stem) or "dataset"


def default_run_dir(cfg: RunConfig, variant: str, *, legacy_stage1: bool = False) -> Path:
    """The run directory of ``cfg`` when none is given: ``runs/<dataset>-<variant>-<preset>-s<seed>``,
    e.g. ``runs/gen-twopatterns-vibcreg_warp-quick-s0`` (``custom`` when no preset was used).

    Args:
        cfg: the run's config.
        variant: its variant's table name (``experiments.variants.Variant.from_config(cfg).name``; the
            variants live above this module).
        legacy_stage1: ``train stage1`` named its runs ``runs/<dataset>-<method>[-<aug>]-s<seed>`` before
            both commands shared this name; such a directory of the same preset, when it exists and the
            new one does not, is kept (so that an interrupted run still resumes under its old name).
    """
    path = RUNS_DIR / f"{dataset_slug(cfg.data.dataset)}-{variant}-{cfg.preset or 'custom'}-s{cfg.seed}"
    if legacy_stage1 and not path.exists():
        parts = [dataset_slug(cfg.data.dataset), cfg.stage1.method]
        if cfg.stage1.method != "baseline":
            parts.append("+".join(cfg.stage1.augmentation.names) or "none")
        old = RunDir(RUNS_DIR / f"{'-'.join(parts)}-s{cfg.seed}")
        if old.config_path.is_file() and _recorded_preset(old) == cfg.preset:
            log.info("using the existing run directory %s (the name train stage1 gave before)", old.root)
            return old.root
    return path


def _recorded_preset(run: RunDir) -> str | None:
    try:
        return (yaml.safe_load(run.config_path.read_text(encoding="utf-8")) or {}).get("preset")
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def read_machine(run_dir: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """``machine.json``: per step, what it ran on (empty when the run has no record or it is unreadable)."""
    path = Path(run_dir) / MACHINE_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def record_machine(run_dir: str | os.PathLike[str], step: str, info: Mapping[str, Any]) -> None:
    """Note in ``machine.json`` what ``step`` runs on (the last attempt's machine wins)."""
    atomic_write_json(Path(run_dir) / MACHINE_NAME, {**read_machine(run_dir), step: dict(info)})


def run_status(run_dir: str | os.PathLike[str]) -> str:
    """``done``, ``failed``, ``partial`` (interrupted: it resumes) or ``pending`` (not started)."""
    run_dir = Path(run_dir)
    if (run_dir / DONE_NAME).is_file():
        return "done"
    if (run_dir / FAILED_NAME).is_file():
        return "failed"
    if any(run_dir.glob("*/checkpoints/*.pt")) or (run_dir / RESULTS_NAME).is_file():
        return "partial"
    return "pending"
