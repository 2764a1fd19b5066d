"""Stage-1 evaluation: no state change, dataset-mean reconstruction, probes vs a reference, results.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ncvqvae.config import resolve_config
from ncvqvae.data.dataset import PreparedData
from ncvqvae.evaluation import stage1 as stage1_module
from ncvqvae.evaluation.stage1 import (
    codebook_stats,
    evaluate_stage1,
    evaluate_stage1_run,
    extract_features,
    headline,
    probe_accuracy,
    reconstruction_error,
)
from ncvqvae.models.tokenizer import build_tokenizer
from ncvqvae.rundir import update_results
from ncvqvae.stage1 import train_stage1

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread


def tiny_data(n_train: int = 40, n_test: int = 30, length: int = 32, labelled: bool = True) -> PreparedData:
    gen = torch.Generator().manual_seed(1)
    y = torch.arange(n_train + n_test) % 3
    t = torch.linspace(0, 1, length)
    X = torch.sin(2 * torch.pi * (y[:, None] + 1) * t + torch.rand(len(y), 1, generator=gen) * 6)
    X = (X + 0.2 * torch.randn(len(y), length, generator=gen))[:, None, :].float()
    return PreparedData(
        name="sines", X_train=X[:n_train], y_train=y[:n_train] if labelled else None, X_test=X[n_train:],
        y_test=y[n_train:] if labelled else None, n_classes=3 if labelled else 0,
    )


def tiny_model(method: str = "vibcreg") -> torch.nn.Module:
    cfg = resolve_config(overrides=[
        f"stage1.method={method}", "stage1.hidden_dim=16", "stage1.n_res_blocks=1", "stage1.codebook_size=8",
        "stage1.projector_dim=32", "stage1.iternorm_groups=4",
    ]).stage1
    torch.manual_seed(0)
    model = build_tokenizer(cfg, 1, 32)
    # A few training-mode forwards so BatchNorm statistics and the EMA codebook are not at their init.
    data = tiny_data()
    with torch.no_grad():
        for _ in range(2):
            model(data.X_train, data.X_train.flip(-1))
    return model


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer (EMA codebook, BN running stats, IterNorm state), cloned."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_evaluation_changes_no_parameter_buffer_or_mode() -> None:
    model, data = tiny_model(), tiny_data()
    model.train()
    model.quantizer.eval()  # a mixed train/eval state must come back as it was
    modes = {name: m.training for name, m in model.named_modules()}
    before = snapshot(model)
    results = evaluate_stage1(model, data)
    after = snapshot(model)
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), f"{key} changed during evaluation"
    assert modes == {name: m.training for name, m in model.named_modules()}
    assert {"recon", "knn_accuracy", "svm_accuracy", "perplexity", "usage"} <= headline(results).keys()


def test_reconstruction_is_a_dataset_mean() -> None:
    model, data = tiny_model(), tiny_data()
    X = torch.cat([data.X_train, data.X_test])
    model.eval()
    with torch.no_grad():
        whole = model(X)  # one batch over the whole set = the dataset mean by definition
    result = reconstruction_error(model, X, batch_size=16)  # batches of 16, 16, 16, 16, 6: unequal
    assert result["n"] == len(X)
    assert result["recon_time"] == pytest.approx(F.mse_loss(whole.x_hat, X).item(), rel=1e-5)
    assert result["recon_time"] == pytest.approx(whole.terms["recon_time"].item(), rel=1e-5)
    assert result["recon_freq"] == pytest.approx(whole.terms["recon_freq"].item(), rel=1e-5)
    assert result["recon"] == pytest.approx(result["recon_time"] + result["recon_freq"])


def _reference_knn_accuracy(F_train: np.ndarray, y_train: np.ndarray, F_test: np.ndarray, y_test: np.ndarray,
                            k: int) -> float:
    """MinMax(-1, 1) from train statistics, Euclidean k-NN, majority vote (lowest label wins ties)."""
    lo, hi = F_train.min(axis=0), F_train.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    a = 2 * (F_train - lo) / span - 1
    b = 2 * (F_test - lo) / span - 1
    correct = 0
    for i in range(len(b)):
        dist = np.sqrt(((a - b[i]) ** 2).sum(axis=1))
        nearest = np.argsort(dist, kind="stable")[:k]
        votes = np.bincount(y_train[nearest], minlength=y_train.max() + 1)
        correct += int(np.argmax(votes) == y_test[i])
    return correct / len(b)


def test_probe_matches_a_reference_and_fits_the_scaler_on_train_only() -> None:
    model, data = tiny_model(), tiny_data()
    features_train = extract_features(model, data.X_train)
    features_test = extract_features(model, data.X_test)
    model.eval()
    with torch.no_grad():
        assert np.allclose(features_test, model.pooled_features(data.X_test).double().numpy())
    result = probe_accuracy(model, data.X_train, data.y_train, data.X_test, data.y_test, k=5, C=1.0)
    y_train, y_test = data.y_train.numpy(), data.y_test.numpy()
    expected = _reference_knn_accuracy(features_train, y_train, features_test, y_test, 5)
    assert result["knn_accuracy"] == pytest.approx(expected)
    # Scaling from train only: a test set with an extreme extra series predicts the others the same way.
    X_more = torch.cat([data.X_test, 50 * data.X_test[:1]])
    y_more = torch.cat([data.y_test, data.y_test[:1]])
    more = probe_accuracy(model, data.X_train, data.y_train, X_more, y_more, k=5)
    n = len(data.X_test)
    first_n_correct = round(result["knn_accuracy"] * n)
    assert round(more["knn_accuracy"] * (n + 1)) - first_n_correct in (0, 1)
    assert 0.0 <= result["svm_accuracy"] <= 1.0


def test_codebook_stats_agree_with_the_tokens() -> None:
    model, data = tiny_model(), tiny_data()
    stats = codebook_stats(model, data.X_test, batch_size=7, grid_series=5)
    model.eval()
    with torch.no_grad():
        tokens = model.encode(data.X_test)
    counts = torch.bincount(tokens.flatten(), minlength=model.codebook_size).double()
    p = counts[counts > 0] / counts.sum()
    assert stats["code_counts"] == counts.long().tolist()
    assert stats["used_codes"] == int((counts > 0).sum())
    assert stats["usage"] == pytest.approx(stats["used_codes"] / model.codebook_size)
    assert stats["perplexity"] == pytest.approx(float(torch.exp(-(p * p.log()).sum())))
    assert stats["token_grid"].shape == (5, *model.token_grid)
    assert torch.equal(stats["token_grid"].flatten(1), tokens[:5])


def test_unlabelled_data_skips_the_probes() -> None:
    results = evaluate_stage1(tiny_model("baseline"), tiny_data(labelled=False))
    assert results["probes"] == {"note": "probes skipped: the data has no labels or no test split"}
    assert results["reconstruction"]["recon"] > 0 and "knn_accuracy" not in headline(results)


def test_evaluate_run_merges_into_results_json(tmp_path: Path) -> None:
    cfg = resolve_config(overrides=[
        "progress=false", "stage1.method=baseline", "stage1.hidden_dim=16", "stage1.n_res_blocks=1",
        "stage1.codebook_size=8", "stage1.batch_size=20", "stage1.epochs=1",
    ])
    data = tiny_data()
    train_stage1(cfg, tmp_path, data=data)
    (tmp_path / "results.json").write_text(json.dumps({"generation": {"fid": 1.5}}))
    record = evaluate_stage1_run(tmp_path, device="cpu", data=data)
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["generation"] == {"fid": 1.5}
    assert written["stage1"] == json.loads(json.dumps(record))
    assert record["checkpoint"].endswith("final.pt") and record["step"] == 2
    assert {"reconstruction", "probes", "codebook", "protocol"} <= record.keys()
    assert len(record["codebook"]["token_grid"]) == 8


def test_stage1_results_are_read_when_stored_and_evaluated_when_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def fake_evaluate(run_dir: Path, **kwargs: object) -> dict:
        calls.append(Path(run_dir))
        update_results(run_dir, "stage1", {"probes": {"knn_accuracy": 0.5}})
        return {"probes": {"knn_accuracy": 0.5}}

    monkeypatch.setattr(stage1_module, "evaluate_stage1_run", fake_evaluate)
    assert stage1_module.stage1_results(tmp_path) == {"probes": {"knn_accuracy": 0.5}} and calls == [tmp_path]
    assert stage1_module.stage1_results(tmp_path) == {"probes": {"knn_accuracy": 0.5}} and len(calls) == 1
