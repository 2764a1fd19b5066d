"""The supervised FCN (Wang et al. 2017) used as the feature extractor of FID / IS and as the CAS classifier.

SPEC §5: three ``[Conv1d "same" → BatchNorm1d → ReLU]`` blocks with (128 channels, kernel 8),
(256, 5) and (128, 3), a global average pool to a 128-d feature, and a linear head. It is trained with
the evaluator recipe (AdamW lr 1e-3, weight decay 1e-5, cosine annealing stepped per step, batch 256,
1000 epochs, the last epoch kept) by :func:`train_fcn`, the single training loop that both the cached
evaluator (:mod:`ncvqvae.evaluation.evaluator`) and the classification accuracy score
(:mod:`ncvqvae.evaluation.cas`) use.

The network knows nothing of its training; :func:`train_fcn` is the loop written out top to bottom,
in the same shape as the stage-1 and stage-2 loops (batches from :func:`ncvqvae.training.epoch_batches`,
cosine schedule per step, non-finite guard). :func:`fcn_outputs` runs a trained FCN over a whole array
in eval mode (features and class probabilities in one pass).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ncvqvae.errors import DataError
from ncvqvae.precision import at_least_fp32, autocast
from ncvqvae.training import check_finite, cosine_schedule, derive_seed, plan_steps, step_batches
from ncvqvae.training import progress as progress_bar

log = logging.getLogger(__name__)

FEATURE_DIM = 128  # width of the last conv block = the FID feature dimension


class FCN(nn.Module):
    """Fully convolutional time-series classifier (Wang et al. 2017; SPEC §5).

    Args:
        in_channels: C, the number of input channels (1 for UCR, more for UEA / multivariate data).
        n_classes: K, the number of classes of the linear head.
        widths: output channels of the three conv blocks.
        kernels: kernel sizes of the three conv blocks ("same" padding, stride 1).
    """

    def __init__(
        self,
        in_channels: int,
        n_classes: int,
        widths: tuple[int, ...] = (128, 256, 128),
        kernels: tuple[int, ...] = (8, 5, 3),
    ) -> None:
        super().__init__()
        if len(widths) != len(kernels):
            raise ValueError(f"widths {widths} and kernels {kernels} must have the same length")
        self.config = {
            "in_channels": int(in_channels),
            "n_classes": int(n_classes),
            "widths": list(widths),
            "kernels": list(kernels),
        }
        blocks: list[nn.Module] = []
        prev = in_channels
        for width, kernel in zip(widths, kernels, strict=True):
            blocks += [*_same_conv(prev, width, kernel), nn.BatchNorm1d(width), nn.ReLU()]
            prev = width
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(prev, n_classes)

    @property
    def feature_dim(self) -> int:
        return int(self.head.in_features)

    @property
    def n_classes(self) -> int:
        return int(self.head.out_features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The global-average-pooled feature used by FID.

        Args:
            x: (B, C, L) series.

        Returns:
            (B, 128) features (float32 also under autocast: the pool averages L terms).
        """
        return at_least_fp32(self.blocks(x)).mean(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Args:
            x: (B, C, L) series.

        Returns:
            (B, K) logits.
        """
        return self.head(self.features(x))


def _same_conv(in_channels: int, out_channels: int, kernel: int) -> list[nn.Module]:
    """A stride-1 conv with TensorFlow's "same" padding (the reference FCN's convention).

    An even kernel needs one more sample of padding on the right than on the left; padding explicitly
    avoids the extra copy that ``padding="same"`` makes for even kernels.
    """
    if kernel % 2:
        return [nn.Conv1d(in_channels, out_channels, kernel, padding=kernel // 2)]
    return [
        nn.ConstantPad1d(((kernel - 1) // 2, kernel // 2), 0.0),
        nn.Conv1d(in_channels, out_channels, kernel),
    ]


def build_fcn(config: dict[str, Any]) -> FCN:
    """Rebuild an :class:`FCN` from its ``config`` dict (as stored in a checkpoint)."""
    return FCN(
        config["in_channels"],
        config["n_classes"],
        widths=tuple(config.get("widths", (128, 256, 128))),
        kernels=tuple(config.get("kernels", (8, 5, 3))),
    )


def init_fcn(in_channels: int, n_classes: int, seed: int) -> FCN:
    """A freshly initialised FCN whose weights are a pure function of ``seed``.

    ``nn.Module`` constructors draw from PyTorch's global RNG; forking it keeps the caller's global
    state untouched while making the initialisation reproducible.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "fcn-init"))
        return FCN(in_channels, n_classes)


def budget(epochs: int | None, steps: int | None) -> str:
    """A training budget for messages: ``"400 steps"`` when counted in steps, else ``"1000 epochs"``."""
    return f"{steps} steps" if steps is not None else f"{epochs} epochs"


def train_fcn(
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    n_classes: int,
    epochs: int = 1000,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
    on_epoch_end: Callable[[int, FCN], None] | None = None,
    precision: str = "auto",
    steps: int | None = None,
) -> FCN:
    """Train a fresh FCN with the evaluator recipe and return it in eval mode (last epoch, SPEC §5).

    AdamW with cosine annealing stepped per optimiser step over
    ``T_max = epochs · (ceil(N / batch_size) + 1)`` steps (the reference's schedule length, which
    stops short of lr 0), cross-entropy loss, no checkpoint selection. With ``steps`` the budget is
    that many optimiser steps whatever N (the cosine ends at the last one), for short budgets.

    Args:
        X: (N, C, L) float training series (any device; moved to ``device`` once).
        y: (N,) int64 labels in 0..n_classes-1.
        n_classes: K.
        epochs, lr, weight_decay, batch_size: the recipe.
        seed: initialisation and batch order derive from it.
        device: where to train.
        progress: show a progress bar over epochs.
        on_epoch_end: called as ``on_epoch_end(epoch, model)`` after each epoch (the model is in train
            mode; a callback that evaluates must switch modes itself and switch back). The legacy CAS
            uses it.
        precision: "auto", "fp32" or "bf16" (:mod:`ncvqvae.precision`): bf16 autocast runs the
            convolutions in bf16; weights, optimiser state and the loss stay fp32.
        steps: the budget in optimiser steps instead of ``epochs`` (``None`` = epochs).

    Returns:
        The trained :class:`FCN` on ``device``, in eval mode.

    Raises:
        DataError: for mismatched or empty inputs, or labels outside 0..n_classes-1.
        TrainingError: when the loss becomes non-finite.
    """
    X, y = _check_xy(X, y, n_classes, "train_fcn")
    device = torch.device(device)
    X = X.to(device=device, dtype=torch.float32)
    y = y.to(device=device, dtype=torch.long)
    n = X.shape[0]

    model = init_fcn(X.shape[1], n_classes, seed).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    plan = plan_steps(n, batch_size, epochs, steps=steps)
    scheduler = cosine_schedule(optimizer, plan.t_max)

    model.train()
    bar = progress_bar(total=plan.total_steps, desc="FCN", enabled=progress)
    loss_sum, seen = 0.0, 0
    schedule = step_batches(n, batch_size, seed=seed, start=0, total=plan.total_steps)
    for step, (epoch, idx) in enumerate(schedule, start=1):
        idx = idx.to(device)
        with autocast(precision, device):
            logits = model(X[idx])
        loss = F.cross_entropy(at_least_fp32(logits), y[idx])  # the loss reduction in fp32
        value = float(loss.detach())
        check_finite(step, {"loss": value})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        bar.update()
        loss_sum += value * len(idx)
        seen += len(idx)
        if step % plan.steps_per_epoch == 0 or step == plan.total_steps:  # the end of an epoch
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}")
            log.debug("fcn epoch %d: loss %.5f", epoch, loss_sum / seen)
            loss_sum, seen = 0.0, 0
            if on_epoch_end is not None:
                on_epoch_end(epoch, model)
    bar.close()
    return model.eval()


def _check_xy(
    X: torch.Tensor, y: torch.Tensor, n_classes: int, where: str
) -> tuple[torch.Tensor, torch.Tensor]:
    X = torch.as_tensor(X)
    y = torch.as_tensor(y)
    if X.ndim != 3:
        raise DataError(f"{where}: X must be (n_cases, n_channels, n_timepoints), got shape {tuple(X.shape)}")
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise DataError(f"{where}: y must be ({X.shape[0]},) labels, got shape {tuple(y.shape)}")
    if X.shape[0] < 2:
        raise DataError(f"{where}: need at least 2 series, got {X.shape[0]}")
    if n_classes < 1 or int(y.min()) < 0 or int(y.max()) >= n_classes:
        raise DataError(f"{where}: labels must lie in 0..{n_classes - 1}, got {int(y.min())}..{int(y.max())}")
    return X, y


@dataclass
class FCNOutputs:
    """What a trained FCN says about a set of series.

    Attributes:
        features: (N, 128) float64 pooled features (FID).
        probs: (N, K) float64 softmax probabilities (IS).
    """

    features: np.ndarray
    probs: np.ndarray

    @property
    def predictions(self) -> np.ndarray:
        """(N,) predicted class ids."""
        return self.probs.argmax(axis=1)

    def accuracy(self, y: np.ndarray | torch.Tensor) -> float:
        """Fraction of series whose predicted class equals ``y`` (N,)."""
        y = np.asarray(torch.as_tensor(y).cpu())
        return float(np.mean(self.predictions == y))


@torch.no_grad()
def fcn_outputs(
    model: FCN, X: torch.Tensor | np.ndarray, *, batch_size: int = 512, precision: str = "auto"
) -> FCNOutputs:
    """Features and class probabilities of every series, in eval mode, without touching any state.

    The model's train/eval mode is restored afterwards, so BatchNorm statistics never move.

    Args:
        model: a trained :class:`FCN`.
        X: (N, C, L) series (moved batch by batch to the model's device).
        batch_size: series per forward pass.
        precision: "auto", "fp32" or "bf16": the convolutions under bf16 autocast; the pooled features
            and the linear head are computed in fp32, the softmax in fp64 (FID/IS statistics).

    Returns:
        :class:`FCNOutputs` with float64 arrays.
    """
    X = torch.as_tensor(X, dtype=torch.float32)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    feats, probs = [], []
    try:
        for start in range(0, X.shape[0], batch_size):
            xb = X[start : start + batch_size].to(device)
            with autocast(precision, device):
                f = model.features(xb)  # (b, 128) float32
            feats.append(f.double().cpu())
            probs.append(torch.softmax(model.head(f).double(), dim=-1).cpu())
    finally:
        model.train(was_training)
    k = model.n_classes
    return FCNOutputs(
        features=torch.cat(feats).numpy() if feats else np.zeros((0, model.feature_dim)),
        probs=torch.cat(probs).numpy() if probs else np.zeros((0, k)),
    )
