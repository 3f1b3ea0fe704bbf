// cli/draw/scene.hpp — the drawing of a DrawModel as plain shapes, shared by the SVG and GIF
// writers so that both show the same picture.
//
// A scene is a static base (the input grid with its padding / inserted zeros, the empty output
// grid, the legend and the caption), one fill per output cell (shown from the frame that
// computes it onwards: the output "fills in") and one overlay per frame (the kernel footprint,
// its taps and the current output cell). All geometry is in whole pixels.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "convarith/problem.hpp"
#include "draw/draw_model.hpp"

namespace convarith::cli {

struct DrawOptions {
  std::optional<int64_t> frame; // a single static frame (0-based) instead of the animation
  int cell_px = 0;              // cell size in pixels; 0 picks one from the grid size
  int frame_ms = 600;           // animation: time per frame
};

struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
  std::optional<uint32_t> fill; // 0xRRGGBB; none = transparent
  double fill_opacity = 1.0;
  bool hatch = false; // diagonal hatching over the fill (inserted zeros)
  std::optional<uint32_t> stroke;
  int stroke_width = 1;
  bool dashed = false;
  std::string cls;                                       // SVG class
  std::vector<std::pair<std::string, std::string>> data; // SVG data-* attributes (name without "data-")
};

struct Text {
  int x = 0, y = 0; // baseline start (or middle with centered)
  int size = 12;
  bool bold = false;
  bool centered = false;
  uint32_t color = 0x222222;
  std::string text;
};

struct Layer {
  std::vector<Rect> rects;
  std::vector<Text> texts;
};

struct FrameLayer {
  Frame frame;
  Layer layer;
};

struct Scene {
  int width = 0, height = 0;
  std::string title;              // one line: the layer
  std::vector<std::string> notes; // the caption lines (also in the SVG <desc>)
  Layer base;
  std::vector<Rect> output_fills; // index = output cell (row-major)
  std::vector<FrameLayer> frames; // every frame, or only options.frame
};

// Upper bound on shapes an animated scene may hold, so an enormous layer fails with a message
// instead of producing a file no browser can open.
constexpr int64_t kMaxAnimatedShapes = 400000;

Result<Scene> build_scene(const ConvProblem& problem, const DrawModel& model, const DrawOptions& options);

} // namespace convarith::cli
