// host/cuda_status.hpp — the one conversion of a CUDA runtime error into a Status (internal; the library's
// kernels (portable.cuh), the CLI and the bench use it). Include only where cuda_runtime_api.h is available.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "convarith/status.hpp"

namespace convarith::detail {

// OK for cudaSuccess, else kDeviceError "WHAT: cudaErrorName (its description)".
inline Status cuda_status(cudaError_t err, const char* what) {
  if (err == cudaSuccess)
    return Status::ok();
  return device_error(std::string(what) + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

} // namespace convarith::detail
