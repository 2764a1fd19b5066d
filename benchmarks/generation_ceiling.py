"""Is a run's generator limited by its tokenizer or by its prior? (issue 7, docs/reproduction.md)

A class-conditional sample is a token grid decoded by the stage-1 tokenizer, so the evaluator can recognise
its class at best as well as it recognises the tokenizer's *reconstructions* of real series. This script
prints, per run: the evaluator's test accuracy on the real test split, its accuracy on the tokenizer's
reconstructions of that split (the ceiling for any prior on this tokenizer), and what the run's generator
reached (CAS, and the evaluator's accuracy on the class-conditional samples, from ``results.json``). A large
gap between the second and the last two numbers says the prior, not the tokenizer, is what falls short.

Usage:  python benchmarks/generation_ceiling.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import logging

import torch

from ncvqvae.data.prepare import load_prepared
from ncvqvae.evaluation.evaluator import get_evaluator
from ncvqvae.evaluation.fcn import fcn_outputs
from ncvqvae.evaluation.pipeline import EVALUATOR_SEED
from ncvqvae.evaluation.stage1 import frozen_eval
from ncvqvae.stage1 import load_tokenizer
from ncvqvae.training import RunDir

BATCH = 512


@torch.no_grad()
def reconstructions(model: torch.nn.Module, X: torch.Tensor) -> torch.Tensor:
    """The tokenizer's reconstructions (eval mode, no state change) of X (N, C, L)."""
    with frozen_eval(model):
        return torch.cat([model(xb).x_hat for xb in torch.split(X, BATCH)])


def ceiling(run_dir: str) -> dict[str, float | None]:
    cfg = RunDir(run_dir).read_config()
    data = load_prepared(cfg.data, seed=cfg.seed)
    if data.y_test is None:
        raise SystemExit(f"{run_dir}: the dataset has no test labels")
    evaluator, info = get_evaluator(data, cfg.evaluation, device="cpu", seed=EVALUATOR_SEED, progress=False)
    y = data.y_test.numpy()
    on_recon = fcn_outputs(evaluator, reconstructions(load_tokenizer(run_dir), data.X_test)).probs.argmax(1)
    generation = json.loads((RunDir(run_dir).root / "results.json").read_text()).get("generation", {})
    return {
        "evaluator_real": float(info["test_accuracy"]),
        "evaluator_recon": float((on_recon == y).mean()),
        "conditional_accuracy": generation.get("conditional_accuracy"),
        "cas": generation.get("cas"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", help="run directories with a trained stage 1 (and stage 2)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)

    def fmt(v: float | None) -> str:
        return "    -" if v is None else f"{v:.3f}"

    print(f"{'run':60s} {'real':>6s} {'recon':>6s} {'cond':>6s} {'CAS':>6s}")
    for run in args.runs:
        r = ceiling(run)
        print(f"{run:60s} {fmt(r['evaluator_real']):>6s} {fmt(r['evaluator_recon']):>6s} "
              f"{fmt(r['conditional_accuracy']):>6s} {fmt(r['cas']):>6s}", flush=True)


if __name__ == "__main__":
    main()
