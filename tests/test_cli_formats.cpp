// tests/test_cli_formats.cpp — the CLI's tensor formats and fused epilogue (issue 12 item 9): --dtype,
// --layout, --w-layout, --activation, --alpha, --beta and --z through `convarith run` (in-process and the
// built binary), `shape` and `draw`; '<f2' files; bf16 rounding on load; channels-last file shapes.
// Every input file is generated here (small integers and halves: exact in f16, bf16 and f32), and the
// expected outputs come from loops written in this file over the NHWC arrays, not from the oracle.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "attributes.hpp"
#include "npy.hpp"
#include "storage.hpp"
#include "subcommands.hpp"

namespace convarith::cli {
namespace {

using Args = std::vector<std::string>;

struct Outcome {
  int code;
  std::string out, err;
};

Outcome run(const Args& args) {
  std::ostringstream out, err;
  const int code = run_main(args, out, err);
  return {code, out.str(), err.str()};
}

Outcome shape(const Args& args) {
  std::ostringstream out, err;
  const int code = shape_main(args, out, err);
  return {code, out.str(), err.str()};
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

class TempDir {
public:
  TempDir() {
    std::string t = ::testing::TempDir() + "cli_formats_XXXXXX";
    path_ = mkdtemp(&t[0]) ? t : ::testing::TempDir();
  }
  ~TempDir() {
    for (const std::string& f : files_)
      std::remove(f.c_str());
    ::rmdir(path_.c_str());
  }
  std::string file(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }

private:
  std::string path_;
  std::vector<std::string> files_;
};

// IEEE binary16 bits of a float that f16 holds exactly (normal numbers and zero only: the test values).
uint16_t half_of(float v) {
  uint32_t b = 0;
  std::memcpy(&b, &v, 4);
  const uint16_t sign = static_cast<uint16_t>((b >> 16) & 0x8000u);
  if ((b & 0x7fffffffu) == 0)
    return sign;
  const int exp = static_cast<int>((b >> 23) & 0xff) - 127 + 15;
  EXPECT_TRUE(exp > 0 && exp < 31 && (b & 0x1fffu) == 0) << v << " is not an exact normal f16";
  return static_cast<uint16_t>(sign | (exp << 10) | ((b >> 13) & 0x3ffu));
}

float float_of_half(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  const int exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ffu;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    v = man ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    v = std::ldexp(static_cast<float>(man | 0x400u), exp - 25);
  }
  return sign ? -v : v;
}

std::vector<uint16_t> halves(const std::vector<float>& v) {
  std::vector<uint16_t> h;
  for (float f : v)
    h.push_back(half_of(f));
  return h;
}

// A conv layer in NHWC / KRSC with bias, relu and a residual: N=1, H=W=5, C=3, K=4, 3x3, pads 1.
struct NhwcLayer {
  static constexpr int H = 5, W = 5, C = 3, K = 4, R = 3;
  std::vector<float> x, w, b, z; // x N,H,W,C; w K,R,S,C; z N,H,W,K
  NhwcLayer() {
    for (int i = 0; i < H * W * C; ++i)
      x.push_back(static_cast<float>(i % 7 - 3) * 0.5f);
    for (int i = 0; i < K * R * R * C; ++i)
      w.push_back(static_cast<float>(i % 5 - 2));
    for (int k = 0; k < K; ++k)
      b.push_back(static_cast<float>(k) - 1.5f);
    for (int i = 0; i < H * W * K; ++i)
      z.push_back(static_cast<float>(i % 3) - 1.0f);
  }
  // relu(alpha * conv + b + beta * z), N,H,W,K: every partial sum is a multiple of 0.25 below 2^10, exact in f16.
  std::vector<float> expected(float alpha, float beta, bool relu, bool bias = true) const {
    std::vector<float> y;
    for (int oh = 0; oh < H; ++oh)
      for (int ow = 0; ow < W; ++ow)
        for (int k = 0; k < K; ++k) {
          double acc = 0;
          for (int r = 0; r < R; ++r)
            for (int s = 0; s < R; ++s) {
              const int ih = oh - 1 + r, iw = ow - 1 + s;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                continue;
              for (int c = 0; c < C; ++c)
                acc += x[static_cast<size_t>((ih * W + iw) * C + c)] *
                       w[static_cast<size_t>(((k * R + r) * R + s) * C + c)];
            }
          double v = alpha * acc + (bias ? b[static_cast<size_t>(k)] : 0.0f) +
                     beta * z[static_cast<size_t>((oh * W + ow) * K + k)];
          y.push_back(static_cast<float>(relu ? std::max(v, 0.0) : v));
        }
    return y;
  }
};

struct LayerFiles {
  std::string x, w, b, z, out;
};

// Writes the layer's files as f16 ('<f2') or f32 ('<f4').
LayerFiles write_layer(TempDir& dir, const NhwcLayer& l, bool f16, const std::string& tag) {
  LayerFiles f{dir.file(tag + "x.npy"), dir.file(tag + "w.npy"), dir.file(tag + "b.npy"), dir.file(tag + "z.npy"),
               dir.file(tag + "y.npy")};
  const std::vector<int64_t> xs{1, NhwcLayer::H, NhwcLayer::W, NhwcLayer::C};
  const std::vector<int64_t> ws{NhwcLayer::K, NhwcLayer::R, NhwcLayer::R, NhwcLayer::C};
  const std::vector<int64_t> bs{NhwcLayer::K}, zs{1, NhwcLayer::H, NhwcLayer::W, NhwcLayer::K};
  if (f16) {
    EXPECT_TRUE(write_npy_f16(f.x, xs, halves(l.x).data()).is_ok());
    EXPECT_TRUE(write_npy_f16(f.w, ws, halves(l.w).data()).is_ok());
    EXPECT_TRUE(write_npy_f16(f.b, bs, halves(l.b).data()).is_ok());
    EXPECT_TRUE(write_npy_f16(f.z, zs, halves(l.z).data()).is_ok());
  } else {
    EXPECT_TRUE(write_npy(f.x, xs, l.x.data()).is_ok());
    EXPECT_TRUE(write_npy(f.w, ws, l.w.data()).is_ok());
    EXPECT_TRUE(write_npy(f.b, bs, l.b.data()).is_ok());
    EXPECT_TRUE(write_npy(f.z, zs, l.z.data()).is_ok());
  }
  return f;
}

Args f16_nhwc_relu_residual_args(const LayerFiles& f, const std::string& device) {
  return {"conv", "--x",      f.x,       "--w",     f.w,     "--b",      f.b,    "--z",
          f.z,    "--pads",   "1,1,1,1", "--dtype", "f16",   "--layout", "NHWC", "--activation",
          "relu", "--device", device,    "--check", "--out", f.out};
}

// The output file as floats (f16 files converted), with its shape.
std::vector<float> read_output(const std::string& path, NpyType type, std::vector<int64_t>* shape) {
  Result<NpyArray> a = read_npy(path, type);
  EXPECT_TRUE(a.is_ok()) << a.status().to_string();
  if (!a)
    return {};
  *shape = a->shape;
  if (type == NpyType::kF32)
    return a->data;
  std::vector<float> out;
  for (uint16_t h : a->half)
    out.push_back(float_of_half(h));
  return out;
}

TEST(CliFormats, F16NhwcBiasReluResidualRunsAndChecksOnTheCpu) {
  TempDir dir;
  const NhwcLayer l;
  const LayerFiles f = write_layer(dir, l, true, "");
  const Outcome o = run(f16_nhwc_relu_residual_args(f, "cpu"));
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
  EXPECT_TRUE(contains(o.out, "formats: x f16 NHWC, w f16 NHWC, bias f16, z f16 NHWC, y f16 NHWC")) << o.out;
  EXPECT_TRUE(contains(o.out, "y = relu(conv + bias + z)")) << o.out;
  std::vector<int64_t> s;
  const std::vector<float> y = read_output(f.out, NpyType::kF16, &s); // '<f2', in N,H,W,K order
  EXPECT_EQ(s, (std::vector<int64_t>{1, 5, 5, 4}));
  EXPECT_EQ(y, l.expected(1.0f, 1.0f, true));
}

// The emulated rows run the CUDA kernels' code; until they take f16 / NHWC, Plan::create refuses the
// layer naming what the rows take. Either is right; anything else is not.
TEST(CliFormats, F16NhwcBiasReluResidualOnTheEmulatedDeviceChecksOrIsRefusedClearly) {
  TempDir dir;
  const NhwcLayer l;
  const LayerFiles f = write_layer(dir, l, true, "");
  const Outcome o = run(f16_nhwc_relu_residual_args(f, "emulated"));
  if (o.code == 0) {
    EXPECT_TRUE(contains(o.out, "on emulated")) << o.out;
    EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
    std::vector<int64_t> s;
    EXPECT_EQ(read_output(f.out, NpyType::kF16, &s), l.expected(1.0f, 1.0f, true));
  } else {
    EXPECT_EQ(o.code, 2) << o.err;
    EXPECT_TRUE(contains(o.err, "no emulated algorithm runs")) << o.err;
    EXPECT_TRUE(contains(o.err, "takes")) << o.err;
    EXPECT_NE(::access(f.out.c_str(), F_OK), 0) << "nothing is written when the run is refused";
  }
}

// The emulated device itself: an f32 NCHW conv with bias, which its rows take, runs there and checks.
TEST(CliFormats, EmulatedDeviceRunsAndChecksAnF32Layer) {
  TempDir dir;
  std::vector<float> x(2 * 7 * 7), w(3 * 2 * 3 * 3), b = {0.5f, -1.0f, 2.0f};
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(static_cast<int>(i % 9) - 4) * 0.25f;
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<float>(static_cast<int>(i % 3) - 1);
  const std::string xf = dir.file("x.npy"), wf = dir.file("w.npy"), bf = dir.file("b.npy"), yc = dir.file("yc.npy"),
                    ye = dir.file("ye.npy");
  ASSERT_TRUE(write_npy(xf, {1, 2, 7, 7}, x.data()).is_ok());
  ASSERT_TRUE(write_npy(wf, {3, 2, 3, 3}, w.data()).is_ok());
  ASSERT_TRUE(write_npy(bf, {3}, b.data()).is_ok());
  Outcome o = run(
      {"conv", "--x", xf, "--w", wf, "--b", bf, "--strides", "2,2", "--device", "emulated", "--check", "--out", ye});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, " on emulated with ")) << o.out;
  EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
  o = run({"conv", "--x", xf, "--w", wf, "--b", bf, "--strides", "2,2", "--device", "cpu", "--out", yc});
  ASSERT_EQ(o.code, 0) << o.err;
  std::vector<int64_t> s1, s2;
  EXPECT_EQ(read_output(ye, NpyType::kF32, &s1), read_output(yc, NpyType::kF32, &s2)); // small integers: exact
  o = run({"conv", "--x", xf, "--w", wf, "--device", "emulator", "--out", ye});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--device 'emulator': expected cpu, cuda, emulated or auto")) << o.err;
}

// --algo depthwise on the emulated device: a depthwise layer (--group = C, multiplier 2) runs the depthwise kernel's
// code, checks against the reference and equals the CPU's output; a dense layer is refused with the row's reason.
TEST(CliFormats, EmulatedDepthwiseByName) {
  TempDir dir;
  std::vector<float> x(1 * 3 * 7 * 6), w(6 * 1 * 3 * 3), b = {0.5f, -1.0f, 2.0f, 1.0f, 0.0f, -0.5f};
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(static_cast<int>(i % 7) - 3) * 0.5f;
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<float>(static_cast<int>(i % 5) - 2);
  const std::string xf = dir.file("x.npy"), wf = dir.file("w.npy"), bf = dir.file("b.npy"), yc = dir.file("yc.npy"),
                    ye = dir.file("ye.npy");
  ASSERT_TRUE(write_npy(xf, {1, 3, 7, 6}, x.data()).is_ok());
  ASSERT_TRUE(write_npy(wf, {6, 1, 3, 3}, w.data()).is_ok());
  ASSERT_TRUE(write_npy(bf, {6}, b.data()).is_ok());
  const Args layer = {"conv", "--x", xf, "--w", wf, "--b", bf, "--group", "3", "--pads", "1,0,1,2"};
  Args args = layer;
  args.insert(args.end(), {"--device", "emulated", "--algo", "depthwise", "--check", "--out", ye});
  Outcome o = run(args);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, " on emulated with depthwise")) << o.out;
  EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
  args = layer;
  args.insert(args.end(), {"--device", "cpu", "--out", yc});
  o = run(args);
  ASSERT_EQ(o.code, 0) << o.err;
  std::vector<int64_t> s1, s2;
  const std::vector<float> ye_values = read_output(ye, NpyType::kF32, &s1);
  EXPECT_EQ(s1, (std::vector<int64_t>{1, 6, 7, 6}));
  EXPECT_EQ(ye_values, read_output(yc, NpyType::kF32, &s2)); // small integers and halves: exact
  const std::string dense_w = dir.file("dense_w.npy");
  std::vector<float> wd(2 * 3 * 3 * 3, 1.0f);
  ASSERT_TRUE(write_npy(dense_w, {2, 3, 3, 3}, wd.data()).is_ok());
  o = run({"conv", "--x", xf, "--w", dense_w, "--device", "emulated", "--algo", "depthwise", "--out", ye});
  EXPECT_EQ(o.code, 2) << o.out;
  EXPECT_TRUE(contains(o.err, "depthwise: groups 1 must equal C 3")) << o.err;
}

// cli/storage.hpp's conversions (the bench's random inputs, run's bf16 files): round to nearest even, ties to
// even, subnormals, overflow to infinity, NaN kept quiet with its sign.
TEST(CliFormats, StorageConversionsRoundToNearestEven) {
  EXPECT_EQ(f16_bits(1.0f), 0x3c00);
  EXPECT_EQ(f16_bits(-2.0f), 0xc000);
  EXPECT_EQ(f16_bits(1.0f + std::ldexp(1.0f, -11)), 0x3c00);     // a tie: to even (down)
  EXPECT_EQ(f16_bits(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02); // a tie: to even (up)
  EXPECT_EQ(f16_bits(std::ldexp(1.0f, -24)), 0x0001);            // the smallest subnormal
  EXPECT_EQ(f16_bits(std::ldexp(1.0f, -26)), 0x0000);            // below half of it: zero
  EXPECT_EQ(f16_bits(65504.0f), 0x7bff);
  EXPECT_EQ(f16_bits(70000.0f), 0x7c00); // past the largest finite: infinity
  EXPECT_EQ(f16_bits(-std::numeric_limits<float>::infinity()), 0xfc00);
  EXPECT_EQ(f16_bits(-std::numeric_limits<float>::quiet_NaN()) & 0xfe00, 0xfe00);
  for (uint16_t h : {0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0xbc01})
    EXPECT_EQ(f16_bits(f16_value(h)), h) << h;
  EXPECT_EQ(bf16_bits(1.0f + std::ldexp(1.0f, -8)), 0x3f80);     // a tie: to even (down)
  EXPECT_EQ(bf16_bits(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82); // a tie: to even (up)
  EXPECT_EQ(bf16_value(bf16_bits(3.0f)), 3.0f);
  // A NaN whose payload is only in the low 16 bits must not become an infinity when truncated.
  uint32_t nan_bits = 0x7f800001u;
  float nan = 0;
  std::memcpy(&nan, &nan_bits, 4);
  EXPECT_TRUE(std::isnan(bf16_value(bf16_bits(nan))));
  EXPECT_EQ(bf16_bits(std::numeric_limits<float>::max()), 0x7f80); // rounds past the largest bf16: infinity
}

TEST(CliFormats, AlphaBetaAndZ) {
  TempDir dir;
  const NhwcLayer l;
  const LayerFiles f = write_layer(dir, l, false, "");
  // f32 NHWC, identity: alpha 2, beta 0.5.
  Outcome o =
      run({"conv",     "--x",  f.x,       "--w", f.w,      "--b", f.b,        "--z", f.z,       "--pads", "1,1,1,1",
           "--layout", "NHWC", "--alpha", "2",   "--beta", "0.5", "--device", "cpu", "--check", "--out",  f.out});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, "y = 2 * conv + bias + 0.5 * z")) << o.out;
  std::vector<int64_t> s;
  EXPECT_EQ(read_output(f.out, NpyType::kF32, &s), l.expected(2.0f, 0.5f, false));
  // --z without --beta adds z once.
  o = run({"conv", "--x", f.x, "--w", f.w, "--b", f.b, "--z", f.z, "--pads", "1,1,1,1", "--layout", "NHWC", "--device",
           "cpu", "--out", f.out});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_EQ(read_output(f.out, NpyType::kF32, &s), l.expected(1.0f, 1.0f, false));
  // --beta without --z, --z with --beta 0, and a residual of the wrong shape are refused.
  o = run({"conv", "--x", f.x, "--w", f.w, "--pads", "1,1,1,1", "--layout", "NHWC", "--beta", "0.5", "--device", "cpu",
           "--out", f.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--beta") && contains(o.err, "--z FILE")) << o.err;
  o = run({"conv", "--x", f.x, "--w", f.w, "--z", f.z, "--pads", "1,1,1,1", "--layout", "NHWC", "--beta", "0",
           "--device", "cpu", "--out", f.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--beta is 0")) << o.err;
  o = run({"conv", "--x", f.x, "--w", f.w, "--z", f.x, "--pads", "1,1,1,1", "--layout", "NHWC", "--device", "cpu",
           "--out", f.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "the residual has shape (1, 5, 5, 3), the problem needs (1, 5, 5, 4)")) << o.err;
  // Pooling takes no residual file (and the library refuses its epilogue).
  o = run({"max-pool", "--x", f.x, "--z", f.z, "--kernel-shape", "2,2", "--layout", "NHWC", "--out", f.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--z does not apply to max-pool")) << o.err;
  o = run({"max-pool", "--x", f.x, "--kernel-shape", "2,2", "--layout", "NHWC", "--activation", "relu", "--device",
           "cpu", "--out", f.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "pooling has no epilogue")) << o.err;
}

// 1x1 conv, C = K = 1, w = 1: y = x as bf16. Ties round to even; the output file holds the bf16 values.
TEST(CliFormats, Bf16InputsAreRoundedToNearestEvenOnLoad) {
  TempDir dir;
  const float e8 = std::ldexp(1.0f, -8), e7 = std::ldexp(1.0f, -7), e6 = std::ldexp(1.0f, -6);
  // 1 + 2^-8: halfway between 1 and 1 + 2^-7 -> 1 (even). 1 + 3 * 2^-8: halfway between 1 + 2^-7 and 1 + 2^-6
  // -> 1 + 2^-6 (even). Just above a halfway point -> up. Exact values stay.
  const std::vector<float> x = {1 + e8, 1 + 3 * e8, 1 + e8 + std::ldexp(1.0f, -20), -(1 + e8), 3.0f, 0.0f};
  const std::vector<float> want = {1.0f, 1 + e6, 1 + e7, -1.0f, 3.0f, 0.0f};
  const std::string xf = dir.file("x.npy"), wf = dir.file("w.npy"), yf = dir.file("y.npy");
  ASSERT_TRUE(write_npy(xf, {1, 1, 6}, x.data()).is_ok());
  const float w = 1 + e8; // rounds to 1 as well
  ASSERT_TRUE(write_npy(wf, {1, 1, 1}, &w).is_ok());
  const Outcome o = run({"conv", "--x", xf, "--w", wf, "--dtype", "bf16", "--device", "cpu", "--check", "--out", yf});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, ": PASS")) << o.out;
  std::vector<int64_t> s;
  const std::vector<float> y = read_output(yf, NpyType::kF32, &s); // float32 file
  EXPECT_EQ(s, (std::vector<int64_t>{1, 1, 6}));
  EXPECT_EQ(y, want);
  for (float v : y) {
    uint32_t bits = 0;
    std::memcpy(&bits, &v, 4);
    EXPECT_EQ(bits & 0xffffu, 0u) << v << " is not a bf16 value";
  }
  // bf16 reads float32 files only.
  const std::string hf = dir.file("h.npy");
  ASSERT_TRUE(write_npy_f16(hf, {1, 1, 6}, halves({1, 2, 3, 4, 5, 6}).data()).is_ok());
  const Outcome bad = run({"conv", "--x", hf, "--w", wf, "--dtype", "bf16", "--device", "cpu", "--out", yf});
  EXPECT_EQ(bad.code, 2);
  EXPECT_TRUE(contains(bad.err, hf) && contains(bad.err, "'<f2'") && contains(bad.err, "--dtype bf16 reads float32"))
      << bad.err;
}

TEST(CliFormats, F2FilesRoundTripAndOtherDtypesAreRefused) {
  TempDir dir;
  // Every class of half: zero, -0, subnormals, normals, the largest, infinities, a NaN.
  const std::vector<uint16_t> h = {0x0000, 0x8000, 0x0001, 0x03ff, 0x3c00, 0xc000, 0x7bff, 0x7c00, 0xfc00, 0x7e00};
  const std::string path = dir.file("h.npy");
  ASSERT_TRUE(write_npy_f16(path, {2, 5}, h.data()).is_ok());
  Result<NpyArray> back = read_npy(path, NpyType::kF16);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->type, NpyType::kF16);
  EXPECT_EQ(back->shape, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(back->half, h);
  Result<std::string> bytes = encode_npy_f16({2, 5}, h.data());
  ASSERT_TRUE(bytes.is_ok());
  EXPECT_TRUE(contains(*bytes, "'descr': '<f2'"));
  EXPECT_EQ(bytes->size() % 64, 20u); // 64-byte aligned header, then 10 x 2 bytes
  Result<NpyArray> parsed = parse_npy(*bytes, "mem.npy", NpyType::kF16);
  ASSERT_TRUE(parsed.is_ok());
  EXPECT_EQ(parsed->half, h);
  // A float16 file where float32 is wanted, and the other way round, name the file and both dtypes.
  Result<NpyArray> as_f32 = read_npy(path);
  ASSERT_FALSE(as_f32.is_ok());
  EXPECT_TRUE(contains(as_f32.status().message(), path + ": dtype '<f2' (float16, but float32 ('<f4') is wanted)"))
      << as_f32.status().message();
  const std::string f4 = dir.file("f.npy");
  const float one = 1;
  ASSERT_TRUE(write_npy(f4, {1}, &one).is_ok());
  Result<NpyArray> as_f16 = read_npy(f4, NpyType::kF16);
  ASSERT_FALSE(as_f16.is_ok());
  EXPECT_TRUE(contains(as_f16.status().message(), "dtype '<f4' (float32, but float16 ('<f2') is wanted)"))
      << as_f16.status().message();
  // Other dtypes (here '<f8') are refused either way.
  std::string f8 = *bytes;
  f8.replace(f8.find("<f2"), 3, "<f8");
  Result<NpyArray> r = parse_npy(f8, "f8.npy", NpyType::kF16);
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "f8.npy: dtype '<f8'")) << r.status().message();
  // A truncated f16 file counts 2-byte elements.
  r = parse_npy(bytes->substr(0, bytes->size() - 2), "short.npy", NpyType::kF16);
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(contains(r.status().message(), "needs 20 bytes of float16 data, but the file has 18"))
      << r.status().message();
}

TEST(CliFormats, WrongDtypeFilesAreRefusedByRun) {
  TempDir dir;
  const NhwcLayer l;
  const LayerFiles f32 = write_layer(dir, l, false, "a");
  const LayerFiles f16 = write_layer(dir, l, true, "b");
  // --dtype f16 with a float32 x.
  Outcome o = run({"conv", "--x", f32.x, "--w", f16.w, "--pads", "1,1,1,1", "--dtype", "f16", "--layout", "NHWC",
                   "--device", "cpu", "--out", f16.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--x " + f32.x + ": dtype '<f4'") && contains(o.err, "--dtype f16 reads and writes"))
      << o.err;
  // --dtype f32 (the default) with a float16 w.
  o = run({"conv", "--x", f32.x, "--w", f16.w, "--pads", "1,1,1,1", "--layout", "NHWC", "--device", "cpu", "--out",
           f32.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--w " + f16.w + ": dtype '<f2'")) << o.err;
  // ... and a float16 bias / residual.
  o = run({"conv", "--x", f32.x, "--w", f32.w, "--b", f16.b, "--pads", "1,1,1,1", "--layout", "NHWC", "--device", "cpu",
           "--out", f32.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--b " + f16.b + ": dtype '<f2'")) << o.err;
  o = run({"conv", "--x", f32.x, "--w", f32.w, "--z", f16.z, "--pads", "1,1,1,1", "--layout", "NHWC", "--device", "cpu",
           "--out", f32.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--z " + f16.z + ": dtype '<f2'")) << o.err;
  EXPECT_NE(::access(f32.out.c_str(), F_OK), 0);
}

TEST(CliFormats, NhwcFilesMustBeInChannelsLastOrder) {
  TempDir dir;
  const NhwcLayer l;
  const LayerFiles f = write_layer(dir, l, false, "");
  // The same values saved in NCHW order (1, 3, 5, 5) for an NHWC problem with --x-shape 1,3,5,5.
  const std::string nchw = dir.file("x_nchw.npy");
  ASSERT_TRUE(write_npy(nchw, {1, 3, 5, 5}, l.x.data()).is_ok());
  Outcome o = run({"conv", "--x", nchw, "--x-shape", "1,3,5,5", "--w", f.w, "--pads", "1,1,1,1", "--layout", "NHWC",
                   "--device", "cpu", "--out", f.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--x-shape 1,3,5,5 with --layout NHWC needs " + nchw +
                                  " in N,H,W,C order, shape (1, 5, 5, 3), but its shape is (1, 3, 5, 5)"))
      << o.err;
  // Without --x-shape the file is read as N,H,W,C: C = 5 disagrees with the weight's C/g = 3, and the message says
  // how the file was read.
  o = run(
      {"conv", "--x", nchw, "--w", f.w, "--pads", "1,1,1,1", "--layout", "NHWC", "--device", "cpu", "--out", f.out});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "channels last: its shape (1, 3, 5, 5) is N,H,W,C")) << o.err;
  EXPECT_TRUE(contains(o.err, "with --layout NHWC the x, z and y files are N,[D,]H,W,C")) << o.err;
  // The weight: KRSC with --layout NHWC (the default --w-layout), KCRS with --w-layout NCHW.
  o = run({"conv", "--x", f.x, "--w", f.w, "--w-shape", "4,3,3,3", "--pads", "1,1,1,1", "--layout", "NHWC", "--device",
           "cpu", "--out", f.out});
  EXPECT_EQ(o.code, 0) << o.err;
  const std::string kcrs = dir.file("w_kcrs.npy");
  std::vector<float> wk(l.w.size());
  for (int k = 0; k < 4; ++k)
    for (int r = 0; r < 3; ++r)
      for (int s = 0; s < 3; ++s)
        for (int c = 0; c < 3; ++c)
          wk[static_cast<size_t>(((k * 3 + c) * 3 + r) * 3 + s)] =
              l.w[static_cast<size_t>(((k * 3 + r) * 3 + s) * 3 + c)];
  ASSERT_TRUE(write_npy(kcrs, {4, 3, 3, 3}, wk.data()).is_ok());
  const std::string y2 = dir.file("y2.npy");
  o = run({"conv", "--x", f.x, "--w", kcrs, "--pads", "1,1,1,1", "--layout", "NHWC", "--w-layout", "NCHW", "--device",
           "cpu", "--out", y2});
  ASSERT_EQ(o.code, 0) << o.err;
  std::vector<int64_t> s1, s2;
  EXPECT_EQ(read_output(y2, NpyType::kF32, &s2), read_output(f.out, NpyType::kF32, &s1));
  EXPECT_EQ(read_output(y2, NpyType::kF32, &s2), l.expected(1.0f, 0.0f, false, false));
}

TEST(CliFormats, BadFormatAndActivationValuesNameTheOptionAndTheValue) {
  const Args base = {"conv", "--x-shape", "1,3,5,5", "--kernel-shape", "3,3"};
  const struct {
    std::vector<std::string> extra;
    std::string message;
  } cases[] = {
      {{"--activation", "rleu"}, "--activation 'rleu': expected identity, relu, leaky_relu:A, clip:LO:HI"},
      {{"--activation", "relu:2"}, "--activation 'relu:2': relu takes no parameter"},
      {{"--activation", "leaky_relu:x"}, "--activation 'leaky_relu:x': A 'x': not a number"},
      {{"--activation", "leaky_relu:1:2"}, "--activation 'leaky_relu:1:2': expected leaky_relu or leaky_relu:A"},
      {{"--activation", "clip:1"}, "--activation 'clip:1': expected clip:LO:HI"},
      {{"--activation", "clip:0:nan"}, "--activation 'clip:0:nan': HI 'nan': not a finite float32 number"},
      {{"--activation", ""}, "--activation '': expected identity"},
      {{"--alpha", "two"}, "--alpha 'two': not a number"},
      {{"--alpha", "1e50"}, "--alpha '1e50': not a finite float32 number"},
      {{"--beta", "0.5x"}, "--beta '0.5x': not a number"},
      {{"--beta", "inf"}, "--beta 'inf': not a finite float32 number"},
      {{"--dtype", "f64"}, "--dtype 'f64': expected f32, f16 or bf16"},
      {{"--layout", "NCWH"}, "--layout 'NCWH': expected NCHW or NHWC"},
      {{"--w-layout", "KRSC"}, "--w-layout 'KRSC': expected NCHW or NHWC"},
  };
  for (const auto& c : cases) {
    Args args = base;
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const Outcome o = shape(args);
    EXPECT_EQ(o.code, 2) << c.extra[1];
    EXPECT_TRUE(contains(o.err, c.message)) << o.err;
  }
  // The library's rules: clip's min <= max, no epilogue on pooling, no --w-layout for pooling.
  Args args = base;
  args.insert(args.end(), {"--activation", "clip:6:0"});
  Outcome o = shape(args);
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "clip min 6 must be <= max 0")) << o.err;
  o = shape({"avg-pool", "--x-shape", "1,3,5,5", "--kernel-shape", "3,3", "--alpha", "2"});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "pooling has no epilogue")) << o.err;
  o = shape({"avg-pool", "--x-shape", "1,3,5,5", "--kernel-shape", "3,3", "--w-layout", "NHWC"});
  EXPECT_EQ(o.code, 2);
  EXPECT_TRUE(contains(o.err, "--w-layout does not apply to avg-pool")) << o.err;
  // Good spellings parse into the description.
  Result<ParsedLayer> p =
      parse_layer({"conv", "--x-shape", "1,3,5,5", "--kernel-shape", "3,3", "--dtype", "bf16", "--layout", "nhwc",
                   "--w-layout", "NCHW", "--activation", "leaky-relu:0.25", "--alpha", "0.5", "--beta", "-1"});
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->desc.dtype, DataType::kBF16);
  EXPECT_EQ(p->desc.layout, Layout::kNHWC);
  ASSERT_TRUE(p->desc.w_layout.has_value());
  EXPECT_EQ(*p->desc.w_layout, Layout::kNCHW);
  EXPECT_EQ(p->desc.epilogue.activation, Activation::kLeakyRelu);
  EXPECT_EQ(p->desc.epilogue.leaky_alpha, 0.25f);
  EXPECT_EQ(p->desc.epilogue.alpha, 0.5f);
  EXPECT_EQ(p->desc.epilogue.beta, -1.0f);
  p = parse_layer({"conv", "--x-shape", "1,3,5,5", "--kernel-shape", "3,3", "--activation", "clip:-1.5:6"});
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(p->desc.epilogue.activation, Activation::kClip);
  EXPECT_EQ(p->desc.epilogue.clip_min, -1.5f);
  EXPECT_EQ(p->desc.epilogue.clip_max, 6.0f);
  EXPECT_FALSE(p->desc.w_layout.has_value()); // the default follows --layout
}

TEST(CliFormats, ShapePrintsDtypesLayoutsAndTheEpilogue) {
  const Args args = {"conv", "--x-shape", "2,8,6,6", "--w-shape",    "16,8,3,3", "--pads", "1,1,1,1", "--dtype",
                     "f16",  "--layout",  "NHWC",    "--activation", "relu",     "--beta", "1"};
  Outcome o = shape(args);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, "  x                 f16 NHWC, in memory 2x6x6x8\n")) << o.out;
  EXPECT_TRUE(contains(o.out, "  w                 f16 NHWC, in memory 16x3x3x8\n")) << o.out;
  EXPECT_TRUE(contains(o.out, "  bias              f16\n")) << o.out;
  EXPECT_TRUE(contains(o.out, "  z                 f16 NHWC, in memory 2x6x6x16\n")) << o.out;
  EXPECT_TRUE(contains(o.out, "  y                 f16 NHWC, in memory 2x6x6x16\n")) << o.out;
  EXPECT_TRUE(contains(o.out, "  epilogue          y = relu(conv + bias + z)\n")) << o.out;
  Args json = args;
  json.push_back("--json");
  o = shape(json);
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_TRUE(contains(o.out, "\"dtype\":\"f16\",\"layout\":\"NHWC\",\"w_layout\":\"NHWC\"")) << o.out;
  EXPECT_TRUE(
      contains(o.out, "\"x\":{\"dtype\":\"f16\",\"layout\":\"NHWC\",\"memory_shape\":[2,6,6,8],\"bytes\":1152}"))
      << o.out;
  EXPECT_TRUE(contains(o.out, "\"epilogue\":{\"activation\":\"relu\",\"alpha\":1,\"beta\":1,"
                              "\"formula\":\"y = relu(conv + bias + z)\"}"))
      << o.out;
  // The defaults: f32, NCHW, identity, no z.
  o = shape({"conv", "--x-shape", "1,1,5,5", "--kernel-shape", "3,3", "--json"});
  ASSERT_EQ(o.code, 0);
  EXPECT_TRUE(contains(o.out, "\"dtype\":\"f32\",\"layout\":\"NCHW\"")) << o.out;
  EXPECT_FALSE(contains(o.out, "\"z\":")) << o.out;
  EXPECT_TRUE(contains(o.out, "\"formula\":\"y = conv + bias\"")) << o.out;
}

#ifdef CONVARITH_CLI_BINARY
// The built binary: the acceptance run of issue 12 (f16 NHWC conv + bias + relu + residual, --check on the CPU),
// and `draw` accepting the format options (named in the caption, the picture unchanged).
TEST(CliFormats, TheBinaryRunsF16NhwcWithTheEpilogueAndDrawAcceptsTheFormats) {
  TempDir dir;
  const NhwcLayer l;
  const LayerFiles f = write_layer(dir, l, true, "");
  const std::string out = dir.file("out.txt"), err = dir.file("err.txt");
  std::string cmd = std::string("'") + CONVARITH_CLI_BINARY + "' run";
  for (const std::string& a : f16_nhwc_relu_residual_args(f, "cpu"))
    cmd += " '" + a + "'";
  int status = std::system((cmd + " >" + out + " 2>" + err).c_str());
  auto slurp = [](const std::string& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << slurp(err);
  EXPECT_TRUE(contains(slurp(out), ": PASS")) << slurp(out);
  std::vector<int64_t> s;
  EXPECT_EQ(read_output(f.out, NpyType::kF16, &s), l.expected(1.0f, 1.0f, true));

  const std::string plain = dir.file("plain.svg"), fmt = dir.file("fmt.svg");
  const std::string layer = " draw conv --x-shape 1,1,5,5 --kernel-shape 3,3 --frame 0 --out ";
  status = std::system((std::string("'") + CONVARITH_CLI_BINARY + "'" + layer + plain).c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  status = std::system((std::string("'") + CONVARITH_CLI_BINARY + "'" + layer + fmt +
                        " --dtype bf16 --layout NHWC --activation silu --beta 1")
                           .c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const std::string a = slurp(plain), b = slurp(fmt);
  EXPECT_FALSE(contains(a, "formats (not drawn)"));
  EXPECT_TRUE(contains(b, "formats (not drawn): x bf16 NHWC, w bf16 NHWC, bias bf16, z bf16 NHWC, y bf16 NHWC; "
                          "y = silu(conv + bias + z)"))
      << b;
  status = std::system(
      (std::string("'") + CONVARITH_CLI_BINARY + "'" + layer + fmt + " --activation swish 2>/dev/null").c_str());
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
}
#endif

} // namespace
} // namespace convarith::cli
