// host/onednn/onednn_runner.hpp — oneDNN as an independent CPU oracle and peer for tests, bench
// and the CLI. Never linked into the library (CMake target convarith_onednn, which defines
// CONVARITH_HAVE_ONEDNN).
//
// A Runner is made once per problem and keeps oneDNN's engine, stream and primitive; run() then
// executes on the caller's NC[D]HW buffers and returns when oneDNN is done. The mapping:
//   conv            convolution_forward (direct), weights oiw/oihw/oidhw or goi... for groups,
//                   oneDNN dilation = d - 1, asymmetric pads as padding_l / padding_r.
//   conv_transpose  deconvolution_forward, weights in our C x K/g x k layout (oneDNN's io... /
//                   gio...), output padding a as padding_r = p_hi - a (oneDNN's output size has no
//                   a term); a negative padding_r is kNotSupported.
//   max/avg pool    pooling_v2_forward (dilated); ceil_mode as a larger padding_r that gives the
//                   same output size; count_include_pad = pooling_avg_include_padding. An average
//                   with count_include_pad whose enlarged right padding would be counted is
//                   kNotSupported (oneDNN would divide by the whole window).
// Thread-compatible, not thread-safe: use one Runner per thread. Nothing throws out of here:
// oneDNN's exceptions become Status.
#pragma once

#include <memory>
#include <string>

#include "convarith/plan.hpp"
#include "convarith/problem.hpp"
#include "convarith/status.hpp"

namespace convarith::onednn {

// "oneDNN 2.6.3 (cpu runtime OMP)" style string of the linked library.
std::string version();

struct RunnerOptions {
  // false: oneDNN works on the plain NC[D]HW tensors (whatever implementation accepts them).
  // true: oneDNN picks its preferred (blocked) layouts and run() includes the reorders from and
  // to the caller's plain tensors (and of the weights) — oneDNN's fastest path for NCHW callers.
  bool blocked_layouts = false;
};

class Runner {
public:
  static Result<Runner> create(const ConvProblem& problem, const RunnerOptions& options = {});

  Runner();
  ~Runner();
  Runner(Runner&&) noexcept;
  Runner& operator=(Runner&&) noexcept;

  // y = op(x, w) + bias on host memory (w and bias ignored for pooling; bias may be nullptr).
  // N = 0 is a no-op.
  Status run(const float* x, const float* w, const float* bias, float* y) const;
  // oneDNN's implementation name (e.g. "jit:avx512_core", "gemm:jit").
  std::string implementation() const;
  const ConvProblem& problem() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace convarith::onednn
