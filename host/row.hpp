// host/row.hpp — the row interface of the algorithm table (internal: users see AlgorithmInfo).
//
// A row says what it takes (ops, dtypes, layouts, epilogue) and provides three functions:
//   supports(problem, device)  OK, or kNotSupported naming what it does not take (the reason is the message);
//   prepare(problem, device)   everything that does not depend on pointers, once, in Plan::create: the
//                              workspace size, a cost estimate, and the row's state (tile configuration,
//                              geometry, grid, CPU blocking) kept by the Plan;
//   run(args)                  launches with the prepared state. The Plan has checked every pointer (null,
//                              memory space, overlap, workspace size) before; run() does not check them again.
// Public → dispatch → kernel layering: the Plan (host/plan.cpp) is the only caller of these.
#pragma once

#include <atomic>
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

// Everything a row's run() receives. Pointers live in the row's memory space (host memory for kCpu and
// kEmulated, device memory for kCuda) and have the problem's dtypes and layouts.
struct KernelArgs {
  const ConvProblem* problem = nullptr;
  const void* prepared = nullptr; // the state prepare() made (Prepared::state.get())
  const void* x = nullptr;
  const void* w = nullptr;    // nullptr for pooling
  const void* bias = nullptr; // optional
  const void* z = nullptr;    // residual, non-null iff the epilogue has one (may equal y)
  void* y = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  void* stream = nullptr; // cudaStream_t on kCuda
  // The row's prepared form of constant weights (prepare_weights), when the run uses the plan's weights; w then
  // points at the plan's copy of them in the problem's w dtype and layout. nullptr: w is the caller's.
  const void* prepared_weights = nullptr;
};

// What prepare() computes once per plan.
struct Prepared {
  size_t workspace_bytes = 0;
  double cost_us = 0;          // a first, simple estimate (the bound model sharpens it)
  double cost_us_weights = -1; // the estimate when the weights are prepared once (PlanOptions::weights); < 0: cost_us
  std::shared_ptr<const void> state; // the row's own prepared state, passed to run() as KernelArgs::prepared
};

// A row's own form of constant weights (Algorithm::prepare_weights).
struct PreparedWeights {
  std::shared_ptr<const void> state; // passed to run() as KernelArgs::prepared_weights
  size_t bytes = 0;                  // memory it holds
};

// One row of the algorithm table.
struct Algorithm {
  const char* name;
  Device device;
  unsigned ops;      // op_bit mask
  unsigned dtypes;   // dtype_bit mask for x, w, z, y (bias: the same or f32)
  unsigned layouts;  // layout_bit mask for activations and filters
  bool epilogue;     // every activation, alpha, beta * z
  bool mixed_dtypes; // takes x, w, z, y of different dtypes (the CPU rows); else all equal
  bool deterministic;
  const char* math;
  const char* summary;
  // The row's own constraints beyond its declared formats (tile fits, device limits). Call supports() instead.
  Status (*check)(const ConvProblem& problem, const DeviceInfo& device);
  Result<Prepared> (*prepare)(const ConvProblem& problem, const DeviceInfo& device);
  Status (*run)(const KernelArgs& args); // nullptr when this build cannot run it (CUDA rows without CUDA)
  // Constant weights (PlanOptions::weights): the row's own prepared form of w (host memory, the problem's w dtype
  // and layout), made once in Plan::create from `state` (Prepared::state) and passed to run() as
  // KernelArgs::prepared_weights. nullptr: the row needs no form of its own (the plan keeps a copy of w only).
  Result<PreparedWeights> (*prepare_weights)(const ConvProblem& problem, const void* state, const void* w) = nullptr;

  // The whole verdict: the declared ops and formats (check_declared), then check(). Without a DeviceInfo: the
  // current one for the row's device (default_device_info).
  Status supports(const ConvProblem& problem, const DeviceInfo& device) const;
  Status supports(const ConvProblem& problem) const;
};

// The one explicit table: CPU rows, then the CUDA rows, then their emulated twins (same kernels, same order).
const std::vector<Algorithm>& algorithm_table();
// nullptr if no row has this name on this device.
const Algorithm* find_algorithm(std::string_view name, Device device);
// The row's declared formats and ops checked against the problem (the first half of every supports()):
// kNotSupported naming the op, dtype, layout or epilogue the row does not take.
Status check_declared(const Algorithm& row, const ConvProblem& problem);
// The DeviceInfo of the emulated device (the executor's sm_90 profile) and of the CPU.
DeviceInfo emulated_device_info();
DeviceInfo cpu_device_info();
// /proc/cpuinfo's first "model name" ("unknown CPU" where it has none), read once per process.
const std::string& cpu_model_name();
// The DeviceInfo a row is prepared for when no plan is involved (tests): the current one for its device.
DeviceInfo default_device_info(Device device);

namespace detail {
// Counts prepare() calls (every row's prepare goes through Plan::create). Tests prove run() never re-plans.
std::atomic<uint64_t>& planning_calls();
// Counts the runs (warm-up and timed) algorithm "tune" makes on its scratch buffers: tests prove a cache hit
// times nothing (host/tune.cpp).
std::atomic<uint64_t>& tuning_runs();
// Empties the process-wide in-memory tune cache (tests; the cache file is not touched).
void clear_tune_cache();
void append_cpu_algorithms(std::vector<Algorithm>& table);    // host/cpu/cpu_algorithms.cpp
void append_kernel_algorithms(std::vector<Algorithm>& table); // kernels/kernel_algorithms.cpp (cuda + emulated)
} // namespace detail

} // namespace convarith
