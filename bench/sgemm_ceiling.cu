// bench/sgemm_ceiling.cu — convarith_sgemm_ceiling: cuBLAS SGEMM on this device, the practical fp32 ceiling that
// the conv kernels' times are compared against (.ci/gpu.sh). Square M = N = K products on random data (never
// zeros), timed with CUDA events after a warm-up; prints one JSON object per size and math mode:
//   {"m":..,"math":"fp32"|"tf32","median_ms":..,"tflops":..,"runs":..}
// fp32: CUBLAS_PEDANTIC_MATH (no TF32, no reduced precision); tf32: CUBLAS_TF32_TENSOR_OP_MATH, labelled so.
// Every CUDA and cuBLAS status is checked; exit 1 on any failure (message on stderr), 2 on bad arguments.
// Usage: convarith_sgemm_ceiling [--sizes 4096,8192] [--runs 20] [--tf32] [--help]
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

bool ok_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess)
    return true;
  std::fprintf(stderr, "sgemm_ceiling: %s: %s (%s)\n", what, cudaGetErrorName(e), cudaGetErrorString(e));
  return false;
}
bool ok_blas(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS)
    return true;
  std::fprintf(stderr, "sgemm_ceiling: %s: cuBLAS status %d\n", what, static_cast<int>(s));
  return false;
}

__global__ void fill_random(float* p, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    p[i] = static_cast<float>(h & 0xffffff) / 16777216.0f - 0.5f; // [-0.5, 0.5)
  }
}

const char kHelp[] = "usage: convarith_sgemm_ceiling [--sizes 4096,8192] [--runs 20] [--tf32]\n"
                     "cuBLAS SGEMM (fp32, pedantic math) at M = N = K per size; --tf32 adds the TF32 tensor-op "
                     "mode, labelled. One JSON line per case.\n";

int run_case(cublasHandle_t h, int m, int runs, bool tf32) {
  const size_t n = static_cast<size_t>(m) * m;
  float *a = nullptr, *b = nullptr, *c = nullptr;
  if (!ok_cuda(cudaMalloc(&a, n * 4), "cudaMalloc A") || !ok_cuda(cudaMalloc(&b, n * 4), "cudaMalloc B") ||
      !ok_cuda(cudaMalloc(&c, n * 4), "cudaMalloc C"))
    return 1;
  fill_random<<<1024, 256>>>(a, n, 1u);
  fill_random<<<1024, 256>>>(b, n, 2u);
  if (!ok_cuda(cudaGetLastError(), "fill") || !ok_cuda(cudaDeviceSynchronize(), "fill sync"))
    return 1;
  if (!ok_blas(cublasSetMathMode(h, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_PEDANTIC_MATH), "cublasSetMathMode"))
    return 1;
  const float alpha = 1.0f, beta = 0.0f;
  cudaEvent_t e0, e1;
  if (!ok_cuda(cudaEventCreate(&e0), "event") || !ok_cuda(cudaEventCreate(&e1), "event"))
    return 1;
  for (int i = 0; i < 3; ++i)
    if (!ok_blas(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, m, m, &alpha, a, m, b, m, &beta, c, m), "warm-up"))
      return 1;
  std::vector<float> ms;
  for (int i = 0; i < runs; ++i) {
    cudaEventRecord(e0);
    if (!ok_blas(cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, m, m, &alpha, a, m, b, m, &beta, c, m), "cublasSgemm"))
      return 1;
    cudaEventRecord(e1);
    if (!ok_cuda(cudaEventSynchronize(e1), "sync"))
      return 1;
    float t = 0;
    cudaEventElapsedTime(&t, e0, e1);
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  const double tflops = 2.0 * m * static_cast<double>(m) * m / (med * 1e-3) / 1e12;
  std::printf("{\"m\": %d, \"n\": %d, \"k\": %d, \"math\": \"%s\", \"median_ms\": %.4f, \"min_ms\": %.4f, "
              "\"tflops\": %.2f, \"runs\": %d, \"label\": \"measured, cuBLAS\"}\n",
              m, m, m, tf32 ? "tf32" : "fp32", med, static_cast<double>(ms.front()), tflops, runs);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {4096, 8192};
  int runs = 20;
  bool tf32 = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--tf32") {
      tf32 = true;
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
      if (runs < 1 || runs > 10000) {
        std::fprintf(stderr, "sgemm_ceiling: --runs wants 1..10000, got '%s'\n", argv[i]);
        return 2;
      }
    } else if (a == "--sizes" && i + 1 < argc) {
      sizes.clear();
      for (char* tok = std::strtok(argv[++i], ","); tok != nullptr; tok = std::strtok(nullptr, ",")) {
        const int m = std::atoi(tok);
        if (m < 16 || m > 32768) {
          std::fprintf(stderr, "sgemm_ceiling: --sizes wants 16..32768 each, got '%s'\n", tok);
          return 2;
        }
        sizes.push_back(m);
      }
    } else {
      std::fprintf(stderr, "sgemm_ceiling: unknown argument '%s'\n%s", a.c_str(), kHelp);
      return 2;
    }
  }
  int count = 0;
  if (!ok_cuda(cudaGetDeviceCount(&count), "cudaGetDeviceCount") || count == 0) {
    std::fprintf(stderr, "sgemm_ceiling: no CUDA device\n");
    return 1;
  }
  cublasHandle_t h = nullptr;
  if (!ok_blas(cublasCreate(&h), "cublasCreate"))
    return 1;
  int rc = 0;
  for (int m : sizes) {
    rc |= run_case(h, m, runs, false);
    if (tf32)
      rc |= run_case(h, m, runs, true);
  }
  cublasDestroy(h);
  return rc;
}
