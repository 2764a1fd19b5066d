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

import io
import logging
import os
import shutil
import zipfile
from collections.abc import Iterable, Iterator
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


# --------------------------------------------------------------------------------------------------
# Streaming writer
# --------------------------------------------------------------------------------------------------

Batch = tuple[np.ndarray, np.ndarray | None]  # (x (b, C, L), labels (b,) or None)
_HEADER_FORMATS = ("ts", "arff")  # formats whose header precedes a "@data" line


def write_series_batches(
    path: str | os.PathLike[str],
    batches: Iterable[Batch],
    *,
    fmt: str | None = None,
    name: str | None = None,
) -> int:
    """Stream batches of series into one file, atomically, holding one batch at a time.

    The file is the one :func:`write_series` would write for all the batches at once (and reads back
    with :func:`read_series`):

    - ``.npz`` / ``.npy``: each batch's float32 bytes go to a raw temporary file next to the target,
      which is then copied behind the ``.npy`` header (into the uncompressed ``X.npy`` member of the
      ``.npz``); only the labels are kept in memory.
    - ``.tsv``, ``.csv``, ``.txt``, ``.ts``, ``.arff``: each batch is formatted by :func:`write_series`
      and its rows appended to a temporary file; the header (``.ts``/``.arff``) is written last, from
      the labels seen.

    Args:
        path: destination file (the format follows its extension, or ``fmt``).
        batches: (x (b, C, L) float, labels (b,) or ``None``), all labelled or all unlabelled, one shape.
        fmt: force a format regardless of the extension.
        name: the ``.ts``/``.arff`` problem name (default: the file stem).

    Returns:
        The number of series written.

    Raises:
        DataError: what :func:`write_series` refuses, no batch at all, batches of other shapes, or some
            batches labelled and others not.
    """
    path = Path(path)
    fmt = detect_format(path, fmt)
    if fmt in ("npz", "npy"):
        return _write_arrays(path, fmt, _checked(batches, path))
    return _write_text(path, fmt, _checked(batches, path), name or path.stem)


def _checked(batches: Iterable[Batch], path: Path) -> Iterator[Batch]:
    labelled: bool | None = None
    for x, y in batches:
        if labelled is not None and labelled != (y is not None):
            raise DataError(f"{path}: some batches have labels and some do not")
        labelled = y is not None
        yield x, y


def _write_arrays(path: Path, fmt: str, batches: Iterable[Batch]) -> int:
    """``.npz``/``.npy`` without holding X: raw bytes to a temporary file, then header + copy."""
    n, shape, labels = 0, None, []
    with atomic_path(path) as tmp:
        raw = Path(f"{tmp}.raw")
        try:
            with open(raw, "wb") as fh:
                for x, y in batches:
                    if shape is not None and x.shape[1:] != shape:
                        raise DataError(f"{path}: batches of shapes {shape} and {x.shape[1:]} in one file")
                    shape = x.shape[1:]
                    fh.write(np.ascontiguousarray(x, dtype="<f4").tobytes())
                    n += x.shape[0]
                    if y is not None:
                        labels.append(y)
            if n == 0:
                raise DataError(f"{path}: no samples to write")
            if labels and fmt == "npy":
                raise DataError(f"{path}: .npy holds one array and cannot store labels; use .npz")
            header = {"descr": "<f4", "fortran_order": False, "shape": (n, *shape)}
            if fmt == "npy":
                with open(tmp, "wb") as out, open(raw, "rb") as src:
                    np.lib.format.write_array_header_1_0(out, header)
                    shutil.copyfileobj(src, out, 1 << 20)
            else:
                # the layout np.savez writes (stored members X.npy, y.npy), built member by member
                with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
                    with zf.open("X.npy", "w", force_zip64=True) as out, open(raw, "rb") as src:
                        np.lib.format.write_array_header_1_0(out, header)
                        shutil.copyfileobj(src, out, 1 << 20)
                    if labels:
                        with zf.open("y.npy", "w") as out:
                            np.lib.format.write_array(out, normalise_labels(np.concatenate(labels)))
        finally:
            raw.unlink(missing_ok=True)
    return n


def _write_text(path: Path, fmt: str, batches: Iterable[Batch], name: str) -> int:
    """Text formats: each batch's rows (by ``write_series``) appended to a body file; header last."""
    n, shape, seen = 0, None, set()
    missing = unequal = False  # what the .ts header says of the whole set
    has_header = fmt in _HEADER_FORMATS
    with atomic_path(path) as tmp:
        body, chunk = Path(f"{tmp}.body"), Path(f"{tmp}.chunk{path.suffix}")
        try:
            with open(body, "w", encoding="utf-8") as out:
                for x, y in batches:
                    write_series(chunk, x, y, fmt=fmt, name=name)
                    text = chunk.read_text(encoding="utf-8")
                    out.write(_after_data_line(text) if has_header else text)
                    n, shape = n + x.shape[0], x.shape[1:]
                    missing |= bool(np.isnan(x).any())
                    unequal |= bool(np.isnan(x[..., -1]).any())  # right-padded: the row is cut short
                    if y is not None:
                        seen.update(str(v) for v in y.tolist())
            if n == 0:
                raise DataError(f"{path}: no samples to write")
            with open(tmp, "w", encoding="utf-8") as final, open(body, encoding="utf-8") as src:
                if has_header:
                    # a prototype with one row per label seen, and a NaN where the set has one (at the end
                    # when a series is right-padded), gives the header of the whole set
                    protos = sorted(seen)
                    prototype = np.zeros((max(len(protos), 1), *shape), np.float32)
                    if unequal or missing:
                        prototype[0, 0, -1 if unequal else 0] = np.nan
                    write_series(chunk, prototype, protos or None, fmt=fmt, name=name)
                    text = chunk.read_text(encoding="utf-8")
                    final.write(text[: len(text) - len(_after_data_line(text))])
                shutil.copyfileobj(src, final, 1 << 20)
        finally:
            body.unlink(missing_ok=True)
            chunk.unlink(missing_ok=True)
    return n


def _after_data_line(text: str) -> str:
    """The rows after the ``@data`` line of a ``.ts``/``.arff`` text."""
    head, sep, rows = text.partition("\n@data\n")
    if not sep:
        raise DataError("internal: the writer produced no @data line")
    return rows


# --------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------


def read_series(
    path: str | os.PathLike[str],
    *,
    split: str = "train",
    layout: str = "nct",
    label_column: str | None = None,
    fmt: str | None = None,
) -> RawSeries:
    """Read one split from one file.

    Args:
        path: the file; its extension picks the format unless ``fmt`` is given.
        split: ``"train"`` or ``"test"``; only ``.npz`` files hold both (``X_train``/``X_test``), other
            formats hold one split and ignore it.
        layout: axis order of ``.npy``/``.npz`` arrays: ``"nct"`` (n, channels, time), ``"ntc"`` or
            ``"nt"`` (univariate, n × time).
        label_column: for ``.tsv``/``.csv``/``.txt``: ``"first"`` (default), ``"last"`` or ``"none"``.
            The other formats say themselves whether and where they hold labels.
        fmt: force a format name instead of the extension's.

    Returns:
        A :class:`RawSeries` with X float32 (n, C, L), NaN for missing values and right-padding.

    Raises:
        DataError: the file is missing, empty, or not what its format promises; the message names the
            file (and line, key or field) and what was expected.
    """
    path = Path(path)
    fmt = detect_format(path, fmt)
    if not path.is_file():
        raise DataError(f"{path}: file not found" + (" (it is a folder)" if path.is_dir() else ""))
    if fmt in ("tsv", "csv", "text"):
        raw = read_table(path, label_column=label_column, delimiter="\t" if fmt == "tsv" else None, fmt=fmt)
    elif fmt == "ts":
        raw = read_ts(path)
    elif fmt == "arff":
        raw = read_arff(path)
    else:
        raw = read_numpy(path, split=split, layout=layout)
    if raw.X.shape[0] == 0 or raw.X.shape[2] == 0:
        raise DataError(f"{path}: empty split (shape {raw.X.shape}); expected at least one series")
    return raw


def _is_number(token: str) -> bool:
    token = token.strip()
    if token in _MISSING_TOKENS:
        return True
    try:
        float(token)
    except ValueError:
        return False
    return True


def _sniff_delimiter(line: str) -> str | None:
    """The delimiter of a delimited line; ``None`` means runs of whitespace."""
    for candidate in ("\t", ",", ";"):
        if candidate in line:
            return candidate
    return None


def _split_line(line: str, delimiter: str | None) -> list[str]:
    return line.split() if delimiter is None else line.split(delimiter)


def read_table(
    path: Path,
    *,
    label_column: str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    fmt: str = "csv",
) -> RawSeries:
    """Read a delimited text table: one univariate series per row, plus an optional label column.

    A UCR ``.tsv`` is this with ``delimiter="\\t"`` and the label first. Rows must all have the same
    number of fields (variable-length series are right-padded with ``NaN``); empty fields, ``NaN`` and
    ``?`` are missing values.

    Args:
        path: the text file.
        label_column: ``"first"`` (default), ``"last"`` or ``"none"``.
        delimiter: the field separator; ``None`` sniffs it from the first line (tab, comma, semicolon,
            else whitespace). Given explicitly, a file without it is rejected as wrongly delimited.
        header: whether the first line names the columns; ``None`` detects it (a first line whose value
            fields are mostly non-numeric, or whose label is text while the next line's is a number).
        fmt: the format name recorded in the result.

    Returns:
        RawSeries with X (n, 1, L).
    """
    label_column = "first" if label_column is None else str(label_column).lower()
    if label_column not in LABEL_COLUMNS:
        raise DataError(f"{path}: label_column={label_column!r}; expected one of {', '.join(LABEL_COLUMNS)}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # utf-8-sig: spreadsheets prepend a BOM
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason}); expected a {fmt} table") from exc
    lines = text.splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise DataError(f"{path}: empty split (no rows); expected one series per line")

    first_no, first = numbered[0]
    if delimiter is None:
        delimiter = _sniff_delimiter(first)
    elif delimiter not in first:
        found = _sniff_delimiter(first)
        found_name = "whitespace" if found is None else repr(found)
        raise DataError(
            f"{path}: line {first_no} holds no {delimiter!r}; expected {delimiter!r}-separated values "
            f"(it looks {found_name}-separated: rename the file to .csv/.txt, or fix the delimiter)"
        )

    # Ragged rows: counted per line (not per value), so this stays fast on large files.
    counts = np.array([len(_split_line(line, delimiter)) for _, line in numbered])
    if (counts != counts[0]).any():
        bad = int(np.flatnonzero(counts != counts[0])[0])
        raise DataError(
            f"{path}: line {numbered[bad][0]} has {counts[bad]} fields but line {first_no} has {counts[0]}; "
            "expected the same number of fields on every row (pad shorter series with NaN)"
        )

    fields = _split_line(first, delimiter)
    label_idx = {"first": 0, "last": len(fields) - 1, "none": None}[label_column]
    if header is None:
        header = _looks_like_header(numbered, delimiter, label_idx)
    body_start = 1 if header else 0
    if len(numbered) <= body_start:
        raise DataError(f"{path}: empty split (only a header line); expected one series per line")

    sep = r"\s+" if delimiter is None else delimiter
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=sep,
            header=0 if header else None,
            na_values=list(_MISSING_TOKENS),
            skip_blank_lines=True,
            engine="c",
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataError(f"{path}: cannot parse as a {fmt} table: {exc}") from exc

    labels = None
    if label_idx is not None:
        if frame.shape[1] < 2:
            raise DataError(f"{path}: a label column ({label_column}) and no values; expected label + series")
        label_series = frame.iloc[:, label_idx]
        if label_series.isna().any():
            row = int(np.flatnonzero(label_series.isna().to_numpy())[0])
            raise DataError(
                f"{path}: line {numbered[row + body_start][0]} has no label in the {label_column} column"
            )
        labels = normalise_labels(label_series.to_numpy())
        frame = frame.drop(columns=frame.columns[label_idx])
    values = _numeric_values(frame, path, numbered, body_start, label_idx)
    return RawSeries(X=values[:, None, :], labels=labels, path=path, format=fmt)


def _looks_like_header(numbered: list[tuple[int, str]], delimiter: str | None, label_idx: int | None) -> bool:
    fields = _split_line(numbered[0][1], delimiter)
    value_fields = [f for i, f in enumerate(fields) if i != label_idx]
    non_numeric = sum(not _is_number(f) for f in value_fields)
    if value_fields and non_numeric * 2 >= len(value_fields):
        return True
    # "label,0,1,2,..." headers have numeric column names; their label cell gives them away.
    if label_idx is not None and len(numbered) > 1 and not _is_number(fields[label_idx]):
        second = _split_line(numbered[1][1], delimiter)
        return _is_number(second[label_idx])
    return False


def _numeric_values(
    frame: pd.DataFrame, path: Path, numbered: list[tuple[int, str]], body_start: int, label_idx: int | None
) -> np.ndarray:
    """The value columns as float32 (n, L), or an error naming the first non-numeric cell."""
    for pos, column in enumerate(frame.columns):
        col = frame[column]
        if pd.api.types.is_numeric_dtype(col):
            continue
        parsed = pd.to_numeric(col, errors="coerce")
        bad = parsed.isna() & col.notna()
        row = int(np.flatnonzero(bad.to_numpy())[0])
        field = pos + (1 if label_idx == 0 else 0) + 1
        raise DataError(
            f"{path}: line {numbered[row + body_start][0]}, field {field}: {col.iloc[row]!r} is not a "
            "number; expected numeric values (NaN, ? or an empty field for missing values)"
        )
    return frame.to_numpy(dtype=np.float32)


def read_ts(path: Path) -> RawSeries:
    """Read an sktime/aeon ``.ts`` file (classification, with or without labels).

    Header keys are case-insensitive; ``@timeStamps true`` and regression targets (``@targetLabel
    true``) are rejected. Channels are separated by ``:``, values by ``,``, ``?`` is missing; unequal
    lengths are right-padded with NaN.

    Returns:
        RawSeries with X (n, C, L_max).
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason}); expected a .ts file") from exc

    header: dict[str, list[str]] = {}
    data_start = None
    for no, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if not stripped.startswith("@"):
            raise DataError(f"{path}: line {no}: data before the @data line; expected a header of @key lines")
        key, *value = stripped.split()
        key = key.lower()
        if key == "@data":
            data_start = no
            break
        header[key] = value
    if data_start is None:
        raise DataError(f"{path}: no @data line; expected a .ts header ending in @data")

    def flag(key: str, default: bool) -> bool:
        if key not in header:
            return default
        value = header[key][0].lower() if header[key] else ""
        if value not in ("true", "false"):
            raise DataError(f"{path}: {key} {' '.join(header[key])!r}; expected true or false")
        return value == "true"

    if flag("@timestamps", False):
        raise DataError(
            f"{path}: @timeStamps true is not supported; expected evenly sampled series (@timeStamps false)"
        )
    if flag("@targetlabel", False):
        raise DataError(
            f"{path}: @targetLabel true marks a regression problem; "
            "expected classification (@classLabel) data"
        )
    labelled = flag("@classlabel", False)
    declared = [normalise_labels([v])[0] for v in header["@classlabel"][1:]] if labelled else []
    dims_key = "@dimensions" if "@dimensions" in header else "@dimension"
    n_dims = int(header[dims_key][0]) if header.get(dims_key) else None

    rows: list[list[np.ndarray]] = []
    labels: list[str] = []
    for no, line in enumerate(lines[data_start:], start=data_start + 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(":")
        if labelled:
            if len(parts) < 2:
                raise DataError(
                    f"{path}: line {no} has no ':label' at its end; expected it (@classLabel true)"
                )
            labels.append(parts[-1].strip())
            parts = parts[:-1]
        if rows and len(parts) != len(rows[0]):
            raise DataError(
                f"{path}: line {no} has {len(parts)} channels but the first series has {len(rows[0])}; "
                "expected the same number of channels for every series"
            )
        channels = []
        for c, part in enumerate(parts):
            try:
                channels.append(np.array(part.replace("?", "nan").split(","), dtype=np.float64))
            except ValueError as exc:
                raise DataError(
                    f"{path}: line {no}, channel {c + 1}: {exc}; expected comma-separated numbers or ?"
                ) from exc
        rows.append(channels)
    if not rows:
        raise DataError(f"{path}: empty split (no series after @data); expected one series per line")

    n_channels = len(rows[0])
    if n_dims is not None and n_dims != n_channels:
        raise DataError(f"{path}: {dims_key} {n_dims} but the series have {n_channels} channels")
    if flag("@univariate", n_channels == 1) and n_channels != 1:
        raise DataError(f"{path}: @univariate true but the series have {n_channels} channels")
    length = max(len(ch) for channels in rows for ch in channels)
    X = np.full((len(rows), n_channels, length), np.nan, dtype=np.float32)
    for i, channels in enumerate(rows):
        for c, values in enumerate(channels):
            X[i, c, : len(values)] = values
    if flag("@equallength", True) and "@serieslength" in header:
        declared_len = int(header["@serieslength"][0])
        if declared_len != length:
            log.warning(
                "%s: @seriesLength %d but the longest series has %d values", path, declared_len, length
            )

    y = None
    if labelled:
        y = normalise_labels(labels)
        if declared:
            undeclared = sorted({str(v) for v in y.tolist()} - {str(v) for v in declared})
            if undeclared:
                raise DataError(
                    f"{path}: labels {undeclared[:5]} are not in @classLabel "
                    f"({' '.join(header['@classlabel'][1:])}); expected only declared classes"
                )
    return RawSeries(X=X, labels=y, path=path, format="ts")


def read_arff(path: Path) -> RawSeries:
    """Read a univariate Weka ``.arff`` file with :func:`scipy.io.arff.loadarff`.

    Numeric attributes are the time points; a nominal attribute, if any, must come last and is the
    class. Relational (multivariate) ARFF is rejected: convert it to ``.ts``.

    Returns:
        RawSeries with X (n, 1, L).
    """
    from scipy.io import arff

    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text file ({exc.reason}); expected an .arff file") from exc
    for no, line in enumerate(text.splitlines(), start=1):
        tokens = line.strip().lower().split()
        if len(tokens) >= 3 and tokens[0] == "@attribute" and tokens[2].startswith("relational"):
            raise DataError(
                f"{path}: line {no}: relational (multivariate) ARFF is not supported; "
                "expected univariate ARFF (convert multivariate data to .ts or .npz)"
            )
        if tokens[:1] == ["@data"]:
            break
    try:
        records, meta = arff.loadarff(io.StringIO(text))
    except (arff.ArffError, ValueError, NotImplementedError) as exc:
        raise DataError(f"{path}: cannot parse as ARFF: {exc}") from exc

    names, types = meta.names(), meta.types()
    nominal = [i for i, t in enumerate(types) if t == "nominal"]
    if any(t not in ("numeric", "nominal") for t in types):
        raise DataError(
            f"{path}: attribute types {sorted(set(types))}; expected numeric (plus a nominal class)"
        )
    if nominal and nominal != [len(types) - 1]:
        raise DataError(
            f"{path}: nominal attributes {[names[i] for i in nominal]}; expected numeric time points and "
            "at most one nominal class attribute, last"
        )
    value_names = [n for i, n in enumerate(names) if i not in nominal]
    if not value_names:
        raise DataError(f"{path}: no numeric attributes; expected one per time point")
    X = (
        np.stack([records[n].astype(np.float32) for n in value_names], axis=1)
        if len(records)
        else (np.empty((0, len(value_names)), dtype=np.float32))
    )
    labels = None
    if nominal:
        raw = records[names[nominal[0]]]
        if len(raw) and (raw == b"?").any():
            row = int(np.flatnonzero(raw == b"?")[0])
            raise DataError(f"{path}: data row {row + 1} has a missing class ('?'); expected a label")
        labels = normalise_labels(raw)
    return RawSeries(X=X[:, None, :], labels=labels, path=path, format="arff")


def read_numpy(path: Path, *, split: str = "train", layout: str = "nct") -> RawSeries:
    """Read ``.npy`` (one array, no labels) or ``.npz`` (``X_train``/``y_train``/``X_test``/``y_test`` or
    ``X``/``y``; labels optional).

    Args:
        path: the file.
        split: which split of an ``.npz`` to read; ``X``/``y`` serve either split.
        layout: ``"nct"``, ``"ntc"`` or ``"nt"`` — how the array's axes are ordered.

    Returns:
        RawSeries with X (n, C, L).
    """
    layout = layout.lower()
    if layout not in LAYOUTS:
        raise DataError(f"{path}: layout={layout!r}; expected one of {', '.join(LAYOUTS)}")
    if split not in ("train", "test"):
        raise DataError(f"{path}: split={split!r}; expected 'train' or 'test'")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            X = _apply_layout(loaded, layout, path, "array")
            return RawSeries(X=X, labels=None, path=path, format="npy")
        with loaded:  # .npz members are read lazily, so object arrays fail here, inside the try
            keys = set(loaded.files)
            x_key = next((k for k in (f"X_{split}", "X") if k in keys), None)
            if x_key is None:
                raise DataError(
                    f"{path}: arrays {sorted(keys)}; expected X_train/y_train/X_test/y_test or X/y "
                    f"(no {'X_' + split} or X for the {split} split)"
                )
            y_key = {"X": "y"}.get(x_key, f"y_{split}")
            X = _apply_layout(loaded[x_key], layout, path, x_key)
            y = loaded[y_key] if y_key in keys else None
    except DataError:
        raise
    except ValueError as exc:  # object arrays (ragged lists) need pickle, which is unsafe to enable
        raise DataError(
            f"{path}: cannot read ({exc}); expected numeric arrays (pad variable-length series with NaN)"
        ) from exc
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy/.npz file ({exc})") from exc

    labels = None
    if y is not None:
        if y.ndim != 1 or y.shape[0] != X.shape[0]:
            raise DataError(
                f"{path}: {y_key} has shape {y.shape} but {x_key} holds {X.shape[0]} series; "
                f"expected {y_key} of shape ({X.shape[0]},)"
            )
        labels = normalise_labels(y)
    return RawSeries(X=X, labels=labels, path=path, format="npz")


def npz_has_test(path: Path) -> bool:
    """Whether an ``.npz`` file holds a test split (an ``X_test`` array)."""
    with np.load(path, allow_pickle=False) as loaded:
        return "X_test" in loaded.files


def _apply_layout(arr: np.ndarray, layout: str, path: Path, key: str) -> np.ndarray:
    if arr.dtype.kind not in "biuf":
        raise DataError(f"{path}: {key} has dtype {arr.dtype}; expected a numeric array")
    expected_ndim = 2 if layout == "nt" else 3
    if arr.ndim != expected_ndim:
        hint = "nct or ntc" if arr.ndim == 3 else "nt" if arr.ndim == 2 else "none fits"
        raise DataError(
            f"{path}: {key} has shape {arr.shape} ({arr.ndim} axes) but layout={layout!r} expects "
            f"{expected_ndim} axes; choose layout {hint}"
        )
    if layout == "nt":
        arr = arr[:, None, :]
    elif layout == "ntc":
        arr = np.ascontiguousarray(np.swapaxes(arr, 1, 2))
    if arr.shape[2] == 1 and arr.shape[1] > 1:
        log.warning(
            "%s: %s read as %d channels of length 1; is the layout (%s) right?",
            path,
            key,
            arr.shape[1],
            layout,
        )
    return arr.astype(np.float32)
