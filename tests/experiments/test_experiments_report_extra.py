"""The numbers beyond the thesis (issue 17) in the tidy table, the sweep report and the run report."""

from __future__ import annotations

from pathlib import Path

import pytest

from ncvqvae.experiments.pipeline import DONE_NAME
from ncvqvae.experiments.report import EXTRA, TableSpec, collect, thesis_table, write_report, write_run_report
from ncvqvae.experiments.sweep import spec_from_dict
from ncvqvae.home import atomic_write_json
from ncvqvae.training import RunDir


def _generation(seed: int, density: float, flagged: bool) -> dict:
    memo = {"fraction": 0.05 + seed, "median_ratio": 1.0, "flagged": flagged}
    return {
        "fid": 2.0,
        "kid": 0.01 * (seed + 1),
        "kid_ci95": [0.001, 0.05],
        "ckid_mean": 0.02,
        "prdc": {"precision": 0.9, "recall": 0.5, "density": density, "coverage": 0.7, "k": 5},
        "memorisation": {"features": memo, "series": {**memo, "flagged": False}},
        "fid_minirocket": None,
        "utility": {"gain_synthetic": 0.02, "gain_over_augmentation": -0.01},
    }


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    spec = spec_from_dict(
        {
            "name": "x",
            "preset": "smoke",
            "datasets": ["twopatterns"],
            "variants": ["baseline", "bt_warp"],
            "seeds": [0, 1],
        },
        source="x.yaml",
    )
    for cell in spec.cells():
        run = RunDir(cell.run_dir(tmp_path))
        run.write_config(spec.cell_config(cell))
        density = 1.1 if cell.variant.name == "baseline" else 1.6  # baseline is nearer to 1
        flagged = cell.variant.name == "bt_warp"
        atomic_write_json(run.results_path, {"generation": _generation(cell.seed, density, flagged)})
        atomic_write_json(run.root / DONE_NAME, {"summary": {}})
    return tmp_path


def test_tidy_table_has_a_column_per_extra_metric(sweep_dir: Path) -> None:
    df = collect(sweep_dir)
    assert set(EXTRA) <= set(df.columns)
    row = df[(df.variant == "baseline") & (df.seed == 1)].iloc[0]
    assert row.kid == pytest.approx(0.02) and row.precision == 0.9 and row.memorised == pytest.approx(1.05)
    assert row.utility_vs_aug == pytest.approx(-0.01) and row["generation.prdc.k"] == 5
    assert df["fid_minirocket"].isna().all()  # switched off: null in results.json, NaN in the table


def test_density_is_best_near_one(sweep_dir: Path) -> None:
    long = thesis_table(collect(sweep_dir), TableSpec("density", "density", "mean"))
    best = long[long.best].variant.tolist()
    assert best == ["baseline"]


def test_sweep_and_run_reports_show_the_extra_metrics(sweep_dir: Path) -> None:
    md = write_report(sweep_dir, figures=False)["markdown"].read_text()
    assert "## Beyond the thesis" in md and "### KID, mean over seeds" in md
    assert "### MiniRocket FID" not in md  # no run has it
    assert " | **0.015 ± 0.007** | **0.015 ± 0.007** |" in md  # KID, tied
    run_md = write_run_report(sweep_dir / "twopatterns" / "bt_warp" / "seed0").read_text()
    assert "| KID | 0.0100 [0.0010, 0.0500] | lower is better |" in run_md
    assert (
        "| memorisation flagged (features) | **flagged: the generator copies its training set** |  |"
        in run_md
    )
    assert "| memorisation flagged (series) | no |  |" in run_md
