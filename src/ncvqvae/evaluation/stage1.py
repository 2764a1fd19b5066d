"""Stage-1 evaluation of a run: load its tokenizer and data, merge the numbers into ``results.json``.

The metrics themselves (reconstruction error, KNN/SVM probes, codebook statistics, SPEC §5) are pure
functions in :mod:`ncvqvae.evaluation.stage1_metrics`, below the training loops; they are importable
from here too. :func:`evaluate_stage1_run` is the run-level step above stage 1: it reads the run's
checkpoint and config and writes ``results.json["stage1"]`` through :mod:`ncvqvae.rundir`.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from ncvqvae.data.dataset import PreparedData
from ncvqvae.data.prepare import load_prepared
from ncvqvae.data.stats import check_same_data, data_stats
from ncvqvae.evaluation.stage1_metrics import BATCH_SIZE as BATCH_SIZE
from ncvqvae.evaluation.stage1_metrics import codebook_stats as codebook_stats
from ncvqvae.evaluation.stage1_metrics import evaluate_stage1, stage1_record
from ncvqvae.evaluation.stage1_metrics import extract_features as extract_features
from ncvqvae.evaluation.stage1_metrics import frozen_eval as frozen_eval
from ncvqvae.evaluation.stage1_metrics import headline as headline
from ncvqvae.evaluation.stage1_metrics import probe_accuracy as probe_accuracy
from ncvqvae.evaluation.stage1_metrics import reconstruction_error as reconstruction_error
from ncvqvae.rundir import RunDir, read_results, update_results
from ncvqvae.stage1 import load_stage1_checkpoint, tokenizer_from_checkpoint
from ncvqvae.training import pick_device

log = logging.getLogger(__name__)


def evaluate_stage1_run(
    run_dir: str | os.PathLike[str],
    *,
    device: str | torch.device = "auto",
    data: PreparedData | None = None,
) -> dict[str, Any]:
    """Evaluate a run's stage-1 tokenizer and merge the numbers into ``run_dir/results.json["stage1"]``.

    Args:
        run_dir: a run directory with ``config.yaml`` and a stage-1 checkpoint (``final.pt``, else
            ``last.pt`` with a warning).
        device: where to evaluate ("auto" = cuda if present).
        data: the prepared data; ``None`` loads the run's ``cfg.data`` again.

    Returns:
        the ``"stage1"`` entry as written (see :func:`evaluate_stage1` and :func:`stage1_record`).
    """
    run = RunDir(run_dir)
    cfg = run.read_config()
    checkpoint = load_stage1_checkpoint(run.root)
    model = tokenizer_from_checkpoint(checkpoint, device=pick_device(str(device)))
    if data is None:
        data = load_prepared(cfg.data, seed=cfg.seed)
    check_same_data(checkpoint["data_stats"], data_stats(data), checkpoint["path"])
    results = evaluate_stage1(model, data, cfg.evaluation)
    record = stage1_record(results, checkpoint=checkpoint["path"], run_root=run.root, step=checkpoint["step"])
    update_results(run.root, "stage1", record)
    return record


def stage1_results(
    run_dir: str | os.PathLike[str],
    *,
    device: str | torch.device = "auto",
    data: PreparedData | None = None,
) -> dict[str, Any]:
    """A run's ``results.json["stage1"]``, evaluating the tokenizer first when it has none.

    Args: as :func:`evaluate_stage1_run` (``device`` and ``data`` serve the evaluation only).
    """
    stored = read_results(run_dir).get("stage1")
    if stored is not None:
        return stored
    log.info("%s: stage-1 numbers missing; evaluating the tokenizer", run_dir)
    return evaluate_stage1_run(run_dir, device=device, data=data)
