"""Generation metrics as pure functions of features and probabilities (SPEC §5).

The feature extractor is passed in by the caller (the cached FCN evaluator, see
:mod:`ncvqvae.evaluation.evaluator`); nothing here knows about models or files. All statistics are
computed in float64.

- :func:`fid`: Fréchet distance between Gaussians fitted to two feature sets,
  ``‖μ_r − μ_f‖² + Tr(Σ_r + Σ_f − 2 (Σ_r Σ_f)^{1/2})`` (Heusel et al. 2017), with the matrix square
  root from :func:`scipy.linalg.sqrtm` and its real part kept.
- :func:`class_fid`: the same per class (cFID), on class-conditional samples.
- :func:`inception_score`: ``exp E_x[KL(p(y|x) ‖ p(y))]`` over ``splits`` chunks, mean and std
  (Salimans et al. 2016).
- :func:`bootstrap_ci`: a percentile bootstrap interval of any of these over the samples, resampling
  every sample set independently with a seeded numpy ``Generator``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.special
import scipy.stats
from threadpoolctl import threadpool_limits

from ncvqvae.errors import DataError

log = logging.getLogger(__name__)

# The matrices here are small (D × D with D = 128): a second BLAS thread gains nothing, and on a shared,
# loaded CPU OpenBLAS threads spin-wait on each other — measured on the 2-core project machine under
# load: sqrtm of a 128 × 128 product 12 ms on one thread, 1.3 s on two. So the maths runs on one.
ONE_BLAS_THREAD = {"limits": 1, "user_api": "blas"}


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set in float64.

    Args:
        features: (N, D) features, N ≥ 2.

    Returns:
        μ (D,) and Σ (D, D) (unbiased, ``ddof=1``).
    """
    features = _as_features(features, "features")
    return features.mean(axis=0), np.cov(features, rowvar=False, ddof=1).reshape(features.shape[1], -1)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(μ1, Σ1) and N(μ2, Σ2).

    ``d² = ‖μ1 − μ2‖² + Tr(Σ1) + Tr(Σ2) − 2 Tr((Σ1 Σ2)^{1/2})``. When the product is singular enough
    that ``sqrtm`` returns non-finite values, a tiny multiple of the identity is added to both
    covariances (the usual remedy, also used by pytorch-fid and torchmetrics).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    diff = mu1 - mu2
    with warnings.catch_warnings(), threadpool_limits(**ONE_BLAS_THREAD):
        # Fewer samples than feature dimensions make Σ1 Σ2 singular; sqrtm then warns but its result
        # is still the right square root of the PSD product, checked for finiteness below.
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * 1e-6
            log.debug("fid: singular covariance product; adding %g to the diagonal", 1e-6)
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))
    # Rounding can push d² of (nearly) identical sets a hair below 0; a distance is never negative.
    return max(value, 0.0)


def fid(feat_real: np.ndarray, feat_fake: np.ndarray) -> float:
    """Fréchet inception distance between two feature sets (SPEC §5).

    Args:
        feat_real: (N_r, D) features of the real series.
        feat_fake: (N_f, D) features of the generated series.

    Returns:
        The FID (float, ≥ 0).
    """
    feat_real = _as_features(feat_real, "feat_real")
    feat_fake = _as_features(feat_fake, "feat_fake")
    if feat_real.shape[1] != feat_fake.shape[1]:
        raise DataError(f"fid: feature dimensions differ ({feat_real.shape[1]} vs {feat_fake.shape[1]})")
    with threadpool_limits(**ONE_BLAS_THREAD):
        return frechet_distance(*feature_statistics(feat_real), *feature_statistics(feat_fake))


def class_fid(
    feat_real: np.ndarray,
    y_real: np.ndarray,
    feat_fake: np.ndarray,
    y_fake: np.ndarray,
    *,
    n_classes: int | None = None,
) -> dict[int, float]:
    """FID per class (cFID): real series of class k against samples generated for class k.

    Args:
        feat_real: (N_r, D) features of real series; y_real: (N_r,) their classes.
        feat_fake: (N_f, D) features of class-conditional samples; y_fake: (N_f,) the requested classes.
        n_classes: K (default: one more than the largest label seen).

    Returns:
        ``{k: FID_k}``; a class with fewer than 2 series on either side gets ``nan`` (its covariance is
        undefined).
    """
    y_real, y_fake = np.asarray(y_real).ravel(), np.asarray(y_fake).ravel()
    if n_classes is None:
        n_classes = int(max(y_real.max(initial=-1), y_fake.max(initial=-1))) + 1
    out: dict[int, float] = {}
    for k in range(n_classes):
        real_k, fake_k = feat_real[y_real == k], feat_fake[y_fake == k]
        out[k] = fid(real_k, fake_k) if len(real_k) >= 2 and len(fake_k) >= 2 else float("nan")
    return out


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Inception score ``exp E_x[KL(p(y|x) ‖ p(y))]`` over ``splits`` chunks (SPEC §5).

    ``p(y)`` is the mean of ``p(y|x)`` within each chunk; the score of each chunk is exponentiated and
    the mean and (population) standard deviation over the chunks are returned, as in Salimans et al.

    Args:
        probs: (N, K) class probabilities (rows sum to 1).
        splits: number of (contiguous, nearly equal) chunks; at most N.

    Returns:
        (mean, std) of the per-chunk scores; 1 ≤ IS ≤ K.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise DataError(f"inception_score: probs must be a non-empty (N, K) array, got shape {probs.shape}")
    if not np.allclose(probs.sum(axis=1), 1.0, atol=1e-4):
        raise DataError("inception_score: every row of probs must sum to 1 (pass softmax outputs)")
    if not 1 <= splits <= probs.shape[0]:
        raise DataError(f"inception_score: splits must lie in 1..{probs.shape[0]} (N), got {splits}")
    scores = []
    for chunk in np.array_split(probs, splits):
        marginal = chunk.mean(axis=0, keepdims=True)
        # rel_entr gives p·log(p/q) with the 0·log 0 = 0 convention, so confident rows are exact.
        kl = scipy.special.rel_entr(chunk, marginal).sum(axis=1)
        scores.append(np.exp(kl.mean()))
    return float(np.mean(scores)), float(np.std(scores))


def bootstrap_ci(
    fn: Callable[..., float],
    *arrays: np.ndarray,
    n: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
    method: str = "percentile",
) -> tuple[float, float]:
    """A (1 − alpha) bootstrap confidence interval of ``fn(*arrays)`` over the samples.

    Each array is resampled along its first axis, with replacement and independently of the others
    (real and generated sets are independent samples); ``fn`` is evaluated on every resample.
    :func:`scipy.stats.bootstrap` does the resampling (on row indices, so that rows of
    multi-dimensional feature arrays stay together) from a numpy ``Generator`` seeded with ``seed``.

    Note that FID is biased upwards under resampling (duplicated rows shrink the effective sample),
    so for two sets that are nearly identical the interval can sit entirely above the point estimate.

    Args:
        fn: the statistic, ``fn(*resampled_arrays) -> float``.
        *arrays: one or more sample sets, each (N_i, ...).
        n: number of bootstrap resamples (≥ 2).
        seed: seed of the numpy ``Generator``.
        alpha: 1 − confidence level (0.05 → a 95% interval).
        method: "percentile" (default) or "basic" (reverse percentile); see scipy.

    Returns:
        (lo, hi).
    """
    if not arrays:
        raise ValueError("bootstrap_ci: pass at least one array")
    if n < 2:
        raise ValueError(f"bootstrap_ci: need n ≥ 2 resamples, got {n}")
    if method not in ("percentile", "basic"):
        raise ValueError(f"bootstrap_ci: method must be 'percentile' or 'basic', got {method!r}")
    arrays = tuple(np.asarray(a) for a in arrays)
    indices = tuple(np.arange(len(a)) for a in arrays)

    def statistic(*idx: np.ndarray) -> float:
        return fn(*(a[i] for a, i in zip(arrays, idx, strict=True)))

    with threadpool_limits(**ONE_BLAS_THREAD):
        result = scipy.stats.bootstrap(
            indices,
            statistic,
            n_resamples=n,
            vectorized=False,
            paired=False,
            confidence_level=1.0 - alpha,
            method=method,
            rng=np.random.default_rng(seed),
        )
    ci = result.confidence_interval
    return float(ci.low), float(ci.high)


def _as_features(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise DataError(f"{name}: expected an (N, D) feature array, got shape {features.shape}")
    if features.shape[0] < 2:
        raise DataError(f"{name}: need at least 2 samples for a covariance, got {features.shape[0]}")
    if not np.isfinite(features).all():
        raise DataError(f"{name}: features contain NaN or inf")
    return features
