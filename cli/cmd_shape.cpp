// cli/cmd_shape.cpp — `convarith shape OP ...`: the output shape of a layer and, per axis, which of
// the paper's relationships gives it, with the numbers filled in. Every number comes from
// ConvProblem (the library's arithmetic); nothing here computes a size.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "attributes.hpp"
#include "commands.hpp"
#include "convarith/problem.hpp"
#include "subcommands.hpp"

namespace convarith::cli {
namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string json_array(const std::vector<int64_t>& v) {
  return "[" + join(v, ",") + "]";
}

// FLOPs are a double (they can pass 2^63); print integral values without an exponent.
std::string number(double v) {
  char buf[64];
  if (std::fabs(v) < 9007199254740992.0 && v == std::floor(v)) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.17g", v);
  }
  return buf;
}

struct ShapeFacts {
  std::vector<int64_t> pads, output_padding; // pads: begins then ends
  std::vector<RelationshipInfo> axes;
};

ShapeFacts facts(const ConvProblem& p) {
  ShapeFacts f;
  std::vector<int64_t> ends;
  for (int j = 0; j < p.rank(); ++j) {
    const AxisParams& a = p.axis(j);
    f.pads.push_back(a.p_lo);
    ends.push_back(a.p_hi);
    f.output_padding.push_back(a.a);
    f.axes.push_back(classify_relationship(p.op(), a, p.out(j), p.ceil_mode()));
  }
  f.pads.insert(f.pads.end(), ends.begin(), ends.end());
  return f;
}

void print_json(const ConvProblem& p, std::ostream& out) {
  const ShapeFacts f = facts(p);
  out << "{\"op\":" << json_string(op_cli_name(p.op())) << ",\"x_shape\":" << json_array(p.x_shape())
      << ",\"output_shape\":" << json_array(p.y_shape()) << ",\"weight_shape\":" << json_array(p.w_shape())
      << ",\"group\":" << p.groups() << ",\"auto_pad\":" << json_string(pad_mode_name(p.pad_mode()))
      << ",\"pads\":" << json_array(f.pads) << ",\"output_padding\":" << json_array(f.output_padding) << ",\"axes\":[";
  for (size_t j = 0; j < f.axes.size(); ++j) {
    out << (j ? "," : "") << "{\"relationship\":" << static_cast<int>(f.axes[j].relationship)
        << ",\"name\":" << json_string(f.axes[j].name) << ",\"formula\":" << json_string(f.axes[j].formula) << "}";
  }
  out << "],\"dtype\":" << json_string(dtype_name(p.dtype(TensorId::kX)))
      << ",\"layout\":" << json_string(layout_name(p.layout()));
  if (!is_pool(p.op()))
    out << ",\"w_layout\":" << json_string(layout_name(p.w_layout()));
  out << ",\"tensors\":{";
  bool first = true;
  for (TensorId t : {TensorId::kX, TensorId::kW, TensorId::kBias, TensorId::kZ, TensorId::kY}) {
    const TensorDesc& d = p.tensor(t);
    if (d.rank == 0)
      continue;
    out << (first ? "" : ",") << json_string(tensor_name(t)) << ":{\"dtype\":" << json_string(dtype_name(d.dtype));
    if (t != TensorId::kBias)
      out << ",\"layout\":" << json_string(layout_name(d.layout));
    out << ",\"memory_shape\":" << json_array(d.physical_dims()) << ",\"bytes\":" << d.bytes() << "}";
    first = false;
  }
  const Epilogue& e = p.epilogue();
  out << "},\"epilogue\":{\"activation\":" << json_string(activation_name(e.activation))
      << ",\"alpha\":" << number(e.alpha) << ",\"beta\":" << number(e.beta);
  if (e.activation == Activation::kLeakyRelu)
    out << ",\"leaky_alpha\":" << number(e.leaky_alpha);
  if (e.activation == Activation::kClip)
    out << ",\"clip_min\":" << number(e.clip_min) << ",\"clip_max\":" << number(e.clip_max);
  out << ",\"formula\":" << json_string("y = " + epilogue_text(p)) << "}";
  out << ",\"flops\":" << number(p.flops()) << ",\"min_bytes\":" << p.min_bytes() << "}\n";
}

void print_text(const ConvProblem& p, std::ostream& out) {
  const ShapeFacts f = facts(p);
  const size_t r = static_cast<size_t>(p.rank());
  const std::vector<int64_t> begins(f.pads.begin(), f.pads.begin() + static_cast<std::ptrdiff_t>(r));
  const std::vector<int64_t> ends(f.pads.begin() + static_cast<std::ptrdiff_t>(r), f.pads.end());
  out << op_cli_name(p.op()) << ": x " << join(p.x_shape(), "x") << " -> y " << join(p.y_shape(), "x") << "\n";
  if (p.op() == Op::kConv)
    out << "  weight            " << join(p.w_shape(), "x") << " (K x C/group x kernel)\n";
  if (p.op() == Op::kConvTranspose)
    out << "  weight            " << join(p.w_shape(), "x") << " (C x K/group x kernel)\n";
  if (!is_pool(p.op()))
    out << "  group             " << p.groups() << "\n";
  out << "  pads              begins " << join(begins) << ", ends " << join(ends) << " (auto_pad "
      << pad_mode_name(p.pad_mode()) << ")\n";
  if (p.op() == Op::kConvTranspose)
    out << "  output padding    " << join(f.output_padding) << "\n";
  if (is_pool(p.op()) && p.ceil_mode())
    out << "  ceil_mode         1\n";
  if (p.op() == Op::kAvgPool)
    out << "  count_include_pad " << (p.count_include_pad() ? 1 : 0) << "\n";
  for (size_t j = 0; j < f.axes.size(); ++j) {
    out << "  axis " << j << "            " << f.axes[j].name << ": " << f.axes[j].formula << "\n";
  }
  // The formats: each tensor's dtype, layout and shape in memory, then the epilogue.
  for (TensorId t : {TensorId::kX, TensorId::kW, TensorId::kBias, TensorId::kZ, TensorId::kY}) {
    const TensorDesc& d = p.tensor(t);
    if (d.rank == 0)
      continue;
    std::string label = std::string("  ") + tensor_name(t);
    label.resize(20, ' ');
    out << label << dtype_name(d.dtype);
    if (t != TensorId::kBias)
      out << " " << layout_name(d.layout) << ", in memory " << join(d.physical_dims(), "x");
    out << "\n";
  }
  out << "  epilogue          y = " << epilogue_text(p) << "\n";
  out << "  flops             " << number(p.flops()) << "\n";
  out << "  min bytes         " << p.min_bytes() << "\n";
}

// After an error: per invalid axis, the nearest changes that make it valid (the library's suggestions),
// and for a transposed convolution the legal output padding and the output sizes output_shape can reach.
void print_fixes(const ProblemDesc& desc, std::ostream& err) {
  const std::vector<AxisFix> fixes = suggest_fixes(desc);
  for (size_t j = 0; j < fixes.size(); ++j) {
    const AxisFix& f = fixes[j];
    if (!f.valid && !f.changes.empty()) {
      err << "  axis " << j << ": nearest valid changes (any one):\n";
      for (const std::string& c : f.changes)
        err << "    " << c << "\n";
    }
    if (!f.valid && desc.op == Op::kConvTranspose && f.a_max >= 0 && f.o_min > 0)
      err << "  axis " << j << ": legal output_padding 0.." << f.a_max << "; output_shape can reach " << f.o_min << ".."
          << f.o_max << "\n";
  }
}

} // namespace

const char* shape_help() {
  return R"(usage: convarith shape OP --x-shape N,C,D... [attributes] [--json]

Prints the output shape of a layer and, per spatial axis, which relationship of Dumoulin & Visin,
"A guide to convolution arithmetic for deep learning", gives it (with the numbers filled in), the
resolved pads (and output padding for conv-transpose), the weight shape, each tensor's dtype,
layout and shape in memory (e.g. N x H x W x C with --layout NHWC), the epilogue, FLOPs and
minimum bytes (at the dtypes' sizes).
  --json                   one JSON object: op, x_shape, output_shape, weight_shape (logical N,C,...
                           order), group, auto_pad, pads (begins..., ends...), output_padding, axes
                           [{relationship, name, formula}], dtype, layout, w_layout, tensors {x, w,
                           bias, z, y: {dtype, layout, memory_shape, bytes}}, epilogue {activation,
                           alpha, beta, [leaky_alpha | clip_min, clip_max], formula}, flops, min_bytes
Exit status: 0, or 2 with the reason on stderr when the layer is invalid, followed per invalid axis by
the nearest changes that make it valid (padding, input size, kernel, dilation; for conv-transpose the
legal output padding and the output sizes --output-shape can reach).

Examples:
  convarith shape conv --x-shape 1,1,5,5 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1
  convarith shape conv-transpose --x-shape 1,1,3,3 --w-shape 1,1,3,3 --strides 2,2 --pads 1,1,1,1 --output-padding 1,1
  convarith shape max-pool --x-shape 1,64,112,112 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1 --json
  convarith shape conv --x-shape 1,64,56,56 --w-shape 64,64,3,3 --pads 1,1,1,1 --dtype f16 --layout NHWC \
      --activation relu --beta 1

)";
}

int shape_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      out << shape_help() << attribute_help();
      return 0;
    }
  }
  Result<ParsedLayer> layer = parse_layer(args, {{"--json", false}});
  if (!layer) {
    err << "convarith shape: " << layer.status().message() << "\n";
    return 2;
  }
  Result<ConvProblem> problem = ConvProblem::make(layer->desc);
  if (!problem) {
    err << "convarith shape: " << problem.status().message() << "\n";
    print_fixes(layer->desc, err);
    return 2;
  }
  if (layer->args.has("--json")) {
    print_json(*problem, out);
  } else {
    print_text(*problem, out);
  }
  return out.good() ? 0 : 1;
}

std::vector<std::string> args_after_command(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i)
    args.emplace_back(argv[i]);
  return args;
}

int cmd_shape(int argc, char** argv) {
  return shape_main(args_after_command(argc, argv), std::cout, std::cerr);
}

} // namespace convarith::cli
