"""ncvqvae.data: load, generate, prepare and augment time-series datasets.

Each part of the package adds its own export line here.
"""

from ncvqvae.data.augment import build_augmentation
from ncvqvae.data.dataset import Dataset, PreparedData
from ncvqvae.data.fetch import fetch_dataset
from ncvqvae.data.formats import read_series, write_series
from ncvqvae.data.generators import generate
from ncvqvae.data.loading import load_dataset
from ncvqvae.data.prepare import load_prepared, prepare

__all__ = [
    "Dataset",
    "PreparedData",
    "build_augmentation",
    "fetch_dataset",
    "generate",
    "load_dataset",
    "load_prepared",
    "prepare",
    "read_series",
    "write_series",
]
