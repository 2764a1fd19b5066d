"""Vector quantizer with an exponential-moving-average codebook (SPEC §3; van den Oord et al. 2017, App. A.1).

Each latent vector z (a column of the (B, D, H', W') grid) is replaced by its nearest code in Euclidean
distance. The codebook is not trained by gradients: in training mode every forward pass moves it by an
EMA of the assigned vectors (decay 0.9, Laplace smoothing eps 1e-5), exactly as the reference (a port
of lucidrains' ``vector-quantize-pytorch``), including its random-normal initialisation, its zero
initial cluster sizes and the absence of dead-code resets. Gradients reach the encoder through the
straight-through estimator ``z + sg(z_q − z)`` and the commitment loss ``MSE(z, sg(z_q))``.

Stage 2 tokenises stochastically: :meth:`VectorQuantizer.sample_codes` draws code k with probability
softmax(−‖z − e_k‖² / τ) from an explicit generator (τ = 0 gives the nearest code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from ncvqvae.precision import at_least_fp32, full_precision

__all__ = ["QuantizerOutput", "VectorQuantizer"]


@dataclass
class QuantizerOutput:
    """What :meth:`VectorQuantizer.forward` returns.

    Attributes:
        z_q: quantised latents (B, D, H, W) with the straight-through gradient to ``z``.
        indices: code ids (B, H·W), row-major over (H, W).
        commitment_loss: scalar, ``commitment_weight · MSE(z, sg(z_q))``.
        perplexity: scalar, exp of the entropy of the batch's code usage (detached).
        usage: (K,) fraction of the batch's vectors assigned to each code (detached, sums to 1).
    """

    z_q: torch.Tensor
    indices: torch.Tensor
    commitment_loss: torch.Tensor
    perplexity: torch.Tensor
    usage: torch.Tensor


class VectorQuantizer(nn.Module):
    """EMA vector quantizer.

    The codebook and its EMA statistics are buffers (they move with ``.to()`` and are saved in the
    state dict, but receive no gradient). They are initialised from PyTorch's global RNG, like every
    layer's weights: seed it (``torch.manual_seed``) before building the model.

    Args:
        codebook_size: number of codes K.
        dim: code dimension D (the encoder width; no projection).
        decay: EMA decay of the cluster sizes and code sums.
        eps: Laplace smoothing of the cluster sizes.
        commitment_weight: weight of the commitment loss.
    """

    def __init__(
        self,
        codebook_size: int = 32,
        dim: int = 64,
        *,
        decay: float = 0.9,
        eps: float = 1e-5,
        commitment_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.dim = dim
        self.decay = decay
        self.eps = eps
        self.commitment_weight = commitment_weight
        embed = torch.randn(codebook_size, dim)
        self.register_buffer("embed", embed)  # (K, D) the codebook
        self.register_buffer("embed_avg", embed.clone())  # (K, D) EMA of the per-code sums of z
        self.register_buffer("cluster_size", torch.zeros(codebook_size))  # (K,) EMA of the counts

    @property
    def codebook(self) -> torch.Tensor:
        """The codes (K, D)."""
        return self.embed

    def distances(self, z_flat: torch.Tensor) -> torch.Tensor:
        """Squared Euclidean distances ‖z − e_k‖² (M, K) of vectors z_flat (M, D) to every code (float32)."""
        # fp32 always, see forward(): the expansion below cancels large terms
        with full_precision(z_flat.device.type):
            z_flat = at_least_fp32(z_flat)
            embed = self.embed.to(z_flat.dtype)
            # ‖z‖² − 2 z·e + ‖e‖² as one addmm; clamped since rounding can make it slightly negative.
            dist = torch.addmm(embed.pow(2).sum(1)[None, :], z_flat, embed.t(), alpha=-2.0)
            return (dist + z_flat.pow(2).sum(1, keepdim=True)).clamp_min_(0.0)

    def sample_codes(
        self, z_flat: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Code ids (M,) for vectors z_flat (M, D): nearest code, or sampled at a temperature.

        Args:
            z_flat: latent vectors (M, D).
            temperature: τ of softmax(−‖z − e_k‖² / τ); 0 picks the nearest code.
            generator: the ``torch.Generator`` (on z_flat's device) every draw comes from.

        Returns:
            LongTensor (M,) of code ids.
        """
        dist = self.distances(z_flat)
        if temperature <= 0:
            return dist.argmin(dim=1)
        probs = torch.softmax(-dist / temperature, dim=1)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The codes of ``indices`` (any shape) → (*indices.shape, D)."""
        return F.embedding(indices, self.embed)

    def forward(self, z: torch.Tensor, *, update: bool | None = None) -> QuantizerOutput:
        """Quantise a latent grid.

        Args:
            z: latents (B, D, H, W).
            update: whether to move the EMA codebook; ``None`` means "in training mode only".

        Returns:
            :class:`QuantizerOutput` in float32; its ``z_q`` uses the codebook as it was *before* this
            pass's update.
        """
        # fp32 always: nearest-code distances ‖z‖² − 2z·e + ‖e‖² cancel large terms, and the EMA
        # codebook accumulates small updates; bf16 would pick wrong codes and stall the EMA (precision.py)
        with full_precision(z.device.type):
            return self._quantize(at_least_fp32(z), update=update)

    def _quantize(self, z: torch.Tensor, *, update: bool | None) -> QuantizerOutput:
        batch, _, height, width = z.shape
        z_flat = rearrange(z, "b d h w -> (b h w) d")
        indices = self.distances(z_flat.detach()).argmin(dim=1)  # (M,)
        z_q = rearrange(self.lookup(indices), "(b h w) d -> b d h w", b=batch, h=height, w=width)
        if self.training if update is None else update:
            self._ema_update(z_flat.detach(), indices)
        commitment = self.commitment_weight * F.mse_loss(z, z_q.detach())
        z_q = z + (z_q - z).detach()  # straight-through: forward z_q, backward identity to z
        usage = torch.bincount(indices, minlength=self.codebook_size).to(z.dtype) / indices.numel()
        perplexity = torch.exp(-(usage * torch.log(usage + 1e-10)).sum())
        return QuantizerOutput(
            z_q=z_q,
            indices=rearrange(indices, "(b n) -> b n", b=batch),
            commitment_loss=commitment,
            perplexity=perplexity.detach(),
            usage=usage.detach(),
        )

    @torch.no_grad()
    def _ema_update(self, z_flat: torch.Tensor, indices: torch.Tensor) -> None:
        # A one-hot matmul rather than index_add_: deterministic on every device.
        onehot = F.one_hot(indices, self.codebook_size).to(self.embed.dtype)  # (M, K)
        counts = onehot.sum(0)  # (K,)
        sums = onehot.t() @ z_flat.to(self.embed.dtype)  # (K, D)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1.0 - self.decay)
        self.embed_avg.mul_(self.decay).add_(sums, alpha=1.0 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total
        self.embed.copy_(self.embed_avg / smoothed[:, None])
