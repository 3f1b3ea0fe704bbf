#!/usr/bin/env bash
# tools/inspect/inspect.sh — kernel inspection (registers, spills, shared memory, occupancy, hot-loop SASS mix)
# for every kernels/*.cu instantiation, sm_90 and sm_80. Installs nvdisasm from PyPI into build/inspect/venv on
# first use. Arguments go to kernel_inspect.py: --json FILE, --arch sm_90, --check BASELINE, --update, --quiet.
#   bash tools/inspect/inspect.sh                       # the table
#   bash tools/inspect/inspect.sh --json build/inspect/report.json
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
exec python3 "$root/tools/inspect/kernel_inspect.py" "$@"
