// kernels/conv_igemm.cu — the nvcc compilation of conv_igemm.cuh (see that file's opening comment).
#define CONVARITH_KERNEL_BODIES 1
#include "conv_igemm.cuh"
