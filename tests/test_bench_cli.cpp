// tests/test_bench_cli.cpp — `convarith bench` in-process (cli/cmd_bench.cpp's bench_main): the
// smoke suite runs, checks and prints a table with a geomean row, --json writes the raw results
// with the environment block, --layer takes ONNX attributes, and bad command lines exit 2.
// Linked with convarith_cli_lib by bench/CMakeLists.txt.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "convarith/plan.hpp"

namespace convarith::cli {
int bench_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
} // namespace convarith::cli

namespace {

struct CliRun {
  int rc = -1;
  std::string out, err;
};

CliRun bench(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  CliRun r;
  r.rc = convarith::cli::bench_main(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

TEST(BenchCli, SmokeSuitePrintsTheTableAndWritesJson) {
  const std::string json = ::testing::TempDir() + "convarith_bench_cli.json";
  std::remove(json.c_str());
  CliRun r = bench({"--suite", "smoke", "--device", "cpu", "--reps", "2", "--warmup", "1", "--json", json});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  for (const char* id : {"| S01 ", "| S02 ", "| S03 ", "| S04 ", "| geomean "})
    EXPECT_NE(r.out.find(id), std::string::npos) << id << "\n" << r.out;
  EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << r.out;
  // The first line names the ISA the CPU rows ran and the CPU's flags.
  const std::string first = r.out.substr(0, r.out.find('\n'));
  EXPECT_NE(first.find("; CPU rows: "), std::string::npos) << first;
  EXPECT_NE(first.find(" fp32 GEMM tile)"), std::string::npos) << first;
  EXPECT_NE(first.find("; CPU flags: "), std::string::npos) << first;
  // A progress line per layer on stderr.
  EXPECT_NE(r.err.find("[4/4] S04 "), std::string::npos) << r.err;
  std::ifstream f(json);
  ASSERT_TRUE(f.good()) << json;
  std::stringstream text;
  text << f.rdbuf();
  const std::string j = text.str();
  for (const char* key :
       {"\"schema\": \"convarith-bench-1\"", "\"git_sha\"", "\"load_average\"", "\"cpu_model\"", "\"cpu_flags\"",
        "\"cpu_isa\"", "\"onednn_isa\"", "\"suite\": \"smoke\"", "\"layer\": \"S03\"", "\"correct\": true"})
    EXPECT_NE(j.find(key), std::string::npos) << key;
  // Nothing checked was wrong: the only results not correct are rows that do not take the layer (cpu_winograd on
  // S02's stride 2, dilation 2), never checked.
  EXPECT_EQ(j.find("\"checked\": true, \"correct\": false"), std::string::npos) << j;
  size_t unsupported = 0, not_correct = 0;
  for (size_t at = j.find("\"status\": \"not_supported"); at != std::string::npos;
       at = j.find("\"status\": \"not_supported", at + 1))
    ++unsupported;
  for (size_t at = j.find("\"correct\": false"); at != std::string::npos; at = j.find("\"correct\": false", at + 1))
    ++not_correct;
  EXPECT_EQ(not_correct, unsupported) << j;
  EXPECT_NE(j.find("\"algorithm\": \"cpu_winograd\", \"device\": \"cpu\", \"status\": \"ok\""), std::string::npos)
      << "cpu_winograd timed on S01's 3x3 stride 1\n"
      << j;
}

TEST(BenchCli, OneLayerFromOnnxAttributes) {
  CliRun r = bench({"--device", "cpu", "--reps", "2", "--warmup", "1", "--no-peer", "--layer", "conv", "--x-shape",
                    "1,4,9,9", "--w-shape", "8,4,3,3", "--strides", "2,2", "--pads", "1,1,1,1"});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  // Named by the library: 9x9, k3, s2, p1 -> 5x5 (never computed here).
  EXPECT_NE(r.out.find("conv_n1_c4_k8_i9x9"), std::string::npos) << r.out;
  // The same layer as one quoted argument, with a bench option after it.
  CliRun q =
      bench({"--layer", "conv --x-shape 1,4,9,9 --w-shape 8,4,3,3", "--device", "cpu", "--reps", "2", "--no-peer"});
  EXPECT_EQ(q.rc, 0) << q.out << q.err;
}

TEST(BenchCli, ShowsWhichRowAutoAndTuneTake) {
  // On the emulated device several rows run a conv: the table names auto's and tune's rows, stderr marks
  // them beside the rows' times, and the JSON has them per layer and per result.
  const std::string json = ::testing::TempDir() + "convarith_bench_cli_tune.json";
  std::remove(json.c_str());
  CliRun r = bench({"--device", "emulated", "--reps", "1", "--warmup", "0", "--tune", "--json", json, "--layer", "conv",
                    "--x-shape", "1,2,5,5", "--w-shape", "3,2,3,3", "--pads", "1,1,1,1"});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  const convarith::ConvProblem p = [] {
    convarith::ProblemDesc d;
    d.c = 2, d.k = 3;
    d.input = {5, 5, 1};
    d.kernel = {3, 3, 1};
    d.pad_lo = {1, 1, 0};
    d.pad_hi = {1, 1, 0};
    return *convarith::ConvProblem::make(d);
  }();
  const convarith::Result<convarith::Plan> a = convarith::Plan::create(p, convarith::Device::kEmulated, "auto");
  ASSERT_TRUE(a.is_ok());
  const std::string auto_row = a->algorithm();
  EXPECT_NE(r.out.find("| auto takes "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| tune takes "), std::string::npos) << r.out;
  EXPECT_NE(r.err.find(" (auto"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tune)"), std::string::npos) << r.err;
  const size_t took = r.err.find("tune took ");
  ASSERT_NE(took, std::string::npos) << r.err;
  const std::string tune_row = r.err.substr(took + 10, r.err.find(' ', took + 10) - took - 10);
  EXPECT_NE(r.err.find(", auto takes " + auto_row + "\n"), std::string::npos) << r.err;
  // The layer's table row has both names in their columns.
  const size_t row = r.out.rfind('\n', r.out.find("| command line ")) + 1; // the header row says "network"
  ASSERT_NE(r.out.find("| command line "), std::string::npos) << r.out;
  const std::string line = r.out.substr(row, r.out.find('\n', row) - row);
  EXPECT_NE(line.find("| " + auto_row + " "), std::string::npos) << line;
  EXPECT_NE(line.find("| " + tune_row + " "), std::string::npos) << line;
  std::ifstream f(json);
  std::stringstream text;
  text << f.rdbuf();
  const std::string j = text.str();
  EXPECT_NE(j.find("\"auto_algorithm\": \"" + auto_row + "\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"tune_algorithm\": \"" + tune_row + "\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"algorithm\": \"" + auto_row + "\""), std::string::npos) << j;
  EXPECT_NE(j.find("\"auto_choice\": true"), std::string::npos) << j;
  EXPECT_NE(j.find("\"tune_choice\": true"), std::string::npos) << j;
  // Without --tune the tune column is "-" and no result is tune's.
  r = bench({"--device", "cpu", "--reps", "1", "--warmup", "0", "--no-peer", "--layer", "conv", "--x-shape", "1,2,5,5",
             "--w-shape", "3,2,3,3"});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("| cpu_gemm        | -               |"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("tune took"), std::string::npos) << r.err;
}

// --weights: constant (the default: ours prepared once by PlanOptions::weights, oneDNN reordered once) or per-run;
// the header and the JSON say which, and both ways are checked against the reference.
TEST(BenchCli, WeightsConstantOrPerRun) {
  const std::string json = ::testing::TempDir() + "convarith_bench_cli_weights.json";
  for (const char* mode : {"", "constant", "per-run"}) {
    std::remove(json.c_str());
    std::vector<std::string> args = {"--device", "cpu", "--reps", "2", "--warmup", "1", "--json", json};
    if (*mode != '\0')
      args.insert(args.end(), {"--weights", mode});
    args.insert(args.end(), {"--layer", "conv", "--x-shape", "1,6,8,8", "--w-shape", "5,6,3,3", "--pads", "1,1,1,1"});
    CliRun r = bench(args);
    ASSERT_EQ(r.rc, 0) << mode << "\n" << r.out << r.err;
    const bool constant = std::string(mode) != "per-run";
    const std::string first = r.out.substr(0, r.out.find('\n'));
    EXPECT_NE(first.find(constant ? "; weights constant: prepared once at setup" : "; weights per run: handed w"),
              std::string::npos)
        << first;
    std::ifstream f(json);
    std::stringstream text;
    text << f.rdbuf();
    const std::string j = text.str();
    EXPECT_NE(j.find(constant ? "\"weights\": \"constant: " : "\"weights\": \"per run: "), std::string::npos) << j;
    EXPECT_NE(j.find("\"algorithm\": \"cpu_winograd\", \"device\": \"cpu\", \"status\": \"ok\", \"checked\": true, "
                     "\"correct\": true"),
              std::string::npos)
        << j;
  }
  CliRun bad = bench({"--weights", "sometimes", "--suite", "smoke"});
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.err.find("--weights wants constant or per-run, got 'sometimes'"), std::string::npos) << bad.err;
}

TEST(BenchCli, BadCommandLinesExitTwo) {
  EXPECT_EQ(bench({"--suite", "no-such-suite"}).rc, 2);
  EXPECT_EQ(bench({"--device", "tpu"}).rc, 2);
  EXPECT_EQ(bench({"--reps", "0"}).rc, 2);
  EXPECT_EQ(bench({"--frobnicate"}).rc, 2);
  CliRun bad = bench({"--layer", "conv", "--x-shape", "1,1,2,2", "--kernel-shape", "5,5"});
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.err.find("axis"), std::string::npos) << bad.err; // the arithmetic's own message
  // No GPU is an error of the run (1), not of the command line, and says why.
  if (convarith::cuda_device_count() == 0) {
    CliRun gpu = bench({"--suite", "smoke", "--device", "cuda"});
    EXPECT_EQ(gpu.rc, 1);
    EXPECT_NE(gpu.err.find("--device cuda"), std::string::npos) << gpu.err;
  }
  CliRun help = bench({"--help"});
  EXPECT_EQ(help.rc, 0);
  EXPECT_NE(help.out.find("--suite NAME"), std::string::npos);
}

// --layer takes the formats and the epilogue: ours is checked (f16 NHWC, relu, a random residual) and the table
// shows the format; a peer that cannot run it is n/a and does not fail the bench.
TEST(BenchCli, LayerTakesDtypeLayoutAndActivation) {
  CliRun r = bench({"--device",  "cpu",     "--reps",       "2",       "--warmup", "1",       "--layer", "conv",
                    "--x-shape", "1,8,6,6", "--w-shape",    "8,8,3,3", "--pads",   "1,1,1,1", "--dtype", "f16",
                    "--layout",  "NHWC",    "--activation", "relu",    "--beta",   "1"});
  ASSERT_EQ(r.rc, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("| f16 NHWC relu+z"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("(none correct)"), std::string::npos) << r.out;
  r = bench(
      {"--device", "cpu", "--layer", "conv", "--x-shape", "1,8,6,6", "--kernel-shape", "3,3", "--activation", "swish"});
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--activation 'swish'"), std::string::npos) << r.err;
}

} // namespace
