// kernels/conv_direct.cuh — `direct`: the always-correct convolution baseline.
//
// Computes  y[n,k,od,oh,ow] = act(alpha * acc + bias[k] + beta * z[n,k,od,oh,ow]) with
//           acc = sum over c in k's group, taps (r,s,t) of
//           x[n, g*C/g + c, od*sd - pd + r*dd, oh*sh - ph + s*dh, ow*sw - pw + t*dw] * w[k,c,r,s,t]
// (taps that land in padding contribute nothing: each axis's loop runs over its in-input taps only,
// clamp_taps, so padding is never multiplied, not even by an Inf weight) for every problem ConvProblem allows with
// op = conv: rank 1-3 through the rank-3 view, asymmetric padding, any stride and dilation, groups.
// Formats: x, w, z, y all f32, all f16 or all bf16 (bias the same or f32), accumulation in fp32; activations
//   NC[D]HW or N[D]HWC, filters K x C/g x [D]HW or K x [D]HW x C/g, in any combination: every access goes through
//   the Geometry's strides (no stride is assumed to be 1). The fused epilogue is numeric.cuh's apply_epilogue.
//
// Mapping: one thread per output element, in y's memory order: (n, k, od, oh, ow) for NC[D]HW, so consecutive
//   threads write consecutive ow; (n, od, oh, ow, k) for N[D]HWC, so they write consecutive k (coalesced either
//   way); 256-thread blocks, grid-stride loop over all N*K*OD*OH*OW outputs, at most max_grid_blocks(dev) blocks
//   (so gridDim.x is in range for any size).
// Shared memory: none.
// supports(): op == conv; nothing else (it is the fallback every other conv kernel is tested against).
// Index math: int32_t where index_fits_int32() proves it safe, else int64_t. Instantiations: {float, f16, bf16}
//   x {int32_t, int64_t}.
// Determinism: bitwise deterministic; each output is one thread's sum in a fixed order (c, r, s, t)
//   then the epilogue.
// Tests: test_kernels_emulated --gtest_filter='*Emulated*direct*', test_kernels_formats (every format),
//   test_kernels_gpu --gtest_filter='*Gpu*direct*'. Bench: convarith_bench --device=cuda
//   --benchmark_filter='convarith:direct$'.
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
  Out out; // epilogue, bias (may be null), z
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
};

constexpr unsigned kDirectThreads = 256;

inline Status direct_supports(const ConvProblem&, const DeviceInfo&) {
  return Status::ok(); // every conv problem (the row's declared ops and formats are checked by the table)
}

inline Result<Prepared> direct_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  KernelPlan<DirectParams> plan;
  plan.params.g = make_geometry(p);
  plan.params.out = make_out(p);
  plan.dtype = p.dtype(TensorId::kX);
  plan.grid = dim3(grid_blocks(p.y_elements(), kDirectThreads, max_grid_blocks(dev)));
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

template <typename T, typename I> CONVARITH_GLOBAL void direct_kernel(DirectParams p) {
  const Geometry& g = p.g;
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I in_d = static_cast<I>(g.in[0]), in_h = static_cast<I>(g.in[1]), in_w = static_cast<I>(g.in[2]);
  const I ker_d = static_cast<I>(g.ker[0]), ker_h = static_cast<I>(g.ker[1]), ker_w = static_cast<I>(g.ker[2]);
  const I num_k = static_cast<I>(g.k), cg = static_cast<I>(g.cg), kg = static_cast<I>(g.kg);
  const I dd = static_cast<I>(g.dil[0]), dh = static_cast<I>(g.dil[1]), dw = static_cast<I>(g.dil[2]);
  const I x_step = dw * static_cast<I>(g.xs[4]); // x offset between two taps along w
  const I w_step = static_cast<I>(g.ws[4]);      // w offset between two taps along t
  const T* CONVARITH_RESTRICT x = static_cast<const T*>(p.x);
  const T* CONVARITH_RESTRICT w = static_cast<const T*>(p.w);
  T* y = static_cast<T*>(p.y);
  const int64_t total = g.y_elements;
  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < total; e += step) {
    const Coord<I> o = decompose<I>(static_cast<I>(e), g.channels_last, num_k, out_d, out_h, out_w);
    const I k = o.c, n = o.n;
    const I c_first = (k / kg) * cg; // first input channel of k's group
    // Top-left-front input coordinate of the window; taps step by the dilation from there.
    const I id0 = o.d * static_cast<I>(g.stride[0]) - static_cast<I>(g.pad[0]);
    const I ih0 = o.h * static_cast<I>(g.stride[1]) - static_cast<I>(g.pad[1]);
    const I iw0 = o.w * static_cast<I>(g.stride[2]) - static_cast<I>(g.pad[2]);
    const TapSpan<I> vd = clamp_taps<I>(ker_d, dd, id0, in_d);
    const TapSpan<I> vh = clamp_taps<I>(ker_h, dh, ih0, in_h);
    const TapSpan<I> vw = clamp_taps<I>(ker_w, dw, iw0, in_w);
    const I iw_first = iw0 + vw.lo * dw, taps_w = vw.hi - vw.lo; // first in-input tap along w
    float acc = 0.0f;
    if (taps_w > 0) {
      for (I c = 0; c < cg; ++c) {
        for (I r = vd.lo; r < vd.hi; ++r) {
          const I id = id0 + r * dd;
          for (I s = vh.lo; s < vh.hi; ++s) {
            const I ih = ih0 + s * dh;
            // Offsets of the first in-input tap (never of a padding position: they stay in range).
            const I x_row = x_offset<I>(g, n, c_first + c, id, ih, iw_first);
            const I w_row = conv_w_offset<I>(g, k, c, r, s, vw.lo);
            for (I t = 0; t < taps_w; ++t)
              acc += load_elem(x + (x_row + t * x_step)) * load_elem(w + (w_row + t * w_step));
          }
        }
      }
    }
    store_output<T, I>(p.out, y, y_offset<I>(g, n, k, o.d, o.h, o.w), acc, load_bias<T>(p.out, k));
  }
}

template <typename T, typename I>
Status direct_launch(const KernelPlan<DirectParams>& plan, const DirectParams& params, [[maybe_unused]] void* stream) {
  return CONVARITH_LAUNCH((direct_kernel<T, I>), plan.grid, plan.block, 0, stream, params);
}

Status direct_run(const KernelArgs& args) {
  const KernelPlan<DirectParams>& plan = prepared_as<DirectParams>(args);
  DirectParams params = plan.params;
  params.x = args.x;
  params.w = args.w;
  params.out.bias = args.bias;
  params.out.z = args.z;
  params.y = args.y;
  return dispatch_dtype(plan.dtype, [&](auto tag) {
    using T = decltype(tag);
    return plan.wide ? direct_launch<T, int64_t>(plan, params, args.stream)
                     : direct_launch<T, int32_t>(plan, params, args.stream);
  });
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
