// host/cudnn/cudnn_runner.cpp — the cuDNN oracle and peer (see cudnn_runner.hpp).
#include "cudnn/cudnn_runner.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>

#include "cudnn/cudnn_dims.hpp"

namespace convarith::cudnn {
namespace {

Status from_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess)
    return Status::ok();
  return device_error(std::string(what) + ": " + cudaGetErrorString(e));
}

const char* fwd_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
  case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM:
    return "IMPLICIT_GEMM";
  case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM:
    return "IMPLICIT_PRECOMP_GEMM";
  case CUDNN_CONVOLUTION_FWD_ALGO_GEMM:
    return "GEMM";
  case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT:
    return "DIRECT";
  case CUDNN_CONVOLUTION_FWD_ALGO_FFT:
    return "FFT";
  case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING:
    return "FFT_TILING";
  case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD:
    return "WINOGRAD";
  case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED:
    return "WINOGRAD_NONFUSED";
  default:
    return "FWD_UNKNOWN";
  }
}

const char* bwd_name(cudnnConvolutionBwdDataAlgo_t a) {
  switch (a) {
  case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0:
    return "BWD_DATA_ALGO_0";
  case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1:
    return "BWD_DATA_ALGO_1";
  case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT:
    return "BWD_DATA_FFT";
  case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING:
    return "BWD_DATA_FFT_TILING";
  case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD:
    return "BWD_DATA_WINOGRAD";
  case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED:
    return "BWD_DATA_WINOGRAD_NONFUSED";
  default:
    return "BWD_DATA_UNKNOWN";
  }
}

// Whether a result of this math may stand for the problem: f32 only FMA (no TF32); f16 / bf16 any
// (their products are exact in fp32 and every legacy configuration accumulates in fp32).
bool math_allowed(cudnnDataType_t dtype, cudnnMathType_t math) {
  return dtype != CUDNN_DATA_FLOAT || math == CUDNN_FMA_MATH;
}

// " NAME (why)" for an algorithm Find returned but find() drops.
std::string rejection(const char* name, cudnnStatus_t status, cudnnMathType_t math, size_t memory, size_t cap) {
  std::string why;
  if (status != CUDNN_STATUS_SUCCESS)
    why = cudnnGetErrorString(status);
  else if (math != CUDNN_FMA_MATH)
    why = std::string(math_name(math)) + " math on f32 data (FMA only)";
  else
    why = "needs " + std::to_string(memory) + " bytes of workspace, cap " + std::to_string(cap);
  return std::string(" ") + name + " (" + why + ");";
}

const char* activation_label(cudnnActivationMode_t m) {
  switch (m) {
  case CUDNN_ACTIVATION_SIGMOID:
    return "SIGMOID";
  case CUDNN_ACTIVATION_RELU:
    return "RELU";
  case CUDNN_ACTIVATION_TANH:
    return "TANH";
  case CUDNN_ACTIVATION_CLIPPED_RELU:
    return "CLIPPED_RELU";
  case CUDNN_ACTIVATION_ELU:
    return "ELU";
  case CUDNN_ACTIVATION_IDENTITY:
    return "IDENTITY";
  case CUDNN_ACTIVATION_SWISH:
    return "SWISH";
  default:
    return "ACTIVATION_UNKNOWN";
  }
}

// One handle for the process (cuDNN handles are expensive: each loads kernels). Runners set their
// stream on it before every call.
Result<cudnnHandle_t> shared_handle() {
  static std::mutex mutex;
  static cudnnHandle_t handle = nullptr;
  static Status failure;
  std::lock_guard<std::mutex> lock(mutex);
  if (handle != nullptr)
    return handle;
  if (!failure.is_ok())
    return failure;
  disable_tf32();
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    failure = device_error("cuDNN: no CUDA device");
    return failure;
  }
  Status s = from_cudnn(cudnnCreate(&handle), "cudnnCreate");
  if (!s) {
    handle = nullptr;
    failure = s;
    return failure;
  }
  return handle;
}

} // namespace

std::string version() {
  const size_t v = cudnnGetVersion();
  std::string s = std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) + "." + std::to_string(v % 100);
  if (v != static_cast<size_t>(CUDNN_VERSION))
    s += " (headers " + std::to_string(CUDNN_MAJOR) + "." + std::to_string(CUDNN_MINOR) + "." +
         std::to_string(CUDNN_PATCHLEVEL) + ")";
  return s;
}

void disable_tf32() {
  static std::once_flag once;
  std::call_once(once, [] { setenv("NVIDIA_TF32_OVERRIDE", "0", 1); });
}

struct Runner::State {
  ConvProblem problem;
  Descriptors d;
  cudnnHandle_t handle = nullptr;
  cudaStream_t stream = nullptr;
  size_t cap = 0;
  bool chosen = false;
  bool residual = false;
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd{};
  void* workspace = nullptr;
  void* zero_bias = nullptr; // the fused call's bias when the caller passes none
  ~State() {
    if (workspace != nullptr)
      (void)cudaFree(workspace);
    if (zero_bias != nullptr)
      (void)cudaFree(zero_bias);
  }
};

Runner::Runner() : state_(std::make_unique<State>()) {}
Runner::~Runner() = default;

Result<std::unique_ptr<Runner>> Runner::create(const ConvProblem& problem, void* stream, size_t workspace_cap) {
  Result<Descriptors> d = describe(problem);
  if (!d)
    return d.status();
  if (!is_pool(problem.op()) && problem.op() == Op::kConv) {
    std::vector<int> want = d->y_dims;
    if (d->derived_dims != want)
      return internal_error("cuDNN derives a different output shape than convarith for " + problem.name() +
                            " (a bug in one of the two arithmetics)");
  }
  Result<cudnnHandle_t> h = shared_handle();
  if (!h)
    return h.status();
  std::unique_ptr<Runner> r(new Runner());
  State& s = *r->state_;
  s.problem = problem;
  s.d = std::move(d).value();
  s.handle = *h;
  s.stream = static_cast<cudaStream_t>(stream);
  s.cap = workspace_cap;
  s.residual = problem.epilogue().has_residual();
  r->math_ = math_name(s.d.math);
  if (is_pool(problem.op())) {
    s.chosen = true;
    r->algorithm_ = problem.op() == Op::kMaxPool  ? "POOLING_MAX_DETERMINISTIC"
                    : problem.count_include_pad() ? "POOLING_AVERAGE_COUNT_INCLUDE_PADDING"
                                                  : "POOLING_AVERAGE_COUNT_EXCLUDE_PADDING";
    r->epilogue_path_ = "none (pooling)";
  }
  return r;
}

Status Runner::adopt() {
  State& s = *state_;
  // The fused call for relu on IMPLICIT_PRECOMP_GEMM when that algorithm is allowed; else the fastest.
  size_t pick = 0;
  fused_ = false;
  if (s.problem.op() == Op::kConv && s.d.act_mode == CUDNN_ACTIVATION_RELU) {
    for (size_t i = 0; i < candidates_.size(); ++i)
      if (candidates_[i].id == static_cast<int>(CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM)) {
        pick = i;
        fused_ = true;
        break;
      }
  }
  const AlgoTiming& c = candidates_[pick];
  if (s.problem.op() == Op::kConv)
    s.fwd = static_cast<cudnnConvolutionFwdAlgo_t>(c.id);
  else
    s.bwd = static_cast<cudnnConvolutionBwdDataAlgo_t>(c.id);
  algorithm_ = c.name;
  math_ = c.math;
  workspace_bytes_ = c.workspace_bytes;
  const std::string conv = s.problem.op() == Op::kConv ? "cudnnConvolutionForward" : "cudnnConvolutionBackwardData";
  if (fused_) {
    epilogue_path_ = "fused cudnnConvolutionBiasActivationForward(RELU)";
  } else {
    epilogue_path_ = conv + "(alpha, beta)";
    epilogue_path_ += " + cudnnAddTensor (with a bias)";
    if (s.d.act_mode != CUDNN_ACTIVATION_IDENTITY)
      epilogue_path_ += std::string(" + cudnnActivationForward(") + activation_label(s.d.act_mode) + ")";
  }
  if (s.workspace != nullptr)
    (void)cudaFree(s.workspace);
  s.workspace = nullptr;
  if (workspace_bytes_ > 0)
    CONVARITH_RETURN_IF_ERROR(from_cuda(cudaMalloc(&s.workspace, workspace_bytes_), "cudaMalloc(cuDNN workspace)"));
  if (fused_ && s.zero_bias == nullptr) {
    const size_t bytes = static_cast<size_t>(s.problem.tensor(TensorId::kBias).bytes());
    CONVARITH_RETURN_IF_ERROR(from_cuda(cudaMalloc(&s.zero_bias, bytes), "cudaMalloc(cuDNN zero bias)"));
    CONVARITH_RETURN_IF_ERROR(from_cuda(cudaMemset(s.zero_bias, 0, bytes), "cudaMemset(cuDNN zero bias)"));
  }
  s.chosen = true;
  return Status::ok();
}

Status Runner::find(const float* x, const float* w, float* y) {
  Tensors t;
  t.x = x;
  t.w = w;
  t.y = y;
  return find(t);
}

Status Runner::find(const Tensors& t) {
  State& s = *state_;
  if (is_pool(s.problem.op()))
    return Status::ok();
  if (t.x == nullptr || t.w == nullptr || t.y == nullptr)
    return invalid_argument("cuDNN Runner::find: x, w and y must not be null");
  const auto t0 = std::chrono::steady_clock::now();
  CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnSetStream(s.handle, s.stream), "cudnnSetStream"));
  // Find's workspace: the cap, halved until it fits (a smaller card still gets an answer).
  void* ws = nullptr;
  size_t ws_bytes = s.cap;
  while (ws_bytes > 0 && cudaMalloc(&ws, ws_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    ws_bytes /= 2;
  }
  candidates_.clear();
  std::string rejected; // why each algorithm cuDNN returned was dropped
  Status status = Status::ok();
  if (s.problem.op() == Op::kConv) {
    int max_count = 0;
    status = from_cudnn(cudnnGetConvolutionForwardAlgorithmMaxCount(s.handle, &max_count), "MaxCount");
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
    int returned = 0;
    if (status)
      status = from_cudnn(cudnnFindConvolutionForwardAlgorithmEx(s.handle, s.d.x, t.x, s.d.w, t.w, s.d.conv, s.d.y, t.y,
                                                                 max_count, &returned, perf.data(), ws, ws_bytes),
                          "cudnnFindConvolutionForwardAlgorithmEx");
    for (int i = 0; status && i < returned; ++i) {
      const auto& p = perf[static_cast<size_t>(i)];
      if (p.status != CUDNN_STATUS_SUCCESS || !math_allowed(s.d.dtype, p.mathType) || p.memory > ws_bytes) {
        rejected += rejection(fwd_name(p.algo), p.status, p.mathType, p.memory, ws_bytes);
        continue;
      }
      candidates_.push_back({fwd_name(p.algo), static_cast<int>(p.algo), p.time, p.memory, math_name(p.mathType)});
    }
  } else {
    int max_count = 0;
    status = from_cudnn(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(s.handle, &max_count), "MaxCount");
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
    int returned = 0;
    // Backward data: cuDNN's dy is our x, its dx our y, its filter our w.
    if (status)
      status =
          from_cudnn(cudnnFindConvolutionBackwardDataAlgorithmEx(s.handle, s.d.w, t.w, s.d.x, t.x, s.d.conv, s.d.y, t.y,
                                                                 max_count, &returned, perf.data(), ws, ws_bytes),
                     "cudnnFindConvolutionBackwardDataAlgorithmEx");
    for (int i = 0; status && i < returned; ++i) {
      const auto& p = perf[static_cast<size_t>(i)];
      if (p.status != CUDNN_STATUS_SUCCESS || !math_allowed(s.d.dtype, p.mathType) || p.memory > ws_bytes) {
        rejected += rejection(bwd_name(p.algo), p.status, p.mathType, p.memory, ws_bytes);
        continue;
      }
      candidates_.push_back({bwd_name(p.algo), static_cast<int>(p.algo), p.time, p.memory, math_name(p.mathType)});
    }
  }
  if (ws != nullptr)
    (void)cudaFree(ws);
  if (status)
    status = from_cuda(cudaStreamSynchronize(s.stream), "find");
  find_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CONVARITH_RETURN_IF_ERROR(status);
  // The descriptor step accepted the problem, so an empty list is a failure of cuDNN (or of this
  // box's cuDNN), never "cuDNN cannot express it": the comparison and the bench must not pass on it.
  if (candidates_.empty())
    return device_error("cuDNN: no allowed algorithm succeeded for " + s.problem.name() + " within " +
                        std::to_string(ws_bytes >> 20) +
                        " MiB of workspace:" + (rejected.empty() ? std::string(" Find returned none") : rejected));
  return adopt();
}

Status Runner::choose_heuristic() {
  State& s = *state_;
  if (is_pool(s.problem.op()))
    return Status::ok();
  candidates_.clear();
  if (s.problem.op() == Op::kConv) {
    int max_count = 0;
    CONVARITH_RETURN_IF_ERROR(
        from_cudnn(cudnnGetConvolutionForwardAlgorithmMaxCount(s.handle, &max_count), "MaxCount"));
    std::vector<cudnnConvolutionFwdAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
    int returned = 0;
    CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(s.handle, s.d.x, s.d.w, s.d.conv, s.d.y,
                                                                                max_count, &returned, perf.data()),
                                         "cudnnGetConvolutionForwardAlgorithm_v7"));
    for (int i = 0; i < returned; ++i) {
      const auto& p = perf[static_cast<size_t>(i)];
      if (p.status != CUDNN_STATUS_SUCCESS || !math_allowed(s.d.dtype, p.mathType) || p.memory > s.cap)
        continue;
      candidates_.push_back({fwd_name(p.algo), static_cast<int>(p.algo), -1.0f, p.memory, math_name(p.mathType)});
    }
  } else {
    int max_count = 0;
    CONVARITH_RETURN_IF_ERROR(
        from_cudnn(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(s.handle, &max_count), "MaxCount"));
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
    int returned = 0;
    CONVARITH_RETURN_IF_ERROR(
        from_cudnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(s.handle, s.d.w, s.d.x, s.d.conv, s.d.y, max_count,
                                                               &returned, perf.data()),
                   "cudnnGetConvolutionBackwardDataAlgorithm_v7"));
    for (int i = 0; i < returned; ++i) {
      const auto& p = perf[static_cast<size_t>(i)];
      if (p.status != CUDNN_STATUS_SUCCESS || !math_allowed(s.d.dtype, p.mathType) || p.memory > s.cap)
        continue;
      candidates_.push_back({bwd_name(p.algo), static_cast<int>(p.algo), -1.0f, p.memory, math_name(p.mathType)});
    }
  }
  if (candidates_.empty())
    return device_error("cuDNN: the heuristic offers no allowed algorithm for " + s.problem.name() + " within " +
                        std::to_string(s.cap >> 20) + " MiB of workspace");
  return adopt();
}

Status Runner::run(const float* x, const float* w, const float* bias, float* y) {
  const ConvProblem& p = state_->problem;
  if (state_->d.dtype != CUDNN_DATA_FLOAT)
    return invalid_argument("cuDNN Runner::run(const float*...) takes f32 problems only; " + p.name() + " is " +
                            dtype_name(p.dtype(TensorId::kY)) + ": use run(const Tensors&)");
  if (state_->residual)
    return invalid_argument("cuDNN Runner::run(const float*...) has no z; " + p.name() +
                            " has a residual: use run(const Tensors&)");
  Tensors t;
  t.x = x;
  t.w = w;
  t.bias = bias;
  t.y = y;
  return run(t);
}

Status Runner::run(const Tensors& t) {
  State& s = *state_;
  if (!s.chosen)
    return invalid_argument("cuDNN Runner::run before find() or choose_heuristic()");
  const bool pool = is_pool(s.problem.op());
  if (t.x == nullptr || t.y == nullptr || (!pool && t.w == nullptr) || (s.residual && t.z == nullptr))
    return invalid_argument("cuDNN Runner::run: x, y (w for conv ops, z with a residual) must not be null");
  CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnSetStream(s.handle, s.stream), "cudnnSetStream"));
  const float one = 1.0f, zero = 0.0f;
  if (pool)
    return from_cudnn(cudnnPoolingForward(s.handle, s.d.pool, &one, s.d.x, t.x, &zero, s.d.y, t.y),
                      "cudnnPoolingForward");
  const Epilogue& e = s.problem.epilogue();
  const float alpha = e.alpha, beta = s.residual ? e.beta : 0.0f;
  if (fused_) {
    // y = relu(alpha * conv(x) + beta * z + bias); z is y itself when there is no residual (alpha2 = 0).
    const void* z = s.residual ? t.z : t.y;
    const void* bias = t.bias != nullptr ? t.bias : s.zero_bias;
    return from_cudnn(cudnnConvolutionBiasActivationForward(s.handle, &alpha, s.d.x, t.x, s.d.w, t.w, s.d.conv, s.fwd,
                                                            s.workspace, workspace_bytes_, &beta, s.d.y, z, s.d.bias,
                                                            bias, s.d.act, s.d.y, t.y),
                      "cudnnConvolutionBiasActivationForward");
  }
  if (s.residual && t.z != t.y)
    CONVARITH_RETURN_IF_ERROR(
        from_cuda(cudaMemcpyAsync(t.y, t.z, static_cast<size_t>(s.problem.tensor(TensorId::kY).bytes()),
                                  cudaMemcpyDeviceToDevice, s.stream),
                  "cudaMemcpyAsync(z into y)"));
  if (s.problem.op() == Op::kConv)
    CONVARITH_RETURN_IF_ERROR(
        from_cudnn(cudnnConvolutionForward(s.handle, &alpha, s.d.x, t.x, s.d.w, t.w, s.d.conv, s.fwd, s.workspace,
                                           workspace_bytes_, &beta, s.d.y, t.y),
                   "cudnnConvolutionForward"));
  else
    CONVARITH_RETURN_IF_ERROR(
        from_cudnn(cudnnConvolutionBackwardData(s.handle, &alpha, s.d.w, t.w, s.d.x, t.x, s.d.conv, s.bwd, s.workspace,
                                                workspace_bytes_, &beta, s.d.y, t.y),
                   "cudnnConvolutionBackwardData"));
  if (t.bias != nullptr)
    CONVARITH_RETURN_IF_ERROR(
        from_cudnn(cudnnAddTensor(s.handle, &one, s.d.bias, t.bias, &one, s.d.y, t.y), "cudnnAddTensor"));
  if (s.d.act_mode != CUDNN_ACTIVATION_IDENTITY)
    CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnActivationForward(s.handle, s.d.act, &one, s.d.y, t.y, &zero, s.d.y, t.y),
                                         "cudnnActivationForward"));
  return Status::ok();
}

} // namespace convarith::cudnn
