// host/problem.cpp — ConvProblem's validating factory (see include/convarith/problem.hpp).
#include "convarith/problem.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

namespace convarith {
namespace {

std::string num(int64_t v) {
  return std::to_string(v);
}

std::string join(const int64_t* v, int count, const char* sep) {
  std::string s;
  for (int j = 0; j < count; ++j)
    s += (j ? sep : "") + num(v[j]);
  return s;
}

// Multiplies `factors` with overflow checks; on overflow names the tensor and the factors.
Status checked_product(const char* tensor, const char* formula, const std::vector<int64_t>& factors, int64_t* out) {
  int64_t p = 1;
  bool overflow = false;
  for (int64_t f : factors) {
    if (!checked_mul(p, f, &p)) {
      overflow = true;
      break;
    }
  }
  if (!overflow) {
    *out = p;
    return Status::ok();
  }
  std::string fs;
  for (size_t j = 0; j < factors.size(); ++j)
    fs += (j ? "*" : "") + num(factors[j]);
  return out_of_range(std::string(tensor) + " element count " + formula + " = " + fs + " overflows 64 bits");
}

std::string lower(std::string_view v) {
  std::string s(v);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

std::string fnum(float v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

bool valid_dtype(DataType t) {
  return t == DataType::kF32 || t == DataType::kF16 || t == DataType::kBF16;
}
bool valid_layout(Layout l) {
  return l == Layout::kNCHW || l == Layout::kNHWC;
}

// dims[0] outermost; channels first: C order over (dims[0], dims[1], spatial...); channels last: memory order
// (dims[0], spatial..., dims[1]).
// The compact strides are products of max(dim, 1): an empty tensor (say N = 0) still has them, so they are
// overflow-checked on their own (the element count, 0, does not bound them).
Result<TensorDesc> make_tensor(const char* name, DataType dtype, Layout layout, std::vector<int64_t> dims) {
  TensorDesc t;
  t.dtype = dtype;
  t.layout = layout;
  t.rank = static_cast<int>(dims.size());
  int64_t elements = 1;
  for (size_t j = 0; j < dims.size(); ++j) {
    t.dims[j] = dims[j];
    elements *= dims[j]; // overflow-checked by make() before
  }
  t.elements = elements;
  if (t.rank == 1) {
    t.strides[0] = 1;
    return t;
  }
  std::vector<size_t> order; // memory order, innermost last
  order.push_back(0);
  if (layout == Layout::kNHWC) {
    for (size_t j = 2; j < dims.size(); ++j)
      order.push_back(j);
    order.push_back(1);
  } else {
    for (size_t j = 1; j < dims.size(); ++j)
      order.push_back(j);
  }
  int64_t stride = 1;
  for (size_t q = order.size(); q-- > 0;) {
    t.strides[order[q]] = stride;
    if (q > 0 && !checked_mul(stride, std::max<int64_t>(dims[order[q]], 1), &stride)) {
      std::string ds;
      for (size_t j = 0; j < dims.size(); ++j)
        ds += (j ? "x" : "") + num(dims[j]);
      return out_of_range(
          std::string(name) + ": the strides of its " + ds + " " + layout_name(layout) +
          " layout overflow 64 bits (a zero-sized dimension does not shrink the strides of the others)");
    }
  }
  return t;
}

// Axis u as the caller gave it (before auto_pad and output_shape are resolved).
AxisParams requested_axis(const ProblemDesc& desc, size_t u) {
  AxisParams ax;
  ax.i = desc.input[u];
  ax.k = desc.kernel[u];
  ax.s = desc.stride[u];
  ax.p_lo = desc.pad_lo[u];
  ax.p_hi = desc.pad_hi[u];
  ax.d = desc.dilation[u];
  ax.a = desc.output_padding[u];
  return ax;
}

} // namespace

const char* dtype_name(DataType t) {
  switch (t) {
  case DataType::kF32:
    return "f32";
  case DataType::kF16:
    return "f16";
  case DataType::kBF16:
    return "bf16";
  }
  return "unknown-dtype";
}

Result<DataType> parse_dtype(std::string_view s) {
  const std::string v = lower(s);
  if (v == "f32" || v == "float32" || v == "float")
    return DataType::kF32;
  if (v == "f16" || v == "float16" || v == "half" || v == "fp16")
    return DataType::kF16;
  if (v == "bf16" || v == "bfloat16")
    return DataType::kBF16;
  return invalid_argument("dtype '" + std::string(s) + "' is not f32, f16 or bf16");
}

int dtype_bytes(DataType t) {
  return t == DataType::kF32 ? 4 : 2;
}

double dtype_unit_roundoff(DataType t) {
  switch (t) {
  case DataType::kF16:
    return std::ldexp(1.0, -11);
  case DataType::kBF16:
    return std::ldexp(1.0, -8);
  default:
    return std::ldexp(1.0, -24);
  }
}

const char* layout_name(Layout l) {
  return l == Layout::kNHWC ? "NHWC" : "NCHW";
}

Result<Layout> parse_layout(std::string_view s) {
  const std::string v = lower(s);
  if (v == "nchw" || v == "ncdhw" || v == "ncw" || v == "channels_first")
    return Layout::kNCHW;
  if (v == "nhwc" || v == "ndhwc" || v == "nwc" || v == "channels_last")
    return Layout::kNHWC;
  return invalid_argument("layout '" + std::string(s) + "' is not NCHW (channels first) or NHWC (channels last)");
}

const char* math_mode_name(MathMode m) {
  return m == MathMode::kTensorOp ? "tensor_op" : "strict";
}

const char* activation_name(Activation a) {
  switch (a) {
  case Activation::kIdentity:
    return "identity";
  case Activation::kRelu:
    return "relu";
  case Activation::kLeakyRelu:
    return "leaky_relu";
  case Activation::kClip:
    return "clip";
  case Activation::kSigmoid:
    return "sigmoid";
  case Activation::kTanh:
    return "tanh";
  case Activation::kSilu:
    return "silu";
  case Activation::kGelu:
    return "gelu";
  case Activation::kGeluTanh:
    return "gelu_tanh";
  }
  return "unknown-activation";
}

const char* tensor_name(TensorId t) {
  static const char* const names[] = {"x", "w", "bias", "z", "y"};
  const int i = static_cast<int>(t);
  return i >= 0 && i < kNumTensors ? names[i] : "unknown-tensor";
}

std::vector<int64_t> TensorDesc::physical_dims() const {
  std::vector<int64_t> d;
  if (rank == 0)
    return d;
  d.push_back(dims[0]);
  if (layout == Layout::kNHWC && rank > 1) {
    for (int j = 2; j < rank; ++j)
      d.push_back(dims[static_cast<size_t>(j)]);
    d.push_back(dims[1]);
  } else {
    for (int j = 1; j < rank; ++j)
      d.push_back(dims[static_cast<size_t>(j)]);
  }
  return d;
}

Result<ConvProblem> ConvProblem::make(const ProblemDesc& desc) {
  const Op op = desc.op;
  if (op != Op::kConv && op != Op::kConvTranspose && op != Op::kMaxPool && op != Op::kAvgPool)
    return invalid_argument("op " + num(static_cast<int>(op)) + " is not conv, conv_transpose, max_pool or avg_pool");
  const std::string on = op_name(op);
  {
    const std::pair<const char*, std::optional<DataType>> dts[] = {
        {"dtype", desc.dtype},           {"x_dtype", desc.x_dtype}, {"w_dtype", desc.w_dtype},
        {"bias_dtype", desc.bias_dtype}, {"z_dtype", desc.z_dtype}, {"y_dtype", desc.y_dtype}};
    for (const auto& [field, t] : dts)
      if (t && !valid_dtype(*t))
        return invalid_argument(on + ": " + field + " " + num(static_cast<int>(*t)) + " is not f32, f16 or bf16");
    if (!valid_layout(desc.layout))
      return invalid_argument(on + ": layout " + num(static_cast<int>(desc.layout)) + " is not NCHW or NHWC");
    if (desc.w_layout && !valid_layout(*desc.w_layout))
      return invalid_argument(on + ": w_layout " + num(static_cast<int>(*desc.w_layout)) + " is not NCHW or NHWC");
    if (desc.math != MathMode::kStrict && desc.math != MathMode::kTensorOp)
      return invalid_argument(on + ": math mode " + num(static_cast<int>(desc.math)) + " is not strict or tensor_op");
    const Epilogue& e = desc.epilogue;
    if (static_cast<int>(e.activation) < 0 || static_cast<int>(e.activation) > static_cast<int>(Activation::kGeluTanh))
      return invalid_argument(on + ": activation " + num(static_cast<int>(e.activation)) + " is unknown");
    if (is_pool(op) && !e.is_identity())
      return invalid_argument(on + ": pooling has no epilogue (activation " + activation_name(e.activation) +
                              ", alpha " + fnum(e.alpha) + ", beta " + fnum(e.beta) +
                              " given; only identity, alpha 1, beta 0)");
    if (!std::isfinite(e.alpha) || !std::isfinite(e.beta))
      return invalid_argument(on + ": epilogue alpha " + fnum(e.alpha) + " and beta " + fnum(e.beta) +
                              " must be finite");
    if (e.activation == Activation::kLeakyRelu && !std::isfinite(e.leaky_alpha))
      return invalid_argument(on + ": leaky_relu alpha " + fnum(e.leaky_alpha) + " must be finite");
    if (e.activation == Activation::kClip &&
        (std::isnan(e.clip_min) || std::isnan(e.clip_max) || e.clip_min > e.clip_max))
      return invalid_argument(on + ": clip min " + fnum(e.clip_min) + " must be <= max " + fnum(e.clip_max) +
                              " (neither NaN)");
  }
  if (desc.rank < 1 || desc.rank > kMaxSpatialRank)
    return invalid_argument(on + ": spatial rank " + num(desc.rank) + " must be 1, 2 or 3");
  if (desc.n < 0)
    return invalid_argument(on + ": batch N=" + num(desc.n) + " must be >= 0");
  if (desc.c < 1)
    return invalid_argument(on + ": channels C=" + num(desc.c) + " must be >= 1");

  ConvProblem p;
  p.desc_ = desc;
  p.requested_pad_mode_ = desc.pad_mode;
  const bool pool = is_pool(op);
  if (pool) {
    if (desc.groups != 1)
      return invalid_argument(on + ": group=" + num(desc.groups) + " applies to conv and conv_transpose only");
    p.desc_.k = desc.c;
  } else {
    if (desc.k < 1)
      return invalid_argument(on + ": output channels K=" + num(desc.k) + " must be >= 1");
    if (desc.groups < 1)
      return invalid_argument(on + ": group=" + num(desc.groups) + " must be >= 1");
    if (desc.c % desc.groups != 0)
      return invalid_argument(on + ": group=" + num(desc.groups) + " must divide input channels C=" + num(desc.c));
    if (desc.k % desc.groups != 0)
      return invalid_argument(on + ": group=" + num(desc.groups) + " must divide output channels K=" + num(desc.k));
  }
  if (op != Op::kConvTranspose && desc.has_output_shape)
    return invalid_argument(on + ": output_shape applies to conv_transpose only");
  if (!pool && desc.ceil_mode)
    return invalid_argument(on + ": ceil_mode applies to pooling only");
  if (op != Op::kAvgPool && desc.count_include_pad)
    return invalid_argument(on + ": count_include_pad applies to avg_pool only");
  if (desc.pad_mode < PadMode::kExplicit || desc.pad_mode > PadMode::kFull)
    return invalid_argument(on + ": unknown auto_pad value " + num(static_cast<int>(desc.pad_mode)));

  const int base = kMaxSpatialRank - desc.rank;
  for (int j = 0; j < desc.rank; ++j) {
    const size_t u = static_cast<size_t>(j);
    const std::string pre = on + " axis " + num(j) + ": ";
    AxisParams ax = requested_axis(desc, u);
    if (op != Op::kConvTranspose && ax.a != 0)
      return invalid_argument(pre + "output_padding=" + num(ax.a) + " applies to conv_transpose only");
    const bool explicit_pads = ax.p_lo != 0 || ax.p_hi != 0;
    if (desc.has_output_shape) {
      if (explicit_pads)
        return invalid_argument(pre + "pads " + num(ax.p_lo) + "+" + num(ax.p_hi) +
                                " given together with output_shape; output_shape determines the padding (ONNX)");
      Result<TransposeFit> fit = fit_transpose_output(j, ax, desc.output_shape[u], desc.pad_mode);
      if (!fit)
        return fit.status();
      ax.a = fit->a;
      ax.p_lo = fit->pad.lo;
      ax.p_hi = fit->pad.hi;
    } else if (desc.pad_mode != PadMode::kExplicit) {
      if (explicit_pads)
        return invalid_argument(pre + "pads " + num(ax.p_lo) + "+" + num(ax.p_hi) +
                                " given together with auto_pad=" + pad_mode_name(desc.pad_mode));
      Result<Padding> pad = resolve_padding(op, j, desc.pad_mode, ax);
      if (!pad)
        return pad.status();
      ax.p_lo = pad->lo;
      ax.p_hi = pad->hi;
    }
    Result<int64_t> o = output_size(op, j, ax, desc.ceil_mode);
    if (!o)
      return o.status();
    if (desc.has_output_shape && *o != desc.output_shape[u])
      return internal_error(pre + "output_shape fit gave " + num(*o) + " instead of " + num(desc.output_shape[u]));
    const size_t b = static_cast<size_t>(base + j);
    p.axes_[b] = ax;
    p.out_[b] = *o;
    p.desc_.pad_lo[u] = ax.p_lo;
    p.desc_.pad_hi[u] = ax.p_hi;
    p.desc_.output_padding[u] = ax.a;
  }
  p.desc_.pad_mode = PadMode::kExplicit;
  p.desc_.has_output_shape = false;

  // Element counts, overflow-checked.
  std::vector<int64_t> in, ker, out;
  for (int j = 0; j < kMaxSpatialRank; ++j) {
    in.push_back(p.axes_[static_cast<size_t>(j)].i);
    ker.push_back(p.axes_[static_cast<size_t>(j)].k);
    out.push_back(p.out_[static_cast<size_t>(j)]);
  }
  CONVARITH_RETURN_IF_ERROR(checked_product("input", "prod(input spatial)", in, &p.in_spatial_));
  CONVARITH_RETURN_IF_ERROR(checked_product("kernel", "prod(kernel spatial)", ker, &p.kernel_spatial_));
  CONVARITH_RETURN_IF_ERROR(checked_product("output", "prod(output spatial)", out, &p.out_spatial_));
  const int64_t n = desc.n, c = desc.c, k = p.desc_.k, g = p.desc_.groups;
  CONVARITH_RETURN_IF_ERROR(checked_product("x", "N*C*prod(input)", {n, c, p.in_spatial_}, &p.x_elements_));
  CONVARITH_RETURN_IF_ERROR(checked_product("y", "N*K*prod(output)", {n, k, p.out_spatial_}, &p.y_elements_));
  if (pool) {
    p.w_elements_ = 0;
  } else if (op == Op::kConv) {
    CONVARITH_RETURN_IF_ERROR(
        checked_product("w", "K*(C/g)*prod(kernel)", {k, c / g, p.kernel_spatial_}, &p.w_elements_));
  } else {
    CONVARITH_RETURN_IF_ERROR(
        checked_product("w", "C*(K/g)*prod(kernel)", {c, k / g, p.kernel_spatial_}, &p.w_elements_));
  }
  int64_t total = 0;
  const int64_t z_elements = desc.epilogue.has_residual() ? p.y_elements_ : 0;
  if (!checked_add(p.x_elements_, p.w_elements_, &total) || !checked_add(total, p.y_elements_, &total) ||
      !checked_add(total, z_elements, &total) || !checked_mul(total, static_cast<int64_t>(sizeof(float)), &total))
    return out_of_range(on + ": total bytes of x, w, z and y overflow 64 bits");

  // Tensor formats.
  const DataType base_t = desc.dtype;
  const Layout act_layout = desc.layout;
  std::vector<int64_t> xd{n, c}, yd{n, k}, wd;
  for (int j = 0; j < desc.rank; ++j) {
    xd.push_back(p.axis(j).i);
    yd.push_back(p.out(j));
  }
  const auto set = [&](TensorId id, Result<TensorDesc> t) -> Status {
    if (!t)
      return Status(t.status().code(), on + ": " + t.status().message());
    p.tensors_[static_cast<size_t>(id)] = t.value();
    return Status::ok();
  };
  CONVARITH_RETURN_IF_ERROR(set(TensorId::kX, make_tensor("x", desc.x_dtype.value_or(base_t), act_layout, xd)));
  CONVARITH_RETURN_IF_ERROR(set(TensorId::kY, make_tensor("y", desc.y_dtype.value_or(base_t), act_layout, yd)));
  if (!pool) {
    wd = p.w_shape();
    CONVARITH_RETURN_IF_ERROR(
        set(TensorId::kW, make_tensor("w", desc.w_dtype.value_or(base_t), desc.w_layout.value_or(act_layout), wd)));
    CONVARITH_RETURN_IF_ERROR(
        set(TensorId::kBias, make_tensor("bias", desc.bias_dtype.value_or(base_t), Layout::kNCHW, {k})));
    if (desc.epilogue.has_residual())
      CONVARITH_RETURN_IF_ERROR(set(TensorId::kZ, make_tensor("z", desc.z_dtype.value_or(base_t), act_layout, yd)));
  }
  if (!pool) {
    p.desc_.w_layout = p.tensors_[static_cast<size_t>(TensorId::kW)].layout;
  } else {
    p.desc_.w_layout.reset();
  }
  return p;
}

std::vector<int64_t> ConvProblem::x_shape() const {
  std::vector<int64_t> s{desc_.n, desc_.c};
  for (int j = 0; j < desc_.rank; ++j)
    s.push_back(axis(j).i);
  return s;
}

std::vector<int64_t> ConvProblem::w_shape() const {
  if (is_pool(desc_.op))
    return {};
  std::vector<int64_t> s;
  if (desc_.op == Op::kConv)
    s = {desc_.k, desc_.c / desc_.groups};
  else
    s = {desc_.c, desc_.k / desc_.groups};
  for (int j = 0; j < desc_.rank; ++j)
    s.push_back(axis(j).k);
  return s;
}

std::vector<int64_t> ConvProblem::y_shape() const {
  std::vector<int64_t> s{desc_.n, desc_.k};
  for (int j = 0; j < desc_.rank; ++j)
    s.push_back(out(j));
  return s;
}

double ConvProblem::flops() const {
  const double n = static_cast<double>(desc_.n), c = static_cast<double>(desc_.c), k = static_cast<double>(desc_.k);
  const double g = static_cast<double>(desc_.groups), taps = static_cast<double>(kernel_spatial_);
  switch (desc_.op) {
  case Op::kConv:
    return 2.0 * n * k * (c / g) * taps * static_cast<double>(out_spatial_);
  case Op::kConvTranspose:
    return 2.0 * n * c * (k / g) * taps * static_cast<double>(in_spatial_);
  case Op::kMaxPool:
  case Op::kAvgPool:
    return n * c * taps * static_cast<double>(out_spatial_);
  }
  return 0.0;
}

int64_t ConvProblem::min_bytes() const {
  int64_t b = 0;
  for (TensorId t : {TensorId::kX, TensorId::kW, TensorId::kZ, TensorId::kY})
    b += tensor(t).bytes();
  return b;
}

bool ConvProblem::uniform_dtype(DataType t) const {
  for (TensorId id : {TensorId::kX, TensorId::kW, TensorId::kZ, TensorId::kY})
    if (tensor(id).rank > 0 && tensor(id).dtype != t)
      return false;
  const TensorDesc& b = tensor(TensorId::kBias);
  return b.rank == 0 || b.dtype == t || b.dtype == DataType::kF32;
}

bool ConvProblem::is_plain_f32_nchw() const {
  for (int i = 0; i < kNumTensors; ++i)
    if (tensors_[static_cast<size_t>(i)].rank > 0 && (tensors_[static_cast<size_t>(i)].dtype != DataType::kF32 ||
                                                      tensors_[static_cast<size_t>(i)].layout != Layout::kNCHW))
      return false;
  return desc_.epilogue.is_identity();
}

std::string ConvProblem::name() const {
  const int r = desc_.rank;
  std::array<int64_t, kMaxSpatialRank> in{}, ker{}, st{}, lo{}, hi{}, dil{}, op{};
  bool strided = false, padded = false, dilated = false, opad = false;
  for (int j = 0; j < r; ++j) {
    const AxisParams& a = axis(j);
    const size_t u = static_cast<size_t>(j);
    in[u] = a.i, ker[u] = a.k, st[u] = a.s, lo[u] = a.p_lo, hi[u] = a.p_hi, dil[u] = a.d, op[u] = a.a;
    strided |= a.s != 1, padded |= a.p_lo != 0 || a.p_hi != 0, dilated |= a.d != 1, opad |= a.a != 0;
  }
  std::ostringstream s;
  s << op_name(desc_.op) << "_n" << desc_.n << "_c" << desc_.c;
  if (!is_pool(desc_.op))
    s << "_k" << desc_.k;
  if (desc_.groups != 1)
    s << "_g" << desc_.groups;
  s << "_i" << join(in.data(), r, "x") << "_r" << join(ker.data(), r, "x");
  if (strided)
    s << "_s" << join(st.data(), r, "x");
  if (padded)
    s << "_p" << join(lo.data(), r, "x") << "_" << join(hi.data(), r, "x");
  if (dilated)
    s << "_d" << join(dil.data(), r, "x");
  if (opad)
    s << "_a" << join(op.data(), r, "x");
  if (desc_.ceil_mode)
    s << "_ceil";
  if (desc_.count_include_pad)
    s << "_cip";
  // Formats and epilogue, only when not the defaults (names of f32 NC[D]HW problems are unchanged).
  const DataType xt = tensor(TensorId::kX).dtype;
  bool mixed = false;
  for (TensorId id : {TensorId::kW, TensorId::kBias, TensorId::kZ, TensorId::kY})
    mixed |= tensor(id).rank > 0 && tensor(id).dtype != xt;
  if (xt != DataType::kF32 || mixed)
    s << "_" << dtype_name(xt);
  if (mixed)
    for (TensorId id : {TensorId::kW, TensorId::kBias, TensorId::kZ, TensorId::kY})
      if (tensor(id).rank > 0 && tensor(id).dtype != xt)
        s << "_" << tensor_name(id) << dtype_name(tensor(id).dtype);
  if (desc_.layout == Layout::kNHWC)
    s << "_nhwc";
  if (!is_pool(desc_.op) && tensor(TensorId::kW).layout != desc_.layout)
    s << "_w" << (tensor(TensorId::kW).layout == Layout::kNHWC ? "nhwc" : "nchw");
  if (desc_.math == MathMode::kTensorOp)
    s << "_tensorop";
  const Epilogue& e = desc_.epilogue;
  if (e.activation != Activation::kIdentity)
    s << "_" << activation_name(e.activation);
  if (e.alpha != 1.0f)
    s << "_alpha" << e.alpha;
  if (e.beta != 0.0f)
    s << "_res" << (e.beta == 1.0f ? std::string() : fnum(e.beta));
  return s.str();
}

ProblemDesc ConvProblem::resolved() const {
  return desc_;
}

std::vector<AxisFix> suggest_fixes(const ProblemDesc& desc) {
  std::vector<AxisFix> fixes;
  const int rank = std::min(std::max(desc.rank, 0), kMaxSpatialRank);
  for (int j = 0; j < rank; ++j) {
    const size_t u = static_cast<size_t>(j);
    AxisParams ax = requested_axis(desc, u);
    Status unresolved = Status::ok();
    if (desc.op == Op::kConvTranspose && desc.has_output_shape) {
      Result<TransposeFit> fit = fit_transpose_output(j, ax, desc.output_shape[u], desc.pad_mode);
      if (fit) {
        ax.a = fit->a;
        ax.p_lo = fit->pad.lo;
        ax.p_hi = fit->pad.hi;
      } else {
        unresolved = fit.status();
      }
    } else if (desc.pad_mode != PadMode::kExplicit) {
      Result<Padding> pad = resolve_padding(desc.op, j, desc.pad_mode, ax);
      if (pad) {
        ax.p_lo = pad->lo;
        ax.p_hi = pad->hi;
      } else {
        unresolved = pad.status();
      }
    }
    AxisFix f = suggest_axis_fix(desc.op, j, ax, desc.ceil_mode);
    if (!unresolved.is_ok()) {
      f.valid = false;
      f.reason = unresolved.message();
      if (desc.has_output_shape && f.o_max >= f.o_min && f.o_min > 0)
        f.changes.insert(f.changes.begin(), "output_shape " + std::to_string(desc.output_shape[u]) + " -> one of " +
                                                std::to_string(f.o_min) + ".." + std::to_string(f.o_max) +
                                                " (reachable from i=" + std::to_string(ax.i) + ")");
      else
        f.changes.insert(f.changes.begin(), std::string("auto_pad ") + pad_mode_name(desc.pad_mode) +
                                                " -> explicit pads (NOTSET), or another mode");
    }
    fixes.push_back(std::move(f));
  }
  return fixes;
}

} // namespace convarith
