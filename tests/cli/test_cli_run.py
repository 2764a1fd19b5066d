"""``ncvqvae run``, ``sweep`` and ``report`` from the command line, on tiny real runs.

The interrupted-run test stops stage 1 part-way (the stage's own kill-simulating hook) and checks that
running the same command again ends with exactly the results of an uninterrupted run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from ncvqvae.cli import build_parser, main
from ncvqvae.cli.run import run_config
from ncvqvae.config import resolve_config
from ncvqvae.data import write_series
from ncvqvae.experiments.pipeline import DONE_NAME
from ncvqvae.experiments.report import flatten

pytestmark = pytest.mark.usefixtures("one_thread")

# A few steps per stage, tiny networks, 32 series per split (the real pipeline in seconds).
TINY = [
    "data.n_train=32",
    "data.n_test=32",
    "stage1.max_steps=3",
    "stage1.hidden_dim=16",
    "stage1.n_res_blocks=1",
    "stage1.projector_dim=32",
    "stage1.iternorm_groups=4",
    "stage1.batch_size=16",
    "stage1.checkpoint_every=1",
    "stage2.max_steps=2",
    "stage2.width=32",
    "stage2.depth=1",
    "stage2.decoding_steps=3",
    "evaluation.evaluator_epochs=1",
    "evaluation.evaluator_steps=1",  # the quick preset counts the FCNs' budgets in steps
    "evaluation.cas_epochs=1",
    "evaluation.cas_steps=1",
    "evaluation.n_samples=32",
    "evaluation.cas_min_samples=32",
    "evaluation.bootstrap=0",
    "evaluation.figures=false",
]


def _args(out: Path, *extra: str) -> list[str]:
    sets = [item for pair in TINY for item in ("--set", pair)]
    return [
        "run",
        "--preset",
        "smoke",
        "--method",
        "barlowtwins",
        "--aug",
        "slice",
        "--seed",
        "2",
        "--out",
        str(out),
        "--no-progress",
        *sets,
        *extra,
    ]


def _metrics(run_dir: Path) -> dict[str, float]:
    """Every number of results.json that depends on the model (not on paths, times or settings)."""
    flat = flatten(json.loads((run_dir / "results.json").read_text()))
    skip = ("seconds", "protocol", "settings", "evaluator.train_seconds", "step")
    return {k: v for k, v in flat.items() if not any(part in k for part in skip)}


@pytest.fixture(scope="module")
def finished_run(one_thread: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted tiny run made through the CLI (shared by the tests below)."""
    out = tmp_path_factory.mktemp("runs") / "straight"
    with pytest.MonkeyPatch.context() as mp:  # module scope runs before conftest's per-test NCVQVAE_HOME
        mp.setenv("NCVQVAE_HOME", str(tmp_path_factory.getbasetemp() / "ncvqvae_home"))
        assert main(_args(out)) == 0
    return out


def test_run_trains_samples_evaluates_and_reports(finished_run: Path, capsys: pytest.CaptureFixture) -> None:
    for name in ["config.yaml", "results.json", "timings.json", "report.md", "report.html", DONE_NAME]:
        assert (finished_run / name).is_file(), name
    assert (finished_run / "stage1" / "checkpoints" / "final.pt").is_file()
    assert (finished_run / "stage2" / "checkpoints" / "final.pt").is_file()
    cfg = yaml.safe_load((finished_run / "config.yaml").read_text())
    assert (cfg["stage1"]["method"], cfg["stage1"]["augmentation"]["names"], cfg["seed"]) == (
        "barlowtwins",
        ["slice"],
        2,
    )
    summary = json.loads((finished_run / DONE_NAME).read_text())["summary"]
    assert summary["variant"] == "bt_slice" and summary["dataset"] == "gen-twopatterns"
    for key in ["recon", "knn", "svm", "fid", "is", "cas", "evaluator_accuracy"]:
        assert isinstance(summary[key], float) and math.isfinite(summary[key]), key
    report = (finished_run / "report.md").read_text()
    assert (
        "# gen-twopatterns · bt_slice · seed 2" in report
        and "| FID |" in report
        and "Budget: preset smoke" in report
    )

    # the same command again prints the summary and redoes nothing
    stamps = {p: p.stat().st_mtime_ns for p in [finished_run / DONE_NAME, finished_run / "results.json"]}
    capsys.readouterr()
    assert main(_args(finished_run)) == 0
    printed = capsys.readouterr().out
    assert "gen-twopatterns · bt_slice · seed 2 · preset smoke" in printed and "FID" in printed
    assert f"report: {finished_run / 'report.md'}" in printed
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_an_interrupted_run_resumes_to_the_same_results(finished_run: Path, tmp_path: Path) -> None:
    from ncvqvae.stage1 import train_stage1

    out = tmp_path / "interrupted"
    cfg = resolve_config(
        preset="smoke",
        overrides=[*TINY, "stage1.method=barlowtwins", "stage1.augmentation.names=[slice]", "seed=2"],
    )
    train_stage1(cfg, out, stop_after_steps=1)  # as if killed after step 1 of 3
    assert (out / "stage1" / "checkpoints" / "last.pt").is_file() and not (out / DONE_NAME).exists()
    assert main(_args(out)) == 0
    straight, resumed = _metrics(finished_run), _metrics(out)
    assert (
        straight.keys() == resumed.keys()
        and "generation.fid" in straight
        and "stage1.reconstruction.recon" in straight
    )
    assert resumed == straight  # bit for bit: the same weights, samples and metrics


def test_a_changed_stage1_setting_on_a_finished_run_is_refused(
    finished_run: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(_args(finished_run, "--set", "stage1.lr=0.01")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "stage1.lr" in err


def test_sweep_dry_run_and_list(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "s",
                "preset": "smoke",
                "datasets": ["gen-twopatterns"],
                "variants": ["baseline", "vibcreg_gauss"],
                "seeds": [0, 1],
            }
        )
    )
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "gen-twopatterns/vibcreg_gauss/seed1" in out and "4 cells: 4 pending; 4 would run" in out
    assert not (tmp_path / "out").exists()
    assert main(["sweep", "--list"]) == 0
    assert "thesis-offline" in capsys.readouterr().out
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2
    assert "no such sweep file" in capsys.readouterr().err


def test_report_command_over_a_folder_of_runs(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["report", str(finished_run.parent), "--out", str(tmp_path), "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "csv" in printed and "markdown" in printed
    md = (tmp_path / "report.md").read_text()
    assert (
        "| gen-twopatterns |" in md and "bt_slice" in md and "(thesis 0.184" in md
    )  # Table 1, TwoPatterns bt_slice


@pytest.mark.parametrize("dataset", ["data/x #1.tsv", "a: b.tsv", "[x].tsv", "null", "true", "007"])
def test_typed_flags_reach_the_config_as_typed(dataset: str) -> None:
    """Issue 16, bug 3: a flag's value is not re-parsed as YAML (only --set values are)."""
    argv = ["run", "--dataset", dataset, "--data-dir", "d #2", "--aug", "warp,slice", "--seed", "3"]
    cfg = run_config(build_parser().parse_args([*argv, "--set", "stage1.lr=3e-4"]))
    assert cfg.data.dataset == dataset and cfg.data.data_dir == "d #2"
    assert cfg.stage1.augmentation.names == ("warp", "slice") and cfg.seed == 3 and cfg.stage1.lr == 3e-4
    # --set still wins over a flag, and still parses YAML
    cfg = run_config(build_parser().parse_args([*argv, "--set", "seed=4", "--set", "data.dataset=b.tsv #c"]))
    assert cfg.seed == 4 and cfg.data.dataset == "b.tsv"


def test_the_default_preset_runs_on_a_file_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Issue 16, bug 4: `ncvqvae run --dataset ./Folder` with the default preset (quick, whose data section
    sizes the generators) trains, evaluates and reports on the folder's data, used whole."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "BasicToy"
    folder.mkdir()
    y = np.arange(28) % 2
    X = rng.standard_normal((28, 1, 64)) + 3.0 * y[:, None, None] * np.sin(np.linspace(0, 6, 64))
    write_series(folder / "BasicToy_TRAIN.tsv", X[:20], y[:20] + 1)
    write_series(folder / "BasicToy_TEST.tsv", X[20:], y[20:] + 1)
    budget = [item for pair in TINY if not pair.startswith("data.") for item in ("--set", pair)]
    out = tmp_path / "run"
    assert main(["run", "--dataset", str(folder), "--out", str(out), "--no-progress", *budget]) == 0
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["preset"] == "quick" and saved["data"]["n_test"] == 1000  # the default preset's data section
    results = json.loads((out / "results.json").read_text())
    assert results["stage1"]["data"] == {"name": "BasicToy", "source": str(folder)}
    assert results["stage1"]["probes"]["n_train"] == 20 and results["stage1"]["probes"]["n_test"] == 8
    assert json.loads((out / DONE_NAME).read_text())["summary"]["dataset"] == "BasicToy"
    assert "BasicToy · vibcreg_warp · seed 0 · preset quick" in capsys.readouterr().out
