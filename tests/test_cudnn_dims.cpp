// tests/test_cudnn_dims.cpp — cuDNN's output-size arithmetic as a second opinion on ConvProblem::out().
//
// cuDNN's descriptor calls and cudnnGet*NdForwardOutputDim run on the host without a GPU, so this
// runs in every build that finds cudnn.h and libcudnn (CONVARITH_HAVE_CUDNN_HEADERS), CPU-only
// included. Sweeps i, k, s, p, d (d > 1 everywhere: CUTLASS's old Conv2dProblemSize got dilation
// wrong, NVIDIA/cutlass#3502), groups, rank 1 (as 2-D with a unit axis) and rank 3, for conv,
// conv_transpose (cuDNN's backward-data must derive our input from our output) and pooling; and the
// descriptors of the other formats (NHWC / KRSC strides and filter format, f16 / bf16 data types with
// fp32 compute and the math type, the epilogue's activation descriptor), read back from cuDNN.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"

#if defined(CONVARITH_HAVE_CUDNN_HEADERS)
#include "cudnn/cudnn_dims.hpp"
#endif

namespace convarith {
namespace {

#if defined(CONVARITH_HAVE_CUDNN_HEADERS)

std::string describe_desc(const ProblemDesc& d) {
  std::string s =
      std::string(op_name(d.op)) + " rank " + std::to_string(d.rank) + " groups " + std::to_string(d.groups);
  for (int j = 0; j < d.rank; ++j) {
    const size_t a = static_cast<size_t>(j);
    s += " | i=" + std::to_string(d.input[a]) + " k=" + std::to_string(d.kernel[a]) +
         " s=" + std::to_string(d.stride[a]) + " p=" + std::to_string(d.pad_lo[a]) +
         " d=" + std::to_string(d.dilation[a]) + " a=" + std::to_string(d.output_padding[a]);
  }
  return s;
}

// Sets axis `j` and returns the desc; every other axis keeps its defaults or earlier values.
void set_axis(ProblemDesc& d, int j, int64_t i, int64_t k, int64_t s, int64_t p, int64_t dil, int64_t a = 0) {
  const size_t x = static_cast<size_t>(j);
  d.input[x] = i;
  d.kernel[x] = k;
  d.stride[x] = s;
  d.pad_lo[x] = p;
  d.pad_hi[x] = p;
  d.dilation[x] = dil;
  d.output_padding[x] = a;
}

TEST(CudnnDims, VersionIsNine) {
  // The adapter is written against cuDNN 9's legacy API.
  EXPECT_GE(cudnnGetVersion(), 90000u);
}

TEST(CudnnDims, ConvSweepRank2MatchesOut) {
  int compared = 0;
  for (int64_t i = 1; i <= 9; ++i)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t p = 0; p <= 2; ++p)
          for (int64_t dil = 1; dil <= 3; ++dil) {
            ProblemDesc d;
            d.op = Op::kConv;
            d.n = 2;
            d.c = 3;
            d.k = 5;
            d.rank = 2;
            set_axis(d, 0, i, k, s, p, dil);
            set_axis(d, 1, 7, 3, 2, 1, 2); // a fixed, dilated second axis: out = floor((7+2-5)/2)+1 = 3
            Result<ConvProblem> prob = ConvProblem::make(d);
            if (!prob)
              continue; // invalid for convarith (see ConvRejectedByConvarith...)
            Result<std::vector<int64_t>> got = cudnn::forward_output_dims(*prob);
            ASSERT_TRUE(got.is_ok()) << describe_desc(d) << ": " << got.status().to_string();
            EXPECT_EQ(*got, prob->y_shape()) << describe_desc(d);
            EXPECT_EQ((*got)[3], 3) << describe_desc(d);
            ++compared;
          }
  // The sweep must actually compare many problems, dilated ones included.
  EXPECT_GT(compared, 500);
}

TEST(CudnnDims, GroupsAndDepthwise) {
  for (int64_t g : {1, 2, 4, 8}) {
    ProblemDesc d;
    d.op = Op::kConv;
    d.n = 1;
    d.c = 8;
    d.k = 16;
    d.groups = g;
    d.rank = 2;
    set_axis(d, 0, 13, 3, 2, 1, 2);
    set_axis(d, 1, 11, 5, 1, 2, 3);
    Result<ConvProblem> prob = ConvProblem::make(d);
    ASSERT_TRUE(prob.is_ok()) << prob.status().to_string();
    Result<std::vector<int64_t>> got = cudnn::forward_output_dims(*prob);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    EXPECT_EQ(*got, prob->y_shape()) << describe_desc(d);
    // (13 + 2 - 5)/2 + 1 = 6 and (11 + 4 - 13)/1 + 1 = 3, independent of the group count.
    EXPECT_EQ(*got, (std::vector<int64_t>{1, 16, 6, 3}));
  }
}

TEST(CudnnDims, Rank1AsUnitAxis) {
  int compared = 0;
  for (int64_t i : {1, 2, 5, 10, 16, 31, 3199, 16000})
    for (int64_t k : {1, 3, 10})
      for (int64_t s : {1, 2, 5})
        for (int64_t dil : {1, 2})
          for (int64_t p : {0, 1, 4}) {
            ProblemDesc d;
            d.op = Op::kConv;
            d.n = 1;
            d.c = 2;
            d.k = 4;
            d.rank = 1;
            set_axis(d, 0, i, k, s, p, dil);
            Result<ConvProblem> prob = ConvProblem::make(d);
            if (!prob)
              continue;
            Result<std::vector<int64_t>> got = cudnn::forward_output_dims(*prob);
            ASSERT_TRUE(got.is_ok()) << describe_desc(d) << ": " << got.status().to_string();
            EXPECT_EQ(*got, prob->y_shape()) << describe_desc(d);
            ++compared;
          }
  EXPECT_GT(compared, 100);
  // wav2vec2's first layer: (16000 - 10)/5 + 1 = 3199.
  ProblemDesc d;
  d.rank = 1;
  d.c = 1;
  d.k = 512;
  set_axis(d, 0, 16000, 10, 5, 0, 1);
  Result<ConvProblem> prob = ConvProblem::make(d);
  ASSERT_TRUE(prob.is_ok());
  Result<std::vector<int64_t>> got = cudnn::forward_output_dims(*prob);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(*got, (std::vector<int64_t>{1, 512, 3199}));
}

TEST(CudnnDims, Rank3Sweep) {
  int compared = 0;
  for (int64_t i : {1, 4, 7, 16})
    for (int64_t k : {1, 2, 3})
      for (int64_t s : {1, 2})
        for (int64_t dil : {1, 2, 3})
          for (int64_t p : {0, 1, 3}) {
            ProblemDesc d;
            d.op = Op::kConv;
            d.n = 1;
            d.c = 4;
            d.k = 4;
            d.groups = 2;
            d.rank = 3;
            set_axis(d, 0, i, k, s, p, dil);
            set_axis(d, 1, i + 3, k, 1, p, 1);
            set_axis(d, 2, 9, 3, 2, 1, dil);
            Result<ConvProblem> prob = ConvProblem::make(d);
            if (!prob)
              continue;
            Result<std::vector<int64_t>> got = cudnn::forward_output_dims(*prob);
            ASSERT_TRUE(got.is_ok()) << describe_desc(d) << ": " << got.status().to_string();
            EXPECT_EQ(*got, prob->y_shape()) << describe_desc(d);
            ++compared;
          }
  EXPECT_GT(compared, 100);
}

TEST(CudnnDims, TransposedOutputIsCudnnBackwardDataInput) {
  // cuDNN has no transposed output formula; it checks that the forward conv of our output gives
  // our input. With output padding a < s that holds exactly; with a >= s (possible when d > s)
  // cuDNN cannot express the problem and the adapter must say so.
  int compared = 0, refused = 0;
  for (int64_t i = 1; i <= 7; ++i)
    for (int64_t k = 1; k <= 4; ++k)
      for (int64_t s = 1; s <= 3; ++s)
        for (int64_t p = 0; p <= 2; ++p)
          for (int64_t dil = 1; dil <= 3; ++dil)
            for (int64_t a = 0; a < std::max(s, dil); ++a) {
              ProblemDesc d;
              d.op = Op::kConvTranspose;
              d.n = 1;
              d.c = 6;
              d.k = 4;
              d.groups = 2;
              d.rank = 2;
              set_axis(d, 0, i, k, s, p, dil, a);
              set_axis(d, 1, 4, 4, 2, 1, 1, 0); // DCGAN's 4x4/2 p1: 4 -> 8
              Result<ConvProblem> prob = ConvProblem::make(d);
              if (!prob)
                continue;
              Result<std::vector<int64_t>> got = cudnn::forward_output_dims(*prob);
              if (a >= s) {
                EXPECT_FALSE(got.is_ok()) << describe_desc(d);
                if (!got.is_ok()) {
                  EXPECT_EQ(got.status().code(), StatusCode::kNotSupported);
                }
                ++refused;
                continue;
              }
              ASSERT_TRUE(got.is_ok()) << describe_desc(d) << ": " << got.status().to_string();
              EXPECT_EQ(*got, prob->x_shape()) << describe_desc(d) << " out " << prob->out(0);
              EXPECT_EQ(prob->out(1), 8);
              ++compared;
            }
  EXPECT_GT(compared, 300);
  EXPECT_GT(refused, 10);
}

TEST(CudnnDims, PoolingFloorModeMatches) {
  int compared = 0;
  for (Op op : {Op::kMaxPool, Op::kAvgPool})
    for (int64_t i = 1; i <= 12; ++i)
      for (int64_t k = 1; k <= 4; ++k)
        for (int64_t s = 1; s <= 3; ++s)
          for (int64_t p = 0; p < k; ++p) {
            ProblemDesc d;
            d.op = op;
            d.n = 1;
            d.c = 3;
            d.rank = 2;
            d.count_include_pad = (i % 2) == 0;
            set_axis(d, 0, i, k, s, p, 1);
            set_axis(d, 1, 112, 3, 2, 1, 1); // ResNet's max pool: 112 -> 56
            Result<ConvProblem> prob = ConvProblem::make(d);
            if (!prob)
              continue;
            Result<std::vector<int64_t>> got = cudnn::forward_output_dims(*prob);
            ASSERT_TRUE(got.is_ok()) << describe_desc(d) << ": " << got.status().to_string();
            EXPECT_EQ(*got, prob->y_shape()) << describe_desc(d);
            EXPECT_EQ((*got)[3], 56);
            ++compared;
          }
  EXPECT_GT(compared, 300);
}

TEST(CudnnDims, InexpressibleProblemsAreNotSupported) {
  ProblemDesc asym;
  asym.rank = 2;
  asym.c = 2;
  asym.k = 2;
  set_axis(asym, 0, 8, 3, 1, 0, 1);
  set_axis(asym, 1, 8, 3, 1, 1, 1);
  asym.pad_hi[0] = 1;
  Result<ConvProblem> p1 = ConvProblem::make(asym);
  ASSERT_TRUE(p1.is_ok());
  Result<std::vector<int64_t>> r1 = cudnn::forward_output_dims(*p1);
  ASSERT_FALSE(r1.is_ok());
  EXPECT_EQ(r1.status().code(), StatusCode::kNotSupported);
  EXPECT_NE(r1.status().message().find("asymmetric"), std::string::npos) << r1.status().message();

  ProblemDesc ceil;
  ceil.op = Op::kMaxPool;
  ceil.rank = 2;
  ceil.c = 2;
  ceil.ceil_mode = true;
  set_axis(ceil, 0, 112, 3, 2, 0, 1);
  set_axis(ceil, 1, 112, 3, 2, 0, 1);
  Result<ConvProblem> p2 = ConvProblem::make(ceil);
  ASSERT_TRUE(p2.is_ok());
  EXPECT_EQ(p2->out(0), 56); // GoogLeNet: ceil((112 - 3)/2) + 1 = 56, floor would give 55
  Result<std::vector<int64_t>> r2 = cudnn::forward_output_dims(*p2);
  ASSERT_FALSE(r2.is_ok());
  EXPECT_EQ(r2.status().code(), StatusCode::kNotSupported);
}

TEST(CudnnDims, WhereConvarithRejectsCudnnDoesNotAgreeOnAValidSize) {
  // i + 2p < k': convarith refuses. cuDNN must not derive a positive size from the same numbers
  // either; record what it does so the two arithmetics' edges are known.
  ProblemDesc d;
  d.rank = 2;
  d.c = 1;
  d.k = 1;
  set_axis(d, 0, 2, 3, 2, 0, 1); // k' = 3 > i = 2
  set_axis(d, 1, 5, 1, 1, 0, 1);
  EXPECT_FALSE(ConvProblem::make(d).is_ok());
  cudnnTensorDescriptor_t x = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t c = nullptr;
  ASSERT_EQ(cudnnCreateTensorDescriptor(&x), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnCreateFilterDescriptor(&w), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnCreateConvolutionDescriptor(&c), CUDNN_STATUS_SUCCESS);
  const int xd[4] = {1, 1, 2, 5}, xs[4] = {10, 10, 5, 1}, wd[4] = {1, 1, 3, 1};
  const int pad[2] = {0, 0}, str[2] = {2, 1}, dil[2] = {1, 1};
  ASSERT_EQ(cudnnSetTensorNdDescriptor(x, CUDNN_DATA_FLOAT, 4, xd, xs), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetFilterNdDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, wd), CUDNN_STATUS_SUCCESS);
  ASSERT_EQ(cudnnSetConvolutionNdDescriptor(c, 2, pad, str, dil, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
            CUDNN_STATUS_SUCCESS);
  int out[4] = {0, 0, 0, 0};
  const cudnnStatus_t st = cudnnGetConvolutionNdForwardOutputDim(c, x, w, 4, out);
  EXPECT_TRUE(st != CUDNN_STATUS_SUCCESS || out[2] <= 0)
      << "cuDNN derived H = " << out[2] << " for i=2, k=3, s=2, p=0 (convarith rejects: k' > padded input)";
  cudnnDestroyConvolutionDescriptor(c);
  cudnnDestroyFilterDescriptor(w);
  cudnnDestroyTensorDescriptor(x);
}

// ---- formats: NHWC / KRSC, f16 / bf16, the epilogue's activation -----------------------------------------

struct TensorReadback {
  cudnnDataType_t dtype{};
  std::vector<int> dims, strides;
};

TensorReadback read_tensor(cudnnTensorDescriptor_t t) {
  TensorReadback r;
  int nb = 0;
  int dims[8] = {}, strides[8] = {};
  EXPECT_EQ(cudnnGetTensorNdDescriptor(t, 8, &r.dtype, &nb, dims, strides), CUDNN_STATUS_SUCCESS);
  r.dims.assign(dims, dims + nb);
  r.strides.assign(strides, strides + nb);
  return r;
}

struct FilterReadback {
  cudnnDataType_t dtype{};
  cudnnTensorFormat_t format{};
  std::vector<int> dims;
};

FilterReadback read_filter(cudnnFilterDescriptor_t f) {
  FilterReadback r;
  int nb = 0;
  int dims[8] = {};
  EXPECT_EQ(cudnnGetFilterNdDescriptor(f, 8, &r.dtype, &r.format, &nb, dims), CUDNN_STATUS_SUCCESS);
  r.dims.assign(dims, dims + nb);
  return r;
}

ProblemDesc formats_conv(DataType t, Layout act, Layout w) {
  ProblemDesc d;
  d.n = 2;
  d.c = 6;
  d.k = 8;
  d.rank = 2;
  set_axis(d, 0, 9, 3, 1, 1, 1);
  set_axis(d, 1, 10, 3, 1, 1, 1);
  d.dtype = t;
  d.layout = act;
  d.w_layout = w;
  return d;
}

TEST(CudnnDims, F32NchwDescriptorsAreUnchanged) {
  Result<ConvProblem> p = ConvProblem::make(formats_conv(DataType::kF32, Layout::kNCHW, Layout::kNCHW));
  ASSERT_TRUE(p.is_ok());
  Result<cudnn::Descriptors> d = cudnn::describe(*p);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  const TensorReadback x = read_tensor(d->x);
  EXPECT_EQ(x.dtype, CUDNN_DATA_FLOAT);
  EXPECT_EQ(x.dims, (std::vector<int>{2, 6, 9, 10}));
  EXPECT_EQ(x.strides, (std::vector<int>{540, 90, 10, 1}));
  const FilterReadback w = read_filter(d->w);
  EXPECT_EQ(w.dtype, CUDNN_DATA_FLOAT);
  EXPECT_EQ(w.format, CUDNN_TENSOR_NCHW);
  EXPECT_EQ(w.dims, (std::vector<int>{8, 6, 3, 3}));
  cudnnMathType_t math{};
  ASSERT_EQ(cudnnGetConvolutionMathType(d->conv, &math), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(math, CUDNN_FMA_MATH); // never TF32 for f32
  EXPECT_EQ(d->act_mode, CUDNN_ACTIVATION_IDENTITY);
}

TEST(CudnnDims, F16NhwcDescriptorsCarryStridesTypeAndFilterFormat) {
  Result<ConvProblem> p = ConvProblem::make(formats_conv(DataType::kF16, Layout::kNHWC, Layout::kNHWC));
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  Result<cudnn::Descriptors> d = cudnn::describe(*p);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  const TensorReadback x = read_tensor(d->x), y = read_tensor(d->y), b = read_tensor(d->bias);
  EXPECT_EQ(x.dtype, CUDNN_DATA_HALF);
  EXPECT_EQ(x.dims, (std::vector<int>{2, 6, 9, 10}));      // logical N, C, H, W
  EXPECT_EQ(x.strides, (std::vector<int>{540, 1, 60, 6})); // channels last
  EXPECT_EQ(y.dtype, CUDNN_DATA_HALF);
  EXPECT_EQ(y.dims, (std::vector<int>{2, 8, 9, 10}));
  EXPECT_EQ(y.strides, (std::vector<int>{720, 1, 80, 8}));
  for (size_t j = 0; j < 4; ++j)
    EXPECT_EQ(y.strides[j], p->tensor(TensorId::kY).strides[j]) << j;
  EXPECT_EQ(b.dtype, CUDNN_DATA_HALF);
  EXPECT_EQ(b.dims, (std::vector<int>{1, 8, 1, 1}));
  const FilterReadback w = read_filter(d->w);
  EXPECT_EQ(w.dtype, CUDNN_DATA_HALF);
  EXPECT_EQ(w.format, CUDNN_TENSOR_NHWC); // KRSC
  EXPECT_EQ(w.dims, (std::vector<int>{8, 6, 3, 3}));
  cudnnMathType_t math{};
  ASSERT_EQ(cudnnGetConvolutionMathType(d->conv, &math), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(math, CUDNN_TENSOR_OP_MATH);
  EXPECT_STREQ(cudnn::math_name(math), "TENSOR_OP");
  int len = 0, pad[3], str[3], dil[3];
  cudnnConvolutionMode_t mode{};
  cudnnDataType_t compute{};
  ASSERT_EQ(cudnnGetConvolutionNdDescriptor(d->conv, 3, &len, pad, str, dil, &mode, &compute), CUDNN_STATUS_SUCCESS);
  EXPECT_EQ(compute, CUDNN_DATA_FLOAT); // fp32 accumulation (PSEUDO_HALF)
  EXPECT_EQ(mode, CUDNN_CROSS_CORRELATION);
  // cuDNN derives the same output from the strided descriptors.
  Result<std::vector<int64_t>> got = cudnn::forward_output_dims(*p);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(*got, p->y_shape());
}

TEST(CudnnDims, Bf16MixedLayoutsAndRanks) {
  // NCHW activations with a KRSC filter.
  Result<ConvProblem> p = ConvProblem::make(formats_conv(DataType::kBF16, Layout::kNCHW, Layout::kNHWC));
  ASSERT_TRUE(p.is_ok());
  Result<cudnn::Descriptors> d = cudnn::describe(*p);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(read_tensor(d->x).dtype, CUDNN_DATA_BFLOAT16);
  EXPECT_EQ(read_tensor(d->x).strides, (std::vector<int>{540, 90, 10, 1}));
  EXPECT_EQ(read_filter(d->w).format, CUDNN_TENSOR_NHWC);
  EXPECT_EQ(read_filter(d->w).dtype, CUDNN_DATA_BFLOAT16);

  // Rank 1 NWC: the unit H axis gets the stride W * C.
  ProblemDesc r1;
  r1.rank = 1;
  r1.n = 3;
  r1.c = 4;
  r1.k = 5;
  set_axis(r1, 0, 29, 4, 3, 2, 1);
  r1.layout = Layout::kNHWC;
  r1.dtype = DataType::kF16;
  Result<ConvProblem> p1 = ConvProblem::make(r1);
  ASSERT_TRUE(p1.is_ok());
  Result<cudnn::Descriptors> d1 = cudnn::describe(*p1);
  ASSERT_TRUE(d1.is_ok()) << d1.status().to_string();
  const TensorReadback x1 = read_tensor(d1->x);
  EXPECT_EQ(x1.dims, (std::vector<int>{3, 4, 1, 29}));
  EXPECT_EQ(x1.strides, (std::vector<int>{116, 1, 116, 4}));
  Result<std::vector<int64_t>> got1 = cudnn::forward_output_dims(*p1);
  ASSERT_TRUE(got1.is_ok()) << got1.status().to_string();
  EXPECT_EQ(*got1, p1->y_shape());

  // Rank 3 NDHWC.
  ProblemDesc r3;
  r3.rank = 3;
  r3.c = 4;
  r3.k = 2;
  set_axis(r3, 0, 5, 3, 1, 1, 1);
  set_axis(r3, 1, 6, 3, 1, 1, 1);
  set_axis(r3, 2, 7, 3, 1, 1, 1);
  r3.layout = Layout::kNHWC;
  r3.dtype = DataType::kBF16;
  Result<ConvProblem> p3 = ConvProblem::make(r3);
  ASSERT_TRUE(p3.is_ok());
  Result<cudnn::Descriptors> d3 = cudnn::describe(*p3);
  ASSERT_TRUE(d3.is_ok()) << d3.status().to_string();
  EXPECT_EQ(read_tensor(d3->x).strides, (std::vector<int>{840, 1, 168, 28, 4}));
  EXPECT_EQ(read_filter(d3->w).format, CUDNN_TENSOR_NHWC);
  EXPECT_EQ(read_filter(d3->w).dims, (std::vector<int>{2, 4, 3, 3, 3}));
}

TEST(CudnnDims, TransposedChannelsLastFilterIsForwardKrsc) {
  // Our channels-last transposed filter C x R x S x K/g is cuDNN's forward filter K' x R x S x C' (K' = C).
  ProblemDesc d;
  d.op = Op::kConvTranspose;
  d.c = 6;
  d.k = 4;
  d.groups = 2;
  d.rank = 2;
  set_axis(d, 0, 4, 4, 2, 1, 1);
  set_axis(d, 1, 5, 3, 2, 1, 1, 1);
  d.layout = Layout::kNHWC;
  d.dtype = DataType::kF16;
  Result<ConvProblem> p = ConvProblem::make(d);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  Result<cudnn::Descriptors> ds = cudnn::describe(*p);
  ASSERT_TRUE(ds.is_ok()) << ds.status().to_string();
  const FilterReadback w = read_filter(ds->w);
  EXPECT_EQ(w.format, CUDNN_TENSOR_NHWC);
  EXPECT_EQ(w.dims, (std::vector<int>{6, 2, 4, 3}));
  EXPECT_EQ(w.dtype, CUDNN_DATA_HALF);
  EXPECT_EQ(ds->derived_dims, ds->x_dims); // backward-data of our output gives our input
}

TEST(CudnnDims, PoolingNhwcF16) {
  ProblemDesc d;
  d.op = Op::kMaxPool;
  d.n = 1;
  d.c = 3;
  d.rank = 2;
  set_axis(d, 0, 112, 3, 2, 1, 1);
  set_axis(d, 1, 112, 3, 2, 1, 1);
  d.layout = Layout::kNHWC;
  d.dtype = DataType::kF16;
  Result<ConvProblem> p = ConvProblem::make(d);
  ASSERT_TRUE(p.is_ok());
  Result<cudnn::Descriptors> ds = cudnn::describe(*p);
  ASSERT_TRUE(ds.is_ok()) << ds.status().to_string();
  const TensorReadback y = read_tensor(ds->y);
  EXPECT_EQ(y.dtype, CUDNN_DATA_HALF);
  EXPECT_EQ(y.strides, (std::vector<int>{56 * 56 * 3, 1, 56 * 3, 3}));
  EXPECT_EQ(ds->derived_dims, ds->y_dims);
  EXPECT_EQ(ds->act, nullptr);
}

TEST(CudnnDims, ActivationsMapToLegacyModesOrAreRefused) {
  struct Want {
    Activation a;
    float lo, hi;
    bool ok;
    cudnnActivationMode_t mode;
    double coef;
  };
  const Want wants[] = {
      {Activation::kIdentity, 0, 0, true, CUDNN_ACTIVATION_IDENTITY, 0},
      {Activation::kRelu, 0, 0, true, CUDNN_ACTIVATION_RELU, 0},
      {Activation::kClip, 0.0f, 6.0f, true, CUDNN_ACTIVATION_CLIPPED_RELU, 6.0},
      {Activation::kSigmoid, 0, 0, true, CUDNN_ACTIVATION_SIGMOID, 0},
      {Activation::kTanh, 0, 0, true, CUDNN_ACTIVATION_TANH, 0},
      {Activation::kSilu, 0, 0, true, CUDNN_ACTIVATION_SWISH, 0},
      {Activation::kClip, -1.0f, 1.0f, false, CUDNN_ACTIVATION_IDENTITY, 0},
      {Activation::kLeakyRelu, 0, 0, false, CUDNN_ACTIVATION_IDENTITY, 0},
      {Activation::kGelu, 0, 0, false, CUDNN_ACTIVATION_IDENTITY, 0},
      {Activation::kGeluTanh, 0, 0, false, CUDNN_ACTIVATION_IDENTITY, 0},
  };
  for (const Want& want : wants) {
    ProblemDesc d = formats_conv(DataType::kF16, Layout::kNHWC, Layout::kNHWC);
    d.epilogue.activation = want.a;
    d.epilogue.clip_min = want.lo;
    d.epilogue.clip_max = want.hi;
    d.epilogue.beta = 0.5f; // a residual changes no descriptor: z shares y's
    Result<ConvProblem> p = ConvProblem::make(d);
    ASSERT_TRUE(p.is_ok()) << p.status().to_string();
    Result<cudnn::Descriptors> ds = cudnn::describe(*p);
    const std::string label = std::string(activation_name(want.a)) + " " + std::to_string(want.lo);
    if (!want.ok) {
      ASSERT_FALSE(ds.is_ok()) << label;
      EXPECT_EQ(ds.status().code(), StatusCode::kNotSupported) << label;
      EXPECT_NE(ds.status().message().find(want.a == Activation::kClip ? "clip" : activation_name(want.a)),
                std::string::npos)
          << ds.status().message();
      continue;
    }
    ASSERT_TRUE(ds.is_ok()) << label << ": " << ds.status().to_string();
    EXPECT_EQ(ds->act_mode, want.mode) << label;
    ASSERT_NE(ds->act, nullptr);
    cudnnActivationMode_t mode{};
    cudnnNanPropagation_t nan{};
    double coef = -1;
    ASSERT_EQ(cudnnGetActivationDescriptor(ds->act, &mode, &nan, &coef), CUDNN_STATUS_SUCCESS);
    EXPECT_EQ(mode, want.mode) << label;
    EXPECT_EQ(nan, CUDNN_PROPAGATE_NAN) << label;
    if (want.mode == CUDNN_ACTIVATION_CLIPPED_RELU) {
      EXPECT_EQ(coef, want.coef);
    }
    if (want.mode == CUDNN_ACTIVATION_SWISH) {
      double beta = 0;
      ASSERT_EQ(cudnnGetActivationDescriptorSwishBeta(ds->act, &beta), CUDNN_STATUS_SUCCESS);
      EXPECT_EQ(beta, 1.0); // silu = x * sigmoid(1 * x)
    }
  }
}

TEST(CudnnDims, MixedDtypesAreNotSupported) {
  ProblemDesc d = formats_conv(DataType::kF16, Layout::kNHWC, Layout::kNHWC);
  d.y_dtype = DataType::kF32;
  Result<ConvProblem> p = ConvProblem::make(d);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  Result<cudnn::Descriptors> ds = cudnn::describe(*p);
  ASSERT_FALSE(ds.is_ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kNotSupported);
  EXPECT_NE(ds.status().message().find("x is f16 but y is f32"), std::string::npos) << ds.status().message();
  d = formats_conv(DataType::kF16, Layout::kNHWC, Layout::kNHWC);
  d.bias_dtype = DataType::kF32;
  Result<ConvProblem> pb = ConvProblem::make(d);
  ASSERT_TRUE(pb.is_ok());
  Result<cudnn::Descriptors> db = cudnn::describe(*pb);
  ASSERT_FALSE(db.is_ok());
  EXPECT_NE(db.status().message().find("bias is f32"), std::string::npos) << db.status().message();
}

#else

TEST(CudnnDims, NeedsCudnnHeaders) {
  GTEST_SKIP() << "cuDNN (cudnn.h + libcudnn) not found at configure time";
}

#endif

} // namespace
} // namespace convarith
