// cli/draw/svg.cpp — writes a Scene as SVG. The animation uses discrete SMIL <animate> on
// `visibility` (no script, no CSS), which every current browser plays; renderers without SMIL
// (rsvg, Inkscape) show the finished output with no frame.
#include <cstdio>
#include <string>

#include "draw/render.hpp"

namespace convarith::cli {
namespace {

std::string escape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += ch;
    }
  }
  return out;
}

std::string color(uint32_t rgb) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%06x", static_cast<unsigned>(rgb & 0xffffffu));
  return buf;
}

// A keyTime as a fraction of the whole loop, with enough digits for thousands of frames.
std::string fraction(int64_t num, int64_t den) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6f", static_cast<double>(num) / static_cast<double>(den));
  return buf;
}

void write_rect(std::string& out, const Rect& r, const std::string& inner = {}) {
  out += "<rect";
  if (!r.cls.empty())
    out += " class=\"" + escape(r.cls) + "\"";
  for (const auto& [name, value] : r.data)
    out += " data-" + name + "=\"" + escape(value) + "\"";
  out += " x=\"" + std::to_string(r.x) + "\" y=\"" + std::to_string(r.y) + "\" width=\"" + std::to_string(r.w) +
         "\" height=\"" + std::to_string(r.h) + "\"";
  out += " fill=\"" + (r.fill ? color(*r.fill) : std::string("none")) + "\"";
  if (r.fill && r.fill_opacity < 1.0) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%.2f", r.fill_opacity);
    out += " fill-opacity=\"" + std::string(buf) + "\"";
  }
  if (r.stroke) {
    out += " stroke=\"" + color(*r.stroke) + "\" stroke-width=\"" + std::to_string(r.stroke_width) + "\"";
    if (r.dashed)
      out += " stroke-dasharray=\"4 3\"";
  }
  if (inner.empty()) {
    out += "/>\n";
  } else {
    out += ">" + inner + "</rect>\n";
  }
  if (r.hatch) {
    // The hatching is a second rect so the cell keeps its own fill underneath.
    out += "<rect class=\"hatch\" x=\"" + std::to_string(r.x) + "\" y=\"" + std::to_string(r.y) + "\" width=\"" +
           std::to_string(r.w) + "\" height=\"" + std::to_string(r.h) + "\" fill=\"url(#hatch)\"/>\n";
  }
}

void write_text(std::string& out, const Text& t) {
  out += "<text x=\"" + std::to_string(t.x) + "\" y=\"" + std::to_string(t.y) + "\" font-size=\"" +
         std::to_string(t.size) + "\" fill=\"" + color(t.color) + "\"";
  if (t.bold)
    out += " font-weight=\"bold\"";
  if (t.centered)
    out += " text-anchor=\"middle\"";
  out += ">" + escape(t.text) + "</text>\n";
}

void write_layer(std::string& out, const Layer& layer) {
  for (const Rect& r : layer.rects)
    write_rect(out, r);
  for (const Text& t : layer.texts)
    write_text(out, t);
}

// Discrete visibility over a loop of `slots` equal slots: visible in [on, off), off == slots
// meaning to the end of the loop.
std::string visibility_animation(int64_t on, int64_t off, int64_t slots, int64_t slot_ms) {
  std::string values, times;
  if (on == 0) {
    values = "visible";
    times = "0";
  } else {
    values = "hidden;visible";
    times = "0;" + fraction(on, slots);
  }
  if (off < slots) {
    values += ";hidden";
    times += ";" + fraction(off, slots);
  }
  return "<animate attributeName=\"visibility\" calcMode=\"discrete\" values=\"" + values + "\" keyTimes=\"" + times +
         "\" dur=\"" + std::to_string(slots * slot_ms) + "ms\" repeatCount=\"indefinite\"/>";
}

} // namespace

Result<std::string> render_svg(const ConvProblem& problem, const DrawOptions& options) {
  Result<DrawModel> model = make_draw_model(problem);
  if (!model)
    return model.status();
  Result<Scene> built = build_scene(problem, *model, options);
  if (!built)
    return built.status();
  const Scene& scene = *built;
  const int64_t frames = model->frames();
  const int64_t slots = frames + 1; // every frame, then the finished output
  const int64_t slot_ms = options.frame_ms > 0 ? options.frame_ms : 600;

  std::string out;
  out.reserve(4096 + 256 * (scene.base.rects.size() + scene.output_fills.size()));
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"" + std::to_string(scene.width) +
         "\" height=\"" + std::to_string(scene.height) + "\" viewBox=\"0 0 " + std::to_string(scene.width) + " " +
         std::to_string(scene.height) + "\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\"";
  out += " data-frames=\"" + std::to_string(frames) + "\"";
  if (options.frame)
    out += " data-frame=\"" + std::to_string(*options.frame) + "\"";
  out += ">\n";
  out += "<title>" + escape("convarith draw: " + scene.title) + "</title>\n<desc>";
  for (const std::string& line : scene.notes)
    out += escape(line) + "\n";
  out += "</desc>\n";
  out += "<defs><pattern id=\"hatch\" patternUnits=\"userSpaceOnUse\" width=\"6\" height=\"6\">"
         "<path d=\"M0,6 L6,0\" stroke=\"#9fb4cc\" stroke-width=\"1\"/></pattern></defs>\n";
  out += "<rect class=\"background\" x=\"0\" y=\"0\" width=\"" + std::to_string(scene.width) + "\" height=\"" +
         std::to_string(scene.height) + "\" fill=\"#ffffff\"/>\n";
  out += "<g class=\"base\" shape-rendering=\"crispEdges\">\n";
  write_layer(out, scene.base);
  out += "</g>\n<g class=\"fills\" shape-rendering=\"crispEdges\">\n";
  for (size_t j = 0; j < scene.output_fills.size(); ++j) {
    const auto cell = static_cast<int64_t>(j);
    if (options.frame) {
      if (cell <= *options.frame)
        write_rect(out, scene.output_fills[j]);
    } else {
      // Visible from the frame that computes it to the end of the loop. Its base value stays
      // visible, so renderers that ignore SMIL show the finished output.
      write_rect(out, scene.output_fills[j],
                 cell == 0 ? std::string() : visibility_animation(cell, slots, slots, slot_ms));
    }
  }
  out += "</g>\n";
  for (const FrameLayer& fl : scene.frames) {
    const Frame& f = fl.frame;
    out += "<g class=\"frame\" data-frame=\"" + std::to_string(f.index) + "\" data-out=\"" + std::to_string(f.out_row) +
           "," + std::to_string(f.out_col) + "\"";
    if (options.frame) {
      out += ">\n";
    } else {
      out += " visibility=\"hidden\">" + visibility_animation(f.index, f.index + 1, slots, slot_ms) + "\n";
    }
    write_layer(out, fl.layer);
    out += "</g>\n";
  }
  out += "</svg>\n";
  return out;
}

} // namespace convarith::cli
