// cli/attributes.cpp — ONNX attributes as options -> ProblemDesc. The parser checks spelling,
// counts and consistency only; ConvProblem::make owns every size rule.
#include "attributes.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace convarith::cli {
namespace {

enum class Kind { kList, kCount, kPadMode, kBool, kFormat };

struct AttributeOption {
  const char* name;
  Kind kind;
};

constexpr AttributeOption kAttributeOptions[] = {
    {"--x-shape", Kind::kList},
    {"--w-shape", Kind::kList},
    {"--kernel-shape", Kind::kList},
    {"--strides", Kind::kList},
    {"--pads", Kind::kList},
    {"--dilations", Kind::kList},
    {"--group", Kind::kCount},
    {"--out-channels", Kind::kCount},
    {"--auto-pad", Kind::kPadMode},
    {"--output-padding", Kind::kList},
    {"--output-shape", Kind::kList},
    {"--ceil-mode", Kind::kBool},
    {"--count-include-pad", Kind::kBool},
    {"--dtype", Kind::kFormat},
    {"--layout", Kind::kFormat},
    {"--w-layout", Kind::kFormat},
    {"--activation", Kind::kFormat},
    {"--alpha", Kind::kFormat},
    {"--beta", Kind::kFormat},
};

const AttributeOption* find_attribute(const std::string& name) {
  for (const AttributeOption& o : kAttributeOptions)
    if (name == o.name)
      return &o;
  return nullptr;
}

const ExtraOption* find_extra(const std::vector<ExtraOption>& extras, const std::string& name) {
  for (const ExtraOption& o : extras)
    if (name == o.name)
      return &o;
  return nullptr;
}

std::string quote(const std::string& s) {
  return "'" + s + "'";
}

Status store_format(LayerArgs& out, const std::string& name, const std::string& value) {
  if (name == "--dtype") {
    Result<DataType> t = parse_dtype(value);
    if (!t)
      return invalid_argument("--dtype " + quote(value) + ": expected f32, f16 or bf16");
    out.dtype = *t;
  } else if (name == "--layout" || name == "--w-layout") {
    Result<Layout> l = parse_layout(value);
    if (!l)
      return invalid_argument(name + " " + quote(value) + ": expected NCHW or NHWC (NCW/NCDHW and NWC/NDHWC too)");
    (name == "--layout" ? out.layout : out.w_layout) = *l;
  } else if (name == "--activation") {
    Result<Epilogue> e = parse_activation(value);
    if (!e)
      return e.status();
    out.activation = *e;
  } else {
    Result<float> v = parse_float(name, value);
    if (!v)
      return v.status();
    (name == "--alpha" ? out.alpha : out.beta) = *v;
  }
  return Status::ok();
}

Status store(LayerArgs& out, const std::string& name, const std::string& value) {
  const AttributeOption* opt = find_attribute(name);
  if (opt->kind == Kind::kFormat)
    return store_format(out, name, value);
  std::optional<std::vector<int64_t>>* list = nullptr;
  if (name == "--x-shape")
    list = &out.x_shape;
  if (name == "--w-shape")
    list = &out.w_shape;
  if (name == "--kernel-shape")
    list = &out.kernel_shape;
  if (name == "--strides")
    list = &out.strides;
  if (name == "--pads")
    list = &out.pads;
  if (name == "--dilations")
    list = &out.dilations;
  if (name == "--output-padding")
    list = &out.output_padding;
  if (name == "--output-shape")
    list = &out.output_shape;
  switch (opt->kind) {
  case Kind::kList: {
    Result<std::vector<int64_t>> v = parse_list(name, value);
    if (!v)
      return v.status();
    *list = std::move(v).value();
    return Status::ok();
  }
  case Kind::kCount: {
    Result<int64_t> v = parse_count(name, value);
    if (!v)
      return v.status();
    (name == "--group" ? out.group : out.out_channels) = *v;
    return Status::ok();
  }
  case Kind::kPadMode: {
    Result<PadMode> m = parse_pad_mode(value);
    if (!m)
      return invalid_argument(name + " " + quote(value) +
                              ": expected one of NOTSET, SAME_UPPER, SAME_LOWER, VALID, HALF, FULL");
    out.auto_pad = *m;
    return Status::ok();
  }
  case Kind::kBool:
    if (value != "0" && value != "1")
      return invalid_argument(name + " " + quote(value) + ": expected 0 or 1");
    (name == "--ceil-mode" ? out.ceil_mode : out.count_include_pad) = value == "1";
    return Status::ok();
  case Kind::kFormat:
    break; // store_format
  }
  return internal_error("unhandled option " + name);
}

// Attributes that ONNX defines only for some ops: giving one to another op is a mistake, not
// something to ignore silently.
Status check_applies(const LayerArgs& a) {
  const bool conv_like = a.op == Op::kConv || a.op == Op::kConvTranspose;
  const char* op = op_cli_name(a.op);
  auto reject = [&](bool given, const char* name, const char* applies_to) {
    return given ? invalid_argument(std::string(name) + " does not apply to " + op + " (only to " + applies_to + ")")
                 : Status::ok();
  };
  CONVARITH_RETURN_IF_ERROR(reject(!conv_like && a.w_shape, "--w-shape", "conv and conv-transpose"));
  CONVARITH_RETURN_IF_ERROR(reject(!conv_like && a.group, "--group", "conv and conv-transpose"));
  CONVARITH_RETURN_IF_ERROR(reject(!conv_like && a.out_channels, "--out-channels", "conv and conv-transpose"));
  CONVARITH_RETURN_IF_ERROR(reject(!conv_like && a.w_layout, "--w-layout", "conv and conv-transpose"));
  CONVARITH_RETURN_IF_ERROR(
      reject(a.op != Op::kConvTranspose && a.output_padding, "--output-padding", "conv-transpose"));
  CONVARITH_RETURN_IF_ERROR(reject(a.op != Op::kConvTranspose && a.output_shape, "--output-shape", "conv-transpose"));
  CONVARITH_RETURN_IF_ERROR(reject(conv_like && a.ceil_mode, "--ceil-mode", "max-pool and avg-pool"));
  CONVARITH_RETURN_IF_ERROR(reject(a.op != Op::kAvgPool && a.count_include_pad, "--count-include-pad", "avg-pool"));
  if (a.pads && a.auto_pad && *a.auto_pad != PadMode::kExplicit)
    return invalid_argument(std::string("--pads cannot be combined with --auto-pad ") + pad_mode_name(*a.auto_pad) +
                            " (as in ONNX, explicit pads go with NOTSET only)");
  if (a.pads && a.output_shape)
    return invalid_argument("--pads cannot be combined with --output-shape (the pads are computed from the "
                            "requested output shape)");
  return Status::ok();
}

Status check_count(const std::string& name, const std::optional<std::vector<int64_t>>& v, size_t want, const char* what,
                   int rank, const std::string& x_source) {
  if (!v || v->size() == want)
    return Status::ok();
  std::ostringstream m;
  m << name << " " << join(*v) << ": " << v->size() << " value" << (v->size() == 1 ? "" : "s") << " for spatial rank "
    << rank << " (from " << x_source << "); expected " << want << " (" << what << ")";
  return invalid_argument(m.str());
}

void copy_axes(const std::vector<int64_t>& v, size_t first, int rank, std::array<int64_t, kMaxSpatialRank>& out) {
  for (int j = 0; j < rank; ++j)
    out[static_cast<size_t>(j)] = v[first + static_cast<size_t>(j)];
}

} // namespace

const char* op_cli_name(Op op) {
  switch (op) {
  case Op::kConv:
    return "conv";
  case Op::kConvTranspose:
    return "conv-transpose";
  case Op::kMaxPool:
    return "max-pool";
  case Op::kAvgPool:
    return "avg-pool";
  }
  return "?";
}

Result<Op> parse_op(const std::string& text) {
  std::string t;
  for (char ch : text)
    t += ch == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool})
    if (t == op_cli_name(op))
      return op;
  // ONNX operator names, for copy-paste from a model dump.
  if (t == "convtranspose")
    return Op::kConvTranspose;
  if (t == "maxpool")
    return Op::kMaxPool;
  if (t == "averagepool" || t == "avgpool")
    return Op::kAvgPool;
  return invalid_argument("unknown operation " + quote(text) + ": expected conv, conv-transpose, max-pool or avg-pool");
}

Result<int64_t> parse_count(const std::string& what, const std::string& text) {
  if (text.empty())
    return invalid_argument(what + ": empty value where a non-negative integer was expected");
  if (text[0] == '-') {
    bool digits = text.size() > 1;
    for (size_t i = 1; i < text.size(); ++i)
      digits = digits && std::isdigit(static_cast<unsigned char>(text[i]));
    if (digits)
      return invalid_argument(what + ": " + quote(text) + " is negative; expected a non-negative integer");
  }
  int64_t v = 0;
  for (char ch : text) {
    if (!std::isdigit(static_cast<unsigned char>(ch)))
      return invalid_argument(what + ": " + quote(text) + " is not a non-negative integer");
    const int64_t digit = ch - '0';
    if (v > (std::numeric_limits<int64_t>::max() - digit) / 10)
      return out_of_range(what + ": " + quote(text) + " does not fit in a 64-bit integer");
    v = v * 10 + digit;
  }
  return v;
}

Result<std::vector<int64_t>> parse_list(const std::string& what, const std::string& text) {
  if (text.empty())
    return invalid_argument(what + ": empty list; expected comma-separated non-negative integers");
  std::vector<int64_t> out;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    Result<int64_t> v = parse_count(what + " " + text, item);
    if (!v)
      return v.status();
    out.push_back(*v);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return out;
}

std::string join(const std::vector<int64_t>& v, const char* sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? sep : "") + std::to_string(v[i]);
  return s;
}

Result<float> parse_float(const std::string& what, const std::string& text) {
  if (text.empty())
    return invalid_argument(what + ": empty value where a number was expected");
  if (std::isspace(static_cast<unsigned char>(text[0])))
    return invalid_argument(what + " " + quote(text) + ": not a number");
  char* end = nullptr;
  errno = 0;
  const float v = std::strtof(text.c_str(), &end);
  if (end != text.c_str() + text.size())
    return invalid_argument(what + " " + quote(text) + ": not a number");
  if (std::isnan(v) || std::isinf(v) || errno == ERANGE)
    return invalid_argument(what + " " + quote(text) + ": not a finite float32 number");
  return v;
}

Result<Epilogue> parse_activation(const std::string& text) {
  // The name is case-insensitive and may use '-' for '_'; the parameters are numbers as written.
  std::string t = text;
  for (size_t i = 0; i < t.size() && t[i] != ':'; ++i)
    t[i] = t[i] == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(t[i])));
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t colon = t.find(':', start);
    parts.push_back(t.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos)
      break;
    start = colon + 1;
  }
  const std::string what = "--activation " + quote(text);
  Epilogue e;
  const std::string& name = parts[0];
  const struct {
    const char* name;
    Activation act;
  } plain[] = {{"identity", Activation::kIdentity}, {"relu", Activation::kRelu}, {"sigmoid", Activation::kSigmoid},
               {"tanh", Activation::kTanh},         {"silu", Activation::kSilu}, {"gelu", Activation::kGelu},
               {"gelu_tanh", Activation::kGeluTanh}};
  for (const auto& a : plain) {
    if (name == a.name) {
      if (parts.size() != 1)
        return invalid_argument(what + ": " + a.name + " takes no parameter");
      e.activation = a.act;
      return e;
    }
  }
  if (name == "leaky_relu") {
    e.activation = Activation::kLeakyRelu;
    if (parts.size() > 2)
      return invalid_argument(what + ": expected leaky_relu or leaky_relu:A");
    if (parts.size() == 2) {
      Result<float> a = parse_float(what + ": A", parts[1]);
      if (!a)
        return a.status();
      e.leaky_alpha = *a;
    }
    return e;
  }
  if (name == "clip") {
    e.activation = Activation::kClip;
    if (parts.size() != 3)
      return invalid_argument(what + ": expected clip:LO:HI (e.g. clip:0:6 for relu6)");
    Result<float> lo = parse_float(what + ": LO", parts[1]);
    if (!lo)
      return lo.status();
    Result<float> hi = parse_float(what + ": HI", parts[2]);
    if (!hi)
      return hi.status();
    e.clip_min = *lo;
    e.clip_max = *hi;
    return e;
  }
  return invalid_argument(what + ": expected identity, relu, leaky_relu:A, clip:LO:HI, sigmoid, tanh, silu, gelu or "
                                 "gelu_tanh");
}

namespace {
std::string float_text(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", static_cast<double>(v));
  return buf;
}
} // namespace

std::string epilogue_text(const ConvProblem& p) {
  const Epilogue& e = p.epilogue();
  std::string core = (e.alpha == 1.0f ? "" : float_text(e.alpha) + " * ") + std::string(op_cli_name(p.op()));
  if (!is_pool(p.op()))
    core += " + bias";
  if (e.has_residual()) {
    const float b = std::fabs(e.beta);
    core += std::string(e.beta < 0 ? " - " : " + ") + (b == 1.0f ? std::string() : float_text(b) + " * ") + "z";
  }
  std::string act = activation_name(e.activation);
  if (e.activation == Activation::kLeakyRelu)
    act += "[" + float_text(e.leaky_alpha) + "]";
  if (e.activation == Activation::kClip)
    act += "[" + float_text(e.clip_min) + ", " + float_text(e.clip_max) + "]";
  return e.activation == Activation::kIdentity ? core : act + "(" + core + ")";
}

std::string format_text(const ConvProblem& p) {
  std::string s;
  for (TensorId t : {TensorId::kX, TensorId::kW, TensorId::kBias, TensorId::kZ, TensorId::kY}) {
    const TensorDesc& d = p.tensor(t);
    if (d.rank == 0)
      continue;
    s += (s.empty() ? "" : ", ") + std::string(tensor_name(t)) + " " + dtype_name(d.dtype);
    if (t != TensorId::kBias)
      s += std::string(" ") + layout_name(d.layout);
  }
  return s;
}

std::vector<int64_t> physical_order(const std::vector<int64_t>& logical, Layout layout) {
  std::vector<int64_t> out = logical;
  if (layout == Layout::kNHWC && out.size() > 2)
    std::rotate(out.begin() + 1, out.begin() + 2, out.end());
  return out;
}

std::vector<int64_t> logical_order(const std::vector<int64_t>& physical, Layout layout) {
  std::vector<int64_t> out = physical;
  if (layout == Layout::kNHWC && out.size() > 2)
    std::rotate(out.begin() + 1, out.end() - 1, out.end());
  return out;
}

Result<LayerArgs> parse_layer_args(const std::vector<std::string>& args, const std::vector<ExtraOption>& extras) {
  if (args.empty() || args[0].rfind("--", 0) == 0)
    return invalid_argument("missing operation: the first argument must be conv, conv-transpose, max-pool or avg-pool");
  LayerArgs out;
  Result<Op> op = parse_op(args[0]);
  if (!op)
    return op.status();
  out.op = *op;

  std::vector<std::string> seen;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& word = args[i];
    if (word.rfind("--", 0) != 0 || word.size() == 2)
      return invalid_argument("unexpected argument " + quote(word) + " (options start with --; see --help)");
    const size_t eq = word.find('=');
    const std::string name = word.substr(0, eq);
    const AttributeOption* attr = find_attribute(name);
    const ExtraOption* extra = attr ? nullptr : find_extra(extras, name);
    if (!attr && !extra)
      return invalid_argument("unknown option " + quote(name) + " (see --help)");
    for (const std::string& s : seen)
      if (s == name)
        return invalid_argument(name + " given more than once");
    seen.push_back(name);

    const bool takes_value = attr ? true : extra->takes_value;
    std::string value;
    if (eq != std::string::npos) {
      if (!takes_value)
        return invalid_argument(name + " takes no value (got " + quote(word.substr(eq + 1)) + ")");
      value = word.substr(eq + 1);
    } else if (takes_value) {
      if (i + 1 >= args.size())
        return invalid_argument(name + " needs a value");
      value = args[++i];
    }
    if (attr) {
      CONVARITH_RETURN_IF_ERROR(store(out, name, value));
    } else {
      out.extras[name] = value;
    }
  }
  CONVARITH_RETURN_IF_ERROR(check_applies(out));
  if (out.x_shape) {
    // Early count checks so that every command reports a wrong count the same way.
    Result<ProblemDesc> d = layer_desc(out);
    if (!d && d.status().message().rfind("--", 0) == 0 &&
        d.status().message().find("for spatial rank") != std::string::npos)
      return d.status();
  }
  return out;
}

Result<ProblemDesc> layer_desc(const LayerArgs& a) {
  CONVARITH_RETURN_IF_ERROR(check_applies(a));
  if (!a.x_shape)
    return invalid_argument("--x-shape is required (N,C followed by 1 to 3 spatial sizes)");
  const std::vector<int64_t>& x = *a.x_shape;
  if (x.size() < 3 || x.size() > 2 + static_cast<size_t>(kMaxSpatialRank)) {
    return invalid_argument(a.x_shape_source + " " + join(x) + ": " + std::to_string(x.size()) +
                            " values; expected N,C followed by 1 to 3 spatial sizes (3 to 5 values)");
  }
  const int rank = static_cast<int>(x.size()) - 2;
  const size_t r = static_cast<size_t>(rank);
  CONVARITH_RETURN_IF_ERROR(check_count(a.w_shape_source, a.w_shape, r + 2,
                                        a.op == Op::kConvTranspose ? "C, K/group, then the kernel sizes"
                                                                   : "K, C/group, then the kernel sizes",
                                        rank, a.x_shape_source));
  CONVARITH_RETURN_IF_ERROR(
      check_count("--kernel-shape", a.kernel_shape, r, "one per spatial axis", rank, a.x_shape_source));
  CONVARITH_RETURN_IF_ERROR(check_count("--strides", a.strides, r, "one per spatial axis", rank, a.x_shape_source));
  CONVARITH_RETURN_IF_ERROR(check_count("--dilations", a.dilations, r, "one per spatial axis", rank, a.x_shape_source));
  CONVARITH_RETURN_IF_ERROR(check_count("--pads", a.pads, 2 * r, "all begins, then all ends", rank, a.x_shape_source));
  CONVARITH_RETURN_IF_ERROR(
      check_count("--output-padding", a.output_padding, r, "one per spatial axis", rank, a.x_shape_source));
  if (a.output_shape && a.output_shape->size() != r && a.output_shape->size() != r + 2)
    CONVARITH_RETURN_IF_ERROR(check_count("--output-shape", a.output_shape, r,
                                          "one per spatial axis, or N,K and one per axis", rank, a.x_shape_source));

  ProblemDesc d;
  d.op = a.op;
  d.rank = rank;
  d.n = x[0];
  d.c = x[1];
  copy_axes(x, 2, rank, d.input);
  d.groups = a.group.value_or(1);
  d.k = d.c;

  if (is_pool(a.op)) {
    if (!a.kernel_shape)
      return invalid_argument(std::string(op_cli_name(a.op)) + " needs --kernel-shape (the window, one per axis)");
  } else if (!a.kernel_shape && !a.w_shape) {
    return invalid_argument(std::string(op_cli_name(a.op)) + " needs --kernel-shape or --w-shape");
  }

  if (a.w_shape) {
    const std::vector<int64_t>& w = *a.w_shape;
    const std::string ws = a.w_shape_source + " " + join(w);
    if (a.op == Op::kConv) {
      // Conv weight K x C/g x kernel: its second dim times the group must be C.
      int64_t covered = 0;
      const bool fits = checked_mul(w[1], d.groups, &covered);
      if (d.groups >= 1 && (!fits || covered != d.c)) {
        const std::string product = std::to_string(w[1]) + " x group " + std::to_string(d.groups);
        return invalid_argument(ws + ": a conv weight is K x C/group x kernel; its dim 1 is " + std::to_string(w[1]) +
                                " and " + product + (!fits ? " overflows" : " = " + std::to_string(covered)) +
                                " is not C=" + std::to_string(d.c) + " from " + a.x_shape_source + " " + join(x));
      }
      d.k = w[0];
    } else {
      // Transposed weight C x K/g x kernel (PyTorch, ONNX, cuDNN backward-data).
      if (w[0] != d.c) {
        return invalid_argument(ws + ": a conv-transpose weight is C x K/group x kernel, and its first dim " +
                                std::to_string(w[0]) + " is not C=" + std::to_string(d.c) + " from " +
                                a.x_shape_source + " " + join(x));
      }
      if (d.groups >= 1 && !checked_mul(w[1], d.groups, &d.k))
        return out_of_range(ws + ": K = " + std::to_string(w[1]) + " x group " + std::to_string(d.groups) +
                            " does not fit in a 64-bit integer");
    }
    if (a.out_channels && *a.out_channels != d.k) {
      return invalid_argument(ws + " gives K=" + std::to_string(d.k) + " output channels, but --out-channels is " +
                              std::to_string(*a.out_channels));
    }
    const std::vector<int64_t> wk(w.begin() + 2, w.end());
    if (a.kernel_shape && *a.kernel_shape != wk) {
      return invalid_argument("--kernel-shape " + join(*a.kernel_shape) + " disagrees with " + ws + " (kernel " +
                              join(wk, "x") + ")");
    }
    copy_axes(w, 2, rank, d.kernel);
  } else {
    if (a.out_channels)
      d.k = *a.out_channels;
    copy_axes(*a.kernel_shape, 0, rank, d.kernel);
  }

  if (a.strides)
    copy_axes(*a.strides, 0, rank, d.stride);
  if (a.dilations)
    copy_axes(*a.dilations, 0, rank, d.dilation);
  if (a.pads) {
    copy_axes(*a.pads, 0, rank, d.pad_lo);
    copy_axes(*a.pads, r, rank, d.pad_hi);
  }
  if (a.output_padding)
    copy_axes(*a.output_padding, 0, rank, d.output_padding);
  d.pad_mode = a.auto_pad.value_or(PadMode::kExplicit);
  if (a.output_shape) {
    const std::vector<int64_t>& o = *a.output_shape;
    if (o.size() == r + 2 && (o[0] != d.n || o[1] != d.k)) {
      return invalid_argument("--output-shape " + join(o) + ": its first two values must be N=" + std::to_string(d.n) +
                              " and K=" + std::to_string(d.k) + " (or give the spatial sizes only)");
    }
    d.has_output_shape = true;
    copy_axes(o, o.size() - r, rank, d.output_shape);
  }
  d.ceil_mode = a.ceil_mode.value_or(false);
  d.count_include_pad = a.count_include_pad.value_or(false);
  d.dtype = a.dtype.value_or(DataType::kF32);
  d.layout = a.layout.value_or(Layout::kNCHW);
  d.w_layout = a.w_layout; // unset: the same as --layout
  if (a.activation)
    d.epilogue = *a.activation;
  if (a.alpha)
    d.epilogue.alpha = *a.alpha;
  if (a.beta)
    d.epilogue.beta = *a.beta;
  return d;
}

Result<ParsedLayer> parse_layer(const std::vector<std::string>& args, const std::vector<ExtraOption>& extras) {
  Result<LayerArgs> a = parse_layer_args(args, extras);
  if (!a)
    return a.status();
  Result<ProblemDesc> d = layer_desc(*a);
  if (!d)
    return d.status();
  return ParsedLayer{std::move(a).value(), std::move(d).value()};
}

const char* attribute_help() {
  return R"(Layer: OP followed by ONNX attributes spelled as options (value after a space or '=').
  OP                       conv | conv-transpose | max-pool | avg-pool (ONNX Conv, ConvTranspose,
                           MaxPool, AveragePool; '_' and the ONNX names are accepted too)
  --x-shape N,C,D...       input shape, NC[D]HW; 1 to 3 spatial sizes set the rank     e.g. 1,3,224,224
  --w-shape K,C/g,k...     conv weight; conv-transpose: C,K/g,k... (sets K and the kernel;
                           its channel dims must match C and --group)                  e.g. 64,3,7,7
  --kernel-shape k...      kernel / pooling window, one per axis (must agree with --w-shape) e.g. 3,3
  --out-channels K         conv/conv-transpose K when there is no --w-shape (default K = C) e.g. 64
  --strides s...           one per axis (default 1)                                    e.g. 2,2
  --pads b...,e...         all begins then all ends, as ONNX (default 0)               e.g. 1,0,2,1
  --dilations d...         one per axis (default 1)                                    e.g. 2,2
  --group G                conv/conv-transpose groups (default 1; G = C = K: depthwise) e.g. 32
  --auto-pad MODE          NOTSET (use --pads) | VALID | SAME_UPPER | SAME_LOWER, and the paper's
                           HALF (p = floor(k'/2)) | FULL (p = k'-1)                    e.g. SAME_UPPER
  --output-padding a...    conv-transpose only, one per axis, 0 <= a < max(s, d)       e.g. 1,1
  --output-shape o...      conv-transpose only: the spatial output sizes (or N,K,o...);
                           the pads and output padding are computed from it            e.g. 10,10
  --ceil-mode 0|1          pooling: round the window count up (default 0)              e.g. 1
  --count-include-pad 0|1  avg-pool: padding counts in the divisor (default 0)         e.g. 1
Formats and the fused epilogue y = act(alpha * op(x, w) + bias + beta * z) (conv, conv-transpose):
  --dtype f32|f16|bf16     every tensor's element type (default f32; fp32 accumulation)  e.g. f16
  --layout NCHW|NHWC       x, z and y in memory (default NCHW; NHWC = channels last; shapes
                           on the command line stay N,C,spatial whatever the layout)     e.g. NHWC
  --w-layout NCHW|NHWC     the filter (default: --layout); NHWC: K x k... x C/g (conv),
                           C x k... x K/g (conv-transpose)                               e.g. NCHW
  --activation NAME        identity | relu | leaky_relu[:A] | clip:LO:HI | sigmoid | tanh |
                           silu | gelu | gelu_tanh (ONNX semantics; default identity)  e.g. clip:0:6
  --alpha A                scales op(x, w), not the bias (default 1)                   e.g. 0.5
  --beta B                 scales the residual z (default 0: no residual)              e.g. 1
All sizes are checked by the library's arithmetic (ConvProblem::make); a bad layer exits 2.
)";
}

} // namespace convarith::cli
