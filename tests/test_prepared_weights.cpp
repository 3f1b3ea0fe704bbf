// Constant weights (PlanOptions::weights): a plan that prepares the filter once (converted, packed as cpu_gemm's
// panels, Winograd-transformed, or copied) gives the same bits as a plan that is handed w on every run, on every CPU
// and emulated row, dtype and layout; it reads the caller's weights only in create(); a run given a w uses that w;
// special values, pooling, a missing w, "tune", the tune cache key and what the plan reports.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "cpu/cpu_ops.hpp"
#include "numeric.cuh"
#include "row.hpp"
#include "support/support.hpp"
#include "tune.hpp"

namespace convarith::test {
namespace {

ProblemDesc conv(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w, int64_t r, int64_t pad, int64_t stride = 1,
                 int64_t groups = 1) {
  return conv2d_desc(n, c, k, h, w, r, pad, stride, groups);
}

// Shapes that reach each conv row's paths: Winograd's 3x3 stride 1, the GEMM's 1x1 and strided/grouped forms, a
// channel count past one packed panel, the fused epilogue with a residual, the transposed convolution, ranks 1 and 3,
// and an empty batch.
std::vector<std::pair<std::string, ProblemDesc>> shapes(bool small) {
  std::vector<std::pair<std::string, ProblemDesc>> out;
  out.push_back({"3x3_pad1", conv(2, 5, 7, 9, 8, 3, 1)});
  out.push_back({"1x1", conv(1, 16, 24, 6, 5, 1, 0)});
  out.push_back({"3x3_stride2_groups2", conv(1, 6, 8, 11, 10, 3, 1, 2, 2)});
  out.push_back({"depthwise_multiplier2", conv(1, 6, 12, 9, 9, 3, 1, 1, 6)});
  ProblemDesc d = conv(1, 4, 6, 7, 7, 3, 1);
  d.epilogue.activation = Activation::kRelu;
  d.epilogue.alpha = 0.5f;
  d.epilogue.beta = 1.0f;
  out.push_back({"epilogue_residual", d});
  d = conv(1, 4, 6, 5, 4, 3, 1, 2);
  d.op = Op::kConvTranspose;
  d.output_padding = {1, 1, 0};
  out.push_back({"transposed_stride2", d});
  d = conv(0, 3, 5, 6, 6, 3, 1);
  out.push_back({"n0", d});
  if (small)
    return out;
  out.push_back({"wide_channels", conv(1, 72, 40, 6, 7, 3, 1)});
  out.push_back({"depthwise_70_channels", conv(2, 70, 70, 7, 6, 3, 1, 1, 70)}); // NHWC: the channels-last path
  d = conv(2, 3, 4, 1, 17, 1, 0);
  d.rank = 1;
  d.input = {17, 1, 1};
  d.kernel = {5, 1, 1};
  d.dilation = {2, 1, 1};
  d.pad_lo = d.pad_hi = {2, 0, 0};
  out.push_back({"rank1_dilated", d});
  d = conv(1, 3, 4, 5, 6, 3, 1);
  d.rank = 3;
  d.input = {5, 6, 4};
  d.kernel = {3, 3, 3};
  d.pad_lo = d.pad_hi = {1, 1, 1};
  out.push_back({"rank3", d});
  // Transposed, one image: the plan without prepared weights copies W's column chunks as the GEMM's B every run
  // (several chunks, two depth blocks, a tail), the prepared plan packs W^T once as the GEMM's A; two images and
  // groups: W^T as A either way.
  d = conv(1, 300, 43, 4, 4, 4, 1, 2);
  d.op = Op::kConvTranspose;
  out.push_back({"transposed_weights_as_b", d});
  d = conv(2, 40, 36, 5, 5, 4, 1, 2, 2);
  d.op = Op::kConvTranspose;
  out.push_back({"transposed_batch2_groups2", d});
  return out;
}

// One tensor in its dtype, from float values (rounded: the stored values).
std::vector<unsigned char> stored(DataType t, const std::vector<float>& v) {
  std::vector<unsigned char> b(v.size() * static_cast<size_t>(dtype_bytes(t)));
  for (size_t i = 0; i < v.size(); ++i) {
    if (t == DataType::kF32) {
      std::memcpy(b.data() + 4 * i, &v[i], 4);
    } else {
      const uint16_t h = t == DataType::kF16 ? kernels::float_to_f16_bits(v[i]) : kernels::float_to_bf16_bits(v[i]);
      std::memcpy(b.data() + 2 * i, &h, 2);
    }
  }
  return b;
}

std::vector<float> uniform(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& e : v)
    e = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  return v;
}

const void* data_or_null(const std::vector<unsigned char>& b) {
  return b.empty() ? nullptr : b.data();
}

// The inputs of one problem in its dtypes (bias and z included).
struct Operands {
  std::vector<unsigned char> x, w, bias, z;
};

Operands operands(const ConvProblem& p, uint64_t seed) {
  Operands o;
  o.x = stored(p.dtype(TensorId::kX), uniform(p.x_elements(), seed));
  o.w = stored(p.dtype(TensorId::kW), uniform(p.w_elements(), seed + 1));
  o.bias = stored(p.dtype(TensorId::kBias), uniform(p.bias_elements(), seed + 2));
  if (p.epilogue().has_residual())
    o.z = stored(p.dtype(TensorId::kZ), uniform(p.y_elements(), seed + 3));
  return o;
}

// y of one run of `plan` (w may be nullptr), filled with a poison pattern first; `status` is the run's.
std::vector<unsigned char> run_plan(const Plan& plan, const Operands& o, const void* w, Status* status) {
  const ConvProblem& p = plan.problem();
  std::vector<unsigned char> y(static_cast<size_t>(p.tensor(TensorId::kY).bytes()), 0xA5);
  std::vector<unsigned char> ws(plan.workspace_bytes() + 1);
  Tensors t;
  t.x = data_or_null(o.x);
  t.w = w;
  t.bias = data_or_null(o.bias);
  t.z = data_or_null(o.z);
  t.y = y.empty() ? nullptr : y.data();
  *status = plan.run(t, ws.data(), plan.workspace_bytes());
  return y;
}

Result<Plan> with_weights(const ConvProblem& p, Device device, const std::string& algorithm, const void* weights) {
  PlanOptions options;
  options.algorithm = algorithm;
  options.weights = weights;
  return Plan::create(p, device, options);
}

// cpu_amx_bf16 runs its scalar model of the tiles where the CPU has none (so the row is covered everywhere).
class AmxEverywhere {
public:
  AmxEverywhere() : saved_(detail::cpu_amx_emulation()) {
    if (!detail::cpu_amx_hardware())
      detail::set_cpu_amx_emulation(true);
  }
  ~AmxEverywhere() { detail::set_cpu_amx_emulation(saved_); }

private:
  bool saved_;
};

// Every row of `device` (but pooling) on every shape, dtype and layout it takes: the plan with prepared weights, run
// with w == nullptr, gives y bit for bit as the plan without them run with w.
void same_bits_on_every_row(Device device, bool small, const std::vector<DataType>& dtypes) {
  AmxEverywhere amx;
  std::map<std::string, int> compared;
  uint64_t seed = 1000;
  for (const AlgorithmInfo& row : algorithms(device)) {
    if ((row.ops & (op_bit(Op::kConv) | op_bit(Op::kConvTranspose))) == 0 || !row.available)
      continue;
    compared[row.name] = 0;
    for (const auto& [name, desc0] : shapes(small)) {
      for (DataType t : dtypes) {
        for (Layout l : {Layout::kNCHW, Layout::kNHWC}) {
          ProblemDesc d = desc0;
          d.dtype = t;
          d.layout = l;
          const ConvProblem p = must_make(d);
          Result<Plan> plain = Plan::create(p, device, row.name);
          if (!plain)
            continue; // the row does not take this one
          const std::string what = std::string(row.name) + " " + name + " " + dtype_name(t) + " " + layout_name(l);
          const Operands o = operands(p, ++seed);
          Result<Plan> prepared = with_weights(p, device, row.name, o.w.data());
          ASSERT_TRUE(prepared.is_ok()) << what << ": " << prepared.status().to_string();
          EXPECT_FALSE(plain->has_prepared_weights()) << what;
          EXPECT_EQ(plain->prepared_weight_bytes(), 0u) << what;
          EXPECT_TRUE(prepared->has_prepared_weights()) << what;
          EXPECT_GE(prepared->prepared_weight_bytes(), o.w.size()) << what;
          EXPECT_STREQ(prepared->algorithm(), row.name) << what;
          Status s1, s2;
          const std::vector<unsigned char> want = run_plan(*plain, o, o.w.data(), &s1);
          const std::vector<unsigned char> got = run_plan(*prepared, o, nullptr, &s2);
          ASSERT_TRUE(s1.is_ok()) << what << ": " << s1.to_string();
          ASSERT_TRUE(s2.is_ok()) << what << ": " << s2.to_string();
          ASSERT_EQ(got.size(), want.size()) << what;
          EXPECT_TRUE(got == want) << what << ": the prepared weights changed y"; // bytes (y is empty for N = 0)
          ++compared[row.name];
        }
      }
    }
  }
  // Every conv row of the table took some of the shapes (a row that took none was not tested at all).
  ASSERT_FALSE(compared.empty());
  for (const auto& [row, count] : compared) {
    EXPECT_GT(count, 0) << row << " took none of the shapes";
    std::cout << "  " << row << ": " << count << " shapes x dtypes x layouts compared\n";
  }
}

TEST(PreparedWeights, EveryCpuRowGivesTheSameBits) {
  same_bits_on_every_row(Device::kCpu, false, {DataType::kF32, DataType::kF16, DataType::kBF16});
}

TEST(PreparedWeights, EveryEmulatedRowGivesTheSameBits) {
  same_bits_on_every_row(Device::kEmulated, true, {DataType::kF32, DataType::kF16});
}

// The caller's buffer is read in create() only: overwriting or freeing it afterwards changes nothing.
TEST(PreparedWeights, CreateCopiesTheWeights) {
  for (const char* row : {"cpu_gemm", "cpu_winograd", "cpu_gemm_col2im"}) {
    ProblemDesc d = conv(1, 8, 12, 10, 9, 3, 1);
    if (std::string(row) == "cpu_gemm_col2im")
      d.op = Op::kConvTranspose;
    const ConvProblem p = must_make(d);
    Operands o = operands(p, 7);
    Result<Plan> plain = Plan::create(p, Device::kCpu, row);
    ASSERT_TRUE(plain.is_ok()) << plain.status().to_string();
    Status s;
    const std::vector<unsigned char> want = run_plan(*plain, o, o.w.data(), &s);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    Result<Plan> prepared = [&] {
      std::vector<unsigned char> w = o.w; // freed before the run
      return with_weights(p, Device::kCpu, row, w.data());
    }();
    ASSERT_TRUE(prepared.is_ok()) << prepared.status().to_string();
    const std::vector<unsigned char> original = o.w;
    std::fill(o.w.begin(), o.w.end(), 0xFF); // NaN in every weight
    const std::vector<unsigned char> got = run_plan(*prepared, o, nullptr, &s);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_EQ(got, want) << row;
    // A copy of the plan shares them.
    const Plan copy = *prepared;
    EXPECT_TRUE(copy.has_prepared_weights());
    EXPECT_EQ(run_plan(copy, o, nullptr, &s), want) << row;
    // A run given a w uses that w (here all NaN: y is NaN wherever a weight reaches it, i.e. everywhere).
    const std::vector<unsigned char> nan_y = run_plan(*prepared, o, o.w.data(), &s);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    const auto* yf = reinterpret_cast<const float*>(nan_y.data());
    for (int64_t i = 0; i < p.y_elements(); ++i)
      ASSERT_TRUE(std::isnan(yf[i])) << row << " y[" << i << "] = " << yf[i] << ": the run's w was not used";
    (void)original;
  }
}

// A run given other weights than the plan's gives exactly what a plan without weights gives for them.
TEST(PreparedWeights, AGivenWOverridesThePlans) {
  const ConvProblem p = must_make(conv(2, 6, 10, 8, 8, 3, 1));
  for (const char* row : {"cpu_gemm", "cpu_winograd"}) {
    const Operands a = operands(p, 11), b = operands(p, 29);
    Result<Plan> prepared = with_weights(p, Device::kCpu, row, a.w.data());
    Result<Plan> plain = Plan::create(p, Device::kCpu, row);
    ASSERT_TRUE(prepared.is_ok() && plain.is_ok());
    Status s1, s2;
    const std::vector<unsigned char> want = run_plan(*plain, a, b.w.data(), &s1);
    const std::vector<unsigned char> got = run_plan(*prepared, a, b.w.data(), &s2);
    ASSERT_TRUE(s1.is_ok() && s2.is_ok()) << s1.to_string() << " " << s2.to_string();
    EXPECT_EQ(got, want) << row;
    EXPECT_NE(run_plan(*prepared, a, nullptr, &s2), want) << row << ": the plan's own weights give other values";
  }
}

// Inf and NaN among the weights: the rows that hand such runs to another path (Winograd to cpu_gemm, the GEMM to its
// direct loop) do so with prepared weights as well; y has the same bits.
TEST(PreparedWeights, SpecialValuesTakeTheSamePath) {
  for (DataType t : {DataType::kF32, DataType::kBF16}) {
    ProblemDesc d = conv(1, 6, 9, 9, 9, 3, 1);
    d.dtype = t;
    const ConvProblem p = must_make(d);
    for (const char* row : {"cpu_gemm", "cpu_winograd"}) {
      Operands o = operands(p, 3);
      std::vector<float> w = uniform(p.w_elements(), 4);
      w[5] = std::numeric_limits<float>::infinity();
      w[static_cast<size_t>(p.w_elements()) - 2] = std::numeric_limits<float>::quiet_NaN();
      o.w = stored(t, w);
      Result<Plan> prepared = with_weights(p, Device::kCpu, row, o.w.data());
      Result<Plan> plain = Plan::create(p, Device::kCpu, row);
      ASSERT_TRUE(prepared.is_ok() && plain.is_ok());
      Status s1, s2;
      const std::vector<unsigned char> want = run_plan(*plain, o, o.w.data(), &s1);
      const std::vector<unsigned char> got = run_plan(*prepared, o, nullptr, &s2);
      ASSERT_TRUE(s1.is_ok() && s2.is_ok()) << s1.to_string() << " " << s2.to_string();
      EXPECT_EQ(got, want) << row << " " << dtype_name(t);
      // The values are special (not all finite), so the comparison above compared something.
      int nonfinite = 0;
      for (int64_t i = 0; i < p.y_elements(); ++i) {
        float v = 0;
        if (t == DataType::kF32)
          std::memcpy(&v, got.data() + 4 * i, 4);
        else {
          uint16_t h = 0;
          std::memcpy(&h, got.data() + 2 * i, 2);
          v = kernels::bf16_bits_to_float(h);
        }
        nonfinite += std::isfinite(v) ? 0 : 1;
      }
      EXPECT_GT(nonfinite, 0) << row;
    }
  }
}

TEST(PreparedWeights, BadUseIsAnErrorThatNamesIt) {
  ProblemDesc d = conv(1, 3, 3, 6, 6, 3, 1);
  d.op = Op::kMaxPool;
  const ConvProblem pool = must_make(d);
  const float w[1] = {1.0f};
  Result<Plan> pp = with_weights(pool, Device::kCpu, "auto", w);
  ASSERT_FALSE(pp.is_ok());
  EXPECT_EQ(pp.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(pp.status().message().find("PlanOptions::weights"), std::string::npos) << pp.status().message();
  EXPECT_NE(pp.status().message().find("max_pool"), std::string::npos) << pp.status().message();

  // A run without w on a plan without weights: an error, y untouched.
  const ConvProblem p = must_make(conv(1, 3, 4, 6, 6, 3, 1));
  const Operands o = operands(p, 5);
  Result<Plan> plain = Plan::create(p, Device::kCpu, "cpu_gemm");
  ASSERT_TRUE(plain.is_ok());
  Status s;
  const std::vector<unsigned char> y = run_plan(*plain, o, nullptr, &s);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("w is null"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("no prepared weights"), std::string::npos) << s.message();
  for (unsigned char b : y)
    ASSERT_EQ(b, 0xA5) << "y was written by a failed run";
  // An empty plan: no weights.
  EXPECT_FALSE(Plan().has_prepared_weights());
  EXPECT_EQ(Plan().prepared_weight_bytes(), 0u);
}

// cpu_winograd's estimate with its filters transformed once is below the one that transforms them every run (the
// term it drops); auto ranks by it, and the plan reports it.
TEST(PreparedWeights, WinogradCostDropsTheFilterTransform) {
  const ConvProblem p = must_make(conv(1, 256, 256, 14, 14, 3, 1));
  const std::vector<unsigned char> w = stored(DataType::kF32, uniform(p.w_elements(), 9));
  Result<Plan> plain = Plan::create(p, Device::kCpu, "cpu_winograd");
  Result<Plan> prepared = with_weights(p, Device::kCpu, "cpu_winograd", w.data());
  ASSERT_TRUE(plain.is_ok() && prepared.is_ok());
  EXPECT_LT(prepared->cost_estimate_us(), plain->cost_estimate_us());
  EXPECT_GT(prepared->cost_estimate_us(), 0.0);
  // The prepared form is the transformed filter (16 floats per C x K pair) beside the copy.
  EXPECT_GE(prepared->prepared_weight_bytes(), w.size() + 16u * 256u * 256u * sizeof(float));
  // cpu_gemm's estimate does not change (its panels were packed once per run in either case).
  Result<Plan> gplain = Plan::create(p, Device::kCpu, "cpu_gemm");
  Result<Plan> gprep = with_weights(p, Device::kCpu, "cpu_gemm", w.data());
  ASSERT_TRUE(gplain.is_ok() && gprep.is_ok());
  EXPECT_EQ(gprep->cost_estimate_us(), gplain->cost_estimate_us());
  // auto with weights takes the row of lowest prepared estimate among the deterministic ones.
  Result<Plan> a = with_weights(p, Device::kCpu, "auto", w.data());
  ASSERT_TRUE(a.is_ok());
  EXPECT_TRUE(a->has_prepared_weights());
  EXPECT_LE(a->cost_estimate_us(), prepared->cost_estimate_us());
  EXPECT_LE(a->cost_estimate_us(), gprep->cost_estimate_us());
}

// "tune" with weights: times the rows with their weights prepared, keeps its own key (a winner measured without
// prepared weights is not reused for them, nor the other way), and the plan runs the caller's weights.
TEST(PreparedWeights, TuneTimesPreparedRowsUnderItsOwnKey) {
  const ConvProblem p = must_make(conv(1, 8, 8, 12, 12, 3, 1));
  const DeviceInfo dev = default_device_info(Device::kCpu);
  const detail::TuneKey k0 = detail::tune_key(p, dev, false), k1 = detail::tune_key(p, dev, true);
  EXPECT_EQ(k1.problem, k0.problem + " weights=prepared");
  EXPECT_EQ(k0.problem.find("weights"), std::string::npos);

  const Operands o = operands(p, 17);
  PlanOptions options;
  options.algorithm = "tune";
  options.tune_warmup = 0;
  options.tune_reps = 1;
  options.weights = o.w.data();
  const uint64_t before = detail::tuning_runs().load();
  Result<Plan> tuned = Plan::create(p, Device::kCpu, options);
  ASSERT_TRUE(tuned.is_ok()) << tuned.status().to_string();
  EXPECT_TRUE(tuned->has_prepared_weights());
  EXPECT_TRUE(tuned->tuned());
  EXPECT_GT(detail::tuning_runs().load(), before);
  Result<Plan> plain = Plan::create(p, Device::kCpu, tuned->algorithm());
  ASSERT_TRUE(plain.is_ok());
  Status s1, s2;
  EXPECT_EQ(run_plan(*tuned, o, nullptr, &s1), run_plan(*plain, o, o.w.data(), &s2));
  ASSERT_TRUE(s1.is_ok() && s2.is_ok()) << s1.to_string() << " " << s2.to_string();
  // The same problem tuned without weights is timed again (its own key), and with weights again is a cache hit.
  options.weights = nullptr;
  const uint64_t mid = detail::tuning_runs().load();
  Result<Plan> unweighted = Plan::create(p, Device::kCpu, options);
  ASSERT_TRUE(unweighted.is_ok());
  EXPECT_EQ(unweighted->tuning().source, "measured");
  EXPECT_GT(detail::tuning_runs().load(), mid);
  options.weights = o.w.data();
  const uint64_t after = detail::tuning_runs().load();
  Result<Plan> again = Plan::create(p, Device::kCpu, options);
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ(again->tuning().source, "memory");
  EXPECT_EQ(detail::tuning_runs().load(), after);
  EXPECT_TRUE(again->has_prepared_weights());
}

} // namespace
} // namespace convarith::test
