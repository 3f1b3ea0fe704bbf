// bench/harness.cpp — LayerBench: buffers, reference check and timing for every implementation of
// one layer on one device (see bench.hpp for the protocol).
//
// CPU timing: std::chrono::steady_clock around one synchronous run. Buffers are not rotated on
// the CPU: the real layers' footprints (MBs) exceed this class of machine's per-core L2 anyway,
// and rotating would change the working set the peer sees too.
// GPU timing measures the device, not the host. Each sample (gated_sample) enqueues a gate kernel
// (bench/gate.cu) that spins on a pinned host flag, records the start event behind it, enqueues
// `batch` runs, records the stop event and only then opens the gate: the events bracket back-to-back
// device work instead of a stream that waits while the host submits (Plan::run's pointer checks and
// launch, cudnnSetStream and cuDNN's legacy call). The submission cost per run is reported on its
// own (host_median_s): inference code pays it too. A gate rather than CUDA-graph replays: the peer's
// legacy cuDNN calls are not documented as capturable, and both sides must be timed the same way.
// The gate gives up after 2 s (an implementation that blocks while enqueuing would otherwise wait
// on it forever); that entry then falls back to ungated samples and reports gated = false.
// batch (choose_batch) > 1 for runs under ~20 us, from the warm-up median, so event resolution does
// not dominate; the time is divided by batch. When the problem's footprint is under 2x the
// device's L2 (cudaDevAttrL2CacheSize), `rotation` copies of x/w/y are made and successive runs use
// successive copies, so the numbers are not L2-hot.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "../cli/io.hpp"
#include "../cli/storage.hpp"
#include "bench.hpp"
#include "reference/reference.hpp"

#if defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime_api.h>

#include "cuda_status.hpp"

namespace convarith::bench {
// bench/gate.cu: enqueues one thread that spins until flag[0] != 0 or timeout_ns pass (then it sets
// flag[1] = 1 and exits). `flag` is the device view of pinned, mapped host memory.
cudaError_t launch_timing_gate(cudaStream_t stream, int* flag, unsigned long long timeout_ns);
} // namespace convarith::bench
#endif
#if defined(CONVARITH_HAVE_CUDNN)
#include "cudnn/cudnn_runner.hpp"
#endif
#if defined(CONVARITH_HAVE_ONEDNN)
#include "onednn/onednn_runner.hpp"
#endif

namespace convarith::bench {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::vector<float> random_floats(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& f : v)
    f = dist(rng);
  return v;
}

// The host buffers LayerBench keeps for a layer (workspaces are added per implementation). The tensors
// are in the layer's dtype (one for all of them; the bench passes no bias).
cli::HostMemory layer_host_memory(const ConvProblem& p, Device device, const Options& options) {
  const uint64_t x = static_cast<uint64_t>(p.x_elements()), y = static_cast<uint64_t>(p.y_elements());
  const uint64_t w = is_pool(p.op()) ? 0 : static_cast<uint64_t>(p.w_elements());
  const uint64_t z = p.epilogue().has_residual() ? y : 0;
  const uint64_t bytes = static_cast<uint64_t>(dtype_bytes(p.dtype(TensorId::kX)));
  cli::HostMemory m;
  m.add(z ? "x, w, z and y" : "x, w and y", cli::saturating_add(cli::saturating_add(x, w), y + z), bytes);
  m.add("the output copy each check compares", y, bytes);
  m.add("the fp64 reference and magnitudes", y, 2 * sizeof(double));
  if (!p.is_plain_f32_nchw())
    m.add("the reference's float32 NCHW copies and the checked values", cli::saturating_add(x + w + z, y),
          sizeof(double));
  if (options.with_peer && device == Device::kCpu)
    m.add("the CPU peer's reordered copies (an estimate)", cli::saturating_add(cli::saturating_add(x, w), y),
          sizeof(float));
  return m;
}

#if defined(CONVARITH_HAVE_CUDA)
cudaError_t device_alloc(float** p, size_t bytes) {
  void* v = nullptr;
  const cudaError_t e = cudaMalloc(&v, bytes);
  *p = static_cast<float*>(v);
  return e;
}

using ::convarith::detail::cuda_status; // host/cuda_status.hpp
#endif

} // namespace

double percentile(std::vector<double> sample, double p) {
  if (sample.empty())
    return 0;
  std::sort(sample.begin(), sample.end());
  const double pos = p * static_cast<double>(sample.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sample.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  // lo + frac * (hi - lo), clamped: a * (1 - f) + b * f can round above b when a == b, which put
  // p10 above the median (test_bench_layers flaked on it).
  return std::clamp(sample[lo] + frac * (sample[hi] - sample[lo]), sample[lo], sample[hi]);
}

double median(std::vector<double> sample) {
  return percentile(std::move(sample), 0.5);
}

int choose_batch(double warmup_median_s) {
  if (!(warmup_median_s > 0))
    return 1;
  // (1 - 1e-9): 20e-6 / 1e-6 is 20.000000000000004 in doubles, and a whole ratio must not round up.
  return static_cast<int>(std::clamp(std::ceil(20e-6 / warmup_median_s * (1 - 1e-9)), 1.0, 64.0));
}

int rotation_count(double footprint_bytes, double l2_bytes, bool rotate) {
  const double l2 = l2_bytes > 0 ? l2_bytes : kFallbackL2Bytes;
  if (!rotate || !(footprint_bytes > 0) || footprint_bytes >= 2 * l2)
    return 1;
  return static_cast<int>(std::min(64.0, std::ceil(4 * l2 / footprint_bytes)));
}

Result<Sample> gated_sample(SampleDevice& device, int batch) {
  if (batch < 1)
    return invalid_argument("gated_sample: batch is " + std::to_string(batch) + ", want >= 1");
  CONVARITH_RETURN_IF_ERROR(device.hold());
  Status s = device.record_start();
  const Clock::time_point t0 = Clock::now();
  for (int b = 0; s && b < batch; ++b)
    s = device.enqueue(b);
  const double host = seconds_since(t0);
  if (s)
    s = device.record_stop();
  device.release();
  CONVARITH_RETURN_IF_ERROR(s);
  Result<double> elapsed = device.device_seconds();
  if (!elapsed)
    return elapsed.status();
  Sample out;
  out.device_s = *elapsed / batch;
  out.host_s = host / batch;
  return out;
}

bool peer_failed(const CaseResult& r) {
  if (!r.is_peer())
    return false;
  if (r.timed() && r.correct)
    return false;
  return r.status.rfind("not_supported", 0) != 0;
}

int choose_reps(const Options& options, double estimate_s) {
  if (options.reps > 0)
    return options.reps;
  if (!(estimate_s > 0))
    return options.min_reps;
  const double want = std::ceil(options.target_seconds / estimate_s);
  return static_cast<int>(
      std::clamp(want, static_cast<double>(options.min_reps), static_cast<double>(options.max_reps)));
}

// ---- LayerBench ---------------------------------------------------------------------------------

struct LayerBench::Impl {
  struct Entry {
    std::string name;      // "convarith:<algo>", "onednn", "cudnn"
    std::string impl;      // "convarith", "onednn", "cudnn"
    std::string algorithm; // what the table shows
    Status prepared;       // the reason it cannot run (kNotSupported, ...) or OK
    bool tried = false;    // prepare() ran
    Plan plan;
    double setup_s = 0;
    size_t workspace = 0;
    std::vector<unsigned char> host_ws;
    void* dev_ws = nullptr;
    int batch = 1;      // GPU: runs per timed sample (choose_batch of the warm-up median)
    bool gated = false; // GPU: samples are held behind the gate (false once it gave up)
    CaseResult checked; // the result of check(); valid when has_check
    bool has_check = false;
#if defined(CONVARITH_HAVE_ONEDNN)
    std::unique_ptr<onednn::Runner> onednn;
#endif
#if defined(CONVARITH_HAVE_CUDNN)
    std::unique_ptr<cudnn::Runner> cudnn;
#endif
  };

  Layer layer;
  Device device = Device::kCpu;
  Options options;
  Choices choices;
  bool have_choices = false;
  // Host copies in the layer's dtype and layouts; y is the host-side (CPU, emulated) output; z only with a residual.
  std::vector<unsigned char> x, w, z, y;
  std::vector<double> want, magnitude;
  bool have_reference = false;
  std::vector<Entry> entries;
  int rotation = 1;
  int next_set = 0;
  cli::HostMemory memory; // what this layer holds on the host, checked before each allocation
#if defined(CONVARITH_HAVE_CUDA)
  std::vector<float*> dx, dw, dy; // the layer's dtype, whatever the pointer type
  float* dz = nullptr;            // the residual: read-only, one copy (not rotated)
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  int* gate_host = nullptr; // [0] open, [1] the gate gave up; pinned and mapped
  int* gate_dev = nullptr;  // the device's view of gate_host
#endif

  ~Impl() {
#if defined(CONVARITH_HAVE_CUDA)
    for (Entry& e : entries)
      if (e.dev_ws != nullptr)
        (void)cudaFree(e.dev_ws);
    entries.clear(); // peers release their handles before the stream goes
    for (float* p : dx)
      (void)cudaFree(p);
    for (float* p : dw)
      (void)cudaFree(p);
    for (float* p : dy)
      (void)cudaFree(p);
    if (dz != nullptr)
      (void)cudaFree(dz);
    if (start != nullptr)
      (void)cudaEventDestroy(start);
    if (stop != nullptr)
      (void)cudaEventDestroy(stop);
    if (stream != nullptr)
      (void)cudaStreamDestroy(stream);
    if (gate_host != nullptr)
      (void)cudaFreeHost(gate_host);
#endif
  }

  const ConvProblem& problem() const {
    return layer.problem;
  }

  bool on_host() const {
    return device != Device::kCuda;
  } // cpu, emulated: host memory, synchronous

  // Options::constant_weights applies: a host device and a layer with weights.
  bool constant_weights() const {
    return options.constant_weights && on_host() && !w.empty();
  }

  void ensure_reference() {
    if (have_reference)
      return;
    // threads 0: one per hardware thread (the full suite's layers reach 180 GFLOP).
    oracle::Tensors t;
    t.x = x.data();
    t.w = w.empty() ? nullptr : w.data();
    t.z = z.empty() ? nullptr : z.data();
    want = oracle::reference(problem(), t, 0);
    magnitude = oracle::reference_magnitude(problem(), t, 0);
    have_reference = true;
  }

  // Plan / peer creation, timed as setup cost.
  Status prepare(Entry& e) {
    if (e.tried)
      return e.prepared;
    e.tried = true;
    const Clock::time_point t0 = Clock::now();
    if (e.impl == "convarith") {
      PlanOptions po;
      po.algorithm = e.algorithm;
      po.weights = constant_weights() ? w.data() : nullptr;
      Result<Plan> plan = Plan::create(problem(), device, po);
      e.setup_s = seconds_since(t0);
      if (!plan)
        return e.prepared = plan.status();
      e.plan = *plan;
      e.workspace = e.plan.workspace_bytes();
      if (e.workspace > 0) {
        if (on_host()) {
          cli::HostMemory with = memory;
          with.add("the workspace of " + e.name, e.workspace, 1);
          if (Status fits = with.check("benchmarking " + layer.id + " with " + e.name); !fits)
            return e.prepared = fits;
          memory = with;
          e.host_ws.resize(e.workspace);
        } else {
#if defined(CONVARITH_HAVE_CUDA)
          Status s = cuda_status(cudaMalloc(&e.dev_ws, e.workspace), "cudaMalloc(workspace)");
          if (!s)
            return e.prepared = s;
#endif
        }
      }
      return e.prepared = Status::ok();
    }
#if defined(CONVARITH_HAVE_ONEDNN)
    if (e.impl == "onednn") {
      // f32 NCHW layers: oneDNN's preferred (blocked) layouts with the reorders from and to NCHW inside
      // run(), its fastest path for a caller holding NCHW tensors. Other formats: the layer's own dtypes,
      // strides and epilogue (post-ops); what oneDNN cannot run there is kNotSupported, shown as n/a. Where
      // only its reference implementation takes them as they are (oneDNN 2.6's bf16 convolutions on plain
      // weights, even on AMX: seconds per layer), its blocked layouts with the reorders inside run() instead.
      onednn::RunnerOptions ro;
      ro.blocked_layouts = problem().is_plain_f32_nchw();
      auto runner = onednn::Runner::create(problem(), ro);
      if (runner && !ro.blocked_layouts && runner->implementation().rfind("ref", 0) == 0) {
        onednn::RunnerOptions blocked;
        blocked.blocked_layouts = true;
        auto second = onednn::Runner::create(problem(), blocked);
        if (second && second->implementation().rfind("ref", 0) != 0)
          runner = std::move(second);
      }
      if (!runner) {
        e.setup_s = seconds_since(t0);
        return e.prepared = peer_refusal(runner.status());
      }
      e.onednn = std::make_unique<onednn::Runner>(std::move(runner).value());
      if (constant_weights())
        if (Status set = e.onednn->set_constant_weights(w.data()); !set)
          return e.prepared = set;
      e.setup_s = seconds_since(t0);
      e.algorithm = "onednn:" + e.onednn->implementation();
      return e.prepared = Status::ok();
    }
#endif
#if defined(CONVARITH_HAVE_CUDNN)
    if (e.impl == "cudnn") {
      auto runner = cudnn::Runner::create(problem(), stream);
      if (!runner)
        return e.prepared = peer_refusal(runner.status());
      e.cudnn = std::move(runner).value();
      Tensors ct;
      ct.x = dx[0];
      ct.w = dw.empty() ? nullptr : dw[0];
      ct.z = dz;
      ct.y = dy[0];
      Status found = e.cudnn->find(ct);
      e.setup_s = seconds_since(t0);
      // Only the descriptor step (Runner::create) may say "cannot express" (kNotSupported): a
      // failure after it is an error the bench reports and fails on.
      if (!found && found.code() == StatusCode::kNotSupported)
        return e.prepared =
                   device_error("cuDNN failed after its descriptor step accepted the problem: " + found.message());
      if (!found)
        return e.prepared = found;
      e.algorithm = "cudnn:" + e.cudnn->algorithm();
      e.workspace = e.cudnn->workspace_bytes();
      return e.prepared = Status::ok();
    }
#endif
    return e.prepared = not_supported("implementation '" + e.name + "' is not built in");
  }

  // A peer's kNotSupported for a layer in another format than f32 NCHW without an epilogue names the format, so
  // the report can say "n/a (format)" rather than blame the layer's geometry.
  Status peer_refusal(const Status& s) const {
    const ConvProblem& p = problem();
    if (s.code() != StatusCode::kNotSupported || p.is_plain_f32_nchw())
      return s;
    std::string what = std::string(dtype_name(p.dtype(TensorId::kX))) + " " + layout_name(p.layout());
    if (!is_pool(p.op()) && p.w_layout() != p.layout())
      what += std::string(" (w ") + layout_name(p.w_layout()) + ")";
    if (!p.epilogue().is_identity())
      what += std::string(" with ") + activation_name(p.epilogue().activation) +
              (p.epilogue().has_residual() ? " + residual" : "") + " epilogue";
    return not_supported("peer cannot run " + what + ": " + s.message());
  }

  // One run on buffer set `set` (enqueued on the stream for the GPU).
  Status run_one(Entry& e, int set) {
    if (on_host()) {
      if (e.impl == "convarith") {
        Tensors t;
        t.x = x.data();
        t.w = w.empty() || constant_weights() ? nullptr : w.data();
        t.z = z.empty() ? nullptr : z.data();
        t.y = y.data();
        return e.plan.run(t, e.host_ws.empty() ? nullptr : e.host_ws.data(), e.host_ws.size(), nullptr);
      }
#if defined(CONVARITH_HAVE_ONEDNN)
      if (e.impl == "onednn") {
        Tensors t;
        t.x = x.data();
        t.w = w.empty() || constant_weights() ? nullptr : w.data();
        t.z = z.empty() ? nullptr : z.data();
        t.y = y.data();
        return e.onednn->run(t);
      }
#endif
      return internal_error("no CPU runner for " + e.name);
    }
#if defined(CONVARITH_HAVE_CUDA)
    const size_t i = static_cast<size_t>(set);
    const float* wp = dw.empty() ? nullptr : dw[i];
    if (e.impl == "convarith") {
      Tensors t;
      t.x = dx[i];
      t.w = wp;
      t.z = dz;
      t.y = dy[i];
      return e.plan.run(t, e.dev_ws, e.workspace, stream);
    }
#if defined(CONVARITH_HAVE_CUDNN)
    if (e.impl == "cudnn") {
      Tensors t;
      t.x = dx[i];
      t.w = wp;
      t.z = dz;
      t.y = dy[i];
      return e.cudnn->run(t);
    }
#endif
#endif
    (void)set;
    return internal_error("no GPU runner for " + e.name);
  }

  // Runs once into a NaN-poisoned output and compares with the reference.
  CaseResult check(size_t index) {
    Entry& e = entries[index];
    if (e.has_check)
      return e.checked;
    CaseResult r;
    r.layer_id = layer.id;
    r.impl = e.impl;
    r.algorithm = e.algorithm;
    r.device = device;
    r.flops = problem().flops();
    r.bytes = static_cast<double>(problem().min_bytes());
    r.rotation = rotation;
    Status s = prepare(e);
    r.setup_s = e.setup_s;
    r.algorithm = e.algorithm;
    r.workspace_bytes = e.workspace;
    if (!s) {
      r.status = (s.code() == StatusCode::kNotSupported ? "not_supported: " : "error: ") + s.to_string();
      e.checked = r;
      e.has_check = true;
      return r;
    }
    ensure_reference();
    std::vector<unsigned char> got(y.size());
    double estimate = 0;
    if (on_host()) {
      // 0xFF bytes are a NaN in every dtype: an element the implementation never writes fails.
      std::fill(y.begin(), y.end(), static_cast<unsigned char>(0xFF));
      const Clock::time_point t0 = Clock::now();
      s = run_one(e, 0);
      estimate = seconds_since(t0);
      got = y;
    } else {
#if defined(CONVARITH_HAVE_CUDA)
      const size_t bytes = got.size();
      // 0xFF bytes are a NaN pattern: an element the implementation never writes fails.
      s = cuda_status(cudaMemsetAsync(dy[0], 0xFF, bytes, stream), "cudaMemsetAsync(y)");
      if (s) {
        (void)cudaEventRecord(start, stream);
        s = run_one(e, 0);
        (void)cudaEventRecord(stop, stream);
      }
      if (s)
        s = cuda_status(cudaStreamSynchronize(stream), "running the case");
      float ms = 0;
      if (s)
        s = cuda_status(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
      estimate = ms * 1e-3;
      if (s && bytes > 0)
        s = cuda_status(cudaMemcpy(got.data(), dy[0], bytes, cudaMemcpyDeviceToHost), "copy y back");
#endif
    }
    if (!s) {
      r.status = "error: " + s.to_string();
    } else {
      // Peers may use Winograd / FFT / reordered sums: their bound is looser (LAYERS.md §4.1).
      const CheckResult c = check_output(problem(), got.data(), want, magnitude, e.impl == "convarith" ? 2.0 : 32.0);
      r.checked = true;
      r.correct = c.ok;
      r.max_rel_err = c.max_rel;
      r.status = c.ok ? "ok" : "wrong: " + c.message;
      r.min_s = estimate;
    }
    e.checked = r;
    e.has_check = true;
    return r;
  }

#if defined(CONVARITH_HAVE_CUDA)
  // One gated (or, once the gate gave up, ungated) sample on the CUDA stream.
  class CudaSample : public SampleDevice {
  public:
    CudaSample(Impl& impl, Entry& e) : impl_(impl), e_(e), gate_(e.gated && impl.gate_dev != nullptr) {}
    bool gave_up() const { return gave_up_; }
    Status hold() override {
      if (!gate_)
        return Status::ok();
      __atomic_store_n(&impl_.gate_host[0], 0, __ATOMIC_SEQ_CST);
      __atomic_store_n(&impl_.gate_host[1], 0, __ATOMIC_SEQ_CST);
      return cuda_status(launch_timing_gate(impl_.stream, impl_.gate_dev, 2000000000ull), "timing gate launch");
    }
    Status record_start() override { return cuda_status(cudaEventRecord(impl_.start, impl_.stream), "event"); }
    Status enqueue(int) override {
      const Status s = impl_.run_one(e_, impl_.next_set);
      impl_.next_set = (impl_.next_set + 1) % impl_.rotation;
      return s;
    }
    Status record_stop() override { return cuda_status(cudaEventRecord(impl_.stop, impl_.stream), "event"); }
    void release() override {
      if (gate_)
        __atomic_store_n(&impl_.gate_host[0], 1, __ATOMIC_SEQ_CST);
    }
    Result<double> device_seconds() override {
      CONVARITH_RETURN_IF_ERROR(cuda_status(cudaEventSynchronize(impl_.stop), "waiting for the timed runs"));
      if (gate_ && __atomic_load_n(&impl_.gate_host[1], __ATOMIC_SEQ_CST) != 0) {
        gave_up_ = true;
        return device_error("the timing gate gave up after 2 s: enqueueing the batch blocked behind it");
      }
      float ms = 0;
      CONVARITH_RETURN_IF_ERROR(
          cuda_status(cudaEventElapsedTime(&ms, impl_.start, impl_.stop), "cudaEventElapsedTime"));
      return ms * 1e-3;
    }

  private:
    Impl& impl_;
    Entry& e_;
    bool gate_;
    bool gave_up_ = false;
  };
#endif

  // One timed sample: seconds per run (device time on the GPU), < 0 on error; *host_s gets the
  // host time per run (the enqueue on the GPU, the run itself on the CPU).
  double time_once(Entry& e, double* host_s = nullptr) {
    if (on_host()) {
      const Clock::time_point t0 = Clock::now();
      if (!run_one(e, 0))
        return -1;
      const double t = seconds_since(t0);
      if (host_s != nullptr)
        *host_s = t;
      return t;
    }
#if defined(CONVARITH_HAVE_CUDA)
    CudaSample sample(*this, e);
    Result<Sample> r = gated_sample(sample, e.batch);
    if (!r && sample.gave_up()) {
      e.gated = false; // this implementation cannot be enqueued behind a held stream: time it ungated
      CudaSample ungated(*this, e);
      r = gated_sample(ungated, e.batch);
    }
    if (!r)
      return -1;
    if (host_s != nullptr)
      *host_s = r->host_s;
    return r->device_s;
#else
    (void)host_s;
    return -1;
#endif
  }

  // Warm-up runs (batch as it stands); on the GPU the batch then follows their median.
  double warm_and_batch(Entry& e, int runs) {
    std::vector<double> warmup;
    for (int i = 0; i < runs; ++i)
      warmup.push_back(time_once(e));
    const double estimate = median(warmup);
    if (device == Device::kCuda)
      e.batch = choose_batch(estimate);
    return estimate;
  }
};

std::vector<std::string> implementation_names(const ConvProblem& problem, Device device, bool with_peer) {
  std::vector<std::string> names;
  for (const AlgorithmInfo& a : algorithms(device))
    if ((a.ops & op_bit(problem.op())) && a.available)
      names.push_back(std::string("convarith:") + a.name);
  if (with_peer) {
#if defined(CONVARITH_HAVE_ONEDNN)
    if (device == Device::kCpu)
      names.emplace_back("onednn");
#endif
#if defined(CONVARITH_HAVE_CUDNN)
    if (device == Device::kCuda)
      names.emplace_back("cudnn");
#endif
  }
  return names;
}

Result<std::unique_ptr<LayerBench>> LayerBench::create(const Layer& layer, Device device, const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->layer = layer;
  impl->device = device;
  impl->options = options;
  const ConvProblem& p = layer.problem;
  impl->memory = layer_host_memory(p, device, options);
  CONVARITH_RETURN_IF_ERROR(impl->memory.check("benchmarking " + layer.id + " (" + p.name() + ")"));
  // Random values in [-1, 1], rounded to the layer's dtype (cli/storage.hpp), in its layouts (the order of
  // the values does not matter to a random tensor).
  const DataType dtype = p.dtype(TensorId::kX);
  const std::vector<float> xv = random_floats(p.x_elements(), options.seed);
  impl->x = cli::to_storage(xv.data(), xv.size(), dtype);
  if (p.w_elements() > 0 && !is_pool(p.op())) {
    const std::vector<float> wv = random_floats(p.w_elements(), options.seed + 1);
    impl->w = cli::to_storage(wv.data(), wv.size(), p.dtype(TensorId::kW));
  }
  if (p.epilogue().has_residual()) {
    const std::vector<float> zv = random_floats(p.y_elements(), options.seed + 2);
    impl->z = cli::to_storage(zv.data(), zv.size(), p.dtype(TensorId::kZ));
  }
  impl->y.assign(static_cast<size_t>(p.tensor(TensorId::kY).bytes()), 0);
  for (const std::string& name : implementation_names(p, device, options.with_peer)) {
    Impl::Entry e;
    e.name = name;
    if (name.rfind("convarith:", 0) == 0) {
      e.impl = "convarith";
      e.algorithm = name.substr(10);
    } else {
      e.impl = name;
      e.algorithm = name;
    }
    impl->entries.push_back(std::move(e));
  }
  if (device == Device::kCuda) {
#if defined(CONVARITH_HAVE_CUDA)
    if (cuda_device_count() == 0)
      return device_error("no CUDA device: " + cuda_unavailable_reason());
    CONVARITH_RETURN_IF_ERROR(cuda_status(cudaStreamCreateWithFlags(&impl->stream, cudaStreamNonBlocking), "stream"));
    CONVARITH_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&impl->start), "cudaEventCreate"));
    CONVARITH_RETURN_IF_ERROR(cuda_status(cudaEventCreate(&impl->stop), "cudaEventCreate"));
    int dev = 0, l2 = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev) != cudaSuccess) {
      (void)cudaGetLastError();
      l2 = 0; // rotation_count falls back to kFallbackL2Bytes
    }
    impl->rotation = rotation_count(static_cast<double>(p.min_bytes()), l2, options.rotate);
    const size_t xb = impl->x.size(), wb = impl->w.size(), yb = impl->y.size(), zb = impl->z.size();
    if (zb > 0) {
      CONVARITH_RETURN_IF_ERROR(cuda_status(device_alloc(&impl->dz, zb), "cudaMalloc(z)"));
      CONVARITH_RETURN_IF_ERROR(
          cuda_status(cudaMemcpy(impl->dz, impl->z.data(), zb, cudaMemcpyHostToDevice), "copy z"));
    }
    for (int r = 0; r < impl->rotation; ++r) {
      float *x = nullptr, *w = nullptr, *y = nullptr;
      CONVARITH_RETURN_IF_ERROR(cuda_status(device_alloc(&x, std::max<size_t>(xb, 4)), "cudaMalloc(x)"));
      impl->dx.push_back(x);
      CONVARITH_RETURN_IF_ERROR(cuda_status(cudaMemcpy(x, impl->x.data(), xb, cudaMemcpyHostToDevice), "copy x"));
      if (wb > 0) {
        CONVARITH_RETURN_IF_ERROR(cuda_status(device_alloc(&w, wb), "cudaMalloc(w)"));
        impl->dw.push_back(w);
        CONVARITH_RETURN_IF_ERROR(cuda_status(cudaMemcpy(w, impl->w.data(), wb, cudaMemcpyHostToDevice), "copy w"));
      }
      CONVARITH_RETURN_IF_ERROR(cuda_status(device_alloc(&y, std::max<size_t>(yb, 4)), "cudaMalloc(y)"));
      impl->dy.push_back(y);
    }
    // Pageable cudaMemcpy returns once the data is staged, and is not ordered with the
    // non-blocking stream: wait for the copies before anything runs on them.
    CONVARITH_RETURN_IF_ERROR(cuda_status(cudaDeviceSynchronize(), "finishing the uploads"));
    // The gate's flag: without it (pinned memory refused) every sample is ungated (gated = false).
    void* flag = nullptr;
    if (cudaHostAlloc(&flag, 2 * sizeof(int), cudaHostAllocMapped) == cudaSuccess) {
      impl->gate_host = static_cast<int*>(flag);
      impl->gate_host[0] = impl->gate_host[1] = 0;
      void* dev_flag = nullptr;
      if (cudaHostGetDevicePointer(&dev_flag, flag, 0) == cudaSuccess)
        impl->gate_dev = static_cast<int*>(dev_flag);
    }
    (void)cudaGetLastError();
    for (Impl::Entry& e : impl->entries)
      e.gated = impl->gate_dev != nullptr;
#else
    return device_error("convarith_bench_lib was built without CUDA");
#endif
  }
  return std::unique_ptr<LayerBench>(new LayerBench(std::move(impl)));
}

LayerBench::LayerBench(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LayerBench::~LayerBench() = default;

const Layer& LayerBench::layer() const {
  return impl_->layer;
}

std::vector<std::string> LayerBench::implementations() const {
  std::vector<std::string> names;
  for (const Impl::Entry& e : impl_->entries)
    names.push_back(e.name);
  return names;
}

// The batch per GPU sample is not chosen here: the check run is cold (CUDA 13 loads modules
// lazily), so it comes from the warm-up median (warm, run, run_interleaved). Each entry gets its
// own batch (~20 us per sample): runs differ by 100x between algorithms.
CaseResult LayerBench::check(size_t index) {
  return impl_->check(index);
}

void LayerBench::warm(size_t index, int runs) {
  if (runs > 0)
    (void)impl_->warm_and_batch(impl_->entries[index], runs);
}

double LayerBench::time_once(size_t index) {
  return impl_->time_once(impl_->entries[index]);
}

CaseResult LayerBench::run(size_t index) {
  CaseResult r = check(index);
  if (!r.correct)
    return r;
  Impl::Entry& e = impl_->entries[index];
  // The estimate for adaptive reps is the warm-up's median, not one run (one preempted run on a
  // busy machine would cut the reps to the minimum).
  const double estimate = impl_->warm_and_batch(e, std::max(impl_->options.warmup, 1));
  const int reps = choose_reps(impl_->options, estimate);
  std::vector<double> times, host;
  times.reserve(static_cast<size_t>(reps));
  for (int i = 0; i < reps; ++i) {
    double h = 0;
    const double t = impl_->time_once(e, &h);
    if (t < 0) {
      r.status = "error: a timed run failed";
      r.correct = false;
      return r;
    }
    times.push_back(t);
    host.push_back(h);
  }
  r.host_median_s = median(host);
  r.gated = e.gated;
  r.reps = reps;
  r.median_s = median(times);
  r.p10_s = percentile(times, 0.1);
  r.p90_s = percentile(times, 0.9);
  r.min_s = *std::min_element(times.begin(), times.end());
  r.rotation = impl_->rotation;
  return r;
}

std::vector<CaseResult> LayerBench::run_interleaved() {
  const size_t count = impl_->entries.size();
  std::vector<CaseResult> results(count);
  std::vector<size_t> live;
  double slowest = 0;
  for (size_t i = 0; i < count; ++i) {
    results[i] = check(i);
    if (!results[i].correct)
      continue;
    slowest = std::max(slowest, impl_->warm_and_batch(impl_->entries[i], std::max(impl_->options.warmup, 1)));
    live.push_back(i);
  }
  // The slowest implementation sets the reps, so the whole layer costs about target_seconds per implementation.
  const int reps = choose_reps(impl_->options, slowest);
  std::vector<std::vector<double>> times(count), host(count);
  for (int rep = 0; rep < reps; ++rep) {
    for (size_t j = 0; j < live.size(); ++j) {
      // Rotate who goes first, so no implementation always runs right after the same other one.
      const size_t i = live[(j + static_cast<size_t>(rep)) % live.size()];
      if (!results[i].correct)
        continue;
      double h = 0;
      const double t = impl_->time_once(impl_->entries[i], &h);
      if (t < 0) {
        results[i].status = "error: a timed run failed";
        results[i].correct = false;
        continue;
      }
      times[i].push_back(t);
      host[i].push_back(h);
    }
  }
  for (size_t i : live) {
    CaseResult& r = results[i];
    if (!r.correct || times[i].empty())
      continue;
    r.reps = static_cast<int>(times[i].size());
    r.median_s = median(times[i]);
    r.p10_s = percentile(times[i], 0.1);
    r.p90_s = percentile(times[i], 0.9);
    r.min_s = *std::min_element(times[i].begin(), times[i].end());
    r.rotation = impl_->rotation;
    r.host_median_s = median(host[i]);
    r.gated = impl_->entries[i].gated;
  }
  const Choices& c = choices();
  for (CaseResult& r : results) {
    if (r.is_peer())
      continue;
    r.auto_choice = !c.auto_algorithm.empty() && r.algorithm == c.auto_algorithm;
    r.tune_choice = !c.tune_algorithm.empty() && r.algorithm == c.tune_algorithm;
  }
  return results;
}

const Choices& LayerBench::choices() {
  Impl& m = *impl_;
  if (m.have_choices)
    return m.choices;
  m.have_choices = true;
  // With constant weights, the choosers rank and time the rows as they will run: with the weights prepared.
  PlanOptions ao;
  ao.weights = m.constant_weights() ? m.w.data() : nullptr;
  if (Result<Plan> a = Plan::create(m.problem(), m.device, ao); a.is_ok())
    m.choices.auto_algorithm = a->algorithm();
  if (m.options.tune) {
    PlanOptions o = ao;
    o.algorithm = "tune";
    o.tune_cache_file = m.options.tune_cache;
    Result<Plan> t = Plan::create(m.problem(), m.device, o);
    if (t.is_ok()) {
      m.choices.tune_algorithm = t->algorithm();
      m.choices.tune_source = t->tuned() ? t->tuning().source : "";
      m.choices.tune_warnings = t->warnings();
    } else {
      m.choices.tune_warnings.push_back("tune: " + t.status().to_string());
    }
  }
  return m.choices;
}

} // namespace convarith::bench
