"""Readers and writers of ncvqvae.data.formats: every format reads back what was written, and the same
arrays give the same Dataset whatever the format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ncvqvae.data import Dataset, load_dataset, read_series, write_series
from ncvqvae.data.formats import write_series_batches
from ncvqvae.errors import DataError

ALL_FORMATS = ("tsv", "csv", "txt", "ts", "arff", "npz")


def _univariate(seed: int = 0, n: int = 6, length: int = 9) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, 1, length)).astype(np.float32)
    X[1, 0, 6:] = np.nan  # right padding: variable length
    X[2, 0, 3] = np.nan  # a missing value inside the series
    return X


def _assert_same_dataset(a: Dataset, b: Dataset) -> None:
    np.testing.assert_array_equal(a.X_train, b.X_train)  # NaN == NaN for assert_array_equal
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.X_test, b.X_test)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert a.label_values == b.label_values
    assert a.class_names == b.class_names
    assert a.name == b.name
    for key in ("variable_length", "min_length", "max_length", "lengths_train", "lengths_test"):
        assert a.metadata.get(key) == b.metadata.get(key), key


@pytest.mark.parametrize("ext", ALL_FORMATS)
def test_round_trip_is_exact(tmp_path: Path, ext: str) -> None:
    X = _univariate()
    y = np.array([-1, 1, 1, -1, 1, -1])
    raw = read_series(write_series(tmp_path / f"d.{ext}", X, y))
    assert raw.X.dtype == np.float32 and raw.X.shape == X.shape
    np.testing.assert_array_equal(raw.X, X)
    np.testing.assert_array_equal(raw.labels, y)


def test_every_format_gives_the_same_dataset(tmp_path: Path) -> None:
    X_train, X_test = _univariate(0), _univariate(1, n=4)
    y_train = np.array([3, 7, 7, 3, 10, 10])  # non-contiguous labels
    y_test = np.array([10, 3, 7, 7])
    datasets = []
    for ext in ALL_FORMATS:
        folder = tmp_path / ext / "Toy"
        write_series(folder / f"Toy_TRAIN.{ext}", X_train, y_train)
        write_series(folder / f"Toy_TEST.{ext}", X_test, y_test)
        datasets.append(load_dataset(folder))
    reference = datasets[0]
    assert reference.label_values == (3, 7, 10)
    np.testing.assert_array_equal(reference.y_test, [2, 0, 1, 1])
    assert reference.metadata["variable_length"]
    for other in datasets[1:]:
        _assert_same_dataset(reference, other)
    assert [d.metadata["format"] for d in datasets] == ["tsv", "csv", "text", "ts", "arff", "npz"]


def test_multivariate_unequal_ts_matches_npz(tmp_path: Path) -> None:
    X = np.random.default_rng(2).standard_normal((4, 3, 7)).astype(np.float32)
    X[0, :, 5:] = np.nan  # a shorter series
    X[1, 2, 4:] = np.nan  # one channel shorter than the others
    X[2, 1, 2] = np.nan  # missing inside
    y = np.array(["walk", "run", "walk", "sit"])
    ts_file = write_series(tmp_path / "m.ts", X, y)
    text = ts_file.read_text()
    assert "@equalLength false" in text and "@univariate false" in text and "?" in text
    assert text.splitlines()[-1].count(":") == 3  # three channels and a label
    from_ts = load_dataset(ts_file)
    from_npz = load_dataset(write_series(tmp_path / "m.npz", X, y))
    np.testing.assert_array_equal(from_ts.X_train, X)
    _assert_same_dataset(from_ts, from_npz)
    assert from_ts.label_values == ("run", "sit", "walk")
    np.testing.assert_array_equal(from_ts.y_train, [2, 0, 2, 1])
    assert from_ts.metadata["lengths_train"] == [5, 7, 7, 7]


def test_ts_header_keys_are_case_insensitive_and_question_marks_missing(tmp_path: Path) -> None:
    path = tmp_path / "h.ts"
    path.write_text(
        "# a comment\n@PROBLEMNAME toy\n@TimeStamps FALSE\n@MISSING true\n@Univariate True\n"
        "@EQUALLENGTH false\n@ClassLabel TRUE a b\n@DATA\n1,2,?,4:a\n5,6:b\n"
    )
    raw = read_series(path)
    np.testing.assert_array_equal(raw.X[:, 0], [[1, 2, np.nan, 4], [5, 6, np.nan, np.nan]])
    assert raw.labels.tolist() == ["a", "b"]


def test_ts_without_labels(tmp_path: Path) -> None:
    X = np.arange(12, dtype=np.float32).reshape(3, 2, 2)
    path = write_series(tmp_path / "u.ts", X)
    assert "@classLabel false" in path.read_text()
    dataset = load_dataset(path)
    assert dataset.y_train is None and dataset.label_values == ()
    np.testing.assert_array_equal(dataset.X_train, X)


@pytest.mark.parametrize(
    ("layout", "shape"),
    [("nct", (5, 2, 8)), ("ntc", (5, 8, 2)), ("nt", (5, 8))],
)
def test_npz_layouts(tmp_path: Path, layout: str, shape: tuple[int, ...]) -> None:
    X_nct = np.random.default_rng(3).standard_normal((5, 2 if layout != "nt" else 1, 8)).astype(np.float32)
    stored = {"nct": X_nct, "ntc": X_nct.transpose(0, 2, 1), "nt": X_nct[:, 0]}[layout]
    assert stored.shape == shape
    path = tmp_path / "a.npz"
    np.savez(path, X_train=stored, y_train=np.arange(5) % 2, X_test=stored[:2])
    dataset = load_dataset(path, layout=layout)
    np.testing.assert_array_equal(dataset.X_train, X_nct)
    np.testing.assert_array_equal(dataset.X_test, X_nct[:2])
    assert dataset.y_test is None and dataset.label_values == (0, 1)


def test_npy_unlabelled_with_npy_test(tmp_path: Path) -> None:
    X = np.random.default_rng(4).standard_normal((3, 1, 6)).astype(np.float32)
    train = write_series(tmp_path / "x_train.npy", X)
    test = write_series(tmp_path / "x_test.npy", X[:1])
    dataset = load_dataset(train, test=test)
    assert dataset.name == "x" and dataset.y_train is None
    np.testing.assert_array_equal(dataset.X_test, X[:1])


@pytest.mark.parametrize(
    ("label_column", "header", "sep"),
    [
        ("first", False, ","),
        ("last", True, ";"),
        ("none", True, "\t"),
        ("first", True, " "),
        ("last", False, "  "),
    ],
)
def test_csv_label_columns_headers_and_sniffed_delimiters(
    tmp_path: Path, label_column: str, header: bool, sep: str
) -> None:
    values = np.array([[0.5, 1.5, np.nan], [2.0, -1.0, 4.25]], dtype=np.float32)
    labels = ["x", "y"]
    lines = []
    if header:
        names = [f"t{i}" for i in range(3)]
        names = {"first": ["class", *names], "last": [*names, "class"], "none": names}[label_column]
        lines.append(sep.join(names))
    for lab, row in zip(labels, values, strict=True):
        cells = ["" if sep == "," and np.isnan(v) else ("?" if np.isnan(v) else str(v)) for v in row]
        cells = {"first": [lab, *cells], "last": [*cells, lab], "none": cells}[label_column]
        lines.append(sep.join(cells))
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    dataset = load_dataset(path, label_column=label_column)
    np.testing.assert_array_equal(dataset.X_train[:, 0], values)
    if label_column == "none":
        assert dataset.y_train is None
    else:
        assert dataset.label_values == ("x", "y")


def test_header_with_numeric_column_names_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "n.csv"
    path.write_text("label,0,1,2\n1,0.1,0.2,0.3\n2,0.4,0.5,0.6\n")
    dataset = load_dataset(path)
    assert dataset.X_train.shape == (2, 1, 3) and dataset.label_values == (1, 2)


def test_extensionless_ucr_2015_flat_file(tmp_path: Path) -> None:
    (tmp_path / "Old_TRAIN").write_text("1,0.5,0.25\n2,1.5,2.5\n")
    (tmp_path / "Old_TEST").write_text("2,3.0,4.0\n")
    dataset = load_dataset(tmp_path)
    assert dataset.name == "Old" and dataset.metadata["format"] == "text"
    np.testing.assert_array_equal(dataset.y_test, [1])


def test_writer_accepts_2d_arrays_and_tensors(tmp_path: Path) -> None:
    import torch

    X = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    raw = read_series(write_series(tmp_path / "w.csv", X, torch.tensor([0, 1])))
    np.testing.assert_array_equal(raw.X[:, 0], X.numpy())


def test_writers_are_atomic_and_leave_no_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "keep.tsv"
    write_series(target, np.ones((2, 1, 3)), [1, 2])
    before = target.read_bytes()
    with pytest.raises(DataError, match="needs a label"):  # raised inside the atomic block
        write_series(target, np.zeros((2, 1, 3)))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.tsv"]


@pytest.mark.parametrize("ext", [*ALL_FORMATS, "npy"])
def test_streamed_batches_make_the_file_write_series_makes(tmp_path: Path, ext: str) -> None:
    X = _univariate(n=7)
    y = None if ext == "npy" else np.array([3, 1, 2, 3, 1, 1, 2])
    whole = read_series(write_series(tmp_path / f"whole.{ext}", X, y, name="toy"))
    batches = [(X[i : i + 3], None if y is None else y[i : i + 3]) for i in range(0, 7, 3)]  # 3 + 3 + 1
    assert write_series_batches(tmp_path / f"streamed.{ext}", iter(batches), name="toy") == 7
    streamed = read_series(tmp_path / f"streamed.{ext}")
    np.testing.assert_array_equal(streamed.X, whole.X)
    np.testing.assert_array_equal(streamed.labels, whole.labels)
    if ext in ("ts", "arff"):  # the header (classes, name) is the whole set's
        assert (tmp_path / f"streamed.{ext}").read_text() == (tmp_path / f"whole.{ext}").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"streamed.{ext}", f"whole.{ext}"]  # no temporaries


def test_streamed_batches_are_refused_when_they_do_not_make_one_set(tmp_path: Path) -> None:
    x = np.zeros((2, 1, 4), np.float32)
    for ext in ("npz", "ts"):
        with pytest.raises(DataError, match="some batches have labels"):
            write_series_batches(tmp_path / f"a.{ext}", [(x, np.array([1, 2])), (x, None)])
        with pytest.raises(DataError, match="no samples"):
            write_series_batches(tmp_path / f"b.{ext}", [])
    with pytest.raises(DataError, match="shapes"):
        write_series_batches(tmp_path / "c.npz", [(x, None), (np.zeros((2, 1, 5), np.float32), None)])
    with pytest.raises(DataError, match="cannot store labels"):
        write_series_batches(tmp_path / "d.npy", [(x, np.array([1, 2]))])
    assert list(tmp_path.iterdir()) == []  # nothing left behind
