// kernels/pool_direct.cuh — `pool`: max and average pooling, one thread per output.
//
// Computes, for every output y[n,c,od,oh,ow], over the window taps (r,s,t) at input coordinates
//   od*sd - pd + r*dd (and likewise for h, w):
//   max_pool: the max over the taps inside the input (padding never wins; a NaN input propagates);
//   avg_pool: the sum over the taps inside the input divided by
//     count_include_pad: the taps inside the padded extent [-p_lo, i + p_hi) (with ceil_mode a window
//                        may run past it; those taps do not count), or
//     otherwise:         the taps inside the input.
//   The divisor is a product of per-axis counts (the window is a box), so it is counted per axis.
//   The arithmetic guarantees every window has at least one tap inside the input.
// Mapping: one thread per output element in NCDHW order (coalesced stores), 256-thread blocks,
//   grid-stride loop, at most kMaxGridBlocks blocks.
// Shared memory: none.
// supports(): op == max_pool or avg_pool; every such problem (ceil_mode, dilation, asymmetric padding).
// Index math: int32_t where index_fits_int32() proves it safe, else int64_t.
// Determinism: bitwise deterministic (fixed tap order r, s, t; one thread per output).
// Tests: test_kernels_emulated --gtest_filter='*Emulated*pool*', test_kernels_gpu
//   --gtest_filter='*Gpu*pool*'. Bench: convarith_bench --device=cuda --benchmark_filter='convarith:pool$'.
#pragma once

#include "kernel_common.cuh"

namespace convarith::kernels {

struct PoolParams {
  Geometry g;
  int is_max = 1;            // 1: max_pool, 0: avg_pool
  int count_include_pad = 0; // avg_pool only
  const float* x = nullptr;
  float* y = nullptr;
};

constexpr unsigned kPoolThreads = 256;

inline Status pool_supports(const ConvProblem&, const DeviceInfo&) {
  return Status::ok(); // every pooling problem
}

inline Result<Prepared> pool_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  KernelPlan<PoolParams> plan;
  plan.params.g = make_geometry(p);
  plan.params.is_max = p.op() == Op::kMaxPool ? 1 : 0;
  plan.params.count_include_pad = p.count_include_pad() ? 1 : 0;
  plan.grid = dim3(grid_blocks(p.y_elements(), kPoolThreads, kMaxGridBlocks));
  plan.block = dim3(kPoolThreads);
  plan.wide = !index_fits_int32(p);
  return make_prepared(p, dev, plan, 0.05);
}

namespace cuda {
Status pool_run(const KernelArgs& args);
}
namespace emu {
Status pool_run(const KernelArgs& args);
}

} // namespace convarith::kernels

#if defined(CONVARITH_KERNEL_BODIES)
namespace convarith::kernels::CONVARITH_KNS {

// The window of one axis: its first input coordinate, and how many taps lie inside the input and
// inside the padded extent.
template <typename I> struct PoolAxis {
  I start = 0;
  I in_input = 0;
  I in_padded = 0;
};

template <typename I> CONVARITH_DEVICE PoolAxis<I> pool_axis(const Geometry& g, int j, I o) {
  PoolAxis<I> a;
  const I in = static_cast<I>(g.in[j]), dil = static_cast<I>(g.dil[j]);
  const I lo = -static_cast<I>(g.pad[j]), hi = in + static_cast<I>(g.pad_hi[j]);
  a.start = o * static_cast<I>(g.stride[j]) + lo;
  for (I r = 0; r < static_cast<I>(g.ker[j]); ++r) {
    const I i = a.start + r * dil;
    if (i >= 0 && i < in)
      ++a.in_input;
    if (i >= lo && i < hi)
      ++a.in_padded;
  }
  return a;
}

template <typename I> CONVARITH_GLOBAL void pool_kernel(PoolParams p) {
  const Geometry& g = p.g;
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I in_d = static_cast<I>(g.in[0]), in_h = static_cast<I>(g.in[1]), in_w = static_cast<I>(g.in[2]);
  const I ker_d = static_cast<I>(g.ker[0]), ker_h = static_cast<I>(g.ker[1]), ker_w = static_cast<I>(g.ker[2]);
  const I dd = static_cast<I>(g.dil[0]), dh = static_cast<I>(g.dil[1]), dw = static_cast<I>(g.dil[2]);
  const I num_c = static_cast<I>(g.c);
  const float* CONVARITH_RESTRICT x = p.x;
  const int64_t total = g.y_elements;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    I rest = static_cast<I>(e);
    const I ow = rest % out_w;
    rest /= out_w;
    const I oh = rest % out_h;
    rest /= out_h;
    const I od = rest % out_d;
    rest /= out_d;
    const I c = rest % num_c;
    const I n = rest / num_c;
    const PoolAxis<I> ad = pool_axis<I>(g, 0, od);
    const PoolAxis<I> ah = pool_axis<I>(g, 1, oh);
    const PoolAxis<I> aw = pool_axis<I>(g, 2, ow);
    float acc = 0.0f;
    bool seen = false; // max: no tap read yet (avoids needing -infinity on both compilers)
    for (I r = 0; r < ker_d; ++r) {
      const I id = ad.start + r * dd;
      if (id < 0 || id >= in_d)
        continue;
      for (I s = 0; s < ker_h; ++s) {
        const I ih = ah.start + s * dh;
        if (ih < 0 || ih >= in_h)
          continue;
        const I x_row = x_offset<I>(g, n, c, id, ih, 0);
        for (I t = 0; t < ker_w; ++t) {
          const I iw = aw.start + t * dw;
          if (iw < 0 || iw >= in_w)
            continue;
          const float v = CONVARITH_LDG(x + x_row + iw);
          if (p.is_max) {
            // v != v: a NaN input wins and stays (as PyTorch's max pooling does).
            if (!seen || v > acc || v != v)
              acc = (seen && acc != acc) ? acc : v;
            seen = true;
          } else {
            acc += v;
          }
        }
      }
    }
    if (!p.is_max) {
      const I count =
          p.count_include_pad ? ad.in_padded * ah.in_padded * aw.in_padded : ad.in_input * ah.in_input * aw.in_input;
      acc /= static_cast<float>(count);
    }
    CONVARITH_STG(p.y + e, acc);
  }
}

Status pool_run(const KernelArgs& args) {
  const KernelPlan<PoolParams>& plan = prepared_as<PoolParams>(args);
  PoolParams params = plan.params;
  params.x = static_cast<const float*>(args.x);
  params.y = static_cast<float*>(args.y);
  if (!plan.wide)
    return CONVARITH_LAUNCH(pool_kernel<int32_t>, plan.grid, plan.block, 0, args.stream, params);
  return CONVARITH_LAUNCH(pool_kernel<int64_t>, plan.grid, plan.block, 0, args.stream, params);
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
