// tests/test_reference.cpp — the fp64 oracle checked against numbers worked out by hand, so that
// nothing checks itself: the paper's figures with all-ones data (each output counts the taps that
// land in the input), hand-computed 1-D convolutions, transposed convolutions, groups, dilation and
// PyTorch's documented pooling rules. Two identities then tie the oracle's transposed convolution
// to its direct convolution on random problems: the zero-insertion equivalence (paper §4) and the
// adjoint identity <conv(x), y> = <x, conv_transpose(y)>. Last, the support helpers and the named
// problem lists themselves.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "support/support.hpp"

#if defined(CONVARITH_HAVE_ONEDNN)
#include "onednn/onednn_runner.hpp"
#endif

namespace convarith::test {
namespace {

using Vec = std::vector<double>;

// A 1-D problem with every attribute spelled out.
ConvProblem make_1d(Op op, int64_t c, int64_t k, int64_t groups, int64_t i, int64_t kernel, int64_t s = 1,
                    int64_t p_lo = 0, int64_t p_hi = 0, int64_t d = 1, int64_t a = 0) {
  ProblemDesc desc;
  desc.op = op;
  desc.c = c;
  desc.k = is_pool(op) ? c : k;
  desc.groups = groups;
  desc.rank = 1;
  desc.input[0] = i;
  desc.kernel[0] = kernel;
  desc.stride[0] = s;
  desc.pad_lo[0] = p_lo;
  desc.pad_hi[0] = p_hi;
  desc.dilation[0] = d;
  desc.output_padding[0] = a;
  return must_make(desc);
}

ConvProblem make_pool_1d(Op op, int64_t i, int64_t kernel, int64_t s, int64_t p, bool ceil_mode,
                         bool count_include_pad = false, int64_t d = 1) {
  ProblemDesc desc;
  desc.op = op;
  desc.rank = 1;
  desc.input[0] = i;
  desc.kernel[0] = kernel;
  desc.stride[0] = s;
  desc.pad_lo[0] = desc.pad_hi[0] = p;
  desc.dilation[0] = d;
  desc.ceil_mode = ceil_mode;
  desc.count_include_pad = count_include_pad;
  return must_make(desc);
}

Vec run_ref(const ConvProblem& p, const std::vector<float>& x, const std::vector<float>& w,
            const std::vector<float>& bias = {}) {
  EXPECT_EQ(static_cast<int64_t>(x.size()), p.x_elements()) << p.name();
  if (!is_pool(p.op())) {
    EXPECT_EQ(static_cast<int64_t>(w.size()), p.w_elements()) << p.name();
  }
  return reference(p, x.data(), w.empty() ? nullptr : w.data(), bias.empty() ? nullptr : bias.data());
}

// Outer product of per-axis tap counts: the all-ones result of a 2-D, 1-channel problem.
Vec outer(const Vec& rows, const Vec& cols) {
  Vec out;
  for (double r : rows)
    for (double c : cols)
      out.push_back(r * c);
  return out;
}

// ---- the paper's figures with all-ones input and weights ------------------------------------------

struct FigureExpectation {
  const char* name;
  int64_t in;   // input size on both axes
  Vec per_axis; // number of in-input taps for each output index along one axis
};

TEST(ReferencePaper, AllOnesCountTheInInputTaps) {
  // Worked out by hand from the figures: conv output o reads inputs o*s - p + r*d; transposed
  // output o receives input i through tap r when i*s - p + r*d = o.
  const FigureExpectation expected[] = {
      {"no_padding_no_strides", 4, {3, 3}},
      {"no_padding_no_strides_transposed", 2, {1, 2, 2, 1}},
      {"arbitrary_padding_no_strides", 5, {2, 3, 4, 4, 3, 2}},
      {"arbitrary_padding_no_strides_transposed", 6, {3, 4, 4, 4, 3}},
      {"same_padding_no_strides", 5, {2, 3, 3, 3, 2}},
      {"same_padding_no_strides_transposed", 5, {2, 3, 3, 3, 2}},
      {"full_padding_no_strides", 5, {1, 2, 3, 3, 3, 2, 1}},
      {"full_padding_no_strides_transposed", 7, {3, 3, 3, 3, 3}},
      {"no_padding_strides", 5, {3, 3}},
      {"no_padding_strides_transposed", 2, {1, 1, 2, 1, 1}},
      {"padding_strides", 5, {2, 3, 2}},
      {"padding_strides_transposed", 3, {1, 2, 1, 2, 1}},
      {"padding_strides_odd", 6, {2, 3, 3}},
      {"padding_strides_odd_transposed", 3, {1, 2, 1, 2, 1, 1}},
      {"dilation", 7, {3, 3, 3}},
  };
  const std::vector<NamedProblem> figures = paper_problems();
  ASSERT_EQ(figures.size(), std::size(expected));
  for (size_t f = 0; f < figures.size(); ++f) {
    const FigureExpectation& e = expected[f];
    const ConvProblem& p = figures[f].problem;
    SCOPED_TRACE(figures[f].name);
    EXPECT_EQ(figures[f].name, e.name);
    ASSERT_EQ(p.rank(), 2);
    EXPECT_EQ(p.c(), 1);
    EXPECT_EQ(p.k(), 1);
    EXPECT_EQ(p.axis(0).i, e.in);
    EXPECT_EQ(p.axis(1).i, e.in);
    const int64_t o = static_cast<int64_t>(e.per_axis.size());
    ASSERT_EQ(p.out(0), o);
    ASSERT_EQ(p.out(1), o);
    const std::vector<float> ones_x(static_cast<size_t>(p.x_elements()), 1.0f);
    const std::vector<float> ones_w(static_cast<size_t>(p.w_elements()), 1.0f);
    EXPECT_EQ(run_ref(p, ones_x, ones_w), outer(e.per_axis, e.per_axis));
  }
}

TEST(ReferencePaper, TransposedFiguresInvertTheConvSizes) {
  // Each *_transposed figure maps the conv's output size back to its input size (paper §4).
  const std::vector<NamedProblem> figures = paper_problems();
  for (size_t f = 0; f + 1 < figures.size(); f += 2) {
    const ConvProblem& conv = figures[f].problem;
    const ConvProblem& tr = figures[f + 1].problem;
    SCOPED_TRACE(figures[f].name);
    EXPECT_EQ(figures[f + 1].name, figures[f].name + "_transposed");
    EXPECT_EQ(conv.op(), Op::kConv);
    EXPECT_EQ(tr.op(), Op::kConvTranspose);
    for (int j = 0; j < 2; ++j) {
      EXPECT_EQ(tr.axis(j).i, conv.out(j));
      EXPECT_EQ(tr.out(j), conv.axis(j).i);
    }
  }
  EXPECT_EQ(figures.back().problem.axis(0).d, 2);
}

// ---- hand-computed direct and transposed convolutions ----------------------------------------------

TEST(ReferenceConv, OneDimensionalByHand) {
  // y[o] = sum_r x[o + r] w[r] with distinct powers of ten so every tap is visible in the digits.
  const ConvProblem p = make_1d(Op::kConv, 1, 1, 1, 5, 3);
  EXPECT_EQ(run_ref(p, {1, 2, 3, 4, 5}, {1, 10, 100}), (Vec{321, 432, 543}));
  EXPECT_EQ(run_ref(p, {1, 2, 3, 4, 5}, {1, 10, 100}, {0.5f}), (Vec{321.5, 432.5, 543.5}));
  // Padding 1 each side, stride 2: windows start at -1, 1, 3.
  const ConvProblem ps = make_1d(Op::kConv, 1, 1, 1, 5, 3, 2, 1, 1);
  EXPECT_EQ(run_ref(ps, {1, 2, 3, 4, 5}, {1, 10, 100}), (Vec{210, 432, 54}));
}

TEST(ReferenceConv, DilationByHand) {
  // d=2: taps o, o+2, o+4.
  const ConvProblem p = make_1d(Op::kConv, 1, 1, 1, 7, 3, 1, 0, 0, 2);
  ASSERT_EQ(p.out(0), 3);
  EXPECT_EQ(run_ref(p, {1, 2, 3, 4, 5, 6, 7}, {1, 10, 100}), (Vec{531, 642, 753}));
  // d=2, stride 3, pad 2: windows read {-2,0,2}, {1,3,5}, {4,6,8}.
  const ConvProblem q = make_1d(Op::kConv, 1, 1, 1, 7, 3, 3, 2, 2, 2);
  ASSERT_EQ(q.out(0), 3);
  EXPECT_EQ(run_ref(q, {1, 2, 3, 4, 5, 6, 7}, {1, 10, 100}), (Vec{310, 642, 75}));
}

TEST(ReferenceConv, ChannelsAndGroupsByHand) {
  // C=4, K=2, groups=2, 1x1: output 0 reads channels 0-1, output 1 reads channels 2-3.
  // Weights are K x C/g: [[1, 10], [100, 1000]].
  const ConvProblem p = make_1d(Op::kConv, 4, 2, 2, 1, 1);
  EXPECT_EQ(run_ref(p, {1, 2, 3, 4}, {1, 10, 100, 1000}), (Vec{21, 4300}));
  // Without groups every output reads all four channels: weights K x C.
  const ConvProblem full = make_1d(Op::kConv, 4, 2, 1, 1, 1);
  EXPECT_EQ(run_ref(full, {1, 2, 3, 4}, {1, 10, 100, 1000, 2, 20, 200, 2000}), (Vec{4321, 8642}));
  // Depthwise with two taps: channel c is convolved with its own kernel.
  const ConvProblem dw = make_1d(Op::kConv, 2, 2, 2, 3, 2);
  EXPECT_EQ(run_ref(dw, {1, 2, 3, 4, 5, 6}, {1, 10, 100, 1000}), (Vec{21, 32, 5400, 6500}));
  // N=2: the batch index selects the image, weights are shared.
  ProblemDesc desc = p.resolved();
  desc.n = 2;
  const ConvProblem batched = must_make(desc);
  EXPECT_EQ(run_ref(batched, {1, 2, 3, 4, 5, 6, 7, 8}, {1, 10, 100, 1000}), (Vec{21, 4300, 65, 8700}));
}

TEST(ReferenceConv, TwoDimensionalLayoutByHand) {
  // 3x3 input 1..9 (row major), 2x2 kernel [[1, 10], [100, 1000]]: y[h][w] = x[h][w] + 10 x[h][w+1]
  // + 100 x[h+1][w] + 1000 x[h+1][w+1].
  ProblemDesc desc;
  desc.input = {3, 3, 1};
  desc.kernel = {2, 2, 1};
  const ConvProblem p = must_make(desc);
  EXPECT_EQ(run_ref(p, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 10, 100, 1000}), (Vec{5421, 6532, 8754, 9865}));
}

TEST(ReferenceTranspose, OneDimensionalByHand) {
  // Scatter view: input i adds x[i] * w[r] at output i*s - p + r. x = [1, 2, 3], w = [1, 10, 100],
  // s = 2: contributions at {0,1,2}, {2,3,4}, {4,5,6}.
  const ConvProblem p = make_1d(Op::kConvTranspose, 1, 1, 1, 3, 3, 2);
  ASSERT_EQ(p.out(0), 7);
  EXPECT_EQ(run_ref(p, {1, 2, 3}, {1, 10, 100}), (Vec{1, 10, 102, 20, 203, 30, 300}));
  // Padding 1 crops one output at each end.
  const ConvProblem cropped = make_1d(Op::kConvTranspose, 1, 1, 1, 3, 3, 2, 1, 1);
  ASSERT_EQ(cropped.out(0), 5);
  EXPECT_EQ(run_ref(cropped, {1, 2, 3}, {1, 10, 100}), (Vec{10, 102, 20, 203, 30}));
  // Output padding 1 gives back the last position the crop took.
  const ConvProblem outpad = make_1d(Op::kConvTranspose, 1, 1, 1, 3, 3, 2, 1, 1, 1, 1);
  ASSERT_EQ(outpad.out(0), 6);
  EXPECT_EQ(run_ref(outpad, {1, 2, 3}, {1, 10, 100}, {0.25f}), (Vec{10.25, 102.25, 20.25, 203.25, 30.25, 300.25}));
  // Stride larger than the kernel leaves gaps that receive only the bias.
  const ConvProblem gaps = make_1d(Op::kConvTranspose, 1, 1, 1, 2, 2, 3);
  ASSERT_EQ(gaps.out(0), 5);
  EXPECT_EQ(run_ref(gaps, {1, 2}, {1, 10}, {7}), (Vec{8, 17, 7, 9, 27}));
}

TEST(ReferenceTranspose, DilationByHand) {
  // d = 2, s = 1: x0 lands on 0, 2, 4 and x1 on 1, 3, 5.
  const ConvProblem p = make_1d(Op::kConvTranspose, 1, 1, 1, 2, 3, 1, 0, 0, 2);
  ASSERT_EQ(p.out(0), 6);
  EXPECT_EQ(run_ref(p, {1, 2}, {1, 10, 100}), (Vec{1, 2, 10, 20, 100, 200}));
}

TEST(ReferenceTranspose, WeightLayoutAndGroupsByHand) {
  // Weights are C x K/g: w[c][k] = [[1, 10], [100, 1000]]; y[k] = sum_c x[c] w[c][k].
  const ConvProblem p = make_1d(Op::kConvTranspose, 2, 2, 1, 2, 1);
  EXPECT_EQ(run_ref(p, {1, 2, 3, 4}, {1, 10, 100, 1000}), (Vec{301, 402, 3010, 4020}));
  // groups = 2, C = 4, K = 2: weights 4 x 1; output 0 gathers channels 0-1, output 1 channels 2-3.
  const ConvProblem g = make_1d(Op::kConvTranspose, 4, 2, 2, 1, 1);
  EXPECT_EQ(run_ref(g, {1, 2, 3, 4}, {1, 10, 100, 1000}), (Vec{21, 4300}));
  // groups = 2, C = 2, K = 4: weights 2 x 2; channel 0 feeds outputs 0-1, channel 1 outputs 2-3.
  const ConvProblem h = make_1d(Op::kConvTranspose, 2, 4, 2, 1, 1);
  EXPECT_EQ(run_ref(h, {5, 7}, {1, 2, 3, 4}), (Vec{5, 10, 21, 28}));
}

// ---- pooling, as PyTorch documents it ---------------------------------------------------------------

TEST(ReferencePool, MaxPoolByHand) {
  EXPECT_EQ(run_ref(make_pool_1d(Op::kMaxPool, 6, 2, 2, 0, false), {1, 3, 2, 5, 4, -1}, {}), (Vec{3, 5, 4}));
  // ceil_mode keeps the partial last window [4] of a length-5 input.
  EXPECT_EQ(run_ref(make_pool_1d(Op::kMaxPool, 5, 2, 2, 0, false), {1, 3, 2, 5, 4}, {}), (Vec{3, 5}));
  EXPECT_EQ(run_ref(make_pool_1d(Op::kMaxPool, 5, 2, 2, 0, true), {1, 3, 2, 5, 4}, {}), (Vec{3, 5, 4}));
  // Padding never wins (PyTorch pads max pooling with -inf): all-negative input.
  EXPECT_EQ(run_ref(make_pool_1d(Op::kMaxPool, 3, 3, 1, 1, false), {-5, -7, -4}, {}), (Vec{-5, -4, -4}));
  // Dilation 3: taps o and o+3.
  EXPECT_EQ(run_ref(make_pool_1d(Op::kMaxPool, 7, 2, 1, 0, false, false, 3), {1, 9, 2, 8, 3, 7, 4}, {}),
            (Vec{8, 9, 7, 8}));
}

TEST(ReferencePool, AvgPoolCountIncludePad) {
  // x = 1..5, window 3, stride 2, pad 1: windows {-1,0,1}, {1,2,3}, {3,4,5} hold sums 3, 9, 9.
  const std::vector<float> x{1, 2, 3, 4, 5};
  EXPECT_EQ(run_ref(make_pool_1d(Op::kAvgPool, 5, 3, 2, 1, false, true), x, {}), (Vec{1, 3, 3}));
  EXPECT_EQ(run_ref(make_pool_1d(Op::kAvgPool, 5, 3, 2, 1, false, false), x, {}), (Vec{1.5, 3, 4.5}));
}

TEST(ReferencePool, AvgPoolCeilModeWindowPastThePaddedExtent) {
  // x = 1..6, window 3, stride 2, pad 1, ceil_mode: 4 windows starting at -1, 1, 3, 5. The last one
  // covers 5 (input), 6 (right padding) and 7 (past the padded extent): PyTorch divides by 2 with
  // count_include_pad (taps in [-1, 7)) and by 1 without.
  const std::vector<float> x{1, 2, 3, 4, 5, 6};
  const ConvProblem incl = make_pool_1d(Op::kAvgPool, 6, 3, 2, 1, true, true);
  ASSERT_EQ(incl.out(0), 4);
  EXPECT_EQ(run_ref(incl, x, {}), (Vec{1, 3, 5, 3}));
  EXPECT_EQ(run_ref(make_pool_1d(Op::kAvgPool, 6, 3, 2, 1, true, false), x, {}), (Vec{1.5, 3, 5, 6}));
  // Without ceil_mode the last window is dropped.
  EXPECT_EQ(run_ref(make_pool_1d(Op::kAvgPool, 6, 3, 2, 1, false, true), x, {}), (Vec{1, 3, 5}));
}

TEST(ReferencePool, AvgPoolTwoDimensional) {
  // 3x3 ones, window 3x3, pad 1: corners see 4 inputs, edges 6, the centre 9.
  ProblemDesc desc;
  desc.op = Op::kAvgPool;
  desc.input = {3, 3, 1};
  desc.kernel = {3, 3, 1};
  desc.pad_lo = {1, 1, 0};
  desc.pad_hi = {1, 1, 0};
  desc.count_include_pad = true;
  const std::vector<float> ones(9, 1.0f);
  const double c = 4.0 / 9, e = 6.0 / 9;
  EXPECT_EQ(run_ref(must_make(desc), ones, {}), (Vec{c, e, c, e, 1, e, c, e, c}));
  desc.count_include_pad = false;
  EXPECT_EQ(run_ref(must_make(desc), ones, {}), Vec(9, 1.0));
  // Channels pool independently: channel 1 holds twice channel 0.
  desc.c = desc.k = 2;
  std::vector<float> two(18, 1.0f);
  std::fill(two.begin() + 9, two.end(), 2.0f);
  Vec want(9, 1.0);
  want.insert(want.end(), 9, 2.0);
  EXPECT_EQ(run_ref(must_make(desc), two, {}), want);
}

TEST(ReferencePool, EveryAcceptedWindowSeesTheInput) {
  // The arithmetic accepts a pooling axis only if every window holds at least one input tap (and a
  // ceil-mode window starts inside the input or the left padding); otherwise max pooling would
  // have nothing to take. Enumerate small 1-D axes and check each accepted one with the oracle.
  int accepted = 0;
  for (int64_t i = 1; i <= 7; ++i)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t d = 1; d <= 3; ++d)
          for (int64_t lo = 0; lo <= effective_kernel(k, d); ++lo)
            for (int64_t hi = 0; hi <= effective_kernel(k, d); ++hi)
              for (bool ceil_mode : {false, true}) {
                ProblemDesc desc;
                desc.op = Op::kMaxPool;
                desc.rank = 1;
                desc.input[0] = i;
                desc.kernel[0] = k;
                desc.stride[0] = s;
                desc.dilation[0] = d;
                desc.pad_lo[0] = lo;
                desc.pad_hi[0] = hi;
                desc.ceil_mode = ceil_mode;
                const Result<ConvProblem> p = ConvProblem::make(desc);
                if (!p.is_ok())
                  continue;
                ++accepted;
                const std::vector<float> x(static_cast<size_t>(i), 1.0f);
                const Vec y = reference(*p, x.data(), nullptr, nullptr);
                for (size_t o = 0; o < y.size(); ++o)
                  ASSERT_EQ(y[o], 1.0) << p->name() << " window " << o << " has no input tap";
                ASSERT_LT((p->out(0) - 1) * s - lo, i) << p->name() << ": the last window starts in the right padding";
              }
  EXPECT_GT(accepted, 1000);
}

TEST(ReferenceMagnitude, SumsAbsoluteProductsAndBias) {
  const ConvProblem p = make_1d(Op::kConv, 1, 1, 1, 3, 2);
  const std::vector<float> x{1, -2, 3}, w{-1, 10}, b{-0.5f};
  EXPECT_EQ(reference(p, x.data(), w.data(), b.data()), (Vec{-21.5, 31.5}));
  EXPECT_EQ(reference_magnitude(p, x.data(), w.data(), b.data()), (Vec{21.5, 32.5}));
  const ConvProblem mp = make_pool_1d(Op::kMaxPool, 3, 2, 1, 0, false);
  const std::vector<float> px{1, -4, 2};
  EXPECT_EQ(reference_magnitude(mp, px.data(), nullptr, nullptr), (Vec{4, 4}));
  EXPECT_EQ(reference(mp, px.data(), nullptr, nullptr), (Vec{1, 2}));
}

// ---- identities tying the transposed convolution to the direct one -----------------------------------

// The paper's equivalence, built from its definition: a transposed convolution equals the
// stride-1 direct convolution (same dilation) over its input with s-1 zeros inserted between
// elements, padded by k'-1-p_lo at the start and k'-1-p_hi+a at the end (a negative padding crops),
// with the kernel flipped and the weights' channel roles swapped (C x K/g becomes K x C/g).
Vec zero_insertion_equivalent(const ConvProblem& t, const Inputs& in) {
  const int64_t N = t.n(), C = t.c(), K = t.k(), G = t.groups(), Cg = C / G, Kg = K / G;
  std::array<int64_t, 3> len{}, lo{}, stride{}, in_size{}, ker{};
  ProblemDesc conv;
  conv.op = Op::kConv;
  conv.n = N;
  conv.c = C;
  conv.k = K;
  conv.groups = G;
  conv.rank = t.rank();
  for (int j = 0; j < 3; ++j) {
    const AxisParams& a = t.axis3(j);
    const int64_t eff = effective_kernel(a.k, a.d);
    lo[j] = eff - 1 - a.p_lo;
    const int64_t hi = eff - 1 - a.p_hi + a.a;
    len[j] = (a.i - 1) * a.s + 1 + lo[j] + hi;
    stride[j] = a.s;
    in_size[j] = a.i;
    ker[j] = a.k;
    const int jj = j - (3 - t.rank());
    if (jj >= 0) {
      conv.input[jj] = len[j];
      conv.kernel[jj] = a.k;
      conv.dilation[jj] = a.d;
    }
  }
  // Zero-inserted, padded input: element j of an axis holds x[(j - lo)/s] when that divides.
  std::vector<float> xz(static_cast<size_t>(N * C * len[0] * len[1] * len[2]), 0.0f);
  auto source = [&](int j, int64_t pos) -> int64_t {
    const int64_t q = pos - lo[j];
    if (q < 0 || q % stride[j] != 0 || q / stride[j] >= in_size[j])
      return -1;
    return q / stride[j];
  };
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t d = 0; d < len[0]; ++d)
        for (int64_t h = 0; h < len[1]; ++h)
          for (int64_t w = 0; w < len[2]; ++w) {
            const int64_t sd = source(0, d), sh = source(1, h), sw = source(2, w);
            if (sd < 0 || sh < 0 || sw < 0)
              continue;
            xz[static_cast<size_t>((((n * C + c) * len[0] + d) * len[1] + h) * len[2] + w)] =
                in.x[static_cast<size_t>((((n * C + c) * in_size[0] + sd) * in_size[1] + sh) * in_size[2] + sw)];
          }
  // Flipped kernel, K x C/g: wf[k][cl][r] = w[g*Cg + cl][k - g*Kg][k_size - 1 - r].
  const int64_t taps = ker[0] * ker[1] * ker[2];
  std::vector<float> wf(static_cast<size_t>(K * Cg * taps));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t cl = 0; cl < Cg; ++cl)
      for (int64_t r = 0; r < ker[0]; ++r)
        for (int64_t s = 0; s < ker[1]; ++s)
          for (int64_t u = 0; u < ker[2]; ++u) {
            const int64_t g = k / Kg, c = g * Cg + cl;
            const int64_t src =
                (((c * Kg + (k - g * Kg)) * ker[0] + (ker[0] - 1 - r)) * ker[1] + (ker[1] - 1 - s)) * ker[2] +
                (ker[2] - 1 - u);
            wf[static_cast<size_t>((((k * Cg + cl) * ker[0] + r) * ker[1] + s) * ker[2] + u)] =
                in.w[static_cast<size_t>(src)];
          }
  const ConvProblem cp = must_make(conv);
  for (int j = 0; j < t.rank(); ++j)
    EXPECT_EQ(cp.out(j), t.out(j)) << "axis " << j;
  if (cp.y_elements() != t.y_elements())
    return {};
  return reference(cp, xz.data(), wf.data(), in.bias.empty() ? nullptr : in.bias.data());
}

std::vector<NamedProblem> transposed_cases(uint64_t seed) {
  std::vector<NamedProblem> cases;
  for (const auto& list : {paper_problems(), edge_problems(), random_problems(seed, 48)})
    for (const NamedProblem& np : list)
      if (np.problem.op() == Op::kConvTranspose)
        cases.push_back(np);
  return cases;
}

TEST(ReferenceIdentity, TransposedEqualsConvOverZeroInsertedInput) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::vector<NamedProblem> cases = transposed_cases(seed);
  ASSERT_GE(cases.size(), 20u);
  for (const NamedProblem& np : cases) {
    SCOPED_TRACE(np.name);
    const Inputs in = integer_inputs(np.problem, seed);
    const Vec gather = reference(np.problem, in.x.data(), in.w.data(), in.bias.data());
    EXPECT_EQ(zero_insertion_equivalent(np.problem, in), gather);
  }
}

// The transposed convolution with the conv's (k, s, p, d) and the same weight array is the adjoint
// of the conv: <conv(x), y> = <x, conv_transpose(y)>, with output padding recovering the rows the
// conv's floor dropped. Integer data makes both dot products exact.
TEST(ReferenceIdentity, TransposedIsTheAdjointOfConv) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  int checked = 0;
  std::vector<NamedProblem> cases = edge_problems();
  for (const NamedProblem& np : random_problems(seed, 64))
    cases.push_back(np);
  for (const NamedProblem& np : cases) {
    const ConvProblem& p = np.problem;
    if (p.op() != Op::kConv || p.n() == 0)
      continue;
    SCOPED_TRACE(np.name);
    ProblemDesc t = p.resolved();
    t.op = Op::kConvTranspose;
    t.c = p.k();
    t.k = p.c();
    for (int j = 0; j < p.rank(); ++j) {
      const AxisParams& a = p.axis(j);
      t.input[static_cast<size_t>(j)] = p.out(j);
      t.output_padding[static_cast<size_t>(j)] = (a.i + a.p_lo + a.p_hi - effective_kernel(a.k, a.d)) % a.s;
    }
    Result<ConvProblem> tr = ConvProblem::make(t);
    // a < s always holds, so the arithmetic must accept the adjoint problem.
    ASSERT_TRUE(tr.is_ok()) << tr.status().to_string();
    ASSERT_EQ(tr->x_elements(), p.y_elements());
    ASSERT_EQ(tr->y_elements(), p.x_elements());
    ASSERT_EQ(tr->w_elements(), p.w_elements());
    const Inputs in = integer_inputs(p, seed, false);
    const Inputs dual = integer_inputs(*tr, seed + 1, false);
    const Vec cx = reference(p, in.x.data(), in.w.data(), nullptr);
    const Vec ty = reference(*tr, dual.x.data(), in.w.data(), nullptr);
    double lhs = 0, rhs = 0;
    for (size_t e = 0; e < cx.size(); ++e)
      lhs += cx[e] * dual.x[e];
    for (size_t e = 0; e < ty.size(); ++e)
      rhs += ty[e] * in.x[e];
    EXPECT_EQ(lhs, rhs);
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

// ---- a second, independent oracle ---------------------------------------------------------------------------

#if defined(CONVARITH_HAVE_ONEDNN)
// oneDNN shares no code with the oracle: agreeing on every list (integers exactly, averages within
// rounding) checks the oracle's semantics (transposed layout, groups, pooling rules) from outside.
TEST(ReferenceVsOneDnn, EveryListAgrees) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<NamedProblem> cases = paper_problems();
  for (const auto& list : {smoke_problems(), edge_problems(), random_problems(seed, 40)})
    cases.insert(cases.end(), list.begin(), list.end());
  int compared = 0, declined = 0;
  for (const NamedProblem& np : cases) {
    const ConvProblem& p = np.problem;
    if (p.y_elements() == 0)
      continue;
    SCOPED_TRACE(np.name);
    Result<onednn::Runner> runner = onednn::Runner::create(p);
    if (!runner.is_ok()) {
      // The adapter declines what oneDNN cannot express (documented in onednn_runner.hpp).
      EXPECT_EQ(runner.status().code(), StatusCode::kNotSupported) << runner.status().to_string();
      ++declined;
      continue;
    }
    const Inputs in = integer_inputs(p, seed);
    const float* w = in.w.empty() ? nullptr : in.w.data();
    const float* b = in.bias.empty() ? nullptr : in.bias.data();
    std::vector<float> y(static_cast<size_t>(p.y_elements()));
    poison(y);
    const Status s = runner->run(in.x.data(), w, b, y.data());
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    const Vec want = reference(p, in.x.data(), w, b);
    if (p.op() == Op::kAvgPool) {
      EXPECT_TRUE(close_match(p, y, want, reference_magnitude(p, in.x.data(), w, b)));
    } else {
      EXPECT_TRUE(exact_match(p, y, want));
    }
    ++compared;
  }
  RecordProperty("compared", compared);
  RecordProperty("declined", declined);
  EXPECT_GT(compared, 3 * declined) << "oneDNN declined " << declined << " of " << compared + declined;
}
#endif

// ---- the support helpers -----------------------------------------------------------------------------

TEST(Support, InputsAreDeterministicNonzeroAndInRange) {
  const ConvProblem p = edge_problems().front().problem;
  const Inputs a = integer_inputs(p, 42), b = integer_inputs(p, 42), c = integer_inputs(p, 43);
  EXPECT_EQ(a.x, b.x);
  EXPECT_EQ(a.w, b.w);
  EXPECT_EQ(a.bias, b.bias);
  EXPECT_NE(a.x, c.x);
  ASSERT_EQ(static_cast<int64_t>(a.x.size()), p.x_elements());
  ASSERT_EQ(static_cast<int64_t>(a.w.size()), p.w_elements());
  ASSERT_EQ(static_cast<int64_t>(a.bias.size()), p.k());
  std::set<float> seen;
  for (float v : a.x) {
    EXPECT_TRUE(v != 0 && std::fabs(v) <= 3 && v == std::round(v)) << v;
    seen.insert(v);
  }
  EXPECT_GE(seen.size(), 4u); // both signs, several magnitudes
  for (float v : a.bias)
    EXPECT_TRUE(v != 0 && std::fabs(v) <= 8 && v == std::round(v)) << v;
  EXPECT_TRUE(integer_inputs(p, 1, false).bias.empty());

  const Inputs r = random_inputs(p, 7), r2 = random_inputs(p, 7);
  EXPECT_EQ(r.x, r2.x);
  for (float v : r.x)
    EXPECT_TRUE(v != 0 && v >= -1 && v <= 1) << v;
  for (float v : r.w)
    EXPECT_TRUE(v != 0 && v >= -1 && v <= 1) << v;
  ASSERT_EQ(static_cast<int64_t>(r.bias.size()), p.k());

  const ConvProblem pool = make_pool_1d(Op::kMaxPool, 6, 2, 2, 0, false);
  EXPECT_TRUE(integer_inputs(pool, 1).w.empty());
  EXPECT_TRUE(integer_inputs(pool, 1).bias.empty());
  EXPECT_NE(fresh_seed(), fresh_seed());
}

TEST(Support, ComparisonsCatchWrongAndUnwrittenElements) {
  const ConvProblem p = make_1d(Op::kConv, 1, 1, 1, 4, 2); // y has 3 elements
  std::vector<float> y(3);
  poison(y);
  for (float v : y)
    EXPECT_TRUE(std::isnan(v));
  const Vec want{1, 2, 3};
  EXPECT_FALSE(exact_match(p, y, want));
  y = {1, 2, 3};
  EXPECT_TRUE(exact_match(p, y, want));
  y[2] = 4;
  const ::testing::AssertionResult bad = exact_match(p, y, want);
  EXPECT_FALSE(bad);
  EXPECT_NE(std::string(bad.message()).find("(0, 0, 2)"), std::string::npos) << bad.message();
  EXPECT_FALSE(exact_match(p, {1, 2}, want));

  // taps = 2, so the bound is 2 * eps * 4 * magnitude.
  const double eps = std::numeric_limits<float>::epsilon();
  const Vec mag{100, 100, 100};
  y = {1, 2, 3};
  y[1] = static_cast<float>(2 + 0.5 * 8 * eps * 100);
  EXPECT_TRUE(close_match(p, y, want, mag));
  y[1] = static_cast<float>(2 + 1.5 * 8 * eps * 100);
  EXPECT_FALSE(close_match(p, y, want, mag));
  y[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(close_match(p, y, want, mag));

  const ErrorStats s = error_stats({1, 2.5f, 3}, want, {1, 5, 1});
  EXPECT_EQ(s.max_abs, 0.5);
  EXPECT_EQ(s.max_rel, 0.1);
  EXPECT_TRUE(std::isinf(error_stats({std::numeric_limits<float>::quiet_NaN(), 2, 3}, want, mag).max_abs));
}

TEST(Support, ParamName) {
  EXPECT_EQ(param_name("conv_n1_c64_k64_i56x56_r3x3"), "conv_n1_c64_k64_i56x56_r3x3");
  EXPECT_EQ(param_name("a-b.c d"), "a_b_c_d");
}

// ---- the named problem lists ---------------------------------------------------------------------------

// Multiply-accumulates (window taps for pooling), counted from the definitions.
int64_t work(const ConvProblem& p) {
  if (is_pool(p.op()))
    return p.n() * p.c() * p.kernel_spatial() * p.out_spatial();
  if (p.op() == Op::kConvTranspose)
    return p.n() * p.c() * (p.k() / p.groups()) * p.kernel_spatial() * p.in_spatial();
  return p.n() * p.k() * (p.c() / p.groups()) * p.kernel_spatial() * p.out_spatial();
}

void expect_unique_identifier_names(const std::vector<NamedProblem>& list) {
  std::set<std::string> names;
  for (const NamedProblem& np : list) {
    EXPECT_EQ(param_name(np.name), np.name);
    EXPECT_TRUE(names.insert(np.name).second) << "duplicate " << np.name;
  }
}

TEST(ProblemLists, SmokeHasEveryOp) {
  const std::vector<NamedProblem> smoke = smoke_problems();
  expect_unique_identifier_names(smoke);
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool})
    EXPECT_TRUE(std::any_of(smoke.begin(), smoke.end(), [&](const NamedProblem& np) { return np.problem.op() == op; }))
        << op_name(op);
}

TEST(ProblemLists, EdgeCoversDesignSection5) {
  const std::vector<NamedProblem> edge = edge_problems();
  expect_unique_identifier_names(edge);
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool}) {
    SCOPED_TRACE(op_name(op));
    auto any = [&](auto pred) {
      return std::any_of(edge.begin(), edge.end(),
                         [&](const NamedProblem& np) { return np.problem.op() == op && pred(np.problem); });
    };
    auto any_axis = [&](auto pred) {
      return any([&](const ConvProblem& p) {
        for (int j = 0; j < p.rank(); ++j)
          if (pred(p.axis(j), p.out(j)))
            return true;
        return false;
      });
    };
    EXPECT_TRUE(any([](const ConvProblem& p) { return p.kernel_spatial() == 1; })) << "1x1";
    EXPECT_TRUE(any_axis([](const AxisParams& a, int64_t) { return a.k > a.i && a.p_lo > 0; })) << "k > i";
    EXPECT_TRUE(any_axis([](const AxisParams& a, int64_t) { return a.s > a.k; })) << "stride > kernel";
    EXPECT_TRUE(any_axis([](const AxisParams& a, int64_t) { return a.d == 2; })) << "dilation 2";
    EXPECT_TRUE(any_axis([](const AxisParams& a, int64_t) { return a.d == 3; })) << "dilation 3";
    EXPECT_TRUE(any_axis([](const AxisParams& a, int64_t) { return a.p_lo != a.p_hi; })) << "asymmetric";
    EXPECT_TRUE(any([](const ConvProblem& p) { return p.c() == 1; })) << "C=1";
    EXPECT_TRUE(any([](const ConvProblem& p) { return p.rank() == 1; })) << "rank 1";
    EXPECT_TRUE(any([](const ConvProblem& p) { return p.rank() == 3; })) << "rank 3";
    EXPECT_TRUE(any([](const ConvProblem& p) { return p.n() == 0 && p.y_elements() == 0; })) << "N=0";
    if (!is_pool(op)) {
      EXPECT_TRUE(any([](const ConvProblem& p) { return p.groups() > 1 && p.groups() < p.c(); })) << "groups";
      EXPECT_TRUE(any([](const ConvProblem& p) { return p.groups() == p.c() && p.groups() > 1; })) << "depthwise";
      EXPECT_TRUE(any([](const ConvProblem& p) { return p.k() == 7; })) << "K=7";
      EXPECT_TRUE(any([](const ConvProblem& p) { return p.k() == 33; })) << "K=33";
    } else {
      EXPECT_TRUE(any([](const ConvProblem& p) { return p.ceil_mode(); })) << "ceil_mode";
    }
    if (op == Op::kConvTranspose) {
      EXPECT_TRUE(any_axis([](const AxisParams& a, int64_t) { return a.a > 0; })) << "output padding";
      EXPECT_TRUE(any_axis([](const AxisParams& a, int64_t) { return a.p_lo > effective_kernel(a.k, a.d) - 1; }))
          << "cropping pads";
    }
    if (op == Op::kAvgPool) {
      EXPECT_TRUE(any([](const ConvProblem& p) { return p.count_include_pad(); })) << "count_include_pad";
      EXPECT_TRUE(any([](const ConvProblem& p) { return p.ceil_mode() && p.count_include_pad(); }));
    }
  }
}

TEST(ProblemLists, RandomIsDeterministicSmallAndCoversEveryAttribute) {
  const std::vector<NamedProblem> a = random_problems(1234, 200), b = random_problems(1234, 200);
  ASSERT_EQ(a.size(), 200u);
  expect_unique_identifier_names(a);
  bool groups = false, dilation = false, ceil = false, include_pad = false, outpad = false, rank1 = false,
       rank3 = false, asym = false, n0 = false;
  std::set<Op> ops;
  for (size_t e = 0; e < a.size(); ++e) {
    const ConvProblem& p = a[e].problem;
    EXPECT_EQ(a[e].name, b[e].name);
    ops.insert(p.op());
    // The cost cap keeps executor-run kernels fast.
    EXPECT_LE(p.y_elements(), 100000);
    EXPECT_LE(p.x_elements(), 100000);
    EXPECT_LE(work(p), 100000) << a[e].name;
    groups |= !is_pool(p.op()) && p.groups() > 1;
    ceil |= p.ceil_mode();
    include_pad |= p.count_include_pad();
    rank1 |= p.rank() == 1;
    rank3 |= p.rank() == 3;
    n0 |= p.n() == 0;
    for (int j = 0; j < p.rank(); ++j) {
      dilation |= p.axis(j).d > 1;
      outpad |= p.axis(j).a > 0;
      asym |= p.axis(j).p_lo != p.axis(j).p_hi;
    }
  }
  EXPECT_EQ(ops.size(), 4u);
  EXPECT_TRUE(groups && dilation && ceil && include_pad && outpad && rank1 && rank3 && asym && n0)
      << groups << dilation << ceil << include_pad << outpad << rank1 << rank3 << asym << n0;
  EXPECT_NE(random_problems(1235, 8)[0].name, random_problems(1236, 8)[0].name);
}

} // namespace
} // namespace convarith::test
