"""How much the reference's probe protocol moves the KNN / SVM probe accuracy (issue 7, docs/reproduction.md).

The reference extracted the probe features with the tokenizer in *training* mode: BatchNorm normalised every
batch with its own statistics (and updated its running statistics), and every batch, test batches included,
moved the EMA codebook (SPEC §5, §7). This project extracts them in eval mode with no state change. This
script scores one finished stage-1 run both ways, on a copy of the model, so the two numbers can be set
side by side.

Usage:  python benchmarks/probe_leak.py RUN_DIR [RUN_DIR ...]
Prints one line per run: clean (eval-mode) and leaky (train-mode) KNN and SVM accuracy.
"""

from __future__ import annotations

import argparse
import copy
import logging

import numpy as np
import torch
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.svm import SVC

from ncvqvae.data.prepare import load_prepared
from ncvqvae.evaluation.stage1 import probe_accuracy
from ncvqvae.models.stft import stft
from ncvqvae.stage1 import load_tokenizer
from ncvqvae.training import RunDir

BATCH = 128  # the reference's loader batch size


@torch.no_grad()
def leaky_features(model: torch.nn.Module, X: torch.Tensor) -> np.ndarray:
    """Pooled z_q (N, D) with the model in training mode: batch-statistics BN, EMA codebook updates."""
    model.train()
    parts = []
    for xb in torch.split(X, BATCH):
        z = model.encoder(stft(xb.float(), model.n_fft))
        parts.append(model.quantizer(z).z_q.mean(dim=(2, 3)).double())
    return torch.cat(parts).numpy()


def leaky_probes(model: torch.nn.Module, data) -> dict[str, float]:  # noqa: ANN001
    """KNN (k 5) and linear SVM accuracy on features from :func:`leaky_features` (train first, then test)."""
    leaky = copy.deepcopy(model)
    f_train, f_test = leaky_features(leaky, data.X_train), leaky_features(leaky, data.X_test)
    y_train, y_test = data.y_train.numpy(), data.y_test.numpy()
    out = {}
    for name, clf in (("knn", KNeighborsClassifier(n_neighbors=5)), ("svm", SVC(kernel="linear", C=1.0))):
        probe = make_pipeline(MinMaxScaler(feature_range=(-1, 1)), clf).fit(f_train, y_train)
        out[name] = float(probe.score(f_test, y_test))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="finished stage-1 run directories")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for run_dir in args.runs:
        cfg = RunDir(run_dir).read_config()
        data = load_prepared(cfg.data, seed=cfg.seed)
        model = load_tokenizer(run_dir)
        clean = probe_accuracy(model, data.X_train, data.y_train, data.X_test, data.y_test)
        leaky = leaky_probes(model, data)
        print(
            f"{run_dir}: clean KNN {clean['knn_accuracy']:.3f} SVM {clean['svm_accuracy']:.3f} | "
            f"reference protocol KNN {leaky['knn']:.3f} SVM {leaky['svm']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
