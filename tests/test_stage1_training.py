"""Stage-1 training loop: determinism, exact resume, guards, idempotence, checkpoints (tiny models)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from ncvqvae import stage1 as stage1_module
from ncvqvae.config import RunConfig, replace, resolve_config
from ncvqvae.data.dataset import PreparedData
from ncvqvae.errors import CheckpointError, ConfigError, TrainingError
from ncvqvae.stage1 import load_stage1_checkpoint, load_tokenizer, train_stage1
from ncvqvae.training import load_checkpoint, read_metrics

# 3 steps per epoch (48 series, batch 16), 2 epochs: the kill at step 4 lands mid-epoch.
TINY = [
    "progress=false",
    "seed=3",
    "stage1.method=vibcreg",
    "stage1.augmentation.names=[warp,gauss]",
    "stage1.hidden_dim=16",
    "stage1.n_res_blocks=1",
    "stage1.codebook_size=8",
    "stage1.projector_dim=32",
    "stage1.iternorm_groups=4",
    "stage1.dropout=0.1",  # exercises the global RNG state in checkpoints
    "stage1.batch_size=16",
    "stage1.epochs=2",
    "stage1.log_every=1",
    "stage1.checkpoint_every=100",
    "evaluation.knn_k=3",
]
N_STEPS = 6


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread


def tiny_config(*extra: str) -> RunConfig:
    return resolve_config(overrides=[*TINY, *extra])


def tiny_data(n_train: int = 48, n_test: int = 24, length: int = 32, seed: int = 0) -> PreparedData:
    """Three classes of noisy sines of different frequencies, already normalised."""
    gen = torch.Generator().manual_seed(seed)
    n = n_train + n_test
    y = torch.arange(n) % 3
    t = torch.linspace(0, 1, length)
    X = torch.sin(2 * torch.pi * (y[:, None] + 1) * t[None, :] + torch.rand(n, 1, generator=gen) * 6)
    X = (X + 0.1 * torch.randn(n, length, generator=gen))[:, None, :].float()
    return PreparedData(
        name="tiny-sines", X_train=X[:n_train], y_train=y[:n_train], X_test=X[n_train:], y_test=y[n_train:],
        n_classes=3, label_values=("a", "b", "c"), class_names=("a", "b", "c"),
    )


def step_records(run_dir: Path) -> list[dict]:
    """The metric records without wall-clock fields (those legitimately differ between runs)."""
    records = read_metrics(run_dir / "stage1" / "metrics.jsonl")
    return [{k: v for k, v in r.items() if k not in ("time", "samples_per_s")} for r in records]


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], dict):
            assert_same_tensors(a[key], b[key])
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    """An uninterrupted tiny NC run (shared by the determinism and resume tests)."""
    run_dir = tmp_path_factory.mktemp("straight")
    train_stage1(tiny_config(), run_dir, data=tiny_data())
    return run_dir


def test_run_directory_contents(straight_run: Path) -> None:
    final = straight_run / "stage1" / "checkpoints" / "final.pt"
    assert final.is_file() and not (straight_run / "stage1" / "checkpoints" / "last.pt").exists()
    assert (straight_run / "config.yaml").is_file()

    records = read_metrics(straight_run / "stage1" / "metrics.jsonl")
    steps = [r for r in records if "event" not in r]
    assert [r["step"] for r in steps] == list(range(1, N_STEPS + 1))
    for key in ("epoch", "lr", "loss", "recon_time", "recon_freq", "commitment", "ssl", "samples_per_s"):
        assert key in steps[0], key
    assert steps[0]["lr"] == pytest.approx(1e-3)  # the lr the first step used
    assert steps[-1]["lr"] < steps[0]["lr"]  # cosine, stepped per step
    epochs = [r for r in records if r.get("event") == "epoch"]
    assert [(r["epoch"], r["step"]) for r in epochs] == [(0, 3), (1, 6)]
    assert epochs[0]["loss"] == pytest.approx(sum(r["loss"] for r in steps[:3]) / 3)
    evals = [r for r in records if r.get("event") == "eval"]
    assert len(evals) == 1 and evals[0]["step"] == N_STEPS and "knn_accuracy" in evals[0]

    results = json.loads((straight_run / "results.json").read_text())["stage1"]
    assert results["checkpoint"] == os.path.join("stage1", "checkpoints", "final.pt")
    assert results["step"] == N_STEPS
    recon, probes = results["reconstruction"], results["probes"]
    assert recon["split"] == "test" and recon["n"] == 24
    assert recon["recon"] == pytest.approx(recon["recon_time"] + recon["recon_freq"])
    assert 0.0 <= probes["knn_accuracy"] <= 1.0 and 0.0 <= probes["svm_accuracy"] <= 1.0
    assert evals[0]["recon"] == recon["recon"] and evals[0]["knn_accuracy"] == probes["knn_accuracy"]


def test_checkpoint_payload_and_load_tokenizer(straight_run: Path) -> None:
    checkpoint = load_stage1_checkpoint(straight_run)
    assert checkpoint["step"] == N_STEPS and checkpoint["epoch"] == 2
    stats = checkpoint["data_stats"]
    assert stats["name"] == "tiny-sines" and stats["n_classes"] == 3
    assert stats["label_values"] == ["a", "b", "c"]
    assert stats["class_counts"] == [16, 16, 16] and stats["length"] == 32 and stats["channels"] == 1
    assert checkpoint["run_config"]["stage1"]["projector_dim"] == 32
    for key in ("optimizer", "scheduler", "rng", "model_config"):
        assert key in checkpoint

    model = load_tokenizer(straight_run)
    assert not model.training
    assert_same_tensors(model.state_dict(), checkpoint["model"])
    # A checkpoint file given directly works too.
    assert_same_tensors(load_tokenizer(checkpoint["path"]).state_dict(), checkpoint["model"])


def test_same_seed_is_bit_identical_and_other_seed_is_not(straight_run: Path, tmp_path: Path) -> None:
    train_stage1(tiny_config(), tmp_path / "again", data=tiny_data())
    first = load_checkpoint(straight_run / "stage1" / "checkpoints" / "final.pt")
    again = load_checkpoint(tmp_path / "again" / "stage1" / "checkpoints" / "final.pt")
    assert_same_tensors(first["model"], again["model"])
    assert step_records(straight_run) == step_records(tmp_path / "again")

    train_stage1(tiny_config("seed=4"), tmp_path / "other", data=tiny_data())
    other = load_checkpoint(tmp_path / "other" / "stage1" / "checkpoints" / "final.pt")
    assert not all(torch.equal(first["model"][k], other["model"][k]) for k in first["model"])


def test_exact_resume_after_kill(straight_run: Path, tmp_path: Path) -> None:
    cfg, data = tiny_config(), tiny_data()
    stopped = train_stage1(cfg, tmp_path, data=data, stop_after_steps=4)
    assert stopped.name == "last.pt" and load_checkpoint(stopped)["step"] == 4
    assert not (tmp_path / "stage1" / "checkpoints" / "final.pt").exists()
    # A bookkeeping change (logging, progress) is allowed on resume.
    bookkeeping = replace(cfg, **{"stage1.checkpoint_every": 50, "stage1.log_every": 1, "progress": True})
    final = train_stage1(bookkeeping, tmp_path, data=data)

    straight = load_checkpoint(straight_run / "stage1" / "checkpoints" / "final.pt")
    resumed = load_checkpoint(final)
    for key in ("model", "optimizer", "scheduler"):
        assert_same_tensors(straight[key], resumed[key])
    assert step_records(straight_run) == step_records(tmp_path)


def test_resume_with_a_different_config_is_refused(tmp_path: Path) -> None:
    data = tiny_data()
    train_stage1(tiny_config(), tmp_path, data=data, stop_after_steps=2)
    with pytest.raises(ConfigError, match=r"stage1\.lr.*stage1\.projector_dim|stage1\.lr"):
        train_stage1(tiny_config("stage1.lr=0.01", "stage1.projector_dim=16"), tmp_path, data=data)
    with pytest.raises(CheckpointError, match="other data"):
        train_stage1(tiny_config(), tmp_path, data=tiny_data(n_train=45))


def test_no_resume_starts_over(tmp_path: Path) -> None:
    data = tiny_data()
    train_stage1(tiny_config(), tmp_path, data=data, stop_after_steps=2)
    train_stage1(tiny_config("stage1.lr=0.01"), tmp_path, data=data, resume=False, stop_after_steps=1)
    assert load_checkpoint(tmp_path / "stage1" / "checkpoints" / "last.pt")["step"] == 1
    assert [r["step"] for r in read_metrics(tmp_path / "stage1" / "metrics.jsonl")] == [1]


def test_finished_run_is_not_redone(straight_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    final = straight_run / "stage1" / "checkpoints" / "final.pt"
    before = (final.stat().st_mtime_ns, (straight_run / "stage1" / "metrics.jsonl").read_bytes())

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished run must not build a model")

    monkeypatch.setattr(stage1_module, "_build_model", no_model)
    assert train_stage1(tiny_config("stage1.log_every=5"), straight_run, data=tiny_data()) == final
    assert before == (final.stat().st_mtime_ns, (straight_run / "stage1" / "metrics.jsonl").read_bytes())
    with pytest.raises(ConfigError, match="stage1.epochs"):
        train_stage1(tiny_config("stage1.epochs=3"), straight_run, data=tiny_data())


def test_non_finite_loss_stops_with_step_and_terms(tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"non-finite loss at step \d+: loss=.*recon_time=.*ssl="):
        train_stage1(tiny_config("stage1.lr=1e30"), tmp_path, data=tiny_data())
    assert not (tmp_path / "stage1" / "checkpoints" / "final.pt").exists()


def test_truncated_or_foreign_checkpoint_gives_a_clear_error(straight_run: Path, tmp_path: Path) -> None:
    good = (straight_run / "stage1" / "checkpoints" / "final.pt").read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good[: len(good) // 3])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_tokenizer(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {}}, foreign)
    with pytest.raises(CheckpointError, match="not an ncvqvae checkpoint"):
        load_tokenizer(foreign)
    with pytest.raises(CheckpointError, match="no stage-1 checkpoint"):
        load_tokenizer(tmp_path / "empty-run")
    # An interrupted run resumes only from a readable checkpoint.
    run = tmp_path / "run"
    (run / "stage1" / "checkpoints").mkdir(parents=True)
    (run / "stage1" / "checkpoints" / "last.pt").write_bytes(good[:100])
    with pytest.raises(CheckpointError, match="last.pt"):
        train_stage1(tiny_config(), run, data=tiny_data())


def test_baseline_trains_without_the_ssl_branch(tmp_path: Path) -> None:
    final = train_stage1(tiny_config("stage1.method=baseline", "stage1.epochs=1"), tmp_path, data=tiny_data())
    records = [r for r in read_metrics(tmp_path / "stage1" / "metrics.jsonl") if "event" not in r]
    assert "ssl" not in records[0] and "recon_time" in records[0]
    assert load_tokenizer(final).method == "baseline"


def test_periodic_evaluation_leaves_training_unchanged(straight_run: Path, tmp_path: Path) -> None:
    train_stage1(tiny_config("stage1.eval_every=1"), tmp_path, data=tiny_data())
    evals = [r for r in read_metrics(tmp_path / "stage1" / "metrics.jsonl") if r.get("event") == "eval"]
    assert [(r["epoch"], r["step"]) for r in evals] == [(0, 3), (1, 6)]
    straight = load_checkpoint(straight_run / "stage1" / "checkpoints" / "final.pt")
    with_evals = load_checkpoint(tmp_path / "stage1" / "checkpoints" / "final.pt")
    assert_same_tensors(straight["model"], with_evals["model"])
