// bench/report.cpp — the environment block, the raw JSON and the summary table.
//
// % of roofline = max(flops / peak, bytes / bandwidth) / measured time. On the GPU the peak is the
// FP32 FMA spec from the SM count and clock (lanes per SM by compute capability) and the bandwidth
// is a device-to-device copy measured here; on the CPU neither is measured, so no % is printed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <sstream>
#include <thread>

#include "bench.hpp"
#include "cpu/gemm.hpp"
#include "row.hpp"

#if defined(CONVARITH_HAVE_CUDA)
#include <cuda_runtime_api.h>
#endif
#if defined(CONVARITH_HAVE_CUDNN)
#include "cudnn/cudnn_runner.hpp"
#endif
#if defined(CONVARITH_HAVE_ONEDNN)
#include "onednn/onednn_runner.hpp"
#endif

#ifndef CONVARITH_GIT_SHA
#define CONVARITH_GIT_SHA "unknown"
#endif

namespace convarith::bench {
namespace {

std::string read_cpuinfo() {
  std::ifstream in("/proc/cpuinfo");
  std::ostringstream o;
  o << in.rdbuf();
  return o.str();
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (static_cast<unsigned char>(ch) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", ch);
        out += buf;
      } else {
        out += ch;
      }
    }
  }
  return out;
}

std::string q(const std::string& s) {
  return "\"" + json_escape(s) + "\"";
}

std::string num(double v) {
  if (!std::isfinite(v))
    return "null";
  std::ostringstream o;
  o << std::setprecision(9) << v;
  return o.str();
}

// A peer n/a because it cannot run the layer's dtype, layout or epilogue (harness.cpp's peer_refusal names the
// format), as opposed to the layer's geometry.
bool peer_cannot_run_format(const CaseResult& r) {
  return r.is_peer() && r.status.rfind("not_supported", 0) == 0 &&
         r.status.find("peer cannot run ") != std::string::npos;
}

std::string format_cell(const ConvProblem& p) {
  std::string s = std::string(dtype_name(p.dtype(TensorId::kX))) + " " + layout_name(p.layout());
  if (!p.epilogue().is_identity())
    s += std::string(" ") + activation_name(p.epilogue().activation) + (p.epilogue().has_residual() ? "+z" : "");
  return s;
}

std::string join_axes(const ConvProblem& p, int64_t (*get)(const ConvProblem&, int)) {
  std::string s;
  for (int j = 0; j < p.rank(); ++j)
    s += (j ? "x" : "") + std::to_string(get(p, j));
  return s;
}

#if defined(CONVARITH_HAVE_CUDA)
// Best of a few device-to-device copies of 256 MiB (read + write bytes counted).
double measure_copy_bandwidth() {
  const size_t bytes = size_t(256) << 20;
  void *a = nullptr, *b = nullptr;
  if (cudaMalloc(&a, bytes) != cudaSuccess)
    return 0;
  if (cudaMalloc(&b, bytes) != cudaSuccess) {
    (void)cudaFree(a);
    return 0;
  }
  cudaEvent_t e0, e1;
  (void)cudaEventCreate(&e0);
  (void)cudaEventCreate(&e1);
  double best = 0;
  for (int i = 0; i < 6; ++i) {
    (void)cudaEventRecord(e0);
    (void)cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice);
    (void)cudaEventRecord(e1);
    (void)cudaEventSynchronize(e1);
    float ms = 0;
    (void)cudaEventElapsedTime(&ms, e0, e1);
    if (i > 0 && ms > 0)
      best = std::max(best, 2.0 * static_cast<double>(bytes) / (ms * 1e-3));
  }
  (void)cudaEventDestroy(e0);
  (void)cudaEventDestroy(e1);
  (void)cudaFree(a);
  (void)cudaFree(b);
  return best;
}

int fp32_lanes_per_sm(int major, int minor) {
  if (major == 8 && minor == 0)
    return 64; // A100
  if (major >= 8)
    return 128; // sm_86/89/90/100/120
  return 64;    // Volta, Turing
}
#endif

} // namespace

std::string cpu_isa_flags(const std::string& cpuinfo) {
  std::istringstream in(cpuinfo);
  std::string line;
  std::vector<std::string> have;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (line.rfind("flags", 0) != 0 || colon == std::string::npos ||
        line.find_first_not_of(" \t", 5) != colon) // "flags<blanks>:" exactly, not "flagsfoo:"
      continue;
    std::istringstream words(line.substr(colon + 1));
    for (std::string w; words >> w;)
      have.push_back(w);
    break;
  }
  std::string out;
  for (const char* f : kCpuIsaFlags)
    if (std::find(have.begin(), have.end(), f) != have.end())
      out += (out.empty() ? "" : " ") + std::string(f);
  if (!out.empty())
    return out;
  out = "none of";
  for (const char* f : kCpuIsaFlags)
    out += std::string(" ") + f;
  return out;
}

Environment environment(Device device) {
  Environment env;
  {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    env.date_utc = buf;
  }
  env.git_sha = CONVARITH_GIT_SHA;
  env.cpu_model = cpu_model_name();
  env.host = env.cpu_model + ", " + std::to_string(std::thread::hardware_concurrency()) + " logical cores";
  env.cpu_flags = cpu_isa_flags(read_cpuinfo());
  {
    const detail::GemmKernel& g = detail::gemm_kernel();
    env.cpu_isa = std::string(g.isa) + " (" + std::to_string(g.mr) + "x" + std::to_string(g.nr) + " fp32 GEMM tile)";
  }
  env.convarith = version_string();
  for (const char* var : {"OMP_NUM_THREADS", "OMP_WAIT_POLICY", "OMP_PROC_BIND", "DNNL_MAX_CPU_ISA"})
    if (const char* v = std::getenv(var); v != nullptr)
      env.thread_env += (env.thread_env.empty() ? "" : " ") + std::string(var) + "=" + v;
  {
    std::ifstream in("/proc/loadavg");
    double one = 0, five = 0, fifteen = 0;
    if (in >> one >> five >> fifteen) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f (1, 5, 15 min)", one, five, fifteen);
      env.load_average = buf;
    }
  }
#if defined(CONVARITH_HAVE_CUDA)
  int v = 0;
  if (cudaRuntimeGetVersion(&v) == cudaSuccess)
    env.cuda_runtime = std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
  if (cudaDriverGetVersion(&v) == cudaSuccess && v > 0)
    env.driver = "CUDA driver API " + std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
  if (device == Device::kCuda && cuda_device_count() > 0) {
    int dev = 0;
    cudaDeviceProp prop{};
    (void)cudaGetDevice(&dev);
    if (cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
      int clock_khz = 0;
      (void)cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev);
      env.gpu = std::string(prop.name) + ", " + std::to_string(prop.multiProcessorCount) + " SMs, sm_" +
                std::to_string(prop.major) + std::to_string(prop.minor) + ", " + std::to_string(clock_khz / 1000) +
                " MHz max SM clock, " + std::to_string(prop.totalGlobalMem >> 20) + " MiB";
      env.peak_flops = 2.0 * prop.multiProcessorCount * fp32_lanes_per_sm(prop.major, prop.minor) * clock_khz * 1e3;
      env.peak_bytes_per_s = measure_copy_bandwidth();
      env.peak_note = "FP32 FMA spec peak (SMs x lanes x 2 x max clock); bandwidth = measured D2D copy";
    }
  }
#endif
#if defined(CONVARITH_HAVE_CUDNN)
  env.cudnn = cudnn::version();
#endif
#if defined(CONVARITH_HAVE_ONEDNN)
  env.onednn = onednn::version();
  env.onednn_isa = onednn::cpu_isa();
#endif
  if (device == Device::kCpu)
    env.peak_note = "CPU peak not measured: no % of roofline on the CPU";
  if (device == Device::kEmulated)
    env.peak_note = "emulated: the CUDA kernels under the CPU kernel executor, no % of roofline";
  return env;
}

std::string weights_note(const Options& options, Device device) {
  if (device == Device::kCuda)
    return "per run: the GPU rows and cuDNN are handed w on every run";
  if (options.constant_weights)
    return "constant: prepared once at setup (ours PlanOptions::weights, oneDNN reordered once), not timed";
  return "per run: handed w on every run, each side converting/repacking it inside the timed run";
}

std::string results_json(const Environment& env, const std::vector<Layer>& layers,
                         const std::vector<CaseResult>& results, const std::string& command_line,
                         const std::string& suite) {
  std::ostringstream o;
  o << "{\n  \"schema\": \"convarith-bench-1\",\n  \"environment\": {\n";
  o << "    \"date\": " << q(env.date_utc) << ",\n    \"git_sha\": " << q(env.git_sha) << ",\n";
  o << "    \"host\": " << q(env.host) << ",\n    \"load_average\": " << q(env.load_average) << ",\n";
  o << "    \"cpu_model\": " << q(env.cpu_model) << ",\n    \"cpu_flags\": " << q(env.cpu_flags) << ",\n";
  o << "    \"cpu_isa\": " << q(env.cpu_isa) << ",\n    \"onednn_isa\": " << q(env.onednn_isa) << ",\n";
  o << "    \"thread_env\": " << q(env.thread_env) << ",\n";
  o << "    \"gpu\": " << q(env.gpu) << ",\n";
  o << "    \"driver\": " << q(env.driver) << ",\n    \"cuda_runtime\": " << q(env.cuda_runtime) << ",\n";
  o << "    \"cudnn\": " << q(env.cudnn) << ",\n    \"onednn\": " << q(env.onednn) << ",\n";
  o << "    \"convarith\": " << q(env.convarith) << ",\n    \"peak_flops\": " << num(env.peak_flops) << ",\n";
  o << "    \"peak_bytes_per_s\": " << num(env.peak_bytes_per_s) << ",\n    \"peak_note\": " << q(env.peak_note)
    << ",\n";
  o << "    \"device_choice\": " << q(env.device_choice) << ",\n";
  o << "    \"weights\": " << q(env.weights) << ",\n";
  o << "    \"command\": " << q(command_line) << ",\n    \"suite\": " << q(suite) << "\n  },\n";
  // The row auto / tune took for a layer ("" when none was marked: tune not asked, or no row runs it).
  const auto chosen = [&](const std::string& id, bool CaseResult::*flag) {
    for (const CaseResult& r : results)
      if (r.layer_id == id && !r.is_peer() && r.*flag)
        return r.algorithm;
    return std::string();
  };
  o << "  \"layers\": [\n";
  for (size_t i = 0; i < layers.size(); ++i) {
    const Layer& l = layers[i];
    const ConvProblem& p = l.problem;
    o << "    {\"id\": " << q(l.id) << ", \"network\": " << q(l.network) << ", \"layer\": " << q(l.layer)
      << ", \"op\": " << q(op_name(p.op())) << ", \"n\": " << p.n() << ", \"c\": " << p.c() << ", \"k\": " << p.k()
      << ", \"groups\": " << p.groups()
      << ", \"input\": " << q(join_axes(p, [](const ConvProblem& pp, int j) { return pp.axis(j).i; }))
      << ", \"kernel\": " << q(join_axes(p, [](const ConvProblem& pp, int j) { return pp.axis(j).k; }))
      << ", \"output\": " << q(join_axes(p, [](const ConvProblem& pp, int j) { return pp.out(j); }))
      << ", \"dtype\": " << q(dtype_name(p.dtype(TensorId::kX))) << ", \"layout\": " << q(layout_name(p.layout()))
      << ", \"w_layout\": " << q(is_pool(p.op()) ? "" : layout_name(p.w_layout()))
      << ", \"activation\": " << q(activation_name(p.epilogue().activation))
      << ", \"alpha\": " << num(p.epilogue().alpha) << ", \"beta\": " << num(p.epilogue().beta)
      << ", \"name\": " << q(p.name()) << ", \"flops\": " << num(p.flops()) << ", \"min_bytes\": " << p.min_bytes()
      << ", \"auto_algorithm\": " << q(chosen(l.id, &CaseResult::auto_choice))
      << ", \"tune_algorithm\": " << q(chosen(l.id, &CaseResult::tune_choice)) << "}"
      << (i + 1 < layers.size() ? "," : "") << "\n";
  }
  o << "  ],\n  \"results\": [\n";
  for (size_t i = 0; i < results.size(); ++i) {
    const CaseResult& r = results[i];
    o << "    {\"layer\": " << q(r.layer_id) << ", \"impl\": " << q(r.impl) << ", \"algorithm\": " << q(r.algorithm)
      << ", \"device\": " << q(device_name(r.device)) << ", \"status\": " << q(r.status)
      << ", \"checked\": " << (r.checked ? "true" : "false") << ", \"correct\": " << (r.correct ? "true" : "false")
      << ", \"max_rel_err\": " << num(r.max_rel_err) << ", \"reps\": " << r.reps
      << ", \"median_s\": " << num(r.median_s) << ", \"p10_s\": " << num(r.p10_s) << ", \"p90_s\": " << num(r.p90_s)
      << ", \"min_s\": " << num(r.min_s) << ", \"setup_s\": " << num(r.setup_s) << ", \"flops\": " << num(r.flops)
      << ", \"bytes\": " << num(r.bytes) << ", \"workspace_bytes\": " << r.workspace_bytes
      << ", \"rotation\": " << r.rotation << ", \"host_median_s\": " << num(r.host_median_s)
      << ", \"gated\": " << (r.gated ? "true" : "false") << ", \"auto_choice\": " << (r.auto_choice ? "true" : "false")
      << ", \"tune_choice\": " << (r.tune_choice ? "true" : "false")
      << ", \"peer_cannot_run_format\": " << (peer_cannot_run_format(r) ? "true" : "false") << "}"
      << (i + 1 < results.size() ? "," : "") << "\n";
  }
  o << "  ]\n}\n";
  return o.str();
}

double geometric_mean(const std::vector<double>& values) {
  double log_sum = 0;
  int count = 0;
  for (double v : values)
    if (v > 0 && std::isfinite(v)) {
      log_sum += std::log(v);
      ++count;
    }
  return count == 0 ? 0.0 : std::exp(log_sum / count);
}

std::vector<Summary> summarize(const std::vector<Layer>& layers, const std::vector<CaseResult>& results,
                               const Environment& env) {
  std::vector<Summary> out;
  for (const Layer& l : layers) {
    Summary s;
    s.layer_id = l.id;
    for (const CaseResult& r : results) {
      if (r.layer_id == l.id && peer_cannot_run_format(r))
        s.peer_na = &r;
      if (r.layer_id == l.id && !r.is_peer() && r.auto_choice)
        s.auto_case = &r;
      if (r.layer_id == l.id && !r.is_peer() && r.tune_choice)
        s.tune_case = &r;
      if (r.layer_id != l.id || !r.correct || !r.timed())
        continue;
      if (r.is_peer()) {
        if (s.peer == nullptr || r.median_s < s.peer->median_s)
          s.peer = &r;
      } else if (s.best == nullptr || r.median_s < s.best->median_s) {
        s.best = &r;
      }
    }
    if (s.best != nullptr && s.peer != nullptr && s.best->median_s > 0)
      s.ratio = s.peer->median_s / s.best->median_s;
    if (s.best != nullptr && env.peak_flops > 0 && env.peak_bytes_per_s > 0 && s.best->median_s > 0) {
      const double bound = std::max(s.best->flops / env.peak_flops, s.best->bytes / env.peak_bytes_per_s);
      s.roofline_pct = 100.0 * bound / s.best->median_s;
    }
    out.push_back(s);
  }
  return out;
}

std::string results_table(const std::vector<Layer>& layers, const std::vector<Summary>& summary, const Environment& env,
                          Device device) {
  const char* peer = device == Device::kCuda ? "cuDNN" : "oneDNN";
  std::ostringstream o;
  char buf[600];
  std::snprintf(buf, sizeof buf,
                "| %-12s | %-18s | %-27s | %-21s | %4s | %8s | %-22s | %11s | %-15s | %-15s | %12s | %7s | %6s |\n",
                "layer", "network", "layer name", "format", "N", "GFLOP", "ours (best)", "ours us", "auto takes",
                "tune takes", (std::string(peer) + " us").c_str(), "speedup", "% roof");
  o << buf;
  // The separator follows the widths above: left-aligned text columns, right-aligned numbers.
  o << "|" << std::string(14, '-') << "|" << std::string(20, '-') << "|" << std::string(29, '-') << "|"
    << std::string(23, '-') << "|" << std::string(5, '-') << ":|" << std::string(9, '-') << ":|" << std::string(24, '-')
    << "|" << std::string(12, '-') << ":|" << std::string(17, '-') << "|" << std::string(17, '-') << "|"
    << std::string(13, '-') << ":|" << std::string(8, '-') << ":|" << std::string(7, '-') << ":|\n";
  std::vector<double> ratios;
  std::vector<std::string> peer_notes; // "R03/f16: f16 NHWC" for the layers the peer cannot run
  std::string peer_reason;
  for (size_t i = 0; i < layers.size() && i < summary.size(); ++i) {
    const Layer& l = layers[i];
    const Summary& s = summary[i];
    auto us = [](const CaseResult* r) {
      char b[32];
      if (r == nullptr)
        return std::string("-");
      std::snprintf(b, sizeof b, "%.1f", r->median_s * 1e6);
      return std::string(b);
    };
    char ratio[32] = "-", roof[32] = "-";
    if (s.ratio > 0) {
      std::snprintf(ratio, sizeof ratio, "%.2fx", s.ratio);
      ratios.push_back(s.ratio);
    }
    if (s.roofline_pct > 0)
      std::snprintf(roof, sizeof roof, "%.1f", s.roofline_pct);
    std::string peer_cell = us(s.peer);
    if (s.peer == nullptr && s.peer_na != nullptr) {
      peer_cell = "n/a (format)";
      peer_notes.push_back(l.id + " (" + format_cell(l.problem) + ")");
      if (peer_reason.empty())
        peer_reason = s.peer_na->status;
    }
    std::snprintf(
        buf, sizeof buf,
        "| %-12s | %-18.18s | %-27.27s | %-21.21s | %4lld | %8.3f | %-22.22s | %11s | %-15.15s | %-15.15s | %12s | %7s "
        "| %6s |\n",
        l.id.c_str(), l.network.c_str(), l.layer.c_str(), format_cell(l.problem).c_str(),
        static_cast<long long>(l.problem.n()), l.problem.flops() * 1e-9,
        s.best ? s.best->algorithm.c_str() : "(none correct)", us(s.best).c_str(),
        s.auto_case ? s.auto_case->algorithm.c_str() : "-", s.tune_case ? s.tune_case->algorithm.c_str() : "-",
        peer_cell.c_str(), ratio, roof);
    o << buf;
  }
  const double gm = geometric_mean(ratios);
  char g[32] = "-";
  if (gm > 0)
    std::snprintf(g, sizeof g, "%.2fx", gm);
  std::snprintf(buf, sizeof buf,
                "| %-12s | %-18s | %-27s | %-21s | %4s | %8s | %-22s | %11s | %-15s | %-15s | %12s | %7s | %6s |\n",
                "geomean", "", (std::to_string(ratios.size()) + " layers with both").c_str(), "", "", "", "", "", "",
                "", "", g, "");
  o << buf;
  o << "\nN = the batch each row ran at (\"/n1\": the batch-1 variant of a layer published at a larger batch). ";
  o << "format = every tensor's dtype and the activations' layout (and the epilogue when not the identity); ours and "
    << peer << " are given the same. ";
  o << "speedup = " << peer << " median / our best median (> 1: convarith is faster). " << env.peak_note << ". ";
  o << "auto takes = the row Plan \"auto\" picks by its cost estimate; tune takes = the row Plan \"tune\" measured "
       "fastest itself (--tune; - when not asked): either may differ from ours (best), the fastest here.\n";
  if (!peer_notes.empty()) {
    std::string list;
    for (const std::string& n : peer_notes)
      list += (list.empty() ? "" : ", ") + n;
    o << "n/a (format): " << peer << " cannot run " << list << " here, so those rows have no speedup (" << peer_reason
      << ").\n";
  }
  return o.str();
}

} // namespace convarith::bench
