// bench/bench_main.cpp — convarith_bench: Google Benchmark over the real-layer suite.
//
//   convarith_bench [--suite=default|full|smoke] [--device=cpu|cuda|auto] [--layers=FILE]
//                   [--warmup=N] [--no-peer] [Google Benchmark flags, e.g. --benchmark_out=r.json
//                   --benchmark_out_format=json --benchmark_filter=R03 --benchmark_repetitions=3]
//
// One benchmark per (layer x implementation): every algorithm_table() row on the device that
// runs the layer's op, plus the peer (cuDNN's fastest FMA algorithm on the GPU, oneDNN on the
// CPU). Each case is checked against the fp64 reference before it is timed (a wrong result is a
// skipped benchmark with the error, never a time), then warmed up (>= 10 runs), then timed one
// run per iteration with UseManualTime (GPU: CUDA events). Counters: FLOP/s and B/s from the
// nominal FLOPs / compulsory bytes of ConvProblem, the median/p10/p90 of the iterations, % of the
// device roofline (GPU only), setup cost (plan creation; cuDNN: descriptors + Find) and error.
// The environment block goes into Google Benchmark's context (printed and in --benchmark_out JSON).
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench.hpp"

#if defined(CONVARITH_HAVE_CUDNN)
#include "cudnn/cudnn_runner.hpp"
#endif

namespace cb = convarith::bench;

namespace {

struct Config {
  std::string suite = "default";
  std::string layers_path = cb::default_layers_path();
  std::string device = "auto";
  cb::Options options;
};

Config g_config;
cb::Environment g_env;
convarith::Device g_device = convarith::Device::kCpu;
std::vector<cb::Layer> g_layers;

// One LayerBench alive at a time (benchmarks run in registration order, layer by layer), so
// memory and the reference are paid once per layer.
std::unique_ptr<cb::LayerBench> g_current;
size_t g_current_index = static_cast<size_t>(-1);
std::string g_current_error;

cb::LayerBench* layer_bench(size_t index) {
  if (index != g_current_index) {
    g_current.reset();
    g_current_error.clear();
    g_current_index = index;
    auto made = cb::LayerBench::create(g_layers[index], g_device, g_config.options);
    if (made) {
      g_current = std::move(made).value();
    } else {
      g_current_error = made.status().to_string();
    }
  }
  return g_current.get();
}

void run_case(benchmark::State& state, size_t layer_index, size_t impl_index) {
  cb::LayerBench* lb = layer_bench(layer_index);
  if (lb == nullptr) {
    state.SkipWithError(g_current_error.c_str());
    return;
  }
  const cb::CaseResult c = lb->check(impl_index);
  if (!c.correct) {
    state.SkipWithError(c.status.c_str());
    if (c.checked)
      std::fprintf(stderr, "WRONG RESULT: %s %s: %s\n", c.layer_id.c_str(), c.algorithm.c_str(), c.status.c_str());
    return;
  }
  lb->warm(impl_index, g_config.options.warmup);
  std::vector<double> times;
  for (auto _ : state) {
    const double t = lb->time_once(impl_index);
    if (t < 0) {
      state.SkipWithError("a timed run failed");
      return;
    }
    state.SetIterationTime(t);
    times.push_back(t);
  }
  if (times.empty())
    return;
  const double med = cb::median(times);
  state.SetLabel(c.algorithm);
  state.counters["median_us"] = med * 1e6;
  state.counters["p10_us"] = cb::percentile(times, 0.1) * 1e6;
  state.counters["p90_us"] = cb::percentile(times, 0.9) * 1e6;
  state.counters["FLOP/s"] = benchmark::Counter(c.flops / med);
  state.counters["B/s"] = benchmark::Counter(c.bytes / med);
  state.counters["setup_ms"] = c.setup_s * 1e3;
  state.counters["max_rel_err"] = c.max_rel_err;
  state.counters["rotation"] = c.rotation;
  if (g_env.peak_flops > 0 && g_env.peak_bytes_per_s > 0)
    state.counters["roofline_pct"] =
        100.0 * std::max(c.flops / g_env.peak_flops, c.bytes / g_env.peak_bytes_per_s) / med;
}

// Removes our flags from argv (Google Benchmark rejects unknown ones). Returns false on a bad flag.
bool parse_own_flags(int* argc, char** argv) {
  int out = 1;
  for (int i = 1; i < *argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      const size_t n = std::strlen(name);
      return a.compare(0, n, name) == 0 ? argv[i] + n : nullptr;
    };
    if (const char* v = value("--suite=")) {
      g_config.suite = v;
    } else if (const char* v2 = value("--layers=")) {
      g_config.layers_path = v2;
    } else if (const char* v3 = value("--device=")) {
      g_config.device = v3;
    } else if (const char* v4 = value("--warmup=")) {
      g_config.options.warmup = std::atoi(v4);
      if (g_config.options.warmup < 0)
        return false;
    } else if (a == "--no-peer") {
      g_config.options.with_peer = false;
    } else {
      argv[out++] = argv[i];
    }
  }
  *argc = out;
  return true;
}

} // namespace

int main(int argc, char** argv) {
#if defined(CONVARITH_HAVE_CUDNN)
  // Before anything creates a cuDNN / cuBLAS handle: fp32 must stay fp32 (no TF32).
  convarith::cudnn::disable_tf32();
#endif
  if (!parse_own_flags(&argc, argv)) {
    std::fprintf(stderr, "convarith_bench: bad flag value\n");
    return 2;
  }
  // The library's one meaning of --device (auto: a usable CUDA device, else the CPU, said on stderr).
  const auto chosen = convarith::choose_device(g_config.device);
  if (!chosen) {
    std::fprintf(stderr, "convarith_bench: %s\n", chosen.status().to_string().c_str());
    return chosen.status().code() == convarith::StatusCode::kDeviceError ? 1 : 2;
  }
  g_device = chosen->device;
  if (!chosen->why.empty())
    std::fprintf(stderr, "convarith_bench: --device %s\n", chosen->why.c_str());
  auto layers = cb::load_suite(g_config.layers_path, g_config.suite);
  if (!layers) {
    std::fprintf(stderr, "convarith_bench: %s\n", layers.status().to_string().c_str());
    return 2;
  }
  g_layers = std::move(layers).value();
  g_env = cb::environment(g_device);
  benchmark::AddCustomContext("convarith_device", convarith::device_name(g_device));
  benchmark::AddCustomContext("convarith_suite", g_config.suite);
  benchmark::AddCustomContext("convarith_date", g_env.date_utc);
  benchmark::AddCustomContext("convarith_git_sha", g_env.git_sha);
  benchmark::AddCustomContext("convarith_host", g_env.host);
  benchmark::AddCustomContext("convarith_load_average", g_env.load_average.empty() ? "unknown" : g_env.load_average);
  benchmark::AddCustomContext("convarith_thread_env", g_env.thread_env.empty() ? "none" : g_env.thread_env);
  benchmark::AddCustomContext("convarith_gpu", g_env.gpu.empty() ? "none" : g_env.gpu);
  benchmark::AddCustomContext("convarith_driver", g_env.driver.empty() ? "none" : g_env.driver);
  benchmark::AddCustomContext("convarith_cuda_runtime", g_env.cuda_runtime.empty() ? "none" : g_env.cuda_runtime);
  benchmark::AddCustomContext("convarith_cudnn", g_env.cudnn.empty() ? "none" : g_env.cudnn);
  benchmark::AddCustomContext("convarith_onednn", g_env.onednn.empty() ? "none" : g_env.onednn);
  benchmark::AddCustomContext("convarith_roofline", g_env.peak_note);
  benchmark::AddCustomContext("convarith_weights", cb::weights_note(g_config.options, g_device));

  for (size_t li = 0; li < g_layers.size(); ++li) {
    const cb::Layer& l = g_layers[li];
    const auto names = cb::implementation_names(l.problem, g_device, g_config.options.with_peer);
    for (size_t ii = 0; ii < names.size(); ++ii) {
      // Rows whose supports() refuses the layer are not registered (the table is what can run).
      if (names[ii].rfind("convarith:", 0) == 0) {
        if (!convarith::Plan::create(l.problem, g_device, names[ii].substr(10)).is_ok())
          continue;
      }
      const std::string name = l.id + "/" + names[ii];
      benchmark::RegisterBenchmark(name.c_str(), [li, ii](benchmark::State& st) { run_case(st, li, ii); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv))
    return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_current.reset();
  return 0;
}
