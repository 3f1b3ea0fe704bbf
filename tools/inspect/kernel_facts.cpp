// tools/inspect/kernel_facts.cpp — prints, as JSON, the facts the inspection tool needs from the C++ sources
// so that it repeats no number: the device profiles (kernels/device_profile.hpp, the one place for limits and
// rates) and each kernel's launch block sizes (the kernels' own constants). Built and run by kernel_inspect.py with the
// host compiler; needs no CUDA.
#include <cstdio>

#include "conv_depthwise.cuh"
#include "conv_direct.cuh"
#include "conv_igemm.cuh"
#include "conv_tiled.cuh"
#include "device_profile.hpp"
#include "pool_direct.cuh"
#include "transpose_gather.cuh"
#include "transpose_scatter.cuh"

namespace {

void print_profile(const convarith::kernels::DeviceProfile& p, bool last) {
  std::printf(
      "    \"%s\": {\"arch\": \"%s\", \"cc\": \"%d.%d\", \"sms\": %d, \"clock_ghz\": %.4g, "
      "\"fp32_fma_tflops\": %.4g, \"dram_tbps\": %.4g, \"l2_tbps\": %.4g, \"regs_per_sm\": %d, "
      "\"regs_per_block\": %d, \"max_regs_per_thread\": %d, \"reg_alloc_unit\": %d, "
      "\"max_threads_per_sm\": %d, \"max_blocks_per_sm\": %d, \"warp_size\": %d, \"smem_per_sm\": %lld, "
      "\"smem_per_block_default\": %lld, \"smem_per_block_optin\": %lld, \"smem_reserved_per_block\": %lld}%s\n",
      p.name, p.arch, p.cc_major, p.cc_minor, p.sms, p.clock_ghz, p.fp32_fma_tflops, p.dram_tbps, p.l2_tbps,
      p.regs_per_sm, p.regs_per_block, p.max_regs_per_thread, p.reg_alloc_unit, p.max_threads_per_sm,
      p.max_blocks_per_sm, p.warp_size, static_cast<long long>(p.smem_per_sm),
      static_cast<long long>(p.smem_per_block_default), static_cast<long long>(p.smem_per_block_optin),
      static_cast<long long>(p.smem_reserved_per_block), last ? "" : ",");
}

} // namespace

int main() {
  namespace kn = convarith::kernels;
  std::printf("{\n  \"profiles\": {\n");
  print_profile(kn::kProfileH100, false);
  print_profile(kn::kProfileH200, false);
  print_profile(kn::kProfileA100, true);
  std::printf("  },\n");
  // Block sizes per kernel function (the launch code's constants). tiled: 128 pixels x kgroups (1 or 2);
  // its dynamic shared memory is chosen per problem (tiled_config), at most kTiledMaxSmemBytes.
  std::printf("  \"launch\": {\n");
  std::printf(
      "    \"tiled_kernel\": {\"block\": [%d, %d], \"dynamic_smem_max\": %zu, \"dynamic_smem\": \"per problem\"},\n",
      kn::kTiledPixels, 2 * kn::kTiledPixels, kn::kTiledMaxSmemBytes);
  // igemm: 64, 128 or 256 threads by tile shape (igemm_config), its fixed shared memory at most the 128x128 tile's.
  std::printf("    \"igemm_kernel\": {\"block\": [%d, %d, %d], \"dynamic_smem_max\": %zu},\n",
              kn::IgemmTile<64, 64>::kThreads, kn::IgemmTile<128, 64>::kThreads, kn::IgemmTile<128, 128>::kThreads,
              kn::igemm_smem_bytes(kn::kIgemm128x128, false));
  // igemm's split-K reduction: kIgemmReduceThreads, no shared memory.
  std::printf("    \"igemm_reduce_kernel\": {\"block\": [%u], \"dynamic_smem_max\": 0},\n", kn::kIgemmReduceThreads);
  // depthwise: 128 threads, no shared memory.
  std::printf("    \"depthwise_kernel\": {\"block\": [%d], \"dynamic_smem_max\": 0},\n", kn::kDepthwiseThreads);
  std::printf("    \"direct_kernel\": {\"block\": [%u], \"dynamic_smem_max\": 0},\n", kn::kDirectThreads);
  std::printf("    \"gather_kernel\": {\"block\": [%u], \"dynamic_smem_max\": 0},\n", kn::kGatherThreads);
  std::printf("    \"scatter_kernel\": {\"block\": [%u], \"dynamic_smem_max\": 0},\n", kn::kScatterThreads);
  std::printf("    \"scatter_bias_fill_kernel\": {\"block\": [%u], \"dynamic_smem_max\": 0},\n", kn::kScatterThreads);
  std::printf("    \"pool_kernel\": {\"block\": [%u], \"dynamic_smem_max\": 0}\n", kn::kPoolThreads);
  std::printf("  }\n}\n");
  return 0;
}
