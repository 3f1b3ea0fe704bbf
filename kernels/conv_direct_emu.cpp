// kernels/conv_direct_emu.cpp — the same kernel source as conv_direct.cu, compiled for the CPU kernel executor
// (see conv_direct.cuh and executor.hpp).
#define CONVARITH_KERNEL_BODIES 1
#include "conv_direct.cuh"
