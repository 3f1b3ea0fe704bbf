// host/device.cpp — CUDA device queries and pointer-space checks. Without CUDA the answers are
// "no device" and every pointer is a host pointer.
#include "device.hpp"

#include <string>

#if defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace convarith {
namespace {

struct DeviceQuery {
  int count = 0;
  std::string reason;
};

const DeviceQuery& query() {
  static const DeviceQuery q = [] {
    DeviceQuery r;
#if defined(CONVARITH_HAVE_CUDA)
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      r.reason = std::string("the CUDA runtime found no usable device: ") + cudaGetErrorName(err) + " (" +
                 cudaGetErrorString(err) + ")";
      (void)cudaGetLastError(); // clear the sticky-free error so later calls start clean
    } else if (n == 0) {
      r.reason = "the CUDA runtime found no device";
    } else {
      r.count = n;
    }
#else
    r.reason = "convarith was built without CUDA (no nvcc when it was configured)";
#endif
    return r;
  }();
  return q;
}

} // namespace

int cuda_device_count() {
  return query().count;
}
std::string cuda_unavailable_reason() {
  return query().reason;
}

namespace detail {

Status check_pointer_space(const void* ptr, const char* what, Device device) {
  if (ptr == nullptr)
    return Status::ok();
#if defined(CONVARITH_HAVE_CUDA)
  if (cuda_device_count() == 0) {
    if (device == Device::kCuda)
      return device_error(cuda_unavailable_reason());
    return Status::ok();
  }
  cudaPointerAttributes attr{};
  const cudaError_t err = cudaPointerGetAttributes(&attr, ptr);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    attr.type = cudaMemoryTypeUnregistered;
  }
  const bool device_ok = attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
  const bool host_ok = attr.type != cudaMemoryTypeDevice;
  if (device == Device::kCuda && !device_ok)
    return invalid_argument(std::string(what) + " is a host pointer but the plan runs on cuda (pass device memory)");
  if (device == Device::kCpu && !host_ok)
    return invalid_argument(std::string(what) + " is a CUDA device pointer but the plan runs on the cpu");
  return Status::ok();
#else
  (void)what;
  if (device == Device::kCuda)
    return device_error(cuda_unavailable_reason());
  return Status::ok();
#endif
}

} // namespace detail
} // namespace convarith
