// cli/draw/render.hpp — `convarith draw`'s outputs: an animated SVG (SMIL, plays in any
// browser), one static SVG frame, or an animated GIF (giflib, when the build found it).
#pragma once

#include <string>

#include "convarith/problem.hpp"
#include "convarith/status.hpp"
#include "draw/scene.hpp"

namespace convarith::cli {

// The SVG document. Animated: one <g class="frame" data-frame="k"> per output cell, shown in turn
// by discrete SMIL <animate> elements, then a hold slot showing the finished output; with
// options.frame only that frame, static. Each tap is a <rect class="tap KIND" data-r data-c
// [data-in="row,col"]> in drawn-cell coordinates, so the file can be checked against a reference.
Result<std::string> render_svg(const ConvProblem& problem, const DrawOptions& options);

// Whether this build can write GIFs (giflib found at configure time).
bool gif_supported();
// The GIF file's bytes: one image per frame plus a hold image (or the single options.frame),
// looping. The GIF carries the grids and the legend swatches but no text (the SVG has the caption).
// Without giflib: kNotSupported saying so.
Result<std::string> render_gif(const ConvProblem& problem, const DrawOptions& options);

} // namespace convarith::cli
