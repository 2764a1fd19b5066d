"""The non-contrastive SSL branch of NC-VQVAE: head, projector, IterNorm, losses and the method registry.

SPEC §3: a latent grid (B, D, H', W') is pooled (global average ‖ global max → 2D = 128 features) and
projected by Linear(128, 4096)–BN–ReLU–Linear(4096, 4096)–BN–ReLU–Linear(4096, 4096); VIbCReg's
projector ends with IterNorm whitening. The losses are small modules taking the two projections:

* :class:`BarlowTwinsLoss` (Zbontar et al. 2021, eq. 1), λ = 0.005, divided by the projection width;
* :class:`VIbCRegLoss` (Lee & Aune 2021), λ = 25 (invariance), μ = 25 (variance), ν = 100
  (normalised covariance).

Both are computed through B × B Gram matrices rather than the D × D cross-correlation / covariance
(D = 4096 ≫ B = 128): ‖AᵀB‖²_F = Σ (AAᵀ) ∘ (BBᵀ), which gives the same value with 32× fewer
operations. The tests check them against the papers' formulas written out directly.

:data:`SSL_METHODS` maps a method name to its loss, default weight and whether IterNorm ends the
projector; adding a method means one loss module and one registry line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from ncvqvae.errors import ConfigError
from ncvqvae.precision import at_least_fp32, full_precision

__all__ = [
    "SSLHead",
    "IterNorm",
    "BarlowTwinsLoss",
    "VIbCRegLoss",
    "SSLMethod",
    "SSL_METHODS",
    "get_ssl_method",
    "off_diagonal_sq_sum",
]


# --------------------------------------------------------------------------------------------------
# IterNorm (Huang et al. 2019, "Iterative Normalization"), as used at the end of VIbCReg's projector
# --------------------------------------------------------------------------------------------------


class IterNorm(nn.Module):
    """Group whitening by Newton's iterations: each group of features gets identity covariance.

    Training mode: per group, Σ = εI + X̄X̄ᵀ/B, Σ_N = Σ / tr(Σ), P₀ = I,
    P_{k+1} = 1.5 P_k − 0.5 P_k³ Σ_N (k < T), W = P_T / sqrt(tr(Σ)) ≈ Σ^{-1/2}, output W X̄ (then an
    affine map). Running mean and whitening matrix are updated with ``momentum``; eval mode uses them.
    Hand-written (no library provides it); gradients come from autograd through the T iterations.

    Args:
        num_features: feature width F (4096).
        num_groups: groups of ``F / num_groups`` features whitened separately (64 groups of 64).
        iterations: Newton iterations T.
        eps: ridge added to the covariance.
        momentum: running-statistics momentum.
        affine: learn a per-feature scale and shift.
    """

    def __init__(
        self,
        num_features: int,
        *,
        num_groups: int = 64,
        iterations: int = 5,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__()
        if num_groups < 1 or num_features % num_groups:
            raise ConfigError(
                f"stage1.iternorm_groups = {num_groups} must divide the projector width {num_features}"
            )
        self.num_features = num_features
        self.num_groups = num_groups
        self.group_size = num_features // num_groups
        self.iterations = iterations
        self.eps = eps
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        eye = torch.eye(self.group_size)
        self.register_buffer("running_mean", torch.zeros(num_groups, self.group_size, 1))
        self.register_buffer("running_wm", eye.expand(num_groups, -1, -1).clone())

    def whitening_matrix(self, xc: torch.Tensor) -> torch.Tensor:
        """W ≈ Σ^{-1/2} per group for centred features xc (G, c, B) → (G, c, c)."""
        groups, size, batch = xc.shape
        eye = torch.eye(size, dtype=xc.dtype, device=xc.device).expand(groups, size, size)
        sigma = torch.baddbmm(eye, xc, xc.transpose(1, 2), beta=self.eps, alpha=1.0 / batch)
        r_trace = sigma.diagonal(dim1=1, dim2=2).sum(-1)[:, None, None].reciprocal()  # (G, 1, 1)
        sigma_n = sigma * r_trace
        p = eye
        for _ in range(self.iterations):
            p = torch.baddbmm(p, torch.linalg.matrix_power(p, 3), sigma_n, beta=1.5, alpha=-0.5)
        return p * r_trace.sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, F) → whitened (B, F), in float32 whatever the autocast state."""
        # fp32 always: the Newton iterations raise Σ_N to the third power T times, and the running
        # statistics are fp32 buffers; bf16's 8-bit mantissa would not whiten (precision.py)
        with full_precision(x.device.type):
            return self._whiten(at_least_fp32(x))

    def _whiten(self, x: torch.Tensor) -> torch.Tensor:
        xg = rearrange(x, "b (g c) -> g c b", g=self.num_groups)
        if self.training:
            mean = xg.mean(-1, keepdim=True)  # (G, c, 1)
            xc = xg - mean
            wm = self.whitening_matrix(xc)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_wm.lerp_(wm.detach(), self.momentum)
        else:
            xc = xg - self.running_mean
            wm = self.running_wm
        out = rearrange(torch.bmm(wm, xc), "g c b -> b (g c)")
        if self.weight is not None:
            out = torch.addcmul(self.bias, out, self.weight)
        return out

    def extra_repr(self) -> str:
        return f"{self.num_features}, groups={self.num_groups}, T={self.iterations}, eps={self.eps}"


# --------------------------------------------------------------------------------------------------
# Head: pooling + projector
# --------------------------------------------------------------------------------------------------


class SSLHead(nn.Module):
    """Global avg ‖ max pooling of a latent grid, then the 3-layer projector (and IterNorm for VIbCReg).

    BatchNorm (and IterNorm) statistics are per view, as in the reference where each view went
    through the head on its own. :meth:`forward_pair` gives exactly that while running both views'
    Linear layers as one stacked matrix product (faster on CPU: one 256-row product instead of two
    128-row ones).

    Args:
        in_dim: latent width D (the pooled feature has 2D entries).
        projector_dim: width of the projector's hidden and output layers (4096).
        whiten: end the projector with :class:`IterNorm` (VIbCReg).
        iternorm_groups: IterNorm groups.
        iternorm_iters: IterNorm Newton iterations.
    """

    def __init__(
        self,
        in_dim: int = 64,
        projector_dim: int = 4096,
        *,
        whiten: bool = False,
        iternorm_groups: int = 64,
        iternorm_iters: int = 5,
    ) -> None:
        super().__init__()
        self.linear1 = nn.Linear(2 * in_dim, projector_dim)
        self.bn1 = nn.BatchNorm1d(projector_dim)
        self.linear2 = nn.Linear(projector_dim, projector_dim)
        self.bn2 = nn.BatchNorm1d(projector_dim)
        self.linear3 = nn.Linear(projector_dim, projector_dim)
        self.whitening = (
            IterNorm(projector_dim, num_groups=iternorm_groups, iterations=iternorm_iters) if whiten else None
        )

    @staticmethod
    def pool(z: torch.Tensor) -> torch.Tensor:
        """z (B, D, H, W) → concat(global average, global max) (B, 2D)."""
        flat = rearrange(z, "b d h w -> b d (h w)")
        return torch.cat([flat.mean(-1), flat.amax(-1)], dim=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """One view: z (B, D, H, W) → projection (B, projector_dim)."""
        return self._project([self.pool(z)])[0]

    def forward_pair(self, z1: torch.Tensor, z2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Two views at once, identical to ``(self(z1), self(z2))`` including BN running statistics.

        Args:
            z1, z2: latent grids (B₁, D, H, W) and (B₂, D, H, W).

        Returns:
            projections (B₁, projector_dim), (B₂, projector_dim).
        """
        p1, p2 = self._project([self.pool(z1), self.pool(z2)])
        return p1, p2

    def _project(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        sizes = [v.shape[0] for v in views]
        h = torch.cat(views) if len(views) > 1 else views[0]  # (ΣB, 2D) rows of all views
        for linear, bn in ((self.linear1, self.bn1), (self.linear2, self.bn2)):
            # One matrix product for all views, then BatchNorm view by view (per-view statistics).
            parts = linear(h).split(sizes)
            h = F.relu(torch.cat([bn(p) for p in parts]) if len(parts) > 1 else bn(parts[0]))
        out = self.linear3(h).split(sizes)
        if self.whitening is not None:
            out = [self.whitening(p) for p in out]
        return list(out)


# --------------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------------


def off_diagonal_sq_sum(a: torch.Tensor, b: torch.Tensor, diagonal: torch.Tensor) -> torch.Tensor:
    """Σ_{i≠j} (aᵀb)_ij² for a, b (B, D), given the diagonal of aᵀb (D,).

    Uses ‖aᵀb‖²_F = Σ (aaᵀ) ∘ (bbᵀ) (B × B Gram matrices) when B < D, the D × D product otherwise.
    The subtraction of the diagonal is well conditioned here: aᵀb has rank ≤ B, so its off-diagonal
    mass is at least of the order of its diagonal mass times D/B.
    """
    if a.shape[0] < a.shape[1]:
        total = (a @ a.t()).mul(b @ b.t()).sum()
    else:
        total = (a.t() @ b).pow(2).sum()
    return total - diagonal.pow(2).sum()


class BarlowTwinsLoss(nn.Module):
    """Barlow Twins (Zbontar et al. 2021, eq. 1), divided by the projection width as in the reference.

    Each projection is standardised over the batch (population statistics, so that C is the paper's
    cosine-form cross-correlation with C_ii = 1 for identical views), C = z₁ᵀz₂ / B, and
    loss = [Σ_i (1 − C_ii)² + λ Σ_{i≠j} C_ij²] / D.

    The reference standardised with the unbiased standard deviation (C_ii ≤ (B−1)/B); this follows the
    paper.

    Args:
        lambda_: weight of the redundancy-reduction (off-diagonal) term.
        scale_by_dim: divide by D (the thesis' setting).
        eps: added to the variance before the square root.
    """

    def __init__(self, lambda_: float = 0.005, *, scale_by_dim: bool = True, eps: float = 1e-8) -> None:
        super().__init__()
        self.lambda_ = lambda_
        self.scale_by_dim = scale_by_dim
        self.eps = eps

    def standardize(self, z: torch.Tensor) -> torch.Tensor:
        """(z − mean_batch) / std_batch, population std; z (B, D) → (B, D)."""
        var, mean = torch.var_mean(z, dim=0, correction=0)
        return (z - mean) * torch.rsqrt(var + self.eps)

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """z1, z2 (B, D) → scalar loss (computed in float32 whatever the autocast state)."""
        # fp32 always: the batch standardisation and the cross-correlation sums over B and D² terms
        # would lose the small off-diagonal entries in bf16 (precision.py)
        with full_precision(z1.device.type):
            return self._loss(at_least_fp32(z1), at_least_fp32(z2))

    def _loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        batch, dim = z1.shape
        a, b = self.standardize(z1), self.standardize(z2)
        raw_diagonal = (a * b).sum(0)  # diagonal of aᵀb (D,)
        on_diag = (1.0 - raw_diagonal / batch).pow(2).sum()
        off_diag = off_diagonal_sq_sum(a, b, raw_diagonal) / batch**2
        loss = on_diag + self.lambda_ * off_diag
        return loss / dim if self.scale_by_dim else loss


class VIbCRegLoss(nn.Module):
    """VIbCReg (Lee & Aune 2021): invariance + variance + normalised-covariance terms.

    loss = λ·MSE(z₁, z₂) + μ·[v(z₁) + v(z₂)] + ν·[c(z₁) + c(z₂)], with
    v(z) = mean_d relu(1 − sqrt(Var_batch(z_d) + 1e-4)) (unbiased variance) and
    c(z) = mean over the D × D entries of the squared *normalised* covariance with its diagonal zeroed
    (centre each feature over the batch, L2-normalise each feature column, take zᵀz).

    Args:
        sim: λ, invariance weight.
        var: μ, variance weight.
        cov: ν, covariance weight.
    """

    def __init__(self, sim: float = 25.0, var: float = 25.0, cov: float = 100.0) -> None:
        super().__init__()
        self.sim = sim
        self.var = var
        self.cov = cov

    @staticmethod
    def variance_term(z: torch.Tensor) -> torch.Tensor:
        """v(z) for z (B, D)."""
        return F.relu(1.0 - torch.sqrt(z.var(dim=0) + 1e-4)).mean()

    @staticmethod
    def covariance_term(z: torch.Tensor) -> torch.Tensor:
        """c(z) for z (B, D)."""
        dim = z.shape[1]
        n = F.normalize(z - z.mean(dim=0), p=2, dim=0)  # unit-norm feature columns
        return off_diagonal_sq_sum(n, n, n.pow(2).sum(0)) / dim**2

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """z1, z2 (B, D) → scalar loss (computed in float32 whatever the autocast state)."""
        # fp32 always: variances near the hinge at 1 and the normalised covariance's D² small entries
        # need more than bf16's 3 significant digits (precision.py)
        with full_precision(z1.device.type):
            return self._loss(at_least_fp32(z1), at_least_fp32(z2))

    def _loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        invariance = F.mse_loss(z1, z2)
        variance = self.variance_term(z1) + self.variance_term(z2)
        covariance = self.covariance_term(z1) + self.covariance_term(z2)
        return self.sim * invariance + self.var * variance + self.cov * covariance


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SSLMethod:
    """How a registered SSL method is built.

    Attributes:
        build_loss: makes the loss module from the tokenizer's hyper-parameters (its constructor
            keyword arguments, e.g. ``barlow_lambda``).
        default_weight: the loss weight used when ``ssl_weight`` is None.
        whiten: whether IterNorm ends the projector.
    """

    build_loss: Callable[[Mapping[str, float]], nn.Module]
    default_weight: float
    whiten: bool = False


SSL_METHODS: dict[str, SSLMethod | None] = {
    "baseline": None,  # plain VQ-VAE: no augmented branch, no SSL
    "barlowtwins": SSLMethod(lambda p: BarlowTwinsLoss(lambda_=p["barlow_lambda"]), default_weight=1.0),
    "vibcreg": SSLMethod(
        lambda p: VIbCRegLoss(sim=p["vibcreg_sim"], var=p["vibcreg_var"], cov=p["vibcreg_cov"]),
        default_weight=0.01,
        whiten=True,
    ),
}


def get_ssl_method(name: str) -> SSLMethod | None:
    """The registry entry of ``name`` (None for the baseline); ConfigError naming the known methods."""
    if name not in SSL_METHODS:
        raise ConfigError(f"stage1.method: unknown method {name!r}; known: {', '.join(SSL_METHODS)}")
    return SSL_METHODS[name]
