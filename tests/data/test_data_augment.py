"""Property and reference tests of the batched augmentations (SPEC §3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ncvqvae.config import AugmentationConfig
from ncvqvae.data.augment import (
    AUGMENTATIONS,
    AmplitudeResize,
    Augmentation,
    GaussianNoise,
    SliceShuffle,
    Warp,
    WindowWarp,
    build_augmentation,
)
from ncvqvae.errors import ConfigError, DataError


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def clone(generator: torch.Generator) -> torch.Generator:
    twin = torch.Generator()
    twin.set_state(generator.get_state())
    return twin


def window_warp_reference(x: np.ndarray, start: int, scale: float, window_ratio: float = 0.4) -> np.ndarray:
    """SPEC §3 window warp of one univariate series, written as the two numpy resamplings."""
    length = len(x)
    w = int(np.floor(window_ratio * length + 0.5))
    n_win = max(int(np.float32(w) * np.float32(scale)), 1)
    window = np.interp(np.linspace(0, w - 1, n_win), np.arange(w), x[start : start + w])
    warped = np.concatenate([x[:start], window, x[start + w :]])
    return np.interp(np.arange(length), np.linspace(0, length - 1, len(warped)), warped)


ALL_NAMES = sorted(AUGMENTATIONS)


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_dtype_device_and_determinism(name: str, dtype: torch.dtype) -> None:
    aug = build_augmentation(AugmentationConfig(names=(name,)))
    x = torch.randn(6, 2, 37, generator=gen(1), dtype=dtype)
    out = aug(x, gen(5))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert torch.isfinite(out).all()
    assert torch.equal(out, aug(x, gen(5)))  # same seed → same view
    assert not torch.equal(out, aug(x, gen(6)))  # another seed → another view
    assert torch.equal(x, torch.randn(6, 2, 37, generator=gen(1), dtype=dtype))  # input untouched


def test_composition_is_left_to_right_and_empty_is_identity() -> None:
    x = torch.randn(4, 1, 50, generator=gen())
    cfg = AugmentationConfig(names=("slice", "gauss"))
    g = gen(3)
    expected = GaussianNoise(cfg.gauss_std)(SliceShuffle(cfg.n_cuts)(x, g), g)
    assert torch.equal(build_augmentation(cfg)(x, gen(3)), expected)
    identity = build_augmentation(AugmentationConfig(names=()))
    assert identity.transforms == () and torch.equal(identity(x, gen()), x)


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ConfigError, match="'jitter'.*warp.*slice.*gauss"):
        build_augmentation(AugmentationConfig(names=("warp", "jitter")))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"window_ratio": 0.0}, "window_ratio"),
        ({"window_ratio": 1.5}, "window_ratio"),
        ({"warp_scale_min": 3.0}, "warp_scale_min"),
        ({"amplitude_std": -1.0}, "amplitude_std"),
        ({"n_cuts": -1}, "n_cuts"),
        ({"gauss_std": -0.1}, "gauss_std"),
    ],
)
def test_bad_parameters_name_the_field(changes: dict, field: str) -> None:
    names = ("warp", "slice", "gauss")
    with pytest.raises(ConfigError, match=field):
        build_augmentation(AugmentationConfig(names=names, **changes))


def test_rejects_non_batch_input() -> None:
    with pytest.raises(DataError, match=r"\(B, C, L\)"):
        Augmentation()(torch.zeros(10), gen())


def test_gauss_noise_std() -> None:
    x = torch.zeros(256, 2, 200)
    out = GaussianNoise(0.05)(x, gen())
    assert abs(out.mean().item()) < 2e-3
    assert out.std().item() == pytest.approx(0.05, rel=0.02)
    # i.i.d. per channel: the two channels' noises are not the same draw
    assert not torch.equal(out[:, 0], out[:, 1])


def test_slice_is_a_permutation_of_four_segments() -> None:
    length = 60
    x = torch.arange(length, dtype=torch.float32).expand(500, 1, length).contiguous()
    out = SliceShuffle(3)(x, gen())
    # same multiset of values per sample
    assert torch.equal(out.sort(dim=-1).values, x)
    # at most 3 places where the output does not continue the previous source segment
    breaks = (out[:, 0, 1:] - out[:, 0, :-1] != 1).sum(dim=-1)
    assert breaks.max().item() <= 3
    assert (breaks > 0).float().mean() > 0.5  # and it does shuffle most of the time


def test_slice_matches_per_sample_reference() -> None:
    x = torch.randn(64, 3, 41, generator=gen(2))
    transform = SliceShuffle(3)
    g = gen(7)
    draw = transform.draw(64, 41, clone(g), x.device)
    out = transform(x, g)
    xs = x.numpy()
    for b in range(64):
        cuts = draw.cuts[b].tolist()
        bounds = [0, *cuts, 41]
        assert cuts == sorted(cuts) and all(0 <= c <= 41 for c in cuts)
        assert sorted(draw.order[b].tolist()) == [0, 1, 2, 3]
        pieces = [xs[b, :, bounds[j] : bounds[j + 1]] for j in draw.order[b].tolist()]
        np.testing.assert_array_equal(out[b].numpy(), np.concatenate(pieces, axis=1))


def test_slice_empty_segments_and_zero_cuts() -> None:
    x = torch.arange(10, dtype=torch.float32).reshape(1, 1, 10)
    transform = SliceShuffle(3)
    # cuts at the ends and a repeated cut: only two non-empty pieces, [0, 4) and [4, 10)
    from ncvqvae.data.augment import SliceDraw

    draw = SliceDraw(cuts=torch.tensor([[0, 4, 4]]), order=torch.tensor([[2, 0, 3, 1]]))
    assert transform.apply(x, draw)[0, 0].tolist() == [4, 5, 6, 7, 8, 9, 0, 1, 2, 3]
    assert torch.equal(SliceShuffle(0)(x, gen()), x)


def test_window_warp_matches_numpy_two_step_reference() -> None:
    for length in (9, 50, 101):
        x = torch.randn(200, 1, length, generator=gen(length), dtype=torch.float64)
        transform = WindowWarp()
        g = gen(11)
        draw = transform.draw(200, length, clone(g), x.device)
        out = transform(x, g)
        w = transform.window_size(length)
        assert w == round(0.4 * length)
        assert draw.starts.min() >= 0 and draw.starts.max() < length - w
        assert draw.scales.min() >= 0.9 and draw.scales.max() <= 2.0
        for b in range(200):
            ref = window_warp_reference(x[b, 0].numpy(), int(draw.starts[b]), float(draw.scales[b]))
            np.testing.assert_allclose(out[b, 0].numpy(), ref, rtol=1e-9, atol=1e-9)


def test_window_warp_keeps_length_endpoints_and_order() -> None:
    length = 80
    ramp = torch.linspace(-1, 1, length).expand(300, 1, length).contiguous()
    out = WindowWarp()(ramp, gen())
    assert out.shape == ramp.shape
    # endpoints stay, and a monotone series stays monotone (the time map is increasing)
    assert torch.allclose(out[..., 0], ramp[..., 0]) and torch.allclose(out[..., -1], ramp[..., -1])
    assert (out.diff(dim=-1) >= -1e-6).all()
    assert not torch.allclose(out, ramp)  # but it is warped


def test_multivariate_channels_share_the_warp_and_slice() -> None:
    base = torch.randn(16, 1, 64, generator=gen())
    x = torch.cat([base, 3 * base - 1], dim=1)  # channel 1 is an affine function of channel 0
    for transform in (WindowWarp(), SliceShuffle(3), AmplitudeResize(0.2)):
        out = transform(x, gen(4))
        if isinstance(transform, AmplitudeResize):  # the factor multiplies the offset too
            factor = out[:, :1] / base
            torch.testing.assert_close(out[:, 1:], 3 * out[:, :1] - factor)
        else:
            torch.testing.assert_close(out[:, 1:], 3 * out[:, :1] - 1)
        univariate = transform(base, gen(4))
        torch.testing.assert_close(out[:, :1], univariate)  # channel count does not change the draw


def test_amplitude_resize_scales_by_the_drawn_factor() -> None:
    x = torch.randn(32, 2, 20, generator=gen())
    g = gen(9)
    factors = 1 + 0.2 * torch.randn((32, 1, 1), generator=clone(g))
    out = AmplitudeResize(0.2)(x, g)
    torch.testing.assert_close(out, x * factors)
    assert factors.std().item() == pytest.approx(0.2, rel=0.5)


def test_warp_is_window_warp_then_amplitude() -> None:
    x = torch.randn(8, 1, 30, generator=gen())
    g = gen(2)
    twin = clone(g)
    expected = AmplitudeResize(0.2)(WindowWarp()(x, twin), twin)
    assert torch.equal(Warp()(x, g), expected)
    assert torch.equal(g.get_state(), twin.get_state())  # and draws nothing else


def test_tiny_series_do_not_fail() -> None:
    for length in (1, 2, 3):
        x = torch.randn(5, 1, length, generator=gen())
        for name in ALL_NAMES:
            out = build_augmentation(AugmentationConfig(names=(name,)))(x, gen())
            assert out.shape == x.shape and torch.isfinite(out).all()


def test_warp_covering_the_whole_series() -> None:
    x = torch.randn(10, 1, 25, generator=gen(), dtype=torch.float64)
    transform = WindowWarp(window_ratio=1.0)
    g = gen(1)
    draw = transform.draw(10, 25, clone(g), x.device)
    out = transform(x, g)
    assert (draw.starts == 0).all()
    for b in range(10):
        ref = window_warp_reference(x[b, 0].numpy(), 0, float(draw.scales[b]), window_ratio=1.0)
        np.testing.assert_allclose(out[b, 0].numpy(), ref, atol=1e-9)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_with_a_cuda_generator() -> None:
    x = torch.randn(16, 2, 64, generator=gen()).cuda()
    for name in ALL_NAMES:
        aug = build_augmentation(AugmentationConfig(names=(name,)))
        out = aug(x, torch.Generator(device="cuda").manual_seed(1))
        assert out.device == x.device and out.shape == x.shape
        assert torch.equal(out, aug(x, torch.Generator(device="cuda").manual_seed(1)))
