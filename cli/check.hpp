// cli/check.hpp — what `convarith run --check` compares a result with: the project's fp64 oracle
// (reference/, plain loops written from the definitions, independent of the library's CPU fallback
// in host/cpu/ so that a run is never checked against itself), and the pass/fail rule.
#pragma once

#include <vector>

#include "convarith/problem.hpp"

namespace convarith::cli {

struct Reference {
  std::vector<double> y;         // y_elements() values
  std::vector<double> magnitude; // per element: sum |x*w| (+|bias|); pooling: max |x| in the window
};

// The oracle's values and magnitudes (reference/reference.hpp states the definitions). bias may be
// nullptr; w is ignored for pooling.
Reference reference(const ConvProblem& p, const float* x, const float* w, const float* bias);

struct ErrorReport {
  double max_abs = 0;       // max |got - want|
  double max_rel = 0;       // max |got - want| / max(magnitude, tiny)
  int64_t nan_count = 0;    // elements where exactly one of the result and the reference is NaN
  int64_t worst_index = -1; // element with the largest relative error
  double tolerance = 0;     // the max_rel the check accepts (see check_tolerance)
  bool pass = false;
};
// A float32 result accumulated in any order is within about (taps + 2) * eps of the magnitude;
// the check allows twice that.
ErrorReport compare(const ConvProblem& p, const std::vector<float>& got, const Reference& want);

} // namespace convarith::cli
