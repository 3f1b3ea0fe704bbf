// kernels/conv_igemm.cuh — `igemm`: convolution as an implicit GEMM with fp32 FMA (CUTLASS-SIMT style block tiles).
//
// Computes the same y as `direct` (conv_direct.cuh), with the fused epilogue (numeric.cuh's apply_epilogue):
//   y = act(alpha * sum + bias[k] + beta * z), per group g the GEMM
//   Y[m, n] = sum_k A[m, k] * B[k, n],  m = (n_b, od, oh, ow) over M = N*OD*OH*OW output pixels,
//   n over K/g output channels, k over Kdim = C/g*KD*KH*KW (channel and taps),
//   A[m, k] = x at the tap (im2col, never materialised; zero in padding), B[k, n] = w[g*K/g + n] at k.
// The reduction order of k follows the filter layout so that B is contiguous in k: (c, r, s, t) for
//   K x C/g x KD x KH x KW filters, (r, s, t, c) for channels-last (K x KD x KH x KW x C/g) filters.
//
// Block tile BM x BN x 8 (BK): 128x128 (256 threads), 128x64 (128 threads) and 64x64 (64 threads), each thread
//   8x8 outputs in registers (4+4 pixels at 4*tm and BM/2 + 4*tm, 4+4 channels at 4*tn and BN/2 + 4*tn; a warp
//   is 4 (m) x 8 (n) threads). prepare() takes the largest tile whose tile count fills one wave of the device's
//   SMs, BN = 64 when K/g <= 64, and 64x64 for problems whose offsets need 64 bits (index_fits_int32 false:
//   the int64_t instantiations). Blocks loop over the tiles (block-stride, gridDim.x <= max_grid_blocks(dev)).
// Staging, per k-tile: each thread gathers BM*8/threads elements of A with one k (its k lane) for pixels
//   ml = threads/8 apart (NC[D]HW x: the 32 lanes of a warp take consecutive pixels, coalesced along W; N[D]HWC x:
//   8 consecutive k x 4 pixels, coalesced along C) and BN*8/threads elements of B (8 consecutive k x 4 channels
//   per warp). The k lane's (c, r, s, t) advance by 8 per k-tile with one conditional subtract per digit (the
//   mixed-radix digits of 8 come from prepare()): no division in the k loop; the pixels' (n, od, oh, ow) are
//   decomposed once per output tile. Padding, stride and dilation: a predicated load (unsigned compares of the
//   tap coordinates against D, H, W), zero otherwise. Global loads of tile k+1 are issued before the FMAs of
//   tile k and stored to the other shared-memory stage after them: one barrier per k-tile.
// Shared memory (floats): 2 stages x (8 x LDA  (A, [k][m])  +  8 x LDB  (B, [k][n]))  + 2 flag words,
//   LDB = BN + 4, LDA = BM + 4 (N[D]HWC x, and NC[D]HW with 256 threads) or BM + threads/8 (NC[D]HW, fewer
//   threads): the padding makes every staging store of a warp hit 32 distinct banks, and the hot loop reads
//   16-byte aligned float4s (4 distinct addresses per warp for A, 8 consecutive for B: one wavefront each).
//   128x128: 16,912 bytes; 128x64: 13,584 (NC[D]HW) / 12,816; 64x64: 8,976 / 8,720 (<= 48 KiB, no opt-in).
// Inf/NaN weights never meet padding: a stager that loads a non-finite weight marks the stage; when the block
//   reaches a marked k-tile it leaves the k loop and recomputes the output tile from global memory, adding only
//   the in-input taps (so an Inf weight gives +-Inf at the border, as `direct` does, not Inf * 0 = NaN). The
//   check costs a compare per staged weight and one shared load per k-tile.
// supports(): op == conv (the table), f32, NC[D]HW with KCRS filters or N[D]HWC with KRSC filters (a filter
//   layout different from the activations' is declined: one instantiation per layout), every epilogue; no size
//   constraint. Registers (ptxas 13.0, sm_90, kernels/kernel_resources.inc): about 150-170 for the 256- and
//   128-thread tiles, about 215-220 for 64x64 (one block of 256 threads per SM by registers); 0 spills.
// Determinism: bitwise deterministic; each output is one thread's sum over k in increasing order, then the
//   epilogue. z may be y (each element is read and then written by the same thread).
// Cost estimate (auto): 0.5 x the fp32 FMA peak x the share of the issued FMAs that are useful (tile fit).
// Tests: test_kernels_igemm (edge list, tile boundaries per tile shape, layouts, epilogues), test_kernels_emulated
//   --gtest_filter='*Emulated*igemm*'. Bench: convarith_bench --device=cuda --benchmark_filter='convarith:igemm$'.
#pragma once

#include <cstdint>
#include <string>
#include <type_traits>

#include "kernel_common.cuh"

namespace convarith::kernels {

constexpr int kIgemmBK = 8;

// The tile shapes, by index (IgemmParams::tile / KernelPlan::variant's tile field).
enum IgemmTileShape : int { kIgemm128x128 = 0, kIgemm128x64 = 1, kIgemm64x64 = 2, kIgemmTileShapes = 3 };

template <int BM, int BN> struct IgemmTile {
  static constexpr int kThreads = (BM / 8) * (BN / 8);
  static constexpr int kLanes = kThreads / 8; // pixels (or channels) staged per k lane and round
  static constexpr int kAPer = BM / kLanes;   // A elements staged per thread and k-tile
  static constexpr int kBPer = BN / kLanes;   // B elements staged per thread and k-tile
  static constexpr int kLdb = BN + 4;
  static constexpr int lda(bool channels_last) { return BM + (channels_last || kLanes >= 32 ? 4 : kLanes); }
  static constexpr size_t smem_bytes(bool channels_last) {
    return static_cast<size_t>(2 * kIgemmBK * (lda(channels_last) + kLdb) + 4) * 4;
  }
};

constexpr int igemm_tile_m(int tile) {
  return tile == kIgemm64x64 ? 64 : 128;
}
constexpr int igemm_tile_n(int tile) {
  return tile == kIgemm128x128 ? 128 : 64;
}
inline size_t igemm_smem_bytes(int tile, bool channels_last) {
  switch (tile) {
  case kIgemm128x128:
    return IgemmTile<128, 128>::smem_bytes(channels_last);
  case kIgemm128x64:
    return IgemmTile<128, 64>::smem_bytes(channels_last);
  default:
    return IgemmTile<64, 64>::smem_bytes(channels_last);
  }
}

struct IgemmParams {
  Geometry g;
  EpilogueParams ep;
  const float* x = nullptr;
  const float* w = nullptr;
  const float* bias = nullptr; // may be null
  const float* z = nullptr;    // non-null iff ep.beta != 0 (may equal y)
  float* y = nullptr;
  int64_t m = 0;    // N * OD * OH * OW
  int64_t kdim = 0; // C/g * KD * KH * KW
  int64_t tiles_m = 0, tiles_n = 0, total_tiles = 0, k_tiles = 0;
  int64_t step[4] = {0, 0, 0, 0}; // kIgemmBK in the mixed radix of the k digits, fastest digit first
  int64_t tap_x[3] = {0, 0, 0};   // x offset of one step of r, s, t: dil * stride of D, H, W
};

// The launch's instantiation: tile * 4 + channels-last (x, z, y and w) * 2 + wide.
constexpr int igemm_config(int tile, bool channels_last, bool wide) {
  return tile * 4 + (channels_last ? 2 : 0) + (wide ? 1 : 0);
}

// The filter layout must follow the activations' (KCRS with NC[D]HW, KRSC with N[D]HWC): one instantiation per
// layout, B read contiguously along k.
inline Status igemm_supports(const ConvProblem& p, const DeviceInfo&) {
  if (p.w_layout() != p.layout())
    return not_supported(std::string("igemm: the filter layout (") + layout_name(p.w_layout()) +
                         ") must match the activation layout (" + layout_name(p.layout()) + ")");
  return Status::ok();
}

// The tile a problem gets: the largest of 128x128 (only when K/g > 64), 128x64, 64x64 whose tile count fills
// one wave of the device's SMs, else 64x64; always 64x64 when 64-bit offsets are needed.
inline int igemm_choose_tile(const ConvProblem& p, const DeviceInfo& dev) {
  if (!index_fits_int32(p))
    return kIgemm64x64;
  const int64_t m = p.n() * p.out_spatial(), kg = p.k() / p.groups();
  const int64_t sms = dev.sms > 0 ? dev.sms : 132;
  const auto tiles = [&](int tile) {
    return p.groups() * ((m + igemm_tile_m(tile) - 1) / igemm_tile_m(tile)) *
           ((kg + igemm_tile_n(tile) - 1) / igemm_tile_n(tile));
  };
  if (kg > 64 && tiles(kIgemm128x128) >= sms)
    return kIgemm128x128;
  if (tiles(kIgemm128x64) >= sms)
    return kIgemm128x64;
  return kIgemm64x64;
}

// With a given tile shape (tests run every shape on small problems; wide problems always take 64x64).
inline Result<Prepared> igemm_prepare_tile(const ConvProblem& p, const DeviceInfo& dev, int tile) {
  const bool wide = !index_fits_int32(p);
  if (wide)
    tile = kIgemm64x64;
  KernelPlan<IgemmParams> plan;
  IgemmParams& q = plan.params;
  q.g = make_geometry(p);
  const Geometry& g = q.g;
  const Epilogue& e = p.epilogue();
  q.ep = EpilogueParams{static_cast<int>(e.activation), e.alpha, e.beta,
                        e.activation == Activation::kClip ? e.clip_min : e.leaky_alpha, e.clip_max};
  const bool w_cl = p.w_layout() == Layout::kNHWC, x_cl = w_cl; // igemm_supports: the layouts match
  q.m = g.n * g.out_spatial;
  q.kdim = g.cg * g.ker_spatial;
  const int bm = igemm_tile_m(tile), bn = igemm_tile_n(tile);
  q.tiles_m = (q.m + bm - 1) / bm;
  q.tiles_n = (g.kg + bn - 1) / bn;
  q.total_tiles = g.groups * q.tiles_m * q.tiles_n;
  q.k_tiles = (q.kdim + kIgemmBK - 1) / kIgemmBK;
  // kIgemmBK in the mixed radix of the k digits, fastest first: (t, s, r, c) or, channels-last filter, (c, t, s, r).
  const int64_t radix[4] = {w_cl ? g.cg : g.ker[2], w_cl ? g.ker[2] : g.ker[1], w_cl ? g.ker[1] : g.ker[0], 0};
  int64_t rest = kIgemmBK;
  for (int j = 0; j < 3; ++j) {
    q.step[j] = rest % radix[j];
    rest /= radix[j];
  }
  q.step[3] = rest;
  for (int j = 0; j < 3; ++j)
    q.tap_x[j] = g.dil[j] * g.xs[2 + j];
  const int threads = (bm / 8) * (bn / 8);
  plan.grid = dim3(static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(q.total_tiles, max_grid_blocks(dev)))));
  plan.block = dim3(static_cast<unsigned>(threads));
  plan.smem_bytes = igemm_smem_bytes(tile, x_cl);
  plan.variant = igemm_config(tile, x_cl, wide);
  plan.wide = wide;
  // The cost estimate: half the FMA peak on the FMAs the tiles issue (padding past M, K/g and Kdim included), so a
  // layer the tiles fit badly (depthwise: K/g = 1 in a 64-wide tile) goes to the rows that fit it.
  const double issued = static_cast<double>(q.total_tiles) * static_cast<double>(q.k_tiles) * kIgemmBK * bm * bn;
  const double useful = static_cast<double>(p.flops()) / 2;
  return make_prepared(p, dev, plan, issued > 0 ? std::max(1e-3, 0.5 * std::min(1.0, useful / issued)) : 0.5);
}

// Precondition: igemm_supports(p, dev) is OK. The tile and the k digits are computed here, once per plan.
inline Result<Prepared> igemm_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  return igemm_prepare_tile(p, dev, igemm_choose_tile(p, dev));
}

namespace cuda {
Status igemm_run(const KernelArgs& args);
}
namespace emu {
Status igemm_run(const KernelArgs& args);
}

} // namespace convarith::kernels

#if defined(CONVARITH_KERNEL_BODIES)
namespace convarith::kernels::CONVARITH_KNS {

// The reduction index k as digits: c (channel within the group), r, s, t (taps of D, H, W).
template <typename I> struct IgemmTap { I c, r, s, t; };

template <bool kWcl, typename I> CONVARITH_DEVICE IgemmTap<I> igemm_decompose(I k, I cg, I kd, I kh, I kw) {
  IgemmTap<I> d;
  if constexpr (kWcl) {
    d.c = k % cg;
    k /= cg;
    d.t = k % kw;
    k /= kw;
    d.s = k % kh;
    d.r = k / kh;
  } else {
    d.t = k % kw;
    k /= kw;
    d.s = k % kh;
    k /= kh;
    d.r = k % kd;
    d.c = k / kd;
  }
  return d;
}

// k += kIgemmBK: add the digits of the step, one conditional subtract per digit (each sum is < 2 x its radix).
template <bool kWcl, typename I>
CONVARITH_DEVICE void igemm_advance(IgemmTap<I>& d, const I (&step)[4], I cg, I kd, I kh, I kw) {
  if constexpr (kWcl) {
    I v = d.c + step[0];
    I carry = v >= cg ? 1 : 0;
    d.c = carry != 0 ? v - cg : v;
    v = d.t + step[1] + carry;
    carry = v >= kw ? 1 : 0;
    d.t = carry != 0 ? v - kw : v;
    v = d.s + step[2] + carry;
    carry = v >= kh ? 1 : 0;
    d.s = carry != 0 ? v - kh : v;
    d.r += step[3] + carry; // the slowest digit: past KD means past Kdim
  } else {
    I v = d.t + step[0];
    I carry = v >= kw ? 1 : 0;
    d.t = carry != 0 ? v - kw : v;
    v = d.s + step[1] + carry;
    carry = v >= kh ? 1 : 0;
    d.s = carry != 0 ? v - kh : v;
    v = d.r + step[2] + carry;
    carry = v >= kd ? 1 : 0;
    d.r = carry != 0 ? v - kd : v;
    d.c += step[3] + carry; // the slowest digit: past C/g means past Kdim
  }
}

CONVARITH_DEVICE bool igemm_finite(float v) {
  return v - v == 0.0f; // false for +-Inf and NaN
}

// One instantiation per config (igemm_config): tile shape, channels-last, 64-bit index.
template <int kConfig>
CONVARITH_GLOBAL void
#if CONVARITH_GPU_ONLY
__launch_bounds__(IgemmTile<igemm_tile_m(kConfig / 4), igemm_tile_n(kConfig / 4)>::kThreads)
#endif
    igemm_kernel(IgemmParams p) {
  constexpr int kTileShape = kConfig / 4;
  constexpr bool kXcl = (kConfig & 2) != 0, kWcl = kXcl, kWide = (kConfig & 1) != 0;
  using I = std::conditional_t<kWide, int64_t, int32_t>;
  using U = std::make_unsigned_t<I>;
  constexpr int BM = igemm_tile_m(kTileShape), BN = igemm_tile_n(kTileShape), BK = kIgemmBK;
  using Tile = IgemmTile<BM, BN>;
  constexpr int kLanes = Tile::kLanes, kAPer = Tile::kAPer, kBPer = Tile::kBPer;
  constexpr int LDA = Tile::lda(kXcl), LDB = Tile::kLdb;
  constexpr int kAStage = BK * LDA, kBStage = BK * LDB;

  CONVARITH_DYNAMIC_SHARED(float, smem);
  float* const as = smem;                                                              // [2][BK][LDA]
  float* const bs = smem + 2 * kAStage;                                                // [2][BK][LDB]
  unsigned* const flags = reinterpret_cast<unsigned*>(smem + 2 * (kAStage + kBStage)); // [2]

  const Geometry& g = p.g;
  const I cg = static_cast<I>(g.cg), kg = static_cast<I>(g.kg);
  const I kd = static_cast<I>(g.ker[0]), kh = static_cast<I>(g.ker[1]), kw = static_cast<I>(g.ker[2]);
  const I in_d = static_cast<I>(g.in[0]), in_h = static_cast<I>(g.in[1]), in_w = static_cast<I>(g.in[2]);
  const I out_d = static_cast<I>(g.out[0]), out_h = static_cast<I>(g.out[1]), out_w = static_cast<I>(g.out[2]);
  const I dd = static_cast<I>(g.dil[0]), dh = static_cast<I>(g.dil[1]), dw = static_cast<I>(g.dil[2]);
  const I sd = static_cast<I>(g.stride[0]), sh = static_cast<I>(g.stride[1]), sw = static_cast<I>(g.stride[2]);
  const I pd = static_cast<I>(g.pad[0]), ph = static_cast<I>(g.pad[1]), pw = static_cast<I>(g.pad[2]);
  const I xs0 = static_cast<I>(g.xs[0]), xs1 = static_cast<I>(g.xs[1]);
  const I tap_r = static_cast<I>(p.tap_x[0]), tap_s = static_cast<I>(p.tap_x[1]), tap_t = static_cast<I>(p.tap_x[2]);
  const I ws0 = static_cast<I>(g.ws[0]);
  const I m_total = static_cast<I>(p.m), kdim = static_cast<I>(p.kdim);
  const I step[4] = {static_cast<I>(p.step[0]), static_cast<I>(p.step[1]), static_cast<I>(p.step[2]),
                     static_cast<I>(p.step[3])};
  const float* CONVARITH_RESTRICT x = p.x;
  const float* CONVARITH_RESTRICT w = p.w;

  const int tid = static_cast<int>(threadIdx.x);
  // Staging roles.
  const int a_k = kXcl ? tid % 8 : tid / kLanes; // k lane of this thread's A elements
  const int a_m = kXcl ? tid / 8 : tid % kLanes; // first pixel (then + kLanes, ...)
  const int b_k = tid % 8, b_n = tid / 8;
  // Compute roles: a warp is 4 (m) x 8 (n) threads.
  constexpr int kWarpsN = BN / 64;
  const int lane = tid % 32, warp = tid / 32;
  const int tm = (warp / kWarpsN) * 4 + lane / 8;
  const int tn = (warp % kWarpsN) * 8 + lane % 8;

  if (tid < 2)
    CONVARITH_STS(flags + tid, 0xffffffffu); // no stage marked yet
  CONVARITH_SYNC();
  unsigned serial = 0; // k-tiles this block has run: stage serial & 1, flags[stage] == serial marks it

  for (int64_t tile = blockIdx.x; tile < p.total_tiles; tile += gridDim.x) {
    const int64_t tn_i = tile % p.tiles_n;
    const int64_t rest = tile / p.tiles_n;
    const int64_t tm_i = rest % p.tiles_m;
    const I grp = static_cast<I>(rest / p.tiles_m);
    const I m0 = static_cast<I>(tm_i * BM), n0 = static_cast<I>(tn_i * BN);

    // This thread's A pixels: x offset of (n, group's first channel, the window's corner) and the corner; a pixel past
    // M gets a corner outside the input (id = D) so every load of it is predicated off.
    I a_base[kAPer], a_d[kAPer], a_h[kAPer], a_w[kAPer];
    CONVARITH_UNROLL
    for (int j = 0; j < kAPer; ++j) {
      const I m = m0 + a_m + j * kLanes;
      if (m < m_total) {
        I q = m;
        const I ow = q % out_w;
        q /= out_w;
        const I oh = q % out_h;
        q /= out_h;
        const I od = q % out_d;
        const I nb = q / out_d;
        a_d[j] = od * sd - pd;
        a_h[j] = oh * sh - ph;
        a_w[j] = ow * sw - pw;
        a_base[j] = nb * xs0 + grp * cg * xs1 + a_d[j] * static_cast<I>(g.xs[2]) + a_h[j] * static_cast<I>(g.xs[3]) +
                    a_w[j] * static_cast<I>(g.xs[4]);
      } else {
        a_base[j] = 0;
        a_d[j] = in_d;
        a_h[j] = 0;
        a_w[j] = 0;
      }
    }
    I b_base[kBPer];
    bool b_ok[kBPer];
    CONVARITH_UNROLL
    for (int j = 0; j < kBPer; ++j) {
      const I n = n0 + b_n + j * kLanes;
      b_ok[j] = n < kg;
      b_base[j] = b_ok[j] ? (grp * kg + n) * ws0 : 0;
    }
    IgemmTap<I> tap = igemm_decompose<kWcl, I>(static_cast<I>(a_k), cg, kd, kh, kw);
    I kb = static_cast<I>(b_k);

    float a_reg[kAPer], b_reg[kBPer];
    bool bad = false; // a non-finite weight in the staged tile
    // Global loads of the k-tile the counters point at, then advance them.
    const auto load_tile = [&]() {
      const bool k_ok = kWcl ? tap.r < kd : tap.c < cg;
      const I xoff = tap.c * xs1 + tap.r * tap_r + tap.s * tap_s + tap.t * tap_t;
      const I dz = tap.r * dd, dy = tap.s * dh, dx = tap.t * dw;
      CONVARITH_UNROLL
      for (int j = 0; j < kAPer; ++j) {
        const bool ok = k_ok && static_cast<U>(a_d[j] + dz) < static_cast<U>(in_d) &&
                        static_cast<U>(a_h[j] + dy) < static_cast<U>(in_h) &&
                        static_cast<U>(a_w[j] + dx) < static_cast<U>(in_w);
        a_reg[j] = ok ? CONVARITH_LDG(x + (a_base[j] + xoff)) : 0.0f;
      }
      const bool kb_ok = kb < kdim;
      bad = false;
      CONVARITH_UNROLL
      for (int j = 0; j < kBPer; ++j) {
        b_reg[j] = kb_ok && b_ok[j] ? CONVARITH_LDG(w + (b_base[j] + kb)) : 0.0f;
        bad = bad || !igemm_finite(b_reg[j]);
      }
      igemm_advance<kWcl, I>(tap, step, cg, kd, kh, kw);
      kb += BK;
    };
    const auto store_tile = [&](unsigned stage_serial) {
      const int stage = static_cast<int>(stage_serial & 1u);
      float* a_dst = as + stage * kAStage + a_k * LDA + a_m;
      CONVARITH_UNROLL
      for (int j = 0; j < kAPer; ++j)
        CONVARITH_STS(a_dst + j * kLanes, a_reg[j]);
      float* b_dst = bs + stage * kBStage + b_k * LDB + b_n;
      CONVARITH_UNROLL
      for (int j = 0; j < kBPer; ++j)
        CONVARITH_STS(b_dst + j * kLanes, b_reg[j]);
      if (bad)
        CONVARITH_STS(flags + stage, stage_serial);
    };

    float acc[8][8];
    CONVARITH_UNROLL
    for (int i = 0; i < 8; ++i) {
      CONVARITH_UNROLL
      for (int j = 0; j < 8; ++j)
        acc[i][j] = 0.0f;
    }

    load_tile();
    store_tile(serial);
    CONVARITH_SYNC();
    bool guarded = false; // a staged k-tile holds a non-finite weight: the tile is recomputed below
    for (int64_t kt = 0; kt < p.k_tiles; ++kt, ++serial) {
      const int stage = static_cast<int>(serial & 1u);
      if (CONVARITH_LDS(flags + stage) == serial) { // the same for every thread (written before the barrier)
        guarded = true;
        ++serial; // the next tile's prologue stages into the other buffer, as after a full iteration
        break;
      }
      const bool has_next = kt + 1 < p.k_tiles;
      if (has_next)
        load_tile(); // in flight during the FMAs below
      const float* a_s = as + stage * kAStage + 4 * tm;
      const float* b_s = bs + stage * kBStage + 4 * tn;
      CONVARITH_UNROLL
      for (int kk = 0; kk < BK; ++kk) {
        const float4 a0 = CONVARITH_LDS(reinterpret_cast<const float4*>(a_s + kk * LDA));
        const float4 a1 = CONVARITH_LDS(reinterpret_cast<const float4*>(a_s + kk * LDA + BM / 2));
        const float4 b0 = CONVARITH_LDS(reinterpret_cast<const float4*>(b_s + kk * LDB));
        const float4 b1 = CONVARITH_LDS(reinterpret_cast<const float4*>(b_s + kk * LDB + BN / 2));
        const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
        CONVARITH_UNROLL
        for (int i = 0; i < 8; ++i) {
          CONVARITH_UNROLL
          for (int j = 0; j < 8; ++j)
            acc[i][j] += av[i] * bv[j];
        }
      }
      if (has_next)
        store_tile(serial + 1u);
      CONVARITH_SYNC(); // the next stage is complete, and everyone has finished reading this one
    }
    if (guarded) {
      // A non-finite weight meets this tile: recompute it from global memory adding only the products of
      // in-input taps (the staged zeros of padding would give Inf * 0 = NaN). Rare; divisions are fine here.
      CONVARITH_UNROLL
      for (int i = 0; i < 8; ++i) {
        CONVARITH_UNROLL
        for (int j = 0; j < 8; ++j)
          acc[i][j] = 0.0f;
      }
      for (I k = 0; k < kdim; ++k) {
        const IgemmTap<I> d = igemm_decompose<kWcl, I>(k, cg, kd, kh, kw);
        const I xoff = d.c * xs1 + d.r * tap_r + d.s * tap_s + d.t * tap_t;
        float bv[8];
        CONVARITH_UNROLL
        for (int j = 0; j < 8; ++j) {
          const I n = n0 + 4 * tn + (j < 4 ? j : BN / 2 + j - 4);
          bv[j] = n < kg ? CONVARITH_LDG(w + ((grp * kg + n) * ws0 + k)) : 0.0f;
        }
        CONVARITH_UNROLL
        for (int i = 0; i < 8; ++i) {
          const I m = m0 + 4 * tm + (i < 4 ? i : BM / 2 + i - 4);
          if (m >= m_total)
            continue;
          I q = m;
          const I ow = q % out_w;
          q /= out_w;
          const I oh = q % out_h;
          q /= out_h;
          const I od = q % out_d;
          const I nb = q / out_d;
          const I id = od * sd - pd + d.r * dd, ih = oh * sh - ph + d.s * dh, iw = ow * sw - pw + d.t * dw;
          if (static_cast<U>(id) < static_cast<U>(in_d) && static_cast<U>(ih) < static_cast<U>(in_h) &&
              static_cast<U>(iw) < static_cast<U>(in_w)) {
            const float av = CONVARITH_LDG(x + (nb * xs0 + grp * cg * xs1 + (od * sd - pd) * static_cast<I>(g.xs[2]) +
                                                (oh * sh - ph) * static_cast<I>(g.xs[3]) +
                                                (ow * sw - pw) * static_cast<I>(g.xs[4]) + xoff));
            CONVARITH_UNROLL
            for (int j = 0; j < 8; ++j)
              acc[i][j] += av * bv[j];
          }
        }
      }
    }

    // Epilogue: act(alpha * acc + bias + beta * z), through the strides of y (and z, which has y's layout).
    float bias_v[8];
    CONVARITH_UNROLL
    for (int j = 0; j < 8; ++j) {
      const I n = n0 + 4 * tn + (j < 4 ? j : BN / 2 + j - 4);
      bias_v[j] = p.bias != nullptr && n < kg ? CONVARITH_LDG(p.bias + (grp * kg + n)) : 0.0f;
    }
    CONVARITH_UNROLL
    for (int i = 0; i < 8; ++i) {
      const I m = m0 + 4 * tm + (i < 4 ? i : BM / 2 + i - 4);
      if (m >= m_total)
        continue;
      I q = m;
      const I ow = q % out_w;
      q /= out_w;
      const I oh = q % out_h;
      q /= out_h;
      const I od = q % out_d;
      const I nb = q / out_d;
      const I y_pix = y_offset<I>(g, nb, 0, od, oh, ow);
      CONVARITH_UNROLL
      for (int j = 0; j < 8; ++j) {
        const I n = n0 + 4 * tn + (j < 4 ? j : BN / 2 + j - 4);
        if (n < kg) {
          const I off = y_pix + (grp * kg + n) * static_cast<I>(g.ys[1]);
          const float zv = p.ep.beta != 0.0f ? CONVARITH_LDG(p.z + off) : 0.0f;
          CONVARITH_STG(p.y + off, apply_epilogue(p.ep, acc[i][j], bias_v[j], zv));
        }
      }
    }
  }
}

template <int kConfig>
Status igemm_launch(const KernelPlan<IgemmParams>& plan, const IgemmParams& params, const KernelArgs& args) {
  (void)args.stream; // the executor's launch ignores the stream
  return CONVARITH_LAUNCH(igemm_kernel<kConfig>, plan.grid, plan.block, plan.smem_bytes, args.stream, params);
}

Status igemm_run(const KernelArgs& args) {
  const KernelPlan<IgemmParams>& plan = prepared_as<IgemmParams>(args);
  IgemmParams params = plan.params;
  params.x = static_cast<const float*>(args.x);
  params.w = static_cast<const float*>(args.w);
  params.bias = static_cast<const float*>(args.bias);
  params.z = static_cast<const float*>(args.z);
  params.y = static_cast<float*>(args.y);
  switch (plan.variant) {
#define CONVARITH_IGEMM_CASE(cfg)                                                                                      \
  case cfg:                                                                                                            \
    return igemm_launch<cfg>(plan, params, args);
    CONVARITH_IGEMM_CASE(0)
    CONVARITH_IGEMM_CASE(2)
    CONVARITH_IGEMM_CASE(4)
    CONVARITH_IGEMM_CASE(6)
    CONVARITH_IGEMM_CASE(8)
    CONVARITH_IGEMM_CASE(9)
    CONVARITH_IGEMM_CASE(10)
    CONVARITH_IGEMM_CASE(11)
#undef CONVARITH_IGEMM_CASE
  default:
    return internal_error("igemm: no instantiation for config " + std::to_string(plan.variant));
  }
}

} // namespace convarith::kernels::CONVARITH_KNS
#endif // CONVARITH_KERNEL_BODIES
