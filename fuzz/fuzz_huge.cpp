// fuzz/fuzz_huge.cpp — libFuzzer target: small tensors, huge attributes; every CPU row, every kernel
// row under the executor and the fp64 reference must agree and finish in bounded time (see
// huge_harness.hpp). A hang is also caught by libFuzzer's -timeout.
#include <cstdio>
#include <cstdlib>

#include "huge_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string err = convarith::fuzz::check_huge_bytes(data, size);
  if (!err.empty()) {
    std::fprintf(stderr, "fuzz_huge: finding: %s\n", err.c_str());
    std::abort();
  }
  return 0;
}
