// tests/test_cpu_amx.cpp — the "cpu_amx_bf16" row (host/cpu/cpu_amx.cpp): bf16 convolution on AMX tiles. Every
// problem runs twice where the CPU has AMX: on the tiles and on the row's scalar model of the tile product (the
// same blocking, gather, packing and epilogue; CPUs without AMX run the model only), and the two must agree bit
// for bit. Against the fp64 reference (oracle::reference on the problem's formats): exact on small integers,
// otherwise within oracle::accept, in every layout and epilogue the row declares, over the conv edge list and
// shapes that cross the row's 32-pixel, 32-channel and 32-deep steps, its pixel blocks and column splits. Inputs
// the tiles cannot take exactly (Inf, NaN, subnormals, values whose products could flush) must go to cpu_gemm
// (counted, and bitwise cpu_gemm's result); errors write nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "cpu/cpu_ops.hpp"
#include "kernel_formats.hpp"
#include "reference/reference.hpp"
#include "row.hpp"
#include "support/support.hpp"

namespace convarith::test {
namespace {

// Scoped: the scalar model instead of the tiles (and supports() true on CPUs without AMX).
class Emulation {
public:
  explicit Emulation(bool on) : saved_(detail::cpu_amx_emulation()) { detail::set_cpu_amx_emulation(on); }
  ~Emulation() { detail::set_cpu_amx_emulation(saved_); }
  Emulation(const Emulation&) = delete;
  Emulation& operator=(const Emulation&) = delete;

private:
  bool saved_;
};

struct AmxRun {
  Status status;
  Buffer y;
  std::vector<double> values;
};

// One run through Plan::create(p, kCpu, algorithm) and Plan::run on a NaN-poisoned y (y = z for the in-place
// format), with a misaligned workspace of exactly workspace_bytes().
AmxRun run_row(const ConvProblem& p, const TensorSet& in, bool with_bias, bool z_is_y, bool emulate,
               const char* algorithm = "cpu_amx_bf16") {
  AmxRun r;
  const Emulation scope(emulate);
  r.y = make_buffer(p.tensor(TensorId::kY));
  if (z_is_y)
    r.y.bytes = in.z.bytes;
  else
    poison(r.y);
  Result<Plan> plan = Plan::create(p, Device::kCpu, algorithm);
  if (!plan) {
    r.status = plan.status();
    return r;
  }
  std::vector<unsigned char> ws(plan->workspace_bytes() + 1);
  Tensors t;
  t.x = in.x.data(), t.w = in.w.data(), t.bias = with_bias ? in.bias.data() : nullptr;
  t.z = p.epilogue().has_residual() ? (z_is_y ? r.y.data() : in.z.data()) : nullptr;
  t.y = r.y.data();
  r.status = plan->run(t, ws.data() + 1, plan->workspace_bytes());
  if (r.status.is_ok())
    r.values = oracle::to_double(p, TensorId::kY, r.y.data());
  return r;
}

std::vector<bool> modes() {
  std::vector<bool> m{true}; // the scalar model
  if (detail::cpu_amx_hardware())
    m.push_back(false); // the tiles
  return m;
}

const Algorithm& amx_row() {
  const Algorithm* row = find_algorithm("cpu_amx_bf16", Device::kCpu);
  EXPECT_NE(row, nullptr);
  return *row;
}

void check_problem(const ConvProblem& p, const Format& f) {
  const bool bias = has_bias(f) && p.bias_elements() > 0;
  const uint64_t seed = 1000 + static_cast<uint64_t>(p.x_elements());
  const TensorSet ints = make_inputs(p, 29 + static_cast<uint64_t>(p.y_elements()), true);
  const TensorSet floats = make_inputs(p, seed, false);
  const oracle::Tensors ot = oracle_tensors(floats, bias);
  const std::vector<double> want = oracle::reference(p, ot);
  const std::vector<double> magnitude = oracle::reference_magnitude(p, ot);
  std::vector<AmxRun> runs;
  for (bool emulate : modes()) {
    SCOPED_TRACE(emulate ? "scalar model" : "AMX tiles");
    if (exact_epilogue(f)) {
      const AmxRun got = run_row(p, ints, bias, in_place(f), emulate);
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      const std::vector<double> exact = oracle::reference(p, oracle_tensors(ints, bias));
      const Mismatch m = exact_mismatches(p, got.values, exact);
      EXPECT_EQ(m.bad, 0) << "integer inputs: " << m.bad << " of " << exact.size() << " differ, first at " << m.first
                          << ": got " << m.got << " want " << m.want;
    }
    AmxRun got = run_row(p, floats, bias, in_place(f), emulate);
    ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
    const oracle::Verdict v = oracle::accept(p, got.values, want, magnitude);
    EXPECT_TRUE(v.pass) << "random floats (seed " << seed << "): " << v.bad << " bad (" << v.nan_bad << " NaN), first "
                        << v.first_bad << ", worst error/bound " << v.worst_ratio;
    runs.push_back(std::move(got));
  }
  if (runs.size() == 2) {
    EXPECT_EQ(runs[0].y.bytes, runs[1].y.bytes) << "the tiles and the scalar model differ";
  }
}

// Shapes around the row's own steps: 32 pixels per micro block, 32 output channels per panel, 32 bf16 of depth per
// tile step, up to 256 pixels per task, column splits where one image has few pixel blocks.
std::vector<NamedProblem> amx_problems() {
  std::vector<NamedProblem> v;
  auto add = [&](const std::string& name, ProblemDesc d) { v.push_back({name, must_make(d)}); };
  add("k40_depth33", layer(Op::kConv, 1, 11, 40, 1, {9, 7}, {1, 3}, 1, 0, 1, 1));
  add("k70_pixels_past_256", layer(Op::kConv, 1, 16, 70, 1, {20, 17}, {3, 3}, 1, 1, 1, 1));
  add("pointwise_64", layer(Op::kConv, 2, 64, 64, 1, {6, 6}, {1, 1}, 1, 0, 0, 1));
  add("column_splits_k160", layer(Op::kConv, 1, 32, 160, 1, {4, 4}, {3, 3}, 1, 1, 1, 1));
  add("groups4_k48", layer(Op::kConv, 1, 8, 192, 4, {5, 6}, {3, 3}, 2, 1, 1, 1));
  add("depth_two_steps_c7", layer(Op::kConv, 3, 7, 9, 1, {5, 5}, {3, 3}, 1, 2, 0, 2));
  add("rank3_k33", layer(Op::kConv, 1, 5, 33, 1, {4, 5, 6}, {3, 2, 3}, 1, 1, 1, 1));
  add("rank1_stride3", layer(Op::kConv, 2, 9, 17, 1, {50}, {7}, 3, 3, 1, 1));
  add("one_pixel_input", layer(Op::kConv, 2, 12, 5, 1, {1, 1}, {3, 3}, 1, 1, 1, 1));
  add("c1_stem", layer(Op::kConv, 2, 1, 8, 1, {13, 11}, {5, 5}, 2, 2, 2, 1));
  add("kernel_past_input", layer(Op::kConv, 1, 3, 4, 1, {2, 3}, {5, 5}, 1, 2, 2, 1));
  return v;
}

TEST(CpuAmx, DeclaresBf16ConvolutionOnly) {
  const Algorithm& row = amx_row();
  EXPECT_EQ(row.dtypes, dtype_bit(DataType::kBF16));
  EXPECT_EQ(row.ops, op_bit(Op::kConv));
  EXPECT_TRUE(row.deterministic);
  ProblemDesc d = layer(Op::kConv, 1, 4, 4, 1, {5, 5}, {3, 3}, 1, 1, 1, 1);
  const Emulation scope(true);
  const Status f32 = row.supports(must_make(d));
  EXPECT_EQ(f32.code(), StatusCode::kNotSupported);
  EXPECT_NE(f32.message().find("f32"), std::string::npos) << f32.message();
  d.dtype = DataType::kBF16;
  EXPECT_TRUE(row.supports(must_make(d)).is_ok());
  d.op = Op::kConvTranspose;
  const Status transposed = row.supports(must_make(d));
  EXPECT_EQ(transposed.code(), StatusCode::kNotSupported);
  EXPECT_NE(transposed.message().find("conv_transpose"), std::string::npos) << transposed.message();
}

TEST(CpuAmx, WithoutTheTilesTheRowSaysWhy) {
  ProblemDesc d = layer(Op::kConv, 1, 4, 4, 1, {5, 5}, {3, 3}, 1, 1, 1, 1);
  d.dtype = DataType::kBF16;
  const ConvProblem p = must_make(d);
  const Emulation scope(false);
  const Status s = amx_row().supports(p);
  if (detail::cpu_amx_hardware()) {
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  } else {
    EXPECT_EQ(s.code(), StatusCode::kNotSupported);
    EXPECT_NE(s.message().find("AMX"), std::string::npos) << s.message();
    Result<Plan> plan = Plan::create(p, Device::kCpu);
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    EXPECT_STRNE(plan->algorithm(), "cpu_amx_bf16");
  }
}

TEST(CpuAmx, EdgeListEveryFormat) {
  int checked = 0, rotate = 0;
  for (const NamedProblem& np : conv_like(Op::kConv)) {
    for (const Format& f : formats_of(amx_row(), Op::kConv, rotate++)) {
      const ConvProblem p = with_format(np.problem, f);
      SCOPED_TRACE(np.name + " " + format_name(f));
      check_problem(p, f);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 7 * 20); // bf16 x 2 activation layouts x 2 filter layouts x 5 epilogues
}

TEST(CpuAmx, TileStepsBlocksAndSplits) {
  int rotate = 0;
  for (const NamedProblem& np : amx_problems()) {
    const std::vector<Format> formats = formats_of(amx_row(), Op::kConv, rotate);
    ASSERT_EQ(formats.size(), 20u);
    // Every problem in NCHW with the identity, in NHWC with a residual, plus one more format in turn.
    for (size_t i : {size_t{0}, size_t{16}, 1 + static_cast<size_t>(rotate) * 3 % 19}) {
      const Format& f = formats[i];
      const ConvProblem p = with_format(np.problem, f);
      SCOPED_TRACE(np.name + " " + format_name(f));
      check_problem(p, f);
    }
    ++rotate;
  }
}

TEST(CpuAmx, ConvEdgeProblems) {
  int checked = 0, rotate = 0;
  for (const NamedProblem& np : edge_problems()) {
    if (np.problem.op() != Op::kConv || np.problem.x_elements() > (1 << 16))
      continue;
    const std::vector<Format> formats = formats_of(amx_row(), Op::kConv, rotate);
    const Format& f = formats[static_cast<size_t>(rotate++) % formats.size()];
    const ConvProblem p = with_format(np.problem, f);
    SCOPED_TRACE(np.name + " " + format_name(f));
    check_problem(p, f);
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

uint16_t bf16_of(float v) {
  return kernels::from_float<kernels::bf16>(v).bits;
}
void set_bf16(Buffer& b, int64_t i, uint16_t bits) {
  std::memcpy(b.bytes.data() + i * 2, &bits, 2);
}

// Inputs the tiles would not compute exactly go to cpu_gemm: its result bit for bit, and the fallback counted.
TEST(CpuAmx, SpecialAndTinyInputsRunOnCpuGemm) {
  ProblemDesc d = layer(Op::kConv, 1, 6, 5, 1, {6, 7}, {3, 3}, 1, 1, 1, 1);
  d.dtype = DataType::kBF16;
  d.layout = Layout::kNHWC;
  const ConvProblem p = must_make(d);
  struct Case {
    const char* name;
    uint16_t x_bits, w_bits; // 0: leave the random values
    bool falls_back;
  };
  const uint16_t tiny50 = bf16_of(std::ldexp(1.0f, -50)), tiny70 = bf16_of(std::ldexp(1.0f, -70));
  const Case cases[] = {
      {"Inf in x", 0x7f80, 0, true},
      {"NaN in w", 0, 0x7fc0, true},
      {"-Inf in w", 0, 0xff80, true},
      {"subnormal x", 0x0041, 0, true},
      {"x 2^-70 and w 2^-50 (a product below 2^-126 could flush)", tiny70, tiny50, true},
      {"x 2^-50 and w 2^-50 (exact on the tiles)", tiny50, tiny50, false},
      {"x 2^-70 (exact on the tiles beside w's smallest)", tiny70, 0, false},
      {"plain values", bf16_of(0.375f), bf16_of(-3.0f), false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    TensorSet in = make_inputs(p, 7, false);
    for (Buffer* b : {&in.x, &in.w}) {
      const uint16_t bits = b == &in.x ? c.x_bits : c.w_bits;
      if (bits == 0)
        continue;
      set_bf16(*b, 3, bits);
      set_bf16(*b, b->elements - 1, bits);
    }
    for (bool emulate : modes()) {
      const uint64_t before = detail::cpu_amx_fallbacks();
      const AmxRun amx = run_row(p, in, true, false, emulate);
      ASSERT_TRUE(amx.status.is_ok()) << amx.status.to_string();
      EXPECT_EQ(detail::cpu_amx_fallbacks() - before, c.falls_back ? 1u : 0u);
      if (c.falls_back) {
        const AmxRun gemm = run_row(p, in, true, false, emulate, "cpu_gemm");
        ASSERT_TRUE(gemm.status.is_ok()) << gemm.status.to_string();
        EXPECT_EQ(amx.y.bytes, gemm.y.bytes);
      } else {
        const oracle::Tensors ot = oracle_tensors(in, true);
        const oracle::Verdict v =
            oracle::accept(p, amx.values, oracle::reference(p, ot), oracle::reference_magnitude(p, ot));
        EXPECT_TRUE(v.pass) << v.bad << " bad, worst error/bound " << v.worst_ratio;
      }
    }
  }
}

TEST(CpuAmx, DeterministicRunToRun) {
  ProblemDesc d = layer(Op::kConv, 2, 48, 72, 1, {9, 10}, {3, 3}, 1, 1, 1, 1);
  d.dtype = DataType::kBF16;
  d.layout = Layout::kNHWC;
  const ConvProblem p = must_make(d);
  const TensorSet in = make_inputs(p, fresh_seed(), false);
  for (bool emulate : modes()) {
    const AmxRun a = run_row(p, in, true, false, emulate), b = run_row(p, in, true, false, emulate);
    ASSERT_TRUE(a.status.is_ok() && b.status.is_ok());
    EXPECT_EQ(a.y.bytes, b.y.bytes);
  }
}

TEST(CpuAmx, ErrorsWriteNothingAndAnEmptyBatchIsANoOp) {
  const Emulation scope(true);
  ProblemDesc d = layer(Op::kConv, 1, 8, 8, 1, {6, 6}, {3, 3}, 1, 1, 1, 1);
  d.dtype = DataType::kBF16;
  const ConvProblem p = must_make(d);
  Result<Plan> plan = Plan::create(p, Device::kCpu, "cpu_amx_bf16");
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  ASSERT_GT(plan->workspace_bytes(), 0u);
  const TensorSet in = make_inputs(p, 3, true);
  Buffer y = make_buffer(p.tensor(TensorId::kY));
  poison(y);
  const std::vector<unsigned char> before = y.bytes;
  std::vector<unsigned char> ws(plan->workspace_bytes());
  Tensors t;
  t.x = in.x.data(), t.w = in.w.data(), t.y = y.data();
  const Status short_ws = plan->run(t, ws.data(), ws.size() - 1);
  EXPECT_EQ(short_ws.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(short_ws.message().find("workspace"), std::string::npos) << short_ws.message();
  t.w = nullptr;
  const Status no_w = plan->run(t, ws.data(), ws.size());
  EXPECT_EQ(no_w.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(y.bytes, before);

  d.n = 0;
  const ConvProblem empty = must_make(d);
  Result<Plan> none = Plan::create(empty, Device::kCpu, "cpu_amx_bf16");
  ASSERT_TRUE(none.is_ok()) << none.status().to_string();
  EXPECT_EQ(none->workspace_bytes(), 0u); // nothing runs
  EXPECT_TRUE(none->run(Tensors{}, nullptr, 0).is_ok());
}

// auto takes the tiles for a real bf16 layer where the CPU has them, never for depthwise.
TEST(CpuAmx, AutoTakesTheTilesForRealLayers) {
  ProblemDesc d = layer(Op::kConv, 1, 256, 256, 1, {14, 14}, {3, 3}, 1, 1, 1, 1);
  d.dtype = DataType::kBF16;
  d.layout = Layout::kNHWC;
  Result<Plan> plan = Plan::create(must_make(d), Device::kCpu);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  if (detail::cpu_amx_hardware()) {
    EXPECT_STREQ(plan->algorithm(), "cpu_amx_bf16");
  } else {
    EXPECT_STRNE(plan->algorithm(), "cpu_amx_bf16");
  }
  ProblemDesc dw = layer(Op::kConv, 1, 144, 144, 144, {56, 56}, {3, 3}, 1, 1, 1, 1);
  dw.dtype = DataType::kBF16;
  dw.layout = Layout::kNHWC;
  Result<Plan> dwp = Plan::create(must_make(dw), Device::kCpu);
  ASSERT_TRUE(dwp.is_ok()) << dwp.status().to_string();
  EXPECT_STRNE(dwp->algorithm(), "cpu_amx_bf16");
}

} // namespace
} // namespace convarith::test
