#!/usr/bin/env bash
# One prepared GPU run of the reproduction (issue 7; docs/reproduction.md): the heavy datasets that do not
# fit on a small CPU, as a slice of the thesis grid sized for < 10 minutes on one H100.
#
#   benchmarks/gpu_reproduce.sh pack   (here, with the datasets fetched: `ncvqvae data fetch FordA FordB
#                                       ElectricDevices`) packs the UCR files into runs/ucr-pack.tgz
#                                       (~25 MB; runs/ is git-ignored, so name it in the device's carry)
#   benchmarks/gpu_reproduce.sh        (on the GPU machine) installs what is missing, unpacks the data,
#                                       runs the sweep `reproduction-gpu` (FordA, FordB, ElectricDevices ×
#                                       baseline, bt_warp, vibcreg_warp × seed 0; 500 + 500 steps; see the
#                                       sweep file for the estimate), prints the report and copies it, the
#                                       tidy results table and the sweep's status under ${OUT:-./out}.
#
# The sweep is stopped after TIME_LIMIT seconds (default 540) so that the report of whatever finished is
# always written; rerunning continues where it stopped (finished cells are kept, interrupted ones resume).
#
# Environment:
#   OUT         where the results go (default ./out)
#   SWEEP       sweep file or shipped name (default reproduction-gpu)
#   RUNS        sweep directory (default runs/reproduction-gpu)
#   TIME_LIMIT  seconds for the sweep before it is stopped (default 540)
#   DEVICE      cuda (default) or cpu; TINY=1 shrinks every budget to a few steps (to try the script on a CPU)
#   PY          the Python to use (default: .venv/bin/python when present, else python3)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT="${OUT:-./out}"
SWEEP="${SWEEP:-reproduction-gpu}"
RUNS="${RUNS:-runs/reproduction-gpu}"
TIME_LIMIT="${TIME_LIMIT:-540}"
DEVICE="${DEVICE:-cuda}"
PACK="runs/ucr-pack.tgz"
DATASETS=(FordA FordB ElectricDevices)
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

# --- install what is missing (the device machine may have no network: everything is tried offline first)
if ! "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -m pip install --quiet torch
fi
if ! "$PY" -c "import ncvqvae" 2>/dev/null; then
  "$PY" -m pip install --quiet --no-build-isolation -e . \
    || "$PY" -m pip install --quiet --no-deps --no-build-isolation -e .
fi
"$PY" - <<'EOF'
import torch
print("torch", torch.__version__, "| cuda", torch.cuda.is_available(),
      "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")
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

# --- the sweep (resumable), stopped after TIME_LIMIT seconds
set_args=(--set "device=$DEVICE")
if [[ "${TINY:-0}" == "1" ]]; then
  for kv in stage1.max_steps=2 stage1.projector_dim=64 stage1.iternorm_groups=8 stage2.max_steps=2 \
            stage2.width=32 evaluation.evaluator_epochs=1 evaluation.cas_epochs=1 evaluation.n_samples=64 \
            evaluation.bootstrap=0 evaluation.cas_min_samples=64; do
    set_args+=(--set "$kv")
  done
fi
status=0
timeout --signal=INT --kill-after=30 "$TIME_LIMIT" \
  "$PY" -c "$CLI" sweep "$SWEEP" --out "$RUNS" --no-progress --retry-failed "${set_args[@]}" \
  2>&1 | tee "$OUT/sweep.log" | grep -v "ncvqvae.data" || status=$?
echo "sweep exit status: $status (124/130 = stopped by TIME_LIMIT; rerun to continue)"

# --- the report of whatever finished, printed and copied under $OUT
if "$PY" -c "$CLI" report "$RUNS" --no-figures --title "Reproduction on GPU ($SWEEP)" >/dev/null; then
  for f in report.md results.csv status.json; do
    if [[ -f "$RUNS/$f" ]]; then cp "$RUNS/$f" "$OUT/$f"; fi
  done
  cat "$OUT/report.md"
else
  echo "no report: no cell got as far as writing its run directory (see $OUT/sweep.log)" >&2
fi
find "$RUNS" -name FAILED.json -exec sh -c 'echo "== $1"; head -c 2000 "$1"; echo' _ {} \; | tee "$OUT/failures.txt"
echo "total: $(( $(date +%s) - start_all )) s; results in $OUT"
