// kernels/executor.hpp — the CPU kernel executor: runs CUDA kernel sources (written against
// kernels/portable.cuh) on the host so CI, which has no GPU, runs the very same kernel code.
//
// Model: a launch runs the grid's blocks one at a time, in order. Within a block every CUDA
// thread is a fiber (glibc ucontext) with its own stack; a fiber runs until it finishes or
// reaches sync_threads(), then the next fiber runs. When every live fiber has arrived at the
// barrier the phase ends and they all resume. Dynamic shared memory is one heap buffer of exactly
// the launch's size per block, filled with a NaN pattern at block start, so a read of shared
// memory that no thread wrote in an earlier phase (a missing barrier) yields NaN, and an index
// past the end is a heap overflow for AddressSanitizer (and, through CONVARITH_LDS/STS, an error
// naming the site). Atomics are plain updates (one fiber runs at a time). Barrier misuse (some
// fibers exit while others wait, i.e. a divergent __syncthreads) is an error Status, not a hang.
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
// GPU faults caught on the CPU: every launch is checked against a target DeviceProfile (sm_90 unless
// Options::profile says otherwise) with the kernel's registers and static shared memory from ptxas
// (kernels/kernel_resources.inc): the launch limits, the 48 KiB shared-memory default without the
// opt-in (CONVARITH_LAUNCH_OPTIN), registers x threads, and a block that cannot be resident at all.
// Every access through the access macros (portable.cuh) is checked for alignment to its width, shared
// ones against the launch's dynamic shared memory, global ones against the tensor extents registered
// with GlobalExtents on the calling OS thread (if any); a fault names the kernel, block, thread,
// source line and address, and the faulting access is not performed. Optionally the same hooks count
// memory traffic per access site (Options::count_traffic, counters()).
//
// Errors of the kernel itself (divergent barrier, a write out of shared-memory bounds, a misaligned or
// out-of-bounds access, an exception escaping the body) are kInternal: the kernels are convarith's;
// launch-configuration errors are kInvalidArgument, as CUDA would reject the launch. A failed launch stops at the
// failing block; fibers left waiting at a barrier are abandoned (their stacks are reused; nothing is destroyed). Fiber
// stacks are cached per OS thread (mmap, a PROT_NONE page below each, so an overflow faults instead of silently
// corrupting a neighbour); a kernel with big local arrays needs a larger Options::fiber_stack_bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "convarith/status.hpp"
#include "device_profile.hpp"

#if !defined(__CUDACC__)
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
};
// CUDA's vector types with their size and alignment (vector_types.h), for 64- and 128-bit accesses.
struct alignas(8) float2 {
  float x, y;
};
struct alignas(16) float4 {
  float x, y, z, w;
};
struct alignas(8) int2 {
  int x, y;
};
struct alignas(16) int4 {
  int x, y, z, w;
};
struct alignas(16) double2 {
  double x, y;
};
#endif

namespace convarith::emu {

// Registers, static shared memory and stack frame of one kernel instantiation for one architecture,
// from ptxas's resource report (kernels/resource_usage.sh --table). `kernel` is the key the launch
// macros compute: the unqualified name with its template arguments, e.g. "tiled_kernel<8>",
// "direct_kernel<long>" (int64_t), "direct_kernel<int>".
struct KernelResources {
  const char* arch = "";   // "sm_90", "sm_80"
  const char* kernel = ""; // see above
  int registers = 0;       // per thread
  int static_smem_bytes = 0;
  int stack_bytes = 0;
};
// The table compiled into the executor (the build's generated one when nvcc ran, else the committed
// kernels/kernel_resources.inc); nullptr when `kernel` has no entry for `arch`.
const KernelResources* find_kernel_resources(const std::string& kernel, const std::string& arch);
const std::vector<KernelResources>& kernel_resource_table();

struct Options {
  bool reverse_thread_order = false;    // run each phase's fibers from the last thread to the first
  size_t fiber_stack_bytes = 64 * 1024; // at least 16 KiB; sanitizer builds map 4x (their frames are larger)
  // Under AddressSanitizer only: poison the guard zones around dynamic shared memory so reads and
  // writes past either end are reported where they happen. false leaves only the canary check
  // (tests of that check use it). No effect in other builds.
  bool asan_guard = true;
  // The device whose limits every launch is checked against; nullptr: kernels::kDefaultEmulatedProfile
  // (sm_90). kernels::kProfileA100 checks sm_80's limits and registers.
  const kernels::DeviceProfile* profile = nullptr;
  // A kernel with no resource entry for the profile's arch is an error (the tests set it, so every
  // new kernel must be added to the table). When false such a kernel is checked without registers.
  bool require_resources = false;
  // Entries looked up before the built-in table (tests plant kernels with given registers).
  const std::vector<KernelResources>* extra_resources = nullptr;
  // Count memory traffic per access site (counters()); off by default (it costs time, not results).
  bool count_traffic = false;
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

// ---- launches --------------------------------------------------------------------------------

struct LaunchSpec {
  dim3 grid;
  dim3 block;
  size_t dynamic_smem_bytes = 0;
  // The launch sets cudaFuncAttributeMaxDynamicSharedMemorySize (CONVARITH_LAUNCH_OPTIN): without it a
  // block may have 48 KiB of shared memory, with it the profile's opt-in maximum (227 KiB on sm_90).
  bool smem_optin = false;
  const char* name = nullptr; // as written at the launch site (messages)
  const char* key = nullptr;  // the instantiation (resource table), kernel_key<F>(); nullptr: name
};

// Runs body() for every thread of every block. Errors (kInvalidArgument, nothing runs): a zero-sized
// grid or block, any limit of the profile exceeded (threads per block, block and grid dimensions,
// shared memory with or without the opt-in, static + dynamic shared memory, registers x threads), a
// block that cannot be resident on one SM (occupancy 0), a kernel missing from the resource table
// (require_resources), a launch from inside a kernel. Errors of the kernel (kInternal, the launch
// stops at the failing block): barrier divergence, a shared-memory write out of bounds, a misaligned
// or out-of-bounds access through the access macros, an exception escaping body(). Blocks run in
// order x fastest, then y, then z. Does not return until the grid has run (no asynchrony).
Status launch(const LaunchSpec& spec, const std::function<void()>& body);
// The same, without the opt-in, with key = name.
Status launch(dim3 grid, dim3 block, size_t dynamic_smem_bytes, const std::function<void()>& body, const char* name);

// Blocks of `threads` threads, `registers` per thread and `smem_bytes` of shared memory (static +
// dynamic) that one SM of `profile` can hold at once (the occupancy calculator's limit by registers,
// shared memory, threads and blocks per SM); 0: the block cannot be resident.
int resident_blocks_per_sm(const kernels::DeviceProfile& profile, unsigned threads, int registers, size_t smem_bytes);

namespace detail {
// "const char* kernel_key() [with auto F = ns::foo<long int>]" -> "foo<long>" (GCC and Clang forms;
// integer type names as cu++filt spells them, so the keys match ptxas's demangled names).
std::string kernel_key_from_signature(const char* pretty_function);
} // namespace detail
template <auto F> const char* kernel_key() {
  static const std::string key = detail::kernel_key_from_signature(__PRETTY_FUNCTION__);
  return key.c_str();
}

// ---- global tensor extents -------------------------------------------------------------------

struct Extent {
  const void* ptr = nullptr; // null or zero bytes: ignored
  size_t bytes = 0;
  const char* name = ""; // "x", "y", ... in messages
};
// While at least one GlobalExtents lives on an OS thread, every global access (CONVARITH_LDG, _STG,
// _ATOMIC_ADD) of a launch on that thread must lie inside one registered extent; an access outside
// all of them fails the launch naming the kernel, the site and the address. Scopes nest.
class GlobalExtents {
public:
  GlobalExtents(std::initializer_list<Extent> extents);
  ~GlobalExtents();
  GlobalExtents(const GlobalExtents&) = delete;
  GlobalExtents& operator=(const GlobalExtents&) = delete;

private:
  size_t saved_count_;
};

// ---- the access hooks (the macros of portable.cuh call these) ---------------------------------

enum class AccessKind : uint8_t { kGlobalLoad, kGlobalStore, kGlobalAtomic, kSharedLoad, kSharedStore };
const char* access_kind_name(AccessKind kind); // "global load", ...

namespace detail {
// What the inline fast path of the access hooks needs, for the launch running on the calling OS thread
// (all zero outside a launch): its dynamic shared memory, the registered global extents (when
// check_extents) and whether traffic is counted. A plain TLS struct (__thread: no TLS wrapper call).
struct AccessWatch {
  uintptr_t smem_base;
  size_t smem_bytes;
  const Extent* extents;
  size_t extent_count;
  unsigned check_extents;
  unsigned counting;
};
#if defined(__GNUC__)
extern __thread AccessWatch t_watch;
#else
extern thread_local AccessWatch t_watch;
#endif
// Checks one access (alignment, bounds) and counts it; on a fault inside a launch it records the
// error and does not return to the kernel (the fiber is abandoned). Outside a launch: nothing.
void on_access(const void* p, size_t bytes, size_t align, AccessKind kind, const char* file, int line);

template <typename T> inline bool misaligned(const T* p) {
  return (reinterpret_cast<uintptr_t>(p) & (alignof(T) - 1)) != 0;
}
template <typename T> inline bool outside_shared(const T* p) {
  const uintptr_t offset = reinterpret_cast<uintptr_t>(p) - t_watch.smem_base; // huge when p < base
  return offset > t_watch.smem_bytes || sizeof(T) > t_watch.smem_bytes - offset;
}
// True when the global access needs the slow path: misaligned, counted, or outside every extent.
template <typename T> inline bool global_slow(const T* p) {
  if (misaligned(p) || t_watch.counting != 0)
    return true;
  if (t_watch.check_extents == 0)
    return false;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  for (size_t i = 0; i < t_watch.extent_count; ++i) {
    const Extent& x = t_watch.extents[i];
    const uintptr_t offset = a - reinterpret_cast<uintptr_t>(x.ptr); // huge when a < ptr
    if (offset < x.bytes && sizeof(T) <= x.bytes - offset)
      return false;
  }
  return true;
}
} // namespace detail

template <typename T> inline T ldg(const T* p, const char* file, int line) {
  if (detail::global_slow(p))
    detail::on_access(p, sizeof(T), alignof(T), AccessKind::kGlobalLoad, file, line);
  T v;
  std::memcpy(static_cast<void*>(&v), static_cast<const void*>(p), sizeof(T));
  return v;
}
template <typename T, typename V> inline void stg(T* p, const V& value, const char* file, int line) {
  if (detail::global_slow(p))
    detail::on_access(p, sizeof(T), alignof(T), AccessKind::kGlobalStore, file, line);
  const T v = value;
  std::memcpy(static_cast<void*>(p), static_cast<const void*>(&v), sizeof(T));
}
// Atomics are plain updates (one fiber runs at a time); returns the old value as atomicAdd does.
template <typename T, typename V> inline T atomic_add(T* p, V value, const char* file, int line) {
  if (detail::global_slow(p))
    detail::on_access(p, sizeof(T), alignof(T), AccessKind::kGlobalAtomic, file, line);
  const T old = *p;
  *p = static_cast<T>(old + value);
  return old;
}
// Shared memory: every access must lie inside the launch's dynamic shared memory (a read past the end
// is an error here, not only a NaN) and be aligned to its width.
template <typename T> inline T lds(const T* p, const char* file, int line) {
  if (detail::misaligned(p) || detail::outside_shared(p) || detail::t_watch.counting != 0)
    detail::on_access(p, sizeof(T), alignof(T), AccessKind::kSharedLoad, file, line);
  T v;
  std::memcpy(static_cast<void*>(&v), static_cast<const void*>(p), sizeof(T));
  return v;
}
template <typename T, typename V> inline void sts(T* p, const V& value, const char* file, int line) {
  if (detail::misaligned(p) || detail::outside_shared(p) || detail::t_watch.counting != 0)
    detail::on_access(p, sizeof(T), alignof(T), AccessKind::kSharedStore, file, line);
  const T v = value;
  std::memcpy(static_cast<void*>(p), static_cast<const void*>(&v), sizeof(T));
}

// ---- statistics and traffic counters ----------------------------------------------------------

// Counters for tests: phases (barrier releases) and fibers run since the last reset, per OS thread.
struct Stats {
  uint64_t blocks = 0;   // blocks started
  uint64_t threads = 0;  // fibers started (threads per block, for every block started)
  uint64_t barriers = 0; // barrier releases, each counted once per block (not once per thread)
};
Stats stats();
void reset_stats();

// Traffic of one access site (one macro call in the source, one kind and width). A request is one warp
// instruction: the lanes of a warp (32 consecutive threads of the block, x fastest) that execute the
// site for the same time in the same phase (between two barriers). Under the fiber model the k-th
// execution of a site by each lane of a warp is taken as the same instruction (exact for uniform
// control flow; an approximation where lanes of a warp diverge).
struct SiteCounters {
  std::string site; // "conv_tiled.cuh:243"
  AccessKind kind = AccessKind::kGlobalLoad;
  int bytes = 0;                 // width of one access
  uint64_t requests = 0;         // warp instructions
  uint64_t accesses = 0;         // lane accesses (requests x active lanes)
  uint64_t sectors = 0;          // global: 32-byte sectors the requests touch
  uint64_t ideal_sectors = 0;    // global: ceil(distinct bytes of each request / 32), summed
  uint64_t wavefronts = 0;       // shared: passes through the 32 banks x 4 bytes (bank conflicts)
  uint64_t ideal_wavefronts = 0; // shared: ceil(distinct 4-byte words of each request / 32), summed
};
struct Counters {
  std::vector<SiteCounters> sites; // in the order first seen
  uint64_t unique_bytes_read = 0;  // distinct global bytes loaded (atomics count as read and written)
  uint64_t unique_bytes_written = 0;
  // Sum over the sites of one kind (site and bytes of the result are empty / 0).
  SiteCounters total(AccessKind kind) const;
};
// Since the last reset_counters(), on the calling OS thread, over launches run with count_traffic.
Counters counters();
void reset_counters();
// Distinct bytes of [p, p + bytes) loaded (or stored) by counted launches since the last reset.
uint64_t unique_bytes_read(const void* p, size_t bytes);
uint64_t unique_bytes_written(const void* p, size_t bytes);

} // namespace convarith::emu
