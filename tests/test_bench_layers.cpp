// tests/test_bench_layers.cpp — bench/layers.csv and convarith_bench_lib: every row is a valid
// problem, the suites are what the bench and CLI expect, the FLOPs / bytes the library computes
// agree with ../shared/LAYERS.md's published numbers (copied here as literals), and the harness
// checks before it times (a wrong result is reported, never timed).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "bench.hpp"
#include "cpu/gemm.hpp"
#include "reference/reference.hpp"
#if defined(CONVARITH_HAVE_ONEDNN)
#include "onednn/onednn_runner.hpp"
#endif

namespace convarith::bench {
namespace {

const std::vector<Layer>& all_layers() {
  static const std::vector<Layer> layers = [] {
    Result<std::vector<Layer>> r = load_layers(default_layers_path());
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? r.value() : std::vector<Layer>{};
  }();
  return layers;
}

const Layer* find_layer(const std::string& id) {
  for (const Layer& l : all_layers())
    if (l.id == id)
      return &l;
  return nullptr;
}

TEST(BenchLayers, EveryRowIsAValidProblemWithAUniqueId) {
  const std::vector<Layer>& layers = all_layers();
  ASSERT_GE(layers.size(), 60u);
  std::set<std::string> ids;
  for (const Layer& l : layers) {
    EXPECT_TRUE(ids.insert(l.id).second) << "duplicate id " << l.id;
    EXPECT_FALSE(l.network.empty()) << l.id;
    EXPECT_FALSE(l.suites.empty()) << l.id;
    // make(resolved()) round-trips: the row is a problem the library accepts as it is.
    Result<ConvProblem> again = ConvProblem::make(l.problem.resolved());
    ASSERT_TRUE(again.is_ok()) << l.id << ": " << again.status().to_string();
    EXPECT_EQ(again->name(), l.problem.name()) << l.id;
    EXPECT_GT(l.problem.flops(), 0) << l.id;
    EXPECT_GT(l.problem.min_bytes(), 0) << l.id;
  }
}

TEST(BenchLayers, SuitesHaveTheirPromisedShape) {
  Result<std::vector<Layer>> smoke = load_suite(default_layers_path(), "smoke");
  Result<std::vector<Layer>> def = load_suite(default_layers_path(), "default");
  Result<std::vector<Layer>> full = load_suite(default_layers_path(), "full");
  ASSERT_TRUE(smoke.is_ok()) << smoke.status().to_string();
  ASSERT_TRUE(def.is_ok()) << def.status().to_string();
  ASSERT_TRUE(full.is_ok()) << full.status().to_string();
  EXPECT_GE(smoke->size(), 3u);
  EXPECT_LE(smoke->size(), 4u);
  for (const Layer& l : *smoke)
    EXPECT_LT(l.problem.flops(), 1e6) << l.id << " is not tiny";
  // The default suite runs on a 2-core CPU with the fallback and oneDNN: batch 1 only.
  for (const Layer& l : *def) {
    EXPECT_EQ(l.problem.n(), 1) << l.id;
    EXPECT_TRUE(l.in_suite("full")) << l.id << " is in default but not in full";
  }
  EXPECT_GE(def->size(), 20u);
  EXPECT_GE(full->size(), 90u);
  // Every op family is in the default suite.
  std::set<Op> ops;
  for (const Layer& l : *def)
    ops.insert(l.problem.op());
  EXPECT_EQ(ops.size(), 4u);
  // LAYERS.md §2's core suite for the headline geomean: 30 rows.
  Result<std::vector<Layer>> core = load_suite(default_layers_path(), "core");
  ASSERT_TRUE(core.is_ok()) << core.status().to_string();
  EXPECT_EQ(core->size(), 30u);
  Result<std::vector<Layer>> none = load_suite(default_layers_path(), "nope");
  ASSERT_FALSE(none.is_ok());
  EXPECT_NE(none.status().message().find("suites: smoke"), std::string::npos) << none.status().message();
}

TEST(BenchLayers, BatchOneVariantsDifferOnlyInN) {
  int pairs = 0;
  for (const Layer& l : all_layers()) {
    const size_t slash = l.id.find("/n1");
    if (slash == std::string::npos || !l.problem.is_plain_f32_nchw())
      continue; // the format twins ("R11/n1/f16") are BenchLayers.FormatTwinsDifferOnlyInTheirFormat's
    const Layer* parent = find_layer(l.id.substr(0, slash));
    if (parent == nullptr)
      continue;
    ProblemDesc a = parent->problem.resolved(), b = l.problem.resolved();
    EXPECT_EQ(b.n, 1) << l.id;
    b.n = a.n;
    EXPECT_EQ(ConvProblem::make(a)->name(), ConvProblem::make(b)->name()) << l.id << " vs " << parent->id;
    ++pairs;
  }
  EXPECT_GE(pairs, 10);
}

// LAYERS.md §3, copied: GFLOP to 3 decimals and MB (1e6 bytes) to 2, and the output size.
struct Published {
  const char* id;
  double gflop;
  double mb;
  std::vector<int64_t> out;
};

TEST(BenchLayers, FlopsAndBytesAgreeWithLayersMd) {
  const Published rows[] = {
      {"R01/n1", 0.236, 3.85, {112, 112}}, {"R01", 7.553, 122.07, {112, 112}},  {"R03", 7.399, 51.53, {56, 56}},
      {"R09/n1", 0.206, 5.34, {28, 28}},   {"R17/n1", 0.231, 2.76, {14, 14}},   {"R23", 7.399, 15.86, {7, 7}},
      {"V2", 59.190, 411.19, {224, 224}},  {"M02", 0.173, 192.68, {56, 56}},    {"M07/n1", 0.001, 0.62, {14, 14}},
      {"X1", 0.925, 102.78, {56, 56}},     {"D1", 41.108, 45.12, {33, 33}},     {"D3", 82.217, 99.16, {33, 33}},
      {"W1", 0.262, 52.94, {3199}},        {"W2", 20.120, 81.76, {1599}},       {"C1", 177.570, 309.17, {16, 56, 56}},
      {"T2", 8.590, 20.97, {8, 8}},        {"T5", 0.805, 39.86, {64, 64}},      {"U2", 8.590, 201.46, {256, 256}},
      {"G1", 2.416, 25.46, {256, 256}},    {"S1", 4.703, 124.43, {1080, 1920}}, {"S2", 2.090, 59.92, {1080, 1920}},
      {"T1", 0.210, 7.52, {4, 4}},         {"G2", 38.655, 105.38, {256, 256}},  {"E1", 1.194, 37.80, {360, 640}},
      {"W3", 18.874, 76.87, {1500}},
  };
  for (const Published& r : rows) {
    const Layer* l = find_layer(r.id);
    ASSERT_NE(l, nullptr) << r.id;
    const ConvProblem& p = l->problem;
    EXPECT_NEAR(p.flops() * 1e-9, r.gflop, 0.0005 + 1e-12) << r.id;
    EXPECT_NEAR(static_cast<double>(p.min_bytes()) * 1e-6, r.mb, 0.005 + 1e-12) << r.id;
    std::vector<int64_t> out;
    for (int j = 0; j < p.rank(); ++j)
      out.push_back(p.out(j));
    EXPECT_EQ(out, r.out) << r.id;
  }
}

TEST(BenchLayers, PoolingRowsUseTheirFlags) {
  const Layer* googlenet = find_layer("P2/n1");
  ASSERT_NE(googlenet, nullptr);
  EXPECT_TRUE(googlenet->problem.ceil_mode());
  EXPECT_EQ(googlenet->problem.out(0), 56); // ceil((112 - 3) / 2) + 1; floor mode would give 55
  const Layer* inception = find_layer("P3/n1");
  ASSERT_NE(inception, nullptr);
  EXPECT_TRUE(inception->problem.count_include_pad());
  EXPECT_EQ(inception->problem.out(1), 35);
  // Pooling's nominal work: one op per window tap, N*C*prod(k)*prod(out).
  EXPECT_DOUBLE_EQ(inception->problem.flops(), 1.0 * 192 * 9 * 35 * 35);
}

// The dtype and layout columns (issue 12): the 16-column form is f32 NCHW; "R03/f16"-style rows are twins of
// the row before the last '/' that differ in dtype and layout only; core_fmt has two twins of each core row.
TEST(BenchLayers, FormatTwinsDifferOnlyInTheirFormat) {
  Result<Layer> legacy = parse_layer_row("X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0,", 1);
  ASSERT_TRUE(legacy.is_ok()) << legacy.status().to_string();
  EXPECT_TRUE(legacy->problem.is_plain_f32_nchw());
  Result<Layer> f =
      parse_layer_row("X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0, , bf16, NHWC", 1);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->problem.dtype(TensorId::kX), DataType::kBF16);
  EXPECT_EQ(f->problem.dtype(TensorId::kY), DataType::kBF16);
  EXPECT_EQ(f->problem.layout(), Layout::kNHWC);
  EXPECT_EQ(f->problem.w_layout(), Layout::kNHWC);
  Result<Layer> pool =
      parse_layer_row("P, net, l, smoke, max_pool, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0, ceil, f16, "
                      "nhwc",
                      1);
  ASSERT_TRUE(pool.is_ok()) << pool.status().to_string();
  EXPECT_TRUE(pool->problem.ceil_mode());
  EXPECT_EQ(pool->problem.layout(), Layout::kNHWC);
  // Every row of the file that names no format is f32 NCHW, as before the columns.
  int twins = 0;
  for (const Layer& l : all_layers()) {
    const size_t slash = l.id.rfind('/');
    const std::string suffix = slash == std::string::npos ? "" : l.id.substr(slash + 1);
    if (suffix != "f16" && suffix != "bf16") {
      EXPECT_TRUE(l.problem.is_plain_f32_nchw()) << l.id;
      continue;
    }
    const Layer* parent = find_layer(l.id.substr(0, slash));
    ASSERT_NE(parent, nullptr) << l.id;
    EXPECT_EQ(l.problem.dtype(TensorId::kX), suffix == "f16" ? DataType::kF16 : DataType::kBF16) << l.id;
    EXPECT_EQ(l.problem.layout(), Layout::kNHWC) << l.id;
    ProblemDesc a = parent->problem.resolved(), b = l.problem.resolved();
    b.dtype = a.dtype;
    b.layout = a.layout;
    b.w_layout = a.w_layout;
    EXPECT_EQ(ConvProblem::make(a)->name(), ConvProblem::make(b)->name()) << l.id << " vs " << parent->id;
    ++twins;
  }
  Result<std::vector<Layer>> core = load_suite(default_layers_path(), "core");
  Result<std::vector<Layer>> core_fmt = load_suite(default_layers_path(), "core_fmt");
  ASSERT_TRUE(core.is_ok() && core_fmt.is_ok());
  EXPECT_EQ(core_fmt->size(), 2 * core->size());
  for (const Layer& l : *core)
    for (const char* t : {"/f16", "/bf16"}) {
      const Layer* twin = find_layer(l.id + t);
      ASSERT_NE(twin, nullptr) << l.id << t;
      EXPECT_TRUE(twin->in_suite("core_fmt")) << twin->id;
    }
  EXPECT_GE(twins, 64);
  // A few twins are cheap enough for the default suite on the CPU, and smoke_fmt has tiny ones for tests.
  int in_default = 0;
  for (const Layer& l : all_layers())
    in_default += l.in_suite("default") && !l.problem.is_plain_f32_nchw() ? 1 : 0;
  EXPECT_GE(in_default, 1);
  EXPECT_LE(in_default, 3);
  Result<std::vector<Layer>> smoke_fmt = load_suite(default_layers_path(), "smoke_fmt");
  ASSERT_TRUE(smoke_fmt.is_ok());
  for (const Layer& l : *smoke_fmt) {
    EXPECT_FALSE(l.problem.is_plain_f32_nchw()) << l.id;
    EXPECT_LT(l.problem.flops(), 1e6) << l.id;
  }
}

TEST(BenchLayers, BadRowsNameTheColumn) {
  const std::string good = "X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0,";
  ASSERT_TRUE(parse_layer_row(good, 1).is_ok()) << parse_layer_row(good, 1).status().to_string();
  struct Bad {
    std::string row;
    std::string needle;
  };
  const Bad bad[] = {
      {"X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1", "expected 18 comma-separated columns"},
      {"X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0,, f16", "found 17"},
      {"X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0,, f64, NHWC", "column dtype: 'f64'"},
      {"X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0,, f16, HWCN", "column layout: 'HWCN'"},
      {"X, net, l, smoke, convolve, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0,", "column op"},
      {"X, net, l, smoke, conv, one, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0,", "column n"},
      {"X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3x3, 1x1, 1x1, 1x1, 0x0,", "column kernel"},
      {"X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1:2:3x1, 1x1, 0x0,", "column pad"},
      {"X, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1x1, 1x1, 0x0, fast", "column flags"},
      // The arithmetic's own message comes through: k' = 7 > 2 + 1 + 1.
      {"X, net, l, smoke, conv, 1, 2, 2, 1, 2x5, 3x3, 1x1, 1x1, 3x1, 0x0,", "layer X:"},
  };
  for (const Bad& b : bad) {
    Result<Layer> r = parse_layer_row(b.row, 7);
    ASSERT_FALSE(r.is_ok()) << b.row;
    EXPECT_NE(r.status().message().find(b.needle), std::string::npos) << r.status().message();
  }
  Result<Layer> asym = parse_layer_row("A, n, l, s, conv, 1, 1, 1, 1, 6x6, 3x3, 2x2, 0:1x1, 1x1, 0x0,", 1);
  ASSERT_TRUE(asym.is_ok()) << asym.status().to_string();
  EXPECT_EQ(asym->problem.axis(0).p_lo, 0);
  EXPECT_EQ(asym->problem.axis(0).p_hi, 1);
  EXPECT_EQ(asym->problem.out(0), 3); // floor((6 + 1 - 3) / 2) + 1
}

TEST(BenchReference, HandComputedConvAndTransposed) {
  // 1-D conv, i=4, k=2, s=1: y = [1*1+2*10, 2+30, 3+40] with w = [1, 10], bias 0.5.
  ProblemDesc d;
  d.rank = 1;
  d.input[0] = 4;
  d.kernel[0] = 2;
  ConvProblem p = *ConvProblem::make(d);
  const float x[4] = {1, 2, 3, 4}, w[2] = {1, 10}, b[1] = {0.5f};
  EXPECT_EQ(oracle::reference(p, x, w, b), (std::vector<double>{21.5, 32.5, 43.5}));
  // Its transpose (s=2): each x[i] scatters w into y[2i + r]: y = [1, 10, 2, 20, 3, 30, 4, 40] (+0.5).
  d.op = Op::kConvTranspose;
  d.stride[0] = 2;
  ConvProblem t = *ConvProblem::make(d);
  ASSERT_EQ(t.out(0), 8);
  EXPECT_EQ(oracle::reference(t, x, w, b), (std::vector<double>{1.5, 10.5, 2.5, 20.5, 3.5, 30.5, 4.5, 40.5}));
}

TEST(BenchReference, CheckCatchesWrongAndUnwrittenElements) {
  const Layer* l = find_layer("S01");
  ASSERT_NE(l, nullptr);
  const ConvProblem& p = l->problem;
  std::vector<float> x(static_cast<size_t>(p.x_elements())), w(static_cast<size_t>(p.w_elements()));
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.25f;
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<float>(static_cast<int>(i % 5) - 2) * 0.5f + 0.1f;
  const std::vector<double> want = oracle::reference(p, x.data(), w.data(), nullptr);
  const std::vector<double> mag = oracle::reference_magnitude(p, x.data(), w.data(), nullptr);
  std::vector<float> got(want.begin(), want.end());
  EXPECT_TRUE(check_output(p, got.data(), want, mag).ok);
  std::vector<float> off = got;
  off[17] += 1e-2f;
  CheckResult c = check_output(p, off.data(), want, mag);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.bad, 1);
  EXPECT_NE(c.message.find("flat index 17"), std::string::npos) << c.message;
  std::vector<float> nan = got;
  nan[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(check_output(p, nan.data(), want, mag).ok);
}

TEST(BenchHarness, SmokeSuiteChecksThenTimesOnTheCpu) {
  Result<std::vector<Layer>> smoke = load_suite(default_layers_path(), "smoke");
  ASSERT_TRUE(smoke.is_ok());
  Options o;
  o.warmup = 1;
  o.reps = 3;
  std::vector<CaseResult> results;
  int timed = 0;
  for (const Layer& l : *smoke) {
    Result<std::unique_ptr<LayerBench>> lb = LayerBench::create(l, Device::kCpu, o);
    ASSERT_TRUE(lb.is_ok()) << lb.status().to_string();
    const std::vector<std::string> names = (*lb)->implementations();
    EXPECT_EQ(names, implementation_names(l.problem, Device::kCpu, true));
    for (size_t i = 0; i < names.size(); ++i) {
      CaseResult r = (*lb)->run(i);
      if (r.status.rfind("not_supported", 0) == 0)
        continue;
      EXPECT_TRUE(r.checked) << l.id << " " << names[i] << ": " << r.status;
      EXPECT_TRUE(r.correct) << l.id << " " << names[i] << ": " << r.status;
      if (!r.correct)
        continue;
      EXPECT_EQ(r.reps, 3);
      EXPECT_GT(r.median_s, 0);
      EXPECT_LE(r.p10_s, r.median_s);
      EXPECT_LE(r.median_s, r.p90_s);
      EXPECT_DOUBLE_EQ(r.flops, l.problem.flops());
      ++timed;
      results.push_back(r);
    }
  }
  // At least one convarith CPU row runs each smoke layer.
  EXPECT_GE(timed, static_cast<int>(smoke->size()));
  const Environment env = environment(Device::kCpu);
  const std::vector<Summary> s = summarize(*smoke, results, env);
  ASSERT_EQ(s.size(), smoke->size());
  for (const Summary& row : s)
    EXPECT_NE(row.best, nullptr) << row.layer_id;
  const std::string json = results_json(env, *smoke, results, "test", "smoke");
  for (const char* key : {"\"environment\"", "\"git_sha\"", "\"cudnn\"", "\"onednn\"", "\"median_s\"", "\"S03\""})
    EXPECT_NE(json.find(key), std::string::npos) << key;
  const std::string table = results_table(*smoke, s, env, Device::kCpu);
  EXPECT_NE(table.find("geomean"), std::string::npos) << table;
}

TEST(BenchHarness, InterleavedTimingChecksEveryImplementationAndTimesThemAlike) {
  const Layer* l = find_layer("S03"); // transposed: the CPU row and oneDNN's deconvolution
  ASSERT_NE(l, nullptr);
  Options o;
  o.warmup = 1;
  o.reps = 4;
  Result<std::unique_ptr<LayerBench>> lb = LayerBench::create(*l, Device::kCpu, o);
  ASSERT_TRUE(lb.is_ok()) << lb.status().to_string();
  const std::vector<CaseResult> results = (*lb)->run_interleaved();
  ASSERT_EQ(results.size(), (*lb)->implementations().size());
  int timed = 0;
  for (const CaseResult& r : results) {
    if (r.status.rfind("not_supported", 0) == 0)
      continue;
    EXPECT_TRUE(r.correct) << r.algorithm << ": " << r.status;
    EXPECT_EQ(r.reps, 4) << r.algorithm; // every implementation got the same number of turns
    EXPECT_GT(r.median_s, 0) << r.algorithm;
    ++timed;
  }
  EXPECT_GE(timed, 1);
}

TEST(BenchHarness, StatisticsAndAdaptiveReps) {
  EXPECT_DOUBLE_EQ(median({5, 1, 3}), 3);
  EXPECT_DOUBLE_EQ(median({4, 1, 3, 2}), 2.5);
  EXPECT_DOUBLE_EQ(percentile({0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100}, 0.1), 10);
  EXPECT_NEAR(geometric_mean({2, 8}), 4, 1e-12);
  EXPECT_EQ(geometric_mean({}), 0);
  Options o;
  o.target_seconds = 1;
  EXPECT_EQ(choose_reps(o, 0.01), 100);
  EXPECT_EQ(choose_reps(o, 10), o.min_reps);
  EXPECT_EQ(choose_reps(o, 1e-9), o.max_reps);
  o.reps = 7;
  EXPECT_EQ(choose_reps(o, 0.01), 7);
}

// The environment block names the CPU and the ISA the CPU rows ran (issue 17): a result from another machine
// must say which CPU family and which micro-kernel its ratios come from.
TEST(BenchEnvironment, NamesTheCpuModelFlagsAndTheIsaOfTheCpuRows) {
  const std::string intel = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8481C\n"
                            "flags\t\t: fpu sse2 avx2 fma avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 "
                            "amx_tile amx_int8\nprocessor\t: 1\nflags\t\t: fpu\n";
  EXPECT_EQ(cpu_isa_flags(intel), "avx2 fma avx512f avx512_bf16 avx512_fp16 amx_tile amx_bf16 amx_int8");
  const std::string amd = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu avx avx2 fma avx512fxyz amx_tilex\n";
  EXPECT_EQ(cpu_isa_flags(amd), "avx2 fma"); // whole words only
  EXPECT_EQ(cpu_isa_flags("flagsy\t: avx2 fma\nFeatures\t: neon asimd\n").rfind("none of avx2 fma avx512f", 0), 0u);

  const Environment env = environment(Device::kCpu);
  const detail::GemmKernel& g = detail::gemm_kernel();
  EXPECT_EQ(env.cpu_isa,
            std::string(g.isa) + " (" + std::to_string(g.mr) + "x" + std::to_string(g.nr) + " fp32 GEMM tile)");
  EXPECT_FALSE(env.cpu_model.empty());
  EXPECT_EQ(env.host.rfind(env.cpu_model + ", ", 0), 0u) << env.host;
  // The ISA convarith chose is one the CPU's flags allow.
  if (std::string(g.isa) == "avx512") {
    EXPECT_NE((" " + env.cpu_flags + " ").find(" avx512f "), std::string::npos) << env.cpu_flags;
  }
  if (std::string(g.isa) == "avx2") {
    EXPECT_NE((" " + env.cpu_flags + " ").find(" avx2 fma "), std::string::npos) << env.cpu_flags;
  }
#if defined(CONVARITH_HAVE_ONEDNN)
  EXPECT_EQ(env.onednn_isa, onednn::cpu_isa());
#else
  EXPECT_EQ(env.onednn_isa, "");
#endif
  const std::string json = results_json(env, {}, {}, "test", "smoke");
  for (const std::string& kv : {"\"cpu_model\": \"" + env.cpu_model + "\"", "\"cpu_flags\": \"" + env.cpu_flags + "\"",
                                "\"cpu_isa\": \"" + env.cpu_isa + "\"", "\"onednn_isa\": \"" + env.onednn_isa + "\""})
    EXPECT_NE(json.find(kv), std::string::npos) << kv << "\n" << json;
}

} // namespace
} // namespace convarith::bench
