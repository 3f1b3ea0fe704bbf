// reference/formats.cpp — the fp64 oracle for every dtype, layout and epilogue, and the one acceptance rule.
//
// The inputs are decoded from their stored dtype (f16 and bf16 decode exactly to float) and re-laid out into
// f32 NC[D]HW; the op is reference.cpp's loop nest on those (the same values, so nothing is lost); then the
// epilogue is applied in double and the result is returned in y's memory order. The dtype decoding is written
// here from the IEEE / bfloat16 definitions, independently of the library's kernels/numeric.cuh.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "reference.hpp"

namespace convarith::oracle {
namespace {

double decode(DataType t, const void* base, int64_t off) {
  if (t == DataType::kF32)
    return static_cast<double>(static_cast<const float*>(base)[off]);
  const uint16_t h = static_cast<const uint16_t*>(base)[off];
  if (t == DataType::kBF16) {
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return static_cast<double>(f);
  }
  // binary16: sign, 5-bit exponent (bias 15), 10-bit fraction.
  const double sign = (h & 0x8000u) ? -1.0 : 1.0;
  const int exp = (h >> 10) & 0x1f;
  const int frac = h & 0x3ff;
  if (exp == 0x1f)
    return frac != 0 ? std::numeric_limits<double>::quiet_NaN() : sign * std::numeric_limits<double>::infinity();
  if (exp == 0)
    return sign * std::ldexp(static_cast<double>(frac), -24);
  return sign * std::ldexp(1.0 + frac / 1024.0, exp - 15);
}

// Element (a, b, flat spatial s) of a tensor: the spatial axes are contiguous relative to each other in both
// layouts, so s steps by the innermost spatial stride.
int64_t offset(const TensorDesc& t, int64_t a, int64_t b, int64_t s) {
  const int64_t sb = t.rank > 1 ? t.strides[1] : 0;
  const int64_t ss = t.rank > 2 ? t.strides[static_cast<size_t>(t.rank - 1)] : 0;
  return a * t.strides[0] + b * sb + s * ss;
}

// The tensor as f32 in logical (NC[D]HW) order.
std::vector<float> logical_f32(const TensorDesc& t, const void* data) {
  std::vector<float> out(static_cast<size_t>(t.elements));
  if (t.rank == 0 || data == nullptr)
    return out;
  const int64_t d0 = t.dims[0], d1 = t.rank > 1 ? t.dims[1] : 1;
  const int64_t S = d0 * d1 == 0 ? 0 : t.elements / (d0 * d1);
  for (int64_t a = 0; a < d0; ++a)
    for (int64_t b = 0; b < d1; ++b)
      for (int64_t s = 0; s < S; ++s)
        out[static_cast<size_t>((a * d1 + b) * S + s)] = static_cast<float>(decode(t.dtype, data, offset(t, a, b, s)));
  return out;
}

ConvProblem plain_problem(const ConvProblem& p) {
  ProblemDesc d = p.resolved();
  d.dtype = DataType::kF32;
  d.x_dtype.reset();
  d.w_dtype.reset();
  d.bias_dtype.reset();
  d.z_dtype.reset();
  d.y_dtype.reset();
  d.layout = Layout::kNCHW;
  d.w_layout.reset();
  d.epilogue = Epilogue{};
  d.math = MathMode::kStrict;
  Result<ConvProblem> r = ConvProblem::make(d);
  return r ? *r : ConvProblem();
}

double activate(const Epilogue& e, double v) {
  switch (e.activation) {
  case Activation::kRelu:
    return std::isnan(v) ? v : std::max(v, 0.0);
  case Activation::kLeakyRelu:
    return v < 0 ? static_cast<double>(e.leaky_alpha) * v : v;
  case Activation::kClip:
    return std::isnan(v) ? v : std::min(std::max(v, static_cast<double>(e.clip_min)), static_cast<double>(e.clip_max));
  case Activation::kSigmoid:
    return 1.0 / (1.0 + std::exp(-v));
  case Activation::kTanh:
    return std::tanh(v);
  case Activation::kSilu:
    return v / (1.0 + std::exp(-v));
  case Activation::kGelu:
    return 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
  case Activation::kGeluTanh:
    return 0.5 * v * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v)));
  default:
    return v;
  }
}

bool transcendental(Activation a) {
  return a == Activation::kSigmoid || a == Activation::kTanh || a == Activation::kSilu || a == Activation::kGelu ||
         a == Activation::kGeluTanh;
}

struct Prepared {
  ConvProblem plain;
  std::vector<float> x, w;
  std::vector<double> bias, z; // bias: K values; z: logical order
};

Prepared prepare(const ConvProblem& p, const Tensors& t) {
  Prepared r;
  r.plain = plain_problem(p);
  r.x = logical_f32(p.tensor(TensorId::kX), t.x);
  if (p.tensor(TensorId::kW).rank > 0 && t.w != nullptr)
    r.w = logical_f32(p.tensor(TensorId::kW), t.w);
  r.bias.assign(static_cast<size_t>(p.bias_elements()), 0.0);
  if (t.bias != nullptr)
    for (int64_t k = 0; k < p.bias_elements(); ++k)
      r.bias[static_cast<size_t>(k)] = decode(p.dtype(TensorId::kBias), t.bias, k);
  if (p.epilogue().has_residual() && t.z != nullptr) {
    const std::vector<float> z = logical_f32(p.tensor(TensorId::kZ), t.z);
    r.z.assign(z.begin(), z.end());
  }
  return r;
}

// Calls f(logical index, memory index, k) for every element of y.
template <typename F> void for_each_y(const ConvProblem& p, F f) {
  const TensorDesc& y = p.tensor(TensorId::kY);
  const int64_t n = y.dims[0], k = y.dims[1], S = p.out_spatial();
  for (int64_t a = 0; a < n; ++a)
    for (int64_t b = 0; b < k; ++b)
      for (int64_t s = 0; s < S; ++s)
        f((a * k + b) * S + s, offset(y, a, b, s), b);
}

} // namespace

std::vector<double> reference(const ConvProblem& p, const Tensors& t, int threads) {
  const Prepared r = prepare(p, t);
  const std::vector<double> acc = reference(r.plain, r.x.data(), r.w.empty() ? nullptr : r.w.data(), nullptr, threads);
  std::vector<double> out(static_cast<size_t>(p.y_elements()));
  if (is_pool(p.op())) {
    for_each_y(p, [&](int64_t l, int64_t m, int64_t) { out[static_cast<size_t>(m)] = acc[static_cast<size_t>(l)]; });
    return out;
  }
  const Epilogue& e = p.epilogue();
  const bool residual = e.has_residual() && !r.z.empty();
  for_each_y(p, [&](int64_t l, int64_t m, int64_t k) {
    double v = static_cast<double>(e.alpha) * acc[static_cast<size_t>(l)] + r.bias[static_cast<size_t>(k)];
    if (residual)
      v += static_cast<double>(e.beta) * r.z[static_cast<size_t>(l)];
    out[static_cast<size_t>(m)] = activate(e, v);
  });
  return out;
}

std::vector<double> reference_magnitude(const ConvProblem& p, const Tensors& t, int threads) {
  const Prepared r = prepare(p, t);
  const std::vector<double> mag =
      reference_magnitude(r.plain, r.x.data(), r.w.empty() ? nullptr : r.w.data(), nullptr, threads);
  std::vector<double> out(static_cast<size_t>(p.y_elements()));
  if (is_pool(p.op())) {
    for_each_y(p, [&](int64_t l, int64_t m, int64_t) { out[static_cast<size_t>(m)] = mag[static_cast<size_t>(l)]; });
    return out;
  }
  const Epilogue& e = p.epilogue();
  const bool residual = e.has_residual() && !r.z.empty();
  for_each_y(p, [&](int64_t l, int64_t m, int64_t k) {
    double v = std::fabs(static_cast<double>(e.alpha)) * mag[static_cast<size_t>(l)] +
               std::fabs(r.bias[static_cast<size_t>(k)]);
    if (residual)
      v += std::fabs(static_cast<double>(e.beta) * r.z[static_cast<size_t>(l)]);
    out[static_cast<size_t>(m)] = v;
  });
  return out;
}

std::vector<double> to_double(const ConvProblem& p, TensorId id, const void* data) {
  const TensorDesc& t = p.tensor(id);
  std::vector<double> out(static_cast<size_t>(t.elements));
  for (int64_t e = 0; e < t.elements; ++e)
    out[static_cast<size_t>(e)] = decode(t.dtype, data, e);
  return out;
}

float round_to(DataType dtype, float v) {
  if (dtype == DataType::kF32 || std::isnan(v) || std::isinf(v))
    return v;
  const int bits = dtype == DataType::kF16 ? 11 : 8; // significand bits
  const double a = std::fabs(static_cast<double>(v));
  if (a == 0)
    return v;
  int exp = 0;
  std::frexp(a, &exp);                                      // a = m * 2^exp, m in [0.5, 1)
  const int min_exp = dtype == DataType::kF16 ? -13 : -125; // smallest normal is 2^(min_exp - 1)
  const int q = std::max(exp, min_exp) - bits;              // quantum 2^q (subnormals share the smallest)
  const double scaled = std::ldexp(a, -q);
  double r = std::nearbyint(scaled); // default rounding mode: to nearest even
  double out = std::ldexp(r, q);
  const double max = dtype == DataType::kF16 ? 65504.0 : static_cast<double>(std::numeric_limits<float>::max());
  if (dtype == DataType::kF16 && out > max)
    out = std::numeric_limits<double>::infinity();
  if (dtype == DataType::kBF16 && out > max)
    out = std::numeric_limits<double>::infinity();
  return static_cast<float>(v < 0 ? -out : out);
}

int64_t taps_per_output(const ConvProblem& p) {
  if (is_pool(p.op()))
    return p.kernel_spatial();
  return (p.c() / p.groups()) * p.kernel_spatial();
}

double accept_bound(const ConvProblem& p, double want, double magnitude, double factor) {
  if (std::isinf(magnitude))
    return std::numeric_limits<double>::infinity(); // an infinite input term: any finite result is within rounding
  const double eps32 = std::ldexp(1.0, -23);
  const DataType yt = p.dtype(TensorId::kY);
  const Activation act = p.epilogue().activation;
  const double l_act =
      act == Activation::kGelu || act == Activation::kGeluTanh || act == Activation::kSilu ? 1.13 : 1.0;
  const double u_out = yt == DataType::kF32 ? 0.0 : dtype_unit_roundoff(yt);
  const double u_act = transcendental(act) ? 4.0 * std::ldexp(1.0, -24) : 0.0;
  const bool tf32 = p.math() == MathMode::kTensorOp && p.dtype(TensorId::kX) == DataType::kF32;
  const double u_in = tf32 ? std::ldexp(1.0, -11) : 0.0;
  const double taps = static_cast<double>(taps_per_output(p));
  // Half the subnormal step: f16 2^-24 -> 2^-25; bf16 and f32 2^-149 -> 2^-150.
  const double tiny = yt == DataType::kF16 ? std::ldexp(1.0, -25) : std::ldexp(1.0, -150);
  return factor *
             (eps32 * (taps + 2.0) * l_act * magnitude + (u_out + u_act) * std::fabs(want) + 2.0 * u_in * magnitude) +
         tiny + 1e-30;
}

Verdict accept(const ConvProblem& p, const std::vector<double>& got, const std::vector<double>& want,
               const std::vector<double>& magnitude, double factor) {
  Verdict v;
  const double eps32 = std::ldexp(1.0, -23);
  v.bound_factor = factor * eps32 * (static_cast<double>(taps_per_output(p)) + 2.0);
  if (got.size() != want.size() || magnitude.size() != want.size()) {
    v.pass = false;
    v.bad = static_cast<int64_t>(std::max(got.size(), want.size()));
    v.first_bad = 0;
    return v;
  }
  for (size_t e = 0; e < got.size(); ++e) {
    const double g = got[e], w = want[e];
    bool ok;
    if (std::isnan(w) || std::isnan(g)) {
      ok = std::isnan(w) && std::isnan(g);
      if (!ok)
        ++v.nan_bad;
    } else if (std::isinf(w) || std::isinf(g)) {
      ok = g == w;
    } else {
      const double err = std::fabs(g - w);
      const double bound = accept_bound(p, w, magnitude[e], factor);
      v.max_abs = std::max(v.max_abs, err);
      v.max_rel = std::max(v.max_rel, err / std::max(magnitude[e], 1e-300));
      v.worst_ratio = std::max(v.worst_ratio, err / bound);
      ok = err <= bound;
    }
    if (!ok) {
      if (v.first_bad < 0)
        v.first_bad = static_cast<int64_t>(e);
      ++v.bad;
    }
  }
  v.pass = v.bad == 0;
  return v;
}

} // namespace convarith::oracle
