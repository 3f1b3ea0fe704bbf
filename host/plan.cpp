// host/plan.cpp — the algorithm table, devices and Plans (see include/convarith/plan.hpp).
#include "convarith/plan.hpp"

#include <algorithm>
#include <cctype>
#include <string>

#include "algorithm_registry.hpp"
#include "device.hpp"

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

std::string names_for(Device device) {
  std::string s;
  for (const Algorithm& a : algorithm_table())
    if (a.device == device)
      s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

} // namespace

const char* device_name(Device device) {
  return device == Device::kCuda ? "cuda" : "cpu";
}

Result<Device> parse_device(std::string_view name) {
  std::string low(name);
  std::transform(low.begin(), low.end(), low.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  if (low == "cpu")
    return Device::kCpu;
  if (low == "cuda" || low == "gpu")
    return Device::kCuda;
  return invalid_argument("device '" + std::string(name) + "' is not cpu or cuda");
}

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

Result<Plan> Plan::create(const ConvProblem& problem, Device device, std::string_view algorithm) {
  if (device != Device::kCpu && device != Device::kCuda)
    return invalid_argument("device " + num(static_cast<int>(device)) + " is not cpu or cuda");
  if (device == Device::kCuda && cuda_device_count() == 0)
    return device_error("cannot plan on cuda: " + cuda_unavailable_reason());
  const Op op = problem.op();
  const auto make_plan = [&](const Algorithm* a) -> Result<Plan> { return Plan(problem, a, a->workspace(problem)); };

  if (algorithm == "auto") {
    std::string reasons;
    for (const Algorithm& a : algorithm_table()) {
      if (a.device != device || !(a.ops & op_bit(op)) || a.run == nullptr)
        continue;
      const Status s = a.supports(problem);
      if (s.is_ok())
        return make_plan(&a);
      reasons += std::string(reasons.empty() ? "" : "; ") + a.name + ": " + s.message();
    }
    return not_supported("no " + std::string(device_name(device)) + " algorithm runs " + problem.name() +
                         (reasons.empty() ? std::string() : " (" + reasons + ")"));
  }
  const Algorithm* a = find_algorithm(algorithm, device);
  if (a == nullptr) {
    const Device other = device == Device::kCpu ? Device::kCuda : Device::kCpu;
    if (find_algorithm(algorithm, other) != nullptr)
      return invalid_argument("algorithm '" + std::string(algorithm) + "' runs on " + device_name(other) + ", not " +
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
  const Status s = a->supports(problem);
  if (!s.is_ok())
    return Status(s.code(),
                  "algorithm '" + std::string(a->name) + "' cannot run " + problem.name() + ": " + s.message());
  return make_plan(a);
}

Status Plan::run(const float* x, const float* w, const float* bias, float* y, void* workspace, size_t workspace_bytes,
                 void* stream) const {
  if (algorithm_ == nullptr)
    return invalid_argument("plan is empty (default-constructed); make it with Plan::create");
  const ConvProblem& p = problem_;
  const bool pool = is_pool(p.op());
  if (p.y_elements() == 0)
    return Status::ok(); // N = 0: nothing to read or write
  if (x == nullptr)
    return invalid_argument("x is null (expected " + num(p.x_elements()) + " floats)");
  if (!pool && w == nullptr)
    return invalid_argument("w is null (expected " + num(p.w_elements()) + " floats)");
  if (pool && bias != nullptr)
    return invalid_argument(std::string("bias is not null, but ") + op_name(p.op()) + " has no bias");
  if (y == nullptr)
    return invalid_argument("y is null (expected " + num(p.y_elements()) + " floats)");
  if (workspace_bytes_ > 0 && (workspace == nullptr || workspace_bytes < workspace_bytes_))
    return invalid_argument("workspace of " + std::to_string(workspace == nullptr ? 0 : workspace_bytes) +
                            " bytes is smaller than the " + std::to_string(workspace_bytes_) + " bytes algorithm '" +
                            algorithm_->name + "' needs (Plan::workspace_bytes())");
  const Device dev = algorithm_->device;
  CONVARITH_RETURN_IF_ERROR(detail::check_pointer_space(x, "x", dev));
  if (!pool)
    CONVARITH_RETURN_IF_ERROR(detail::check_pointer_space(w, "w", dev));
  CONVARITH_RETURN_IF_ERROR(detail::check_pointer_space(bias, "bias", dev));
  CONVARITH_RETURN_IF_ERROR(detail::check_pointer_space(y, "y", dev));
  if (workspace_bytes_ > 0)
    CONVARITH_RETURN_IF_ERROR(detail::check_pointer_space(workspace, "workspace", dev));

  KernelArgs args;
  args.problem = &problem_;
  args.x = x;
  args.w = pool ? nullptr : w;
  args.bias = bias;
  args.y = y;
  args.workspace = workspace;
  args.workspace_bytes = workspace_bytes;
  args.stream = stream;
  return algorithm_->run(args);
}

} // namespace convarith
