// tests/test_cli_commands.cpp — `convarith shape` and `convarith run`, in-process: output shapes
// and the paper's relationships for its figures and for ONNX layers, the --json object, exit
// codes, and `run` end to end on fixtures whose expected outputs numpy computed from the
// definitions (tests/data/make_fixtures.py).
#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "attributes.hpp"
#include "convarith/plan.hpp"
#include "npy.hpp"
#include "row.hpp"
#include "subcommands.hpp"
#include "support/temp_dir.hpp"

namespace convarith::cli {
namespace {

using Args = std::vector<std::string>;

struct Outcome {
  int code;
  std::string out, err;
};

Outcome shape(const Args& args) {
  std::ostringstream out, err;
  const int code = shape_main(args, out, err);
  return {code, out.str(), err.str()};
}

Outcome run(const Args& args) {
  std::ostringstream out, err;
  const int code = run_main(args, out, err);
  return {code, out.str(), err.str()};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string data_dir() {
  if (const char* root = std::getenv("CONVARITH_SOURCE_DIR"))
    return std::string(root) + "/tests/data";
  // Run by hand outside ctest: this file's own directory.
  std::string here = __FILE__;
  return here.substr(0, here.rfind('/')) + "/data";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void spit(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

bool exists(const std::string& path) {
  return ::access(path.c_str(), F_OK) == 0;
}

Args words(const std::string& line) {
  std::istringstream in(line);
  Args out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

// ---- shape ------------------------------------------------------------------------------------

TEST(CliShape, ReadmeExample) {
  const Outcome o = shape(words("conv --x-shape 1,1,5,5 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1"));
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(o.err.empty()) << o.err;
  EXPECT_EQ(o.out.substr(0, o.out.find('\n')), "conv: x 1x1x5x5 -> y 1x1x3x3");
  EXPECT_TRUE(contains(o.out, "weight            1x1x3x3")) << o.out;
  EXPECT_TRUE(contains(o.out, "begins 1,1, ends 1,1 (auto_pad NOTSET)")) << o.out;
  EXPECT_TRUE(contains(o.out, "axis 0            relationship 6 ")) << o.out;
  EXPECT_TRUE(contains(o.out, "axis 1            relationship 6 ")) << o.out;
  EXPECT_TRUE(contains(o.out, "(5 + 2*1 - 3) / 2) + 1 = 3")) << o.out;
  // 2 * N*K*(C/g) * prod(k) * prod(out) = 2 * 9 * 9; bytes 4 * (25 + 9 + 9).
  EXPECT_TRUE(contains(o.out, "flops             162\n")) << o.out;
  EXPECT_TRUE(contains(o.out, "min bytes         172\n")) << o.out;
}

TEST(CliShape, JsonObject) {
  const Outcome o = shape(words("conv --x-shape 1,1,5,5 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1 --json"));
  ASSERT_EQ(o.code, 0) << o.err;
  AxisParams a;
  a.i = 5;
  a.k = 3;
  a.s = 2;
  a.p_lo = a.p_hi = 1;
  const RelationshipInfo info = classify_relationship(Op::kConv, a, 3);
  const std::string axis = "{\"relationship\":6,\"name\":\"" + info.name + "\",\"formula\":\"" + info.formula + "\"}";
  EXPECT_EQ(o.out,
            "{\"op\":\"conv\",\"x_shape\":[1,1,5,5],\"output_shape\":[1,1,3,3],\"weight_shape\":[1,1,3,3],"
            "\"group\":1,\"auto_pad\":\"NOTSET\",\"pads\":[1,1,1,1],\"output_padding\":[0,0],\"axes\":[" +
                axis + "," + axis +
                "],\"dtype\":\"f32\",\"layout\":\"NCHW\",\"w_layout\":\"NCHW\",\"tensors\":{"
                "\"x\":{\"dtype\":\"f32\",\"layout\":\"NCHW\",\"memory_shape\":[1,1,5,5],\"bytes\":100},"
                "\"w\":{\"dtype\":\"f32\",\"layout\":\"NCHW\",\"memory_shape\":[1,1,3,3],\"bytes\":36},"
                "\"bias\":{\"dtype\":\"f32\",\"memory_shape\":[1],\"bytes\":4},"
                "\"y\":{\"dtype\":\"f32\",\"layout\":\"NCHW\",\"memory_shape\":[1,1,3,3],\"bytes\":36}},"
                "\"epilogue\":{\"activation\":\"identity\",\"alpha\":1,\"beta\":0,\"formula\":\"y = conv + bias\"},"
                "\"flops\":162,\"min_bytes\":172}\n");
}

TEST(CliShape, JsonResolvedPadsAndOutputPadding) {
  // ONNX ConvTranspose with output_shape: the pads and output padding come back resolved.
  Outcome o = shape(words("conv-transpose --x-shape 1,1,3,3 --w-shape 1,2,3,3 --strides 3,2 --output-shape 10,8 "
                          "--json"));
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, "\"output_shape\":[1,2,10,8]")) << o.out;
  EXPECT_TRUE(contains(o.out, "\"weight_shape\":[1,2,3,3]")) << o.out;
  // ONNX: total padding = s(i-1) + k - o = 3*2+3-10 = -1 on H -> output padding 1, pads 0; W: 2*2+3-8 = -1 -> 1.
  EXPECT_TRUE(contains(o.out, "\"pads\":[0,0,0,0],\"output_padding\":[1,1]")) << o.out;
  // SAME_UPPER conv: o = ceil(i/s); total padding (o-1)s + k - i = 3*2+3-7 = 2 -> 1,1; W: 3*2+4-7 = 3 -> 1,2.
  o = shape(words("conv --x-shape 1,1,7,7 --kernel-shape 3,4 --strides 2,2 --auto-pad SAME_UPPER --json"));
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, "\"output_shape\":[1,1,4,4]")) << o.out;
  EXPECT_TRUE(contains(o.out, "\"auto_pad\":\"SAME_UPPER\",\"pads\":[1,1,1,2]")) << o.out;
  // Pooling has no weight.
  o = shape(words("max-pool --x-shape 1,1,5 --kernel-shape 3 --json"));
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, "\"weight_shape\":[]")) << o.out;
  EXPECT_TRUE(contains(o.out, "\"relationship\":7")) << o.out;
}

struct PaperCase {
  const char* args;
  int relationship;
  const char* out; // output shape as printed
};

TEST(CliShape, PaperFigures) {
  // Dumoulin & Visin's figures and relationships: (args, relationship, y).
  const PaperCase cases[] = {
      {"conv --x-shape 1,1,4,4 --kernel-shape 3,3", 1, "1x1x2x2"},
      {"conv --x-shape 1,1,5,5 --kernel-shape 4,4 --pads 2,2,2,2", 2, "1x1x6x6"},
      {"conv --x-shape 1,1,5,5 --kernel-shape 3,3 --pads 1,1,1,1", 3, "1x1x5x5"},
      {"conv --x-shape 1,1,5,5 --kernel-shape 3,3 --auto-pad HALF", 3, "1x1x5x5"},
      {"conv --x-shape 1,1,5,5 --kernel-shape 3,3 --pads 2,2,2,2", 4, "1x1x7x7"},
      {"conv --x-shape 1,1,5,5 --kernel-shape 3,3 --auto-pad FULL", 4, "1x1x7x7"},
      {"conv --x-shape 1,1,5,5 --kernel-shape 3,3 --strides 2,2", 5, "1x1x2x2"},
      {"conv --x-shape 1,1,5,5 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1", 6, "1x1x3x3"},
      {"conv --x-shape 1,1,6,6 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1", 6, "1x1x3x3"},
      {"max-pool --x-shape 1,1,5,5 --kernel-shape 3,3", 7, "1x1x3x3"},
      {"conv-transpose --x-shape 1,1,2,2 --kernel-shape 3,3", 8, "1x1x4x4"},
      {"conv-transpose --x-shape 1,1,6,6 --kernel-shape 4,4 --pads 2,2,2,2", 9, "1x1x5x5"},
      {"conv-transpose --x-shape 1,1,5,5 --kernel-shape 3,3 --pads 1,1,1,1", 10, "1x1x5x5"},
      {"conv-transpose --x-shape 1,1,7,7 --kernel-shape 3,3 --pads 2,2,2,2", 11, "1x1x5x5"},
      {"conv-transpose --x-shape 1,1,2,2 --kernel-shape 3,3 --strides 2,2", 12, "1x1x5x5"},
      {"conv-transpose --x-shape 1,1,3,3 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1", 13, "1x1x5x5"},
      {"conv-transpose --x-shape 1,1,3,3 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1 --output-padding 1,1", 14,
       "1x1x6x6"},
      {"conv --x-shape 1,1,7,7 --kernel-shape 3,3 --dilations 2,2", 15, "1x1x3x3"},
  };
  for (const PaperCase& c : cases) {
    SCOPED_TRACE(c.args);
    const Outcome o = shape(words(c.args));
    ASSERT_EQ(o.code, 0) << o.err;
    EXPECT_TRUE(contains(o.out, std::string("-> y ") + c.out + "\n")) << o.out;
    EXPECT_TRUE(contains(o.out, "axis 0            relationship " + std::to_string(c.relationship) + " ")) << o.out;
    const Outcome j = shape(words(std::string(c.args) + " --json"));
    ASSERT_EQ(j.code, 0) << j.err;
    EXPECT_TRUE(contains(j.out, "{\"relationship\":" + std::to_string(c.relationship) + ",")) << j.out;
  }
}

TEST(CliShape, OnnxLayers) {
  // Shapes from the ONNX operator test cases and common models: (args, output shape).
  const std::pair<const char*, const char*> cases[] = {
      // ResNet-50 conv1 and its max pool.
      {"conv --x-shape 1,3,224,224 --w-shape 64,3,7,7 --strides 2,2 --pads 3,3,3,3", "1x64x112x112"},
      {"max-pool --x-shape 1,64,112,112 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1", "1x64x56x56"},
      // ONNX conv_with_strides_and_asymmetric_padding.
      {"conv --x-shape 1,1,7,5 --w-shape 1,1,3,3 --strides 2,2 --pads 1,0,1,0", "1x1x4x2"},
      // ONNX convtranspose_pads, _dilations, _autopad_same, _output_shape, _1d, _3d.
      {"conv-transpose --x-shape 1,1,3,3 --w-shape 1,2,3,3 --strides 3,2 --pads 1,2,1,2", "1x2x7x3"},
      {"conv-transpose --x-shape 1,1,3,3 --w-shape 1,1,2,2 --dilations 2,2", "1x1x5x5"},
      {"conv-transpose --x-shape 1,1,3,3 --w-shape 1,2,3,3 --strides 2,2 --auto-pad SAME_UPPER", "1x2x6x6"},
      {"conv-transpose --x-shape 1,1,3,3 --w-shape 1,2,3,3 --strides 3,2 --output-shape 10,8", "1x2x10x8"},
      {"conv-transpose --x-shape 1,1,3 --w-shape 1,2,3", "1x2x5"},
      {"conv-transpose --x-shape 1,1,3,4,5 --w-shape 1,2,3,3,3", "1x2x5x6x7"},
      // ONNX maxpool_2d_ceil, maxpool_2d_dilations, averagepool_2d_same_upper, averagepool_2d_pads.
      {"max-pool --x-shape 1,1,4,4 --kernel-shape 3,3 --strides 2,2 --ceil-mode 1", "1x1x2x2"},
      {"max-pool --x-shape 1,1,4,4 --kernel-shape 2,2 --dilations 2,2", "1x1x2x2"},
      {"avg-pool --x-shape 1,3,32,32 --kernel-shape 2,2 --auto-pad SAME_UPPER", "1x3x32x32"},
      {"avg-pool --x-shape 1,3,28,28 --kernel-shape 3,3 --pads 2,2,2,2", "1x3x30x30"},
      // MobileNet depthwise 3x3 stride 2.
      {"conv --x-shape 1,32,112,112 --w-shape 32,1,3,3 --group 32 --strides 2,2 --pads 1,1,1,1", "1x32x56x56"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.first);
    const Outcome o = shape(words(c.first));
    ASSERT_EQ(o.code, 0) << o.err;
    EXPECT_TRUE(contains(o.out, std::string("-> y ") + c.second + "\n")) << o.out;
  }
  // FLOPs and bytes of ResNet-50 conv1 by hand: 2*64*3*7*7*112*112 and 4*(3*224*224 + 64*3*7*7 + 64*112*112).
  const Outcome o = shape(words("conv --x-shape 1,3,224,224 --w-shape 64,3,7,7 --strides 2,2 --pads 3,3,3,3 --json"));
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, "\"flops\":236027904,\"min_bytes\":3851008}")) << o.out;
}

TEST(CliShape, ExitCodes) {
  // An invalid layer (the arithmetic's message) exits 2 with nothing on stdout.
  Outcome o = shape(words("conv --x-shape 1,1,2,2 --kernel-shape 3,3 --dilations 2,2 --pads 1,1,1,1"));
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(o.out.empty()) << o.out;
  EXPECT_TRUE(contains(o.err, "convarith shape: ")) << o.err;
  EXPECT_TRUE(contains(o.err, "5")) << "names the effective kernel: " << o.err;
  // A parse error too.
  o = shape(words("conv --x-shape 1,1,5,5 --kernel-shape 3,3 --stride 2,2"));
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "unknown option '--stride'")) << o.err;
  o = shape({});
  EXPECT_EQ(o.code, 2);
  // Groups that do not divide C: ConvProblem::make says so.
  o = shape(words("conv --x-shape 1,6,5,5 --kernel-shape 3,3 --group 4"));
  EXPECT_EQ(o.code, 2);
  EXPECT_FALSE(o.err.empty());
  // ceil_mode window starting in the right padding is not counted; a transposed output padding >= stride is invalid.
  o = shape(words("conv-transpose --x-shape 1,1,3,3 --kernel-shape 3,3 --strides 2,2 --output-padding 2,0"));
  EXPECT_EQ(o.code, 2) << o.out;
}

TEST(CliShape, ErrorsListTheNearestValidChanges) {
  // k' = 5 over 2 + 1 + 1 on both axes: the library's suggestions follow the message, per axis.
  Outcome o = shape(words("conv --x-shape 1,1,2,9 --kernel-shape 3,3 --dilations 2,2 --pads 1,1,1,1"));
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "  axis 0: nearest valid changes (any one):\n"
                              "    pads 1+1 -> 1+2 (the padded input must reach the effective kernel 5, short by 1)\n"
                              "    input size i=2 -> 3 (the smallest valid with the other fields as given)\n"
                              "    kernel size k=3 -> 2 (the largest with d(k-1)+1 <= padded input 4)\n"
                              "    dilation d=2 -> 1 (the largest with d(k-1)+1 <= padded input 4)\n"))
      << o.err;
  EXPECT_FALSE(contains(o.err, "axis 1:")) << "axis 1 (i=9) is valid: " << o.err;
  // An unreachable output_shape: the reachable range and the legal output padding.
  o = shape(words("conv-transpose --x-shape 1,1,3,3 --w-shape 1,1,3,3 --strides 2,2 --output-shape 10,8"));
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "output_shape 10 -> one of 1..8 (reachable from i=3)")) << o.err;
  EXPECT_TRUE(contains(o.err, "axis 0: legal output_padding 0..1; output_shape can reach 1..8")) << o.err;
  // Output padding too large.
  o = shape(words("conv-transpose --x-shape 1,1,3,3 --kernel-shape 3,3 --strides 2,2 --output-padding 2,0"));
  EXPECT_TRUE(contains(o.err, "output padding a=2 -> 1 (legal: 0 <= a <= 1, below max(stride=2, dilation=1))"))
      << o.err;
  // Pooling padding per side.
  o = shape(words("max-pool --x-shape 1,1,5,5 --kernel-shape 2,2 --pads 2,0,2,0"));
  EXPECT_TRUE(contains(o.err, "pads 2+2 -> 1+1 (each side below the effective window 2)")) << o.err;
}

TEST(CliShape, HelpDocumentsEveryOption) {
  const Outcome o = shape({"--help"});
  EXPECT_EQ(o.code, 0);
  for (const char* opt : {"--x-shape", "--w-shape", "--kernel-shape", "--strides", "--pads", "--dilations", "--group",
                          "--auto-pad", "--output-padding", "--output-shape", "--ceil-mode", "--count-include-pad",
                          "--out-channels", "--json", "Example"})
    EXPECT_TRUE(contains(o.out, opt)) << opt;
  const Outcome r = run({"--help"});
  EXPECT_EQ(r.code, 0);
  for (const char* opt : {"--x FILE", "--w FILE", "--b FILE", "--out FILE", "--device", "--algo", "--check", "--pads"})
    EXPECT_TRUE(contains(r.out, opt)) << opt;
}

// ---- run --------------------------------------------------------------------------------------

struct Fixture {
  std::string name;
  Args args;
};

std::vector<Fixture> fixtures() {
  std::ifstream in(data_dir() + "/fixtures.txt");
  std::vector<Fixture> out;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#')
      continue;
    Args w = words(line);
    out.push_back({w[0], Args(w.begin() + 1, w.end())});
  }
  return out;
}

Args with_files(const Fixture& f, const std::string& out_path) {
  Args a = f.args;
  const std::string base = data_dir() + "/" + f.name;
  a.insert(a.end(), {"--x", base + ".x.npy"});
  if (exists(base + ".w.npy"))
    a.insert(a.end(), {"--w", base + ".w.npy"});
  if (exists(base + ".b.npy"))
    a.insert(a.end(), {"--b", base + ".b.npy"});
  a.insert(a.end(), {"--out", out_path});
  return a;
}

TEST(CliRun, FixturesMatchNumpy) {
  const std::vector<Fixture> all = fixtures();
  ASSERT_EQ(all.size(), 10u) << "tests/data/fixtures.txt under " << data_dir();
  test::TempDir dir("convarith_cli_");
  for (const Fixture& f : all) {
    SCOPED_TRACE(f.name);
    const std::string out = dir.file(f.name + ".y.npy");
    Args args = with_files(f, out);
    args.insert(args.end(), {"--device", "cpu", "--check"});
    const Outcome o = run(args);
    ASSERT_EQ(o.code, 0) << o.err << o.out;
    EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
    Result<NpyArray> got = read_npy(out);
    Result<NpyArray> want = read_npy(data_dir() + "/" + f.name + ".y.npy");
    ASSERT_TRUE(got.is_ok()) << got.status().message();
    ASSERT_TRUE(want.is_ok()) << want.status().message();
    ASSERT_EQ(got->shape, want->shape);
    ASSERT_EQ(got->data.size(), want->data.size());
    // Integer inputs: conv sums and maxima are exact in float32; averages round once.
    const bool avg = f.args[0] == "avg-pool";
    for (size_t i = 0; i < got->data.size(); ++i) {
      const double tol = avg ? 1e-6 * std::max(1.0, std::fabs(static_cast<double>(want->data[i]))) : 0.0;
      ASSERT_LE(std::fabs(got->data[i] - want->data[i]), tol)
          << "element " << i << ": got " << got->data[i] << ", numpy " << want->data[i];
    }
  }
}

// The problem a fixture describes, built from its files' shapes as `run` does.
Result<ConvProblem> fixture_problem(const Fixture& f) {
  const std::string base = data_dir() + "/" + f.name;
  Args a = f.args;
  Result<NpyArray> x = read_npy(base + ".x.npy");
  if (!x)
    return x.status();
  a.insert(a.end(), {"--x-shape", join(x->shape)});
  if (exists(base + ".w.npy")) {
    Result<NpyArray> w = read_npy(base + ".w.npy");
    if (!w)
      return w.status();
    a.insert(a.end(), {"--w-shape", join(w->shape)});
  }
  Result<ParsedLayer> layer = parse_layer(a);
  if (!layer)
    return layer.status();
  return ConvProblem::make(layer->desc);
}

TEST(CliRun, EveryCpuAlgorithmByName) {
  // --algo NAME for every CPU row of the table on every fixture it supports; the rest say why not.
  test::TempDir dir("convarith_cli_");
  int ran = 0;
  for (const Fixture& f : fixtures()) {
    Result<ConvProblem> p = fixture_problem(f);
    ASSERT_TRUE(p.is_ok()) << f.name << ": " << p.status().message();
    for (const Algorithm& a : algorithm_table()) {
      if (a.device != Device::kCpu)
        continue;
      SCOPED_TRACE(f.name + " --algo " + a.name);
      Args args = with_files(f, dir.file("y.npy"));
      args.insert(args.end(), {"--device", "cpu", "--algo", a.name, "--check"});
      const Outcome o = run(args);
      const bool supported = (a.ops & op_bit(p->op())) && a.supports(*p).is_ok();
      if (supported) {
        EXPECT_EQ(o.code, 0) << o.err;
        EXPECT_TRUE(contains(o.out, std::string("with ") + a.name + "\n")) << o.out;
        EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
        ++ran;
      } else {
        EXPECT_EQ(o.code, 2) << o.out;
        EXPECT_TRUE(contains(o.err, a.name)) << o.err;
      }
    }
  }
  EXPECT_GE(ran, 10) << "every fixture runs on at least one CPU algorithm";
}

TEST(CliRun, AlgoTuneTimesTheRowsAndUsesTheCacheFile) {
  // --algo tune on the emulated device (several rows run a grouped conv) checks PASS, prints every row's median
  // and auto's choice; with --tune-cache the second run times nothing; a corrupt file is a warning; a cache file
  // without --algo tune is a usage error.
  convarith::detail::clear_tune_cache();
  test::TempDir dir("convarith_cli_");
  Fixture f;
  for (const Fixture& g : fixtures())
    if (g.name == "conv2d_groups_asym")
      f = g;
  ASSERT_FALSE(f.name.empty());
  const std::string cache = dir.file("tune.cache");
  Args args = with_files(f, dir.file("y.npy"));
  args.insert(args.end(), {"--device", "emulated", "--algo", "tune", "--tune-cache", cache, "--check"});
  Outcome o = run(args);
  ASSERT_EQ(o.code, 0) << o.err << o.out;
  EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
  EXPECT_TRUE(contains(o.out, " measured fastest (median ")) << o.out;
  for (const char* row : {" igemm ", " tiled ", " direct "})
    EXPECT_TRUE(contains(o.out, row)) << row << "\n" << o.out;
  EXPECT_TRUE(contains(o.out, "; auto takes ")) << o.out;
  EXPECT_TRUE(o.err.find("warning") == std::string::npos) << o.err;
  convarith::detail::clear_tune_cache(); // as a new process would start
  o = run(args);
  ASSERT_EQ(o.code, 0) << o.err << o.out;
  EXPECT_TRUE(contains(o.out, "from the cache file (nothing timed)")) << o.out;
  EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
  {
    std::ofstream bad(cache, std::ios::trunc);
    bad << "not a cache\n";
  }
  convarith::detail::clear_tune_cache();
  o = run(args);
  ASSERT_EQ(o.code, 0) << o.err << o.out;
  EXPECT_TRUE(contains(o.err, "convarith run: warning: tune cache " + cache + ": corrupt")) << o.err;
  EXPECT_TRUE(contains(o.out, " measured fastest")) << o.out;
  Args cpu = with_files(f, dir.file("y2.npy"));
  cpu.insert(cpu.end(), {"--device", "cpu", "--tune-cache", cache});
  o = run(cpu);
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--tune-cache is for --algo tune")) << o.err;
  convarith::detail::clear_tune_cache();
}

TEST(CliRun, DeviceAutoSaysWhich) {
  const std::vector<Fixture> all = fixtures();
  ASSERT_FALSE(all.empty());
  test::TempDir dir("convarith_cli_");
  const Outcome o = run(with_files(all[0], dir.file("y.npy")));
  ASSERT_EQ(o.code, 0) << o.err;
  const char* expected = cuda_device_count() > 0 ? "--device auto: cuda" : "--device auto: cpu (no usable CUDA device";
  EXPECT_TRUE(contains(o.err, expected)) << o.err;
  EXPECT_TRUE(read_npy(dir.file("y.npy")).is_ok());
}

// Runs `args` expecting exit `code` with every part in stderr, and a pre-existing --out untouched.
void expect_run_fails(Args args, int code, const std::vector<std::string>& parts) {
  test::TempDir dir("convarith_cli_");
  const std::string out = dir.file("y.npy");
  spit(out, "sentinel");
  args.insert(args.end(), {"--out", out});
  const Outcome o = run(args);
  EXPECT_EQ(o.code, code) << o.err;
  for (const std::string& p : parts)
    EXPECT_TRUE(contains(o.err, p)) << "stderr \"" << o.err << "\" lacks \"" << p << "\"";
  EXPECT_EQ(slurp(out), "sentinel") << "--out was written on failure";
}

TEST(CliRun, Failures) {
  const std::string d = data_dir() + "/";
  const std::string cx = d + "conv2d_groups_asym.x.npy", cw = d + "conv2d_groups_asym.w.npy";
  const Args conv_ok = {"conv", "--strides", "2,1", "--pads", "1,0,2,1", "--dilations", "1,2", "--group", "2"};
  auto with = [](Args a, const Args& more) {
    a.insert(a.end(), more.begin(), more.end());
    return a;
  };
  // A weight whose shape contradicts the problem names both.
  expect_run_fails(with(conv_ok, {"--x", cx, "--w", cw, "--kernel-shape", "5,5"}), 2,
                   {"--kernel-shape 5,5 disagrees with", "conv2d_groups_asym.w.npy", "6,2,3,2", "3x2"});
  expect_run_fails(with(Args{"conv"}, {"--x", cx, "--w", cw}), 2,
                   {"conv2d_groups_asym.w.npy (--w) shape 6,2,3,2", "2 x group 1 = 2", "C=4"});
  expect_run_fails(with(conv_ok, {"--x", cx, "--w", cw, "--w-shape", "6,2,3,3"}), 2,
                   {"--w-shape 6,2,3,3 disagrees with", "(6, 2, 3, 2)"});
  expect_run_fails(with(conv_ok, {"--x", cx, "--w", cw, "--x-shape", "1,4,7,6"}), 2,
                   {"--x-shape 1,4,7,6 disagrees with", "(2, 4, 7, 6)"});
  // A bias that is not (K,).
  expect_run_fails(with(conv_ok, {"--x", cx, "--w", cw, "--b", d + "conv1d_same_upper.b.npy"}), 2,
                   {"bias has shape (2,)", "K=6"});
  // Missing or misplaced files.
  expect_run_fails(with(conv_ok, {"--x", cx}), 2, {"conv needs --w FILE"});
  expect_run_fails(with(conv_ok, {"--w", cw}), 2, {"--x FILE", "required"});
  expect_run_fails(with(Args{"max-pool", "--kernel-shape", "3,3"}, {"--x", d + "maxpool2d_ceil.x.npy", "--w", cw}), 2,
                   {"--w does not apply to max-pool"});
  expect_run_fails(with(conv_ok, {"--x", d + "missing.npy", "--w", cw}), 2, {"--x", "missing.npy: cannot open"});
  expect_run_fails(with(conv_ok, {"--x", d + "fixtures.txt", "--w", cw}), 2, {"fixtures.txt: not a .npy file"});
  // An invalid layer: the arithmetic's message.
  expect_run_fails(with(Args{"max-pool", "--kernel-shape", "30,3"}, {"--x", d + "maxpool2d_ceil.x.npy"}), 2, {"30"});
  // Devices and algorithms.
  expect_run_fails(with(conv_ok, {"--x", cx, "--w", cw, "--device", "tpu"}), 2, {"--device 'tpu'"});
  expect_run_fails(with(conv_ok, {"--x", cx, "--w", cw, "--device", "cpu", "--algo", "no_such_algorithm"}), 2,
                   {"no_such_algorithm"});
  if (cuda_device_count() == 0) {
    // Without a GPU, --device cuda explains itself with the Plan's message.
    expect_run_fails(with(conv_ok, {"--x", cx, "--w", cw, "--device", "cuda"}), 1, {cuda_unavailable_reason()});
  }
  // No --out at all.
  const Outcome o = run(with(conv_ok, {"--x", cx, "--w", cw}));
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--out FILE")) << o.err;
}

TEST(CliRun, OutputReadableAndOverwritesOnSuccess) {
  test::TempDir dir("convarith_cli_");
  const std::vector<Fixture> all = fixtures();
  ASSERT_FALSE(all.empty());
  const std::string out = dir.file("y.npy");
  spit(out, "old");
  Args args = with_files(all[0], out);
  args.insert(args.end(), {"--device", "cpu"});
  const Outcome o = run(args);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, "wrote " + out)) << o.out;
  Result<NpyArray> y = read_npy(out);
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  for (float v : y->data)
    EXPECT_FALSE(std::isnan(v));
}

TEST(CliRun, EmptyBatch) {
  // N = 0 is a valid no-op: the output has N = 0 too and is written.
  test::TempDir dir("convarith_cli_");
  const std::vector<float> w(3 * 2 * 3, 1.0f);
  ASSERT_TRUE(write_npy(dir.file("x.npy"), {0, 2, 5}, nullptr).is_ok());
  ASSERT_TRUE(write_npy(dir.file("w.npy"), {3, 2, 3}, w.data()).is_ok());
  const Outcome o = run({"conv", "--x", dir.file("x.npy"), "--w", dir.file("w.npy"), "--out", dir.file("y.npy"),
                         "--device", "cpu", "--check"});
  ASSERT_EQ(o.code, 0) << o.err;
  Result<NpyArray> y = read_npy(dir.file("y.npy"));
  ASSERT_TRUE(y.is_ok()) << y.status().message();
  EXPECT_EQ(y->shape, (std::vector<int64_t>{0, 3, 3}));
}

} // namespace
} // namespace convarith::cli
