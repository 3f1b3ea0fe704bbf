// cli/draw/draw_model.hpp — the frame model behind `convarith draw`: what the paper's animations
// show, as data that tests can query before anything is drawn.
//
// A drawing has two axes (rows, cols): the first two spatial axes of a rank-2/3 layer, or the
// problem's unit axis and axis 0 of a rank-1 layer (drawn as one row). N and C are not drawn.
// Along each axis the drawn cells are:
//   conv / pooling   the padded input: p_lo padding cells, the i input cells, p_hi padding cells
//                    (plus, in ceil_mode pooling, the cells the last window reaches past them);
//                    output cell o's footprint starts at drawn cell o*s.
//   conv_transpose   the paper's equivalent direct convolution (section 4): the input with s-1
//                    zeros inserted between elements, padded k'-p_lo-1 before and k'-p_hi-1+a
//                    after (the last a cells are the output padding); stride 1, so output cell
//                    o's footprint starts at drawn cell o. Padding larger than k'-1 crops the
//                    zero-inserted input instead (negative lead).
// Tap r of output o sits at drawn cell o*step + r*d; the cells between taps are dilation holes.
// Every size (o, k', the padding) comes from the ConvProblem, never from a formula here.
#pragma once

#include <cstdint>
#include <vector>

#include "convarith/problem.hpp"
#include "convarith/status.hpp"

namespace convarith::cli {

// What a drawn cell holds. Ordered so that the kind of a 2-D cell is the larger of its two axes'.
enum class CellKind {
  kInput = 0,         // a real input element
  kInsertedZero = 1,  // conv_transpose: one of the s-1 zeros inserted between input elements
  kPadding = 2,       // zero padding
  kOutputPadding = 3, // conv_transpose: the a extra cells at the end (output padding)
  kOverhang = 4,      // ceil_mode pooling: past the padded input; never read
};
const char* cell_kind_name(CellKind kind); // "input", "zero", "padding", "output-padding", "overhang"

// One drawn axis.
struct DrawAxis {
  int problem_axis = -1;            // the problem's spatial axis; -1 for the unit row of a rank-1 layer
  AxisParams params;                // the problem's axis (resolved padding)
  int64_t out = 1;                  // problem.out(problem_axis)
  int64_t k_eff = 1;                // effective_kernel(k, d)
  int64_t step = 1;                 // drawn cells the footprint moves per output cell: s, or 1 for conv_transpose
  int64_t lead = 0;                 // drawn cell of input element 0 (conv: p_lo; transposed: k'-p_lo-1, may be < 0)
  int64_t trail = 0;                // transposed: padding k'-p_hi-1 after the last input element (before a; may be < 0)
  std::vector<CellKind> cells;      // one per drawn cell
  std::vector<int64_t> input_index; // the input element at each drawn cell, -1 where there is none

  int64_t length() const { return static_cast<int64_t>(cells.size()); }
  // Drawn cell of tap r (0 <= r < k) for output cell o.
  int64_t tap(int64_t o, int64_t r) const { return o * step + r * params.d; }
};

struct DrawModel {
  Op op = Op::kConv;
  int rank = 2;
  bool ceil_mode = false;
  DrawAxis rows, cols;

  // One frame per drawn output cell, row-major.
  int64_t frames() const { return rows.out * cols.out; }
  CellKind cell_kind(int64_t row, int64_t col) const;
};

// One kernel tap in a frame.
struct FrameTap {
  int64_t r = 0, s = 0;     // tap indices along rows / cols
  int64_t row = 0, col = 0; // drawn cell
  CellKind kind = CellKind::kInput;
  int64_t in_row = -1, in_col = -1; // the input element read (kind == kInput), else -1
};

struct Frame {
  int64_t index = 0;
  int64_t out_row = 0, out_col = 0; // the output cell this frame computes
  int64_t row0 = 0, col0 = 0;       // drawn cell of the footprint's first tap
  int64_t rows = 1, cols = 1;       // footprint extent (effective kernel)
  std::vector<FrameTap> taps;       // row-major over (r, s)
};

// Fails only for a layer too large to model (more than kMaxDrawnCells per drawn axis).
Result<DrawModel> make_draw_model(const ConvProblem& problem);
constexpr int64_t kMaxDrawnCells = 1024;

// Frame `index` (0-based, row-major over the output cells); out of range is an error naming the
// number of frames.
Result<Frame> make_frame(const DrawModel& model, int64_t index);

} // namespace convarith::cli
