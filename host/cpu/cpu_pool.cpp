// host/cpu/cpu_pool.cpp — "cpu_pool": max and average pooling, direct loops.
//
// Per output element and axis, the window starts at o*s - p_lo and its taps are start + r*d.
// Taps inside the input form one range of r (tap_range); max takes the maximum over them
// (padding never wins). Average divides by the number of in-input taps, or with
// count_include_pad by the taps inside the padded extent [-p_lo, i + p_hi): in ceil_mode the
// last window can reach past that extent and those taps do not count (PyTorch's rule).
// A task is a run of whole N x C planes: deterministic.
#include <algorithm>
#include <limits>

#include "cpu/cpu_ops.hpp"
#include "cpu/thread_pool.hpp"

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

constexpr int64_t kRowChunk = 256; // output columns accumulated at once in a stack buffer

struct PoolGeometry {
  AxisParams ax[3];
  int64_t out[3];
  bool is_max;
  bool include_pad;
};

// One N x C plane, row by row: the taps of a window are walked as (t, r) input rows times the
// s taps, each a unit- or s-strided run over the output columns, so the inner loop has no
// bounds checks and vectorizes. Compiled per instruction set (CONVARITH_CPU_MULTIVERSION).
CONVARITH_CPU_INLINE void pool_plane_body(const PoolGeometry& g, const float* x, float* y) {
  const AxisParams &ad = g.ax[0], &ah = g.ax[1], &aw = g.ax[2];
  float acc[kRowChunk];
  for (int64_t od = 0; od < g.out[0]; ++od) {
    const int64_t sd = od * ad.s - ad.p_lo;
    const TapRange td = tap_range(ad.k, ad.d, sd, ad.i);
    const TapRange pd = tap_range(ad.k, ad.d, sd + ad.p_lo, ad.i + ad.p_lo + ad.p_hi);
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
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
                    acc[ow - ow0] = acc[ow - ow0] > xrow[ow + off] ? acc[ow - ow0] : xrow[ow + off];
                } else if (aw.s == 2) { // a literal stride lets the vectorizer use even/odd shuffles
                  for (int64_t ow = lo; ow < hi; ++ow) {
                    const float val = xrow[ow * 2 + off];
                    acc[ow - ow0] = acc[ow - ow0] > val ? acc[ow - ow0] : val;
                  }
                } else {
                  for (int64_t ow = lo; ow < hi; ++ow) {
                    const float val = xrow[ow * aw.s + off];
                    acc[ow - ow0] = acc[ow - ow0] > val ? acc[ow - ow0] : val;
                  }
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
CONVARITH_CPU_MULTIVERSION(pool_plane, (const PoolGeometry& g, const float* x, float* y), (g, x, y))

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
  for (int j = 0; j < 3; ++j) {
    g.ax[j] = p.axis3(j);
    g.out[j] = p.out3(j);
  }
  g.is_max = p.op() == Op::kMaxPool;
  g.include_pad = p.count_include_pad();
  const int64_t planes = p.n() * p.c(), in_plane = p.in_spatial(), out_plane = p.out_spatial();
  const int64_t planes_per_task =
      std::max<int64_t>(1, 16384 / std::max<int64_t>(1, sat_mul(out_plane, p.kernel_spatial())));
  const int64_t tasks = (planes + planes_per_task - 1) / planes_per_task;
  auto run = [&](int64_t task, int) {
    const int64_t first = task * planes_per_task, last = std::min(planes, first + planes_per_task);
    for (int64_t plane = first; plane < last; ++plane)
      pool_plane(g, args.x + plane * in_plane, args.y + plane * out_plane);
  };
  ThreadPool::instance().parallel_for(tasks, run);
  return Status::ok();
}

} // namespace convarith::detail
