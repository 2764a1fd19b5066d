#!/usr/bin/env bash
# One prepared GPU run of the reproduction (issue 7; docs/reproduction.md): the slices of the thesis grid
# that do not fit on a small CPU, sized for < 10 minutes on one H100/H200.
#
#   benchmarks/gpu_reproduce.sh pack   (here, with the datasets fetched: `ncvqvae data fetch Mallat FordA
#                                       FordB ElectricDevices`) packs their UCR files into runs/ucr-pack.tgz
#                                       (~36 MB; runs/ is git-ignored, so name it in the device's carry)
#   benchmarks/gpu_reproduce.sh        (on the GPU machine) installs what is missing, unpacks the data, runs
#                                       the sweeps one after the other, prints their reports, and leaves
#                                       under ${OUT:-./out}: log.txt, environment.txt, results.tgz (each
#                                       sweep's report, tidy results, status and run directories without
#                                       checkpoints, for `ncvqvae report` elsewhere) and pytest.log.
#
# The sweeps (SWEEPS, in order):
#   reproduction-gpu-mallat  Mallat × the 7 variants × seed 0 at the thesis' whole budget (1000 + 1000
#                            epochs are 1000 + 1000 steps there; 1000-epoch evaluator and CAS classifier)
#   reproduction-gpu         FordA, FordB, ElectricDevices × baseline, bt_warp, vibcreg_warp × seed 0,
#                            the first 500 + 500 steps of the thesis schedule
# All sweeps together are stopped TIME_LIMIT seconds after the first starts (Ctrl-C, which they survive),
# so that the reports of whatever finished are always written; rerunning continues where they stopped.
# Time left before TOTAL_LIMIT seconds from the script's start runs the test suite there (device "auto"
# then means the GPU: a check of every CUDA path the tests reach).
#
# Environment:
#   OUT         where the results go (default ./out)
#   SWEEPS      sweep files or shipped names, in order (default: the two above)
#   RUNS_ROOT   the sweeps' directories are RUNS_ROOT/<sweep name> (default runs)
#   TIME_LIMIT  seconds for all sweeps together before they are stopped (default 480)
#   TOTAL_LIMIT seconds for the whole script; what the sweeps leave runs the tests (default 570)
#   GPU_TESTS   1 (default): run the test suite in the time left; 0: do not
#   DEVICE      cuda (default) or cpu; TINY=1 shrinks every budget to a few steps (to try the script on a CPU)
#   PY          the Python to use (default: .venv/bin/python when present, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-./out}"
SWEEPS="${SWEEPS:-reproduction-gpu-mallat reproduction-gpu}"
RUNS_ROOT="${RUNS_ROOT:-runs}"
TIME_LIMIT="${TIME_LIMIT:-480}"
TOTAL_LIMIT="${TOTAL_LIMIT:-570}"
DEVICE="${DEVICE:-cuda}"
PACK="runs/ucr-pack.tgz"
DATASETS=(Mallat FordA FordB ElectricDevices)
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
CLI="import sys; from ncvqvae.cli import main; sys.exit(main())"

if [[ "${1:-}" == "pack" ]]; then
  cache="${NCVQVAE_HOME:-$HOME/.cache/ncvqvae}/datasets"
  mkdir -p runs
  files=()
  for d in "${DATASETS[@]}"; do files+=("$d/${d}_TRAIN.tsv" "$d/${d}_TEST.tsv"); done
  tar -czf "$PACK" -C "$cache" "${files[@]}"
  ls -la "$PACK"
  exit 0
fi

start_all=$(date +%s)
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1  # everything printed is also kept under $OUT

# --- install what is missing (the device machine may have no network): the package runs from src/ when its
# dependencies are there already (the GPU image has them all), so nothing needs building
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install --quiet torch
fi
if ! "$PY" -c "import ncvqvae" 2>/dev/null; then
  "$PY" -m pip install --quiet --no-build-isolation -e . \
    || "$PY" -m pip install --quiet --no-deps --no-build-isolation -e .
fi
"$PY" - <<'EOF' | tee "$OUT/environment.txt"
import importlib.metadata as md
import os

import torch

print("torch", torch.__version__, "| cuda", torch.cuda.is_available(),
      "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU", "|", os.cpu_count(), "CPUs")
for name in ("numpy", "scipy", "scikit-learn", "pandas", "einops", "matplotlib"):
    print(name, md.version(name))
EOF

# --- the data: an archive root <root>/<Name>/<Name>_TRAIN.tsv from the pack, unless one is given
if [[ -z "${NCVQVAE_DATA_DIR:-}" ]]; then
  if [[ -f "$PACK" ]]; then
    export NCVQVAE_DATA_DIR="runs/ucr-archive"
    mkdir -p "$NCVQVAE_DATA_DIR"
    tar -xzf "$PACK" -C "$NCVQVAE_DATA_DIR"
  else
    echo "no $PACK and no NCVQVAE_DATA_DIR: the datasets must already be in the ncvqvae cache" >&2
  fi
fi

# --- the sweeps (resumable), one after the other, all stopped TIME_LIMIT seconds after the first starts
set_args=(--set "device=$DEVICE")
if [[ "${TINY:-0}" == "1" ]]; then
  for kv in stage1.max_steps=2 stage1.projector_dim=64 stage1.iternorm_groups=8 stage2.max_steps=2 \
            stage2.width=32 evaluation.evaluator_epochs=1 evaluation.cas_epochs=1 evaluation.n_samples=64 \
            evaluation.bootstrap=0 evaluation.cas_min_samples=64; do
    set_args+=(--set "$kv")
  done
fi
sweep_deadline=$(( $(date +%s) + TIME_LIMIT ))
run_dirs=()
for sweep in $SWEEPS; do
  name=$(basename "$sweep" .yaml)
  runs="$RUNS_ROOT/$name"
  run_dirs+=("$runs")
  left=$(( sweep_deadline - $(date +%s) ))
  if (( left < 10 )); then echo "no time left for sweep $name"; continue; fi
  echo "=== sweep $name: at most $left s"
  status=0
  timeout --signal=INT --kill-after=30 "$left" \
    "$PY" -c "$CLI" sweep "$sweep" --out "$runs" --no-progress --retry-failed "${set_args[@]}" \
    2>&1 | grep -v "ncvqvae.data" || status=$?
  echo "sweep $name exit status: $status (124/130 = stopped by TIME_LIMIT; rerun to continue)"
done

# --- the reports of whatever finished, printed, and packed with the run directories (no checkpoints)
existing=()
for runs in "${run_dirs[@]}"; do
  [[ -d "$runs" ]] || continue
  existing+=("$runs")
  if "$PY" -c "$CLI" report "$runs" --no-figures --title "Reproduction on GPU ($(basename "$runs"))" >/dev/null; then
    cat "$runs/report.md"
  else
    echo "no report for $runs: no cell got as far as writing its run directory" >&2
  fi
  find "$runs" -name FAILED.json -exec sh -c 'echo "== $1"; head -c 2000 "$1"; echo' _ {} \;
  # what each step of each cell cost (wall seconds), to size the next slice
  for t in "$runs"/*/*/seed*/timings.json; do
    [[ -f "$t" ]] && echo "${t#"$RUNS_ROOT"/} $(tr -d ' \n' < "$t")"
  done
done
if (( ${#existing[@]} )); then
  tar -czf "$OUT/results.tgz" --exclude=checkpoints --exclude='*.lock' "${existing[@]}"
fi

# --- time left: the test suite on this machine (device "auto" picks the GPU), a check of every CUDA path
left=$(( start_all + TOTAL_LIMIT - $(date +%s) ))
if [[ "${GPU_TESTS:-1}" == "1" ]] && (( left > 60 )); then
  echo "=== test suite on this machine, at most $(( left - 20 )) s (log: pytest.log)"
  timeout --kill-after=5 $(( left - 20 )) "$PY" -m pytest -q -p no:cacheprovider tests > "$OUT/pytest.log" 2>&1 \
    || echo "pytest exit status: $? (124 = out of time)"
  tail -n 15 "$OUT/pytest.log"
fi
echo "total: $(( $(date +%s) - start_all )) s; results in $OUT"
