// tests/test_bad_input.cpp — the library as a hostile user meets it. Every bad problem and every
// Plan misuse must come back as a Status whose code is right and whose message names the field and
// the numbers; the caller's output buffer must be untouched on every error. Also replays the
// fuzz_problem regression inputs (tests/regressions/problem/) and the committed seed corpus through
// the fuzz harness, so a crash the fuzzer once found stays fixed in the normal (and the sanitized)
// test build.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "../fuzz/problem_harness.hpp"
#include "convarith/convarith.hpp"
#include "row.hpp"

#if defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace convarith {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// A valid 2-D convolution every case below breaks in one way.
ProblemDesc base_conv() {
  ProblemDesc d;
  d.op = Op::kConv;
  d.n = 2, d.c = 4, d.k = 6, d.rank = 2;
  d.input = {7, 6, 1};
  d.kernel = {3, 3, 1};
  return d;
}

ProblemDesc base_pool(Op op) {
  ProblemDesc d;
  d.op = op;
  d.n = 1, d.c = 3, d.k = 3, d.rank = 2;
  d.input = {6, 6, 1};
  d.kernel = {2, 2, 1};
  d.stride = {2, 2, 1};
  return d;
}

ProblemDesc base_transpose() {
  ProblemDesc d = base_conv();
  d.op = Op::kConvTranspose;
  d.stride = {2, 2, 1};
  return d;
}

struct BadCase {
  const char* name;
  std::function<ProblemDesc()> make;
  StatusCode code;
  std::vector<std::string> fragments; // each must appear in the message: the field and the numbers
};

std::vector<BadCase> bad_cases() {
  const auto conv = [](std::function<void(ProblemDesc&)> f) {
    return [f] {
      ProblemDesc d = base_conv();
      f(d);
      return d;
    };
  };
  const auto tconv = [](std::function<void(ProblemDesc&)> f) {
    return [f] {
      ProblemDesc d = base_transpose();
      f(d);
      return d;
    };
  };
  const auto pool = [](Op op, std::function<void(ProblemDesc&)> f) {
    return [op, f] {
      ProblemDesc d = base_pool(op);
      f(d);
      return d;
    };
  };
  using SC = StatusCode;
  return {
      {"negative_batch", conv([](ProblemDesc& d) { d.n = -1; }), SC::kInvalidArgument, {"N=-1", ">= 0"}},
      {"zero_channels", conv([](ProblemDesc& d) { d.c = 0; }), SC::kInvalidArgument, {"C=0"}},
      {"negative_channels", conv([](ProblemDesc& d) { d.c = -4; }), SC::kInvalidArgument, {"C=-4"}},
      {"zero_output_channels", conv([](ProblemDesc& d) { d.k = 0; }), SC::kInvalidArgument, {"K=0"}},
      {"zero_input", conv([](ProblemDesc& d) { d.input[1] = 0; }), SC::kInvalidArgument, {"axis 1", "i=0"}},
      {"negative_input", conv([](ProblemDesc& d) { d.input[0] = -7; }), SC::kInvalidArgument, {"axis 0", "i=-7"}},
      {"zero_kernel", conv([](ProblemDesc& d) { d.kernel[0] = 0; }), SC::kInvalidArgument, {"axis 0", "k=0"}},
      {"zero_stride", conv([](ProblemDesc& d) { d.stride[1] = 0; }), SC::kInvalidArgument, {"axis 1", "stride", "0"}},
      {"negative_stride",
       conv([](ProblemDesc& d) { d.stride[0] = -2; }),
       SC::kInvalidArgument,
       {"axis 0", "stride", "-2"}},
      {"zero_dilation", conv([](ProblemDesc& d) { d.dilation[0] = 0; }), SC::kInvalidArgument, {"dilation", "0"}},
      {"negative_pad_lo", conv([](ProblemDesc& d) { d.pad_lo[1] = -1; }), SC::kInvalidArgument, {"axis 1", "p_lo=-1"}},
      {"negative_pad_hi", conv([](ProblemDesc& d) { d.pad_hi[0] = -3; }), SC::kInvalidArgument, {"axis 0", "p_hi=-3"}},
      {"rank_zero", conv([](ProblemDesc& d) { d.rank = 0; }), SC::kInvalidArgument, {"rank 0"}},
      {"rank_four", conv([](ProblemDesc& d) { d.rank = 4; }), SC::kInvalidArgument, {"rank 4"}},
      {"rank_negative", conv([](ProblemDesc& d) { d.rank = -1; }), SC::kInvalidArgument, {"rank -1"}},
      {"op_out_of_range", conv([](ProblemDesc& d) { d.op = static_cast<Op>(17); }), SC::kInvalidArgument, {"17"}},
      {"pad_mode_out_of_range",
       conv([](ProblemDesc& d) { d.pad_mode = static_cast<PadMode>(-3); }),
       SC::kInvalidArgument,
       {"-3"}},
      // 7 + 1 + 1 = 9 padded, effective kernel d(k-1)+1 = 4*2+1 = 9 fits; 5*2+1 = 11 does not.
      {"kernel_larger_than_padded_input",
       conv([](ProblemDesc& d) { d.kernel[0] = 3, d.dilation[0] = 5, d.pad_lo[0] = 1, d.pad_hi[0] = 1; }),
       SC::kInvalidArgument,
       {"axis 0", "11", "k=3", "dilation=5", "9", "i=7", "1+1"}},
      {"kernel_larger_than_input_no_pad",
       conv([](ProblemDesc& d) { d.kernel[1] = 8; }),
       SC::kInvalidArgument,
       {"axis 1", "8", "i=6"}},
      {"groups_do_not_divide_c",
       conv([](ProblemDesc& d) { d.groups = 3, d.k = 6; }),
       SC::kInvalidArgument,
       {"group=3", "C=4"}},
      {"groups_do_not_divide_k",
       conv([](ProblemDesc& d) { d.groups = 4, d.k = 6; }),
       SC::kInvalidArgument,
       {"group=4", "K=6"}},
      {"zero_groups", conv([](ProblemDesc& d) { d.groups = 0; }), SC::kInvalidArgument, {"group=0"}},
      {"negative_groups", conv([](ProblemDesc& d) { d.groups = -2; }), SC::kInvalidArgument, {"group=-2"}},
      {"output_padding_equal_stride",
       tconv([](ProblemDesc& d) { d.output_padding[0] = 2; }),
       SC::kInvalidArgument,
       {"axis 0", "a=2", "stride=2", "dilation=1"}},
      {"output_padding_equal_dilation",
       tconv([](ProblemDesc& d) { d.stride[1] = 1, d.dilation[1] = 3, d.output_padding[1] = 3; }),
       SC::kInvalidArgument,
       {"axis 1", "a=3", "dilation=3"}},
      {"negative_output_padding",
       tconv([](ProblemDesc& d) { d.output_padding[0] = -1; }),
       SC::kInvalidArgument,
       {"a=-1"}},
      {"output_padding_on_conv",
       conv([](ProblemDesc& d) { d.output_padding[0] = 1; }),
       SC::kInvalidArgument,
       {"output_padding=1"}},
      {"transposed_padding_crops_everything",
       tconv([](ProblemDesc& d) { d.pad_lo[0] = 9, d.pad_hi[0] = 9; }),
       SC::kInvalidArgument,
       {"axis 0", "9", "crops"}},
      {"half_padding_even_kernel",
       conv([](ProblemDesc& d) { d.kernel[0] = 2, d.pad_mode = PadMode::kHalf; }),
       SC::kInvalidArgument,
       {"HALF", "k'=2"}},
      {"auto_pad_with_explicit_pads",
       conv([](ProblemDesc& d) { d.pad_mode = PadMode::kSameUpper, d.pad_lo[0] = 1; }),
       SC::kInvalidArgument,
       {"pads 1+0", "SAME_UPPER"}},
      {"output_shape_on_conv",
       conv([](ProblemDesc& d) { d.has_output_shape = true; }),
       SC::kInvalidArgument,
       {"output_shape"}},
      {"output_shape_with_pads",
       tconv([](ProblemDesc& d) {
         d.has_output_shape = true, d.output_shape = {14, 12, 1}, d.pad_hi[1] = 2;
       }),
       SC::kInvalidArgument,
       {"pads 0+2", "output_shape"}},
      {"output_shape_unreachable",
       tconv([](ProblemDesc& d) {
         d.has_output_shape = true, d.output_shape = {99, 12, 1};
       }),
       SC::kInvalidArgument,
       {"axis 0", "99", "unreachable"}},
      {"ceil_mode_on_conv", conv([](ProblemDesc& d) { d.ceil_mode = true; }), SC::kInvalidArgument, {"ceil_mode"}},
      {"count_include_pad_on_max_pool",
       pool(Op::kMaxPool, [](ProblemDesc& d) { d.count_include_pad = true; }),
       SC::kInvalidArgument,
       {"count_include_pad"}},
      {"pool_pad_equal_window",
       pool(Op::kMaxPool, [](ProblemDesc& d) { d.pad_lo[0] = 2; }),
       SC::kInvalidArgument,
       {"axis 0", "padding 2+0", "window 2"}},
      {"pool_pad_beyond_window",
       pool(Op::kAvgPool, [](ProblemDesc& d) { d.pad_hi[1] = 5; }),
       SC::kInvalidArgument,
       {"axis 1", "0+5", "window 2"}},
      {"pool_groups", pool(Op::kAvgPool, [](ProblemDesc& d) { d.groups = 3; }), SC::kInvalidArgument, {"group=3"}},
      {"pool_dilated_window_reads_no_input",
       pool(Op::kMaxPool,
            [](ProblemDesc& d) {
              d.input[0] = 1, d.kernel[0] = 2, d.dilation[0] = 3, d.pad_lo[0] = 1, d.pad_hi[0] = 3, d.stride[0] = 1;
            }),
       SC::kInvalidArgument,
       {"axis 0", "reads no input"}},
      // 2^31 * 2^31 * 2^2 = 2^64: the x element count does not fit.
      {"x_elements_overflow",
       conv([](ProblemDesc& d) {
         d.n = int64_t{1} << 31, d.c = int64_t{1} << 31, d.k = 1, d.input = {2, 2, 1}, d.kernel = {1, 1, 1};
       }),
       SC::kOutOfRange,
       {"x", "2147483648", "overflows 64 bits"}},
      {"spatial_product_overflow",
       conv([](ProblemDesc& d) {
         d.rank = 3, d.n = 1, d.c = 1, d.k = 1, d.input = {3037000500, 3037000500, 2}, d.kernel = {1, 1, 1};
       }),
       SC::kOutOfRange,
       {"3037000500", "overflows 64 bits"}},
      {"weights_overflow",
       conv([](ProblemDesc& d) {
         d.n = 1, d.c = int64_t{1} << 32, d.k = int64_t{1} << 32, d.input = {1, 1, 1}, d.kernel = {1, 1, 1};
       }),
       SC::kOutOfRange,
       {"w", "4294967296", "overflows 64 bits"}},
      // Every count fits, but 4 bytes each does not: min_bytes() must not wrap.
      {"bytes_overflow",
       conv([](ProblemDesc& d) {
         d.n = int64_t{1} << 61, d.c = 1, d.k = 1, d.input = {1, 1, 1}, d.kernel = {1, 1, 1};
       }),
       SC::kOutOfRange,
       {"bytes", "overflow"}},
      {"effective_kernel_overflow",
       conv([](ProblemDesc& d) { d.dilation[0] = kMax, d.kernel[0] = 3; }),
       SC::kOutOfRange,
       {"axis 0", "k=3", std::to_string(kMax)}},
      {"padded_input_overflow",
       conv([](ProblemDesc& d) { d.pad_lo[0] = kMax, d.pad_hi[0] = 1; }),
       SC::kOutOfRange,
       {"axis 0", std::to_string(kMax)}},
      {"transposed_output_overflow",
       tconv([](ProblemDesc& d) { d.stride[0] = kMax / 2, d.input[0] = 4; }),
       SC::kOutOfRange,
       {"axis 0", std::to_string(kMax / 2)}},
      {"transposed_huge_pads",
       tconv([](ProblemDesc& d) { d.pad_lo[0] = kMax - 1, d.pad_hi[0] = kMax; }),
       SC::kInvalidArgument,
       {"axis 0", std::to_string(kMax), "must be >= 1"}},
      {"ceil_pool_huge_stride_is_fine_but_huge_input_overflows",
       pool(Op::kMaxPool,
            [](ProblemDesc& d) {
              d.ceil_mode = true, d.rank = 1, d.input[0] = kMax - 1, d.kernel[0] = 1, d.stride[0] = int64_t{1} << 62;
              d.c = 1 << 20;
            }),
       SC::kOutOfRange,
       {"x", std::to_string(kMax - 1), "overflows 64 bits"}},
      {"dtype_out_of_range",
       conv([](ProblemDesc& d) { d.dtype = static_cast<DataType>(5); }),
       SC::kInvalidArgument,
       {"dtype 5", "f32, f16 or bf16"}},
      {"w_dtype_out_of_range",
       conv([](ProblemDesc& d) { d.w_dtype = static_cast<DataType>(7); }),
       SC::kInvalidArgument,
       {"w_dtype 7"}},
      {"layout_out_of_range",
       conv([](ProblemDesc& d) { d.layout = static_cast<Layout>(3); }),
       SC::kInvalidArgument,
       {"layout 3", "NCHW or NHWC"}},
      {"pool_with_an_epilogue",
       conv([](ProblemDesc& d) {
         d.op = Op::kMaxPool;
         d.epilogue.activation = Activation::kRelu;
       }),
       SC::kInvalidArgument,
       {"pooling has no epilogue", "relu"}},
      {"pool_with_a_residual",
       conv([](ProblemDesc& d) {
         d.op = Op::kAvgPool;
         d.epilogue.beta = 1.0f;
       }),
       SC::kInvalidArgument,
       {"pooling has no epilogue", "beta 1"}},
      {"clip_min_above_max",
       conv([](ProblemDesc& d) {
         d.epilogue.activation = Activation::kClip;
         d.epilogue.clip_min = 6.0f;
         d.epilogue.clip_max = 0.0f;
       }),
       SC::kInvalidArgument,
       {"clip min 6", "max 0"}},
      {"nan_alpha",
       conv([](ProblemDesc& d) { d.epilogue.alpha = std::numeric_limits<float>::quiet_NaN(); }),
       SC::kInvalidArgument,
       {"alpha", "finite"}},
  };
}

TEST(BadInput, EveryBadProblemIsRejectedWithFieldAndNumbers) {
  for (const BadCase& bc : bad_cases()) {
    SCOPED_TRACE(bc.name);
    const ProblemDesc d = bc.make();
    const Result<ConvProblem> p = ConvProblem::make(d);
    ASSERT_FALSE(p.is_ok()) << bc.name << " was accepted: " << p->name();
    EXPECT_EQ(p.status().code(), bc.code) << p.status().to_string();
    for (const std::string& f : bc.fragments)
      EXPECT_NE(p.status().message().find(f), std::string::npos)
          << bc.name << ": the message does not name '" << f << "': " << p.status().message();
  }
}

// The base problems themselves are valid, so each case above fails for its own reason only.
TEST(BadInput, BaseProblemsAreValid) {
  for (const ProblemDesc& d : {base_conv(), base_transpose(), base_pool(Op::kMaxPool), base_pool(Op::kAvgPool)}) {
    const Result<ConvProblem> p = ConvProblem::make(d);
    EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  }
}

// The public per-axis functions take hostile values directly too.
TEST(BadInput, AxisFunctionsRejectHostileValues) {
  AxisParams a;
  a.i = 5, a.k = 3;
  a.s = kMax;
  Result<int64_t> o = conv_output_size(0, a);
  ASSERT_TRUE(o.is_ok()) << o.status().to_string();
  EXPECT_EQ(*o, 1); // floor((5 - 3) / s) + 1 with a huge stride

  a.s = 1, a.d = 2, a.k = kMax; // d(k-1)+1 overflows
  o = conv_output_size(2, a);
  ASSERT_FALSE(o.is_ok());
  EXPECT_EQ(o.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(o.status().message().find("axis 2"), std::string::npos) << o.status().message();
  EXPECT_NE(o.status().message().find(std::to_string(kMax)), std::string::npos) << o.status().message();

  AxisParams t;
  t.i = 3, t.k = 2, t.s = 2;
  Result<TransposeFit> fit = fit_transpose_output(1, t, 0, PadMode::kExplicit);
  ASSERT_FALSE(fit.is_ok());
  EXPECT_NE(fit.status().message().find("output_shape 0"), std::string::npos) << fit.status().message();
  fit = fit_transpose_output(1, t, -5, PadMode::kSameUpper);
  ASSERT_FALSE(fit.is_ok());
  EXPECT_NE(fit.status().message().find("-5"), std::string::npos) << fit.status().message();

  const Result<PadMode> mode = parse_pad_mode("SAME_MIDDLE");
  ASSERT_FALSE(mode.is_ok());
  EXPECT_NE(mode.status().message().find("SAME_MIDDLE"), std::string::npos) << mode.status().message();
}

// ---- Plan misuse ---------------------------------------------------------------------------------

constexpr float kSentinel = -12345.5f;

struct Buffers {
  std::vector<float> x, w, bias, y;
  std::vector<unsigned char> ws;
};

Buffers buffers_for(const Plan& plan) {
  const ConvProblem& p = plan.problem();
  Buffers b;
  b.x.assign(static_cast<size_t>(p.x_elements()), 1.0f);
  b.w.assign(static_cast<size_t>(p.w_elements()), 0.5f);
  b.bias.assign(static_cast<size_t>(p.bias_elements()), 2.0f);
  b.y.assign(static_cast<size_t>(p.y_elements()), kSentinel);
  b.ws.assign(plan.workspace_bytes() + 16, 0xAB);
  return b;
}

::testing::AssertionResult untouched(const std::vector<float>& y) {
  for (size_t e = 0; e < y.size(); ++e)
    if (std::memcmp(&y[e], &kSentinel, sizeof(float)) != 0)
      return ::testing::AssertionFailure() << "y[" << e << "] was written (" << y[e] << ") on an error";
  return ::testing::AssertionSuccess();
}

Result<Plan> cpu_plan(const ProblemDesc& d) {
  const Result<ConvProblem> p = ConvProblem::make(d);
  if (!p.is_ok())
    return p.status();
  return Plan::create(*p, Device::kCpu, "auto");
}

void expect_run_error(const Plan& plan, const Buffers& b, const float* x, const float* w, const float* bias,
                      std::vector<float>& y_storage, float* y, void* ws, size_t ws_bytes,
                      std::initializer_list<std::string> fragments, const char* what) {
  SCOPED_TRACE(what);
  (void)b;
  const Status st = plan.run(x, w, bias, y, ws, ws_bytes);
  ASSERT_FALSE(st.is_ok()) << what << " was accepted";
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  for (const std::string& f : fragments)
    EXPECT_NE(st.message().find(f), std::string::npos) << "missing '" << f << "' in: " << st.message();
  EXPECT_TRUE(untouched(y_storage));
}

TEST(BadInput, PlanRunNullPointersLeaveYUntouched) {
  const Result<Plan> made = cpu_plan(base_conv());
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  const Plan& plan = *made;
  Buffers b = buffers_for(plan);
  const size_t wsb = plan.workspace_bytes();
  const std::string xs = std::to_string(plan.problem().x_elements());
  const std::string wsz = std::to_string(plan.problem().w_elements());
  const std::string ys = std::to_string(plan.problem().y_elements());
  expect_run_error(plan, b, nullptr, b.w.data(), b.bias.data(), b.y, b.y.data(), b.ws.data(), wsb, {"x", xs}, "null x");
  expect_run_error(plan, b, b.x.data(), nullptr, b.bias.data(), b.y, b.y.data(), b.ws.data(), wsb, {"w", wsz},
                   "null w");
  expect_run_error(plan, b, b.x.data(), b.w.data(), b.bias.data(), b.y, nullptr, b.ws.data(), wsb, {"y", ys}, "null y");
  // And the same plan still runs correctly afterwards: the errors left no state behind.
  ASSERT_TRUE(plan.run(b.x.data(), b.w.data(), b.bias.data(), b.y.data(), b.ws.data(), wsb).is_ok());
  // x = 1, w = 0.5, bias = 2, no padding: every output is C * 9 * 0.5 + 2 = 20.
  for (float v : b.y)
    ASSERT_EQ(v, 20.0f);
}

TEST(BadInput, PoolingWithBiasIsRejectedAndYUntouched) {
  const Result<Plan> made = cpu_plan(base_pool(Op::kMaxPool));
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  const Plan& plan = *made;
  Buffers b = buffers_for(plan);
  const float fake_bias[3] = {1, 2, 3};
  expect_run_error(plan, b, b.x.data(), nullptr, fake_bias, b.y, b.y.data(), b.ws.data(), plan.workspace_bytes(),
                   {"bias", "max_pool"}, "bias on pooling");
}

TEST(BadInput, TooSmallWorkspaceNamesBothSizesAndLeavesYUntouched) {
  // Find a CPU row that needs a workspace for some problem among a few shapes.
  std::vector<ProblemDesc> candidates = {base_conv(), base_transpose()};
  ProblemDesc big = base_conv();
  big.c = 16, big.k = 8, big.input = {12, 12, 1};
  candidates.push_back(big);
  bool tested = false;
  for (const ProblemDesc& d : candidates) {
    const Result<ConvProblem> p = ConvProblem::make(d);
    ASSERT_TRUE(p.is_ok());
    for (const Algorithm& alg : algorithm_table()) {
      if (alg.device != Device::kCpu || !(alg.ops & op_bit(p->op())) || !alg.supports(*p).is_ok())
        continue;
      const Result<Plan> plan = Plan::create(*p, Device::kCpu, alg.name);
      ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
      if (plan->workspace_bytes() == 0)
        continue;
      tested = true;
      Buffers b = buffers_for(*plan);
      const size_t need = plan->workspace_bytes();
      expect_run_error(*plan, b, b.x.data(), b.w.data(), b.bias.data(), b.y, b.y.data(), b.ws.data(), need - 1,
                       {std::to_string(need - 1), std::to_string(need), "workspace"}, "workspace one byte short");
      expect_run_error(*plan, b, b.x.data(), b.w.data(), b.bias.data(), b.y, b.y.data(), nullptr, need,
                       {std::to_string(need), "workspace"}, "null workspace with a size");
      expect_run_error(*plan, b, b.x.data(), b.w.data(), b.bias.data(), b.y, b.y.data(), b.ws.data(), 0,
                       {std::to_string(need), "workspace"}, "workspace size 0");
    }
  }
  if (!tested)
    GTEST_SKIP() << "no CPU algorithm needs a workspace for these problems";
}

TEST(BadInput, DefaultConstructedPlanIsAnErrorNotACrash) {
  const Plan plan;
  std::vector<float> y(4, kSentinel);
  const float x[4] = {1, 2, 3, 4};
  const Status st = plan.run(x, x, nullptr, y.data());
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("Plan::create"), std::string::npos) << st.message();
  EXPECT_TRUE(untouched(y));
}

TEST(BadInput, PlanCreateRejectsUnknownDevicesAndAlgorithms) {
  const Result<ConvProblem> p = ConvProblem::make(base_conv());
  ASSERT_TRUE(p.is_ok());
  Result<Plan> plan = Plan::create(*p, static_cast<Device>(9), "auto");
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(plan.status().message().find("device 9"), std::string::npos) << plan.status().message();

  plan = Plan::create(*p, Device::kCpu, "no_such_algorithm");
  ASSERT_FALSE(plan.is_ok());
  EXPECT_NE(plan.status().message().find("no_such_algorithm"), std::string::npos) << plan.status().message();

  plan = Plan::create(*p, Device::kCpu, std::string_view("auto\0", 5)); // an embedded NUL is not "auto"
  EXPECT_FALSE(plan.is_ok());

  plan = Plan::create(*p, Device::kCpu, "cpu_pool"); // a row for another op
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kNotSupported);
  EXPECT_NE(plan.status().message().find("conv"), std::string::npos) << plan.status().message();

  const Result<Device> dev = parse_device("tpu");
  ASSERT_FALSE(dev.is_ok());
  EXPECT_NE(dev.status().message().find("tpu"), std::string::npos) << dev.status().message();
}

TEST(BadInput, CudaPlanWithoutDeviceIsADeviceError) {
  if (cuda_device_count() > 0)
    GTEST_SKIP() << "a CUDA device is present (see HostDevicePointerMixUps)";
  const Result<ConvProblem> p = ConvProblem::make(base_conv());
  ASSERT_TRUE(p.is_ok());
  const Result<Plan> plan = Plan::create(*p, Device::kCuda, "auto");
  ASSERT_FALSE(plan.is_ok());
  EXPECT_EQ(plan.status().code(), StatusCode::kDeviceError);
  EXPECT_FALSE(plan.status().message().empty());
}

TEST(BadInput, HostDevicePointerMixUps) {
#if defined(CONVARITH_HAVE_CUDA)
  if (cuda_device_count() == 0)
    GTEST_SKIP() << "no CUDA device: " << cuda_unavailable_reason();
  const Result<ConvProblem> p = ConvProblem::make(base_conv());
  ASSERT_TRUE(p.is_ok());
  // A cuda plan given host memory.
  const Result<Plan> gpu = Plan::create(*p, Device::kCuda, "auto");
  ASSERT_TRUE(gpu.is_ok()) << gpu.status().to_string();
  Buffers hb = buffers_for(*gpu);
  float *dx = nullptr, *dw = nullptr, *dy = nullptr;
  ASSERT_EQ(cudaMalloc(&dx, hb.x.size() * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dw, hb.w.size() * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&dy, hb.y.size() * sizeof(float)), cudaSuccess);
  void* dws = nullptr;
  if (gpu->workspace_bytes() > 0) {
    ASSERT_EQ(cudaMalloc(&dws, gpu->workspace_bytes()), cudaSuccess);
  }
  ASSERT_EQ(cudaMemcpy(dy, hb.y.data(), hb.y.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  Status st = gpu->run(hb.x.data(), dw, nullptr, dy, dws, gpu->workspace_bytes());
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("x is a host pointer"), std::string::npos) << st.message();
  st = gpu->run(dx, dw, nullptr, hb.y.data(), dws, gpu->workspace_bytes());
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("y is a host pointer"), std::string::npos) << st.message();
  EXPECT_TRUE(untouched(hb.y));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> back(hb.y.size());
  ASSERT_EQ(cudaMemcpy(back.data(), dy, back.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_TRUE(untouched(back)); // the device output was not written either

  // A cpu plan given device memory.
  const Result<Plan> made = cpu_plan(base_conv());
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  const Plan& cpu = *made;
  Buffers cb = buffers_for(cpu);
  st = cpu.run(dx, cb.w.data(), nullptr, cb.y.data(), cb.ws.data(), cpu.workspace_bytes());
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("x is a CUDA device pointer"), std::string::npos) << st.message();
  EXPECT_TRUE(untouched(cb.y));
  cudaFree(dx);
  cudaFree(dw);
  cudaFree(dy);
  cudaFree(dws);
#else
  GTEST_SKIP() << "built without CUDA";
#endif
}

// ---- fuzz regressions -------------------------------------------------------------------------------

std::filesystem::path source_dir() {
  if (const char* env = std::getenv("CONVARITH_SOURCE_DIR"))
    return env;
  return std::filesystem::path(__FILE__).parent_path().parent_path();
}

std::vector<std::filesystem::path> files_in(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    if (entry.is_regular_file())
      out.push_back(entry.path());
  return out;
}

std::string read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(BadInput, FuzzProblemRegressionsAndSeedsStayFixed) {
  const std::filesystem::path root = source_dir();
  const auto regressions = files_in(root / "tests" / "regressions" / "problem");
  const auto seeds = files_in(root / "fuzz" / "corpus" / "fuzz_problem");
  ASSERT_GE(regressions.size(), 3u) << "tests/regressions/problem/ not found under " << root;
  ASSERT_GE(seeds.size(), 10u) << "fuzz/corpus/fuzz_problem/ not found under " << root;
  for (const auto& list : {regressions, seeds}) {
    for (const auto& path : list) {
      const std::string bytes = read_bytes(path);
      const std::string err =
          fuzz::check_problem_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), true);
      EXPECT_EQ(err, "") << path.filename();
    }
  }
}

// The harness itself must be able to fail: a wrong output size is caught.
TEST(BadInput, FuzzHarnessDetectsAWrongFormula) {
  AxisParams a;
  a.i = 7, a.k = 3, a.s = 2, a.p_lo = 1, a.p_hi = 1, a.d = 2;
  // floor((7 + 2 - 5) / 2) + 1 = 3, and the transposed formula: 2*(7-1) + 0 + 5 - 2 = 15.
  EXPECT_EQ(fuzz::detail::expected_out(Op::kConv, a, false), 3);
  EXPECT_EQ(fuzz::detail::expected_out(Op::kConvTranspose, a, false), 15);
  // ceil mode: ceil(4 / 2) + 1 = 3; the last window starts at 4 < 7 + 1.
  EXPECT_EQ(fuzz::detail::expected_out(Op::kMaxPool, a, true), 3);
}

} // namespace
} // namespace convarith
