// convarith/device.hpp — devices and what a plan knows of them. Compiles without CUDA headers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "convarith/status.hpp"

namespace convarith {

// kCpu: the CPU fallback. kCuda: the CUDA kernels on the current CUDA device. kEmulated: the very same
// CUDA kernel sources run by the CPU kernel executor (CUDA threads as fibers) on host memory, checked
// against an sm_90 device profile — slow (about a million threads a second), deterministic, and the way
// to run and debug the CUDA kernels' code on a machine without a GPU.
enum class Device { kCpu = 0, kCuda = 1, kEmulated = 2 };
const char* device_name(Device device);             // "cpu", "cuda", "emulated"
Result<Device> parse_device(std::string_view name); // cpu | cuda | gpu | emulated

// Number of usable CUDA devices; 0 when built without CUDA or when the runtime finds none.
int cuda_device_count();
// Why there is no usable CUDA device ("convarith was built without CUDA", the runtime's error, ...),
// or an empty string when there is one.
std::string cuda_unavailable_reason();

// What a plan is made for. kCuda: the current device's properties (cudaGetDeviceProperties); kEmulated: the
// executor's target profile (sm_90, H100 limits); kCpu: the CPU threads the library uses (other fields 0).
struct DeviceInfo {
  Device device = Device::kCpu;
  int ordinal = -1; // CUDA device ordinal (kCuda); -1 otherwise
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sms = 0;
  int64_t smem_per_block = 0;       // without opt-in (48 KiB)
  int64_t smem_per_block_optin = 0; // with cudaFuncAttributeMaxDynamicSharedMemorySize
  int64_t smem_per_sm = 0;
  int64_t l2_bytes = 0;
  int cpu_threads = 0; // kCpu
};
// What `--device NAME` means, in one place for every tool: "auto" is kCuda when a CUDA device is usable, else
// kCpu; any other name as parse_device. `why` says what auto chose and why ("auto: cpu (no usable CUDA device:
// ...)"), empty for an explicit name. kInvalidArgument for an unknown name; an explicit "cuda" without a usable
// device is kDeviceError naming cuda_unavailable_reason() (tools exit 2 for the first, 1 for the second).
struct DeviceChoice {
  Device device = Device::kCpu;
  std::string why;
};
Result<DeviceChoice> choose_device(std::string_view name);

// The DeviceInfo of `device` now (kCuda: the current CUDA device; kDeviceError when there is none).
Result<DeviceInfo> device_info(Device device);

} // namespace convarith
