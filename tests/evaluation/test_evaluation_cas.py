"""Classification accuracy score: synthetic-set sizes, separable vs. label-shuffled data, legacy mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ncvqvae.errors import ConfigError, DataError
from ncvqvae.evaluation.cas import cas, cas_class_counts, cas_labels

K = 4

pytestmark = pytest.mark.usefixtures("one_thread")


def _separable(n_per_class: int, seed: int, length: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    """Class k is a sine of frequency k + 1 plus noise: linearly separable in the spectrum."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(K).repeat_interleave(n_per_class)
    t = torch.linspace(0, 2 * torch.pi, length)
    X = torch.sin((y[:, None].float() + 1) * t)[:, None, :]
    return X + 0.2 * torch.randn(len(y), 1, length, generator=gen), y


def test_class_counts_follow_train_proportions_and_reach_the_minimum() -> None:
    y = np.array([0] * 30 + [1] * 10)
    assert cas_class_counts(y, 2, min_total=1000).tolist() == [750, 250]
    assert cas_class_counts(y, 3, min_total=10).tolist() == [30, 10, 0]  # large enough: as is
    counts = cas_class_counts(np.array([0, 1, 1, 2, 2, 2]), 3, min_total=1000)
    assert counts.sum() >= 1000 and counts[2] > counts[1] > counts[0]
    assert cas_labels(np.array([2, 0, 3])).tolist() == [0, 0, 2, 2, 2]


def test_cas_is_close_to_one_on_separable_data() -> None:
    X, y = _separable(40, seed=0)
    Xt, yt = _separable(15, seed=1)
    result = cas(X, y, Xt, yt, n_classes=K, epochs=4, batch_size=16, seed=0)
    assert result.accuracy >= 0.95
    assert result.value == result.accuracy and result.legacy is None
    assert result.n_synthetic == 160 and result.class_counts == [40] * K


def test_cas_is_close_to_chance_on_label_shuffled_data() -> None:
    X, y = _separable(40, seed=0)
    Xt, yt = _separable(15, seed=1)
    # Every class receives every label equally often: the labels carry no information about the series.
    gen = torch.Generator().manual_seed(0)
    shuffled = torch.cat([torch.arange(K).repeat(10)[torch.randperm(40, generator=gen)] for _ in range(K)])
    result = cas(X, shuffled, Xt, yt, n_classes=K, epochs=4, batch_size=16, seed=0)
    # The test classes are tight clusters, so each is mostly predicted as one label and the accuracy
    # moves in steps of about 1/K; it must stay far from the separable score.
    assert result.accuracy <= 0.5


def test_cas_of_uninformative_series_is_chance() -> None:
    gen = torch.Generator().manual_seed(0)
    X, Xt = torch.randn(160, 1, 24, generator=gen), torch.randn(400, 1, 24, generator=gen)
    y, yt = torch.randint(0, K, (160,), generator=gen), torch.randint(0, K, (400,), generator=gen)
    result = cas(X, y, Xt, yt, n_classes=K, epochs=4, batch_size=16, seed=0)
    assert abs(result.accuracy - 1 / K) < 0.08  # ~3.5 binomial standard deviations at n = 400


def test_legacy_mode_reports_an_ema_of_batch_accuracies() -> None:
    X, y = _separable(20, seed=0)
    Xt, yt = _separable(10, seed=1)
    result = cas(X, y, Xt, yt, n_classes=K, epochs=3, batch_size=16, seed=0, mode="legacy")
    assert result.legacy is not None and 0.0 <= result.legacy <= 1.0
    assert result.value == result.legacy
    # Same seed, same training: the clean number does not depend on the mode.
    clean = cas(X, y, Xt, yt, n_classes=K, epochs=3, batch_size=16, seed=0)
    assert clean.accuracy == result.accuracy


def test_cas_rejects_bad_inputs() -> None:
    X, y = _separable(5, seed=0)
    with pytest.raises(ConfigError, match="cas_mode"):
        cas(X, y, X, y, n_classes=K, epochs=1, mode="ema")
    with pytest.raises(DataError, match="n_timepoints"):
        cas(X, y, X[..., :10], y, n_classes=K, epochs=1)
