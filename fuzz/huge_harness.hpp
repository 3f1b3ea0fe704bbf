// fuzz/huge_harness.hpp — the huge-attributes harness, shared by fuzz/fuzz_huge.cpp (libFuzzer) and
// tests/test_numeric_edges.cpp (which replays tests/regressions/huge/ in the normal test build).
//
// decode_huge() turns bytes into a problem with small tensors (inputs of 1..6 per axis, at most 3
// channels) and attributes from the whole 64-bit range (kernel, stride, padding, dilation and
// output padding drawn by ByteReader::value: 0..9, edge values near 2^31, 2^62, 2^63 - 1, raw
// 64-bit values). check_huge() runs, on each valid problem whose tensors hold at most 4096
// elements, the fp64 reference and every algorithm that supports it (CPU rows through a Plan,
// kernel rows through the CPU kernel executor) on small integer inputs, optionally with a NaN in x
// and an Inf in w, and returns the first finding, or "":
//   - the whole run took longer than kTimeBound (time must be bounded by the tensor sizes: a loop
//     over a huge window's taps, or over taps in padding, shows up here as a hang);
//   - an algorithm failed, or disagrees with the reference: NaN where the reference is not NaN or
//     the reverse, a different infinity, or a finite value off by more than 1e-5 of the magnitude.
// Sanitizer builds (the fuzz preset) also catch overflowing products and pointer offsets.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "fuzz_input.hpp"
#include "reference/reference.hpp"
#include "row.hpp"

namespace convarith::fuzz {

// Generous: the problems are tiny, a correct run takes milliseconds even under ASan.
constexpr double kTimeBound = 5.0;

struct HugeCase {
  ProblemDesc desc;
  bool nan_x = false;
  bool inf_w = false;
};

inline HugeCase decode_huge(ByteReader& r) {
  HugeCase hc;
  ProblemDesc& d = hc.desc;
  d.op = static_cast<Op>(r.u8() % 4);
  d.rank = 1 + r.u8() % 3;
  const uint8_t flags = r.u8();
  d.ceil_mode = (flags & 1) != 0;
  d.count_include_pad = (flags & 2) != 0;
  hc.nan_x = (flags & 4) != 0;
  hc.inf_w = (flags & 8) != 0;
  d.n = 1 + r.u8() % 2;
  d.c = 1 + r.u8() % 3;
  d.k = 1 + r.u8() % 3;
  d.groups = 1 + r.u8() % 3;
  for (size_t j = 0; j < static_cast<size_t>(d.rank); ++j) {
    d.input[j] = 1 + r.u8() % 6;
    d.kernel[j] = r.value(1);
    d.stride[j] = r.value(1);
    d.pad_lo[j] = r.value(0);
    d.pad_hi[j] = r.value(0);
    d.dilation[j] = r.value(1);
    d.output_padding[j] = r.value(0);
  }
  return hc;
}

namespace detail {

// -3..-1, 1..4 (no zeros: an Inf weight then never meets a real zero input).
inline std::vector<float> small_integers(int64_t count, int salt) {
  std::vector<float> v(static_cast<size_t>(count));
  for (size_t e = 0; e < v.size(); ++e) {
    const int m = static_cast<int>((e * 5 + static_cast<size_t>(salt) * 3) % 7);
    v[e] = static_cast<float>(m < 3 ? m - 3 : m - 2);
  }
  return v;
}

// "" when got matches the reference element by element (NaN positions, infinities, else 1e-5 of
// the magnitude).
inline std::string compare_to_reference(const std::vector<float>& got, const std::vector<double>& want,
                                        const std::vector<double>& magnitude) {
  for (size_t e = 0; e < want.size(); ++e) {
    const double g = static_cast<double>(got[e]), w = want[e];
    bool ok = false;
    if (std::isnan(w) || std::isnan(g))
      ok = std::isnan(w) && std::isnan(g);
    else if (std::isinf(w) || std::isinf(g))
      ok = g == w;
    else
      ok = std::fabs(g - w) <= 1e-5 * magnitude[e] + 1e-30;
    if (!ok)
      return "y[" + std::to_string(e) + "] = " + std::to_string(g) + ", the reference gives " + std::to_string(w);
  }
  return "";
}

} // namespace detail

inline std::string check_huge(const HugeCase& hc) {
  const Result<ConvProblem> made = ConvProblem::make(hc.desc);
  if (!made)
    return "";
  const ConvProblem& p = made.value();
  if (p.x_elements() > 4096 || p.w_elements() > 4096 || p.y_elements() > 4096 || p.y_elements() == 0)
    return "";
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<float> x = detail::small_integers(p.x_elements(), 1);
  std::vector<float> w = detail::small_integers(p.w_elements(), 2);
  const std::vector<float> bias = detail::small_integers(p.bias_elements(), 3);
  if (hc.nan_x)
    x[x.size() / 2] = std::numeric_limits<float>::quiet_NaN();
  if (hc.inf_w && !w.empty())
    w[w.size() / 3] = std::numeric_limits<float>::infinity();
  const float* wp = is_pool(p.op()) ? nullptr : w.data();
  const float* bp = bias.empty() ? nullptr : bias.data();
  const std::vector<double> want = oracle::reference(p, x.data(), wp, bp);
  const std::vector<double> mag = oracle::reference_magnitude(p, x.data(), wp, bp);
  for (const Algorithm& alg : algorithm_table()) {
    if (!(alg.ops & op_bit(p.op())) || !alg.supports(p).is_ok())
      continue;
    if (alg.device == Device::kCuda || alg.run == nullptr)
      continue; // CPU rows and the emulated twins of the CUDA kernels
    Result<Plan> plan = Plan::create(p, alg.device, alg.name);
    if (!plan)
      return std::string("Plan::create(") + alg.name + ") failed: " + plan.status().to_string();
    const size_t ws_bytes = plan->workspace_bytes();
    if (ws_bytes > (size_t{256} << 20))
      return std::string(alg.name) + ": workspace is " + std::to_string(ws_bytes) + " bytes for " + p.name();
    std::vector<float> y(static_cast<size_t>(p.y_elements()), std::numeric_limits<float>::quiet_NaN());
    std::vector<unsigned char> ws(ws_bytes + 1);
    const Status st = plan->run(x.data(), wp, bp, y.data(), ws.data(), ws_bytes);
    if (!st.is_ok())
      return std::string(alg.name) + " failed on " + p.name() + ": " + st.to_string();
    const std::string bad = detail::compare_to_reference(y, want, mag);
    if (!bad.empty())
      return std::string(alg.name) + " on " + p.name() + (hc.nan_x ? " (NaN in x)" : "") +
             (hc.inf_w ? " (Inf in w)" : "") + ": " + bad;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (seconds > kTimeBound)
    return p.name() + " took " + std::to_string(seconds) + " s for tensors of at most 4096 elements (bound " +
           std::to_string(kTimeBound) + " s)";
  return "";
}

inline std::string check_huge_bytes(const uint8_t* data, size_t size) {
  ByteReader r(data, size);
  return check_huge(decode_huge(r));
}

} // namespace convarith::fuzz
