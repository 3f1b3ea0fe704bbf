// kernels/kernel_taps.cuh — the taps of one axis that land inside a range, and a pairwise float sum,
// for the kernel bodies (device and executor alike).
//
// clamp_taps: kernels loop over [lo, hi) instead of walking every tap and skipping those in padding,
// so a huge kernel (pooling windows have no tensor behind them: 10^12 taps over 3 inputs are
// valid) costs what its in-range taps cost, and no padding value is ever read or multiplied.
// PairwiseSum: a float sum whose rounding error grows with log2 of the number of terms.
#pragma once

#include <cstdint>

#include "kernel_common.cuh"

namespace convarith::kernels {

template <typename I> struct TapSpan {
  I lo = 0;
  I hi = 0; // empty when hi <= lo
};

// Taps r in [0, count) with 0 <= start + r*step < limit (step >= 1, limit >= 0) as one range. No
// intermediate leaves [-|start| - step, |start| + limit + count]: with I = int64_t it is exact for
// every valid problem, with I = int32_t wherever index_fits_int32() holds. lo = ceil(-start / step)
// is formed as (-start - 1) / step + 1 and the first in-range index from the remainder, so nothing
// like -start + step - 1 or lo * step (either can pass 2^63 with a huge dilation) is computed.
template <typename I> CONVARITH_HOST_DEVICE TapSpan<I> clamp_taps(I count, I step, I start, I limit) {
  TapSpan<I> t;
  I first = start; // input index of tap lo
  if (start < 0) {
    const I m1 = -(start + 1);
    t.lo = m1 / step + 1;
    first = step - 1 - m1 % step;
  }
  if (t.lo >= count || first >= limit) {
    t.lo = 0;
    return t;
  }
  const I left = count - t.lo, fit = (limit - 1 - first) / step + 1;
  t.hi = t.lo + (fit < left ? fit : left);
  return t;
}

// Cascade (pairwise) summation of a stream of floats in registers: terms are added in sequence into
// runs of kBlock, and completed runs are merged like a binary counter (level j holds the sum of 2^j
// runs), so a term meets at most kBlock - 1 additions in its run and ceil(log2(runs)) + 1 merges:
// |err| <= (kBlock + ceil(log2(ceil(n / kBlock)))) u sum |x| (u = 2^-24) to first order, for n <=
// kBlock * 2^kLevels terms (2^36: more than any window a GPU's memory holds). The levels are
// indexed by unrolled constants only, so they can stay in registers.
struct PairwiseSum {
  static constexpr int kBlock = 16;
  static constexpr int kLevels = 32;
  float level[kLevels];
  float run = 0.0f;
  int64_t runs = 0; // completed runs
  int in_run = 0;

  CONVARITH_HOST_DEVICE PairwiseSum() {
    CONVARITH_UNROLL
    for (int j = 0; j < kLevels; ++j)
      level[j] = 0.0f;
  }
  CONVARITH_HOST_DEVICE void add(float v) {
    run += v;
    if (++in_run < kBlock)
      return;
    // Carry: merge the run with the levels of the trailing one bits of `runs`, store at the first zero.
    float carry = run;
    bool carrying = true;
    CONVARITH_UNROLL
    for (int j = 0; j < kLevels; ++j) {
      if (carrying) {
        if ((runs >> j) & 1) {
          carry = level[j] + carry;
          level[j] = 0.0f;
        } else {
          level[j] = carry;
          carrying = false;
        }
      }
    }
    ++runs;
    run = 0.0f;
    in_run = 0;
  }
  // The total: the levels from the smallest up, then the open run (from +0: all -0 gives +0).
  CONVARITH_HOST_DEVICE float total() const {
    float acc = 0.0f;
    CONVARITH_UNROLL
    for (int j = 0; j < kLevels; ++j)
      if ((runs >> j) & 1)
        acc += level[j];
    return acc + run;
  }
};

} // namespace convarith::kernels
