// kernels/conv_tiled_emu.cpp — the same kernel source as conv_tiled.cu, compiled for the CPU kernel executor
// (see conv_tiled.cuh and executor.hpp).
#define CONVARITH_KERNEL_BODIES 1
#include "conv_tiled.cuh"
