// host/problem.cpp — ConvProblem's validating factory (see include/convarith/problem.hpp).
#include "convarith/problem.hpp"

#include <sstream>

namespace convarith {
namespace {

std::string num(int64_t v) {
  return std::to_string(v);
}

std::string join(const int64_t* v, int count, const char* sep) {
  std::string s;
  for (int j = 0; j < count; ++j)
    s += (j ? sep : "") + num(v[j]);
  return s;
}

// Multiplies `factors` with overflow checks; on overflow names the tensor and the factors.
Status checked_product(const char* tensor, const char* formula, const std::vector<int64_t>& factors, int64_t* out) {
  int64_t p = 1;
  bool overflow = false;
  for (int64_t f : factors) {
    if (!checked_mul(p, f, &p)) {
      overflow = true;
      break;
    }
  }
  if (!overflow) {
    *out = p;
    return Status::ok();
  }
  std::string fs;
  for (size_t j = 0; j < factors.size(); ++j)
    fs += (j ? "*" : "") + num(factors[j]);
  return out_of_range(std::string(tensor) + " element count " + formula + " = " + fs + " overflows 64 bits");
}

} // namespace

Result<ConvProblem> ConvProblem::make(const ProblemDesc& desc) {
  const Op op = desc.op;
  if (op != Op::kConv && op != Op::kConvTranspose && op != Op::kMaxPool && op != Op::kAvgPool)
    return invalid_argument("op " + num(static_cast<int>(op)) + " is not conv, conv_transpose, max_pool or avg_pool");
  const std::string on = op_name(op);
  if (desc.dtype != DataType::kF32)
    return not_supported(on + ": only dtype f32 is supported");
  if (desc.layout != Layout::kNCHW)
    return not_supported(on + ": only layout NC[D]HW is supported");
  if (desc.rank < 1 || desc.rank > kMaxSpatialRank)
    return invalid_argument(on + ": spatial rank " + num(desc.rank) + " must be 1, 2 or 3");
  if (desc.n < 0)
    return invalid_argument(on + ": batch N=" + num(desc.n) + " must be >= 0");
  if (desc.c < 1)
    return invalid_argument(on + ": channels C=" + num(desc.c) + " must be >= 1");

  ConvProblem p;
  p.desc_ = desc;
  p.requested_pad_mode_ = desc.pad_mode;
  const bool pool = is_pool(op);
  if (pool) {
    if (desc.groups != 1)
      return invalid_argument(on + ": group=" + num(desc.groups) + " applies to conv and conv_transpose only");
    p.desc_.k = desc.c;
  } else {
    if (desc.k < 1)
      return invalid_argument(on + ": output channels K=" + num(desc.k) + " must be >= 1");
    if (desc.groups < 1)
      return invalid_argument(on + ": group=" + num(desc.groups) + " must be >= 1");
    if (desc.c % desc.groups != 0)
      return invalid_argument(on + ": group=" + num(desc.groups) + " must divide input channels C=" + num(desc.c));
    if (desc.k % desc.groups != 0)
      return invalid_argument(on + ": group=" + num(desc.groups) + " must divide output channels K=" + num(desc.k));
  }
  if (op != Op::kConvTranspose && desc.has_output_shape)
    return invalid_argument(on + ": output_shape applies to conv_transpose only");
  if (!pool && desc.ceil_mode)
    return invalid_argument(on + ": ceil_mode applies to pooling only");
  if (op != Op::kAvgPool && desc.count_include_pad)
    return invalid_argument(on + ": count_include_pad applies to avg_pool only");
  if (desc.pad_mode < PadMode::kExplicit || desc.pad_mode > PadMode::kFull)
    return invalid_argument(on + ": unknown auto_pad value " + num(static_cast<int>(desc.pad_mode)));

  const int base = kMaxSpatialRank - desc.rank;
  for (int j = 0; j < desc.rank; ++j) {
    const size_t u = static_cast<size_t>(j);
    const std::string pre = on + " axis " + num(j) + ": ";
    AxisParams ax;
    ax.i = desc.input[u];
    ax.k = desc.kernel[u];
    ax.s = desc.stride[u];
    ax.p_lo = desc.pad_lo[u];
    ax.p_hi = desc.pad_hi[u];
    ax.d = desc.dilation[u];
    ax.a = desc.output_padding[u];
    if (op != Op::kConvTranspose && ax.a != 0)
      return invalid_argument(pre + "output_padding=" + num(ax.a) + " applies to conv_transpose only");
    const bool explicit_pads = ax.p_lo != 0 || ax.p_hi != 0;
    if (desc.has_output_shape) {
      if (explicit_pads)
        return invalid_argument(pre + "pads " + num(ax.p_lo) + "+" + num(ax.p_hi) +
                                " given together with output_shape; output_shape determines the padding (ONNX)");
      Result<TransposeFit> fit = fit_transpose_output(j, ax, desc.output_shape[u], desc.pad_mode);
      if (!fit)
        return fit.status();
      ax.a = fit->a;
      ax.p_lo = fit->pad.lo;
      ax.p_hi = fit->pad.hi;
    } else if (desc.pad_mode != PadMode::kExplicit) {
      if (explicit_pads)
        return invalid_argument(pre + "pads " + num(ax.p_lo) + "+" + num(ax.p_hi) +
                                " given together with auto_pad=" + pad_mode_name(desc.pad_mode));
      Result<Padding> pad = resolve_padding(op, j, desc.pad_mode, ax);
      if (!pad)
        return pad.status();
      ax.p_lo = pad->lo;
      ax.p_hi = pad->hi;
    }
    Result<int64_t> o = output_size(op, j, ax, desc.ceil_mode);
    if (!o)
      return o.status();
    if (desc.has_output_shape && *o != desc.output_shape[u])
      return internal_error(pre + "output_shape fit gave " + num(*o) + " instead of " + num(desc.output_shape[u]));
    const size_t b = static_cast<size_t>(base + j);
    p.axes_[b] = ax;
    p.out_[b] = *o;
    p.desc_.pad_lo[u] = ax.p_lo;
    p.desc_.pad_hi[u] = ax.p_hi;
    p.desc_.output_padding[u] = ax.a;
  }
  p.desc_.pad_mode = PadMode::kExplicit;
  p.desc_.has_output_shape = false;

  // Element counts, overflow-checked.
  std::vector<int64_t> in, ker, out;
  for (int j = 0; j < kMaxSpatialRank; ++j) {
    in.push_back(p.axes_[static_cast<size_t>(j)].i);
    ker.push_back(p.axes_[static_cast<size_t>(j)].k);
    out.push_back(p.out_[static_cast<size_t>(j)]);
  }
  CONVARITH_RETURN_IF_ERROR(checked_product("input", "prod(input spatial)", in, &p.in_spatial_));
  CONVARITH_RETURN_IF_ERROR(checked_product("kernel", "prod(kernel spatial)", ker, &p.kernel_spatial_));
  CONVARITH_RETURN_IF_ERROR(checked_product("output", "prod(output spatial)", out, &p.out_spatial_));
  const int64_t n = desc.n, c = desc.c, k = p.desc_.k, g = p.desc_.groups;
  CONVARITH_RETURN_IF_ERROR(checked_product("x", "N*C*prod(input)", {n, c, p.in_spatial_}, &p.x_elements_));
  CONVARITH_RETURN_IF_ERROR(checked_product("y", "N*K*prod(output)", {n, k, p.out_spatial_}, &p.y_elements_));
  if (pool) {
    p.w_elements_ = 0;
  } else if (op == Op::kConv) {
    CONVARITH_RETURN_IF_ERROR(
        checked_product("w", "K*(C/g)*prod(kernel)", {k, c / g, p.kernel_spatial_}, &p.w_elements_));
  } else {
    CONVARITH_RETURN_IF_ERROR(
        checked_product("w", "C*(K/g)*prod(kernel)", {c, k / g, p.kernel_spatial_}, &p.w_elements_));
  }
  int64_t total = 0;
  if (!checked_add(p.x_elements_, p.w_elements_, &total) || !checked_add(total, p.y_elements_, &total) ||
      !checked_mul(total, static_cast<int64_t>(sizeof(float)), &total))
    return out_of_range(on + ": total bytes of x, w and y overflow 64 bits");
  return p;
}

std::vector<int64_t> ConvProblem::x_shape() const {
  std::vector<int64_t> s{desc_.n, desc_.c};
  for (int j = 0; j < desc_.rank; ++j)
    s.push_back(axis(j).i);
  return s;
}

std::vector<int64_t> ConvProblem::w_shape() const {
  if (is_pool(desc_.op))
    return {};
  std::vector<int64_t> s;
  if (desc_.op == Op::kConv)
    s = {desc_.k, desc_.c / desc_.groups};
  else
    s = {desc_.c, desc_.k / desc_.groups};
  for (int j = 0; j < desc_.rank; ++j)
    s.push_back(axis(j).k);
  return s;
}

std::vector<int64_t> ConvProblem::y_shape() const {
  std::vector<int64_t> s{desc_.n, desc_.k};
  for (int j = 0; j < desc_.rank; ++j)
    s.push_back(out(j));
  return s;
}

double ConvProblem::flops() const {
  const double n = static_cast<double>(desc_.n), c = static_cast<double>(desc_.c), k = static_cast<double>(desc_.k);
  const double g = static_cast<double>(desc_.groups), taps = static_cast<double>(kernel_spatial_);
  switch (desc_.op) {
  case Op::kConv:
    return 2.0 * n * k * (c / g) * taps * static_cast<double>(out_spatial_);
  case Op::kConvTranspose:
    return 2.0 * n * c * (k / g) * taps * static_cast<double>(in_spatial_);
  case Op::kMaxPool:
  case Op::kAvgPool:
    return n * c * taps * static_cast<double>(out_spatial_);
  }
  return 0.0;
}

int64_t ConvProblem::min_bytes() const {
  return (x_elements_ + w_elements_ + y_elements_) * static_cast<int64_t>(sizeof(float));
}

std::string ConvProblem::name() const {
  const int r = desc_.rank;
  std::array<int64_t, kMaxSpatialRank> in{}, ker{}, st{}, lo{}, hi{}, dil{}, op{};
  bool strided = false, padded = false, dilated = false, opad = false;
  for (int j = 0; j < r; ++j) {
    const AxisParams& a = axis(j);
    const size_t u = static_cast<size_t>(j);
    in[u] = a.i, ker[u] = a.k, st[u] = a.s, lo[u] = a.p_lo, hi[u] = a.p_hi, dil[u] = a.d, op[u] = a.a;
    strided |= a.s != 1, padded |= a.p_lo != 0 || a.p_hi != 0, dilated |= a.d != 1, opad |= a.a != 0;
  }
  std::ostringstream s;
  s << op_name(desc_.op) << "_n" << desc_.n << "_c" << desc_.c;
  if (!is_pool(desc_.op))
    s << "_k" << desc_.k;
  if (desc_.groups != 1)
    s << "_g" << desc_.groups;
  s << "_i" << join(in.data(), r, "x") << "_r" << join(ker.data(), r, "x");
  if (strided)
    s << "_s" << join(st.data(), r, "x");
  if (padded)
    s << "_p" << join(lo.data(), r, "x") << "_" << join(hi.data(), r, "x");
  if (dilated)
    s << "_d" << join(dil.data(), r, "x");
  if (opad)
    s << "_a" << join(op.data(), r, "x");
  if (desc_.ceil_mode)
    s << "_ceil";
  if (desc_.count_include_pad)
    s << "_cip";
  return s.str();
}

ProblemDesc ConvProblem::resolved() const {
  return desc_;
}

} // namespace convarith
