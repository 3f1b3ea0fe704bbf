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
//   the int64_t instantiations). Blocks loop over the work units (block-stride, gridDim.x <= max_grid_blocks(dev)).
// Split-K (layers whose tiles leave the SMs idle: batch 1, 7x7 and 14x14 layers, large C): prepare() splits each
//   tile's k-tiles into S ranges of ceil(k_tiles / S) (the last shorter, none empty; a request above k_tiles is
//   clamped to one k-tile per split); a work unit is (split, tile). S = 1: one range, the epilogue in this kernel
//   (the single-kernel path, bit for bit). S > 1: each unit writes its fp32 partial sums, unscaled, to its slice of
//   the workspace [S][y_elements] (y's memory order; Prepared::workspace_bytes = S * y_elements * 4, checked by
//   Plan::run), then igemm_reduce_kernel (256 threads per block, one thread per element of y) adds the S partials
//   in increasing split order and applies the epilogue (bias, activation, alpha, beta * z): y is written only by
//   that second launch, no atomics, bitwise deterministic. The rule (igemm_choose_splits): S = 1 when the tiles
//   fill the resident-block slots (SMs x 12 warps' worth of blocks: 6 of 64x64, 3 of 128x64, 1 of 128x128); else
//   the S <= min(slots / tiles, k_tiles / 4, 128) with the least t(S) = ceil(k_tiles / S) x one k-tile's FMA time
//   + (2 S + 1 [+ 1 for z]) x y bytes at HBM speed + one launch (each split keeps >= 4 k-tiles; the partials'
//   traffic has to be paid for). SMs: the device's (kCuda), the executor profile's 132 (emulated). Never split:
//   64-bit problems, S * y_elements >= 2^31. Tests force S through igemm_prepare_tile(p, dev, tile, S).
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
//   the in-input taps (so an Inf weight gives +-Inf at the border, as `direct` does, not Inf * 0 = NaN), over its
//   own split's k range only (the other splits' partials hold the rest). The check costs a compare per staged
//   weight and one shared load per k-tile.
// supports(): op == conv (the table), f32, NC[D]HW with KCRS filters or N[D]HWC with KRSC filters (a filter
//   layout different from the activations' is declined: one instantiation per layout), every epilogue; no size
//   constraint. Registers (ptxas 13.0, sm_90, kernels/kernel_resources.inc): 127-175 for the 32-bit instantiations
//   (about 12 warps per SM), 219-221 for the 64-bit 64x64 ones; igemm_reduce_kernel 32; 0 spills.
// Determinism: bitwise deterministic for a plan; each output is one thread's sum over k in increasing order
//   (S > 1: per split, then the S partials in split order by one thread), then the epilogue. S comes from the
//   device's SM count, so plans for devices with different SM counts may round differently. z may be y (each
//   element is read and then written by the same thread).
// Cost estimate (auto): 0.5 x the fp32 FMA peak x the share of the issued FMAs that are useful (tile fit).
// Tests: test_kernels_igemm (edge list, tile boundaries per tile shape, layouts, epilogues; split-K: the edge list
//   at every split count, Inf weights per split, run-to-run bitwise, the workspace check, failed launches, the
//   rule), test_kernels_emulated --gtest_filter='*Emulated*igemm*'.
//   Bench: convarith_bench --device=cuda --benchmark_filter='convarith:igemm$'.
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
  // Split-K: the k-tiles of each output tile in `splits` ranges of split_k_tiles (the last may be shorter, none is
  // empty); a block's work unit is (split, tile), unit = split * total_tiles + tile. splits == 1: one range, the
  // epilogue in this kernel. splits > 1: fp32 partial sums to `partial` ([splits][y_elements], each slice in y's
  // memory order), then igemm_reduce_kernel (reduce_blocks x kIgemmReduceThreads) sums them and applies the epilogue.
  int64_t splits = 1, split_k_tiles = 0;
  float* partial = nullptr; // the workspace (splits > 1)
  unsigned reduce_blocks = 1;
};

constexpr unsigned kIgemmReduceThreads = 256;
constexpr int64_t kIgemmMinSplitKTiles = 4; // the rule's least k-tiles per split (32 k)
constexpr int64_t kIgemmMaxSplits = 128;    // the rule's most splits

// The workspace of a split plan: splits x y_elements floats (0 when splits == 1).
inline size_t igemm_workspace_bytes(const ConvProblem& p, int64_t splits) {
  return splits > 1 ? static_cast<size_t>(splits) * static_cast<size_t>(p.y_elements()) * sizeof(float) : 0;
}

// k-tiles per split and the split count for a requested count: split_k_tiles = ceil(k_tiles / requested), splits =
// ceil(k_tiles / split_k_tiles): a request above k_tiles is clamped to one k-tile per split, and no split is empty
// (11 k-tiles, 4 requested: 3 + 3 + 3 + 2; 5 requested: also 4 splits).
inline void igemm_split_ranges(int64_t k_tiles, int64_t requested, int64_t* splits, int64_t* split_k_tiles) {
  const int64_t want = std::max<int64_t>(1, std::min(requested, std::max<int64_t>(1, k_tiles)));
  *split_k_tiles = std::max<int64_t>(1, (k_tiles + want - 1) / want);
  *splits = std::max<int64_t>(1, (k_tiles + *split_k_tiles - 1) / *split_k_tiles);
}

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

// The split count prepare() takes for `tiles` output tiles of `tile` with `k_tiles` k-tiles each (the header's rule):
// 1 unless the tiles leave resident-block slots idle; else the S in [1, S_max] of the least modeled time
//   t(S) = ceil(tiles * S / slots) * ceil(k_tiles / S) * t_ktile  +  (S > 1: (2 S + 1 [+ 1 with z]) * y bytes / HBM
//          + one launch),
// slots = SMs x blocks per SM (12 warps per SM, the register-bound occupancy at the 32-bit instantiations' ~167
// registers: 6 blocks of 64x64, 3 of 128x64, 1 of 128x128), t_ktile = one k-tile's FMAs at the SM's fp32 rate
// shared by its blocks, S_max = min(slots / tiles, k_tiles / 4, 128) so every
// split keeps at least 4 k-tiles; ties go to the smaller S. Never for 64-bit problems or a workspace index past 2^31.
inline int64_t igemm_choose_splits(const ConvProblem& p, const DeviceInfo& dev, int tile, int64_t tiles,
                                   int64_t k_tiles) {
  if (!index_fits_int32(p) || tiles <= 0)
    return 1;
  const int64_t sms = dev.sms > 0 ? dev.sms : 132;
  const int64_t warps = (igemm_tile_m(tile) / 8) * (igemm_tile_n(tile) / 8) / 32;
  const int64_t per_sm = std::max<int64_t>(1, 12 / warps), slots = sms * per_sm;
  const int64_t s_max = std::min({slots / tiles, k_tiles / kIgemmMinSplitKTiles, kIgemmMaxSplits,
                                  (int64_t{1} << 31) / std::max<int64_t>(1, p.y_elements())});
  if (s_max < 2)
    return 1;
  const double fma_per_s_sm = 66.9e12 / 132.0 / 2.0; // the cost estimate's sm_90 fp32 rate, per SM
  const double t_ktile = static_cast<double>(igemm_tile_m(tile) * igemm_tile_n(tile) * kIgemmBK) /
                         (fma_per_s_sm / static_cast<double>(per_sm));
  const double y_bytes = static_cast<double>(p.y_elements()) * 4.0;
  const double z_pass = p.epilogue().has_residual() ? 1.0 : 0.0;
  int64_t best = 1;
  double best_t = 0;
  for (int64_t want = 1; want <= s_max; ++want) {
    int64_t s = 1, kts = 0;
    igemm_split_ranges(k_tiles, want, &s, &kts);
    const double waves = static_cast<double>((tiles * s + slots - 1) / slots);
    double t = waves * static_cast<double>(kts) * t_ktile;
    if (s > 1)
      t += (2.0 * static_cast<double>(s) + 1.0 + z_pass) * y_bytes / 3.35e12 + 3e-6;
    if (want == 1 || t < best_t) {
      best = s;
      best_t = t;
    }
  }
  return best;
}

// With a given tile shape and split request (tests run every shape and every split count on small problems; wide
// problems always take 64x64 and one split). requested_splits: 0 = prepare()'s rule, >= 1 = that many, clamped by
// igemm_split_ranges; negative is kInvalidArgument.
inline Result<Prepared> igemm_prepare_tile(const ConvProblem& p, const DeviceInfo& dev, int tile,
                                           int64_t requested_splits = 0) {
  if (requested_splits < 0)
    return invalid_argument("igemm: requested split count " + std::to_string(requested_splits) +
                            " is negative (0 chooses, >= 1 forces)");
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
    // Modular (a dilation near 2^63 times a stride wraps): the kernel adds it to offsets in unsigned arithmetic and
    // loads only where the tap is inside x, where the wrapped sum is the true offset (found by fuzz_problem).
    q.tap_x[j] = static_cast<int64_t>(static_cast<uint64_t>(g.dil[j]) * static_cast<uint64_t>(g.xs[2 + j]));
  int64_t want = requested_splits > 0 ? requested_splits : igemm_choose_splits(p, dev, tile, q.total_tiles, q.k_tiles);
  if (wide || p.y_elements() * std::min(want, q.k_tiles) >= (int64_t{1} << 31))
    want = 1; // 64-bit problems, and a workspace past 32-bit indexing, never split
  igemm_split_ranges(q.k_tiles, want, &q.splits, &q.split_k_tiles);
  q.reduce_blocks = grid_blocks(p.y_elements(), kIgemmReduceThreads, max_grid_blocks(dev));
  const int threads = (bm / 8) * (bn / 8);
  const int64_t units = q.total_tiles * q.splits;
  plan.grid = dim3(static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(units, max_grid_blocks(dev)))));
  plan.block = dim3(static_cast<unsigned>(threads));
  plan.smem_bytes = igemm_smem_bytes(tile, x_cl);
  plan.variant = igemm_config(tile, x_cl, wide);
  plan.wide = wide;
  // The cost estimate: half the FMA peak on the FMAs the tiles issue (padding past M, K/g and Kdim included), so a
  // layer the tiles fit badly (depthwise: K/g = 1 in a 64-wide tile) goes to the rows that fit it.
  const double issued = static_cast<double>(q.total_tiles) * static_cast<double>(q.k_tiles) * kIgemmBK * bm * bn;
  const double useful = static_cast<double>(p.flops()) / 2;
  return make_prepared(p, dev, plan, issued > 0 ? std::max(1e-3, 0.5 * std::min(1.0, useful / issued)) : 0.5,
                       igemm_workspace_bytes(p, q.splits));
}

// Precondition: igemm_supports(p, dev) is OK. The tile, the split count and the k digits are computed here, once
// per plan.
inline Result<Prepared> igemm_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  return igemm_prepare_tile(p, dev, igemm_choose_tile(p, dev), 0);
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

// y's offset of output pixel m = (n, od, oh, ow) at channel 0 (the split-K partials and the epilogue).
template <typename I> CONVARITH_DEVICE I igemm_y_pixel(const Geometry& g, I m, I out_w, I out_h, I out_d) {
  const I ow = m % out_w;
  m /= out_w;
  const I oh = m % out_h;
  m /= out_h;
  const I od = m % out_d;
  return y_offset<I>(g, m / out_d, I{0}, od, oh, ow);
}

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

  // 64-bit problems never split (prepare()): their instantiations compile the single-range path only.
  const int64_t splits = kWide ? 1 : p.splits, split_k_tiles = kWide ? p.k_tiles : p.split_k_tiles;
  const int64_t units = p.total_tiles * splits;
  for (int64_t unit = blockIdx.x; unit < units; unit += gridDim.x) {
    const int64_t split = kWide ? 0 : unit / p.total_tiles, tile = unit - split * p.total_tiles;
    // This unit's k-tiles [kt_begin, kt_end) and k range [k_begin, k_end) (splits == 1: all of them).
    const int64_t kt_begin = split * split_k_tiles;
    const int64_t kt_end = kt_begin + split_k_tiles < p.k_tiles ? kt_begin + split_k_tiles : p.k_tiles;
    const I k_begin = static_cast<I>(kt_begin * BK);
    const I k_end = static_cast<I>(kt_end * BK) < kdim ? static_cast<I>(kt_end * BK) : kdim;
    const int64_t tn_i = tile % p.tiles_n;
    const int64_t rest = tile / p.tiles_n;
    const int64_t tm_i = rest % p.tiles_m;
    const I grp = static_cast<I>(rest / p.tiles_m);
    const I m0 = static_cast<I>(tm_i * BM), n0 = static_cast<I>(tn_i * BN);

    // This thread's A pixels: x offset of (n, group's first channel, the window's corner) and the corner; a pixel past
    // M gets a corner outside the input (id = D) so every load of it is predicated off.
    // In U: a corner far outside x (huge padding, stride or dilation) wraps instead of overflowing; only in-range
    // taps are loaded, and for them the modular offsets are the true ones (found by fuzz_huge).
    U a_base[kAPer], a_d[kAPer], a_h[kAPer], a_w[kAPer];
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
        a_d[j] = static_cast<U>(od) * static_cast<U>(sd) - static_cast<U>(pd);
        a_h[j] = static_cast<U>(oh) * static_cast<U>(sh) - static_cast<U>(ph);
        a_w[j] = static_cast<U>(ow) * static_cast<U>(sw) - static_cast<U>(pw);
        a_base[j] = static_cast<U>(nb) * static_cast<U>(xs0) +
                    static_cast<U>(grp) * static_cast<U>(cg) * static_cast<U>(xs1) + a_d[j] * static_cast<U>(g.xs[2]) +
                    a_h[j] * static_cast<U>(g.xs[3]) + a_w[j] * static_cast<U>(g.xs[4]);
      } else {
        a_base[j] = 0;
        a_d[j] = static_cast<U>(in_d);
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
    IgemmTap<I> tap = igemm_decompose<kWcl, I>(static_cast<I>(k_begin + a_k), cg, kd, kh, kw);
    I kb = static_cast<I>(k_begin + b_k);

    float a_reg[kAPer], b_reg[kBPer];
    bool bad = false; // a non-finite weight in the staged tile
    // Global loads of the k-tile the counters point at, then advance them.
    const auto load_tile = [&]() {
      const bool k_ok = kWcl ? tap.r < kd : tap.c < cg;
      const U xoff = static_cast<U>(tap.c) * static_cast<U>(xs1) + static_cast<U>(tap.r) * static_cast<U>(tap_r) +
                     static_cast<U>(tap.s) * static_cast<U>(tap_s) + static_cast<U>(tap.t) * static_cast<U>(tap_t);
      const U dz = static_cast<U>(tap.r) * static_cast<U>(dd), dy = static_cast<U>(tap.s) * static_cast<U>(dh),
              dx = static_cast<U>(tap.t) * static_cast<U>(dw);
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
    for (int64_t kt = kt_begin; kt < kt_end; ++kt, ++serial) {
      const int stage = static_cast<int>(serial & 1u);
      if (CONVARITH_LDS(flags + stage) == serial) { // the same for every thread (written before the barrier)
        guarded = true;
        ++serial; // the next tile's prologue stages into the other buffer, as after a full iteration
        break;
      }
      const bool has_next = kt + 1 < kt_end;
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
      // in-input taps (the staged zeros of padding would give Inf * 0 = NaN), over this unit's k range only (the
      // other splits add theirs). Rare; divisions are fine here.
      CONVARITH_UNROLL
      for (int i = 0; i < 8; ++i) {
        CONVARITH_UNROLL
        for (int j = 0; j < 8; ++j)
          acc[i][j] = 0.0f;
      }
      for (I k = k_begin; k < k_end; ++k) {
        const IgemmTap<I> d = igemm_decompose<kWcl, I>(k, cg, kd, kh, kw);
        const U xoff = static_cast<U>(d.c) * static_cast<U>(xs1) + static_cast<U>(d.r) * static_cast<U>(tap_r) +
                       static_cast<U>(d.s) * static_cast<U>(tap_s) + static_cast<U>(d.t) * static_cast<U>(tap_t);
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
          // Modular, as the staged path (a corner or tap far outside x wraps; only in-range taps are loaded).
          const U cd = static_cast<U>(od) * static_cast<U>(sd) - static_cast<U>(pd);
          const U ch = static_cast<U>(oh) * static_cast<U>(sh) - static_cast<U>(ph);
          const U cw = static_cast<U>(ow) * static_cast<U>(sw) - static_cast<U>(pw);
          const U id = cd + static_cast<U>(d.r) * static_cast<U>(dd),
                  ih = ch + static_cast<U>(d.s) * static_cast<U>(dh),
                  iw = cw + static_cast<U>(d.t) * static_cast<U>(dw);
          if (id < static_cast<U>(in_d) && ih < static_cast<U>(in_h) && iw < static_cast<U>(in_w)) {
            const float av = CONVARITH_LDG(x + (static_cast<U>(nb) * static_cast<U>(xs0) +
                                                static_cast<U>(grp) * static_cast<U>(cg) * static_cast<U>(xs1) +
                                                cd * static_cast<U>(g.xs[2]) + ch * static_cast<U>(g.xs[3]) +
                                                cw * static_cast<U>(g.xs[4]) + xoff));
            CONVARITH_UNROLL
            for (int j = 0; j < 8; ++j)
              acc[i][j] += av * bv[j];
          }
        }
      }
    }

    if (splits > 1) {
      // Split-K: this split's fp32 partial sums, unscaled, to its slice of the workspace (y's memory order).
      float* const part = p.partial + split * p.g.y_elements;
      CONVARITH_UNROLL
      for (int i = 0; i < 8; ++i) {
        const I m = m0 + 4 * tm + (i < 4 ? i : BM / 2 + i - 4);
        if (m >= m_total)
          continue;
        const I y_pix = igemm_y_pixel<I>(g, m, out_w, out_h, out_d);
        CONVARITH_UNROLL
        for (int j = 0; j < 8; ++j) {
          const I n = n0 + 4 * tn + (j < 4 ? j : BN / 2 + j - 4);
          if (n < kg)
            CONVARITH_STG(part + (y_pix + (grp * kg + n) * static_cast<I>(g.ys[1])), acc[i][j]);
        }
      }
      continue;
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
      const I y_pix = igemm_y_pixel<I>(g, m, out_w, out_h, out_d);
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

// Split-K's second kernel: one thread per element e of y (memory order), the partials of the splits summed in
// increasing split order, then the epilogue. Split plans have 32-bit indices (prepare()); the grid-stride counter
// is 64-bit. z may be y (each element is read, then written, by one thread).
CONVARITH_GLOBAL void
#if CONVARITH_GPU_ONLY
__launch_bounds__(kIgemmReduceThreads)
#endif
    igemm_reduce_kernel(IgemmParams p) {
  const int32_t elements = static_cast<int32_t>(p.g.y_elements), splits = static_cast<int32_t>(p.splits);
  const int32_t ys1 = static_cast<int32_t>(p.g.ys[1]), channels = static_cast<int32_t>(p.g.k);
  const float* CONVARITH_RESTRICT part = p.partial;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < elements;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t e = static_cast<int32_t>(i);
    float sum = CONVARITH_LDG(part + e);
    for (int32_t s = 1; s < splits; ++s)
      sum += CONVARITH_LDG(part + (s * elements + e));
    const int32_t k = (e / ys1) % channels; // y's channel: NC[D]HW ys1 = OD*OH*OW, N[D]HWC ys1 = 1
    const float bias = p.bias != nullptr ? CONVARITH_LDG(p.bias + k) : 0.0f;
    const float zv = p.ep.beta != 0.0f ? CONVARITH_LDG(p.z + e) : 0.0f;
    CONVARITH_STG(p.y + e, apply_epilogue(p.ep, sum, bias, zv));
  }
}

template <int kConfig>
Status igemm_launch(const KernelPlan<IgemmParams>& plan, const IgemmParams& params, const KernelArgs& args) {
  (void)args.stream; // the executor's launch ignores the stream
  CONVARITH_RETURN_IF_ERROR(
      CONVARITH_LAUNCH(igemm_kernel<kConfig>, plan.grid, plan.block, plan.smem_bytes, args.stream, params));
  if (params.splits <= 1)
    return Status::ok();
  const dim3 reduce_grid(params.reduce_blocks), reduce_block(kIgemmReduceThreads);
  return CONVARITH_LAUNCH(igemm_reduce_kernel, reduce_grid, reduce_block, 0, args.stream, params);
}

Status igemm_run(const KernelArgs& args) {
  const KernelPlan<IgemmParams>& plan = prepared_as<IgemmParams>(args);
  IgemmParams params = plan.params;
  params.x = static_cast<const float*>(args.x);
  params.w = static_cast<const float*>(args.w);
  params.bias = static_cast<const float*>(args.bias);
  params.z = static_cast<const float*>(args.z);
  params.y = static_cast<float*>(args.y);
  if (params.splits > 1) { // the Plan checked the workspace; a direct caller (tests) is checked here
    const size_t need = static_cast<size_t>(params.splits) * static_cast<size_t>(params.g.y_elements) * sizeof(float);
    if (need > 0 && (args.workspace == nullptr || args.workspace_bytes < need))
      return invalid_argument("igemm: split-K over " + std::to_string(params.splits) + " splits needs a workspace of " +
                              std::to_string(need) + " bytes, got " +
                              std::to_string(args.workspace == nullptr ? 0 : args.workspace_bytes));
    params.partial = static_cast<float*>(args.workspace);
  }
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
