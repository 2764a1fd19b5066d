"""Evaluate a trained run the way the thesis does (SPEC §5) and write ``results.json`` and the figures.

:func:`evaluate_run` is the one entry point (the CLI's ``ncvqvae evaluate --run DIR`` and the
experiment pipeline call it). In order:

1. the run's config, its prepared data and its generator (:func:`ncvqvae.stage2.load_generator`);
2. the FCN evaluator of the dataset, from the cache or trained once (:func:`get_evaluator`);
3. the real set: the test split passed through STFT → ISTFT (n_fft of the run's stage 1);
4. the fake set: ``max(n_test, 256)`` unconditional samples (or ``evaluation.n_samples``); FID uses the
   first ``n_test`` of them in the faithful setting (all of them when ``n_samples`` is set), IS all;
5. FID with a bootstrap 95% interval, IS (mean ± std over splits) with a bootstrap interval of the mean,
   the same for the real test set (IS ceiling) and the real train-vs-test FID (the FID floor);
6. a class-conditional set in the train split's class proportions, at least ``cas_min_samples``:
   per-class FID (cFID) and CAS (a fresh FCN trained on it, accuracy on the real test split), with the
   evaluator's own test accuracy as the ceiling;
   beyond the thesis (issue 17, each switchable in ``evaluation.*``): KID next to FID and cFID,
   precision / recall / density / coverage, the memorisation check (nearest-training-series distances),
   the evaluator-free MiniRocket FID and the augmentation utility (FCNs on real, real + simple
   augmentation, real + synthetic series), see :func:`beyond_thesis`;
7. the stage-1 numbers (reconstruction, probes) via :func:`ncvqvae.evaluation.stage1.evaluate_stage1_run`
   when ``results.json`` lacks them;
8. ``results.json["generation"]`` (read-modify-write under a file lock, atomic) and the figures in
   ``<run>/evaluation/``.

Every random draw derives from the run's seed. The settings that determine the numbers (evaluation
config, seed, evaluator key, stage-2 checkpoint hash, decoding settings) are hashed; a rerun with an
equal hash reuses the stored numbers and only draws figures that are missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import replace as replace_fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ncvqvae.config import (
    DECODING_KEYS,
    FIGURES,
    NO_RESULT,
    Decoding,
    EvaluationConfig,
    RunConfig,
    replace,
    result_fields,
    to_dict,
)
from ncvqvae.data.dataset import PreparedData
from ncvqvae.data.prepare import load_prepared
from ncvqvae.errors import ConfigError, DataError
from ncvqvae.evaluation.cas import cas, cas_class_counts, cas_labels
from ncvqvae.evaluation.evaluator import evaluator_identity, get_evaluator
from ncvqvae.evaluation.fcn import FCNOutputs, budget, fcn_outputs
from ncvqvae.evaluation.metrics import (
    bootstrap_ci,
    class_fid,
    class_kid,
    fid,
    fid_from_samples,
    inception_score,
    kid,
    kid_subset_size,
)
from ncvqvae.evaluation.neighbours import class_prdc, memorisation, prdc, znormalise_series
from ncvqvae.evaluation.stage1 import stage1_results
from ncvqvae.evaluation.stage1_metrics import extract_features
from ncvqvae.evaluation.utility import augmentation_utility
from ncvqvae.models.stft import istft, stft
from ncvqvae.precision import resolved
from ncvqvae.rundir import EVALUATION_DIR, RunDir, read_results, update_results
from ncvqvae.sampling import sample
from ncvqvae.stage2 import GenerativeModel, load_generator, resolve_stage2_checkpoint
from ncvqvae.training import derive_seed, file_sha256, make_generator, pick_device, read_metrics

log = logging.getLogger(__name__)

RESULTS_KEY = "generation"
FIGURES_DIR = EVALUATION_DIR
FIGURE_NAMES = (
    "samples_per_class.png",
    "latents_tsne.png",
    "latents_pca.png",
    "generated_vs_real_pca.png",
    "loss_curves.png",
)
MIN_FAKE = 256  # SPEC §5: at least 256 unconditional samples
FIGURE_SAMPLES_PER_CLASS = 50  # generated series per class behind the per-class figure's band
EVALUATOR_SEED = 0  # one evaluator per dataset, shared by every run and seed
MINIROCKET_SEED = 0  # one MiniRocket feature space per dataset, shared by every run and seed


def prepare_evaluator(cfg: RunConfig, *, device: str | torch.device | None = None) -> dict[str, Any]:
    """Train (or find in the cache) the FCN evaluator of ``cfg``'s dataset; return its info dict.

    Sweeps call this once per dataset before their cells, so that cells do not queue on the cache lock.
    """
    data = load_prepared(cfg.data, seed=cfg.seed)
    _, info = get_evaluator(
        data,
        cfg.evaluation,
        device=pick_device(str(device or cfg.device)),
        seed=EVALUATOR_SEED,
        progress=cfg.progress,
        precision=cfg.precision,
    )
    return info


def evaluate_run(
    run_dir: str | os.PathLike[str],
    *,
    cfg: RunConfig | EvaluationConfig | None = None,
    device: str | torch.device = "auto",
    n_samples: int | None = None,
    cas_epochs: int | None = None,
    run_cas: bool | None = None,
    figures: bool | None = None,
    decoding: Decoding | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a run's generator (FID, cFID, IS, CAS with intervals), gather stage 1, draw the figures.

    Args:
        run_dir: a run directory with ``config.yaml`` and trained stages 1 and 2.
        cfg: the config to evaluate with: a :class:`RunConfig` (its ``evaluation`` part is used; the data
            and seed must match the run) or an :class:`EvaluationConfig`; ``None`` = the run's own.
        device: where to sample and train the FCNs ("auto" = cuda when present).
        n_samples: override ``evaluation.n_samples`` (unconditional samples for FID / IS).
        cas_epochs: override ``evaluation.cas_epochs``.
        run_cas: override ``evaluation.cas`` (False skips CAS).
        figures: override ``evaluation.figures`` (False draws no figures).
        decoding: how every sample is decoded (steps, temperatures, guidance); ``None`` = the
            ``stage2`` decoding fields of ``cfg`` when it is a :class:`RunConfig`, else the generator's
            (the config its prior was trained with).
        progress: progress bars while training FCNs.

    Returns:
        The whole ``results.json`` content (``"stage1"`` and ``"generation"`` among its keys).
    """
    run = RunDir(run_dir)
    run_cfg = run.read_config()
    ecfg = _evaluation_config(cfg, run_cfg, n_samples=n_samples, cas_epochs=cas_epochs, run_cas=run_cas)
    draw = ecfg.figures if figures is None else figures
    device = pick_device(str(device))
    data = load_prepared(run_cfg.data, seed=run_cfg.seed)
    _check_data(data, run.root)

    stage1_results(run.root, device=device, data=data)  # evaluated here when results.json has none

    checkpoint = resolve_stage2_checkpoint(run.root)
    model = load_generator(run.root, device=device)
    if decoding is None and isinstance(cfg, RunConfig):
        decoding = cfg.stage2.decoding
    if decoding is not None:
        model = replace_fields(model, decoding=decoding)  # every draw below decodes with it
    settings = _settings(ecfg, run_cfg, data, checkpoint, model)
    digest = _hash(settings)
    stored = read_results(run.root).get(RESULTS_KEY)
    if stored is not None and stored.get("settings_hash") == digest:
        log.info("%s: generation metrics with these settings exist; reusing them", run.root)
        generation, sets = stored, None
    else:
        generation, sets = _evaluate(run.root, run_cfg, ecfg, data, model, device, settings, progress)
        generation["settings_hash"] = digest
        update_results(run.root, RESULTS_KEY, generation)
    if draw:
        _draw_figures(run, run_cfg, ecfg, data, model, sets, device)
    return read_results(run.root)


# --------------------------------------------------------------------------------------------------
# The metrics
# --------------------------------------------------------------------------------------------------


@dataclass
class _Sets:
    """The series the metrics were computed on, kept for the figures (all in model space, on the CPU)."""

    fake: torch.Tensor  # (n_fake, C, L) unconditional samples
    cond: torch.Tensor  # (n_cond, C, L) class-conditional samples
    y_cond: torch.Tensor  # (n_cond,)


def _evaluate(
    root: Path,
    run_cfg: RunConfig,
    ecfg: EvaluationConfig,
    data: PreparedData,
    model: GenerativeModel,
    device: torch.device,
    settings: dict[str, Any],
    progress: bool,
) -> tuple[dict[str, Any], _Sets]:
    timings: dict[str, float] = {}
    seed = run_cfg.seed
    start = time.perf_counter()
    precision = run_cfg.precision  # every FCN pass and training of this evaluation
    evaluator, info = get_evaluator(
        data, ecfg, device=device, seed=EVALUATOR_SEED, progress=progress, precision=precision
    )
    timings["evaluator"] = time.perf_counter() - start

    n_test = int(data.X_test.shape[0])
    n_fake = int(ecfg.n_samples) if ecfg.n_samples is not None else max(n_test, MIN_FAKE)
    n_fake_fid = n_fake if ecfg.n_samples is not None else min(n_fake, n_test)
    real = real_reference_set(data.X_test, n_fft=run_cfg.stage1.n_fft)

    start = time.perf_counter()
    log.info("%s: sampling %d unconditional series", root, n_fake)
    fake = _draw(model, n_fake, None, seed, "unconditional", ecfg.sample_batch_size)
    counts = cas_class_counts(data.y_train, data.n_classes, ecfg.cas_min_samples)
    labels = cas_labels(counts)
    log.info("%s: sampling %d class-conditional series", root, len(labels))
    cond = _draw(model, len(labels), labels, seed, "conditional", ecfg.sample_batch_size)
    timings["sampling"] = time.perf_counter() - start

    start = time.perf_counter()
    out_real, out_train, out_fake, out_cond = (
        fcn_outputs(evaluator, x, precision=precision) for x in (real, data.X_train, fake, cond)
    )
    y_test = data.y_test.cpu().numpy()
    generation: dict[str, Any] = {
        **_fid_is(out_real, out_fake, n_fake_fid, ecfg, seed),
        **_reference_scores(out_real, out_train, ecfg, seed),
    }
    per_class = class_fid(
        out_real.features, y_test, out_cond.features, labels.numpy(), n_classes=data.n_classes
    )
    names = _class_names(data)
    generation["cfid"] = {names[k]: _finite_or_none(v) for k, v in per_class.items()}
    finite = [v for v in per_class.values() if np.isfinite(v)]
    generation["cfid_mean"] = float(np.mean(finite)) if finite else None
    # How often the evaluator recognises the class a conditional sample was generated for.
    generation["conditional_accuracy"] = out_cond.accuracy(labels)
    timings["metrics"] = time.perf_counter() - start

    cas_epochs = ecfg.cas_epochs if ecfg.cas_epochs is not None else ecfg.evaluator_epochs
    generation.update(
        beyond_thesis(
            ecfg,
            real=real,
            fake=fake,
            n_fake_fid=n_fake_fid,
            out_real=out_real,
            out_train=out_train,
            out_fake=out_fake,
            out_cond=out_cond,
            y_cond=labels,
            data=data,
            names=names,
            seed=seed,
            timings=timings,
            sampler=lambda n, classes: _draw(model, n, classes, seed, "utility", ecfg.sample_batch_size),
            default_epochs=cas_epochs,
            default_steps=ecfg.cas_steps,
            device=device,
            progress=progress,
            precision=precision,
        )
    )
    if ecfg.cas:
        start = time.perf_counter()
        log.info(
            "%s: CAS: training a fresh FCN on %d synthetic series for %s",
            root,
            len(labels),
            budget(cas_epochs, ecfg.cas_steps),
        )
        result = cas(
            cond,
            labels,
            data.X_test,
            data.y_test,
            n_classes=data.n_classes,
            epochs=cas_epochs,
            lr=ecfg.evaluator_lr,
            weight_decay=ecfg.evaluator_weight_decay,
            batch_size=ecfg.evaluator_batch_size,
            seed=derive_seed(seed, "evaluation", "cas"),
            device=device,
            mode=ecfg.cas_mode,
            progress=progress,
            precision=precision,
            steps=ecfg.cas_steps,
        )
        generation.update({"cas": result.value, "cas_clean": result.accuracy, "cas_legacy": result.legacy})
        timings["cas"] = time.perf_counter() - start
    else:
        generation.update({"cas": None, "cas_clean": None, "cas_legacy": None})
    generation["cas_ceiling"] = info["test_accuracy"]
    generation["evaluator"] = {k: v for k, v in info.items() if k != "cached"}
    generation["protocol"] = {
        **settings,
        "real_set": f"test split through STFT→ISTFT (n_fft {run_cfg.stage1.n_fft})",
        "n_real": n_test,
        "n_fake": n_fake,
        "n_fake_fid": n_fake_fid,
        "n_fake_is": n_fake,
        "n_conditional": int(len(labels)),
        "conditional_class_counts": [int(c) for c in counts],
        "ci": f"{ecfg.bootstrap} bootstrap resamples, percentile 95%" if ecfg.bootstrap else "off",
        "cas_epochs": int(cas_epochs),
        "cas_steps": ecfg.cas_steps,
        "cas_recipe": "evaluator recipe (AdamW, cosine per step, last epoch), fresh FCN",
        "kid": f"unbiased MMD², kernel (x·y/D + 1)³, {ecfg.kid_subsets} subsets of at most "
        f"{ecfg.kid_subset_size} (at most half the smaller set), interval = 2.5–97.5% of the subsets"
        if ecfg.kid
        else "off",
        "prdc_k": int(ecfg.prdc_k) if ecfg.prdc else None,
        "memorisation": "Euclidean nearest-training distances of the unconditional samples vs the real set, "
        "FCN features and per-series z-normalised series"
        if ecfg.memorisation
        else "off",
    }
    generation["seconds"] = {k: round(v, 3) for k, v in timings.items()}
    log.info(
        "%s: FID %.4g, IS %.4g ± %.3g, CAS %s (ceiling %.4g)",
        root,
        generation["fid"],
        generation["is_mean"],
        generation["is_std"],
        "off" if generation["cas"] is None else f"{generation['cas']:.4g}",
        info["test_accuracy"],
    )
    return generation, _Sets(fake=fake, cond=cond, y_cond=labels)


def beyond_thesis(
    ecfg: EvaluationConfig,
    *,
    real: torch.Tensor,
    fake: torch.Tensor,
    n_fake_fid: int,
    out_real: FCNOutputs,
    out_train: FCNOutputs,
    out_fake: FCNOutputs,
    out_cond: FCNOutputs,
    y_cond: torch.Tensor,
    data: PreparedData,
    names: list[str],
    seed: int,
    timings: dict[str, float],
    sampler: Any,
    default_epochs: int,
    default_steps: int | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    precision: str = "auto",
) -> dict[str, Any]:
    """The metrics the thesis does not report (issue 17), each switched by its ``evaluation`` field.

    KID is computed on the FID sets (real vs the first ``n_fake_fid`` samples) and per class on the
    conditional set, like cFID; PRDC likewise; memorisation compares every unconditional sample's
    distance to the nearest training series with the real set's; the MiniRocket FID uses the FID sets
    in MiniRocket's feature space (fitted on the train split, seed :data:`MINIROCKET_SEED`); the
    utility trains three FCNs (see :mod:`ncvqvae.evaluation.utility`) on ``sampler(n, classes)`` series.

    Args:
        ecfg: the switches and settings.
        real: (N_r, C, L) real set; fake: (N_f, C, L) unconditional samples.
        n_fake_fid: samples of ``fake`` in the FID set.
        out_real, out_train, out_fake, out_cond: FCN outputs of the real set, the train split, the
            unconditional and the class-conditional samples.
        y_cond: (N_c,) classes of the conditional samples.
        data: the prepared data (train split for memorisation, MiniRocket and utility).
        names: class names, the keys of the per-class dicts.
        seed: the run's seed.
        timings: seconds per part, filled in place.
        sampler: ``sampler(n, classes) -> (n, C, L)`` class-conditional samples (utility only).
        default_epochs: utility epochs when ``utility_epochs`` is ``None`` (the CAS epochs).
        default_steps: utility steps when neither ``utility_epochs`` nor ``utility_steps`` is set (the
            CAS steps).
        device: where the utility FCNs train.
        progress: progress bars while they train.

    Returns:
        The keys documented in docs/evaluation.md (``kid``, ``prdc``, ``memorisation``,
        ``fid_minirocket``, ``utility``, ...); switched-off metrics are ``None``.
    """
    _check_extras(ecfg)
    out: dict[str, Any] = {}
    y_real = data.y_test.cpu().numpy()
    y_cond_np = y_cond.cpu().numpy()
    feat_fake = out_fake.features[:n_fake_fid]

    start = time.perf_counter()
    out.update(dict.fromkeys(("kid", "kid_std", "kid_ci95", "real_kid_train_test", "ckid", "ckid_mean")))
    if ecfg.kid:
        kid_seed = derive_seed(seed, "kid")
        result = _kid(out_real.features, feat_fake, ecfg, kid_seed)
        out.update({"kid": result.mean, "kid_std": result.std, "kid_ci95": list(result.ci95)})
        out["real_kid_train_test"] = _kid(out_real.features, out_train.features, ecfg, kid_seed).mean
        per_class = class_kid(
            out_real.features,
            y_real,
            out_cond.features,
            y_cond_np,
            n_classes=data.n_classes,
            subsets=ecfg.kid_subsets,
            subset_size=ecfg.kid_subset_size,
            seed=kid_seed,
        )
        out["ckid"] = {names[k]: None if r is None else r.mean for k, r in per_class.items()}
        finite = [r.mean for r in per_class.values() if r is not None]
        out["ckid_mean"] = float(np.mean(finite)) if finite else None
        timings["kid"] = time.perf_counter() - start

    start = time.perf_counter()
    out.update(dict.fromkeys(("prdc", "prdc_class", "prdc_class_mean")))
    if ecfg.prdc:
        k = ecfg.prdc_k
        if min(len(out_real.features), len(feat_fake)) > k:
            out["prdc"] = prdc(out_real.features, feat_fake, k=k).as_dict()
        per_class = class_prdc(
            out_real.features, y_real, out_cond.features, y_cond_np, n_classes=data.n_classes, k=k
        )
        out["prdc_class"] = {names[c]: None if r is None else r.as_dict() for c, r in per_class.items()}
        found = [r for r in per_class.values() if r is not None]
        out["prdc_class_mean"] = (
            {
                m: float(np.mean([getattr(r, m) for r in found]))
                for m in ("precision", "recall", "density", "coverage")
            }
            if found
            else None
        )
        timings["prdc"] = time.perf_counter() - start

    start = time.perf_counter()
    out["memorisation"] = None
    if ecfg.memorisation:
        q = ecfg.memorisation_quantile
        out["memorisation"] = {
            "features": memorisation(
                out_train.features, out_real.features, out_fake.features, quantile=q
            ).as_dict(),
            "series": memorisation(
                znormalise_series(data.X_train), znormalise_series(real), znormalise_series(fake), quantile=q
            ).as_dict(),
        }
        timings["memorisation"] = time.perf_counter() - start

    start = time.perf_counter()
    out["fid_minirocket"] = out["real_fid_minirocket_train_test"] = None
    if ecfg.minirocket_fid:
        from ncvqvae.evaluation.minirocket import minirocket_features

        f_train, f_real, f_fake = minirocket_features(
            data.X_train,
            [data.X_train, real, fake[:n_fake_fid]],
            n_kernels=ecfg.minirocket_kernels,
            seed=MINIROCKET_SEED,
        )
        out["fid_minirocket"] = fid_from_samples(f_real, f_fake)
        out["real_fid_minirocket_train_test"] = fid_from_samples(f_real, f_train)
        out["minirocket_features"] = int(f_real.shape[1])
        timings["minirocket"] = time.perf_counter() - start

    start = time.perf_counter()
    out["utility"] = None
    if ecfg.utility:
        n_train = int(data.X_train.shape[0])
        n_extra = max(1, round(ecfg.utility_ratio * n_train))
        labels = data.y_train.cpu()[torch.arange(n_extra) % n_train]  # the train labels, tiled
        epochs = ecfg.utility_epochs if ecfg.utility_epochs is not None else default_epochs
        steps = ecfg.utility_steps
        if steps is None and ecfg.utility_epochs is None:
            steps = default_steps  # the CAS budget, in steps where the CAS has one
        log.info(
            "utility: 3 FCNs for %s, %d synthetic / augmented series added", budget(epochs, steps), n_extra
        )
        result = augmentation_utility(
            data.X_train,
            data.y_train,
            data.X_test,
            data.y_test,
            sampler(n_extra, labels),
            labels,
            n_classes=data.n_classes,
            epochs=epochs,
            lr=ecfg.evaluator_lr,
            weight_decay=ecfg.evaluator_weight_decay,
            batch_size=ecfg.evaluator_batch_size,
            seed=derive_seed(seed, "evaluation", "utility-fcn"),
            device=device,
            progress=progress,
            steps=steps,
            precision=precision,
        )
        out["utility"] = result.as_dict()
        timings["utility"] = time.perf_counter() - start
    return out


def _kid(feat_real: np.ndarray, feat_fake: np.ndarray, ecfg: EvaluationConfig, seed: int) -> Any:
    size = kid_subset_size(len(feat_real), len(feat_fake), ecfg.kid_subset_size)
    return kid(feat_real, feat_fake, subsets=ecfg.kid_subsets, subset_size=size, seed=seed)


def _check_extras(ecfg: EvaluationConfig) -> None:
    checks = {
        "kid_subsets": ecfg.kid_subsets >= 1,
        "kid_subset_size": ecfg.kid_subset_size >= 2,
        "prdc_k": ecfg.prdc_k >= 1,
        "memorisation_quantile": 0.0 < ecfg.memorisation_quantile < 1.0,
        "minirocket_kernels": ecfg.minirocket_kernels >= 84,
        "utility_epochs": ecfg.utility_epochs is None or ecfg.utility_epochs >= 1,
        "utility_steps": ecfg.utility_steps is None or ecfg.utility_steps >= 1,
        "utility_ratio": ecfg.utility_ratio > 0,
    }
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        values = ", ".join(f"{name}={getattr(ecfg, name)!r}" for name in bad)
        raise ConfigError(
            f"evaluation: out of range: {values} (kid_subsets ≥ 1, kid_subset_size ≥ 2, prdc_k ≥ 1, "
            "0 < memorisation_quantile < 1, minirocket_kernels ≥ 84, utility_epochs ≥ 1, utility_steps ≥ 1, "
            "utility_ratio > 0)"
        )


def _draw(
    model: GenerativeModel, n: int, classes: torch.Tensor | None, seed: int, purpose: str, batch_size: int
) -> torch.Tensor:
    """``n`` samples (n, C, L) on the CPU from a generator seeded by (run seed, purpose)."""
    generator = make_generator(derive_seed(seed, "evaluation", purpose), model.device)
    return sample(model, n, classes=classes, generator=generator, batch_size=batch_size)[0]


def _fid_is(
    real: FCNOutputs, fake: FCNOutputs, n_fake_fid: int, ecfg: EvaluationConfig, seed: int
) -> dict[str, Any]:
    feat_fake = fake.features[:n_fake_fid]
    out: dict[str, Any] = {"fid": fid(real.features, feat_fake)}
    splits = min(ecfg.is_splits, len(fake.probs))
    out["is_mean"], out["is_std"] = inception_score(fake.probs, splits)
    if ecfg.bootstrap:
        out["fid_ci95"] = list(
            bootstrap_ci(fid, real.features, feat_fake, n=ecfg.bootstrap, seed=derive_seed(seed, "ci-fid"))
        )
        out["is_ci95"] = list(
            bootstrap_ci(
                lambda p: inception_score(p, splits)[0],
                fake.probs,
                n=ecfg.bootstrap,
                seed=derive_seed(seed, "ci-is"),
            )
        )
    else:
        out["fid_ci95"] = out["is_ci95"] = None
    return out


def _reference_scores(
    real: FCNOutputs, train: FCNOutputs, ecfg: EvaluationConfig, seed: int
) -> dict[str, Any]:
    """What a perfect generator would score: IS of the real test set, FID of real train vs real test."""
    splits = min(ecfg.is_splits, len(real.probs))
    real_is, real_is_std = inception_score(real.probs, splits)
    return {
        "real_is_mean": real_is,
        "real_is_std": real_is_std,
        "real_fid_train_test": fid(real.features, train.features),
    }


def real_reference_set(X_test: torch.Tensor, *, n_fft: int = 8) -> torch.Tensor:
    """The real set of FID / IS (SPEC §5): the test series passed through STFT → ISTFT.

    Args:
        X_test: (N, C, L) real test series.
        n_fft: the STFT size of the tokenizer.

    Returns:
        (N, C, L) float32 series on the CPU.
    """
    with torch.no_grad():
        return istft(stft(X_test.float(), n_fft), X_test.shape[-1], n_fft).cpu()


# --------------------------------------------------------------------------------------------------
# The figures
# --------------------------------------------------------------------------------------------------


def _draw_figures(
    run: RunDir,
    run_cfg: RunConfig,
    ecfg: EvaluationConfig,
    data: PreparedData,
    model: GenerativeModel,
    sets: _Sets | None,
    device: torch.device,
) -> list[Path]:
    from ncvqvae.evaluation import figures  # matplotlib: only when figures are drawn

    folder = run.root / FIGURES_DIR
    missing = [name for name in FIGURE_NAMES if not (folder / name).is_file()]
    if sets is None and not missing:
        return []
    wanted = set(FIGURE_NAMES) if sets is not None else set(missing)
    seed = run_cfg.seed
    names = _class_names(data)
    written = []
    if wanted & {"samples_per_class.png", "generated_vs_real_pca.png"} and sets is None:
        # Numbers reused from results.json: draw fresh (seeded, so repeatable) samples for the pictures.
        labels = torch.arange(data.n_classes).repeat_interleave(FIGURE_SAMPLES_PER_CLASS)
        cond = _draw(model, len(labels), labels, seed, "figures", ecfg.sample_batch_size)
        sets = _Sets(fake=cond, cond=cond, y_cond=labels)
    if "samples_per_class.png" in wanted:
        written.append(
            figures.plot_class_samples(
                sets.cond,
                sets.y_cond,
                data.X_train,
                data.y_train,
                data.X_test,
                data.y_test,
                folder / "samples_per_class.png",
                class_names=names,
                seed=seed,
            )
        )
    if wanted & {"latents_tsne.png", "latents_pca.png"}:
        feats = extract_features(model.tokenizer, data.X_test)
        for method in ("tsne", "pca"):
            if f"latents_{method}.png" in wanted:
                written.append(
                    figures.plot_latent_embedding(
                        feats,
                        data.y_test,
                        folder / f"latents_{method}.png",
                        method=method,
                        class_names=names,
                        title=f"{method.upper()} of pooled z_q (test split, {run_cfg.stage1.method})",
                        seed=seed,
                    )
                )
    if "generated_vs_real_pca.png" in wanted:
        written.append(
            figures.plot_generated_vs_real_pca(
                data.X_test, sets.fake, folder / "generated_vs_real_pca.png", seed=seed
            )
        )
    if "loss_curves.png" in wanted:
        # stage 1 may live in another run directory (train stage2 --out): its stage2/source.json says where
        folders = {"stage1": run.stage1_dir(), "stage2": run.root / "stage2"}
        metrics = {stage: read_metrics(folder / "metrics.jsonl") for stage, folder in folders.items()}
        written.append(figures.plot_loss_curves(metrics, folder / "loss_curves.png", title=run.root.name))
    log.info("%s: wrote %d figure(s) to %s", run.root, len(written), folder)
    return written


# --------------------------------------------------------------------------------------------------
# Settings, results, helpers
# --------------------------------------------------------------------------------------------------


def check_evaluation_overrides(keys: Iterable[str]) -> None:
    """Refuse to change, at evaluation time, a field that the trained stages fixed.

    An evaluation may change its own settings (``evaluation.*``) and how samples are decoded (the
    ``stage2`` decoding fields: ``stage2.decoding_steps``, ``temperature``, ``choice_temperature``,
    ``guidance``); anything else would describe another run.

    Raises:
        ConfigError: naming the fields that cannot change.
    """
    decoding = {f"stage2.{key}" for key in DECODING_KEYS.values()}
    outside = [key for key in keys if not (key.startswith("evaluation.") or key in decoding)]
    if outside:
        raise ConfigError(
            f"only evaluation.* fields and the stage-2 decoding fields ({', '.join(sorted(decoding))}) can "
            f"change at evaluation time, got {outside}"
        )


def _evaluation_config(
    cfg: RunConfig | EvaluationConfig | None,
    run_cfg: RunConfig,
    *,
    n_samples: int | None,
    cas_epochs: int | None,
    run_cas: bool | None,
) -> EvaluationConfig:
    if isinstance(cfg, RunConfig):
        ecfg = cfg.evaluation
    elif isinstance(cfg, EvaluationConfig):
        ecfg = cfg
    elif cfg is None:
        ecfg = run_cfg.evaluation
    else:
        raise TypeError(f"cfg must be a RunConfig, an EvaluationConfig or None, not {type(cfg).__name__}")
    changes: dict[str, Any] = {}
    if n_samples is not None:
        changes["n_samples"] = int(n_samples)
    if cas_epochs is not None:
        changes["cas_epochs"] = int(cas_epochs)
    if run_cas is not None:
        changes["cas"] = bool(run_cas)
    return replace(ecfg, **changes) if changes else ecfg


# Evaluation fields added after results were first stored: left out of the settings hash while they hold
# their default (None), so that the stored results of older runs are still reused.
_HASHED_WHEN_SET = ("utility_steps",)


def _settings(
    ecfg: EvaluationConfig, run_cfg: RunConfig, data: PreparedData, checkpoint: Path, model: GenerativeModel
) -> dict[str, Any]:
    """Everything that determines the numbers (figures excluded): hashed to decide on reuse."""
    # the evaluation fields that change a number (config.py tags the others: figures, sample_batch_size)
    numbers = {
        name.removeprefix("evaluation."): value
        for name, value in result_fields({"evaluation": to_dict(ecfg)}, ignoring=(NO_RESULT, FIGURES)).items()
    }
    numbers.pop("evaluator_path", None)  # where the stored evaluator lies: its key and recipe below say which
    for name in _HASHED_WHEN_SET:  # added since results were first hashed: at the default, hashes stay
        if numbers.get(name) is None:
            numbers.pop(name, None)
    arithmetic = resolved(run_cfg.precision, model.device)  # "bf16" or "fp32", as computed
    key, recipe = evaluator_identity(data, ecfg, EVALUATOR_SEED, arithmetic)  # the stored one's, if pinned
    return {
        "evaluation": numbers,
        "seed": int(run_cfg.seed),
        "seeds": {
            "unconditional": derive_seed(run_cfg.seed, "evaluation", "unconditional"),
            "conditional": derive_seed(run_cfg.seed, "evaluation", "conditional"),
            "cas": derive_seed(run_cfg.seed, "evaluation", "cas"),
            "bootstrap_fid": derive_seed(run_cfg.seed, "ci-fid"),
            "bootstrap_is": derive_seed(run_cfg.seed, "ci-is"),
            "kid": derive_seed(run_cfg.seed, "kid"),
            "utility_samples": derive_seed(run_cfg.seed, "evaluation", "utility"),
            "utility_fcn": derive_seed(run_cfg.seed, "evaluation", "utility-fcn"),
            "minirocket": MINIROCKET_SEED,
            "evaluator": EVALUATOR_SEED,
        },
        "precision": arithmetic,
        "evaluator_key": key,
        "evaluator_recipe": recipe,
        "stage2_checkpoint": str(checkpoint),
        "stage2_checkpoint_sha256": file_sha256(checkpoint),
        "decoding": {
            "steps": int(model.decoding.steps),
            "temperature": float(model.decoding.temperature),
            "choice_temperature": float(model.decoding.choice_temperature),
            "guidance": float(model.decoding.guidance),
        },
    }


def _hash(settings: dict[str, Any]) -> str:
    # The checkpoint's path may move with the run directory; its bytes decide.
    stable = {k: v for k, v in settings.items() if k != "stage2_checkpoint"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


def _check_data(data: PreparedData, root: Path) -> None:
    if data.y_train is None or data.n_classes < 2:
        raise DataError(
            f"{root}: FID / IS / CAS need labelled data with at least 2 classes ({data.name} has none)"
        )
    if data.X_test is None or data.y_test is None:
        raise DataError(f"{root}: FID / IS / CAS are scored on the test split, and {data.name} has none")


def _class_names(data: PreparedData) -> list[str]:
    if data.class_names and len(data.class_names) == data.n_classes:
        return [str(c) for c in data.class_names]
    if data.label_values and len(data.label_values) == data.n_classes:
        return [str(v) for v in data.label_values]
    return [str(k) for k in range(data.n_classes)]


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
