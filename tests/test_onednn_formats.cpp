// tests/test_onednn_formats.cpp — the oneDNN adapter with every format and epilogue it declares, against the
// fp64 reference (oracle::reference on the problem's own dtypes and layouts, oracle::accept's rule).
//
// f32 runs on every x64 CPU: each layout pair (NCHW / NHWC activations x KCRS / KRSC filters, the transposed
// filters' twins included) and each epilogue (alpha, bias, residual in another buffer and in place, every
// activation) must be supported and within accept()'s bound at factor 2 (one f32 result), for plain and
// blocked (reordered) layouts. bf16 / f16 run where this CPU and oneDNN 2.6 have them (bf16: avx512_core and
// up; f16: no CPU implementation in 2.6); then within accept() at factor 4 (oneDNN's low-precision kernels
// may round the f32 accumulator to the output type before a post-op, i.e. up to one more output rounding);
// otherwise create() must refuse with kNotSupported naming the dtypes and the CPU's ISA, never crash.
// Inputs are uniform in [-1, 1] rounded to each tensor's dtype; outputs are NaN-poisoned first.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "reference/reference.hpp"
#include "support/support.hpp"

#ifdef CONVARITH_HAVE_ONEDNN
#include "numeric.cuh"
#include "onednn/onednn_runner.hpp"
#endif

namespace convarith::test {
namespace {

#ifdef CONVARITH_HAVE_ONEDNN

ProblemDesc desc_of(Op op, int64_t n, int64_t c, int64_t k, std::vector<int64_t> in, std::vector<int64_t> ker) {
  ProblemDesc d;
  d.op = op, d.n = n, d.c = c, d.k = k, d.rank = static_cast<int>(in.size());
  for (size_t j = 0; j < in.size(); ++j)
    d.input[j] = in[j], d.kernel[j] = ker[j];
  return d;
}

// Shapes that reach each weight mapping: plain, grouped, depthwise, rank 1 and 3, transposed (plain and
// grouped, with output padding), and both pools.
std::vector<std::pair<std::string, ProblemDesc>> shapes() {
  std::vector<std::pair<std::string, ProblemDesc>> out;
  ProblemDesc d = desc_of(Op::kConv, 2, 6, 8, {9, 10}, {3, 3});
  d.pad_lo = {1, 1}, d.pad_hi = {1, 1};
  out.push_back({"conv3x3", d});
  d = desc_of(Op::kConv, 1, 12, 8, {9, 10}, {3, 2});
  d.groups = 4, d.stride = {2, 1}, d.pad_lo = {0, 1}, d.pad_hi = {1, 0}, d.dilation = {2, 1};
  out.push_back({"conv_groups", d});
  d = desc_of(Op::kConv, 1, 8, 8, {12, 11}, {3, 3});
  d.groups = 8, d.pad_lo = {1, 1}, d.pad_hi = {1, 1}, d.stride = {2, 2};
  out.push_back({"conv_depthwise", d});
  d = desc_of(Op::kConv, 3, 4, 5, {29}, {4});
  d.stride = {3}, d.pad_lo = {2};
  out.push_back({"conv_rank1", d});
  d = desc_of(Op::kConv, 1, 3, 4, {6, 7, 5}, {3, 2, 2});
  d.pad_lo = {1, 0, 1}, d.pad_hi = {0, 1, 1};
  out.push_back({"conv_rank3", d});
  d = desc_of(Op::kConvTranspose, 2, 6, 4, {5, 6}, {4, 3});
  d.stride = {2, 3}, d.pad_lo = {1, 0}, d.pad_hi = {2, 1}, d.output_padding = {1, 1};
  out.push_back({"conv_transpose", d});
  d = desc_of(Op::kConvTranspose, 1, 6, 9, {4, 5}, {3, 3});
  d.groups = 3, d.stride = {2, 2}, d.dilation = {2, 1}, d.pad_lo = {2, 1}, d.pad_hi = {3, 2};
  d.output_padding = {1, 1};
  out.push_back({"conv_transpose_groups", d});
  d = desc_of(Op::kMaxPool, 2, 5, 5, {11, 10}, {3, 3});
  d.stride = {2, 2}, d.pad_lo = {1, 1}, d.pad_hi = {1, 1};
  out.push_back({"max_pool", d});
  d.op = Op::kAvgPool, d.count_include_pad = true;
  out.push_back({"avg_pool", d});
  return out;
}

struct Epi {
  std::string name;
  Epilogue e;
};

std::vector<Epi> epilogues() {
  std::vector<Epi> out;
  const auto act = [](Activation a) {
    Epilogue e;
    e.activation = a;
    return e;
  };
  out.push_back({"identity", Epilogue{}});
  for (Activation a : {Activation::kRelu, Activation::kSigmoid, Activation::kTanh, Activation::kSilu, Activation::kGelu,
                       Activation::kGeluTanh})
    out.push_back({activation_name(a), act(a)});
  Epilogue e = act(Activation::kLeakyRelu);
  e.leaky_alpha = 0.1f;
  out.push_back({"leaky_relu_0.1", e});
  e = act(Activation::kClip);
  e.clip_min = -0.5f, e.clip_max = 0.7f;
  out.push_back({"clip_-0.5_0.7", e});
  e = Epilogue{};
  e.alpha = 0.5f;
  out.push_back({"alpha_0.5", e}); // bias must not be scaled
  e.activation = Activation::kRelu;
  out.push_back({"alpha_0.5_relu", e});
  e = act(Activation::kRelu);
  e.beta = 0.75f;
  out.push_back({"residual_relu", e}); // the sum before the activation
  e = Epilogue{};
  e.beta = -1.0f;
  out.push_back({"residual_identity", e});
  e = act(Activation::kGelu);
  e.alpha = 1.5f, e.beta = -0.5f;
  out.push_back({"alpha_residual_gelu", e});
  return out;
}

// Host storage for one tensor in its dtype.
struct Buffer {
  std::vector<unsigned char> bytes;
  void* data() { return bytes.empty() ? nullptr : bytes.data(); }
};

// Uniform values in [-1, 1] rounded to t's dtype.
Buffer random_tensor(const TensorDesc& t, std::mt19937_64& rng) {
  Buffer b;
  if (t.rank == 0)
    return b;
  b.bytes.resize(static_cast<size_t>(t.bytes()));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.elements; ++i) {
    const float v = u(rng);
    const size_t at = static_cast<size_t>(i * dtype_bytes(t.dtype));
    if (t.dtype == DataType::kF32) {
      std::memcpy(&b.bytes[at], &v, 4);
    } else {
      const uint16_t h = t.dtype == DataType::kF16 ? kernels::float_to_f16_bits(v) : kernels::float_to_bf16_bits(v);
      std::memcpy(&b.bytes[at], &h, 2);
    }
  }
  return b;
}

struct RunData {
  Buffer x, w, bias, z, y;
  std::vector<double> want, magnitude;
};

// Inputs for p, the reference, and a NaN-poisoned y (0xFF bytes are a NaN in f32, f16 and bf16).
RunData make_run(const ConvProblem& p, uint64_t seed, bool with_bias = true) {
  std::mt19937_64 rng(seed);
  RunData r;
  r.x = random_tensor(p.tensor(TensorId::kX), rng);
  r.w = random_tensor(p.tensor(TensorId::kW), rng);
  if (with_bias)
    r.bias = random_tensor(p.tensor(TensorId::kBias), rng);
  r.z = random_tensor(p.tensor(TensorId::kZ), rng);
  r.y.bytes.assign(static_cast<size_t>(p.tensor(TensorId::kY).bytes()), 0xFF);
  oracle::Tensors t;
  t.x = r.x.data(), t.w = r.w.data(), t.bias = r.bias.data(), t.z = r.z.data();
  r.want = oracle::reference(p, t);
  r.magnitude = oracle::reference_magnitude(p, t);
  return r;
}

std::string verdict_text(const oracle::Verdict& v) {
  return std::to_string(v.bad) + " bad (" + std::to_string(v.nan_bad) + " NaN), first " + std::to_string(v.first_bad) +
         ", max abs " + std::to_string(v.max_abs) + ", worst/bound " + std::to_string(v.worst_ratio);
}

enum class Outcome { kCompared, kRefused };

// Runs p through oneDNN and checks it. z_in_place: the residual is y itself (y holds z before the run).
// A refusal must be kNotSupported with a reason; `must_support` makes it a failure.
Outcome check(const std::string& label, const ConvProblem& p, bool must_support, double factor,
              onednn::RunnerOptions options = {}, bool z_in_place = false) {
  SCOPED_TRACE(label + " (" + p.name() + ")");
  Result<onednn::Runner> runner = onednn::Runner::create(p, options);
  if (!runner) {
    EXPECT_FALSE(must_support) << runner.status().to_string();
    EXPECT_EQ(runner.status().code(), StatusCode::kNotSupported) << runner.status().to_string();
    EXPECT_NE(runner.status().message().find("oneDNN"), std::string::npos) << runner.status().message();
    return Outcome::kRefused;
  }
  const uint64_t seed = fresh_seed();
  RunData r = make_run(p, seed);
  Tensors t;
  t.x = r.x.data(), t.w = r.w.data(), t.bias = r.bias.data(), t.y = r.y.data();
  t.z = r.z.data();
  const Buffer z_before = r.z;
  if (z_in_place && p.epilogue().has_residual()) {
    r.y.bytes = r.z.bytes;
    t.z = t.y = r.y.data();
  }
  const Status s = runner->run(t);
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  if (!s)
    return Outcome::kCompared;
  const std::vector<double> got = oracle::to_double(p, TensorId::kY, r.y.data());
  const oracle::Verdict v = oracle::accept(p, got, r.want, r.magnitude, factor);
  EXPECT_TRUE(v.pass) << "oneDNN [" << runner->implementation() << "; post-ops '" << runner->post_ops()
                      << "'] vs reference: " << verdict_text(v) << ", seed " << seed;
  EXPECT_EQ(r.z.bytes, z_before.bytes) << "oneDNN's run wrote the residual z";
  return Outcome::kCompared;
}

ConvProblem with_formats(ProblemDesc d, DataType t, Layout act, Layout w, Epilogue e = {}) {
  d.dtype = t;
  d.layout = act;
  if (!is_pool(d.op)) {
    d.w_layout = w;
    d.epilogue = e;
  }
  return must_make(d);
}

const Layout kLayouts[] = {Layout::kNCHW, Layout::kNHWC};

TEST(OneDnnFormats, EveryLayoutF32) {
  int compared = 0, expected = 0;
  for (const auto& [name, d] : shapes())
    for (Layout act : kLayouts)
      for (Layout w : kLayouts) {
        if (is_pool(d.op) && w != act)
          continue; // pooling has no filter
        Epilogue bias_relu;
        bias_relu.activation = Activation::kRelu;
        const ConvProblem p = with_formats(d, DataType::kF32, act, w, bias_relu);
        EXPECT_EQ(p.layout(), act);
        ++expected;
        compared += check(name + " " + layout_name(act) + "/w " + layout_name(w), p, true, 2.0) == Outcome::kCompared;
      }
  EXPECT_EQ(compared, expected);
  EXPECT_EQ(expected, 7 * 4 + 2 * 2);
}

TEST(OneDnnFormats, EveryEpilogueF32) {
  int compared = 0, expected = 0;
  for (const auto& [name, d] : shapes()) {
    if (is_pool(d.op))
      continue;
    for (const Epi& e : epilogues())
      for (Layout act : kLayouts) {
        const ConvProblem p = with_formats(d, DataType::kF32, act, act, e.e);
        ++expected;
        compared += check(name + " " + e.name + " " + layout_name(act), p, true, 2.0) == Outcome::kCompared;
      }
  }
  EXPECT_EQ(compared, expected);
  EXPECT_GT(expected, 7 * 14 * 2 - 1);
}

// The in-place residual (z == y, oneDNN's native sum) and oneDNN's own blocked layouts, where run() reorders
// z into the primitive's destination before the sum.
TEST(OneDnnFormats, ResidualInPlaceAndBlockedLayouts) {
  int compared = 0;
  onednn::RunnerOptions blocked;
  blocked.blocked_layouts = true;
  for (const auto& [name, d] : shapes()) {
    if (is_pool(d.op))
      continue;
    Epilogue e;
    e.activation = Activation::kTanh, e.alpha = 0.75f, e.beta = 0.5f;
    for (Layout act : kLayouts) {
      const ConvProblem p = with_formats(d, DataType::kF32, act, act, e);
      ASSERT_TRUE(p.epilogue().has_residual());
      compared += check(name + " in-place " + layout_name(act), p, true, 2.0, {}, true) == Outcome::kCompared;
      compared += check(name + " blocked " + layout_name(act), p, true, 2.0, blocked) == Outcome::kCompared;
      compared +=
          check(name + " blocked in-place " + layout_name(act), p, true, 2.0, blocked, true) == Outcome::kCompared;
    }
  }
  EXPECT_EQ(compared, 7 * 2 * 3);
}

// A run without a bias: the binary_add post-op (alpha != 1) and oneDNN's own bias (alpha == 1) get zeros.
TEST(OneDnnFormats, NoBias) {
  for (float alpha : {1.0f, 0.25f}) {
    Epilogue e;
    e.alpha = alpha;
    e.activation = Activation::kSigmoid;
    const ConvProblem p = with_formats(shapes()[1].second, DataType::kF32, Layout::kNHWC, Layout::kNCHW, e);
    Result<onednn::Runner> runner = onednn::Runner::create(p);
    ASSERT_TRUE(runner.is_ok()) << runner.status().to_string();
    const uint64_t seed = fresh_seed();
    RunData r = make_run(p, seed, /*with_bias=*/false);
    Tensors t;
    t.x = r.x.data(), t.w = r.w.data(), t.y = r.y.data();
    ASSERT_TRUE(runner->run(t).is_ok());
    const oracle::Verdict v =
        oracle::accept(p, oracle::to_double(p, TensorId::kY, r.y.data()), r.want, r.magnitude, 2.0);
    EXPECT_TRUE(v.pass) << "alpha " << alpha << ": " << verdict_text(v) << ", seed " << seed;
    EXPECT_EQ(runner->post_ops().find("binary_add") != std::string::npos, alpha != 1.0f) << runner->post_ops();
  }
}

TEST(OneDnnFormats, PostOpChainOrder) {
  Epilogue e;
  e.alpha = 0.5f, e.beta = 2.0f, e.activation = Activation::kLeakyRelu;
  Result<onednn::Runner> r =
      onednn::Runner::create(with_formats(shapes()[0].second, DataType::kF32, Layout::kNHWC, Layout::kNHWC, e));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->post_ops(), "linear(0.5) binary_add(bias) sum(2) eltwise_relu(leaky)");
  Result<onednn::Runner> plain =
      onednn::Runner::create(with_formats(shapes()[0].second, DataType::kF32, Layout::kNCHW, Layout::kNCHW));
  ASSERT_TRUE(plain.is_ok());
  EXPECT_EQ(plain->post_ops(), "");
}

// bf16 and f16: compared where oneDNN has them on this CPU, else refused with the reason.
TEST(OneDnnFormats, LowPrecisionRunsOrSaysWhy) {
  int compared = 0, refused = 0, total = 0;
  std::string refusals;
  for (DataType t : {DataType::kBF16, DataType::kF16})
    for (const auto& [name, d] : shapes())
      for (Layout act : kLayouts) {
        Epilogue e;
        if (!is_pool(d.op))
          e.activation = Activation::kRelu, e.beta = 0.5f;
        const ConvProblem p = with_formats(d, t, act, act, e);
        ++total;
        const Outcome o = check(name + " " + dtype_name(t) + " " + layout_name(act), p, false, 4.0);
        if (o == Outcome::kCompared) {
          ++compared;
          continue;
        }
        ++refused;
        Result<onednn::Runner> again = onednn::Runner::create(p);
        ASSERT_FALSE(again.is_ok());
        const std::string& m = again.status().message();
        EXPECT_NE(m.find(std::string("x ") + dtype_name(t)), std::string::npos) << m;
        EXPECT_NE(m.find("CPU ISA " + onednn::cpu_isa()), std::string::npos) << m;
        if (refusals.size() < 600)
          refusals += "\n  " + m;
      }
  EXPECT_EQ(compared + refused, total);
  std::cout << "oneDNN " << onednn::version() << " on " << onednn::cpu_isa() << ": bf16/f16 compared " << compared
            << ", refused " << refused << " of " << total << refusals.substr(0, 600) << "\n";
  // oneDNN 2.x has no f16 CPU convolution: on an x64 CPU without avx512_fp16 every f16 conv is refused.
  if (onednn::cpu_isa() == "avx2") {
    EXPECT_EQ(refused, total) << "oneDNN 2.6 runs no bf16/f16 on avx2; a comparison here means the adapter "
                                 "converted something oneDNN does not take";
  }
}

TEST(OneDnnFormats, ResidualOfAnotherDtypeIsRefused) {
  ProblemDesc d = shapes()[0].second;
  d.epilogue.beta = 1.0f;
  d.z_dtype = DataType::kBF16;
  Result<ConvProblem> p = ConvProblem::make(d);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  Result<onednn::Runner> r = onednn::Runner::create(*p);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotSupported);
  EXPECT_NE(r.status().message().find("z bf16"), std::string::npos) << r.status().message();
}

TEST(OneDnnFormats, FloatEntryPointRefusesWhatItCannotCarry) {
  Epilogue e;
  e.beta = 1.0f;
  const ConvProblem res = with_formats(shapes()[0].second, DataType::kF32, Layout::kNCHW, Layout::kNCHW, e);
  Result<onednn::Runner> r = onednn::Runner::create(res);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  RunData run = make_run(res, 1);
  const auto f = [](Buffer& b) { return static_cast<float*>(b.data()); };
  Status s = r->run(f(run.x), f(run.w), f(run.bias), f(run.y));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find("residual"), std::string::npos) << s.message();
  // Nothing was written.
  for (unsigned char byte : run.y.bytes)
    ASSERT_EQ(byte, 0xFF);
  // The residual is required by the general entry point too.
  Tensors t;
  t.x = run.x.data(), t.w = run.w.data(), t.y = run.y.data();
  s = r->run(t);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  for (unsigned char byte : run.y.bytes)
    ASSERT_EQ(byte, 0xFF);

  // A bf16 problem through the f32 entry point (whatever oneDNN makes of bf16 on this CPU).
  const ConvProblem bf = with_formats(shapes()[0].second, DataType::kBF16, Layout::kNCHW, Layout::kNCHW);
  Result<onednn::Runner> rb = onednn::Runner::create(bf);
  if (rb) {
    std::vector<float> x(static_cast<size_t>(bf.x_elements())), w(static_cast<size_t>(bf.w_elements())),
        y(static_cast<size_t>(bf.y_elements()));
    s = rb->run(x.data(), w.data(), nullptr, y.data());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    EXPECT_NE(s.message().find("x bf16"), std::string::npos) << s.message();
  } else {
    EXPECT_EQ(rb.status().code(), StatusCode::kNotSupported);
  }
}

TEST(OneDnnFormats, EmptyBatchWithResidual) {
  ProblemDesc d = shapes()[0].second;
  d.n = 0;
  d.epilogue.beta = 1.0f;
  d.layout = Layout::kNHWC;
  Result<onednn::Runner> r = onednn::Runner::create(must_make(d));
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->run(Tensors{}).is_ok());
}

// Constant weights (set_constant_weights, what the bench uses for inference): reordered once (blocked layouts) or
// copied, read at that call only; a run without w then gives the bits of a run handed w, and a run given a w uses it.
TEST(OneDnnFormats, ConstantWeights) {
  int compared = 0;
  Epilogue relu;
  relu.activation = Activation::kRelu;
  for (bool blocked : {false, true}) {
    onednn::RunnerOptions o;
    o.blocked_layouts = blocked;
    for (const auto& [name, d] : shapes()) {
      if (is_pool(d.op))
        continue;
      for (Layout act : kLayouts) {
        SCOPED_TRACE(name + (blocked ? " blocked " : " plain ") + layout_name(act));
        const ConvProblem p = with_formats(d, DataType::kF32, act, act, relu);
        Result<onednn::Runner> per_run = onednn::Runner::create(p, o), made = onednn::Runner::create(p, o);
        ASSERT_TRUE(per_run.is_ok() && made.is_ok()) << per_run.status().to_string();
        onednn::Runner constant = std::move(made).value();
        RunData r = make_run(p, 40 + static_cast<uint64_t>(compared));
        RunData other = make_run(p, 400 + static_cast<uint64_t>(compared));
        Tensors t;
        t.x = r.x.data(), t.w = r.w.data(), t.bias = r.bias.data(), t.y = r.y.data();
        ASSERT_TRUE(per_run->run(t).is_ok());
        const std::vector<unsigned char> want = r.y.bytes;
        ASSERT_TRUE(constant.set_constant_weights(r.w.data()).is_ok());
        std::fill(r.w.bytes.begin(), r.w.bytes.end(), 0xFF); // read at set_constant_weights only
        std::fill(r.y.bytes.begin(), r.y.bytes.end(), 0xFF);
        t.w = nullptr;
        ASSERT_TRUE(constant.run(t).is_ok());
        EXPECT_EQ(r.y.bytes, want);
        // A given w wins over the constant one.
        t.w = other.w.data();
        ASSERT_TRUE(constant.run(t).is_ok());
        const std::vector<unsigned char> with_other = r.y.bytes;
        ASSERT_TRUE(per_run->run(t).is_ok());
        EXPECT_EQ(r.y.bytes, with_other);
        EXPECT_NE(with_other, want);
        ++compared;
      }
    }
  }
  EXPECT_GT(compared, 8);
  // Without constant weights a run needs w; pooling has none to set.
  ProblemDesc d = shapes().front().second;
  Result<onednn::Runner> made = onednn::Runner::create(with_formats(d, DataType::kF32, Layout::kNCHW, Layout::kNCHW));
  ASSERT_TRUE(made.is_ok());
  onednn::Runner r = std::move(made).value();
  RunData data = make_run(r.problem(), 3);
  Tensors t;
  t.x = data.x.data(), t.y = data.y.data();
  EXPECT_EQ(r.run(t).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.set_constant_weights(nullptr).code(), StatusCode::kInvalidArgument);
  for (const auto& [name, pd] : shapes())
    if (is_pool(pd.op)) {
      Result<onednn::Runner> made_pool = onednn::Runner::create(must_make(pd));
      ASSERT_TRUE(made_pool.is_ok()) << name;
      onednn::Runner pool = std::move(made_pool).value();
      const float w = 1.0f;
      const Status s = pool.set_constant_weights(&w);
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << name;
      EXPECT_NE(s.message().find("no weights"), std::string::npos) << s.message();
    }
}

#else
TEST(OneDnnFormats, Skipped) {
  GTEST_SKIP() << "built without oneDNN";
}
#endif

} // namespace
} // namespace convarith::test
