"""STFT / ISTFT: shapes, agreement with the DFT written out in numpy, exact round trip for any length."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ncvqvae.errors import DataError
from ncvqvae.models.stft import istft, stft, stft_shape


def numpy_stft(series: np.ndarray, n_fft: int) -> np.ndarray:
    """Centred (reflect-padded) STFT of one series with a periodic Hann window, frame by frame."""
    hop = n_fft // 4
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    padded = np.pad(series, n_fft // 2, mode="reflect")
    n_frames = 1 + (len(padded) - n_fft) // hop
    out = np.zeros((n_fft // 2 + 1, n_frames), dtype=complex)
    for t in range(n_frames):
        frame = padded[t * hop : t * hop + n_fft] * window
        for f in range(n_fft // 2 + 1):
            out[f, t] = sum(frame[n] * np.exp(-2j * np.pi * f * n / n_fft) for n in range(n_fft))
    return out


@pytest.mark.parametrize("length", [8, 9, 140, 152])
@pytest.mark.parametrize("channels", [1, 3])
def test_stft_shape(length: int, channels: int) -> None:
    x = torch.randn(2, channels, length)
    u = stft(x)
    assert u.shape == (2, 2 * channels, 5, length // 2 + 1)
    assert stft_shape(length) == u.shape[2:]


def test_stft_matches_numpy_dft_and_channel_order() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 21, generator=gen, dtype=torch.float64)
    u = stft(x).numpy()
    for b in range(2):
        for c in range(2):
            ref = numpy_stft(x[b, c].numpy(), 8)
            np.testing.assert_allclose(u[b, 2 * c], ref.real, atol=1e-10)
            np.testing.assert_allclose(u[b, 2 * c + 1], ref.imag, atol=1e-10)


@pytest.mark.parametrize("length", [8, 9, 65, 70, 141, 500])
@pytest.mark.parametrize("channels", [1, 2])
def test_istft_inverts_stft_for_any_length(length: int, channels: int) -> None:
    x = torch.randn(3, channels, length, dtype=torch.float64)
    x_back = istft(stft(x), length)
    assert x_back.shape == x.shape
    torch.testing.assert_close(x_back, x, atol=1e-10, rtol=0)


def test_other_n_fft_round_trip() -> None:
    x = torch.randn(2, 1, 64, dtype=torch.float64)
    u = stft(x, n_fft=16)
    assert u.shape == (2, 2, 9, 64 // 4 + 1)
    torch.testing.assert_close(istft(u, 64, n_fft=16), x, atol=1e-10, rtol=0)


def test_bad_input_is_rejected() -> None:
    with pytest.raises(DataError, match="at least"):
        stft(torch.randn(2, 1, 7))
    with pytest.raises(DataError, match="batch, channels, length"):
        stft(torch.randn(2, 16))
    with pytest.raises(DataError, match="2·channels"):
        istft(torch.randn(2, 3, 5, 9), 16)
