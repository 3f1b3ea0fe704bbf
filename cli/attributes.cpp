// cli/attributes.cpp — ONNX attributes as options -> ProblemDesc. The parser checks spelling,
// counts and consistency only; ConvProblem::make owns every size rule.
#include "attributes.hpp"

#include <cctype>
#include <limits>
#include <sstream>

namespace convarith::cli {
namespace {

enum class Kind { kList, kCount, kPadMode, kBool };

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

Status store(LayerArgs& out, const std::string& name, const std::string& value) {
  const AttributeOption* opt = find_attribute(name);
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
All sizes are checked by the library's arithmetic (ConvProblem::make); a bad layer exits 2.
)";
}

} // namespace convarith::cli
