// kernels/transpose_gather.cuh — `gather`: transposed convolution, each output gathers its inputs.
//
// Computes y[n,k,o] = act(alpha * acc + bias[k] + beta * z[n,k,o]), acc the sum over c in k's group and taps
//   (r,s,t), per axis the input index i with i*stride + r*dil = o + p_lo and 0 <= i < in, of
//   x[n,c,i...] * w[c, k mod K/g, r,s,t] (filter C x K/g x KD x KH x KW), i.e. the adjoint of the convolution
//   with the same parameters.
// Formats: x, w, z, y all f32, all f16 or all bf16 (bias the same or f32), fp32 accumulation; activations
//   NC[D]HW or N[D]HWC, filters C x K/g x [D]HW or C x [D]HW x K/g, in any combination, every access through
//   the Geometry's strides; the epilogue is numeric.cuh's apply_epilogue.
//
// Taps per axis without per-tap division: with q = o + p_lo, the taps that hit an input satisfy
//   r*d = q (mod s); along r they repeat every r_step = s/gcd(s,d) taps while i drops by
//   i_step = d/gcd(s,d). The first such tap r0 < r_step is found by walking q - r*d = i*s + rem
//   one tap at a time (rem -= d mod s, i -= d div s, carry when rem < 0: no division), then the
//   taps r0, r0 + r_step, ... are visited directly; taps whose i >= in are skipped with one division
//   per axis and output. So each output costs O(r_step) integer steps plus its real taps.
// Mapping: one thread per output element in y's memory order, (n, k, od, oh, ow) for NC[D]HW and
//   (n, od, oh, ow, k) for N[D]HWC (consecutive threads store consecutive addresses), 256-thread blocks,
//   grid-stride loop, at most max_grid_blocks(dev) blocks.
// Shared memory: none.
// supports(): op == conv_transpose; every such problem.
// Index math: int32_t where index_fits_int32() proves it safe, else int64_t. Instantiations: {float, f16,
//   bf16} x {int32_t, int64_t}.
// Determinism: bitwise deterministic (one thread per output, fixed order c, r, s, t, then the epilogue).
// Tests: test_kernels_emulated --gtest_filter='*Emulated*gather*', test_kernels_formats (every format),
//   test_kernels_gpu --gtest_filter='*Gpu*gather*'. Bench: convarith_bench --device=cuda
//   --benchmark_filter='convarith:gather$'.
#pragma once

#include "kernel_common.cuh"

namespace convarith::kernels {

struct GatherParams {
  Geometry g;
  int64_t r_step[3] = {1, 1, 1};  // s / gcd(s, d): taps between two that hit an input
  int64_t i_step[3] = {1, 1, 1};  // d / gcd(s, d): how far the input index drops meanwhile
  int64_t d_div_s[3] = {0, 0, 0}; // d / s and d % s: one tap's step in (i, rem) of q - r*d = i*s + rem
  int64_t d_mod_s[3] = {0, 0, 0};
  Out out; // epilogue, bias (may be null), z
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
};

inline int64_t gcd64(int64_t a, int64_t b) {
  while (b != 0) {
    const int64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

constexpr unsigned kGatherThreads = 256;

inline Status gather_supports(const ConvProblem&, const DeviceInfo&) {
  return Status::ok(); // every conv_transpose problem
}

inline Result<Prepared> gather_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  KernelPlan<GatherParams> plan;
  GatherParams& params = plan.params;
  params.g = make_geometry(p);
  params.out = make_out(p);
  plan.dtype = p.dtype(TensorId::kX);
  for (int j = 0; j < 3; ++j) {
    const int64_t s = params.g.stride[j], d = params.g.dil[j];
    const int64_t common = gcd64(s, d);
    params.r_step[j] = s / common;
    params.i_step[j] = d / common;
    params.d_div_s[j] = d / s;
    params.d_mod_s[j] = d % s;
  }
  plan.grid = dim3(grid_blocks(p.y_elements(), kGatherThreads, max_grid_blocks(dev)));
  plan.block = dim3(kGatherThreads);
  plan.wide = !index_fits_int32(p);
  return make_prepared(p, dev, plan, 0.04);
}

namespace cuda {
Status gather_run(const KernelArgs& args);
}
namespace emu {
Status gather_run(const KernelArgs& args);
}

} // namespace convarith::kernels

#if defined(CONVARITH_KERNEL_BODIES)
namespace convarith::kernels::CONVARITH_KNS {

// The taps of one axis that reach output coordinate o: r = first + m*r_step, i = i_first - m*i_step
// for m in [0, count).
template <typename I> struct AxisTaps {
  I first = 0;
  I i_first = 0;
  I count = 0;
};

template <typename I> CONVARITH_DEVICE AxisTaps<I> axis_taps(const GatherParams& p, int j, I o) {
  AxisTaps<I> taps;
  const I s = static_cast<I>(p.g.stride[j]);
  const I ker = static_cast<I>(p.g.ker[j]);
  const I in = static_cast<I>(p.g.in[j]);
  const I q = o + static_cast<I>(p.g.pad[j]); // >= 0
  I i = q / s, rem = q % s;                   // q - r*d = i*s + rem, walked along r below
  const I d_div = static_cast<I>(p.d_div_s[j]), d_mod = static_cast<I>(p.d_mod_s[j]);
  const I r_step = static_cast<I>(p.r_step[j]), i_step = static_cast<I>(p.i_step[j]);
  const I r_end = ker < r_step ? ker : r_step;
  I r = 0;
  for (; r < r_end; ++r) {
    if (rem == 0)
      break;
    rem -= d_mod;
    i -= d_div;
    if (rem < 0) {
      rem += s;
      i -= 1;
    }
  }
  if (r == r_end || i < 0)
    return taps; // no tap of this axis lands on an input sample
  // Skip the taps whose input index is past the end (i decreases along the taps).
  if (i >= in) {
    const I skip = (i - in) / i_step + 1;
    r += skip * r_step;
    i -= skip * i_step;
    if (r >= ker || i < 0)
      return taps;
  }
  const I by_r = (ker - 1 - r) / r_step + 1; // taps left before r reaches ker
  const I by_i = i / i_step + 1;             // taps left before i drops below 0
  taps.first = r;
  taps.i_first = i;
  taps.count = by_r < by_i ? by_r : by_i;
  return taps;
}

template <typename T, typename I> CONVARITH_GLOBAL void gather_kernel(GatherParams p) {
  const Geometry& g = p.g;
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I num_k = static_cast<I>(g.k), cg = static_cast<I>(g.cg), kg = static_cast<I>(g.kg);
  const I rs_d = static_cast<I>(p.r_step[0]), rs_h = static_cast<I>(p.r_step[1]), rs_w = static_cast<I>(p.r_step[2]);
  const I is_d = static_cast<I>(p.i_step[0]), is_h = static_cast<I>(p.i_step[1]), is_w = static_cast<I>(p.i_step[2]);
  const I x_step = is_w * static_cast<I>(g.xs[4]); // x offset between two taps along w (the input index drops)
  const I w_step = rs_w * static_cast<I>(g.ws[4]); // w offset between two taps along t
  const T* CONVARITH_RESTRICT x = static_cast<const T*>(p.x);
  const T* CONVARITH_RESTRICT w = static_cast<const T*>(p.w);
  T* y = static_cast<T*>(p.y);
  const int64_t total = g.y_elements;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const Coord<I> o = decompose<I>(static_cast<I>(e), g.channels_last, num_k, out_d, out_h, out_w);
    const I k = o.c, n = o.n;
    const I grp = k / kg, kk = k % kg;
    const AxisTaps<I> td = axis_taps<I>(p, 0, o.d);
    const AxisTaps<I> th = axis_taps<I>(p, 1, o.h);
    const AxisTaps<I> tw = axis_taps<I>(p, 2, o.w);
    float acc = 0.0f;
    if (tw.count > 0) {
      for (I c = grp * cg; c < (grp + 1) * cg; ++c) {
        for (I md = 0; md < td.count; ++md) {
          const I r = td.first + md * rs_d, id = td.i_first - md * is_d;
          for (I mh = 0; mh < th.count; ++mh) {
            const I s = th.first + mh * rs_h, ih = th.i_first - mh * is_h;
            // Offsets of the first tap along w (a real input and a real filter tap).
            const I x_row = x_offset<I>(g, n, c, id, ih, tw.i_first);
            const I w_row = transpose_w_offset<I>(g, c, kk, r, s, tw.first);
            for (I mw = 0; mw < tw.count; ++mw)
              acc += load_elem(x + (x_row - mw * x_step)) * load_elem(w + (w_row + mw * w_step));
          }
        }
      }
    }
    store_output<T, I>(p.out, y, y_offset<I>(g, n, k, o.d, o.h, o.w), acc, load_bias<T>(p.out, k));
  }
}

template <typename T, typename I>
Status gather_launch(const KernelPlan<GatherParams>& plan, const GatherParams& params, [[maybe_unused]] void* stream) {
  return CONVARITH_LAUNCH((gather_kernel<T, I>), plan.grid, plan.block, 0, stream, params);
}

Status gather_run(const KernelArgs& args) {
  const KernelPlan<GatherParams>& plan = prepared_as<GatherParams>(args);
  GatherParams params = plan.params;
  params.x = args.x;
  params.w = args.w;
  params.out.bias = args.bias;
  params.out.z = args.z;
  params.y = args.y;
  return dispatch_dtype(plan.dtype, [&](auto tag) {
    using T = decltype(tag);
    return plan.wide ? gather_launch<T, int64_t>(plan, params, args.stream)
                     : gather_launch<T, int32_t>(plan, params, args.stream);
  });
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
