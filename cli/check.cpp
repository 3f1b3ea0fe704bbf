// cli/check.cpp — the oracle's two outputs for `run --check`, and the pass/fail rule (oracle::accept).
#include "check.hpp"

#include <cmath>
#include <limits>

namespace convarith::cli {

Reference reference(const ConvProblem& p, const oracle::Tensors& t) {
  return Reference{oracle::reference(p, t), oracle::reference_magnitude(p, t)};
}

Reference reference(const ConvProblem& p, const float* x, const float* w, const float* bias) {
  return Reference{oracle::reference(p, x, w, bias), oracle::reference_magnitude(p, x, w, bias)};
}

ErrorReport compare_values(const ConvProblem& p, const std::vector<double>& got, const Reference& want) {
  // An infinite magnitude (an infinite input in the window) bounds nothing: every finite error is within it.
  // oracle::accept_bound multiplies it by terms that may be 0, and 0 * inf is NaN, a bound nothing meets; the
  // largest finite magnitude gives the same verdict without the NaN.
  std::vector<double> magnitude = want.magnitude;
  for (double& m : magnitude)
    if (std::isinf(m))
      m = std::numeric_limits<double>::max();
  const oracle::Verdict v = oracle::accept(p, got, want.y, magnitude);
  ErrorReport e;
  e.max_abs = v.max_abs;
  e.max_rel = v.max_rel;
  e.nan_count = v.nan_bad;
  e.bad = v.bad;
  e.worst_index = v.first_bad;
  e.tolerance = v.bound_factor;
  e.worst_ratio = v.worst_ratio;
  e.pass = v.pass;
  return e;
}

ErrorReport compare(const ConvProblem& p, const std::vector<float>& got, const Reference& want) {
  return compare_values(p, std::vector<double>(got.begin(), got.end()), want);
}

} // namespace convarith::cli
