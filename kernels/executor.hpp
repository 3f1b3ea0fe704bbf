// kernels/executor.hpp — the CPU kernel executor: runs CUDA kernel sources (written against
// kernels/portable.cuh) on the host so CI, which has no GPU, runs the very same kernel code.
//
// Model: a launch runs the grid's blocks one at a time, in order. Within a block every CUDA
// thread is a fiber (glibc ucontext) with its own stack; a fiber runs until it finishes or
// reaches sync_threads(), then the next fiber runs. When every live fiber has arrived at the
// barrier the phase ends and they all resume. Dynamic shared memory is one heap buffer of exactly
// the launch's size per block, filled with a NaN pattern at block start, so a read of shared
// memory that no thread wrote in an earlier phase (a missing barrier) yields NaN, and an index
// past the end is a heap overflow for AddressSanitizer. Atomics are plain updates (one fiber runs
// at a time). Barrier misuse (some fibers exit while others wait, i.e. a divergent
// __syncthreads) is reported as an error Status, not a hang.
//
// Options (set_options) let tests run the fibers of each phase in reverse order too: a kernel
// whose result depends on the order has a race.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "convarith/status.hpp"

#if !defined(__CUDACC__)
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
#endif

namespace convarith::emu {

struct Options {
  bool reverse_thread_order = false;  // run each phase's fibers from the last thread to the first
  size_t fiber_stack_bytes = 64 * 1024;
};
void set_options(const Options& options);  // for the calling OS thread
Options options();

// Per-fiber / per-block state of the block being run on the calling OS thread.
const uint3& thread_idx();
const uint3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void* dynamic_shared();
void sync_threads();

inline void atomic_add(float* p, float v) { *p += v; }
inline void atomic_add(double* p, double v) { *p += v; }
inline void atomic_add(int* p, int v) { *p += v; }
inline void atomic_add(unsigned* p, unsigned v) { *p += v; }

// Runs body() for every thread of every block. Errors: zero-sized or oversized grid/block
// (limits as on sm_90: 1024 threads a block, 227 KiB dynamic shared memory), barrier divergence.
Status launch(dim3 grid, dim3 block, size_t dynamic_smem_bytes, const std::function<void()>& body, const char* name);

// Counters for tests: phases (barrier releases) and fibers run since the last reset, per OS thread.
struct Stats {
  uint64_t blocks = 0;
  uint64_t threads = 0;
  uint64_t barriers = 0;
};
Stats stats();
void reset_stats();

}  // namespace convarith::emu
