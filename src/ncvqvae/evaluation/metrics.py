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
- :func:`kid` (with :func:`mmd2_unbiased`, :func:`polynomial_kernel`): the kernel inception distance,
  the unbiased MMD² with the cubic polynomial kernel ``k(x, y) = (xᵀy / D + 1)³`` averaged over random
  subsets (Bińkowski et al. 2018), the maths of ``torchmetrics.image.kid``; :func:`class_kid` per class.
- :func:`fid_from_samples`: the same Fréchet distance as :func:`fid` computed through the N_r × N_f
  cross-Gram matrix, exact and cheap when the feature dimension exceeds the sample counts (MiniRocket's
  ~10 000 features).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass

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


def fid_from_samples(feat_real: np.ndarray, feat_fake: np.ndarray) -> float:
    """The Fréchet distance of :func:`fid`, computed without D × D matrices.

    With centred feature matrices A_r (N_r, D) and A_f (N_f, D), the eigenvalues of Σ_r Σ_f are the
    squared singular values of A_r A_fᵀ / sqrt((N_r − 1)(N_f − 1)), so
    ``Tr((Σ_r Σ_f)^{1/2}) = ‖A_r A_fᵀ‖_* / sqrt((N_r − 1)(N_f − 1))`` (nuclear norm) exactly. The cost is
    one N_r × N_f SVD instead of a D × D ``sqrtm``: the way to score ~10 000-dimensional MiniRocket
    features on a few hundred series. Equal to :func:`fid` up to rounding.

    Args:
        feat_real: (N_r, D) features of the real series.
        feat_fake: (N_f, D) features of the generated series.

    Returns:
        The Fréchet distance (float, ≥ 0).
    """
    feat_real = _as_features(feat_real, "feat_real")
    feat_fake = _as_features(feat_fake, "feat_fake")
    if feat_real.shape[1] != feat_fake.shape[1]:
        raise DataError(
            f"fid_from_samples: feature dimensions differ ({feat_real.shape[1]} vs {feat_fake.shape[1]})"
        )
    mu_r, mu_f = feat_real.mean(axis=0), feat_fake.mean(axis=0)
    a_r, a_f = feat_real - mu_r, feat_fake - mu_f  # (N_r, D), (N_f, D)
    n_r, n_f = len(feat_real), len(feat_fake)
    with threadpool_limits(**ONE_BLAS_THREAD):
        nuclear = scipy.linalg.svdvals(a_r @ a_f.T).sum()  # (N_r, N_f) cross-Gram matrix
    trace_r = float((a_r * a_r).sum()) / (n_r - 1)
    trace_f = float((a_f * a_f).sum()) / (n_f - 1)
    diff = mu_r - mu_f
    value = float(diff @ diff + trace_r + trace_f - 2.0 * nuclear / np.sqrt((n_r - 1) * (n_f - 1)))
    return max(value, 0.0)


# --------------------------------------------------------------------------------------------------
# KID: unbiased MMD² with the cubic polynomial kernel, over subsets
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KIDResult:
    """A kernel inception distance and its spread over subsets.

    Attributes:
        mean: KID, the mean of the per-subset unbiased MMD² estimates (itself unbiased; can be < 0).
        std: their population standard deviation (as torchmetrics reports it).
        ci95: the 2.5 and 97.5 percentiles of the per-subset estimates: an interval for an estimate
            from ``subset_size`` series per side, so wider than that of the mean over subsets.
        subsets: number of subsets.
        subset_size: series drawn per side and subset (without replacement).
    """

    mean: float
    std: float
    ci95: tuple[float, float]
    subsets: int
    subset_size: int


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, *, degree: int = 3, gamma: float | None = None, coef: float = 1.0
) -> np.ndarray:
    """The polynomial kernel ``(γ xᵀy + c)^d`` in float64, γ = 1/D by default (the KID kernel).

    Args:
        x: (N, D); y: (M, D).

    Returns:
        (N, M) kernel matrix.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * gamma + coef) ** degree


def mmd2_unbiased(
    x: np.ndarray, y: np.ndarray, *, degree: int = 3, gamma: float | None = None, coef: float = 1.0
) -> float:
    """The unbiased estimate of MMD² between two samples with the polynomial kernel.

    ``MMD²_u = Σ_{i≠j} k(x_i, x_j) / (m(m−1)) + Σ_{i≠j} k(y_i, y_j) / (n(n−1))
    − 2 Σ_{i,j} k(x_i, y_j) / (mn)``
    (Gretton et al. 2012, Eq. 3); for m = n it is ``torchmetrics.image.kid.poly_mmd``. Its expectation
    is 0 when x and y come from the same distribution, so small samples can give slightly negative
    values.

    Args:
        x: (m, D), m ≥ 2; y: (n, D), n ≥ 2.

    Returns:
        MMD²_u (float).
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        raise DataError(f"mmd2_unbiased: need at least 2 samples per side, got {m} and {n}")
    k_xx = polynomial_kernel(x, x, degree=degree, gamma=gamma, coef=coef)
    k_yy = polynomial_kernel(y, y, degree=degree, gamma=gamma, coef=coef)
    k_xy = polynomial_kernel(x, y, degree=degree, gamma=gamma, coef=coef)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.sum() / (m * n))


def kid_subset_size(n_real: int, n_fake: int, requested: int = 1000) -> int | None:
    """The subset size the evaluation uses: ``requested``, at most half the smaller set, at least 2.

    Half-sampling keeps the subsets different from each other (subsets of the whole set would all be
    the same set when the sizes are equal, and the interval would collapse to a point). ``None`` when
    a side has fewer than 2 series.
    """
    if min(n_real, n_fake) < 2:
        return None
    return max(2, min(int(requested), n_real // 2, n_fake // 2))


def kid(
    feat_real: np.ndarray,
    feat_fake: np.ndarray,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
) -> KIDResult:
    """Kernel inception distance (Bińkowski et al. 2018), the maths of torchmetrics' KID.

    For each of ``subsets`` rounds, ``subset_size`` real and ``subset_size`` fake rows are drawn
    without replacement (independently, from a numpy ``Generator`` seeded with ``seed``) and
    :func:`mmd2_unbiased` is computed with the cubic kernel ``(xᵀy / D + 1)³``; KID is the mean over the
    subsets. Float64 throughout.

    Args:
        feat_real: (N_r, D) features of the real series.
        feat_fake: (N_f, D) features of the generated series.
        subsets: number of subsets (≥ 1).
        subset_size: rows per side and subset, 2 ≤ subset_size ≤ min(N_r, N_f) (see
            :func:`kid_subset_size` for the evaluation's choice).
        degree, gamma, coef: the polynomial kernel (γ = 1/D when ``None``).
        seed: seed of the subset draws.

    Returns:
        :class:`KIDResult` (mean, std, 95% subset interval).
    """
    feat_real = _as_features(feat_real, "feat_real")
    feat_fake = _as_features(feat_fake, "feat_fake")
    if feat_real.shape[1] != feat_fake.shape[1]:
        raise DataError(f"kid: feature dimensions differ ({feat_real.shape[1]} vs {feat_fake.shape[1]})")
    if subsets < 1:
        raise ValueError(f"kid: subsets must be ≥ 1, got {subsets}")
    if not 2 <= subset_size <= min(len(feat_real), len(feat_fake)):
        raise DataError(
            f"kid: subset_size must lie in 2..{min(len(feat_real), len(feat_fake))} (the smaller set), "
            f"got {subset_size}"
        )
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    with threadpool_limits(**ONE_BLAS_THREAD):
        for s in range(subsets):
            real = feat_real[rng.permutation(len(feat_real))[:subset_size]]
            fake = feat_fake[rng.permutation(len(feat_fake))[:subset_size]]
            values[s] = mmd2_unbiased(real, fake, degree=degree, gamma=gamma, coef=coef)
    lo, hi = np.percentile(values, [2.5, 97.5])
    return KIDResult(
        mean=float(values.mean()),
        std=float(values.std()),
        ci95=(float(lo), float(hi)),
        subsets=int(subsets),
        subset_size=int(subset_size),
    )


def class_kid(
    feat_real: np.ndarray,
    y_real: np.ndarray,
    feat_fake: np.ndarray,
    y_fake: np.ndarray,
    *,
    n_classes: int | None = None,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> dict[int, KIDResult | None]:
    """KID per class: real series of class k against samples generated for class k.

    Each class uses ``kid_subset_size(n_real_k, n_fake_k, subset_size)`` and the seed ``seed + k``.

    Returns:
        ``{k: KIDResult}``; ``None`` for a class with fewer than 2 series on a side.
    """
    y_real, y_fake = np.asarray(y_real).ravel(), np.asarray(y_fake).ravel()
    if n_classes is None:
        n_classes = int(max(y_real.max(initial=-1), y_fake.max(initial=-1))) + 1
    out: dict[int, KIDResult | None] = {}
    for k in range(n_classes):
        real_k, fake_k = feat_real[y_real == k], feat_fake[y_fake == k]
        size = kid_subset_size(len(real_k), len(fake_k), subset_size)
        out[k] = (
            None if size is None else kid(real_k, fake_k, subsets=subsets, subset_size=size, seed=seed + k)
        )
    return out


def _as_features(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise DataError(f"{name}: expected an (N, D) feature array, got shape {features.shape}")
    if features.shape[0] < 2:
        raise DataError(f"{name}: need at least 2 samples for a covariance, got {features.shape[0]}")
    if not np.isfinite(features).all():
        raise DataError(f"{name}: features contain NaN or inf")
    return features
