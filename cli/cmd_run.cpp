// cli/cmd_run.cpp — `convarith run OP --x x.npy [--w w.npy] [--b b.npy] --out y.npy ...`: runs one
// layer through a Plan on the CPU or a GPU, optionally checks it against an fp64 reference, and
// writes the output atomically. Nothing is written to --out unless everything succeeded.
#include <cstdio>
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
#include "subcommands.hpp"

#ifdef CONVARITH_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace convarith::cli {
namespace {

const std::vector<ExtraOption> kRunOptions = {{"--x", true},      {"--w", true},    {"--b", true},     {"--out", true},
                                              {"--device", true}, {"--algo", true}, {"--check", false}};

std::string shape_text(const std::vector<int64_t>& s) {
  return "(" + join(s, ", ") + (s.size() == 1 ? ",)" : ")");
}

// A CLI failure: the exit status and the message for stderr.
struct Failure {
  int code;
  std::string message;
};

#ifdef CONVARITH_HAVE_CUDA
struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
using DevicePtr = std::unique_ptr<void, CudaFree>;

Status cuda_status(cudaError_t e, const char* what) {
  if (e == cudaSuccess)
    return Status::ok();
  return device_error(std::string(what) + ": " + cudaGetErrorString(e));
}

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

// Runs the plan with host buffers in and out, moving them to the GPU for a CUDA plan.
Status execute(const Plan& plan, const std::vector<float>& x, const std::vector<float>* w, const std::vector<float>* b,
               std::vector<float>& y) {
  if (plan.device() == Device::kCpu) {
    std::vector<unsigned char> workspace(plan.workspace_bytes());
    return plan.run(x.data(), w ? w->data() : nullptr, b ? b->data() : nullptr, y.data(),
                    workspace.empty() ? nullptr : workspace.data(), workspace.size(), nullptr);
  }
#ifdef CONVARITH_HAVE_CUDA
  DevicePtr dx, dw, db, dy, dws;
  CONVARITH_RETURN_IF_ERROR(upload(dx, x.data(), x.size() * sizeof(float), "cudaMalloc/cudaMemcpy x"));
  if (w)
    CONVARITH_RETURN_IF_ERROR(upload(dw, w->data(), w->size() * sizeof(float), "cudaMalloc/cudaMemcpy w"));
  if (b)
    CONVARITH_RETURN_IF_ERROR(upload(db, b->data(), b->size() * sizeof(float), "cudaMalloc/cudaMemcpy b"));
  CONVARITH_RETURN_IF_ERROR(upload(dy, nullptr, y.size() * sizeof(float), "cudaMalloc y"));
  CONVARITH_RETURN_IF_ERROR(upload(dws, nullptr, plan.workspace_bytes(), "cudaMalloc workspace"));
  if (dy) {
    // NaN (all-ones bytes) so that an element the kernel never writes shows up in --check.
    CONVARITH_RETURN_IF_ERROR(cuda_status(cudaMemset(dy.get(), 0xff, y.size() * sizeof(float)), "cudaMemset y"));
  }
  CONVARITH_RETURN_IF_ERROR(plan.run(static_cast<const float*>(dx.get()), static_cast<const float*>(dw.get()),
                                     static_cast<const float*>(db.get()), static_cast<float*>(dy.get()), dws.get(),
                                     plan.workspace_bytes(), nullptr));
  // The plan enqueued on the legacy default stream; this copy waits for it.
  CONVARITH_RETURN_IF_ERROR(cuda_status(cudaGetLastError(), "kernel launch"));
  if (dy) {
    CONVARITH_RETURN_IF_ERROR(
        cuda_status(cudaMemcpy(y.data(), dy.get(), y.size() * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy y"));
  }
  CONVARITH_RETURN_IF_ERROR(cuda_status(cudaDeviceSynchronize(), "cudaDeviceSynchronize"));
  return Status::ok();
#else
  return device_error("convarith run was built without CUDA");
#endif
}

// Reads an .npy operand; when the matching --x-shape/--w-shape was given it must agree.
Result<NpyArray> read_operand(const std::string& option, const std::string& path,
                              const std::optional<std::vector<int64_t>>& declared, const char* declared_option) {
  Result<NpyArray> a = read_npy(path);
  if (!a)
    return Status(a.status().code(), option + " " + a.status().message());
  if (declared && *declared != a->shape) {
    return invalid_argument(std::string(declared_option) + " " + join(*declared) + " disagrees with " + path +
                            ", whose shape is " + shape_text(a->shape));
  }
  return a;
}

Result<Device> pick_device(const std::string& name, std::ostream& err) {
  if (name == "auto") {
    const bool cuda = cuda_device_count() > 0;
    err << "convarith run: --device auto: using " << (cuda ? "cuda" : "cpu");
    if (!cuda)
      err << " (" << cuda_unavailable_reason() << ")";
    err << "\n";
    return cuda ? Device::kCuda : Device::kCpu;
  }
  Result<Device> d = parse_device(name);
  if (!d)
    return invalid_argument("--device '" + name + "': expected cpu, cuda or auto");
  return d;
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
  for (const char* file : {"--x", "--w", "--b", "--out"})
    if (args.has(file) && args.extras.at(file).empty())
      return fail(2, std::string(file) + " is empty: give a file name");
  const bool pool = is_pool(args.op);
  if (pool && args.has("--w"))
    return fail(2, std::string("--w does not apply to ") + op_cli_name(args.op));
  if (pool && args.has("--b"))
    return fail(2, std::string("--b does not apply to ") + op_cli_name(args.op));
  if (!pool && !args.has("--w"))
    return fail(2, std::string(op_cli_name(args.op)) + " needs --w FILE (the weight .npy)");

  Result<NpyArray> x = read_operand("--x", args.extras.at("--x"), args.x_shape, "--x-shape");
  if (!x)
    return fail(2, x.status().message());
  args.x_shape = x->shape;
  args.x_shape_source = args.extras.at("--x") + " (--x) shape";
  Result<NpyArray> w = Status(invalid_argument("no weight"));
  if (!pool) {
    w = read_operand("--w", args.extras.at("--w"), args.w_shape, "--w-shape");
    if (!w)
      return fail(2, w.status().message());
    args.w_shape = w->shape;
    args.w_shape_source = args.extras.at("--w") + " (--w) shape";
  }
  Result<ProblemDesc> desc = layer_desc(args);
  if (!desc)
    return fail(2, desc.status().message());
  Result<ConvProblem> problem = ConvProblem::make(*desc);
  if (!problem)
    return fail(2, problem.status().message());
  const ConvProblem& p = *problem;
  // layer_desc built the problem from these shapes; this guards the contract all the same.
  if (x->shape != p.x_shape())
    return fail(2, args.extras.at("--x") + " has shape " + shape_text(x->shape) + ", the problem needs " +
                       shape_text(p.x_shape()));
  if (!pool && w->shape != p.w_shape())
    return fail(2, args.extras.at("--w") + " has shape " + shape_text(w->shape) + ", the problem needs " +
                       shape_text(p.w_shape()));

  Result<NpyArray> b = Status(invalid_argument("no bias"));
  if (args.has("--b")) {
    b = read_npy(args.extras.at("--b"));
    if (!b)
      return fail(2, "--b " + b.status().message());
    if (b->shape != std::vector<int64_t>{p.k()})
      return fail(2, args.extras.at("--b") + ": the bias has shape " + shape_text(b->shape) +
                         ", but K=" + std::to_string(p.k()) + " needs (" + std::to_string(p.k()) + ",)");
  }

  Result<Device> device = pick_device(args.has("--device") ? args.extras.at("--device") : "auto", err);
  if (!device)
    return fail(2, device.status().message());
  const std::string algo = args.has("--algo") ? args.extras.at("--algo") : "auto";
  Result<Plan> plan = Plan::create(p, *device, algo);
  if (!plan)
    return fail(2, plan.status().message());

  // Everything this run allocates from the problem's sizes, refused as a whole before any of it is.
  // The operands already read count too: they stay in memory throughout.
  HostMemory memory;
  memory.add("x, w and b as read", x->data.size() + (pool ? 0 : w->data.size()) + (b ? b->data.size() : 0),
             sizeof(float));
  memory.add("y " + join(p.y_shape(), "x"), static_cast<uint64_t>(p.y_elements()), sizeof(float));
  if (plan->device() == Device::kCpu)
    memory.add("workspace of " + std::string(plan->algorithm()), plan->workspace_bytes(), 1);
  if (args.has("--check"))
    memory.add("--check's fp64 reference and magnitudes", static_cast<uint64_t>(p.y_elements()), 2 * sizeof(double));
  const Status fits = memory.check(std::string("running ") + op_cli_name(p.op()) + " " + join(p.x_shape(), "x") +
                                   " -> " + join(p.y_shape(), "x"));
  if (!fits)
    return fail(1, fits.message());
  std::vector<float> y(static_cast<size_t>(p.y_elements()));
  Status ran = execute(*plan, x->data, pool ? nullptr : &w->data, b ? &b->data : nullptr, y);
  if (!ran.is_ok())
    return fail(1, std::string("running ") + plan->algorithm() + " failed: " + ran.to_string());

  out << op_cli_name(p.op()) << " " << join(p.x_shape(), "x") << " -> " << join(p.y_shape(), "x") << " on "
      << device_name(plan->device()) << " with " << plan->algorithm() << "\n";
  if (args.has("--check")) {
    const Reference ref = reference(p, x->data.data(), pool ? nullptr : w->data.data(), b ? b->data.data() : nullptr);
    const ErrorReport e = compare(p, y, ref);
    char line[256];
    std::snprintf(line, sizeof line,
                  "check vs fp64 reference: max abs error %.3e, max rel error %.3e (tolerance %.3e)%s: %s\n", e.max_abs,
                  e.max_rel, e.tolerance, e.nan_count ? (", " + std::to_string(e.nan_count) + " NaN").c_str() : "",
                  e.pass ? "PASS" : "FAIL");
    out << line;
    if (!e.pass)
      return fail(1, "--check failed; " + args.extras.at("--out") + " was not written");
  }
  const Status wrote = write_npy(args.extras.at("--out"), p.y_shape(), y.data());
  if (!wrote.is_ok())
    return fail(1, wrote.message());
  out << "wrote " << args.extras.at("--out") << " " << shape_text(p.y_shape()) << "\n";
  return 0;
}

} // namespace

const char* run_help() {
  return R"(usage: convarith run OP --x x.npy [--w w.npy] [--b b.npy] --out y.npy [attributes]
                     [--device cpu|cuda|auto] [--algo NAME|auto] [--check]

Runs one layer through a convarith Plan and writes the output as .npy (float32, C order).
  --x FILE                 the input, N x C x spatial (its shape is --x-shape; if given, they must agree)
  --w FILE                 conv: K x C/group x kernel; conv-transpose: C x K/group x kernel
                           (its shape is --w-shape; if given, they must agree). Not for pooling.
  --b FILE                 optional bias, shape (K,). Not for pooling.
  --out FILE               written atomically, only when everything succeeded
  --device cpu|cuda|auto   default auto: cuda when a GPU is usable, else cpu (says which on stderr)
  --algo NAME|auto         an algorithm from the table (default auto)
  --check                  also compute an fp64 reference and print the max abs and max relative
                           error (relative to sum |x*w| per element); a failed check exits 1 and
                           writes nothing
Exit status: 0; 2 for a bad layer, file or option; 1 when running, checking or writing fails, or
when the buffers would pass the memory limit (the message gives the bytes needed and the limit).

Example:
  convarith run conv --x x.npy --w w.npy --b b.npy --strides 2,2 --pads 1,1,1,1 --out y.npy --check

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
