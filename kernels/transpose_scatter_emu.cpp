// kernels/transpose_scatter_emu.cpp — the same kernel source as transpose_scatter.cu, compiled for the CPU kernel
// executor (see transpose_scatter.cuh and executor.hpp).
#define CONVARITH_KERNEL_BODIES 1
#include "transpose_scatter.cuh"
