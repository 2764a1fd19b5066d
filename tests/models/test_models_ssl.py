"""SSL losses against the papers' formulas (written out independently in numpy float64), their
properties, IterNorm whitening, the pooled head and the method registry."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from ncvqvae.errors import ConfigError
from ncvqvae.models.ssl import (
    SSL_METHODS,
    BarlowTwinsLoss,
    IterNorm,
    SSLHead,
    VIbCRegLoss,
    get_ssl_method,
    off_diagonal_sq_sum,
)


def barlow_twins_paper(za: np.ndarray, zb: np.ndarray, lam: float) -> float:
    """Zbontar et al. 2021, eq. 1 (cross-correlation in cosine form over the batch), divided by D."""
    za = za - za.mean(0)
    zb = zb - zb.mean(0)
    dim = za.shape[1]
    total = 0.0
    for i in range(dim):
        for j in range(dim):
            c_ij = (za[:, i] * zb[:, j]).sum() / (
                np.sqrt((za[:, i] ** 2).sum()) * np.sqrt((zb[:, j] ** 2).sum())
            )
            total += (1 - c_ij) ** 2 if i == j else lam * c_ij**2
    return total / dim


def vibcreg_paper(z1: np.ndarray, z2: np.ndarray, lam: float, mu: float, nu: float) -> float:
    """Lee & Aune 2021: invariance + variance (hinge on the std) + normalised-covariance terms."""

    def v(z: np.ndarray) -> float:
        std = np.sqrt(z.var(axis=0, ddof=1) + 1e-4)
        return float(np.mean(np.maximum(0.0, 1.0 - std)))

    def c(z: np.ndarray) -> float:
        zc = z - z.mean(0)
        zn = zc / np.linalg.norm(zc, axis=0, keepdims=True)
        dim = z.shape[1]
        cov = np.einsum("bi,bj->ij", zn, zn)
        return float(sum(cov[i, j] ** 2 for i in range(dim) for j in range(dim) if i != j) / dim**2)

    return lam * float(np.mean((z1 - z2) ** 2)) + mu * (v(z1) + v(z2)) + nu * (c(z1) + c(z2))


def pair(batch: int = 12, dim: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    z1 = torch.randn(batch, dim, generator=gen, dtype=torch.float64) * 2 + 1
    z2 = 0.7 * z1 + 0.5 * torch.randn(batch, dim, generator=gen, dtype=torch.float64)
    return z1, z2


@pytest.mark.parametrize(("batch", "dim"), [(12, 7), (5, 9)])  # B > D and B < D take different code paths
def test_barlow_twins_matches_paper(batch: int, dim: int) -> None:
    z1, z2 = pair(batch, dim)
    got = BarlowTwinsLoss(lambda_=0.005)(z1, z2).item()
    assert got == pytest.approx(barlow_twins_paper(z1.numpy(), z2.numpy(), 0.005), rel=1e-6)
    got = BarlowTwinsLoss(lambda_=0.3)(z1, z2).item()
    assert got == pytest.approx(barlow_twins_paper(z1.numpy(), z2.numpy(), 0.3), rel=1e-6)


@pytest.mark.parametrize(("batch", "dim"), [(12, 7), (5, 9)])
def test_vibcreg_matches_paper(batch: int, dim: int) -> None:
    z1, z2 = pair(batch, dim)
    got = VIbCRegLoss(sim=25, var=25, cov=100)(z1, z2).item()
    assert got == pytest.approx(vibcreg_paper(z1.numpy(), z2.numpy(), 25, 25, 100), rel=1e-6)
    z1s, z2s = z1 * 0.1, z2 * 0.1  # small variance: the hinge term is active
    got = VIbCRegLoss(sim=2, var=3, cov=5)(z1s, z2s).item()
    assert got == pytest.approx(vibcreg_paper(z1s.numpy(), z2s.numpy(), 2, 3, 5), rel=1e-6)


@pytest.mark.parametrize("loss", [BarlowTwinsLoss(), VIbCRegLoss()])
def test_losses_are_symmetric(loss: torch.nn.Module) -> None:
    z1, z2 = pair()
    torch.testing.assert_close(loss(z1, z2), loss(z2, z1))


def test_barlow_twins_is_zero_for_identical_decorrelated_views_and_scale_invariant() -> None:
    gen = torch.Generator().manual_seed(3)
    a = torch.randn(64, 16, generator=gen, dtype=torch.float64)
    q, _ = torch.linalg.qr(a - a.mean(0))  # orthonormal, zero-mean columns
    z = q * 8.0  # population variance 1, uncorrelated features
    assert BarlowTwinsLoss()(z, z).item() == pytest.approx(0.0, abs=1e-12)
    z1, z2 = pair()
    scale = torch.linspace(0.5, 3, z1.shape[1], dtype=torch.float64)
    torch.testing.assert_close(BarlowTwinsLoss()(z1 * scale + 4, z2), BarlowTwinsLoss()(z1, z2))


def test_losses_grow_when_views_disagree() -> None:
    z1, z2 = pair(32, 8)
    noise = torch.randn(32, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    for loss in (BarlowTwinsLoss(), VIbCRegLoss()):
        assert loss(z1, z1 + 0.01 * noise) < loss(z1, z1 + 3 * noise)


def test_off_diagonal_sum_both_paths() -> None:
    for shape in [(6, 10), (10, 6)]:
        a, b = torch.randn(*shape, dtype=torch.float64), torch.randn(*shape, dtype=torch.float64)
        c = a.t() @ b
        expected = c.pow(2).sum() - c.diagonal().pow(2).sum()
        torch.testing.assert_close(off_diagonal_sq_sum(a, b, c.diagonal()), expected)


def correlated_groups(batch: int, groups: int, size: int, seed: int = 0) -> torch.Tensor:
    """Features correlated within each group (covariance eigenvalues in [1, 4]), independent across."""
    gen = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(groups, size, size, generator=gen, dtype=torch.float64))
    scales = torch.linspace(1.0, 2.0, size, dtype=torch.float64)
    mix = rotation * scales[:, None] @ rotation.transpose(1, 2)  # symmetric, well conditioned
    x = torch.randn(groups, batch, size, generator=gen, dtype=torch.float64) @ mix
    return x.permute(1, 0, 2).reshape(batch, groups * size) * 3 + 1


def test_iternorm_whitens_each_group() -> None:
    x = correlated_groups(batch=2048, groups=3, size=4)
    norm = IterNorm(12, num_groups=3, iterations=10).double().train()
    y = norm(x).detach()
    for g in range(3):
        block = y[:, 4 * g : 4 * g + 4]
        cov = np.cov(block.numpy(), rowvar=False, ddof=0)
        np.testing.assert_allclose(cov, np.eye(4), atol=1e-3)
        np.testing.assert_allclose(block.mean(0).numpy(), 0.0, atol=1e-8)
    # with the default T = 5 the whitening is approximate but close for well-conditioned groups
    y5 = IterNorm(12, num_groups=3).double().train()(x).detach().numpy()
    np.testing.assert_allclose(np.cov(y5[:, :4], rowvar=False, ddof=0), np.eye(4), atol=0.02)


def test_iternorm_groups_are_independent_and_eval_uses_running_stats() -> None:
    x = correlated_groups(batch=256, groups=2, size=4)
    norm = IterNorm(8, num_groups=2, momentum=1.0).double().train()
    y = norm(x)
    x2 = x.clone()
    x2[:, 4:] = x2[:, 4:] * 5 - 2
    torch.testing.assert_close(norm(x2)[:, :4], y[:, :4])
    norm(x)  # running statistics = this batch's (momentum 1)
    torch.testing.assert_close(norm.eval()(x), y)
    with pytest.raises(ConfigError, match="iternorm_groups"):
        IterNorm(10, num_groups=3)


def test_iternorm_gradient_is_finite() -> None:
    x = correlated_groups(batch=64, groups=2, size=4).float().requires_grad_()
    IterNorm(8, num_groups=2)(x).pow(2).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("whiten", [False, True])
def test_head_pair_equals_two_separate_views(whiten: bool) -> None:
    torch.manual_seed(0)
    head = SSLHead(4, 16, whiten=whiten, iternorm_groups=4).train()
    twin = copy.deepcopy(head)
    z1, z2 = torch.randn(6, 4, 2, 3), torch.randn(5, 4, 2, 3)
    p1, p2 = head.forward_pair(z1, z2)
    q1, q2 = twin(z1), twin(z2)
    torch.testing.assert_close(p1, q1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(p2, q2, rtol=1e-5, atol=1e-5)
    for (name, a), (_, b) in zip(head.state_dict().items(), twin.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


def test_head_pooling_and_layers() -> None:
    z = torch.randn(3, 4, 2, 5)
    pooled = SSLHead.pool(z)
    torch.testing.assert_close(pooled[:, :4], z.mean(dim=(2, 3)))
    torch.testing.assert_close(pooled[:, 4:], z.amax(dim=(2, 3)))
    head = SSLHead(64, 4096)
    assert (head.linear1.in_features, head.linear1.out_features) == (128, 4096)
    assert (head.linear3.in_features, head.linear3.out_features) == (4096, 4096)
    assert head.whitening is None
    assert isinstance(SSLHead(64, 4096, whiten=True).whitening, IterNorm)


def test_registry() -> None:
    assert set(SSL_METHODS) >= {"baseline", "barlowtwins", "vibcreg"}
    assert get_ssl_method("baseline") is None
    bt, vib = get_ssl_method("barlowtwins"), get_ssl_method("vibcreg")
    assert (bt.default_weight, bt.whiten) == (1.0, False)
    assert (vib.default_weight, vib.whiten) == (0.01, True)
    params = {"barlow_lambda": 0.1, "vibcreg_sim": 1.0, "vibcreg_var": 2.0, "vibcreg_cov": 3.0}
    assert bt.build_loss(params).lambda_ == 0.1
    assert (vib.build_loss(params).sim, vib.build_loss(params).cov) == (1.0, 3.0)
    with pytest.raises(ConfigError, match="known: baseline"):
        get_ssl_method("vicreg-typo")
