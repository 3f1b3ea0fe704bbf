// host/cpu/cpu_conv.cpp — "cpu_gemm" (convolution) and "cpu_gemm_col2im" (transposed convolution).
//
// Convolution, per image n and group g: Y_g[Kg x P] = W_g[Kg x Cg*T*R*S] * col[Cg*T*R*S x P].
// A task is (n, g, a block of nc output pixels, a block of output channels), chosen by a cost model
// (conv_blocking); it builds the im2col panel of its pixels one depth block (kGemmKc rows) at a time in its
// slot of the workspace, so the whole column matrix never exists, and multiplies it with its rows of the
// weights: packed once per run, or, where each row is used by one task only (N = 1, one pixel block), read in
// place by the row-major tile (gemm_block_rows: read once, where packing reads, writes and reads them again).
// With constant weights (PlanOptions::weights) they are packed once, in Plan::create (cpu_conv_prepare_weights:
// every group's panels and whether one is Inf or NaN), and every run multiplies those panels: the same panels
// in the same order as a run that packs them, so the same bits.
// Small images with many channels (ResNet-50's 7x7 and 14x14 layers, C3D's conv5a at 2x7x7) take the pixel-rows
// orientation where the cost model says it is quicker: Y^T[P x Kg] = col^T * W^T, the output pixels as the GEMM's
// rows (P padded to mr = 8, not to nr = 32: 98 pixels compute 104 rows, not 128 columns) and W^T as its columns,
// packed as [sliver][depth][nr] (per run, or once with constant weights); per (n, g) the pixel panels of every depth
// are built once (a task per depth block), then a task per chunk of channels (about four per thread) streams its
// W^T slivers once past them. C starts as the bias where the usual orientation adds the bias to the first depth
// block's sum, and an FMA's product commutes: the same bits as the usual orientation (test_cpu_gemm_orientation).
// 1x1 unit-stride unpadded layers use x as the panel directly. Layers with one output channel per group (Kg = 1,
// e.g. depthwise) take a direct row-wise loop instead (direct_plane), and so does every layer whose weights hold
// an Inf or NaN (found while they are packed; with weights read in place, any Inf or NaN output sends the problem
// there, which gives the same IEEE results whatever the cause): the panel's zero padding times an infinite
// weight would be NaN, where padding must contribute nothing (the direct loops visit only the taps
// inside the input). Each output element is written by one task, in a fixed order: deterministic.
// Error: each output is one float sum of Cg*T*R*S products in sequence (the GEMM splits it into
// depth blocks of kGemmKc, added in order), |err| <= Cg*T*R*S * u * sum |x*w| (u = 2^-24), to first
// order; the kernel's taps come with a weight tensor of that size, so it is not a pooling window.
//
// No pointer is formed outside the tensors: an out-of-range tap's offset (s * dilation can be near
// 2^63) only ever appears inside an index that is never used, never as a pointer.
//
// Transposed convolution (weights C x Kg x T x R x S), per image n and group g:
// cols[Kg*T*R*S x Pin] = W_g^T * x_g (x read in place as B), then every column tap is added into
// the output pixel it lands on (col2im). A task is (n, g, a chunk of output channels), so each
// output plane is accumulated by one task in a fixed order: deterministic, no atomics. With too few such tasks for
// the threads (one image, one output channel: FSRCNN's deconv ran on one core) each plane is split into bands of
// output rows (or depth planes), a task per band: it multiplies the input rows whose taps reach its band and adds
// only what lands inside it, in the same order as one band (the same bits; the rows next to a band boundary are
// multiplied by both neighbours). Large inputs go through in blocks of input pixels so a task's columns stay
// ~128 KiB. One image whose input pixels fit a GEMM row chunk computes cols^T = x_g^T * W_g instead (x^T packed, W
// read once in place), bitwise the same: W^T packed as A would be written and read back for one or two column
// slivers (that path takes no bands). With constant
// weights (cpu_conv_transpose_prepare_weights) W^T is packed once in Plan::create and every run takes the usual
// orientation (the weights-as-B order is for runs handed w: TransposeBlocking::per_run); the same bits either way.
//
// Workspace (workspace()): the packed weights plus one scratch slot (im2col panel or columns) per
// thread of the pool; run() aligns the caller's pointer to 64 bytes itself.
//
// Sizes come from the problem (ConvProblem::axis3/out3); nothing here re-derives an output size.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cpu/cpu_ops.hpp"
#include "cpu/gemm.hpp"
#include "cpu/thread_pool.hpp"

namespace convarith::detail {
namespace {

constexpr int64_t kTasksPerThread = 8;          // transposed: enough tasks to balance uneven finishing
constexpr int64_t kColsBudgetFloats = 32768;    // transposed: cols of one task, 128 KiB
constexpr int64_t kMinColPixels = 64;           // transposed: fewest input pixels per GEMM step
constexpr int64_t kWeightCols = 128;            // transposed, weights as B: columns of W copied per step
constexpr int64_t kWeightLd = kWeightCols + 16; // their row stride in the copy (9 cache lines: no set crowding)

// The rank-3 view of a problem, in the loop letters of the house style.
struct Geometry {
  int64_t n, c, k, groups, cg, kg;
  int64_t in[3], out[3], ker[3], str[3], pad[3], dil[3];
  int64_t in_spatial, out_spatial, ker_spatial;
  explicit Geometry(const ConvProblem& p)
      : n(p.n()), c(p.c()), k(p.k()), groups(p.groups()), cg(p.c() / p.groups()), kg(p.k() / p.groups()),
        in_spatial(p.in_spatial()), out_spatial(p.out_spatial()), ker_spatial(p.kernel_spatial()) {
    for (int j = 0; j < 3; ++j) {
      const AxisParams& a = p.axis3(j);
      in[j] = a.i;
      out[j] = p.out3(j);
      ker[j] = a.k;
      str[j] = a.s;
      pad[j] = a.p_lo;
      dil[j] = a.d;
    }
  }
};

// ---- convolution ---------------------------------------------------------------------------------

// The pixel-rows orientation's panels by the taps they see: a panel of mr output pixels sees tap (t, r, s) when one
// of its pixels reads inside x through it; the depth rows of the taps it does not see are zero for every pixel of the
// panel (padding, or the rows past P), so their products are skipped. A product of a zero x and a finite weight adds
// +-0 to the sum, which leaves it unchanged (but for a sum of -0: only a bias of -0 starts one), so the skipping keeps
// the usual orientation's bits; an Inf/NaN weight takes the direct loops, which skip padded taps too. Adjacent
// panels that see the same taps form a run: per depth block, a run's panels keep only the rows of its taps
// (kept[block][run] of them, at offset[block][run] in the block), and the chunk tasks gather the matching rows of
// each W^T sliver block for it. C3D's conv5a (2x7x7 output, 3x3x3 taps, padding 1): a third of the panel-taps
// are skipped (each depth tap reaches one of the two output planes).
struct PanelRuns {
  int64_t ks = 0;                    // taps (T*R*S)
  std::vector<int64_t> first, count; // per run: its first panel and its panels
  std::vector<uint8_t> sees;         // per run: ks flags
  std::vector<int64_t> kept, offset; // per (depth block, run)
  std::vector<int32_t> rows;         // per (depth block, run) with kept < kc: the kept rows' q in the block
  std::vector<int64_t> rows_at;      // per (depth block, run): where its kept rows start in `rows`
  std::vector<int64_t> block_offset; // per depth block: where its panels start in the cols
  int64_t panels = 0;                // of mr pixels (P rounded up to mr, / mr)
  int64_t seen = 0;                  // panel-taps seen, of panels * ks
  int64_t runs() const { return static_cast<int64_t>(first.size()); }
  double seen_share() const { return double(seen) / double(std::max<int64_t>(1, panels * ks)); }
};

std::shared_ptr<const PanelRuns> panel_runs(const Geometry& g, int64_t p_pad, int64_t depth, int mr) {
  auto pr = std::make_shared<PanelRuns>();
  const int64_t ks = g.ker_spatial, panels = p_pad / mr, P = g.out_spatial;
  pr->ks = ks;
  pr->panels = panels;
  // Appends n panels from `first` that see `sees` as a run, or to the last run when it sees the same taps.
  const auto append = [ks](PanelRuns& to, int64_t first, int64_t n, const uint8_t* sees) {
    if (!to.first.empty() && std::equal(sees, sees + ks, to.sees.end() - ks)) {
      to.count.back() += n;
    } else {
      to.first.push_back(first);
      to.count.push_back(n);
      to.sees.insert(to.sees.end(), sees, sees + ks);
    }
  };
  std::vector<TapRange> valid[3]; // per axis and tap: the output indices that read inside x through it
  for (int j = 0; j < 3; ++j)
    for (int64_t t = 0; t < g.ker[j]; ++t)
      valid[j].push_back(tap_range(g.out[j], g.str[j], t * g.dil[j] - g.pad[j], g.in[j]));
  const auto inside = [](const TapRange& v, int64_t o) { return o >= v.lo && o < v.hi; };
  std::vector<uint8_t> sees(static_cast<size_t>(ks));
  for (int64_t i = 0; i < panels; ++i) {
    std::fill(sees.begin(), sees.end(), uint8_t{0});
    for (int64_t p = i * mr; p < std::min(P, (i + 1) * mr); ++p) {
      const int64_t ow = p % g.out[2], oh = p / g.out[2] % g.out[1], od = p / (g.out[2] * g.out[1]);
      for (int64_t t = 0; t < g.ker[0]; ++t)
        if (inside(valid[0][t], od))
          for (int64_t r = 0; r < g.ker[1]; ++r)
            if (inside(valid[1][r], oh))
              for (int64_t s = 0; s < g.ker[2]; ++s)
                if (inside(valid[2][s], ow))
                  sees[static_cast<size_t>((t * g.ker[1] + r) * g.ker[2] + s)] = 1;
    }
    append(*pr, i, 1, sees.data());
  }
  // A run skips its unseen taps only when that saves more than gathering the W^T rows of its seen taps costs: a
  // skipped row saves count * mr * nr FMAs, a gathered row costs about 3 * nr FMAs' time (nr floats copied, the
  // sliver's first read from memory). Others see every tap (their unseen rows are multiplied as zeros), and adjacent
  // runs that then see the same taps merge. (C3D's conv5a on 2 cores of an AMD EPYC, AVX2: factor 0, skip every
  // run, 18.3-19.0 ms; 1: 18.0-18.1; 3: 17.8-17.9; 6: 18.4; 16: 19.2-19.4; no skipping 23.0-23.5.)
  {
    PanelRuns merged;
    for (int64_t r = 0; r < pr->runs(); ++r) {
      uint8_t* rs = pr->sees.data() + r * ks;
      const int64_t seen = std::count(rs, rs + ks, uint8_t{1}), n = pr->count[static_cast<size_t>(r)];
      if (n * mr * (ks - seen) <= 3 * seen)
        std::fill(rs, rs + ks, uint8_t{1});
      append(merged, pr->first[static_cast<size_t>(r)], n, rs);
      pr->seen += n * std::count(rs, rs + ks, uint8_t{1});
    }
    pr->first = std::move(merged.first);
    pr->count = std::move(merged.count);
    pr->sees = std::move(merged.sees);
  }
  const int64_t runs = pr->runs(), blocks = ceil_div(depth, kGemmKc);
  int64_t total = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t k0 = b * kGemmKc, kc = std::min(kGemmKc, depth - k0);
    pr->block_offset.push_back(total);
    int64_t in_block = 0;
    for (int64_t r = 0; r < runs; ++r) {
      const uint8_t* rs = pr->sees.data() + r * ks;
      const size_t at = pr->rows.size();
      pr->rows_at.push_back(static_cast<int64_t>(at));
      for (int64_t q = 0, tap = k0 % ks; q < kc; ++q, tap = tap + 1 == ks ? 0 : tap + 1)
        if (rs[tap] != 0)
          pr->rows.push_back(static_cast<int32_t>(q));
      const int64_t kept = static_cast<int64_t>(pr->rows.size() - at);
      if (kept == kc)
        pr->rows.resize(at); // all of them: no list
      pr->kept.push_back(kept);
      pr->offset.push_back(in_block);
      in_block += pr->count[static_cast<size_t>(r)] * kept * mr;
    }
    total += in_block;
  }
  return pr;
}

// count runs of mr floats from src (contiguous) to dst, dst_step floats apart. Fixed-size copies for the tiles' mr
// (a memcpy call per run of 6 floats made C3D's conv5a, 13824 depth rows x 17 panels a run, 2-3 % slower).
void copy_panel_rows(const float* src, int64_t count, int mr, float* dst, int64_t dst_step) {
  if (mr == 6) {
    for (int64_t i = 0; i < count; ++i)
      std::memcpy(dst + i * dst_step, src + i * 6, 6 * sizeof(float));
  } else if (mr == 8) {
    for (int64_t i = 0; i < count; ++i)
      std::memcpy(dst + i * dst_step, src + i * 8, 8 * sizeof(float));
  } else {
    for (int64_t i = 0; i < count; ++i)
      std::memcpy(dst + i * dst_step, src + i * mr, static_cast<size_t>(mr) * sizeof(float));
  }
}

// dst[i] = src row rows[i] (rows of nr floats), i < count.
void gather_rows(const float* src, const int32_t* rows, int64_t count, int nr, float* dst) {
  if (nr == 16) {
    for (int64_t i = 0; i < count; ++i)
      std::memcpy(dst + i * 16, src + int64_t{rows[i]} * 16, 16 * sizeof(float));
  } else if (nr == 32) {
    for (int64_t i = 0; i < count; ++i)
      std::memcpy(dst + i * 32, src + int64_t{rows[i]} * 32, 32 * sizeof(float));
  } else {
    for (int64_t i = 0; i < count; ++i)
      std::memcpy(dst + i * nr, src + int64_t{rows[i]} * nr, static_cast<size_t>(nr) * sizeof(float));
  }
}

struct ConvBlocking {
  bool direct_b;      // 1x1, stride 1, no padding: x is the B matrix
  int64_t nc;         // pixels per task, at most (the blocks take the pixels' slivers of nr evenly)
  int64_t nc_pad;     // leading dimension of the im2col panel (nc rounded up to nr)
  int64_t blocks;     // pixel blocks per (n, g)
  int64_t mrows;      // output channels per task (a multiple of mr)
  int64_t mblocks;    // channel blocks per (n, g)
  bool rows_in_place; // each task reads its rows of the weights in place, unpacked (every row is used by one task:
                      // N = 1, one pixel block), through the row-major tile (gemm_block_rows)
  int64_t a_floats;   // packed weights of one group (none when rows_in_place; W^T with pixel_rows)
  int64_t slot_floats;
  // Pixel rows (small images, many channels): Y^T[P x Kg] = col^T[P x depth] * W^T[depth x Kg] per (n, g), the
  // output pixels as the GEMM's rows (panels of mr, P padded to mr instead of to nr) and the channels as its
  // columns (slivers of nr, W^T packed once as [sliver][depth][nr]); per (n, g) the pixel panels of every depth
  // are built once, then a task per chunk of kchunk channels takes every pixel. The same products in the same order as
  // the usual orientation (an FMA's product commutes, and the bias is C's initial value where it would be added to the
  // first depth block's sum), less the zero products of the taps a panel does not see (PanelRuns): the same bits.
  bool pixel_rows = false;
  int64_t kchunk = 0;      // channels per task (a multiple of nr)
  int64_t kchunks = 0;     // tasks per (n, g)
  int64_t p_pad = 0;       // pixels rounded up to mr
  int64_t cols_floats = 0; // the pixel panels of every depth, [k0 block][P/mr][kc][mr], one (n, g) at a time
  std::shared_ptr<const PanelRuns> runs; // the panels by the taps they see (the block's [kc] is the run's kept rows)
  // Pixel rows: the blocking of runs handed w (no prepared weights) when they pay more for packing W^T than the
  // usual orientation saves (nullptr: the same blocking either way).
  std::shared_ptr<const ConvBlocking> per_run;
};

// Tests: -1 the cost model decides (default), 0 never the pixel-rows orientation, 1 always where it applies.
std::atomic<int> g_pixel_rows_mode{-1};

ConvBlocking conv_blocking(const ConvProblem& p) {
  const Geometry geo(p);
  const GemmKernel& gk = gemm_kernel();
  const int64_t slots = ThreadPool::instance().max_slots();
  ConvBlocking b{};
  b.direct_b = true;
  for (int j = 0; j < 3; ++j)
    b.direct_b = b.direct_b && geo.ker[j] == 1 && geo.str[j] == 1 && geo.pad[j] == 0 && geo.out[j] == geo.in[j];
  const int64_t pixels = geo.out_spatial, panels = ceil_div(geo.kg, gk.mr);
  const int64_t outer = std::max<int64_t>(1, geo.n * geo.groups);
  const int64_t depth = sat_mul(geo.cg, geo.ker_spatial), kc = std::min(kGemmKc, depth);
  // Tasks are (image, group, pixel block, channel block). The blocking is the one a small cost model says is
  // quickest, in nanoseconds per core (constants measured on an AMD EPYC Zen 3: the AVX2 tile at ~85 GFLOP/s per
  // core; a weight element read from L3 or memory ~0.5 ns; an im2col element ~0.3 ns plus ~12 ns per row run):
  //  - the GEMM over the padded tile (pixels rounded up to nr per block, channels to mr per block);
  //  - each pixel block reads all the weights of its channel blocks again (free when they fit in L2);
  //  - each channel block builds its im2col panels again;
  //  - tasks run on `slots` threads in rounds: ceil(T / slots) rounds of the average task, plus ~2 us a task.
  // Small images with many channels (ResNet-50's 7x7 and 14x14 layers at batch 1) get few, large tasks split by
  // channel; large images get many pixel blocks.
  const double flops_per_ns = gk.mr * gk.nr >= 256 ? 150.0 : gk.mr * gk.nr >= 96 ? 85.0 : 20.0;
  const double weights = double(geo.kg) * double(depth);
  const bool weights_in_l2 = weights * sizeof(float) <= double(cpu_l2_bytes()) / 2;
  const double a_ns = weights_in_l2 ? 0.02 : 0.5;
  const double run_ns = b.direct_b ? 0.0 : 12.0 / double(std::max<int64_t>(1, std::min(geo.out[2], pixels)));
  const double col_ns = b.direct_b ? 0.0 : 0.3 + run_ns;
  // The im2col panel of one depth block stays within half of L2.
  const int64_t nc_max = std::max<int64_t>(gk.nr, cpu_l2_bytes() / 2 / (kc * int64_t{sizeof(float)}) / gk.nr * gk.nr);
  const int64_t min_blocks = ceil_div(pixels, nc_max), max_blocks = ceil_div(pixels, gk.nr);
  int64_t blocks = min_blocks, mblocks = 1;
  double best = -1;
  for (int64_t pb = min_blocks; pb <= std::min(max_blocks, min_blocks + 64); ++pb) {
    const int64_t nc = round_up(ceil_div(pixels, pb), gk.nr), pbs = ceil_div(pixels, nc);
    if (pbs != pb)
      continue; // the same blocking as a smaller pb
    for (int64_t mb = 1; mb <= std::min<int64_t>(panels, 64); ++mb) {
      const int64_t mrows = ceil_div(panels, mb) * gk.mr, mbs = ceil_div(geo.kg, mrows);
      if (mbs != mb)
        continue;
      const double tasks = double(outer) * double(pbs * mbs);
      const double gemm = 2.0 * double(mbs * mrows) * double(depth) * double(pbs * nc) / flops_per_ns;
      const double a_read = double(pbs) * weights * a_ns;
      const double im2col = double(mbs) * double(depth) * double(pbs * nc) * col_ns;
      const double per_task = (gemm + a_read + im2col) * double(outer) / tasks + 2000.0;
      const double cost = std::ceil(tasks / double(slots)) * per_task;
      if (best < 0 || cost < best * 0.999) {
        best = cost;
        blocks = pbs;
        mblocks = mbs;
      }
    }
  }
  // The pixel-rows orientation, per (n, g): the im2col panels of every pixel at every depth (built once, a task per
  // depth block), then a task per chunk of channels multiplying them with its W^T slivers. Its A blocks (every
  // pixel at one depth block) stay within half of L2.
  const int64_t p_pad = round_up(pixels, gk.mr), slivers = ceil_div(geo.kg, gk.nr);
  const int64_t cols_floats = sat_mul(p_pad, depth);
  const bool rows_fit = !b.direct_b && geo.kg >= 2 * gk.nr &&
                        p_pad * kc * int64_t{sizeof(float)} <= cpu_l2_bytes() / 2 &&
                        cols_floats <= (int64_t{64} << 20) / int64_t{sizeof(float)};
  // About four chunks per thread (the threads' shares even out), at least one sliver each.
  const int64_t chunk_slivers = std::max<int64_t>(1, slivers / std::max<int64_t>(1, 4 * slots));
  double rows_cost = -1;
  std::shared_ptr<const PanelRuns> runs;
  if (rows_fit) {
    runs = panel_runs(geo, p_pad, depth, gk.mr);
    const double chunks = double(ceil_div(slivers, chunk_slivers));
    // The panel-taps no pixel of the panel sees are skipped (the gathers of their W^T rows are ~1/16 of an FMA).
    const double gemm =
        2.0 * double(p_pad) * double(depth) * double(slivers * gk.nr) / flops_per_ns * runs->seen_share();
    const double im2col = double(depth) * double(p_pad) * (col_ns + 0.05);
    const double a_reads = chunks * double(cols_floats) * 0.02;
    rows_cost = double(outer) * ((gemm + weights * a_ns + im2col + a_reads) / double(slots) + 2.0 * 2000.0);
  }
  // The usual blocking, complete (returned as it is, or kept for runs without prepared weights, below).
  ConvBlocking usual = b;
  usual.nc = round_up(ceil_div(pixels, blocks), gk.nr);
  usual.blocks = ceil_div(pixels, usual.nc);
  usual.nc_pad = usual.nc;
  usual.mrows = ceil_div(panels, mblocks) * gk.mr;
  usual.mblocks = ceil_div(geo.kg, usual.mrows);
  // Packed up front, the weights are read, written and read again through memory (9 MiB for a 3x3 512 layer);
  // packed by the one task that uses them, a depth block at a time, they are read once.
  usual.rows_in_place = geo.n * usual.blocks == 1;
  usual.a_floats = usual.rows_in_place ? 0 : packed_a_floats(gk, geo.kg, sat_mul(geo.cg, geo.ker_spatial));
  usual.slot_floats = usual.direct_b ? 0 : sat_mul(kc, usual.nc_pad);
  const int mode = g_pixel_rows_mode.load(std::memory_order_relaxed);
  if (rows_fit && (mode == 1 || (mode < 0 && rows_cost < best * 0.95))) {
    // Without prepared weights every run packs W^T first (~1 ns a weight per core, measured on R23), where the
    // usual blocking reads the weights in place at batch 1 (one pixel block): the runs handed w keep the usual
    // blocking then. Measured per run on the AMX Xeon, pixel rows against the usual: R23 3.7 vs 2.8 ms, V9 8.6 vs
    // 8.0 (dearer), R17 1.7 vs 2.3, C5 15.2 vs 16.5 (cheaper) -- too close for the model's constants to tell
    // apart, so the rule is the one that never packs more than before.
    if (mode < 0 && usual.rows_in_place)
      b.per_run = std::make_shared<const ConvBlocking>(usual);
    b.pixel_rows = true;
    b.kchunk = chunk_slivers * gk.nr;
    b.kchunks = ceil_div(geo.kg, b.kchunk);
    b.p_pad = p_pad;
    b.cols_floats = cols_floats;
    b.runs = std::move(runs);
    b.nc = b.nc_pad = pixels;
    b.blocks = 1;
    b.mrows = b.mblocks = 0;
    b.rows_in_place = false;
    b.a_floats = sat_mul(sat_mul(slivers, gk.nr), depth); // W^T of one group, [sliver][depth][nr]
    // Per slot: one im2col row (the depth-block tasks) or C [p_pad][kchunk] and a gathered W^T block (the chunk
    // tasks).
    b.slot_floats = std::max(round_up(p_pad, 16), sat_add(sat_mul(p_pad, b.kchunk), kGemmKc * gk.nr));
    return b;
  }
  return usual;
}

// Where output pixel p0 lies: its (od, oh, ow).
struct PixelPos {
  int64_t od, oh, ow;
};
PixelPos pixel_pos(const Geometry& g, int64_t p0) {
  return {p0 / (g.out[2] * g.out[1]), (p0 / g.out[2]) % g.out[1], p0 % g.out[2]};
}

// One row of the im2col panel: tap (t, r, s) of input plane xc for `count` output pixels from `at` on; valid: the ow
// whose iw is inside x through tap s (tap_range).
void im2col_row(const Geometry& g, const float* xc, int64_t t, int64_t r, int64_t s, PixelPos at, TapRange valid,
                int64_t count, float* dst) {
  const int64_t ow_n = g.out[2], oh_n = g.out[1];
  int64_t ow = at.ow, oh = at.oh, od = at.od;
  const int64_t off_w = s * g.dil[2] - g.pad[2];
  int64_t done = 0;
  while (done < count) {
    const int64_t len = std::min(ow_n - ow, count - done);
    const int64_t id = od * g.str[0] - g.pad[0] + t * g.dil[0];
    const int64_t ih = oh * g.str[1] - g.pad[1] + r * g.dil[1];
    float* out = dst + done; // out[q - ow] is output pixel ow = q
    if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
      std::fill(out, out + len, 0.0f);
    } else {
      const float* row = xc + (id * g.in[1] + ih) * g.in[2];
      const int64_t lo = std::clamp(valid.lo, ow, ow + len), hi = std::clamp(valid.hi, lo, ow + len);
      std::fill(out, out + (lo - ow), 0.0f);
      if (hi == lo) {
        // No tap inside the row: row + lo + off_w would be a pointer far outside x (found by UBSan
        // with dilation 288230376151711745).
      } else if (g.str[2] == 1) {
        std::memcpy(out + (lo - ow), row + (lo + off_w), static_cast<size_t>(hi - lo) * sizeof(float));
      } else if (g.str[2] == 2) { // a literal stride lets the vectorizer use even/odd shuffles
        for (int64_t q = lo; q < hi; ++q)
          out[q - ow] = row[q * 2 + off_w];
      } else {
        for (int64_t q = lo; q < hi; ++q)
          out[q - ow] = row[q * g.str[2] + off_w];
      }
      std::fill(out + (hi - ow), out + len, 0.0f);
    }
    done += len;
    ow = 0;
    if (++oh == oh_n) {
      oh = 0;
      ++od;
    }
  }
}

// The rows of taps (t, r, 0 .. S - 1) of input plane xc at once (row s at dst + s * ld), W stride 2: each output row's
// input row and bounds found once for the S taps (per row and tap, that bookkeeping was most of the panel build of
// ResNet-50's 3x3 stride-2 layer, whose rows are 28 pixels). valid[s]: tap s's tap_range.
void im2col_row_taps_s2(const Geometry& g, const float* xc, int64_t t, int64_t r, PixelPos at, const TapRange* valid,
                        int64_t count, float* dst, int64_t ld) {
  const int64_t ow_n = g.out[2], oh_n = g.out[1], S = g.ker[2];
  int64_t ow = at.ow, oh = at.oh, od = at.od;
  int64_t done = 0;
  while (done < count) {
    const int64_t len = std::min(ow_n - ow, count - done);
    const int64_t id = od * g.str[0] - g.pad[0] + t * g.dil[0];
    const int64_t ih = oh * g.str[1] - g.pad[1] + r * g.dil[1];
    if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
      for (int64_t s = 0; s < S; ++s)
        std::fill(dst + s * ld + done, dst + s * ld + done + len, 0.0f);
    } else {
      const float* row = xc + (id * g.in[1] + ih) * g.in[2];
      for (int64_t s = 0; s < S; ++s) {
        float* out = dst + s * ld + done; // out[q - ow] is output pixel ow = q
        const int64_t off_w = s * g.dil[2] - g.pad[2];
        const int64_t lo = std::clamp(valid[s].lo, ow, ow + len), hi = std::clamp(valid[s].hi, lo, ow + len);
        for (int64_t q = ow; q < lo; ++q)
          out[q - ow] = 0.0f;
        for (int64_t q = lo; q < hi; ++q) // (hi == lo: no pointer past x is formed)
          out[q - ow] = row[q * 2 + off_w];
        for (int64_t q = hi; q < ow + len; ++q)
          out[q - ow] = 0.0f;
      }
    }
    done += len;
    ow = 0;
    if (++oh == oh_n) {
      oh = 0;
      ++od;
    }
  }
}

// Rows [d0, d0 + rows) of one group's im2col matrix (row d: input channel d / T*R*S, tap d % T*R*S) for `count`
// output pixels from p0 on, row q at dst + q * ld, each followed by zeros up to `pad_to` floats. The pixel's position
// and the tap's indices are carried from row to row, the W taps' ranges computed once per call (divided out per
// row, they were half of the panel build of ResNet-50's 3x3 stride-2 layer: ~5 integer divisions a row of 196).
void im2col_rows(const Geometry& g, const float* xg, int64_t d0, int64_t rows, int64_t p0, int64_t count, float* dst,
                 int64_t ld, int64_t pad_to) {
  if (rows <= 0)
    return;
  const PixelPos at = pixel_pos(g, p0);
  constexpr int64_t kCached = 32; // W taps whose ranges are kept
  TapRange cached[kCached];
  const int64_t cache_n = std::min(g.ker[2], kCached);
  for (int64_t s = 0; s < cache_n; ++s)
    cached[s] = tap_range(g.out[2], g.str[2], s * g.dil[2] - g.pad[2], g.in[2]);
  int64_t ci = d0 / g.ker_spatial;
  const int64_t rs = d0 % g.ker_spatial;
  int64_t t = rs / (g.ker[1] * g.ker[2]), r = rs / g.ker[2] % g.ker[1], s = rs % g.ker[2];
  for (int64_t q = 0; q < rows; ++q) {
    if (g.str[2] == 2 && s == 0 && g.ker[2] <= cache_n && q + g.ker[2] <= rows) {
      float* out = dst + q * ld;
      im2col_row_taps_s2(g, xg + ci * g.in_spatial, t, r, at, cached, count, out, ld);
      for (int64_t j = 0; j < g.ker[2]; ++j)
        std::fill(out + j * ld + count, out + j * ld + pad_to, 0.0f);
      q += g.ker[2] - 1;
      s = g.ker[2] - 1;
    } else {
      const TapRange valid = s < cache_n ? cached[s] : tap_range(g.out[2], g.str[2], s * g.dil[2] - g.pad[2], g.in[2]);
      float* out = dst + q * ld;
      im2col_row(g, xg + ci * g.in_spatial, t, r, s, at, valid, count, out);
      std::fill(out + count, out + pad_to, 0.0f);
    }
    if (++s == g.ker[2]) {
      s = 0;
      if (++r == g.ker[1]) {
        r = 0;
        if (++t == g.ker[0]) {
          t = 0;
          ++ci;
        }
      }
    }
  }
}

// Packs rows [row0, row0 + count) of one group's weights wg (kg x depth, row-major; count a multiple of mr, rows
// past kg are zeros), depth range [k0, k0 + kc), as panels [panel][kc][mr] at dst. Row by row: each weight row is
// read contiguously (and its finiteness test vectorizes) and written with stride mr. (Element by element across
// the mr rows, packing took 3.5 ms of ResNet-50's 3x3 512 layer on 2 Zen 3 cores.) Returns nonzero when a packed
// weight is Inf or NaN (exponent bits all ones).
uint32_t pack_weight_rows(const float* wg, int64_t kg, int64_t depth, int64_t k0, int64_t kc, int64_t row0,
                          int64_t count, int mr, float* dst) {
  constexpr int64_t kAhead = 4; // rows ahead (1..12 measured alike)
  uint32_t special = 0;
  for (int64_t r = 0; r < count; ++r) {
    const int64_t row = row0 + r;
    float* out = dst + r / mr * kc * mr + r % mr;
    if (row >= kg) {
      for (int64_t q = 0; q < kc; ++q)
        out[q * mr] = 0.0f;
      continue;
    }
    const float* src = wg + row * depth + k0;
    // Each row's run starts a new page (rows are depth floats apart), which the prefetchers do not follow: ask
    // for the run kAhead rows on now, so it arrives while these rows are checked and stored (without, the first
    // read of each row waited for memory: 46 % of the pack's samples on the 3x3 512 layer at 7x7).
    if (r + kAhead < count && row + kAhead < kg)
      for (int64_t q = 0; q < kc; q += 16)
        __builtin_prefetch(src + kAhead * depth + q);
    special |= nonfinite_bits(src, kc);
    for (int64_t q = 0; q < kc; ++q)
      out[q * mr] = src[q];
  }
  return special;
}

// The pixel-rows orientation's B: every group's W^T as slivers of nr channels, [sliver][depth][nr] (channels past kg
// zero), wt_floats per group (ConvBlocking::a_floats); a task per (group, sliver), transposed in tiles of 16 depth
// values by the sliver's nr channels (each tile's reads are one cache line per channel row, its writes 16 contiguous
// nr-float rows: both in L1; column by column, the writes swept the whole sliver block nr times: R23's per-run packing
// took longer than its GEMM). True when a weight is Inf or NaN.
bool pack_weight_slivers(const Geometry& g, const float* w, int64_t wt_floats, float* wt) {
  const GemmKernel& gk = gemm_kernel();
  const int64_t depth = g.cg * g.ker_spatial, slivers = ceil_div(g.kg, gk.nr);
  std::atomic<bool> nonfinite{false};
  auto pack = [&](int64_t task, int) {
    const int64_t gi = task / slivers, j = task % slivers;
    float* dst = wt + gi * wt_floats + j * depth * gk.nr;
    const int64_t valid = std::min<int64_t>(gk.nr, g.kg - j * gk.nr); // channels of this sliver inside the group
    const float* src = w + (gi * g.kg + j * gk.nr) * depth;
    uint32_t special = 0;
    constexpr int64_t kTile = 16;
    for (int64_t q0 = 0; q0 < depth; q0 += kTile) {
      const int64_t nq = std::min(kTile, depth - q0);
      float* out = dst + q0 * gk.nr;
      for (int64_t c = 0; c < valid; ++c) {
        const float* row = src + c * depth + q0;
        special |= nonfinite_bits(row, nq);
        for (int64_t q = 0; q < nq; ++q)
          out[q * gk.nr + c] = row[q];
      }
      for (int64_t q = 0; q < nq; ++q)
        std::fill(out + q * gk.nr + valid, out + (q + 1) * gk.nr, 0.0f);
    }
    if (special != 0)
      nonfinite.store(true, std::memory_order_relaxed);
  };
  ThreadPool::instance().parallel_for(g.groups * slivers, pack);
  return nonfinite.load(std::memory_order_relaxed);
}

// Every group's weights w packed as the GEMM's A at a (a_floats floats per group): panel (gi, i) holds rows i*mr.. of
// group gi as [depth][mr]; depth block by depth block, the block's panels are adjacent ([k0 block][panel][kc][mr]),
// so a gemm_block call streams one contiguous range of A. A task per (group, panel). True when a weight is Inf or NaN.
// The pixel-rows orientation packs W^T instead (pack_weight_slivers).
bool pack_all_weights(const Geometry& g, const ConvBlocking& blk, const float* w, int64_t a_floats, float* a) {
  if (blk.pixel_rows)
    return pack_weight_slivers(g, w, a_floats, a);
  const GemmKernel& gk = gemm_kernel();
  const int64_t depth = g.cg * g.ker_spatial, panels = ceil_div(g.kg, gk.mr);
  std::atomic<bool> nonfinite{false};
  auto pack = [&](int64_t task, int) {
    uint32_t special = 0;
    const int64_t gi = task / panels, i0 = task % panels * gk.mr;
    for (int64_t k0 = 0; k0 < depth; k0 += kGemmKc) {
      const int64_t kc = std::min(kGemmKc, depth - k0);
      special |= pack_weight_rows(w + gi * g.kg * depth, g.kg, depth, k0, kc, i0, gk.mr, gk.mr,
                                  a + gi * a_floats + k0 * panels * gk.mr + i0 * kc);
    }
    if (special != 0)
      nonfinite.store(true, std::memory_order_relaxed);
  };
  ThreadPool::instance().parallel_for(g.groups * panels, pack);
  return nonfinite.load(std::memory_order_relaxed);
}

// Constant weights of cpu_gemm (cpu_conv_prepare_weights): the packed panels of every group, once.
struct ConvWeights {
  std::shared_ptr<float> a;
  int64_t a_floats = 0;   // per group
  bool nonfinite = false; // a weight is Inf or NaN: every run takes the direct loops
};

constexpr int64_t kRowChunk = 256;  // output columns accumulated at once in a stack buffer
constexpr int64_t kCachedTaps = 16; // W taps whose column ranges direct_plane computes once

typedef float V8 __attribute__((vector_size(8 * sizeof(float))));

// NV vectors of 8 columns of output row oh from ow on, at once: NV independent FMA chains (one chain per vector
// waited out the FMA's latency at every tap). Tap t of output column ow reads row[toff[t] + ow] (row: the padded
// plane at output row oh). Each output's sum keeps its order: bias, then the taps in r, s order. A function, not a
// lambda: a lambda is not inlined into the per-ISA copies and ran as baseline code.
template <int NV, int RB = 1>
CONVARITH_CPU_INLINE void padded_vectors(const Geometry& g, const float* row, const int64_t* toff, int64_t taps,
                                         const V8* wv, float bias, int64_t oh, int64_t ow, float* yk,
                                         int64_t row_step = 0) {
  constexpr int64_t W = 8;
  // (bias, not a vector, as the argument: a vector argument has another ABI in the baseline copy: -Wpsabi.)
  // RB > 1: the same NV vectors of RB output rows from oh on (rows row_step floats apart in the plane), RB * NV
  // chains for rows too short to give the FMA pipes enough of their own.
  V8 acc[RB][NV];
  for (int b = 0; b < RB; ++b)
    for (int j = 0; j < NV; ++j)
      acc[b][j] = V8{bias, bias, bias, bias, bias, bias, bias, bias};
  for (int64_t t = 0; t < taps; ++t) {
    const float* src = row + toff[t] + ow;
    const V8 wt = wv[t];
    for (int b = 0; b < RB; ++b)
      for (int j = 0; j < NV; ++j) {
        V8 xv;
        std::memcpy(&xv, src + b * row_step + j * W, sizeof(V8));
        acc[b][j] += wt * xv;
      }
  }
  for (int b = 0; b < RB; ++b) {
    const int64_t ob = oh + b;
    float* yrow = yk + ob * g.out[2] + ow;
    for (int j = 0; j < NV; ++j) {
      // A vector past the row's end is stored whole while its tail lands on later rows of this plane (which their
      // own stores overwrite), and only the row's part of it otherwise (a library call per row).
      if (ow + (j + 1) * W <= g.out[2] || (ob * g.out[2] + ow + (j + 1) * W) <= g.out[1] * g.out[2] - g.out[2])
        std::memcpy(yrow + j * W, &acc[b][j], sizeof(V8));
      else
        std::memcpy(yrow + j * W, &acc[b][j], static_cast<size_t>(g.out[2] - ow - j * W) * sizeof(float));
    }
  }
}

// The last rem (< NV + 1) vectors of a row: padded_vectors<rem>, picked at compile time.
template <int NV>
CONVARITH_CPU_INLINE void padded_tail(int64_t rem, const Geometry& g, const float* row, const int64_t* toff,
                                      int64_t taps, const V8* wv, float bias, int64_t oh, int64_t ow, float* yk) {
  if (rem == NV)
    padded_vectors<NV>(g, row, toff, taps, wv, bias, oh, ow, yk);
  else if constexpr (NV > 1)
    padded_tail<NV - 1>(rem, g, row, toff, taps, wv, bias, oh, ow, yk);
}

constexpr int64_t kPaddedPlaneFloats = 16384; // 64 KiB on the stack: a 112x112 plane with a 3x3 window fits
constexpr int64_t kFastTaps = 64;
// The fast path of direct_plane for few input channels per output (depthwise and its multiples, grouped_direct),
// rank <= 2, stride 1 or 2 on each axis, finite weights: each input channel's plane is copied once into a zero-padded
// buffer, so every tap of 8 output
// columns is one unaligned 8-float load and one FMA with no range checks. At stride 2 along W each padded row is
// stored as its even columns then its odd ones, so a tap's 8 inputs are again adjacent. The sum's order is the same
// as the checked loop's (bias, then the taps in r, s order); the padding's taps add x = 0 products, which change
// nothing but the sign of an all-zero sum (the weights are finite, so no Inf * 0). Returns false where it does not
// apply.
// The padded planes' layout (direct_plane_padded): whether its fast path applies to g (but for the weights'
// finiteness), with the padded rows ph, the stored row length rw and, at stride 2, the half row of even columns.
bool padded_layout(const Geometry& g, int64_t* ph, int64_t* rw, int64_t* half) {
  constexpr int64_t W = 8;
  // Rank <= 2 only: one depth plane that the one depth tap reads (a depth padding would move that tap outside x:
  // found by fuzz_huge, tests/regressions/huge/depthwise_padded_plane_depth_pad).
  if (g.out[0] != 1 || g.ker[0] != 1 || g.in[0] != 1 || g.pad[0] != 0 || g.str[1] > 2 || g.str[2] > 2)
    return false;
  const int64_t taps = g.ker[1] * g.ker[2];
  if (g.cg > kFastTaps || taps > kFastTaps || g.cg * taps > kFastTaps || g.out[1] > kPaddedPlaneFloats ||
      g.out[2] > kPaddedPlaneFloats)
    return false;
  const int64_t reach_h = (g.ker[1] - 1) * g.dil[1], reach_w = (g.ker[2] - 1) * g.dil[2];
  if (reach_h > kPaddedPlaneFloats || reach_w > kPaddedPlaneFloats)
    return false;
  const int64_t sh = g.str[1], sw = g.str[2];
  // Padded rows and columns that whole output vectors reach; the stored row length (both halves at stride 2).
  *ph = (g.out[1] - 1) * sh + reach_h + 1;
  const int64_t pcols = (round_up(g.out[2], W) - 1) * sw + reach_w + 1;
  *half = ceil_div(pcols, 2);
  *rw = sw == 1 ? pcols : 2 * *half;
  return g.cg * (*ph * *rw) <= kPaddedPlaneFloats; // every input channel's plane
}

// Grouped layers with few output channels per group (ResNeXt's 32 groups of 4): the GEMM's mr-row tiles would be a
// third or more padding, so every output plane runs direct_plane (the padded planes of its group's input channels).
bool grouped_direct(const Geometry& g) {
  const int64_t mr = gemm_kernel().mr;
  int64_t ph = 0, rw = 0, half = 0;
  return g.groups > 1 && g.kg > 1 && 3 * g.kg <= 2 * mr && padded_layout(g, &ph, &rw, &half);
}

CONVARITH_CPU_INLINE bool direct_plane_padded(const Geometry& g, const float* xc, const float* wk, float bias,
                                              float* yk) {
  typedef V8 V;
  constexpr int64_t W = 8;
  int64_t ph = 0, rw = 0, half = 0;
  if (!padded_layout(g, &ph, &rw, &half))
    return false;
  const int64_t sh = g.str[1], sw = g.str[2];
  const int64_t taps = g.ker[1] * g.ker[2], all = g.cg * taps, plane = ph * rw;
  V wv[kFastTaps];
  int64_t toff[kFastTaps];
  // Tap t = (ci * R + r) * S + s (the weights' order), counted without dividing (three divisions per tap were a
  // tenth of MobileNetV2's dw384 at 14x14).
  for (int64_t ci = 0, t = 0; ci < g.cg; ++ci)
    for (int64_t r = 0; r < g.ker[1]; ++r)
      for (int64_t sc = 0; sc < g.ker[2]; ++sc, ++t) {
        const float w = wk[t];
        if (!std::isfinite(w))
          return false;
        wv[t] = V{w, w, w, w, w, w, w, w};
        const int64_t c = sc * g.dil[2];
        toff[t] = ci * plane + r * g.dil[1] * rw + (sw == 1 ? c : (c % 2) * half + c / 2);
      }
  float buf[kPaddedPlaneFloats];
  // Short rows at stride 1: the planes zeroed at once and each row of x copied in by whole vectors (the last one
  // overlapping), not three library calls a row (a 14x14 plane's 16 rows took longer to lay out than to multiply).
  const bool short_rows = sw == 1 && rw <= 64 && g.in[2] >= W;
  if (short_rows)
    std::memset(buf, 0, static_cast<size_t>(g.cg * plane) * sizeof(float));
  // Padded row r, column c of input channel ci holds x[ci][r - pad_h][c - pad_w] (zero outside x); at stride 1 it is
  // buf[ci * plane + r * rw + c], at stride 2 buf[ci * plane + r * rw + (c % 2) * half + c / 2]. Output (oh, ow) tap t
  // reads buf[oh * sh * rw + toff[t] + ow].
  for (int64_t pr = 0; pr < g.cg * ph; ++pr) {
    const int64_t r = pr % ph;
    float* row = buf + pr * rw;
    const float* xci = xc + pr / ph * g.in_spatial;
    const int64_t ih = r - g.pad[1];
    if (ih < 0 || ih >= g.in[1]) {
      std::fill(row, row + rw, 0.0f);
      continue;
    }
    const float* xrow = xci + ih * g.in[2];
    if (sw == 2) {
      // Split straight from x: padded column c is x column c - pad (zero outside); row[j] = column 2j, row[half + j]
      // = column 2j + 1. Columns j in [ja, jb) have both inside x (through a staging row, the copy and the split
      // took ~60 % of MobileNetV2's dw96 stride-2 layer).
      const int64_t pw = g.pad[2], iw = g.in[2];
      const int64_t ja = std::min(half, ceil_div(pw, 2)), jb = std::clamp<int64_t>((iw + pw) / 2, ja, half);
      const auto col = [&](int64_t c) { return c - pw >= 0 && c - pw < iw ? xrow[c - pw] : 0.0f; };
      for (int64_t j = 0; j < ja; ++j) {
        row[j] = col(2 * j);
        row[half + j] = col(2 * j + 1);
      }
      if (jb > ja) {
        // Restrict-qualified runs (without, GCC left these loops scalar).
        float* __restrict even = row + ja;
        float* __restrict odd = row + half + ja;
        const float* __restrict src = xrow + (2 * ja - pw);
        const int64_t n = jb - ja;
        int64_t j = 0;
        // 16 columns at a time, split by two shuffles (GCC kept the plain loop scalar).
        for (; j + 8 <= n; j += 8) {
          V lo, hi;
          std::memcpy(&lo, src + 2 * j, sizeof(V));
          std::memcpy(&hi, src + 2 * j + 8, sizeof(V));
#if defined(__clang__) || __GNUC__ >= 12
          const V e = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
          const V o = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
#else // GCC before 12 has only __builtin_shuffle
          typedef int32_t I8 __attribute__((vector_size(8 * sizeof(int32_t))));
          const V e = __builtin_shuffle(lo, hi, I8{0, 2, 4, 6, 8, 10, 12, 14});
          const V o = __builtin_shuffle(lo, hi, I8{1, 3, 5, 7, 9, 11, 13, 15});
#endif
          std::memcpy(even + j, &e, sizeof(V));
          std::memcpy(odd + j, &o, sizeof(V));
        }
        for (; j < n; ++j) {
          even[j] = src[2 * j];
          odd[j] = src[2 * j + 1];
        }
      }
      for (int64_t j = jb; j < half; ++j) {
        row[j] = col(2 * j);
        row[half + j] = col(2 * j + 1);
      }
      continue;
    }
    const int64_t lo = std::clamp<int64_t>(g.pad[2], 0, rw), hi = std::clamp<int64_t>(g.pad[2] + g.in[2], lo, rw);
    if (short_rows && hi - lo >= W) {
      const float* src = xrow + (lo - g.pad[2]);
      float* dst = row + lo;
      const int64_t n = hi - lo;
      for (int64_t j = 0; j + W <= n; j += W)
        std::memcpy(dst + j, src + j, sizeof(V));
      std::memcpy(dst + n - W, src + n - W, sizeof(V));
      continue;
    }
    std::fill(row, row + lo, 0.0f);
    std::copy(xrow + (lo - g.pad[2]), xrow + (hi - g.pad[2]), row + lo);
    std::fill(row + hi, row + rw, 0.0f);
  }
  // Up to 8 vectors of a row at once: 8 independent FMA chains (4 left the FMA pipes waiting out their latency:
  // ResNeXt's grouped 3x3, 36 taps, ran at ~40 % of the FMA rate).
  constexpr int64_t kBlock = 8;
  const int64_t nvec = ceil_div(g.out[2], W);
  int64_t oh0 = 0;
  if (nvec <= 2) {
    // Rows of one or two vectors (14x14 planes): four or eight rows at once.
    const int64_t step = sh * rw;
    if (nvec == 1)
      for (; oh0 + 8 <= g.out[1]; oh0 += 8)
        padded_vectors<1, 8>(g, buf + oh0 * step, toff, all, wv, bias, oh0, 0, yk, step);
    else
      for (; oh0 + 4 <= g.out[1]; oh0 += 4)
        padded_vectors<2, 4>(g, buf + oh0 * step, toff, all, wv, bias, oh0, 0, yk, step);
  }
  for (int64_t oh = oh0; oh < g.out[1]; ++oh) {
    const float* row = buf + oh * sh * rw;
    int64_t v = 0;
    for (; v + kBlock <= nvec; v += kBlock)
      padded_vectors<kBlock>(g, row, toff, all, wv, bias, oh, v * W, yk);
    padded_tail<kBlock - 1>(nvec - v, g, row, toff, all, wv, bias, oh, v * W, yk);
  }
  return true;
}

// The direct path for one output channel per group (Kg = 1: depthwise and its kin), where the
// GEMM's mr-row tiles would be mostly padding, and for weights with an Inf or NaN (any Kg). One
// output plane, row by row: every tap is a unit- or s-strided run over the output columns with its
// range precomputed, so the inner loop has no bounds checks and vectorizes (compiled per
// instruction set, CONVARITH_CPU_MULTIVERSION); the D and H taps are clamped to the input too, so
// padding is never multiplied (except, with finite weights, by the padded-plane fast path above). Sums in the
// fixed order c, t, r, s: deterministic.
CONVARITH_CPU_INLINE void direct_plane_body(const Geometry& g, const float* xg, const float* wk, float bias,
                                            float* yk) {
  if (direct_plane_padded(g, xg, wk, bias, yk))
    return;
  float acc[kRowChunk];
  // The output columns each of the first kCachedTaps W taps reaches, the same in every row: computed once when the
  // row is one chunk (tap_range divides; per tap and row that cost more than the row's FMAs at 7..14 columns).
  int64_t col_lo[kCachedTaps], col_hi[kCachedTaps];
  const int64_t cached = g.out[2] <= kRowChunk ? std::min(g.ker[2], kCachedTaps) : 0;
  for (int64_t s = 0; s < cached; ++s) {
    const TapRange v = tap_range(g.out[2], g.str[2], s * g.dil[2] - g.pad[2], g.in[2]);
    col_lo[s] = std::clamp<int64_t>(v.lo, 0, g.out[2]);
    col_hi[s] = std::clamp<int64_t>(v.hi, col_lo[s], g.out[2]);
  }
  for (int64_t od = 0; od < g.out[0]; ++od) {
    for (int64_t oh = 0; oh < g.out[1]; ++oh) {
      float* yrow = yk + (od * g.out[1] + oh) * g.out[2];
      for (int64_t ow0 = 0; ow0 < g.out[2]; ow0 += kRowChunk) {
        const int64_t len = std::min(kRowChunk, g.out[2] - ow0);
        std::fill(acc, acc + len, bias);
        const TapRange vt = tap_range(g.ker[0], g.dil[0], od * g.str[0] - g.pad[0], g.in[0]);
        const TapRange vr = tap_range(g.ker[1], g.dil[1], oh * g.str[1] - g.pad[1], g.in[1]);
        for (int64_t ci = 0; ci < g.cg; ++ci) {
          const float* xc = xg + ci * g.in_spatial;
          for (int64_t t = vt.lo; t < vt.hi; ++t) {
            const int64_t id = od * g.str[0] - g.pad[0] + t * g.dil[0];
            for (int64_t r = vr.lo; r < vr.hi; ++r) {
              const int64_t ih = oh * g.str[1] - g.pad[1] + r * g.dil[1];
              const float* xrow = xc + (id * g.in[1] + ih) * g.in[2];
              const float* wrow = wk + ((ci * g.ker[0] + t) * g.ker[1] + r) * g.ker[2];
              for (int64_t s = 0; s < g.ker[2]; ++s) {
                const float wv = wrow[s];
                const int64_t off = s * g.dil[2] - g.pad[2]; // input column of output ow: ow*stride + off
                int64_t lo, hi;
                if (s < cached) {
                  lo = col_lo[s], hi = col_hi[s];
                } else {
                  const TapRange v = tap_range(g.out[2], g.str[2], off, g.in[2]);
                  lo = std::clamp(v.lo, ow0, ow0 + len), hi = std::clamp(v.hi, lo, ow0 + len);
                }
                if (g.str[2] == 1) {
                  for (int64_t ow = lo; ow < hi; ++ow)
                    acc[ow - ow0] += wv * xrow[ow + off];
                } else if (g.str[2] == 2) {
                  for (int64_t ow = lo; ow < hi; ++ow)
                    acc[ow - ow0] += wv * xrow[ow * 2 + off];
                } else {
                  for (int64_t ow = lo; ow < hi; ++ow)
                    acc[ow - ow0] += wv * xrow[ow * g.str[2] + off];
                }
              }
            }
          }
        }
        std::copy(acc, acc + len, yrow + ow0);
      }
    }
  }
}
CONVARITH_CPU_MULTIVERSION(direct_plane, (const Geometry& g, const float* xg, const float* wk, float bias, float* yk),
                           (g, xg, wk, bias, yk))

} // namespace

void set_cpu_gemm_pixel_rows(int mode) {
  g_pixel_rows_mode.store(mode < 0 ? -1 : mode > 0 ? 1 : 0, std::memory_order_relaxed);
}
int cpu_gemm_pixel_rows() {
  return g_pixel_rows_mode.load(std::memory_order_relaxed);
}
bool cpu_gemm_takes_pixel_rows(const ConvProblem& p) {
  return p.op() == Op::kConv && p.k() != p.groups() && conv_blocking(p).pixel_rows;
}
double cpu_gemm_pixel_rows_seen(const ConvProblem& p) {
  if (p.op() != Op::kConv || p.k() == p.groups())
    return -1;
  const ConvBlocking b = conv_blocking(p);
  if (!b.pixel_rows)
    return -1;
  return b.runs->seen_share();
}

Status cpu_conv_supports(const ConvProblem& p) {
  if (p.op() != Op::kConv)
    return not_supported(std::string("cpu_gemm runs conv only, not ") + op_name(p.op()));
  return Status::ok();
}

std::shared_ptr<const void> cpu_conv_blocking(const ConvProblem& p) {
  return std::make_shared<const ConvBlocking>(conv_blocking(p));
}

Result<PreparedWeights> cpu_conv_prepare_weights(const ConvProblem& p, const void* blocking, const float* w) {
  const Geometry g(p);
  PreparedWeights out;
  if (p.n() == 0 || g.kg == 1 || grouped_direct(g))
    return out; // nothing to prepare: the direct loops (Kg = 1) read w as it is
  const ConvBlocking blk = blocking != nullptr ? *static_cast<const ConvBlocking*>(blocking) : conv_blocking(p);
  auto cw = std::make_shared<ConvWeights>();
  // The usual blocking's a_floats is 0 where its runs read w in place: prepared weights are packed all the same.
  cw->a_floats = blk.pixel_rows ? blk.a_floats : packed_a_floats(gemm_kernel(), g.kg, sat_mul(g.cg, g.ker_spatial));
  Result<std::shared_ptr<float>> a = aligned_floats(sat_mul(g.groups, cw->a_floats), "cpu_gemm's packed weights");
  if (!a)
    return a.status();
  cw->a = std::move(a).value();
  cw->nonfinite = pack_all_weights(g, blk, w, cw->a_floats, cw->a.get());
  out.bytes = static_cast<size_t>(g.groups * cw->a_floats) * sizeof(float);
  out.state = std::move(cw);
  return out;
}

size_t cpu_conv_workspace(const ConvProblem& p) {
  if (p.k() == p.groups())
    return 0; // the direct path (Kg = 1) needs none
  const ConvBlocking b = conv_blocking(p);
  const auto floats = [&](const ConvBlocking& c) {
    return sat_add(sat_add(sat_mul(p.groups(), c.a_floats), c.cols_floats),
                   sat_mul(ThreadPool::instance().max_slots(), c.slot_floats));
  };
  return workspace_bytes_for_floats(std::max(floats(b), b.per_run != nullptr ? floats(*b.per_run) : 0));
}

Status cpu_conv_run(const KernelArgs& args) {
  if (args.problem == nullptr)
    return invalid_argument("cpu_gemm: KernelArgs.problem is null");
  const ConvProblem& p = *args.problem;
  if (p.n() == 0)
    return Status::ok();
  if (args.prepared == nullptr) {
    CONVARITH_RETURN_IF_ERROR(cpu_conv_supports(p));
    CONVARITH_RETURN_IF_ERROR(check_cpu_args(args, "cpu_gemm", cpu_conv_workspace(p)));
  }
  const Geometry g(p);
  ThreadPool& pool = ThreadPool::instance();
  // The direct loops skip padded taps, so they are the path for Kg = 1 and for non-finite weights (an Inf
  // weight times the im2col panel's zero padding would be NaN). The weights' finiteness is tested while they are
  // packed below (they are read there anyway), not in a separate pass over w.
  const auto run_direct = [&]() {
    const int64_t plane_work = std::max<int64_t>(1, sat_mul(sat_mul(g.out_spatial, g.cg), g.ker_spatial));
    const int64_t planes = g.n * g.k, per_task = std::max<int64_t>(1, 65536 / plane_work);
    auto direct = [&](int64_t task, int) {
      for (int64_t plane = task * per_task; plane < std::min(planes, (task + 1) * per_task); ++plane) {
        const int64_t n = plane / g.k, kk = plane % g.k, gi = kk / g.kg;
        direct_plane(g, args.x + (n * g.c + gi * g.cg) * g.in_spatial, args.w + kk * g.cg * g.ker_spatial,
                     args.bias != nullptr ? args.bias[kk] : 0.0f, args.y + plane * g.out_spatial);
      }
    };
    pool.parallel_for((planes + per_task - 1) / per_task, direct);
    return Status::ok();
  };
  if (g.kg == 1 || grouped_direct(g))
    return run_direct();
  const auto* given = static_cast<const ConvWeights*>(args.packed_w);
  const ConvBlocking planned =
      args.prepared != nullptr ? *static_cast<const ConvBlocking*>(args.prepared) : conv_blocking(p);
  // Handed w (no prepared weights): the blocking for that, when it differs (ConvBlocking::per_run).
  const ConvBlocking blk = given == nullptr && planned.per_run != nullptr ? *planned.per_run : planned;
  const GemmKernel& gk = gemm_kernel();
  const int64_t depth = g.cg * g.ker_spatial;
  const int64_t panels = ceil_div(g.kg, gk.mr);
  float* a_packed = aligned_workspace(args.workspace);
  float* cols = a_packed + g.groups * blk.a_floats; // the pixel-rows orientation's panels (cols_floats)
  float* scratch = cols + blk.cols_floats;

  // Constant weights packed once in Plan::create (cpu_conv_prepare_weights): their panels, and their finiteness
  // test; else the weights are packed now, unless every task reads its own rows in place.
  if (given != nullptr && given->nonfinite)
    return run_direct();
  const bool rows_in_place = blk.rows_in_place && given == nullptr;
  const float* a_base = given != nullptr ? given->a.get() : a_packed;
  const int64_t a_group = given != nullptr ? given->a_floats : blk.a_floats; // packed floats per group
  std::atomic<bool> nonfinite_w{false};
  if (given == nullptr && !rows_in_place && pack_all_weights(g, blk, args.w, blk.a_floats, a_packed))
    return run_direct();

  if (blk.pixel_rows) {
    // Per (n, g): the im2col rows of every depth scattered into pixel panels [k0 block][P/mr][kc][mr] (a task per
    // depth block), then a task per channel chunk: C[p_pad][kchunk] starts as the bias (where the usual orientation
    // adds it to the first depth block's sum), gemm_block multiplies each depth block's panels with the chunk's W^T
    // slivers in depth order, and C is written transposed into y.
    const int64_t P = g.out_spatial, ldc = blk.kchunk, dblocks = ceil_div(depth, kGemmKc);
    const PanelRuns& runs = *blk.runs;
    const int64_t nruns = runs.runs();
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t gi = 0; gi < g.groups; ++gi) {
        const float* xg = args.x + (n * g.c + gi * g.cg) * g.in_spatial;
        auto build = [&](int64_t task, int slot) {
          const int64_t k0 = task * kGemmKc, kc = std::min(kGemmKc, depth - k0);
          float* row = scratch + slot * blk.slot_floats;
          std::fill(row + P, row + blk.p_pad, 0.0f); // im2col_row writes P values
          float* block = cols + runs.block_offset[static_cast<size_t>(task)];
          const int64_t* kept = runs.kept.data() + task * nruns;
          const int64_t* offset = runs.offset.data() + task * nruns;
          std::vector<int64_t> at(static_cast<size_t>(nruns), 0); // rows of the block each run has so far
          for (int64_t q = 0; q < kc; ++q) {
            const int64_t tap = (k0 + q) % runs.ks;
            bool built = false; // the im2col row, made for the first run that sees the tap (none: zero everywhere)
            for (int64_t r = 0; r < nruns; ++r) {
              if (runs.sees[static_cast<size_t>(r * runs.ks + tap)] == 0)
                continue;
              if (!built) {
                im2col_rows(g, xg, k0 + q, 1, 0, P, row, P, P);
                built = true;
              }
              const int64_t first = runs.first[static_cast<size_t>(r)], count = runs.count[static_cast<size_t>(r)];
              float* dst = block + offset[r] + at[static_cast<size_t>(r)]++ * gk.mr;
              copy_panel_rows(row + first * gk.mr, count, gk.mr, dst, kept[r] * gk.mr);
            }
          }
        };
        pool.parallel_for(dblocks, build);
        auto multiply = [&](int64_t task, int slot) {
          const int64_t c0 = task * blk.kchunk, count = std::min(blk.kchunk, g.kg - c0);
          float* c = scratch + slot * blk.slot_floats;
          float* gathered = c + blk.p_pad * ldc; // kGemmKc x nr
          for (int64_t pi = 0; pi < blk.p_pad; ++pi)
            for (int64_t j = 0; j < ldc; ++j)
              c[pi * ldc + j] = args.bias != nullptr && j < count ? args.bias[gi * g.kg + c0 + j] : 0.0f;
          const float* wt = a_base + gi * a_group + c0 * depth; // sliver c0 / nr of the group, [depth][nr]
          for (int64_t k0 = 0; k0 < depth; k0 += kGemmKc) {
            const int64_t kc = std::min(kGemmKc, depth - k0);
            for (int64_t j0 = 0; j0 < count; j0 += gk.nr) {
              // The next W^T block (the next sliver, or the first at the next depth block) is on its way to L2
              // while this one meets every pixel panel: each block is read once, from memory. Its prefetches are
              // spread over the runs (all at once, they queued behind each other: the gathers of this block, the
              // first reads of its rows, then waited for memory).
              const bool last = j0 + gk.nr >= count;
              const float* next = nullptr;
              int64_t lines = 0;
              if (!last || k0 + kc < depth) {
                next = last ? wt + (k0 + kc) * gk.nr : wt + (j0 + gk.nr) * depth + k0 * gk.nr;
                lines = ceil_div((last ? std::min(kGemmKc, depth - k0 - kc) : kc) * gk.nr, int64_t{16});
              }
              const int64_t b = k0 / kGemmKc;
              const float* sliver = wt + j0 * depth + k0 * gk.nr; // [kc][nr]
              for (int64_t r = 0; r < nruns; ++r) {
                for (int64_t l = lines * r / nruns; l < lines * (r + 1) / nruns; ++l)
                  __builtin_prefetch(next + l * 16, 0, 2);
                const int64_t kept = runs.kept[static_cast<size_t>(b * nruns + r)];
                if (kept == 0)
                  continue; // the run's pixels see no tap of this block (their C rows keep their values)
                const float* bb = sliver;
                if (kept < kc) {
                  // The W^T rows of the taps the run sees, in depth order.
                  gather_rows(sliver, runs.rows.data() + runs.rows_at[static_cast<size_t>(b * nruns + r)], kept, gk.nr,
                              gathered);
                  bb = gathered;
                }
                const int64_t first = runs.first[static_cast<size_t>(r)];
                gemm_block(gk, runs.count[static_cast<size_t>(r)] * gk.mr, gk.nr, kept,
                           cols + runs.block_offset[static_cast<size_t>(b)] +
                               runs.offset[static_cast<size_t>(b * nruns + r)],
                           kept * gk.mr, bb, gk.nr, gk.nr, c + first * gk.mr * ldc + j0, ldc, true, nullptr);
              }
            }
          }
          for (int64_t j = 0; j < count; ++j) {
            float* yk = args.y + (n * g.k + gi * g.kg + c0 + j) * P;
            for (int64_t pi = 0; pi < P; ++pi)
              yk[pi] = c[pi * ldc + j];
          }
        };
        pool.parallel_for(blk.kchunks, multiply);
      }
    return Status::ok();
  }

  const int64_t per_group = blk.blocks * blk.mblocks, per_image = g.groups * per_group;
  auto compute = [&](int64_t task, int slot) {
    const int64_t n = task / per_image, gi = task % per_image / per_group;
    const int64_t pb = task % per_group / blk.mblocks, mb = task % blk.mblocks;
    // The pixels' slivers of nr spread evenly over the blocks (blocks of nc each but a shorter last one left one
    // thread of two with 26 of ResNet-50's 49 slivers at 28x28 where the other had 23; the same sums either way).
    const int64_t slivers = ceil_div(g.out_spatial, gk.nr);
    const int64_t p0 = pb * slivers / blk.blocks * gk.nr;
    const int64_t nc = std::min(g.out_spatial, (pb + 1) * slivers / blk.blocks * gk.nr) - p0;
    const int64_t m0 = mb * blk.mrows, rows = std::min(blk.mrows, g.kg - m0);
    const float* xg = args.x + (n * g.c + gi * g.cg) * g.in_spatial;
    float* yg = args.y + (n * g.k + gi * g.kg + m0) * g.out_spatial + p0;
    const float* bias = args.bias != nullptr ? args.bias + gi * g.kg + m0 : nullptr;
    float* panel = scratch + slot * blk.slot_floats;
    for (int64_t k0 = 0; k0 < depth; k0 += kGemmKc) {
      const int64_t kc = std::min(kGemmKc, depth - k0);
      const float* b;
      int64_t ldb, readable;
      if (blk.direct_b) {
        b = xg + k0 * g.in_spatial + p0;
        ldb = g.in_spatial;
        readable = g.in_spatial - p0;
      } else {
        im2col_rows(g, xg, k0, kc, p0, nc, panel, blk.nc_pad, blk.nc_pad);
        b = panel;
        ldb = blk.nc_pad;
        readable = blk.nc_pad;
      }
      if (rows_in_place) {
        // The task's weight rows in place, row-major (depth floats apart), from this depth block on.
        gemm_block_rows(gk, rows, nc, kc, args.w + (gi * g.kg + m0) * depth + k0, depth, b, ldb, readable, yg,
                        g.out_spatial, k0 > 0, bias);
      } else {
        // This depth block's panels are [panel][kc][mr]: the task's first is panel m0 / mr (no packed weights are
        // in the workspace when the tasks read theirs in place, so no pointer into them is formed then).
        gemm_block(gk, rows, nc, kc, a_base + gi * a_group + k0 * panels * gk.mr + m0 * kc, kc * gk.mr, b, ldb,
                   readable, yg, g.out_spatial, k0 > 0, bias);
      }
    }
    if (rows_in_place) {
      // Weights read in place were not checked: an Inf or NaN output (an Inf/NaN weight times the panel's zero
      // padding is NaN where padding must add nothing; or Inf/NaN in x) sends the problem to the direct loops.
      uint32_t special = 0;
      for (int64_t r = 0; r < rows; ++r)
        special |= nonfinite_bits(yg + r * g.out_spatial, nc);
      if (special != 0)
        nonfinite_w.store(true, std::memory_order_relaxed);
    }
  };
  pool.parallel_for(g.n * per_image, compute);
  // An output was Inf or NaN with weights read in place: the direct loops compute every output again (IEEE per
  // product, padding skipped), whatever the cause.
  if (nonfinite_w.load(std::memory_order_relaxed))
    return run_direct();
  return Status::ok();
}

// ---- transposed convolution ------------------------------------------------------------------------

namespace {

struct TransposeBlocking {
  int64_t kchunk;  // output channels per task
  int64_t kblocks; // chunks per group
  int64_t pixels;  // input pixels per GEMM + col2im step (all of them unless the cols would be large)
  // The weights stream through the GEMM as its B, read in place, once: cols^T[Pin x Kg*T*R*S] = x_g^T * W_g with
  // x^T packed by each task (small). Taken for one image whose input pixels fit one GEMM row chunk, where the
  // usual orientation (W^T packed as A, x as B) would write and read back every weight for one or two column
  // slivers (DCGAN ct2 at 4x4, N = 1: 8 MiB of weights packed per run for 16 pixels). The products and their
  // order are the same either way (one FMA chain per column element, depth blocks added in order, col2im in
  // the same order), so the two give bitwise the same y.
  bool weights_as_b;
  int64_t rows_pad;      // weights_as_b: pixels rounded up to mr; else rows of a chunk's packed A, rounded up to mr
  int64_t a_floats;      // packed A of one (group, chunk); weights_as_b: packed x^T of one group
  int64_t packed_floats; // every packed A (groups x chunks), or every group's packed x^T
  int64_t slot_floats;   // cols of one task (and its copy of W's columns when weights_as_b)
  // Too few (image, group, chunk) tasks for the threads (FSRCNN's deconv: one output channel, one image): each
  // output plane is split into bands of band_rows along band_axis (0: depth, 1: rows of a one-deep output), a task
  // per band; a band's task computes the columns of the input pixels whose taps reach it and adds only those that
  // land inside it (the input rows next to a band boundary are multiplied by both bands' tasks).
  int band_axis = -1; // -1: one band
  int64_t bands = 1;
  int64_t band_rows = 0;
  // The blocking of runs handed w, where it differs: weights as B is what those take (packing W^T every run would
  // cost more than it saves), while a plan with prepared weights packs W^T once and takes the usual orientation,
  // whose x as B wastes no tile rows (DCGAN ct2's 16 pixels padded to 18 rows of the 6-row AVX2 tile as A: its
  // runs took 1030-1190 us that way on 2 cores of an AMD EPYC, 910-1020 us with the usual orientation). Same bits.
  std::shared_ptr<const TransposeBlocking> per_run;
};

// Tests: -1 the blocking decides (default), 0 one band, b >= 2 b bands wherever a band axis exists.
std::atomic<int> g_col2im_bands_mode{-1};

TransposeBlocking transpose_blocking_for(const ConvProblem& p, bool weights_as_b_allowed) {
  const Geometry g(p);
  const GemmKernel& gk = gemm_kernel();
  const int64_t slots = ThreadPool::instance().max_slots();
  // cols floats per output channel; the product can pass 2^63 (N = 0 with a huge input, or a huge
  // kernel times a huge input: found by fuzz/fuzz_problem), and then only "over budget" matters.
  int64_t per_channel = 0;
  if (!checked_mul(g.ker_spatial, g.in_spatial, &per_channel))
    per_channel = std::numeric_limits<int64_t>::max();
  TransposeBlocking b{};
  b.kchunk = std::clamp<int64_t>(kColsBudgetFloats / per_channel, 1, g.kg);
  // Split further while there are too few tasks to keep every thread busy.
  while (b.kchunk > 1 && g.n * g.groups * ceil_div(g.kg, b.kchunk) < kTasksPerThread * slots / 2)
    b.kchunk = ceil_div(b.kchunk, 2);
  b.kblocks = ceil_div(g.kg, b.kchunk);
  // Large inputs go through in pixel blocks so the workspace stays bounded (a 3-D layer's cols
  // for all pixels could be hundreds of MB per thread).
  b.pixels = per_channel <= kColsBudgetFloats
                 ? g.in_spatial
                 : std::min(g.in_spatial, std::max<int64_t>(kMinColPixels, kColsBudgetFloats / g.ker_spatial));
  const int64_t cols_floats = sat_mul(sat_mul(b.kchunk, g.ker_spatial), b.pixels);
  b.weights_as_b = weights_as_b_allowed && g.n == 1 && b.pixels == g.in_spatial &&
                   g.in_spatial <= gemm_l2_rows(gk, std::min<int64_t>(kGemmKc, g.cg)) &&
                   sat_mul(b.kchunk, g.ker_spatial) >= gk.nr;
  if (b.weights_as_b) {
    b.rows_pad = round_up(g.in_spatial, gk.mr);
    b.a_floats = sat_mul(b.rows_pad, g.cg);
    b.packed_floats = sat_mul(g.groups, b.a_floats);
    b.slot_floats = sat_add(cols_floats, kGemmKc * kWeightLd);
  } else {
    b.rows_pad = round_up(sat_mul(b.kchunk, g.ker_spatial), gk.mr);
    b.a_floats = sat_mul(b.rows_pad, g.cg);
    b.packed_floats = sat_mul(sat_mul(g.groups, b.kblocks), b.a_floats);
    b.slot_floats = cols_floats;
  }
  const int64_t tasks = sat_mul(sat_mul(g.n, g.groups), b.kblocks);
  const int axis = g.in[0] > 1 ? 0 : g.out[0] == 1 ? 1 : -1;
  const int mode = g_col2im_bands_mode.load(std::memory_order_relaxed);
  if (!b.weights_as_b && axis >= 0 && mode >= 2) {
    b.band_axis = axis;
    b.band_rows = ceil_div(g.out[axis], std::min<int64_t>(mode, g.out[axis]));
    b.bands = ceil_div(g.out[axis], b.band_rows);
  } else if (!b.weights_as_b && axis >= 0 && mode < 0 && tasks > 0 && tasks < kTasksPerThread * slots / 2) {
    // Bands of at least 4 rows and twice the kernel's reach, so the rows both neighbours multiply stay few.
    const int64_t reach = sat_mul(g.ker[axis], g.dil[axis]);
    const int64_t min_rows = std::max<int64_t>(4, sat_mul(2, reach));
    const int64_t bands = std::min(ceil_div(kTasksPerThread * slots / 2, tasks), g.out[axis] / min_rows);
    if (bands > 1) {
      b.band_axis = axis;
      b.band_rows = ceil_div(g.out[axis], bands);
      b.bands = ceil_div(g.out[axis], b.band_rows);
    }
  }
  return b;
}

// The plan's blocking (the one prepared weights are made for) and, in per_run, the one of runs handed w.
TransposeBlocking transpose_blocking(const ConvProblem& p) {
  TransposeBlocking b = transpose_blocking_for(p, true);
  if (!b.weights_as_b)
    return b;
  auto per_run = std::make_shared<const TransposeBlocking>(b);
  b = transpose_blocking_for(p, false);
  b.per_run = std::move(per_run);
  return b;
}

// What runs handed w take.
TransposeBlocking transpose_blocking_per_run(const ConvProblem& p) {
  const TransposeBlocking b = transpose_blocking(p);
  return b.per_run != nullptr ? *b.per_run : b;
}

// The input indices along one axis whose taps land in output band [b0, b1): i * s - pad + t * dil for some tap t
// in [0, ker). 128-bit arithmetic: a valid problem's stride, dilation and padding may each be near 2^63.
TapRange band_inputs(int64_t in, int64_t s, int64_t pad, int64_t ker, int64_t dil, int64_t b0, int64_t b1) {
  using I = __int128;
  const auto floor_div = [](I a, I d) { return a >= 0 ? a / d : -((-a + d - 1) / d); };
  const I lo = -floor_div(-(I(b0) + pad - (I(ker) - 1) * dil), s); // ceil
  const I hi = floor_div(I(b1) - 1 + pad, s) + 1;
  const I clo = std::clamp<I>(lo, 0, in), chi = std::clamp<I>(hi, clo, in);
  return {static_cast<int64_t>(clo), static_cast<int64_t>(chi)};
}

// Adds column row `col` (tap t, r, s of input pixels [p0, p0 + count), flattened D x H x W, pixel q at
// col[q * step]) into output plane yk, walking the pixels one input row segment at a time.
// Only the output rows od in [od_lo, od_hi), oh in [oh_lo, oh_hi) are written (a band; the whole plane by default).
void col2im_add(const Geometry& g, const float* col, int64_t step, int64_t t, int64_t r, int64_t s, int64_t p0,
                int64_t count, float* yk, int64_t od_lo, int64_t od_hi, int64_t oh_lo, int64_t oh_hi) {
  const int64_t off_d = t * g.dil[0] - g.pad[0], off_h = r * g.dil[1] - g.pad[1], off_w = s * g.dil[2] - g.pad[2];
  const TapRange vw = tap_range(g.in[2], g.str[2], off_w, g.out[2]); // the iw that land inside the output
  int64_t iw = p0 % g.in[2], ih = p0 / g.in[2] % g.in[1], id = p0 / (g.in[2] * g.in[1]);
  int64_t done = 0;
  while (done < count) {
    const int64_t len = std::min(g.in[2] - iw, count - done);
    const int64_t od = id * g.str[0] + off_d, oh = ih * g.str[1] + off_h;
    if (od >= od_lo && od < od_hi && oh >= oh_lo && oh < oh_hi) {
      const float* src = col + done * step; // src[(q - iw) * step] is input column q
      float* dst = yk + (od * g.out[1] + oh) * g.out[2];
      const int64_t lo = std::clamp(vw.lo, iw, iw + len), hi = std::clamp(vw.hi, lo, iw + len);
      if (step != 1) {
        for (int64_t q = lo; q < hi; ++q)
          dst[q * g.str[2] + off_w] += src[(q - iw) * step];
      } else if (g.str[2] == 1) {
        for (int64_t q = lo; q < hi; ++q)
          dst[q + off_w] += src[q - iw];
      } else {
        for (int64_t q = lo; q < hi; ++q)
          dst[q * g.str[2] + off_w] += src[q - iw];
      }
    }
    done += len;
    iw = 0;
    if (++ih == g.in[1]) {
      ih = 0;
      ++id;
    }
  }
}

// One depth block of an A stored transposed (depth row q at at + q * ld, its A rows contiguous there, `rows` of
// them), packed as gemm_block's panels [panel][kc][mr] at dst (rows_pad rows, those past `rows` zero): W^T of a
// transposed convolution, and x^T where the weights are B. kPackRows depth rows at a time, each panel's
// kPackRows x mr block written whole: panel by panel over all depth rows, the reads are ld floats apart (16 KiB
// for DCGAN ct2), all in one L1 set and few L2 sets, and every read missed to memory (80 % of that layer's time).
void pack_transposed_a(const float* at, int64_t ld, int64_t kc, int64_t rows, int64_t rows_pad, int mr, float* dst) {
  constexpr int64_t kPackRows = 8;
  for (int64_t qb = 0; qb < kc; qb += kPackRows) {
    const int64_t qe = std::min(kc, qb + kPackRows);
    for (int64_t i0 = 0; i0 < rows_pad; i0 += mr) {
      float* panel = dst + i0 * kc + qb * mr;
      const int64_t valid = std::clamp<int64_t>(rows - i0, 0, mr);
      for (int64_t q = qb; q < qe; ++q, panel += mr) {
        const float* src = at + q * ld + i0;
        for (int64_t i = 0; i < valid; ++i)
          panel[i] = src[i];
        for (int64_t i = valid; i < mr; ++i)
          panel[i] = 0.0f;
      }
    }
  }
}

} // namespace

Status cpu_conv_transpose_supports(const ConvProblem& p) {
  if (p.op() != Op::kConvTranspose)
    return not_supported(std::string("cpu_gemm_col2im runs conv_transpose only, not ") + op_name(p.op()));
  return Status::ok();
}

std::shared_ptr<const void> cpu_conv_transpose_blocking(const ConvProblem& p) {
  return std::make_shared<const TransposeBlocking>(transpose_blocking(p));
}

void set_cpu_col2im_bands(int mode) {
  g_col2im_bands_mode.store(mode, std::memory_order_relaxed);
}
int cpu_col2im_bands_mode() {
  return g_col2im_bands_mode.load(std::memory_order_relaxed);
}
int64_t cpu_col2im_bands(const ConvProblem& p) {
  return transpose_blocking_per_run(p).bands;
}

bool cpu_conv_transpose_weights_as_b(const ConvProblem& p) {
  return transpose_blocking_per_run(p).weights_as_b;
}

size_t cpu_conv_transpose_workspace(const ConvProblem& p) {
  const TransposeBlocking b = transpose_blocking(p);
  const auto floats = [](const TransposeBlocking& t) {
    return sat_add(t.packed_floats, sat_mul(ThreadPool::instance().max_slots(), t.slot_floats));
  };
  return workspace_bytes_for_floats(std::max(floats(b), b.per_run != nullptr ? floats(*b.per_run) : 0));
}

namespace {

// Constant weights of cpu_gemm_col2im (cpu_conv_transpose_prepare_weights): W^T packed once as every (group, chunk)'s
// A (the plan's blocking never streams the weights as B: TransposeBlocking::per_run).
struct TransposeWeights {
  std::shared_ptr<float> data;
};

// Rows [0, kc) of W's columns [col, col + nb) from depth row c0 of group gi, kWeightLd apart (each W row read as one
// run of nb floats: the memory prefetchers keep up with those, where sliver by sliver every 64-byte read of a row
// 16 KiB from the last waited for memory; the stride spreads the slivers over the L1 sets).
void copy_weight_columns(const Geometry& g, const float* w, int64_t gi, int64_t c0, int64_t kc, int64_t col, int64_t nb,
                         float* dst) {
  const int64_t rows_per_group = g.kg * g.ker_spatial;
  const float* src = w + (gi * g.cg + c0) * rows_per_group + col;
  if (nb == kWeightCols) { // a fixed size: inlined as vector moves, several rows in flight at once
    for (int64_t ci = 0; ci < kc; ++ci)
      std::memcpy(dst + ci * kWeightLd, src + ci * rows_per_group, kWeightCols * sizeof(float));
  } else {
    for (int64_t ci = 0; ci < kc; ++ci)
      std::memcpy(dst + ci * kWeightLd, src + ci * rows_per_group, static_cast<size_t>(nb) * sizeof(float));
  }
}

// A = W_g^T for (group gi, chunk kb): A[m][ci] = w[(gi*Cg + ci) * Kg*T*R*S + m], [c0 block][panel][kc][mr].
void pack_transposed_weights(const Geometry& g, const TransposeBlocking& blk, const float* w, int64_t gi, int64_t kb,
                             float* dst) {
  const int64_t rows_per_group = g.kg * g.ker_spatial;
  const int64_t m0 = kb * blk.kchunk * g.ker_spatial, m1 = std::min(rows_per_group, m0 + blk.kchunk * g.ker_spatial);
  for (int64_t c0 = 0; c0 < g.cg; c0 += kGemmKc)
    pack_transposed_a(w + (gi * g.cg + c0) * rows_per_group + m0, rows_per_group, std::min(kGemmKc, g.cg - c0), m1 - m0,
                      blk.rows_pad, gemm_kernel().mr, dst + c0 * blk.rows_pad);
}

} // namespace

Result<PreparedWeights> cpu_conv_transpose_prepare_weights(const ConvProblem& p, const void* blocking, const float* w) {
  PreparedWeights out;
  if (p.n() == 0)
    return out;
  const Geometry g(p);
  const TransposeBlocking blk =
      blocking != nullptr ? *static_cast<const TransposeBlocking*>(blocking) : transpose_blocking(p);
  if (blk.weights_as_b)
    return internal_error("cpu_gemm_col2im: a plan's blocking streams the weights as B");
  const int64_t tasks = g.groups * blk.kblocks;
  const int64_t per_task = blk.a_floats;
  auto tw = std::make_shared<TransposeWeights>();
  Result<std::shared_ptr<float>> data = aligned_floats(sat_mul(tasks, per_task), "cpu_gemm_col2im's prepared weights");
  if (!data)
    return data.status();
  tw->data = std::move(data).value();
  float* base = tw->data.get();
  auto prepare = [&](int64_t task, int) {
    pack_transposed_weights(g, blk, w, task / blk.kblocks, task % blk.kblocks, base + task * per_task);
  };
  ThreadPool::instance().parallel_for(tasks, prepare);
  out.bytes = static_cast<size_t>(tasks * per_task) * sizeof(float);
  out.state = std::move(tw);
  return out;
}

Status cpu_conv_transpose_run(const KernelArgs& args) {
  if (args.problem == nullptr)
    return invalid_argument("cpu_gemm_col2im: KernelArgs.problem is null");
  const ConvProblem& p = *args.problem;
  if (p.n() == 0)
    return Status::ok();
  if (args.prepared == nullptr) {
    CONVARITH_RETURN_IF_ERROR(cpu_conv_transpose_supports(p));
    CONVARITH_RETURN_IF_ERROR(check_cpu_args(args, "cpu_gemm_col2im", cpu_conv_transpose_workspace(p)));
  }
  const Geometry g(p);
  const TransposeBlocking planned =
      args.prepared != nullptr ? *static_cast<const TransposeBlocking*>(args.prepared) : transpose_blocking(p);
  // Constant weights prepared in Plan::create (cpu_conv_transpose_prepare_weights): the packed W^T, or W's column
  // chunks as the runs below copy them. Handed w, the runs take TransposeBlocking::per_run where there is one.
  const auto* given = static_cast<const TransposeWeights*>(args.packed_w);
  const TransposeBlocking blk = given == nullptr && planned.per_run != nullptr ? *planned.per_run : planned;
  const GemmKernel& gk = gemm_kernel();
  ThreadPool& pool = ThreadPool::instance();
  float* a_packed = aligned_workspace(args.workspace);
  float* scratch = a_packed + blk.packed_floats;

  // A = W_g^T: A[m][ci] = w[(gi*Cg + ci) * Kg*T*R*S + m]: stored transposed, input channel ci's m contiguous.
  auto pack = [&](int64_t task, int) {
    pack_transposed_weights(g, blk, args.w, task / blk.kblocks, task % blk.kblocks, a_packed + task * blk.a_floats);
  };
  // weights_as_b (one image): x_g^T as A, [c0 block][panel of mr pixels][kc][mr], zero past the last pixel; a
  // task per (group, depth block).
  const int64_t cblocks = ceil_div(g.cg, kGemmKc);
  auto pack_xt = [&](int64_t task, int) {
    const int64_t gi = task / cblocks, c0 = task % cblocks * kGemmKc;
    pack_transposed_a(args.x + (gi * g.cg + c0) * g.in_spatial, g.in_spatial, std::min(kGemmKc, g.cg - c0),
                      g.in_spatial, blk.rows_pad, gk.mr, a_packed + gi * blk.a_floats + c0 * blk.rows_pad);
  };
  if (blk.weights_as_b)
    pool.parallel_for(g.groups * cblocks, pack_xt);
  else if (given == nullptr)
    pool.parallel_for(g.groups * blk.kblocks, pack);

  auto compute = [&](int64_t task, int slot) {
    const int64_t band = task % blk.bands;
    task /= blk.bands;
    const int64_t n = task / (g.groups * blk.kblocks), gk_task = task % (g.groups * blk.kblocks);
    const int64_t gi = gk_task / blk.kblocks, kb = gk_task % blk.kblocks;
    const int64_t k0 = kb * blk.kchunk, kcount = std::min(blk.kchunk, g.kg - k0);
    const int64_t rows = kcount * g.ker_spatial;
    float* cols = scratch + slot * blk.slot_floats;
    const float* a = (given != nullptr ? given->data.get() : a_packed) + gk_task * blk.a_floats;
    const float* xg = args.x + (n * g.c + gi * g.cg) * g.in_spatial;
    // The band: output rows [b0, b1) along the band axis, the output range [y0, y1) of each plane they are, and the
    // input pixels [q_lo, q_hi) whose taps reach them.
    int64_t od_lo = 0, od_hi = g.out[0], oh_lo = 0, oh_hi = g.out[1], y0 = 0, y1 = g.out_spatial;
    int64_t q_lo = 0, q_hi = g.in_spatial;
    if (blk.band_axis >= 0) {
      const int ax = blk.band_axis;
      const int64_t b0 = band * blk.band_rows, b1 = std::min(g.out[ax], b0 + blk.band_rows);
      const int64_t out_plane = ax == 0 ? g.out[1] * g.out[2] : g.out[2];
      const int64_t in_plane = ax == 0 ? g.in[1] * g.in[2] : g.in[2];
      (ax == 0 ? od_lo : oh_lo) = b0;
      (ax == 0 ? od_hi : oh_hi) = b1;
      y0 = b0 * out_plane;
      y1 = b1 * out_plane;
      const TapRange in = band_inputs(g.in[ax], g.str[ax], g.pad[ax], g.ker[ax], g.dil[ax], b0, b1);
      q_lo = in.lo * in_plane;
      q_hi = in.hi * in_plane;
    }
    for (int64_t kl = 0; kl < kcount; ++kl) {
      const int64_t kk = gi * g.kg + k0 + kl;
      float* yk = args.y + (n * g.k + kk) * g.out_spatial;
      std::fill(yk + y0, yk + y1, args.bias != nullptr ? args.bias[kk] : 0.0f);
    }
    // Pixel blocks in a fixed order, so every output element sums its terms in the same order; a band takes the
    // part of each block its pixels are in (the same blocks as one band: the same sums in the same order).
    for (int64_t block = q_lo / blk.pixels * blk.pixels; block < q_hi; block += blk.pixels) {
      const int64_t p0 = std::max(block, q_lo), pixels = std::min(block + blk.pixels, q_hi) - p0;
      if (pixels <= 0)
        continue;
      // Column (kl, tap) of the cols: pixel q at cols[col_row * row_step + q * pixel_step].
      int64_t row_step = pixels, pixel_step = 1;
      if (blk.weights_as_b) {
        // cols^T[pixel][m] = sum_ci x^T[pixel][ci] * W[ci][m0 + m]: x^T (packed once per run) as A, W as B.
        const float* xt = a_packed + gi * blk.a_floats;
        // W in chunks of kWeightCols columns: a chunk's kc rows copied into a buffer (each W row read as one
        // run of kWeightCols floats: the memory prefetchers keep up with those, where sliver by sliver every
        // 64-byte read of a row 16 KiB from the last waited for memory), rows kWeightLd apart so its slivers
        // spread over the L1 sets.
        const int64_t m0 = k0 * g.ker_spatial;
        float* wbuf = cols + rows * pixels;
        for (int64_t j0 = 0; j0 < rows; j0 += kWeightCols) {
          const int64_t nb = std::min(kWeightCols, rows - j0);
          for (int64_t c0 = 0; c0 < g.cg; c0 += kGemmKc) {
            const int64_t kc = std::min(kGemmKc, g.cg - c0);
            copy_weight_columns(g, args.w, gi, c0, kc, m0 + j0, nb, wbuf); // (never prepared: see per_run)
            gemm_block(gk, pixels, nb, kc, xt + c0 * blk.rows_pad, kc * gk.mr, wbuf, kWeightLd, nb, cols + j0, rows,
                       c0 > 0, nullptr);
          }
        }
        row_step = 1, pixel_step = rows;
      } else {
        for (int64_t c0 = 0; c0 < g.cg; c0 += kGemmKc) {
          const int64_t kc = std::min(kGemmKc, g.cg - c0);
          gemm_block(gk, rows, pixels, kc, a + c0 * blk.rows_pad, kc * gk.mr, xg + c0 * g.in_spatial + p0, g.in_spatial,
                     g.in_spatial - p0, cols, pixels, c0 > 0, nullptr);
        }
      }
      for (int64_t kl = 0; kl < kcount; ++kl) {
        float* yk = args.y + (n * g.k + gi * g.kg + k0 + kl) * g.out_spatial;
        for (int64_t tap = 0; tap < g.ker_spatial; ++tap) {
          const int64_t t = tap / (g.ker[1] * g.ker[2]), r = tap / g.ker[2] % g.ker[1], s = tap % g.ker[2];
          col2im_add(g, cols + (kl * g.ker_spatial + tap) * row_step, pixel_step, t, r, s, p0, pixels, yk, od_lo, od_hi,
                     oh_lo, oh_hi);
        }
      }
    }
  };
  pool.parallel_for(g.n * g.groups * blk.kblocks * blk.bands, compute);
  return Status::ok();
}

} // namespace convarith::detail
