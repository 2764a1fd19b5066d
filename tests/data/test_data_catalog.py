"""The shipped UCR 2018 summary table: parsing, lookup, suggestions and checks of loaded data."""

from __future__ import annotations

import numpy as np
import pytest

from ncvqvae.data import catalog
from ncvqvae.data.dataset import Dataset


def _dataset(name: str, n_train: int, n_test: int, length: int, n_classes: int, channels: int = 1) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(
        name=name,
        X_train=rng.standard_normal((n_train, channels, length)).astype(np.float32),
        y_train=np.arange(n_train) % n_classes,
        X_test=rng.standard_normal((n_test, channels, length)).astype(np.float32),
        y_test=np.arange(n_test) % n_classes,
        label_values=tuple(range(1, n_classes + 1)),
        source="test",
    )


def test_catalog_has_the_whole_archive_with_parsed_fields() -> None:
    entries = catalog.entries()
    assert len(entries) == 128
    assert len({e.name for e in entries}) == 128
    assert [e.id for e in entries] == list(range(1, 129))
    # The first column survives the byte-order mark the shipped file starts with.
    assert entries[0].name == "Adiac" and entries[0].id == 1
    vary = {e.name for e in entries if e.length is None}
    assert len(vary) == 11 and "PLAID" in vary and "GesturePebbleZ1" in vary


def test_lookup_is_case_insensitive_and_parses_numbers() -> None:
    entry = catalog.lookup(" ecg5000 ")
    assert entry is not None
    assert (entry.name, entry.type, entry.n_train, entry.n_test, entry.n_classes, entry.length) == (
        "ECG5000",
        "ECG",
        500,
        4500,
        5,
        140,
    )
    assert entry.ed_error == pytest.approx(0.0751)
    assert entry.dtw_learned_error == pytest.approx(0.0749) and entry.dtw_learned_window == 1
    assert entry.dtw_error == pytest.approx(0.0756)
    # "0.2829 (14)" with a leading space in the source file.
    wiimote = catalog.lookup("AllGestureWiimoteX")
    assert wiimote is not None and wiimote.dtw_learned_window == 14 and wiimote.length is None
    assert catalog.lookup("NoSuchDataset") is None


def test_thesis_datasets_are_all_in_the_catalog() -> None:
    thesis = (
        "StarLightCurves Wafer ECG5000 SonyAIBORobotSurface1 SonyAIBORobotSurface2 ElectricDevices "
        "TwoPatterns FordA UWaveGestureLibraryAll FordB ShapesAll Symbols Mallat"
    ).split()
    assert all(catalog.lookup(name) is not None for name in thesis)
    assert catalog.lookup("TwoPatterns").length == 128  # type: ignore[union-attr]


def test_suggest_covers_catalog_and_generator_names() -> None:
    assert catalog.suggest("ECG500")[0] == "ECG5000"
    assert "gen-syntheticcontrol" in catalog.suggest("gen-syntheticcontrl")
    assert "StarLightCurves" in catalog.suggest("starlightcurve")
    assert catalog.suggest("zzzzzzzzzzzz") == []


def test_check_against_catalog_accepts_a_matching_dataset() -> None:
    assert catalog.check_against_catalog(_dataset("SyntheticControl", 300, 300, 60, 6)) == []


def test_check_against_catalog_names_each_mismatch() -> None:
    warnings = catalog.check_against_catalog(_dataset("syntheticcontrol", 299, 10, 61, 5, channels=2))
    text = "\n".join(warnings)
    assert len(warnings) == 5
    for fragment in ("299 train", "10 test", "5 classes", "length 61", "2 channels"):
        assert fragment in text


def test_check_against_catalog_skips_sizes_of_resized_data_and_unknown_names() -> None:
    data = _dataset("other-name", 8, 4, 60, 6)
    assert catalog.check_against_catalog(data) == []  # not in the catalog
    data.metadata.update(catalog_name="SyntheticControl", resized=True)
    assert catalog.check_against_catalog(data) == []
    data.metadata["resized"] = False
    assert len(catalog.check_against_catalog(data)) == 2  # both split sizes now compared


def test_generator_names_listed_in_catalog_match_the_generators() -> None:
    from ncvqvae.data import generators

    assert set(catalog.GENERATOR_NAMES) == set(generators.names())
