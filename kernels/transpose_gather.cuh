// kernels/transpose_gather.cuh — `gather`: transposed convolution, each output gathers its inputs.
//
// Computes y[n,k,o] = bias[k] + sum over c in k's group and taps (r,s,t), per axis the input index i
//   with i*stride + r*dil = o + p_lo and 0 <= i < in, of x[n,c,i...] * w[c, k mod K/g, r,s,t]
//   (filter C x K/g x KD x KH x KW), i.e. the adjoint of the convolution with the same parameters.
//
// Taps per axis without per-tap division: with q = o + p_lo, the taps that hit an input satisfy
//   r*d = q (mod s); along r they repeat every r_step = s/gcd(s,d) taps while i drops by
//   i_step = d/gcd(s,d). The first such tap r0 < r_step is found by walking q - r*d = i*s + rem
//   one tap at a time (rem -= d mod s, i -= d div s, carry when rem < 0: no division), then the
//   taps r0, r0 + r_step, ... are visited directly; taps whose i >= in are skipped with one division
//   per axis and output. So each output costs O(r_step) integer steps plus its real taps.
// Mapping: one thread per output element in NCDHW order (coalesced stores), 256-thread blocks,
//   grid-stride loop, at most kMaxGridBlocks blocks.
// Shared memory: none.
// supports(): op == conv_transpose; every such problem.
// Index math: int32_t where index_fits_int32() proves it safe, else int64_t.
// Determinism: bitwise deterministic (one thread per output, fixed order c, r, s, t, then + bias).
// Tests: test_kernels_emulated --gtest_filter='*Emulated*gather*', test_kernels_gpu
//   --gtest_filter='*Gpu*gather*'. Bench: convarith_bench --device=cuda --benchmark_filter='convarith:gather$'.
#pragma once

#include "kernel_common.cuh"

namespace convarith::kernels {

struct GatherParams {
  Geometry g;
  int64_t r_step[3] = {1, 1, 1};  // s / gcd(s, d): taps between two that hit an input
  int64_t i_step[3] = {1, 1, 1};  // d / gcd(s, d): how far the input index drops meanwhile
  int64_t d_div_s[3] = {0, 0, 0}; // d / s and d % s: one tap's step in (i, rem) of q - r*d = i*s + rem
  int64_t d_mod_s[3] = {0, 0, 0};
  const float* x = nullptr;
  const float* w = nullptr;
  const float* bias = nullptr; // may be null
  float* y = nullptr;
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
  for (int j = 0; j < 3; ++j) {
    const int64_t s = params.g.stride[j], d = params.g.dil[j];
    const int64_t common = gcd64(s, d);
    params.r_step[j] = s / common;
    params.i_step[j] = d / common;
    params.d_div_s[j] = d / s;
    params.d_mod_s[j] = d % s;
  }
  plan.grid = dim3(grid_blocks(p.y_elements(), kGatherThreads, kMaxGridBlocks));
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

template <typename I> CONVARITH_GLOBAL void gather_kernel(GatherParams p) {
  const Geometry& g = p.g;
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I num_k = static_cast<I>(g.k), cg = static_cast<I>(g.cg), kg = static_cast<I>(g.kg);
  const I rs_d = static_cast<I>(p.r_step[0]), rs_h = static_cast<I>(p.r_step[1]), rs_w = static_cast<I>(p.r_step[2]);
  const I is_d = static_cast<I>(p.i_step[0]), is_h = static_cast<I>(p.i_step[1]), is_w = static_cast<I>(p.i_step[2]);
  const float* CONVARITH_RESTRICT x = p.x;
  const float* CONVARITH_RESTRICT w = p.w;
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
    const I k = rest % num_k;
    const I n = rest / num_k;
    const I grp = k / kg, kk = k % kg;
    const AxisTaps<I> td = axis_taps<I>(p, 0, od);
    const AxisTaps<I> th = axis_taps<I>(p, 1, oh);
    const AxisTaps<I> tw = axis_taps<I>(p, 2, ow);
    float acc = 0.0f;
    for (I c = grp * cg; c < (grp + 1) * cg; ++c) {
      for (I md = 0; md < td.count; ++md) {
        const I r = td.first + md * rs_d, id = td.i_first - md * is_d;
        for (I mh = 0; mh < th.count; ++mh) {
          const I s = th.first + mh * rs_h, ih = th.i_first - mh * is_h;
          const I x_row = x_offset<I>(g, n, c, id, ih, 0);
          const I w_row = transpose_w_offset<I>(g, c, kk, r, s, 0);
          for (I mw = 0; mw < tw.count; ++mw) {
            acc += CONVARITH_LDG(x + x_row + tw.i_first - mw * is_w) * CONVARITH_LDG(w + w_row + tw.first + mw * rs_w);
          }
        }
      }
    }
    if (p.bias != nullptr)
      acc += CONVARITH_LDG(p.bias + k);
    CONVARITH_STG(p.y + e, acc);
  }
}

Status gather_run(const KernelArgs& args) {
  const KernelPlan<GatherParams>& plan = prepared_as<GatherParams>(args);
  GatherParams params = plan.params;
  const F32Args t = f32_args(args);
  params.x = t.x;
  params.w = t.w;
  params.bias = t.bias;
  params.y = t.y;
  if (!plan.wide)
    return CONVARITH_LAUNCH(gather_kernel<int32_t>, plan.grid, plan.block, 0, args.stream, params);
  return CONVARITH_LAUNCH(gather_kernel<int64_t>, plan.grid, plan.block, 0, args.stream, params);
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
