// The CUDA kernel rows in every format they declare, on the emulated device (the CPU kernel executor running the
// very kernel source nvcc compiles), through the public path (Plan::create(p, Device::kEmulated, row) and
// Plan::run(Tensors)), against oracle::reference(p, Tensors) with the one acceptance rule oracle::accept.
//
// Formats: every (row x dtype x layout of x/z/y x layout of w x epilogue) a row declares: f32, f16, bf16;
// NCHW/NHWC for activations and, independently, for the filter; the epilogues identity (bias in T), relu with a
// residual z (bias f32), relu with z == y (in place), leaky_relu with alpha and beta and no bias, and one
// transcendental activation (rotating over the problems) with alpha and beta. Pooling: dtype x layout.
// Problems: seven small layers per conv op (groups, depthwise, stride + dilation + asymmetric padding, rank 1
// and 3, a 1x1 with several tiled channel chunks) and five pooling problems; plus f16 NHWC relu + residual on the
// whole edge list.
// Per format: small-integer inputs (x in [-1, 1], w in [-2, 2], bias and z in [-3, 3]) compared exactly (every
// fp32 sum is exact, so the kernel's one rounding to y's dtype equals the reference rounded to it); then random
// floats in [-1, 1] (stored values of the dtype) within oracle::accept, in forward and reverse thread order, and a
// deterministic row bitwise the same both ways. Outputs are NaN-poisoned (except the in-place case, where y holds
// z). Plus: scatter's workspace and its nothing-written-on-error promise under a failing launch.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "conv_tiled.cuh"
#include "convarith/convarith.hpp"
#include "executor.hpp"
#include "kernel_formats.hpp"
#include "row.hpp"
#include "support/support.hpp"
#include "transpose_scatter.cuh"

namespace convarith::test {
namespace {

struct Run {
  Status status;
  std::vector<double> y; // y's values in memory order
  Buffer raw;
};

Run run_plan(const Algorithm& row, const ConvProblem& p, const TensorSet& in, bool with_bias, bool z_is_y,
             bool reverse) {
  Run r;
  r.raw = make_buffer(p.tensor(TensorId::kY));
  if (z_is_y) {
    EXPECT_EQ(r.raw.bytes.size(), in.z.bytes.size());
    r.raw.bytes = in.z.bytes; // y starts as z; the kernel reads each z element before writing it
  } else {
    poison(r.raw);
  }
  Result<Plan> plan = Plan::create(p, Device::kEmulated, row.name);
  if (!plan.is_ok()) {
    r.status = plan.status();
    return r;
  }
  std::vector<unsigned char> ws(plan->workspace_bytes());
  const emu::Options saved = emu::options();
  emu::Options options = saved;
  options.reverse_thread_order = reverse;
  emu::set_options(options);
  Tensors t;
  t.x = in.x.data();
  t.w = in.w.data();
  t.bias = with_bias ? in.bias.data() : nullptr;
  t.z = z_is_y ? r.raw.data() : in.z.data();
  t.y = r.raw.data();
  r.status = plan->run(t, ws.empty() ? nullptr : ws.data(), ws.size());
  emu::set_options(saved);
  if (r.status.is_ok())
    r.y = oracle::to_double(p, TensorId::kY, r.raw.data());
  return r;
}

// Integers exactly (unless the activation is transcendental), then random floats within the rule (forward and
// reverse thread order).
void check_format(const Algorithm& row, const ConvProblem& p, const Format& f) {
  const bool bias = has_bias(f) && p.bias_elements() > 0;
  if (exact_epilogue(f)) {
    const TensorSet ints = make_inputs(p, 17 + static_cast<uint64_t>(p.y_elements()), true);
    const Run got = run_plan(row, p, ints, bias, in_place(f), false);
    ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
    const std::vector<double> want = oracle::reference(p, oracle_tensors(ints, bias));
    const Mismatch m = exact_mismatches(p, got.y, want);
    EXPECT_EQ(m.bad, 0) << "integer inputs: " << m.bad << " of " << want.size() << " differ, first at " << m.first
                        << ": got " << m.got << " want " << m.want;
  }
  const uint64_t seed = fresh_seed();
  const TensorSet floats = make_inputs(p, seed, false);
  const oracle::Tensors ot = oracle_tensors(floats, bias);
  const std::vector<double> want = oracle::reference(p, ot);
  const std::vector<double> magnitude = oracle::reference_magnitude(p, ot);
  const Run forward = run_plan(row, p, floats, bias, in_place(f), false);
  const Run reverse = run_plan(row, p, floats, bias, in_place(f), true);
  ASSERT_TRUE(forward.status.is_ok()) << forward.status.to_string();
  ASSERT_TRUE(reverse.status.is_ok()) << reverse.status.to_string();
  for (const Run* r : {&forward, &reverse}) {
    const oracle::Verdict v = oracle::accept(p, r->y, want, magnitude);
    EXPECT_TRUE(v.pass) << "random floats (seed " << seed << (r == &reverse ? ", reverse order" : "") << "): " << v.bad
                        << " bad (" << v.nan_bad << " NaN), first " << v.first_bad << ", worst error/bound "
                        << v.worst_ratio;
  }
  if (row.deterministic) {
    EXPECT_EQ(forward.raw.bytes, reverse.raw.bytes) << row.name << " is deterministic; seed " << seed;
  }
}

// A kernel row may decline a problem only for its own stated reason (tiled: shared memory; igemm: a filter layout
// other than the activations'; depthwise: groups != C), never for a format it declares.
bool runs(const Algorithm& row, const ConvProblem& p) {
  const Status s = row.supports(p);
  if (s.is_ok())
    return true;
  const std::string name(row.name);
  const bool own_reason = (name == "tiled" && s.message().find("shared memory") != std::string::npos) ||
                          (name == "igemm" && s.message().find("filter layout") != std::string::npos) ||
                          (name == "depthwise" && s.message().find("must equal C") != std::string::npos);
  EXPECT_TRUE(own_reason) << s.to_string();
  return false;
}

std::vector<NamedProblem> pool_problems() {
  std::vector<NamedProblem> v;
  auto add = [&](const std::string& name, ProblemDesc d) { v.push_back({name, must_make(d)}); };
  ProblemDesc a = layer(Op::kMaxPool, 2, 5, 5, 1, {9, 8}, {3, 3}, 2, 1, 1, 1);
  a.ceil_mode = true;
  add("max3x3_s2_ceil", a);
  add("avg2x2", layer(Op::kAvgPool, 1, 6, 6, 1, {6, 7}, {2, 2}, 2, 0, 0, 1));
  ProblemDesc b = layer(Op::kAvgPool, 1, 3, 3, 1, {7, 7}, {3, 3}, 1, 1, 1, 1);
  b.count_include_pad = true;
  add("avg3x3_cip", b);
  add("max_rank1_dil2", layer(Op::kMaxPool, 2, 4, 4, 1, {13}, {3}, 1, 1, 1, 2));
  add("avg_rank3", layer(Op::kAvgPool, 1, 3, 3, 1, {4, 5, 6}, {2, 2, 3}, 1, 0, 1, 1));
  return v;
}

struct FormatCase {
  const Algorithm* row = nullptr;
  NamedProblem problem;
  int index = 0;
};

void PrintTo(const FormatCase& c, std::ostream* os) {
  *os << c.row->name << " on " << c.problem.name << " (" << c.problem.problem.name() << ")";
}

std::vector<FormatCase> format_cases() {
  std::vector<FormatCase> cases;
  for (const Algorithm& row : algorithm_table()) {
    if (row.device != Device::kEmulated)
      continue;
    for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool}) {
      if (!(row.ops & op_bit(op)))
        continue;
      const std::vector<NamedProblem> problems = is_pool(op) ? pool_problems() : conv_like(op);
      int index = 0;
      for (const NamedProblem& np : problems)
        cases.push_back({&row, np, index++});
    }
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<FormatCase>& info) {
  return param_name(std::string(info.param.row->name) + "_" + op_name(info.param.problem.problem.op()) + "_" +
                    info.param.problem.name);
}

class KernelFormats : public ::testing::TestWithParam<FormatCase> {};

TEST_P(KernelFormats, EveryDeclaredFormatMatchesReference) {
  const Algorithm& row = *GetParam().row;
  const ConvProblem& base = GetParam().problem.problem;
  const std::vector<Format> formats = formats_of(row, base.op(), GetParam().index);
  // conv rows: declared dtypes x 2 x 2 layouts x 5 epilogues (igemm: f32 only); pool: 3 dtypes x 2 layouts.
  const size_t dtypes = std::string(row.name) == "igemm" ? 1u : 3u;
  EXPECT_EQ(formats.size(), is_pool(base.op()) ? 6u : dtypes * 20u)
      << row.name << " declares fewer formats than it runs";
  int ran = 0;
  for (const Format& f : formats) {
    const ConvProblem p = with_format(base, f);
    SCOPED_TRACE(format_name(f) + " (" + p.name() + ")");
    if (!runs(row, p))
      continue;
    check_format(row, p, f);
    ++ran;
  }
  if (ran == 0)
    GTEST_SKIP() << row.name << " declines " << base.name();
}

INSTANTIATE_TEST_SUITE_P(Emulated, KernelFormats, ::testing::ValuesIn(format_cases()), case_name);

// f16, NHWC activations and filters, relu + bias + residual: the inference format, over the whole edge list.
class KernelFormatsEdges : public ::testing::TestWithParam<const Algorithm*> {};

TEST_P(KernelFormatsEdges, F16NhwcReluResidualOnTheEdgeList) {
  const Algorithm& row = *GetParam();
  if (!(row.dtypes & dtype_bit(DataType::kF16)))
    GTEST_SKIP() << row.name
                 << " does not declare f16 (its f32 NHWC formats run in EveryDeclaredFormatMatchesReference)";
  int ran = 0;
  for (const NamedProblem& np : edge_problems()) {
    if (!(row.ops & op_bit(np.problem.op())))
      continue;
    Format f;
    f.dtype = DataType::kF16;
    f.layout = Layout::kNHWC;
    f.w_layout = Layout::kNHWC;
    f.epi = is_pool(np.problem.op()) ? Epi::kIdentity : Epi::kReluResidual;
    const ConvProblem p = with_format(np.problem, f);
    SCOPED_TRACE(np.name + " (" + p.name() + ")");
    if (!runs(row, p))
      continue;
    check_format(row, p, f);
    ++ran;
  }
  // depthwise takes the list's depthwise problems only (groups == C); test_kernels_depthwise has its own list.
  EXPECT_GT(ran, std::string(row.name) == "depthwise" ? 2 : 3) << row.name;
}

std::vector<const Algorithm*> emulated_rows() {
  std::vector<const Algorithm*> v;
  for (const Algorithm& row : algorithm_table())
    if (row.device == Device::kEmulated)
      v.push_back(&row);
  return v;
}

INSTANTIATE_TEST_SUITE_P(Emulated, KernelFormatsEdges, ::testing::ValuesIn(emulated_rows()),
                         [](const ::testing::TestParamInfo<const Algorithm*>& row_info) {
                           return param_name(row_info.param->name);
                         });

// tiled's compile-time tap loops (kTaps = 1 and 3, cpt = 8): the predicates that skip taps outside the input at every
// border, several channel chunks with a short last one, a second channel tile past K/g, strides, dilation,
// asymmetric and one-sided padding, a kernel larger than the input, groups and rank 3 (the depth taps stay a run-time
// loop), in every format tiled declares; each problem must take the specialisation it is here for.
std::vector<NamedProblem> tiled_tap_problems() {
  std::vector<NamedProblem> v;
  auto add = [&](const std::string& name, ProblemDesc d) { v.push_back({name, must_make(d)}); };
  add("k3_chunks_c20_k16", layer(Op::kConv, 1, 20, 16, 1, {6, 9}, {3, 3}, 1, 1, 1, 1));
  add("k3_s2_d2_pad0x2_k8", layer(Op::kConv, 1, 3, 8, 1, {9, 10}, {3, 3}, 2, 0, 2, 2));
  add("k3_larger_than_input_k24", layer(Op::kConv, 1, 2, 24, 1, {2, 2}, {3, 3}, 1, 2, 1, 1));
  add("k3_groups2_rank3", layer(Op::kConv, 1, 4, 16, 2, {3, 4, 5}, {2, 3, 3}, 1, 1, 1, 1));
  add("k1_padded_s2_c33_k24", layer(Op::kConv, 1, 33, 24, 1, {5, 6}, {1, 1}, 2, 1, 2, 1));
  add("k1_groups3", layer(Op::kConv, 2, 6, 24, 3, {4, 3}, {1, 1}, 1, 0, 0, 1));
  return v;
}

TEST(KernelFormatsTiledTaps, EveryFormatOnTheSpecialisedTapLoops) {
  const Algorithm* row = find_algorithm("tiled", Device::kEmulated);
  ASSERT_NE(row, nullptr);
  int ran = 0, rotate = 0;
  for (const NamedProblem& np : tiled_tap_problems()) {
    const int want_taps = static_cast<int>(np.problem.axis3(2).k);
    EXPECT_EQ(kernels::tiled_taps_variant(np.problem, kernels::tiled_config(np.problem).cpt), want_taps) << np.name;
    for (const Format& f : formats_of(*row, Op::kConv, rotate++)) {
      const ConvProblem p = with_format(np.problem, f);
      SCOPED_TRACE(np.name + " " + format_name(f) + " (" + p.name() + ")");
      ASSERT_TRUE(runs(*row, p));
      check_format(*row, p, f);
      ++ran;
    }
  }
  EXPECT_GT(ran, 6 * 8);
}

// An Inf weight on tap (0, 0) reaches only the outputs whose tap (0, 0) is inside the input: the specialised loops
// skip the padded taps (a multiplied zero would make NaN), as the run-time loops do.
TEST(KernelFormatsTiledTaps, InfWeightNextToPaddingStaysInf) {
  for (int64_t k : {1, 3}) {
    const ConvProblem p = must_make(layer(Op::kConv, 1, 2, 8, 1, {4, 5}, {k, k}, 1, 1, 1, 1));
    ASSERT_EQ(kernels::tiled_taps_variant(p, kernels::tiled_config(p).cpt), k);
    std::vector<float> x(static_cast<size_t>(p.x_elements()), 1.0f), w(static_cast<size_t>(p.w_elements()), 1.0f);
    w[0] = std::numeric_limits<float>::infinity(); // k = 0, c = 0, tap (0, 0)
    std::vector<float> y(static_cast<size_t>(p.y_elements()), std::numeric_limits<float>::quiet_NaN());
    Result<Plan> plan = Plan::create(p, Device::kEmulated, "tiled");
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    ASSERT_TRUE(plan->run(x.data(), w.data(), nullptr, y.data()).is_ok());
    const int64_t oh = p.out3(1), ow = p.out3(2);
    for (int64_t kk = 0; kk < p.k(); ++kk)
      for (int64_t h = 0; h < oh; ++h)
        for (int64_t c = 0; c < ow; ++c) {
          const float v = y[static_cast<size_t>((kk * oh + h) * ow + c)];
          // Tap (0, 0) of output (h, c) reads input (h - 1, c - 1).
          const bool inf_tap = kk == 0 && h - 1 >= 0 && c - 1 >= 0 && h - 1 < 4 && c - 1 < 5;
          if (inf_tap)
            EXPECT_EQ(v, std::numeric_limits<float>::infinity()) << "k " << k << " at " << h << "," << c;
          else
            EXPECT_TRUE(std::isfinite(v)) << "k " << k << " channel " << kk << " at " << h << "," << c << ": " << v;
        }
  }
}

// The CUDA rows declare what they run: every dtype, both layouts, the epilogue for the conv rows; pooling none.
TEST(KernelFormatsTable, RowsDeclareTheirFormats) {
  const unsigned all_dtypes = dtype_bit(DataType::kF32) | dtype_bit(DataType::kF16) | dtype_bit(DataType::kBF16);
  const unsigned both = layout_bit(Layout::kNCHW) | layout_bit(Layout::kNHWC);
  for (Device device : {Device::kCuda, Device::kEmulated}) {
    for (const char* name : {"tiled", "direct", "gather", "scatter", "pool"}) {
      const Algorithm* row = find_algorithm(name, device);
      ASSERT_NE(row, nullptr) << name;
      EXPECT_EQ(row->dtypes, all_dtypes) << name;
      EXPECT_EQ(row->layouts, both) << name;
      EXPECT_EQ(row->epilogue, std::string(name) != "pool") << name;
      EXPECT_FALSE(row->mixed_dtypes) << name;
    }
  }
}

// ---- scatter: the fp32 workspace and nothing written on error ---------------------------------------------------
ConvProblem scatter_problem(const Format& f) {
  return with_format(must_make(layer(Op::kConvTranspose, 1, 3, 4, 1, {5, 6}, {3, 3}, 2, 1, 1, 1)), f);
}

TEST(KernelFormatsScatter, WorkspaceIsOneFloatPerOutput) {
  for (DataType dt : {DataType::kF32, DataType::kF16}) {
    Format f;
    f.dtype = dt;
    const ConvProblem p = scatter_problem(f);
    Result<Plan> plan = Plan::create(p, Device::kEmulated, "scatter");
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    EXPECT_EQ(plan->workspace_bytes(), static_cast<size_t>(p.y_elements()) * sizeof(float));
  }
}

// Scatter runs three steps: zero the fp32 workspace, the atomic scatter into it, the finish kernel writing y. A
// launch that fails after the first step (here: the scatter kernel's launch, made invalid by a grid.y past the
// 65535 limit) must leave y as it was. The old design (bias fill of y, then the scatter) fails this: y was
// bias-filled before the failing launch. A failing finish launch (grid of zero blocks) writes nothing either.
TEST(KernelFormatsScatter, FailedLaunchWritesNothing) {
  for (Epi e : {Epi::kIdentity, Epi::kReluResidual}) {
    Format f;
    f.epi = e;
    const ConvProblem p = scatter_problem(f);
    const Result<Prepared> prepared = kernels::scatter_prepare(p, emulated_device_info());
    ASSERT_TRUE(prepared.is_ok());
    const auto& good = *static_cast<const kernels::KernelPlan<kernels::ScatterParams>*>(prepared->state.get());
    const TensorSet in = make_inputs(p, 5, true);
    std::vector<float> ws(static_cast<size_t>(p.y_elements()));
    for (int which = 0; which < 3; ++which) {
      kernels::KernelPlan<kernels::ScatterParams> plan = good;
      if (which == 0)
        plan.grid = dim3(1, 70000); // the scatter kernel cannot launch
      else if (which == 1)
        plan.params.finish_blocks = 0; // the finish kernel cannot launch
      std::vector<float> y(static_cast<size_t>(p.y_elements()), 42.0f);
      KernelArgs args;
      args.problem = &p;
      args.prepared = &plan;
      args.x = in.x.data();
      args.w = in.w.data();
      args.bias = in.bias.data();
      args.z = p.epilogue().has_residual() ? in.z.data() : nullptr;
      args.y = y.data();
      args.workspace = ws.data();
      args.workspace_bytes = ws.size() * sizeof(float);
      const Status s = kernels::emu::scatter_run(args);
      if (which == 2) { // the unmodified plan runs and writes every element
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        int64_t untouched = 0;
        for (float v : y)
          untouched += v == 42.0f ? 1 : 0;
        EXPECT_LT(untouched, p.y_elements());
        continue;
      }
      EXPECT_FALSE(s.is_ok()) << "launch " << which << " should fail";
      for (size_t i = 0; i < y.size(); ++i)
        ASSERT_EQ(y[i], 42.0f) << "scatter wrote y[" << i << "] before a failed launch (" << which << ")";
    }
  }
}

} // namespace
} // namespace convarith::test
