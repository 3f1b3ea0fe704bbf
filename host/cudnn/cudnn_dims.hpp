// host/cudnn/cudnn_dims.hpp — how a ConvProblem is described to cuDNN's legacy API, and cuDNN's
// own output-size arithmetic as a second opinion for ConvProblem::out().
//
// Header-only on purpose: it needs only cudnn.h and libcudnn (no CUDA runtime, no GPU: descriptor
// calls and cudnnGetConvolutionNdForwardOutputDim / cudnnGetPoolingNdForwardOutputDim run on the
// host, verified with cuDNN 9.19 on a machine without a GPU), so tests/test_cudnn_dims.cpp uses it
// in the CPU-only build too, where convarith_cudnn does not exist. Never part of the library.
//
// Mapping:
//   rank 1      a 2-D problem with a leading unit axis (cuDNN's Nd descriptors need 4 or 5 dims)
//   conv        x N x C x in, filter K x C/g x k, group count g, cross-correlation
//   transposed  cuDNN's backward-data of the forward conv it is the gradient of: that conv's input
//               is our y (N x K x out), its output our x (N x C x in), its filter our w read as
//               C x K/g x k (K' = C, C' = K). cuDNN derives dims forward only, so the transposed
//               problem is expressible exactly when forward(out) == in (output padding a < s).
//   pooling     cudnnPoolingNdDescriptor; ceil_mode and dilation are not expressible.
// cuDNN's legacy API has one symmetric pad per axis: asymmetric padding is kNotSupported.
// Formats:
//   layouts     x, y (and z, which shares y's descriptor) are described by the problem's own element
//               strides (ConvProblem::tensor()), so NC[D]HW and N[D]HWC both pass; the filter as
//               CUDNN_TENSOR_NCHW (KCRS) or CUDNN_TENSOR_NHWC (KRSC; the transposed C x R x S x K/g is
//               cuDNN's forward filter K' x R x S x C' in NHWC).
//   data types  CUDNN_DATA_FLOAT / HALF / BFLOAT16, the same for every tensor (the legacy API's
//               FLOAT / PSEUDO_HALF / PSEUDO_BFLOAT16 configurations: fp32 compute type, so fp32
//               accumulation, for all three). Mixed dtypes are kNotSupported.
//   math        f32: CUDNN_FMA_MATH (never TF32). f16 / bf16: CUDNN_TENSOR_OP_MATH — cuDNN's
//               half-precision kernels are tensor-op kernels; the products of f16 / bf16 values are
//               exact in fp32 and the accumulation stays fp32, so this is not a lower precision
//               (math_name() labels it in every report).
// Epilogue y = act(alpha * op(x, w) + bias + beta * z): alpha and beta are cuDNN's own scaling
// factors (alpha1 / alpha2 of cudnnConvolutionBiasActivationForward, or alpha / beta of
// cudnnConvolutionForward / BackwardData onto y preloaded with z); the activation is an
// activation descriptor: relu RELU, clip(0, hi) CLIPPED_RELU(hi), sigmoid SIGMOID, tanh TANH, silu
// SWISH (swish beta 1). leaky_relu, clip with lo != 0, gelu and gelu_tanh have no legacy mode
// (only the graph API has them): kNotSupported at this step, naming the activation.
#pragma once

#include <cudnn.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "convarith/problem.hpp"
#include "convarith/status.hpp"

namespace convarith::cudnn {

// Which step a cuDNN call belongs to: describing the problem (descriptor set-up and cuDNN's own
// output-dim arithmetic, describe() below) or anything after it (the handle, Find/Get, workspace,
// execution).
enum class CudnnStep { kDescribe, kExecute };

// The StatusCode a cuDNN status becomes (a pure function: tests/test_gpu_honesty.cpp checks it on
// the CPU). Only the descriptor step may say "cuDNN cannot express this problem" (kNotSupported),
// and only with a problem-shaped refusal: CUDNN_STATUS_BAD_PARAM / INVALID_VALUE / OUT_OF_BOUND
// (the legacy API rejects these numbers) or NOT_SUPPORTED / _SHAPE / _DATA_TYPE / _LAYOUT /
// _PADDING / _INVALID_DYNAMIC_SHAPE. Everything else is an error that fails a comparison and a
// bench: the environment (NOT_INITIALIZED, sub-library loading or version mismatch, incompatible
// driver or runtime, architecture mismatch, missing runtime prerequisite, sub-library unavailable,
// shared memory or launch limits), cuDNN's internal and execution errors are kDeviceError at any
// step; a bad parameter after the descriptor step (null or misaligned pointer, workspace too small,
// ...) is kInternal: the adapter passed cuDNN something wrong.
inline StatusCode cudnn_status_code(cudnnStatus_t s, CudnnStep step) {
  const int code = static_cast<int>(s);
  if (code == 0)
    return StatusCode::kOk;
  if (step == CudnnStep::kDescribe) {
    switch (code) {
    case 2000: // CUDNN_STATUS_BAD_PARAM
    case 2001: // CUDNN_STATUS_INVALID_VALUE (deprecated alias of BAD_PARAM)
    case 2005: // CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND
    case 3000: // CUDNN_STATUS_NOT_SUPPORTED
    case 3002: // CUDNN_STATUS_NOT_SUPPORTED_SHAPE
    case 3003: // CUDNN_STATUS_NOT_SUPPORTED_DATA_TYPE
    case 3004: // CUDNN_STATUS_NOT_SUPPORTED_LAYOUT
    case 3011: // CUDNN_STATUS_NOT_SUPPORTED_PADDING
    case 3014: // CUDNN_STATUS_NOT_SUPPORTED_INVALID_DYNAMIC_SHAPE
      return StatusCode::kNotSupported;
    default:
      break;
    }
  }
  if (code / 1000 == 2)
    return StatusCode::kInternal;
  return StatusCode::kDeviceError;
}

// A cuDNN status as a convarith Status naming the call, the status string and its number.
inline Status from_cudnn(cudnnStatus_t s, const char* call, CudnnStep step = CudnnStep::kExecute) {
  const StatusCode code = cudnn_status_code(s, step);
  if (code == StatusCode::kOk)
    return Status::ok();
  std::string m = code == StatusCode::kNotSupported ? "cuDNN cannot express this problem: " : "cuDNN ";
  m += std::string(call) + ": " + cudnnGetErrorString(s) + " (" + std::to_string(static_cast<int>(s)) + ")";
  return Status(code, m);
}

// The descriptors for one problem. Owns them; movable, not copyable.
class Descriptors {
public:
  Descriptors() = default;
  Descriptors(const Descriptors&) = delete;
  Descriptors& operator=(const Descriptors&) = delete;
  Descriptors(Descriptors&& o) noexcept { swap(o); }
  Descriptors& operator=(Descriptors&& o) noexcept {
    swap(o);
    return *this;
  }
  ~Descriptors() {
    if (x != nullptr)
      cudnnDestroyTensorDescriptor(x);
    if (y != nullptr)
      cudnnDestroyTensorDescriptor(y);
    if (bias != nullptr)
      cudnnDestroyTensorDescriptor(bias);
    if (w != nullptr)
      cudnnDestroyFilterDescriptor(w);
    if (conv != nullptr)
      cudnnDestroyConvolutionDescriptor(conv);
    if (pool != nullptr)
      cudnnDestroyPoolingDescriptor(pool);
    if (act != nullptr)
      cudnnDestroyActivationDescriptor(act);
  }
  void swap(Descriptors& o) noexcept {
    std::swap(x, o.x);
    std::swap(y, o.y);
    std::swap(bias, o.bias);
    std::swap(w, o.w);
    std::swap(conv, o.conv);
    std::swap(pool, o.pool);
    std::swap(act, o.act);
    std::swap(act_mode, o.act_mode);
    std::swap(dtype, o.dtype);
    std::swap(filter_format, o.filter_format);
    std::swap(math, o.math);
    std::swap(x_dims, o.x_dims);
    std::swap(y_dims, o.y_dims);
    std::swap(derived_dims, o.derived_dims);
  }

  // For conv and pooling: x = the problem's x, y = the problem's y. For conv_transpose x/y are the
  // problem's x/y too (x is cuDNN's dy, y is cuDNN's dx).
  cudnnTensorDescriptor_t x = nullptr, y = nullptr, bias = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  cudnnPoolingDescriptor_t pool = nullptr;
  // The epilogue's activation: conv ops always (IDENTITY for an identity activation); pooling nullptr.
  cudnnActivationDescriptor_t act = nullptr;
  cudnnActivationMode_t act_mode = CUDNN_ACTIVATION_IDENTITY;
  cudnnDataType_t dtype = CUDNN_DATA_FLOAT;              // every tensor's
  cudnnTensorFormat_t filter_format = CUDNN_TENSOR_NCHW; // KCRS, or NHWC = KRSC
  cudnnMathType_t math = CUDNN_FMA_MATH;                 // what the convolution descriptor allows
  std::vector<int> x_dims, y_dims;
  // What cuDNN derives: the forward output of conv / pooling (compare with y_dims), or for
  // conv_transpose the forward conv's output from y (compare with x_dims).
  std::vector<int> derived_dims;
};

namespace detail {

inline Result<std::vector<int>> to_int_dims(const std::vector<int64_t>& shape, int rank) {
  std::vector<int> out;
  for (size_t j = 0; j < shape.size(); ++j) {
    if (shape[j] > INT32_MAX)
      return not_supported("cuDNN: a dimension exceeds INT32_MAX");
    out.push_back(static_cast<int>(shape[j]));
    if (rank == 1 && j == 1)
      out.push_back(1); // the unit H axis before W
  }
  return out;
}

// A tensor of the problem with its own element strides (rank 1: the unit H axis inserted before W,
// with the stride W's stride * W, which no index ever multiplies by anything but 0).
inline Result<std::vector<int>> to_int_strides(const TensorDesc& t, int rank) {
  std::vector<int> out;
  for (int j = 0; j < t.rank; ++j) {
    const int64_t s = t.strides[static_cast<size_t>(j)];
    if (s > INT32_MAX)
      return not_supported("cuDNN: a tensor stride exceeds INT32_MAX");
    out.push_back(static_cast<int>(s));
    if (rank == 1 && j == 1) {
      const int64_t unit = t.strides[2] * t.dims[2];
      if (unit > INT32_MAX)
        return not_supported("cuDNN: a tensor stride exceeds INT32_MAX");
      out.push_back(static_cast<int>(unit));
    }
  }
  return out;
}

inline Status set_tensor(cudnnTensorDescriptor_t* d, const std::vector<int>& dims,
                         cudnnDataType_t dtype = CUDNN_DATA_FLOAT, std::vector<int> strides = {}) {
  CONVARITH_RETURN_IF_ERROR(
      from_cudnn(cudnnCreateTensorDescriptor(d), "cudnnCreateTensorDescriptor", CudnnStep::kDescribe));
  if (strides.empty()) {
    strides.assign(dims.size(), 1);
    for (size_t j = dims.size() - 1; j > 0; --j)
      strides[j - 1] = strides[j] * dims[j];
  }
  return from_cudnn(cudnnSetTensorNdDescriptor(*d, dtype, static_cast<int>(dims.size()), dims.data(), strides.data()),
                    "cudnnSetTensorNdDescriptor", CudnnStep::kDescribe);
}

} // namespace detail

// The cuDNN data type of a convarith dtype.
inline cudnnDataType_t cudnn_dtype(DataType t) {
  switch (t) {
  case DataType::kF16:
    return CUDNN_DATA_HALF;
  case DataType::kBF16:
    return CUDNN_DATA_BFLOAT16;
  case DataType::kF32:
    break;
  }
  return CUDNN_DATA_FLOAT;
}

// The math type of a problem's dtype (see the mapping above).
inline cudnnMathType_t math_for(DataType t) {
  return t == DataType::kF32 ? CUDNN_FMA_MATH : CUDNN_TENSOR_OP_MATH;
}

// "FMA", "TENSOR_OP", "DEFAULT", "TENSOR_OP_ALLOW_CONVERSION": labels for reports.
inline const char* math_name(cudnnMathType_t m) {
  switch (m) {
  case CUDNN_DEFAULT_MATH:
    return "DEFAULT";
  case CUDNN_TENSOR_OP_MATH:
    return "TENSOR_OP";
  case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
    return "TENSOR_OP_ALLOW_CONVERSION";
  case CUDNN_FMA_MATH:
    return "FMA";
  default:
    return "MATH_UNKNOWN";
  }
}

// The legacy activation mode (and its coefficient: CLIPPED_RELU's ceiling) for an epilogue, or
// kNotSupported naming the activation. Identity maps to CUDNN_ACTIVATION_IDENTITY.
inline Result<std::pair<cudnnActivationMode_t, double>> activation_mode(const Epilogue& e) {
  using R = std::pair<cudnnActivationMode_t, double>;
  switch (e.activation) {
  case Activation::kIdentity:
    return R{CUDNN_ACTIVATION_IDENTITY, 0.0};
  case Activation::kRelu:
    return R{CUDNN_ACTIVATION_RELU, 0.0};
  case Activation::kClip:
    if (e.clip_min != 0.0f || !(e.clip_max > 0.0f))
      return not_supported("cuDNN: clip(" + std::to_string(e.clip_min) + ", " + std::to_string(e.clip_max) +
                           ") is not expressible: the legacy CLIPPED_RELU is clip(0, ceiling > 0)");
    return R{CUDNN_ACTIVATION_CLIPPED_RELU, static_cast<double>(e.clip_max)};
  case Activation::kSigmoid:
    return R{CUDNN_ACTIVATION_SIGMOID, 0.0};
  case Activation::kTanh:
    return R{CUDNN_ACTIVATION_TANH, 0.0};
  case Activation::kSilu:
    return R{CUDNN_ACTIVATION_SWISH, 0.0};
  case Activation::kLeakyRelu:
  case Activation::kGelu:
  case Activation::kGeluTanh:
    break;
  }
  return not_supported(std::string("cuDNN: activation ") + activation_name(e.activation) +
                       " has no legacy cudnnActivationMode_t (sigmoid, relu, tanh, clipped_relu, elu, identity, "
                       "swish); only the graph API has it");
}

// Builds the descriptors and asks cuDNN for the dims it derives. kNotSupported (with the reason)
// for what the legacy API cannot express: asymmetric padding, N = 0, ceil_mode or dilated pooling,
// a transposed problem whose output padding cuDNN cannot reproduce. Host only, no GPU needed.
inline Result<Descriptors> describe(const ConvProblem& p) {
  Descriptors d;
  const int rank = p.rank();
  const int nb = rank == 1 ? 2 : rank; // spatial dims cuDNN sees
  if (p.n() == 0)
    return not_supported("cuDNN: N = 0 (cuDNN rejects empty tensors)");
  // One data type for every tensor (the legacy API's configurations).
  const DataType t = p.dtype(TensorId::kY);
  for (TensorId id : {TensorId::kX, TensorId::kW, TensorId::kBias, TensorId::kZ})
    if (p.tensor(id).rank > 0 && p.dtype(id) != t)
      return not_supported(std::string("cuDNN: ") + tensor_name(id) + " is " + dtype_name(p.dtype(id)) + " but y is " +
                           dtype_name(t) + " (the legacy API takes one data type for x, w, bias, z and y)");
  d.dtype = cudnn_dtype(t);
  d.math = math_for(t);
  std::vector<int> pad, stride, dil, window;
  if (rank == 1) {
    pad.push_back(0);
    stride.push_back(1);
    dil.push_back(1);
    window.push_back(1);
  }
  for (int j = 0; j < rank; ++j) {
    const AxisParams& a = p.axis(j);
    if (a.p_lo != a.p_hi)
      return not_supported("cuDNN: axis " + std::to_string(j) + " has asymmetric padding " + std::to_string(a.p_lo) +
                           "+" + std::to_string(a.p_hi) + " (the legacy API has one pad per axis)");
    pad.push_back(static_cast<int>(a.p_lo));
    stride.push_back(static_cast<int>(a.s));
    dil.push_back(static_cast<int>(a.d));
    window.push_back(static_cast<int>(a.k));
  }
  Result<std::vector<int>> xd = detail::to_int_dims(p.x_shape(), rank);
  Result<std::vector<int>> yd = detail::to_int_dims(p.y_shape(), rank);
  if (!xd)
    return xd.status();
  if (!yd)
    return yd.status();
  d.x_dims = *xd;
  d.y_dims = *yd;
  Result<std::vector<int>> xs = detail::to_int_strides(p.tensor(TensorId::kX), rank);
  Result<std::vector<int>> ys = detail::to_int_strides(p.tensor(TensorId::kY), rank);
  if (!xs)
    return xs.status();
  if (!ys)
    return ys.status();
  CONVARITH_RETURN_IF_ERROR(detail::set_tensor(&d.x, d.x_dims, d.dtype, *xs));
  CONVARITH_RETURN_IF_ERROR(detail::set_tensor(&d.y, d.y_dims, d.dtype, *ys));
  std::vector<int> derived(static_cast<size_t>(nb + 2), 0);

  if (is_pool(p.op())) {
    if (p.ceil_mode())
      return not_supported("cuDNN: ceil_mode pooling is not expressible (floor only)");
    for (int j = 0; j < rank; ++j)
      if (p.axis(j).d != 1)
        return not_supported("cuDNN: pooling axis " + std::to_string(j) + " has dilation " +
                             std::to_string(p.axis(j).d) + " (cuDNN pooling has none)");
    const cudnnPoolingMode_t mode = p.op() == Op::kMaxPool  ? CUDNN_POOLING_MAX_DETERMINISTIC
                                    : p.count_include_pad() ? CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING
                                                            : CUDNN_POOLING_AVERAGE_COUNT_EXCLUDE_PADDING;
    CONVARITH_RETURN_IF_ERROR(
        from_cudnn(cudnnCreatePoolingDescriptor(&d.pool), "cudnnCreatePoolingDescriptor", CudnnStep::kDescribe));
    CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnSetPoolingNdDescriptor(d.pool, mode, CUDNN_NOT_PROPAGATE_NAN, nb,
                                                                     window.data(), pad.data(), stride.data()),
                                         "cudnnSetPoolingNdDescriptor", CudnnStep::kDescribe));
    CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnGetPoolingNdForwardOutputDim(d.pool, d.x, nb + 2, derived.data()),
                                         "cudnnGetPoolingNdForwardOutputDim", CudnnStep::kDescribe));
    d.derived_dims = derived;
    return d;
  }

  // The filter: conv K x C/g x k; transposed C x K/g x k (cuDNN's forward filter with K' = C, C' = K).
  const int g = static_cast<int>(p.groups());
  std::vector<int> wd;
  if (p.op() == Op::kConv) {
    wd = {static_cast<int>(p.k()), static_cast<int>(p.c() / p.groups())};
  } else {
    wd = {static_cast<int>(p.c()), static_cast<int>(p.k() / p.groups())};
  }
  wd.insert(wd.end(), window.begin(), window.end());
  CONVARITH_RETURN_IF_ERROR(
      from_cudnn(cudnnCreateFilterDescriptor(&d.w), "cudnnCreateFilterDescriptor", CudnnStep::kDescribe));
  // The dims stay logical (K, C, k...); the format says where C sits in memory.
  d.filter_format = p.w_layout() == Layout::kNHWC ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnSetFilterNdDescriptor(d.w, d.dtype, d.filter_format, nb + 2, wd.data()),
                                       "cudnnSetFilterNdDescriptor", CudnnStep::kDescribe));
  CONVARITH_RETURN_IF_ERROR(
      from_cudnn(cudnnCreateConvolutionDescriptor(&d.conv), "cudnnCreateConvolutionDescriptor", CudnnStep::kDescribe));
  CONVARITH_RETURN_IF_ERROR(
      from_cudnn(cudnnSetConvolutionNdDescriptor(d.conv, nb, pad.data(), stride.data(), dil.data(),
                                                 CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                 "cudnnSetConvolutionNdDescriptor", CudnnStep::kDescribe));
  CONVARITH_RETURN_IF_ERROR(
      from_cudnn(cudnnSetConvolutionGroupCount(d.conv, g), "cudnnSetConvolutionGroupCount", CudnnStep::kDescribe));
  // f32: FMA (cuDNN's default math lets fp32 run as TF32 on Ampere and later); f16 / bf16: tensor ops
  // with fp32 accumulation (the compute type above).
  CONVARITH_RETURN_IF_ERROR(
      from_cudnn(cudnnSetConvolutionMathType(d.conv, d.math), "cudnnSetConvolutionMathType", CudnnStep::kDescribe));
  // Forward: from x (conv) or from y, cuDNN's dx (transposed).
  cudnnTensorDescriptor_t from = p.op() == Op::kConv ? d.x : d.y;
  CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnGetConvolutionNdForwardOutputDim(d.conv, from, d.w, nb + 2, derived.data()),
                                       "cudnnGetConvolutionNdForwardOutputDim", CudnnStep::kDescribe));
  d.derived_dims = derived;
  if (p.op() == Op::kConvTranspose && derived != d.x_dims)
    return not_supported("cuDNN: backward-data cannot produce this transposed output (forward of the output gives " +
                         std::to_string(derived.back()) + " on the last axis, input has " +
                         std::to_string(d.x_dims.back()) + "; output padding >= stride is not expressible)");
  // Bias 1 x K x 1...: cudnnAddTensor broadcasts it over N and the spatial axes.
  std::vector<int> bd(static_cast<size_t>(nb + 2), 1);
  bd[1] = static_cast<int>(p.k());
  CONVARITH_RETURN_IF_ERROR(detail::set_tensor(&d.bias, bd, d.dtype));
  // The activation (an identity epilogue needs none; the fused call gets its own identity one).
  Result<std::pair<cudnnActivationMode_t, double>> mode = activation_mode(p.epilogue());
  if (!mode)
    return mode.status();
  d.act_mode = mode->first;
  CONVARITH_RETURN_IF_ERROR(
      from_cudnn(cudnnCreateActivationDescriptor(&d.act), "cudnnCreateActivationDescriptor", CudnnStep::kDescribe));
  CONVARITH_RETURN_IF_ERROR(
      from_cudnn(cudnnSetActivationDescriptor(d.act, d.act_mode, CUDNN_PROPAGATE_NAN, mode->second),
                 "cudnnSetActivationDescriptor", CudnnStep::kDescribe));
  if (d.act_mode == CUDNN_ACTIVATION_SWISH)
    CONVARITH_RETURN_IF_ERROR(from_cudnn(cudnnSetActivationDescriptorSwishBeta(d.act, 1.0),
                                         "cudnnSetActivationDescriptorSwishBeta", CudnnStep::kDescribe));
  return d;
}

// cuDNN's dims for the problem, in convarith's shape convention (the unit axis of rank 1 removed):
//   conv, pooling   the forward output N x K x out...          (compare with y_shape())
//   conv_transpose  the forward conv's output from our output   (compare with x_shape())
inline Result<std::vector<int64_t>> forward_output_dims(const ConvProblem& p) {
  Result<Descriptors> d = describe(p);
  if (!d)
    return d.status();
  std::vector<int64_t> out;
  for (size_t j = 0; j < d->derived_dims.size(); ++j) {
    if (p.rank() == 1 && j == 2)
      continue; // the unit H axis
    out.push_back(d->derived_dims[j]);
  }
  return out;
}

} // namespace convarith::cudnn
