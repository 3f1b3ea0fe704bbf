// kernels/conv_direct.cuh — `direct`: the always-correct convolution baseline.
//
// Computes  y[n,k,od,oh,ow] = bias[k] + sum over c in k's group, taps (r,s,t) of
//           x[n, g*C/g + c, od*sd - pd + r*dd, oh*sh - ph + s*dh, ow*sw - pw + t*dw] * w[k,c,r,s,t]
// (taps that land in padding contribute nothing: each axis's loop runs over its in-input taps only,
// clamp_taps, so padding is never multiplied, not even by an Inf weight) for every problem ConvProblem allows with
// op = conv: rank 1-3 through the rank-3 view, asymmetric padding, any stride and dilation, groups.
//
// Mapping: one thread per output element, in NCDHW order (consecutive threads write consecutive
//   ow, so stores coalesce); 256-thread blocks, grid-stride loop over all N*K*OD*OH*OW outputs,
//   at most kMaxGridBlocks blocks (so gridDim.x is in range for any size).
// Shared memory: none.
// supports(): op == conv; nothing else (it is the fallback every other conv kernel is tested against).
// Index math: int32_t where index_fits_int32() proves it safe, else int64_t.
// Determinism: bitwise deterministic; each output is one thread's sum in a fixed order (c, r, s, t)
//   then + bias.
// Tests: test_kernels_emulated --gtest_filter='*Emulated*direct*', test_kernels_gpu
//   --gtest_filter='*Gpu*direct*'. Bench: convarith_bench --device=cuda --benchmark_filter='convarith:direct$'.
//
// Compiled twice: conv_direct.cu (nvcc) and conv_direct_emu.cpp (the CPU kernel executor) define
// CONVARITH_KERNEL_BODIES before including this file; every other includer sees only the host-side
// declarations below.
#pragma once

#include "kernel_common.cuh"
#include "kernel_taps.cuh"

namespace convarith::kernels {

struct DirectParams {
  Geometry g;
  const float* x = nullptr;
  const float* w = nullptr;
  const float* bias = nullptr; // may be null
  float* y = nullptr;
};

constexpr unsigned kDirectThreads = 256;

inline Status direct_supports(const ConvProblem&, const DeviceInfo&) {
  return Status::ok(); // every conv problem (the row's declared ops and formats are checked by the table)
}

inline Result<Prepared> direct_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  KernelPlan<DirectParams> plan;
  plan.params.g = make_geometry(p);
  plan.grid = dim3(grid_blocks(p.y_elements(), kDirectThreads, kMaxGridBlocks));
  plan.block = dim3(kDirectThreads);
  plan.wide = !index_fits_int32(p);
  return make_prepared(p, dev, plan, 0.03);
}

namespace cuda {
Status direct_run(const KernelArgs& args);
}
namespace emu {
Status direct_run(const KernelArgs& args);
}

} // namespace convarith::kernels

#if defined(CONVARITH_KERNEL_BODIES)
namespace convarith::kernels::CONVARITH_KNS {

template <typename I> CONVARITH_GLOBAL void direct_kernel(DirectParams p) {
  const Geometry& g = p.g;
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I in_d = static_cast<I>(g.in[0]), in_h = static_cast<I>(g.in[1]), in_w = static_cast<I>(g.in[2]);
  const I ker_d = static_cast<I>(g.ker[0]), ker_h = static_cast<I>(g.ker[1]), ker_w = static_cast<I>(g.ker[2]);
  const I num_k = static_cast<I>(g.k), cg = static_cast<I>(g.cg), kg = static_cast<I>(g.kg);
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
    const I c_first = (k / kg) * cg; // first input channel of k's group
    // Top-left-front input coordinate of the window; taps step by the dilation from there.
    const I id0 = od * static_cast<I>(g.stride[0]) - static_cast<I>(g.pad[0]);
    const I ih0 = oh * static_cast<I>(g.stride[1]) - static_cast<I>(g.pad[1]);
    const I iw0 = ow * static_cast<I>(g.stride[2]) - static_cast<I>(g.pad[2]);
    const I dd = static_cast<I>(g.dil[0]), dh = static_cast<I>(g.dil[1]), dw = static_cast<I>(g.dil[2]);
    const TapSpan<I> vd = clamp_taps<I>(ker_d, dd, id0, in_d);
    const TapSpan<I> vh = clamp_taps<I>(ker_h, dh, ih0, in_h);
    const TapSpan<I> vw = clamp_taps<I>(ker_w, dw, iw0, in_w);
    float acc = 0.0f;
    for (I c = 0; c < cg; ++c) {
      for (I r = vd.lo; r < vd.hi; ++r) {
        const I id = id0 + r * dd;
        for (I s = vh.lo; s < vh.hi; ++s) {
          const I ih = ih0 + s * dh;
          const I x_row = x_offset<I>(g, n, c_first + c, id, ih, 0) + iw0;
          const I w_row = conv_w_offset<I>(g, k, c, r, s, 0);
          for (I t = vw.lo; t < vw.hi; ++t)
            acc += CONVARITH_LDG(x + (x_row + t * dw)) * CONVARITH_LDG(w + (w_row + t));
        }
      }
    }
    if (p.bias != nullptr)
      acc += CONVARITH_LDG(p.bias + k);
    CONVARITH_STG(p.y + e, acc);
  }
}

Status direct_run(const KernelArgs& args) {
  const KernelPlan<DirectParams>& plan = prepared_as<DirectParams>(args);
  DirectParams params = plan.params;
  const F32Args t = f32_args(args);
  params.x = t.x;
  params.w = t.w;
  params.bias = t.bias;
  params.y = t.y;
  if (!plan.wide)
    return CONVARITH_LAUNCH(direct_kernel<int32_t>, plan.grid, plan.block, 0, args.stream, params);
  return CONVARITH_LAUNCH(direct_kernel<int64_t>, plan.grid, plan.block, 0, args.stream, params);
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
