// kernels/kernel_algorithms.cpp — the CUDA kernel rows of the algorithm table and their emulated twins, in
// `auto` preference order (table order breaks ties of the cost estimate): for conv `depthwise` (groups == C only)
// before `igemm` (implicit GEMM) before `tiled` (faster, when its shared-memory tile fits) before `direct` (always
// correct); for conv_transpose `gather` (deterministic) before `scatter` (atomics); `pool`.
// Each kernel appears twice: on kCuda its nvcc-compiled run() (nullptr in a build without CUDA: the .cu
// files are compiled only then), on kEmulated the same kernel source compiled for the CPU kernel executor
// (always present). Also: the emulated device's DeviceInfo and its run path.
#include <vector>

#include "conv_depthwise.cuh"
#include "conv_direct.cuh"
#include "conv_igemm.cuh"
#include "conv_tiled.cuh"
#include "device.hpp"
#include "device_profile.hpp"
#include "executor.hpp"
#include "pool_direct.cuh"
#include "row.hpp"
#include "transpose_gather.cuh"
#include "transpose_scatter.cuh"

#if defined(CONVARITH_HAVE_CUDA)
#define CONVARITH_CUDA_RUN(fn) (&::convarith::kernels::cuda::fn)
#else
#define CONVARITH_CUDA_RUN(fn) nullptr
#endif

namespace convarith {

static_assert(static_cast<int>(Activation::kGeluTanh) == kernels::kActGeluTanh &&
                  static_cast<int>(Activation::kRelu) == kernels::kActRelu &&
                  static_cast<int>(Activation::kClip) == kernels::kActClip,
              "kernels/numeric.cuh's activation codes follow convarith::Activation");

DeviceInfo emulated_device_info() {
  const kernels::DeviceProfile& prof = kernels::kDefaultEmulatedProfile;
  DeviceInfo d;
  d.device = Device::kEmulated;
  d.name = std::string("emulated ") + prof.arch + " (" + prof.name + " limits)";
  d.cc_major = prof.cc_major;
  d.cc_minor = prof.cc_minor;
  d.sms = prof.sms;
  d.smem_per_block = prof.smem_per_block_default;
  d.smem_per_block_optin = prof.smem_per_block_optin;
  d.smem_per_sm = prof.smem_per_sm;
  d.l2_bytes = prof.l2_bytes;
  return d;
}

namespace detail {

// Every emulated launch of the run is checked as a GPU would fault: a global access outside x, w, bias, z, y and
// the workspace (their exact extents: the problem's tensor bytes and the plan's workspace) is an error.
Status run_emulated(const Algorithm& row, const KernelArgs& args) {
  const ConvProblem& p = *args.problem;
  const auto bytes = [&](TensorId id, const void* ptr) {
    return ptr != nullptr ? static_cast<size_t>(p.tensor(id).bytes()) : size_t{0};
  };
  const emu::GlobalExtents extents(
      {{args.x, bytes(TensorId::kX, args.x), "x"},
       {args.w, bytes(TensorId::kW, args.w), "w"},
       {args.bias, bytes(TensorId::kBias, args.bias), "bias"},
       {args.z, bytes(TensorId::kZ, args.z), "z"},
       {args.y, bytes(TensorId::kY, args.y), "y"},
       {args.workspace, args.workspace != nullptr ? args.workspace_bytes : 0, "workspace"}});
  return row.run(args);
}

void append_kernel_algorithms(std::vector<Algorithm>& table) {
  namespace kn = ::convarith::kernels;
  // What the kernels run (their files' opening comments say how): one dtype for x, w, z, y among f32, f16 and
  // bf16 (bias the same or f32), activations and filters in either layout, the fused epilogue (the conv rows;
  // pooling has none).
  const unsigned dtypes = dtype_bit(DataType::kF32) | dtype_bit(DataType::kF16) | dtype_bit(DataType::kBF16);
  const unsigned layouts = layout_bit(Layout::kNCHW) | layout_bit(Layout::kNHWC);
  struct KernelRow {
    const char* name;
    unsigned ops;
    bool epilogue;
    bool deterministic;
    const char* summary;
    Status (*supports)(const ConvProblem&, const DeviceInfo&);
    Result<Prepared> (*prepare)(const ConvProblem&, const DeviceInfo&);
    Status (*cuda_run)(const KernelArgs&);
    Status (*emu_run)(const KernelArgs&);
  };
  const KernelRow rows[] = {
      {"tiled", op_bit(Op::kConv), true, true,
       "conv: 128-pixel x up to 16-channel output tile per block, input tile + halo and filter slice in shared memory "
       "(<= 48 KiB), up to 8 outputs per thread in registers",
       &kn::tiled_supports, &kn::tiled_prepare, CONVARITH_CUDA_RUN(tiled_run), &kn::emu::tiled_run},
      {"direct", op_bit(Op::kConv), true, true,
       "conv: one thread per output element; every conv problem (the baseline)", &kn::direct_supports,
       &kn::direct_prepare, CONVARITH_CUDA_RUN(direct_run), &kn::emu::direct_run},
      {"gather", op_bit(Op::kConvTranspose), true, true,
       "conv_transpose: one thread per output element gathering the taps that reach it (stride/dilation phases in "
       "integer steps); every conv_transpose problem",
       &kn::gather_supports, &kn::gather_prepare, CONVARITH_CUDA_RUN(gather_run), &kn::emu::gather_run},
      {"scatter", op_bit(Op::kConvTranspose), true, false,
       "conv_transpose: one thread per input element, atomic adds into an fp32 workspace, then one pass writes y "
       "(bias, epilogue); not bitwise deterministic",
       &kn::scatter_supports, &kn::scatter_prepare, CONVARITH_CUDA_RUN(scatter_run), &kn::emu::scatter_run},
      {"pool", op_bit(Op::kMaxPool) | op_bit(Op::kAvgPool), false, true,
       "max_pool and avg_pool: one thread per output (ceil_mode, dilation, count_include_pad)", &kn::pool_supports,
       &kn::pool_prepare, CONVARITH_CUDA_RUN(pool_run), &kn::emu::pool_run},
  };
  // igemm (before tiled: `auto` prefers it) declares more formats than the rows above: both layouts, the epilogue.
  const unsigned f32 = dtype_bit(DataType::kF32);
  const unsigned igemm_layouts = layouts;
  for (Device device : {Device::kCuda, Device::kEmulated}) {
    // depthwise: groups == C only, every format the rows above take.
    table.push_back(Algorithm{
        "depthwise", device, op_bit(Op::kConv), dtypes, layouts, true, false, true, "fp32 FMA",
        "conv with groups == C (any multiplier K/C): 4 adjacent outputs along W per thread, the 3x3 / 5x5 filter "
        "and each input row in registers (generic tap loop otherwise); NC[D]HW and N[D]HWC, fused epilogue",
        &kn::depthwise_supports, &kn::depthwise_prepare,
        device == Device::kCuda ? CONVARITH_CUDA_RUN(depthwise_run) : &kn::emu::depthwise_run});
    table.push_back(Algorithm{
        "igemm", device, op_bit(Op::kConv), f32, igemm_layouts, true, false, true, "fp32 FMA",
        "conv: implicit GEMM, 128x128 / 128x64 / 64x64 x 8 block tiles, 8x8 outputs per thread, im2col gathered into "
        "double-buffered shared memory; split-K where the tiles cannot fill the SMs (fp32 partials in the workspace, "
        "summed in split order by a second kernel: deterministic); NC[D]HW and N[D]HWC, both filter layouts, fused "
        "epilogue",
        &kn::igemm_supports, &kn::igemm_prepare,
        device == Device::kCuda ? CONVARITH_CUDA_RUN(igemm_run) : &kn::emu::igemm_run});
    for (const KernelRow& r : rows)
      table.push_back(Algorithm{r.name, device, r.ops, dtypes, layouts, r.epilogue, false, r.deterministic, "fp32 FMA",
                                r.summary, r.supports, r.prepare, device == Device::kCuda ? r.cuda_run : r.emu_run});
  }
}

} // namespace detail
} // namespace convarith
