// tests/test_cli_draw.cpp — `convarith draw`: the frame model and the SVG it produces are checked
// against the definition of each operation, for the paper's 15 animations and for user layers
// outside the paper (rank 1 and 3, asymmetric padding, dilation with stride, ceil-mode pooling,
// cropping transposed padding); plus the command's errors, --frame, --out and GIF output.
//
// The expected input cells of output o are computed here from the definitions, independently of
// cli/draw/: conv / pooling read taps o*s - p_lo + r*d inside [0, i); a transposed convolution
// (gather form) reads the input elements i with o + p_lo - r*d = i*s.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "convarith/convarith.hpp"
#include "draw/draw_command.hpp"
#include "draw/draw_model.hpp"
#include "draw/render.hpp"

#if defined(CONVARITH_HAVE_GIF)
#include <gif_lib.h>
#endif

namespace convarith::cli {
namespace {

// ---- a small XML reader: well-formedness plus a tree to query -----------------------------------

struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::vector<Element> children;
  std::string text;

  std::string attr(const std::string& key) const {
    auto it = attrs.find(key);
    return it == attrs.end() ? std::string() : it->second;
  }
  bool has_class(const std::string& cls) const {
    std::istringstream words(attr("class"));
    std::string w;
    while (words >> w) {
      if (w == cls)
        return true;
    }
    return false;
  }
  // Every descendant (and this element) with the given name, in document order.
  void collect(const std::string& tag, std::vector<const Element*>* out) const {
    if (name == tag)
      out->push_back(this);
    for (const Element& c : children)
      c.collect(tag, out);
  }
  std::vector<const Element*> all(const std::string& tag) const {
    std::vector<const Element*> out;
    collect(tag, &out);
    return out;
  }
};

class XmlReader {
public:
  explicit XmlReader(const std::string& text) : s_(text) {}

  // Parses the whole document; on any well-formedness error returns false with error().
  bool parse(Element* root) {
    skip_space();
    if (s_.compare(pos_, 5, "<?xml") == 0) {
      const size_t end = s_.find("?>", pos_);
      if (end == std::string::npos)
        return fail("unterminated XML declaration");
      pos_ = end + 2;
    }
    skip_misc();
    if (!element(root))
      return false;
    skip_misc();
    if (pos_ != s_.size())
      return fail("content after the root element");
    return true;
  }
  const std::string& error() const { return error_; }

private:
  bool fail(const std::string& what) {
    if (error_.empty())
      error_ = what + " at offset " + std::to_string(pos_);
    return false;
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r'))
      ++pos_;
  }
  void skip_misc() {
    for (;;) {
      skip_space();
      if (s_.compare(pos_, 4, "<!--") == 0) {
        const size_t end = s_.find("-->", pos_);
        if (end == std::string::npos)
          return;
        pos_ = end + 3;
      } else {
        return;
      }
    }
  }
  static bool name_char(char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == ':' || ch == '.';
  }
  bool name(std::string* out) {
    const size_t start = pos_;
    while (pos_ < s_.size() && name_char(s_[pos_]))
      ++pos_;
    if (pos_ == start)
      return fail("expected a name");
    *out = s_.substr(start, pos_ - start);
    return true;
  }
  // Character data or an attribute value up to `stop`, with entities decoded; '<' is an error.
  bool chars(char stop, std::string* out) {
    while (pos_ < s_.size() && s_[pos_] != stop) {
      const char ch = s_[pos_];
      if (ch == '<' && stop != '<')
        return fail("'<' inside an attribute value");
      if (ch == '&') {
        const size_t semi = s_.find(';', pos_);
        if (semi == std::string::npos || semi - pos_ > 8)
          return fail("bad entity");
        const std::string ent = s_.substr(pos_ + 1, semi - pos_ - 1);
        static const std::map<std::string, char> kEntities = {
            {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
        if (auto it = kEntities.find(ent); it != kEntities.end()) {
          *out += it->second;
        } else if (ent.size() > 1 && ent[0] == '#') {
          *out += '?';
        } else {
          return fail("unknown entity &" + ent + ";");
        }
        pos_ = semi + 1;
      } else {
        *out += ch;
        ++pos_;
      }
    }
    return true;
  }
  bool element(Element* e) {
    if (pos_ >= s_.size() || s_[pos_] != '<')
      return fail("expected '<'");
    ++pos_;
    if (!name(&e->name))
      return false;
    for (;;) {
      skip_space();
      if (pos_ >= s_.size())
        return fail("unterminated start tag <" + e->name);
      if (s_.compare(pos_, 2, "/>") == 0) {
        pos_ += 2;
        return true;
      }
      if (s_[pos_] == '>') {
        ++pos_;
        break;
      }
      std::string key, value;
      if (!name(&key))
        return false;
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '=')
        return fail("expected '=' after attribute " + key);
      ++pos_;
      skip_space();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\''))
        return fail("unquoted attribute " + key);
      const char quote = s_[pos_++];
      if (!chars(quote, &value))
        return false;
      if (pos_ >= s_.size())
        return fail("unterminated attribute " + key);
      ++pos_;
      if (!e->attrs.emplace(key, value).second)
        return fail("duplicate attribute " + key);
    }
    for (;;) {
      if (!chars('<', &e->text))
        return false;
      if (pos_ >= s_.size())
        return fail("unclosed element <" + e->name + ">");
      if (s_.compare(pos_, 4, "<!--") == 0) {
        const size_t end = s_.find("-->", pos_);
        if (end == std::string::npos)
          return fail("unterminated comment");
        pos_ = end + 3;
        continue;
      }
      if (s_.compare(pos_, 2, "</") == 0) {
        pos_ += 2;
        std::string closing;
        if (!name(&closing))
          return false;
        if (closing != e->name)
          return fail("</" + closing + "> closes <" + e->name + ">");
        skip_space();
        if (pos_ >= s_.size() || s_[pos_] != '>')
          return fail("bad end tag");
        ++pos_;
        return true;
      }
      Element child;
      if (!element(&child))
        return false;
      e->children.push_back(std::move(child));
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
  std::string error_;
};

TEST(DrawXmlReader, RejectsMalformedDocuments) {
  const char* bad[] = {"<a><b></a></b>", "<a x=\"1\" x=\"2\"/>", "<a x=1/>", "<a>&bogus;</a>", "<a>",
                       "<a/><b/>",       "<a x=\"<\"/>"};
  for (const char* doc : bad) {
    Element root;
    const std::string text = doc;
    XmlReader reader(text);
    EXPECT_FALSE(reader.parse(&root)) << doc;
  }
  Element root;
  const std::string good = "<?xml version=\"1.0\"?>\n<a k=\"v &amp; w\"><b/>t&lt;</a>\n";
  XmlReader reader(good);
  ASSERT_TRUE(reader.parse(&root)) << reader.error();
  EXPECT_EQ(root.attr("k"), "v & w");
  EXPECT_EQ(root.text, "t<");
  EXPECT_EQ(root.all("b").size(), 1u);
}

// ---- the reference: which input cells output o reads, from the definitions ------------------------

ConvProblem make_problem(const ProblemDesc& d) {
  Result<ConvProblem> p = ConvProblem::make(d);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p.is_ok() ? *p : ConvProblem();
}

// Input elements along one axis read by output element o.
std::set<int64_t> axis_reads(Op op, const AxisParams& a, int64_t o) {
  std::set<int64_t> reads;
  for (int64_t r = 0; r < a.k; ++r) {
    if (op == Op::kConvTranspose) {
      const int64_t t = o + a.p_lo - r * a.d; // = i*s for the input elements that reach o
      if (t >= 0 && t % a.s == 0 && t / a.s < a.i)
        reads.insert(t / a.s);
    } else {
      const int64_t i = o * a.s - a.p_lo + r * a.d;
      if (i >= 0 && i < a.i)
        reads.insert(i);
    }
  }
  return reads;
}

struct DrawnAxes {
  AxisParams rows, cols;
  int64_t out_rows = 1, out_cols = 1;
};

// The axes a drawing shows: (unit, axis 0) for rank 1, (axis 0, axis 1) otherwise.
DrawnAxes drawn_axes(const ConvProblem& p) {
  DrawnAxes d;
  if (p.rank() == 1) {
    d.cols = p.axis(0);
    d.out_cols = p.out(0);
  } else {
    d.rows = p.axis(0);
    d.cols = p.axis(1);
    d.out_rows = p.out(0);
    d.out_cols = p.out(1);
  }
  return d;
}

std::set<std::pair<int64_t, int64_t>> expected_reads(const ConvProblem& p, int64_t out_row, int64_t out_col) {
  const DrawnAxes d = drawn_axes(p);
  std::set<std::pair<int64_t, int64_t>> reads;
  for (int64_t ih : axis_reads(p.op(), d.rows, out_row)) {
    for (int64_t iw : axis_reads(p.op(), d.cols, out_col))
      reads.insert({ih, iw});
  }
  return reads;
}

// The input element a drawn cell shows along one axis, or -1 (padding, inserted zero, past the
// end): conv / pooling draw the padded input; conv_transpose the input with s-1 zeros between
// elements after k'-p_lo-1 cells of padding (the paper's equivalent direct convolution).
int64_t drawn_to_input(Op op, const AxisParams& a, int64_t x) {
  if (op == Op::kConvTranspose) {
    const int64_t z = x - (a.d * (a.k - 1) + 1 - a.p_lo - 1);
    if (z < 0 || z % a.s != 0 || z / a.s >= a.i)
      return -1;
    return z / a.s;
  }
  const int64_t i = x - a.p_lo;
  return i >= 0 && i < a.i ? i : -1;
}

std::pair<int64_t, int64_t> parse_pair(const std::string& text) {
  const size_t comma = text.find(',');
  if (comma == std::string::npos)
    return {-1, -1};
  return {std::stoll(text.substr(0, comma)), std::stoll(text.substr(comma + 1))};
}

Element parse_svg(const std::string& svg) {
  Element root;
  XmlReader reader(svg);
  EXPECT_TRUE(reader.parse(&root)) << reader.error();
  EXPECT_EQ(root.name, "svg");
  EXPECT_EQ(root.attr("xmlns"), "http://www.w3.org/2000/svg");
  return root;
}

// Checks one frame group against the reference: the taps sit where the definition puts them
// (o*step + r*d with step s, or 1 for the transposed equivalent), the input cells it marks are
// exactly the ones the reference reads, and the current output cell is frame k's.
void check_frame(const ConvProblem& p, const Element& g, int64_t k) {
  const DrawnAxes d = drawn_axes(p);
  const int64_t out_row = k / d.out_cols, out_col = k % d.out_cols;
  SCOPED_TRACE("frame " + std::to_string(k));
  EXPECT_EQ(g.attr("data-frame"), std::to_string(k));
  EXPECT_EQ(parse_pair(g.attr("data-out")), std::make_pair(out_row, out_col));
  const bool transposed = p.op() == Op::kConvTranspose;
  const int64_t step_r = transposed ? 1 : d.rows.s, step_c = transposed ? 1 : d.cols.s;
  std::set<std::pair<int64_t, int64_t>> want_cells, got_cells, got_reads;
  for (int64_t r = 0; r < d.rows.k; ++r) {
    for (int64_t s = 0; s < d.cols.k; ++s)
      want_cells.insert({out_row * step_r + r * d.rows.d, out_col * step_c + s * d.cols.d});
  }
  int currents = 0;
  for (const Element* rect : g.all("rect")) {
    if (rect->has_class("current")) {
      ++currents;
      EXPECT_EQ(rect->attr("data-r"), std::to_string(out_row));
      EXPECT_EQ(rect->attr("data-c"), std::to_string(out_col));
    }
    if (!rect->has_class("tap"))
      continue;
    const int64_t row = std::stoll(rect->attr("data-r")), col = std::stoll(rect->attr("data-c"));
    got_cells.insert({row, col});
    const int64_t ih = drawn_to_input(p.op(), d.rows, row), iw = drawn_to_input(p.op(), d.cols, col);
    const bool real = ih >= 0 && iw >= 0;
    EXPECT_EQ(rect->has_class("input"), real) << "tap at drawn (" << row << ", " << col << ")";
    if (rect->has_class("input")) {
      EXPECT_EQ(parse_pair(rect->attr("data-in")), std::make_pair(ih, iw));
      got_reads.insert(parse_pair(rect->attr("data-in")));
    }
  }
  EXPECT_EQ(currents, 1);
  EXPECT_EQ(got_cells, want_cells);
  EXPECT_EQ(got_reads, expected_reads(p, out_row, out_col));
}

// Whether an element with SMIL discrete visibility animation is visible at time t (a fraction of
// the loop): the value of the last keyTime <= t, or the element's own visibility without one.
bool visible_at(const Element& e, double t) {
  const auto animations = e.all("animate");
  if (animations.empty())
    return e.attr("visibility") != "hidden";
  const Element& a = *animations[0];
  EXPECT_EQ(a.attr("attributeName"), "visibility");
  EXPECT_EQ(a.attr("calcMode"), "discrete");
  EXPECT_EQ(a.attr("repeatCount"), "indefinite");
  std::vector<std::string> values;
  std::vector<double> times;
  std::istringstream vs(a.attr("values")), ts(a.attr("keyTimes"));
  for (std::string v; std::getline(vs, v, ';');)
    values.push_back(v);
  for (std::string v; std::getline(ts, v, ';');)
    times.push_back(std::stod(v));
  EXPECT_EQ(values.size(), times.size());
  EXPECT_FALSE(times.empty());
  if (times.empty() || values.size() != times.size())
    return false;
  EXPECT_EQ(times[0], 0.0);
  std::string value = values[0];
  for (size_t j = 0; j < times.size(); ++j) {
    if (j > 0) {
      EXPECT_LT(times[j - 1], times[j]);
    }
    if (times[j] <= t)
      value = values[j];
  }
  return value == "visible";
}

// Renders the animation and checks every frame; returns the number of frames found.
int64_t check_animation(const ConvProblem& p) {
  DrawOptions options;
  Result<std::string> svg = render_svg(p, options);
  EXPECT_TRUE(svg.is_ok()) << svg.status().to_string();
  if (!svg)
    return -1;
  const Element root = parse_svg(*svg);
  const DrawnAxes d = drawn_axes(p);
  const int64_t frames = d.out_rows * d.out_cols;
  EXPECT_EQ(root.attr("data-frames"), std::to_string(frames));
  std::vector<const Element*> groups;
  int64_t fills = 0;
  for (const Element* g : root.all("g")) {
    if (g->has_class("frame"))
      groups.push_back(g);
  }
  for (const Element* r : root.all("rect"))
    fills += r->has_class("fill") ? 1 : 0;
  EXPECT_EQ(fills, frames) << "one output fill per output cell";
  EXPECT_EQ(static_cast<int64_t>(groups.size()), frames);
  for (size_t k = 0; k < groups.size(); ++k) {
    EXPECT_EQ(groups[k]->all("animate").size(), 1u) << "frame " << k;
    check_frame(p, *groups[k], static_cast<int64_t>(k));
  }
  // Play the loop: slots 0..frames-1 show frame k alone, with output cells 0..k filled; the
  // last slot shows the finished output and no frame. Every animation has the loop's duration.
  std::set<std::string> durations;
  for (const Element* a : root.all("animate"))
    durations.insert(a->attr("dur"));
  EXPECT_EQ(durations.size(), 1u);
  const int64_t slots = frames + 1;
  for (int64_t slot = 0; slot < slots; ++slot) {
    const double t = (static_cast<double>(slot) + 0.5) / static_cast<double>(slots);
    std::vector<int64_t> shown;
    for (size_t k = 0; k < groups.size(); ++k) {
      if (visible_at(*groups[k], t))
        shown.push_back(static_cast<int64_t>(k));
    }
    int64_t filled = 0;
    for (const Element* r : root.all("rect"))
      filled += r->has_class("fill") && visible_at(*r, t);
    if (slot < frames) {
      EXPECT_EQ(shown, std::vector<int64_t>{slot}) << "slot " << slot;
      EXPECT_EQ(filled, slot + 1) << "slot " << slot;
    } else {
      EXPECT_TRUE(shown.empty());
      EXPECT_EQ(filled, frames);
    }
  }
  // The frame model answers the same, through its API.
  Result<DrawModel> model = make_draw_model(p);
  EXPECT_TRUE(model.is_ok());
  if (model) {
    EXPECT_EQ(model->frames(), frames);
    for (int64_t k = 0; k < frames; ++k) {
      Result<Frame> f = make_frame(*model, k);
      EXPECT_TRUE(f.is_ok());
      if (!f)
        continue;
      std::set<std::pair<int64_t, int64_t>> reads;
      for (const FrameTap& t : f->taps) {
        if (t.kind == CellKind::kInput)
          reads.insert({t.in_row, t.in_col});
      }
      EXPECT_EQ(reads, expected_reads(p, f->out_row, f->out_col)) << "frame " << k;
    }
  }
  return static_cast<int64_t>(groups.size());
}

// ---- the paper's figures --------------------------------------------------------------------

struct PaperFigure {
  const char* name;
  Op op;
  int64_t i, k, s, p, d, a;
  int64_t o; // the figure's output size
};

// conv_arithmetic's animations: a transposed figure takes the conv's output size as input and
// gives back the conv's input size.
const PaperFigure kFigures[] = {
    {"no_padding_no_strides", Op::kConv, 4, 3, 1, 0, 1, 0, 2},
    {"arbitrary_padding_no_strides", Op::kConv, 5, 4, 1, 2, 1, 0, 6},
    {"same_padding_no_strides", Op::kConv, 5, 3, 1, 1, 1, 0, 5},
    {"full_padding_no_strides", Op::kConv, 5, 3, 1, 2, 1, 0, 7},
    {"no_padding_strides", Op::kConv, 5, 3, 2, 0, 1, 0, 2},
    {"padding_strides", Op::kConv, 5, 3, 2, 1, 1, 0, 3},
    {"padding_strides_odd", Op::kConv, 6, 3, 2, 1, 1, 0, 3},
    {"no_padding_no_strides_transposed", Op::kConvTranspose, 2, 3, 1, 0, 1, 0, 4},
    {"arbitrary_padding_no_strides_transposed", Op::kConvTranspose, 6, 4, 1, 2, 1, 0, 5},
    {"same_padding_no_strides_transposed", Op::kConvTranspose, 5, 3, 1, 1, 1, 0, 5},
    {"full_padding_no_strides_transposed", Op::kConvTranspose, 7, 3, 1, 2, 1, 0, 5},
    {"no_padding_strides_transposed", Op::kConvTranspose, 2, 3, 2, 0, 1, 0, 5},
    {"padding_strides_transposed", Op::kConvTranspose, 3, 3, 2, 1, 1, 0, 5},
    {"padding_strides_odd_transposed", Op::kConvTranspose, 3, 3, 2, 1, 1, 1, 6},
    {"dilation", Op::kConv, 7, 3, 1, 0, 2, 0, 3},
};

// gtest prints the figure's name instead of its bytes.
void PrintTo(const PaperFigure& figure, std::ostream* os) {
  *os << figure.name;
}

ProblemDesc square(Op op, int64_t i, int64_t k, int64_t s, int64_t p, int64_t d, int64_t a) {
  ProblemDesc desc;
  desc.op = op;
  desc.rank = 2;
  desc.input = {i, i, 1};
  desc.kernel = {k, k, 1};
  desc.stride = {s, s, 1};
  desc.pad_lo = {p, p, 0};
  desc.pad_hi = {p, p, 0};
  desc.dilation = {d, d, 1};
  desc.output_padding = {a, a, 0};
  return desc;
}

class PaperFigureTest : public ::testing::TestWithParam<PaperFigure> {};

TEST_P(PaperFigureTest, OneFramePerOutputCellReadingTheReferenceCells) {
  const PaperFigure& fig = GetParam();
  const ConvProblem p = make_problem(square(fig.op, fig.i, fig.k, fig.s, fig.p, fig.d, fig.a));
  ASSERT_EQ(p.out(0), fig.o);
  ASSERT_EQ(p.out(1), fig.o);
  EXPECT_EQ(check_animation(p), fig.o * fig.o);
}

TEST_P(PaperFigureTest, DrawnInputIsThePaddedOrZeroInsertedInput) {
  const PaperFigure& fig = GetParam();
  const ConvProblem p = make_problem(square(fig.op, fig.i, fig.k, fig.s, fig.p, fig.d, fig.a));
  Result<DrawModel> model = make_draw_model(p);
  ASSERT_TRUE(model.is_ok());
  const int64_t k_eff = fig.d * (fig.k - 1) + 1;
  // The paper's pictures: conv draws p + i + p cells; the transposed figures draw the
  // equivalent direct convolution's input, which it then convolves at stride 1 into o cells.
  const int64_t length = fig.op == Op::kConvTranspose ? fig.o + k_eff - 1 : fig.i + 2 * fig.p;
  EXPECT_EQ(model->rows.length(), length);
  EXPECT_EQ(model->cols.length(), length);
  // Cell by cell, from the definition: input where drawn_to_input finds an element; for the
  // transposed figures the s-1 cells between two inputs are inserted zeros and the last a cells
  // the output padding; everything else padding.
  const AxisParams axis = p.axis(1);
  for (int64_t x = 0; x < length; ++x) {
    CellKind want = CellKind::kPadding;
    const int64_t z = x - (k_eff - fig.p - 1);
    if (drawn_to_input(fig.op, axis, x) >= 0) {
      want = CellKind::kInput;
    } else if (fig.op == Op::kConvTranspose && z > 0 && z < (fig.i - 1) * fig.s) {
      want = CellKind::kInsertedZero;
    } else if (fig.op == Op::kConvTranspose && x >= length - fig.a) {
      want = CellKind::kOutputPadding;
    }
    EXPECT_EQ(model->cols.cells[static_cast<size_t>(x)], want) << "drawn cell " << x;
    EXPECT_EQ(model->rows.cells[static_cast<size_t>(x)], want) << "drawn cell " << x;
  }
  int64_t inputs = 0, zeros = 0, pads = 0, out_pads = 0;
  for (CellKind kind : model->cols.cells) {
    inputs += kind == CellKind::kInput;
    zeros += kind == CellKind::kInsertedZero;
    pads += kind == CellKind::kPadding;
    out_pads += kind == CellKind::kOutputPadding;
  }
  EXPECT_EQ(inputs, fig.i);
  EXPECT_EQ(zeros, fig.op == Op::kConvTranspose ? (fig.s - 1) * (fig.i - 1) : 0);
  EXPECT_EQ(out_pads, fig.a);
  // Transposed: k'-p-1 padding on each side (relationship 14's picture), output padding extra.
  EXPECT_EQ(pads, fig.op == Op::kConvTranspose ? 2 * (k_eff - fig.p - 1) : 2 * fig.p);
  // The SVG has one input-grid rect per drawn cell and i*i real input cells.
  Result<std::string> svg = render_svg(p, DrawOptions{});
  ASSERT_TRUE(svg.is_ok());
  const Element root = parse_svg(*svg);
  int64_t grid = 0, real = 0;
  for (const Element* r : root.all("rect")) {
    if (!r->has_class("cell") || r->has_class("output"))
      continue;
    if (r->attr("data-r").empty())
      continue; // legend swatches
    ++grid;
    real += r->has_class("input");
  }
  EXPECT_EQ(grid, length * length);
  EXPECT_EQ(real, fig.i * fig.i);
}

INSTANTIATE_TEST_SUITE_P(Paper, PaperFigureTest, ::testing::ValuesIn(kFigures),
                         [](const ::testing::TestParamInfo<PaperFigure>& figure) {
                           return std::string(figure.param.name);
                         });

// ---- user layers outside the paper ------------------------------------------------------------

TEST(Draw, UserLayersRenderAndMatchTheReference) {
  std::vector<std::pair<std::string, ProblemDesc>> layers;
  {
    ProblemDesc d; // rank 1, asymmetric padding, stride 2
    d.rank = 1;
    d.input = {7, 1, 1};
    d.kernel = {3, 1, 1};
    d.stride = {2, 1, 1};
    d.pad_lo = {1, 0, 0};
    d.pad_hi = {2, 0, 0};
    layers.push_back({"rank1", d});
  }
  {
    ProblemDesc d = square(Op::kConv, 6, 3, 1, 0, 1, 0); // asymmetric 2-D padding
    d.input = {5, 6, 1};
    d.pad_lo = {0, 2, 0};
    d.pad_hi = {1, 0, 0};
    layers.push_back({"asymmetric_pads", d});
  }
  layers.push_back({"dilation_and_stride", square(Op::kConv, 9, 3, 2, 1, 2, 0)});
  {
    ProblemDesc d = square(Op::kMaxPool, 6, 3, 2, 0, 1, 0); // ceil_mode: the last window overhangs
    d.ceil_mode = true;
    layers.push_back({"max_pool_ceil", d});
  }
  {
    ProblemDesc d = square(Op::kAvgPool, 5, 2, 2, 1, 1, 0);
    d.ceil_mode = true;
    d.count_include_pad = true;
    layers.push_back({"avg_pool_ceil_padded", d});
  }
  layers.push_back({"transposed_dilated_output_padding", square(Op::kConvTranspose, 3, 3, 2, 1, 2, 1)});
  layers.push_back({"transposed_crop", square(Op::kConvTranspose, 4, 2, 2, 2, 1, 0)}); // p > k'-1
  {
    ProblemDesc d = square(Op::kConvTranspose, 4, 3, 3, 0, 1, 2);
    d.input = {3, 4, 1};
    d.pad_lo = {0, 2, 0};
    d.pad_hi = {1, 0, 0};
    d.output_padding = {2, 1, 0};
    layers.push_back({"transposed_asymmetric", d});
  }
  {
    ProblemDesc d = square(Op::kConv, 5, 3, 2, 0, 1, 0);
    d.pad_mode = PadMode::kSameUpper;
    layers.push_back({"same_upper", d});
  }
  {
    ProblemDesc d; // rank 3: axes 0 and 1 are drawn
    d.rank = 3;
    d.c = 2;
    d.k = 4;
    d.input = {4, 5, 6};
    d.kernel = {2, 3, 3};
    d.stride = {1, 2, 1};
    d.pad_lo = {1, 1, 1};
    d.pad_hi = {0, 1, 1};
    layers.push_back({"rank3", d});
  }
  for (const auto& [name, desc] : layers) {
    SCOPED_TRACE(name);
    const ConvProblem p = make_problem(desc);
    const DrawnAxes d = drawn_axes(p);
    EXPECT_EQ(check_animation(p), d.out_rows * d.out_cols);
  }
}

TEST(Draw, CeilModeOverhangIsDrawnButNeverRead) {
  ProblemDesc desc = square(Op::kMaxPool, 6, 3, 2, 0, 1, 0);
  desc.ceil_mode = true;
  const ConvProblem p = make_problem(desc);
  ASSERT_EQ(p.out(0), 3); // ceil((6-3)/2)+1; the last window starts at 4 and covers 4..6
  Result<DrawModel> model = make_draw_model(p);
  ASSERT_TRUE(model.is_ok());
  ASSERT_EQ(model->cols.length(), 7);
  EXPECT_EQ(model->cols.cells[6], CellKind::kOverhang);
  Result<Frame> last = make_frame(*model, 8);
  ASSERT_TRUE(last.is_ok());
  int64_t overhang = 0;
  for (const FrameTap& t : last->taps)
    overhang += t.kind == CellKind::kOverhang;
  EXPECT_EQ(overhang, 5); // the window's last row and last column: 3 + 3 - 1
}

TEST(Draw, StaticFrameShowsOneFrameAndTheCellsComputedSoFar) {
  const ConvProblem p = make_problem(square(Op::kConvTranspose, 3, 3, 2, 1, 1, 1)); // 6x6 output
  for (int64_t k : {int64_t{0}, int64_t{7}, int64_t{35}}) {
    DrawOptions options;
    options.frame = k;
    Result<std::string> svg = render_svg(p, options);
    ASSERT_TRUE(svg.is_ok()) << svg.status().to_string();
    const Element root = parse_svg(*svg);
    EXPECT_TRUE(root.all("animate").empty()) << "a static frame has no animation";
    std::vector<const Element*> groups;
    for (const Element* g : root.all("g")) {
      if (g->has_class("frame"))
        groups.push_back(g);
    }
    ASSERT_EQ(groups.size(), 1u);
    check_frame(p, *groups[0], k);
    int64_t fills = 0;
    for (const Element* r : root.all("rect"))
      fills += r->has_class("fill");
    EXPECT_EQ(fills, k + 1);
  }
  DrawOptions options;
  options.frame = 36;
  Result<std::string> svg = render_svg(p, options);
  ASSERT_FALSE(svg.is_ok());
  EXPECT_NE(svg.status().message().find("36 frames"), std::string::npos) << svg.status().message();
}

TEST(Draw, CaptionNamesThePaperRelationshipPerAxis) {
  const ConvProblem p = make_problem(square(Op::kConvTranspose, 3, 3, 2, 1, 1, 1));
  Result<std::string> svg = render_svg(p, DrawOptions{});
  ASSERT_TRUE(svg.is_ok());
  const RelationshipInfo info = classify_relationship(p.op(), p.axis(0), p.out(0));
  EXPECT_EQ(info.relationship, Relationship::kTransposedPaddingStridesOdd);
  const Element root = parse_svg(*svg);
  int found = 0;
  for (const Element* t : root.all("text")) {
    found += t->text.find(info.formula) != std::string::npos ? 1 : 0;
  }
  EXPECT_EQ(found, 2) << "one caption line per drawn axis with " << info.formula;
}

TEST(Draw, HugeAnimationIsAClearErrorButOneFrameStillDraws) {
  ProblemDesc desc = square(Op::kConv, 130, 5, 1, 2, 1, 0); // 16900 frames x 25 taps
  const ConvProblem p = make_problem(desc);
  Result<std::string> svg = render_svg(p, DrawOptions{});
  ASSERT_FALSE(svg.is_ok());
  EXPECT_NE(svg.status().message().find("--frame"), std::string::npos) << svg.status().message();
  DrawOptions one;
  one.frame = 12345; // output (94, 125)
  Result<std::string> frame = render_svg(p, one);
  ASSERT_TRUE(frame.is_ok()) << frame.status().to_string();
  const Element root = parse_svg(*frame);
  EXPECT_EQ(root.attr("data-frame"), "12345");
}

// ---- the command ---------------------------------------------------------------------------------

struct DrawRun {
  int code;
  std::string out, err;
};

DrawRun draw(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = draw_main(args, out, err);
  return {code, out.str(), err.str()};
}

TEST(DrawCommand, WritesTheAnimationToStdout) {
  const DrawRun r =
      draw({"conv", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--strides", "2,2", "--pads", "1,1,1,1"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Element root = parse_svg(r.out);
  EXPECT_EQ(root.attr("data-frames"), "9");
}

TEST(DrawCommand, BadLayerExitsTwoWithTheValidationMessage) {
  ProblemDesc desc = square(Op::kConv, 2, 5, 1, 0, 1, 0);
  Result<ConvProblem> invalid = ConvProblem::make(desc);
  ASSERT_FALSE(invalid.is_ok());
  const DrawRun r = draw({"conv", "--x-shape", "1,1,2,2", "--kernel-shape", "5,5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(r.out.empty());
  EXPECT_NE(r.err.find(invalid.status().message()), std::string::npos) << r.err;
  // A malformed option is the parser's error, also exit 2.
  EXPECT_EQ(draw({"conv", "--x-shape", "1,1,5,5", "--frame", "x"}).code, 2);
  EXPECT_EQ(draw({"conv", "--x-shape", "1,1,5,5", "--frame-ms", "0"}).code, 2);
}

TEST(DrawCommand, FrameOutOfRangeNamesTheNumberOfFrames) {
  const DrawRun r = draw({"conv", "--x-shape", "1,1,4,4", "--kernel-shape", "3,3", "--frame", "4"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("4 frames"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());
  const DrawRun ok = draw({"conv", "--x-shape", "1,1,4,4", "--kernel-shape", "3,3", "--frame", "3"});
  ASSERT_EQ(ok.code, 0) << ok.err;
  EXPECT_EQ(parse_svg(ok.out).attr("data-frame"), "3");
}

TEST(DrawCommand, OutFileAndExtensions) {
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "/convarith_draw_test.svg";
  std::remove(path.c_str());
  const std::vector<std::string> layer = {"conv-transpose", "--x-shape", "1,1,3,3", "--kernel-shape", "3,3",
                                          "--strides",      "2,2",       "--pads",  "1,1,1,1"};
  std::vector<std::string> args = layer;
  args.insert(args.end(), {"--out", path});
  const DrawRun r = draw(args);
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  EXPECT_EQ(parse_svg(text.str()).attr("data-frames"), "25");
  std::remove(path.c_str());

  args = layer;
  args.insert(args.end(), {"--out", dir + "/x.png"});
  const DrawRun bad = draw(args);
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find(".svg or .gif"), std::string::npos) << bad.err;
}

TEST(DrawCommand, GifIsAnimatedOrAClearError) {
  const std::string path = ::testing::TempDir() + "/convarith_draw_test.gif";
  std::remove(path.c_str());
  const DrawRun r = draw({"conv", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--strides", "2,2", "--pads",
                          "1,1,1,1", "--out", path});
  if (!gif_supported()) {
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("giflib"), std::string::npos) << r.err;
    EXPECT_FALSE(std::ifstream(path).good()) << "nothing is written on error";
    return;
  }
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream file(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 6u);
  EXPECT_EQ(bytes.substr(0, 6), "GIF89a");
#if defined(CONVARITH_HAVE_GIF)
  int err = 0;
  GifFileType* gif = DGifOpenFileName(path.c_str(), &err);
  ASSERT_NE(gif, nullptr) << GifErrorString(err);
  ASSERT_EQ(DGifSlurp(gif), GIF_OK);
  EXPECT_EQ(gif->ImageCount, 9 + 1) << "one image per output cell plus the finished output";
  // Frame 0 and frame 4 differ (the kernel moved).
  const size_t pixels = static_cast<size_t>(gif->SWidth) * static_cast<size_t>(gif->SHeight);
  EXPECT_NE(std::string(reinterpret_cast<char*>(gif->SavedImages[0].RasterBits), pixels),
            std::string(reinterpret_cast<char*>(gif->SavedImages[4].RasterBits), pixels));
  DGifCloseFile(gif, &err);
#endif
  std::remove(path.c_str());
}

TEST(DrawCommand, HelpExitsZero) {
  const DrawRun r = draw({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("convarith draw OP"), std::string::npos);
}

} // namespace
} // namespace convarith::cli
