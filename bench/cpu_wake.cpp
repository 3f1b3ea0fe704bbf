// bench/cpu_wake.cpp — convarith_cpu_wake: how long the CPU fallback's worker threads take to join a job after
// the pool was idle for a while (host/cpu/thread_pool.cpp: a worker spins ~200 us after its last job, then sleeps
// on a condition variable). A layer of ~100 us that starts while the workers sleep runs on the calling thread
// alone until they wake, so this delay, not the layer, can decide a small layer's time; on a VM it includes the
// hypervisor's wake-up of an idle vCPU.
//
// For each idle gap, `reps` jobs of `tasks` tasks (each ~50 us of spinning) follow a sleep of that gap; per job
// it records when the first task of a worker (slot != 0) started, after the job was published. Prints the
// median, p90 and max delay, and how many jobs finished before any worker joined (the caller ran them all).
// Usage: convarith_cpu_wake [reps (default 200)]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cpu/thread_pool.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void spin_for(double us) {
  const Clock::time_point t0 = Clock::now();
  while (us_since(t0) < us) {
  }
}

} // namespace

int main(int argc, char** argv) {
  int reps = 200;
  if (argc > 1) {
    char* end = nullptr;
    const long v = std::strtol(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || v < 10 || v > 100000) {
      std::fprintf(stderr, "usage: convarith_cpu_wake [reps: 10..100000, default 200]\n");
      return 2;
    }
    reps = static_cast<int>(v);
  }
  convarith::detail::ThreadPool& pool = convarith::detail::ThreadPool::instance();
  const int slots = pool.max_slots();
  std::printf("CPU fallback thread pool: %d slots (the caller, workers: %d); %d jobs per gap, %d tasks of ~50 us "
              "each\n",
              slots, slots - 1, reps, 4 * slots);
  if (slots < 2) {
    std::printf("no workers (one allowed CPU or CONVARITH_NUM_THREADS=1): nothing to wake\n");
    return 0;
  }
  std::printf("| idle gap before the job | first worker joins after: median | p90 | max | jobs no worker joined |\n");
  std::printf("|---:|---:|---:|---:|---:|\n");
  for (const int gap_us : {0, 100, 300, 1000, 3000, 10000}) {
    std::vector<double> delays;
    int never = 0;
    for (int i = 0; i < reps; ++i) {
      if (gap_us > 0)
        std::this_thread::sleep_for(std::chrono::microseconds(gap_us));
      std::atomic<double> joined{-1.0};
      const Clock::time_point t0 = Clock::now();
      auto task = [&](int64_t, int slot) {
        if (slot != 0) {
          double expected = -1.0;
          joined.compare_exchange_strong(expected, us_since(t0));
        }
        spin_for(50.0);
      };
      pool.parallel_for(4 * slots, task);
      const double d = joined.load();
      if (d < 0)
        ++never;
      else
        delays.push_back(d);
    }
    std::sort(delays.begin(), delays.end());
    const auto at = [&](double q) {
      return delays.empty() ? 0.0 : delays[std::min(delays.size() - 1, static_cast<size_t>(q * delays.size()))];
    };
    std::printf("| %d us | %.1f us | %.1f us | %.1f us | %d of %d |\n", gap_us, at(0.5), at(0.9),
                delays.empty() ? 0.0 : delays.back(), never, reps);
  }
  return 0;
}
