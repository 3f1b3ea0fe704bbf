// kernels/conv_tiled.cu — the nvcc compilation of conv_tiled.cuh (see that file's opening comment).
#define CONVARITH_KERNEL_BODIES 1
#include "conv_tiled.cuh"
