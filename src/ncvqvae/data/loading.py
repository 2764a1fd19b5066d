"""``load_dataset``: from a name or a path to a :class:`~ncvqvae.data.dataset.Dataset`.

A dataset can be named by

1. a path: a single file (train only, or both splits for an ``.npz`` with ``X_test``), a file plus an
   explicit ``test=`` file, or a folder holding ``<Name>_TRAIN.<ext>`` and ``<Name>_TEST.<ext>``;
2. a built-in generator name (``gen-twopatterns``, ``gen-cbf``, ``gen-syntheticcontrol``; any case);
3. a dataset name found in an archive root (``data_dir``, else ``NCVQVAE_DATA_DIR``), either as the UCR
   2018 folder layout ``<root>/<Name>/<Name>_TRAIN.tsv`` or the flat ``<root>/<Name>_TRAIN.tsv``;
4. a dataset name that :func:`ncvqvae.data.fetch.fetch_dataset` can fetch (its cache first).

A UCR/UEA name always means the archive's dataset, also where a generator imitates it: ``TwoPatterns``
(any case) is the archive's files, ``gen-twopatterns`` the generator. :func:`dataset_name` gives the name
a dataset is reported under without loading it.

Whatever the source, labels are remapped to 0..K-1 consistently across splits (sorted original labels,
numerically when they are numbers), and variable-length series are handled by a ``length_policy``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ncvqvae.data.dataset import Dataset
from ncvqvae.data.formats import FORMAT_PREFERENCE, SUFFIXES, RawSeries, npz_has_test, read_series
from ncvqvae.errors import DataError
from ncvqvae.home import data_dir_from_env

log = logging.getLogger(__name__)

#: Ways to handle series of different lengths (NaN right-padding in UCR files, unequal ``.ts``).
LENGTH_POLICIES: tuple[str, ...] = ("pad", "resample", "error")

# "<stem>_TRAIN.<ext>" / "<stem>_TEST.<ext>", any case, any supported extension (or none).
_SPLIT_FILE = re.compile(r"^(?P<stem>.+)_(?P<split>train|test)(?P<ext>\.[A-Za-z0-9]+)?$", re.IGNORECASE)


def load_dataset(
    name_or_path: str | os.PathLike[str],
    *,
    test: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    layout: str = "nct",
    length_policy: str = "pad",
    label_column: str | None = None,
    seed: int = 0,
    n_train: int | None = None,
    n_test: int | None = None,
    require_labels: bool = False,
) -> Dataset:
    """Load a dataset by name or path.

    Args:
        name_or_path: a file, a folder, a built-in generator name (``gen-...``), or a UCR/UEA dataset name.
        test: an explicit test file for a train file given as ``name_or_path``.
        data_dir: an archive root searched for ``<Name>/`` (default: ``NCVQVAE_DATA_DIR``).
        layout: axis order of ``.npy``/``.npz`` arrays: ``"nct"``, ``"ntc"`` or ``"nt"``.
        length_policy: variable-length series: ``"pad"`` keeps NaN right-padding to the longest series
            (:func:`~ncvqvae.data.prepare.prepare` turns NaN into 0 after scaling), ``"resample"``
            linearly stretches each series' valid part to the longest length, ``"error"`` refuses.
        label_column: ``.csv``/``.txt``/``.tsv`` tables: ``"first"`` (default), ``"last"`` or ``"none"``.
        seed: seed of the built-in generators (ignored for files).
        n_train, n_test: split sizes of the built-in generators (rejected for other data).
        require_labels: raise if the data has no labels (e.g. for class-conditional training).

    Returns:
        A :class:`Dataset` with X_train (n_train, C, L) float32 (NaN for missing values and padding),
        y_train int64 in 0..K-1 or ``None``, the same for the test split (``None`` when absent),
        ``label_values``/``class_names`` of the original labels, and ``metadata`` with ``format``,
        ``train_path``, ``test_path``, ``variable_length``, ``min_length``, ``max_length``,
        ``length_policy`` and, for variable-length data, ``lengths_train``/``lengths_test`` (lists).

    Raises:
        DataError: missing or malformed files, unknown names (with close names suggested), labels
            missing where required, test labels not seen in train, variable lengths under ``"error"``.
    """
    if length_policy not in LENGTH_POLICIES:
        raise DataError(f"length_policy={length_policy!r}; expected one of {', '.join(LENGTH_POLICIES)}")
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if not path.exists():
        if test is not None or _looks_like_path(text):
            raise DataError(f"{text}: no such file or folder")
        dataset = _generate(text, seed=seed, n_train=n_train, n_test=n_test)
        if dataset is not None:
            return _check_labels_required(dataset, require_labels)
    if n_train is not None or n_test is not None:
        raise DataError(
            f"{text}: n_train/n_test apply to the built-in generators only; expected None for a file dataset"
        )

    read = {"layout": layout, "label_column": label_column}
    if path.is_file():
        name, source = _stem_name(path), path
        train = read_series(path, split="train", **read)
        if test is not None:
            test_raw = read_series(Path(test).expanduser(), split="test", **read)
        elif train.format == "npz" and npz_has_test(path):
            test_raw = read_series(path, split="test", **read)
        else:
            test_raw = None
    else:
        if test is not None:
            raise DataError(f"{path}: test= needs a train file, but {path.name} is a folder")
        if path.is_dir():
            root, stem = path, None
        else:
            root, stem = _find_in_archive(text, data_dir) or (_fetch(text, data_dir), text)
        train_file, test_file, name = _split_files(root, stem)
        source = root
        train = read_series(train_file, split="train", **read)
        test_raw = read_series(test_file, split="test", **read)
    dataset = assemble(name, train, test_raw, length_policy=length_policy, source=str(source))
    _warn_catalog_mismatches(dataset)
    return _check_labels_required(dataset, require_labels)


def _warn_catalog_mismatches(dataset: Dataset) -> None:
    """Log one warning per difference between a UCR-named dataset and the archive's summary table."""
    from ncvqvae.data.catalog import check_against_catalog

    for message in check_against_catalog(dataset):
        log.warning(message)


def assemble(
    name: str, train: RawSeries, test: RawSeries | None, *, length_policy: str = "pad", source: str = ""
) -> Dataset:
    """Build a :class:`Dataset` from raw splits: check channels, remap labels, apply the length policy.

    Args:
        name: the dataset name.
        train, test: raw splits from :func:`~ncvqvae.data.formats.read_series` (test may be ``None``).
        length_policy: ``"pad"``, ``"resample"`` or ``"error"`` (see :func:`load_dataset`).
        source: where the data came from (default: the train file).
    """
    if test is not None and test.X.shape[1] != train.X.shape[1]:
        raise DataError(
            f"{test.path}: {test.X.shape[1]} channels but {train.path} has {train.X.shape[1]}; "
            "expected the same number of channels in train and test"
        )
    y_train, y_test, label_values = encode_labels(train, test)
    X_train, X_test, length_info = apply_length_policy(
        train.X, None if test is None else test.X, length_policy, source=train.path
    )
    metadata: dict[str, Any] = {
        "format": train.format,
        "train_path": str(train.path),
        "test_path": "" if test is None else str(test.path),
        **length_info,
    }
    return Dataset(
        name=name,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        label_values=label_values,
        class_names=tuple(str(v) for v in label_values),
        source=source or str(train.path),
        metadata=metadata,
    )


def encode_labels(
    train: RawSeries, test: RawSeries | None
) -> tuple[np.ndarray | None, np.ndarray | None, tuple[Any, ...]]:
    """Remap raw labels to 0..K-1 from the sorted labels of the training split.

    Numbers sort numerically, other labels as strings. A test label absent from train is an error (the
    model could never predict it). Test labels without train labels are dropped with a warning.

    Returns:
        (y_train int64 (n_train,) or None, y_test int64 (n_test,) or None, label_values).
    """
    if train.labels is None:
        if test is not None and test.labels is not None:
            log.warning("%s has labels but %s has none: the test labels are ignored", test.path, train.path)
        return None, None, ()
    values = np.unique(train.labels)  # sorted; numeric labels are int64/float64, so numerically
    y_train = np.searchsorted(values, train.labels).astype(np.int64)
    y_test = None
    if test is not None and test.labels is not None:
        if test.labels.dtype.kind != train.labels.dtype.kind and {
            test.labels.dtype.kind,
            train.labels.dtype.kind,
        } != {"i", "f"}:
            raise DataError(
                f"{test.path}: labels are {test.labels.dtype.kind!r}-typed but {train.path}'s are "
                f"{train.labels.dtype.kind!r}; expected the same kind of labels in both splits"
            )
        unseen = np.setdiff1d(test.labels, values)
        if unseen.size:
            raise DataError(
                f"{test.path}: labels {unseen[:5].tolist()} do not occur in {train.path}; "
                f"expected only the training classes {values[:10].tolist()}"
            )
        y_test = np.searchsorted(values, test.labels).astype(np.int64)
    return y_train, y_test, tuple(values.tolist())


def series_lengths(X: np.ndarray) -> np.ndarray:
    """The valid length of each series: one past its last non-NaN value over all channels.

    Args:
        X: float array (n, C, L).

    Returns:
        int64 (n,); 0 for an all-NaN series.
    """
    valid = ~np.isnan(X).all(axis=1)  # (n, L): time points where any channel has a value
    last = X.shape[2] - np.argmax(valid[:, ::-1], axis=1)  # one past the last valid point
    return np.where(valid.any(axis=1), last, 0).astype(np.int64)


def apply_length_policy(
    X_train: np.ndarray, X_test: np.ndarray | None, policy: str, *, source: Any = ""
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Bring both splits to one length, the longest valid length over train and test.

    Trailing NaN after a series' last value is right-padding: a dataset is variable-length when some
    series is shorter than the longest (so an equal-length series ending in a missing value counts
    too, exactly as in the UCR files, which cannot tell the two apart).

    Args:
        X_train: float32 (n_train, C, L_train); X_test: float32 (n_test, C, L_test) or ``None``.
        policy: ``"pad"`` (NaN padding), ``"resample"`` (linear, per series and channel) or ``"error"``.
        source: what to name in the error message.

    Returns:
        (X_train, X_test) both (n, C, L_max), and the length metadata.
    """
    lengths_train = series_lengths(X_train)
    lengths_test = None if X_test is None else series_lengths(X_test)
    all_lengths = lengths_train if lengths_test is None else np.concatenate([lengths_train, lengths_test])
    target = int(all_lengths.max())
    if target == 0:
        raise DataError(f"{source}: every value is missing (NaN); expected at least one number")
    variable = bool((all_lengths < target).any())
    info: dict[str, Any] = {
        "variable_length": variable,
        "min_length": int(all_lengths.min()),
        "max_length": target,
        "length_policy": policy,
    }
    if variable:
        info["lengths_train"] = lengths_train.tolist()
        if lengths_test is not None:
            info["lengths_test"] = lengths_test.tolist()
        if policy == "error":
            raise DataError(
                f"{source}: series lengths vary from {info['min_length']} to {target}; "
                "choose length_policy='pad' (NaN right-padding) or 'resample' (stretch to the longest)"
            )

    def fit(X: np.ndarray) -> np.ndarray:
        X = X[:, :, :target]  # drop columns that are padding in every series of both splits
        if X.shape[2] < target:
            X = np.concatenate([X, np.full((*X.shape[:2], target - X.shape[2]), np.nan, X.dtype)], axis=2)
        if variable and policy == "resample":
            X = _resample(X, target)
        return np.ascontiguousarray(X, dtype=np.float32)

    return fit(X_train), None if X_test is None else fit(X_test), info


def _resample(X: np.ndarray, target: int) -> np.ndarray:
    """Linearly stretch each (series, channel)'s valid prefix to ``target`` points.

    Hand-written rather than ``np.interp``/``scipy.interpolate`` so that rows sharing a length are
    interpolated in one vectorised step, and so that an exact grid hit never mixes in a NaN neighbour
    (``NaN * 0`` would turn a valid value into NaN).
    """
    n, C, L = X.shape
    rows = X.reshape(n * C, L)
    valid = ~np.isnan(rows)
    lengths = np.where(valid.any(axis=1), L - np.argmax(valid[:, ::-1], axis=1), 0)
    out = np.full((n * C, target), np.nan, dtype=np.float32)
    for length in np.unique(lengths):
        idx = np.flatnonzero(lengths == length)
        if length == 0:
            continue  # an all-NaN channel stays all NaN
        if length == 1:
            out[idx] = rows[idx, :1]
            continue
        pos = np.linspace(0.0, length - 1, target)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, length - 1)
        w = (pos - lo).astype(np.float32)
        block = rows[idx]  # (m, L)
        mixed = block[:, lo] * (1 - w) + block[:, hi] * w
        out[idx] = np.where(w == 0, block[:, lo], mixed)
    return out.reshape(n, C, target)


# --------------------------------------------------------------------------------------------------
# Resolution of names and folders
# --------------------------------------------------------------------------------------------------


def _looks_like_path(text: str) -> bool:
    # A string with a separator or a data-file suffix was meant as a path: say "not found", don't fetch.
    suffix = Path(text).suffix.lower()
    return "/" in text or os.sep in text or (suffix in SUFFIXES and suffix != "")


def _stem_name(path: Path) -> str:
    match = _SPLIT_FILE.match(path.name)
    return match["stem"] if match else path.stem


def _generate(name: str, *, seed: int, n_train: int | None, n_test: int | None) -> Dataset | None:
    """A built-in generator's Dataset, or ``None`` when ``name`` is not a generator (``gen-...``) name."""
    from ncvqvae.data import generators  # imported late: only reached for names that are not paths

    if generators.spec(name) is None:
        return None
    return generators.generate(name, seed=seed, n_train=n_train, n_test=n_test)


def dataset_name(name_or_path: str | os.PathLike[str]) -> str:
    """The name a dataset is reported under, found without loading it.

    A generator keeps its name (``gen-twopatterns``); a UCR/UEA name gets the catalog's spelling
    (``twopatterns`` → ``TwoPatterns``); a folder or file gives the dataset it holds
    (``./SonyAIBORobotSurface1/`` or ``x/SonyAIBORobotSurface1_TRAIN.tsv`` → ``SonyAIBORobotSurface1``),
    so that reports can put the thesis' numbers beside it. Any other name is returned as given.
    """
    from ncvqvae.data import generators
    from ncvqvae.data.catalog import lookup

    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if generators.is_generator_name(text):
        return generators.spec(text).name  # type: ignore[union-attr]
    if path.is_dir():
        try:
            name = _split_files(path, None)[2]
        except DataError:
            name = path.resolve().name
    elif path.is_file() or _looks_like_path(text):
        name = _stem_name(path)
    else:
        name = text.strip()
    entry = lookup(name)
    return entry.name if entry is not None else name


def _archive_roots(data_dir: Any) -> list[Path]:
    """The archive roots to search: ``data_dir`` (which must exist when given), then the env's."""
    roots = []
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if not root.is_dir():
            raise DataError(f"data_dir {root}: no such folder; expected a UCR-style archive root")
        roots.append(root)
    env = data_dir_from_env()
    if env is not None and env.is_dir() and env not in roots:
        roots.append(env)
    return roots


def _find_in_archive(name: str, data_dir: Any) -> tuple[Path, str | None] | None:
    """(folder, stem) of ``name`` in the archive roots, matched case-insensitively.

    ``<root>/<Name>/`` (UCR 2018) gives (that folder, None); the flat ``<root>/<Name>_TRAIN.<ext>``
    gives (root, name).
    """
    wanted = name.strip().lower()
    for root in _archive_roots(data_dir):
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and entry.name.lower() == wanted:
                return entry, None
        if any(_split_match(f, wanted) for f in root.iterdir() if f.is_file()):
            return root, wanted
    return None


def _split_match(file: Path, wanted_stem: str | None = None) -> re.Match[str] | None:
    match = _SPLIT_FILE.match(file.name)
    if match is None or (match["ext"] or "").lower() not in SUFFIXES:
        return None
    if wanted_stem is not None and match["stem"].lower() != wanted_stem:
        return None
    return match


def _split_files(root: Path, stem: str | None) -> tuple[Path, Path, str]:
    """The (train file, test file, dataset name) in ``root``.

    With ``stem`` only ``<stem>_TRAIN/TEST.<ext>`` count; without, the folder's own name is preferred,
    else the folder must hold a single dataset. Among formats of the same split the first of
    :data:`~ncvqvae.data.formats.FORMAT_PREFERENCE` wins.
    """
    files = [f for f in root.iterdir() if f.is_file()]
    matches = [(f, m) for f in files if (m := _split_match(f))]
    stems = sorted({m["stem"] for _, m in matches})
    wanted = (stem or root.name).lower()
    candidates = [(f, m) for f, m in matches if m["stem"].lower() == wanted]
    if not candidates and stem is None and len({s.lower() for s in stems}) == 1:
        candidates = matches  # one dataset in a folder of another name
    if not candidates:
        label = stem or root.name
        found = ", ".join(sorted(f.name for f in files)[:10]) or "nothing"
        extra = f" (datasets here: {', '.join(stems)})" if stems else ""
        raise DataError(
            f"{root}: expected {label}_TRAIN.<ext> and {label}_TEST.<ext> "
            f"(ext: tsv, ts, arff, npz, npy, csv, txt); found {found}{extra}"
        )
    name = candidates[0][1]["stem"]

    def pick(split: str) -> Path:
        by_format = {
            SUFFIXES[(m["ext"] or "").lower()]: f for f, m in candidates if m["split"].lower() == split
        }
        for fmt in FORMAT_PREFERENCE:
            if fmt in by_format:
                return by_format[fmt]
        other = "TRAIN" if split == "test" else "TEST"
        raise DataError(
            f"{root}: missing file {name}_{split.upper()}.<ext> next to {name}_{other}; "
            "expected both a TRAIN and a TEST file (pass a single file to load train only)"
        )

    return pick("train"), pick("test"), name


def _fetch(name: str, data_dir: Any) -> Path:
    """Fetch ``name`` (local cache, official archive, mirrors); fetch_dataset's error suggests close names."""
    from ncvqvae.data import generators
    from ncvqvae.data.fetch import fetch_dataset  # imported late: network code only for unknown names

    try:
        return Path(fetch_dataset(name, data_dir=data_dir))
    except DataError as err:
        imitation = generators.spec(generators.PREFIX + name.strip().lower())
        if imitation is None:
            raise
        raise DataError(
            f"{err}. Offline, the built-in generator {imitation.name!r} regenerates {imitation.catalog_name} "
            "(the archive's generating process and sizes, not its files)"
        ) from err


def _check_labels_required(dataset: Dataset, required: bool) -> Dataset:
    if not required:
        return dataset
    where = None
    if dataset.y_train is None:
        where = dataset.metadata.get("train_path") or dataset.source or dataset.name
    elif dataset.X_test is not None and dataset.y_test is None:
        where = dataset.metadata.get("test_path") or dataset.source or dataset.name
    if where is not None:
        raise DataError(
            f"{where}: the data has no labels but labels are required (class-conditional training, "
            "evaluation); expected a label column (label_column='first'/'last') or @classLabel true"
        )
    return dataset
