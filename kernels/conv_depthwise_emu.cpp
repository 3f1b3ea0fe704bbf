// kernels/conv_depthwise_emu.cpp — the same kernel source as conv_depthwise.cu, compiled for the CPU kernel
// executor (see conv_depthwise.cuh and executor.hpp).
#define CONVARITH_KERNEL_BODIES 1
#include "conv_depthwise.cuh"
