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

// One axis of the rank-3 view: its sizes and, per output index, the taps and the padded-extent count.
struct Axis {
  int64_t in = 1, out = 1, k = 1;
  std::vector<std::vector<Tap>> taps; // [out]
  std::vector<int64_t> padded;        // [out], pooling only
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
            const std::vector<Tap>& td = ad.taps[od];
            const std::vector<Tap>& th = ah.taps[oh];
            const std::vector<Tap>& tw = aw.taps[ow];
            double acc = 0.0;
            if (kMagnitude || op == Op::kMaxPool) {
              acc = kMagnitude ? 0.0 : -std::numeric_limits<double>::infinity();
              for (const Tap& a : td)
                for (const Tap& b : th)
                  for (const Tap& c : tw)
                    acc = std::max(acc, val(static_cast<double>(xc[(a.i * ah.in + b.i) * aw.in + c.i])));
            } else {
              for (const Tap& a : td)
                for (const Tap& b : th)
                  for (const Tap& c : tw)
                    acc += static_cast<double>(xc[(a.i * ah.in + b.i) * aw.in + c.i]);
              // Every window overlaps the input (the arithmetic rejects any other), so the divisor is >= 1.
              const int64_t divisor = p.count_include_pad() ? ad.padded[od] * ah.padded[oh] * aw.padded[ow]
                                                            : static_cast<int64_t>(td.size() * th.size() * tw.size());
              acc /= static_cast<double>(divisor);
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
        for (const Tap& a : ad.taps[od])
          for (int64_t oh = 0; oh < ah.out; ++oh)
            for (const Tap& b : ah.taps[oh]) {
              const float* xrow = xc + (a.i * ah.in + b.i) * aw.in;
              const float* wrow = wk + (a.r * ah.k + b.r) * aw.k;
              double* yrow = yk + (od * ah.out + oh) * aw.out;
              for (int64_t ow = 0; ow < aw.out; ++ow)
                for (const Tap& t : aw.taps[ow])
                  yrow[ow] += val(static_cast<double>(xrow[t.i]) * static_cast<double>(wrow[t.r]));
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
