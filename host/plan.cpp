// host/plan.cpp — the algorithm table, devices and Plans (see include/convarith/plan.hpp, host/row.hpp).
#include "convarith/plan.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <mutex>
#include <optional>
#include <string>

#include "device.hpp"
#include "row.hpp"
#include "tune.hpp"

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

// The memory space a device's tensors live in: the emulated device runs on host memory.
Device memory_space(Device device) {
  return device == Device::kEmulated ? Device::kCpu : device;
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
    const bool bias_ok = id == TensorId::kBias && t.dtype == DataType::kF32; // every row takes an f32 bias
    if (!(row.dtypes & dtype_bit(t.dtype)) && !bias_ok)
      return not_supported(who + ": takes dtypes " + dtypes_list(row.dtypes) + ", not " + tensor_name(id) + " " +
                           dtype_name(t.dtype));
    if (id != TensorId::kBias && !(row.layouts & layout_bit(t.layout)))
      return not_supported(who + ": takes " + (row.layouts & layout_bit(Layout::kNCHW) ? "NCHW" : "NHWC") +
                           " only, not " + tensor_name(id) + " in " + layout_name(t.layout));
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
  std::string requested; // "auto", "tune" or the row name
  std::string auto_row;  // auto's choice ("" for an explicit row)
  TuneReport tuning;     // what "tune" measured or found
  std::vector<std::string> warnings;
  // PlanOptions::weights: the plan's copy of them (its device's memory, w's dtype and layout) and the row's own
  // prepared form (Algorithm::prepare_weights; null when the row has none).
  std::shared_ptr<void> weights;
  PreparedWeights row_weights;
  size_t weight_bytes = 0;
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

namespace {
const std::string& empty_string() {
  static const std::string s;
  return s;
}
} // namespace

const std::string& Plan::requested_algorithm() const {
  return impl_ ? impl_->requested : empty_string();
}
const std::string& Plan::auto_algorithm() const {
  return impl_ ? impl_->auto_row : empty_string();
}
const TuneReport& Plan::tuning() const {
  static const TuneReport none;
  return impl_ ? impl_->tuning : none;
}
bool Plan::has_prepared_weights() const {
  return impl_ && impl_->weights != nullptr;
}
size_t Plan::prepared_weight_bytes() const {
  return impl_ ? impl_->weight_bytes : 0;
}

const std::vector<std::string>& Plan::warnings() const {
  static const std::vector<std::string> none;
  return impl_ ? impl_->warnings : none;
}

Result<Plan> Plan::create(const ConvProblem& problem, Device device, std::string_view algorithm) {
  PlanOptions options;
  options.algorithm = std::string(algorithm);
  return create(problem, device, options);
}

Result<Plan> Plan::create(const ConvProblem& problem, Device device, const PlanOptions& options) {
  const std::string_view algorithm = options.algorithm;
  if (device != Device::kCpu && device != Device::kCuda && device != Device::kEmulated)
    return invalid_argument("device " + num(static_cast<int>(device)) + " is not cpu, cuda or emulated");
  if (device == Device::kCuda && cuda_device_count() == 0)
    return device_error("cannot plan on cuda: " + cuda_unavailable_reason());
  Result<DeviceInfo> dev = ::convarith::device_info(device);
  if (!dev)
    return dev.status();
  const Op op = problem.op();
  const bool with_weights = options.weights != nullptr;
  if (with_weights) {
    if (is_pool(op))
      return invalid_argument(std::string("PlanOptions::weights is set, but ") + op_name(op) + " has no weights");
    CONVARITH_RETURN_IF_ERROR(
        detail::check_pointer_space(options.weights, "PlanOptions::weights", memory_space(device)));
  }
  // The estimate auto ranks by: with prepared weights, the row's cost without preparing them per run.
  const auto cost_of = [&](const Prepared& pr) {
    return with_weights && pr.cost_us_weights >= 0 ? pr.cost_us_weights : pr.cost_us;
  };
  // weights: PlanOptions::weights, the tune scratch's weights (trial plans) or nullptr.
  const auto make_plan = [&](const void* weights, const Algorithm* a, Prepared prepared,
                             std::string auto_row = std::string(), TuneReport tuning = TuneReport(),
                             std::vector<std::string> warnings = std::vector<std::string>()) -> Result<Plan> {
    Plan plan;
    plan.problem_ = problem;
    plan.device_ = *dev;
    auto impl = std::make_shared<Impl>();
    impl->row = a;
    impl->ordinal = dev->ordinal;
    impl->prepared = std::move(prepared);
    impl->requested = std::string(algorithm);
    impl->auto_row = std::move(auto_row);
    impl->tuning = std::move(tuning);
    impl->warnings = std::move(warnings);
    if (weights != nullptr) {
      const auto bytes = static_cast<size_t>(problem.tensor(TensorId::kW).bytes());
      Result<std::shared_ptr<void>> copy = detail::copy_in_device_memory(device, weights, bytes);
      if (!copy)
        return Status(copy.status().code(), "PlanOptions::weights: " + copy.status().message());
      impl->weights = std::move(copy).value();
      impl->weight_bytes = bytes;
      if (a->prepare_weights != nullptr) {
        Result<PreparedWeights> pw = a->prepare_weights(problem, impl->prepared.state.get(), impl->weights.get());
        if (!pw)
          return Status(pw.status().code(), "algorithm '" + std::string(a->name) +
                                                "' cannot prepare PlanOptions::weights: " + pw.status().message());
        impl->row_weights = std::move(pw).value();
        impl->weight_bytes += impl->row_weights.bytes;
      }
    }
    plan.workspace_bytes_ = impl->prepared.workspace_bytes;
    plan.cost_us_ = cost_of(impl->prepared);
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

  // Every row of the device that takes the problem, prepared; `best` is auto's choice: deterministic rows first
  // (auto never trades determinism for speed), then the lowest cost, table order breaking ties.
  struct Candidate {
    const Algorithm* row;
    Prepared prepared;
  };
  const auto rank = [&](std::vector<Candidate>& out, std::string& reasons) -> int {
    int best = -1;
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
      out.push_back(Candidate{&a, std::move(pr).value()});
      const Candidate& c = out.back();
      const Candidate* b = best < 0 ? nullptr : &out[static_cast<size_t>(best)];
      const bool better = b == nullptr || (a.deterministic && !b->row->deterministic) ||
                          (a.deterministic == b->row->deterministic && cost_of(c.prepared) < cost_of(b->prepared));
      if (better)
        best = static_cast<int>(out.size()) - 1;
    }
    return best;
  };
  const auto none_runs = [&](const std::string& reasons) {
    return not_supported("no " + std::string(device_name(device)) + " algorithm runs " + problem.name() +
                         (reasons.empty() ? std::string() : " (" + reasons + ")"));
  };

  if (algorithm == "auto") {
    std::vector<Candidate> all;
    std::string reasons;
    const int best = rank(all, reasons);
    if (best < 0)
      return none_runs(reasons);
    Candidate& c = all[static_cast<size_t>(best)];
    return make_plan(options.weights, c.row, std::move(c.prepared), c.row->name);
  }

  if (algorithm == "tune") {
    if (options.tune_reps < 1 || options.tune_reps > 100000)
      return invalid_argument("PlanOptions::tune_reps " + num(options.tune_reps) + " is not in [1, 100000]");
    if (options.tune_warmup < 0 || options.tune_warmup > 100000)
      return invalid_argument("PlanOptions::tune_warmup " + num(options.tune_warmup) + " is not in [0, 100000]");
    std::vector<std::string> warnings;
    const detail::TuneKey key = detail::tune_key(problem, *dev, with_weights);
    const std::unique_lock<std::mutex> lock = detail::tuning_lock();
    const bool with_file = !options.tune_cache_file.empty();
    detail::TuneFile file;
    std::optional<detail::TuneEntry> cached;
    std::string source;
    if (with_file) {
      file = detail::tune_file_load(options.tune_cache_file, warnings);
      cached = detail::tune_file_lookup(file, key, warnings);
      source = "file";
    }
    if (!cached) {
      cached = detail::memory_lookup(key);
      source = "memory";
    }
    if (cached) {
      // Never trusted: the row must still exist, take the problem and prepare; auto's row must exist.
      const Algorithm* a = find_algorithm(cached->winner, device);
      std::string why;
      if (a == nullptr || a->run == nullptr)
        why = "row '" + cached->winner + "' does not exist on " + device_name(device) + " in this build";
      else if (find_algorithm(cached->auto_row, device) == nullptr)
        why = "auto's row '" + cached->auto_row + "' does not exist on " + device_name(device) + " in this build";
      else if (Status s = a->supports(problem, *dev); !s.is_ok())
        why = "row '" + cached->winner + "' no longer takes the problem: " + s.message();
      if (why.empty()) {
        Result<Prepared> pr = prepare(a);
        if (pr) {
          TuneReport report;
          report.tuned = true;
          report.source = source;
          report.median_us = cached->median_us;
          detail::memory_store(key, *cached);
          if (with_file && source == "memory" && file.writable)
            detail::tune_file_store(file, key, *cached, warnings);
          return make_plan(options.weights, a, std::move(pr).value(), cached->auto_row, std::move(report),
                           std::move(warnings));
        }
        why = "row '" + cached->winner + "' cannot prepare it: " + pr.status().message();
      }
      warnings.push_back("tune cache (" + (source == "file" ? options.tune_cache_file : std::string("memory")) +
                         "): " + why + "; ignored, the problem is re-tuned");
    }

    std::vector<Candidate> all;
    std::string reasons;
    const int best = rank(all, reasons);
    if (best < 0)
      return none_runs(reasons);
    const bool deterministic = all[static_cast<size_t>(best)].row->deterministic;
    const std::string auto_row = all[static_cast<size_t>(best)].row->name;
    const auto fall_back = [&](const std::string& why) {
      warnings.push_back("tune: " + why + "; the plan takes auto's row '" + auto_row + "' (not cached)");
      Candidate& c = all[static_cast<size_t>(best)];
      return make_plan(options.weights, c.row, std::move(c.prepared), auto_row, TuneReport(), std::move(warnings));
    };
    size_t workspace = 0;
    for (const Candidate& c : all)
      if (c.row->deterministic == deterministic)
        workspace = std::max(workspace, c.prepared.workspace_bytes);
    Result<std::unique_ptr<detail::TuneScratch>> scratch = detail::TuneScratch::create(problem, device, workspace);
    if (!scratch)
      return fall_back(scratch.status().message());
    TuneReport report;
    report.tuned = true;
    report.source = "measured";
    int winner = -1;
    for (size_t i = 0; i < all.size(); ++i) {
      Candidate& c = all[i];
      if (c.row->deterministic != deterministic)
        continue; // as auto: a non-deterministic row is not a candidate while a deterministic one runs it
      // With PlanOptions::weights each row is timed as it will run: on weights it prepared (the scratch's).
      Result<Plan> trial = make_plan(with_weights ? (*scratch)->weights() : nullptr, c.row, c.prepared, auto_row);
      if (!trial)
        return trial.status();
      TuneTiming t;
      t.algorithm = c.row->name;
      Result<double> us = (*scratch)->time(*trial, options.tune_warmup, options.tune_reps);
      if (us) {
        t.median_us = *us;
        t.reps = options.tune_reps;
        if (winner < 0 || *us < report.median_us) {
          winner = static_cast<int>(i);
          report.median_us = *us;
        }
      } else {
        t.error = us.status().to_string();
        warnings.push_back("tune: row '" + t.algorithm + "' failed on the scratch buffers (" + t.error +
                           "); not a candidate");
      }
      report.timings.push_back(std::move(t));
    }
    scratch.value().reset(); // the scratch is freed before the plan is returned
    if (winner < 0)
      return fall_back("no candidate ran on the scratch buffers");
    Candidate& w = all[static_cast<size_t>(winner)];
    const detail::TuneEntry entry{w.row->name, auto_row, report.median_us};
    detail::memory_store(key, entry);
    if (with_file && file.writable)
      detail::tune_file_store(file, key, entry, warnings);
    return make_plan(options.weights, w.row, std::move(w.prepared), auto_row, std::move(report), std::move(warnings));
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
                            " algorithms: auto, tune, " + names_for(device) + ")");
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
  return make_plan(options.weights, a, std::move(pr).value());
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
  // w == nullptr on a plan with prepared weights (PlanOptions::weights): the plan's own.
  const bool own_w = !pool && t.w == nullptr && impl_->weights != nullptr;
  if (!pool && t.w == nullptr && !own_w)
    return invalid_argument("w is null" + expected(TensorId::kW) + " and the plan has no prepared weights");
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
  if (!pool && !own_w)
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

  const Device dev = memory_space(device_.device);
  detail::PointerCache& cache = impl_->cache;
  CONVARITH_RETURN_IF_ERROR(cache.check(0, t.x, "x", dev));
  if (!pool && !own_w)
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
  args.w = pool ? nullptr : own_w ? impl_->weights.get() : t.w;
  args.prepared_weights = own_w ? impl_->row_weights.state.get() : nullptr;
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
