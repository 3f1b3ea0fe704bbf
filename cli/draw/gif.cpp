// cli/draw/gif.cpp — rasterises a Scene's shapes (no text) and encodes the frames with giflib.
// The rasteriser only fills, hatches and strokes axis-aligned rectangles; all encoding is
// giflib's (EGifOpen writing into memory, so nothing is written to disk on error).
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "draw/render.hpp"
#include "io.hpp"

#if defined(CONVARITH_HAVE_GIF)
#include <gif_lib.h>
#endif

namespace convarith::cli {
namespace {

// An RGB canvas; shapes are drawn in the same order as in the SVG.
class Canvas {
public:
  // Shapes are drawn shifted by (-dx, -dy), so the GIF can crop the SVG's text margins.
  Canvas(int width, int height, int dx, int dy)
      : w_(width), h_(height), dx_(dx), dy_(dy), px_(static_cast<size_t>(width) * height, 0xffffff) {}

  void draw(Rect r) {
    r.x -= dx_;
    r.y -= dy_;
    if (r.fill)
      fill(r.x, r.y, r.w, r.h, *r.fill, r.fill_opacity);
    if (r.hatch) {
      // Same pattern as the SVG's: a rising diagonal every 6 pixels.
      for (int y = r.y; y < r.y + r.h; ++y) {
        for (int x = r.x; x < r.x + r.w; ++x) {
          if ((x + y) % 6 == 0)
            blend(x, y, 0x9fb4cc, 1.0);
        }
      }
    }
    if (r.stroke) {
      // Stroke inside the rectangle (the SVG's is centred on the edge; at these sizes the
      // difference is a pixel). Dashes follow the SVG's "4 3".
      for (int k = 0; k < r.stroke_width; ++k) {
        const int x0 = r.x + k, y0 = r.y + k, x1 = r.x + r.w - 1 - k, y1 = r.y + r.h - 1 - k;
        for (int x = x0; x <= x1; ++x) {
          if (!r.dashed || (x - x0) % 7 < 4) {
            blend(x, y0, *r.stroke, 1.0);
            blend(x, y1, *r.stroke, 1.0);
          }
        }
        for (int y = y0; y <= y1; ++y) {
          if (!r.dashed || (y - y0) % 7 < 4) {
            blend(x0, y, *r.stroke, 1.0);
            blend(x1, y, *r.stroke, 1.0);
          }
        }
      }
    }
  }
  void draw(const Layer& layer) {
    for (const Rect& r : layer.rects)
      draw(r);
  }
  const std::vector<uint32_t>& pixels() const { return px_; }

private:
  void fill(int x0, int y0, int w, int h, uint32_t rgb, double opacity) {
    for (int y = y0; y < y0 + h; ++y) {
      for (int x = x0; x < x0 + w; ++x)
        blend(x, y, rgb, opacity);
    }
  }
  void blend(int x, int y, uint32_t rgb, double opacity) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_)
      return;
    uint32_t& dst = px_[static_cast<size_t>(y) * static_cast<size_t>(w_) + static_cast<size_t>(x)];
    if (opacity >= 1.0) {
      dst = rgb;
      return;
    }
    uint32_t out = 0;
    for (int shift = 0; shift <= 16; shift += 8) {
      const double a = (rgb >> shift) & 0xff, b = (dst >> shift) & 0xff;
      out |= static_cast<uint32_t>(std::lround(opacity * a + (1.0 - opacity) * b)) << shift;
    }
    dst = out;
  }

  int w_, h_, dx_, dy_;
  std::vector<uint32_t> px_;
};

} // namespace

#if defined(CONVARITH_HAVE_GIF)

namespace {

int append_bytes(GifFileType* gif, const GifByteType* bytes, int count) {
  static_cast<std::string*>(gif->UserData)->append(reinterpret_cast<const char*>(bytes), static_cast<size_t>(count));
  return count;
}

Status gif_error(const char* what, int code) {
  const char* text = GifErrorString(code);
  return internal_error(std::string("giflib ") + what + " failed: " + (text ? text : "unknown error"));
}

// Upper bound on pixels over all frames, so a huge layer fails fast instead of filling memory.
constexpr int64_t kMaxGifPixels = int64_t{1} << 28;

} // namespace

bool gif_supported() {
  return true;
}

Result<std::string> render_gif(const ConvProblem& problem, const DrawOptions& options) {
  Result<DrawModel> model = make_draw_model(problem);
  if (!model)
    return model.status();
  Result<Scene> built = build_scene(problem, *model, options);
  if (!built)
    return built.status();
  const Scene& scene = *built;
  // The GIF has no text (the SVG carries the labels, legend and caption): keep the grids only,
  // cropped to them with the SVG's margin.
  Layer grids;
  int width = 0, height = 0, top = scene.height;
  for (const Rect& r : scene.base.rects) {
    if (r.cls == "legend")
      continue;
    grids.rects.push_back(r);
    width = std::max(width, r.x + r.w);
    height = std::max(height, r.y + r.h);
    top = std::min(top, r.y);
  }
  // The same margin on every side: the grids start at the SVG's left margin.
  const int margin = grids.rects.empty() ? 0 : grids.rects.front().x;
  const int dy = std::max(0, top - margin);
  width += margin;
  height += margin - dy;
  const int64_t images = options.frame ? 1 : model->frames() + 1;
  if (images * width * height > kMaxGifPixels) {
    return invalid_argument("the GIF of this layer would hold " + std::to_string(images) + " images of " +
                            std::to_string(width) + "x" + std::to_string(height) +
                            " pixels; too large: draw one frame with --frame N, or write an SVG");
  }
  // Each pixel of each image is a 32-bit colour while rendering and one palette index (and at
  // most a byte of the encoded file) afterwards.
  CONVARITH_RETURN_IF_ERROR(HostMemory()
                                .add("the rendered images", static_cast<uint64_t>(images * width * height), 4)
                                .add("their palette indices", static_cast<uint64_t>(images * width * height), 1)
                                .check("drawing the GIF"));

  // Render every image first, then build the palette (a few dozen colours: fills, strokes and
  // their blends with the kernel's shading).
  std::vector<std::vector<uint32_t>> rendered;
  const int64_t fills_upto_hold = static_cast<int64_t>(scene.output_fills.size());
  for (int64_t img = 0; img < images; ++img) {
    Canvas canvas(width, height, 0, dy);
    canvas.draw(grids);
    const bool hold = !options.frame && img == images - 1;
    const int64_t computed = hold ? fills_upto_hold - 1 : scene.frames[static_cast<size_t>(img)].frame.index;
    for (int64_t j = 0; j <= computed; ++j)
      canvas.draw(scene.output_fills[static_cast<size_t>(j)]);
    if (!hold)
      canvas.draw(scene.frames[static_cast<size_t>(img)].layer);
    rendered.push_back(canvas.pixels());
  }
  std::map<uint32_t, int> palette;
  for (const auto& image : rendered) {
    for (uint32_t c : image) {
      if (palette.count(c))
        continue;
      if (palette.size() == 256)
        return internal_error("more than 256 colours in a GIF frame");
      const int index = static_cast<int>(palette.size());
      palette.emplace(c, index);
    }
  }
  std::vector<GifColorType> colors(256, GifColorType{0, 0, 0});
  for (const auto& [rgb, index] : palette) {
    colors[static_cast<size_t>(index)] =
        GifColorType{static_cast<GifByteType>(rgb >> 16), static_cast<GifByteType>((rgb >> 8) & 0xff),
                     static_cast<GifByteType>(rgb & 0xff)};
  }

  std::string bytes;
  int err = 0;
  GifFileType* gif = EGifOpen(&bytes, append_bytes, &err);
  if (!gif)
    return gif_error("EGifOpen", err);
  ColorMapObject* cmap = GifMakeMapObject(256, colors.data());
  Status status;
  auto check = [&](int rc, const char* what) {
    if (rc != GIF_OK && status.is_ok())
      status = gif_error(what, gif->Error);
    return status.is_ok();
  };
  EGifSetGifVersion(gif, true);
  if (!cmap)
    status = internal_error("giflib could not allocate a colour map");
  if (status.is_ok() && check(EGifPutScreenDesc(gif, width, height, 8, 0, cmap), "EGifPutScreenDesc") && images > 1) {
    // NETSCAPE2.0 application extension: loop forever.
    static const GifByteType kApp[] = {'N', 'E', 'T', 'S', 'C', 'A', 'P', 'E', '2', '.', '0'};
    static const GifByteType kLoop[] = {1, 0, 0};
    check(EGifPutExtensionLeader(gif, APPLICATION_EXT_FUNC_CODE), "EGifPutExtensionLeader") &&
        check(EGifPutExtensionBlock(gif, sizeof kApp, kApp), "EGifPutExtensionBlock") &&
        check(EGifPutExtensionBlock(gif, sizeof kLoop, kLoop), "EGifPutExtensionBlock") &&
        check(EGifPutExtensionTrailer(gif), "EGifPutExtensionTrailer");
  }
  const int delay_cs = std::max(1, (options.frame_ms > 0 ? options.frame_ms : 600) / 10);
  std::vector<GifPixelType> line(static_cast<size_t>(width));
  for (int64_t img = 0; img < images && status.is_ok(); ++img) {
    if (images > 1) {
      GraphicsControlBlock gcb{};
      gcb.DisposalMode = DISPOSAL_UNSPECIFIED;
      gcb.UserInputFlag = false;
      gcb.DelayTime = img == images - 1 ? 2 * delay_cs : delay_cs; // hold the finished output longer
      gcb.TransparentColor = NO_TRANSPARENT_COLOR;
      GifByteType ext[4];
      const size_t len = EGifGCBToExtension(&gcb, ext);
      if (!check(EGifPutExtension(gif, GRAPHICS_EXT_FUNC_CODE, static_cast<int>(len), ext), "EGifPutExtension")) {
        break;
      }
    }
    if (!check(EGifPutImageDesc(gif, 0, 0, width, height, false, nullptr), "EGifPutImageDesc"))
      break;
    const auto& image = rendered[static_cast<size_t>(img)];
    for (int y = 0; y < height && status.is_ok(); ++y) {
      for (int x = 0; x < width; ++x) {
        line[static_cast<size_t>(x)] = static_cast<GifPixelType>(
            palette.at(image[static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)]));
      }
      check(EGifPutLine(gif, line.data(), width), "EGifPutLine");
    }
  }
  if (EGifCloseFile(gif, &err) != GIF_OK && status.is_ok())
    status = gif_error("EGifCloseFile", err);
  GifFreeMapObject(cmap);
  if (!status.is_ok())
    return status;
  return bytes;
}

#else

bool gif_supported() {
  return false;
}

Result<std::string> render_gif(const ConvProblem&, const DrawOptions&) {
  // Keep the rasteriser referenced so the code stays compiled and warning-free in either build.
  (void)sizeof(Canvas);
  return not_supported("this build of convarith has no GIF support (giflib was not found at configure "
                       "time: install libgif-dev and reconfigure); write an .svg instead");
}

#endif

} // namespace convarith::cli
