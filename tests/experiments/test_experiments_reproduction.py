"""Reproduction against the thesis (issue 7): the NC-vs-baseline counts of the report, the reproduction
sweep files, and (slow) a short-budget check that NC-VQVAE's latents beat the plain VQ-VAE's on the SVM probe.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from ncvqvae.config import replace
from ncvqvae.data.catalog import lookup
from ncvqvae.experiments.report import (
    THESIS_TABLES,
    VARIANT_ORDER,
    load_anchor,
    nc_wins,
    report_blocks,
    thesis_table,
    to_markdown,
)
from ncvqvae.experiments.sweep import Variant, load_sweep

THESIS_VARIANTS = VARIANT_ORDER  # baseline, then bt_* and vibcreg_* × warp, slice, gauss


def _frame(rows: list[tuple[str, str, int, dict[str, float]]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"dataset": d, "variant": v, "seed": s, "status": "done", **m} for d, v, s, m in rows]
    )


# --------------------------------------------------------------------------------------------------
# NC-vs-baseline counts
# --------------------------------------------------------------------------------------------------


def test_nc_wins_counts_best_nc_variant_per_dataset_with_direction() -> None:
    df = _frame(
        [
            # ECG5000: NC better on KNN (higher) and on reconstruction (lower)
            ("ECG5000", "baseline", 0, {"knn": 0.80, "svm": 0.5, "recon": 0.20}),
            ("ECG5000", "bt_warp", 0, {"knn": 0.85, "recon": 0.10}),
            ("ECG5000", "vibcreg_gauss", 0, {"knn": 0.70, "recon": 0.30}),
            # Mallat: the mean over seeds decides: baseline 0.5, bt_warp (0.6 + 0.3) / 2 = 0.45 < 0.5
            ("Mallat", "baseline", 0, {"knn": 0.50, "recon": 0.10}),
            ("Mallat", "bt_warp", 0, {"knn": 0.60, "recon": 0.20}),
            ("Mallat", "bt_warp", 1, {"knn": 0.30, "recon": 0.20}),
            # a dataset without a baseline run is not compared
            ("FordA", "bt_warp", 0, {"knn": 0.90, "recon": 0.10}),
        ]
    )
    wins = nc_wins(df).set_index("metric")
    assert wins.at["knn", "datasets"] == 2 and wins.at["knn", "ours"] == 1
    assert wins.at["recon", "datasets"] == 2 and wins.at["recon", "ours"] == 1
    # The thesis' own counts, read from its tables by the same rule (its abstract: 12 of 13 on the probes).
    assert (wins.at["knn", "thesis_all"], wins.at["knn", "thesis_all_n"]) == (12, 13)
    assert (wins.at["svm", "thesis_all"], wins.at["svm", "thesis_all_n"]) == (12, 13)
    # On ECG5000 and Mallat the thesis has NC ahead on KNN on both.
    assert (wins.at["knn", "thesis_same"], wins.at["knn", "thesis_same_n"]) == (2, 2)
    assert "fid" not in wins.index  # no FID measured: no row


def test_differences_the_tables_cannot_show_are_ties_not_wins() -> None:
    # Mallat's IS at this budget: 1.000 for every variant, apart by 1e-9 (float noise, not a win).
    df = _frame(
        [
            ("Mallat", "baseline", 0, {"is": 1.0, "fid": 5.0}),
            ("Mallat", "bt_warp", 0, {"is": 1.0 + 1e-9, "fid": 5.0 - 1e-6}),
            ("Mallat", "vibcreg_warp", 0, {"is": 1.0 + 2e-9, "fid": 4.999}),
        ]
    )
    wins = nc_wins(df).set_index("metric")
    assert wins.at["is", "ours"] == 0  # a tie at the printed precision
    assert wins.at["fid", "ours"] == 1  # 4.999 < 5.000 shows in the table: a win
    long = thesis_table(df, next(t for t in THESIS_TABLES if t.metric == "is" and t.agg == "mean"))
    assert long["best"].all()  # all three print 1.000: all tied for best
    long = thesis_table(df, next(t for t in THESIS_TABLES if t.metric == "fid" and t.agg == "mean"))
    assert long.set_index("variant")["best"].to_dict() == {
        "baseline": False, "bt_warp": False, "vibcreg_warp": True
    }


def test_report_has_the_counts_table() -> None:
    df = _frame(
        [
            ("ECG5000", "baseline", 0, {"knn": 0.8, "svm": 0.8, "recon": 0.2}),
            ("ECG5000", "bt_warp", 0, {"knn": 0.9, "svm": 0.7, "recon": 0.2}),
        ]
    )
    text = to_markdown(report_blocks(df, [], "t"))
    assert "## Datasets on which NC beats the baseline" in text
    assert "| KNN probe accuracy | 1 of 1 |" in text
    assert "| SVM probe accuracy | 0 of 1 |" in text


# --------------------------------------------------------------------------------------------------
# The thesis' tables (package data)
# --------------------------------------------------------------------------------------------------

THESIS_DATASETS = {
    "starlightcurves", "wafer", "ecg5000", "sonyaiborobotsurface1", "sonyaiborobotsurface2",
    "electricdevices", "twopatterns", "forda", "uwavegesturelibraryall", "fordb", "shapesall", "symbols",
    "mallat",
}


@pytest.mark.parametrize(
    "name",
    [
        "table1_recon_mean.csv", "table2_recon_top1.csv", "table3_probe_mean.csv", "table4_probe_top1.csv",
        "table5_fid_is_top1.csv", "table6_fid_is_mean.csv", "table7_cas_mean.csv",
    ],
)
def test_anchor_tables_hold_each_thesis_dataset_once(name: str) -> None:
    table = load_anchor(name)  # indexed by lower-cased dataset name
    assert not table.index.duplicated().any(), table.index[table.index.duplicated()].tolist()
    assert set(table.index) == THESIS_DATASETS
    assert table.notna().all().all()
    if "probe" in name or "cas" in name:  # accuracies
        assert ((table >= 0) & (table <= 1)).all().all()


def test_anchor_probe_top1_is_at_least_the_mean() -> None:
    # The best of 4 seeds cannot be below their mean (a misplaced row would break this), except where the
    # thesis itself is inconsistent: its Mallat KNN "top 1" row (Table 4) lies below its mean row (Table 3)
    # in every variant, as printed in the thesis (seeds/000_f316f1523c52890e.txt, lines 103 and 126).
    best, mean = load_anchor("table4_probe_top1.csv"), load_anchor("table3_probe_mean.csv")
    below = (best - mean.loc[best.index, best.columns]).stack()
    below = below[below < -1e-9]
    assert {(d, c.rsplit("_", 1)[1]) for d, c in below.index} <= {("mallat", "knn")}


# --------------------------------------------------------------------------------------------------
# The reproduction sweeps
# --------------------------------------------------------------------------------------------------


def test_reproduction_cpu_sweep_is_the_thesis_grid_at_one_budget() -> None:
    spec = load_sweep("reproduction-cpu")
    # FordA and FordB run in reproduction-cpu-ford at 20 stage-1 steps (see the next test): the six together
    ford = load_sweep("reproduction-cpu-ford")
    assert not set(spec.datasets) & set(ford.datasets)
    assert {d.lower() for d in (*spec.datasets, *ford.datasets)} == {
        "gen-twopatterns", "ecg5000", "mallat", "electricdevices", "forda", "fordb"
    }
    assert tuple(v.name for v in spec.variants) == THESIS_VARIANTS
    configs = [spec.cell_config(cell) for cell in spec.cells()]
    # The same budget and protocol for every cell: only dataset, method and augmentation vary.
    budgets = {
        (
            c.stage1.max_steps,
            c.stage1.epochs,
            c.stage2.max_steps,
            c.stage2.epochs,
            c.stage2.variant,
            c.evaluation.evaluator_epochs,
            c.evaluation.cas_epochs,
            c.evaluation.n_samples,
        )
        for c in configs
    }
    assert len(budgets) == 1
    # Everything else is the thesis' (SPEC §3): projector 4096, batch 128, lr 1e-3, aug recon weight 0.2.
    for c in configs:
        assert (c.stage1.projector_dim, c.stage1.batch_size, c.stage1.lr) == (4096, 128, 1e-3)
        assert c.stage1.aug_recon_weight == 0.2 and c.stage1.codebook_size == 32
        assert Variant.from_config(c).name in THESIS_VARIANTS


def test_reproduction_cpu_ford_sweep_differs_only_in_the_stage1_step_cap() -> None:
    main, ford = load_sweep("reproduction-cpu"), load_sweep("reproduction-cpu-ford")
    assert set(ford.datasets) == {"FordA", "FordB"} and ford.variants == main.variants
    keys = main.overrides.keys() | ford.overrides.keys()
    differ = {k for k in keys if main.overrides.get(k) != ford.overrides.get(k)}
    assert differ == {"stage1"}
    assert ford.overrides["stage1"] == {"max_steps": 20} and main.overrides["stage1"] == {"max_steps": 40}


def test_reproduction_cpu_gen_sweep_reuses_the_stage1_cells_and_varies_only_by_dataset() -> None:
    gen = load_sweep("reproduction-cpu-gen")
    main, ford = load_sweep("reproduction-cpu"), load_sweep("reproduction-cpu-ford")
    assert set(gen.datasets) == set(main.datasets) | set(ford.datasets) and gen.variants == main.variants
    for cell in gen.cells():
        cfg = gen.cell_config(cell)
        source = ford if cell.dataset in ford.datasets else main
        stage1 = source.cell_config(cell)
        # the seed-0 tokenizers of the stage-1 sweeps are reused: same data, seed and stage-1 config
        assert (cfg.seed, cfg.data, cfg.stage1) == (stage1.seed, stage1.data, stage1.stage1)
        assert cfg.stage2.max_steps == 600 and cfg.stage2.variant == "token"
    # within a dataset every variant has the same budget and evaluation protocol
    for dataset in gen.datasets:
        budgets = {
            (c.stage1.max_steps, c.stage2.max_steps, c.evaluation)
            for c in (gen.cell_config(cell) for cell in gen.cells() if cell.dataset == dataset)
        }
        assert len(budgets) == 1


def test_reproduction_gpu_sweep_runs_on_cuda_with_thesis_networks() -> None:
    spec = load_sweep("reproduction-gpu")
    assert {d.lower() for d in spec.datasets} == {"forda", "fordb", "electricdevices"}
    for cell in spec.cells():
        cfg = spec.cell_config(cell)
        assert cfg.device == "cuda" and cfg.stage1.projector_dim == 4096


def test_the_gpu_mallat_sweep_is_the_thesis_budget_for_all_seven_variants() -> None:
    spec = load_sweep("reproduction-gpu-mallat")
    assert tuple(v.name for v in spec.variants) == tuple(THESIS_VARIANTS)
    mallat = lookup("Mallat")
    for cell in spec.cells():
        cfg = spec.cell_config(cell)
        assert cfg.device == "cuda" and cfg.stage1.projector_dim == 4096
        assert (cfg.stage1.epochs, cfg.stage2.epochs, cfg.evaluation.evaluator_epochs) == (1000, 1000, 1000)
        assert cfg.stage1.max_steps is None and cfg.stage2.max_steps is None
        ev = cfg.evaluation
        assert ev.cas and ev.cas_epochs in (None, 1000) and ev.n_samples is None
        # the sweep file's claim: fewer training series than one batch, so an epoch is one step
        assert mallat.n_train < min(cfg.stage1.batch_size, cfg.stage2.batch_size, ev.evaluator_batch_size)


# --------------------------------------------------------------------------------------------------
# The quick reproduction check (slow)
# --------------------------------------------------------------------------------------------------

# Measured with exactly this configuration (the reproduction-cpu sweep's stage 1 on the regenerated
# TwoPatterns, 40 steps; docs/reproduction.md): SVM probe accuracy baseline 0.696, bt_warp 0.810 with seed 0
# (gap 0.114; KNN 0.556 vs 0.742), and 0.656 vs 0.738 with seed 1 (gap 0.082). The margin asks for less
# than the smaller gap: the run is deterministic on a CPU, but thread counts and BLAS builds change the
# float sums, and at 40 steps a small change of the weights moves a probe by a few points.
NC_VARIANT = "bt_warp"
SVM_MARGIN = 0.05


@pytest.mark.slow
def test_short_nc_run_beats_baseline_svm_probe_on_regenerated_twopatterns(tmp_path) -> None:  # noqa: ANN001
    from ncvqvae.stage1 import train_stage1

    spec = load_sweep("reproduction-cpu")
    cells = {c.variant.name: c for c in spec.cells() if c.dataset == "gen-twopatterns" and c.seed == 0}
    accuracy = {}
    for name in ("baseline", NC_VARIANT):
        cfg = replace(spec.cell_config(cells[name]), progress=False, device="cpu")
        run_dir = tmp_path / name
        train_stage1(cfg, run_dir)
        results = json.loads((run_dir / "results.json").read_text())
        accuracy[name] = results["stage1"]["probes"]["svm_accuracy"]
    assert all(not math.isnan(a) for a in accuracy.values())
    assert accuracy[NC_VARIANT] >= accuracy["baseline"] + SVM_MARGIN, accuracy
