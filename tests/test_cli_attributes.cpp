// tests/test_cli_attributes.cpp — ONNX attributes as options -> ProblemDesc (cli/attributes.*):
// what each option sets, and every parse error with the option and the offending text named.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "attributes.hpp"

namespace convarith::cli {
namespace {

using Args = std::vector<std::string>;

ProblemDesc desc_of(const Args& args) {
  Result<ParsedLayer> r = parse_layer(args);
  EXPECT_TRUE(r.is_ok()) << r.status().message();
  return r.is_ok() ? r->desc : ProblemDesc{};
}

// The parse fails and its message contains every one of `parts`.
void expect_error(const Args& args, const std::vector<std::string>& parts,
                  const std::vector<ExtraOption>& extras = {}) {
  Result<ParsedLayer> r = parse_layer(args, extras);
  std::string line;
  for (const std::string& a : args)
    line += " " + a;
  ASSERT_FALSE(r.is_ok()) << "parsed without error:" << line;
  for (const std::string& part : parts)
    EXPECT_NE(r.status().message().find(part), std::string::npos)
        << "message \"" << r.status().message() << "\" lacks \"" << part << "\"";
}

TEST(CliAttributes, ConvFromWeightShape) {
  const ProblemDesc d = desc_of({"conv", "--x-shape", "2,6,9,8", "--w-shape", "10,3,3,2", "--strides", "2,1", "--pads",
                                 "1,0,2,1", "--dilations", "1,2", "--group", "2"});
  EXPECT_EQ(d.op, Op::kConv);
  EXPECT_EQ(d.rank, 2);
  EXPECT_EQ(d.n, 2);
  EXPECT_EQ(d.c, 6);
  EXPECT_EQ(d.k, 10);
  EXPECT_EQ(d.groups, 2);
  EXPECT_EQ(d.input[0], 9);
  EXPECT_EQ(d.input[1], 8);
  EXPECT_EQ(d.kernel[0], 3);
  EXPECT_EQ(d.kernel[1], 2);
  EXPECT_EQ(d.stride[0], 2);
  EXPECT_EQ(d.stride[1], 1);
  // ONNX pads: all begins, then all ends.
  EXPECT_EQ(d.pad_lo[0], 1);
  EXPECT_EQ(d.pad_lo[1], 0);
  EXPECT_EQ(d.pad_hi[0], 2);
  EXPECT_EQ(d.pad_hi[1], 1);
  EXPECT_EQ(d.dilation[0], 1);
  EXPECT_EQ(d.dilation[1], 2);
  EXPECT_EQ(d.pad_mode, PadMode::kExplicit);
}

TEST(CliAttributes, EqualsSpellingAndOnnxOpNames) {
  const ProblemDesc d = desc_of({"ConvTranspose", "--x-shape=1,4,5", "--w-shape=4,3,3", "--group=2"});
  EXPECT_EQ(d.op, Op::kConvTranspose);
  EXPECT_EQ(d.rank, 1);
  EXPECT_EQ(d.input[0], 5);
  EXPECT_EQ(d.kernel[0], 3);
  // Transposed weight C x K/group x kernel: K = 3 * 2.
  EXPECT_EQ(d.k, 6);
  EXPECT_EQ(desc_of({"max_pool", "--x-shape", "1,1,4", "--kernel-shape", "2"}).op, Op::kMaxPool);
  EXPECT_EQ(desc_of({"AveragePool", "--x-shape", "1,1,4", "--kernel-shape", "2"}).op, Op::kAvgPool);
}

TEST(CliAttributes, KernelShapeAndDefaultK) {
  ProblemDesc d = desc_of({"conv", "--x-shape", "1,3,5,5,5", "--kernel-shape", "3,1,2"});
  EXPECT_EQ(d.rank, 3);
  EXPECT_EQ(d.k, 3) << "K defaults to C without --w-shape or --out-channels";
  EXPECT_EQ(d.kernel[0], 3);
  EXPECT_EQ(d.kernel[1], 1);
  EXPECT_EQ(d.kernel[2], 2);
  d = desc_of({"conv", "--x-shape", "1,3,5,5", "--kernel-shape", "3,3", "--out-channels", "16"});
  EXPECT_EQ(d.k, 16);
  // Both given and agreeing.
  d = desc_of({"conv", "--x-shape", "1,3,5,5", "--kernel-shape", "3,3", "--w-shape", "8,3,3,3", "--out-channels", "8"});
  EXPECT_EQ(d.k, 8);
}

TEST(CliAttributes, PoolingAndTransposedAttributes) {
  ProblemDesc d = desc_of({"avg-pool", "--x-shape", "1,2,7,7", "--kernel-shape", "3,3", "--ceil-mode", "1",
                           "--count-include-pad", "1", "--auto-pad", "same_lower"});
  EXPECT_EQ(d.op, Op::kAvgPool);
  EXPECT_EQ(d.k, 2);
  EXPECT_TRUE(d.ceil_mode);
  EXPECT_TRUE(d.count_include_pad);
  EXPECT_EQ(d.pad_mode, PadMode::kSameLower);
  d = desc_of({"conv-transpose", "--x-shape", "1,1,3,3", "--kernel-shape", "3,3", "--strides", "2,2",
               "--output-padding", "1,0", "--auto-pad", "VALID"});
  EXPECT_EQ(d.output_padding[0], 1);
  EXPECT_EQ(d.output_padding[1], 0);
  EXPECT_EQ(d.pad_mode, PadMode::kValid);
  EXPECT_FALSE(d.has_output_shape);
  d = desc_of(
      {"conv-transpose", "--x-shape", "1,1,3,3", "--kernel-shape", "3,3", "--strides", "2,2", "--output-shape", "6,5"});
  EXPECT_TRUE(d.has_output_shape);
  EXPECT_EQ(d.output_shape[0], 6);
  EXPECT_EQ(d.output_shape[1], 5);
  // The full N,K,spatial spelling.
  d = desc_of({"conv-transpose", "--x-shape", "2,1,3", "--w-shape", "1,4,3", "--output-shape", "2,4,7"});
  EXPECT_EQ(d.output_shape[0], 7);
  for (const char* mode : {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "HALF", "FULL"})
    EXPECT_TRUE(parse_layer({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--auto-pad", mode}).is_ok()) << mode;
}

TEST(CliAttributes, ExtrasAreCollected) {
  Result<ParsedLayer> r =
      parse_layer({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--out", "y.npy", "--check", "--device=cpu"},
                  {{"--out", true}, {"--check", false}, {"--device", true}});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->args.extras.at("--out"), "y.npy");
  EXPECT_EQ(r->args.extras.at("--device"), "cpu");
  EXPECT_TRUE(r->args.has("--check"));
  EXPECT_FALSE(r->args.has("--x"));
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--check=1"}, {"--check", "takes no value", "'1'"},
               {{"--check", false}});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--out"}, {"--out", "needs a value"},
               {{"--out", true}});
}

TEST(CliAttributes, SizesAreLeftToTheArithmetic) {
  // A kernel larger than the padded input parses: ConvProblem::make is the one place that rejects it.
  Result<ParsedLayer> r = parse_layer({"conv", "--x-shape", "1,1,2,2", "--kernel-shape", "5,5"});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_FALSE(ConvProblem::make(r->desc).is_ok());
  // Zero stride too.
  r = parse_layer({"conv", "--x-shape", "1,1,4", "--kernel-shape", "3", "--strides", "0"});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_FALSE(ConvProblem::make(r->desc).is_ok());
}

TEST(CliAttributes, SyntaxErrors) {
  expect_error({}, {"missing operation"});
  expect_error({"--x-shape", "1,1,5"}, {"missing operation"});
  expect_error({"deconv", "--x-shape", "1,1,5"}, {"unknown operation", "'deconv'"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--stride", "2"},
               {"unknown option", "'--stride'"});
  expect_error({"conv", "--x-shape", "1,1,5", "3"}, {"unexpected argument", "'3'"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--strides", "1", "--strides", "2"},
               {"--strides", "more than once"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape"}, {"--kernel-shape", "needs a value"});
}

TEST(CliAttributes, NumberErrors) {
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--strides", "x"},
               {"--strides", "'x'", "not a non-negative integer"});
  expect_error({"conv", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--strides", "2,2.5"},
               {"--strides 2,2.5", "'2.5'", "not a non-negative integer"});
  expect_error({"conv", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--pads", "1,-1,0,0"},
               {"--pads", "'-1'", "negative"});
  expect_error({"conv", "--x-shape", "1,1,99999999999999999999", "--kernel-shape", "3"},
               {"--x-shape", "'99999999999999999999'", "64-bit"});
  // int64 max itself parses; one more does not.
  EXPECT_TRUE(parse_count("--group", "9223372036854775807").is_ok());
  EXPECT_EQ(*parse_count("--group", "9223372036854775807"), INT64_MAX);
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--group", "9223372036854775808"},
               {"--group", "9223372036854775808", "64-bit"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--strides="}, {"--strides", "empty"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--strides", "1,,2"}, {"--strides", "empty"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--strides", " 2"}, {"--strides", "' 2'"});
  expect_error({"max-pool", "--x-shape", "1,1,5", "--kernel-shape", "3", "--ceil-mode", "yes"},
               {"--ceil-mode", "'yes'", "0 or 1"});
  expect_error({"avg-pool", "--x-shape", "1,1,5", "--kernel-shape", "3", "--count-include-pad", "2"},
               {"--count-include-pad", "'2'", "0 or 1"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--auto-pad", "SAME"},
               {"--auto-pad", "'SAME'", "SAME_UPPER"});
}

TEST(CliAttributes, CountErrors) {
  expect_error({"conv", "--kernel-shape", "3"}, {"--x-shape is required"});
  expect_error({"conv", "--x-shape", "1,1", "--kernel-shape", "3"}, {"--x-shape 1,1", "2 values", "3 to 5"});
  expect_error({"conv", "--x-shape", "1,1,2,2,2,2", "--kernel-shape", "3"}, {"--x-shape 1,1,2,2,2,2", "6 values"});
  expect_error({"conv", "--x-shape", "1,1,5,5", "--kernel-shape", "3"},
               {"--kernel-shape 3", "1 value", "spatial rank 2", "expected 2"});
  expect_error({"conv", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--strides", "1,1,1"},
               {"--strides 1,1,1", "3 values", "expected 2"});
  expect_error({"conv", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--dilations", "2"}, {"--dilations 2"});
  expect_error({"conv", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--pads", "1,1"},
               {"--pads 1,1", "2 values", "expected 4", "all begins, then all ends"});
  expect_error({"conv-transpose", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--output-padding", "1"},
               {"--output-padding 1", "expected 2"});
  expect_error({"conv-transpose", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--output-shape", "1,2,3"},
               {"--output-shape 1,2,3", "3 values"});
  expect_error({"conv", "--x-shape", "1,1,5,5", "--w-shape", "1,1,3"}, {"--w-shape 1,1,3", "3 values", "expected 4"});
}

TEST(CliAttributes, WeightMustAgree) {
  // Conv weight K x C/g x k: 3 input channels per group x group 1 is not C=4.
  expect_error({"conv", "--x-shape", "1,4,5,5", "--w-shape", "8,3,3,3"},
               {"--w-shape 8,3,3,3", "dim 1 is 3", "3 x group 1 = 3", "C=4"});
  expect_error({"conv", "--x-shape", "1,4,5,5", "--w-shape", "8,4,3,3", "--group", "2"},
               {"--w-shape 8,4,3,3", "4 x group 2 = 8", "C=4"});
  expect_error({"conv", "--x-shape", "1,4,5,5", "--w-shape", "8,4611686018427387904,3,3", "--group", "4"},
               {"overflows", "C=4"});
  // Transposed weight C x K/g x k: its first dim must be C.
  expect_error({"conv-transpose", "--x-shape", "1,4,5,5", "--w-shape", "3,2,3,3"},
               {"--w-shape 3,2,3,3", "first dim 3", "C=4"});
  expect_error({"conv", "--x-shape", "1,3,5,5", "--w-shape", "8,3,3,3", "--kernel-shape", "3,5"},
               {"--kernel-shape 3,5", "disagrees", "--w-shape 8,3,3,3", "3x3"});
  expect_error({"conv", "--x-shape", "1,3,5,5", "--w-shape", "8,3,3,3", "--out-channels", "4"},
               {"K=8", "--out-channels is 4"});
  expect_error({"conv-transpose", "--x-shape", "2,1,3", "--w-shape", "1,4,3", "--output-shape", "2,5,7"},
               {"--output-shape 2,5,7", "N=2", "K=4"});
}

TEST(CliAttributes, AttributesThatDoNotApply) {
  expect_error({"conv", "--x-shape", "1,1,5"}, {"conv needs --kernel-shape or --w-shape"});
  expect_error({"max-pool", "--x-shape", "1,1,5"}, {"max-pool needs --kernel-shape"});
  expect_error({"max-pool", "--x-shape", "1,1,5", "--kernel-shape", "3", "--group", "1"},
               {"--group does not apply to max-pool"});
  expect_error({"avg-pool", "--x-shape", "1,1,5", "--kernel-shape", "3", "--w-shape", "1,1,3"},
               {"--w-shape does not apply to avg-pool"});
  expect_error({"max-pool", "--x-shape", "1,1,5", "--kernel-shape", "3", "--out-channels", "2"},
               {"--out-channels does not apply"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--output-padding", "1"},
               {"--output-padding does not apply to conv", "conv-transpose"});
  expect_error({"max-pool", "--x-shape", "1,1,5", "--kernel-shape", "3", "--output-shape", "4"},
               {"--output-shape does not apply to max-pool"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--ceil-mode", "1"},
               {"--ceil-mode does not apply to conv"});
  expect_error({"max-pool", "--x-shape", "1,1,5", "--kernel-shape", "3", "--count-include-pad", "1"},
               {"--count-include-pad does not apply to max-pool", "avg-pool"});
  expect_error({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--pads", "1,1", "--auto-pad", "SAME_UPPER"},
               {"--pads cannot be combined with --auto-pad SAME_UPPER"});
  // NOTSET with explicit pads is the ONNX default, not a conflict.
  EXPECT_TRUE(
      parse_layer({"conv", "--x-shape", "1,1,5", "--kernel-shape", "3", "--pads", "1,1", "--auto-pad", "NOTSET"})
          .is_ok());
  expect_error({"conv-transpose", "--x-shape", "1,1,5", "--kernel-shape", "3", "--pads", "1,1", "--output-shape", "9"},
               {"--pads cannot be combined with --output-shape"});
}

TEST(CliAttributes, Helpers) {
  EXPECT_EQ(join({1, 2, 3}), "1,2,3");
  EXPECT_EQ(join({1, 2, 3}, "x"), "1x2x3");
  EXPECT_EQ(join({}), "");
  Result<std::vector<int64_t>> l = parse_list("--strides", "1,22,333");
  ASSERT_TRUE(l.is_ok());
  EXPECT_EQ(*l, (std::vector<int64_t>{1, 22, 333}));
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool}) {
    Result<Op> back = parse_op(op_cli_name(op));
    ASSERT_TRUE(back.is_ok());
    EXPECT_EQ(*back, op);
  }
  // Every option is documented.
  const std::string help = attribute_help();
  for (const char* opt :
       {"--x-shape", "--w-shape", "--kernel-shape", "--strides", "--pads", "--dilations", "--group", "--auto-pad",
        "--output-padding", "--output-shape", "--ceil-mode", "--count-include-pad", "--out-channels"})
    EXPECT_NE(help.find(opt), std::string::npos) << opt;
}

} // namespace
} // namespace convarith::cli
