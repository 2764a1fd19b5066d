#!/usr/bin/env bash
# Reproduction of the thesis tables on a small CPU machine (issue 7; docs/reproduction.md).
#
# Three phases over one sweep directory (the layout of `ncvqvae sweep`: <dir>/<dataset>/<variant>/seed<k>):
#   stage1    stage 1 (+ its evaluation: reconstruction, KNN/SVM probes) of every cell of the sweep, for the
#             datasets named in DATASETS (default: all of the sweep's). Cheap enough for all 6 × 7 cells.
#             Several `stage1` drivers may run at once on one directory (a cell being trained is skipped).
#   full      `ncvqvae sweep` on the sweep's cells of DATASETS: finished stage-1 runs are reused, then stage 2
#             and the generation metrics (FID, IS, CAS with the cached FCN evaluator).
#   reuse     hard-link finished stage-1 runs of other sweep directories (STAGE1_FROM) into OUTDIR, for a
#             sweep whose cells have the same stage-1 config (reproduction-cpu-gen: the seed-0 cells of
#             reproduction-cpu and reproduction-cpu-ford), so that `full` trains only stage 2 there.
#   report    `ncvqvae report` over the sweep directory (tables beside the thesis' numbers).
#   docs      the same report, spliced into docs/reproduction.md between its GENERATED markers.
# Everything resumes: run a phase again after an interruption and it continues where it stopped.
#
# Usage:  benchmarks/reproduce_cpu.sh stage1|full|reuse|report|docs
# Environment:
#   SWEEP     sweep file or shipped name (default: reproduction-cpu)
#   OUTDIR    sweep directory (default: runs/reproduction-cpu; runs/ is git-ignored)
#   OUTDIRS   docs: several sweep directories reported together (default: OUTDIR), e.g.
#             "runs/reproduction-cpu runs/reproduction-cpu-ford runs/reproduction-cpu-gen"; a cell present in
#             several is taken from the last
#   DATASETS  space-separated subset of the sweep's datasets, e.g. "gen-twopatterns ECG5000" (default: all)
#   VARIANTS  space-separated subset of the sweep's variants, e.g. "baseline bt_warp" (default: all)
#   SEEDS     full: space-separated subset of the sweep's seeds, e.g. "0" (default: all)
#   STAGE1_FROM  reuse: the sweep directories to take stage-1 runs from (first match wins), e.g.
#             "runs/reproduction-cpu runs/reproduction-cpu-ford"
#   PY        the Python with ncvqvae installed (default: .venv/bin/python, else python3)
#   SET       extra --set overrides, space-separated (e.g. "stage1.max_steps=2" to try the script out)
#   THREADS   torch threads per process (default 1: on a shared 2-core machine one thread per process is
#             several times faster than two contending ones)
set -euo pipefail
cd "$(dirname "$0")/.."

PHASE="${1:-stage1}"
SWEEP="${SWEEP:-reproduction-cpu}"
OUTDIR="${OUTDIR:-runs/reproduction-cpu}"
DATASETS="${DATASETS:-}"
VARIANTS="${VARIANTS:-}"
SEEDS="${SEEDS:-}"
SET="${SET:-}"
THREADS="${THREADS:-1}"
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
CLI="import sys; from ncvqvae.cli import main; sys.exit(main())"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"

set_args=()
for kv in $SET; do set_args+=(--set "$kv"); done

case "$PHASE" in
  stage1)
    # Stage 1 of each cell with exactly the config the sweep would give it, so `full` reuses the runs.
    SWEEP="$SWEEP" OUTDIR="$OUTDIR" DATASETS="$DATASETS" SET="$SET" "$PY" - <<'EOF'
import logging, os, time
from filelock import Timeout
from ncvqvae.experiments.sweep import load_sweep, with_overrides
from ncvqvae.home import file_lock
from ncvqvae.stage1 import train_stage1

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
spec = load_sweep(os.environ["SWEEP"])
spec = with_overrides(spec, os.environ["SET"].split())
wanted = {d.lower() for d in os.environ["DATASETS"].split()}
for cell in spec.cells():
    if wanted and cell.dataset.lower() not in wanted:
        continue
    run_dir = cell.run_dir(os.environ["OUTDIR"])
    start = time.perf_counter()
    try:  # several drivers may share a sweep directory: a cell another one is training is skipped
        with file_lock(run_dir / "stage1-driver", timeout=0):
            train_stage1(spec.cell_config(cell), run_dir)
    except Timeout:
        print(f"stage1 {cell.key}: busy in another process, skipped", flush=True)
        continue
    print(f"stage1 {cell.key}: {time.perf_counter() - start:.0f} s", flush=True)
EOF
    ;;
  full)
    # Write a sweep file restricted to DATASETS next to the runs, then run it (resumable).
    spec_file="$OUTDIR/sweep-$(echo "${DATASETS:-all}-${VARIANTS:-all}-${SEEDS:-all}" | tr ' ' '_').yaml"
    mkdir -p "$OUTDIR"
    SWEEP="$SWEEP" DATASETS="$DATASETS" VARIANTS="$VARIANTS" SEEDS="$SEEDS" SPEC_FILE="$spec_file" \
      "$PY" - <<'EOF'
import os, yaml
from ncvqvae.experiments.sweep import load_sweep
spec = load_sweep(os.environ["SWEEP"]).to_dict()
wanted = {d.lower() for d in os.environ["DATASETS"].split()}
if wanted:
    spec["datasets"] = [d for d in spec["datasets"] if d.lower() in wanted]
    spec["dataset_overrides"] = {d: o for d, o in spec["dataset_overrides"].items() if d in spec["datasets"]}
variants = os.environ["VARIANTS"].split()
if variants:
    spec["variants"] = [v for v in spec["variants"] if v in variants]
seeds = [int(s) for s in os.environ["SEEDS"].split()]
if seeds:
    spec["seeds"] = [s for s in spec["seeds"] if s in seeds]
with open(os.environ["SPEC_FILE"], "w", encoding="utf-8") as fh:
    yaml.safe_dump(spec, fh, sort_keys=False)
EOF
    "$PY" -c "$CLI" sweep "$spec_file" --out "$OUTDIR" --no-progress "${set_args[@]}"
    ;;
  reuse)
    # Each cell of SWEEP gets stage1/ (hard links), config.yaml and the stage-1 part of results.json of
    # the same cell in the first STAGE1_FROM directory that has it finished. Nothing is overwritten; the
    # stages check the configs when `full` runs (a different stage-1 config is refused, naming the field).
    SWEEP="$SWEEP" OUTDIR="$OUTDIR" STAGE1_FROM="${STAGE1_FROM:?set STAGE1_FROM}" "$PY" - <<'EOF'
import json, os, shutil
from ncvqvae.experiments.sweep import load_sweep
spec = load_sweep(os.environ["SWEEP"])
linked = 0
for cell in spec.cells():
    dst = cell.run_dir(os.environ["OUTDIR"])
    sources = [cell.run_dir(d) for d in os.environ["STAGE1_FROM"].split()]
    src = next((s for s in sources if (s / "stage1/checkpoints/final.pt").is_file()), None)
    if src is None or (dst / "stage1").exists():
        continue
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "stage1", dst / "stage1", copy_function=os.link)
    shutil.copy2(src / "config.yaml", dst / "config.yaml")
    results = json.loads((src / "results.json").read_text(encoding="utf-8"))
    (dst / "results.json").write_text(json.dumps({"stage1": results["stage1"]}, indent=2), encoding="utf-8")
    linked += 1
print(f"{linked} stage-1 runs linked into {os.environ['OUTDIR']}")
EOF
    ;;
  report)
    "$PY" -c "$CLI" report "$OUTDIR" --no-figures --title "Reproduction on CPU ($SWEEP)"
    ;;
  docs)
    # The report's tables, spliced into docs/reproduction.md between its GENERATED markers. The runs of
    # every sweep directory in OUTDIRS (default: OUTDIR) are reported together: hard-linked into one
    # temporary folder, since a report covers one folder of run directories. A run directory of a later
    # sweep directory replaces the same cell of an earlier one (e.g. reproduction-cpu-gen's seed-0 cells,
    # which hold the stage-1 runs of reproduction-cpu plus a stage 2 and the generation metrics).
    merged="$(mktemp -d runs/.report-XXXXXX)"
    for d in ${OUTDIRS:-$OUTDIR}; do
      [[ -d "$d" ]] || continue
      while IFS= read -r cfg; do
        rel="${cfg#"$d"/}"; rel="$(dirname "$rel")"
        rm -rf "${merged:?}/$rel"; mkdir -p "$merged/$(dirname "$rel")"
        cp -al "$d/$rel" "$merged/$rel"
      done < <(find "$d" -mindepth 4 -maxdepth 4 -name config.yaml)
    done
    "$PY" -c "$CLI" report "$merged" --no-figures --title "Reproduction on CPU" >/dev/null
    first="$(echo ${OUTDIRS:-$OUTDIR} | cut -d' ' -f1)"
    cp "$merged/report.md" "$merged/results.csv" "$first/"  # kept beside the runs
    REPORT="$merged/report.md" DOC=docs/reproduction.md "$PY" - <<'EOF'
import os, re
from pathlib import Path
doc, report = Path(os.environ["DOC"]), Path(os.environ["REPORT"]).read_text(encoding="utf-8")
body = re.sub(r"^# .*\n", "", report, count=1).strip()
body = re.sub(r"^## ", "### ", body, flags=re.M)  # the report's sections sit under a section of the page
begin, end = "<!-- BEGIN GENERATED by benchmarks/reproduce_cpu.sh docs -->", "<!-- END GENERATED -->"
text = doc.read_text(encoding="utf-8")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
doc.write_text(f"{head}{begin}\n\n{body}\n\n{end}{tail}", encoding="utf-8")
print(f"{doc}: generated section updated")
EOF
    rm -rf "$merged"
    ;;
  *)
    echo "usage: $0 stage1|full|reuse|report|docs" >&2
    exit 2
    ;;
esac
