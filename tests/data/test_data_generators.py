"""The built-in generators: archive sizes, seeding, formulas, and (slow) 1-NN agreement with real data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from ncvqvae.data import catalog, generators
from ncvqvae.errors import DataError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.mark.parametrize("name", generators.names())
def test_default_sizes_match_the_archive(name: str) -> None:
    spec = generators.spec(name)
    assert spec is not None
    entry = catalog.lookup(spec.catalog_name)
    assert entry is not None
    assert (spec.n_train, spec.n_test, spec.length, spec.n_classes) == (
        entry.n_train,
        entry.n_test,
        entry.length,
        entry.n_classes,
    )


@pytest.mark.parametrize("name", generators.names())
def test_generated_dataset_follows_the_dataset_contract(name: str) -> None:
    data = generators.generate(name.upper(), seed=3, n_train=40, n_test=12)
    spec = generators.spec(name)
    assert spec is not None
    assert data.X_train.shape == (40, 1, spec.length) and data.X_train.dtype == np.float32
    assert data.X_test is not None and data.X_test.shape == (12, 1, spec.length)
    assert data.y_train is not None and data.y_train.dtype == np.int64
    assert data.y_train.min() >= 0 and data.y_train.max() < spec.n_classes
    assert data.label_values == spec.label_values and len(data.class_names) == spec.n_classes
    assert data.name == name and name.startswith(generators.PREFIX)
    assert data.source == f"generator:{name.removeprefix(generators.PREFIX)}" and data.metadata["regenerated"]
    assert data.metadata["resized"] is True
    # z-normalised per series like the archive's files (sample std).
    np.testing.assert_allclose(data.X_train.mean(axis=2), 0.0, atol=1e-5)
    np.testing.assert_allclose(data.X_train.std(axis=2, ddof=1), 1.0, atol=1e-5)
    assert catalog.check_against_catalog(data) == []


def test_archive_sizes_and_balance() -> None:
    control = generators.generate("syntheticcontrol")
    assert control.X_train.shape == (300, 1, 60) and control.X_test is not None
    assert np.bincount(control.y_train).tolist() == [50] * 6  # type: ignore[arg-type]
    assert np.bincount(control.y_test).tolist() == [50] * 6  # type: ignore[arg-type]
    assert control.metadata["resized"] is False
    assert catalog.check_against_catalog(control) == []


def test_same_seed_same_data_and_test_split_independent_of_train_size() -> None:
    a = generators.generate("cbf", seed=7, n_train=20, n_test=15)
    b = generators.generate("cbf", seed=7, n_train=20, n_test=15)
    c = generators.generate("cbf", seed=7, n_train=33, n_test=15)
    d = generators.generate("cbf", seed=8, n_train=20, n_test=15)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)  # type: ignore[arg-type]
    np.testing.assert_array_equal(a.X_test, c.X_test)  # type: ignore[arg-type]
    assert not np.array_equal(a.X_train, d.X_train)


def test_generation_leaves_global_numpy_rng_alone() -> None:
    np.random.seed(123)
    expected = np.random.random(3)
    np.random.seed(123)
    generators.generate("twopatterns", n_train=10, n_test=2)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_twopatterns_is_vectorised_fast() -> None:
    start = time.perf_counter()
    data = generators.generate("twopatterns")
    elapsed = time.perf_counter() - start
    assert data.X_train.shape == (1000, 1, 128) and data.X_test.shape == (4000, 1, 128)  # type: ignore[union-attr]
    assert elapsed < 1.0, f"5000 TwoPatterns series took {elapsed:.2f}s"


def test_twopatterns_patterns_have_the_class_directions() -> None:
    data = generators.generate("twopatterns", n_train=400, n_test=0)
    assert data.X_test is None
    x = data.X_train[:, 0]
    # A moving average over 8 samples (the shortest plateau) keeps the ±5 plateaus and shrinks the
    # N(0, 1) noise to std 0.35: the first sample beyond half the maximum belongs to the first plateau,
    # which is low for an upward pattern (−5 then +5) and high for a downward one.
    smooth = np.stack([np.convolve(s, np.ones(8) / 8, mode="valid") for s in x])
    first = np.argmax(np.abs(smooth) > 0.5 * np.abs(smooth).max(axis=1, keepdims=True), axis=1)
    first_is_up = smooth[np.arange(len(x)), first] < 0
    np.testing.assert_array_equal(first_is_up, data.y_train % 2 == 1)  # type: ignore[operator]


def test_syntheticcontrol_class_shapes() -> None:
    data = generators.generate("syntheticcontrol", n_train=600, n_test=0)
    x, y = data.X_train[:, 0], data.y_train
    t = np.arange(60)
    slopes = np.array([np.polyfit(t, s, 1)[0] for s in x])
    assert slopes[y == 2].min() > 0 and slopes[y == 3].max() < 0  # increasing / decreasing trend
    jump = x[:, 45:].mean(axis=1) - x[:, :15].mean(axis=1)
    assert jump[y == 4].min() > 0.5 and jump[y == 5].max() < -0.5  # upward / downward shift
    assert np.abs(slopes[y == 0]).mean() < 0.01  # normal: no trend


def test_cbf_event_shapes() -> None:
    data = generators.generate("cbf", n_train=300, n_test=0)
    x, y = data.X_train[:, 0], data.y_train
    smooth = np.stack([np.convolve(s, np.ones(8) / 8, mode="same") for s in x])
    peak = smooth.argmax(axis=1)
    # The funnel peaks at the event's start a ∈ [16, 32], the bell at its end b ≥ a + 32 ≥ 48.
    assert np.median(peak[y == 2]) < 40 and np.median(peak[y == 1]) > 48
    # The cylinder stays high over its whole event, the bell over about half of it.
    wide = (smooth > 0.5 * smooth.max(axis=1, keepdims=True)).sum(axis=1)
    assert wide[y == 0].mean() > 1.5 * wide[y == 1].mean()


def test_bad_generator_arguments_raise_data_error() -> None:
    with pytest.raises(DataError, match="unknown generator 'nope'"):
        generators.generate("nope")
    with pytest.raises(DataError, match="n_train"):
        generators.generate("cbf", n_train=0)
    assert generators.spec("nope") is None


# ------------------------------------------------------------------------------ real-data agreement


def _read_ts(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Univariate equal-length .ts (data rows 'v1,v2,...:label'); ncvqvae's loader is not the subject."""
    rows, labels = [], []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and line[0] not in "#@":
            values, label = line.rsplit(":", 1)
            rows.append(np.array(values.split(","), dtype=float))
            labels.append(int(label))
    return np.stack(rows), np.array(labels)


def _one_nn_accuracy(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> float:
    d = (x_test**2).sum(1)[:, None] + (x_train**2).sum(1)[None, :] - 2.0 * x_test @ x_train.T
    return float((y_train[d.argmin(axis=1)] == y_test).mean())


@pytest.mark.slow
@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="shared/data with the real UCR files is absent")
@pytest.mark.parametrize(
    ("name", "real_file", "expected"),
    [("twopatterns", "TwoPatterns_TRAIN.ts", 0.90), ("syntheticcontrol", "SyntheticControl_TEST.ts", 0.90)],
)
def test_one_nn_from_generated_train_to_real_data(name: str, real_file: str, expected: float) -> None:
    x_real, y_real = _read_ts(SHARED_DATA / real_file)
    accuracies = []
    for seed in range(3):
        data = generators.generate(name, seed=seed)
        y_gen = np.asarray(data.label_values)[data.y_train]  # back to the archive's labels
        accuracies.append(_one_nn_accuracy(data.X_train[:, 0].astype(float), y_gen, x_real, y_real))
    assert abs(np.mean(accuracies) - expected) <= 0.03, accuracies
