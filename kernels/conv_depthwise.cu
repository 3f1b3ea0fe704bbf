// kernels/conv_depthwise.cu — the nvcc compilation of conv_depthwise.cuh (see that file's opening comment).
#define CONVARITH_KERNEL_BODIES 1
#include "conv_depthwise.cuh"
