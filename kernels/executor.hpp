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
//
// Guards: the shared buffer sits between two guard zones (each at least 4 KiB, the back one at
// least as long as the buffer) filled with another NaN pattern, so a read just past either end
// yields NaN too; after every block the guards are checked and a changed byte (a write out of
// bounds) fails the launch with a Status naming the kernel, the block and the offset. Under
// AddressSanitizer the guards are also poisoned (Options::asan_guard), so any access to them is
// reported at the faulting instruction.
//
// Errors of the kernel itself (divergent barrier, a write out of shared-memory bounds, an exception
// escaping the body) are kInternal: the kernels are convarith's; launch-configuration errors are
// kInvalidArgument, as CUDA would reject the launch. A failed launch stops at the failing block;
// fibers left waiting at a barrier are abandoned (their stacks are reused; nothing is destroyed).
// Fiber stacks are cached per OS thread (mmap, a PROT_NONE page below each, so an overflow faults
// instead of silently corrupting a neighbour); a kernel with big local arrays needs a larger
// Options::fiber_stack_bytes.
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
  bool reverse_thread_order = false;    // run each phase's fibers from the last thread to the first
  size_t fiber_stack_bytes = 64 * 1024; // at least 16 KiB; sanitizer builds map 4x (their frames are larger)
  // Under AddressSanitizer only: poison the guard zones around dynamic shared memory so reads and
  // writes past either end are reported where they happen. false leaves only the canary check
  // (tests of that check use it). No effect in other builds.
  bool asan_guard = true;
};
void set_options(const Options& options); // for the calling OS thread
Options options();

// Per-fiber / per-block state of the block being run on the calling OS thread. Outside a launch:
// zeros and nullptr, and sync_threads() does nothing (host code has nobody to wait for).
const uint3& thread_idx();
const uint3& block_idx();
const dim3& block_dim();
const dim3& grid_dim();
void* dynamic_shared();
void sync_threads();

inline void atomic_add(float* p, float v) {
  *p += v;
}
inline void atomic_add(double* p, double v) {
  *p += v;
}
inline void atomic_add(int* p, int v) {
  *p += v;
}
inline void atomic_add(unsigned* p, unsigned v) {
  *p += v;
}

// Runs body() for every thread of every block. Errors: zero-sized or oversized grid/block
// (limits as on sm_90: 1024 threads a block, block.x/y <= 1024, block.z <= 64, grid.x <= 2^31-1,
// grid.y/z <= 65535, 227 KiB dynamic shared memory), a launch from inside a kernel, barrier
// divergence, an out-of-bounds shared-memory write, an exception escaping body(). Blocks run in
// order x fastest, then y, then z. Does not return until the grid has run (no asynchrony).
Status launch(dim3 grid, dim3 block, size_t dynamic_smem_bytes, const std::function<void()>& body, const char* name);

// Counters for tests: phases (barrier releases) and fibers run since the last reset, per OS thread.
struct Stats {
  uint64_t blocks = 0;   // blocks started
  uint64_t threads = 0;  // fibers started (threads per block, for every block started)
  uint64_t barriers = 0; // barrier releases, each counted once per block (not once per thread)
};
Stats stats();
void reset_stats();

} // namespace convarith::emu
