// kernels/transpose_scatter.cuh — `scatter`: transposed convolution, each input scatters into the output.
//
// Computes the same y as `gather` (transpose_gather.cuh): for every input x[n,c,i...] and output
//   channel kk of c's group, each tap (r,s,t) adds x * w[c,kk,r,s,t] to y[n, g*K/g + kk, o...] with
//   o = i*stride + r*dil - p_lo per axis, when o is inside the output.
// Two launches on the caller's stream, ordered by it:
//   1. initialise y: with bias, a fill kernel writes bias[k] to every element (so the bias is the
//      first term of every sum and needs no second pass); without bias, CONVARITH_MEMSET_ZERO.
//   2. the scatter kernel: one thread per input element (n, c, id, ih, iw) in NCDHW order, looping
//      over the group's K/g output channels and the taps, CONVARITH_ATOMIC_ADD into y.
//   Both: 256-thread blocks, grid-stride loops, at most kMaxGridBlocks blocks.
// Shared memory: none.
// supports(): op == conv_transpose; every such problem.
// Index math: int32_t where index_fits_int32() proves it safe, else int64_t.
// Determinism: NOT bitwise deterministic on a GPU: float atomic adds from different threads land in
//   an unspecified order, so the last bits of a sum may differ run to run (the CPU executor runs one
//   thread at a time and is deterministic, which says nothing about the GPU).
// Tests: test_kernels_emulated --gtest_filter='*Emulated*scatter*', test_kernels_gpu
//   --gtest_filter='*Gpu*scatter*'. Bench: convarith_bench --device=cuda --benchmark_filter='convarith:scatter$'.
#pragma once

#include "kernel_common.cuh"
#include "kernel_taps.cuh"

namespace convarith::kernels {

struct ScatterParams {
  Geometry g;
  const float* x = nullptr;
  const float* w = nullptr;
  const float* bias = nullptr; // may be null
  float* y = nullptr;
};

constexpr unsigned kScatterThreads = 256;

inline Status scatter_supports(const ConvProblem&, const DeviceInfo&) {
  return Status::ok(); // every conv_transpose problem
}

inline Result<Prepared> scatter_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  KernelPlan<ScatterParams> plan;
  plan.params.g = make_geometry(p);
  plan.grid = dim3(grid_blocks(p.x_elements(), kScatterThreads, kMaxGridBlocks));
  plan.block = dim3(kScatterThreads);
  plan.wide = !index_fits_int32(p);
  return make_prepared(p, dev, plan, 0.03);
}

namespace cuda {
Status scatter_run(const KernelArgs& args);
}
namespace emu {
Status scatter_run(const KernelArgs& args);
}

} // namespace convarith::kernels

#if defined(CONVARITH_KERNEL_BODIES)
namespace convarith::kernels::CONVARITH_KNS {

// y[n,k,...] = bias[k]: the starting value of every sum.
template <typename I> CONVARITH_GLOBAL void scatter_bias_fill_kernel(ScatterParams p) {
  const I out_spatial = static_cast<I>(p.g.out_spatial), num_k = static_cast<I>(p.g.k);
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < p.g.y_elements; e += step) {
    CONVARITH_STG(p.y + e, CONVARITH_LDG(p.bias + (static_cast<I>(e) / out_spatial) % num_k));
  }
}

template <typename I> CONVARITH_GLOBAL void scatter_kernel(ScatterParams p) {
  const Geometry& g = p.g;
  const I in_d = static_cast<I>(g.in[0]), in_h = static_cast<I>(g.in[1]), in_w = static_cast<I>(g.in[2]);
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I ker_d = static_cast<I>(g.ker[0]), ker_h = static_cast<I>(g.ker[1]), ker_w = static_cast<I>(g.ker[2]);
  const I num_c = static_cast<I>(g.c), cg = static_cast<I>(g.cg), kg = static_cast<I>(g.kg);
  const I dd = static_cast<I>(g.dil[0]), dh = static_cast<I>(g.dil[1]), dw = static_cast<I>(g.dil[2]);
  const float* CONVARITH_RESTRICT w = p.w;
  const int64_t total = g.x_elements;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    I rest = static_cast<I>(e);
    const I iw = rest % in_w;
    rest /= in_w;
    const I ih = rest % in_h;
    rest /= in_h;
    const I id = rest % in_d;
    rest /= in_d;
    const I c = rest % num_c;
    const I n = rest / num_c;
    const I grp = c / cg;
    const float xv = CONVARITH_LDG(p.x + e);
    // Output coordinate of tap 0 along each axis; tap r adds r*dil.
    const I od0 = id * static_cast<I>(g.stride[0]) - static_cast<I>(g.pad[0]);
    const I oh0 = ih * static_cast<I>(g.stride[1]) - static_cast<I>(g.pad[1]);
    const I ow0 = iw * static_cast<I>(g.stride[2]) - static_cast<I>(g.pad[2]);
    // Only the taps that land inside the output (clamp_taps): no loop over taps that fall off it.
    const TapSpan<I> vd = clamp_taps<I>(ker_d, dd, od0, out_d);
    const TapSpan<I> vh = clamp_taps<I>(ker_h, dh, oh0, out_h);
    const TapSpan<I> vw = clamp_taps<I>(ker_w, dw, ow0, out_w);
    for (I kk = 0; kk < kg; ++kk) {
      const I k = grp * kg + kk;
      for (I r = vd.lo; r < vd.hi; ++r) {
        const I od = od0 + r * dd;
        for (I s = vh.lo; s < vh.hi; ++s) {
          const I oh = oh0 + s * dh;
          const I y_row = y_offset<I>(g, n, k, od, oh, 0) + ow0;
          const I w_row = transpose_w_offset<I>(g, c, kk, r, s, 0);
          for (I t = vw.lo; t < vw.hi; ++t)
            CONVARITH_ATOMIC_ADD(p.y + (y_row + t * dw), xv * CONVARITH_LDG(w + (w_row + t)));
        }
      }
    }
  }
}

template <typename I> Status scatter_launch(const KernelArgs& args, const ScatterParams& params) {
  const ConvProblem& problem = *args.problem;
  const dim3 block(kScatterThreads);
  if (params.bias != nullptr) {
    const dim3 fill_grid(grid_blocks(problem.y_elements(), kScatterThreads, kMaxGridBlocks));
    CONVARITH_RETURN_IF_ERROR(CONVARITH_LAUNCH(scatter_bias_fill_kernel<I>, fill_grid, block, 0, args.stream, params));
  } else {
    CONVARITH_RETURN_IF_ERROR(
        CONVARITH_MEMSET_ZERO(params.y, static_cast<size_t>(problem.y_elements()) * sizeof(float), args.stream));
  }
  const dim3 grid(grid_blocks(problem.x_elements(), kScatterThreads, kMaxGridBlocks));
  return CONVARITH_LAUNCH(scatter_kernel<I>, grid, block, 0, args.stream, params);
}

Status scatter_run(const KernelArgs& args) {
  const KernelPlan<ScatterParams>& plan = prepared_as<ScatterParams>(args);
  ScatterParams params = plan.params;
  const F32Args t = f32_args(args);
  params.x = t.x;
  params.w = t.w;
  params.bias = t.bias;
  params.y = t.y;
  if (!plan.wide)
    return scatter_launch<int32_t>(args, params);
  return scatter_launch<int64_t>(args, params);
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
