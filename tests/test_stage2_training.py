"""Stage-2 training loop: provenance, determinism, exact resume, guards, tokens, loading (tiny models)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ncvqvae import stage2 as stage2_module
from ncvqvae.config import Decoding, RunConfig, Stage1Config, Stage2Config, replace, resolve_config
from ncvqvae.data.dataset import PreparedData
from ncvqvae.errors import CheckpointError, ConfigError, TrainingError
from ncvqvae.models.tokenizer import build_tokenizer
from ncvqvae.rundir import RunDir
from ncvqvae.sampling import sample
from ncvqvae.stage1 import load_stage1_checkpoint, load_tokenizer, train_stage1
from ncvqvae.stage2 import (
    TrainingTokens,
    build_prior,
    load_generator,
    read_source,
    stage2_config,
    train_stage2,
)
from ncvqvae.training import file_sha256, load_checkpoint, read_metrics, save_checkpoint

# 48 series, batch 16: 3 steps per epoch, 2 epochs; the kill at step 4 lands mid-epoch.
TINY = [
    "progress=false",
    "seed=5",
    "stage1.method=baseline",
    "stage1.hidden_dim=16",
    "stage1.n_res_blocks=1",
    "stage1.codebook_size=8",
    "stage1.batch_size=16",
    "stage1.epochs=1",
    "stage1.checkpoint_every=100",
    "evaluation.knn_k=3",
    "stage2.width=32",
    "stage2.depth=1",
    "stage2.dropout=0.1",  # exercises the global RNG state in checkpoints
    "stage2.batch_size=16",
    "stage2.epochs=2",
    "stage2.log_every=1",
    "stage2.checkpoint_every=100",
]
N_STEPS = 6

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread


def tiny_config(*extra: str) -> RunConfig:
    return resolve_config(overrides=[*TINY, *extra])


def tiny_data(labelled: bool = True) -> PreparedData:
    """Three classes of noisy sines (48 train, 12 test, length 32), already normalised."""
    gen = torch.Generator().manual_seed(0)
    y = torch.arange(60) % 3
    t = torch.linspace(0, 1, 32)
    X = torch.sin(2 * torch.pi * (y[:, None] + 1) * t + torch.rand(60, 1, generator=gen) * 6)
    X = (X + 0.1 * torch.randn(60, 32, generator=gen))[:, None, :].float()
    return PreparedData(
        name="sines", X_train=X[:48], y_train=y[:48] if labelled else None, X_test=X[48:],
        y_test=y[48:] if labelled else None, n_classes=3 if labelled else 0,
        label_values=("1", "2", "3") if labelled else (), class_names=("1", "2", "3") if labelled else (),
    )


@pytest.fixture(scope="module")
def stage1_run(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    run_dir = tmp_path_factory.mktemp("stage1")
    train_stage1(tiny_config(), run_dir, data=tiny_data())
    return run_dir


@pytest.fixture(scope="module")
def straight_run(stage1_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stage 2 trained without interruption in a copy of the stage-1 run."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    shutil.copytree(stage1_run, run_dir)
    train_stage2(tiny_config(), run_dir, data=tiny_data())
    return run_dir


def tiny_tokenizer() -> torch.nn.Module:
    """A fresh (untrained) tokenizer of the tiny run's shape, with no checkpoint file."""
    cfg = Stage1Config(method="baseline", hidden_dim=16, n_res_blocks=1, codebook_size=8)
    return build_tokenizer(cfg, 1, 32)


def stage1_copy(stage1_run: Path, tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(stage1_run, run_dir)
    return run_dir


def step_records(run_dir: Path) -> list[dict]:
    records = read_metrics(run_dir / "stage2" / "metrics.jsonl")
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


# --------------------------------------------------------------------------------------------------


def test_run_records_its_stage1_and_its_metrics(straight_run: Path) -> None:
    final = straight_run / "stage2" / "checkpoints" / "final.pt"
    assert final.is_file() and not (straight_run / "stage2" / "checkpoints" / "last.pt").exists()
    source = read_source(straight_run)
    stage1_final = straight_run / "stage1" / "checkpoints" / "final.pt"
    assert source["sha256"] == file_sha256(stage1_final)
    assert source["stage1_checkpoint_relative"] == str(Path("stage1") / "checkpoints" / "final.pt")
    checkpoint = load_checkpoint(final, "stage2")
    assert checkpoint["source"] == source and checkpoint["step"] == N_STEPS
    assert checkpoint["model_config"]["width"] == 32 and checkpoint["model_config"]["n_classes"] == 3

    records = read_metrics(straight_run / "stage2" / "metrics.jsonl")
    steps = [r for r in records if "event" not in r]
    assert [r["step"] for r in steps] == list(range(1, N_STEPS + 1))
    for key in ("epoch", "lr", "loss", "accuracy", "mask_ratio", "samples_per_s"):
        assert key in steps[0], key
    assert steps[-1]["lr"] < steps[0]["lr"] == pytest.approx(1e-3)  # cosine, stepped per step
    epochs = [r for r in records if r.get("event") == "epoch"]
    assert [(r["epoch"], r["step"]) for r in epochs] == [(0, 3), (1, 6)]
    assert epochs[1]["loss"] == pytest.approx(sum(r["loss"] for r in steps[3:]) / 3)
    # config.yaml of the shared run directory now also describes stage 2
    assert "width: 32" in (straight_run / "config.yaml").read_text()


def test_same_seed_is_bit_identical_and_resume_is_exact(
    straight_run: Path, stage1_run: Path, tmp_path: Path
) -> None:
    straight = load_checkpoint(straight_run / "stage2" / "checkpoints" / "final.pt")

    again = stage1_copy(stage1_run, tmp_path / "again")
    train_stage2(tiny_config(), again, data=tiny_data())
    repeated = load_checkpoint(again / "stage2" / "checkpoints" / "final.pt")
    assert_same_tensors(repeated["model"], straight["model"])

    killed = stage1_copy(stage1_run, tmp_path / "killed")
    last = train_stage2(tiny_config(), killed, data=tiny_data(), stop_after_steps=4)
    assert last.name == "last.pt" and load_checkpoint(last)["step"] == 4
    train_stage2(tiny_config(), killed, data=tiny_data())
    resumed = load_checkpoint(killed / "stage2" / "checkpoints" / "final.pt")
    assert_same_tensors(resumed["model"], straight["model"])
    assert_same_tensors(resumed["optimizer"]["state"], straight["optimizer"]["state"])
    assert step_records(killed) == step_records(straight_run)

    other = stage1_copy(stage1_run, tmp_path / "other")
    train_stage2(tiny_config("stage2.masking=legacy"), other, data=tiny_data())
    differs = load_checkpoint(other / "stage2" / "checkpoints" / "final.pt")["model"]
    assert any(not torch.equal(differs[k], straight["model"][k]) for k in differs)


def test_finished_run_is_not_redone(straight_run: Path) -> None:
    final = straight_run / "stage2" / "checkpoints" / "final.pt"
    before = final.stat().st_mtime_ns
    assert train_stage2(tiny_config("stage2.log_every=5"), straight_run, data=tiny_data()) == final
    assert final.stat().st_mtime_ns == before


def test_raising_max_steps_continues_a_finished_run_exactly(
    straight_run: Path, stage1_run: Path, tmp_path: Path
) -> None:
    run_dir = stage1_copy(stage1_run, tmp_path)
    final = train_stage2(tiny_config("stage2.max_steps=4"), run_dir, data=tiny_data())
    assert final.name == "final.pt" and load_checkpoint(final)["step"] == 4
    before = final.stat().st_mtime_ns
    assert train_stage2(tiny_config("stage2.max_steps=4"), run_dir, data=tiny_data()) == final
    assert final.stat().st_mtime_ns == before  # the same budget again: nothing to do
    assert stage2_module.is_finished(tiny_config("stage2.max_steps=4"), run_dir)
    assert not stage2_module.is_finished(tiny_config("stage2.max_steps=10"), run_dir)  # as the pipeline asks
    # more steps: steps 5-6 continue from the 4-step final checkpoint, exactly as one 6-step run
    train_stage2(tiny_config("stage2.max_steps=10"), run_dir, data=tiny_data())
    extended = load_checkpoint(final)
    straight = load_checkpoint(straight_run / "stage2" / "checkpoints" / "final.pt")
    assert extended["step"] == N_STEPS
    assert_same_tensors(extended["model"], straight["model"])
    assert step_records(run_dir) == step_records(straight_run)
    assert not (run_dir / "stage2" / "checkpoints" / "last.pt").exists()
    assert stage2_module.is_finished(tiny_config("stage2.max_steps=10"), run_dir)
    assert not stage2_module.is_finished(tiny_config(), stage1_run)  # no stage 2 at all


def test_changed_stage1_checkpoint_is_refused(stage1_run: Path, tmp_path: Path) -> None:
    run_dir = stage1_copy(stage1_run, tmp_path)
    train_stage2(tiny_config(), run_dir, data=tiny_data(), stop_after_steps=2)
    stage1_final = run_dir / "stage1" / "checkpoints" / "final.pt"
    old_hash = file_sha256(stage1_final)
    checkpoint = load_stage1_checkpoint(run_dir)
    checkpoint.pop("path")
    checkpoint["model"] = {k: v + 1 if v.is_floating_point() else v for k, v in checkpoint["model"].items()}
    payload = {k: v for k, v in checkpoint.items() if k not in ("format", "version", "kind")}
    save_checkpoint(stage1_final, "stage1", payload)
    new_hash = file_sha256(stage1_final)
    with pytest.raises(CheckpointError) as err:
        train_stage2(tiny_config(), run_dir, data=tiny_data())
    assert old_hash in str(err.value) and new_hash in str(err.value)
    with pytest.raises(CheckpointError, match=old_hash):
        load_generator(run_dir)
    # starting over on the new tokenizer is allowed
    train_stage2(tiny_config(), run_dir, data=tiny_data(), resume=False)
    assert read_source(run_dir)["sha256"] == new_hash


def test_load_generator_rebuilds_the_trained_prior(straight_run: Path) -> None:
    model = load_generator(straight_run)
    checkpoint = load_checkpoint(straight_run / "stage2" / "checkpoints" / "final.pt")
    assert_same_tensors(model.prior.state_dict(), checkpoint["model"])
    assert_same_tensors(model.tokenizer.state_dict(), load_tokenizer(straight_run).state_dict())
    assert not model.prior.training and not model.tokenizer.training
    assert model.decoding == Decoding(steps=10, temperature=1.0, choice_temperature=4.0, guidance=1.0)
    assert model.n_classes == 3 and model.class_counts == [16, 16, 16]
    assert model.label_values == ["1", "2", "3"]
    x, y = sample(model, 5, classes=[0, 1, 2, 0, 1], generator=torch.Generator().manual_seed(0))
    assert x.shape == (5, 1, 32) and torch.isfinite(x).all() and y.tolist() == [0, 1, 2, 0, 1]
    # a moved run directory still finds its stage 1 (the path is recorded relative to the run)
    moved = straight_run.parent / "moved"
    shutil.copytree(straight_run, moved)
    shutil.move(straight_run / "stage1", straight_run.parent / "stage1-away")
    try:
        assert_same_tensors(load_generator(moved).prior.state_dict(), checkpoint["model"])
    finally:
        shutil.move(straight_run.parent / "stage1-away", straight_run / "stage1")


def test_given_tokenizer_must_be_the_checkpoint_one(stage1_run: Path, tmp_path: Path) -> None:
    stranger = tiny_tokenizer()
    with pytest.raises(CheckpointError, match="not the one"):
        train_stage2(tiny_config(), tmp_path / "s2", stage1_dir=stage1_run, tokenizer=stranger,
                     data=tiny_data())
    # the right object is accepted, and a separate run directory records where stage 1 is
    train_stage2(tiny_config(), tmp_path / "s2", stage1_dir=stage1_run, tokenizer=load_tokenizer(stage1_run),
                 data=tiny_data())
    source = json.loads((tmp_path / "s2" / "stage2" / "source.json").read_text())
    assert Path(source["stage1_checkpoint"]) == (stage1_run / "stage1" / "checkpoints" / "final.pt").resolve()


def test_unlabelled_data_trains_an_unconditional_prior_without_stage1_checkpoint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    train_stage2(tiny_config(), tmp_path, tokenizer=tokenizer, data=tiny_data(labelled=False))
    assert read_source(tmp_path)["tokenizer_sha256"]
    with pytest.raises(CheckpointError, match="pass tokenizer="):
        load_generator(tmp_path)
    model = load_generator(tmp_path, tokenizer=tokenizer)
    assert model.n_classes == 0
    x, y = sample(model, 3, generator=torch.Generator().manual_seed(0))
    assert x.shape == (3, 1, 32) and y is None
    with pytest.raises(ConfigError, match="unconditional"):
        sample(model, 3, classes=0)
    with pytest.raises(CheckpointError, match="not the one"):
        load_generator(tmp_path, tokenizer=tiny_tokenizer())


def test_config_change_on_resume_is_refused(stage1_run: Path, tmp_path: Path) -> None:
    run_dir = stage1_copy(stage1_run, tmp_path)
    train_stage2(tiny_config(), run_dir, data=tiny_data(), stop_after_steps=2)
    with pytest.raises(ConfigError, match="stage2.width"):
        train_stage2(tiny_config("stage2.width=16"), run_dir, data=tiny_data())
    with pytest.raises(ConfigError, match="seed"):  # the stage-1 run directory pins seed and data
        train_stage2(tiny_config("seed=6"), run_dir, data=tiny_data(), resume=False)
    with pytest.raises(ConfigError, match="stage2.masking"):
        train_stage2(tiny_config("stage2.masking=muse"), run_dir, data=tiny_data())


def test_non_finite_loss_stops_the_run(
    stage1_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = stage2_module.masked_token_loss

    def poisoned(logits, targets, loss_mask):
        loss, accuracy = real(logits, targets, loss_mask)
        return loss * float("nan"), accuracy

    monkeypatch.setattr(stage2_module, "masked_token_loss", poisoned)
    with pytest.raises(TrainingError, match=r"step 1:.*loss=nan"):
        train_stage2(tiny_config(), stage1_copy(stage1_run, tmp_path), data=tiny_data())


def test_training_tokens_are_the_tokenizers_codes(stage1_run: Path) -> None:
    tokenizer = load_tokenizer(stage1_run)
    X = tiny_data().X_train
    nearest = TrainingTokens.from_tokenizer(tokenizer, X, temperature=0.0)
    index = torch.arange(48)
    assert nearest.logits is None
    assert torch.equal(nearest.draw(index, torch.Generator()), tokenizer.encode(X))
    # τ > 0: stochastic VQ draws code k with probability softmax(−‖z − e_k‖² / τ)
    codes = TrainingTokens.from_tokenizer(tokenizer, X, temperature=1.0)
    assert torch.equal(codes.nearest, nearest.nearest)
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([codes.draw(index[:1], gen)[0, 0] for _ in range(3000)])
    freq = torch.bincount(draws, minlength=8).float() / 3000
    torch.testing.assert_close(freq, codes.logits[0, 0].softmax(-1), atol=0.03, rtol=0)


def test_class_dropout_and_the_thesis_variant(
    stage1_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[torch.Tensor] = []
    real_build = stage2_module.build_prior

    def recording_build(*args, **kwargs):
        prior = real_build(*args, **kwargs)
        prior.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[1].clone()))
        return prior

    monkeypatch.setattr(stage2_module, "build_prior", recording_build)
    for p, run in ((0.0, "keep"), (0.5, "drop")):
        seen.clear()
        run_dir = stage1_copy(stage1_run, tmp_path / run)
        train_stage2(tiny_config(f"stage2.class_dropout={p}"), run_dir, data=tiny_data())
        null_share = (torch.cat(seen) == 3).float().mean()
        assert (null_share == 0) if p == 0 else (0.2 < null_share < 0.8)

    thesis = Stage2Config(variant="thesis", width=32, depth=1)
    assert build_prior(thesis, load_tokenizer(stage1_run), n_classes=3).variant == "token"
    nc_cfg = Stage1Config(hidden_dim=16, n_res_blocks=1, projector_dim=32, iternorm_groups=4)
    nc = build_tokenizer(nc_cfg, 1, 32)
    assert build_prior(thesis, nc, n_classes=3).variant == "codebook"
    assert replace(tiny_config(), **{"stage2.variant": "codebook"}).stage2.variant == "codebook"


def test_stage2_config_starts_from_the_stage1_run_and_keeps_its_tokenizer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trained = replace(RunConfig(), seed=3, **{"data.n_train": 40, "stage1.codebook_size": 16})
    RunDir(tmp_path).write_config(trained)
    cfg = stage2_config(tmp_path, fields={"stage2.epochs": 7, "seed": None}, overrides=["stage2.width=64"])
    assert (cfg.seed, cfg.data, cfg.stage1) == (3, trained.data, trained.stage1)  # the stage-1 run's
    assert (cfg.stage2.epochs, cfg.stage2.width) == (7, 64) and not caplog.records
    # a preset brings stage-1 settings of its own: the tokenizer is the trained one all the same
    with caplog.at_level("WARNING"):
        cfg = stage2_config(tmp_path, preset="smoke", overrides=["stage1.lr=0.5"])
    assert cfg.stage1 == trained.stage1 and cfg.stage2 == resolve_config(preset="smoke").stage2
    assert "used as trained" in caplog.text
