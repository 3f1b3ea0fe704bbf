// host/device.cpp — CUDA device queries, DeviceInfo and pointer-space checks. Without CUDA the answers are
// "no device" and every pointer is a host pointer.
#include "device.hpp"

#include <algorithm>
#include <cstring>
#include <new>
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
      (void)cudaGetLastError(); // clear the non-sticky error so later calls start clean
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

Result<DeviceInfo> device_info(Device device) {
  switch (device) {
  case Device::kCpu:
    return cpu_device_info();
  case Device::kEmulated:
    return emulated_device_info();
  case Device::kCuda:
    break;
  }
#if defined(CONVARITH_HAVE_CUDA)
  if (cuda_device_count() == 0)
    return device_error(cuda_unavailable_reason());
  DeviceInfo d;
  d.device = Device::kCuda;
  int ordinal = 0;
  cudaError_t err = cudaGetDevice(&ordinal);
  const auto attr = [&](cudaDeviceAttr a) {
    int v = 0;
    if (err == cudaSuccess)
      err = cudaDeviceGetAttribute(&v, a, ordinal);
    return v;
  };
  d.ordinal = ordinal;
  d.cc_major = attr(cudaDevAttrComputeCapabilityMajor);
  d.cc_minor = attr(cudaDevAttrComputeCapabilityMinor);
  d.sms = attr(cudaDevAttrMultiProcessorCount);
  d.smem_per_block = attr(cudaDevAttrMaxSharedMemoryPerBlock);
  d.smem_per_block_optin = attr(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  d.smem_per_sm = attr(cudaDevAttrMaxSharedMemoryPerMultiprocessor);
  d.l2_bytes = attr(cudaDevAttrL2CacheSize);
  if (err != cudaSuccess)
    return device_error(std::string("querying CUDA device ") + std::to_string(ordinal) + ": " + cudaGetErrorName(err) +
                        " (" + cudaGetErrorString(err) + ")");
  d.name = "cuda:" + std::to_string(ordinal) + " sm_" + std::to_string(d.cc_major) + std::to_string(d.cc_minor);
  return d;
#else
  return device_error(cuda_unavailable_reason());
#endif
}

Result<DeviceChoice> choose_device(std::string_view name) {
  DeviceChoice c;
  if (name == "auto") {
    const bool cuda = cuda_device_count() > 0;
    c.device = cuda ? Device::kCuda : Device::kCpu;
    c.why = cuda ? "auto: cuda (a CUDA device is usable)"
                 : "auto: cpu (no usable CUDA device: " + cuda_unavailable_reason() + ")";
    return c;
  }
  Result<Device> d = parse_device(name);
  if (!d)
    return invalid_argument("--device '" + std::string(name) + "': expected cpu, cuda, emulated or auto");
  if (*d == Device::kCuda && cuda_device_count() == 0)
    return device_error("--device cuda: " + cuda_unavailable_reason());
  c.device = *d;
  return c;
}

DeviceInfo default_device_info(Device device) {
  Result<DeviceInfo> d = device_info(device);
  if (d)
    return *d;
  DeviceInfo none;
  none.device = device;
  return none;
}

namespace detail {

int current_cuda_device() {
#if defined(CONVARITH_HAVE_CUDA)
  int ordinal = -1;
  if (cudaGetDevice(&ordinal) != cudaSuccess) {
    (void)cudaGetLastError();
    return -1;
  }
  return ordinal;
#else
  return -1;
#endif
}

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
  if (err == cudaErrorInvalidValue) {
    (void)cudaGetLastError(); // not registered with CUDA: plain host memory (older runtimes say so this way)
    attr.type = cudaMemoryTypeUnregistered;
  } else if (err != cudaSuccess) {
    return device_error(std::string("cannot tell where ") + what + " lives: cudaPointerGetAttributes failed with " +
                        cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
  }
  const bool device_ok = attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
  const bool host_ok = attr.type != cudaMemoryTypeDevice;
  if (device == Device::kCuda && !device_ok)
    return invalid_argument(std::string(what) + " is a host pointer but the plan runs on cuda (pass device memory)");
  if (device != Device::kCuda && !host_ok)
    return invalid_argument(std::string(what) + " is a CUDA device pointer but the plan runs on the " +
                            device_name(device) + " (pass host memory)");
  return Status::ok();
#else
  (void)what;
  if (device == Device::kCuda)
    return device_error(cuda_unavailable_reason());
  return Status::ok();
#endif
}

Result<std::shared_ptr<void>> copy_in_device_memory(Device device, const void* src, size_t bytes) {
  const size_t size = std::max<size_t>(bytes, 1);
  if (device != Device::kCuda) {
    void* p = ::operator new(size, std::align_val_t(64), std::nothrow);
    if (p == nullptr)
      return out_of_range("cannot allocate " + std::to_string(bytes) + " bytes of host memory");
    if (bytes > 0)
      std::memcpy(p, src, bytes);
    return std::shared_ptr<void>(p, [](void* q) { ::operator delete(q, std::align_val_t(64)); });
  }
#if defined(CONVARITH_HAVE_CUDA)
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, size);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return err == cudaErrorMemoryAllocation
               ? out_of_range("cannot allocate " + std::to_string(bytes) + " bytes of CUDA device memory")
               : device_error(std::string("cudaMalloc failed with ") + cudaGetErrorName(err));
  }
  std::shared_ptr<void> owned(p, [](void* q) { (void)cudaFree(q); });
  if (bytes > 0 && (err = cudaMemcpy(p, src, bytes, cudaMemcpyDefault)) != cudaSuccess) {
    (void)cudaGetLastError();
    return device_error(std::string("cudaMemcpy of the weights failed with ") + cudaGetErrorName(err) + " (" +
                        cudaGetErrorString(err) + ")");
  }
  return owned;
#else
  (void)src;
  return device_error(cuda_unavailable_reason());
#endif
}

} // namespace detail
} // namespace convarith
