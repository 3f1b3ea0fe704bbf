// tests/support/compare.cpp — test inputs, NaN poisoning and the comparisons against the oracle.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support/support.hpp"

namespace convarith::test {
namespace {

// Index of output element e as "(n, k, spatial...)" in the problem's NC[D]HW output.
std::string output_index(const ConvProblem& p, int64_t e) {
  std::vector<int64_t> dims{p.n(), p.k()};
  for (int j = 0; j < p.rank(); ++j)
    dims.push_back(p.out(j));
  std::vector<int64_t> idx(dims.size(), 0);
  for (size_t j = dims.size(); j-- > 0;) {
    if (dims[j] > 0) {
      idx[j] = e % dims[j];
      e /= dims[j];
    }
  }
  std::ostringstream os;
  os << "(";
  for (size_t j = 0; j < idx.size(); ++j)
    os << (j ? ", " : "") << idx[j];
  os << ")";
  return os.str();
}

// Taps summed into one output element: the channels of a group times the kernel window.
double taps_per_output(const ConvProblem& p) {
  const double window = static_cast<double>(p.kernel_spatial());
  if (is_pool(p.op()))
    return window;
  const double channels_per_group = static_cast<double>(p.c() / p.groups());
  return channels_per_group * window;
}

::testing::AssertionResult size_mismatch(const ConvProblem& p, size_t got, size_t want) {
  return ::testing::AssertionFailure() << p.name() << ": got " << got << " elements, want " << want << " (y_elements "
                                       << p.y_elements() << ")";
}

constexpr int kMaxReported = 8;

} // namespace

Inputs integer_inputs(const ConvProblem& p, uint64_t seed, bool with_bias) {
  std::mt19937_64 gen(seed);
  // Nonzero values only: a zero would hide the tap it multiplies.
  std::uniform_int_distribution<int> small(1, 3), sign(0, 1), bias_mag(1, 8);
  auto draw = [&](std::uniform_int_distribution<int>& mag) {
    const int v = mag(gen);
    return static_cast<float>(sign(gen) ? v : -v);
  };
  Inputs in;
  in.x.resize(static_cast<size_t>(p.x_elements()));
  for (float& v : in.x)
    v = draw(small);
  if (!is_pool(p.op())) {
    in.w.resize(static_cast<size_t>(p.w_elements()));
    for (float& v : in.w)
      v = draw(small);
    if (with_bias) {
      in.bias.resize(static_cast<size_t>(p.bias_elements()));
      for (float& v : in.bias)
        v = draw(bias_mag);
    }
  }
  return in;
}

Inputs random_inputs(const ConvProblem& p, uint64_t seed, bool with_bias) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  auto draw = [&]() {
    // Exact zeros would hide taps; redraw the (measure-zero but possible) ones.
    float v = 0.0f;
    while (v == 0.0f)
      v = uniform(gen);
    return v;
  };
  Inputs in;
  in.x.resize(static_cast<size_t>(p.x_elements()));
  for (float& v : in.x)
    v = draw();
  if (!is_pool(p.op())) {
    in.w.resize(static_cast<size_t>(p.w_elements()));
    for (float& v : in.w)
      v = draw();
    if (with_bias) {
      in.bias.resize(static_cast<size_t>(p.bias_elements()));
      for (float& v : in.bias)
        v = draw();
    }
  }
  return in;
}

uint64_t fresh_seed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ static_cast<uint64_t>(rd());
}

void poison(std::vector<float>& v) {
  std::fill(v.begin(), v.end(), std::numeric_limits<float>::quiet_NaN());
}

std::vector<float> run_cpu_plan(const ConvProblem& p, const char* algorithm, const Inputs& in, bool with_bias,
                                bool prepared) {
  PlanOptions o;
  o.algorithm = algorithm;
  o.weights = prepared ? in.w.data() : nullptr;
  Result<Plan> plan = Plan::create(p, Device::kCpu, o);
  EXPECT_TRUE(plan.is_ok()) << plan.status().to_string();
  if (!plan)
    return {};
  std::vector<unsigned char> ws(plan->workspace_bytes() + 1);
  std::vector<float> y(static_cast<size_t>(p.y_elements()));
  poison(y);
  const Status s = plan->run(in.x.data(), prepared ? nullptr : in.w.data(), with_bias ? in.bias.data() : nullptr,
                             y.data(), ws.data() + 1, plan->workspace_bytes());
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  if (!s)
    return {};
  return y;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

::testing::AssertionResult exact_match(const ConvProblem& p, const std::vector<float>& got,
                                       const std::vector<double>& want) {
  if (got.size() != want.size())
    return size_mismatch(p, got.size(), want.size());
  int64_t bad = 0;
  std::ostringstream os;
  for (size_t e = 0; e < got.size(); ++e) {
    const double g = static_cast<double>(got[e]);
    if (!std::isnan(g) && g == want[e])
      continue;
    if (bad < kMaxReported)
      os << "\n  y" << output_index(p, static_cast<int64_t>(e)) << ": got " << got[e] << ", want " << want[e];
    ++bad;
  }
  if (bad == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << p.name() << ": " << bad << " of " << got.size()
                                       << " elements differ (exact comparison)" << os.str();
}

::testing::AssertionResult close_match(const ConvProblem& p, const std::vector<float>& got,
                                       const std::vector<double>& want, const std::vector<double>& magnitude,
                                       double tol_factor) {
  if (got.size() != want.size())
    return size_mismatch(p, got.size(), want.size());
  if (magnitude.size() != want.size())
    return size_mismatch(p, magnitude.size(), want.size());
  const double eps = static_cast<double>(std::numeric_limits<float>::epsilon());
  const double scale = tol_factor * eps * (taps_per_output(p) + 2.0);
  int64_t bad = 0;
  std::ostringstream os;
  os.precision(9);
  for (size_t e = 0; e < got.size(); ++e) {
    const double g = static_cast<double>(got[e]);
    const double bound = scale * magnitude[e] + 1e-30;
    const double err = std::fabs(g - want[e]);
    if (!std::isnan(g) && err <= bound)
      continue;
    if (bad < kMaxReported)
      os << "\n  y" << output_index(p, static_cast<int64_t>(e)) << ": got " << got[e] << ", want " << want[e]
         << ", error " << err << " > bound " << bound;
    ++bad;
  }
  if (bad == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << p.name() << ": " << bad << " of " << got.size()
                                       << " elements outside the bound " << tol_factor << " * eps * (taps "
                                       << taps_per_output(p) << " + 2) * magnitude" << os.str();
}

ErrorStats error_stats(const std::vector<float>& got, const std::vector<double>& want,
                       const std::vector<double>& magnitude) {
  ErrorStats s;
  const size_t count = std::min({got.size(), want.size(), magnitude.size()});
  constexpr double kTiny = 1e-300;
  for (size_t e = 0; e < count; ++e) {
    const double err = std::fabs(static_cast<double>(got[e]) - want[e]);
    if (std::isnan(err)) {
      // A NaN must not disappear into max(): report it as an infinite error.
      s.max_abs = s.max_rel = std::numeric_limits<double>::infinity();
      continue;
    }
    s.max_abs = std::max(s.max_abs, err);
    s.max_rel = std::max(s.max_rel, err / std::max(magnitude[e], kTiny));
  }
  return s;
}

double half_ulp(double magnitude) {
  const float m = static_cast<float>(std::fabs(magnitude));
  if (!(m < std::numeric_limits<float>::infinity()))
    return std::numeric_limits<double>::infinity();
  const float up = std::nextafter(m, std::numeric_limits<float>::infinity());
  return 0.5 * (static_cast<double>(up) - static_cast<double>(m));
}

::testing::AssertionResult at_most_twice_peer_error(const std::vector<float>& ours, const std::vector<double>& want,
                                                    const std::vector<double>& magnitude, double peer_max_rel) {
  if (ours.size() != want.size() || magnitude.size() != want.size())
    return ::testing::AssertionFailure() << "sizes differ: ours " << ours.size() << ", reference " << want.size()
                                         << ", magnitude " << magnitude.size();
  if (!(peer_max_rel >= 0))
    return ::testing::AssertionFailure() << "the peer's error is " << peer_max_rel << " (a NaN in its output?)";
  int64_t bad = 0;
  std::ostringstream first;
  for (size_t e = 0; e < ours.size(); ++e) {
    const double err = std::fabs(static_cast<double>(ours[e]) - want[e]);
    const double bound = 2 * peer_max_rel * magnitude[e] + kPeerSlackHalfUlps * half_ulp(magnitude[e]);
    if (err <= bound)
      continue;
    if (bad < kMaxReported)
      first << "\n  y[" << e << "]: got " << ours[e] << ", want " << want[e] << ", error " << err << " > " << bound
            << " = 2 * " << peer_max_rel << " * magnitude " << magnitude[e] << " + " << kPeerSlackHalfUlps
            << " half-ulps";
    ++bad;
  }
  if (bad == 0)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << ours.size()
                                       << " elements exceed twice the peer's error plus the slack:" << first.str();
}

bool gpu_required() {
  const char* v = std::getenv("CONVARITH_REQUIRE_GPU");
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

std::string param_name(const std::string& name) {
  std::string out;
  out.reserve(name.size());
  for (char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    out.push_back(ok ? ch : '_');
  }
  if (out.empty())
    out = "_";
  return out;
}

ProblemDesc conv2d_desc(int64_t n, int64_t c, int64_t k, int64_t h, int64_t w, int64_t r, int64_t pad, int64_t stride,
                        int64_t groups) {
  ProblemDesc d;
  d.op = Op::kConv;
  d.n = n, d.c = c, d.k = k, d.groups = groups, d.rank = 2;
  d.input = {h, w, 1};
  d.kernel = {r, r, 1};
  d.pad_lo = d.pad_hi = {pad, pad, 0};
  d.stride = {stride, stride, 1};
  return d;
}

ConvProblem must_make(const ProblemDesc& desc) {
  Result<ConvProblem> r = ConvProblem::make(desc);
  if (!r.is_ok()) {
    ADD_FAILURE() << "must_make: invalid test problem: " << r.status().to_string();
    return ConvProblem();
  }
  return r.value();
}

} // namespace convarith::test

namespace convarith::test {
Status run_row(const Algorithm& row, const ConvProblem& p, const float* x, const float* w, const float* bias,
               float* y) {
  Result<Plan> plan = Plan::create(p, row.device, row.name);
  if (!plan)
    return plan.status();
  std::vector<unsigned char> ws(plan->workspace_bytes() + 1);
  return plan->run(x, w, bias, y, ws.data(), plan->workspace_bytes());
}
size_t row_workspace(const Algorithm& row, const ConvProblem& p) {
  Result<Prepared> r = row.prepare(p, default_device_info(row.device));
  return r ? r->workspace_bytes : 0;
}
bool host_row(const Algorithm& row) {
  return row.run != nullptr && (row.device == Device::kCpu || row.device == Device::kEmulated);
}
} // namespace convarith::test
