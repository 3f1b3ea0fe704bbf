#!/usr/bin/env bash
# .ci/inspect.sh — the kernel inspection gate (CI step "kernel inspection gate" of .ci/test.sh).
# Compiles every kernels/*.cu for sm_90 and sm_80 (nvcc), disassembles with nvdisasm (PyPI wheel
# nvidia-cuda-nvdisasm 13.x, installed into build/inspect/venv on first use) and compares each kernel
# instantiation with the committed baseline tools/inspect/baseline.json. A kernel is WORSE, and the step
# fails with the numbers, when:
#   spills > 0 bytes (absolute: no kernel may spill),
#   registers > baseline + max(4, 10 % of baseline),
#   hot-loop FMA share (FFMA+HFMA2+HMMA over the instructions of the innermost loop with the most FMAs)
#   < baseline - 2 percentage points.
# New kernels (not in the baseline) are listed, not failed. The tool's own unit tests run first.
# --cubins DIR: inspect the cubins and ptxas reports the CUDA build kept (build/default/generated/kernel_cubins,
# written by kernels/resource_usage.sh --table with the same flags) instead of compiling them again; CI does this.
# Re-baseline after an intended change:   bash .ci/inspect.sh --update   (then commit tools/inspect/baseline.json)
# Without nvcc the step prints "skipped" and succeeds (CI machines without CUDA cannot inspect).
# About 30-60 s on 2 cores (10 nvcc compiles, 2 at a time), plus the one-time venv install.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
python3 -m unittest -q tools/inspect/test_inspect.py
if ! command -v nvcc >/dev/null 2>&1; then
  echo "inspect: no nvcc: skipped"
  exit 0
fi
mkdir -p build/inspect
if [ "${1:-}" = "--update" ]; then
  shift
  exec python3 tools/inspect/kernel_inspect.py --update --json build/inspect/report.json --jobs "$(nproc)" "$@"
fi
exec python3 tools/inspect/kernel_inspect.py --check tools/inspect/baseline.json --json build/inspect/report.json \
  --jobs "$(nproc)" "$@"
