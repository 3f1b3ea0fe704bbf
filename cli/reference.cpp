// cli/reference.cpp — fp64 loops over the rank-3 view (rank 1 and 2 have leading unit axes).
#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace convarith::cli {
namespace {

struct Dims {
  int64_t i[3], o[3], k[3], s[3], lo[3], hi[3], d[3];
};

Dims dims_of(const ConvProblem& p) {
  Dims m{};
  for (int j = 0; j < 3; ++j) {
    const AxisParams& a = p.axis3(j);
    m.i[j] = a.i;
    m.o[j] = p.out3(j);
    m.k[j] = a.k;
    m.s[j] = a.s;
    m.lo[j] = a.p_lo;
    m.hi[j] = a.p_hi;
    m.d[j] = a.d;
  }
  return m;
}

} // namespace

Reference reference(const ConvProblem& p, const float* x, const float* w, const float* bias) {
  const Dims m = dims_of(p);
  const int64_t N = p.n(), C = p.c(), K = p.k(), G = p.groups();
  const int64_t in_sp = m.i[0] * m.i[1] * m.i[2];
  const int64_t out_sp = m.o[0] * m.o[1] * m.o[2];
  const int64_t k_sp = m.k[0] * m.k[1] * m.k[2];
  Reference ref;
  ref.y.assign(static_cast<size_t>(p.y_elements()), 0.0);
  ref.magnitude.assign(ref.y.size(), 0.0);
  const bool pool = is_pool(p.op());
  const int64_t Cg = pool ? 1 : C / G, Kg = pool ? 1 : K / G;

  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t od = 0; od < m.o[0]; ++od) {
        for (int64_t oh = 0; oh < m.o[1]; ++oh) {
          for (int64_t ow = 0; ow < m.o[2]; ++ow) {
            const int64_t o_idx[3] = {od, oh, ow};
            double acc = 0, mag = 0;
            double best = -std::numeric_limits<double>::infinity();
            int64_t in_input = 0, in_padded = 0;
            for (int64_t r = 0; r < m.k[0]; ++r) {
              for (int64_t s = 0; s < m.k[1]; ++s) {
                for (int64_t t = 0; t < m.k[2]; ++t) {
                  const int64_t tap[3] = {r, s, t};
                  const int64_t tap_idx = (r * m.k[1] + s) * m.k[2] + t;
                  int64_t pos[3];
                  bool inside = true, inside_padded = true, aligned = true;
                  for (int j = 0; j < 3; ++j) {
                    if (p.op() == Op::kConvTranspose) {
                      // Gather form: input i contributes to o when i*s - p_lo + r*d = o.
                      const int64_t num = o_idx[j] + m.lo[j] - tap[j] * m.d[j];
                      aligned = aligned && num >= 0 && num % m.s[j] == 0;
                      pos[j] = num >= 0 ? num / m.s[j] : -1;
                    } else {
                      pos[j] = o_idx[j] * m.s[j] - m.lo[j] + tap[j] * m.d[j];
                      inside_padded = inside_padded && pos[j] >= -m.lo[j] && pos[j] < m.i[j] + m.hi[j];
                    }
                    inside = inside && pos[j] >= 0 && pos[j] < m.i[j];
                  }
                  if (pool) {
                    in_padded += inside_padded ? 1 : 0;
                    if (!inside)
                      continue;
                    ++in_input;
                    const double v = x[((n * C + k) * in_sp) + (pos[0] * m.i[1] + pos[1]) * m.i[2] + pos[2]];
                    acc += v;
                    best = std::max(best, v);
                    mag = std::max(mag, std::fabs(v));
                    continue;
                  }
                  if (!inside || !aligned)
                    continue;
                  const int64_t g = k / Kg;
                  const int64_t sp = (pos[0] * m.i[1] + pos[1]) * m.i[2] + pos[2];
                  for (int64_t cc = 0; cc < Cg; ++cc) {
                    const int64_t c = g * Cg + cc;
                    const double xv = x[(n * C + c) * in_sp + sp];
                    const double wv = p.op() == Op::kConv ? w[(k * Cg + cc) * k_sp + tap_idx]
                                                          : w[(c * Kg + (k - g * Kg)) * k_sp + tap_idx];
                    acc += xv * wv;
                    mag += std::fabs(xv * wv);
                  }
                }
              }
            }
            double y = acc;
            if (p.op() == Op::kMaxPool)
              y = best;
            if (p.op() == Op::kAvgPool) {
              const int64_t divisor = p.count_include_pad() ? in_padded : in_input;
              y = divisor > 0 ? acc / static_cast<double>(divisor) : 0.0;
            }
            if (!pool && bias) {
              y += bias[k];
              mag += std::fabs(static_cast<double>(bias[k]));
            }
            const size_t at = static_cast<size_t>((n * K + k) * out_sp + (od * m.o[1] + oh) * m.o[2] + ow);
            ref.y[at] = y;
            ref.magnitude[at] = mag;
          }
        }
      }
    }
  }
  return ref;
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
