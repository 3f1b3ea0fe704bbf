// tests/test_numeric_edges.cpp — the numeric classes of issue 18, for every CPU row, every CUDA row
// under the kernel executor (row.run_emulated) and the fp64 reference:
//   huge windows run in time bounded by the tensors (a regression hangs: ctest's timeout fails it),
//   max_pool's NaN wins, pooling's count_include_pad divisor in 64 bits, Inf weights never meet
//   padding, average pooling sums that do not stall at 2^24, huge dilations (run this binary under
//   the asan preset: no pointer offset overflows), the reference's tap solving against brute force,
//   and the fuzz_huge regression inputs (tests/regressions/huge/).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "../fuzz/huge_harness.hpp"
#include "support/support.hpp"

namespace convarith::test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr int64_t kT = 1000000000000; // 10^12

struct RowResult {
  std::string name;
  std::vector<float> y;
};

// Every algorithm that supports p (CPU rows through a Plan, CUDA rows under the executor), on
// NaN-poisoned outputs. At least one row must run.
std::vector<RowResult> run_rows(const ConvProblem& p, const std::vector<float>& x, const std::vector<float>& w) {
  std::vector<RowResult> out;
  const float* wp = is_pool(p.op()) ? nullptr : w.data();
  for (const Algorithm& alg : algorithm_table()) {
    if (!(alg.ops & op_bit(p.op())) || !alg.supports(p).is_ok())
      continue;
    if (alg.device == Device::kCuda || alg.run == nullptr)
      continue; // CPU rows and the emulated twins of the CUDA kernels
    const bool on_cpu = alg.device == Device::kCpu;
    RowResult r;
    r.name = std::string(alg.name) + (on_cpu ? " (cpu)" : " (executor)");
    r.y.assign(static_cast<size_t>(p.y_elements()), kNaN);
    if (!std::isnan(r.y[0]))
      ADD_FAILURE();
    const Status st = run_row(alg, p, x.data(), wp, nullptr, r.y.data());
    EXPECT_TRUE(st.is_ok()) << alg.name << ": " << st.to_string();
    out.push_back(std::move(r));
  }
  EXPECT_FALSE(out.empty()) << p.name();
  return out;
}

// Same value, or both NaN (want is the float a correct row returns).
::testing::AssertionResult same(float got, double want) {
  if ((std::isnan(got) && std::isnan(want)) || static_cast<double>(got) == want)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want;
}

// Every row and the reference give `want` (NaN matches NaN) to within rel (0: exactly).
void expect_all(const ConvProblem& p, const std::vector<float>& x, const std::vector<float>& w,
                const std::vector<double>& want, double rel = 0) {
  const std::vector<double> ref = reference(p, x.data(), is_pool(p.op()) ? nullptr : w.data(), nullptr);
  ASSERT_EQ(ref.size(), want.size()) << p.name();
  for (size_t e = 0; e < want.size(); ++e) {
    if (rel == 0 || !std::isfinite(want[e]))
      EXPECT_TRUE(same(static_cast<float>(ref[e]), static_cast<double>(static_cast<float>(want[e]))))
          << "reference, " << p.name() << " y[" << e << "]";
    else
      EXPECT_NEAR(ref[e], want[e], rel * std::fabs(want[e])) << "reference, " << p.name() << " y[" << e << "]";
  }
  for (const RowResult& r : run_rows(p, x, w)) {
    for (size_t e = 0; e < want.size(); ++e) {
      if (rel == 0 || !std::isfinite(want[e]))
        EXPECT_TRUE(same(r.y[e], static_cast<double>(static_cast<float>(want[e]))))
            << r.name << ", " << p.name() << " y[" << e << "]";
      else
        EXPECT_NEAR(r.y[e], want[e], rel * std::fabs(want[e])) << r.name << ", " << p.name() << " y[" << e << "]";
    }
  }
}

ProblemDesc pool_desc(Op op, std::vector<int64_t> in, std::vector<int64_t> k, std::vector<int64_t> s,
                      std::vector<int64_t> pad) {
  ProblemDesc d;
  d.op = op;
  d.n = 1, d.c = 1, d.k = 1;
  d.rank = static_cast<int>(in.size());
  for (size_t j = 0; j < in.size(); ++j) {
    d.input[j] = in[j], d.kernel[j] = k[j], d.stride[j] = s[j];
    d.pad_lo[j] = d.pad_hi[j] = pad[j];
  }
  return d;
}

// ---- huge windows: time bounded by the tensors -----------------------------------------------------

// Max-pool over 3 elements with a 10^12-tap window: window 0 covers x[0], window 1 x[1..2]. Without
// clamped tap ranges a row (or the reference) walks 10^12 taps per output and never finishes.
TEST(NumericEdges, HugeWindowPoolingOnEveryAxis) {
  const std::vector<float> x = {1, 5, 2};
  for (int axis = 0; axis < 3; ++axis) {
    for (int rank = axis + 1; rank <= 3; ++rank) {
      std::vector<int64_t> in(static_cast<size_t>(rank), 1), k(in.size(), 1), s(in.size(), 1), pad(in.size(), 0);
      in[static_cast<size_t>(axis)] = 3, k[static_cast<size_t>(axis)] = kT, s[static_cast<size_t>(axis)] = kT;
      pad[static_cast<size_t>(axis)] = kT - 1;
      const ConvProblem mp = must_make(pool_desc(Op::kMaxPool, in, k, s, pad));
      ASSERT_EQ(mp.y_elements(), 2) << mp.name();
      expect_all(mp, x, {}, {1, 5});
      const ConvProblem ap = must_make(pool_desc(Op::kAvgPool, in, k, s, pad));
      expect_all(ap, x, {}, {1, 3.5});
      ProblemDesc d = pool_desc(Op::kAvgPool, in, k, s, pad);
      d.count_include_pad = true; // every one of the 10^12 taps is inside the padded extent
      expect_all(must_make(d), x, {}, {1.0 / 1e12, 7.0 / 1e12}, 1e-6);
    }
  }
}

// ---- NaN wins in max_pool --------------------------------------------------------------------------

TEST(NumericEdges, MaxPoolNaNWinsWhereverItIs) {
  const ConvProblem p = must_make(pool_desc(Op::kMaxPool, {4}, {2}, {1}, {0}));
  expect_all(p, {kNaN, 1, 2, 3}, {}, {kNaN, 2, 3});
  expect_all(p, {1, kNaN, 2, 3}, {}, {kNaN, kNaN, 3});
  expect_all(p, {1, 2, 3, kNaN}, {}, {2, 3, kNaN});
  // 2-D, through every CPU path: separable (3x3), direct (a plane too big for the band buffer) and
  // per window (a window longer than the direct path's W limit), NaN at one interior element.
  struct Shape {
    int64_t h, w, kh, kw;
  };
  for (const Shape& sh : {Shape{8, 9, 3, 3}, Shape{3, 40000, 2, 3}, Shape{4, 200, 2, 100}}) {
    const ConvProblem q = must_make(pool_desc(Op::kMaxPool, {sh.h, sh.w}, {sh.kh, sh.kw}, {1, 1}, {0, 0}));
    std::vector<float> x(static_cast<size_t>(sh.h * sh.w));
    for (size_t e = 0; e < x.size(); ++e)
      x[e] = static_cast<float>(e % 13) - 6.0f;
    const int64_t nh = sh.h / 2, nw = sh.w / 2;
    x[static_cast<size_t>(nh * sh.w + nw)] = kNaN;
    std::vector<double> want(static_cast<size_t>(q.y_elements()));
    const int64_t oh_n = q.out(0), ow_n = q.out(1);
    for (int64_t oh = 0; oh < oh_n; ++oh)
      for (int64_t ow = 0; ow < ow_n; ++ow) {
        double m = -INFINITY;
        for (int64_t r = 0; r < sh.kh; ++r)
          for (int64_t s = 0; s < sh.kw; ++s)
            m = std::isnan(m) ? m : std::max(m, static_cast<double>(x[static_cast<size_t>((oh + r) * sh.w + ow + s)]));
        const bool covers = oh <= nh && nh < oh + sh.kh && ow <= nw && nw < ow + sh.kw;
        want[static_cast<size_t>(oh * ow_n + ow)] = covers ? NAN : m;
      }
    expect_all(q, x, {}, want);
  }
}

// 3x3 stride-2 max pools (ResNet-50's, GoogLeNet's ceil-mode one) have their own W pass in cpu_pool: every width
// from 1 (no interior column) to 40 and 112, padding 0 and 1, floor and ceil mode, a NaN somewhere in half the cases,
// against the taps inside the input folded by hand.
TEST(NumericEdges, MaxPool3x3Stride2EveryWidth) {
  std::vector<int64_t> widths;
  for (int64_t w = 1; w <= 40; ++w)
    widths.push_back(w);
  widths.push_back(112);
  int cases = 0;
  for (const int64_t w : widths)
    for (const int64_t h : {1, 6})
      for (const int64_t pad : {0, 1})
        for (const bool ceil_mode : {false, true}) {
          ProblemDesc d = pool_desc(Op::kMaxPool, {h, w}, {3, 3}, {2, 2}, {pad, pad});
          d.ceil_mode = ceil_mode;
          Result<ConvProblem> p = ConvProblem::make(d);
          if (!p)
            continue; // a window that cannot fit (w < 3 without padding)
          ++cases;
          std::vector<float> x(static_cast<size_t>(h * w));
          for (size_t e = 0; e < x.size(); ++e)
            x[e] = static_cast<float>((e * 7 + static_cast<size_t>(w)) % 11) - 5.0f;
          if ((w + h) % 2 == 0)
            x[static_cast<size_t>((w * 5 + 3) % (h * w))] = kNaN;
          const int64_t oh_n = p->out(0), ow_n = p->out(1);
          std::vector<double> want(static_cast<size_t>(oh_n * ow_n));
          for (int64_t oh = 0; oh < oh_n; ++oh)
            for (int64_t ow = 0; ow < ow_n; ++ow) {
              double m = -INFINITY;
              for (int64_t r = 0; r < 3; ++r)
                for (int64_t c = 0; c < 3; ++c) {
                  const int64_t ih = oh * 2 + r - pad, iw = ow * 2 + c - pad;
                  if (ih < 0 || ih >= h || iw < 0 || iw >= w)
                    continue;
                  const double v = x[static_cast<size_t>(ih * w + iw)];
                  m = std::isnan(m) || std::isnan(v) ? NAN : std::max(m, v);
                }
              want[static_cast<size_t>(oh * ow_n + ow)] = m;
            }
          SCOPED_TRACE(p->name());
          expect_all(*p, x, {}, want);
        }
  EXPECT_GT(cases, 200);
}

// ---- pooling divisors and sums ---------------------------------------------------------------------

// count_include_pad over a 1x1 input: 65536 x 65536 taps in the padded extent, 2^32, overflowed a
// 32-bit product in the CUDA row (inf).
TEST(NumericEdges, IncludePadDivisorPast2To32) {
  ProblemDesc d = pool_desc(Op::kAvgPool, {1, 1}, {65536, 65536}, {65536, 65536}, {65535, 65535});
  d.count_include_pad = true;
  const ConvProblem p = must_make(d);
  ASSERT_EQ(p.y_elements(), 1);
  expect_all(p, {1}, {}, {std::ldexp(1.0, -32)});
  ProblemDesc d3 = pool_desc(Op::kAvgPool, {1, 1, 1}, {2048, 2048, 1024}, {2048, 2048, 1024}, {2047, 2047, 1023});
  d3.count_include_pad = true;
  expect_all(must_make(d3), {3}, {}, {3 * std::ldexp(1.0, -32)});
}

// A global average of 2^25 ones is 1: a float sum in sequence stalls at 2^24 and gives 0.5.
TEST(NumericEdges, GlobalAveragePoolPast2To24Taps) {
  const int64_t n = int64_t{1} << 25;
  const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
  expect_all(must_make(pool_desc(Op::kAvgPool, {n}, {n}, {1}, {0})), ones, {}, {1.0});
  expect_all(must_make(pool_desc(Op::kAvgPool, {4096, 8192}, {4096, 8192}, {1, 1}, {0, 0})), ones, {}, {1.0});
  // Random-ish values: the error stays near the float rounding of the mean, not 2^25 * eps.
  std::vector<float> x(static_cast<size_t>(n));
  double sum = 0;
  for (size_t e = 0; e < x.size(); ++e) {
    x[e] = 1.0f + static_cast<float>(e % 1000) / 1024.0f;
    sum += x[e];
  }
  expect_all(must_make(pool_desc(Op::kAvgPool, {n}, {n}, {1}, {0})), x, {}, {sum / static_cast<double>(n)}, 1e-6);
}

// ---- Inf weights never meet padding ----------------------------------------------------------------

// Every output of a padded conv of ones with +Inf (channel 0) and -Inf (channel 1) weights is +-Inf:
// each in-input tap is Inf * 1. Inf times the im2col panel's (or the shared tile's) zero padding
// would make the border NaN. N = 1 and 2, groups 1 and 2 take both of cpu_gemm's weight packings (in the
// tasks, where each row is used by one task: N = 1, groups 2; up front: the others), which must find the Inf.
TEST(NumericEdges, InfWeightsGiveInfAtTheBorder) {
  for (int64_t n : {int64_t{1}, int64_t{2}})
    for (int64_t groups : {int64_t{1}, int64_t{2}}) {
      SCOPED_TRACE("n " + std::to_string(n) + ", groups " + std::to_string(groups));
      ProblemDesc d;
      d.op = Op::kConv;
      d.n = n, d.c = 2, d.k = 4, d.groups = groups, d.rank = 2;
      d.input = {5, 6}, d.kernel = {3, 3}, d.pad_lo = {1, 2}, d.pad_hi = {1, 0};
      const ConvProblem p = must_make(d);
      const std::vector<float> x(static_cast<size_t>(p.x_elements()), 1.0f);
      std::vector<float> w(static_cast<size_t>(p.w_elements()));
      const int64_t per_k = p.w_elements() / p.k();
      for (size_t e = 0; e < w.size(); ++e)
        w[e] = (static_cast<int64_t>(e) / per_k) % 2 == 0 ? kInf : -kInf;
      std::vector<double> want(static_cast<size_t>(p.y_elements()));
      for (size_t e = 0; e < want.size(); ++e)
        want[e] = (static_cast<int64_t>(e) / p.out_spatial()) % 2 == 0 ? INFINITY : -INFINITY;
      expect_all(p, x, w, want);
      // The same for a transposed conv (its rows multiply only real inputs).
      ProblemDesc t = d;
      t.op = Op::kConvTranspose, t.stride = {2, 1}, t.pad_lo = {1, 0}, t.pad_hi = {0, 1};
      const ConvProblem tp = must_make(t);
      std::vector<float> wt(static_cast<size_t>(tp.w_elements()), kInf);
      const std::vector<float> xt(static_cast<size_t>(tp.x_elements()), 1.0f);
      const std::vector<double> ref = reference(tp, xt.data(), wt.data(), nullptr);
      for (const RowResult& r : run_rows(tp, xt, wt))
        for (size_t e = 0; e < ref.size(); ++e)
          EXPECT_TRUE(same(r.y[e], ref[e])) << r.name << " y[" << e << "]";
    }
}

// ---- huge dilations and strides: no overflowing offsets (run under the asan preset) -----------------

TEST(NumericEdges, DilationNear2To58) {
  const int64_t dil = 288230376151711745; // 2^58 + 1: the UBSan finding in cpu_conv.cpp
  for (Op op : {Op::kConv, Op::kMaxPool, Op::kAvgPool}) {
    for (int64_t k : {int64_t{2}, int64_t{9}}) {
      for (int64_t kk : {int64_t{1}, int64_t{3}}) {
        if (is_pool(op) && k == 2)
          continue; // both taps of some window would fall in padding: not a valid pooling
        ProblemDesc d;
        d.op = op, d.n = 1, d.c = 1, d.k = is_pool(op) ? 1 : kk, d.rank = 2;
        d.input = {3, 4}, d.kernel = {2, k}, d.dilation = {1, dil};
        const int64_t pad = ((k - 1) * dil + 1 - 4 + 1) / 2; // the window just fits the padded row
        d.pad_lo = {0, pad}, d.pad_hi = {0, pad};
        const ConvProblem p = must_make(d);
        std::vector<float> x(static_cast<size_t>(p.x_elements())), w(static_cast<size_t>(p.w_elements()));
        for (size_t e = 0; e < x.size(); ++e)
          x[e] = static_cast<float>(e % 5) + 1;
        for (size_t e = 0; e < w.size(); ++e)
          w[e] = static_cast<float>(e % 3) - 1;
        const std::vector<double> ref = reference(p, x.data(), w.data(), nullptr);
        for (const RowResult& r : run_rows(p, x, w))
          for (size_t e = 0; e < ref.size(); ++e)
            EXPECT_TRUE(same(r.y[e], static_cast<double>(static_cast<float>(ref[e]))))
                << r.name << ", " << p.name() << " y[" << e << "]";
      }
    }
  }
}

// ---- the reference's tap solving against brute force -----------------------------------------------

// reference() solves for the taps inside the input (and, transposed, the congruence r*d = o + p_lo
// mod s) instead of walking the kernel: over a grid of small axes it must equal the plain loop.
TEST(NumericEdges, ReferenceTapsEqualBruteForce) {
  int checked = 0;
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kAvgPool})
    for (int64_t i : {1, 2, 5})
      for (int64_t k : {1, 2, 3, 5})
        for (int64_t s : {1, 2, 3, 4, 6})
          for (int64_t dl : {1, 2, 3, 4})
            for (int64_t pl : {0, 1, 2, 4}) {
              ProblemDesc d;
              d.op = op, d.n = 1, d.c = 1, d.k = 1, d.rank = 1;
              d.input[0] = i, d.kernel[0] = k, d.stride[0] = s, d.dilation[0] = dl, d.pad_lo[0] = pl;
              d.pad_hi[0] = pl / 2;
              d.count_include_pad = (s + dl) % 2 == 0;
              Result<ConvProblem> made = ConvProblem::make(d);
              if (!made)
                continue;
              const ConvProblem& p = made.value();
              std::vector<float> x(static_cast<size_t>(i)), w(static_cast<size_t>(k));
              for (int64_t e = 0; e < i; ++e)
                x[static_cast<size_t>(e)] = static_cast<float>(1 << e);
              for (int64_t e = 0; e < k; ++e)
                w[static_cast<size_t>(e)] = static_cast<float>(1 << (8 + 2 * e));
              const std::vector<double> got = reference(p, x.data(), w.data(), nullptr);
              for (int64_t o = 0; o < p.out(0); ++o) {
                double want = 0, taps = 0, padded = 0;
                for (int64_t r = 0; r < k; ++r) {
                  if (op == Op::kConvTranspose) {
                    for (int64_t in = 0; in < i; ++in)
                      if (in * s - pl + r * dl == o)
                        want += x[static_cast<size_t>(in)] * static_cast<double>(w[static_cast<size_t>(r)]);
                    continue;
                  }
                  const int64_t in = o * s - pl + r * dl;
                  padded += in >= -pl && in < i + d.pad_hi[0];
                  if (in < 0 || in >= i)
                    continue;
                  taps += 1;
                  want += x[static_cast<size_t>(in)] *
                          (op == Op::kConv ? static_cast<double>(w[static_cast<size_t>(r)]) : 1.0);
                }
                if (op == Op::kAvgPool)
                  want /= d.count_include_pad ? padded : taps;
                EXPECT_EQ(got[static_cast<size_t>(o)], want) << p.name() << " o=" << o;
                ++checked;
              }
            }
  EXPECT_GT(checked, 1000);
}

// ---- fuzz_huge regressions ------------------------------------------------------------------------

std::filesystem::path source_dir() {
  if (const char* env = std::getenv("CONVARITH_SOURCE_DIR"))
    return env;
  return std::filesystem::path(__FILE__).parent_path().parent_path();
}

TEST(NumericEdges, FuzzHugeRegressionsStayFixed) {
  const std::filesystem::path dir = source_dir() / "tests" / "regressions" / "huge";
  int replayed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file())
      continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(fuzz::check_huge_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), "")
        << entry.path().filename();
    ++replayed;
  }
  EXPECT_GE(replayed, 8) << dir;
}

// The harness can fail: a wrong value, a NaN in the wrong place and a missing NaN are findings.
TEST(NumericEdges, FuzzHugeHarnessDetectsMismatches) {
  const std::vector<double> want = {1, NAN, INFINITY}, mag = {1, 1, 1};
  EXPECT_EQ(fuzz::detail::compare_to_reference({1, kNaN, kInf}, want, mag), "");
  EXPECT_NE(fuzz::detail::compare_to_reference({1.5f, kNaN, kInf}, want, mag), "");
  EXPECT_NE(fuzz::detail::compare_to_reference({1, 0, kInf}, want, mag), "");
  EXPECT_NE(fuzz::detail::compare_to_reference({kNaN, kNaN, kInf}, want, mag), "");
  EXPECT_NE(fuzz::detail::compare_to_reference({1, kNaN, -kInf}, want, mag), "");
}

} // namespace
} // namespace convarith::test
