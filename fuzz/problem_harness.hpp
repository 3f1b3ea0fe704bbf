// fuzz/problem_harness.hpp — the problem factory's fuzz harness, shared by fuzz/fuzz_problem.cpp
// (libFuzzer) and tests/test_bad_input.cpp (which replays tests/regressions/problem/ in the normal
// test build, under ASan/UBSan in .ci/sanitize.sh).
//
// decode_problem() turns bytes into a ProblemDesc with hostile values anywhere (negative, zero,
// huge, overflowing products, out-of-range enums and ranks). check_problem() runs the factory and
// the per-axis arithmetic on it and returns a description of the first broken invariant, or ""
// when all hold. Invariants are checked against an independent 128-bit evaluation of the
// formulas, so a wrapped 64-bit product or a formula typo shows up as a mismatch, not a pass.
// For tiny valid problems it also runs every algorithm that claims support (CPU rows through a
// Plan, kernel rows through the CPU kernel executor) on integer inputs and requires every output
// written, finite, and bitwise equal across algorithms (integer sums are exact in float32).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "fuzz_input.hpp"
#include "reference/reference.hpp"
#include "row.hpp"

namespace convarith::fuzz {

using Wide = __int128;

inline bool fits64(Wide v) {
  return v >= static_cast<Wide>(std::numeric_limits<int64_t>::min()) &&
         v <= static_cast<Wide>(std::numeric_limits<int64_t>::max());
}

inline ProblemDesc decode_problem(ByteReader& r) {
  ProblemDesc d;
  const uint8_t op_raw = r.u8();
  d.op = op_raw < 252 ? static_cast<Op>(op_raw % 4) : static_cast<Op>(op_raw); // 252..255: not an Op
  const uint8_t rank_raw = r.u8(1);
  d.rank = rank_raw < 240 ? 1 + rank_raw % 3 : static_cast<int>(rank_raw) - 244; // -4..11
  const uint8_t pad_raw = r.u8();
  d.pad_mode = pad_raw < 250 ? static_cast<PadMode>(pad_raw % 6) : static_cast<PadMode>(pad_raw);
  const uint8_t flags = r.u8();
  d.has_output_shape = (flags & 1) != 0;
  d.ceil_mode = (flags & 2) != 0;
  d.count_include_pad = (flags & 4) != 0;
  if ((flags & 0xC0) == 0xC0)
    d.dtype = static_cast<DataType>(1 + (flags & 7)); // not a DataType
  if ((flags & 0xC0) == 0x80)
    d.layout = static_cast<Layout>(1 + (flags & 7)); // not a Layout
  d.n = r.value(1);
  d.c = r.value(1);
  d.k = r.value(1);
  d.groups = r.value(1);
  for (size_t j = 0; j < static_cast<size_t>(kMaxSpatialRank); ++j) {
    d.input[j] = r.value(4);
    d.kernel[j] = r.value(1);
    d.stride[j] = r.value(1);
    d.pad_lo[j] = r.value(0);
    d.pad_hi[j] = r.value(0);
    d.dilation[j] = r.value(1);
    d.output_padding[j] = r.value(0);
    d.output_shape[j] = r.value(1);
  }
  return d;
}

namespace detail {

inline Wide eff_kernel(const AxisParams& a) {
  return static_cast<Wide>(a.d) * (a.k - 1) + 1;
}

inline Wide floor_div(Wide a, Wide b) {
  return a >= 0 ? a / b : -((-a + b - 1) / b);
}

// The expected output size from the formulas in DESIGN.md §1, evaluated in 128 bits.
inline Wide expected_out(Op op, const AxisParams& a, bool ceil_mode) {
  const Wide kp = eff_kernel(a);
  if (op == Op::kConvTranspose)
    return static_cast<Wide>(a.s) * (a.i - 1) + a.a + kp - a.p_lo - a.p_hi;
  const Wide span = static_cast<Wide>(a.i) + a.p_lo + a.p_hi - kp;
  if (!(is_pool(op) && ceil_mode))
    return floor_div(span, a.s) + 1;
  Wide o = floor_div(span + a.s - 1, a.s) + 1;
  if ((o - 1) * a.s >= static_cast<Wide>(a.i) + a.p_lo)
    --o; // the last window starts in the right padding
  return o;
}

inline std::string axis_str(const AxisParams& a) {
  std::ostringstream os;
  os << "{i=" << a.i << " k=" << a.k << " s=" << a.s << " p=" << a.p_lo << "+" << a.p_hi << " d=" << a.d << " a=" << a.a
     << "}";
  return os.str();
}

// Small nonzero integers: sums over the tiny problems run here are exact in float32.
inline std::vector<float> integer_data(int64_t count, int salt) {
  std::vector<float> v(static_cast<size_t>(count));
  for (size_t e = 0; e < v.size(); ++e) {
    const int m = static_cast<int>((e * 7 + static_cast<size_t>(salt) * 3) % 7); // 0..6
    v[e] = static_cast<float>(m < 3 ? m - 3 : m - 2);                            // -3..-1, 1..4
  }
  return v;
}

// A problem with at most 4096 elements per tensor needs far less scratch than this.
constexpr size_t kMaxTinyWorkspace = size_t{256} << 20;

// `v` (exactly representable: the small integers above) in `t`'s encoding, appended to `out`.
inline void append_exact(DataType t, float v, std::vector<unsigned char>* out) {
  uint32_t f = 0;
  std::memcpy(&f, &v, 4);
  if (t == DataType::kF32) {
    out->insert(out->end(), reinterpret_cast<const unsigned char*>(&f), reinterpret_cast<const unsigned char*>(&f) + 4);
    return;
  }
  uint16_t h = 0;
  if (t == DataType::kBF16) {
    h = static_cast<uint16_t>(f >> 16); // exact: these values have at most 3 significant bits
  } else if (v != 0.0f) {               // f16 of a normal value with at most 10 fraction bits
    const int e = std::ilogb(v);
    const auto frac = static_cast<uint32_t>(std::ldexp(std::fabs(v), -e) * 1024.0f) - 1024u;
    h = static_cast<uint16_t>((v < 0 ? 0x8000u : 0u) | (static_cast<uint32_t>(e + 15) << 10) | frac);
  }
  out->push_back(static_cast<unsigned char>(h & 0xFF));
  out->push_back(static_cast<unsigned char>(h >> 8));
}

// Tensor `id` of `p` filled with integer_data(salt) in its own dtype (memory order).
inline std::vector<unsigned char> integer_tensor(const ConvProblem& p, TensorId id, int salt) {
  const TensorDesc& t = p.tensor(id);
  std::vector<unsigned char> bytes;
  if (t.rank == 0)
    return bytes;
  for (float v : integer_data(t.elements, salt))
    append_exact(t.dtype, v, &bytes);
  return bytes;
}

// Every algorithm that claims `p` runs it; results must be complete, finite and agree bitwise.
inline std::string run_all_algorithms(const ConvProblem& p) {
  const std::vector<unsigned char> x = integer_tensor(p, TensorId::kX, 1);
  const std::vector<unsigned char> w = integer_tensor(p, TensorId::kW, 2);
  const std::vector<unsigned char> bias = integer_tensor(p, TensorId::kBias, 3);
  const bool exact = p.op() != Op::kAvgPool; // division may round differently per algorithm
  const size_t y_bytes = static_cast<size_t>(p.tensor(TensorId::kY).bytes());
  std::vector<unsigned char> first;
  std::string first_name;
  for (const Algorithm& alg : algorithm_table()) {
    if (!(alg.ops & op_bit(p.op())))
      continue;
    if (!alg.supports(p).is_ok())
      continue;
    if (alg.device == Device::kCuda || alg.run == nullptr)
      continue; // CPU rows, and the CUDA kernels on the emulated device
    Result<Plan> plan = Plan::create(p, alg.device, alg.name);
    if (!plan)
      return std::string("Plan::create(") + device_name(alg.device) + ", " + alg.name +
             ") failed although supports() is OK: " + plan.status().to_string();
    // The problems run here are tiny, or have no output at all (N = 0, whatever their spatial sizes):
    // either way a huge workspace is a sizing bug (cpu_gemm_col2im once asked 389 GB for an N = 0
    // problem: tests/regressions/problem/batch_zero_huge_workspace). Empty problems are not run.
    const size_t ws_bytes = plan->workspace_bytes();
    if (ws_bytes > kMaxTinyWorkspace)
      return std::string(alg.name) + ": workspace is " + std::to_string(ws_bytes) + " bytes for " + p.name() +
             (p.y_elements() == 0 ? ", which has no output to compute" : ", a tiny problem");
    if (p.y_elements() == 0)
      continue;
    std::vector<unsigned char> y(y_bytes, 0xFF); // all-ones: a NaN in every dtype
    std::vector<unsigned char> ws(ws_bytes + 1);
    Tensors t;
    t.x = x.data();
    t.w = w.empty() ? nullptr : w.data();
    t.bias = bias.empty() ? nullptr : bias.data();
    t.y = y.data();
    const Status st = plan->run(t, ws.data(), ws_bytes);
    if (!st.is_ok())
      return std::string(alg.name) + " failed on a problem it supports: " + st.to_string();
    const std::vector<double> yv = oracle::to_double(p, TensorId::kY, y.data());
    for (size_t e = 0; e < yv.size(); ++e) {
      if (!std::isfinite(yv[e])) {
        return std::string(alg.name) + ": y[" + std::to_string(e) + "] is " + std::to_string(yv[e]) +
               " (unwritten or not finite) for " + p.name();
      }
    }
    if (first_name.empty()) {
      first = y;
      first_name = alg.name;
    } else if (exact && first != y) {
      const std::vector<double> fv = oracle::to_double(p, TensorId::kY, first.data());
      size_t e = 0; // the first element whose value differs (or, for -0 and +0, whose bits differ)
      while (e + 1 < yv.size() && fv[e] == yv[e] && std::signbit(fv[e]) == std::signbit(yv[e]))
        ++e;
      return std::string(alg.name) + " and " + first_name + " disagree at y[" + std::to_string(e) +
             "]: " + std::to_string(yv[e]) + " vs " + std::to_string(fv[e]) + " for " + p.name();
    }
  }
  return "";
}

// suggest_axis_fix agrees with output_size, and each suggestion it makes is valid.
inline std::string check_fix(Op op, int j, const AxisParams& a, bool ceil_mode, bool valid) {
  const AxisFix f = suggest_axis_fix(op, j, a, ceil_mode);
  const std::string where = std::string(" for ") + op_name(op) + " " + axis_str(a);
  if (f.valid != valid)
    return "suggest_axis_fix's validity differs from output_size's" + where;
  if (valid)
    return "";
  if (f.changes.empty() || f.reason.empty())
    return "suggest_axis_fix gave no change or no reason" + where;
  if (f.has_padding) {
    AxisParams b = a;
    b.p_lo = f.padding.lo;
    b.p_hi = f.padding.hi;
    if (op == Op::kConvTranspose && b.a > f.a_max)
      b.a = f.a_max;
    if (op == Op::kConvTranspose && b.a < 0)
      b.a = 0;
    if (!output_size(op, j, b, ceil_mode))
      return "suggest_axis_fix's padding is invalid" + where;
  }
  if (f.min_input > 0) {
    AxisParams b = a;
    b.i = f.min_input;
    if (!output_size(op, j, b, ceil_mode))
      return "suggest_axis_fix's min_input is invalid" + where;
  }
  return "";
}

} // namespace detail

// The per-axis functions on their own (they are public API too). "" when every invariant holds.
inline std::string check_axis_functions(const ProblemDesc& d) {
  for (int j = 0; j < kMaxSpatialRank; ++j) {
    const size_t u = static_cast<size_t>(j);
    AxisParams a;
    a.i = d.input[u];
    a.k = d.kernel[u];
    a.s = d.stride[u];
    a.p_lo = d.pad_lo[u];
    a.p_hi = d.pad_hi[u];
    a.d = d.dilation[u];
    a.a = d.output_padding[u];
    for (int o = 0; o < 4; ++o) {
      const Op op = static_cast<Op>(o);
      const Result<int64_t> out = output_size(op, j, a, d.ceil_mode);
      const std::string fix = detail::check_fix(op, j, a, d.ceil_mode, out.is_ok());
      if (!fix.empty())
        return fix;
      if (!out) {
        if (out.status().message().empty())
          return std::string("output_size failed without a message");
        continue;
      }
      const Wide want = detail::expected_out(op, a, d.ceil_mode);
      if (want != out.value() || out.value() < 1) {
        return std::string("output_size(") + op_name(op) + ") " + detail::axis_str(a) + " = " +
               std::to_string(out.value()) + ", the formula gives " +
               (fits64(want) ? std::to_string(static_cast<int64_t>(want)) : std::string("> 64 bits"));
      }
      const RelationshipInfo info = classify_relationship(op, a, out.value(), d.ceil_mode);
      if (info.formula.empty() || info.name.empty())
        return "classify_relationship gave an empty formula or name";
      for (int m = 0; m < 6; ++m) {
        const PadMode mode = static_cast<PadMode>(m);
        const Result<Padding> pad = resolve_padding(op, j, mode, a);
        if (!pad)
          continue;
        if (pad->lo < 0 || pad->hi < 0)
          return "resolve_padding gave negative padding " + detail::axis_str(a);
        if (mode == PadMode::kExplicit && (pad->lo != a.p_lo || pad->hi != a.p_hi))
          return "resolve_padding(EXPLICIT) changed the padding";
      }
    }
    if (d.has_output_shape) {
      const Result<TransposeFit> fit = fit_transpose_output(j, a, d.output_shape[u], d.pad_mode);
      if (fit) {
        AxisParams b = a;
        b.a = fit->a;
        b.p_lo = fit->pad.lo;
        b.p_hi = fit->pad.hi;
        const Result<int64_t> o = conv_transpose_output_size(j, b);
        if (!o || o.value() != d.output_shape[u]) {
          return std::string("fit_transpose_output(") + std::to_string(d.output_shape[u]) + ") for " +
                 detail::axis_str(a) + " gave " + detail::axis_str(b) + " whose output is " +
                 (o ? std::to_string(o.value()) : o.status().to_string());
        }
      }
    }
  }
  return "";
}

// The factory and the problem's accessors. "" when every invariant holds.
inline std::string check_problem(const ProblemDesc& d, bool run_algorithms) {
  const Result<ConvProblem> made = ConvProblem::make(d);
  if (!made) {
    const Status& st = made.status();
    if (st.message().empty())
      return "ConvProblem::make failed with an empty message";
    if (st.code() != StatusCode::kInvalidArgument && st.code() != StatusCode::kOutOfRange &&
        st.code() != StatusCode::kNotSupported)
      return "ConvProblem::make failed with an unexpected code: " + st.to_string();
    return "";
  }
  const ConvProblem& p = made.value();
  const std::string where = " (" + p.name() + ")";
  if (p.name().empty())
    return "empty name()";
  if (p.rank() < 1 || p.rank() > kMaxSpatialRank || p.rank() != d.rank)
    return "bad rank" + where;
  if (p.op() != d.op)
    return "op changed" + where;
  if (p.n() < 0 || p.c() < 1 || p.k() < 1 || p.groups() < 1)
    return "a count is out of range" + where;
  if (is_pool(p.op())) {
    if (p.k() != p.c())
      return "pooling with K != C" + where;
  } else if (p.c() % p.groups() != 0 || p.k() % p.groups() != 0 || p.k() != d.k) {
    return "groups do not divide C and K" + where;
  }
  Wide in_sp = 1, out_sp = 1, ker_sp = 1;
  for (int j = 0; j < p.rank(); ++j) {
    const size_t u = static_cast<size_t>(j);
    const AxisParams& a = p.axis(j);
    const std::string ax = " axis " + std::to_string(j) + " " + detail::axis_str(a) + where;
    if (a.i != d.input[u] || a.k != d.kernel[u] || a.s != d.stride[u] || a.d != d.dilation[u])
      return "the axis does not hold the caller's i, k, s, d" + ax;
    if (a.i < 1 || a.k < 1 || a.s < 1 || a.d < 1 || a.p_lo < 0 || a.p_hi < 0)
      return "invalid axis accepted" + ax;
    if (d.pad_mode == PadMode::kExplicit && !d.has_output_shape && (a.p_lo != d.pad_lo[u] || a.p_hi != d.pad_hi[u]))
      return "explicit padding changed" + ax;
    if (p.op() == Op::kConvTranspose && (a.a < 0 || a.a >= std::max(a.s, a.d)))
      return "output padding outside [0, max(s, d))" + ax;
    if (is_pool(p.op()) && (a.p_lo >= detail::eff_kernel(a) || a.p_hi >= detail::eff_kernel(a)))
      return "pooling padding >= window" + ax;
    const int64_t o = p.out(j);
    if (o < 1)
      return "output size " + std::to_string(o) + " < 1" + ax;
    const Wide want = detail::expected_out(p.op(), a, p.ceil_mode());
    if (want != o)
      return "out() = " + std::to_string(o) + " disagrees with the formula" + ax;
    const Result<int64_t> again = output_size(p.op(), j, a, p.ceil_mode());
    if (!again || again.value() != o)
      return "output_size() disagrees with out()" + ax;
    if (p.op() == Op::kConvTranspose && d.has_output_shape && o != d.output_shape[u])
      return "output_shape " + std::to_string(d.output_shape[u]) + " not honoured: " + std::to_string(o) + ax;
    const bool same = d.pad_mode == PadMode::kSameUpper || d.pad_mode == PadMode::kSameLower;
    if (same && p.op() != Op::kConvTranspose && !p.ceil_mode() && o != (static_cast<Wide>(a.i) + a.s - 1) / a.s)
      return "SAME padding does not give ceil(i/s)" + ax;
    if (same && p.op() == Op::kConvTranspose && !d.has_output_shape && static_cast<Wide>(a.i) * a.s != o)
      return "SAME padding on a transposed conv does not give i*s" + ax;
    in_sp *= a.i;
    out_sp *= o;
    ker_sp *= a.k;
  }
  for (int j = 0; j < kMaxSpatialRank - p.rank(); ++j) {
    const AxisParams& a = p.axis3(j);
    if (a.i != 1 || a.k != 1 || a.s != 1 || a.d != 1 || a.p_lo != 0 || a.p_hi != 0 || p.out3(j) != 1)
      return "leading axis3(" + std::to_string(j) + ") is not a unit axis" + where;
  }
  if (in_sp != p.in_spatial() || out_sp != p.out_spatial() || ker_sp != p.kernel_spatial())
    return "spatial products disagree" + where;
  const Wide xe = static_cast<Wide>(p.n()) * p.c() * in_sp;
  const Wide ye = static_cast<Wide>(p.n()) * p.k() * out_sp;
  Wide we = 0;
  if (p.op() == Op::kConv)
    we = static_cast<Wide>(p.k()) * (p.c() / p.groups()) * ker_sp;
  if (p.op() == Op::kConvTranspose)
    we = static_cast<Wide>(p.c()) * (p.k() / p.groups()) * ker_sp;
  if (xe != p.x_elements() || ye != p.y_elements() || we != p.w_elements()) {
    return "element counts x=" + std::to_string(p.x_elements()) + " w=" + std::to_string(p.w_elements()) +
           " y=" + std::to_string(p.y_elements()) + " disagree with the shapes" + where;
  }
  const auto product = [](const std::vector<int64_t>& shape) {
    Wide v = 1;
    for (int64_t e : shape)
      v *= e;
    return v;
  };
  const size_t dims = static_cast<size_t>(p.rank()) + 2;
  if (p.x_shape().size() != dims || p.y_shape().size() != dims || product(p.x_shape()) != xe ||
      product(p.y_shape()) != ye)
    return "x_shape()/y_shape() disagree with the element counts" + where;
  if (is_pool(p.op()) ? !p.w_shape().empty() : (p.w_shape().size() != dims || product(p.w_shape()) != we))
    return "w_shape() disagrees with w_elements()" + where;
  if (p.bias_elements() != (is_pool(p.op()) ? 0 : p.k()))
    return "bias_elements() is wrong" + where;
  // Bytes from the declared element types (f32 4, f16/bf16 2), z only with a residual term.
  const auto esize = [&](const std::optional<DataType>& t) -> Wide {
    return t.value_or(d.dtype) == DataType::kF32 ? 4 : 2;
  };
  const Wide want_bytes = esize(d.x_dtype) * xe + esize(d.w_dtype) * we + esize(d.y_dtype) * ye +
                          (d.epilogue.has_residual() && !is_pool(p.op()) ? esize(d.z_dtype) * ye : 0);
  if (static_cast<Wide>(p.min_bytes()) != want_bytes)
    return "min_bytes() = " + std::to_string(p.min_bytes()) + " is not the declared element sizes times x, w, z and y" +
           where;
  const double f = p.flops();
  long double want_f = 0;
  if (p.op() == Op::kConv)
    want_f = 2.0L * p.n() * p.k() * (p.c() / p.groups()) * static_cast<long double>(ker_sp) * p.out_spatial();
  else if (p.op() == Op::kConvTranspose)
    want_f = 2.0L * p.n() * p.c() * (p.k() / p.groups()) * static_cast<long double>(ker_sp) * p.in_spatial();
  else
    want_f = static_cast<long double>(p.n()) * p.c() * static_cast<long double>(ker_sp) * p.out_spatial();
  if (!std::isfinite(f) || f < 0 || std::fabs(static_cast<long double>(f) - want_f) > 1e-9L * want_f)
    return "flops() = " + std::to_string(f) + " is not the nominal count" + where;
  const Result<ConvProblem> again = ConvProblem::make(p.resolved());
  if (!again)
    return "make(resolved()) failed: " + again.status().to_string() + where;
  if (again->name() != p.name() || again->y_elements() != p.y_elements() || again->x_elements() != p.x_elements())
    return "make(resolved()) is a different problem: " + again->name() + where;
  if (!run_algorithms)
    return "";
  if (p.x_elements() > 4096 || p.w_elements() > 4096 || p.y_elements() > 4096 || p.flops() > 2e5)
    return "";
  return detail::run_all_algorithms(p);
}

// The whole target: bytes in, "" or the broken invariant out.
inline std::string check_problem_bytes(const uint8_t* data, size_t size, bool run_algorithms = true) {
  ByteReader r(data, size);
  const ProblemDesc d = decode_problem(r);
  std::string err = check_axis_functions(d);
  if (!err.empty())
    return err;
  return check_problem(d, run_algorithms);
}

} // namespace convarith::fuzz
