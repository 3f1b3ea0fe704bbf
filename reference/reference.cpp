// reference/reference.cpp — the fp64 oracle, written from the definitions and nothing else.
//
// Every op is one loop nest over the rank-3 view. For each axis and output index the taps that land
// inside the input are listed once (direct form for conv and pooling, gather form for transposed
// conv); the loops over channels and output positions then multiply the three lists. One (n, k)
// output plane is one task, so planes can be spread over threads without sharing an element.
#include "reference.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <thread>

namespace convarith::oracle {
namespace {

// The taps of one axis that reach one output index, as an arithmetic progression: tap m (0 <= m <
// count) is kernel index r0 + m*dr reading input index i0 + m*di. Only taps that land inside the
// input are listed, and they are found by solving for r, never by walking the kernel: a window of
// 10^12 taps over 3 inputs costs what 3 taps cost (time is bounded by the input and output sizes).
// Everything is solved in 128 bits, so no attribute a valid problem can have overflows.
struct Tap {
  int64_t r;
  int64_t i;
};
struct TapRun {
  int64_t r0 = 0, i0 = 0, count = 0, dr = 1, di = 0;
  Tap at(int64_t m) const { return {r0 + m * dr, i0 + m * di}; }
};

using Wide = __int128;

Wide floor_div(Wide a, Wide b) { // b > 0
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}
Wide ceil_div(Wide a, Wide b) { // b > 0
  return -floor_div(-a, b);
}

// Taps r in [0, k) with lo <= start + r*d < hi.
TapRun box_taps(const AxisParams& a, Wide start, Wide lo, Wide hi) {
  TapRun run;
  const Wide r_lo = std::max<Wide>(0, ceil_div(lo - start, a.d));
  const Wide r_hi = std::min<Wide>(a.k - 1, floor_div(hi - 1 - start, a.d));
  if (r_hi < r_lo)
    return run;
  run.r0 = static_cast<int64_t>(r_lo);
  run.i0 = static_cast<int64_t>(start + r_lo * a.d);
  run.count = static_cast<int64_t>(r_hi - r_lo + 1);
  run.di = a.d;
  return run;
}

// Taps of a direct convolution / pooling window at output index o that land inside the input:
// input index o*s - p_lo + r*d (out-of-range taps read zero padding, so they are dropped).
TapRun direct_taps(const AxisParams& a, int64_t o) {
  return box_taps(a, static_cast<Wide>(o) * a.s - a.p_lo, 0, a.i);
}

// Number of window taps inside the padded extent [-p_lo, i + p_hi): count_include_pad's divisor
// along one axis (in ceil_mode a window can run past the right padding; those taps do not count).
int64_t padded_extent_taps(const AxisParams& a, int64_t o) {
  return box_taps(a, static_cast<Wide>(o) * a.s - a.p_lo, -static_cast<Wide>(a.p_lo), static_cast<Wide>(a.i) + a.p_hi)
      .count;
}

// The inverse of v modulo m (gcd(v, m) = 1, m >= 1), by the extended Euclidean algorithm.
Wide inverse_mod(Wide v, Wide m) {
  Wide r0 = m, r1 = v % m, t0 = 0, t1 = 1;
  while (r1 != 0) {
    const Wide q = r0 / r1;
    const Wide r2 = r0 - q * r1, t2 = t0 - q * t1;
    r0 = r1, r1 = r2, t0 = t1, t1 = t2;
  }
  t0 %= m;
  return t0 < 0 ? t0 + m : t0;
}

// Taps of a transposed convolution in gather form: output o receives x[i]*w[r] when the scatter
// of input i by tap r lands on o, i.e. i*s - p_lo + r*d = o, so q - r*d (q = o + p_lo) must be a
// multiple of s in [0, (i-1)*s]. The r that satisfy r*d = q (mod s) are r* + j*s/g (g = gcd(d, s),
// r* from the inverse of d/g modulo s/g); the input index then steps by -d/g.
TapRun transposed_taps(const AxisParams& a, int64_t o) {
  TapRun run;
  const Wide q = static_cast<Wide>(o) + a.p_lo, s = a.s, d = a.d;
  Wide g = s, t = d;
  while (t != 0) {
    const Wide u = g % t;
    g = t, t = u;
  }
  if (q % g != 0)
    return run;
  const Wide m = s / g;
  const Wide r_star = (q / g) % m * inverse_mod((d / g) % m, m) % m; // products of values < m <= 2^63
  // r range from 0 <= q - r*d <= (i-1)*s, intersected with [0, k).
  const Wide r_lo = std::max<Wide>(0, ceil_div(q - (static_cast<Wide>(a.i) - 1) * s, d));
  const Wide r_hi = std::min<Wide>(a.k - 1, floor_div(q, d));
  if (r_hi < r_lo)
    return run;
  const Wide first = r_lo + ((r_star - r_lo) % m + m) % m; // the least r >= r_lo with r = r* (mod m)
  if (first > r_hi)
    return run;
  run.r0 = static_cast<int64_t>(first);
  run.i0 = static_cast<int64_t>((q - first * d) / s);
  run.count = static_cast<int64_t>((r_hi - first) / m + 1);
  run.dr = static_cast<int64_t>(m);
  run.di = -static_cast<int64_t>(d / g);
  return run;
}

// One axis of the rank-3 view: its sizes and, per output index, the taps and the padded-extent count.
struct Axis {
  int64_t in = 1, out = 1, k = 1;
  std::vector<TapRun> taps;    // [out]
  std::vector<int64_t> padded; // [out], pooling only
};

Axis make_axis(const ConvProblem& p, int j) {
  const AxisParams& a = p.axis3(j);
  Axis ax;
  ax.in = a.i;
  ax.out = p.out3(j);
  ax.k = a.k;
  const bool transposed = p.op() == Op::kConvTranspose;
  for (int64_t o = 0; o < ax.out; ++o) {
    ax.taps.push_back(transposed ? transposed_taps(a, o) : direct_taps(a, o));
    if (is_pool(p.op()))
      ax.padded.push_back(padded_extent_taps(a, o));
  }
  return ax;
}

// max with NaN winning: a NaN anywhere in the window makes the result NaN (PyTorch and ONNX agree).
double nan_max(double acc, double v) {
  if (std::isnan(acc))
    return acc;
  return std::isnan(v) || v > acc ? v : acc;
}

// Runs body(i) for i in [0, count) on `threads` threads (0: hardware_concurrency), each taking
// every T-th index (a static split).
template <typename Body> void for_each_index(int64_t count, int threads, const Body& body) {
  int64_t t_count = threads > 0 ? threads : static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  t_count = std::min(t_count, count);
  if (t_count <= 1) {
    for (int64_t i = 0; i < count; ++i)
      body(i);
    return;
  }
  std::vector<std::thread> pool;
  for (int64_t t = 0; t < t_count; ++t)
    pool.emplace_back([&body, t, t_count, count] {
      for (int64_t i = t; i < count; i += t_count)
        body(i);
    });
  for (std::thread& th : pool)
    th.join();
}

template <bool kMagnitude>
std::vector<double> evaluate(const ConvProblem& p, const float* x, const float* w, const float* bias, int threads) {
  std::vector<double> y(static_cast<size_t>(p.y_elements()), 0.0);
  if (y.empty())
    return y;
  const Op op = p.op();
  const bool pool = is_pool(op);
  const int64_t N = p.n(), C = p.c(), K = p.k(), G = pool ? 1 : p.groups();
  const int64_t Cg = C / G, Kg = K / G;
  const Axis ad = make_axis(p, 0), ah = make_axis(p, 1), aw = make_axis(p, 2);
  const int64_t in_sp = ad.in * ah.in * aw.in;
  const int64_t out_sp = ad.out * ah.out * aw.out;
  const int64_t k_sp = ad.k * ah.k * aw.k;
  auto val = [](double v) { return kMagnitude ? std::fabs(v) : v; };

  auto plane = [&](int64_t n, int64_t k) {
    double* yk = y.data() + (n * K + k) * out_sp;
    if (pool) {
      // Pooling is per channel: output channel k reads input channel k.
      const float* xc = x + (n * C + k) * in_sp;
      for (int64_t od = 0; od < ad.out; ++od)
        for (int64_t oh = 0; oh < ah.out; ++oh)
          for (int64_t ow = 0; ow < aw.out; ++ow) {
            const TapRun& td = ad.taps[od];
            const TapRun& th = ah.taps[oh];
            const TapRun& tw = aw.taps[ow];
            double acc = 0.0;
            if (kMagnitude || op == Op::kMaxPool) {
              acc = kMagnitude ? 0.0 : -std::numeric_limits<double>::infinity();
              for (int64_t ma = 0; ma < td.count; ++ma)
                for (int64_t mb = 0; mb < th.count; ++mb)
                  for (int64_t mc = 0; mc < tw.count; ++mc)
                    acc = nan_max(
                        acc, val(static_cast<double>(xc[(td.at(ma).i * ah.in + th.at(mb).i) * aw.in + tw.at(mc).i])));
            } else {
              for (int64_t ma = 0; ma < td.count; ++ma)
                for (int64_t mb = 0; mb < th.count; ++mb)
                  for (int64_t mc = 0; mc < tw.count; ++mc)
                    acc += static_cast<double>(xc[(td.at(ma).i * ah.in + th.at(mb).i) * aw.in + tw.at(mc).i]);
              // Every window overlaps the input (the arithmetic rejects any other), so the divisor is >= 1.
              // Per-axis counts multiplied in double: their product is at most the kernel size.
              const double divisor =
                  p.count_include_pad()
                      ? static_cast<double>(ad.padded[od]) * static_cast<double>(ah.padded[oh]) *
                            static_cast<double>(aw.padded[ow])
                      : static_cast<double>(td.count) * static_cast<double>(th.count) * static_cast<double>(tw.count);
              acc /= divisor;
            }
            yk[(od * ah.out + oh) * aw.out + ow] = acc;
          }
      return;
    }
    const int64_t g = k / Kg;
    for (int64_t c = g * Cg; c < (g + 1) * Cg; ++c) {
      const float* xc = x + (n * C + c) * in_sp;
      // Conv weights are K x C/g x R x S x T; transposed weights C x K/g x R x S x T.
      const float* wk = w + (op == Op::kConvTranspose ? (c * Kg + (k - g * Kg)) : (k * Cg + (c - g * Cg))) * k_sp;
      for (int64_t od = 0; od < ad.out; ++od)
        for (int64_t ma = 0; ma < ad.taps[od].count; ++ma)
          for (int64_t oh = 0; oh < ah.out; ++oh)
            for (int64_t mb = 0; mb < ah.taps[oh].count; ++mb) {
              const Tap a = ad.taps[od].at(ma), b = ah.taps[oh].at(mb);
              const float* xrow = xc + (a.i * ah.in + b.i) * aw.in;
              const float* wrow = wk + (a.r * ah.k + b.r) * aw.k;
              double* yrow = yk + (od * ah.out + oh) * aw.out;
              for (int64_t ow = 0; ow < aw.out; ++ow)
                for (int64_t mc = 0; mc < aw.taps[ow].count; ++mc) {
                  const Tap t = aw.taps[ow].at(mc);
                  yrow[ow] += val(static_cast<double>(xrow[t.i]) * static_cast<double>(wrow[t.r]));
                }
            }
    }
    if (bias != nullptr)
      for (int64_t o = 0; o < out_sp; ++o)
        yk[o] += val(static_cast<double>(bias[k]));
  };
  for_each_index(N * K, threads, [&](int64_t i) { plane(i / K, i % K); });
  return y;
}

} // namespace

std::vector<double> reference(const ConvProblem& p, const float* x, const float* w, const float* bias, int threads) {
  return evaluate<false>(p, x, w, bias, threads);
}

std::vector<double> reference_magnitude(const ConvProblem& p, const float* x, const float* w, const float* bias,
                                        int threads) {
  return evaluate<true>(p, x, w, bias, threads);
}

} // namespace convarith::oracle
