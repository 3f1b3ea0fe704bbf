// host/cudnn/cudnn_runner.hpp — cuDNN as the GPU oracle (tests) and peer (bench, CLI): namespace
// convarith::cudnn, built into target convarith_cudnn only in CUDA builds with cuDNN found; never
// linked into the library.
//
// A Runner describes one ConvProblem to cuDNN's legacy API (see cudnn_dims.hpp for the mapping and
// what is kNotSupported), finds cuDNN's fastest FMA algorithm and runs it:
//   conv            cudnnConvolutionForward    (cudnnFindConvolutionForwardAlgorithmEx)
//   conv_transpose  cudnnConvolutionBackwardData with our w as cuDNN's forward filter
//                   (cudnnFindConvolutionBackwardDataAlgorithmEx)
//   pooling         cudnnPoolingForward (max: CUDNN_POOLING_MAX_DETERMINISTIC; avg: include/exclude pad)
// FP32 only, CUDNN_FMA_MATH on the descriptor and NVIDIA_TF32_OVERRIDE=0 set in the environment
// before the first cuDNN handle, so no TF32 result is ever compared or timed as FP32.
// Memory: every pointer is device memory. Stream: all work is enqueued on the Runner's stream;
// find() synchronizes (it is setup), run() does not.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "convarith/problem.hpp"
#include "convarith/status.hpp"

namespace convarith::cudnn {

// "9.19.0" from cudnnGetVersion() (the library actually loaded), plus the header version when they differ.
std::string version();

// Sets NVIDIA_TF32_OVERRIDE=0 (overwriting) unless it was already done; Runner::create calls it.
// Call it before anything else in the process creates a cuDNN or cuBLAS handle.
void disable_tf32();

// One algorithm cudnnFind*Ex timed.
struct AlgoTiming {
  std::string name; // "IMPLICIT_PRECOMP_GEMM", ...
  int id = 0;
  float find_ms = 0; // cuDNN's own single-run time
  size_t workspace_bytes = 0;
};

class Runner {
public:
  // Describes the problem (no GPU work). kNotSupported names what cuDNN cannot express -- the
  // verdict of the descriptor step (describe()) alone; kDeviceError when no cuDNN handle can be made
  // (no GPU, cuDNN or a sub-library fails to load, driver or architecture mismatch: see
  // cudnn_status_code()). stream: a cudaStream_t or nullptr.
  static Result<std::unique_ptr<Runner>> create(const ConvProblem& problem, void* stream = nullptr,
                                                size_t workspace_cap = size_t(1) << 30);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  // Finds the fastest algorithm on these device buffers (y is overwritten), requesting every
  // algorithm, discarding failed and non-FMA results and those needing more than the workspace
  // cap; allocates its workspace. Synchronizes the stream. Pooling: nothing to find (OK).
  // Never kNotSupported: no FMA algorithm surviving the filter is kDeviceError naming why each
  // returned algorithm was dropped (a problem the descriptor step accepted must be comparable).
  Status find(const float* x, const float* w, float* y);
  // Picks an algorithm without timing (cudnnGet*_v7's first FMA success), for tests that only
  // need a correct answer fast. Also allocates the workspace. No FMA algorithm: kDeviceError.
  Status choose_heuristic();
  // y = op(x, w) (+ bias via cudnnAddTensor when bias != nullptr). Enqueued on the stream; no sync.
  // Requires find() or choose_heuristic() for conv ops.
  Status run(const float* x, const float* w, const float* bias, float* y);

  const std::string& algorithm() const { return algorithm_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  double find_seconds() const { return find_seconds_; }                     // wall time of find()
  const std::vector<AlgoTiming>& candidates() const { return candidates_; } // FMA successes, fastest first

private:
  Runner();
  struct State;
  std::unique_ptr<State> state_;
  std::string algorithm_;
  size_t workspace_bytes_ = 0;
  double find_seconds_ = 0;
  std::vector<AlgoTiming> candidates_;
};

} // namespace convarith::cudnn
