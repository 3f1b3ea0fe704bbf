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

Status cpu_pool_run(const KernelArgs& args) {
  if (args.problem == nullptr)
    return invalid_argument("cpu_pool: KernelArgs.problem is null");
  const ConvProblem& p = *args.problem;
  if (p.n() == 0)
    return Status::ok();
  CONVARITH_RETURN_IF_ERROR(cpu_pool_supports(p));
  CONVARITH_RETURN_IF_ERROR(check_cpu_args(args, "cpu_pool", 0));
  AxisParams ax[3];
  int64_t out[3];
  for (int j = 0; j < 3; ++j) {
    ax[j] = p.axis3(j);
    out[j] = p.out3(j);
  }
  const bool is_max = p.op() == Op::kMaxPool;
  const bool include_pad = p.count_include_pad();
  const int64_t planes = p.n() * p.c(), in_plane = p.in_spatial(), out_plane = p.out_spatial();
  const int64_t planes_per_task = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, out_plane * p.kernel_spatial()));
  const int64_t tasks = (planes + planes_per_task - 1) / planes_per_task;

  auto run = [&](int64_t task, int) {
    const int64_t first = task * planes_per_task, last = std::min(planes, first + planes_per_task);
    for (int64_t plane = first; plane < last; ++plane) {
      const float* x = args.x + plane * in_plane;
      float* y = args.y + plane * out_plane;
      for (int64_t od = 0; od < out[0]; ++od) {
        const int64_t sd = od * ax[0].s - ax[0].p_lo;
        const TapRange td = tap_range(ax[0].k, ax[0].d, sd, ax[0].i);
        const TapRange pd = tap_range(ax[0].k, ax[0].d, sd + ax[0].p_lo, ax[0].i + ax[0].p_lo + ax[0].p_hi);
        for (int64_t oh = 0; oh < out[1]; ++oh) {
          const int64_t sh = oh * ax[1].s - ax[1].p_lo;
          const TapRange th = tap_range(ax[1].k, ax[1].d, sh, ax[1].i);
          const TapRange ph = tap_range(ax[1].k, ax[1].d, sh + ax[1].p_lo, ax[1].i + ax[1].p_lo + ax[1].p_hi);
          for (int64_t ow = 0; ow < out[2]; ++ow) {
            const int64_t sw = ow * ax[2].s - ax[2].p_lo;
            const TapRange tw = tap_range(ax[2].k, ax[2].d, sw, ax[2].i);
            float acc = is_max ? -std::numeric_limits<float>::infinity() : 0.0f;
            for (int64_t t = td.lo; t < td.hi; ++t) {
              for (int64_t r = th.lo; r < th.hi; ++r) {
                const float* row = x + ((sd + t * ax[0].d) * ax[1].i + sh + r * ax[1].d) * ax[2].i + sw;
                if (is_max) {
                  for (int64_t s = tw.lo; s < tw.hi; ++s)
                    acc = std::max(acc, row[s * ax[2].d]);
                } else {
                  for (int64_t s = tw.lo; s < tw.hi; ++s)
                    acc += row[s * ax[2].d];
                }
              }
            }
            if (!is_max) {
              int64_t count;
              if (include_pad) {
                const TapRange pw = tap_range(ax[2].k, ax[2].d, sw + ax[2].p_lo, ax[2].i + ax[2].p_lo + ax[2].p_hi);
                count = (pd.hi - pd.lo) * (ph.hi - ph.lo) * (pw.hi - pw.lo);
              } else {
                count = (td.hi - td.lo) * (th.hi - th.lo) * (tw.hi - tw.lo);
              }
              acc /= static_cast<float>(count);
            }
            y[(od * out[1] + oh) * out[2] + ow] = acc;
          }
        }
      }
    }
  };
  ThreadPool::instance().parallel_for(tasks, run);
  return Status::ok();
}

} // namespace convarith::detail
