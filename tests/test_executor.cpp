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

// ---- what a GPU would refuse or fault on -------------------------------------------------------

struct VectorParams {
  const float* x;    // global input
  float* y;          // global output
  int offset;        // in floats, added to the vector access's address (4: still 16-byte aligned)
  int mode;          // 0: float4 global load, 1: float4 shared load, 2: float2 global stores
  unsigned elements; // copy_n: y elements written, y[0 .. elements)
};

// Thread t copies 4 floats with a 128-bit load from x + offset + 4t (global or via shared memory).
CONVARITH_GLOBAL void vector_copy(VectorParams p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x;
  float4 v{0, 0, 0, 0};
  if (p.mode == 0) {
    v = CONVARITH_LDG(reinterpret_cast<const float4*>(p.x + p.offset) + t);
  } else if (p.mode == 1) {
    for (int j = 0; j < 4; ++j)
      CONVARITH_STS(s + 4 * t + j, CONVARITH_LDG(p.x + 4 * t + j));
    CONVARITH_SYNC();
    v = CONVARITH_LDS(reinterpret_cast<const float4*>(s + p.offset) + t);
  } else {
    v = CONVARITH_LDG(reinterpret_cast<const float4*>(p.x) + t);
  }
  if (p.mode == 2) {
    CONVARITH_STG(reinterpret_cast<float2*>(p.y + p.offset) + 2 * t, (float2{v.x, v.y}));
    CONVARITH_STG(reinterpret_cast<float2*>(p.y + p.offset) + 2 * t + 1, (float2{v.z, v.w}));
  } else {
    CONVARITH_STG(p.y + 4 * t, v.x);
    CONVARITH_STG(p.y + 4 * t + 1, v.y);
    CONVARITH_STG(p.y + 4 * t + 2, v.z);
    CONVARITH_STG(p.y + 4 * t + 3, v.w);
  }
}

// Thread t writes y[t] = x[t] for t < elements (the planted bug: elements one past the tensor).
CONVARITH_GLOBAL void copy_n(VectorParams p) {
  const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t < p.elements)
    CONVARITH_STG(p.y + t, CONVARITH_LDG(p.x + t) + 1.0f);
}

// Reads shared memory at t + offset through the access macro (the tiled kernel's way).
CONVARITH_GLOBAL void shared_read_at(OobParams p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const int t = static_cast<int>(threadIdx.x);
  CONVARITH_STS(s + t, 1.0f);
  CONVARITH_SYNC();
  CONVARITH_STG(p.y + t, CONVARITH_LDS(s + t + p.offset));
}

template <typename I> CONVARITH_GLOBAL void keyed_kernel(CountParams p) {
  if (p.y != nullptr)
    p.y[0] = static_cast<float>(sizeof(I));
}

struct VectorRun {
  Status status;
  std::vector<float> y;
};

// 64 threads, x = 0, 1, 2, ... from a 16-byte-aligned start; returns the 256 floats written from y's
// 16-byte-aligned start (poisoned to -1 before).
VectorRun run_vector(int mode, int offset) {
  std::vector<float> x(272), y(272, -1.0f);
  const size_t x_skip = ((16 - reinterpret_cast<uintptr_t>(x.data()) % 16) % 16) / sizeof(float);
  const size_t y_skip = ((16 - reinterpret_cast<uintptr_t>(y.data()) % 16) % 16) / sizeof(float);
  for (size_t i = x_skip; i < x.size(); ++i)
    x[i] = static_cast<float>(i - x_skip);
  VectorParams p{x.data() + x_skip, y.data() + y_skip, offset, mode, 0};
  VectorRun r;
  r.status = CONVARITH_LAUNCH(vector_copy, dim3(1), dim3(64), 64 * 4 * sizeof(float) + 16, nullptr, p);
  r.y.assign(y.begin() + static_cast<std::ptrdiff_t>(y_skip), y.begin() + static_cast<std::ptrdiff_t>(y_skip) + 256);
  return r;
}

TEST(ExecutorAlignment, AlignedVectorAccessesRunAndCopyExactly) {
  for (const int mode : {0, 1, 2}) {
    const VectorRun r = run_vector(mode, 0);
    ASSERT_TRUE(r.status.is_ok()) << "mode " << mode << ": " << r.status.to_string();
    for (size_t i = 0; i < 256; ++i)
      ASSERT_EQ(r.y[i], static_cast<float>(i)) << "mode " << mode << " element " << i;
  }
  // An offset of 4 floats keeps 16-byte alignment: the float4 loads read x[4 + 4t ..].
  const VectorRun shifted = run_vector(0, 4);
  ASSERT_TRUE(shifted.status.is_ok()) << shifted.status.to_string();
  EXPECT_EQ(shifted.y[0], 4.0f);
  EXPECT_EQ(shifted.y[255], 259.0f);
}

TEST(ExecutorAlignment, SixteenByteGlobalLoadFromAFourByteAlignedAddressIsAnError) {
  const VectorRun r = run_vector(0, 1); // x + 1: 4-byte aligned, not 16
  ASSERT_FALSE(r.status.is_ok());
  EXPECT_EQ(r.status.code(), StatusCode::kInternal);
  EXPECT_TRUE(mentions(r.status, "launch of vector_copy: block (0,0,0)"));
  EXPECT_TRUE(mentions(r.status, "thread (0,0,0)"));
  EXPECT_TRUE(mentions(r.status, "misaligned address: 16-byte global load at 0x"));
  EXPECT_TRUE(mentions(r.status, "(test_executor.cpp:"));
  EXPECT_TRUE(mentions(r.status, "is not 16-byte aligned"));
  EXPECT_EQ(r.y[0], -1.0f) << "the faulting thread went on";
}

TEST(ExecutorAlignment, MisalignedSharedVectorLoadAndGlobalVectorStoreAreErrors) {
  const VectorRun lds = run_vector(1, 2); // shared float4 load at offset 8 bytes
  EXPECT_EQ(lds.status.code(), StatusCode::kInternal) << lds.status.to_string();
  EXPECT_TRUE(mentions(lds.status, "16-byte shared load at 0x"));
  EXPECT_TRUE(mentions(lds.status, "(offset 8 in dynamic shared memory)"));
  const VectorRun stg = run_vector(2, 1); // float2 store at y + 1
  EXPECT_EQ(stg.status.code(), StatusCode::kInternal) << stg.status.to_string();
  EXPECT_TRUE(mentions(stg.status, "8-byte global store at 0x"));
  EXPECT_TRUE(mentions(stg.status, "is not 8-byte aligned"));
}

TEST(ExecutorBounds, WriteOneElementPastYIsAnErrorWhenExtentsAreRegistered) {
  constexpr unsigned kN = 100;
  std::vector<float> x(kN, 2.0f);
  std::vector<float> y(kN + 1, 0.0f); // one spare element that only the buggy launch touches
  VectorParams p{x.data(), y.data(), 0, 0, kN + 1};
  {
    // x is read one past its end too (x[100]): register a larger x so only the store is out of bounds.
    std::vector<float> x_big(kN + 1, 2.0f);
    p.x = x_big.data();
    const emu::GlobalExtents extents(
        {{x_big.data(), x_big.size() * sizeof(float), "x"}, {y.data(), kN * sizeof(float), "y"}, {nullptr, 0, "w"}});
    const Status s = CONVARITH_LAUNCH(copy_n, dim3(2), dim3(64), 0, nullptr, p);
    EXPECT_EQ(s.code(), StatusCode::kInternal) << s.to_string();
    EXPECT_TRUE(mentions(s, "launch of copy_n: block (1,0,0)"));
    EXPECT_TRUE(mentions(s, "thread (36,0,0)"));
    EXPECT_TRUE(mentions(s, "out-of-bounds global store of 4 bytes at 0x"));
    EXPECT_TRUE(mentions(s, "(test_executor.cpp:"));
    EXPECT_TRUE(mentions(s, "nearest: y ["));
    EXPECT_TRUE(mentions(s, "+400 bytes), the access ends 4 bytes past its end (offset 400)"));
    EXPECT_EQ(y[kN], 0.0f) << "the out-of-bounds store was performed";
    EXPECT_EQ(y[kN - 1], 3.0f);
    // In bounds: the same launch over 100 elements passes.
    p.elements = kN;
    EXPECT_TRUE(CONVARITH_LAUNCH(copy_n, dim3(2), dim3(64), 0, nullptr, p).is_ok());
    // A load outside every extent (x as registered, read at 101) names the load.
    p.x = x.data();
    const emu::GlobalExtents inner({{x.data(), x.size() * sizeof(float), "x_small"}});
    p.elements = kN + 1;
    const Status load = CONVARITH_LAUNCH(copy_n, dim3(2), dim3(64), 0, nullptr, p);
    EXPECT_EQ(load.code(), StatusCode::kInternal) << load.to_string();
    EXPECT_TRUE(mentions(load, "out-of-bounds global load of 4 bytes")) << load.message();
  }
  // Nothing registered: no bounds check (the spare element takes the store).
  p.x = x.data();
  std::vector<float> x_big(kN + 1, 2.0f);
  p.x = x_big.data();
  p.elements = kN + 1;
  EXPECT_TRUE(CONVARITH_LAUNCH(copy_n, dim3(2), dim3(64), 0, nullptr, p).is_ok());
  EXPECT_EQ(y[kN], 3.0f);
}

TEST(ExecutorBounds, SharedAccessOutsideDynamicSharedMemoryIsAnErrorNamingTheSite) {
  std::vector<float> y(32, 0.0f);
  OobParams p{y.data(), 0, 0};
  ASSERT_TRUE(CONVARITH_LAUNCH(shared_read_at, dim3(1), dim3(32), 32 * sizeof(float), nullptr, p).is_ok());
  EXPECT_EQ(y[31], 1.0f);
  p.offset = 1; // thread 31 reads one float past the end
  const Status s = CONVARITH_LAUNCH(shared_read_at, dim3(1), dim3(32), 32 * sizeof(float), nullptr, p);
  EXPECT_EQ(s.code(), StatusCode::kInternal) << s.to_string();
  EXPECT_TRUE(mentions(s, "thread (31,0,0)"));
  EXPECT_TRUE(mentions(s, "4-byte shared load at 0x"));
  EXPECT_TRUE(mentions(s, "is outside dynamic shared memory ["));
  EXPECT_TRUE(mentions(s, "+128 bytes): offset 128"));
  p.offset = -1; // thread 0 reads one float before the start
  const Status before = CONVARITH_LAUNCH(shared_read_at, dim3(1), dim3(32), 32 * sizeof(float), nullptr, p);
  EXPECT_TRUE(mentions(before, "4 bytes before its start")) << before.to_string();
}

TEST(ExecutorLimits, FortyNineKiBOfDynamicSharedMemoryNeedsTheOptIn) {
  std::vector<float> y(1, 0.0f);
  CountParams p{y.data()};
  const Status s = CONVARITH_LAUNCH(trivial, dim3(1), dim3(32), 49 * 1024, nullptr, p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(s, "launch of trivial: dynamic shared memory 50176 bytes (+ 0 static) exceeds the 49152 "
                          "bytes a block may use without the opt-in on sm_90 (h100): launch with "
                          "CONVARITH_LAUNCH_OPTIN"));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_TRUE(CONVARITH_LAUNCH_OPTIN(trivial, dim3(1), dim3(32), 49 * 1024, nullptr, p).is_ok());
  EXPECT_EQ(y[0], 1.0f);
  // With the opt-in, the profile's maximum: 227 KiB on sm_90, 163 KiB on sm_80.
  const Status over = CONVARITH_LAUNCH_OPTIN(trivial, dim3(1), dim3(32), 227 * 1024 + 1, nullptr, p);
  EXPECT_TRUE(mentions(over, "dynamic shared memory 232449 bytes (+ 0 static) exceeds the limit 232448 (the opt-in "
                             "maximum per block on sm_90 (h100))"));
  emu::Options a100;
  a100.profile = &kernels::kProfileA100;
  OptionsScope scope(a100);
  const Status sm80 = CONVARITH_LAUNCH_OPTIN(trivial, dim3(1), dim3(32), 164 * 1024, nullptr, p);
  EXPECT_TRUE(mentions(sm80, "exceeds the limit 166912 (the opt-in maximum per block on sm_80 (a100))"));
  EXPECT_TRUE(CONVARITH_LAUNCH_OPTIN(trivial, dim3(1), dim3(32), 163 * 1024, nullptr, p).is_ok());
}

TEST(ExecutorLimits, StaticSharedMemoryFromTheTableCountsAgainstTheLimit) {
  const std::vector<emu::KernelResources> table = {{"sm_90", "trivial", 16, 1024, 0}};
  emu::Options o;
  o.extra_resources = &table;
  OptionsScope scope(o);
  std::vector<float> y(1, 0.0f);
  CountParams p{y.data()};
  EXPECT_TRUE(CONVARITH_LAUNCH(trivial, dim3(1), dim3(32), 47 * 1024, nullptr, p).is_ok());
  const Status s = CONVARITH_LAUNCH(trivial, dim3(1), dim3(32), 47 * 1024 + 1, nullptr, p);
  EXPECT_TRUE(mentions(s, "dynamic shared memory 48129 bytes (+ 1024 static) exceeds the 49152 bytes")) << s.message();
}

TEST(ExecutorLimits, GridYOf70000IsRefused) {
  std::vector<float> y(1, 0.0f);
  CountParams p{y.data()};
  emu::reset_stats();
  const Status s = CONVARITH_LAUNCH(trivial, dim3(1, 70000), dim3(32), 0, nullptr, p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(s, "grid (1,70000,1): grid.y and grid.z must be at most 65535 on sm_90"));
  EXPECT_EQ(emu::stats().blocks, 0u);
}

TEST(ExecutorLimits, ABlockOf1024ThreadsWith128RegistersIsRefused) {
  std::vector<emu::KernelResources> table = {{"sm_90", "trivial", 128, 0, 0}};
  emu::Options o;
  o.extra_resources = &table;
  OptionsScope scope(o);
  std::vector<float> y(1, 0.0f);
  CountParams p{y.data()};
  const Status s = CONVARITH_LAUNCH(trivial, dim3(1024), dim3(1024), 0, nullptr, p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(s, "launch of trivial: block (1024,1,1): 1024 threads x 128 registers (trivial) = 131072 "
                          "registers, more than the 65536 a block may use on sm_90 (h100)"));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_TRUE(CONVARITH_LAUNCH(trivial, dim3(1), dim3(512), 0, nullptr, p).is_ok()); // 65536: fits
  table[0].registers = 64;
  EXPECT_TRUE(CONVARITH_LAUNCH(trivial, dim3(1), dim3(1024), 0, nullptr, p).is_ok());
  // The entry is per architecture: under sm_80 it does not apply (registers unknown, not checked)...
  table[0].registers = 128;
  emu::Options a100 = o;
  a100.profile = &kernels::kProfileA100;
  emu::set_options(a100);
  EXPECT_TRUE(CONVARITH_LAUNCH(trivial, dim3(1), dim3(1024), 0, nullptr, p).is_ok());
  // ...unless the table is required, and then the missing entry is the error.
  a100.require_resources = true;
  emu::set_options(a100);
  const Status missing = CONVARITH_LAUNCH(trivial, dim3(1), dim3(32), 0, nullptr, p);
  EXPECT_EQ(missing.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(missing, "kernel trivial has no entry for sm_80 in the resource table"));
}

TEST(ExecutorLimits, ABlockThatCannotBeResidentIsOccupancyZero) {
  // 992 threads x 66 registers = 65472 <= 65536, so the launch limit passes; but registers are
  // allocated per warp in units of 256: 66 -> 72 per thread, 2304 per warp, 31 warps = 71424 > 65536.
  const std::vector<emu::KernelResources> table = {{"sm_90", "trivial", 66, 0, 0}};
  emu::Options o;
  o.extra_resources = &table;
  OptionsScope scope(o);
  std::vector<float> y(1, 0.0f);
  CountParams p{y.data()};
  const Status s = CONVARITH_LAUNCH(trivial, dim3(1), dim3(992), 0, nullptr, p);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(mentions(s, "a block (992,1,1) (trivial) cannot be resident on an SM on sm_90 (h100) (occupancy 0"));
  EXPECT_TRUE(mentions(s, "31 warps x 2304 registers per warp (66 per thread, allocated in units of 256 per warp) = "
                          "71424 registers, more than the 65536 of an SM"));
  EXPECT_EQ(y[0], 0.0f);
  EXPECT_TRUE(CONVARITH_LAUNCH(trivial, dim3(1), dim3(896), 0, nullptr, p).is_ok()); // 28 warps x 2304 fit
  EXPECT_EQ(emu::resident_blocks_per_sm(kernels::kProfileH100, 992, 66, 0), 0);
  EXPECT_EQ(emu::resident_blocks_per_sm(kernels::kProfileH100, 896, 66, 0), 1);
  EXPECT_EQ(emu::resident_blocks_per_sm(kernels::kProfileH100, 256, 32, 0), 8);         // 2048 threads per SM
  EXPECT_EQ(emu::resident_blocks_per_sm(kernels::kProfileH100, 128, 64, 48 * 1024), 4); // 228 KiB / 49 KiB
}

TEST(ExecutorResources, TheTableHoldsEveryKernelForBothArchitectures) {
  const std::vector<emu::KernelResources>& table = emu::kernel_resource_table();
  ASSERT_FALSE(table.empty());
  for (const char* kernel :
       {"direct_kernel<float, int>", "direct_kernel<float, long>", "direct_kernel<convarith::kernels::f16, int>",
        "tiled_kernel<float, 1, 0>", "tiled_kernel<convarith::kernels::bf16, 8, 3>", "tiled_kernel<float, 8, 1>",
        "gather_kernel<float, long>", "scatter_kernel<float, int>",
        "scatter_finish_kernel<convarith::kernels::f16, long>", "pool_kernel<float, int>"}) {
    for (const char* arch : {"sm_80", "sm_90"}) {
      const emu::KernelResources* r = emu::find_kernel_resources(kernel, arch);
      ASSERT_NE(r, nullptr) << kernel << " " << arch;
      EXPECT_GT(r->registers, 0) << kernel << " " << arch;
      EXPECT_LE(r->registers, 255) << kernel << " " << arch;
    }
  }
  EXPECT_EQ(emu::find_kernel_resources("no_such_kernel", "sm_90"), nullptr);
  EXPECT_EQ(emu::find_kernel_resources("tiled_kernel<float, 8, 0>", "sm_70"), nullptr);
}

TEST(ExecutorResources, KernelKeysAreTheDemangledInstantiationNames) {
  EXPECT_STREQ(emu::kernel_key<trivial>(), "trivial");
  EXPECT_STREQ(emu::kernel_key<keyed_kernel<int64_t>>(), "keyed_kernel<long>");
  EXPECT_STREQ(emu::kernel_key<keyed_kernel<int32_t>>(), "keyed_kernel<int>");
  EXPECT_STREQ(emu::kernel_key<keyed_kernel<uint64_t>>(), "keyed_kernel<unsigned long>");
  // Clang's form.
  EXPECT_EQ(emu::detail::kernel_key_from_signature("const char *kernel_key() [F = &ns::k::foo<long>]"), "foo<long>");
  EXPECT_EQ(
      emu::detail::kernel_key_from_signature("const char* kernel_key() [with auto F = (anonymous namespace)::bar]"),
      "bar");
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
