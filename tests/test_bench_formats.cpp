// tests/test_bench_formats.cpp — the bench with tensor formats (issue 12 items 7-9): f16/bf16 NHWC layers are
// built, checked with the one dtype-aware rule (oracle::accept) and timed on the CPU; a peer that cannot run a
// layer's formats is n/a with the combination named (table and JSON), and that does not fail the bench.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../cli/storage.hpp"
#include "bench.hpp"
#include "reference/reference.hpp"

namespace convarith::bench {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(BenchFormats, SmokeFmtLayersAreCheckedAndTimedOnTheCpu) {
  Result<std::vector<Layer>> suite = load_suite(default_layers_path(), "smoke_fmt");
  ASSERT_TRUE(suite.is_ok()) << suite.status().to_string();
  Options o;
  o.warmup = 1;
  o.reps = 2;
  for (const Layer& l : *suite) {
    ASSERT_FALSE(l.problem.is_plain_f32_nchw()) << l.id;
    Result<std::unique_ptr<LayerBench>> lb = LayerBench::create(l, Device::kCpu, o);
    ASSERT_TRUE(lb.is_ok()) << lb.status().to_string();
    int correct = 0;
    for (const CaseResult& r : (*lb)->run_interleaved()) {
      if (r.is_peer()) {
        // The peer adapters take f32 NCHW only (for now): n/a, naming the format, and not a bench failure.
        if (!r.timed()) {
          EXPECT_TRUE(contains(r.status, "not_supported: ")) << r.status;
          EXPECT_FALSE(peer_failed(r)) << r.status;
        }
        continue;
      }
      EXPECT_FALSE(r.checked && !r.correct) << l.id << " " << r.algorithm << ": " << r.status;
      if (r.correct) {
        ++correct;
        EXPECT_GT(r.reps, 0) << l.id << " " << r.algorithm;
      }
    }
    EXPECT_GE(correct, 1) << l.id << ": no CPU row ran it";
  }
}

// An f16 output is within half an f16 ulp of the exact value, far outside the f32 bound: the bench's check
// must scale by the output's unit roundoff (oracle::accept), and still catch an error of a few ulps.
TEST(BenchFormats, CheckOutputUsesTheDtypeAwareRule) {
  ProblemDesc d;
  d.rank = 1;
  d.c = 4;
  d.k = 3;
  d.input[0] = 9;
  d.kernel[0] = 3;
  d.dtype = DataType::kF16;
  d.layout = Layout::kNHWC;
  const ConvProblem p = *ConvProblem::make(d);
  std::vector<float> xv(static_cast<size_t>(p.x_elements())), wv(static_cast<size_t>(p.w_elements()));
  for (size_t i = 0; i < xv.size(); ++i)
    xv[i] = 0.3f + 0.1f * static_cast<float>(i % 5);
  for (size_t i = 0; i < wv.size(); ++i)
    wv[i] = 0.7f - 0.05f * static_cast<float>(i % 4);
  const std::vector<unsigned char> x = cli::to_storage(xv.data(), xv.size(), DataType::kF16);
  const std::vector<unsigned char> w = cli::to_storage(wv.data(), wv.size(), DataType::kF16);
  oracle::Tensors t;
  t.x = x.data();
  t.w = w.data();
  const std::vector<double> want = oracle::reference(p, t), mag = oracle::reference_magnitude(p, t);
  std::vector<float> rounded(want.begin(), want.end());
  std::vector<unsigned char> got = cli::to_storage(rounded.data(), rounded.size(), DataType::kF16);
  CheckResult c = check_output(p, got.data(), want, mag);
  EXPECT_TRUE(c.ok) << c.message;
  bool rounding_shows = false; // at least one element is off by more than the f32 rule would allow
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(static_cast<double>(cli::f16_value(cli::f16_bits(rounded[i]))) - want[i]);
    rounding_shows = rounding_shows || err > 2 * std::ldexp(1.0, -23) * 14 * mag[i];
  }
  EXPECT_TRUE(rounding_shows) << "the test values do not tell the f16 rule from the f32 one";
  // Four f16 ulps off at element 5 fails, naming it.
  rounded[5] = static_cast<float>(want[5] + 4 * std::ldexp(std::fabs(want[5]), -10));
  got = cli::to_storage(rounded.data(), rounded.size(), DataType::kF16);
  c = check_output(p, got.data(), want, mag);
  EXPECT_FALSE(c.ok);
  EXPECT_EQ(c.bad, 1);
  EXPECT_TRUE(contains(c.message, "first at flat index 5")) << c.message;
  EXPECT_TRUE(contains(c.message, "f16 output")) << c.message;
}

TEST(BenchFormats, TableAndJsonSayThePeerCannotRunTheFormat) {
  Result<std::vector<Layer>> suite = load_suite(default_layers_path(), "smoke_fmt");
  ASSERT_TRUE(suite.is_ok());
  const std::vector<Layer> layers(suite->begin(), suite->begin() + 1);
  CaseResult ours;
  ours.layer_id = layers[0].id;
  ours.impl = "convarith";
  ours.algorithm = "cpu_gemm";
  ours.status = "ok";
  ours.checked = ours.correct = true;
  ours.reps = 3;
  ours.median_s = 1e-4;
  CaseResult peer;
  peer.layer_id = layers[0].id;
  peer.impl = "onednn";
  peer.algorithm = "onednn";
  peer.status = "not_supported: kNotSupported: peer cannot run f16 NHWC: the oneDNN adapter takes f32 NCHW without an "
                "epilogue";
  const std::vector<CaseResult> results = {ours, peer};
  Environment env;
  env.peak_note = "no peak";
  const std::vector<Summary> s = summarize(layers, results, env);
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].peer, nullptr);
  EXPECT_EQ(s[0].peer_na, &results[1]);
  const std::string table = results_table(layers, s, env, Device::kCpu);
  EXPECT_TRUE(contains(table, "| " + layers[0].id)) << table;
  EXPECT_TRUE(contains(table, "| f16 NHWC")) << table;
  EXPECT_TRUE(contains(table, "n/a (format)")) << table;
  EXPECT_TRUE(contains(table, "oneDNN cannot run " + layers[0].id + " (f16 NHWC)")) << table;
  EXPECT_FALSE(peer_failed(peer));
  const std::string json = results_json(env, layers, results, "convarith bench", "smoke_fmt");
  EXPECT_TRUE(contains(json, "\"dtype\": \"f16\", \"layout\": \"NHWC\"")) << json;
  EXPECT_TRUE(contains(json, "\"peer_cannot_run_format\": true")) << json;
  EXPECT_TRUE(contains(json, "peer cannot run f16 NHWC")) << json;
  // A peer n/a for another reason (the layer's geometry) is not a format note.
  peer.status = "not_supported: oneDNN deconvolution axis 0: output padding 1 ...";
  const std::vector<CaseResult> other = {ours, peer};
  const std::vector<Summary> s2 = summarize(layers, other, env);
  EXPECT_EQ(s2[0].peer_na, nullptr);
  EXPECT_FALSE(contains(results_table(layers, s2, env, Device::kCpu), "n/a (format)"));
}

} // namespace
} // namespace convarith::bench
