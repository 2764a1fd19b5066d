"""EMA vector quantizer: nearest code, EMA maths (written out in numpy), training-only updates,
straight-through gradient, usage/perplexity, stochastic code sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ncvqvae.models.vq import VectorQuantizer


def make_vq(k: int = 8, d: int = 4) -> VectorQuantizer:
    torch.manual_seed(0)
    return VectorQuantizer(k, d, decay=0.9, eps=1e-5, commitment_weight=1.0)


def test_nearest_code_and_shapes() -> None:
    vq = make_vq().eval()
    z = torch.randn(3, 4, 2, 5)
    out = vq(z)
    assert out.z_q.shape == z.shape and out.indices.shape == (3, 10)
    codes = vq.codebook.numpy()
    for b in range(3):
        for h in range(2):
            for w in range(5):
                vec = z[b, :, h, w].numpy()
                nearest = int(np.argmin(((codes - vec) ** 2).sum(1)))
                assert out.indices[b, h * 5 + w] == nearest  # row-major over (H, W)
                np.testing.assert_allclose(out.z_q[b, :, h, w].detach().numpy(), codes[nearest], rtol=1e-6)
    d = vq.distances(z[:, :, 0, 0])
    ref = ((z[:, :, 0, 0, None] - vq.codebook.t()[None]) ** 2).sum(1)
    torch.testing.assert_close(d, ref, rtol=1e-5, atol=1e-5)


def test_ema_update_matches_formula_and_happens_only_in_training() -> None:
    vq = make_vq()
    before = {k: v.clone() for k, v in vq.state_dict().items()}
    z = torch.randn(4, 4, 1, 6)
    vq.eval()(z)
    for k, v in vq.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    vq.train()(z, update=False)
    for k, v in vq.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)

    out = vq.train()(z)
    # the reference's EMA with Laplace smoothing, in float64 numpy
    flat = z.permute(0, 2, 3, 1).reshape(-1, 4).double().numpy()
    idx = out.indices.reshape(-1).numpy()
    counts = np.bincount(idx, minlength=8).astype(float)
    sums = np.stack([flat[idx == k].sum(0) if (idx == k).any() else np.zeros(4) for k in range(8)])
    cluster = 0.9 * before["cluster_size"].double().numpy() + 0.1 * counts
    embed_avg = 0.9 * before["embed_avg"].double().numpy() + 0.1 * sums
    n = cluster.sum()
    smoothed = (cluster + 1e-5) / (n + 8 * 1e-5) * n
    np.testing.assert_allclose(vq.cluster_size.numpy(), cluster, rtol=1e-5)
    np.testing.assert_allclose(vq.embed_avg.numpy(), embed_avg, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vq.embed.numpy(), embed_avg / smoothed[:, None], rtol=1e-4)
    # z_q used the codebook from before the update
    np.testing.assert_allclose(
        out.z_q.detach().permute(0, 2, 3, 1).reshape(-1, 4).numpy(), before["embed"].numpy()[idx], rtol=1e-6
    )


def test_straight_through_gradient_and_commitment() -> None:
    vq = make_vq().train()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = vq(z)
    weight = torch.randn_like(z)
    (out.z_q * weight).sum().backward()
    torch.testing.assert_close(z.grad, weight)  # identity gradient through the quantizer
    torch.testing.assert_close(out.commitment_loss, ((z - out.z_q) ** 2).mean())
    z.grad = None
    out = vq(z)
    out.commitment_loss.backward()
    torch.testing.assert_close(z.grad, 2 * (z - out.z_q).detach() / z.numel())
    assert all(not b.requires_grad for b in vq.buffers())


def test_usage_and_perplexity() -> None:
    vq = make_vq(k=4, d=2).eval()
    vq.embed.copy_(torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]]))
    z = vq.embed.t().reshape(1, 2, 2, 2).clone()  # one vector on each code
    out = vq(z)
    torch.testing.assert_close(out.usage, torch.full((4,), 0.25))
    assert out.perplexity.item() == pytest.approx(4.0, rel=1e-5)
    out = vq(torch.zeros(1, 2, 2, 2))  # everything on code 0
    assert out.usage.tolist() == [1.0, 0.0, 0.0, 0.0]
    assert out.perplexity.item() == pytest.approx(1.0, rel=1e-5)


def test_sample_codes() -> None:
    vq = make_vq(k=3, d=2)
    vq.embed.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]]))
    z = torch.zeros(20000, 2)
    nearest = vq.sample_codes(z, 0.0)
    assert (nearest == 0).all()
    draws = vq.sample_codes(z, 1.0, torch.Generator().manual_seed(1))
    again = vq.sample_codes(z, 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(draws, again)
    expected = torch.softmax(-torch.tensor([0.0, 1.0, 4.0]), 0)
    freq = torch.bincount(draws, minlength=3).double() / len(draws)
    torch.testing.assert_close(freq, expected.double(), atol=0.015, rtol=0)
