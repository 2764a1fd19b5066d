"""The UCR 2018 archive's summary table, shipped as package data, and checks against it.

``DataSummary_UCR.csv`` is the archive's own summary of its 128 univariate datasets (Dau et al., 2018):
type, name, train/test sizes, number of classes, length ("Vary" for variable length) and the published
1-NN error rates. It lets ``ncvqvae data list`` / ``data info NAME`` work offline, lets the fetcher map a
name to its canonical spelling, and lets the loader check what it read (:func:`check_against_catalog`).
"""

from __future__ import annotations

import csv
import difflib
import functools
import io
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ncvqvae.data.dataset import Dataset

# The built-in generators (ncvqvae.data.generators) are named datasets too; listed here so that
# suggestions cover them without importing numpy-heavy code (a test checks both lists agree).
GENERATOR_NAMES: tuple[str, ...] = ("gen-twopatterns", "gen-cbf", "gen-syntheticcontrol")

_CSV = "DataSummary_UCR.csv"


@dataclass(frozen=True)
class CatalogEntry:
    """One row of the UCR 2018 summary table.

    Attributes:
        id: the archive's row number (1..128).
        type: the archive's domain label ("Image", "Sensor", "Simulated"...).
        name: the canonical dataset name (``"ECG5000"``).
        n_train, n_test: sizes of the original TRAIN and TEST splits.
        n_classes: number of classes.
        length: series length, or ``None`` when the archive says "Vary" (variable length).
        ed_error: published 1-NN Euclidean test error.
        dtw_learned_error: published 1-NN DTW test error with the learned warping window.
        dtw_learned_window: that learned window (percent of the length), when given.
        dtw_error: published 1-NN DTW test error with a full window (w = 100).
        default_rate: error of always predicting the majority class.
        donor: the data donor/editor.
    """

    id: int
    type: str
    name: str
    n_train: int
    n_test: int
    n_classes: int
    length: int | None
    ed_error: float | None
    dtw_learned_error: float | None
    dtw_learned_window: int | None
    dtw_error: float | None
    default_rate: float | None
    donor: str


def _float_or_none(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


def _parse_row(row: dict[str, str]) -> CatalogEntry:
    # "DTW (learned_w)" holds "0.3913 (3)": the error, then the learned window in brackets.
    dtw = re.fullmatch(r"\s*([0-9.]+)\s*(?:\((\d+)\))?\s*", row["DTW (learned_w)"])
    length = row["Length"].strip()
    return CatalogEntry(
        id=int(row["ID"]),
        type=row["Type"].strip(),
        name=row["Name"].strip(),
        n_train=int(row["Train"]),
        n_test=int(row["Test"]),
        n_classes=int(row["Class"]),
        length=None if length.lower() == "vary" else int(length),
        ed_error=_float_or_none(row["ED (w=0)"]),
        dtw_learned_error=float(dtw.group(1)) if dtw else None,
        dtw_learned_window=int(dtw.group(2)) if dtw and dtw.group(2) else None,
        dtw_error=_float_or_none(row["DTW (w=100)"]),
        default_rate=_float_or_none(row["Default rate"]),
        donor=row["Data donor/editor"].strip(),
    )


@functools.cache
def entries() -> tuple[CatalogEntry, ...]:
    """Every dataset of the UCR 2018 summary table, in the archive's order."""
    # The shipped file starts with a UTF-8 byte-order mark; utf-8-sig strips it.
    text = resources.files("ncvqvae.data").joinpath(_CSV).read_text(encoding="utf-8-sig")
    return tuple(_parse_row(row) for row in csv.DictReader(io.StringIO(text)))


@functools.cache
def _by_lower_name() -> dict[str, CatalogEntry]:
    return {entry.name.lower(): entry for entry in entries()}


def lookup(name: str) -> CatalogEntry | None:
    """The catalog row of ``name`` (case-insensitive), or ``None`` when the archive has no such dataset."""
    return _by_lower_name().get(name.strip().lower())


def suggest(name: str, n: int = 5) -> list[str]:
    """Close matches of ``name`` among catalog and built-in generator names (best first).

    Args:
        name: a possibly misspelt dataset name.
        n: at most this many suggestions.

    Returns:
        Canonical names (catalog spelling, generator names in lower case); empty when nothing is close.
    """
    canonical = {entry.name.lower(): entry.name for entry in entries()}
    canonical.update({g: g for g in GENERATOR_NAMES})
    matches = difflib.get_close_matches(name.strip().lower(), list(canonical), n=n, cutoff=0.6)
    return [canonical[m] for m in matches]


def check_against_catalog(dataset: Dataset) -> list[str]:
    """Compare a loaded dataset with its catalog row and describe every mismatch.

    The row is found by ``dataset.metadata["catalog_name"]`` when set, else by ``dataset.name``. Sizes
    are not compared for data regenerated at a size the user asked for (``metadata["resized"]``).

    Args:
        dataset: a loaded :class:`~ncvqvae.data.dataset.Dataset` (X_train (n, C, L)).

    Returns:
        One human-readable warning per mismatch (sizes, classes, length, channels); empty when the
        dataset matches or is not in the catalog.
    """
    entry = lookup(str(dataset.metadata.get("catalog_name") or dataset.name))
    if entry is None:
        return []
    warnings: list[str] = []
    where = f"{dataset.name} ({dataset.source or 'unknown source'})"
    if not dataset.metadata.get("resized"):
        n_train = int(dataset.X_train.shape[0])
        if n_train != entry.n_train:
            warnings.append(f"{where}: {n_train} train series, the UCR catalog says {entry.n_train}")
        n_test = 0 if dataset.X_test is None else int(dataset.X_test.shape[0])
        if n_test != entry.n_test:
            warnings.append(f"{where}: {n_test} test series, the UCR catalog says {entry.n_test}")
    if dataset.labelled and dataset.n_classes != entry.n_classes:
        warnings.append(f"{where}: {dataset.n_classes} classes, the UCR catalog says {entry.n_classes}")
    if entry.length is not None and dataset.length != entry.length:
        warnings.append(f"{where}: length {dataset.length}, the UCR catalog says {entry.length}")
    if dataset.n_channels != 1:
        warnings.append(f"{where}: {dataset.n_channels} channels, UCR datasets are univariate")
    return warnings
