// cpu_gemm_col2im's output bands (host/cpu/cpu_conv.cpp): a transposed convolution with too few (image, group,
// channel chunk) tasks for the threads (FSRCNN's deconv: one image, one output channel) splits each output plane
// into bands along its depth (or its rows when one deep), a task per band. Whatever the band count, the same bits
// as one band (each band adds the same terms in the same order), exact on integers, with and without prepared
// weights and bias; with strides larger than the kernel (rows no input reaches: the bias only), dilation, asymmetric
// padding, output padding, groups, batches, ranks 1-3 and inputs large enough for several pixel blocks; and what
// the blocking takes for real layers.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "cpu/cpu_ops.hpp"
#include "cpu/gemm.hpp"
#include "cpu/thread_pool.hpp"
#include "support/support.hpp"

namespace convarith::test {
namespace {

// Sets the band mode for the plans made in its scope.
class Bands {
public:
  explicit Bands(int mode) : saved_(detail::cpu_col2im_bands_mode()) { detail::set_cpu_col2im_bands(mode); }
  ~Bands() { detail::set_cpu_col2im_bands(saved_); }

private:
  int saved_;
};

ProblemDesc transposed(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w, int64_t r, int64_t stride, int64_t pad) {
  ProblemDesc d = conv2d_desc(n, c, k, h, w, r, pad, stride);
  d.op = Op::kConvTranspose;
  return d;
}

std::vector<NamedProblem> band_problems() {
  std::vector<NamedProblem> out;
  // FSRCNN's deconv, small: 9x9 stride 3, padding 4, output padding 2, one output channel.
  ProblemDesc d = transposed(1, 12, 1, 20, 23, 9, 3, 4); // 460 pixels x 81 taps: two pixel blocks
  d.output_padding = {2, 2, 0};
  out.push_back({"fsrcnn_like", must_make(d)});
  // 30x31 input with a 9x9 kernel: three pixel blocks of the columns (32768 / 81 = 404 pixels each).
  out.push_back({"several_pixel_blocks", must_make(transposed(1, 5, 1, 30, 31, 9, 2, 3))});
  // Stride 4 > kernel 3: output rows no input reaches (bias only) inside and between the bands.
  out.push_back({"stride_over_kernel", must_make(transposed(1, 7, 1, 9, 8, 3, 4, 0))});
  d = transposed(1, 6, 1, 11, 10, 3, 2, 0);
  d.dilation = {3, 2, 1};
  d.pad_lo = {4, 0, 0}, d.pad_hi = {1, 3, 0};
  d.output_padding = {1, 0, 0};
  out.push_back({"dilated_asymmetric", must_make(d)});
  d = transposed(2, 8, 4, 10, 9, 4, 2, 1);
  d.groups = 2;
  out.push_back({"batch2_groups2", must_make(d)});
  // Rank 3 with depth: bands along the output depth.
  d = transposed(1, 4, 1, 1, 1, 1, 1, 0);
  d.rank = 3;
  d.input = {6, 5, 4};
  d.kernel = {3, 2, 2}; // 12 taps: fewer than any x86 tile's nr of 16 or 32, so x as B (banded) on AVX2 as well
  d.stride = {2, 1, 2};
  d.pad_lo = {1, 1, 0}, d.pad_hi = {0, 1, 1};
  out.push_back({"rank3_depth", must_make(d)});
  // Rank 3, one input plane deep but a deeper output (no band axis: one band) and rank 1 (no band axis).
  d.input = {1, 5, 4};
  out.push_back({"rank3_one_input_plane", must_make(d)});
  d = transposed(1, 3, 1, 1, 1, 1, 1, 0);
  d.rank = 1;
  d.input = {40, 1, 1};
  d.kernel = {5, 1, 1};
  d.stride = {3, 1, 1};
  d.pad_lo = d.pad_hi = {0, 0, 0};
  out.push_back({"rank1", must_make(d)});
  return out;
}

std::vector<float> run_plan(const ConvProblem& p, const Inputs& in, bool with_bias, bool prepared) {
  return run_cpu_plan(p, "cpu_gemm_col2im", in, with_bias, prepared);
}

TEST(CpuCol2imBands, AnyBandCountGivesTheBitsOfOne) {
  int banded = 0, expected = 0, problems_banded = 0;
  for (const NamedProblem& np : band_problems()) {
    const ConvProblem& p = np.problem;
    SCOPED_TRACE(np.name + " " + p.name());
    // Bands need an axis (input depth > 1, or a one-deep output of several rows) and x as A: with the weights as B
    // (one image whose kchunk * taps reach the tile's nr) each task is already a whole output channel.
    const bool axis = p.axis3(0).i > 1 || (p.out3(0) == 1 && p.out3(1) > 1);
    const bool can_band = axis && !detail::cpu_conv_transpose_weights_as_b(p);
    problems_banded += can_band;
    {
      Bands off(0);
      EXPECT_EQ(detail::cpu_col2im_bands(p), 1);
    }
    for (const bool with_bias : {true, false}) {
      const uint64_t seed = fresh_seed();
      const Inputs ints = integer_inputs(p, seed), rnd = random_inputs(p, seed + 1);
      std::vector<float> one, one_rnd;
      {
        Bands off(0);
        one = run_plan(p, ints, with_bias, false);
        one_rnd = run_plan(p, rnd, with_bias, false);
      }
      EXPECT_TRUE(
          exact_match(p, one, reference(p, ints.x.data(), ints.w.data(), with_bias ? ints.bias.data() : nullptr)))
          << "seed " << seed;
      for (const int bands : {2, 3, 7, 1000}) {
        SCOPED_TRACE("bands " + std::to_string(bands));
        Bands on(bands);
        EXPECT_EQ(detail::cpu_col2im_bands(p) > 1, can_band);
        banded += detail::cpu_col2im_bands(p) > 1;
        expected += can_band;
        EXPECT_TRUE(same_bits(run_plan(p, ints, with_bias, false), one)) << "seed " << seed;
        EXPECT_TRUE(same_bits(run_plan(p, ints, with_bias, true), one)) << "seed " << seed;
        EXPECT_TRUE(same_bits(run_plan(p, rnd, with_bias, true), one_rnd)) << "seed " << seed;
      }
    }
  }
  EXPECT_EQ(banded, expected);
  // Six of the eight problems have a band axis, all with x as A where the tile is 16 or 32 wide (AVX2, AVX-512).
  if (detail::gemm_kernel().nr >= 16) {
    EXPECT_EQ(problems_banded, 6);
  }
}

// What the blocking takes on 2 threads (CI's machine): FSRCNN's deconv (one image, one output channel) is split into
// bands, DCGAN's ct2 at batch 1 (256 output channels: tasks enough) and a rank-1 layer are not.
TEST(CpuCol2imBands, WhatTheBlockingTakes) {
  if (detail::ThreadPool::instance().max_slots() != 2)
    GTEST_SKIP() << "the expected choices are those of 2 threads";
  ProblemDesc s2 = transposed(1, 56, 1, 360, 640, 9, 3, 4);
  s2.output_padding = {2, 2, 0};
  EXPECT_EQ(detail::cpu_col2im_bands(must_make(s2)), 8);
  EXPECT_EQ(detail::cpu_col2im_bands(must_make(transposed(1, 512, 256, 4, 4, 4, 2, 1))), 1);
  ProblemDesc r1 = transposed(1, 3, 1, 1, 1, 1, 1, 0);
  r1.rank = 1;
  r1.input = {4000, 1, 1};
  r1.kernel = {5, 1, 1};
  r1.pad_lo = r1.pad_hi = {0, 0, 0};
  EXPECT_EQ(detail::cpu_col2im_bands(must_make(r1)), 1);
}

} // namespace
} // namespace convarith::test
