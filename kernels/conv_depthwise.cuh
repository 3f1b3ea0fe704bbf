// kernels/conv_depthwise.cuh — `depthwise`: depthwise convolution (groups == C, any channel multiplier K/C) with
// several adjacent outputs along W per thread and the filter in registers.
//
// Computes the same y as `direct` (conv_direct.cuh) for problems with one input channel per group:
//   y[n, k, od, oh, ow] = act(alpha * acc + bias[k] + beta * z), acc = sum over the taps (r, s, t) of
//   x[n, k / m, od*sd - pd + r*dd, oh*sh - ph + s*dh, ow*sw - pw + t*dw] * w[k, 0, r, s, t], m = K/C.
// Formats: x, w, z, y all f32, all f16 or all bf16 (bias the same or f32), fp32 math; activations NC[D]HW or
//   N[D]HWC, read through the Geometry's strides; the filter K x 1 x [D]HW is the same memory in both filter
//   layouts (C/g = 1). The epilogue is numeric.cuh's apply_epilogue (store_output).
// Mapping: one thread per (n, k, od, oh, W chunk of kDepthwiseV = 4 adjacent outputs ow0 .. ow0 + 3); the linear
//   thread index runs in y's memory order with the chunk in place of ow: (n, od, oh, chunk, k) for N[D]HWC, so
//   the lanes of a warp take consecutive channels (x, y and z accesses coalesced along C), and
//   (n, k, od, oh, chunk) for NC[D]HW, so the lanes take consecutive chunks of one row (a warp covers 128
//   adjacent outputs; a load instruction's lanes are 4*sw elements apart and the thread's following loads hit
//   the same 128-byte lines, so every line is fully used). 128-thread blocks, grid-stride over the items;
//   the index is decomposed once per item with FastDiv (kernel_common.cuh; divisors built at prepare, k / m
//   included; integer division in the 64-bit instantiations), never in the tap loops.
// Tap loops, per item:
//   fast shapes (3x3 or 5x5 filters with KD = 1, stride W 1 or 2, dilation W 1; any stride, dilation and padding
//   along H and D): the KH*KW filter taps are loaded into registers once per item; for each filter row s whose
//   input row is inside the input, the row's (V-1)*SW + KW input elements are loaded into registers once (from
//   column offsets computed once per item and clamped into the row, so the loads are unpredicated) and
//   the V x KW FMAs read them from there (a 3x3 s1 row: 6 loads for 12 FMAs); which of those columns lie inside
//   the input is computed once per item, and the loads and FMAs of the others are predicated off, so padding is
//   never multiplied (an Inf weight gives +-Inf at the border as `direct` does, not Inf * 0 = NaN). The tap
//   loops unroll completely: one pass of the grid-stride loop is one item, with no inner loop.
//   generic (every other depthwise problem: any kernel, stride, dilation, rank 1-3): per tap (r, s, t) one
//   filter load into a register, reused by the V outputs; each output adds only its in-input taps.
//   Both sum each output in the order (r, s, t) from +0, so both give the same bits.
// Shared memory: none. Registers: acc[4] + the fast shapes' filter (9 or 25) and row (6 to 11) registers.
// supports(): op == conv (the table) and groups == C (C/g = 1 input channel per group); the message names C,
//   groups and C/g. Every size, stride, dilation and padding the arithmetic allows; 64-bit offsets when
//   index_fits_int32 is false (the int64_t instantiations, generic loop only).
// Determinism: bitwise deterministic; each output is one thread's sum in the fixed order, then the epilogue.
//   z may be y (each element is read, then written, by the same thread).
// Cost estimate (auto): make_prepared at kDepthwiseEfficiency of the FMA peak plus the compulsory bytes, below
//   tiled's and direct's for the same problem, so `auto` takes depthwise for depthwise layers.
// Epilogue: the fast shapes are instantiated per activation for identity, relu, leaky_relu and clip (numeric.cuh's
//   apply_epilogue_as<kAct>, the same functions as apply_epilogue's switch: the same bits) and once for any
//   activation (kActAny: the others); the launch picks by the plan's activation. Before, the one loop held every
//   activation's code four times (once per output): on sm_90 3x3 s1 f32 that was most of its 1274 static
//   instructions, which the bound model counts per item.
// Instantiations: {float, f16, bf16} x (int x shape {3x3 s1, 3x3 s2, 5x5 s1, 5x5 s2} x act {identity, relu,
//   leaky_relu, clip, any}; int x generic x any; int64_t x generic x any).
// Registers (ptxas 13.0, kernels/kernel_resources.inc): about 48-60 for the int instantiations; 0 spills.
// Tests: test_kernels_depthwise (edge list, real layers, every dtype/layout/epilogue, Inf weights, determinism),
//   test_kernels_formats (every format), test_cli_formats (--device emulated --algo depthwise). Bench: convarith_bench
//   --device=cuda --benchmark_filter='convarith:depthwise$'. Untested on a GPU.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "kernel_common.cuh"
#include "kernel_taps.cuh"

namespace convarith::kernels {

constexpr int kDepthwiseThreads = 128; // threads per block
constexpr int kDepthwiseV = 4;         // adjacent outputs along W per thread
// Of the fp32 FMA peak, for the cost estimate: its hot loops are about 1/3 FMAs (loads of x and the filter beside
// them), well above tiled's 0.13 on layers with one channel per group.
constexpr double kDepthwiseEfficiency = 0.3;

// The specialised tap loops (KernelPlan::variant / 2; variant & 1 is the 64-bit index).
enum DepthwiseShape : int {
  kDepthwiseGeneric = 0,
  kDepthwise3x3s1 = 1,
  kDepthwise3x3s2 = 2,
  kDepthwise5x5s1 = 3,
  kDepthwise5x5s2 = 4,
  kDepthwiseShapes = 5
};
constexpr int depthwise_ker(int shape) {
  return shape == kDepthwiseGeneric ? 0 : shape <= kDepthwise3x3s2 ? 3 : 5;
}
constexpr int depthwise_stride(int shape) {
  return shape == kDepthwiseGeneric ? 0 : shape % 2 == 1 ? 1 : 2;
}
// Input elements of one filter row the V outputs of a thread read (fast shapes).
constexpr int depthwise_span(int shape) {
  return (kDepthwiseV - 1) * depthwise_stride(shape) + depthwise_ker(shape);
}

struct DepthwiseParams {
  Geometry g;
  Out out; // epilogue, bias (may be null), z
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  int64_t chunks = 0; // output chunks per row: ceil(OW / V)
  int64_t items = 0;  // N * K * OD * OH * chunks: one thread each
  // The 32-bit instantiations' item decomposition and c = k / m by FastDiv (built when the index fits 31 bits).
  FastDecompose item;
  FastDiv div_mult;
};

inline Status depthwise_supports(const ConvProblem& p, const DeviceInfo&) {
  if (p.groups() != p.c())
    return not_supported("depthwise: groups " + std::to_string(p.groups()) + " must equal C " + std::to_string(p.c()) +
                         " (one input channel per group; this problem has C/groups = " +
                         std::to_string(p.c() / p.groups()) + "); use igemm, tiled or direct");
  return Status::ok();
}

// The tap loop a problem gets: a fast shape when the filter is 3x3 or 5x5 with one depth tap, the W stride 1 or 2
// and the W dilation 1; else the generic loop.
inline int depthwise_shape(const ConvProblem& p) {
  const AxisParams& ad = p.axis3(0);
  const AxisParams& ah = p.axis3(1);
  const AxisParams& aw = p.axis3(2);
  if (ad.k != 1 || ah.k != aw.k || aw.d != 1 || (aw.s != 1 && aw.s != 2))
    return kDepthwiseGeneric;
  if (aw.k == 3)
    return aw.s == 1 ? kDepthwise3x3s1 : kDepthwise3x3s2;
  if (aw.k == 5)
    return aw.s == 1 ? kDepthwise5x5s1 : kDepthwise5x5s2;
  return kDepthwiseGeneric;
}

// With a given tap loop (tests force the generic one on fast-shape problems; a fast shape is taken only where
// depthwise_shape allows it). Precondition: depthwise_supports(p, dev) is OK.
inline Result<Prepared> depthwise_prepare_shape(const ConvProblem& p, const DeviceInfo& dev, int shape) {
  if (shape != kDepthwiseGeneric && shape != depthwise_shape(p))
    return invalid_argument("depthwise: tap loop " + std::to_string(shape) + " does not fit " + p.name());
  KernelPlan<DepthwiseParams> plan;
  plan.wide = !index_fits_int32(p);
  if (plan.wide) // 64-bit offsets: the generic loop only (one int64_t instantiation per dtype)
    shape = kDepthwiseGeneric;
  DepthwiseParams& q = plan.params;
  q.g = make_geometry(p);
  q.out = make_out(p);
  q.chunks = (q.g.out[2] + kDepthwiseV - 1) / kDepthwiseV;
  q.items = q.g.n * q.g.k * q.g.out[0] * q.g.out[1] * q.chunks;
  if (!plan.wide) {
    q.item = FastDecompose(q.g.channels_last, q.g.k, q.g.out[0], q.g.out[1], q.chunks);
    q.div_mult = FastDiv(std::max<int64_t>(1, q.g.kg));
  }
  plan.dtype = p.dtype(TensorId::kX);
  plan.variant = shape * 2 + (plan.wide ? 1 : 0);
  plan.block = dim3(kDepthwiseThreads);
  plan.grid = dim3(grid_blocks(q.items, kDepthwiseThreads, max_grid_blocks(dev)));
  return make_prepared(p, dev, plan, kDepthwiseEfficiency);
}

// Precondition: depthwise_supports(p, dev) is OK. The tap loop and the item count are computed here, once per plan.
inline Result<Prepared> depthwise_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  return depthwise_prepare_shape(p, dev, depthwise_shape(p));
}

namespace cuda {
Status depthwise_run(const KernelArgs& args);
}
namespace emu {
Status depthwise_run(const KernelArgs& args);
}

} // namespace convarith::kernels

#if defined(CONVARITH_KERNEL_BODIES)
namespace convarith::kernels::CONVARITH_KNS {

// The item's in-input taps, solved per axis (clamp_taps: a huge kernel costs only its in-input taps, and no tap
// coordinate of an output past out_w is formed, so nothing overflows with a huge stride); each of the item's nv
// outputs (nv = the ones below out_w) sums its taps in (r, s, t) order, as the fast paths do.
template <typename T, typename I>
CONVARITH_DEVICE void depthwise_generic_taps(const Geometry& g, const T* x, const T* w, I x_item, I w_item, I id0,
                                             I ih0, I iw0, int nv, float (&acc)[kDepthwiseV]) {
  const I kd = static_cast<I>(g.ker[0]), kh = static_cast<I>(g.ker[1]), kw = static_cast<I>(g.ker[2]);
  const I in_d = static_cast<I>(g.in[0]), in_h = static_cast<I>(g.in[1]), in_w = static_cast<I>(g.in[2]);
  const I dd = static_cast<I>(g.dil[0]), dh = static_cast<I>(g.dil[1]), dw = static_cast<I>(g.dil[2]);
  const I sw = static_cast<I>(g.stride[2]);
  const I xs2 = static_cast<I>(g.xs[2]), xs3 = static_cast<I>(g.xs[3]), xs4 = static_cast<I>(g.xs[4]);
  const I ws2 = static_cast<I>(g.ws[2]), ws3 = static_cast<I>(g.ws[3]), ws4 = static_cast<I>(g.ws[4]);
  const TapSpan<I> rd = clamp_taps<I>(kd, dd, id0, in_d), rh = clamp_taps<I>(kh, dh, ih0, in_h);
  for (I r = rd.lo; r < rd.hi; ++r) {
    const I id = id0 + r * dd;
    for (I s = rh.lo; s < rh.hi; ++s) {
      const I ih = ih0 + s * dh;
      const T* row = x + (x_item + id * xs2 + ih * xs3);
      const T* wrow = w + (w_item + r * ws2 + s * ws3);
      CONVARITH_UNROLL
      for (int v = 0; v < kDepthwiseV; ++v) { // unrolled: acc stays in registers
        if (v >= nv)
          break;
        const I start = iw0 + static_cast<I>(v) * sw; // output ow0 + v < out_w: a valid coordinate
        const TapSpan<I> rw = clamp_taps<I>(kw, dw, start, in_w);
        for (I t = rw.lo; t < rw.hi; ++t)
          acc[v] += load_elem(row + (start + t * dw) * xs4) * load_elem(wrow + t * ws4);
      }
    }
  }
}

// The item's (n, k, od, oh, chunk) and input channel c = k / m: FastDiv for the 32-bit index (mulhi, add, shift per
// digit instead of a division's ~20 instructions), integer division for the 64-bit one.
template <typename I> struct DepthwiseItem {
  Coord<I> q;
  I c;
};
template <typename I>
CONVARITH_DEVICE DepthwiseItem<I> depthwise_item(const DepthwiseParams& p, int64_t e, I num_k, I out_d, I out_h,
                                                 I chunks) {
  DepthwiseItem<I> it;
  if constexpr (sizeof(I) == 4) {
    it.q = p.item(static_cast<int>(e));
    it.c = p.div_mult.div(it.q.c);
  } else {
    it.q = decompose<I>(static_cast<I>(e), p.g.channels_last, num_k, out_d, out_h, chunks);
    it.c = it.q.c / static_cast<I>(p.g.kg);
  }
  return it;
}

// One instantiation per element type T, index type I, tap loop kShape (DepthwiseShape) and activation kAct (the
// fast shapes: identity, relu, leaky_relu and clip at compile time, kActAny for the others; generic: kActAny).
template <typename T, typename I, int kShape, int kAct> CONVARITH_GLOBAL void depthwise_kernel(DepthwiseParams p) {
  using U = std::make_unsigned_t<I>;
  constexpr int V = kDepthwiseV;
  const Geometry& g = p.g;
  const T* CONVARITH_RESTRICT x = static_cast<const T*>(p.x);
  const T* CONVARITH_RESTRICT w = static_cast<const T*>(p.w);
  T* y = static_cast<T*>(p.y);
  const I num_k = static_cast<I>(g.k);
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I chunks = static_cast<I>(p.chunks);
  const I sd = static_cast<I>(g.stride[0]), sh = static_cast<I>(g.stride[1]), sw = static_cast<I>(g.stride[2]);
  const I pd = static_cast<I>(g.pad[0]), ph = static_cast<I>(g.pad[1]), pw = static_cast<I>(g.pad[2]);
  const I in_d = static_cast<I>(g.in[0]), in_h = static_cast<I>(g.in[1]), in_w = static_cast<I>(g.in[2]);
  const I dh = static_cast<I>(g.dil[1]);
  const I xs0 = static_cast<I>(g.xs[0]), xs1 = static_cast<I>(g.xs[1]), xs2 = static_cast<I>(g.xs[2]),
          xs3 = static_cast<I>(g.xs[3]), xs4 = static_cast<I>(g.xs[4]);
  const I ws0 = static_cast<I>(g.ws[0]), ws3 = static_cast<I>(g.ws[3]), ws4 = static_cast<I>(g.ws[4]);
  const I ys4 = static_cast<I>(g.ys[4]);

  const int64_t step = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < p.items; e += step) {
    // (n, k, od, oh, chunk) in y's memory order: the chunk stands for ow.
    const DepthwiseItem<I> item = depthwise_item<I>(p, e, num_k, out_d, out_h, chunks);
    const Coord<I>& q = item.q;
    const I k = q.c, c = item.c;
    const I ow0 = q.w * V;
    const I id0 = q.d * sd - pd, ih0 = q.h * sh - ph, iw0 = ow0 * sw - pw;
    const I x_item = q.n * xs0 + c * xs1;
    const I w_item = k * ws0;
    float acc[V];
    CONVARITH_UNROLL
    for (int v = 0; v < V; ++v)
      acc[v] = 0.0f;

    if constexpr (kShape != kDepthwiseGeneric) {
      constexpr int KS = depthwise_ker(kShape), SW = depthwise_stride(kShape), SPAN = depthwise_span(kShape);
      // The filter of channel k in registers (KD = 1: the depth tap is r = 0).
      float wr[KS * KS];
      CONVARITH_UNROLL
      for (int j = 0; j < KS * KS; ++j)
        wr[j] = load_elem(w + (w_item + static_cast<I>(j / KS) * ws3 + static_cast<I>(j % KS) * ws4));
      // Which of the span's columns are inside the input (the same for every row): the loads and the FMAs of the
      // others are predicated off, so padding is never multiplied (an Inf tap gives Inf at the border, not NaN).
      // The columns' offsets are clamped into the row, so every load of a row is issued unpredicated from an
      // address inside x (one add and one wide multiply-add each); the values of the clamped columns are never used.
      bool col_ok[SPAN];
      I col[SPAN];
      CONVARITH_UNROLL
      for (int u = 0; u < SPAN; ++u) {
        const I iw = iw0 + static_cast<I>(u);
        col_ok[u] = static_cast<U>(iw) < static_cast<U>(in_w);
        col[u] = (col_ok[u] ? iw : (iw < 0 ? I{0} : in_w - 1)) * xs4;
      }
      if (static_cast<U>(id0) < static_cast<U>(in_d)) { // else every tap is in the D padding: acc stays 0
        const I x_plane = x_item + id0 * xs2;
        CONVARITH_UNROLL
        for (int s = 0; s < KS; ++s) {
          const I ih = ih0 + static_cast<I>(s) * dh;
          if (static_cast<U>(ih) >= static_cast<U>(in_h))
            continue; // the row is padding: no products at all
          const I row = x_plane + ih * xs3;
          // The row's input elements in registers, each loaded once for the V x KS FMAs that read it.
          float xr[SPAN];
          CONVARITH_UNROLL
          for (int u = 0; u < SPAN; ++u)
            xr[u] = load_elem(x + (row + col[u]));
          CONVARITH_UNROLL
          for (int t = 0; t < KS; ++t) {
            CONVARITH_UNROLL
            for (int v = 0; v < V; ++v)
              if (col_ok[v * SW + t])
                acc[v] += xr[v * SW + t] * wr[s * KS + t];
          }
        }
      }
    } else {
      const int nv = out_w - ow0 < static_cast<I>(V) ? static_cast<int>(out_w - ow0) : V;
      depthwise_generic_taps<T, I>(g, x, w, x_item, w_item, id0, ih0, iw0, nv, acc);
    }

    const float bias = load_bias<T>(p.out, static_cast<int64_t>(k));
    const I y_row = y_offset<I>(g, q.n, k, q.d, q.h, ow0);
    CONVARITH_UNROLL
    for (int v = 0; v < V; ++v)
      if (ow0 + static_cast<I>(v) < out_w)
        store_output<T, I, kAct>(p.out, y, y_row + static_cast<I>(v) * ys4, acc[v], bias);
  }
}

template <typename T, typename I, int kShape>
Status depthwise_launch(const KernelPlan<DepthwiseParams>& plan, const DepthwiseParams& params,
                        [[maybe_unused]] void* stream) {
  if constexpr (kShape != kDepthwiseGeneric) {
    switch (params.out.ep.act) {
    case kActIdentity:
      return CONVARITH_LAUNCH((depthwise_kernel<T, I, kShape, kActIdentity>), plan.grid, plan.block, 0, stream, params);
    case kActRelu:
      return CONVARITH_LAUNCH((depthwise_kernel<T, I, kShape, kActRelu>), plan.grid, plan.block, 0, stream, params);
    case kActLeakyRelu:
      return CONVARITH_LAUNCH((depthwise_kernel<T, I, kShape, kActLeakyRelu>), plan.grid, plan.block, 0, stream,
                              params);
    case kActClip:
      return CONVARITH_LAUNCH((depthwise_kernel<T, I, kShape, kActClip>), plan.grid, plan.block, 0, stream, params);
    default:
      break;
    }
  }
  return CONVARITH_LAUNCH((depthwise_kernel<T, I, kShape, kActAny>), plan.grid, plan.block, 0, stream, params);
}

template <typename T, typename I>
Status depthwise_launch_shape(const KernelPlan<DepthwiseParams>& plan, const DepthwiseParams& params, void* stream) {
  switch (plan.variant / 2) {
  case kDepthwise3x3s1:
    return depthwise_launch<T, I, kDepthwise3x3s1>(plan, params, stream);
  case kDepthwise3x3s2:
    return depthwise_launch<T, I, kDepthwise3x3s2>(plan, params, stream);
  case kDepthwise5x5s1:
    return depthwise_launch<T, I, kDepthwise5x5s1>(plan, params, stream);
  case kDepthwise5x5s2:
    return depthwise_launch<T, I, kDepthwise5x5s2>(plan, params, stream);
  default:
    return depthwise_launch<T, I, kDepthwiseGeneric>(plan, params, stream);
  }
}

Status depthwise_run(const KernelArgs& args) {
  const KernelPlan<DepthwiseParams>& plan = prepared_as<DepthwiseParams>(args);
  DepthwiseParams params = plan.params;
  params.x = args.x;
  params.w = args.w;
  params.out.bias = args.bias;
  params.out.z = args.z;
  params.y = args.y;
  if (params.items == 0)
    return Status::ok(); // N = 0 (or an empty output): nothing to launch
  return dispatch_dtype(plan.dtype, [&](auto tag) {
    using T = decltype(tag);
    return plan.wide ? depthwise_launch<T, int64_t, kDepthwiseGeneric>(plan, params, args.stream)
                     : depthwise_launch_shape<T, int32_t>(plan, params, args.stream);
  });
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
