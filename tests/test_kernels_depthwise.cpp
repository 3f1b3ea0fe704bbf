// The `depthwise` kernel (kernels/conv_depthwise.cuh) under the CPU kernel executor: the depthwise edge list in
// every dtype, layout and epilogue the row declares; real MobileNetV2, EfficientNet-B0 and DeepLabv3 depthwise
// layers scaled down to a small batch and map; the generic tap loop forced on the fast shapes (the same bits);
// Inf weights next to padding; bitwise determinism run to run and in reverse thread order; the shape and index
// width prepare() chooses; supports()' reasons; `auto` taking depthwise by its cost estimate. Against the fp64
// reference (oracle::reference on the problem's formats), exact on small integers, otherwise within
// oracle::accept; outputs NaN-poisoned before every run; every launch checked against sm_90 with the resource
// table's registers, every access against the tensors' extents (executor.hpp).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "conv_depthwise.cuh"
#include "convarith/convarith.hpp"
#include "executor.hpp"
#include "kernel_formats.hpp"
#include "reference/reference.hpp"
#include "row.hpp"
#include "support/support.hpp"

namespace convarith::test {
namespace {

namespace kn = kernels;

// A depthwise conv: groups = C, K = C * multiplier, the same stride, padding and dilation on every axis.
ProblemDesc dw(int64_t n, int64_t c, int64_t multiplier, std::vector<int64_t> in, std::vector<int64_t> ker,
               int64_t stride = 1, int64_t pad = 0, int64_t dil = 1) {
  return layer(Op::kConv, n, c, c * multiplier, c, std::move(in), std::move(ker), stride, pad, pad, dil);
}

struct DwRun {
  Status status;
  Buffer y;
  std::vector<double> values; // y in memory order
};

// One run of the depthwise row on NaN-poisoned y (y = z for the in-place format): shape < 0 through
// Plan::create(p, kEmulated, "depthwise") and Plan::run, else that tap loop through depthwise_prepare_shape.
DwRun run_dw(const ConvProblem& p, const TensorSet& in, bool with_bias, bool z_is_y, int shape = -1,
             bool reverse = false) {
  DwRun r;
  r.y = make_buffer(p.tensor(TensorId::kY));
  if (z_is_y)
    r.y.bytes = in.z.bytes;
  else
    poison(r.y);
  const emu::Options saved = emu::options();
  emu::Options options = saved;
  options.require_resources = true;
  options.reverse_thread_order = reverse;
  emu::set_options(options);
  const void* bias = with_bias ? in.bias.data() : nullptr;
  const void* z = p.epilogue().has_residual() ? (z_is_y ? r.y.data() : in.z.data()) : nullptr;
  if (shape < 0) {
    Result<Plan> plan = Plan::create(p, Device::kEmulated, "depthwise");
    if (!plan) {
      r.status = plan.status();
    } else {
      Tensors t;
      t.x = in.x.data(), t.w = in.w.data(), t.bias = bias, t.z = z, t.y = r.y.data();
      r.status = plan->run(t, nullptr, 0);
    }
  } else {
    const Result<Prepared> prepared = kn::depthwise_prepare_shape(p, emulated_device_info(), shape);
    if (!prepared) {
      r.status = prepared.status();
    } else {
      KernelArgs a;
      a.problem = &p;
      a.prepared = prepared->state.get();
      a.x = in.x.data(), a.w = in.w.data(), a.bias = bias, a.z = z, a.y = r.y.data();
      const auto bytes = [&](TensorId id, const void* ptr) {
        return ptr != nullptr ? static_cast<size_t>(p.tensor(id).bytes()) : size_t{0};
      };
      const emu::GlobalExtents extents({{a.x, bytes(TensorId::kX, a.x), "x"},
                                        {a.w, bytes(TensorId::kW, a.w), "w"},
                                        {bias, bytes(TensorId::kBias, bias), "bias"},
                                        {z, bytes(TensorId::kZ, z), "z"},
                                        {a.y, bytes(TensorId::kY, a.y), "y"}});
      r.status = kn::emu::depthwise_run(a);
    }
  }
  emu::set_options(saved);
  if (r.status.is_ok())
    r.values = oracle::to_double(p, TensorId::kY, r.y.data());
  return r;
}

// Small integers exactly (unless the activation is transcendental), then random floats within oracle::accept, in
// both thread orders and bitwise the same; where the problem has a fast tap loop, the generic one gives the same
// bits.
void check_problem(const ConvProblem& p, const Format& f) {
  const bool bias = has_bias(f) && p.bias_elements() > 0;
  if (exact_epilogue(f)) {
    const TensorSet ints = make_inputs(p, 29 + static_cast<uint64_t>(p.y_elements()), true);
    const DwRun got = run_dw(p, ints, bias, in_place(f));
    ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
    const std::vector<double> want = oracle::reference(p, oracle_tensors(ints, bias));
    const Mismatch m = exact_mismatches(p, got.values, want);
    EXPECT_EQ(m.bad, 0) << "integer inputs: " << m.bad << " of " << want.size() << " differ, first at " << m.first
                        << ": got " << m.got << " want " << m.want;
  }
  const uint64_t seed = 1000 + static_cast<uint64_t>(p.x_elements());
  const TensorSet floats = make_inputs(p, seed, false);
  const oracle::Tensors ot = oracle_tensors(floats, bias);
  const std::vector<double> want = oracle::reference(p, ot);
  const std::vector<double> magnitude = oracle::reference_magnitude(p, ot);
  const DwRun forward = run_dw(p, floats, bias, in_place(f));
  const DwRun reverse = run_dw(p, floats, bias, in_place(f), -1, true);
  ASSERT_TRUE(forward.status.is_ok()) << forward.status.to_string();
  ASSERT_TRUE(reverse.status.is_ok()) << reverse.status.to_string();
  const oracle::Verdict v = oracle::accept(p, forward.values, want, magnitude);
  EXPECT_TRUE(v.pass) << "random floats (seed " << seed << "): " << v.bad << " bad (" << v.nan_bad << " NaN), first "
                      << v.first_bad << ", worst error/bound " << v.worst_ratio;
  EXPECT_EQ(forward.y.bytes, reverse.y.bytes) << "reverse thread order changed the bits";
  if (kn::depthwise_shape(p) != kn::kDepthwiseGeneric && kn::index_fits_int32(p)) {
    const DwRun generic = run_dw(p, floats, bias, in_place(f), kn::kDepthwiseGeneric);
    ASSERT_TRUE(generic.status.is_ok()) << generic.status.to_string();
    EXPECT_EQ(forward.y.bytes, generic.y.bytes) << "the generic tap loop gives other bits than the fast one";
  }
}

// The edge list, depthwise: 1x1, kernel larger than the input with padding, stride > kernel, dilation 2-3, prime
// sizes, multipliers 1/2/3, asymmetric padding, C = 1, an output narrower than one chunk, ranks 1 and 3 (with a
// unit depth kernel over depth padding: the fast loop's skipped plane), every fast shape, N = 0.
std::vector<NamedProblem> edge_list() {
  std::vector<NamedProblem> v;
  const auto add = [&](const std::string& name, ProblemDesc d) { v.push_back({name, must_make(d)}); };
  add("1x1", dw(2, 5, 1, {6, 5}, {1, 1}));
  add("kernel_larger_than_input", dw(1, 3, 1, {3, 2}, {5, 4}, 1, 2));
  add("stride_gt_kernel", dw(1, 4, 1, {11, 10}, {2, 2}, 3));
  add("dilation2", dw(1, 3, 1, {9, 8}, {3, 3}, 1, 2, 2));
  add("dilation3_stride2", dw(1, 2, 2, {11, 10}, {3, 2}, 2, 1, 3));
  add("prime_3x3_s1", dw(1, 7, 1, {13, 11}, {3, 3}, 1, 1));
  add("prime_5x5_s1", dw(1, 3, 1, {13, 11}, {5, 5}, 1, 2));
  add("5x5_s2", dw(2, 4, 1, {12, 11}, {5, 5}, 2, 2));
  add("multiplier2_3x3_s1", dw(1, 4, 2, {7, 9}, {3, 3}, 1, 1));
  add("multiplier3_3x3_s2", dw(1, 3, 3, {9, 7}, {3, 3}, 2, 1));
  ProblemDesc asym = dw(1, 3, 1, {6, 7}, {3, 3});
  asym.pad_lo = {0, 2, 0}, asym.pad_hi = {2, 1, 0};
  add("asymmetric_padding", asym);
  add("c1", dw(1, 1, 1, {7, 7}, {3, 3}, 1, 1));
  add("c1_multiplier3", dw(2, 1, 3, {6, 5}, {3, 3}, 2, 1));
  add("output_narrower_than_a_chunk", dw(1, 3, 1, {5, 3}, {3, 3}));
  add("rank1", dw(2, 3, 2, {17}, {4}, 2, 1));
  add("rank3", dw(1, 2, 2, {5, 6, 4}, {3, 3, 2}, 1, 1));
  add("rank3_unit_depth_kernel_padded", dw(1, 3, 1, {3, 6, 7}, {1, 3, 3}, 1, 1));
  add("n0", dw(0, 4, 1, {5, 5}, {3, 3}, 1, 1));
  return v;
}

// Every edge problem in every format the row declares (f32 / f16 / bf16, NC[D]HW / N[D]HWC, each epilogue; the
// filter in the activations' layout: with C/g = 1 both filter layouts are the same memory, see below).
TEST(KernelsDepthwise, EdgeListEveryFormat) {
  const Algorithm* row = find_algorithm("depthwise", Device::kEmulated);
  ASSERT_NE(row, nullptr);
  int rotate = 0, ran = 0;
  for (const NamedProblem& np : edge_list()) {
    ASSERT_TRUE(row->supports(np.problem).is_ok()) << np.name << ": " << row->supports(np.problem).to_string();
    for (const Format& f : formats_of(*row, Op::kConv, rotate++)) {
      if (f.w_layout != f.layout)
        continue;
      const ConvProblem p = with_format(np.problem, f);
      SCOPED_TRACE(np.name + " " + format_name(f) + " (" + p.name() + ")");
      check_problem(p, f);
      ++ran;
    }
  }
  EXPECT_EQ(ran, static_cast<int>(edge_list().size()) * 3 * 2 * 5);
}

// A filter layout other than the activations' is the same memory for C/g = 1, and runs.
TEST(KernelsDepthwise, EitherFilterLayout) {
  for (Layout l : {Layout::kNCHW, Layout::kNHWC}) {
    for (Layout wl : {Layout::kNCHW, Layout::kNHWC}) {
      const ConvProblem p = with_format(must_make(dw(1, 4, 2, {7, 9}, {3, 3}, 1, 1)),
                                        Format{DataType::kF16, l, wl, Epi::kReluResidual, 0});
      SCOPED_TRACE(p.name());
      check_problem(p, Format{DataType::kF16, l, wl, Epi::kReluResidual, 0});
    }
  }
}

// Real depthwise layers at batch 1-2 on maps scaled down to 9-16 (channels as published): MobileNetV2
// (bench/layers.csv M01, M02, M07: 3x3 s1/s2, bias + ReLU6), EfficientNet-B0 (MBConv 5x5 s2 on 144 channels and
// 5x5 s1 on 240, SiLU; the network's published architecture: LAYERS.md lists none), DeepLabv3's MobileNetV2
// backbone (D4: 3x3 dilation 2, 960 channels scaled to 64), in f32 NCHW, f16 NHWC and bf16 NHWC.
TEST(KernelsDepthwise, RealLayersScaledDown) {
  struct Real {
    const char* name;
    ProblemDesc d;
    Activation act;
  };
  const Real layers[] = {
      {"M01 dw32 s1", dw(2, 32, 1, {16, 16}, {3, 3}, 1, 1), Activation::kClip},
      {"M02 dw96 s2", dw(1, 96, 1, {16, 16}, {3, 3}, 2, 1), Activation::kClip},
      {"M07 dw384 s1", dw(1, 384, 1, {7, 7}, {3, 3}, 1, 1), Activation::kClip},
      {"EfficientNet-B0 dw144 5x5 s2", dw(1, 144, 1, {14, 14}, {5, 5}, 2, 2), Activation::kSilu},
      {"EfficientNet-B0 dw240 5x5 s1", dw(1, 240, 1, {9, 9}, {5, 5}, 1, 2), Activation::kSilu},
      {"D4 dw960 d2 (64 channels)", dw(1, 64, 1, {11, 11}, {3, 3}, 1, 2, 2), Activation::kClip},
  };
  const struct {
    DataType dtype;
    Layout layout;
  } formats[] = {{DataType::kF32, Layout::kNCHW}, {DataType::kF16, Layout::kNHWC}, {DataType::kBF16, Layout::kNHWC}};
  for (const Real& l : layers) {
    for (const auto& fmt : formats) {
      ProblemDesc d = l.d;
      d.dtype = fmt.dtype;
      d.layout = fmt.layout;
      d.epilogue.activation = l.act;
      d.epilogue.clip_min = 0.0f, d.epilogue.clip_max = 6.0f; // ReLU6
      const ConvProblem p = must_make(d);
      SCOPED_TRACE(std::string(l.name) + " " + p.name());
      const TensorSet floats = make_inputs(p, 77, false);
      const oracle::Tensors ot = oracle_tensors(floats, true);
      const DwRun got = run_dw(p, floats, true, false);
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      const oracle::Verdict v =
          oracle::accept(p, got.values, oracle::reference(p, ot), oracle::reference_magnitude(p, ot));
      EXPECT_TRUE(v.pass) << v.bad << " bad (" << v.nan_bad << " NaN), first " << v.first_bad << ", worst ratio "
                          << v.worst_ratio;
      if (l.act == Activation::kClip) { // ReLU6 of small-integer sums: exact
        const TensorSet ints = make_inputs(p, 78, true);
        const DwRun exact = run_dw(p, ints, true, false);
        ASSERT_TRUE(exact.status.is_ok()) << exact.status.to_string();
        const Mismatch m = exact_mismatches(p, exact.values, oracle::reference(p, oracle_tensors(ints, true)));
        EXPECT_EQ(m.bad, 0) << "first at " << m.first << ": got " << m.got << " want " << m.want;
      }
    }
  }
}

// Bitwise the same run to run (and in the other thread order, see check_problem) on random floats.
TEST(KernelsDepthwise, BitwiseDeterministicRunToRun) {
  for (Layout l : {Layout::kNCHW, Layout::kNHWC}) {
    ProblemDesc d = dw(2, 24, 2, {13, 11}, {3, 3}, 1, 1);
    d.layout = l;
    const ConvProblem p = must_make(d);
    const TensorSet in = make_inputs(p, 5, false);
    const DwRun a = run_dw(p, in, true, false);
    const DwRun b = run_dw(p, in, true, false);
    ASSERT_TRUE(a.status.is_ok()) << a.status.to_string();
    ASSERT_TRUE(b.status.is_ok()) << b.status.to_string();
    EXPECT_EQ(a.y.bytes, b.y.bytes) << layout_name(l);
    for (size_t e = 0; e < a.values.size(); ++e)
      ASSERT_FALSE(std::isnan(a.values[e])) << "y[" << e << "] unwritten";
  }
}

// Inf weights never meet padding: the fast loops predicate off the FMAs of out-of-input columns (and skip padded
// rows), so every output of a padded conv of ones is +-Inf where the reference has it, never Inf * 0 = NaN.
TEST(KernelsDepthwise, InfWeightsGiveInfAtTheBorder) {
  for (Layout l : {Layout::kNCHW, Layout::kNHWC}) {
    for (const std::vector<int64_t>& ker : {std::vector<int64_t>{3, 3}, std::vector<int64_t>{5, 5}}) {
      ProblemDesc d = dw(1, 3, 1, {6, 7}, ker, 1, ker[0] / 2);
      d.layout = l;
      const ConvProblem p = must_make(d);
      ASSERT_NE(kn::depthwise_shape(p), kn::kDepthwiseGeneric);
      TensorSet in = make_inputs(p, 3, true);
      for (int64_t i = 0; i < in.x.elements; ++i)
        store(in.x, i, 1.0f);
      const int64_t taps = ker[0] * ker[1];
      for (int64_t t = 0; t < taps; ++t) { // channel 0: +Inf taps, channel 1: one -Inf tap (the centre)
        store(in.w, t, INFINITY);
        store(in.w, taps + t, t == taps / 2 ? -INFINITY : 1.0f);
      }
      const DwRun got = run_dw(p, in, true, false);
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      const std::vector<double> want = oracle::reference(p, oracle_tensors(in, true));
      int64_t infinite = 0;
      for (size_t e = 0; e < want.size(); ++e) {
        ASSERT_FALSE(std::isnan(want[e]));
        infinite += std::isinf(want[e]) ? 1 : 0;
      }
      EXPECT_EQ(infinite, 2 * p.out_spatial()); // channels 0 and 1 everywhere, the border included
      const Mismatch m = exact_mismatches(p, got.values, want);
      EXPECT_EQ(m.bad, 0) << layout_name(l) << " " << ker[0] << "x" << ker[1] << ": first at " << m.first << " got "
                          << m.got << " want " << m.want;
    }
  }
}

// The tap loop and index width prepare() chooses: the fast shapes only where they fit (3x3 / 5x5, KD = 1, W stride
// 1 or 2, W dilation 1; H stride and dilation free), the generic loop otherwise and for 64-bit offsets.
TEST(KernelsDepthwise, ShapeAndIndexChoice) {
  const auto shape = [](ProblemDesc d) { return kn::depthwise_shape(must_make(d)); };
  EXPECT_EQ(shape(dw(1, 8, 1, {9, 9}, {3, 3}, 1, 1)), kn::kDepthwise3x3s1);
  EXPECT_EQ(shape(dw(1, 8, 1, {9, 9}, {3, 3}, 2, 1)), kn::kDepthwise3x3s2);
  EXPECT_EQ(shape(dw(1, 8, 1, {9, 9}, {5, 5}, 1, 2)), kn::kDepthwise5x5s1);
  EXPECT_EQ(shape(dw(1, 8, 1, {9, 9}, {5, 5}, 2, 2)), kn::kDepthwise5x5s2);
  EXPECT_EQ(shape(dw(1, 8, 1, {9, 9}, {3, 3}, 1, 2, 2)), kn::kDepthwiseGeneric); // W dilation 2
  EXPECT_EQ(shape(dw(1, 8, 1, {9, 9}, {3, 3}, 3, 1)), kn::kDepthwiseGeneric);    // W stride 3
  EXPECT_EQ(shape(dw(1, 8, 1, {9, 9}, {7, 7}, 1, 3)), kn::kDepthwiseGeneric);
  EXPECT_EQ(shape(dw(1, 8, 1, {9, 9}, {3, 5}, 1, 1)), kn::kDepthwiseGeneric);
  EXPECT_EQ(shape(dw(1, 8, 1, {4, 9, 9}, {3, 3, 3}, 1, 1)), kn::kDepthwiseGeneric);
  EXPECT_EQ(shape(dw(1, 8, 1, {4, 9, 9}, {1, 3, 3}, 1, 1)), kn::kDepthwise3x3s1);
  ProblemDesc hd = dw(1, 8, 1, {9, 9}, {3, 3}, 1, 1);
  hd.stride[0] = 2, hd.dilation[0] = 2, hd.pad_lo[0] = 2;
  EXPECT_EQ(shape(hd), kn::kDepthwise3x3s1); // H stride and dilation are run-time values of the fast loop
  const ConvProblem ph = must_make(hd);
  EXPECT_TRUE(kn::depthwise_prepare_shape(ph, emulated_device_info(), kn::kDepthwise5x5s1).status().code() ==
              StatusCode::kInvalidArgument);
  check_problem(ph, Format{});

  // 64-bit offsets: a 2^31 stride along H. The generic loop in its int64_t instantiation, exact.
  ProblemDesc wide = dw(1, 2, 2, {3, 9}, {3, 3});
  wide.stride[0] = int64_t{1} << 31;
  const ConvProblem pw = must_make(wide);
  ASSERT_FALSE(kn::index_fits_int32(pw));
  const Result<Prepared> prepared = kn::depthwise_prepare(pw, emulated_device_info());
  ASSERT_TRUE(prepared.is_ok());
  const auto* plan = static_cast<const kn::KernelPlan<kn::DepthwiseParams>*>(prepared->state.get());
  EXPECT_TRUE(plan->wide);
  EXPECT_EQ(plan->variant, kn::kDepthwiseGeneric * 2 + 1);
  EXPECT_EQ(plan->params.chunks, 2); // OW = 7: two chunks of 4
  EXPECT_EQ(plan->params.items, 1 * 4 * 1 * 1 * 2);
  check_problem(pw, Format{});
}

// supports(): groups == C only, the reason naming C, groups and C/groups; the declared formats in one place.
TEST(KernelsDepthwise, SupportsNamesTheNumbers) {
  const Algorithm* row = find_algorithm("depthwise", Device::kEmulated);
  ASSERT_NE(row, nullptr);
  EXPECT_TRUE(row->deterministic);
  EXPECT_TRUE(row->epilogue);
  const Status dense = row->supports(must_make(layer(Op::kConv, 1, 4, 6, 1, {6, 6}, {3, 3}, 1, 1, 1, 1)));
  EXPECT_EQ(dense.code(), StatusCode::kNotSupported);
  EXPECT_NE(dense.message().find("groups 1 must equal C 4"), std::string::npos) << dense.message();
  EXPECT_NE(dense.message().find("C/groups = 4"), std::string::npos) << dense.message();
  const Status grouped = row->supports(must_make(layer(Op::kConv, 1, 6, 6, 3, {6, 6}, {3, 3}, 1, 1, 1, 1)));
  EXPECT_EQ(grouped.code(), StatusCode::kNotSupported);
  EXPECT_NE(grouped.message().find("groups 3 must equal C 6"), std::string::npos) << grouped.message();
  const Status dense_c1 = row->supports(must_make(layer(Op::kConv, 1, 1, 5, 1, {6, 6}, {3, 3}, 1, 1, 1, 1)));
  EXPECT_TRUE(dense_c1.is_ok()) << dense_c1.to_string(); // C = groups = 1: one channel, multiplier 5
  ProblemDesc t = dw(1, 4, 1, {6, 6}, {3, 3});
  t.op = Op::kConvTranspose;
  Result<Plan> tp = Plan::create(must_make(t), Device::kEmulated, "depthwise");
  ASSERT_FALSE(tp.is_ok());
  EXPECT_NE(tp.status().message().find("depthwise"), std::string::npos) << tp.status().message();
}

// `auto` takes depthwise for depthwise layers by the cost estimates (below tiled's, igemm's and direct's at
// MobileNetV2's real sizes; prepared only, nothing runs), and never for a dense one.
TEST(KernelsDepthwise, AutoPicksDepthwiseByCost) {
  const DeviceInfo dev = emulated_device_info();
  for (const ProblemDesc& d : {dw(32, 32, 1, {112, 112}, {3, 3}, 1, 1), dw(32, 96, 1, {112, 112}, {3, 3}, 2, 1),
                               dw(1, 144, 1, {56, 56}, {3, 3}, 1, 1), dw(4, 16, 2, {20, 20}, {5, 5}, 1, 2)}) {
    const ConvProblem p = must_make(d);
    SCOPED_TRACE(p.name());
    const Result<Prepared> mine = kn::depthwise_prepare(p, dev);
    ASSERT_TRUE(mine.is_ok());
    for (const char* other : {"igemm", "tiled", "direct"}) {
      const Algorithm* row = find_algorithm(other, Device::kEmulated);
      ASSERT_NE(row, nullptr);
      if (!row->supports(p, dev).is_ok())
        continue;
      const Result<Prepared> theirs = row->prepare(p, dev);
      ASSERT_TRUE(theirs.is_ok());
      EXPECT_LT(mine->cost_us, theirs->cost_us) << other;
    }
    Result<Plan> plan = Plan::create(p, Device::kEmulated);
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    EXPECT_STREQ(plan->algorithm(), "depthwise");
  }
  Result<Plan> dense =
      Plan::create(must_make(layer(Op::kConv, 1, 8, 8, 1, {8, 8}, {3, 3}, 1, 1, 1, 1)), Device::kEmulated);
  ASSERT_TRUE(dense.is_ok());
  EXPECT_STRNE(dense->algorithm(), "depthwise");
}

} // namespace
} // namespace convarith::test
