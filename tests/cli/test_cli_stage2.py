"""CLI: ``ncvqvae train stage2`` and ``ncvqvae sample`` end to end on a tiny run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from ncvqvae import sampling
from ncvqvae.cli import main
from ncvqvae.config import Decoding
from ncvqvae.data import load_dataset
from ncvqvae.stage1 import load_stage1_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one torch thread

STAGE1 = [
    "--dataset", "gen-twopatterns", "--method", "baseline", "--epochs", "1", "--no-progress",
    "--set", "data.n_train=32", "--set", "data.n_test=16", "--set", "stage1.hidden_dim=16",
    "--set", "stage1.n_res_blocks=1", "--set", "stage1.codebook_size=8", "--set", "stage1.batch_size=16",
    "--set", "evaluation.knn_k=3",
]
STAGE2 = ["--epochs", "2", "--no-progress", "--set", "stage2.width=32", "--set", "stage2.depth=1",
          "--set", "stage2.batch_size=16", "--set", "stage2.log_every=1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory, one_thread: None) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "stage1", *STAGE1, "--out", str(run)]) == 0
    assert main(["train", "stage2", "--stage1", str(run), *STAGE2]) == 0
    return run


def test_train_stage2_in_the_stage1_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (run_dir / "stage2" / "checkpoints" / "final.pt").is_file()
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["stage2"]["width"] == 32 and saved["stage2"]["epochs"] == 2
    assert saved["stage1"]["hidden_dim"] == 16 and saved["data"]["n_train"] == 32  # stage 1's record kept
    # again: finished, nothing to do
    assert main(["train", "stage2", "--stage1", str(run_dir), *STAGE2]) == 0
    assert "final checkpoint" in capsys.readouterr().out


def test_sample_class_proportional_to_tsv_with_plot(run_dir: Path, tmp_path: Path) -> None:
    out, png = tmp_path / "synthetic.tsv", tmp_path / "grid.png"
    code = main(["sample", "--run", str(run_dir), "--n", "12", "--class-proportional", "--seed", "1",
                 "--steps", "4", "--out", str(out), "--plot", str(png), "--batch-size", "5"])
    assert code == 0
    data = load_dataset(out)
    assert data.X_train.shape == (12, 1, 128) and data.y_train is not None
    assert set(map(str, data.label_values)) <= {"1", "2", "3", "4"}  # TwoPatterns' original labels
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_sample_one_class_in_original_scale(run_dir: Path, tmp_path: Path) -> None:
    args = ["sample", "--run", str(run_dir), "--n", "4", "--class", "3", "--steps", "3", "--seed", "2"]
    assert main([*args, "--out", str(tmp_path / "a.npz")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.npz"), "--original-scale"]) == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert a["y"].tolist() == [3, 3, 3, 3]  # the original label, as in the data files
    stats = load_stage1_checkpoint(run_dir)["data_stats"]  # same seed → same series, mapped back
    np.testing.assert_allclose(b["X"], a["X"] * stats["std"] + stats["mean"], rtol=1e-5, atol=1e-6)


def test_sample_flags_set_the_decoding(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Decoding] = []
    real = sampling.iter_samples
    monkeypatch.setattr(
        sampling, "iter_samples", lambda *a, **kw: seen.append(kw["decoding"]) or real(*a, **kw)
    )
    base = ["sample", "--run", str(run_dir), "--n", "2", "--out", str(tmp_path / "x.npz")]
    assert main([*base, "--steps", "2"]) == 0
    flags = ["--steps", "3", "--temperature", "0.5", "--choice-temperature", "0", "--guidance", "1.5"]
    assert main([*base, *flags]) == 0
    flagged = Decoding(steps=3, temperature=0.5, choice_temperature=0.0, guidance=1.5)
    assert seen == [Decoding(steps=2), flagged]  # the run's decoding (the defaults), then the flags


def test_sample_errors_are_one_line(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["sample", "--run", str(run_dir), "--n", "3", "--steps", "2"]
    assert main([*base, "--class", "9", "--out", str(tmp_path / "x.npz")]) == 2
    assert "labels: 1, 2, 3, 4" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "u.tsv")]) == 2  # unconditional samples have no label
    err = capsys.readouterr().err
    assert err.startswith("error:") and "label" in err
    assert main(["sample", "--run", str(tmp_path), "--n", "3", "--out", str(tmp_path / "x.npz")]) == 2
    assert "stage-2 checkpoint" in capsys.readouterr().err


EVALUATE_TINY = [
    "--no-progress", "--no-figures", "--device", "cpu", "--set", "evaluation.evaluator_epochs=1",
    "--set", "evaluation.cas_epochs=1", "--set", "evaluation.n_samples=16",
    "--set", "evaluation.cas_min_samples=16", "--set", "evaluation.bootstrap=0",
]


def test_a_stage2_run_with_its_stage1_elsewhere_is_a_run_for_every_command(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 16, bug 2: `train stage2 --out s2` makes a run that evaluate, evaluate stage1 and sample read."""
    s2 = tmp_path / "s2"
    assert main(["train", "stage2", "--stage1", str(run_dir), "--out", str(s2), *STAGE2]) == 0
    assert not (s2 / "stage1").exists()  # its stage 1 lives in run_dir; stage2/source.json says so
    capsys.readouterr()
    assert main(["evaluate", "stage1", "--run", str(s2), "--device", "cpu"]) == 0
    assert "knn_accuracy" in capsys.readouterr().out
    assert main(["evaluate", "--run", str(s2), *EVALUATE_TINY]) == 0
    assert "FID" in capsys.readouterr().out
    results = yaml.safe_load((s2 / "results.json").read_text())
    assert {"stage1", "generation"} <= set(results)
    assert results["stage1"]["checkpoint"] == str((run_dir / "stage1" / "checkpoints" / "final.pt").resolve())
    sample = ["sample", "--run", str(s2), "--n", "2", "--steps", "2", "--out", str(tmp_path / "x.npz")]
    assert main(sample) == 0
