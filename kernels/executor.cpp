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

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
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

// CUDA launch limits (sm_80/sm_90; the library's kernels target those).
constexpr uint64_t kMaxThreadsPerBlock = 1024;
constexpr unsigned kMaxBlockDimXY = 1024;
constexpr unsigned kMaxBlockDimZ = 64;
constexpr unsigned kMaxGridDimX = 2147483647u;
constexpr unsigned kMaxGridDimYZ = 65535;
constexpr size_t kMaxDynamicSmemBytes = 227 * 1024; // sm_90 opt-in maximum per block

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
  Status fiber_error; // first error raised inside a fiber (an exception escaping the body)
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

Status check_config(dim3 grid, dim3 block, size_t smem, const char* name) {
  const std::string k = std::string("launch of ") + name + ": ";
  if (grid.x == 0 || grid.y == 0 || grid.z == 0)
    return invalid_argument(k + "grid " + dims(grid.x, grid.y, grid.z) + " has a zero dimension");
  if (block.x == 0 || block.y == 0 || block.z == 0)
    return invalid_argument(k + "block " + dims(block.x, block.y, block.z) + " has a zero dimension");
  if (grid.x > kMaxGridDimX)
    return invalid_argument(k + "grid.x " + std::to_string(grid.x) + " exceeds the limit " +
                            std::to_string(kMaxGridDimX));
  if (grid.y > kMaxGridDimYZ || grid.z > kMaxGridDimYZ)
    return invalid_argument(k + "grid " + dims(grid.x, grid.y, grid.z) + ": grid.y and grid.z must be at most " +
                            std::to_string(kMaxGridDimYZ));
  if (block.x > kMaxBlockDimXY || block.y > kMaxBlockDimXY || block.z > kMaxBlockDimZ)
    return invalid_argument(k + "block " + dims(block.x, block.y, block.z) + ": block.x and block.y must be at most " +
                            std::to_string(kMaxBlockDimXY) + ", block.z at most " + std::to_string(kMaxBlockDimZ));
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  if (threads > kMaxThreadsPerBlock)
    return invalid_argument(k + "block " + dims(block.x, block.y, block.z) + " has " + std::to_string(threads) +
                            " threads, more than " + std::to_string(kMaxThreadsPerBlock));
  if (smem > kMaxDynamicSmemBytes)
    return invalid_argument(k + "dynamic shared memory " + std::to_string(smem) + " bytes exceeds the limit " +
                            std::to_string(kMaxDynamicSmemBytes) + " (227 KiB)");
  return Status::ok();
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

Status launch_impl(dim3 grid, dim3 block, size_t smem_bytes, const std::function<void()>& body, const char* name) {
  Engine& e = engine();
  if (e.in_launch || t_current.fiber != nullptr)
    return invalid_argument(std::string("launch of ") + name + " from inside kernel " + e.name +
                            ": the executor does not run nested launches (dynamic parallelism)");
  CONVARITH_RETURN_IF_ERROR(check_config(grid, block, smem_bytes, name));
  const Options opts = t_options;
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
      for (unsigned x = 0; x < block.x; ++x)
        e.fibers[t++]->thread_idx = uint3{x, y, z};

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
  e.fiber_error = Status::ok();
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
  e.in_launch = false;
  e.body = nullptr;
  e.name = "";
  e.fiber_error = Status::ok();
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

Status launch(dim3 grid, dim3 block, size_t dynamic_smem_bytes, const std::function<void()>& body, const char* name) {
  if (name == nullptr)
    name = "(unnamed kernel)";
  try {
    return launch_impl(grid, block, dynamic_smem_bytes, body, name);
  } catch (const std::bad_alloc&) {
    engine().in_launch = false;
    t_current = Current{};
    return device_error(std::string("launch of ") + name + ": out of host memory for the executor's fibers");
  }
}

Stats stats() {
  return t_stats;
}
void reset_stats() {
  t_stats = Stats{};
}

} // namespace convarith::emu
