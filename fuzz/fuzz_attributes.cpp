// fuzz/fuzz_attributes.cpp — libFuzzer target: random argument vectors -> the CLI's layer parser
// (cli/attributes.hpp) -> ConvProblem::make; aborts on any broken invariant (cli_harness.hpp).
#include <cstdio>
#include <cstdlib>

#include "cli_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string err = convarith::fuzz::check_attribute_bytes(data, size);
  if (!err.empty()) {
    std::fprintf(stderr, "fuzz_attributes: invariant broken: %s\n", err.c_str());
    std::abort();
  }
  return 0;
}
