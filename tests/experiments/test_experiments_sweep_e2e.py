"""Real sweeps of tiny cells: locally through a kill -9, then reported; and on a local Ray instance.

Every cell here runs the real pipeline (stage 1 → stage 2 → evaluation → report.md) with a few steps per
stage, tiny networks and 32-series splits, so that a 2-dataset × 2-variant × 2-seed sweep takes seconds
per cell.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ncvqvae.experiments.pipeline import DONE_NAME
from ncvqvae.experiments.report import write_report
from ncvqvae.experiments.sweep import load_sweep, run_sweep, sweep_status

# A few steps per stage, small networks, 32 series per split: the real pipeline in seconds per cell.
TINY = {
    "data.n_train": 32,
    "data.n_test": 32,
    "stage1.max_steps": 2,
    "stage1.hidden_dim": 16,
    "stage1.n_res_blocks": 1,
    "stage1.projector_dim": 32,
    "stage1.iternorm_groups": 4,
    "stage2.max_steps": 2,
    "stage2.width": 32,
    "stage2.depth": 1,
    "stage2.decoding_steps": 3,
    "evaluation.evaluator_epochs": 1,
    "evaluation.cas_epochs": 1,
    "evaluation.n_samples": 32,
    "evaluation.cas_min_samples": 32,
    "evaluation.bootstrap": 0,
    "evaluation.figures": False,
}


def _write_spec(path: Path, **fields: object) -> Path:
    spec = {
        "name": "tiny",
        "preset": "smoke",
        "datasets": ["gen-twopatterns", "gen-cbf"],
        "variants": ["baseline", "bt_warp"],
        "seeds": [0, 1],
        "overrides": TINY,
        **fields,
    }
    path.write_text(yaml.safe_dump(spec))
    return path


def _done_files(sweep_dir: Path) -> dict[Path, tuple[int, str]]:
    return {p: (p.stat().st_mtime_ns, p.read_text()) for p in sweep_dir.glob(f"**/{DONE_NAME}")}


@pytest.mark.usefixtures("one_thread")
def test_local_sweep_survives_kill_9_and_reports(tmp_path: Path) -> None:
    spec_path = _write_spec(tmp_path / "tiny.yaml")
    sweep_dir = tmp_path / "sweep"
    code = "import sys; from ncvqvae.cli import main; raise SystemExit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, "sweep", str(spec_path), "--out", str(sweep_dir), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny models: one thread beats two on a shared CPU
    stderr_path = tmp_path / "sweep.stderr"  # a file, not a pipe: a full pipe would stall the sweep
    with open(stderr_path, "wb") as stderr:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True, env=env
        )
        try:
            deadline = time.monotonic() + 240
            while not _done_files(sweep_dir) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert proc.poll() is None, (
                f"the sweep ended before it was killed: {stderr_path.read_text()[-2000:]}"
            )
            assert _done_files(sweep_dir), "no cell finished in time"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the sweep (and anything it started)
            proc.wait()
    before = _done_files(sweep_dir)
    spec = load_sweep(spec_path)
    status = sweep_status(spec, sweep_dir)
    assert 1 <= sum(s == "done" for s in status.values()) < 8

    overview = run_sweep(spec, sweep_dir, progress=False)  # the same sweep again
    assert overview["done"] == 8 and overview["failed"] == 0
    after = _done_files(sweep_dir)
    assert len(after) == 8
    for path, stamp in before.items():  # finished cells were not redone
        assert after[path] == stamp
    ran = {r["key"] for r in overview["results"]}
    assert len(ran) == 8 - len(before) and all(r["status"] == "done" for r in overview["results"])

    paths = write_report(sweep_dir)
    df = pd.read_csv(paths["csv"])
    assert len(df) == 8 and set(df["status"]) == {"done"}
    assert set(df["dataset"]) == {"gen-twopatterns", "gen-cbf"}
    assert set(df["variant"]) == {"baseline", "bt_warp"}
    for column in ["recon", "knn", "svm", "fid", "is", "cas", "evaluator_accuracy", "stage1_s"]:
        assert df[column].notna().all(), column
    md = paths["markdown"].read_text()
    assert "Table 1" in md and "Table 7" in md and "| gen-twopatterns |" in md and " ± " in md
    assert "(thesis 0.197" in md  # gen-twopatterns baseline beside TwoPatterns', Table 1
    assert len(list((sweep_dir / "report_figures").glob("*.png"))) == 4
    for cell_dir in {p.parent for p in after}:
        assert (cell_dir / "report.md").is_file() and (cell_dir / "cell.log").is_file()


def test_ray_executor_runs_a_tiny_sweep_on_a_local_ray_instance(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    spec = load_sweep(
        _write_spec(
            tmp_path / "tiny.yaml",
            datasets=["gen-twopatterns"],
            variants=["bt_warp"],
            executor={"name": "ray", "cpus_per_cell": 1},
        )
    )
    assert len(spec.cells()) == 2
    sweep_dir = tmp_path / "sweep"
    # Workers must see the test's NCVQVAE_HOME (the evaluator cache) and the installed package.
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"NCVQVAE_HOME": os.environ["NCVQVAE_HOME"]}},
    )
    try:
        overview = run_sweep(spec, sweep_dir, progress=False)
        assert overview["done"] == 2 and overview["failed"] == 0, overview
        for cell in spec.cells():
            summary = json.loads((cell.run_dir(sweep_dir) / DONE_NAME).read_text())["summary"]
            assert summary["variant"] == "bt_warp" and summary["fid"] is not None
        again = run_sweep(spec, sweep_dir, progress=False)
        assert again["done"] == 2 and again["results"] == []
    finally:
        ray.shutdown()
