#!/usr/bin/env bash
# kernels/resource_usage.sh — compile every kernels/*.cu for one architecture (sm_90 unless
# CONVARITH_RESOURCE_ARCH says otherwise) with ptxas's resource report and fail on register spills.
#
# --table FILE: instead, compile for sm_80 and sm_90 (CONVARITH_RESOURCE_ARCHS overrides) and write the
# executor's resource table to FILE (one CONVARITH_KERNEL_RESOURCES(arch, kernel, registers, static smem,
# stack) line per kernel instantiation, keyed as the executor's launch macros name it, e.g.
# "tiled_kernel<8>", "direct_kernel<long>"); still fails on spills. The committed table is
# kernels/kernel_resources.inc; the CUDA build generates its own and a test compares the two.
#
# Prints one line per kernel: registers, spill stores/loads, stack frame, static shared memory and
# barriers. The tiled kernel's dynamic shared memory is chosen per problem at launch (see the formula
# in conv_tiled.cuh) and is not in ptxas's report.
# Exit status: 0 when every kernel compiles without spills; 1 when a file fails to compile or ptxas
# reports any spill store or load above 0 bytes. Needs nvcc (PATH, $NVCC or /usr/local/cuda/bin).
# Usage: bash kernels/resource_usage.sh [--table FILE]   (from anywhere; CI runs it from the repository root)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
table=""
if [[ "${1:-}" == "--table" ]]; then
  if [[ -z "${2:-}" ]]; then
    echo "resource_usage: --table needs a file name" >&2
    exit 2
  fi
  table=$2
  read -r -a archs <<<"${CONVARITH_RESOURCE_ARCHS:-sm_80 sm_90}"
elif [[ -n "${1:-}" ]]; then
  echo "usage: resource_usage.sh [--table FILE]" >&2
  exit 2
else
  archs=("${CONVARITH_RESOURCE_ARCH:-sm_90}")
fi
nvcc=${NVCC:-}
if [[ -z "$nvcc" ]]; then
  if command -v nvcc >/dev/null 2>&1; then nvcc=$(command -v nvcc); else nvcc=/usr/local/cuda/bin/nvcc; fi
fi
if [[ ! -x "$nvcc" ]]; then
  echo "resource_usage: nvcc not found (set NVCC or PATH)" >&2
  exit 1
fi
# Demangler: cu++filt where the toolkit ships it, else the host's c++filt, else raw names.
filt=$(dirname "$nvcc")/cu++filt
if [[ ! -x "$filt" ]]; then
  if command -v c++filt >/dev/null 2>&1; then filt=c++filt; else filt=cat; fi
fi
# Extra nvcc flags, e.g. CONVARITH_RESOURCE_FLAGS=-maxrregcount=24 to see the spill check fail.
read -r -a extra_flags <<<"${CONVARITH_RESOURCE_FLAGS:-}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# CONVARITH_RESOURCE_KEEP=DIR keeps each cubin and its ptxas report as DIR/<arch>/<name>.cubin and .log: the
# kernel inspection (tools/inspect/kernel_inspect.py --cubins DIR) reads them instead of compiling again.
keep=${CONVARITH_RESOURCE_KEEP:-}

status=0
shopt -s nullglob
sources=("$root"/kernels/*.cu)
if [[ ${#sources[@]} -eq 0 ]]; then
  echo "resource_usage: no kernels/*.cu found under $root" >&2
  exit 1
fi
: >"$tmp/table"
# The compiles run CONVARITH_RESOURCE_JOBS (default: the cores) at a time: in the CMake build every object of the
# library waits for this table, so a serial loop would leave the other cores idle. Each writes its log and rc.
jobs=${CONVARITH_RESOURCE_JOBS:-$(nproc 2>/dev/null || echo 2)}
compile_one() { # compile_one SRC ARCH
  local name log
  name=$(basename "$1" .cu)
  log="$tmp/$name.$2.log"
  # The same flags as the CMake build (-lineinfo, --warn-on-spills, relaxed constexpr), no fast-math; device
  # code only (-cubin: the host side is the build's business).
  if "$nvcc" -std=c++17 -arch="$2" -cubin --expt-relaxed-constexpr -lineinfo -Xptxas=--warn-on-spills \
    --resource-usage "${extra_flags[@]}" -I"$root/include" -I"$root/host" -I"$root/kernels" "$1" -o "$tmp/$name.$2.cubin" >"$log" 2>&1; then
    echo 0 >"$log.rc"
  else
    echo 1 >"$log.rc"
  fi
}
running=0
for arch in "${archs[@]}"; do
  for src in "${sources[@]}"; do
    compile_one "$src" "$arch" &
    running=$((running + 1))
    if [[ $running -ge $jobs ]]; then
      wait -n || true
      running=$((running - 1))
    fi
  done
done
wait
for arch in "${archs[@]}"; do
  printf '%-40s %5s %8s %8s %6s %6s %4s\n' "kernel ($arch)" "regs" "spill_st" "spill_ld" "stack" "smem" "bar"
  for src in "${sources[@]}"; do
    name=$(basename "$src" .cu)
    log="$tmp/$name.$arch.log"
    rc=1
    [[ -f "$log.rc" ]] && rc=$(cat "$log.rc")
    if [[ "$rc" != 0 ]]; then
      echo "resource_usage: $name.cu failed to compile:" >&2
      cat "$log" >&2
      status=1
      continue
    fi
    # ptxas reports, per entry function:
    #   ptxas info : Compiling entry function '<mangled>' for 'sm_90'
    #   ptxas info : Function properties for <mangled>
    #       S bytes stack frame, A bytes spill stores, B bytes spill loads
    #   ptxas info : Used R registers, used N barriers[, M bytes smem], ...
    if ! awk -v file="$name.cu" '
      /Compiling entry function/ { fn = $0; sub(/.*entry function '\''/, "", fn); sub(/'\''.*/, "", fn);
                                   stack = 0; st = 0; ld = 0; next }
      /bytes stack frame/ { stack = $1; st = $5; ld = $9; next }
      /Used [0-9]+ registers/ && fn != "" {
        regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs);
        bar = 0; if ($0 ~ /used [0-9]+ barriers/) { bar = $0; sub(/.*used /, "", bar); sub(/ barriers.*/, "", bar) }
        smem = 0; if ($0 ~ /bytes smem/) { smem = $0; sub(/ bytes smem.*/, "", smem); sub(/.* /, "", smem) }
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fn, regs, st, ld, stack, smem, bar
        if (st + 0 > 0 || ld + 0 > 0) spilled = 1
        fn = ""
      }
      /[Ss]pill/ && /[Ww]arning/ { spilled = 1 }
      END { exit spilled ? 1 : 0 }' "$log" >"$tmp/$name.$arch.tsv"; then
      status=1
      echo "resource_usage: $name.cu spills registers:" >&2
      grep -iE "spill|warning" "$log" >&2 || true
    fi
    while IFS=$'\t' read -r fn regs st ld stack smem bar; do
      pretty=$(echo "$fn" | "$filt" | sed -e 's/^void //' -e 's/convarith::kernels::cuda:://' -e 's/(convarith::kernels::[A-Za-z]*)$//')
      printf '%-40s %5s %8s %8s %6s %6s %4s\n' "$pretty" "$regs" "$st" "$ld" "$stack" "$smem" "$bar"
      # The executor's key: unqualified name with template arguments, no parameter list.
      key=$(echo "$fn" | "$filt" | sed -e 's/^void //' -e 's/(.*)$//' -e 's/^[A-Za-z_0-9:]*:://')
      printf 'CONVARITH_KERNEL_RESOURCES("%s", "%s", %s, %s, %s)\n' "$arch" "$key" "$regs" "$smem" "$stack" >>"$tmp/table"
    done <"$tmp/$name.$arch.tsv"
    if [[ -n "$keep" ]]; then
      mkdir -p "$keep/$arch"
      cp "$tmp/$name.$arch.cubin" "$keep/$arch/$name.cubin"
      cp "$log" "$keep/$arch/$name.log"
    fi
  done
done
if [[ -n "$table" && $status -eq 0 ]]; then
  {
    echo "// kernels/kernel_resources.inc — the executor's resource table: generated by"
    echo "// \`bash kernels/resource_usage.sh --table FILE\` from ptxas's report; do not edit (regenerate)."
    echo "// $("$nvcc" --version | grep -i release | sed -e 's/^.*release/release/')"
    echo "// CONVARITH_KERNEL_RESOURCES(arch, kernel, registers per thread, static smem bytes, stack bytes)"
    LC_ALL=C sort -u "$tmp/table"
  } >"$table.tmp"
  mv "$table.tmp" "$table"
  echo "resource_usage: wrote $table"
fi
if [[ $status -ne 0 ]]; then
  echo "resource_usage: FAILED (compile error or register spills above)" >&2
else
  echo "resource_usage: OK, no spills"
fi
exit $status
