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

// " NAME (why)" for an algorithm Find returned but find() drops.
std::string rejection(const char* name, cudnnStatus_t status, cudnnMathType_t math, size_t memory, size_t cap) {
  std::string why;
  if (status != CUDNN_STATUS_SUCCESS)
    why = cudnnGetErrorString(status);
  else if (math != CUDNN_FMA_MATH)
    why = "not FMA math";
  else
    why = "needs " + std::to_string(memory) + " bytes of workspace, cap " + std::to_string(cap);
  return std::string(" ") + name + " (" + why + ");";
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
  cudnnConvolutionFwdAlgo_t fwd{};
  cudnnConvolutionBwdDataAlgo_t bwd{};
  void* workspace = nullptr;
  ~State() {
    if (workspace != nullptr)
      (void)cudaFree(workspace);
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
  r->state_->problem = problem;
  r->state_->d = std::move(d).value();
  r->state_->handle = *h;
  r->state_->stream = static_cast<cudaStream_t>(stream);
  r->state_->cap = workspace_cap;
  if (is_pool(problem.op())) {
    r->state_->chosen = true;
    r->algorithm_ = problem.op() == Op::kMaxPool  ? "POOLING_MAX_DETERMINISTIC"
                    : problem.count_include_pad() ? "POOLING_AVERAGE_COUNT_INCLUDE_PADDING"
                                                  : "POOLING_AVERAGE_COUNT_EXCLUDE_PADDING";
  }
  return r;
}

Status Runner::find(const float* x, const float* w, float* y) {
  State& s = *state_;
  if (is_pool(s.problem.op()))
    return Status::ok();
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
      status = from_cudnn(cudnnFindConvolutionForwardAlgorithmEx(s.handle, s.d.x, x, s.d.w, w, s.d.conv, s.d.y, y,
                                                                 max_count, &returned, perf.data(), ws, ws_bytes),
                          "cudnnFindConvolutionForwardAlgorithmEx");
    for (int i = 0; status && i < returned; ++i) {
      const auto& p = perf[static_cast<size_t>(i)];
      if (p.status != CUDNN_STATUS_SUCCESS || p.mathType != CUDNN_FMA_MATH || p.memory > ws_bytes) {
        rejected += rejection(fwd_name(p.algo), p.status, p.mathType, p.memory, ws_bytes);
        continue;
      }
      if (candidates_.empty())
        s.fwd = p.algo;
      candidates_.push_back({fwd_name(p.algo), static_cast<int>(p.algo), p.time, p.memory});
    }
  } else {
    int max_count = 0;
    status = from_cudnn(cudnnGetConvolutionBackwardDataAlgorithmMaxCount(s.handle, &max_count), "MaxCount");
    std::vector<cudnnConvolutionBwdDataAlgoPerf_t> perf(static_cast<size_t>(std::max(max_count, 1)));
    int returned = 0;
    // Backward data: cuDNN's dy is our x, its dx our y, its filter our w.
    if (status)
      status = from_cudnn(cudnnFindConvolutionBackwardDataAlgorithmEx(s.handle, s.d.w, w, s.d.x, x, s.d.conv, s.d.y, y,
                                                                      max_count, &returned, perf.data(), ws, ws_bytes),
                          "cudnnFindConvolutionBackwardDataAlgorithmEx");
    for (int i = 0; status && i < returned; ++i) {
      const auto& p = perf[static_cast<size_t>(i)];
      if (p.status != CUDNN_STATUS_SUCCESS || p.mathType != CUDNN_FMA_MATH || p.memory > ws_bytes) {
        rejected += rejection(bwd_name(p.algo), p.status, p.mathType, p.memory, ws_bytes);
        continue;
      }
      if (candidates_.empty())
        s.bwd = p.algo;
      candidates_.push_back({bwd_name(p.algo), static_cast<int>(p.algo), p.time, p.memory});
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
    return device_error("cuDNN: no FMA algorithm succeeded for " + s.problem.name() + " within " +
                        std::to_string(ws_bytes >> 20) +
                        " MiB of workspace:" + (rejected.empty() ? std::string(" Find returned none") : rejected));
  algorithm_ = candidates_.front().name;
  workspace_bytes_ = candidates_.front().workspace_bytes;
  if (s.workspace != nullptr)
    (void)cudaFree(s.workspace);
  s.workspace = nullptr;
  if (workspace_bytes_ > 0)
    CONVARITH_RETURN_IF_ERROR(from_cuda(cudaMalloc(&s.workspace, workspace_bytes_), "cudaMalloc(cuDNN workspace)"));
  s.chosen = true;
  return Status::ok();
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
      if (p.status != CUDNN_STATUS_SUCCESS || p.mathType != CUDNN_FMA_MATH || p.memory > s.cap)
        continue;
      if (candidates_.empty())
        s.fwd = p.algo;
      candidates_.push_back({fwd_name(p.algo), static_cast<int>(p.algo), -1.0f, p.memory});
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
      if (p.status != CUDNN_STATUS_SUCCESS || p.mathType != CUDNN_FMA_MATH || p.memory > s.cap)
        continue;
      if (candidates_.empty())
        s.bwd = p.algo;
      candidates_.push_back({bwd_name(p.algo), static_cast<int>(p.algo), -1.0f, p.memory});
    }
  }
  if (candidates_.empty())
    return device_error("cuDNN: the heuristic offers no FMA algorithm for " + s.problem.name() + " within " +
                        std::to_string(s.cap >> 20) + " MiB of workspace");
  algorithm_ = candidates_.front().name;
  workspace_bytes_ = candidates_.front().workspace_bytes;
  if (s.workspace != nullptr)
    (void)cudaFree(s.workspace);
  s.workspace = nullptr;
  if (workspace_bytes_ > 0)
    CONVARITH_RETURN_IF_ERROR(from_cuda(cudaMalloc(&s.workspace, workspace_bytes_), "cudaMalloc(cuDNN workspace)"));
  s.chosen = true;
  return Status::ok();
}

Status Runner::run(const float* x, const float* w, const float* bias, float* y) {
  State& s = *state_;
  if (!s.chosen)
    return invalid_argument("cuDNN Runner::run before find() or choose_heuristic()");
  CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnSetStream(s.handle, s.stream), "cudnnSetStream"));
  const float one = 1.0f, zero = 0.0f;
  switch (s.problem.op()) {
  case Op::kConv:
    CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnConvolutionForward(s.handle, &one, s.d.x, x, s.d.w, w, s.d.conv, s.fwd,
                                                                 s.workspace, workspace_bytes_, &zero, s.d.y, y),
                                         "cudnnConvolutionForward"));
    break;
  case Op::kConvTranspose:
    CONVARITH_RETURN_IF_ERROR(
        from_cudnn(cudnnConvolutionBackwardData(s.handle, &one, s.d.w, w, s.d.x, x, s.d.conv, s.bwd, s.workspace,
                                                workspace_bytes_, &zero, s.d.y, y),
                   "cudnnConvolutionBackwardData"));
    break;
  case Op::kMaxPool:
  case Op::kAvgPool:
    return from_cudnn(cudnnPoolingForward(s.handle, s.d.pool, &one, s.d.x, x, &zero, s.d.y, y), "cudnnPoolingForward");
  }
  if (bias != nullptr)
    CONVARITH_RETURN_IF_ERROR(
        from_cudnn(cudnnAddTensor(s.handle, &one, s.d.bias, bias, &one, s.d.y, y), "cudnnAddTensor"));
  return Status::ok();
}

} // namespace convarith::cudnn
