"""Thesis-budget cells (issue 14): one stage-1 tokenizer, every prior, results kept in the repository.

For each ``DATASET:VARIANT:SEED`` named on the command line, and each prior in ``--priors`` (default: the
token prior, then the full-embedding prior ``codebook``), this runs

    ncvqvae --threads T run --preset thesis --dataset DATASET --method M --aug A --seed SEED
        --set stage2.variant=PRIOR --out runs/thesis-budget/PRIOR/DATASET/VARIANT/seedSEED

Stage 1 is trained once per cell: the second prior's run directory gets the first one's finished
``stage1/`` as hard links (and its ``config.yaml``), so its pipeline skips stage 1 and trains only the prior
(the stages still compare the configs and refuse a different stage-1 config). The stage-1 wall time is
therefore in the first prior's ``timings.json`` only.

Each finished cell's results (``results.json``, ``config.yaml``, ``timings.json``, ``DONE.json``,
``report.md``, the stages' ``metrics.jsonl``; never checkpoints or samples) are copied to
``benchmarks/results/thesis-budget/PRIOR/DATASET/VARIANT/seedSEED/`` and, with ``--commit``, committed at
once, so that a later session adds cells instead of redoing them. A cell whose results are already there
is skipped. ``ncvqvae report benchmarks/results/thesis-budget`` reads the kept cells.

Usage (two queues side by side on a 2-core machine, one thread and one core each):

    taskset -c 0 python benchmarks/thesis_budget.py --threads 1 --commit ECG5000:baseline:0
    taskset -c 1 python benchmarks/thesis_budget.py --threads 1 --commit ECG5000:bt_gauss:0
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ncvqvae.experiments.variants import Variant

ROOT = Path(__file__).resolve().parent.parent
KEPT = ROOT / "benchmarks" / "results" / "thesis-budget"
# What a finished cell keeps in the repository: numbers, config, timings and logs, nothing large.
KEPT_FILES = (
    "results.json",
    "config.yaml",
    "timings.json",
    "machine.json",
    "DONE.json",
    "report.md",
    "stage1/metrics.jsonl",
    "stage2/metrics.jsonl",
    "stage2/source.json",
)


def cell_path(prior: str, dataset: str, variant: str, seed: int) -> Path:
    """The cell's place below a runs or results root: ``PRIOR/DATASET/VARIANT/seedSEED``."""
    return Path(prior) / dataset / variant / f"seed{seed}"


def link_stage1(src: Path, dst: Path) -> None:
    """Give ``dst`` the finished stage 1 of ``src`` as hard links (nothing of ``dst`` is overwritten)."""
    if (dst / "stage1").exists() or not (src / "stage1" / "checkpoints" / "final.pt").is_file():
        return
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "stage1", dst / "stage1", copy_function=os.link)
    if not (dst / "config.yaml").exists():
        shutil.copy2(src / "config.yaml", dst / "config.yaml")


def keep(run_dir: Path, kept_dir: Path) -> list[Path]:
    """Copy the cell's small result files into ``kept_dir``; returns the copies."""
    copies = []
    for name in KEPT_FILES:
        src = run_dir / name
        if src.is_file():
            dst = kept_dir / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            copies.append(dst)
    return copies


def commit(paths: list[Path], message: str) -> None:
    """Commit exactly ``paths`` (the index is shared with other work: pathspec commit, retried on a lock)."""
    rel = [str(p.relative_to(ROOT)) for p in paths]
    for attempt in range(20):
        add = subprocess.run(["git", "add", "--", *rel], cwd=ROOT, capture_output=True, text=True)
        done = add.returncode == 0 and (
            subprocess.run(
                ["git", "commit", "-q", "-m", message, "--", *rel], cwd=ROOT, capture_output=True, text=True
            ).returncode
            == 0
        )
        if done:
            return
        time.sleep(5 + attempt)
    print(f"could not commit {rel}; the files are in place", file=sys.stderr)


def run_cell(
    spec: str, priors: list[str], threads: int, runs: Path, kept: Path, do_commit: bool, sets: list[str]
) -> None:
    """Run one ``DATASET:VARIANT:SEED`` with each prior in turn, sharing its stage 1."""
    dataset, variant_name, seed_text = spec.split(":")
    seed = int(seed_text)
    variant = Variant.parse(variant_name, source=spec)
    first: Path | None = None
    for prior in priors:
        where = cell_path(prior, dataset, variant.name, seed)
        run_dir, kept_dir = runs / where, kept / where
        if (kept_dir / "DONE.json").is_file():
            print(f"{where}: kept already, skipped", flush=True)
            first = first or run_dir
            continue
        if first is not None:
            link_stage1(first, run_dir)
        cmd = [sys.executable, "-m", "ncvqvae", "--threads", str(threads), "run", "--preset", "thesis"]
        cmd += ["--dataset", dataset, "--method", variant.method, "--seed", str(seed)]
        if variant.augmentations:
            cmd += ["--aug", ",".join(variant.augmentations)]
        cmd += ["--set", f"stage2.variant={prior}", "--out", str(run_dir), "--no-progress"]
        cmd += [arg for kv in sets for arg in ("--set", kv)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        start = time.time()
        print(f"{where}: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
        print(f"{where}: finished in {time.time() - start:.0f} s", flush=True)
        copies = keep(run_dir, kept_dir)
        if do_commit:
            commit(copies, f"Thesis-budget cell {dataset} {variant.name} seed {seed}, {prior} prior: results")
        first = first or run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cells", nargs="+", help="DATASET:VARIANT:SEED, e.g. ECG5000:vibcreg_gauss:0")
    parser.add_argument("--priors", default="token,codebook", help="comma-separated stage2.variant values")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "thesis-budget")
    parser.add_argument("--kept", type=Path, default=KEPT, help="where finished cells' results are kept")
    parser.add_argument("--commit", action="store_true", help="commit each finished cell's results")
    parser.add_argument("--set", action="append", default=[], help="extra override (to try the script out)")
    args = parser.parse_args()
    for spec in args.cells:
        run_cell(spec, args.priors.split(","), args.threads, args.runs, args.kept, args.commit, args.set)


if __name__ == "__main__":
    main()
