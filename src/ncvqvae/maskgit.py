"""The MaskGIT procedure: mask schedules, the masked-token loss, and iterative parallel decoding.

Kept apart from the network (``ncvqvae.models.prior``): every function here takes a prior network as a
callable ``prior(tokens (B, N), classes (B,), mask (B, N)) -> logits (B, N, K)`` with the attributes
``n_tokens`` and ``null_class``, and every random draw comes from an explicit ``torch.Generator``.

Masking conventions (SPEC §4), with γ(t) = cos(πt/2) and one t ~ U(0, 1) per batch:

- ``maskgit`` (default, the MaskGIT paper): ⌈γ(t)·N⌉ positions are masked and the cross-entropy covers
  exactly the masked positions.
- ``legacy`` (the reference code, which inherits a bug of a popular MaskGIT port): ⌊γ(t)·N⌋ positions are
  *kept*, so N − ⌊γ(t)·N⌋ are masked, and the cross-entropy covers all N positions. Kept only to
  reproduce the thesis numbers.

Iterative decoding (SPEC §4): start fully masked; at step t = 0..T−1 (ratio r = (t+1)/T) sample every
masked position from softmax(logits / temperature); the confidence of a new token is its log-probability
plus ``choice_temperature·(1 − r)`` times Gumbel noise (annealed to 0 at the last step), known tokens have
infinite confidence; then the ⌊N·γ(r)⌋ least confident positions are masked again (clamped so that every
step fixes at least one new token and one stays masked until the last step, as in MaskGIT). SPEC writes the
annealing factor as (1 − t/T) with steps counted from 1; with 0-based steps that is (1 − (t+1)/T), the
MaskGIT reference behaviour. Classifier-free guidance with scale s mixes conditional and unconditional
logits, ``uncond + s·(cond − uncond)``; s = 1 is plain conditional sampling and costs one forward pass.
The four options (T, temperature, choice temperature, s) travel together as one
:class:`ncvqvae.config.Decoding`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from ncvqvae.config import Decoding

MASKING_CONVENTIONS = ("maskgit", "legacy")


class PriorNetwork(Protocol):
    """What the procedure needs of a prior network (``BidirectionalTransformer`` is one)."""

    n_tokens: int

    @property
    def null_class(self) -> int: ...

    def __call__(self, tokens: torch.Tensor, classes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...


# --------------------------------------------------------------------------------------------------
# Schedules and random draws
# --------------------------------------------------------------------------------------------------


def gamma(t: float) -> float:
    """The cosine mask schedule γ(t) = cos(πt/2): 1 at t = 0 (all masked), 0 at t = 1."""
    return math.cos(math.pi * t / 2)


def mask_count(t: float, n_tokens: int, convention: str = "maskgit") -> int:
    """Number of masked positions at schedule time t ∈ [0, 1) for a sequence of ``n_tokens``.

    ``maskgit``: ⌈γ(t)·N⌉ (at least 1). ``legacy``: N − ⌊γ(t)·N⌋ (the reference keeps ⌊γ(t)·N⌋).
    """
    if convention == "maskgit":
        return min(max(math.ceil(gamma(t) * n_tokens), 1), n_tokens)
    if convention == "legacy":
        return n_tokens - math.floor(gamma(t) * n_tokens)
    known = ", ".join(MASKING_CONVENTIONS)
    raise ValueError(f"unknown masking convention {convention!r}; expected one of {known}")


def random_mask(batch: int, n_tokens: int, n_masked: int, *, generator: torch.Generator) -> torch.Tensor:
    """A BoolTensor (batch, n_tokens), exactly ``n_masked`` True per row, on the generator's device."""
    scores = torch.rand(batch, n_tokens, generator=generator, device=generator.device)
    ranks = scores.argsort(dim=1).argsort(dim=1)  # each row a random permutation of 0..N-1
    return ranks < n_masked


def gumbel_noise(
    shape: tuple[int, ...], *, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Standard Gumbel noise −log(−log U) of ``shape`` on the generator's device."""
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=dtype)
    tiny = torch.finfo(dtype).tiny
    return -torch.log((-torch.log(u.clamp_min(tiny))).clamp_min(tiny))


def sample_categorical(
    logits: torch.Tensor, *, generator: torch.Generator, temperature: float = 1.0
) -> torch.Tensor:
    """Draw ids from softmax(logits / temperature) over the last axis (Gumbel-max); temperature 0 = argmax.

    Args:
        logits: (..., K) unnormalised log-probabilities.

    Returns:
        LongTensor (...).
    """
    if temperature <= 0:
        return logits.argmax(dim=-1)
    noise = gumbel_noise(tuple(logits.shape), generator=generator, dtype=logits.dtype).to(logits.device)
    return (logits / temperature + noise).argmax(dim=-1)


# --------------------------------------------------------------------------------------------------
# Training objective
# --------------------------------------------------------------------------------------------------


@dataclass
class MaskedBatch:
    """Inputs of one training step: the tokens, what is hidden, and where the loss is taken.

    Attributes:
        mask: BoolTensor (B, N), True where the network sees the mask token.
        loss_mask: BoolTensor (B, N), True where the cross-entropy is taken (``mask`` for ``maskgit``,
            everything for ``legacy``).
        t: the schedule time drawn for this batch.
        n_masked: number of masked positions per sequence.
    """

    mask: torch.Tensor
    loss_mask: torch.Tensor
    t: float
    n_masked: int


def draw_mask(batch: int, n_tokens: int, *, convention: str, generator: torch.Generator) -> MaskedBatch:
    """Draw t ~ U(0, 1) for the batch and mask ``mask_count(t)`` random positions in every sequence."""
    t = float(torch.rand((), generator=generator, device=generator.device))
    n_masked = mask_count(t, n_tokens, convention)
    mask = random_mask(batch, n_tokens, n_masked, generator=generator)
    loss_mask = mask if convention == "maskgit" else torch.ones_like(mask)
    return MaskedBatch(mask=mask, loss_mask=loss_mask, t=t, n_masked=n_masked)


def masked_token_loss(
    logits: torch.Tensor, targets: torch.Tensor, loss_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy over the positions where ``loss_mask`` is True.

    Args:
        logits: (B, N, K).
        targets: LongTensor (B, N).
        loss_mask: BoolTensor (B, N).

    Returns:
        (loss, accuracy), both 0-d tensors; accuracy is detached.
    """
    picked = logits[loss_mask]  # (M, K)
    target = targets[loss_mask]  # (M,)
    loss = F.cross_entropy(picked, target)
    accuracy = (picked.detach().argmax(-1) == target).float().mean()
    return loss, accuracy


# --------------------------------------------------------------------------------------------------
# Iterative decoding
# --------------------------------------------------------------------------------------------------


def guided_logits(
    prior: PriorNetwork, tokens: torch.Tensor, classes: torch.Tensor, mask: torch.Tensor, guidance: float
) -> torch.Tensor:
    """Logits (B, N, K) with classifier-free guidance ``uncond + s·(cond − uncond)``.

    One forward pass when ``guidance == 1`` or when every class is the null class; otherwise one batched
    pass over the conditional and unconditional copies (2B sequences).
    """
    null = prior.null_class
    if guidance == 1.0 or bool((classes == null).all()):
        return prior(tokens, classes, mask)
    nulls = torch.full_like(classes, null)
    both = prior(torch.cat([tokens, tokens]), torch.cat([classes, nulls]), torch.cat([mask, mask]))
    cond, uncond = both.chunk(2)  # (B, N, K) each
    return uncond + guidance * (cond - uncond)


@torch.no_grad()
def decode_tokens(
    prior: PriorNetwork,
    classes: torch.Tensor,
    *,
    decoding: Decoding | None = None,
    generator: torch.Generator,
) -> torch.Tensor:
    """Generate token sequences by iterative parallel decoding (MaskGIT).

    Args:
        prior: the network (in eval mode).
        classes: LongTensor (B,) of class ids; ``prior.null_class`` entries are sampled unconditionally.
        decoding: steps T, token temperature (0 = greedy), choice temperature (scale of the annealed
            Gumbel noise added to the confidences) and guidance scale s (1 = plain conditional);
            ``None`` = the defaults, ``Decoding()``.
        generator: the source of every random draw (best on the device of ``classes``; draws made on
            another device are moved).

    Returns:
        LongTensor (B, N) of code ids, no position left masked.
    """
    decoding = Decoding() if decoding is None else decoding
    steps, temperature, guidance = decoding.steps, decoding.temperature, decoding.guidance
    if steps < 1:
        raise ValueError(f"decoding needs at least one step, got steps={steps}")
    batch, n, device = classes.shape[0], prior.n_tokens, classes.device
    tokens = torch.zeros(batch, n, dtype=torch.long, device=device)
    mask = torch.ones(batch, n, dtype=torch.bool, device=device)
    for t in range(steps):
        ratio = (t + 1) / steps
        logits = guided_logits(prior, tokens, classes, mask, guidance).float()  # (B, N, K)
        sampled = sample_categorical(logits, generator=generator, temperature=temperature)  # (B, N)
        tokens = torch.where(mask, sampled, tokens)  # known tokens never change
        if t == steps - 1:
            break  # the last step fills every remaining position
        n_unknown = int(mask[0].sum())  # the same in every row: the schedule is shared
        # fix at least one new token per step, and keep at least one masked until the last step
        n_remask = max(1, min(math.floor(n * gamma(ratio)), n_unknown - 1))
        log_probs = F.log_softmax(logits, dim=-1)  # the network's own confidence, before temperature
        confidence = log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # (B, N)
        noise_scale = decoding.choice_temperature * (1.0 - ratio)
        if noise_scale > 0:
            confidence = confidence + noise_scale * gumbel_noise((batch, n), generator=generator).to(device)
        confidence = confidence.masked_fill(~mask, float("inf"))  # known tokens are never re-masked
        lowest = confidence.topk(n_remask, dim=1, largest=False).indices  # (B, n_remask)
        mask = torch.zeros_like(mask).scatter_(1, lowest, True)
    return tokens
