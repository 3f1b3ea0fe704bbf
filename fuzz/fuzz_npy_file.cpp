// fuzz/fuzz_npy_file.cpp — libFuzzer target: the CLI's .npy file reader (cli/npy.hpp read_npy) on
// what a user can point --x at: regular files (checked against the in-memory parser on the same
// bytes), files followed by a huge hole (declared vs. actual size, the memory limit), and devices,
// FIFOs, directories and symlinks to devices. Aborts on any broken invariant (cli_harness.hpp).
#include <cstdio>
#include <cstdlib>

#include "cli_harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string err = convarith::fuzz::check_npy_file_bytes(data, size);
  if (!err.empty()) {
    std::fprintf(stderr, "fuzz_npy_file: invariant broken: %s\n", err.c_str());
    std::abort();
  }
  return 0;
}
