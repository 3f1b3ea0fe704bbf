#!/usr/bin/env bash
# The README's test command: installs the Debian packages, builds, and runs every test.
#   1. the default build (CUDA kernels too when nvcc is there, for sm_80 and sm_90) and all tests
#      (GPU tests skip without a device; every CUDA kernel also runs under the CPU kernel executor);
#      With nvcc the build also runs ptxas's resource report over every kernel for sm_80 and sm_90
#      (kernels/resource_usage.sh --table: the build fails on any register spill) and keeps those cubins;
#   2. the kernel inspection gate over the build's cubins (.ci/inspect.sh: registers, spills, hot-loop FMA
#      share against tools/inspect/baseline.json), when nvcc is there (installs nvdisasm from PyPI);
#   3. cmake --install + a tiny consumer project that does find_package(convarith);
#   4. AddressSanitizer+UBSan and ThreadSanitizer builds (.ci/sanitize.sh);
#   5. short libFuzzer runs (.ci/fuzz.sh);
#   6. the Python package: a venv under build/, `pip install .` (CPU-only module) and its pytest suite.
# Ends with one summary line "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash .ci/deps.sh || exit 1
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
jobs=$(nproc)
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"  # oneDNN (an oracle in tests) must not spin on 2 cores
passed=0
failed=0
failures=()
step() {  # step NAME COMMAND...
  local name=$1
  shift
  local t0=$SECONDS
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
    echo "=== $name: ok ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== $name: FAILED ($((SECONDS - t0)) s)"
  fi
}

build_default() {
  cmake --preset default >/dev/null && cmake --build build/default -j"$jobs"
}
test_default() {
  ctest --test-dir build/default -j"$jobs" --output-on-failure --timeout 600
}
inspection() {  # over the cubins the default build kept (no second compile); without nvcc it says skipped
  local cubins=build/default/generated/kernel_cubins
  if [ -d "$cubins" ]; then bash .ci/inspect.sh --quiet --cubins "$cubins"; else bash .ci/inspect.sh --quiet; fi
}
consumer() {
  local prefix=$root/build/install
  rm -rf "$prefix" build/consumer
  cmake --install build/default --prefix "$prefix" >/dev/null &&
    cmake -S tests/consumer -B build/consumer -DCMAKE_PREFIX_PATH="$prefix" >/dev/null &&
    cmake --build build/consumer -j"$jobs" && ./build/consumer/consumer
}

python_package() {  # a fresh venv, the build requirements from PyPI, `pip install .`, then pytest
  local venv=$root/build/python-venv
  # Debian's own python3 splits venv support and the C headers into packages; pyenv's Python has both.
  if ! python3 -c 'import ensurepip, os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv python3-dev >/dev/null || return 1
  fi
  rm -rf "$venv" && python3 -m venv "$venv" || return 1
  # onnx + onnxruntime (~9 s, ~110 MB installed): the ONNX checker's tests on the real models the onnx wheel
  # ships. Not torch: PyPI's torch is ~3 GB of CUDA wheels (341 s to install here), so test_torch.py skips and
  # runs in .ci/gpu.sh.
  "$venv/bin/pip" install -q --disable-pip-version-check scikit-build-core nanobind ninja numpy pytest ml_dtypes \
    onnx onnxruntime || return 1
  local t0=$SECONDS
  "$venv/bin/pip" install -q --disable-pip-version-check --no-build-isolation -Ccmake.build-type=Release . || return 1
  echo "pip install . took $((SECONDS - t0)) s"
  local rc=0
  (cd "$root/build" && "$venv/bin/python" -m pytest -q -p no:cacheprovider "$root/python/tests") || rc=$?
  if [ "$rc" -eq 5 ]; then echo "pytest collected no tests (exit 5): the Python suite is missing"; fi
  [ "$rc" -eq 0 ]
}

step "build (default preset)" build_default
step "tests (default preset)" test_default
step "kernel inspection gate" inspection
step "installed package + consumer project" consumer
step "sanitizers (asan+ubsan, tsan)" bash .ci/sanitize.sh
step "fuzzing (short budget)" bash .ci/fuzz.sh
step "python package (pip install . + pytest)" python_package

echo
[ ${#failures[@]} -gt 0 ] && printf 'failed step: %s\n' "${failures[@]}"
echo "ci: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
