"""The augmentations that make NC-VQVAE's second view (SPEC §3), applied to whole batches in torch.

Three augmentations from the thesis, each exactly as SPEC §3 states it:

* **Warp** = window warp then amplitude resize. Window warp: a window of ``round(0.4·L)`` samples
  starting uniformly in ``[0, L − w)`` is linearly resampled to ``int(w·s)`` points, ``s ~ U(0.9, 2.0)``,
  and the whole (now longer or shorter) series is linearly resampled back to ``L``. Amplitude resize
  multiplies each series by ``1 + N(0, 0.2)``.
* **Slice** = slice and shuffle: 3 cut points drawn uniformly in ``[0, L]`` with replacement (empty
  segments allowed); the 4 segments are put in a random order and concatenated.
* **Gauss** = adds i.i.d. ``N(0, 0.05)`` to every time step of every channel.

Every transform takes a batch ``x`` (B, C, L) and a ``torch.Generator`` on ``x``'s device, and draws all
its randomness from that generator, so the same seed gives the same views (the reference code drew from
an unseeded global numpy RNG). The work is batched: each sample's random parameters become index
tensors and one ``gather`` per step does the rest, with no Python loop over samples. A series' channels
share their warp, cut points, segment order and amplitude factor, so a multivariate series is deformed
as one object; only the Gaussian noise is drawn per channel.

The random draws are separated from the maths (``draw`` / ``apply``), so tests can replay a draw
against an independent per-sample reference. :func:`build_augmentation` composes the configured names
left to right; :data:`AUGMENTATIONS` maps each name to its factory, so adding one is one line.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ncvqvae.config import AugmentationConfig
from ncvqvae.errors import ConfigError, DataError

Transform = Callable[[Tensor, torch.Generator], Tensor]
"""An augmentation: ``(x (B, C, L), generator) -> x_aug (B, C, L)``."""


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _coord_dtype(x: Tensor) -> torch.dtype:
    # Fractional time coordinates need at least float32 precision, whatever the data's dtype.
    return torch.promote_types(x.dtype, torch.float32)


def _interp(x: Tensor, coords: Tensor) -> Tensor:
    """Linear interpolation of every channel of ``x`` at fractional time positions.

    Args:
        x: (B, C, N) series.
        coords: (B, K) positions in ``[0, N − 1]``, one row per sample, shared by its channels.

    Returns:
        (B, C, K) values, like ``np.interp(coords[b], arange(N), x[b, c])`` for every b, c.
    """
    n = x.shape[-1]
    lo = coords.floor().clamp(0, n - 1)
    frac = (coords - lo).to(x.dtype).unsqueeze(1)  # (B, 1, K), broadcast over channels
    lo = lo.long()
    hi = (lo + 1).clamp(max=n - 1)
    shape = (x.shape[0], x.shape[1], coords.shape[-1])
    x_lo = x.gather(2, lo.unsqueeze(1).expand(shape))
    x_hi = x.gather(2, hi.unsqueeze(1).expand(shape))
    return torch.lerp(x_lo, x_hi, frac)


def _check_batch(x: Tensor) -> None:
    if x.dim() != 3:
        raise DataError(f"augmentations expect a batch (B, C, L), got a tensor of shape {tuple(x.shape)}")


def _check(ok: bool, field: str, expected: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"augmentation: field '{field}' must be {expected}, got {value!r}")


# --------------------------------------------------------------------------------------------------
# Warp = window warp + amplitude resize
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarpDraw:
    """The random part of one window warp.

    Attributes:
        starts: (B,) int64 window starts in ``[0, L − w)``.
        scales: (B,) window scale factors ``s ~ U(scale_min, scale_max)``.
    """

    starts: Tensor
    scales: Tensor


@dataclass(frozen=True)
class WindowWarp:
    """Window warp (SPEC §3): stretch or squeeze one window, then resample the series back to L.

    For each series, ``w = round(window_ratio·L)``; the window ``x[a : a + w]`` (``a`` uniform in
    ``[0, L − w)``) is linearly resampled to ``int(w·s)`` points, and the resulting series of length
    ``L − w + int(w·s)`` is linearly resampled back to ``L``. The window is at least one point long
    after resampling (only reachable with ``w = 1`` or ``scale_min < 1/w``). Series too short for a
    window (``w = 0`` or ``L < 2``) are returned unchanged.

    Draws, in order: ``torch.randint`` (B,) for the starts, ``torch.rand`` (B,) for the scales.
    """

    window_ratio: float = 0.4
    scale_min: float = 0.9
    scale_max: float = 2.0

    def __post_init__(self) -> None:
        _check(0.0 < self.window_ratio <= 1.0, "window_ratio", "in (0, 1]", self.window_ratio)
        ok = 0.0 < self.scale_min <= self.scale_max
        _check(ok, "warp_scale_min", "in (0, warp_scale_max]", self.scale_min)

    def window_size(self, length: int) -> int:
        """``round(window_ratio · length)``, rounding halves up (not Python's banker's rounding)."""
        return math.floor(self.window_ratio * length + 0.5)

    def draw(self, batch: int, length: int, generator: torch.Generator, device: torch.device) -> WarpDraw:
        """Draw the window starts and scales of ``batch`` series of length ``length``."""
        high = max(length - self.window_size(length), 1)  # a window covering the series starts at 0
        starts = torch.randint(0, high, (batch,), generator=generator, device=device)
        unit = torch.rand(batch, generator=generator, device=device)
        return WarpDraw(starts=starts, scales=self.scale_min + (self.scale_max - self.scale_min) * unit)

    def apply(self, x: Tensor, draw: WarpDraw) -> Tensor:
        """Warp ``x`` (B, C, L) with a given draw; returns (B, C, L).

        Two gathers, one per resampling, rather than one gather at the composed coordinate: linear
        interpolation of an already interpolated series is not the same as interpolating the original
        at the composed position, and SPEC asks for the two-step result.
        """
        _, _, length = x.shape
        w = self.window_size(length)
        if w == 0 or length < 2:
            return x.clone()
        ct = _coord_dtype(x)
        # int(w·s) in float32, the draw's precision (float64 is unavailable on some accelerators)
        n_win = torch.floor(w * draw.scales.float()).long().clamp(min=1)  # (B,) resampled window length
        warped_len = length - w + n_win  # (B,) length of each series after the window is resampled
        a = draw.starts.to(ct).unsqueeze(1)  # (B, 1)
        nw = n_win.to(ct).unsqueeze(1)  # (B, 1)
        # Step 1: the warped series at its integer indices k, as source time coordinates of x.
        # Indices past a sample's own warped length are padding (clamped, never read in step 2).
        k = torch.arange(int(warped_len.max()), device=x.device, dtype=ct).unsqueeze(0)  # (1, M_max)
        step = (w - 1) / (nw - 1).clamp(min=1)  # np.linspace(0, w - 1, n_win) spacing; unused if n_win = 1
        inside = a + (k - a) * step
        after = k - nw + w
        src = torch.where(k < a, k, torch.where(k < a + nw, inside, after)).clamp(max=length - 1)
        warped = _interp(x, src)  # (B, C, M_max)
        # Step 2: resample the warped series (length M per sample) back to L points.
        t = torch.arange(length, device=x.device, dtype=ct).unsqueeze(0)  # (1, L)
        pos = t * (warped_len.to(ct).unsqueeze(1) - 1) / (length - 1)  # (B, L) positions in warped
        return _interp(warped, pos)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        _check_batch(x)
        return self.apply(x, self.draw(x.shape[0], x.shape[2], generator, x.device))


@dataclass(frozen=True)
class AmplitudeResize:
    """Amplitude resize (SPEC §3): ``x · (1 + N(0, std))``, one factor per series (all its channels).

    Draws: ``torch.randn`` of shape (B, 1, 1) in ``x``'s dtype.
    """

    std: float = 0.2

    def __post_init__(self) -> None:
        _check(self.std >= 0.0, "amplitude_std", ">= 0", self.std)

    def draw(
        self, batch: int, generator: torch.Generator, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """The (B, 1, 1) factors ``1 + std · N(0, 1)``."""
        return 1.0 + self.std * torch.randn((batch, 1, 1), generator=generator, device=device, dtype=dtype)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        _check_batch(x)
        return x * self.draw(x.shape[0], generator, x.device, x.dtype)


@dataclass(frozen=True)
class Warp:
    """The thesis' "Warp": :class:`WindowWarp` then :class:`AmplitudeResize` (SPEC §3)."""

    window_ratio: float = 0.4
    scale_min: float = 0.9
    scale_max: float = 2.0
    amplitude_std: float = 0.2

    def __post_init__(self) -> None:
        # Build both parts once, so bad parameters fail here rather than on the first batch.
        object.__setattr__(self, "_window", WindowWarp(self.window_ratio, self.scale_min, self.scale_max))
        object.__setattr__(self, "_amplitude", AmplitudeResize(self.amplitude_std))

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self._amplitude(self._window(x, generator), generator)


# --------------------------------------------------------------------------------------------------
# Slice and shuffle
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceDraw:
    """The random part of one slice-and-shuffle.

    Attributes:
        cuts: (B, n_cuts) int64 sorted cut points in ``[0, L]`` (repeats allowed: empty segments).
        order: (B, n_cuts + 1) int64; row b is a permutation, ``order[b, j]`` the source segment put j-th.
    """

    cuts: Tensor
    order: Tensor


@dataclass(frozen=True)
class SliceShuffle:
    """Slice and shuffle (SPEC §3): cut each series at ``n_cuts`` random points, shuffle the pieces.

    Draws, in order: ``torch.randint`` (B, n_cuts) for the cuts, ``torch.rand`` (B, n_cuts + 1) whose
    per-row argsort is the segment order (a batch of uniform random permutations; ``randperm`` gives
    only one per call).
    """

    n_cuts: int = 3

    def __post_init__(self) -> None:
        _check(isinstance(self.n_cuts, int) and self.n_cuts >= 0, "n_cuts", "an integer >= 0", self.n_cuts)

    def draw(self, batch: int, length: int, generator: torch.Generator, device: torch.device) -> SliceDraw:
        """Draw cut points and segment orders for ``batch`` series of length ``length``."""
        cuts = torch.randint(0, length + 1, (batch, self.n_cuts), generator=generator, device=device)
        keys = torch.rand(batch, self.n_cuts + 1, generator=generator, device=device)
        return SliceDraw(cuts=cuts.sort(dim=1).values, order=keys.argsort(dim=1))

    def apply(self, x: Tensor, draw: SliceDraw) -> Tensor:
        """Reassemble ``x`` (B, C, L) from its segments in the drawn order; returns (B, C, L)."""
        b, c, length = x.shape
        zero = torch.zeros((b, 1), dtype=torch.long, device=x.device)
        end = torch.full((b, 1), length, dtype=torch.long, device=x.device)
        bounds = torch.cat([zero, draw.cuts, end], dim=1)  # (B, S + 1) segment boundaries in x
        src_start = bounds[:, :-1].gather(1, draw.order)  # (B, S) start in x of the j-th output piece
        seg_len = bounds.diff(dim=1).gather(1, draw.order)  # (B, S) its length
        out_end = seg_len.cumsum(dim=1)  # (B, S) where the j-th output piece ends
        t = torch.arange(length, device=x.device).expand(b, length).contiguous()  # (B, L)
        # The output piece holding t is the first whose end lies beyond t; empty pieces are skipped.
        piece = torch.searchsorted(out_end, t, right=True)  # (B, L)
        offset = t - (out_end - seg_len).gather(1, piece)
        idx = src_start.gather(1, piece) + offset  # (B, L) source index of every output time step
        return x.gather(2, idx.unsqueeze(1).expand(b, c, length))

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        _check_batch(x)
        return self.apply(x, self.draw(x.shape[0], x.shape[2], generator, x.device))


# --------------------------------------------------------------------------------------------------
# Gaussian noise
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianNoise:
    """Gaussian noise (SPEC §3): ``x + N(0, std)`` i.i.d. per time step and channel.

    Draws: ``torch.randn`` of ``x``'s shape and dtype.
    """

    std: float = 0.05

    def __post_init__(self) -> None:
        _check(self.std >= 0.0, "gauss_std", ">= 0", self.std)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        _check_batch(x)
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + self.std * noise


# --------------------------------------------------------------------------------------------------
# Registry and composition
# --------------------------------------------------------------------------------------------------


AUGMENTATIONS: dict[str, Callable[[AugmentationConfig], Transform]] = {
    "warp": lambda cfg: Warp(cfg.window_ratio, cfg.warp_scale_min, cfg.warp_scale_max, cfg.amplitude_std),
    "window_warp": lambda cfg: WindowWarp(cfg.window_ratio, cfg.warp_scale_min, cfg.warp_scale_max),
    "amplitude_resize": lambda cfg: AmplitudeResize(cfg.amplitude_std),
    "slice": lambda cfg: SliceShuffle(cfg.n_cuts),
    "gauss": lambda cfg: GaussianNoise(cfg.gauss_std),
}
"""Augmentation name → factory taking the :class:`AugmentationConfig`."""


@dataclass(frozen=True)
class Augmentation:
    """The configured augmentations, applied left to right; no transforms = identity.

    Call as ``aug(x, generator)`` with ``x`` (B, C, L) on any device and ``generator`` a
    ``torch.Generator`` on that device; returns ``x_aug`` (B, C, L) (``x`` itself when empty).
    """

    names: tuple[str, ...] = ()
    transforms: tuple[Transform, ...] = ()

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        _check_batch(x)
        for transform in self.transforms:
            x = transform(x, generator)
        return x


def build_augmentation(cfg: AugmentationConfig) -> Augmentation:
    """Build the augmentation named by ``cfg.names`` (see :data:`AUGMENTATIONS`).

    Raises:
        ConfigError: for an unknown name (the known names are listed) or an out-of-range parameter.
    """
    unknown = [name for name in cfg.names if name not in AUGMENTATIONS]
    if unknown:
        raise ConfigError(
            f"augmentation: unknown name(s) {', '.join(map(repr, unknown))} in 'names'; "
            f"known: {', '.join(AUGMENTATIONS)}"
        )
    return Augmentation(names=tuple(cfg.names), transforms=tuple(AUGMENTATIONS[n](cfg) for n in cfg.names))
