// host/cpu/cpu_amx.cpp — "cpu_amx_bf16": bf16 convolution on Intel AMX tiles with fp32 accumulation.
//
// Implicit GEMM per (image, group): rows = output pixels, columns = output channels of the group, depth =
// taps x C/g (tap-major, channels contiguous: a channels-last row of x per tap), padded to 32. The filter is
// packed once per run into AMX's pair-interleaved B layout, 32 output channels per panel ([depth / 2][32][2]);
// each task gathers the im2col rows of up to `rows` output pixels (zeros for padding and past the last pixel)
// and multiplies them by its panels, 32 x 32 outputs at a time in four 16 x 16 fp32 tiles (TDPBF16PS), then
// applies the epilogue in fp32 and rounds to bf16 (round to nearest even).
//
// TDPBF16PS treats subnormal inputs as zero and flushes subnormal results. Products of two bf16 values are
// exact in fp32, so where no subnormal can arise the tiles compute exactly what sequential fp32 accumulation
// in k order computes (the scalar model below, bit for bit). A run checks that first: every x and w finite, and
// the smallest nonzero |x| and |w| such that every nonzero product, partial sum and total is at least 2^-126
// (bf16 values are multiples of 2^(e-7), so products are multiples of 2^(ex+ew-14): ex + ew >= -112). Otherwise
// (Inf, NaN, subnormals, tiny values) the row says so and the caller (cpu_algorithms.cpp) runs cpu_gemm.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cpu/cpu_ops.hpp"
#include "cpu/thread_pool.hpp"
#include "numeric.cuh"

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__) && defined(__linux__)
#define CONVARITH_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace convarith::detail {
namespace {

constexpr int64_t kDepthStep = 32; // bf16 per tile row (64 bytes)
constexpr int64_t kPanelCols = 32; // output channels per B panel: two 16-column tiles
constexpr int64_t kMicroRows = 32; // output pixels per micro block: two 16-row tiles
constexpr int64_t kARowsBudgetBytes = 256 * 1024;
constexpr int64_t kMaxDepth = int64_t{1} << 20; // padded taps x C/g: one A row stays a few MiB at most

std::atomic<bool> g_emulate{false};
std::atomic<uint64_t> g_fallbacks{0};

struct Hardware {
  bool ok = false;
  std::string reason;
};

const Hardware& hardware() {
  static const Hardware h = [] {
    Hardware r;
    const char* off = std::getenv("CONVARITH_DISABLE_AMX");
    if (off != nullptr && *off != '\0' && std::string(off) != "0") {
      r.reason = "AMX is disabled by CONVARITH_DISABLE_AMX";
      return r;
    }
#ifdef CONVARITH_AMX
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || (d & (1u << 24)) == 0 || (d & (1u << 22)) == 0) {
      r.reason = "this CPU has no AMX-BF16 (cpuid leaf 7: AMX-TILE and AMX-BF16 not both set)";
      return r;
    }
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __get_cpuid(1, &a1, &b1, &c1, &d1);
    unsigned lo = 0, hi = 0;
    if ((c1 & (1u << 27)) != 0)
      __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & (3u << 17)) != (3u << 17)) {
      r.reason = "the OS does not enable the AMX tile state (XCR0 bits 17-18)";
      return r;
    }
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    if (syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) != 0) {
      r.reason = "the OS refused the AMX tile data permission (arch_prctl ARCH_REQ_XCOMP_PERM)";
      return r;
    }
    r.ok = true;
#else
    r.reason = "AMX needs an x86-64 Linux build";
#endif
    return r;
  }();
  return h;
}

struct Blocking {
  int64_t n = 0, c = 0, k = 0, groups = 1, cg = 1, kg = 1;
  int64_t in[3]{1, 1, 1}, out[3]{1, 1, 1}, ker[3]{1, 1, 1}, stride[3]{1, 1, 1}, dil[3]{1, 1, 1}, pad[3]{0, 0, 0};
  int64_t S = 1, P = 1, taps = 1;
  int64_t depth = 0;  // taps * cg
  int64_t dpad = 0;   // depth rounded up to 32
  int64_t panels = 0; // per group
  int64_t rows = 0;   // output pixels per task (a multiple of 32)
  int64_t pixel_blocks = 0, col_splits = 1, panels_per_split = 0;
  int64_t tasks = 0;
  bool convert_x = false; // x is not channels-last: transposed into the workspace first
  int slots = 1;
  // Byte offsets from the 64-byte aligned workspace start.
  int64_t x_off = 0, b_off = 0, bias_off = 0, a_off = 0, a_slot = 0, total = 0;
};

int64_t align64(int64_t v) {
  return sat_mul(ceil_div(v, 64), 64);
}

Blocking make_blocking(const ConvProblem& p, int slots) {
  Blocking b;
  b.n = p.n(), b.c = p.c(), b.k = p.k(), b.groups = p.groups();
  b.cg = b.c / b.groups, b.kg = b.k / b.groups;
  for (int j = 0; j < 3; ++j) {
    const AxisParams& ax = p.axis3(j);
    b.in[j] = ax.i, b.out[j] = p.out3(j), b.ker[j] = ax.k, b.stride[j] = ax.s;
    b.dil[j] = ax.d, b.pad[j] = ax.p_lo;
  }
  b.S = p.in_spatial(), b.P = p.out_spatial(), b.taps = p.kernel_spatial();
  b.depth = sat_mul(b.taps, b.cg);
  b.dpad = round_up(b.depth, kDepthStep);
  b.panels = ceil_div(b.kg, kPanelCols);
  const int64_t row_bytes = sat_mul(b.dpad, 2);
  b.rows = std::clamp<int64_t>(kARowsBudgetBytes / std::max<int64_t>(1, row_bytes) / kMicroRows * kMicroRows,
                               kMicroRows, 256);
  b.rows = std::min(b.rows, round_up(std::max<int64_t>(1, b.P), kMicroRows));
  b.pixel_blocks = ceil_div(std::max<int64_t>(1, b.P), b.rows);
  const int64_t base_tasks = sat_mul(sat_mul(b.n, b.groups), b.pixel_blocks);
  b.slots = std::max(1, slots);
  b.col_splits = 1;
  if (base_tasks < 2 * b.slots)
    b.col_splits = std::clamp<int64_t>(ceil_div(2 * b.slots, std::max<int64_t>(1, base_tasks)), 1, b.panels);
  b.panels_per_split = ceil_div(b.panels, b.col_splits);
  b.col_splits = ceil_div(b.panels, b.panels_per_split);
  b.tasks = sat_mul(base_tasks, b.col_splits);
  b.convert_x = p.tensor(TensorId::kX).layout != Layout::kNHWC && !(b.c == 1 || b.S == 1);
  int64_t off = 0;
  b.x_off = off;
  if (b.convert_x)
    off = align64(sat_add(off, sat_mul(p.x_elements(), 2)));
  b.b_off = off;
  off = align64(sat_add(off, sat_mul(sat_mul(sat_mul(b.groups, b.panels), b.dpad), kPanelCols * 2)));
  b.bias_off = off;
  off = align64(sat_add(off, sat_mul(b.k, 4)));
  b.a_off = off;
  b.a_slot = align64(sat_mul(b.rows, row_bytes));
  off = sat_add(off, sat_mul(b.a_slot, b.slots));
  b.total = off;
  return b;
}

// The exponent field of the smallest nonzero |v| (255: none nonzero) and whether any is Inf/NaN, over n values.
struct Scan {
  int min_exp = 255;
  bool special = false;
};
CONVARITH_CPU_INLINE void scan_bf16_body(const uint16_t* v, int64_t n, int* min_exp, bool* special) {
  uint16_t lo = 255, top = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t u = v[i];
    const uint16_t e = static_cast<uint16_t>((u >> 7) & 0xffu);
    top = std::max(top, e);
    lo = std::min(lo, (u & 0x7fffu) != 0 ? e : uint16_t{255});
  }
  *min_exp = std::min(*min_exp, static_cast<int>(lo));
  *special = *special || top == 0xffu;
}
CONVARITH_CPU_MULTIVERSION(scan_bf16, (const uint16_t* v, int64_t n, int* min_exp, bool* special),
                           (v, n, min_exp, special))

// The scalar model of the tile product: c[32][32] = A (32 rows, lda) x B panel, k ascending, fp32.
void micro_model(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t dpad, float* c) {
  for (int64_t r = 0; r < kMicroRows; ++r)
    for (int64_t j = 0; j < kPanelCols; ++j) {
      float acc = 0.0f;
      for (int64_t kk = 0; kk < dpad; ++kk) {
        const float av = kernels::to_float(kernels::bf16{a[r * lda + kk]});
        const float bv = kernels::to_float(kernels::bf16{b[(kk / 2) * (kPanelCols * 2) + j * 2 + (kk % 2)]});
        acc += av * bv;
      }
      c[r * kPanelCols + j] = acc;
    }
}

#ifdef CONVARITH_AMX
struct TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14]{};
  uint16_t colsb[16]{};
  uint8_t rows[16]{};
};
// Tiles 0-3: the 2 x 2 fp32 accumulators; 4-5: A (rows 0-15, 16-31); 6-7: B (columns 0-15, 16-31).
// A namespace-scope constant: GCC 12 drops stores to a local configuration as dead (ldtilecfg's builtin does not
// tell it that all 64 bytes are read), which loads a configuration of empty tiles.
constexpr TileConfig make_tile_config() {
  TileConfig cfg;
  for (int t = 0; t < 8; ++t)
    cfg.rows[t] = 16, cfg.colsb[t] = 64;
  return cfg;
}
alignas(64) const TileConfig kTileConfig = make_tile_config();
__attribute__((target("amx-tile,amx-bf16"))) void amx_configure() {
  _tile_loadconfig(&kTileConfig);
}
__attribute__((target("amx-tile,amx-bf16"))) void amx_release() {
  _tile_release();
}
__attribute__((target("amx-tile,amx-bf16"))) void micro_amx(const uint16_t* a, int64_t lda, const uint16_t* b,
                                                            int64_t dpad, float* c) {
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  const int64_t a_stride = lda * 2;
  for (int64_t kk = 0; kk < dpad; kk += kDepthStep) {
    _tile_loadd(4, a + kk, a_stride);
    _tile_loadd(5, a + 16 * lda + kk, a_stride);
    const uint16_t* bp = b + kk * kPanelCols; // (kk / 2) pair rows of 64 bf16
    _tile_loadd(6, bp, kPanelCols * 4);
    _tile_loadd(7, bp + 32, kPanelCols * 4);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, kPanelCols * 4);
  _tile_stored(1, c + 16, kPanelCols * 4);
  _tile_stored(2, c + 16 * kPanelCols, kPanelCols * 4);
  _tile_stored(3, c + 16 * kPanelCols + 16, kPanelCols * 4);
}
#endif

struct Strides {
  int64_t a, b, sp;
};
Strides strides_of(const TensorDesc& t) {
  return {t.strides[0], t.rank > 1 ? t.strides[1] : 0, t.rank > 2 ? t.strides[static_cast<size_t>(t.rank - 1)] : 0};
}

float load_float(DataType dt, const void* base, int64_t off) {
  if (dt == DataType::kBF16)
    return kernels::to_float(static_cast<const kernels::bf16*>(base)[off]);
  if (dt == DataType::kF16)
    return kernels::to_float(static_cast<const kernels::f16*>(base)[off]);
  return static_cast<const float*>(base)[off];
}

} // namespace

void set_cpu_amx_emulation(bool on) {
  g_emulate.store(on);
}
bool cpu_amx_emulation() {
  return g_emulate.load();
}
uint64_t cpu_amx_fallbacks() {
  return g_fallbacks.load();
}
bool cpu_amx_hardware() {
  return hardware().ok;
}

Status cpu_amx_supports(const ConvProblem& p) {
  if (!hardware().ok && !g_emulate.load())
    return not_supported("cpu_amx_bf16: " + hardware().reason);
  if (p.op() != Op::kConv)
    return not_supported("cpu_amx_bf16 runs convolutions only, not " + std::string(op_name(p.op())));
  if (p.dtype(TensorId::kX) != DataType::kBF16 || p.dtype(TensorId::kW) != DataType::kBF16)
    return not_supported("cpu_amx_bf16 takes bf16 x and w; x is " + std::string(dtype_name(p.dtype(TensorId::kX))) +
                         ", w is " + dtype_name(p.dtype(TensorId::kW)));
  const int64_t depth = sat_mul(p.kernel_spatial(), p.c() / p.groups());
  if (depth > kMaxDepth)
    return not_supported("cpu_amx_bf16: the GEMM depth taps x C/g = " + std::to_string(p.kernel_spatial()) + " x " +
                         std::to_string(p.c() / p.groups()) + " passes its limit of " + std::to_string(kMaxDepth));
  return Status::ok();
}

std::shared_ptr<const void> cpu_amx_blocking(const ConvProblem& p) {
  return std::make_shared<Blocking>(make_blocking(p, ThreadPool::instance().max_slots()));
}

size_t cpu_amx_workspace(const ConvProblem& p) {
  if (p.n() == 0)
    return 0;
  const Blocking b = make_blocking(p, ThreadPool::instance().max_slots());
  const int64_t bytes = sat_add(b.total, static_cast<int64_t>(kWorkspaceSlack));
  return bytes == INT64_MAX ? SIZE_MAX : static_cast<size_t>(bytes);
}

double cpu_amx_cost_us(const ConvProblem& p, int threads) {
  const Blocking b = make_blocking(p, threads);
  // Padded products at a measured ~0.5 TFLOP/s per core for the tiles (Xeon with AMX, 2-core KVM guest), the
  // gather at ~4 GB/s per core of A bytes, the filter pack at ~2 GB/s.
  const double products = 2.0 * static_cast<double>(b.n) * b.groups * round_up(std::max<int64_t>(1, b.P), kMicroRows) *
                          static_cast<double>(b.panels * kPanelCols) * static_cast<double>(b.dpad);
  const double gather = static_cast<double>(b.n) * b.groups * round_up(std::max<int64_t>(1, b.P), kMicroRows) *
                        static_cast<double>(b.dpad) * 2.0 * static_cast<double>(b.col_splits);
  const double pack = static_cast<double>(b.groups) * b.panels * b.dpad * kPanelCols * 2.0;
  const double t = std::max(1, threads);
  return 8.0 + products / (0.5e12 * t) * 1e6 + gather / (4e9 * t) * 1e6 + pack / 2e9 * 1e6;
}

Status cpu_amx_run(const convarith::KernelArgs& args, bool* needs_fallback) {
  *needs_fallback = false;
  const ConvProblem& p = *args.problem;
  if (p.n() == 0)
    return Status::ok();
  if (args.x == nullptr || args.w == nullptr || args.y == nullptr)
    return invalid_argument(std::string("cpu_amx_bf16: ") +
                            (args.x == nullptr   ? "x"
                             : args.w == nullptr ? "w"
                                                 : "y") +
                            " is null");
  std::shared_ptr<const void> own;
  const Blocking* bp = static_cast<const Blocking*>(args.prepared);
  if (bp == nullptr) {
    own = cpu_amx_blocking(p);
    bp = static_cast<const Blocking*>(own.get());
  }
  const Blocking& b = *bp;
  const size_t needed = static_cast<size_t>(b.total) + kWorkspaceSlack;
  if (args.workspace == nullptr || args.workspace_bytes < needed)
    return invalid_argument("cpu_amx_bf16: workspace of " + std::to_string(args.workspace_bytes) +
                            " bytes is smaller than the " + std::to_string(needed) +
                            " bytes this problem needs (Plan::workspace_bytes())");
  ThreadPool& pool = ThreadPool::instance();
  if (pool.max_slots() > b.slots)
    return internal_error("cpu_amx_bf16: the plan was prepared for " + std::to_string(b.slots) +
                          " threads, the pool has " + std::to_string(pool.max_slots()));
  auto* base = reinterpret_cast<unsigned char*>(aligned_workspace(args.workspace));
  const TensorDesc& xt = p.tensor(TensorId::kX);
  const TensorDesc& wt = p.tensor(TensorId::kW);
  const Strides xs = strides_of(xt), ws = strides_of(wt);
  const uint16_t* x = static_cast<const uint16_t*>(args.x);
  const uint16_t* w = static_cast<const uint16_t*>(args.w);

  // 1. The filter into B panels: depth index kk = tap * cg + c reads w at src_off[kk] from its output channel's
  // start (either filter layout); 32 output channels at a time, the panel written in order. Then scanned.
  std::vector<Scan> wscan(static_cast<size_t>(b.slots)), xscan(static_cast<size_t>(b.slots));
  uint16_t* packed = reinterpret_cast<uint16_t*>(base + b.b_off);
  const int64_t panel_elems = b.dpad * kPanelCols;
  {
    std::vector<int64_t> src_off(static_cast<size_t>(b.dpad), -1);
    for (int64_t kk = 0; kk < b.depth; ++kk)
      src_off[static_cast<size_t>(kk)] = (kk % b.cg) * ws.b + (kk / b.cg) * ws.sp;
    const int64_t* off = src_off.data();
    const bool contiguous = ws.b == 1 && ws.sp == b.cg;
    constexpr uint32_t kZeroPair = 0;
    auto task = [&](int64_t t, int) {
      const int64_t g = t / b.panels, pn = t % b.panels;
      uint16_t* dst = packed + t * panel_elems;
      const int64_t cols = std::min(kPanelCols, b.kg - pn * kPanelCols);
      const uint16_t* src[kPanelCols];
      for (int64_t j = 0; j < kPanelCols; ++j)
        src[j] = j < cols ? w + (g * b.kg + pn * kPanelCols + j) * ws.a : nullptr;
      int64_t kk = 0;
      if (contiguous) // channels-last filter: depth pairs are adjacent in w, moved as 32-bit words
        for (; kk + 1 < b.depth; kk += 2) {
          uint16_t* d = dst + kk * kPanelCols;
          for (int64_t j = 0; j < cols; ++j)
            std::memcpy(d + 2 * j, src[j] + kk, 4);
          for (int64_t j = cols; j < kPanelCols; ++j)
            std::memcpy(d + 2 * j, &kZeroPair, 4);
        }
      for (; kk < b.dpad; kk += 2) {
        uint16_t* d = dst + kk * kPanelCols;
        const int64_t o0 = off[kk], o1 = off[kk + 1];
        for (int64_t j = 0; j < kPanelCols; ++j) {
          d[2 * j] = j < cols && o0 >= 0 ? src[j][o0] : uint16_t{0};
          d[2 * j + 1] = j < cols && o1 >= 0 ? src[j][o1] : uint16_t{0};
        }
      }
    };
    pool.parallel_for(b.groups * b.panels, TaskRef(task));
    const int64_t chunk = int64_t{1} << 16, total = p.w_elements();
    auto scan = [&](int64_t t, int slot) {
      Scan& sc = wscan[static_cast<size_t>(slot)];
      scan_bf16(w + t * chunk, std::min(chunk, total - t * chunk), &sc.min_exp, &sc.special);
    };
    pool.parallel_for(ceil_div(total, chunk), TaskRef(scan));
  }
  // 2. x channels-last (transposed when it is not), scanned.
  const uint16_t* xcl = x;
  int64_t xcl_n = xs.a, xcl_sp = xs.sp; // element strides of the channels-last view; channels contiguous
  if (b.convert_x) {
    uint16_t* dst = reinterpret_cast<uint16_t*>(base + b.x_off);
    auto task = [&](int64_t t, int slot) {
      const int64_t n = t / b.S, sp = t % b.S;
      const uint16_t* src = x + n * xs.a + sp * xs.sp;
      uint16_t* d = dst + (n * b.S + sp) * b.c;
      for (int64_t c = 0; c < b.c; ++c)
        d[c] = src[c * xs.b];
      Scan& s = xscan[static_cast<size_t>(slot)];
      scan_bf16(d, b.c, &s.min_exp, &s.special);
    };
    pool.parallel_for(b.n * b.S, TaskRef(task));
    xcl = dst, xcl_n = b.S * b.c, xcl_sp = b.c;
  } else {
    // In place: channels-last, or C = 1, or one pixel per image (channels then contiguous in either layout).
    if (b.c > 1 && xs.b != 1)
      return internal_error("cpu_amx_bf16: x is not channels-last");
    xcl_sp = b.c;
    const int64_t chunk = int64_t{1} << 16, total = p.x_elements();
    auto task = [&](int64_t t, int slot) {
      Scan& s = xscan[static_cast<size_t>(slot)];
      scan_bf16(x + t * chunk, std::min(chunk, total - t * chunk), &s.min_exp, &s.special);
    };
    pool.parallel_for(ceil_div(total, chunk), TaskRef(task));
  }
  Scan wx, xx;
  for (const Scan& s : wscan)
    wx.min_exp = std::min(wx.min_exp, s.min_exp), wx.special = wx.special || s.special;
  for (const Scan& s : xscan)
    xx.min_exp = std::min(xx.min_exp, s.min_exp), xx.special = xx.special || s.special;
  const bool any_zero_side = wx.min_exp == 255 || xx.min_exp == 255; // all products zero
  if (wx.special || xx.special || (!any_zero_side && wx.min_exp + xx.min_exp < 142)) {
    *needs_fallback = true;
    g_fallbacks.fetch_add(1);
    return Status::ok();
  }

  // 3. Bias as f32.
  float* biasf = reinterpret_cast<float*>(base + b.bias_off);
  const bool has_bias = args.bias != nullptr;
  if (has_bias)
    for (int64_t k = 0; k < b.k; ++k)
      biasf[k] = load_float(p.dtype(TensorId::kBias), args.bias, k);

  // 4. The tasks: (image, group, pixel block, column split).
  const Epilogue& e = p.epilogue();
  const kernels::EpilogueParams ep{static_cast<int>(e.activation), e.alpha, e.beta,
                                   e.activation == Activation::kClip ? e.clip_min : e.leaky_alpha, e.clip_max};
  const bool residual = e.has_residual();
  const TensorDesc& yt = p.tensor(TensorId::kY);
  const TensorDesc& zt = p.tensor(TensorId::kZ);
  const Strides ys = strides_of(yt), zs = residual ? strides_of(zt) : Strides{0, 0, 0};
  auto* y = static_cast<kernels::bf16*>(args.y);
  const bool use_amx = hardware().ok && !g_emulate.load();
  const int64_t plane01 = b.out[1] * b.out[2];
  auto task = [&](int64_t t, int slot) {
    const int64_t cs = t % b.col_splits;
    int64_t rest = t / b.col_splits;
    const int64_t pb = rest % b.pixel_blocks;
    rest /= b.pixel_blocks;
    const int64_t g = rest % b.groups, n = rest / b.groups;
    const int64_t m0 = pb * b.rows, mcount = std::min(b.rows, b.P - m0);
    const int64_t mpad = round_up(mcount, kMicroRows);
    uint16_t* a = reinterpret_cast<uint16_t*>(base + b.a_off + static_cast<int64_t>(slot) * b.a_slot);
    // Gather: row r = pixel m0 + r, depth tap * cg + c.
    for (int64_t r = 0; r < mpad; ++r) {
      uint16_t* row = a + r * b.dpad;
      if (r >= mcount) {
        std::memset(row, 0, static_cast<size_t>(b.dpad) * 2);
        continue;
      }
      const int64_t m = m0 + r;
      const int64_t o0 = m / plane01, o1 = (m / b.out[2]) % b.out[1], o2 = m % b.out[2];
      const uint16_t* img = xcl + n * xcl_n + g * b.cg;
      int64_t tap = 0;
      for (int64_t t0 = 0; t0 < b.ker[0]; ++t0) {
        const int64_t i0 = o0 * b.stride[0] - b.pad[0] + t0 * b.dil[0];
        for (int64_t t1 = 0; t1 < b.ker[1]; ++t1) {
          const int64_t i1 = o1 * b.stride[1] - b.pad[1] + t1 * b.dil[1];
          for (int64_t t2 = 0; t2 < b.ker[2]; ++t2, ++tap) {
            const int64_t i2 = o2 * b.stride[2] - b.pad[2] + t2 * b.dil[2];
            uint16_t* dst = row + tap * b.cg;
            if (i0 < 0 || i0 >= b.in[0] || i1 < 0 || i1 >= b.in[1] || i2 < 0 || i2 >= b.in[2]) {
              std::memset(dst, 0, static_cast<size_t>(b.cg) * 2);
            } else {
              const uint16_t* src = img + ((i0 * b.in[1] + i1) * b.in[2] + i2) * xcl_sp;
              if (b.cg == 1)
                dst[0] = src[0];
              else
                std::memcpy(dst, src, static_cast<size_t>(b.cg) * 2);
            }
          }
        }
      }
      std::memset(row + b.depth, 0, static_cast<size_t>(b.dpad - b.depth) * 2);
    }
#ifdef CONVARITH_AMX
    if (use_amx)
      amx_configure();
#endif
    alignas(64) float cbuf[kMicroRows * kPanelCols];
    const int64_t pn0 = cs * b.panels_per_split, pn1 = std::min(b.panels, pn0 + b.panels_per_split);
    for (int64_t pn = pn0; pn < pn1; ++pn) {
      const uint16_t* panel = packed + (g * b.panels + pn) * panel_elems;
      const int64_t cols = std::min(kPanelCols, b.kg - pn * kPanelCols);
      for (int64_t r0 = 0; r0 < mpad; r0 += kMicroRows) {
#ifdef CONVARITH_AMX
        if (use_amx)
          micro_amx(a + r0 * b.dpad, b.dpad, panel, b.dpad, cbuf);
        else
#endif
          micro_model(a + r0 * b.dpad, b.dpad, panel, b.dpad, cbuf);
        const int64_t rows = std::min(kMicroRows, mcount - r0);
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t pix = m0 + r0 + r;
          for (int64_t j = 0; j < cols; ++j) {
            const int64_t kglob = g * b.kg + pn * kPanelCols + j;
            const float zv = residual ? load_float(zt.dtype, args.z, n * zs.a + kglob * zs.b + pix * zs.sp) : 0.0f;
            const float v = kernels::apply_epilogue(ep, cbuf[r * kPanelCols + j], has_bias ? biasf[kglob] : 0.0f, zv);
            y[n * ys.a + kglob * ys.b + pix * ys.sp] = kernels::from_float<kernels::bf16>(v);
          }
        }
      }
    }
#ifdef CONVARITH_AMX
    if (use_amx)
      amx_release();
#endif
  };
  pool.parallel_for(b.tasks, TaskRef(task));
  return Status::ok();
}

} // namespace convarith::detail
