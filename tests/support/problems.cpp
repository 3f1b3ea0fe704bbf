// tests/support/problems.cpp — the named problem lists shared by tests and bench.
//
// Every list is built with ConvProblem::make (through must_make), so a list entry is always a
// problem the arithmetic accepts; the sizes the comments quote are checked by test_reference.
#include <algorithm>
#include <array>
#include <cstdint>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "support/support.hpp"

namespace convarith::test {
namespace {

using Axes = std::vector<int64_t>;

// Copies a per-axis list into a desc array; one value is broadcast to every axis, an empty list
// keeps the default.
void set_axes(std::array<int64_t, kMaxSpatialRank>& field, const Axes& values, int rank) {
  if (values.empty())
    return;
  for (int j = 0; j < rank; ++j)
    field[static_cast<size_t>(j)] = values.size() == 1 ? values[0] : values[static_cast<size_t>(j)];
}

struct Spec {
  Op op = Op::kConv;
  int64_t n = 1, c = 1, k = 1, groups = 1;
  Axes input, kernel, stride, pad_lo, pad_hi, dilation, output_padding;
  bool ceil_mode = false;
  bool count_include_pad = false;
  PadMode pad_mode = PadMode::kExplicit;
};

ProblemDesc to_desc(const Spec& s) {
  ProblemDesc d;
  d.op = s.op;
  d.n = s.n;
  d.c = s.c;
  d.k = is_pool(s.op) ? s.c : s.k;
  d.groups = s.groups;
  d.rank = static_cast<int>(s.input.size());
  set_axes(d.input, s.input, d.rank);
  set_axes(d.kernel, s.kernel, d.rank);
  set_axes(d.stride, s.stride, d.rank);
  set_axes(d.pad_lo, s.pad_lo, d.rank);
  set_axes(d.pad_hi, s.pad_hi, d.rank);
  set_axes(d.dilation, s.dilation, d.rank);
  set_axes(d.output_padding, s.output_padding, d.rank);
  d.ceil_mode = s.ceil_mode;
  d.count_include_pad = s.count_include_pad;
  d.pad_mode = s.pad_mode;
  return d;
}

NamedProblem named(std::string name, const Spec& s) {
  return {std::move(name), must_make(to_desc(s))};
}

// Symmetric explicit padding p on every axis.
Spec with_pad(Spec s, const Axes& p) {
  s.pad_lo = p;
  s.pad_hi = p;
  return s;
}

// Multiply-accumulates (or window taps for pooling) of a problem: the cost the size cap limits.
int64_t work(const ConvProblem& p) {
  if (is_pool(p.op()))
    return p.n() * p.c() * p.kernel_spatial() * p.out_spatial();
  if (p.op() == Op::kConvTranspose)
    return p.n() * p.c() * (p.k() / p.groups()) * p.kernel_spatial() * p.in_spatial();
  return p.n() * p.k() * (p.c() / p.groups()) * p.kernel_spatial() * p.out_spatial();
}

} // namespace

std::vector<NamedProblem> paper_problems() {
  // (i, k, s, p) -> o for the conv_arithmetic figures; each transposed figure is the transposed
  // convolution from the conv's output size back to its input size.
  struct Figure {
    const char* name;
    int64_t i, k, s, p;
  };
  const Figure figures[] = {
      {"no_padding_no_strides", 4, 3, 1, 0},   {"arbitrary_padding_no_strides", 5, 4, 1, 2},
      {"same_padding_no_strides", 5, 3, 1, 1}, {"full_padding_no_strides", 5, 3, 1, 2},
      {"no_padding_strides", 5, 3, 2, 0},      {"padding_strides", 5, 3, 2, 1},
      {"padding_strides_odd", 6, 3, 2, 1},
  };
  // The conv outputs of the figures above, as the paper draws them (checked in test_reference).
  const int64_t conv_out[] = {2, 6, 5, 7, 2, 3, 3};
  std::vector<NamedProblem> out;
  for (size_t f = 0; f < std::size(figures); ++f) {
    const Figure& fig = figures[f];
    Spec conv;
    conv.input = {fig.i, fig.i};
    conv.kernel = {fig.k};
    conv.stride = {fig.s};
    conv = with_pad(conv, {fig.p});
    out.push_back(named(fig.name, conv));

    Spec tr = conv;
    tr.op = Op::kConvTranspose;
    tr.input = {conv_out[f], conv_out[f]};
    // Output padding recovers the input row the conv's floor dropped (only padding_strides_odd).
    const int64_t a = (fig.i + 2 * fig.p - fig.k) % fig.s;
    tr.output_padding = {a};
    out.push_back(named(std::string(fig.name) + "_transposed", tr));
  }
  Spec dil;
  dil.input = {7, 7};
  dil.kernel = {3};
  dil.dilation = {2};
  out.push_back(named("dilation", dil));
  return out;
}

std::vector<NamedProblem> smoke_problems() {
  std::vector<NamedProblem> out;
  Spec s;
  s.n = 2, s.c = 3, s.k = 4, s.input = {8, 8}, s.kernel = {3};
  out.push_back(named("conv_3x3_pad1", with_pad(s, {1})));
  s = Spec{};
  s.c = 4, s.k = 6, s.input = {9, 7}, s.kernel = {3, 2}, s.stride = {2};
  out.push_back(named("conv_3x2_stride2", with_pad(s, {1, 0})));
  s = Spec{};
  s.c = 4, s.k = 4, s.groups = 2, s.input = {6, 6}, s.kernel = {3};
  out.push_back(named("conv_groups2", s));

  s = Spec{};
  s.op = Op::kConvTranspose, s.n = 2, s.c = 3, s.k = 4, s.input = {4, 5}, s.kernel = {3}, s.stride = {2};
  s.output_padding = {1};
  out.push_back(named("conv_transpose_3x3_stride2", with_pad(s, {1})));
  s = Spec{};
  s.op = Op::kConvTranspose, s.c = 2, s.k = 3, s.input = {5, 5}, s.kernel = {3};
  out.push_back(named("conv_transpose_3x3", s));

  s = Spec{};
  s.op = Op::kMaxPool, s.n = 2, s.c = 3, s.input = {8, 8}, s.kernel = {2}, s.stride = {2};
  out.push_back(named("max_pool_2x2_stride2", s));
  s = Spec{};
  s.op = Op::kMaxPool, s.c = 2, s.input = {7, 7}, s.kernel = {3}, s.stride = {2};
  out.push_back(named("max_pool_3x3_stride2_pad1", with_pad(s, {1})));

  s = Spec{};
  s.op = Op::kAvgPool, s.n = 2, s.c = 3, s.input = {8, 6}, s.kernel = {2}, s.stride = {2};
  out.push_back(named("avg_pool_2x2_stride2", s));
  s = Spec{};
  s.op = Op::kAvgPool, s.c = 2, s.input = {5, 6}, s.kernel = {3};
  out.push_back(named("avg_pool_3x3_pad1", with_pad(s, {1})));
  return out;
}

std::vector<NamedProblem> edge_problems() {
  std::vector<NamedProblem> out;
  auto add = [&](const std::string& name, const Spec& s) { out.push_back(named(name, s)); };
  Spec s;

  // ---- conv ----
  s = Spec{}, s.n = 2, s.c = 5, s.k = 7, s.input = {6, 5}, s.kernel = {1};
  add("conv_1x1", s);
  s = Spec{}, s.c = 2, s.k = 3, s.input = {2, 3}, s.kernel = {5};
  add("conv_kernel_larger_than_input", with_pad(s, {2}));
  s = Spec{}, s.c = 2, s.k = 3, s.input = {9, 10}, s.kernel = {2}, s.stride = {3, 4};
  add("conv_stride_gt_kernel", s);
  s = Spec{}, s.c = 2, s.k = 3, s.input = {9, 8}, s.kernel = {3}, s.dilation = {2};
  add("conv_dilation2", with_pad(s, {2}));
  s = Spec{}, s.c = 2, s.k = 2, s.input = {11, 10}, s.kernel = {3, 2}, s.dilation = {3}, s.stride = {2};
  add("conv_dilation3_stride2", s);
  s = Spec{}, s.c = 3, s.k = 5, s.input = {13, 11}, s.kernel = {3, 5};
  add("conv_prime_sizes", with_pad(s, {1, 2}));
  s = Spec{}, s.c = 1, s.k = 4, s.input = {7, 7}, s.kernel = {3};
  add("conv_c1", s);
  s = Spec{}, s.c = 3, s.k = 7, s.input = {6, 6}, s.kernel = {3};
  add("conv_k7", with_pad(s, {1}));
  s = Spec{}, s.c = 2, s.k = 33, s.input = {5, 5}, s.kernel = {3};
  add("conv_k33", s);
  s = Spec{}, s.c = 2, s.k = 3, s.input = {6, 7}, s.kernel = {3}, s.pad_lo = {0, 2}, s.pad_hi = {2, 1};
  add("conv_asymmetric_padding", s);
  s = Spec{}, s.n = 2, s.c = 6, s.k = 9, s.groups = 3, s.input = {5, 5}, s.kernel = {3};
  add("conv_groups3", with_pad(s, {1}));
  s = Spec{}, s.c = 8, s.k = 8, s.groups = 8, s.input = {6, 6}, s.kernel = {3}, s.stride = {2};
  add("conv_depthwise", with_pad(s, {1}));
  s = Spec{}, s.c = 4, s.k = 8, s.groups = 4, s.input = {5, 5}, s.kernel = {3};
  add("conv_depthwise_multiplier2", s);
  s = Spec{}, s.n = 2, s.c = 3, s.k = 4, s.input = {17}, s.kernel = {4}, s.stride = {2};
  add("conv_rank1", with_pad(s, {1}));
  s = Spec{}, s.c = 2, s.k = 3, s.input = {5, 6, 4}, s.kernel = {3, 3, 2}, s.stride = {1, 2, 1};
  add("conv_rank3", with_pad(s, {1, 0, 1}));
  s = Spec{}, s.n = 0, s.c = 3, s.k = 4, s.input = {5, 5}, s.kernel = {3};
  add("conv_n0", s);
  s = Spec{}, s.c = 2, s.k = 3, s.input = {7, 8}, s.kernel = {3}, s.stride = {2}, s.pad_mode = PadMode::kSameUpper;
  add("conv_same_upper_stride2", s);
  s = Spec{}, s.c = 2, s.k = 2, s.input = {4, 4}, s.kernel = {3}, s.pad_mode = PadMode::kFull;
  add("conv_full_padding", s);

  // ---- conv_transpose ----
  s = Spec{}, s.op = Op::kConvTranspose, s.n = 2, s.c = 5, s.k = 7, s.input = {4, 3}, s.kernel = {1};
  add("conv_transpose_1x1", s);
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 3, s.k = 2, s.input = {3, 4}, s.kernel = {1}, s.stride = {2};
  s.output_padding = {1};
  add("conv_transpose_1x1_stride2_outpad1", s);
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 2, s.k = 3, s.input = {4, 5}, s.kernel = {2}, s.stride = {3};
  add("conv_transpose_stride_gt_kernel", s);
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 2, s.k = 3, s.input = {2, 3}, s.kernel = {5};
  add("conv_transpose_kernel_larger_than_input", with_pad(s, {1}));
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 2, s.k = 3, s.input = {4, 4}, s.kernel = {3}, s.stride = {2};
  s.output_padding = {1, 0};
  add("conv_transpose_output_padding", with_pad(s, {1}));
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 2, s.k = 2, s.input = {6, 5}, s.kernel = {3}, s.stride = {2};
  add("conv_transpose_cropping_pads", with_pad(s, {3, 2}));
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 6, s.k = 4, s.groups = 2, s.input = {4, 4}, s.kernel = {3};
  s.stride = {2};
  add("conv_transpose_groups2", with_pad(s, {1}));
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 4, s.k = 4, s.groups = 4, s.input = {5, 5}, s.kernel = {3};
  s.stride = {2}, s.output_padding = {1};
  add("conv_transpose_depthwise", with_pad(s, {1}));
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 2, s.k = 3, s.input = {5, 4}, s.kernel = {3}, s.dilation = {2};
  s.output_padding = {1, 0};
  add("conv_transpose_dilation2_outpad1", s);
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 2, s.k = 2, s.input = {4, 5}, s.kernel = {2, 3}, s.dilation = {3};
  s.stride = {2};
  add("conv_transpose_dilation3_stride2", with_pad(s, {1}));
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 3, s.k = 7, s.input = {5, 5}, s.kernel = {3}, s.stride = {2};
  add("conv_transpose_k7", s);
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 1, s.k = 33, s.input = {3, 3}, s.kernel = {3};
  add("conv_transpose_c1_k33", s);
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 2, s.k = 3, s.input = {5, 7}, s.kernel = {3}, s.stride = {2};
  s.pad_lo = {0, 2}, s.pad_hi = {1, 0};
  add("conv_transpose_asymmetric_padding", s);
  s = Spec{}, s.op = Op::kConvTranspose, s.n = 2, s.c = 3, s.k = 2, s.input = {7}, s.kernel = {4}, s.stride = {3};
  s.output_padding = {2};
  add("conv_transpose_rank1", with_pad(s, {1}));
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 2, s.k = 2, s.input = {3, 4, 3}, s.kernel = {2, 3, 3};
  s.stride = {2, 1, 2};
  add("conv_transpose_rank3", with_pad(s, {0, 1, 1}));
  s = Spec{}, s.op = Op::kConvTranspose, s.n = 0, s.c = 3, s.k = 2, s.input = {4, 4}, s.kernel = {3}, s.stride = {2};
  add("conv_transpose_n0", s);

  // ---- pooling ----
  for (Op op : {Op::kMaxPool, Op::kAvgPool}) {
    const std::string pre = op_name(op);
    s = Spec{}, s.op = op, s.n = 2, s.c = 3, s.input = {6, 7}, s.kernel = {1};
    add(pre + "_1x1", s);
    s = Spec{}, s.op = op, s.c = 2, s.input = {2, 3}, s.kernel = {3};
    add(pre + "_window_larger_than_input", with_pad(s, {1}));
    s = Spec{}, s.op = op, s.c = 2, s.input = {9, 11}, s.kernel = {2}, s.stride = {3, 4};
    add(pre + "_stride_gt_window", s);
    s = Spec{}, s.op = op, s.c = 2, s.input = {6, 8}, s.kernel = {3}, s.stride = {2}, s.ceil_mode = true;
    add(pre + "_ceil_mode", s);
    s = Spec{}, s.op = op, s.c = 2, s.input = {9, 8}, s.kernel = {3}, s.dilation = {2};
    add(pre + "_dilation2", with_pad(s, {1}));
    s = Spec{}, s.op = op, s.c = 2, s.input = {11, 10}, s.kernel = {2, 3}, s.dilation = {3}, s.stride = {2};
    add(pre + "_dilation3_stride2", s);
    s = Spec{}, s.op = op, s.c = 1, s.input = {13, 11}, s.kernel = {3, 2}, s.stride = {2, 3};
    add(pre + "_c1_prime_sizes", s);
    s = Spec{}, s.op = op, s.c = 2, s.input = {7, 6}, s.kernel = {3}, s.stride = {2};
    s.pad_lo = {1, 0}, s.pad_hi = {0, 2};
    add(pre + "_asymmetric_padding", s);
    s = Spec{}, s.op = op, s.n = 2, s.c = 3, s.input = {15}, s.kernel = {4}, s.stride = {3};
    add(pre + "_rank1", with_pad(s, {1}));
    s = Spec{}, s.op = op, s.c = 2, s.input = {5, 6, 4}, s.kernel = {3, 2, 2}, s.stride = {2};
    add(pre + "_rank3", with_pad(s, {1, 0, 1}));
    s = Spec{}, s.op = op, s.n = 0, s.c = 3, s.input = {5, 5}, s.kernel = {2}, s.stride = {2};
    add(pre + "_n0", s);
  }
  // count_include_pad both ways, with padding and with a ceil-mode window that runs past the
  // padded extent (those taps never count).
  for (bool include : {false, true}) {
    const std::string suffix = include ? "_include_pad" : "_exclude_pad";
    s = Spec{}, s.op = Op::kAvgPool, s.c = 2, s.input = {5, 5}, s.kernel = {3}, s.stride = {2};
    s.count_include_pad = include;
    add("avg_pool_pad1" + suffix, with_pad(s, {1}));
    s.input = {6, 6}, s.ceil_mode = true;
    add("avg_pool_pad1_ceil_mode" + suffix, with_pad(s, {1}));
  }
  return out;
}

std::vector<NamedProblem> index64_problems() {
  constexpr int64_t kBig = int64_t{1} << 31;
  std::vector<NamedProblem> out;
  auto add = [&](const std::string& name, const Spec& sp) { out.push_back(named(name, sp)); };
  Spec s;
  s = Spec{}, s.c = 2, s.k = 3, s.input = {3, 5}, s.kernel = {3}, s.stride = {kBig, 1};
  add("conv_stride_2to31", with_pad(s, {1}));
  // H: o = 2, and output row 1 reads input row 1 * 2^31 - 2^31 = 0: a real tap past a 2^31 offset.
  s = Spec{}, s.c = 2, s.k = 2, s.input = {1, 4}, s.kernel = {1, 3}, s.stride = {kBig, 1};
  s.pad_lo = {kBig, 1}, s.pad_hi = {0, 1};
  add("conv_pad_2to31_tap_after_offset", s);
  // The stride on D leaves the H x W tile small, so the tiled kernel runs it too.
  s = Spec{}, s.c = 3, s.k = 5, s.input = {1, 6, 7}, s.kernel = {1, 3, 3}, s.stride = {kBig, 1, 1};
  s.pad_lo = {0, 1, 1}, s.pad_hi = {0, 1, 1};
  add("conv3d_stride_2to31_d", s);
  // Depthwise (groups = C, multiplier 2), the tap past the 2^31 offset as above: the depthwise row's 64-bit path.
  s = Spec{}, s.c = 3, s.k = 6, s.groups = 3, s.input = {1, 9}, s.kernel = {1, 3}, s.stride = {kBig, 1};
  s.pad_lo = {kBig, 1}, s.pad_hi = {0, 1};
  add("depthwise_pad_2to31_tap_after_offset", s);
  s = Spec{}, s.op = Op::kConvTranspose, s.c = 2, s.k = 3, s.input = {1, 4}, s.kernel = {1, 3}, s.stride = {kBig, 2};
  add("conv_transpose_stride_2to31", s);
  s = Spec{}, s.op = Op::kMaxPool, s.c = 2, s.input = {1, 6}, s.kernel = {1, 2}, s.stride = {kBig, 2};
  add("max_pool_stride_2to31", s);
  s = Spec{}, s.op = Op::kAvgPool, s.c = 2, s.input = {2, 6}, s.kernel = {2, 3}, s.stride = {kBig, 1};
  s.pad_lo = {0, 1}, s.pad_hi = {0, 1}, s.count_include_pad = true;
  add("avg_pool_stride_2to31", s);
  return out;
}

std::vector<NamedProblem> random_problems(uint64_t seed, int count) {
  std::mt19937_64 gen(seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(gen); };
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0.0, 1.0)(gen) < p; };
  constexpr int64_t kMaxWork = 100000;
  constexpr int kMaxTries = 10000;
  const Op ops[] = {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool};
  const PadMode modes[] = {PadMode::kValid, PadMode::kSameUpper, PadMode::kSameLower, PadMode::kHalf, PadMode::kFull};

  std::vector<NamedProblem> out;
  for (int idx = 0; idx < count; ++idx) {
    // Ops in turn so that even a short list holds every op; everything else is drawn.
    const Op op = ops[idx % 4];
    bool found = false;
    for (int attempt = 0; attempt < kMaxTries && !found; ++attempt) {
      ProblemDesc d;
      d.op = op;
      d.rank = static_cast<int>(uniform(1, 3));
      d.n = chance(0.05) ? 0 : uniform(1, 2);
      if (is_pool(op)) {
        d.c = uniform(1, 4);
        d.k = d.c;
      } else {
        const int64_t g = chance(0.3) ? uniform(2, 4) : 1;
        d.groups = g;
        if (chance(0.15)) {
          d.c = d.k = g; // depthwise
        } else {
          // Mostly a few channels per group; sometimes enough to cross a kernel's channel tile.
          const bool wide = chance(0.2);
          d.c = g * uniform(1, wide ? 12 : 3);
          d.k = g * uniform(1, wide ? 24 : 4);
        }
      }
      // Sometimes large enough that an output plane spans several pixel tiles.
      const bool large = chance(0.2);
      const int64_t max_i = d.rank == 1 ? (large ? 300 : 24) : d.rank == 2 ? (large ? 24 : 10) : (large ? 9 : 6);
      for (size_t j = 0; j < static_cast<size_t>(d.rank); ++j) {
        d.input[j] = uniform(1, max_i);
        d.kernel[j] = uniform(1, is_pool(op) ? 3 : 5);
        d.stride[j] = chance(0.5) ? 1 : uniform(2, 3);
        d.dilation[j] = chance(0.7) ? 1 : uniform(2, 3);
        const int64_t eff = effective_kernel(d.kernel[j], d.dilation[j]);
        // Transposed pads may exceed k'-1 (they crop); pooling pads must stay below k'.
        const int64_t max_pad = op == Op::kConvTranspose ? eff : eff - 1;
        d.pad_lo[j] = chance(0.4) ? 0 : uniform(0, max_pad);
        d.pad_hi[j] = chance(0.3) ? d.pad_lo[j] : uniform(0, max_pad);
        if (op == Op::kConvTranspose)
          d.output_padding[j] = uniform(0, std::max(d.stride[j], d.dilation[j]) - 1);
      }
      if (chance(0.15))
        d.pad_mode = modes[uniform(0, 4)];
      if (is_pool(op))
        d.ceil_mode = chance(0.5);
      if (op == Op::kAvgPool)
        d.count_include_pad = chance(0.5);

      Result<ConvProblem> made = ConvProblem::make(d);
      if (!made.is_ok())
        continue;
      if (op == Op::kConvTranspose && chance(0.15)) {
        // ONNX output_shape: ask for the size just made or one more, letting the library fit a and pads.
        ProblemDesc shaped = d;
        shaped.has_output_shape = true;
        for (int j = 0; j < d.rank; ++j)
          shaped.output_shape[static_cast<size_t>(j)] = made->out(j) + uniform(0, 1);
        Result<ConvProblem> reshaped = ConvProblem::make(shaped);
        if (reshaped.is_ok())
          made = reshaped;
      }
      if (work(*made) > kMaxWork || made->y_elements() > kMaxWork || made->x_elements() > kMaxWork)
        continue;
      out.push_back({param_name("random" + std::to_string(idx) + "_" + made->name()), made.value()});
      found = true;
    }
    if (!found)
      ADD_FAILURE() << "random_problems(seed " << seed << "): no valid " << op_name(op) << " problem after "
                    << kMaxTries << " tries";
  }
  return out;
}

} // namespace convarith::test
