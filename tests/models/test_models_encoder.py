"""Encoder / decoder: the token grids of SPEC §3 for the thesis datasets, layer structure, output sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ncvqvae.errors import ConfigError
from ncvqvae.models.encoder import Decoder, Encoder, downsample_rate, stage1_geometry, token_grid
from ncvqvae.models.stft import stft

# The 13 thesis datasets' lengths and the grids SPEC §3 lists for them (FordA and FordB share one entry).
THESIS_GRIDS = {
    "StarLightCurves": (1024, (5, 8)),
    "Wafer": (152, (5, 9)),
    "ECG5000": (140, (5, 8)),
    "SonyAIBORobotSurface1": (70, (5, 9)),
    "SonyAIBORobotSurface2": (65, (5, 8)),
    "ElectricDevices": (96, (5, 12)),
    "TwoPatterns": (128, (5, 8)),
    "FordA": (500, (5, 15)),
    "UWaveGestureLibraryAll": (945, (5, 14)),
    "FordB": (500, (5, 15)),
    "ShapesAll": (512, (5, 8)),
    "Symbols": (398, (5, 12)),
    "Mallat": (1024, (5, 8)),
}


@pytest.mark.parametrize("name", sorted(THESIS_GRIDS))
def test_token_grid_of_thesis_datasets(name: str) -> None:
    length, grid = THESIS_GRIDS[name]
    assert token_grid(length) == grid


@pytest.mark.parametrize("name", ["ECG5000", "SonyAIBORobotSurface2", "FordA", "UWaveGestureLibraryAll"])
def test_networks_produce_the_computed_sizes(name: str) -> None:
    length, grid = THESIS_GRIDS[name]
    geo = stage1_geometry(length)
    enc = Encoder(2, hidden_dim=8, n_down=geo.n_down, n_res_blocks=1)
    dec = Decoder(2, geo.stft_size, hidden_dim=8, n_down=geo.n_down, n_res_blocks=1)
    u = stft(torch.randn(2, 1, length))
    z = enc(u)
    assert z.shape == (2, 8, *grid)
    assert dec.layers(z).shape[-1] == geo.decoder_width  # before the bilinear resize
    assert dec(z).shape == u.shape


def test_downsample_rate_formula() -> None:
    # round(L / 2 / 8) with Python's half-to-even rounding (Wafer: 9.5 → 10), 1 below the target width
    assert downsample_rate(140) == 9
    assert downsample_rate(152) == 10
    assert downsample_rate(500) == 31
    assert downsample_rate(7) == 1
    assert stage1_geometry(140).n_down == 3  # floor(log2(9))
    assert stage1_geometry(1024).n_down == 6


def test_short_series_keep_the_first_block() -> None:
    geo = stage1_geometry(8)
    assert geo.rate == 1 and geo.n_down == 1
    enc = Encoder(2, hidden_dim=4, n_down=geo.n_down, n_res_blocks=1)
    assert enc(stft(torch.randn(2, 1, 8))).shape[-2:] == geo.token_grid


def test_layer_structure_follows_spec() -> None:
    enc = Encoder(4, hidden_dim=64, n_down=3, n_res_blocks=4)
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 4)]
    assert len(convs) == 3
    assert convs[0].in_channels == 4 and convs[0].out_channels == 64
    assert all(c.stride == (1, 2) and c.padding == (1, 1) and c.padding_mode == "replicate" for c in convs)
    assert sum(isinstance(m, nn.LeakyReLU) for m in enc.modules()) == 3 + 4 * 2

    dec = Decoder(4, (5, 71), hidden_dim=64, n_down=3, n_res_blocks=4)
    tconvs = [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(t.in_channels, t.out_channels) for t in tconvs] == [(64, 64), (64, 64), (64, 4), (4, 4)]
    # decoder residual blocks have no inner BatchNorm (reference), each is followed by one
    assert sum(isinstance(m, nn.BatchNorm2d) for m in dec.modules()) == 4 + 2


def test_bad_geometry_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="n_fft"):
        stage1_geometry(140, n_fft=6)
    with pytest.raises(ConfigError, match="shorter"):
        stage1_geometry(4)
