// tests/test_cli_check_nan.cpp — `run --check`'s comparison (cli/check.cpp) compares NaN positions:
// NaN where the reference is NaN (max_pool's NaN wins) passes; NaN elsewhere, or a number where the
// reference is NaN, fails; equal infinities pass.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "check.hpp"
#include "support/support.hpp"

namespace convarith::cli {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

ConvProblem max_pool_4_k2() {
  ProblemDesc d;
  d.op = Op::kMaxPool, d.n = 1, d.c = 1, d.k = 1, d.rank = 1;
  d.input[0] = 4, d.kernel[0] = 2;
  return test::must_make(d);
}

TEST(CliCheckNaN, NaNWhereTheReferenceIsNaNPasses) {
  const ConvProblem p = max_pool_4_k2();
  const std::vector<float> x = {kNaN, 1, 2, 3};
  const Reference ref = reference(p, x.data(), nullptr, nullptr);
  ASSERT_TRUE(std::isnan(ref.y[0])); // NaN wins in the reference
  ErrorReport e = compare(p, {kNaN, 2, 3}, ref);
  EXPECT_TRUE(e.pass);
  EXPECT_EQ(e.nan_count, 0);
  // A number where the reference is NaN (the old CPU answer [1, 2, 3]) fails.
  e = compare(p, {1, 2, 3}, ref);
  EXPECT_FALSE(e.pass);
  EXPECT_EQ(e.nan_count, 1);
  // NaN where the reference is a number fails.
  e = compare(p, {kNaN, kNaN, 3}, ref);
  EXPECT_FALSE(e.pass);
  EXPECT_EQ(e.nan_count, 1);
}

TEST(CliCheckNaN, EqualInfinitiesPass) {
  const ConvProblem p = max_pool_4_k2();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {inf, 1, -inf, -inf};
  const Reference ref = reference(p, x.data(), nullptr, nullptr);
  EXPECT_TRUE(compare(p, {inf, 1, -inf}, ref).pass);
  EXPECT_FALSE(compare(p, {inf, 1, inf}, ref).pass);
  EXPECT_FALSE(compare(p, {inf, 1, 0}, ref).pass);
}

} // namespace
} // namespace convarith::cli
