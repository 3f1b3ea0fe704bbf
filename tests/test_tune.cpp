// tests/test_tune.cpp — algorithm "tune" and its plan cache (plan.hpp PlanOptions, host/tune.hpp,
// docs/DESIGN.md §10): tune on the CPU and on the emulated device picks a row that takes the problem and runs it
// to the fp64 reference's values; a cache hit (memory or file) times nothing (detail::tuning_runs()); the file
// round-trips; a corrupt, truncated, stale (other library version or driver) file and a cached row that does
// not exist or no longer takes the problem each give a warning and a correct, re-tuned plan; an unwritable path
// is a warning. (The caller's buffers cannot be touched: Plan::create takes no tensor; tuning runs on scratch the
// library allocates.) Concurrent tuning: tests/test_concurrency.cpp.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "row.hpp"
#include "support/support.hpp"
#include "support/temp_dir.hpp"
#include "tune.hpp"

#if defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace convarith {
namespace {

using test::exact_match;
using test::must_make;

ProblemDesc conv_desc(int64_t n, int64_t c, int64_t k, int64_t i, int64_t r, int64_t pad, int64_t groups = 1) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.n = n, d.c = c, d.k = k, d.groups = groups;
  d.rank = 2;
  d.input = {i, i + 1, 1};
  d.kernel = {r, r, 1};
  d.pad_lo = {pad, pad, 0};
  d.pad_hi = {pad, pad, 0};
  return d;
}

// A tiny conv: every emulated row runs it in milliseconds.
ConvProblem tiny_conv() {
  return must_make(conv_desc(1, 2, 3, 5, 3, 1));
}

ConvProblem tiny_transpose() {
  ProblemDesc d = conv_desc(1, 2, 3, 4, 3, 1);
  d.op = Op::kConvTranspose;
  d.stride = {2, 2, 1};
  return must_make(d);
}

ConvProblem tiny_pool() {
  ProblemDesc d = conv_desc(1, 3, 3, 6, 3, 1);
  d.op = Op::kMaxPool;
  d.stride = {2, 2, 1};
  return must_make(d);
}

PlanOptions tune(std::string file = std::string()) {
  PlanOptions o;
  o.algorithm = "tune";
  o.tune_cache_file = std::move(file);
  o.tune_warmup = 1;
  o.tune_reps = 3;
  return o;
}

uint64_t runs() {
  return detail::tuning_runs().load();
}
uint64_t plans() {
  return detail::planning_calls().load();
}

std::string all_warnings(const Plan& plan) {
  std::string s;
  for (const std::string& w : plan.warnings())
    s += w + "\n";
  return s;
}

bool has_warning(const Plan& plan, const std::string& needle) {
  return all_warnings(plan).find(needle) != std::string::npos;
}

// Runs a host plan (kCpu, kEmulated) on integer inputs and checks y against the fp64 reference exactly.
::testing::AssertionResult runs_to_reference(const Plan& plan, uint64_t seed) {
  const ConvProblem& p = plan.problem();
  const bool pool = is_pool(p.op());
  const test::Inputs in = test::integer_inputs(p, seed, !pool);
  std::vector<float> y(static_cast<size_t>(p.y_elements()));
  test::poison(y);
  std::vector<unsigned char> ws(plan.workspace_bytes() + 1);
  const Status st = plan.run(in.x.data(), pool ? nullptr : in.w.data(), pool ? nullptr : in.bias.data(), y.data(),
                             ws.data(), plan.workspace_bytes());
  if (!st.is_ok())
    return ::testing::AssertionFailure() << plan.algorithm() << ": " << st.to_string();
  return exact_match(p, y,
                     test::reference(p, in.x.data(), pool ? nullptr : in.w.data(), pool ? nullptr : in.bias.data()));
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

class Tune : public ::testing::Test {
protected:
  void SetUp() override { detail::clear_tune_cache(); }
  void TearDown() override { detail::clear_tune_cache(); }
};

// The plan's row is one of the device's rows that take the problem.
void expect_supporting_row(const Plan& plan, Device device) {
  const Algorithm* row = find_algorithm(plan.algorithm(), device);
  ASSERT_NE(row, nullptr) << plan.algorithm();
  EXPECT_TRUE(row->supports(plan.problem(), default_device_info(device)).is_ok());
}

TEST_F(Tune, OnTheCpuTimesTheSupportingRowsAndRunsTheWinnerToTheReference) {
  uint64_t seed = 11;
  for (const ConvProblem& p : {tiny_conv(), tiny_transpose(), tiny_pool()}) {
    const uint64_t before = runs();
    Result<Plan> plan = Plan::create(p, Device::kCpu, tune());
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    EXPECT_TRUE(plan->tuned());
    EXPECT_EQ(plan->requested_algorithm(), "tune");
    EXPECT_EQ(plan->tuning().source, "measured");
    EXPECT_TRUE(plan->warnings().empty()) << all_warnings(*plan);
    expect_supporting_row(*plan, Device::kCpu);
    // auto's row is the one Plan::create(..., "auto") takes.
    Result<Plan> a = Plan::create(p, Device::kCpu, "auto");
    ASSERT_TRUE(a.is_ok());
    EXPECT_EQ(plan->auto_algorithm(), a->algorithm());
    EXPECT_EQ(a->auto_algorithm(), a->algorithm());
    EXPECT_FALSE(a->tuned());
    ASSERT_FALSE(plan->tuning().timings.empty());
    for (const TuneTiming& t : plan->tuning().timings) {
      EXPECT_TRUE(t.error.empty()) << t.algorithm << ": " << t.error;
      EXPECT_EQ(t.reps, 3);
      EXPECT_GT(t.median_us, 0.0) << t.algorithm;
    }
    EXPECT_EQ(runs() - before, 4u * plan->tuning().timings.size()); // 1 warm-up + 3 timed per candidate
    EXPECT_TRUE(runs_to_reference(*plan, seed++));
  }
}

TEST_F(Tune, OnTheEmulatedDeviceTakesTheFastestMeasuredRow) {
  uint64_t seed = 23;
  for (const ConvProblem& p : {tiny_conv(), tiny_transpose(), must_make(conv_desc(1, 4, 4, 5, 3, 1, 4))}) {
    Result<Plan> plan = Plan::create(p, Device::kEmulated, tune());
    ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
    EXPECT_TRUE(plan->tuned());
    expect_supporting_row(*plan, Device::kEmulated);
    const TuneReport& r = plan->tuning();
    ASSERT_FALSE(r.timings.empty());
    double fastest = 1e300;
    std::string fastest_row;
    for (const TuneTiming& t : r.timings) {
      ASSERT_TRUE(t.error.empty()) << t.algorithm << ": " << t.error;
      const Algorithm* row = find_algorithm(t.algorithm, Device::kEmulated);
      ASSERT_NE(row, nullptr);
      // As auto: no non-deterministic row (scatter) is a candidate while a deterministic one takes the problem.
      EXPECT_TRUE(row->deterministic) << t.algorithm;
      if (t.median_us < fastest) {
        fastest = t.median_us;
        fastest_row = t.algorithm;
      }
    }
    EXPECT_EQ(plan->algorithm(), fastest_row);
    EXPECT_EQ(r.median_us, fastest);
    if (p.op() == Op::kConv) {
      EXPECT_GE(r.timings.size(), 2u) << "a conv has several emulated rows (igemm, tiled, direct)";
    }
    EXPECT_TRUE(runs_to_reference(*plan, seed++));
  }
}

TEST_F(Tune, ACacheHitTimesNothingAndPreparesOneRow) {
  const ConvProblem p = tiny_conv();
  Result<Plan> first = Plan::create(p, Device::kEmulated, tune());
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_EQ(first->tuning().source, "measured");
  const uint64_t r0 = runs(), p0 = plans();
  Result<Plan> second = Plan::create(p, Device::kEmulated, tune());
  ASSERT_TRUE(second.is_ok()) << second.status().to_string();
  EXPECT_EQ(runs(), r0) << "a cache hit must not time anything";
  EXPECT_EQ(plans() - p0, 1u) << "a cache hit prepares the cached row only";
  EXPECT_TRUE(second->tuned());
  EXPECT_EQ(second->tuning().source, "memory");
  EXPECT_TRUE(second->tuning().timings.empty());
  EXPECT_EQ(std::string(second->algorithm()), first->algorithm());
  EXPECT_EQ(second->auto_algorithm(), first->auto_algorithm());
  EXPECT_EQ(second->tuning().median_us, first->tuning().median_us);
  EXPECT_TRUE(runs_to_reference(*second, 5));
  // Another problem, device or epilogue is another key: it is timed.
  ProblemDesc d = conv_desc(1, 2, 3, 5, 3, 1);
  d.epilogue.activation = Activation::kRelu;
  const uint64_t r1 = runs();
  Result<Plan> relu = Plan::create(must_make(d), Device::kEmulated, tune());
  ASSERT_TRUE(relu.is_ok());
  EXPECT_EQ(relu->tuning().source, "measured");
  EXPECT_GT(runs(), r1);
  const uint64_t r2 = runs();
  Result<Plan> cpu = Plan::create(p, Device::kCpu, tune());
  ASSERT_TRUE(cpu.is_ok());
  EXPECT_EQ(cpu->tuning().source, "measured");
  EXPECT_GT(runs(), r2);
}

TEST_F(Tune, TheKeyHoldsTheWholeProblemAndTheDevice) {
  const DeviceInfo cpu = cpu_device_info();
  const detail::TuneKey base = detail::tune_key(tiny_conv(), cpu);
  EXPECT_EQ(base.library, version_string());
  EXPECT_EQ(base.driver, "-");
  EXPECT_NE(base.device.find("cpu|"), std::string::npos);
  std::vector<ProblemDesc> variants(9, conv_desc(1, 2, 3, 5, 3, 1));
  variants[0].n = 2;
  variants[1].dtype = DataType::kF16;
  variants[2].layout = Layout::kNHWC;
  variants[3].w_layout = Layout::kNHWC;
  variants[4].epilogue.alpha = 2.0f;
  variants[5].epilogue.beta = 1.0f;
  variants[6].dilation = {2, 1, 1};
  variants[7].pad_hi = {2, 1, 0};
  variants[8].math = MathMode::kTensorOp;
  for (size_t i = 0; i < variants.size(); ++i)
    EXPECT_NE(detail::tune_key(must_make(variants[i]), cpu).problem, base.problem) << "variant " << i;
  EXPECT_EQ(detail::tune_key(tiny_conv(), cpu).problem, base.problem);
  EXPECT_NE(detail::tune_key(tiny_conv(), emulated_device_info()).device, base.device);
  for (char ch : base.device + base.problem + base.driver + base.library) {
    EXPECT_NE(ch, '\t');
    EXPECT_NE(ch, '\n');
  }
}

TEST_F(Tune, TheFileRoundTrips) {
  test::TempDir dir("convarith_tune_");
  const std::string file = dir.file("tune.cache");
  const ConvProblem p = tiny_conv();
  Result<Plan> first = Plan::create(p, Device::kEmulated, tune(file));
  ASSERT_TRUE(first.is_ok()) << first.status().to_string();
  EXPECT_TRUE(first->warnings().empty()) << all_warnings(*first);
  const std::string text = slurp(file);
  EXPECT_EQ(text.rfind("convarith-tune-cache 1\nentry\t", 0), 0u) << text;
  EXPECT_NE(text.find("\nend 1 "), std::string::npos) << text;
  EXPECT_NE(text.find(std::string("\t") + first->algorithm() + "\t" + first->auto_algorithm() + "\t"),
            std::string::npos)
      << text;
  // A new process (an empty memory cache) reads the winner from the file and times nothing.
  detail::clear_tune_cache();
  const uint64_t r0 = runs();
  Result<Plan> again = Plan::create(p, Device::kEmulated, tune(file));
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ(runs(), r0);
  EXPECT_EQ(again->tuning().source, "file");
  EXPECT_TRUE(again->warnings().empty()) << all_warnings(*again);
  EXPECT_EQ(std::string(again->algorithm()), first->algorithm());
  EXPECT_EQ(again->auto_algorithm(), first->auto_algorithm());
  EXPECT_TRUE(runs_to_reference(*again, 9));
  // A second problem is added beside the first; both are then found.
  Result<Plan> pool = Plan::create(tiny_pool(), Device::kEmulated, tune(file));
  ASSERT_TRUE(pool.is_ok());
  EXPECT_NE(slurp(file).find("\nend 2 "), std::string::npos) << slurp(file);
  detail::clear_tune_cache();
  const uint64_t r1 = runs();
  for (const ConvProblem& q : {p, tiny_pool()}) {
    Result<Plan> hit = Plan::create(q, Device::kEmulated, tune(file));
    ASSERT_TRUE(hit.is_ok());
    EXPECT_EQ(hit->tuning().source, "file");
  }
  EXPECT_EQ(runs(), r1);
  // No temporary file is left next to it.
  int files = 0;
  if (DIR* d = opendir(dir.path().c_str())) {
    while (dirent* e = readdir(d))
      files += e->d_name[0] != '.' || std::strncmp(e->d_name, ".convarith-tune-", 16) == 0;
    closedir(d);
  }
  EXPECT_EQ(files, 1);
}

// A file that is not trusted: the warning, a freshly measured plan that runs correctly, and the file rewritten
// so that the next process finds the entry.
void expect_ignored(const std::string& file, const std::string& needle, Device device = Device::kCpu,
                    const ConvProblem& p = tiny_conv()) {
  detail::clear_tune_cache();
  const uint64_t r0 = runs();
  Result<Plan> plan = Plan::create(p, device, tune(file));
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_TRUE(has_warning(*plan, needle)) << "want '" << needle << "' in:\n" << all_warnings(*plan);
  EXPECT_EQ(plan->tuning().source, "measured");
  EXPECT_GT(runs(), r0);
  expect_supporting_row(*plan, device);
  EXPECT_TRUE(runs_to_reference(*plan, 3));
  detail::clear_tune_cache();
  Result<Plan> next = Plan::create(p, device, tune(file));
  ASSERT_TRUE(next.is_ok());
  EXPECT_EQ(next->tuning().source, "file") << all_warnings(*next);
  EXPECT_TRUE(next->warnings().empty()) << all_warnings(*next);
}

TEST_F(Tune, ACorruptFileIsAWarningAndIsReTuned) {
  test::TempDir dir("convarith_tune_");
  const std::string file = dir.file("c");
  write(file, "this is not a tune cache\n\x01\x02\n");
  expect_ignored(file, "corrupt or truncated");
  write(file, "");
  expect_ignored(file, "corrupt or truncated (empty)");
  // A well-formed frame whose entry was edited: the checksum no longer matches.
  ASSERT_TRUE(Plan::create(tiny_conv(), Device::kCpu, tune(file)).is_ok());
  std::string text = slurp(file);
  const size_t at = text.find("\tcpu_gemm\t");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 10, "\tcpu_pool\t");
  write(file, text);
  expect_ignored(file, "checksum");
  // Fields missing.
  write(file, "convarith-tune-cache 1\nentry\tonly\tthree\nend 1 0000000000000000\n");
  expect_ignored(file, "8 tab-separated fields");
}

TEST_F(Tune, ATruncatedFileIsAWarningAndIsReTuned) {
  test::TempDir dir("convarith_tune_");
  const std::string file = dir.file("t");
  ASSERT_TRUE(Plan::create(tiny_conv(), Device::kCpu, tune(file)).is_ok());
  const std::string whole = slurp(file);
  ASSERT_GT(whole.size(), 40u);
  for (size_t keep : {whole.size() - 1, whole.size() - 12, whole.size() / 2, static_cast<size_t>(10)}) {
    write(file, whole.substr(0, keep));
    expect_ignored(file, "corrupt or truncated");
  }
}

TEST_F(Tune, AnEntryOfAnotherLibraryVersionOrDriverIsStale) {
  test::TempDir dir("convarith_tune_");
  const std::string file = dir.file("s");
  const ConvProblem p = tiny_conv();
  for (int which = 0; which < 2; ++which) {
    std::remove(file.c_str());
    detail::TuneKey key = detail::tune_key(p, cpu_device_info());
    (which == 0 ? key.library : key.driver) = which == 0 ? "0.0.9" : "driver 1 runtime 1";
    std::vector<std::string> w;
    detail::TuneFile f = detail::tune_file_load(file, w);
    detail::tune_file_store(f, key, detail::TuneEntry{"cpu_gemm", "cpu_gemm", 1.0}, w);
    ASSERT_TRUE(w.empty()) << w[0];
    expect_ignored(file, which == 0 ? "stale (written by convarith 0.0.9" : "stale (written under driver 1");
    // The stale entry was replaced, not kept beside the fresh one.
    EXPECT_NE(slurp(file).find("\nend 1 "), std::string::npos);
  }
}

TEST_F(Tune, ACachedRowThatDoesNotExistOrNoLongerTakesTheProblemIsReTuned) {
  test::TempDir dir("convarith_tune_");
  const std::string file = dir.file("r");
  const ConvProblem p = tiny_conv();
  const auto plant = [&](Device device, const std::string& winner, const std::string& auto_row) {
    std::remove(file.c_str());
    std::vector<std::string> w;
    detail::TuneFile f = detail::tune_file_load(file, w);
    detail::tune_file_store(f, detail::tune_key(p, default_device_info(device)),
                            detail::TuneEntry{winner, auto_row, 1.0}, w);
    ASSERT_TRUE(w.empty()) << w[0];
  };
  plant(Device::kCpu, "cpu_gemm_v2", "cpu_gemm");
  expect_ignored(file, "row 'cpu_gemm_v2' does not exist on cpu");
  plant(Device::kCpu, "cpu_pool", "cpu_gemm");
  expect_ignored(file, "row 'cpu_pool' no longer takes the problem");
  plant(Device::kEmulated, "depthwise", "igemm"); // groups 1: depthwise does not take it
  expect_ignored(file, "row 'depthwise' no longer takes the problem", Device::kEmulated);
  plant(Device::kCpu, "cpu_gemm", "gone");
  expect_ignored(file, "auto's row 'gone' does not exist");
  // The in-memory cache is not trusted either.
  detail::clear_tune_cache();
  {
    const std::unique_lock<std::mutex> lock = detail::tuning_lock();
    detail::memory_store(detail::tune_key(p, cpu_device_info()), detail::TuneEntry{"nope", "cpu_gemm", 1.0});
  }
  Result<Plan> plan = Plan::create(p, Device::kCpu, tune());
  ASSERT_TRUE(plan.is_ok());
  EXPECT_TRUE(has_warning(*plan, "tune cache (memory): row 'nope' does not exist")) << all_warnings(*plan);
  EXPECT_EQ(plan->tuning().source, "measured");
  EXPECT_TRUE(runs_to_reference(*plan, 4));
}

TEST_F(Tune, AnUnwritableOrUnreadablePathIsAWarningNotAnError) {
  test::TempDir dir("convarith_tune_");
  const ConvProblem p = tiny_conv();
  const std::string missing_dir = dir.file("no/such/dir/cache");
  Result<Plan> plan = Plan::create(p, Device::kCpu, tune(missing_dir));
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_TRUE(has_warning(*plan, "not written")) << all_warnings(*plan);
  EXPECT_TRUE(has_warning(*plan, "kept in this process's memory only")) << all_warnings(*plan);
  EXPECT_TRUE(plan->tuned());
  EXPECT_TRUE(runs_to_reference(*plan, 6));
  // A directory at the path: not read, not replaced.
  detail::clear_tune_cache();
  Result<Plan> d = Plan::create(p, Device::kCpu, tune(dir.path()));
  ASSERT_TRUE(d.is_ok());
  EXPECT_TRUE(has_warning(*d, "is not a regular file")) << all_warnings(*d);
  struct stat st {};
  ASSERT_EQ(::stat(dir.path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(d->tuned());
  // A file too large to be a cache: not read, and not replaced (its content is not ours to lose).
  const std::string big = dir.file("big");
  write(big, std::string((16 << 20) + 1, 'x'));
  detail::clear_tune_cache();
  Result<Plan> b = Plan::create(p, Device::kCpu, tune(big));
  ASSERT_TRUE(b.is_ok());
  EXPECT_TRUE(has_warning(*b, "a cache file may have; ignored (and not written)")) << all_warnings(*b);
  ASSERT_EQ(::stat(big.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, (16 << 20) + 1);
  EXPECT_TRUE(runs_to_reference(*b, 8));
}

TEST_F(Tune, BadOptionsAndDevices) {
  PlanOptions o = tune();
  o.tune_reps = 0;
  Result<Plan> bad = Plan::create(tiny_conv(), Device::kCpu, o);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("tune_reps 0"), std::string::npos) << bad.status().message();
  o = tune();
  o.tune_warmup = -1;
  bad = Plan::create(tiny_conv(), Device::kCpu, o);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("tune_warmup -1"), std::string::npos) << bad.status().message();
  // The unknown-name message lists tune beside auto.
  bad = Plan::create(tiny_conv(), Device::kCpu, "fastest");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("auto, tune, cpu_gemm"), std::string::npos) << bad.status().message();
  // An explicit row and auto are not tuned; an empty plan says nothing.
  Result<Plan> named = Plan::create(tiny_conv(), Device::kCpu, "cpu_gemm");
  ASSERT_TRUE(named.is_ok());
  EXPECT_FALSE(named->tuned());
  EXPECT_EQ(named->requested_algorithm(), "cpu_gemm");
  EXPECT_EQ(named->auto_algorithm(), "");
  const Plan empty;
  EXPECT_FALSE(empty.tuned());
  EXPECT_EQ(empty.requested_algorithm(), "");
  EXPECT_TRUE(empty.warnings().empty());
  if (cuda_device_count() == 0) {
    Result<Plan> cuda = Plan::create(tiny_conv(), Device::kCuda, tune());
    ASSERT_FALSE(cuda.is_ok());
    EXPECT_EQ(cuda.status().code(), StatusCode::kDeviceError);
  }
}

#if defined(CONVARITH_HAVE_CUDA)
TEST_F(Tune, OnTheGpuTimesWithEventsAndRunsTheWinnerToTheReference) {
  CONVARITH_SKIP_WITHOUT_GPU();
  ProblemDesc d = conv_desc(2, 8, 16, 14, 3, 1);
  const ConvProblem p = must_make(d);
  Result<Plan> plan = Plan::create(p, Device::kCuda, tune());
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();
  EXPECT_TRUE(plan->tuned());
  EXPECT_TRUE(plan->warnings().empty()) << all_warnings(*plan);
  expect_supporting_row(*plan, Device::kCuda);
  const detail::TuneKey key = detail::tune_key(p, plan->device_info());
  EXPECT_EQ(key.driver.rfind("driver ", 0), 0u) << key.driver;
  for (const TuneTiming& t : plan->tuning().timings)
    EXPECT_GT(t.median_us, 0.0) << t.algorithm;
  const test::Inputs in = test::integer_inputs(p, 31);
  const auto upload = [](const std::vector<float>& h) {
    void* ptr = nullptr;
    EXPECT_EQ(cudaMalloc(&ptr, h.size() * sizeof(float)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr, h.data(), h.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
    return static_cast<float*>(ptr);
  };
  float* x = upload(in.x);
  float* w = upload(in.w);
  float* b = upload(in.bias);
  std::vector<float> y(static_cast<size_t>(p.y_elements()));
  test::poison(y);
  float* dy = upload(y);
  void* ws = nullptr;
  if (plan->workspace_bytes() > 0) {
    ASSERT_EQ(cudaMalloc(&ws, plan->workspace_bytes()), cudaSuccess);
  }
  ASSERT_TRUE(plan->run(x, w, b, dy, ws, plan->workspace_bytes()).is_ok());
  ASSERT_EQ(cudaMemcpy(y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_TRUE(exact_match(p, y, test::reference(p, in.x.data(), in.w.data(), in.bias.data())));
  for (void* ptr : {static_cast<void*>(x), static_cast<void*>(w), static_cast<void*>(b), static_cast<void*>(dy), ws})
    if (ptr != nullptr)
      cudaFree(ptr);
}
#endif

} // namespace
} // namespace convarith
