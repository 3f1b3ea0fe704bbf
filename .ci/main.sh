#!/usr/bin/env bash
# The README's main-job command: installs the Debian packages, builds convarith, then runs the layer
# suite with `convarith bench` on the GPU when there is one, else on the CPU (oneDNN as the peer),
# checking every result against the fp64 reference and printing the comparison table.
#   SUITE=full bash .ci/main.sh     runs the full suite (the default suite is sized for a 2-core CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/deps.sh
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
# oneDNN (the CPU peer) uses OpenMP; spinning idle threads would steal the 2 cores from whichever side is timed.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
cmake --preset default >/dev/null
cmake --build build/default -j"$(nproc)" --target convarith_cli
mkdir -p build/results
exec ./build/default/cli/convarith bench --suite "${SUITE:-default}" --device auto \
  --json "build/results/bench-$(date -u +%Y%m%d-%H%M%S).json"
