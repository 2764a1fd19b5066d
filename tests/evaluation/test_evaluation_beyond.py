"""The metrics beyond the thesis (issue 17): KID, PRDC, memorisation, the MiniRocket FID, utility.

Checked against the well-kept implementations where one exists (torchmetrics' KID maths, the PRDC
authors' ``prdc`` package) and against closed forms and properties: identical sets give precision =
recall = 1 and KID ≈ 0, shifted sets a KID whose interval excludes 0, a copying generator is flagged.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from ncvqvae.errors import ConfigError, DataError
from ncvqvae.evaluation.metrics import (
    class_kid,
    fid,
    fid_from_samples,
    kid,
    kid_subset_size,
    mmd2_unbiased,
    polynomial_kernel,
)
from ncvqvae.evaluation.neighbours import (
    class_prdc,
    euclidean_distances,
    kth_neighbour_distances,
    memorisation,
    nearest_distances,
    prdc,
    znormalise_series,
)


def _gauss(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


# --------------------------------------------------------------------------------------------------
# KID
# --------------------------------------------------------------------------------------------------


def test_mmd2_unbiased_matches_torchmetrics_poly_mmd() -> None:
    kid_module = pytest.importorskip("torchmetrics.image.kid")
    x, y = _gauss(40, 16, 0), _gauss(40, 16, 1, shift=0.2)
    ours = mmd2_unbiased(x, y)
    ref = float(kid_module.poly_mmd(torch.from_numpy(x), torch.from_numpy(y)))
    assert ours == pytest.approx(ref, rel=1e-10, abs=1e-12)


def test_mmd2_unbiased_with_unequal_sizes_is_the_u_statistic_by_hand() -> None:
    x, y = _gauss(7, 3, 2), _gauss(5, 3, 3)
    k = lambda a, b: (a @ b / 3 + 1.0) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
    assert mmd2_unbiased(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)
    assert polynomial_kernel(x, y).shape == (7, 5)


def test_kid_equals_torchmetrics_kernel_inception_distance_on_whole_sets() -> None:
    """With subset_size = N every subset is the whole set, so the subset draws cannot differ."""
    kid_module = pytest.importorskip("torchmetrics.image.kid")
    x, y = _gauss(30, 8, 4), _gauss(30, 8, 5, shift=0.5)
    metric = kid_module.KernelInceptionDistance(feature=torch.nn.Identity(), subsets=3, subset_size=30)
    metric.update(torch.from_numpy(x), real=True)
    metric.update(torch.from_numpy(y), real=False)
    ref_mean, ref_std = (float(v) for v in metric.compute())
    ours = kid(x, y, subsets=3, subset_size=30)
    assert ours.mean == pytest.approx(ref_mean, rel=1e-9)
    assert ours.std == pytest.approx(ref_std, abs=1e-9)


def test_kid_of_a_set_with_itself_is_the_closed_form_and_vanishes_with_n() -> None:
    """Same rows on both sides: MMD²_u(x, x) = −2 (mean k(x_i, x_i) − mean_{i≠j} k(x_i, x_j)) / n."""
    values = []
    for n in (50, 200, 800):
        x = _gauss(n, 16, 6)
        gram = polynomial_kernel(x, x)
        off = (gram.sum() - np.trace(gram)) / (n * (n - 1))
        closed = -2.0 * (np.trace(gram) / n - off) / n
        result = kid(x, x, subsets=2, subset_size=n)
        assert result.mean == pytest.approx(closed, rel=1e-9) and result.std == pytest.approx(0.0, abs=1e-12)
        values.append(abs(result.mean))
    assert values[0] > values[1] > values[2] and values[2] < 0.02


def test_kid_of_two_draws_from_one_distribution_is_near_zero_and_its_interval_holds_zero() -> None:
    result = kid(_gauss(400, 16, 6), _gauss(400, 16, 7), subsets=50, subset_size=200, seed=0)
    assert abs(result.mean) < 0.01 and result.ci95[0] <= 0.0 <= result.ci95[1]


def test_kid_of_shifted_sets_is_positive_and_its_interval_excludes_zero() -> None:
    result = kid(_gauss(300, 16, 8), _gauss(300, 16, 9, shift=0.5), subsets=50, subset_size=150, seed=1)
    assert result.mean > 0.1 and result.ci95[0] > 0.0 and result.ci95[0] <= result.mean <= result.ci95[1]
    assert result.subsets == 50 and result.subset_size == 150


def test_kid_is_seeded_and_checks_its_subset_size() -> None:
    x, y = _gauss(50, 4, 10), _gauss(60, 4, 11)
    assert kid(x, y, subsets=5, subset_size=20, seed=3) == kid(x, y, subsets=5, subset_size=20, seed=3)
    assert kid(x, y, subsets=5, subset_size=20, seed=3) != kid(x, y, subsets=5, subset_size=20, seed=4)
    with pytest.raises(DataError, match="subset_size"):
        kid(x, y, subsets=5, subset_size=51)
    assert kid_subset_size(50, 60, 1000) == 25 and kid_subset_size(5000, 6000) == 1000
    assert kid_subset_size(3, 60) == 2 and kid_subset_size(1, 60) is None


def test_class_kid_skips_classes_without_two_series() -> None:
    x, y = _gauss(40, 4, 12), _gauss(40, 4, 13)
    labels = np.repeat([0, 1], 20)
    labels_fake = np.r_[np.zeros(39, dtype=int), 2]
    out = class_kid(x, labels, y, labels_fake, n_classes=3, subsets=4, subset_size=10)
    assert out[0] is not None and out[0].subset_size == 10 and out[1] is None and out[2] is None


# --------------------------------------------------------------------------------------------------
# Fréchet distance through the cross-Gram matrix
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n_real", "n_fake", "dim"), [(80, 60, 6), (12, 9, 40)])
def test_fid_from_samples_equals_fid(n_real: int, n_fake: int, dim: int) -> None:
    x, y = _gauss(n_real, dim, 14), _gauss(n_fake, dim, 15, shift=0.3)
    assert fid_from_samples(x, y) == pytest.approx(fid(x, y), rel=1e-5)
    assert fid_from_samples(x, x) == pytest.approx(0.0, abs=1e-8)


# --------------------------------------------------------------------------------------------------
# Precision, recall, density, coverage
# --------------------------------------------------------------------------------------------------


def test_distances_and_neighbour_radii_by_hand() -> None:
    a = np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0], [0.0, 1.0]])
    d = euclidean_distances(a, a)
    assert d[0, 1] == pytest.approx(5.0) and d[1, 2] == pytest.approx(5.0) and np.allclose(np.diag(d), 0)
    assert kth_neighbour_distances(a, 1) == pytest.approx([1.0, np.sqrt(18.0), 5.0, 1.0])
    assert nearest_distances(np.array([[3.0, 5.0]]), a) == pytest.approx([1.0])


def test_prdc_of_identical_sets_is_one_everywhere_but_density_near_one() -> None:
    x = _gauss(200, 8, 16)
    result = prdc(x, x.copy(), k=5)
    assert result.precision == 1.0 and result.recall == 1.0 and result.coverage == 1.0
    assert 0.8 < result.density < 1.5 and result.k == 5


def test_prdc_matches_the_authors_package(capsys: pytest.CaptureFixture[str]) -> None:
    reference = pytest.importorskip("prdc")
    x, y = _gauss(120, 10, 17), _gauss(90, 10, 18, shift=0.4)
    ref = reference.compute_prdc(real_features=x, fake_features=y, nearest_k=5)
    capsys.readouterr()  # the package prints the set sizes
    ours = prdc(x, y, k=5).as_dict()
    for name in ("precision", "recall", "density", "coverage"):
        assert ours[name] == pytest.approx(float(ref[name]), abs=1e-12), name


def test_prdc_shows_mode_collapse_as_high_precision_and_low_recall() -> None:
    """Real data: two well-separated clusters; the generator reproduces only one of them."""
    real = np.r_[_gauss(100, 4, 19), _gauss(100, 4, 20, shift=10.0)]
    collapsed = _gauss(100, 4, 21)
    result = prdc(real, collapsed, k=5)
    assert result.precision > 0.9 and result.recall <= 0.55 and result.coverage <= 0.55


def test_class_prdc_needs_more_than_k_series_per_side() -> None:
    x = _gauss(30, 3, 22)
    labels = np.r_[np.zeros(25, dtype=int), np.ones(5, dtype=int)]
    out = class_prdc(x, labels, x, labels, k=5)
    assert out[0] is not None and out[0].precision == 1.0 and out[1] is None


# --------------------------------------------------------------------------------------------------
# Memorisation
# --------------------------------------------------------------------------------------------------


def test_a_copying_generator_is_flagged() -> None:
    train, test = _gauss(200, 12, 23), _gauss(100, 12, 24)
    copies = train[np.random.default_rng(0).integers(0, 200, size=150)] + 1e-6
    result = memorisation(train, test, copies)
    assert result.flagged and result.fraction == 1.0 and result.median_ratio < 1e-3
    assert result.p_value < 1e-10 and result.n_generated == 150 and result.n_train == 200


def test_a_generator_of_new_series_is_not_flagged() -> None:
    train, test, new = _gauss(200, 12, 25), _gauss(200, 12, 26), _gauss(300, 12, 27)
    result = memorisation(train, test, new)
    assert not result.flagged and result.fraction < 0.1 and 0.9 < result.median_ratio < 1.1
    assert result.expected == pytest.approx(0.05, abs=0.01) and result.quantile == 0.05


def test_memorisation_on_z_normalised_series_sees_through_offset_and_scale() -> None:
    gen = torch.Generator().manual_seed(0)
    train, test = torch.randn(60, 2, 32, generator=gen), torch.randn(40, 2, 32, generator=gen)
    rescaled_copies = 3.0 * train[:30] + 1.5
    raw = memorisation(train.flatten(1).numpy(), test.flatten(1).numpy(), rescaled_copies.flatten(1).numpy())
    z = memorisation(znormalise_series(train), znormalise_series(test), znormalise_series(rescaled_copies))
    assert not raw.flagged and z.flagged and z.fraction == 1.0
    flat = znormalise_series(train)
    assert flat.shape == (60, 64) and np.allclose(flat.reshape(60, 2, 32).std(axis=2), 1.0)
    assert np.all(znormalise_series(torch.ones(2, 1, 8)) == 0.0)


# --------------------------------------------------------------------------------------------------
# MiniRocket FID
# --------------------------------------------------------------------------------------------------


def test_minirocket_without_aeon_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from ncvqvae.evaluation.minirocket import minirocket_features

    monkeypatch.setitem(sys.modules, "aeon", None)  # import aeon now raises ImportError
    with pytest.raises(ConfigError, match=r"ncvqvae\[minirocket\]"):
        minirocket_features(torch.zeros(4, 1, 16), [torch.zeros(4, 1, 16)])


@pytest.mark.slow  # numba compiles MiniRocket on first use (~30 s); skipped without aeon
def test_minirocket_features_are_seeded_and_use_every_channel() -> None:
    pytest.importorskip("aeon")
    from ncvqvae.evaluation.minirocket import minirocket_features

    gen = torch.Generator().manual_seed(1)
    X = torch.randn(20, 2, 40, generator=gen)
    f1, g1 = minirocket_features(X, [X, X.flip(1)], n_kernels=168, seed=0)
    (f2,) = minirocket_features(X, [X], n_kernels=168, seed=0)
    assert f1.shape == (20, 168) and f1.dtype == np.float64 and np.array_equal(f1, f2)
    assert not np.array_equal(f1, g1)  # swapping the channels changes the features
    assert fid_from_samples(f1, f2) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(DataError, match="at least 9"):
        minirocket_features(X[..., :8], [X[..., :8]])


# --------------------------------------------------------------------------------------------------
# Augmentation utility
# --------------------------------------------------------------------------------------------------


def test_augmented_copies_follow_their_sources_and_are_seeded() -> None:
    from ncvqvae.evaluation.utility import augmented_copies

    X = torch.randn(5, 1, 30, generator=torch.Generator().manual_seed(2))
    copies, source = augmented_copies(X, 12, generator=torch.Generator().manual_seed(0))
    again, _ = augmented_copies(X, 12, generator=torch.Generator().manual_seed(0))
    assert copies.shape == (12, 1, 30) and source.tolist() == [i % 5 for i in range(12)]
    assert torch.equal(copies, again) and not torch.allclose(copies, X[source])


def test_augmentation_utility_trains_three_classifiers_deterministically() -> None:
    from ncvqvae.evaluation.utility import augmentation_utility

    gen = torch.Generator().manual_seed(3)
    y = torch.arange(24) % 2
    X = torch.randn(24, 1, 32, generator=gen) + 2.0 * y[:, None, None]
    args = (X[:12], y[:12], X[12:], y[12:], X[:12] + 0.1, y[:12])
    kwargs = {"n_classes": 2, "epochs": 2, "batch_size": 8, "seed": 0}
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        first = augmentation_utility(*args, **kwargs)
        second = augmentation_utility(*args, **kwargs)
    assert first == second and first.n_real == 12 and first.n_extra == 12 and first.epochs == 2
    values = first.as_dict()
    assert all(0.0 <= values[k] <= 1.0 for k in ("real", "real_augmented", "real_synthetic"))
    assert values["gain_synthetic"] == pytest.approx(first.real_synthetic - first.real)
    with pytest.raises(DataError, match="shaped like"):
        augmentation_utility(X[:12], y[:12], X[12:], y[12:], X[:3, :, :16], y[:3], n_classes=2, epochs=1)


def test_augmentation_utility_gives_every_classifier_the_same_step_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``steps`` the three FCNs train for equal optimiser steps, although real + synthetic holds twice
    the series of real alone (at equal epochs it would get twice the steps)."""
    from ncvqvae.evaluation import utility

    seen: list[tuple[int, int | None]] = []
    real_train = utility.train_fcn

    def spy(X: torch.Tensor, y: torch.Tensor, **kwargs: object) -> torch.nn.Module:
        seen.append((len(X), kwargs.get("steps")))
        return real_train(X, y, **kwargs)

    monkeypatch.setattr(utility, "train_fcn", spy)
    y = torch.arange(16) % 2
    X = torch.randn(16, 1, 32, generator=torch.Generator().manual_seed(4)) + y[:, None, None]
    result = utility.augmentation_utility(
        X[:8], y[:8], X[8:], y[8:], X[:8] + 0.1, y[:8], n_classes=2, epochs=5, batch_size=4, steps=3
    )
    assert seen == [(8, 3), (16, 3), (16, 3)]
    assert result.as_dict()["steps"] == 3 and result.epochs == 5
