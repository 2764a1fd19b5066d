"""Augmentation utility: does adding the generator's series to the real train split help a classifier more
than simple augmentation does?

Three fresh FCNs are trained with the evaluator recipe (:func:`ncvqvae.evaluation.fcn.train_fcn`, the one
loop that the evaluator and CAS use), all with the same seed and epochs, and each is scored on the real
test split:

1. on the real train split alone;
2. on the real train split plus as many augmented copies of it as there are synthetic series — every
   copy is a real series passed through jitter (i.i.d. Gaussian noise, σ = 0.05) then window warp (a
   window of 40% of the series resampled by U(0.9, 2.0), as in :mod:`ncvqvae.data.augment`);
3. on the real train split plus the synthetic series (class-conditional, the train split's class
   proportions).

The copies of (2) are taken from the real series in order, wrapping around, so (2) and (3) add the
same number of series; with the synthetic labels the train labels tiled the same way, they also add the
same class counts. More series per epoch means more optimiser steps at equal epochs, for (2) and (3)
alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ncvqvae.config import AugmentationConfig
from ncvqvae.data.augment import build_augmentation
from ncvqvae.errors import DataError
from ncvqvae.evaluation.fcn import fcn_outputs, train_fcn
from ncvqvae.training import make_generator

SIMPLE_AUGMENTATION = AugmentationConfig(names=("gauss", "window_warp"))  # jitter, then window warp


@dataclass(frozen=True)
class UtilityResult:
    """Real-test accuracies of FCNs trained on real, real + augmented and real + synthetic series.

    Attributes:
        real: trained on the real train split alone.
        real_augmented: on real + jittered and window-warped copies of real series.
        real_synthetic: on real + generated series.
        n_real, n_extra: real train series; series added in each of the other two settings.
        epochs: training epochs of each FCN.
        steps: the budget in optimiser steps instead, when one was given (``None``: epochs).
    """

    real: float
    real_augmented: float
    real_synthetic: float
    n_real: int
    n_extra: int
    epochs: int
    steps: int | None = None

    @property
    def gain_synthetic(self) -> float:
        """Accuracy gained by adding synthetic series (real + synthetic − real)."""
        return self.real_synthetic - self.real

    @property
    def gain_over_augmentation(self) -> float:
        """How much more synthetic series help than simple augmentation (real + syn − real + aug)."""
        return self.real_synthetic - self.real_augmented

    def as_dict(self) -> dict[str, float | int | None]:
        """The accuracies, the two gains and the sizes, JSON-able."""
        return {
            "real": self.real,
            "real_augmented": self.real_augmented,
            "real_synthetic": self.real_synthetic,
            "gain_synthetic": self.gain_synthetic,
            "gain_over_augmentation": self.gain_over_augmentation,
            "n_real": self.n_real,
            "n_extra": self.n_extra,
            "epochs": self.epochs,
            "steps": self.steps,
        }


def augmented_copies(
    X: torch.Tensor, n: int, *, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` jittered and window-warped copies of the series of ``X``, taken in order and wrapping around.

    Args:
        X: (N, C, L) real series.
        n: copies wanted.
        generator: a ``torch.Generator`` on ``X``'s device (every draw comes from it).

    Returns:
        (copies (n, C, L), source indices (n,)): copy i is an augmentation of ``X[i mod N]``.
    """
    index = torch.arange(n, device=X.device) % X.shape[0]
    return build_augmentation(SIMPLE_AUGMENTATION)(X[index], generator), index


def augmentation_utility(
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    X_syn: torch.Tensor,
    y_syn: torch.Tensor,
    *,
    n_classes: int,
    epochs: int,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    batch_size: int = 256,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
    precision: str = "auto",
    steps: int | None = None,
) -> UtilityResult:
    """Score three FCNs on the real test split: real, real + simple augmentation, real + synthetic.

    Args:
        X_train: (N, C, L) real train series; y_train: (N,) labels.
        X_test: (N_t, C, L) real test series; y_test: (N_t,) labels.
        X_syn: (N_s, C, L) generated series; y_syn: (N_s,) the classes they were generated for.
        n_classes: K.
        epochs, lr, weight_decay, batch_size: the recipe of every FCN (:func:`train_fcn`).
        seed: seed of every FCN (initialisation, batch order) and of the augmentation draws.
        device: where to train.
        progress: progress bars over epochs.
        precision: "auto", "fp32" or "bf16" for every FCN (:mod:`ncvqvae.precision`).
        steps: the budget of every FCN in optimiser steps instead of ``epochs`` (equal training for the
            three sets, which differ in size).

    Returns:
        :class:`UtilityResult`.
    """
    X_train = torch.as_tensor(X_train, dtype=torch.float32).cpu()
    X_syn = torch.as_tensor(X_syn, dtype=torch.float32).cpu()
    y_train = torch.as_tensor(y_train, dtype=torch.long).cpu()
    y_syn = torch.as_tensor(y_syn, dtype=torch.long).cpu()
    if X_syn.shape[1:] != X_train.shape[1:] or len(X_syn) == 0:
        raise DataError(
            f"augmentation_utility: synthetic series {tuple(X_syn.shape)} must be a non-empty set shaped "
            f"like the train series {tuple(X_train.shape)}"
        )
    X_aug, source = augmented_copies(X_train, len(X_syn), generator=make_generator(seed))
    sets = {
        "real": (X_train, y_train),
        "real_augmented": (torch.cat([X_train, X_aug]), torch.cat([y_train, y_train[source]])),
        "real_synthetic": (torch.cat([X_train, X_syn]), torch.cat([y_train, y_syn])),
    }
    accuracy = {}
    for name, (X, y) in sets.items():
        model = train_fcn(
            X,
            y,
            n_classes=n_classes,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            seed=seed,
            device=device,
            progress=progress,
            precision=precision,
            steps=steps,
        )
        scores = fcn_outputs(model, X_test, batch_size=max(batch_size, 512), precision=precision)
        accuracy[name] = scores.accuracy(y_test)
    return UtilityResult(
        real=accuracy["real"],
        real_augmented=accuracy["real_augmented"],
        real_synthetic=accuracy["real_synthetic"],
        n_real=int(len(X_train)),
        n_extra=int(len(X_syn)),
        epochs=int(epochs),
        steps=steps,
    )
