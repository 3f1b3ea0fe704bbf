// host/device.hpp — internal device helpers: pointer-space checks (with the per-plan cache), the current
// CUDA device, the emulated device's run path.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "row.hpp"

namespace convarith::detail {

// OK when `ptr` (may be null) lives in the memory space `device` runs on: device or managed memory for
// kCuda, anything but device memory for kCpu (and kEmulated). `what` names the argument in the message.
// Only cudaErrorInvalidValue from cudaPointerGetAttributes means "not registered with CUDA" (a plain host
// pointer); any other error (a sticky cudaErrorIllegalAddress after a kernel fault, say) is kDeviceError
// naming cudaGetErrorName, never a false "host pointer".
Status check_pointer_space(const void* ptr, const char* what, Device device);

// Per plan: the last pointer verified in each argument slot. A run whose pointer equals the slot's last
// verified one skips cudaPointerGetAttributes (a driver call, ~0.3-1 us each on the hot path of every run).
// Chosen over a process-wide map: no lock, no growth, and a plan run in a loop over the same buffers (the
// inference case) pays the query once. Limit: memory freed and re-allocated at the same address in another
// space between two runs is not noticed (CUDA's device and host allocations do not share addresses under
// UVA, so only unusual allocators could do that).
class PointerCache {
public:
  Status check(int slot, const void* ptr, const char* what, Device device) {
    if (ptr == nullptr)
      return Status::ok();
    const auto v = reinterpret_cast<uintptr_t>(ptr);
    std::atomic<uintptr_t>& s = slots_[static_cast<size_t>(slot)];
    if (s.load(std::memory_order_relaxed) == v)
      return Status::ok();
    queries_.fetch_add(1, std::memory_order_relaxed);
    CONVARITH_RETURN_IF_ERROR(check_pointer_space(ptr, what, device));
    s.store(v, std::memory_order_relaxed);
    return Status::ok();
  }
  uint64_t queries() const { return queries_.load(); } // pointer-space checks made (tests)

private:
  std::array<std::atomic<uintptr_t>, 6> slots_{};
  std::atomic<uint64_t> queries_{0};
};

// A copy of `bytes` bytes at src (in `device`'s memory space) that the caller owns: 64-byte aligned host memory
// for kCpu and kEmulated, device memory for kCuda (cudaMalloc, copied on the current device and synchronized; freed
// when the last reference goes). kOutOfRange when it cannot be allocated, kDeviceError on a CUDA error.
Result<std::shared_ptr<void>> copy_in_device_memory(Device device, const void* src, size_t bytes);

// The current CUDA device ordinal (cudaGetDevice: no driver round trip), -1 without CUDA.
int current_cuda_device();
// Runs an emulated row's kernels under the executor with the run's tensor extents registered
// (kernels/kernel_algorithms.cpp).
Status run_emulated(const Algorithm& row, const KernelArgs& args);

} // namespace convarith::detail
