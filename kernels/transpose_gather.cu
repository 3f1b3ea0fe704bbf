// kernels/transpose_gather.cu — the nvcc compilation of transpose_gather.cuh (see that file's opening comment).
#define CONVARITH_KERNEL_BODIES 1
#include "transpose_gather.cuh"
