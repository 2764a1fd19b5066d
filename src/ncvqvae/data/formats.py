"""Readers and writers for the time-series file formats the package understands.

Every reader returns a :class:`RawSeries`: a float32 array in the (n_cases, n_channels, n_timepoints)
convention, NaN where a value is missing or where a shorter series is right-padded, and the raw labels
(``None`` for unlabelled files). Label remapping, length policies and folder resolution happen in
:mod:`ncvqvae.data.loading`; this module only turns one file into arrays and back.

Formats (chosen by extension, see :data:`SUFFIXES`):

- ``.tsv``  UCR 2018: one series per line, tab-separated, label first, ``NaN`` right-padding.
- ``.csv`` / ``.txt`` / no extension (UCR 2015 flat files): delimiter sniffed (tab, comma, semicolon,
  whitespace), optional header, label column first/last/none.
- ``.ts``   sktime/aeon: header keys case-insensitive, ``:`` between channels, ``?`` missing values,
  equal or unequal length, ``@classLabel``; timestamps and regression targets are rejected.
- ``.arff`` Weka, univariate (numeric attributes, optional nominal class last); relational
  (multivariate) ARFF is rejected.
- ``.npz`` / ``.npy`` arrays with an explicit axis layout (``nct``, ``ntc`` or ``nt``).

The text formats are hand-parsed only where a library does not match the format exactly (``.ts`` has no
maintained reader outside aeon/sktime, which are not dependencies); tables go through pandas' C parser
and ARFF through :func:`scipy.io.arff.loadarff`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ncvqvae.errors import DataError
from ncvqvae.home import atomic_path

log = logging.getLogger(__name__)

#: File suffix (lower case) → format name. ``""`` is the extension-less flat file of the UCR 2015 archive.
SUFFIXES: dict[str, str] = {
    ".tsv": "tsv",
    ".csv": "csv",
    ".txt": "text",
    "": "text",
    ".ts": "ts",
    ".arff": "arff",
    ".npz": "npz",
    ".npy": "npy",
}

#: When a folder holds the same split in several formats, the first of these is read.
FORMAT_PREFERENCE: tuple[str, ...] = ("tsv", "ts", "arff", "npz", "npy", "csv", "text")

#: Axis layouts accepted for ``.npy``/``.npz`` arrays.
LAYOUTS: tuple[str, ...] = ("nct", "ntc", "nt")

#: Where the label sits in a ``.csv``/``.txt``/``.tsv`` table.
LABEL_COLUMNS: tuple[str, ...] = ("first", "last", "none")

# Tokens read as a missing value in the text formats (pandas adds its defaults: "", "NaN", "nan", ...).
_MISSING_TOKENS = ("?", "NaN", "nan", "NAN", "")

# 9 significant digits round-trip every float32 exactly, so files written here read back bit-identical.
_FLOAT_FORMAT = "%.9g"


@dataclass
class RawSeries:
    """One split read from one file, before label remapping and length handling.

    Attributes:
        X: float32 array (n, C, L); NaN marks missing values and right-padding of shorter series.
        labels: raw labels (n,) as int64, float64 or str (see :func:`normalise_labels`), or ``None``.
        path: the file read.
        format: the format name (a value of :data:`SUFFIXES`).
    """

    X: np.ndarray
    labels: np.ndarray | None
    path: Path
    format: str


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def detect_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The format name of ``path`` (from its extension), or ``fmt`` when given.

    Raises:
        DataError: the extension (or ``fmt``) is not one the package reads or writes.
    """
    known = sorted(set(SUFFIXES.values()))
    if fmt is not None:
        fmt = fmt.lower().lstrip(".")
        fmt = "text" if fmt == "txt" else fmt
        if fmt not in known:
            raise DataError(f"{path}: unknown format {fmt!r}; expected one of {', '.join(known)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        exts = ", ".join(s for s in SUFFIXES if s)
        raise DataError(f"{path}: unknown file extension {suffix!r}; expected one of {exts}")
    return SUFFIXES[suffix]


def normalise_labels(values: Any) -> np.ndarray:
    """Turn raw labels from any format into one canonical array, so every format agrees.

    Numbers (or strings that all parse as numbers) become int64 when every value is integral
    (``"1"``, ``1.0`` and ``1`` are the same class) and float64 otherwise; anything else becomes str.

    Args:
        values: labels (n,) as a list, numpy array or pandas Series of numbers, strings or bytes.

    Returns:
        An int64, float64 or str array (n,).
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    if arr.dtype.kind in "biu":
        return arr.astype(np.int64)
    if arr.dtype.kind != "f":
        strings = np.array([str(v).strip() for v in arr.tolist()], dtype=str)
        try:
            arr = strings.astype(np.float64)
        except ValueError:
            return strings
    if np.isfinite(arr).all() and (arr == np.round(arr)).all():
        return arr.astype(np.int64)
    return arr.astype(np.float64)


def _to_numpy(a: Any) -> np.ndarray:
    # Accept torch tensors (on any device) without importing torch here.
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _as_nct(X: Any, path: Path) -> np.ndarray:
    arr = _to_numpy(X)
    if arr.ndim == 2:  # (n, L): univariate
        arr = arr[:, None, :]
    if arr.ndim != 3:
        raise DataError(f"{path}: cannot write an array of shape {arr.shape}; expected (n, C, L) or (n, L)")
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: cannot write an array of dtype {arr.dtype}; expected numbers")
    if arr.shape[0] == 0 or arr.shape[2] == 0:
        raise DataError(f"{path}: refusing to write an empty split (shape {arr.shape})")
    return arr.astype(np.float32)  # the package is float32 throughout; 9 digits round-trip it exactly


def _label_strings(y: Any, n: int, path: Path, *, forbidden: str) -> list[str]:
    labels = normalise_labels(_to_numpy(y).reshape(-1))
    if labels.shape[0] != n:
        raise DataError(f"{path}: {labels.shape[0]} labels for {n} series; expected one label per series")
    out = [str(v) for v in labels.tolist()]
    bad = sorted({s for s in out if not s or any(ch in s for ch in forbidden) or s.isspace()})
    if bad:
        raise DataError(f"{path}: labels {bad[:5]} cannot be written (empty or containing {forbidden!r})")
    return out


def _format_table(values: np.ndarray, *, sep: str, na_rep: str) -> list[str]:
    """Format a 2-D float array (n, L) as n delimited lines (pandas' writer: fast and exact)."""
    text = pd.DataFrame(values).to_csv(
        sep=sep, header=False, index=False, na_rep=na_rep, float_format=_FLOAT_FORMAT, lineterminator="\n"
    )
    return text.split("\n")[: values.shape[0]]


def _strip_trailing_missing(lines: list[str], sep: str, na_rep: str) -> tuple[list[str], bool]:
    """Drop right-padding (trailing missing values) from delimited lines; report whether any was dropped."""
    suffix = sep + na_rep
    out, trimmed = [], False
    for line in lines:
        stripped = line
        while stripped.endswith(suffix):
            stripped = stripped[: -len(suffix)]
        trimmed |= stripped != line
        out.append(stripped)
    return out, trimmed


# --------------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------------


def write_series(
    path: str | os.PathLike[str],
    X: Any,
    y: Any = None,
    *,
    fmt: str | None = None,
    name: str | None = None,
) -> Path:
    """Write series (and optionally labels) to one file, atomically, in a format chosen by extension.

    The file reads back with :func:`read_series` (and :func:`ncvqvae.data.load_dataset`) to the same
    float32 values: numbers are written with 9 significant digits, NaN as the format's missing token.

    Per format:
        - ``.tsv`` (UCR): univariate only; labels are required (a UCR file always has a label column,
          and a made-up label would be read back as a real class), written first, tab-separated.
        - ``.csv`` / ``.txt``: univariate; comma- (``.txt``: space-) separated, label first when given,
          no header, ``NaN`` for missing values.
        - ``.ts``: any number of channels, ``:`` between channels, ``?`` for missing values; trailing
          NaN (right-padding) is dropped, which makes the file ``@equalLength false``.
        - ``.arff``: univariate; numeric attributes ``t0..t{L-1}``, then a nominal ``target`` when
          labelled.
        - ``.npz``: arrays ``X`` (n, C, L) and, when labelled, ``y`` (n,).
        - ``.npy``: ``X`` (n, C, L) only; labels need ``.npz``.

    Args:
        path: destination file; its parent folder is created.
        X: float array (n, C, L), or (n, L) for univariate data; numpy or torch (any device).
        y: labels (n,) (numbers or strings), or ``None`` for unlabelled data.
        fmt: force a format (``"tsv"``, ``"csv"``, ``"text"``, ``"ts"``, ``"arff"``, ``"npz"``,
            ``"npy"``) regardless of the extension.
        name: the problem/relation name written into ``.ts``/``.arff`` headers (default: file stem).

    Returns:
        The path written.

    Raises:
        DataError: the array, labels or format cannot be written (multichannel data to a univariate
            format, labels missing for ``.tsv``, labels given for ``.npy``, empty split, ...).
    """
    path = Path(path)
    fmt = detect_format(path, fmt)
    arr = _as_nct(X, path)
    n, C, _ = arr.shape
    if fmt in ("tsv", "csv", "text", "arff") and C != 1:
        raise DataError(f"{path}: {fmt} holds univariate series but X has {C} channels; use .ts or .npz")
    if name is None:
        name = path.stem.removesuffix("_TRAIN").removesuffix("_TEST") or "data"

    with atomic_path(path) as tmp:
        if fmt == "npz":
            arrays = {"X": arr}
            if y is not None:
                arrays["y"] = normalise_labels(_to_numpy(y).reshape(-1))
                if arrays["y"].shape[0] != n:
                    raise DataError(f"{path}: {arrays['y'].shape[0]} labels for {n} series")
            with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a bare name
                np.savez(fh, **arrays)
        elif fmt == "npy":
            if y is not None:
                raise DataError(f"{path}: .npy holds one array and cannot store labels; use .npz")
            with open(tmp, "wb") as fh:
                np.save(fh, arr)
        elif fmt == "ts":
            tmp.write_text(_ts_text(arr, y, path, name), encoding="utf-8")
        elif fmt == "arff":
            tmp.write_text(_arff_text(arr, y, path, name), encoding="utf-8")
        else:
            sep = {"tsv": "\t", "csv": ",", "text": " "}[fmt]
            if fmt == "tsv" and y is None:
                raise DataError(
                    f"{path}: a UCR .tsv file needs a label per series (first column); pass y, "
                    "or write unlabelled data to .csv, .ts or .npz"
                )
            lines = _format_table(arr[:, 0, :], sep=sep, na_rep="NaN")
            if y is not None:
                labels = _label_strings(y, n, path, forbidden=sep + ",\t\n ")
                lines = [f"{lab}{sep}{line}" for lab, line in zip(labels, lines, strict=True)]
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log.debug("wrote %d series (%s) to %s", n, fmt, path)
    return path


def _ts_text(arr: np.ndarray, y: Any, path: Path, name: str) -> str:
    n, C, L = arr.shape
    channels = []  # per channel: n lines of comma-separated values, right-padding dropped
    unequal = False
    for c in range(C):
        lines, trimmed = _strip_trailing_missing(_format_table(arr[:, c, :], sep=",", na_rep="?"), ",", "?")
        channels.append(lines)
        unequal |= trimmed
    rows = [":".join(parts) for parts in zip(*channels, strict=True)]
    header = [
        f"@problemName {name}",
        "@timeStamps false",
        f"@missing {'true' if np.isnan(arr).any() else 'false'}",
        f"@univariate {'true' if C == 1 else 'false'}",
        f"@dimensions {C}",
        f"@equalLength {'false' if unequal else 'true'}",
    ]
    if not unequal:
        header.append(f"@seriesLength {L}")
    if y is not None:
        labels = _label_strings(y, n, path, forbidden=":, \t\n")
        classes = [str(v) for v in np.unique(normalise_labels(labels)).tolist()]
        header.append("@classLabel true " + " ".join(classes))
        rows = [f"{row}:{lab}" for row, lab in zip(rows, labels, strict=True)]
    else:
        header.append("@classLabel false")
    return "\n".join([*header, "@data", *rows]) + "\n"


def _arff_text(arr: np.ndarray, y: Any, path: Path, name: str) -> str:
    n, _, L = arr.shape
    rows = _format_table(arr[:, 0, :], sep=",", na_rep="?")
    header = [f"@relation {name}", ""] + [f"@attribute t{i} numeric" for i in range(L)]
    if y is not None:
        labels = _label_strings(y, n, path, forbidden=",{}'\" \t\n%")
        classes = [str(v) for v in np.unique(normalise_labels(labels)).tolist()]
        header.append("@attribute target {" + ",".join(classes) + "}")
        rows = [f"{row},{lab}" for row, lab in zip(rows, labels, strict=True)]
    return "\n".join([*header, "", "@data", *rows]) + "\n"
