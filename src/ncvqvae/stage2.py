"""Stage 2: train the MaskGIT prior over a frozen stage-1 tokenizer, and load the generator back (SPEC §4).

:func:`train_stage2` is the whole loop, written out top to bottom in the same shape as
:func:`ncvqvae.stage1.train_stage1`: resolve the run directory (finished → return, interrupted →
resume), tie the run to its stage-1 checkpoint, build data, tokens, prior, AdamW and the per-step cosine
schedule, then per step draw a batch's tokens (stochastic VQ), classes (with class dropout) and mask,
forward, guard against a non-finite loss, backward, step, log, checkpoint; at the end promote the last
checkpoint to ``final.pt``.

Stochastic tokenization without the encoder in the loop: the tokenizer is frozen and in eval mode, so
its latents are a deterministic function of the series. The logits −‖z − e_k‖²/τ of every training
series are computed once at the start, (n_train, N, K), and each batch only draws its codes from them
(Gumbel-max with the loop's generator), which samples exactly softmax(−‖z − e_k‖²/τ) (SPEC §3 "stochastic
VQ") at a fraction of the cost of running the encoder per batch.

Exact resume: the batch order of an epoch is a pure function of (seed, epoch), every other draw (codes,
class dropout, t, mask positions) comes from the loop's own checkpointed ``torch.Generator``, dropout
uses the global RNG (checkpointed), and model, optimiser and scheduler states are saved.

Provenance: ``stage2/source.json`` (and every stage-2 checkpoint) records which stage-1 checkpoint the
prior was trained on, by path and sha256; resuming, or loading with :func:`load_generator`, refuses a
stage-1 checkpoint whose bytes changed since.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from einops import rearrange

from ncvqvae.config import (
    NO_RESULT,
    SAMPLING,
    STOP,
    Decoding,
    RunConfig,
    Stage2Config,
    resolve_config,
    result_fields,
    to_dict,
)
from ncvqvae.data.dataset import PreparedData
from ncvqvae.data.prepare import load_prepared
from ncvqvae.data.stats import data_stats
from ncvqvae.errors import CheckpointError, ConfigError, DataError
from ncvqvae.home import atomic_write_json
from ncvqvae.maskgit import MASKING_CONVENTIONS, draw_mask, masked_token_loss, sample_categorical
from ncvqvae.models.prior import PRIOR_VARIANTS, BidirectionalTransformer
from ncvqvae.models.tokenizer import VQVAE
from ncvqvae.precision import autocast, resolved
from ncvqvae.rundir import STAGE2_SOURCE_FILE, RunDir, recorded_checkpoint
from ncvqvae.stage1 import load_stage1_checkpoint, resolve_stage1_checkpoint, tokenizer_from_checkpoint
from ncvqvae.training import (
    MetricsLog,
    StepLog,
    check_finite,
    cosine_schedule,
    derive_seed,
    file_sha256,
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
    state_dict_sha256,
    step_batches,
)

log = logging.getLogger(__name__)

STAGE = "stage2"
SOURCE_FILE = STAGE2_SOURCE_FILE

# Fields that never change the trained prior (config.py tags them): a resumed (or finished) run may be
# invoked with other values. The decoding fields only matter when sampling.
_IGNORED = (NO_RESULT, STOP, SAMPLING)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def train_stage2(
    cfg: RunConfig,
    run_dir: str | os.PathLike[str],
    *,
    stage1_dir: str | os.PathLike[str] | None = None,
    tokenizer: VQVAE | None = None,
    data: PreparedData | None = None,
    resume: bool = True,
    stop_after_steps: int | None = None,
) -> Path:
    """Train the stage-2 prior of one run; resume it if interrupted; skip it if finished.

    The run directory gets ``stage2/source.json``, ``stage2/metrics.jsonl``,
    ``stage2/checkpoints/last.pt`` (every ``cfg.stage2.checkpoint_every`` steps) and, once done,
    ``stage2/checkpoints/final.pt``. ``config.yaml`` is written when the run directory has none; an
    existing one (the stage-1 run's) keeps its content and gets this stage 2's ``stage2`` section.

    Args:
        cfg: the run's config; ``cfg.stage2`` holds the prior and optimisation settings, ``cfg.seed``
            the seed every random draw derives from, ``cfg.device`` the device ("auto" = cuda if present).
        run_dir: the run directory (created if needed).
        stage1_dir: the run directory (or checkpoint file) of the stage-1 tokenizer; default ``run_dir``
            (one run directory holds both stages).
        tokenizer: the loaded stage-1 tokenizer (a ``VQVAE``; moved to the device and put in eval mode).
            ``None`` loads it from ``stage1_dir``.
            When given together with a stage-1 checkpoint, its weights must equal the checkpoint's; when
            no stage-1 checkpoint exists, the run records the tokenizer's weight hash instead.
        data: prepared data; ``None`` loads ``cfg.data`` with :func:`ncvqvae.data.prepare.load_prepared`.
        resume: continue from ``last.pt`` when it exists; ``False`` discards it and starts over.
        stop_after_steps: test hook simulating a kill: write ``last.pt`` after this many steps and return
            its path without finishing.

    Returns:
        The path of ``final.pt`` (of ``last.pt`` when stopped by ``stop_after_steps``).

    Raises:
        CheckpointError: the stage-1 checkpoint changed since this stage 2 started, the tokenizer given
            differs from the stage-1 checkpoint, or ``last.pt`` is unreadable.
        ConfigError: the run holds a stage 2 trained with another config (the fields are named), or the
            data differs from what the tokenizer was trained on.
        TrainingError: the loss became non-finite (the step and the loss are named).
    """
    run = RunDir(run_dir)
    s2 = cfg.stage2
    _check_stage2_config(s2)
    final_path = run.checkpoint_path(STAGE, "final")
    last_path = run.checkpoint_path(STAGE, "last")
    stage1_dir = Path(stage1_dir) if stage1_dir is not None else run.root
    device = pick_device(cfg.device)

    # --- which tokenizer, and is it still the one this stage 2 was built on? ----------------------
    stage1 = _load_stage1(stage1_dir, tokenizer)
    source = stage1.source(run.root)

    # --- finished work is never redone; a stage stopped by max_steps continues when asked for more --
    if final_path.is_file():
        finished = load_checkpoint(final_path, STAGE)
        check_same_source(finished["source"], source, where=final_path)
        check_same_prior_config(saved_run_config(finished, final_path, STAGE), cfg, source=str(final_path))
        done, wanted = int(finished["step"]), _planned_steps(s2, finished)
        if done >= wanted:
            log.info("stage 2 of %s is already finished: %s", run.root, final_path)
            return final_path
        # max_steps cuts the run short without changing its schedule, so the final checkpoint of a
        # shorter run is exactly the state this run has at that step: continue from it.
        log.info("stage 2 of %s stopped at step %d: continuing to step %d", run.root, done, wanted)
        os.replace(final_path, last_path)
        resume = True

    # --- resume or start over ---------------------------------------------------------------------
    checkpoint: dict[str, Any] | None = None
    if last_path.is_file():
        if resume:
            checkpoint = load_checkpoint(last_path, STAGE)
            check_same_source(checkpoint["source"], source, where=last_path)
            saved = saved_run_config(checkpoint, last_path, STAGE)
            check_same_prior_config(saved, cfg, source=str(last_path))
        else:
            log.info("not resuming: discarding %s", last_path)
            last_path.unlink()
    if run.config_path.is_file():  # e.g. the stage-1 run: keep its record, add this stage 2's settings
        saved_cfg = run.read_config()
        _check_same_run(saved_cfg, cfg, run.config_path)
        run.write_config(dataclasses.replace(saved_cfg, stage2=cfg.stage2))
    else:
        run.write_config(cfg)
    atomic_write_json(run.stage_dir(STAGE) / SOURCE_FILE, source)

    data = data if data is not None else _load_data(cfg)
    stats = data_stats(data)
    _check_same_data(stage1.data_stats, stats, stage1.path)
    tokenizer = stage1.tokenizer.to(device).eval()  # frozen: only its no-grad encoder pass below

    n_train = int(data.X_train.shape[0])
    # the same T_max as stage 1 (SPEC §3/§4, as the reference): epochs · (ceil(N / batch) + 1)
    plan = plan_steps(n_train, s2.batch_size, s2.epochs, s2.max_steps, s2.steps)
    n_steps_epoch, total_steps = plan.steps_per_epoch, plan.total_steps

    precision = resolved(cfg.precision, device)  # bf16: matmuls; fp32 master weights and loss

    # The loop owns the global RNG (model init, dropout) while it runs; fork_rng gives the caller's
    # state back afterwards.
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(derive_seed(cfg.seed, STAGE, "init"))
        prior = build_prior(s2, tokenizer, n_classes=stats["n_classes"]).to(device)
        # fused AdamW as in stage 1 (one kernel instead of a per-tensor loop; same update rule)
        fused = device.type in ("cpu", "cuda")
        optimizer = torch.optim.AdamW(prior.parameters(), lr=s2.lr, weight_decay=s2.weight_decay, fused=fused)
        scheduler = cosine_schedule(optimizer, plan.t_max, s2.warmup_steps)
        # codes, class dropout, t and mask positions: every draw of the loop comes from this generator
        generator = make_generator(derive_seed(cfg.seed, STAGE, "draws"), device)
        live = dict(model=prior, optimizer=optimizer, scheduler=scheduler, generators={"draws": generator})

        step = 0
        epoch_sums: dict[str, float] = {}
        if checkpoint is not None:
            step, epoch_sums = restore_loop_state(checkpoint, **live)
            log.info("resuming stage 2 of %s at step %d of %d", run.root, step, total_steps)
        else:
            log.info("training stage 2 of %s: %d steps on %s (%s)", run.root, total_steps, device, precision)

        def save_last() -> None:
            sums = steplog.epoch_sums
            state = loop_state(**live, step=step, steps_per_epoch=n_steps_epoch, epoch_sums=sums)
            payload = {"model_config": dict(prior.config), **state}
            payload.update(data_stats=stats, source=source, run_config=to_dict(cfg), precision=precision)
            save_checkpoint(last_path, STAGE, payload)

        # Everything a batch needs lives on the device: the code logits of every training series and
        # the labels; a batch is one index_select and one Gumbel-max draw, no encoder pass.
        codes = TrainingTokens.from_tokenizer(tokenizer, data.X_train.to(device), s2.tokenize_temperature)
        null = prior.null_class
        labels = data.y_train.to(device) if stats["n_classes"] and data.y_train is not None else None
        saved_step = step if checkpoint is not None else -1

        metrics = MetricsLog(run.metrics_path(STAGE), resume_step=step if checkpoint is not None else None)
        bar = progress(total=total_steps, initial=step, desc="stage 2", enabled=cfg.progress)
        steplog = StepLog(metrics, bar, log_every=s2.log_every, steps_per_epoch=n_steps_epoch,
                          total_steps=total_steps, epoch_sums=epoch_sums)
        try:
            prior.train()
            schedule = step_batches(n_train, s2.batch_size, seed=cfg.seed, start=step, total=total_steps)
            for epoch, index in schedule:
                index = index.to(device)
                tokens = codes.draw(index, generator)  # (B, N), stochastic VQ
                batch = tokens.shape[0]
                classes = labels[index] if labels is not None else torch.full((batch,), null, device=device)
                dropped = torch.rand(batch, generator=generator, device=device) < s2.class_dropout
                classes = classes.masked_fill(dropped, null)  # classifier-free guidance learns the null class
                masked = draw_mask(batch, codes.n_tokens, convention=s2.masking, generator=generator)

                lr = optimizer.param_groups[0]["lr"]
                with autocast(cfg.precision, device):
                    logits = prior(tokens, classes, masked.mask)  # (B, N, K)
                    loss, accuracy = masked_token_loss(logits, tokens, masked.loss_mask)
                values = {"loss": float(loss.detach()), "accuracy": float(accuracy)}
                values["mask_ratio"] = masked.n_masked / codes.n_tokens
                check_finite(step + 1, values)

                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                step += 1
                steplog.step(step, epoch, lr, values, batch)
                if step % s2.checkpoint_every == 0 or step == stop_after_steps:
                    save_last()
                    saved_step = step
                if step == stop_after_steps:
                    log.info("stopping stage 2 at step %d (stop_after_steps)", step)
                    return last_path

            if saved_step != step:
                save_last()
        finally:
            bar.close()
            metrics.close()

    os.replace(last_path, final_path)
    log.info("stage 2 finished: %s", final_path)
    return final_path


def stage2_config(
    stage1_dir: str | os.PathLike[str],
    *,
    preset: str | None = None,
    files: Sequence[str | os.PathLike[str]] = (),
    overrides: Sequence[str] = (),
    fields: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The config of a stage 2 over the trained stage 1 in ``stage1_dir``.

    It starts from the stage-1 run's ``config.yaml`` (its data, seed and tokenizer settings); ``preset``,
    ``files``, ``fields`` and ``overrides`` apply on top as in :func:`ncvqvae.config.resolve_config`.
    The stage-1 section stays the trained tokenizer's: a preset's or file's own ``stage1`` settings would
    misdescribe it, so they are dropped with a warning.
    """
    stage1_cfg = RunDir(stage1_dir).read_config()
    cfg = resolve_config(
        base=to_dict(stage1_cfg), preset=preset, files=list(files), fields=fields, overrides=list(overrides)
    )
    if cfg.stage1 != stage1_cfg.stage1:
        log.warning("ignoring stage-1 settings: the tokenizer of %s is used as trained", stage1_dir)
        cfg = dataclasses.replace(cfg, stage1=stage1_cfg.stage1)
    return cfg


def is_finished(cfg: RunConfig, run_dir: str | os.PathLike[str]) -> bool:
    """Whether the run's stage 2 has every step ``cfg`` asks for (:func:`train_stage2` would return at once).

    A final checkpoint is not enough: one stopped by a smaller ``stage2.max_steps`` is continued.
    """
    final_path = RunDir(run_dir).checkpoint_path(STAGE, "final")
    if not final_path.is_file():
        return False
    finished = load_checkpoint(final_path, STAGE)
    return int(finished["step"]) >= _planned_steps(cfg.stage2, finished)


def _planned_steps(s2: Stage2Config, finished: dict[str, Any]) -> int:
    """The steps ``s2`` plans for the training split a finished checkpoint was trained on."""
    n_train = int(finished["data_stats"]["n_train"])
    return plan_steps(n_train, s2.batch_size, s2.epochs, s2.max_steps, s2.steps).total_steps


@dataclass
class TrainingTokens:
    """The training set's tokens, drawn per batch by stochastic VQ from precomputed code logits.

    Attributes:
        logits: (n_train, N, K) = −‖z − e_k‖² / τ, or ``None`` when τ = 0.
        nearest: LongTensor (n_train, N) of nearest codes (used when τ = 0).
    """

    logits: torch.Tensor | None
    nearest: torch.Tensor

    @property
    def n_tokens(self) -> int:
        return int(self.nearest.shape[1])

    @classmethod
    @torch.no_grad()
    def from_tokenizer(
        cls, tokenizer: VQVAE, X: torch.Tensor, temperature: float, batch_size: int = 512
    ) -> TrainingTokens:
        """Run the frozen encoder once over X (n, C, L) and keep what the per-batch draws need."""
        logits, nearest = [], []
        for chunk in X.split(batch_size):
            z = tokenizer.encode_latents(chunk)  # (b, D, H', W')
            b = z.shape[0]
            # token order = the tokenizer's: row-major over (H', W'), as encode() returns it
            z_flat = rearrange(z, "b d h w -> (b h w) d")  # (b·N, D)
            dist = tokenizer.quantizer.distances(z_flat).reshape(b, -1, tokenizer.codebook_size)  # (b, N, K)
            nearest.append(dist.argmin(-1))
            if temperature > 0:
                logits.append(-dist / temperature)
        return cls(logits=torch.cat(logits) if logits else None, nearest=torch.cat(nearest))

    def draw(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Tokens (B, N) of the series ``index``: sampled codes, or the nearest codes when τ = 0."""
        if self.logits is None:
            return self.nearest[index]
        return sample_categorical(self.logits[index], generator=generator)


def prior_variant(variant: str, *, nc: bool) -> str:
    """The prior a ``stage2.variant`` gives a tokenizer: ``thesis`` is ``codebook`` for NC, else ``token``."""
    if variant == "thesis":
        return "codebook" if nc else "token"
    return variant


def build_prior(s2: Stage2Config, tokenizer: VQVAE, *, n_classes: int) -> BidirectionalTransformer:
    """The prior network for ``tokenizer``'s token grid, initialised from its codebook.

    ``s2.variant == "thesis"`` picks the reference pairing: ``token`` for a baseline tokenizer,
    ``codebook`` for an NC one.
    """
    variant = prior_variant(s2.variant, nc=tokenizer.is_nc)
    codebook = tokenizer.codebook.detach().float().cpu()  # (K, D)
    return BidirectionalTransformer(
        n_tokens=int(tokenizer.n_tokens),
        codebook_size=int(codebook.shape[0]),
        n_classes=int(n_classes),
        variant=variant,
        code_dim=int(codebook.shape[1]),
        width=s2.width,
        depth=s2.depth,
        heads=s2.heads,
        head_dim=s2.head_dim,
        ff_mult=s2.ff_mult,
        dropout=s2.dropout,
        codebook=codebook,
    )


# --------------------------------------------------------------------------------------------------
# Provenance: which stage-1 checkpoint
# --------------------------------------------------------------------------------------------------


@dataclass
class _Stage1:
    """The tokenizer stage 2 builds on, where it came from and the data statistics it was trained with."""

    tokenizer: VQVAE
    path: Path | None  # the stage-1 checkpoint file, None for a tokenizer passed without one
    sha256: str | None  # of that file
    tokenizer_sha256: str | None  # of the tokenizer's weights, when there is no checkpoint file
    data_stats: dict[str, Any] = field(default_factory=dict)

    def source(self, run_root: Path) -> dict[str, Any]:
        """The record written to ``stage2/source.json`` and into every stage-2 checkpoint."""
        if self.path is None:
            return {"stage1_checkpoint": None, "stage1_checkpoint_relative": None, "sha256": None,
                    "tokenizer_sha256": self.tokenizer_sha256}
        return {
            "stage1_checkpoint": str(self.path.resolve()),
            # relative to the run directory, so a moved tree of runs still finds its stage 1
            "stage1_checkpoint_relative": os.path.relpath(self.path.resolve(), run_root.resolve()),
            "sha256": self.sha256,
            "tokenizer_sha256": None,
        }


def _load_stage1(stage1_dir: Path, tokenizer: VQVAE | None) -> _Stage1:
    try:
        path = resolve_stage1_checkpoint(stage1_dir)
    except CheckpointError:
        if tokenizer is None:
            raise
        log.warning("%s has no stage-1 checkpoint: recording the given tokenizer's weight hash", stage1_dir)
        return _Stage1(tokenizer, None, None, state_dict_sha256(tokenizer.state_dict()))
    checkpoint = load_stage1_checkpoint(path)
    if tokenizer is not None:
        _check_same_weights(tokenizer, checkpoint["model"], path)
    else:
        tokenizer = tokenizer_from_checkpoint(checkpoint)
    return _Stage1(tokenizer, path, file_sha256(path), None, dict(checkpoint["data_stats"]))


def _check_same_weights(tokenizer: VQVAE, saved: dict[str, torch.Tensor], path: Path) -> None:
    state = tokenizer.state_dict()
    differ = sorted(k for k in state.keys() | saved.keys()
                    if k not in state or k not in saved or not torch.equal(state[k].cpu(), saved[k].cpu()))
    if differ:
        raise CheckpointError(
            f"the tokenizer given is not the one in {path}: {len(differ)} tensor(s) differ "
            f"({', '.join(differ[:3])}...)"
        )


def check_same_source(saved: dict[str, Any], current: dict[str, Any], *, where: Path | str) -> None:
    """Refuse a stage-1 checkpoint (or tokenizer) other than the one ``where`` was trained on.

    Raises:
        CheckpointError: naming both checkpoints and both hashes.
    """
    keys = ("sha256", "tokenizer_sha256")
    if all(saved.get(k) == current.get(k) for k in keys):
        return
    raise CheckpointError(
        f"{where}: stage 2 was trained on stage-1 checkpoint {saved.get('stage1_checkpoint')} "
        f"(sha256 {_hash(saved)}), but the stage-1 checkpoint now is "
        f"{current.get('stage1_checkpoint')} (sha256 {_hash(current)}); "
        "retrain stage 2 in a fresh run directory (or with resume=False / --no-resume)"
    )


def _hash(source: dict[str, Any]) -> str | None:
    return source.get("sha256") or source.get("tokenizer_sha256")


def read_source(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``stage2/source.json`` of a run (which stage-1 checkpoint its prior was trained on)."""
    path = Path(run_dir) / STAGE / SOURCE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: not found (no stage 2 in {run_dir})")
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------------
# Config and data checks
# --------------------------------------------------------------------------------------------------


def _check_stage2_config(s2: Stage2Config) -> None:
    if s2.variant not in (*PRIOR_VARIANTS, "thesis"):
        raise ConfigError(f"stage2.variant: expected one of token, codebook, thesis; got {s2.variant!r}")
    if s2.masking not in MASKING_CONVENTIONS:
        known = ", ".join(MASKING_CONVENTIONS)
        raise ConfigError(f"stage2.masking: expected one of {known}; got {s2.masking!r}")
    if not 0.0 <= s2.class_dropout < 1.0:
        raise ConfigError(f"stage2.class_dropout: expected a probability in [0, 1), got {s2.class_dropout}")
    if s2.tokenize_temperature < 0:
        raise ConfigError(f"stage2.tokenize_temperature: expected >= 0, got {s2.tokenize_temperature}")


def check_same_prior_config(saved: RunConfig, cfg: RunConfig, *, source: str) -> None:
    """Refuse to continue a stage 2 whose saved config differs in a field that changes the prior.

    Raises:
        ConfigError: naming every differing field with its saved and requested value.
    """
    refuse_changed_fields(
        _prior_fields(saved),
        _prior_fields(cfg),
        source=source,
        what="this stage 2 was made with another config",
    )


def _prior_fields(cfg: RunConfig) -> dict[str, Any]:
    return result_fields(cfg, sections=("seed", "stage2"), ignoring=_IGNORED)


def _check_same_run(saved: RunConfig, cfg: RunConfig, path: Path) -> None:
    """Stage 2 may share a run directory only with the same seed and data."""
    old, new = to_dict(saved), to_dict(cfg)
    for section in (old, new):
        section["data"].pop("data_dir", None)  # where the archive lives is not what the data is
    differ = [k for k in ("seed", "data") if old[k] != new[k]]
    if differ:
        listing = "; ".join(f"{k}: saved {old[k]!r}, requested {new[k]!r}" for k in differ)
        raise ConfigError(f"{path}: this run directory holds a run with another {' and '.join(differ)} "
                          f"({listing}); give stage 2 its own run directory")


def _check_same_data(stage1_stats: dict[str, Any], stats: dict[str, Any], path: Path | None) -> None:
    """The prior must see the data (and normalisation) the tokenizer was trained on."""
    keys = ("length", "channels", "mean", "std", "normalization", "n_classes")
    differ = [k for k in keys if k in stage1_stats and stage1_stats[k] != stats.get(k)]
    if differ:
        listing = "; ".join(f"{k}: stage 1 {stage1_stats[k]!r}, now {stats.get(k)!r}" for k in differ)
        raise DataError(f"{path}: the stage-1 tokenizer was trained on other data ({listing})")


def _load_data(cfg: RunConfig) -> PreparedData:
    return load_prepared(cfg.data, seed=cfg.seed)


# --------------------------------------------------------------------------------------------------
# Loading the generator
# --------------------------------------------------------------------------------------------------


@dataclass
class GenerativeModel:
    """A trained generator: the frozen tokenizer, the prior, decoding defaults and the data statistics.

    Attributes:
        tokenizer: the stage-1 ``VQVAE`` (eval mode).
        prior: the :class:`BidirectionalTransformer` (eval mode).
        decoding: the decoding defaults of sampling (the run's ``stage2`` decoding fields).
        precision: the run's ``precision`` ("auto", "fp32", "bf16"; :mod:`ncvqvae.precision`).
        data_stats: {name, mean, std, normalization, n_classes, label_values, class_names, class_counts,
            n_train, length, channels} of the training split (see :func:`ncvqvae.stage1.data_stats`).
        run_dir: the run directory it was loaded from (``None`` when built in memory).
    """

    tokenizer: VQVAE
    prior: BidirectionalTransformer
    decoding: Decoding = field(default_factory=Decoding)
    data_stats: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    precision: str = "auto"

    @property
    def device(self) -> torch.device:
        return next(self.prior.parameters()).device

    @property
    def n_classes(self) -> int:
        """Number of classes the prior is conditioned on (0 = unconditional prior)."""
        return self.prior.n_classes

    @property
    def label_values(self) -> list[str]:
        """The original label of each class id (strings, as recorded by stage 1)."""
        return list(self.data_stats.get("label_values", []))

    @property
    def class_counts(self) -> list[int]:
        """Training-split series per class."""
        return list(self.data_stats.get("class_counts", []))

    def to(self, device: str | torch.device) -> GenerativeModel:
        self.tokenizer.to(device)
        self.prior.to(device)
        return self

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens (B, N) → series (B, C, L) in model (normalised) space: codebook → decoder → ISTFT."""
        return self.tokenizer.decode(tokens)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Undo the global normalisation: ``x·std + mean`` (per-series scaling cannot be undone)."""
        if self.data_stats.get("normalization", "global") == "per_series":
            log.warning("per-series normalisation cannot be undone: samples stay standardised per series")
            return x
        return x * float(self.data_stats.get("std", 1.0)) + float(self.data_stats.get("mean", 0.0))


def resolve_stage2_checkpoint(run_dir: str | os.PathLike[str]) -> Path:
    """The stage-2 checkpoint of a run: ``final.pt``, else ``last.pt`` (with a warning), or a file given."""
    path = Path(run_dir)
    if path.is_file():
        return path
    folder = path / STAGE / "checkpoints"
    if (folder / "final.pt").is_file():
        return folder / "final.pt"
    if (folder / "last.pt").is_file():
        log.warning("%s: stage 2 is not finished; using %s", path, folder / "last.pt")
        return folder / "last.pt"
    raise CheckpointError(f"{path}: no stage-2 checkpoint (expected {folder / 'final.pt'}); train stage 2")


def load_generator(
    run_dir: str | os.PathLike[str], device: str | torch.device = "cpu", *, tokenizer: VQVAE | None = None
) -> GenerativeModel:
    """Load a run's trained generator (tokenizer + prior), checking the stage-1 checkpoint is unchanged.

    Args:
        run_dir: the run directory (or a stage-2 checkpoint file).
        device: where to put both networks.
        tokenizer: the stage-1 tokenizer, for runs trained on a tokenizer without a checkpoint file;
            ``None`` loads it from the stage-1 checkpoint recorded in the run.

    Raises:
        CheckpointError: no stage-2 checkpoint, the recorded stage-1 checkpoint is missing, or its bytes
            changed since stage 2 was trained (both hashes are named).
    """
    path = resolve_stage2_checkpoint(run_dir)
    checkpoint = load_checkpoint(path, STAGE)
    for key in ("model_config", "model", "source", "data_stats", "run_config"):
        if key not in checkpoint:
            raise CheckpointError(f"{path}: stage-2 checkpoint without {key!r}")
    saved = checkpoint["source"]
    run_root = path.parent.parent.parent  # <run>/stage2/checkpoints/<name>.pt
    if saved.get("stage1_checkpoint"):
        stage1 = _load_stage1(_recorded_stage1_path(saved, run_root, path), tokenizer)
        check_same_source(saved, stage1.source(run_root), where=path)
        tokenizer = stage1.tokenizer
    elif tokenizer is None:
        raise CheckpointError(f"{path}: the prior's tokenizer has no checkpoint file; pass tokenizer=")
    elif state_dict_sha256(tokenizer.state_dict()) != saved.get("tokenizer_sha256"):
        raise CheckpointError(f"{path}: the tokenizer given is not the one this prior was trained on")
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten; keep the caller's RNG
        prior = BidirectionalTransformer.from_config(checkpoint["model_config"])
    try:
        prior.load_state_dict(checkpoint["model"])
    except RuntimeError as err:
        reason = str(err).splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit the stored prior config: {reason}") from err
    saved_cfg = saved_run_config(checkpoint, path, STAGE)
    s2 = saved_cfg.stage2
    model = GenerativeModel(
        tokenizer=tokenizer.eval(),
        prior=prior.eval(),
        decoding=s2.decoding,
        data_stats=dict(checkpoint["data_stats"]),
        run_dir=run_root,
        precision=saved_cfg.precision,
    )
    return model.to(device)


def _recorded_stage1_path(saved: dict[str, Any], run_root: Path, where: Path) -> Path:
    found = recorded_checkpoint(saved, run_root)
    if found is not None:
        return found
    raise CheckpointError(
        f"{where}: the stage-1 checkpoint this prior was trained on is missing ({saved['stage1_checkpoint']})"
    )
