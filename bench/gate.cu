// bench/gate.cu — the timing gate of bench/harness.cpp: one thread that holds its stream until the
// host opens a pinned flag, so the events recorded behind it bracket device work only (built only
// with CUDA; the CPU build never times a device).
#include <cuda_runtime.h>

namespace convarith::bench {
namespace {

__device__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Spins while flag[0] == 0. After timeout_ns it gives up (flag[1] = 1) so a host that blocks while
// enqueueing behind the gate cannot deadlock the stream; the harness then discards the sample.
__global__ void timing_gate(volatile int* flag, unsigned long long timeout_ns) {
  const unsigned long long t0 = global_ns();
  while (flag[0] == 0) {
    if (global_ns() - t0 > timeout_ns) {
      flag[1] = 1;
      __threadfence_system();
      return;
    }
    __nanosleep(200);
  }
}

} // namespace

cudaError_t launch_timing_gate(cudaStream_t stream, int* flag, unsigned long long timeout_ns) {
  timing_gate<<<1, 1, 0, stream>>>(flag, timeout_ns);
  return cudaGetLastError();
}

} // namespace convarith::bench
