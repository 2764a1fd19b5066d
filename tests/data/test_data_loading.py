"""load_dataset: name/path resolution, label remapping, length policies and metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ncvqvae.config import DataConfig
from ncvqvae.data import load_dataset, write_series
from ncvqvae.data.loading import apply_length_policy, series_lengths
from ncvqvae.data.prepare import load_prepared
from ncvqvae.errors import DataError


def _toy(folder: Path, name: str = "Toy", ext: str = "tsv", labels=(-1, 1)) -> tuple[np.ndarray, np.ndarray]:
    """Write <folder>/<name>_TRAIN/TEST.<ext> and return the train arrays."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6, 1, 8)).astype(np.float32)
    y = np.array([labels[i % len(labels)] for i in range(6)])
    write_series(folder / f"{name}_TRAIN.{ext}", X, y)
    write_series(folder / f"{name}_TEST.{ext}", X[:3] + 1, y[:3])
    return X, y


def test_ucr_minus_one_one_labels(tmp_path: Path) -> None:
    X, y = _toy(tmp_path / "Toy")
    dataset = load_dataset(tmp_path / "Toy")
    assert dataset.label_values == (-1, 1) and dataset.class_names == ("-1", "1")
    np.testing.assert_array_equal(dataset.y_train, (y == 1).astype(int))
    assert dataset.y_train.dtype == np.int64 and dataset.X_train.dtype == np.float32
    np.testing.assert_array_equal(dataset.X_train, X)
    np.testing.assert_array_equal(dataset.X_test, X[:3] + 1)
    assert dataset.name == "Toy" and dataset.source == str(tmp_path / "Toy")
    assert dataset.metadata["format"] == "tsv" and not dataset.metadata["variable_length"]
    assert dataset.metadata["train_path"].endswith("Toy_TRAIN.tsv")


def test_zero_based_labels_stay_and_numeric_sort_is_numeric(tmp_path: Path) -> None:
    _toy(tmp_path / "A", "A", labels=(0, 1, 2))
    assert load_dataset(tmp_path / "A").label_values == (0, 1, 2)
    _toy(tmp_path / "B", "B", labels=(10, 9, 100))  # string sort would give 10 < 100 < 9
    dataset = load_dataset(tmp_path / "B")
    assert dataset.label_values == (9, 10, 100)
    np.testing.assert_array_equal(dataset.y_train[:3], [1, 0, 2])


def test_archive_root_plus_name_case_insensitive(tmp_path: Path) -> None:
    X, _ = _toy(tmp_path / "root" / "MyData", "MyData")
    dataset = load_dataset("mydata", data_dir=tmp_path / "root")
    assert dataset.name == "MyData"
    np.testing.assert_array_equal(dataset.X_train, X)


def test_flat_layout_and_env_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toy(tmp_path / "flat", "Alpha")
    _toy(tmp_path / "flat", "Beta", labels=(1, 2, 3))
    monkeypatch.setenv("NCVQVAE_DATA_DIR", str(tmp_path / "flat"))
    dataset = load_dataset("BETA")
    assert dataset.name == "Beta" and dataset.label_values == (1, 2, 3)


def test_folder_with_another_name_and_format_preference(tmp_path: Path) -> None:
    folder = tmp_path / "download"
    X, _ = _toy(folder, "Gamma", ext="arff")
    write_series(folder / "Gamma_TRAIN.ts", X, np.zeros(6))  # .ts is preferred over .arff
    write_series(folder / "Gamma_TEST.ts", X[:2], np.zeros(2))
    dataset = load_dataset(folder)
    assert dataset.name == "Gamma" and dataset.metadata["format"] == "ts"
    assert dataset.X_test.shape == (2, 1, 8)


def test_single_file_is_train_only_and_explicit_pair(tmp_path: Path) -> None:
    _toy(tmp_path, "Pair")
    alone = load_dataset(tmp_path / "Pair_TRAIN.tsv")
    assert alone.X_test is None and alone.y_test is None and alone.name == "Pair"
    paired = load_dataset(str(tmp_path / "Pair_TRAIN.tsv"), test=tmp_path / "Pair_TEST.tsv")
    assert paired.X_test.shape == (3, 1, 8)


def test_generator_name_goes_to_the_generators() -> None:
    dataset = load_dataset("gen-CBF", seed=3, n_train=6, n_test=4)
    assert dataset.source == "generator:cbf" and dataset.name == "gen-cbf"
    assert dataset.X_train.shape == (6, 1, 128) and dataset.X_test.shape == (4, 1, 128)
    again = load_dataset("gen-cbf", seed=3, n_train=6, n_test=4)
    np.testing.assert_array_equal(dataset.X_train, again.X_train)


def test_an_archive_name_loads_the_archive_not_the_generator_imitating_it(tmp_path: Path) -> None:
    """Issue 16, bug 1: TwoPatterns (any case) is the archive's dataset; the generator is gen-twopatterns."""
    X, _ = _toy(tmp_path / "TwoPatterns", "TwoPatterns", labels=(1, 2, 3, 4))
    for name in ("TwoPatterns", "twopatterns", "TWOPATTERNS"):
        dataset = load_dataset(name, data_dir=tmp_path)
        assert dataset.name == "TwoPatterns" and dataset.source == str(tmp_path / "TwoPatterns")
        np.testing.assert_array_equal(dataset.X_train, X)
    assert DataConfig().dataset == "gen-twopatterns"  # the offline default is the generator, by its name
    prepared = load_prepared(DataConfig(dataset="TwoPatterns", data_dir=str(tmp_path)))
    assert prepared.X_train.shape == (6, 1, 8) and prepared.source == str(tmp_path / "TwoPatterns")
    assert load_prepared(DataConfig()).source == "generator:twopatterns"


def test_generator_sizes_of_a_config_apply_to_the_generators_only(tmp_path: Path) -> None:
    """Issue 16, bug 4: data.n_train/n_test (the quick preset's n_test) leave a file dataset whole."""
    _toy(tmp_path / "Toy")
    prepared = load_prepared(DataConfig(dataset=str(tmp_path / "Toy"), n_test=1000, n_train=2))
    assert prepared.X_train.shape[0] == 6 and prepared.X_test.shape[0] == 3
    assert load_prepared(DataConfig(n_train=5, n_test=7)).X_test.shape[0] == 7
    with pytest.raises(DataError, match="n_train/n_test apply to the built-in generators only"):
        load_dataset(tmp_path / "Toy", n_test=3)  # the Python API keeps refusing an explicit size


def test_test_split_with_fewer_classes_keeps_train_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    write_series(tmp_path / "c_TRAIN.tsv", rng.standard_normal((4, 1, 5)), [5, 6, 7, 5])
    write_series(tmp_path / "c_TEST.tsv", rng.standard_normal((2, 1, 5)), [7, 7])
    dataset = load_dataset(tmp_path)
    np.testing.assert_array_equal(dataset.y_test, [2, 2])


def _ragged() -> tuple[np.ndarray, np.ndarray]:
    X_train = np.full((3, 1, 6), np.nan, dtype=np.float32)
    X_train[0, 0, :4] = [0, 1, 2, 3]
    X_train[1, 0, :] = np.arange(6)
    X_train[2, 0, :2] = [5, 7]
    X_test = np.full((1, 1, 10), np.nan, dtype=np.float32)  # extra all-NaN padding columns
    X_test[0, 0, :3] = [1, np.nan, 3]
    return X_train, X_test


def test_length_policy_pad_keeps_nan_padding_to_the_longest(tmp_path: Path) -> None:
    X_train, X_test = _ragged()
    write_series(tmp_path / "v_TRAIN.tsv", X_train, [0, 1, 0])
    write_series(tmp_path / "v_TEST.tsv", X_test, [1])
    dataset = load_dataset(tmp_path, length_policy="pad")
    assert dataset.X_train.shape == (3, 1, 6) and dataset.X_test.shape == (1, 1, 6)
    np.testing.assert_array_equal(dataset.X_train, X_train)
    meta = dataset.metadata
    assert meta["variable_length"] and (meta["min_length"], meta["max_length"]) == (2, 6)
    assert meta["lengths_train"] == [4, 6, 2] and meta["lengths_test"] == [3]


def test_length_policy_resample_stretches_the_valid_part() -> None:
    X_train, X_test = _ragged()
    out_train, out_test, info = apply_length_policy(X_train, X_test, "resample")
    np.testing.assert_allclose(out_train[0, 0], np.linspace(0, 3, 6), rtol=1e-6)
    np.testing.assert_array_equal(out_train[1, 0], np.arange(6))  # full length: unchanged
    np.testing.assert_allclose(out_train[2, 0], np.linspace(5, 7, 6), rtol=1e-6)
    assert not np.isnan(out_train).any()
    # a missing value inside stays missing and spreads only to points interpolated from it
    assert out_test[0, 0, 0] == 1 and out_test[0, 0, -1] == 3 and np.isnan(out_test[0, 0, 1:5]).all()
    assert info["length_policy"] == "resample" and info["lengths_train"] == [4, 6, 2]


def test_equal_length_data_has_no_length_lists() -> None:
    X = np.ones((2, 2, 5), dtype=np.float32)
    X[0, 1, 2] = np.nan  # inside: not padding
    _, _, info = apply_length_policy(X, None, "error")
    assert not info["variable_length"] and "lengths_train" not in info
    np.testing.assert_array_equal(series_lengths(X), [5, 5])


def test_unlabelled_test_of_labelled_train(tmp_path: Path) -> None:
    X = np.zeros((2, 1, 4), dtype=np.float32)
    np.savez(tmp_path / "d.npz", X_train=X, y_train=np.array(["b", "a"]), X_test=X)
    dataset = load_dataset(tmp_path / "d.npz")
    assert dataset.label_values == ("a", "b") and dataset.y_test is None
    assert dataset.summary()["n_test"] == 2


def test_named_folder_is_checked_against_the_ucr_catalog(tmp_path, caplog):
    """A folder named like a UCR dataset with the wrong sizes loads, with a warning naming the mismatch."""
    import logging

    import numpy as np

    from ncvqvae.data import load_dataset
    from ncvqvae.data.formats import write_series

    rng = np.random.default_rng(0)
    folder = tmp_path / "ECG5000"
    X = rng.normal(size=(10, 1, 140)).astype(np.float32)
    y = np.arange(10) % 5 + 1
    write_series(folder / "ECG5000_TRAIN.tsv", X, y)
    write_series(folder / "ECG5000_TEST.tsv", X, y)
    with caplog.at_level(logging.WARNING, logger="ncvqvae.data.loading"):
        load_dataset(folder)
    assert any("10 train series, the UCR catalog says 500" in r.getMessage() for r in caplog.records)
