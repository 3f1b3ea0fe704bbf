// tests/test_gpu_honesty.cpp — the CPU-side checks that keep a GPU run from misleading (issue 20):
//   * the "at most twice cuDNN's error" rule and its stated slack (tests/support);
//   * CONVARITH_REQUIRE_GPU: the switch itself, and the GPU test binaries of this build run as
//     child processes, which must pass (skipping) without it and fail with it on a machine
//     without a usable device;
//   * the cuDNN status classification (host/cudnn/cudnn_dims.hpp), when cuDNN's headers were found:
//     only the descriptor step's problem-shaped refusals may mean "cuDNN cannot express this".
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <sys/wait.h>
#include <vector>

#include "convarith/convarith.hpp"
#include "support/support.hpp"

#if defined(CONVARITH_HAVE_CUDNN_HEADERS)
#include "cudnn/cudnn_dims.hpp"
#endif

namespace convarith::test {
namespace {

// ---- the twice rule ------------------------------------------------------------------------------

const double kHalfUlpAtOne = std::ldexp(1.0, -24); // half a float32 ulp at 1.0

TEST(TwicePeerRule, HalfUlp) {
  EXPECT_EQ(half_ulp(1.0), kHalfUlpAtOne);
  EXPECT_EQ(half_ulp(-1.0), kHalfUlpAtOne);
  EXPECT_EQ(half_ulp(3.0), 2 * kHalfUlpAtOne); // [2, 4): ulp 2^-22
  EXPECT_GT(half_ulp(0.0), 0.0);
  EXPECT_EQ(half_ulp(std::numeric_limits<double>::infinity()), std::numeric_limits<double>::infinity());
}

// The low-tap case the slack is for: cuDNN exact, ours four half-ulps off. "Twice zero" would fail it.
TEST(TwicePeerRule, FourHalfUlpsPassWhenThePeerIsExact) {
  const std::vector<double> want{1.0, 1.0, -1.0}, mag{1.0, 1.0, 1.0};
  const float four_half_ulps = 1.0f + 2 * std::ldexp(1.0f, -23); // two ulps above 1
  const std::vector<float> ours{1.0f, four_half_ulps, -1.0f};
  ASSERT_EQ(std::fabs(static_cast<double>(four_half_ulps) - 1.0), kPeerSlackHalfUlps * kHalfUlpAtOne);
  EXPECT_TRUE(at_most_twice_peer_error(ours, want, mag, 0.0));
  // One ulp more is past the slack.
  const std::vector<float> worse{1.0f, 1.0f + 3 * std::ldexp(1.0f, -23), -1.0f};
  EXPECT_FALSE(at_most_twice_peer_error(worse, want, mag, 0.0));
}

// Twice the peer's relative error, scaled by each element's magnitude, plus the slack; one ulp past fails.
TEST(TwicePeerRule, TwiceThePeerPlusSlackIsTheBound) {
  const double peer = 4 * kHalfUlpAtOne; // the peer's max error relative to magnitude
  // Magnitude 1: bound = 2 * 4 + 4 = 12 half-ulps = 6 ulps.
  const std::vector<double> want{1.0}, mag{1.0};
  EXPECT_TRUE(at_most_twice_peer_error({1.0f + 6 * std::ldexp(1.0f, -23)}, want, mag, peer));
  const ::testing::AssertionResult past = at_most_twice_peer_error({1.0f + 7 * std::ldexp(1.0f, -23)}, want, mag, peer);
  EXPECT_FALSE(past);
  EXPECT_NE(std::string(past.message()).find("y[0]"), std::string::npos) << past.message();
  // The magnitude, not the value, scales the bound: want 1 with magnitude 4 (cancellation) allows 4x more.
  EXPECT_TRUE(at_most_twice_peer_error({1.0f + 24 * std::ldexp(1.0f, -23)}, want, {4.0}, peer));
  EXPECT_FALSE(at_most_twice_peer_error({1.0f + 26 * std::ldexp(1.0f, -23)}, want, {4.0}, peer));
}

TEST(TwicePeerRule, NaNsAndSizeMismatchesFail) {
  const std::vector<double> want{1.0}, mag{1.0};
  EXPECT_FALSE(at_most_twice_peer_error({std::numeric_limits<float>::quiet_NaN()}, want, mag, 1.0));
  EXPECT_FALSE(at_most_twice_peer_error({1.0f}, want, mag, std::numeric_limits<double>::quiet_NaN()));
  EXPECT_FALSE(at_most_twice_peer_error({1.0f, 1.0f}, want, mag, 1.0));
}

// ---- CONVARITH_REQUIRE_GPU -------------------------------------------------------------------------

// Sets or clears an environment variable for one scope.
class ScopedEnv {
public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) {
      had_ = true;
      old_ = old;
    }
    if (value != nullptr)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_)
      setenv(name_, old_.c_str(), 1);
    else
      unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

TEST(RequireGpu, TheSwitch) {
  {
    ScopedEnv e("CONVARITH_REQUIRE_GPU", nullptr);
    EXPECT_FALSE(gpu_required());
  }
  for (const char* off : {"", "0"}) {
    ScopedEnv e("CONVARITH_REQUIRE_GPU", off);
    EXPECT_FALSE(gpu_required()) << "'" << off << "'";
  }
  for (const char* on : {"1", "yes"}) {
    ScopedEnv e("CONVARITH_REQUIRE_GPU", on);
    EXPECT_TRUE(gpu_required()) << "'" << on << "'";
  }
}

void skipping_gpu_test() {
  CONVARITH_GPU_SKIP(std::string("no device in this test"));
}

TEST(RequireGpu, ASkipBecomesAFailure) {
  ScopedEnv e("CONVARITH_REQUIRE_GPU", "1");
  EXPECT_FATAL_FAILURE(skipping_gpu_test(), "CONVARITH_REQUIRE_GPU is set, so this GPU test may not skip");
  EXPECT_FATAL_FAILURE(skipping_gpu_test(), "no device in this test");
}

struct ChildRun {
  int exit_code = -1;
  std::string output;
};

ChildRun run_child(const std::string& command) {
  ChildRun r;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr)
    return r;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;)
    r.output.append(buf, n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return r;
}

#if defined(CONVARITH_TEST_BINARY_DIR)
// Each GPU test binary of this build, on this machine without a usable device: every GPU test skips
// (exit 0) without the switch and fails (exit != 0, naming the switch) with it.
TEST(RequireGpu, GpuTestBinariesFailWithTheSwitchWithoutADevice) {
  if (cuda_device_count() > 0)
    GTEST_SKIP() << "a CUDA device is present: the GPU tests run instead of skipping";
  const std::string dir = CONVARITH_TEST_BINARY_DIR;
  // Filters keep the children short; each selects tests that need a GPU in both build flavours.
  const std::vector<std::pair<std::string, std::string>> binaries = {
      {"test_kernels_gpu", "*GpuKernel*direct_paper*:GpuKernels.*"},
      {"test_gpu_vs_cudnn", "*GpuVsCudnn*"},
      {"test_plan", "PlanCuda.*:PlanCreate.CudaPlansWhenADeviceIsPresent"}};
  for (const auto& [name, filter] : binaries) {
    SCOPED_TRACE(name);
    const std::string cmd = "'" + dir + "/" + name + "' --gtest_filter='" + filter + "'";
    const ChildRun off = run_child("CONVARITH_REQUIRE_GPU=0 " + cmd);
    EXPECT_EQ(off.exit_code, 0) << off.output;
    EXPECT_NE(off.output.find("[  SKIPPED ]"), std::string::npos) << off.output;
    const ChildRun on = run_child("CONVARITH_REQUIRE_GPU=1 " + cmd);
    EXPECT_NE(on.exit_code, 0) << on.output;
    EXPECT_NE(on.output.find("CONVARITH_REQUIRE_GPU is set"), std::string::npos) << on.output;
    EXPECT_EQ(on.output.find("[  SKIPPED ]"), std::string::npos) << on.output;
  }
}
#endif

// ---- the cuDNN status classification ---------------------------------------------------------------

#if defined(CONVARITH_HAVE_CUDNN_HEADERS)
using cudnn::cudnn_status_code;
using cudnn::CudnnStep;

TEST(CudnnStatus, OnlyTheDescriptorStepMayRefuseAProblem) {
  for (const cudnnStatus_t s :
       {CUDNN_STATUS_BAD_PARAM, CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND, CUDNN_STATUS_NOT_SUPPORTED,
        CUDNN_STATUS_NOT_SUPPORTED_SHAPE, CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE, CUDNN_STATUS_NOT_SUPPORTED_LAYOUT,
        CUDNN_STATUS_NOT_SUPPORTED_PADDING, CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE}) {
    SCOPED_TRACE(cudnnGetErrorString(s));
    EXPECT_EQ(cudnn_status_code(s, CudnnStep::kDescribe), StatusCode::kNotSupported);
    EXPECT_NE(cudnn_status_code(s, CudnnStep::kExecute), StatusCode::kNotSupported);
  }
  EXPECT_EQ(cudnn_status_code(CUDNN_STATUS_SUCCESS, CudnnStep::kDescribe), StatusCode::kOk);
  EXPECT_EQ(cudnn_status_code(CUDNN_STATUS_SUCCESS, CudnnStep::kExecute), StatusCode::kOk);
}

// A box whose cuDNN cannot load or run must fail, never read as "cuDNN cannot express this".
TEST(CudnnStatus, EnvironmentFailuresAreDeviceErrorsAtEveryStep) {
  for (const cudnnStatus_t s :
       {CUDNN_STATUS_NOT_INITIALIZED, CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH, CUDNN_STATUS_LICENSE_ERROR,
        CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED, CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDA_DRIVER,
        CUDNN_STATUS_NOT_SUPPORTED_INCOMPATIBLE_CUDART, CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH,
        CUDNN_STATUS_NOT_SUPPORTED_RUNTIME_PREREQUISITE_MISSING, CUDNN_STATUS_NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE,
        CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT, CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM,
        CUDNN_STATUS_INTERNAL_ERROR, CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED,
        CUDNN_STATUS_EXECUTION_FAILED, CUDNN_STATUS_EXECUTION_FAILED_CUDART}) {
    SCOPED_TRACE(cudnnGetErrorString(s));
    for (const CudnnStep step : {CudnnStep::kDescribe, CudnnStep::kExecute})
      EXPECT_EQ(cudnn_status_code(s, step), StatusCode::kDeviceError);
  }
}

// A bad parameter after the descriptor step is the adapter's bug; a null pointer is one at any step.
TEST(CudnnStatus, BadParametersAfterDescribingAreInternal) {
  EXPECT_EQ(cudnn_status_code(CUDNN_STATUS_BAD_PARAM, CudnnStep::kExecute), StatusCode::kInternal);
  EXPECT_EQ(cudnn_status_code(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, CudnnStep::kDescribe), StatusCode::kInternal);
  EXPECT_EQ(cudnn_status_code(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER, CudnnStep::kExecute), StatusCode::kInternal);
}

TEST(CudnnStatus, FromCudnnNamesTheCallAndTheStatus) {
  const Status refused = cudnn::from_cudnn(CUDNN_STATUS_NOT_SUPPORTED_SHAPE, "cudnnSetThing", CudnnStep::kDescribe);
  EXPECT_EQ(refused.code(), StatusCode::kNotSupported);
  EXPECT_NE(refused.message().find("cannot express"), std::string::npos) << refused.message();
  EXPECT_NE(refused.message().find("cudnnSetThing"), std::string::npos) << refused.message();
  const Status failed = cudnn::from_cudnn(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH, "cudnnCreate");
  EXPECT_EQ(failed.code(), StatusCode::kDeviceError);
  EXPECT_NE(failed.message().find("cudnnCreate"), std::string::npos) << failed.message();
  EXPECT_NE(failed.message().find(cudnnGetErrorString(CUDNN_STATUS_NOT_SUPPORTED_ARCH_MISMATCH)), std::string::npos)
      << failed.message();
  EXPECT_NE(failed.message().find("3007"), std::string::npos) << failed.message();
  EXPECT_TRUE(cudnn::from_cudnn(CUDNN_STATUS_SUCCESS, "x").is_ok());
}
#endif

} // namespace
} // namespace convarith::test
