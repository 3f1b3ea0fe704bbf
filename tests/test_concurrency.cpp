// tests/test_concurrency.cpp — Plans are shared between threads (plan.hpp: "safe to call from several
// threads at once with different output buffers"). Several std::threads run the same and different
// CPU plans at once; every result must equal the single-threaded result bitwise for deterministic
// rows (and the fp64 oracle exactly, on integer inputs). The kernel executor keeps its state per OS
// thread, so emulated kernels run from several threads at once too. .ci/sanitize.sh runs this file
// under ThreadSanitizer, which turns any data race in the pool, the table or a plan into a failure.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "convarith/convarith.hpp"
#include "row.hpp"
#include "support/support.hpp"
#include "tune.hpp"

namespace convarith {
namespace {

using test::same_bits;

constexpr int kThreads = 4;
constexpr int kRounds = 5;

ProblemDesc desc(Op op, int rank, int64_t n, int64_t c, int64_t k, int64_t groups, int64_t i, int64_t r, int64_t s,
                 int64_t pad) {
  ProblemDesc d;
  d.op = op;
  d.rank = rank;
  d.n = n, d.c = c, d.k = is_pool(op) ? c : k, d.groups = groups;
  for (int j = 0; j < rank; ++j) {
    const size_t u = static_cast<size_t>(j);
    d.input[u] = i + j; // non-square, so a swapped axis shows
    d.kernel[u] = r;
    d.stride[u] = s;
    d.pad_lo[u] = pad;
    d.pad_hi[u] = pad;
  }
  return d;
}

// Small but not tiny: each run takes long enough that runs from different threads overlap.
std::vector<ConvProblem> problems() {
  std::vector<ProblemDesc> ds = {
      desc(Op::kConv, 2, 2, 8, 12, 1, 14, 3, 1, 1),   desc(Op::kConv, 2, 1, 8, 8, 4, 13, 3, 2, 1), // grouped, strided
      desc(Op::kConv, 3, 1, 3, 4, 1, 6, 3, 1, 0),     desc(Op::kConvTranspose, 2, 2, 6, 4, 2, 7, 3, 2, 1),
      desc(Op::kMaxPool, 2, 2, 5, 5, 1, 15, 3, 2, 1), desc(Op::kAvgPool, 1, 3, 4, 4, 1, 31, 4, 3, 2),
  };
  ds[4].ceil_mode = true;
  ds[5].count_include_pad = true;
  std::vector<ConvProblem> out;
  for (const ProblemDesc& d : ds)
    out.push_back(test::must_make(d));
  return out;
}

// One plan per (problem, CPU row that runs it), its inputs and its single-threaded result.
struct Case {
  Plan plan;
  test::Inputs in;
  std::vector<float> expected;
};

std::vector<float> run_once(const Plan& plan, const test::Inputs& in) {
  std::vector<float> y(static_cast<size_t>(plan.problem().y_elements()));
  test::poison(y);
  std::vector<unsigned char> ws(plan.workspace_bytes() + 1);
  const Status st = plan.run(in.x.data(), in.w.empty() ? nullptr : in.w.data(),
                             in.bias.empty() ? nullptr : in.bias.data(), y.data(), ws.data(), plan.workspace_bytes());
  EXPECT_TRUE(st.is_ok()) << plan.algorithm() << ": " << st.to_string();
  return y;
}

std::vector<Case> cases() {
  std::vector<Case> out;
  uint64_t seed = 17;
  for (const ConvProblem& p : problems()) {
    for (const Algorithm& alg : algorithm_table()) {
      if (alg.device != Device::kCpu || alg.run == nullptr || !(alg.ops & op_bit(p.op())) || !alg.supports(p).is_ok())
        continue;
      const Result<Plan> plan = Plan::create(p, Device::kCpu, alg.name);
      EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
      if (!plan.is_ok())
        continue;
      Case c{*plan, test::integer_inputs(p, seed++, !is_pool(p.op())), {}};
      c.expected = run_once(c.plan, c.in);
      // The single-threaded result is itself right (integer inputs: exact).
      EXPECT_TRUE(test::exact_match(p, c.expected,
                                    test::reference(p, c.in.x.data(), c.in.w.empty() ? nullptr : c.in.w.data(),
                                                    c.in.bias.empty() ? nullptr : c.in.bias.data())))
          << alg.name << " on " << p.name();
      out.push_back(std::move(c));
    }
  }
  return out;
}

// Starts `threads` threads that wait for each other and then call body(thread index) at once.
template <typename Body> void run_together(int threads, Body body) {
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < threads)
        std::this_thread::yield();
      body(t);
    });
  }
  for (std::thread& th : pool)
    th.join();
}

TEST(Concurrency, SharedPlansOnDifferentBuffersMatchSingleThreaded) {
  const std::vector<Case> all = cases();
  ASSERT_GE(all.size(), 6u) << "expected a CPU plan for every problem";
  std::atomic<int> mismatches{0}, runs{0};
  std::vector<std::string> first_error(kThreads);
  run_together(kThreads, [&](int t) {
    for (int round = 0; round < kRounds; ++round) {
      // Each thread walks the plans in a different order, so different plans overlap too.
      for (size_t j = 0; j < all.size(); ++j) {
        const Case& c = all[(j + static_cast<size_t>(t) * 3) % all.size()];
        const std::vector<float> y = run_once(c.plan, c.in);
        runs.fetch_add(1);
        if (c.plan.deterministic() && !same_bits(y, c.expected)) {
          mismatches.fetch_add(1);
          if (first_error[static_cast<size_t>(t)].empty()) // each thread writes only its own slot
            first_error[static_cast<size_t>(t)] = std::string(c.plan.algorithm()) + " on " + c.plan.problem().name();
        }
      }
    }
  });
  EXPECT_EQ(runs.load(), kThreads * kRounds * static_cast<int>(all.size()));
  EXPECT_EQ(mismatches.load(), 0) << "first mismatches per thread: " << first_error[0] << " | " << first_error[1]
                                  << " | " << first_error[2] << " | " << first_error[3];
}

TEST(Concurrency, OnePlanFromManyThreadsAtOnce) {
  const ConvProblem p = problems()[0];
  const Result<Plan> made = Plan::create(p, Device::kCpu, "auto");
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  const Plan& plan = *made; // one object, shared by reference
  const test::Inputs in = test::integer_inputs(p, 5);
  const std::vector<float> expected = run_once(plan, in);
  ASSERT_TRUE(test::exact_match(p, expected, test::reference(p, in.x.data(), in.w.data(), in.bias.data())));
  std::vector<std::vector<float>> results(kThreads * 2);
  run_together(kThreads, [&](int t) {
    for (int round = 0; round < 2; ++round)
      results[static_cast<size_t>(t * 2 + round)] = run_once(plan, in);
  });
  for (size_t j = 0; j < results.size(); ++j)
    EXPECT_TRUE(same_bits(results[j], expected)) << "thread run " << j << " of " << plan.algorithm();
}

TEST(Concurrency, FirstUseFromManyThreads) {
  // In ctest each test is its own process, so this is the first use of the table, the problem
  // factory and the worker pool: their lazy initialisation must be race-free.
  std::vector<std::vector<float>> results(kThreads);
  std::vector<std::string> names(kThreads);
  const ProblemDesc d = desc(Op::kConv, 2, 1, 4, 6, 2, 9, 3, 1, 1);
  run_together(kThreads, [&](int t) {
    const Result<ConvProblem> p = ConvProblem::make(d);
    if (!p.is_ok())
      return;
    const Result<Plan> plan = Plan::create(*p, Device::kCpu, "auto");
    if (!plan.is_ok())
      return;
    names[static_cast<size_t>(t)] = plan->algorithm();
    const test::Inputs in = test::integer_inputs(*p, 99);
    results[static_cast<size_t>(t)] = run_once(*plan, in);
  });
  const ConvProblem p = test::must_make(d);
  const test::Inputs in = test::integer_inputs(p, 99);
  const std::vector<double> want = test::reference(p, in.x.data(), in.w.data(), in.bias.data());
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(names[static_cast<size_t>(t)], names[0]) << "auto chose differently in thread " << t;
    EXPECT_TRUE(test::exact_match(p, results[static_cast<size_t>(t)], want)) << "thread " << t;
  }
}

TEST(Concurrency, PlanCopiesAndTemporaryPlansInThreads) {
  // Plans are values: copies made and destroyed in threads while the original keeps running.
  const ConvProblem p = problems()[3]; // transposed
  const Result<Plan> made = Plan::create(p, Device::kCpu, "auto");
  ASSERT_TRUE(made.is_ok()) << made.status().to_string();
  const test::Inputs in = test::integer_inputs(p, 7);
  const std::vector<float> expected = run_once(*made, in);
  std::atomic<int> bad{0};
  run_together(kThreads, [&](int t) {
    for (int round = 0; round < 3; ++round) {
      const Plan copy = *made;
      const Result<Plan> fresh = Plan::create(p, Device::kCpu, "auto");
      const Plan& use = (t + round) % 2 == 0 ? copy : *fresh;
      if (!same_bits(run_once(use, in), expected))
        bad.fetch_add(1);
    }
  });
  EXPECT_EQ(bad.load(), 0);
}

TEST(Concurrency, EmulatedKernelsFromSeveralThreads) {
  // The CPU kernel executor keeps its block and fiber state per OS thread: kernels emulated from
  // several threads at once must not see each other's threadIdx, shared memory or barriers.
  struct EmuCase {
    const Algorithm* alg;
    ConvProblem problem;
    test::Inputs in;
    std::vector<float> expected;
  };
  std::vector<EmuCase> emu;
  std::vector<ProblemDesc> ds = {desc(Op::kConv, 2, 1, 3, 4, 1, 6, 3, 1, 1),
                                 desc(Op::kConvTranspose, 2, 1, 2, 3, 1, 4, 3, 2, 1),
                                 desc(Op::kMaxPool, 2, 1, 2, 2, 1, 7, 3, 2, 1)};
  for (const ProblemDesc& d : ds) {
    const ConvProblem p = test::must_make(d);
    for (const Algorithm& alg : algorithm_table()) {
      if (alg.device != Device::kEmulated || !(alg.ops & op_bit(p.op())) || !alg.supports(p).is_ok())
        continue;
      EmuCase c{&alg, p, test::integer_inputs(p, 3, !is_pool(p.op())), {}};
      emu.push_back(std::move(c));
    }
  }
  if (emu.empty())
    GTEST_SKIP() << "no emulated kernel rows in the table";
  const auto run_emu = [](const EmuCase& c) {
    std::vector<float> y(static_cast<size_t>(c.problem.y_elements()));
    test::poison(y);
    const Status st = test::run_row(*c.alg, c.problem, c.in.x.data(), c.in.w.empty() ? nullptr : c.in.w.data(),
                                    c.in.bias.empty() ? nullptr : c.in.bias.data(), y.data());
    EXPECT_TRUE(st.is_ok()) << c.alg->name << ": " << st.to_string();
    return y;
  };
  for (EmuCase& c : emu) {
    c.expected = run_emu(c);
    EXPECT_TRUE(test::exact_match(c.problem, c.expected,
                                  test::reference(c.problem, c.in.x.data(), c.in.w.empty() ? nullptr : c.in.w.data(),
                                                  c.in.bias.empty() ? nullptr : c.in.bias.data())))
        << c.alg->name << " on " << c.problem.name();
  }
  std::atomic<int> bad{0};
  run_together(3, [&](int t) {
    for (size_t j = 0; j < emu.size(); ++j) {
      const EmuCase& c = emu[(j + static_cast<size_t>(t)) % emu.size()];
      const std::vector<float> y = run_emu(c);
      // Emulated atomics are plain updates in a fixed block order, so even scatter rows repeat exactly.
      if (!same_bits(y, c.expected))
        bad.fetch_add(1);
    }
  });
  EXPECT_EQ(bad.load(), 0);
}

TEST(Concurrency, TuneTheSameProblemFromManyThreads) {
  // Several threads ask for the same tuned plan at once, on two devices, with and without a cache file: one
  // thread per key times the candidates (tuning is serialized), the others find its winner in the cache;
  // every plan is the same row and runs correctly; the file ends whole.
  detail::clear_tune_cache();
  const ConvProblem cpu_p = problems()[0];
  const ConvProblem emu_p = test::must_make(desc(Op::kConv, 2, 1, 2, 3, 1, 5, 3, 1, 1));
  std::string file = ::testing::TempDir() + "convarith_tune_concurrency_XXXXXX";
  const int fd = ::mkstemp(&file[0]);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::remove(file.c_str()); // a fresh, missing file: the first tuner creates it
  const uint64_t runs0 = detail::tuning_runs().load();
  constexpr int kTuners = 2 * kThreads;
  std::vector<std::string> names(kTuners), sources(kTuners), warnings(kTuners);
  std::vector<std::vector<float>> results(kTuners);
  const test::Inputs cpu_in = test::integer_inputs(cpu_p, 41), emu_in = test::integer_inputs(emu_p, 43);
  run_together(kTuners, [&](int t) {
    const bool emu = t % 2 == 1;
    PlanOptions o;
    o.algorithm = "tune";
    o.tune_warmup = 1;
    o.tune_reps = 2;
    if (t % 4 < 2)
      o.tune_cache_file = file;
    const Result<Plan> plan = Plan::create(emu ? emu_p : cpu_p, emu ? Device::kEmulated : Device::kCpu, o);
    const size_t i = static_cast<size_t>(t);
    if (!plan.is_ok()) {
      warnings[i] = plan.status().to_string();
      return;
    }
    names[i] = plan->algorithm();
    sources[i] = plan->tuning().source;
    for (const std::string& w : plan->warnings())
      warnings[i] += w;
    results[i] = run_once(*plan, emu ? emu_in : cpu_in);
  });
  int measured = 0;
  for (int t = 0; t < kTuners; ++t) {
    const size_t i = static_cast<size_t>(t);
    const bool emu = t % 2 == 1;
    const ConvProblem& p = emu ? emu_p : cpu_p;
    const test::Inputs& in = emu ? emu_in : cpu_in;
    EXPECT_TRUE(warnings[i].empty()) << "tuner " << t << ": " << warnings[i];
    EXPECT_EQ(names[i], names[emu ? 1 : 0]) << "tuner " << t;
    measured += sources[i] == "measured";
    EXPECT_TRUE(test::exact_match(p, results[i], test::reference(p, in.x.data(), in.w.data(), in.bias.data())))
        << "tuner " << t << " (" << names[i] << ")";
  }
  EXPECT_EQ(measured, 2) << "one measurement per key; the rest are cache hits";
  EXPECT_GT(detail::tuning_runs().load(), runs0);
  // The file holds both entries and parses cleanly.
  std::vector<std::string> w;
  const detail::TuneFile f = detail::tune_file_load(file, w);
  EXPECT_TRUE(w.empty()) << (w.empty() ? "" : w[0]);
  EXPECT_TRUE(f.read_ok);
  EXPECT_EQ(f.entries.size(), 2u);
  std::remove(file.c_str());
  detail::clear_tune_cache();
}

} // namespace
} // namespace convarith
