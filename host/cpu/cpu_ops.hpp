// host/cpu/cpu_ops.hpp — the CPU fallback's algorithms (internal). The rows of the algorithm
// table are assembled in cpu_algorithms.cpp from these functions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "convarith/plan.hpp"

// Function multi-versioning for the plain-loop hot spots (the GEMM micro-kernels dispatch by
// hand in gemm.cpp): one clone per instruction set, picked by the loader (ifunc), so the library
// needs no -march flag. Elsewhere (no ifunc) the loops are compiled once for the baseline.
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && defined(__linux__)
#define CONVARITH_CPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CONVARITH_CPU_CLONES
#endif

namespace convarith::detail {

// "cpu_gemm": convolution as im2col panels (built per task, never the whole matrix) times a
// register-blocked SGEMM, per group. 1x1 unit-stride unpadded layers read x in place.
Status cpu_conv_supports(const ConvProblem& p);
size_t cpu_conv_workspace(const ConvProblem& p);
Status cpu_conv_run(const KernelArgs& args);

// "cpu_gemm_col2im": transposed convolution as columns = W^T x (SGEMM, x read in place), then a
// deterministic col2im accumulation into y (each output plane written by one task in a fixed order).
Status cpu_conv_transpose_supports(const ConvProblem& p);
size_t cpu_conv_transpose_workspace(const ConvProblem& p);
Status cpu_conv_transpose_run(const KernelArgs& args);

// "cpu_pool": direct max / average pooling over each N x C plane.
Status cpu_pool_supports(const ConvProblem& p);
size_t cpu_pool_workspace(const ConvProblem& p);
Status cpu_pool_run(const KernelArgs& args);

// Checks what every CPU run() needs: a problem, x, w (unless pooling), y, and a workspace of at
// least `workspace_needed` bytes. N = 0 is checked by the callers first (a no-op, pointers may be null).
Status check_cpu_args(const KernelArgs& args, const char* algorithm, size_t workspace_needed);
// Workspace start rounded up to 64 bytes (workspace() sizes include kWorkspaceSlack for this).
constexpr size_t kWorkspaceSlack = 64;
float* aligned_workspace(void* workspace);

// Taps i in [0, count) with 0 <= i * stride + offset < limit form one range [lo, hi) (stride >= 1).
struct TapRange {
  int64_t lo;
  int64_t hi;
};
inline TapRange tap_range(int64_t count, int64_t stride, int64_t offset, int64_t limit) {
  int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  int64_t hi = limit - 1 - offset < 0 ? 0 : (limit - 1 - offset) / stride + 1;
  if (lo > count)
    lo = count;
  if (hi > count)
    hi = count;
  if (hi < lo)
    hi = lo;
  return {lo, hi};
}

} // namespace convarith::detail
