// The core for inference code: per-tensor dtypes and layouts resolved into strides, the epilogue as part of
// the problem, prepared plans, the pointer checks of Plan::run (once each, overlap), DeviceInfo and the emulated
// device, and the f16/bf16 conversions -- against the fp64 reference (any dtype, layout and epilogue) and the one
// acceptance rule.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "cpu/cpu_ops.hpp"
#include "numeric.cuh"
#include "row.hpp"
#include "support/support.hpp"

namespace convarith::test {
namespace {

ProblemDesc conv2d(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w, int64_t r, int64_t pad, int64_t stride = 1,
                   int64_t groups = 1) {
  return conv2d_desc(n, c, k, h, w, r, pad, stride, groups);
}

// A buffer of one tensor in its dtype, filled from float values (rounded to the dtype: the stored values).
struct Buffer {
  DataType dtype = DataType::kF32;
  std::vector<unsigned char> bytes;
  void* data() { return bytes.empty() ? nullptr : bytes.data(); }
  const void* data() const { return bytes.empty() ? nullptr : bytes.data(); }
};

Buffer make_buffer(DataType t, const std::vector<float>& values) {
  Buffer b;
  b.dtype = t;
  b.bytes.resize(values.size() * static_cast<size_t>(dtype_bytes(t)));
  for (size_t i = 0; i < values.size(); ++i) {
    if (t == DataType::kF32) {
      std::memcpy(b.bytes.data() + 4 * i, &values[i], 4);
    } else {
      const uint16_t h =
          t == DataType::kF16 ? kernels::float_to_f16_bits(values[i]) : kernels::float_to_bf16_bits(values[i]);
      std::memcpy(b.bytes.data() + 2 * i, &h, 2);
    }
  }
  return b;
}

Buffer poisoned(DataType t, int64_t elements) {
  return make_buffer(t, std::vector<float>(static_cast<size_t>(elements), std::numeric_limits<float>::quiet_NaN()));
}

std::vector<float> values(int64_t count, uint64_t seed, bool integers, int range = 2) {
  std::mt19937_64 rng(seed);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& e : v) {
    if (integers) {
      int q = 0;
      while (q == 0)
        q = static_cast<int>(rng() % static_cast<uint64_t>(2 * range + 1)) - range;
      e = static_cast<float>(q);
    } else {
      e = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    }
  }
  return v;
}

struct RunOut {
  Status status;
  Buffer y;
  std::vector<double> want, mag;
};

// Runs `p` on `device`/`algorithm` with inputs in the problem's dtypes (bias and z included when it has them),
// returns y and the reference.
RunOut run_problem(const ConvProblem& p, Device device, const std::string& algorithm, uint64_t seed, bool integers,
                   bool with_bias = true, bool z_is_y = false) {
  RunOut r;
  const bool pool = is_pool(p.op());
  const Buffer x = make_buffer(p.dtype(TensorId::kX), values(p.x_elements(), seed, integers));
  const Buffer w = pool ? Buffer{} : make_buffer(p.dtype(TensorId::kW), values(p.w_elements(), seed + 1, integers));
  const Buffer b = pool || !with_bias
                       ? Buffer{}
                       : make_buffer(p.dtype(TensorId::kBias), values(p.bias_elements(), seed + 2, integers));
  const bool residual = p.epilogue().has_residual();
  Buffer z = residual ? make_buffer(p.dtype(TensorId::kZ), values(p.y_elements(), seed + 3, integers)) : Buffer{};
  r.y = poisoned(p.dtype(TensorId::kY), p.y_elements());
  if (z_is_y) {
    r.y = z; // y starts as the residual (in-place)
  }
  oracle::Tensors ref{x.data(), w.data(), b.data(), z_is_y ? r.y.data() : z.data()};
  r.want = oracle::reference(p, ref);
  r.mag = oracle::reference_magnitude(p, ref);
  Result<Plan> plan = Plan::create(p, device, algorithm);
  if (!plan) {
    r.status = plan.status();
    return r;
  }
  std::vector<unsigned char> ws(plan->workspace_bytes() + 1);
  Tensors t;
  t.x = x.data();
  t.w = w.data();
  t.bias = b.data();
  t.z = residual ? (z_is_y ? r.y.data() : z.data()) : nullptr;
  t.y = r.y.data();
  r.status = plan->run(t, ws.data(), plan->workspace_bytes());
  return r;
}

::testing::AssertionResult accepted(const ConvProblem& p, const RunOut& r, double factor = 2.0) {
  if (!r.status.is_ok())
    return ::testing::AssertionFailure() << p.name() << ": " << r.status.to_string();
  const std::vector<double> got = oracle::to_double(p, TensorId::kY, r.y.data());
  const oracle::Verdict v = oracle::accept(p, got, r.want, r.mag, factor);
  if (v.pass)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << p.name() << ": " << v.bad << " of " << got.size() << " outside the bound ("
                                       << v.nan_bad << " NaN mismatches), first at " << v.first_bad << ": got "
                                       << got[static_cast<size_t>(v.first_bad)] << " want "
                                       << r.want[static_cast<size_t>(v.first_bad)] << ", worst error/bound "
                                       << v.worst_ratio;
}

::testing::AssertionResult exact(const ConvProblem& p, const RunOut& r) {
  if (!r.status.is_ok())
    return ::testing::AssertionFailure() << p.name() << ": " << r.status.to_string();
  const std::vector<double> got = oracle::to_double(p, TensorId::kY, r.y.data());
  for (size_t e = 0; e < got.size(); ++e) {
    // The reference rounded to y's dtype once: what an exact computation stores.
    const double want = static_cast<double>(oracle::round_to(p.dtype(TensorId::kY), static_cast<float>(r.want[e])));
    if (!(got[e] == want))
      return ::testing::AssertionFailure() << p.name() << ": y[" << e << "] = " << got[e] << ", want " << want;
  }
  return ::testing::AssertionSuccess();
}

// ---- descriptors --------------------------------------------------------------------------------------------

TEST(CoreFormats, LayoutsResolveIntoStrides) {
  ProblemDesc d = conv2d(2, 6, 4, 5, 7, 3, 1, 1, 2);
  d.layout = Layout::kNHWC;
  d.dtype = DataType::kF16;
  d.epilogue.beta = 1.0f;
  const ConvProblem p = must_make(d);
  const TensorDesc& x = p.tensor(TensorId::kX);
  EXPECT_EQ(x.dtype, DataType::kF16);
  EXPECT_EQ(x.layout, Layout::kNHWC);
  ASSERT_EQ(x.rank, 4);
  // Logical dims N, C, H, W; memory order N, H, W, C.
  EXPECT_EQ(x.dims[1], 6);
  EXPECT_EQ(x.strides[1], 1);      // C innermost
  EXPECT_EQ(x.strides[3], 6);      // W
  EXPECT_EQ(x.strides[2], 6 * 7);  // H
  EXPECT_EQ(x.strides[0], 6 * 35); // N
  EXPECT_EQ(x.physical_dims(), (std::vector<int64_t>{2, 5, 7, 6}));
  // The filter follows the layout: K x R x S x C/g.
  const TensorDesc& w = p.tensor(TensorId::kW);
  EXPECT_EQ(w.layout, Layout::kNHWC);
  EXPECT_EQ(w.physical_dims(), (std::vector<int64_t>{4, 3, 3, 3}));
  EXPECT_EQ(w.strides[1], 1);
  EXPECT_EQ(w.strides[0], 27);
  // z exists with a residual and has y's dims and layout.
  EXPECT_EQ(p.tensor(TensorId::kZ).rank, 4);
  EXPECT_EQ(p.tensor(TensorId::kZ).strides, p.tensor(TensorId::kY).strides);
  // min_bytes: 2 bytes an element for x, w, z and y.
  EXPECT_EQ(p.min_bytes(), 2 * (p.x_elements() + p.w_elements() + 2 * p.y_elements()));
  EXPECT_NE(p.name().find("_f16_nhwc"), std::string::npos) << p.name();
  EXPECT_NE(p.name().find("_res"), std::string::npos) << p.name();

  // A transposed filter in channels last is C x R x S x K/g; w_layout may differ from the activations'.
  ProblemDesc t = conv2d(1, 4, 6, 3, 3, 2, 0);
  t.op = Op::kConvTranspose;
  t.w_layout = Layout::kNHWC;
  const ConvProblem tp = must_make(t);
  EXPECT_EQ(tp.tensor(TensorId::kX).layout, Layout::kNCHW);
  EXPECT_EQ(tp.tensor(TensorId::kW).physical_dims(), (std::vector<int64_t>{4, 2, 2, 6}));
  EXPECT_EQ(tp.tensor(TensorId::kZ).rank, 0); // no residual: no z
  EXPECT_NE(tp.name().find("_wnhwc"), std::string::npos) << tp.name();
  // The defaults keep the old names (tests and bench results are keyed by them).
  EXPECT_EQ(must_make(conv2d(1, 64, 64, 56, 56, 3, 1)).name(), "conv_n1_c64_k64_i56x56_r3x3_p1x1_1x1");
}

TEST(CoreFormats, MixedDtypesAndTheirNames) {
  ProblemDesc d = conv2d(1, 2, 2, 4, 4, 3, 1);
  d.dtype = DataType::kBF16;
  d.y_dtype = DataType::kF32;
  d.bias_dtype = DataType::kF32;
  const ConvProblem p = must_make(d);
  EXPECT_EQ(p.dtype(TensorId::kX), DataType::kBF16);
  EXPECT_EQ(p.dtype(TensorId::kY), DataType::kF32);
  EXPECT_FALSE(p.uniform_dtype(DataType::kBF16));
  EXPECT_NE(p.name().find("_bf16_biasf32_yf32"), std::string::npos) << p.name();
  // make(resolved()) gives the same problem.
  EXPECT_EQ(must_make(p.resolved()).name(), p.name());
}

// ---- the rows, every format they declare --------------------------------------------------------------------

std::vector<Epilogue> epilogues() {
  std::vector<Epilogue> v;
  v.push_back(Epilogue{});
  Epilogue relu_res;
  relu_res.activation = Activation::kRelu;
  relu_res.beta = 1.0f;
  v.push_back(relu_res);
  Epilogue scaled;
  scaled.activation = Activation::kLeakyRelu;
  scaled.leaky_alpha = 0.125f;
  scaled.alpha = 0.5f;
  scaled.beta = -2.0f;
  v.push_back(scaled);
  for (Activation a : {Activation::kClip, Activation::kSigmoid, Activation::kTanh, Activation::kSilu, Activation::kGelu,
                       Activation::kGeluTanh}) {
    Epilogue e;
    e.activation = a;
    v.push_back(e);
  }
  return v;
}

std::vector<ProblemDesc> small_problems() {
  std::vector<ProblemDesc> v;
  v.push_back(conv2d(2, 3, 5, 6, 7, 3, 1));          // padded 3x3
  v.push_back(conv2d(1, 4, 6, 5, 5, 1, 0));          // 1x1
  v.push_back(conv2d(1, 4, 4, 7, 6, 3, 1, 2, 4));    // depthwise, stride 2
  ProblemDesc t = conv2d(1, 4, 6, 3, 4, 3, 1, 2, 2); // transposed, grouped
  t.op = Op::kConvTranspose;
  t.output_padding = {1, 0, 0};
  v.push_back(t);
  ProblemDesc r3 = conv2d(1, 2, 3, 4, 4, 2, 0); // rank 3
  r3.rank = 3;
  r3.input = {3, 4, 4};
  r3.kernel = {2, 2, 2};
  r3.pad_lo = r3.pad_hi = {0, 0, 0};
  r3.stride = {1, 1, 1};
  v.push_back(r3);
  return v;
}

TEST(CoreFormats, CpuRowsRunEveryDtypeLayoutAndEpilogue) {
  int checked = 0;
  for (const ProblemDesc& base : small_problems())
    for (DataType t : {DataType::kF32, DataType::kF16, DataType::kBF16})
      for (Layout l : {Layout::kNCHW, Layout::kNHWC})
        for (Layout wl : {Layout::kNCHW, Layout::kNHWC})
          for (const Epilogue& e : epilogues()) {
            ProblemDesc d = base;
            d.dtype = t;
            d.layout = l;
            d.w_layout = wl;
            d.epilogue = e;
            const ConvProblem p = must_make(d);
            SCOPED_TRACE(p.name());
            const RunOut r = run_problem(p, Device::kCpu, "auto", 11 + static_cast<uint64_t>(checked), false);
            EXPECT_TRUE(accepted(p, r));
            ++checked;
          }
  EXPECT_EQ(checked, 5 * 3 * 2 * 2 * 9);
}

TEST(CoreFormats, CpuRowsAreExactOnSmallIntegersWhereTheDtypeHoldsThem) {
  // |x|, |w| <= 2, at most 4*9 = 36 products of at most 4 plus bias and residual: every sum is below 256, exact in
  // bf16's 8 significand bits and f16's 11, so any indexing or layout error shows.
  for (const ProblemDesc& base : small_problems())
    for (DataType t : {DataType::kF32, DataType::kF16, DataType::kBF16})
      for (Layout l : {Layout::kNCHW, Layout::kNHWC}) {
        ProblemDesc d = base;
        d.dtype = t;
        d.layout = l;
        d.epilogue.activation = Activation::kRelu;
        d.epilogue.beta = 1.0f;
        const ConvProblem p = must_make(d);
        SCOPED_TRACE(p.name());
        EXPECT_TRUE(exact(p, run_problem(p, Device::kCpu, "auto", 5, true)));
      }
  // Pooling in every dtype and layout.
  for (Op op : {Op::kMaxPool, Op::kAvgPool})
    for (DataType t : {DataType::kF32, DataType::kF16, DataType::kBF16})
      for (Layout l : {Layout::kNCHW, Layout::kNHWC}) {
        ProblemDesc d = conv2d(2, 3, 3, 7, 6, 3, 1, 2);
        d.op = op;
        d.dtype = t;
        d.layout = l;
        const ConvProblem p = must_make(d);
        SCOPED_TRACE(p.name());
        const RunOut r = run_problem(p, Device::kCpu, "auto", 9, true);
        EXPECT_TRUE(op == Op::kMaxPool ? exact(p, r) : accepted(p, r));
      }
}

// cpu_gemm's channels-last depthwise path (x, z, y read and written as they are): channel chunks and their tail
// (70 = 64 + 6), stride, dilation, asymmetric padding, ranks 1 and 3, batches, no bias, the in-place residual, every
// dtype; exact on small integers, within the rule on random floats with every epilogue.
TEST(CoreFormats, CpuDepthwiseChannelsLast) {
  std::vector<ProblemDesc> shapes;
  shapes.push_back(conv2d(2, 70, 70, 9, 8, 3, 1, 1, 70));
  ProblemDesc d = conv2d(1, 24, 24, 11, 10, 3, 0, 2, 24);
  d.dilation = {2, 1, 1};
  d.pad_lo = {2, 0, 0}, d.pad_hi = {1, 2, 0};
  shapes.push_back(d);
  d = conv2d(3, 17, 17, 1, 1, 5, 0, 1, 17);
  d.rank = 1;
  d.input = {23, 1, 1};
  d.kernel = {5, 1, 1};
  d.pad_lo = d.pad_hi = {2, 0, 0};
  shapes.push_back(d);
  d = conv2d(1, 9, 9, 1, 1, 3, 1, 1, 9);
  d.rank = 3;
  d.input = {4, 5, 6};
  d.kernel = {3, 3, 3};
  d.pad_lo = d.pad_hi = {1, 1, 1};
  d.dilation = {2, 1, 2};
  shapes.push_back(d);
  int checked = 0;
  for (const ProblemDesc& base : shapes)
    for (DataType t : {DataType::kF32, DataType::kF16, DataType::kBF16})
      for (Layout wl : {Layout::kNCHW, Layout::kNHWC}) {
        ProblemDesc e = base;
        e.dtype = t;
        e.layout = Layout::kNHWC;
        e.w_layout = wl;
        e.epilogue.activation = Activation::kRelu;
        e.epilogue.beta = 1.0f;
        const ConvProblem p = must_make(e);
        SCOPED_TRACE(p.name());
        EXPECT_TRUE(exact(p, run_problem(p, Device::kCpu, "cpu_gemm", 21, true)));
        EXPECT_TRUE(exact(p, run_problem(p, Device::kCpu, "cpu_gemm", 22, true, false, true))); // z == y, no bias
        for (const Epilogue& ep : epilogues()) {
          e.epilogue = ep;
          const ConvProblem q = must_make(e);
          EXPECT_TRUE(
              accepted(q, run_problem(q, Device::kCpu, "cpu_gemm", 23 + static_cast<uint64_t>(checked), false)));
          ++checked;
        }
      }
  EXPECT_EQ(checked, 4 * 3 * 2 * 9);
}

// The "done" case: an f16 NHWC conv with bias + relu + residual through the C++ API, on the CPU, with z
// a separate buffer and with z == y (the in-place residual cuDNN's ConvolutionBiasActivationForward allows).
TEST(CoreFormats, F16NhwcConvBiasReluResidualOnTheCpu) {
  ProblemDesc d = conv2d(1, 8, 16, 14, 14, 3, 1);
  d.dtype = DataType::kF16;
  d.layout = Layout::kNHWC;
  d.epilogue.activation = Activation::kRelu;
  d.epilogue.beta = 1.0f;
  const ConvProblem p = must_make(d);
  EXPECT_TRUE(accepted(p, run_problem(p, Device::kCpu, "cpu_gemm", 3, false)));
  EXPECT_TRUE(accepted(p, run_problem(p, Device::kCpu, "cpu_gemm", 4, false, true, /*z_is_y=*/true)));
  EXPECT_TRUE(exact(p, run_problem(p, Device::kCpu, "cpu_gemm", 5, true, true, true)));
}

// The emulated device runs the CUDA rows through the same Plan::create / run path (f32 NC[D]HW here; the rows
// that take more formats are tested with them in the kernel tests).
TEST(CoreFormats, EmulatedDeviceRunsThroughPlan) {
  const ConvProblem p = must_make(conv2d(1, 3, 4, 6, 6, 3, 1));
  for (const char* name : {"auto", "tiled", "direct"}) {
    SCOPED_TRACE(name);
    const RunOut r = run_problem(p, Device::kEmulated, name, 21, true);
    EXPECT_TRUE(exact(p, r));
  }
  Result<Plan> plan = Plan::create(p, Device::kEmulated);
  ASSERT_TRUE(plan.is_ok());
  EXPECT_EQ(plan->device(), Device::kEmulated);
  EXPECT_STREQ(plan->algorithm(), "tiled"); // cheaper than direct by the rows' estimates
  EXPECT_GT(plan->cost_estimate_us(), 0.0);
  EXPECT_EQ(plan->device_info().cc_major, 9);
  EXPECT_EQ(plan->device_info().sms, 132);
  EXPECT_EQ(plan->device_info().smem_per_block, 48 * 1024);
  // auto prefers deterministic rows: gather, never scatter.
  ProblemDesc t = conv2d(1, 2, 2, 4, 4, 3, 0, 2);
  t.op = Op::kConvTranspose;
  Result<Plan> tplan = Plan::create(must_make(t), Device::kEmulated);
  ASSERT_TRUE(tplan.is_ok());
  EXPECT_STREQ(tplan->algorithm(), "gather");
  EXPECT_TRUE(tplan->deterministic());
}

// ---- Plan::run: no re-planning, checks in one place -----------------------------------------------------------

TEST(CoreFormats, RunNeverReplans) {
  for (Device dev : {Device::kCpu, Device::kEmulated}) {
    ProblemDesc d = conv2d(1, 4, 8, 6, 6, 3, 1);
    if (dev == Device::kCpu) {
      d.dtype = DataType::kF16;
      d.layout = Layout::kNHWC;
    }
    const ConvProblem p = must_make(d);
    const uint64_t before = detail::planning_calls().load();
    Result<Plan> plan = Plan::create(p, dev);
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    const uint64_t after_create = detail::planning_calls().load();
    EXPECT_GE(after_create, before + 1); // create prepared (auto may prepare several candidates)
    const Buffer x = make_buffer(p.dtype(TensorId::kX), values(p.x_elements(), 1, true));
    const Buffer w = make_buffer(p.dtype(TensorId::kW), values(p.w_elements(), 2, true));
    Buffer y = poisoned(p.dtype(TensorId::kY), p.y_elements());
    std::vector<unsigned char> ws(plan->workspace_bytes() + 1);
    for (int i = 0; i < 5; ++i) {
      Tensors t;
      t.x = x.data();
      t.w = w.data();
      t.y = y.data();
      ASSERT_TRUE(plan->run(t, ws.data(), plan->workspace_bytes()).is_ok());
    }
    EXPECT_EQ(detail::planning_calls().load(), after_create) << device_name(dev) << ": run() prepared again";
  }
}

TEST(CoreFormats, OverlappingOutputsAreRefusedAndNothingIsWritten) {
  ProblemDesc d = conv2d(1, 4, 4, 6, 6, 3, 1, 1, 4); // depthwise: x and y have the same size
  const ConvProblem p = must_make(d);
  Result<Plan> plan = Plan::create(p, Device::kCpu);
  ASSERT_TRUE(plan.is_ok());
  std::vector<float> x = values(p.x_elements(), 1, true), w = values(p.w_elements(), 2, true);
  const std::vector<float> x_before = x;
  std::vector<unsigned char> ws(plan->workspace_bytes() + 64);
  // y == x (the audit's 571-of-648-wrong case).
  Status s = plan->run(x.data(), w.data(), nullptr, x.data(), ws.data(), plan->workspace_bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("x and y overlap"), std::string::npos) << s.message();
  EXPECT_EQ(x, x_before);
  // y inside the workspace.
  if (plan->workspace_bytes() >= static_cast<size_t>(p.tensor(TensorId::kY).bytes())) {
    s = plan->run(x.data(), w.data(), nullptr, reinterpret_cast<float*>(ws.data()), ws.data(), plan->workspace_bytes());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.message().find("overlap"), std::string::npos) << s.message();
  }
  // A residual z that overlaps y partially is refused; z == y is the allowed in-place residual.
  ProblemDesc r = d;
  r.epilogue.beta = 1.0f;
  const ConvProblem rp = must_make(r);
  Result<Plan> rplan = Plan::create(rp, Device::kCpu);
  ASSERT_TRUE(rplan.is_ok());
  std::vector<float> big(static_cast<size_t>(2 * rp.y_elements()), 1.0f);
  std::vector<unsigned char> rws(rplan->workspace_bytes() + 64);
  Tensors t;
  t.x = x.data();
  t.w = w.data();
  t.y = big.data();
  t.z = big.data() + 1;
  s = rplan->run(t, rws.data(), rplan->workspace_bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("z and y overlap"), std::string::npos) << s.message();
  t.z = big.data();
  EXPECT_TRUE(rplan->run(t, rws.data(), rplan->workspace_bytes()).is_ok());
  // Inputs may overlap each other (they are only read): w inside x.
  EXPECT_TRUE(plan->run(x.data(), x.data(), nullptr, big.data(), ws.data(), plan->workspace_bytes()).is_ok());
}

TEST(CoreFormats, RunArgumentRulesNameTheTensor) {
  ProblemDesc d = conv2d(1, 2, 2, 4, 4, 3, 1);
  d.epilogue.beta = 0.5f;
  const ConvProblem p = must_make(d);
  Result<Plan> plan = Plan::create(p, Device::kCpu);
  ASSERT_TRUE(plan.is_ok());
  std::vector<float> x(static_cast<size_t>(p.x_elements()), 1.0f), w(static_cast<size_t>(p.w_elements()), 1.0f);
  std::vector<float> y(static_cast<size_t>(p.y_elements()), 7.0f);
  std::vector<unsigned char> ws(plan->workspace_bytes() + 64);
  Tensors t;
  t.x = x.data();
  t.w = w.data();
  t.y = y.data();
  Status s = plan->run(t, ws.data(), plan->workspace_bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("z is null"), std::string::npos) << s.message();
  // The float overload cannot pass z.
  s = plan->run(x.data(), w.data(), nullptr, y.data(), ws.data(), plan->workspace_bytes());
  EXPECT_NE(s.message().find("residual"), std::string::npos) << s.message();
  for (float v : y)
    ASSERT_EQ(v, 7.0f);
  // The float overload on an f16 problem says which tensor is not f32.
  ProblemDesc h = conv2d(1, 2, 2, 4, 4, 3, 1);
  h.dtype = DataType::kF16;
  Result<Plan> hplan = Plan::create(must_make(h), Device::kCpu);
  ASSERT_TRUE(hplan.is_ok());
  s = hplan->run(x.data(), w.data(), nullptr, y.data(), ws.data(), hplan->workspace_bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("x is f16"), std::string::npos) << s.message();
}

// A row that does not take a format says so, naming it (the declared formats of every row are checked in one
// place), and auto skips it.
TEST(CoreFormats, RowsNameTheFormatsTheyDoNotTake) {
  int declined = 0;
  for (const Algorithm& row : algorithm_table()) {
    for (DataType t : {DataType::kF32, DataType::kF16, DataType::kBF16})
      for (Layout l : {Layout::kNCHW, Layout::kNHWC}) {
        ProblemDesc d = conv2d(1, 2, 2, 4, 4, 3, 1);
        if (std::string(row.name) == "depthwise")
          d.groups = 2; // the row takes groups == C only
        d.op = (row.ops & op_bit(Op::kConv))            ? Op::kConv
               : (row.ops & op_bit(Op::kConvTranspose)) ? Op::kConvTranspose
                                                        : Op::kMaxPool;
        d.dtype = t;
        d.layout = l;
        const ConvProblem p = must_make(d);
        const Status s = row.supports(p);
        const bool takes = (row.dtypes & dtype_bit(t)) && (row.layouts & layout_bit(l));
        if (takes && std::string(row.name) == "cpu_amx_bf16" && !detail::cpu_amx_hardware()) {
          EXPECT_NE(s.message().find("AMX"), std::string::npos) << s.message(); // no tiles here: it says so
          continue;
        }
        EXPECT_EQ(s.is_ok(), takes) << row.name << " " << p.name() << ": " << s.to_string();
        if (!takes) {
          EXPECT_EQ(s.code(), StatusCode::kNotSupported);
          const bool names_it = s.message().find(dtype_name(t)) != std::string::npos ||
                                s.message().find(layout_name(l)) != std::string::npos;
          EXPECT_TRUE(names_it) << s.message();
          ++declined;
        }
      }
  }
  // The public listing mirrors the table, read-only.
  const std::vector<AlgorithmInfo> infos = algorithms();
  ASSERT_EQ(infos.size(), algorithm_table().size());
  for (size_t i = 0; i < infos.size(); ++i) {
    EXPECT_STREQ(infos[i].name, algorithm_table()[i].name);
    EXPECT_EQ(infos[i].dtypes, algorithm_table()[i].dtypes);
    EXPECT_EQ(infos[i].epilogue, algorithm_table()[i].epilogue);
  }
  for (const AlgorithmInfo& a : algorithms(Device::kCpu)) {
    if (std::string(a.name) == "cpu_amx_bf16") { // bf16 only (test_cpu_amx.cpp)
      EXPECT_EQ(a.dtypes, dtype_bit(DataType::kBF16));
      continue;
    }
    EXPECT_EQ(a.dtypes, dtype_bit(DataType::kF32) | dtype_bit(DataType::kF16) | dtype_bit(DataType::kBF16)) << a.name;
    EXPECT_TRUE(a.epilogue) << a.name;
  }
  RecordProperty("declined", declined);
}

// ---- f16 / bf16 conversions ---------------------------------------------------------------------------------

TEST(CoreFormats, F16ConversionsAreExactAndRoundToNearestEven) {
  // Every f16 bit pattern decodes to the value the reference decodes, and encodes back to itself (NaNs stay NaN).
  for (uint32_t h = 0; h < 65536; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = kernels::f16_bits_to_float(bits);
    const Buffer b = make_buffer(DataType::kF32, {f});
    std::vector<unsigned char> raw(2);
    std::memcpy(raw.data(), &bits, 2);
    ProblemDesc d = conv2d(1, 1, 1, 1, 1, 1, 0);
    d.op = Op::kMaxPool;
    d.dtype = DataType::kF16;
    const ConvProblem p = must_make(d);
    const double ref = oracle::to_double(p, TensorId::kX, raw.data())[0];
    if (std::isnan(ref)) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_TRUE(std::isnan(kernels::f16_bits_to_float(kernels::float_to_f16_bits(f)))) << h;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), ref) << h;
    ASSERT_EQ(kernels::float_to_f16_bits(f), bits) << h;
  }
  // Sampled floats round as the independent reference rounds (ties to even, overflow to inf, subnormals).
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint32_t u = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &u, 4);
    if (std::isnan(f))
      continue;
    const float want16 = oracle::round_to(DataType::kF16, f);
    ASSERT_EQ(kernels::f16_bits_to_float(kernels::float_to_f16_bits(f)), want16) << f;
    const float want_b = oracle::round_to(DataType::kBF16, f);
    ASSERT_EQ(kernels::bf16_bits_to_float(kernels::float_to_bf16_bits(f)), want_b) << f;
  }
  // Ties by hand: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 in f16: to even (1). 1 + 3*2^-11 -> 1 + 2^-9.
  EXPECT_EQ(kernels::f16_bits_to_float(kernels::float_to_f16_bits(1.0f + std::ldexp(1.0f, -11))), 1.0f);
  EXPECT_EQ(kernels::f16_bits_to_float(kernels::float_to_f16_bits(1.0f + 3 * std::ldexp(1.0f, -11))),
            1.0f + std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isinf(kernels::f16_bits_to_float(kernels::float_to_f16_bits(65520.0f))));
  EXPECT_EQ(kernels::f16_bits_to_float(kernels::float_to_f16_bits(65519.0f)), 65504.0f);
  EXPECT_EQ(kernels::bf16_bits_to_float(kernels::float_to_bf16_bits(1.0f + std::ldexp(1.0f, -8))), 1.0f);
}

// The acceptance rule fails what it must: a one-ulp-of-f16 error on an exact value passes, a wrong element fails,
// a NaN where the reference is a number fails, NaN where the reference is NaN passes.
TEST(CoreFormats, AcceptanceRuleCanFail) {
  ProblemDesc d = conv2d(1, 1, 1, 2, 2, 1, 0);
  d.dtype = DataType::kF16;
  const ConvProblem p = must_make(d);
  const std::vector<double> want{1.0, 2.0, std::nan(""), 4.0};
  const std::vector<double> mag{1.0, 2.0, 0.0, 4.0};
  EXPECT_TRUE(oracle::accept(p, {1.0, 2.0 + std::ldexp(1.0, -10), std::nan(""), 4.0}, want, mag).pass);
  const oracle::Verdict wrong = oracle::accept(p, {1.0, 2.5, std::nan(""), 4.0}, want, mag);
  EXPECT_FALSE(wrong.pass);
  EXPECT_EQ(wrong.first_bad, 1);
  const oracle::Verdict nan = oracle::accept(p, {std::nan(""), 2.0, std::nan(""), 4.0}, want, mag);
  EXPECT_FALSE(nan.pass);
  EXPECT_EQ(nan.nan_bad, 1);
  EXPECT_FALSE(oracle::accept(p, {1.0, 2.0, 3.0, 4.0}, want, mag).pass); // a number where the reference is NaN
}

} // namespace
} // namespace convarith::test
