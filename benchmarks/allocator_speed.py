"""glibc's default malloc against `reuse_freed_memory` (ncvqvae.allocator), side by side (docs/benchmarks.md).

The allocator is a setting of the whole process, and glibc cannot be put back to its default once told
otherwise, so each measurement is a child process: the parent alternates children with the system's
default (``NCVQVAE_MALLOC=system``) and with freed memory reused, ``--repeats`` times each, keeps each
side's best and prints series/s and the ratio reuse ÷ system. The steps are ``precision_speed.py``'s (the
same random batches of the thesis' shapes), under ``--precision`` (default ``auto``). Usage::

    python benchmarks/allocator_speed.py --threads 2 [--only stage1] [--precision fp32] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from precision_speed import cases, timed  # noqa: E402  (the same steps as the precision table)

# the environment of each setting's children; thp = PyTorch's own switch for transparent huge pages on
# its large CPU blocks (madvise), read once at its first allocation, so only at process start
SETTINGS = {
    "system": {"NCVQVAE_MALLOC": "system"},
    "thp": {"NCVQVAE_MALLOC": "system", "THP_MEM_ALLOC_ENABLE": "1"},
    "reuse": {"NCVQVAE_MALLOC": "reuse"},
}


def all_cases(device: torch.device) -> dict[str, tuple]:
    """``precision_speed.py``'s cases by name, and its FCN training step at Mallat's length (1024)."""
    found = {case[0]: case for case in cases(device)}
    found |= {c[0]: c for c in cases(device, fcn_length=1024) if c[0].startswith("FCN training")}
    return found


def child(name: str, precision: str, seconds: float, threads: int | None) -> None:
    """Time one case in this process (its allocator set by the environment) and print series/s."""
    from ncvqvae.allocator import reuse_freed_memory
    from ncvqvae.training import pick_device

    active = reuse_freed_memory()
    if threads:
        torch.set_num_threads(threads)
    device = pick_device("auto")
    _, _, items, build = all_cases(device)[name]
    print(f"{timed(build(precision), items, device, seconds):.3f} {int(active)}")


def measure(name: str, setting: str, args: argparse.Namespace) -> tuple[float, bool]:
    cmd = [sys.executable, __file__, "--child", name, "--precision", args.precision]
    cmd += ["--seconds", str(args.seconds)] + (["--threads", str(args.threads)] if args.threads else [])
    env = {**os.environ, **SETTINGS[setting]}
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout.split()
    return float(out[-2]), out[-1] == "1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="alternations of the two settings (best kept)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--only", choices=["stage1", "prior", "sampling", "fcn"], help="one group")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--cases", nargs="*", default=[], help="only the cases whose name holds one of these")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.precision, args.seconds, args.threads)
        return
    names = [(n, g) for n, g, _, _ in all_cases(torch.device("cpu")).values()]
    settings = ["system", *(s for s in args.settings if s != "system")]  # the ratios are against system
    threads = args.threads or torch.get_num_threads()
    print(f"precision {args.precision}, {threads} threads, best of {args.repeats}")
    head = " ".join(f"{s:>9s}" for s in settings) + "".join(f" {s + '/sys':>9s}" for s in settings[1:])
    print(f"{'case':38s} {head}  (series/s)")
    for name, group in names:
        if (args.only and group != args.only) or (args.cases and not any(c in name for c in args.cases)):
            continue
        best = {s: 0.0 for s in settings}
        for _ in range(args.repeats):
            for setting in settings:
                speed, active = measure(name, setting, args)
                if setting == "reuse" and not active:
                    sys.exit("reuse_freed_memory() is not in effect here (not glibc?): nothing to compare")
                best[setting] = max(best[setting], speed)
        figures = " ".join(f"{best[s]:9.1f}" for s in settings)
        ratios = "".join(f" {best[s] / best['system']:9.2f}" for s in settings[1:])
        print(f"{name:38s} {figures}{ratios}", flush=True)


if __name__ == "__main__":
    main()
