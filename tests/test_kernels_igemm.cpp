// The `igemm` kernel (kernels/conv_igemm.cuh) under the CPU kernel executor: every tile shape forced on the edge
// list and on tile-boundary problems (M, K/g and Kdim not multiples of the tile, several k-tiles), NC[D]HW and
// N[D]HWC, the fused epilogue (relu + residual, z separate and z == y), Inf weights next to padding, and the tile
// prepare() chooses. Against the fp64 reference (oracle::reference on the problem's layouts), exact on small
// integers; outputs NaN-poisoned before every run; every access checked as a GPU would fault (executor.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "conv_igemm.cuh"
#include "convarith/convarith.hpp"
#include "executor.hpp"
#include "reference/reference.hpp"
#include "row.hpp"
#include "support/support.hpp"

namespace convarith::test {
namespace {

namespace kn = kernels;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr int kTiles[] = {kn::kIgemm128x128, kn::kIgemm128x64, kn::kIgemm64x64};

ProblemDesc conv(int64_t n, int64_t c, int64_t k, int64_t groups, std::vector<int64_t> in, std::vector<int64_t> ker,
                 int64_t stride = 1, int64_t pad = 0, int64_t dil = 1) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.n = n, d.c = c, d.k = k, d.groups = groups;
  d.rank = static_cast<int>(in.size());
  for (size_t j = 0; j < in.size(); ++j) {
    d.input[j] = in[j], d.kernel[j] = ker[j], d.stride[j] = stride, d.pad_lo[j] = pad, d.pad_hi[j] = pad;
    d.dilation[j] = dil;
  }
  return d;
}

// Small integers (never 0 for the weights, so a dropped tap shows), or uniform floats.
std::vector<float> fill(int64_t count, uint64_t seed, bool integers) {
  std::mt19937_64 rng(seed);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& e : v)
    e = integers ? static_cast<float>(static_cast<int>(rng() % 7) - 3)
                 : std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  return v;
}

struct IgemmRun {
  Status status;
  std::vector<float> y;
  std::vector<double> want, magnitude;
  int64_t splits = 0, split_k_tiles = 0, k_tiles = 0; // the prepared plan's (forced tile only)
  size_t workspace_bytes = 0;
};

// One run of igemm with the given tile (-1: the one prepare() chooses, through a Plan, with the workspace it reports)
// on NaN-poisoned y (or y = z when z_is_y) and a NaN-poisoned workspace, every launch checked against sm_90 with the
// registers of the resource table. splits: the split count asked of igemm_prepare_tile (1, the default: the
// single-kernel path; 0: prepare()'s rule).
IgemmRun run_igemm(const ConvProblem& p, int tile, uint64_t seed, bool integers, bool z_is_y = false,
                   const std::vector<float>* w_override = nullptr, bool reverse = false,
                   const std::vector<float>* x_override = nullptr, int64_t splits = 1) {
  IgemmRun r;
  const std::vector<float> x = x_override != nullptr ? *x_override : fill(p.x_elements(), seed, integers);
  const std::vector<float> w = w_override != nullptr ? *w_override : fill(p.w_elements(), seed + 1, integers);
  const std::vector<float> bias = fill(p.k(), seed + 2, integers);
  const bool residual = p.epilogue().has_residual();
  std::vector<float> z = residual ? fill(p.y_elements(), seed + 3, integers) : std::vector<float>{};
  r.y.assign(static_cast<size_t>(p.y_elements()), kNaN);
  if (z_is_y)
    r.y = z;
  const oracle::Tensors ref{x.data(), w.data(), bias.data(), z_is_y ? r.y.data() : z.data()};
  r.want = oracle::reference(p, ref);
  r.magnitude = oracle::reference_magnitude(p, ref);
  const void* zp = residual ? (z_is_y ? static_cast<const void*>(r.y.data()) : z.data()) : nullptr;

  const emu::Options saved = emu::options();
  emu::Options options = saved;
  options.require_resources = true;
  options.reverse_thread_order = reverse;
  emu::set_options(options);
  if (tile < 0) {
    Result<Plan> plan = Plan::create(p, Device::kEmulated, "igemm");
    if (!plan) {
      r.status = plan.status();
    } else {
      Tensors t;
      t.x = x.data(), t.w = w.data(), t.bias = bias.data(), t.z = zp, t.y = r.y.data();
      std::vector<float> workspace(plan->workspace_bytes() / sizeof(float), kNaN);
      r.workspace_bytes = plan->workspace_bytes();
      r.status = plan->run(t, workspace.empty() ? nullptr : workspace.data(), plan->workspace_bytes());
    }
  } else {
    const Result<Prepared> prepared = kn::igemm_prepare_tile(p, emulated_device_info(), tile, splits);
    if (!prepared) {
      r.status = prepared.status();
    } else {
      const auto* plan = static_cast<const kn::KernelPlan<kn::IgemmParams>*>(prepared->state.get());
      r.splits = plan->params.splits, r.split_k_tiles = plan->params.split_k_tiles, r.k_tiles = plan->params.k_tiles;
      r.workspace_bytes = prepared->workspace_bytes;
      std::vector<float> workspace(prepared->workspace_bytes / sizeof(float), kNaN);
      KernelArgs a;
      a.problem = &p;
      a.prepared = prepared->state.get();
      a.x = x.data(), a.w = w.data(), a.bias = bias.data(), a.z = zp, a.y = r.y.data();
      a.workspace = workspace.empty() ? nullptr : workspace.data();
      a.workspace_bytes = prepared->workspace_bytes;
      const auto bytes = [&](TensorId id) { return static_cast<size_t>(p.tensor(id).bytes()); };
      const emu::GlobalExtents extents({{x.data(), bytes(TensorId::kX), "x"},
                                        {w.data(), bytes(TensorId::kW), "w"},
                                        {bias.data(), bytes(TensorId::kBias), "bias"},
                                        {zp, residual ? bytes(TensorId::kZ) : 0, "z"},
                                        {r.y.data(), bytes(TensorId::kY), "y"},
                                        {a.workspace, a.workspace_bytes, "workspace"}});
      r.status = kn::emu::igemm_run(a);
    }
  }
  emu::set_options(saved);
  return r;
}

std::vector<double> as_doubles(const std::vector<float>& v) {
  return std::vector<double>(v.begin(), v.end());
}

::testing::AssertionResult exact(const ConvProblem& p, const IgemmRun& r) {
  if (!r.status.is_ok())
    return ::testing::AssertionFailure() << r.status.to_string();
  for (size_t e = 0; e < r.want.size(); ++e) {
    const double want = static_cast<double>(static_cast<float>(r.want[e]));
    if (!(static_cast<double>(r.y[e]) == want))
      return ::testing::AssertionFailure() << p.name() << ": y[" << e << "] = " << r.y[e] << ", want " << want;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult accepted(const ConvProblem& p, const IgemmRun& r) {
  if (!r.status.is_ok())
    return ::testing::AssertionFailure() << r.status.to_string();
  const oracle::Verdict v = oracle::accept(p, as_doubles(r.y), r.want, r.magnitude);
  if (!v.pass)
    return ::testing::AssertionFailure() << p.name() << ": " << v.bad << " bad, first " << v.first_bad
                                         << ", worst ratio " << v.worst_ratio;
  return ::testing::AssertionSuccess();
}

ProblemDesc with_layout(ProblemDesc d, Layout layout) {
  d.layout = layout;
  return d;
}

// The edge list: 1x1, kernel larger than the input with padding, stride > kernel, dilation 2-3, prime sizes,
// C = 1, K not a multiple of any tile, asymmetric padding, groups, depthwise, ranks 1 and 3, N = 0.
std::vector<std::pair<std::string, ProblemDesc>> edge_list() {
  std::vector<std::pair<std::string, ProblemDesc>> v;
  v.push_back({"1x1", conv(2, 5, 7, 1, {6, 5}, {1, 1})});
  v.push_back({"kernel_larger_than_input", conv(1, 2, 3, 1, {3, 2}, {5, 4}, 1, 2)});
  v.push_back({"stride_gt_kernel", conv(1, 3, 4, 1, {11, 10}, {2, 2}, 3)});
  v.push_back({"dilation2", conv(1, 2, 3, 1, {9, 8}, {3, 3}, 1, 2, 2)});
  v.push_back({"dilation3_stride2", conv(1, 2, 2, 1, {11, 10}, {3, 2}, 2, 1, 3)});
  v.push_back({"prime_sizes", conv(1, 3, 5, 1, {13, 11}, {3, 5}, 1, 1)});
  v.push_back({"c1", conv(1, 1, 4, 1, {7, 7}, {3, 3})});
  v.push_back({"k67", conv(1, 3, 67, 1, {5, 4}, {3, 3}, 1, 1)});
  ProblemDesc asym = conv(1, 2, 3, 1, {6, 7}, {3, 3});
  asym.pad_lo = {0, 2, 0}, asym.pad_hi = {2, 1, 0};
  v.push_back({"asymmetric_padding", asym});
  v.push_back({"groups3", conv(2, 6, 9, 3, {5, 5}, {3, 3}, 1, 1)});
  v.push_back({"depthwise", conv(1, 8, 8, 8, {6, 6}, {3, 3}, 2, 1)});
  v.push_back({"depthwise_multiplier2", conv(1, 4, 8, 4, {5, 5}, {3, 3})});
  v.push_back({"rank1", conv(2, 3, 4, 1, {17}, {4}, 2, 1)});
  v.push_back({"rank3", conv(1, 2, 3, 1, {5, 6, 4}, {3, 3, 2}, 1, 1)});
  v.push_back({"n0", conv(0, 2, 3, 1, {5, 5}, {3, 3}, 1, 1)});
  return v;
}

// Every edge problem, every tile shape, both layouts: exact on integers (bias, identity epilogue).
TEST(KernelsIgemm, EdgeListEveryTileBothLayouts) {
  for (const auto& [name, desc] : edge_list()) {
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
      const ConvProblem p = must_make(with_layout(desc, layout));
      for (int tile : kTiles) {
        SCOPED_TRACE(name + " " + layout_name(layout) + " tile " + std::to_string(tile));
        EXPECT_TRUE(exact(p, run_igemm(p, tile, 11, true)));
      }
    }
  }
}

// Tile boundaries per tile shape: M, K/g and Kdim one past, one short of and equal to the tile's multiples, with
// several k-tiles (Kdim = 9 * C/g up to 72 + 9), and several output tiles (the block-stride loop: at most 3 blocks
// under the executor).
TEST(KernelsIgemm, TileBoundariesEveryShape) {
  for (int tile : kTiles) {
    const int64_t bm = kn::igemm_tile_m(tile), bn = kn::igemm_tile_n(tile);
    struct Case {
      int64_t n, c, k, h, w, r;
    };
    const Case cases[] = {
        {1, 3, bn + 1, 1, bm + 1, 1}, // M and N one past the tile, Kdim 3 (one partial k-tile)
        {1, 8, bn - 1, 1, bm - 1, 1}, // one short; Kdim = 8 exactly one k-tile
        {2, 9, bn, 4, bm / 8, 3},     // M = 2 * bm / 2 ... exact multiples; Kdim 81: 11 k-tiles
        {1, 5, 3, 3, 7, 3},           // far smaller than the tile
    };
    for (const Case& cs : cases) {
      for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
        const ConvProblem p =
            must_make(with_layout(conv(cs.n, cs.c, cs.k, 1, {cs.h, cs.w}, {cs.r, cs.r}, 1, cs.r / 2), layout));
        SCOPED_TRACE(p.name() + " tile " + std::to_string(tile));
        EXPECT_TRUE(exact(p, run_igemm(p, tile, 5, true)));
      }
    }
  }
}

// Random floats within the acceptance rule, and bitwise the same when each phase's threads run in reverse order
// (a missing barrier or a race on shared memory would change them).
TEST(KernelsIgemm, FloatsDeterministicInEitherThreadOrder) {
  const ConvProblem p = must_make(conv(2, 12, 70, 1, {9, 7}, {3, 3}, 1, 1));
  for (int tile : kTiles) {
    SCOPED_TRACE(tile);
    const IgemmRun forward = run_igemm(p, tile, 3, false, false, nullptr, false);
    const IgemmRun reverse = run_igemm(p, tile, 3, false, false, nullptr, true);
    EXPECT_TRUE(accepted(p, forward));
    ASSERT_TRUE(reverse.status.is_ok());
    EXPECT_EQ(std::memcmp(forward.y.data(), reverse.y.data(), forward.y.size() * sizeof(float)), 0);
  }
}

// The fused epilogue: relu + bias + residual, z separate and z == y (in place), both layouts, every tile; and the
// transcendental activations within the acceptance rule.
TEST(KernelsIgemm, EpilogueReluResidualInPlace) {
  for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
    ProblemDesc d = with_layout(conv(2, 6, 10, 2, {5, 6}, {3, 3}, 1, 1), layout);
    d.epilogue.activation = Activation::kRelu;
    d.epilogue.alpha = 2.0f;
    d.epilogue.beta = 1.0f;
    const ConvProblem p = must_make(d);
    ASSERT_TRUE(p.epilogue().has_residual());
    for (int tile : kTiles) {
      SCOPED_TRACE(std::string(layout_name(layout)) + " tile " + std::to_string(tile));
      EXPECT_TRUE(exact(p, run_igemm(p, tile, 7, true, false)));
      EXPECT_TRUE(exact(p, run_igemm(p, tile, 8, true, true)));
    }
    for (Activation act : {Activation::kSigmoid, Activation::kGelu, Activation::kLeakyRelu, Activation::kClip}) {
      ProblemDesc e = d;
      e.epilogue.activation = act;
      e.epilogue.leaky_alpha = 0.25f;
      e.epilogue.clip_min = -1.0f, e.epilogue.clip_max = 2.0f;
      const ConvProblem q = must_make(e);
      SCOPED_TRACE(activation_name(act));
      EXPECT_TRUE(accepted(q, run_igemm(q, -1, 9, false, true)));
    }
  }
}

// Inf weights never meet the staged zeros of padding: the tile is recomputed adding only in-input taps, so every
// output of a padded conv of ones is +-Inf (Inf * 0 = NaN at the border otherwise); the guard triggers in the
// second k-tile too (C/g = 4, 3x3: Kdim 36, the Inf channel last).
TEST(KernelsIgemm, InfWeightsGiveInfAtTheBorder) {
  for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
    ProblemDesc d = with_layout(conv(1, 4, 3, 1, {5, 6}, {3, 3}, 1, 1), layout);
    const ConvProblem p = must_make(d);
    std::vector<float> w(static_cast<size_t>(p.w_elements()), 1.0f);
    const TensorDesc wt = p.tensor(TensorId::kW);
    for (int64_t k = 0; k < p.k(); ++k)
      for (int64_t t = 0; t < 9; ++t) // channel 3, every tap: +Inf for k = 0, -Inf for k = 1
        if (k < 2)
          w[static_cast<size_t>(k * wt.strides[0] + 3 * wt.strides[1] + (t / 3) * wt.strides[2] +
                                (t % 3) * wt.strides[3])] = k == 0 ? INFINITY : -INFINITY;
    const std::vector<float> ones(static_cast<size_t>(p.x_elements()), 1.0f);
    for (int tile : kTiles) {
      SCOPED_TRACE(std::string(layout_name(layout)) + " tile " + std::to_string(tile));
      const IgemmRun r = run_igemm(p, tile, 4, true, false, &w, false, &ones, 1);
      ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
      int64_t infinite = 0;
      for (size_t e = 0; e < r.y.size(); ++e) {
        ASSERT_FALSE(std::isnan(r.want[e])) << "y[" << e << "]";
        if (std::isinf(r.want[e]))
          ++infinite;
      }
      EXPECT_EQ(infinite, 2 * p.out_spatial()); // channels 0 and 1 everywhere, border included
      EXPECT_TRUE(exact(p, r));                 // +-Inf where the reference has them, the finite channel exactly
    }
  }
}

// prepare() chooses by the tile count against the SMs: a large layer takes 128x128 (K/g > 64) or 128x64
// (K/g <= 64), a small one 64x64, and a problem that needs 64-bit offsets the 64x64 int64_t instantiation.
TEST(KernelsIgemm, TileChoice) {
  const DeviceInfo dev = emulated_device_info();
  ASSERT_EQ(dev.sms, 132);
  EXPECT_EQ(kn::igemm_choose_tile(must_make(conv(32, 64, 128, 1, {56, 56}, {3, 3}, 1, 1)), dev), kn::kIgemm128x128);
  EXPECT_EQ(kn::igemm_choose_tile(must_make(conv(32, 64, 64, 1, {56, 56}, {3, 3}, 1, 1)), dev), kn::kIgemm128x64);
  EXPECT_EQ(kn::igemm_choose_tile(must_make(conv(1, 64, 64, 1, {14, 14}, {3, 3}, 1, 1)), dev), kn::kIgemm64x64);
  ProblemDesc wide = conv(1, 2, 3, 1, {3, 5}, {3, 3});
  wide.stride = {int64_t{1} << 31, 1, 1};
  const ConvProblem pw = must_make(wide);
  EXPECT_EQ(kn::igemm_choose_tile(pw, dev), kn::kIgemm64x64);
  const Result<Prepared> prepared = kn::igemm_prepare_tile(pw, dev, kn::kIgemm128x128);
  ASSERT_TRUE(prepared.is_ok());
  const auto* plan = static_cast<const kn::KernelPlan<kn::IgemmParams>*>(prepared->state.get());
  EXPECT_TRUE(plan->wide);
  EXPECT_EQ(plan->block.x, 64u);
  EXPECT_TRUE(exact(pw, run_igemm(pw, kn::kIgemm128x128, 2, true)));
  // The shared memory of each shape (the formula in the header) stays below 48 KiB.
  EXPECT_EQ(kn::igemm_smem_bytes(kn::kIgemm128x128, false), 16912u);
  for (int tile : kTiles)
    for (bool cl : {false, true})
      EXPECT_LE(kn::igemm_smem_bytes(tile, cl), 48u * 1024u);
}

// `auto` on the emulated device takes igemm for a conv its tiles fit (and the depthwise row for a depthwise one:
// K/g = 1 would waste 63 of 64 tile columns); a filter layout that differs from the activations' is
// declined with both names (and another row takes it where one does).
TEST(KernelsIgemm, AutoPrefersIgemmAndMixedLayoutsAreDeclined) {
  const ConvProblem p = must_make(conv(1, 16, 64, 1, {16, 16}, {3, 3}, 1, 1));
  Result<Plan> plan = Plan::create(p, Device::kEmulated);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_STREQ(plan->algorithm(), "igemm");
  EXPECT_TRUE(exact(p, run_igemm(p, -1, 1, true)));
  Result<Plan> depthwise = Plan::create(must_make(conv(1, 32, 32, 32, {16, 16}, {3, 3}, 1, 1)), Device::kEmulated);
  ASSERT_TRUE(depthwise.is_ok()) << depthwise.status().to_string();
  EXPECT_STREQ(depthwise->algorithm(), "depthwise");
  ProblemDesc mixed = conv(1, 3, 4, 1, {6, 6}, {3, 3}, 1, 1);
  mixed.layout = Layout::kNHWC;
  mixed.w_layout = Layout::kNCHW;
  const Algorithm* row = find_algorithm("igemm", Device::kEmulated);
  ASSERT_NE(row, nullptr);
  const Status s = row->supports(must_make(mixed));
  EXPECT_EQ(s.code(), StatusCode::kNotSupported);
  EXPECT_NE(s.message().find("filter layout"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("NHWC"), std::string::npos) << s.message();
}

// ---- split-K -------------------------------------------------------------------------------------------------------

// The edge list plus split-specific shapes (Kdim of several k-tiles: 1x1 with C = 20, a prime Kdim of 7 x 13 = 91),
// every split count from 1 to one past the k-tiles (S not dividing them, and S above them: clamped), both layouts,
// exact on integers. The plan's split arithmetic is checked on each: no empty split, workspace S x y x 4 bytes.
TEST(KernelsIgemm, SplitKEdgeListEverySplitCountBothLayouts) {
  std::vector<std::pair<std::string, ProblemDesc>> problems = edge_list();
  problems.push_back({"1x1_c20", conv(2, 20, 7, 1, {3, 5}, {1, 1})});
  problems.push_back({"prime_kdim91", conv(1, 7, 5, 1, {5, 4}, {13, 1}, 1, 6)});
  for (const auto& [name, desc] : problems) {
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
      const ConvProblem p = must_make(with_layout(desc, layout));
      const int64_t k_tiles = (p.c() / p.groups() * p.kernel_spatial() + kn::kIgemmBK - 1) / kn::kIgemmBK;
      for (int64_t s = 1; s <= k_tiles + 1; ++s) {
        SCOPED_TRACE(name + " " + layout_name(layout) + " splits " + std::to_string(s));
        const IgemmRun r = run_igemm(p, kn::kIgemm64x64, 13, true, false, nullptr, false, nullptr, s);
        EXPECT_TRUE(exact(p, r));
        EXPECT_EQ(r.k_tiles, k_tiles);
        EXPECT_GE(r.splits, 1);
        EXPECT_LE(r.splits, std::min(s, k_tiles));
        EXPECT_LT((r.splits - 1) * r.split_k_tiles, k_tiles); // the last split is not empty
        EXPECT_GE(r.splits * r.split_k_tiles, k_tiles);
        if (s <= k_tiles && k_tiles % s == 0) {
          EXPECT_EQ(r.splits, s);
        }
        EXPECT_EQ(r.workspace_bytes, r.splits > 1 ? static_cast<size_t>(r.splits * p.y_elements()) * 4 : 0u);
      }
    }
  }
}

// Split-K on the larger tile shapes and tile boundaries (several output tiles: the block-stride loop over (split,
// tile) units with 3 blocks), S = 2, 3 and 7 of 11 k-tiles.
TEST(KernelsIgemm, SplitKTileBoundariesEveryShape) {
  for (int tile : kTiles) {
    const int64_t bm = kn::igemm_tile_m(tile), bn = kn::igemm_tile_n(tile);
    for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
      const ConvProblem p = must_make(with_layout(conv(1, 9, bn + 1, 1, {1, bm + 1}, {1, 9}, 1, 4), layout));
      for (int64_t s : {2, 3, 7}) {
        SCOPED_TRACE(p.name() + " tile " + std::to_string(tile) + " splits " + std::to_string(s));
        const IgemmRun r = run_igemm(p, tile, 6, true, false, nullptr, false, nullptr, s);
        EXPECT_EQ(r.k_tiles, 11);
        EXPECT_GT(r.splits, 1);
        EXPECT_TRUE(exact(p, r));
      }
    }
  }
}

// Every epilogue through the reduction kernel: relu + alpha + bias + residual with z separate and z == y (exact), and
// the transcendental activations within the acceptance rule, both layouts, S = 2 and 3.
TEST(KernelsIgemm, SplitKEveryEpilogue) {
  for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
    ProblemDesc d = with_layout(conv(2, 6, 10, 2, {5, 6}, {3, 3}, 1, 1), layout); // Kdim 27: 4 k-tiles
    d.epilogue.activation = Activation::kRelu;
    d.epilogue.alpha = 2.0f;
    d.epilogue.beta = 1.0f;
    const ConvProblem p = must_make(d);
    for (int64_t s : {2, 3}) {
      SCOPED_TRACE(std::string(layout_name(layout)) + " splits " + std::to_string(s));
      EXPECT_TRUE(exact(p, run_igemm(p, kn::kIgemm64x64, 7, true, false, nullptr, false, nullptr, s)));
      EXPECT_TRUE(exact(p, run_igemm(p, kn::kIgemm64x64, 8, true, true, nullptr, false, nullptr, s)));
      for (Activation act : {Activation::kIdentity, Activation::kSigmoid, Activation::kTanh, Activation::kSilu,
                             Activation::kGelu, Activation::kGeluTanh, Activation::kLeakyRelu, Activation::kClip}) {
        ProblemDesc e = d;
        e.epilogue.activation = act;
        e.epilogue.alpha = 0.5f;
        e.epilogue.beta = act == Activation::kIdentity ? 0.0f : -1.5f;
        e.epilogue.leaky_alpha = 0.25f;
        e.epilogue.clip_min = -1.0f, e.epilogue.clip_max = 2.0f;
        const ConvProblem q = must_make(e);
        SCOPED_TRACE(activation_name(act));
        EXPECT_TRUE(accepted(
            q, run_igemm(q, kn::kIgemm64x64, 9, false, q.epilogue().has_residual(), nullptr, false, nullptr, s)));
      }
    }
  }
}

// Random floats: bitwise identical run to run and in either thread order at each split count (the reduction adds the
// partials in split order, no atomics), and within the acceptance rule.
TEST(KernelsIgemm, SplitKFloatsBitwiseRunToRun) {
  const ConvProblem p = must_make(conv(2, 12, 70, 1, {9, 7}, {3, 3}, 1, 1)); // Kdim 108: 14 k-tiles
  for (int64_t s : {2, 5, 14}) {
    SCOPED_TRACE(s);
    const IgemmRun first = run_igemm(p, kn::kIgemm64x64, 3, false, false, nullptr, false, nullptr, s);
    const IgemmRun again = run_igemm(p, kn::kIgemm64x64, 3, false, false, nullptr, false, nullptr, s);
    const IgemmRun reverse = run_igemm(p, kn::kIgemm64x64, 3, false, false, nullptr, true, nullptr, s);
    EXPECT_EQ(first.splits, s);
    EXPECT_TRUE(accepted(p, first));
    ASSERT_TRUE(again.status.is_ok() && reverse.status.is_ok());
    EXPECT_EQ(std::memcmp(first.y.data(), again.y.data(), first.y.size() * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(first.y.data(), reverse.y.data(), first.y.size() * sizeof(float)), 0);
  }
}

// Inf weights with split-K: a guarded unit recomputes only its own split's k range. K = 3 with channels 0 and 1
// infinite on input channel 3 and channel 2 finite: a unit that recomputed the whole of Kdim would add channel 2's
// other splits twice (exact fails). NC[D]HW: the Inf taps lie in the last split only; N[D]HWC: in every k-tile.
TEST(KernelsIgemm, SplitKInfWeightsRecomputeOnlyTheirSplit) {
  for (Layout layout : {Layout::kNCHW, Layout::kNHWC}) {
    const ConvProblem p = must_make(with_layout(conv(1, 4, 3, 1, {5, 6}, {3, 3}, 1, 1), layout)); // 5 k-tiles
    std::vector<float> w = fill(p.w_elements(), 21, true);
    for (float& v : w)
      v = v == 0.0f ? 1.0f : v;
    const TensorDesc wt = p.tensor(TensorId::kW);
    for (int64_t k = 0; k < 2; ++k)
      for (int64_t t = 0; t < 9; ++t)
        w[static_cast<size_t>(k * wt.strides[0] + 3 * wt.strides[1] + (t / 3) * wt.strides[2] +
                              (t % 3) * wt.strides[3])] = k == 0 ? INFINITY : -INFINITY;
    std::vector<float> x = fill(p.x_elements(), 22, true);
    for (float& v : x)
      v = std::fabs(v) + 1.0f; // 1..4: Inf * x keeps its sign, never Inf * 0
    for (int64_t s : {1, 2, 3, 5}) {
      SCOPED_TRACE(std::string(layout_name(layout)) + " splits " + std::to_string(s));
      const IgemmRun r = run_igemm(p, kn::kIgemm64x64, 4, true, false, &w, false, &x, s);
      ASSERT_EQ(r.splits, s);
      int64_t infinite = 0;
      for (double v : r.want) {
        ASSERT_FALSE(std::isnan(v));
        infinite += std::isinf(v) ? 1 : 0;
      }
      EXPECT_EQ(infinite, 2 * p.out_spatial()); // channels 0 and 1 everywhere, border included
      EXPECT_TRUE(exact(p, r));                 // and channel 2 exactly
    }
  }
}

// The Plan reports the split plan's workspace and checks it: null or one float short is kInvalidArgument naming both
// sizes, with y untouched; the reported size runs exactly. The kernel-level run() refuses a short workspace too.
TEST(KernelsIgemm, SplitKWorkspaceTooSmallLeavesYUntouched) {
  const ConvProblem p = must_make(conv(1, 16, 8, 1, {4, 4}, {3, 3}, 1, 1)); // 1 tile, 18 k-tiles: the rule splits
  Result<Plan> plan = Plan::create(p, Device::kEmulated, "igemm");
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  const size_t need = plan->workspace_bytes();
  ASSERT_GT(need, 0u);
  EXPECT_EQ(need % (static_cast<size_t>(p.y_elements()) * 4), 0u);
  const std::vector<float> x = fill(p.x_elements(), 1, true), w = fill(p.w_elements(), 2, true),
                           bias = fill(p.k(), 3, true);
  std::vector<float> y(static_cast<size_t>(p.y_elements()), 1234.5f);
  std::vector<float> workspace(need / 4, 0.0f);
  for (size_t have : {size_t{0}, need - 4}) {
    const Status st =
        plan->run(x.data(), w.data(), bias.data(), y.data(), have == 0 ? nullptr : workspace.data(), have);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
    EXPECT_NE(st.message().find("workspace of " + std::to_string(have) + " bytes"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(std::to_string(need)), std::string::npos) << st.message();
    for (float v : y)
      ASSERT_EQ(v, 1234.5f);
  }
  IgemmRun r = run_igemm(p, -1, 1, true);
  EXPECT_EQ(r.workspace_bytes, need);
  EXPECT_TRUE(exact(p, r));
  // The kernel-level run() with a short workspace.
  const Result<Prepared> prepared = kn::igemm_prepare_tile(p, emulated_device_info(), kn::kIgemm64x64, 3);
  ASSERT_TRUE(prepared.is_ok());
  KernelArgs a;
  a.problem = &p;
  a.prepared = prepared->state.get();
  a.x = x.data(), a.w = w.data(), a.bias = bias.data(), a.y = y.data();
  a.workspace = workspace.data();
  a.workspace_bytes = prepared->workspace_bytes - 4;
  const Status st = kn::emu::igemm_run(a);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find("split-K over 3 splits"), std::string::npos) << st.message();
  for (float v : y)
    ASSERT_EQ(v, 1234.5f);
  EXPECT_EQ(kn::igemm_prepare_tile(p, emulated_device_info(), kn::kIgemm64x64, -1).status().code(),
            StatusCode::kInvalidArgument);
}

// A split plan writes y only in its second launch: a failing first launch (grid.y past 65535) or a failing reduction
// launch (a grid of zero blocks) leaves y as it was; the unmodified plan writes it.
TEST(KernelsIgemm, SplitKFailedLaunchWritesNothing) {
  const ConvProblem p = must_make(conv(1, 8, 5, 1, {4, 5}, {3, 3}, 1, 1)); // 9 k-tiles
  const Result<Prepared> prepared = kn::igemm_prepare_tile(p, emulated_device_info(), kn::kIgemm64x64, 3);
  ASSERT_TRUE(prepared.is_ok());
  const auto& good = *static_cast<const kn::KernelPlan<kn::IgemmParams>*>(prepared->state.get());
  ASSERT_EQ(good.params.splits, 3);
  const std::vector<float> x = fill(p.x_elements(), 1, true), w = fill(p.w_elements(), 2, true);
  std::vector<float> workspace(prepared->workspace_bytes / 4, 0.0f);
  for (int which = 0; which < 3; ++which) {
    kn::KernelPlan<kn::IgemmParams> plan = good;
    if (which == 0)
      plan.grid = dim3(1, 70000);
    else if (which == 1)
      plan.params.reduce_blocks = 0;
    std::vector<float> y(static_cast<size_t>(p.y_elements()), 42.0f);
    KernelArgs a;
    a.problem = &p;
    a.prepared = &plan;
    a.x = x.data(), a.w = w.data(), a.y = y.data();
    a.workspace = workspace.data();
    a.workspace_bytes = prepared->workspace_bytes;
    const Status st = kn::emu::igemm_run(a);
    int64_t untouched = 0;
    for (float v : y)
      untouched += v == 42.0f ? 1 : 0;
    if (which == 2) {
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      EXPECT_LT(untouched, p.y_elements());
    } else {
      EXPECT_FALSE(st.is_ok()) << "launch " << which << " should fail";
      EXPECT_EQ(untouched, p.y_elements()) << "launch " << which;
    }
  }
}

// The rule on the emulated device's profile (sm_90, 132 SMs): a batch-1 7x7x512 3x3 layer (8 tiles of 64x64, 576
// k-tiles) splits, filling the slots with >= 4 k-tiles per split; a batch-32 56x56 layer and a 64-bit problem do not;
// a tiny Kdim does not (fewer than 2 x 4 k-tiles).
TEST(KernelsIgemm, SplitKRuleOnTheEmulatedProfile) {
  const DeviceInfo dev = emulated_device_info();
  ASSERT_EQ(dev.sms, 132);
  const auto plan_of = [&](const ConvProblem& p) {
    const Result<Prepared> prepared = kn::igemm_prepare(p, dev);
    EXPECT_TRUE(prepared.is_ok());
    return std::make_pair(*static_cast<const kn::KernelPlan<kn::IgemmParams>*>(prepared->state.get()),
                          prepared->workspace_bytes);
  };
  const ConvProblem small = must_make(conv(1, 512, 512, 1, {7, 7}, {3, 3}, 1, 1));
  const auto [sp, sws] = plan_of(small);
  EXPECT_EQ(sp.variant / 4, kn::kIgemm64x64);
  EXPECT_EQ(sp.params.total_tiles, 8);
  EXPECT_EQ(sp.params.k_tiles, 576);
  EXPECT_GT(sp.params.splits, 1);
  EXPECT_LE(sp.params.total_tiles * sp.params.splits, 132 * 6); // 6 blocks of 64x64 per SM
  EXPECT_GE(sp.params.total_tiles * sp.params.splits, 132 * 3); // at least half of the slots filled
  EXPECT_GE(sp.params.split_k_tiles, kn::kIgemmMinSplitKTiles);
  EXPECT_EQ(sws, static_cast<size_t>(sp.params.splits * small.y_elements()) * 4);
  EXPECT_LE(sp.grid.x, 3u); // the executor's cap
  const ConvProblem large = must_make(conv(32, 64, 64, 1, {56, 56}, {3, 3}, 1, 1));
  const auto [lp, lws] = plan_of(large);
  EXPECT_EQ(lp.params.splits, 1);
  EXPECT_EQ(lws, 0u);
  EXPECT_EQ(plan_of(must_make(conv(1, 2, 8, 1, {4, 4}, {3, 3}, 1, 1))).first.params.splits, 1); // 3 k-tiles
  ProblemDesc wide = conv(1, 64, 3, 1, {3, 5}, {3, 3});
  wide.stride = {int64_t{1} << 31, 1, 1};
  EXPECT_EQ(plan_of(must_make(wide)).first.params.splits, 1);
  const Result<Prepared> forced_wide = kn::igemm_prepare_tile(must_make(wide), dev, kn::kIgemm64x64, 4);
  ASSERT_TRUE(forced_wide.is_ok());
  EXPECT_EQ(static_cast<const kn::KernelPlan<kn::IgemmParams>*>(forced_wide->state.get())->params.splits, 1);
  EXPECT_EQ(forced_wide->workspace_bytes, 0u);
  // A CUDA device with fewer SMs splits less (the rule follows the plan's device).
  DeviceInfo few = dev;
  few.sms = 16;
  const Result<Prepared> fewer = kn::igemm_prepare(small, few);
  ASSERT_TRUE(fewer.is_ok());
  EXPECT_LT(static_cast<const kn::KernelPlan<kn::IgemmParams>*>(fewer->state.get())->params.splits, sp.params.splits);
  // The batch-1 layer runs through a Plan with its split (a smaller twin: 3x3x64 at 7x7, the same rule).
  const ConvProblem twin = must_make(conv(1, 64, 16, 1, {7, 7}, {3, 3}, 1, 1));
  ASSERT_GT(plan_of(twin).first.params.splits, 1);
  EXPECT_TRUE(exact(twin, run_igemm(twin, -1, 5, true)));
}

} // namespace
} // namespace convarith::test
