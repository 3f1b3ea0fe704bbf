// python/src/module.cpp — convarith._convarith, the nanobind layer under the `convarith` Python package.
//
// It only translates: a layer's ONNX attributes go through the CLI's parser (cli/attributes.hpp: the same
// names, counts and consistency checks as `convarith shape`) into ConvProblem::make; arrays (NumPy through
// the buffer protocol / DLPack, or any DLPack producer) are checked against the plan's tensors (device,
// dtype, shape, strides) and their pointers go to Plan::run, zero-copy, with the GIL released. A Status
// becomes a Python exception (ValueError, convarith.NotSupportedError, convarith.DeviceError), so no error
// of the library can take the interpreter down. Nothing here computes a size.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "attributes.hpp"
#include "convarith/arithmetic.hpp"
#include "convarith/device.hpp"
#include "convarith/plan.hpp"
#include "convarith/problem.hpp"
#include "convarith/version.hpp"

namespace nb = nanobind;
using namespace nb::literals;

namespace convarith::python {
namespace {

struct NotSupportedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct DeviceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The CLI parser names options as on the command line ("--kernel-shape"); Python callers wrote keyword
// arguments ("kernel_shape"). Rewrites every "--word-word" into "word_word".
std::string python_names(const std::string& m) {
  std::string out;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == '-' && i + 2 < m.size() && m[i + 1] == '-' && std::islower(static_cast<unsigned char>(m[i + 2])) &&
        (i == 0 || m[i - 1] == ' ' || m[i - 1] == '(')) {
      i += 2;
      while (i < m.size() && (std::islower(static_cast<unsigned char>(m[i])) || m[i] == '-')) {
        out += m[i] == '-' ? '_' : m[i];
        ++i;
      }
      --i;
      continue;
    }
    out += m[i];
  }
  return out;
}

[[noreturn]] void raise(const Status& s) {
  const std::string m = python_names(s.message());
  switch (s.code()) {
  case StatusCode::kInvalidArgument:
  case StatusCode::kOutOfRange:
    throw nb::value_error(m.c_str());
  case StatusCode::kNotSupported:
    throw NotSupportedError(m);
  case StatusCode::kDeviceError:
    throw DeviceError(m);
  default:
    throw std::runtime_error("convarith internal error (" + std::string(status_code_name(s.code())) + "): " + m);
  }
}

template <typename T> T take(Result<T> r) {
  if (!r)
    raise(r.status());
  return std::move(r).value();
}

void check(const Status& s) {
  if (!s.is_ok())
    raise(s);
}

std::string tuple_text(const std::vector<int64_t>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

Activation parse_activation(const std::string& name) {
  std::string t;
  for (char ch : name)
    t += ch == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (t == "none" || t.empty())
    return Activation::kIdentity;
  std::string known;
  for (int i = 0; i <= static_cast<int>(Activation::kGeluTanh); ++i) {
    const Activation a = static_cast<Activation>(i);
    if (t == activation_name(a))
      return a;
    known += (i ? ", " : "") + std::string(activation_name(a));
  }
  throw nb::value_error(("activation '" + name + "' is not one of: " + known).c_str());
}

MathMode parse_math(const std::string& name) {
  for (MathMode m : {MathMode::kStrict, MathMode::kTensorOp})
    if (name == math_mode_name(m))
      return m;
  throw nb::value_error(("math '" + name + "' is not one of: strict, tensor_op").c_str());
}

std::optional<DataType> opt_dtype(const std::optional<std::string>& s) {
  if (!s)
    return std::nullopt;
  return take(parse_dtype(*s));
}

// ---- the problem ---------------------------------------------------------------------------------

struct Problem {
  ConvProblem p;
};

using OptInts = std::optional<std::vector<int64_t>>;

// The geometry (op, shapes, ONNX attributes) through the CLI's parser: the same names and checks as `convarith shape`.
ProblemDesc geometry_desc(const std::string& op, const std::vector<int64_t>& x_shape, const OptInts& w_shape,
                          const OptInts& kernel_shape, const OptInts& strides, const OptInts& pads,
                          const OptInts& dilations, std::optional<int64_t> group,
                          const std::optional<std::string>& auto_pad, const OptInts& output_padding,
                          const OptInts& output_shape, std::optional<bool> ceil_mode,
                          std::optional<bool> count_include_pad, std::optional<int64_t> out_channels) {
  cli::LayerArgs a;
  a.op = take(cli::parse_op(op));
  a.x_shape_source = "x_shape";
  a.w_shape_source = "w_shape";
  a.x_shape = x_shape;
  a.w_shape = w_shape;
  a.kernel_shape = kernel_shape;
  a.strides = strides;
  a.pads = pads;
  a.dilations = dilations;
  a.group = group;
  if (auto_pad)
    a.auto_pad = take(parse_pad_mode(*auto_pad));
  a.output_padding = output_padding;
  a.output_shape = output_shape;
  a.ceil_mode = ceil_mode;
  a.count_include_pad = count_include_pad;
  a.out_channels = out_channels;
  return take(cli::layer_desc(a));
}

Problem make_problem(const std::string& op, const std::vector<int64_t>& x_shape, const OptInts& w_shape,
                     const OptInts& kernel_shape, const OptInts& strides, const OptInts& pads, const OptInts& dilations,
                     std::optional<int64_t> group, const std::optional<std::string>& auto_pad,
                     const OptInts& output_padding, const OptInts& output_shape, std::optional<bool> ceil_mode,
                     std::optional<bool> count_include_pad, std::optional<int64_t> out_channels,
                     const std::string& dtype, const std::optional<std::string>& w_dtype,
                     const std::optional<std::string>& bias_dtype, const std::optional<std::string>& z_dtype,
                     const std::optional<std::string>& y_dtype, const std::string& layout,
                     const std::optional<std::string>& w_layout, const std::string& math, const std::string& activation,
                     float alpha, float beta, float leaky_alpha, float clip_min, float clip_max) {
  ProblemDesc d = geometry_desc(op, x_shape, w_shape, kernel_shape, strides, pads, dilations, group, auto_pad,
                                output_padding, output_shape, ceil_mode, count_include_pad, out_channels);
  d.dtype = take(parse_dtype(dtype));
  d.w_dtype = opt_dtype(w_dtype);
  d.bias_dtype = opt_dtype(bias_dtype);
  d.z_dtype = opt_dtype(z_dtype);
  d.y_dtype = opt_dtype(y_dtype);
  d.layout = take(parse_layout(layout));
  if (w_layout)
    d.w_layout = take(parse_layout(*w_layout));
  d.math = parse_math(math);
  d.epilogue.activation = parse_activation(activation);
  d.epilogue.alpha = alpha;
  d.epilogue.beta = beta;
  d.epilogue.leaky_alpha = leaky_alpha;
  d.epilogue.clip_min = clip_min;
  d.epilogue.clip_max = clip_max;
  return Problem{take(ConvProblem::make(d))};
}

// Per spatial axis, the library's nearest valid changes (suggest_fixes) as a dict.
nb::list suggest(const std::string& op, const std::vector<int64_t>& x_shape, const OptInts& w_shape,
                 const OptInts& kernel_shape, const OptInts& strides, const OptInts& pads, const OptInts& dilations,
                 std::optional<int64_t> group, const std::optional<std::string>& auto_pad,
                 const OptInts& output_padding, const OptInts& output_shape, std::optional<bool> ceil_mode,
                 std::optional<bool> count_include_pad, std::optional<int64_t> out_channels) {
  const ProblemDesc d = geometry_desc(op, x_shape, w_shape, kernel_shape, strides, pads, dilations, group, auto_pad,
                                      output_padding, output_shape, ceil_mode, count_include_pad, out_channels);
  nb::list out;
  for (const AxisFix& f : suggest_fixes(d)) {
    nb::dict a;
    a["valid"] = f.valid;
    a["output"] = f.output;
    a["reason"] = f.reason;
    a["shortfall"] = f.shortfall;
    a["min_input"] = f.min_input;
    a["max_kernel"] = f.max_kernel;
    a["max_dilation"] = f.max_dilation;
    a["padding"] = f.has_padding ? nb::object(nb::make_tuple(f.padding.lo, f.padding.hi)) : nb::none();
    a["output_padding_range"] = f.a_max >= 0 ? nb::object(nb::make_tuple(0, f.a_max)) : nb::none();
    a["output_shape_range"] = f.o_min > 0 ? nb::object(nb::make_tuple(f.o_min, f.o_max)) : nb::none();
    a["changes"] = f.changes;
    out.append(a);
  }
  return out;
}

nb::dict tensor_dict(const ConvProblem& p, TensorId id) {
  const TensorDesc& t = p.tensor(id);
  nb::dict d;
  d["dtype"] = dtype_name(t.dtype);
  d["layout"] = layout_name(t.layout);
  d["dims"] = std::vector<int64_t>(t.dims.begin(), t.dims.begin() + t.rank);
  d["strides"] = std::vector<int64_t>(t.strides.begin(), t.strides.begin() + t.rank);
  d["physical_dims"] = t.rank > 0 ? t.physical_dims() : std::vector<int64_t>{};
  d["elements"] = t.elements;
  return d;
}

TensorId parse_tensor(const std::string& name) {
  for (int i = 0; i < kNumTensors; ++i)
    if (name == tensor_name(static_cast<TensorId>(i)))
      return static_cast<TensorId>(i);
  throw nb::value_error(("tensor '" + name + "' is not one of: x, w, bias, z, y").c_str());
}

// ---- arrays ------------------------------------------------------------------------------------------

using ROArray = nb::ndarray<nb::ro>;
using RWArray = nb::ndarray<>;

const char* device_type_name(int t) {
  switch (t) {
  case nb::device::cpu::value:
    return "cpu";
  case nb::device::cuda::value:
    return "cuda";
  case nb::device::cuda_host::value:
    return "cuda_host";
  case nb::device::cuda_managed::value:
    return "cuda_managed";
  default:
    return "other";
  }
}

std::string dlpack_dtype_name(nb::dlpack::dtype t) {
  const char* kind = "unknown";
  switch (static_cast<nb::dlpack::dtype_code>(t.code)) {
  case nb::dlpack::dtype_code::Int:
    kind = "int";
    break;
  case nb::dlpack::dtype_code::UInt:
    kind = "uint";
    break;
  case nb::dlpack::dtype_code::Float:
    kind = "float";
    break;
  case nb::dlpack::dtype_code::Bfloat:
    kind = "bfloat";
    break;
  case nb::dlpack::dtype_code::Complex:
    kind = "complex";
    break;
  case nb::dlpack::dtype_code::Bool:
    kind = "bool";
    break;
  default:
    break;
  }
  return std::string(kind) + std::to_string(t.bits) + (t.lanes != 1 ? "x" + std::to_string(t.lanes) : "");
}

// The library's dtype of an array, or nullopt. uint16 counts as bf16 only where the Python layer made a
// uint16 view of an ml_dtypes.bfloat16 array (NumPy cannot export that dtype itself).
std::optional<DataType> array_dtype(nb::dlpack::dtype t, bool u16_is_bf16) {
  if (t.lanes != 1)
    return std::nullopt;
  if (t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Float) && t.bits == 32)
    return DataType::kF32;
  if (t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Float) && t.bits == 16)
    return DataType::kF16;
  if (t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::Bfloat) && t.bits == 16)
    return DataType::kBF16;
  if (u16_is_bf16 && t.code == static_cast<uint8_t>(nb::dlpack::dtype_code::UInt) && t.bits == 16)
    return DataType::kBF16;
  return std::nullopt;
}

std::string type_of(nb::handle h) {
  return nb::cast<std::string>(nb::type_name(h.type()));
}

template <typename Array> Array import_array(const char* name, nb::handle obj, bool writable) {
  Array a;
  if (!nb::try_cast(obj, a, false)) {
    throw nb::type_error((std::string(name) + ": expected " + (writable ? "a writable" : "an") +
                          " array (a NumPy array, or any DLPack producer), got " + type_of(obj) +
                          (writable ? " (read-only arrays cannot be outputs)" : ""))
                             .c_str());
  }
  return a;
}

// Checks one array against the plan's tensor and returns its data pointer. Every message says what was expected.
template <typename Array>
void check_array(const char* name, const Array& a, const TensorDesc& t, const DeviceInfo& dev, bool u16_is_bf16) {
  const bool want_cuda = dev.device == Device::kCuda;
  const int dt = a.device_type();
  const bool cpu_ok = dt == nb::device::cpu::value;
  const bool cuda_ok = dt == nb::device::cuda::value || dt == nb::device::cuda_managed::value;
  if (want_cuda ? !cuda_ok : !cpu_ok) {
    throw nb::value_error((std::string(name) + ": the array is on device '" + device_type_name(dt) +
                           "', but the plan runs on '" + device_name(dev.device) + "' and needs " +
                           (want_cuda ? "CUDA device memory" : "host (CPU) memory"))
                              .c_str());
  }
  if (want_cuda && dt == nb::device::cuda::value && a.device_id() != dev.ordinal) {
    throw nb::value_error((std::string(name) + ": the array is on CUDA device " + std::to_string(a.device_id()) +
                           ", but the plan was made for CUDA device " + std::to_string(dev.ordinal))
                              .c_str());
  }
  const std::optional<DataType> got = array_dtype(a.dtype(), u16_is_bf16);
  if (!got || *got != t.dtype) {
    throw nb::type_error(
        (std::string(name) + ": dtype " + dlpack_dtype_name(a.dtype()) + " is not the plan's " + dtype_name(t.dtype) +
         (t.dtype == DataType::kBF16 ? " (pass an ml_dtypes.bfloat16 array or a DLPack bfloat16)" : ""))
            .c_str());
  }
  std::vector<int64_t> shape, strides;
  for (size_t i = 0; i < a.ndim(); ++i) {
    shape.push_back(static_cast<int64_t>(a.shape(i)));
    strides.push_back(static_cast<int64_t>(a.stride(i)));
  }
  const std::vector<int64_t> want(t.dims.begin(), t.dims.begin() + t.rank);
  if (shape != want) {
    throw nb::value_error((std::string(name) + ": shape " + tuple_text(shape) + " is not the plan's " +
                           tuple_text(want) + " (logical order: N, C, spatial... / K, C/group, kernel...)")
                              .c_str());
  }
  // A dim of size 1 (or an empty tensor) may have any stride: it is never stepped along.
  if (t.elements > 0) {
    for (int i = 0; i < t.rank; ++i) {
      if (t.dims[static_cast<size_t>(i)] > 1 && strides[static_cast<size_t>(i)] != t.strides[static_cast<size_t>(i)]) {
        const std::vector<int64_t> ws(t.strides.begin(), t.strides.begin() + t.rank);
        throw nb::value_error((std::string(name) + ": strides " + tuple_text(strides) + " (in elements) are not the " +
                               "plan's dense " + layout_name(t.layout) + " strides " + tuple_text(ws) +
                               " (NumPy: np.ascontiguousarray for NCHW; a transposed C-order array for channels last)")
                                  .c_str());
      }
    }
  }
}

nb::tuple array_info(nb::handle obj) {
  ROArray a = import_array<ROArray>("array", obj, false);
  std::vector<int64_t> shape, strides;
  for (size_t i = 0; i < a.ndim(); ++i) {
    shape.push_back(static_cast<int64_t>(a.shape(i)));
    strides.push_back(static_cast<int64_t>(a.stride(i)));
  }
  return nb::make_tuple(dlpack_dtype_name(a.dtype()), shape, strides, device_type_name(a.device_type()), a.device_id());
}

// ---- plans -------------------------------------------------------------------------------------------

// Host workspaces of CPU and emulated plans, kept between runs: a fresh allocation per run is fresh pages the
// run first-faults (the CPU rows' im2col panels are megabytes), which made a Python run of a small layer take up
// to several times the CLI's time. Runs from several Python threads (the GIL is released while they run) each
// take their own buffer.
class WorkspacePool {
public:
  explicit WorkspacePool(size_t bytes) : bytes_(bytes) {}
  std::unique_ptr<std::byte[]> take() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!free_.empty()) {
        std::unique_ptr<std::byte[]> b = std::move(free_.back());
        free_.pop_back();
        return b;
      }
    }
    return std::unique_ptr<std::byte[]>(new std::byte[bytes_]);
  }
  void give(std::unique_ptr<std::byte[]> b) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_.size() < kKeep)
      free_.push_back(std::move(b));
  }

private:
  static constexpr size_t kKeep = 4; // buffers kept for concurrent runs; more are freed after their run
  size_t bytes_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<std::byte[]>> free_;
};

struct PyPlan {
  Plan plan;
  std::shared_ptr<WorkspacePool> workspaces = std::make_shared<WorkspacePool>(plan.workspace_bytes());

  // u16_bf16: bit i set when slot i (x, w, bias, z, y, workspace) is a uint16 view of ml_dtypes.bfloat16.
  void run(nb::handle x, nb::handle w, nb::handle bias, nb::handle z, nb::handle out, nb::handle workspace,
           uintptr_t stream, unsigned u16_bf16) const {
    const ConvProblem& p = plan.problem();
    const DeviceInfo& dev = plan.device_info();
    const bool pool = is_pool(p.op());
    std::optional<ROArray> ax, aw, ab, az;
    std::optional<RWArray> ay, aws;
    Tensors t;

    ax = import_array<ROArray>("x", x, false);
    check_array("x", *ax, p.tensor(TensorId::kX), dev, u16_bf16 & 1u);
    t.x = ax->data();
    if (pool) {
      if (!w.is_none())
        throw nb::value_error((std::string(op_name(p.op())) + " takes no weights: pass w=None").c_str());
    } else {
      if (w.is_none() && !plan.has_prepared_weights())
        throw nb::value_error(
            (std::string(op_name(p.op())) + " needs the weights w (or a plan made with constant_weights=True)")
                .c_str());
      if (!w.is_none()) {
        aw = import_array<ROArray>("w", w, false);
        check_array("w", *aw, p.tensor(TensorId::kW), dev, u16_bf16 & 2u);
        t.w = aw->data();
      } // else the plan's constant weights
    }
    if (!bias.is_none()) {
      if (pool)
        throw nb::value_error((std::string(op_name(p.op())) + " takes no bias: pass bias=None").c_str());
      ab = import_array<ROArray>("bias", bias, false);
      check_array("bias", *ab, p.tensor(TensorId::kBias), dev, u16_bf16 & 4u);
      t.bias = ab->data();
    }
    const bool residual = p.epilogue().has_residual();
    if (residual) {
      if (z.is_none())
        throw nb::value_error(("the plan's epilogue has beta=" + std::to_string(p.epilogue().beta) +
                               " and reads the residual z: pass z (the shape of y)")
                                  .c_str());
      az = import_array<ROArray>("z", z, false);
      check_array("z", *az, p.tensor(TensorId::kZ), dev, u16_bf16 & 8u);
      t.z = az->data();
    } else if (!z.is_none()) {
      throw nb::value_error("z is given but the plan's epilogue has beta=0 and would ignore it: make the plan with "
                            "beta != 0, or pass z=None");
    }
    ay = import_array<RWArray>("out", out, true);
    check_array("out", *ay, p.tensor(TensorId::kY), dev, u16_bf16 & 16u);
    t.y = ay->data();

    void* ws = nullptr;
    size_t ws_bytes = plan.workspace_bytes();
    std::unique_ptr<std::byte[]> host_ws; // from the plan's pool, returned after the run (also on error)
    struct GiveBack {
      WorkspacePool& pool;
      std::unique_ptr<std::byte[]>& b;
      ~GiveBack() {
        if (b)
          pool.give(std::move(b));
      }
    } give_back{*workspaces, host_ws};
    if (ws_bytes > 0) {
      if (!workspace.is_none()) {
        aws = import_array<RWArray>("workspace", workspace, true);
        size_t bytes = aws->nbytes();
        if (bytes < ws_bytes)
          throw nb::value_error(
              ("workspace: " + std::to_string(bytes) + " bytes, the plan needs " + std::to_string(ws_bytes)).c_str());
        ws = aws->data();
        ws_bytes = bytes;
      } else if (dev.device != Device::kCuda) {
        host_ws = workspaces->take();
        ws = host_ws.get();
      } else {
        throw nb::value_error(("the plan needs a CUDA workspace of " + std::to_string(ws_bytes) +
                               " bytes: pass workspace= (a uint8 device array)")
                                  .c_str());
      }
    }
    Status st;
    {
      nb::gil_scoped_release release;
      st = plan.run(t, ws, ws_bytes, reinterpret_cast<void*>(stream));
    }
    check(st);
  }
};

nb::list algorithm_rows(std::optional<std::string> device) {
  std::vector<AlgorithmInfo> rows = device ? algorithms(take(parse_device(*device))) : algorithms();
  nb::list out;
  for (const AlgorithmInfo& r : rows) {
    nb::dict d;
    d["name"] = r.name;
    d["device"] = device_name(r.device);
    std::vector<std::string> ops, dtypes, layouts;
    for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool})
      if (r.ops & op_bit(op))
        ops.push_back(op_name(op));
    for (DataType dt : {DataType::kF32, DataType::kF16, DataType::kBF16})
      if (r.dtypes & dtype_bit(dt))
        dtypes.push_back(dtype_name(dt));
    for (Layout l : {Layout::kNCHW, Layout::kNHWC})
      if (r.layouts & layout_bit(l))
        layouts.push_back(layout_name(l));
    d["ops"] = ops;
    d["dtypes"] = dtypes;
    d["layouts"] = layouts;
    d["epilogue"] = r.epilogue;
    d["deterministic"] = r.deterministic;
    d["math"] = r.math;
    d["summary"] = r.summary;
    d["available"] = r.available;
    out.append(d);
  }
  return out;
}

} // namespace
} // namespace convarith::python

NB_MODULE(_convarith, m) {
  using namespace convarith;
  using namespace convarith::python;
  m.doc() = "convarith's C++ core (use the convarith package, not this module)";
  nb::exception<NotSupportedError>(m, "NotSupportedError", PyExc_ValueError);
  nb::exception<DeviceError>(m, "DeviceError", PyExc_RuntimeError);
  m.attr("__version__") = version_string();

  nb::class_<Problem>(m, "Problem")
      .def_prop_ro("op", [](const Problem& s) { return op_name(s.p.op()); })
      .def_prop_ro("rank", [](const Problem& s) { return s.p.rank(); })
      .def_prop_ro("groups", [](const Problem& s) { return s.p.groups(); })
      .def_prop_ro("x_shape", [](const Problem& s) { return s.p.x_shape(); })
      .def_prop_ro("w_shape", [](const Problem& s) { return s.p.w_shape(); })
      .def_prop_ro("y_shape", [](const Problem& s) { return s.p.y_shape(); })
      .def_prop_ro("auto_pad", [](const Problem& s) { return pad_mode_name(s.p.pad_mode()); })
      .def_prop_ro("ceil_mode", [](const Problem& s) { return s.p.ceil_mode(); })
      .def_prop_ro("count_include_pad", [](const Problem& s) { return s.p.count_include_pad(); })
      .def_prop_ro("pads",
                   [](const Problem& s) {
                     std::vector<int64_t> v;
                     for (int j = 0; j < s.p.rank(); ++j)
                       v.push_back(s.p.axis(j).p_lo);
                     for (int j = 0; j < s.p.rank(); ++j)
                       v.push_back(s.p.axis(j).p_hi);
                     return v;
                   })
      .def_prop_ro("output_padding",
                   [](const Problem& s) {
                     std::vector<int64_t> v;
                     for (int j = 0; j < s.p.rank(); ++j)
                       v.push_back(s.p.axis(j).a);
                     return v;
                   })
      .def_prop_ro("axes",
                   [](const Problem& s) {
                     std::vector<std::tuple<int, std::string, std::string>> v;
                     for (int j = 0; j < s.p.rank(); ++j) {
                       RelationshipInfo r = classify_relationship(s.p.op(), s.p.axis(j), s.p.out(j), s.p.ceil_mode());
                       v.emplace_back(static_cast<int>(r.relationship), r.name, r.formula);
                     }
                     return v;
                   })
      .def_prop_ro("flops", [](const Problem& s) { return s.p.flops(); })
      .def_prop_ro("min_bytes", [](const Problem& s) { return s.p.min_bytes(); })
      .def_prop_ro("name", [](const Problem& s) { return s.p.name(); })
      .def_prop_ro("has_residual", [](const Problem& s) { return s.p.epilogue().has_residual(); })
      .def("tensor", [](const Problem& s, const std::string& t) { return tensor_dict(s.p, parse_tensor(t)); });

  m.def("make_problem", &make_problem, "op"_a, "x_shape"_a, "w_shape"_a = nb::none(), "kernel_shape"_a = nb::none(),
        "strides"_a = nb::none(), "pads"_a = nb::none(), "dilations"_a = nb::none(), "group"_a = nb::none(),
        "auto_pad"_a = nb::none(), "output_padding"_a = nb::none(), "output_shape"_a = nb::none(),
        "ceil_mode"_a = nb::none(), "count_include_pad"_a = nb::none(), "out_channels"_a = nb::none(),
        "dtype"_a = "f32", "w_dtype"_a = nb::none(), "bias_dtype"_a = nb::none(), "z_dtype"_a = nb::none(),
        "y_dtype"_a = nb::none(), "layout"_a = "NCHW", "w_layout"_a = nb::none(), "math"_a = "strict",
        "activation"_a = "identity", "alpha"_a = 1.0f, "beta"_a = 0.0f, "leaky_alpha"_a = 0.01f, "clip_min"_a = 0.0f,
        "clip_max"_a = 6.0f);

  m.def("suggest", &suggest, "op"_a, "x_shape"_a, "w_shape"_a = nb::none(), "kernel_shape"_a = nb::none(),
        "strides"_a = nb::none(), "pads"_a = nb::none(), "dilations"_a = nb::none(), "group"_a = nb::none(),
        "auto_pad"_a = nb::none(), "output_padding"_a = nb::none(), "output_shape"_a = nb::none(),
        "ceil_mode"_a = nb::none(), "count_include_pad"_a = nb::none(), "out_channels"_a = nb::none());

  nb::class_<PyPlan>(m, "Plan")
      .def(
          "__init__",
          [](PyPlan* self, const Problem& p, const std::string& device, const std::string& algorithm,
             const std::string& tune_cache, nb::handle weights, bool weights_u16_bf16) {
            PlanOptions options;
            options.algorithm = algorithm;
            options.tune_cache_file = tune_cache;
            const Device d = take(parse_device(device));
            // Constant weights: checked as run() checks w (dtype, shape, layout, memory space), read by create().
            std::optional<ROArray> aw;
            if (!weights.is_none()) {
              if (is_pool(p.p.op()))
                throw nb::value_error(
                    (std::string(op_name(p.p.op())) + " takes no weights: constant weights are for conv ops").c_str());
              aw = import_array<ROArray>("w", weights, false);
              DeviceInfo where;
              where.device = d;
              where.ordinal = d == Device::kCuda ? aw->device_id() : -1; // the plan's own ordinal is checked below
              check_array("w", *aw, p.p.tensor(TensorId::kW), where, weights_u16_bf16);
              options.weights = aw->data();
            }
            std::optional<Result<Plan>> made;
            {
              nb::gil_scoped_release release; // "tune" times the rows: seconds on the emulated device
              made.emplace(Plan::create(p.p, d, options));
            }
            Plan plan = take(std::move(*made));
            if (aw)
              check_array("w", *aw, p.p.tensor(TensorId::kW), plan.device_info(), weights_u16_bf16);
            new (self) PyPlan{std::move(plan)};
          },
          "problem"_a, "device"_a = "cpu", "algorithm"_a = "auto", "tune_cache"_a = "", "weights"_a = nb::none(),
          "weights_u16_bf16"_a = false)
      .def_prop_ro("has_constant_weights", [](const PyPlan& s) { return s.plan.has_prepared_weights(); })
      .def_prop_ro("constant_weight_bytes", [](const PyPlan& s) { return s.plan.prepared_weight_bytes(); })
      .def_prop_ro("algorithm", [](const PyPlan& s) { return std::string(s.plan.algorithm()); })
      .def_prop_ro("requested_algorithm", [](const PyPlan& s) { return s.plan.requested_algorithm(); })
      .def_prop_ro("auto_algorithm", [](const PyPlan& s) { return s.plan.auto_algorithm(); })
      .def_prop_ro("tuned", [](const PyPlan& s) { return s.plan.tuned(); })
      .def_prop_ro("warnings", [](const PyPlan& s) { return s.plan.warnings(); })
      .def_prop_ro("tuning",
                   [](const PyPlan& s) {
                     const TuneReport& r = s.plan.tuning();
                     nb::list timings;
                     for (const TuneTiming& t : r.timings) {
                       nb::dict d;
                       d["algorithm"] = t.algorithm;
                       d["median_us"] = t.median_us;
                       d["reps"] = t.reps;
                       d["error"] = t.error;
                       timings.append(d);
                     }
                     nb::dict out;
                     out["tuned"] = r.tuned;
                     out["source"] = r.source;
                     out["median_us"] = r.median_us;
                     out["timings"] = timings;
                     return out;
                   })
      .def_prop_ro("device", [](const PyPlan& s) { return device_name(s.plan.device()); })
      .def_prop_ro("device_ordinal", [](const PyPlan& s) { return s.plan.device_info().ordinal; })
      .def_prop_ro("deterministic", [](const PyPlan& s) { return s.plan.deterministic(); })
      .def_prop_ro("workspace_bytes", [](const PyPlan& s) { return s.plan.workspace_bytes(); })
      .def_prop_ro("cost_estimate_us", [](const PyPlan& s) { return s.plan.cost_estimate_us(); })
      .def_prop_ro("problem", [](const PyPlan& s) { return Problem{s.plan.problem()}; })
      .def("run", &PyPlan::run, "x"_a, "w"_a.none(), "bias"_a.none(), "z"_a.none(), "out"_a, "workspace"_a.none(),
           "stream"_a = 0, "u16_bf16"_a = 0u);

  m.def("array_info", &array_info, "array"_a);
  m.def("algorithms", &algorithm_rows, "device"_a = nb::none());
  m.def("cuda_device_count", &cuda_device_count);
  m.def("cuda_unavailable_reason", &cuda_unavailable_reason);
}
