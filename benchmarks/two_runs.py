"""Two ncvqvae processes on one machine: how much do they slow each other? (issue 13, docs/benchmarks.md)

Times prior training steps (the stage-2 network and loss, bf16 autocast where the CPU has it) in one
process alone, then in two processes started at once, under the thread settings a user can choose:

- ``alone``: one process, all cores (the reference figure);
- ``both, spinning``: two processes, each with all cores, OpenMP threads busy-waiting between parallel
  regions (``OMP_WAIT_POLICY=ACTIVE``, what a plain ``python`` gets from libgomp's spin count);
- ``both, passive``: the same with ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep; slower alone);
- ``both, shared``: two processes with ``cores / 2`` threads each (``ncvqvae --threads``, and what a
  sweep's worker processes get).

A process's throughput is steps/s; "slowdown" is alone ÷ (per-process throughput), so the core share of
two processes on a fully used machine is 2.0. Usage: ``python benchmarks/two_runs.py [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

WORKER = r"""
import json, sys, time, torch
from ncvqvae.maskgit import masked_token_loss
from ncvqvae.models.prior import BidirectionalTransformer
from ncvqvae.precision import autocast
seconds, threads = float(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)
prior = BidirectionalTransformer(40, 32, 4, variant="codebook", width=128)
opt = torch.optim.AdamW(prior.parameters(), fused=True)
tokens, classes = torch.randint(0, 32, (128, 40)), torch.randint(0, 5, (128,))
mask = torch.rand(128, 40) < 0.5
def step():
    with autocast("auto", "cpu"):
        loss, _ = masked_token_loss(prior(tokens, classes, mask), tokens, mask)
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(3):
    step()
start, n = time.perf_counter(), 0
while time.perf_counter() - start < seconds:
    step(); n += 1
print(json.dumps({"steps_per_s": n / (time.perf_counter() - start)}))
"""


def launch(seconds: float, threads: int, wait_policy: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_WAIT_POLICY": wait_policy, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(seconds), str(threads)], env=env, stdout=subprocess.PIPE, text=True
    )


def measure(n_processes: int, seconds: float, threads: int, wait_policy: str) -> list[float]:
    procs = [launch(seconds, threads, wait_policy) for _ in range(n_processes)]
    return [json.loads(p.communicate()[0])["steps_per_s"] for p in procs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per process")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    half = max(1, cores // 2)
    (alone,) = measure(1, args.seconds, cores, "ACTIVE")
    (alone_passive,) = measure(1, args.seconds, cores, "PASSIVE")
    print(f"{cores} cores; prior training steps (batch 128, width 128) per second and process")
    print(f"{'setting':34s} {'steps/s':>8s} {'slowdown':>9s}")
    print(f"{'alone, spinning':34s} {alone:8.2f} {1.0:9.2f}")
    print(f"{'alone, passive':34s} {alone_passive:8.2f} {alone / alone_passive:9.2f}")
    for label, threads, policy in [
        (f"both, {cores} threads each, spinning", cores, "ACTIVE"),
        (f"both, {cores} threads each, passive", cores, "PASSIVE"),
        (f"both, {half} thread(s) each, passive", half, "PASSIVE"),
    ]:
        rates = measure(2, args.seconds, threads, policy)
        mean = sum(rates) / len(rates)
        print(f"{label:34s} {mean:8.2f} {alone / mean:9.2f}")


if __name__ == "__main__":
    main()
