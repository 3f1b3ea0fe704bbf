// convarith/plan.hpp — Plans, devices and the algorithm table.
//
// A Plan is made from a validated problem, a device and an algorithm ("auto" or a name from
// algorithm_table()). It reports its workspace size and runs many times. The caller owns all
// memory (x, w, bias, y, workspace) and the stream. Compiles without CUDA headers: a stream is
// passed as void* (a cudaStream_t; nullptr is the legacy default stream).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convarith/problem.hpp"
#include "convarith/status.hpp"

namespace convarith {

enum class Device { kCpu, kCuda };
const char* device_name(Device device); // "cpu", "cuda"
Result<Device> parse_device(std::string_view name);

// Number of usable CUDA devices; 0 when built without CUDA or when the runtime finds none.
int cuda_device_count();
// Why there is no usable CUDA device ("convarith was built without CUDA", the runtime's error, ...),
// or an empty string when there is one.
std::string cuda_unavailable_reason();

// Everything an algorithm's run() receives. Pointers live in the algorithm's memory space
// (host memory for kCpu and for run_emulated, device memory for kCuda).
struct KernelArgs {
  const ConvProblem* problem = nullptr;
  const float* x = nullptr;
  const float* w = nullptr;    // nullptr for pooling
  const float* bias = nullptr; // optional
  float* y = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
  void* stream = nullptr; // cudaStream_t on kCuda
};

constexpr unsigned op_bit(Op op) {
  return 1u << static_cast<unsigned>(op);
}

// One row of the algorithm table. The same table drives dispatch, the parameterized tests and
// the benchmark registration.
struct Algorithm {
  const char* name;    // unique per device, e.g. "cpu_gemm", "direct", "tiled"
  Device device;       // where run() runs
  unsigned ops;        // op_bit(...) mask
  bool deterministic;  // bitwise identical results run to run
  const char* summary; // one line: what it is and its constraints
  // OK if this algorithm can run the problem, else kNotSupported naming the reason.
  Status (*supports)(const ConvProblem& problem);
  // Workspace bytes needed for the problem (0 if none). Only called when supports() is OK.
  size_t (*workspace)(const ConvProblem& problem);
  // Runs on `device`. nullptr when this build cannot (CUDA rows in a build without CUDA).
  Status (*run)(const KernelArgs& args);
  // GPU kernels only: the very same kernel source run by the CPU kernel executor on host
  // memory (tests and CI); nullptr for CPU rows.
  Status (*run_emulated)(const KernelArgs& args);
};

// The one explicit table: CPU rows first, then the CUDA kernels, in `auto` preference order.
const std::vector<Algorithm>& algorithm_table();
// nullptr if no row has this name on this device.
const Algorithm* find_algorithm(std::string_view name, Device device);

class Plan {
public:
  // Validates that `algorithm` ("auto" or a table name) can run `problem` on `device`.
  // "auto" picks the first supporting row for the device; an explicit name that cannot run
  // the problem gives kNotSupported with the reason. kCuda without a usable device gives
  // kDeviceError with cuda_unavailable_reason().
  static Result<Plan> create(const ConvProblem& problem, Device device, std::string_view algorithm = "auto");

  Plan() = default;
  const ConvProblem& problem() const { return problem_; }
  // A default-constructed (empty) Plan reports kCpu, "" and not deterministic; its run() is an error.
  Device device() const { return algorithm_ ? algorithm_->device : Device::kCpu; }
  const char* algorithm() const { return algorithm_ ? algorithm_->name : ""; }
  bool deterministic() const { return algorithm_ ? algorithm_->deterministic : false; }
  size_t workspace_bytes() const { return workspace_bytes_; }

  // Runs the problem: y = op(x, w) + bias.
  //  x: x_elements() floats; w: w_elements() floats (nullptr for pooling); bias: K floats or
  //  nullptr; y: y_elements() floats, fully overwritten; workspace: at least workspace_bytes()
  //  (may be nullptr when that is 0). All in the plan's device memory space (checked: a host
  //  pointer on kCuda or a device pointer on kCpu is kInvalidArgument). On kCuda the work is
  //  enqueued on `stream` and run() returns without synchronizing; on kCpu it runs on the
  //  calling thread plus the library's worker pool and returns when done. Safe to call from
  //  several threads at once with different output and workspace buffers (the CPU rows use the
  //  workspace as per-thread scratch). On error nothing is written.
  Status run(const float* x, const float* w, const float* bias, float* y, void* workspace = nullptr,
             size_t workspace_bytes = 0, void* stream = nullptr) const;

private:
  Plan(const ConvProblem& p, const Algorithm* a, size_t ws) : problem_(p), algorithm_(a), workspace_bytes_(ws) {}
  ConvProblem problem_;
  const Algorithm* algorithm_ = nullptr;
  size_t workspace_bytes_ = 0;
};

} // namespace convarith
