// host/cpu/cpu_winograd.cpp — "cpu_winograd": 3x3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3)
// (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
//
// Each 2x2 block of outputs ("tile") of one output channel is Y = A^T [ sum_c (G g_kc G^T) . (B^T d_c B) ] A, with
// d_c the 4x4 input patch under the tile, g_kc the 3x3 filter and . the elementwise product:
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1].
// The sum over c is 16 GEMMs (one per element xi of the 4x4 transformed tile): M_xi[k][t] = U_xi[k][c] V_xi[c][t],
// 16 * 2 * K * C multiply-adds per tile where direct convolution does 4 * 9 * K * C: 2.25x fewer.
//
// Run: the filters are transformed into U (packed as the GEMM's A, once per run, a task per group and 6-row panel;
// an Inf or NaN weight sends the whole problem to cpu_gemm before y is touched) -- or, with constant weights
// (PlanOptions::weights), once in Plan::create (cpu_winograd_prepare_weights), and the runs read that U (the same
// U: the same bits); the estimate auto ranks by then drops the transform (cpu_winograd_cost_us_weights). Then a task
// per (image, group, block of tb tiles) transforms its input patches into V (its slot), runs the 16 GEMMs into M (its
// slot; the micro-kernels of gemm.cpp) and transforms M into its outputs, adding the bias. Every sum is in a fixed
// order, whatever the thread count: deterministic. Accuracy: the transforms add and halve (exact on small integers: the
// tests compare exactly there); in floating point the products are of transformed values, so the error is a small
// multiple of direct convolution's (tests bound it with the same rule as every row, and measure it: docs/DESIGN.md).
// Special values: where any output is Inf or NaN (an Inf or NaN in x, or an overflow the transforms made), the problem
// is run again by cpu_gemm, which gives IEEE semantics per product (Winograd's sums of infinities would be NaN where
// the direct sum is Inf).
//
// Workspace: U for every group, one slot (V and M of a tile block) per thread; at least cpu_gemm's, for the rerun.
#include <algorithm>
#include <atomic>
#include <cstring>

#include "cpu/cpu_ops.hpp"
#include "cpu/gemm.hpp"
#include "cpu/thread_pool.hpp"

namespace convarith::detail {
namespace {

constexpr int kXi = 16;                       // elements of a transformed 4x4 tile
constexpr int64_t kLargeU = int64_t{8} << 20; // bytes of one group's U beyond which it is read from memory

struct WinoBlocking {
  int64_t n, groups, cg, kg;
  int64_t ih, iw, oh, ow, pad_h, pad_w;
  int64_t tiles_h, tiles_w, tiles;  // per image
  int64_t tb;                       // tiles per task
  int64_t ld;                       // row stride of V and M (tb rounded up to nr, an odd number of nr: no set crowding)
  int64_t tblocks;                  // tile blocks per image
  int64_t krows;                    // output channels per task (a multiple of mr)
  int64_t kblocks;                  // channel blocks per group
  int64_t rows_pad;                 // kg rounded up to mr
  int64_t u_xi_floats;              // one packed U_xi: rows_pad x cg
  int64_t u_floats;                 // every group's U
  int64_t slot_floats;              // V (16 x cg x ld) and M (16 x krows x ld)
  bool u_large;                     // one group's U passes kLargeU
  std::shared_ptr<const void> conv; // cpu_gemm's blocking, for the rerun
};

WinoBlocking wino_blocking(const ConvProblem& p) {
  const GemmKernel& gk = gemm_kernel();
  const int64_t slots = ThreadPool::instance().max_slots();
  WinoBlocking b{};
  b.n = p.n(), b.groups = p.groups(), b.cg = p.c() / p.groups(), b.kg = p.k() / p.groups();
  b.ih = p.axis3(1).i, b.iw = p.axis3(2).i, b.oh = p.out3(1), b.ow = p.out3(2);
  b.pad_h = p.axis3(1).p_lo, b.pad_w = p.axis3(2).p_lo;
  b.tiles_h = ceil_div(b.oh, 2), b.tiles_w = ceil_div(b.ow, 2);
  b.tiles = sat_mul(b.tiles_h, b.tiles_w);
  // Tasks are (image, group, tile block, channel block): up to 64 tiles a task (4 slivers of 16 columns reuse each
  // U panel), then smaller tile blocks, then channel blocks, until there are two tasks a thread. (Channel blocks
  // first was slower on ResNet-50's 3x3 256 at 14x14: each transforms its tiles' inputs again.)
  const int64_t want = 2 * slots, outer = std::max<int64_t>(1, sat_mul(b.n, b.groups));
  b.tb = std::min<int64_t>(64, round_up(b.tiles, gk.nr)); // a multiple of nr
  b.krows = round_up(b.kg, gk.mr);
  const auto tasks = [&] { return sat_mul(sat_mul(outer, ceil_div(b.tiles, b.tb)), ceil_div(b.kg, b.krows)); };
  const auto split_tiles = [&] {
    while (b.tb > gk.nr && tasks() < want)
      b.tb -= gk.nr;
  };
  const auto split_channels = [&] {
    while (b.krows > 4 * gk.mr && tasks() < want)
      b.krows = round_up(ceil_div(b.krows, 2), gk.mr);
  };
  // Each tile block reads its channel block's U again: past kLargeU bytes of U a group (ResNet-50's and VGG's 512
  // channels: 16 MiB) those reads come from memory, so split channels first there.
  if (b.u_large = sat_mul(sat_mul(kXi * int64_t{sizeof(float)}, b.kg), b.cg) > kLargeU; b.u_large) {
    split_channels();
    split_tiles();
  } else {
    split_tiles();
    split_channels();
  }
  int64_t q = ceil_div(b.tb, gk.nr);
  if (q % 2 == 0)
    ++q;
  b.ld = q * gk.nr;
  b.tb = std::max<int64_t>(1, std::min(b.tb, b.tiles));
  b.tblocks = ceil_div(b.tiles, b.tb);
  b.kblocks = ceil_div(b.kg, b.krows);
  b.rows_pad = round_up(b.kg, gk.mr);
  b.u_xi_floats = sat_mul(b.rows_pad, b.cg);
  b.u_floats = sat_mul(sat_mul(b.groups, kXi), b.u_xi_floats);
  b.slot_floats = sat_mul(sat_mul(kXi, sat_add(b.cg, b.krows)), b.ld);
  return b;
}

// U_xi = (G g G^T)[xi] for rows [r0, r0 + mr) of one group, packed as gemm_block's A: [c0 block][panel][kc][mr].
// kChanBlock input channels at a time into a local block, then each U_xi's part of it (kChanBlock x mr floats,
// contiguous in the packed layout) written at once: element by element into 16 planes, the stores thrashed (3.3 ns
// per element on VGG's 512-channel conv5, half its time). Returns nonzero when a weight is Inf or NaN.
uint32_t transform_filters(const WinoBlocking& b, const float* wg, int64_t r0, int mr, float* ug) {
  constexpr int64_t kChanBlock = 16;
  static_assert(kGemmKc % kChanBlock == 0, "a channel block must not cross a depth block");
  uint32_t special = 0;
  float local[kXi][kChanBlock * kMaxMr];
  for (int64_t cb = 0; cb < b.cg; cb += kChanBlock) {
    // A block never crosses a depth block: kGemmKc is a multiple of kChanBlock.
    const int64_t c0 = cb / kGemmKc * kGemmKc, kc = std::min(kGemmKc, b.cg - c0);
    const int64_t ce = std::min(b.cg, cb + kChanBlock);
    for (int64_t ci = cb; ci < ce; ++ci)
      for (int i = 0; i < mr; ++i) {
        const int64_t kl = r0 + i, at = (ci - cb) * mr + i;
        if (kl >= b.kg) {
          for (int xi = 0; xi < kXi; ++xi)
            local[xi][at] = 0.0f;
          continue;
        }
        const float* g = wg + (kl * b.cg + ci) * 9;
        float t[4][3]; // G g
        for (int j = 0; j < 3; ++j) {
          special |= nonfinite_bit(g[j]) | nonfinite_bit(g[3 + j]) | nonfinite_bit(g[6 + j]);
          t[0][j] = g[j];
          t[1][j] = 0.5f * ((g[j] + g[3 + j]) + g[6 + j]);
          t[2][j] = 0.5f * ((g[j] - g[3 + j]) + g[6 + j]);
          t[3][j] = g[6 + j];
        }
        for (int r = 0; r < 4; ++r) { // (G g) G^T
          local[r * 4 + 0][at] = t[r][0];
          local[r * 4 + 1][at] = 0.5f * ((t[r][0] + t[r][1]) + t[r][2]);
          local[r * 4 + 2][at] = 0.5f * ((t[r][0] - t[r][1]) + t[r][2]);
          local[r * 4 + 3][at] = t[r][2];
        }
      }
    const int64_t count = (ce - cb) * mr;
    for (int xi = 0; xi < kXi; ++xi)
      std::memcpy(ug + xi * b.u_xi_floats + c0 * b.rows_pad + r0 * kc + (cb - c0) * mr, local[xi],
                  static_cast<size_t>(count) * sizeof(float));
  }
  return special;
}

// V_xi[ci][t - t0] = (B^T d B)[xi] for the tiles [t0, t1) of one image and group; columns past t1 - t0 are zero.
void transform_inputs(const WinoBlocking& b, const float* xg, int64_t t0, int64_t t1, float* v) {
  const int64_t count = t1 - t0;
  // Four padded input rows of the tile row's columns, then their vertical combinations (B^T d) along the row.
  constexpr int64_t kMaxCols = 2 * 64 + 2; // tb <= 64 tiles
  float rows[4][kMaxCols], comb[4][kMaxCols];
  for (int64_t ci = 0; ci < b.cg; ++ci) {
    const float* xc = xg + ci * b.ih * b.iw;
    float* vc = v + ci * b.ld;
    for (int64_t t = t0; t < t1;) {
      const int64_t th = t / b.tiles_w, q0 = t % b.tiles_w, q1 = std::min(b.tiles_w, q0 + (t1 - t));
      const int64_t cols = 2 * (q1 - q0) + 2, col0 = 2 * q0 - b.pad_w; // input column of rows[.][0]
      for (int r = 0; r < 4; ++r) {
        const int64_t ih = 2 * th - b.pad_h + r;
        float* row = rows[r];
        if (ih < 0 || ih >= b.ih) {
          std::fill(row, row + cols, 0.0f);
          continue;
        }
        const int64_t lo = std::clamp<int64_t>(-col0, 0, cols), hi = std::clamp<int64_t>(b.iw - col0, lo, cols);
        std::fill(row, row + lo, 0.0f);
        std::copy(xc + ih * b.iw + col0 + lo, xc + ih * b.iw + col0 + hi, row + lo);
        std::fill(row + hi, row + cols, 0.0f);
      }
      for (int64_t j = 0; j < cols; ++j) {
        comb[0][j] = rows[0][j] - rows[2][j];
        comb[1][j] = rows[1][j] + rows[2][j];
        comb[2][j] = rows[2][j] - rows[1][j];
        comb[3][j] = rows[1][j] - rows[3][j];
      }
      const int64_t out0 = t - t0, n = q1 - q0;
      for (int r = 0; r < 4; ++r) {
        const float* c = comb[r];
        float* v0 = vc + (r * 4 + 0) * b.cg * b.ld + out0;
        float* v1 = vc + (r * 4 + 1) * b.cg * b.ld + out0;
        float* v2 = vc + (r * 4 + 2) * b.cg * b.ld + out0;
        float* v3 = vc + (r * 4 + 3) * b.cg * b.ld + out0;
        for (int64_t q = 0; q < n; ++q) {
          v0[q] = c[2 * q] - c[2 * q + 2];
          v1[q] = c[2 * q + 1] + c[2 * q + 2];
          v2[q] = c[2 * q + 2] - c[2 * q + 1];
          v3[q] = c[2 * q + 1] - c[2 * q + 3];
        }
      }
      t += n;
    }
    for (int xi = 0; xi < kXi; ++xi)
      std::fill(vc + xi * b.cg * b.ld + count, vc + xi * b.cg * b.ld + b.ld, 0.0f);
  }
}

// y = A^T M A + bias for the tiles [t0, t1) of row kl of the task's M (its channel block); returns nonzero when an
// output is Inf or NaN.
uint32_t transform_outputs(const WinoBlocking& b, const float* m, int64_t kl, int64_t t0, int64_t t1, float bias,
                           float* yk) {
  uint32_t special = 0;
  const float* mk = m + kl * b.ld;
  const int64_t xs = b.krows * b.ld; // between M_xi and M_xi+1
  float a[2][4][64], out[4][64];     // A^T M over the row segment's tiles, then the outputs
  for (int64_t t = t0; t < t1;) {
    const int64_t th = t / b.tiles_w, q0 = t % b.tiles_w, n = std::min(b.tiles_w, q0 + (t1 - t)) - q0;
    const float* mt = mk + (t - t0);
    // Loops over the tiles (M_xi is contiguous over them), so they vectorize.
    for (int j = 0; j < 4; ++j) {
      const float *m0 = mt + j * xs, *m1 = mt + (4 + j) * xs, *m2 = mt + (8 + j) * xs, *m3 = mt + (12 + j) * xs;
      for (int64_t q = 0; q < n; ++q) {
        a[0][j][q] = (m0[q] + m1[q]) + m2[q];
        a[1][j][q] = (m1[q] - m2[q]) - m3[q];
      }
    }
    for (int i = 0; i < 2; ++i) // (A^T M) A, then the bias
      for (int64_t q = 0; q < n; ++q) {
        out[2 * i][q] = ((a[i][0][q] + a[i][1][q]) + a[i][2][q]) + bias;
        out[2 * i + 1][q] = ((a[i][1][q] - a[i][2][q]) - a[i][3][q]) + bias;
      }
    // Every output of the segment is checked, those past the edge too (computed from padding, finite unless an
    // input near the edge is not: then the rerun decides, which is only slower).
    for (int i = 0; i < 4; ++i)
      special |= nonfinite_bits(out[i], n);
    const int64_t pairs = 2 * (q0 + n) <= b.ow ? n : n - 1; // tiles whose both columns are inside
    for (int i = 0; i < 2; ++i) {
      const int64_t oh = 2 * th + i;
      if (oh >= b.oh)
        break;
      float* yrow = yk + oh * b.ow + 2 * q0;
      for (int64_t q = 0; q < pairs; ++q) {
        yrow[2 * q] = out[2 * i][q];
        yrow[2 * q + 1] = out[2 * i + 1][q];
      }
      if (pairs < n)
        yrow[2 * pairs] = out[2 * i][pairs];
    }
    t += n;
  }
  return special;
}

} // namespace

Status cpu_winograd_supports(const ConvProblem& p) {
  if (p.op() != Op::kConv)
    return not_supported(std::string("cpu_winograd runs conv only, not ") + op_name(p.op()));
  const AxisParams& d = p.axis3(0);
  if (d.i != 1 || d.k != 1 || d.s != 1 || d.d != 1 || d.p_lo != 0 || d.p_hi != 0)
    return not_supported("cpu_winograd runs 2-D convolutions only (" + p.name() + " has a depth axis)");
  for (int j = 1; j < 3; ++j) {
    const AxisParams& a = p.axis3(j);
    const char* axis = j == 1 ? "H" : "W";
    if (a.k != 3 || a.s != 1 || a.d != 1)
      return not_supported(std::string("cpu_winograd runs 3x3 windows at stride 1 and dilation 1 only; axis ") + axis +
                           " has kernel " + std::to_string(a.k) + ", stride " + std::to_string(a.s) + ", dilation " +
                           std::to_string(a.d));
  }
  return Status::ok();
}

namespace {

// Every group's U (b.u_floats at u), a task per (group, panel of mr rows). True when a weight is Inf or NaN.
bool transform_all_filters(const WinoBlocking& b, const float* w, float* u) {
  const GemmKernel& gk = gemm_kernel();
  std::atomic<bool> special{false};
  const int64_t panels = b.rows_pad / gk.mr;
  auto filters = [&](int64_t task, int) {
    const int64_t gi = task / panels, r0 = task % panels * gk.mr;
    if (transform_filters(b, w + gi * b.kg * b.cg * 9, r0, gk.mr, u + gi * kXi * b.u_xi_floats) != 0)
      special.store(true, std::memory_order_relaxed);
  };
  ThreadPool::instance().parallel_for(b.groups * panels, filters);
  return special.load(std::memory_order_relaxed);
}

// Constant weights of cpu_winograd (cpu_winograd_prepare_weights): every group's U, once.
struct WinoWeights {
  std::shared_ptr<float> u;
  bool special = false; // a weight is Inf or NaN: every run goes to cpu_gemm
};

} // namespace

Result<PreparedWeights> cpu_winograd_prepare_weights(const ConvProblem& p, const void* blocking, const float* w) {
  PreparedWeights out;
  if (p.n() == 0)
    return out;
  const std::shared_ptr<const void> own = blocking == nullptr ? cpu_winograd_blocking(p) : nullptr;
  const WinoBlocking& b = *static_cast<const WinoBlocking*>(blocking != nullptr ? blocking : own.get());
  auto ww = std::make_shared<WinoWeights>();
  Result<std::shared_ptr<float>> u = aligned_floats(b.u_floats, "cpu_winograd's transformed filters");
  if (!u)
    return u.status();
  ww->u = std::move(u).value();
  ww->special = transform_all_filters(b, w, ww->u.get());
  out.bytes = static_cast<size_t>(b.u_floats) * sizeof(float);
  out.state = std::move(ww);
  return out;
}

std::shared_ptr<const void> cpu_winograd_blocking(const ConvProblem& p) {
  auto b = std::make_shared<WinoBlocking>(wino_blocking(p));
  b->conv = cpu_conv_blocking(p);
  return b;
}

size_t cpu_winograd_workspace(const ConvProblem& p) {
  if (p.n() == 0)
    return 0; // run() does nothing (U alone could be gigabytes for a huge empty problem's channels)
  const WinoBlocking b = wino_blocking(p);
  const size_t own =
      workspace_bytes_for_floats(sat_add(b.u_floats, sat_mul(ThreadPool::instance().max_slots(), b.slot_floats)));
  return std::max(own, cpu_conv_workspace(p));
}

namespace {
double winograd_cost_us(const ConvProblem& p, int threads, bool weights_prepared) {
  // Nanoseconds of one core, in the units of cpu_gemm's estimate (its nominal FLOPs at 40 GFLOP/s per thread):
  // the 16 GEMMs over tiles rounded up to nr per task and channels to mr (so depthwise and small groups stay on
  // cpu_gemm's direct loops); ~1 ns per U element transformed (once per run), and each tile block's read of it,
  // ~0.15 ns (L3) or ~0.5 ns (memory, past kLargeU); ~0.3 ns per V element (once per channel block) and M element.
  // (Set so that, on an AMD EPYC Zen 3 timed in turns, ResNet-50's 3x3 layers at 56, 28 and 14 take Winograd. The
  // memory read was 2 ns until 2026-12-04, when 2 cores of an AMD EPYC with an 8 MiB L3 (AVX2) measured, Winograd
  // against cpu_gemm: R23 (7x7, 512) 2.45 vs 4.1 ms with prepared weights, 5.4 vs 4.4 handed w per run; VGG's
  // conv5 (14x14, 512) 11.1 vs 13.3 per run: now the estimates rank them so.)
  const WinoBlocking b = wino_blocking(p);
  const GemmKernel& gk = gemm_kernel();
  const double tiles = double(b.n) * double(b.tblocks) * double(round_up(b.tb, gk.nr));
  const double gemm = 2.0 * kXi * double(b.groups) * double(b.rows_pad) * double(b.cg) * tiles / 40.0;
  const double u_floats = kXi * double(b.groups) * double(b.kg) * double(b.cg);
  const double u =
      (weights_prepared ? 0.0 : 1.0) * u_floats + (b.u_large ? 0.5 : 0.15) * u_floats * double(b.n) * double(b.tblocks);
  const double vm = 0.3 * kXi * double(b.groups) * (double(b.cg) * double(b.kblocks) + double(b.kg)) * tiles;
  return 5.0 + (gemm + u + vm) / std::max(1, threads) * 1e-3;
}
} // namespace

double cpu_winograd_cost_us(const ConvProblem& p, int threads) {
  return winograd_cost_us(p, threads, false);
}
double cpu_winograd_cost_us_weights(const ConvProblem& p, int threads) {
  return winograd_cost_us(p, threads, true); // no filter transform per run
}

Status cpu_winograd_run(const KernelArgs& args) {
  if (args.problem == nullptr)
    return invalid_argument("cpu_winograd: KernelArgs.problem is null");
  const ConvProblem& p = *args.problem;
  if (p.n() == 0)
    return Status::ok();
  if (args.prepared == nullptr) {
    CONVARITH_RETURN_IF_ERROR(cpu_winograd_supports(p));
    CONVARITH_RETURN_IF_ERROR(check_cpu_args(args, "cpu_winograd", cpu_winograd_workspace(p)));
  }
  const std::shared_ptr<const void> own = args.prepared == nullptr ? cpu_winograd_blocking(p) : nullptr;
  const WinoBlocking& b = *static_cast<const WinoBlocking*>(args.prepared != nullptr ? args.prepared : own.get());
  const GemmKernel& gk = gemm_kernel();
  ThreadPool& pool = ThreadPool::instance();
  const auto rerun_direct = [&] {
    KernelArgs direct = args;
    direct.prepared = b.conv.get();
    direct.packed_w = nullptr; // U is not cpu_gemm's form of the weights
    return cpu_conv_run(direct);
  };
  float* u_own = aligned_workspace(args.workspace);
  float* scratch = u_own + b.u_floats;

  // The filters transformed once in Plan::create (cpu_winograd_prepare_weights), or now.
  const auto* given = static_cast<const WinoWeights*>(args.packed_w);
  if (given != nullptr ? given->special : transform_all_filters(b, args.w, u_own))
    return rerun_direct();
  const float* u = given != nullptr ? given->u.get() : u_own;
  std::atomic<bool> special{false};

  auto compute = [&](int64_t task, int slot) {
    const int64_t per_image = b.groups * b.tblocks * b.kblocks;
    const int64_t n = task / per_image, gi = task % per_image / (b.tblocks * b.kblocks);
    const int64_t tblock = task / b.kblocks % b.tblocks, k0 = task % b.kblocks * b.krows;
    const int64_t rows = std::min(b.krows, b.kg - k0);
    const int64_t t0 = tblock * b.tb, t1 = std::min(b.tiles, t0 + b.tb), count = t1 - t0;
    float* v = scratch + slot * b.slot_floats;
    float* m = v + kXi * b.cg * b.ld;
    transform_inputs(b, args.x + (n * b.groups + gi) * b.cg * b.ih * b.iw, t0, t1, v);
    // The task's rows of U_xi start at panel k0 / mr of each depth block ([c0 block][panel][kc][mr]).
    const float* ug = u + gi * kXi * b.u_xi_floats;
    for (int xi = 0; xi < kXi; ++xi)
      for (int64_t c0 = 0; c0 < b.cg; c0 += kGemmKc) {
        const int64_t kc = std::min(kGemmKc, b.cg - c0);
        gemm_block(gk, rows, count, kc, ug + xi * b.u_xi_floats + c0 * b.rows_pad + k0 * kc, kc * gk.mr,
                   v + (xi * b.cg + c0) * b.ld, b.ld, b.ld, m + xi * b.krows * b.ld, b.ld, c0 > 0, nullptr);
      }
    uint32_t bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t kl = r, kk = gi * b.kg + k0 + r;
      bad |= transform_outputs(b, m, kl, t0, t1, args.bias != nullptr ? args.bias[kk] : 0.0f,
                               args.y + (n * b.groups * b.kg + kk) * b.oh * b.ow);
    }
    if (bad != 0)
      special.store(true, std::memory_order_relaxed);
  };
  pool.parallel_for(b.n * b.groups * b.tblocks * b.kblocks, compute);
  if (special.load(std::memory_order_relaxed))
    return rerun_direct();
  return Status::ok();
}

} // namespace convarith::detail
