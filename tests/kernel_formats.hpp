// tests/kernel_formats.hpp — what the kernel format tests share (test_kernels_formats.cpp under the executor,
// test_kernels_gpu.cpp on a GPU): buffers in a tensor's dtype, the formats a row declares, inputs (small integers
// or random floats, stored values of the dtype), the exact comparison, and a set of small conv-like problems.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "convarith/convarith.hpp"
#include "numeric.cuh"
#include "row.hpp"
#include "support/support.hpp"

namespace convarith::test {

// ---- buffers in a tensor's dtype ------------------------------------------------------------------------------
struct Buffer {
  DataType dtype = DataType::kF32;
  int64_t elements = 0;
  std::vector<unsigned char> bytes;
  void* data() { return bytes.empty() ? nullptr : bytes.data(); }
  const void* data() const { return bytes.empty() ? nullptr : bytes.data(); }
};

inline Buffer make_buffer(const TensorDesc& t) {
  Buffer b;
  b.dtype = t.dtype;
  b.elements = t.rank > 0 ? t.elements : 0;
  b.bytes.resize(static_cast<size_t>(b.elements * dtype_bytes(t.dtype)));
  return b;
}

// Stores v rounded to the buffer's dtype (kernels::from_float: the stored value is what the kernel reads).
inline void store(Buffer& b, int64_t i, float v) {
  switch (b.dtype) {
  case DataType::kF16: {
    const uint16_t bits = kernels::from_float<kernels::f16>(v).bits;
    std::memcpy(b.bytes.data() + 2 * i, &bits, 2);
    break;
  }
  case DataType::kBF16: {
    const uint16_t bits = kernels::from_float<kernels::bf16>(v).bits;
    std::memcpy(b.bytes.data() + 2 * i, &bits, 2);
    break;
  }
  default:
    std::memcpy(b.bytes.data() + 4 * i, &v, 4);
  }
}

inline void poison(Buffer& b) {
  for (int64_t i = 0; i < b.elements; ++i)
    store(b, i, std::numeric_limits<float>::quiet_NaN());
}

// Uniform integers in [-m, m] (integers = true) or floats in [-1, 1].
inline void fill(Buffer& b, std::mt19937_64& rng, bool integers, int m) {
  std::uniform_int_distribution<int> ints(-m, m);
  std::uniform_real_distribution<float> reals(-1.0f, 1.0f);
  for (int64_t i = 0; i < b.elements; ++i)
    store(b, i, integers ? static_cast<float>(ints(rng)) : reals(rng));
}

// ---- formats ---------------------------------------------------------------------------------------------------
enum class Epi { kIdentity, kReluResidual, kReluInPlace, kLeakyNoBias, kTranscendental };
inline const Epi kEpilogues[] = {Epi::kIdentity, Epi::kReluResidual, Epi::kReluInPlace, Epi::kLeakyNoBias,
                                 Epi::kTranscendental};

inline const char* epi_name(Epi e) {
  switch (e) {
  case Epi::kIdentity:
    return "identity";
  case Epi::kReluResidual:
    return "relu+z";
  case Epi::kReluInPlace:
    return "relu+z==y";
  case Epi::kLeakyNoBias:
    return "leaky(2x - z), no bias";
  default:
    return "transcendental";
  }
}

struct Format {
  DataType dtype = DataType::kF32;
  Layout layout = Layout::kNCHW;
  Layout w_layout = Layout::kNCHW;
  Epi epi = Epi::kIdentity;
  int rotate = 0; // picks the transcendental activation
};

inline std::string format_name(const Format& f) {
  return std::string(dtype_name(f.dtype)) + " x:" + layout_name(f.layout) + " w:" + layout_name(f.w_layout) + " " +
         epi_name(f.epi);
}

inline bool has_bias(const Format& f) {
  return f.epi != Epi::kLeakyNoBias;
}
inline bool in_place(const Format& f) {
  return f.epi == Epi::kReluInPlace;
}
inline bool exact_epilogue(const Format& f) {
  return f.epi != Epi::kTranscendental;
}

// The problem with this format (pooling: dtype and layout only).
inline ConvProblem with_format(const ConvProblem& base, const Format& f) {
  ProblemDesc d = base.resolved();
  d.dtype = f.dtype;
  d.layout = f.layout;
  if (!is_pool(d.op))
    d.w_layout = f.w_layout;
  Epilogue& e = d.epilogue;
  switch (f.epi) {
  case Epi::kIdentity:
    break;
  case Epi::kReluResidual:
    e.activation = Activation::kRelu;
    e.beta = 1.0f;
    if (f.dtype != DataType::kF32)
      d.bias_dtype = DataType::kF32; // bias f32 with f16/bf16 tensors
    break;
  case Epi::kReluInPlace:
    e.activation = Activation::kRelu;
    e.beta = 1.0f;
    break;
  case Epi::kLeakyNoBias:
    e.activation = Activation::kLeakyRelu;
    e.leaky_alpha = 0.25f;
    e.alpha = 2.0f;
    e.beta = -1.0f;
    break;
  case Epi::kTranscendental: {
    const Activation acts[] = {Activation::kSigmoid, Activation::kTanh,     Activation::kSilu,
                               Activation::kGelu,    Activation::kGeluTanh, Activation::kClip};
    e.activation = acts[f.rotate % 6];
    e.clip_min = -0.5f;
    e.clip_max = 0.75f;
    e.alpha = 0.5f;
    e.beta = 0.5f;
    break;
  }
  }
  return must_make(d);
}

inline std::vector<Format> formats_of(const Algorithm& row, Op op, int rotate) {
  std::vector<Format> out;
  for (DataType dt : {DataType::kF32, DataType::kF16, DataType::kBF16}) {
    if (!(row.dtypes & dtype_bit(dt)))
      continue;
    for (Layout l : {Layout::kNCHW, Layout::kNHWC}) {
      if (!(row.layouts & layout_bit(l)))
        continue;
      for (Layout wl : {Layout::kNCHW, Layout::kNHWC}) {
        if (!(row.layouts & layout_bit(wl)) || (is_pool(op) && wl != l))
          continue;
        for (Epi e : kEpilogues) {
          if (e != Epi::kIdentity && (!row.epilogue || is_pool(op)))
            continue;
          out.push_back({dt, l, wl, e, rotate});
        }
      }
    }
  }
  return out;
}

// ---- one run -----------------------------------------------------------------------------------------------------
struct TensorSet {
  Buffer x, w, bias, z;
};

inline TensorSet make_inputs(const ConvProblem& p, uint64_t seed, bool integers) {
  std::mt19937_64 rng(seed);
  TensorSet in;
  in.x = make_buffer(p.tensor(TensorId::kX));
  in.w = make_buffer(p.tensor(TensorId::kW));
  in.bias = make_buffer(p.tensor(TensorId::kBias));
  in.z = make_buffer(p.tensor(TensorId::kZ));
  fill(in.x, rng, integers, 1);
  fill(in.w, rng, integers, 2);
  fill(in.bias, rng, integers, 3);
  fill(in.z, rng, integers, 3);
  return in;
}

inline oracle::Tensors oracle_tensors(const TensorSet& in, bool with_bias) {
  oracle::Tensors t;
  t.x = in.x.data();
  t.w = in.w.data();
  t.bias = with_bias ? in.bias.data() : nullptr;
  t.z = in.z.data();
  return t;
}

// ---- problems ----------------------------------------------------------------------------------------------------
inline ProblemDesc layer(Op op, int64_t n, int64_t c, int64_t k, int64_t groups, std::vector<int64_t> input,
                         std::vector<int64_t> kernel, int64_t stride, int64_t pad_lo, int64_t pad_hi,
                         int64_t dilation) {
  ProblemDesc d;
  d.op = op;
  d.n = n;
  d.c = c;
  d.k = k;
  d.groups = groups;
  d.rank = static_cast<int>(input.size());
  for (size_t j = 0; j < input.size(); ++j) {
    d.input[j] = input[j];
    d.kernel[j] = kernel[j];
    d.stride[j] = stride;
    d.pad_lo[j] = pad_lo;
    d.pad_hi[j] = pad_hi;
    d.dilation[j] = dilation;
  }
  return d;
}

inline std::vector<NamedProblem> conv_like(Op op) {
  std::vector<NamedProblem> v;
  auto add = [&](const std::string& name, ProblemDesc d) { v.push_back({name, must_make(d)}); };
  add("layer3x3", layer(op, 2, 8, 12, 1, {7, 6}, {3, 3}, 1, 1, 1, 1));
  add("stride2_dil2_asym", layer(op, 1, 3, 5, 1, {11, 9}, {3, 3}, 2, 2, 1, 2));
  add("groups2", layer(op, 1, 6, 4, 2, {6, 7}, {2, 3}, 1, 1, 0, 1));
  add("depthwise", layer(op, 1, 5, 5, 5, {8, 8}, {3, 3}, 1, 1, 1, 1));
  add("rank1", layer(op, 2, 3, 4, 1, {17}, {5}, 2, 2, 2, 1));
  add("rank3", layer(op, 1, 4, 3, 1, {4, 5, 3}, {2, 3, 2}, 1, 1, 1, 1));
  add("pointwise_chunks", layer(op, 2, 20, 18, 1, {5, 5}, {1, 1}, 1, 0, 0, 1));
  return v;
}

// Elements of got (y's values, memory order) that differ from the reference rounded once to y's dtype (the exact
// comparison of small-integer inputs: every fp32 sum is exact, so the kernel's one rounding equals it).
struct Mismatch {
  int64_t bad = 0, first = -1;
  double got = 0, want = 0;
};
inline Mismatch exact_mismatches(const ConvProblem& p, const std::vector<double>& got,
                                 const std::vector<double>& want) {
  Mismatch m;
  const DataType ydt = p.dtype(TensorId::kY);
  for (size_t e = 0; e < want.size() && e < got.size(); ++e) {
    const double expect = oracle::round_to(ydt, static_cast<float>(want[e]));
    if (!(got[e] == expect)) {
      if (m.first < 0) {
        m.first = static_cast<int64_t>(e);
        m.got = got[e];
        m.want = expect;
      }
      ++m.bad;
    }
  }
  if (got.size() != want.size())
    m.bad += 1;
  return m;
}

} // namespace convarith::test
