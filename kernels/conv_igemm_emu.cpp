// kernels/conv_igemm_emu.cpp — the same kernel source as conv_igemm.cu, compiled for the CPU kernel executor
// (see conv_igemm.cuh and executor.hpp).
#define CONVARITH_KERNEL_BODIES 1
#include "conv_igemm.cuh"
