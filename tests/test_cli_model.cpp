// tests/test_cli_model.cpp — `convarith model` in-process (cli/cmd_model.cpp's model_main): the built-in
// characterisation gives every kernel row a modeled time no lower than the layer's roofline bound, the output
// is labelled modeled-not-measured, the tap-path arithmetic follows a characterisation given with --inspect,
// the H100/H200 profiles differ by their HBM, and bad command lines or a missing characterisation fail.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "subcommands.hpp"

namespace {

struct CliRun {
  int rc = -1;
  std::string out, err;
};

CliRun model(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  CliRun r;
  r.rc = convarith::cli::model_main(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::string read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The number after "key": in the first row of `json` that follows `anchor`.
double field(const std::string& json, const std::string& anchor, const std::string& key) {
  const size_t a = json.find(anchor);
  if (a == std::string::npos)
    return -1;
  const size_t k = json.find("\"" + key + "\": ", a);
  if (k == std::string::npos)
    return -1;
  return std::strtod(json.c_str() + k + key.size() + 4, nullptr);
}

const std::vector<std::string> kConv3x3 = {"--layer",   "conv",      "--x-shape", "8,64,56,56",
                                           "--w-shape", "64,64,3,3", "--pads",    "1,1,1,1"};

TEST(ModelCli, BuiltInCharacterisationModelsTiledAndDirect) {
  const std::string json = ::testing::TempDir() + "convarith_model_cli.json";
  std::remove(json.c_str());
  std::vector<std::string> args = {"--json", json};
  args.insert(args.end(), kConv3x3.begin(), kConv3x3.end());
  CliRun r = model(args);
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("MODELED, NOT MEASURED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("what it cannot see"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tiled_kernel<float, 8, 3>"), std::string::npos) << r.out; // the compile-time 3 x 3 loops
  EXPECT_NE(r.out.find("direct_kernel<float, int>"), std::string::npos) << r.out;
  const std::string j = read(json);
  EXPECT_NE(j.find("\"label\": \"modeled, not measured\""), std::string::npos) << j;
  EXPECT_NE(r.out.find("igemm_kernel<4>"), std::string::npos) << r.out; // 128x64, NC[D]HW, int32
  for (const char* algo : {"\"algorithm\": \"igemm\"", "\"algorithm\": \"tiled\"", "\"algorithm\": \"direct\""}) {
    const double modeled = field(j, algo, "modeled_us"), roof = field(j, algo, "roofline_us");
    const double fma = field(j, algo, "fma_us"), issue = field(j, algo, "issue_us");
    EXPECT_GT(roof, 0) << algo;
    EXPECT_GE(modeled, roof * 0.999) << algo; // a bound model never beats the roofline
    EXPECT_GE(modeled, fma) << algo;
    EXPECT_GE(modeled, issue) << algo;
    const double pct = field(j, algo, "pct_of_peak");
    EXPECT_GT(pct, 0) << algo;
    EXPECT_LE(pct, 100) << algo;
  }
}

// --algo depthwise models that row only, on a MobileNetV2 depthwise layer (M01: 32x32 3x3 at 112x112, batch 32), with
// its % of the HBM bandwidth; an unknown row name exits 2.
TEST(ModelCli, AlgoDepthwiseReportsHbmShare) {
  const std::string json = ::testing::TempDir() + "convarith_model_depthwise.json";
  std::remove(json.c_str());
  CliRun r = model({"--algo", "depthwise", "--json", json, "--layer", "conv", "--x-shape", "32,32,112,112", "--w-shape",
                    "32,1,3,3", "--group", "32", "--pads", "1,1,1,1"});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  // 3x3 s1, the identity activation's instantiation; relu's and silu's (any activation: kActAny = -1) by name.
  EXPECT_NE(r.out.find("depthwise_kernel<float, int, 1, 0>"), std::string::npos) << r.out;
  for (const auto& [act, kernel] : {std::pair{"relu", "depthwise_kernel<float, int, 1, 1>"},
                                    std::pair{"silu", "depthwise_kernel<float, int, 1, -1>"}}) {
    CliRun a = model({"--algo", "depthwise", "--layer", "conv", "--x-shape", "32,32,112,112", "--w-shape", "32,1,3,3",
                      "--group", "32", "--pads", "1,1,1,1", "--activation", act});
    ASSERT_EQ(a.rc, 0) << a.out << a.err;
    EXPECT_NE(a.out.find(kernel), std::string::npos) << act << "\n" << a.out;
  }
  EXPECT_NE(r.out.find("% of the HBM bandwidth"), std::string::npos) << r.out;
  const std::string j = read(json);
  EXPECT_EQ(j.find("\"algorithm\": \"tiled\""), std::string::npos) << j;
  const char* row = "\"algorithm\": \"depthwise\"";
  const double hbm = field(j, row, "pct_of_hbm");
  EXPECT_GT(hbm, 0) << j;
  EXPECT_LE(hbm, 100) << j;
  EXPECT_NEAR(hbm, 100 * field(j, row, "dram_us") / field(j, row, "modeled_us"), 1e-6) << j;
  EXPECT_GE(field(j, row, "modeled_us"), field(j, row, "issue_us")) << j;
  EXPECT_GE(field(j, row, "modeled_us"), field(j, row, "l2_us")) << j;
  // No shared memory: the smem column is its global requests' L1 cycles (NCHW: 97 lines per warp and item here).
  EXPECT_GT(field(j, row, "smem_us"), 0) << j;
  EXPECT_GE(field(j, row, "modeled_us"), field(j, row, "smem_us")) << j;
  r = model({"--algo", "no_such_row", "--layer", "conv", "--x-shape", "1,1,5,5", "--w-shape", "1,1,3,3"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--algo no_such_row: no such kernel row"), std::string::npos) << r.err;
}

// igemm's split-K plan in the model: a batch-1 7x7x512 3x3 layer models tiles x S units and the reduction kernel as a
// serial term (its S x y partial reads at HBM speed) on top of the largest bound; a batch-32 56x56 layer does not
// split.
TEST(ModelCli, IgemmSplitKAddsTheReduction) {
  const std::string json = ::testing::TempDir() + "convarith_model_splitk.json";
  std::remove(json.c_str());
  CliRun r = model({"--algo", "igemm", "--json", json, "--layer", "conv", "--x-shape", "1,512,7,7", "--w-shape",
                    "512,512,3,3", "--pads", "1,1,1,1"});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("igemm_kernel<8>,S="), std::string::npos) << r.out;
  std::string j = read(json);
  const char* row = "\"algorithm\": \"igemm\"";
  const double splits = field(j, row, "splits"), serial = field(j, row, "serial_us");
  EXPECT_GT(splits, 1) << j;
  // (S + 1) x 49 x 512 x 4 bytes at the h200's 4.8 TB/s.
  EXPECT_NEAR(serial, (splits + 1) * 49 * 512 * 4 / 4.8e12 * 1e6, 1e-6) << j;
  double largest = 0;
  for (const char* bound : {"issue_us", "fma_us", "smem_us", "l2_us", "dram_us"})
    largest = std::max(largest, field(j, row, bound));
  EXPECT_NEAR(field(j, row, "modeled_us"), largest + serial, 1e-6) << j;
  EXPECT_EQ(field(j, row, "waves"), 1) << j; // 8 tiles x S units in one wave of 132 x 6 slots
  r = model({"--algo", "igemm", "--json", json, "--layer", "conv", "--x-shape", "32,64,56,56", "--w-shape", "64,64,3,3",
             "--pads", "1,1,1,1"});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  j = read(json);
  EXPECT_EQ(field(j, row, "splits"), 1) << j;
  EXPECT_EQ(field(j, row, "serial_us"), 0) << j;
  EXPECT_EQ(r.out.find(",S="), std::string::npos) << r.out;
}

TEST(ModelCli, TapPathArithmeticFollowsTheCharacterisation) {
  // direct: an unrolled loop of 4 taps in 40 instructions, remainder code of 3 taps in 36.
  const std::string insp = ::testing::TempDir() + "convarith_model_inspect.json";
  {
    std::ofstream f(insp);
    f << R"({"kernels": {"sm_90/direct_kernel<float, int>": {"regs": 32, "static_smem": 0, "tap_path": {
          "fma_per_tap": 1, "unrolled_loops": [{"taps": 4, "instructions": 40}],
          "remainder_body": {"taps": 3, "instructions": 36}}}}})";
  }
  const std::string json = ::testing::TempDir() + "convarith_model_tap.json";
  // KW = 3: the remainder only, 36 / 3 = 12 instructions per tap.
  CliRun r =
      model({"--inspect", insp, "--json", json, "--layer", "conv", "--x-shape", "1,4,16,16", "--w-shape", "4,4,3,3"});
  ASSERT_EQ(r.rc, 1) << r.out << r.err; // tiled has no characterisation in this file
  EXPECT_NE(r.out.find("no characterisation for sm_90/tiled_kernel<float, 4, 0>"), std::string::npos) << r.out;
  std::string j = read(json);
  EXPECT_DOUBLE_EQ(field(j, "\"algorithm\": \"direct\"", "instructions_per_tap"), 12.0) << j;
  EXPECT_NEAR(field(j, "\"algorithm\": \"direct\"", "path_fma_share"), 1.0 / 12.0, 1e-9) << j; // 1 FMA per tap
  // KW = 5: one pass of the loop (4 taps, 40) + 1 tap of the remainder (36 / 3) = 52 / 5.
  r = model({"--inspect", insp, "--json", json, "--layer", "conv", "--x-shape", "1,4,16,16", "--w-shape", "4,4,1,5"});
  j = read(json);
  EXPECT_DOUBLE_EQ(field(j, "\"algorithm\": \"direct\"", "instructions_per_tap"), 52.0 / 5.0) << j;
  // Issue time = taps / 32 * instructions per tap / (4 schedulers x 132 SMs x 1.98 GHz) / wave efficiency.
  const double taps = 2.0 * 4 * 4 * 5 * 16 * 12 / 2; // flops / 2 (16 x 12 outputs)
  const double eff = field(j, "\"algorithm\": \"direct\"", "wave_efficiency");
  EXPECT_NEAR(field(j, "\"algorithm\": \"direct\"", "issue_us"), taps / 32 * 10.4 / (4 * 132 * 1.98e9) / eff * 1e6,
              1e-6);
}

TEST(ModelCli, H100AndH200DifferInHbmOnly) {
  const std::string a = ::testing::TempDir() + "convarith_model_h100.json";
  const std::string b = ::testing::TempDir() + "convarith_model_h200.json";
  std::vector<std::string> args = {"--gpu", "h100", "--json", a};
  args.insert(args.end(), kConv3x3.begin(), kConv3x3.end());
  ASSERT_EQ(model(args).rc, 0);
  args[1] = "h200";
  args[3] = b;
  ASSERT_EQ(model(args).rc, 0);
  const std::string ja = read(a), jb = read(b);
  const char* row = "\"algorithm\": \"tiled\"";
  EXPECT_NEAR(field(ja, row, "dram_us") / field(jb, row, "dram_us"), 4.8 / 3.35, 1e-6);
  EXPECT_DOUBLE_EQ(field(ja, row, "issue_us"), field(jb, row, "issue_us"));
}

TEST(ModelCli, BadArgumentsExitTwo) {
  CliRun r = model({"--gpu", "a10", "--layer", "conv", "--x-shape", "1,1,5,5", "--w-shape", "1,1,3,3"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--gpu wants h100 or h200, got 'a10'"), std::string::npos) << r.err;
  r = model({"--suite", "no-such-suite"});
  EXPECT_EQ(r.rc, 2);
  r = model(
      {"--inspect", "/nonexistent/inspect.json", "--layer", "conv", "--x-shape", "1,1,5,5", "--w-shape", "1,1,3,3"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("cannot read"), std::string::npos) << r.err;
}

} // namespace
