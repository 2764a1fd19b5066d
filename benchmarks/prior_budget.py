"""Where is the prior's learning slow? Learning curves of stage-2 settings on a finished tokenizer (issue 15).

Trains a MaskGIT prior on the tokenizer of a finished stage-1 run and, at each step count of ``--steps``,
scores it with the run's evaluation protocol (FID, IS, CAS, the evaluator's accuracy on the conditional
samples), printing one row per point and appending it as a JSON line to ``OUT/curve.jsonl``. The prior
keeps one schedule (its ``stage2.epochs``; ``max_steps`` only cuts it short), so the points are one run
seen at several steps. Each setting gets its own run directory under ``OUT`` (the tokenizer hard-linked
in), so settings can be compared side by side at equal prior steps or equal seconds::

    python benchmarks/prior_budget.py --stage1 runs/tp --out runs/curve --name codebook \
        --steps 100,200,400 --set stage2.variant=codebook --set stage2.epochs=100

Give each process its share of the cores when several run at once (``--threads``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path

import torch

from ncvqvae.config import replace, resolve_config, to_dict
from ncvqvae.evaluation.pipeline import evaluate_run
from ncvqvae.stage2 import train_stage2
from ncvqvae.training import RunDir


def link_stage1(stage1_run: Path, run_dir: Path) -> None:
    """Give ``run_dir`` the stage 1 of ``stage1_run`` (hard links: no copy, no second training)."""
    if (run_dir / "stage1").exists():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(stage1_run / "stage1", run_dir / "stage1", copy_function=os.link)
    shutil.copy(stage1_run / "config.yaml", run_dir / "config.yaml")
    results = json.loads((stage1_run / "results.json").read_text())
    (run_dir / "results.json").write_text(json.dumps({"stage1": results["stage1"]}))


def last_accuracy(run_dir: Path) -> float | None:
    """Masked-token accuracy of the prior's last epoch record (``stage2/metrics.jsonl``)."""
    records = [json.loads(line) for line in (run_dir / "stage2" / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if r.get("event") == "epoch"]
    return epochs[-1]["accuracy"] if epochs else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage1", type=Path, required=True, help="a run directory with a finished stage 1")
    parser.add_argument("--out", type=Path, required=True, help="folder of the settings' run directories")
    parser.add_argument("--name", required=True, help="this setting's run directory under --out")
    parser.add_argument("--steps", default="100,200,400", help="prior steps at which to score, ascending")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="stage-2 overrides")
    parser.add_argument("--no-cas", action="store_true", help="skip CAS (the most expensive metric)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of this process")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    run_dir = args.out / args.name
    link_stage1(args.stage1, run_dir)
    base = RunDir(args.stage1).read_config()
    cfg = resolve_config(base={**to_dict(base), "progress": False}, overrides=args.set)
    trained = 0.0
    for steps in [int(s) for s in args.steps.split(",")]:
        cfg = replace(cfg, **{"stage2.max_steps": steps})
        start = time.perf_counter()
        train_stage2(cfg, run_dir)
        trained += time.perf_counter() - start
        start = time.perf_counter()
        results = evaluate_run(run_dir, cfg=cfg, run_cas=not args.no_cas, figures=False, progress=False)
        gen = results["generation"]
        row = {
            "name": args.name,
            "overrides": args.set,
            "steps": steps,
            "train_s": round(trained, 1),
            "eval_s": round(time.perf_counter() - start, 1),
            "prior_accuracy": last_accuracy(run_dir),
            "fid": gen["fid"],
            "is": gen["is_mean"],
            "cas": gen["cas"],
            "conditional_accuracy": gen["conditional_accuracy"],
            "evaluator_accuracy": gen["cas_ceiling"],
        }
        with (args.out / "curve.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        cas = "-" if row["cas"] is None else f"{row['cas']:.3f}"
        print(
            f"{args.name:24s} steps {steps:5d}  train {row['train_s']:7.1f}s  "
            f"acc {row['prior_accuracy']:.3f}  FID {row['fid']:7.2f}  IS {row['is']:.3f}  CAS {cas}  "
            f"cond-acc {row['conditional_accuracy']:.3f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
