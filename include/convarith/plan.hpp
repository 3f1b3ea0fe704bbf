// convarith/plan.hpp — devices, the algorithm table (read-only) and prepared Plans.
//
// A Plan is made once from a validated problem, a device and an algorithm ("auto", "tune" or a row name):
// Plan::create checks that the row takes the problem on that device and prepares everything that does
// not depend on pointers (tile configuration, geometry, grid, CPU blocking, workspace size). run() then
// checks the pointers once each and launches; it never re-plans. The caller owns all memory (x, w,
// bias, z, y, workspace) and the stream. Compiles without CUDA headers: a stream is passed as void* (a
// cudaStream_t; nullptr is the legacy default stream). "tune" (PlanOptions) times the candidate rows on
// scratch buffers of its own and remembers the winner (docs/DESIGN.md §10).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "convarith/device.hpp"
#include "convarith/problem.hpp"
#include "convarith/status.hpp"

namespace convarith {

// A row of the algorithm table, read-only. The same table drives dispatch, the tests and the bench.
struct AlgorithmInfo {
  const char* name;    // unique per device: "cpu_gemm", "tiled", ...
  Device device;       // kCpu, kCuda or kEmulated (every CUDA row has an emulated twin of the same name)
  unsigned ops;        // op_bit(...) mask
  unsigned dtypes;     // dtype_bit(...) mask of x/w/y dtypes it takes
  unsigned layouts;    // layout_bit(...) mask of activation (and filter) layouts it takes
  bool epilogue;       // takes every activation, alpha and the beta * z residual
  bool deterministic;  // bitwise identical results run to run
  const char* math;    // what it computes in: "fp32 FMA"
  const char* summary; // one line: what it is and its constraints
  bool available;      // false: a CUDA row in a build without CUDA
};

// Every row, CPU rows first, then the CUDA rows, then their emulated twins.
std::vector<AlgorithmInfo> algorithms();
// The rows for one device, in table order.
std::vector<AlgorithmInfo> algorithms(Device device);

// The tensors of one run, in the plan's device memory space, in the problem's dtypes and layouts.
struct Tensors {
  const void* x = nullptr;
  const void* w = nullptr;    // nullptr for pooling
  const void* bias = nullptr; // optional (K elements)
  const void* z = nullptr;    // the residual: required when the epilogue's beta != 0, else ignored; may equal y
  void* y = nullptr;
};

// How Plan::create chooses and times (the options beyond the algorithm name).
struct PlanOptions {
  // "auto" (the cheapest supporting row by its cost estimate), "tune" (the fastest supporting row measured
  // on the plan's device, see below) or a row name.
  std::string algorithm = "auto";
  // "tune" only: a cache file to read winners from and write them to ("" = the process-wide in-memory
  // cache only). Keyed by the whole problem, the device, the driver/runtime (kCuda) and the library
  // version; a stale, corrupt, truncated or unreadable file, and a failed write, are warnings
  // (Plan::warnings()), never errors and never trusted. Format: docs/DESIGN.md §10.
  std::string tune_cache_file;
  int tune_warmup = 2; // "tune": untimed runs per candidate row
  int tune_reps = 5;   // "tune": timed runs per candidate row (the median decides); at least 1
  // Constant weights (inference): the filter w, in the problem's w dtype and layout, in the plan's memory space
  // (host memory for kCpu and kEmulated, device memory for kCuda), read during create() only. The plan keeps its
  // own prepared form of them: the CPU rows convert them to f32 once and keep them packed as the GEMM's panels
  // (cpu_gemm) or Winograd-transformed (cpu_winograd), so no run repacks them; the other rows keep a copy. A run
  // with Tensors::w == nullptr then uses them; a run given a w uses that w instead, as a plan without weights
  // does. `auto` ranks the rows by their cost with the weights prepared. "tune" times the rows on its own
  // scratch weights, each row preparing them as it would these. Not for pooling (no weights).
  const void* weights = nullptr;
};

// What "tune" measured (Plan::tuning()).
struct TuneTiming {
  std::string algorithm;
  double median_us = 0; // of the timed runs (0 when the row failed)
  int reps = 0;
  std::string error; // non-empty: the row failed to run on the scratch buffers (it was not a candidate)
};
struct TuneReport {
  bool tuned = false;              // the plan's row was chosen by measurement (algorithm "tune")
  std::string source;              // "measured" (timed now), "memory" (process cache) or "file" (the cache file)
  double median_us = 0;            // the winner's median time (now, or when it was cached)
  std::vector<TuneTiming> timings; // every candidate timed now, in table order (empty on a cache hit)
};

class Plan {
public:
  // Validates that `algorithm` ("auto" or a row name) can run `problem` on `device` and prepares it.
  // "auto" ranks the rows of the device that take the problem by their cost estimate (deterministic rows
  // first) and takes the cheapest; an explicit name that cannot run the problem gives kNotSupported with
  // the reason. kCuda without a usable device gives kDeviceError with cuda_unavailable_reason(). A kCuda
  // plan belongs to the CUDA device current at create(); run() refuses to run with another one current.
  static Result<Plan> create(const ConvProblem& problem, Device device, std::string_view algorithm = "auto");
  // The same with options. "tune" (opt-in) prepares the rows `auto` would rank (the deterministic ones when
  // one takes the problem, as `auto`), runs each on scratch buffers the library allocates on the plan's device
  // (never the caller's tensors; kCpu and kEmulated: host memory, std::chrono; kCuda: device memory, a stream
  // of its own and CUDA events, synchronized before create() returns) options.tune_warmup + tune_reps times,
  // and keeps the row with the lowest median. The winner is remembered process-wide (and in
  // options.tune_cache_file when named): a later create() of the same problem on the same device times
  // nothing. A cached row that no longer exists or no longer takes the problem is re-tuned (with a warning).
  // Tuning is serialized process-wide (timings taken at once would disturb each other); create() from
  // several threads is safe. A row that fails on the scratch buffers is skipped (TuneTiming::error); if
  // the scratch cannot be allocated or every row fails, the plan takes auto's row, with a warning.
  static Result<Plan> create(const ConvProblem& problem, Device device, const PlanOptions& options);

  Plan() = default;
  const ConvProblem& problem() const { return problem_; }
  // A default-constructed (empty) Plan reports kCpu, "" and not deterministic; its run() is an error.
  Device device() const { return device_.device; }
  const DeviceInfo& device_info() const { return device_; }
  const char* algorithm() const; // the row that runs
  // What was asked for: "auto", "tune" or the row name ("" for an empty plan).
  const std::string& requested_algorithm() const;
  // The row `auto` takes for this problem on this device (for "auto" and "tune" plans; "" for an explicit row).
  const std::string& auto_algorithm() const;
  bool tuned() const { return tuning().tuned; } // the row was chosen by measurement
  const TuneReport& tuning() const;             // what "tune" measured or found in the cache
  // Warnings of create() that did not stop it (a stale or corrupt cache file, a failed cache write, a cached
  // row that no longer takes the problem, a row that failed while tuning); empty when all went as asked.
  const std::vector<std::string>& warnings() const;
  bool deterministic() const;
  size_t workspace_bytes() const { return workspace_bytes_; }
  // PlanOptions::weights was given: run() takes Tensors::w == nullptr and uses the plan's prepared form of them.
  bool has_prepared_weights() const;
  size_t prepared_weight_bytes() const;                // memory the plan holds for them (0 without)
  double cost_estimate_us() const { return cost_us_; } // the row's estimate that ranked it (not a measurement)

  // Runs y = act(alpha * op(x, w) + bias + beta * z).
  //  w may be nullptr when the plan has prepared weights (has_prepared_weights()): they are used then.
  //  Each tensor has the problem's dtype and layout (ConvProblem::tensor()); y is fully overwritten; z may be
  //  y itself (in-place residual) but may not overlap it otherwise. workspace: at least workspace_bytes()
  //  (may be nullptr when that is 0). Outputs (y, workspace) may not overlap any other argument (inputs may
  //  overlap each other: they are only read). All in the plan's device memory space (checked once per new
  //  pointer and remembered per argument slot: a host pointer on kCuda or a device pointer on kCpu is
  //  kInvalidArgument). On kCuda the work is enqueued on `stream` and run() returns without synchronizing;
  //  on kCpu and kEmulated it runs on the calling thread (plus the library's worker pool) and returns when
  //  done. Safe to call from several threads at once with different outputs and workspaces. On error
  //  nothing is written.
  Status run(const Tensors& t, void* workspace = nullptr, size_t workspace_bytes = 0, void* stream = nullptr) const;
  // f32 problems: the same with float pointers and no residual (kInvalidArgument if a tensor is not f32 or the
  // epilogue needs z).
  Status run(const float* x, const float* w, const float* bias, float* y, void* workspace = nullptr,
             size_t workspace_bytes = 0, void* stream = nullptr) const;

  struct Impl; // internal: the row and its prepared state

private:
  ConvProblem problem_;
  DeviceInfo device_;
  std::shared_ptr<const Impl> impl_;
  size_t workspace_bytes_ = 0;
  double cost_us_ = 0;
};

} // namespace convarith
