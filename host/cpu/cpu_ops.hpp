// host/cpu/cpu_ops.hpp — the CPU fallback's algorithms (internal). The rows of the algorithm
// table are assembled in cpu_algorithms.cpp from these functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "convarith/arithmetic.hpp"
#include "convarith/problem.hpp"
#include "row.hpp"

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

// The arguments of the f32 NC[D]HW CPU cores below (the rows of cpu_algorithms.cpp convert other dtypes and
// layouts and apply the epilogue around them). Inside convarith::detail this KernelArgs (float pointers)
// is what the cores take; the table's rows receive convarith::KernelArgs.
struct CpuArgs {
  const ConvProblem* problem = nullptr;
  const float* x = nullptr;
  const float* w = nullptr;
  const float* bias = nullptr;
  float* y = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  void* stream = nullptr;
  // The core's blocking, computed once per plan (cpu_conv_blocking / cpu_conv_transpose_blocking). With it the
  // core trusts the Plan's checks; nullptr (direct callers) recomputes the blocking and checks the arguments.
  const void* prepared = nullptr;
  // Constant weights (PlanOptions::weights): the core's own form of w made once by its prepare_weights (cpu_conv_
  // prepare_weights, cpu_winograd_prepare_weights), or nullptr: the core prepares w itself in this run.
  const void* packed_w = nullptr;
};
using KernelArgs = CpuArgs;

// "cpu_gemm": convolution as im2col panels (built per task, never the whole matrix) times a
// register-blocked SGEMM, per group. 1x1 unit-stride unpadded layers read x in place.
Status cpu_conv_supports(const ConvProblem& p);
size_t cpu_conv_workspace(const ConvProblem& p);
Status cpu_conv_run(const KernelArgs& args);
std::shared_ptr<const void> cpu_conv_blocking(const ConvProblem& p); // for CpuArgs::prepared
// Constant weights for cpu_conv_run (CpuArgs::packed_w): w (f32 NC[D]HW) packed as the GEMM's panels once, with
// the finiteness test the run's packing makes; an empty state where the run packs nothing (one channel per group:
// the direct loops read w). `blocking` is cpu_conv_blocking(p) or nullptr.
Result<PreparedWeights> cpu_conv_prepare_weights(const ConvProblem& p, const void* blocking, const float* w);
// The pixel-rows orientation (small images with many channels: output pixels as the GEMM's rows, W^T's channels as
// its columns; the same bits as the usual one). Tests: set_cpu_gemm_pixel_rows(-1) lets the cost model decide (the
// default), 0 never takes it, 1 takes it wherever it applies (Kg >= 2 nr, not a 1x1 read in place, the panels of
// all pixels within half of L2); read when a plan is made. cpu_gemm_takes_pixel_rows: what a plan of p would take.
void set_cpu_gemm_pixel_rows(int mode);
int cpu_gemm_pixel_rows();
bool cpu_gemm_takes_pixel_rows(const ConvProblem& p); // p: the f32 NC[D]HW problem the core runs
// The pixel rows' share of (pixel panel, tap) pairs multiplied (a panel's taps that no pixel of it reads inside x
// through are skipped); -1 where p would not take the pixel rows.
double cpu_gemm_pixel_rows_seen(const ConvProblem& p);

// "cpu_gemm_col2im": transposed convolution as columns = W^T x (SGEMM, x read in place; for one image with
// few input pixels columns^T = x^T W, the weights read in place), then a deterministic col2im accumulation
// into y (each output plane written by one task in a fixed order).
Status cpu_conv_transpose_supports(const ConvProblem& p);
size_t cpu_conv_transpose_workspace(const ConvProblem& p);
// Output bands (too few image, group and channel-chunk tasks for the threads: each output plane split along its
// depth, or its rows when one deep; the same bits as one band). Tests: set_cpu_col2im_bands(-1) lets the blocking
// decide (the default), 0 never splits, b >= 2 asks for b bands wherever a band axis exists (fewer when the axis has
// fewer rows); read when a plan is made. cpu_col2im_bands: the bands a plan of p would take.
void set_cpu_col2im_bands(int mode);
int cpu_col2im_bands_mode();
int64_t cpu_col2im_bands(const ConvProblem& p); // p: the f32 NC[D]HW problem the core runs
Status cpu_conv_transpose_run(const KernelArgs& args);
std::shared_ptr<const void> cpu_conv_transpose_blocking(const ConvProblem& p);
// Constant weights for cpu_conv_transpose_run (CpuArgs::packed_w): W^T packed once as the GEMM's A (a plan with them
// never streams the weights as B), the same values the runs would pack: the same bits.
Result<PreparedWeights> cpu_conv_transpose_prepare_weights(const ConvProblem& p, const void* blocking, const float* w);
// Whether cpu_gemm_col2im's runs handed w stream the weights as the GEMM's B (x^T packed as A) for this problem,
// rather than packing W^T as A (for tests: the two orientations give bitwise the same y).
bool cpu_conv_transpose_weights_as_b(const ConvProblem& p);

// "cpu_winograd": 2-D 3x3 stride-1 convolution by Winograd F(2x2, 3x3): input, filter and output transforms around
// 16 SGEMMs per tile block (cpu_winograd.cpp). Inf/NaN in w, or any Inf/NaN output, reruns the problem on cpu_gemm.
Status cpu_winograd_supports(const ConvProblem& p);
size_t cpu_winograd_workspace(const ConvProblem& p);
Status cpu_winograd_run(const KernelArgs& args);
std::shared_ptr<const void> cpu_winograd_blocking(const ConvProblem& p);
double cpu_winograd_cost_us(const ConvProblem& p, int threads);         // auto's estimate, in cpu_gemm's units
double cpu_winograd_cost_us_weights(const ConvProblem& p, int threads); // the same with the filters transformed once
// Constant weights for cpu_winograd_run (CpuArgs::packed_w): the transformed filters U once (and whether a weight is
// Inf or NaN, which sends every run to cpu_gemm). `blocking` is cpu_winograd_blocking(p) or nullptr.
Result<PreparedWeights> cpu_winograd_prepare_weights(const ConvProblem& p, const void* blocking, const float* w);

// "cpu_taps": convolution as a sum over the kernel's taps of 1x1 GEMMs, each over the output pixels that read inside x
// through that tap (no product of a padding zero); W^T packed per tap (per run, or once with constant weights).
// Deterministic; not cpu_gemm's order of the sums (cpu_taps.cpp).
Status cpu_taps_supports(const ConvProblem& p);
size_t cpu_taps_workspace(const ConvProblem& p);
Status cpu_taps_run(const KernelArgs& args);
std::shared_ptr<const void> cpu_taps_blocking(const ConvProblem& p);
double cpu_taps_cost_us(const ConvProblem& p, int threads);         // auto's estimate, in cpu_gemm's units
double cpu_taps_cost_us_weights(const ConvProblem& p, int threads); // the same with W^T packed once
Result<PreparedWeights> cpu_taps_prepare_weights(const ConvProblem& p, const void* blocking, const float* w);
// The GEMM rows cpu_taps multiplies per (n, g): the taps' boxes of output pixels, each rounded up to mr (tests); -1
// where it does not take p.
int64_t cpu_taps_rows(const ConvProblem& p);

// "cpu_amx_bf16": bf16 convolution on Intel AMX tiles (TDPBF16PS), fp32 accumulation (cpu_amx.cpp). run() sets
// *needs_fallback, writing nothing to y, when an Inf/NaN, a subnormal or a value small enough for the tiles' flush to
// zero to matter is among x and w: the caller then runs cpu_gemm.
Status cpu_amx_supports(const ConvProblem& p);
size_t cpu_amx_workspace(const ConvProblem& p);
std::shared_ptr<const void> cpu_amx_blocking(const ConvProblem& p);
double cpu_amx_cost_us(const ConvProblem& p, int threads);
Status cpu_amx_run(const convarith::KernelArgs& args, bool* needs_fallback);
bool cpu_amx_hardware(); // AMX-BF16 present and the OS granted the tile state
// Tests: run the row's blocking, gather, packing and epilogue with a scalar model of the tile product (the same
// sums in the same order) instead of the tiles, and let supports() take problems on CPUs without AMX.
void set_cpu_amx_emulation(bool on);
bool cpu_amx_emulation();
uint64_t cpu_amx_fallbacks(); // runs handed to cpu_gemm so far (tests)
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
// n floats of 64-byte aligned host memory (prepared weights), or kOutOfRange naming `what` when they cannot be had.
Result<std::shared_ptr<float>> aligned_floats(int64_t n, const char* what);

// Saturating sizes for blocking decisions and workspace sizes: workspace() is called for every
// valid problem (N = 0 too), whose products can pass 2^63 (found by fuzz/fuzz_problem). A size
// that saturates only ever reaches memory after the caller supplied that many bytes, so never.
inline int64_t sat_mul(int64_t a, int64_t b) {
  int64_t r = 0;
  return checked_mul(a, b, &r) ? r : INT64_MAX;
}
inline int64_t sat_add(int64_t a, int64_t b) {
  int64_t r = 0;
  return checked_add(a, b, &r) ? r : INT64_MAX;
}
// 1 when v is Inf or NaN (exponent bits all ones), and nonzero when one of v[0, n) is; both vectorize.
inline uint32_t nonfinite_bit(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof(bits));
  return static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
}
inline uint32_t nonfinite_bits(const float* v, int64_t n) {
  uint32_t special = 0;
  for (int64_t i = 0; i < n; ++i)
    special |= nonfinite_bit(v[i]);
  return special;
}
inline int64_t ceil_div(int64_t a, int64_t b) {
  return a / b + (a % b != 0 ? 1 : 0);
} // a >= 0, b >= 1
inline int64_t round_up(int64_t a, int64_t b) {
  return sat_mul(ceil_div(a, b), b);
}
// kWorkspaceSlack + 4 * floats bytes, or SIZE_MAX when that does not fit.
inline size_t workspace_bytes_for_floats(int64_t floats) {
  const int64_t bytes =
      sat_add(sat_mul(floats, static_cast<int64_t>(sizeof(float))), static_cast<int64_t>(kWorkspaceSlack));
  return bytes == INT64_MAX ? SIZE_MAX : static_cast<size_t>(bytes);
}

// Taps i in [0, count) with 0 <= i * stride + offset < limit form one range [lo, hi) (stride >= 1).
struct TapRange {
  int64_t lo;
  int64_t hi;
};
// Overflow-free for any stride and offset a valid problem can have (found by fuzz/fuzz_problem: a
// stride near 2^63 overflowed -offset + stride - 1): lo = ceil(-offset / stride) is formed as
// (-offset - 1) / stride + 1, and a span limit - 1 - offset past 2^63 simply covers every tap.
inline TapRange tap_range(int64_t count, int64_t stride, int64_t offset, int64_t limit) {
  int64_t lo = offset >= 0 ? 0 : -(offset + 1) / stride + 1;
  int64_t span = 0; // limit - 1 - offset
  int64_t hi = count;
  if (offset >= 0 || (checked_add(limit - 1, -(offset + 1), &span) && checked_add(span, 1, &span))) {
    if (offset >= 0)
      span = limit - 1 - offset;
    hi = span < 0 ? 0 : span / stride + 1;
  }
  if (lo > count)
    lo = count;
  if (hi > count)
    hi = count;
  if (hi < lo)
    hi = lo;
  return {lo, hi};
}

} // namespace convarith::detail
