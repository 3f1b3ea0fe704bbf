// cli/draw/draw_model.cpp — the frame model (see draw_model.hpp).
#include "draw/draw_model.hpp"

#include <algorithm>
#include <string>

namespace convarith::cli {
namespace {

// Each raw number is bounded before any sum or product is formed, so nothing below overflows.
constexpr int64_t kMaxAxisNumber = 4 * kMaxDrawnCells;

Status too_large(int axis, const char* what, int64_t value) {
  return invalid_argument("axis " + std::to_string(axis) + ": " + what + " " + std::to_string(value) +
                          " is too large to draw (at most " + std::to_string(kMaxDrawnCells) +
                          " drawn cells per axis)");
}

Result<DrawAxis> make_axis(const ConvProblem& problem, int problem_axis, int storage_axis) {
  DrawAxis ax;
  ax.problem_axis = problem_axis;
  ax.params = problem.axis3(storage_axis);
  ax.out = problem.out3(storage_axis);
  const AxisParams& p = ax.params;
  ax.k_eff = effective_kernel(p.k, p.d);
  const int shown = problem_axis < 0 ? 0 : problem_axis;
  const std::pair<const char*, int64_t> bounded[] = {{"input size", p.i},
                                                     {"padding", p.p_lo},
                                                     {"padding", p.p_hi},
                                                     {"output size", ax.out},
                                                     {"effective kernel", ax.k_eff}};
  for (const auto& [what, value] : bounded) {
    if (value > kMaxAxisNumber)
      return too_large(shown, what, value);
  }

  int64_t length = 0;
  if (problem.op() == Op::kConvTranspose) {
    // The equivalent stride-1 convolution: its output is this problem's output, so the drawn
    // input is o + k' - 1 cells long; the zero-inserted input starts k'-p_lo-1 cells in.
    const ZeroInsertion z = transposed_as_conv(p);
    ax.step = 1;
    ax.lead = z.pad_lo;
    ax.trail = z.pad_hi;
    length = ax.out + ax.k_eff - 1;
    if (z.length != length) {
      return internal_error("axis " + std::to_string(shown) + ": the zero-inserted input (" + std::to_string(z.length) +
                            " cells) disagrees with the output size " + std::to_string(ax.out) +
                            " and effective kernel " + std::to_string(ax.k_eff));
    }
  } else {
    ax.step = p.s;
    ax.lead = p.p_lo;
    // ceil_mode pooling: the last window may reach past the padded input.
    length = std::max(p.p_lo + p.i + p.p_hi, (ax.out - 1) * p.s + ax.k_eff);
  }
  if (length > kMaxDrawnCells)
    return too_large(shown, "drawn length", length);

  ax.cells.resize(static_cast<size_t>(length));
  ax.input_index.assign(static_cast<size_t>(length), -1);
  for (int64_t x = 0; x < length; ++x) {
    const int64_t z = x - ax.lead; // position in the (zero-inserted) input
    CellKind kind = CellKind::kPadding;
    if (problem.op() == Op::kConvTranspose) {
      const int64_t last = (p.i - 1) * p.s;
      if (z >= 0 && z <= last) {
        kind = z % p.s == 0 ? CellKind::kInput : CellKind::kInsertedZero;
        if (kind == CellKind::kInput)
          ax.input_index[static_cast<size_t>(x)] = z / p.s;
      } else if (z > last && x >= length - p.a) {
        kind = CellKind::kOutputPadding;
      }
    } else if (z >= 0 && z < p.i) {
      kind = CellKind::kInput;
      ax.input_index[static_cast<size_t>(x)] = z;
    } else if (x >= p.p_lo + p.i + p.p_hi) {
      kind = CellKind::kOverhang;
    }
    ax.cells[static_cast<size_t>(x)] = kind;
  }
  return ax;
}

} // namespace

const char* cell_kind_name(CellKind kind) {
  switch (kind) {
  case CellKind::kInput:
    return "input";
  case CellKind::kInsertedZero:
    return "zero";
  case CellKind::kPadding:
    return "padding";
  case CellKind::kOutputPadding:
    return "output-padding";
  case CellKind::kOverhang:
    return "overhang";
  }
  return "?";
}

CellKind DrawModel::cell_kind(int64_t row, int64_t col) const {
  return std::max(rows.cells[static_cast<size_t>(row)], cols.cells[static_cast<size_t>(col)]);
}

Result<DrawModel> make_draw_model(const ConvProblem& problem) {
  DrawModel model;
  model.op = problem.op();
  model.rank = problem.rank();
  model.ceil_mode = problem.ceil_mode();
  // Storage axes are (D, H, W) with leading unit axes for rank < 3 (problem.hpp): a rank-1 layer
  // is drawn as the unit H row over its W axis, rank 2 as (H, W), rank 3 as its first two axes (D, H).
  const int first = problem.rank() == 3 ? 0 : 1;
  const int row_axis = problem.rank() == 1 ? -1 : 0;
  const int col_axis = problem.rank() == 1 ? 0 : 1;
  Result<DrawAxis> rows = make_axis(problem, row_axis, first);
  if (!rows)
    return rows.status();
  Result<DrawAxis> cols = make_axis(problem, col_axis, first + 1);
  if (!cols)
    return cols.status();
  model.rows = std::move(rows).value();
  model.cols = std::move(cols).value();
  return model;
}

Result<Frame> make_frame(const DrawModel& model, int64_t index) {
  const int64_t frames = model.frames();
  if (index < 0 || index >= frames) {
    return invalid_argument("frame " + std::to_string(index) + " is out of range: this layer has " +
                            std::to_string(frames) + " frames (one per output cell), numbered 0 to " +
                            std::to_string(frames - 1));
  }
  Frame f;
  f.index = index;
  f.out_row = index / model.cols.out;
  f.out_col = index % model.cols.out;
  f.row0 = model.rows.tap(f.out_row, 0);
  f.col0 = model.cols.tap(f.out_col, 0);
  f.rows = model.rows.k_eff;
  f.cols = model.cols.k_eff;
  f.taps.reserve(static_cast<size_t>(model.rows.params.k * model.cols.params.k));
  for (int64_t r = 0; r < model.rows.params.k; ++r) {
    for (int64_t s = 0; s < model.cols.params.k; ++s) {
      FrameTap t;
      t.r = r;
      t.s = s;
      t.row = model.rows.tap(f.out_row, r);
      t.col = model.cols.tap(f.out_col, s);
      t.kind = model.cell_kind(t.row, t.col);
      if (t.kind == CellKind::kInput) {
        t.in_row = model.rows.input_index[static_cast<size_t>(t.row)];
        t.in_col = model.cols.input_index[static_cast<size_t>(t.col)];
      }
      f.taps.push_back(t);
    }
  }
  return f;
}

} // namespace convarith::cli
