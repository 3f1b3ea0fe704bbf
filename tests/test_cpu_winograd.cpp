// tests/test_cpu_winograd.cpp — the "cpu_winograd" row (Winograd F(2x2, 3x3), host/cpu/cpu_winograd.cpp): what it
// takes and refuses, exact results on integers and bounded ones on random floats over shapes that cross its tile
// blocks, tile rows, depth blocks and channel blocks, its measured accuracy beside cpu_gemm's, special values (which
// it hands to cpu_gemm: the results must be cpu_gemm's bit for bit), determinism, and what `auto` makes of it.
#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <vector>

#include "cpu/cpu_ops.hpp"
#include "support/support.hpp"

namespace convarith::test {
namespace {

ProblemDesc wino_desc(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w, int64_t pad) {
  ProblemDesc d;
  d.n = n, d.c = c, d.k = k, d.rank = 2;
  d.input[0] = h, d.input[1] = w;
  d.kernel[0] = d.kernel[1] = 3;
  d.pad_lo = {pad, pad}, d.pad_hi = {pad, pad};
  return d;
}

std::vector<NamedProblem> winograd_problems() {
  std::vector<NamedProblem> out;
  out.push_back({"resnet_like_28", must_make(wino_desc(1, 16, 16, 28, 28, 1))});
  out.push_back({"odd_outputs_batch2", must_make(wino_desc(2, 5, 7, 9, 11, 1))});
  out.push_back({"no_padding", must_make(wino_desc(1, 4, 6, 8, 7, 0))});
  ProblemDesc d = wino_desc(1, 6, 5, 10, 9, 0);
  d.pad_lo = {2, 0}, d.pad_hi = {0, 2};
  out.push_back({"asymmetric_padding", must_make(d)});
  out.push_back({"padding_past_the_window", must_make(wino_desc(1, 3, 4, 5, 6, 3))});
  d = wino_desc(2, 12, 9, 7, 8, 1);
  d.groups = 3;
  out.push_back({"groups", must_make(d)});
  out.push_back({"two_depth_blocks", must_make(wino_desc(1, 300, 13, 6, 6, 1))});
  out.push_back({"tile_rows_longer_than_a_block", must_make(wino_desc(1, 3, 4, 5, 150, 1))});
  out.push_back({"many_tile_blocks", must_make(wino_desc(1, 8, 8, 40, 40, 1))});
  out.push_back({"one_output", must_make(wino_desc(1, 7, 3, 3, 3, 0))});
  out.push_back({"one_output_row", must_make(wino_desc(3, 2, 5, 3, 10, 0))});
  // 16 * 384 * 384 floats of U pass the 8 MiB where the row splits output channels before tiles.
  out.push_back({"large_u_channel_blocks", must_make(wino_desc(1, 384, 384, 4, 4, 1))});
  return out;
}

Result<Plan> winograd_plan(const ConvProblem& p) {
  return Plan::create(p, Device::kCpu, "cpu_winograd");
}

std::vector<float> run(const ConvProblem& p, const char* algorithm, const Inputs& in) {
  return run_cpu_plan(p, algorithm, in, /*with_bias=*/!in.bias.empty(), /*prepared=*/false);
}

TEST(CpuWinograd, TakesTwoDimensional3x3Stride1Only) {
  EXPECT_TRUE(winograd_plan(must_make(wino_desc(1, 2, 2, 5, 5, 1))).is_ok());
  const auto refused = [](ProblemDesc d, const char* what) {
    Result<ConvProblem> p = ConvProblem::make(d);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    Result<Plan> plan = winograd_plan(*p);
    ASSERT_FALSE(plan.is_ok()) << p->name();
    EXPECT_EQ(plan.status().code(), StatusCode::kNotSupported);
    EXPECT_NE(plan.status().message().find(what), std::string::npos) << plan.status().message();
  };
  ProblemDesc d = wino_desc(1, 2, 2, 9, 9, 1);
  d.stride = {1, 2};
  refused(d, "axis W has kernel 3, stride 2, dilation 1");
  d = wino_desc(1, 2, 2, 9, 9, 2);
  d.dilation = {2, 1};
  refused(d, "axis H has kernel 3, stride 1, dilation 2");
  d = wino_desc(1, 2, 2, 9, 9, 1);
  d.kernel[1] = 5;
  refused(d, "axis W has kernel 5");
  d = wino_desc(1, 2, 2, 9, 9, 0);
  d.rank = 3, d.input[2] = 4, d.kernel[2] = 3, d.pad_lo = {0, 0, 0}, d.pad_hi = {0, 0, 0};
  refused(d, "2-D convolutions only");
  ProblemDesc one;
  one.n = 1, one.c = 2, one.k = 2, one.rank = 1, one.input[0] = 9, one.kernel[0] = 3;
  refused(one, "axis H has kernel 1");
  d = wino_desc(1, 2, 2, 9, 9, 1);
  d.op = Op::kConvTranspose;
  refused(d, "does not run conv_transpose");
  d = wino_desc(1, 2, 2, 9, 9, 1);
  d.op = Op::kMaxPool;
  refused(d, "does not run max_pool");
}

// Exact on small integers (the transforms only add and halve: every value is a multiple of 1/4 far below 2^24),
// bounded by the one acceptance rule on random floats.
TEST(CpuWinograd, MatchesTheReference) {
  for (const NamedProblem& np : winograd_problems()) {
    const ConvProblem& p = np.problem;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(np.name + " (" + p.name() + "), seed " + std::to_string(seed));
    for (bool with_bias : {true, false}) {
      const Inputs ints = integer_inputs(p, seed, with_bias);
      const std::vector<float> got = run(p, "cpu_winograd", ints);
      EXPECT_TRUE(
          exact_match(p, got, reference(p, ints.x.data(), ints.w.data(), with_bias ? ints.bias.data() : nullptr)));
    }
    const Inputs rnd = random_inputs(p, seed + 1);
    const std::vector<float> got = run(p, "cpu_winograd", rnd);
    EXPECT_TRUE(close_match(p, got, reference(p, rnd.x.data(), rnd.w.data(), rnd.bias.data()),
                            reference_magnitude(p, rnd.x.data(), rnd.w.data(), rnd.bias.data())));
  }
}

// The accuracy the docs state: on uniform [-1, 1] inputs, max |y - exact| / magnitude (magnitude = sum |x w| + |b|)
// for 64 channels at 14x14. Winograd's products are of transformed values (G g G^T up to 2.25 |g|, B^T d B up to
// 4 |d|), but each of its 16 sums has 64 terms where direct summation (cpu_gemm) adds 576 in a row: both measured
// ~1e-7 (AMD EPYC Zen 3, AVX2). The rule every row passes allows 2 * 2^-23 * (taps + 2) = 1.4e-4 for these 576
// taps; Winograd must stay below 1e-6 (and within 4x of cpu_gemm's on the same inputs).
TEST(CpuWinograd, AccuracyBesideDirectSummation) {
  const ConvProblem p = must_make(wino_desc(1, 64, 64, 14, 14, 1));
  double worst_wino = 0, worst_gemm = 0;
  for (int trial = 0; trial < 3; ++trial) {
    const Inputs in = random_inputs(p, fresh_seed());
    const std::vector<double> want = reference(p, in.x.data(), in.w.data(), in.bias.data());
    const std::vector<double> mag = reference_magnitude(p, in.x.data(), in.w.data(), in.bias.data());
    const std::vector<float> wino = run(p, "cpu_winograd", in), gemm = run(p, "cpu_gemm", in);
    ASSERT_EQ(wino.size(), want.size());
    ASSERT_EQ(gemm.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      worst_wino = std::max(worst_wino, std::abs(wino[i] - want[i]) / mag[i]);
      worst_gemm = std::max(worst_gemm, std::abs(gemm[i] - want[i]) / mag[i]);
    }
  }
  RecordProperty("winograd_max_rel_error", std::to_string(worst_wino));
  RecordProperty("gemm_max_rel_error", std::to_string(worst_gemm));
  std::cout << "max |err| / magnitude: cpu_winograd " << worst_wino << ", cpu_gemm " << worst_gemm << "\n";
  EXPECT_LT(worst_wino, 1e-6);
  EXPECT_LT(worst_wino, 4 * worst_gemm);
  EXPECT_GT(worst_wino, 0.0); // rounding happens: a zero here would mean the comparison saw nothing
}

// Inf or NaN in x or w, and inputs whose transforms overflow where the direct sums do not: cpu_gemm's results
// exactly (the row hands the problem over), never Winograd's NaN for an infinite sum.
TEST(CpuWinograd, SpecialValuesAreCpuGemmsResults) {
  const ConvProblem p = must_make(wino_desc(1, 5, 4, 9, 10, 1));
  const auto same_as_gemm = [&](const Inputs& in, const char* what) {
    const std::vector<float> wino = run(p, "cpu_winograd", in), gemm = run(p, "cpu_gemm", in);
    ASSERT_EQ(wino.size(), gemm.size());
    EXPECT_EQ(0, std::memcmp(wino.data(), gemm.data(), wino.size() * sizeof(float))) << what;
  };
  const float inf = std::numeric_limits<float>::infinity();
  Inputs in = integer_inputs(p, fresh_seed());
  in.x[37] = inf;
  same_as_gemm(in, "+Inf in x");
  in.x[37] = -inf;
  in.x[120] = inf; // both signs under some windows: NaN there, +-Inf elsewhere
  same_as_gemm(in, "+-Inf in x");
  in = integer_inputs(p, fresh_seed());
  in.x[200] = std::numeric_limits<float>::quiet_NaN();
  same_as_gemm(in, "NaN in x");
  in = integer_inputs(p, fresh_seed());
  in.w[11] = -inf;
  same_as_gemm(in, "-Inf in w");
  in = integer_inputs(p, fresh_seed());
  in.w[3] = std::numeric_limits<float>::quiet_NaN();
  same_as_gemm(in, "NaN in w");
  // x = 2e38 everywhere: B^T d B adds pairs of inputs (4e38 overflows to Inf) where every direct product is small.
  in = integer_inputs(p, fresh_seed());
  std::fill(in.x.begin(), in.x.end(), 2e38f);
  std::fill(in.w.begin(), in.w.end(), 1e-3f);
  same_as_gemm(in, "overflowing transforms");
  const std::vector<float> y = run(p, "cpu_winograd", in);
  for (float v : y)
    ASSERT_TRUE(std::isfinite(v)) << "the direct sums are finite";
}

// N = 0: nothing runs, so no workspace, however many channels (U alone would be 16 x K x C floats: 4 GiB here).
TEST(CpuWinograd, EmptyBatchNeedsNoWorkspace) {
  ProblemDesc d = wino_desc(0, 8192, 8192, 1 << 20, 1 << 20, 1);
  Result<Plan> plan = winograd_plan(must_make(d));
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_EQ(plan->workspace_bytes(), 0u);
  EXPECT_TRUE(plan->run(nullptr, nullptr, nullptr, nullptr).is_ok());
}

TEST(CpuWinograd, DeterministicRunToRun) {
  for (const NamedProblem& np : winograd_problems()) {
    const Inputs in = random_inputs(np.problem, fresh_seed());
    const std::vector<float> a = run(np.problem, "cpu_winograd", in), b = run(np.problem, "cpu_winograd", in);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << np.name;
  }
}

// The cost model: ResNet-50's 3x3 layers at batch 1 with 64 and 128 channels go to Winograd (2.25x fewer products,
// filters small enough to transform every run), a depthwise 3x3 stays on cpu_gemm's direct loops; at 512 channels
// (16 MiB of transformed filters a run) 14x14 (49 tiles) goes to Winograd and 7x7 (16 tiles) only with prepared
// weights (measured so on 2 cores of an AMD EPYC, 2026-12-04: cpu_winograd.cpp's estimate).
TEST(CpuWinograd, AutoTakesItWhereItPays) {
  const auto auto_row = [](const ProblemDesc& d) {
    Result<Plan> plan = Plan::create(must_make(d), Device::kCpu);
    EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
    return plan ? std::string(plan->algorithm()) : std::string();
  };
  EXPECT_EQ(auto_row(wino_desc(1, 64, 64, 56, 56, 1)), "cpu_winograd");
  EXPECT_EQ(auto_row(wino_desc(1, 128, 128, 28, 28, 1)), "cpu_winograd");
  EXPECT_EQ(auto_row(wino_desc(1, 512, 512, 14, 14, 1)), "cpu_winograd");
  ProblemDesc dw = wino_desc(1, 144, 144, 56, 56, 1);
  dw.groups = 144;
  EXPECT_EQ(auto_row(dw), "cpu_gemm");
  // 7x7 at 512 channels: handed w per run, transforming U costs more than Winograd saves; with prepared weights
  // Winograd's estimate is the lower.
  EXPECT_EQ(auto_row(wino_desc(1, 512, 512, 7, 7, 1)), "cpu_gemm");
  const ConvProblem r23 = must_make(wino_desc(1, 512, 512, 7, 7, 1));
  const std::vector<float> w(static_cast<size_t>(r23.w_elements()), 0.5f);
  PlanOptions o;
  o.weights = w.data();
  Result<Plan> prepared = Plan::create(r23, Device::kCpu, o);
  ASSERT_TRUE(prepared.is_ok()) << prepared.status().to_string();
  EXPECT_STREQ(prepared->algorithm(), "cpu_winograd");
}

} // namespace
} // namespace convarith::test
