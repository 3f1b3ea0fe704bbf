// host/cpu/thread_pool.cpp — see thread_pool.hpp for the design.
#include "cpu/thread_pool.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <system_error>

#ifdef __linux__
#include <sched.h>
#endif

namespace convarith::detail {

struct ThreadPool::Job {
  Job(int64_t n, TaskRef f) : count(n), fn(f) {}
  const int64_t count;
  const TaskRef fn;
  std::atomic<int64_t> next{0};  // next unclaimed task
  std::atomic<int> next_slot{1}; // slot 0 belongs to the caller
  int active_workers = 0;        // guarded by the pool mutex
  std::condition_variable done;  // signalled when active_workers drops to 0
};

namespace {

constexpr std::chrono::microseconds kSpin{200};

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

int configured_threads() {
  // An explicit override lets benchmarks and shared CI machines pin the pool size.
  if (const char* env = std::getenv("CONVARITH_NUM_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    if (end != env && v >= 1 && v <= 1024)
      return static_cast<int>(v);
  }
#ifdef __linux__
  // The CPUs this process may run on (taskset, container cpusets), not every CPU of the host.
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    const int count = CPU_COUNT(&set);
    if (count >= 1)
      return std::min(count, 256);
  }
#endif
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min(hw, 256u));
}

} // namespace

ThreadPool& ThreadPool::instance() {
  static ThreadPool pool(configured_threads());
  return pool;
}

ThreadPool::ThreadPool(int threads) {
  for (int t = 1; t < threads; ++t) {
    try {
      workers_.emplace_back([this] { worker_loop(); });
    } catch (const std::system_error&) {
      break; // fewer workers is still correct: the caller runs whatever workers do not
    }
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : workers_)
    t.join();
}

void ThreadPool::run_tasks(Job& job, int slot) {
  for (;;) {
    int64_t task = job.next.fetch_add(1, std::memory_order_relaxed);
    if (task >= job.count)
      return;
    job.fn(task, slot);
  }
}

void ThreadPool::remove_locked(Job* job) {
  auto it = std::find(queue_.begin(), queue_.end(), job);
  if (it != queue_.end())
    queue_.erase(it);
  queued_.store(static_cast<int>(queue_.size()), std::memory_order_release);
}

void ThreadPool::worker_loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    if (queue_.empty() && !stop_) {
      // Spin briefly before sleeping: a plan's run is often several jobs back to back (pack, then
      // compute) and layers follow each other; a sleeping worker can take longer to be scheduled
      // than a whole job on a busy machine. Bounded, so an idle pool costs nothing.
      lock.unlock();
      const auto until = std::chrono::steady_clock::now() + kSpin;
      for (int i = 0; queued_.load(std::memory_order_acquire) == 0; ++i) {
        cpu_relax();
        if ((i & 63) == 63 && std::chrono::steady_clock::now() > until)
          break;
      }
      lock.lock();
    }
    wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty())
      return; // stop_ and nothing left
    Job* job = queue_.front();
    ++job->active_workers;
    lock.unlock();
    // A worker joins a job at most once (the job leaves the queue below before this worker
    // can look again), so slots stay below max_slots().
    run_tasks(*job, job->next_slot.fetch_add(1, std::memory_order_relaxed));
    lock.lock();
    remove_locked(job);
    if (--job->active_workers == 0)
      job->done.notify_all();
  }
}

void ThreadPool::parallel_for(int64_t count, TaskRef fn) {
  if (count <= 0)
    return;
  if (workers_.empty() || count == 1) {
    for (int64_t t = 0; t < count; ++t)
      fn(t, 0);
    return;
  }
  Job job(count, fn);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(&job);
    queued_.store(static_cast<int>(queue_.size()), std::memory_order_release);
  }
  if (count - 1 >= static_cast<int64_t>(workers_.size())) {
    wake_.notify_all();
  } else {
    for (int64_t t = 1; t < count; ++t)
      wake_.notify_one();
  }
  run_tasks(job, 0);
  std::unique_lock<std::mutex> lock(mutex_);
  // Every task is claimed; once no worker is inside, the job (on this stack) can go.
  remove_locked(&job);
  job.done.wait(lock, [&job] { return job.active_workers == 0; });
}

} // namespace convarith::detail
