// host/cpu/gemm.hpp — the register-blocked SGEMM micro-kernels of the CPU fallback (internal).
//
// C[m x n] = A[m x kc] * B[kc x n] (+ bias per row), or C += A * B, for one depth block.
// A is packed in panels of mr rows: panel i holds A[i*mr .. i*mr+mr)[0..kdim) as [kdim][mr]
// (rows past m are zero). B and C are row-major with leading dimensions ldb and ldc, so B can
// be the input tensor itself (1x1 convolutions, transposed convolution) or an im2col panel.
// One micro-kernel per instruction set (AVX-512, AVX2+FMA, baseline), chosen once at run time
// from the CPU's features, so the library is fast without -march=native. Within a process the
// choice is fixed, so results are bitwise reproducible run to run.
#pragma once

#include <cstdint>
#include <vector>

#include "convarith/arithmetic.hpp"

namespace convarith::detail {

constexpr int kMaxMr = 8;
constexpr int kMaxNr = 32;
constexpr int64_t kGemmKc = 256; // depth block: an mr x kc A panel and a kc x nr B sliver stay in L1/L2

struct GemmKernel {
  const char* isa; // "avx512", "avx2", "baseline"
  int mr;
  int nr;
  // Full mr x nr tile. c = acc + bias[0..mr) (accumulate false; bias never null) or c += acc.
  void (*tile)(int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc, bool accumulate,
               const float* bias);
  // The same on a row-major A (row i at a + i * lda), read in place: the same products in the same order.
  void (*tile_rows)(int64_t kc, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                    bool accumulate, const float* bias);
  // The first `rows` (1 .. mr - 1) rows of a packed panel (the others padding) into C's first rows: the same values
  // as those rows of `tile`, without the padding's products. nullptr: run `tile` on a local copy instead.
  void (*tile_part)(int rows, int64_t kc, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
                    bool accumulate, const float* bias);
};

// This CPU's per-core L2 in bytes (sysfs, read once; 256 KiB when it says nothing).
int64_t cpu_l2_bytes();
// Rows of A (a multiple of g.mr) that gemm_block keeps in L2 at depth kc.
int64_t gemm_l2_rows(const GemmKernel& g, int64_t kc);

// The kernel for this CPU (fixed for the process).
const GemmKernel& gemm_kernel();
// Every kernel this CPU can run (for tests).
std::vector<const GemmKernel*> available_gemm_kernels();

// Size of a packed A for m rows and kdim depth.
inline int64_t packed_a_floats(const GemmKernel& g, int64_t m, int64_t kdim) {
  int64_t rows = 0, floats = 0; // saturates at INT64_MAX (see sat_mul in cpu_ops.hpp)
  if (!checked_mul(m / g.mr + (m % g.mr != 0 ? 1 : 0), g.mr, &rows) || !checked_mul(rows, kdim, &floats))
    return INT64_MAX;
  return floats;
}

// One depth block of C (m x n) op= A_packed (panels of g.mr rows, consecutive panels
// a_panel_stride floats apart, already offset to the block's first depth index) * B (kc x n).
// b_readable: columns of each B row that may be read (>= n); full nr-wide slivers within it are
// read in place, others are copied to a zero-padded buffer first. bias: m values or nullptr,
// added only when accumulate is false. Rows go through in chunks of gemm_l2_rows (each chunk's A panels stay in
// L2 while the slivers of B pass them).
void gemm_block(const GemmKernel& g, int64_t m, int64_t n, int64_t kc, const float* a_packed, int64_t a_panel_stride,
                const float* b, int64_t ldb, int64_t b_readable, float* c, int64_t ldc, bool accumulate,
                const float* bias);
// The same with A row-major (m rows lda apart, already offset to the block's first depth index), read in place:
// the weights themselves where packing them would cost more than it saves (each row meets the B panels of one
// task only). The last panel, when m is not a multiple of mr, is copied into a zero-padded one. Bitwise the same
// C as gemm_block on the packed A.
void gemm_block_rows(const GemmKernel& g, int64_t m, int64_t n, int64_t kc, const float* a, int64_t lda, const float* b,
                     int64_t ldb, int64_t b_readable, float* c, int64_t ldc, bool accumulate, const float* bias);

} // namespace convarith::detail
