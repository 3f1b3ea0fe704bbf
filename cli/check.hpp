// cli/check.hpp — what `convarith run --check` compares a result with: the project's fp64 oracle
// (reference/, plain loops written from the definitions, independent of the library's CPU fallback
// in host/cpu/ so that a run is never checked against itself), and the pass/fail rule, which is the
// project's one acceptance rule oracle::accept (reference/reference.hpp), not a copy of it.
#pragma once

#include <vector>

#include "convarith/problem.hpp"
#include "reference/reference.hpp"

namespace convarith::cli {

struct Reference {
  std::vector<double> y;         // y_elements() values, in y's memory order
  std::vector<double> magnitude; // per element: |alpha| sum |x*w| + |bias| + |beta z|; pooling: max |x| in the window
};

// The oracle's values and magnitudes (reference/reference.hpp states the definitions) for inputs in
// the problem's dtypes and layouts (w, bias and z may be null where the problem has none).
Reference reference(const ConvProblem& p, const oracle::Tensors& t);
// The same for float32 NC[D]HW inputs. bias may be nullptr; w is ignored for pooling.
Reference reference(const ConvProblem& p, const float* x, const float* w, const float* bias);

struct ErrorReport {
  double max_abs = 0;       // max |got - want| over the elements where both are finite
  double max_rel = 0;       // max |got - want| / magnitude
  int64_t nan_count = 0;    // elements where exactly one of the result and the reference is NaN
  int64_t bad = 0;          // elements outside the bound (NaN mismatches included)
  int64_t worst_index = -1; // the first failing element (-1 when every element passes)
  double tolerance = 0;     // the bound's scale per unit of magnitude (oracle::Verdict::bound_factor)
  double worst_ratio = 0;   // max error / bound over the finite elements (<= 1 passes)
  bool pass = false;
};
// oracle::accept with its default factor: NaN positions are compared, not NaN values (NaN where the
// reference is NaN passes, NaN elsewhere fails), equal infinities pass, and a finite element passes
// within the dtype-aware bound. `got` holds y in memory order, converted to double (oracle::to_double);
// a result of another length fails.
ErrorReport compare_values(const ConvProblem& p, const std::vector<double>& got, const Reference& want);
// The same for a float32 result.
ErrorReport compare(const ConvProblem& p, const std::vector<float>& got, const Reference& want);

} // namespace convarith::cli
