// kernels/numeric.cuh — storage types (f16, bf16), their conversions, and the fused epilogue: the one
// device functor every CUDA kernel applies and the one routine the CPU rows apply (host and device).
//
// Storage: f16 is IEEE binary16, bf16 the upper half of a binary32; both convert to float exactly, and float
// converts to them with round to nearest even (overflow to inf, NaN stays NaN). With nvcc the conversions
// use the hardware instructions (__half/__nv_bfloat16 intrinsics); on the host the same rounding in integer
// arithmetic, bit for bit the same results (tests check every f16 value and sampled floats).
// Accumulation is always fp32: kernels load through to_float() and store through the epilogue.
//
// Epilogue: y = act(alpha * acc + bias + beta * z), with ONNX's activations:
//   relu max(v, 0); leaky_relu v < 0 ? a*v : v; clip min(max(v, lo), hi); sigmoid 1/(1+e^-v); tanh;
//   silu v*sigmoid(v); gelu 0.5 v (1 + erf(v/sqrt 2)); gelu_tanh 0.5 v (1 + tanh(sqrt(2/pi)(v + 0.044715 v^3))).
// Evaluated in float; max |error| a few float ulps of the result (expf/erff/tanhf), which the acceptance rule
// allows for. NaN propagates through every activation (relu(NaN) = NaN, as PyTorch and ONNX Runtime).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

#if !defined(CONVARITH_HOST_DEVICE)
#if defined(__CUDACC__)
#define CONVARITH_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define CONVARITH_HOST_DEVICE inline
#endif
#endif

namespace convarith::kernels {

struct f16 {
  uint16_t bits;
};
struct bf16 {
  uint16_t bits;
};

CONVARITH_HOST_DEVICE uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}
CONVARITH_HOST_DEVICE float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// Host reference conversions (also used on the device where no intrinsic applies).
CONVARITH_HOST_DEVICE float f16_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f)
    return bits_float(sign | 0x7f800000u | (man << 13)); // inf / NaN (payload kept)
  if (exp != 0)
    return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
  if (man == 0)
    return bits_float(sign);
  // Subnormal: normalise.
  int e = -1;
  do {
    man <<= 1;
    ++e;
  } while ((man & 0x400u) == 0);
  man &= 0x3ffu;
  return bits_float(sign | (static_cast<uint32_t>(112 - e) << 23) | (man << 13));
}

CONVARITH_HOST_DEVICE uint16_t float_to_f16_bits(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t abs = u & 0x7fffffffu;
  if (abs >= 0x7f800000u) // inf or NaN (quiet the NaN, keep a payload bit)
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u | ((abs >> 13) & 0x3ffu) : 0u));
  if (abs >= 0x477ff000u) // rounds to >= 65520: overflow to inf
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (abs < 0x38800000u) { // below the smallest normal f16 (2^-14): subnormal or zero
    if (abs < 0x33000000u) // < 2^-25: rounds to zero (2^-25 exactly is a tie to even: zero)
      return static_cast<uint16_t>(sign);
    const uint32_t e = abs >> 23; // 102..112
    const uint32_t man = (abs & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e; // 14..24: value = man * 2^(e-150), subnormal unit 2^-24
    uint32_t q = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u)))
      ++q;
    return static_cast<uint16_t>(sign | q);
  }
  // Normal: rebias the exponent, round the 13 dropped bits to nearest even (a carry may reach inf: fine).
  uint32_t v = abs - 0x38000000u; // exponent 127 -> 15
  const uint32_t rem = v & 0x1fffu;
  v >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (v & 1u)))
    ++v;
  return static_cast<uint16_t>(sign | v);
}

CONVARITH_HOST_DEVICE float bf16_bits_to_float(uint16_t b) {
  return bits_float(static_cast<uint32_t>(b) << 16);
}
CONVARITH_HOST_DEVICE uint16_t float_to_bf16_bits(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: keep it a quiet NaN
    return static_cast<uint16_t>((u >> 16) | 0x40u);
  const uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

// Loads as float; stores from float (round to nearest even).
CONVARITH_HOST_DEVICE float to_float(float v) {
  return v;
}
CONVARITH_HOST_DEVICE float to_float(f16 v) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(v.bits));
#else
  return f16_bits_to_float(v.bits);
#endif
}
CONVARITH_HOST_DEVICE float to_float(bf16 v) {
  return bf16_bits_to_float(v.bits);
}
template <typename T> CONVARITH_HOST_DEVICE T from_float(float v);
template <> CONVARITH_HOST_DEVICE float from_float<float>(float v) {
  return v;
}
template <> CONVARITH_HOST_DEVICE f16 from_float<f16>(float v) {
#if defined(__CUDA_ARCH__)
  return f16{__half_as_ushort(__float2half_rn(v))};
#else
  return f16{float_to_f16_bits(v)};
#endif
}
template <> CONVARITH_HOST_DEVICE bf16 from_float<bf16>(float v) {
#if defined(__CUDA_ARCH__)
  return bf16{__bfloat16_as_ushort(__float2bfloat16_rn(v))};
#else
  return bf16{float_to_bf16_bits(v)};
#endif
}

// The epilogue as flat numbers (a kernel params member). act: the Activation enum's value.
struct EpilogueParams {
  int act = 0;
  float alpha = 1.0f, beta = 0.0f;
  float a = 0.0f, b = 0.0f; // leaky_relu: a = slope; clip: [a, b]
};

// Activation codes, the same numbers as convarith::Activation (checked by a static_assert in the host code).
enum : int {
  kActIdentity = 0,
  kActRelu,
  kActLeakyRelu,
  kActClip,
  kActSigmoid,
  kActTanh,
  kActSilu,
  kActGelu,
  kActGeluTanh
};

// The piecewise-linear activations, one function each: apply_activation's switch and the compile-time epilogue
// (apply_epilogue_as) share them, so both give the same bits.
CONVARITH_HOST_DEVICE float act_relu(float v) {
  return v > 0.0f ? v : (v == v ? 0.0f : v); // NaN stays NaN
}
CONVARITH_HOST_DEVICE float act_leaky_relu(const EpilogueParams& e, float v) {
  return v < 0.0f ? e.a * v : v;
}
CONVARITH_HOST_DEVICE float act_clip(const EpilogueParams& e, float v) {
  return v != v ? v : (v < e.a ? e.a : (v > e.b ? e.b : v));
}

CONVARITH_HOST_DEVICE float apply_activation(const EpilogueParams& e, float v) {
  switch (e.act) {
  case kActRelu:
    return act_relu(v);
  case kActLeakyRelu:
    return act_leaky_relu(e, v);
  case kActClip:
    return act_clip(e, v);
  case kActSigmoid:
    return 1.0f / (1.0f + expf(-v));
  case kActTanh:
    return tanhf(v);
  case kActSilu:
    return v / (1.0f + expf(-v));
  case kActGelu:
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  case kActGeluTanh:
    return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
  default:
    return v;
  }
}

// kActAny: the activation is read from EpilogueParams at run time (apply_activation's switch). A kernel
// instantiated for one piecewise-linear activation (identity, relu, leaky_relu, clip: has_compile_time_act) passes
// its code instead, and its loop holds that activation's code only.
constexpr int kActAny = -1;
CONVARITH_HOST_DEVICE constexpr bool has_compile_time_act(int act) {
  return act == kActIdentity || act == kActRelu || act == kActLeakyRelu || act == kActClip;
}
template <int kAct> CONVARITH_HOST_DEVICE float apply_activation_as(const EpilogueParams& e, float v) {
  if constexpr (kAct == kActRelu) {
    return act_relu(v);
  } else if constexpr (kAct == kActLeakyRelu) {
    return act_leaky_relu(e, v);
  } else if constexpr (kAct == kActClip) {
    return act_clip(e, v);
  } else if constexpr (kAct == kActIdentity) {
    return v;
  } else {
    return apply_activation(e, v);
  }
}

// y = act(alpha * acc + bias + beta * z). `z` is read by the caller only when beta != 0.
CONVARITH_HOST_DEVICE float apply_epilogue(const EpilogueParams& e, float acc, float bias, float z) {
  float v = e.alpha * acc + bias;
  if (e.beta != 0.0f)
    v += e.beta * z;
  return apply_activation(e, v);
}
// The same with the activation kAct (kActAny: EpilogueParams::act at run time).
template <int kAct>
CONVARITH_HOST_DEVICE float apply_epilogue_as(const EpilogueParams& e, float acc, float bias, float z) {
  float v = e.alpha * acc + bias;
  if (e.beta != 0.0f)
    v += e.beta * z;
  return apply_activation_as<kAct>(e, v);
}

} // namespace convarith::kernels
