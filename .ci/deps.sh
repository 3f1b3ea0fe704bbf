#!/usr/bin/env bash
# Installs the Debian packages convarith builds, tests and benchmarks with (only the missing ones).
# The CUDA toolkit and cuDNN are optional and not from apt: with nvcc on PATH (or in
# /usr/local/cuda/bin) the CUDA kernels are built too.
set -euo pipefail
pkgs=(cmake make g++ clang libclang-rt-14-dev clang-format libgtest-dev libgmock-dev libbenchmark-dev
      libdnnl-dev ocl-icd-opencl-dev python3 python3-venv python3-dev python3-matplotlib libgif-dev git)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
