// host/cpu/cpu_algorithms.cpp — the CPU rows of the algorithm table, in `auto` preference order, and what they
// share: every dtype, layout and epilogue around the f32 NC[D]HW cores (cpu_conv.cpp, cpu_pool.cpp).
//
// A problem that is f32 NC[D]HW with the identity epilogue runs the core on the caller's buffers directly (the
// path the cores are tuned for, unchanged). Any other problem is prepared as the same problem in f32 NC[D]HW
// (the "inner" problem): x and w are converted (f16/bf16 -> f32 exactly) and transposed into f32 NC[D]HW
// buffers in the workspace when they are not f32 NC[D]HW already; the core writes an f32 NC[D]HW result (into
// y itself when y is f32 NC[D]HW and there is no residual that could alias it, else into the workspace); then
// one pass applies the epilogue y = act(alpha * acc + bias + beta * z) (kernels/numeric.cuh, the routine the
// CUDA kernels apply too) and stores in y's dtype (round to nearest even) and layout. Accumulation is fp32
// throughout. The conversions are the only extra cost: each touches every element of its tensor once.
#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "cpu/cpu_ops.hpp"
#include "cpu/thread_pool.hpp"
#include "numeric.cuh"
#include "row.hpp"

namespace convarith {

const std::string& cpu_model_name() {
  static const std::string model = [] {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("model name", 0) == 0) {
        const size_t colon = line.find(':');
        if (colon != std::string::npos && line.find_first_not_of(' ', colon + 1) != std::string::npos)
          return line.substr(line.find_first_not_of(' ', colon + 1));
      }
    return std::string("unknown CPU");
  }();
  return model;
}

DeviceInfo cpu_device_info() {
  DeviceInfo d;
  d.device = Device::kCpu;
  d.name = "cpu";
  d.cpu_threads = detail::ThreadPool::instance().max_slots();
  return d;
}

namespace detail {

Status check_cpu_args(const CpuArgs& args, const char* algorithm, size_t workspace_needed) {
  const ConvProblem& p = *args.problem;
  const std::string who(algorithm);
  if (args.x == nullptr)
    return invalid_argument(who + ": x is null (" + std::to_string(p.x_elements()) + " floats expected)");
  if (!is_pool(p.op()) && args.w == nullptr)
    return invalid_argument(who + ": w is null (" + std::to_string(p.w_elements()) + " floats expected)");
  if (args.y == nullptr)
    return invalid_argument(who + ": y is null (" + std::to_string(p.y_elements()) + " floats expected)");
  if (workspace_needed > 0 && (args.workspace == nullptr || args.workspace_bytes < workspace_needed))
    return invalid_argument(who + ": workspace of " + std::to_string(args.workspace_bytes) + " bytes at " +
                            (args.workspace == nullptr ? "null" : "a non-null pointer") + " is smaller than the " +
                            std::to_string(workspace_needed) + " bytes this problem needs (Plan::workspace_bytes())");
  return Status::ok();
}

float* aligned_workspace(void* workspace) {
  const auto address = reinterpret_cast<uintptr_t>(workspace);
  const uintptr_t aligned = (address + kWorkspaceSlack - 1) / kWorkspaceSlack * kWorkspaceSlack;
  return reinterpret_cast<float*>(aligned);
}

Result<std::shared_ptr<float>> aligned_floats(int64_t n, const char* what) {
  const int64_t bytes = sat_mul(std::max<int64_t>(n, 1), static_cast<int64_t>(sizeof(float)));
  void* p =
      bytes == INT64_MAX ? nullptr : ::operator new(static_cast<size_t>(bytes), std::align_val_t(64), std::nothrow);
  if (p == nullptr)
    return out_of_range(std::string("cannot allocate ") + std::to_string(n) + " floats for " + what);
  return std::shared_ptr<float>(static_cast<float*>(p), [](float* q) { ::operator delete(q, std::align_val_t(64)); });
}

namespace {

using Core = Status (*)(const CpuArgs&);
using CoreWorkspace = size_t (*)(const ConvProblem&);
using CoreBlocking = std::shared_ptr<const void> (*)(const ConvProblem&);
using CoreWeights = Result<PreparedWeights> (*)(const ConvProblem&, const void* blocking, const float* w);

// What a CPU row prepares once per plan.
struct CpuPlan {
  Core core = nullptr;
  bool direct = true; // f32 NC[D]HW, identity epilogue: the core runs on the caller's buffers
  ConvProblem inner;  // the f32 NC[D]HW identity-epilogue twin (when !direct)
  bool convert_x = false, convert_w = false, temp_y = false, convert_bias = false;
  // Byte offsets into the workspace (each 64-byte aligned): converted x, w, bias, the f32 result, the core's.
  size_t x_off = 0, w_off = 0, b_off = 0, y_off = 0, core_off = 0;
  size_t core_workspace = 0;
  std::shared_ptr<const void> blocking; // the core's blocking for `direct ? problem : inner`, once per plan
  CoreWeights core_weights = nullptr;   // the core's form of constant weights (nullptr: it has none)
  // cpu_gemm's channels-last depthwise path (dw_nhwc_eligible): x, z and y read and written as they are, the
  // weights as f32 [tap][C] and the bias as f32 (at wt_off and bias_off of the workspace, or prepared once).
  bool dw_nhwc = false;
  size_t wt_off = 0, bias_off = 0;
};

// Constant weights of a run_cpu row (PlanOptions::weights): w as f32 NC[D]HW (converted once, or the plan's copy
// itself when it is f32 NC[D]HW already) and the core's own form of them.
struct CpuWeights {
  std::shared_ptr<float> converted; // when w is not f32 NC[D]HW
  const float* w = nullptr;
  PreparedWeights core;
};

bool f32_nchw(const TensorDesc& t) {
  return t.dtype == DataType::kF32 && t.layout == Layout::kNCHW;
}

size_t align64(size_t v) {
  return (v + 63) / 64 * 64;
}

// Element (a, b, s) of a tensor with logical dims (d0, d1, spatial...) sits at a*st0 + b*st1 + s*st_sp for a
// flat spatial index s: in both layouts the spatial axes are contiguous relative to each other.
struct Strides3 {
  int64_t a, b, sp;
};
Strides3 strides3(const TensorDesc& t) {
  return {t.strides[0], t.rank > 1 ? t.strides[1] : 0, t.rank > 2 ? t.strides[static_cast<size_t>(t.rank - 1)] : 0};
}

template <typename T> float load_as_float(const void* base, int64_t off) {
  return kernels::to_float(static_cast<const T*>(base)[off]);
}

// The tiles the conversions between a tensor's layout and f32 [d0][d1][S] go through: kTileB of d1 by kTileS of S.
constexpr int64_t kTileB = 16, kTileS = 128;

// dst (f32, [d0][d1][S]) = src converted; a task per (a, tile of b's and s's). Both sides are read and written
// along their contiguous axis: a source with unit spatial stride (NC[D]HW) b outer and s inner, a channels-last
// one s outer and b inner (its kTileB destination rows stay in L1 across the tile's s's).
template <typename T> void pack_to_f32_nchw(const TensorDesc& t, const void* src, float* dst) {
  const int64_t d0 = t.dims[0], d1 = t.rank > 1 ? t.dims[1] : 1;
  const int64_t S = t.elements / std::max<int64_t>(1, d0 * d1);
  const Strides3 st = strides3(t);
  const int64_t bblocks = (d1 + kTileB - 1) / kTileB, sblocks = (S + kTileS - 1) / kTileS;
  const bool rows = st.sp == 1 || S == 1;
  const T* s = static_cast<const T*>(src);
  auto task = [&](int64_t task_id, int) {
    const int64_t a = task_id / (bblocks * sblocks), bt = task_id / sblocks % bblocks, stile = task_id % sblocks;
    const int64_t b0 = bt * kTileB, b1 = std::min(d1, b0 + kTileB);
    const int64_t s0 = stile * kTileS, s1 = std::min(S, s0 + kTileS);
    if (rows) {
      for (int64_t b = b0; b < b1; ++b) {
        const T* from = s + a * st.a + b * st.b;
        float* to = dst + (a * d1 + b) * S;
        for (int64_t sp = s0; sp < s1; ++sp)
          to[sp] = kernels::to_float(from[sp]);
      }
    } else {
      for (int64_t sp = s0; sp < s1; ++sp)
        for (int64_t b = b0; b < b1; ++b)
          dst[(a * d1 + b) * S + sp] = kernels::to_float(s[a * st.a + b * st.b + sp * st.sp]);
    }
  };
  ThreadPool::instance().parallel_for(d0 * bblocks * sblocks, TaskRef(task));
}

void pack(const TensorDesc& t, const void* src, float* dst) {
  switch (t.dtype) {
  case DataType::kF16:
    return pack_to_f32_nchw<kernels::f16>(t, src, dst);
  case DataType::kBF16:
    return pack_to_f32_nchw<kernels::bf16>(t, src, dst);
  default:
    return pack_to_f32_nchw<float>(t, src, dst);
  }
}

float load_any(DataType dt, const void* base, int64_t off) {
  switch (dt) {
  case DataType::kF16:
    return load_as_float<kernels::f16>(base, off);
  case DataType::kBF16:
    return load_as_float<kernels::bf16>(base, off);
  default:
    return load_as_float<float>(base, off);
  }
}

// y (its dtype and layout) = epilogue(acc (f32 NC[D]HW), bias (f32, may be null), z (z's dtype and layout)), a
// task per (image, tile of channels and pixels): z is read into the tile along its contiguous axis, the epilogue
// runs along acc's rows, and the tile is stored along y's contiguous axis (channels-last: pixel outer).
template <typename T, int kAct>
void epilogue_store_as(const ConvProblem& p, const float* acc, const float* bias, const void* z, void* y) {
  const TensorDesc& yt = p.tensor(TensorId::kY);
  const TensorDesc& zt = p.tensor(TensorId::kZ);
  const Epilogue& e = p.epilogue();
  const kernels::EpilogueParams ep{static_cast<int>(e.activation), e.alpha, e.beta,
                                   e.activation == Activation::kClip ? e.clip_min : e.leaky_alpha, e.clip_max};
  const int64_t n = yt.dims[0], k = yt.dims[1], S = p.out_spatial();
  const Strides3 ys = strides3(yt);
  const Strides3 zs = zt.rank > 0 ? strides3(zt) : Strides3{0, 0, 0};
  const bool residual = e.has_residual();
  const int64_t bblocks = (k + kTileB - 1) / kTileB, sblocks = (S + kTileS - 1) / kTileS;
  const bool y_rows = ys.sp == 1 || S == 1, z_rows = zs.sp == 1 || S == 1;
  T* out = static_cast<T*>(y);
  auto task = [&](int64_t task_id, int) {
    const int64_t a = task_id / (bblocks * sblocks), bt = task_id / sblocks % bblocks, stile = task_id % sblocks;
    const int64_t b0 = bt * kTileB, b1 = std::min(k, b0 + kTileB);
    const int64_t s0 = stile * kTileS, s1 = std::min(S, s0 + kTileS), ns = s1 - s0;
    float tile[kTileB][kTileS];
    if (residual) {
      if (z_rows) {
        for (int64_t b = b0; b < b1; ++b)
          for (int64_t sp = s0; sp < s1; ++sp)
            tile[b - b0][sp - s0] = load_any(zt.dtype, z, a * zs.a + b * zs.b + sp * zs.sp);
      } else {
        for (int64_t sp = s0; sp < s1; ++sp)
          for (int64_t b = b0; b < b1; ++b)
            tile[b - b0][sp - s0] = load_any(zt.dtype, z, a * zs.a + b * zs.b + sp * zs.sp);
      }
    }
    for (int64_t b = b0; b < b1; ++b) {
      const float* row = acc + (a * k + b) * S + s0;
      const float bv = bias != nullptr ? bias[b] : 0.0f;
      float* t = tile[b - b0];
      for (int64_t i = 0; i < ns; ++i)
        t[i] = kernels::apply_epilogue_as<kAct>(ep, row[i], bv, residual ? t[i] : 0.0f);
    }
    if (y_rows) {
      for (int64_t b = b0; b < b1; ++b) {
        T* to = out + a * ys.a + b * ys.b + s0;
        for (int64_t i = 0; i < ns; ++i)
          to[i] = kernels::from_float<T>(tile[b - b0][i]);
      }
    } else {
      for (int64_t sp = s0; sp < s1; ++sp)
        for (int64_t b = b0; b < b1; ++b)
          out[a * ys.a + b * ys.b + sp * ys.sp] = kernels::from_float<T>(tile[b - b0][sp - s0]);
    }
  };
  ThreadPool::instance().parallel_for(n * bblocks * sblocks, TaskRef(task));
}

// The common activations with the activation known at compile time (no per-element switch), the rest at run time.
template <typename T>
void epilogue_store(const ConvProblem& p, const float* acc, const float* bias, const void* z, void* y) {
  switch (p.epilogue().activation) {
  case Activation::kIdentity:
    return epilogue_store_as<T, kernels::kActIdentity>(p, acc, bias, z, y);
  case Activation::kRelu:
    return epilogue_store_as<T, kernels::kActRelu>(p, acc, bias, z, y);
  default:
    return epilogue_store_as<T, kernels::kActAny>(p, acc, bias, z, y);
  }
}

ConvProblem inner_problem(const ConvProblem& p) {
  ProblemDesc d = p.resolved();
  d.dtype = DataType::kF32;
  d.x_dtype.reset();
  d.w_dtype.reset();
  d.bias_dtype.reset();
  d.z_dtype.reset();
  d.y_dtype.reset();
  d.layout = Layout::kNCHW;
  d.w_layout.reset();
  d.epilogue = Epilogue{};
  Result<ConvProblem> r = ConvProblem::make(d);
  return r ? *r : ConvProblem();
}

// ---- channels-last depthwise (cpu_gemm) ----------------------------------------------------------
// A depthwise layer (groups = C = K) with channels-last activations: converting x to f32 NC[D]HW and y back cost
// several times the convolution (MobileNetV2 dw384 at 14x14 in bf16: ~480 us against ~170 us for the f32 NCHW
// layer on the AMX Xeon). Here each output pixel's channels are a contiguous run in x, z and y: a task per output
// row (n, od, oh) sums, per pixel and chunk of channels, the taps inside the input in (t, r, s) order in fp32
// (x converted as it is loaded, the weights f32 [tap][C]), then applies the epilogue and stores in y's dtype. The
// padded taps are skipped (IEEE per product, as the direct loops). Deterministic; not the same bits as the NC[D]HW
// path (another order of the taps' sums): held to the same rule against the fp64 reference.
bool dw_nhwc_eligible(const ConvProblem& p) {
  if (p.op() != Op::kConv || p.groups() != p.c() || p.k() != p.c() || p.c() < 2)
    return false;
  const DataType t = p.dtype(TensorId::kX);
  const bool residual = p.epilogue().has_residual();
  return p.tensor(TensorId::kX).strides[1] == 1 && p.tensor(TensorId::kY).strides[1] == 1 &&
         p.dtype(TensorId::kY) == t && (!residual || p.dtype(TensorId::kZ) == t);
}

struct DwNhwc {
  const ConvProblem* p;
  const float* x;    // x's layout, f32
  const float* wt;   // [tap][C]
  const float* bias; // C floats or nullptr
  const void* z;     // with a residual: y's layout and dtype
  void* y;
  kernels::EpilogueParams ep;
  bool residual;
  std::array<int64_t, 4> xs, ys, zs; // (n, d, h, w) strides of x, y and z (nsp_strides)
};

// Tensor t's strides for (n, d, h, w) of the rank-3 view (a unit leading axis has stride 0).
std::array<int64_t, 4> nsp_strides(const ConvProblem& p, const TensorDesc& t) {
  std::array<int64_t, 4> s{t.strides[0], 0, 0, 0};
  for (int j = 0; j < p.rank(); ++j)
    s[static_cast<size_t>(kMaxSpatialRank - p.rank() + j + 1)] = t.strides[static_cast<size_t>(2 + j)];
  return s;
}

constexpr int64_t kDwChunk = 64; // channels summed at once (their accumulators stay in registers / L1)

template <typename T> CONVARITH_CPU_INLINE void dw_nhwc_row_impl(const DwNhwc& a, int64_t row) {
  const ConvProblem& p = *a.p;
  const int64_t C = p.c(), OD = p.out3(0), OH = p.out3(1), OW = p.out3(2);
  const AxisParams &ad = p.axis3(0), &ah = p.axis3(1), &aw = p.axis3(2);
  const int64_t n = row / (OD * OH), od = row / OH % OD, oh = row % OH;
  const std::array<int64_t, 4>&xs = a.xs, &ys = a.ys, &zs = a.zs;
  const float* x = a.x; // f32, x's layout (converted first when x is f16 or bf16)
  const T* z = static_cast<const T*>(a.z);
  T* y = static_cast<T*>(a.y);
  float acc[kDwChunk];
  for (int64_t ow = 0; ow < OW; ++ow) {
    for (int64_t c0 = 0; c0 < C; c0 += kDwChunk) {
      const int64_t cc = std::min(kDwChunk, C - c0);
      for (int64_t i = 0; i < cc; ++i)
        acc[i] = 0.0f;
      for (int64_t t = 0; t < ad.k; ++t) {
        const int64_t id = od * ad.s - ad.p_lo + t * ad.d;
        if (id < 0 || id >= ad.i)
          continue;
        for (int64_t r = 0; r < ah.k; ++r) {
          const int64_t ih = oh * ah.s - ah.p_lo + r * ah.d;
          if (ih < 0 || ih >= ah.i)
            continue;
          for (int64_t s = 0; s < aw.k; ++s) {
            const int64_t iw = ow * aw.s - aw.p_lo + s * aw.d;
            if (iw < 0 || iw >= aw.i)
              continue;
            const float* xp = x + n * xs[0] + id * xs[1] + ih * xs[2] + iw * xs[3] + c0;
            const float* wp = a.wt + ((t * ah.k + r) * aw.k + s) * C + c0;
            for (int64_t i = 0; i < cc; ++i)
              acc[i] += wp[i] * xp[i];
          }
        }
      }
      T* yp = y + n * ys[0] + od * ys[1] + oh * ys[2] + ow * ys[3] + c0;
      const T* zp = a.residual ? z + n * zs[0] + od * zs[1] + oh * zs[2] + ow * zs[3] + c0 : nullptr;
      for (int64_t i = 0; i < cc; ++i)
        yp[i] = kernels::from_float<T>(kernels::apply_epilogue(a.ep, acc[i], a.bias != nullptr ? a.bias[c0 + i] : 0.0f,
                                                               a.residual ? kernels::to_float(zp[i]) : 0.0f));
    }
  }
}
CONVARITH_CPU_INLINE void dw_nhwc_row_f32_body(const DwNhwc& a, int64_t row) {
  dw_nhwc_row_impl<float>(a, row);
}
CONVARITH_CPU_INLINE void dw_nhwc_row_f16_body(const DwNhwc& a, int64_t row) {
  dw_nhwc_row_impl<kernels::f16>(a, row);
}
CONVARITH_CPU_INLINE void dw_nhwc_row_bf16_body(const DwNhwc& a, int64_t row) {
  dw_nhwc_row_impl<kernels::bf16>(a, row);
}
CONVARITH_CPU_MULTIVERSION(dw_nhwc_row_f32, (const DwNhwc& a, int64_t row), (a, row))
CONVARITH_CPU_MULTIVERSION(dw_nhwc_row_f16, (const DwNhwc& a, int64_t row), (a, row))
CONVARITH_CPU_MULTIVERSION(dw_nhwc_row_bf16, (const DwNhwc& a, int64_t row), (a, row))

// w (its dtype and layout, K x 1 x taps) as f32 [tap][C].
void dw_weights(const ConvProblem& p, const void* w, float* wt) {
  const TensorDesc& t = p.tensor(TensorId::kW);
  const int64_t C = p.c(), taps = p.kernel_spatial();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t tap = 0; tap < taps; ++tap) {
      // tap's offset: its spatial index in the filter's own strides (row-major over the kernel axes).
      int64_t off = c * t.strides[0], rest = tap;
      for (int j = p.rank() - 1; j >= 0; --j) {
        const int64_t kj = p.axis(j).k;
        off += rest % kj * t.strides[static_cast<size_t>(2 + j)];
        rest /= kj;
      }
      wt[tap * C + c] = load_any(t.dtype, w, off);
    }
}

Status run_dw_nhwc(const CpuPlan& plan, const convarith::KernelArgs& args, const float* prepared_wt) {
  const ConvProblem& p = *args.problem;
  if (p.n() == 0)
    return Status::ok();
  auto* base = static_cast<unsigned char*>(static_cast<void*>(aligned_workspace(args.workspace)));
  DwNhwc a{};
  a.p = &p;
  const DataType t = p.dtype(TensorId::kX);
  if (t == DataType::kF32) {
    a.x = static_cast<const float*>(args.x);
  } else {
    // Each x element is read by up to taps outputs: converted once, element for element (same layout).
    float* xf = reinterpret_cast<float*>(base + plan.x_off);
    const int64_t count = p.x_elements();
    auto convert = [&](int64_t task, int) {
      const int64_t i0 = task * 16384, i1 = std::min(count, i0 + 16384);
      if (t == DataType::kF16)
        for (int64_t i = i0; i < i1; ++i)
          xf[i] = kernels::to_float(static_cast<const kernels::f16*>(args.x)[i]);
      else
        for (int64_t i = i0; i < i1; ++i)
          xf[i] = kernels::to_float(static_cast<const kernels::bf16*>(args.x)[i]);
    };
    ThreadPool::instance().parallel_for((count + 16383) / 16384, TaskRef(convert));
    a.x = xf;
  }
  a.y = args.y;
  a.residual = p.epilogue().has_residual();
  a.z = a.residual ? args.z : nullptr;
  a.xs = nsp_strides(p, p.tensor(TensorId::kX));
  a.ys = nsp_strides(p, p.tensor(TensorId::kY));
  a.zs = a.residual ? nsp_strides(p, p.tensor(TensorId::kZ)) : a.ys;
  const Epilogue& e = p.epilogue();
  a.ep = kernels::EpilogueParams{static_cast<int>(e.activation), e.alpha, e.beta,
                                 e.activation == Activation::kClip ? e.clip_min : e.leaky_alpha, e.clip_max};
  float* wt = reinterpret_cast<float*>(base + plan.wt_off);
  if (prepared_wt == nullptr)
    dw_weights(p, args.w, wt);
  a.wt = prepared_wt != nullptr ? prepared_wt : wt;
  if (args.bias != nullptr) {
    const TensorDesc& bt = p.tensor(TensorId::kBias);
    float* b = reinterpret_cast<float*>(base + plan.bias_off);
    for (int64_t c = 0; c < p.c(); ++c)
      b[c] = load_any(bt.dtype, args.bias, c * bt.strides[0]);
    a.bias = b;
  }
  auto task = [&](int64_t row, int) {
    if (t == DataType::kF16)
      dw_nhwc_row_f16(a, row);
    else if (t == DataType::kBF16)
      dw_nhwc_row_bf16(a, row);
    else
      dw_nhwc_row_f32(a, row);
  };
  ThreadPool::instance().parallel_for(p.n() * p.out3(0) * p.out3(1), TaskRef(task));
  return Status::ok();
}

Result<Prepared> prepare_cpu(const ConvProblem& p, const DeviceInfo& dev, Core core, CoreWorkspace core_ws,
                             CoreBlocking core_blocking, double gflops, CoreWeights core_weights = nullptr,
                             bool allow_dw_nhwc = false) {
  auto plan = std::make_shared<CpuPlan>();
  plan->core = core;
  plan->core_weights = core_weights;
  plan->direct = p.is_plain_f32_nchw();
  plan->dw_nhwc = allow_dw_nhwc && dw_nhwc_eligible(p);
  size_t total = 0;
  if (plan->dw_nhwc) {
    plan->direct = false;
    const auto floats = [](int64_t n) { return align64(static_cast<size_t>(n) * sizeof(float)); };
    plan->wt_off = 0;
    plan->bias_off = floats(p.kernel_spatial() * p.c());
    plan->x_off = plan->bias_off + floats(p.c());
    total = plan->x_off + (p.dtype(TensorId::kX) != DataType::kF32 ? floats(p.x_elements()) : 0) + kWorkspaceSlack;
  } else if (plan->direct) {
    plan->core_workspace = core_ws(p);
    total = plan->core_workspace;
  } else {
    plan->inner = inner_problem(p);
    const bool pool = is_pool(p.op());
    plan->convert_x = !f32_nchw(p.tensor(TensorId::kX));
    plan->convert_w = !pool && !f32_nchw(p.tensor(TensorId::kW));
    plan->convert_bias = !pool && p.tensor(TensorId::kBias).dtype != DataType::kF32;
    plan->temp_y = !f32_nchw(p.tensor(TensorId::kY)) || p.epilogue().has_residual();
    const auto reserve = [&](bool need, int64_t elements, size_t* off) {
      if (!need)
        return;
      *off = total;
      const size_t bytes = static_cast<size_t>(elements) > (SIZE_MAX / 2 - total) / sizeof(float)
                               ? SIZE_MAX / 2
                               : static_cast<size_t>(elements) * sizeof(float);
      total = align64(std::min(SIZE_MAX / 2, total + bytes));
    };
    reserve(plan->convert_x, p.x_elements(), &plan->x_off);
    reserve(plan->convert_w, p.w_elements(), &plan->w_off);
    reserve(plan->convert_bias, p.bias_elements(), &plan->b_off);
    reserve(plan->temp_y, p.y_elements(), &plan->y_off);
    plan->core_off = total;
    plan->core_workspace = core_ws(plan->inner);
    const size_t inner_ws = plan->core_workspace;
    total = inner_ws == SIZE_MAX || total > SIZE_MAX - inner_ws - kWorkspaceSlack ? SIZE_MAX
                                                                                  : total + inner_ws + kWorkspaceSlack;
  }
  if (core_blocking != nullptr && p.n() > 0 && !plan->dw_nhwc)
    plan->blocking = core_blocking(plan->direct ? p : plan->inner);
  Prepared out;
  out.workspace_bytes = total;
  const double threads = std::max(1, dev.cpu_threads);
  out.cost_us = 5.0 + p.flops() / (gflops * 1e9 * threads) * 1e6;
  out.state = plan;
  return out;
}

// Algorithm::prepare_weights of the run_cpu rows: w (the plan's copy, the problem's dtype and layout) converted to
// f32 NC[D]HW once where it is not, then the core's own form of it.
Result<PreparedWeights> prepare_cpu_weights(const ConvProblem& p, const void* state, const void* w) {
  const auto& plan = *static_cast<const CpuPlan*>(state);
  auto out = std::make_shared<CpuWeights>();
  PreparedWeights pw;
  out->w = static_cast<const float*>(w);
  if (plan.dw_nhwc) { // f32 [tap][C], once
    Result<std::shared_ptr<float>> wt = aligned_floats(p.kernel_spatial() * p.c(), "the depthwise weights");
    if (!wt)
      return wt.status();
    out->converted = std::move(wt).value();
    dw_weights(p, w, out->converted.get());
    out->w = out->converted.get();
    pw.bytes = static_cast<size_t>(p.kernel_spatial() * p.c()) * sizeof(float);
    pw.state = std::move(out);
    return pw;
  }
  if (!plan.direct && plan.convert_w) {
    Result<std::shared_ptr<float>> f32 = aligned_floats(p.w_elements(), "the f32 weights");
    if (!f32)
      return f32.status();
    out->converted = std::move(f32).value();
    pack(p.tensor(TensorId::kW), w, out->converted.get());
    out->w = out->converted.get();
    pw.bytes += static_cast<size_t>(p.w_elements()) * sizeof(float);
  }
  if (plan.core_weights != nullptr && p.n() > 0) {
    Result<PreparedWeights> core = plan.core_weights(plan.direct ? p : plan.inner, plan.blocking.get(), out->w);
    if (!core)
      return core.status();
    out->core = std::move(core).value();
    pw.bytes += out->core.bytes;
  }
  pw.state = std::move(out);
  return pw;
}

Status run_cpu(const convarith::KernelArgs& args) {
  const auto& plan = *static_cast<const CpuPlan*>(args.prepared);
  const ConvProblem& p = *args.problem;
  const auto* weights = static_cast<const CpuWeights*>(args.prepared_weights);
  if (plan.dw_nhwc)
    return run_dw_nhwc(plan, args, weights != nullptr ? weights->w : nullptr);
  CpuArgs a;
  a.stream = args.stream;
  a.packed_w = weights != nullptr ? weights->core.state.get() : nullptr;
  if (plan.direct) {
    a.problem = &p;
    a.x = static_cast<const float*>(args.x);
    a.w = weights != nullptr ? weights->w : static_cast<const float*>(args.w);
    a.bias = static_cast<const float*>(args.bias);
    a.y = static_cast<float*>(args.y);
    a.workspace = args.workspace;
    a.workspace_bytes = args.workspace_bytes;
    a.prepared = plan.blocking.get();
    return plan.core(a);
  }
  auto* base = static_cast<unsigned char*>(static_cast<void*>(aligned_workspace(args.workspace)));
  const auto at = [&](size_t off) { return reinterpret_cast<float*>(base + off); };
  a.problem = &plan.inner;
  if (plan.convert_x) {
    pack(p.tensor(TensorId::kX), args.x, at(plan.x_off));
    a.x = at(plan.x_off);
  } else {
    a.x = static_cast<const float*>(args.x);
  }
  if (weights != nullptr) {
    a.w = weights->w; // converted once, in Plan::create
  } else if (args.w != nullptr) {
    if (plan.convert_w) {
      pack(p.tensor(TensorId::kW), args.w, at(plan.w_off));
      a.w = at(plan.w_off);
    } else {
      a.w = static_cast<const float*>(args.w);
    }
  }
  const float* bias = nullptr;
  if (args.bias != nullptr) {
    if (plan.convert_bias) {
      pack(p.tensor(TensorId::kBias), args.bias, at(plan.b_off));
      bias = at(plan.b_off);
    } else {
      bias = static_cast<const float*>(args.bias);
    }
  }
  float* acc = plan.temp_y ? at(plan.y_off) : static_cast<float*>(args.y);
  a.y = acc;
  a.bias = nullptr; // added by the epilogue (after alpha)
  a.workspace = plan.core_workspace > 0 ? static_cast<void*>(base + plan.core_off) : nullptr;
  a.workspace_bytes = plan.core_workspace;
  a.prepared = plan.blocking.get();
  CONVARITH_RETURN_IF_ERROR(plan.core(a));
  switch (p.dtype(TensorId::kY)) {
  case DataType::kF16:
    epilogue_store<kernels::f16>(p, acc, bias, args.z, args.y);
    break;
  case DataType::kBF16:
    epilogue_store<kernels::bf16>(p, acc, bias, args.z, args.y);
    break;
  default:
    epilogue_store<float>(p, acc, bias, args.z, args.y);
    break;
  }
  return Status::ok();
}

Status cpu_conv_supports_row(const ConvProblem& p, const DeviceInfo&) {
  return cpu_conv_supports(p);
}
Status cpu_conv_transpose_supports_row(const ConvProblem& p, const DeviceInfo&) {
  return cpu_conv_transpose_supports(p);
}
Status cpu_pool_supports_row(const ConvProblem& p, const DeviceInfo&) {
  return cpu_pool_supports(p);
}
Result<Prepared> cpu_conv_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  return prepare_cpu(p, dev, &cpu_conv_run, &cpu_conv_workspace, &cpu_conv_blocking, 40.0, &cpu_conv_prepare_weights,
                     true);
}
Result<Prepared> cpu_conv_transpose_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  return prepare_cpu(p, dev, &cpu_conv_transpose_run, &cpu_conv_transpose_workspace, &cpu_conv_transpose_blocking, 30.0,
                     &cpu_conv_transpose_prepare_weights);
}
Status cpu_winograd_supports_row(const ConvProblem& p, const DeviceInfo&) {
  return cpu_winograd_supports(p);
}
// prepare_cpu with the row's own estimates, per run and with the weights prepared once (cpu_winograd, cpu_taps).
using CoreCost = double (*)(const ConvProblem&, int);
Result<Prepared> prepare_cpu_costed(const ConvProblem& p, const DeviceInfo& dev, Core core, CoreWorkspace core_ws,
                                    CoreBlocking core_blocking, CoreWeights core_weights, CoreCost cost,
                                    CoreCost cost_weights) {
  Result<Prepared> r = prepare_cpu(p, dev, core, core_ws, core_blocking, 40.0, core_weights);
  if (!r)
    return r;
  Prepared out = *r;
  const int threads = std::max(1, dev.cpu_threads);
  out.cost_us = cost(p, threads);
  out.cost_us_weights = cost_weights(p, threads);
  return out;
}
Result<Prepared> cpu_winograd_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  return prepare_cpu_costed(p, dev, &cpu_winograd_run, &cpu_winograd_workspace, &cpu_winograd_blocking,
                            &cpu_winograd_prepare_weights, &cpu_winograd_cost_us, &cpu_winograd_cost_us_weights);
}
Status cpu_taps_supports_row(const ConvProblem& p, const DeviceInfo&) {
  return cpu_taps_supports(p);
}
Result<Prepared> cpu_taps_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  return prepare_cpu_costed(p, dev, &cpu_taps_run, &cpu_taps_workspace, &cpu_taps_blocking, &cpu_taps_prepare_weights,
                            &cpu_taps_cost_us, &cpu_taps_cost_us_weights);
}
// cpu_amx_bf16 keeps cpu_gemm's plan for the inputs the tiles cannot take exactly (cpu_amx_run says which).
struct AmxRowPlan {
  std::shared_ptr<const void> blocking;
  Prepared gemm;
};
Status cpu_amx_supports_row(const ConvProblem& p, const DeviceInfo&) {
  return cpu_amx_supports(p);
}
Result<Prepared> cpu_amx_prepare_row(const ConvProblem& p, const DeviceInfo& dev) {
  Result<Prepared> gemm = cpu_conv_prepare(p, dev);
  if (!gemm)
    return gemm;
  auto plan = std::make_shared<AmxRowPlan>();
  plan->gemm = *gemm;
  if (p.n() > 0)
    plan->blocking = cpu_amx_blocking(p);
  Prepared out;
  out.workspace_bytes = p.n() == 0 ? 0 : std::max(cpu_amx_workspace(p), gemm->workspace_bytes);
  out.cost_us = cpu_amx_cost_us(p, std::max(1, dev.cpu_threads));
  out.state = plan;
  return out;
}
Status cpu_amx_run_row(const convarith::KernelArgs& args) {
  const auto& plan = *static_cast<const AmxRowPlan*>(args.prepared);
  convarith::KernelArgs a = args;
  a.prepared = plan.blocking.get();
  bool fallback = false;
  CONVARITH_RETURN_IF_ERROR(cpu_amx_run(a, &fallback));
  if (!fallback)
    return Status::ok();
  a.prepared = plan.gemm.state.get();
  return run_cpu(a);
}
Result<Prepared> cpu_pool_prepare(const ConvProblem& p, const DeviceInfo& dev) {
  return prepare_cpu(p, dev, &cpu_pool_run, &cpu_pool_workspace, nullptr, 5.0);
}

} // namespace

void append_cpu_algorithms(std::vector<Algorithm>& table) {
  const unsigned all_dtypes = dtype_bit(DataType::kF32) | dtype_bit(DataType::kF16) | dtype_bit(DataType::kBF16);
  const unsigned both = layout_bit(Layout::kNCHW) | layout_bit(Layout::kNHWC);
  table.push_back(Algorithm{"cpu_gemm", Device::kCpu, op_bit(Op::kConv), all_dtypes, both, true, true, true, "fp32 FMA",
                            "CPU convolution: per-task im2col panels x register-blocked SGEMM (AVX-512/AVX2/SSE "
                            "chosen at run time), any rank, padding, stride, dilation, groups; threaded",
                            &cpu_conv_supports_row, &cpu_conv_prepare, &run_cpu, &prepare_cpu_weights});
  table.push_back(Algorithm{
      "cpu_gemm_col2im", Device::kCpu, op_bit(Op::kConvTranspose), all_dtypes, both, true, true, true, "fp32 FMA",
      "CPU transposed convolution: SGEMM W^T x into columns, deterministic col2im; any rank, "
      "padding/cropping, output padding, stride, dilation, groups; threaded",
      &cpu_conv_transpose_supports_row, &cpu_conv_transpose_prepare, &run_cpu, &prepare_cpu_weights});
  table.push_back(Algorithm{"cpu_pool", Device::kCpu, op_bit(Op::kMaxPool) | op_bit(Op::kAvgPool), all_dtypes, both,
                            true, true, true, "fp32",
                            "CPU max/avg pooling: direct loops, ceil_mode, dilation, count_include_pad; threaded",
                            &cpu_pool_supports_row, &cpu_pool_prepare, &run_cpu});
  table.push_back(Algorithm{"cpu_winograd", Device::kCpu, op_bit(Op::kConv), all_dtypes, both, true, true, true,
                            "fp32 FMA, Winograd F(2x2,3x3)",
                            "CPU 2-D 3x3 stride-1 convolution by Winograd F(2x2,3x3): transforms around 16 SGEMMs per "
                            "block of 2x2 output tiles (2.25x fewer products); any padding, groups; Inf/NaN reruns "
                            "on cpu_gemm; threaded",
                            &cpu_winograd_supports_row, &cpu_winograd_prepare, &run_cpu, &prepare_cpu_weights});
  table.push_back(Algorithm{"cpu_taps", Device::kCpu, op_bit(Op::kConv), all_dtypes, both, true, true, true, "fp32 FMA",
                            "CPU convolution as one 1x1 GEMM per tap over the output pixels that read inside x (no "
                            "product of a padding zero): small padded images with many channels (C3D's conv5a); any "
                            "rank, padding, stride, dilation, groups; threaded",
                            &cpu_taps_supports_row, &cpu_taps_prepare, &run_cpu, &prepare_cpu_weights});
  table.push_back(Algorithm{"cpu_amx_bf16", Device::kCpu, op_bit(Op::kConv), dtype_bit(DataType::kBF16), both, true,
                            false, true, "bf16 products, fp32 accumulation (AMX TDPBF16PS)",
                            "CPU bf16 convolution on Intel AMX tiles: implicit GEMM, im2col rows x filter panels in "
                            "AMX's pair layout, 32x32 outputs per step; any rank, padding, stride, dilation, groups; "
                            "CPUs with AMX-BF16 only; Inf/NaN/subnormal inputs run on cpu_gemm; threaded",
                            &cpu_amx_supports_row, &cpu_amx_prepare_row, &cpu_amx_run_row});
}

} // namespace detail
} // namespace convarith
