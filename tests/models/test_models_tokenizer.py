"""The stage-1 tokenizer: one contract suite over every registered method (shapes, loss composition,
gradient paths, no state change outside training, save → load → same outputs), plus NC specifics."""

from __future__ import annotations

import json

import pytest
import torch

from ncvqvae.config import Stage1Config
from ncvqvae.errors import ConfigError, DataError, TrainingError
from ncvqvae.models.ssl import SSL_METHODS
from ncvqvae.models.stft import stft
from ncvqvae.models.tokenizer import VQVAE, build_tokenizer

TINY = {
    "hidden_dim": 8,
    "n_res_blocks": 1,
    "codebook_size": 8,
    "projector_dim": 32,
    "iternorm_groups": 4,
}
METHODS = sorted(SSL_METHODS)
LENGTH = 40


def tiny(method: str, channels: int = 1, **kwargs: object) -> VQVAE:
    torch.manual_seed(0)
    return VQVAE(in_channels=channels, input_length=LENGTH, method=method, **{**TINY, **kwargs})


def views(batch: int = 6, channels: int = 1, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, LENGTH, generator=gen)
    return x, x + 0.1 * torch.randn(batch, channels, LENGTH, generator=gen)


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_state(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("channels", [1, 2])
def test_forward_shapes_and_terms(method: str, channels: int) -> None:
    model = tiny(method, channels).train()
    x, x_aug = views(channels=channels)
    out = model(x, x_aug)
    grid = model.token_grid
    assert out.x_hat.shape == x.shape
    assert out.tokens.shape == (6, grid[0] * grid[1]) and out.tokens.dtype == torch.long
    assert out.usage.shape == (model.codebook_size,)
    expected = {"recon_time", "recon_freq", "commitment", "perplexity"}
    if model.is_nc:
        expected |= {"aug_recon_time", "aug_recon_freq", "ssl"}
    assert set(out.terms) == expected
    assert all(t.ndim == 0 and torch.isfinite(t) for t in out.terms.values())
    assert not out.terms["perplexity"].requires_grad


@pytest.mark.parametrize("method", METHODS)
def test_loss_is_the_documented_sum(method: str) -> None:
    model = tiny(method, aug_recon_weight=0.3, ssl_weight=0.7).train()
    out = model(*views())
    t = out.terms
    expected = t["recon_time"] + t["recon_freq"] + t["commitment"]
    if model.is_nc:
        expected = expected + 0.3 * (t["aug_recon_time"] + t["aug_recon_freq"]) + 0.7 * t["ssl"]
    torch.testing.assert_close(out.loss, expected)
    x, _ = views()
    torch.testing.assert_close(t["recon_time"], ((out.x_hat - x) ** 2).mean())


def test_default_ssl_weights_follow_the_method() -> None:
    assert tiny("barlowtwins").ssl_weight == 1.0
    assert tiny("vibcreg").ssl_weight == 0.01
    assert tiny("vibcreg", ssl_weight=0.5).ssl_weight == 0.5
    assert not tiny("baseline").is_nc and tiny("barlowtwins").is_nc


@pytest.mark.parametrize("method", ["barlowtwins", "vibcreg"])
def test_ssl_gradient_reaches_encoder_through_both_branches_not_codebook(method: str) -> None:
    model = tiny(method).train()
    x, x_aug = views()
    out = model(x, x_aug)
    out.terms["ssl"].backward()
    enc_grad = sum(p.grad.abs().sum() for p in model.encoder.parameters() if p.grad is not None)
    assert enc_grad > 0
    assert all(p.grad is None for p in model.decoder.parameters())  # SSL does not touch the decoder
    assert not any(b.requires_grad for b in model.quantizer.buffers())

    # through the straight-through z_q alone: detach the augmented branch's contribution
    model.zero_grad()
    z = model.encoder(stft(x, model.n_fft))
    q = model.quantizer(z, update=False)
    z_a = model.encoder(stft(x_aug, model.n_fft)).detach()
    p, p_a = model.ssl_head.forward_pair(q.z_q, z_a)
    model.ssl_loss(p, p_a).backward()
    assert sum(p.grad.abs().sum() for p in model.encoder.parameters() if p.grad is not None) > 0


@pytest.mark.parametrize("method", METHODS)
def test_reconstruction_gradient_flows_through_straight_through(method: str) -> None:
    model = tiny(method).train()
    out = model(*views())
    out.terms["recon_time"].backward()
    first_conv = model.encoder.layers[0][0]
    assert first_conv.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("method", METHODS)
def test_eval_forward_and_inference_helpers_change_no_state(method: str) -> None:
    model = tiny(method)
    x, x_aug = views()
    before = state(model)
    model.eval()(x, x_aug)
    model(x)  # NC models may skip the augmented branch in eval mode
    assert_same_state(model, before)

    model.train()
    tokens = model.encode(x)
    model.encode(x, temperature=1.0, generator=torch.Generator().manual_seed(0))
    feats = model.pooled_features(x)
    z = model.encode_latents(x)
    x_dec = model.decode(tokens)
    assert_same_state(model, before)
    assert all(m.training for m in model.modules())  # flags restored
    assert tokens.shape == (6, model.n_tokens) and feats.shape == (6, model.code_dim)
    assert z.shape == (6, model.code_dim, *model.token_grid) and x_dec.shape == x.shape

    model(x, x_aug)  # a training forward moves the codebook and BatchNorm statistics
    assert not torch.equal(model.quantizer.embed, before["quantizer.embed"])
    assert not torch.equal(model.encoder.layers[0][1].running_mean, before["encoder.layers.0.1.running_mean"])


@pytest.mark.parametrize("method", METHODS)
def test_inference_helpers_agree_with_eval_forward(method: str) -> None:
    model = tiny(method)
    model(*views(seed=1))  # one training step of EMA/BN so the state is not the initial one
    model.eval()
    x, _ = views()
    out = model(x)
    assert torch.equal(model.encode(x), out.tokens)
    torch.testing.assert_close(model.decode(out.tokens), out.x_hat)
    z_q = model.quantizer.lookup(out.tokens).mean(1)  # average of the codes = pooled z_q
    torch.testing.assert_close(model.pooled_features(x), z_q)


def test_stochastic_encode_is_reproducible() -> None:
    model = tiny("baseline").eval()
    x, _ = views(batch=16)
    a = model.encode(x, temperature=1.0, generator=torch.Generator().manual_seed(3))
    b = model.encode(x, temperature=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, model.encode(x, temperature=100.0, generator=torch.Generator().manual_seed(4)))


@pytest.mark.parametrize("method", METHODS)
def test_save_load_round_trip(method: str, tmp_path) -> None:
    model = tiny(method, channels=2)
    x, x_aug = views(channels=2)
    model(x, x_aug)  # change buffers away from their initial values
    model.eval()
    path = tmp_path / "model.pt"
    torch.save({"config": json.loads(json.dumps(model.config_dict())), "model": model.state_dict()}, path)
    saved = torch.load(path, weights_only=True)
    torch.manual_seed(123)  # a different initialisation, overwritten by the state dict
    loaded = VQVAE.from_config(saved["config"])
    loaded.load_state_dict(saved["model"])
    loaded.eval()
    a, b = model(x, x_aug), loaded(x, x_aug)
    torch.testing.assert_close(a.x_hat, b.x_hat, rtol=0, atol=0)
    assert torch.equal(a.tokens, b.tokens)
    for key in a.terms:
        torch.testing.assert_close(a.terms[key], b.terms[key], rtol=0, atol=0)
    assert loaded.config_dict() == model.config_dict()


def test_build_tokenizer_from_stage1_config() -> None:
    model = build_tokenizer(Stage1Config(method="barlowtwins", hidden_dim=16, projector_dim=64), 3, 140)
    cfg = model.config_dict()
    assert (cfg["in_channels"], cfg["input_length"], cfg["method"]) == (3, 140, "barlowtwins")
    assert cfg["ssl_weight"] == 1.0 and cfg["projector_dim"] == 64 and cfg["codebook_size"] == 32
    assert model.token_grid == (5, 8) and model.n_tokens == 40
    assert model.codebook.shape == (32, 16)
    assert (model.in_channels, model.input_length, model.method) == (3, 140, "barlowtwins")


def test_defaults_match_the_thesis() -> None:
    model = build_tokenizer(Stage1Config(), 1, 140)
    assert model.method == "vibcreg" and model.code_dim == 64 and model.codebook_size == 32
    assert model.ssl_head.linear2.in_features == 4096 and model.ssl_head.whitening is not None
    assert model.quantizer.decay == 0.9 and model.aug_recon_weight == 0.2


def test_errors() -> None:
    model = tiny("vibcreg").train()
    x, _ = views()
    with pytest.raises(TrainingError, match="x_aug"):
        model(x)
    with pytest.raises(DataError, match="expected a \\(batch, 1, 40\\)"):
        model(torch.randn(2, 1, 41), None)
    with pytest.raises(DataError, match="tokens"):
        model.decode(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ConfigError, match="unknown method"):
        tiny("simclr")
    with pytest.raises(ConfigError, match="unknown key"):
        VQVAE.from_config({**model.config_dict(), "depth": 3})
    tiny("baseline").train()(x, None)  # the baseline needs no augmented view
