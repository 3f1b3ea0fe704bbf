// tests/test_executor_counters.cpp — the executor's traffic counters (executor.hpp, Options::count_traffic):
// exact counts on small planted kernels (global sectors per request, shared-memory wavefronts per
// request, unique bytes), grouping of lanes into warp requests, and that counting changes no result.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include "convarith/convarith.hpp"
#include "portable.cuh"
#include "support/support.hpp"

namespace convarith {
namespace {

class CountingScope {
public:
  explicit CountingScope(bool on = true) : saved_(emu::options()) {
    emu::Options o = saved_;
    o.count_traffic = on;
    emu::set_options(o);
    emu::reset_counters();
  }
  ~CountingScope() { emu::set_options(saved_); }
  CountingScope(const CountingScope&) = delete;
  CountingScope& operator=(const CountingScope&) = delete;

private:
  emu::Options saved_;
};

struct Params {
  const float* x;
  float* y;
  int stride; // in elements
  int mode;
};

// Global: lane t loads x[t * stride] (stride 0: every lane the same element) and stores y[t].
CONVARITH_GLOBAL void global_strided(Params p) {
  const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
  const float v = CONVARITH_LDG(p.x + t * p.stride);
  CONVARITH_STG(p.y + t, v);
}

// Global float4: lane t loads x[4t .. 4t+3] with one 128-bit load.
CONVARITH_GLOBAL void global_float4(Params p) {
  const unsigned t = threadIdx.x;
  const float4 v = CONVARITH_LDG(reinterpret_cast<const float4*>(p.x) + t);
  CONVARITH_STG(p.y + t, v.x + v.y + v.z + v.w);
}

// Shared: lane t stores s[t * stride] (mode 0), or every lane loads the same s[0] (mode 1), or lane t
// loads a float4 at s + 4t (mode 2).
CONVARITH_GLOBAL void shared_patterns(Params p) {
  CONVARITH_DYNAMIC_SHARED(float, s);
  const unsigned t = threadIdx.x;
  if (p.mode == 0) {
    CONVARITH_STS(s + t * p.stride, 1.0f);
  } else if (p.mode == 1) {
    CONVARITH_STS(s + t, 2.0f);
    CONVARITH_SYNC();
    CONVARITH_STG(p.y + t, CONVARITH_LDS(s));
  } else {
    for (int j = 0; j < 4; ++j)
      CONVARITH_STS(s + 4 * t + j, 3.0f);
    CONVARITH_SYNC();
    const float4 v = CONVARITH_LDS(reinterpret_cast<const float4*>(s) + t);
    CONVARITH_STG(p.y + t, v.x + v.w);
  }
}

// One site run twice per lane in a phase, then once more after a barrier: three requests per warp.
CONVARITH_GLOBAL void repeated_site(Params p) {
  const unsigned t = threadIdx.x;
  float sum = 0.0f;
  for (int round = 0; round < 3; ++round) {
    if (round == 2)
      CONVARITH_SYNC();
    sum += CONVARITH_LDG(p.x + t);
  }
  CONVARITH_ATOMIC_ADD(p.y + (t % 4), sum);
}

std::vector<float> iota(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = static_cast<float>(i);
  return v;
}

// The one site of `kind` (a copy: counters() returns by value); empty when there is none or several.
std::optional<emu::SiteCounters> only_site(const emu::Counters& c, emu::AccessKind kind) {
  std::optional<emu::SiteCounters> found;
  for (const emu::SiteCounters& s : c.sites) {
    if (s.kind != kind)
      continue;
    if (found.has_value())
      return std::nullopt;
    found = s;
  }
  return found;
}

TEST(ExecutorCounters, CoalescedFloatLoadIsFourSectorsPerWarpRequest) {
  CountingScope counting;
  const std::vector<float> x = iota(64);
  std::vector<float> y(64, 0.0f);
  Params p{x.data(), y.data(), 1, 0};
  ASSERT_TRUE(CONVARITH_LAUNCH(global_strided, dim3(1), dim3(64), 0, nullptr, p).is_ok());
  EXPECT_EQ(y[63], 63.0f);
  const emu::Counters c = emu::counters();
  const std::optional<emu::SiteCounters> load = only_site(c, emu::AccessKind::kGlobalLoad);
  ASSERT_TRUE(load.has_value());
  EXPECT_EQ(load->bytes, 4);
  EXPECT_EQ(load->requests, 2u); // two warps
  EXPECT_EQ(load->accesses, 64u);
  // std::vector's data is 16-byte aligned, not necessarily 128: count the sectors the 64 floats span.
  const uintptr_t a = reinterpret_cast<uintptr_t>(x.data());
  const uint64_t want = ((a + 127) / 32 - a / 32 + 1) + ((a + 255) / 32 - (a + 128) / 32 + 1);
  EXPECT_EQ(load->sectors, want);
  EXPECT_EQ(load->ideal_sectors, 8u);
  EXPECT_NE(load->site.find("test_executor_counters.cpp:"), std::string::npos) << load->site;
  const std::optional<emu::SiteCounters> store = only_site(c, emu::AccessKind::kGlobalStore);
  ASSERT_TRUE(store.has_value());
  EXPECT_EQ(store->requests, 2u);
  EXPECT_EQ(c.unique_bytes_read, 256u);
  EXPECT_EQ(c.unique_bytes_written, 256u);
  EXPECT_EQ(emu::unique_bytes_read(x.data(), 128), 128u);
  EXPECT_EQ(emu::unique_bytes_written(y.data(), 256), 256u);
  EXPECT_EQ(emu::unique_bytes_written(x.data(), 256), 0u);
}

TEST(ExecutorCounters, AlignedCoalescedLoadIsExactlyFourSectors) {
  CountingScope counting;
  std::vector<float> buffer(64 + 32, 1.0f);
  float* x = buffer.data() + ((128 - reinterpret_cast<uintptr_t>(buffer.data()) % 128) % 128) / 4;
  std::vector<float> y(32, 0.0f);
  for (const int stride : {1, 2, 0}) {
    emu::reset_counters();
    Params p{x, y.data(), stride, 0};
    ASSERT_TRUE(CONVARITH_LAUNCH(global_strided, dim3(1), dim3(32), 0, nullptr, p).is_ok());
    const std::optional<emu::SiteCounters> load = only_site(emu::counters(), emu::AccessKind::kGlobalLoad);
    ASSERT_TRUE(load.has_value());
    EXPECT_EQ(load->requests, 1u);
    // stride 1: 128 bytes in 4 sectors; stride 2: 8 sectors for 128 useful bytes; stride 0: a broadcast.
    EXPECT_EQ(load->sectors, stride == 1 ? 4u : stride == 2 ? 8u : 1u) << "stride " << stride;
    EXPECT_EQ(load->ideal_sectors, stride == 0 ? 1u : 4u) << "stride " << stride;
  }
}

TEST(ExecutorCounters, Float4LoadIsOneRequestOfSixteenSectors) {
  CountingScope counting;
  std::vector<float> buffer(128 + 32, 1.0f);
  float* x = buffer.data() + ((128 - reinterpret_cast<uintptr_t>(buffer.data()) % 128) % 128) / 4;
  std::vector<float> y(32, 0.0f);
  Params p{x, y.data(), 0, 0};
  ASSERT_TRUE(CONVARITH_LAUNCH(global_float4, dim3(1), dim3(32), 0, nullptr, p).is_ok());
  EXPECT_EQ(y[5], 4.0f);
  const std::optional<emu::SiteCounters> load = only_site(emu::counters(), emu::AccessKind::kGlobalLoad);
  ASSERT_TRUE(load.has_value());
  EXPECT_EQ(load->bytes, 16);
  EXPECT_EQ(load->requests, 1u);
  EXPECT_EQ(load->sectors, 16u);
  EXPECT_EQ(load->ideal_sectors, 16u);
}

TEST(ExecutorCounters, Stride32SharedStoreIsA32WayConflict) {
  CountingScope counting;
  std::vector<float> y(32, 0.0f);
  for (const int stride : {32, 2, 1}) {
    emu::reset_counters();
    Params p{nullptr, y.data(), stride, 0};
    ASSERT_TRUE(CONVARITH_LAUNCH(shared_patterns, dim3(1), dim3(32), 32 * 32 * sizeof(float), nullptr, p).is_ok());
    const std::optional<emu::SiteCounters> store = only_site(emu::counters(), emu::AccessKind::kSharedStore);
    ASSERT_TRUE(store.has_value());
    EXPECT_EQ(store->requests, 1u);
    EXPECT_EQ(store->wavefronts, stride == 32 ? 32u : stride == 2 ? 2u : 1u) << "stride " << stride;
    EXPECT_EQ(store->ideal_wavefronts, 1u);
  }
}

TEST(ExecutorCounters, SharedBroadcastIsOneWavefrontAndFloat4IsFour) {
  CountingScope counting;
  std::vector<float> y(64, 0.0f);
  Params p{nullptr, y.data(), 0, 1};
  ASSERT_TRUE(CONVARITH_LAUNCH(shared_patterns, dim3(1), dim3(64), 64 * 4 * sizeof(float), nullptr, p).is_ok());
  EXPECT_EQ(y[40], 2.0f);
  const std::optional<emu::SiteCounters> load = only_site(emu::counters(), emu::AccessKind::kSharedLoad);
  ASSERT_TRUE(load.has_value());
  EXPECT_EQ(load->requests, 2u);
  EXPECT_EQ(load->wavefronts, 2u);
  emu::reset_counters();
  p.mode = 2;
  ASSERT_TRUE(CONVARITH_LAUNCH(shared_patterns, dim3(1), dim3(32), 32 * 4 * sizeof(float), nullptr, p).is_ok());
  EXPECT_EQ(y[3], 6.0f);
  const std::optional<emu::SiteCounters> vec = only_site(emu::counters(), emu::AccessKind::kSharedLoad);
  ASSERT_TRUE(vec.has_value());
  EXPECT_EQ(vec->bytes, 16);
  EXPECT_EQ(vec->requests, 1u);
  EXPECT_EQ(vec->wavefronts, 4u);
  EXPECT_EQ(vec->ideal_wavefronts, 4u);
  // The staging stores: one site, executed 4 times per lane in the phase: 4 requests, lanes t write
  // s[4t + j] (stride 4: a 4-way conflict each).
  const std::optional<emu::SiteCounters> stores = only_site(emu::counters(), emu::AccessKind::kSharedStore);
  ASSERT_TRUE(stores.has_value());
  EXPECT_EQ(stores->requests, 4u);
  EXPECT_EQ(stores->wavefronts, 16u);
  EXPECT_EQ(stores->ideal_wavefronts, 4u);
}

TEST(ExecutorCounters, RepeatsAndPhasesAreSeparateRequestsAndUniqueBytesCountOnce) {
  CountingScope counting;
  const std::vector<float> x = iota(64);
  std::vector<float> y(4, 0.0f);
  Params p{x.data(), y.data(), 1, 0};
  ASSERT_TRUE(CONVARITH_LAUNCH(repeated_site, dim3(1), dim3(64), 0, nullptr, p).is_ok());
  const emu::Counters c = emu::counters();
  const std::optional<emu::SiteCounters> load = only_site(c, emu::AccessKind::kGlobalLoad);
  ASSERT_TRUE(load.has_value());
  EXPECT_EQ(load->requests, 6u); // 2 warps x (2 in the first phase + 1 after the barrier)
  EXPECT_EQ(load->accesses, 192u);
  const std::optional<emu::SiteCounters> atomics = only_site(c, emu::AccessKind::kGlobalAtomic);
  ASSERT_TRUE(atomics.has_value());
  EXPECT_EQ(atomics->requests, 2u);
  EXPECT_EQ(c.unique_bytes_read, 256u + 16u); // x once, however often; the atomics read y
  EXPECT_EQ(c.unique_bytes_written, 16u);
  const emu::SiteCounters total = c.total(emu::AccessKind::kGlobalLoad);
  EXPECT_EQ(total.requests, 6u);
}

TEST(ExecutorCounters, OffByDefault) {
  CountingScope counting(false);
  const std::vector<float> x = iota(32);
  std::vector<float> y(32, 0.0f);
  Params p{x.data(), y.data(), 1, 0};
  ASSERT_TRUE(CONVARITH_LAUNCH(global_strided, dim3(1), dim3(32), 0, nullptr, p).is_ok());
  EXPECT_TRUE(emu::counters().sites.empty());
  EXPECT_EQ(emu::counters().unique_bytes_read, 0u);
  EXPECT_FALSE(emu::Options{}.count_traffic);
}

// A real kernel with counting on gives bitwise the result of a run without, and reads exactly the
// compulsory bytes once (3x3, pad 1: every x, w and bias element is needed) and writes y once.
TEST(ExecutorCounters, CountingChangesNoResultOfARealKernelAndSeesCompulsoryBytes) {
  for (const char* name : {"tiled", "direct"}) {
    const Algorithm* row = find_algorithm(name, Device::kEmulated);
    ASSERT_NE(row, nullptr);
    ProblemDesc d;
    d.op = Op::kConv;
    d.n = 1;
    d.c = 8;
    d.k = 8;
    d.input = {12, 12, 1};
    d.kernel = {3, 3, 1};
    d.pad_lo = {1, 1, 0};
    d.pad_hi = {1, 1, 0};
    const ConvProblem problem = test::must_make(d);
    const test::Inputs in = test::random_inputs(problem, 7, true);
    std::vector<float> plain(static_cast<size_t>(problem.y_elements()), 0.0f), counted = plain;
    ASSERT_TRUE(test::run_row(*row, problem, in.x.data(), in.w.data(), in.bias.data(), plain.data()).is_ok());
    {
      CountingScope counting;
      ASSERT_TRUE(test::run_row(*row, problem, in.x.data(), in.w.data(), in.bias.data(), counted.data()).is_ok());
      const emu::Counters c = emu::counters();
      const uint64_t compulsory_read = (in.x.size() + in.w.size() + in.bias.size()) * sizeof(float);
      EXPECT_EQ(c.unique_bytes_read, compulsory_read) << name;
      EXPECT_EQ(c.unique_bytes_written, counted.size() * sizeof(float)) << name;
      const emu::SiteCounters loads = c.total(emu::AccessKind::kGlobalLoad);
      EXPECT_GT(loads.requests, 0u);
      EXPECT_GE(loads.sectors, loads.ideal_sectors);
      const emu::SiteCounters lds = c.total(emu::AccessKind::kSharedLoad);
      std::printf("[ counters ] %s on %s: global loads %llu requests, %.2f sectors/request (ideal %.2f); "
                  "shared loads %llu requests, %.2f wavefronts/request; unique read %llu B (compulsory %llu B)\n",
                  name, problem.name().c_str(), static_cast<unsigned long long>(loads.requests),
                  static_cast<double>(loads.sectors) / static_cast<double>(loads.requests),
                  static_cast<double>(loads.ideal_sectors) / static_cast<double>(loads.requests),
                  static_cast<unsigned long long>(lds.requests),
                  lds.requests == 0 ? 0.0 : static_cast<double>(lds.wavefronts) / static_cast<double>(lds.requests),
                  static_cast<unsigned long long>(c.unique_bytes_read),
                  static_cast<unsigned long long>(compulsory_read));
    }
    EXPECT_EQ(std::memcmp(plain.data(), counted.data(), plain.size() * sizeof(float)), 0) << name;
  }
}

} // namespace
} // namespace convarith
