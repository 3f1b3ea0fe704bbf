// reference/reference.hpp — the one fp64 oracle of the project (target convarith_reference): plain
// loops written from the definitions, used by the tests (tests/support), `convarith run --check`
// (cli/) and the bench harness (bench/). It is independent of the library's algorithms (host/cpu/,
// kernels/): the only library code it uses is the validated problem (sizes from the arithmetic). It
// is never linked into the library.
#pragma once

#include <vector>

#include "convarith/problem.hpp"

namespace convarith::oracle {

// Plain fp64 loops over the rank-3 view (axis3/out3; ranks 1 and 2 have leading unit axes).
// Conv: y[n,k,o] = b[k] + sum over c in k's group and taps r of x[n,c,o*s - p_lo + r*d] * w[k,c',r]
// (w is K x C/g x taps). Transposed, gather form: y[n,k,o] = b[k] + sum over c in k's group and taps
// r with o + p_lo - r*d = s*i for an input index i of x[n,c,i] * w[c,k',r] (w is C x K/g x taps).
// Max pool: max over the window's in-input taps (padding never wins); NaN wins: a NaN among those taps
// makes the output NaN (as PyTorch and ONNX do, and as every row of the library does). Avg pool: their sum divided by
// their number, or with count_include_pad by the taps inside the padded extent [-p_lo, i + p_hi) (in
// ceil_mode a window can run past it; those taps do not count). Pooling reads channel k for output
// channel k and ignores w and bias. bias may be nullptr. Returns y_elements() values, NCDHW.
// Only the taps that land inside the input are visited (solved for, never searched), so the time is
// bounded by the input and output sizes whatever the kernel, stride, dilation and padding.
//
// threads: how many threads share the N*K output planes (each writes its own planes; the result does
// not depend on it): 1 = the calling thread only, 0 = one per hardware thread.
std::vector<double> reference(const ConvProblem& p, const float* x, const float* w, const float* bias, int threads = 1);
// Per output element: sum |x*w| over the same taps (+ |bias|); for pooling max |x| over the window's
// in-input taps (NaN wins here too). The rounding error of a float32 result is a multiple of eps * this.
std::vector<double> reference_magnitude(const ConvProblem& p, const float* x, const float* w, const float* bias,
                                        int threads = 1);

} // namespace convarith::oracle

// ---- every dtype, layout and epilogue (reference/formats.cpp) -----------------------------------------------
namespace convarith::oracle {

// A run's inputs in the problem's dtypes and layouts (ConvProblem::tensor()); w and bias may be null where the
// problem has none, z is read only when the epilogue has a residual.
struct Tensors {
  const void* x = nullptr;
  const void* w = nullptr;
  const void* bias = nullptr;
  const void* z = nullptr;
};

// y = act(alpha * op(x, w) + bias + beta * z) in fp64 from the stored (already rounded) input values, returned
// in y's memory order (index e is y's element e, whatever its layout). The op itself is the fp64 loop nest
// above, run on the inputs converted exactly to f32 NC[D]HW; the epilogue is evaluated in double.
std::vector<double> reference(const ConvProblem& p, const Tensors& t, int threads = 1);
// The error scale per element of y (same order): |alpha| * sum |x*w| + |bias| + |beta * z| (pooling: max |x|).
std::vector<double> reference_magnitude(const ConvProblem& p, const Tensors& t, int threads = 1);
// y's elements (its dtype) as doubles, in memory order.
std::vector<double> to_double(const ConvProblem& p, TensorId id, const void* data);
// The value a float rounds to in `dtype` (round to nearest even), as a float; written independently of the
// library's conversions.
float round_to(DataType dtype, float v);

// The one acceptance rule (tests, `convarith run --check`, the bench). Element e passes when
//   got and want are both NaN, or equal infinities, or
//   |got - want| <= factor * [ eps32 * (taps + 2) * L_act * magnitude            (fp32 accumulation)
//                              + (u_out + u_act) * |want|                          (output rounding, activation)
//                              + 2 * u_in * magnitude ]                            (TF32 inputs in tensor-op math)
//                  + half the smallest subnormal step of y's dtype,
// with eps32 = 2^-23, taps the products summed per output (pooling: the window), u_out the unit roundoff of y's
// dtype when it is not f32 (f32 output rounding is inside the first term), u_act = 4 * 2^-24 for the
// transcendental activations, L_act = 1.13 (max |act'|) for gelu/silu, 1 otherwise, and u_in = 2^-11 when the
// plan may use TF32 (kTensorOp math on f32 inputs), else 0 (the inputs are read exactly).
struct Verdict {
  bool pass = true;
  int64_t bad = 0;         // failing elements
  int64_t nan_bad = 0;     // of which: NaN where the reference is a number, or a number where it is NaN
  int64_t first_bad = -1;  // index of the first failing element
  double max_abs = 0;      // max |got - want| over the elements where both are finite
  double max_rel = 0;      // max |got - want| / magnitude
  double worst_ratio = 0;  // max error / bound (<= 1 passes)
  double bound_factor = 0; // the bound's per-magnitude scale, factor * eps32 * (taps + 2) * L_act
};
Verdict accept(const ConvProblem& p, const std::vector<double>& got, const std::vector<double>& want,
               const std::vector<double>& magnitude, double factor = 2.0);
// The bound for one element (the rule above).
double accept_bound(const ConvProblem& p, double want, double magnitude, double factor = 2.0);
// Products summed per output element.
int64_t taps_per_output(const ConvProblem& p);

} // namespace convarith::oracle
