// Every CUDA kernel row of the algorithm table on a real GPU, through the public API
// (Plan::create(problem, Device::kCuda, name) and plan.run on cudaMalloc'd buffers), against the
// fp64 reference: the paper's figures, the smoke and edge lists, the same random draw as
// test_kernels_emulated, a few real layers, the tiny 64-bit-index problems, and one max pool past
// 2^31 elements (MaxPoolPast2To31ElementsOnSampledOutputs: 17 GB of device memory).
// GpuKernelFormats: every format a row declares (dtype x layout x filter layout x epilogue, tests/kernel_formats.hpp)
// on the small conv-like problems of test_kernels_formats, and f16 NHWC relu + residual on the real layers.
//
// Per (algorithm x problem): integer inputs compared exactly; random floats compared within the error
// bound, twice — a deterministic row must give bitwise-identical results run to run. Outputs are
// NaN-poisoned before every run. Without a CUDA device (or in a build without CUDA) every test is
// skipped, never failed -- unless CONVARITH_REQUIRE_GPU is set, which turns each such skip into a
// failure (tests/support). A row that declines a problem (kNotSupported) is a plain skip either way. Filter by
// algorithm, e.g. --gtest_filter='*Gpu*tiled*'.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "convarith/convarith.hpp"
#include "kernel_formats.hpp"
#include "support/support.hpp"

#if defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace convarith::test {
namespace {

struct GpuCase {
  const Algorithm* algorithm = nullptr;
  std::string list;
  NamedProblem problem;
};

void PrintTo(const GpuCase& c, std::ostream* os) {
  *os << c.algorithm->name << " on " << c.list << "/" << c.problem.name << " (" << c.problem.problem.name() << ")";
}

// The same fixed draw as test_kernels_emulated, so a GPU-only failure can be replayed under the executor.
constexpr uint64_t kRandomProblemSeed = 20261124;
constexpr int kRandomProblemCount = 24;

ProblemDesc conv2d(int64_t n, int64_t c, int64_t k, int64_t hw, int64_t r, int64_t stride, int64_t pad,
                   int64_t groups = 1) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.n = n;
  d.c = c;
  d.k = k;
  d.groups = groups;
  d.input = {hw, hw, 1};
  d.kernel = {r, r, 1};
  d.stride = {stride, stride, 1};
  d.pad_lo = {pad, pad, 0};
  d.pad_hi = {pad, pad, 0};
  return d;
}

// A few real layers (shapes from ResNet-50, MobileNetV2, U-Net and a 3-D conv net), batch 1 so the
// fp64 reference stays around a second.
std::vector<NamedProblem> real_layers() {
  std::vector<NamedProblem> out;
  out.push_back({"resnet50_conv2_3x3_64", must_make(conv2d(1, 64, 64, 56, 3, 1, 1))});
  out.push_back({"resnet50_conv3_1x1_256_128", must_make(conv2d(1, 256, 128, 28, 1, 1, 0))});
  out.push_back({"resnet50_conv1_7x7_s2", must_make(conv2d(1, 3, 64, 224, 7, 2, 3))});
  out.push_back({"mobilenetv2_dw3x3_s2_96", must_make(conv2d(1, 96, 96, 112, 3, 2, 1, 96))});
  ProblemDesc up;
  up.op = Op::kConvTranspose;
  up.c = 128;
  up.k = 64;
  up.input = {28, 28, 1};
  up.kernel = {2, 2, 1};
  up.stride = {2, 2, 1};
  out.push_back({"unet_up_2x2_s2_128_64", must_make(up)});
  ProblemDesc pool;
  pool.op = Op::kMaxPool;
  pool.c = 64;
  pool.input = {112, 112, 1};
  pool.kernel = {3, 3, 1};
  pool.stride = {2, 2, 1};
  pool.pad_lo = {1, 1, 0};
  pool.pad_hi = {1, 1, 0};
  out.push_back({"resnet50_maxpool_3x3_s2", must_make(pool)});
  ProblemDesc c3;
  c3.op = Op::kConv;
  c3.rank = 3;
  c3.c = 16;
  c3.k = 32;
  c3.input = {8, 28, 28};
  c3.kernel = {3, 3, 3};
  c3.pad_lo = {1, 1, 1};
  c3.pad_hi = {1, 1, 1};
  out.push_back({"c3d_3x3x3_16_32", must_make(c3)});
  return out;
}

std::vector<GpuCase> gpu_cases() {
  const std::vector<std::pair<std::string, std::vector<NamedProblem>>> lists = {
      {"paper", paper_problems()}, {"smoke", smoke_problems()},
      {"edge", edge_problems()},   {"random", random_problems(kRandomProblemSeed, kRandomProblemCount)},
      {"layer", real_layers()},    {"index64", index64_problems()}};
  std::vector<GpuCase> cases;
  for (const Algorithm& row : algorithm_table()) {
    if (row.device != Device::kCuda)
      continue;
    for (const auto& [list, problems] : lists) {
      for (const NamedProblem& np : problems) {
        if ((row.ops & op_bit(np.problem.op())) != 0)
          cases.push_back({&row, list, np});
      }
    }
  }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<GpuCase>& info) {
  return param_name(std::string(info.param.algorithm->name) + "_" + info.param.list + "_" + info.param.problem.name);
}

class GpuKernel : public ::testing::TestWithParam<GpuCase> {};

// Format cases: (row x problem); the test loops over the formats. `all_formats` false: f16 NHWC relu + residual only.
struct GpuFormatCase {
  const Algorithm* algorithm = nullptr;
  NamedProblem problem;
  bool all_formats = true;
  int index = 0;
};
void PrintTo(const GpuFormatCase& c, std::ostream* os) {
  *os << c.algorithm->name << " on " << c.problem.name << " (" << c.problem.problem.name() << ")";
}
std::vector<GpuFormatCase> gpu_format_cases() {
  std::vector<GpuFormatCase> cases;
  for (const Algorithm& row : algorithm_table()) {
    if (row.device != Device::kCuda)
      continue;
    for (Op op : {Op::kConv, Op::kConvTranspose}) {
      if (!(row.ops & op_bit(op)))
        continue;
      int index = 0;
      for (const NamedProblem& np : conv_like(op))
        cases.push_back({&row, np, true, index++});
    }
    for (const NamedProblem& np : real_layers())
      if ((row.ops & op_bit(np.problem.op())) != 0)
        cases.push_back({&row, np, false, 0});
  }
  return cases;
}
std::string format_case_name(const ::testing::TestParamInfo<GpuFormatCase>& info) {
  return param_name(std::string(info.param.algorithm->name) + "_" + op_name(info.param.problem.problem.op()) + "_" +
                    info.param.problem.name);
}
class GpuKernelFormats : public ::testing::TestWithParam<GpuFormatCase> {};

#if defined(CONVARITH_HAVE_CUDA)

#define ASSERT_CUDA(expr)                                                                                              \
  do {                                                                                                                 \
    const cudaError_t err_ = (expr);                                                                                   \
    ASSERT_EQ(err_, cudaSuccess) << #expr << ": " << cudaGetErrorString(err_);                                         \
  } while (0)

// Owns one device allocation.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) {
    if (bytes > 0 && cudaMalloc(&ptr_, bytes) != cudaSuccess)
      ptr_ = nullptr;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_ != nullptr)
      static_cast<void>(cudaFree(ptr_));
  }
  template <typename T> T* as() const { return static_cast<T*>(ptr_); }

private:
  void* ptr_ = nullptr;
};

// Copies the inputs to the device, runs the plan once on a NaN-poisoned output and copies y back.
struct GpuRun {
  Status status;
  std::vector<float> y;
  std::string cuda_error; // a CUDA runtime error (allocation, copy, or the kernel's at synchronize)
};

GpuRun run_on_gpu(const Plan& plan, const Inputs& in, bool with_bias) {
  GpuRun result;
  const ConvProblem& p = plan.problem();
  const size_t y_bytes = static_cast<size_t>(p.y_elements()) * sizeof(float);
  result.y.resize(static_cast<size_t>(p.y_elements()));
  poison(result.y);
  DeviceBuffer x(in.x.size() * sizeof(float)), w(in.w.size() * sizeof(float)), b(in.bias.size() * sizeof(float));
  DeviceBuffer y(y_bytes), ws(plan.workspace_bytes());
  auto check = [&](cudaError_t err, const char* what) {
    if (err != cudaSuccess && result.cuda_error.empty())
      result.cuda_error = std::string(what) + ": " + cudaGetErrorString(err);
  };
  check(cudaMemcpy(x.as<float>(), in.x.data(), in.x.size() * sizeof(float), cudaMemcpyHostToDevice), "copy x");
  if (!in.w.empty())
    check(cudaMemcpy(w.as<float>(), in.w.data(), in.w.size() * sizeof(float), cudaMemcpyHostToDevice), "copy w");
  if (!in.bias.empty())
    check(cudaMemcpy(b.as<float>(), in.bias.data(), in.bias.size() * sizeof(float), cudaMemcpyHostToDevice),
          "copy bias");
  check(cudaMemcpy(y.as<float>(), result.y.data(), y_bytes, cudaMemcpyHostToDevice), "poison y");
  if (!result.cuda_error.empty())
    return result;
  result.status =
      plan.run(p.x_elements() > 0 ? x.as<float>() : nullptr, in.w.empty() ? nullptr : w.as<float>(),
               with_bias && !in.bias.empty() ? b.as<float>() : nullptr, p.y_elements() > 0 ? y.as<float>() : nullptr,
               ws.as<void>(), plan.workspace_bytes(), nullptr);
  check(cudaDeviceSynchronize(), "kernel (at cudaDeviceSynchronize)");
  check(cudaMemcpy(result.y.data(), y.as<float>(), y_bytes, cudaMemcpyDeviceToHost), "copy y back");
  return result;
}

std::vector<double> exact_float_reference(const ConvProblem& p, const Inputs& in, bool with_bias) {
  std::vector<double> want = reference(p, in.x.data(), in.w.empty() ? nullptr : in.w.data(),
                                       with_bias && !in.bias.empty() ? in.bias.data() : nullptr);
  if (p.op() == Op::kAvgPool) {
    for (double& v : want)
      v = static_cast<double>(static_cast<float>(v)); // one rounded division
  }
  return want;
}

TEST_P(GpuKernel, MatchesReference) {
  CONVARITH_SKIP_WITHOUT_GPU();
  const Algorithm& algorithm = *GetParam().algorithm;
  const ConvProblem& p = GetParam().problem.problem;
  Result<Plan> plan = Plan::create(p, Device::kCuda, algorithm.name);
  if (!plan.is_ok()) {
    ASSERT_EQ(plan.status().code(), StatusCode::kNotSupported) << plan.status().to_string();
    GTEST_SKIP() << plan.status().message();
  }
  ASSERT_STREQ(plan->algorithm(), algorithm.name);

  const Inputs ints = integer_inputs(p, 17, true);
  for (const bool with_bias : {true, false}) {
    const GpuRun got = run_on_gpu(*plan, ints, with_bias);
    ASSERT_TRUE(got.cuda_error.empty()) << got.cuda_error;
    ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
    EXPECT_TRUE(exact_match(p, got.y, exact_float_reference(p, ints, with_bias)))
        << algorithm.name << (with_bias ? " with bias" : " without bias");
  }

  const uint64_t seed = fresh_seed();
  const Inputs floats = random_inputs(p, seed, true);
  const float* w = floats.w.empty() ? nullptr : floats.w.data();
  const float* bias = floats.bias.empty() ? nullptr : floats.bias.data();
  const std::vector<double> want = reference(p, floats.x.data(), w, bias);
  const std::vector<double> magnitude = reference_magnitude(p, floats.x.data(), w, bias);
  const GpuRun first = run_on_gpu(*plan, floats, true);
  const GpuRun second = run_on_gpu(*plan, floats, true);
  ASSERT_TRUE(first.cuda_error.empty()) << first.cuda_error;
  ASSERT_TRUE(second.cuda_error.empty()) << second.cuda_error;
  ASSERT_TRUE(first.status.is_ok()) << first.status.to_string();
  ASSERT_TRUE(second.status.is_ok()) << second.status.to_string();
  EXPECT_TRUE(close_match(p, first.y, want, magnitude)) << "random inputs, seed " << seed;
  EXPECT_TRUE(close_match(p, second.y, want, magnitude)) << "random inputs (second run), seed " << seed;
  if (algorithm.deterministic && !first.y.empty()) {
    EXPECT_EQ(std::memcmp(first.y.data(), second.y.data(), first.y.size() * sizeof(float)), 0)
        << algorithm.name << " is declared deterministic but two runs differ (seed " << seed << ")";
  }
}

// A host pointer on the CUDA path is an error, not a crash, and the launch never happens.
TEST(GpuKernels, HostPointersAreRejected) {
  CONVARITH_SKIP_WITHOUT_GPU();
  const ConvProblem p = must_make(conv2d(1, 2, 2, 5, 3, 1, 1));
  Result<Plan> plan = Plan::create(p, Device::kCuda, "direct");
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  const Inputs in = integer_inputs(p, 1, false);
  std::vector<float> y(static_cast<size_t>(p.y_elements()), 42.0f);
  const Status s = plan->run(in.x.data(), in.w.data(), nullptr, y.data());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  for (float v : y)
    ASSERT_EQ(v, 42.0f);
}

// splitmix64's finaliser, cut to 24 bits: an exact float per element, different for neighbours and
// for elements 2^31 or 2^32 apart (a wrapped or truncated index reads a different value).
float pattern(uint64_t i) {
  uint64_t z = i + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z & 0xFFFFFFu);
}

// The 64-bit index path on a real GPU past 2^31 elements: a k = 1 max pool over 1 x 1 x 46341 x 46341
// (2^31 + 4633 elements; x and y 8.6 GB each), so y must equal x element for element. Checked on
// samples: both ends, 4096 elements either side of element 2^31, and 4096 random elements.
TEST(GpuKernels, MaxPoolPast2To31ElementsOnSampledOutputs) {
  CONVARITH_SKIP_WITHOUT_GPU();
  ProblemDesc d;
  d.op = Op::kMaxPool;
  d.input = {46341, 46341, 1};
  d.kernel = {1, 1, 1};
  const ConvProblem p = must_make(d);
  const int64_t count = p.x_elements();
  ASSERT_GT(count, int64_t{1} << 31);
  ASSERT_EQ(p.y_elements(), count);
  const size_t bytes = static_cast<size_t>(count) * sizeof(float);
  size_t free_bytes = 0, total_bytes = 0;
  ASSERT_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  if (free_bytes < 2 * bytes + (size_t(512) << 20))
    CONVARITH_GPU_SKIP("needs " + std::to_string(2 * bytes) + " bytes of device memory, " + std::to_string(free_bytes) +
                       " free");
  Result<Plan> plan = Plan::create(p, Device::kCuda, "pool");
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  DeviceBuffer x(bytes), y(bytes), ws(plan->workspace_bytes());
  ASSERT_NE(x.as<float>(), nullptr);
  ASSERT_NE(y.as<float>(), nullptr);
  // Upload the pattern in 256 MiB pieces (no 8.6 GB host buffer).
  const int64_t chunk = int64_t{1} << 26;
  std::vector<float> host(static_cast<size_t>(chunk));
  for (int64_t first = 0; first < count; first += chunk) {
    const int64_t n = std::min(chunk, count - first);
    for (int64_t i = 0; i < n; ++i)
      host[static_cast<size_t>(i)] = pattern(static_cast<uint64_t>(first + i));
    ASSERT_CUDA(
        cudaMemcpy(x.as<float>() + first, host.data(), static_cast<size_t>(n) * sizeof(float), cudaMemcpyHostToDevice));
  }
  ASSERT_CUDA(cudaMemset(y.as<void>(), 0xFF, bytes)); // NaN
  const Status s = plan->run(x.as<float>(), nullptr, nullptr, y.as<float>(), ws.as<void>(), plan->workspace_bytes());
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  ASSERT_CUDA(cudaDeviceSynchronize());

  std::vector<std::pair<int64_t, int64_t>> ranges = {
      {0, 4096}, {(int64_t{1} << 31) - 4096, 8192}, {count - 4096, 4096}};
  const uint64_t seed = fresh_seed();
  std::mt19937_64 gen(seed);
  for (int i = 0; i < 4096; ++i)
    ranges.emplace_back(std::uniform_int_distribution<int64_t>(0, count - 1)(gen), 1);
  int64_t checked = 0, wrong = 0;
  std::string first_wrong;
  std::vector<float> back;
  for (const auto& [first, n] : ranges) {
    back.resize(static_cast<size_t>(n));
    ASSERT_CUDA(
        cudaMemcpy(back.data(), y.as<float>() + first, static_cast<size_t>(n) * sizeof(float), cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < n; ++i, ++checked) {
      const float want = pattern(static_cast<uint64_t>(first + i));
      if (std::memcmp(&back[static_cast<size_t>(i)], &want, sizeof want) != 0 && wrong++ == 0)
        first_wrong = "y[" + std::to_string(first + i) + "] = " + std::to_string(back[static_cast<size_t>(i)]) +
                      ", want " + std::to_string(want);
    }
  }
  EXPECT_EQ(checked, 4096 + 8192 + 4096 + 4096);
  EXPECT_EQ(wrong, 0) << wrong << " of " << checked << " sampled outputs wrong; first " << first_wrong << " (seed "
                      << seed << ")";
}

// One run of a formats case on the device: inputs (their dtypes) copied up, y NaN-poisoned (or holding z when z is
// y), Plan::run(Tensors), y copied back as doubles in memory order.
struct GpuFormatRun {
  Status status;
  std::vector<double> y;
  std::vector<unsigned char> raw;
  std::string cuda_error;
};

GpuFormatRun run_format_on_gpu(const Plan& plan, const TensorSet& in, bool with_bias, bool z_is_y) {
  GpuFormatRun r;
  const ConvProblem& p = plan.problem();
  Buffer y = make_buffer(p.tensor(TensorId::kY));
  if (z_is_y)
    y.bytes = in.z.bytes;
  else
    poison(y);
  auto check = [&](cudaError_t err, const char* what) {
    if (err != cudaSuccess && r.cuda_error.empty())
      r.cuda_error = std::string(what) + ": " + cudaGetErrorString(err);
  };
  auto upload = [&](const Buffer& b, const char* what) {
    auto d = std::make_unique<DeviceBuffer>(b.bytes.size());
    if (!b.bytes.empty())
      check(cudaMemcpy(d->as<void>(), b.data(), b.bytes.size(), cudaMemcpyHostToDevice), what);
    return d;
  };
  const auto dx = upload(in.x, "copy x"), dw = upload(in.w, "copy w"), db = upload(in.bias, "copy bias");
  const auto dz = upload(in.z, "copy z"), dy = upload(y, "copy y");
  DeviceBuffer ws(plan.workspace_bytes());
  if (!r.cuda_error.empty())
    return r;
  Tensors t;
  t.x = dx->as<void>();
  t.w = in.w.bytes.empty() ? nullptr : dw->as<void>();
  t.bias = with_bias && !in.bias.bytes.empty() ? db->as<void>() : nullptr;
  t.z = z_is_y ? dy->as<void>() : (in.z.bytes.empty() ? nullptr : dz->as<void>());
  t.y = dy->as<void>();
  r.status = plan.run(t, ws.as<void>(), plan.workspace_bytes(), nullptr);
  check(cudaDeviceSynchronize(), "kernel (at cudaDeviceSynchronize)");
  r.raw.resize(y.bytes.size());
  check(cudaMemcpy(r.raw.data(), dy->as<void>(), r.raw.size(), cudaMemcpyDeviceToHost), "copy y back");
  if (r.status.is_ok() && r.cuda_error.empty())
    r.y = oracle::to_double(p, TensorId::kY, r.raw.data());
  return r;
}

TEST_P(GpuKernelFormats, MatchesReference) {
  CONVARITH_SKIP_WITHOUT_GPU();
  const Algorithm& row = *GetParam().algorithm;
  const ConvProblem& base = GetParam().problem.problem;
  std::vector<Format> formats;
  if (GetParam().all_formats) {
    formats = formats_of(row, base.op(), GetParam().index);
  } else {
    Format f;
    f.dtype = DataType::kF16;
    f.layout = f.w_layout = Layout::kNHWC;
    f.epi = is_pool(base.op()) ? Epi::kIdentity : Epi::kReluResidual;
    formats.push_back(f);
  }
  for (const Format& f : formats) {
    const ConvProblem p = with_format(base, f);
    SCOPED_TRACE(format_name(f) + " (" + p.name() + ")");
    Result<Plan> plan = Plan::create(p, Device::kCuda, row.name);
    if (!plan.is_ok()) {
      EXPECT_EQ(plan.status().code(), StatusCode::kNotSupported) << plan.status().to_string();
      EXPECT_NE(plan.status().message().find("shared memory"), std::string::npos) << plan.status().to_string();
      continue;
    }
    const bool bias = has_bias(f) && p.bias_elements() > 0;
    if (exact_epilogue(f)) {
      const TensorSet ints = make_inputs(p, 17, true);
      const GpuFormatRun got = run_format_on_gpu(*plan, ints, bias, in_place(f));
      ASSERT_TRUE(got.cuda_error.empty()) << got.cuda_error;
      ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
      const Mismatch m = exact_mismatches(p, got.y, oracle::reference(p, oracle_tensors(ints, bias)));
      EXPECT_EQ(m.bad, 0) << "integer inputs; first at " << m.first << ": got " << m.got << " want " << m.want;
    }
    const uint64_t seed = fresh_seed();
    const TensorSet floats = make_inputs(p, seed, false);
    const oracle::Tensors ot = oracle_tensors(floats, bias);
    const std::vector<double> want = oracle::reference(p, ot);
    const std::vector<double> magnitude = oracle::reference_magnitude(p, ot);
    const GpuFormatRun first = run_format_on_gpu(*plan, floats, bias, in_place(f));
    const GpuFormatRun second = run_format_on_gpu(*plan, floats, bias, in_place(f));
    ASSERT_TRUE(first.cuda_error.empty()) << first.cuda_error;
    ASSERT_TRUE(second.cuda_error.empty()) << second.cuda_error;
    ASSERT_TRUE(first.status.is_ok()) << first.status.to_string();
    ASSERT_TRUE(second.status.is_ok()) << second.status.to_string();
    for (const GpuFormatRun* r : {&first, &second}) {
      const oracle::Verdict v = oracle::accept(p, r->y, want, magnitude);
      EXPECT_TRUE(v.pass) << "random floats (seed " << seed << "): " << v.bad << " bad (" << v.nan_bad
                          << " NaN), first " << v.first_bad << ", worst error/bound " << v.worst_ratio;
    }
    if (row.deterministic) {
      EXPECT_EQ(first.raw, second.raw) << row.name << " is deterministic but two runs differ (seed " << seed << ")";
    }
  }
}

#else // built without CUDA

TEST_P(GpuKernel, MatchesReference) {
  CONVARITH_GPU_SKIP("convarith was built without CUDA");
}

TEST_P(GpuKernelFormats, MatchesReference) {
  CONVARITH_GPU_SKIP("convarith was built without CUDA");
}

#endif

INSTANTIATE_TEST_SUITE_P(Gpu, GpuKernel, ::testing::ValuesIn(gpu_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Gpu, GpuKernelFormats, ::testing::ValuesIn(gpu_format_cases()), format_case_name);

} // namespace
} // namespace convarith::test
