"""An evaluator-free feature space: MiniRocket (Dempster et al. 2021) from aeon, for a FID without an FCN.

:func:`minirocket_features` fits aeon's ``MiniRocket`` on the real train split and transforms any number
of series sets with it; :func:`ncvqvae.evaluation.metrics.fid_from_samples` then gives the Fréchet
distance on these ~10 000-dimensional features without a 10 000 × 10 000 matrix square root.

What is fixed, so that the number can be reproduced:

- **kernels**: aeon's MiniRocket with ``n_kernels`` (rounded down to a multiple of 84 by aeon),
  ``max_dilations_per_kernel=32``, ``random_state=seed`` (the biases are quantiles of the convolution
  outputs of randomly chosen training series, and multivariate data gets random channel combinations:
  both come from that seed); every channel is passed in;
- **normalisation**: the series are scored in the model's space (the global z-normalisation of the train
  split, as for the FCN), and the features — proportions of positive values, in [0, 1] — are used as they
  are: no feature scaling and no outlier removal.

This FID is not comparable with the FCN FID, nor with the ROCKET/MiniRocket FIDs of other papers (other
kernels, other normalisations; some drop 10% of the features as outliers first). aeon is an optional
extra (``pip install 'ncvqvae[minirocket]'``); it pulls numba.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ncvqvae.errors import ConfigError, DataError

INSTALL_HINT = "pip install 'ncvqvae[minirocket]'  (or: pip install aeon)"
MIN_LENGTH = 9  # MiniRocket's kernels have length 9


def minirocket_features(
    X_fit: np.ndarray | torch.Tensor,
    sets: Sequence[np.ndarray | torch.Tensor],
    *,
    n_kernels: int = 10_000,
    seed: int = 0,
) -> list[np.ndarray]:
    """MiniRocket features of several series sets, the transform fitted on ``X_fit``.

    Args:
        X_fit: (N, C, L) series to fit the transform on (the real train split).
        sets: series sets (N_i, C, L) to transform, same C and L.
        n_kernels: MiniRocket's ``n_kernels`` (aeon rounds it down to a multiple of 84).
        seed: ``random_state`` of the transform.

    Returns:
        One (N_i, F) float64 feature array per set.

    Raises:
        ConfigError: when aeon is not installed.
        DataError: for series shorter than 9 points or mismatched shapes.
    """
    try:
        from aeon.transformations.collection.convolution_based import MiniRocket
    except ImportError as err:
        raise ConfigError(
            "the MiniRocket FID (evaluation.minirocket_fid) needs aeon, which is not installed: "
            + INSTALL_HINT
        ) from err
    fit = _as_series(X_fit, "X_fit")
    arrays = [_as_series(x, f"sets[{i}]") for i, x in enumerate(sets)]
    for i, x in enumerate(arrays):
        if x.shape[1:] != fit.shape[1:]:
            raise DataError(f"minirocket_features: sets[{i}] has shape {x.shape[1:]}, X_fit {fit.shape[1:]}")
    transform = MiniRocket(n_kernels=int(n_kernels), max_dilations_per_kernel=32, n_jobs=1, random_state=seed)
    transform.fit(fit)
    return [np.asarray(transform.transform(x), dtype=np.float64) for x in arrays]


def _as_series(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(torch.as_tensor(x).detach().cpu(), dtype=np.float32))
    if x.ndim != 3 or len(x) == 0:
        raise DataError(f"minirocket_features: {name} must be a non-empty (N, C, L) array, got {x.shape}")
    if x.shape[-1] < MIN_LENGTH:
        raise DataError(f"minirocket_features: series need at least {MIN_LENGTH} points, got {x.shape[-1]}")
    return x
