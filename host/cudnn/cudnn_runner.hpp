// host/cudnn/cudnn_runner.hpp — cuDNN as the GPU oracle (tests) and peer (bench, CLI): namespace
// convarith::cudnn, built into target convarith_cudnn only in CUDA builds with cuDNN found; never
// linked into the library.
//
// A Runner describes one ConvProblem to cuDNN's legacy API (see cudnn_dims.hpp for the mapping and
// what is kNotSupported), finds cuDNN's fastest algorithm of the allowed math and runs it:
//   conv            cudnnConvolutionForward    (cudnnFindConvolutionForwardAlgorithmEx)
//   conv_transpose  cudnnConvolutionBackwardData with our w as cuDNN's forward filter
//                   (cudnnFindConvolutionBackwardDataAlgorithmEx)
//   pooling         cudnnPoolingForward (max: CUDNN_POOLING_MAX_DETERMINISTIC; avg: include/exclude pad)
// Formats: the problem's dtype (f32, f16, bf16: one for every tensor) and layouts (NCHW / NHWC x, z,
// y; KCRS / KRSC filter). Math: f32 is CUDNN_FMA_MATH only (NVIDIA_TF32_OVERRIDE=0 is also set in
// the environment before the first cuDNN handle, so no TF32 result is ever compared or timed as
// FP32); f16 / bf16 run cuDNN's tensor-op kernels with fp32 accumulation (math() says which).
// Epilogue y = act(alpha * op(x, w) + bias + beta * z), two paths (epilogue_path() says which ran):
//   fused    conv with relu: cudnnConvolutionBiasActivationForward (alpha1 = alpha, alpha2 = beta,
//            z may be y), on IMPLICIT_PRECOMP_GEMM — the algorithm cuDNN documents for every fused
//            activation — when it is among the algorithms that succeed within the workspace cap.
//            Without a caller bias a zero bias is passed (the call needs one); without a residual
//            alpha2 = 0 with z = y.
//   unfused  everything else: z copied into y (cudaMemcpyAsync, unless z == y), the convolution
//            (or backward data) with alpha and beta onto it, cudnnAddTensor for the bias,
//            cudnnActivationForward in place for the activation (identity: none). Each step rounds y
//            to its dtype, which the comparisons allow for.
// Memory: every pointer is device memory. Stream: all work is enqueued on the Runner's stream;
// find() synchronizes (it is setup), run() does not.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "convarith/plan.hpp"
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
  std::string math = "FMA"; // the math type cuDNN reports for this algorithm
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

  // Finds the fastest algorithm on these device buffers (y is overwritten: with an in-place residual,
  // z == y, find on a scratch y), requesting every algorithm, discarding failed results, those of a
  // math the problem's dtype does not allow (f32: FMA only) and those needing more than the
  // workspace cap; allocates its workspace. Synchronizes the stream. Pooling: nothing to find (OK).
  // Never kNotSupported: no algorithm surviving the filter is kDeviceError naming why each
  // returned algorithm was dropped (a problem the descriptor step accepted must be comparable).
  Status find(const Tensors& t);
  Status find(const float* x, const float* w, float* y); // f32 problems (find(Tensors) with x, w, y)
  // Picks an algorithm without timing (cudnnGet*_v7's first allowed success), for tests that only
  // need a correct answer fast. Also allocates the workspace. No allowed algorithm: kDeviceError.
  Status choose_heuristic();
  // The whole problem: y = act(alpha * op(x, w) + bias + beta * z) in the problem's dtypes and
  // layouts (t.bias optional, t.z required when beta != 0 and may equal t.y; pooling reads t.x only).
  // Enqueued on the stream; no sync. Requires find() or choose_heuristic() for conv ops.
  Status run(const Tensors& t);
  // The original entry point: y = op(x, w) (+ bias when bias != nullptr) for problems whose tensors
  // are f32 and that have no residual (others: kInvalidArgument naming what is missing).
  Status run(const float* x, const float* w, const float* bias, float* y);

  const std::string& algorithm() const { return algorithm_; }
  // "FMA" (f32) or "TENSOR_OP" (f16 / bf16, fp32 accumulation): the math the chosen algorithm uses.
  const std::string& math() const { return math_; }
  // How the epilogue runs, e.g. "fused cudnnConvolutionBiasActivationForward(RELU)" or
  // "cudnnConvolutionForward(alpha, beta) + cudnnAddTensor + cudnnActivationForward(SIGMOID)".
  const std::string& epilogue_path() const { return epilogue_path_; }
  bool fused() const { return fused_; }
  size_t workspace_bytes() const { return workspace_bytes_; }
  double find_seconds() const { return find_seconds_; }                     // wall time of find()
  const std::vector<AlgoTiming>& candidates() const { return candidates_; } // FMA successes, fastest first

private:
  Runner();
  struct State;
  std::unique_ptr<State> state_;
  Status adopt(); // takes the chosen candidate: the fused path, workspace, names
  std::string algorithm_, math_ = "FMA", epilogue_path_;
  bool fused_ = false;
  size_t workspace_bytes_ = 0;
  double find_seconds_ = 0;
  std::vector<AlgoTiming> candidates_;
};

} // namespace convarith::cudnn
