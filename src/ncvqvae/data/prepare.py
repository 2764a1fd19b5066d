"""Turn a loaded :class:`Dataset` into the normalised tensors training sees (SPEC §2).

The thesis protocol is the default: one global scalar mean and standard deviation computed over the
whole training matrix (NaN-aware), applied to train and test, and NaN replaced by 0 *after* scaling
(so missing values and padding sit at the training mean). Labels are 0..K-1; a hand-built dataset
with other labels is remapped here, keeping the original values in ``label_values``.

Options: ``normalization="per_series"`` z-normalises every series (each channel of each case over
time) on its own, and ``"none"`` only replaces NaN. ``val_fraction > 0`` carves a seeded, stratified
validation split out of train *before* the statistics are computed, so neither the validation nor the
test split ever influences them.

The result holds whole tensors; training loops index them with the batches of
:func:`ncvqvae.training.epoch_batches` (``X_train[idx]``), with no per-sample Python work.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch

from ncvqvae.config import DataConfig
from ncvqvae.data.dataset import Dataset, PreparedData
from ncvqvae.errors import ConfigError, DataError

log = logging.getLogger(__name__)

NORMALIZATIONS = ("global", "per_series", "none")
_MIN_STD = 1e-8  # below this a split/series is treated as constant and only centred


def prepare(
    dataset: Dataset,
    *,
    normalization: str = "global",
    val_fraction: float = 0.0,
    seed: int = 0,
) -> PreparedData:
    """Normalise a dataset and optionally split a validation set off its training split.

    Args:
        dataset: arrays in the (n_cases, n_channels, n_timepoints) convention; may hold NaN.
        normalization: ``"global"`` (SPEC §2: one scalar mean/std over the train matrix, applied to
            every split), ``"per_series"`` (each channel of each series z-normalised over time;
            ``mean``/``std`` are then recorded as 0/1 and ``denormalize`` is the identity), or
            ``"none"``.
        val_fraction: fraction of train moved to a validation split, in ``[0, 1)``; stratified by class
            when labelled. 0 = no validation split (the thesis protocol).
        seed: seed of the validation split.

    Returns:
        :class:`PreparedData` with float32 tensors (n, C, L), int64 labels (n,) or ``None``.

    Raises:
        ConfigError: unknown ``normalization`` or ``val_fraction`` outside ``[0, 1)``.
        DataError: malformed arrays, infinite values, an all-NaN train split, labels that do not match
            ``label_values``, or a validation split that cannot be stratified.
    """
    if normalization not in NORMALIZATIONS:
        raise ConfigError(
            f"data: field 'normalization' must be one of {', '.join(NORMALIZATIONS)}, got {normalization!r}"
        )
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"data: field 'val_fraction' must be in [0, 1), got {val_fraction!r}")

    X_train = _as_series(dataset.X_train, dataset.name, "X_train")
    X_test = None if dataset.X_test is None else _as_series(dataset.X_test, dataset.name, "X_test")
    if X_test is not None and X_test.shape[1:] != X_train.shape[1:]:
        raise DataError(
            f"{dataset.name}: X_test has (channels, length) {X_test.shape[1:]}, "
            f"X_train has {X_train.shape[1:]}"
        )
    y_train, y_test, label_values, class_names = _labels(dataset, len(X_train), X_test)

    X_val = y_val = None
    if val_fraction > 0.0:
        train_idx, val_idx = _split(len(X_train), y_train, val_fraction, seed, dataset.name)
        X_val, X_train = X_train[val_idx], X_train[train_idx]
        if y_train is not None:
            y_val, y_train = y_train[val_idx], y_train[train_idx]

    mean, std = 0.0, 1.0
    if normalization == "global":
        mean, std = _global_stats(X_train, dataset.name)

    def scale(X: np.ndarray | None) -> torch.Tensor | None:
        if X is None:
            return None
        if normalization == "per_series":
            X = _per_series(X)
        elif normalization == "global":
            X = (X - mean) / std
        # NaN → 0 after scaling (SPEC §2): missing values and padding land on the (train) mean.
        X = np.where(np.isnan(X), 0.0, X)
        return torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))

    def labels(y: np.ndarray | None) -> torch.Tensor | None:
        return None if y is None else torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))

    return PreparedData(
        name=dataset.name,
        X_train=scale(X_train),
        y_train=labels(y_train),
        X_test=scale(X_test),
        y_test=labels(y_test),
        n_classes=len(label_values),
        mean=mean,
        std=std,
        normalization=normalization,
        X_val=scale(X_val),
        y_val=labels(y_val),
        label_values=label_values,
        class_names=class_names,
        source=dataset.source,
    )


def load_prepared(cfg: DataConfig, seed: int = 0) -> PreparedData:
    """Load the dataset a :class:`DataConfig` names and :func:`prepare` it.

    Args:
        cfg: which data and how to prepare it.
        seed: the run's seed, used for the validation split (the generators use ``cfg.generator_seed``).

    ``cfg.n_train``/``cfg.n_test`` size the built-in generators only: any other dataset is used whole
    (with one log line), so that a preset's generator sizes (``quick``) work on every dataset.
    """
    from ncvqvae.data.generators import is_generator_name
    from ncvqvae.data.loading import load_dataset  # loading pulls in readers and fetchers: import late

    sizes = {"n_train": cfg.n_train, "n_test": cfg.n_test}
    if not is_generator_name(cfg.dataset):
        given = {k: v for k, v in sizes.items() if v is not None}
        if given:
            log.info(
                "%s: data.%s apply to the built-in generators (gen-...) only; this dataset is used whole",
                cfg.dataset, "/".join(f"{k}={v}" for k, v in given.items()),
            )
        sizes = {"n_train": None, "n_test": None}
    dataset = load_dataset(
        cfg.dataset,
        data_dir=cfg.data_dir,
        layout=cfg.layout,
        length_policy=cfg.length_policy,
        seed=cfg.generator_seed,
        **sizes,
    )
    return prepare(dataset, normalization=cfg.normalization, val_fraction=cfg.val_fraction, seed=seed)


# --------------------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------------------


def _as_series(X: np.ndarray, name: str, field: str) -> np.ndarray:
    """Check a split is a finite-or-NaN (n, C, L) array and return it as float64 for the statistics."""
    X = np.asarray(X)
    if X.ndim != 3:
        raise DataError(f"{name}: {field} must be (n_cases, n_channels, n_timepoints), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[2] == 0:
        raise DataError(f"{name}: {field} is empty (shape {X.shape})")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"{name}: {field} must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64)
    if np.isinf(X).any():
        raise DataError(f"{name}: {field} holds infinite values; replace them (NaN is allowed: it becomes 0)")
    return X


def _labels(
    dataset: Dataset, n_train: int, X_test: np.ndarray | None
) -> tuple[np.ndarray | None, np.ndarray | None, tuple, tuple[str, ...]]:
    """Return (y_train, y_test, label_values, class_names) with labels in 0..K-1.

    Labels already in 0..K-1 with K = ``len(label_values)`` are kept. Without ``label_values`` they are
    remapped from the sorted union of train and test labels (SPEC §2); labels that contradict given
    ``label_values`` are an error, since guessing their meaning would silently relabel classes.
    """
    name = dataset.name
    if dataset.y_train is None:
        if dataset.y_test is not None:
            raise DataError(f"{name}: y_test is given but y_train is not")
        return None, None, (), ()
    y_train = np.asarray(dataset.y_train).reshape(-1)
    if len(y_train) != n_train:
        raise DataError(f"{name}: y_train has {len(y_train)} labels for {n_train} training series")
    y_test = None
    if dataset.y_test is not None:
        y_test = np.asarray(dataset.y_test).reshape(-1)
        if X_test is None or len(y_test) != len(X_test):
            n = 0 if X_test is None else len(X_test)
            raise DataError(f"{name}: y_test has {len(y_test)} labels for {n} test series")
    both = y_train if y_test is None else np.concatenate([y_train, y_test])

    label_values = tuple(dataset.label_values)
    if label_values:
        k = len(label_values)
        if not np.issubdtype(both.dtype, np.integer) or both.min() < 0 or both.max() >= k:
            raise DataError(f"{name}: labels must be class ids 0..{k - 1} (one per entry of label_values)")
        y_train = y_train.astype(np.int64)
        y_test = None if y_test is None else y_test.astype(np.int64)
    else:
        uniq, ids = np.unique(both, return_inverse=True)
        label_values = tuple(v.item() if hasattr(v, "item") else v for v in uniq)
        y_train = ids[: len(y_train)].astype(np.int64)
        y_test = None if y_test is None else ids[len(y_train) :].astype(np.int64)
    class_names = tuple(dataset.class_names) or tuple(str(v) for v in label_values)
    if len(class_names) != len(label_values):
        raise DataError(f"{name}: {len(class_names)} class_names for {len(label_values)} classes")
    return y_train, y_test, label_values, class_names


def _split(
    n: int, y: np.ndarray | None, val_fraction: float, seed: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (stratified when labelled) train/validation index split, each part in its original order."""
    from sklearn.model_selection import train_test_split

    try:
        train_idx, val_idx = train_test_split(
            np.arange(n), test_size=val_fraction, random_state=seed, stratify=y, shuffle=True
        )
    except ValueError as err:
        # sklearn refuses when a class has < 2 members or the split is smaller than the class count
        raise DataError(
            f"{name}: cannot carve a {'stratified ' if y is not None else ''}validation split with "
            f"val_fraction={val_fraction} from {n} training series ({err}); use a larger val_fraction or 0"
        ) from err
    if len(train_idx) < 2:
        raise DataError(f"{name}: val_fraction={val_fraction} leaves {len(train_idx)} training series")
    return np.sort(train_idx), np.sort(val_idx)


def _global_stats(X: np.ndarray, name: str) -> tuple[float, float]:
    """NaN-aware scalar mean and (population) std of the whole train matrix (SPEC §2)."""
    if np.isnan(X).all():
        raise DataError(f"{name}: the training split holds only NaN; cannot compute its mean and std")
    mean = float(np.nanmean(X))
    std = float(np.nanstd(X))
    if std < _MIN_STD:
        log.warning("%s: the training split is constant (std %.3g); only centring it", name, std)
        std = 1.0
    return mean, std


def _per_series(X: np.ndarray) -> np.ndarray:
    """Z-normalise each channel of each series over time; constant series become 0, all-NaN stay NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows (padding channels): NaN → 0 later
        mean = np.nanmean(X, axis=2, keepdims=True)
        std = np.nanstd(X, axis=2, keepdims=True)
    std = np.where(std < _MIN_STD, 1.0, std)
    return (X - mean) / std
