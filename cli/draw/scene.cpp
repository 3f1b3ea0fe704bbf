// cli/draw/scene.cpp — lays a DrawModel out as shapes (see scene.hpp). Colours follow the
// paper's animations: blue input, dashed white padding, hatched inserted zeros, a dark shaded
// kernel, cyan output.
#include "draw/scene.hpp"

#include <algorithm>
#include <string>

#include "attributes.hpp"

namespace convarith::cli {
namespace {

constexpr uint32_t kInputFill = 0x4a90d9;
constexpr uint32_t kInputStroke = 0x1f4e79;
constexpr uint32_t kPadStroke = 0x6f9fd0;
constexpr uint32_t kOutputPaddingFill = 0xe3ecf5;
constexpr uint32_t kOverhangFill = 0xeeeeee;
constexpr uint32_t kOverhangStroke = 0xaaaaaa;
constexpr uint32_t kKernelFill = 0x0b2545;
constexpr double kKernelOpacity = 0.55;
constexpr uint32_t kOutputStroke = 0x147a7a;
constexpr uint32_t kOutputFill = 0x6fdcdc;
constexpr uint32_t kCurrentFill = 0x168c8c;
constexpr uint32_t kWhite = 0xffffff;

constexpr int kMargin = 16;
constexpr int kHeader = 40; // frame label and grid labels above the grids
constexpr int kLine = 17;   // caption line height
constexpr int kFontSize = 12;

int text_width(const std::string& s, int size) {
  return static_cast<int>(s.size()) * size * 6 / 10;
}

std::string dims(const ConvProblem& p, int64_t (*get)(const AxisParams&)) {
  std::string out;
  for (int j = 0; j < p.rank(); ++j)
    out += (j ? "x" : "") + std::to_string(get(p.axis(j)));
  return out;
}

std::string out_dims(const ConvProblem& p) {
  std::string out;
  for (int j = 0; j < p.rank(); ++j)
    out += (j ? "x" : "") + std::to_string(p.out(j));
  return out;
}

std::string layer_title(const ConvProblem& p) {
  std::string t = std::string(op_name(p.op())) + " (rank " + std::to_string(p.rank()) +
                  "): i=" + dims(p, [](const AxisParams& a) { return a.i; }) +
                  " k=" + dims(p, [](const AxisParams& a) { return a.k; }) +
                  " s=" + dims(p, [](const AxisParams& a) { return a.s; }) + " pads=";
  for (int j = 0; j < p.rank(); ++j) {
    t += (j ? "," : "") + std::to_string(p.axis(j).p_lo) + "+" + std::to_string(p.axis(j).p_hi);
  }
  t += " d=" + dims(p, [](const AxisParams& a) { return a.d; });
  if (p.op() == Op::kConvTranspose)
    t += " a=" + dims(p, [](const AxisParams& a) { return a.a; });
  if (is_pool(p.op()) && p.ceil_mode())
    t += " ceil_mode";
  t += " -> o=" + out_dims(p);
  return t;
}

std::string axis_name(const DrawAxis& ax, const char* direction) {
  if (ax.problem_axis < 0)
    return std::string("(unit ") + direction + ")";
  return "axis " + std::to_string(ax.problem_axis) + " (" + direction + ")";
}

std::vector<std::string> caption(const ConvProblem& p, const DrawModel& m) {
  std::vector<std::string> lines;
  const std::pair<const DrawAxis*, const char*> axes[] = {{&m.rows, "rows"}, {&m.cols, "columns"}};
  for (const auto& [ax, direction] : axes) {
    if (ax->problem_axis < 0)
      continue;
    const RelationshipInfo info = classify_relationship(p.op(), ax->params, ax->out, p.ceil_mode());
    lines.push_back(axis_name(*ax, direction) + ": " + info.name + ": " + info.formula);
  }
  if (p.op() == Op::kConvTranspose) {
    lines.push_back("drawn as the equivalent direct convolution (stride 1) over the zero-inserted, padded input:");
    for (const auto& [ax, direction] : axes) {
      if (ax->problem_axis < 0)
        continue;
      const AxisParams& a = ax->params;
      std::string l = "  " + axis_name(*ax, direction) + ": " + std::to_string(a.s - 1) +
                      " zero(s) between inputs (s-1), padding k'-p-1 = " + std::to_string(ax->lead) + " before, " +
                      std::to_string(ax->trail) + " after";
      if (a.a > 0)
        l += " + output padding a=" + std::to_string(a.a);
      if (ax->lead < 0 || ax->trail < 0)
        l += " (a negative padding crops that many cells off the zero-inserted input)";
      lines.push_back(l);
    }
  }
  if (p.rank() == 3)
    lines.push_back("axes 0 and 1 of this rank-3 layer are drawn; axis 2 is not");
  lines.push_back("N=" + std::to_string(p.n()) + ", C=" + std::to_string(p.c()) +
                  (is_pool(p.op()) ? std::string() : ", K=" + std::to_string(p.k())) +
                  " are not drawn; frames run over the output cells in row-major order");
  // The tensor formats and the epilogue change nothing in the picture; they are named when not the defaults.
  if (!p.is_plain_f32_nchw())
    lines.push_back("formats (not drawn): " + format_text(p) + "; y = " + epilogue_text(p));
  return lines;
}

Rect cell_rect(CellKind kind, int x, int y, int cs) {
  Rect r;
  r.x = x;
  r.y = y;
  r.w = cs;
  r.h = cs;
  r.cls = std::string("cell ") + cell_kind_name(kind);
  switch (kind) {
  case CellKind::kInput:
    r.fill = kInputFill;
    r.stroke = kInputStroke;
    break;
  case CellKind::kPadding:
    r.fill = kWhite;
    r.stroke = kPadStroke;
    r.dashed = true;
    break;
  case CellKind::kInsertedZero:
    r.fill = kWhite;
    r.hatch = true;
    r.stroke = kPadStroke;
    r.dashed = true;
    break;
  case CellKind::kOutputPadding:
    r.fill = kOutputPaddingFill;
    r.stroke = kPadStroke;
    r.dashed = true;
    break;
  case CellKind::kOverhang:
    r.fill = kOverhangFill;
    r.stroke = kOverhangStroke;
    r.dashed = true;
    break;
  }
  return r;
}

Rect output_rect(int x, int y, int cs) {
  Rect r;
  r.x = x;
  r.y = y;
  r.w = cs;
  r.h = cs;
  r.fill = kWhite;
  r.stroke = kOutputStroke;
  r.cls = "cell output";
  return r;
}

} // namespace

Result<Scene> build_scene(const ConvProblem& problem, const DrawModel& model, const DrawOptions& options) {
  const int64_t frames = model.frames();
  if (options.frame) {
    Result<Frame> probe = make_frame(model, *options.frame);
    if (!probe)
      return probe.status();
  } else {
    const int64_t taps = model.rows.params.k * model.cols.params.k;
    const int64_t shapes = frames * (taps + 3) + model.rows.length() * model.cols.length();
    if (shapes > kMaxAnimatedShapes) {
      return invalid_argument("the animation of this layer needs " + std::to_string(shapes) + " shapes (" +
                              std::to_string(frames) + " frames x " + std::to_string(taps) + " taps); at most " +
                              std::to_string(kMaxAnimatedShapes) + " are drawn: draw one frame with --frame N");
    }
  }

  const int64_t in_rows = model.rows.length(), in_cols = model.cols.length();
  const int64_t out_rows = model.rows.out, out_cols = model.cols.out;
  int cs = options.cell_px;
  if (cs <= 0) {
    const int64_t across = in_cols + out_cols + 2, down = std::max(in_rows, out_rows);
    cs = static_cast<int>(std::clamp<int64_t>(std::min<int64_t>(760 / across, 520 / down), 6, 36));
  }
  const int gap = std::max(2 * cs, 40);

  Scene scene;
  scene.title = layer_title(problem);
  scene.notes = caption(problem, model);

  const int in_x = kMargin, in_y = kMargin + kHeader;
  const int out_x = in_x + static_cast<int>(in_cols) * cs + gap;
  const int out_y = in_y + static_cast<int>((std::max(in_rows, out_rows) - out_rows) * cs / 2);
  const int grid_bottom = in_y + static_cast<int>(std::max(in_rows, out_rows)) * cs;

  // Input grid, in the drawn (padded / zero-inserted) coordinates.
  for (int64_t row = 0; row < in_rows; ++row) {
    for (int64_t col = 0; col < in_cols; ++col) {
      Rect r = cell_rect(model.cell_kind(row, col), in_x + static_cast<int>(col) * cs,
                         in_y + static_cast<int>(row) * cs, cs);
      r.data = {{"r", std::to_string(row)}, {"c", std::to_string(col)}};
      scene.base.rects.push_back(std::move(r));
    }
  }
  // Empty output grid and the fill each frame adds to it.
  for (int64_t row = 0; row < out_rows; ++row) {
    for (int64_t col = 0; col < out_cols; ++col) {
      const int x = out_x + static_cast<int>(col) * cs, y = out_y + static_cast<int>(row) * cs;
      Rect r = output_rect(x, y, cs);
      r.data = {{"r", std::to_string(row)}, {"c", std::to_string(col)}};
      scene.base.rects.push_back(r);
      Rect f = r;
      f.fill = kOutputFill;
      f.cls = "fill";
      scene.output_fills.push_back(std::move(f));
    }
  }
  // The kinds of cell this drawing has, for the grid label and the legend.
  bool has_kind[5] = {false, false, false, false, false};
  for (int64_t row = 0; row < in_rows; ++row) {
    for (int64_t col = 0; col < in_cols; ++col)
      has_kind[static_cast<int>(model.cell_kind(row, col))] = true;
  }
  const std::pair<CellKind, const char*> kinds[] = {{CellKind::kInput, "input"},
                                                    {CellKind::kPadding, "padding"},
                                                    {CellKind::kInsertedZero, "inserted zero"},
                                                    {CellKind::kOutputPadding, "output padding"},
                                                    {CellKind::kOverhang, "past the padding (never read)"}};
  // Grid labels, naming what the input grid adds to the input.
  std::string input_label = "input";
  if (has_kind[static_cast<int>(CellKind::kInsertedZero)])
    input_label += " (zero-inserted";
  if (has_kind[static_cast<int>(CellKind::kPadding)] || has_kind[static_cast<int>(CellKind::kOutputPadding)]) {
    input_label += input_label == "input" ? " (padded" : ", padded";
  }
  if (input_label != "input")
    input_label += ")";
  const int label_y = in_y - 8;
  scene.base.texts.push_back(Text{in_x, label_y, kFontSize, true, false, 0x1f4e79, input_label});
  scene.base.texts.push_back(Text{out_x, out_y - 8, kFontSize, true, false, kOutputStroke, "output"});

  // Legend: only the kinds of cell this drawing has.
  std::vector<std::pair<CellKind, std::string>> legend;
  for (const auto& [kind, label] : kinds) {
    if (has_kind[static_cast<int>(kind)])
      legend.push_back({kind, label});
  }
  const int sw = 12;
  int lx = kMargin;
  const int ly = grid_bottom + 14;
  for (const auto& [kind, label] : legend) {
    Rect r = cell_rect(kind, lx, ly, sw);
    r.cls = "legend";
    scene.base.rects.push_back(r);
    scene.base.texts.push_back(Text{lx + sw + 4, ly + 10, 11, false, false, 0x333333, label});
    lx += sw + 10 + text_width(label, 11);
  }
  {
    Rect tap{lx, ly, sw, sw, kInputFill, 1.0, false, kInputStroke, 1, false, "legend", {}};
    scene.base.rects.push_back(tap);
    tap.fill = kKernelFill;
    tap.fill_opacity = kKernelOpacity;
    tap.stroke.reset();
    scene.base.rects.push_back(tap);
    const std::string label =
        model.rows.params.d > 1 || model.cols.params.d > 1 ? "kernel tap (gaps: dilation holes)" : "kernel tap";
    scene.base.texts.push_back(Text{lx + sw + 4, ly + 10, 11, false, false, 0x333333, label});
    lx += sw + 10 + text_width(label, 11);
    Rect out{lx, ly, sw, sw, kOutputFill, 1.0, false, kOutputStroke, 1, false, "legend", {}};
    scene.base.rects.push_back(out);
    scene.base.texts.push_back(Text{lx + sw + 4, ly + 10, 11, false, false, 0x333333, "output"});
    lx += sw + 10 + text_width("output", 11);
  }

  // Caption.
  int cy = ly + sw + 22;
  int width = std::max(out_x + static_cast<int>(out_cols) * cs + kMargin, lx + kMargin);
  scene.base.texts.push_back(Text{kMargin, cy, kFontSize, true, false, 0x222222, scene.title});
  width = std::max(width, 2 * kMargin + text_width(scene.title, kFontSize));
  for (const std::string& line : scene.notes) {
    cy += kLine;
    scene.base.texts.push_back(Text{kMargin, cy, kFontSize - 1, false, false, 0x333333, line});
    width = std::max(width, 2 * kMargin + text_width(line, kFontSize - 1));
  }
  scene.width = width;
  scene.height = cy + kMargin;

  // One overlay per frame: the footprint's extent, its taps, the output cell it computes.
  const int64_t first = options.frame ? *options.frame : 0;
  const int64_t last = options.frame ? *options.frame + 1 : frames;
  for (int64_t index = first; index < last; ++index) {
    Result<Frame> fr = make_frame(model, index);
    if (!fr)
      return fr.status();
    FrameLayer fl;
    fl.frame = std::move(fr).value();
    const Frame& f = fl.frame;
    Rect extent;
    extent.x = in_x + static_cast<int>(f.col0) * cs;
    extent.y = in_y + static_cast<int>(f.row0) * cs;
    extent.w = static_cast<int>(f.cols) * cs;
    extent.h = static_cast<int>(f.rows) * cs;
    extent.stroke = kKernelFill;
    extent.stroke_width = 2;
    extent.cls = "footprint";
    for (const FrameTap& t : f.taps) {
      Rect r;
      r.x = in_x + static_cast<int>(t.col) * cs;
      r.y = in_y + static_cast<int>(t.row) * cs;
      r.w = cs;
      r.h = cs;
      r.fill = kKernelFill;
      r.fill_opacity = kKernelOpacity;
      r.cls = std::string("tap ") + cell_kind_name(t.kind);
      r.data = {{"r", std::to_string(t.row)}, {"c", std::to_string(t.col)}};
      if (t.kind == CellKind::kInput) {
        r.data.push_back({"in", std::to_string(t.in_row) + "," + std::to_string(t.in_col)});
      }
      fl.layer.rects.push_back(std::move(r));
    }
    fl.layer.rects.push_back(extent);
    Rect cur = output_rect(out_x + static_cast<int>(f.out_col) * cs, out_y + static_cast<int>(f.out_row) * cs, cs);
    cur.fill = kCurrentFill;
    cur.stroke_width = 2;
    cur.cls = "current";
    cur.data = {{"r", std::to_string(f.out_row)}, {"c", std::to_string(f.out_col)}};
    fl.layer.rects.push_back(std::move(cur));
    int64_t reads = 0;
    for (const FrameTap& t : f.taps)
      reads += t.kind == CellKind::kInput ? 1 : 0;
    fl.layer.texts.push_back(Text{kMargin, kMargin + 12, kFontSize, true, false, 0x222222,
                                  "frame " + std::to_string(index) + " (of 0.." + std::to_string(frames - 1) +
                                      "): output (" + std::to_string(f.out_row) + ", " + std::to_string(f.out_col) +
                                      ") reads " + std::to_string(reads) + " input cell(s)"});
    scene.frames.push_back(std::move(fl));
  }
  return scene;
}

} // namespace convarith::cli
