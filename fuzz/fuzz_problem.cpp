// fuzz/fuzz_problem.cpp — libFuzzer target: bytes -> ProblemDesc -> ConvProblem::make and the
// per-axis arithmetic; aborts on any broken invariant (see problem_harness.hpp).
#include <cstdio>
#include <cstdlib>

#include "problem_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string err = convarith::fuzz::check_problem_bytes(data, size);
  if (!err.empty()) {
    std::fprintf(stderr, "fuzz_problem: invariant broken: %s\n", err.c_str());
    std::abort();
  }
  return 0;
}
