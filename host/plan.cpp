// host/plan.cpp — the algorithm table, devices and Plans (see include/convarith/plan.hpp, host/row.hpp).
#include "convarith/plan.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <string>

#include "device.hpp"
#include "row.hpp"

namespace convarith {
namespace {

std::string num(int64_t v) {
  return std::to_string(v);
}

std::string ops_list(unsigned ops) {
  std::string s;
  for (Op op : {Op::kConv, Op::kConvTranspose, Op::kMaxPool, Op::kAvgPool})
    if (ops & op_bit(op))
      s += (s.empty() ? "" : ", ") + std::string(op_name(op));
  return s;
}

std::string dtypes_list(unsigned mask) {
  std::string s;
  for (DataType t : {DataType::kF32, DataType::kF16, DataType::kBF16})
    if (mask & dtype_bit(t))
      s += (s.empty() ? "" : ", ") + std::string(dtype_name(t));
  return s;
}

std::string names_for(Device device) {
  std::string s;
  for (const Algorithm& a : algorithm_table())
    if (a.device == device)
      s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

AlgorithmInfo info_of(const Algorithm& a) {
  return AlgorithmInfo{a.name,     a.device,        a.ops,  a.dtypes,  a.layouts,
                       a.epilogue, a.deterministic, a.math, a.summary, a.run != nullptr};
}

} // namespace

const char* device_name(Device device) {
  switch (device) {
  case Device::kCuda:
    return "cuda";
  case Device::kEmulated:
    return "emulated";
  default:
    return "cpu";
  }
}

Result<Device> parse_device(std::string_view name) {
  std::string low(name);
  std::transform(low.begin(), low.end(), low.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (low == "cpu")
    return Device::kCpu;
  if (low == "cuda" || low == "gpu")
    return Device::kCuda;
  if (low == "emulated" || low == "emu")
    return Device::kEmulated;
  return invalid_argument("device '" + std::string(name) + "' is not cpu, cuda or emulated");
}

namespace detail {
std::atomic<uint64_t>& planning_calls() {
  static std::atomic<uint64_t> calls{0};
  return calls;
}
} // namespace detail

const std::vector<Algorithm>& algorithm_table() {
  static const std::vector<Algorithm> table = [] {
    std::vector<Algorithm> t;
    detail::append_cpu_algorithms(t);
    detail::append_kernel_algorithms(t);
    return t;
  }();
  return table;
}

const Algorithm* find_algorithm(std::string_view name, Device device) {
  for (const Algorithm& a : algorithm_table())
    if (a.device == device && name == a.name)
      return &a;
  return nullptr;
}

std::vector<AlgorithmInfo> algorithms() {
  std::vector<AlgorithmInfo> v;
  for (const Algorithm& a : algorithm_table())
    v.push_back(info_of(a));
  return v;
}

std::vector<AlgorithmInfo> algorithms(Device device) {
  std::vector<AlgorithmInfo> v;
  for (const Algorithm& a : algorithm_table())
    if (a.device == device)
      v.push_back(info_of(a));
  return v;
}

Status check_declared(const Algorithm& row, const ConvProblem& p) {
  const std::string who(row.name);
  if (!(row.ops & op_bit(p.op())))
    return not_supported(who + ": runs " + ops_list(row.ops) + " only, not " + op_name(p.op()));
  const DataType xt = p.dtype(TensorId::kX);
  for (TensorId id : {TensorId::kX, TensorId::kW, TensorId::kZ, TensorId::kY, TensorId::kBias}) {
    const TensorDesc& t = p.tensor(id);
    if (t.rank == 0)
      continue;
    if (!(row.dtypes & dtype_bit(t.dtype)))
      return not_supported(who + ": takes dtypes " + dtypes_list(row.dtypes) + ", not " + tensor_name(id) + " " +
                           dtype_name(t.dtype));
    if (id != TensorId::kBias && !(row.layouts & layout_bit(t.layout)))
      return not_supported(who + ": takes " + (row.layouts & layout_bit(Layout::kNCHW) ? "NCHW" : "NHWC") +
                           " only, not " + tensor_name(id) + " in " + layout_name(t.layout));
    const bool bias_ok = id == TensorId::kBias && t.dtype == DataType::kF32;
    if (!row.mixed_dtypes && t.dtype != xt && !bias_ok)
      return not_supported(who + ": takes one dtype for x, w, z and y (bias: the same or f32), not x " +
                           dtype_name(xt) + " with " + tensor_name(id) + " " + dtype_name(t.dtype));
  }
  if (!row.epilogue && !p.epilogue().is_identity())
    return not_supported(who + ": takes the identity epilogue only (y = op(x, w) + bias), not activation " +
                         activation_name(p.epilogue().activation) + " alpha " + std::to_string(p.epilogue().alpha) +
                         " beta " + std::to_string(p.epilogue().beta));
  return Status::ok();
}

Status Algorithm::supports(const ConvProblem& p, const DeviceInfo& info) const {
  CONVARITH_RETURN_IF_ERROR(check_declared(*this, p));
  return check(p, info);
}

Status Algorithm::supports(const ConvProblem& p) const {
  return supports(p, default_device_info(device));
}

struct Plan::Impl {
  const Algorithm* row = nullptr;
  Prepared prepared;
  int ordinal = -1;
  // The last pointer verified per argument slot (x, w, bias, z, y, workspace): a run with the same pointer in
  // the same slot skips the driver query (see detail::PointerCache).
  mutable detail::PointerCache cache;
};

const char* Plan::algorithm() const {
  return impl_ ? impl_->row->name : "";
}
bool Plan::deterministic() const {
  return impl_ ? impl_->row->deterministic : false;
}

Result<Plan> Plan::create(const ConvProblem& problem, Device device, std::string_view algorithm) {
  if (device != Device::kCpu && device != Device::kCuda && device != Device::kEmulated)
    return invalid_argument("device " + num(static_cast<int>(device)) + " is not cpu, cuda or emulated");
  if (device == Device::kCuda && cuda_device_count() == 0)
    return device_error("cannot plan on cuda: " + cuda_unavailable_reason());
  Result<DeviceInfo> dev = ::convarith::device_info(device);
  if (!dev)
    return dev.status();
  const Op op = problem.op();
  const auto make_plan = [&](const Algorithm* a, Prepared prepared) -> Result<Plan> {
    Plan plan;
    plan.problem_ = problem;
    plan.device_ = *dev;
    auto impl = std::make_shared<Impl>();
    impl->row = a;
    impl->ordinal = dev->ordinal;
    impl->prepared = std::move(prepared);
    plan.workspace_bytes_ = impl->prepared.workspace_bytes;
    plan.cost_us_ = impl->prepared.cost_us;
    plan.impl_ = std::move(impl);
    return plan;
  };
  const auto prepare = [&](const Algorithm* a) -> Result<Prepared> {
    detail::planning_calls().fetch_add(1, std::memory_order_relaxed);
    Result<Prepared> r = a->prepare(problem, *dev);
    if (!r)
      return Status(r.status().code(), "algorithm '" + std::string(a->name) + "' cannot prepare " + problem.name() +
                                           ": " + r.status().message());
    return r;
  };

  if (algorithm == "auto") {
    std::string reasons;
    const Algorithm* best = nullptr;
    Prepared best_prepared;
    for (const Algorithm& a : algorithm_table()) {
      if (a.device != device || !(a.ops & op_bit(op)) || a.run == nullptr)
        continue;
      const Status s = a.supports(problem, *dev);
      if (!s.is_ok()) {
        reasons += std::string(reasons.empty() ? "" : "; ") + s.message();
        continue;
      }
      Result<Prepared> pr = prepare(&a);
      if (!pr) {
        reasons += std::string(reasons.empty() ? "" : "; ") + pr.status().message();
        continue;
      }
      // Deterministic rows first (auto never trades determinism for speed), then the lowest cost; table
      // order breaks ties.
      const bool better = best == nullptr || (a.deterministic && !best->deterministic) ||
                          (a.deterministic == best->deterministic && pr->cost_us < best_prepared.cost_us);
      if (better) {
        best = &a;
        best_prepared = std::move(pr).value();
      }
    }
    if (best != nullptr)
      return make_plan(best, std::move(best_prepared));
    return not_supported("no " + std::string(device_name(device)) + " algorithm runs " + problem.name() +
                         (reasons.empty() ? std::string() : " (" + reasons + ")"));
  }
  const Algorithm* a = find_algorithm(algorithm, device);
  if (a == nullptr) {
    std::string elsewhere;
    for (Device other : {Device::kCpu, Device::kCuda, Device::kEmulated})
      if (other != device && find_algorithm(algorithm, other) != nullptr)
        elsewhere += std::string(elsewhere.empty() ? "" : " and ") + device_name(other);
    if (!elsewhere.empty())
      return invalid_argument("algorithm '" + std::string(algorithm) + "' runs on " + elsewhere + ", not " +
                              device_name(device) + " (" + device_name(device) + " algorithms: " + names_for(device) +
                              ")");
    return invalid_argument("unknown algorithm '" + std::string(algorithm) + "' (" + device_name(device) +
                            " algorithms: auto, " + names_for(device) + ")");
  }
  if (!(a->ops & op_bit(op)))
    return not_supported("algorithm '" + std::string(a->name) + "' does not run " + op_name(op) + " (it runs " +
                         ops_list(a->ops) + ")");
  if (a->run == nullptr)
    return device_error("algorithm '" + std::string(a->name) +
                        "' is not available in this build: " + cuda_unavailable_reason());
  const Status s = a->supports(problem, *dev);
  if (!s.is_ok())
    return Status(s.code(),
                  "algorithm '" + std::string(a->name) + "' cannot run " + problem.name() + ": " + s.message());
  Result<Prepared> pr = prepare(a);
  if (!pr)
    return pr.status();
  return make_plan(a, std::move(pr).value());
}

namespace {

struct Range {
  const char* name;
  uintptr_t lo, hi; // [lo, hi)
  bool output;
};

bool overlaps(const Range& a, const Range& b) {
  return a.lo < b.hi && b.lo < a.hi;
}

} // namespace

Status Plan::run(const Tensors& t, void* workspace, size_t workspace_bytes, void* stream) const {
  if (!impl_)
    return invalid_argument("plan is empty (default-constructed); make it with Plan::create");
  const ConvProblem& p = problem_;
  const bool pool = is_pool(p.op());
  const bool residual = p.epilogue().has_residual();
  if (p.y_elements() == 0)
    return Status::ok(); // N = 0: nothing to read or write
  const auto expected = [&](TensorId id) {
    const TensorDesc& d = p.tensor(id);
    return " (expected " + num(d.elements) + " " + dtype_name(d.dtype) + " elements)";
  };
  if (t.x == nullptr)
    return invalid_argument("x is null" + expected(TensorId::kX));
  if (!pool && t.w == nullptr)
    return invalid_argument("w is null" + expected(TensorId::kW));
  if (pool && t.bias != nullptr)
    return invalid_argument(std::string("bias is not null, but ") + op_name(p.op()) + " has no bias");
  if (residual && t.z == nullptr)
    return invalid_argument("z is null, but the epilogue's beta is " + std::to_string(p.epilogue().beta) +
                            " (a residual)" + expected(TensorId::kZ));
  if (t.y == nullptr)
    return invalid_argument("y is null" + expected(TensorId::kY));
  if (workspace_bytes_ > 0 && (workspace == nullptr || workspace_bytes < workspace_bytes_))
    return invalid_argument("workspace of " + std::to_string(workspace == nullptr ? 0 : workspace_bytes) +
                            " bytes is smaller than the " + std::to_string(workspace_bytes_) + " bytes algorithm '" +
                            impl_->row->name + "' needs (Plan::workspace_bytes())");
  if (device_.device == Device::kCuda) {
    const int current = detail::current_cuda_device();
    if (current != impl_->ordinal)
      return invalid_argument("the plan was made for CUDA device " + num(impl_->ordinal) + " but device " +
                              num(current) + " is current (make a plan per device)");
  }

  // Overlap: outputs (y, workspace) may not overlap anything else; z may be exactly y.
  std::array<Range, 6> ranges{};
  size_t count = 0;
  const auto add = [&](const char* name, const void* ptr, int64_t bytes, bool output) {
    if (ptr == nullptr || bytes <= 0)
      return;
    const auto lo = reinterpret_cast<uintptr_t>(ptr);
    ranges[count++] = Range{name, lo, lo + static_cast<uintptr_t>(bytes), output};
  };
  add("x", t.x, p.tensor(TensorId::kX).bytes(), false);
  if (!pool)
    add("w", t.w, p.tensor(TensorId::kW).bytes(), false);
  add("bias", t.bias, p.tensor(TensorId::kBias).bytes(), false);
  const bool z_is_y = residual && t.z == t.y;
  if (residual && !z_is_y)
    add("z", t.z, p.tensor(TensorId::kZ).bytes(), false);
  add("y", t.y, p.tensor(TensorId::kY).bytes(), true);
  if (workspace_bytes_ > 0)
    add("workspace", workspace, static_cast<int64_t>(workspace_bytes_), true);
  for (size_t i = 0; i < count; ++i)
    for (size_t j = i + 1; j < count; ++j)
      if ((ranges[i].output || ranges[j].output) && overlaps(ranges[i], ranges[j]))
        return invalid_argument(std::string(ranges[i].name) + " and " + ranges[j].name +
                                " overlap (outputs may not share memory with any other argument; only z may be y "
                                "itself)");

  const Device dev = device_.device == Device::kEmulated ? Device::kCpu : device_.device;
  detail::PointerCache& cache = impl_->cache;
  CONVARITH_RETURN_IF_ERROR(cache.check(0, t.x, "x", dev));
  if (!pool)
    CONVARITH_RETURN_IF_ERROR(cache.check(1, t.w, "w", dev));
  CONVARITH_RETURN_IF_ERROR(cache.check(2, t.bias, "bias", dev));
  if (residual)
    CONVARITH_RETURN_IF_ERROR(cache.check(3, t.z, "z", dev));
  CONVARITH_RETURN_IF_ERROR(cache.check(4, t.y, "y", dev));
  if (workspace_bytes_ > 0)
    CONVARITH_RETURN_IF_ERROR(cache.check(5, workspace, "workspace", dev));

  KernelArgs args;
  args.problem = &problem_;
  args.prepared = impl_->prepared.state.get();
  args.x = t.x;
  args.w = pool ? nullptr : t.w;
  args.bias = t.bias;
  args.z = residual ? t.z : nullptr;
  args.y = t.y;
  args.workspace = workspace;
  args.workspace_bytes = workspace_bytes;
  args.stream = stream;
  if (device_.device == Device::kEmulated)
    return detail::run_emulated(*impl_->row, args);
  return impl_->row->run(args);
}

Status Plan::run(const float* x, const float* w, const float* bias, float* y, void* workspace, size_t workspace_bytes,
                 void* stream) const {
  if (impl_) {
    for (TensorId id : {TensorId::kX, TensorId::kW, TensorId::kBias, TensorId::kY})
      if (problem_.tensor(id).rank > 0 && problem_.tensor(id).dtype != DataType::kF32)
        return invalid_argument(std::string("run(const float*, ...) needs f32 tensors, but ") + tensor_name(id) +
                                " is " + dtype_name(problem_.tensor(id).dtype) + " (use run(Tensors))");
    if (problem_.epilogue().has_residual())
      return invalid_argument("the epilogue has a residual (beta " + std::to_string(problem_.epilogue().beta) +
                              "): pass z through run(Tensors)");
  }
  Tensors t;
  t.x = x;
  t.w = w;
  t.bias = bias;
  t.y = y;
  return run(t, workspace, workspace_bytes, stream);
}

} // namespace convarith
