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
    if (std::isnan(got[i])) {
      ++e.nan_count;
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
