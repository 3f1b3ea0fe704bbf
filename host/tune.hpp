// host/tune.hpp — the pieces of algorithm "tune" (internal; Plan::create in host/plan.cpp is the caller):
// the cache keys, the process-wide in-memory cache, the cache file (docs/DESIGN.md §10) and the timing of
// one prepared Plan on scratch buffers the library allocates itself.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "convarith/plan.hpp"

namespace convarith::detail {

// What the cache remembers per key.
struct TuneEntry {
  std::string winner;   // the row "tune" chose
  std::string auto_row; // the row "auto" takes for the same problem (so a hit prepares one row only)
  double median_us = 0; // the winner's median when it was measured
};

// The four parts of a key. Fields never hold a tab or a newline (the file's separators).
struct TuneKey {
  std::string library; // version_string()
  std::string device;  // "cpu|<CPU model>|<threads> threads", "emulated|<profile>|host <CPU model>|...",
                       // "cuda|<GPU name>|sm_90|132 SMs"
  std::string driver;  // kCuda: "driver 13000 runtime 13000"; "-" otherwise
  std::string problem; // every field of the problem (op, sizes, axes, dtypes, layouts, math, epilogue), and
                       // " weights=prepared" for plans with PlanOptions::weights (timed as they run)
};
TuneKey tune_key(const ConvProblem& problem, const DeviceInfo& device, bool prepared_weights = false);

// Serializes every tuning (lookups, timing, file I/O) of the process: timings taken at once would disturb
// each other, and the in-memory cache and the file are touched under it only.
std::unique_lock<std::mutex> tuning_lock();
// The in-memory cache (call with tuning_lock() held).
std::optional<TuneEntry> memory_lookup(const TuneKey& key);
void memory_store(const TuneKey& key, const TuneEntry& entry);

// The cache file. load: a missing file is empty and silent; an unreadable, oversized, corrupt or truncated
// file is empty with a warning. lookup: the entry of this key; an entry for the same device and problem
// written by another library version or driver is stale (warning, not returned). store: the file's other
// entries kept, this key's replaced, written to a temporary file and renamed over; a failure is a warning.
struct TuneFile {
  std::string path;
  bool read_ok = false; // the file was missing or parsed cleanly (its entries are kept on store)
  bool writable = true; // false when the path exists but cannot be read whole (not a regular file, no
                        // permission, over 16 MiB): never replaced. A corrupt file is replaced (repaired).
  std::vector<std::pair<TuneKey, TuneEntry>> entries;
};
TuneFile tune_file_load(const std::string& path, std::vector<std::string>& warnings);
std::optional<TuneEntry> tune_file_lookup(const TuneFile& file, const TuneKey& key, std::vector<std::string>& warnings);
void tune_file_store(TuneFile& file, const TuneKey& key, const TuneEntry& entry, std::vector<std::string>& warnings);

// Scratch tensors for timing, in the plan's device memory (host memory for kCpu and kEmulated), one allocation
// per tensor (so the plan's overlap and extent checks see separate buffers), filled with small finite values in
// each tensor's dtype. create() fails (kOutOfRange / kDeviceError) when an allocation fails.
class TuneScratch {
public:
  static Result<std::unique_ptr<TuneScratch>> create(const ConvProblem& problem, Device device, size_t workspace_bytes);
  ~TuneScratch();
  TuneScratch(const TuneScratch&) = delete;
  TuneScratch& operator=(const TuneScratch&) = delete;
  // The median of `reps` timed runs after `warmup` untimed ones, in microseconds; the first failed run's
  // Status otherwise. Counts every run in tuning_runs().
  Result<double> time(const Plan& plan, int warmup, int reps);
  const void* weights() const { return buf_[1]; } // the scratch w (PlanOptions::weights: trial plans prepare it)

private:
  TuneScratch() = default;
  Device device_ = Device::kCpu;
  void* buf_[6] = {};                                        // x, w, bias, z, y, workspace
  [[maybe_unused]] void* stream_ = nullptr;                  // kCuda: cudaStream_t
  [[maybe_unused]] void *start_ = nullptr, *stop_ = nullptr; // kCuda: cudaEvent_t
};

} // namespace convarith::detail
