// host/cpu/cpu_algorithms.cpp — the CPU rows of the algorithm table, in `auto` preference order.
#include <cstdint>
#include <string>

#include "algorithm_registry.hpp"
#include "cpu/cpu_ops.hpp"

namespace convarith::detail {

Status check_cpu_args(const KernelArgs& args, const char* algorithm, size_t workspace_needed) {
  const ConvProblem& p = *args.problem;
  const std::string who(algorithm);
  if (args.x == nullptr)
    return invalid_argument(who + ": x is null (" + std::to_string(p.x_elements()) + " floats expected)");
  if (!is_pool(p.op()) && args.w == nullptr)
    return invalid_argument(who + ": w is null (" + std::to_string(p.w_elements()) + " floats expected)");
  if (args.y == nullptr)
    return invalid_argument(who + ": y is null (" + std::to_string(p.y_elements()) + " floats expected)");
  if (workspace_needed > 0 && (args.workspace == nullptr || args.workspace_bytes < workspace_needed))
    return invalid_argument(who + ": workspace of " + std::to_string(args.workspace_bytes) + " bytes at " +
                            (args.workspace == nullptr ? "null" : "a non-null pointer") + " is smaller than the " +
                            std::to_string(workspace_needed) + " bytes this problem needs (Plan::workspace_bytes())");
  return Status::ok();
}

float* aligned_workspace(void* workspace) {
  const auto address = reinterpret_cast<uintptr_t>(workspace);
  const uintptr_t aligned = (address + kWorkspaceSlack - 1) / kWorkspaceSlack * kWorkspaceSlack;
  return reinterpret_cast<float*>(aligned);
}

void append_cpu_algorithms(std::vector<Algorithm>& table) {
  table.push_back(Algorithm{"cpu_gemm", Device::kCpu, op_bit(Op::kConv), true,
                            "CPU convolution: per-task im2col panels x register-blocked SGEMM (AVX-512/AVX2/SSE "
                            "chosen at run time), any rank, padding, stride, dilation, groups; threaded",
                            cpu_conv_supports, cpu_conv_workspace, cpu_conv_run, nullptr});
  table.push_back(Algorithm{"cpu_gemm_col2im", Device::kCpu, op_bit(Op::kConvTranspose), true,
                            "CPU transposed convolution: SGEMM W^T x into columns, deterministic col2im; any rank, "
                            "padding/cropping, output padding, stride, dilation, groups; threaded",
                            cpu_conv_transpose_supports, cpu_conv_transpose_workspace, cpu_conv_transpose_run,
                            nullptr});
  table.push_back(Algorithm{"cpu_pool", Device::kCpu, op_bit(Op::kMaxPool) | op_bit(Op::kAvgPool), true,
                            "CPU max/avg pooling: direct loops, ceil_mode, dilation, count_include_pad; threaded",
                            cpu_pool_supports, cpu_pool_workspace, cpu_pool_run, nullptr});
}

} // namespace convarith::detail
