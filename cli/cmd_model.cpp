// cli/cmd_model.cpp — `convarith model`: the bound model. For each kernel row that runs a layer, a modeled
// time = the largest of five lower bounds (instruction issue, FMA pipe, shared memory, L2, DRAM), the SM-bound
// ones stretched by wave quantisation, printed beside the layer's roofline bound. Modeled, not measured.
//
// Inputs, none measured on a GPU:
//  * the device profile (kernels/device_profile.hpp: SMs, clock, fp32 FMA peak, HBM and L2 bandwidth);
//  * the kernels' launch configuration (their own headers: tiled_config, the block-size constants);
//  * the per-kernel characterisation of tools/inspect/baseline.json (embedded at build time, or --inspect
//    FILE): registers (occupancy), the tap path of the hot loop (instructions per tap on the unrolled loops and
//    the remainder code), the staging loops' instructions per staged element;
//  * traffic per kernel from analytic formulas (below; the executor's traffic counters may replace them).
// Formulas (per launch; warp instructions issue at 4 per clock per SM, one per scheduler):
//  issue  = (taps/32 * instructions per tap [tap path for a filter row of KW taps]
//            + staged elements/32 * staging instructions per element) / (4 * SMs * clock)
//  fma    = FMAs / (fp32 lanes = peak / (2 * clock)); pooling has none
//  smem   = shared wavefronts / (SMs * clock): tiled reads x at stride sw (sw wavefronts per warp load), the
//           weights as broadcast float4 (1 each), stores 1 per warp store (no conflicts assumed); depthwise
//           (no shared memory): its global requests' L1 cycles, one per distinct 128-byte line a warp touches
//  l2     = bytes between SMs and L2 / L2 bandwidth: tiled = staged bytes + y; direct/gather = x read once per
//           output channel (the L1 keeps a block's spatial reuse, no channel reuse) + w + y; pool = x + y;
//           scatter = x + w + 2 x 4 bytes per atomic (read-modify-write in L2)
//  dram   = compulsory bytes (ConvProblem::min_bytes) / HBM bandwidth
//  waves  = work units (tiles or 256-thread blocks) over (blocks per SM by occupancy x SMs); issue, fma and
//           smem are divided by the last wave's fill efficiency
//  serial = a second kernel that runs after the first, added to the largest bound: igemm's split-K reduction
//           (S partials read, y written, z read, at HBM speed; no launch overhead); the kernel column shows ",S=N"
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "attributes.hpp"
#include "bench.hpp"
#include "commands.hpp"
#include "conv_depthwise.cuh"
#include "conv_direct.cuh"
#include "conv_igemm.cuh"
#include "conv_tiled.cuh"
#include "device_profile.hpp"
#include "pool_direct.cuh"
#include "row.hpp"
#include "subcommands.hpp"
#include "transpose_gather.cuh"
#include "transpose_scatter.cuh"

namespace convarith::cli {

extern const char* const kInspectBaselineJson; // generated from tools/inspect/baseline.json (cli/CMakeLists.txt)

namespace {

const char kModelHelp[] = R"(usage: convarith model [--suite NAME | --layer OP ATTRIBUTES...] [options]

The bound model: per kernel row x layer, modeled time = max(issue, FMA pipe, shared memory, L2, DRAM time)
with wave quantisation over the SMs (+ igemm's split-K reduction kernel, ",S=N"), the binding limit, modeled
% of the fp32 FMA peak and of the HBM bandwidth (compulsory bytes / modeled time), beside the
layer's roofline bound. MODELED, NOT MEASURED: no GPU is used. It cannot see latency and occupancy stalls,
dependency chains, L2 hit rates, bank conflicts, clocks below boost, or launch overhead.

  --suite NAME       a suite of bench/layers.csv (default: core)
  --layer OP ...     one layer instead; the rest of the line is its ONNX attributes
  --gpu G            h100 or h200 (default: h200)
  --json FILE        write every row as JSON (schema convarith-model-1)
  --layers FILE      the layer file (default: $CONVARITH_BENCH_LAYERS or the source tree's)
  --inspect FILE     the kernel characterisation (default: tools/inspect/baseline.json as built in)
  --algo NAME        model this kernel row only (e.g. depthwise)

Exit status: 0 ok, 1 a kernel has no characterisation, 2 bad arguments.
)";

// ---- a small JSON reader (objects, arrays, strings, numbers, true/false/null) -----------------------------
struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  double number = 0;
  bool boolean = false;
  std::string text;
  std::vector<Json> items;
  std::map<std::string, Json> fields;
  const Json& operator[](const std::string& key) const {
    static const Json null;
    auto it = fields.find(key);
    return it == fields.end() ? null : it->second;
  }
  double num(double fallback = 0) const { return kind == kNumber ? number : fallback; }
  bool has(const std::string& key) const { return fields.count(key) != 0; }
};

class JsonReader {
public:
  explicit JsonReader(const std::string& s) : s_(s) {}
  bool parse(Json& out) {
    if (!value(out))
      return false;
    skip();
    return pos_ == s_.size();
  }
  size_t pos() const { return pos_; }

private:
  void skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_])))
      ++pos_;
  }
  bool literal(const char* word) {
    const std::string w(word);
    if (s_.compare(pos_, w.size(), w) != 0)
      return false;
    pos_ += w.size();
    return true;
  }
  bool string(std::string& out) {
    if (s_[pos_] != '"')
      return false;
    ++pos_;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\\' && pos_ < s_.size()) {
        const char e = s_[pos_++];
        c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
        if (e == 'u') { // keep \uXXXX as '?': the inspection JSON has none that matter
          pos_ += 4;
          c = '?';
        }
      }
      out.push_back(c);
    }
    if (pos_ >= s_.size())
      return false;
    ++pos_;
    return true;
  }
  bool value(Json& out) {
    skip();
    if (pos_ >= s_.size())
      return false;
    const char c = s_[pos_];
    if (c == '{') {
      out.kind = Json::kObject;
      ++pos_;
      skip();
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return true;
      }
      for (;;) {
        skip();
        std::string key;
        if (pos_ >= s_.size() || !string(key))
          return false;
        skip();
        if (pos_ >= s_.size() || s_[pos_++] != ':')
          return false;
        if (!value(out.fields[key]))
          return false;
        skip();
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < s_.size() && s_[pos_] == '}') {
          ++pos_;
          return true;
        }
        return false;
      }
    }
    if (c == '[') {
      out.kind = Json::kArray;
      ++pos_;
      skip();
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      for (;;) {
        out.items.emplace_back();
        if (!value(out.items.back()))
          return false;
        skip();
        if (pos_ < s_.size() && s_[pos_] == ',') {
          ++pos_;
          continue;
        }
        if (pos_ < s_.size() && s_[pos_] == ']') {
          ++pos_;
          return true;
        }
        return false;
      }
    }
    if (c == '"') {
      out.kind = Json::kString;
      return string(out.text);
    }
    if (literal("true")) {
      out.kind = Json::kBool;
      out.boolean = true;
      return true;
    }
    if (literal("false")) {
      out.kind = Json::kBool;
      return true;
    }
    if (literal("null"))
      return true;
    char* end = nullptr;
    out.number = std::strtod(s_.c_str() + pos_, &end);
    if (end == s_.c_str() + pos_)
      return false;
    out.kind = Json::kNumber;
    pos_ = static_cast<size_t>(end - s_.c_str());
    return true;
  }
  const std::string& s_;
  size_t pos_ = 0;
};

// ---- the model ------------------------------------------------------------------------------------------------
struct Limits {
  double issue = 0, fma = 0, smem = 0, l2 = 0, dram = 0;
};

struct ModelRow {
  std::string layer_id, layer, algorithm, specialisation;
  std::string status = "ok"; // or why there is no number
  double flops = 0, bytes = 0;
  double roofline_s = 0;
  Limits t; // seconds
  double waves = 0, wave_efficiency = 1;
  int blocks_per_sm = 0, threads = 0;
  size_t dynamic_smem = 0;
  double instructions_per_tap = 0, warp_instructions = 0, l2_bytes = 0;
  double path_fma_share = 0; // FMA instructions / instructions on the tap path this layer runs
  double modeled_s = 0;
  double serial_s = 0; // a second kernel after the first (igemm's split-K reduction), added to the max of the bounds
  int64_t splits = 1;  // igemm's split-K count
  std::string binding;
  double pct_of_peak = 0, pct_of_roofline = 0;
  double pct_of_hbm = 0; // compulsory bytes / modeled time, as % of the HBM bandwidth
};

int blocks_per_sm(const kernels::DeviceProfile& prof, int regs, int threads, int64_t smem) {
  const int warps = (threads + prof.warp_size - 1) / prof.warp_size;
  const int per_warp =
      (std::max(regs, 1) * prof.warp_size + prof.reg_alloc_unit - 1) / prof.reg_alloc_unit * prof.reg_alloc_unit;
  const int by_regs = per_warp * warps <= prof.regs_per_block ? (prof.regs_per_sm / per_warp) / warps : 0;
  const int by_threads = prof.max_threads_per_sm / threads;
  const int64_t by_smem = prof.smem_per_sm / (smem + prof.smem_reserved_per_block);
  return static_cast<int>(std::min<int64_t>({by_regs, by_threads, by_smem, prof.max_blocks_per_sm}));
}

// Instructions a thread issues for one filter row of `row_taps` taps on the kernel's tap path: the unrolled
// loops greedily (largest first), then the remainder code in proportion to the taps it runs.
double row_instructions(const Json& path, double row_taps) {
  double left = row_taps, insts = 0;
  for (const Json& loop : path["unrolled_loops"].items) {
    const double taps = loop["taps"].num();
    if (taps <= 0)
      continue;
    const double passes = std::floor(left / taps);
    insts += passes * loop["instructions"].num();
    left -= passes * taps;
  }
  const Json& rem = path["remainder_body"];
  if (left > 0) {
    if (rem.kind == Json::kObject && rem["taps"].num() > 0)
      insts += rem["instructions"].num() * std::min(1.0, left / rem["taps"].num());
    else if (!path["unrolled_loops"].items.empty()) { // no remainder code: one more pass of the smallest loop
      insts += path["unrolled_loops"].items.back()["instructions"].num();
    }
  }
  return insts;
}

class Model {
public:
  Model(const kernels::DeviceProfile& prof, const Json& inspect, std::string only)
      : prof_(prof), inspect_(inspect), only_(std::move(only)) {}

  std::vector<ModelRow> rows(const bench::Layer& layer) const {
    std::vector<ModelRow> out;
    const ConvProblem& p = layer.problem;
    auto add = [&](const char* algo, Status st, auto fn) {
      if (!st.is_ok() || (!only_.empty() && only_ != algo))
        return;
      ModelRow r;
      r.layer_id = layer.id;
      r.layer = layer.layer;
      r.algorithm = algo;
      base(p, r);
      fn(r);
      finish(r);
      out.push_back(r);
    };
    namespace kn = kernels;
    // A row is modeled when the table says it takes the problem (its declared formats and its own limits, for the
    // emulated device's sm_90 profile).
    const auto row_status = [&](const char* name) {
      const Algorithm* row = find_algorithm(name, Device::kEmulated);
      return row == nullptr ? not_supported(std::string(name) + ": no such row")
                            : row->supports(p, emulated_device_info());
    };
    add("depthwise", row_status("depthwise"), [&](ModelRow& r) { depthwise(p, r); });
    add("igemm", row_status("igemm"), [&](ModelRow& r) { igemm(p, r); });
    add("tiled", row_status("tiled"), [&](ModelRow& r) { tiled(p, r); });
    add("direct", row_status("direct"), [&](ModelRow& r) { simple(p, r, "direct_kernel", kn::kDirectThreads); });
    add("gather", row_status("gather"), [&](ModelRow& r) { simple(p, r, "gather_kernel", kn::kGatherThreads); });
    add("scatter", row_status("scatter"), [&](ModelRow& r) { simple(p, r, "scatter_kernel", kn::kScatterThreads); });
    add("pool", row_status("pool"), [&](ModelRow& r) { simple(p, r, "pool_kernel", kn::kPoolThreads); });
    return out;
  }

private:
  double clock_hz() const { return prof_.clock_ghz * 1e9; }
  double peak_flops() const { return prof_.fp32_fma_tflops * 1e12; }
  double issue_rate() const { return 4.0 * prof_.sms * clock_hz(); } // warp instructions per second
  double fma_lanes_rate() const { return peak_flops() / 2; }         // FMAs per second

  const Json* characterisation(const std::string& spec) const {
    const std::string key = std::string(prof_.arch) + "/" + spec;
    const Json& k = inspect_["kernels"];
    return k.has(key) ? &k[key] : nullptr;
  }

  void base(const ConvProblem& p, ModelRow& r) const {
    r.flops = p.flops();
    r.bytes = static_cast<double>(p.min_bytes());
    r.roofline_s = std::max(r.flops / peak_flops(), r.bytes / (prof_.dram_tbps * 1e12));
    r.t.dram = r.bytes / (prof_.dram_tbps * 1e12);
  }

  void waves(ModelRow& r, double units, int regs, int threads, int64_t smem) const {
    r.threads = threads;
    r.blocks_per_sm = blocks_per_sm(prof_, regs, threads, smem);
    const double concurrent = static_cast<double>(std::max(1, r.blocks_per_sm)) * prof_.sms;
    r.waves = std::ceil(std::max(1.0, units) / concurrent);
    r.wave_efficiency = std::max(1.0, units) / (r.waves * concurrent);
  }

  void tiled(const ConvProblem& p, ModelRow& r) const {
    const kernels::TiledConfig cfg = kernels::tiled_config(p);
    const int taps_variant = kernels::tiled_taps_variant(p, cfg.cpt);
    r.specialisation =
        "tiled_kernel<" + element_type(p) + ", " + std::to_string(cfg.cpt) + ", " + std::to_string(taps_variant) + ">";
    const Json* c = characterisation(r.specialisation);
    if (c == nullptr) {
      r.status = "no characterisation for " + std::string(prof_.arch) + "/" + r.specialisation;
      return;
    }
    const Result<Prepared> prepared = kernels::tiled_prepare(p, emulated_device_info());
    if (!prepared) {
      r.status = prepared.status().message();
      return;
    }
    const kernels::TiledParams& tp =
        static_cast<const kernels::KernelPlan<kernels::TiledParams>*>(prepared->state.get())->params;
    const double kw = static_cast<double>(p.axis3(2).k), kh = static_cast<double>(p.axis3(1).k);
    const double fmas = r.flops / 2;
    // Threads compute kt channels per block even past K/g (on zeros): the FMAs issued.
    const double kg = static_cast<double>(tp.g.kg);
    const double issued_fmas = fmas * (static_cast<double>(tp.ktiles * cfg.kt) / kg);
    const double taps = issued_fmas / cfg.cpt; // per-thread taps
    if (taps_variant != kernels::kTiledAnyTaps) {
      // Compile-time 1 x 1 / 3 x 3 loops: the hot loop is one pass over a channel's (or, 1 x 1, four channels')
      // taps, all issued (predicated-off taps still issue), fma / cpt taps per pass.
      const Json& hot = (*c)["hot_loop"];
      const double pass_taps = hot["fma"].num() / cfg.cpt;
      r.instructions_per_tap = pass_taps > 0 ? hot["instructions"].num() / pass_taps : 0;
    } else {
      r.instructions_per_tap = row_instructions((*c)["tap_path"], kw) / kw;
    }
    r.path_fma_share = r.instructions_per_tap > 0 ? cfg.cpt / r.instructions_per_tap : 0;
    double warp_insts = taps / 32 * r.instructions_per_tap;
    // Staging: per (tile, chunk, valid depth tap) the input tile and the filter slice, one element per thread
    // per pass of the staging loops (tools/inspect: staging_loops in address order: x, then w).
    const double chunks = std::ceil(static_cast<double>(tp.g.cg) / cfg.ct);
    const double depth_taps = static_cast<double>(p.axis3(0).k); // upper bound: padding planes are skipped
    const double stages = static_cast<double>(tp.total_tiles) * chunks * depth_taps;
    const double x_elems = static_cast<double>(cfg.ct) * cfg.in_tile_h * cfg.in_tile_w;
    const double w_elems = static_cast<double>(cfg.kt) * cfg.ct * kh * kw;
    const auto& staging = (*c)["staging_loops"].items;
    const double x_cost = staging.size() > 0 ? staging[0]["instructions"].num() : 0;
    const double w_cost = staging.size() > 1 ? staging[1]["instructions"].num() : x_cost;
    warp_insts += stages * (x_elems * x_cost + w_elems * w_cost) / 32;
    r.warp_instructions = warp_insts;
    r.dynamic_smem = cfg.smem_bytes;
    waves(r, static_cast<double>(tp.total_tiles), static_cast<int>((*c)["regs"].num()), 128 * cfg.kgroups,
          static_cast<int64_t>((*c)["static_smem"].num()) + static_cast<int64_t>(cfg.smem_bytes));
    r.t.issue = warp_insts / issue_rate() / r.wave_efficiency;
    r.t.fma = issued_fmas / fma_lanes_rate() / r.wave_efficiency;
    // Shared memory: per warp tap, sw wavefronts for x and ceil(cpt/4) broadcast weight loads; the stores.
    const double sw = static_cast<double>(p.axis3(2).s);
    const double wavefronts = taps / 32 * (sw + std::ceil(cfg.cpt / 4.0)) + stages * (x_elems + w_elems) / 32;
    r.t.smem = wavefronts / (prof_.sms * clock_hz()) / r.wave_efficiency;
    const double eb = dtype_bytes(p.dtype(TensorId::kX));
    r.l2_bytes = stages * (x_elems + w_elems) * eb + static_cast<double>(p.y_elements()) * eb;
    r.t.l2 = r.l2_bytes / (prof_.l2_tbps * 1e12);
  }

  // The kernels' element-type template argument as the inspection keys spell it.
  static std::string element_type(const ConvProblem& p) {
    switch (p.dtype(TensorId::kX)) {
    case DataType::kF16:
      return "convarith::kernels::f16";
    case DataType::kBF16:
      return "convarith::kernels::bf16";
    default:
      return "float";
    }
  }

  // igemm: per block tile and k-tile, every thread runs one pass of the k loop (tools/inspect's hot loop: the
  // 8 x 64 FFMAs, 32 float4 shared loads, the staging loads and stores and the k-digit update); the FMAs issued
  // include the tile's padding past M, K/g and Kdim. Shared memory: per warp and k, 4 float4 loads of one
  // wavefront each (4 distinct A addresses, 8 consecutive B), and one wavefront per warp staging store. L2: each
  // block tile reads its BM x Kdim slice of A and Kdim x BN slice of B once, and writes y (+ reads z).
  // Split-K (S > 1): tiles x S work units of ceil(k_tiles / S) k-tiles each (the longest unit sets the wave; the
  // grid and the waves count units), the partials (S x y x 4 bytes) written to L2 instead of y, then the reduction
  // kernel as a second, serial term: its S x y partial reads, y write and z read at HBM speed (as if the partials
  // went through DRAM: an upper bound, they mostly stay in the 50 MiB L2); its launch, like every launch, unseen.
  void igemm(const ConvProblem& p, ModelRow& r) const {
    const Result<Prepared> prepared = kernels::igemm_prepare(p, emulated_device_info());
    if (!prepared) {
      r.status = prepared.status().message();
      return;
    }
    const auto* plan = static_cast<const kernels::KernelPlan<kernels::IgemmParams>*>(prepared->state.get());
    const kernels::IgemmParams& q = plan->params;
    r.specialisation = "igemm_kernel<" + std::to_string(plan->variant) + ">";
    const Json* c = characterisation(r.specialisation);
    if (c == nullptr) {
      r.status = "no characterisation for " + std::string(prof_.arch) + "/" + r.specialisation;
      return;
    }
    const int tile = plan->variant / 4;
    const double bm = kernels::igemm_tile_m(tile), bn = kernels::igemm_tile_n(tile), bk = kernels::kIgemmBK;
    const double threads = plan->block.x, warps = threads / 32;
    r.splits = q.splits;
    const double splits = static_cast<double>(q.splits);
    const double tiles = static_cast<double>(q.total_tiles) * splits;                       // work units
    const double k_tiles = static_cast<double>(q.splits > 1 ? q.split_k_tiles : q.k_tiles); // per unit
    const double loop_insts = (*c)["hot_loop"]["instructions"].num();
    const double loop_fmas = (*c)["hot_loop"]["fma"].num();
    r.path_fma_share = loop_insts > 0 ? loop_fmas / loop_insts : 0;
    r.instructions_per_tap = loop_fmas > 0 ? loop_insts / loop_fmas : 0; // per FMA of the hot loop
    r.warp_instructions = tiles * k_tiles * warps * loop_insts;
    const double issued_fmas = tiles * k_tiles * bk * bm * bn;
    r.dynamic_smem = plan->smem_bytes;
    waves(r, tiles, static_cast<int>((*c)["regs"].num()), static_cast<int>(threads),
          static_cast<int64_t>((*c)["static_smem"].num()) + static_cast<int64_t>(plan->smem_bytes));
    r.t.issue = r.warp_instructions / issue_rate() / r.wave_efficiency;
    r.t.fma = issued_fmas / fma_lanes_rate() / r.wave_efficiency;
    const double staging_stores = (bm + bn) * bk / 32; // warp stores per k-tile and block
    const double wavefronts = tiles * k_tiles * (warps * bk * 4 + staging_stores);
    r.t.smem = wavefronts / (prof_.sms * clock_hz()) / r.wave_efficiency;
    const double y_bytes = static_cast<double>(p.y_elements()) * 4;
    const double z_bytes = p.epilogue().has_residual() ? y_bytes : 0;
    if (q.splits > 1) {
      r.l2_bytes = tiles * k_tiles * bk * (bm + bn) * 4 + splits * y_bytes;
      r.serial_s = (splits * y_bytes + y_bytes + z_bytes) / (prof_.dram_tbps * 1e12);
    } else {
      r.l2_bytes = tiles * k_tiles * bk * (bm + bn) * 4 + y_bytes + z_bytes;
    }
    r.t.l2 = r.l2_bytes / (prof_.l2_tbps * 1e12);
  }

  // depthwise: one thread per item (kDepthwiseV adjacent outputs of one row and channel), 128-thread blocks.
  // Fast shapes: the tap loops unroll completely, so tools/inspect's hot loop is the grid-stride loop and one pass
  // of it is one item (the instantiations for identity, relu, leaky_relu and clip hold only their activation's
  // code; the kActAny one every activation's code: an upper bound there). Generic: per item the
  // function's code outside the hot loop plus KD*KH*KW / (taps per pass) passes of the hot (tap) loop. L2: the
  // reads of x the L1 cannot keep: NC[D]HW blocks cover 512 adjacent outputs, so x is re-read for the halo rows
  // only; N[D]HWC blocks cover 128 channels of one chunk, so every item's KH rows x span columns come from L2
  // (the neighbouring chunks' blocks re-read the overlap); w once per block; y (+ z) once.
  void depthwise(const ConvProblem& p, ModelRow& r) const {
    namespace kn = kernels;
    const Result<Prepared> prepared = kn::depthwise_prepare(p, emulated_device_info());
    if (!prepared) {
      r.status = prepared.status().message();
      return;
    }
    const auto* plan = static_cast<const kn::KernelPlan<kn::DepthwiseParams>*>(prepared->state.get());
    const kn::DepthwiseParams& q = plan->params;
    const int shape = plan->variant / 2;
    r.specialisation =
        "depthwise_kernel<" + element_type(p) + (plan->wide ? ", long, " : ", int, ") + std::to_string(shape) + ", " +
        std::to_string(shape != kn::kDepthwiseGeneric && kn::has_compile_time_act(q.out.ep.act) ? q.out.ep.act
                                                                                                : kn::kActAny) +
        ">";
    const Json* c = characterisation(r.specialisation);
    if (c == nullptr) {
      r.status = "no characterisation for " + std::string(prof_.arch) + "/" + r.specialisation;
      return;
    }
    const double v = kn::kDepthwiseV, items = static_cast<double>(q.items);
    const double kd = static_cast<double>(p.axis3(0).k), kh = static_cast<double>(p.axis3(1).k),
                 kw = static_cast<double>(p.axis3(2).k);
    const double taps = kd * kh * kw; // per output
    const Json& hot = (*c)["hot_loop"];
    const double hot_insts = hot["instructions"].num(), hot_fma = hot["fma"].num();
    double per_item = hot_insts; // fast shapes: one pass per item
    if (shape == kn::kDepthwiseGeneric) {
      const double taps_per_pass = hot_fma > 0 ? hot_fma / v : 1;
      per_item =
          std::max(0.0, (*c)["whole_function"]["instructions"].num() - hot_insts) + taps / taps_per_pass * hot_insts;
    }
    const double issued_fmas = items * v * taps;
    r.path_fma_share = per_item > 0 ? v * taps / per_item : 0;
    r.instructions_per_tap = v * taps > 0 ? per_item / (v * taps) : 0; // per FMA
    r.warp_instructions = items / 32 * per_item;
    const double blocks = std::min(std::ceil(items / kn::kDepthwiseThreads), 65536.0); // the CUDA grid's cap
    waves(r, blocks, static_cast<int>((*c)["regs"].num()), kn::kDepthwiseThreads, 0);
    r.t.issue = r.warp_instructions / issue_rate() / r.wave_efficiency;
    r.t.fma = issued_fmas / fma_lanes_rate() / r.wave_efficiency;
    const double eb = dtype_bytes(p.dtype(TensorId::kX));
    const AxisParams& ah = p.axis3(1);
    const AxisParams& aw = p.axis3(2);
    const double span = (v - 1) * static_cast<double>(aw.s) + (kw - 1) * static_cast<double>(aw.d) + 1;
    double x_reads = 0;
    if (p.layout() == Layout::kNHWC) {
      x_reads = items * kd * kh * span * eb;
    } else {
      const double out_w = static_cast<double>(p.out3(2));
      const double rows = std::max(1.0, std::floor(kn::kDepthwiseThreads * v / std::max(out_w, 1.0)));
      const double in_rows = (rows - 1) * static_cast<double>(ah.s) + (kh - 1) * static_cast<double>(ah.d) + 1;
      const double halo = std::min(kh, in_rows / (rows * static_cast<double>(ah.s)));
      x_reads = static_cast<double>(p.x_elements()) * eb * std::max(1.0, halo) * static_cast<double>(q.g.kg) * kd;
    }
    // L1 (the smem column: the same unit): a warp's global request costs one cycle per distinct 128-byte line it
    // touches. NC[D]HW: the lanes' x and y addresses are V * SW and V elements apart, the filter is one channel's
    // (a broadcast); N[D]HWC: x and y are consecutive channels, the filter rows of consecutive channels are
    // KD*KH*KW elements apart. Requests per item: fast shapes KH rows x span x loads, KH*KW filter loads; generic
    // one filter load and V x loads per tap; V stores (and V z loads).
    const auto lines = [&](double lane_stride_elems) {
      return std::min(32.0, std::max(1.0, std::ceil(32.0 * lane_stride_elems * eb / 128.0)));
    };
    const bool cl = p.layout() == Layout::kNHWC;
    const double lx = cl ? lines(1.0 / static_cast<double>(q.g.kg)) : lines(v * static_cast<double>(aw.s));
    const double lw = cl ? lines(taps) : 1.0, ly = cl ? lines(1.0) : lines(v);
    const double x_req = shape == kn::kDepthwiseGeneric ? taps * v : kd * kh * span;
    const double y_req = v * (p.epilogue().has_residual() ? 2.0 : 1.0);
    const double l1_cycles = items / 32.0 * (x_req * lx + taps * lw + y_req * ly);
    r.t.smem = l1_cycles / (prof_.sms * clock_hz()) / r.wave_efficiency;
    const double yb = static_cast<double>(p.y_elements()) * eb * (p.epilogue().has_residual() ? 2 : 1);
    r.l2_bytes =
        x_reads + blocks * std::min(static_cast<double>(p.w_elements()), kn::kDepthwiseThreads * taps) * eb + yb;
    r.t.l2 = r.l2_bytes / (prof_.l2_tbps * 1e12);
  }

  void simple(const ConvProblem& p, ModelRow& r, const char* kernel, unsigned threads) const {
    const bool i32 = kernels::index_fits_int32(p);
    r.specialisation = std::string(kernel) + "<" + element_type(p) + (i32 ? ", int>" : ", long>");
    const Json* c = characterisation(r.specialisation);
    if (c == nullptr) {
      r.status = "no characterisation for " + std::string(prof_.arch) + "/" + r.specialisation;
      return;
    }
    const bool pool = is_pool(p.op());
    const bool scatter = std::string(kernel) == "scatter_kernel";
    const double kw = static_cast<double>(p.axis3(2).k);
    const double taps = pool ? r.flops : r.flops / 2; // one tap: an FMA, or a pooling op
    double row = kw;
    if (p.op() == Op::kConvTranspose && !scatter) // gather steps the taps of one phase: ceil(k / s) per row
      row = std::ceil(kw / static_cast<double>(p.axis3(2).s));
    r.instructions_per_tap = row_instructions((*c)["tap_path"], row) / row;
    r.path_fma_share = pool || scatter || r.instructions_per_tap <= 0 ? 0 : 1 / r.instructions_per_tap;
    r.warp_instructions = taps / 32 * r.instructions_per_tap;
    const double items = static_cast<double>(scatter ? p.x_elements() : p.y_elements());
    waves(r, std::ceil(items / threads), static_cast<int>((*c)["regs"].num()), static_cast<int>(threads), 0);
    r.t.issue = r.warp_instructions / issue_rate() / r.wave_efficiency;
    r.t.fma = pool ? 0 : taps / fma_lanes_rate() / r.wave_efficiency;
    const double eb = dtype_bytes(p.dtype(TensorId::kX)); // bytes per element in global memory
    const double xb = static_cast<double>(p.x_elements()) * eb, wb = static_cast<double>(p.w_elements()) * eb,
                 yb = static_cast<double>(p.y_elements()) * eb;
    if (pool)
      r.l2_bytes = xb + yb;
    else if (scatter)
      r.l2_bytes = xb + wb + taps * 8;
    else // x once per output channel of its group
      r.l2_bytes = xb * static_cast<double>(p.op() == Op::kConv ? p.k() / p.groups() : p.k() / p.groups()) + wb + yb;
    r.t.l2 = r.l2_bytes / (prof_.l2_tbps * 1e12);
  }

  void finish(ModelRow& r) const {
    if (r.status != "ok")
      return;
    // A tap path cannot issue more FMAs than instructions: a characterisation that says so was read wrongly
    // (once: tiled's FMAs per tap taken as 1 instead of kCpt, which modeled 378 % FMA) and models nothing.
    if (r.path_fma_share > 1.0) {
      r.status = "inconsistent characterisation of " + r.specialisation + ": the tap path would issue " +
                 std::to_string(r.path_fma_share) + " FMAs per instruction";
      return;
    }
    const std::pair<double, const char*> lim[] = {
        {r.t.issue, "issue"}, {r.t.fma, "fma"}, {r.t.smem, "smem"}, {r.t.l2, "l2"}, {r.t.dram, "dram"}};
    r.modeled_s = 0;
    for (const auto& [s, name] : lim)
      if (s > r.modeled_s) {
        r.modeled_s = s;
        r.binding = name;
      }
    r.modeled_s += r.serial_s;
    r.pct_of_peak = r.modeled_s > 0 ? 100.0 * r.flops / r.modeled_s / peak_flops() : 0;
    r.pct_of_roofline = r.modeled_s > 0 ? 100.0 * r.roofline_s / r.modeled_s : 0;
    r.pct_of_hbm = r.modeled_s > 0 ? 100.0 * r.t.dram / r.modeled_s : 0;
  }

  const kernels::DeviceProfile& prof_;
  const Json& inspect_;
  std::string only_; // --algo: model this row only (empty: every row)
};

const char kCannotSee[] =
    "what it cannot see: latency and occupancy stalls, dependency chains, L2 hit rates (DRAM = compulsory "
    "bytes), bank conflicts and uncoalesced sectors (ideal wavefronts and sectors), clocks below boost, launch "
    "overhead, the cost of skipped padding taps; instruction counts are static SASS counts of the hot loop "
    "(tools/inspect), the remainder code scaled by the taps it runs; the L2 bandwidth is an order of magnitude, "
    "not a spec";

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\')
      o += '\\';
    o += c;
  }
  return o;
}

struct ModelArgs {
  std::string suite = "core", gpu = "h200", json, layers_path, inspect_path, algo;
  bool single = false;
  std::vector<std::string> layer_spec;
};

const std::vector<ExtraOption>& extras() {
  static const std::vector<ExtraOption> e = {{"--suite", true},  {"--gpu", true},     {"--json", true},
                                             {"--layers", true}, {"--inspect", true}, {"--algo", true}};
  return e;
}

bool apply(ModelArgs& m, const std::string& name, const std::string& value, std::ostream& err) {
  if (name == "--suite")
    m.suite = value;
  else if (name == "--gpu")
    m.gpu = value;
  else if (name == "--json")
    m.json = value;
  else if (name == "--layers")
    m.layers_path = value;
  else if (name == "--inspect")
    m.inspect_path = value;
  else if (name == "--algo")
    m.algo = value;
  else {
    err << "convarith model: unknown option '" << name << "' (see convarith model --help)\n";
    return false;
  }
  return true;
}

std::string fmt1(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

} // namespace

int model_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  for (const std::string& a : args)
    if (a == "--help" || a == "-h") {
      out << kModelHelp;
      return 0;
    }
  ModelArgs m;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    if (a == "--layer") {
      m.single = true;
      for (size_t j = i + 1; j < args.size(); ++j) {
        if (j == i + 1 && args[j].find(' ') != std::string::npos) {
          std::istringstream words(args[j]);
          for (std::string w; words >> w;)
            m.layer_spec.push_back(w);
        } else {
          m.layer_spec.push_back(args[j]);
        }
      }
      break;
    }
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      err << "convarith model: " << a << " needs a value\n";
      return 2;
    }
    if (!apply(m, a, value, err))
      return 2;
  }
  std::vector<bench::Layer> layers;
  if (m.single) {
    Result<ParsedLayer> parsed = parse_layer(m.layer_spec, extras());
    if (!parsed) {
      err << "convarith model: " << parsed.status().message() << "\n";
      return 2;
    }
    for (const auto& [name, value] : parsed->args.extras)
      if (!apply(m, name, value, err))
        return 2;
    Result<ConvProblem> p = ConvProblem::make(parsed->desc);
    if (!p) {
      err << "convarith model: " << p.status().to_string() << "\n";
      return 2;
    }
    bench::Layer l;
    l.id = "layer";
    l.layer = p->name();
    l.problem = *p;
    layers.push_back(l);
    m.suite = "(--layer)";
  } else {
    Result<std::vector<bench::Layer>> suite =
        bench::load_suite(m.layers_path.empty() ? bench::default_layers_path() : m.layers_path, m.suite);
    if (!suite) {
      err << "convarith model: " << suite.status().message() << "\n";
      return 2;
    }
    layers = std::move(suite).value();
  }
  if (m.gpu != "h100" && m.gpu != "h200") {
    err << "convarith model: --gpu wants h100 or h200, got '" << m.gpu << "'\n";
    return 2;
  }
  const kernels::DeviceProfile& prof = *kernels::find_device_profile(m.gpu);
  std::string inspect_text = kInspectBaselineJson;
  if (!m.inspect_path.empty()) {
    std::ifstream f(m.inspect_path);
    if (!f) {
      err << "convarith model: --inspect " << m.inspect_path << ": cannot read\n";
      return 2;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    inspect_text = ss.str();
  }
  Json inspect;
  JsonReader reader(inspect_text);
  if (!reader.parse(inspect) || inspect.kind != Json::kObject || !inspect.has("kernels")) {
    err << "convarith model: the kernel characterisation is not an inspection report (JSON error near byte "
        << reader.pos() << ")\n";
    return 2;
  }

  if (!m.algo.empty() && find_algorithm(m.algo, Device::kEmulated) == nullptr) {
    err << "convarith model: --algo " << m.algo << ": no such kernel row\n";
    return 2;
  }
  Model model(prof, inspect, m.algo);
  std::vector<ModelRow> rows;
  for (const bench::Layer& l : layers)
    for (ModelRow& r : model.rows(l))
      rows.push_back(std::move(r));

  int rc = 0;
  out << "convarith model: " << m.suite << " on " << prof.name << " (" << prof.sms << " SMs, " << prof.clock_ghz
      << " GHz, fp32 " << prof.fp32_fma_tflops << " TFLOP/s, HBM " << prof.dram_tbps << " TB/s, L2 ~" << prof.l2_tbps
      << " TB/s) -- MODELED, NOT MEASURED\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-8s %-8s %-22s %5s %9s %9s %9s %9s %9s %6s %10s %7s %6s %-6s %10s\n", "layer",
                "kernel", "specialisation", "fma%", "issue us", "fma us", "smem us", "l2 us", "dram us", "waves",
                "modeled us", "%peak", "%hbm", "bound", "roofline us");
  out << line;
  std::map<std::string, std::vector<double>> pct_by_kernel, hbm_by_kernel;
  for (const ModelRow& r : rows) {
    if (r.status != "ok") {
      out << r.layer_id << " " << r.algorithm << ": " << r.status << "\n";
      rc = 1;
      continue;
    }
    const std::string spec = r.specialisation + (r.splits > 1 ? ",S=" + std::to_string(r.splits) : "");
    std::snprintf(line, sizeof line,
                  "%-8s %-8s %-22s %5.1f %9.2f %9.2f %9.2f %9.2f %9.2f %6.0f %10.2f %6.1f%% %5.1f%% %-6s %10.2f\n",
                  r.layer_id.c_str(), r.algorithm.c_str(), spec.c_str(), 100 * r.path_fma_share, r.t.issue * 1e6,
                  r.t.fma * 1e6, r.t.smem * 1e6, r.t.l2 * 1e6, r.t.dram * 1e6, r.waves, r.modeled_s * 1e6,
                  r.pct_of_peak, r.pct_of_hbm, r.binding.c_str(), r.roofline_s * 1e6);
    out << line;
    pct_by_kernel[r.algorithm].push_back(r.pct_of_peak);
    hbm_by_kernel[r.algorithm].push_back(r.pct_of_hbm);
  }
  const auto summary = [&](const char* what, std::map<std::string, std::vector<double>>& by_kernel) {
    out << "\nper kernel (modeled, not measured): % of " << what << " over the layers it runs\n";
    for (auto& [algo, v] : by_kernel) {
      std::sort(v.begin(), v.end());
      double lg = 0;
      for (double x : v)
        lg += std::log(std::max(x, 1e-9));
      out << "  " << algo << ": " << v.size() << " layers, min " << fmt1(v.front()) << " %, median "
          << fmt1(v[v.size() / 2]) << " %, max " << fmt1(v.back()) << " %, geomean "
          << fmt1(std::exp(lg / static_cast<double>(v.size()))) << " %\n";
    }
  };
  summary("the fp32 FMA peak", pct_by_kernel);
  summary("the HBM bandwidth (compulsory bytes / modeled time)", hbm_by_kernel);
  out << "fma% = FMA share of the instructions on the tap path the layer runs (static SASS, tools/inspect); "
         "%hbm = compulsory bytes / modeled time as a share of the HBM bandwidth\n"
      << kCannotSee << "\n";

  if (!m.json.empty()) {
    std::ofstream f(m.json);
    f.precision(12);
    f << "{\n \"schema\": \"convarith-model-1\",\n \"label\": \"modeled, not measured\",\n \"gpu\": \"" << prof.name
      << "\",\n \"suite\": \"" << json_escape(m.suite) << "\",\n \"profile\": {\"sms\": " << prof.sms
      << ", \"clock_ghz\": " << prof.clock_ghz << ", \"fp32_fma_tflops\": " << prof.fp32_fma_tflops
      << ", \"dram_tbps\": " << prof.dram_tbps << ", \"l2_tbps\": " << prof.l2_tbps << "},\n \"cannot_see\": \""
      << json_escape(kCannotSee) << "\",\n \"rows\": [";
    for (size_t i = 0; i < rows.size(); ++i) {
      const ModelRow& r = rows[i];
      f << (i ? ",\n" : "\n") << "  {\"label\": \"modeled, not measured\", \"layer_id\": \"" << json_escape(r.layer_id)
        << "\", \"algorithm\": \"" << r.algorithm << "\", \"specialisation\": \"" << r.specialisation
        << "\", \"status\": \"" << json_escape(r.status) << "\", \"flops\": " << r.flops << ", \"bytes\": " << r.bytes
        << ", \"issue_us\": " << r.t.issue * 1e6 << ", \"fma_us\": " << r.t.fma * 1e6
        << ", \"smem_us\": " << r.t.smem * 1e6 << ", \"l2_us\": " << r.t.l2 * 1e6 << ", \"dram_us\": " << r.t.dram * 1e6
        << ", \"waves\": " << r.waves << ", \"wave_efficiency\": " << r.wave_efficiency
        << ", \"blocks_per_sm\": " << r.blocks_per_sm << ", \"threads\": " << r.threads
        << ", \"dynamic_smem\": " << r.dynamic_smem << ", \"instructions_per_tap\": " << r.instructions_per_tap
        << ", \"path_fma_share\": " << r.path_fma_share << ", \"warp_instructions\": " << r.warp_instructions
        << ", \"l2_bytes\": " << r.l2_bytes << ", \"splits\": " << r.splits << ", \"serial_us\": " << r.serial_s * 1e6
        << ", \"modeled_us\": " << r.modeled_s * 1e6 << ", \"binding\": \"" << r.binding
        << "\", \"pct_of_peak\": " << r.pct_of_peak << ", \"pct_of_hbm\": " << r.pct_of_hbm
        << ", \"pct_of_roofline\": " << r.pct_of_roofline << ", \"roofline_us\": " << r.roofline_s * 1e6 << "}";
    }
    f << "\n ]\n}\n";
    if (!f) {
      err << "convarith model: --json " << m.json << ": write failed\n";
      return 1;
    }
  }
  return rc;
}

int cmd_model(int argc, char** argv) {
  return model_main(args_after_command(argc, argv), std::cout, std::cerr);
}

} // namespace convarith::cli
