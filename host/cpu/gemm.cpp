// host/cpu/gemm.cpp — register-blocked micro-kernels on GCC/Clang vector extensions, compiled
// once per instruction set with target attributes and chosen at run time (see gemm.hpp).
//
// The micro-kernel keeps an mr x nr tile of C in registers (mr broadcasts of A times nv vectors
// of B per depth step). AVX-512: 8 x 32 (16 zmm accumulators, enough independent FMA chains to
// cover the FMA latency on two pipes); AVX2: 6 x 16 (12 of the 16 ymm); baseline SSE: 4 x 8.
// The AVX2 and AVX-512 tiles are written with intrinsics, so that each broadcast of A is one
// broadcast load (a load-port uop) and each product one FMA: the generic vector-extension form
// (V{} + a) is an addition the compiler must keep without fast-math (-0 + 0 is +0) plus a register
// shuffle, which took FP-pipe slots from the FMAs (the AVX2 tile ran at 48 GFLOP/s per core on an
// AMD EPYC Zen 3 whose FMA peak is 95; this one at 88-90, in L1, depth unrolled by 4). Every product
// is one FMA in depth order either way, so results are bitwise what the generic form gives.
// No fast-math: the compiler contracts a*b+c into FMA where the target has it, nothing else.
#include "cpu/gemm.hpp"
#include "cpu/cpu_ops.hpp"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <fstream>
#include <numeric>
#include <string>

namespace convarith::detail {
namespace {

template <int W> struct VecOf { typedef float type __attribute__((vector_size(W * sizeof(float)))); };

template <int MR, int NV, int W, bool kRows>
inline __attribute__((always_inline)) void micro_tile(int64_t kc, const float* a, int64_t lda, const float* b,
                                                      int64_t ldb, float* c, int64_t ldc, bool accumulate,
                                                      const float* bias) {
  using V = typename VecOf<W>::type;
  V acc[MR][NV];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NV; ++j)
      acc[i][j] = V{};
  for (int64_t p = 0; p < kc; ++p) {
    V bv[NV];
    for (int j = 0; j < NV; ++j)
      std::memcpy(&bv[j], b + p * ldb + j * W, sizeof(V)); // unaligned load
    for (int i = 0; i < MR; ++i) {
      const V av = V{} + (kRows ? a[i * lda + p] : a[p * MR + i]); // broadcast
      for (int j = 0; j < NV; ++j)
        acc[i][j] += av * bv[j];
    }
  }
  for (int i = 0; i < MR; ++i) {
    float* row = c + i * ldc;
    for (int j = 0; j < NV; ++j) {
      V out = acc[i][j];
      if (accumulate) {
        V old;
        std::memcpy(&old, row + j * W, sizeof(V));
        out += old;
      } else {
        out += bias[i];
      }
      std::memcpy(row + j * W, &out, sizeof(V));
    }
  }
}

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define CONVARITH_CPU_X86 1
// vbroadcastss zmm, m32 (AVX-512 has no _mm512_broadcast_ss).
__attribute__((target("avx512f"), always_inline)) inline __m512 broadcast512(const float* p) {
  return _mm512_set1_ps(*p);
}
// The x86 tiles: one body (gemm_tile_x86.inc, which undefines these macros), compiled once per ISA.
#define CONVARITH_TILE_NAME tile_avx512
#define CONVARITH_TILE_PART_NAME tile_part_avx512
#define CONVARITH_TILE_ROWS_NAME tile_rows_avx512
#define CONVARITH_TILE_BODY tile_body_avx512
#define CONVARITH_TILE_TARGET "avx2,fma,avx512f"
#define CONVARITH_TILE_MR 8
#define CONVARITH_TILE_W 16
#define CONVARITH_TILE_VEC __m512
#define CONVARITH_TILE_LOADU _mm512_loadu_ps
#define CONVARITH_TILE_STOREU _mm512_storeu_ps
#define CONVARITH_TILE_SET1 _mm512_set1_ps
#define CONVARITH_TILE_BCAST broadcast512
#define CONVARITH_TILE_FMADD _mm512_fmadd_ps
#define CONVARITH_TILE_ADD _mm512_add_ps
#include "cpu/gemm_tile_x86.inc"
#define CONVARITH_TILE_NAME tile_avx2
#define CONVARITH_TILE_PART_NAME tile_part_avx2
#define CONVARITH_TILE_ROWS_NAME tile_rows_avx2
#define CONVARITH_TILE_BODY tile_body_avx2
#define CONVARITH_TILE_TARGET "avx2,fma"
#define CONVARITH_TILE_MR 6
#define CONVARITH_TILE_W 8
#define CONVARITH_TILE_VEC __m256
#define CONVARITH_TILE_LOADU _mm256_loadu_ps
#define CONVARITH_TILE_STOREU _mm256_storeu_ps
#define CONVARITH_TILE_SET1 _mm256_set1_ps
#define CONVARITH_TILE_BCAST _mm256_broadcast_ss
#define CONVARITH_TILE_FMADD _mm256_fmadd_ps
#define CONVARITH_TILE_ADD _mm256_add_ps
#include "cpu/gemm_tile_x86.inc"
#endif
void tile_baseline(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate,
                   const float* bias) {
  micro_tile<4, 2, 4, false>(kc, a, 0, b, ldb, c, ldc, accumulate, bias);
}
void tile_rows_baseline(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                        bool accumulate, const float* bias) {
  micro_tile<4, 2, 4, true>(kc, a, lda, b, ldb, c, ldc, accumulate, bias);
}

const GemmKernel kBaseline{"baseline", 4, 8, tile_baseline, tile_rows_baseline, nullptr};
#ifdef CONVARITH_CPU_X86
const GemmKernel kAvx2{"avx2", 6, 16, tile_avx2, tile_rows_avx2, tile_part_avx2};
const GemmKernel kAvx512{"avx512", 8, 32, tile_avx512, tile_rows_avx512, tile_part_avx512};
bool has_avx512() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}
bool has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

} // namespace

CpuIsa cpu_isa() {
  static const CpuIsa isa = [] {
#ifdef CONVARITH_CPU_X86
    __builtin_cpu_init();
    if (has_avx512())
      return CpuIsa::kAvx512;
    if (has_avx2())
      return CpuIsa::kAvx2;
#endif
    return CpuIsa::kBaseline;
  }();
  return isa;
}

std::vector<const GemmKernel*> available_gemm_kernels() {
  std::vector<const GemmKernel*> out;
#ifdef CONVARITH_CPU_X86
  __builtin_cpu_init();
  if (has_avx512())
    out.push_back(&kAvx512);
  if (has_avx2())
    out.push_back(&kAvx2);
#endif
  out.push_back(&kBaseline);
  return out;
}

const GemmKernel& gemm_kernel() {
  static const GemmKernel* chosen = available_gemm_kernels().front();
  return *chosen;
}

namespace {

// The unified level-2 cache's size from sysfs (/sys/devices/system/cpu/cpu0/cache/index*/: level, type, size as
// "512K"), or 0.
int64_t sysfs_l2_bytes() {
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream lv(dir + "level"), ty(dir + "type"), sz(dir + "size");
    int l = 0;
    std::string type, size;
    if (!(lv >> l) || !(ty >> type) || !(sz >> size))
      continue;
    if (l != 2 || type != "Unified")
      continue;
    int64_t bytes = 0;
    size_t used = 0;
    for (; used < size.size() && size[used] >= '0' && size[used] <= '9' && bytes < (int64_t{1} << 40); ++used)
      bytes = bytes * 10 + (size[used] - '0');
    const std::string unit = size.substr(used);
    if (unit == "K")
      bytes <<= 10;
    else if (unit == "M")
      bytes <<= 20;
    else if (!unit.empty())
      return 0;
    return bytes;
  }
  return 0;
}

} // namespace

int64_t cpu_l2_bytes() {
  // A size a KVM guest or an odd sysfs may misreport is clamped to what real cores have.
  static const int64_t bytes = [] {
    const int64_t l2 = sysfs_l2_bytes();
    return l2 > 0 ? std::clamp<int64_t>(l2, 128 << 10, 16 << 20) : int64_t{256} << 10;
  }();
  return bytes;
}

int64_t gemm_l2_rows(const GemmKernel& g, int64_t kc) {
  // Half of L2 for the A rows (the B sliver, the C tiles and the next operands take the rest).
  const int64_t rows = cpu_l2_bytes() / 2 / (std::max<int64_t>(kc, 1) * int64_t{sizeof(float)});
  return std::max<int64_t>(g.mr, rows / g.mr * g.mr);
}

namespace {

// Depth blocks up to this long run panel by panel (gemm_block_impl): their C stores, not their products, take the time.
constexpr int64_t kShortDepth = 32;

// gemm_block (kRows false: A packed, panels a_stride floats apart) and gemm_block_rows (kRows true: A row-major, rows
// a_stride floats apart).
template <bool kRows>
void gemm_block_impl(const GemmKernel& g, int64_t m, int64_t n, int64_t kc, const float* a, int64_t a_stride,
                     const float* b, int64_t ldb, int64_t b_readable, float* c, int64_t ldc, bool accumulate,
                     const float* bias) {
  // Rows in chunks whose A panels stay in L2 while every sliver of B passes them: with all of m at once, a
  // 512-row block (kc 256: 512 KiB) is read again from L3 for each sliver on a 512 KiB-L2 core.
  const int64_t mc = gemm_l2_rows(g, kc);
  if (m > mc) {
    for (int64_t i0 = 0; i0 < m; i0 += mc)
      gemm_block_impl<kRows>(g, std::min(mc, m - i0), n, kc, a + (kRows ? i0 : i0 / g.mr) * a_stride, a_stride, b, ldb,
                             b_readable, c + i0 * ldc, ldc, accumulate, bias != nullptr ? bias + i0 : nullptr);
    return;
  }
  const int mr = g.mr, nr = g.nr;
  float bias_tile[kMaxMr];
  float c_tile[kMaxMr * kMaxNr];
  // A zero-padded copy of a B sliver that would read past b_readable (the last columns).
  float b_edge[kGemmKc * kMaxNr];
  // Row-major A: the last rows (m not a multiple of mr) packed into a zero-padded panel, once.
  float a_edge[kRows ? kGemmKc * kMaxMr : 1];
  const int64_t full_rows = m / mr * mr;
  if (kRows && full_rows < m) {
    for (int64_t p = 0; p < kc; ++p)
      for (int i = 0; i < mr; ++i)
        a_edge[p * mr + i] = full_rows + i < m ? a[(full_rows + i) * a_stride + p] : 0.0f;
  }
  // One tile: panel `panel` (rows i0..) times the sliver at bj (columns j0.., rows ldbj apart), into C.
  const auto run_tile = [&](int64_t i0, int64_t panel, int64_t j0, const float* bj, int64_t ldbj) {
    const int64_t mv = std::min<int64_t>(mr, m - i0), nv = std::min<int64_t>(nr, n - j0);
    for (int i = 0; i < mr; ++i)
      bias_tile[i] = (bias != nullptr && i < mv) ? bias[i0 + i] : 0.0f;
    float* ct = c + i0 * ldc + j0;
    // The tile to run on this panel: row-major A in place for full panels, else the packed panel.
    const bool rows_in_place = kRows && mv == mr;
    const float* ap = !kRows ? a + panel * a_stride : rows_in_place ? a + i0 * a_stride : a_edge;
    const auto tile = [&](float* cc, int64_t ldcc) {
      if (rows_in_place)
        g.tile_rows(kc, ap, a_stride, bj, ldbj, cc, ldcc, accumulate, bias_tile);
      else
        g.tile(kc, ap, bj, ldbj, cc, ldcc, accumulate, bias_tile);
    };
    if (mv == mr && nv == nr) {
      tile(ct, ldc);
      return;
    }
    if (nv == nr && g.tile_part != nullptr) {
      // The last panel's rows only, straight into C (ResNet-50's 128-channel layers: 132 rows of the 6-row tile
      // for 128, 3 % of the products on padding).
      g.tile_part(static_cast<int>(mv), kc, ap, bj, ldbj, ct, ldc, accumulate, bias_tile);
      return;
    }
    // Edge tile: run the full kernel on a local tile and copy the valid part in and out.
    if (accumulate) {
      std::fill(c_tile, c_tile + mr * nr, 0.0f);
      for (int64_t i = 0; i < mv; ++i)
        std::memcpy(c_tile + i * nr, ct + i * ldc, static_cast<size_t>(nv) * sizeof(float));
    }
    tile(c_tile, nr);
    for (int64_t i = 0; i < mv; ++i)
      std::memcpy(ct + i * ldc, c_tile + i * nr, static_cast<size_t>(nv) * sizeof(float));
  };
  // The sliver at j0 in a zero-padded contiguous copy (b_edge).
  const auto copy_sliver = [&](int64_t j0) {
    const int64_t nv = std::min<int64_t>(nr, n - j0);
    for (int64_t p = 0; p < kc; ++p) {
      float* dst = b_edge + p * nr;
      std::memcpy(dst, b + p * ldb + j0, static_cast<size_t>(nv) * sizeof(float));
      std::fill(dst + nv, dst + nr, 0.0f);
    }
  };
  // A short depth block (wav2vec2's first layer: depth 10) makes few products per C tile, and the C stores decide
  // the time: panel by panel, each of the mr rows of C is written as one run from left to right, where sliver by
  // sliver every tile stores into all m rows (512 write streams, each a 128-byte piece 12.8 KB from the last: 1.0 ms
  // against 0.39 ms for W1 on 2 Xeon cores). B is then read again from L2 for each panel, so it must fit there.
  // Either order runs the same tiles on the same operands: the same C.
  const bool panels_outer = kc <= kShortDepth && kc * (n + nr) * int64_t{sizeof(float)} <= cpu_l2_bytes() / 2;
  if (panels_outer) {
    for (int64_t i0 = 0, panel = 0; i0 < m; i0 += mr, ++panel)
      for (int64_t j0 = 0; j0 < n; j0 += nr) {
        if (j0 + nr > b_readable) {
          copy_sliver(j0);
          run_tile(i0, panel, j0, b_edge, nr);
        } else {
          run_tile(i0, panel, j0, b + j0, ldb);
        }
      }
    return;
  }
  // Rows whose stride is a multiple of 4+ cache lines (64 B) reach at most a quarter of a 64-set L1.
  const bool crowded = ldb % 64 == 0 || (ldb % 16 == 0 && std::gcd<int64_t>(ldb / 16, 64) >= 4);
  for (int64_t j0 = 0; j0 < n; j0 += nr) {
    // Copy the sliver into a contiguous buffer when it is past b_readable (zero-padded) and when
    // several A panels reuse it while its rows crowd into few L1 sets (rows ldb apart; ldb = 64
    // floats puts a 256 x 32 sliver in a quarter of the sets); a contiguous kc x nr block cannot.
    const bool copy = j0 + nr > b_readable || (m > 2 * mr && crowded);
    if (copy)
      copy_sliver(j0);
    for (int64_t i0 = 0, panel = 0; i0 < m; i0 += mr, ++panel)
      run_tile(i0, panel, j0, copy ? b_edge : b + j0, copy ? nr : ldb);
  }
}

} // namespace

void gemm_block(const GemmKernel& g, int64_t m, int64_t n, int64_t kc, const float* a_packed, int64_t a_panel_stride,
                const float* b, int64_t ldb, int64_t b_readable, float* c, int64_t ldc, bool accumulate,
                const float* bias) {
  gemm_block_impl<false>(g, m, n, kc, a_packed, a_panel_stride, b, ldb, b_readable, c, ldc, accumulate, bias);
}

void gemm_block_rows(const GemmKernel& g, int64_t m, int64_t n, int64_t kc, const float* a, int64_t lda, const float* b,
                     int64_t ldb, int64_t b_readable, float* c, int64_t ldc, bool accumulate, const float* bias) {
  gemm_block_impl<true>(g, m, n, kc, a, lda, b, ldb, b_readable, c, ldc, accumulate, bias);
}

} // namespace convarith::detail
