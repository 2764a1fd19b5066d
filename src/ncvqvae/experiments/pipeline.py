"""One experiment cell end to end: stage 1 → stage 2 → evaluation → ``report.md``.

:func:`run_pipeline` is what ``ncvqvae run`` and every sweep cell execute. Each step is idempotent and
resumable on its own (the stages continue from their last checkpoint and return at once when their final
checkpoint exists; the evaluation reuses what ``results.json`` already holds), so running the pipeline
again after an interruption anywhere continues where it stopped and ends with the same results as an
uninterrupted run. ``DONE.json`` is written atomically as the very last step: its presence is what marks
the cell finished.

Trackers (MLflow, W&B, TensorBoard) stay out of the training loops: after each stage the stage's
``metrics.jsonl`` is replayed into the tracker (see :mod:`ncvqvae.experiments.trackers`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ncvqvae.config import RunConfig, nest, replace, result_fields
from ncvqvae.data.prepare import load_prepared
from ncvqvae.evaluation.pipeline import evaluate_run
from ncvqvae.experiments.report import run_summary, write_run_report
from ncvqvae.experiments.trackers import open_tracker
from ncvqvae.home import atomic_write_json
from ncvqvae.rundir import (
    DONE_NAME,
    TIMING_STARTED_SUFFIX,
    TIMINGS_NAME,
    RunDir,
    read_machine,
    read_raw_timings,
    read_timings,
    record_machine,
)
from ncvqvae.stage1 import train_stage1
from ncvqvae.stage2 import is_finished as stage2_finished
from ncvqvae.stage2 import train_stage2
from ncvqvae.training import machine_info, pick_device

log = logging.getLogger(__name__)


def run_pipeline(cfg: RunConfig, run_dir: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Train stage 1, train stage 2, evaluate, and write ``report.md`` into ``run_dir``.

    Args:
        cfg: the run's resolved config (``cfg.device`` picks the device, ``cfg.tracker`` an optional
            experiment tracker).
        run_dir: the run directory (created; an existing one is resumed).
        progress: show the stages' progress bars (overrides ``cfg.progress``).

    Returns:
        The run's summary: dataset, variant, seed, preset, the headline metrics (reconstruction, KNN/SVM
        probe accuracy, FID, IS, CAS, evaluator accuracy), timings and the report's path. A finished run
        returns the summary stored in its ``DONE.json`` without doing anything.
    """
    run = RunDir(run_dir)
    done_path = run.root / DONE_NAME
    cfg = replace(cfg, progress=progress)
    if done_path.is_file():
        done = json.loads(done_path.read_text(encoding="utf-8"))
        # compared field by field, so that a DONE.json of an older version (more fields) still matches
        if recorded_result_fields(done.get("config") or {}) == result_fields(cfg):
            log.info("%s is finished (%s): nothing to do", run.root, DONE_NAME)
            return dict(done["summary"])
        # Another config for a finished run: the stages refuse it if their fields differ; otherwise (an
        # evaluation setting changed) the finished stages return at once and the evaluation is redone.
        log.info("%s is finished, but with another config: checking and re-evaluating", run.root)
    run.root.mkdir(parents=True, exist_ok=True)
    tracker = open_tracker(cfg.tracker, run.root, cfg)
    try:
        data = None
        # stage 2 may be finished and still have steps to do (a raised stage2.max_steps): ask it
        stage2_done = stage2_finished(cfg, run.root)
        if not (run.is_finished("stage1") and stage2_done):
            data = load_prepared(cfg.data, seed=cfg.seed)  # one load serves both stages
        machine = machine_info(pick_device(cfg.device))
        with _timed(run.root, "stage1", skip=run.is_finished("stage1"), machine=machine):
            log.info("stage 1: training the tokenizer (%s) in %s", cfg.stage1.method, run.root)
            train_stage1(cfg, run.root, data=data, resume=True)
        tracker.replay_stage(run.root, "stage1")
        with _timed(run.root, "stage2", skip=stage2_done, machine=machine):
            log.info("stage 2: training the prior")
            train_stage2(cfg, run.root, data=data, resume=True)
        tracker.replay_stage(run.root, "stage2")
        run.write_config(cfg)  # the stages accepted cfg; record the evaluation settings it holds too
        with _timed(run.root, "evaluation", machine=machine):
            log.info("evaluating (reconstruction, probes, FID, IS, CAS)")
            evaluate_run(run.root, cfg=cfg, device=cfg.device, progress=progress)
        report_path = write_run_report(run.root)
        summary = {**run_summary(run.root), "report": str(report_path)}
        tracker.log_summary(summary)
    finally:
        tracker.close()
    atomic_write_json(
        done_path,
        {
            "summary": summary,
            "config": result_config(cfg),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "timings": read_timings(run.root),
            "machine": read_machine(run.root),
        },
    )
    return summary


def recorded_result_fields(recorded: dict[str, Any]) -> dict[str, Any]:
    """A finished run's recorded config as :func:`config.result_fields`, where a field added since it was
    recorded counts at its default (a new field's default is chosen to keep the older behaviour; where it
    does not quite, as ``evaluation.utility_steps`` following a set ``cas_steps``, the run was recorded
    before the field existed and its numbers stand as they were computed)."""
    fields = result_fields(recorded)
    return {**{k: v for k, v in result_fields(RunConfig()).items() if k not in fields}, **fields}


def result_config(cfg: RunConfig) -> dict[str, Any]:
    """The config as nested dicts without the fields that change no result (``config.NO_RESULT``: where
    and how the run runs, what it is called, how often it logs): what a finished run is compared on."""
    return nest(result_fields(cfg))


_STARTED = TIMING_STARTED_SUFFIX  # when the running attempt of a step began (epoch seconds)
# Files whose last write marks the work an attempt of a step left behind (checkpoints, results).
_KEPT_WORK = {
    "stage1": "stage1/checkpoints/*.pt",
    "stage2": "stage2/checkpoints/*.pt",
    "evaluation": "results.json",
}


@contextlib.contextmanager
def _timed(
    run_dir: Path, step: str, *, skip: bool = False, machine: dict[str, Any] | None = None
) -> Iterator[None]:
    """Add the wall time of ``step`` to ``timings.json``, also across kills.

    The start of each attempt is recorded first. When an attempt was killed, the next one adds the time
    from that start to the last file the attempt wrote (its last checkpoint, or results.json): the time
    of the work that was kept. ``skip``: the step is already finished and returns at once.
    """
    timings = read_raw_timings(run_dir)
    killed_start = timings.pop(step + _STARTED, None)
    if killed_start is not None:
        written = [p.stat().st_mtime for p in run_dir.glob(_KEPT_WORK[step])]
        kept = max(written, default=killed_start) - killed_start
        timings[step] = round(timings.get(step, 0.0) + max(0.0, kept), 3)
    if skip:
        if killed_start is not None:
            atomic_write_json(run_dir / TIMINGS_NAME, timings)
        yield
        return
    start = time.time()
    if machine is not None:
        record_machine(run_dir, step, machine)
    atomic_write_json(run_dir / TIMINGS_NAME, {**timings, step + _STARTED: start})
    yield
    timings[step] = round(timings.get(step, 0.0) + time.time() - start, 3)
    atomic_write_json(run_dir / TIMINGS_NAME, timings)
