// cpu_gemm's pixel-rows orientation (small images with many channels: Y^T = col^T * W^T, output pixels as the
// GEMM's rows and channels as its columns, host/cpu/cpu_conv.cpp): where it applies, bit for bit the results of the
// usual orientation (the same products in the same order), exact on integers, with and without prepared weights,
// bias, groups, ranks 1-3, strides, dilation, asymmetric padding, batches, pixel counts that are not a multiple of
// the register tile and channel counts that are not a multiple of a sliver; Inf and NaN weights take the direct
// loops as in the usual orientation; and what the cost model takes for real layers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "cpu/cpu_ops.hpp"
#include "cpu/thread_pool.hpp"
#include "support/support.hpp"

namespace convarith::test {
namespace {

// Sets the orientation mode for the plans made in its scope.
class Orientation {
public:
  explicit Orientation(int mode) : saved_(detail::cpu_gemm_pixel_rows()) { detail::set_cpu_gemm_pixel_rows(mode); }
  ~Orientation() { detail::set_cpu_gemm_pixel_rows(saved_); }

private:
  int saved_;
};

// Two output planes of 48 pixels (whole panels for mr = 4, 6 or 8) and three depth taps with padding 1: the first
// plane's pixels read inside x through taps 1 and 2 only, the second's through 0 and 1.
ProblemDesc depth_taps_desc() {
  ProblemDesc d = conv2d_desc(1, 20, 64, 1, 1, 1, 0);
  d.rank = 3;
  d.input = {2, 6, 8};
  d.kernel = {3, 1, 1};
  d.pad_lo = d.pad_hi = {1, 0, 0};
  return d;
}

std::vector<NamedProblem> small_image_problems() {
  std::vector<NamedProblem> out;
  // 49 pixels (not a multiple of mr), 70 channels (not a multiple of a 16- or 32-wide sliver), two depth blocks.
  out.push_back({"7x7_c40_k70", must_make(conv2d_desc(1, 40, 70, 7, 7, 3, 1))});
  out.push_back({"batch2_stride2", must_make(conv2d_desc(2, 12, 96, 9, 8, 3, 1, 2))});
  out.push_back({"groups2", must_make(conv2d_desc(1, 16, 144, 6, 6, 3, 1, 1, 2))});
  ProblemDesc d = conv2d_desc(1, 9, 80, 8, 7, 3, 0);
  d.dilation = {2, 1, 1};
  d.pad_lo = {2, 0, 0}, d.pad_hi = {1, 2, 0};
  out.push_back({"dilated_asymmetric", must_make(d)});
  d = conv2d_desc(1, 10, 64, 1, 1, 1, 0);
  d.rank = 3;
  d.input = {2, 5, 5};
  d.kernel = {3, 3, 3};
  d.pad_lo = d.pad_hi = {1, 1, 1};
  out.push_back({"rank3_like_c3d", must_make(d)});
  out.push_back({"depth_taps_half_seen", must_make(depth_taps_desc())});
  out.push_back({"first_last_rows_skipped", must_make(conv2d_desc(2, 8, 64, 12, 24, 3, 1))});
  d = conv2d_desc(3, 8, 65, 1, 1, 1, 0);
  d.rank = 1;
  d.input = {30, 1, 1};
  d.kernel = {5, 1, 1};
  d.pad_lo = d.pad_hi = {2, 0, 0};
  out.push_back({"rank1_batch3", must_make(d)});
  out.push_back({"one_pixel", must_make(conv2d_desc(1, 30, 64, 3, 3, 3, 0))});
  return out;
}

std::vector<float> run_plan(const ConvProblem& p, const Inputs& in, bool with_bias, bool prepared) {
  return run_cpu_plan(p, "cpu_gemm", in, with_bias, prepared);
}

TEST(CpuGemmOrientation, PixelRowsGiveTheUsualBits) {
  int taken = 0;
  for (const NamedProblem& np : small_image_problems()) {
    const ConvProblem& p = np.problem;
    SCOPED_TRACE(np.name + " " + p.name());
    {
      Orientation on(1);
      if (!detail::cpu_gemm_takes_pixel_rows(p))
        continue; // e.g. a 16-wide sliver's CPU would take it for fewer problems; counted below
    }
    ++taken;
    {
      Orientation off(0);
      EXPECT_FALSE(detail::cpu_gemm_takes_pixel_rows(p));
    }
    for (const bool with_bias : {true, false}) {
      const uint64_t seed = fresh_seed();
      const Inputs ints = integer_inputs(p, seed);
      std::vector<float> usual, rows, rows_prepared;
      {
        Orientation off(0);
        usual = run_plan(p, ints, with_bias, false);
      }
      {
        Orientation on(1);
        rows = run_plan(p, ints, with_bias, false);
        rows_prepared = run_plan(p, ints, with_bias, true);
      }
      EXPECT_TRUE(
          exact_match(p, rows, reference(p, ints.x.data(), ints.w.data(), with_bias ? ints.bias.data() : nullptr)))
          << "seed " << seed;
      EXPECT_TRUE(same_bits(rows, usual)) << "seed " << seed;
      EXPECT_TRUE(same_bits(rows_prepared, usual)) << "seed " << seed;
      // Random floats: rounding everywhere, the same bits still.
      const Inputs rnd = random_inputs(p, seed + 1);
      {
        Orientation off(0);
        usual = run_plan(p, rnd, with_bias, false);
      }
      {
        Orientation on(1);
        rows = run_plan(p, rnd, with_bias, true);
      }
      EXPECT_TRUE(same_bits(rows, usual)) << "seed " << seed;
    }
  }
  EXPECT_GE(taken, 5);
}

// The panels' taps that none of their pixels reads inside x through are skipped (their rows are zero): two thirds of
// the panel-taps are multiplied in depth_taps_desc, every one where no tap meets padding; the bits above are the
// usual orientation's either way.
TEST(CpuGemmOrientation, PixelRowsSkipTheTapsNoPixelSees) {
  Orientation on(1);
  const ConvProblem p = must_make(depth_taps_desc());
  ASSERT_TRUE(detail::cpu_gemm_takes_pixel_rows(p));
  EXPECT_DOUBLE_EQ(detail::cpu_gemm_pixel_rows_seen(p), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(detail::cpu_gemm_pixel_rows_seen(must_make(conv2d_desc(1, 30, 64, 3, 3, 3, 0))), 1.0);
  // 12x24 with 3x3 taps and padding 1: the panels of the first and last output rows (24 pixels: whole panels) miss
  // that side's row of taps, 1/3 of the taps of 2 rows in 12.
  EXPECT_DOUBLE_EQ(detail::cpu_gemm_pixel_rows_seen(must_make(conv2d_desc(1, 8, 64, 12, 24, 3, 1))), 17.0 / 18.0);
  Orientation off(0);
  EXPECT_EQ(detail::cpu_gemm_pixel_rows_seen(p), -1);
}

// An Inf or NaN weight: the direct loops, as in the usual orientation (found while W^T is packed, per run or once).
TEST(CpuGemmOrientation, SpecialWeightsTakeTheDirectLoops) {
  const ConvProblem p = must_make(conv2d_desc(1, 12, 70, 6, 6, 3, 1));
  Inputs in = integer_inputs(p, 5);
  in.w[17] = std::numeric_limits<float>::infinity();
  in.w[in.w.size() - 3] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> usual, rows, rows_prepared;
  {
    Orientation off(0);
    usual = run_plan(p, in, true, false);
  }
  {
    Orientation on(1);
    ASSERT_TRUE(detail::cpu_gemm_takes_pixel_rows(p));
    rows = run_plan(p, in, true, false);
    rows_prepared = run_plan(p, in, true, true);
  }
  EXPECT_TRUE(same_bits(rows, usual));
  EXPECT_TRUE(same_bits(rows_prepared, usual));
  // The padding times the Inf weight contributes nothing (the direct loops skip padded taps): finite values remain.
  int finite = 0;
  for (float v : rows)
    finite += std::isfinite(v) ? 1 : 0;
  EXPECT_GT(finite, 0);
}

// The cost model's choice on 2 threads (CI's machine; the choice depends on the thread count): C3D's conv5a (98
// pixels, 512 channels, depth 13824) takes the pixel rows, ResNet-50's 56x56 layer does not; a 1x1 read in place and
// a depthwise layer never do.
TEST(CpuGemmOrientation, WhatTheModelTakes) {
  if (detail::ThreadPool::instance().max_slots() != 2)
    GTEST_SKIP() << "the expected choices are those of 2 threads";
  ProblemDesc c5 = conv2d_desc(1, 512, 512, 1, 1, 1, 0);
  c5.rank = 3;
  c5.input = {2, 7, 7};
  c5.kernel = {3, 3, 3};
  c5.pad_lo = c5.pad_hi = {1, 1, 1};
  const ConvProblem c5p = must_make(c5);
  EXPECT_TRUE(detail::cpu_gemm_takes_pixel_rows(c5p));
  // At batch 1 the runs handed w keep the usual blocking (it reads w in place; the pixel rows would pack W^T every
  // run), the plan with prepared weights takes the pixel rows: one plan's workspace serves both, with the same bits.
  const Inputs in = random_inputs(c5p, 77);
  EXPECT_TRUE(same_bits(run_plan(c5p, in, true, false), run_plan(c5p, in, true, true)));
  EXPECT_FALSE(detail::cpu_gemm_takes_pixel_rows(must_make(conv2d_desc(1, 64, 64, 56, 56, 3, 1))));
  Orientation on(1);
  EXPECT_FALSE(detail::cpu_gemm_takes_pixel_rows(must_make(conv2d_desc(1, 256, 512, 7, 7, 1, 0))));
  EXPECT_FALSE(detail::cpu_gemm_takes_pixel_rows(must_make(conv2d_desc(1, 64, 64, 7, 7, 3, 1, 1, 64))));
}

} // namespace
} // namespace convarith::test
