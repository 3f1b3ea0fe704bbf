// tests/test_cli_reference.cpp — what `convarith run --check` compares with (cli/check.*): its
// Reference carries the project's fp64 oracle (reference/, also the tests' oracle through
// tests/support) with the values and magnitudes in their places, bias and weights passed through, on
// the edge, paper and random problem lists; and the pass/fail rule of compare().
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "check.hpp"
#include "support/support.hpp"

namespace convarith::cli {
namespace {

void expect_same_as_support(const test::NamedProblem& np, uint64_t seed) {
  SCOPED_TRACE(np.name + " seed " + std::to_string(seed));
  const ConvProblem& p = np.problem;
  const test::Inputs in = test::integer_inputs(p, seed, /*with_bias=*/!is_pool(p.op()));
  const float* w = in.w.empty() ? nullptr : in.w.data();
  const float* b = in.bias.empty() ? nullptr : in.bias.data();
  const Reference mine = reference(p, in.x.data(), w, b);
  const std::vector<double> theirs = test::reference(p, in.x.data(), w, b);
  ASSERT_EQ(mine.y.size(), theirs.size());
  for (size_t i = 0; i < theirs.size(); ++i) {
    // Integer inputs: sums are exact in fp64; averages divide once by the same count.
    ASSERT_NEAR(mine.y[i], theirs[i], 1e-12 * std::max(1.0, std::fabs(theirs[i]))) << "element " << i;
  }
  const std::vector<double> mag = test::reference_magnitude(p, in.x.data(), w, b);
  for (size_t i = 0; i < mag.size(); ++i)
    ASSERT_NEAR(mine.magnitude[i], mag[i], 1e-9 * mag[i]) << "element " << i;
}

TEST(CliReference, MatchesTestOracleOnEdgeProblems) {
  const std::vector<test::NamedProblem> edge = test::edge_problems();
  ASSERT_FALSE(edge.empty());
  for (const test::NamedProblem& np : edge)
    expect_same_as_support(np, 7);
  for (const test::NamedProblem& np : test::paper_problems())
    expect_same_as_support(np, 11);
}

TEST(CliReference, MatchesTestOracleOnRandomProblems) {
  const uint64_t seed = test::fresh_seed();
  for (const test::NamedProblem& np : test::random_problems(seed, 40))
    expect_same_as_support(np, seed);
}

ConvProblem small_conv() {
  ProblemDesc d;
  d.op = Op::kConv;
  d.c = 2;
  d.k = 3;
  d.input = {5, 6, 1};
  d.kernel = {3, 3, 1};
  d.pad_lo = {1, 1, 0};
  d.pad_hi = {1, 1, 0};
  return test::must_make(d);
}

TEST(CliReference, CompareRule) {
  const ConvProblem p = small_conv();
  const test::Inputs in = test::random_inputs(p, 3);
  const Reference ref = reference(p, in.x.data(), in.w.data(), in.bias.data());
  std::vector<float> y(ref.y.begin(), ref.y.end());
  ErrorReport e = compare(p, y, ref);
  EXPECT_TRUE(e.pass);
  EXPECT_LE(e.max_rel, std::numeric_limits<float>::epsilon());
  // Tolerance 2 eps (taps + 2) with taps = C/g * prod(k) = 18.
  EXPECT_DOUBLE_EQ(e.tolerance, 2.0 * std::numeric_limits<float>::epsilon() * 20.0);
  // One element off by 1e-3 of its magnitude fails and is found.
  y[7] = static_cast<float>(ref.y[7] + 1e-3 * ref.magnitude[7]);
  e = compare(p, y, ref);
  EXPECT_FALSE(e.pass);
  EXPECT_EQ(e.worst_index, 7);
  EXPECT_NEAR(e.max_rel, 1e-3, 1e-5);
  // An unwritten (NaN) element fails.
  y.assign(ref.y.begin(), ref.y.end());
  y[2] = std::numeric_limits<float>::quiet_NaN();
  e = compare(p, y, ref);
  EXPECT_FALSE(e.pass);
  EXPECT_EQ(e.nan_count, 1);
  // A short output fails.
  y.assign(ref.y.begin(), ref.y.end() - 1);
  EXPECT_FALSE(compare(p, y, ref).pass);
}

} // namespace
} // namespace convarith::cli
