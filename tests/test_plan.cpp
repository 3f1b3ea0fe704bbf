// tests/test_plan.cpp — the Plan API end to end on the CPU, and every error path of Plan::create
// and Plan::run. Errors are checked by code and by message (the field, the numbers, the rule),
// and after every failed run the caller's output buffer must still hold its sentinel.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "support/support.hpp"

#if defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace convarith::test {
namespace {

using Vec = std::vector<double>;

constexpr float kSentinel = 1234.5f;

::testing::AssertionResult contains(const std::string& haystack, const std::string& needle) {
  if (haystack.find(needle) != std::string::npos)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << haystack << "\" does not contain \"" << needle << "\"";
}

::testing::AssertionResult untouched(const std::vector<float>& y) {
  for (size_t e = 0; e < y.size(); ++e)
    if (std::memcmp(&y[e], &kSentinel, sizeof(float)) != 0)
      return ::testing::AssertionFailure() << "y[" << e << "] = " << y[e] << " was written on an error path";
  return ::testing::AssertionSuccess();
}

ConvProblem conv_3x3() {
  ProblemDesc d;
  d.n = 2;
  d.c = 3;
  d.k = 5;
  d.input = {9, 7, 1};
  d.kernel = {3, 3, 1};
  d.pad_lo = {1, 1, 0};
  d.pad_hi = {1, 1, 0};
  return must_make(d);
}

ConvProblem max_pool_2x2() {
  ProblemDesc d;
  d.op = Op::kMaxPool;
  d.n = 2;
  d.c = 3;
  d.input = {6, 8, 1};
  d.kernel = {2, 2, 1};
  d.stride = {2, 2, 1};
  return must_make(d);
}

// The first CPU row of the table that runs `op` (the one "auto" must pick when it supports the problem).
const Algorithm* first_cpu_row(const ConvProblem& p) {
  for (const Algorithm& a : algorithm_table())
    if (a.device == Device::kCpu && (a.ops & op_bit(p.op())) && a.run != nullptr && a.supports(p).is_ok())
      return &a;
  return nullptr;
}

Plan must_plan(const ConvProblem& p, Device device = Device::kCpu, const std::string& algorithm = "auto") {
  Result<Plan> r = Plan::create(p, device, algorithm);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? r.value() : Plan();
}

// Runs a CPU plan on host buffers; the workspace is allocated to exactly workspace_bytes().
Status run_cpu(const Plan& plan, const Inputs& in, std::vector<float>& y) {
  std::vector<unsigned char> ws(plan.workspace_bytes());
  return plan.run(in.x.data(), in.w.empty() ? nullptr : in.w.data(), in.bias.empty() ? nullptr : in.bias.data(),
                  y.data(), ws.empty() ? nullptr : ws.data(), ws.size());
}

// ---- Plan::create --------------------------------------------------------------------------------------

TEST(PlanCreate, AutoPicksTheFirstSupportingCpuRow) {
  for (const ConvProblem& p : {conv_3x3(), max_pool_2x2()}) {
    SCOPED_TRACE(p.name());
    const Algorithm* want = first_cpu_row(p);
    ASSERT_NE(want, nullptr) << "no CPU row runs " << op_name(p.op());
    const Plan plan = must_plan(p);
    EXPECT_STREQ(plan.algorithm(), want->name);
    EXPECT_EQ(plan.device(), Device::kCpu);
    EXPECT_EQ(plan.deterministic(), want->deterministic);
    EXPECT_EQ(plan.workspace_bytes(), row_workspace(*want, p));
    EXPECT_EQ(plan.problem().name(), p.name());
    EXPECT_EQ(plan.problem().y_elements(), p.y_elements());
  }
}

TEST(PlanCreate, EveryOpHasACpuPlan) {
  for (const auto& list : {smoke_problems(), edge_problems()})
    for (const NamedProblem& np : list) {
      Result<Plan> r = Plan::create(np.problem, Device::kCpu);
      EXPECT_TRUE(r.is_ok()) << np.name << ": " << r.status().to_string();
    }
}

TEST(PlanCreate, ExplicitNamesReportTheirRowAndWorkspace) {
  const ConvProblem p = conv_3x3();
  int rows = 0;
  for (const Algorithm& a : algorithm_table()) {
    if (a.device != Device::kCpu || !(a.ops & op_bit(p.op())) || !(a.dtypes & dtype_bit(p.dtype(TensorId::kX))))
      continue;
    SCOPED_TRACE(a.name);
    const Plan plan = must_plan(p, Device::kCpu, a.name);
    EXPECT_STREQ(plan.algorithm(), a.name);
    EXPECT_EQ(plan.workspace_bytes(), row_workspace(a, p));
    ++rows;
  }
  EXPECT_GE(rows, 1);
}

TEST(PlanCreate, UnknownAlgorithmNamesTheCandidates) {
  const Result<Plan> r = Plan::create(conv_3x3(), Device::kCpu, "no_such_algorithm");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(r.status().message(), "'no_such_algorithm'"));
  EXPECT_TRUE(contains(r.status().message(), "auto"));
  for (const Algorithm& a : algorithm_table())
    if (a.device == Device::kCpu) {
      EXPECT_TRUE(contains(r.status().message(), a.name));
    }
  // Names are exact: no case folding, no empty name.
  EXPECT_FALSE(Plan::create(conv_3x3(), Device::kCpu, "AUTO").is_ok());
  EXPECT_FALSE(Plan::create(conv_3x3(), Device::kCpu, "").is_ok());
}

TEST(PlanCreate, AlgorithmForAnotherOpIsNotSupported) {
  // A pooling row asked to run a convolution, and a convolution row asked to pool.
  const ConvProblem conv = conv_3x3();
  const ConvProblem pool = max_pool_2x2();
  int checked = 0;
  for (const Algorithm& a : algorithm_table()) {
    if (a.device != Device::kCpu)
      continue;
    for (const ConvProblem* p : {&conv, &pool}) {
      if (a.ops & op_bit(p->op()))
        continue;
      SCOPED_TRACE(std::string(a.name) + " on " + p->name());
      const Result<Plan> r = Plan::create(*p, Device::kCpu, a.name);
      ASSERT_FALSE(r.is_ok());
      EXPECT_EQ(r.status().code(), StatusCode::kNotSupported);
      EXPECT_TRUE(contains(r.status().message(), a.name));
      EXPECT_TRUE(contains(r.status().message(), op_name(p->op())));
      ++checked;
    }
  }
  EXPECT_GE(checked, 2);
}

TEST(PlanCreate, RowsThatDeclineAProblemSayWhy) {
  // For every row this machine can plan on: a problem of its op that supports() declines must give
  // supports()'s code from Plan::create, with the row's name, the problem and supports()'s reason.
  std::vector<NamedProblem> cases = paper_problems();
  for (const auto& list : {smoke_problems(), edge_problems(), random_problems(77, 200)})
    cases.insert(cases.end(), list.begin(), list.end());
  // One that `tiled` (on the emulated device, present in every build) must decline: a dilated 3x3 whose input
  // tile exceeds 48 KiB of shared memory.
  ProblemDesc big;
  big.op = Op::kConv;
  big.c = 2;
  big.k = 3;
  big.input = {150, 150, 1};
  big.kernel = {3, 3, 1};
  big.dilation = {60, 60, 1};
  cases.push_back({"tiled_oversized_tile", must_make(big)});
  int declined = 0;
  for (const Algorithm& a : algorithm_table()) {
    if (a.run == nullptr || (a.device == Device::kCuda && cuda_device_count() == 0))
      continue;
    for (const NamedProblem& np : cases) {
      if (!(a.ops & op_bit(np.problem.op())))
        continue;
      const Status why = a.supports(np.problem);
      const Result<Plan> r = Plan::create(np.problem, a.device, a.name);
      SCOPED_TRACE(std::string(a.name) + " on " + np.name);
      if (why.is_ok()) {
        EXPECT_TRUE(r.is_ok()) << r.status().to_string();
        continue;
      }
      EXPECT_EQ(why.code(), StatusCode::kNotSupported) << why.to_string();
      EXPECT_FALSE(why.message().empty());
      ASSERT_FALSE(r.is_ok());
      EXPECT_EQ(r.status().code(), why.code());
      EXPECT_TRUE(contains(r.status().message(), a.name));
      EXPECT_TRUE(contains(r.status().message(), np.problem.name()));
      EXPECT_TRUE(contains(r.status().message(), why.message()));
      ++declined;
    }
  }
  RecordProperty("declined", declined);
  EXPECT_GT(declined, 0) << "no row declined anything: the checks above never ran";
}

TEST(PlanCreate, CudaOnlyNameOnTheCpu) {
  // A CUDA kernel row named on kCpu: the message says where the name runs. (Plan::create answers
  // kInvalidArgument: the name is not a CPU algorithm.)
  int checked = 0;
  for (const Algorithm& a : algorithm_table()) {
    if (a.device != Device::kCuda || find_algorithm(a.name, Device::kCpu) != nullptr)
      continue;
    const ConvProblem p = (a.ops & op_bit(Op::kConv)) ? conv_3x3() : max_pool_2x2();
    SCOPED_TRACE(a.name);
    const Result<Plan> r = Plan::create(p, Device::kCpu, a.name);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_TRUE(contains(r.status().message(), std::string("'") + a.name + "'"));
    EXPECT_TRUE(contains(r.status().message(), "runs on cuda and emulated, not cpu")) << r.status().message();
    ++checked;
  }
  if (checked == 0)
    GTEST_SKIP() << "the table has no CUDA-only rows";
}

TEST(PlanCreate, CudaWithoutDeviceIsADeviceError) {
  if (cuda_device_count() > 0)
    GTEST_SKIP() << "a CUDA device is present";
  const std::string reason = cuda_unavailable_reason();
  EXPECT_FALSE(reason.empty());
  for (const char* name : {"auto", "direct", "no_such_algorithm"}) {
    SCOPED_TRACE(name);
    const Result<Plan> r = Plan::create(conv_3x3(), Device::kCuda, name);
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDeviceError);
    EXPECT_TRUE(contains(r.status().message(), "cuda"));
    EXPECT_TRUE(contains(r.status().message(), reason));
  }
}

TEST(PlanCreate, CudaPlansWhenADeviceIsPresent) {
  CONVARITH_SKIP_WITHOUT_GPU();
  EXPECT_TRUE(cuda_unavailable_reason().empty());
  const Plan plan = must_plan(conv_3x3(), Device::kCuda);
  EXPECT_EQ(plan.device(), Device::kCuda);
  EXPECT_NE(find_algorithm(plan.algorithm(), Device::kCuda), nullptr);
}

TEST(PlanCreate, DevicesAndTable) {
  EXPECT_STREQ(device_name(Device::kCpu), "cpu");
  EXPECT_STREQ(device_name(Device::kCuda), "cuda");
  ASSERT_TRUE(parse_device("cpu").is_ok());
  EXPECT_EQ(*parse_device("CPU"), Device::kCpu);
  EXPECT_EQ(*parse_device("cuda"), Device::kCuda);
  const Result<Device> bad = parse_device("tpu");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(bad.status().message(), "tpu"));

  // CPU rows first, names unique per device, every op covered on the CPU, every row describable.
  bool seen_cuda = false;
  unsigned cpu_ops = 0;
  for (const Algorithm& a : algorithm_table()) {
    SCOPED_TRACE(a.name);
    if (a.device == Device::kCuda)
      seen_cuda = true;
    if (a.device == Device::kCpu) {
      EXPECT_FALSE(seen_cuda) << "CPU rows must come first";
      cpu_ops |= a.ops;
      EXPECT_NE(a.run, nullptr);
    }
    EXPECT_EQ(find_algorithm(a.name, a.device), &a);
    EXPECT_NE(a.check, nullptr);
    EXPECT_NE(a.prepare, nullptr);
    EXPECT_GT(std::strlen(a.summary), 0u);
    EXPECT_NE(std::string(a.name), "auto");
  }
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool})
    EXPECT_TRUE(cpu_ops & op_bit(op)) << op_name(op);
  EXPECT_EQ(find_algorithm("no_such_algorithm", Device::kCpu), nullptr);
}

// ---- Plan::run: errors ------------------------------------------------------------------------------------

TEST(PlanRun, NullPointersAreRejectedAndYIsUntouched) {
  const ConvProblem p = conv_3x3();
  const Plan plan = must_plan(p);
  const Inputs in = integer_inputs(p, 1);
  std::vector<float> y(static_cast<size_t>(p.y_elements()), kSentinel);
  std::vector<unsigned char> ws(plan.workspace_bytes());
  void* wsp = ws.empty() ? nullptr : ws.data();

  Status s = plan.run(nullptr, in.w.data(), in.bias.data(), y.data(), wsp, ws.size());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "x is null"));
  EXPECT_TRUE(contains(s.message(), std::to_string(p.x_elements())));
  EXPECT_TRUE(untouched(y));

  s = plan.run(in.x.data(), nullptr, in.bias.data(), y.data(), wsp, ws.size());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "w is null"));
  EXPECT_TRUE(contains(s.message(), std::to_string(p.w_elements())));
  EXPECT_TRUE(untouched(y));

  s = plan.run(in.x.data(), in.w.data(), in.bias.data(), nullptr, wsp, ws.size());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "y is null"));
  EXPECT_TRUE(contains(s.message(), std::to_string(p.y_elements())));

  // bias is optional for convolution: null bias runs and equals the bias-free reference.
  s = plan.run(in.x.data(), in.w.data(), nullptr, y.data(), wsp, ws.size());
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_TRUE(exact_match(p, y, reference(p, in.x.data(), in.w.data(), nullptr)));
}

TEST(PlanRun, PoolingIgnoresWAndRejectsBias) {
  const ConvProblem p = max_pool_2x2();
  const Plan plan = must_plan(p);
  const Inputs in = integer_inputs(p, 2);
  ASSERT_TRUE(in.w.empty());
  const Vec want = reference(p, in.x.data(), nullptr, nullptr);
  std::vector<unsigned char> ws(plan.workspace_bytes());
  void* wsp = ws.empty() ? nullptr : ws.data();
  const std::vector<float> junk(16, 7.0f);

  std::vector<float> y(static_cast<size_t>(p.y_elements()), kSentinel);
  Status s = plan.run(in.x.data(), junk.data(), junk.data(), y.data(), wsp, ws.size());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "bias"));
  EXPECT_TRUE(contains(s.message(), "max_pool"));
  EXPECT_TRUE(untouched(y));

  s = plan.run(nullptr, nullptr, nullptr, y.data(), wsp, ws.size());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "x is null"));
  EXPECT_TRUE(untouched(y));

  // A non-null w is allowed for pooling and never read: the result is the pooling of x.
  poison(y);
  s = plan.run(in.x.data(), junk.data(), nullptr, y.data(), wsp, ws.size());
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_TRUE(exact_match(p, y, want));
  poison(y);
  s = plan.run(in.x.data(), nullptr, nullptr, y.data(), wsp, ws.size());
  ASSERT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_TRUE(exact_match(p, y, want));
}

TEST(PlanRun, WorkspaceTooSmallNamesBothNumbers) {
  // Find plans that need a workspace (the CPU GEMM rows do for padded 3x3 problems).
  int checked = 0;
  for (const auto& list : {smoke_problems(), edge_problems()}) {
    for (const NamedProblem& np : list) {
      const ConvProblem& p = np.problem;
      if (p.y_elements() == 0)
        continue;
      const Plan plan = must_plan(p);
      const size_t need = plan.workspace_bytes();
      if (need == 0)
        continue;
      SCOPED_TRACE(np.name + " on " + plan.algorithm());
      const Inputs in = integer_inputs(p, 3);
      const float* w = in.w.empty() ? nullptr : in.w.data();
      const float* b = in.bias.empty() ? nullptr : in.bias.data();
      std::vector<float> y(static_cast<size_t>(p.y_elements()), kSentinel);
      std::vector<unsigned char> ws(need);

      Status s = plan.run(in.x.data(), w, b, y.data(), ws.data(), need - 1);
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
      EXPECT_TRUE(contains(s.message(), "workspace"));
      EXPECT_TRUE(contains(s.message(), std::to_string(need - 1) + " bytes"));
      EXPECT_TRUE(contains(s.message(), std::to_string(need) + " bytes"));
      EXPECT_TRUE(untouched(y));

      // A null workspace counts as none at all, whatever size the caller claims.
      s = plan.run(in.x.data(), w, b, y.data(), nullptr, need);
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
      EXPECT_TRUE(contains(s.message(), "workspace of 0 bytes"));
      EXPECT_TRUE(contains(s.message(), std::to_string(need) + " bytes"));
      EXPECT_TRUE(untouched(y));

      // Exactly workspace_bytes() is enough, and more is fine.
      poison(y);
      s = plan.run(in.x.data(), w, b, y.data(), ws.data(), need);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      std::vector<unsigned char> big(need + 4096);
      std::vector<float> y2(y.size());
      poison(y2);
      s = plan.run(in.x.data(), w, b, y2.data(), big.data(), big.size());
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      EXPECT_EQ(0, std::memcmp(y.data(), y2.data(), y.size() * sizeof(float)));
      ++checked;
    }
  }
  if (checked == 0)
    GTEST_SKIP() << "no CPU plan in the smoke and edge lists needs a workspace";
}

TEST(PlanRun, EmptyPlanIsAnError) {
  const Plan plan;
  std::vector<float> x(1, 1.0f), y(1, kSentinel);
  const Status s = plan.run(x.data(), x.data(), nullptr, y.data());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "Plan::create"));
  EXPECT_TRUE(untouched(y));
  // Its accessors answer without dereferencing the missing algorithm.
  EXPECT_EQ(plan.device(), Device::kCpu);
  EXPECT_STREQ(plan.algorithm(), "");
  EXPECT_FALSE(plan.deterministic());
  EXPECT_EQ(plan.workspace_bytes(), 0u);
}

TEST(PlanRun, BatchZeroRunsWithoutTouchingAnything) {
  for (const NamedProblem& np : edge_problems()) {
    const ConvProblem& p = np.problem;
    if (p.n() != 0)
      continue;
    SCOPED_TRACE(np.name);
    ASSERT_EQ(p.x_elements(), 0);
    ASSERT_EQ(p.y_elements(), 0);
    const Plan plan = must_plan(p);
    std::vector<float> y(8, kSentinel);
    const std::vector<float> w(static_cast<size_t>(std::max<int64_t>(p.w_elements(), 1)), 1.0f);
    Status s = plan.run(nullptr, nullptr, nullptr, nullptr);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    s = plan.run(w.data(), is_pool(p.op()) ? nullptr : w.data(), nullptr, y.data());
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    EXPECT_TRUE(untouched(y));
  }
}

// ---- Plan::run: results -----------------------------------------------------------------------------------

// Every CPU row that runs the problem, plus "auto".
std::vector<std::string> cpu_names(const ConvProblem& p) {
  std::vector<std::string> names{"auto"};
  for (const Algorithm& a : algorithm_table())
    if (a.device == Device::kCpu && (a.ops & op_bit(p.op())) && a.supports(p).is_ok())
      names.emplace_back(a.name);
  return names;
}

void check_lists_against_reference(bool integers) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<NamedProblem> cases = paper_problems();
  for (const auto& list : {smoke_problems(), edge_problems(), random_problems(seed, 40)})
    cases.insert(cases.end(), list.begin(), list.end());
  for (const NamedProblem& np : cases) {
    const ConvProblem& p = np.problem;
    const Inputs in = integers ? integer_inputs(p, seed) : random_inputs(p, seed);
    const float* w = in.w.empty() ? nullptr : in.w.data();
    const float* b = in.bias.empty() ? nullptr : in.bias.data();
    const Vec want = reference(p, in.x.data(), w, b);
    const Vec mag = reference_magnitude(p, in.x.data(), w, b);
    for (const std::string& name : cpu_names(p)) {
      SCOPED_TRACE(np.name + " with " + name);
      const Plan plan = must_plan(p, Device::kCpu, name);
      std::vector<float> y(static_cast<size_t>(p.y_elements()));
      poison(y);
      const Status s = run_cpu(plan, in, y);
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      // Integer data sums exactly in any order; an average divides, so it is rounded.
      if (integers && p.op() != Op::kAvgPool) {
        EXPECT_TRUE(exact_match(p, y, want));
      } else {
        EXPECT_TRUE(close_match(p, y, want, mag));
      }
    }
  }
}

TEST(PlanRun, IntegerInputsMatchTheReferenceExactly) {
  check_lists_against_reference(true);
}

TEST(PlanRun, RandomInputsMatchTheReferenceWithinTheBound) {
  check_lists_against_reference(false);
}

TEST(PlanRun, DeterministicRowsAreBitwiseRepeatable) {
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  int checked = 0;
  for (const auto& list : {smoke_problems(), edge_problems()}) {
    for (const NamedProblem& np : list) {
      const ConvProblem& p = np.problem;
      if (p.y_elements() == 0)
        continue;
      const Inputs in = random_inputs(p, seed);
      for (const std::string& name : cpu_names(p)) {
        const Plan plan = must_plan(p, Device::kCpu, name);
        if (!plan.deterministic())
          continue;
        SCOPED_TRACE(np.name + " with " + name);
        std::vector<float> first(static_cast<size_t>(p.y_elements())), again(first.size());
        poison(first);
        ASSERT_TRUE(run_cpu(plan, in, first).is_ok());
        for (int rep = 0; rep < 3; ++rep) {
          poison(again);
          ASSERT_TRUE(run_cpu(plan, in, again).is_ok());
          ASSERT_EQ(0, std::memcmp(first.data(), again.data(), first.size() * sizeof(float))) << "rep " << rep;
        }
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 10);
}

TEST(PlanRun, ConcurrentRunsWithSeparateOutputs) {
  // One plan, several threads at once, each with its own y and workspace (plan.hpp allows it).
  const ConvProblem p = conv_3x3();
  const Plan plan = must_plan(p);
  const Inputs in = integer_inputs(p, 5);
  const Vec want = reference(p, in.x.data(), in.w.data(), in.bias.data());
  constexpr int kThreads = 4;
  std::vector<std::vector<float>> ys(kThreads, std::vector<float>(static_cast<size_t>(p.y_elements())));
  std::vector<Status> status(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    poison(ys[static_cast<size_t>(t)]);
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 5 && status[static_cast<size_t>(t)].is_ok(); ++rep)
        status[static_cast<size_t>(t)] = run_cpu(plan, in, ys[static_cast<size_t>(t)]);
    });
  }
  for (std::thread& th : threads)
    th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(status[static_cast<size_t>(t)].is_ok()) << status[static_cast<size_t>(t)].to_string();
    EXPECT_TRUE(exact_match(p, ys[static_cast<size_t>(t)], want)) << "thread " << t;
  }
}

TEST(PlanRun, PlanIsACopyableValue) {
  // A plan keeps its own copy of the problem: it outlives the problem it was made from.
  Plan plan;
  Inputs in;
  Vec want;
  {
    const ConvProblem p = conv_3x3();
    plan = must_plan(p);
    in = integer_inputs(p, 9);
    want = reference(p, in.x.data(), in.w.data(), in.bias.data());
  }
  const Plan copy = plan; // NOLINT(performance-unnecessary-copy-initialization)
  std::vector<float> y(want.size());
  poison(y);
  ASSERT_TRUE(run_cpu(copy, in, y).is_ok());
  EXPECT_TRUE(exact_match(copy.problem(), y, want));
}

// ---- the CUDA path (needs a device; skipped without one) ----------------------------------------------------

#if defined(CONVARITH_HAVE_CUDA)

// Skips without a device; fails instead under CONVARITH_REQUIRE_GPU (tests/support).
#define SKIP_WITHOUT_GPU() CONVARITH_SKIP_WITHOUT_GPU()

// Device memory owned by a test; copies in and out synchronously.
class DeviceBuffer {
public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes_ > 0 && cudaMalloc(&ptr_, bytes_) != cudaSuccess)
      ptr_ = nullptr;
  }
  explicit DeviceBuffer(const std::vector<float>& host) : DeviceBuffer(host.size() * sizeof(float)) {
    if (ptr_ != nullptr)
      cudaMemcpy(ptr_, host.data(), bytes_, cudaMemcpyHostToDevice);
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr)
      cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* f() const { return static_cast<float*>(ptr_); }
  void* get() const { return ptr_; }
  std::vector<float> to_host() const {
    std::vector<float> out(bytes_ / sizeof(float));
    if (ptr_ != nullptr)
      cudaMemcpy(out.data(), ptr_, out.size() * sizeof(float), cudaMemcpyDeviceToHost);
    return out;
  }

private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

std::vector<std::string> cuda_names(const ConvProblem& p) {
  std::vector<std::string> names{"auto"};
  for (const Algorithm& a : algorithm_table())
    if (a.device == Device::kCuda && (a.ops & op_bit(p.op())) && a.run != nullptr && a.supports(p).is_ok())
      names.emplace_back(a.name);
  return names;
}

// Runs a CUDA plan on device copies of `in`, on `stream`, and returns y (after synchronizing).
Status run_cuda(const Plan& plan, const Inputs& in, std::vector<float>& y, cudaStream_t stream = nullptr) {
  DeviceBuffer dx(in.x), dw(in.w), db(in.bias), dy(y), ws(plan.workspace_bytes());
  const Status s = plan.run(dx.f(), dw.f(), db.f(), dy.f(), ws.get(), plan.workspace_bytes(), stream);
  if (!s.is_ok())
    return s;
  if (cudaStreamSynchronize(stream) != cudaSuccess)
    return device_error("cudaStreamSynchronize failed");
  y = dy.to_host();
  return s;
}

TEST(PlanCuda, PointersInTheWrongMemorySpaceAreRejected) {
  SKIP_WITHOUT_GPU();
  const ConvProblem p = conv_3x3();
  const Inputs in = integer_inputs(p, 11);
  DeviceBuffer dx(in.x), dw(in.w), db(in.bias);
  std::vector<float> y(static_cast<size_t>(p.y_elements()), kSentinel);
  DeviceBuffer dy(y);

  const Plan gpu = must_plan(p, Device::kCuda);
  DeviceBuffer ws(gpu.workspace_bytes());
  Status s = gpu.run(in.x.data(), dw.f(), db.f(), dy.f(), ws.get(), gpu.workspace_bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "x is a host pointer"));
  s = gpu.run(dx.f(), dw.f(), db.f(), y.data(), ws.get(), gpu.workspace_bytes());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "y is a host pointer"));
  EXPECT_TRUE(untouched(y));
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_TRUE(untouched(dy.to_host()));

  const Plan cpu = must_plan(p, Device::kCpu);
  std::vector<unsigned char> host_ws(cpu.workspace_bytes());
  s = cpu.run(dx.f(), in.w.data(), in.bias.data(), y.data(), host_ws.data(), host_ws.size());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(contains(s.message(), "x is a CUDA device pointer"));
  EXPECT_TRUE(untouched(y));
}

TEST(PlanCuda, EveryRowMatchesTheReference) {
  SKIP_WITHOUT_GPU();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::vector<NamedProblem> cases = paper_problems();
  for (const auto& list : {smoke_problems(), edge_problems(), random_problems(seed, 40)})
    cases.insert(cases.end(), list.begin(), list.end());
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  for (const NamedProblem& np : cases) {
    const ConvProblem& p = np.problem;
    for (bool integers : {true, false}) {
      const Inputs in = integers ? integer_inputs(p, seed) : random_inputs(p, seed);
      const float* w = in.w.empty() ? nullptr : in.w.data();
      const float* b = in.bias.empty() ? nullptr : in.bias.data();
      const Vec want = reference(p, in.x.data(), w, b);
      const Vec mag = reference_magnitude(p, in.x.data(), w, b);
      for (const std::string& name : cuda_names(p)) {
        SCOPED_TRACE(np.name + " with " + name + (integers ? " (integers)" : " (floats)"));
        const Plan plan = must_plan(p, Device::kCuda, name);
        std::vector<float> y(static_cast<size_t>(p.y_elements()));
        poison(y);
        const Status s = run_cuda(plan, in, y, stream);
        ASSERT_TRUE(s.is_ok()) << s.to_string();
        if (integers && p.op() != Op::kAvgPool) {
          EXPECT_TRUE(exact_match(p, y, want));
        } else {
          EXPECT_TRUE(close_match(p, y, want, mag));
        }
      }
    }
  }
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
}

TEST(PlanCuda, DeterministicRowsAreBitwiseRepeatable) {
  SKIP_WITHOUT_GPU();
  const uint64_t seed = fresh_seed();
  SCOPED_TRACE("seed " + std::to_string(seed));
  for (const NamedProblem& np : smoke_problems()) {
    const Inputs in = random_inputs(np.problem, seed);
    for (const std::string& name : cuda_names(np.problem)) {
      const Plan plan = must_plan(np.problem, Device::kCuda, name);
      if (!plan.deterministic())
        continue;
      SCOPED_TRACE(np.name + " with " + name);
      std::vector<float> first(static_cast<size_t>(np.problem.y_elements())), again(first.size());
      ASSERT_TRUE(run_cuda(plan, in, first).is_ok());
      ASSERT_TRUE(run_cuda(plan, in, again).is_ok());
      EXPECT_EQ(0, std::memcmp(first.data(), again.data(), first.size() * sizeof(float)));
    }
  }
}

TEST(PlanCuda, BatchZeroAndWorkspaceErrors) {
  SKIP_WITHOUT_GPU();
  int short_workspace_cases = 0; // scatter needs one (its f32 accumulation buffer): this half must run
  for (const auto& list : {smoke_problems(), edge_problems()}) {
    for (const NamedProblem& np : list) {
      const ConvProblem& p = np.problem;
      for (const std::string& name : cuda_names(p)) {
        SCOPED_TRACE(np.name + " with " + name);
        const Plan plan = must_plan(p, Device::kCuda, name);
        if (p.y_elements() == 0) {
          const Status s = plan.run(nullptr, nullptr, nullptr, nullptr);
          EXPECT_TRUE(s.is_ok()) << s.to_string();
          continue;
        }
        const size_t need = plan.workspace_bytes();
        if (need == 0)
          continue;
        const Inputs in = integer_inputs(p, 4);
        DeviceBuffer dx(in.x), dw(in.w), db(in.bias), ws(need);
        const std::vector<float> sentinel(static_cast<size_t>(p.y_elements()), kSentinel);
        DeviceBuffer dy(sentinel);
        const Status s = plan.run(dx.f(), dw.f(), db.f(), dy.f(), ws.get(), need - 1);
        EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
        EXPECT_TRUE(contains(s.message(), std::to_string(need) + " bytes"));
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        EXPECT_TRUE(untouched(dy.to_host()));
        ++short_workspace_cases;
      }
    }
  }
  EXPECT_GT(short_workspace_cases, 0) << "no CUDA row needed a workspace: the short-workspace checks never ran";
}

#endif // CONVARITH_HAVE_CUDA

} // namespace
} // namespace convarith::test
