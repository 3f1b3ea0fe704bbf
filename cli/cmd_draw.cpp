// cli/cmd_draw.cpp — `convarith draw OP ...`: the paper's animations for any layer. Parses the
// layer with the shared attribute parser, validates it with ConvProblem::make, and writes the
// drawing of cli/draw/ (frame model -> scene -> SVG or GIF). Nothing here computes a size.
#include <cstdio>
#include <iostream>
#include <string>
#include <tuple>

#include "attributes.hpp"
#include "commands.hpp"
#include "convarith/problem.hpp"
#include "draw/draw_command.hpp"
#include "draw/render.hpp"
#include "io.hpp"
#include "subcommands.hpp"

namespace convarith::cli {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// A bad layer or option is the caller's (2); anything else (a drawing past the memory limit, a
// failed write) is the system's or ours (1).
int exit_code(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument ? 2 : 1;
}

} // namespace

const char* draw_help() {
  return R"(usage: convarith draw OP --x-shape N,C,D... [attributes] [--frame N] [--out FILE.svg|FILE.gif]
                      [--frame-ms MS] [--cell-px PX]

Draws a layer as the animations of Dumoulin & Visin, "A guide to convolution arithmetic for deep
learning": the blue input with its padding (dashed) and dilation holes, the shaded kernel at each
step, the cyan output filling in. A conv-transpose is drawn as the paper draws it: the equivalent
stride-1 convolution over the input with s-1 zeros inserted between elements (hatched), padded by
k'-p-1 (plus the output padding a at the end). The first two spatial axes are drawn (a rank-1
layer as one row); N and C are not. One frame per output cell, in row-major order.
  --frame N        one static frame (0-based) instead of the animation
  --out FILE       FILE.svg (default: the SVG on stdout) or FILE.gif (animated GIF, no caption;
                   needs a build with giflib)
  --frame-ms MS    time per frame of the animation (default 600)
  --cell-px PX     cell size in pixels (default: from the grid size)
Exit status: 0; 2 with the reason on stderr for a bad layer or option (e.g. a frame out of
range); 1 for other failures (a drawing past the memory limit, a failed write). FILE is
written atomically: a fresh temporary file next to it, renamed over it when complete.

Examples:
  convarith draw conv --x-shape 1,1,5,5 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1 --out padding_strides.svg
  convarith draw conv-transpose --x-shape 1,1,3,3 --kernel-shape 3,3 --strides 2,2 --pads 1,1,1,1 --frame 4
  convarith draw conv --x-shape 1,1,7,7 --kernel-shape 3,3 --dilations 2,2 --out dilation.gif

)";
}

int draw_main(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") {
      out << draw_help() << attribute_help();
      return 0;
    }
  }
  Result<ParsedLayer> layer =
      parse_layer(args, {{"--frame", true}, {"--out", true}, {"--frame-ms", true}, {"--cell-px", true}});
  if (!layer) {
    err << "convarith draw: " << layer.status().message() << "\n";
    return 2;
  }
  Result<ConvProblem> problem = ConvProblem::make(layer->desc);
  if (!problem) {
    err << "convarith draw: " << problem.status().message() << "\n";
    return 2;
  }
  DrawOptions options;
  const auto& extras = layer->args.extras;
  if (auto it = extras.find("--frame"); it != extras.end()) {
    Result<int64_t> v = parse_count("--frame", it->second);
    if (!v) {
      err << "convarith draw: " << v.status().message() << "\n";
      return 2;
    }
    options.frame = *v;
  }
  for (const auto& [name, target, limit] :
       {std::tuple<const char*, int*, int64_t>{"--frame-ms", &options.frame_ms, 60000},
        std::tuple<const char*, int*, int64_t>{"--cell-px", &options.cell_px, 200}}) {
    auto it = extras.find(name);
    if (it == extras.end())
      continue;
    Result<int64_t> v = parse_count(name, it->second);
    if (!v || *v < 1 || *v > limit) {
      err << "convarith draw: "
          << (v ? std::string(name) + " " + it->second + " must be in 1.." + std::to_string(limit)
                : v.status().message())
          << "\n";
      return 2;
    }
    *target = static_cast<int>(*v);
  }
  std::string path;
  if (auto it = extras.find("--out"); it != extras.end()) {
    path = it->second;
    if (path.empty()) {
      err << "convarith draw: --out is empty: give a file name (or - for standard output)\n";
      return 2;
    }
  }
  const bool gif = ends_with(path, ".gif");
  if (!path.empty() && path != "-" && !gif && !ends_with(path, ".svg")) {
    err << "convarith draw: --out " << path << ": the file name must end in .svg or .gif\n";
    return 2;
  }

  Result<std::string> drawing = gif ? render_gif(*problem, options) : render_svg(*problem, options);
  if (!drawing) {
    err << "convarith draw: " << drawing.status().message() << "\n";
    return exit_code(drawing.status());
  }
  if (path.empty() || path == "-") {
    out << *drawing;
    return out.good() ? 0 : 1;
  }
  Status written = write_file_atomic(path, *drawing);
  if (!written) {
    err << "convarith draw: " << written.message() << "\n";
    return 1;
  }
  return 0;
}

int cmd_draw(int argc, char** argv) {
  return draw_main(args_after_command(argc, argv), std::cout, std::cerr);
}

} // namespace convarith::cli
