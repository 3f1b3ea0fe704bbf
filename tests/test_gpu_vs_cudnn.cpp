// tests/test_gpu_vs_cudnn.cpp — every CUDA row of the algorithm table against cuDNN on a real GPU.
//
// Per (algorithm x problem), over the smoke and edge lists and a few real layers: fresh random
// floats (seed printed on failure), our output (NaN-poisoned first) and cuDNN's (FMA math, TF32
// off; backward-data for transposed conv; cudnnPoolingForward for pooling) are both compared with
// the fp64 reference. The rule (DESIGN.md §5, tests/support at_most_twice_peer_error): our error
// relative to sum |x*w| is at most twice cuDNN's, plus four half-ulps of slack.
//
// The comparison cannot pass empty: only cuDNN's descriptor step may refuse a problem ("cannot
// express": asymmetric padding, ceil_mode, dilated pooling, output padding >= stride, N = 0), and
// such a problem is checked against the reference alone. Any later cuDNN failure (no handle, a
// sub-library that does not load, no FMA algorithm surviving Find's filter, an execution error, a
// wrong cuDNN result) fails the case. EveryRealLayerIsComparedWithCudnn asserts that every real
// layer was actually compared with cuDNN. Without a device every test is skipped (failed under
// CONVARITH_REQUIRE_GPU); built without CUDA or cuDNN the file is one such test, plus the CPU check
// that the descriptor step accepts every real layer when cuDNN's headers were found.
// GpuVsCudnnFormats runs the real layers as f16 NHWC with bias + relu (and a residual, in place too;
// bf16 once) through cuDNN and every CUDA row that declares the format, against the fp64 reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "support/support.hpp"

#if defined(CONVARITH_HAVE_CUDNN_HEADERS)
#include "cudnn/cudnn_dims.hpp"
#endif
#if defined(CONVARITH_HAVE_CUDNN) && defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include "cudnn/cudnn_runner.hpp"
#include "numeric.cuh"
#define CONVARITH_GPU_VS_CUDNN 1
#endif

namespace convarith::test {
namespace {

#if defined(CONVARITH_HAVE_CUDNN_HEADERS) || defined(CONVARITH_GPU_VS_CUDNN)
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

// The inference formats: real layers as f16 NHWC (KRSC filters) with bias + relu (cuDNN's fused
// call for conv, conv + AddTensor + ActivationForward for transposed), an in-place residual, and bf16.
// Pooling layers have no epilogue (f16 NHWC only).
struct FormatLayer {
  NamedProblem problem;
  bool z_in_place = false; // the residual is y itself
};

std::vector<FormatLayer> format_layers() {
  std::vector<FormatLayer> out;
  const auto with = [](const ConvProblem& base, DataType t, float beta) {
    ProblemDesc d = base.resolved();
    d.dtype = t;
    d.layout = Layout::kNHWC;
    if (!is_pool(d.op)) {
      d.w_layout = Layout::kNHWC;
      d.epilogue.activation = Activation::kRelu;
      d.epilogue.beta = beta;
    }
    return must_make(d);
  };
  for (const NamedProblem& np : real_layers())
    out.push_back({{np.name + (is_pool(np.problem.op()) ? "_f16_nhwc" : "_f16_nhwc_bias_relu"),
                    with(np.problem, DataType::kF16, 0.0f)}});
  const ConvProblem r17 = real_layers().front().problem; // R17_resnet50_3x3_256
  out.push_back({{"R17_f16_nhwc_bias_relu_residual", with(r17, DataType::kF16, 1.0f)}, false});
  out.push_back({{"R17_f16_nhwc_bias_relu_residual_in_place", with(r17, DataType::kF16, 1.0f)}, true});
  out.push_back({{"R17_bf16_nhwc_bias_relu", with(r17, DataType::kBF16, 0.0f)}});
  return out;
}

#endif

#if defined(CONVARITH_HAVE_CUDNN_HEADERS)
// The descriptor step is host-only: it runs here without a GPU, and the GPU test below may then
// require every real layer to be compared with cuDNN.
TEST(CudnnDescriptorStep, AcceptsEveryRealLayer) {
  const std::vector<NamedProblem> layers = real_layers();
  ASSERT_GT(layers.size(), 0u);
  for (const NamedProblem& np : layers) {
    Result<cudnn::Descriptors> d = cudnn::describe(np.problem);
    EXPECT_TRUE(d.is_ok()) << np.name << ": " << d.status().to_string();
  }
}

// Likewise for the f16 / bf16 NHWC layers with bias + relu (and a residual), so the GPU test may
// require each of them to be compared too.
TEST(CudnnDescriptorStep, AcceptsEveryFormatLayer) {
  const std::vector<FormatLayer> layers = format_layers();
  ASSERT_EQ(layers.size(), real_layers().size() + 3);
  for (const FormatLayer& fl : layers) {
    const ConvProblem& p = fl.problem.problem;
    EXPECT_EQ(p.layout(), Layout::kNHWC) << fl.problem.name;
    Result<cudnn::Descriptors> d = cudnn::describe(p);
    ASSERT_TRUE(d.is_ok()) << fl.problem.name << ": " << d.status().to_string();
    EXPECT_NE(d->dtype, CUDNN_DATA_FLOAT) << fl.problem.name;
    if (!is_pool(p.op())) {
      EXPECT_EQ(d->filter_format, CUDNN_TENSOR_NHWC) << fl.problem.name;
      EXPECT_EQ(d->act_mode, CUDNN_ACTIVATION_RELU) << fl.problem.name;
    }
  }
}
#endif

#if defined(CONVARITH_GPU_VS_CUDNN)

struct Case {
  const Algorithm* algorithm = nullptr;
  NamedProblem problem;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.algorithm->name << " on " << c.problem.name << " (" << c.problem.problem.name() << ")";
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
      // N = 0 has no output to compare (test_kernels_gpu runs it); keeping it would only add skips.
      if ((a.ops & op_bit(p.problem.op())) && a.supports(p.problem).is_ok() && p.problem.y_elements() > 0)
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

// One problem's inputs (seeded by the problem's name, so cuDNN's cached outcome belongs to the very
// same inputs), its fp64 reference and device copies.
struct Prepared {
  uint64_t seed = 0;
  Inputs in;
  std::vector<double> want, mag;
  std::unique_ptr<DeviceBuffer> dx, dw, db;
  std::string error; // a failed allocation or copy
  const float* x() const { return dx->f(); }
  const float* w() const { return dw ? dw->f() : nullptr; }
  const float* bias() const { return db ? db->f() : nullptr; }
};

std::unique_ptr<DeviceBuffer> upload(const std::vector<float>& v, std::string& error) {
  auto b = std::make_unique<DeviceBuffer>(v.size() * sizeof(float));
  if (b->p == nullptr) {
    error = "cudaMalloc of " + std::to_string(v.size() * sizeof(float)) + " bytes failed";
  } else if (const cudaError_t e = cudaMemcpy(b->p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice);
             e != cudaSuccess) {
    error = std::string("cudaMemcpy: ") + cudaGetErrorString(e);
  }
  return b;
}

Prepared prepare(const ConvProblem& p) {
  Prepared r;
  r.seed = std::hash<std::string>{}(p.name()) ^ 0x5eedull;
  r.in = random_inputs(p, r.seed, /*with_bias=*/true);
  const bool pool = is_pool(p.op());
  const float* wh = pool ? nullptr : r.in.w.data();
  const float* bh = pool || r.in.bias.empty() ? nullptr : r.in.bias.data();
  r.want = reference(p, r.in.x.data(), wh, bh);
  r.mag = reference_magnitude(p, r.in.x.data(), wh, bh);
  r.dx = upload(r.in.x, r.error);
  if (!pool) {
    r.dw = upload(r.in.w, r.error);
    if (!r.in.bias.empty())
      r.db = upload(r.in.bias, r.error);
  }
  return r;
}

// What cuDNN made of a problem, computed once per problem and shared by every algorithm.
struct CudnnOutcome {
  enum Kind { kCompared, kRefused, kFailed } kind = kFailed;
  std::string reason; // kRefused: the descriptor step's verdict; kFailed: what failed
  std::string algorithm;
  double max_rel = 0;
};

CudnnOutcome run_cudnn(const ConvProblem& p, const Prepared& in) {
  CudnnOutcome o;
  Result<std::unique_ptr<cudnn::Runner>> runner = cudnn::Runner::create(p);
  if (!runner) {
    // Runner::create says kNotSupported only for the descriptor step's refusal (cudnn_dims.hpp).
    o.kind = runner.status().code() == StatusCode::kNotSupported ? CudnnOutcome::kRefused : CudnnOutcome::kFailed;
    o.reason = runner.status().to_string();
    return o;
  }
  const size_t ybytes = static_cast<size_t>(p.y_elements()) * sizeof(float);
  DeviceBuffer dyc(ybytes);
  if (dyc.p == nullptr) {
    o.reason = "cudaMalloc(y) for cuDNN failed";
    return o;
  }
  Status f = (*runner)->find(in.x(), in.w(), dyc.f());
  if (f && cudaMemset(dyc.p, 0xFF, ybytes) != cudaSuccess)
    f = device_error("cudaMemset(y) failed");
  if (f)
    f = (*runner)->run(in.x(), in.w(), in.bias(), dyc.f());
  if (f) {
    const cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess)
      f = device_error(std::string("cuDNN run, at cudaDeviceSynchronize: ") + cudaGetErrorString(e));
  }
  std::vector<float> theirs(static_cast<size_t>(p.y_elements()));
  if (f && cudaMemcpy(theirs.data(), dyc.p, ybytes, cudaMemcpyDeviceToHost) != cudaSuccess)
    f = device_error("copying cuDNN's y back failed");
  o.algorithm = (*runner)->algorithm();
  if (!f) {
    o.reason = f.to_string();
    return o;
  }
  // cuDNN must itself be right, or the comparison means nothing (Winograd/FFT: looser bound).
  const ::testing::AssertionResult right = close_match(p, theirs, in.want, in.mag, 64.0);
  if (!right) {
    o.reason = "cuDNN " + o.algorithm + "'s own result is wrong: " + right.message();
    return o;
  }
  o.kind = CudnnOutcome::kCompared;
  o.max_rel = error_stats(theirs, in.want, in.mag).max_rel;
  return o;
}

const CudnnOutcome& cudnn_outcome(const ConvProblem& p, const Prepared& in) {
  static std::map<std::string, CudnnOutcome> cache;
  auto it = cache.find(p.name());
  if (it == cache.end())
    it = cache.emplace(p.name(), run_cudnn(p, in)).first;
  return it->second;
}

class GpuVsCudnn : public ::testing::TestWithParam<Case> {};

TEST_P(GpuVsCudnn, ErrorAtMostTwiceCudnns) {
  CONVARITH_SKIP_WITHOUT_GPU();
  const Case& c = GetParam();
  const ConvProblem& p = c.problem.problem;
  const Prepared in = prepare(p);
  ASSERT_TRUE(in.error.empty()) << in.error;
  const size_t ybytes = static_cast<size_t>(p.y_elements()) * sizeof(float);

  // Ours, into a NaN-poisoned output (0xFF bytes are a NaN).
  Result<Plan> plan = Plan::create(p, Device::kCuda, c.algorithm->name);
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  DeviceBuffer ws(plan->workspace_bytes()), dy(ybytes);
  ASSERT_NE(dy.p, nullptr);
  ASSERT_EQ(cudaMemset(dy.p, 0xFF, ybytes), cudaSuccess);
  Status s = plan->run(in.x(), in.w(), in.bias(), dy.f(), ws.p, plan->workspace_bytes(), nullptr);
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> ours(static_cast<size_t>(p.y_elements()));
  ASSERT_EQ(cudaMemcpy(ours.data(), dy.p, ybytes, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_TRUE(close_match(p, ours, in.want, in.mag)) << "seed " << in.seed;

  const CudnnOutcome& ce = cudnn_outcome(p, in);
  switch (ce.kind) {
  case CudnnOutcome::kRefused:
    // cuDNN's descriptor step cannot express the problem: the reference check above is the whole test.
    return;
  case CudnnOutcome::kFailed:
    ADD_FAILURE() << "cuDNN failed on a problem its descriptor step accepted: " << ce.reason;
    return;
  case CudnnOutcome::kCompared:
    EXPECT_TRUE(at_most_twice_peer_error(ours, in.want, in.mag, ce.max_rel))
        << c.algorithm->name << " vs cuDNN " << ce.algorithm << " (max rel err " << ce.max_rel << "), seed " << in.seed;
    return;
  }
}

std::string case_name(const ::testing::TestParamInfo<Case>& param_info) {
  return param_name(std::string(param_info.param.algorithm->name) + "_" + param_info.param.problem.name + "_" +
                    std::to_string(param_info.index));
}

INSTANTIATE_TEST_SUITE_P(Table, GpuVsCudnn, ::testing::ValuesIn(cases()), case_name);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(GpuVsCudnn);

// The comparison cannot pass empty: every real layer (all of which the descriptor step accepts,
// see CudnnDescriptorStep.AcceptsEveryRealLayer) must have been run by cuDNN, checked against the
// reference and so compared. Self-contained (uses the cache when the cases ran in this process).
TEST(GpuVsCudnnCoverage, EveryRealLayerIsComparedWithCudnn) {
  CONVARITH_SKIP_WITHOUT_GPU();
  const std::vector<NamedProblem> layers = real_layers();
  size_t compared = 0, refused = 0;
  std::string why;
  for (const NamedProblem& np : layers) {
    const Prepared in = prepare(np.problem);
    ASSERT_TRUE(in.error.empty()) << np.name << ": " << in.error;
    const CudnnOutcome& o = cudnn_outcome(np.problem, in);
    if (o.kind == CudnnOutcome::kCompared)
      ++compared;
    else
      why += "\n  " + np.name + (o.kind == CudnnOutcome::kRefused ? " refused: " : " failed: ") + o.reason;
    refused += o.kind == CudnnOutcome::kRefused ? 1 : 0;
  }
  EXPECT_EQ(refused, 0u) << why;
  EXPECT_EQ(compared, layers.size()) << "real layers compared with cuDNN: " << compared << " of " << layers.size()
                                     << why;
  EXPECT_GT(compared, 0u);
}

// ---- f16 / bf16 NHWC with the fused epilogue ------------------------------------------------------
// Inputs uniform in [-1, 1] rounded to the dtype; cuDNN (find, then run into a NaN-poisoned y) and
// every CUDA row that declares the format are checked against the fp64 reference. cuDNN's bound is
// oracle::accept_bound at factor 4 plus k * u_out * magnitude for the roundings of y to its dtype
// that happen before the last step: k = 1 on the fused path (inside the kernel), 3 on the unfused one
// (after the convolution, the bias and the activation). Ours: oracle::accept at factor 2.
struct FormatBuffers {
  std::vector<unsigned char> x, w, bias, z;
  std::vector<double> want, mag;
};

std::vector<unsigned char> random_bytes(const TensorDesc& t, std::mt19937_64& rng) {
  std::vector<unsigned char> b;
  if (t.rank == 0)
    return b;
  b.resize(static_cast<size_t>(t.bytes()));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.elements; ++i) {
    const float v = u(rng);
    const size_t at = static_cast<size_t>(i * dtype_bytes(t.dtype));
    if (t.dtype == DataType::kF32) {
      std::memcpy(&b[at], &v, 4);
    } else {
      const uint16_t h = t.dtype == DataType::kF16 ? kernels::float_to_f16_bits(v) : kernels::float_to_bf16_bits(v);
      std::memcpy(&b[at], &h, 2);
    }
  }
  return b;
}

struct DeviceBytes {
  std::unique_ptr<DeviceBuffer> buf;
  std::string error;
  void* get() const { return buf ? buf->p : nullptr; }
};

DeviceBytes upload_bytes(const std::vector<unsigned char>& v) {
  DeviceBytes d;
  if (v.empty())
    return d;
  d.buf = std::make_unique<DeviceBuffer>(v.size());
  if (d.buf->p == nullptr)
    d.error = "cudaMalloc of " + std::to_string(v.size()) + " bytes failed";
  else if (cudaMemcpy(d.buf->p, v.data(), v.size(), cudaMemcpyHostToDevice) != cudaSuccess)
    d.error = "cudaMemcpy to the device failed";
  return d;
}

TEST(GpuVsCudnnFormats, F16NhwcBiasReluMatchReference) {
  CONVARITH_SKIP_WITHOUT_GPU();
  size_t compared = 0, ours_compared = 0;
  for (const FormatLayer& fl : format_layers()) {
    const ConvProblem& p = fl.problem.problem;
    SCOPED_TRACE(fl.problem.name + " (" + p.name() + ")");
    const uint64_t seed = std::hash<std::string>{}(fl.problem.name) ^ 0xf16ull;
    std::mt19937_64 rng(seed);
    FormatBuffers in;
    in.x = random_bytes(p.tensor(TensorId::kX), rng);
    in.w = random_bytes(p.tensor(TensorId::kW), rng);
    in.bias = random_bytes(p.tensor(TensorId::kBias), rng);
    in.z = random_bytes(p.tensor(TensorId::kZ), rng);
    oracle::Tensors rt;
    rt.x = in.x.data();
    rt.w = in.w.empty() ? nullptr : in.w.data();
    rt.bias = in.bias.empty() ? nullptr : in.bias.data();
    rt.z = in.z.empty() ? nullptr : in.z.data();
    in.want = oracle::reference(p, rt, 0);
    in.mag = oracle::reference_magnitude(p, rt, 0);
    const DeviceBytes dx = upload_bytes(in.x), dw = upload_bytes(in.w), db = upload_bytes(in.bias),
                      dz = upload_bytes(in.z);
    ASSERT_TRUE(dx.error.empty() && dw.error.empty() && db.error.empty() && dz.error.empty());
    const size_t ybytes = static_cast<size_t>(p.tensor(TensorId::kY).bytes());
    const std::vector<unsigned char> poison_y(ybytes, 0xFF); // NaN in f16 / bf16 / f32
    // In place: y starts as z; otherwise as NaN.
    const std::vector<unsigned char>& y0 = fl.z_in_place ? in.z : poison_y;

    // cuDNN.
    Result<std::unique_ptr<cudnn::Runner>> runner = cudnn::Runner::create(p);
    ASSERT_TRUE(runner.is_ok()) << runner.status().to_string(); // the descriptor step accepts every layer
    DeviceBuffer scratch(ybytes), dy(ybytes);
    ASSERT_TRUE(scratch.p != nullptr && dy.p != nullptr);
    Tensors ft;
    ft.x = dx.get(), ft.w = dw.get(), ft.y = scratch.p;
    ASSERT_TRUE((*runner)->find(ft).is_ok());
    ASSERT_EQ(cudaMemcpy(dy.p, y0.data(), ybytes, cudaMemcpyHostToDevice), cudaSuccess);
    Tensors t;
    t.x = dx.get(), t.w = dw.get(), t.bias = db.get(), t.y = dy.p;
    t.z = fl.z_in_place ? dy.p : dz.get();
    const Status s = (*runner)->run(t);
    ASSERT_TRUE(s.is_ok()) << s.to_string();
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<unsigned char> theirs(ybytes);
    ASSERT_EQ(cudaMemcpy(theirs.data(), dy.p, ybytes, cudaMemcpyDeviceToHost), cudaSuccess);
    const std::vector<double> got = oracle::to_double(p, TensorId::kY, theirs.data());
    const double u_out = dtype_unit_roundoff(p.dtype(TensorId::kY));
    const double k = (*runner)->fused() ? 1.0 : 3.0;
    int64_t bad = 0, first = -1;
    for (size_t e = 0; e < got.size(); ++e) {
      const bool both_nan = std::isnan(got[e]) && std::isnan(in.want[e]);
      const double bound = oracle::accept_bound(p, in.want[e], in.mag[e], 4.0) + k * u_out * in.mag[e];
      if (!both_nan && !(std::fabs(got[e] - in.want[e]) <= bound)) {
        if (first < 0)
          first = static_cast<int64_t>(e);
        ++bad;
      }
    }
    EXPECT_EQ(bad, 0) << "cuDNN " << (*runner)->algorithm() << " [" << (*runner)->math() << ", "
                      << (*runner)->epilogue_path() << "]: first bad element " << first << " got "
                      << (first >= 0 ? got[static_cast<size_t>(first)] : 0.0) << " want "
                      << (first >= 0 ? in.want[static_cast<size_t>(first)] : 0.0) << ", seed " << seed;
    compared += bad == 0 ? 1 : 0;

    // Every CUDA row that declares this format.
    for (const Algorithm& a : algorithm_table()) {
      if (a.device != Device::kCuda || !(a.ops & op_bit(p.op())) || !a.supports(p).is_ok())
        continue;
      Result<Plan> plan = Plan::create(p, Device::kCuda, a.name);
      ASSERT_TRUE(plan.is_ok()) << a.name << ": " << plan.status().to_string();
      DeviceBuffer ws(plan->workspace_bytes());
      ASSERT_EQ(cudaMemcpy(dy.p, y0.data(), ybytes, cudaMemcpyHostToDevice), cudaSuccess);
      const Status r = plan->run(t, ws.p, plan->workspace_bytes(), nullptr);
      ASSERT_TRUE(r.is_ok()) << a.name << ": " << r.to_string();
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      std::vector<unsigned char> ours(ybytes);
      ASSERT_EQ(cudaMemcpy(ours.data(), dy.p, ybytes, cudaMemcpyDeviceToHost), cudaSuccess);
      const oracle::Verdict v = oracle::accept(p, oracle::to_double(p, TensorId::kY, ours.data()), in.want, in.mag);
      EXPECT_TRUE(v.pass) << a.name << ": " << v.bad << " bad, first " << v.first_bad << ", worst/bound "
                          << v.worst_ratio << ", seed " << seed;
      ++ours_compared;
    }
  }
  // Every format layer was compared with cuDNN (the descriptor step accepts them all).
  EXPECT_EQ(compared, format_layers().size());
  std::cout << "f16/bf16 NHWC layers: cuDNN right on " << compared << " of " << format_layers().size()
            << "; CUDA rows compared " << ours_compared << " times\n";
}

TEST(CudnnRunner, VersionAndUnsupportedProblems) {
  EXPECT_EQ(cudnn::version().rfind("9.", 0), 0u) << cudnn::version();
  ProblemDesc asym = conv2d(Op::kConv, 1, 2, 2, 8, 3, 1, 1);
  asym.pad_hi = {0, 1, 0};
  Result<std::unique_ptr<cudnn::Runner>> r = cudnn::Runner::create(must_make(asym));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotSupported) << r.status().to_string();
}

#else

// Not a pass: under CONVARITH_REQUIRE_GPU a build that cannot compare with cuDNN fails here.
TEST(GpuVsCudnn, NeedsCudaAndCudnn) {
  CONVARITH_GPU_SKIP("built without CUDA or without cuDNN (cuDNN not found at configure time)");
}

#endif

} // namespace
} // namespace convarith::test
