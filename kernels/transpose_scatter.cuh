// kernels/transpose_scatter.cuh — `scatter`: transposed convolution, each input scatters into the output.
//
// Computes the same y as `gather` (transpose_gather.cuh): y = act(alpha * acc + bias[k] + beta * z), where
//   for every input x[n,c,i...] and output channel kk of c's group, each tap (r,s,t) adds x * w[c,kk,r,s,t] to
//   acc[n, g*K/g + kk, o...] with o = i*stride + r*dil - p_lo per axis, when o is inside the output.
// Formats: x, w, z, y all f32, all f16 or all bf16 (bias the same or f32), fp32 accumulation; activations
//   NC[D]HW or N[D]HWC, filters C x K/g x [D]HW or C x [D]HW x K/g, in any combination, every access through
//   the Geometry's strides; the epilogue is numeric.cuh's apply_epilogue.
// The sums are accumulated in an fp32 buffer in the workspace (y_elements floats, in y's memory order and
//   strides), never in y: atomic adds cannot apply a nonlinear epilogue or round to f16/bf16, and writing y
//   only in the last launch keeps the API's promise that nothing is written on error. Three steps on the
//   caller's stream, ordered by it:
//   1. CONVARITH_MEMSET_ZERO the accumulation buffer;
//   2. the scatter kernel: one thread per input element in x's memory order ((n, c, id, ih, iw) for NC[D]HW,
//      (n, id, ih, iw, c) for N[D]HWC: consecutive threads read consecutive addresses), looping over the
//      group's K/g output channels and the taps, CONVARITH_ATOMIC_ADD into the buffer;
//   3. the finish kernel: one thread per output element in y's memory order, y = epilogue(buffer, bias, z).
//   y is written by step 3 alone: if step 1 or 2 fails, y is untouched; a failed launch of step 3 writes
//   nothing. (The old design, a bias fill of y followed by the scatter, left y bias-filled when the second
//   launch failed.) Kernels: 256-thread blocks, grid-stride loops, at most max_grid_blocks(dev) blocks.
// Workspace: y_elements * 4 bytes (prepare() reports it; Plan::run checks it).
// Shared memory: none.
// supports(): op == conv_transpose; every such problem.
// Index math: int32_t where index_fits_int32() proves it safe, else int64_t. Instantiations: {float, f16,
//   bf16} x {int32_t, int64_t} for both kernels.
// Determinism: NOT bitwise deterministic on a GPU: float atomic adds from different threads land in
//   an unspecified order, so the last bits of a sum may differ run to run (the CPU executor runs one
//   thread at a time and is deterministic, which says nothing about the GPU).
// Tests: test_kernels_emulated --gtest_filter='*Emulated*scatter*', test_kernels_formats, test_kernels_gpu
//   --gtest_filter='*Gpu*scatter*'. Bench: convarith_bench --device=cuda --benchmark_filter='convarith:scatter$'.
#pragma once

#include "kernel_common.cuh"
#include "kernel_taps.cuh"

namespace convarith::kernels {

struct ScatterParams {
  Geometry g;
  Out out; // epilogue, bias (may be null), z
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  float* acc = nullptr;       // the workspace: y_elements floats
  unsigned finish_blocks = 1; // grid of the finish kernel (plan.grid is the scatter kernel's)
};

constexpr unsigned kScatterThreads = 256;

// The fp32 accumulation buffer: one float per element of y.
inline size_t scatter_workspace(const ConvProblem& p) {
  return static_cast<size_t>(p.y_elements()) * sizeof(float);
}

inline Status scatter_supports(const ConvProblem&, const DeviceInfo&) {
  return Status::ok(); // every conv_transpose problem
}

inline Result<Prepared> scatter_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  KernelPlan<ScatterParams> plan;
  plan.params.g = make_geometry(p);
  plan.params.out = make_out(p);
  plan.params.finish_blocks = grid_blocks(p.y_elements(), kScatterThreads, max_grid_blocks(dev));
  plan.dtype = p.dtype(TensorId::kX);
  plan.grid = dim3(grid_blocks(p.x_elements(), kScatterThreads, max_grid_blocks(dev)));
  plan.block = dim3(kScatterThreads);
  plan.wide = !index_fits_int32(p);
  return make_prepared(p, dev, plan, 0.03, scatter_workspace(p));
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

template <typename T, typename I> CONVARITH_GLOBAL void scatter_kernel(ScatterParams p) {
  const Geometry& g = p.g;
  const I in_d = static_cast<I>(g.in[0]), in_h = static_cast<I>(g.in[1]), in_w = static_cast<I>(g.in[2]);
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I ker_d = static_cast<I>(g.ker[0]), ker_h = static_cast<I>(g.ker[1]), ker_w = static_cast<I>(g.ker[2]);
  const I num_c = static_cast<I>(g.c), cg = static_cast<I>(g.cg), kg = static_cast<I>(g.kg);
  const I dd = static_cast<I>(g.dil[0]), dh = static_cast<I>(g.dil[1]), dw = static_cast<I>(g.dil[2]);
  const I y_step = dw * static_cast<I>(g.ys[4]); // buffer offset between two taps along w
  const I w_step = static_cast<I>(g.ws[4]);      // w offset between two taps along t
  const T* CONVARITH_RESTRICT x = static_cast<const T*>(p.x);
  const T* CONVARITH_RESTRICT w = static_cast<const T*>(p.w);
  float* acc = p.acc;
  const int64_t total = g.x_elements;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const Coord<I> i = decompose<I>(static_cast<I>(e), g.channels_last, num_c, in_d, in_h, in_w);
    const I c = i.c, n = i.n;
    const I grp = c / cg;
    const float xv = load_elem(x + x_offset<I>(g, n, c, i.d, i.h, i.w));
    // Output coordinate of tap 0 along each axis; tap r adds r*dil.
    const I od0 = i.d * static_cast<I>(g.stride[0]) - static_cast<I>(g.pad[0]);
    const I oh0 = i.h * static_cast<I>(g.stride[1]) - static_cast<I>(g.pad[1]);
    const I ow0 = i.w * static_cast<I>(g.stride[2]) - static_cast<I>(g.pad[2]);
    // Only the taps that land inside the output (clamp_taps): no loop over taps that fall off it.
    const TapSpan<I> vd = clamp_taps<I>(ker_d, dd, od0, out_d);
    const TapSpan<I> vh = clamp_taps<I>(ker_h, dh, oh0, out_h);
    const TapSpan<I> vw = clamp_taps<I>(ker_w, dw, ow0, out_w);
    const I ow_first = ow0 + vw.lo * dw, taps_w = vw.hi - vw.lo;
    if (taps_w <= 0)
      continue;
    for (I kk = 0; kk < kg; ++kk) {
      const I k = grp * kg + kk;
      for (I r = vd.lo; r < vd.hi; ++r) {
        const I od = od0 + r * dd;
        for (I s = vh.lo; s < vh.hi; ++s) {
          const I oh = oh0 + s * dh;
          // Offsets of the first in-output tap along w.
          const I y_row = y_offset<I>(g, n, k, od, oh, ow_first);
          const I w_row = transpose_w_offset<I>(g, c, kk, r, s, vw.lo);
          for (I t = 0; t < taps_w; ++t)
            CONVARITH_ATOMIC_ADD(acc + (y_row + t * y_step), xv * load_elem(w + (w_row + t * w_step)));
        }
      }
    }
  }
}

// y = epilogue(acc, bias, z), one thread per output element in y's memory order: the only writer of y.
template <typename T, typename I> CONVARITH_GLOBAL void scatter_finish_kernel(ScatterParams p) {
  const Geometry& g = p.g;
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I num_k = static_cast<I>(g.k);
  T* y = static_cast<T*>(p.y);
  const float* acc = p.acc;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < g.y_elements; e += step) {
    const Coord<I> o = decompose<I>(static_cast<I>(e), g.channels_last, num_k, out_d, out_h, out_w);
    const I off = y_offset<I>(g, o.n, o.c, o.d, o.h, o.w);
    store_output<T, I>(p.out, y, off, CONVARITH_LDG(acc + off), load_bias<T>(p.out, o.c));
  }
}

template <typename T, typename I>
Status scatter_launch(const KernelPlan<ScatterParams>& plan, const ScatterParams& params,
                      [[maybe_unused]] void* stream) {
  CONVARITH_RETURN_IF_ERROR(
      CONVARITH_MEMSET_ZERO(params.acc, static_cast<size_t>(params.g.y_elements) * sizeof(float), stream));
  CONVARITH_RETURN_IF_ERROR(CONVARITH_LAUNCH((scatter_kernel<T, I>), plan.grid, plan.block, 0, stream, params));
  const dim3 finish_grid(params.finish_blocks);
  return CONVARITH_LAUNCH((scatter_finish_kernel<T, I>), finish_grid, plan.block, 0, stream, params);
}

Status scatter_run(const KernelArgs& args) {
  const KernelPlan<ScatterParams>& plan = prepared_as<ScatterParams>(args);
  ScatterParams params = plan.params;
  params.x = args.x;
  params.w = args.w;
  params.out.bias = args.bias;
  params.out.z = args.z;
  params.y = args.y;
  params.acc = static_cast<float*>(args.workspace);
  return dispatch_dtype(plan.dtype, [&](auto tag) {
    using T = decltype(tag);
    return plan.wide ? scatter_launch<T, int64_t>(plan, params, args.stream)
                     : scatter_launch<T, int32_t>(plan, params, args.stream);
  });
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
