// tests/support/reference.cpp — the fp64 oracle, written from the definitions and nothing else.
//
// It never calls host/cpu/ or any algorithm of the library: the only library code it uses is the
// validated problem (sizes from the arithmetic). Every op is one loop nest over the rank-3 view
// (axis3/out3), so ranks 1-3 share it. For each output position and axis the taps that land
// inside the input are listed first; the channel loops then multiply the three lists.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "support/support.hpp"

namespace convarith::test {
namespace {

// One tap of a window along one axis: kernel index r and the input index it reads.
struct Tap {
  int64_t r;
  int64_t i;
};

// Taps of a direct convolution / pooling window at output index o that land inside the input:
// input index o*s - p_lo + r*d (out-of-range taps read zero padding, so they are dropped).
std::vector<Tap> direct_taps(const AxisParams& a, int64_t o) {
  std::vector<Tap> taps;
  for (int64_t r = 0; r < a.k; ++r) {
    const int64_t i = o * a.s - a.p_lo + r * a.d;
    if (i >= 0 && i < a.i)
      taps.push_back({r, i});
  }
  return taps;
}

// Taps of a transposed convolution in gather form: output o receives x[i]*w[r] when the scatter
// of input i by tap r lands on o, i.e. i*s - p_lo + r*d = o, so (o + p_lo - r*d) must be a
// non-negative multiple of s whose quotient is a valid input index.
std::vector<Tap> transposed_taps(const AxisParams& a, int64_t o) {
  std::vector<Tap> taps;
  for (int64_t r = 0; r < a.k; ++r) {
    const int64_t num = o + a.p_lo - r * a.d;
    if (num < 0 || num % a.s != 0)
      continue;
    const int64_t i = num / a.s;
    if (i < a.i)
      taps.push_back({r, i});
  }
  return taps;
}

// Number of window taps inside the padded extent [-p_lo, i + p_hi): count_include_pad's divisor
// along one axis (in ceil_mode a window can run past the right padding; those taps do not count).
int64_t padded_extent_taps(const AxisParams& a, int64_t o) {
  int64_t count = 0;
  for (int64_t r = 0; r < a.k; ++r) {
    const int64_t i = o * a.s - a.p_lo + r * a.d;
    if (i >= -a.p_lo && i < a.i + a.p_hi)
      ++count;
  }
  return count;
}

// What the loop nest computes per output element.
enum class Mode { kValue, kMagnitude };

std::vector<double> evaluate(const ConvProblem& p, const float* x, const float* w, const float* bias, Mode mode) {
  std::vector<double> y(static_cast<size_t>(p.y_elements()), 0.0);
  if (p.y_elements() == 0)
    return y;
  const Op op = p.op();
  const bool transposed = op == Op::kConvTranspose;
  const bool pool = is_pool(op);
  const int64_t N = p.n(), C = p.c(), K = p.k(), G = pool ? 1 : p.groups();
  const int64_t Cg = C / G, Kg = K / G;
  const AxisParams& ad = p.axis3(0);
  const AxisParams& ah = p.axis3(1);
  const AxisParams& aw = p.axis3(2);
  const int64_t D = ad.i, H = ah.i, W = aw.i;
  const int64_t R = ad.k, S = ah.k, T = aw.k;
  const int64_t P0 = p.out3(0), P1 = p.out3(1), P2 = p.out3(2);

  auto x_at = [&](int64_t n, int64_t c, int64_t d, int64_t h, int64_t ww) {
    return static_cast<double>(x[(((n * C + c) * D + d) * H + h) * W + ww]);
  };

  for (int64_t od = 0; od < P0; ++od) {
    for (int64_t oh = 0; oh < P1; ++oh) {
      for (int64_t ow = 0; ow < P2; ++ow) {
        const std::vector<Tap> td = transposed ? transposed_taps(ad, od) : direct_taps(ad, od);
        const std::vector<Tap> th = transposed ? transposed_taps(ah, oh) : direct_taps(ah, oh);
        const std::vector<Tap> tw = transposed ? transposed_taps(aw, ow) : direct_taps(aw, ow);
        for (int64_t n = 0; n < N; ++n) {
          for (int64_t k = 0; k < K; ++k) {
            double acc = 0.0;
            if (pool) {
              // Pooling is per channel: output channel k reads input channel k.
              if (op == Op::kMaxPool) {
                acc = mode == Mode::kValue ? -std::numeric_limits<double>::infinity() : 0.0;
                for (const Tap& a : td)
                  for (const Tap& b : th)
                    for (const Tap& c : tw) {
                      const double v = x_at(n, k, a.i, b.i, c.i);
                      acc = mode == Mode::kValue ? std::max(acc, v) : std::max(acc, std::fabs(v));
                    }
              } else {
                double sum = 0.0, mag = 0.0;
                for (const Tap& a : td)
                  for (const Tap& b : th)
                    for (const Tap& c : tw) {
                      const double v = x_at(n, k, a.i, b.i, c.i);
                      sum += v;
                      mag = std::max(mag, std::fabs(v));
                    }
                const int64_t divisor =
                    p.count_include_pad()
                        ? padded_extent_taps(ad, od) * padded_extent_taps(ah, oh) * padded_extent_taps(aw, ow)
                        : static_cast<int64_t>(td.size() * th.size() * tw.size());
                acc = mode == Mode::kValue ? sum / static_cast<double>(divisor) : mag;
              }
            } else {
              const int64_t g = k / Kg;
              for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
                // Conv weights are K x C/g x R x S x T; transposed weights C x K/g x R x S x T.
                const int64_t w_base = transposed ? (c * Kg + (k - g * Kg)) : (k * Cg + (c - g * Cg));
                for (const Tap& a : td)
                  for (const Tap& b : th)
                    for (const Tap& t : tw) {
                      const double xv = x_at(n, c, a.i, b.i, t.i);
                      const double wv = static_cast<double>(w[((w_base * R + a.r) * S + b.r) * T + t.r]);
                      acc += mode == Mode::kValue ? xv * wv : std::fabs(xv * wv);
                    }
              }
              if (bias != nullptr) {
                const double bv = static_cast<double>(bias[k]);
                acc += mode == Mode::kValue ? bv : std::fabs(bv);
              }
            }
            y[static_cast<size_t>((((n * K + k) * P0 + od) * P1 + oh) * P2 + ow)] = acc;
          }
        }
      }
    }
  }
  return y;
}

} // namespace

std::vector<double> reference(const ConvProblem& p, const float* x, const float* w, const float* bias) {
  return evaluate(p, x, w, bias, Mode::kValue);
}

std::vector<double> reference_magnitude(const ConvProblem& p, const float* x, const float* w, const float* bias) {
  return evaluate(p, x, w, bias, Mode::kMagnitude);
}

} // namespace convarith::test
