// kernels/kernel_common.cuh — what every kernel family shares: the rank-3 geometry of a problem as
// one flat struct of 64-bit numbers, the 64-bit offset helpers, the choice between 32- and 64-bit
// index arithmetic, grid sizing and the argument checks of a run().
//
// The geometry is copied from ConvProblem's accessors (axis3()/out3(), the element counts) on the
// host; no size is re-derived here. Rank 1 and 2 problems are rank 3 with leading unit axes, so
// every kernel has one code path over (D, H, W).
//
// Index type: kernels are templates on the integer type they decompose and offset with. int32_t
// is chosen only when index_fits_int32() proves every element count and every intermediate
// coordinate product (o*s, r*d, paddings) stays below 2^31; otherwise int64_t. Loop counters that
// step by the whole grid are always 64-bit (a 32-bit counter near 2^31 plus the grid stride wraps).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include <memory>

#include "convarith/problem.hpp"
#include "numeric.cuh"
#include "portable.cuh"
#include "row.hpp"

// `#pragma unroll` for nvcc; the host compiler (which warns on unknown pragmas) unrolls on its own.
#if defined(__CUDACC__)
#define CONVARITH_PRAGMA_(x) _Pragma(#x)
#define CONVARITH_UNROLL _Pragma("unroll")
#define CONVARITH_UNROLL_N(n) CONVARITH_PRAGMA_(unroll n)
#else
#define CONVARITH_UNROLL
#define CONVARITH_UNROLL_N(n)
#endif

namespace convarith::kernels {

// One problem's sizes in the rank-3 view. Arrays are indexed D=0, H=1, W=2.
struct Geometry {
  int64_t n = 0;
  int64_t c = 0;      // input channels
  int64_t k = 0;      // output channels (= c for pooling)
  int64_t groups = 1; // 1 for pooling
  int64_t cg = 0;     // input channels per group, C / groups
  int64_t kg = 0;     // output channels per group, K / groups
  int64_t in[3] = {1, 1, 1};
  int64_t out[3] = {1, 1, 1};
  int64_t ker[3] = {1, 1, 1};
  int64_t stride[3] = {1, 1, 1};
  int64_t pad[3] = {0, 0, 0};    // padding at the start (p_lo)
  int64_t pad_hi[3] = {0, 0, 0}; // padding at the end (p_hi); pooling's count_include_pad needs it
  int64_t dil[3] = {1, 1, 1};
  int64_t in_spatial = 1;
  int64_t out_spatial = 1;
  int64_t ker_spatial = 1;
  int64_t x_elements = 0;
  int64_t w_elements = 0;
  int64_t y_elements = 0;
  // Element strides in the rank-3 view, from the problem's tensor descriptors (layouts): x and y (and z,
  // which has y's layout) over (n, c, d, h, w); w over (k, c/g, r, s, t) for conv and (c, k/g, r, s, t) for
  // the transposed filter. Unit leading axes of rank 1-2 problems have stride 0 (their index is always 0).
  int64_t xs[5] = {0, 0, 0, 0, 1};
  int64_t ys[5] = {0, 0, 0, 0, 1};
  int64_t ws[5] = {0, 0, 0, 0, 1};
  bool channels_last = false;   // x, z, y are N[D]HWC
  bool w_channels_last = false; // the filter's channel axis (C/g for conv, K/g for transposed) is innermost
};

// The rank-3 strides of a resolved tensor with logical dims (d0, d1, spatial...).
inline void rank3_strides(const TensorDesc& t, int spatial_rank, int64_t (&out)[5]) {
  for (int j = 0; j < 5; ++j)
    out[j] = 0;
  if (t.rank == 0)
    return;
  out[0] = t.strides[0];
  out[1] = t.strides[1];
  for (int j = 0; j < spatial_rank; ++j)
    out[2 + (3 - spatial_rank) + j] = t.strides[static_cast<size_t>(2 + j)];
}

inline Geometry make_geometry(const ConvProblem& p) {
  Geometry g;
  g.n = p.n();
  g.c = p.c();
  g.k = p.k();
  g.groups = is_pool(p.op()) ? 1 : p.groups();
  g.cg = g.c / g.groups;
  g.kg = g.k / g.groups;
  for (int j = 0; j < 3; ++j) {
    const AxisParams& a = p.axis3(j);
    g.in[j] = a.i;
    g.out[j] = p.out3(j);
    g.ker[j] = a.k;
    g.stride[j] = a.s;
    g.pad[j] = a.p_lo;
    g.pad_hi[j] = a.p_hi;
    g.dil[j] = a.d;
  }
  g.in_spatial = p.in_spatial();
  g.out_spatial = p.out_spatial();
  g.ker_spatial = p.kernel_spatial();
  g.x_elements = p.x_elements();
  g.w_elements = p.w_elements();
  g.y_elements = p.y_elements();
  rank3_strides(p.tensor(TensorId::kX), p.rank(), g.xs);
  rank3_strides(p.tensor(TensorId::kY), p.rank(), g.ys);
  rank3_strides(p.tensor(TensorId::kW), p.rank(), g.ws);
  g.channels_last = p.layout() == Layout::kNHWC;
  g.w_channels_last = p.tensor(TensorId::kW).rank > 0 && p.w_layout() == Layout::kNHWC;
  return g;
}

// True when every element count and every coordinate product a kernel forms fits in int32_t:
// element counts and the kernel size < 2^31, and per axis (i + o) * s + k * d + p_lo + p_hi + a <
// 2^31 (that bounds o*s - p + r*d for convolution and pooling, i + p_lo + p_hi for pooling's padded
// extent, and i*s + r*d and o + p_lo for the transposed form). Products of per-axis tap counts
// (pooling's divisor: up to the kernel size, which pooling's missing weight tensor does not bound)
// are formed in 64 bits by the kernels whatever this says (pool_direct.cuh).
inline bool index_fits_int32(const ConvProblem& p) {
  constexpr int64_t kLimit = int64_t{1} << 31;
  if (p.x_elements() >= kLimit || p.w_elements() >= kLimit || p.y_elements() >= kLimit || p.kernel_spatial() >= kLimit)
    return false;
  if (p.n() * std::max(p.c(), p.k()) >= kLimit)
    return false;
  for (int j = 0; j < 3; ++j) {
    const AxisParams& a = p.axis3(j);
    int64_t sum = 0, t = 0;
    if (!checked_add(a.i, p.out3(j), &t) || !checked_mul(t, a.s, &t) || !checked_add(sum, t, &sum))
      return false;
    if (!checked_mul(a.k, a.d, &t) || !checked_add(sum, t, &sum))
      return false;
    if (!checked_add(sum, a.p_lo, &sum) || !checked_add(sum, a.p_hi, &sum) || !checked_add(sum, a.a, &sum))
      return false;
    if (sum >= kLimit)
      return false;
  }
  return true;
}

// Flat offsets into the tensors, through the geometry's strides (so one kernel source runs NC[D]HW and
// N[D]HWC), in the kernel's index type. Host code calls them with int64_t (the reliability tests check them on
// tensors past 2^31 elements without allocating).
template <typename I> CONVARITH_HOST_DEVICE I x_offset(const Geometry& g, I n, I c, I d, I h, I w) {
  return n * static_cast<I>(g.xs[0]) + c * static_cast<I>(g.xs[1]) + d * static_cast<I>(g.xs[2]) +
         h * static_cast<I>(g.xs[3]) + w * static_cast<I>(g.xs[4]);
}
template <typename I> CONVARITH_HOST_DEVICE I y_offset(const Geometry& g, I n, I k, I d, I h, I w) {
  return n * static_cast<I>(g.ys[0]) + k * static_cast<I>(g.ys[1]) + d * static_cast<I>(g.ys[2]) +
         h * static_cast<I>(g.ys[3]) + w * static_cast<I>(g.ys[4]);
}
// Convolution filter K x C/g x KD x KH x KW: `k` is the output channel, `cc` the channel within its group.
template <typename I> CONVARITH_HOST_DEVICE I conv_w_offset(const Geometry& g, I k, I cc, I r, I s, I t) {
  return k * static_cast<I>(g.ws[0]) + cc * static_cast<I>(g.ws[1]) + r * static_cast<I>(g.ws[2]) +
         s * static_cast<I>(g.ws[3]) + t * static_cast<I>(g.ws[4]);
}
// Transposed-convolution filter C x K/g x KD x KH x KW: `c` the input channel, `kk` the output channel
// within its group.
template <typename I> CONVARITH_HOST_DEVICE I transpose_w_offset(const Geometry& g, I c, I kk, I r, I s, I t) {
  return c * static_cast<I>(g.ws[0]) + kk * static_cast<I>(g.ws[1]) + r * static_cast<I>(g.ws[2]) +
         s * static_cast<I>(g.ws[3]) + t * static_cast<I>(g.ws[4]);
}

// Grid-stride kernels launch at most this many blocks; each thread then loops over the rest. On the
// GPU it keeps gridDim.x far below its 2^31-1 limit for any problem and is still many waves on any
// GPU. Under the executor the cap is tiny on purpose: every emulated test then walks the grid-stride
// and block-stride loops (a kernel that only handles its first element or tile fails them).
constexpr int64_t kMaxGridBlocksGpu = 65536;
constexpr int64_t kMaxGridBlocksEmulated = 3;
// The cap for the device a plan is prepared for. prepare() runs in host code (kernel_algorithms.cpp) for the CUDA
// rows and the emulated rows alike, so the cap comes from the device, never from the compilation: it once came
// from CONVARITH_GPU_ONLY, which is 0 in every host compilation, and every CUDA plan launched at most 3 blocks.
inline int64_t max_grid_blocks(const DeviceInfo& dev) {
  return dev.device == Device::kCuda ? kMaxGridBlocksGpu : kMaxGridBlocksEmulated;
}

inline unsigned grid_blocks(int64_t work_items, int64_t items_per_block, int64_t max_blocks) {
  const int64_t blocks = (work_items + items_per_block - 1) / items_per_block;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, max_blocks)));
}

// What a kernel row prepares once per plan: its params with the pointers still null, the launch shape and
// which instantiation runs (variant: e.g. outputs per thread; wide: the 64-bit index instantiation).
// prepare() fills it; run() copies it, binds the pointers and launches.
template <typename Params> struct KernelPlan {
  Params params;
  dim3 grid, block;
  size_t smem_bytes = 0;
  int variant = 0;
  bool wide = false;               // int64_t index arithmetic (index_fits_int32 is false)
  DataType dtype = DataType::kF32; // the element type of x, w, z, y: which instantiation runs
};

template <typename Params> inline const KernelPlan<Params>& prepared_as(const KernelArgs& args) {
  return *static_cast<const KernelPlan<Params>*>(args.prepared);
}

// Wraps a KernelPlan into the Plan's prepared state with a cost estimate: compute at `efficiency` of the
// device's fp32 FMA rate (sm_90: 66.9 TFLOP/s; scaled by SMs for other devices) plus the compulsory bytes at
// HBM speed (3.35 TB/s), plus a launch. A first, simple ranking only; the bound model (convarith model) is the
// real estimate.
template <typename Params>
inline Prepared make_prepared(const ConvProblem& p, const DeviceInfo& dev, KernelPlan<Params> plan, double efficiency,
                              size_t workspace = 0) {
  Prepared out;
  out.workspace_bytes = workspace;
  const double sms = dev.sms > 0 ? dev.sms : 132.0;
  const double peak_flops = 66.9e12 * sms / 132.0;
  out.cost_us = 3.0 + p.flops() / (peak_flops * efficiency) * 1e6 + static_cast<double>(p.min_bytes()) / 3.35e12 * 1e6;
  out.state = std::make_shared<const KernelPlan<Params>>(std::move(plan));
  return out;
}

// ---- formats: element types, layouts, the epilogue -------------------------------------------------------------
// Kernels are templates on the element type T of x, w, z and y (float, f16, bf16; kernel_algorithms.cpp declares
// them) and load through to_float / store through from_float<T>: every sum is fp32. bias is T or float
// (Out::bias_f32). Every global access goes through CONVARITH_LDG / CONVARITH_STG (f16/bf16 as their 16-bit bits).
CONVARITH_DEVICE float load_elem(const float* p) {
  return CONVARITH_LDG(p);
}
CONVARITH_DEVICE float load_elem(const f16* p) {
  return to_float(f16{CONVARITH_LDG(&p->bits)});
}
CONVARITH_DEVICE float load_elem(const bf16* p) {
  return to_float(bf16{CONVARITH_LDG(&p->bits)});
}
CONVARITH_DEVICE void store_elem(float* p, float v) {
  CONVARITH_STG(p, v);
}
CONVARITH_DEVICE void store_elem(f16* p, float v) {
  CONVARITH_STG(&p->bits, from_float<f16>(v).bits);
}
CONVARITH_DEVICE void store_elem(bf16* p, float v) {
  CONVARITH_STG(&p->bits, from_float<bf16>(v).bits);
}

// What every conv kernel's output stage needs besides y: the epilogue, the bias (null, T or float) and z (null
// unless the epilogue has a residual; z has y's layout and strides and may be y itself).
struct Out {
  EpilogueParams ep;
  int bias_f32 = 0; // bias is float whatever T is
  const void* bias = nullptr;
  const void* z = nullptr;
};

inline EpilogueParams epilogue_params(const ConvProblem& p) {
  const Epilogue& e = p.epilogue();
  EpilogueParams ep;
  ep.act = static_cast<int>(e.activation);
  ep.alpha = e.alpha;
  ep.beta = e.beta;
  ep.a = e.activation == Activation::kClip ? e.clip_min : e.leaky_alpha;
  ep.b = e.clip_max;
  return ep;
}

// The pointer-free part of Out, at prepare().
inline Out make_out(const ConvProblem& p) {
  Out o;
  o.ep = epilogue_params(p);
  const TensorDesc& b = p.tensor(TensorId::kBias);
  o.bias_f32 = b.rank > 0 && b.dtype == DataType::kF32 ? 1 : 0;
  return o;
}

// The bias of channel k (0 without bias).
template <typename T> CONVARITH_DEVICE float load_bias(const Out& o, int64_t k) {
  if (o.bias == nullptr)
    return 0.0f;
  return o.bias_f32 ? load_elem(static_cast<const float*>(o.bias) + k) : load_elem(static_cast<const T*>(o.bias) + k);
}

// y[off] = act(alpha * acc + bias + beta * z[off]) (z read before y is written: z may be y).
template <typename T, typename I, int kAct = kActAny>
CONVARITH_DEVICE void store_output(const Out& o, T* y, I off, float acc, float bias) {
  const float zv = o.ep.beta != 0.0f ? load_elem(static_cast<const T*>(o.z) + off) : 0.0f;
  store_elem(y + off, apply_epilogue_as<kAct>(o.ep, acc, bias, zv));
}

// A linear index over an activation tensor in its MEMORY order decomposed into (n, c, d, h, w): (n, d, h, w, c)
// when channels_last (consecutive threads then touch consecutive channels, coalesced), else (n, c, d, h, w).
template <typename I> struct Coord { I n, c, d, h, w; };
template <typename I>
CONVARITH_HOST_DEVICE Coord<I> decompose(I e, bool channels_last, I num_c, I dim_d, I dim_h, I dim_w) {
  Coord<I> q;
  if (channels_last) {
    q.c = e % num_c;
    e /= num_c;
  }
  q.w = e % dim_w;
  e /= dim_w;
  q.h = e % dim_h;
  e /= dim_h;
  q.d = e % dim_d;
  e /= dim_d;
  if (channels_last) {
    q.n = e;
  } else {
    q.c = e % num_c;
    q.n = e / num_c;
  }
  return q;
}

// ---- division by a run-time constant without a division ----------------------------------------------------------
// FastDiv(d) for 1 <= d < 2^31 divides any 0 <= n < 2^31 with one high multiply, an add and a shift (an integer
// division by a run-time value is a ~20-instruction sequence on the GPU): with l = ceil(log2 d) and
// m = floor(2^32 (2^l - d) / d) + 1 (< 2^32), n / d = (mulhi(n, m) + n) >> l; mulhi(n, m) < n keeps the sum below
// 2^32 for n < 2^31. Built on the host at prepare(); test_kernels_emulated checks it against / exhaustively on
// small divisors and at the ends of the range.
struct FastDiv {
  uint32_t d = 1, m = 1, l = 0; // d = 1: m = 1, l = 0 gives (0 + n) >> 0 = n
  FastDiv() = default;
  explicit FastDiv(int64_t divisor) {
    d = static_cast<uint32_t>(divisor);
    l = 0;
    while ((uint64_t{1} << l) < d)
      ++l;
    m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << l) - d)) / d + 1);
  }
  CONVARITH_HOST_DEVICE int div(int n) const {
    const uint32_t u = static_cast<uint32_t>(n);
#if defined(__CUDA_ARCH__)
    const uint32_t hi = __umulhi(u, m);
#else
    const uint32_t hi = static_cast<uint32_t>((static_cast<uint64_t>(u) * m) >> 32);
#endif
    return static_cast<int>((hi + u) >> l);
  }
  // q = n / d and r = n - q * d.
  CONVARITH_HOST_DEVICE int divmod(int n, int& r) const {
    const int q = div(n);
    r = n - q * static_cast<int>(d);
    return q;
  }
};

// decompose() for 32-bit indices with its divisors as FastDiv, built once at prepare: the same (n, c, d, h, w) for
// every 0 <= e < 2^31 (a zero extent, which no launched index meets, is taken as 1).
struct FastDecompose {
  bool channels_last = false;
  FastDiv c, d, h, w;
  FastDecompose() = default;
  FastDecompose(bool cl, int64_t num_c, int64_t dim_d, int64_t dim_h, int64_t dim_w)
      : channels_last(cl), c(at_least_1(num_c)), d(at_least_1(dim_d)), h(at_least_1(dim_h)), w(at_least_1(dim_w)) {}
  CONVARITH_HOST_DEVICE Coord<int> operator()(int e) const {
    Coord<int> q;
    if (channels_last)
      e = c.divmod(e, q.c);
    e = w.divmod(e, q.w);
    e = h.divmod(e, q.h);
    e = d.divmod(e, q.d);
    if (channels_last)
      q.n = e;
    else
      q.n = c.divmod(e, q.c);
    return q;
  }

private:
  static int64_t at_least_1(int64_t v) { return v < 1 ? 1 : v; }
};

// Runs f(T{}) for the plan's element type (float, f16, bf16).
template <typename F> inline Status dispatch_dtype(DataType t, F&& f) {
  switch (t) {
  case DataType::kF16:
    return f(f16{});
  case DataType::kBF16:
    return f(bf16{});
  default:
    return f(float{});
  }
}

} // namespace convarith::kernels
