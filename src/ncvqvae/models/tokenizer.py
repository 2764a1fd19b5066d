"""The stage-1 tokenizer: STFT VQ-VAE, plain ("baseline") or with the NC-VQVAE SSL branch (SPEC §3).

Original view: u = STFT(x); z = E(u); z_q = VQ(z); û = D(z_q); x̂ = ISTFT(û).
Loss MSE(x, x̂) + MSE(u, û) + commitment.

NC methods add an augmented view x_a, encoded and decoded *without* quantisation
(loss ``aug_recon_weight`` · [MSE(x_a, x̂_a) + MSE(u_a, û_a)]), and an SSL loss between the projections
of z_q and z_a (``ssl_weight`` · loss). The baseline and the NC models are one class: the method only
decides whether the SSL head and loss exist (see :data:`ncvqvae.models.ssl.SSL_METHODS`).

The model's config is its constructor arguments: :meth:`VQVAE.config_dict` returns them as a JSON-able
dict and :meth:`VQVAE.from_config` rebuilds the model from it, so a checkpoint holding
``{"config": model.config_dict(), "model": model.state_dict()}`` restores it exactly.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from ncvqvae.config import Stage1Config
from ncvqvae.errors import ConfigError, DataError, TrainingError
from ncvqvae.models.encoder import Decoder, Encoder, stage1_geometry
from ncvqvae.models.ssl import SSLHead, get_ssl_method
from ncvqvae.models.stft import istft, stft
from ncvqvae.models.vq import VectorQuantizer
from ncvqvae.precision import at_least_fp32

__all__ = ["Stage1Output", "VQVAE", "build_tokenizer"]


@dataclass
class Stage1Output:
    """What :meth:`VQVAE.forward` returns.

    Attributes:
        loss: scalar total, ``recon_time + recon_freq + commitment
            + aug_recon_weight · (aug_recon_time + aug_recon_freq) + ssl_weight · ssl``.
        terms: scalar loss terms (unweighted except ``commitment``, which includes its weight):
            ``recon_time``, ``recon_freq``, ``commitment``, ``perplexity`` (detached, not in the loss),
            and with an augmented view ``aug_recon_time``, ``aug_recon_freq``, ``ssl``.
        x_hat: reconstruction of the original view (B, C, L).
        tokens: code ids of the original view (B, H'·W'), row-major over (H', W').
        usage: (K,) fraction of the batch's tokens per code (detached).
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    x_hat: torch.Tensor
    tokens: torch.Tensor
    usage: torch.Tensor = field(repr=False)


@contextlib.contextmanager
def _inference_mode(module: nn.Module) -> Iterator[None]:
    """Run with eval behaviour (running BN statistics, no EMA update), then restore every flag."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, training in flags:
            m.training = training


class VQVAE(nn.Module):
    """STFT VQ-VAE tokenizer with an optional non-contrastive SSL branch.

    Every argument is a field of :class:`ncvqvae.config.Stage1Config` (same name, same default), plus
    the data's ``in_channels`` and ``input_length``.

    Args:
        in_channels: channels C of the series.
        input_length: length L of the series (fixes the STFT size and the token grid).
        method: ``"baseline"``, ``"barlowtwins"`` or ``"vibcreg"`` (any key of ``SSL_METHODS``).
        n_fft: STFT size (Hann window, hop n_fft // 4).
        hidden_dim: encoder/decoder width D = code dimension.
        n_res_blocks: residual blocks in the encoder and in the decoder.
        downsampled_width: target token-grid width (sets the downsample rate).
        dropout: dropout probability in the encoder and decoder.
        codebook_size: number of codes K.
        vq_decay: EMA decay of the codebook.
        vq_eps: Laplace smoothing of the EMA cluster sizes.
        commitment_weight: weight of the commitment loss.
        aug_recon_weight: weight of the augmented view's reconstruction loss (NC methods).
        projector_dim: projector width (NC methods).
        ssl_weight: SSL loss weight; None = the method's default (Barlow Twins 1.0, VIbCReg 0.01).
        barlow_lambda: Barlow Twins off-diagonal weight.
        vibcreg_sim, vibcreg_var, vibcreg_cov: VIbCReg λ, μ, ν.
        iternorm_groups, iternorm_iters: IterNorm groups and Newton iterations (VIbCReg's projector).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        input_length: int,
        method: str = "vibcreg",
        n_fft: int = 8,
        hidden_dim: int = 64,
        n_res_blocks: int = 4,
        downsampled_width: int = 8,
        dropout: float = 0.0,
        codebook_size: int = 32,
        vq_decay: float = 0.9,
        vq_eps: float = 1e-5,
        commitment_weight: float = 1.0,
        aug_recon_weight: float = 0.2,
        projector_dim: int = 4096,
        ssl_weight: float | None = None,
        barlow_lambda: float = 0.005,
        vibcreg_sim: float = 25.0,
        vibcreg_var: float = 25.0,
        vibcreg_cov: float = 100.0,
        iternorm_groups: int = 64,
        iternorm_iters: int = 5,
    ) -> None:
        super().__init__()
        if in_channels < 1:
            raise ConfigError(f"in_channels must be >= 1, got {in_channels}")
        ssl_method = get_ssl_method(method)
        if ssl_weight is None and ssl_method is not None:
            ssl_weight = ssl_method.default_weight
        # Everything the constructor needs to rebuild this model (ssl_weight resolved).
        self._config: dict[str, Any] = {
            name: value for name, value in locals().items() if name in _CONSTRUCTOR_ARGS
        }
        self.geometry = stage1_geometry(input_length, n_fft, downsampled_width)
        self.method = method
        self.n_fft = n_fft
        self.aug_recon_weight = aug_recon_weight
        self.ssl_weight = float(ssl_weight) if ssl_weight is not None else 0.0
        tf_channels = 2 * in_channels  # real and imaginary part per channel
        self.encoder = Encoder(
            tf_channels,
            hidden_dim=hidden_dim,
            n_down=self.geometry.n_down,
            n_res_blocks=n_res_blocks,
            dropout=dropout,
        )
        self.quantizer = VectorQuantizer(
            codebook_size, hidden_dim, decay=vq_decay, eps=vq_eps, commitment_weight=commitment_weight
        )
        self.decoder = Decoder(
            tf_channels,
            self.geometry.stft_size,
            hidden_dim=hidden_dim,
            n_down=self.geometry.n_down,
            n_res_blocks=n_res_blocks,
            dropout=dropout,
        )
        self.ssl_head: SSLHead | None = None
        self.ssl_loss: nn.Module | None = None
        if ssl_method is not None:
            self.ssl_head = SSLHead(
                hidden_dim,
                projector_dim,
                whiten=ssl_method.whiten,
                iternorm_groups=iternorm_groups,
                iternorm_iters=iternorm_iters,
            )
            self.ssl_loss = ssl_method.build_loss(self._config)

    # ----------------------------------------------------------------------------------------------
    # Config round trip
    # ----------------------------------------------------------------------------------------------

    def config_dict(self) -> dict[str, Any]:
        """The constructor arguments (JSON-able; ``ssl_weight`` resolved to a number for NC methods)."""
        return dict(self._config)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> VQVAE:
        """Rebuild a model (freshly initialised) from :meth:`config_dict`; load its state dict next."""
        unknown = sorted(set(config) - _CONSTRUCTOR_ARGS)
        if unknown:
            raise ConfigError(f"tokenizer config: unknown key(s) {', '.join(unknown)}")
        return cls(**config)

    # ----------------------------------------------------------------------------------------------
    # Properties
    # ----------------------------------------------------------------------------------------------

    @property
    def is_nc(self) -> bool:
        """Whether the model has the augmented branch and an SSL loss."""
        return self.ssl_head is not None

    @property
    def in_channels(self) -> int:
        return int(self._config["in_channels"])

    @property
    def input_length(self) -> int:
        return self.geometry.input_length

    @property
    def token_grid(self) -> tuple[int, int]:
        """(H', W') of the latent grid."""
        return self.geometry.token_grid

    @property
    def n_tokens(self) -> int:
        """H'·W', the length of a token sequence."""
        return self.geometry.n_tokens

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    @property
    def code_dim(self) -> int:
        return self.quantizer.dim

    @property
    def codebook(self) -> torch.Tensor:
        """The codes (K, D)."""
        return self.quantizer.codebook

    # ----------------------------------------------------------------------------------------------
    # Training forward
    # ----------------------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, x_aug: torch.Tensor | None = None) -> Stage1Output:
        """Both branches and every loss term.

        In training mode BatchNorm uses batch statistics (each view its own) and the codebook moves by
        EMA; in eval mode neither happens. The baseline ignores ``x_aug``; an NC model without
        ``x_aug`` computes the original branch only (allowed in eval mode, an error in training mode).

        Args:
            x: original view (B, C, L).
            x_aug: augmented view (B, C, L), or None.

        Returns:
            :class:`Stage1Output`.
        """
        self._check_input(x, "x")
        if self.is_nc and x_aug is None and self.training:
            raise TrainingError(f"method {self.method!r} needs the augmented view x_aug in training mode")
        u = self.time_frequency(x)  # (B, 2C, F, T)
        z = self.encoder(u)  # (B, D, H', W')
        q = self.quantizer(z)
        # Under autocast the convolutions run in bf16; the reconstruction, the ISTFT and the losses
        # are taken in fp32 (loss reductions over B·L terms).
        u_hat = at_least_fp32(self.decoder(q.z_q))
        x_hat = istft(u_hat, self.input_length, self.n_fft)
        terms = {
            "recon_time": F.mse_loss(x_hat, x),
            "recon_freq": F.mse_loss(u_hat, u),
            "commitment": q.commitment_loss,
        }
        loss = terms["recon_time"] + terms["recon_freq"] + terms["commitment"]
        if self.is_nc and x_aug is not None:
            self._check_input(x_aug, "x_aug")
            u_a = self.time_frequency(x_aug)
            z_a = self.encoder(u_a)
            u_a_hat = at_least_fp32(self.decoder(z_a))  # the augmented view is not quantised
            x_a_hat = istft(u_a_hat, self.input_length, self.n_fft)
            terms["aug_recon_time"] = F.mse_loss(x_a_hat, x_aug)
            terms["aug_recon_freq"] = F.mse_loss(u_a_hat, u_a)
            p, p_a = self.ssl_head.forward_pair(q.z_q, z_a)  # type: ignore[union-attr]
            terms["ssl"] = self.ssl_loss(p, p_a)  # type: ignore[misc]
            loss = (
                loss
                + self.aug_recon_weight * (terms["aug_recon_time"] + terms["aug_recon_freq"])
                + self.ssl_weight * terms["ssl"]
            )
        terms["perplexity"] = q.perplexity
        return Stage1Output(loss=loss, terms=terms, x_hat=x_hat, tokens=q.indices, usage=q.usage)

    def time_frequency(self, x: torch.Tensor) -> torch.Tensor:
        """STFT of x (B, C, L) → (B, 2C, F, T), laid out for the convolutions that follow."""
        u = stft(x, self.n_fft)
        if u.device.type == "cpu":
            # oneDNN's CPU convolutions run faster in channels-last layout (the whole stage-1 step
            # ~15-20% on ECG5000/FordA shapes, see docs/benchmarks.md); every later conv inherits
            # the layout from its input. Values are unchanged.
            u = u.contiguous(memory_format=torch.channels_last)
        return u

    def _check_input(self, x: torch.Tensor, name: str) -> None:
        expected = (self.in_channels, self.input_length)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise DataError(
                f"{name}: expected a (batch, {expected[0]}, {expected[1]}) tensor for this tokenizer "
                f"(channels, length), got shape {tuple(x.shape)}"
            )

    # ----------------------------------------------------------------------------------------------
    # Inference helpers: always eval behaviour, never change any state
    # ----------------------------------------------------------------------------------------------

    def encode_latents(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-quantisation latents z (B, D, H', W') of series x (B, C, L), with eval behaviour."""
        self._check_input(x, "x")
        with _inference_mode(self):
            return self.encoder(self.time_frequency(x))

    @torch.no_grad()
    def encode(
        self, x: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Token ids (B, H'·W') of series x (B, C, L).

        Runs with eval behaviour whatever the mode (running BatchNorm statistics, no EMA update; the
        modules' training flags are restored afterwards), without gradients.

        Args:
            x: series (B, C, L).
            temperature: 0 = nearest code; τ > 0 samples code k with softmax(−‖z − e_k‖² / τ).
            generator: source of the draws when τ > 0 (on x's device).
        """
        z = self.encode_latents(x)
        z_flat = rearrange(z, "b d h w -> (b h w) d")
        ids = self.quantizer.sample_codes(z_flat, temperature, generator)
        return rearrange(ids, "(b n) -> b n", b=x.shape[0])

    def decode_latents(self, z_q: torch.Tensor) -> torch.Tensor:
        """Series (B, C, L) from a latent grid z_q (B, D, H', W'), with eval behaviour."""
        with _inference_mode(self):
            return istft(at_least_fp32(self.decoder(z_q)), self.input_length, self.n_fft)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Series (B, C, L) from token ids (B, H'·W'), with eval behaviour."""
        if tokens.ndim != 2 or tokens.shape[1] != self.n_tokens:
            raise DataError(f"tokens: expected shape (batch, {self.n_tokens}), got {tuple(tokens.shape)}")
        height, width = self.token_grid
        z_q = rearrange(self.quantizer.lookup(tokens), "b (h w) d -> b d h w", h=height, w=width)
        return self.decode_latents(z_q)

    @torch.no_grad()
    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """Probe features (B, D): global average pool of the nearest-code grid z_q (SPEC §5).

        Eval behaviour, no gradients, no state change (the reference leaked test data into the EMA
        codebook and the BatchNorm statistics here).
        """
        z = self.encode_latents(x)
        z_q = self.quantizer(z, update=False).z_q
        return z_q.mean(dim=(2, 3))


_CONSTRUCTOR_ARGS = frozenset(p for p in inspect.signature(VQVAE.__init__).parameters if p != "self")


def build_tokenizer(cfg: Stage1Config, in_channels: int, input_length: int) -> VQVAE:
    """Build the tokenizer of a :class:`Stage1Config` for data with ``in_channels`` and ``input_length``."""
    kwargs = {name: getattr(cfg, name) for name in _CONSTRUCTOR_ARGS if hasattr(cfg, name)}
    return VQVAE(in_channels=in_channels, input_length=input_length, **kwargs)
