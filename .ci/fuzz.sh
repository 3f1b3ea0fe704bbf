#!/usr/bin/env bash
# libFuzzer runs (called by .ci/test.sh; also by hand). Builds the `fuzz` preset (clang,
# -fsanitize=fuzzer,address,undefined) and, for each target, first replays its regression inputs
# (tests/regressions/<dir>/) and then fuzzes from its committed seed corpus (fuzz/corpus/<target>/)
# for a fixed budget:
#   FUZZ_SECONDS=30 (default) seconds per target (fuzz_npy and fuzz_npy_file, two views of one
#   reader, share one such budget: half each), FUZZ_RUNS=500000 (default; -1: no cap) inputs at most,
#   FUZZ_SEED=1 (default: CI's runs repeat; FUZZ_SEED=0 lets libFuzzer pick one).
#   fuzz_huge (huge attributes, small tensors, time-bounded) gets FUZZ_HUGE_SECONDS=20 (default): its
#   inputs run every algorithm and the reference, so it needs fewer of them to cover its classes.
#   FUZZ_SECONDS=600 FUZZ_RUNS=-1 bash .ci/fuzz.sh     a longer run on demand
#   bash .ci/fuzz.sh fuzz_npy                          one target
# New corpus entries go to build/fuzz/corpus/<target>/ (the committed seeds are never modified). A
# crash or broken invariant fails the script and leaves the input in build/fuzz/artifacts/; keep it
# as tests/regressions/<dir>/<name> (the tests replay that folder) once the bug is fixed.
# Needs only what .ci/deps.sh installs (clang, libclang-rt-14-dev for libFuzzer and the sanitizer
# runtimes, cmake, make); installs nothing itself.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
seconds=${FUZZ_SECONDS:-30}
runs=${FUZZ_RUNS:-500000}
declare -A regressions=([fuzz_problem]=problem [fuzz_attributes]=attributes [fuzz_npy]=npy [fuzz_npy_file]=npy_file [fuzz_huge]=huge)
declare -A share=([fuzz_npy]=2 [fuzz_npy_file]=2) # the budget is divided by this
# fuzz_npy_file runs the reader under a 1 MiB memory limit (fuzz/cli_harness.hpp): a declared size
# must be refused, never allocated, so one allocation past 64 MB is a failure there.
declare -A extra=([fuzz_npy_file]=-malloc_limit_mb=64)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(fuzz_problem fuzz_attributes fuzz_npy fuzz_npy_file fuzz_huge)

if ! command -v clang++ >/dev/null 2>&1; then
  echo "fuzz: clang++ not found (install clang and libclang-rt-14-dev: see .ci/deps.sh)" >&2
  exit 1
fi
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
t0=$SECONDS
cmake --preset fuzz >/dev/null
cmake --build build/fuzz -j"$jobs" --target "${targets[@]}"
echo "fuzz: built in $((SECONDS - t0)) s"

status=0
mkdir -p build/fuzz/artifacts
for target in "${targets[@]}"; do
  bin=build/fuzz/fuzz/$target
  reg=tests/regressions/${regressions[$target]:-none}
  if compgen -G "$reg/*" >/dev/null; then
    echo "fuzz: $target: replaying $(find "$reg" -type f | wc -l) regression inputs from $reg"
    if ! "$bin" -runs=1 "$reg"/* >"build/fuzz/$target.replay.log" 2>&1; then
      tail -n 40 "build/fuzz/$target.replay.log"
      echo "fuzz: $target: a regression input fails again" >&2
      status=1
      continue
    fi
  fi
  work=build/fuzz/corpus/$target
  mkdir -p "$work"
  t1=$SECONDS
  budget=$(( seconds / ${share[$target]:-1} ))
  [ "$target" = fuzz_huge ] && budget=${FUZZ_HUGE_SECONDS:-20}
  [ "$budget" -lt 1 ] && budget=1
  echo "fuzz: $target: ${budget} s, at most $runs inputs, seeds fuzz/corpus/$target"
  # -timeout: a single input slower than 10 s is a hang; -rss_limit_mb: the default 2 GB cap.
  if "$bin" "$work" "fuzz/corpus/$target" -max_total_time="$budget" -runs="$runs" -timeout=10 -seed="${FUZZ_SEED:-1}" \
    -rss_limit_mb=2048 ${extra[$target]:-} -print_final_stats=1 -artifact_prefix="build/fuzz/artifacts/$target-" \
    >"build/fuzz/$target.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done' "build/fuzz/$target.log" | tr '\n' ' '
    echo "($((SECONDS - t1)) s, corpus $(find "$work" -type f | wc -l) files)"
  else
    grep -v '^#' "build/fuzz/$target.log" | tail -n 40
    echo "fuzz: $target FAILED: the input is in build/fuzz/artifacts/ (keep it in $reg/ once fixed)" >&2
    status=1
  fi
done
echo "fuzz: done in $((SECONDS - t0)) s"
exit $status
