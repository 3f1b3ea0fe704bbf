// host/cpu/thread_pool.hpp — the CPU fallback's worker pool (internal).
//
// One process-wide pool of std::thread workers (hardware threads - 1, or CONVARITH_NUM_THREADS - 1).
// parallel_for() publishes a job, the calling thread works on the job's tasks itself and then
// waits only for the tasks that workers already started. Because the caller always makes
// progress on its own job, several threads may call parallel_for() at once (each with its own
// job) without deadlock, and the number of busy threads never exceeds workers + callers.
// Workers join the job at the front of the queue; a job leaves the queue once its last task is
// claimed. No OpenMP: every hand-off is a mutex, a condition variable or an atomic, so
// ThreadSanitizer sees every happens-before edge.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace convarith::detail {

// A non-owning reference to a callable void(int64_t task, int slot): no allocation per call.
class TaskRef {
public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, TaskRef>>>
  TaskRef(F& f) // NOLINT(google-explicit-constructor)
      : object_(static_cast<void*>(&f)),
        call_([](void* o, int64_t task, int slot) { (*static_cast<F*>(o))(task, slot); }) {}
  void operator()(int64_t task, int slot) const { call_(object_, task, slot); }

private:
  void* object_;
  void (*call_)(void*, int64_t, int);
};

class ThreadPool {
public:
  // The process-wide pool, started on first use.
  static ThreadPool& instance();

  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Upper bound (exclusive) of the `slot` argument that parallel_for passes: workers + 1.
  // Per-thread scratch is sized as max_slots() * bytes; a slot is used by one thread at a time
  // within one parallel_for call.
  int max_slots() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(task, slot) once for every task in [0, count) and returns when all are done.
  // The calling thread runs tasks with slot 0. fn must not throw and must not call
  // parallel_for itself.
  void parallel_for(int64_t count, TaskRef fn);

private:
  struct Job;
  explicit ThreadPool(int threads);
  void worker_loop();
  static void run_tasks(Job& job, int slot);
  void remove_locked(Job* job);

  std::mutex mutex_;
  std::condition_variable wake_; // workers wait here for jobs
  std::deque<Job*> queue_;       // jobs with unclaimed tasks (front first)
  std::atomic<int> queued_{0};   // queue_.size(), readable without the mutex (spinning workers)
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

} // namespace convarith::detail
