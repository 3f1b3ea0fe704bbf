// host/cpu/cpu_ops.hpp — the CPU fallback's algorithms (internal). The rows of the algorithm
// table are assembled in cpu_algorithms.cpp from these functions.
#pragma once

#include <cstddef>
#include <cstdint>

#include "convarith/plan.hpp"

// Function multi-versioning for the plain-loop hot spots, by hand rather than with
// target_clones: ifunc resolvers run before the sanitizer runtimes start (a ThreadSanitizer build
// crashed in one), while a function pointer chosen on first use works everywhere.
// CONVARITH_CPU_MULTIVERSION(name, (params), (args)) defines `name` from an always-inline
// `name_body` compiled for AVX-512, AVX2+FMA and the baseline, picked once from the CPU's features.
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define CONVARITH_CPU_MULTIVERSION(name, params, args)                                                                 \
  __attribute__((target("avx2,fma,avx512f"))) void name##_avx512 params {                                              \
    name##_body args;                                                                                                  \
  }                                                                                                                    \
  __attribute__((target("avx2,fma"))) void name##_avx2 params {                                                        \
    name##_body args;                                                                                                  \
  }                                                                                                                    \
  void name##_baseline params {                                                                                        \
    name##_body args;                                                                                                  \
  }                                                                                                                    \
  void name params {                                                                                                   \
    using Fn = void(*) params;                                                                                         \
    static const Fn fn = ::convarith::detail::cpu_isa() == ::convarith::detail::CpuIsa::kAvx512 ? name##_avx512        \
                         : ::convarith::detail::cpu_isa() == ::convarith::detail::CpuIsa::kAvx2 ? name##_avx2          \
                                                                                                : name##_baseline;     \
    fn args;                                                                                                           \
  }
#else
#define CONVARITH_CPU_MULTIVERSION(name, params, args)                                                                 \
  void name params {                                                                                                   \
    name##_body args;                                                                                                  \
  }
#endif
#define CONVARITH_CPU_INLINE inline __attribute__((always_inline))

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

// The widest instruction set the CPU fallback uses on this CPU (fixed for the process).
enum class CpuIsa { kBaseline, kAvx2, kAvx512 };
CpuIsa cpu_isa();

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
