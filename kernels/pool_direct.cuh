// kernels/pool_direct.cuh — `pool`: max and average pooling, one thread per output.
//
// Computes, for every output y[n,c,od,oh,ow], over the window taps (r,s,t) at input coordinates
//   od*sd - pd + r*dd (and likewise for h, w):
//   max_pool: the max over the taps inside the input (padding never wins; NaN wins: a NaN among the
//             taps makes the output NaN, as in PyTorch, ONNX, the CPU rows and the reference);
//   avg_pool: the sum over the taps inside the input divided by
//     count_include_pad: the taps inside the padded extent [-p_lo, i + p_hi) (with ceil_mode a window
//                        may run past it; those taps do not count), or
//     otherwise:         the taps inside the input.
//   The divisor is a product of per-axis counts (the window is a box), so it is counted per axis and
//   multiplied in 64 bits (65536 x 65536 taps is 2^32) before it becomes a float.
//   The arithmetic guarantees every window has at least one tap inside the input.
// Taps: each axis's in-input taps are one range (clamp_taps, kernel_taps.cuh), and only those are
//   visited: time per output is its in-input taps, whatever the kernel (10^12 taps over 3 inputs
//   cost 3). Average sums pairwise (PairwiseSum): |err| <= (16 + log2(n / 16)) u sum |x| for n taps,
//   so a global window of 2^25 ones averages to exactly 1 (a plain float sum stalls at 2^24).
// Formats: x and y both f32, both f16 or both bf16 (the max is exact in the input's dtype, the average is an
//   fp32 sum rounded once to y's dtype); NC[D]HW or N[D]HWC, read and written through the Geometry's strides.
//   Pooling has no epilogue (the problem factory refuses one) and no bias.
// Mapping: one thread per output element in y's memory order: (n, c, od, oh, ow) for NC[D]HW and
//   (n, od, oh, ow, c) for N[D]HWC (consecutive threads store consecutive addresses, and for N[D]HWC read
//   consecutive channels of each tap), 256-thread blocks, grid-stride loop, at most max_grid_blocks(dev) blocks.
// Shared memory: none.
// supports(): op == max_pool or avg_pool; every such problem (ceil_mode, dilation, asymmetric padding).
// Index math: int32_t where index_fits_int32() proves it safe, else int64_t. Instantiations: {float, f16,
//   bf16} x {int32_t, int64_t}.
// Determinism: bitwise deterministic (fixed tap order r, s, t; one thread per output).
// Tests: test_kernels_emulated --gtest_filter='*Emulated*pool*', test_kernels_formats (every format), test_kernels_gpu
//   --gtest_filter='*Gpu*pool*'. Bench: convarith_bench --device=cuda --benchmark_filter='convarith:pool$'.
#pragma once

#include "kernel_common.cuh"
#include "kernel_taps.cuh"

namespace convarith::kernels {

struct PoolParams {
  Geometry g;
  int is_max = 1;            // 1: max_pool, 0: avg_pool
  int count_include_pad = 0; // avg_pool only
  const void* x = nullptr;
  void* y = nullptr;
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
  plan.dtype = p.dtype(TensorId::kX);
  plan.grid = dim3(grid_blocks(p.y_elements(), kPoolThreads, max_grid_blocks(dev)));
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

// The window of one axis at output o: its in-input taps, and (count_include_pad) how many taps lie
// inside the padded extent [-p_lo, i + p_hi).
template <typename I> struct PoolAxis {
  I start = 0; // input coordinate of tap 0
  TapSpan<I> taps;
  I in_padded = 0;
};

template <typename I> CONVARITH_DEVICE PoolAxis<I> pool_axis(const Geometry& g, int j, I o) {
  PoolAxis<I> a;
  const I in = static_cast<I>(g.in[j]), dil = static_cast<I>(g.dil[j]), ker = static_cast<I>(g.ker[j]);
  const I pad = static_cast<I>(g.pad[j]);
  a.start = o * static_cast<I>(g.stride[j]) - pad;
  a.taps = clamp_taps<I>(ker, dil, a.start, in);
  const TapSpan<I> padded = clamp_taps<I>(ker, dil, a.start + pad, in + pad + static_cast<I>(g.pad_hi[j]));
  a.in_padded = padded.hi - padded.lo;
  return a;
}

template <typename T, typename I> CONVARITH_GLOBAL void pool_kernel(PoolParams p) {
  const Geometry& g = p.g;
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I dd = static_cast<I>(g.dil[0]), dh = static_cast<I>(g.dil[1]), dw = static_cast<I>(g.dil[2]);
  const I num_c = static_cast<I>(g.c);
  const I x_step = dw * static_cast<I>(g.xs[4]); // x offset between two taps along w
  const T* CONVARITH_RESTRICT x = static_cast<const T*>(p.x);
  T* y = static_cast<T*>(p.y);
  const int64_t total = g.y_elements;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const Coord<I> o = decompose<I>(static_cast<I>(e), g.channels_last, num_c, out_d, out_h, out_w);
    const I c = o.c, n = o.n;
    const PoolAxis<I> ad = pool_axis<I>(g, 0, o.d);
    const PoolAxis<I> ah = pool_axis<I>(g, 1, o.h);
    const PoolAxis<I> aw = pool_axis<I>(g, 2, o.w);
    // The first in-input tap along w (every window has one: the arithmetic guarantees it).
    const I iw_first = aw.start + aw.taps.lo * dw, taps_w = aw.taps.hi - aw.taps.lo;
    float acc = 0.0f;
    if (p.is_max) {
      bool seen = false; // no tap read yet (avoids needing -infinity on both compilers)
      for (I r = ad.taps.lo; r < ad.taps.hi; ++r) {
        const I id = ad.start + r * dd;
        for (I s = ah.taps.lo; s < ah.taps.hi; ++s) {
          const I x_row = x_offset<I>(g, n, c, id, ah.start + s * dh, iw_first);
          for (I t = 0; t < taps_w; ++t) {
            const float v = load_elem(x + (x_row + t * x_step));
            // NaN wins: a NaN accumulator stays, a NaN v replaces it.
            acc = (seen && (acc > v || acc != acc)) ? acc : v;
            seen = true;
          }
        }
      }
    } else {
      PairwiseSum sum;
      for (I r = ad.taps.lo; r < ad.taps.hi; ++r) {
        const I id = ad.start + r * dd;
        for (I s = ah.taps.lo; s < ah.taps.hi; ++s) {
          const I x_row = x_offset<I>(g, n, c, id, ah.start + s * dh, iw_first);
          for (I t = 0; t < taps_w; ++t)
            sum.add(load_elem(x + (x_row + t * x_step)));
        }
      }
      // Per-axis counts (each at most the axis's kernel size) multiplied in 64 bits: at most the
      // kernel size, which fits; 32 bits do not (65536 x 65536).
      const int64_t count = p.count_include_pad
                                ? static_cast<int64_t>(ad.in_padded) * static_cast<int64_t>(ah.in_padded) *
                                      static_cast<int64_t>(aw.in_padded)
                                : static_cast<int64_t>(ad.taps.hi - ad.taps.lo) *
                                      static_cast<int64_t>(ah.taps.hi - ah.taps.lo) *
                                      static_cast<int64_t>(aw.taps.hi - aw.taps.lo);
      acc = sum.total() / static_cast<float>(count);
    }
    store_elem(y + y_offset<I>(g, n, c, o.d, o.h, o.w), acc);
  }
}

template <typename T, typename I>
Status pool_launch(const KernelPlan<PoolParams>& plan, const PoolParams& params, [[maybe_unused]] void* stream) {
  return CONVARITH_LAUNCH((pool_kernel<T, I>), plan.grid, plan.block, 0, stream, params);
}

Status pool_run(const KernelArgs& args) {
  const KernelPlan<PoolParams>& plan = prepared_as<PoolParams>(args);
  PoolParams params = plan.params;
  params.x = args.x;
  params.y = args.y;
  return dispatch_dtype(plan.dtype, [&](auto tag) {
    using T = decltype(tag);
    return plan.wide ? pool_launch<T, int64_t>(plan, params, args.stream)
                     : pool_launch<T, int32_t>(plan, params, args.stream);
  });
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
