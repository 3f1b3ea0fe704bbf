// host/cpu/cpu_pool.cpp — "cpu_pool": max and average pooling, separable passes over direct loops.
//
// Per output element and axis, the window starts at o*s - p_lo and its taps are start + r*d.
// Taps inside the input form one range of r (tap_range); max takes the maximum over them
// (padding never wins; NaN wins: a NaN among the taps makes the output NaN, as in PyTorch and
// ONNX). Average divides by the number of in-input taps, or with count_include_pad by the taps
// inside the padded extent [-p_lo, i + p_hi): in ceil_mode the last window can reach past that
// extent and those taps do not count (PyTorch's rule).
// Three paths, chosen from the problem alone (never from the data):
//  - separable (pool_band_body), where its buffers fit: along W into a buffer of rows, then over
//    the (t, r) rows of each window; average only while each pass sums at most kSeqTaps terms;
//  - direct (pool_direct_body): rows of output columns, vectorized over the columns; only for
//    windows of at most kSeqTaps taps along W (and, average, in all);
//  - per window (pool_window_body): any window, one output at a time over its in-input taps only,
//    average by pairwise summation. Every loop visits only taps inside the input (clamped ranges,
//    tap_range, 64-bit and overflow-free), so time is bounded by the input and output sizes
//    whatever the kernel, stride, dilation and padding.
// Average error bound (u = 2^-24, S = the sum of |x| over the window's n in-input taps): the
// separable and direct paths add at most kSeqTaps terms in sequence per pass, |err| <= 2 (kSeqTaps -
// 1) u S; the per-window path sums each axis pairwise (blocks of kPairBlock in sequence), |err| <=
// (log2(n) + 3 kPairBlock) u S to first order: the error grows with log n, not n (a global window
// of 2^25 ones averages to exactly 1; a plain float sum stalls at 2^24). Max is exact.
// A task is a run of whole N x C planes, or (large planes, or few) one band of output rows of one
// plane; every output element is computed the same way whatever the split, so results are
// deterministic and independent of the thread count.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpu/cpu_ops.hpp"
#include "cpu/thread_pool.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#include <immintrin.h>
#define CONVARITH_POOL_X86 1
#endif

namespace convarith::detail {

Status cpu_pool_supports(const ConvProblem& p) {
  if (!is_pool(p.op()))
    return not_supported(std::string("cpu_pool runs max_pool and avg_pool only, not ") + op_name(p.op()));
  return Status::ok();
}

size_t cpu_pool_workspace(const ConvProblem&) {
  return 0;
}

namespace {

constexpr int64_t kRowChunk = 256;       // output columns accumulated at once in a stack buffer (direct path)
constexpr int64_t kBandFloats = 1 << 15; // separable path: W-pass buffer per task (128 KiB, stays in L2)
constexpr int64_t kExactCount = 1 << 24; // window counts below this are exact as float products
constexpr int64_t kTaskWork = 16384;     // outputs x taps per task before planes are grouped
constexpr int64_t kMinTasks = 16;        // fewer planes than this: split planes into bands of output rows
constexpr int64_t kDivPlane = 1 << 18;   // average: divisors kept per output element up to this plane size
constexpr int64_t kSeqTaps = 64;         // separable / direct paths: most terms summed in sequence per pass
constexpr int64_t kPairBlock = 8;        // per-window path: pairwise sums add runs of this many in sequence
constexpr int64_t kVecFloats = 16;       // separable path: rows are computed in whole vectors of this many columns

struct PoolGeometry {
  AxisParams ax[3];
  int64_t out[3];
  bool is_max;
  bool include_pad;
  // Separable path: padded D rows the windows reach; the W-pass buffer's row pitch.
  int64_t nd = 0;
  int64_t bp = 0;
  int64_t wp = 0;   // xp's length: a strided W pass's padded row, as ws phases of plen
  int64_t plen = 0; // strided W pass: one phase of the padded row (see pool_w_rows)
  int64_t lp = 0;   // strided W pass: output columns computed per row (OW rounded up to a vector, <= bp)
};

// The max step of every path: the larger of a and b, b on ties (of +0 and -0 the later), and NaN
// wins: a NaN accumulator stays, a NaN b replaces it. So any grouping of a window's taps returns
// the same value: NaN if a tap is NaN, else the maximum (of equal maxima the last in tap order).
// Vectorizes as compare, unordered-compare, or, blend.
inline float max_step(float a, float b) {
  return (a > b || a != a) ? a : b;
}

#ifdef CONVARITH_POOL_X86
// max_step on 8 lanes: x86's max (a > b ? a : b, b when either is NaN), then a NaN a kept.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 max_step8(__m256 a, __m256 b) {
  return _mm256_blendv_ps(_mm256_max_ps(a, b), a, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
}

// The 3-tap stride-2 W fold of output columns [ow0, ow1) of one row, 8 at a time: dr[ow] = max_step(max_step(
// xr[c], xr[c + 1]), xr[c + 2]) with c = 2 ow - p_lo (every tap inside the row). Four loads give the 16 + 2
// columns of 8 outputs; in-lane shuffles split them into the three taps (outputs in the order 0 1 4 5 2 3 6 7), and
// one permute puts the result back in order. Returns the first column not done (the rest: scalar, the caller); a
// block is taken only when its loads stay inside the row (they read one column past the last tap).
__attribute__((target("avx2,fma"))) int64_t max3s2_avx2(const float* xr, float* dr, int64_t ow0, int64_t ow1,
                                                        int64_t p_lo, int64_t w_n) {
  int64_t ow = ow0;
  for (; ow + 8 <= ow1 && 2 * ow - p_lo + 18 <= w_n; ow += 8) {
    const float* src = xr + (2 * ow - p_lo);
    const __m256 v0 = _mm256_loadu_ps(src), v1 = _mm256_loadu_ps(src + 8);
    const __m256 v2 = _mm256_loadu_ps(src + 2), v3 = _mm256_loadu_ps(src + 10);
    const __m256 t0 = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 t1 = _mm256_shuffle_ps(v0, v1, _MM_SHUFFLE(3, 1, 3, 1));
    const __m256 t2 = _mm256_shuffle_ps(v2, v3, _MM_SHUFFLE(2, 0, 2, 0));
    const __m256 m = max_step8(max_step8(t0, t1), t2);
    _mm256_storeu_ps(dr + ow, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(m), _MM_SHUFFLE(3, 1, 2, 0))));
  }
  return ow;
}
#endif

// One N x C plane's output rows [oh0, oh1) (every od), directly: the taps of a window are walked as
// (t, r) input rows times the s taps, each a unit- or s-strided run over the output columns, so the
// inner loop has no bounds checks and vectorizes. This is the exact definition the separable path
// must reproduce. Only for windows of at most kSeqTaps taps along W (the s loop walks them all).
CONVARITH_CPU_INLINE void pool_direct_body(const PoolGeometry& g, const float* x, float* y, int64_t oh0, int64_t oh1) {
  const AxisParams &ad = g.ax[0], &ah = g.ax[1], &aw = g.ax[2];
  float acc[kRowChunk];
  for (int64_t od = 0; od < g.out[0]; ++od) {
    const int64_t sd = od * ad.s - ad.p_lo;
    const TapRange td = tap_range(ad.k, ad.d, sd, ad.i);
    const TapRange pd = tap_range(ad.k, ad.d, sd + ad.p_lo, ad.i + ad.p_lo + ad.p_hi);
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t sh = oh * ah.s - ah.p_lo;
      const TapRange th = tap_range(ah.k, ah.d, sh, ah.i);
      const TapRange ph = tap_range(ah.k, ah.d, sh + ah.p_lo, ah.i + ah.p_lo + ah.p_hi);
      float* yrow = y + (od * g.out[1] + oh) * g.out[2];
      for (int64_t ow0 = 0; ow0 < g.out[2]; ow0 += kRowChunk) {
        const int64_t len = std::min(kRowChunk, g.out[2] - ow0);
        std::fill(acc, acc + len, g.is_max ? -std::numeric_limits<float>::infinity() : 0.0f);
        for (int64_t t = td.lo; t < td.hi; ++t) {
          for (int64_t r = th.lo; r < th.hi; ++r) {
            const float* xrow = x + ((sd + t * ad.d) * ah.i + sh + r * ah.d) * aw.i;
            for (int64_t s = 0; s < aw.k; ++s) {
              const int64_t off = s * aw.d - aw.p_lo; // input column of output column ow: ow*stride + off
              const TapRange v = tap_range(g.out[2], aw.s, off, aw.i);
              const int64_t lo = std::clamp(v.lo, ow0, ow0 + len), hi = std::clamp(v.hi, lo, ow0 + len);
              // acc holds columns [ow0, ow0 + len): index it as acc[ow - ow0]; forming acc - ow0 would point
              // before the array, which is undefined (UBSan, found by fuzz/fuzz_problem).
              if (g.is_max) {
                if (aw.s == 1) {
                  for (int64_t ow = lo; ow < hi; ++ow)
                    acc[ow - ow0] = max_step(acc[ow - ow0], xrow[ow + off]);
                } else if (aw.s == 2) { // a literal stride lets the vectorizer use even/odd shuffles
                  for (int64_t ow = lo; ow < hi; ++ow)
                    acc[ow - ow0] = max_step(acc[ow - ow0], xrow[ow * 2 + off]);
                } else {
                  for (int64_t ow = lo; ow < hi; ++ow)
                    acc[ow - ow0] = max_step(acc[ow - ow0], xrow[ow * aw.s + off]);
                }
              } else {
                if (aw.s == 1) {
                  for (int64_t ow = lo; ow < hi; ++ow)
                    acc[ow - ow0] += xrow[ow + off];
                } else if (aw.s == 2) {
                  for (int64_t ow = lo; ow < hi; ++ow)
                    acc[ow - ow0] += xrow[ow * 2 + off];
                } else {
                  for (int64_t ow = lo; ow < hi; ++ow)
                    acc[ow - ow0] += xrow[ow * aw.s + off];
                }
              }
            }
          }
        }
        if (g.is_max) {
          std::copy(acc, acc + len, yrow + ow0);
          continue;
        }
        const int64_t rows = g.include_pad ? (pd.hi - pd.lo) * (ph.hi - ph.lo) : (td.hi - td.lo) * (th.hi - th.lo);
        for (int64_t q = 0; q < len; ++q) {
          const int64_t sw = (ow0 + q) * aw.s - aw.p_lo;
          const TapRange tw = g.include_pad ? tap_range(aw.k, aw.d, sw + aw.p_lo, aw.i + aw.p_lo + aw.p_hi)
                                            : tap_range(aw.k, aw.d, sw, aw.i);
          yrow[ow0 + q] = acc[q] / static_cast<float>(rows * (tw.hi - tw.lo));
        }
      }
    }
  }
}
CONVARITH_CPU_MULTIVERSION(pool_direct, (const PoolGeometry& g, const float* x, float* y, int64_t oh0, int64_t oh1),
                           (g, x, y, oh0, oh1))

// f(lo) + ... + f(hi - 1), pairwise: halves summed recursively down to runs of kPairBlock summed
// in sequence from +0 (an all -0 window gives +0, as on the other paths). |err| <= (kPairBlock - 1 +
// ceil(log2(n / kPairBlock))) u sum |f| for n = hi - lo terms; the recursion is log2(n) deep.
template <typename F> float pairwise_sum(int64_t lo, int64_t hi, const F& f) {
  if (hi - lo <= kPairBlock) {
    float acc = 0.0f;
    for (int64_t q = lo; q < hi; ++q)
      acc += f(q);
    return acc;
  }
  const int64_t mid = lo + (hi - lo) / 2;
  return pairwise_sum(lo, mid, f) + pairwise_sum(mid, hi, f);
}

// Output rows [oh0, oh1) of one plane, one output element at a time over the taps of its window
// that land inside the input (each axis's range from tap_range): any window size, time bounded by
// the output size times the in-input taps. Max folds with max_step in (t, r, s) order; average
// sums each axis pairwise (pairwise_sum of pairwise sums). Indices, not pointers, reach x.
void pool_window(const PoolGeometry& g, const float* x, float* y, int64_t oh0, int64_t oh1) {
  const AxisParams &ad = g.ax[0], &ah = g.ax[1], &aw = g.ax[2];
  auto taps = [&](const AxisParams& a, int64_t start) { return tap_range(a.k, a.d, start, a.i); };
  auto padded = [&](const AxisParams& a, int64_t start) {
    return tap_range(a.k, a.d, start + a.p_lo, a.i + a.p_lo + a.p_hi);
  };
  for (int64_t od = 0; od < g.out[0]; ++od) {
    const int64_t sd = od * ad.s - ad.p_lo;
    const TapRange td = taps(ad, sd);
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t sh = oh * ah.s - ah.p_lo;
      const TapRange th = taps(ah, sh);
      float* yrow = y + (od * g.out[1] + oh) * g.out[2];
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        const int64_t sw = ow * aw.s - aw.p_lo;
        const TapRange tw = taps(aw, sw);
        // Input index of tap (t, r, s): ((sd + t d_D) H + sh + r d_H) W + sw + s d_W, all inside x.
        auto row_base = [&](int64_t t, int64_t r) { return ((sd + t * ad.d) * ah.i + sh + r * ah.d) * aw.i + sw; };
        if (g.is_max) {
          float acc = -std::numeric_limits<float>::infinity();
          for (int64_t t = td.lo; t < td.hi; ++t)
            for (int64_t r = th.lo; r < th.hi; ++r) {
              const int64_t base = row_base(t, r);
              for (int64_t s = tw.lo; s < tw.hi; ++s)
                acc = max_step(acc, x[base + s * aw.d]);
            }
          yrow[ow] = acc;
          continue;
        }
        const float sum = pairwise_sum(td.lo, td.hi, [&](int64_t t) {
          return pairwise_sum(th.lo, th.hi, [&](int64_t r) {
            const int64_t base = row_base(t, r);
            return pairwise_sum(tw.lo, tw.hi, [&](int64_t s) { return x[base + s * aw.d]; });
          });
        });
        int64_t count = 0;
        if (g.include_pad) {
          const TapRange pd = padded(ad, sd), ph = padded(ah, sh), pw = padded(aw, sw);
          count = (pd.hi - pd.lo) * (ph.hi - ph.lo) * (pw.hi - pw.lo); // at most the kernel size
        } else {
          count = (td.hi - td.lo) * (th.hi - th.lo) * (tw.hi - tw.lo); // at most the input plane
        }
        yrow[ow] = sum / static_cast<float>(count);
      }
    }
  }
}

// dr[ow] for ow in [lo, hi): the fold over s, in order, of xr[ow + s * dilation + base] (the flat W pass: stride 1).
CONVARITH_CPU_INLINE void pool_fold_row(const PoolGeometry& g, const float* __restrict xr, float* __restrict dr,
                                        int64_t lo, int64_t hi, int64_t base) {
  const AxisParams& aw = g.ax[2];
  for (int64_t s = 0; s < aw.k; ++s) {
    const int64_t off = s * aw.d + base;
    if (s == 0) {
      for (int64_t ow = lo; ow < hi; ++ow)
        dr[ow] = xr[ow + off];
    } else if (g.is_max) {
      for (int64_t ow = lo; ow < hi; ++ow)
        dr[ow] = max_step(dr[ow], xr[ow + off]);
    } else {
      for (int64_t ow = lo; ow < hi; ++ow)
        dr[ow] += xr[ow + off];
    }
  }
}

// dr[ow] for ow in [0, g.lp): the fold over s, in order, of the phase-major padded row xp (pool_w_rows): tap s
// reads phase (s * dilation) % stride at (s * dilation) / stride + ow, unit stride.
CONVARITH_CPU_INLINE void pool_fold_phases(const PoolGeometry& g, const float* __restrict xp, float* __restrict dr) {
  const AxisParams& aw = g.ax[2];
  const int64_t lp = g.lp;
  for (int64_t s = 0; s < aw.k; ++s) {
    const int64_t o = s * aw.d;
    const float* __restrict src = xp + (o % aw.s) * g.plen + o / aw.s;
    if (s == 0) {
      for (int64_t ow = 0; ow < lp; ++ow)
        dr[ow] = src[ow];
    } else if (g.is_max) {
      for (int64_t ow = 0; ow < lp; ++ow)
        dr[ow] = max_step(dr[ow], src[ow]);
    } else {
      for (int64_t ow = 0; ow < lp; ++ow)
        dr[ow] += src[ow];
    }
  }
}

// W pass of `rows` input rows (pitch W) into dst (pitch g.bp): dst[ow] = the fold over s, in order,
// of the taps x[ow * stride + s * dilation - p_lo], padding taps being the identity. Columns whose
// taps all lie inside the row ([owa, owb)) run as unit- or literal-stride loops; with stride 1 and
// pitch W they run as one flat loop over all rows (its row-crossing columns are outside [owa, owb)
// and rewritten below). The border columns fold their in-row taps one by one: skipping an identity
// tap changes no value (max: -inf never wins; avg: a -0 partial sum only ever meets the +0 start of
// the second pass).
CONVARITH_CPU_INLINE void pool_w_rows(const PoolGeometry& g, const float* x, float* dst, int64_t rows, float* xp) {
  const AxisParams& aw = g.ax[2];
  const int64_t w_n = aw.i, ow_n = g.out[2], bp = g.bp;
  // Interior columns [owa, owb): every tap inside the row. Without any, all columns are border.
  const int64_t last = w_n - 1 - (aw.k - 1) * aw.d + aw.p_lo; // largest in-row start of a window
  int64_t owa = ceil_div(aw.p_lo, aw.s), owb = last < 0 ? 0 : std::min(ow_n, last / aw.s + 1);
  if (owa >= owb)
    owa = owb = ow_n;
  const bool flat = aw.s == 1 && bp == w_n;
  const float identity = g.is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
  // Phase ph of a padded row holds input columns j * stride + ph - p_lo for j in [ja, jb): the same in every row,
  // so computed once for the first kPhases phases (four divisions a row took ~a quarter of ResNet-50's 3x3/2 max
  // pool on an AMD EPYC).
  constexpr int64_t kPhases = 8;
  int64_t ja_of[kPhases], jb_of[kPhases];
  const auto phase_range = [&](int64_t ph, int64_t* ja, int64_t* jb) {
    *ja = std::min(g.plen, ceil_div(std::max<int64_t>(0, aw.p_lo - ph), aw.s));
    *jb = std::clamp(ceil_div(std::max<int64_t>(0, w_n + aw.p_lo - ph), aw.s), *ja, g.plen);
  };
  if (!flat)
    for (int64_t ph = 0; ph < std::min(aw.s, kPhases); ++ph)
      phase_range(ph, &ja_of[ph], &jb_of[ph]);
  // Max over 3 taps at stride 2 (ResNet-50's and GoogLeNet's 3x3/2 max pools): each output column folds its three
  // input columns straight from the row, in tap order as the phase fold does (the border columns over their in-row
  // taps only, the identity where none is), without the phase copy.
  const bool max3s2 = !flat && g.is_max && aw.s == 2 && aw.k == 3 && aw.d == 1;
#ifdef CONVARITH_POOL_X86
  const bool avx2 = max3s2 && cpu_isa() != CpuIsa::kBaseline; // AVX-512 machines have AVX2
#endif
  const int64_t oa = std::min(ow_n, ceil_div(aw.p_lo, 2)); // from here on the first tap is inside the row ...
  const int64_t ob = w_n - 3 + aw.p_lo < 0 ? oa : std::clamp((w_n - 3 + aw.p_lo) / 2 + 1, oa, ow_n); // ... the last
  for (int64_t q = 0; q < (flat ? 1 : rows); ++q) {
    const float* __restrict xr = x + q * w_n;
    float* __restrict dr = dst + q * bp;
    if (max3s2) {
      for (int64_t e = 0; e < oa + (ow_n - ob); ++e) {
        const int64_t ow = e < oa ? e : ob + (e - oa);
        float acc = identity;
        bool any = false;
        for (int64_t t = 0; t < 3; ++t) {
          const int64_t c = 2 * ow + t - aw.p_lo;
          if (c >= 0 && c < w_n) {
            acc = any ? max_step(acc, xr[c]) : xr[c];
            any = true;
          }
        }
        dr[ow] = acc;
      }
      int64_t ow = oa;
#ifdef CONVARITH_POOL_X86
      if (avx2)
        ow = max3s2_avx2(xr, dr, oa, ob, aw.p_lo, w_n);
#endif
      for (; ow < ob; ++ow)
        dr[ow] = max_step(max_step(xr[2 * ow - aw.p_lo], xr[2 * ow + 1 - aw.p_lo]), xr[2 * ow + 2 - aw.p_lo]);
      std::fill(dr + ow_n, dr + g.lp, identity);
      continue;
    }
    if (!flat) {
      // Strided rows fold from a copy between identities (padding, ceil-mode overhang), stored as
      // its stride phases: padded column j * stride + ph is xp[ph * plen + j], so tap s of output
      // column ow, padded column ow * stride + s * dilation, is a unit-stride run of phase
      // (s * dilation) % stride from (s * dilation) / stride on: every tap is one contiguous load per
      // vector of outputs. The fold runs over g.lp columns (a whole number of vectors; the columns
      // past OW read identities and are never read back), so no scalar remainder is left.
      const int64_t st = aw.s, plen = g.plen;
      for (int64_t ph = 0; ph < st; ++ph) {
        float* __restrict pr = xp + ph * plen;
        // Padded column j * st + ph is input column j * st + ph - p_lo: inside the row for j in [ja, jb).
        int64_t ja, jb;
        if (ph < kPhases) {
          ja = ja_of[ph];
          jb = jb_of[ph];
        } else {
          phase_range(ph, &ja, &jb);
        }
        std::fill(pr, pr + ja, identity);
        const float* __restrict xs = xr + (ja * st + ph - aw.p_lo);
        if (st == 1) {
          std::copy(xs, xs + (jb - ja), pr + ja);
        } else if (st == 2) {
          for (int64_t j = 0; j < jb - ja; ++j)
            pr[ja + j] = xs[2 * j];
        } else {
          for (int64_t j = 0; j < jb - ja; ++j)
            pr[ja + j] = xs[st * j];
        }
        std::fill(pr + jb, pr + plen, identity);
      }
      pool_fold_phases(g, xp, dr);
      continue;
    }
    // Flat: j = row * W + ow over [owa, (rows - 1) * W + owb); every tap index stays inside the rows
    // (found by ASan: without interior columns that range must be empty, not [OW, ...)).
    if (owa < owb)
      pool_fold_row(g, xr, dr, owa, (rows - 1) * w_n + owb, -aw.p_lo);
  }
  if (!flat)
    return;
  // Border columns, column by column: their tap ranges are the same in every row.
  for (int64_t e = 0; e < owa + (ow_n - owb); ++e) {
    const int64_t ow = e < owa ? e : owb + (e - owa);
    const int64_t sw = ow * aw.s - aw.p_lo;
    const TapRange tw = tap_range(aw.k, aw.d, sw, w_n);
    for (int64_t q = 0; q < rows; ++q) {
      const int64_t base = q * w_n + sw; // an index: x + base may point before x (sw < 0)
      float acc = identity;
      for (int64_t s = tw.lo; s < tw.hi; ++s)
        acc = s == tw.lo ? x[base + s * aw.d] : g.is_max ? max_step(acc, x[base + s * aw.d]) : acc + x[base + s * aw.d];
      dst[q * bp + ow] = acc;
    }
  }
}

// Output rows [oh0, oh1) of one plane, separably: the W pass folds every input row the band's
// windows reach into buf (padded D rows x padded H rows x pitch g.bp; padding rows hold the
// identity), then each output row folds its (t, r) rows of buf in order. Max folds with max_step,
// so the grouping (s within a row, then rows) returns what the flat (t, r, s) fold returns: NaN if
// a tap is NaN, else the maximum, and of equal maxima (+0, -0) the last. Padding taps are -inf
// (max: never wins) or 0 (avg: adds nothing), and the divisor is the direct path's. Sums are
// regrouped, so random-float averages may differ in the last bits; sums of small integers are
// exact in any order.
// The H (and D) pass of one run for N source rows at once: yr[j] = the fold over the rows in order of src[i][j]
// (average: from +0, then divided by div[j] when div is given), each output loaded and stored once (row by row,
// every output was stored N + 1 times: those stores were most of an Inception 3x3 average pool's time).
template <int N>
CONVARITH_CPU_INLINE void pool_fold_rows(bool is_max, const float* const* src, int64_t len, float* __restrict yr,
                                         const float* __restrict div) {
  const float* __restrict s0 = src[0];
  if (is_max) {
    for (int64_t j = 0; j < len; ++j) {
      float v = s0[j];
#pragma GCC unroll 4
      for (int i = 1; i < N; ++i)
        v = max_step(v, src[i][j]);
      yr[j] = v;
    }
  } else if (div != nullptr) {
    for (int64_t j = 0; j < len; ++j) {
      float v = 0.0f + s0[j];
#pragma GCC unroll 4
      for (int i = 1; i < N; ++i)
        v += src[i][j];
      yr[j] = v / div[j];
    }
  } else {
    for (int64_t j = 0; j < len; ++j) {
      float v = 0.0f + s0[j];
#pragma GCC unroll 4
      for (int i = 1; i < N; ++i)
        v += src[i][j];
      yr[j] = v;
    }
  }
}

CONVARITH_CPU_INLINE void pool_band_body(const PoolGeometry& g, const float* x, float* y, int64_t oh0, int64_t oh1,
                                         float* buf, float* xp, const float* divp, const float* cwf) {
  const AxisParams &ad = g.ax[0], &ah = g.ax[1], &aw = g.ax[2];
  const int64_t ow_n = g.out[2], nb = oh1 - oh0, bp = g.bp;
  const int64_t nh = (nb - 1) * ah.s + (ah.k - 1) * ah.d + 1; // padded H rows from oh0 * stride on
  const float identity = g.is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
  // Padded rows [pa, pb) of the band are input rows h = oh0 * stride + ph - p_lo.
  const int64_t pa = std::clamp(ah.p_lo - oh0 * ah.s, int64_t{0}, nh);
  const int64_t pb = std::clamp(ah.p_lo + ah.i - oh0 * ah.s, pa, nh);
  for (int64_t pd = 0; pd < g.nd; ++pd) {
    const int64_t d = pd - ad.p_lo;
    float* slab = buf + pd * nh * bp;
    if (d < 0 || d >= ad.i || pb == pa) {
      std::fill(slab, slab + nh * bp, identity);
      continue;
    }
    std::fill(slab, slab + pa * bp, identity);
    std::fill(slab + pb * bp, slab + nh * bp, identity);
    const float* xs = x + (d * ah.i + oh0 * ah.s + pa - ah.p_lo) * aw.i;
    pool_w_rows(g, xs, slab + pa * bp, pb - pa, xp);
  }
  // With stride 1 along H and pitch OW the band's output rows read consecutive buf rows: one flat
  // run per tap. Otherwise each output row folds its rows over whole vectors of columns (as far as
  // the pitch allows) into xp, free now, and its OW columns are copied out: no scalar remainder.
  const bool flat = ah.s == 1 && bp == ow_n;
  const int64_t runs = flat ? 1 : nb, len = flat ? nb * ow_n : std::min(round_up(ow_n, kVecFloats), bp);
  const int64_t nrows = ad.k * ah.k;
  for (int64_t od = 0; od < g.out[0]; ++od) {
    // Runs of 2 or 3 rows fold them at once (flat runs divide too, and then not again below).
    const bool fused = nrows == 2 || nrows == 3;
    const float* fdiv = fused && flat && !g.is_max && divp != nullptr ? divp + (od * g.out[1] + oh0) * ow_n : nullptr;
    for (int64_t q = 0; q < runs; ++q) {
      float* __restrict yout = y + (od * g.out[1] + oh0 + q) * ow_n;
      float* __restrict yr = flat ? yout : xp;
      if (fused) {
        const float* src[3];
        for (int64_t t = 0, i = 0; t < ad.k; ++t)
          for (int64_t r = 0; r < ah.k; ++r, ++i)
            src[i] = buf + ((od * ad.s + t * ad.d) * nh + q * ah.s + r * ah.d) * bp;
        if (nrows == 3)
          pool_fold_rows<3>(g.is_max, src, len, yr, fdiv);
        else
          pool_fold_rows<2>(g.is_max, src, len, yr, fdiv);
        if (!flat)
          std::copy(yr, yr + ow_n, yout);
        continue;
      }
      for (int64_t t = 0; t < ad.k; ++t) {
        for (int64_t r = 0; r < ah.k; ++r) {
          const float* __restrict src = buf + ((od * ad.s + t * ad.d) * nh + q * ah.s + r * ah.d) * bp;
          if (t == 0 && r == 0) {
            if (g.is_max) {
              for (int64_t j = 0; j < len; ++j)
                yr[j] = src[j];
            } else {
              for (int64_t j = 0; j < len; ++j)
                yr[j] = 0.0f + src[j]; // the direct path's +0 start: an all -0 window gives +0
            }
          } else if (g.is_max) {
            for (int64_t j = 0; j < len; ++j)
              yr[j] = max_step(yr[j], src[j]);
          } else {
            for (int64_t j = 0; j < len; ++j)
              yr[j] += src[j];
          }
        }
      }
      if (!flat)
        std::copy(yr, yr + ow_n, yout);
    }
    if (g.is_max)
      continue;
    float* __restrict yb = y + (od * g.out[1] + oh0) * ow_n;
    if (fdiv != nullptr)
      continue;            // divided as they were summed
    if (divp != nullptr) { // the direct path's divisors, one per output element
      const float* __restrict db = divp + (od * g.out[1] + oh0) * ow_n;
      for (int64_t j = 0; j < nb * ow_n; ++j)
        yb[j] = yb[j] / db[j];
      continue;
    }
    // float(rows) * float(columns) is the direct path's float(rows * columns): both below 2^24.
    const int64_t sd = od * ad.s - ad.p_lo;
    const TapRange td =
        g.include_pad ? tap_range(ad.k, ad.d, sd + ad.p_lo, ad.i + ad.p_lo + ad.p_hi) : tap_range(ad.k, ad.d, sd, ad.i);
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      const int64_t sh = oh * ah.s - ah.p_lo;
      const TapRange th = g.include_pad ? tap_range(ah.k, ah.d, sh + ah.p_lo, ah.i + ah.p_lo + ah.p_hi)
                                        : tap_range(ah.k, ah.d, sh, ah.i);
      const float rows = static_cast<float>((td.hi - td.lo) * (th.hi - th.lo));
      float* __restrict yrow = y + (od * g.out[1] + oh) * ow_n;
      for (int64_t ow = 0; ow < ow_n; ++ow)
        yrow[ow] = yrow[ow] / (rows * cwf[ow]);
    }
  }
}
CONVARITH_CPU_MULTIVERSION(pool_band,
                           (const PoolGeometry& g, const float* x, float* y, int64_t oh0, int64_t oh1, float* buf,
                            float* xp, const float* divp, const float* cwf),
                           (g, x, y, oh0, oh1, buf, xp, divp, cwf))

} // namespace

Status cpu_pool_run(const KernelArgs& args) {
  if (args.problem == nullptr)
    return invalid_argument("cpu_pool: KernelArgs.problem is null");
  const ConvProblem& p = *args.problem;
  if (p.n() == 0)
    return Status::ok();
  CONVARITH_RETURN_IF_ERROR(cpu_pool_supports(p));
  CONVARITH_RETURN_IF_ERROR(check_cpu_args(args, "cpu_pool", 0));
  PoolGeometry g;
  bool separable = p.kernel_spatial() < kExactCount;
  for (int j = 0; j < 3; ++j) {
    g.ax[j] = p.axis3(j);
    g.out[j] = p.out3(j);
    separable = separable && g.ax[j].p_lo >= 0 && g.ax[j].p_hi >= 0 && g.out[j] > 0;
  }
  g.is_max = p.op() == Op::kMaxPool;
  // Sequential sums stay short (the error bound in the opening comment); the direct path's s loop
  // walks every W tap, so it only takes short W windows. Everything else runs per window.
  const int64_t kw = g.ax[2].k, kdh = sat_mul(g.ax[0].k, g.ax[1].k);
  separable = separable && (g.is_max || (kw <= kSeqTaps && kdh <= kSeqTaps));
  const bool direct = kw <= kSeqTaps && (g.is_max || p.kernel_spatial() <= kSeqTaps);
  g.include_pad = p.count_include_pad();
  const AxisParams &ad = g.ax[0], &ah = g.ax[1], &aw = g.ax[2];
  const int64_t planes = p.n() * p.c(), in_plane = p.in_spatial(), out_plane = p.out_spatial();
  if (planes == 0 || out_plane == 0)
    return Status::ok();
  // Padded extents the windows reach: (o - 1) * s + (k - 1) * d + 1 (saturating: huge sizes go direct).
  auto reach = [](const AxisParams& a, int64_t o) {
    return sat_add(sat_add(sat_mul(o - 1, a.s), sat_mul(a.k - 1, a.d)), 1);
  };
  const int64_t h_fixed = sat_add(sat_mul(ah.k - 1, ah.d), 1); // padded H rows of a one-row band
  if (separable) {
    g.nd = reach(ad, g.out[0]);
    // Stride 1 with OW <= W: the W-pass rows keep the input's pitch, so the W pass runs flat.
    // Otherwise the W pass is strided (pool_w_rows): g.lp = OW rounded up to a vector, each of the stride's phases
    // of the padded row long enough for the row and for every tap's run of g.lp columns.
    const bool w_flat = aw.s == 1 && g.out[2] <= aw.i;
    g.lp = round_up(g.out[2], kVecFloats);
    g.bp = w_flat ? aw.i : g.lp;
    const int64_t row = std::max(sat_add(aw.i, aw.p_lo), reach(aw, g.out[2]));
    g.plen = std::max(ceil_div(row, aw.s), sat_add(g.lp, sat_mul(aw.k - 1, aw.d) / aw.s));
    g.wp = std::max(sat_mul(g.plen, aw.s), g.lp);
    separable = sat_mul(sat_mul(g.nd, h_fixed), g.bp) <= kBandFloats && g.wp <= kBandFloats;
  }
  // Work split: whole planes per task while there are enough of them, else bands of output rows
  // (every od) so the threads share a plane; the separable path also bounds a band by its buffer.
  // Each output element is computed the same way whatever the split, but where a band starts
  // decides which of a loop's vector or remainder code adds its terms, and that picks between the
  // signs of two NaNs (x86 returns the first operand's): the split depends on the problem only.
  const int slots = ThreadPool::instance().max_slots();
  const int64_t oh_n = g.out[1];
  int64_t band_rows = oh_n;
  if (separable) {
    const int64_t nh_max = kBandFloats / (g.nd * g.bp);
    band_rows = std::min(oh_n, (nh_max - h_fixed) / ah.s + 1);
  }
  if (planes < kMinTasks) {
    const int64_t per_plane = ceil_div(kMinTasks, planes);
    band_rows = std::min(band_rows, std::max<int64_t>(std::min<int64_t>(4, oh_n), ceil_div(oh_n, per_plane)));
  }
  const int64_t bands = ceil_div(oh_n, band_rows);
  const int64_t planes_per_task =
      bands > 1 ? 1 : std::max<int64_t>(1, kTaskWork / std::max<int64_t>(1, sat_mul(out_plane, p.kernel_spatial())));
  const int64_t plane_tasks = ceil_div(planes, planes_per_task);
  // Scratch: a band buffer per slot, then (average) the divisor of every output element of a plane
  // when that is small, else the per-column tap counts (64-byte aligned starts).
  const bool avg = separable && !g.is_max;
  const bool div_plane = avg && out_plane <= kDivPlane;
  const int64_t band_floats = separable ? round_up(g.nd * ((band_rows - 1) * ah.s + h_fixed) * g.bp, 16) : 0;
  const int64_t buf_floats = separable ? band_floats + round_up(g.wp, 16) : 0;
  const int64_t div_floats = div_plane ? out_plane : avg ? g.out[2] : 0;
  std::vector<float> scratch(separable ? static_cast<size_t>(buf_floats * slots + div_floats + 16) : 0);
  float* base = separable ? aligned_workspace(scratch.data()) : nullptr;
  float* divs = separable ? base + buf_floats * slots : nullptr;
  if (avg) {
    // Taps per output element, counted as the direct path counts them.
    auto taps = [&](const AxisParams& a, int64_t o) {
      const int64_t st = o * a.s - a.p_lo;
      const TapRange tr =
          g.include_pad ? tap_range(a.k, a.d, st + a.p_lo, a.i + a.p_lo + a.p_hi) : tap_range(a.k, a.d, st, a.i);
      return tr.hi - tr.lo;
    };
    std::vector<int64_t> cw(static_cast<size_t>(g.out[2]));
    for (int64_t ow = 0; ow < g.out[2]; ++ow)
      cw[static_cast<size_t>(ow)] = taps(aw, ow);
    if (div_plane) {
      for (int64_t od = 0; od < g.out[0]; ++od) {
        for (int64_t oh = 0; oh < oh_n; ++oh) {
          const int64_t rows = taps(ad, od) * taps(ah, oh);
          float* drow = divs + (od * oh_n + oh) * g.out[2];
          for (int64_t ow = 0; ow < g.out[2]; ++ow)
            drow[ow] = static_cast<float>(rows * cw[static_cast<size_t>(ow)]);
        }
      }
    } else {
      for (int64_t ow = 0; ow < g.out[2]; ++ow)
        divs[ow] = static_cast<float>(cw[static_cast<size_t>(ow)]);
    }
  }
  auto run = [&](int64_t task, int slot) {
    const int64_t pt = task / bands, band = task % bands;
    const int64_t first = pt * planes_per_task, last = std::min(planes, first + planes_per_task);
    const int64_t oh0 = band * band_rows, oh1 = std::min(oh_n, oh0 + band_rows);
    for (int64_t plane = first; plane < last; ++plane) {
      const float* x = args.x + plane * in_plane;
      float* y = args.y + plane * out_plane;
      if (separable) {
        float* buf = base + slot * buf_floats;
        pool_band(g, x, y, oh0, oh1, buf, buf + band_floats, div_plane ? divs : nullptr, divs);
      } else if (direct) {
        pool_direct(g, x, y, oh0, oh1);
      } else {
        pool_window(g, x, y, oh0, oh1);
      }
    }
  };
  ThreadPool::instance().parallel_for(plane_tasks * bands, run);
  return Status::ok();
}

} // namespace convarith::detail
