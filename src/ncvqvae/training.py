"""Machinery shared by every training loop: checkpoints, RNG state, schedules, metrics logs.

The loops themselves (stage 1, stage 2, the FCN evaluator) are written out top to bottom in their own
modules; this file only holds the pieces they share, so that resume, determinism and the non-finite
guard behave the same everywhere.

Exact resume works because every random draw of a loop comes from state that is checkpointed: the
batch order of an epoch is a pure function of (seed, epoch) (:func:`epoch_batches`), the loop's own
``torch.Generator`` state is saved, and so is PyTorch's global CPU RNG (dropout).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import platform
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ncvqvae import allocator
from ncvqvae.config import RunConfig, from_dict
from ncvqvae.errors import CheckpointError, ConfigError, TrainingError
from ncvqvae.home import atomic_path, atomic_write_text
from ncvqvae.precision import cpu_bf16_isa

# The run directory moved to ncvqvae.rundir; these names stay importable from here for older callers.
from ncvqvae.rundir import STAGE2_SOURCE_FILE as STAGE2_SOURCE_FILE
from ncvqvae.rundir import RunDir as RunDir
from ncvqvae.rundir import recorded_checkpoint as recorded_checkpoint

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "ncvqvae-checkpoint"
CHECKPOINT_VERSION = 1


# --------------------------------------------------------------------------------------------------
# Devices and seeds
# --------------------------------------------------------------------------------------------------


def pick_device(name: str = "auto") -> torch.device:
    """Resolve ``"auto"`` to cuda when available, else cpu; anything else is passed to torch.

    Raises:
        ConfigError: the name is not a device, or names a CUDA device this machine does not have (caught
            here, before a model is built, instead of deep inside PyTorch).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"device: {name!r} is not a device name (auto, cpu, cuda, cuda:1, ...)") from err
    if device.type == "cuda" and (
        not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()
    ):
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        raise ConfigError(f"device: {name!r} requested, but this machine has {available} CUDA device(s)")
    return device


def processor_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device | str) -> dict[str, Any]:
    """What a step ran on, for its timings: device, processor and its bf16 instructions, cores, torch
    threads and version, and whether freed memory is reused (:mod:`ncvqvae.allocator`)."""
    device = torch.device(device)
    info: dict[str, Any] = {
        "device": str(device),
        "processor": processor_name(),
        "cpu_bf16": cpu_bf16_isa(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "allocator": allocator.current(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed``."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def derive_seed(*parts: int | str) -> int:
    """A stable 63-bit seed from several parts (seed, epoch, a purpose string...)."""
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def epoch_batches(
    n: int, batch_size: int, *, seed: int, epoch: int, shuffle: bool = True
) -> list[torch.Tensor]:
    """The index batches of one epoch, a pure function of (seed, epoch).

    A trailing batch of a single sample is merged into the previous one, since BatchNorm and the
    batch-standardised SSL losses are undefined on one sample.
    """
    if shuffle:
        order = torch.randperm(n, generator=make_generator(derive_seed(seed, "epoch", epoch)))
    else:
        order = torch.arange(n)
    batches = list(torch.split(order, batch_size))
    if len(batches) > 1 and len(batches[-1]) == 1 < batch_size:  # a remainder of one, not batch_size 1
        last = batches.pop()  # pop first: `batches[-2] = cat([..., batches.pop()])` hits the wrong slot
        batches[-1] = torch.cat([batches[-1], last])
    return batches


def step_batches(
    n: int, batch_size: int, *, seed: int, start: int, total: int
) -> Iterator[tuple[int, torch.Tensor]]:
    """``(epoch, index batch)`` of optimiser steps ``start + 1 .. total``, resuming mid-epoch exactly.

    The batches are those of :func:`epoch_batches`, so a loop resumed at step k sees the same batches
    as an uninterrupted one from step k + 1 on.
    """
    per_epoch = steps_per_epoch(n, batch_size)
    batches: list[torch.Tensor] = []
    batches_epoch = -1
    for step in range(start, total):
        epoch, position = divmod(step, per_epoch)
        if epoch != batches_epoch:
            batches, batches_epoch = epoch_batches(n, batch_size, seed=seed, epoch=epoch), epoch
        yield epoch, batches[position]


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Number of optimiser steps in one epoch (matches :func:`epoch_batches`)."""
    full, rest = divmod(n, batch_size)
    if rest == 0:
        return max(full, 1)
    return full + (1 if rest >= 2 or full == 0 else 0)


def cosine_schedule(
    optimizer: torch.optim.Optimizer, t_max: int, warmup: int = 0
) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine annealing from the optimiser's lr to 0 over ``t_max`` steps, stepped once per step.

    ``warmup`` > 0 first raises the lr linearly from lr / warmup to lr over that many steps, then the
    cosine runs over the remaining ``t_max − warmup`` steps (not in SPEC: for short budgets).
    """
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(int(t_max) - warmup, 1), eta_min=0.0
    )
    if warmup <= 0:
        return cosine
    linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup, total_iters=warmup)
    return torch.optim.lr_scheduler.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])


@dataclass(frozen=True)
class StepPlan:
    """How many optimiser steps a loop takes, and the horizon of its cosine schedule."""

    steps_per_epoch: int
    total_steps: int  # epochs · steps_per_epoch (or the steps asked for), capped by max_steps
    # epochs · (ceil(N / batch) + 1): the reference's T_max (SPEC §3), one step longer per epoch; or the
    # steps asked for, when the budget is counted in steps
    t_max: int


def plan_steps(
    n: int, batch_size: int, epochs: int, max_steps: int | None = None, steps: int | None = None
) -> StepPlan:
    """The :class:`StepPlan` of a loop over ``n`` samples; ``max_steps`` cuts it short, not the schedule.

    ``steps`` counts the budget in optimiser steps instead of ``epochs`` (the same on a dataset of any
    size; the schedule ends with the last step).
    """
    per_epoch = steps_per_epoch(n, batch_size)
    planned, t_max = (
        (epochs * per_epoch, epochs * (math.ceil(n / batch_size) + 1)) if steps is None else (steps, steps)
    )
    total = planned if max_steps is None else min(planned, max_steps)
    return StepPlan(per_epoch, total, t_max)


def check_finite(step: int, terms: Mapping[str, float | torch.Tensor]) -> None:
    """Raise :class:`TrainingError` naming the step and every loss term when one is not finite."""
    values = {k: float(v) for k, v in terms.items()}
    if not all(math.isfinite(v) for v in values.values()):
        listing = ", ".join(f"{k}={v:.6g}" for k, v in values.items())
        raise TrainingError(f"non-finite loss at step {step}: {listing}")


# --------------------------------------------------------------------------------------------------
# RNG state
# --------------------------------------------------------------------------------------------------


def rng_state(generators: Mapping[str, torch.Generator]) -> dict[str, torch.Tensor]:
    """Capture the global CPU RNG and the named generators' states (tensors: weights-only safe)."""
    state = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state()
    for name, gen in generators.items():
        state[f"gen:{name}"] = gen.get_state()
    return state


def set_rng_state(state: Mapping[str, torch.Tensor], generators: Mapping[str, torch.Generator]) -> None:
    """Restore what :func:`rng_state` captured."""
    missing = [k for k in ["torch_cpu", *(f"gen:{name}" for name in generators)] if k not in state]
    if missing:
        raise CheckpointError(f"RNG state lacks {', '.join(missing)}; was it saved with other generators?")
    torch.set_rng_state(state["torch_cpu"].cpu())
    if "torch_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["torch_cuda"].cpu())
    for name, gen in generators.items():
        gen.set_state(state[f"gen:{name}"].cpu())


# --------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------


def save_checkpoint(path: str | Path, kind: str, payload: Mapping[str, Any]) -> None:
    """Atomically write a checkpoint of ``kind`` ("stage1", "stage2", "fcn", ...).

    ``payload`` holds tensors, numbers, strings, lists and dicts only (so it loads with
    ``weights_only=True``); configs are stored as plain dicts.
    """
    data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "kind": kind, **payload}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def loop_state(
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generators: Mapping[str, torch.Generator],
    step: int,
    steps_per_epoch: int,
    epoch_sums: Mapping[str, float],
) -> dict[str, Any]:
    """The part of a checkpoint payload that resumes a loop exactly (see :func:`restore_loop_state`).

    Keys: ``model``, ``optimizer``, ``scheduler`` (state dicts), ``rng`` (:func:`rng_state`), ``step``,
    ``epoch`` (epochs completed), ``epoch_sums`` (running sums of the current epoch's loss terms).
    """
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(generators),
        "step": int(step),
        "epoch": int(step) // steps_per_epoch,
        "epoch_sums": {k: float(v) for k, v in epoch_sums.items()},
    }


def restore_loop_state(
    checkpoint: Mapping[str, Any],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    generators: Mapping[str, torch.Generator],
) -> tuple[int, dict[str, float]]:
    """Load what :func:`loop_state` saved into the live objects; return ``(step, epoch_sums)``."""
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    set_rng_state(checkpoint["rng"], generators)
    return int(checkpoint["step"]), {k: float(v) for k, v in checkpoint.get("epoch_sums", {}).items()}


def load_checkpoint(
    path: str | Path, kind: str | None = None, map_location: str | torch.device = "cpu"
) -> dict:
    """Load a checkpoint with ``weights_only=True``; clear errors for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path}: not a readable checkpoint (truncated or not written by ncvqvae): "
            f"{(str(err).splitlines() or [type(err).__name__])[0]}"
        ) from err
    except Exception as err:  # weights_only refusal of a foreign pickle raises UnpicklingError
        raise CheckpointError(
            f"{path}: refused to load (not an ncvqvae checkpoint): {type(err).__name__}"
        ) from err
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not an ncvqvae checkpoint (no '{CHECKPOINT_FORMAT}' marker)")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data.get('version')} is not {CHECKPOINT_VERSION}")
    if kind is not None and data.get("kind") != kind:
        raise CheckpointError(f"{path}: expected a {kind} checkpoint, found a {data.get('kind')} checkpoint")
    return data


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Hex sha256 of a state_dict's tensors (names, dtypes, shapes and bytes)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        buf = io.BytesIO()
        torch.save(tensor, buf)
        digest.update(buf.getvalue())
    return digest.hexdigest()


def saved_run_config(checkpoint: Mapping[str, Any], path: str | Path, stage: str) -> RunConfig:
    """The RunConfig a checkpoint of ``stage`` was trained with (its ``run_config`` entry)."""
    if "run_config" not in checkpoint:
        raise CheckpointError(f"{path}: {stage.replace('stage', 'stage-')} checkpoint without 'run_config'")
    return from_dict(RunConfig, checkpoint["run_config"], source=str(path))


def refuse_changed_fields(old: Mapping[str, Any], new: Mapping[str, Any], *, source: str, what: str) -> None:
    """Raise :class:`ConfigError` naming every field whose saved and requested values differ.

    Args:
        old, new: flat ``{"stage1.lr": ...}`` maps of the fields that change a stage's result.
        source: the file the saved values came from.
        what: the message's subject, e.g. "this run was made with another stage-1 config".
    """
    differ = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if differ:
        listing = "; ".join(f"{k}: saved {old.get(k)!r}, requested {new.get(k)!r}" for k in differ)
        raise ConfigError(f"{source}: {what} ({listing}); use another run directory, or the saved settings")


class MetricsLog:
    """Append-only JSON-lines metrics log; on resume, records after the resumed step are dropped."""

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            if self.path.exists():
                self.path.unlink()
        elif self.path.exists():
            kept = [line for line in self.path.read_text().splitlines() if _record_step(line) <= resume_step]
            atomic_write_text(self.path, "".join(line + "\n" for line in kept))
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps({"time": round(time.time(), 3), **record}, default=float) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh.closed:  # closing twice (explicitly, then by the with-block) is harmless
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _record_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", -1))
    except (ValueError, AttributeError):
        return 1 << 62  # an unreadable line (torn write) is dropped


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON-lines metrics log, skipping a torn last line."""
    out = []
    path = Path(path)
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def progress(
    iterable: Any = None, *, total: int | None = None, desc: str = "", enabled: bool = True, initial: int = 0
) -> Iterator:
    """A tqdm progress bar, or a silent pass-through when disabled."""
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        disable=not enabled,
        initial=initial,
        dynamic_ncols=True,
        leave=False,
    )


class StepLog:
    """The per-step bookkeeping every training loop shares: progress bar, JSON-lines records, epoch means.

    After each optimiser step, :meth:`step` advances the bar and, every ``log_every`` steps (and at the
    last one), writes ``{"step", "epoch", "lr", <values>, "samples_per_s"}``; at the end of every epoch it
    writes ``{"epoch", "step", "event": "epoch", <mean of each value over the epoch>}``. ``epoch_sums``
    (the running sums of the current epoch) belongs in checkpoints (:func:`loop_state`), so a resumed
    epoch reports the same means as an uninterrupted one.
    """

    def __init__(
        self,
        metrics: MetricsLog,
        bar: Any,
        *,
        log_every: int,
        steps_per_epoch: int,
        total_steps: int,
        epoch_sums: Mapping[str, float] | None = None,
    ) -> None:
        self.metrics, self.bar = metrics, bar
        self.log_every, self.steps_per_epoch, self.total_steps = log_every, steps_per_epoch, total_steps
        self.epoch_sums: dict[str, float] = dict(epoch_sums or {})
        self._window_start, self._window_samples = time.perf_counter(), 0

    def step(self, step: int, epoch: int, lr: float, values: Mapping[str, float], batch_size: int) -> bool:
        """Book optimiser step number ``step`` (counted from 1) of ``epoch``; True when it ended the epoch."""
        self._window_samples += batch_size
        for name, value in values.items():
            self.epoch_sums[name] = self.epoch_sums.get(name, 0.0) + value
        self.bar.update(1)
        if "loss" in values:
            self.bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
        if step % self.log_every == 0 or step == self.total_steps:
            now = time.perf_counter()
            rate = self._window_samples / max(now - self._window_start, 1e-9)
            self.metrics.write({"step": step, "epoch": epoch, "lr": lr, **values, "samples_per_s": rate})
            self._window_start, self._window_samples = now, 0
        if step % self.steps_per_epoch:
            return False
        means = {k: v / self.steps_per_epoch for k, v in self.epoch_sums.items()}
        self.metrics.write({"epoch": epoch, "step": step, "event": "epoch", **means})
        self.epoch_sums = {}
        return True
