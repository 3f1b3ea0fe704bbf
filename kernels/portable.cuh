// kernels/portable.cuh — the portability layer that lets one kernel source compile two ways.
//
//  * with nvcc (__CUDACC__): real CUDA; CONVARITH_LAUNCH checks that no error is pending
//    (cudaPeekAtLastError), then is a <<<>>> launch on the caller's stream followed by
//    cudaGetLastError, returned as a Status;
//  * with the host compiler: the CPU kernel executor (kernels/executor.hpp) runs every CUDA thread
//    of a block as a fiber, one block at a time, with CONVARITH_SYNC() as a barrier among the block's
//    fibers and dynamic shared memory as one NaN-poisoned heap buffer per block.
//
// Rules for kernel bodies (so both compilations mean the same thing):
//  * no CUDA runtime headers, no <<<>>>, no inline PTX, no warp intrinsics (unless inside
//    `#if CONVARITH_GPU_ONLY` with a portable #else, and tested on a GPU only);
//  * shared memory only through CONVARITH_DYNAMIC_SHARED (sized at launch); no static __shared__;
//  * every memory access through an access macro, with its width as the pointer's type (float, or
//    float2 / float4 for 64- and 128-bit accesses): CONVARITH_LDG(p) / CONVARITH_STG(p, v) for global
//    memory, CONVARITH_LDS(p) / CONVARITH_STS(p, v) for shared memory, CONVARITH_ATOMIC_ADD(p, v).
//    Under the executor each one checks alignment, bounds and (optionally) counts traffic, naming the
//    source line of the macro in its errors;
//  * barriers only through CONVARITH_SYNC();
//  * a launch through CONVARITH_LAUNCH, or CONVARITH_LAUNCH_OPTIN when the block may need more than
//    48 KiB of dynamic shared memory (it sets cudaFuncAttributeMaxDynamicSharedMemorySize; without it
//    such a launch fails on the GPU and under the executor alike);
//  * threadIdx / blockIdx / blockDim / gridDim as usual (macros under the executor);
//  * one flat params struct by value; 64-bit offsets where a tensor can pass 2^31 elements.
// A kernel family file `foo.cuh` defines, in namespace convarith::kernels:
//    inline Status foo_supports(const ConvProblem&);  inline size_t foo_workspace(const ConvProblem&);
// and in namespace convarith::kernels::CONVARITH_KNS (cuda or emu):
//    Status foo_run(const KernelArgs&);
// `foo.cu` (nvcc) and `foo_emu.cpp` (host compiler) each just include it.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)

#include <cuda_runtime.h>

#include "cuda_status.hpp"

#include "convarith/status.hpp"

#define CONVARITH_GPU_ONLY 1
#define CONVARITH_KNS cuda
#define CONVARITH_GLOBAL __global__
#define CONVARITH_DEVICE __device__ __forceinline__
#define CONVARITH_HOST_DEVICE __host__ __device__ __forceinline__
#define CONVARITH_RESTRICT __restrict__
#define CONVARITH_SYNC() __syncthreads()
#define CONVARITH_ATOMIC_ADD(ptr, value) atomicAdd((ptr), (value))
#define CONVARITH_LDG(ptr) __ldg(ptr)
#define CONVARITH_STG(ptr, value) (*(ptr) = (value))
#define CONVARITH_LDS(ptr) (*(ptr))
#define CONVARITH_STS(ptr, value) (*(ptr) = (value))
#define CONVARITH_DYNAMIC_SHARED(T, name)                                                                              \
  extern __shared__ __align__(16) unsigned char convarith_dynamic_smem_[];                                             \
  T* name = reinterpret_cast<T*>(convarith_dynamic_smem_)

namespace convarith::kernels {
using ::convarith::detail::cuda_status; // host/cuda_status.hpp: the one CUDA error -> Status conversion
// An error some earlier call left pending (cudaPeekAtLastError does not clear it): reported as such,
// and the kernel is not launched, so the launch's own cudaGetLastError can only see the launch's error
// and the caller's error is neither cleared nor blamed on the kernel.
inline Status cuda_pending_error(cudaError_t pending, const char* kernel) {
  if (pending == cudaSuccess)
    return Status::ok();
  return device_error(std::string("a CUDA error was already pending before the launch of ") + kernel +
                      " (not launched): " + cudaGetErrorName(pending) + " (" + cudaGetErrorString(pending) + ")");
}
// CONVARITH_LAUNCH_OPTIN: allow up to smem_bytes of dynamic shared memory (only needed above 48 KiB).
template <typename Kernel> inline Status cuda_optin_smem(Kernel kernel, size_t smem_bytes, const char* name) {
  if (smem_bytes <= 48 * 1024)
    return Status::ok();
  return cuda_status(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem_bytes)), name);
}
} // namespace convarith::kernels

#define CONVARITH_LAUNCH_IMPL_(kernel, grid, block, smem, stream, params, optin)                                       \
  [&]() -> ::convarith::Status {                                                                                       \
    ::convarith::Status pending_ = ::convarith::kernels::cuda_pending_error(cudaPeekAtLastError(), #kernel);           \
    if (!pending_.is_ok())                                                                                             \
      return pending_;                                                                                                 \
    if constexpr (optin) {                                                                                             \
      ::convarith::Status optin_ = ::convarith::kernels::cuda_optin_smem(kernel, (smem), #kernel);                     \
      if (!optin_.is_ok())                                                                                             \
        return optin_;                                                                                                 \
    }                                                                                                                  \
    kernel<<<(grid), (block), (smem), static_cast<cudaStream_t>(stream)>>>(params);                                    \
    return ::convarith::kernels::cuda_status(cudaGetLastError(), "launch of " #kernel);                                \
  }()
// Enqueues kernel<<<grid, block, smem, stream>>>(params) and evaluates to a Status (launch errors only:
// the library never synchronizes behind the caller). At most 48 KiB of dynamic shared memory.
#define CONVARITH_LAUNCH(kernel, grid, block, smem, stream, params)                                                    \
  CONVARITH_LAUNCH_IMPL_(kernel, grid, block, smem, stream, params, false)
// The same with the opt-in to more than 48 KiB (up to the device's maximum, 227 KiB on sm_90).
#define CONVARITH_LAUNCH_OPTIN(kernel, grid, block, smem, stream, params)                                              \
  CONVARITH_LAUNCH_IMPL_(kernel, grid, block, smem, stream, params, true)

// Zero `bytes` bytes at device pointer `ptr`, ordered on `stream`.
#define CONVARITH_MEMSET_ZERO(ptr, bytes, stream)                                                                      \
  ::convarith::kernels::cuda_status(cudaMemsetAsync((ptr), 0, (bytes), static_cast<cudaStream_t>(stream)),             \
                                    "cudaMemsetAsync")

#else // the CPU kernel executor

#include <cstring>

#include "executor.hpp"

#define CONVARITH_GPU_ONLY 0
#define CONVARITH_KNS emu
#define CONVARITH_GLOBAL
#define CONVARITH_DEVICE inline
#define CONVARITH_HOST_DEVICE inline
#define CONVARITH_RESTRICT
#define CONVARITH_SYNC() ::convarith::emu::sync_threads()
#define CONVARITH_ATOMIC_ADD(ptr, value) ::convarith::emu::atomic_add((ptr), (value), __FILE__, __LINE__)
#define CONVARITH_LDG(ptr) ::convarith::emu::ldg((ptr), __FILE__, __LINE__)
#define CONVARITH_STG(ptr, value) ::convarith::emu::stg((ptr), (value), __FILE__, __LINE__)
#define CONVARITH_LDS(ptr) ::convarith::emu::lds((ptr), __FILE__, __LINE__)
#define CONVARITH_STS(ptr, value) ::convarith::emu::sts((ptr), (value), __FILE__, __LINE__)
#define CONVARITH_DYNAMIC_SHARED(T, name) T* name = static_cast<T*>(::convarith::emu::dynamic_shared())
#define threadIdx (::convarith::emu::thread_idx())
#define blockIdx (::convarith::emu::block_idx())
#define blockDim (::convarith::emu::block_dim())
#define gridDim (::convarith::emu::grid_dim())

// Runs every block of the grid (one block at a time, each thread a fiber) and evaluates to a Status,
// after checking the launch against the target profile (executor.hpp) with the kernel's resources.
#define CONVARITH_LAUNCH(kernel, grid, block, smem, stream, params)                                                    \
  ::convarith::emu::launch(                                                                                            \
      ::convarith::emu::LaunchSpec{(grid), (block), (smem), false, #kernel, ::convarith::emu::kernel_key<kernel>()},   \
      [&]() { kernel(params); })
#define CONVARITH_LAUNCH_OPTIN(kernel, grid, block, smem, stream, params)                                              \
  ::convarith::emu::launch(                                                                                            \
      ::convarith::emu::LaunchSpec{(grid), (block), (smem), true, #kernel, ::convarith::emu::kernel_key<kernel>()},    \
      [&]() { kernel(params); })

#define CONVARITH_MEMSET_ZERO(ptr, bytes, stream) (std::memset((ptr), 0, (bytes)), ::convarith::Status::ok())

#endif
