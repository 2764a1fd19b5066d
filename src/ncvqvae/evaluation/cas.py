"""Classification accuracy score (CAS, Ravuri & Vinyals 2019; SPEC §5, thesis Table 7).

Train a fresh FCN on generated series only — a class-conditional synthetic set with the real train
split's class proportions, scaled up to at least ``cas_min_samples`` — with the evaluator recipe, then
measure its accuracy on the real test split. A generator whose samples carry the class semantics scores
close to the real-data FCN's accuracy (the ceiling, reported next to it).

The number reported is the clean test accuracy of the last epoch's model. The reference code instead
logged an exponential moving average of per-batch test accuracies while training; ``mode="legacy"``
computes that number too (approximately reconstructed: an EMA with decay :data:`LEGACY_EMA_DECAY` over
the test-batch accuracies of every epoch), only to compare with the thesis table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ncvqvae.errors import ConfigError, DataError
from ncvqvae.evaluation.fcn import FCN, fcn_outputs, train_fcn

CAS_MODES = ("clean", "legacy")
LEGACY_EMA_DECAY = 0.9  # smoothing of the per-batch test accuracies in legacy mode


def cas_class_counts(y_train: np.ndarray | torch.Tensor, n_classes: int, min_total: int = 1000) -> np.ndarray:
    """How many synthetic series to generate per class (SPEC §5).

    As many per class as the real train split has; when that totals fewer than ``min_total``, every
    count is multiplied by ``min_total / n_train`` and rounded (the reference's rule, so the total can
    land a few samples off ``min_total``; it is raised to ``min_total`` if rounding fell short).

    Args:
        y_train: (N,) labels of the real train split, in 0..n_classes-1.
        n_classes: K.
        min_total: the smallest synthetic set.

    Returns:
        (K,) int64 counts.
    """
    y = np.asarray(torch.as_tensor(y_train).cpu()).ravel()
    if y.size == 0:
        raise DataError("cas_class_counts: the train split has no labels")
    counts = np.bincount(y, minlength=n_classes).astype(np.int64)
    total = int(counts.sum())
    if total < min_total:
        counts = np.round(counts * (min_total / total)).astype(np.int64)
        short = min_total - int(counts.sum())
        if short > 0:  # rounding down may leave the set just below the minimum: top up the largest class
            counts[int(np.argmax(counts))] += short
    return counts


def cas_labels(counts: np.ndarray) -> torch.Tensor:
    """The (sum(counts),) LongTensor of class ids, class 0 first, that a synthetic set is sampled with."""
    return torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(counts, dtype=torch.long))


@dataclass
class CASResult:
    """Outcome of one CAS evaluation.

    Attributes:
        accuracy: clean accuracy of the final model on the real test split.
        legacy: the reference's EMA of per-batch test accuracies (``mode="legacy"`` only, else None).
        mode: "clean" or "legacy".
        n_synthetic: size of the synthetic training set.
        class_counts: synthetic series per class.
        epochs: training epochs of the fresh FCN.
    """

    accuracy: float
    legacy: float | None
    mode: str
    n_synthetic: int
    class_counts: list[int]
    epochs: int

    @property
    def value(self) -> float:
        """The number to report under ``mode``."""
        return self.legacy if self.mode == "legacy" and self.legacy is not None else self.accuracy


def cas(
    X_syn: torch.Tensor,
    y_syn: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    n_classes: int,
    epochs: int = 1000,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str = "cpu",
    mode: str = "clean",
    progress: bool = False,
    precision: str = "auto",
    steps: int | None = None,
) -> CASResult:
    """Train a fresh FCN on synthetic series and score it on real test series.

    Args:
        X_syn: (N_s, C, L) generated series; y_syn: (N_s,) the classes they were generated for.
        X_test: (N_t, C, L) real test series; y_test: (N_t,) their labels.
        n_classes: K.
        epochs, lr, weight_decay, batch_size: the evaluator recipe (:func:`train_fcn`).
        seed: seed of the fresh FCN (initialisation and batch order).
        device: where to train.
        mode: "clean" (final test accuracy) or "legacy" (also the EMA of per-batch test accuracies).
        progress: progress bar over epochs.
        precision: "auto", "fp32" or "bf16" for training and scoring the FCN (:mod:`ncvqvae.precision`).
        steps: the budget in optimiser steps instead of ``epochs`` (``None`` = epochs).

    Returns:
        :class:`CASResult`.
    """
    if mode not in CAS_MODES:
        raise ConfigError(f"evaluation.cas_mode must be one of {', '.join(CAS_MODES)}, got {mode!r}")
    X_syn = torch.as_tensor(X_syn, dtype=torch.float32)
    X_test = torch.as_tensor(X_test, dtype=torch.float32)
    y_test = torch.as_tensor(y_test, dtype=torch.long)
    if X_test.ndim != 3 or X_test.shape[1:] != X_syn.shape[1:]:
        raise DataError(
            f"cas: test series {tuple(X_test.shape)} and synthetic series {tuple(X_syn.shape)} "
            "must share (n_channels, n_timepoints)"
        )
    tracker = _LegacyEMA(X_test, y_test, batch_size, precision) if mode == "legacy" else None
    model = train_fcn(
        X_syn,
        y_syn,
        n_classes=n_classes,
        epochs=epochs,
        lr=lr,
        weight_decay=weight_decay,
        batch_size=batch_size,
        seed=seed,
        device=device,
        progress=progress,
        on_epoch_end=tracker,
        precision=precision,
        steps=steps,
    )
    scores = fcn_outputs(model, X_test, batch_size=max(batch_size, 512), precision=precision)
    accuracy = scores.accuracy(y_test)
    counts = np.bincount(np.asarray(torch.as_tensor(y_syn).cpu()), minlength=n_classes)
    return CASResult(
        accuracy=accuracy,
        legacy=tracker.value if tracker is not None else None,
        mode=mode,
        n_synthetic=int(len(y_syn)),
        class_counts=[int(c) for c in counts],
        epochs=int(epochs),
    )


class _LegacyEMA:
    """The reference's CAS number: an EMA of per-batch test accuracies, updated after every epoch.

    Each epoch ends with a pass over the test split in batches (eval mode); every batch accuracy
    updates ``ema ← d·ema + (1 − d)·acc`` (the first one initialises it).
    """

    def __init__(self, X_test: torch.Tensor, y_test: torch.Tensor, batch_size: int, precision: str) -> None:
        self.X_test, self.y_test, self.batch_size, self.precision = X_test, y_test, batch_size, precision
        self.value: float | None = None

    def __call__(self, epoch: int, model: FCN) -> None:
        # fcn_outputs restores train mode
        out = fcn_outputs(model, self.X_test, batch_size=self.batch_size, precision=self.precision)
        hits = out.predictions == np.asarray(self.y_test)
        for start in range(0, len(hits), self.batch_size):
            acc = float(hits[start : start + self.batch_size].mean())
            self.value = (
                acc if self.value is None else LEGACY_EMA_DECAY * self.value + (1 - LEGACY_EMA_DECAY) * acc
            )
