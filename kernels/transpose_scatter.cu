// kernels/transpose_scatter.cu — the nvcc compilation of transpose_scatter.cuh (see that file's opening comment).
#define CONVARITH_KERNEL_BODIES 1
#include "transpose_scatter.cuh"
