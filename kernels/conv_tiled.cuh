// kernels/conv_tiled.cuh — `tiled`: convolution with the input tile and the filter slice staged in
// shared memory and several output channels per thread held in registers.
//
// Computes the same y as `direct` (conv_direct.cuh): y = act(alpha * acc + bias[k] + beta * z), acc the sum over
//   c in k's group and taps.
// Formats: x, w, z, y all f32, all f16 or all bf16 (bias the same or f32); activations NC[D]HW or N[D]HWC and
//   filters K x C/g x [D]HW or K x [D]HW x C/g in any combination, read through the Geometry's strides. The
//   staged tiles are fp32 whatever T is (converted once while staging), so the compute loop and the shared-memory
//   layout below are the same for every format; the epilogue is numeric.cuh's apply_epilogue.
//
// Block tile: one (n, od, group) and a tile of tile_h x tile_w = 128 output pixels (oh, ow) times kt
//   output channels of that group. tile_w = clamp(next power of two >= OW, 8, 32), tile_h = 128/tile_w,
//   or 1 x 128 when OH = 1 (rank 1). kt = cpt * kgroups with cpt = min(8, largest power of two <= K/g)
//   outputs per thread (registers) and kgroups = 2 when K/g > cpt, else 1.
// Mapping: 128 * kgroups threads; thread t owns pixel t % 128 (row-major in the tile) and output
//   channels [ (t / 128) * cpt, +cpt ) of the block's kt; pixels and channels past the edge are
//   computed on zeros and not stored. Blocks loop over tiles (block-stride) so gridDim.x <= max_grid_blocks(dev).
// Staging order: global reads follow the tensor's memory order so consecutive threads read consecutive
//   addresses: x in (c, h, w) order for NC[D]HW and (h, w, c) for N[D]HWC; w in (k, c, tap) order for
//   K x C/g x HW and (k, tap, c) for K x HW x C/g, with the lowest min(cpt, 4) bits of the thread index on k (a warp
//   reads 4 filter rows x 8 consecutive elements: 4 sectors); the shared-memory positions are the same either way.
//   The in-tile coordinates come from FastDiv (kernel_common.cuh: a high multiply, an add and a shift) built at
//   prepare(), and the 64-bit global offsets from one base per stage plus the element's in-tile offset.
// Output: each thread stores its cpt channels of one pixel through y's strides (for N[D]HWC they are adjacent).
// Loop per block: for each chunk of ct input channels, for each depth tap r whose input plane
//   id = od*sd - pd + r*dd is inside the input (uniform across the block, so the barriers are too):
//   barrier (the previous step finished reading) -> stage -> barrier (the stage is complete) -> compute.
//   Each thread computes, once per tile, the (s, t) tap range of its pixel that lands inside the input
//   (clamp_taps) and multiplies only those: the staged zeros of the padding are never multiplied,
//   so an Inf weight gives +-Inf at border outputs as `direct` does, not Inf * 0 = NaN.
// Tap loops: for cpt = 8 and a 1 x 1 or 3 x 3 filter (kTaps = 1 or 3) the loops over s and t are unrolled at compile
//   time and the taps outside [lo, hi) are skipped by predicates (1 x 1: the channel loop unrolled by 4); any other
//   shape runs the run-time loops (kTaps = 0).
// Shared memory (floats): round4(ct * in_tile_h * in_tile_w)   input tile [c][h][w] with its halo,
//                                                              zeros for padding
//                       + kgroups * ct * KH * KW * row(cpt)    filter slice of depth tap r, [group][c][s*KW+t][row]
//   in_tile_h = (tile_h - 1) * sh + (KH - 1) * dh + 1, in_tile_w likewise; ct = min(C/g, 16), halved
//   until the total fits kTiledMaxSmemBytes (48 KiB: no opt-in, several blocks per SM).
//   A row holds one thread's cpt channels of one tap, row(cpt) = cpt floats, 12 for cpt = 8 (tiled_w_row: the
//   staging stores then hit 32 distinct banks), 16-byte aligned (the input tile is padded to 4 floats), so on the GPU
//   they are read as float4: per tap a warp issues 1 + cpt/4 shared loads (x, then broadcast weights) for cpt FMAs
//   per thread; the executor checks each float4's alignment.
// supports(): op == conv and the tile for ct = 1 fits in 48 KiB (large kernels, strides or dilations
//   do not; the message gives the numbers) — `direct` takes those.
// Determinism: bitwise deterministic; each output is one thread's sum in the fixed order
//   (chunk, r, c, s, t), then the epilogue. Instantiations: {float, f16, bf16} x (cpt {1, 2, 4, 8} with run-time
//   tap loops, and cpt 8 with kTaps 1 and 3).
// Tests: test_kernels_emulated --gtest_filter='*Emulated*tiled*', test_kernels_formats (every format),
//   test_kernels_gpu --gtest_filter='*Gpu*tiled*'. Bench: convarith_bench --device=cuda
//   --benchmark_filter='convarith:tiled$'.
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include "kernel_common.cuh"
#include "kernel_taps.cuh"

namespace convarith::kernels {

constexpr int kTiledPixels = 128; // output pixels per block tile
constexpr int kTiledMaxCt = 16;   // input channels per staged chunk, at most
constexpr size_t kTiledMaxSmemBytes = 48 * 1024;

// Floats per (channel group, input channel, tap) row of the staged filter slice: kCpt, padded for kCpt = 8 to 12 so
// that row / 4 is odd. A warp's staging stores then hit 32 distinct banks (lanes take 4 consecutive channels of 8
// consecutive rows: 8 distinct multiples of 4 plus 0..3), and every row still starts 16-byte aligned for the
// compute loop's float4 loads. (Rows of 16 floats, as before, put a warp's stores on 2 banks: 16-way.)
constexpr int tiled_w_row(int cpt) {
  return cpt == 8 ? 12 : cpt;
}
// Filter shapes with their own compile-time tap loops (no remainder code runs): 1 x 1 and 3 x 3, for cpt = 8
// (the case of every layer with K/g >= 8). 0: any shape, run-time tap loops.
constexpr int kTiledAnyTaps = 0;
inline int tiled_taps_variant(const ConvProblem& p, int cpt) {
  const int64_t kh = p.axis3(1).k, kw = p.axis3(2).k;
  if (cpt != 8 || kh != kw)
    return kTiledAnyTaps;
  return kh == 1 || kh == 3 ? static_cast<int>(kh) : kTiledAnyTaps;
}

struct TiledConfig {
  int tile_h = 0, tile_w = 0;           // output pixel tile (tile_h * tile_w = kTiledPixels)
  int cpt = 1;                          // output channels per thread (1, 2, 4 or 8)
  int kgroups = 1;                      // thread groups along channels (1 or 2)
  int kt = 1;                           // output channels per block = cpt * kgroups
  int ct = 1;                           // input channels per staged chunk
  int64_t in_tile_h = 0, in_tile_w = 0; // input tile with its halo
  size_t smem_bytes = 0;
};

struct TiledParams {
  Geometry g;
  Out out; // epilogue, bias (may be null), z
  const void* x = nullptr;
  const void* w = nullptr;
  void* y = nullptr;
  int tile_h = 0, tile_w = 0, kt = 0, ct = 0, in_tile_h = 0, in_tile_w = 0;
  int kgroups = 1;
  int64_t tiles_h = 0, tiles_w = 0, ktiles = 0; // tiles per output plane / per group's channels
  int64_t total_tiles = 0;                      // N * OD * groups * ktiles * tiles_h * tiles_w
  // The staging loops' divisors (prepare() builds them: no run-time division in the kernel's loops).
  FastDiv div_itw, div_plane, div_ct, div_taps; // in_tile_w, in_tile_h * in_tile_w, ct, KH * KW
};

// Saturates at SIZE_MAX: huge kernels, strides or dilations only need to compare as "too big". w_rows_floats: the
// filter slice's floats per (input channel, tap): kgroups * tiled_w_row(cpt).
inline size_t tiled_smem_bytes(int64_t ct, int64_t w_row_floats, int64_t in_tile_h, int64_t in_tile_w,
                               int64_t taps_hw) {
  int64_t in_tile = 0, w_tile = 0, total = 0;
  if (!checked_mul(ct, in_tile_h, &in_tile) || !checked_mul(in_tile, in_tile_w, &in_tile) ||
      !checked_add(in_tile, 3, &in_tile) || !checked_mul(w_row_floats * ct, taps_hw, &w_tile) ||
      !checked_add(in_tile / 4 * 4, w_tile, &total) || !checked_mul(total, 4, &total))
    return SIZE_MAX;
  return static_cast<size_t>(total);
}

// The tile shape for a problem (used by supports(), params and the launch). The smem of ct = 1 is
// reported even when it does not fit, for the supports() message.
inline TiledConfig tiled_config(const ConvProblem& p) {
  TiledConfig cfg;
  const int64_t out_h = p.out3(1), out_w = p.out3(2);
  if (out_h == 1) {
    cfg.tile_h = 1;
    cfg.tile_w = kTiledPixels;
  } else {
    int tw = 8;
    while (tw < 32 && tw < out_w)
      tw *= 2;
    cfg.tile_w = tw;
    cfg.tile_h = kTiledPixels / tw;
  }
  const int64_t kg = p.k() / p.groups();
  while (cfg.cpt < 8 && cfg.cpt * 2 <= kg)
    cfg.cpt *= 2;
  cfg.kgroups = kg > cfg.cpt ? 2 : 1;
  cfg.kt = cfg.cpt * cfg.kgroups;
  const AxisParams& ah = p.axis3(1);
  const AxisParams& aw = p.axis3(2);
  // Only sizes below 2^31 are of interest; clamp so the products below cannot overflow.
  const int64_t kBig = int64_t{1} << 31;
  cfg.in_tile_h =
      std::min(kBig, (cfg.tile_h - 1) * std::min(ah.s, kBig) + (std::min(ah.k, kBig) - 1) * std::min(ah.d, kBig) + 1);
  cfg.in_tile_w =
      std::min(kBig, (cfg.tile_w - 1) * std::min(aw.s, kBig) + (std::min(aw.k, kBig) - 1) * std::min(aw.d, kBig) + 1);
  const int64_t taps_hw = std::min(kBig, ah.k) * std::min(kBig, aw.k);
  const int64_t cg = p.c() / p.groups();
  cfg.ct = static_cast<int>(std::min<int64_t>(cg, kTiledMaxCt));
  const int64_t w_row_floats = static_cast<int64_t>(cfg.kgroups) * tiled_w_row(cfg.cpt);
  while (cfg.ct > 1 &&
         tiled_smem_bytes(cfg.ct, w_row_floats, cfg.in_tile_h, cfg.in_tile_w, taps_hw) > kTiledMaxSmemBytes)
    cfg.ct /= 2;
  cfg.smem_bytes = tiled_smem_bytes(cfg.ct, w_row_floats, cfg.in_tile_h, cfg.in_tile_w, taps_hw);
  return cfg;
}

// The shared memory a block may use without the opt-in on this device (48 KiB on every GPU since sm_20).
inline size_t tiled_smem_limit(const DeviceInfo& dev) {
  return dev.smem_per_block > 0 ? std::min<size_t>(kTiledMaxSmemBytes, static_cast<size_t>(dev.smem_per_block))
                                : kTiledMaxSmemBytes;
}

inline Status tiled_supports(const ConvProblem& p, const DeviceInfo& dev) {
  const TiledConfig cfg = tiled_config(p);
  if (cfg.smem_bytes > tiled_smem_limit(dev)) {
    return not_supported("tiled: shared memory for one input channel is " + std::to_string(cfg.smem_bytes) +
                         " bytes (input tile " + std::to_string(cfg.in_tile_h) + "x" + std::to_string(cfg.in_tile_w) +
                         " for a " + std::to_string(cfg.tile_h) + "x" + std::to_string(cfg.tile_w) +
                         " output tile at stride " + std::to_string(p.axis3(1).s) + "x" + std::to_string(p.axis3(2).s) +
                         ", kernel " + std::to_string(p.axis3(1).k) + "x" + std::to_string(p.axis3(2).k) +
                         ", dilation " + std::to_string(p.axis3(1).d) + "x" + std::to_string(p.axis3(2).d) + ", plus " +
                         std::to_string(cfg.kt) + " filter slices), more than the " +
                         std::to_string(tiled_smem_limit(dev)) + " bytes a block may use; use direct");
  }
  return Status::ok();
}

// Precondition: tiled_supports(p, dev) is OK. The configuration is computed here, once per plan.
inline Result<Prepared> tiled_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  const TiledConfig cfg = tiled_config(p);
  KernelPlan<TiledParams> plan;
  TiledParams& params = plan.params;
  params.g = make_geometry(p);
  params.out = make_out(p);
  plan.dtype = p.dtype(TensorId::kX);
  params.tile_h = cfg.tile_h;
  params.tile_w = cfg.tile_w;
  params.kt = cfg.kt;
  params.ct = cfg.ct;
  params.in_tile_h = static_cast<int>(cfg.in_tile_h);
  params.in_tile_w = static_cast<int>(cfg.in_tile_w);
  params.kgroups = cfg.kgroups;
  params.div_itw = FastDiv(cfg.in_tile_w);
  params.div_plane = FastDiv(cfg.in_tile_h * cfg.in_tile_w);
  params.div_ct = FastDiv(cfg.ct);
  params.div_taps = FastDiv(p.axis3(1).k * p.axis3(2).k);
  // The staging reads a filter tap (s, t) at tap * ws[4]: the (s, t) plane of both filter layouts is compact (a
  // unit H axis, as ranks 1 have with stride 0, has only s = 0).
  if (params.g.ker[1] > 1 && params.g.ws[3] != params.g.ker[2] * params.g.ws[4])
    return internal_error("tiled: the filter's (s, t) strides are not compact");
  params.tiles_h = (p.out3(1) + cfg.tile_h - 1) / cfg.tile_h;
  params.tiles_w = (p.out3(2) + cfg.tile_w - 1) / cfg.tile_w;
  params.ktiles = (params.g.kg + cfg.kt - 1) / cfg.kt;
  params.total_tiles = p.n() * p.out3(0) * params.g.groups * params.ktiles * params.tiles_h * params.tiles_w;
  plan.grid =
      dim3(static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(params.total_tiles, max_grid_blocks(dev)))));
  plan.block = dim3(static_cast<unsigned>(kTiledPixels * cfg.kgroups));
  plan.smem_bytes = cfg.smem_bytes;
  plan.variant = cfg.cpt + 16 * tiled_taps_variant(p, cfg.cpt); // cpt, plus the compile-time tap shape
  return make_prepared(p, dev, plan, 0.13);
}

namespace cuda {
Status tiled_run(const KernelArgs& args);
}
namespace emu {
Status tiled_run(const KernelArgs& args);
}

} // namespace convarith::kernels

#if defined(CONVARITH_KERNEL_BODIES)
namespace convarith::kernels::CONVARITH_KNS {

// Loads kCpt consecutive floats smem[index .. index + kCpt) (a thread's weights of one tap). On the GPU,
// for kCpt a multiple of 4, as float4: index is then a multiple of 4 and the dynamic shared memory is
// 16-byte aligned (see the shared-memory layout above).
template <int kCpt> CONVARITH_DEVICE void tiled_load_weights(const float* smem, int index, float (&wv)[kCpt]) {
  if constexpr (kCpt % 4 == 0) {
    const float4* w4 = reinterpret_cast<const float4*>(smem + index);
    CONVARITH_UNROLL
    for (int q = 0; q < kCpt / 4; ++q) {
      const float4 v = CONVARITH_LDS(w4 + q);
      wv[4 * q] = v.x;
      wv[4 * q + 1] = v.y;
      wv[4 * q + 2] = v.z;
      wv[4 * q + 3] = v.w;
    }
  } else {
    CONVARITH_UNROLL
    for (int j = 0; j < kCpt; ++j)
      wv[j] = CONVARITH_LDS(smem + index + j);
  }
}

// One filter tap of the compute loop: kCpt FMAs on the x value at xs[xi] and this thread's kCpt weights at wi.
template <int kCpt> CONVARITH_DEVICE void tiled_tap(const float* smem, int xi, int wi, float (&acc)[kCpt]) {
  const float xv = CONVARITH_LDS(smem + xi);
  float wv[kCpt];
  tiled_load_weights<kCpt>(smem, wi, wv);
  CONVARITH_UNROLL
  for (int j = 0; j < kCpt; ++j)
    acc[j] += xv * wv[j];
}

// kCpt output channels per thread; blockDim.x = kTiledPixels * kgroups. kTaps: 1 or 3 for a compile-time
// 1 x 1 or 3 x 3 filter (every tap loop unrolled, the taps outside the input skipped by predicates), or
// kTiledAnyTaps. Global offsets are int64_t (the per-block bases); everything inside the tile and shared memory is
// int, decomposed with the params' FastDivs.
template <typename T, int kCpt, int kTaps> CONVARITH_GLOBAL void tiled_kernel(TiledParams p) {
  CONVARITH_DYNAMIC_SHARED(float, smem);
  constexpr int kRow = tiled_w_row(kCpt);  // floats per staged (group, channel, tap) row
  constexpr int kJl = kCpt < 4 ? kCpt : 4; // staging lanes along a row (consecutive channels)
  constexpr int kJh = kCpt / kJl;          // row pieces of kJl channels
  const Geometry& g = p.g;
  const int ct = p.ct, ith = p.in_tile_h, itw = p.in_tile_w;
  const int ker_w = kTaps != kTiledAnyTaps ? kTaps : static_cast<int>(g.ker[2]);
  const int taps_hw = kTaps != kTiledAnyTaps ? kTaps * kTaps : static_cast<int>(g.ker[1]) * ker_w;
  const int sh = static_cast<int>(g.stride[1]), sw = static_cast<int>(g.stride[2]);
  const int dh = static_cast<int>(g.dil[1]), dw = static_cast<int>(g.dil[2]);
  const int in_tile_elems = ct * ith * itw;
  const int w_tile_elems = p.kgroups * kCpt * ct * taps_hw; // real weights staged (rows hold kRow >= kCpt)
  float* xs = smem;                                         // [ct][ith][itw]
  const int ws_base = (in_tile_elems + 3) / 4 * 4;          // 16-byte aligned
  float* ws = smem + ws_base;                               // [kgroups][ct][KH*KW][kRow]

  const int tid = static_cast<int>(threadIdx.x);
  const int nthreads = static_cast<int>(blockDim.x);
  const int pix = tid % kTiledPixels;
  const int kgrp = tid / kTiledPixels;
  const int ph = pix / p.tile_w, pw = pix % p.tile_w;
  const int w_thread = ws_base + kgrp * ct * taps_hw * kRow; // this thread's rows, channel 0, tap 0
  const T* CONVARITH_RESTRICT x = static_cast<const T*>(p.x);
  const T* CONVARITH_RESTRICT w = static_cast<const T*>(p.w);
  T* y = static_cast<T*>(p.y);

  for (int64_t b = blockIdx.x; b < p.total_tiles; b += gridDim.x) {
    int64_t rest = b;
    const int64_t tw_i = rest % p.tiles_w;
    rest /= p.tiles_w;
    const int64_t th_i = rest % p.tiles_h;
    rest /= p.tiles_h;
    const int64_t kt_i = rest % p.ktiles;
    rest /= p.ktiles;
    const int64_t grp = rest % g.groups;
    rest /= g.groups;
    const int64_t od = rest % g.out[0];
    const int64_t n = rest / g.out[0];
    const int64_t oh = th_i * p.tile_h + ph, ow = tw_i * p.tile_w + pw;
    const bool pixel_valid = oh < g.out[1] && ow < g.out[2];
    const int64_t k_first = kt_i * p.kt; // first output channel of the block within the group
    const int64_t ih_base = th_i * p.tile_h * g.stride[1] - g.pad[1]; // input row of tile row 0
    const int64_t iw_base = tw_i * p.tile_w * g.stride[2] - g.pad[2];
    // This pixel's taps inside the input (in the tile: the halo holds the rest, as zeros).
    const TapSpan<int64_t> vh = clamp_taps<int64_t>(g.ker[1], g.dil[1], ih_base + ph * g.stride[1], g.in[1]);
    const TapSpan<int64_t> vw = clamp_taps<int64_t>(g.ker[2], g.dil[2], iw_base + pw * g.stride[2], g.in[2]);
    const int s_lo = static_cast<int>(vh.lo), s_hi = static_cast<int>(vh.hi);
    const int t_lo = static_cast<int>(vw.lo), t_hi = static_cast<int>(vw.hi);
    const int x_pixel = ph * sh * itw + pw * sw; // this pixel's tap (0, 0) in a channel's input tile

    float acc[kCpt];
    CONVARITH_UNROLL
    for (int j = 0; j < kCpt; ++j)
      acc[j] = 0.0f;

    for (int64_t c0 = 0; c0 < g.cg; c0 += ct) {
      const int cn = static_cast<int>(g.cg - c0 < ct ? g.cg - c0 : ct);
      for (int64_t r = 0; r < g.ker[0]; ++r) {
        const int64_t id = od * g.stride[0] - g.pad[0] + r * g.dil[0];
        if (id < 0 || id >= g.in[0])
          continue;       // same for every thread of the block
        CONVARITH_SYNC(); // every thread has finished computing on the previous stage
        // The stage's bases (64-bit, once); per element only in-tile offsets, decomposed without division.
        const T* x_stage = x + (n * g.xs[0] + (grp * g.cg + c0) * g.xs[1] + id * g.xs[2]);
        for (int e = tid; e < in_tile_elems; e += nthreads) {
          int cc, yy, xx;
          if (g.channels_last) { // (h, w, c): consecutive threads, consecutive channels
            const int q = p.div_ct.divmod(e, cc);
            yy = p.div_itw.divmod(q, xx);
          } else { // (c, h, w)
            int in_plane = 0;
            cc = p.div_plane.divmod(e, in_plane);
            yy = p.div_itw.divmod(in_plane, xx);
          }
          const int64_t ih = ih_base + yy, iw = iw_base + xx;
          float v = 0.0f; // padding and channels past the group's end read as zero
          if (cc < cn && ih >= 0 && ih < g.in[1] && iw >= 0 && iw < g.in[2])
            v = load_elem(x_stage + (cc * g.xs[1] + ih * g.xs[3] + iw * g.xs[4]));
          CONVARITH_STS(xs + (cc * ith + yy) * itw + xx, v);
        }
        // Global reads in the filter's memory order, kJl output channels at a time (kJl rows of the filter, each
        // read along its contiguous (c, tap) or (tap, c) run); stored so that a thread's kCpt channels of one tap
        // are one 16-byte aligned row of kRow floats (see tiled_w_row: the stores are conflict-free).
        const T* w_stage = w + ((grp * g.kg + k_first) * g.ws[0] + c0 * g.ws[1] + r * g.ws[2]);
        for (int e = tid; e < w_tile_elems; e += nthreads) {
          const int jl = e % kJl; // kJl is a power of two
          const int q = e / kJl;
          int cc, tap, q2;
          if (g.w_channels_last) { // (k, tap, c)
            q2 = p.div_ct.divmod(q, cc);
            q2 = p.div_taps.divmod(q2, tap);
          } else { // (k, c, tap)
            q2 = p.div_taps.divmod(q, tap);
            q2 = p.div_ct.divmod(q2, cc);
          }
          const int jh = q2 % kJh, grp_k = q2 / kJh;
          const int jj = jh * kJl + jl;
          const int k_local = grp_k * kCpt + jj; // within the block's kt
          float v = 0.0f;                        // channels past K/g or C/g contribute zero
          if (k_first + k_local < g.kg && cc < cn)
            v = load_elem(w_stage + (k_local * g.ws[0] + cc * g.ws[1] + tap * g.ws[4]));
          CONVARITH_STS(ws + ((grp_k * ct + cc) * taps_hw + tap) * kRow + jj, v);
        }
        CONVARITH_SYNC(); // the stage is complete before anyone reads it
        if (pixel_valid) {
          if constexpr (kTaps == 1) {
            if (s_lo < s_hi && t_lo < t_hi) { // the pixel's one tap is inside the input
              CONVARITH_UNROLL_N(4)
              for (int cc = 0; cc < cn; ++cc)
                tiled_tap<kCpt>(smem, cc * ith * itw + x_pixel, w_thread + cc * kRow, acc);
            }
          } else if constexpr (kTaps == 3) {
            for (int cc = 0; cc < cn; ++cc) {
              const int xc = cc * ith * itw + x_pixel, wc = w_thread + cc * 9 * kRow;
              CONVARITH_UNROLL
              for (int s = 0; s < 3; ++s) {
                if (s < s_lo || s >= s_hi)
                  continue;
                CONVARITH_UNROLL
                for (int t = 0; t < 3; ++t)
                  if (t >= t_lo && t < t_hi)
                    tiled_tap<kCpt>(smem, xc + s * dh * itw + t * dw, wc + (s * 3 + t) * kRow, acc);
              }
            }
          } else {
            for (int cc = 0; cc < cn; ++cc) {
              const int xc = cc * ith * itw + x_pixel, wc = w_thread + cc * taps_hw * kRow;
              for (int s = s_lo; s < s_hi; ++s)
                for (int t = t_lo; t < t_hi; ++t)
                  tiled_tap<kCpt>(smem, xc + s * dh * itw + t * dw, wc + (s * ker_w + t) * kRow, acc);
            }
          }
        }
      }
    }
    if (pixel_valid) {
      CONVARITH_UNROLL
      for (int j = 0; j < kCpt; ++j) {
        const int64_t kk = k_first + kgrp * kCpt + j;
        if (kk < g.kg) {
          const int64_t k = grp * g.kg + kk;
          store_output<T, int64_t>(p.out, y, y_offset<int64_t>(g, n, k, od, oh, ow), acc[j], load_bias<T>(p.out, k));
        }
      }
    }
  }
}

template <typename T, int kCpt, int kTaps = kTiledAnyTaps>
Status tiled_launch(const KernelPlan<TiledParams>& plan, const TiledParams& params, [[maybe_unused]] void* stream) {
  return CONVARITH_LAUNCH((tiled_kernel<T, kCpt, kTaps>), plan.grid, plan.block, plan.smem_bytes, stream, params);
}

Status tiled_run(const KernelArgs& args) {
  const KernelPlan<TiledParams>& plan = prepared_as<TiledParams>(args);
  TiledParams params = plan.params;
  params.x = args.x;
  params.w = args.w;
  params.out.bias = args.bias;
  params.out.z = args.z;
  params.y = args.y;
  return dispatch_dtype(plan.dtype, [&](auto tag) {
    using T = decltype(tag);
    switch (plan.variant) {
    case 8 + 16 * 1:
      return tiled_launch<T, 8, 1>(plan, params, args.stream);
    case 8 + 16 * 3:
      return tiled_launch<T, 8, 3>(plan, params, args.stream);
    case 8:
      return tiled_launch<T, 8>(plan, params, args.stream);
    case 4:
      return tiled_launch<T, 4>(plan, params, args.stream);
    case 2:
      return tiled_launch<T, 2>(plan, params, args.stream);
    default:
      return tiled_launch<T, 1>(plan, params, args.stream);
    }
  });
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
