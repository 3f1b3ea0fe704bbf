// tests/test_executor.cpp — the CPU kernel executor (kernels/executor.hpp): it runs kernels written
// against kernels/portable.cuh correctly, and it makes the classic kernel bugs fail loudly: a missing
// barrier (NaN poison, thread order), a shared-memory write out of bounds (guard canary; ASan also
// for reads), a divergent barrier, a bad launch configuration.
//
// The kernels below are written exactly as library kernels are (host compiler, no CUDA).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "portable.cuh"

#if defined(__SANITIZE_ADDRESS__)
#define CONVARITH_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CONVARITH_TEST_ASAN 1
#endif
#endif
#ifndef CONVARITH_TEST_ASAN
#define CONVARITH_TEST_ASAN 0
#endif

namespace convarith {
namespace {

// The message of a failed Status names what the test expects (gmock is not linked into tests).
::testing::AssertionResult mentions(const Status& s, const std::string& text) {
  if (s.message().find(text) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "message \"" << s.message() << "\" does not contain \"" << text << "\"";
}

// Sets executor options for one test and restores the previous ones (options are per OS thread).
class OptionsScope {
public:
  explicit OptionsScope(const emu::Options& o) : saved_(emu::options()) { emu::set_options(o); }
  ~OptionsScope() { emu::set_options(saved_); }
  OptionsScope(const OptionsScope&) = delete;
  OptionsScope& operator=(const OptionsScope&) = delete;

private:
  emu::Options saved_;
};

emu::Options order_options(bool reverse) {
  emu::Options o;
  o.reverse_thread_order = reverse;
  return o;
}

// ---- kernels ---------------------------------------------------------------------------------

struct ReduceParams {
  const float* x;
  float* block_sums;
  int64_t n;
};

// One element per thread, then a tree over shared memory: each step reads what other threads
// wrote in the step before, hence a barrier after the load and after every step. blockDim.x is a
// power of two.
CONVARITH_GLOBAL void block_reduce(ReduceParams p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x;
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + t;
  s[t] = i < p.n ? p.x[i] : 0.0f;
  CONVARITH_SYNC();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half)
      s[t] += s[t + half];
    CONVARITH_SYNC();
  }
  if (t == 0)
    p.block_sums[blockIdx.x] = s[0];
}

// The same with the barrier after the load missing: step one may read a slot not yet loaded.
CONVARITH_GLOBAL void block_reduce_missing_barrier(ReduceParams p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x;
  const int64_t i = int64_t{blockIdx.x} * blockDim.x + t;
  s[t] = i < p.n ? p.x[i] : 0.0f;
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half)
      s[t] += s[t + half];
    CONVARITH_SYNC();
  }
  if (t == 0)
    p.block_sums[blockIdx.x] = s[0];
}

struct NeighbourParams {
  const float* x;
  float* y;
  bool with_barrier;
};

// y[t] = x[(t+1) % T] through shared memory: a read of another thread's slot needs the barrier.
CONVARITH_GLOBAL void neighbour_read(NeighbourParams p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x;
  s[t] = p.x[t];
  if (p.with_barrier)
    CONVARITH_SYNC();
  p.y[t] = s[(t + 1) % blockDim.x];
}

// Write-after-read race: each thread reads its neighbour's slot, then overwrites its own. Without
// a barrier between the read and the overwrite, what a thread reads depends on the order.
CONVARITH_GLOBAL void neighbour_overwrite(NeighbourParams p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x;
  s[t] = p.x[t];
  CONVARITH_SYNC();
  const float v = s[(t + 1) % blockDim.x];
  if (p.with_barrier)
    CONVARITH_SYNC();
  s[t] = -p.x[t];
  p.y[t] = v;
}

struct CoverParams {
  unsigned* visits;   // per global thread
  unsigned* record;   // per global thread: blockIdx xyz, threadIdx xyz, blockDim xyz, gridDim xyz
  unsigned* sequence; // per global thread: the order in which threads ran
  unsigned* counter;
};

CONVARITH_GLOBAL void cover(CoverParams p) {
  const uint64_t block = blockIdx.x + uint64_t{gridDim.x} * (blockIdx.y + uint64_t{gridDim.y} * blockIdx.z);
  const uint64_t threads = uint64_t{blockDim.x} * blockDim.y * blockDim.z;
  const uint64_t thread = threadIdx.x + uint64_t{blockDim.x} * (threadIdx.y + uint64_t{blockDim.y} * threadIdx.z);
  const uint64_t g = block * threads + thread;
  CONVARITH_ATOMIC_ADD(&p.visits[g], 1u);
  const unsigned values[12] = {blockIdx.x, blockIdx.y, blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z,
                               blockDim.x, blockDim.y, blockDim.z, gridDim.x,   gridDim.y,   gridDim.z};
  for (int v = 0; v < 12; ++v)
    p.record[g * 12 + v] = values[v];
  p.sequence[g] = (*p.counter)++;
}

struct OobParams {
  float* y;
  int offset;         // added to the index of the shared-memory access
  unsigned bad_block; // only this block goes out of bounds
};

// Shared memory holds blockDim.x floats; the bad block's threads store at t + offset.
CONVARITH_GLOBAL void oob_write_kernel(OobParams p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const int t = static_cast<int>(threadIdx.x);
  s[t + (blockIdx.x == p.bad_block ? p.offset : 0)] = 1.0f;
  CONVARITH_SYNC();
  p.y[blockIdx.x * blockDim.x + t] = 2.0f;
}

CONVARITH_GLOBAL void oob_read_kernel(OobParams p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const int t = static_cast<int>(threadIdx.x);
  s[t] = 1.0f;
  CONVARITH_SYNC();
  p.y[t] = s[t + p.offset];
}

struct DivergeParams {
  unsigned waiting_threads; // threads below this reach the extra barrier
  int mode;                 // 0: barrier in a branch, 1: thread 5 loops once more, 2: early return
  unsigned n;               // mode 2: threads at or past n return before the barrier
  float* y;
};

CONVARITH_GLOBAL void diverge(DivergeParams p) {
  const unsigned t = threadIdx.x;
  if (p.mode == 0) {
    if (t < p.waiting_threads)
      CONVARITH_SYNC();
  } else if (p.mode == 1) {
    for (unsigned i = 0; i < (t == 5 ? 3u : 2u); ++i)
      CONVARITH_SYNC();
  } else {
    if (t >= p.n)
      return;
    CONVARITH_SYNC();
    p.y[t] = 1.0f;
  }
}

struct AtomicParams {
  float* f;
  double* d;
  int* i;
  unsigned* u;
};

CONVARITH_GLOBAL void atomics(AtomicParams p) {
  CONVARITH_ATOMIC_ADD(p.f, 1.0f);
  CONVARITH_ATOMIC_ADD(p.d, 0.5);
  CONVARITH_ATOMIC_ADD(p.i, static_cast<int>(threadIdx.x) - 3);
  CONVARITH_ATOMIC_ADD(p.u, blockIdx.x + 1u);
}

struct CountParams {
  float* y;
};

// Exactly three barriers per block, each protecting a rotation of the block's values.
CONVARITH_GLOBAL void three_barriers(CountParams p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const unsigned threads = blockDim.x * blockDim.y;
  const unsigned t = threadIdx.x + blockDim.x * threadIdx.y;
  s[t] = static_cast<float>(t);
  CONVARITH_SYNC();
  const float a = s[(t + 1) % threads];
  CONVARITH_SYNC();
  s[t] = a;
  CONVARITH_SYNC();
  p.y[(blockIdx.x + gridDim.x * blockIdx.y) * threads + t] = s[(t + 1) % threads];
}

struct PoisonParams {
  float* f;
  double* d;
  int write_first;
};

// Reads shared memory that no thread of this block has written (block 0 writes it first, when asked).
CONVARITH_GLOBAL void read_unwritten(PoisonParams p) {
  CONVARITH_DYNAMIC_SHARED(double, s);
  if (p.write_first && blockIdx.x == 0)
    s[threadIdx.x] = 1.0;
  CONVARITH_SYNC();
  p.d[blockIdx.x * blockDim.x + threadIdx.x] = s[threadIdx.x];
  p.f[blockIdx.x * blockDim.x + threadIdx.x] = reinterpret_cast<float*>(s)[threadIdx.x];
}

struct ThrowParams {
  unsigned bad_block;
  unsigned bad_thread;
};

CONVARITH_GLOBAL void throwing(ThrowParams p) {
  CONVARITH_SYNC();
  if (blockIdx.x == p.bad_block && threadIdx.x == p.bad_thread)
    throw std::runtime_error("boom");
  CONVARITH_SYNC();
}

struct NestedParams {
  Status* inner;
};

CONVARITH_GLOBAL void trivial(CountParams p) {
  if (p.y != nullptr)
    p.y[0] = 1.0f;
}

CONVARITH_GLOBAL void nested(NestedParams p) {
  if (threadIdx.x == 0) {
    CountParams q{nullptr};
    *p.inner = CONVARITH_LAUNCH(trivial, dim3(1), dim3(1), 0, nullptr, q);
  }
}

struct StackParams {
  float* y;
  unsigned n;
};

// A large local array: needs a bigger fiber stack than the default.
CONVARITH_GLOBAL void big_frame(StackParams p) {
  volatile float local[48 * 1024]; // 192 KiB
  for (unsigned i = 0; i < p.n; ++i)
    local[i] = static_cast<float>(i % 8 + threadIdx.x);
  CONVARITH_SYNC();
  float sum = 0;
  for (unsigned i = 0; i < p.n; ++i)
    sum += local[i];
  p.y[threadIdx.x] = sum;
}

// ---- helpers -----------------------------------------------------------------------------------

std::vector<float> integer_data(int64_t n, int64_t salt) {
  std::vector<float> x(static_cast<size_t>(n));
  // Nonzero integers in [-11, 11]: every sum here is exact in float.
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i)] = static_cast<float>(((i * 37 + salt) % 11 + 1) * (i % 2 == 0 ? 1 : -1));
  return x;
}

// Exact block sums (integers: float addition is exact at these sizes).
std::vector<float> expected_block_sums(const std::vector<float>& x, unsigned threads) {
  const size_t blocks = (x.size() + threads - 1) / threads;
  std::vector<float> want(blocks, 0.0f);
  for (size_t i = 0; i < x.size(); ++i)
    want[i / threads] += x[i];
  return want;
}

Status run_reduce(const std::vector<float>& x, unsigned threads, std::vector<float>& sums, bool missing_barrier) {
  const unsigned blocks = static_cast<unsigned>((x.size() + threads - 1) / threads);
  sums.assign(blocks, std::nanf(""));
  ReduceParams p{x.data(), sums.data(), static_cast<int64_t>(x.size())};
  const size_t smem = threads * sizeof(float);
  if (missing_barrier)
    return CONVARITH_LAUNCH(block_reduce_missing_barrier, dim3(blocks), dim3(threads), smem, nullptr, p);
  return CONVARITH_LAUNCH(block_reduce, dim3(blocks), dim3(threads), smem, nullptr, p);
}

// ---- correct kernels run correctly -------------------------------------------------------------

TEST(Executor, BlockReductionIsExactInBothOrders) {
  const std::vector<float> x = integer_data(1000, 3); // 8 blocks of 128, the last one partial
  const std::vector<float> want = expected_block_sums(x, 128);
  for (bool reverse : {false, true}) {
    OptionsScope scope(order_options(reverse));
    std::vector<float> sums;
    emu::reset_stats();
    ASSERT_TRUE(run_reduce(x, 128, sums, false).is_ok()) << "reverse=" << reverse;
    ASSERT_EQ(sums.size(), 8u);
    for (size_t b = 0; b < sums.size(); ++b)
      EXPECT_EQ(sums[b], want[b]) << "block " << b << " reverse=" << reverse;
    const emu::Stats st = emu::stats();
    EXPECT_EQ(st.blocks, 8u);
    EXPECT_EQ(st.threads, 8u * 128u);
    EXPECT_EQ(st.barriers, 8u * (1u + 7u)); // the load plus log2(128) steps, per block
  }
}

TEST(Executor, EveryBlockAndThreadOf3dGridAnd3dBlockRunsExactlyOnce) {
  const dim3 grid(3, 2, 4);
  const dim3 block(4, 3, 2);
  const unsigned threads = block.x * block.y * block.z;
  const unsigned total = grid.x * grid.y * grid.z * threads;
  for (bool reverse : {false, true}) {
    OptionsScope scope(order_options(reverse));
    std::vector<unsigned> visits(total, 0), record(total * 12, ~0u), sequence(total, ~0u);
    unsigned counter = 0;
    CoverParams p{visits.data(), record.data(), sequence.data(), &counter};
    ASSERT_TRUE(CONVARITH_LAUNCH(cover, grid, block, 0, nullptr, p).is_ok());
    EXPECT_EQ(counter, total);
    for (unsigned g = 0; g < total; ++g) {
      ASSERT_EQ(visits[g], 1u) << "global thread " << g;
      const unsigned b = g / threads, t = g % threads;
      const unsigned want[12] = {b % grid.x,
                                 (b / grid.x) % grid.y,
                                 b / (grid.x * grid.y),
                                 t % block.x,
                                 (t / block.x) % block.y,
                                 t / (block.x * block.y),
                                 block.x,
                                 block.y,
                                 block.z,
                                 grid.x,
                                 grid.y,
                                 grid.z};
      for (int v = 0; v < 12; ++v)
        ASSERT_EQ(record[g * 12 + v], want[v]) << "global thread " << g << " value " << v;
      // Blocks run one at a time in x, y, z order; inside a block, threads first to last (or reversed).
      const unsigned want_sequence = b * threads + (reverse ? threads - 1 - t : t);
      ASSERT_EQ(sequence[g], want_sequence) << "global thread " << g << " reverse=" << reverse;
    }
  }
}

TEST(Executor, AtomicsSumExactlyAcrossBlocks) {
  float f = 0.0f;
  double d = 0.0;
  int i = 0;
  unsigned u = 0;
  AtomicParams p{&f, &d, &i, &u};
  ASSERT_TRUE(CONVARITH_LAUNCH(atomics, dim3(16), dim3(64), 0, nullptr, p).is_ok());
  EXPECT_EQ(f, 1024.0f);
  EXPECT_EQ(d, 512.0);
  EXPECT_EQ(i, 16 * (63 * 64 / 2 - 3 * 64)); // sum over threads of (t - 3), per block
  EXPECT_EQ(u, 64u * (16u * 17u / 2u));      // each of 64 threads adds blockIdx.x + 1
}

TEST(Executor, StatsCountBlocksThreadsAndBarriersExactly) {
  emu::reset_stats();
  EXPECT_EQ(emu::stats().blocks, 0u);
  EXPECT_EQ(emu::stats().threads, 0u);
  EXPECT_EQ(emu::stats().barriers, 0u);
  std::vector<float> y(6 * 16, std::nanf(""));
  CountParams p{y.data()};
  ASSERT_TRUE(CONVARITH_LAUNCH(three_barriers, dim3(2, 3), dim3(8, 2), 16 * sizeof(float), nullptr, p).is_ok());
  for (unsigned b = 0; b < 6; ++b)
    for (unsigned t = 0; t < 16; ++t)
      EXPECT_EQ(y[b * 16 + t], static_cast<float>((t + 2) % 16)) << b << "," << t;
  emu::Stats st = emu::stats();
  EXPECT_EQ(st.blocks, 6u);
  EXPECT_EQ(st.threads, 96u);
  EXPECT_EQ(st.barriers, 18u);
  // They accumulate until reset.
  ASSERT_TRUE(CONVARITH_LAUNCH(three_barriers, dim3(1), dim3(4), 4 * sizeof(float), nullptr, p).is_ok());
  st = emu::stats();
  EXPECT_EQ(st.blocks, 7u);
  EXPECT_EQ(st.threads, 100u);
  EXPECT_EQ(st.barriers, 21u);
  emu::reset_stats();
  EXPECT_EQ(emu::stats().blocks, 0u);
  EXPECT_EQ(emu::stats().threads, 0u);
  EXPECT_EQ(emu::stats().barriers, 0u);
}

TEST(Executor, StatsAreCountedPerOsThread) {
  emu::reset_stats();
  std::thread other([] {
    std::vector<float> y(16);
    CountParams p{y.data()};
    (void)CONVARITH_LAUNCH(three_barriers, dim3(1), dim3(16), 16 * sizeof(float), nullptr, p);
  });
  other.join();
  EXPECT_EQ(emu::stats().blocks, 0u);
  EXPECT_EQ(emu::stats().barriers, 0u);
}

TEST(Executor, SharedMemoryStartsAsNaNInEveryBlockAtFloatAndDoubleWidth) {
  for (int write_first : {0, 1}) {
    std::vector<float> f(2 * 8, 0.0f);
    std::vector<double> d(2 * 8, 0.0);
    PoisonParams p{f.data(), d.data(), write_first};
    ASSERT_TRUE(CONVARITH_LAUNCH(read_unwritten, dim3(2), dim3(8), 8 * sizeof(double), nullptr, p).is_ok());
    for (unsigned t = 0; t < 8; ++t) {
      if (write_first) {
        EXPECT_EQ(d[t], 1.0) << t; // block 0 wrote before its barrier
      } else {
        EXPECT_TRUE(std::isnan(d[t])) << t;
        EXPECT_TRUE(std::isnan(f[t])) << t;
      }
      // Block 1 never writes: what block 0 left behind must not leak into it.
      EXPECT_TRUE(std::isnan(d[8 + t])) << t;
      EXPECT_TRUE(std::isnan(f[8 + t])) << t;
    }
  }
}

TEST(Executor, LargeLocalArraysRunWithABiggerFiberStack) {
  emu::Options o;
  o.fiber_stack_bytes = 512 * 1024;
  OptionsScope scope(o);
  std::vector<float> y(32, std::nanf(""));
  StackParams p{y.data(), 48 * 1024};
  ASSERT_TRUE(CONVARITH_LAUNCH(big_frame, dim3(2), dim3(32), 0, nullptr, p).is_ok());
  // sum over i < n of (i % 8 + t): integers below 2^24, exact in float.
  for (unsigned t = 0; t < 32; ++t)
    EXPECT_EQ(y[t], static_cast<float>(p.n / 8 * 28 + p.n * t)) << t;
}

// ---- races are caught --------------------------------------------------------------------------

TEST(ExecutorRace, MissingBarrierInReductionGivesNaNInForwardOrder) {
  const std::vector<float> x = integer_data(512, 1);
  const std::vector<float> want = expected_block_sums(x, 128);
  std::vector<float> sums;
  {
    OptionsScope scope(order_options(false));
    ASSERT_TRUE(run_reduce(x, 128, sums, true).is_ok());
    // Thread t < 64 adds slot t + 64 before thread t + 64 has loaded it: the NaN poison reaches the sum.
    for (size_t b = 0; b < sums.size(); ++b)
      EXPECT_TRUE(std::isnan(sums[b])) << "block " << b << ": " << sums[b];
  }
  {
    // Last-to-first happens to load every slot before it is read: only the other order exposes this race,
    // which is why tests run kernels both ways.
    OptionsScope scope(order_options(true));
    ASSERT_TRUE(run_reduce(x, 128, sums, true).is_ok());
    for (size_t b = 0; b < sums.size(); ++b)
      EXPECT_EQ(sums[b], want[b]) << "block " << b;
  }
}

TEST(ExecutorRace, NeighbourReadWithoutBarrierReadsNaNInEitherOrder) {
  const unsigned threads = 64;
  const std::vector<float> x = integer_data(threads, 2);
  for (bool with_barrier : {true, false}) {
    for (bool reverse : {false, true}) {
      OptionsScope scope(order_options(reverse));
      std::vector<float> y(threads, 0.0f);
      NeighbourParams p{x.data(), y.data(), with_barrier};
      ASSERT_TRUE(
          CONVARITH_LAUNCH(neighbour_read, dim3(1), dim3(threads), threads * sizeof(float), nullptr, p).is_ok());
      for (unsigned t = 0; t < threads; ++t) {
        const float correct = x[(t + 1) % threads];
        // Forward: every thread but the last reads a slot its neighbour has not stored yet.
        // Reverse: only the last thread does (slot 0 is stored last).
        const bool stale = !with_barrier && (reverse ? t == threads - 1 : t != threads - 1);
        if (stale) {
          EXPECT_TRUE(std::isnan(y[t])) << "t=" << t << " reverse=" << reverse << " got " << y[t];
        } else {
          EXPECT_EQ(y[t], correct) << "t=" << t << " reverse=" << reverse << " barrier=" << with_barrier;
        }
      }
    }
  }
}

TEST(ExecutorRace, WriteAfterReadRaceMakesTheOrdersDisagree) {
  const unsigned threads = 32;
  const std::vector<float> x = integer_data(threads, 5);
  std::vector<float> correct(threads);
  for (unsigned t = 0; t < threads; ++t)
    correct[t] = x[(t + 1) % threads];
  std::vector<float> by_order[2];
  for (bool with_barrier : {true, false}) {
    for (int reverse = 0; reverse < 2; ++reverse) {
      OptionsScope scope(order_options(reverse != 0));
      by_order[reverse].assign(threads, std::nanf(""));
      NeighbourParams p{x.data(), by_order[reverse].data(), with_barrier};
      ASSERT_TRUE(
          CONVARITH_LAUNCH(neighbour_overwrite, dim3(1), dim3(threads), threads * sizeof(float), nullptr, p).is_ok());
    }
    if (with_barrier) {
      EXPECT_EQ(by_order[0], correct);
      EXPECT_EQ(by_order[1], correct);
    } else {
      // No NaN here (every slot was stored before the first barrier): the race shows as a
      // difference between the two orders, and each is wrong somewhere.
      EXPECT_NE(by_order[0], by_order[1]);
      EXPECT_NE(by_order[0], correct);
      EXPECT_NE(by_order[1], correct);
      EXPECT_EQ(by_order[0][threads - 1], -x[0]); // forward: thread 0 overwrote slot 0 first
      EXPECT_EQ(by_order[1][0], -x[1]);           // reverse: thread 1 overwrote slot 1 first
    }
  }
}

// ---- shared-memory bounds ----------------------------------------------------------------------

emu::Options canary_only() {
  emu::Options o;
  o.asan_guard = false; // under ASan, let the write land in the guard so the canary check reports it
  return o;
}

TEST(ExecutorBounds, WritePastTheEndIsAnErrorNamingKernelAndBlock) {
  OptionsScope scope(canary_only());
  for (int offset : {1, 16, 31}) { // the last thread stores 1..31 floats past the end
    std::vector<float> y(5 * 32, 0.0f);
    OobParams p{y.data(), offset, 2};
    emu::reset_stats();
    const Status s = CONVARITH_LAUNCH(oob_write_kernel, dim3(5), dim3(32), 32 * sizeof(float), nullptr, p);
    ASSERT_FALSE(s.is_ok()) << "offset " << offset;
    EXPECT_EQ(s.code(), StatusCode::kInternal);
    EXPECT_TRUE(mentions(s, "oob_write_kernel"));
    EXPECT_TRUE(mentions(s, "block (2,0,0)"));
    EXPECT_TRUE(mentions(s, "past the end of dynamic shared memory (128 bytes)"));
    EXPECT_TRUE(mentions(s, "guard byte at +0 ")); // thread 32 - offset stored at offset 128
    // The launch stops at the failing block.
    EXPECT_EQ(emu::stats().blocks, 3u);
    EXPECT_EQ(y[3 * 32], 0.0f);
  }
}

TEST(ExecutorBounds, WriteBeforeTheStartIsAnError) {
  OptionsScope scope(canary_only());
  std::vector<float> y(32, 0.0f);
  OobParams p{y.data(), -1, 0};
  const Status s = CONVARITH_LAUNCH(oob_write_kernel, dim3(1), dim3(32), 32 * sizeof(float), nullptr, p);
  ASSERT_FALSE(s.is_ok());
  EXPECT_TRUE(mentions(s, "block (0,0,0)"));
  EXPECT_TRUE(mentions(s, "before the start"));
  EXPECT_TRUE(mentions(s, "guard byte at -1 "));
}

TEST(ExecutorBounds, InBoundsWritesPassAndTheExecutorRecoversAfterAnError) {
  OptionsScope scope(canary_only());
  std::vector<float> y(3 * 32, 0.0f);
  OobParams p{y.data(), 0, 99};
  ASSERT_TRUE(CONVARITH_LAUNCH(oob_write_kernel, dim3(3), dim3(32), 32 * sizeof(float), nullptr, p).is_ok());
  for (float v : y)
    EXPECT_EQ(v, 2.0f);
}

TEST(ExecutorBounds, ReadPastTheEndYieldsNaNWithoutASanPoisoning) {
  OptionsScope scope(canary_only());
  std::vector<float> y(32, 0.0f);
  for (int offset : {1, -40}) { // past the end, and before the start
    OobParams p{y.data(), offset, 0};
    ASSERT_TRUE(CONVARITH_LAUNCH(oob_read_kernel, dim3(1), dim3(32), 32 * sizeof(float), nullptr, p).is_ok());
    for (unsigned t = 0; t < 32; ++t) {
      const int i = static_cast<int>(t) + offset;
      if (i >= 0 && i < 32) {
        EXPECT_EQ(y[t], 1.0f) << t;
      } else {
        EXPECT_TRUE(std::isnan(y[t])) << "thread " << t << " read index " << i << " and got " << y[t];
      }
    }
  }
}

#if CONVARITH_TEST_ASAN
TEST(ExecutorBoundsDeathTest, ASanReportsAReadPastTheEnd) {
  std::vector<float> y(32, 0.0f);
  OobParams p{y.data(), 1, 0};
  EXPECT_DEATH((void)CONVARITH_LAUNCH(oob_read_kernel, dim3(1), dim3(32), 32 * sizeof(float), nullptr, p),
               "use-after-poison|heap-buffer-overflow");
}

TEST(ExecutorBoundsDeathTest, ASanReportsAWritePastTheEnd) {
  std::vector<float> y(32, 0.0f);
  OobParams p{y.data(), 1, 0};
  EXPECT_DEATH((void)CONVARITH_LAUNCH(oob_write_kernel, dim3(1), dim3(32), 32 * sizeof(float), nullptr, p),
               "use-after-poison|heap-buffer-overflow");
}
#endif

// ---- barrier misuse ----------------------------------------------------------------------------

TEST(ExecutorBarrier, BarrierInsideABranchIsAnErrorNotAHang) {
  for (bool reverse : {false, true}) {
    OptionsScope scope(order_options(reverse));
    DivergeParams p{16, 0, 0, nullptr};
    const Status s = CONVARITH_LAUNCH(diverge, dim3(2), dim3(32), 0, nullptr, p);
    ASSERT_FALSE(s.is_ok());
    EXPECT_EQ(s.code(), StatusCode::kInternal);
    EXPECT_TRUE(mentions(s, "launch of diverge: block (0,0,0)"));
    EXPECT_TRUE(mentions(s, "divergent barrier: 16 of 32 threads wait at barrier #1"));
    EXPECT_TRUE(mentions(s, reverse ? "(e.g. thread (15,0,0))" : "(e.g. thread (0,0,0))"));
    EXPECT_TRUE(mentions(s, reverse ? "(e.g. thread (31,0,0))" : "(e.g. thread (16,0,0))"));
  }
}

TEST(ExecutorBarrier, DifferentBarrierCountsAreAnError) {
  DivergeParams p{0, 1, 0, nullptr};
  const Status s = CONVARITH_LAUNCH(diverge, dim3(1), dim3(8), 0, nullptr, p);
  ASSERT_FALSE(s.is_ok());
  EXPECT_TRUE(mentions(s, "1 of 8 threads wait at barrier #3 (e.g. thread (5,0,0))"));
}

TEST(ExecutorBarrier, EarlyReturnBeforeABarrierIsAnErrorOnlyWhenSomeThreadsReturn) {
  std::vector<float> y(32, 0.0f);
  DivergeParams full{0, 2, 32, y.data()};
  ASSERT_TRUE(CONVARITH_LAUNCH(diverge, dim3(1), dim3(32), 0, nullptr, full).is_ok());
  for (float v : y)
    EXPECT_EQ(v, 1.0f);
  DivergeParams partial{0, 2, 20, y.data()};
  const Status s = CONVARITH_LAUNCH(diverge, dim3(1), dim3(32), 0, nullptr, partial);
  ASSERT_FALSE(s.is_ok());
  EXPECT_TRUE(mentions(s, "20 of 32 threads wait at barrier #1"));
  EXPECT_TRUE(mentions(s, "12 returned without reaching it (e.g. thread (20,0,0))"));
}

TEST(ExecutorBarrier, ExecutorRunsCorrectlyAfterAbandonedFibers) {
  DivergeParams bad{16, 0, 0, nullptr};
  ASSERT_FALSE(CONVARITH_LAUNCH(diverge, dim3(1), dim3(256), 0, nullptr, bad).is_ok());
  const std::vector<float> x = integer_data(700, 9);
  const std::vector<float> want = expected_block_sums(x, 256);
  std::vector<float> sums;
  ASSERT_TRUE(run_reduce(x, 256, sums, false).is_ok());
  EXPECT_EQ(sums, want);
}

TEST(ExecutorBarrier, SyncOutsideAKernelDoesNothing) {
  emu::reset_stats();
  emu::sync_threads();
  EXPECT_EQ(emu::stats().barriers, 0u);
  EXPECT_EQ(emu::thread_idx().x, 0u);
  EXPECT_EQ(emu::dynamic_shared(), nullptr);
}

TEST(ExecutorErrors, ExceptionInAKernelIsAnErrorNamingBlockAndThread) {
  ThrowParams p{1, 3};
  const Status s = CONVARITH_LAUNCH(throwing, dim3(3), dim3(8), 0, nullptr, p);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_TRUE(mentions(s, "launch of throwing: block (1,0,0) of grid (3,1,1): thread (3,0,0) threw: boom"));
  ThrowParams none{99, 99};
  EXPECT_TRUE(CONVARITH_LAUNCH(throwing, dim3(3), dim3(8), 0, nullptr, none).is_ok());
}

TEST(ExecutorErrors, NestedLaunchIsRejected) {
  Status inner;
  NestedParams p{&inner};
  ASSERT_TRUE(CONVARITH_LAUNCH(nested, dim3(1), dim3(2), 0, nullptr, p).is_ok());
  EXPECT_EQ(inner.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(inner, "launch of trivial from inside kernel nested"));
}

// ---- launch configuration ----------------------------------------------------------------------

TEST(ExecutorConfig, BadLaunchConfigurationsAreInvalidArgumentsAndRunNothing) {
  struct Case {
    dim3 grid, block;
    size_t smem;
    const char* message;
  };
  const Case cases[] = {
      {dim3(0), dim3(32), 0, "grid (0,1,1) has a zero dimension"},
      {dim3(1, 1, 0), dim3(32), 0, "grid (1,1,0) has a zero dimension"},
      {dim3(1), dim3(32, 0), 0, "block (32,0,1) has a zero dimension"},
      {dim3(1), dim3(1025), 0, "block.x and block.y must be at most 1024"},
      {dim3(1), dim3(1, 1, 65), 0, "block.z at most 64"},
      {dim3(1), dim3(32, 32, 2), 0, "block (32,32,2) has 2048 threads, more than 1024"},
      {dim3(1), dim3(512, 3), 0, "has 1536 threads, more than 1024"},
      {dim3(1, 65536), dim3(32), 0, "grid.y and grid.z must be at most 65535"},
      {dim3(1, 1, 65536), dim3(32), 0, "grid.y and grid.z must be at most 65535"},
      {dim3(2147483648u), dim3(32), 0, "grid.x 2147483648 exceeds the limit 2147483647"},
      {dim3(1), dim3(32), 48 * 1024 + 1, "dynamic shared memory 49153 bytes (+ 0 static) exceeds the 49152 bytes"},
  };
  for (const Case& c : cases) {
    emu::reset_stats();
    std::vector<float> y(1, 0.0f);
    CountParams p{y.data()};
    const Status s = CONVARITH_LAUNCH(trivial, c.grid, c.block, c.smem, nullptr, p);
    ASSERT_FALSE(s.is_ok()) << c.message;
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << c.message;
    EXPECT_TRUE(mentions(s, "launch of trivial: ")) << c.message;
    EXPECT_TRUE(mentions(s, c.message));
    EXPECT_EQ(y[0], 0.0f) << c.message;
    EXPECT_EQ(emu::stats().blocks, 0u) << c.message;
  }
}

TEST(ExecutorConfig, LimitsThemselvesAreAccepted) {
  std::vector<float> y(1, 0.0f);
  CountParams p{y.data()};
  EXPECT_TRUE(CONVARITH_LAUNCH(trivial, dim3(1), dim3(1024), 0, nullptr, p).is_ok());
  EXPECT_TRUE(CONVARITH_LAUNCH(trivial, dim3(1), dim3(1, 1, 64), 0, nullptr, p).is_ok());
  EXPECT_TRUE(CONVARITH_LAUNCH(trivial, dim3(1), dim3(32, 32), 0, nullptr, p).is_ok());
  EXPECT_TRUE(CONVARITH_LAUNCH(trivial, dim3(1), dim3(1), 48 * 1024, nullptr, p).is_ok());
  EXPECT_TRUE(CONVARITH_LAUNCH_OPTIN(trivial, dim3(1), dim3(1), 227 * 1024, nullptr, p).is_ok());
  EXPECT_EQ(y[0], 1.0f);
}

TEST(ExecutorConfig, TooSmallFiberStackIsRejected) {
  emu::Options o;
  o.fiber_stack_bytes = 4096;
  OptionsScope scope(o);
  std::vector<float> y(1, 0.0f);
  CountParams p{y.data()};
  const Status s = CONVARITH_LAUNCH(trivial, dim3(1), dim3(1), 0, nullptr, p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(s, "fiber_stack_bytes 4096 is below the minimum 16384"));
  EXPECT_EQ(y[0], 0.0f);
}

// ---- concurrency and cost ----------------------------------------------------------------------

TEST(ExecutorConcurrency, OsThreadsRunLaunchesIndependently) {
  constexpr int kThreads = 4;
  constexpr int kReps = 5;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kThreads; ++w) {
    workers.emplace_back([w, &failures] {
      emu::Options o;
      o.reverse_thread_order = (w % 2) == 1;
      emu::set_options(o);
      emu::reset_stats();
      const std::vector<float> x = integer_data(300 + 50 * w, w);
      const std::vector<float> want = expected_block_sums(x, 64);
      for (int rep = 0; rep < kReps; ++rep) {
        std::vector<float> sums;
        if (!run_reduce(x, 64, sums, false).is_ok() || sums != want)
          ++failures;
      }
      const uint64_t blocks = kReps * want.size();
      const emu::Stats st = emu::stats();
      if (st.blocks != blocks || st.threads != blocks * 64 || st.barriers != blocks * 7)
        ++failures;
    });
  }
  for (std::thread& t : workers)
    t.join();
  EXPECT_EQ(failures.load(), 0);
}

// Sanitizer builds switch fibers 10-100x slower (TSan most); the cost tests shrink there.
#if CONVARITH_TEST_ASAN || defined(__SANITIZE_THREAD__)
constexpr unsigned kCostBlocks = 8;
#else
constexpr unsigned kCostBlocks = 128;
#endif

TEST(ExecutorCost, FibersPerSecondWithoutBarriers) {
  // Blocks of 256 threads that never wait: a fiber start and two switches per thread, the cost of
  // every barrier-free (direct) kernel.
  float f = 0.0f;
  double d = 0.0;
  int i = 0;
  unsigned u = 0;
  AtomicParams p{&f, &d, &i, &u};
  ASSERT_TRUE(CONVARITH_LAUNCH(atomics, dim3(1), dim3(256), 0, nullptr, p).is_ok()); // warm
  f = 0.0f;
  emu::reset_stats();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(CONVARITH_LAUNCH(atomics, dim3(kCostBlocks), dim3(256), 0, nullptr, p).is_ok());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double fibers = kCostBlocks * 256.0;
  EXPECT_EQ(f, static_cast<float>(fibers));
  ASSERT_EQ(emu::stats().threads, kCostBlocks * 256u);
  ASSERT_EQ(emu::stats().barriers, 0u);
  RecordProperty("fibers_per_second", std::to_string(fibers / seconds));
  std::printf("[ executor ] %.0f fibers, no barriers, in %.4f s: %.0f fibers/s\n", fibers, seconds, fibers / seconds);
}

TEST(ExecutorCost, FibersPerSecondWithBarriers) {
  // Blocks of 256 threads with 9 barriers each (a tree reduction): fiber starts and switches.
  const std::vector<float> x = integer_data(kCostBlocks * 256, 4);
  const std::vector<float> want = expected_block_sums(x, 256);
  std::vector<float> sums;
  ASSERT_TRUE(run_reduce(x, 256, sums, false).is_ok()); // warm: stacks mapped, fibers made
  emu::reset_stats();
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(run_reduce(x, 256, sums, false).is_ok());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(sums, want);
  const emu::Stats st = emu::stats();
  ASSERT_EQ(st.threads, kCostBlocks * 256u);
  ASSERT_EQ(st.barriers, kCostBlocks * 9u);
  // Every phase (barriers + 1 per block) switches into and out of every fiber.
  const double switches = 2.0 * static_cast<double>(st.threads) * 10.0;
  RecordProperty("fibers_per_second", std::to_string(static_cast<double>(st.threads) / seconds));
  RecordProperty("switches_per_second", std::to_string(switches / seconds));
  std::printf("[ executor ] %llu fibers x 9 barriers in %.4f s: %.0f fibers/s, %.0f switches/s\n",
              static_cast<unsigned long long>(st.threads), seconds, static_cast<double>(st.threads) / seconds,
              switches / seconds);
}

} // namespace
} // namespace convarith
