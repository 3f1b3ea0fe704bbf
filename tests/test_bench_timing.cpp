// tests/test_bench_timing.cpp — the GPU timing protocol's pure pieces, on the CPU (bench/harness.cpp):
// the batch per sample from the warm-up median, the buffer rotation from the device's L2 size, the
// gated sample's order of operations against a fake device (the gate is held while the batch is
// enqueued and always released), which peer results fail the bench, the host-time field of the
// CPU path, and `convarith bench --device auto` saying which device it picked.
// Linked with convarith_bench_lib and convarith_cli_lib by bench/CMakeLists.txt.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "bench.hpp"
#include "convarith/convarith.hpp"

namespace convarith::cli {
int bench_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
} // namespace convarith::cli

namespace convarith::bench {
namespace {

TEST(BenchTiming, BatchFromTheWarmupMedian) {
  EXPECT_EQ(choose_batch(1e-6), 20);
  EXPECT_EQ(choose_batch(0.5e-6), 40);
  EXPECT_EQ(choose_batch(3e-6), 7); // ceil(20 / 3)
  EXPECT_EQ(choose_batch(0.1e-6), 64);
  EXPECT_EQ(choose_batch(20e-6), 1);
  EXPECT_EQ(choose_batch(1e-3), 1);
  EXPECT_EQ(choose_batch(0), 1);
  EXPECT_EQ(choose_batch(-1), 1); // a failed warm-up
  EXPECT_EQ(choose_batch(std::numeric_limits<double>::quiet_NaN()), 1);
}

// Equal neighbours interpolate to themselves: 3.176e-6 * 0.8 + 3.176e-6 * 0.2 rounds above 3.176e-6,
// which put p10 above the median of three runs.
TEST(BenchTiming, PercentilesAreMonotone) {
  const std::vector<double> three{3.176e-06, 3.176e-06, 3.5e-06};
  EXPECT_LE(percentile(three, 0.1), median(three));
  EXPECT_EQ(percentile(three, 0.1), 3.176e-06);
  EXPECT_LE(median(three), percentile(three, 0.9));
  for (double v = 1e-7; v < 1e-3; v *= 1.37) {
    const std::vector<double> same{v, v, v * 1.5};
    ASSERT_LE(percentile(same, 0.1), percentile(same, 0.5)) << v;
  }
}

TEST(BenchTiming, RotationFollowsTheL2Size) {
  // H100 (50 MB): a 10 MB problem rotates through ceil(4 * 50 / 10) = 20 sets.
  EXPECT_EQ(rotation_count(10e6, 50e6, true), 20);
  // A 60 MB L2 (not the fixed 50 MB) gives 24.
  EXPECT_EQ(rotation_count(10e6, 60e6, true), 24);
  // A100 (40 MB): 16.
  EXPECT_EQ(rotation_count(10e6, 40e6, true), 16);
  EXPECT_EQ(rotation_count(1e6, 50e6, true), 64);  // capped
  EXPECT_EQ(rotation_count(100e6, 50e6, true), 1); // >= 2 x L2: no rotation needed
  EXPECT_EQ(rotation_count(99e6, 50e6, true), 3);
  EXPECT_EQ(rotation_count(10e6, 50e6, false), 1);
  EXPECT_EQ(rotation_count(0, 50e6, true), 1);
  // The query failed: the fallback.
  EXPECT_EQ(rotation_count(10e6, 0, true), rotation_count(10e6, kFallbackL2Bytes, true));
}

// Records the calls and checks the gate is held around the enqueues.
class FakeDevice : public SampleDevice {
public:
  std::vector<std::string> calls;
  bool held = false;
  int fail_enqueue_at = -1; // run index whose enqueue fails
  bool fail_hold = false;
  bool gate_gives_up = false;
  double seconds = 30e-6;
  int enqueued_while_open = 0;

  Status hold() override {
    calls.push_back("hold");
    if (fail_hold)
      return device_error("gate launch failed");
    held = true;
    return Status::ok();
  }
  Status record_start() override {
    calls.push_back(held ? "start" : "start(open)");
    return Status::ok();
  }
  Status enqueue(int run) override {
    calls.push_back("run" + std::to_string(run));
    if (!held)
      ++enqueued_while_open;
    if (run == fail_enqueue_at)
      return invalid_argument("run failed");
    return Status::ok();
  }
  Status record_stop() override {
    calls.push_back(held ? "stop" : "stop(open)");
    return Status::ok();
  }
  void release() override {
    calls.push_back("release");
    held = false;
  }
  Result<double> device_seconds() override {
    calls.push_back("wait");
    if (gate_gives_up)
      return device_error("the timing gate gave up");
    return seconds;
  }
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v)
    s += (s.empty() ? "" : " ") + x;
  return s;
}

TEST(BenchTiming, GatedSampleHoldsTheStreamWhileEnqueuing) {
  FakeDevice dev;
  Result<Sample> s = gated_sample(dev, 3);
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ(joined(dev.calls), "hold start run0 run1 run2 stop release wait");
  EXPECT_EQ(dev.enqueued_while_open, 0);
  EXPECT_DOUBLE_EQ(s->device_s, 10e-6); // per run
  EXPECT_GE(s->host_s, 0.0);
  EXPECT_TRUE(std::isfinite(s->host_s));
}

TEST(BenchTiming, GatedSampleReleasesTheGateOnEveryFailure) {
  FakeDevice dev;
  dev.fail_enqueue_at = 1;
  Result<Sample> s = gated_sample(dev, 4);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(joined(dev.calls), "hold start run0 run1 release");

  FakeDevice gave_up;
  gave_up.gate_gives_up = true;
  s = gated_sample(gave_up, 2);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kDeviceError);
  EXPECT_EQ(joined(gave_up.calls), "hold start run0 run1 stop release wait");

  FakeDevice no_gate;
  no_gate.fail_hold = true;
  s = gated_sample(no_gate, 2);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(joined(no_gate.calls), "hold"); // nothing enqueued, nothing to release

  FakeDevice zero;
  s = gated_sample(zero, 0);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(zero.calls.empty());
}

CaseResult peer(const std::string& status, int reps, bool correct) {
  CaseResult r;
  r.impl = "cudnn";
  r.status = status;
  r.reps = reps;
  r.correct = correct;
  r.checked = correct;
  return r;
}

TEST(BenchTiming, PeerNaOnlyForTheDescriptorStepsRefusal) {
  EXPECT_FALSE(peer_failed(peer("ok", 10, true)));
  EXPECT_FALSE(peer_failed(peer("not_supported: kNotSupported: cuDNN: axis 0 has asymmetric padding", 0, false)));
  EXPECT_TRUE(peer_failed(peer("error: kDeviceError: cuDNN: no FMA algorithm succeeded", 0, false)));
  EXPECT_TRUE(
      peer_failed(peer("error: kDeviceError: cuDNN cudnnCreate: CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED", 0, false)));
  EXPECT_TRUE(peer_failed(peer("wrong: 3 elements outside the bound", 0, false)));
  EXPECT_TRUE(peer_failed(peer("ok", 0, true))); // checked but never timed
  CaseResult ours = peer("error: kDeviceError: x", 0, false);
  ours.impl = "convarith";
  EXPECT_FALSE(peer_failed(ours)); // not a peer (the bench fails on it through its own check)
}

Layer tiny_layer() {
  ProblemDesc d;
  d.c = 2;
  d.k = 3;
  d.input = {6, 6, 1};
  d.kernel = {3, 3, 1};
  Result<ConvProblem> p = ConvProblem::make(d);
  EXPECT_TRUE(p.is_ok());
  Layer l;
  l.id = "T1";
  l.network = "test";
  l.layer = "3x3";
  l.problem = *p;
  return l;
}

// The CPU path: synchronous runs, so the host time is the run itself, and no sample is gated.
TEST(BenchTiming, CpuCasesReportHostTimeAndNoGate) {
  Options o;
  o.reps = 3;
  o.warmup = 1;
  o.with_peer = false;
  Result<std::unique_ptr<LayerBench>> lb = LayerBench::create(tiny_layer(), Device::kCpu, o);
  ASSERT_TRUE(lb.is_ok()) << lb.status().to_string();
  const std::vector<CaseResult> results = (*lb)->run_interleaved();
  int timed = 0;
  for (const CaseResult& r : results) {
    if (!r.timed())
      continue;
    ++timed;
    EXPECT_EQ(r.reps, 3) << r.algorithm;
    EXPECT_GT(r.host_median_s, 0.0) << r.algorithm;
    EXPECT_FALSE(r.gated) << r.algorithm;
    EXPECT_EQ(r.rotation, 1) << r.algorithm;
  }
  EXPECT_GT(timed, 0);
  const std::string json = results_json(Environment{}, {tiny_layer()}, results, "test", "(test)");
  EXPECT_NE(json.find("\"host_median_s\": "), std::string::npos);
  EXPECT_NE(json.find("\"gated\": false"), std::string::npos);
  EXPECT_NE(json.find("\"device_choice\": "), std::string::npos);
}

// --device auto says which device it picked, on stderr and in the JSON.
TEST(BenchTiming, DeviceAutoSaysWhichDeviceItPicked) {
  const std::string json = ::testing::TempDir() + "convarith_bench_auto.json";
  std::remove(json.c_str());
  std::ostringstream out, err;
  const int rc = cli::bench_main({"--device", "auto", "--reps", "1", "--warmup", "0", "--no-peer", "--json", json,
                                  "--layer", "conv", "--x-shape", "1,2,6,6", "--w-shape", "3,2,3,3"},
                                 out, err);
  ASSERT_EQ(rc, 0) << out.str() << err.str();
  const std::string picked = cuda_device_count() > 0 ? "auto: cuda" : "auto: cpu (no usable CUDA device: ";
  EXPECT_NE(err.str().find("--device " + picked), std::string::npos) << err.str();
  std::ifstream f(json);
  std::stringstream body;
  body << f.rdbuf();
  EXPECT_NE(body.str().find("\"device_choice\": \"" + picked), std::string::npos) << body.str();
}

} // namespace
} // namespace convarith::bench
