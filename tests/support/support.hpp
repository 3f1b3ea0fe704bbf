// tests/support/support.hpp — what every test shares: the fp64 oracle (reference/, independent of
// host/cpu/), inputs, NaN poisoning, comparisons and the named problem lists.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "reference/reference.hpp"
#include "row.hpp"

namespace convarith::test {

// ---- the oracle -------------------------------------------------------------------------------
// The project's one fp64 oracle, reference/ (plain loops written from the definitions, gather form
// for transposed convolution, independent of host/cpu/): see reference/reference.hpp.
// reference(p, x, w, bias) returns y_elements() values; bias may be nullptr. Pooling: max over the
// window's in-input taps (padding never wins); avg divides by prod(k) with count_include_pad (taps
// past the padded extent, possible in ceil_mode, do not count) and by the number of in-input taps
// without it. reference_magnitude(): per output element sum |x*w| over the taps (+ |bias|), for
// pooling max |x| in the window; the error bound of a float32 result is a multiple of eps * this.
using oracle::reference;
using oracle::reference_magnitude;

// ---- inputs -----------------------------------------------------------------------------------
struct Inputs {
  std::vector<float> x, w, bias; // w empty for pooling; bias empty when not requested
};
// Small nonzero integers (|v| <= 3 for x and w, <= 8 for bias): every sum is exact in float32
// for the problem sizes used in tests, so results compare exactly.
Inputs integer_inputs(const ConvProblem& p, uint64_t seed, bool with_bias = true);
// Uniform floats in [-1, 1] (never all zero).
Inputs random_inputs(const ConvProblem& p, uint64_t seed, bool with_bias = true);
// A fresh seed per call (std::random_device); tests print it in failure messages.
uint64_t fresh_seed();
// Fill with quiet NaN so an element the code under test never writes fails the comparison.
void poison(std::vector<float>& v);

// One run of a CPU row through Plan::create and Plan::run, y poisoned first, the workspace off alignment by a byte:
// with the bias of `in` or none, and with the weights prepared at create (PlanOptions::weights, run handed no w) or
// handed to the run. Empty (and a test failure) when the plan or the run fails.
std::vector<float> run_cpu_plan(const ConvProblem& p, const char* algorithm, const Inputs& in, bool with_bias,
                                bool prepared);

// ---- comparisons ------------------------------------------------------------------------------
// The same size and the same bits (NaN payloads included).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b);
// Every element equal (and not NaN). The message names the first mismatches by NCHW index.
::testing::AssertionResult exact_match(const ConvProblem& p, const std::vector<float>& got,
                                       const std::vector<double>& want);
// |got - want| <= tol_factor * eps_f32 * (taps + 2) * magnitude + 1e-30 per element.
::testing::AssertionResult close_match(const ConvProblem& p, const std::vector<float>& got,
                                       const std::vector<double>& want, const std::vector<double>& magnitude,
                                       double tol_factor = 2.0);
// Max abs error and max error relative to magnitude, for reports and the "at most twice cuDNN" rule below.
struct ErrorStats {
  double max_abs = 0;
  double max_rel = 0; // max |got-want| / max(magnitude, tiny)
};
ErrorStats error_stats(const std::vector<float>& got, const std::vector<double>& want,
                       const std::vector<double>& magnitude);

// ---- the "at most twice cuDNN's error" rule (DESIGN.md §5) -----------------------------------------
// The one place the rule lives. Per output element e, with peer_max_rel the peer's (cuDNN's) max error
// relative to the magnitude (ErrorStats::max_rel of its output):
//   |ours[e] - want[e]| <= 2 * peer_max_rel * magnitude[e] + kPeerSlackHalfUlps * half_ulp(magnitude[e])
// half_ulp(m) is half a float32 ulp at m (the error of one rounding of any value of size <= m). The
// slack, 4 half-ulps, is for low-tap problems (depthwise 3x3, pools, C = 1 with k = 10) where both
// errors are one to three half-ulps, or cuDNN happens to be exact: "twice" of such numbers is noise.
constexpr double kPeerSlackHalfUlps = 4.0;
double half_ulp(double magnitude);
::testing::AssertionResult at_most_twice_peer_error(const std::vector<float>& ours, const std::vector<double>& want,
                                                    const std::vector<double>& magnitude, double peer_max_rel);

// ---- GPU tests that cannot run ----------------------------------------------------------------
// CONVARITH_REQUIRE_GPU set to anything but "" or "0": a GPU test that would skip (no usable device,
// a build without CUDA, cuDNN not found at configure time) fails instead, so a GPU job cannot go
// green without having run. Every GPU test skips through CONVARITH_GPU_SKIP, never raw GTEST_SKIP.
bool gpu_required();
// Skips the test with `reason` (a std::string expression), or fails it under CONVARITH_REQUIRE_GPU.
#define CONVARITH_GPU_SKIP(reason)                                                                                     \
  do {                                                                                                                 \
    const std::string convarith_skip_reason_ = (reason);                                                               \
    if (::convarith::test::gpu_required())                                                                             \
      GTEST_FAIL() << "CONVARITH_REQUIRE_GPU is set, so this GPU test may not skip: " << convarith_skip_reason_;       \
    else                                                                                                               \
      GTEST_SKIP() << convarith_skip_reason_;                                                                          \
  } while (0)
// The common case: no usable CUDA device.
#define CONVARITH_SKIP_WITHOUT_GPU()                                                                                   \
  do {                                                                                                                 \
    if (::convarith::cuda_device_count() == 0)                                                                         \
      CONVARITH_GPU_SKIP("no CUDA device: " + ::convarith::cuda_unavailable_reason());                                 \
  } while (0)

// ---- named problem lists (shared by tests and bench) --------------------------------------------
struct NamedProblem {
  std::string name;
  ConvProblem problem;
};
// The paper's figures (conv_arithmetic animations) as 1-channel 2-D problems with their names:
// no_padding_no_strides, ..., and each *_transposed, plus dilation.
std::vector<NamedProblem> paper_problems();
// A handful of small problems per op (fast).
std::vector<NamedProblem> smoke_problems();
// DESIGN.md §5's edge list for every op: 1x1, kernel larger than input with padding, stride >
// kernel, dilation 2-3, prime sizes, C=1, K not a multiple of any tile, asymmetric padding, groups
// and depthwise, rank 1 and 3, N=0, ceil_mode, count_include_pad, output padding.
std::vector<NamedProblem> edge_problems();
// Tiny problems that index_fits_int32() rejects (a stride or a padding of 2^31 with one or two
// outputs on that axis), one or more per op, so every kernel's 64-bit index instantiation runs.
std::vector<NamedProblem> index64_problems();
// Small problems drawn at random over every attribute (valid only), deterministic in seed.
std::vector<NamedProblem> random_problems(uint64_t seed, int count);
// Dies (ADD_FAILURE + returns a default problem) if desc is invalid: for building test lists.
ConvProblem must_make(const ProblemDesc& desc);
// A 2-D convolution: N x C x H x W input, K filters of R x R, symmetric padding, one stride for both axes.
ProblemDesc conv2d_desc(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w, int64_t r, int64_t pad,
                        int64_t stride = 1, int64_t groups = 1);

// gtest parameter name: the problem name with non-identifier characters replaced.
std::string param_name(const std::string& name);

} // namespace convarith::test

namespace convarith::test {
// Runs one row of the table (a CPU row or an emulated kernel row) through Plan::create(problem, row.device,
// row.name) and Plan::run with a workspace of the plan's size: the path every user takes.
Status run_row(const Algorithm& row, const ConvProblem& p, const float* x, const float* w, const float* bias, float* y);
// The workspace a plan of this row would report (its prepare() for the row's current device).
size_t row_workspace(const Algorithm& row, const ConvProblem& p);
// The rows that run on the host: CPU rows and the emulated twins of the CUDA kernels.
bool host_row(const Algorithm& row);
} // namespace convarith::test
