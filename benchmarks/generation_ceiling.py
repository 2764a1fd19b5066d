"""Is a run's generator limited by its tokenizer or by its prior? (issue 7, docs/reproduction.md)

A class-conditional sample is a token grid decoded by the stage-1 tokenizer, so the evaluator can recognise
its class at best as well as it recognises the tokenizer's *reconstructions* of real series. This script
prints, per run: the evaluator's test accuracy on the real test split, its accuracy on the tokenizer's
reconstructions of that split (the ceiling for any prior on this tokenizer), and what the run's generator
reached (the evaluator's accuracy on its class-conditional samples, and CAS, from ``results.json``). A large
gap between the second and the last two numbers says the prior, not the tokenizer, is what falls short.
Likewise the FID and IS of the reconstructions against the real test split (the protocol's reference set,
STFT → ISTFT) beside the run's FID and IS: the best a generator on this tokenizer can hope for.

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
from ncvqvae.evaluation.metrics import fid, inception_score
from ncvqvae.evaluation.pipeline import EVALUATOR_SEED, real_reference_set
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
    recon = fcn_outputs(evaluator, reconstructions(load_tokenizer(run_dir), data.X_test))
    real = fcn_outputs(evaluator, real_reference_set(data.X_test, n_fft=cfg.stage1.n_fft))
    generation = json.loads((RunDir(run_dir).root / "results.json").read_text()).get("generation", {})
    return {
        "evaluator_real": float(info["test_accuracy"]),
        "evaluator_recon": float((recon.probs.argmax(1) == y).mean()),
        "conditional_accuracy": generation.get("conditional_accuracy"),
        "cas": generation.get("cas"),
        "fid_recon": fid(real.features, recon.features),
        "fid": generation.get("fid"),
        "is_recon": inception_score(recon.probs, min(cfg.evaluation.is_splits, len(recon.probs)))[0],
        "is": generation.get("is_mean"),
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
        return "-" if v is None else f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"

    print("evaluator accuracy on the real test split / on its reconstructions / on the conditional samples;")
    print("CAS; FID and IS of the reconstructions and of the run's unconditional samples")
    columns = ("evaluator_real", "evaluator_recon", "conditional_accuracy", "cas", "fid_recon", "fid",
               "is_recon", "is")
    names = ("real", "recon", "cond", "CAS", "FIDrec", "FID", "ISrec", "IS")
    print(f"{'run':56s}" + "".join(f"{n:>8s}" for n in names))
    for run in args.runs:
        r = ceiling(run)
        print(f"{run:56s}" + "".join(f"{fmt(r[c]):>8s}" for c in columns), flush=True)


if __name__ == "__main__":
    main()
