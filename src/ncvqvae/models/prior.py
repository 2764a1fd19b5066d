"""The MaskGIT network: a bidirectional transformer over a token grid, with a class token (SPEC §4).

The network maps a (partly masked) token sequence and a class id to logits over the codebook at every
position. It knows nothing of mask schedules, losses or iterative decoding (``ncvqvae.maskgit`` does);
the only thing it knows about masking is how to *embed* a masked position, which is part of its input.

Two input variants (SPEC §4, the two priors of the reference code):

- ``token``: a learned embedding table of ``K + 1`` rows (the extra one is the mask token) initialised from
  the stage-1 codebook; the output is weight-tied to that table, plus a learned per-position bias.
- ``codebook``: the inputs are vectors of a fine-tunable copy of the stage-1 codebook, a learned mask
  vector replaces masked positions, and the output head is untied.

Both variants work in the codebook's space (``code_dim``, 64) at the input and output and in ``width``
(256) inside the transformer: input embedding + learned positional embedding → linear to ``width`` →
``depth`` pre-norm blocks (RMSNorm, multi-head self-attention without a causal mask, feed-forward) →
RMSNorm → linear back to ``code_dim`` → GELU → LayerNorm → logits. A class token with ``n_classes + 1``
embeddings is prepended; the last embedding (id ``n_classes``) is the null class ("unconditional"),
used for unlabelled data, for class dropout while training and for classifier-free guidance.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

PRIOR_VARIANTS = ("token", "codebook")


def exists(value: Any) -> bool:
    return value is not None


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, dropout: float = 0.0) -> torch.Tensor:
    """softmax(q·kᵀ/√d)·v over (B, heads, S, d) tensors, no mask (every position sees every other).

    With gradients it is written out (softmax in fp32): for these short sequences (S = N + 1 ≈ 41) the
    fused CPU kernel's backward pass took ~40% of a training step, the plain matmuls a third of that.
    Without gradients (sampling) the fused ``scaled_dot_product_attention`` is the faster one.
    """
    if not (torch.is_grad_enabled() and q.requires_grad):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
    scores = (q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)  # (B, h, S, S)
    weights = F.dropout(scores.softmax(dim=-1, dtype=torch.float32).to(v.dtype), p=dropout)
    return weights @ v


class RMSNorm(nn.Module):
    """RMSNorm written as x-transformers (the reference prior's library) writes it: normalize(x)·√d·g.

    That is x / rms(x) · g, with ε clamping ‖x‖ instead of being added to the mean square. Hand-written
    because ``nn.RMSNorm`` has no fused CPU kernel: its composite path (upcast, pow, mean, mul) took half
    of a bf16 forward pass here, ``F.normalize`` a fraction of that.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) * (self.weight * self.scale).to(x.dtype)


class Block(nn.Module):
    """One pre-norm transformer block: RMSNorm → self-attention → residual, RMSNorm → MLP → residual.

    Hand-written rather than ``nn.TransformerEncoderLayer`` because SPEC §4 asks for RMSNorm, which
    the built-in layer cannot use; attention goes through the fused ``scaled_dot_product_attention``.
    """

    def __init__(self, width: int, heads: int, head_dim: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        inner = heads * head_dim  # attention width (128 for the reference's 2 heads of 64)
        self.attn_norm = RMSNorm(width)
        self.qkv = nn.Linear(width, 3 * inner, bias=False)
        self.attn_out = nn.Linear(inner, width, bias=False)
        self.ff_norm = RMSNorm(width)
        self.ff = nn.Sequential(
            nn.Linear(width, width * ff_mult),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(width * ff_mult, width),
        )
        self.resid_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, S, width) → (B, S, width)."""
        qkv = self.qkv(self.attn_norm(x))  # (B, S, 3·width)
        q, k, v = rearrange(qkv, "b s (three h d) -> three b h s d", three=3, h=self.heads)
        attn = attention(q, k, v, dropout=self.dropout if self.training else 0.0)  # (B, h, S, d)
        x = x + self.resid_dropout(self.attn_out(rearrange(attn, "b h s d -> b s (h d)")))
        return x + self.resid_dropout(self.ff(self.ff_norm(x)))


class BidirectionalTransformer(nn.Module):
    """The class-conditional MaskGIT prior network p(token_i | visible tokens, class).

    Args:
        n_tokens: N = H'·W', the length of the token sequence.
        codebook_size: K, the number of codes (the logits' last dimension).
        n_classes: number of classes (0 for an unconditional prior); ids 0..n_classes-1 are classes and
            ``n_classes`` is the null class.
        variant: ``"token"`` (tied embedding table) or ``"codebook"`` (codebook vectors + mask vector).
        code_dim: D, the dimension of the stage-1 codes (the token inputs are D-dimensional).
        width: transformer width (256).
        depth: number of blocks (4).
        heads: attention heads (2).
        head_dim: width of one head (64, the reference's; 0 = ``width // heads``).
        ff_mult: feed-forward hidden size = ``ff_mult * width`` (1).
        dropout: dropout inside the blocks (0).
        codebook: the stage-1 codebook (K, D) to initialise the inputs from; ``None`` leaves a random
            initialisation (used when the weights come from a checkpoint anyway).
    """

    def __init__(
        self,
        n_tokens: int,
        codebook_size: int,
        n_classes: int,
        *,
        variant: str = "token",
        code_dim: int = 64,
        width: int = 256,
        depth: int = 4,
        heads: int = 2,
        head_dim: int = 64,
        ff_mult: int = 1,
        dropout: float = 0.0,
        codebook: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if head_dim == 0:
            if width % heads:
                raise ValueError(f"width {width} is not divisible by heads {heads} (set head_dim)")
            head_dim = width // heads
        if variant not in PRIOR_VARIANTS:
            raise ValueError(f"unknown prior variant {variant!r}; expected {', '.join(PRIOR_VARIANTS)}")
        if exists(codebook) and tuple(codebook.shape) != (codebook_size, code_dim):
            shape = tuple(codebook.shape)
            raise ValueError(f"codebook has shape {shape}, expected ({codebook_size}, {code_dim})")
        self.config = {
            "n_tokens": int(n_tokens),
            "codebook_size": int(codebook_size),
            "n_classes": int(n_classes),
            "variant": variant,
            "code_dim": int(code_dim),
            "width": int(width),
            "depth": int(depth),
            "heads": int(heads),
            "head_dim": int(head_dim),
            "ff_mult": int(ff_mult),
            "dropout": float(dropout),
        }
        self.n_tokens = int(n_tokens)
        self.codebook_size = int(codebook_size)
        self.n_classes = int(n_classes)
        self.variant = variant

        init = codebook.detach().clone().float() if exists(codebook) else torch.randn(codebook_size, code_dim)
        if variant == "token":
            # rows 0..K-1 are the codes, row K the mask token
            self.token_emb = nn.Embedding(codebook_size + 1, code_dim)
            with torch.no_grad():
                self.token_emb.weight[:codebook_size].copy_(init)
            self.output_bias = nn.Parameter(torch.zeros(n_tokens, codebook_size))
        else:
            self.codebook = nn.Parameter(init)
            self.mask_vector = nn.Parameter(torch.randn(code_dim))
            self.output = nn.Linear(code_dim, codebook_size)
        # N(0, 1) like the codebook's own random-normal init, so that position and class are as loud as
        # the tokens in the summed input (a small init makes the prior slow to tell positions apart)
        self.class_emb = nn.Embedding(n_classes + 1, code_dim)
        self.pos_emb = nn.Parameter(torch.randn(n_tokens + 1, code_dim))  # +1: the class token

        self.proj_in = nn.Linear(code_dim, width)
        self.blocks = nn.ModuleList([Block(width, heads, head_dim, ff_mult, dropout) for _ in range(depth)])
        self.norm = RMSNorm(width)
        self.proj_out = nn.Sequential(nn.Linear(width, code_dim), nn.GELU(), nn.LayerNorm(code_dim))

    @property
    def null_class(self) -> int:
        """The class id meaning "no class" (unconditional)."""
        return self.n_classes

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BidirectionalTransformer:
        """Rebuild an (untrained) network from :attr:`config`; load the weights separately.

        Configs saved before ``head_dim`` existed had heads of ``width // heads``.
        """
        return cls(**{"head_dim": config["width"] // config["heads"], **config})

    def forward(self, tokens: torch.Tensor, classes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits over the codebook at every position.

        Args:
            tokens: LongTensor (B, N) of code ids; values at masked positions are ignored.
            classes: LongTensor (B,) of class ids in 0..n_classes (``n_classes`` = null class).
            mask: BoolTensor (B, N), True where the token is hidden from the network.

        Returns:
            Logits (B, N, K).
        """
        if tokens.shape[1] != self.n_tokens:
            raise ValueError(f"expected {self.n_tokens} tokens per sequence, got {tokens.shape[1]}")
        if self.variant == "token":
            x = self.token_emb(tokens.masked_fill(mask, self.codebook_size))  # (B, N, D)
        else:
            vectors = F.embedding(tokens.clamp(0, self.codebook_size - 1), self.codebook)  # (B, N, D)
            x = torch.where(mask.unsqueeze(-1), self.mask_vector, vectors)
        x = torch.cat([self.class_emb(classes).unsqueeze(1), x], dim=1) + self.pos_emb  # (B, 1 + N, D)
        h = self.proj_in(x)  # (B, 1 + N, width)
        if torch.is_autocast_enabled(h.device.type):
            # keep the residual stream in the autocast dtype too: otherwise every norm, add and activation
            # runs in fp32 between casts, which cost more than the bf16 matmuls save on CPU
            h = h.to(torch.get_autocast_dtype(h.device.type))
        for block in self.blocks:
            h = block(h)
        h = self.proj_out(self.norm(h[:, 1:]))  # drop the class token → (B, N, D)
        if self.variant == "token":
            return h @ self.token_emb.weight[: self.codebook_size].t() + self.output_bias
        return self.output(h)
