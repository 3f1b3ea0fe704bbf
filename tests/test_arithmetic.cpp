// tests/test_arithmetic.cpp — the arithmetic: the paper's figures by name, the paper's
// relationships, PyTorch's and ONNX's documented formulas as literal expectations, and every
// error condition with its message. (cuDNN's descriptor arithmetic: tests/test_cudnn_dims.cpp.)
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "convarith/arithmetic.hpp"

namespace convarith {
namespace {

AxisParams ax(int64_t i, int64_t k, int64_t s = 1, int64_t p_lo = 0, int64_t p_hi = 0, int64_t d = 1, int64_t a = 0) {
  AxisParams p;
  p.i = i, p.k = k, p.s = s, p.p_lo = p_lo, p.p_hi = p_hi, p.d = d, p.a = a;
  return p;
}

int64_t conv_o(const AxisParams& p) {
  Result<int64_t> r = conv_output_size(0, p);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : -1;
}
int64_t tconv_o(const AxisParams& p) {
  Result<int64_t> r = conv_transpose_output_size(0, p);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : -1;
}
int64_t pool_o(const AxisParams& p, bool ceil_mode) {
  Result<int64_t> r = pool_output_size(Op::kMaxPool, 0, p, ceil_mode);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : -1;
}

// Checks that `s` failed with `code` and a message containing every fragment.
void expect_error(const Status& s, StatusCode code, std::initializer_list<const char*> fragments) {
  EXPECT_EQ(s.code(), code) << s.to_string();
  for (const char* f : fragments)
    EXPECT_NE(s.message().find(f), std::string::npos) << "missing '" << f << "' in: " << s.message();
}

// conv_arithmetic's animations (i, k, s, p -> o) and their transposes.
struct Figure {
  const char* name;
  int64_t i, k, s, p, d, o;
  Relationship conv_rel, transposed_rel;
  int64_t transposed_a; // output padding the transposed figure needs to map o back to i
};
const Figure kFigures[] = {
    {"no_padding_no_strides", 4, 3, 1, 0, 1, 2, Relationship::kNoPaddingUnitStrides,
     Relationship::kTransposedNoPaddingUnitStrides, 0},
    {"arbitrary_padding_no_strides", 5, 4, 1, 2, 1, 6, Relationship::kZeroPaddingUnitStrides,
     Relationship::kTransposedZeroPaddingUnitStrides, 0},
    {"same_padding_no_strides", 5, 3, 1, 1, 1, 5, Relationship::kHalfPadding, Relationship::kTransposedHalfPadding, 0},
    {"full_padding_no_strides", 5, 3, 1, 2, 1, 7, Relationship::kFullPadding, Relationship::kTransposedFullPadding, 0},
    {"no_padding_strides", 5, 3, 2, 0, 1, 2, Relationship::kNoPaddingStrides, Relationship::kTransposedNoPaddingStrides,
     0},
    {"padding_strides", 5, 3, 2, 1, 1, 3, Relationship::kPaddingStrides, Relationship::kTransposedPaddingStrides, 0},
    {"padding_strides_odd", 6, 3, 2, 1, 1, 3, Relationship::kPaddingStrides, Relationship::kTransposedPaddingStridesOdd,
     1},
    {"dilation", 7, 3, 1, 0, 2, 3, Relationship::kDilated, Relationship::kGeneral, 0},
};

TEST(PaperFigures, ConvOutputSizeAndRelationship) {
  for (const Figure& f : kFigures) {
    SCOPED_TRACE(f.name);
    const AxisParams p = ax(f.i, f.k, f.s, f.p, f.p, f.d);
    EXPECT_EQ(conv_o(p), f.o);
    const RelationshipInfo r = classify_relationship(Op::kConv, p, f.o);
    EXPECT_EQ(r.relationship, f.conv_rel) << r.name;
    EXPECT_NE(r.formula.find("= " + std::to_string(f.o)), std::string::npos) << r.formula;
  }
}

TEST(PaperFigures, TransposedMapsOutputBackToInput) {
  for (const Figure& f : kFigures) {
    SCOPED_TRACE(std::string(f.name) + "_transposed");
    const AxisParams t = ax(f.o, f.k, f.s, f.p, f.p, f.d, f.transposed_a);
    EXPECT_EQ(tconv_o(t), f.i);
    const RelationshipInfo r = classify_relationship(Op::kConvTranspose, t, f.i);
    EXPECT_EQ(r.relationship, f.transposed_rel) << r.name;
    EXPECT_NE(r.formula.find("= " + std::to_string(f.i)), std::string::npos) << r.formula;
  }
  // padding_strides_odd_transposed: without a = 1 the transpose gives 5, not 6 (the paper's §4.6).
  EXPECT_EQ(tconv_o(ax(3, 3, 2, 1, 1)), 5);
}

TEST(PaperFigures, TransposedAsZeroInsertedConvolution) {
  // padding_strides_odd_transposed (paper §4.6): 1 zero between inputs, padding k-p-1 = 1 each
  // side, a = 1 after: 1 + 5 + 1 + 1 = 8 cells, and a stride-1 3-tap conv over them gives 6.
  const ZeroInsertion z = transposed_as_conv(ax(3, 3, 2, 1, 1, 1, 1));
  EXPECT_EQ(z.zeros_between, 1);
  EXPECT_EQ(z.pad_lo, 1);
  EXPECT_EQ(z.pad_hi, 1);
  EXPECT_EQ(z.length, 8);
  // Every figure, and dilated / asymmetric / cropping cases: the equivalent stride-1 convolution
  // over the zero-inserted input has the transposed convolution's output size.
  std::vector<AxisParams> cases;
  for (const Figure& f : kFigures)
    cases.push_back(ax(f.o, f.k, f.s, f.p, f.p, f.d, f.transposed_a));
  cases.push_back(ax(5, 3, 1, 0, 0, 3, 2));
  cases.push_back(ax(4, 4, 3, 0, 2, 1, 2));
  cases.push_back(ax(3, 3, 2, 4, 0)); // crops: pad_lo < 0
  for (const AxisParams& p : cases) {
    const ZeroInsertion zi = transposed_as_conv(p);
    EXPECT_EQ(zi.length - effective_kernel(p.k, p.d) + 1, tconv_o(p)) << "i=" << p.i << " k=" << p.k << " s=" << p.s;
  }
  EXPECT_EQ(transposed_as_conv(ax(3, 3, 2, 4, 0)).pad_lo, -2);
}

TEST(PaperRelationships, FormulasWithNumbers) {
  EXPECT_EQ(classify_relationship(Op::kConv, ax(5, 3, 2, 1, 1), 3).formula,
            "o = floor((i + 2p - k) / s) + 1 = floor((5 + 2*1 - 3) / 2) + 1 = 3");
  EXPECT_EQ(classify_relationship(Op::kConvTranspose, ax(3, 3, 2, 1, 1, 1, 1), 6).formula,
            "o' = s(i' - 1) + a + k - 2p = 2*(3 - 1) + 1 + 3 - 2*1 = 6");
  EXPECT_EQ(classify_relationship(Op::kConv, ax(7, 3, 1, 0, 0, 2), 3).name, "relationship 15 (dilated convolution)");
  EXPECT_EQ(classify_relationship(Op::kMaxPool, ax(5, 3, 1), 3).relationship, Relationship::kPooling);
  EXPECT_EQ(classify_relationship(Op::kConv, ax(5, 3, 1, 0, 1), 4).relationship, Relationship::kGeneral);
  // Pooling in ceil_mode where the last window would start in the right padding.
  const RelationshipInfo r = classify_relationship(Op::kMaxPool, ax(3, 2, 2, 1, 1), 2, true);
  EXPECT_NE(r.formula.find("right padding"), std::string::npos) << r.formula;
}

TEST(ConvOutputSize, DilationStrideAsymmetricPadding) {
  // o = floor((i + p_lo + p_hi - d(k-1) - 1) / s) + 1, with d > 1 (CUTLASS#3502 got this wrong).
  EXPECT_EQ(conv_o(ax(10, 3, 1, 0, 0, 2)), 6);  // k'=5
  EXPECT_EQ(conv_o(ax(10, 3, 2, 0, 0, 3)), 2);  // k'=7: floor((10-7)/2)+1
  EXPECT_EQ(conv_o(ax(33, 3, 1, 2, 2, 2)), 33); // DeepLab d=2, p=2
  EXPECT_EQ(conv_o(ax(33, 3, 1, 12, 12, 12)), 33);
  EXPECT_EQ(conv_o(ax(7, 3, 2, 0, 1)), 3); // (7+1-3)/2+1
  EXPECT_EQ(conv_o(ax(7, 3, 2, 1, 0)), 3);
  EXPECT_EQ(conv_o(ax(1, 5, 1, 2, 2)), 1); // kernel larger than input, padded
  EXPECT_EQ(conv_o(ax(224, 7, 2, 3, 3)), 112);
  EXPECT_EQ(conv_o(ax(16000, 10, 5)), 3199); // wav2vec2 conv0
  EXPECT_EQ(conv_o(ax(5, 1, 7)), 1);         // stride > kernel and > input
}

TEST(ConvTransposeOutputSize, PyTorchDocumentedFormula) {
  // PyTorch ConvTranspose: (i-1)*s - 2p + d(k-1) + output_padding + 1.
  EXPECT_EQ(tconv_o(ax(3, 3, 2, 1, 1, 1, 1)), 6);
  EXPECT_EQ(tconv_o(ax(4, 4, 2, 1, 1)), 8);            // DCGAN 4x4/2
  EXPECT_EQ(tconv_o(ax(16, 2, 2)), 32);                // U-Net 2x2/2
  EXPECT_EQ(tconv_o(ax(360, 9, 3, 4, 4, 1, 2)), 1080); // FSRCNN x3
  EXPECT_EQ(tconv_o(ax(540, 9, 2, 4, 4, 1, 1)), 1080); // FSRCNN x2
  EXPECT_EQ(tconv_o(ax(5, 3, 1, 0, 0, 2)), 9);         // dilation 2: (5-1) + 2*2 + 1
  EXPECT_EQ(tconv_o(ax(5, 3, 1, 0, 0, 3, 2)), 13);     // (5-1)+2+7; a < max(s, d) = 3
  EXPECT_EQ(tconv_o(ax(3, 3, 2, 4, 0)), 3);            // padding beyond k'-1 crops
  // ONNX ConvTranspose "convtranspose_pads": x 3x3, kernel 3x3, strides (3,2), pads (1,2,1,2) -> 7x3.
  EXPECT_EQ(tconv_o(ax(3, 3, 3, 1, 1)), 7);
  EXPECT_EQ(tconv_o(ax(3, 3, 2, 2, 2)), 3);
}

TEST(PoolOutputSize, CeilModeRule) {
  EXPECT_EQ(pool_o(ax(5, 2, 2), false), 2);
  EXPECT_EQ(pool_o(ax(5, 2, 2), true), 3);
  // The last window would start in the right padding: dropped (PyTorch: MaxPool1d(2, 2, padding=1,
  // ceil_mode=True) on length 3 gives 2).
  EXPECT_EQ(pool_o(ax(3, 2, 2, 1, 1), true), 2);
  EXPECT_EQ(pool_o(ax(112, 3, 2, 1, 1), false), 56); // ResNet-50 stem max pool
  EXPECT_EQ(pool_o(ax(147, 3, 2), true), 73);        // Inception: (147-3)/2 = 72 exactly
  EXPECT_EQ(pool_o(ax(148, 3, 2), true), 74);        // ceil((148-3)/2) + 1
  EXPECT_EQ(pool_o(ax(148, 3, 2), false), 73);
  EXPECT_EQ(pool_o(ax(10, 3, 1, 0, 0, 2), false), 6); // dilated window k'=5
}

TEST(Padding, OnnxSameUpperLowerAndPaperModes) {
  auto pad = [](Op op, PadMode m, const AxisParams& p) {
    Result<Padding> r = resolve_padding(op, 0, m, p);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? std::make_pair(r->lo, r->hi) : std::make_pair<int64_t, int64_t>(-1, -1);
  };
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(pad(Op::kConv, PadMode::kSameUpper, ax(5, 3, 2)), P(1, 1));
  EXPECT_EQ(pad(Op::kConv, PadMode::kSameUpper, ax(6, 3, 2)), P(0, 1));          // odd total: extra at the end
  EXPECT_EQ(pad(Op::kConv, PadMode::kSameLower, ax(6, 3, 2)), P(1, 0));          // ... or at the start
  EXPECT_EQ(pad(Op::kAvgPool, PadMode::kSameUpper, ax(32, 2, 1)), P(0, 1));      // ONNX averagepool_2d_same_upper
  EXPECT_EQ(pad(Op::kAvgPool, PadMode::kSameLower, ax(32, 2, 1)), P(1, 0));      // ONNX averagepool_2d_same_lower
  EXPECT_EQ(pad(Op::kConv, PadMode::kSameUpper, ax(7, 3, 1, 0, 0, 2)), P(2, 2)); // k'=5
  EXPECT_EQ(pad(Op::kConv, PadMode::kSameUpper, ax(1, 1, 4)), P(0, 0));
  EXPECT_EQ(pad(Op::kConv, PadMode::kValid, ax(5, 3)), P(0, 0));
  EXPECT_EQ(pad(Op::kConv, PadMode::kHalf, ax(5, 3)), P(1, 1));
  EXPECT_EQ(pad(Op::kConv, PadMode::kHalf, ax(5, 3, 1, 0, 0, 2)), P(2, 2));
  EXPECT_EQ(pad(Op::kConv, PadMode::kFull, ax(5, 3)), P(2, 2));
  EXPECT_EQ(pad(Op::kConv, PadMode::kExplicit, ax(5, 3, 1, 1, 2)), P(1, 2));
  // SAME gives o = ceil(i/s) for every i, k, s, d tried.
  for (int64_t i = 1; i <= 12; ++i)
    for (int64_t k = 1; k <= 5; ++k)
      for (int64_t s = 1; s <= 4; ++s)
        for (int64_t d = 1; d <= 3; ++d) {
          AxisParams p = ax(i, k, s, 0, 0, d);
          const P lo_hi = pad(Op::kConv, PadMode::kSameUpper, p);
          p.p_lo = lo_hi.first, p.p_hi = lo_hi.second;
          Result<int64_t> o = conv_output_size(0, p);
          ASSERT_TRUE(o.is_ok()) << o.status().to_string();
          EXPECT_EQ(*o, (i + s - 1) / s) << "i=" << i << " k=" << k << " s=" << s << " d=" << d;
        }
  // ConvTranspose SAME (ONNX): o = i*s.
  EXPECT_EQ(pad(Op::kConvTranspose, PadMode::kSameUpper, ax(3, 3, 2)), P(0, 1));
  EXPECT_EQ(pad(Op::kConvTranspose, PadMode::kSameLower, ax(3, 3, 2)), P(1, 0));
  AxisParams t = ax(3, 3, 2, 0, 1);
  EXPECT_EQ(tconv_o(t), 6);
}

TEST(Padding, Errors) {
  expect_error(resolve_padding(Op::kConv, 1, PadMode::kHalf, ax(5, 4)).status(), StatusCode::kInvalidArgument,
               {"conv axis 1", "HALF", "odd", "k'=4"});
  expect_error(resolve_padding(Op::kConvTranspose, 0, PadMode::kSameUpper, ax(3, 1, 3)).status(),
               StatusCode::kInvalidArgument, {"conv_transpose axis 0", "SAME_UPPER", "= -2"});
  Result<PadMode> m = parse_pad_mode("same");
  EXPECT_FALSE(m.is_ok());
  EXPECT_NE(m.status().message().find("'same'"), std::string::npos);
  EXPECT_EQ(*parse_pad_mode("same_upper"), PadMode::kSameUpper);
  EXPECT_EQ(*parse_pad_mode("HALF"), PadMode::kHalf);
  EXPECT_EQ(*parse_pad_mode("NOTSET"), PadMode::kExplicit);
}

TEST(FitTransposeOutput, OnnxOutputShape) {
  // ONNX "convtranspose_output_shape": x 3x3, kernel 3x3, strides (3, 2), output_shape (10, 8).
  Result<TransposeFit> h = fit_transpose_output(0, ax(3, 3, 3), 10, PadMode::kExplicit);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  EXPECT_EQ(h->a, 1);
  EXPECT_EQ(h->pad.lo, 0);
  EXPECT_EQ(h->pad.hi, 0);
  Result<TransposeFit> w = fit_transpose_output(1, ax(3, 3, 2), 8, PadMode::kExplicit);
  ASSERT_TRUE(w.is_ok());
  EXPECT_EQ(w->a, 1);
  // Total padding 3 split: SAME_UPPER puts the odd unit at the end, everything else at the start.
  Result<TransposeFit> up = fit_transpose_output(0, ax(3, 3, 2), 4, PadMode::kSameUpper);
  ASSERT_TRUE(up.is_ok());
  EXPECT_EQ(up->a, 0);
  EXPECT_EQ(up->pad.lo, 1);
  EXPECT_EQ(up->pad.hi, 2);
  Result<TransposeFit> low = fit_transpose_output(0, ax(3, 3, 2), 4, PadMode::kExplicit);
  ASSERT_TRUE(low.is_ok());
  EXPECT_EQ(low->pad.lo, 2);
  EXPECT_EQ(low->pad.hi, 1);
  // Round trip: every reachable output size is hit exactly.
  for (int64_t i = 1; i <= 6; ++i)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t d = 1; d <= 2; ++d)
          for (int64_t o = 1; o <= s * (i - 1) + d * (k - 1) + 1 + std::max(s, d) - 1; ++o) {
            Result<TransposeFit> f = fit_transpose_output(0, ax(i, k, s, 0, 0, d), o, PadMode::kSameUpper);
            ASSERT_TRUE(f.is_ok()) << f.status().to_string();
            EXPECT_EQ(tconv_o(ax(i, k, s, f->pad.lo, f->pad.hi, d, f->a)), o);
          }
  expect_error(fit_transpose_output(0, ax(3, 3, 2), 9, PadMode::kExplicit).status(), StatusCode::kInvalidArgument,
               {"output_shape 9 is unreachable", "= 8"});
  expect_error(fit_transpose_output(0, ax(3, 3, 2), 0, PadMode::kExplicit).status(), StatusCode::kInvalidArgument,
               {"output_shape 0 must be >= 1"});
}

TEST(ArithmeticErrors, MessagesNameAxisNumbersAndRule) {
  expect_error(conv_output_size(0, ax(2, 3, 1, 1, 1, 2)).status(), StatusCode::kInvalidArgument,
               {"conv axis 0: effective kernel 5 (k=3, dilation=2) exceeds padded input 4 (i=2, pad 1+1)"});
  expect_error(conv_output_size(2, ax(0, 3)).status(), StatusCode::kInvalidArgument, {"conv axis 2", "i=0"});
  expect_error(conv_output_size(0, ax(5, 0)).status(), StatusCode::kInvalidArgument, {"kernel size k=0"});
  expect_error(conv_output_size(0, ax(5, 3, 0)).status(), StatusCode::kInvalidArgument, {"stride s=0"});
  expect_error(conv_output_size(0, ax(5, 3, -2)).status(), StatusCode::kInvalidArgument, {"stride s=-2"});
  expect_error(conv_output_size(0, ax(5, 3, 1, 0, 0, 0)).status(), StatusCode::kInvalidArgument, {"dilation d=0"});
  expect_error(conv_output_size(0, ax(5, 3, 1, -1, 0)).status(), StatusCode::kInvalidArgument, {"p_lo=-1"});
  expect_error(conv_output_size(0, ax(5, 3, 1, 0, -7)).status(), StatusCode::kInvalidArgument, {"p_hi=-7"});
  expect_error(conv_transpose_output_size(1, ax(3, 3, 2, 0, 0, 1, 2)).status(), StatusCode::kInvalidArgument,
               {"conv_transpose axis 1", "output padding a=2", "max(stride=2, dilation=1) = 2"});
  expect_error(conv_transpose_output_size(0, ax(3, 3, 2, 0, 0, 1, -1)).status(), StatusCode::kInvalidArgument,
               {"a=-1"});
  expect_error(conv_transpose_output_size(0, ax(2, 3, 1, 2, 2)).status(), StatusCode::kInvalidArgument,
               {"= 0 must be >= 1", "crops"});
  expect_error(pool_output_size(Op::kAvgPool, 0, ax(5, 2, 2, 2, 0), false).status(), StatusCode::kInvalidArgument,
               {"avg_pool axis 0", "padding 2+0 must be < effective window 2"});
  expect_error(pool_output_size(Op::kMaxPool, 0, ax(1, 2, 1, 2, 1, 3), false).status(), StatusCode::kInvalidArgument,
               {"reads no input element"});
}

TEST(ArithmeticErrors, OverflowIsAnErrorNotWrapAround) {
  const int64_t big = std::numeric_limits<int64_t>::max();
  expect_error(conv_output_size(0, ax(big, 3, 1, 1, 1)).status(), StatusCode::kOutOfRange, {"overflows 64 bits"});
  expect_error(conv_output_size(0, ax(big, 3, 1, 0, 0, big)).status(), StatusCode::kOutOfRange,
               {"effective kernel", "overflows"});
  expect_error(conv_transpose_output_size(0, ax(big / 2, 3, 4)).status(), StatusCode::kOutOfRange, {"overflows"});
  EXPECT_EQ(*conv_output_size(0, ax(big - 2, 3)), big - 4); // large but representable
  // ConvTranspose SAME with an unvalidated huge output padding (fuzz_problem found a + k' overflowing).
  expect_error(resolve_padding(Op::kConvTranspose, 0, PadMode::kSameUpper, ax(2, 3, 1, 0, 0, 1, big - 1)).status(),
               StatusCode::kOutOfRange, {"SAME total padding a+k'-s overflows"});
}

// ---- suggestions: the nearest changes that make an axis valid --------------------------------------

bool has_change(const AxisFix& f, const std::string& fragment) {
  for (const std::string& c : f.changes)
    if (c.find(fragment) != std::string::npos)
      return true;
  return false;
}

TEST(SuggestAxisFix, ConvKernelLargerThanPaddedInput) {
  // k' = 5 (k=3, d=2) over i=2 padded 1+1: short by 1.
  const AxisFix f = suggest_axis_fix(Op::kConv, 0, ax(2, 3, 1, 1, 1, 2));
  EXPECT_FALSE(f.valid);
  EXPECT_NE(f.reason.find("exceeds padded input 4"), std::string::npos) << f.reason;
  EXPECT_EQ(f.shortfall, 1);
  ASSERT_TRUE(f.has_padding);
  EXPECT_EQ(f.padding.lo, 1);
  EXPECT_EQ(f.padding.hi, 2); // the odd unit at the end
  EXPECT_EQ(f.min_input, 3);
  EXPECT_EQ(f.max_kernel, 2);   // d(k-1)+1 <= 4 at d=2
  EXPECT_EQ(f.max_dilation, 1); // d*2+1 <= 4
  EXPECT_TRUE(has_change(f, "pads 1+1 -> 1+2")) << f.changes.front();
  EXPECT_TRUE(has_change(f, "short by 1"));
  EXPECT_TRUE(has_change(f, "input size i=2 -> 3"));
  EXPECT_TRUE(has_change(f, "kernel size k=3 -> 2"));
  EXPECT_TRUE(has_change(f, "dilation d=2 -> 1"));
}

TEST(SuggestAxisFix, ValidAxesHaveNoChangesAndTransposedRanges) {
  const AxisFix c = suggest_axis_fix(Op::kConv, 0, ax(5, 3, 2, 1, 1));
  EXPECT_TRUE(c.valid);
  EXPECT_EQ(c.output, 3);
  EXPECT_TRUE(c.changes.empty());
  EXPECT_EQ(c.min_input, 1); // padding 1+1 lets a 3-kernel see one element
  // conv_transpose i=3, k=3, s=2: a in 0..1, output_shape reaches 1..2*2+3+1 = 8.
  const AxisFix t = suggest_axis_fix(Op::kConvTranspose, 0, ax(3, 3, 2, 1, 1));
  EXPECT_TRUE(t.valid);
  EXPECT_EQ(t.output, 5);
  EXPECT_EQ(t.a_max, 1);
  EXPECT_EQ(t.o_min, 1);
  EXPECT_EQ(t.o_max, 8);
}

TEST(SuggestAxisFix, TransposedOutputPaddingAndCroppingPadding) {
  const AxisFix a = suggest_axis_fix(Op::kConvTranspose, 0, ax(3, 3, 2, 0, 0, 1, 2));
  EXPECT_FALSE(a.valid);
  EXPECT_EQ(a.a_max, 1);
  EXPECT_TRUE(has_change(a, "output padding a=2 -> 1 (legal: 0 <= a <= 1"));
  EXPECT_EQ(a.min_input, 0); // no input size makes a=2 legal
  // o = 1*(2-1) + 0 + 3 - 2 - 2 = 0: the total padding may be at most 3.
  const AxisFix p = suggest_axis_fix(Op::kConvTranspose, 0, ax(2, 3, 1, 2, 2));
  EXPECT_FALSE(p.valid);
  ASSERT_TRUE(p.has_padding);
  EXPECT_EQ(p.padding.lo, 2);
  EXPECT_EQ(p.padding.hi, 1);
  EXPECT_TRUE(has_change(p, "pads 2+2 -> 2+1 (total padding at most s(i-1)+a+k'-1 = 3)"));
  EXPECT_EQ(p.min_input, 3);
}

TEST(SuggestAxisFix, PoolingPaddingPerSideAndMalformedFields) {
  const AxisFix f = suggest_axis_fix(Op::kAvgPool, 0, ax(5, 2, 2, 2, 0));
  EXPECT_FALSE(f.valid);
  ASSERT_TRUE(f.has_padding);
  EXPECT_EQ(f.padding.lo, 1);
  EXPECT_EQ(f.padding.hi, 0);
  EXPECT_EQ(f.min_input, 0); // padding 2 >= window 2 is wrong at every input size
  const AxisFix k = suggest_axis_fix(Op::kConv, 0, ax(5, 0));
  EXPECT_TRUE(has_change(k, "kernel size k=0 -> 1"));
  const AxisFix s = suggest_axis_fix(Op::kMaxPool, 0, ax(5, 2, -1));
  EXPECT_TRUE(has_change(s, "stride s=-1 -> 1"));
  const AxisFix i = suggest_axis_fix(Op::kConv, 0, ax(0, 3, 1, 1, 1));
  EXPECT_EQ(i.min_input, 1);
  EXPECT_TRUE(has_change(i, "input size i=0 -> 1"));
}

// Every suggestion is checked to make the axis valid, and each is minimal, over a grid of small axes.
TEST(SuggestAxisFix, EverySuggestionIsValidAndMinimal) {
  int invalid = 0, checked = 0;
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool})
    for (bool ceil_mode : {false, true}) {
      if (ceil_mode && !is_pool(op))
        continue;
      for (int64_t i = 0; i <= 7; ++i)
        for (int64_t k = 1; k <= 4; ++k)
          for (int64_t s = 1; s <= 3; ++s)
            for (int64_t lo = 0; lo <= 4; ++lo)
              for (int64_t hi = 0; hi <= 4; ++hi)
                for (int64_t d = 1; d <= 3; ++d)
                  for (int64_t a = 0; a <= (op == Op::kConvTranspose ? 3 : 0); ++a) {
                    const AxisParams p = ax(i, k, s, lo, hi, d, a);
                    const AxisFix f = suggest_axis_fix(op, 0, p, ceil_mode);
                    const bool ok = output_size(op, 0, p, ceil_mode).is_ok();
                    ASSERT_EQ(f.valid, ok);
                    const auto valid = [&](AxisParams q) { return output_size(op, 0, q, ceil_mode).is_ok(); };
                    if (f.min_input > 0) {
                      AxisParams q = p;
                      q.i = f.min_input;
                      EXPECT_TRUE(valid(q)) << f.min_input;
                      q.i = f.min_input - 1;
                      if (q.i >= 1) {
                        EXPECT_FALSE(valid(q)) << "min_input " << f.min_input << " is not the smallest";
                      }
                      ++checked;
                    }
                    if (op == Op::kConvTranspose && i >= 1) {
                      EXPECT_EQ(f.a_max, std::max(s, d) - 1);
                      EXPECT_EQ(f.o_max, s * (i - 1) + d * (k - 1) + 1 + std::max(s, d) - 1);
                      AxisParams q = p;
                      q.a = 0;
                      EXPECT_TRUE(fit_transpose_output(0, q, f.o_max, PadMode::kSameUpper).is_ok());
                      EXPECT_FALSE(fit_transpose_output(0, q, f.o_max + 1, PadMode::kSameUpper).is_ok());
                    }
                    if (ok)
                      continue;
                    ++invalid;
                    EXPECT_FALSE(f.changes.empty()) << op_name(op) << " i=" << i << " k=" << k << " s=" << s << " pads "
                                                    << lo << "+" << hi << " d=" << d << " a=" << a << ": " << f.reason;
                    if (f.has_padding) {
                      AxisParams q = p;
                      q.p_lo = f.padding.lo;
                      q.p_hi = f.padding.hi;
                      if (op == Op::kConvTranspose) // together with the output padding's change, when one is listed
                        q.a = std::min(q.a, f.a_max);
                      EXPECT_TRUE(valid(q)) << op_name(op) << " i=" << i << " k=" << k << " pads " << lo << "+" << hi;
                      if (op == Op::kConv) { // conv's validity depends on the total only: one less fails
                        q.p_hi = f.padding.lo + f.padding.hi - 1 - q.p_lo;
                        if (q.p_hi >= 0) {
                          EXPECT_FALSE(valid(q));
                        }
                      }
                      ++checked;
                    }
                    if (f.max_kernel > 0) {
                      AxisParams q = p;
                      q.k = f.max_kernel;
                      EXPECT_TRUE(valid(q));
                      q.k = f.max_kernel + 1;
                      EXPECT_FALSE(valid(q));
                    }
                    if (f.max_dilation > 0) {
                      AxisParams q = p;
                      q.d = f.max_dilation;
                      EXPECT_TRUE(valid(q));
                    }
                    if (op == Op::kConv && i >= 1) { // a conv axis with a sound i is fixed by padding alone
                      EXPECT_TRUE(f.has_padding);
                    }
                  }
    }
  EXPECT_GT(invalid, 1000);
  EXPECT_GT(checked, 1000);
}

} // namespace
} // namespace convarith
