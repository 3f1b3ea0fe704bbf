// bench/layers.cpp — the layer file parser and the output check (oracle::accept) of convarith_bench_lib.
//
// The parser only turns text into a ProblemDesc; ConvProblem::make() validates it, so a row that
// breaks the arithmetic fails with the library's own message plus the file position.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "../cli/io.hpp"
#include "bench.hpp"
#include "reference/reference.hpp"

#ifndef CONVARITH_SOURCE_DIR
#define CONVARITH_SOURCE_DIR "."
#endif

namespace convarith::bench {
namespace {

// bench/layers.csv is a few KiB; anything past this is not a layer file.
constexpr uint64_t kMaxLayerFileBytes = uint64_t{16} << 20;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(trim(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start)));
    if (pos == std::string_view::npos)
      break;
    start = pos + 1;
  }
  return out;
}

Result<int64_t> parse_int(std::string_view text, const char* column) {
  std::string s(text);
  if (s.empty())
    return invalid_argument(std::string("column ") + column + ": empty");
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end == s.c_str() || *end != '\0')
    return invalid_argument(std::string("column ") + column + ": '" + s + "' is not an integer");
  return static_cast<int64_t>(v);
}

// "3x3" -> {3, 3}; the number of entries is the spatial rank.
Result<std::vector<int64_t>> parse_axes(std::string_view text, const char* column) {
  std::vector<int64_t> out;
  for (std::string_view part : split(text, 'x')) {
    Result<int64_t> v = parse_int(part, column);
    if (!v)
      return v.status();
    out.push_back(*v);
  }
  return out;
}

Result<Op> parse_op(std::string_view s) {
  if (s == "conv")
    return Op::kConv;
  if (s == "conv_transpose")
    return Op::kConvTranspose;
  if (s == "max_pool")
    return Op::kMaxPool;
  if (s == "avg_pool")
    return Op::kAvgPool;
  return invalid_argument("column op: '" + std::string(s) + "' is not conv, conv_transpose, max_pool or avg_pool");
}

} // namespace

bool Layer::in_suite(std::string_view suite) const {
  return std::find(suites.begin(), suites.end(), suite) != suites.end();
}

std::string default_layers_path() {
  if (const char* env = std::getenv("CONVARITH_BENCH_LAYERS"); env != nullptr && *env != '\0')
    return env;
  return std::string(CONVARITH_SOURCE_DIR) + "/bench/layers.csv";
}

Result<Layer> parse_layer_row(std::string_view row, int line) {
  // 18 columns; a row of the older 16-column form (no dtype and layout) is f32 NCHW.
  constexpr size_t kColumns = 18, kLegacyColumns = 16;
  std::vector<std::string_view> f = split(row, ',');
  if (f.size() != kColumns && f.size() != kLegacyColumns)
    return invalid_argument("expected " + std::to_string(kColumns) + " comma-separated columns (or " +
                            std::to_string(kLegacyColumns) + " without dtype and layout), found " +
                            std::to_string(f.size()));
  Layer layer;
  layer.line = line;
  layer.id = std::string(f[0]);
  layer.network = std::string(f[1]);
  layer.layer = std::string(f[2]);
  if (layer.id.empty())
    return invalid_argument("column id: empty");
  for (std::string_view s : split(f[3], '|'))
    if (!s.empty())
      layer.suites.emplace_back(s);

  ProblemDesc d;
  Result<Op> op = parse_op(f[4]);
  if (!op)
    return op.status();
  d.op = *op;
  const char* names[] = {"n", "c", "k", "groups"};
  int64_t* fields[] = {&d.n, &d.c, &d.k, &d.groups};
  for (int j = 0; j < 4; ++j) {
    Result<int64_t> v = parse_int(f[5 + static_cast<size_t>(j)], names[j]);
    if (!v)
      return v.status();
    *fields[j] = *v;
  }
  if (is_pool(d.op))
    d.k = d.c;

  Result<std::vector<int64_t>> input = parse_axes(f[9], "input");
  if (!input)
    return input.status();
  const size_t rank = input->size();
  if (rank < 1 || rank > static_cast<size_t>(kMaxSpatialRank))
    return invalid_argument("column input: rank " + std::to_string(rank) + " is not 1..3");
  d.rank = static_cast<int>(rank);
  struct AxisColumn {
    const char* name;
    size_t index;
    std::array<int64_t, kMaxSpatialRank>* dest;
  };
  const AxisColumn columns[] = {{"kernel", 10, &d.kernel},
                                {"stride", 11, &d.stride},
                                {"dilation", 13, &d.dilation},
                                {"output_padding", 14, &d.output_padding}};
  for (size_t j = 0; j < rank; ++j)
    d.input[j] = (*input)[j];
  for (const AxisColumn& col : columns) {
    Result<std::vector<int64_t>> v = parse_axes(f[col.index], col.name);
    if (!v)
      return v.status();
    if (v->size() != rank)
      return invalid_argument(std::string("column ") + col.name + ": " + std::to_string(v->size()) +
                              " entries for a rank-" + std::to_string(rank) + " input");
    for (size_t j = 0; j < rank; ++j)
      (*col.dest)[j] = (*v)[j];
  }
  std::vector<std::string_view> pads = split(f[12], 'x');
  if (pads.size() != rank)
    return invalid_argument("column pad: " + std::to_string(pads.size()) + " entries for a rank-" +
                            std::to_string(rank) + " input");
  for (size_t j = 0; j < rank; ++j) {
    std::vector<std::string_view> lohi = split(pads[j], ':');
    if (lohi.size() > 2)
      return invalid_argument("column pad: '" + std::string(pads[j]) + "' is not p or lo:hi");
    Result<int64_t> lo = parse_int(lohi[0], "pad");
    if (!lo)
      return lo.status();
    Result<int64_t> hi = lohi.size() == 2 ? parse_int(lohi[1], "pad") : lo;
    if (!hi)
      return hi.status();
    d.pad_lo[j] = *lo;
    d.pad_hi[j] = *hi;
  }
  for (std::string_view flag : split(f[15], ' ')) {
    if (flag.empty())
      continue;
    if (flag == "ceil") {
      d.ceil_mode = true;
    } else if (flag == "include_pad") {
      d.count_include_pad = true;
    } else {
      return invalid_argument("column flags: unknown flag '" + std::string(flag) + "' (ceil, include_pad)");
    }
  }
  if (f.size() == kColumns) {
    Result<DataType> dtype = parse_dtype(f[16]);
    if (!dtype)
      return invalid_argument("column dtype: '" + std::string(f[16]) + "' is not f32, f16 or bf16");
    d.dtype = *dtype;
    Result<Layout> layout = parse_layout(f[17]);
    if (!layout)
      return invalid_argument("column layout: '" + std::string(f[17]) + "' is not NCHW or NHWC");
    d.layout = *layout;
  }
  Result<ConvProblem> p = ConvProblem::make(d);
  if (!p)
    return Status(p.status().code(), "layer " + layer.id + ": " + p.status().message());
  layer.problem = *p;
  return layer;
}

Result<std::vector<Layer>> load_layers(const std::string& path) {
  // A regular file of bounded size: a device or FIFO given as the layer file is refused, not read
  // without end.
  Result<std::string> text = cli::read_regular_file(path, kMaxLayerFileBytes, "the layer file");
  if (!text)
    return Status(text.status().code(), text.status().message() + " (set CONVARITH_BENCH_LAYERS or --layers)");
  std::istringstream in(*text);
  std::vector<Layer> layers;
  std::string row;
  int line = 0;
  while (std::getline(in, row)) {
    ++line;
    std::string_view t = trim(row);
    if (t.empty() || t.front() == '#')
      continue;
    Result<Layer> layer = parse_layer_row(t, line);
    if (!layer)
      return Status(layer.status().code(), path + ":" + std::to_string(line) + ": " + layer.status().message());
    for (const Layer& other : layers)
      if (other.id == layer->id)
        return invalid_argument(path + ":" + std::to_string(line) + ": duplicate id '" + other.id +
                                "' (first on line " + std::to_string(other.line) + ")");
    layers.push_back(std::move(layer).value());
  }
  if (layers.empty())
    return invalid_argument("the layer file '" + path + "' has no rows");
  return layers;
}

std::vector<std::string> suite_names(const std::vector<Layer>& layers) {
  std::vector<std::string> names;
  for (const Layer& l : layers)
    for (const std::string& s : l.suites)
      if (std::find(names.begin(), names.end(), s) == names.end())
        names.push_back(s);
  return names;
}

Result<std::vector<Layer>> load_suite(const std::string& path, std::string_view suite) {
  Result<std::vector<Layer>> all = load_layers(path);
  if (!all)
    return all.status();
  std::vector<Layer> out;
  for (const Layer& l : *all)
    if (l.in_suite(suite))
      out.push_back(l);
  if (out.empty()) {
    std::string known;
    for (const std::string& s : suite_names(*all))
      known += (known.empty() ? "" : ", ") + s;
    return invalid_argument("no suite '" + std::string(suite) + "' in '" + path + "' (suites: " + known + ")");
  }
  return out;
}

CheckResult check_output(const ConvProblem& p, const void* got, const std::vector<double>& want,
                         const std::vector<double>& magnitude, double factor) {
  CheckResult r;
  const std::vector<double> values = oracle::to_double(p, TensorId::kY, got);
  const oracle::Verdict v = oracle::accept(p, values, want, magnitude, factor);
  r.ok = v.pass;
  r.max_abs = v.max_abs;
  r.max_rel = v.max_rel;
  r.bad = v.bad;
  std::ostringstream m;
  if (r.ok) {
    m << "max rel err " << r.max_rel << " (bound " << v.bound_factor << " x magnitude, worst error/bound "
      << v.worst_ratio << ")";
  } else {
    const size_t i = static_cast<size_t>(v.first_bad);
    m << r.bad << " of " << want.size() << " elements outside the acceptance bound (oracle::accept, factor " << factor
      << ", " << dtype_name(p.dtype(TensorId::kY)) << " output)";
    if (i < values.size() && i < want.size() && i < magnitude.size())
      m << "; first at flat index " << v.first_bad << ": got " << values[i] << ", want " << want[i] << " (magnitude "
        << magnitude[i] << ")";
  }
  r.message = m.str();
  return r;
}

} // namespace convarith::bench
