"""FID, cFID, IS and bootstrap intervals against closed forms and their defining properties."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import threadpoolctl

from ncvqvae.errors import DataError
from ncvqvae.evaluation.metrics import (
    bootstrap_ci,
    class_fid,
    feature_statistics,
    fid,
    frechet_distance,
    inception_score,
)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """Small matrices: a second BLAS/OpenMP thread only spin-waits on a loaded CPU."""
    with threadpoolctl.threadpool_limits(1):
        yield


def _gaussian(rng: np.random.Generator, n: int, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    return rng.multivariate_normal(mean, cov, size=n)


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.5 * np.eye(d)


def _closed_form(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    # Tr((Σ1 Σ2)^{1/2}) = Tr((Σ1^{1/2} Σ2 Σ1^{1/2})^{1/2}): a symmetric route through eigh, independent
    # of the sqrtm of the non-symmetric product that fid() uses.
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner)))


def test_fid_of_a_set_with_itself_is_zero() -> None:
    x = np.random.default_rng(0).normal(size=(300, 16))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)


def test_fid_is_symmetric() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 8)), rng.normal(1.0, 2.0, size=(150, 8))
    assert fid(a, b) == pytest.approx(fid(b, a), rel=1e-8)
    assert fid(a, b) > 1.0


def test_frechet_distance_matches_the_closed_form_for_known_gaussians() -> None:
    rng = np.random.default_rng(2)
    d = 6
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_closed_form(mu1, s1, mu2, s2), rel=1e-8)
    # Univariate sanity: (μ1 − μ2)² + (σ1 − σ2)².
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([-1.0]), np.array([[1.0]])) == (
        pytest.approx(4.0 + 1.0)
    )


def test_fid_of_samples_converges_to_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    d = 4
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    s1, s2 = _random_spd(rng, d), _random_spd(rng, d)
    a, b = _gaussian(rng, 40_000, mu1, s1), _gaussian(rng, 40_000, mu2, s2)
    assert fid(a, b) == pytest.approx(_closed_form(mu1, s1, mu2, s2), rel=0.05)
    mu, sigma = feature_statistics(a)
    assert sigma.dtype == np.float64 and np.allclose(sigma, np.cov(a.T), atol=1e-12)


def test_fid_rejects_bad_features() -> None:
    with pytest.raises(DataError, match="feature"):
        fid(np.zeros(10), np.zeros((10, 2)))
    with pytest.raises(DataError, match="at least 2"):
        fid(np.zeros((1, 3)), np.zeros((10, 3)))
    with pytest.raises(DataError, match="dimensions"):
        fid(np.zeros((5, 3)), np.zeros((5, 4)))


def test_class_fid_scores_each_class_separately() -> None:
    rng = np.random.default_rng(4)
    real = np.concatenate([rng.normal(0, 1, (100, 3)), rng.normal(5, 1, (100, 3))])
    y = np.repeat([0, 1], 100)
    # Class 0 generated well, class 1 generated at class 0's location; class 2 never seen.
    fake = np.concatenate([rng.normal(0, 1, (100, 3)), rng.normal(0, 1, (100, 3))])
    scores = class_fid(real, y, fake, y, n_classes=3)
    assert scores[0] < 0.5 < 50 < scores[1]
    assert scores[1] == pytest.approx(fid(real[y == 1], fake[y == 1]))
    assert np.isnan(scores[2])


def test_inception_score_of_a_uniform_classifier_is_one() -> None:
    probs = np.full((200, 5), 0.2)
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(1.0) and std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_of_a_perfect_confident_classifier_is_k() -> None:
    k = 7
    probs = np.tile(np.eye(k), (30, 1))  # every split of 21 rows holds each class 3 times
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-9)


def test_inception_score_lies_between_one_and_k() -> None:
    probs = np.random.default_rng(5).dirichlet(np.full(4, 0.5), size=300)
    mean, std = inception_score(probs)
    assert 1.0 < mean < 4.0 and std > 0


def test_inception_score_rejects_non_probabilities() -> None:
    with pytest.raises(DataError, match="sum to 1"):
        inception_score(np.ones((10, 3)))
    with pytest.raises(DataError, match="splits"):
        inception_score(np.full((5, 2), 0.5), splits=10)


def test_bootstrap_interval_of_fid_covers_the_point_estimate_and_is_seeded() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 1, (400, 4)), rng.normal(0.7, 1.2, (400, 4))
    point = fid(a, b)
    lo, hi = bootstrap_ci(fid, a, b, n=100, seed=0)
    assert lo < point < hi
    assert hi - lo < point  # a meaningful interval, not everything
    assert bootstrap_ci(fid, a, b, n=100, seed=0) == (lo, hi)
    assert bootstrap_ci(fid, a, b, n=100, seed=1) != (lo, hi)


def test_bootstrap_interval_of_inception_score_covers_the_point_estimate() -> None:
    probs = np.random.default_rng(7).dirichlet(np.full(5, 0.3), size=500)
    point, _ = inception_score(probs)
    lo, hi = bootstrap_ci(lambda p: inception_score(p)[0], probs, n=100, seed=0)
    assert lo < point < hi


def test_bootstrap_of_the_mean_matches_the_normal_interval() -> None:
    x = np.random.default_rng(8).normal(3.0, 2.0, size=(2000,))
    lo, hi = bootstrap_ci(np.mean, x, n=400, seed=0)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert lo == pytest.approx(x.mean() - half, abs=0.04)
    assert hi == pytest.approx(x.mean() + half, abs=0.04)


def test_sqrtm_fallback_handles_singular_covariances() -> None:
    # Rank-deficient features (more dimensions than samples): the product is singular.
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(5, 12)), rng.normal(size=(5, 12))
    value = fid(a, b)
    assert np.isfinite(value) and value > 0
