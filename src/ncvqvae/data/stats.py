"""What a trained model remembers of its training data, and the check that other data is the same.

:func:`data_stats` goes into every stage-1 and stage-2 checkpoint (JSON/weights-only safe); stage 2, the
sampler and the evaluators read the normalisation and class balance from it, and
:func:`check_same_data` refuses a checkpoint that was trained on other data.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ncvqvae.data.dataset import PreparedData
from ncvqvae.data.generators import LEGACY_NAMES
from ncvqvae.errors import CheckpointError


def data_stats(data: PreparedData) -> dict[str, Any]:
    """What stage 2 and the evaluators need to know about the training data (JSON/weights-only safe)."""
    counts: list[int] = []
    if data.y_train is not None and data.n_classes:
        counts = torch.bincount(data.y_train.long().cpu(), minlength=data.n_classes).tolist()
    return {
        "name": data.name,
        "mean": float(data.mean),
        "std": float(data.std),
        "normalization": data.normalization,
        "n_classes": int(data.n_classes),
        "label_values": [str(v) for v in data.label_values],
        "class_names": [str(v) for v in data.class_names],
        "class_counts": counts,  # per class in the training split (stage 2 samples in these proportions)
        "n_train": int(data.X_train.shape[0]),
        "length": data.length,
        "channels": data.n_channels,
        "source": data.source,  # where the data came from; checkpoints without it predate issue 16
    }


def check_same_data(saved: dict[str, Any], stats: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Raise :class:`CheckpointError` when a checkpoint's ``data_stats`` disagree with the data at hand."""
    keys = ("name", "n_train", "length", "channels", "mean", "std", "n_classes")
    if "source" not in saved and saved.get("name") in LEGACY_NAMES:
        saved = {**saved, "name": LEGACY_NAMES[saved["name"]]}  # a generator, named before the gen- prefix
    differ = [k for k in keys if k in saved and saved[k] != stats[k]]
    if differ:
        listing = "; ".join(f"{k}: saved {saved[k]!r}, now {stats[k]!r}" for k in differ)
        raise CheckpointError(f"{path}: the checkpoint was trained on other data ({listing})")
