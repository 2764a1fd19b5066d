"""Sweeps: a grid of (dataset, variant, seed) cells that never redoes or loses work.

A sweep file (YAML) names datasets, variants (or methods × augmentations), seeds, a preset and config
overrides. Every cell gets its own run directory ``<sweep_dir>/<dataset>/<variant>/seed<k>/`` and its
status is read from that directory alone, so a sweep can be stopped anywhere (Ctrl-C, ``kill -9``, a
lost Ray node) and started again:

* ``DONE.json`` (written atomically by :func:`ncvqvae.experiments.pipeline.run_pipeline` as its very last
  step): the cell is finished and is skipped;
* ``FAILED.json``: the cell raised; the error and traceback are recorded, other cells go on, and the cell
  is skipped until ``retry_failed`` is asked for;
* checkpoints but no ``DONE.json``: the cell was interrupted and resumes from its last checkpoint;
* nothing: the cell has not started.

Executors: ``local`` (in this process, or ``workers`` spawned processes) and ``ray`` (one Ray task per
cell with its CPU/GPU needs declared, on a local instance or a cluster). Each cell runs stage 1 → stage 2
→ evaluation in order; before the cells, one task per dataset trains (or finds) the cached FCN evaluator
that every cell of that dataset shares. A per-cell file lock keeps two processes from running one cell.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml
from filelock import Timeout

from ncvqvae.allocator import reuse_freed_memory
from ncvqvae.config import RunConfig, from_dict, load_preset, load_yaml, merge, parse_overrides, to_dict
from ncvqvae.errors import ConfigError, NcvqvaeError
from ncvqvae.evaluation.pipeline import prepare_evaluator
from ncvqvae.experiments.pipeline import run_pipeline
from ncvqvae.experiments.variants import AUGMENTATIONS as AUGMENTATIONS
from ncvqvae.experiments.variants import METHODS as METHODS
from ncvqvae.experiments.variants import Variant
from ncvqvae.home import atomic_write_json, atomic_write_text, file_lock
from ncvqvae.rundir import DONE_NAME, FAILED_NAME, dataset_slug
from ncvqvae.rundir import run_status as cell_status  # done, failed, partial or pending
from ncvqvae.training import progress as progress_bar

log = logging.getLogger(__name__)

SPEC_NAME = "sweep.yaml"  # the resolved sweep spec, written into the sweep directory
STATUS_NAME = "status.json"  # the live overview, rewritten as cells finish
LOG_NAME = "cell.log"  # each cell's log records

CellFn = Callable[..., Mapping[str, Any]]
EvaluatorFn = Callable[[RunConfig], Any]


# --------------------------------------------------------------------------------------------------
# Variants, cells and sweep specs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One experiment of a sweep: a dataset, a variant and a seed."""

    dataset: str
    variant: Variant
    seed: int

    @property
    def key(self) -> str:
        """``<dataset>/<variant>/seed<k>``: the cell's path relative to the sweep directory."""
        return f"{dataset_slug(self.dataset)}/{self.variant.name}/seed{self.seed}"

    def run_dir(self, sweep_dir: str | Path) -> Path:
        return Path(sweep_dir) / self.key


@dataclass(frozen=True)
class ExecutorSpec:
    """How the cells are run (the sweep file's ``executor:`` block; CLI flags override it)."""

    name: str = "local"  # "local" or "ray"
    workers: int = 1  # local: parallel worker processes (1 = in this process)
    address: str | None = None  # ray: None starts a local instance; "auto" or "HOST:PORT" joins a cluster
    cpus_per_cell: float = 1.0  # ray: CPUs a cell task declares (also torch threads per cell)
    gpus_per_cell: float = 0.0  # ray: GPUs a cell task declares (0 = CPU only)


@dataclass(frozen=True)
class SweepSpec:
    """A grid of cells: datasets × variants × seeds, all from one preset plus overrides.

    Attributes:
        name: the sweep's name (the default output folder is ``sweeps/<name>``).
        datasets: dataset names or paths (anything ``load_dataset`` accepts).
        variants: the stage-1 variants, in table order.
        seeds: the seeds of every (dataset, variant) pair.
        preset: the shipped preset every cell starts from (``None`` = the SPEC defaults).
        overrides: nested config fields applied on top of the preset, for every cell.
        dataset_overrides: per dataset (a name of ``datasets``), nested config fields applied on top of
            ``overrides`` for that dataset's cells only (e.g. a smaller step cap for long series, a
            longer evaluator for a tiny training split).
        executor: default executor settings.
        description: free text, shown by ``ncvqvae sweep --list``.
    """

    name: str
    datasets: tuple[str, ...]
    variants: tuple[Variant, ...]
    seeds: tuple[int, ...]
    preset: str | None = "quick"
    overrides: dict[str, Any] = field(default_factory=dict, hash=False)
    dataset_overrides: dict[str, dict[str, Any]] = field(default_factory=dict, hash=False)
    executor: ExecutorSpec = field(default_factory=ExecutorSpec)
    description: str = ""

    def cells(self) -> list[Cell]:
        """Every cell, dataset-major, then variant, then seed (the order they are run in)."""
        return [Cell(d, v, s) for d in self.datasets for v in self.variants for s in self.seeds]

    def cell_config(self, cell: Cell, *, progress: bool = False) -> RunConfig:
        """The resolved RunConfig of one cell: preset ← overrides ← its dataset's overrides ← cell fields."""
        data: dict[str, Any] = load_preset(self.preset) if self.preset else {}
        data = merge(data, self.overrides)
        data = merge(data, self.dataset_overrides.get(cell.dataset, {}))
        data = merge(data, cell.variant.overrides())
        data = merge(data, {"data": {"dataset": cell.dataset}, "seed": cell.seed, "progress": progress})
        return from_dict(RunConfig, data, source=f"sweep {self.name!r}, cell {cell.key}")

    def to_dict(self) -> dict[str, Any]:
        """A YAML-able dict that :func:`spec_from_dict` reads back to an equal spec."""
        return {
            "name": self.name,
            "description": self.description,
            "preset": self.preset,
            "datasets": list(self.datasets),
            "variants": [v.name for v in self.variants],
            "seeds": list(self.seeds),
            "overrides": self.overrides,
            "dataset_overrides": self.dataset_overrides,
            "executor": to_dict(self.executor),
        }


_SPEC_KEYS = {
    "name",
    "description",
    "preset",
    "datasets",
    "variants",
    "methods",
    "augmentations",
    "seeds",
    "overrides",
    "dataset_overrides",
    "executor",
}


def spec_from_dict(data: Mapping[str, Any], *, source: str = "sweep", name: str | None = None) -> SweepSpec:
    """Build and check a :class:`SweepSpec` from the dict of a sweep file.

    ``variants: [baseline, bt_warp, ...]`` lists variants directly; alternatively ``methods: [...]`` ×
    ``augmentations: [warp, slice, "warp+gauss", ...]`` spans them (``baseline`` in ``methods`` adds one
    baseline variant). ``overrides`` takes nested mappings or dotted keys (``stage1.epochs: 5``).
    Every cell's config is resolved once here, so a bad field is reported before anything runs.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: a sweep file must be a mapping of fields ({', '.join(sorted(_SPEC_KEYS))})"
        )
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(_SPEC_KEYS))}"
        )
    sweep_name = str(data.get("name") or name or "sweep")
    datasets = _str_list(data.get("datasets"), source, "datasets")
    seeds_raw = data.get("seeds", [0])
    seeds_list = seeds_raw if isinstance(seeds_raw, list) else [seeds_raw]
    if not seeds_list or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds_list):
        raise ConfigError(f"{source}: field 'seeds' expected a list of integers, got {seeds_raw!r}")
    variants = _variants(data, source)
    overrides = _nested_overrides(data.get("overrides") or {}, source)
    per_dataset = _dataset_overrides(data.get("dataset_overrides") or {}, datasets, source)
    executor_raw = data.get("executor") or {}
    executor = from_dict(ExecutorSpec, dict(executor_raw), source=f"{source} (executor)")
    _check_executor(executor, source)
    preset = data.get("preset", "quick")
    spec = SweepSpec(
        name=sweep_name,
        description=str(data.get("description") or ""),
        preset=str(preset) if preset is not None else None,
        datasets=tuple(datasets),
        variants=tuple(variants),
        seeds=tuple(int(s) for s in seeds_list),
        overrides=overrides,
        dataset_overrides=per_dataset,
        executor=executor,
    )
    keys = [c.key for c in spec.cells()]
    if len(set(keys)) != len(keys):
        raise ConfigError(
            f"{source}: datasets, variants or seeds repeat (two cells would share a run directory)"
        )
    for dataset in spec.datasets:  # one config per dataset and variant catches every field error early
        for variant in spec.variants:
            spec.cell_config(Cell(dataset, variant, spec.seeds[0]))
    return spec


def _str_list(value: Any, source: str, key: str) -> list[str]:
    items = value if isinstance(value, list) else [value] if isinstance(value, str) else None
    if not items or not all(isinstance(v, str | int) for v in items):
        raise ConfigError(f"{source}: field '{key}' expected a non-empty list of names, got {value!r}")
    return [str(v) for v in items]


def _variants(data: Mapping[str, Any], source: str) -> list[Variant]:
    if "variants" in data and ("methods" in data or "augmentations" in data):
        raise ConfigError(f"{source}: give either 'variants' or 'methods' × 'augmentations', not both")
    if "variants" in data:
        return [Variant.parse(v, source=source) for v in _str_list(data["variants"], source, "variants")]
    methods = _str_list(data.get("methods", ["vibcreg"]), source, "methods")
    augs = _str_list(data.get("augmentations", ["warp"]), source, "augmentations")
    out: list[Variant] = []
    for method in methods:
        for aug in augs:
            variant = Variant.make(method, aug.split("+"), source=source)
            if variant not in out:
                out.append(variant)
    return out


def _dataset_overrides(raw: Any, datasets: list[str], source: str) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{source}: field 'dataset_overrides' expected a mapping of dataset name to config fields, "
            f"got {raw!r}"
        )
    unknown = sorted(str(d) for d in raw if str(d) not in datasets)
    if unknown:
        raise ConfigError(
            f"{source}: field 'dataset_overrides' names dataset(s) {', '.join(unknown)} that are not in "
            f"'datasets' ({', '.join(datasets)})"
        )
    return {
        str(name): _nested_overrides(fields or {}, source, key=f"dataset_overrides.{name}")
        for name, fields in raw.items()
    }


def _nested_overrides(raw: Any, source: str, *, key: str = "overrides") -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: field '{key}' expected a mapping of config fields, got {raw!r}")
    nested: dict[str, Any] = {}
    for dotted, value in raw.items():
        part: Any = value
        for name in reversed(str(dotted).split(".")):  # "stage1.epochs: 5" → {"stage1": {"epochs": 5}}
            part = {name: part}
        nested = merge(nested, part)
    from_dict(RunConfig, nested, source=f"{source} ({key})")
    return nested


def _check_executor(executor: ExecutorSpec, source: str) -> None:
    if executor.name not in ("local", "ray"):
        raise ConfigError(f"{source}: executor.name must be 'local' or 'ray', got {executor.name!r}")
    if executor.workers < 1:
        raise ConfigError(f"{source}: executor.workers must be at least 1, got {executor.workers}")
    if executor.cpus_per_cell <= 0 or executor.gpus_per_cell < 0:
        raise ConfigError(f"{source}: executor.cpus_per_cell must be > 0 and gpus_per_cell >= 0")


def sweeps_dir() -> Path:
    """The folder of the sweep files shipped with the package."""
    return Path(__file__).parent / "sweeps"


def list_sweeps() -> dict[str, str]:
    """Map shipped sweep name → its description."""
    out = {}
    for path in sorted(sweeps_dir().glob("*.yaml")):
        out[path.stem] = str(load_yaml(path).get("description") or "")
    return out


def load_sweep(path_or_name: str | Path) -> SweepSpec:
    """Read a sweep spec from a YAML file, a sweep directory (its ``sweep.yaml``) or a shipped name.

    Args:
        path_or_name: ``my_sweep.yaml``, ``sweeps/thesis-offline/`` (resume a sweep), or a shipped name
            such as ``thesis``, ``thesis-offline``, ``demo`` (see :func:`list_sweeps`).
    """
    path = Path(path_or_name)
    if path.is_dir():
        path = path / SPEC_NAME
    elif not path.exists() and not path.suffix and (sweeps_dir() / f"{path_or_name}.yaml").is_file():
        path = sweeps_dir() / f"{path_or_name}.yaml"
    if not path.is_file():
        known = ", ".join(list_sweeps()) or "none"
        raise ConfigError(f"{path_or_name}: no such sweep file or sweep directory; shipped sweeps: {known}")
    return spec_from_dict(load_yaml(path), source=str(path), name=path.stem)


def with_overrides(spec: SweepSpec, overrides: Sequence[str] = (), **executor: Any) -> SweepSpec:
    """A copy of ``spec`` with extra ``--set`` overrides and executor fields (``None`` = keep).

    The ``--set`` fields win over the sweep's ``overrides`` and over its ``dataset_overrides``.
    """
    data = spec.to_dict()
    if overrides:
        extra = parse_overrides(list(overrides))
        data["overrides"] = merge(data["overrides"], extra)
        data["dataset_overrides"] = {d: merge(o, extra) for d, o in data["dataset_overrides"].items()}
    data["executor"] = {**data["executor"], **{k: v for k, v in executor.items() if v is not None}}
    return spec_from_dict(data, source=f"sweep {spec.name!r}")


# --------------------------------------------------------------------------------------------------
# Cell status
# --------------------------------------------------------------------------------------------------


def sweep_status(spec: SweepSpec, sweep_dir: str | Path) -> dict[str, str]:
    """Map cell key → :func:`cell_status`, in run order."""
    return {cell.key: cell_status(cell.run_dir(sweep_dir)) for cell in spec.cells()}


def read_failure(run_dir: str | Path) -> dict[str, Any] | None:
    """The failure record of a cell, or ``None``."""
    path = Path(run_dir) / FAILED_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {"error": "unreadable failure record"}


# --------------------------------------------------------------------------------------------------
# Running one cell (in this process, a worker process or a Ray task)
# --------------------------------------------------------------------------------------------------


def run_cell(
    cfg_dict: dict[str, Any],
    run_dir: str,
    *,
    cell_fn: CellFn | None = None,
    threads: int | None = None,
    wait_for_lock: bool = True,
) -> dict[str, Any]:
    """Run one cell and report how it went; never raises for an error inside the cell.

    The cell runs under a file lock (``cell.lock``), so a second process asked to run the same cell
    waits (``wait_for_lock``) or reports ``busy``, then sees ``DONE.json`` and skips it. An exception is
    written to ``FAILED.json`` (error, traceback, time) and returned as ``failed``; ``KeyboardInterrupt``
    is not caught, so an interrupted cell simply resumes next time.

    Args:
        cfg_dict: the cell's RunConfig as a dict (plain data crosses process boundaries safely).
        run_dir: the cell's run directory.
        cell_fn: ``fn(cfg, run_dir, progress=False) -> summary``; default :func:`run_pipeline`.
        threads: torch intra-op threads for this cell (worker processes share the machine's cores).
        wait_for_lock: wait for another process holding the cell's lock (else return ``busy``).

    Returns:
        ``{"key", "status": "done"|"skipped"|"failed"|"busy", "seconds", "error", "summary"}``.
    """
    _process_settings(threads)
    cell_fn = cell_fn or run_pipeline
    root = Path(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"key": str(root), "status": "", "seconds": 0.0, "error": None, "summary": None}
    lock = file_lock(root / "cell", timeout=-1 if wait_for_lock else 0)
    try:
        lock.acquire()
    except Timeout:
        return {**result, "status": "busy"}
    try:
        if (root / DONE_NAME).is_file():
            return {**result, "status": "skipped", "summary": json.loads((root / DONE_NAME).read_text())}
        (root / FAILED_NAME).unlink(missing_ok=True)  # a retried cell starts with a clean record
        cfg = from_dict(RunConfig, cfg_dict, source=f"{root} (cell config)")
        start = time.perf_counter()
        with _cell_log(root / LOG_NAME):
            try:
                summary = cell_fn(cfg, root, progress=False)
            except Exception as err:
                seconds = time.perf_counter() - start
                message = f"{type(err).__name__}: {err}"
                log.error("cell %s failed: %s", root, message)
                atomic_write_json(
                    root / FAILED_NAME,
                    {
                        "error": message,
                        "type": type(err).__name__,
                        "traceback": traceback.format_exc(),
                        "seconds": round(seconds, 3),
                        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                        "host": os.uname().nodename,
                        "pid": os.getpid(),
                    },
                )
                return {**result, "status": "failed", "seconds": seconds, "error": message}
        seconds = time.perf_counter() - start
        return {**result, "status": "done", "seconds": seconds, "summary": dict(summary or {})}
    finally:
        lock.release()


class _cell_log:
    """Copy every log record of the cell into ``<run_dir>/cell.log`` while it runs."""

    def __init__(self, path: Path) -> None:
        self.handler = logging.FileHandler(path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setLevel(logging.INFO)
        self.root = logging.getLogger()
        self.old_level = self.root.level

    def __enter__(self) -> _cell_log:
        self.root.addHandler(self.handler)
        if self.root.level > logging.INFO or self.root.level == logging.NOTSET:
            self.root.setLevel(logging.INFO)
        return self

    def __exit__(self, *exc: object) -> None:
        self.root.removeHandler(self.handler)
        self.root.setLevel(self.old_level)
        self.handler.close()


def ensure_evaluator(cfg: RunConfig) -> dict[str, Any]:
    """Train (or find in the cache) the FCN evaluator a cell of ``cfg``'s dataset will use.

    Runs once per dataset before the cells, so that the cells of one dataset find it ready instead of
    queueing on the evaluator cache's lock.
    """
    return dict(prepare_evaluator(cfg))


def _evaluator_task(
    cfg_dict: dict[str, Any], evaluator_fn: EvaluatorFn, threads: int | None
) -> dict[str, Any]:
    """Run ``evaluator_fn`` for one dataset; an error is logged and returned, never raised."""
    _process_settings(threads)
    cfg = from_dict(RunConfig, cfg_dict, source="evaluator task")
    try:
        evaluator_fn(cfg)
        return {"dataset": cfg.data.dataset, "error": None}
    except Exception as err:  # the cells of this dataset will fail and record the error themselves
        log.warning(
            "evaluator for %s could not be prepared: %s: %s", cfg.data.dataset, type(err).__name__, err
        )
        return {"dataset": cfg.data.dataset, "error": f"{type(err).__name__}: {err}"}


def _process_settings(threads: float | None) -> None:
    """A worker's process settings: freed memory reused (:mod:`ncvqvae.allocator`, as the CLI does) and
    torch's intra-op threads limited (cells sharing a machine); ``None`` keeps torch's default."""
    reuse_freed_memory()
    if threads:
        import torch

        torch.set_num_threads(max(1, int(threads)))


_interrupted = False  # set in a worker process once Ctrl-C (SIGINT) reached it


def _on_interrupt(signum: int, frame: object) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def _worker_init(threads: int) -> None:
    """Worker-process start: share the cores, remember an interrupt, die with the sweep (even on kill -9)."""
    _process_settings(threads)
    signal.signal(signal.SIGINT, _on_interrupt)
    if sys.platform.startswith("linux"):  # PR_SET_PDEATHSIG: no orphaned workers after a kill -9
        try:
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)
        except OSError:
            pass
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


# --------------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------------


@dataclass
class SweepProgress:
    """Live overview: cells done / running / failed and an ETA, as a progress line and ``status.json``."""

    sweep_dir: Path
    total: int
    slots: int = 1
    enabled: bool = True
    statuses: dict[str, str] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)
    running: set[str] = field(default_factory=set)
    start: float = field(default_factory=time.time)

    def __post_init__(self) -> None:
        self.bar = progress_bar(
            total=self.total, desc="cells", enabled=self.enabled, initial=self.count("done")
        )
        self.refresh()

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses.values() if s == status)

    def started(self, key: str) -> None:
        self.running.add(key)
        self.refresh()

    def finished(self, key: str, status: str, seconds: float) -> None:
        self.running.discard(key)
        self.statuses[key] = "done" if status in ("done", "skipped") else status
        if status == "done":
            self.durations.append(seconds)
        if status in ("done", "skipped"):
            self.bar.update(1)
        self.refresh()

    def eta_seconds(self) -> float | None:
        """Remaining cells × mean cell time (this session) / parallel slots; ``None`` before a cell ends."""
        if not self.durations:
            return None
        remaining = sum(1 for s in self.statuses.values() if s not in ("done", "failed"))
        return remaining * (sum(self.durations) / len(self.durations)) / max(1, self.slots)

    def summary(self) -> dict[str, Any]:
        running = min(len(self.running), self.slots)
        return {
            "total": self.total,
            "done": self.count("done"),
            "running": running,
            "failed": self.count("failed"),
            "pending": self.total - self.count("done") - self.count("failed") - running,
            "eta_s": None if self.eta_seconds() is None else round(self.eta_seconds() or 0.0, 1),
            "elapsed_s": round(time.time() - self.start, 1),
        }

    def refresh(self) -> None:
        info = self.summary()
        eta = info["eta_s"]
        self.bar.set_postfix_str(
            f"running {info['running']}, failed {info['failed']}, "
            f"ETA {format_seconds(eta) if eta is not None else '?'}",
            refresh=True,
        )
        atomic_write_json(self.sweep_dir / STATUS_NAME, {**info, "cells": self.statuses})

    def close(self) -> None:
        self.bar.close()


def format_seconds(seconds: float) -> str:
    """``3h04m``, ``12m05s`` or ``42s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


# --------------------------------------------------------------------------------------------------
# The sweep runner and its executors
# --------------------------------------------------------------------------------------------------


@dataclass
class SweepPlan:
    """What a sweep will do: every cell with its status and what happens to it."""

    spec: SweepSpec
    sweep_dir: Path
    cells: list[Cell]
    status: dict[str, str]
    retry_failed: bool = False

    def to_run(self) -> list[Cell]:
        """Cells that will run: pending, partial (resumed) and — with ``retry_failed`` — failed ones."""
        runnable = {"pending", "partial"} | ({"failed"} if self.retry_failed else set())
        return [c for c in self.cells if self.status[c.key] in runnable]

    def action(self, cell: Cell) -> str:
        status = self.status[cell.key]
        return {
            "done": "skip (done)",
            "failed": "retry" if self.retry_failed else "skip (failed; --retry-failed to rerun)",
            "partial": "resume",
            "pending": "run",
        }[status]

    def rows(self) -> list[dict[str, str]]:
        """One row per cell: key, status, action, and the error of failed cells."""
        out = []
        for cell in self.cells:
            row = {
                "cell": cell.key,
                "status": self.status[cell.key],
                "action": self.action(cell),
                "error": "",
            }
            if row["status"] == "failed":
                row["error"] = str((read_failure(cell.run_dir(self.sweep_dir)) or {}).get("error", ""))
            out.append(row)
        return out


def plan_sweep(spec: SweepSpec, sweep_dir: str | Path, *, retry_failed: bool = False) -> SweepPlan:
    """Read every cell's status from its run directory (nothing is run or written)."""
    sweep_dir = Path(sweep_dir)
    return SweepPlan(spec, sweep_dir, spec.cells(), sweep_status(spec, sweep_dir), retry_failed)


def check_same_sweep(spec: SweepSpec, sweep_dir: str | Path) -> None:
    """Refuse to run ``spec`` in a sweep directory made with another preset or other overrides.

    Growing the grid (more datasets, variants or seeds) and changing the executor are fine: cells are
    independent. A different preset or override would give existing cells a config their run directories
    refuse, so it is caught here once, with the differences named.

    Raises:
        ConfigError: naming the sweep directory and the differing fields.
    """
    path = Path(sweep_dir) / SPEC_NAME
    if not path.is_file():
        return
    saved = load_yaml(path)
    differ = [
        f"{key}: saved {saved.get(key)!r}, now {value!r}"
        for key, value in (("preset", spec.preset), ("overrides", spec.overrides))
        if (saved.get(key) or None) != (value or None)
    ]
    # per-dataset overrides matter only for datasets both specs run (a sweep may run a subset, or grow)
    saved_per, now_per = saved.get("dataset_overrides") or {}, spec.dataset_overrides
    differ += [
        f"dataset_overrides.{d}: saved {saved_per.get(d)!r}, now {now_per.get(d)!r}"
        for d in spec.datasets
        if d in (saved.get("datasets") or ()) and (saved_per.get(d) or None) != (now_per.get(d) or None)
    ]
    if differ:
        raise ConfigError(
            f"{sweep_dir}: this sweep directory was made with other settings ({'; '.join(differ)}); "
            f"use another --out, or the saved settings (run `ncvqvae sweep {sweep_dir}` to resume it)"
        )


def run_sweep(
    spec: SweepSpec,
    sweep_dir: str | Path,
    *,
    retry_failed: bool = False,
    progress: bool = True,
    cell_fn: CellFn | None = None,
    evaluator_fn: EvaluatorFn | None = ensure_evaluator,
) -> dict[str, Any]:
    """Run every cell of ``spec`` that is not finished; return the final overview.

    Args:
        spec: the sweep (its ``executor`` field picks local or Ray; see :func:`with_overrides`).
        sweep_dir: where the cells' run directories live; ``sweep.yaml`` is written there.
        retry_failed: rerun cells that failed before (their ``FAILED.json`` is removed when they start).
        progress: show the live overview line.
        cell_fn: what a cell runs, ``fn(cfg, run_dir, progress=False) -> summary``; default
            :func:`ncvqvae.experiments.pipeline.run_pipeline` (tests inject small functions).
        evaluator_fn: run once per dataset with pending cells before the cells (``None`` = skip).

    Returns:
        The overview ``{"total", "done", "failed", ..., "cells": {key: status}, "results": [...]}``.
    """
    sweep_dir = Path(sweep_dir)
    check_same_sweep(spec, sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(sweep_dir / SPEC_NAME, yaml.safe_dump(spec.to_dict(), sort_keys=False))
    plan = plan_sweep(spec, sweep_dir, retry_failed=retry_failed)
    todo = plan.to_run()
    ex = spec.executor
    slots = ex.workers if ex.name == "local" else 1  # Ray: set from the cluster's resources once joined
    live = SweepProgress(
        sweep_dir, total=len(plan.cells), slots=slots, enabled=progress, statuses=dict(plan.status)
    )
    log.info("sweep %s: %d cells, %d to run, in %s", spec.name, len(plan.cells), len(todo), sweep_dir)
    jobs = [(c.key, to_dict(spec.cell_config(c)), str(c.run_dir(sweep_dir))) for c in todo]
    evaluator_jobs = _evaluator_jobs(spec, todo) if evaluator_fn is not None else []
    results: list[dict[str, Any]] = []
    try:
        if jobs and ex.name == "ray":
            results = _run_ray(jobs, evaluator_jobs, ex, live, cell_fn, evaluator_fn)
        elif jobs and ex.workers > 1:
            results = _run_pool(jobs, evaluator_jobs, ex.workers, live, cell_fn, evaluator_fn)
        elif jobs:
            results = _run_inline(jobs, evaluator_jobs, live, cell_fn, evaluator_fn)
    finally:
        live.close()
    final = {**live.summary(), "cells": dict(live.statuses), "results": results}
    log.info(
        "sweep %s: %d done, %d failed of %d",
        spec.name,
        final["done"],
        final["failed"],
        final["total"],
    )
    return final


def _evaluator_jobs(spec: SweepSpec, todo: list[Cell]) -> list[tuple[str, dict[str, Any]]]:
    """One evaluator job per dataset with cells to run (from its first such cell's config)."""
    first: dict[str, Cell] = {}
    for cell in todo:
        first.setdefault(cell.dataset, cell)
    return [(dataset, to_dict(spec.cell_config(cell))) for dataset, cell in first.items()]


def _run_inline(jobs, evaluator_jobs, live, cell_fn, evaluator_fn) -> list[dict[str, Any]]:  # noqa: ANN001
    for _dataset, cfg_dict in evaluator_jobs:
        _evaluator_task(cfg_dict, evaluator_fn, None)
    results, deferred = [], []
    for key, cfg_dict, run_dir in jobs:
        live.started(key)
        result = run_cell(cfg_dict, run_dir, cell_fn=cell_fn, wait_for_lock=False)
        if result["status"] == "busy":  # another process runs it now: come back to it at the end
            deferred.append((key, cfg_dict, run_dir))
            continue
        results.append(_record(live, key, result))
    for key, cfg_dict, run_dir in deferred:
        log.info("waiting for another process that runs cell %s", key)
        results.append(_record(live, key, run_cell(cfg_dict, run_dir, cell_fn=cell_fn, wait_for_lock=True)))
    return results


def _pool_call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a task in a worker process, unless Ctrl-C already reached this worker.

    Ctrl-C reaches every worker, and each hands its ``KeyboardInterrupt`` back as its task's result; but
    the pool has already passed a worker the next task, which ``cancel_futures`` cannot take back, so
    without this the interrupted sweep would wait for that whole cell before it stops.
    """
    if _interrupted:
        raise KeyboardInterrupt("the sweep was interrupted before this task started")
    return fn(*args, **kwargs)


def _run_pool(jobs, evaluator_jobs, workers, live, cell_fn, evaluator_fn) -> list[dict[str, Any]]:  # noqa: ANN001
    threads = max(1, (os.cpu_count() or 1) // workers)
    results = []
    # spawn, not fork: forking a process that holds torch/OpenMP threads can deadlock the children.
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_init, initargs=(threads,)
    ) as pool:
        try:
            evaluators = [
                pool.submit(_pool_call, _evaluator_task, cfg_dict, evaluator_fn, None)
                for _, cfg_dict in evaluator_jobs
            ]
            wait(evaluators)
            futures = {}
            for key, cfg_dict, run_dir in jobs:
                futures[pool.submit(_pool_call, run_cell, cfg_dict, run_dir, cell_fn=cell_fn)] = key
            for key in list(futures.values())[:workers]:
                live.started(key)
            pending = set(futures)
            queue = list(futures.values())[workers:]
            while pending:
                done, pending = wait(pending, timeout=5.0, return_when=FIRST_COMPLETED)
                for future in done:
                    results.append(_record(live, futures[future], future.result()))
                    if queue:
                        live.started(queue.pop(0))
                live.refresh()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return results


def _run_ray(jobs, evaluator_jobs, ex: ExecutorSpec, live, cell_fn, evaluator_fn) -> list[dict[str, Any]]:  # noqa: ANN001
    try:
        import ray
    except ImportError as err:
        raise NcvqvaeError(
            "the ray executor needs Ray: pip install 'ray[default]' (or pip install 'ncvqvae[ray]')"
        ) from err
    started_here = False
    refs: dict[Any, str] = {}
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if ex.address:
            kwargs["address"] = ex.address
        ray.init(**kwargs)
        started_here = True
    try:
        threads = max(1, int(math.floor(ex.cpus_per_cell)))
        options = {"num_cpus": ex.cpus_per_cell, "num_gpus": ex.gpus_per_cell, "max_retries": 0}
        cell_task = ray.remote(_ray_cell).options(**options)
        evaluator_task = ray.remote(_evaluator_task).options(**options)
        # Each cell waits on its dataset's evaluator task (an ObjectRef argument), so Ray runs a dataset's
        # cells as soon as its evaluator is ready instead of after every evaluator.
        evaluator_refs = {
            cfg_dict["data"]["dataset"]: evaluator_task.remote(cfg_dict, evaluator_fn, threads)
            for _, cfg_dict in evaluator_jobs
        }
        for key, cfg_dict, run_dir in jobs:
            after = evaluator_refs.get(cfg_dict["data"]["dataset"])
            refs[cell_task.remote(cfg_dict, run_dir, cell_fn, threads, after)] = key
        resources = ray.cluster_resources()
        slots = int(resources.get("CPU", 1) // ex.cpus_per_cell)
        if ex.gpus_per_cell:
            slots = min(slots, int(resources.get("GPU", 0) // ex.gpus_per_cell))
        live.slots = max(1, slots)
        for key in refs.values():
            live.running.add(key)  # submitted; the overview caps "running" at the cluster's slots
        results = []
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=5.0)
            for ref in done:
                key = refs[ref]
                try:
                    result = ray.get(ref)
                except Exception as err:  # a lost worker or node: record it like a failure of the cell
                    result = {"status": "failed", "seconds": 0.0, "error": f"ray task lost: {err}"}
                results.append(_record(live, key, result))
            live.refresh()
        return results
    except BaseException:
        for ref in refs:  # Ctrl-C: stop the cluster's work too; interrupted cells resume next time
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()


def _ray_cell(cfg_dict, run_dir, cell_fn, threads, _after=None) -> dict[str, Any]:  # noqa: ANN001
    """A Ray task body: :func:`run_cell` (``_after`` only orders the task after its evaluator)."""
    return run_cell(cfg_dict, run_dir, cell_fn=cell_fn, threads=threads)


def _record(live: SweepProgress, key: str, result: dict[str, Any]) -> dict[str, Any]:
    result = {**result, "key": key}
    live.finished(key, result["status"], float(result.get("seconds") or 0.0))
    if result["status"] == "failed":
        log.warning("cell %s failed: %s", key, result.get("error"))
    return result
