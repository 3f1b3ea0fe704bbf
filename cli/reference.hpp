// cli/reference.hpp — the fp64 reference behind `convarith run --check`: plain loops written from
// the definitions, independent of the library's CPU fallback (host/cpu/) so that a run is never
// checked against itself.
#pragma once

#include <vector>

#include "convarith/problem.hpp"

namespace convarith::cli {

struct Reference {
  std::vector<double> y;         // y_elements() values
  std::vector<double> magnitude; // per element: sum |x*w| (+|bias|); pooling: max |x| in the window
};

// Conv: y[n,k,o] = b[k] + sum over c in k's group and taps r of x[n,c,o*s - p_lo + r*d] * w[k,c,r].
// Transposed (gather form): y[n,k,o] = b[k] + sum of x[n,c,i] * w[c,k,r] over o + p_lo - r*d = s*i.
// Max pool: max over the window's taps inside the input. Avg pool: their sum divided by the taps
// inside the input, or with count_include_pad by the taps inside the padded extent.
// bias may be nullptr; w is ignored for pooling.
Reference reference(const ConvProblem& p, const float* x, const float* w, const float* bias);

struct ErrorReport {
  double max_abs = 0; // max |got - want|
  double max_rel = 0; // max |got - want| / max(magnitude, tiny)
  int64_t nan_count = 0;
  int64_t worst_index = -1; // element with the largest relative error
  double tolerance = 0;     // the max_rel the check accepts (see check_tolerance)
  bool pass = false;
};
// A float32 result accumulated in any order is within about (taps + 2) * eps of the magnitude;
// the check allows twice that.
ErrorReport compare(const ConvProblem& p, const std::vector<float>& got, const Reference& want);

} // namespace convarith::cli
