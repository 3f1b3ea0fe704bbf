// convarith/problem.hpp — an immutable, validated convolution / pooling problem.
//
// A ConvProblem is made once by ConvProblem::make(ProblemDesc), which validates every field
// with the arithmetic (arithmetic.hpp) and overflow-checks every element count in 64 bits.
// Afterwards it cannot change. Internally rank 1 and 2 are rank 3 with leading unit axes
// (axis3()), so kernels and the CPU fallback have one code path.
//
// Tensors (dtype f32, layout NC[D]HW, C order):
//   x  N x C x in...                       input
//   w  K x C/g x k...       for kConv      weights (KCRS)
//      C x K/g x k...       for kConvTranspose (PyTorch / ONNX / cuDNN backward-data)
//      (none)               for pooling
//   b  K                    optional bias (conv and conv_transpose)
//   y  N x K x out...       output (K = C for pooling)
// Compiles without CUDA headers.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "convarith/arithmetic.hpp"
#include "convarith/status.hpp"

namespace convarith {

constexpr int kMaxSpatialRank = 3;

enum class DataType { kF32 };
enum class Layout { kNCHW }; // NC[D]HW; filters KC[D]HW (conv) or C(K/g)[D]HW (transposed)

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
  DataType dtype = DataType::kF32;
  Layout layout = Layout::kNCHW;
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

  // Nominal FLOPs: conv 2*N*K*(C/g)*prod(k)*prod(out); transposed (the dgrad view)
  // 2*N*C*(K/g)*prod(k)*prod(in); pooling N*C*prod(k)*prod(out) (one op per window tap).
  double flops() const;
  // Compulsory bytes: every f32 element of x, w and y moved once (bias ignored).
  int64_t min_bytes() const;
  // A stable short name for tests and bench, e.g. "conv_n1_c64_k64_i56x56_r3x3_p1x1_1x1".
  std::string name() const;
  // The resolved description (explicit pads, output padding): make(resolved()) gives an equal problem.
  ProblemDesc resolved() const;

private:
  ProblemDesc desc_; // resolved: pad_mode kExplicit, pads and output padding filled in
  PadMode requested_pad_mode_ = PadMode::kExplicit;
  std::array<AxisParams, kMaxSpatialRank> axes_{};
  std::array<int64_t, kMaxSpatialRank> out_{1, 1, 1};
  int64_t x_elements_ = 1, w_elements_ = 1, y_elements_ = 1;
  int64_t in_spatial_ = 1, out_spatial_ = 1, kernel_spatial_ = 1;
};

} // namespace convarith
