"""``ncvqvae evaluate --run DIR``: FID, IS, CAS (with intervals) and the figures of a trained run.

``ncvqvae evaluate stage1 --run DIR`` (reconstruction and probes only) lives in evaluate_stage1.py.

Examples::

    ncvqvae evaluate --run runs/ECG5000-vibcreg-warp-s0
    ncvqvae evaluate --run runs/x --n-samples 5000 --cas-epochs 200 --set evaluation.bootstrap=1000

Writes ``DIR/results.json`` (key ``"generation"``; ``"stage1"`` too when it is missing) and the PNG
figures in ``DIR/evaluation/``. Running it again with the same settings reuses the stored numbers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ncvqvae.cli import evaluate_stage1


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="evaluate a run: FID / IS / CAS with intervals and figures (or `evaluate stage1`)",
        description=(
            "Score a trained run's generator the thesis way (SPEC §5): FID and IS from the cached FCN "
            "evaluator with bootstrap 95% intervals, per-class FID, CAS, plus the figures."
        ),
    )
    parser.add_argument("--run", metavar="DIR", help="the run directory (trained stages 1 and 2)")
    parser.add_argument(
        "--n-samples", type=int, help="unconditional samples for FID/IS (default max(n_test, 256))"
    )
    parser.add_argument(
        "--cas-epochs", type=int, help="epochs of the CAS classifier (default: evaluator epochs)"
    )
    parser.add_argument("--no-cas", action="store_true", help="skip the classification accuracy score")
    parser.add_argument("--no-figures", action="store_true", help="write no figures")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cpu, cuda, ...")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override an evaluation field or a stage-2 decoding field of the run's config, e.g. "
        "--set evaluation.bootstrap=1000 or --set stage2.guidance=2",
    )
    parser.set_defaults(func=main, parser=parser)
    what = parser.add_subparsers(dest="what", metavar="WHAT")
    evaluate_stage1.register(what)


def main(args: argparse.Namespace) -> int:
    from ncvqvae.config import resolve_config, to_dict
    from ncvqvae.evaluation.pipeline import FIGURES_DIR, check_evaluation_overrides, evaluate_run
    from ncvqvae.training import RunDir

    if not args.run:
        args.parser.error("--run DIR is required")
    cfg = None
    if args.overrides:
        check_evaluation_overrides(o.split("=", 1)[0].strip() for o in args.overrides)
        cfg = resolve_config(base=to_dict(RunDir(args.run).read_config()), overrides=args.overrides)
    results = evaluate_run(
        args.run,
        cfg=cfg,
        device=args.device,
        n_samples=args.n_samples,
        cas_epochs=args.cas_epochs,
        run_cas=False if args.no_cas else None,
        figures=False if args.no_figures else None,
        progress=not args.no_progress,
    )
    print_generation(results.get("generation", {}))
    root = Path(args.run)
    print(f"results         {root / 'results.json'}")
    if (root / FIGURES_DIR).is_dir():
        print(f"figures         {root / FIGURES_DIR}")
    return 0


def _ci(values: Any) -> str:
    return f" [95% CI {values[0]:.4g}, {values[1]:.4g}]" if values else ""


def print_generation(gen: dict[str, Any]) -> None:
    """Print the headline generation metrics of a ``results.json["generation"]`` entry."""
    if not gen:
        return
    protocol = gen.get("protocol", {})
    print(
        f"FID             {gen['fid']:.4g}{_ci(gen.get('fid_ci95'))}  "
        f"(real {protocol.get('n_real')} vs fake {protocol.get('n_fake_fid')}; real train vs test "
        f"{gen['real_fid_train_test']:.4g})"
    )
    print(
        f"IS              {gen['is_mean']:.4g} ± {gen['is_std']:.3g}{_ci(gen.get('is_ci95'))}  "
        f"(real test set {gen['real_is_mean']:.4g})"
    )
    if gen.get("cfid_mean") is not None:
        print(f"cFID (mean)     {gen['cfid_mean']:.4g}")
    if gen.get("kid") is not None:
        print(f"KID             {gen['kid']:.4g}{_ci(gen.get('kid_ci95'))}")
    prdc = gen.get("prdc") or {}
    if prdc:
        names = ("precision", "recall", "density", "coverage")
        print("PRDC            " + ", ".join(f"{n} {prdc[n]:.3f}" for n in names if n in prdc))
    memo = (gen.get("memorisation") or {}).get("features")
    if memo:
        flag = "FLAGGED: the generator copies its training set" if memo.get("flagged") else "not flagged"
        print(f"memorisation    {memo['fraction']:.3f} of samples nearer to train than 5% of test ({flag})")
    cas = gen.get("cas")
    print(
        f"CAS             {'skipped' if cas is None else f'{cas:.4f}'}  (ceiling = evaluator test accuracy "
        f"{gen['cas_ceiling']:.4f})"
    )
