// tests/test_problem.cpp — ConvProblem's factory: shapes, resolved padding, FLOPs and bytes
// (checked against LAYERS.md literals), names, the rank-3 view and every validation error.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "convarith/problem.hpp"

namespace convarith {
namespace {

ProblemDesc conv2d(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w, int64_t r, int64_t s = 1, int64_t pad = 0) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.n = n, d.c = c, d.k = k, d.rank = 2;
  d.input = {h, w, 1};
  d.kernel = {r, r, 1};
  d.stride = {s, s, 1};
  d.pad_lo = {pad, pad, 0};
  d.pad_hi = {pad, pad, 0};
  return d;
}

ConvProblem make_ok(const ProblemDesc& d) {
  Result<ConvProblem> p = ConvProblem::make(d);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p.is_ok() ? *p : ConvProblem();
}

void expect_error(const ProblemDesc& d, StatusCode code, std::initializer_list<const char*> fragments) {
  Result<ConvProblem> p = ConvProblem::make(d);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), code) << p.status().to_string();
  for (const char* f : fragments)
    EXPECT_NE(p.status().message().find(f), std::string::npos) << "missing '" << f << "' in: " << p.status().message();
}

TEST(ConvProblem, ResNet50LayerMatchesLayersMd) {
  // LAYERS.md R03, N=1: 64->64, 56x56, 3x3 s1 p1 -> 56x56, 0.231 GFLOP, 1.75 MB.
  const ConvProblem p = make_ok(conv2d(1, 64, 64, 56, 56, 3, 1, 1));
  EXPECT_EQ(p.y_shape(), (std::vector<int64_t>{1, 64, 56, 56}));
  EXPECT_EQ(p.w_shape(), (std::vector<int64_t>{64, 64, 3, 3}));
  EXPECT_EQ(p.flops(), 231211008.0);
  EXPECT_EQ(p.min_bytes(), 1753088);
  EXPECT_EQ(p.name(), "conv_n1_c64_k64_i56x56_r3x3_p1x1_1x1");
}

TEST(ConvProblem, TransposedDcganMatchesLayersMd) {
  // LAYERS.md T2: N=128, 512->256, 4x4 input, 4x4 s2 p1 -> 8x8, 8.590 GFLOP (dgrad view), 20.97 MB.
  ProblemDesc d = conv2d(128, 512, 256, 4, 4, 4, 2, 1);
  d.op = Op::kConvTranspose;
  const ConvProblem p = make_ok(d);
  EXPECT_EQ(p.y_shape(), (std::vector<int64_t>{128, 256, 8, 8}));
  EXPECT_EQ(p.w_shape(), (std::vector<int64_t>{512, 256, 4, 4})); // C x K/g x k
  EXPECT_EQ(p.flops(), 8589934592.0);
  EXPECT_EQ(p.min_bytes(), 4 * (128 * 512 * 16 + 512 * 256 * 16 + 128 * 256 * 64));
}

TEST(ConvProblem, GroupsDepthwiseAndRanks) {
  ProblemDesc d = conv2d(32, 144, 144, 56, 56, 3, 1, 1);
  d.groups = 144; // MobileNetV2 depthwise (LAYERS.md M03: 0.260 GFLOP)
  const ConvProblem p = make_ok(d);
  EXPECT_EQ(p.w_shape(), (std::vector<int64_t>{144, 1, 3, 3}));
  EXPECT_EQ(p.flops(), 2.0 * 32 * 144 * 1 * 9 * 56 * 56);
  // Rank 1 (wav2vec2 conv0) and the rank-3 view's leading unit axes.
  ProblemDesc a;
  a.op = Op::kConv, a.n = 8, a.c = 1, a.k = 512, a.rank = 1;
  a.input = {16000, 1, 1}, a.kernel = {10, 1, 1}, a.stride = {5, 1, 1};
  const ConvProblem q = make_ok(a);
  EXPECT_EQ(q.y_shape(), (std::vector<int64_t>{8, 512, 3199}));
  EXPECT_EQ(q.axis3(0).i, 1);
  EXPECT_EQ(q.axis3(1).i, 1);
  EXPECT_EQ(q.axis3(2).i, 16000);
  EXPECT_EQ(q.out3(2), 3199);
  EXPECT_EQ(q.out3(0), 1);
  // Rank 3 (C3D conv2a).
  ProblemDesc v;
  v.op = Op::kConv, v.n = 8, v.c = 64, v.k = 128, v.rank = 3;
  v.input = {16, 56, 56}, v.kernel = {3, 3, 3}, v.pad_lo = {1, 1, 1}, v.pad_hi = {1, 1, 1};
  const ConvProblem r = make_ok(v);
  EXPECT_EQ(r.y_shape(), (std::vector<int64_t>{8, 128, 16, 56, 56}));
  EXPECT_NEAR(r.flops() / 1e9, 177.570, 0.001);
}

TEST(ConvProblem, PaddingModesResolveAndAreReported) {
  ProblemDesc d = conv2d(1, 3, 8, 6, 7, 3, 2);
  d.pad_mode = PadMode::kSameUpper;
  const ConvProblem p = make_ok(d);
  EXPECT_EQ(p.pad_mode(), PadMode::kSameUpper);
  EXPECT_EQ(p.out(0), 3);
  EXPECT_EQ(p.out(1), 4);
  EXPECT_EQ(p.axis(0).p_lo, 0);
  EXPECT_EQ(p.axis(0).p_hi, 1);
  EXPECT_EQ(p.axis(1).p_lo, 1);
  EXPECT_EQ(p.axis(1).p_hi, 1);
  // resolved() round-trips to an equal problem with explicit pads.
  const ProblemDesc r = p.resolved();
  EXPECT_EQ(r.pad_mode, PadMode::kExplicit);
  const ConvProblem q = make_ok(r);
  EXPECT_EQ(q.y_shape(), p.y_shape());
  EXPECT_EQ(q.name(), p.name());
  d.pad_mode = PadMode::kFull;
  EXPECT_EQ(make_ok(d).out(0), (6 + 4 - 3) / 2 + 1);
}

TEST(ConvProblem, TransposedOutputShapeAndOutputPadding) {
  ProblemDesc d;
  d.op = Op::kConvTranspose, d.n = 1, d.c = 1, d.k = 2, d.rank = 2;
  d.input = {3, 3, 1}, d.kernel = {3, 3, 1}, d.stride = {3, 2, 1};
  d.has_output_shape = true, d.output_shape = {10, 8, 1}; // ONNX convtranspose_output_shape
  const ConvProblem p = make_ok(d);
  EXPECT_EQ(p.y_shape(), (std::vector<int64_t>{1, 2, 10, 8}));
  EXPECT_EQ(p.axis(0).a, 1);
  EXPECT_EQ(p.axis(1).a, 1);
  EXPECT_EQ(p.resolved().output_padding[0], 1);
  d.pad_lo = {1, 0, 0};
  expect_error(d, StatusCode::kInvalidArgument, {"axis 0", "given together with output_shape"});
}

TEST(ConvProblem, PoolingAndZeroBatch) {
  ProblemDesc d;
  d.op = Op::kMaxPool, d.n = 0, d.c = 64, d.rank = 2;
  d.input = {112, 112, 1}, d.kernel = {3, 3, 1}, d.stride = {2, 2, 1}, d.pad_lo = {1, 1, 0}, d.pad_hi = {1, 1, 0};
  const ConvProblem p = make_ok(d);
  EXPECT_EQ(p.k(), 64);
  EXPECT_EQ(p.y_shape(), (std::vector<int64_t>{0, 64, 56, 56}));
  EXPECT_EQ(p.x_elements(), 0);
  EXPECT_EQ(p.y_elements(), 0);
  EXPECT_EQ(p.w_elements(), 0);
  EXPECT_TRUE(p.w_shape().empty());
  EXPECT_EQ(p.flops(), 0.0);
  d.op = Op::kAvgPool, d.n = 2, d.ceil_mode = true, d.count_include_pad = true;
  const ConvProblem q = make_ok(d);
  EXPECT_EQ(q.name(), "avg_pool_n2_c64_i112x112_r3x3_s2x2_p1x1_1x1_ceil_cip");
  EXPECT_EQ(q.y_shape(), (std::vector<int64_t>{2, 64, 57, 57})); // ceil((112+2-3)/2)+1
  EXPECT_EQ(q.flops(), 2.0 * 64 * 9 * 57 * 57);
}

TEST(ConvProblem, ValidationErrorsNameFieldAndNumbers) {
  ProblemDesc d = conv2d(1, 6, 4, 8, 8, 3);
  d.rank = 4;
  expect_error(d, StatusCode::kInvalidArgument, {"spatial rank 4"});
  d.rank = 0;
  expect_error(d, StatusCode::kInvalidArgument, {"spatial rank 0"});
  d = conv2d(-1, 6, 4, 8, 8, 3);
  expect_error(d, StatusCode::kInvalidArgument, {"N=-1"});
  d = conv2d(1, 0, 4, 8, 8, 3);
  expect_error(d, StatusCode::kInvalidArgument, {"C=0"});
  d = conv2d(1, 6, 0, 8, 8, 3);
  expect_error(d, StatusCode::kInvalidArgument, {"K=0"});
  d = conv2d(1, 6, 4, 8, 8, 3);
  d.groups = 4;
  expect_error(d, StatusCode::kInvalidArgument, {"group=4 must divide input channels C=6"});
  d.groups = 3;
  expect_error(d, StatusCode::kInvalidArgument, {"group=3 must divide output channels K=4"});
  d.groups = 0;
  expect_error(d, StatusCode::kInvalidArgument, {"group=0"});
  d = conv2d(1, 6, 4, 2, 8, 5);
  expect_error(d, StatusCode::kInvalidArgument,
               {"conv axis 0: effective kernel 5 (k=5, dilation=1) exceeds padded input 2"});
  d = conv2d(1, 6, 4, 8, 8, 3);
  d.output_padding = {0, 1, 0};
  expect_error(d, StatusCode::kInvalidArgument, {"axis 1", "output_padding=1 applies to conv_transpose only"});
  d = conv2d(1, 6, 4, 8, 8, 3);
  d.op = Op::kConvTranspose;
  d.stride = {2, 2, 1};
  d.output_padding = {2, 0, 0};
  expect_error(d, StatusCode::kInvalidArgument, {"conv_transpose axis 0", "a=2", "max(stride=2, dilation=1) = 2"});
  d = conv2d(1, 6, 4, 8, 8, 3);
  d.ceil_mode = true;
  expect_error(d, StatusCode::kInvalidArgument, {"ceil_mode applies to pooling only"});
  d = conv2d(1, 6, 4, 8, 8, 3);
  d.pad_mode = PadMode::kSameUpper;
  d.pad_lo = {1, 1, 0};
  expect_error(d, StatusCode::kInvalidArgument, {"given together with auto_pad=SAME_UPPER"});
  d = conv2d(1, 6, 6, 8, 8, 3);
  d.op = Op::kMaxPool;
  d.groups = 2;
  expect_error(d, StatusCode::kInvalidArgument, {"group=2 applies to conv and conv_transpose only"});
  d.groups = 1;
  d.count_include_pad = true;
  expect_error(d, StatusCode::kInvalidArgument, {"count_include_pad applies to avg_pool only"});
}

TEST(SuggestFixes, ResolvesAutoPadAndOutputShapeFirst) {
  // SAME_UPPER resolves before the check: a 7x7 input with a 3x3 kernel is valid on both axes.
  ProblemDesc d = conv2d(1, 1, 1, 7, 2, 3);
  d.pad_mode = PadMode::kSameUpper;
  std::vector<AxisFix> f = suggest_fixes(d);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_TRUE(f[0].valid);
  EXPECT_EQ(f[0].output, 7);
  EXPECT_TRUE(f[1].valid); // SAME pads the 2-wide axis to 4
  // HALF needs an odd effective kernel: the axis is invalid with the alternatives.
  d = conv2d(1, 1, 1, 8, 8, 4);
  d.pad_mode = PadMode::kHalf;
  f = suggest_fixes(d);
  EXPECT_FALSE(f[0].valid);
  EXPECT_NE(f[0].reason.find("HALF padding needs an odd effective kernel"), std::string::npos) << f[0].reason;
  ASSERT_FALSE(f[0].changes.empty());
  EXPECT_EQ(f[0].changes[0], "auto_pad HALF -> explicit pads (NOTSET), or another mode");
  // A plain invalid axis: the kernel 9 over 5 + 0 + 0 is short by 4.
  d = conv2d(1, 1, 1, 5, 9, 9);
  f = suggest_fixes(d);
  EXPECT_FALSE(f[0].valid);
  EXPECT_EQ(f[0].shortfall, 4);
  EXPECT_EQ(f[0].min_input, 9);
  EXPECT_TRUE(f[1].valid);
  // ConvTranspose output_shape 12 from i=4, k=3, s=2: the largest is 2*3+3+1 = 10.
  d = conv2d(1, 1, 1, 4, 4, 3, 2);
  d.op = Op::kConvTranspose;
  d.has_output_shape = true;
  d.output_shape = {12, 9, 1};
  f = suggest_fixes(d);
  EXPECT_FALSE(f[0].valid);
  EXPECT_EQ(f[0].o_max, 10);
  EXPECT_EQ(f[0].changes[0], "output_shape 12 -> one of 1..10 (reachable from i=4)");
  EXPECT_TRUE(f[1].valid);
  EXPECT_EQ(f[1].output, 9);
}

TEST(ConvProblem, ElementCountOverflowIsAnError) {
  const int64_t big = int64_t{1} << 40;
  ProblemDesc d = conv2d(big, big, 1, 1, 1, 1);
  expect_error(d, StatusCode::kOutOfRange, {"x element count N*C*prod(input)", "overflows 64 bits"});
  d = conv2d(1, 1, 1, big, big, 1);
  expect_error(d, StatusCode::kOutOfRange, {"input element count", "overflows"});
  d = conv2d(1, big, big, 1, 1, 1);
  expect_error(d, StatusCode::kOutOfRange, {"w element count K*(C/g)*prod(kernel)"});
  // Past 2^31 elements is fine: counts are 64-bit.
  d = conv2d(32, 64, 64, 1024, 2048, 1);
  const ConvProblem p = make_ok(d);
  EXPECT_EQ(p.x_elements(), int64_t{32} * 64 * 1024 * 2048);
  EXPECT_GT(p.x_elements(), std::numeric_limits<int32_t>::max());
  // Near 2^63 bytes: elements fit but bytes do not.
  d = conv2d(1, 1, 1, int64_t{1} << 31, int64_t{1} << 30, 1);
  expect_error(d, StatusCode::kOutOfRange, {"bytes", "overflow"});
  // N = 0 leaves no elements, but the other extents still make the strides: C*H*W = 2^70 overflows them.
  d = conv2d(0, big, 1, int64_t{1} << 15, int64_t{1} << 15, 1);
  expect_error(d, StatusCode::kOutOfRange,
               {"x: the strides of its 0x1099511627776x32768x32768 NCHW layout", "overflow 64 bits"});
  // While C*H*W fits, an empty batch is a valid problem with compact strides.
  d = conv2d(0, 1 << 20, 1, 1 << 15, 1 << 15, 1);
  const ConvProblem empty = make_ok(d);
  EXPECT_EQ(empty.x_elements(), 0);
  EXPECT_EQ(empty.tensor(TensorId::kX).strides[0], int64_t{1} << 50);
}

} // namespace
} // namespace convarith
