"""Nearest-neighbour metrics as pure functions of features (or flattened series): PRDC and memorisation.

- :func:`prdc`: precision, recall, density and coverage of Naeem et al. (2020, "Reliable fidelity and
  diversity metrics for generative models"), k-NN balls around every sample (k = 5): precision and
  density measure fidelity (do generated samples lie on the real manifold?), recall and coverage
  diversity (is every region of the real data reached?). Collapse onto a few modes shows as high
  precision with low recall and coverage. The maths of the authors' ``prdc`` package, in float64.
- :func:`memorisation`: for each generated series, the distance to its nearest training series,
  compared with the same distance for the real test series (which the model never saw): the share of
  generated series closer to the training set than the ``quantile`` (5%) of test-to-train distances,
  and the median ratio. A generator that copies its training set scores a share near 1 and a ratio near
  0, and is flagged.
- :func:`znormalise_series`: per-series, per-channel z-normalisation, flattened, the series space of the
  memorisation check.

Distances are Euclidean, computed in float64 in chunks (``‖a‖² + ‖b‖² − 2aᵀb``, clamped at 0), so that no
N × M matrix larger than :data:`CHUNK` rows is held at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch
from threadpoolctl import threadpool_limits

from ncvqvae.errors import DataError
from ncvqvae.evaluation.metrics import ONE_BLAS_THREAD

CHUNK = 2048  # query rows per distance block: 2048 × 10 000 float64 = 160 MB at most


def euclidean_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Euclidean distances in float64.

    Args:
        a: (N, D); b: (M, D).

    Returns:
        (N, M) distances ≥ 0.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    sq = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return np.sqrt(np.maximum(sq, 0.0))


def kth_neighbour_distances(features: np.ndarray, k: int) -> np.ndarray:
    """Distance of every row to its k-th nearest other row (the radius of its k-NN ball).

    As ``prdc.compute_nearest_neighbour_distances``: the (k+1)-th smallest distance in the row's own
    distance row, its zero self-distance included.

    Args:
        features: (N, D), N > k.
        k: the neighbour rank (≥ 1).

    Returns:
        (N,) radii.
    """
    features = _as_rows(features, "features")
    if not 1 <= k < len(features):
        raise DataError(f"kth_neighbour_distances: need 1 ≤ k < N = {len(features)}, got k = {k}")
    radii = np.empty(len(features))
    with threadpool_limits(**ONE_BLAS_THREAD):
        for start in range(0, len(features), CHUNK):
            d = euclidean_distances(features[start : start + CHUNK], features)
            radii[start : start + CHUNK] = np.partition(d, k, axis=1)[:, k]
    return radii


def nearest_distances(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Distance from each query row to its nearest reference row.

    Args:
        queries: (N, D); reference: (M, D), M ≥ 1.

    Returns:
        (N,) distances.
    """
    queries, reference = _as_rows(queries, "queries"), _as_rows(reference, "reference")
    if queries.shape[1] != reference.shape[1]:
        raise DataError(f"nearest_distances: dimensions differ ({queries.shape[1]} vs {reference.shape[1]})")
    out = np.empty(len(queries))
    with threadpool_limits(**ONE_BLAS_THREAD):
        for start in range(0, len(queries), CHUNK):
            out[start : start + CHUNK] = euclidean_distances(queries[start : start + CHUNK], reference).min(1)
    return out


# --------------------------------------------------------------------------------------------------
# Precision, recall, density, coverage
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PRDC:
    """Precision, recall, density and coverage (Naeem et al. 2020) with the k they used.

    Attributes:
        precision: share of generated samples inside some real sample's k-NN ball (fidelity).
        recall: share of real samples inside some generated sample's k-NN ball (diversity).
        density: mean number of real k-NN balls holding a generated sample, divided by k (≈ 1 when the
            two sets come from one distribution; above 1 for samples packed where the real data is dense).
        coverage: share of real samples whose k-NN ball holds at least one generated sample.
        k: the neighbour rank.
    """

    precision: float
    recall: float
    density: float
    coverage: float
    k: int

    def as_dict(self) -> dict[str, float | int]:
        """The four numbers and k, JSON-able."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "density": self.density,
            "coverage": self.coverage,
            "k": self.k,
        }


def prdc(feat_real: np.ndarray, feat_fake: np.ndarray, *, k: int = 5) -> PRDC:
    """Precision, recall, density and coverage of a generated set against a real one (Naeem et al. 2020).

    With ``r_i`` the distance of real sample i to its k-th nearest real neighbour and ``f_j`` the same
    among the generated samples (strict inequalities, as in the authors' ``prdc`` package):

    - precision = mean_j 1[∃ i: d(x_i, y_j) < r_i]
    - recall = mean_i 1[∃ j: d(x_i, y_j) < f_j]
    - density = (1/k) mean_j Σ_i 1[d(x_i, y_j) < r_i]
    - coverage = mean_i 1[min_j d(x_i, y_j) < r_i]

    Args:
        feat_real: (N_r, D) real features, N_r > k.
        feat_fake: (N_f, D) generated features, N_f > k.
        k: the neighbour rank (5 in the paper).

    Returns:
        :class:`PRDC`.
    """
    feat_real, feat_fake = _as_rows(feat_real, "feat_real"), _as_rows(feat_fake, "feat_fake")
    if feat_real.shape[1] != feat_fake.shape[1]:
        raise DataError(f"prdc: feature dimensions differ ({feat_real.shape[1]} vs {feat_fake.shape[1]})")
    r_real = kth_neighbour_distances(feat_real, k)  # (N_r,)
    r_fake = kth_neighbour_distances(feat_fake, k)  # (N_f,)
    inside_real = np.zeros(len(feat_fake), dtype=np.int64)  # per fake: real balls holding it
    recalled = np.zeros(len(feat_real), dtype=bool)  # per real: inside some fake ball
    nearest_fake = np.full(len(feat_real), np.inf)  # per real: distance to the nearest fake
    with threadpool_limits(**ONE_BLAS_THREAD):
        for start in range(0, len(feat_fake), CHUNK):
            d = euclidean_distances(feat_real, feat_fake[start : start + CHUNK])  # (N_r, chunk)
            inside_real[start : start + CHUNK] = (d < r_real[:, None]).sum(axis=0)
            recalled |= (d < r_fake[None, start : start + CHUNK]).any(axis=1)
            nearest_fake = np.minimum(nearest_fake, d.min(axis=1))
    return PRDC(
        precision=float((inside_real > 0).mean()),
        recall=float(recalled.mean()),
        density=float(inside_real.mean() / k),
        coverage=float((nearest_fake < r_real).mean()),
        k=int(k),
    )


def class_prdc(
    feat_real: np.ndarray,
    y_real: np.ndarray,
    feat_fake: np.ndarray,
    y_fake: np.ndarray,
    *,
    n_classes: int | None = None,
    k: int = 5,
) -> dict[int, PRDC | None]:
    """:func:`prdc` per class: real series of class k against samples generated for class k.

    Returns:
        ``{class: PRDC}``; ``None`` for a class with at most ``k`` series on a side.
    """
    y_real, y_fake = np.asarray(y_real).ravel(), np.asarray(y_fake).ravel()
    if n_classes is None:
        n_classes = int(max(y_real.max(initial=-1), y_fake.max(initial=-1))) + 1
    out: dict[int, PRDC | None] = {}
    for c in range(n_classes):
        real_c, fake_c = feat_real[y_real == c], feat_fake[y_fake == c]
        out[c] = prdc(real_c, fake_c, k=k) if min(len(real_c), len(fake_c)) > k else None
    return out


# --------------------------------------------------------------------------------------------------
# Memorisation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Memorisation:
    """How much closer generated series lie to the training set than held-out real series do.

    Attributes:
        fraction: share of generated series whose nearest-training distance is at most ``threshold``.
        expected: the same share for the real test series (``quantile``, or more with ties): what a
            generator that draws new series from the data distribution scores.
        threshold: the ``quantile`` of the test series' nearest-training distances.
        median_ratio: median nearest-training distance of the generated series over that of the test
            series (≈ 1 for new series, → 0 for copies).
        p_value: one-sided binomial test of ``fraction > expected`` over the generated series.
        flagged: ``fraction > 2 · expected`` and ``p_value < alpha``: the generator copies.
        quantile, alpha: the settings.
        n_generated, n_test, n_train: set sizes.
    """

    fraction: float
    expected: float
    threshold: float
    median_ratio: float
    p_value: float
    flagged: bool
    quantile: float
    alpha: float
    n_generated: int
    n_test: int
    n_train: int

    def as_dict(self) -> dict[str, float | int | bool]:
        """Every field, JSON-able."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def memorisation(
    train: np.ndarray,
    test: np.ndarray,
    generated: np.ndarray,
    *,
    quantile: float = 0.05,
    alpha: float = 0.01,
) -> Memorisation:
    """Flag a generator that reproduces its training set (nearest-training-series distances).

    For each real test series and each generated series, the Euclidean distance to its nearest training
    series. With ``τ`` the ``quantile`` of the test distances, the generated series at distance ≤ τ are
    counted; a generator that draws new series from the data distribution has about the test series'
    own share (``quantile``), a copying one nearly all. It is flagged when its share is more than twice
    the test share and a one-sided binomial test rejects "no more than the test share" at ``alpha``.

    Args:
        train: (N_tr, D) training features (or flattened series; see :func:`znormalise_series`).
        test: (N_te, D) real test rows in the same space, N_te ≥ 2.
        generated: (N_g, D) generated rows in the same space.
        quantile: the test-distance quantile of the threshold (0.05).
        alpha: level of the binomial test (0.01).

    Returns:
        :class:`Memorisation`.
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"memorisation: quantile must lie in (0, 1), got {quantile}")
    train, test, generated = (
        _as_rows(a, n) for a, n in ((train, "train"), (test, "test"), (generated, "gen"))
    )
    if len(test) < 2:
        raise DataError(f"memorisation: need at least 2 test rows, got {len(test)}")
    d_test = nearest_distances(test, train)  # (N_te,)
    d_gen = nearest_distances(generated, train)  # (N_g,)
    threshold = float(np.quantile(d_test, quantile))
    expected = float(np.mean(d_test <= threshold))
    hits = int(np.sum(d_gen <= threshold))
    fraction = hits / len(d_gen)
    p_value = float(scipy.stats.binomtest(hits, len(d_gen), expected, alternative="greater").pvalue)
    median_test = float(np.median(d_test))
    ratio = float(np.median(d_gen) / median_test) if median_test > 0 else float("nan")
    return Memorisation(
        fraction=float(fraction),
        expected=expected,
        threshold=threshold,
        median_ratio=ratio,
        p_value=p_value,
        flagged=bool(fraction > 2.0 * expected and p_value < alpha),
        quantile=float(quantile),
        alpha=float(alpha),
        n_generated=len(d_gen),
        n_test=len(d_test),
        n_train=len(train),
    )


def znormalise_series(x: np.ndarray | torch.Tensor, eps: float = 1e-8) -> np.ndarray:
    """Z-normalise every channel of every series over time, then flatten: the series space of the check.

    Per-series normalisation removes offset and scale, so a copy that the generator shifted or rescaled
    still counts as a copy. A constant channel becomes zeros.

    Args:
        x: (N, C, L) series.
        eps: the smallest standard deviation divided by.

    Returns:
        (N, C·L) float64.
    """
    x = np.asarray(torch.as_tensor(x).detach().cpu(), dtype=np.float64)
    if x.ndim != 3:
        raise DataError(f"znormalise_series: expected (N, C, L) series, got shape {x.shape}")
    mean = x.mean(axis=2, keepdims=True)
    std = x.std(axis=2, keepdims=True)
    return ((x - mean) / np.maximum(std, eps)).reshape(len(x), -1)


def _as_rows(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or len(a) == 0:
        raise DataError(f"{name}: expected a non-empty (N, D) array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{name}: contains NaN or inf")
    return a
