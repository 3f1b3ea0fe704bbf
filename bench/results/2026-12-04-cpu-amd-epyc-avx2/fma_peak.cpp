// Peak fp32 FMA rate of one core: 12 independent ymm FMA chains (g++ -O2 fma_peak.cpp; run one copy per core).
#include <chrono>
#include <cstdio>
#include <immintrin.h>
__attribute__((target("avx2,fma"))) double run(long iters) {
  __m256 b = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(0.999999f);
  __m256 a0 = _mm256_set1_ps(0);
  __m256 a1 = _mm256_set1_ps(1);
  __m256 a2 = _mm256_set1_ps(2);
  __m256 a3 = _mm256_set1_ps(3);
  __m256 a4 = _mm256_set1_ps(4);
  __m256 a5 = _mm256_set1_ps(5);
  __m256 a6 = _mm256_set1_ps(6);
  __m256 a7 = _mm256_set1_ps(7);
  __m256 a8 = _mm256_set1_ps(8);
  __m256 a9 = _mm256_set1_ps(9);
  __m256 a10 = _mm256_set1_ps(10);
  __m256 a11 = _mm256_set1_ps(11);
  auto t0 = std::chrono::steady_clock::now();
  for (long k = 0; k < iters; ++k) {
    a0 = _mm256_fmadd_ps(a0, b, c);
    a1 = _mm256_fmadd_ps(a1, b, c);
    a2 = _mm256_fmadd_ps(a2, b, c);
    a3 = _mm256_fmadd_ps(a3, b, c);
    a4 = _mm256_fmadd_ps(a4, b, c);
    a5 = _mm256_fmadd_ps(a5, b, c);
    a6 = _mm256_fmadd_ps(a6, b, c);
    a7 = _mm256_fmadd_ps(a7, b, c);
    a8 = _mm256_fmadd_ps(a8, b, c);
    a9 = _mm256_fmadd_ps(a9, b, c);
    a10 = _mm256_fmadd_ps(a10, b, c);
    a11 = _mm256_fmadd_ps(a11, b, c);
    asm volatile("" : "+x"(a0));
    asm volatile("" : "+x"(a1));
    asm volatile("" : "+x"(a2));
    asm volatile("" : "+x"(a3));
    asm volatile("" : "+x"(a4));
    asm volatile("" : "+x"(a5));
    asm volatile("" : "+x"(a6));
    asm volatile("" : "+x"(a7));
    asm volatile("" : "+x"(a8));
    asm volatile("" : "+x"(a9));
    asm volatile("" : "+x"(a10));
    asm volatile("" : "+x"(a11));
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  float out = a0[0] + a1[0] + a2[0] + a3[0] + a4[0] + a5[0] + a6[0] + a7[0] + a8[0] + a9[0] + a10[0] + a11[0];
  if (out == 12345)
    printf("x");
  return iters * 12.0 * 16 / s / 1e9;
}
int main() {
  for (int r = 0; r < 5; ++r)
    printf("%.1f GFLOP/s\n", run(200000000));
}
