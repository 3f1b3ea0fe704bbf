// tests/test_cpu_taps.cpp — the "cpu_taps" row (a 1x1 GEMM per tap over the output pixels that read inside x,
// host/cpu/cpu_taps.cpp): what it refuses, exact results on integers and bounded ones on random floats over shapes that
// cross its depth blocks, slivers, chunks and panels, the rows it multiplies (no padded pixel-tap beyond a panel's
// rounding), special values, prepared against per-run weights, and what `auto` makes of it.
#include <cmath>
#include <limits>
#include <vector>

#include "cpu/cpu_ops.hpp"
#include "cpu/gemm.hpp"
#include "support/support.hpp"

namespace convarith::test {
namespace {

ProblemDesc desc(int rank, int64_t n, int64_t c, int64_t k, std::vector<int64_t> in, std::vector<int64_t> ker) {
  ProblemDesc d;
  d.rank = rank, d.n = n, d.c = c, d.k = k;
  for (size_t j = 0; j < in.size(); ++j)
    d.input[j] = in[j], d.kernel[j] = ker[j];
  return d;
}

std::vector<NamedProblem> taps_problems() {
  std::vector<NamedProblem> out;
  ProblemDesc d = desc(3, 1, 20, 35, {2, 7, 7}, {3, 3, 3}); // C3D's conv5a in small: 35 channels = 2 slivers + a tail
  d.pad_lo = d.pad_hi = {1, 1, 1};
  out.push_back({"c3d_like", must_make(d)});
  d = desc(2, 2, 300, 18, {5, 6}, {3, 3}); // two depth blocks of kGemmKc, batch 2
  d.pad_lo = {1, 2}, d.pad_hi = {1, 0};
  out.push_back({"two_depth_blocks_asym", must_make(d)});
  d = desc(2, 1, 12, 10, {11, 13}, {3, 2});
  d.groups = 2, d.stride = {2, 3}, d.dilation = {2, 1}, d.pad_lo = {2, 1}, d.pad_hi = {0, 1};
  out.push_back({"grouped_strided_dilated", must_make(d)});
  d = desc(2, 1, 3, 70, {3, 3}, {5, 5}); // padding past the window: taps that see nothing, outputs that see no tap
  d.pad_lo = d.pad_hi = {4, 4};
  out.push_back({"padding_past_the_window", must_make(d)});
  d = desc(1, 2, 5, 17, {40}, {7});
  d.stride = {3}, d.dilation = {2}, d.pad_lo = {5}, d.pad_hi = {1};
  out.push_back({"rank1", must_make(d)});
  d = desc(3, 1, 4, 9, {5, 4, 6}, {2, 3, 2});
  d.stride = {2, 1, 2}, d.pad_lo = {1, 0, 1}, d.pad_hi = {0, 2, 1}, d.dilation = {1, 2, 2};
  out.push_back({"rank3_mixed", must_make(d)});
  d = desc(2, 1, 64, 160, {9, 9}, {1, 1}); // many slivers: several chunks per (n, g)
  out.push_back({"pointwise_many_slivers", must_make(d)});
  d = desc(2, 3, 1, 1, {6, 5}, {3, 3}); // one channel in, one out
  d.pad_lo = d.pad_hi = {1, 1};
  out.push_back({"one_channel", must_make(d)});
  d = desc(2, 1, 32, 32, {8, 8}, {3, 3}); // depthwise
  d.groups = 32, d.pad_lo = d.pad_hi = {1, 1};
  out.push_back({"depthwise", must_make(d)});
  return out;
}

std::vector<float> run(const ConvProblem& p, const Inputs& in, bool prepared) {
  return run_cpu_plan(p, "cpu_taps", in, /*with_bias=*/!in.bias.empty(), prepared);
}

TEST(CpuTaps, RefusesWhatItCannotHold) {
  const auto refused = [](const ProblemDesc& d, const char* what) {
    const ConvProblem p = must_make(d);
    Result<Plan> plan = Plan::create(p, Device::kCpu, "cpu_taps");
    ASSERT_FALSE(plan.is_ok()) << p.name();
    EXPECT_EQ(plan.status().code(), StatusCode::kNotSupported);
    EXPECT_NE(plan.status().message().find(what), std::string::npos) << plan.status().to_string();
    EXPECT_EQ(detail::cpu_taps_rows(p), -1);
  };
  ProblemDesc d = desc(2, 1, 2, 2, {5, 5}, {2, 2});
  d.op = Op::kConvTranspose;
  refused(d, "does not run conv_transpose");
  d = desc(1, 1, 1, 1, {3}, {70000}); // a kernel longer than 65536 taps (with padding enough to hold it)
  d.pad_lo = d.pad_hi = {35000};
  refused(d, "at most 65536 taps per axis");
  refused(desc(2, 1, 1, 1, {300, 300}, {300, 300}), "at most 65536 taps that read inside x; "); // 90000 taps
  refused(desc(2, 1, 1, 1, {600, 600}, {1, 1}), "at most 262144 pixels");
  refused(desc(2, 1, 4096, 8, {200, 200}, {3, 3}), "within 67108864 floats");
}

TEST(CpuTaps, ExactOnIntegersPreparedOrNot) {
  for (const NamedProblem& np : taps_problems()) {
    SCOPED_TRACE(np.name);
    const ConvProblem& p = np.problem;
    const uint64_t seed = fresh_seed();
    const Inputs in = integer_inputs(p, seed);
    const std::vector<double> want = reference(p, in.x.data(), in.w.data(), in.bias.data());
    const std::vector<float> per_run = run(p, in, false), prepared = run(p, in, true);
    EXPECT_TRUE(exact_match(p, per_run, want)) << "seed " << seed;
    // The same packed W^T in the same order: bitwise the same with constant weights.
    EXPECT_TRUE(same_bits(per_run, prepared)) << "seed " << seed;
    Inputs nobias = in;
    nobias.bias.clear();
    EXPECT_TRUE(exact_match(p, run(p, nobias, false), reference(p, in.x.data(), in.w.data(), nullptr)));
  }
}

TEST(CpuTaps, BoundedOnRandomFloats) {
  for (const NamedProblem& np : taps_problems()) {
    SCOPED_TRACE(np.name);
    const ConvProblem& p = np.problem;
    const uint64_t seed = fresh_seed();
    const Inputs in = random_inputs(p, seed);
    const std::vector<float> got = run(p, in, false);
    EXPECT_TRUE(close_match(p, got, reference(p, in.x.data(), in.w.data(), in.bias.data()),
                            reference_magnitude(p, in.x.data(), in.w.data(), in.bias.data())))
        << "seed " << seed;
    EXPECT_TRUE(same_bits(got, run(p, in, false))) << "not deterministic, seed " << seed;
  }
}

// The rows multiplied are the pixel-taps inside x, each tap's count rounded up to mr: counted here by the
// definition, output pixel by output pixel.
TEST(CpuTaps, MultipliesOnlyThePixelTapsInsideX) {
  const int mr = detail::gemm_kernel().mr;
  for (const NamedProblem& np : taps_problems()) {
    SCOPED_TRACE(np.name);
    const ConvProblem& p = np.problem;
    int64_t rows = 0;
    for (int64_t t = 0; t < p.axis3(0).k; ++t)
      for (int64_t r = 0; r < p.axis3(1).k; ++r)
        for (int64_t s = 0; s < p.axis3(2).k; ++s) {
          const int64_t tap[3] = {t, r, s};
          int64_t inside = 0;
          for (int64_t o0 = 0; o0 < p.out3(0); ++o0)
            for (int64_t o1 = 0; o1 < p.out3(1); ++o1)
              for (int64_t o2 = 0; o2 < p.out3(2); ++o2) {
                const int64_t o[3] = {o0, o1, o2};
                bool in = true;
                for (int j = 0; j < 3; ++j) {
                  const AxisParams& a = p.axis3(j);
                  const int64_t i = o[j] * a.s + tap[j] * a.d - a.p_lo;
                  in = in && i >= 0 && i < a.i;
                }
                inside += in ? 1 : 0;
              }
          rows += (inside + mr - 1) / mr * mr;
        }
    EXPECT_EQ(detail::cpu_taps_rows(p), rows);
  }
  // C3D's conv5a (2x7x7, 3x3x3, padding 1): 1444 pixel-taps inside x of 98 * 27 = 2646.
  ProblemDesc d = desc(3, 1, 512, 512, {2, 7, 7}, {3, 3, 3});
  d.pad_lo = d.pad_hi = {1, 1, 1};
  const int64_t rows = detail::cpu_taps_rows(must_make(d));
  EXPECT_GE(rows, 1444);
  EXPECT_LE(rows, 1444 + 27 * (mr - 1));
}

// Inf and NaN in x and w meet only the taps inside x: an Inf weight on a tap that reads padding for an output leaves
// that output finite (cpu_gemm's im2col would multiply it by a padding zero: NaN), as the definition says.
TEST(CpuTaps, SpecialValuesFollowTheDefinition) {
  ProblemDesc d = desc(2, 1, 3, 20, {4, 5}, {3, 3});
  d.pad_lo = d.pad_hi = {1, 1};
  const ConvProblem p = must_make(d);
  Inputs in = integer_inputs(p, 7);
  in.w[0] = std::numeric_limits<float>::infinity();              // k 0, c 0, tap (0, 0): padding for row 0 and column 0
  in.w[9 * 3 * 5 + 4] = std::numeric_limits<float>::quiet_NaN(); // k 5, c 0, the centre tap
  in.x[7] = -std::numeric_limits<float>::infinity();
  const std::vector<double> want = reference(p, in.x.data(), in.w.data(), in.bias.data());
  const std::vector<float> got = run(p, in, false);
  ASSERT_EQ(got.size(), want.size());
  int64_t finite = 0;
  for (size_t e = 0; e < got.size(); ++e) {
    EXPECT_TRUE((std::isnan(got[e]) && std::isnan(want[e])) || static_cast<double>(got[e]) == want[e])
        << "element " << e << ": got " << got[e] << ", want " << want[e];
    finite += std::isfinite(got[e]) ? 1 : 0;
  }
  EXPECT_GT(finite, 0);
  EXPECT_TRUE(std::isfinite(got[0]));   // output (0, 0) of channel 0: its tap (0, 0) reads padding
  EXPECT_TRUE(std::isnan(got[5 * 20])); // channel 5, output (0, 0): the NaN centre tap reads x
}

// auto ranks cpu_taps by its estimate: C3D's conv5a with constant weights (45 % of im2col's products are padding)
// takes it; ResNet-50's 3x3 stride-2 layer at 56x56 (2.5 % padding) and a plain 3x3 layer at 56x56 do not.
TEST(CpuTaps, AutoTakesItWhereItPays) {
  const auto auto_row = [](const ProblemDesc& d, bool prepared) {
    const ConvProblem p = must_make(d);
    const std::vector<float> w(static_cast<size_t>(p.w_elements()), 0.25f);
    PlanOptions o;
    o.weights = prepared ? w.data() : nullptr;
    Result<Plan> plan = Plan::create(p, Device::kCpu, o);
    EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
    return plan ? std::string(plan->algorithm()) : std::string();
  };
  ProblemDesc c5 = desc(3, 1, 512, 512, {2, 7, 7}, {3, 3, 3});
  c5.pad_lo = c5.pad_hi = {1, 1, 1};
  EXPECT_EQ(auto_row(c5, true), "cpu_taps");
  ProblemDesc r07 = desc(2, 1, 128, 128, {56, 56}, {3, 3});
  r07.stride = {2, 2}, r07.pad_lo = r07.pad_hi = {1, 1};
  EXPECT_NE(auto_row(r07, true), "cpu_taps");
  ProblemDesc r03 = desc(2, 1, 64, 64, {56, 56}, {3, 3});
  r03.pad_lo = r03.pad_hi = {1, 1};
  EXPECT_NE(auto_row(r03, true), "cpu_taps");
}

} // namespace
} // namespace convarith::test
