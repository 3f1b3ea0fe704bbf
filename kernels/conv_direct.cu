// kernels/conv_direct.cu — the nvcc compilation of conv_direct.cuh (see that file's opening comment).
#define CONVARITH_KERNEL_BODIES 1
#include "conv_direct.cuh"
