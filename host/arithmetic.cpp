// host/arithmetic.cpp — the one place where sizes are computed (see include/convarith/arithmetic.hpp).
#include "convarith/arithmetic.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <string>

namespace convarith {
namespace {

std::string prefix(Op op, int axis) {
  return std::string(op_name(op)) + " axis " + std::to_string(axis) + ": ";
}
std::string num(int64_t v) {
  return std::to_string(v);
}

// Validates the fields every op shares and computes k'. `what` is the word for k ("kernel"/"window").
Status check_axis(Op op, int axis, const AxisParams& p, int64_t* k_eff) {
  const std::string pre = prefix(op, axis);
  const char* kname = is_pool(op) ? "window" : "kernel";
  if (p.i < 1)
    return invalid_argument(pre + "input size i=" + num(p.i) + " must be >= 1");
  if (p.k < 1)
    return invalid_argument(pre + kname + " size k=" + num(p.k) + " must be >= 1");
  if (p.s < 1)
    return invalid_argument(pre + "stride s=" + num(p.s) + " must be >= 1");
  if (p.d < 1)
    return invalid_argument(pre + "dilation d=" + num(p.d) + " must be >= 1");
  if (p.p_lo < 0)
    return invalid_argument(pre + "padding p_lo=" + num(p.p_lo) + " must be >= 0");
  if (p.p_hi < 0)
    return invalid_argument(pre + "padding p_hi=" + num(p.p_hi) + " must be >= 0");
  int64_t span = 0;
  if (!checked_mul(p.d, p.k - 1, &span) || !checked_add(span, 1, k_eff))
    return out_of_range(pre + "effective " + kname + " d(k-1)+1 overflows 64 bits (k=" + num(p.k) +
                        ", dilation=" + num(p.d) + ")");
  return Status::ok();
}

Status padded_input(Op op, int axis, const AxisParams& p, int64_t* padded) {
  int64_t t = 0;
  if (!checked_add(p.i, p.p_lo, &t) || !checked_add(t, p.p_hi, padded))
    return out_of_range(prefix(op, axis) + "padded input i + p_lo + p_hi overflows 64 bits (i=" + num(p.i) + ", pad " +
                        num(p.p_lo) + "+" + num(p.p_hi) + ")");
  return Status::ok();
}

Status check_fits(Op op, int axis, const AxisParams& p, int64_t k_eff, int64_t padded) {
  if (padded >= k_eff)
    return Status::ok();
  const char* kname = is_pool(op) ? "window" : "kernel";
  return invalid_argument(prefix(op, axis) + "effective " + kname + " " + num(k_eff) + " (k=" + num(p.k) +
                          ", dilation=" + num(p.d) + ") exceeds padded input " + num(padded) + " (i=" + num(p.i) +
                          ", pad " + num(p.p_lo) + "+" + num(p.p_hi) + ")");
}

int64_t ceil_div(int64_t a, int64_t b) {
  return a / b + (a % b != 0 ? 1 : 0);
} // a >= 0, b > 0

} // namespace

const char* op_name(Op op) {
  switch (op) {
  case Op::kConv:
    return "conv";
  case Op::kConvTranspose:
    return "conv_transpose";
  case Op::kMaxPool:
    return "max_pool";
  case Op::kAvgPool:
    return "avg_pool";
  }
  return "unknown_op";
}

bool is_pool(Op op) {
  return op == Op::kMaxPool || op == Op::kAvgPool;
}

const char* pad_mode_name(PadMode mode) {
  switch (mode) {
  case PadMode::kExplicit:
    return "NOTSET";
  case PadMode::kValid:
    return "VALID";
  case PadMode::kSameUpper:
    return "SAME_UPPER";
  case PadMode::kSameLower:
    return "SAME_LOWER";
  case PadMode::kHalf:
    return "HALF";
  case PadMode::kFull:
    return "FULL";
  }
  return "UNKNOWN";
}

Result<PadMode> parse_pad_mode(std::string_view name) {
  std::string up(name);
  std::transform(up.begin(), up.end(), up.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
  if (up == "NOTSET" || up == "EXPLICIT")
    return PadMode::kExplicit;
  if (up == "VALID")
    return PadMode::kValid;
  if (up == "SAME_UPPER")
    return PadMode::kSameUpper;
  if (up == "SAME_LOWER")
    return PadMode::kSameLower;
  if (up == "HALF")
    return PadMode::kHalf;
  if (up == "FULL")
    return PadMode::kFull;
  return invalid_argument("auto_pad '" + std::string(name) +
                          "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID, HALF, FULL");
}

bool checked_add(int64_t a, int64_t b, int64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}
bool checked_mul(int64_t a, int64_t b, int64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

Result<int64_t> conv_output_size(int axis, const AxisParams& p) {
  int64_t k_eff = 0, padded = 0;
  CONVARITH_RETURN_IF_ERROR(check_axis(Op::kConv, axis, p, &k_eff));
  CONVARITH_RETURN_IF_ERROR(padded_input(Op::kConv, axis, p, &padded));
  CONVARITH_RETURN_IF_ERROR(check_fits(Op::kConv, axis, p, k_eff, padded));
  return (padded - k_eff) / p.s + 1;
}

Result<int64_t> conv_transpose_output_size(int axis, const AxisParams& p) {
  const Op op = Op::kConvTranspose;
  int64_t k_eff = 0;
  CONVARITH_RETURN_IF_ERROR(check_axis(op, axis, p, &k_eff));
  const int64_t a_max = std::max(p.s, p.d);
  if (p.a < 0 || p.a >= a_max)
    return invalid_argument(prefix(op, axis) + "output padding a=" + num(p.a) + " must satisfy 0 <= a < max(stride=" +
                            num(p.s) + ", dilation=" + num(p.d) + ") = " + num(a_max));
  // o = s(i-1) + a + k' - p_lo - p_hi, computed with overflow checks; the negative terms cannot overflow
  // because every operand is non-negative.
  int64_t o = 0;
  if (!checked_mul(p.s, p.i - 1, &o) || !checked_add(o, p.a, &o) || !checked_add(o, k_eff, &o))
    return out_of_range(prefix(op, axis) + "output size s(i-1)+a+k' overflows 64 bits (s=" + num(p.s) +
                        ", i=" + num(p.i) + ", a=" + num(p.a) + ", k'=" + num(k_eff) + ")");
  const int64_t full = o;
  // o - p_lo cannot overflow (both are non-negative), but subtracting p_hi from that can when the
  // padding is huge (found by fuzz/fuzz_problem), so the result is checked before it is formed.
  o = o - p.p_lo;
  int64_t cropped = 0;
  if (!checked_add(o, -p.p_hi, &cropped) || cropped < 1) {
    const std::string value = checked_add(o, -p.p_hi, &cropped) ? num(cropped) : std::string("below -2^63");
    return invalid_argument(prefix(op, axis) + "output size s(i-1)+a+k'-p_lo-p_hi = " + num(p.s) + "*(" + num(p.i) +
                            "-1)+" + num(p.a) + "+" + num(k_eff) + "-" + num(p.p_lo) + "-" + num(p.p_hi) + " = " +
                            value + " must be >= 1 (padding " + num(p.p_lo) + "+" + num(p.p_hi) +
                            " crops the whole output of " + num(full) + ")");
  }
  return cropped;
}

Result<int64_t> pool_output_size(Op op, int axis, const AxisParams& p, bool ceil_mode) {
  if (!is_pool(op))
    op = Op::kMaxPool;
  int64_t k_eff = 0, padded = 0;
  CONVARITH_RETURN_IF_ERROR(check_axis(op, axis, p, &k_eff));
  if (p.p_lo >= k_eff || p.p_hi >= k_eff)
    return invalid_argument(prefix(op, axis) + "padding " + num(p.p_lo) + "+" + num(p.p_hi) +
                            " must be < effective window " + num(k_eff) + " (k=" + num(p.k) + ", dilation=" + num(p.d) +
                            ") on each side, so every window overlaps the input");
  CONVARITH_RETURN_IF_ERROR(padded_input(op, axis, p, &padded));
  CONVARITH_RETURN_IF_ERROR(check_fits(op, axis, p, k_eff, padded));
  int64_t o = 0;
  if (ceil_mode) {
    o = ceil_div(padded - k_eff, p.s) + 1;
    // The last window must start inside the input or the left padding (PyTorch, ONNX).
    // (o-1)*s can pass 2^63 for huge strides (found by fuzz/fuzz_problem); such a start is past the input.
    int64_t last_start = 0;
    if (!checked_mul(o - 1, p.s, &last_start) || last_start >= p.i + p.p_lo)
      --o;
  } else {
    o = (padded - k_eff) / p.s + 1;
  }
  // A window starting at or after 0 has its first tap inside the input. With dilation, a window that
  // starts in the left padding can step over a short input entirely (i < d): reject that.
  if (p.d > 1 && p.i < p.d) {
    const int64_t windows_in_pad = std::min(o, ceil_div(p.p_lo, p.s));
    if (windows_in_pad > (int64_t{1} << 20))
      return invalid_argument(prefix(op, axis) + "too many windows (" + num(windows_in_pad) +
                              ") start in the padding to check that each reads the input");
    for (int64_t j = 0; j < windows_in_pad; ++j) {
      const int64_t start = j * p.s - p.p_lo;      // < 0
      const int64_t first = ceil_div(-start, p.d); // first tap index at or past 0
      if (first > p.k - 1 || start + first * p.d > p.i - 1)
        return invalid_argument(prefix(op, axis) + "window " + num(j) + " (start " + num(start) + ", dilation " +
                                num(p.d) + ", k=" + num(p.k) + ") reads no input element (i=" + num(p.i) + ")");
    }
  }
  return o;
}

Result<int64_t> output_size(Op op, int axis, const AxisParams& p, bool ceil_mode) {
  switch (op) {
  case Op::kConv:
    return conv_output_size(axis, p);
  case Op::kConvTranspose:
    return conv_transpose_output_size(axis, p);
  case Op::kMaxPool:
  case Op::kAvgPool:
    return pool_output_size(op, axis, p, ceil_mode);
  }
  return internal_error("output_size: unknown op");
}

Result<Padding> resolve_padding(Op op, int axis, PadMode mode, const AxisParams& p) {
  if (mode == PadMode::kExplicit)
    return Padding{p.p_lo, p.p_hi};
  AxisParams q = p;
  q.p_lo = q.p_hi = 0;
  int64_t k_eff = 0;
  CONVARITH_RETURN_IF_ERROR(check_axis(op, axis, q, &k_eff));
  const std::string pre = prefix(op, axis);
  switch (mode) {
  case PadMode::kExplicit:
    break;
  case PadMode::kValid:
    return Padding{0, 0};
  case PadMode::kHalf:
    if (k_eff % 2 == 0)
      return invalid_argument(pre + "HALF padding needs an odd effective kernel; k'=" + num(k_eff) + " (k=" + num(p.k) +
                              ", dilation=" + num(p.d) + ")");
    return Padding{(k_eff - 1) / 2, (k_eff - 1) / 2};
  case PadMode::kFull:
    return Padding{k_eff - 1, k_eff - 1};
  case PadMode::kSameUpper:
  case PadMode::kSameLower: {
    int64_t total = 0;
    if (op == Op::kConvTranspose) {
      // ONNX ConvTranspose: o = i*s, total = s(i-1) + a + k' - o = a + k' - s.
      int64_t o = 0;
      if (!checked_mul(p.i, p.s, &o))
        return out_of_range(pre + "SAME output size i*s overflows 64 bits (i=" + num(p.i) + ", s=" + num(p.s) + ")");
      // a is not validated yet (the output size check does that): a + k' can overflow (found by fuzz_problem).
      if (!checked_add(p.a, k_eff, &total) || !checked_add(total, -p.s, &total))
        return out_of_range(pre + "SAME total padding a+k'-s overflows 64 bits (a=" + num(p.a) + ", k'=" + num(k_eff) +
                            ", s=" + num(p.s) + ")");
      if (total < 0)
        return invalid_argument(pre + std::string(pad_mode_name(mode)) + " needs total padding a+k'-s = " + num(p.a) +
                                "+" + num(k_eff) + "-" + num(p.s) + " = " + num(total) +
                                " >= 0 to give output i*s = " + num(o) + "; raise output padding or the kernel");
    } else {
      // o = ceil(i/s); total = max((o-1)s + k' - i, 0); never more than k'-1.
      const int64_t o = ceil_div(p.i, p.s);
      int64_t t = 0;
      if (!checked_mul(o - 1, p.s, &t) || !checked_add(t, k_eff, &t))
        return out_of_range(pre + "SAME padding overflows 64 bits");
      total = std::max<int64_t>(t - p.i, 0);
    }
    const int64_t small = total / 2, big = total - total / 2;
    return mode == PadMode::kSameUpper ? Padding{small, big} : Padding{big, small};
  }
  }
  return internal_error("resolve_padding: unknown mode");
}

Result<TransposeFit> fit_transpose_output(int axis, const AxisParams& p, int64_t requested_o, PadMode split) {
  const Op op = Op::kConvTranspose;
  const std::string pre = prefix(op, axis);
  AxisParams q = p;
  q.p_lo = q.p_hi = 0;
  int64_t k_eff = 0;
  CONVARITH_RETURN_IF_ERROR(check_axis(op, axis, q, &k_eff));
  const int64_t a_max = std::max(p.s, p.d);
  if (p.a < 0 || p.a >= a_max)
    return invalid_argument(pre + "output padding a=" + num(p.a) + " must satisfy 0 <= a < max(stride=" + num(p.s) +
                            ", dilation=" + num(p.d) + ") = " + num(a_max));
  if (requested_o < 1)
    return invalid_argument(pre + "output_shape " + num(requested_o) + " must be >= 1");
  int64_t full = 0; // s(i-1) + k', the output with no padding and no output padding
  if (!checked_mul(p.s, p.i - 1, &full) || !checked_add(full, k_eff, &full))
    return out_of_range(pre + "s(i-1)+k' overflows 64 bits");
  TransposeFit fit;
  fit.a = p.a;
  int64_t total = 0; // full + a - o; full + a alone can pass 2^63 (found by fuzz/fuzz_problem)
  if (!checked_add(full, p.a, &total))
    return out_of_range(pre + "s(i-1)+k'+a overflows 64 bits (s=" + num(p.s) + ", i=" + num(p.i) +
                        ", k'=" + num(k_eff) + ", a=" + num(p.a) + ")");
  total -= requested_o;
  if (total < 0) {
    const int64_t need_a = p.a - total;
    if (need_a >= a_max)
      return invalid_argument(pre + "output_shape " + num(requested_o) +
                              " is unreachable: the largest output is s(i-1)+k'+(max(s,d)-1) = " + num(p.s) + "*(" +
                              num(p.i) + "-1)+" + num(k_eff) + "+" + num(a_max - 1) + " = " + num(full + a_max - 1));
    fit.a = need_a;
    total = 0;
  }
  const int64_t small = total / 2, big = total - total / 2;
  fit.pad = split == PadMode::kSameUpper ? Padding{small, big} : Padding{big, small};
  return fit;
}

ZeroInsertion transposed_as_conv(const AxisParams& p) {
  ZeroInsertion z;
  const int64_t k_eff = effective_kernel(p.k, p.d);
  z.zeros_between = p.s - 1;
  z.pad_lo = k_eff - p.p_lo - 1;
  z.pad_hi = k_eff - p.p_hi - 1;
  z.length = z.pad_lo + (p.i - 1) * p.s + 1 + z.pad_hi + p.a;
  return z;
}

namespace {

bool valid_axis(Op op, const AxisParams& p, bool ceil_mode) {
  return output_size(op, 0, p, ceil_mode).is_ok();
}

std::string pads_text(int64_t lo, int64_t hi) {
  return num(lo) + "+" + num(hi);
}

// The smallest input size that output_size accepts with every other field as given (0: none). Starts at the
// closed-form bound and steps up only for pooling's dilated-window rule, which holds for every i >= d.
int64_t smallest_input(Op op, const AxisParams& p, int64_t k_eff, bool ceil_mode) {
  AxisParams q = p;
  int64_t start = 1;
  if (op == Op::kConvTranspose) {
    if (p.a < 0 || p.a >= std::max(p.s, p.d))
      return 0; // no input size makes the output padding legal
    // o = s(i-1) + a + k' - p_lo - p_hi >= 1  <=>  s(i-1) >= 1 + p_lo + p_hi - a - k'.
    int64_t need = 0;
    // 1 - k' and -a each fit (k' >= 1, 0 <= a); their sum need not (k' near 2^63): added one at a time.
    if (!checked_add(p.p_lo, p.p_hi, &need) || !checked_add(need, 1 - k_eff, &need) || !checked_add(need, -p.a, &need))
      return 0;
    if (need > 0 && !checked_add(need / p.s + (need % p.s != 0 ? 1 : 0), 1, &start))
      return 0;
  } else {
    int64_t pads = 0; // k' - p_lo - p_hi: each term is >= 0, so only the padding's sum can overflow
    start = checked_add(p.p_lo, p.p_hi, &pads) ? std::max<int64_t>(1, k_eff - pads) : 1;
  }
  for (int step = 0; step < 64 && start <= std::numeric_limits<int64_t>::max() - step; ++step) {
    q.i = start + step;
    if (valid_axis(op, q, ceil_mode))
      return q.i;
  }
  q.i = std::max(start, p.d);
  return valid_axis(op, q, ceil_mode) ? q.i : 0;
}

// conv and pooling: the padding nearest to the given one (each side moved as little as possible) that
// makes the axis valid, if one is found.
bool nearest_padding(Op op, const AxisParams& p, int64_t k_eff, bool ceil_mode, Padding* out) {
  AxisParams q = p;
  const int64_t side_max =
      is_pool(op) ? k_eff - 1 : std::numeric_limits<int64_t>::max(); // pooling: every window overlaps the input
  q.p_lo = std::min(q.p_lo, side_max);
  q.p_hi = std::min(q.p_hi, side_max);
  int64_t padded = 0;
  if (!checked_add(q.i, q.p_lo, &padded) || !checked_add(padded, q.p_hi, &padded))
    return false;
  if (padded < k_eff) { // add the shortfall, the odd unit at the end (ONNX SAME_UPPER's habit)
    const int64_t add = k_eff - padded;
    int64_t lo = add / 2, hi = add - add / 2;
    // Pooling caps each side at k'-1: what does not fit on one side goes to the other.
    if (hi > side_max - q.p_hi) {
      lo += hi - (side_max - q.p_hi);
      hi = side_max - q.p_hi;
    }
    if (lo > side_max - q.p_lo) {
      hi += lo - (side_max - q.p_lo);
      lo = side_max - q.p_lo;
    }
    q.p_lo += lo; // no overflow: the sums stay at most k'
    q.p_hi += hi;
  }
  if (!valid_axis(op, q, ceil_mode) && is_pool(op) && k_eff <= 64) {
    // Dilated pooling over an input shorter than d: a window that starts in the padding may read nothing.
    // Search every legal padding for the nearest (L1 distance to the given one; ties: less padding).
    // Distances from the clamped padding (each side < k' <= 64) rank the same and cannot overflow.
    const int64_t want_lo = std::min(p.p_lo, k_eff - 1), want_hi = std::min(p.p_hi, k_eff - 1);
    int64_t best = -1;
    AxisParams r = p;
    for (int64_t lo = 0; lo < k_eff; ++lo)
      for (int64_t hi = 0; hi < k_eff; ++hi) {
        r.p_lo = lo;
        r.p_hi = hi;
        const int64_t dist = std::abs(lo - want_lo) + std::abs(hi - want_hi);
        if ((best < 0 || dist < best || (dist == best && lo + hi < q.p_lo + q.p_hi)) && valid_axis(op, r, ceil_mode)) {
          best = dist;
          q.p_lo = lo;
          q.p_hi = hi;
        }
      }
  }
  if (!valid_axis(op, q, ceil_mode))
    return false;
  *out = Padding{q.p_lo, q.p_hi};
  return true;
}

AxisFix fix_axis(Op op, int axis, const AxisParams& p, bool ceil_mode) {
  AxisFix f;
  Result<int64_t> o = output_size(op, axis, p, ceil_mode);
  f.valid = o.is_ok();
  if (f.valid)
    f.output = *o;
  else
    f.reason = o.status().message();
  const char* kname = is_pool(op) ? "window" : "kernel";
  // A malformed field has one nearest legal value, and nothing else can be judged until it has it.
  bool malformed = false;
  const auto at_least = [&](const char* what, int64_t v, int64_t lowest) {
    if (v >= lowest)
      return;
    f.changes.push_back(std::string(what) + "=" + num(v) + " -> " + num(lowest) + " (must be >= " + num(lowest) + ")");
    malformed = true;
  };
  at_least(is_pool(op) ? "window size k" : "kernel size k", p.k, 1);
  at_least("stride s", p.s, 1);
  at_least("dilation d", p.d, 1);
  at_least("padding p_lo", p.p_lo, 0);
  at_least("padding p_hi", p.p_hi, 0);
  int64_t k_eff = 0;
  if (malformed || !checked_mul(p.d, p.k - 1, &k_eff) || !checked_add(k_eff, 1, &k_eff))
    return f;
  f.min_input = smallest_input(op, p, k_eff, ceil_mode);
  const std::string need_i = f.min_input > p.i ? "input size i=" + num(p.i) + " -> " + num(f.min_input) +
                                                     " (the smallest valid with the other fields as given)"
                                               : std::string();
  if (p.i < 1 && f.min_input == 0) // another field is wrong too (listed below), but i must change first
    f.changes.push_back("input size i=" + num(p.i) + " -> 1 (must be >= 1)");

  if (op == Op::kConvTranspose) {
    f.a_max = std::max(p.s, p.d) - 1;
    int64_t full = 0; // s(i-1) + k'
    const bool full_ok = p.i >= 1 && checked_mul(p.s, p.i - 1, &full) && checked_add(full, k_eff, &full);
    if (full_ok && checked_add(full, f.a_max, &f.o_max))
      f.o_min = 1;
    else
      f.o_max = 0;
    if (f.valid)
      return f;
    AxisParams q = p;
    if (p.a < 0 || p.a > f.a_max) {
      q.a = std::min(std::max<int64_t>(p.a, 0), f.a_max);
      f.changes.push_back("output padding a=" + num(p.a) + " -> " + num(q.a) + " (legal: 0 <= a <= " + num(f.a_max) +
                          ", below max(stride=" + num(p.s) + ", dilation=" + num(p.d) + "))");
    }
    int64_t most = 0, excess = 0; // padding crops the whole output: the total may be at most s(i-1) + a + k' - 1
    if (full_ok && !valid_axis(op, q, false) && checked_add(full, q.a - 1, &most) &&
        checked_add(q.p_hi - most, q.p_lo, &excess) && excess > 0) {
      const int64_t hi = std::max<int64_t>(0, q.p_hi - excess); // take from the end first
      q.p_lo -= excess - (q.p_hi - hi);
      q.p_hi = hi;
      if (valid_axis(op, q, false)) {
        f.has_padding = true;
        f.padding = Padding{q.p_lo, q.p_hi};
        f.changes.push_back("pads " + pads_text(p.p_lo, p.p_hi) + " -> " + pads_text(q.p_lo, q.p_hi) +
                            " (total padding at most s(i-1)+a+k'-1 = " + num(most) + ")");
      }
    }
    if (!need_i.empty())
      f.changes.push_back(need_i);
    return f;
  }

  if (f.valid)
    return f;
  int64_t padded = 0;
  const bool fits = checked_add(p.i, p.p_lo, &padded) && checked_add(padded, p.p_hi, &padded);
  if (fits && padded < k_eff && p.i >= 1) {
    f.shortfall = k_eff - padded;
    AxisParams q = p;
    q.k = (padded - 1) / p.d + 1;
    if (valid_axis(op, q, ceil_mode))
      f.max_kernel = q.k;
    if (p.k > 1) {
      q = p;
      q.d = (padded - 1) / (p.k - 1);
      if (q.d >= 1 && valid_axis(op, q, ceil_mode))
        f.max_dilation = q.d;
    }
  }
  if (p.i >= 1 && nearest_padding(op, p, k_eff, ceil_mode, &f.padding)) {
    f.has_padding = true;
    std::string why = f.shortfall > 0 ? "the padded input must reach the effective " + std::string(kname) + " " +
                                            num(k_eff) + ", short by " + num(f.shortfall)
                                      : "each side below the effective window " + num(k_eff);
    f.changes.push_back("pads " + pads_text(p.p_lo, p.p_hi) + " -> " + pads_text(f.padding.lo, f.padding.hi) + " (" +
                        why + ")");
  }
  if (!need_i.empty())
    f.changes.push_back(need_i);
  if (f.max_kernel > 0)
    f.changes.push_back(std::string(kname) + " size k=" + num(p.k) + " -> " + num(f.max_kernel) +
                        " (the largest with d(k-1)+1 <= padded input " + num(padded) + ")");
  if (f.max_dilation > 0 && f.max_dilation < p.d)
    f.changes.push_back("dilation d=" + num(p.d) + " -> " + num(f.max_dilation) +
                        " (the largest with d(k-1)+1 <= padded input " + num(padded) + ")");
  return f;
}

} // namespace

AxisFix suggest_axis_fix(Op op, int axis, const AxisParams& p, bool ceil_mode) {
  AxisFix f = fix_axis(op, axis, p, ceil_mode);
  if (!f.valid && f.changes.empty()) // e.g. sizes whose output overflows 64 bits: no one field is the culprit
    f.changes.push_back("no single change of padding, input size, kernel, dilation or output padding found (" +
                        f.reason + ")");
  return f;
}

RelationshipInfo classify_relationship(Op op, const AxisParams& p, int64_t o, bool ceil_mode) {
  RelationshipInfo r;
  const auto n = [](int64_t v) { return std::to_string(v); };
  const int64_t i = p.i, k = p.k, s = p.s, d = p.d, a = p.a;
  const bool sym = p.p_lo == p.p_hi;
  const int64_t pp = p.p_lo;
  const int64_t k_eff = effective_kernel(k, d);
  const std::string eq = " = " + n(o);
  auto set = [&](Relationship rel, const char* name, std::string formula) {
    r.relationship = rel;
    const int number = static_cast<int>(rel);
    r.name = number == 0 ? std::string(name) : "relationship " + std::to_string(number) + " (" + name + ")";
    r.formula = std::move(formula);
  };
  if (op == Op::kConv) {
    if (sym && d == 1 && s == 1) {
      if (pp == 0)
        set(Relationship::kNoPaddingUnitStrides, "no zero padding, unit strides",
            "o = (i - k) + 1 = (" + n(i) + " - " + n(k) + ") + 1" + eq);
      else if (k % 2 == 1 && pp == k / 2)
        set(Relationship::kHalfPadding, "half (same) padding",
            "o = i = " + n(i) + " (k = 2n+1 = " + n(k) + ", p = n = " + n(pp) + ", s = 1)");
      else if (pp == k - 1)
        set(Relationship::kFullPadding, "full padding", "o = i + (k - 1) = " + n(i) + " + (" + n(k) + " - 1)" + eq);
      else
        set(Relationship::kZeroPaddingUnitStrides, "zero padding, unit strides",
            "o = (i - k) + 2p + 1 = (" + n(i) + " - " + n(k) + ") + 2*" + n(pp) + " + 1" + eq);
    } else if (sym && d == 1) {
      if (pp == 0)
        set(Relationship::kNoPaddingStrides, "no zero padding, non-unit strides",
            "o = floor((i - k) / s) + 1 = floor((" + n(i) + " - " + n(k) + ") / " + n(s) + ") + 1" + eq);
      else
        set(Relationship::kPaddingStrides, "zero padding, non-unit strides",
            "o = floor((i + 2p - k) / s) + 1 = floor((" + n(i) + " + 2*" + n(pp) + " - " + n(k) + ") / " + n(s) +
                ") + 1" + eq);
    } else if (sym) {
      set(Relationship::kDilated, "dilated convolution",
          "o = floor((i + 2p - k - (k - 1)(d - 1)) / s) + 1 = floor((" + n(i) + " + 2*" + n(pp) + " - " + n(k) +
              " - (" + n(k) + " - 1)*(" + n(d) + " - 1)) / " + n(s) + ") + 1" + eq);
    } else {
      set(Relationship::kGeneral, "general (asymmetric padding)",
          "o = floor((i + p_lo + p_hi - d(k - 1) - 1) / s) + 1 = floor((" + n(i) + " + " + n(p.p_lo) + " + " +
              n(p.p_hi) + " - " + n(k_eff) + ") / " + n(s) + ") + 1" + eq);
    }
  } else if (op == Op::kConvTranspose) {
    if (sym && d == 1 && s == 1) {
      if (pp == 0)
        set(Relationship::kTransposedNoPaddingUnitStrides, "transposed: no zero padding, unit strides",
            "o' = i' + (k - 1) = " + n(i) + " + (" + n(k) + " - 1)" + eq);
      else if (k % 2 == 1 && pp == k / 2)
        set(Relationship::kTransposedHalfPadding, "transposed: half (same) padding", "o' = i' = " + n(i));
      else if (pp == k - 1)
        set(Relationship::kTransposedFullPadding, "transposed: full padding",
            "o' = i' - (k - 1) = " + n(i) + " - (" + n(k) + " - 1)" + eq);
      else
        set(Relationship::kTransposedZeroPaddingUnitStrides, "transposed: zero padding, unit strides",
            "o' = i' + (k - 1) - 2p = " + n(i) + " + (" + n(k) + " - 1) - 2*" + n(pp) + eq);
    } else if (sym && d == 1) {
      if (pp == 0 && a == 0)
        set(Relationship::kTransposedNoPaddingStrides, "transposed: no zero padding, non-unit strides",
            "o' = s(i' - 1) + k = " + n(s) + "*(" + n(i) + " - 1) + " + n(k) + eq);
      else if (a == 0)
        set(Relationship::kTransposedPaddingStrides, "transposed: zero padding, non-unit strides",
            "o' = s(i' - 1) + k - 2p = " + n(s) + "*(" + n(i) + " - 1) + " + n(k) + " - 2*" + n(pp) + eq);
      else
        set(Relationship::kTransposedPaddingStridesOdd, "transposed: zero padding, non-unit strides, output padding",
            "o' = s(i' - 1) + a + k - 2p = " + n(s) + "*(" + n(i) + " - 1) + " + n(a) + " + " + n(k) + " - 2*" + n(pp) +
                eq);
    } else {
      set(Relationship::kGeneral, "general transposed (dilation or asymmetric padding)",
          "o' = s(i' - 1) + a + d(k - 1) + 1 - p_lo - p_hi = " + n(s) + "*(" + n(i) + " - 1) + " + n(a) + " + " +
              n(k_eff) + " - " + n(p.p_lo) + " - " + n(p.p_hi) + eq);
    }
  } else {
    const int64_t span = i + p.p_lo + p.p_hi - k_eff;
    const bool ceil_differs = ceil_mode && span % s != 0;
    if (sym && pp == 0 && d == 1 && !ceil_differs) {
      set(Relationship::kPooling, "pooling",
          "o = floor((i - k) / s) + 1 = floor((" + n(i) + " - " + n(k) + ") / " + n(s) + ") + 1" + eq);
    } else {
      const char* rounding = ceil_differs ? "ceil" : "floor";
      std::string f = std::string("o = ") + rounding + "((i + p_lo + p_hi - d(k - 1) - 1) / s) + 1 = " + rounding +
                      "((" + n(i) + " + " + n(p.p_lo) + " + " + n(p.p_hi) + " - " + n(k_eff) + ") / " + n(s) + ") + 1";
      if (ceil_differs && ceil_div(span, s) + 1 != o)
        f += " - 1 (the last window would start in the right padding)";
      set(Relationship::kGeneral,
          ceil_differs ? "general pooling (ceil_mode)" : "general pooling (padding or dilation)", f + eq);
    }
  }
  return r;
}

} // namespace convarith
