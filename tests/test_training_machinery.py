"""Tests of the shared training machinery: batches, schedules, checkpoints, RNG state, logs, writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ncvqvae.config import RunConfig, replace
from ncvqvae.errors import CheckpointError, TrainingError
from ncvqvae.home import atomic_path, atomic_write_json, atomic_write_text
from ncvqvae.training import (
    MetricsLog,
    RunDir,
    check_finite,
    cosine_schedule,
    derive_seed,
    epoch_batches,
    file_sha256,
    load_checkpoint,
    make_generator,
    read_metrics,
    rng_state,
    save_checkpoint,
    set_rng_state,
    state_dict_sha256,
    steps_per_epoch,
)


class Foreign:
    """A class a weights-only load must refuse to unpickle."""

    def __init__(self) -> None:
        self.value = 1


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------ batches and schedules


def test_epoch_batches_are_a_pure_function_of_seed_and_epoch() -> None:
    a = epoch_batches(50, 8, seed=1, epoch=3)
    assert all(torch.equal(x, y) for x, y in zip(a, epoch_batches(50, 8, seed=1, epoch=3), strict=True))
    assert not torch.equal(torch.cat(a), torch.cat(epoch_batches(50, 8, seed=1, epoch=4)))
    assert not torch.equal(torch.cat(a), torch.cat(epoch_batches(50, 8, seed=2, epoch=3)))
    assert sorted(torch.cat(a).tolist()) == list(range(50))  # a permutation: every sample once
    ordered = epoch_batches(10, 4, seed=0, epoch=0, shuffle=False)
    assert [b.tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_epoch_batches_merge_a_trailing_singleton() -> None:
    batches = epoch_batches(9, 4, seed=0, epoch=0)
    assert [len(b) for b in batches] == [4, 5]
    assert [len(b) for b in epoch_batches(1, 4, seed=0, epoch=0)] == [1]  # nothing to merge into


@pytest.mark.parametrize("n", [1, 2, 3, 7, 8, 9, 15, 16, 17, 128, 129, 130, 257])
@pytest.mark.parametrize("batch_size", [1, 2, 8, 128])
def test_steps_per_epoch_agrees_with_epoch_batches(n: int, batch_size: int) -> None:
    batches = epoch_batches(n, batch_size, seed=0, epoch=0)
    assert steps_per_epoch(n, batch_size) == len(batches)
    assert sum(len(b) for b in batches) == n
    if n > 1:
        assert min(len(b) for b in batches) >= min(2, batch_size)


def test_cosine_schedule_reaches_zero_after_t_max_steps() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param], lr=1e-3)
    sched = cosine_schedule(opt, t_max=10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1e-3)
    assert lrs[5] == pytest.approx(0.5e-3 * (1 + math.cos(math.pi * 5 / 10)))
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_seeds_and_generators() -> None:
    assert derive_seed(1, "epoch", 2) == derive_seed(1, "epoch", 2) != derive_seed(1, "epoch", 3)
    assert 0 <= derive_seed("x") < 2**63
    a = torch.rand(3, generator=make_generator(5))
    assert torch.equal(a, torch.rand(3, generator=make_generator(5)))


def test_check_finite_names_step_and_terms() -> None:
    check_finite(3, {"recon": 1.0, "vq": torch.tensor(0.5)})
    with pytest.raises(TrainingError, match=r"step 17: recon=1, ssl=nan, vq=inf"):
        check_finite(17, {"recon": torch.tensor(1.0), "ssl": float("nan"), "vq": torch.tensor(math.inf)})


# ------------------------------------------------------------------------------ RNG state


def test_rng_state_round_trip_restores_every_stream() -> None:
    gens = {"aug": make_generator(1), "mask": make_generator(2)}
    torch.manual_seed(0)
    state = rng_state(gens)
    first = (torch.rand(4), torch.rand(4, generator=gens["aug"]), torch.rand(4, generator=gens["mask"]))
    fresh = {"aug": make_generator(99), "mask": make_generator(98)}
    set_rng_state(state, fresh)
    second = (torch.rand(4), torch.rand(4, generator=fresh["aug"]), torch.rand(4, generator=fresh["mask"]))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    with pytest.raises(CheckpointError, match="gen:other"):
        set_rng_state(state, {"other": make_generator(0)})


def test_rng_state_survives_a_checkpoint(tmp_path: Path) -> None:
    gen = make_generator(3)
    save_checkpoint(tmp_path / "c.pt", "stage1", {"rng": rng_state({"loop": gen})})
    expected = torch.rand(5, generator=gen)
    restored = make_generator(0)
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"], {"loop": restored})
    assert torch.equal(torch.rand(5, generator=restored), expected)


# ------------------------------------------------------------------------------ checkpoints


def test_checkpoint_round_trip(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    cfg = replace(RunConfig(), **{"stage1.epochs": 2})
    path = tmp_path / "ckpt" / "last.pt"
    payload = {"model": model.state_dict(), "config": {"epochs": 2}, "step": 7, "names": ["a"]}
    save_checkpoint(path, "stage1", payload)
    data = load_checkpoint(path, kind="stage1")
    assert data["format"] == "ncvqvae-checkpoint" and data["kind"] == "stage1" and data["step"] == 7
    other = torch.nn.Linear(3, 2)
    other.load_state_dict(data["model"])
    assert state_dict_sha256(other.state_dict()) == state_dict_sha256(model.state_dict())
    assert leftovers(path.parent) == []
    with pytest.raises(CheckpointError, match="expected a stage2 checkpoint, found a stage1"):
        load_checkpoint(path, kind="stage2")
    assert cfg.stage1.epochs == 2


def test_truncated_checkpoint_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "full.pt"
    save_checkpoint(path, "stage1", {"w": torch.randn(100, 100)})
    cut = tmp_path / "cut.pt"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="cut.pt: not a readable checkpoint"):
        load_checkpoint(cut)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="garbage.pt"):
        load_checkpoint(garbage)


def test_foreign_files_are_refused(tmp_path: Path) -> None:
    pickled = tmp_path / "foreign.pt"
    torch.save({"format": "ncvqvae-checkpoint", "version": 1, "obj": Foreign()}, pickled)
    with pytest.raises(CheckpointError, match="foreign.pt: refused to load"):
        load_checkpoint(pickled)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="no 'ncvqvae-checkpoint' marker"):
        load_checkpoint(plain)
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(2), tensor)
    with pytest.raises(CheckpointError, match="marker"):
        load_checkpoint(tensor)
    future = tmp_path / "future.pt"
    torch.save({"format": "ncvqvae-checkpoint", "version": 99}, future)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(future)


def test_failed_checkpoint_write_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, "stage1", {"step": 1})
    before = file_sha256(path)
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises for an unpicklable value
        save_checkpoint(path, "stage1", {"step": 2, "bad": lambda: None})
    assert file_sha256(path) == before and load_checkpoint(path)["step"] == 1
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------ atomic writes


def test_atomic_writes_leave_no_temp_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("boom")
    assert target.read_text() == "old" and leftovers(tmp_path) == []
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "r.json", {"x": object()})
    assert not (tmp_path / "r.json").exists() and leftovers(tmp_path) == []
    atomic_write_json(tmp_path / "r.json", {"x": torch.tensor(1.5), "p": tmp_path})
    assert json.loads((tmp_path / "r.json").read_text()) == {"x": 1.5, "p": str(tmp_path)}


# ------------------------------------------------------------------------------ run dirs and logs


def test_run_dir_layout_and_config_round_trip(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    cfg = replace(RunConfig(), **{"stage1.augmentation.names": ("slice",), "seed": 3})
    run.write_config(cfg)
    assert run.read_config() == cfg
    assert run.checkpoint_path("stage1", "final") == tmp_path / "run" / "stage1" / "checkpoints" / "final.pt"
    assert not run.is_finished("stage1")
    save_checkpoint(run.checkpoint_path("stage1", "final"), "stage1", {})
    assert run.is_finished("stage1")
    with pytest.raises(CheckpointError, match="not a run directory"):
        RunDir(tmp_path / "nothing").read_config()


def test_metrics_log_truncates_on_resume(tmp_path: Path) -> None:
    path = tmp_path / "stage1" / "metrics.jsonl"
    with MetricsLog(path) as log:
        for step in range(1, 6):
            log.write({"step": step, "loss": torch.tensor(step / 10)})
    with open(path, "a") as fh:
        fh.write('{"step": 6, "lo')  # a torn last line (crash mid-write)
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5]
    assert read_metrics(path)[0]["loss"] == pytest.approx(0.1)
    log = MetricsLog(path, resume_step=3)  # resumed from the step-3 checkpoint
    log.write({"step": 4, "loss": 9.0})
    log.close()
    log.close()  # closing twice is harmless
    records = read_metrics(path)
    assert [r["step"] for r in records] == [1, 2, 3, 4] and records[-1]["loss"] == 9.0
    with MetricsLog(path):  # a fresh (not resumed) run starts a new log
        pass
    assert read_metrics(path) == []
    assert read_metrics(tmp_path / "absent.jsonl") == []


def test_atomic_writes_get_ordinary_file_permissions(tmp_path: Path) -> None:
    """Files written atomically are readable by others like any file open() creates (not mkstemp's 0600)."""
    import os

    from ncvqvae.home import atomic_write_text

    mask = os.umask(0o022)
    os.umask(mask)
    atomic_write_text(tmp_path / "a.txt", "hello")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_budget_in_steps_and_warmup() -> None:
    """A budget in steps ignores epochs and ends its cosine at the last step; warm-up rises linearly."""
    from ncvqvae.training import cosine_schedule, plan_steps

    plan = plan_steps(27, 128, epochs=20, steps=300)
    assert (plan.total_steps, plan.t_max, plan.steps_per_epoch) == (300, 300, 1)
    assert plan_steps(27, 128, epochs=20, max_steps=50, steps=300).total_steps == 50
    assert plan_steps(1000, 128, epochs=20).total_steps == 160  # epochs as before
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = cosine_schedule(optimizer, t_max=10, warmup=4)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:6] == pytest.approx([0.25, 0.4375, 0.625, 0.8125, 1.0, (1 + math.cos(math.pi / 6)) / 2])
    assert lrs[-1] < 0.1 and all(a >= b for a, b in zip(lrs[4:], lrs[5:], strict=False))


def test_results_json_has_one_reader_and_one_error_policy(tmp_path: Path) -> None:
    """Issue 16: the report, the evaluation and the CLI read results.json through rundir.read_results."""
    from ncvqvae.errors import DataError
    from ncvqvae.evaluation import pipeline
    from ncvqvae.experiments import report
    from ncvqvae.rundir import read_results, update_results

    assert read_results(tmp_path) == {}
    assert report.read_results is read_results and pipeline.read_results is read_results
    update_results(tmp_path, "stage1", {"recon": 0.5})
    assert read_results(tmp_path) == {"stage1": {"recon": 0.5}}
    (tmp_path / "results.json").write_text("{not json")
    with pytest.raises(DataError, match="results.json: not valid JSON"):
        read_results(tmp_path)
    with pytest.raises(DataError, match="not valid JSON"):  # never overwritten silently
        update_results(tmp_path, "generation", {})
    assert (tmp_path / "results.json").read_text() == "{not json"
