// Every CUDA kernel row of the algorithm table, run on the emulated device (the CPU kernel executor) on
// host memory — the very kernel source nvcc compiles — against the fp64 reference, over the paper's
// figures, the smoke and edge lists and a fixed draw of random problems.
//
// Every run checks what would fault on a GPU (executor.hpp): accesses outside the tensors, misaligned
// accesses, launches past the limits of sm_90 (and of sm_80 for one run), kernels missing from the
// register table.
// Per (algorithm x problem): small integer inputs compared exactly (with and without bias), then
// fresh random floats compared within the error bound, run twice: threads of each phase in forward
// and in reverse order. A deterministic kernel must give bitwise-identical results both ways (a
// missing barrier or a race on shared memory changes them); outputs are NaN-poisoned before every
// run so an unwritten element fails.
// Filter by algorithm, e.g. --gtest_filter='*Emulated*tiled*'.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "conv_depthwise.cuh"
#include "conv_direct.cuh"
#include "conv_igemm.cuh"
#include "conv_tiled.cuh"
#include "convarith/convarith.hpp"
#include "executor.hpp"
#include "pool_direct.cuh"
#include "row.hpp"
#include "support/support.hpp"
#include "transpose_gather.cuh"
#include "transpose_scatter.cuh"

namespace convarith::test {
namespace {

struct KernelCase {
  const Algorithm* algorithm = nullptr;
  std::string list; // which named list the problem comes from
  NamedProblem problem;
};

// Fixed, so the random list (and the test names) are the same on every run; the inputs of each run
// are fresh (fresh_seed) and printed on failure.
constexpr uint64_t kRandomProblemSeed = 20261124;
constexpr int kRandomProblemCount = 24;

NamedProblem conv_named(const std::string& name, int64_t n, int64_t c, int64_t k, int64_t groups,
                        std::vector<int64_t> input, std::vector<int64_t> kernel, int64_t stride, int64_t pad,
                        int64_t dilation) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.n = n;
  d.c = c;
  d.k = k;
  d.groups = groups;
  d.rank = static_cast<int>(input.size());
  for (size_t j = 0; j < input.size(); ++j) {
    d.input[j] = input[j];
    d.kernel[j] = kernel[j];
    d.stride[j] = stride;
    d.pad_lo[j] = pad;
    d.pad_hi[j] = pad;
    d.dilation[j] = dilation;
  }
  return {name, must_make(d)};
}

// Problems that walk the tiled kernel's loops: several input-channel chunks (C/g > 16), several
// channel tiles (K/g > 16, and K/g not a multiple of the tile), several pixel tiles in both axes,
// every tile shape and every outputs-per-thread count.
std::vector<NamedProblem> tile_problems() {
  return {conv_named("chunks_ktiles_wtiles", 1, 20, 20, 1, {6, 40}, {3, 3}, 1, 1, 1),
          conv_named("htiles_stride2_dilation2", 2, 3, 5, 1, {40, 21}, {3, 3}, 2, 2, 2),
          conv_named("k3_per_group_groups2", 1, 4, 6, 2, {9, 9}, {2, 2}, 1, 0, 1),
          conv_named("k7_per_group", 1, 2, 7, 1, {7, 5}, {3, 1}, 1, 1, 1),
          conv_named("rank1_long", 2, 3, 9, 1, {300}, {5}, 1, 2, 1),
          conv_named("rank3_chunks", 1, 18, 4, 1, {3, 5, 6}, {2, 3, 3}, 1, 1, 1),
          conv_named("depthwise_wide", 1, 4, 4, 4, {5, 70}, {3, 3}, 1, 1, 1)};
}

std::vector<std::pair<std::string, std::vector<NamedProblem>>> problem_lists() {
  return {{"paper", paper_problems()}, {"smoke", smoke_problems()},
          {"edge", edge_problems()},   {"random", random_problems(kRandomProblemSeed, kRandomProblemCount)},
          {"tiles", tile_problems()},  {"index64", index64_problems()}};
}

std::vector<KernelCase> kernel_cases() {
  std::vector<KernelCase> cases;
  const auto lists = problem_lists();
  for (const Algorithm& row : algorithm_table()) {
    if (row.device != Device::kEmulated)
      continue;
    for (const auto& [list, problems] : lists) {
      for (const NamedProblem& np : problems) {
        if ((row.ops & op_bit(np.problem.op())) != 0)
          cases.push_back({&row, list, np});
      }
    }
  }
  return cases;
}

// gtest prints a failing parameter with this instead of its bytes.
void PrintTo(const KernelCase& c, std::ostream* os) {
  *os << c.algorithm->name << " on " << c.list << "/" << c.problem.name << " (" << c.problem.problem.name() << ")";
}

std::string case_name(const ::testing::TestParamInfo<KernelCase>& info) {
  return param_name(std::string(info.param.algorithm->name) + "_" + info.param.list + "_" + info.param.problem.name);
}

struct RunResult {
  Status status;
  std::vector<float> y;
};

// One emulated run on NaN-poisoned output; `reverse` runs each phase's threads last to first. Every
// run is checked as a GPU would fault: each global access must lie inside x, w, bias, y or the
// workspace (their exact allocations), every kernel must be in the resource table, and the launch must
// fit the target profile (sm_90 by default; `profile` e.g. sm_80).
RunResult run_emulated(const Algorithm& algorithm, const ConvProblem& p, const Inputs& in, bool with_bias, bool reverse,
                       const kernels::DeviceProfile* profile = nullptr) {
  RunResult result;
  result.y.resize(static_cast<size_t>(p.y_elements()));
  poison(result.y);
  const emu::Options saved = emu::options();
  emu::Options options = saved;
  options.reverse_thread_order = reverse;
  options.require_resources = true;
  options.profile = profile;
  emu::set_options(options);
  // Plan::run on the emulated device registers x, w, bias, z, y and the workspace as the launch's global extents.
  result.status = run_row(algorithm, p, in.x.data(), in.w.empty() ? nullptr : in.w.data(),
                          with_bias && !in.bias.empty() ? in.bias.data() : nullptr, result.y.data());
  emu::set_options(saved);
  return result;
}

// The reference as the float32 a correct kernel returns for integer inputs: sums of small integers
// are exact, but average pooling divides, so its exact quotient is rounded to float once.
std::vector<double> exact_float_reference(const ConvProblem& p, const Inputs& in, bool with_bias) {
  std::vector<double> want = reference(p, in.x.data(), in.w.empty() ? nullptr : in.w.data(),
                                       with_bias && !in.bias.empty() ? in.bias.data() : nullptr);
  if (p.op() == Op::kAvgPool) {
    for (double& v : want)
      v = static_cast<double>(static_cast<float>(v));
  }
  return want;
}

class EmulatedKernel : public ::testing::TestWithParam<KernelCase> {};

TEST_P(EmulatedKernel, MatchesReference) {
  const Algorithm& algorithm = *GetParam().algorithm;
  const ConvProblem& p = GetParam().problem.problem;
  const Status supported = algorithm.supports(p);
  if (!supported.is_ok()) {
    EXPECT_EQ(supported.code(), StatusCode::kNotSupported) << supported.to_string();
    EXPECT_NE(supported.message().find(algorithm.name), std::string::npos) << supported.to_string();
    GTEST_SKIP() << supported.message();
  }

  // Integers, with and without bias: every sum is exact, so any indexing error shows.
  const Inputs ints = integer_inputs(p, 17, true);
  for (const bool with_bias : {true, false}) {
    // The run without bias checks the launches against sm_80's limits and registers.
    const RunResult got =
        run_emulated(algorithm, p, ints, with_bias, false, with_bias ? nullptr : &kernels::kProfileA100);
    ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
    EXPECT_TRUE(exact_match(p, got.y, exact_float_reference(p, ints, with_bias)))
        << algorithm.name << (with_bias ? " with bias" : " without bias");
  }

  // Random floats, forward and reverse thread order.
  const uint64_t seed = fresh_seed();
  const Inputs floats = random_inputs(p, seed, true);
  const float* w = floats.w.empty() ? nullptr : floats.w.data();
  const float* bias = floats.bias.empty() ? nullptr : floats.bias.data();
  const std::vector<double> want = reference(p, floats.x.data(), w, bias);
  const std::vector<double> magnitude = reference_magnitude(p, floats.x.data(), w, bias);
  const RunResult forward = run_emulated(algorithm, p, floats, true, false);
  const RunResult reverse = run_emulated(algorithm, p, floats, true, true);
  ASSERT_TRUE(forward.status.is_ok()) << forward.status.to_string();
  ASSERT_TRUE(reverse.status.is_ok()) << reverse.status.to_string();
  EXPECT_TRUE(close_match(p, forward.y, want, magnitude)) << "random inputs, seed " << seed;
  EXPECT_TRUE(close_match(p, reverse.y, want, magnitude)) << "random inputs, reverse thread order, seed " << seed;
  if (algorithm.deterministic && !forward.y.empty()) {
    EXPECT_EQ(std::memcmp(forward.y.data(), reverse.y.data(), forward.y.size() * sizeof(float)), 0)
        << algorithm.name << " is declared deterministic but forward and reverse thread order differ (seed " << seed
        << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Emulated, EmulatedKernel, ::testing::ValuesIn(kernel_cases()), case_name);

// The compile-time epilogue (apply_epilogue_as<kAct>, the depthwise fast shapes' per-activation instantiations)
// gives apply_epilogue's bits for identity, relu, leaky_relu and clip, on signed zeros, infinities, NaN, denormals
// and ordinary values, with alpha, bias and beta * z; has_compile_time_act names exactly those four.
TEST(Epilogue, CompileTimeActivationEqualsRunTimeBitwise) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> values = {0.0f,    -0.0f, 1.0f, -1.0f, 0.5f, -2.5f, 3e38f, -3e38f, 1e-40f,
                                     -1e-40f, inf,   -inf, nan,   -nan, 7.0f,  -7.0f, 0.25f,  2.0f};
  int compared = 0;
  const auto check = [&](auto act_tag) {
    constexpr int kAct = decltype(act_tag)::value;
    for (const auto& [a, b] : {std::pair{0.1f, 6.0f}, std::pair{-1.0f, 1.0f}, std::pair{0.0f, 0.0f}}) {
      for (const auto& [alpha, beta] : {std::pair{1.0f, 0.0f}, std::pair{-0.5f, 2.0f}}) {
        kernels::EpilogueParams e;
        e.act = kAct;
        e.a = a;
        e.b = b;
        e.alpha = alpha;
        e.beta = beta;
        for (float v : values) {
          for (float bias : {0.0f, -0.0f, 1.5f}) {
            const float want = kernels::apply_epilogue(e, v, bias, -v);
            const float got = kernels::apply_epilogue_as<kAct>(e, v, bias, -v);
            uint32_t wb = 0, gb = 0;
            std::memcpy(&wb, &want, 4);
            std::memcpy(&gb, &got, 4);
            EXPECT_EQ(gb, wb) << "act " << kAct << " a " << a << " b " << b << " v " << v << " bias " << bias;
            ++compared;
          }
        }
      }
    }
  };
  check(std::integral_constant<int, kernels::kActIdentity>{});
  check(std::integral_constant<int, kernels::kActRelu>{});
  check(std::integral_constant<int, kernels::kActLeakyRelu>{});
  check(std::integral_constant<int, kernels::kActClip>{});
  EXPECT_EQ(compared, 4 * 3 * 2 * 18 * 3);
  for (int act = kernels::kActIdentity; act <= kernels::kActGeluTanh; ++act)
    EXPECT_EQ(kernels::has_compile_time_act(act), act <= kernels::kActClip) << act;
  EXPECT_FALSE(kernels::has_compile_time_act(kernels::kActAny));
}

// FastDecompose (kernel_common.cuh) gives decompose()'s coordinates for both memory orders, on every index of small
// shapes (extents 1, primes, powers of two) and on indices near 2^31 of a large one.
TEST(FastDiv, FastDecomposeEqualsDecompose) {
  const auto same = [](const kernels::Coord<int>& a, const kernels::Coord<int>& b) {
    return a.n == b.n && a.c == b.c && a.d == b.d && a.h == b.h && a.w == b.w;
  };
  for (bool cl : {false, true}) {
    for (const std::array<int, 5>& s : {std::array<int, 5>{2, 3, 1, 5, 7}, std::array<int, 5>{1, 1, 1, 1, 1},
                                        std::array<int, 5>{3, 16, 2, 4, 8}, std::array<int, 5>{2, 13, 3, 1, 11}}) {
      const int n = s[0], c = s[1], d = s[2], h = s[3], w = s[4];
      const kernels::FastDecompose f(cl, c, d, h, w);
      for (int e = 0; e < n * c * d * h * w; ++e)
        ASSERT_TRUE(same(f(e), kernels::decompose<int>(e, cl, c, d, h, w))) << cl << " e " << e;
    }
    const kernels::FastDecompose big(cl, 1000, 7, 613, 439); // 1.88e9 elements per image
    for (int e : {0, 1, 2147483647, 2147483646, 1879136999, 1879137000, 123456789})
      ASSERT_TRUE(same(big(e), kernels::decompose<int>(e, cl, 1000, 7, 613, 439))) << cl << " e " << e;
  }
}

// The baselines promise every problem of their ops: no problem of any list may be declined.
// FastDiv (kernel_common.cuh) against the division it replaces: every n < 2^12 for every divisor < 2^10 (the
// in-tile sizes the kernels divide by), and for divisors up to 2^31 - 1 the numerators next to each multiple of d
// and at the top of the range, where an off-by-one in the magic number shows first.
TEST(FastDiv, EqualsIntegerDivision) {
  for (int d = 1; d < 1024; ++d) {
    const kernels::FastDiv f(d);
    for (int n = 0; n < 4096; ++n) {
      int r = -1;
      const int q = f.divmod(n, r);
      ASSERT_EQ(q, n / d) << n << " / " << d;
      ASSERT_EQ(r, n % d) << n << " % " << d;
    }
  }
  const int64_t top = (int64_t{1} << 31) - 1;
  for (int64_t d : {int64_t{1023}, int64_t{4097}, int64_t{65535}, int64_t{65537}, int64_t{1} << 20,
                    (int64_t{1} << 30) + 1, (int64_t{1} << 30) - 1, top - 1, top}) {
    const kernels::FastDiv f(d);
    std::vector<int64_t> ns = {0, 1, top, top - 1, top - d + 1};
    for (int64_t m = 1; m * d <= top && m < 200000; m = m * 3 + 1)
      for (int64_t delta : {-1, 0, 1})
        if (m * d + delta >= 0 && m * d + delta <= top)
          ns.push_back(m * d + delta);
    for (int64_t n : ns)
      ASSERT_EQ(f.div(static_cast<int>(n)), n / d) << n << " / " << d;
  }
}

TEST(EmulatedKernels, BaselinesSupportEveryProblem) {
  for (const auto& [list, problems] : problem_lists()) {
    for (const NamedProblem& np : problems) {
      const ConvProblem& p = np.problem;
      const char* baseline = p.op() == Op::kConv ? "direct" : p.op() == Op::kConvTranspose ? "gather" : "pool";
      const Algorithm* row = find_algorithm(baseline, Device::kEmulated);
      ASSERT_NE(row, nullptr) << baseline;
      const Status s = row->supports(p);
      EXPECT_TRUE(s.is_ok()) << list << "/" << np.name << ": " << s.to_string();
    }
  }
}

// The 64-bit index path runs: every index64 problem fails index_fits_int32 (so direct, gather,
// scatter and pool dispatch their int64_t instantiation), and every kCuda row supports at least one
// of them, so the MatchesReference cases of the "index64" list run each row past 2^31 offsets.
// tiled has a single instantiation whose global offsets are always int64_t; it declines a 2^31
// stride on H or W (the input tile would not fit in shared memory) and runs the one on D.
TEST(EmulatedKernels, Index64ProblemsTakeThe64BitPathOnEveryRow) {
  const std::vector<NamedProblem> problems = index64_problems();
  for (const NamedProblem& np : problems)
    EXPECT_FALSE(kernels::index_fits_int32(np.problem)) << np.name << " fits int32";
  for (const Algorithm& row : algorithm_table()) {
    if (row.device != Device::kEmulated)
      continue;
    int runnable = 0;
    for (const NamedProblem& np : problems)
      if ((row.ops & op_bit(np.problem.op())) != 0 && row.supports(np.problem).is_ok())
        ++runnable;
    EXPECT_GT(runnable, 0) << row.name << " supports none of the index64 problems";
  }
  // The tap past the 2^31 offset is real: output row 1 reads input row 0 (integers, exact).
  const NamedProblem& tap = problems[1];
  ASSERT_EQ(tap.name, "conv_pad_2to31_tap_after_offset");
  ASSERT_EQ(tap.problem.out(0), 2);
  const Algorithm* direct = find_algorithm("direct", Device::kEmulated);
  ASSERT_NE(direct, nullptr);
  const Inputs ints = integer_inputs(tap.problem, 9, false);
  const RunResult got = run_emulated(*direct, tap.problem, ints, false, false);
  ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
  const std::vector<double> want = exact_float_reference(tap.problem, ints, false);
  EXPECT_TRUE(exact_match(tap.problem, got.y, want));
  const int64_t row1 = tap.problem.out(1); // y[0][0][1][0]: the first element of output row 1
  bool nonzero = false;
  for (int64_t w = 0; w < tap.problem.out(1); ++w)
    nonzero = nonzero || want[static_cast<size_t>(row1 + w)] != 0.0;
  EXPECT_TRUE(nonzero) << "output row 1 should read real input";
}

// The kCuda rows, in `auto` order: tiled before direct, gather before scatter; each has an emulated twin.
TEST(EmulatedKernels, TableOrderAndFlags) {
  std::vector<std::string> names;
  for (const Algorithm& row : algorithm_table()) {
    if (row.device == Device::kCuda)
      names.push_back(row.name);
  }
  auto position = [&](const char* name) {
    return static_cast<int>(std::find(names.begin(), names.end(), name) - names.begin());
  };
  for (const char* name : {"tiled", "direct", "gather", "scatter", "pool"}) {
    ASSERT_LT(position(name), static_cast<int>(names.size())) << name << " is not a kCuda row";
    const Algorithm* row = find_algorithm(name, Device::kCuda);
    ASSERT_NE(row, nullptr) << name;
    const Algorithm* twin = find_algorithm(name, Device::kEmulated);
    ASSERT_NE(twin, nullptr) << name;
    EXPECT_NE(twin->run, nullptr) << name;
    EXPECT_EQ(twin->deterministic, row->deterministic) << name;
#if defined(CONVARITH_HAVE_CUDA)
    EXPECT_NE(row->run, nullptr) << name;
#else
    EXPECT_EQ(row->run, nullptr) << name;
#endif
    EXPECT_EQ(row->deterministic, std::string(name) != "scatter") << name;
  }
  EXPECT_LT(position("tiled"), position("direct"));
  EXPECT_LT(position("gather"), position("scatter"));
}

// A dilated 3x3 over 150x150 needs a 124 x 152 input tile for one output tile: past 48 KiB, so tiled
// declines with the numbers, and direct still computes it exactly.
TEST(EmulatedKernels, TiledDeclinesOversizedTileDirectRunsIt) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.c = 2;
  d.k = 3;
  d.input = {150, 150, 1};
  d.kernel = {3, 3, 1};
  d.dilation = {60, 60, 1};
  const ConvProblem p = must_make(d);
  ASSERT_EQ(p.out(0), 30);
  const Algorithm* tiled = find_algorithm("tiled", Device::kEmulated);
  const Algorithm* direct = find_algorithm("direct", Device::kEmulated);
  ASSERT_NE(tiled, nullptr);
  ASSERT_NE(direct, nullptr);
  const Status s = tiled->supports(p);
  EXPECT_EQ(s.code(), StatusCode::kNotSupported);
  EXPECT_NE(s.message().find("shared memory"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("124x152"), std::string::npos) << s.message();
  ASSERT_TRUE(direct->supports(p).is_ok());
  const Inputs ints = integer_inputs(p, 5, true);
  const RunResult got = run_emulated(*direct, p, ints, true, false);
  ASSERT_TRUE(got.status.is_ok()) << got.status.to_string();
  EXPECT_TRUE(exact_match(p, got.y, exact_float_reference(p, ints, true)));
}

// Missing pointers are kInvalidArgument naming the pointer, and nothing is written (Plan::run checks them once,
// for every row).
// prepare() runs in host code for both devices: the grid of a CUDA plan must be the GPU's (up to 65536 blocks, as
// many as the work needs), the emulated plan's the executor's 3. (Once every CUDA plan launched 3 blocks: the cap
// came from the compilation, and host code is never the GPU's.)
template <typename Params, typename Prepare> unsigned prepared_grid(Prepare prepare, const ConvProblem& p, Device d) {
  DeviceInfo dev = emulated_device_info();
  dev.device = d;
  const Result<Prepared> r = prepare(p, dev);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? static_cast<const kernels::KernelPlan<Params>*>(r->state.get())->grid.x : 0;
}

TEST(EmulatedKernels, CudaPlansLaunchTheGpuGridEmulatedOnesTheExecutors) {
  namespace kn = kernels;
  const ConvProblem conv = must_make([] {
    ProblemDesc d;
    d.op = Op::kConv, d.n = 8, d.c = 64, d.k = 64, d.rank = 2;
    d.input[0] = d.input[1] = 56, d.kernel[0] = d.kernel[1] = 3, d.pad_lo[0] = d.pad_lo[1] = 1;
    d.pad_hi[0] = d.pad_hi[1] = 1;
    return d;
  }());
  ProblemDesc td = conv.resolved();
  td.op = Op::kConvTranspose, td.pad_mode = PadMode::kExplicit;
  const ConvProblem convt = must_make(td);
  ProblemDesc pd = conv.resolved();
  pd.op = Op::kMaxPool;
  const ConvProblem pool = must_make(pd);
  const auto check = [](const char* name, auto grid_for, unsigned at_least) {
    const unsigned gpu = grid_for(Device::kCuda), emu = grid_for(Device::kEmulated);
    EXPECT_GE(gpu, at_least) << name;
    EXPECT_LE(gpu, static_cast<unsigned>(kn::kMaxGridBlocksGpu)) << name;
    EXPECT_EQ(emu, static_cast<unsigned>(kn::kMaxGridBlocksEmulated)) << name;
  };
  check(
      "direct", [&](Device d) { return prepared_grid<kn::DirectParams>(kn::direct_prepare, conv, d); }, 4096);
  check(
      "tiled", [&](Device d) { return prepared_grid<kn::TiledParams>(kn::tiled_prepare, conv, d); }, 512);
  check(
      "igemm", [&](Device d) { return prepared_grid<kn::IgemmParams>(kn::igemm_prepare, conv, d); }, 128);
  check(
      "gather", [&](Device d) { return prepared_grid<kn::GatherParams>(kn::gather_prepare, convt, d); }, 4096);
  check(
      "scatter", [&](Device d) { return prepared_grid<kn::ScatterParams>(kn::scatter_prepare, convt, d); }, 4096);
  check(
      "pool", [&](Device d) { return prepared_grid<kn::PoolParams>(kn::pool_prepare, pool, d); }, 4096);
  ProblemDesc dd = conv.resolved();
  dd.groups = dd.c;
  const ConvProblem dw = must_make(dd);
  check(
      "depthwise", [&](Device d) { return prepared_grid<kn::DepthwiseParams>(kn::depthwise_prepare, dw, d); }, 1024);
}

TEST(EmulatedKernels, NullPointersAreInvalidArgument) {
  for (const Algorithm& row : algorithm_table()) {
    if (row.device != Device::kEmulated)
      continue;
    ProblemDesc d;
    d.op = (row.ops & op_bit(Op::kConv)) != 0            ? Op::kConv
           : (row.ops & op_bit(Op::kConvTranspose)) != 0 ? Op::kConvTranspose
                                                         : Op::kMaxPool;
    d.c = 2;
    d.k = 2;
    d.groups = std::string(row.name) == "depthwise" ? 2 : 1; // the row takes groups == C only
    d.input = {5, 5, 1};
    d.kernel = {2, 2, 1};
    const ConvProblem p = must_make(d);
    const Inputs in = integer_inputs(p, 3, false);
    std::vector<float> y(static_cast<size_t>(p.y_elements()), 42.0f);
    Result<Plan> plan = Plan::create(p, Device::kEmulated, row.name);
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    const Status s = plan->run(nullptr, in.w.empty() ? nullptr : in.w.data(), nullptr, y.data());
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << row.name << ": " << s.to_string();
    EXPECT_NE(s.message().find("x is null"), std::string::npos) << s.message();
    for (float v : y)
      ASSERT_EQ(v, 42.0f) << row.name << " wrote y on error";
  }
}

// A row asked for an op it does not implement says so (kNotSupported naming itself and the op), even for N = 0.
TEST(EmulatedKernels, WrongOpIsNotSupported) {
  for (const Algorithm& row : algorithm_table()) {
    if (row.device != Device::kEmulated)
      continue;
    for (const Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool}) {
      if ((row.ops & op_bit(op)) != 0)
        continue;
      for (const int64_t n : {int64_t{0}, int64_t{1}}) {
        ProblemDesc d;
        d.op = op;
        d.n = n;
        d.input = {4, 4, 1};
        d.kernel = {2, 2, 1};
        const ConvProblem p = must_make(d);
        const Status s = row.supports(p);
        EXPECT_EQ(s.code(), StatusCode::kNotSupported) << row.name << " on " << op_name(op) << ": " << s.to_string();
        EXPECT_NE(s.message().find(row.name), std::string::npos) << s.message();
        EXPECT_NE(s.message().find(op_name(op)), std::string::npos) << s.message();
        Result<Plan> plan = Plan::create(p, Device::kEmulated, row.name);
        EXPECT_EQ(plan.status().code(), StatusCode::kNotSupported) << row.name;
      }
    }
  }
}

// The offset math is 64-bit where it must be: a 1 x 1 x 65536 x 65536 input (2^32 elements, never
// allocated) cannot use 32-bit indices, and its last element's offset is x_elements - 1.
TEST(EmulatedKernels, OffsetsPast2To31Elements) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.input = {65536, 65536, 1};
  d.kernel = {3, 3, 1};
  d.pad_lo = {1, 1, 0};
  d.pad_hi = {1, 1, 0};
  const ConvProblem p = must_make(d);
  EXPECT_FALSE(kernels::index_fits_int32(p));
  const kernels::Geometry g = kernels::make_geometry(p);
  EXPECT_EQ(kernels::x_offset<int64_t>(g, 0, 0, 0, 65535, 65535), p.x_elements() - 1);
  EXPECT_EQ(kernels::y_offset<int64_t>(g, 0, 0, 0, 65535, 65535), p.y_elements() - 1);

  ProblemDesc small = d;
  small.input = {64, 64, 1};
  EXPECT_TRUE(kernels::index_fits_int32(must_make(small)));
  // A huge stride keeps the tensors tiny but o*s past 2^31: still 64-bit.
  ProblemDesc strided = small;
  strided.stride = {int64_t{1} << 31, 1, 1};
  EXPECT_FALSE(kernels::index_fits_int32(must_make(strided)));

  // Transposed: the gather's tap phases. s=4, d=6: taps repeat every 2 taps, input index drops by 3.
  ProblemDesc t;
  t.op = Op::kConvTranspose;
  t.input = {5, 5, 1};
  t.kernel = {3, 3, 1};
  t.stride = {4, 4, 1};
  t.dilation = {6, 6, 1};
  const Result<Prepared> prepared = kernels::gather_prepare(must_make(t), emulated_device_info());
  ASSERT_TRUE(prepared.is_ok());
  const kernels::GatherParams& gp =
      static_cast<const kernels::KernelPlan<kernels::GatherParams>*>(prepared->state.get())->params;
  EXPECT_EQ(gp.r_step[1], 2);
  EXPECT_EQ(gp.i_step[1], 3);
  EXPECT_EQ(gp.d_div_s[1], 1);
  EXPECT_EQ(gp.d_mod_s[1], 2);
}

} // namespace
} // namespace convarith::test
