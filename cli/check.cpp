// cli/check.cpp — the oracle's two outputs for `run --check`, and the pass/fail rule.
#include "check.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "reference/reference.hpp"

namespace convarith::cli {

Reference reference(const ConvProblem& p, const float* x, const float* w, const float* bias) {
  return Reference{oracle::reference(p, x, w, bias), oracle::reference_magnitude(p, x, w, bias)};
}

ErrorReport compare(const ConvProblem& p, const std::vector<float>& got, const Reference& want) {
  ErrorReport e;
  const double eps = std::numeric_limits<float>::epsilon();
  const double taps = is_pool(p.op()) ? 1.0 : static_cast<double>(p.kernel_spatial() * (p.c() / p.groups()));
  e.tolerance = 2.0 * eps * (taps + 2.0);
  for (size_t i = 0; i < got.size() && i < want.y.size(); ++i) {
    // NaN positions are compared, not NaN values: NaN where the reference is NaN (max_pool's NaN
    // wins, Inf - Inf) matches; NaN elsewhere, or a number where the reference is NaN, does not.
    if (std::isnan(got[i]) || std::isnan(want.y[i])) {
      e.nan_count += std::isnan(got[i]) != std::isnan(want.y[i]) ? 1 : 0;
      continue;
    }
    if (std::isinf(want.y[i]) || std::isinf(got[i])) {
      if (static_cast<double>(got[i]) == want.y[i])
        continue; // the same infinity (Inf - Inf would be a NaN difference)
      // Any other pair is off by an infinite error (inf / an infinite magnitude would be NaN).
      e.max_abs = e.max_rel = std::numeric_limits<double>::infinity();
      e.worst_index = static_cast<int64_t>(i);
      continue;
    }
    const double diff = std::fabs(static_cast<double>(got[i]) - want.y[i]);
    const double rel = diff / std::max(want.magnitude[i], 1e-30);
    e.max_abs = std::max(e.max_abs, diff);
    if (rel > e.max_rel || e.worst_index < 0) {
      e.max_rel = std::max(e.max_rel, rel);
      e.worst_index = static_cast<int64_t>(i);
    }
  }
  e.pass = e.nan_count == 0 && got.size() == want.y.size() && e.max_rel <= e.tolerance;
  return e;
}

} // namespace convarith::cli
