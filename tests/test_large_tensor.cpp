// tests/test_large_tensor.cpp — the index arithmetic is 64-bit safe.
//  * ConvProblem's element counts, FLOPs and bytes for tensors past 2^31 elements, and near 2^63,
//    where overflow must be an error rather than a wrapped number;
//  * the GPU kernels' params builders (kernels/*.cuh, included in host mode as kernels/*_emu.cpp do)
//    give correct 64-bit extents and offsets for a problem past 2^31 elements, without allocating it;
//  * one real CPU run on an input past 2^31 bytes, spot-checked far past that mark against a direct
//    computation of those elements.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "conv_direct.cuh"
#include "conv_tiled.cuh"
#include "convarith/convarith.hpp"
#include "kernel_common.cuh"
#include "pool_direct.cuh"
#include "row.hpp"
#include "transpose_gather.cuh"
#include "transpose_scatter.cuh"

namespace convarith {
namespace {
template <typename Params> const kernels::KernelPlan<Params>& plan_of(const Prepared& p) {
  return *static_cast<const kernels::KernelPlan<Params>*>(p.state.get());
}

constexpr int64_t k2e31 = int64_t{1} << 31;

ProblemDesc conv2d(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w, int64_t r, int64_t pad) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.n = n, d.c = c, d.k = k, d.rank = 2;
  d.input = {h, w, 1};
  d.kernel = {r, r, 1};
  d.pad_lo = {pad, pad, 0};
  d.pad_hi = {pad, pad, 0};
  return d;
}

ConvProblem make_ok(const ProblemDesc& d) {
  const Result<ConvProblem> p = ConvProblem::make(d);
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p.is_ok() ? *p : ConvProblem();
}

// ---- ConvProblem's counts --------------------------------------------------------------------------

TEST(LargeTensor, CountsPast2To31AreExact) {
  // N=8, C=K=64, 4096x4096, 3x3 pad 1: x = y = 2^3 * 2^6 * 2^24 = 2^33 elements.
  const ConvProblem p = make_ok(conv2d(8, 64, 64, 4096, 4096, 3, 1));
  EXPECT_EQ(p.x_elements(), int64_t{1} << 33);
  EXPECT_EQ(p.y_elements(), int64_t{1} << 33);
  EXPECT_EQ(p.w_elements(), 64 * 64 * 9);
  EXPECT_EQ(p.in_spatial(), int64_t{1} << 24);
  EXPECT_EQ(p.out_spatial(), int64_t{1} << 24);
  EXPECT_EQ(p.min_bytes(), 4 * ((int64_t{1} << 34) + 64 * 64 * 9));
  // 2 * 8 * 64 * 64 * 9 * 2^24 = 9 * 2^40: exact in a double.
  EXPECT_EQ(p.flops(), 9.0 * std::ldexp(1.0, 40));

  // Rank 3 past 2^32: N=1, C=3, 1024^3, a 1x1x1 conv to K=5.
  ProblemDesc d3;
  d3.op = Op::kConv;
  d3.c = 3, d3.k = 5, d3.rank = 3;
  d3.input = {1024, 1024, 1024};
  const ConvProblem q = make_ok(d3);
  EXPECT_EQ(q.x_elements(), 3 * (int64_t{1} << 30));
  EXPECT_EQ(q.y_elements(), 5 * (int64_t{1} << 30));
  EXPECT_EQ(q.y_shape(), (std::vector<int64_t>{1, 5, 1024, 1024, 1024}));
  EXPECT_EQ(q.flops(), 2.0 * 5 * 3 * std::ldexp(1.0, 30));

  // A transposed conv whose output passes 2^31 from a small input: 2x upsampling of 1x16x8192x8192.
  ProblemDesc t = conv2d(1, 16, 16, 8192, 8192, 2, 0);
  t.op = Op::kConvTranspose;
  t.stride = {2, 2, 1};
  const ConvProblem tp = make_ok(t);
  EXPECT_EQ(tp.out(0), 16384);
  EXPECT_EQ(tp.y_elements(), 16 * (int64_t{1} << 28));
  EXPECT_GT(tp.y_elements(), k2e31);
}

TEST(LargeTensor, NearTwoTo63OverflowIsAnErrorNotAWrap) {
  // 2^31 * 2^31 * 2 = 2^63: one past int64.
  ProblemDesc d = conv2d(k2e31, k2e31, 1, 2, 1, 1, 0);
  Result<ConvProblem> p = ConvProblem::make(d);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(p.status().message().find("2147483648*2147483648*2"), std::string::npos) << p.status().message();

  // The largest valid 1-D pooling: x = y = 2^60 - 1, bytes 4 * (2^61 - 2) = 2^63 - 8 just fit ...
  ProblemDesc pool;
  pool.op = Op::kMaxPool;
  pool.rank = 1;
  pool.input = {(int64_t{1} << 60) - 1, 1, 1};
  p = ConvProblem::make(pool);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->x_elements(), (int64_t{1} << 60) - 1);
  EXPECT_EQ(p->min_bytes(), std::numeric_limits<int64_t>::max() - 7);
  EXPECT_TRUE(std::isfinite(p->flops()));
  EXPECT_EQ(p->flops(), std::ldexp(1.0, 60)); // 2^60 - 1 rounds to 2^60 in a double
  // ... and one more element each makes the byte count 2^63: an error, never a wrapped min_bytes().
  pool.input[0] = int64_t{1} << 60;
  p = ConvProblem::make(pool);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(p.status().message().find("bytes"), std::string::npos) << p.status().message();

  // Rank 3 at 2^21 per axis: the spatial product is exactly 2^63.
  ProblemDesc cube;
  cube.op = Op::kAvgPool;
  cube.rank = 3;
  cube.input = {int64_t{1} << 21, int64_t{1} << 21, int64_t{1} << 21};
  p = ConvProblem::make(cube);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(p.status().message().find("2097152*2097152*2097152"), std::string::npos) << p.status().message();

  // A transposed output size past 2^63: s(i-1)+k' with s = 2^62, i = 3.
  ProblemDesc t = conv2d(1, 1, 1, 3, 3, 1, 0);
  t.op = Op::kConvTranspose;
  t.stride = {int64_t{1} << 62, 1, 1};
  p = ConvProblem::make(t);
  ASSERT_FALSE(p.is_ok());
  EXPECT_EQ(p.status().code(), StatusCode::kOutOfRange);
  EXPECT_NE(p.status().message().find(std::to_string(int64_t{1} << 62)), std::string::npos) << p.status().message();
}

// ---- the kernels' params builders ---------------------------------------------------------------

// A fake, never dereferenced address: the builders only copy pointers.
template <typename T> T* fake(uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

TEST(LargeTensor, KernelGeometryAndOffsetsAre64Bit) {
  const ConvProblem p = make_ok(conv2d(8, 64, 64, 4096, 4096, 3, 1));
  const kernels::Geometry g = kernels::make_geometry(p);
  EXPECT_EQ(g.x_elements, int64_t{1} << 33);
  EXPECT_EQ(g.y_elements, int64_t{1} << 33);
  EXPECT_EQ(g.in_spatial, int64_t{1} << 24);
  EXPECT_FALSE(kernels::index_fits_int32(p));

  // The last element of every tensor sits at count - 1, far past what int32 can address.
  const int64_t last_x = kernels::x_offset<int64_t>(g, 7, 63, 0, 4095, 4095);
  EXPECT_EQ(last_x, (int64_t{1} << 33) - 1);
  EXPECT_NE(static_cast<int64_t>(static_cast<int32_t>(last_x)), last_x); // what 32-bit math would get wrong
  EXPECT_EQ(kernels::y_offset<int64_t>(g, 7, 63, 0, 4095, 4095), (int64_t{1} << 33) - 1);
  EXPECT_EQ(kernels::conv_w_offset<int64_t>(g, 63, 63, 0, 2, 2), 64 * 64 * 9 - 1);
  // An element in the middle, by hand: n=5, c=17, h=1234, w=4000.
  EXPECT_EQ(kernels::x_offset<int64_t>(g, 5, 17, 0, 1234, 4000), ((int64_t{5} * 64 + 17) * 4096 + 1234) * 4096 + 4000);
  EXPECT_EQ(kernels::y_offset<int64_t>(g, 5, 17, 0, 1234, 4000), ((int64_t{5} * 64 + 17) * 4096 + 1234) * 4096 + 4000);

  // Every prepare() keeps the 64-bit geometry and picks the 64-bit index instantiation.
  const DeviceInfo dev = emulated_device_info();
  const Result<Prepared> dprep = kernels::direct_prepare(p, dev);
  ASSERT_TRUE(dprep.is_ok());
  const auto& dplan = plan_of<kernels::DirectParams>(*dprep);
  EXPECT_EQ(dplan.params.g.x_elements, g.x_elements);
  EXPECT_EQ(dplan.params.g.y_elements, g.y_elements);
  EXPECT_TRUE(dplan.wide);
  // The grid-stride launch stays within the grid limit however many outputs there are.
  const unsigned blocks = kernels::grid_blocks(g.y_elements, kernels::kDirectThreads, kernels::kMaxGridBlocksGpu);
  EXPECT_GE(blocks, 1u);
  EXPECT_LE(static_cast<int64_t>(blocks), kernels::kMaxGridBlocksGpu);

  ASSERT_TRUE(kernels::tiled_supports(p, dev).is_ok());
  const Result<Prepared> tprep = kernels::tiled_prepare(p, dev);
  ASSERT_TRUE(tprep.is_ok());
  const kernels::TiledParams& tp = plan_of<kernels::TiledParams>(*tprep).params;
  EXPECT_EQ(tp.g.y_elements, g.y_elements);
  // The tiles cover the output exactly once: no tile short, none wholly outside.
  EXPECT_GE(tp.tiles_h * tp.tile_h, 4096);
  EXPECT_LT((tp.tiles_h - 1) * tp.tile_h, 4096);
  EXPECT_GE(tp.tiles_w * tp.tile_w, 4096);
  EXPECT_LT((tp.tiles_w - 1) * tp.tile_w, 4096);
  EXPECT_GE(tp.ktiles * tp.kt, 64);
  EXPECT_EQ(tp.total_tiles, 8 * tp.ktiles * tp.tiles_h * tp.tiles_w);
}

TEST(LargeTensor, TransposeAndPoolParamsPast2To31) {
  // Transposed: 1x16x8192x8192 -> 1x16x16384x16384 (2^32 outputs), stride 2, dilation 3, groups 2.
  ProblemDesc t = conv2d(1, 16, 16, 8192, 8192, 2, 0);
  t.op = Op::kConvTranspose;
  t.groups = 2;
  t.stride = {2, 2, 1};
  t.dilation = {3, 1, 1};
  t.output_padding = {2, 1, 1};
  const ConvProblem tp = make_ok(t);
  // o = s(i-1) + a + d(k-1) + 1 = 2*8191 + 2 + 3 + 1 = 16388 and 2*8191 + 1 + 1 + 1 = 16385.
  ASSERT_EQ(tp.out(0), 16388);
  ASSERT_EQ(tp.out(1), 16385);
  EXPECT_FALSE(kernels::index_fits_int32(tp));
  const DeviceInfo dev = emulated_device_info();
  const Result<Prepared> gprep = kernels::gather_prepare(tp, dev);
  ASSERT_TRUE(gprep.is_ok());
  const kernels::GatherParams& gp = plan_of<kernels::GatherParams>(*gprep).params;
  EXPECT_TRUE(plan_of<kernels::GatherParams>(*gprep).wide);
  EXPECT_EQ(gp.g.y_elements, int64_t{16} * 16388 * 16385);
  EXPECT_EQ(gp.g.kg, 8);
  EXPECT_EQ(gp.g.cg, 8);
  // Axis 0 of a rank-2 problem is H, index 1 of the rank-3 view: s = 2, d = 3 there.
  EXPECT_EQ(gp.r_step[1], 2); // s / gcd(s, d) = 2 / 1
  EXPECT_EQ(gp.i_step[1], 3); // d / gcd(s, d) = 3 / 1
  EXPECT_EQ(gp.d_div_s[1], 1);
  EXPECT_EQ(gp.d_mod_s[1], 1);
  EXPECT_EQ(kernels::y_offset<int64_t>(gp.g, 0, 15, 0, 16387, 16384), gp.g.y_elements - 1);
  EXPECT_EQ(kernels::transpose_w_offset<int64_t>(gp.g, 15, 7, 0, 1, 1), tp.w_elements() - 1);
  const Result<Prepared> sprep = kernels::scatter_prepare(tp, dev);
  ASSERT_TRUE(sprep.is_ok());
  const kernels::ScatterParams& sp = plan_of<kernels::ScatterParams>(*sprep).params;
  EXPECT_EQ(sp.g.y_elements, gp.g.y_elements);
  EXPECT_EQ(sp.g.x_elements, int64_t{16} * 8192 * 8192);

  // Pooling: 4 x 32 x 8192 x 8192 max pool (2^33 inputs), 3x3 stride 2 pad 1.
  ProblemDesc d = conv2d(4, 32, 32, 8192, 8192, 3, 1);
  d.op = Op::kMaxPool;
  d.stride = {2, 2, 1};
  const ConvProblem pp = make_ok(d);
  const Result<Prepared> pprep = kernels::pool_prepare(pp, dev);
  ASSERT_TRUE(pprep.is_ok());
  const kernels::PoolParams& pool = plan_of<kernels::PoolParams>(*pprep).params;
  EXPECT_EQ(pool.is_max, 1);
  EXPECT_EQ(pool.g.x_elements, int64_t{1} << 33);
  EXPECT_EQ(pool.g.out[1], 4096);
  EXPECT_EQ(pool.g.y_elements, int64_t{1} << 31);
  EXPECT_EQ(kernels::x_offset<int64_t>(pool.g, 3, 31, 0, 8191, 8191), (int64_t{1} << 33) - 1);
  EXPECT_FALSE(kernels::index_fits_int32(pp));
}

TEST(LargeTensor, Int32IndexChoiceBoundary) {
  // x = 127 * 2^24 < 2^31: 32-bit indices are safe ...
  EXPECT_TRUE(kernels::index_fits_int32(make_ok(conv2d(1, 127, 127, 4096, 4096, 3, 1))));
  // ... x = 128 * 2^24 = 2^31 is not.
  EXPECT_FALSE(kernels::index_fits_int32(make_ok(conv2d(1, 128, 127, 4096, 4096, 3, 1))));
  // Only the output passes 2^31.
  EXPECT_FALSE(kernels::index_fits_int32(make_ok(conv2d(1, 127, 128, 4096, 4096, 3, 1))));
  // Small tensors but a coordinate product past 2^31: a huge stride on a 1-D input.
  ProblemDesc d = conv2d(1, 1, 1, 3, 1, 1, 0);
  d.stride = {int64_t{1} << 31, 1, 1};
  EXPECT_FALSE(kernels::index_fits_int32(make_ok(d)));
}

// ---- a real run past 2^31 bytes -------------------------------------------------------------------

// The input value at flat index e: exact in float32 (< 2^16), varied so the max of a window depends
// on which elements the code reads.
inline float x_value(int64_t e) {
  const uint64_t u = static_cast<uint64_t>(e) * 0x9E3779B97F4A7C15ull;
  return static_cast<float>((u >> 40) & 0xFFFF);
}

TEST(LargeTensor, CpuMaxPoolPast2To31Bytes) {
  // x: 1 x 2 x 16448 x 16448 floats = 2,164,262,912 bytes (> 2^31); y: 2 x 8224 x 8224 (2x2, stride 2).
  ProblemDesc d = conv2d(1, 2, 2, 16448, 16448, 2, 0);
  d.op = Op::kMaxPool;
  d.stride = {2, 2, 1};
  const ConvProblem p = make_ok(d);
  ASSERT_GT(p.x_elements() * static_cast<int64_t>(sizeof(float)), k2e31);
  const Result<Plan> plan = Plan::create(p, Device::kCpu, "auto");
  ASSERT_TRUE(plan.is_ok()) << plan.status().to_string();

  std::unique_ptr<float[]> x(new (std::nothrow) float[static_cast<size_t>(p.x_elements())]);
  std::unique_ptr<float[]> y(new (std::nothrow) float[static_cast<size_t>(p.y_elements())]);
  if (!x || !y)
    GTEST_SKIP() << "cannot allocate " << p.min_bytes() << " bytes on this machine";
  for (int64_t e = 0; e < p.x_elements(); ++e)
    x[static_cast<size_t>(e)] = x_value(e);
  for (int64_t e = 0; e < p.y_elements(); ++e)
    y[static_cast<size_t>(e)] = std::numeric_limits<float>::quiet_NaN();
  std::vector<unsigned char> ws(plan->workspace_bytes() + 1);
  const Status st = plan->run(x.get(), nullptr, nullptr, y.get(), ws.data(), plan->workspace_bytes());
  ASSERT_TRUE(st.is_ok()) << st.to_string();

  const int64_t ih = 16448, oh = 8224;
  const auto want = [&](int64_t c, int64_t r, int64_t q) {
    float m = -1.0f;
    for (int64_t dr = 0; dr < 2; ++dr)
      for (int64_t dq = 0; dq < 2; ++dq)
        m = std::max(m, x_value((c * ih + 2 * r + dr) * ih + 2 * q + dq));
    return m;
  };
  // Every output written; spot checks across the whole tensor, most of them in channel 1's last rows
  // whose inputs lie past 2^31 bytes (flat index > 2^29).
  int64_t unwritten = 0;
  for (int64_t e = 0; e < p.y_elements(); ++e)
    unwritten += std::isnan(y[static_cast<size_t>(e)]) ? 1 : 0;
  EXPECT_EQ(unwritten, 0);
  int64_t checked_past_mark = 0;
  for (int64_t c = 0; c < 2; ++c) {
    for (int64_t r : {int64_t{0}, int64_t{1}, int64_t{4111}, int64_t{8097}, int64_t{8100}, int64_t{8222}, oh - 1}) {
      for (int64_t q : {int64_t{0}, int64_t{1}, int64_t{3000}, int64_t{8191}, oh - 2, oh - 1}) {
        const int64_t e = (c * oh + r) * oh + q;
        ASSERT_EQ(y[static_cast<size_t>(e)], want(c, r, q)) << "y[" << c << "," << r << "," << q << "]";
        if ((c * ih + 2 * r) * ih + 2 * q > (int64_t{1} << 29))
          ++checked_past_mark;
      }
    }
  }
  EXPECT_GE(checked_past_mark, 12);
  // A dense stripe at the very end: the last 100,000 outputs.
  for (int64_t e = p.y_elements() - 100000; e < p.y_elements(); ++e) {
    const int64_t q = e % oh, r = e / oh % oh, c = e / (oh * oh);
    ASSERT_EQ(y[static_cast<size_t>(e)], want(c, r, q)) << "flat y index " << e;
  }
}

} // namespace
} // namespace convarith
