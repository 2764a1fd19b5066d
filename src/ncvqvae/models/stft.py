"""Short-time Fourier transform of multichannel series, real and imaginary parts as channels (SPEC §3).

Every channel is transformed on its own with a Hann window of ``n_fft`` samples, hop ``n_fft // 4``,
centred (reflect padding), not normalised. The complex spectrum is split into real and imaginary
parts, which become channels in the order ``(c0.re, c0.im, c1.re, c1.im, ...)``. With the thesis'
``n_fft = 8`` a series (B, C, L) becomes a time-frequency image (B, 2C, 5, ⌊L/2⌋ + 1).

The inverse takes the original length explicitly, so odd lengths come back exactly (the reference
dropped a sample for odd L and patched it afterwards).
"""

from __future__ import annotations

import torch
from einops import rearrange

from ncvqvae.errors import DataError

__all__ = ["stft", "istft", "stft_shape"]


def _window(n_fft: int, like: torch.Tensor) -> torch.Tensor:
    # Built on the input's device and dtype so the functions never pick a device themselves; a Hann
    # window of 8 samples costs nothing to rebuild per call.
    return torch.hann_window(n_fft, device=like.device, dtype=like.dtype)


def stft_shape(length: int, n_fft: int = 8) -> tuple[int, int]:
    """The (frequency, time) size of the transform of a series of ``length`` samples.

    Args:
        length: number of time points L.
        n_fft: FFT size; the hop is ``n_fft // 4``.

    Returns:
        ``(n_fft // 2 + 1, L // hop + 1)``, e.g. ``(5, L // 2 + 1)`` for ``n_fft = 8``.
    """
    return n_fft // 2 + 1, length // (n_fft // 4) + 1


def stft(x: torch.Tensor, n_fft: int = 8) -> torch.Tensor:
    """Transform every channel of ``x`` and stack real and imaginary parts as channels.

    Args:
        x: float tensor (B, C, L) with L ≥ ``n_fft``.
        n_fft: FFT size (Hann window of the same length, hop ``n_fft // 4``).

    Returns:
        u: tensor (B, 2C, n_fft // 2 + 1, L // hop + 1); channel ``2c`` is the real and ``2c + 1`` the
        imaginary part of channel ``c``.

    Raises:
        DataError: when ``x`` is not 3-D or shorter than ``n_fft``.
    """
    if x.ndim != 3:
        raise DataError(f"stft expects a (batch, channels, length) tensor, got shape {tuple(x.shape)}")
    if x.shape[-1] < n_fft:  # reflect padding of the centred transform needs L > n_fft // 2
        raise DataError(f"stft needs series of at least n_fft = {n_fft} time points, got {x.shape[-1]}")
    n_channels = x.shape[1]
    spec = torch.stft(
        rearrange(x, "b c l -> (b c) l"),
        n_fft,
        hop_length=n_fft // 4,
        window=_window(n_fft, x),
        center=True,
        normalized=False,
        onesided=True,
        return_complex=True,
    )  # ((B·C), F, T) complex
    return rearrange(torch.view_as_real(spec), "(b c) f t z -> b (c z) f t", c=n_channels)


def istft(u: torch.Tensor, length: int, n_fft: int = 8) -> torch.Tensor:
    """Invert :func:`stft`: real/imaginary channel pairs back to series of exactly ``length`` samples.

    Args:
        u: tensor (B, 2C, n_fft // 2 + 1, T) as returned by :func:`stft` (or a decoder's estimate of it).
        length: the series length L to return.
        n_fft: FFT size used by the forward transform.

    Returns:
        x: tensor (B, C, L).
    """
    if u.ndim != 4 or u.shape[1] % 2:
        raise DataError(f"istft expects a (batch, 2·channels, freq, time) tensor, got shape {tuple(u.shape)}")
    n_channels = u.shape[1] // 2
    # view_as_complex needs a contiguous trailing (re, im) axis of stride 1.
    spec = torch.view_as_complex(rearrange(u, "b (c z) f t -> (b c) f t z", z=2).contiguous())
    x = torch.istft(
        spec,
        n_fft,
        hop_length=n_fft // 4,
        window=_window(n_fft, u),
        center=True,
        normalized=False,
        onesided=True,
        length=length,
    )  # ((B·C), L)
    return rearrange(x, "(b c) l -> b c l", c=n_channels)
