// kernels/executor.cpp — the CPU kernel executor (the model is described in executor.hpp).
//
// How a launch runs, on the calling OS thread:
//  * the scheduler (the caller's own stack) walks the grid's blocks in order; for each block it
//    (re)starts one fiber per CUDA thread with makecontext and runs the block in phases: in a phase
//    every live fiber runs once (first to last, or last to first) until it reaches sync_threads()
//    or returns. A phase in which every fiber waits at the barrier is a barrier release; a phase in
//    which every fiber returned ends the block; anything in between is a divergent barrier.
//  * fiber stacks and fiber records are cached per OS thread and reused by every block of every
//    launch; getcontext runs once per fiber record for the life of the thread, so a block costs
//    one makecontext and two context switches per thread (plus two per thread per barrier).
//  * dynamic shared memory is one allocation per launch: [front guard][buffer][back guard], the
//    buffer refilled with a NaN pattern at every block start and the guards checked after it.
//  * under AddressSanitizer every switch is announced with __sanitizer_start/finish_switch_fiber
//    (otherwise ASan sees the stack pointer jump into unknown memory), and the guards are
//    poisoned; under ThreadSanitizer each fiber is a TSan fiber and every switch synchronizes
//    (the fibers really do run one after another, so there is no race among them to report).
#include "executor.hpp"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#define CONVARITH_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONVARITH_EMU_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CONVARITH_EMU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONVARITH_EMU_TSAN 1
#endif
#endif
#ifndef CONVARITH_EMU_ASAN
#define CONVARITH_EMU_ASAN 0
#endif
#ifndef CONVARITH_EMU_TSAN
#define CONVARITH_EMU_TSAN 0
#endif

#if CONVARITH_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if CONVARITH_EMU_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace convarith::emu {
namespace {

constexpr size_t kMinFiberStackBytes = 16 * 1024;
// Sanitizer frames carry redzones and shadow bookkeeping; the same kernel needs more stack.
constexpr size_t kSanitizerStackFactor = (CONVARITH_EMU_ASAN || CONVARITH_EMU_TSAN) ? 4 : 1;

// Little-endian 0x7FF8A5A5: a quiet NaN as a float, and two of them are a quiet NaN as a double
// (high word 0x7FF8...), so a read of shared memory no thread has written is NaN at either width.
constexpr uint32_t kSmemPoisonWord = 0x7FF8A5A5u;
// The guards hold a different NaN, so a read past the end poisons the result as well, and a
// changed guard byte is unambiguous.
constexpr uint32_t kGuardWord = 0x7FF8C0DEu;
constexpr size_t kMinGuardBytes = 4096;
constexpr size_t kSmemAlignment = 256; // CUDA guarantees at least 16; larger costs nothing here

enum class FiberState : uint8_t { kReady, kAtBarrier, kDone };

struct Fiber {
  ucontext_t context{};
  uint3 thread_idx{0, 0, 0};
  FiberState state = FiberState::kReady;
  void* stack_bottom = nullptr; // kept here: swapcontext may rewrite context.uc_stack
  bool abandoned = false;       // left mid-kernel by a failed block: its stack holds unfinished frames
  size_t stack_bytes = 0;
  uint32_t linear = 0; // thread index within the block, x fastest (warp = linear / 32)
  // Traffic counters: per site id, the phase serial and how often this fiber executed it in that phase.
  std::vector<std::pair<uint64_t, uint32_t>> site_occurrences;
#if CONVARITH_EMU_ASAN
  void* fake_stack = nullptr;
#endif
#if CONVARITH_EMU_TSAN
  void* tsan_fiber = nullptr;
#endif
};

// What the accessors read: plain pointers and values in a trivially initialized thread_local, so
// threadIdx & co. cost a TLS load, not a guarded initialization.
struct Current {
  Fiber* fiber = nullptr;
  unsigned char* smem = nullptr;
  uint3 block_idx{0, 0, 0};
  dim3 block_dim{0, 0, 0};
  dim3 grid_dim{0, 0, 0};
};
thread_local Current t_current;
thread_local Options t_options;
thread_local Stats t_stats;

// Registered global extents (GlobalExtents scopes push and pop) of this OS thread.
thread_local std::vector<Extent> t_extents;
thread_local size_t t_extent_scopes = 0;

// One access of a counted launch, kept until the phase ends.
struct AccessRecord {
  uint32_t site;
  uint32_t warp;
  uint32_t occurrence;
  uintptr_t address;
};

// The traffic counters of this OS thread (Options::count_traffic).
struct SiteKey {
  const char* file;
  int line;
  AccessKind kind;
  int bytes;
  bool operator==(const SiteKey& o) const {
    return file == o.file && line == o.line && kind == o.kind && bytes == o.bytes;
  }
};
struct SiteKeyHash {
  size_t operator()(const SiteKey& k) const {
    return std::hash<const void*>()(k.file) ^ (static_cast<size_t>(k.line) * 1000003u) ^
           (static_cast<size_t>(k.kind) << 20) ^ (static_cast<size_t>(k.bytes) << 24);
  }
};
struct LineMask {
  uint64_t read = 0;
  uint64_t written = 0;
};
struct TrafficState {
  std::vector<SiteCounters> sites;
  std::unordered_map<SiteKey, uint32_t, SiteKeyHash> ids;
  std::unordered_map<uintptr_t, LineMask> lines; // 64-byte lines of global memory: bytes touched
  std::vector<AccessRecord> records;             // the current phase's accesses
  uint64_t phase_serial = 1;
};
thread_local TrafficState t_traffic;

// Fiber stacks: one mapping of `count` stacks of `usable` bytes, each with a PROT_NONE page below it
// (stacks grow down), so a fiber that overflows its stack faults instead of writing into its neighbour.
class StackPool {
public:
  StackPool() = default;
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool() { release(); }

  // Keeps the mapping when it already has at least `count` stacks of exactly `usable` bytes.
  bool reserve(size_t count, size_t usable, int* err) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    usable = (usable + page - 1) / page * page;
    if (base_ != nullptr && usable == usable_ && count <= count_)
      return true;
    release();
    const size_t slot = usable + page;
    void* base =
        mmap(nullptr, slot * count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) {
      *err = errno;
      return false;
    }
    base_ = static_cast<unsigned char*>(base);
    for (size_t i = 0; i < count; ++i) {
      if (mprotect(base_ + i * slot, page, PROT_NONE) != 0) {
        *err = errno;
        release();
        return false;
      }
    }
    page_ = page;
    usable_ = usable;
    count_ = count;
    return true;
  }
  unsigned char* stack(size_t i) const { return base_ + i * (usable_ + page_) + page_; }
  size_t usable() const { return usable_; }
  size_t count() const { return count_; }

private:
  void release() {
    if (base_ != nullptr)
      munmap(base_, (usable_ + page_) * count_);
    base_ = nullptr;
    usable_ = count_ = 0;
  }
  unsigned char* base_ = nullptr;
  size_t page_ = 0;
  size_t usable_ = 0;
  size_t count_ = 0;
};

// The per-OS-thread scheduler state that outlives launches (fibers and stacks are reused).
struct Engine {
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine() {
#if CONVARITH_EMU_TSAN
    for (auto& f : fibers)
      __tsan_destroy_fiber(f->tsan_fiber);
#endif
  }

  ucontext_t scheduler{};
  // unique_ptr: a ucontext_t points into itself (its FP state) and must never move.
  std::vector<std::unique_ptr<Fiber>> fibers;
  StackPool stacks;
  bool in_launch = false;
  const std::function<void()>* body = nullptr;
  const char* name = "";
  const char* key = "";
  bool counting = false; // this launch counts traffic
  Status fiber_error;    // first error raised inside a fiber (an exception escaping the body, a fault)
#if CONVARITH_EMU_ASAN
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
#endif
#if CONVARITH_EMU_TSAN
  void* scheduler_tsan_fiber = nullptr;
#endif
};

Engine& engine() {
  thread_local Engine e;
  return e;
}

std::string dims(unsigned x, unsigned y, unsigned z) {
  return "(" + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) + ")";
}
std::string where() {
  const Current& c = t_current;
  return "launch of " + std::string(engine().name) + ": block " + dims(c.block_idx.x, c.block_idx.y, c.block_idx.z) +
         " of grid " + dims(c.grid_dim.x, c.grid_dim.y, c.grid_dim.z);
}

void switch_to_fiber(Engine& e, Fiber& f) {
  t_current.fiber = &f;
#if CONVARITH_EMU_ASAN
  void* fake_stack = nullptr;
  __sanitizer_start_switch_fiber(&fake_stack, f.stack_bottom, f.stack_bytes);
#endif
#if CONVARITH_EMU_TSAN
  __tsan_switch_to_fiber(f.tsan_fiber, 0);
#endif
  swapcontext(&e.scheduler, &f.context);
#if CONVARITH_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
  t_current.fiber = nullptr;
}

// From a fiber back to the scheduler; returns when the scheduler resumes this fiber.
void switch_to_scheduler(Engine& e, Fiber& f) {
#if CONVARITH_EMU_ASAN
  // The fiber's fake stack (ASan's detect_stack_use_after_return mode) is saved even when the body
  // has finished: the fiber record restarts for the next block and takes it back in fiber_entry.
  // Passing nullptr here would free it and cost an mmap/munmap of a fresh one per fiber per block.
  __sanitizer_start_switch_fiber(&f.fake_stack, e.scheduler_stack_bottom, e.scheduler_stack_size);
#endif
#if CONVARITH_EMU_TSAN
  __tsan_switch_to_fiber(e.scheduler_tsan_fiber, 0);
#endif
  swapcontext(&f.context, &e.scheduler);
#if CONVARITH_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, &e.scheduler_stack_bottom, &e.scheduler_stack_size);
#endif
}

// Not instrumented by ASan: this frame never returns, so a fake-stack frame of its own would never be
// released and each restart would leak one into the reused fake stack.
#if CONVARITH_EMU_ASAN
__attribute__((no_sanitize_address))
#endif
void fiber_entry() {
  Engine& e = engine();
  Fiber& f = *t_current.fiber;
#if CONVARITH_EMU_ASAN
  __sanitizer_finish_switch_fiber(f.fake_stack, &e.scheduler_stack_bottom, &e.scheduler_stack_size);
#endif
  // An exception must not unwind past the fiber's first frame (there is nothing above it).
  try {
    (*e.body)();
  } catch (const std::exception& ex) {
    if (e.fiber_error.is_ok())
      e.fiber_error = internal_error(where() + ": thread " + dims(f.thread_idx.x, f.thread_idx.y, f.thread_idx.z) +
                                     " threw: " + ex.what());
  } catch (...) {
    if (e.fiber_error.is_ok())
      e.fiber_error = internal_error(where() + ": thread " + dims(f.thread_idx.x, f.thread_idx.y, f.thread_idx.z) +
                                     " threw a non-std::exception");
  }
  f.state = FiberState::kDone;
  // The scheduler never resumes a finished fiber (it restarts it with makecontext), so this loop
  // only guarantees that fiber_entry cannot return into uc_link == nullptr (thread exit).
  for (;;)
    switch_to_scheduler(e, f);
}

// [front guard][exact buffer][back guard] in one allocation per launch.
class SharedBuffer {
public:
  SharedBuffer(size_t bytes, bool poison_guards) : bytes_(bytes) {
    front_ = kMinGuardBytes;
    back_ = bytes > kMinGuardBytes ? bytes : kMinGuardBytes;
    void* p = nullptr;
    if (posix_memalign(&p, kSmemAlignment, front_ + bytes_ + back_) != 0)
      return;
    alloc_ = static_cast<unsigned char*>(p);
    fill(alloc_, front_, kGuardWord);
    fill(alloc_ + front_ + bytes_, back_, kGuardWord);
#if CONVARITH_EMU_ASAN
    if (poison_guards) {
      __asan_poison_memory_region(alloc_, front_);
      __asan_poison_memory_region(alloc_ + front_ + bytes_, back_);
      poisoned_ = true;
    }
#else
    (void)poison_guards;
#endif
  }
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;
  ~SharedBuffer() {
#if CONVARITH_EMU_ASAN
    if (alloc_ != nullptr)
      __asan_unpoison_memory_region(alloc_, front_ + bytes_ + back_);
#endif
    free(alloc_);
  }

  bool ok() const {
    return alloc_ != nullptr;
  }
  unsigned char* data() const {
    return alloc_ + front_;
  }
  void poison_buffer() {
    fill(data(), bytes_, kSmemPoisonWord);
  }

  // Empty when both guards are intact; otherwise says which end and how far out the first change is.
  std::string check_guards() const {
    if (poisoned_)
      return {}; // ASan reports any access to the guards where it happens
    const size_t front_changed = first_change(alloc_, front_, true);
    if (front_changed != kNone) {
      return "write before the start of dynamic shared memory (" + std::to_string(bytes_) + " bytes): guard byte at -" +
             std::to_string(front_ - front_changed) + " changed";
    }
    const size_t back_changed = first_change(alloc_ + front_ + bytes_, back_, false);
    if (back_changed != kNone) {
      return "write past the end of dynamic shared memory (" + std::to_string(bytes_) + " bytes): guard byte at +" +
             std::to_string(back_changed) + " (offset " + std::to_string(bytes_ + back_changed) + ") changed";
    }
    return {};
  }

private:
  static constexpr size_t kNone = ~size_t{0};

  // Byte i of the zone holds byte i % 4 of the word, so the pattern is word-aligned whatever the size.
  static void fill(unsigned char* p, size_t n, uint32_t word) {
    unsigned char pattern[4];
    std::memcpy(pattern, &word, 4);
    for (size_t i = 0; i < n; ++i)
      p[i] = pattern[i % 4];
  }
  // The nearest changed byte to the buffer: the last one of the front guard, the first of the back.
  static size_t first_change(const unsigned char* p, size_t n, bool from_end) {
    unsigned char pattern[4];
    std::memcpy(pattern, &kGuardWord, 4);
    for (size_t j = 0; j < n; ++j) {
      const size_t i = from_end ? n - 1 - j : j;
      if (p[i] != pattern[i % 4])
        return i;
    }
    return kNone;
  }

  unsigned char* alloc_ = nullptr;
  size_t bytes_ = 0;
  size_t front_ = 0;
  size_t back_ = 0;
  bool poisoned_ = false;
};

std::string u64(uint64_t v) {
  return std::to_string(v);
}
std::string hex(uintptr_t a) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIxPTR, a);
  return buf;
}
std::string site_name(const char* file, int line) {
  const char* base = std::strrchr(file, '/');
  return std::string(base != nullptr ? base + 1 : file) + ":" + std::to_string(line);
}

const kernels::DeviceProfile& profile_of(const Options& o) {
  return o.profile != nullptr ? *o.profile : kernels::kDefaultEmulatedProfile;
}

const KernelResources* lookup_resources(const Options& o, const std::string& key, const std::string& arch) {
  if (o.extra_resources != nullptr) {
    for (const KernelResources& r : *o.extra_resources) {
      if (key == r.kernel && arch == r.arch)
        return &r;
    }
  }
  return find_kernel_resources(key, arch);
}

int64_t round_up(int64_t v, int64_t unit) {
  return unit <= 0 ? v : (v + unit - 1) / unit * unit;
}

// The launch as the profile's GPU would accept or refuse it (cudaLaunchKernel's checks), then
// whether a block can be resident at all. `res` may be null (registers unknown: not checked).
Status check_config(const LaunchSpec& spec, const kernels::DeviceProfile& prof, const KernelResources* res) {
  const dim3 grid = spec.grid, block = spec.block;
  const size_t smem = spec.dynamic_smem_bytes;
  const std::string on = std::string(" on ") + prof.arch + " (" + prof.name + ")";
  const std::string k = std::string("launch of ") + spec.name + ": ";
  if (grid.x == 0 || grid.y == 0 || grid.z == 0)
    return invalid_argument(k + "grid " + dims(grid.x, grid.y, grid.z) + " has a zero dimension");
  if (block.x == 0 || block.y == 0 || block.z == 0)
    return invalid_argument(k + "block " + dims(block.x, block.y, block.z) + " has a zero dimension");
  if (grid.x > prof.max_grid_x)
    return invalid_argument(k + "grid.x " + std::to_string(grid.x) + " exceeds the limit " +
                            std::to_string(prof.max_grid_x) + on);
  if (grid.y > static_cast<unsigned>(prof.max_grid_yz) || grid.z > static_cast<unsigned>(prof.max_grid_yz))
    return invalid_argument(k + "grid " + dims(grid.x, grid.y, grid.z) + ": grid.y and grid.z must be at most " +
                            std::to_string(prof.max_grid_yz) + on);
  if (block.x > static_cast<unsigned>(prof.max_block_x) || block.y > static_cast<unsigned>(prof.max_block_y) ||
      block.z > static_cast<unsigned>(prof.max_block_z))
    return invalid_argument(k + "block " + dims(block.x, block.y, block.z) + ": block.x and block.y must be at most " +
                            std::to_string(prof.max_block_x) + ", block.z at most " + std::to_string(prof.max_block_z) +
                            on);
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads > static_cast<uint64_t>(prof.max_threads_per_block))
    return invalid_argument(k + "block " + dims(block.x, block.y, block.z) + " has " + u64(threads) +
                            " threads, more than " + std::to_string(prof.max_threads_per_block) + on);
  const int64_t static_smem = res != nullptr ? res->static_smem_bytes : 0;
  const int64_t total_smem = static_cast<int64_t>(std::min<size_t>(smem, size_t{1} << 40)) + static_smem;
  if (!spec.smem_optin && total_smem > prof.smem_per_block_default)
    return invalid_argument(k + "dynamic shared memory " + u64(smem) + " bytes (+ " + std::to_string(static_smem) +
                            " static) exceeds the " + std::to_string(prof.smem_per_block_default) +
                            " bytes a block may use without the opt-in" + on +
                            ": launch with CONVARITH_LAUNCH_OPTIN (cudaFuncAttributeMaxDynamicSharedMemorySize)");
  if (total_smem > prof.smem_per_block_optin)
    return invalid_argument(k + "dynamic shared memory " + u64(smem) + " bytes (+ " + std::to_string(static_smem) +
                            " static) exceeds the limit " + std::to_string(prof.smem_per_block_optin) +
                            " (the opt-in maximum per block" + on + ")");
  if (res == nullptr)
    return Status::ok();
  const std::string kernel = std::string(" (") + res->kernel + ")";
  if (res->registers > prof.max_regs_per_thread)
    return invalid_argument(k + std::to_string(res->registers) + " registers per thread" + kernel +
                            " exceed the limit " + std::to_string(prof.max_regs_per_thread) + on);
  const uint64_t regs = threads * static_cast<uint64_t>(res->registers);
  if (regs > static_cast<uint64_t>(prof.regs_per_block))
    return invalid_argument(k + "block " + dims(block.x, block.y, block.z) + ": " + u64(threads) + " threads x " +
                            std::to_string(res->registers) + " registers" + kernel + " = " + u64(regs) +
                            " registers, more than the " + std::to_string(prof.regs_per_block) + " a block may use" +
                            on + " (too many resources requested for launch)");
  // Occupancy: can one block be resident on one SM?
  const int64_t warps = (static_cast<int64_t>(threads) + prof.warp_size - 1) / prof.warp_size;
  const int64_t regs_per_warp = round_up(int64_t{res->registers} * prof.warp_size, prof.reg_alloc_unit);
  const int64_t smem_per_block = total_smem + prof.smem_reserved_per_block;
  const std::string zero = k + "a block " + dims(block.x, block.y, block.z) + kernel + " cannot be resident on an SM" +
                           on + " (occupancy 0, as cudaOccupancyMaxActiveBlocksPerMultiprocessor would report): ";
  if (warps * regs_per_warp > prof.regs_per_sm)
    return invalid_argument(zero + std::to_string(warps) + " warps x " + std::to_string(regs_per_warp) +
                            " registers per warp (" + std::to_string(res->registers) +
                            " per thread, allocated in units of " + std::to_string(prof.reg_alloc_unit) +
                            " per warp) = " + std::to_string(warps * regs_per_warp) + " registers, more than the " +
                            std::to_string(prof.regs_per_sm) + " of an SM");
  if (smem_per_block > prof.smem_per_sm)
    return invalid_argument(zero + std::to_string(total_smem) + " bytes of shared memory + " +
                            std::to_string(prof.smem_reserved_per_block) +
                            " reserved per block = " + std::to_string(smem_per_block) + ", more than the " +
                            std::to_string(prof.smem_per_sm) + " of an SM");
  if (static_cast<int64_t>(threads) > prof.max_threads_per_sm)
    return invalid_argument(zero + u64(threads) + " threads, more than the " + std::to_string(prof.max_threads_per_sm) +
                            " of an SM");
  return Status::ok();
}

// ---- access checks and traffic ------------------------------------------------------------------

std::string thread_where(const Fiber& f) {
  return where() + ": thread " + dims(f.thread_idx.x, f.thread_idx.y, f.thread_idx.z);
}

// The message of the fault being raised (built in a statement of its own, so no temporary of it is left
// on the fiber's stack, which is abandoned and never unwound).
thread_local std::string t_fault;

// Records a kernel fault (t_fault) and leaves the fiber for good: run_block sees the error and
// abandons the block.
[[noreturn]] void fault() {
  Engine& e = engine();
  Fiber& f = *t_current.fiber;
  if (e.fiber_error.is_ok())
    e.fiber_error = internal_error(thread_where(f) + ": " + t_fault);
  t_fault.clear();
  for (;;)
    switch_to_scheduler(e, f);
}

// "nearest: y [0x.., +400 bytes), the access ends 4 bytes past its end" for an access outside every extent.
std::string nearest_extent(uintptr_t a, size_t bytes) {
  const Extent* best = nullptr;
  uintptr_t best_distance = ~uintptr_t{0};
  bool after = false;
  for (const Extent& x : t_extents) {
    const uintptr_t lo = reinterpret_cast<uintptr_t>(x.ptr), hi = lo + x.bytes;
    const bool is_after = a + bytes > hi;
    const uintptr_t d = is_after ? a + bytes - hi : lo - a;
    if (d < best_distance) {
      best_distance = d;
      best = &x;
      after = is_after;
    }
  }
  if (best == nullptr)
    return "no extents registered";
  std::string m = std::string("nearest: ") + best->name + " [" + hex(reinterpret_cast<uintptr_t>(best->ptr)) + ", +" +
                  u64(best->bytes) + " bytes), ";
  const uintptr_t lo = reinterpret_cast<uintptr_t>(best->ptr);
  if (after)
    m += "the access ends " + u64(best_distance) + " bytes past its end (offset " + u64(a - lo) + ")";
  else
    m += "the access starts " + u64(best_distance) + " bytes before it";
  return m;
}

bool inside_an_extent(uintptr_t a, size_t bytes) {
  for (const Extent& x : t_extents) {
    const uintptr_t lo = reinterpret_cast<uintptr_t>(x.ptr);
    if (a >= lo && a - lo <= x.bytes && bytes <= x.bytes - (a - lo))
      return true;
  }
  return false;
}

bool is_shared(AccessKind kind) {
  return kind == AccessKind::kSharedLoad || kind == AccessKind::kSharedStore;
}

void mark_bytes(uintptr_t a, size_t bytes, bool read, bool written) {
  for (size_t i = 0; i < bytes;) {
    const uintptr_t line = (a + i) >> 6;
    const unsigned first = static_cast<unsigned>((a + i) & 63);
    const size_t n = std::min<size_t>(bytes - i, 64 - first);
    const uint64_t mask = (n == 64 ? ~uint64_t{0} : ((uint64_t{1} << n) - 1)) << first;
    LineMask& m = t_traffic.lines[line];
    if (read)
      m.read |= mask;
    if (written)
      m.written |= mask;
    i += n;
  }
}

void count_access(Fiber& f, uintptr_t a, size_t bytes, AccessKind kind, const char* file, int line) {
  TrafficState& t = t_traffic;
  const SiteKey key{file, line, kind, static_cast<int>(bytes)};
  auto [it, inserted] = t.ids.emplace(key, static_cast<uint32_t>(t.sites.size()));
  if (inserted) {
    SiteCounters c;
    c.site = site_name(file, line);
    c.kind = kind;
    c.bytes = static_cast<int>(bytes);
    t.sites.push_back(std::move(c));
  }
  const uint32_t site = it->second;
  if (f.site_occurrences.size() <= site)
    f.site_occurrences.resize(site + 1, {0, 0});
  auto& occ = f.site_occurrences[site];
  if (occ.first != t.phase_serial)
    occ = {t.phase_serial, 0};
  t.records.push_back({site, f.linear / 32, occ.second++, a});
  if (!is_shared(kind))
    mark_bytes(a, bytes, kind != AccessKind::kGlobalStore, kind != AccessKind::kGlobalLoad);
}

// Turns the phase's records into requests: one per (site, warp, occurrence).
void flush_phase() {
  TrafficState& t = t_traffic;
  ++t.phase_serial;
  if (t.records.empty())
    return;
  std::sort(t.records.begin(), t.records.end(), [](const AccessRecord& x, const AccessRecord& y) {
    if (x.site != y.site)
      return x.site < y.site;
    if (x.warp != y.warp)
      return x.warp < y.warp;
    if (x.occurrence != y.occurrence)
      return x.occurrence < y.occurrence;
    return x.address < y.address;
  });
  std::vector<uintptr_t> units;
  for (size_t i = 0; i < t.records.size();) {
    size_t j = i;
    const AccessRecord& r = t.records[i];
    while (j < t.records.size() && t.records[j].site == r.site && t.records[j].warp == r.warp &&
           t.records[j].occurrence == r.occurrence)
      ++j;
    SiteCounters& c = t.sites[r.site];
    const size_t bytes = static_cast<size_t>(c.bytes);
    ++c.requests;
    c.accesses += j - i;
    // Distinct units touched: 32-byte sectors (global) or 4-byte words (shared); addresses are sorted.
    const unsigned shift = is_shared(c.kind) ? 2 : 5;
    units.clear();
    uint64_t distinct_bytes = 0;
    uintptr_t covered_to = 0;
    for (size_t q = i; q < j; ++q) {
      const uintptr_t lo = t.records[q].address, hi = lo + bytes;
      for (uintptr_t u = lo >> shift; u <= (hi - 1) >> shift; ++u)
        units.push_back(u);
      const uintptr_t from = std::max(lo, covered_to);
      if (hi > from)
        distinct_bytes += hi - from;
      covered_to = std::max(covered_to, hi);
    }
    std::sort(units.begin(), units.end());
    units.erase(std::unique(units.begin(), units.end()), units.end());
    if (shift == 5) {
      c.sectors += units.size();
      c.ideal_sectors += (distinct_bytes + 31) / 32;
    } else {
      unsigned per_bank[32] = {};
      unsigned worst = 0;
      for (uintptr_t w : units)
        worst = std::max(worst, ++per_bank[w % 32]);
      const uint64_t ideal = (units.size() + 31) / 32;
      c.wavefronts += std::max<uint64_t>(worst, ideal);
      c.ideal_wavefronts += ideal;
    }
    i = j;
  }
  t.records.clear();
}

void abandon_unfinished(Engine& e, size_t threads) {
  for (size_t t = 0; t < threads; ++t)
    e.fibers[t]->abandoned = e.fibers[t]->state != FiberState::kDone;
}

// Runs the block t_current.block_idx to completion (or to its first error).
Status run_block(Engine& e, SharedBuffer& smem, size_t threads, size_t stack_bytes, bool reverse) {
  smem.poison_buffer();
  for (size_t t = 0; t < threads; ++t) {
    Fiber& f = *e.fibers[t];
    f.state = FiberState::kReady;
    f.stack_bottom = e.stacks.stack(t);
    f.stack_bytes = stack_bytes;
    f.context.uc_stack.ss_sp = f.stack_bottom;
    f.context.uc_stack.ss_size = stack_bytes;
    f.context.uc_stack.ss_flags = 0;
    f.context.uc_link = nullptr;
    makecontext(&f.context, fiber_entry, 0);
  }
  ++t_stats.blocks;
  t_stats.threads += threads;

  for (uint64_t phase = 0;; ++phase) {
    size_t waiting = 0;
    size_t first_done = threads;
    size_t first_waiting = threads;
    for (size_t i = 0; i < threads; ++i) {
      const size_t t = reverse ? threads - 1 - i : i;
      Fiber& f = *e.fibers[t];
      switch_to_fiber(e, f);
      if (!e.fiber_error.is_ok()) {
        abandon_unfinished(e, threads);
        t_traffic.records.clear();
        return e.fiber_error;
      }
      if (f.state == FiberState::kAtBarrier) {
        ++waiting;
        if (first_waiting == threads)
          first_waiting = t;
      } else if (first_done == threads) {
        first_done = t;
      }
    }
    if (e.counting)
      flush_phase();
    if (waiting == 0)
      break;
    if (waiting != threads) {
      // Some threads returned while others wait: on a GPU this is undefined (a hang or a wrong
      // result); here it is a finding. Different per-thread barrier counts end up here too, since
      // every phase starts with all live threads together.
      abandon_unfinished(e, threads);
      const uint3 d = e.fibers[first_done]->thread_idx;
      const uint3 w = e.fibers[first_waiting]->thread_idx;
      return internal_error(where() + ": divergent barrier: " + std::to_string(waiting) + " of " +
                            std::to_string(threads) + " threads wait at barrier #" + std::to_string(phase + 1) +
                            " (e.g. thread " + dims(w.x, w.y, w.z) + ") while " + std::to_string(threads - waiting) +
                            " returned without reaching it (e.g. thread " + dims(d.x, d.y, d.z) +
                            "); every thread of a block must reach each __syncthreads");
    }
    ++t_stats.barriers;
    for (size_t t = 0; t < threads; ++t)
      e.fibers[t]->state = FiberState::kReady;
  }
  const std::string guard = smem.check_guards();
  if (!guard.empty())
    return internal_error(where() + ": " + guard);
  return Status::ok();
}

// getcontext "returns twice" (GCC then warns about every local of the caller); keep it in a frame of
// its own. It is only ever called once here, as makecontext requires a context to start from.
[[gnu::noinline]] bool init_context(ucontext_t* context) {
  return getcontext(context) == 0;
}

Status launch_impl(const LaunchSpec& spec, const std::function<void()>& body) {
  const dim3 grid = spec.grid, block = spec.block;
  const size_t smem_bytes = spec.dynamic_smem_bytes;
  const char* name = spec.name;
  const char* key = spec.key != nullptr ? spec.key : name;
  Engine& e = engine();
  if (e.in_launch || t_current.fiber != nullptr)
    return invalid_argument(std::string("launch of ") + name + " from inside kernel " + e.name +
                            ": the executor does not run nested launches (dynamic parallelism)");
  const Options opts = t_options;
  const kernels::DeviceProfile& prof = profile_of(opts);
  const KernelResources* res = lookup_resources(opts, key, prof.arch);
  if (res == nullptr && opts.require_resources)
    return invalid_argument(std::string("launch of ") + name + ": kernel " + key + " has no entry for " + prof.arch +
                            " in the resource table (kernels/kernel_resources.inc): add it with "
                            "`bash kernels/resource_usage.sh --table kernels/kernel_resources.inc`");
  CONVARITH_RETURN_IF_ERROR(check_config(spec, prof, res));
  if (opts.fiber_stack_bytes < kMinFiberStackBytes)
    return invalid_argument(std::string("launch of ") + name + ": Options::fiber_stack_bytes " +
                            std::to_string(opts.fiber_stack_bytes) + " is below the minimum " +
                            std::to_string(kMinFiberStackBytes));

  const size_t threads = size_t{block.x} * block.y * block.z;
  const size_t stack_bytes = opts.fiber_stack_bytes * kSanitizerStackFactor;
  int err = 0;
  if (!e.stacks.reserve(threads > e.stacks.count() ? threads : e.stacks.count(), stack_bytes, &err))
    return device_error(std::string("launch of ") + name + ": could not map " + std::to_string(threads) +
                        " fiber stacks of " + std::to_string(stack_bytes) + " bytes: " + std::strerror(err));
  while (e.fibers.size() < threads) {
    auto f = std::make_unique<Fiber>();
    // Once per fiber record for the life of the thread: getcontext costs a syscall, makecontext none.
    if (!init_context(&f->context))
      return device_error(std::string("launch of ") + name + ": getcontext failed: " + std::strerror(errno));
#if CONVARITH_EMU_TSAN
    f->tsan_fiber = __tsan_create_fiber(0);
#endif
    e.fibers.push_back(std::move(f));
  }
  size_t t = 0;
  for (unsigned z = 0; z < block.z; ++z)
    for (unsigned y = 0; y < block.y; ++y)
      for (unsigned x = 0; x < block.x; ++x) {
        e.fibers[t]->linear = static_cast<uint32_t>(t);
        e.fibers[t++]->thread_idx = uint3{x, y, z};
      }

  SharedBuffer smem(smem_bytes, opts.asan_guard);
  if (!smem.ok())
    return device_error(std::string("launch of ") + name + ": could not allocate " + std::to_string(smem_bytes) +
                        " bytes of dynamic shared memory");
  for (size_t i = 0; i < e.fibers.size(); ++i) {
    Fiber& f = *e.fibers[i];
    if (!f.abandoned)
      continue;
    f.abandoned = false;
#if CONVARITH_EMU_ASAN
    // Frames abandoned by an earlier failed block keep their redzone poison; clear it before reuse.
    if (i < e.stacks.count())
      __asan_unpoison_memory_region(e.stacks.stack(i), e.stacks.usable());
#endif
#if CONVARITH_EMU_TSAN
    // Likewise TSan's shadow call stack of an abandoned fiber still holds its unfinished frames.
    __tsan_destroy_fiber(f.tsan_fiber);
    f.tsan_fiber = __tsan_create_fiber(0);
#endif
  }
#if CONVARITH_EMU_TSAN
  e.scheduler_tsan_fiber = __tsan_get_current_fiber();
#endif

  e.in_launch = true;
  e.body = &body;
  e.name = name;
  e.key = key;
  e.counting = opts.count_traffic;
  e.fiber_error = Status::ok();
  detail::t_watch.smem_base = reinterpret_cast<uintptr_t>(smem.data());
  detail::t_watch.smem_bytes = smem_bytes;
  detail::t_watch.extents = t_extents.data();
  detail::t_watch.extent_count = t_extents.size();
  detail::t_watch.check_extents = t_extent_scopes > 0 ? 1u : 0u;
  detail::t_watch.counting = e.counting ? 1u : 0u;
  t_current.smem = smem.data();
  t_current.block_dim = block;
  t_current.grid_dim = grid;
  Status status;
  for (unsigned bz = 0; bz < grid.z && status.is_ok(); ++bz)
    for (unsigned by = 0; by < grid.y && status.is_ok(); ++by)
      for (unsigned bx = 0; bx < grid.x && status.is_ok(); ++bx) {
        t_current.block_idx = uint3{bx, by, bz};
        status = run_block(e, smem, threads, e.stacks.usable(), opts.reverse_thread_order);
      }
  t_current = Current{};
  detail::t_watch = detail::AccessWatch{0, 0, nullptr, 0, 0, 0};
  e.in_launch = false;
  e.body = nullptr;
  e.name = "";
  e.key = "";
  e.counting = false;
  e.fiber_error = Status::ok();
  t_traffic.records.clear();
  return status;
}

} // namespace

void set_options(const Options& options) {
  t_options = options;
}
Options options() {
  return t_options;
}

const uint3& thread_idx() {
  static constexpr uint3 kZero{0, 0, 0};
  const Fiber* f = t_current.fiber;
  return f != nullptr ? f->thread_idx : kZero;
}
const uint3& block_idx() {
  return t_current.block_idx;
}
const dim3& block_dim() {
  return t_current.block_dim;
}
const dim3& grid_dim() {
  return t_current.grid_dim;
}
void* dynamic_shared() {
  return t_current.smem;
}

void sync_threads() {
  Fiber* f = t_current.fiber;
  if (f == nullptr)
    return; // host code outside a kernel: there is nobody to wait for
  f->state = FiberState::kAtBarrier;
  switch_to_scheduler(engine(), *f);
}

Status launch(const LaunchSpec& spec, const std::function<void()>& body) {
  LaunchSpec named = spec;
  if (named.name == nullptr)
    named.name = "(unnamed kernel)";
  try {
    return launch_impl(named, body);
  } catch (const std::bad_alloc&) {
    engine().in_launch = false;
    engine().counting = false;
    t_current = Current{};
    detail::t_watch = detail::AccessWatch{0, 0, nullptr, 0, 0, 0};
    t_traffic.records.clear();
    return device_error(std::string("launch of ") + named.name + ": out of host memory for the executor's fibers");
  }
}

Status launch(dim3 grid, dim3 block, size_t dynamic_smem_bytes, const std::function<void()>& body, const char* name) {
  return launch(LaunchSpec{grid, block, dynamic_smem_bytes, false, name, nullptr}, body);
}

Stats stats() {
  return t_stats;
}
void reset_stats() {
  t_stats = Stats{};
}

int resident_blocks_per_sm(const kernels::DeviceProfile& prof, unsigned threads, int registers, size_t smem_bytes) {
  if (threads == 0)
    return 0;
  const int64_t warps = (int64_t{threads} + prof.warp_size - 1) / prof.warp_size;
  int64_t blocks = prof.max_blocks_per_sm;
  blocks = std::min<int64_t>(blocks, prof.max_threads_per_sm / int64_t{threads});
  const int64_t regs_per_warp = round_up(int64_t{registers} * prof.warp_size, prof.reg_alloc_unit);
  if (regs_per_warp > 0)
    blocks = std::min<int64_t>(blocks, prof.regs_per_sm / regs_per_warp / warps);
  const int64_t smem =
      static_cast<int64_t>(std::min<size_t>(smem_bytes, size_t{1} << 40)) + prof.smem_reserved_per_block;
  blocks = std::min<int64_t>(blocks, prof.smem_per_sm / smem);
  return static_cast<int>(std::max<int64_t>(blocks, 0));
}

// ---- access hooks --------------------------------------------------------------------------------

namespace detail {

#if defined(__GNUC__)
__thread AccessWatch t_watch{0, 0, nullptr, 0, 0, 0};
#else
thread_local AccessWatch t_watch{0, 0, nullptr, 0, 0, 0};
#endif

void on_access(const void* p, size_t bytes, size_t align, AccessKind kind, const char* file, int line) {
  Fiber* f = t_current.fiber;
  if (f == nullptr)
    return; // host code outside a kernel
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (align > 1 && a % align != 0) {
    t_fault = "misaligned address: " + std::to_string(bytes) + "-byte " + access_kind_name(kind) + " at " + hex(a) +
              " (" + site_name(file, line) + ") is not " + std::to_string(align) + "-byte aligned";
    if (is_shared(kind) && a >= t_watch.smem_base && a - t_watch.smem_base < t_watch.smem_bytes)
      t_fault += " (offset " + u64(a - t_watch.smem_base) + " in dynamic shared memory)";
    fault();
  }
  if (is_shared(kind)) {
    const uintptr_t base = t_watch.smem_base;
    if (a < base || a - base > t_watch.smem_bytes || bytes > t_watch.smem_bytes - (a - base)) {
      t_fault = std::to_string(bytes) + "-byte " + access_kind_name(kind) + " at " + hex(a) + " (" +
                site_name(file, line) + ") is outside dynamic shared memory [" + hex(base) + ", +" +
                u64(t_watch.smem_bytes) + " bytes)";
      if (a >= base)
        t_fault += ": offset " + u64(a - base);
      else
        t_fault += ": " + u64(base - a) + " bytes before its start";
      fault();
    }
  } else if (t_extent_scopes > 0 && !inside_an_extent(a, bytes)) {
    t_fault = "out-of-bounds " + std::string(access_kind_name(kind)) + " of " + std::to_string(bytes) + " bytes at " +
              hex(a) + " (" + site_name(file, line) + ") is outside every registered tensor extent; " +
              nearest_extent(a, bytes);
    fault();
  }
  if (t_watch.counting != 0)
    count_access(*f, a, bytes, kind, file, line);
}

std::string kernel_key_from_signature(const char* pretty_function) {
  std::string s = pretty_function;
  const size_t eq = s.find("F = ");
  if (eq != std::string::npos) {
    s = s.substr(eq + 4);
    const size_t end = s.find_first_of(";]");
    s = s.substr(0, end);
  }
  if (!s.empty() && s[0] == '&')
    s.erase(0, 1);
  // Drop the qualification of the name (not inside its template arguments).
  const size_t args = s.find('<');
  const size_t qual = s.rfind("::", args == std::string::npos ? std::string::npos : args);
  if (qual != std::string::npos)
    s.erase(0, qual + 2);
  // GCC's spelling of the integer types -> the Itanium demangler's (cu++filt, c++filt).
  static const std::pair<const char*, const char*> kTypes[] = {
      {"long long unsigned int", "unsigned long long"},
      {"long long int", "long long"},
      {"long unsigned int", "unsigned long"},
      {"short unsigned int", "unsigned short"},
      {"long int", "long"},
      {"short int", "short"},
  };
  for (const auto& [from, to] : kTypes) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at))
      s.replace(at, std::strlen(from), to);
  }
  return s;
}

} // namespace detail

const char* access_kind_name(AccessKind kind) {
  switch (kind) {
  case AccessKind::kGlobalLoad:
    return "global load";
  case AccessKind::kGlobalStore:
    return "global store";
  case AccessKind::kGlobalAtomic:
    return "global atomic";
  case AccessKind::kSharedLoad:
    return "shared load";
  case AccessKind::kSharedStore:
    return "shared store";
  }
  return "access";
}

GlobalExtents::GlobalExtents(std::initializer_list<Extent> extents) : saved_count_(t_extents.size()) {
  for (const Extent& x : extents) {
    if (x.ptr != nullptr && x.bytes > 0)
      t_extents.push_back(x);
  }
  ++t_extent_scopes;
}
GlobalExtents::~GlobalExtents() {
  t_extents.resize(saved_count_);
  --t_extent_scopes;
}

// ---- the resource table --------------------------------------------------------------------------

namespace {
// Prefer the table this build generated from nvcc's report (CMake puts its folder on the include path);
// else the committed one, which CI checks against a generated one.
const std::vector<KernelResources> kResourceTable = {
#define CONVARITH_KERNEL_RESOURCES(arch, kernel, registers, static_smem, stack)                                        \
  {arch, kernel, registers, static_smem, stack},
#if __has_include("kernel_resources_generated.inc")
#include "kernel_resources_generated.inc"
#else
#include "kernel_resources.inc"
#endif
#undef CONVARITH_KERNEL_RESOURCES
};
} // namespace

const KernelResources* find_kernel_resources(const std::string& kernel, const std::string& arch) {
  for (const KernelResources& r : kResourceTable) {
    if (kernel == r.kernel && arch == r.arch)
      return &r;
  }
  return nullptr;
}
const std::vector<KernelResources>& kernel_resource_table() {
  return kResourceTable;
}

// ---- traffic counters ----------------------------------------------------------------------------

SiteCounters Counters::total(AccessKind kind) const {
  SiteCounters sum;
  sum.kind = kind;
  for (const SiteCounters& c : sites) {
    if (c.kind != kind)
      continue;
    sum.requests += c.requests;
    sum.accesses += c.accesses;
    sum.sectors += c.sectors;
    sum.ideal_sectors += c.ideal_sectors;
    sum.wavefronts += c.wavefronts;
    sum.ideal_wavefronts += c.ideal_wavefronts;
  }
  return sum;
}

Counters counters() {
  Counters c;
  c.sites = t_traffic.sites;
  for (const auto& [line, m] : t_traffic.lines) {
    c.unique_bytes_read += static_cast<uint64_t>(__builtin_popcountll(m.read));
    c.unique_bytes_written += static_cast<uint64_t>(__builtin_popcountll(m.written));
  }
  return c;
}
void reset_counters() {
  t_traffic = TrafficState{};
}

namespace {
uint64_t unique_bytes(const void* p, size_t bytes, bool written) {
  const uintptr_t lo = reinterpret_cast<uintptr_t>(p), hi = lo + bytes;
  uint64_t n = 0;
  for (const auto& [line, m] : t_traffic.lines) {
    const uint64_t bits = written ? m.written : m.read;
    for (unsigned b = 0; b < 64; ++b) {
      const uintptr_t a = (line << 6) + b;
      if ((bits >> b & 1u) != 0 && a >= lo && a < hi)
        ++n;
    }
  }
  return n;
}
} // namespace
uint64_t unique_bytes_read(const void* p, size_t bytes) {
  return unique_bytes(p, bytes, false);
}
uint64_t unique_bytes_written(const void* p, size_t bytes) {
  return unique_bytes(p, bytes, true);
}

} // namespace convarith::emu
