// convarith/problem.hpp — an immutable, validated convolution / pooling problem.
//
// A ConvProblem is made once by ConvProblem::make(ProblemDesc), which validates every field
// with the arithmetic (arithmetic.hpp) and overflow-checks every element count in 64 bits.
// Afterwards it cannot change. Internally rank 1 and 2 are rank 3 with leading unit axes
// (axis3()), so kernels and the CPU fallback have one code path.
//
// Tensors, each with its own dtype and layout, resolved into strides by make() (tensor(id)):
//   x  N x C x in...                       input                      layout: NC[D]HW or N[D]HWC
//   w  K x C/g x k...       for kConv      weights                    w_layout: KC[D]HW (KCRS) or K[D]HWC (KRSC)
//      C x K/g x k...       for kConvTranspose (PyTorch / ONNX / cuDNN backward-data; channels-last twin C[D]HWK)
//      (none)               for pooling
//   b  K                    optional bias (conv and conv_transpose)
//   z  N x K x out...       residual (read when epilogue.beta != 0; same layout as y; may be y itself)
//   y  N x K x out...       output (K = C for pooling)     layout: that of x
// Shapes are always given in logical order (N, C, spatial...); the layout only changes the strides.
// The epilogue is part of the problem: y = act(alpha * op(x, w) + bias + beta * z), accumulation fp32.
// Compiles without CUDA headers.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "convarith/arithmetic.hpp"
#include "convarith/status.hpp"

namespace convarith {

constexpr int kMaxSpatialRank = 3;

constexpr unsigned op_bit(Op op) {
  return 1u << static_cast<unsigned>(op);
}

// Element types of the tensors. Accumulation is always fp32 (room is left for int8 / fp8 storage types).
enum class DataType { kF32 = 0, kF16 = 1, kBF16 = 2 };
constexpr int kNumDataTypes = 3;
const char* dtype_name(DataType t);               // "f32", "f16", "bf16"
Result<DataType> parse_dtype(std::string_view s); // f32|float32|f16|float16|half|bf16|bfloat16
int dtype_bytes(DataType t);                      // 4, 2, 2
double dtype_unit_roundoff(DataType t);           // 2^-24, 2^-11, 2^-8 (round to nearest even)
constexpr unsigned dtype_bit(DataType t) {
  return 1u << static_cast<unsigned>(t);
}

// Channels first (NC[D]HW; filters KC[D]HW / C(K/g)[D]HW) or channels last (N[D]HWC; filters K[D]HW(C/g) /
// C[D]HW(K/g)). The same two presets name activation and filter layouts.
enum class Layout { kNCHW = 0, kNHWC = 1 };
const char* layout_name(Layout l);               // "NCHW", "NHWC" (for any rank)
Result<Layout> parse_layout(std::string_view s); // NCHW|NCDHW|NCW|NHWC|NDHWC|NWC (case-insensitive)
constexpr unsigned layout_bit(Layout l) {
  return 1u << static_cast<unsigned>(l);
}

// cuDNN's math type: kStrict runs fp32 FMA math on the stored values (the default); kTensorOp allows
// tensor-core math (TF32 rounding of f32 inputs; f16/bf16 products) where a row has it. A row that
// only has FMA math runs kTensorOp problems in FMA math (allowed, not required).
enum class MathMode { kStrict = 0, kTensorOp = 1 };
const char* math_mode_name(MathMode m); // "strict", "tensor_op"

// ONNX's activations, with ONNX's semantics (Clip(min, max), LeakyRelu(alpha), Gelu approximate="none"|"tanh").
enum class Activation { kIdentity = 0, kRelu, kLeakyRelu, kClip, kSigmoid, kTanh, kSilu, kGelu, kGeluTanh };
const char* activation_name(Activation a); // identity, relu, leaky_relu, clip, sigmoid, tanh, silu, gelu, gelu_tanh

// y = act(alpha * op(x, w) + bias + beta * z). The default is the identity epilogue y = op(x, w) + bias.
struct Epilogue {
  Activation activation = Activation::kIdentity;
  float alpha = 1.0f;        // scales op(x, w) (not the bias)
  float beta = 0.0f;         // scales the residual z; z is read only when beta != 0
  float leaky_alpha = 0.01f; // kLeakyRelu: x < 0 ? leaky_alpha * x : x
  float clip_min = 0.0f;     // kClip: min(max(x, clip_min), clip_max)   (relu6: 0, 6)
  float clip_max = 6.0f;
  bool is_identity() const { return activation == Activation::kIdentity && alpha == 1.0f && beta == 0.0f; }
  bool has_residual() const { return beta != 0.0f; }
};

// The tensors of a problem.
enum class TensorId { kX = 0, kW = 1, kBias = 2, kZ = 3, kY = 4 };
constexpr int kNumTensors = 5;
const char* tensor_name(TensorId t); // "x", "w", "bias", "z", "y"

// A resolved tensor: dtype, layout, logical dims (N, C, spatial... or K, C/g, spatial... for w; K for bias)
// and the element stride of each logical dim. rank 0 means the problem has no such tensor (w for pooling,
// z without a residual).
struct TensorDesc {
  DataType dtype = DataType::kF32;
  Layout layout = Layout::kNCHW;
  int rank = 0;
  std::array<int64_t, 2 + 3> dims{};
  std::array<int64_t, 2 + 3> strides{};
  int64_t elements = 0;
  int64_t bytes() const { return elements * dtype_bytes(dtype); }
  // The dims in memory order (N, spatial..., C for channels last): the shape of a C-order array holding it.
  std::vector<int64_t> physical_dims() const;
};

// What the caller asks for. Only the first `rank` entries of each array are read.
struct ProblemDesc {
  Op op = Op::kConv;
  int64_t n = 1;      // batch; 0 is a valid no-op
  int64_t c = 1;      // input channels
  int64_t k = 1;      // output channels (conv, conv_transpose); ignored for pooling (K = C)
  int64_t groups = 1; // conv and conv_transpose; C and K divisible by it (C = K = groups: depthwise)
  int rank = 2;       // spatial rank, 1..3
  std::array<int64_t, kMaxSpatialRank> input{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> kernel{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> stride{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> pad_lo{0, 0, 0};
  std::array<int64_t, kMaxSpatialRank> pad_hi{0, 0, 0};
  std::array<int64_t, kMaxSpatialRank> dilation{1, 1, 1};
  std::array<int64_t, kMaxSpatialRank> output_padding{0, 0, 0}; // conv_transpose only
  PadMode pad_mode = PadMode::kExplicit;                        // kExplicit uses pad_lo/pad_hi
  bool has_output_shape = false;                                // conv_transpose only (ONNX output_shape)
  std::array<int64_t, kMaxSpatialRank> output_shape{1, 1, 1};
  bool ceil_mode = false;         // pooling only
  bool count_include_pad = false; // avg_pool only
  // Tensor formats. `dtype` is every tensor's element type unless overridden per tensor; `layout` is x's, z's
  // and y's; w_layout defaults to `layout`.
  DataType dtype = DataType::kF32;
  std::optional<DataType> x_dtype, w_dtype, bias_dtype, z_dtype, y_dtype;
  Layout layout = Layout::kNCHW;
  std::optional<Layout> w_layout;
  MathMode math = MathMode::kStrict;
  Epilogue epilogue; // conv and conv_transpose only (pooling: the identity epilogue)
};

class ConvProblem {
public:
  // The one validating factory. Errors name the field and the numbers.
  static Result<ConvProblem> make(const ProblemDesc& desc);

  ConvProblem() = default; // an empty 1x1x1 conv; only for containers. Use make().

  Op op() const { return desc_.op; }
  int64_t n() const { return desc_.n; }
  int64_t c() const { return desc_.c; }
  int64_t k() const { return desc_.k; } // = c() for pooling
  int64_t groups() const { return desc_.groups; }
  int rank() const { return desc_.rank; }
  bool ceil_mode() const { return desc_.ceil_mode; }
  bool count_include_pad() const { return desc_.count_include_pad; }
  // The padding mode the caller asked for (pads are already resolved in axis()).
  PadMode pad_mode() const { return requested_pad_mode_; }

  // Spatial axis j in [0, rank): resolved explicit padding and output padding.
  const AxisParams& axis(int j) const { return axes_[static_cast<size_t>(kMaxSpatialRank - desc_.rank + j)]; }
  int64_t out(int j) const { return out_[static_cast<size_t>(kMaxSpatialRank - desc_.rank + j)]; }
  // Rank-3 view (D, H, W), leading axes are unit axes for rank < 3.
  const AxisParams& axis3(int j) const { return axes_[static_cast<size_t>(j)]; }
  int64_t out3(int j) const { return out_[static_cast<size_t>(j)]; }

  // Full tensor shapes (N, C, spatial...). w_shape() is empty for pooling.
  std::vector<int64_t> x_shape() const;
  std::vector<int64_t> w_shape() const;
  std::vector<int64_t> y_shape() const;
  int64_t x_elements() const { return x_elements_; }
  int64_t w_elements() const { return w_elements_; }
  int64_t y_elements() const { return y_elements_; }
  int64_t bias_elements() const { return is_pool(desc_.op) ? 0 : desc_.k; }
  int64_t in_spatial() const { return in_spatial_; }   // product of input spatial sizes
  int64_t out_spatial() const { return out_spatial_; } // product of output spatial sizes
  int64_t kernel_spatial() const { return kernel_spatial_; }

  // Tensor formats (resolved in make()).
  const TensorDesc& tensor(TensorId t) const { return tensors_[static_cast<size_t>(t)]; }
  DataType dtype(TensorId t) const { return tensor(t).dtype; }
  Layout layout() const { return desc_.layout; } // x, z, y
  Layout w_layout() const { return tensor(TensorId::kW).layout; }
  MathMode math() const { return desc_.math; }
  const Epilogue& epilogue() const { return desc_.epilogue; }
  // True when x, w (if any), z (if any) and y all have dtype t and bias (if any) is t or f32.
  bool uniform_dtype(DataType t) const;
  // f32, NC[D]HW, identity epilogue: the original problem class every row has always run.
  bool is_plain_f32_nchw() const;

  // Nominal FLOPs: conv 2*N*K*(C/g)*prod(k)*prod(out); transposed (the dgrad view)
  // 2*N*C*(K/g)*prod(k)*prod(in); pooling N*C*prod(k)*prod(out) (one op per window tap).
  double flops() const;
  // Compulsory bytes: every element of x, w, y (and z with a residual) moved once at its dtype's size (bias ignored).
  int64_t min_bytes() const;
  // A stable short name for tests and bench, e.g. "conv_n1_c64_k64_i56x56_r3x3_p1x1_1x1"; non-default
  // formats and epilogues are appended ("_f16_nhwc_relu_res").
  std::string name() const;
  // The resolved description (explicit pads, output padding): make(resolved()) gives an equal problem.
  ProblemDesc resolved() const;

private:
  ProblemDesc desc_; // resolved: pad_mode kExplicit, pads and output padding filled in
  PadMode requested_pad_mode_ = PadMode::kExplicit;
  std::array<AxisParams, kMaxSpatialRank> axes_{};
  std::array<int64_t, kMaxSpatialRank> out_{1, 1, 1};
  std::array<TensorDesc, kNumTensors> tensors_{};
  int64_t x_elements_ = 1, w_elements_ = 1, y_elements_ = 1;
  int64_t in_spatial_ = 1, out_spatial_ = 1, kernel_spatial_ = 1;
};

// For each spatial axis of `desc` (desc.rank of them), the nearest changes that make it valid (see
// suggest_axis_fix), after auto_pad and output_shape are resolved as make() resolves them; an axis whose
// auto_pad or output_shape cannot be resolved is invalid, with the reason and the explicit alternatives.
// Channel and group errors are not axis errors: make()'s message is the whole story for those. Never fails.
std::vector<AxisFix> suggest_fixes(const ProblemDesc& desc);

} // namespace convarith
