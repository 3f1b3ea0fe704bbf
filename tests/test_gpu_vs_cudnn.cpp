// tests/test_gpu_vs_cudnn.cpp — every CUDA row of the algorithm table against cuDNN on a real GPU.
//
// Per (algorithm x problem), over the smoke and edge lists and a few real layers: fresh random
// floats (seed printed on failure), our output (NaN-poisoned first) and cuDNN's (FMA math, TF32
// off; backward-data for transposed conv; cudnnPoolingForward for pooling) are both compared with
// the fp64 reference. The rule (DESIGN.md §5): our max error relative to sum |x*w| is at most twice
// cuDNN's, plus one float32 ulp of slack for problems where cuDNN happens to be exact. Problems
// cuDNN cannot express (asymmetric padding, ceil_mode, dilated pooling, output padding >= stride,
// N = 0) are still checked against the reference alone. Without a device every test is skipped.
// Compiles in the CUDA build with cuDNN (CONVARITH_HAVE_CUDNN); elsewhere one skipped test.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "support/support.hpp"

#if defined(CONVARITH_HAVE_CUDNN) && defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include "cudnn/cudnn_runner.hpp"
#define CONVARITH_GPU_VS_CUDNN 1
#endif

namespace convarith::test {
namespace {

#if defined(CONVARITH_GPU_VS_CUDNN)

struct Case {
  const Algorithm* algorithm = nullptr;
  NamedProblem problem;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.algorithm->name << " on " << c.problem.name << " (" << c.problem.problem.name() << ")";
}

ProblemDesc conv2d(Op op, int64_t n, int64_t c, int64_t k, int64_t hw, int64_t r, int64_t s, int64_t p, int64_t d = 1,
                   int64_t g = 1, int64_t a = 0) {
  ProblemDesc desc;
  desc.op = op;
  desc.n = n;
  desc.c = c;
  desc.k = k;
  desc.groups = g;
  desc.input = {hw, hw, 1};
  desc.kernel = {r, r, 1};
  desc.stride = {s, s, 1};
  desc.pad_lo = {p, p, 0};
  desc.pad_hi = {p, p, 0};
  desc.dilation = {d, d, 1};
  desc.output_padding = {a, a, 0};
  return desc;
}

// Real layers from bench/layers.csv at batch 1 (the fp64 reference stays under a second each).
std::vector<NamedProblem> real_layers() {
  std::vector<NamedProblem> out;
  out.push_back({"R17_resnet50_3x3_256", must_make(conv2d(Op::kConv, 1, 256, 256, 14, 3, 1, 1))});
  out.push_back({"R09_resnet50_1x1_s2", must_make(conv2d(Op::kConv, 1, 256, 512, 56, 1, 2, 0))});
  out.push_back({"M02_mobilenetv2_dw_s2", must_make(conv2d(Op::kConv, 1, 96, 96, 112, 3, 2, 1, 1, 96))});
  out.push_back({"D1_deeplab_d2_reduced_c64", must_make(conv2d(Op::kConv, 1, 64, 64, 33, 3, 1, 2, 2))});
  out.push_back({"T2_dcgan_4x4_s2", must_make(conv2d(Op::kConvTranspose, 1, 512, 256, 4, 4, 2, 1))});
  out.push_back({"U2_unet_2x2_s2", must_make(conv2d(Op::kConvTranspose, 1, 128, 64, 64, 2, 2, 0))});
  out.push_back({"G1_cyclegan_3x3_s2_op1", must_make(conv2d(Op::kConvTranspose, 1, 32, 16, 64, 3, 2, 1, 1, 1, 1))});
  out.push_back({"P1_resnet50_maxpool", must_make(conv2d(Op::kMaxPool, 1, 64, 64, 112, 3, 2, 1))});
  ProblemDesc avg = conv2d(Op::kAvgPool, 1, 192, 192, 35, 3, 1, 1);
  avg.count_include_pad = true;
  out.push_back({"P3_inception_avgpool", must_make(avg)});
  ProblemDesc w1; // wav2vec2 feature conv0: 1-D, k=10, s=5
  w1.rank = 1;
  w1.c = 1;
  w1.k = 512;
  w1.input[0] = 16000;
  w1.kernel[0] = 10;
  w1.stride[0] = 5;
  out.push_back({"W1_wav2vec2_k10_s5", must_make(w1)});
  ProblemDesc c3d; // C3D conv3a at reduced channels: 3-D indexing
  c3d.rank = 3;
  c3d.c = 16;
  c3d.k = 32;
  c3d.input = {8, 28, 28};
  c3d.kernel = {3, 3, 3};
  c3d.pad_lo = {1, 1, 1};
  c3d.pad_hi = {1, 1, 1};
  out.push_back({"C2_c3d_3x3x3_reduced", must_make(c3d)});
  return out;
}

std::vector<Case> cases() {
  std::vector<NamedProblem> problems = smoke_problems();
  for (NamedProblem& p : edge_problems())
    problems.push_back(std::move(p));
  for (NamedProblem& p : real_layers())
    problems.push_back(std::move(p));
  std::vector<Case> out;
  for (const Algorithm& a : algorithm_table()) {
    if (a.device != Device::kCuda)
      continue;
    for (const NamedProblem& p : problems)
      if ((a.ops & op_bit(p.problem.op())) && a.supports(p.problem).is_ok())
        out.push_back({&a, p});
  }
  return out;
}

// Device buffer that frees itself.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) {
    if (bytes > 0 && cudaMalloc(&p, bytes) != cudaSuccess)
      p = nullptr;
  }
  ~DeviceBuffer() {
    if (p != nullptr)
      (void)cudaFree(p);
  }
  float* f() const { return static_cast<float*>(p); }
};

float* upload(DeviceBuffer& b, const std::vector<float>& v) {
  if (!v.empty()) {
    EXPECT_EQ(cudaMemcpy(b.p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  return v.empty() ? nullptr : b.f();
}

// cuDNN's error for a problem, computed once and shared by every algorithm (same seed -> same inputs).
struct CudnnError {
  bool available = false;
  std::string reason;
  std::string algorithm;
  double max_rel = 0;
};

class GpuVsCudnn : public ::testing::TestWithParam<Case> {};

TEST_P(GpuVsCudnn, ErrorAtMostTwiceCudnns) {
  if (cuda_device_count() == 0)
    GTEST_SKIP() << "no CUDA device: " << cuda_unavailable_reason();
  const Case& c = GetParam();
  const ConvProblem& p = c.problem.problem;
  if (p.y_elements() == 0)
    GTEST_SKIP() << "empty output (N = 0): nothing to compare";
  // The seed is the problem's, so cuDNN's cached error belongs to the very same inputs.
  const uint64_t seed = std::hash<std::string>{}(p.name()) ^ 0x5eedull;
  const Inputs in = random_inputs(p, seed, /*with_bias=*/true);
  const bool pool = is_pool(p.op());
  const float* wh = pool ? nullptr : in.w.data();
  const float* bh = pool || in.bias.empty() ? nullptr : in.bias.data();
  const std::vector<double> want = reference(p, in.x.data(), wh, bh);
  const std::vector<double> mag = reference_magnitude(p, in.x.data(), wh, bh);

  DeviceBuffer dx(in.x.size() * sizeof(float)), dw(pool ? 0 : in.w.size() * sizeof(float));
  DeviceBuffer db(pool ? 0 : in.bias.size() * sizeof(float)), dy(static_cast<size_t>(p.y_elements()) * sizeof(float));
  ASSERT_NE(dx.p, nullptr);
  ASSERT_NE(dy.p, nullptr);
  const float* x = upload(dx, in.x);
  const float* w = pool ? nullptr : upload(dw, in.w);
  const float* bias = pool ? nullptr : upload(db, in.bias);
  const size_t ybytes = static_cast<size_t>(p.y_elements()) * sizeof(float);

  // Ours, into a NaN-poisoned output (0xFF bytes are a NaN).
  Result<Plan> plan = Plan::create(p, Device::kCuda, c.algorithm->name);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  DeviceBuffer ws(plan->workspace_bytes());
  ASSERT_EQ(cudaMemset(dy.p, 0xFF, ybytes), cudaSuccess);
  Status s = plan->run(x, w, bias, dy.f(), ws.p, plan->workspace_bytes(), nullptr);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> ours(static_cast<size_t>(p.y_elements()));
  ASSERT_EQ(cudaMemcpy(ours.data(), dy.p, ybytes, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_TRUE(close_match(p, ours, want, mag)) << "seed " << seed;
  const ErrorStats our_err = error_stats(ours, want, mag);

  static std::map<std::string, CudnnError> cache;
  auto it = cache.find(p.name());
  if (it == cache.end()) {
    CudnnError e;
    Result<std::unique_ptr<cudnn::Runner>> runner = cudnn::Runner::create(p);
    if (!runner) {
      e.reason = runner.status().to_string();
    } else {
      DeviceBuffer dyc(ybytes);
      Status f = (*runner)->find(x, w, dyc.f());
      if (f) {
        ASSERT_EQ(cudaMemset(dyc.p, 0xFF, ybytes), cudaSuccess);
        f = (*runner)->run(x, w, bias, dyc.f());
      }
      if (f && cudaDeviceSynchronize() != cudaSuccess)
        f = device_error("cuDNN run failed");
      if (!f) {
        e.reason = f.to_string();
      } else {
        std::vector<float> theirs(ours.size());
        EXPECT_EQ(cudaMemcpy(theirs.data(), dyc.p, ybytes, cudaMemcpyDeviceToHost), cudaSuccess);
        // cuDNN must itself be right, or the comparison means nothing (Winograd/FFT: looser bound).
        EXPECT_TRUE(close_match(p, theirs, want, mag, 64.0)) << "cuDNN " << (*runner)->algorithm();
        e.available = true;
        e.algorithm = (*runner)->algorithm();
        e.max_rel = error_stats(theirs, want, mag).max_rel;
      }
    }
    it = cache.emplace(p.name(), e).first;
  }
  const CudnnError& ce = it->second;
  if (!ce.available) {
    // Inexpressible in cuDNN's legacy API: the reference check above is the whole test. Anything
    // else (a cuDNN failure on a problem it can express) is a real failure.
    EXPECT_NE(ce.reason.find("kNotSupported"), std::string::npos) << ce.reason;
    return;
  }
  const double slack = 6e-8; // ~ one float32 ulp relative to the magnitude
  EXPECT_LE(our_err.max_rel, 2 * ce.max_rel + slack)
      << c.algorithm->name << " max rel err " << our_err.max_rel << " vs cuDNN " << ce.algorithm << " " << ce.max_rel
      << " (seed " << seed << ")";
}

std::string case_name(const ::testing::TestParamInfo<Case>& param_info) {
  return param_name(std::string(param_info.param.algorithm->name) + "_" + param_info.param.problem.name + "_" +
                    std::to_string(param_info.index));
}

INSTANTIATE_TEST_SUITE_P(Table, GpuVsCudnn, ::testing::ValuesIn(cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GpuVsCudnn);

TEST(CudnnRunner, VersionAndUnsupportedProblems) {
  EXPECT_EQ(cudnn::version().rfind("9.", 0), 0u) << cudnn::version();
  ProblemDesc asym = conv2d(Op::kConv, 1, 2, 2, 8, 3, 1, 1);
  asym.pad_hi = {0, 1, 0};
  Result<std::unique_ptr<cudnn::Runner>> r = cudnn::Runner::create(must_make(asym));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotSupported) << r.status().to_string();
}

#else

TEST(GpuVsCudnn, NeedsCudaAndCudnn) {
  GTEST_SKIP() << "built without CUDA or without cuDNN";
}

#endif

} // namespace
} // namespace convarith::test
