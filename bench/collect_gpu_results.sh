#!/usr/bin/env bash
# bench/collect_gpu_results.sh OUT_DIR — turns what .ci/gpu.sh left under $OUT (fetched by the device tool into
# OUT_DIR: summary.txt run.log bench.json model.json compare.json env.txt tests.tar.gz ncu.tar.gz) into files
# under bench/results/, named by date and device:
#   bench/results/<date>-gpu-<device>.json          the bench results (schema convarith-bench-1, measured)
#   bench/results/<date>-gpu-<device>.md            bench/make_report.py's table (when the bench ran)
#   bench/results/<date>-gpu-<device>-model.json    the model's rows (modeled, not measured)
#   bench/results/<date>-gpu-<device>-compare.json  measured beside modeled (measured / modeled) + the SGEMM ceiling
#   bench/results/<date>-gpu-<device>-summary.txt   the step table, the comparison, env (nvidia-smi before/after)
#   bench/results/<date>-gpu-<device>-ncu/          the ncu section reports, when ncu ran
# Refuses a run whose summary says it was a rehearsal (nothing measured) unless --rehearsal is given (then the
# files are named ...-rehearsal-... and hold no measured number). Commit what it writes by hand.
# Exit: 0 written; 1 OUT_DIR lacks summary.txt; 2 usage.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
allow_rehearsal=0
if [ "${1:-}" = "--rehearsal" ]; then
  allow_rehearsal=1
  shift
fi
if [ $# -ne 1 ] || [ ! -d "$1" ]; then
  echo "usage: bash bench/collect_gpu_results.sh [--rehearsal] OUT_DIR" >&2
  exit 2
fi
src=$1
if [ ! -f "$src/summary.txt" ]; then
  echo "collect_gpu_results: $src/summary.txt missing: not the output of .ci/gpu.sh" >&2
  exit 1
fi
kind=gpu
if grep -q "(rehearse)" <<<"$(head -1 "$src/summary.txt")"; then
  if [ $allow_rehearsal = 0 ]; then
    echo "collect_gpu_results: $src is a rehearsal (no GPU ran); pass --rehearsal to collect it anyway" >&2
    exit 1
  fi
  kind=rehearsal
fi
date=$(date -u +%Y-%m-%d)
device=unknown
if [ -f "$src/bench.json" ]; then
  device=$(python3 -c "
import json, re, sys
e = json.load(open(sys.argv[1])).get('environment', {})
print(re.sub(r'[^a-z0-9]+', '-', (e.get('gpu') or 'unknown').split(',')[0].lower()).strip('-') or 'unknown')" "$src/bench.json")
elif [ -f "$src/env.txt" ] && grep -q "^name, driver" "$src/env.txt"; then
  device=$(grep -A1 "^name, driver" "$src/env.txt" | sed -n 2p | cut -d, -f1 | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/-$//')
fi
base=$root/bench/results/$date-$kind-$device
mkdir -p "$root/bench/results"
[ -f "$src/bench.json" ] && cp "$src/bench.json" "$base.json"
[ -f "$src/model.json" ] && cp "$src/model.json" "$base-model.json"
[ -f "$src/compare.json" ] && cp "$src/compare.json" "$base-compare.json"
{
  cat "$src/summary.txt"
  if [ -f "$src/env.txt" ]; then
    echo
    grep -A2 "^# nvidia-smi (" "$src/env.txt" || true
    grep -E "^# (uname|python3|nvidia.cudnn|ncu|compute-sanitizer)|^Cuda compilation|^Build cuda" "$src/env.txt" || true
  fi
} >"$base-summary.txt"
if [ -f "$src/ncu.tar.gz" ] && grep -q "ncu/.*txt" <<<"$(tar -tzf "$src/ncu.tar.gz")"; then
  mkdir -p "$base-ncu"
  tar -xzf "$src/ncu.tar.gz" -C "$base-ncu" --strip-components=1
fi
py=/usr/bin/python3
[ -x $py ] || py=python3
if [ -f "$base.json" ] && $py -c "import matplotlib" 2>/dev/null; then
  $py "$root/bench/make_report.py" "$base.json" >/dev/null || echo "collect_gpu_results: make_report.py failed (the JSON is kept)" >&2
fi
echo "collect_gpu_results: wrote"
ls -1d "$base"* | sed "s|$root/||; s|^|  |"
