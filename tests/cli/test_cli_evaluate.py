"""``ncvqvae evaluate --run`` wiring and ``ncvqvae evaluator train|info``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ncvqvae.cli import build_parser, evaluate_stage1, main
from ncvqvae.config import Decoding, RunConfig
from ncvqvae.training import RunDir

FAKE_GENERATION = {
    "fid": 1.5,
    "fid_ci95": [1.2, 1.9],
    "is_mean": 2.5,
    "is_std": 0.1,
    "is_ci95": [2.3, 2.7],
    "real_is_mean": 3.1,
    "real_fid_train_test": 0.2,
    "cfid_mean": 2.0,
    "cas": 0.8,
    "cas_ceiling": 0.9,
    "protocol": {"n_real": 100, "n_fake_fid": 100},
}


def test_evaluate_passes_every_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    RunDir(tmp_path).write_config(RunConfig())
    seen: dict[str, Any] = {}

    def fake_evaluate_run(run_dir: Any, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs, run_dir=run_dir)
        return {"generation": FAKE_GENERATION}

    monkeypatch.setattr("ncvqvae.evaluation.pipeline.evaluate_run", fake_evaluate_run)
    argv = ["evaluate", "--run", str(tmp_path), "--n-samples", "30", "--cas-epochs", "2", "--no-cas"]
    argv += ["--no-figures", "--device", "cpu", "--no-progress", "--set", "evaluation.bootstrap=7"]
    assert main(argv) == 0
    assert seen["run_dir"] == str(tmp_path) and seen["device"] == "cpu"
    assert (seen["n_samples"], seen["cas_epochs"], seen["run_cas"], seen["figures"]) == (30, 2, False, False)
    assert seen["cfg"].evaluation.bootstrap == 7 and seen["progress"] is False
    out = capsys.readouterr().out
    assert "FID             1.5 [95% CI 1.2, 1.9]" in out and "CAS             0.8000" in out


def recorded_evaluation(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A run directory with a config, and ``evaluate_run`` replaced: the options it gets land in the dict."""
    RunDir(run_dir).write_config(RunConfig())
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        "ncvqvae.evaluation.pipeline.evaluate_run",
        lambda run_dir, **kw: seen.update(kw) or {"generation": FAKE_GENERATION},
    )
    return seen


def test_evaluate_defaults_leave_the_run_config_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = recorded_evaluation(tmp_path, monkeypatch)
    assert main(["evaluate", "--run", str(tmp_path)]) == 0
    assert (
        seen["cfg"] is None
        and seen["n_samples"] is None
        and seen["run_cas"] is None
        and seen["figures"] is None
    )


def test_evaluate_refuses_non_evaluation_overrides_and_needs_a_run(tmp_path: Path, capsys: Any) -> None:
    RunDir(tmp_path).write_config(RunConfig())
    assert main(["evaluate", "--run", str(tmp_path), "--set", "stage1.lr=1"]) == 2
    assert "only evaluation.*" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["evaluate"])
    assert exc.value.code == 2
    assert "--run DIR is required" in capsys.readouterr().err


def test_evaluate_may_change_the_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    seen = recorded_evaluation(tmp_path, monkeypatch)
    argv = [
        "evaluate",
        "--run",
        str(tmp_path),
        "--set",
        "stage2.guidance=2",
        "--set",
        "stage2.decoding_steps=6",
    ]
    assert main(argv) == 0
    assert seen["cfg"].stage2.decoding == Decoding(steps=6, guidance=2.0)
    assert main(["evaluate", "--run", str(tmp_path), "--set", "stage2.lr=1"]) == 2
    assert "stage2.guidance" in capsys.readouterr().err  # the error names what may change


def test_evaluate_stage1_keeps_its_own_command() -> None:
    args = build_parser().parse_args(["evaluate", "stage1", "--run", "somewhere"])
    assert args.func is evaluate_stage1.main and args.run == "somewhere"


def test_evaluator_info_then_train_then_info(capsys: Any) -> None:
    data = ["gen-twopatterns", "--set", "data.n_train=24", "--set", "data.n_test=16", "--epochs", "1"]
    assert main(["evaluator", "info", *data]) == 0
    out = capsys.readouterr().out
    assert "cached          no" in out and "test accuracy" not in out
    assert "published       FCN 0.870" in out  # the TwoPatterns row of the anchors
    assert main(["evaluator", "train", *data, "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "trained now" in out and "test accuracy" in out and "(16 test series)" in out
    assert main(["evaluator", "train", *data, "--no-progress"]) == 0
    assert "found in the cache" in capsys.readouterr().out
    assert main(["evaluator", "info", *data]) == 0
    out = capsys.readouterr().out
    assert "cached          yes" in out and "1 epochs" in out


def test_evaluator_export_then_use_it_by_path(capsys: Any, tmp_path: Path) -> None:
    data = ["gen-twopatterns", "--set", "data.n_train=24", "--set", "data.n_test=16", "--epochs", "1"]
    assert main(["evaluator", "train", *data, "--no-progress"]) == 0
    out_dir = tmp_path / "evaluators" / "tp"
    assert main(["evaluator", "export", *data, "--out", str(out_dir)]) == 0
    assert f"evaluation.evaluator_path={out_dir}" in capsys.readouterr().out
    pinned = ["--set", f"evaluation.evaluator_path={out_dir}", "--epochs", "5"]  # another recipe: same one
    assert main(["evaluator", "info", *data, *pinned]) == 0
    out = capsys.readouterr().out
    assert "stored (evaluation.evaluator_path)" in out and str(out_dir) in out and "1 epochs" in out


def test_the_printed_generation_summary_has_kid_prdc_and_the_memorisation_flag(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from ncvqvae.cli.evaluate import print_generation

    gen = {
        "fid": 2.5,
        "real_fid_train_test": 0.4,
        "is_mean": 1.8,
        "is_std": 0.05,
        "real_is_mean": 2.0,
        "cas": 0.8,
        "cas_ceiling": 0.9,
        "kid": 0.0123,
        "kid_ci95": [0.01, 0.015],
        "prdc": {"precision": 0.7, "recall": 0.5, "density": 0.9, "coverage": 0.4},
        "memorisation": {"features": {"fraction": 0.6, "flagged": True}},
    }
    print_generation(gen)
    out = capsys.readouterr().out
    assert "KID             0.0123 [95% CI 0.01, 0.015]" in out
    assert "precision 0.700, recall 0.500, density 0.900, coverage 0.400" in out
    assert "0.600 of samples" in out and "FLAGGED" in out
    print_generation({k: v for k, v in gen.items() if k not in ("kid", "prdc", "memorisation")})
    assert "KID" not in capsys.readouterr().out  # a thesis-protocol run without the extras


def test_the_run_summary_prints_kid_beside_fid() -> None:
    from ncvqvae.cli.run import format_summary

    text = format_summary({"dataset": "d", "variant": "v", "seed": 0, "fid": 2.0, "kid": 0.0312})
    assert "KID" in text and "0.0312" in text
    assert "–" in format_summary({"dataset": "d", "variant": "v", "seed": 0, "kid": None})
