// cli/attributes.hpp — ONNX Conv / ConvTranspose / MaxPool / AveragePool attributes spelled as
// command-line options, parsed into a ProblemDesc.
//
//   OP --x-shape N,C,D... [--w-shape ...] [--kernel-shape ...] [--strides ...] [--pads b...,e...]
//      [--dilations ...] [--group G] [--auto-pad MODE] [--output-padding ...] [--output-shape ...]
//      [--ceil-mode 0|1] [--count-include-pad 0|1] [--out-channels K]
//      [--dtype f32|f16|bf16] [--layout NCHW|NHWC] [--w-layout NCHW|NHWC] [--activation NAME]
//      [--alpha A] [--beta B]
//
// OP is conv, conv-transpose, max-pool or avg-pool (underscores accepted). Options take their
// value as the next word or after '=' (--strides=2,2). Lists are comma separated. The spatial
// rank comes from --x-shape (rank + 2 values). The parser only checks spelling, counts, signs,
// 64-bit range and consistency between options that describe the same number (a weight shape
// against C, the group and the kernel shape); every size rule is ConvProblem::make's, so the
// CLI never computes an output size itself. The tensor formats and the epilogue (--dtype, --layout,
// --w-layout, --activation, --alpha, --beta) are parsed here too, so every command spells them the
// same way; their rules (pooling has no epilogue, clip's min <= max, ...) are also make()'s.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "convarith/problem.hpp"
#include "convarith/status.hpp"

namespace convarith::cli {

// An option a command accepts besides the layer attributes (e.g. run's --x FILE, shape's --json).
struct ExtraOption {
  std::string name; // with the dashes: "--json"
  bool takes_value; // false: a flag
};

// The attributes as written, before any shape is known. Absent options are std::nullopt.
struct LayerArgs {
  Op op = Op::kConv;
  std::optional<std::vector<int64_t>> x_shape, w_shape, kernel_shape, strides, pads, dilations, output_padding,
      output_shape;
  std::optional<int64_t> group, out_channels;
  std::optional<PadMode> auto_pad;
  std::optional<bool> ceil_mode, count_include_pad;
  // Formats and epilogue. `activation` carries the activation and its parameters (leaky_relu's alpha,
  // clip's bounds); alpha and beta are separate options.
  std::optional<DataType> dtype;
  std::optional<Layout> layout, w_layout;
  std::optional<Epilogue> activation;
  std::optional<float> alpha, beta;
  // How messages name the x and w shapes: the options, or the files `run` read them from.
  std::string x_shape_source = "--x-shape", w_shape_source = "--w-shape";
  // The extra options that were given: name -> value ("" for flags).
  std::map<std::string, std::string> extras;

  bool has(const std::string& extra) const { return extras.count(extra) != 0; }
};

// Parses OP and the options (args excludes the program and subcommand names). Unknown options,
// duplicates, malformed or negative numbers, values that overflow int64 and attributes that do
// not apply to OP are errors naming the option and the text. Counts are checked against the rank
// only when --x-shape is given (see layer_desc for the rest).
Result<LayerArgs> parse_layer_args(const std::vector<std::string>& args, const std::vector<ExtraOption>& extras = {});

// Builds the ProblemDesc: rank, N and C from x_shape (required here), K, kernel and groups from
// w_shape / kernel_shape / group / out_channels (K defaults to C when neither --w-shape nor
// --out-channels says), the rest from the attributes. Checks every count against the rank and
// that --w-shape agrees with C, the group and --kernel-shape. Does not validate sizes: pass the
// result to ConvProblem::make.
Result<ProblemDesc> layer_desc(const LayerArgs& args);

// parse_layer_args + layer_desc, for commands and fuzzers that want the description in one step.
struct ParsedLayer {
  LayerArgs args;
  ProblemDesc desc;
};
Result<ParsedLayer> parse_layer(const std::vector<std::string>& args, const std::vector<ExtraOption>& extras = {});

// The CLI spelling of an op ("conv", "conv-transpose", "max-pool", "avg-pool") and its parser.
const char* op_cli_name(Op op);
Result<Op> parse_op(const std::string& text);

// Parses one non-negative int64 / a comma-separated list of them; `what` names the option in errors.
Result<int64_t> parse_count(const std::string& what, const std::string& text);
Result<std::vector<int64_t>> parse_list(const std::string& what, const std::string& text);

// A finite float (strtof, the whole text); `what` names the option in errors.
Result<float> parse_float(const std::string& what, const std::string& text);
// --activation's value: identity, relu, leaky_relu[:A], clip:LO:HI, sigmoid, tanh, silu, gelu, gelu_tanh
// ('-' accepted for '_'). Only activation and its parameters are set in the result.
Result<Epilogue> parse_activation(const std::string& text);
// "relu(alpha * conv + bias + 0.5 * z)"-style text of the problem's epilogue, and one line with the
// dtypes and layouts: "f16, NHWC (x, z, y), w NHWC".
std::string epilogue_text(const ConvProblem& p);
std::string format_text(const ConvProblem& p);
// A logical shape (N, C, spatial... / K, C/g, spatial...) in memory order for `layout` (channels
// last moves dim 1 to the end), and back.
std::vector<int64_t> physical_order(const std::vector<int64_t>& logical, Layout layout);
std::vector<int64_t> logical_order(const std::vector<int64_t>& physical, Layout layout);

// "1,2,3" and "1x2x3" spellings of a shape, for messages and output.
std::string join(const std::vector<int64_t>& v, const char* sep = ",");

// The text of `--help` for the attribute options (shared by shape, run, bench and draw).
const char* attribute_help();

} // namespace convarith::cli
