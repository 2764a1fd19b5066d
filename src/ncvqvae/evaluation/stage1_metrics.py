"""Stage-1 metrics: reconstruction error, KNN/SVM probes and codebook statistics (SPEC §5).

Pure functions of a tokenizer and tensors, below the training loops (stage 1 logs them while it trains);
the run-level evaluation that loads a run's tokenizer and writes ``results.json`` is
:func:`ncvqvae.evaluation.stage1.evaluate_stage1_run`.

Every function here runs the tokenizer in eval mode under ``torch.no_grad()`` and puts each sub-module
back in the train/eval mode it was in, so evaluating never changes the model: the EMA codebook and the
BatchNorm running statistics stay as they were (the reference leaked test data into both).

- :func:`reconstruction_error`: MSE(x, x̂) + MSE(u, û) with u = STFT(x) and û the decoder output, on the
  original view only; the thesis Tables 1–2 number. A dataset mean (every series weighs the same).
- :func:`probe_accuracy`: z_q global-average-pooled features, ``MinMaxScaler((-1, 1))`` fit on train,
  KNN (k = 5) and linear SVC (C = 1) fit on train, accuracy on test; Tables 3–4.
- :func:`codebook_stats`: perplexity and usage of the codebook over a dataset, and a token grid.
- :func:`evaluate_stage1` gathers them for a :class:`PreparedData`; :func:`stage1_record` adds which
  checkpoint and protocol made them (the ``"stage1"`` entry of ``results.json``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import SVC

from ncvqvae.config import EvaluationConfig
from ncvqvae.data.dataset import PreparedData
from ncvqvae.errors import DataError
from ncvqvae.models.tokenizer import VQVAE

log = logging.getLogger(__name__)

BATCH_SIZE = 256  # evaluation batch; results do not depend on it (dataset means, eval-mode BatchNorm)
GRID_SERIES = 8  # how many test series' token grids go into the results
_COUNTS = frozenset({"n", "n_train", "n_test"})  # sizes, not numbers worth a log line


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def frozen_eval(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and no autograd inside the block; every sub-module's own mode restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes:
            module.training = training


def _device_of(model: torch.nn.Module) -> torch.device:
    tensor = next(iter(model.parameters()), None)
    if tensor is None:
        tensor = next(iter(model.buffers()))
    return tensor.device


def _batches(X: torch.Tensor, batch_size: int, device: torch.device, what: str) -> Iterator[torch.Tensor]:
    if X.ndim != 3 or X.shape[0] == 0:
        raise DataError(
            f"{what}: expected a non-empty (n_cases, n_channels, n_timepoints) tensor, got {tuple(X.shape)}"
        )
    for xb in torch.split(X, batch_size):
        yield xb.to(device, dtype=torch.float32)


# --------------------------------------------------------------------------------------------------
# The metrics
# --------------------------------------------------------------------------------------------------


def reconstruction_error(
    model: VQVAE, X: torch.Tensor, *, batch_size: int = BATCH_SIZE
) -> dict[str, float]:
    """Reconstruction error of the original view, in eval mode (thesis Tables 1–2).

    Args:
        model: a stage-1 :class:`~ncvqvae.models.tokenizer.VQVAE`.
        X: (N, C, L) normalised series (any device; moved batch by batch to the model's).
        batch_size: evaluation batch size; the result does not depend on it.

    Returns:
        ``{"recon": recon_time + recon_freq, "recon_time": MSE(x, x̂), "recon_freq": MSE(u, û), "n": N}``,
        each MSE a mean over every element of the dataset (batch means weighted by batch size, which is
        exact because every series has the same shape).
    """
    device = _device_of(model)
    sums = {"recon_time": 0.0, "recon_freq": 0.0}
    n = 0
    with frozen_eval(model):
        for xb in _batches(X, batch_size, device, "reconstruction_error"):
            out = model(xb)
            for key in sums:
                sums[key] += float(out.terms[key].double()) * xb.shape[0]
            n += xb.shape[0]
    result: dict[str, float] = {key: value / n for key, value in sums.items()}
    result = {"recon": result["recon_time"] + result["recon_freq"], **result, "n": n}
    return result


def extract_features(model: VQVAE, X: torch.Tensor, *, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Probe features: z_q (nearest code) global-average-pooled, in eval mode without state change.

    Returns:
        float64 array (N, D).
    """
    device = _device_of(model)
    with frozen_eval(model):
        parts = [model.pooled_features(xb).double().cpu() for xb in _batches(X, batch_size, device, "probe")]
    return torch.cat(parts).numpy()


def probe_accuracy(
    model: VQVAE,
    X_train: torch.Tensor,
    y_train: torch.Tensor,
    X_test: torch.Tensor,
    y_test: torch.Tensor,
    *,
    k: int = 5,
    C: float = 1.0,
    batch_size: int = BATCH_SIZE,
) -> dict[str, float]:
    """KNN and linear-SVM probe accuracy on the pooled discrete latents (thesis Tables 3–4, SPEC §5).

    Features from :func:`extract_features`; ``MinMaxScaler((-1, 1))`` fit on train; then
    ``KNeighborsClassifier(k)`` and ``SVC(kernel="linear", C=C)`` fit on train and scored on test.

    Args:
        model: a stage-1 VQVAE (left exactly as it was).
        X_train, X_test: (N, C, L) series; y_train, y_test: (N,) class ids.
        k: KNN neighbours (capped at the number of training series).
        C: SVM regularisation.

    Returns:
        ``{"knn_accuracy", "svm_accuracy", "knn_k", "svm_c"}`` (accuracies in [0, 1]).
    """
    y_tr = torch.as_tensor(y_train).cpu().numpy()
    y_te = torch.as_tensor(y_test).cpu().numpy()
    if len(y_tr) != len(X_train) or len(y_te) != len(X_test):
        raise DataError("probe_accuracy: labels and series differ in number")
    F_train = extract_features(model, X_train, batch_size=batch_size)
    F_test = extract_features(model, X_test, batch_size=batch_size)
    k_used = min(k, len(y_tr))
    knn = make_pipeline(MinMaxScaler(feature_range=(-1, 1)), KNeighborsClassifier(n_neighbors=k_used))
    knn.fit(F_train, y_tr)
    result = {"knn_accuracy": float(knn.score(F_test, y_te)), "knn_k": k_used}
    if len(np.unique(y_tr)) > 1:
        svm = make_pipeline(MinMaxScaler(feature_range=(-1, 1)), SVC(kernel="linear", C=C))
        svm.fit(F_train, y_tr)
        result["svm_accuracy"] = float(svm.score(F_test, y_te))
    else:  # SVC refuses a single class; the probe is then trivially the majority class
        result["svm_accuracy"] = float(np.mean(y_te == y_tr[0]))
    result["svm_c"] = float(C)
    return result


def codebook_stats(
    model: VQVAE, X: torch.Tensor, *, batch_size: int = BATCH_SIZE, grid_series: int = GRID_SERIES
) -> dict[str, Any]:
    """Codebook perplexity and usage over a dataset (nearest-code tokens, eval mode).

    Returns:
        ``perplexity`` = exp(entropy of the code frequencies) (1 … K), ``usage`` = fraction of the K codes
        used at least once, ``used_codes``, ``code_counts`` (K,) list, and ``token_grid``: LongTensor
        (min(grid_series, N), H', W') of the first series.
    """
    device = _device_of(model)
    K = int(model.codebook_size)
    counts = torch.zeros(K, dtype=torch.float64)
    grids = []
    with frozen_eval(model):
        for xb in _batches(X, batch_size, device, "codebook_stats"):
            tokens = model.encode(xb).cpu()  # (B, H'·W')
            counts += torch.bincount(tokens.flatten(), minlength=K).double()
            if sum(len(g) for g in grids) < grid_series:
                grids.append(tokens)
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum()
    height, width = model.token_grid
    grid = torch.cat(grids)[:grid_series].reshape(-1, height, width)
    return {
        "perplexity": float(entropy.exp()),
        "usage": float((counts > 0).double().mean()),
        "used_codes": int((counts > 0).sum()),
        "code_counts": [int(c) for c in counts.tolist()],
        "token_grid": grid,
    }


def evaluate_stage1(
    model: VQVAE,
    data: PreparedData,
    cfg: EvaluationConfig | None = None,
    *,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Every stage-1 number for one model and dataset, on the test split (train when there is none).

    Returns:
        A JSON-able dict of three groups:
        ``reconstruction``: ``split``, ``n``, ``recon``, ``recon_time``, ``recon_freq`` (and ``val_recon``
        when a validation split exists);
        ``probes``: ``knn_accuracy``, ``svm_accuracy``, ``knn_k``, ``svm_c``, ``n_train``, ``n_test``
        (only ``note`` when the data has no labels or no test split);
        ``codebook``: ``split``, ``perplexity``, ``usage``, ``used_codes``, ``code_counts``,
        ``token_grid`` (nested lists);
        ``data``: the dataset's ``name`` and ``source`` (what was loaded: a UCR name is the archive's
        files, a built-in generator says ``generator:...``).
    """
    cfg = cfg or EvaluationConfig()
    split, X_eval = ("test", data.X_test) if data.X_test is not None else ("train", data.X_train)
    reconstruction = {"split": split, **reconstruction_error(model, X_eval, batch_size=batch_size)}
    if data.X_val is not None and len(data.X_val):
        reconstruction["val_recon"] = reconstruction_error(model, data.X_val, batch_size=batch_size)["recon"]

    if data.y_train is None or data.y_test is None or data.X_test is None:
        probes: dict[str, Any] = {"note": "probes skipped: the data has no labels or no test split"}
        log.info("stage-1 probes skipped for %s: no labels or no test split", data.name)
    else:
        probes = probe_accuracy(
            model, data.X_train, data.y_train, data.X_test, data.y_test,
            k=cfg.knn_k, C=cfg.svm_c, batch_size=batch_size,
        )
        probes.update(n_train=int(data.X_train.shape[0]), n_test=int(data.X_test.shape[0]))

    codebook = {"split": split, **codebook_stats(model, X_eval, batch_size=batch_size)}
    codebook["token_grid"] = codebook["token_grid"].tolist()
    return {
        "reconstruction": reconstruction,
        "probes": probes,
        "codebook": codebook,
        "data": {"name": data.name, "source": data.source},
    }


def headline(results: dict[str, Any]) -> dict[str, float | int]:
    """The scalar numbers of :func:`evaluate_stage1`'s groups in one flat dict (for logs and summaries)."""
    flat: dict[str, float | int] = {}
    for group in ("reconstruction", "probes", "codebook"):
        for key, value in results.get(group, {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool) and key not in _COUNTS:
                flat[key] = value
    return flat


def stage1_record(results: dict[str, Any], *, checkpoint: Path, run_root: Path, step: int) -> dict[str, Any]:
    """The ``"stage1"`` entry of results.json: the numbers plus which checkpoint and protocol made them."""
    try:
        checkpoint_name = str(Path(checkpoint).relative_to(run_root))
    except ValueError:
        checkpoint_name = str(checkpoint)
    return {
        **results,
        "checkpoint": checkpoint_name,
        "step": int(step),
        "protocol": (
            "eval mode, original view; recon = MSE(x, x_hat) + MSE(STFT(x), decoder output), dataset mean; "
            "probes: z_q global average pool, MinMaxScaler(-1, 1) fit on train, KNN and linear SVC fit on "
            "train, accuracy on test"
        ),
    }
