// cli/cmd_bench.cpp — `convarith bench`: time the real-layer suite (bench/layers.csv) or one layer
// written as ONNX attributes, ours against the peer (cuDNN on the GPU, oneDNN on the CPU), and
// print a table: layer, our best algorithm and its median time, the peer's, the speedup, % of the
// device roofline, and the geometric mean of the speedups. Every case is checked against the fp64
// reference before it is timed; a wrong result is printed loudly and makes the exit status 1.
// The work is convarith_bench_lib's (bench/bench.hpp); this file only parses and prints.
#include <cstdio>
#include <iostream>
#include <sstream>

#include "attributes.hpp"
#include "bench.hpp"
#include "commands.hpp"
#include "io.hpp"
#include "subcommands.hpp"

#if defined(CONVARITH_HAVE_CUDNN)
#include "cudnn/cudnn_runner.hpp"
#endif

namespace convarith::cli {
namespace {

const char kBenchHelp[] = R"(usage: convarith bench [--suite NAME | --layer OP ATTRIBUTES...] [options]

Times every algorithm of the table that runs each layer, and the peer (cuDNN's fastest FMA
algorithm on the GPU, oneDNN on the CPU), after checking each against the fp64 reference.

  --suite NAME       a suite of bench/layers.csv: smoke, smoke_fmt, default (the CPU run), full,
                     core, core_fmt (f16/bf16 NHWC twins of core) (default: default). Each row has a
                     dtype and a layout; ours and the peer run the same (a peer that cannot is n/a)
  --layer OP ...     one layer instead (not with --suite or --layers); the rest of the line is its
                     ONNX attributes, e.g.
                     --layer conv --x-shape 1,64,56,56 --w-shape 64,64,3,3 --pads 1,1,1,1
                     (with --dtype, --layout, --w-layout, --activation, --alpha, --beta: the bench
                     makes a random residual z when beta is not 0)
  --device D         cpu, cuda, emulated or auto (default: auto = cuda when a GPU is usable).
                     emulated runs the CUDA kernels' code on the CPU under the kernel executor: very
                     slow (about a million GPU threads a second; use the smoke suites or a small
                     --layer), with no peer; for checking the kernels without a GPU, not for timing
  --reps N           timed runs per case (default: adaptive, 10..1000, ~0.25 s of work)
  --warmup N         untimed runs before timing (default: 10)
  --json FILE        write the raw results and the environment block as JSON (atomically)
  --layers FILE      the layer file (default: $CONVARITH_BENCH_LAYERS or the source tree's; a
                     regular file of at most 16 MiB)
  --no-peer          time convarith only
  --tune             also ask Plan "tune" which row it takes (it times the rows itself, a few runs each on
                     its own buffers: on emulated that is slow) and show it beside auto's choice
  --tune-cache FILE  tune's cache file (implies --tune): a winner found there is not timed again; a
                     stale or corrupt file is a warning on stderr
  --weights W        constant (default) or per-run. constant, as inference code holds them: on cpu and
                     emulated our plan prepares the filter once at setup (PlanOptions::weights: converted,
                     packed or Winograd-transformed) and oneDNN reorders it once, neither timed; per-run:
                     every timed run is handed w and converts/repacks it (both sides). The GPU rows and
                     cuDNN take w as given either way. The header and the JSON ("weights") say which

Every layer's table row names the row auto takes (by its cost estimate) and, with --tune, the row tune
takes, beside our fastest row's time; stderr marks them after each row's time, as (auto) and (tune), and
the JSON has "auto_algorithm" and "tune_algorithm" per layer and "auto_choice"/"tune_choice" per result.

Each option may be given once. A layer whose buffers would pass the memory limit is refused
(the message gives the bytes needed and the limit) and counts as a failed case.
--device auto prints the device it picked (stderr, and "device_choice" in the JSON).

Exit status: 0 all checked cases correct, 1 a wrong result, a failed run or a peer that failed
(n/a for any reason but cuDNN's/oneDNN's refusal to express the layer), 2 bad arguments.
)";

struct BenchArgs {
  std::string suite = "default";
  std::string layers_path;
  std::string device = "auto";
  std::string json;
  bool single = false;
  std::vector<std::string> layer_spec;
  std::vector<std::string> seen; // options given so far: each at most once
  bench::Options options;
};

bool parse_int_option(const std::string& name, const std::string& text, int min, int* out, std::ostream& err) {
  Result<int64_t> v = parse_count(name, text);
  if (!v || *v < min || *v > 1000000) {
    err << "convarith bench: " << name << " wants an integer in [" << min << ", 1000000], got '" << text << "'\n";
    return false;
  }
  *out = static_cast<int>(*v);
  return true;
}

// Options before --layer are ours; after it, attribute options and ours mix (parse_layer sorts them).
const std::vector<ExtraOption>& extras() {
  static const std::vector<ExtraOption> e = {
      {"--suite", true},  {"--device", true},   {"--reps", true},  {"--warmup", true},     {"--json", true},
      {"--layers", true}, {"--no-peer", false}, {"--tune", false}, {"--tune-cache", true}, {"--weights", true}};
  return e;
}

bool apply_option(BenchArgs& b, const std::string& name, const std::string& value, std::ostream& err) {
  for (const std::string& s : b.seen) {
    if (s == name) {
      err << "convarith bench: " << name << " given more than once\n";
      return false;
    }
  }
  b.seen.push_back(name);
  if ((name == "--json" || name == "--layers" || name == "--tune-cache") && value.empty()) {
    err << "convarith bench: " << name << " is empty: give a file name\n";
    return false;
  }
  if (name == "--suite") {
    b.suite = value;
  } else if (name == "--device") {
    b.device = value;
  } else if (name == "--reps") {
    return parse_int_option(name, value, 1, &b.options.reps, err);
  } else if (name == "--warmup") {
    return parse_int_option(name, value, 0, &b.options.warmup, err);
  } else if (name == "--json") {
    b.json = value;
  } else if (name == "--layers") {
    b.layers_path = value;
  } else if (name == "--no-peer") {
    b.options.with_peer = false;
  } else if (name == "--tune") {
    b.options.tune = true;
  } else if (name == "--weights") {
    if (value != "constant" && value != "per-run") {
      err << "convarith bench: --weights wants constant or per-run, got '" << value << "'\n";
      return false;
    }
    b.options.constant_weights = value == "constant";
  } else if (name == "--tune-cache") {
    b.options.tune = true;
    b.options.tune_cache = value;
  } else {
    err << "convarith bench: unknown option '" << name << "' (see convarith bench --help)\n";
    return false;
  }
  return true;
}

// Returns 0 and fills `b`, or the exit status for a bad command line.
int parse_args(const std::vector<std::string>& args, BenchArgs& b, std::ostream& err) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], value;
    if (a == "--layer") {
      b.single = true;
      // One quoted argument ("conv --x-shape ...") or the rest of the line.
      for (size_t j = i + 1; j < args.size(); ++j) {
        if (j == i + 1 && args[j].find(' ') != std::string::npos) {
          std::istringstream words(args[j]);
          for (std::string w; words >> w;)
            b.layer_spec.push_back(w);
        } else {
          b.layer_spec.push_back(args[j]);
        }
      }
      break;
    }
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else {
      bool takes_value = false;
      for (const ExtraOption& e : extras())
        if (e.name == a)
          takes_value = e.takes_value;
      if (takes_value) {
        if (i + 1 >= args.size()) {
          err << "convarith bench: " << a << " needs a value\n";
          return 2;
        }
        value = args[++i];
      }
    }
    if (!apply_option(b, a, value, err))
      return 2;
  }
  return 0;
}

std::string command_line(const std::vector<std::string>& args) {
  std::string s = "convarith bench";
  for (const std::string& a : args)
    s += " " + a;
  return s;
}

} // namespace

int bench_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  for (const std::string& a : args)
    if (a == "--help" || a == "-h") {
      out << kBenchHelp << "\nLayer attributes (after --layer OP):\n" << attribute_help();
      return 0;
    }
#if defined(CONVARITH_HAVE_CUDNN)
  cudnn::disable_tf32(); // before any cuDNN handle: fp32 stays fp32
#endif
  BenchArgs b;
  if (int rc = parse_args(args, b, err); rc != 0)
    return rc;
  if (b.layers_path.empty())
    b.layers_path = bench::default_layers_path();

  std::vector<bench::Layer> layers;
  if (b.single) {
    Result<ParsedLayer> parsed = parse_layer(b.layer_spec, extras());
    if (!parsed) {
      err << "convarith bench: " << parsed.status().message() << "\n";
      return 2;
    }
    for (const auto& [name, value] : parsed->args.extras)
      if (!apply_option(b, name, value, err))
        return 2;
    for (const char* suite_only : {"--suite", "--layers"}) {
      for (const std::string& s : b.seen) {
        if (s == suite_only) {
          err << "convarith bench: " << suite_only << " cannot be combined with --layer (--layer times one layer "
              << "instead of a suite)\n";
          return 2;
        }
      }
    }
    Result<ConvProblem> p = ConvProblem::make(parsed->desc);
    if (!p) {
      err << "convarith bench: " << p.status().to_string() << "\n";
      return 2;
    }
    bench::Layer l;
    l.id = "layer";
    l.network = "command line";
    l.layer = p->name();
    l.problem = *p;
    layers.push_back(l);
    b.suite = "(--layer)";
  } else {
    Result<std::vector<bench::Layer>> suite = bench::load_suite(b.layers_path, b.suite);
    if (!suite) {
      err << "convarith bench: " << suite.status().message() << "\n";
      return 2;
    }
    layers = std::move(suite).value();
  }

  // --device through the library's choose_device (the one meaning of "auto" for every command); auto is said
  // loudly (stderr and the JSON): a GPU job must not bench the CPU without anyone noticing.
  Result<DeviceChoice> chosen = choose_device(b.device);
  if (!chosen) {
    err << "convarith bench: " << chosen.status().message() << "\n";
    return chosen.status().code() == StatusCode::kDeviceError ? 1 : 2;
  }
  const Device device = chosen->device;
  std::string device_choice = chosen->why;
  if (!device_choice.empty())
    err << "convarith bench: --device " << device_choice << "\n";

  if (device_choice.empty())
    device_choice = std::string(device_name(device)) + " (--device " + b.device + ")";
  bench::Environment env = bench::environment(device);
  env.device_choice = device_choice;
  env.weights = bench::weights_note(b.options, device);
  std::vector<bench::CaseResult> results;
  int failures = 0;
  for (size_t li = 0; li < layers.size(); ++li) {
    const bench::Layer& l = layers[li];
    err << "[" << li + 1 << "/" << layers.size() << "] " << l.id << " (" << l.network << ", " << l.layer << ") ..."
        << std::flush;
    Result<std::unique_ptr<bench::LayerBench>> lb = bench::LayerBench::create(l, device, b.options);
    if (!lb) {
      err << " " << lb.status().to_string() << "\n";
      ++failures;
      continue;
    }
    // Ours and the peer timed in turns, so a busy machine's interference lands on both alike.
    std::vector<bench::CaseResult> layer_results = (*lb)->run_interleaved();
    for (bench::CaseResult& r : layer_results) {
      if (r.timed()) {
        char buf[96];
        std::snprintf(buf, sizeof buf, " %s %.1f us", r.algorithm.c_str(), r.median_s * 1e6);
        err << buf;
      } else if (r.status.rfind("not_supported", 0) == 0) {
        err << " " << r.algorithm << " n/a";
      } else if (r.auto_choice || r.tune_choice) {
        err << " " << r.algorithm << " (not timed)";
      }
      if (r.auto_choice || r.tune_choice)
        err << " (" << (r.auto_choice ? "auto" : "") << (r.auto_choice && r.tune_choice ? ", " : "")
            << (r.tune_choice ? "tune" : "") << ")";
    }
    err << "\n";
    const bench::Choices& chose = (*lb)->choices();
    if (b.options.tune && !chose.tune_algorithm.empty())
      err << "  tune took " << chose.tune_algorithm << " (" << chose.tune_source << "), auto takes "
          << chose.auto_algorithm << "\n";
    for (const std::string& w : chose.tune_warnings)
      err << "  warning: " << w << "\n";
    for (bench::CaseResult& r : layer_results) {
      if (r.checked && !r.correct) {
        err << "WRONG RESULT: " << l.id << " " << r.algorithm << " on " << device_name(device) << ": " << r.status
            << "\n";
        ++failures;
      } else if (r.status.rfind("error", 0) == 0) {
        err << "FAILED: " << l.id << " " << r.algorithm << ": " << r.status << "\n";
        ++failures;
      } else if (bench::peer_failed(r)) {
        // Only the descriptor step's "cannot express" may leave the peer n/a.
        err << "PEER FAILED: " << l.id << " " << r.algorithm << " is n/a although its descriptor step accepted the "
            << "layer: " << r.status << "\n";
        ++failures;
      }
      results.push_back(std::move(r));
    }
  }

  const std::vector<bench::Summary> summary = bench::summarize(layers, results, env);
  out << "convarith bench: suite " << b.suite << " on " << device_name(device)
      << (env.gpu.empty() ? " (" + env.host + ")" : " (" + env.gpu + ")") << ", median of timed runs after "
      << b.options.warmup << " warm-up runs, implementations timed in turns";
  if (device != Device::kCuda)
    out << "; CPU rows: " << env.cpu_isa << (env.onednn_isa.empty() ? "" : ", oneDNN: " + env.onednn_isa)
        << "; CPU flags: " << env.cpu_flags;
  if (device == Device::kCpu && !env.load_average.empty())
    out << "; load average " << env.load_average;
  out << "; weights " << env.weights;
  out << "\n\n";
  out << bench::results_table(layers, summary, env, device);
  if (failures > 0)
    out << "\n" << failures << " case(s) FAILED (wrong result or error): see stderr\n";

  if (!b.json.empty()) {
    const Status wrote =
        write_file_atomic(b.json, bench::results_json(env, layers, results, command_line(args), b.suite));
    if (!wrote) {
      err << "convarith bench: --json " << wrote.message() << "\n";
      return 1;
    }
  }
  return failures > 0 ? 1 : 0;
}

int cmd_bench(int argc, char** argv) {
  return bench_main(args_after_command(argc, argv), std::cout, std::cerr);
}

} // namespace convarith::cli
