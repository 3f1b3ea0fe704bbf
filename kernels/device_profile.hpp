// kernels/device_profile.hpp — the target GPU profiles, in one place: the launch and resource limits
// the CPU kernel executor enforces (a launch a GPU of that profile would refuse is refused under the
// executor too), the DeviceInfo of the `emulated` device, and the rates the bound model uses.
//
// Sources (facts, not measurements of ours): CUDA C++ Programming Guide, "Technical Specifications per
// Compute Capability" (threads per block, grid limits, registers, shared memory per SM and per block
// with opt-in: 163 KiB on 8.0 and 227 KiB on 9.0); NVIDIA H100 / H200 product briefs and the Hopper
// tuning guide (132 SMs in the SXM parts, 1.98 GHz boost, 66.9 TFLOP/s fp32 FMA, ~989 TFLOP/s dense
// fp16/bf16, ~495 TF32, HBM3 3.35 TB/s on H100 SXM, HBM3e 4.8 TB/s on H200, 50 MiB L2); A100 SXM4
// whitepaper (108 SMs, 1.41 GHz, 19.5 TFLOP/s fp32, 312 dense fp16, 1.555 TB/s HBM2 (40 GB), 40 MiB L2).
// L2 bandwidth is not published by NVIDIA as a spec: the figures below are the commonly quoted
// microbenchmark orders of magnitude and are labelled as such wherever the model prints them.
// Compiles without CUDA headers.
#pragma once

#include <cstdint>
#include <string_view>

namespace convarith::kernels {

struct DeviceProfile {
  const char* name; // "h100", "h200", "a100"
  const char* arch; // "sm_90"
  int cc_major, cc_minor;
  // Launch limits.
  int max_threads_per_block; // 1024
  int64_t max_grid_x;        // 2^31 - 1
  int max_grid_yz;           // 65535
  int max_block_x, max_block_y, max_block_z;
  int64_t smem_per_block_default;  // without the opt-in attribute: 48 KiB
  int64_t smem_per_block_optin;    // cudaFuncAttributeMaxDynamicSharedMemorySize maximum
  int64_t smem_per_sm;             // shared memory an SM has for blocks
  int64_t smem_reserved_per_block; // the runtime reserves 1 KiB per resident block (cc >= 8.0)
  int regs_per_sm;                 // 65536 32-bit registers
  int regs_per_block;              // 65536
  int max_regs_per_thread;         // 255
  int reg_alloc_unit;              // registers are allocated per warp in units of 256
  int max_threads_per_sm;          // 2048
  int max_blocks_per_sm;           // 32
  int warp_size;                   // 32
  // Rates (the bound model).
  int sms;
  double clock_ghz;       // boost clock
  double fp32_fma_tflops; // dense fp32 FMA (2 flops per FMA)
  double fp16_tc_tflops;  // dense fp16/bf16 tensor core (mma.sync), fp32 accumulate
  double tf32_tc_tflops;  // dense tf32 tensor core
  double dram_tbps;       // HBM bandwidth
  double l2_tbps;         // L2 <-> SM bandwidth (order of magnitude, see above)
  int64_t l2_bytes;       // L2 size
  int smem_banks;         // 32 banks x 4 bytes per clock per SM
};

// sm_90 (H100 SXM, H200 SXM: the same SMs and clocks, different HBM) and sm_80 (A100 SXM4 40 GB).
inline constexpr DeviceProfile kProfileH100{"h100",
                                            "sm_90",
                                            9,
                                            0,
                                            1024,
                                            2147483647,
                                            65535,
                                            1024,
                                            1024,
                                            64,
                                            48 * 1024,
                                            227 * 1024,
                                            228 * 1024,
                                            1024,
                                            65536,
                                            65536,
                                            255,
                                            256,
                                            2048,
                                            32,
                                            32,
                                            132,
                                            1.98,
                                            66.9,
                                            989.0,
                                            495.0,
                                            3.35,
                                            12.0,
                                            50LL * 1024 * 1024,
                                            32};
inline constexpr DeviceProfile kProfileH200{"h200",
                                            "sm_90",
                                            9,
                                            0,
                                            1024,
                                            2147483647,
                                            65535,
                                            1024,
                                            1024,
                                            64,
                                            48 * 1024,
                                            227 * 1024,
                                            228 * 1024,
                                            1024,
                                            65536,
                                            65536,
                                            255,
                                            256,
                                            2048,
                                            32,
                                            32,
                                            132,
                                            1.98,
                                            66.9,
                                            989.0,
                                            495.0,
                                            4.8,
                                            12.0,
                                            50LL * 1024 * 1024,
                                            32};
inline constexpr DeviceProfile kProfileA100{"a100",
                                            "sm_80",
                                            8,
                                            0,
                                            1024,
                                            2147483647,
                                            65535,
                                            1024,
                                            1024,
                                            64,
                                            48 * 1024,
                                            163 * 1024,
                                            164 * 1024,
                                            1024,
                                            65536,
                                            65536,
                                            255,
                                            256,
                                            2048,
                                            32,
                                            32,
                                            108,
                                            1.41,
                                            19.5,
                                            312.0,
                                            156.0,
                                            1.555,
                                            5.0,
                                            40LL * 1024 * 1024,
                                            32};

// nullptr for an unknown name. Names: h100, h200, a100; sm_90 means h100's limits, sm_80 a100's.
inline const DeviceProfile* find_device_profile(std::string_view name) {
  if (name == "h100" || name == "sm_90" || name == "sm90")
    return &kProfileH100;
  if (name == "h200")
    return &kProfileH200;
  if (name == "a100" || name == "sm_80" || name == "sm80")
    return &kProfileA100;
  return nullptr;
}

// The profile the executor checks launches against unless told otherwise, and the `emulated` device's.
inline constexpr const DeviceProfile& kDefaultEmulatedProfile = kProfileH100;

} // namespace convarith::kernels
