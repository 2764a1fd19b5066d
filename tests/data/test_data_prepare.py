"""Tests of prepare() / load_prepared(): the SPEC §2 protocol and its options."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from ncvqvae.config import DataConfig
from ncvqvae.data.dataset import Dataset
from ncvqvae.data.prepare import load_prepared, prepare
from ncvqvae.errors import ConfigError, DataError


def make_dataset(n_train: int = 40, n_test: int = 20, channels: int = 1, length: int = 16, seed: int = 0,
                 n_classes: int = 2) -> Dataset:
    rng = np.random.default_rng(seed)
    X_train = (3.0 + 2.0 * rng.standard_normal((n_train, channels, length))).astype(np.float32)
    X_test = (10.0 + 5.0 * rng.standard_normal((n_test, channels, length))).astype(np.float32)
    y_train = np.arange(n_train) % n_classes
    y_test = np.arange(n_test) % n_classes
    return Dataset(
        name="toy", X_train=X_train, y_train=y_train, X_test=X_test, y_test=y_test,
        label_values=tuple(range(n_classes)),
    )


def test_global_stats_come_from_train_only() -> None:
    ds = make_dataset()
    data = prepare(ds)
    assert data.mean == pytest.approx(float(ds.X_train.astype(np.float64).mean()))
    assert data.std == pytest.approx(float(ds.X_train.astype(np.float64).std()))
    expected_test = (ds.X_test.astype(np.float64) - data.mean) / data.std
    np.testing.assert_allclose(data.X_test.numpy(), expected_test, rtol=1e-5, atol=1e-5)
    assert data.X_train.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert data.X_train.std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    # the test split differs in scale: its statistics must not have been used
    assert data.X_test.mean().item() > 2.0
    assert data.X_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert data.normalization == "global" and data.n_classes == 2
    np.testing.assert_allclose(data.denormalize(data.X_test).numpy(), ds.X_test, rtol=1e-5, atol=1e-4)


def test_nan_is_ignored_by_the_statistics_and_becomes_zero() -> None:
    ds = make_dataset()
    ds.X_train[0, 0, :5] = np.nan
    ds.X_test[1, 0, 3] = np.nan
    data = prepare(ds)
    assert data.mean == pytest.approx(float(np.nanmean(ds.X_train.astype(np.float64))))
    assert data.std == pytest.approx(float(np.nanstd(ds.X_train.astype(np.float64))))
    assert torch.isfinite(data.X_train).all() and torch.isfinite(data.X_test).all()
    assert (data.X_train[0, 0, :5] == 0).all() and data.X_test[1, 0, 3] == 0


def test_per_series_normalisation() -> None:
    ds = make_dataset(channels=2)
    ds.X_train[3, 1] = 7.0  # a constant channel: std guarded, becomes 0
    ds.X_train[4, 0, :4] = np.nan
    data = prepare(ds, normalization="per_series")
    x = data.X_train.double()
    for i, c in [(0, 0), (0, 1), (10, 1)]:
        assert x[i, c].mean().item() == pytest.approx(0.0, abs=1e-6)
        assert x[i, c].std(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    assert (data.X_train[3, 1] == 0).all() and (data.X_train[4, 0, :4] == 0).all()
    assert data.X_test[0, 0].mean().item() == pytest.approx(0.0, abs=1e-5)  # test too, on its own
    assert (data.mean, data.std) == (0.0, 1.0)
    assert torch.equal(data.denormalize(data.X_test), data.X_test)  # identity by design


def test_none_normalisation_only_replaces_nan() -> None:
    ds = make_dataset()
    ds.X_train[0, 0, 0] = np.nan
    data = prepare(ds, normalization="none")
    expected = np.nan_to_num(ds.X_train, nan=0.0)
    np.testing.assert_array_equal(data.X_train.numpy(), expected)


def test_stratified_validation_split_is_seeded_disjoint_and_excluded_from_stats() -> None:
    ds = make_dataset(n_train=60, n_classes=3)
    ds.X_train[:, 0, 0] = np.arange(60)  # a fingerprint identifying each series
    data = prepare(ds, val_fraction=0.25, seed=3)
    assert len(data.X_val) == 15 and len(data.X_train) == 45
    ids = lambda X: set(np.rint(X[:, 0, 0].numpy() * data.std + data.mean).astype(int).tolist())  # noqa: E731
    train_ids, val_ids = ids(data.X_train), ids(data.X_val)
    assert train_ids.isdisjoint(val_ids) and train_ids | val_ids == set(range(60))
    assert np.bincount(data.y_val.numpy()).tolist() == [5, 5, 5]  # stratified
    # labels travel with their series
    assert all(int(i) % 3 == int(y) for i, y in zip(sorted(val_ids), data.y_val.tolist(), strict=True))
    # statistics computed on the remaining train part only
    kept = ds.X_train[sorted(train_ids)].astype(np.float64)
    assert data.mean == pytest.approx(kept.mean()) and data.std == pytest.approx(kept.std())
    again = prepare(ds, val_fraction=0.25, seed=3)
    assert torch.equal(again.X_val, data.X_val)
    other = prepare(ds, val_fraction=0.25, seed=4)
    assert not torch.equal(other.X_val, data.X_val)


def test_unlabelled_data() -> None:
    ds = make_dataset()
    ds = Dataset(name="u", X_train=ds.X_train, X_test=None)
    data = prepare(ds, val_fraction=0.2, seed=0)
    assert data.y_train is None and data.y_val is None and data.X_test is None
    assert data.n_classes == 0 and len(data.X_val) == 8 and len(data.X_train) == 32


def test_labels_without_label_values_are_remapped() -> None:
    ds = make_dataset()
    ds.y_train = np.where(ds.y_train == 0, -1, 5)
    ds.y_test = np.where(ds.y_test == 0, -1, 5)
    ds.label_values = ()
    data = prepare(ds)
    assert data.label_values == (-1, 5) and data.class_names == ("-1", "5")
    assert data.y_train.tolist() == (np.arange(40) % 2).tolist()
    assert data.y_test.tolist() == (np.arange(20) % 2).tolist()


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda ds: setattr(ds, "X_train", ds.X_train[:, 0]), DataError, "n_timepoints"),
        (lambda ds: ds.X_train.__setitem__((0, 0, 0), np.inf), DataError, "infinite"),
        (lambda ds: ds.X_train.fill(np.nan), DataError, "only NaN"),
        (lambda ds: setattr(ds, "y_train", ds.y_train[:-1]), DataError, "y_train has 39 labels"),
        (lambda ds: setattr(ds, "y_train", ds.y_train + 1), DataError, "class ids 0..1"),
        (lambda ds: setattr(ds, "X_test", ds.X_test[..., :5]), DataError, "X_test"),
    ],
)
def test_bad_input_is_named(mutate, error: type[Exception], match: str) -> None:
    ds = make_dataset()
    mutate(ds)
    with pytest.raises(error, match=match):
        prepare(ds)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="normalization"):
        prepare(make_dataset(), normalization="minmax")
    with pytest.raises(ConfigError, match="val_fraction"):
        prepare(make_dataset(), val_fraction=1.0)
    with pytest.raises(DataError, match="stratified validation split"):
        prepare(make_dataset(n_train=10, n_classes=5), val_fraction=0.2)


def test_constant_train_split_is_only_centred(caplog: pytest.LogCaptureFixture) -> None:
    ds = make_dataset()
    ds.X_train[:] = 4.0
    data = prepare(ds)
    assert (data.mean, data.std) == (4.0, 1.0)
    assert (data.X_train == 0).all() and "constant" in caplog.text


def test_load_prepared_passes_the_config_through(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_load_dataset(name, **kwargs):
        calls.append((name, kwargs))
        return make_dataset(n_train=30, n_classes=3)

    module = types.ModuleType("ncvqvae.data.loading")
    module.load_dataset = fake_load_dataset
    monkeypatch.setitem(sys.modules, "ncvqvae.data.loading", module)
    cfg = DataConfig(dataset="gen-cbf", normalization="per_series", val_fraction=0.2, generator_seed=7,
                     n_train=30, n_test=20, layout="ntc", length_policy="resample", data_dir="/x")
    data = load_prepared(cfg, seed=5)
    assert calls == [("gen-cbf", {"data_dir": "/x", "layout": "ntc", "length_policy": "resample", "seed": 7,
                              "n_train": 30, "n_test": 20})]
    assert data.normalization == "per_series" and len(data.X_val) == 6
    expected = prepare(
        make_dataset(n_train=30, n_classes=3), normalization="per_series", val_fraction=0.2, seed=5
    )
    assert torch.equal(data.X_val, expected.X_val)


def test_load_prepared_with_a_built_in_generator() -> None:
    cfg = DataConfig(dataset="gen-cbf", n_train=30, n_test=12, val_fraction=0.2)
    data = load_prepared(cfg, seed=0)
    assert data.X_train.shape[0] == 24 and data.X_val.shape[0] == 6 and data.X_test.shape[0] == 12
    assert data.n_classes == 3 and set(data.y_train.tolist()) == {0, 1, 2}
    assert data.X_train.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert torch.equal(load_prepared(cfg, seed=0).X_train, data.X_train)
