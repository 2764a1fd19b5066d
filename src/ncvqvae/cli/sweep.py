"""``ncvqvae sweep``: run a grid of (dataset, variant, seed) cells, resumably, locally or on Ray.

Examples::

    ncvqvae sweep --list                                  # the shipped sweeps
    ncvqvae sweep demo --dry-run                          # what would run, what is done
    ncvqvae sweep demo --workers 2                        # two worker processes
    ncvqvae sweep thesis-offline --executor ray --address auto --cpus-per-cell 4
    ncvqvae sweep sweeps/demo --retry-failed              # a sweep directory resumes its own spec

Run the same command again after an interruption: finished cells are skipped, interrupted ones resume.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "sweep",
        help="run a grid of cells (datasets × variants × seeds), resumable, locally or on Ray",
        description=(
            "Run every unfinished cell of a sweep file. Each cell has its own run directory "
            "<out>/<dataset>/<variant>/seed<k>; finished cells are skipped, interrupted ones resume, "
            "failures are recorded per cell (FAILED.json) without stopping the others."
        ),
    )
    parser.add_argument(
        "sweep", nargs="?", help="a sweep YAML file, a shipped sweep name, or a sweep directory"
    )
    parser.add_argument("--list", action="store_true", help="list the shipped sweeps and exit")
    parser.add_argument(
        "--out", help="sweep directory (default: sweeps/<name>; a sweep directory is its own)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list every cell with its status and what would happen"
    )
    parser.add_argument("--retry-failed", action="store_true", help="run the cells that failed before again")
    parser.add_argument("--executor", choices=["local", "ray"], help="local processes or a Ray cluster")
    parser.add_argument(
        "--workers", type=int, help="local: parallel worker processes (default 1: in this process)"
    )
    parser.add_argument(
        "--address", help="ray: 'auto' or HOST:PORT of a running cluster (default: start one here)"
    )
    parser.add_argument("--cpus-per-cell", type=float, help="ray: CPUs each cell task declares")
    parser.add_argument("--gpus-per-cell", type=float, help="ray: GPUs each cell task declares")
    parser.add_argument("--no-progress", action="store_true", help="no live overview line")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one config field in every cell, e.g. --set stage1.epochs=5",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ncvqvae.errors import ConfigError
    from ncvqvae.experiments.sweep import (
        SPEC_NAME,
        list_sweeps,
        load_sweep,
        plan_sweep,
        run_sweep,
        with_overrides,
    )

    if args.list:
        for name, description in list_sweeps().items():
            print(f"{name:16s} {description}")
        return 0
    if not args.sweep:
        raise ConfigError(
            "ncvqvae sweep: name a sweep file, a shipped sweep (see --list) or a sweep directory"
        )
    spec = load_sweep(args.sweep)
    spec = with_overrides(
        spec,
        args.overrides,
        name=args.executor,
        workers=args.workers,
        address=args.address,
        cpus_per_cell=args.cpus_per_cell,
        gpus_per_cell=args.gpus_per_cell,
    )
    given = Path(args.sweep)
    if args.out:
        sweep_dir = Path(args.out)
    elif given.is_dir() and (given / SPEC_NAME).is_file():
        sweep_dir = given
    else:
        sweep_dir = Path("sweeps") / spec.name
    plan = plan_sweep(spec, sweep_dir, retry_failed=args.retry_failed)
    if args.dry_run:
        print_plan(plan)
        return 0
    todo = len(plan.to_run())
    executor = spec.executor.name
    print(f"sweep {spec.name}: {len(plan.cells)} cells, {todo} to run ({executor} executor) in {sweep_dir}")
    overview = run_sweep(spec, sweep_dir, retry_failed=args.retry_failed, progress=not args.no_progress)
    print(f"done {overview['done']} / {overview['total']}, failed {overview['failed']}")
    failed = [r for r in plan_sweep(spec, sweep_dir).rows() if r["status"] == "failed"]
    for row in failed:
        print(f"  failed: {row['cell']}: {row['error']}")
    if failed:
        print("  (see FAILED.json in each cell; --retry-failed runs them again)")
    print(f"report: ncvqvae report {sweep_dir}")
    return 1 if failed else 0


def print_plan(plan) -> None:  # noqa: ANN001 - a SweepPlan
    """Print every cell with its status and action, then the counts."""
    rows = plan.rows()
    width = max((len(r["cell"]) for r in rows), default=4)
    print(f"{'cell':<{width}}  {'status':<8}  action")
    for row in rows:
        error = f"  [{row['error'][:100]}]" if row["error"] else ""
        print(f"{row['cell']:<{width}}  {row['status']:<8}  {row['action']}{error}")
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    listing = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    print(f"\n{len(rows)} cells: {listing}; {len(plan.to_run())} would run in {plan.sweep_dir}")
