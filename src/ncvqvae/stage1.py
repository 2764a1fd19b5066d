"""Stage 1: train the STFT VQ-VAE tokenizer (baseline or NC-VQVAE) and load it back (SPEC §3).

:func:`train_stage1` is the whole loop, written out top to bottom: resolve the run directory (finished →
return, interrupted → resume), build data, model, AdamW and the per-step cosine schedule, then per step
index a batch of the on-device training tensor, draw the augmented view (NC methods only), forward,
guard against a non-finite loss, backward, step, log, checkpoint; at the end evaluate (reconstruction,
probes, codebook) and promote the last checkpoint to ``final.pt``.

Exact resume: every random draw traces to checkpointed state. The batch order of an epoch is a pure
function of (seed, epoch) (:func:`ncvqvae.training.epoch_batches`), the augmentation draws come from the
loop's own ``torch.Generator`` (saved), dropout uses the global RNG (saved), and model, optimiser and
scheduler states are saved. On CPU a run interrupted at any checkpoint and resumed ends with the same
weights, bit for bit, as an uninterrupted run. (On CUDA some kernels are not bit-deterministic.)

:func:`load_tokenizer` and :func:`load_stage1_checkpoint` give stage 2 and the evaluators the trained
tokenizer and the data statistics it was trained with.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from ncvqvae.config import NO_RESULT, STOP, RunConfig, to_dict
from ncvqvae.config import result_fields as config_result_fields
from ncvqvae.data.augment import Augmentation, build_augmentation
from ncvqvae.data.dataset import PreparedData
from ncvqvae.data.prepare import load_prepared
from ncvqvae.data.stats import check_same_data, data_stats
from ncvqvae.errors import CheckpointError, DataError
from ncvqvae.evaluation.stage1_metrics import evaluate_stage1, headline, stage1_record
from ncvqvae.models.tokenizer import VQVAE, build_tokenizer
from ncvqvae.precision import autocast, resolved
from ncvqvae.rundir import RunDir, update_results
from ncvqvae.training import (
    MetricsLog,
    StepLog,
    check_finite,
    cosine_schedule,
    derive_seed,
    load_checkpoint,
    loop_state,
    make_generator,
    pick_device,
    plan_steps,
    progress,
    refuse_changed_fields,
    restore_loop_state,
    save_checkpoint,
    saved_run_config,
    step_batches,
)

log = logging.getLogger(__name__)

STAGE = "stage1"

# Fields a resumed (or finished) stage 1 may be invoked with other values of: those that change no
# result, and where training stops (config.py tags them). Everything else under seed/data/stage1 must
# match the saved run.
_IGNORED = (NO_RESULT, STOP)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def train_stage1(
    cfg: RunConfig,
    run_dir: str | os.PathLike[str],
    *,
    data: PreparedData | None = None,
    resume: bool = True,
    stop_after_steps: int | None = None,
) -> Path:
    """Train the stage-1 tokenizer of one run; resume it if interrupted; skip it if finished.

    The run directory gets ``config.yaml``, ``stage1/metrics.jsonl``, ``stage1/checkpoints/last.pt``
    (every ``cfg.stage1.checkpoint_every`` steps) and, once done, ``stage1/checkpoints/final.pt`` plus
    the key ``"stage1"`` of ``results.json`` (see :func:`ncvqvae.evaluation.stage1_metrics.evaluate_stage1`).

    Args:
        cfg: the run's config; ``cfg.stage1`` holds the model and optimisation settings, ``cfg.seed``
            the seed every random draw derives from, ``cfg.device`` the device ("auto" = cuda if present).
        run_dir: the run directory (created if needed).
        data: prepared data; ``None`` loads ``cfg.data`` with :func:`ncvqvae.data.prepare.load_prepared`.
        resume: continue from ``last.pt`` when it exists (the config must agree in every field that
            changes the result); ``False`` discards it and starts over.
        stop_after_steps: test hook simulating a kill: write ``last.pt`` after this many steps and return
            its path without finishing.

    Returns:
        The path of ``final.pt`` (of ``last.pt`` when stopped by ``stop_after_steps``).

    Raises:
        ConfigError: the run directory holds a run with a different config (the fields are named).
        CheckpointError: ``last.pt`` is unreadable or belongs to other data.
        TrainingError: the loss became non-finite (the step and every loss term are named).
    """
    run = RunDir(run_dir)
    final_path = run.checkpoint_path(STAGE, "final")
    last_path = run.checkpoint_path(STAGE, "last")
    s1 = cfg.stage1

    # --- finished work is never redone -----------------------------------------------------------
    if final_path.is_file():
        if run.config_path.is_file():
            check_same_result(run.read_config(), cfg, source=str(run.config_path))
        log.info("stage 1 of %s is already finished: %s", run.root, final_path)
        return final_path

    # --- resume or start over ---------------------------------------------------------------------
    device = pick_device(cfg.device)  # a bad device name fails here, before anything is written
    arithmetic = resolved(cfg.precision, device)  # bf16: convolutions and projector; fp32 weights, losses
    checkpoint: dict[str, Any] | None = None
    if last_path.is_file():
        if resume:
            checkpoint = load_checkpoint(last_path, STAGE)
            check_same_result(saved_run_config(checkpoint, last_path, STAGE), cfg, source=str(last_path))
        else:
            log.info("not resuming: discarding %s", last_path)
            last_path.unlink()
    run.write_config(cfg)

    data = data if data is not None else _load_data(cfg)
    _check_training_data(data)
    stats = data_stats(data)
    if checkpoint is not None:
        check_same_data(checkpoint.get("data_stats", {}), stats, last_path)

    n_train = int(data.X_train.shape[0])
    # SPEC §3: cosine T_max = epochs · (ceil(N / batch) + 1), as the reference (lr never quite reaches 0).
    plan = plan_steps(n_train, s1.batch_size, s1.epochs, s1.max_steps, s1.steps)
    n_steps_epoch, total_steps = plan.steps_per_epoch, plan.total_steps

    # The loop owns the global RNG (model init, dropout) while it runs; fork_rng gives the caller's
    # state back afterwards.
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(derive_seed(cfg.seed, STAGE, "init"))
        model = _build_model(cfg, data).to(device)
        # Fused AdamW: one kernel over all 34.6 M parameters instead of a per-tensor loop, ~15% of an
        # NC step on CPU (docs/benchmarks.md); same update rule.
        fused = device.type in ("cpu", "cuda")
        optimizer = torch.optim.AdamW(model.parameters(), lr=s1.lr, weight_decay=s1.weight_decay, fused=fused)
        scheduler = cosine_schedule(optimizer, plan.t_max, s1.warmup_steps)
        aug_generator = make_generator(derive_seed(cfg.seed, STAGE, "augment"), device)
        augment = _build_augmentation(cfg) if model.is_nc else None
        # Everything a checkpoint saves and a resume restores.
        generators = {"augment": aug_generator}
        live = dict(model=model, optimizer=optimizer, scheduler=scheduler, generators=generators)

        step = 0
        epoch_sums: dict[str, float] = {}  # running sums of the loss terms over the current epoch
        if checkpoint is not None:
            step, epoch_sums = restore_loop_state(checkpoint, **live)
            log.info("resuming stage 1 of %s at step %d of %d", run.root, step, total_steps)
        else:
            log.info("training stage 1 of %s: %d steps on %s (%s)", run.root, total_steps, device,
                     arithmetic)

        def save_last() -> None:
            sums = steplog.epoch_sums
            state = loop_state(**live, step=step, steps_per_epoch=n_steps_epoch, epoch_sums=sums)
            payload = {"model_config": model_config(model), **state}
            payload.update(data_stats=stats, run_config=to_dict(cfg))
            save_checkpoint(last_path, STAGE, payload)

        # The whole training split lives on the device; a batch is one index_select, no DataLoader.
        X_train = data.X_train.to(device)
        saved_step = step if checkpoint is not None else -1

        metrics = MetricsLog(run.metrics_path(STAGE), resume_step=step if checkpoint is not None else None)
        bar = progress(total=total_steps, initial=step, desc="stage 1", enabled=cfg.progress)
        # progress bar, step records every log_every steps, epoch means (resumed from epoch_sums)
        steplog = StepLog(metrics, bar, log_every=s1.log_every, steps_per_epoch=n_steps_epoch,
                          total_steps=total_steps, epoch_sums=epoch_sums)
        try:
            model.train()
            schedule = step_batches(n_train, s1.batch_size, seed=cfg.seed, start=step, total=total_steps)
            for epoch, index in schedule:  # the batch order of an epoch is a function of (seed, epoch)
                x = X_train[index.to(device)]  # (B, C, L)
                x_aug = augment(x, aug_generator) if augment is not None else None

                lr = optimizer.param_groups[0]["lr"]
                with autocast(cfg.precision, device):
                    out = model(x, x_aug)
                # One device sync per step: every term as a Python float, for the guard and the logs.
                stacked = torch.stack([out.loss, *out.terms.values()]).detach().float().tolist()
                values = dict(zip(["loss", *out.terms], stacked, strict=True))
                check_finite(step + 1, values)

                optimizer.zero_grad(set_to_none=True)
                out.loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                end_of_epoch = steplog.step(step, epoch, lr, values, x.shape[0])
                if end_of_epoch and s1.eval_every and (epoch + 1) % s1.eval_every == 0 and step < total_steps:
                    _log_evaluation(metrics, model, data, cfg, step=step, epoch=epoch)
                if step % s1.checkpoint_every == 0 or step == stop_after_steps:
                    save_last()
                    saved_step = step
                if step == stop_after_steps:
                    log.info("stopping stage 1 at step %d (stop_after_steps)", step)
                    return last_path

            # --- the end: last checkpoint, evaluation, then promote it to final.pt ----------------------
            if saved_step != step:
                save_last()
            last_epoch = max(step - 1, 0) // n_steps_epoch
            results = _log_evaluation(metrics, model, data, cfg, step=step, epoch=last_epoch)
        finally:
            bar.close()
            metrics.close()

    record = stage1_record(results, checkpoint=final_path, run_root=run.root, step=step)
    record["precision"] = arithmetic  # the training's arithmetic (stage 2 records it in its checkpoints)
    update_results(run.root, STAGE, record)
    os.replace(last_path, final_path)
    log.info("stage 1 finished: %s", final_path)
    return final_path


def _log_evaluation(
    metrics: MetricsLog, model: torch.nn.Module, data: PreparedData, cfg: RunConfig, *, step: int, epoch: int
) -> dict[str, Any]:
    """Evaluate the model (eval mode, no state change) and write the scalars as an "eval" record."""
    results = evaluate_stage1(model, data, cfg.evaluation)
    metrics.write({"step": step, "epoch": epoch, "event": "eval", **headline(results)})
    return results


# --------------------------------------------------------------------------------------------------
# Config and data checks
# --------------------------------------------------------------------------------------------------


def result_fields(cfg: RunConfig) -> dict[str, Any]:
    """The flattened config fields that determine the trained stage-1 weights (dotted names)."""
    return config_result_fields(cfg, sections=("seed", "data", "stage1"), ignoring=_IGNORED)


def check_same_result(saved: RunConfig, cfg: RunConfig, *, source: str) -> None:
    """Refuse to continue a run whose saved config differs in a field that changes stage 1's result.

    Raises:
        ConfigError: naming every differing field with its saved and requested value.
    """
    refuse_changed_fields(
        result_fields(saved),
        result_fields(cfg),
        source=source,
        what="this run was made with another stage-1 config",
    )


def _check_training_data(data: PreparedData) -> None:
    X = data.X_train
    if X.ndim != 3:
        raise DataError(
            f"dataset {data.name!r}: X_train must be (n_cases, n_channels, n_timepoints), is {tuple(X.shape)}"
        )
    if X.shape[0] < 2:
        raise DataError(f"dataset {data.name!r}: stage 1 needs at least 2 training series, got {X.shape[0]}")
    if not torch.isfinite(X).all():
        raise DataError(f"dataset {data.name!r}: X_train holds NaN or inf after preparation")


# --------------------------------------------------------------------------------------------------
# Building and loading
# --------------------------------------------------------------------------------------------------


def _load_data(cfg: RunConfig) -> PreparedData:
    return load_prepared(cfg.data, seed=cfg.seed)


def _build_augmentation(cfg: RunConfig) -> Augmentation:
    return build_augmentation(cfg.stage1.augmentation)


def _build_model(cfg: RunConfig, data: PreparedData) -> VQVAE:
    return build_tokenizer(cfg.stage1, data.n_channels, data.length)


def model_config(model: VQVAE) -> dict[str, Any]:
    """The constructor arguments that rebuild ``model`` (stored as ``model_config`` in checkpoints)."""
    return dict(model.config_dict())


def model_from_config(config: dict[str, Any]) -> VQVAE:
    """Rebuild an (untrained) VQVAE from :func:`model_config`'s dict."""
    return VQVAE.from_config(config)


def resolve_stage1_checkpoint(run_dir_or_checkpoint: str | os.PathLike[str]) -> Path:
    """The stage-1 checkpoint of a run: ``final.pt``, else ``last.pt`` (with a warning), or a file given.

    A run made by ``train stage2 --out`` has no stage 1 of its own: its ``stage2/source.json`` names
    the stage-1 checkpoint its prior was trained on, and that one is returned.

    Raises:
        CheckpointError: neither exists (nor a recorded one).
    """
    path = Path(run_dir_or_checkpoint)
    if path.is_file():
        return path
    for root in (path / STAGE / "checkpoints", path / "checkpoints", path):
        if (root / "final.pt").is_file():
            return root / "final.pt"
        if (root / "last.pt").is_file():
            log.warning("%s: stage 1 is not finished; using %s", path, root / "last.pt")
            return root / "last.pt"
    if path.is_dir():
        recorded = RunDir(path).recorded_stage1_checkpoint()  # a stage-2 run whose stage 1 lives elsewhere
        if recorded is not None:
            return recorded
    expected = path / STAGE / "checkpoints" / "final.pt"
    raise CheckpointError(
        f"{path}: no stage-1 checkpoint (expected {expected}, or stage2/source.json naming one)"
    )


def load_stage1_checkpoint(
    run_dir_or_checkpoint: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Load a run's stage-1 checkpoint dict (weights-only), with its path under ``"path"``.

    Keys: ``model_config``, ``model``, ``optimizer``, ``scheduler``, ``rng``, ``step``, ``epoch``,
    ``data_stats`` ({name, mean, std, normalization, n_classes, label_values, class_names, class_counts,
    n_train, length, channels}), ``run_config`` (the RunConfig as a dict), ``path``.
    """
    path = resolve_stage1_checkpoint(run_dir_or_checkpoint)
    checkpoint = load_checkpoint(path, STAGE, map_location=map_location)
    for key in ("model_config", "model", "data_stats", "step"):
        if key not in checkpoint:
            raise CheckpointError(f"{path}: stage-1 checkpoint without {key!r}")
    checkpoint["path"] = path
    return checkpoint


def load_tokenizer(
    run_dir_or_checkpoint: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> VQVAE:
    """The trained tokenizer of a run (``final.pt``, else ``last.pt``), on ``device`` and in eval mode.

    Returns:
        the :class:`ncvqvae.models.tokenizer.VQVAE`.
    """
    return tokenizer_from_checkpoint(load_stage1_checkpoint(run_dir_or_checkpoint), device)


def tokenizer_from_checkpoint(checkpoint: dict[str, Any], device: str | torch.device = "cpu") -> VQVAE:
    """Rebuild the VQVAE of a dict from :func:`load_stage1_checkpoint`, on ``device`` in eval mode."""
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten; keep the caller's RNG
        model = model_from_config(checkpoint["model_config"])
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{checkpoint['path']}: weights do not fit the stored model config: {str(err).splitlines()[0]}"
        ) from err
    return model.to(device).eval()
