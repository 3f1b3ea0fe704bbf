// bench/bench.hpp — convarith_bench_lib: the real-layer suite (bench/layers.csv), the check against
// the fp64 oracle (reference/), and the timing harness shared by the Google Benchmark binary
// (bench/bench_main.cpp), `convarith bench` (cli/cmd_bench.cpp) and tests/test_bench_*.cpp.
//
// Protocol (../shared/LAYERS.md §4): every case is checked against the fp64 reference BEFORE it is
// timed; ours and the peer get the same buffers, the same warm-up and the same statistic (median of
// the timed runs). GPU cases are timed on the device: CUDA events on one stream held behind a gate
// while the batch is enqueued (see harness.cpp), buffers rotated when the problem fits in twice the
// device's L2; CPU cases with std::chrono::steady_clock (no rotation: see harness.cpp).
// The peer is cuDNN's fastest FMA algorithm on the GPU (host/cudnn/) and oneDNN on the CPU
// (host/onednn/), whichever this build has.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "convarith/convarith.hpp"

namespace convarith::bench {

// ---- the layer file ----------------------------------------------------------------------------
struct Layer {
  std::string id;      // "R03/n1"
  std::string network; // "ResNet-50 v1.5"
  std::string layer;   // "layer1 3x3 64->64"
  std::vector<std::string> suites;
  ConvProblem problem;
  int line = 0; // 1-based line in the file
  bool in_suite(std::string_view suite) const;
};

// The layer file this build was configured with: $CONVARITH_BENCH_LAYERS if set, else
// <source>/bench/layers.csv.
std::string default_layers_path();
// Parses one data row (not a comment); errors name the column and the value.
Result<Layer> parse_layer_row(std::string_view row, int line);
// Every row of a file; the first bad row fails the whole load (message "<path>:<line>: ...").
Result<std::vector<Layer>> load_layers(const std::string& path);
// The rows of a suite ("smoke", "default", "full"), in file order. An unknown suite is an error
// that lists the suites the file has.
Result<std::vector<Layer>> load_suite(const std::string& path, std::string_view suite);
std::vector<std::string> suite_names(const std::vector<Layer>& layers);

// ---- checking ----------------------------------------------------------------------------------
// The reference is the project's fp64 oracle (reference/reference.hpp, convarith::oracle), written
// from the definitions and independent of the library's algorithms; the harness computes it on every
// core (its `threads` argument) once per layer.
struct CheckResult {
  bool ok = false;
  double max_abs = 0; // max |got - want|
  double max_rel = 0; // max |got - want| / magnitude (0 where magnitude is 0 and the values agree)
  int64_t bad = 0;    // elements outside the bound (NaN counts)
  std::string message;
};
// The project's one acceptance rule, oracle::accept (reference/reference.hpp): got is y in its dtype and
// memory order; want and magnitude are oracle::reference / reference_magnitude of the same inputs. factor 2
// fits direct summation (the tests' and `run --check`'s); Winograd/FFT peers need a looser one (the
// harness uses 32 for peers).
CheckResult check_output(const ConvProblem& p, const void* got, const std::vector<double>& want,
                         const std::vector<double>& magnitude, double factor = 2.0);

// ---- the environment block ---------------------------------------------------------------------
struct Environment {
  std::string date_utc;     // ISO 8601
  std::string git_sha;      // configure-time HEAD ("unknown" outside a git checkout)
  std::string host;         // CPU model, logical cores
  std::string cpu_model;    // /proc/cpuinfo's model name
  std::string cpu_flags;    // the ISA flags that decide a CPU library's kernels, as /proc/cpuinfo has them
  std::string cpu_isa;      // the ISA convarith's CPU rows run (its fp32 GEMM kernel): "avx2 (6x16 fp32 GEMM tile)"
  std::string onednn_isa;   // the ISA oneDNN dispatches to ("" when built without the oneDNN adapter)
  std::string thread_env;   // OMP_* / DNNL_* variables that change the CPU peer's threading, as set
  std::string load_average; // /proc/loadavg at start: other work on a shared machine skews CPU timings
  std::string gpu;          // name, SM count ("" when no device)
  std::string driver;       // CUDA driver version ("" when none)
  std::string cuda_runtime; // CUDA runtime version ("" when built without CUDA)
  std::string cudnn;        // "" when built without the cuDNN adapter
  std::string onednn;       // "" when built without the oneDNN adapter
  std::string convarith;    // library version
  double peak_flops = 0;    // device FP32 FMA peak used for % of roofline (0: not known, no % printed)
  double peak_bytes_per_s = 0;
  std::string peak_note; // where the two numbers come from
  std::string
      device_choice; // how the device was picked: "cuda (asked)", "auto: cuda (...)", "auto: cpu (no CUDA device: ...)"
  std::string weights; // weights_note(Options): how the weights were held ("constant: ..." or "per run: ...")
};

// Collected once per process (queries the GPU when `device` is kCuda).
Environment environment(Device device);
// The flags of kCpuIsaFlags that a /proc/cpuinfo text's first "flags" line lists, in that order, space separated
// ("none of avx2 fma ..." when it lists none of them).
std::string cpu_isa_flags(const std::string& cpuinfo);
inline constexpr const char* kCpuIsaFlags[] = {"avx2",     "fma",      "avx512f",  "avx512_bf16", "avx512_fp16",
                                               "amx_tile", "amx_bf16", "amx_fp16", "amx_int8"};

// ---- the harness -------------------------------------------------------------------------------
struct Options {
  int warmup = 10; // untimed runs before timing (both sides)
  int reps = 0;    // timed runs; 0 = adaptive: >= min_reps and about target_seconds
  int min_reps = 10;
  int max_reps = 1000;
  double target_seconds = 0.25; // adaptive reps aim at this much timed work per case
  bool with_peer = true;        // time cuDNN (GPU) / oneDNN (CPU) too
  bool rotate = true;           // GPU: rotate buffers when the problem fits in L2
  uint64_t seed = 20261124;
  // Beside each row's time: the row `auto` takes (always) and, with tune, the row Plan "tune" takes (it times
  // the rows itself, a few runs each on its own scratch buffers, and uses tune_cache when named).
  bool tune = false;
  std::string tune_cache;
  // Constant weights, as inference code holds them: on the host devices (cpu, emulated) ours is a plan made with
  // PlanOptions::weights (the filter converted and packed, or Winograd-transformed, once at setup) run with
  // w == nullptr, and oneDNN's weights are reordered to its layout once at setup (Runner::set_constant_weights);
  // ONNX Runtime (bench/ort_peer.py) holds them as initializers, prepacked once. false: every run is handed w and
  // repacks it (both sides). The GPU rows and cuDNN take w as given either way.
  bool constant_weights = true;
};
// What Options::constant_weights means for a run on `device`, in words (the environment block's "weights").
std::string weights_note(const Options& options, Device device);

// What the library's own choosers take for a layer (LayerBench::choices()).
struct Choices {
  std::string auto_algorithm;             // Plan::create(..., "auto"); "" when no row runs the layer
  std::string tune_algorithm;             // with Options::tune: Plan "tune"'s row; "" otherwise
  std::string tune_source;                // "measured", "memory", "file" ("" when not tuned)
  std::vector<std::string> tune_warnings; // Plan::warnings() of the tune plan
};

struct CaseResult {
  std::string layer_id;
  std::string impl;      // "convarith" or the peer: "cudnn", "onednn"
  std::string algorithm; // table name, or the peer's algorithm ("cudnn:IMPLICIT_PRECOMP_GEMM", "onednn:<impl>")
  Device device = Device::kCpu;
  std::string status;   // "ok", "not_supported: <why>", "error: <why>", "wrong: <check message>"
  bool checked = false; // the output was compared with the reference
  bool correct = false; // ... and matched
  double max_rel_err = 0;
  int reps = 0;
  double median_s = 0, p10_s = 0, p90_s = 0, min_s = 0;
  double setup_s = 0; // plan creation (ours) or descriptor setup + Find (cuDNN) / primitive creation (oneDNN)
  double flops = 0;   // ConvProblem::flops()
  double bytes = 0;   // ConvProblem::min_bytes()
  size_t workspace_bytes = 0;
  int rotation = 1; // buffer sets rotated through (GPU)
  // Host time per run: GPU the time to enqueue the batch (Plan::run's checks and launch, cuDNN's
  // calls) divided by the batch, which inference code pays too; CPU the run itself (synchronous).
  double host_median_s = 0;
  bool gated = false;       // GPU: every timed sample was held behind the gate (device time only)
  bool auto_choice = false; // convarith: the row `auto` takes for this layer
  bool tune_choice = false; // convarith: the row `tune` took (Options::tune)
  bool is_peer() const { return impl != "convarith"; }
  bool timed() const { return reps > 0; }
};

// "convarith:<algo>" for each table row on `device` that runs `problem`'s op (supports() is
// checked later, per case) and the peer ("onednn" on kCpu, "cudnn" on kCuda) when built and asked.
std::vector<std::string> implementation_names(const ConvProblem& problem, Device device, bool with_peer);

// A layer's buffers, reference and every implementation that can run it on one device. The
// reference is computed once; each implementation is checked before it is timed.
class LayerBench {
public:
  // Fails with kDeviceError when `device` is kCuda and no device is usable.
  static Result<std::unique_ptr<LayerBench>> create(const Layer& layer, Device device, const Options& options);
  ~LayerBench();
  LayerBench(const LayerBench&) = delete;
  LayerBench& operator=(const LayerBench&) = delete;

  // Names of the implementations that will be tried: "convarith:<algo>" for each table row on
  // this device (supported or not) and the peer when built and requested.
  std::vector<std::string> implementations() const;
  // Checks implementation `index` and, when correct, times it. Never throws.
  CaseResult run(size_t index);
  // Every implementation: check each, warm each, then time them in turns (A B C, B C A, ...) so a
  // busy machine's interference lands on all of them alike (LAYERS.md §4.5). Reps: adaptive on the
  // slowest implementation unless Options::reps. Results in implementations() order.
  std::vector<CaseResult> run_interleaved();
  // Which row auto (and, with Options::tune, tune) takes for the layer; computed once, on first call.
  // run_interleaved() marks those rows (CaseResult::auto_choice / tune_choice).
  const Choices& choices();
  // The pieces, for Google Benchmark's own loop: check once, then time single runs.
  CaseResult check(size_t index);
  // One timed run of a checked implementation (seconds; GPU: device time per run of a gated batch).
  // Errors come back as < 0.
  double time_once(size_t index);
  // Untimed runs; on the GPU also sets the batch per sample from their median (choose_batch).
  void warm(size_t index, int runs);
  const Layer& layer() const;

private:
  struct Impl;
  explicit LayerBench(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Median / percentile of a sample (sorted copy; p in [0, 1]).
double percentile(std::vector<double> sample, double p);
double median(std::vector<double> sample);
// Adaptive repetition count: enough runs of `estimate_s` to fill target_seconds, clamped.
int choose_reps(const Options& options, double estimate_s);

// ---- GPU timing, the pure pieces (tests/test_bench_timing.cpp runs them on the CPU) ---------------
// Runs per timed GPU sample, from the warm-up median of one run (never the cold check run, which
// pays lazy module loading): enough back-to-back runs for ~20 us of device work, in [1, 64].
int choose_batch(double warmup_median_s);
// Buffer sets to rotate through so successive runs do not find their data in L2: when the
// footprint is under 2 x L2, ceil(4 x L2 / footprint) sets (at most 64), else 1. l2_bytes <= 0
// (the query failed) uses kFallbackL2Bytes.
constexpr double kFallbackL2Bytes = 50e6; // H100's L2; larger than A100's 40 MB
int rotation_count(double footprint_bytes, double l2_bytes, bool rotate);

// What one timed GPU sample needs from the device, so the sequence can be tested with a fake.
class SampleDevice {
public:
  virtual ~SampleDevice() = default;
  virtual Status hold() = 0;           // enqueue the gate: the stream waits until release()
  virtual Status record_start() = 0;   // the start event, behind the gate
  virtual Status enqueue(int run) = 0; // run `run` of the batch (asynchronous)
  virtual Status record_stop() = 0;
  virtual void release() = 0; // opens the gate; called exactly once after hold() succeeded
  // Waits for the stop event: start..stop in seconds; an error when the gate gave up before release().
  virtual Result<double> device_seconds() = 0;
};
struct Sample {
  double device_s = 0; // per run
  double host_s = 0;   // enqueue time per run
};
// hold, record start, enqueue `batch` runs (timed on the host), record stop, release, wait. The
// gate is released on every path once held, so a failed enqueue never leaves the stream spinning.
Result<Sample> gated_sample(SampleDevice& device, int batch);

// A peer result that must fail the bench: the peer is n/a (not timed) for a reason other than the
// descriptor step's "cannot express" (status "not_supported: ..."), or it was wrong.
bool peer_failed(const CaseResult& r);

// ---- output ------------------------------------------------------------------------------------
// Raw results + the environment block as JSON (schema "convarith-bench-1").
std::string results_json(const Environment& env, const std::vector<Layer>& layers,
                         const std::vector<CaseResult>& results, const std::string& command_line,
                         const std::string& suite);
// For the table: our fastest correct algorithm and the peer's case per layer.
struct Summary {
  std::string layer_id;
  const CaseResult* best = nullptr; // fastest correct convarith case, or nullptr
  const CaseResult* peer = nullptr; // the peer's case, or nullptr
  // The peer's case when it is n/a because its adapter cannot run the layer's formats or epilogue (status
  // "not_supported: peer cannot run f16 NHWC ..."): the table says so instead of a time. nullptr otherwise.
  const CaseResult* peer_na = nullptr;
  const CaseResult* auto_case = nullptr; // the convarith case auto takes (timed or not), or nullptr
  const CaseResult* tune_case = nullptr; // the convarith case tune took, or nullptr (not asked)
  double ratio = 0;                      // peer median / our median (> 1: we are faster), 0 when unknown
  double roofline_pct = 0;               // our best as % of min(peak, AI * bandwidth), 0 when unknown
};
std::vector<Summary> summarize(const std::vector<Layer>& layers, const std::vector<CaseResult>& results,
                               const Environment& env);
// Geometric mean of the positive ratios (0 when there are none).
double geometric_mean(const std::vector<double>& values);
// The Markdown/console table the CLI prints.
std::string results_table(const std::vector<Layer>& layers, const std::vector<Summary>& summary, const Environment& env,
                          Device device);

} // namespace convarith::bench
