#!/usr/bin/env bash
# Sanitizer builds (called by .ci/test.sh; also run by hand: bash .ci/sanitize.sh [asan|tsan]).
#   1. `asan` preset (gcc, -O1 -g1 (line tables: stack traces keep file:line, the compile is ~13 % cheaper than -g), -fsanitize=address,undefined, -fno-sanitize-recover=all, no CUDA):
#      the library, the CLI and the CPU tests, run by ctest; any ASan or UBSan report fails the run.
#   2. `tsan` preset (-fsanitize=thread): test_concurrency only (shared Plans on several threads, the
#      worker pool, emulated kernels from several threads), run by ctest.
# Needs only what .ci/deps.sh installs (cmake, make, g++ with its libasan/libubsan/libtsan, GoogleTest,
# Google Benchmark for the bench library the CLI links); installs nothing itself.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
which=${1:-all}

# Every report is fatal and shows a stack. detect_stack_use_after_return stays off: with the
# executor's ucontext fibers it needs fake stacks per fiber and adds little for this code.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:report_error_type=1
asan_base=halt_on_error=1:abort_on_error=0:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=0

# LeakSanitizer needs to stop the world with ptrace-like calls, which some containers forbid; probe
# it once with a program that leaks, and only turn leak checking on where it reports that leak.
probe_lsan() {
  local dir
  dir=$(mktemp -d)
  printf '#include <cstdlib>\nvoid* volatile keep;\nint main() { keep = std::malloc(33); keep = nullptr; return 0; }\n' >"$dir/leak.cpp"
  if c++ -fsanitize=address -g "$dir/leak.cpp" -o "$dir/leak" 2>/dev/null &&
    ! ASAN_OPTIONS=detect_leaks=1 "$dir/leak" >"$dir/out" 2>&1 && grep -q 'detected memory leaks' "$dir/out"; then
    rm -rf "$dir"
    return 0
  fi
  rm -rf "$dir"
  return 1
}

run_asan() {
  local t0=$SECONDS
  if probe_lsan; then
    export ASAN_OPTIONS=$asan_base:detect_leaks=1
    echo "sanitize: LeakSanitizer works here: leak checking on"
  else
    export ASAN_OPTIONS=$asan_base:detect_leaks=0
    echo "sanitize: LeakSanitizer cannot run in this environment: leak checking off"
  fi
  cmake --preset asan >/dev/null
  # The CPU tests. Left out, with why:
  #   test_cudnn_*, test_gpu_*, test_*_gpu*: they need a GPU or the closed cuDNN library (not built with
  #     the sanitizer, and its own allocations would read as leaks); without a GPU they only skip;
  #   test_bench_*: the benchmark harness, not library code; the default build runs it.
  local targets=(convarith convarith_cli)
  local src name
  for src in tests/test_*.cpp; do
    name=$(basename "$src" .cpp)
    case "$name" in
    test_cudnn_* | test_gpu_* | test_*_gpu* | test_bench_*) continue ;;
    esac
    targets+=("$name")
  done
  echo "sanitize: asan build: ${targets[*]}"
  cmake --build build/asan -j"$jobs" --target "${targets[@]}"
  # Tests of the targets not built above register as <target>_NOT_BUILT: skip those.
  ctest --test-dir build/asan -j"$jobs" --output-on-failure --no-tests=error --timeout 900 -E '_NOT_BUILT$'
  echo "sanitize: asan+ubsan done in $((SECONDS - t0)) s"
}

run_tsan() {
  local t0=$SECONDS
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0
  cmake --preset tsan >/dev/null
  cmake --build build/tsan -j"$jobs" --target test_concurrency
  ctest --test-dir build/tsan -j"$jobs" --output-on-failure --no-tests=error --timeout 900 -R '^Concurrency\.'
  echo "sanitize: tsan done in $((SECONDS - t0)) s"
}

case "$which" in
asan) run_asan ;;
tsan) run_tsan ;;
all)
  run_asan
  run_tsan
  ;;
*)
  echo "usage: $0 [asan|tsan|all]" >&2
  exit 2
  ;;
esac
