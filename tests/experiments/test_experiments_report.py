"""The tidy results table, the thesis-style tables with anchors, and the report files.

Run directories are written by hand here (config, results, timings, DONE), so the numbers are known and
the aggregation can be checked exactly; a report over real tiny runs is in test_experiments_sweep_e2e.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image as mpimg
import pandas as pd
import pytest

from ncvqvae.config import RunConfig, replace
from ncvqvae.experiments.pipeline import DONE_NAME, TIMINGS_NAME
from ncvqvae.experiments.report import (
    HEADLINE,
    THESIS_TABLES,
    _budget_text,
    _mixed_evaluators_text,
    collect,
    flatten,
    machine_text,
    prior_views,
    report_blocks,
    thesis_table,
    to_markdown,
    tokenizer_rows,
    tokenizer_vs_prior,
    write_report,
    write_run_report,
)
from ncvqvae.experiments.sweep import FAILED_NAME, spec_from_dict
from ncvqvae.home import atomic_write_json
from ncvqvae.training import RunDir, save_checkpoint

# recon per (dataset, variant, seed): baseline is better on ECG5000, bt_warp on gen-twopatterns
RECON = {
    ("ECG5000", "baseline", 0): 0.04,
    ("ECG5000", "baseline", 1): 0.06,
    ("ECG5000", "bt_warp", 0): 0.09,
    ("ECG5000", "bt_warp", 1): 0.07,
    ("gen-twopatterns", "baseline", 0): 0.30,
    ("gen-twopatterns", "baseline", 1): 0.20,
    ("gen-twopatterns", "bt_warp", 0): 0.10,
    ("gen-twopatterns", "bt_warp", 1): 0.12,
}


def _results(recon: float, seed: int) -> dict:
    """A results.json holding every headline metric at its HEADLINE key (plus a nested extra)."""
    values = {
        "recon": recon,
        "knn": 0.8 + 0.01 * seed,
        "svm": 0.7,
        "fid": 2.0 + seed,
        "is": 1.5,
        "cas": 0.9 - 0.1 * seed,
        "evaluator_accuracy": 0.95,
    }
    out: dict = {"generation": {"per_class_fid": {"0": 1.0, "1": 3.0}, "note": "text is left out"}}
    for column, (key, _label, _better) in HEADLINE.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = values[column]
    return out


@pytest.fixture
def sweep_dir(tmp_path: Path) -> Path:
    spec = spec_from_dict(
        {
            "name": "fake",
            "preset": "smoke",
            "datasets": ["ECG5000", "gen-twopatterns"],
            "variants": ["baseline", "bt_warp"],
            "seeds": [0, 1, 2],
        },
        source="fake.yaml",
    )
    for cell in spec.cells():
        run = RunDir(cell.run_dir(tmp_path))
        run.write_config(spec.cell_config(cell))
        if cell.seed == 2:  # the third seed failed everywhere
            atomic_write_json(run.root / FAILED_NAME, {"error": "RuntimeError: boom"})
            continue
        atomic_write_json(
            run.results_path, _results(RECON[(cell.dataset, cell.variant.name, cell.seed)], cell.seed)
        )
        atomic_write_json(run.root / TIMINGS_NAME, {"stage1": 10.0, "stage2": 5.0, "evaluation": 2.5})
        atomic_write_json(run.root / DONE_NAME, {"summary": {}})
    return tmp_path


def test_flatten_keeps_numeric_leaves_with_dotted_names() -> None:
    assert flatten({"a": {"b": 1, "c": [1, 2], "d": "x", "e": True, "f": {"g": 2.5}}}) == {
        "a.b": 1.0,
        "a.f.g": 2.5,
    }


def test_collect_gives_one_tidy_row_per_run(sweep_dir: Path) -> None:
    df = collect(sweep_dir)
    assert len(df) == 12 and (df["status"] == "done").sum() == 8 and (df["status"] == "failed").sum() == 4
    for column in [
        "dataset",
        "variant",
        "method",
        "augmentation",
        "seed",
        "preset",
        *HEADLINE,
        "stage1_s",
        "stage2_s",
        "evaluation_s",
        "total_s",
        "stage1_epochs",
        "evaluator_epochs",
    ]:
        assert column in df.columns, column
    row = df[(df.dataset == "ECG5000") & (df.variant == "bt_warp") & (df.seed == 1)].iloc[0]
    assert (row.method, row.augmentation, row.preset) == ("barlowtwins", "warp", "smoke")
    assert row.recon == pytest.approx(0.07) and row.total_s == pytest.approx(17.5)
    assert row["generation.per_class_fid.1"] == pytest.approx(3.0)  # every numeric metric, dotted
    failed = df[df.status == "failed"].iloc[0]
    assert failed.error == "RuntimeError: boom" and math.isnan(failed.recon)
    assert list(df["variant"].unique()) == ["baseline", "bt_warp"]  # thesis column order


def test_thesis_tables_aggregate_over_seeds_with_bold_best_and_anchors(sweep_dir: Path) -> None:
    df = collect(sweep_dir)
    mean_spec, best_spec = THESIS_TABLES[0], THESIS_TABLES[1]
    mean = thesis_table(df, mean_spec).set_index(["dataset", "variant"])
    assert mean.loc[("ECG5000", "baseline"), "value"] == pytest.approx(0.05)
    assert mean.loc[("ECG5000", "baseline"), "std"] == pytest.approx(pd.Series([0.04, 0.06]).std())
    assert mean.loc[("ECG5000", "baseline"), "n"] == 2
    assert mean.loc[("ECG5000", "baseline"), "best"] and not mean.loc[("ECG5000", "bt_warp"), "best"]
    assert mean.loc[("gen-twopatterns", "bt_warp"), "best"]  # lower reconstruction error wins
    # the thesis value of ECG5000/baseline in Table 1 is 0.048; gen-twopatterns matches TwoPatterns
    assert mean.loc[("ECG5000", "baseline"), "anchor"] == pytest.approx(0.048)
    assert mean.loc[("ECG5000", "baseline"), "diff"] == pytest.approx(0.05 - 0.048)
    assert mean.loc[("gen-twopatterns", "baseline"), "anchor"] == pytest.approx(0.197)
    best = thesis_table(df, best_spec).set_index(["dataset", "variant"])
    assert best.loc[("gen-twopatterns", "baseline"), "value"] == pytest.approx(0.20)  # best seed = lowest
    assert math.isnan(best.loc[("gen-twopatterns", "baseline"), "std"])
    knn_best = next(s for s in THESIS_TABLES if s.metric == "knn" and s.agg == "best")
    knn = thesis_table(df, knn_best).set_index(["dataset", "variant"])
    assert knn.loc[("ECG5000", "bt_warp"), "value"] == pytest.approx(0.81)  # best seed = highest
    assert knn.loc[("ECG5000", "bt_warp"), "anchor"] == pytest.approx(0.88)  # Table 4, bt_warp_knn


def test_write_report_writes_tables_markdown_html_and_figures(sweep_dir: Path) -> None:
    paths = write_report(sweep_dir)
    assert set(paths) == {"csv", "parquet", "markdown", "html"}
    csv = pd.read_csv(paths["csv"])
    parquet = pd.read_parquet(paths["parquet"])
    assert len(csv) == len(parquet) == 12 and list(csv.columns) == list(parquet.columns)
    md = paths["markdown"].read_text()
    for title in [
        "Table 1",
        "Table 2",
        "Table 3a",
        "Table 3b",
        "Table 4a",
        "Table 5a",
        "Table 6b",
        "Table 7",
    ]:
        assert title in md, title
    assert "**0.050 ± 0.014** (thesis 0.048, Δ +0.002)" in md  # ECG5000 baseline, mean recon
    assert "Budget: preset smoke" in md and "Failed runs" in md and "RuntimeError: boom" in md
    assert "| ECG5000 |" in md
    html = paths["html"].read_text()
    assert "<table>" in html and "<b>0.050 ± 0.014</b>" in html
    links = [line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert len(links) == 4  # Figs. 3, 8, 9 and 10–11 (one figure, two panels)
    for link in links:
        image = mpimg.imread(sweep_dir / link)
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path: Path) -> None:
    from ncvqvae.errors import NcvqvaeError

    with pytest.raises(NcvqvaeError, match="no run directories"):
        write_report(tmp_path)


def test_run_report_lists_metrics_thesis_values_and_figures(sweep_dir: Path) -> None:
    run_dir = sweep_dir / "ECG5000" / "baseline" / "seed0"
    (run_dir / "evaluation").mkdir()
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.savefig(run_dir / "evaluation" / "class_samples.png")
    plt.close(fig)
    path = write_run_report(run_dir)
    md = path.read_text()
    assert "# ECG5000 · baseline · seed 0" in md
    assert "| reconstruction error (test) | 0.040 | lower is better | 0.048 | -0.008 |" in md
    assert "](evaluation/class_samples.png)" in md and "stage1 | 10.0 s" in md
    assert path.with_suffix(".html").is_file()
    assert json.loads((run_dir / DONE_NAME).read_text()) == {"summary": {}}  # the report touches nothing else


def test_run_report_says_when_the_numbers_were_scored_with_other_decoding(sweep_dir: Path) -> None:
    run_dir = sweep_dir / "ECG5000" / "baseline" / "seed0"
    results = json.loads((run_dir / "results.json").read_text())
    plain = {"steps": 10, "temperature": 1.0, "choice_temperature": 4.0, "guidance": 1.0}
    results["generation"]["protocol"] = {"decoding": plain}
    atomic_write_json(run_dir / "results.json", results)
    assert "other decoding options" not in write_run_report(run_dir).read_text()
    results["generation"]["protocol"] = {"decoding": {**plain, "guidance": 2.0}}
    atomic_write_json(run_dir / "results.json", results)
    md = write_run_report(run_dir).read_text()
    assert "other decoding options" in md and "guidance 2.0, against" in md


def test_budget_line_names_per_dataset_values_and_only_what_the_runs_did() -> None:
    nan = math.nan
    df = pd.DataFrame(
        {
            "dataset": ["FordA", "FordA", "ECG5000", "Mallat"],
            "preset": ["thesis"] * 4,
            "stage1_epochs": [1000] * 4,
            "stage1_max_steps": [20, 20, 40, 40],
            "stage2_epochs": [1000, None, 1000, 1000],  # the second FordA run has no stage 2
            "stage2_max_steps": [600, None, 600, 600],
            "evaluator_epochs": [20.0, nan, 20.0, 300.0],  # floats once NaN joins the column
            "cas_epochs": [nan, nan, 10.0, 10.0],
        }
    )
    text = _budget_text(df)
    assert "stage 1 1000 epochs stopped after 20 (FordA) / 40 (ECG5000, Mallat) steps" in text
    assert "stage 2 1000 epochs stopped after 600 steps" in text
    assert "FCN evaluator 20 (ECG5000, FordA) / 300 (Mallat) epochs" in text
    assert "CAS classifier 10 epochs" in text


def _done_run(root: Path, dataset: str) -> RunDir:
    run = RunDir(root)
    run.write_config(replace(RunConfig(), **{"data.dataset": dataset, "stage1.method": "baseline"}))
    atomic_write_json(run.results_path, _results(0.1, 0))
    atomic_write_json(run.root / DONE_NAME, {"summary": {}})
    return run


def test_a_ucr_folder_and_a_generator_are_reported_by_name_beside_the_thesis(tmp_path: Path) -> None:
    """Issue 16, bug 1: ./SonyAIBORobotSurface1/ is SonyAIBORobotSurface1 (with the thesis' numbers);
    gen-twopatterns says it is the generator, beside the archive TwoPatterns' numbers it imitates."""
    folder = tmp_path / "data" / "SonyAIBORobotSurface1"
    folder.mkdir(parents=True)
    for split in ("TRAIN", "TEST"):
        (folder / f"SonyAIBORobotSurface1_{split}.tsv").write_text("1\t0.5\t0.2\n2\t0.1\t0.3\n")
    _done_run(tmp_path / "runs" / "sony", str(folder))
    _done_run(tmp_path / "runs" / "gen", "gen-twopatterns")
    df = collect(tmp_path / "runs")
    assert sorted(df["dataset"]) == ["SonyAIBORobotSurface1", "gen-twopatterns"]
    mean = thesis_table(df, THESIS_TABLES[0]).set_index(["dataset", "variant"])
    assert mean.loc[("SonyAIBORobotSurface1", "baseline"), "anchor"] == pytest.approx(0.402)
    assert mean.loc[("gen-twopatterns", "baseline"), "anchor"] == pytest.approx(0.197)


def test_an_old_run_of_the_twopatterns_generator_still_loads_and_reports(tmp_path: Path) -> None:
    """Before issue 16 the generator was named ``twopatterns``; such a run's checkpoints say so."""
    old = _done_run(tmp_path / "runs" / "old", "twopatterns")
    stats = {"name": "twopatterns", "n_train": 1000, "length": 128}  # no "source": written by the old code
    save_checkpoint(old.checkpoint_path("stage1", "final"), "stage1", {"data_stats": stats})
    new = _done_run(tmp_path / "runs" / "new", "twopatterns")  # today: the archive's TwoPatterns
    stats = {**stats, "name": "TwoPatterns", "source": "/archive/TwoPatterns"}
    save_checkpoint(new.checkpoint_path("stage1", "final"), "stage1", {"data_stats": stats})
    assert old.read_config().data.dataset == "gen-twopatterns"
    assert new.read_config().data.dataset == "twopatterns"
    df = collect(tmp_path / "runs").set_index("run_dir")
    assert df.loc[str(old.root), "dataset"] == "gen-twopatterns"
    assert df.loc[str(new.root), "dataset"] == "TwoPatterns"


def _prior_run(root: Path, method: str, prior: str, fid: float, recon: float, seed: int = 0) -> None:
    run = RunDir(root)
    dotted = {"data.dataset": "ECG5000", "stage1.method": method, "stage2.variant": prior}
    run.write_config(replace(RunConfig(seed=seed), **dotted))
    (run.root / "stage2").mkdir(parents=True)
    results = _results(recon, 0)
    results["generation"]["fid"] = fid
    atomic_write_json(run.results_path, results)
    atomic_write_json(run.root / DONE_NAME, {"summary": {}})


def test_two_priors_give_per_prior_tables_the_thesis_pairing_and_count_each_tokenizer_once(
    tmp_path: Path,
) -> None:
    """Issue 14: one stage 1 under the token and the full-embedding prior. FID: the baseline wins under the
    token prior (3 < 4), NC under the full-embedding prior (1 < 2); the thesis' pairing (token baseline 3,
    full-embedding NC 1) credits NC. The stage-1 tables count each tokenizer once (no std of duplicates)."""
    _prior_run(tmp_path / "token" / "base", "baseline", "token", fid=3.0, recon=0.05)
    _prior_run(tmp_path / "token" / "nc", "vibcreg", "token", fid=4.0, recon=0.06)
    _prior_run(tmp_path / "codebook" / "base", "baseline", "codebook", fid=2.0, recon=0.05)
    _prior_run(tmp_path / "codebook" / "nc", "vibcreg", "thesis", fid=1.0, recon=0.06)  # thesis → codebook
    df = collect(tmp_path)
    assert sorted(df["prior"]) == ["codebook", "codebook", "token", "token"]
    views = dict(prior_views(df))
    assert len(views) == 3
    pairing = next(runs for label, runs in views.items() if "pairing" in label)
    assert sorted(pairing["fid"]) == [1.0, 3.0]
    best = {
        label: thesis_table(runs, THESIS_TABLES[6]).set_index("variant")["best"].to_dict()
        for label, runs in views.items()
    }
    token, codebook = (next(b for label, b in best.items() if label.startswith(p)) for p in ("token", "full"))
    assert token == {"baseline": True, "vibcreg_warp": False}
    assert codebook == {"baseline": False, "vibcreg_warp": True}
    recon = thesis_table(tokenizer_rows(df), THESIS_TABLES[0])
    assert list(recon["n"]) == [1, 1]
    text = to_markdown(report_blocks(df, [], "t"))
    assert "Table 6a — FID, mean over seeds — token prior for every variant" in text
    assert "the thesis' pairing" in text and text.count("Table 1 — ") == 1
    assert "## Runs" in text


def test_the_thesis_pairing_alone_is_one_view_and_the_counts_follow_each_view(tmp_path: Path) -> None:
    """stage2.variant: thesis resolves to token (baseline) and codebook (NC), but no tokenizer is under two
    priors: one set of tables. With both priors per tokenizer, the NC-win counts are per view."""
    _prior_run(tmp_path / "a" / "base", "baseline", "thesis", fid=3.0, recon=0.05)
    _prior_run(tmp_path / "a" / "nc", "vibcreg", "thesis", fid=1.0, recon=0.06)
    df = collect(tmp_path / "a")
    assert sorted(df["prior"]) == ["codebook", "token"]
    assert [label for label, _ in prior_views(df)] == [""]
    _prior_run(tmp_path / "b" / "token" / "base", "baseline", "token", fid=3.0, recon=0.05)
    _prior_run(tmp_path / "b" / "token" / "nc", "vibcreg", "token", fid=4.0, recon=0.06)
    _prior_run(tmp_path / "b" / "codebook" / "base", "baseline", "codebook", fid=2.0, recon=0.05)
    _prior_run(tmp_path / "b" / "codebook" / "nc", "vibcreg", "codebook", fid=1.0, recon=0.06)
    text = to_markdown(report_blocks(collect(tmp_path / "b"), [], "t"))
    assert "| FID (token prior for every variant) | 0 of 1 |" in text
    assert "| FID (full-embedding prior for every variant) | 1 of 1 |" in text
    assert "| reconstruction error (test) | 0 of 1 |" in text  # the tokenizers once: 0.06 > 0.05


def test_tokenizer_against_prior_holds_the_prior_fixed(tmp_path: Path) -> None:
    """Issue 14's reading. FID: baseline 3 / 2 and NC 4 / 1 (token / full-embedding). With the token prior
    the baseline is better, with the full-embedding prior NC is, and the thesis' pairing (3 against 1)
    credits NC; the full-embedding prior is better for both tokenizers. IS and CAS are equal everywhere:
    ties. The comparison is paired: a seed measured for the baseline's token prior only is left out of
    every mean. A dataset without the baseline under both priors gives no row."""
    _prior_run(tmp_path / "token" / "base", "baseline", "token", fid=3.0, recon=0.05)
    _prior_run(tmp_path / "token" / "nc", "vibcreg", "token", fid=4.0, recon=0.06)
    _prior_run(tmp_path / "codebook" / "base", "baseline", "codebook", fid=2.0, recon=0.05)
    _prior_run(tmp_path / "codebook" / "nc", "vibcreg", "codebook", fid=1.0, recon=0.06)
    _prior_run(tmp_path / "token" / "base1", "baseline", "token", fid=9.0, recon=0.05, seed=1)
    table = tokenizer_vs_prior(collect(tmp_path)).set_index("metric")
    assert list(table.index) == ["fid", "is", "cas"]
    fid = table.loc["fid"]
    assert fid.seeds == 1
    assert (fid.baseline_token, fid.baseline_codebook, fid.nc_token, fid.nc_codebook) == (3.0, 2.0, 4.0, 1.0)
    assert (fid.token, fid.codebook, fid.pairing) == ("baseline", "NC", "NC")
    assert (fid.prior_baseline, fid.prior_nc) == ("codebook", "codebook")
    assert set(table.loc["is", ["token", "codebook", "pairing", "prior_nc"]]) == {"tie"}
    text = to_markdown(report_blocks(collect(tmp_path), [], "t"))
    assert "## Tokenizer against prior" in text
    assert "NC is the better tokenizer in 0 of these 3 comparisons with the token prior" in text
    fixed = "in 1 of 3 with the full-embedding prior held fixed, and in 1 of 3 under the thesis' pairing"
    assert fixed in text
    assert "the full-embedding prior is better than the token prior in 2 of 6" in text
    (tmp_path / "codebook" / "base" / DONE_NAME).unlink()
    (tmp_path / "codebook" / "base" / "results.json").unlink()
    assert tokenizer_vs_prior(collect(tmp_path)).empty
    assert "Tokenizer against prior" not in to_markdown(report_blocks(collect(tmp_path), [], "t"))


def test_a_tokenizer_counts_once_from_its_best_record(tmp_path: Path) -> None:
    """The same stage 1 under two priors: the finished run with stage-1 numbers is the one counted,
    whichever comes first on disk; a stage 1 trained again at the same seed (another checkpoint) is the
    same measurement repeated and counts once too, so the tables' spread stays a spread over seeds."""
    _prior_run(tmp_path / "codebook" / "base", "baseline", "codebook", fid=2.0, recon=0.05)
    _prior_run(tmp_path / "token" / "base", "baseline", "token", fid=3.0, recon=0.07)
    (tmp_path / "codebook" / "base" / DONE_NAME).unlink()  # the first one on disk is unfinished
    for prior in ("codebook", "token"):
        atomic_write_json(tmp_path / prior / "base" / "stage2" / "source.json", {"sha256": "ab" * 32})
    rows = tokenizer_rows(collect(tmp_path))
    assert list(rows["recon"]) == [pytest.approx(0.07)]
    atomic_write_json(tmp_path / "codebook" / "base" / "stage2" / "source.json", {"sha256": "cd" * 32})
    assert list(tokenizer_rows(collect(tmp_path))["recon"]) == [pytest.approx(0.07)]
    _prior_run(tmp_path / "token" / "seed1", "baseline", "token", fid=3.0, recon=0.09, seed=1)
    assert sorted(tokenizer_rows(collect(tmp_path))["recon"]) == [pytest.approx(0.07), pytest.approx(0.09)]


def test_one_prior_keeps_the_plain_tables(sweep_dir: Path) -> None:
    df = collect(sweep_dir)
    assert [label for label, _ in prior_views(df)] == [""]
    assert "— token prior" not in to_markdown(report_blocks(df, [], "t"))


def test_machine_text_names_each_machine_once() -> None:
    step = {"device": "cpu", "processor": "AMD EPYC", "threads": 2}
    assert machine_text({"stage1": step, "stage2": step}) == "AMD EPYC, 2 threads"
    gpu = {"device": "cuda", "gpu": "NVIDIA H200", "threads": 16}
    assert machine_text({"stage1": gpu, "evaluation": step}) == "NVIDIA H200, 16 threads; AMD EPYC, 2 threads"
    assert machine_text({}) == ""
    amx, plain = (
        {"device": "cpu", "processor": "Intel Xeon", "threads": 2, "cpu_bf16": k} for k in ("amx", "none")
    )
    assert (
        machine_text({"stage1": amx, "stage2": plain})
        == "Intel Xeon (amx), 2 threads; Intel Xeon (none), 2 threads"
    )
    # on a GPU the GPU computes: the host CPU's bf16 instructions are not named
    assert machine_text({"stage1": {**gpu, "cpu_bf16": "amx"}}) == "NVIDIA H200, 16 threads"


def test_the_runs_table_tells_one_recipe_trained_twice_apart(tmp_path: Path) -> None:
    """Same evaluator key (recipe and data), trained on two machines: other weights, so the Runs table
    names each by its key and training minute; a run without a training date shows the key alone."""
    for name, created in (("a", "2026-12-02T19:55:45"), ("b", "2026-12-04T20:31:07"), ("c", None)):
        _prior_run(tmp_path / name, "baseline", "token", fid=3.0, recon=0.05)
        path = tmp_path / name / "results.json"
        results = json.loads(path.read_text())
        evaluator = {"key": "f1f6f2f0461beab4", **({"created": created} if created else {})}
        results["generation"]["evaluator"] = {**results["generation"]["evaluator"], **evaluator}
        atomic_write_json(path, results)
    df = collect(tmp_path).set_index("run_dir")
    assert df.loc[str(tmp_path / "a"), "evaluator"] == "f1f6f2f0 2026-12-02T19:55"
    assert df.loc[str(tmp_path / "b"), "evaluator"] == "f1f6f2f0 2026-12-04T20:31"
    assert df.loc[str(tmp_path / "c"), "evaluator"] == "f1f6f2f0"
    text = to_markdown(report_blocks(df.reset_index(), [], "t"))
    assert "| f1f6f2f0 2026-12-04T20:31 |" in text
    assert "**Several evaluators.**" in text
    assert "ECG5000: f1f6f2f0 2026-12-02T19:55 (1 run), " in _mixed_evaluators_text(df)
    assert _mixed_evaluators_text(df.loc[[str(tmp_path / "a")]]) == ""  # one evaluator: no warning
