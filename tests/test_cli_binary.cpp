// tests/test_cli_binary.cpp — the built `convarith` executable: main()'s dispatch, what it prints
// and its exit status (the subcommands themselves are tested in-process in test_cli_commands).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {

#ifdef CONVARITH_CLI_BINARY

struct Outcome {
  int code;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs the binary with `args` (already shell-quoted where needed) and collects its output.
Outcome convarith(const std::string& args) {
  const std::string base = ::testing::TempDir() + "convarith_binary_" + std::to_string(::getpid());
  const std::string cmd =
      std::string("'") + CONVARITH_CLI_BINARY + "' " + args + " >" + base + ".out 2>" + base + ".err";
  const int status = std::system(cmd.c_str());
  Outcome o{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(base + ".out"), slurp(base + ".err")};
  std::remove((base + ".out").c_str());
  std::remove((base + ".err").c_str());
  return o;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(CliBinary, UsageVersionAndHelp) {
  Outcome o = convarith("");
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "usage: convarith COMMAND")) << o.err;
  o = convarith("--version");
  EXPECT_EQ(o.code, 0);
  EXPECT_EQ(o.out.rfind("convarith ", 0), 0u) << o.out;
  for (const char* help : {"help", "--help", "-h"}) {
    o = convarith(help);
    EXPECT_EQ(o.code, 0) << help;
    for (const char* cmd : {"shape", "run", "bench", "draw"})
      EXPECT_TRUE(contains(o.out, cmd)) << help << " " << cmd;
  }
  o = convarith("help shape");
  EXPECT_EQ(o.code, 0);
  EXPECT_TRUE(contains(o.out, "usage: convarith shape")) << o.out;
  EXPECT_TRUE(contains(o.out, "--count-include-pad")) << o.out;
  o = convarith("run --help");
  EXPECT_EQ(o.code, 0);
  EXPECT_TRUE(contains(o.out, "usage: convarith run")) << o.out;
  o = convarith("help frobnicate");
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "unknown command 'frobnicate'")) << o.err;
  o = convarith("frobnicate");
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "unknown command 'frobnicate'")) << o.err;
}

TEST(CliBinary, ShapeThroughMain) {
  Outcome o = convarith("shape conv --x-shape 1,1,5,5 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1");
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out.substr(0, o.out.find('\n')), "conv: x 1x1x5x5 -> y 1x1x3x3");
  o = convarith("shape max-pool --x-shape 1,1,5,5 --kernel-shape 3,3 --strides 2,2 --json");
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(o.out.rfind("{\"op\":\"max-pool\",\"x_shape\":[1,1,5,5],\"output_shape\":[1,1,2,2],", 0), 0u) << o.out;
  o = convarith("shape conv --x-shape 1,1,2,2 --kernel-shape 3,3");
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(o.out.empty()) << o.out;
  EXPECT_TRUE(contains(o.err, "convarith shape: ")) << o.err;
}

TEST(CliBinary, RunThroughMain) {
  const char* root = std::getenv("CONVARITH_SOURCE_DIR");
  std::string here = __FILE__;
  const std::string data = root ? std::string(root) + "/tests/data" : here.substr(0, here.rfind('/')) + "/data";
  const std::string out = ::testing::TempDir() + "convarith_binary_y_" + std::to_string(::getpid()) + ".npy";
  Outcome o = convarith("run max-pool --kernel-shape 3 --strides 2 --dilations 2 --x '" + data +
                        "/maxpool1d_dilated.x.npy' --out '" + out + "' --device cpu --check");
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
  // Max pooling is exact and the header is numpy's own: the file is byte for byte what numpy saved.
  EXPECT_EQ(slurp(out), slurp(data + "/maxpool1d_dilated.y.npy"));
  std::remove(out.c_str());
  o = convarith("run max-pool --kernel-shape 3 --x '" + data + "/maxpool1d_dilated.x.npy'");
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--out FILE")) << o.err;
}

#else

TEST(CliBinary, NotBuilt) {
  GTEST_SKIP() << "built without the convarith executable (CONVARITH_CLI_BINARY unset)";
}

#endif

} // namespace
