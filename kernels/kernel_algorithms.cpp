// kernels/kernel_algorithms.cpp — the CUDA kernel rows of the algorithm table, in `auto` preference
// order: for conv `tiled` (faster, when its shared-memory tile fits) before `direct` (always
// correct); for conv_transpose `gather` (deterministic) before `scatter` (atomics); `pool`.
// `run` is the nvcc-compiled kernel when this build has CUDA (the .cu files are compiled only then),
// else nullptr; `run_emulated` is the same kernel source under the CPU executor, always present.
#include <vector>

#include "algorithm_registry.hpp"
#include "conv_direct.cuh"
#include "conv_tiled.cuh"
#include "pool_direct.cuh"
#include "transpose_gather.cuh"
#include "transpose_scatter.cuh"

#if defined(CONVARITH_HAVE_CUDA)
#define CONVARITH_CUDA_RUN(fn) (&::convarith::kernels::cuda::fn)
#else
#define CONVARITH_CUDA_RUN(fn) nullptr
#endif

namespace convarith::detail {

void append_kernel_algorithms(std::vector<Algorithm>& table) {
  namespace kn = ::convarith::kernels;
  table.push_back({"tiled", Device::kCuda, op_bit(Op::kConv), true,
                   "conv: 128-pixel x up to 16-channel output tile per block, input tile + halo and filter slice in "
                   "shared memory (<= 48 KiB), up to 8 outputs per thread in registers",
                   &kn::tiled_supports, &kn::tiled_workspace, CONVARITH_CUDA_RUN(tiled_run), &kn::emu::tiled_run});
  table.push_back({"direct", Device::kCuda, op_bit(Op::kConv), true,
                   "conv: one thread per output element; every conv problem (the baseline)", &kn::direct_supports,
                   &kn::direct_workspace, CONVARITH_CUDA_RUN(direct_run), &kn::emu::direct_run});
  table.push_back({"gather", Device::kCuda, op_bit(Op::kConvTranspose), true,
                   "conv_transpose: one thread per output element gathering the taps that reach it (stride/dilation "
                   "phases in integer steps); every conv_transpose problem",
                   &kn::gather_supports, &kn::gather_workspace, CONVARITH_CUDA_RUN(gather_run), &kn::emu::gather_run});
  table.push_back({"scatter", Device::kCuda, op_bit(Op::kConvTranspose), false,
                   "conv_transpose: one thread per input element, atomic adds into y initialised to the bias; not "
                   "bitwise deterministic",
                   &kn::scatter_supports, &kn::scatter_workspace, CONVARITH_CUDA_RUN(scatter_run),
                   &kn::emu::scatter_run});
  table.push_back({"pool", Device::kCuda, op_bit(Op::kMaxPool) | op_bit(Op::kAvgPool), true,
                   "max_pool and avg_pool: one thread per output (ceil_mode, dilation, count_include_pad)",
                   &kn::pool_supports, &kn::pool_workspace, CONVARITH_CUDA_RUN(pool_run), &kn::emu::pool_run});
}

} // namespace convarith::detail
