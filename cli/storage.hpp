// cli/storage.hpp — float values as the bits of f16 / bf16 tensors and back, shared by `convarith run` (bf16
// files are float32 rounded on load) and the bench (random inputs in the layer's dtype). Header-only, like
// io.hpp, so that convarith_bench_lib uses the same code.
//
// Rounding is oracle::round_to (reference/, round to nearest even, written independently of the library's
// kernels/numeric.cuh conversions, so a library conversion bug cannot hide in the inputs of its own check);
// the rounded value is exactly representable, and is then encoded bit by bit. NaN stays a quiet NaN of the
// same sign; values past the largest finite number round to infinity, as round_to says.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "convarith/problem.hpp"
#include "reference/reference.hpp"

namespace convarith::cli {

inline uint32_t float_bits(float v) {
  uint32_t b = 0;
  std::memcpy(&b, &v, 4);
  return b;
}

inline uint16_t bf16_bits(float v) {
  if (std::isnan(v))
    return static_cast<uint16_t>(((float_bits(v) >> 16) & 0x8000u) | 0x7fc0u);
  return static_cast<uint16_t>(float_bits(oracle::round_to(DataType::kBF16, v)) >> 16);
}

inline float bf16_value(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float v = 0;
  std::memcpy(&v, &bits, 4);
  return v;
}

inline uint16_t f16_bits(float v) {
  const uint16_t sign = static_cast<uint16_t>((float_bits(v) >> 16) & 0x8000u);
  if (std::isnan(v))
    return static_cast<uint16_t>(sign | 0x7e00u);
  const double a = std::fabs(static_cast<double>(oracle::round_to(DataType::kF16, v)));
  if (std::isinf(a))
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (a < std::ldexp(1.0, -14)) // subnormal (or zero): a multiple of 2^-24
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::ldexp(a, 24)));
  int e = 0;
  const double m = std::frexp(a, &e); // a = m * 2^e, m in [0.5, 1): exponent field e - 1 + 15
  const uint16_t mantissa = static_cast<uint16_t>(std::ldexp(m, 11) - 1024.0);
  return static_cast<uint16_t>(sign | static_cast<uint16_t>((e + 14) << 10) | mantissa);
}

inline float f16_value(uint16_t h) {
  const int exp = (h >> 10) & 0x1f;
  const double man = h & 0x3ffu;
  double v;
  if (exp == 0)
    v = std::ldexp(man, -24);
  else if (exp == 31)
    v = man != 0 ? std::nan("") : HUGE_VAL;
  else
    v = std::ldexp(man + 1024.0, exp - 25);
  return static_cast<float>((h & 0x8000u) ? -v : v);
}

// `count` floats as the storage of a `dtype` tensor (dtype_bytes each, the same order).
inline std::vector<unsigned char> to_storage(const float* values, size_t count, DataType dtype) {
  std::vector<unsigned char> out(count * static_cast<size_t>(dtype_bytes(dtype)));
  for (size_t i = 0; i < count; ++i) {
    if (dtype == DataType::kF32) {
      std::memcpy(&out[4 * i], &values[i], 4);
    } else {
      const uint16_t b = dtype == DataType::kF16 ? f16_bits(values[i]) : bf16_bits(values[i]);
      std::memcpy(&out[2 * i], &b, 2);
    }
  }
  return out;
}

} // namespace convarith::cli
