// convarith/arithmetic.hpp — the convolution arithmetic of Dumoulin & Visin,
// "A guide to convolution arithmetic for deep learning" (arXiv:1603.07285), per axis.
//
// Every size in the library comes from here; nothing else in the tree re-derives one.
// All arithmetic is in 64-bit integers and overflow-checked. Every failure is a Status whose
// message names the op, the axis, the numbers and the broken condition.
//
// For one axis with input size i, kernel k, stride s, padding p_lo/p_hi, dilation d and
// output padding a (transposed only):
//   effective kernel    k' = d(k-1) + 1                                   (paper, relationship 15)
//   convolution         o  = floor((i + p_lo + p_hi - k') / s) + 1,        needs i + p_lo + p_hi >= k'
//   transposed conv     o  = s(i-1) + a + k' - p_lo - p_hi,                needs 0 <= a < max(s, d), o >= 1
//   pooling             the convolution formula with the window as kernel; with ceil_mode the
//                       division rounds up and the last window must start inside the input or the
//                       left padding (PyTorch / ONNX rule).
// Compiles without CUDA headers.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "convarith/status.hpp"

namespace convarith {

// The four operations a problem can describe.
enum class Op { kConv, kConvTranspose, kMaxPool, kAvgPool };
const char* op_name(Op op); // "conv", "conv_transpose", "max_pool", "avg_pool"
bool is_pool(Op op);

// Padding modes: ONNX's auto_pad values plus the paper's HALF and FULL.
//   kExplicit  (ONNX NOTSET) the caller's p_lo/p_hi
//   kValid     p = 0
//   kSameUpper o = ceil(i/s) (conv/pool) or o = i*s (transposed); odd total padding: extra at the end
//   kSameLower as kSameUpper with the extra at the start
//   kHalf      p = floor(k'/2) each side, k' odd (paper §2.2.1; o = i at unit stride)
//   kFull      p = k'-1 each side (paper §2.2.2; o = i + k' - 1 at unit stride)
enum class PadMode { kExplicit, kValid, kSameUpper, kSameLower, kHalf, kFull };
const char* pad_mode_name(PadMode mode); // "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "HALF", "FULL"
// Accepts the names above (case-insensitive) and "EXPLICIT" for kExplicit.
Result<PadMode> parse_pad_mode(std::string_view name);

// One spatial axis of a problem. Defaults describe the identity axis (i=k=s=d=1, no padding).
struct AxisParams {
  int64_t i = 1;    // input size
  int64_t k = 1;    // kernel (window) size
  int64_t s = 1;    // stride
  int64_t p_lo = 0; // padding at the start
  int64_t p_hi = 0; // padding at the end
  int64_t d = 1;    // dilation
  int64_t a = 0;    // output padding (transposed convolution only)
};

struct Padding {
  int64_t lo = 0;
  int64_t hi = 0;
};

// Effective kernel size d(k-1)+1 (no validation; see the checked functions below).
constexpr int64_t effective_kernel(int64_t k, int64_t d) {
  return d * (k - 1) + 1;
}

// Overflow-checked 64-bit helpers: return false (and leave *out unspecified) on overflow.
bool checked_add(int64_t a, int64_t b, int64_t* out);
bool checked_mul(int64_t a, int64_t b, int64_t* out);

// Output size of a convolution along `axis` (0-based spatial axis, used in messages).
// Requires i, k, s, d >= 1, p_lo, p_hi >= 0 and i + p_lo + p_hi >= k'.
Result<int64_t> conv_output_size(int axis, const AxisParams& p);

// Output size of a transposed convolution (the paper's relationship 14 generalised to
// dilation and asymmetric padding). Requires i, k, s, d >= 1, p_lo, p_hi >= 0,
// 0 <= a < max(s, d) and a result >= 1. Padding larger than k'-1 crops the output.
Result<int64_t> conv_transpose_output_size(int axis, const AxisParams& p);

// Output size of a pooling window (max or avg; `op` is only used in messages). Requires the
// conv conditions plus p_lo, p_hi < k' (every window overlaps the input) and, with dilation,
// that no window's taps all fall into padding.
Result<int64_t> pool_output_size(Op op, int axis, const AxisParams& p, bool ceil_mode);

// Dispatches on `op` to the three functions above (a is ignored except for kConvTranspose).
Result<int64_t> output_size(Op op, int axis, const AxisParams& p, bool ceil_mode = false);

// Resolves a padding mode to explicit padding for this axis. For kExplicit it returns
// {p.p_lo, p.p_hi}. For conv and pooling SAME gives o = ceil(i/s); for kConvTranspose SAME
// gives o = i*s (ONNX ConvTranspose). HALF needs an odd effective kernel.
Result<Padding> resolve_padding(Op op, int axis, PadMode mode, const AxisParams& p);

// The inverse for transposed convolution, as ONNX's `output_shape` attribute does: the output
// padding and the padding that make the output exactly `requested_o`. total padding
// T = s(i-1) + a + k' - o with a = p.a; when T < 0 the output padding is raised to a - T if that
// stays below max(s, d). The split follows ONNX: kSameUpper puts the odd unit at the end,
// every other mode at the start.
struct TransposeFit {
  int64_t a = 0;
  Padding pad;
};
Result<TransposeFit> fit_transpose_output(int axis, const AxisParams& p, int64_t requested_o, PadMode split);

// The paper's view of a transposed convolution (§4): the stride-1 direct convolution, with the same
// kernel and dilation, over the input with s-1 zeros inserted between elements, padded by
// k'-p_lo-1 before and k'-p_hi-1 (+ the output padding a) after. A negative padding crops that
// many cells off the zero-inserted input. No validation: pass an axis that conv_transpose_output_size
// accepts; then pad_lo + (i-1)s + 1 + pad_hi + a - k' + 1 is that function's output size.
struct ZeroInsertion {
  int64_t zeros_between = 0; // s - 1
  int64_t pad_lo = 0;        // k' - p_lo - 1
  int64_t pad_hi = 0;        // k' - p_hi - 1 (the output padding a comes after it)
  int64_t length = 0;        // pad_lo + (i-1)s + 1 + pad_hi + a: the equivalent convolution's input
};
ZeroInsertion transposed_as_conv(const AxisParams& p);

// The nearest changes that make one axis valid, and the ranges a valid transposed axis allows: what the
// ONNX checker (python -m convarith.onnx) and `convarith shape` print next to an error. Never fails.
// Every suggested change is checked with output_size before it is reported, and each is minimal: the
// same change one step smaller is still invalid.
struct AxisFix {
  bool valid = false;       // output_size accepts the axis as given
  int64_t output = 0;       // its output size when valid
  std::string reason;       // output_size's message when not
  int64_t shortfall = 0;    // conv/pool: k' - (i + p_lo + p_hi) when the kernel does not fit, else 0
  int64_t min_input = 0;    // smallest input size i valid with every other field as given; 0: no i is
  int64_t max_kernel = 0;   // conv/pool: largest k that fits the padded input at this dilation; 0: none
  int64_t max_dilation = 0; // conv/pool with k > 1: largest d that fits the padded input; 0: none
  bool has_padding = false; // `padding` holds the nearest valid padding (i, k, s, d as given; for
                            // conv_transpose together with the output padding change, when one is listed)
  Padding padding;
  // conv_transpose, when i, k, s, d are well formed: output padding a is legal in 0..a_max
  // (a_max = max(s, d) - 1), and ONNX's output_shape can reach every size in o_min..o_max.
  int64_t a_max = -1;
  int64_t o_min = 0, o_max = 0;
  std::vector<std::string> changes; // each change in words with its numbers, nearest first
};
AxisFix suggest_axis_fix(Op op, int axis, const AxisParams& p, bool ceil_mode = false);

// The paper's relationships, by number (0 = outside the paper: asymmetric padding, dilated
// transposed, padded or ceil-mode pooling; the general formula still applies).
enum class Relationship : int {
  kGeneral = 0,
  kNoPaddingUnitStrides = 1,             // o = (i - k) + 1
  kZeroPaddingUnitStrides = 2,           // o = (i - k) + 2p + 1
  kHalfPadding = 3,                      // o = i            (k odd, p = floor(k/2), s = 1)
  kFullPadding = 4,                      // o = i + (k - 1)  (p = k - 1, s = 1)
  kNoPaddingStrides = 5,                 // o = floor((i - k) / s) + 1
  kPaddingStrides = 6,                   // o = floor((i + 2p - k) / s) + 1
  kPooling = 7,                          // o = floor((i - k) / s) + 1
  kTransposedNoPaddingUnitStrides = 8,   // o' = i' + (k - 1)
  kTransposedZeroPaddingUnitStrides = 9, // o' = i' + (k - 1) - 2p
  kTransposedHalfPadding = 10,           // o' = i'
  kTransposedFullPadding = 11,           // o' = i' - (k - 1)
  kTransposedNoPaddingStrides = 12,      // o' = s(i' - 1) + k
  kTransposedPaddingStrides = 13,        // o' = s(i' - 1) + k - 2p
  kTransposedPaddingStridesOdd = 14,     // o' = s(i' - 1) + a + k - 2p
  kDilated = 15,                         // o = floor((i + 2p - k - (k - 1)(d - 1)) / s) + 1
};

struct RelationshipInfo {
  Relationship relationship = Relationship::kGeneral;
  std::string name;    // e.g. "relationship 6 (zero padding, non-unit strides)"
  std::string formula; // the formula with the numbers filled in, ending in "= o"
};

// Which of the paper's relationships gives this axis's output size `o` (as computed above),
// with its numbers filled in. Never fails: unclassifiable axes get kGeneral and the general formula.
RelationshipInfo classify_relationship(Op op, const AxisParams& p, int64_t o, bool ceil_mode = false);

} // namespace convarith
