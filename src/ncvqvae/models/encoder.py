"""The convolutional encoder and decoder of the STFT VQ-VAE (SPEC §3), and the token-grid arithmetic.

The encoder maps a time-frequency image u (B, 2C, F, T) to latents z (B, D, F, W'): ``n_down``
down-blocks halve the time axis (Conv2d kernel (3, 4), stride (1, 2), padding (1, 1), replicate padding;
the frequency axis is never downsampled), then ``n_res_blocks`` residual blocks each followed by a
BatchNorm2d. The decoder mirrors it and ends with a bilinear resize to the exact STFT size, which is
computed here from the series length (the reference registered it lazily on the first forward pass).

Geometry (:func:`stage1_geometry`)::

    rate   = round(L / (log2(n_fft) - 1) / downsampled_width)     (1 when L < downsampled_width)
    n_down = max(1, floor(log2(rate)))                             (the first block always exists)
    F, T   = n_fft // 2 + 1, L // (n_fft // 4) + 1                 (STFT size)
    W'     = T after n_down times  w -> (w - 2) // 2 + 1           (conv arithmetic, kernel 4 stride 2 pad 1)

With the thesis defaults this gives the token grids of SPEC §3, e.g. ECG5000 (L = 140) → 5 × 8,
FordA (L = 500) → 5 × 15.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ncvqvae.errors import ConfigError
from ncvqvae.models.stft import stft_shape

__all__ = [
    "Encoder",
    "Decoder",
    "ResBlock",
    "Stage1Geometry",
    "stage1_geometry",
    "downsample_rate",
    "token_grid",
]


# --------------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------------


def downsample_rate(input_length: int, n_fft: int = 8, downsampled_width: int = 8) -> int:
    """The reference's downsample rate: ``round(L / (log2(n_fft) − 1) / downsampled_width)``.

    Python's ``round`` (half to even) is what the reference used, so ``L = 152`` gives 10. A result of
    0 (only possible for ``L`` just at ``downsampled_width``) is raised to 1.
    """
    if input_length < downsampled_width:
        return 1
    log2_n_fft = n_fft.bit_length() - 1  # exact for the power-of-two n_fft
    return max(1, round(input_length / (log2_n_fft - 1) / downsampled_width))


def _down_width(width: int) -> int:
    # Output width of Conv2d(kernel 4, stride 2, padding 1) along time.
    return (width + 2 * 1 - 4) // 2 + 1


@dataclass(frozen=True)
class Stage1Geometry:
    """Every size of the stage-1 network, derived from the series length.

    Attributes:
        input_length: series length L.
        rate: the reference's downsample rate.
        n_down: number of encoder down-blocks (the decoder has ``n_down − 1`` up-blocks plus two
            final transposed convolutions).
        stft_size: (F, T) of the time-frequency image.
        token_grid: (H', W') of the latent grid; ``H' = F``.
        decoder_width: time width the decoder produces before the final bilinear resize.
    """

    input_length: int
    rate: int
    n_down: int
    stft_size: tuple[int, int]
    token_grid: tuple[int, int]
    decoder_width: int

    @property
    def n_tokens(self) -> int:
        return self.token_grid[0] * self.token_grid[1]


def stage1_geometry(input_length: int, n_fft: int = 8, downsampled_width: int = 8) -> Stage1Geometry:
    """Compute the sizes of the encoder, token grid and decoder for series of ``input_length``.

    Raises:
        ConfigError: when ``n_fft`` is not a power of two ≥ 4 or the series is too short to be
            downsampled ``n_down`` times.
    """
    if n_fft < 4 or n_fft & (n_fft - 1):
        raise ConfigError(f"stage1.n_fft must be a power of two >= 4, got {n_fft}")
    if input_length < n_fft:
        raise ConfigError(f"series length {input_length} is shorter than stage1.n_fft = {n_fft}")
    if downsampled_width < 1:
        raise ConfigError(f"stage1.downsampled_width must be >= 1, got {downsampled_width}")
    rate = downsample_rate(input_length, n_fft, downsampled_width)
    # floor(log2(rate)) down-blocks; the reference always builds the first (2C → D) block.
    n_down = max(1, rate.bit_length() - 1)
    freq, time = stft_shape(input_length, n_fft)
    width = time
    for _ in range(n_down):
        if width < 2:
            raise ConfigError(
                f"series length {input_length} is too short for {n_down} down-blocks "
                f"(stage1.downsampled_width = {downsampled_width})"
            )
        width = _down_width(width)
    # Each transposed conv (kernel 4, stride 2, padding 1) doubles the width: n_down − 1 blocks + 2 final.
    decoder_width = width * 2 ** (n_down + 1)
    return Stage1Geometry(input_length, rate, n_down, (freq, time), (freq, width), decoder_width)


def token_grid(input_length: int, n_fft: int = 8, downsampled_width: int = 8) -> tuple[int, int]:
    """The latent token grid (H', W') for series of ``input_length`` (SPEC §3)."""
    return stage1_geometry(input_length, n_fft, downsampled_width).token_grid


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------


class ResBlock(nn.Module):
    """``x + [LeakyReLU → Conv 3×3 → (BN) → Dropout → LeakyReLU → Conv 1×1 → Dropout](x)``.

    The reference's encoder blocks have the inner BatchNorm and its decoder blocks do not; both are
    followed by a BatchNorm2d outside the block (see :class:`Encoder`, :class:`Decoder`).
    """

    def __init__(self, dim: int, *, batch_norm: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.LeakyReLU(),
            nn.Conv2d(dim, dim, kernel_size=3, padding=1),
            nn.BatchNorm2d(dim) if batch_norm else nn.Identity(),
            nn.Dropout(dropout),
            nn.LeakyReLU(inplace=True),
            nn.Conv2d(dim, dim, kernel_size=1),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, D, H, W) → (B, D, H, W)."""
        return x + self.body(x)


def _down_block(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_dim, out_dim, kernel_size=(3, 4), stride=(1, 2), padding=(1, 1), padding_mode="replicate"
        ),
        nn.BatchNorm2d(out_dim),
        nn.LeakyReLU(inplace=True),
        nn.Dropout(dropout),
    )


def _up_block(dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(dim, dim, kernel_size=(3, 4), stride=(1, 2), padding=(1, 1)),
        nn.BatchNorm2d(dim),
        nn.LeakyReLU(inplace=True),
        nn.Dropout(dropout),
    )


def _res_stack(dim: int, n_blocks: int, *, batch_norm: bool, dropout: float) -> list[nn.Sequential]:
    # Each residual block is followed by a BatchNorm2d outside it (SPEC §3).
    return [
        nn.Sequential(ResBlock(dim, batch_norm=batch_norm, dropout=dropout), nn.BatchNorm2d(dim))
        for _ in range(n_blocks)
    ]


def _up_conv(in_dim: int, out_dim: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(in_dim, out_dim, kernel_size=(3, 4), stride=(1, 2), padding=(1, 1))


# --------------------------------------------------------------------------------------------------
# Encoder / decoder
# --------------------------------------------------------------------------------------------------


class Encoder(nn.Module):
    """Time-frequency image → latent grid (SPEC §3).

    Args:
        in_channels: channels of the time-frequency image (2C: real and imaginary part per channel).
        hidden_dim: width D of every layer (= code dimension).
        n_down: number of (3, 4)/(1, 2) down-blocks (see :func:`stage1_geometry`).
        n_res_blocks: residual blocks after the down-blocks.
        dropout: dropout probability (0 in the thesis).
    """

    def __init__(
        self,
        in_channels: int,
        *,
        hidden_dim: int = 64,
        n_down: int = 3,
        n_res_blocks: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            _down_block(in_channels, hidden_dim, dropout),
            *[_down_block(hidden_dim, hidden_dim, dropout) for _ in range(n_down - 1)],
            *_res_stack(hidden_dim, n_res_blocks, batch_norm=True, dropout=dropout),
        )

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """u (B, 2C, F, T) → z (B, D, F, W')."""
        return self.layers(u)


class Decoder(nn.Module):
    """Latent grid → time-frequency image of exactly ``output_size`` (SPEC §3).

    Args:
        out_channels: channels of the time-frequency image (2C).
        output_size: (F, T), the STFT size of the series (computed from the length, never lazily).
        hidden_dim: width D.
        n_down: the encoder's number of down-blocks; the decoder has ``n_down − 1`` up-blocks, then
            ConvTranspose2d D → 2C and one more 2C → 2C.
        n_res_blocks: residual blocks (without inner BatchNorm, as in the reference) before upsampling.
        dropout: dropout probability.
    """

    def __init__(
        self,
        out_channels: int,
        output_size: tuple[int, int],
        *,
        hidden_dim: int = 64,
        n_down: int = 3,
        n_res_blocks: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.layers = nn.Sequential(
            *_res_stack(hidden_dim, n_res_blocks, batch_norm=False, dropout=dropout),
            *[_up_block(hidden_dim, dropout) for _ in range(n_down - 1)],
            _up_conv(hidden_dim, out_channels),
            _up_conv(out_channels, out_channels),  # the reference's extra upsampling, for detail
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D, H', W') → û (B, 2C, F, T)."""
        out = self.layers(z)
        return F.interpolate(out, size=self.output_size, mode="bilinear", align_corners=True)
