"""MaskGIT procedure: schedules, the masked loss, iterative decoding, guidance, and a tiny overfit."""

from __future__ import annotations

import math

import pytest
import torch

from ncvqvae.config import Decoding
from ncvqvae.maskgit import (
    decode_tokens,
    draw_mask,
    gamma,
    guided_logits,
    mask_count,
    masked_token_loss,
    random_mask,
    sample_categorical,
)
from ncvqvae.models.prior import BidirectionalTransformer

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread


class RecordingPrior(torch.nn.Module):
    """A stand-in network: random logits, and a record of every call's inputs."""

    def __init__(self, n_tokens: int = 12, codebook_size: int = 7, n_classes: int = 2) -> None:
        super().__init__()
        self.n_tokens, self.codebook_size, self.null_class = n_tokens, codebook_size, n_classes
        self.proj = torch.nn.Embedding(n_classes + 1, n_tokens * codebook_size)
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, tokens: torch.Tensor, classes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.calls.append((tokens.clone(), classes.clone(), mask.clone()))
        logits = self.proj(classes).view(-1, self.n_tokens, self.codebook_size)
        return logits + tokens.float().mean(1, keepdim=True).unsqueeze(-1) * 0.1  # depends on the inputs


# --------------------------------------------------------------------------------------------------
# Schedules
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 8, 40, 75])
def test_mask_counts_follow_the_schedule_in_both_conventions(n: int) -> None:
    for t in torch.linspace(0, 0.999, 101).tolist():
        g = math.cos(math.pi * t / 2)
        assert mask_count(t, n, "maskgit") == min(max(math.ceil(g * n), 1), n)
        assert mask_count(t, n, "legacy") == n - math.floor(g * n)  # the reference keeps ⌊γN⌋
    # the conventions are each other's mirror image: early in the schedule maskgit masks almost all,
    # legacy almost none
    assert mask_count(0.05, 40, "maskgit") == 40 and mask_count(0.05, 40, "legacy") == 1
    assert mask_count(0.9, 40, "maskgit") == 7 and mask_count(0.9, 40, "legacy") == 34
    with pytest.raises(ValueError, match="convention"):
        mask_count(0.5, 8, "muse")


def test_draw_mask_masks_exactly_the_count_and_sets_the_loss_positions() -> None:
    gen = torch.Generator().manual_seed(0)
    for convention in ("maskgit", "legacy"):
        for _ in range(20):
            batch = draw_mask(16, 40, convention=convention, generator=gen)
            assert batch.n_masked == mask_count(batch.t, 40, convention)
            assert (batch.mask.sum(1) == batch.n_masked).all()
            if convention == "maskgit":
                assert torch.equal(batch.loss_mask, batch.mask)
            else:
                assert batch.loss_mask.all()
    # positions are random per row, not one shared pattern
    mask = random_mask(64, 40, 20, generator=gen)
    assert len({tuple(row.tolist()) for row in mask}) > 60


def test_loss_covers_exactly_the_masked_positions() -> None:
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 10, 6, generator=gen, requires_grad=True)
    targets = torch.randint(0, 6, (4, 10), generator=gen)
    mask = random_mask(4, 10, 3, generator=gen)
    loss, accuracy = masked_token_loss(logits, targets, mask)
    expected = torch.nn.functional.cross_entropy(logits[mask], targets[mask])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert (logits.grad[~mask] == 0).all() and (logits.grad[mask] != 0).any()
    assert accuracy == (logits[mask].argmax(-1) == targets[mask]).float().mean()
    # legacy: everything counts
    logits.grad = None
    legacy, _ = masked_token_loss(logits, targets, torch.ones_like(mask))
    legacy.backward()
    assert (logits.grad != 0).all(dim=-1).all()


def test_sample_categorical_matches_the_softmax() -> None:
    gen = torch.Generator().manual_seed(2)
    logits = torch.tensor([0.0, 1.0, 2.0]).expand(20000, 3)
    freq = torch.bincount(sample_categorical(logits, generator=gen), minlength=3).float() / 20000
    torch.testing.assert_close(freq, torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0), atol=0.015, rtol=0)
    assert (sample_categorical(logits, generator=gen, temperature=0) == 2).all()


# --------------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------------


def test_decoding_never_changes_a_known_token_and_ends_unmasked() -> None:
    prior = RecordingPrior(n_tokens=12, codebook_size=7)
    classes = torch.tensor([0, 1, 2, 0])
    tokens = decode_tokens(
        prior, classes, decoding=Decoding(steps=6), generator=torch.Generator().manual_seed(0)
    )
    assert tokens.shape == (4, 12) and tokens.dtype == torch.long
    assert ((tokens >= 0) & (tokens < 7)).all()
    calls = prior.calls
    assert len(calls) == 6 and calls[0][2].all()  # starts fully masked
    for (tok_a, _, mask_a), (tok_b, _, mask_b) in zip(calls, calls[1:], strict=False):
        known = ~mask_a
        assert (~mask_b[known]).all()  # a known position is never masked again
        assert torch.equal(tok_b[known], tok_a[known])  # and its token never changes
        assert (mask_b.sum(1) < mask_a.sum(1)).all()  # every step fixes new tokens
    known_last = ~calls[-1][2]
    assert torch.equal(tokens[known_last], calls[-1][0][known_last])
    # the re-masked counts follow ⌊N·γ((t+1)/T)⌋
    counts = [int(mask[0].sum()) for _, _, mask in calls]
    assert counts == [12] + [math.floor(12 * gamma((t + 1) / 6)) for t in range(5)]


def test_guidance_one_makes_one_forward_pass_per_step() -> None:
    classes = torch.tensor([0, 1, 1])
    for guidance, batch in ((1.0, 3), (2.0, 6)):
        prior = RecordingPrior()
        decoding = Decoding(steps=5, guidance=guidance)
        decode_tokens(prior, classes, decoding=decoding, generator=torch.Generator().manual_seed(0))
        assert len(prior.calls) == 5
        assert {c[0].shape[0] for c in prior.calls} == {batch}
        if guidance != 1.0:  # the second half of the batch is the unconditional copy
            assert (prior.calls[0][1][3:] == prior.null_class).all()
    # unconditional sampling never needs the second pass
    prior = RecordingPrior()
    unconditional = torch.full((3,), prior.null_class)
    decoding = Decoding(steps=4, guidance=3.0)
    decode_tokens(prior, unconditional, decoding=decoding, generator=torch.Generator().manual_seed(0))
    assert [c[0].shape[0] for c in prior.calls] == [3] * 4


def test_guided_logits_mix_conditional_and_unconditional() -> None:
    prior = RecordingPrior()
    tokens = torch.zeros(2, 12, dtype=torch.long)
    mask = torch.ones(2, 12, dtype=torch.bool)
    classes = torch.tensor([0, 1])
    with torch.no_grad():
        cond = prior(tokens, classes, mask)
        uncond = prior(tokens, torch.full_like(classes, 2), mask)
        guided = guided_logits(prior, tokens, classes, mask, 2.5)
    torch.testing.assert_close(guided, uncond + 2.5 * (cond - uncond))


def test_same_generator_same_tokens() -> None:
    prior = RecordingPrior()
    classes = torch.tensor([0, 1, 2, 1])
    a = decode_tokens(prior, classes, generator=torch.Generator().manual_seed(7))
    b = decode_tokens(prior, classes, generator=torch.Generator().manual_seed(7))
    c = decode_tokens(prior, classes, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # no options = the defaults; the options are all used
    assert torch.equal(
        a, decode_tokens(prior, classes, decoding=Decoding(), generator=torch.Generator().manual_seed(7))
    )
    for options in (Decoding(steps=4), Decoding(temperature=0.5), Decoding(choice_temperature=0.0)):
        other = decode_tokens(prior, classes, decoding=options, generator=torch.Generator().manual_seed(7))
        assert not torch.equal(a, other), options


@pytest.mark.parametrize("variant", ["token", "codebook"])
def test_a_tiny_prior_learns_two_class_patterns(variant: str) -> None:
    """Two classes with fixed token patterns: class-conditional samples reproduce each class's pattern."""
    n, k = 8, 4
    patterns = torch.tensor([[0, 1, 2, 3, 0, 1, 2, 3], [3, 3, 2, 2, 1, 1, 0, 0]])
    torch.manual_seed(0)
    prior = BidirectionalTransformer(
        n, k, 2, variant=variant, code_dim=8, width=32, depth=1, heads=2, codebook=torch.randn(k, 8)
    )
    optimizer = torch.optim.AdamW(prior.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(250):
        y = torch.randint(0, 2, (32,), generator=gen)
        tokens = patterns[y]
        y = y.masked_fill(torch.rand(32, generator=gen) < 0.2, prior.null_class)  # class dropout
        batch = draw_mask(32, n, convention="maskgit", generator=gen)
        loss, _ = masked_token_loss(prior(tokens, y, batch.mask), tokens, batch.loss_mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    prior.eval()
    classes = torch.tensor([0] * 20 + [1] * 20)
    out = decode_tokens(
        # greedy tokens and unmasking order: after 250 steps the loss is ~0.16, and how often sampling
        # draws a wrong token depends on the CPU's float sums (82% on an AVX-512 Xeon, >= 95% on an AVX2 EPYC)
        prior, classes, decoding=Decoding(steps=8, temperature=0.0, choice_temperature=0.0),
        generator=torch.Generator().manual_seed(1),
    )
    match = (out == patterns[classes]).all(dim=1).float().mean()
    assert match >= 0.95, f"only {match:.0%} of the samples reproduce their class pattern"
