// host/cpu/cpu_taps.cpp — "cpu_taps": convolution as a sum over the kernel's taps of 1x1 convolutions, each over only
// the output pixels that read inside x through that tap.
//
// Per image n and group g, tap (t, r, s) reads inside x for a box of output pixels (per axis the outputs o with
// 0 <= o * stride + tap * dilation - pad_lo < in, a range: tap_range). Over that box the tap is a 1x1 convolution:
//   Y^T[box pixels][Kg] += X_tap^T[box pixels][Cg] * W_tap^T[Cg][Kg]
// with X_tap^T the input pixels under the box (gathered into panels of mr pixels, [panel][Cg][mr]) and W_tap^T the
// tap's weights packed as slivers of nr output channels ([sliver][tap][Cg][nr], per run or once with constant
// weights). No product of a padding zero is ever made: where cpu_gemm's im2col multiplies every tap for every pixel
// (C3D's conv5a, 3x3x3 with padding 1 on a 2x7x7 output: 45 % of the products are padding), these GEMMs multiply
// only the pixel-taps inside x, padded to mr pixels per tap (C5: 1458 rows where 1444 are needed, of 2646).
//
// Run, per (n, g): a task per block of one tap's panels gathers X_tap^T (the panels of every tap: a_floats, shared);
// then a task per chunk of W^T slivers starts its Y^T rows [P][chunk] at the bias, and per tap (in tap order) and
// depth block of kGemmKc channels multiplies each sliver's block (kc x nr, in L1) with the tap's panels (in L2) into a
// temporary T (the micro-kernels of gemm.cpp, full mr x nr tiles on zero-padded panels and slivers), adds T's rows
// of the box's pixels into Y^T, and at the end stores Y^T into y (transposed). Each output element is
// bias + sum over the taps that reach it (in tap order) of that tap's dot product over Cg (in depth blocks, each the
// micro-kernel's FMA chain): the same order whatever the threads and chunks, with or without prepared weights:
// deterministic, bitwise. Another order than cpu_gemm's (channel-major depth), so not cpu_gemm's bits; the same bound:
// |err| <= Cg*T*R*S * u * sum |x*w| to first order. Special values: every product is of an x inside the input and a
// weight, so Inf and NaN propagate as in the definition (the padded rows and columns of T are never read).
//
// Constraints (supports): conv only; at most kMaxAxisTaps taps per axis and kMaxTaps that read inside x; the panels of
// one (n, g) within kMaxFloats floats and the output plane within kMaxPixels pixels (past those cpu_gemm's blocked
// panels are the better form).
//
// Workspace: every group's W^T (runs handed w), the panels of one (n, g), one slot (Y^T of a chunk and T) per thread.
#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_ops.hpp"
#include "cpu/gemm.hpp"
#include "cpu/thread_pool.hpp"

namespace convarith::detail {
namespace {

constexpr int64_t kMaxAxisTaps = 65536;           // taps per axis
constexpr int64_t kMaxTaps = 65536;               // taps that read inside x (the blocking lists each)
constexpr int64_t kMaxFloats = int64_t{1} << 26;  // the panels of one (n, g) (256 MiB)
constexpr int64_t kMaxPixels = int64_t{1} << 18;  // output pixels per plane (Y^T of one sliver: 16 MiB at nr = 16)
constexpr int64_t kSlotFloats = int64_t{1} << 20; // Y^T of one chunk, when more than one sliver
constexpr int64_t kBuildPanels = 8;               // panels per gather task

// The taps of one axis that read inside x for some output, with their output ranges.
struct AxisTaps {
  std::vector<int64_t> tap;
  std::vector<TapRange> range;
  int64_t outputs = 0; // sum of the ranges' lengths (saturating)
};

AxisTaps axis_taps(const AxisParams& a, int64_t out) {
  AxisTaps at;
  for (int64_t t = 0; t < a.k; ++t) {
    // tap * dilation - pad_lo: both parts below the padded extent, which fits int64 (ConvProblem::make).
    const TapRange v = tap_range(out, a.s, t * a.d - a.p_lo, a.i);
    if (v.hi > v.lo) {
      at.tap.push_back(t);
      at.range.push_back(v);
      at.outputs = sat_add(at.outputs, v.hi - v.lo);
    }
  }
  return at;
}

struct Tap {
  int64_t w_tap;        // (t * R + r) * S + s: its index in w's kernel axes
  int64_t lo[3], hi[3]; // the box of output pixels that read inside x through it
  int64_t pixels;       // the box's size
  int64_t panels;       // ceil(pixels / mr)
  int64_t a_off;        // its panels' offset in the panels of one (n, g)
  int64_t x_off;        // input plane offset of the box's first pixel's tap
};

struct TapsBlocking {
  int64_t n, groups, cg, kg;
  int64_t in[3], out[3], str[3];
  int64_t in_spatial, out_spatial, ks; // ks: T*R*S
  std::vector<Tap> taps;
  std::vector<std::array<int64_t, 2>> build; // gather tasks: (tap, first panel), kBuildPanels panels each at most
  int64_t rows = 0;                          // sum of the taps' panels * mr
  int64_t max_panels = 0;
  int64_t a_floats = 0;                       // rows * cg
  int64_t slivers = 0, chunk = 0, chunks = 0; // W^T slivers of nr channels, per task, tasks per (n, g)
  int64_t wt_floats = 0;                      // one group's W^T: slivers * taps * cg * nr
  int64_t y_floats = 0;                       // Y^T of one chunk: out_spatial * chunk * nr
  int64_t slot_floats = 0;                    // Y^T and T of one chunk task
};

// Upper bound on the panels' rows without listing the taps: prod(outputs) + (mr - 1) * prod(taps).
int64_t rows_bound(const AxisTaps (&ax)[3], int mr) {
  int64_t prod = 1, count = 1;
  for (const AxisTaps& a : ax) {
    prod = sat_mul(prod, a.outputs);
    count = sat_mul(count, static_cast<int64_t>(a.tap.size()));
  }
  return sat_add(prod, sat_mul(mr - 1, count));
}

Status taps_supports(const ConvProblem& p, AxisTaps (*axes)[3]) {
  if (p.op() != Op::kConv)
    return not_supported(std::string("cpu_taps runs conv only, not ") + op_name(p.op()));
  for (int j = 0; j < 3; ++j)
    if (p.axis3(j).k > kMaxAxisTaps)
      return not_supported("cpu_taps takes at most " + std::to_string(kMaxAxisTaps) + " taps per axis; " + p.name() +
                           " has a kernel of " + std::to_string(p.axis3(j).k));
  if (p.out_spatial() > kMaxPixels)
    return not_supported("cpu_taps takes output planes of at most " + std::to_string(kMaxPixels) + " pixels; " +
                         p.name() + " has " + std::to_string(p.out_spatial()));
  AxisTaps ax[3];
  for (int j = 0; j < 3; ++j)
    ax[j] = axis_taps(p.axis3(j), p.out3(j));
  int64_t taps = 1;
  for (const AxisTaps& a : ax)
    taps = sat_mul(taps, static_cast<int64_t>(a.tap.size()));
  if (taps > kMaxTaps)
    return not_supported("cpu_taps takes at most " + std::to_string(kMaxTaps) + " taps that read inside x; " +
                         p.name() + " has " + std::to_string(taps));
  const int64_t floats = sat_mul(rows_bound(ax, gemm_kernel().mr), p.c() / p.groups());
  if (floats > kMaxFloats)
    return not_supported("cpu_taps keeps the panels of one image and group within " + std::to_string(kMaxFloats) +
                         " floats; " + p.name() + " needs up to " + std::to_string(floats));
  if (axes != nullptr)
    for (int j = 0; j < 3; ++j)
      (*axes)[j] = std::move(ax[j]);
  return Status::ok();
}

TapsBlocking taps_blocking(const ConvProblem& p) {
  const GemmKernel& gk = gemm_kernel();
  TapsBlocking b{};
  b.n = p.n(), b.groups = p.groups(), b.cg = p.c() / p.groups(), b.kg = p.k() / p.groups();
  b.in_spatial = p.in_spatial(), b.out_spatial = p.out_spatial(), b.ks = p.kernel_spatial();
  for (int j = 0; j < 3; ++j) {
    b.in[j] = p.axis3(j).i;
    b.out[j] = p.out3(j);
    b.str[j] = p.axis3(j).s;
  }
  AxisTaps ax[3];
  if (!taps_supports(p, &ax).is_ok())
    return b; // never run (supports refuses it); sizes stay 0
  const int64_t R = p.axis3(1).k, S = p.axis3(2).k;
  for (size_t a = 0; a < ax[0].tap.size(); ++a)
    for (size_t c = 0; c < ax[1].tap.size(); ++c)
      for (size_t e = 0; e < ax[2].tap.size(); ++e) {
        Tap t{};
        const int64_t tt[3] = {ax[0].tap[a], ax[1].tap[c], ax[2].tap[e]};
        const TapRange* rg[3] = {&ax[0].range[a], &ax[1].range[c], &ax[2].range[e]};
        t.w_tap = (tt[0] * R + tt[1]) * S + tt[2];
        t.pixels = 1;
        int64_t in_at[3];
        for (int j = 0; j < 3; ++j) {
          t.lo[j] = rg[j]->lo;
          t.hi[j] = rg[j]->hi;
          t.pixels *= t.hi[j] - t.lo[j];
          in_at[j] = t.lo[j] * b.str[j] + tt[j] * p.axis3(j).d - p.axis3(j).p_lo; // inside x: [0, in)
        }
        t.x_off = (in_at[0] * b.in[1] + in_at[1]) * b.in[2] + in_at[2];
        t.panels = ceil_div(t.pixels, gk.mr);
        t.a_off = b.rows * b.cg;
        b.rows += t.panels * gk.mr;
        b.max_panels = std::max(b.max_panels, t.panels);
        for (int64_t q = 0; q < t.panels; q += kBuildPanels)
          b.build.push_back({static_cast<int64_t>(b.taps.size()), q});
        b.taps.push_back(t);
      }
  b.a_floats = b.rows * b.cg;
  b.slivers = ceil_div(b.kg, gk.nr);
  // About four chunks per thread (the threads' shares even out), Y^T of a chunk within kSlotFloats.
  const int64_t slots = ThreadPool::instance().max_slots();
  b.chunk = std::max<int64_t>(1, b.slivers / std::max<int64_t>(1, 4 * slots));
  b.chunk = std::max<int64_t>(1, std::min(b.chunk, kSlotFloats / std::max<int64_t>(1, b.out_spatial * gk.nr)));
  b.chunks = ceil_div(b.slivers, b.chunk);
  b.wt_floats = sat_mul(sat_mul(b.slivers * gk.nr, static_cast<int64_t>(b.taps.size())), b.cg);
  b.y_floats = b.out_spatial * b.chunk * gk.nr;
  b.slot_floats = b.y_floats + b.chunk * b.max_panels * gk.mr * gk.nr;
  return b;
}

// W^T of one sliver of one group (task = g * slivers + j) as [tap][cg][nr] at its place in wt
// ([g][sliver][tap][cg][nr]), from w (kg x cg x T*R*S per group, row-major); channels past kg are zeros. Each nr-float
// line is written whole from the sliver's nr weight rows; blocks of 32 input channels keep those rows' parts in L2.
// (Line by line across the taps, each line written one float at a time, packing took 60 % of C3D's conv5a run.)
void pack_sliver(const TapsBlocking& b, const float* w, int64_t task, float* wt) {
  const int nr = gemm_kernel().nr;
  const int64_t gi = task / b.slivers, j = task % b.slivers, taps = static_cast<int64_t>(b.taps.size());
  float* dst = wt + gi * b.wt_floats + j * taps * b.cg * nr;
  const int64_t k0 = j * nr, kn = std::min<int64_t>(nr, b.kg - k0), row = b.cg * b.ks;
  const float* wk = w + (gi * b.kg + k0) * row;
  constexpr int64_t kCb = 32;
  for (int64_t c0 = 0; c0 < b.cg; c0 += kCb) {
    const int64_t c1 = std::min(b.cg, c0 + kCb);
    for (int64_t ti = 0; ti < taps; ++ti) {
      const int64_t tap = b.taps[static_cast<size_t>(ti)].w_tap;
      for (int64_t c = c0; c < c1; ++c) {
        float* line = dst + (ti * b.cg + c) * nr;
        const float* src = wk + c * b.ks + tap;
        for (int64_t q = 0; q < kn; ++q)
          line[q] = src[q * row];
        for (int64_t q = kn; q < nr; ++q)
          line[q] = 0.0f;
      }
    }
  }
}

void pack_all(const TapsBlocking& b, const float* w, float* wt) {
  auto task = [&](int64_t t, int) { pack_sliver(b, w, t, wt); };
  ThreadPool::instance().parallel_for(b.groups * b.slivers, task);
}

// Gather task `task` of one (n, g): panels [q0, q0 + kBuildPanels) of its tap, [panel][cg][mr], the pixels past the
// box zero. xg: the group's input channels (cg planes).
void gather_panels(const TapsBlocking& b, const float* xg, int64_t task, float* a) {
  const int mr = gemm_kernel().mr;
  const Tap& t = b.taps[static_cast<size_t>(b.build[static_cast<size_t>(task)][0])];
  const int64_t q0 = b.build[static_cast<size_t>(task)][1], q1 = std::min(t.panels, q0 + kBuildPanels);
  const int64_t bw = t.hi[2] - t.lo[2], bh = t.hi[1] - t.lo[1];
  // Input offset of box pixel i, relative to t.x_off: the box's (d, h, w) steps are stride steps in x.
  const auto offset = [&](int64_t i) {
    const int64_t w = i % bw, h = i / bw % bh, d = i / (bw * bh);
    return (d * b.str[0] * b.in[1] + h * b.str[1]) * b.in[2] + w * b.str[2];
  };
  int64_t src[kMaxMr];
  for (int64_t q = q0; q < q1; ++q) {
    const int64_t first = q * mr, n = std::min<int64_t>(mr, t.pixels - first);
    for (int64_t i = 0; i < n; ++i)
      src[i] = t.x_off + offset(first + i);
    float* dst = a + t.a_off + q * mr * b.cg;
    for (int64_t c = 0; c < b.cg; ++c) {
      const float* xc = xg + c * b.in_spatial;
      float* d = dst + c * mr;
      for (int64_t i = 0; i < n; ++i)
        d[i] = xc[src[i]];
      for (int64_t i = n; i < mr; ++i)
        d[i] = 0.0f;
    }
  }
}

// Constant weights of cpu_taps (cpu_taps_prepare_weights): every group's W^T, once.
struct TapsWeights {
  std::shared_ptr<float> wt;
};

double taps_cost_us(const ConvProblem& p, int threads, bool weights_prepared) {
  // Nanoseconds of one core in cpu_gemm's units (its nominal FLOPs at 40 GFLOP/s per thread), scaled by 1.2: what the
  // row measured against that rate on 2 cores of an AMD EPYC (AVX2; C3D's conv5a 12.0 ms where the GEMMs' FLOPs at
  // 40 GFLOP/s per core take 9.6, ResNet-50's 3x3 512 layer 2.96 against 2.4; 2026-12-04). The GEMMs over the taps'
  // panels and the slivers, the gathers (~0.5 ns a float), re-reading the panels per chunk (from L3 when one tap's
  // panels at a depth block pass half of L2), W^T packed per run (~1.8 ns a weight: C5 and R23 measured 0.9 ns per
  // weight on 2 cores), ~2 us a task.
  if (!taps_supports(p, nullptr).is_ok())
    return 1e30;
  const TapsBlocking b = taps_blocking(p);
  const GemmKernel& gk = gemm_kernel();
  const double slots = std::max(1, threads), outer = double(std::max<int64_t>(1, b.n * b.groups));
  const double gemm = 2.0 * double(b.rows) * double(b.cg) * double(b.slivers * gk.nr) / 40.0;
  const bool a_in_l2 =
      double(b.max_panels * gk.mr) * double(std::min(kGemmKc, b.cg)) * 4.0 <= double(cpu_l2_bytes()) / 2;
  const double reads = double(b.chunks) * double(b.a_floats) * (a_in_l2 ? 0.02 : 0.1);
  const double gather = double(b.a_floats) * 0.5;
  // The chunk tasks of one (n, g) run in rounds of `slots`.
  const double rounds = std::ceil(double(b.chunks) / slots) / double(b.chunks);
  const double per_group = (gemm + reads) * rounds + gather / slots + 2000.0 * (1.0 + double(b.build.size()) / slots);
  const double pack = weights_prepared ? 0.0 : double(b.groups) * double(b.wt_floats) * 1.8 / slots;
  return 5.0 + (1.2 * outer * per_group + pack) * 1e-3;
}

} // namespace

Status cpu_taps_supports(const ConvProblem& p) {
  return taps_supports(p, nullptr);
}

std::shared_ptr<const void> cpu_taps_blocking(const ConvProblem& p) {
  return std::make_shared<const TapsBlocking>(taps_blocking(p));
}

size_t cpu_taps_workspace(const ConvProblem& p) {
  if (p.n() == 0 || !taps_supports(p, nullptr).is_ok())
    return 0;
  const TapsBlocking b = taps_blocking(p);
  return workspace_bytes_for_floats(sat_add(sat_add(sat_mul(b.groups, b.wt_floats), b.a_floats),
                                            sat_mul(ThreadPool::instance().max_slots(), b.slot_floats)));
}

int64_t cpu_taps_rows(const ConvProblem& p) {
  return taps_supports(p, nullptr).is_ok() ? taps_blocking(p).rows : -1;
}

double cpu_taps_cost_us(const ConvProblem& p, int threads) {
  return taps_cost_us(p, threads, false);
}
double cpu_taps_cost_us_weights(const ConvProblem& p, int threads) {
  return taps_cost_us(p, threads, true);
}

Result<PreparedWeights> cpu_taps_prepare_weights(const ConvProblem& p, const void* blocking, const float* w) {
  PreparedWeights out;
  if (p.n() == 0)
    return out;
  const std::shared_ptr<const void> own = blocking == nullptr ? cpu_taps_blocking(p) : nullptr;
  const TapsBlocking& b = *static_cast<const TapsBlocking*>(blocking != nullptr ? blocking : own.get());
  auto tw = std::make_shared<TapsWeights>();
  Result<std::shared_ptr<float>> wt = aligned_floats(sat_mul(b.groups, b.wt_floats), "cpu_taps' packed weights");
  if (!wt)
    return wt.status();
  tw->wt = std::move(wt).value();
  pack_all(b, w, tw->wt.get());
  out.bytes = static_cast<size_t>(b.groups * b.wt_floats) * sizeof(float);
  out.state = std::move(tw);
  return out;
}

Status cpu_taps_run(const KernelArgs& args) {
  if (args.problem == nullptr)
    return invalid_argument("cpu_taps: KernelArgs.problem is null");
  const ConvProblem& p = *args.problem;
  if (p.n() == 0)
    return Status::ok();
  if (args.prepared == nullptr) {
    CONVARITH_RETURN_IF_ERROR(cpu_taps_supports(p));
    CONVARITH_RETURN_IF_ERROR(check_cpu_args(args, "cpu_taps", cpu_taps_workspace(p)));
  }
  const std::shared_ptr<const void> own = args.prepared == nullptr ? cpu_taps_blocking(p) : nullptr;
  const TapsBlocking& b = *static_cast<const TapsBlocking*>(args.prepared != nullptr ? args.prepared : own.get());
  const GemmKernel& gk = gemm_kernel();
  const int mr = gk.mr, nr = gk.nr;
  ThreadPool& pool = ThreadPool::instance();
  float* wt_own = aligned_workspace(args.workspace);
  float* a = wt_own + b.groups * b.wt_floats;
  float* scratch = a + b.a_floats;
  const auto* given = static_cast<const TapsWeights*>(args.packed_w);
  if (given == nullptr)
    pack_all(b, args.w, wt_own);
  const float* wt = given != nullptr ? given->wt.get() : wt_own;
  static constexpr float kZeros[kMaxMr] = {};
  const int64_t P = b.out_spatial, taps = static_cast<int64_t>(b.taps.size());

  for (int64_t n = 0; n < b.n; ++n)
    for (int64_t gi = 0; gi < b.groups; ++gi) {
      const float* xg = args.x + (n * b.groups + gi) * b.cg * b.in_spatial;
      auto gather = [&](int64_t task, int) { gather_panels(b, xg, task, a); };
      pool.parallel_for(static_cast<int64_t>(b.build.size()), gather);
      const float* wtg = wt + gi * b.wt_floats;
      float* yg = args.y + (n * b.groups + gi) * b.kg * P;
      const float* bias = args.bias != nullptr ? args.bias + gi * b.kg : nullptr;
      auto chunk = [&](int64_t task, int slot) {
        const int64_t j0 = task * b.chunk, nj = std::min(b.chunk, b.slivers - j0), ldy = nj * nr;
        const int64_t k0 = j0 * nr, kn = std::min(b.kg - k0, ldy);
        float* yt = scratch + slot * b.slot_floats;
        float* tmp = yt + b.y_floats;
        const int64_t t_stride = b.max_panels * mr * nr; // one sliver's T
        for (int64_t px = 0; px < P; ++px) {
          float* row = yt + px * ldy;
          for (int64_t q = 0; q < kn; ++q)
            row[q] = bias != nullptr ? bias[k0 + q] : 0.0f;
          std::fill(row + kn, row + ldy, 0.0f);
        }
        for (int64_t ti = 0; ti < taps; ++ti) {
          const Tap& t = b.taps[static_cast<size_t>(ti)];
          const float* at = a + t.a_off;
          for (int64_t c0 = 0; c0 < b.cg; c0 += kGemmKc) {
            const int64_t kc = std::min(kGemmKc, b.cg - c0);
            for (int64_t jj = 0; jj < nj; ++jj) {
              const float* bb = wtg + (((j0 + jj) * taps + ti) * b.cg + c0) * nr;
              float* tj = tmp + jj * t_stride;
              for (int64_t q = 0; q < t.panels; ++q)
                gk.tile(kc, at + q * mr * b.cg + c0 * mr, bb, nr, tj + q * mr * nr, nr, c0 > 0, kZeros);
            }
          }
          // T's rows of the box's pixels into Y^T, in box order.
          int64_t i = 0;
          for (int64_t d = t.lo[0]; d < t.hi[0]; ++d)
            for (int64_t h = t.lo[1]; h < t.hi[1]; ++h)
              for (int64_t w = t.lo[2]; w < t.hi[2]; ++w, ++i) {
                float* row = yt + ((d * b.out[1] + h) * b.out[2] + w) * ldy;
                for (int64_t jj = 0; jj < nj; ++jj) {
                  const float* tr = tmp + jj * t_stride + i * nr;
                  float* yr = row + jj * nr;
                  for (int q = 0; q < nr; ++q)
                    yr[q] += tr[q];
                }
              }
        }
        for (int64_t q = 0; q < kn; ++q) {
          float* yk = yg + (k0 + q) * P;
          for (int64_t px = 0; px < P; ++px)
            yk[px] = yt[px * ldy + q];
        }
      };
      pool.parallel_for(b.chunks, chunk);
    }
  return Status::ok();
}

} // namespace convarith::detail
