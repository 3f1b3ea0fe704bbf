// kernels/transpose_gather_emu.cpp — the same kernel source as transpose_gather.cu, compiled for the CPU kernel
// executor (see transpose_gather.cuh and executor.hpp).
#define CONVARITH_KERNEL_BODIES 1
#include "transpose_gather.cuh"
