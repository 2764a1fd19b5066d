"""The MaskGIT network: shapes, what it sees of masked positions, class token, config round trip."""

from __future__ import annotations

import pytest
import torch

from ncvqvae.models.prior import BidirectionalTransformer

N, K, D = 6, 5, 8


def make_prior(variant: str, n_classes: int = 3, seed: int = 0) -> BidirectionalTransformer:
    torch.manual_seed(seed)
    codebook = torch.randn(K, D)
    return BidirectionalTransformer(
        N, K, n_classes, variant=variant, code_dim=D, width=16, depth=2, heads=2, codebook=codebook
    ).eval()


def inputs(batch: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, K, (batch, N), generator=gen)
    classes = torch.randint(0, 3, (batch,), generator=gen)
    mask = torch.rand(batch, N, generator=gen) < 0.5
    return tokens, classes, mask


@pytest.mark.parametrize("variant", ["token", "codebook"])
def test_logits_shape_and_masked_tokens_are_invisible(variant: str) -> None:
    prior = make_prior(variant)
    tokens, classes, mask = inputs()
    logits = prior(tokens, classes, mask)
    assert logits.shape == (4, N, K)
    # whatever sits under the mask does not reach the network
    scrambled = torch.where(mask, (tokens + 1) % K, tokens)
    torch.testing.assert_close(prior(scrambled, classes, mask), logits)
    # a visible token does
    mask[:, 0] = False
    changed = tokens.clone()
    changed[:, 0] = (changed[:, 0] + 1) % K
    assert not torch.allclose(prior(changed, classes, mask), prior(tokens, classes, mask))


@pytest.mark.parametrize("variant", ["token", "codebook"])
def test_attention_is_bidirectional_and_class_conditional(variant: str) -> None:
    prior = make_prior(variant)
    tokens, classes, mask = inputs()
    mask[:] = False
    later = tokens.clone()
    later[:, -1] = (later[:, -1] + 1) % K
    # the first position sees the last one: no causal mask
    assert not torch.allclose(prior(later, classes, mask)[:, 0], prior(tokens, classes, mask)[:, 0])
    null = torch.full_like(classes, prior.null_class)
    assert prior.null_class == 3
    assert not torch.allclose(prior(tokens, null, mask), prior(tokens, classes, mask))


def test_inputs_start_from_the_stage1_codebook() -> None:
    torch.manual_seed(0)
    codebook = torch.randn(K, D)
    small = {"code_dim": D, "width": 16, "depth": 1, "codebook": codebook}
    token = BidirectionalTransformer(N, K, 2, variant="token", **small)
    torch.testing.assert_close(token.token_emb.weight[:K], codebook)
    full = BidirectionalTransformer(N, K, 2, variant="codebook", **small)
    torch.testing.assert_close(full.codebook.data, codebook)
    # a copy: fine-tuning the prior's codebook never moves the tokenizer's
    full.codebook.data.add_(1.0)
    assert not torch.allclose(full.codebook.data, codebook)
    # token variant: output tied to the input table (gradient reaches it from the logits alone)
    tokens, classes, mask = inputs()
    mask[:] = True  # every input is the mask token, so only the tied output uses rows 0..K-1
    token(tokens, classes % 2, mask).sum().backward()
    assert token.token_emb.weight.grad[:K].abs().sum() > 0


@pytest.mark.parametrize("variant", ["token", "codebook"])
def test_config_rebuilds_the_network(variant: str) -> None:
    prior = make_prior(variant)
    rebuilt = BidirectionalTransformer.from_config(dict(prior.config)).eval()
    rebuilt.load_state_dict(prior.state_dict())
    tokens, classes, mask = inputs()
    torch.testing.assert_close(rebuilt(tokens, classes, mask), prior(tokens, classes, mask))


def test_unconditional_prior_has_only_the_null_class() -> None:
    prior = BidirectionalTransformer(N, K, 0, code_dim=D, width=16, depth=1)
    assert prior.null_class == 0 and prior.class_emb.num_embeddings == 1
    tokens, _, mask = inputs()
    assert prior(tokens, torch.zeros(4, dtype=torch.long), mask).shape == (4, N, K)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="variant"):
        BidirectionalTransformer(N, K, 2, variant="full")
    with pytest.raises(ValueError, match="codebook has shape"):
        BidirectionalTransformer(N, K, 2, code_dim=D, codebook=torch.zeros(K + 1, D))
    with pytest.raises(ValueError, match="divisible"):
        BidirectionalTransformer(N, K, 2, width=15, heads=2, head_dim=0)


def test_head_width() -> None:
    """64-wide heads by default (the reference's); head_dim=0 splits the width; old configs rebuild."""
    assert BidirectionalTransformer(N, K, 2, width=256, heads=2).blocks[0].qkv.out_features == 3 * 128
    split = BidirectionalTransformer(N, K, 2, width=256, heads=2, head_dim=0)
    assert split.blocks[0].qkv.out_features == 3 * 256
    old = {k: v for k, v in split.config.items() if k != "head_dim"}  # saved before head_dim existed
    rebuilt = BidirectionalTransformer.from_config(old)
    rebuilt.load_state_dict(split.state_dict())  # same shapes: heads of width // heads


@pytest.mark.parametrize("variant", ["token", "codebook"])
def test_bf16_autocast_stays_close_to_fp32(variant: str) -> None:
    prior = make_prior(variant)
    tokens, classes, mask = inputs()
    reference = prior(tokens, classes, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = prior(tokens, classes, mask).float()
    assert (low - reference).abs().max() < 0.05 * reference.abs().max()
    bf16 = make_prior(variant).to(torch.bfloat16)  # the sampling path: a bf16 copy of the network
    assert (bf16(tokens, classes, mask).float() - reference).abs().max() < 0.05 * reference.abs().max()
