"""`ncvqvae train stage1` and `ncvqvae evaluate stage1` end to end on the built-in gen-twopatterns data."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ncvqvae.cli import main
from ncvqvae.config import RunConfig, resolve_config
from ncvqvae.experiments.variants import Variant
from ncvqvae.rundir import default_run_dir
from ncvqvae.training import RunDir, load_checkpoint, read_metrics

SMALL = [
    "--preset",
    "smoke",
    "--set",
    "data.n_train=40",
    "--set",
    "data.n_test=30",
    "--set",
    "stage1.hidden_dim=16",
    "--set",
    "stage1.n_res_blocks=1",
    "--set",
    "stage1.batch_size=16",
    "--no-progress",
]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread


def test_train_then_rerun_then_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = [
        "train",
        "stage1",
        "--dataset",
        "gen-twopatterns",
        "--method",
        "barlowtwins",
        "--aug",
        "slice,gauss",
        "--seed",
        "2",
        "--epochs",
        "2",
        "--max-steps",
        "3",
        "--out",
        str(out),
        *SMALL,
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"stage 1 run: {out}" in printed and "knn_accuracy" in printed and "recon" in printed

    cfg = RunDir(out).read_config()
    assert cfg.seed == 2 and cfg.stage1.method == "barlowtwins" and cfg.stage1.epochs == 2
    assert cfg.stage1.augmentation.names == ("slice", "gauss") and cfg.data.n_train == 40
    assert cfg.stage1.projector_dim == 64 and cfg.progress is False  # from the smoke preset and the flag
    steps = [r["step"] for r in read_metrics(out / "stage1" / "metrics.jsonl") if "event" not in r]
    assert steps == [1, 2, 3]

    # The same command again: nothing is retrained, the results are printed again.
    final = out / "stage1" / "checkpoints" / "final.pt"
    mtime = final.stat().st_mtime_ns
    assert main(argv) == 0
    assert final.stat().st_mtime_ns == mtime and "knn_accuracy" in capsys.readouterr().out

    results_path = out / "results.json"
    results_path.write_text(json.dumps({"generation": {"fid": 2.0}}))
    assert main(["evaluate", "stage1", "--run", str(out), "--device", "cpu"]) == 0
    results = json.loads(results_path.read_text())
    assert results["generation"] == {"fid": 2.0} and results["stage1"]["step"] == 3
    assert "svm_accuracy" in capsys.readouterr().out


def test_user_errors_exit_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "stage1", "--out", str(tmp_path / "none"), "--resume", *SMALL]) == 2
    assert "no stage-1 checkpoint to resume" in capsys.readouterr().err
    assert main(["train", "stage1", "--out", str(tmp_path / "x"), "--set", "stage1.nope=1"]) == 2
    assert "stage1.nope" in capsys.readouterr().err
    assert main(["train", "stage1", "--out", str(tmp_path / "y"), "--device", "cuda:99", *SMALL]) == 2
    assert "cuda:99" in capsys.readouterr().err
    assert main(["evaluate", "stage1", "--run", str(tmp_path / "missing")]) == 2
    assert "config.yaml" in capsys.readouterr().err


def test_default_run_directory_names_are_the_same_for_train_stage1_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 16: one name for both commands; an old train-stage1 directory of the same preset is still
    found to resume, one of another preset is not taken."""
    monkeypatch.chdir(tmp_path)

    def name(cfg: RunConfig, **kwargs: bool) -> Path:
        return default_run_dir(cfg, Variant.from_config(cfg).name, **kwargs)

    cfg = resolve_config(overrides=["data.dataset=ECG5000", "stage1.method=vibcreg", "seed=1"])
    assert name(cfg) == name(cfg, legacy_stage1=True) == Path("runs/ECG5000-vibcreg_warp-custom-s1")
    RunDir(tmp_path / "runs" / "ECG5000-vibcreg-warp-s1").write_config(cfg)  # by an older train stage1
    assert name(cfg, legacy_stage1=True) == Path("runs/ECG5000-vibcreg-warp-s1")
    assert name(cfg) == Path("runs/ECG5000-vibcreg_warp-custom-s1")  # run never took it
    quick = resolve_config(
        preset="quick", overrides=["data.dataset=ECG5000", "stage1.method=vibcreg", "seed=1"]
    )
    assert name(quick, legacy_stage1=True) == Path("runs/ECG5000-vibcreg_warp-quick-s1")  # another preset
    cfg = resolve_config(
        preset="quick", overrides=["data.dataset=/data/my.series.npz", "stage1.method=baseline"]
    )
    assert name(cfg) == Path("runs/my.series-baseline-quick-s0")


@pytest.mark.slow
def test_kill_9_then_rerun_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    """A real process killed with SIGKILL after a checkpoint, then the same command again."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # same thread count in every run: same float sums

    def command(out: Path) -> list[str]:
        entry = "import sys; from ncvqvae.cli import main; sys.exit(main(sys.argv[1:]))"
        return [
            sys.executable,
            "-c",
            entry,
            "train",
            "stage1",
            "--dataset",
            "gen-twopatterns",
            "--epochs",
            "40",
            "--out",
            str(out),
            *SMALL,
            "--set",
            "stage1.max_steps=null",
            "--set",
            "stage1.checkpoint_every=5",
        ]

    subprocess.run(command(tmp_path / "straight"), env=env, check=True, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(command(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "stage1" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert last.exists() and not (killed / "stage1" / "checkpoints" / "final.pt").exists()
    subprocess.run(command(killed), env=env, check=True, capture_output=True)

    straight = load_checkpoint(tmp_path / "straight" / "stage1" / "checkpoints" / "final.pt")
    resumed = load_checkpoint(killed / "stage1" / "checkpoints" / "final.pt")
    assert straight["step"] == resumed["step"] == 40 * 3
    torch.testing.assert_close(resumed["model"], straight["model"], rtol=0, atol=0)
    torch.testing.assert_close(resumed["optimizer"]["state"], straight["optimizer"]["state"], rtol=0, atol=0)
