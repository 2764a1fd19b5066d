"""The per-dataset FCN evaluator: trained once per (dataset, recipe), cached, shared by every run.

The thesis scored FID / IS with pretrained FCN weights that cannot be downloaded here (SPEC §5), so the
evaluator is trained with the SPEC recipe on the real train split and cached under
``NCVQVAE_HOME/evaluators/<dataset>-<key>/``:

- ``fcn.pt``: an ncvqvae checkpoint (kind ``"fcn"``) holding the FCN's constructor config and weights;
- ``info.json``: the cache key, recipe, data shapes, train and test accuracy, training time.

The cache key is the sha256 of the *prepared* train/test tensors (values, shapes, dtypes) and of the
recipe (epochs, lr, weight decay, batch size, seed, format version). The evaluator therefore sees
series in the model's normalised space (:class:`ncvqvae.data.dataset.PreparedData`) — the same space
the generator samples in — and a change of normalisation or data gives a new evaluator. Every run and
seed on the same data reuses one evaluator, so their FID / IS are comparable.

Concurrent runs are safe: training happens under an inter-process lock on the entry, the other
processes wait and then load the finished files, and every file is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from ncvqvae.config import EvaluationConfig
from ncvqvae.data.dataset import PreparedData
from ncvqvae.errors import CheckpointError, ConfigError, DataError, NcvqvaeError
from ncvqvae.evaluation.fcn import FCN, budget, build_fcn, fcn_outputs, train_fcn
from ncvqvae.home import atomic_path, atomic_write_json, cache_dir, file_lock
from ncvqvae.precision import resolved
from ncvqvae.training import load_checkpoint, save_checkpoint, steps_per_epoch

log = logging.getLogger(__name__)

EVALUATOR_FORMAT_VERSION = 1  # bump when the network or the training loop changes what gets cached


def evaluator_recipe(cfg: EvaluationConfig, seed: int = 0, precision: str | None = None) -> dict[str, Any]:
    """The training recipe that, with the data, determines an evaluator.

    ``precision`` is the resolved arithmetic ("bf16" or "fp32"; ``None`` = what "auto" means on this
    machine's CPU): a bf16-trained evaluator rounds differently, so it is another cache entry.
    """
    return {
        "precision": precision or resolved("auto", "cpu"),
        # a budget in steps makes the epochs irrelevant: leave them out of the key
        "epochs": int(cfg.evaluator_epochs) if cfg.evaluator_steps is None else None,
        "steps": cfg.evaluator_steps,
        "lr": float(cfg.evaluator_lr),
        "weight_decay": float(cfg.evaluator_weight_decay),
        "batch_size": int(cfg.evaluator_batch_size),
        "seed": int(seed),
        "format_version": EVALUATOR_FORMAT_VERSION,
    }


def data_sha256(data: PreparedData) -> str:
    """Hex sha256 of the prepared train and test tensors (names, dtypes, shapes and values)."""
    digest = hashlib.sha256()
    for name in ("X_train", "y_train", "X_test", "y_test"):
        tensor = getattr(data, name)
        if tensor is None:
            digest.update(f"{name}|none".encode())
            continue
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def evaluator_key(
    data: PreparedData, cfg: EvaluationConfig, seed: int = 0, precision: str | None = None
) -> str:
    """The cache key: sha256 of the data hash and the recipe."""
    recipe = evaluator_recipe(cfg, seed, precision)
    payload = json.dumps({"data": data_sha256(data), "recipe": recipe}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def evaluator_dir(
    data: PreparedData, cfg: EvaluationConfig, seed: int = 0, precision: str | None = None
) -> Path:
    """The cache entry of this (data, recipe): ``NCVQVAE_HOME/evaluators/<name>-<key[:16]>``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", data.name) or "dataset"
    return cache_dir("evaluators") / f"{safe}-{evaluator_key(data, cfg, seed, precision)[:16]}"


def evaluator_info(
    data: PreparedData, cfg: EvaluationConfig, seed: int = 0, precision: str | None = None
) -> dict[str, Any]:
    """What the cache knows about this evaluator, without training anything.

    Returns:
        ``info.json``'s content plus ``"cached": True`` when the evaluator exists (``"pinned": True``
        for ``evaluation.evaluator_path``), else ``{"cached": False, "key", "path", "recipe"}``.
    """
    if cfg.evaluator_path:
        entry, info = _pinned(cfg.evaluator_path)
        _check_pinned(entry, info, data)
        return {**info, "path": str(entry), "cached": True, "pinned": True}
    entry = evaluator_dir(data, cfg, seed, precision)
    info_path = entry / "info.json"
    if (entry / "fcn.pt").is_file() and info_path.is_file():
        return {**json.loads(info_path.read_text(encoding="utf-8")), "cached": True}
    return {
        "cached": False,
        "dataset": data.name,
        "key": evaluator_key(data, cfg, seed, precision),
        "path": str(entry),
        "recipe": evaluator_recipe(cfg, seed, precision),
    }


def get_evaluator(
    data: PreparedData,
    cfg: EvaluationConfig,
    *,
    device: torch.device | str = "cpu",
    seed: int = 0,
    progress: bool = False,
    precision: str = "auto",
) -> tuple[FCN, dict[str, Any]]:
    """Load the cached evaluator of ``data`` or train it with the recipe of ``cfg`` (SPEC §5).

    Args:
        data: prepared (normalised) data with labelled train and test splits.
        cfg: the evaluation config (``evaluator_epochs``, ``evaluator_lr``, ``evaluator_weight_decay``,
            ``evaluator_batch_size``).
        device: where to train and where the returned model lives.
        seed: the evaluator's own seed (kept at 0 so that every run shares one evaluator).
        progress: progress bar while training.
        precision: "auto", "fp32" or "bf16" (:mod:`ncvqvae.precision`), resolved on ``device``; part of
            the cache key.

    Returns:
        The FCN in eval mode on ``device`` and its info dict (``key``, ``path``, ``recipe``,
        ``test_accuracy``, ``train_accuracy``, shapes, ``train_seconds``, ``cached``: whether it
        was loaded rather than trained by this call).

    Raises:
        DataError: unlabelled data or no test split.
        CheckpointError: a corrupt cache entry (delete the folder named in the message).
    """
    _check_data(data)
    if cfg.evaluator_path:
        return pinned_evaluator(data, cfg.evaluator_path, device=device)
    arithmetic = resolved(precision, device)
    entry = evaluator_dir(data, cfg, seed, arithmetic)
    weights, info_path = entry / "fcn.pt", entry / "info.json"
    cached = weights.is_file() and info_path.is_file()
    if not cached:
        with file_lock(weights):
            # Another process may have finished training while this one waited for the lock.
            cached = weights.is_file() and info_path.is_file()
            if not cached:
                _train_and_store(
                    data, cfg, seed, entry, device=device, progress=progress, precision=arithmetic
                )
    model, info = _load(entry, device)
    _warn_if_near_chance(data, info)
    return model, {**info, "cached": cached}


def pinned_evaluator(
    data: PreparedData, path: str | os.PathLike[str], *, device: torch.device | str = "cpu"
) -> tuple[FCN, dict[str, Any]]:
    """The stored evaluator at ``path`` (``evaluation.evaluator_path``), checked against ``data``.

    Raises:
        ConfigError: ``path`` holds no stored evaluator.
        DataError: it was trained on other data (another dataset, split or normalisation).
    """
    entry, _ = _pinned(path)
    model, info = _load(entry, device)
    _check_pinned(entry, info, data)
    _warn_if_near_chance(data, info)
    return model, {**info, "path": str(entry), "cached": True, "pinned": True}


def _check_pinned(entry: Path, info: dict[str, Any], data: PreparedData) -> None:
    if info.get("data_sha256") != data_sha256(data):
        raise DataError(
            f"evaluation.evaluator_path: {entry} holds the evaluator of {info.get('dataset')!r} "
            f"({info.get('n_train')} train / {info.get('n_test')} test series, "
            f"{info.get('normalization')} normalisation), not of this run's {data.name!r} "
            f"({data.X_train.shape[0]} / {data.X_test.shape[0]}, {data.normalization}): the prepared data "
            "differ"
        )


def _pinned(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """The stored evaluator's folder and its ``info.json``."""
    entry = Path(path).expanduser()
    if not ((entry / "fcn.pt").is_file() and (entry / "info.json").is_file()):
        raise ConfigError(
            f"evaluation.evaluator_path: {entry}: expected a folder with fcn.pt and info.json (as "
            "`ncvqvae evaluator export` writes)"
        )
    return entry, json.loads((entry / "info.json").read_text(encoding="utf-8"))


def evaluator_identity(
    data: PreparedData, cfg: EvaluationConfig, seed: int = 0, precision: str | None = None
) -> tuple[str, dict[str, Any]]:
    """The key and recipe of the evaluator a run with ``cfg`` uses: the stored one's when
    ``evaluator_path`` is set, else the cache's for this recipe."""
    if cfg.evaluator_path:
        _, info = _pinned(cfg.evaluator_path)
        return str(info["key"]), dict(info["recipe"])
    return evaluator_key(data, cfg, seed, precision), evaluator_recipe(cfg, seed, precision)


def export_evaluator(info: dict[str, Any], out: str | os.PathLike[str]) -> Path:
    """Copy a cached evaluator (``info`` from :func:`get_evaluator`/:func:`evaluator_info`) to ``out``.

    Raises:
        NcvqvaeError: it is not cached, or ``out`` holds another evaluator.
    """
    if not (Path(info["path"]) / "fcn.pt").is_file() or not (Path(info["path"]) / "info.json").is_file():
        raise NcvqvaeError(
            f"the evaluator of {info.get('dataset')} is not cached: `ncvqvae evaluator train` first"
        )
    src, dst = Path(info["path"]), Path(out).expanduser()
    if (dst / "info.json").is_file():
        existing = json.loads((dst / "info.json").read_text(encoding="utf-8"))
        if existing.get("key") != info["key"]:
            raise NcvqvaeError(
                f"{dst} holds another evaluator (key {existing.get('key')}); choose another --out"
            )
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("fcn.pt", "info.json"):  # weights first, info last (as the cache writes them)
        with atomic_path(dst / name) as tmp:
            shutil.copyfile(src / name, tmp)
    return dst


def chance_accuracy(y_test: torch.Tensor, n_classes: int) -> float:
    """The accuracy of always answering the test split's most frequent class."""
    counts = torch.bincount(y_test.long().cpu(), minlength=max(int(n_classes), 1))
    return float(counts.max()) / max(int(y_test.numel()), 1)


def _warn_if_near_chance(data: PreparedData, info: dict[str, Any]) -> None:
    """An evaluator that has not learned the classes makes FID, IS and CAS meaningless: say so loudly."""
    chance = chance_accuracy(data.y_test, data.n_classes)
    accuracy = float(info["test_accuracy"])
    if accuracy < chance + 0.1 * (1.0 - chance):
        recipe, n_train = info["recipe"], int(data.X_train.shape[0])
        log.warning(
            "the FCN evaluator of %s has test accuracy %.3f, near chance (%.3f, the most frequent class): "
            "FID, IS and CAS computed with it are meaningless; train it longer "
            "(evaluation.evaluator_epochs or evaluator_steps, now %s; %d training series make %d steps "
            "per epoch)",
            data.name,
            accuracy,
            chance,
            budget(recipe["epochs"], recipe.get("steps")),
            n_train,
            steps_per_epoch(n_train, int(recipe["batch_size"])),
        )


def _train_and_store(
    data: PreparedData,
    cfg: EvaluationConfig,
    seed: int,
    entry: Path,
    *,
    device: torch.device | str,
    progress: bool,
    precision: str,
) -> None:
    recipe = evaluator_recipe(cfg, seed, precision)
    log.info(
        "training the FCN evaluator of %s (%s, %d series) into %s",
        data.name,
        budget(recipe["epochs"], recipe["steps"]),
        data.X_train.shape[0],
        entry,
    )
    start = time.perf_counter()
    model = train_fcn(
        data.X_train,
        data.y_train,
        n_classes=data.n_classes,
        epochs=int(cfg.evaluator_epochs),
        steps=recipe["steps"],
        lr=recipe["lr"],
        weight_decay=recipe["weight_decay"],
        batch_size=recipe["batch_size"],
        seed=seed,
        device=device,
        progress=progress,
        precision=precision,
    )
    seconds = time.perf_counter() - start
    info = {
        "dataset": data.name,
        "key": evaluator_key(data, cfg, seed, precision),
        "data_sha256": data_sha256(data),
        "path": str(entry),
        "recipe": recipe,
        "n_train": int(data.X_train.shape[0]),
        "n_test": int(data.X_test.shape[0]),
        "n_classes": int(data.n_classes),
        "n_channels": int(data.n_channels),
        "length": int(data.length),
        "normalization": data.normalization,
        "train_accuracy": fcn_outputs(model, data.X_train, precision=precision).accuracy(data.y_train),
        "test_accuracy": fcn_outputs(model, data.X_test, precision=precision).accuracy(data.y_test),
        "precision": precision,
        "train_seconds": round(seconds, 3),
        "device": str(device),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    # Weights first, info last: an entry counts as cached only when both exist.
    save_checkpoint(
        entry / "fcn.pt", "fcn", {"config": model.config, "state_dict": state, "info_key": info["key"]}
    )
    atomic_write_json(entry / "info.json", info)
    log.info("evaluator of %s: test accuracy %.4f (%.1f s)", data.name, info["test_accuracy"], seconds)


def _load(entry: Path, device: torch.device | str) -> tuple[FCN, dict[str, Any]]:
    ckpt = load_checkpoint(entry / "fcn.pt", kind="fcn")
    try:
        info = json.loads((entry / "info.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{entry / 'info.json'}: unreadable evaluator info ({err}); delete {entry}"
        ) from err
    if ckpt.get("info_key") != info.get("key"):
        raise CheckpointError(f"{entry}: fcn.pt and info.json belong to different evaluators; delete {entry}")
    model = build_fcn(ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval(), info


def _check_data(data: PreparedData) -> None:
    if data.y_train is None or data.n_classes < 2:
        raise DataError(f"{data.name}: the FCN evaluator needs labelled data with at least 2 classes")
    if data.X_test is None or data.y_test is None:
        raise DataError(
            f"{data.name}: the FCN evaluator needs a labelled test split (FID/IS are scored on it)"
        )


def real_data_ceiling(dataset: str) -> dict[str, Any] | None:
    """The published real-data accuracies of ``dataset`` (FCN and ResNet, Fawaz et al. 2019; 1-NN).

    Read from the package's ``experiments/anchors/real_data_ceilings.csv`` (matched case-insensitively;
    a built-in generator by the archive dataset it imitates); ``None`` when the dataset is not listed.
    """
    import pandas as pd

    from ncvqvae.data.generators import reference_name

    path = Path(__file__).resolve().parent.parent / "experiments" / "anchors" / "real_data_ceilings.csv"
    if not path.is_file():
        return None
    table = pd.read_csv(path)
    rows = table[table["dataset"].str.lower() == reference_name(dataset).lower()]
    return (
        None if rows.empty else {k: (v.item() if hasattr(v, "item") else v) for k, v in rows.iloc[0].items()}
    )
