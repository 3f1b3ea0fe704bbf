#!/usr/bin/env bash
# .ci/gpu.sh — the one-call GPU script: everything convarith runs when a GPU (an H200) is lent, in <= 8 minutes,
# results under $OUT. Built HERE (no GPU: sm_90 only, cudart static) and carried; cuDNN and cuBLAS come from the
# device's CUDA image / Python wheels (nvidia.cudnn, nvidia.cublas), never carried.
#
#   bash .ci/gpu.sh --build       here: build build/gpu (sm_90) and collect the carried binaries (and the Python
#                                 module) in build/gpu-carry/payload.tar.xz (prints the carry size; fails over
#                                 56 MiB); every run unpacks it into build/gpu-unpacked first
#   bash .ci/gpu.sh --rehearse    here, no GPU: --build, then the whole script with the GPU steps reported as
#                                 skipped; proves every binary it calls exists and starts, the carry fits, the
#                                 layer specs parse, the model and the comparison run, and $OUT stays within the
#                                 device tool's limits (<= 8 files, <= 16 MiB each)
#   bash .ci/gpu.sh               on the GPU (the device tool, from the repository root):
#       run(command="bash .ci/gpu.sh", carry=["build/gpu-carry"], timeout_s=540)
#
# On the GPU, in order, each step under a time limit taken from an 8-minute budget:
#   preflight   the carried build has cuDNN (linked, and the cuDNN test cases compiled in), the device answers
#               (nvidia-smi, a CUDA program), cuDNN loads (CudnnRunner test) -- else FAIL FAST, exit 3
#   env         nvidia-smi (clocks, driver, power) before and after, CUDA/cuDNN versions
#   sgemm       cuBLAS SGEMM 4096^3 and 8192^3 fp32 (pedantic) and TF32 (labelled): the practical ceiling
#   bench       convarith bench --suite core --device cuda (vs cuDNN's fastest FMA algorithm; each case is
#               checked against the fp64 reference first); TF32 column: the bench has none (fp32 only, cuDNN's
#               TF32 off), so the TF32 ceiling is sgemm's, labelled. Before the tests, so the budget cannot
#               starve it
#   tests       CONVARITH_REQUIRE_GPU=1 (a GPU skip is a failure); test_kernels_gpu and test_gpu_vs_cudnn run
#               directly, one process per algorithm (--gtest_filter), not through ctest; then GpuKernels.*,
#               test_large_tensor and Tune.OnTheGpu* (`tune` timing the rows with CUDA events)
#   sanitizers  compute-sanitizer memcheck, racecheck, synccheck, initcheck on the first 2 cases per algorithm
#               (a refusal of the tool is recorded, not failed)
#   ncu         Nsight Compute (--clock-control none) on three layers (a refusal is recorded)
#   compare     convarith model --suite core --gpu h200 beside each measured number (measured / modeled)
#   torch       python/tests/test_torch.py (convarith.torch's custom ops, opcheck, export/compile, the module
#               swap) with the device's python3, which has torch (CI's python step cannot afford the ~3 GB
#               install); the Python module is carried from build/python-venv (CPU rows; built by .ci/test.sh's
#               python step or `pip install .`), so it needs the same Python minor version there
# $OUT (<= 8 files): summary.txt run.log bench.json model.json compare.json env.txt tests.tar.gz ncu.tar.gz.
# Then here: bash bench/collect_gpu_results.sh <files_at folder>   (see bench/README.md).
# Exit: 0 all steps ok; 1 a step failed; 3 preflight failed (nothing else ran).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
carry=build/gpu-carry
bin=$carry/bin
mode=gpu
case "${1:-}" in
--build) mode=build ;;
--rehearse) mode=rehearse ;;
"") ;;
-h | --help)
  sed -n '2,36p' "$0"
  exit 0
  ;;
*)
  echo "gpu.sh: unknown argument '$1' (--build, --rehearse, or none on the GPU)" >&2
  exit 2
  ;;
esac
binaries=(convarith test_kernels_gpu test_gpu_vs_cudnn test_large_tensor test_tune convarith_sgemm_ceiling)
algorithms=(igemm depthwise tiled direct gather scatter pool) # every CUDA row of the table
carry_limit_mib=56 # the device tool carries 64 MiB in all, the working tree included

# ---- build (here) --------------------------------------------------------------------------------------------
build() {
  if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
  command -v nvcc >/dev/null 2>&1 || {
    echo "gpu.sh --build: needs nvcc" >&2
    return 1
  }
  cmake -S . -B build/gpu -DCMAKE_BUILD_TYPE=Release -DCONVARITH_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
    >build/gpu-configure.log 2>&1 || {
    cat build/gpu-configure.log
    return 1
  }
  if ! grep -q "Found CUDNN" build/gpu-configure.log && ! grep -q "CUDNN_LIBRARY:FILEPATH=/" build/gpu/CMakeCache.txt; then
    echo "gpu.sh --build: cuDNN not found at configure time: the GPU run would compare with nothing" >&2
    return 1
  fi
  nice -n 5 cmake --build build/gpu -j"$(nproc)" --target convarith_cli test_kernels_gpu test_gpu_vs_cudnn \
    test_large_tensor test_tune convarith_sgemm_ceiling || return 1
  rm -rf "$carry"
  mkdir -p "$bin"
  cp build/gpu/cli/convarith build/gpu/tests/test_kernels_gpu build/gpu/tests/test_gpu_vs_cudnn \
    build/gpu/tests/test_large_tensor build/gpu/tests/test_tune build/gpu/bench/convarith_sgemm_ceiling "$bin"/ || return 1
  strip --strip-unneeded "$bin"/* 2>/dev/null || true
  # The Python package as built by `pip install .` into build/python-venv, for the torch tests on the device.
  local pkg
  pkg=$("$root/build/python-venv/bin/python" -c 'import convarith, os; print(os.path.dirname(convarith.__file__))' \
    2>/dev/null)
  if [ -n "$pkg" ]; then
    mkdir -p "$carry/python"
    (cd "$pkg/.." && tar --exclude=__pycache__ -cf - convarith) | tar -xf - -C "$carry/python"
    "$root/build/python-venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' >"$carry/python/PYTHON"
  else
    echo "gpu.sh --build: no convarith in build/python-venv (run .ci/test.sh's python step or pip install .):" \
      "the torch tests will be skipped on the device" >&2
  fi
  {
    local dirty
    dirty=$(git status --porcelain -- include host kernels cli bench tests tools 2>/dev/null)
    echo "git $(git rev-parse --short=12 HEAD 2>/dev/null)${dirty:+-dirty}"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -m), nvcc $(nvcc --version | tail -1), sm_90 only, cudart static"
    (cd "$bin" && ls -l)
  } >"$carry/MANIFEST"
  (cd "$bin" && du -k ./* | sort -n | sed 's/^/  KiB /')
  # The binaries each link the whole library with every kernel's sm_90 code (~15 MiB apiece): carried as one
  # xz archive (about a quarter of the size), unpacked on the device into build/gpu-unpacked (a second or two).
  local payload=(bin)
  [ -d "$carry/python" ] && payload+=(python)
  tar -C "$carry" -cf - "${payload[@]}" | xz -T0 -6 >"$carry/payload.tar.xz" || return 1
  rm -rf "$bin" "$carry/python"
  local kib tree_kib
  kib=$(du -sk "$carry" | cut -f1)
  tree_kib=$(git ls-files -z | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
  echo "gpu.sh: carry $carry = $((kib / 1024)) MiB ($kib KiB, xz) for ${#binaries[@]} binaries; tracked tree ~$((tree_kib / 1024)) MiB; device tool limit 64 MiB in all"
  if [ $((kib + tree_kib)) -gt $((carry_limit_mib * 1024)) ]; then
    echo "gpu.sh: carry + tree $(((kib + tree_kib) / 1024)) MiB is over ${carry_limit_mib} MiB" >&2
    return 1
  fi
}

if [ "$mode" = build ]; then
  build
  exit $?
fi
if [ "$mode" = rehearse ]; then
  build || {
    echo "gpu.sh --rehearse: FAILED: build"
    exit 1
  }
fi

# ---- the run (GPU, or rehearsal without one) -----------------------------------------------------------------
# The carried payload (binaries, Python module) unpacked next to the carry; a carry without one (an older
# --build) is used as it is.
if [ -f "$carry/payload.tar.xz" ]; then
  unpack() { # xz where the machine has it, else Python's lzma (the device's Python has it)
    if command -v xz >/dev/null 2>&1; then
      xz -dc "$carry/payload.tar.xz" | tar -C build/gpu-unpacked -xf -
    else
      python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$carry/payload.tar.xz" \
        build/gpu-unpacked
    fi
  }
  rm -rf build/gpu-unpacked && mkdir -p build/gpu-unpacked && unpack || {
    echo "gpu.sh: could not unpack $carry/payload.tar.xz" >&2
    exit 3
  }
  bin=build/gpu-unpacked/bin
  pyroot=build/gpu-unpacked
else
  pyroot=$carry
fi
OUT=${OUT:-$root/build/gpu-out}
[ "$mode" = rehearse ] && OUT=$root/build/gpu-rehearse-out
mkdir -p "$OUT"
rm -rf "${OUT:?}"/*
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tests" "$work/ncu"
log=$OUT/run.log
t_start=$SECONDS
budget=${CONVARITH_GPU_BUDGET_S:-470} # 8 minutes minus the packing
failed=0
declare -a results=()
record() { # record STEP STATUS DETAIL
  results+=("$(printf '%-26s %-8s %s' "$1" "$2" "$3")")
  printf '=== %s: %s %s (%d s)\n' "$1" "$2" "$3" $((SECONDS - t_start)) | tee -a "$log"
  [ "$2" = FAILED ] && failed=1
  return 0
}
left() { echo $((budget - (SECONDS - t_start))); }
limit() { # limit WANTED: at most WANTED seconds, and never past the budget (minimum 5)
  local l
  l=$(left)
  [ "$l" -gt "$1" ] && l=$1
  [ "$l" -lt 5 ] && l=5
  echo "$l"
}
run_step() { # run_step NAME TIMEOUT CMD...: output to the log; returns the command's status (124: timed out)
  local name=$1 t=$2
  shift 2
  echo "--- $name: $* (limit ${t}s)" >>"$log"
  timeout --kill-after=5 "$t" "$@" >>"$log" 2>&1
}

echo "gpu.sh: mode $mode, OUT=$OUT" | tee "$log"
cat "$carry/MANIFEST" >>"$log" 2>/dev/null

# Libraries from the device: the CUDA image's lib64 and the Python wheels' (nvidia.cudnn, nvidia.cublas).
libdirs=$(python3 - <<'EOF' 2>/dev/null
import importlib, os
dirs = []
for mod in ("nvidia.cudnn", "nvidia.cublas", "nvidia.cu13", "nvidia.cuda_runtime"):
    try:
        m = importlib.import_module(mod)
    except Exception:
        continue
    for p in list(getattr(m, "__path__", [])):
        for sub in ("lib", "lib64"):
            d = os.path.join(p, sub)
            if os.path.isdir(d):
                dirs.append(d)
print(":".join(dirs))
EOF
)
export LD_LIBRARY_PATH=${libdirs:+$libdirs:}/usr/local/cuda/lib64:/usr/local/cuda/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CONVARITH_SOURCE_DIR=$root CONVARITH_BENCH_LAYERS=$root/bench/layers.csv
export NVIDIA_TF32_OVERRIDE=0 OMP_WAIT_POLICY=passive
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >>"$log"

# ---- every binary exists, its libraries resolve, and it starts ----------------------------------------------
start_ok=1
for b in "${binaries[@]}"; do
  if [ ! -x "$bin/$b" ]; then
    record "start $b" FAILED "missing: $bin/$b (run bash .ci/gpu.sh --build here and carry $carry)"
    start_ok=0
    continue
  fi
  missing=$(ldd "$bin/$b" 2>&1 | grep "not found" | tr -s ' \t' ' ')
  if [ -n "$missing" ]; then
    record "start $b" FAILED "unresolved libraries:$missing"
    start_ok=0
    continue
  fi
  case $b in
  test_*) args=(--gtest_list_tests) ;;
  *) args=(--help) ;;
  esac
  if run_step "start $b" 30 "$bin/$b" "${args[@]}"; then
    n=""
    [[ $b == test_* ]] && n="$("$bin/$b" --gtest_list_tests 2>/dev/null | grep -c '^  ') tests"
    record "start $b" ok "${args[*]} $n"
  else
    record "start $b" FAILED "${args[*]} exited $?"
    start_ok=0
  fi
done
# The cuDNN comparison is compiled in (not the single 'built without cuDNN' case).
# (The list is captured first: `| grep -q` under pipefail fails when grep closes the pipe early.)
cudnn_list=$("$bin/test_gpu_vs_cudnn" --gtest_list_tests 2>/dev/null)
if grep -q "^Table/GpuVsCudnn" <<<"$cudnn_list"; then
  record "build has cuDNN" ok "$("$bin/test_gpu_vs_cudnn" --gtest_list_tests | grep -c '^  ') cases; $(ldd "$bin/test_gpu_vs_cudnn" | grep -o 'libcudnn[^ ]*' | head -1)"
else
  record "build has cuDNN" FAILED "test_gpu_vs_cudnn has no Table/GpuVsCudnn cases: built without cuDNN"
  start_ok=0
fi
# The ncu layers' specs parse (checked here in rehearsal, so no device time goes to a typo).
ncu_layers=(
  "R03n1|conv --x-shape 1,64,56,56 --w-shape 64,64,3,3 --pads 1,1,1,1"
  "R05n1|conv --x-shape 1,256,56,56 --w-shape 64,256,1,1"
  "T2n1|conv-transpose --x-shape 1,512,4,4 --w-shape 512,256,4,4 --strides 2,2 --pads 1,1,1,1"
)
for entry in "${ncu_layers[@]}"; do
  spec=${entry#*|}
  # shellcheck disable=SC2086
  if "$bin/convarith" shape $spec >>"$log" 2>&1; then record "layer ${entry%%|*}" ok "$spec"; else
    record "layer ${entry%%|*}" FAILED "convarith shape rejects: $spec"
    start_ok=0
  fi
done

# ---- preflight: the device and cuDNN load (else fail fast) ---------------------------------------------------
gpu=0
if [ "$mode" = gpu ]; then
  if [ "$start_ok" != 1 ]; then
    record preflight FAILED "a binary is missing or does not start: no device time spent on the rest"
    printf '%s\n' "${results[@]}" | tee "$OUT/summary.txt"
    exit 3
  fi
  export CONVARITH_REQUIRE_GPU=1
  if ! nvidia-smi -L >>"$log" 2>&1; then
    record "preflight device" FAILED "nvidia-smi -L failed"
  elif ! run_step "preflight CUDA" 60 "$bin/convarith_sgemm_ceiling" --sizes 256 --runs 2; then
    record "preflight device" FAILED "a CUDA program (cuBLAS 256^3) failed: see run.log"
  elif ! run_step "preflight cuDNN" 90 "$bin/test_gpu_vs_cudnn" --gtest_filter='CudnnRunner.*'; then
    record "preflight cuDNN" FAILED "cuDNN does not load or answer (CudnnRunner.*, CONVARITH_REQUIRE_GPU=1)"
  else
    record preflight ok "$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1); cuDNN loads; CONVARITH_REQUIRE_GPU=1"
    gpu=1
  fi
  if [ "$gpu" != 1 ]; then
    printf '%s\n' "${results[@]}" | tee "$OUT/summary.txt"
    exit 3
  fi
else
  # What can be checked without a GPU: cuDNN's library loads (the runner's descriptor checks need no device),
  # and the switch: under CONVARITH_REQUIRE_GPU=1 a GPU case must fail here, not skip.
  if run_step "preflight cuDNN (no GPU)" 60 "$bin/test_gpu_vs_cudnn" --gtest_filter='CudnnRunner.*'; then
    record "preflight cuDNN loads" ok "CudnnRunner.* passed without a GPU"
  else
    record "preflight cuDNN loads" FAILED "CudnnRunner.* failed: cuDNN does not load here (see run.log)"
  fi
  probe=$("$bin/test_kernels_gpu" --gtest_list_tests --gtest_filter='Gpu/GpuKernel.*' 2>/dev/null |
    awk '/^[^ ]/ {suite=$1} /^  / {print suite $1; exit}')
  CONVARITH_REQUIRE_GPU=1 "$bin/test_kernels_gpu" --gtest_filter="$probe" >"$work/require_gpu.log" 2>&1
  rc=$?
  cat "$work/require_gpu.log" >>"$log"
  if [ $rc != 0 ]; then
    record "CONVARITH_REQUIRE_GPU=1" ok "turns the GPU skip of $probe into a failure (exit $rc)"
  else
    record "CONVARITH_REQUIRE_GPU=1" WARNING "$probe still skips under the switch: this build's tests do not honour it yet"
  fi
  record "preflight device" skipped "rehearsal: no GPU (on the GPU: nvidia-smi -L, a CUDA program, cuDNN; else exit 3)"
fi

# ---- env ------------------------------------------------------------------------------------------------------
env_file=$OUT/env.txt
{
  echo "# gpu.sh environment ($mode), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  cat "$carry/MANIFEST" 2>/dev/null
  echo "# uname: $(uname -a)"
  echo "# nproc: $(nproc)"
  echo "# python3: $(python3 --version 2>&1)"
  python3 -c "import nvidia.cudnn as c; print('# nvidia.cudnn at', list(c.__path__))" 2>&1
  command -v nvcc >/dev/null && nvcc --version | tail -2
  command -v ncu >/dev/null && echo "# ncu: $(ncu --version 2>&1 | tail -1)"
  command -v compute-sanitizer >/dev/null && echo "# compute-sanitizer: $(compute-sanitizer --version 2>&1 | tail -1)"
} >"$env_file"
smi() { # smi LABEL
  if [ "$gpu" = 1 ]; then
    {
      echo "# nvidia-smi ($1)"
      nvidia-smi --query-gpu=name,driver_version,pci.bus_id,clocks.sm,clocks.mem,clocks.max.sm,clocks.max.mem,power.draw,power.limit,temperature.gpu,utilization.gpu,memory.used,memory.total,compute_mode,persistence_mode --format=csv
    } >>"$env_file" 2>&1
  fi
}
if [ "$gpu" = 1 ]; then
  smi before
  nvidia-smi -q >>"$env_file" 2>&1
  record env ok "nvidia-smi (clocks, driver, power) in env.txt"
else
  record env skipped "rehearsal: nvidia-smi not queried (tool versions in env.txt)"
fi

# ---- cuBLAS SGEMM ceiling --------------------------------------------------------------------------------------
sgemm=$work/sgemm.jsonl
: >"$sgemm"
if [ "$gpu" = 1 ]; then
  if timeout --kill-after=5 "$(limit 60)" "$bin/convarith_sgemm_ceiling" --sizes 4096,8192 --runs 20 --tf32 >"$sgemm" 2>>"$log"; then
    record "sgemm ceiling" ok "$(python3 -c "import json,sys; print(', '.join('%d^3 %s %.1f TFLOP/s' % (r['m'], r['math'], r['tflops']) for r in map(json.loads, open('$sgemm'))))")"
  else record "sgemm ceiling" FAILED "exit $?"; fi
else
  record "sgemm ceiling" skipped "rehearsal: convarith_sgemm_ceiling --sizes 4096,8192 --runs 20 --tf32"
fi

# ---- the bench: core suite vs cuDNN ---------------------------------------------------------------------------
if [ "$gpu" = 1 ]; then
  if run_step bench "$(limit 200)" "$bin/convarith" bench --suite core --device cuda --layers "$root/bench/layers.csv" \
    --json "$OUT/bench.json"; then
    record "bench core (cuda)" ok "vs cuDNN; TF32 column: none in convarith bench (fp32 only): sgemm's TF32 is the labelled TF32 ceiling"
  else
    record "bench core (cuda)" FAILED "exit $? (see run.log)"
  fi
else
  record "bench core (cuda)" skipped "rehearsal: convarith bench --suite core --device cuda --json bench.json"
fi

# ---- tests: one process per algorithm -------------------------------------------------------------------------
# Every CUDA row that test_kernels_gpu has cases for must be in `algorithms` (a new kernel is never left out).
missing=""
for row in $("$bin/test_kernels_gpu" --gtest_list_tests --gtest_filter='Gpu/GpuKernel.*' 2>/dev/null |
  sed -n 's|^  [A-Za-z]*/\([a-z0-9]*\)_.*|\1|p' | sort -u); do
  case " ${algorithms[*]} " in *" $row "*) ;; *) missing="$missing $row" ;; esac
done
if [ -n "$missing" ]; then
  record "algorithm list" FAILED "test_kernels_gpu has rows not in gpu.sh's algorithms:$missing"
else
  record "algorithm list" ok "${algorithms[*]}"
fi
for a in "${algorithms[@]}"; do
  for t in test_kernels_gpu test_gpu_vs_cudnn; do
    case $t in
    test_kernels_gpu) filter="Gpu/GpuKernel.*/${a}_*" ;;
    *) filter="Table/GpuVsCudnn.*/${a}_*" ;;
    esac
    n=$("$bin/$t" --gtest_list_tests --gtest_filter="$filter" 2>/dev/null | grep -c '^  ')
    if [ "$n" = 0 ]; then
      record "$t $a" skipped "no cases match $filter"
      continue
    fi
    if [ "$gpu" != 1 ]; then
      record "$t $a" skipped "rehearsal: $n cases ($filter)"
      continue
    fi
    if run_step "$t $a" "$(limit 45)" "$bin/$t" --gtest_filter="$filter" --gtest_output="xml:$work/tests/${t}_$a.xml"; then
      record "$t $a" ok "$n cases"
    else
      record "$t $a" FAILED "$n cases, exit $? (see run.log, tests.tar.gz)"
    fi
  done
done
# The other GPU tests of these binaries (host-pointer rejection, the cuDNN runner, the large-tensor GPU case).
if [ "$gpu" = 1 ]; then
  if run_step "other GPU tests" "$(limit 60)" "$bin/test_kernels_gpu" --gtest_filter='GpuKernels.*' --gtest_output="xml:$work/tests/gpu_other.xml"; then
    record "GpuKernels.*" ok ""
  else record "GpuKernels.*" FAILED "exit $?"; fi
  if run_step "large tensor" "$(limit 90)" "$bin/test_large_tensor" --gtest_output="xml:$work/tests/large_tensor.xml"; then
    record test_large_tensor ok ""
  else record test_large_tensor FAILED "exit $?"; fi
  # `tune` on the GPU: CUDA-event timing of the rows auto ranks, the winner run to the reference.
  if run_step "tune on the GPU" "$(limit 60)" "$bin/test_tune" --gtest_filter='Tune.OnTheGpu*' --gtest_output="xml:$work/tests/tune.xml"; then
    record "Tune.OnTheGpu*" ok ""
  else record "Tune.OnTheGpu*" FAILED "exit $?"; fi
else
  record "GpuKernels.*, large tensor, tune" skipped "rehearsal"
fi

# ---- compute-sanitizer on a small subset ----------------------------------------------------------------------
subset=""
for a in "${algorithms[@]}"; do
  names=$("$bin/test_kernels_gpu" --gtest_list_tests --gtest_filter="Gpu/GpuKernel.*/${a}_*" 2>/dev/null |
    awk '/^[^ ]/ {suite=$1} /^  / {print suite $1}' | head -2 | tr '\n' ':')
  subset+=$names
done
subset=${subset%:}
if [ -z "$subset" ]; then
  record sanitizers FAILED "no test cases to sanitize"
elif [ "$gpu" != 1 ]; then
  record sanitizers skipped "rehearsal: memcheck racecheck synccheck initcheck on $(echo "$subset" | tr ':' '\n' | wc -l) cases; compute-sanitizer $(command -v compute-sanitizer >/dev/null && echo found || echo 'not on PATH here')"
elif ! command -v compute-sanitizer >/dev/null 2>&1; then
  record sanitizers refused "compute-sanitizer not on PATH"
else
  for tool in memcheck racecheck synccheck initcheck; do
    slog=$work/tests/sanitizer_$tool.log
    timeout --kill-after=5 "$(limit 50)" compute-sanitizer --tool "$tool" --error-exitcode 97 \
      "$bin/test_kernels_gpu" --gtest_filter="$subset" >"$slog" 2>&1
    rc=$?
    if [ $rc = 0 ]; then
      record "sanitizer $tool" ok "$(grep -o 'ERROR SUMMARY: [0-9]* errors' "$slog" | tail -1)"
    elif [ $rc = 97 ]; then
      record "sanitizer $tool" FAILED "$(grep -o 'ERROR SUMMARY: [0-9]* errors' "$slog" | tail -1) (tests.tar.gz)"
    elif grep -qiE "not supported|device not supported|unable to|error 999|Failed to initialize" "$slog"; then
      record "sanitizer $tool" refused "$(grep -iE 'not supported|unable to|error 999|Failed to' "$slog" | head -1 | cut -c1-150)"
    else
      record "sanitizer $tool" FAILED "exit $rc (tests.tar.gz: sanitizer_$tool.log)"
    fi
  done
fi

# ---- ncu on three layers ---------------------------------------------------------------------------------------
if [ "$gpu" != 1 ]; then
  record ncu skipped "rehearsal: ncu --clock-control none on ${#ncu_layers[@]} layers ($(command -v ncu >/dev/null && echo found || echo 'not on PATH here'))"
elif ! command -v ncu >/dev/null 2>&1; then
  record ncu refused "ncu not on PATH"
else
  for entry in "${ncu_layers[@]}"; do
    name=${entry%%|*}
    spec=${entry#*|}
    nlog=$work/ncu/$name.txt
    # shellcheck disable=SC2086
    timeout --kill-after=5 "$(limit 60)" ncu --clock-control none --launch-skip 5 --launch-count 2 \
      --section SpeedOfLight --section LaunchStats --section Occupancy --section MemoryWorkloadAnalysis \
      --section ComputeWorkloadAnalysis \
      "$bin/convarith" bench --device cuda --no-peer --reps 3 --warmup 2 --layer $spec >"$nlog" 2>&1
    rc=$?
    if [ $rc = 0 ] && grep -q "Section: " "$nlog"; then
      record "ncu $name" ok "ncu/$name.txt"
    elif grep -qiE "ERR_NVGPUCTRPERM|LibraryNotLoaded|not supported|Failed to initialize|permission" "$nlog"; then
      record "ncu $name" refused "$(grep -iE 'ERR_NVGPUCTRPERM|LibraryNotLoaded|not supported|Failed to|permission' "$nlog" | head -1 | cut -c1-150)"
    else
      record "ncu $name" FAILED "exit $rc (ncu.tar.gz)"
    fi
  done
fi

# ---- convarith.torch: the torch tests CI cannot afford, with the device's python3 (it has torch) ----------------
pydir=$root/$pyroot/python
if [ ! -d "$pydir/convarith" ]; then
  record "torch tests" skipped "no carried Python module (gpu.sh --build copies build/python-venv's)"
elif ! python3 -c "import torch, pytest" >/dev/null 2>&1; then
  record "torch tests" skipped "$(python3 --version 2>&1) here has no torch or no pytest"
elif ! PYTHONPATH=$pydir python3 -c "import convarith" >/dev/null 2>&1; then
  record "torch tests" skipped "module built for Python $(cat "$pydir/PYTHON"), this is $(python3 --version 2>&1)"
elif run_step "torch tests" "$(limit 120)" env PYTHONPATH="$pydir" python3 -m pytest -q -p no:cacheprovider \
  "$root/python/tests/test_torch.py"; then
  record "torch tests" ok "$(grep -E '^[0-9]+ passed' "$log" | tail -1)"
else
  record "torch tests" FAILED "pytest exit $? (run.log)"
fi

# ---- the model beside each measured number --------------------------------------------------------------------
if "$bin/convarith" model --suite core --gpu h200 --layers "$root/bench/layers.csv" --json "$OUT/model.json" >"$work/model.txt" 2>&1; then
  record "model core (h200)" ok "$(grep -c '^[A-Z]' "$work/model.txt") rows, modeled, not measured"
else
  record "model core (h200)" FAILED "convarith model exit $?"
fi
cat "$work/model.txt" >>"$log"
if [ -f "$OUT/bench.json" ] && [ -f "$OUT/model.json" ]; then
  if python3 tools/gpu/compare.py "$OUT/bench.json" "$OUT/model.json" --sgemm "$sgemm" --json "$OUT/compare.json" >"$work/compare.txt" 2>&1; then
    record compare ok "measured/modeled in compare.json"
  else record compare FAILED "tools/gpu/compare.py exit $?"; fi
else
  if python3 tools/gpu/compare.py --self-test >>"$log" 2>&1; then
    record compare skipped "no bench.json ($mode); tools/gpu/compare.py --self-test ok"
  else record compare FAILED "tools/gpu/compare.py --self-test"; fi
fi

# ---- pack (the device tool returns <= 8 files, <= 16 MiB each, <= 2 folders deep) -----------------------------
smi after
tar -czf "$OUT/tests.tar.gz" -C "$work" tests sgemm.jsonl model.txt 2>>"$log"
tar -czf "$OUT/ncu.tar.gz" -C "$work" ncu 2>>"$log"
{
  echo "gpu.sh summary ($mode) $(date -u +%Y-%m-%dT%H:%M:%SZ), $((SECONDS - t_start)) s of a ${budget} s budget"
  printf '%s\n' "${results[@]}"
  [ -f "$work/compare.txt" ] && cat "$work/compare.txt"
  grep -A8 "^per kernel" "$work/model.txt"
} >"$OUT/summary.txt"
nfiles=$(find "$OUT" -type f | wc -l)
big=$(find "$OUT" -type f -size +16M | wc -l)
if [ "$nfiles" -gt 8 ] || [ "$big" -gt 0 ]; then
  record "out limits" FAILED "$nfiles files (max 8), $big over 16 MiB"
else
  record "out limits" ok "$nfiles files: $(cd "$OUT" && ls | tr '\n' ' ')"
fi
{
  echo "out limits: $nfiles files"
  echo "result: $([ $failed = 0 ] && echo ok || echo FAILED)"
} >>"$OUT/summary.txt"
echo
cat "$OUT/summary.txt"
exit $failed
