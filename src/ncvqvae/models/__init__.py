"""The networks: the stage-1 tokenizer (STFT VQ-VAE with an optional SSL branch) and its parts.

``build_tokenizer(cfg.stage1, in_channels, input_length)`` is the entry point; see ``docs/models.md``.
"""

from ncvqvae.models.encoder import Decoder, Encoder, Stage1Geometry, stage1_geometry, token_grid
from ncvqvae.models.ssl import SSL_METHODS, BarlowTwinsLoss, IterNorm, SSLHead, SSLMethod, VIbCRegLoss
from ncvqvae.models.stft import istft, stft, stft_shape
from ncvqvae.models.tokenizer import VQVAE, Stage1Output, build_tokenizer
from ncvqvae.models.vq import QuantizerOutput, VectorQuantizer

__all__ = [
    "VQVAE",
    "Stage1Output",
    "build_tokenizer",
    "Encoder",
    "Decoder",
    "Stage1Geometry",
    "stage1_geometry",
    "token_grid",
    "VectorQuantizer",
    "QuantizerOutput",
    "SSLHead",
    "IterNorm",
    "BarlowTwinsLoss",
    "VIbCRegLoss",
    "SSLMethod",
    "SSL_METHODS",
    "stft",
    "istft",
    "stft_shape",
]
