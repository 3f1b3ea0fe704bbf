// kernels/pool_direct_emu.cpp — the same kernel source as pool_direct.cu, compiled for the CPU kernel executor
// (see pool_direct.cuh and executor.hpp).
#define CONVARITH_KERNEL_BODIES 1
#include "pool_direct.cuh"
