// host/onednn/onednn_runner.hpp — oneDNN as an independent CPU oracle and peer for tests, bench
// and the CLI. Never linked into the library (CMake target convarith_onednn, which defines
// CONVARITH_HAVE_ONEDNN).
//
// A Runner is made once per problem and keeps oneDNN's engine, stream and primitive; run() then
// executes on the caller's buffers (the problem's dtypes and layouts) and returns when oneDNN is
// done. The mapping:
//   conv            convolution_forward (direct), oneDNN dilation = d - 1, asymmetric pads as
//                   padding_l / padding_r.
//   conv_transpose  deconvolution_forward, our C x K/g x k weights as oneDNN's (O, I, k...) /
//                   (G, O/g, I/g, k...) with the first two swapped; output padding a as
//                   padding_r = p_hi - a (oneDNN's output size has no a term); a negative
//                   padding_r is kNotSupported.
//   max/avg pool    pooling_v2_forward (dilated); ceil_mode as a larger padding_r that gives the
//                   same output size; count_include_pad = pooling_avg_include_padding. An average
//                   with count_include_pad whose enlarged right padding would be counted is
//                   kNotSupported (oneDNN would divide by the whole window).
// Formats: every tensor is described to oneDNN by the problem's own logical dims and element strides
// (ConvProblem::tensor()), so NC[D]HW / N[D]HWC activations and KCRS / KRSC filters (and the transposed
// filters' channels-last twin) need no reorder. Data types are the problem's per tensor (f32, bf16,
// f16). oneDNN 2.6 on x64 runs bf16 only on avx512_core and up and has no f16 CPU convolution or
// pooling: create() asks oneDNN and returns kNotSupported naming the dtypes, the CPU's ISA and what
// oneDNN said; it never emulates a dtype oneDNN lacks.
// The epilogue y = act(alpha * op(x, w) + bias + beta * z) as post-ops, in this order:
//   alpha != 1   eltwise_linear(alpha) first, the bias then as a binary_add post-op (oneDNN applies
//                its own bias before post-ops, and oneDNN 2.6 has no f32 output scales for
//                convolutions); alpha == 1: oneDNN's own bias argument
//   beta != 0    sum(beta): oneDNN adds beta * (what y holds) — run() first copies z into y when z is
//                another buffer (z == y, the in-place residual, is oneDNN's native form); z must have
//                y's dtype (it always has its layout)
//   activation   one eltwise post-op: relu (leaky_relu as relu with alpha), clip, logistic, tanh,
//                swish (silu, alpha 1), gelu_erf, gelu_tanh
// so the sum lands before the activation, as the problem defines. Pooling has no epilogue.
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
// The ISA oneDNN dispatches to on this CPU ("avx2", "avx512_core_bf16", ...).
std::string cpu_isa();

struct RunnerOptions {
  // false: oneDNN works on the caller's tensors as they are (whatever implementation accepts them).
  // true: oneDNN picks its preferred (blocked) layouts and run() includes the reorders from and
  // to the caller's tensors (and of the weights) — oneDNN's fastest path for plain callers.
  bool blocked_layouts = false;
};

class Runner {
public:
  // Any problem: dtypes, layouts and epilogue as ConvProblem::tensor() / epilogue() describe them.
  // kNotSupported (with the reason) for what oneDNN cannot express or has no implementation for here.
  static Result<Runner> create(const ConvProblem& problem, const RunnerOptions& options = {});

  Runner();
  ~Runner();
  Runner(Runner&&) noexcept;
  Runner& operator=(Runner&&) noexcept;

  // The general entry point: t.x, t.w (conv ops), t.bias (optional), t.z (required when beta != 0;
  // may equal t.y), t.y in the problem's dtypes and layouts, host memory. N = 0 is a no-op. With a
  // residual held in another buffer, y is overwritten with z before oneDNN runs (see above): on an
  // execution error y may hold z.
  Status run(const Tensors& t) const;
  // Constant weights (inference): w, in the problem's w dtype and layout, reordered once into the layout the
  // primitive takes (a copy where that is the caller's), as oneDNN's users do for weights that never change. A
  // later run with t.w == nullptr uses them (a run given a w uses that w). Conv ops only.
  Status set_constant_weights(const void* w);
  // The original f32 entry point: y = op(x, w) + bias (w and bias ignored for pooling; bias may be
  // nullptr). Only for problems whose tensors are all f32 and without a residual (any layout, any
  // activation); others are kInvalidArgument naming what they need.
  Status run(const float* x, const float* w, const float* bias, float* y) const;
  // oneDNN's implementation name (e.g. "jit:avx512_core", "gemm:jit", "ref:any").
  std::string implementation() const;
  // The post-op chain as built, e.g. "linear(0.5) binary_add(bias) sum(0.7) eltwise_relu"; "" when none.
  std::string post_ops() const;
  const ConvProblem& problem() const;

private:
  struct State;
  std::unique_ptr<State> state_;
};

} // namespace convarith::onednn
