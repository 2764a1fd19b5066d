"""ncvqvae.data: load, generate, prepare and augment time-series datasets.

Only modules that exist are imported here; each part of the package adds its own export line.
"""

from ncvqvae.data.dataset import Dataset, PreparedData
from ncvqvae.data.formats import write_series

__all__ = ["Dataset", "PreparedData", "write_series"]
