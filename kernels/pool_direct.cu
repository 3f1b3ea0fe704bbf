// kernels/pool_direct.cu — the nvcc compilation of pool_direct.cuh (see that file's opening comment).
#define CONVARITH_KERNEL_BODIES 1
#include "pool_direct.cuh"
