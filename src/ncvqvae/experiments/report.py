"""Results of many runs as one tidy table, and reports shaped like the thesis' tables and figures.

* :func:`collect` walks a sweep directory (or any folder of run directories), reads every run's
  ``config.yaml``, ``results.json`` and timings, and returns one row per run: dataset, variant, method,
  augmentation, seed, preset, every numeric result (dotted names), the headline metrics, evaluator
  accuracy, timings and budgets. :func:`write_report` saves it as CSV and Parquet.
* :func:`write_report` writes ``report.md`` and ``report.html``: the thesis' Tables 1–7 (mean and best-seed
  reconstruction, mean and best KNN/SVM probe accuracy, best and mean FID/IS, mean CAS), one row per
  dataset, one column per variant, best in bold, mean ± std when there are several seeds, and — where the
  dataset and variant appear in the thesis tables shipped in ``anchors/`` — the thesis value and the
  difference. Figures: probe accuracy per variant (thesis Fig. 3), FID and IS (Fig. 8, log scale), CAS
  (Fig. 9), KNN against IS and FID across runs (Figs. 10–11).
* :func:`write_run_report` is the one-run version that ``ncvqvae run`` writes into its run directory.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ncvqvae.data import generators
from ncvqvae.data.loading import dataset_name
from ncvqvae.errors import NcvqvaeError
from ncvqvae.evaluation.pipeline import FIGURE_NAMES
from ncvqvae.experiments.variants import Variant
from ncvqvae.home import atomic_path, atomic_write_text
from ncvqvae.rundir import (
    DONE_NAME,
    EVALUATION_DIR,
    FAILED_NAME,
    REPORT_NAME,
    RunDir,
    read_machine,
    read_results,
    read_timings,
    run_status,
)
from ncvqvae.stage2 import prior_variant

log = logging.getLogger(__name__)

ANCHORS_DIR = Path(__file__).parent / "anchors"
FIGURES_DIR = "report_figures"  # sweep report figures, next to report.md
# Headline metrics: column name → (dotted key in results.json, label, which direction is better).
HEADLINE: dict[str, tuple[str, str, str]] = {
    "recon": ("stage1.reconstruction.recon", "reconstruction error (test)", "lower"),
    "knn": ("stage1.probes.knn_accuracy", "KNN probe accuracy", "higher"),
    "svm": ("stage1.probes.svm_accuracy", "SVM probe accuracy", "higher"),
    "fid": ("generation.fid", "FID", "lower"),
    "is": ("generation.is_mean", "IS", "higher"),
    "cas": ("generation.cas", "CAS", "higher"),
    "evaluator_accuracy": ("generation.evaluator.test_accuracy", "evaluator test accuracy", "higher"),
}
# Beyond the thesis (issue 17; docs/evaluation.md): same layout; "near 1" = the closer to 1 the better.
EXTRA: dict[str, tuple[str, str, str]] = {
    "kid": ("generation.kid", "KID", "lower"),
    "ckid_mean": ("generation.ckid_mean", "class KID, mean over classes", "lower"),
    "precision": ("generation.prdc.precision", "precision (k-NN manifold)", "higher"),
    "recall": ("generation.prdc.recall", "recall (k-NN manifold)", "higher"),
    "density": ("generation.prdc.density", "density", "near 1"),
    "coverage": ("generation.prdc.coverage", "coverage", "higher"),
    "memorised": (
        "generation.memorisation.features.fraction",
        "share of samples nearer to train than 5% of test (features)",
        "lower",
    ),
    "memorised_series": (
        "generation.memorisation.series.fraction",
        "share of samples nearer to train than 5% of test (z-normalised series)",
        "lower",
    ),
    "nn_ratio": (
        "generation.memorisation.features.median_ratio",
        "median nearest-train distance, samples / test (features)",
        "near 1",
    ),
    "fid_minirocket": ("generation.fid_minirocket", "MiniRocket FID (not comparable with FID)", "lower"),
    "utility_gain": ("generation.utility.gain_synthetic", "accuracy gain from synthetic series", "higher"),
    "utility_vs_aug": (
        "generation.utility.gain_over_augmentation",
        "accuracy gain, synthetic over simple augmentation",
        "higher",
    ),
}
VARIANT_ORDER = (
    "baseline",
    "bt_warp",
    "bt_slice",
    "bt_gauss",
    "vibcreg_warp",
    "vibcreg_slice",
    "vibcreg_gauss",
)


# --------------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------------


def flatten(node: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of nested dicts as ``{"a.b.c": value}`` (lists, strings and booleans are left out)."""
    out: dict[str, float] = {}
    if isinstance(node, Mapping):
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(node, int | float) and not isinstance(node, bool):
        out[prefix.rstrip(".")] = float(node)
    return out


def run_row(run_dir: str | Path) -> dict[str, Any]:
    """One tidy row describing a run directory: identity, budgets, timings, headline and all metrics."""
    run_dir = Path(run_dir)
    cfg = RunDir(run_dir).read_config()
    variant = Variant.from_config(cfg)
    results = read_results(run_dir)
    metrics = flatten(results)
    timings = read_timings(run_dir)
    has_stage2 = (run_dir / "stage2").is_dir()
    has_generation = "generation.fid" in metrics
    has_cas = metrics.get("generation.cas") is not None
    row: dict[str, Any] = {
        # the dataset's own name (a folder ./SonyAIBORobotSurface1 → SonyAIBORobotSurface1), so that
        # the thesis' numbers can stand beside it; data_source says what was loaded
        "dataset": dataset_name(cfg.data.dataset),
        "data_source": results.get("stage1", {}).get("data", {}).get("source", ""),
        "variant": variant.name,
        "method": variant.method,
        "augmentation": "+".join(variant.augmentations) or "none",
        "seed": cfg.seed,
        "preset": cfg.preset or "",
        # the prior the run trained ("thesis" resolved: token for the baseline, codebook for NC)
        "prior": prior_variant(cfg.stage2.variant, nc=variant.method != "baseline") if has_stage2 else "",
        # bf16 autocast or fp32 ("precision" is the k-NN manifold metric's column)
        "arithmetic": str(
            results.get("stage1", {}).get("precision")
            or results.get("generation", {}).get("protocol", {}).get("precision", "")
        ),
        "machine": machine_text(read_machine(run_dir)),
        "tokenizer": _tokenizer_id(RunDir(run_dir)),
        "evaluator": _evaluator_id(results.get("generation", {}).get("evaluator", {})),
        "status": run_status(run_dir),
    }
    for column, (key, _label, _better) in {**HEADLINE, **EXTRA}.items():
        row[column] = metrics.get(key, math.nan)
    row.update(
        {
            "stage1_s": timings.get("stage1", math.nan),
            "stage2_s": timings.get("stage2", math.nan),
            "evaluation_s": timings.get("evaluation", math.nan),
            "total_s": sum(timings.values()) if timings else math.nan,
            # the budgets of what the run has done (a stage-1-only run has no stage-2 or evaluator budget)
            "stage1_epochs": cfg.stage1.epochs,
            "stage1_max_steps": cfg.stage1.max_steps,
            "stage2_epochs": cfg.stage2.epochs if has_stage2 else None,
            "stage2_max_steps": cfg.stage2.max_steps if has_stage2 else None,
            "evaluator_epochs": cfg.evaluation.evaluator_epochs if has_generation else None,
            "cas_epochs": (cfg.evaluation.cas_epochs or cfg.evaluation.evaluator_epochs) if has_cas else None,
            "run_dir": str(run_dir),
        }
    )
    if row["status"] == "failed":
        failure = json.loads((run_dir / FAILED_NAME).read_text(encoding="utf-8"))
        row["error"] = failure.get("error", "")
    row.update({k: v for k, v in metrics.items() if k not in row})
    return row


def _tokenizer_id(run: RunDir) -> str:
    """The first 12 hex digits of the stage-1 checkpoint's sha256 the prior was trained on (``""`` when the
    run has no ``stage2/source.json``): tells a shared tokenizer from a retrained one."""
    try:
        return str(json.loads(run.source_path.read_text(encoding="utf-8")).get("sha256") or "")[:12]
    except (OSError, ValueError, AttributeError):
        return ""


def _evaluator_id(evaluator: Mapping[str, Any]) -> str:
    """The evaluator's key (8 hex digits) and, when recorded, the minute it was trained ("f1f6f2f0
    2026-12-02T19:55"): one recipe trained again on another machine keeps its key but gets other weights,
    and FID and IS compare only between runs of one trained evaluator."""
    key = str(evaluator.get("key", ""))[:8]
    created = str(evaluator.get("created", ""))[:16]
    return f"{key} {created}" if key and created else key


def machine_text(machine: Mapping[str, Mapping[str, Any]]) -> str:
    """What a run's steps ran on, in words ("Intel Xeon (amx), 2 threads"); steps on one machine are named
    once."""
    texts = []
    for info in machine.values():
        where = str(info.get("gpu") or info.get("processor") or info.get("device") or "?")
        if not info.get("gpu") and info.get("cpu_bf16"):  # its bf16 kernels: AMX, AVX512-BF16 or none
            where += f" ({info['cpu_bf16']})"
        text = f"{where}, {info.get('threads', '?')} threads"
        if text not in texts:
            texts.append(text)
    return "; ".join(texts)


def run_summary(run_dir: str | Path) -> dict[str, Any]:
    """The short summary of one run: identity, headline metrics and timings (what ``ncvqvae run`` prints)."""
    row = run_row(run_dir)
    keep = [
        "dataset",
        "variant",
        "seed",
        "preset",
        *HEADLINE,
        "kid",
        "stage1_s",
        "stage2_s",
        "evaluation_s",
        "total_s",
    ]
    return {k: (None if isinstance(row[k], float) and math.isnan(row[k]) else row[k]) for k in keep}


# --------------------------------------------------------------------------------------------------
# Many runs
# --------------------------------------------------------------------------------------------------


def find_runs(root: str | Path) -> list[Path]:
    """Every run directory under ``root`` (a folder holding ``config.yaml``), ``root`` itself included."""
    root = Path(root)
    if not root.is_dir():
        raise NcvqvaeError(f"{root}: no such directory")
    return sorted(p.parent for p in root.glob("**/config.yaml"))


def collect(sweep_dir: str | Path, *, finished_only: bool = False) -> pd.DataFrame:
    """One tidy row per run found under ``sweep_dir`` (see :func:`run_row`), sorted dataset/variant/seed.

    Args:
        sweep_dir: a sweep directory, a folder of runs, or a single run directory.
        finished_only: keep only runs whose ``DONE.json`` exists (default: every run, with its status).
    """
    rows = [run_row(d) for d in find_runs(sweep_dir) if not finished_only or (d / DONE_NAME).is_file()]
    if not rows:
        return pd.DataFrame(
            columns=["dataset", "variant", "method", "augmentation", "seed", "preset", "status"]
        )
    df = pd.DataFrame(rows)
    df["_order"] = df["variant"].map(_variant_rank)
    df = (
        df.sort_values(["dataset", "_order", "variant", "seed"]).drop(columns="_order").reset_index(drop=True)
    )
    return df


def _variant_rank(name: str) -> int:
    return VARIANT_ORDER.index(name) if name in VARIANT_ORDER else len(VARIANT_ORDER)


def write_tables(df: pd.DataFrame, out_dir: str | Path, stem: str = "results") -> list[Path]:
    """Write ``df`` as ``<stem>.csv`` and, when pyarrow is installed, ``<stem>.parquet`` (atomically)."""
    out_dir = Path(out_dir)
    paths = [out_dir / f"{stem}.csv"]
    with atomic_path(paths[0]) as tmp:
        df.to_csv(tmp, index=False)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        log.warning("pyarrow is not installed: wrote CSV only (pip install pyarrow for Parquet)")
        return paths
    paths.append(out_dir / f"{stem}.parquet")
    with atomic_path(paths[1]) as tmp:
        df.to_parquet(tmp, index=False)
    return paths


# --------------------------------------------------------------------------------------------------
# Thesis tables
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """One thesis table: a metric aggregated over seeds, with its anchor file and column suffix."""

    title: str
    metric: str  # a HEADLINE column
    agg: str  # "mean" (± std over seeds) or "best" (best seed, "top 1")
    anchor_file: str | None = None
    anchor_suffix: str = ""  # anchor columns are "<variant><suffix>", e.g. "bt_warp_knn"


THESIS_TABLES = (
    TableSpec(
        "Table 1 — reconstruction error on test, mean over seeds", "recon", "mean", "table1_recon_mean.csv"
    ),
    TableSpec("Table 2 — reconstruction error on test, best seed", "recon", "best", "table2_recon_top1.csv"),
    TableSpec(
        "Table 3a — KNN probe accuracy, mean over seeds", "knn", "mean", "table3_probe_mean.csv", "_knn"
    ),
    TableSpec(
        "Table 3b — linear SVM probe accuracy, mean over seeds",
        "svm",
        "mean",
        "table3_probe_mean.csv",
        "_svm",
    ),
    TableSpec("Table 4a — KNN probe accuracy, best seed", "knn", "best", "table4_probe_top1.csv", "_knn"),
    TableSpec(
        "Table 4b — linear SVM probe accuracy, best seed", "svm", "best", "table4_probe_top1.csv", "_svm"
    ),
    TableSpec("Table 5a — FID, best seed", "fid", "best", "table5_fid_is_top1.csv", "_fid"),
    TableSpec("Table 5b — IS, best seed", "is", "best", "table5_fid_is_top1.csv", "_is"),
    TableSpec("Table 6a — FID, mean over seeds", "fid", "mean", "table6_fid_is_mean.csv", "_fid"),
    TableSpec("Table 6b — IS, mean over seeds", "is", "mean", "table6_fid_is_mean.csv", "_is"),
    TableSpec(
        "Table 7 — CAS (classification accuracy score), mean over seeds", "cas", "mean", "table7_cas_mean.csv"
    ),
)


def load_anchor(name: str) -> pd.DataFrame:
    """A thesis table shipped in ``anchors/`` indexed by lower-cased dataset name."""
    df = pd.read_csv(ANCHORS_DIR / name)
    df["dataset"] = df["dataset"].str.lower()
    return df.set_index("dataset")


def anchor_value(anchor: pd.DataFrame | None, dataset: str, column: str) -> float | None:
    """The thesis value for (dataset, column), matching dataset names case-insensitively, or ``None``.

    A built-in generator (``gen-twopatterns``) is matched with the archive dataset it imitates.
    """
    key = generators.reference_name(dataset).lower()
    if anchor is None or column not in anchor.columns or key not in anchor.index:
        return None
    value = anchor.at[key, column]
    return None if pd.isna(value) else float(value)


DIGITS = 3  # decimals of every number in the thesis-style tables

# "NC beats the baseline" counts (issue 7): per metric, its mean-over-seeds anchor table and column suffix.
WIN_METRICS = (
    ("recon", "table1_recon_mean.csv", ""),
    ("knn", "table3_probe_mean.csv", "_knn"),
    ("svm", "table3_probe_mean.csv", "_svm"),
    ("fid", "table6_fid_is_mean.csv", "_fid"),
    ("is", "table6_fid_is_mean.csv", "_is"),
    ("cas", "table7_cas_mean.csv", ""),
)


def _nc_beats(base: float | None, nc: Sequence[float | None], better: str) -> bool | None:
    """Whether the best NC value beats the baseline's (None when either side is missing).

    Values are compared at the tables' precision: a difference the tables cannot show (Mallat's IS of
    1.000 for every variant, apart by 1e-9) is a tie, not a win.
    """
    values = [_shown(v) for v in nc if v is not None and not math.isnan(v)]
    if base is None or math.isnan(base) or not values:
        return None
    return min(values) < _shown(base) if better == "lower" else max(values) > _shown(base)


def nc_wins(df: pd.DataFrame, metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """On how many datasets an NC variant beats the baseline, per metric, here and in the thesis.

    A dataset counts when the best NC variant's mean over seeds is better than the baseline's (the reading
    of the thesis' claims "NC lifts the probe accuracy on 12 of 13 datasets"). The thesis' count is taken
    from its tables by the same rule, on the datasets compared here and on all the datasets it reports.

    Returns:
        One row per metric: ``metric``, ``datasets`` (compared here), ``ours`` (NC better here),
        ``thesis_same`` (NC better in the thesis on those datasets, of ``thesis_same_n`` it reports),
        ``thesis_all`` of ``thesis_all_n``. ``metrics``: only these (default: all of
        :data:`WIN_METRICS` that ``df`` has).
    """
    rows = []
    nc_variants = VARIANT_ORDER[1:]
    for metric, anchor_file, suffix in WIN_METRICS:
        if metrics is not None and metric not in metrics:
            continue
        if metric not in df.columns or not df[metric].notna().any():
            continue
        better = HEADLINE[metric][2]
        anchor = load_anchor(anchor_file)
        means = df.dropna(subset=[metric]).groupby(["dataset", "variant"])[metric].mean().to_dict()
        ours = compared = same = same_n = 0
        for dataset in dict.fromkeys(df["dataset"]):
            ours_nc = [means.get((dataset, v)) for v in dict.fromkeys(df["variant"]) if v != "baseline"]
            won = _nc_beats(means.get((dataset, "baseline")), ours_nc, better)
            if won is None:
                continue
            compared += 1
            ours += won
            thesis = _nc_beats(
                anchor_value(anchor, str(dataset), f"baseline{suffix}"),
                [anchor_value(anchor, str(dataset), f"{v}{suffix}") for v in nc_variants],
                better,
            )
            if thesis is not None:
                same_n += 1
                same += thesis
        all_won = [
            _nc_beats(
                anchor_value(anchor, name, f"baseline{suffix}"),
                [anchor_value(anchor, name, f"{v}{suffix}") for v in nc_variants],
                better,
            )
            for name in anchor.index
        ]
        all_won = [w for w in all_won if w is not None]
        rows.append(
            {
                "metric": metric,
                "datasets": compared,
                "ours": ours,
                "thesis_same": same,
                "thesis_same_n": same_n,
                "thesis_all": sum(all_won),
                "thesis_all_n": len(all_won),
            }
        )
    return pd.DataFrame(rows)


def thesis_table(df: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """Aggregate one metric over seeds: rows = dataset, columns = variant; cells hold value, std, n, anchor.

    Returns a long frame with columns dataset, variant, value (mean or best), std, n, anchor, diff, best
    (True for the row's best variant).
    """
    better = {**HEADLINE, **EXTRA}[spec.metric][2]
    data = df.dropna(subset=[spec.metric]) if spec.metric in df.columns else df.iloc[0:0]
    anchor = load_anchor(spec.anchor_file) if spec.anchor_file else None
    rows = []
    for (dataset, variant), group in data.groupby(["dataset", "variant"], sort=False):
        values = group[spec.metric].astype(float)
        if spec.agg == "mean":
            value = float(values.mean())
        else:
            value = float(values.min() if better == "lower" else values.max())
        std = float(values.std(ddof=1)) if spec.agg == "mean" and len(values) > 1 else math.nan
        ref = anchor_value(anchor, str(dataset), f"{variant}{spec.anchor_suffix}")
        rows.append(
            {
                "dataset": dataset,
                "variant": variant,
                "value": value,
                "std": std,
                "n": len(values),
                "anchor": ref if ref is not None else math.nan,
                "diff": value - ref if ref is not None else math.nan,
            }
        )
    out = pd.DataFrame(rows, columns=["dataset", "variant", "value", "std", "n", "anchor", "diff"])
    if out.empty:
        return out.assign(best=pd.Series(dtype=bool))
    # Best at the tables' precision: variants that print the same value are tied, and all are bold.
    shown = out["value"].map(_shown)
    score = {"lower": shown, "higher": -shown, "near 1": (shown - 1.0).abs()}[better]
    pick = score.groupby(out["dataset"]).transform("min")
    out["best"] = (score == pick) & (out.groupby("dataset")["value"].transform("count") > 1)
    return out


def _shown(value: float) -> float:
    """A value at the precision the tables print it (ties and wins are decided there)."""
    return round(float(value), DIGITS)


def _fmt(value: float, digits: int = DIGITS) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _table_block(long: pd.DataFrame, variants: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a thesis table: one row per dataset, one column per variant, at ``DIGITS``
    decimals (the precision ``thesis_table`` decides the best at)."""
    header = ["dataset", *variants]
    rows = []
    for dataset, group in long.groupby("dataset", sort=False):
        cells = {r.variant: r for r in group.itertuples()}
        row = [str(dataset)]
        for variant in variants:
            r = cells.get(variant)
            if r is None:
                row.append("")
                continue
            text = _fmt(r.value)
            if not math.isnan(r.std):
                text += f" ± {_fmt(r.std)}"
            if r.best:
                text = f"**{text}**"
            if not math.isnan(r.anchor):
                text += f" (thesis {_fmt(r.anchor)}, Δ {r.diff:+.{DIGITS}f})"
            row.append(text)
        rows.append(row)
    return header, rows


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------


def _variants_in(df: pd.DataFrame) -> list[str]:
    return sorted(df["variant"].unique(), key=lambda v: (_variant_rank(v), v))


def plot_metric_bars(
    df: pd.DataFrame, metrics: Sequence[str], path: str | Path, *, log_scale: bool = False, title: str = ""
) -> Path:
    """Grouped bars: a panel per metric, datasets along x, a bar per variant (mean ± std over seeds)."""
    from matplotlib.figure import Figure  # a Figure of its own: no pyplot, no global backend switch

    variants = _variants_in(df)
    datasets = list(dict.fromkeys(df["dataset"]))
    fig = Figure(figsize=(max(5.0, 1.3 * len(datasets) * len(metrics) + 2), 3.8))
    axes = fig.subplots(1, len(metrics), squeeze=False)
    width = 0.8 / max(1, len(variants))
    for ax, metric in zip(axes[0], metrics, strict=True):
        stats = df.groupby(["dataset", "variant"])[metric].agg(["mean", "std"])
        for i, variant in enumerate(variants):
            means = [stats["mean"].get((d, variant), math.nan) for d in datasets]
            stds = [stats["std"].get((d, variant), math.nan) for d in datasets]
            xs = [j + (i - (len(variants) - 1) / 2) * width for j in range(len(datasets))]
            ax.bar(
                xs,
                means,
                width=width,
                yerr=[0 if math.isnan(s) else s for s in stds],
                capsize=2,
                label=variant,
            )
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels(datasets, rotation=30, ha="right")
        ax.set_ylabel(HEADLINE[metric][1])
        if log_scale:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save_figure(fig, path)


def _save_figure(fig: Any, path: str | Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # a canvas for this figure only (no pyplot state to close)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return path


def sweep_figures(df: pd.DataFrame, out_dir: str | Path) -> list[tuple[str, Path]]:
    """The thesis figures for the runs in ``df``: (caption, path) pairs for the metrics present."""
    out_dir = Path(out_dir)
    out: list[tuple[str, Path]] = []

    def has(*metrics: str) -> bool:
        return all(m in df.columns and df[m].notna().any() for m in metrics)

    if has("knn", "svm"):
        out.append(
            (
                "Probe accuracy per variant (thesis Fig. 3)",
                plot_metric_bars(df, ["knn", "svm"], out_dir / "probe_accuracy.png"),
            )
        )
    if has("fid", "is"):
        out.append(
            (
                "FID and IS per variant, log scale (thesis Fig. 8)",
                plot_metric_bars(df, ["fid", "is"], out_dir / "fid_is.png", log_scale=True),
            )
        )
    if has("cas"):
        out.append(("CAS per variant (thesis Fig. 9)", plot_metric_bars(df, ["cas"], out_dir / "cas.png")))
    if has("knn", "is", "fid"):
        from ncvqvae.evaluation.figures import plot_knn_vs_metric

        labels = {"knn": HEADLINE["knn"][1], "is": "IS", "fid": "FID"}
        table = df.dropna(subset=list(labels)).rename(columns=labels)
        path = plot_knn_vs_metric(
            table, out_dir / "knn_vs_is_fid.png", x=labels["knn"], metrics=("IS", "FID"), hue="variant"
        )
        out.append(("KNN probe accuracy against IS and FID across runs (thesis Figs. 10–11)", path))
    return out


# --------------------------------------------------------------------------------------------------
# Documents: a list of blocks rendered to Markdown and to HTML
# --------------------------------------------------------------------------------------------------


Block = (
    tuple  # ("h1"|"h2"|"p", text) | ("table", header, rows) | ("img", caption, relative path) | ("pre", text)
)


def to_markdown(blocks: Iterable[Block]) -> str:
    """Render blocks as Markdown (pipe tables; ``**bold**`` kept as is)."""
    parts = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            parts.append("#" * int(kind[1]) + " " + block[1])
        elif kind == "p":
            parts.append(block[1])
        elif kind == "pre":
            parts.append("```\n" + block[1].rstrip() + "\n```")
        elif kind == "table":
            header, rows = block[1], block[2]
            lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
            lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
            parts.append("\n".join(lines))
        elif kind == "img":
            parts.append(f"![{block[1]}]({block[2]})\n\n*{block[1]}*")
    return "\n\n".join(parts) + "\n"


def _inline_html(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text)).replace("`", "")


def to_html(blocks: Iterable[Block], title: str) -> str:
    """Render blocks as a standalone HTML page (no external assets)."""
    body = []
    for block in blocks:
        kind = block[0]
        if kind in ("h1", "h2", "h3"):
            body.append(f"<{kind}>{_inline_html(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{_inline_html(block[1])}</p>")
        elif kind == "pre":
            body.append(f"<pre>{html.escape(block[1])}</pre>")
        elif kind == "table":
            head = "".join(f"<th>{_inline_html(h)}</th>" for h in block[1])
            rows = "".join(
                "<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>" for row in block[2]
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            src, cap = html.escape(block[2]), html.escape(block[1])
            body.append(f'<figure><img src="{src}" alt="{cap}"><figcaption>{cap}</figcaption></figure>')
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:1em 0;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}th{background:#f3f3f3}"
        "img{max-width:100%}figcaption{font-style:italic}"
    )
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def _budget_text(df: pd.DataFrame) -> str:
    """The training budgets of the runs in ``df`` (epochs per stage, step caps, evaluator and CAS epochs)."""

    def values(column: str) -> str:
        """The column's values; where they differ between datasets, each with its datasets."""
        if column not in df.columns:
            return ""
        by_value: dict[str, set[str]] = {}
        for dataset, v in zip(df["dataset"], df[column], strict=True):
            if v is not None and not (isinstance(v, float) and math.isnan(v)):
                by_value.setdefault(str(int(v)) if isinstance(v, float) else str(v), set()).add(str(dataset))
        if len(by_value) <= 1:
            return next(iter(by_value), "")
        ordered = sorted(by_value.items(), key=lambda kv: (len(kv[0]), kv[0]))
        return " / ".join(f"{v} ({', '.join(sorted(ds, key=str.lower))})" for v, ds in ordered)

    def stage(number: int) -> str:
        cap = values(f"stage{number}_max_steps")
        epochs = values(f"stage{number}_epochs") or "?"
        return f"stage {number} {epochs} epochs" + (f" stopped after {cap} steps" if cap else "")

    return (
        f"Budget: preset {values('preset') or 'none'}; {stage(1)}; {stage(2)}; FCN evaluator "
        f"{values('evaluator_epochs') or '?'} epochs; CAS classifier {values('cas_epochs') or '?'} epochs. "
        "The thesis used 1000 + 1000 epochs and a pretrained evaluator (1000 epochs): compare variants with "
        "each other under the same budget and evaluator, and read the thesis columns as a reference, not a "
        "target, at smaller budgets."
    )


STAGE1_METRICS = ("recon", "knn", "svm")  # the tokenizer's metrics: one value per stage 1
PRIOR_LABELS = {"token": "token prior", "codebook": "full-embedding prior"}


def tokenizer_rows(df: pd.DataFrame) -> pd.DataFrame:
    """One row per tokenizer cell: runs of one dataset, variant and seed under several priors count once
    in the stage-1 tables, taken from a finished run that has its numbers. A stage 1 trained again for
    another prior at the same seed is the same measurement repeated, not another seed, so it counts once
    too: the spread in these tables stays a spread over seeds."""
    if not len(df):
        return df
    key = ["dataset", "variant", "seed"]
    rank = (df["status"] != "done").astype(int) + df["recon"].isna().astype(int)  # best record first
    ordered = df.assign(_rank=rank).sort_values("_rank", kind="stable")
    return ordered.drop_duplicates(key).sort_index().drop(columns="_rank")


def prior_views(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The runs the generation tables are made of, per prior.

    With one prior (or none), or when no tokenizer was trained under two (``stage2.variant: thesis`` gives
    the baseline the token prior and NC the full-embedding one), there is one view, labelled ``""``.
    Otherwise, one view per prior (every
    variant under the same prior, SPEC §4: "compare variants with the same prior") and, when both the token
    and the full-embedding prior are there, the thesis' pairing (token for the baseline, full-embedding
    for NC), which changes the tokenizer and the prior at once.
    """
    priors = [p for p in dict.fromkeys(df["prior"]) if p] if "prior" in df.columns and len(df) else []
    shared = (
        len(priors) > 1
        and (df[df["prior"] != ""].groupby(["dataset", "variant", "seed"])["prior"].nunique() > 1).any()
    )
    if len(priors) <= 1 or not shared:  # one prior, or each tokenizer under one (the thesis' pairing alone)
        return [("", df)]
    priors.sort(key=lambda p: (list(PRIOR_LABELS).index(p) if p in PRIOR_LABELS else len(PRIOR_LABELS), p))
    views = [(f"{PRIOR_LABELS.get(p, p + ' prior')} for every variant", df[df["prior"] == p]) for p in priors]
    if {"token", "codebook"} <= set(priors):
        baseline = df["method"] == "baseline"
        pairing = df[(baseline & (df["prior"] == "token")) | (~baseline & (df["prior"] == "codebook"))]
        views.append(("the thesis' pairing (token prior for the baseline, full-embedding for NC)", pairing))
    return views


GENERATION_METRICS = ("fid", "is", "cas")  # the metrics a prior changes (Tables 5–7)
# _better's answer for (baseline, NC) and for (token prior, full-embedding prior)
BETTER_TOKENIZER = {"first": "baseline", "second": "NC", "tie": "tie"}
BETTER_PRIOR = {"first": "token", "second": "codebook", "tie": "tie"}


def _better(a: float, b: float, better: str) -> str:
    """``"first"``, ``"second"`` or ``"tie"``: which of two values is better, at the tables' precision."""
    a, b = _shown(a), _shown(b)
    if a == b:
        return "tie"
    return "first" if (a < b) == (better == "lower") else "second"


def tokenizer_vs_prior(df: pd.DataFrame) -> pd.DataFrame:
    """The tokenizer's effect apart from the prior's (issue 14).

    The thesis trained the baseline's prior as the token variant and NC's as the full-embedding variant
    (SPEC §4), so its generation tables change two things at once. Per dataset, NC variant and generation
    metric where the baseline and that NC variant are both measured under both priors: the four means over
    the seeds at which all four were measured (``seeds``: how many; a paired comparison, so a seed only
    one of them has does not tilt it), and which tokenizer is better with the prior held fixed
    (``token``, ``codebook``) and under the thesis' pairing (``pairing``: the token baseline against the
    full-embedding NC), each ``"NC"``, ``"baseline"`` or ``"tie"``; ``prior_baseline`` and ``prior_nc``:
    which prior is better for that tokenizer (``"codebook"``, ``"token"`` or ``"tie"``).
    """
    columns = ["dataset", "variant", "metric", "seeds", "baseline_token", "baseline_codebook", "nc_token"]
    columns += ["nc_codebook", "token", "codebook", "pairing", "prior_baseline", "prior_nc"]
    if not len(df) or "prior" not in df.columns:
        return pd.DataFrame(columns=columns)
    rows = []
    priors = ("token", "codebook")
    for metric in GENERATION_METRICS:
        if metric not in df.columns:
            continue
        better = HEADLINE[metric][2]
        values = df.dropna(subset=[metric]).groupby(["dataset", "variant", "prior", "seed"])[metric].mean()
        seeds_of = values.reset_index().groupby(["dataset", "variant", "prior"])["seed"].agg(set).to_dict()
        for dataset in dict.fromkeys(df["dataset"]):
            for variant in _variants_in(df):
                if variant == "baseline":
                    continue
                cells = [(v, p) for v in ("baseline", variant) for p in priors]
                seeds = set.intersection(*(seeds_of.get((dataset, *c), set()) for c in cells))
                if not seeds:
                    continue
                mean = {c: float(values.loc[[(dataset, *c, s) for s in sorted(seeds)]].mean()) for c in cells}
                base = [mean["baseline", p] for p in priors]
                nc = [mean[variant, p] for p in priors]
                rows.append(
                    {
                        "dataset": dataset,
                        "variant": variant,
                        "metric": metric,
                        "seeds": len(seeds),
                        "baseline_token": base[0],
                        "baseline_codebook": base[1],
                        "nc_token": nc[0],
                        "nc_codebook": nc[1],
                        "token": BETTER_TOKENIZER[_better(base[0], nc[0], better)],
                        "codebook": BETTER_TOKENIZER[_better(base[1], nc[1], better)],
                        "pairing": BETTER_TOKENIZER[_better(base[0], nc[1], better)],
                        "prior_baseline": BETTER_PRIOR[_better(*base, better)],
                        "prior_nc": BETTER_PRIOR[_better(*nc, better)],
                    }
                )
    return pd.DataFrame(rows, columns=columns)


def _tokenizer_vs_prior_blocks(df: pd.DataFrame) -> list[Block]:
    table = tokenizer_vs_prior(df)
    if table.empty:
        return []
    rows = [
        [
            str(r.dataset),
            str(r.variant),
            HEADLINE[r.metric][1],
            str(r.seeds),
            *(_fmt(v) for v in (r.baseline_token, r.baseline_codebook, r.nc_token, r.nc_codebook)),
            r.token,
            r.codebook,
            r.pairing,
        ]
        for r in table.itertuples()
    ]
    n = len(table)
    nc_wins = {view: int((table[view] == "NC").sum()) for view in ("token", "codebook", "pairing")}
    prior_wins = int((table["prior_baseline"] == "codebook").sum() + (table["prior_nc"] == "codebook").sum())
    summary = (
        f"NC is the better tokenizer in {nc_wins['token']} of these {n} comparisons with the token prior "
        f"held fixed, in {nc_wins['codebook']} of {n} with the full-embedding prior held fixed, and in "
        f"{nc_wins['pairing']} of {n} under the thesis' pairing. With the tokenizer held fixed, the "
        f"full-embedding prior is better than the token prior in {prior_wins} of {2 * n}."
    )
    header = ["dataset", "NC variant", "metric", "seeds"]
    header += ["baseline, token", "baseline, full-emb.", "NC, token", "NC, full-emb."]
    header += ["better: token prior", "better: full-emb. prior", "better: thesis' pairing"]
    return [
        ("h2", "Tokenizer against prior"),
        (
            "p",
            "The thesis trained the baseline's prior as the token variant and NC's as the full-embedding "
            "variant, so its generation tables change the tokenizer and the prior at once. Here each "
            "tokenizer was scored under both priors (mean over the seeds at which the baseline and the NC "
            'variant were both measured under both priors; "seeds" says how many): which tokenizer is '
            "better with the prior held fixed, and under the "
            "thesis' pairing (token-prior baseline against full-embedding NC).",
        ),
        ("table", header, rows),
        ("p", summary),
    ]


def report_blocks(df: pd.DataFrame, figures: Sequence[tuple[str, str]], title: str) -> list[Block]:
    """The blocks of a sweep report: overview, budget, Tables 1–7, evaluator accuracy, failures, figures."""
    blocks: list[Block] = [("h1", title)]
    statuses = df["status"].value_counts().to_dict() if "status" in df.columns else {}
    blocks.append(
        (
            "p",
            f"{len(df)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())) + ". "
            f"Datasets: {', '.join(dict.fromkeys(df['dataset']))}. "
            f"Seeds per cell: {df.groupby(['dataset', 'variant'])['seed'].nunique().max()}.",
        )
    )
    blocks.append(("p", _budget_text(df)))
    mixed = _mixed_evaluators_text(df)
    if mixed:
        blocks.append(("p", mixed))
    blocks.append(
        (
            "p",
            "Best variant per dataset in **bold** (lower is better for reconstruction and FID, "
            "higher for the rest; variants that print the same value are tied, all bold); "
            "mean ± std over seeds; in brackets the thesis value (4 seeds, "
            "1000 + 1000 epochs) and the difference, where the thesis reports that dataset and variant.",
        )
    )
    variants = _variants_in(df) if len(df) else []
    tokenizers, views = tokenizer_rows(df), prior_views(df)
    if len(views) > 1:
        blocks.append(
            (
                "p",
                "Several priors: the stage-1 tables count each tokenizer once; the generation tables are "
                "shown for each prior and for the thesis' pairing; the thesis' values in brackets were "
                "measured with its pairing. " + _prior_counts(df),
            )
        )
    for spec in THESIS_TABLES:
        for label, runs in [("", tokenizers)] if spec.metric in STAGE1_METRICS else views:
            long = thesis_table(runs, spec)
            if long.empty:
                continue
            blocks.append(("h2", f"{spec.title} — {label}" if label else spec.title))
            header, rows = _table_block(long, variants)
            blocks.append(("table", header, rows))
    for label, runs in views:
        blocks.extend(_extra_blocks(runs, variants, label))
    win_rows = []
    for label, runs in [("", tokenizers), *views]:
        metrics = (
            STAGE1_METRICS if runs is tokenizers else [m for m, *_ in WIN_METRICS if m not in STAGE1_METRICS]
        )
        wins = nc_wins(runs, metrics) if len(runs) else pd.DataFrame()
        win_rows += [
            [
                HEADLINE[r.metric][1] + (f" ({label})" if label else ""),
                f"{r.ours} of {r.datasets}",
                f"{r.thesis_same} of {r.thesis_same_n}",
                f"{r.thesis_all} of {r.thesis_all_n}",
            ]
            for r in wins.itertuples()
        ]
    if win_rows:
        blocks.append(("h2", "Datasets on which NC beats the baseline"))
        blocks.append(
            (
                "p",
                "Per metric, the datasets on which the best NC variant (mean over seeds) is better than the "
                "baseline, here and in the thesis (same rule on its tables), on the datasets compared here "
                "and on all the thesis reports.",
            )
        )
        header = ["metric", "here", "thesis, same datasets", "thesis, all datasets"]
        blocks.append(("table", header, win_rows))
    blocks.extend(_tokenizer_vs_prior_blocks(df))
    if "evaluator_accuracy" in df.columns and df["evaluator_accuracy"].notna().any():
        blocks.append(("h2", "Evaluator (supervised FCN) test accuracy"))
        ceilings = load_anchor("real_data_ceilings.csv")
        rows = []
        for dataset, group in df.dropna(subset=["evaluator_accuracy"]).groupby("dataset", sort=False):
            ref = anchor_value(ceilings, str(dataset), "acc_fcn")
            rows.append(
                [
                    str(dataset),
                    _fmt(float(group["evaluator_accuracy"].mean())),
                    _fmt(ref) if ref is not None else "–",
                ]
            )
        blocks.append(
            ("table", ["dataset", "evaluator accuracy", "published FCN accuracy (Fawaz et al. 2019)"], rows)
        )
    failed = df[df["status"] == "failed"] if "status" in df.columns else df.iloc[0:0]
    if len(failed):
        blocks.append(("h2", "Failed runs"))
        rows = [
            [r.dataset, r.variant, str(r.seed), str(getattr(r, "error", ""))[:300]]
            for r in failed.itertuples()
        ]
        blocks.append(("table", ["dataset", "variant", "seed", "error"], rows))
    blocks.extend(_runs_blocks(df))
    if figures:
        blocks.append(("h2", "Figures"))
        blocks.extend(("img", caption, rel) for caption, rel in figures)
    return blocks


def _prior_counts(df: pd.DataFrame) -> str:
    counts = df[df["prior"] != ""].groupby("prior").size()
    return "Runs per prior: " + ", ".join(f"{PRIOR_LABELS.get(p, p)} {n}" for p, n in counts.items()) + "."


def _minutes(seconds: Any) -> str:
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "–"
    return f"{seconds / 60:.1f}"


def _mixed_evaluators_text(df: pd.DataFrame) -> str:
    """A warning when one dataset's FID and IS come from several trained evaluators ("" when none does)."""
    if "evaluator" not in df.columns:
        return ""
    parts = []
    for dataset, group in df[df["evaluator"].astype(bool)].groupby("dataset", sort=False):
        counts = group["evaluator"].value_counts(sort=False)
        if len(counts) > 1:
            parts.append(
                f"{dataset}: " + ", ".join(f"{e} ({n} run{'s' * (n != 1)})" for e, n in counts.items())
            )
    if not parts:
        return ""
    return (
        "**Several evaluators.** FID and IS of one dataset come from more than one trained evaluator ("
        + "; ".join(parts)
        + "): they compare generators only within one evaluator (the Runs table's last column); "
        "reconstruction, the probes and CAS do not depend on it."
    )


def _runs_blocks(df: pd.DataFrame) -> list[Block]:
    """Every run: its prior, status, machine, arithmetic, wall time per step and evaluator accuracy."""
    if not len(df) or "machine" not in df.columns:
        return []
    rows = []
    for r in df.itertuples():
        rows.append(
            [
                str(r.dataset),
                str(r.variant),
                str(r.seed),
                PRIOR_LABELS.get(r.prior, r.prior) or "–",
                str(r.status),
                r.machine or "–",
                r.arithmetic or "–",
                _minutes(r.stage1_s),
                _minutes(r.stage2_s),
                _minutes(r.evaluation_s),
                _fmt(getattr(r, "evaluator_accuracy", math.nan)),
                r.evaluator or "–",
            ]
        )
    header = ["dataset", "variant", "seed", "prior", "status", "machine", "arithmetic"]
    header += ["stage 1 (min)", "stage 2 (min)", "evaluation (min)", "evaluator accuracy", "evaluator"]
    text = (
        "Wall time per step in minutes (a run whose stage 1 came from another run of the same tokenizer "
        "shows none); the machine and arithmetic (bf16 autocast or fp32) each run's steps used (the last "
        "attempt's, for a step resumed elsewhere); the evaluator's key and when it was trained (FID and IS "
        "compare between runs of one trained evaluator)."
    )
    return [("h2", "Runs"), ("p", text), ("table", header, rows)]


EXTRA_TEXT = (
    "Not in the thesis (docs/evaluation.md): KID with FID's sets; precision, recall, density and coverage "
    "(k-NN manifolds, Naeem et al. 2020); the memorisation check (share of samples nearer to the training "
    "set than the closest 5% of real test series, ≈ 0.05 for a generator that does not copy; median "
    "nearest-training distance of samples over that of test series, ≈ 1); the evaluator-free MiniRocket "
    "FID; the accuracy gained on real test by adding synthetic series to real train, alone and over "
    "simple augmentation (jitter + window warp). Mean over seeds."
)


def _extra_blocks(df: pd.DataFrame, variants: Sequence[str], view: str = "") -> list[Block]:
    """A mean-over-seeds table (dataset × variant) per metric of :data:`EXTRA` that the runs have
    (``view``: the prior they were made with, when there are several)."""
    blocks: list[Block] = []
    for column, (_key, label, _better) in EXTRA.items():
        long = thesis_table(df, TableSpec(label, column, "mean"))
        if long.empty:
            continue
        if not blocks:
            blocks += [
                ("h2", f"Beyond the thesis — {view}" if view else "Beyond the thesis"),
                ("p", EXTRA_TEXT),
            ]
        blocks.append(("h3", f"{label}, mean over seeds"))
        blocks.append(("table", *_table_block(long, variants)))
    return blocks


def _run_extra_blocks(row: Mapping[str, Any], generation: Mapping[str, Any]) -> list[Block]:
    """One run's :data:`EXTRA` numbers, the KID interval and whether memorisation was flagged."""
    rows = []
    for column, (_key, label, better) in EXTRA.items():
        value = row.get(column, math.nan)
        if value is None or math.isnan(value):
            continue
        text = _fmt(value, 4)
        if column == "kid" and generation.get("kid_ci95"):
            lo, hi = generation["kid_ci95"]
            text += f" [{lo:.4f}, {hi:.4f}]"
        rows.append([label, text, f"{better} is better" if better != "near 1" else "near 1 is best"])
    memo = generation.get("memorisation") or {}
    for space in ("features", "series"):
        if space in memo:
            flagged = "**flagged: the generator copies its training set**" if memo[space]["flagged"] else "no"
            rows.append([f"memorisation flagged ({space})", flagged, ""])
    if not rows:
        return []
    return [("h2", "Beyond the thesis"), ("table", ["metric", "this run", ""], rows)]


def write_report(
    sweep_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    figures: bool = True,
    title: str | None = None,
) -> dict[str, Path]:
    """Collect ``sweep_dir`` and write results.csv/.parquet, report.md, report.html and the figures.

    Args:
        sweep_dir: a sweep directory (or any folder of run directories).
        out_dir: where to write (default: ``sweep_dir``).
        figures: draw the figures (``report_figures/*.png``).
        title: the report's title (default: the sweep's name).

    Returns:
        ``{"csv", "parquet" (if pyarrow), "markdown", "html"}`` → paths.
    """
    sweep_dir = Path(sweep_dir)
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    df = collect(sweep_dir)
    if df.empty:
        raise NcvqvaeError(f"{sweep_dir}: no run directories found (folders holding config.yaml)")
    paths = {p.suffix.lstrip("."): p for p in write_tables(df, out_dir)}
    done = df[df["status"] == "done"] if (df["status"] == "done").any() else df
    figure_links: list[tuple[str, str]] = []
    if figures:
        for caption, path in sweep_figures(done, out_dir / FIGURES_DIR):
            figure_links.append((caption, path.relative_to(out_dir).as_posix()))
    title = title or f"Sweep report: {_sweep_name(sweep_dir)}"
    blocks = report_blocks(df, figure_links, title)
    paths["markdown"] = out_dir / "report.md"
    paths["html"] = out_dir / "report.html"
    atomic_write_text(paths["markdown"], to_markdown(blocks))
    atomic_write_text(paths["html"], to_html(blocks, title))
    return paths


def _sweep_name(sweep_dir: Path) -> str:
    spec = sweep_dir / "sweep.yaml"
    if spec.is_file():
        data = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
        if isinstance(data, dict) and data.get("name"):
            return str(data["name"])
    return sweep_dir.name


# --------------------------------------------------------------------------------------------------
# One run's report
# --------------------------------------------------------------------------------------------------


def run_report_blocks(run_dir: str | Path) -> list[Block]:
    """Blocks of one run's ``report.md``: identity, budget, metrics beside thesis values, timings, figures."""
    run_dir = Path(run_dir)
    row = run_row(run_dir)
    df = pd.DataFrame([row])
    cfg = RunDir(run_dir).read_config()
    title = f"{row['dataset']} · {row['variant']} · seed {row['seed']}"
    blocks: list[Block] = [("h1", title)]
    blocks.append(
        (
            "p",
            f"Run directory `{run_dir}`; stage-1 method {cfg.stage1.method}"
            + (f" with {', '.join(cfg.stage1.augmentation.names)}" if cfg.stage1.method != "baseline" else "")
            + f"; prior variant {cfg.stage2.variant}; device {cfg.device}.",
        )
    )
    blocks.append(("p", _budget_text(df)))
    scored = read_results(run_dir).get("generation", {}).get("protocol", {}).get("decoding")
    configured = dataclasses.asdict(cfg.stage2.decoding)
    if scored and any(scored.get(k) != v for k, v in configured.items()):
        blocks.append(
            (
                "p",
                "**The generation numbers were scored with other decoding options than the run's config** "
                f"(an `ncvqvae evaluate --set stage2....`): {_decoding_text(scored)}, against "
                f"{_decoding_text(configured)} in `config.yaml`.",
            )
        )
    anchors = {spec.metric: spec for spec in THESIS_TABLES if spec.agg == "mean"}
    rows = []
    for column, (_key, label, better) in HEADLINE.items():
        value = row[column]
        spec = anchors.get(column)
        ref = None
        if spec is not None and spec.anchor_file:
            ref = anchor_value(
                load_anchor(spec.anchor_file), row["dataset"], f"{row['variant']}{spec.anchor_suffix}"
            )
        if column == "evaluator_accuracy":
            ref = anchor_value(load_anchor("real_data_ceilings.csv"), row["dataset"], "acc_fcn")
        diff = value - ref if ref is not None and not math.isnan(value) else math.nan
        rows.append(
            [
                label,
                _fmt(value),
                f"{better} is better",
                _fmt(ref if ref is not None else math.nan),
                "–" if math.isnan(diff) else f"{diff:+.3f}",
            ]
        )
    blocks.append(("h2", "Results"))
    header = ["metric", "this run", "", "thesis, mean of 4 seeds (evaluator: published FCN)", "difference"]
    blocks.append(("table", header, rows))
    blocks.extend(_run_extra_blocks(row, read_results(run_dir).get("generation", {})))
    timings = [
        [k, f"{row[f'{k}_s']:.1f} s"]
        for k in ("stage1", "stage2", "evaluation")
        if not math.isnan(row[f"{k}_s"])
    ]
    if timings:
        blocks.append(("h2", "Timings"))
        blocks.append(("table", ["step", "wall time"], timings))
    order = {name: i for i, name in enumerate(FIGURE_NAMES)}  # the evaluation's own order, then the rest
    pictures = sorted(
        run_dir.glob(f"{EVALUATION_DIR}/*.png"), key=lambda p: (order.get(p.name, len(order)), p.name)
    )
    if pictures:
        blocks.append(("h2", "Figures"))
        for path in pictures:
            blocks.append(("img", path.stem.replace("_", " "), path.relative_to(run_dir).as_posix()))
    return blocks


def _decoding_text(decoding: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k.replace('_', ' ')} {decoding.get(k)}"
        for k in ("steps", "temperature", "choice_temperature", "guidance")
    )


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``<run_dir>/report.md`` (and ``report.html``) for one run; return the Markdown path."""
    run_dir = Path(run_dir)
    blocks = run_report_blocks(run_dir)
    path = run_dir / REPORT_NAME
    atomic_write_text(path, to_markdown(blocks))
    atomic_write_text(path.with_suffix(".html"), to_html(blocks, str(blocks[0][1])))
    return path
