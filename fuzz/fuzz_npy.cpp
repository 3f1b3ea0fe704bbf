// fuzz/fuzz_npy.cpp — libFuzzer target: random bytes -> the CLI's in-memory .npy parser
// (cli/npy.hpp parse_npy) and the encode/parse round trip; aborts on any broken invariant.
#include <cstdio>
#include <cstdlib>

#include "cli_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string err = convarith::fuzz::check_npy_bytes(data, size);
  if (!err.empty()) {
    std::fprintf(stderr, "fuzz_npy: invariant broken: %s\n", err.c_str());
    std::abort();
  }
  return 0;
}
