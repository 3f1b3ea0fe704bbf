// cli/cmd_run.cpp — `convarith run OP --x x.npy [--w w.npy] [--b b.npy] --out y.npy ...`: runs one
// layer through a Plan on the CPU or a GPU, optionally checks it against an fp64 reference, and
// writes the output atomically. Nothing is written to --out unless everything succeeded.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>

#include "attributes.hpp"
#include "check.hpp"
#include "commands.hpp"
#include "convarith/plan.hpp"
#include "convarith/problem.hpp"
#include "io.hpp"
#include "npy.hpp"
#include "reference/reference.hpp"
#include "storage.hpp"
#include "subcommands.hpp"

#ifdef CONVARITH_HAVE_CUDA
#include <cuda_runtime.h>

#include "cuda_status.hpp"
#endif

namespace convarith::cli {
namespace {

const std::vector<ExtraOption> kRunOptions = {{"--x", true},    {"--w", true},      {"--b", true},
                                              {"--z", true},    {"--out", true},    {"--device", true},
                                              {"--algo", true}, {"--check", false}, {"--tune-cache", true}};

using Bytes = std::vector<unsigned char>;

std::string shape_text(const std::vector<int64_t>& s) {
  return "(" + join(s, ", ") + (s.size() == 1 ? ",)" : ")");
}

// The .npy dtype that holds a tensor of `dtype`: numpy has float16 but no bfloat16, so bf16 tensors
// travel as float32 files (rounded to bf16 on load, written back exactly).
NpyType file_type(DataType dtype) {
  return dtype == DataType::kF16 ? NpyType::kF16 : NpyType::kF32;
}

std::string file_rule(DataType dtype) {
  switch (dtype) {
  case DataType::kF16:
    return "--dtype f16 reads and writes float16 ('<f2') files";
  case DataType::kBF16:
    return "--dtype bf16 reads float32 ('<f4') files, rounded to bf16 on load, and writes float32 files holding "
           "the bf16 values";
  case DataType::kF32:
    break;
  }
  return "--dtype f32 reads and writes float32 ('<f4') files";
}

// "N,H,W,C" / "N,C,H,W" / "K,R,S,C/g"-style names of a tensor's axes in memory order, for messages.
std::string axes_text(size_t rank, Layout layout, bool weight, Op op) {
  std::vector<std::string> names;
  const char* spatial3[] = {"D", "H", "W"};
  const char* kernel3[] = {"kD", "kH", "kW"};
  const size_t spatial = rank >= 2 ? rank - 2 : 0;
  std::vector<std::string> space;
  for (size_t j = 0; j < spatial && j < 3; ++j)
    space.emplace_back(weight ? kernel3[3 - spatial + j] : spatial3[3 - spatial + j]);
  const std::string first = weight ? (op == Op::kConvTranspose ? "C" : "K") : "N";
  const std::string second = weight ? (op == Op::kConvTranspose ? "K/g" : "C/g") : "C";
  names.push_back(first);
  if (layout == Layout::kNCHW)
    names.push_back(second);
  names.insert(names.end(), space.begin(), space.end());
  if (layout == Layout::kNHWC)
    names.push_back(second);
  std::string s;
  for (const std::string& n : names)
    s += (s.empty() ? "" : ",") + n;
  return s;
}

// A tensor's storage (dtype_bytes each, the file's order): the file's own values for f32 and f16 (no
// copy), the values rounded to bf16 for bf16.
struct Storage {
  const void* data = nullptr; // null when empty
  size_t bytes = 0;
  std::vector<uint16_t> bf16; // owned, for bf16
};

Storage to_storage(const NpyArray& a, DataType dtype) {
  Storage s;
  if (dtype == DataType::kF16) {
    s.data = a.half.data();
    s.bytes = a.half.size() * 2;
  } else if (dtype == DataType::kBF16) {
    s.bf16.resize(a.data.size());
    for (size_t i = 0; i < a.data.size(); ++i)
      s.bf16[i] = bf16_bits(a.data[i]);
    s.data = s.bf16.data();
    s.bytes = s.bf16.size() * 2;
  } else {
    s.data = a.data.data();
    s.bytes = a.data.size() * 4;
  }
  if (s.bytes == 0)
    s.data = nullptr;
  return s;
}

Status write_output(const std::string& path, const std::vector<int64_t>& shape, DataType dtype, const Bytes& y) {
  if (dtype == DataType::kF16) {
    std::vector<uint16_t> h(y.size() / 2);
    if (!h.empty())
      std::memcpy(h.data(), y.data(), y.size());
    return write_npy_f16(path, shape, h.data());
  }
  std::vector<float> f(y.size() / static_cast<size_t>(dtype_bytes(dtype)));
  if (dtype == DataType::kBF16) {
    for (size_t i = 0; i < f.size(); ++i) {
      uint16_t b = 0;
      std::memcpy(&b, &y[2 * i], 2);
      f[i] = bf16_value(b); // exact: every bf16 is a float32
    }
  } else if (!f.empty()) {
    std::memcpy(f.data(), y.data(), y.size());
  }
  return write_npy(path, shape, f.data());
}

#ifdef CONVARITH_HAVE_CUDA
struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
using DevicePtr = std::unique_ptr<void, CudaFree>;

using ::convarith::detail::cuda_status; // host/cuda_status.hpp

// Allocates `bytes` on the device and copies `host` there (when non-null). A zero-byte buffer
// stays nullptr, as the Plan allows for empty tensors.
Status upload(DevicePtr& dst, const void* host, size_t bytes, const char* what) {
  if (bytes == 0)
    return Status::ok();
  void* p = nullptr;
  CONVARITH_RETURN_IF_ERROR(cuda_status(cudaMalloc(&p, bytes), what));
  dst.reset(p);
  if (host)
    CONVARITH_RETURN_IF_ERROR(cuda_status(cudaMemcpy(p, host, bytes, cudaMemcpyHostToDevice), what));
  return Status::ok();
}
#endif

// Runs the plan with host buffers in and out (in the problem's dtypes and layouts), moving them to
// the GPU for a CUDA plan. y is NaN-poisoned first (all-ones bytes are NaN in every dtype), so that an
// element the algorithm never writes shows up in --check.
Status execute(const Plan& plan, const Storage& x, const Storage& w, const Storage& b, const Storage& z, Bytes& y) {
  std::fill(y.begin(), y.end(), static_cast<unsigned char>(0xff));
  if (plan.device() != Device::kCuda) { // cpu, and emulated: the executor runs on host memory
    std::vector<unsigned char> workspace(plan.workspace_bytes());
    Tensors t;
    t.x = x.data;
    t.w = w.data;
    t.bias = b.data;
    t.z = z.data;
    t.y = y.empty() ? nullptr : y.data();
    return plan.run(t, workspace.empty() ? nullptr : workspace.data(), workspace.size(), nullptr);
  }
#ifdef CONVARITH_HAVE_CUDA
  DevicePtr dx, dw, db, dz, dy, dws;
  CONVARITH_RETURN_IF_ERROR(upload(dx, x.data, x.bytes, "cudaMalloc/cudaMemcpy x"));
  CONVARITH_RETURN_IF_ERROR(upload(dw, w.data, w.bytes, "cudaMalloc/cudaMemcpy w"));
  CONVARITH_RETURN_IF_ERROR(upload(db, b.data, b.bytes, "cudaMalloc/cudaMemcpy b"));
  CONVARITH_RETURN_IF_ERROR(upload(dz, z.data, z.bytes, "cudaMalloc/cudaMemcpy z"));
  CONVARITH_RETURN_IF_ERROR(upload(dy, nullptr, y.size(), "cudaMalloc y"));
  CONVARITH_RETURN_IF_ERROR(upload(dws, nullptr, plan.workspace_bytes(), "cudaMalloc workspace"));
  if (dy)
    CONVARITH_RETURN_IF_ERROR(cuda_status(cudaMemset(dy.get(), 0xff, y.size()), "cudaMemset y"));
  Tensors t;
  t.x = dx.get();
  t.w = dw.get();
  t.bias = db.get();
  t.z = dz.get();
  t.y = dy.get();
  CONVARITH_RETURN_IF_ERROR(plan.run(t, dws.get(), plan.workspace_bytes(), nullptr));
  // The plan enqueued on the legacy default stream; this copy waits for it.
  CONVARITH_RETURN_IF_ERROR(cuda_status(cudaGetLastError(), "kernel launch"));
  if (dy)
    CONVARITH_RETURN_IF_ERROR(
        cuda_status(cudaMemcpy(y.data(), dy.get(), y.size(), cudaMemcpyDeviceToHost), "cudaMemcpy y"));
  CONVARITH_RETURN_IF_ERROR(cuda_status(cudaDeviceSynchronize(), "cudaDeviceSynchronize"));
  return Status::ok();
#else
  return device_error("convarith run was built without CUDA");
#endif
}

// Reads an .npy operand stored as `dtype` would be; a file of another dtype is refused naming it.
Result<NpyArray> read_operand(const std::string& option, const std::string& path, DataType dtype) {
  Result<NpyArray> a = read_npy(path, file_type(dtype));
  if (!a) {
    std::string m = option + " " + a.status().message();
    if (m.find(": dtype '") != std::string::npos)
      m += "; " + file_rule(dtype);
    return Status(a.status().code(), m);
  }
  return a;
}

// The declared --x-shape / --w-shape (logical order) against the file's shape (memory order).
Status check_declared(const std::optional<std::vector<int64_t>>& declared, const char* declared_option,
                      const std::string& path, const std::vector<int64_t>& file_shape, Layout layout, bool weight,
                      Op op) {
  if (!declared)
    return Status::ok();
  const std::vector<int64_t> want = physical_order(*declared, layout);
  if (want == file_shape)
    return Status::ok();
  if (layout == Layout::kNCHW)
    return invalid_argument(std::string(declared_option) + " " + join(*declared) + " disagrees with " + path +
                            ", whose shape is " + shape_text(file_shape));
  return invalid_argument(std::string(declared_option) + " " + join(*declared) + " with " +
                          (weight ? "--w-layout" : "--layout") + " NHWC needs " + path + " in " +
                          axes_text(want.size(), layout, weight, op) + " order, shape " + shape_text(want) +
                          ", but its shape is " + shape_text(file_shape));
}

// A file's shape against the one the problem needs, in memory order.
Status check_file_shape(const std::string& path, const std::vector<int64_t>& have, const TensorDesc& t, bool weight,
                        Op op, const char* what) {
  const std::vector<int64_t> want = t.physical_dims();
  if (have == want)
    return Status::ok();
  return invalid_argument(path + ": " + what + " has shape " + shape_text(have) + ", the problem needs " +
                          shape_text(want) + " (" + axes_text(want.size(), t.layout, weight, op) + ", layout " +
                          layout_name(t.layout) + ")");
}

// How messages name a shape read from a file: the file, and for channels last its shape as stored.
std::string source_name(const std::string& path, const char* option, const std::vector<int64_t>& file_shape,
                        Layout layout, bool weight, Op op) {
  if (layout == Layout::kNCHW)
    return path + " (" + option + ") shape";
  return path + " (" + option + ", channels last: its shape " + shape_text(file_shape) + " is " +
         axes_text(file_shape.size(), layout, weight, op) + ") in logical order";
}

// --device through the library's choose_device (the one meaning of "auto" for every command); auto says on
// stderr what it chose and why.
Result<Device> pick_device(const std::string& name, std::ostream& err) {
  Result<DeviceChoice> c = choose_device(name);
  if (!c)
    return c.status();
  if (!c->why.empty())
    err << "convarith run: --device " << c->why << "\n";
  return c->device;
}

int run_layer(const LayerArgs& parsed, std::ostream& out, std::ostream& err) {
  LayerArgs args = parsed;
  auto fail = [&](int code, const std::string& message) {
    err << "convarith run: " << message << "\n";
    return code;
  };
  if (!args.has("--x"))
    return fail(2, "--x FILE (the input .npy) is required");
  if (!args.has("--out"))
    return fail(2, "--out FILE (where to write the output .npy) is required");
  for (const char* file : {"--x", "--w", "--b", "--z", "--out"})
    if (args.has(file) && args.extras.at(file).empty())
      return fail(2, std::string(file) + " is empty: give a file name");
  const bool pool = is_pool(args.op);
  for (const char* file : {"--w", "--b", "--z"})
    if (pool && args.has(file))
      return fail(2, std::string(file) + " does not apply to " + op_cli_name(args.op));
  if (!pool && !args.has("--w"))
    return fail(2, std::string(op_cli_name(args.op)) + " needs --w FILE (the weight .npy)");
  // The residual: --z alone means beta 1; a beta that is not 0 needs the file, and a file needs a beta.
  if (args.has("--z") && !args.beta)
    args.beta = 1.0f;
  if (args.has("--z") && *args.beta == 0.0f)
    return fail(2, "--z " + args.extras.at("--z") + " is given, but --beta is 0: the residual would not be read");
  if (!args.has("--z") && args.beta && *args.beta != 0.0f)
    return fail(2, "--beta " + std::to_string(*args.beta) +
                       " adds beta * z: give the residual with --z FILE (y's shape and layout)");

  const DataType dtype = args.dtype.value_or(DataType::kF32);
  const Layout layout = args.layout.value_or(Layout::kNCHW);
  const Layout w_layout = args.w_layout.value_or(layout);
  const std::string& x_path = args.extras.at("--x");
  Result<NpyArray> x = read_operand("--x", x_path, dtype);
  if (!x)
    return fail(2, x.status().message());
  if (Status s = check_declared(args.x_shape, "--x-shape", x_path, x->shape, layout, false, args.op); !s)
    return fail(2, s.message());
  args.x_shape = logical_order(x->shape, layout);
  args.x_shape_source = source_name(x_path, "--x", x->shape, layout, false, args.op);
  Result<NpyArray> w = Status(invalid_argument("no weight"));
  if (!pool) {
    const std::string& w_path = args.extras.at("--w");
    w = read_operand("--w", w_path, dtype);
    if (!w)
      return fail(2, w.status().message());
    if (Status s = check_declared(args.w_shape, "--w-shape", w_path, w->shape, w_layout, true, args.op); !s)
      return fail(2, s.message());
    args.w_shape = logical_order(w->shape, w_layout);
    args.w_shape_source = source_name(w_path, "--w", w->shape, w_layout, true, args.op);
  }
  Result<ProblemDesc> desc = layer_desc(args);
  if (!desc) {
    std::string m = desc.status().message();
    if (layout == Layout::kNHWC || w_layout == Layout::kNHWC)
      m += " (with --layout NHWC the x, z and y files are N,[D,]H,W,C; with --w-layout NHWC the weight is "
           "K,[kD,]kH,kW,C/g, or C,[kD,]kH,kW,K/g for conv-transpose)";
    return fail(2, m);
  }
  Result<ConvProblem> problem = ConvProblem::make(*desc);
  if (!problem)
    return fail(2, problem.status().message());
  const ConvProblem& p = *problem;
  // layer_desc built the problem from these shapes; this guards the contract all the same.
  if (Status s = check_file_shape(x_path, x->shape, p.tensor(TensorId::kX), false, p.op(), "the input"); !s)
    return fail(2, s.message());
  if (!pool) {
    if (Status s =
            check_file_shape(args.extras.at("--w"), w->shape, p.tensor(TensorId::kW), true, p.op(), "the weight");
        !s)
      return fail(2, s.message());
  }

  Result<NpyArray> b = Status(invalid_argument("no bias"));
  if (args.has("--b")) {
    b = read_operand("--b", args.extras.at("--b"), dtype);
    if (!b)
      return fail(2, b.status().message());
    if (b->shape != std::vector<int64_t>{p.k()})
      return fail(2, args.extras.at("--b") + ": the bias has shape " + shape_text(b->shape) +
                         ", but K=" + std::to_string(p.k()) + " needs (" + std::to_string(p.k()) + ",)");
  }
  Result<NpyArray> z = Status(invalid_argument("no residual"));
  if (args.has("--z")) {
    z = read_operand("--z", args.extras.at("--z"), dtype);
    if (!z)
      return fail(2, z.status().message());
    if (Status s =
            check_file_shape(args.extras.at("--z"), z->shape, p.tensor(TensorId::kZ), false, p.op(), "the residual");
        !s)
      return fail(2, s.message());
  }

  Result<Device> device = pick_device(args.has("--device") ? args.extras.at("--device") : "auto", err);
  if (!device) // a bad name is a usage error (2); a device that cannot be used is the environment's (1)
    return fail(device.status().code() == StatusCode::kDeviceError ? 1 : 2, device.status().message());
  PlanOptions options;
  options.algorithm = args.has("--algo") ? args.extras.at("--algo") : "auto";
  if (args.has("--tune-cache")) {
    options.tune_cache_file = args.extras.at("--tune-cache");
    if (options.algorithm != "tune")
      return fail(2, "--tune-cache is for --algo tune (the algorithm is '" + options.algorithm + "')");
    if (options.tune_cache_file.empty())
      return fail(2, "--tune-cache is empty: give a file name");
  }
  Result<Plan> plan = Plan::create(p, *device, options);
  if (!plan)
    return fail(2, plan.status().message());
  for (const std::string& warning : plan->warnings())
    err << "convarith run: warning: " << warning << "\n";

  // Everything this run allocates from the problem's sizes, refused as a whole before any of it is.
  // The operands already read count too: they stay in memory throughout.
  const uint64_t file_bytes = dtype == DataType::kF16 ? 2 : 4;
  const uint64_t read = x->size() + (pool ? 0 : w->size()) + (b ? b->size() : 0) + (z ? z->size() : 0);
  HostMemory memory;
  memory.add(z ? "x, w, b and z as read" : "x, w and b as read", read, file_bytes);
  if (dtype == DataType::kBF16)
    memory.add("the same rounded to bf16", read, 2);
  memory.add("y " + join(p.y_shape(), "x"), static_cast<uint64_t>(p.y_elements()),
             static_cast<uint64_t>(dtype_bytes(p.dtype(TensorId::kY))));
  if (dtype == DataType::kBF16 || dtype == DataType::kF16)
    memory.add("the output file's copy of y", static_cast<uint64_t>(p.y_elements()), file_bytes);
  if (plan->device() != Device::kCuda)
    memory.add("workspace of " + std::string(plan->algorithm()), plan->workspace_bytes(), 1);
  if (args.has("--check")) {
    memory.add("--check's fp64 reference and magnitudes", static_cast<uint64_t>(p.y_elements()), 2 * sizeof(double));
    memory.add("--check's result as fp64", static_cast<uint64_t>(p.y_elements()), sizeof(double));
    if (!p.is_plain_f32_nchw())
      memory.add("--check's float32 NCHW copies of x, w and z", read, sizeof(float));
  }
  const Status fits = memory.check(std::string("running ") + op_cli_name(p.op()) + " " + join(p.x_shape(), "x") +
                                   " -> " + join(p.y_shape(), "x"));
  if (!fits)
    return fail(1, fits.message());
  const Storage xs = to_storage(*x, dtype);
  const Storage ws = pool ? Storage() : to_storage(*w, dtype);
  const Storage bs = b ? to_storage(*b, dtype) : Storage();
  const Storage zs = z ? to_storage(*z, dtype) : Storage();
  Bytes y(static_cast<size_t>(p.tensor(TensorId::kY).bytes()));
  Status ran = execute(*plan, xs, ws, bs, zs, y);
  if (!ran.is_ok())
    return fail(1, std::string("running ") + plan->algorithm() + " failed: " + ran.to_string());

  out << op_cli_name(p.op()) << " " << join(p.x_shape(), "x") << " -> " << join(p.y_shape(), "x") << " on "
      << device_name(plan->device()) << " with " << plan->algorithm() << "\n";
  if (!p.is_plain_f32_nchw())
    out << "formats: " << format_text(p) << "; y = " << epilogue_text(p) << "\n";
  if (options.algorithm == "tune") {
    const TuneReport& r = plan->tuning();
    out << "tune: " << plan->algorithm();
    if (!r.tuned) {
      out << " (not tuned: see the warning; auto's row)";
    } else if (r.source == "measured") {
      char us[32];
      std::snprintf(us, sizeof us, "%.1f", r.median_us);
      out << " measured fastest (median " << us << " us;";
      for (const TuneTiming& t : r.timings) {
        std::snprintf(us, sizeof us, "%.1f", t.median_us);
        out << " " << t.algorithm << " " << (t.error.empty() ? std::string(us) + " us" : std::string("failed"));
      }
      out << ")";
    } else {
      out << " from the " << (r.source == "file" ? "cache file" : "in-memory cache") << " (nothing timed)";
    }
    out << "; auto takes " << plan->auto_algorithm() << "\n";
  }
  if (args.has("--check")) {
    oracle::Tensors t;
    t.x = xs.data;
    t.w = ws.data;
    t.bias = bs.data;
    t.z = zs.data;
    const Reference ref = cli::reference(p, t);
    const ErrorReport e = compare_values(p, oracle::to_double(p, TensorId::kY, y.data()), ref);
    char line[320];
    std::snprintf(line, sizeof line,
                  "check vs fp64 reference: max abs error %.3e, max rel error %.3e (tolerance %.3e, worst error/bound "
                  "%.3f)%s: %s\n",
                  e.max_abs, e.max_rel, e.tolerance, e.worst_ratio,
                  e.nan_count ? (", " + std::to_string(e.nan_count) + " NaN").c_str() : "", e.pass ? "PASS" : "FAIL");
    out << line;
    if (!e.pass)
      return fail(1, "--check failed; " + args.extras.at("--out") + " was not written");
  }
  const std::vector<int64_t> y_shape = p.tensor(TensorId::kY).physical_dims();
  const Status wrote = write_output(args.extras.at("--out"), y_shape, p.dtype(TensorId::kY), y);
  if (!wrote.is_ok())
    return fail(1, wrote.message());
  out << "wrote " << args.extras.at("--out") << " " << shape_text(y_shape) << "\n";
  return 0;
}

} // namespace

const char* run_help() {
  return R"(usage: convarith run OP --x x.npy [--w w.npy] [--b b.npy] [--z z.npy] --out y.npy [attributes]
                     [--device cpu|cuda|emulated|auto] [--algo NAME|auto|tune] [--tune-cache FILE]
                     [--check]

Runs one layer through a convarith Plan, y = act(alpha * op(x, w) + bias + beta * z), and writes y
as .npy (C order). The attributes include --dtype, --layout, --w-layout, --activation, --alpha and
--beta (below).
  --x FILE                 the input: N x C x spatial, or N x spatial x C with --layout NHWC (its
                           shape gives --x-shape; if --x-shape is given too, in N,C,... order, they
                           must agree)
  --w FILE                 conv: K x C/group x kernel; conv-transpose: C x K/group x kernel; with
                           --w-layout NHWC (the default with --layout NHWC) the channel axis is last:
                           K x kernel x C/group, C x kernel x K/group. Not for pooling.
  --b FILE                 optional bias, shape (K,). Not for pooling.
  --z FILE                 the residual, y's shape and layout; without --beta, beta is 1
  --out FILE               written atomically, only when everything succeeded, in y's layout
  --device D               cpu, cuda, emulated or auto (default auto: cuda when a GPU is usable, else
                           cpu; says which on stderr). emulated runs the CUDA kernels' code on the
                           CPU under the kernel executor: very slow (about a million GPU threads a
                           second), for small layers and for debugging the kernels without a GPU
  --algo NAME|auto|tune    an algorithm from the table (default auto: the cheapest row by its cost
                           estimate); tune times every row that takes the layer on the device (on
                           scratch buffers, a few runs each; emulated: slow) and runs the fastest;
                           it prints the times and auto's choice
  --tune-cache FILE        with --algo tune: read the winner from FILE and write it there (keyed by
                           the layer, the device, the driver and convarith's version); a stale or
                           corrupt file, or a failed write, is a warning on stderr, never an error
  --check                  also compute an fp64 reference and compare with the project's acceptance
                           rule (a bound scaled by sum |x*w| and the dtypes' unit roundoff); prints
                           the max abs and max relative error; a failed check exits 1 and writes
                           nothing
File dtypes: f32 files are float32 ('<f4'); --dtype f16 files are float16 ('<f2'), read and written
as they are; numpy has no bfloat16, so --dtype bf16 reads float32 files, rounds each value to bf16
(nearest even) on load, and writes y as float32 holding the bf16 values exactly. Any other file
dtype is refused, naming the file.
Exit status: 0; 2 for a bad layer, file or option (or an algorithm that cannot run the layer); 1 when
running, checking or writing fails, or when the buffers would pass the memory limit (the message
gives the bytes needed and the limit).

Examples:
  convarith run conv --x x.npy --w w.npy --b b.npy --strides 2,2 --pads 1,1,1,1 --out y.npy --check
  convarith run conv --x x_nhwc.npy --w w_krsc.npy --b b.npy --z z_nhwc.npy --dtype f16 --layout NHWC \
      --activation relu --device cpu --out y.npy --check

)";
}

int run_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      out << run_help() << attribute_help();
      return 0;
    }
  }
  Result<LayerArgs> parsed = parse_layer_args(args, kRunOptions);
  if (!parsed) {
    err << "convarith run: " << parsed.status().message() << "\n";
    return 2;
  }
  return run_layer(*parsed, out, err);
}

int cmd_run(int argc, char** argv) {
  return run_main(args_after_command(argc, argv), std::cout, std::cerr);
}

} // namespace convarith::cli
