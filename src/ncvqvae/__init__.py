"""ncvqvae: NC-VQVAE time-series generation and self-supervised time-series representations."""

__version__ = "0.1.0"
