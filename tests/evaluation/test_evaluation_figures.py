"""Every thesis figure renders a PNG of the announced pixel size; the per-class panels stay readable."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import threadpoolctl

from ncvqvae.errors import DataError
from ncvqvae.evaluation.figures import (
    BAND,
    LOSS_CURVES_SIZE,
    N_EXAMPLES,
    class_panels_figure,
    class_samples_size,
    plot_class_samples,
    plot_generated_vs_real_pca,
    plot_knn_vs_metric,
    plot_latent_embedding,
    plot_loss_curves,
    plot_samples,
)

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """Small matrices: a second BLAS/OpenMP thread only spin-waits on a loaded CPU."""
    with threadpoolctl.threadpool_limits(1):
        yield


def _series(n: int, k: int = 3, channels: int = 1, length: int = 40) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % k
    t = np.linspace(0, 2 * np.pi, length)
    X = np.sin((y[:, None] + 1) * t)[:, None, :].repeat(channels, axis=1)
    return (X + 0.1 * RNG.normal(size=X.shape)).astype(np.float32), y


def _check_png(path: Path, size: tuple[int, int]) -> None:
    assert path.is_file() and path.stat().st_size > 1000
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == size
    assert image[..., :3].std() > 0.01  # something was drawn


def test_class_samples(tmp_path: Path) -> None:
    gen, yg = _series(90, channels=2)
    train, yt = _series(120, channels=2)
    test, ye = _series(60, channels=2)
    path = plot_class_samples(
        gen, yg, train, yt, test, ye, tmp_path / "samples.png", class_names=("a", "b", "c")
    )
    _check_png(path, class_samples_size(3))
    path = plot_class_samples(gen, yg, train, yt, test, ye, tmp_path / "two.png", classes=[0, 2], channel=1)
    _check_png(path, class_samples_size(2))
    with pytest.raises(DataError, match="channel"):
        plot_class_samples(gen, yg, train, yt, test, ye, tmp_path / "bad.png", channel=2)


def _panels(fig) -> np.ndarray:
    return np.array(fig.axes).reshape(-1, 3)


def test_class_panels_are_readable() -> None:
    """Few lines per panel, one y-scale for generated and real, the class names as titles."""
    gen, yg = _series(300)
    gen[yg == 1] *= 5.0  # generated class 1 far larger than anything real: the real panels must follow
    train, yt = _series(600)
    test, ye = _series(90)
    sets = [("generated", gen, yg), ("real train", train, yt), ("real test", test, ye)]
    fig = class_panels_figure(sets, class_names=("up", "down", "flat"))
    axes = _panels(fig)
    assert axes.shape == (3, 3)
    limits = {ax.get_ylim() for ax in axes.ravel()}
    assert len(limits) == 1  # shared across the whole figure
    ((lo, hi),) = limits
    assert hi >= np.quantile(gen[yg == 1], BAND[1]) and lo <= np.quantile(gen[yg == 1], BAND[0])
    for row, name in zip(axes, ("up", "down", "flat"), strict=True):
        for ax, (set_name, _, y) in zip(row, sets, strict=True):
            assert ax.get_title(loc="left") == name
            k = ("up", "down", "flat").index(name)
            assert ax.get_title(loc="right") == f"{set_name} (n={int((y == k).sum())})"
            assert len(ax.lines) == N_EXAMPLES + 1 <= 10  # the examples and the median, however many series
            assert len(ax.collections) == 1  # the quantile band
    # the median line is the per-time median of the class's series
    median = axes[1, 1].lines[-1].get_ydata()
    np.testing.assert_allclose(median, np.median(train[yt == 1, 0], axis=0), rtol=1e-5, atol=1e-6)


def test_class_panels_seeded_examples_and_missing_class() -> None:
    gen, yg = _series(60)
    train, yt = _series(60)
    sets = [("generated", gen, yg), ("real", train[yt != 2], yt[yt != 2])]

    def drawn(seed: int) -> list[np.ndarray]:
        fig = class_panels_figure(sets, seed=seed)
        return [line.get_ydata() for ax in fig.axes for line in ax.lines]

    assert all(np.array_equal(a, b) for a, b in zip(drawn(3), drawn(3), strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(drawn(3), drawn(4), strict=True))
    fig = class_panels_figure(sets, class_names=("a", "b", "c"))
    empty = np.array(fig.axes).reshape(3, 2)[2, 1]  # class 2 has no real series
    assert not empty.lines and [t.get_text() for t in empty.texts] == ["no series"]
    assert empty.get_title(loc="left") == "c"


def test_plot_samples(tmp_path: Path) -> None:
    gen, yg = _series(12)
    real, yr = _series(30)
    path = plot_samples(gen, yg, real, yr, tmp_path / "grid.png", class_names=("a", "b", "c"))
    _check_png(path, class_samples_size(3, n_columns=2))
    # unlabelled samples, no real series: one row of everything beside an empty panel
    path = plot_samples(gen, None, real[:0], None, tmp_path / "uncond.png")
    _check_png(path, class_samples_size(1, n_columns=2))


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_latent_embedding(tmp_path: Path, method: str) -> None:
    features = np.concatenate([RNG.normal(c, 1.0, size=(30, 64)) for c in range(3)])
    labels = np.repeat(np.arange(3), 30)
    path = plot_latent_embedding(features, labels, tmp_path / f"{method}.png", method=method)
    _check_png(path, (500, 600))


def test_generated_vs_real_pca(tmp_path: Path) -> None:
    real, _ = _series(80)
    fake, _ = _series(50)
    _check_png(plot_generated_vs_real_pca(real, fake, tmp_path / "pca.png"), (500, 600))
    with pytest.raises(DataError, match="alike"):
        plot_generated_vs_real_pca(real, fake[..., :10], tmp_path / "bad.png")


def test_loss_curves(tmp_path: Path) -> None:
    stage1 = [
        {
            "step": s,
            "epoch": 0,
            "lr": 1e-3,
            "loss": 2.0 / (s + 1),
            "recon_time": 1.0 / (s + 1),
            "recon_freq": 0.5 / (s + 1),
            "commitment": 0.1,
            "ssl": 3.0 - 0.01 * s,
            "perplexity": 5 + s % 3,
            "aug_recon_time": 0.3,
        }
        for s in range(30)
    ]
    stage1.append({"event": "epoch", "step": 30, "epoch": 0, "loss": 9.0})  # not a step record: skipped
    stage2 = [{"step": s, "loss": 3.0 / (s + 1)} for s in range(20)]
    path = plot_loss_curves({"stage1": stage1, "stage2": stage2}, tmp_path / "loss.png", title="run")
    _check_png(path, LOSS_CURVES_SIZE)
    # A baseline without stage 2 still renders (empty panels say "not logged").
    _check_png(plot_loss_curves({"stage1": stage1[:5]}, tmp_path / "partial.png"), LOSS_CURVES_SIZE)


def test_knn_vs_metric(tmp_path: Path) -> None:
    table = pd.DataFrame(
        {
            "knn_accuracy": RNG.uniform(0.5, 1.0, 12),
            "fid": RNG.uniform(1, 10, 12),
            "is_mean": RNG.uniform(1, 3, 12),
            "method": ["baseline", "barlowtwins", "vibcreg"] * 4,
        }
    )
    _check_png(plot_knn_vs_metric(table, tmp_path / "knn.png"), (400, 900))
    records = table.to_dict("records")
    _check_png(plot_knn_vs_metric(records, tmp_path / "one.png", metrics=["fid"], hue=None), (400, 450))
    with pytest.raises(DataError, match="lacks"):
        plot_knn_vs_metric(table, tmp_path / "bad.png", metrics=["cas"])
