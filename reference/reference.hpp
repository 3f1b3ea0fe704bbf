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
