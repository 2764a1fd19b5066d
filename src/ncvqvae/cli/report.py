"""``ncvqvae report``: collect a sweep's results into tables and a thesis-style report.

Example::

    ncvqvae report sweeps/demo          # results.csv/.parquet, report.md, report.html, report_figures/

Works on any folder of run directories (a sweep, or the ``runs/`` folder of ``ncvqvae run``).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "report",
        help="tidy results table (CSV, Parquet) and a thesis-style report (Markdown, HTML) of a sweep",
        description=(
            "Collect every run under DIR into results.csv/.parquet and write report.md and report.html with "
            "the thesis' Tables 1-7 (beside the thesis' own numbers where it reports them) and figures."
        ),
    )
    parser.add_argument("dir", metavar="DIR", help="a sweep directory or any folder of run directories")
    parser.add_argument("--out", help="where to write (default: DIR)")
    parser.add_argument("--no-figures", action="store_true", help="tables only")
    parser.add_argument("--title", help="the report's title (default: the sweep's name)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ncvqvae.experiments.report import write_report

    paths = write_report(args.dir, out_dir=args.out, figures=not args.no_figures, title=args.title)
    for kind in ("csv", "parquet", "markdown", "html"):
        if kind in paths:
            print(f"{kind:9s} {paths[kind]}")
    return 0
