"""The thesis pictures, as pure functions: arrays in, a PNG file out (SPEC §5 "Pictures").

- :func:`plot_class_samples`: per class, generated series beside real train and real test series
  (thesis Figs. 12–18), as a median, a 10–90 % quantile band and three example series per panel, every
  panel on one y-scale. :func:`plot_samples` is its two-column form for ``ncvqvae sample --plot``.
- :func:`plot_latent_embedding`: t-SNE or PCA of pooled discrete latents coloured by class (Figs. 4–5, 14).
- :func:`plot_generated_vs_real_pca`: PCA of generated against real series (Fig. 15).
- :func:`plot_loss_curves`: training curves from the JSON-lines metrics logs (Figs. 2, 6).
- :func:`plot_knn_vs_metric`: KNN probe accuracy against FID / IS across runs.

Every function draws on the headless Agg canvas (no pyplot state, so it is safe in worker processes),
writes the PNG atomically, and returns its path. The image size is fixed by the figure size in inches
times ``dpi`` (no tight bounding box), so callers and tests know the pixel size in advance; the size of
each picture is stated in its docstring. Every random choice (which series to show, t-SNE) is seeded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from ncvqvae.errors import DataError
from ncvqvae.home import atomic_path

DPI = 100
PANEL_WIDTH = 3.2  # inches per column of class panels
PANEL_HEIGHT = 1.6  # inches per class row
HEADER_HEIGHT = 0.45  # inches above the class rows, for the note saying what a panel shows
N_EXAMPLES = 3  # example series per class panel: few enough to follow each line by eye
BAND = (0.1, 0.9)  # quantiles of the band drawn around the median of a class panel
MAX_BAND_SERIES = 2000  # the band of a larger class is estimated on a seeded subset (keeps it fast)
MAX_EMBEDDING_POINTS = 3000  # t-SNE is quadratic-ish; larger sets are subsampled (seeded)


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _save(fig: Figure, path: str | Path, dpi: int) -> Path:
    path = Path(path)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _class_name(k: int | None, class_names: Sequence[str] | None) -> str:
    if k is None:
        return "all series"
    return str(class_names[k]) if class_names is not None and k < len(class_names) else f"class {k}"


def _pick(rng: np.random.Generator, idx: np.ndarray, n: int) -> np.ndarray:
    return idx if len(idx) <= n else np.sort(rng.choice(idx, size=n, replace=False))


def class_samples_size(n_classes: int, n_columns: int = 3, dpi: int = DPI) -> tuple[int, int]:
    """(height, width) in pixels of :func:`plot_class_samples` (3 columns) or :func:`plot_samples`
    (2 columns) for ``n_classes`` rows."""
    return round((PANEL_HEIGHT * n_classes + HEADER_HEIGHT) * dpi), round(PANEL_WIDTH * n_columns * dpi)


def class_panels_figure(
    sets: Sequence[tuple[str, np.ndarray | torch.Tensor, np.ndarray | torch.Tensor | None]],
    *,
    classes: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    channel: int = 0,
    n_examples: int = N_EXAMPLES,
    seed: int = 0,
) -> Figure:
    """The per-class small multiples behind :func:`plot_class_samples` and :func:`plot_samples`.

    One row per class, one column per set. Each panel shows the set's series of that class as a median
    line, a ``BAND`` (10–90 %) quantile band over time and ``n_examples`` thin example series (a seeded
    random choice), so a class's shape stays readable however many series it has. Every panel shares one
    y-axis: generated and real series are drawn on the same scale. Panel titles: the class name (left)
    and the set with its series count (right). Multivariate series show ``channel`` (said in the header).

    Args:
        sets: (name, x (N, C, L), y (N,) class ids or None) per column; ``y=None`` puts all of ``x`` in
            every row (unlabelled samples).
        classes: the rows (default: every class seen in any set; one "all series" row when none is
            labelled).
        class_names: printable class names indexed by class id.
        channel: which channel of multivariate series to draw.
        n_examples: example series per panel.
        seed: seed of the example choice (and of the subsample behind the band of very large sets).
    """
    arrays = []
    for name, x, y in sets:
        x = _numpy(x)
        y = None if y is None else _numpy(y).ravel()
        if x.ndim != 3 or (y is not None and len(x) != len(y)):
            shape_y = None if y is None else y.shape
            raise DataError(f"class panels: {name} must be (N, C, L) with N labels, got {x.shape}, {shape_y}")
        if len(x) and not 0 <= channel < x.shape[1]:
            raise DataError(f"class panels: channel {channel} out of range for {name} with {x.shape[1]}")
        arrays.append((name, x, y))
    if classes is None:
        seen = {int(k) for _, _, y in arrays if y is not None for k in np.unique(y)}
        classes = sorted(seen) if seen else [None]
    if not classes:
        raise DataError("class panels: no classes to draw")
    n_channels = max(x.shape[1] for _, x, _ in arrays)
    rng = np.random.default_rng(seed)
    rows, cols = len(classes), len(arrays)
    fig = Figure(figsize=(PANEL_WIDTH * cols, PANEL_HEIGHT * rows + HEADER_HEIGHT))
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    for row, k in enumerate(classes):
        for col, (name, x, y) in enumerate(arrays):
            ax = axes[row, col]
            idx = np.arange(len(x)) if y is None or k is None else np.flatnonzero(y == k)
            _draw_panel(ax, x, idx, channel, n_examples, rng, color=f"C{col}")
            ax.set_title(_class_name(k, class_names), loc="left", fontsize=8, fontweight="bold")
            ax.set_title(f"{name} (n={len(idx)})", loc="right", fontsize=7, color="0.35")
            ax.tick_params(labelsize=6)
    lo, hi = BAND
    note = f"line: median · band: {lo:.0%}–{hi:.0%} quantiles · thin: {n_examples} random series"
    if n_channels > 1:
        note += f" · channel {channel} of {n_channels}"
    height = PANEL_HEIGHT * rows + HEADER_HEIGHT
    fig.text(0.5, 1 - 0.06 / height, note, ha="center", va="top", fontsize=7, color="0.3")
    fig.subplots_adjust(
        left=0.4 / (PANEL_WIDTH * cols),
        right=1 - 0.1 / (PANEL_WIDTH * cols),
        bottom=0.3 / height,
        top=1 - HEADER_HEIGHT / height,
        hspace=0.45,
        wspace=0.08,
    )
    return fig


def _draw_panel(
    ax: Any,
    x: np.ndarray,
    idx: np.ndarray,
    channel: int,
    n_examples: int,
    rng: np.random.Generator,
    color: str,
) -> None:
    """Median, quantile band and a few example series of ``x[idx, channel]`` (a "none" note if empty)."""
    if len(idx) == 0:
        ax.text(
            0.5, 0.5, "no series", ha="center", va="center", transform=ax.transAxes, color="0.5", fontsize=7
        )
        return
    band = x[_pick(rng, idx, MAX_BAND_SERIES), channel]  # (n, L)
    t = np.arange(band.shape[1])
    q_lo, median, q_hi = np.quantile(band, [BAND[0], 0.5, BAND[1]], axis=0)
    ax.fill_between(t, q_lo, q_hi, color=color, alpha=0.2, linewidth=0)
    examples = x[_pick(rng, idx, n_examples), channel]  # (n_examples, L)
    # shades of the column's colour, dark to light, so that crossing examples can be told apart
    base = np.asarray(to_rgb(color))
    for i, series in enumerate(examples):
        mix = i / max(len(examples) - 1, 1)  # 0 → dark, 1 → light
        shade = base * (0.45 + 0.55 * mix) if mix <= 0.5 else base + (1 - base) * (mix - 0.5) * 0.7
        ax.plot(t, series, color=tuple(np.clip(shade, 0, 1)), linewidth=0.8)
    ax.plot(t, median, color="black", linewidth=1.2)


def plot_class_samples(
    generated: np.ndarray | torch.Tensor,
    y_generated: np.ndarray | torch.Tensor,
    train: np.ndarray | torch.Tensor,
    y_train: np.ndarray | torch.Tensor,
    test: np.ndarray | torch.Tensor,
    y_test: np.ndarray | torch.Tensor,
    path: str | Path,
    *,
    n_examples: int = N_EXAMPLES,
    classes: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    channel: int = 0,
    seed: int = 0,
    dpi: int = DPI,
) -> Path:
    """Per class, generated series beside real train and real test series (thesis Figs. 12–18).

    One row per class, three columns (generated | real train | real test), each panel a median, a
    10–90 % quantile band and ``n_examples`` example series, all panels on one y-scale (see
    :func:`class_panels_figure`). Size: ``class_samples_size(len(classes))``.

    Args:
        generated, train, test: (N, C, L) series; y_generated, y_train, y_test: (N,) class ids.
        path: PNG to write.
        n_examples: example series per panel (a seeded random choice).
        classes: the classes to show (default: every class seen in any of the three sets).
        class_names: printable class names indexed by class id.
        channel: which channel of multivariate series to draw.
        seed: seed of the example choice.
        dpi: pixels per inch.
    """
    fig = class_panels_figure(
        [("generated", generated, y_generated), ("real train", train, y_train), ("real test", test, y_test)],
        classes=classes,
        class_names=class_names,
        channel=channel,
        n_examples=n_examples,
        seed=seed,
    )
    return _save(fig, path, dpi)


def plot_samples(
    generated: np.ndarray | torch.Tensor,
    y_generated: np.ndarray | torch.Tensor | None,
    real: np.ndarray | torch.Tensor,
    y_real: np.ndarray | torch.Tensor | None,
    path: str | Path,
    *,
    class_names: Sequence[str] | None = None,
    channel: int = 0,
    n_examples: int = N_EXAMPLES,
    seed: int = 0,
    dpi: int = DPI,
) -> Path:
    """The ``ncvqvae sample --plot`` picture: per class, generated series beside real training series.

    Like :func:`plot_class_samples` with two columns (generated | real train). Unlabelled samples
    (``y_generated=None``) give one row of all series; an empty ``real`` says "no series". Size:
    ``class_samples_size(n_rows, n_columns=2)``.

    Args:
        generated: (n, C, L) synthetic series; y_generated: (n,) class ids or None.
        real: (m, C, L) real training series (may be empty); y_real: (m,) class ids or None.
        path: PNG to write.
        class_names: a name per class id for the panel titles.
        channel: which channel of multivariate series to draw.
        n_examples: example series per panel.
        seed: seed of the example choice.
        dpi: pixels per inch.
    """
    classes = None if y_generated is None else sorted({int(k) for k in _numpy(y_generated).ravel()})
    if y_generated is None:
        y_real = None  # one row of everything: unlabelled samples have no class to match
    fig = class_panels_figure(
        [("generated", generated, y_generated), ("real train", real, y_real)],
        classes=classes or None,
        class_names=class_names,
        channel=channel,
        n_examples=n_examples,
        seed=seed,
    )
    return _save(fig, path, dpi)


def embed_2d(features: np.ndarray, method: str = "tsne", seed: int = 0) -> np.ndarray:
    """Project (N, D) features to (N, 2) with sklearn's t-SNE or PCA (seeded)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 3:
        raise DataError(f"embed_2d: need an (N, D) array with N ≥ 3, got shape {features.shape}")
    if method == "pca":
        n_comp = min(2, features.shape[1])
        out = PCA(n_components=n_comp, random_state=seed).fit_transform(features)
        return out if n_comp == 2 else np.column_stack([out, np.zeros(len(out))])
    if method == "tsne":
        # sklearn requires perplexity < N; the default 30 suits the usual N, smaller sets get less.
        perplexity = float(min(30.0, max(2.0, (features.shape[0] - 1) / 3)))
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
            features
        )
    raise DataError(f"embed_2d: method must be 'tsne' or 'pca', got {method!r}")


def plot_latent_embedding(
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    path: str | Path,
    *,
    method: str = "tsne",
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    seed: int = 0,
    max_points: int = MAX_EMBEDDING_POINTS,
    dpi: int = DPI,
) -> Path:
    """Scatter of a 2-D t-SNE or PCA of (pooled discrete latent) features, coloured by class.

    Size: 6 × 5 inches (600 × 500 pixels at 100 dpi).

    Args:
        features: (N, D) features (e.g. ``VQVAE.pooled_features`` of the test split).
        labels: (N,) class ids.
        path: PNG to write.
        method: "tsne" or "pca".
        class_names: legend names indexed by class id.
        title: figure title (default names the method).
        seed: seed of t-SNE and of the subsample.
        max_points: larger sets are subsampled to this many points.
    """
    features, labels = _numpy(features), _numpy(labels).ravel()
    if len(features) != len(labels):
        raise DataError(f"plot_latent_embedding: {len(features)} feature rows but {len(labels)} labels")
    rng = np.random.default_rng(seed)
    keep = _pick(rng, np.arange(len(labels)), max_points)
    xy = embed_2d(features[keep], method=method, seed=seed)
    labels = labels[keep]
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    for k in np.unique(labels):
        sel = labels == k
        ax.scatter(xy[sel, 0], xy[sel, 1], s=6, alpha=0.7, label=_class_name(int(k), class_names))
    if len(np.unique(labels)) <= 20:
        ax.legend(fontsize=6, markerscale=2, loc="best")
    ax.set_title(title or f"{'t-SNE' if method == 'tsne' else 'PCA'} of pooled latents", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.subplots_adjust(left=0.04, right=0.98, bottom=0.04, top=0.93)
    return _save(fig, path, dpi)


def plot_generated_vs_real_pca(
    real: np.ndarray | torch.Tensor,
    generated: np.ndarray | torch.Tensor,
    path: str | Path,
    *,
    title: str | None = None,
    seed: int = 0,
    max_points: int = MAX_EMBEDDING_POINTS,
    dpi: int = DPI,
) -> Path:
    """PCA (fit on the real series) of real and generated series, flattened over channels and time.

    Size: 6 × 5 inches (600 × 500 pixels at 100 dpi).

    Args:
        real: (N_r, C, L) real series; generated: (N_g, C, L) generated series.
        path: PNG to write.
        title: figure title.
        seed: seed of the subsample and PCA.
        max_points: each set is subsampled to at most this many series.
    """
    from sklearn.decomposition import PCA

    real, generated = _numpy(real), _numpy(generated)
    if real.ndim != 3 or generated.ndim != 3 or real.shape[1:] != generated.shape[1:]:
        raise DataError(
            f"plot_generated_vs_real_pca: shapes {real.shape} and {generated.shape} must be (N, C, L) alike"
        )
    rng = np.random.default_rng(seed)
    flat = real.shape[1] * real.shape[2]
    real = real[_pick(rng, np.arange(len(real)), max_points)].reshape(-1, flat)
    generated = generated[_pick(rng, np.arange(len(generated)), max_points)].reshape(-1, flat)
    pca = PCA(n_components=2, random_state=seed).fit(real)
    fig = Figure(figsize=(6, 5))
    ax = fig.subplots()
    for name, x, color in (("real", real, "C0"), ("generated", generated, "C1")):
        xy = pca.transform(x)
        ax.scatter(xy[:, 0], xy[:, 1], s=6, alpha=0.5, color=color, label=f"{name} (n={len(x)})")
    ratio = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({ratio[0]:.0%})", fontsize=8)
    ax.set_ylabel(f"PC2 ({ratio[1]:.0%})", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=7)
    ax.set_title(title or "PCA of real vs generated series", fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93)
    return _save(fig, path, dpi)


# Panels of the loss-curve figure: (title, stage, metric-name predicate).
LOSS_PANELS: tuple[tuple[str, str, Any], ...] = (
    ("reconstruction", "stage1", lambda k: k.startswith("recon")),
    ("augmented-view reconstruction", "stage1", lambda k: k.startswith("aug_recon")),
    ("SSL", "stage1", lambda k: k == "ssl" or k.startswith("ssl_")),
    ("VQ / commitment", "stage1", lambda k: k in ("commitment", "vq", "vq_loss", "codebook")),
    ("perplexity", "stage1", lambda k: k == "perplexity"),
    ("prior (stage 2)", "stage2", lambda k: k == "loss" or k.startswith("loss_")),
)
LOSS_CURVES_SIZE = (600, 1200)  # (height, width) pixels at 100 dpi: 2 × 3 panels of 4 × 3 inches


def plot_loss_curves(
    metrics: Mapping[str, Iterable[Mapping[str, Any]]],
    path: str | Path,
    *,
    title: str | None = None,
    dpi: int = DPI,
) -> Path:
    """Training curves against the optimiser step: reconstruction, augmented reconstruction, SSL,
    VQ / commitment, perplexity (stage 1) and the prior's loss (stage 2).

    Only step records are drawn (records with an ``"event"`` key — epoch summaries, evaluations — are
    skipped). A panel whose metrics are absent (the baseline has no SSL; a run without stage 2) says
    so. Size: 12 × 6 inches (``LOSS_CURVES_SIZE`` pixels at 100 dpi).

    Args:
        metrics: stage name ("stage1", "stage2") → records as read by
            :func:`ncvqvae.training.read_metrics` (dicts with ``"step"`` and metric values).
        path: PNG to write.
        title: figure title.
    """
    frames = {stage: _step_frame(records) for stage, records in metrics.items()}
    fig = Figure(figsize=(12, 6))
    axes = fig.subplots(2, 3).ravel()
    for ax, (panel, stage, wanted) in zip(axes, LOSS_PANELS, strict=True):
        frame = frames.get(stage)
        columns = [c for c in frame.columns if c != "step" and wanted(c)] if frame is not None else []
        for col in sorted(columns):
            values = frame[["step", col]].dropna()
            ax.plot(values["step"], values[col], linewidth=0.9, label=col)
        if columns:
            if panel != "perplexity" and all((frame[c].dropna() > 0).all() for c in columns):
                ax.set_yscale("log")
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="0.5")
        ax.set_title(panel, fontsize=9)
        ax.set_xlabel("step", fontsize=7)
        ax.tick_params(which="both", labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(
        left=0.05, right=0.99, bottom=0.08, top=0.9 if title else 0.94, hspace=0.4, wspace=0.2
    )
    return _save(fig, path, dpi)


def _step_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame | None:
    rows = [r for r in records if "event" not in r and "step" in r]
    if not rows:
        return None
    frame = pd.DataFrame(rows)
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    return frame[numeric]


def plot_knn_vs_metric(
    table: pd.DataFrame | Sequence[Mapping[str, Any]],
    path: str | Path,
    *,
    x: str = "knn_accuracy",
    metrics: Sequence[str] = ("fid", "is_mean"),
    hue: str | None = "method",
    title: str | None = None,
    dpi: int = DPI,
) -> Path:
    """Scatter of the KNN probe accuracy against generation metrics across runs (one dot per run).

    Size: ``(4.5 · len(metrics)) × 4`` inches.

    Args:
        table: one row per run, with column ``x``, the ``metrics`` columns and optionally ``hue``.
        path: PNG to write.
        x: the x-axis column.
        metrics: one panel per column (y-axis).
        hue: colour the dots by this column (e.g. "method" or "dataset"); None = one colour.
        title: figure title.
    """
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(list(table))
    missing = [c for c in (x, *metrics) if c not in frame.columns]
    if missing:
        raise DataError(
            f"plot_knn_vs_metric: table lacks column(s) {', '.join(missing)}; has {list(frame.columns)}"
        )
    groups = list(frame.groupby(hue, sort=True)) if hue and hue in frame.columns else [(None, frame)]
    fig = Figure(figsize=(4.5 * len(metrics), 4))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    for ax, metric in zip(axes, metrics, strict=True):
        for i, (name, group) in enumerate(groups):
            ax.scatter(
                group[x],
                group[metric],
                s=18,
                alpha=0.8,
                color=f"C{i % 10}",
                label=str(name) if name is not None else None,
            )
        ax.set_xlabel(x, fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
        ax.tick_params(labelsize=7)
        if groups[0][0] is not None:
            ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.14, top=0.86 if title else 0.95, wspace=0.3)
    return _save(fig, path, dpi)
