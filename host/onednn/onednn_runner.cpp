// host/onednn/onednn_runner.cpp — see onednn_runner.hpp for the mapping of each op to oneDNN.
#include "onednn/onednn_runner.hpp"

#include <algorithm>
#include <exception>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace convarith::onednn {

using dnnl::memory;
using Tag = memory::format_tag;

namespace {

// Plain row-major tags by number of dimensions (3..6).
Tag plain_tag(size_t ndims) {
  switch (ndims) {
  case 3:
    return Tag::abc;
  case 4:
    return Tag::abcd;
  case 5:
    return Tag::abcde;
  default:
    return Tag::abcdef;
  }
}

// Our transposed weights C x K/g x k... as oneDNN's logical (O, I, k...) or (G, O/g, I/g, k...):
// the first two logical dims (after G) are swapped in memory.
Tag transposed_weight_tag(size_t ndims, bool grouped) {
  if (grouped) {
    switch (ndims) {
    case 4:
      return Tag::acbd;
    case 5:
      return Tag::acbde;
    default:
      return Tag::acbdef;
    }
  }
  switch (ndims) {
  case 3:
    return Tag::bac;
  case 4:
    return Tag::bacd;
  default:
    return Tag::bacde;
  }
}

std::string str(int64_t v) {
  return std::to_string(v);
}

} // namespace

struct Runner::State {
  ConvProblem problem;
  bool empty = false; // N = 0: run() does nothing
  bool has_weights = false;
  dnnl::engine engine;
  mutable dnnl::stream stream; // wait() is non-const
  dnnl::primitive primitive;
  std::string impl;
  memory::desc x_md, w_md, b_md, y_md; // the caller's plain layouts
  memory::desc px_md, pw_md, py_md;    // what the primitive wants
  std::vector<float> zero_bias;        // bias when the caller passes none
  // Primitive-side buffers, used only when a layout differs (blocked_layouts). run() writes them,
  // hence one Runner per thread.
  mutable memory px, pw, py;
  dnnl::reorder rx, rw, ry; // plain -> primitive layout (x, w) and back (y)
};

Runner::Runner() = default;
Runner::~Runner() = default;
Runner::Runner(Runner&&) noexcept = default;
Runner& Runner::operator=(Runner&&) noexcept = default;

const ConvProblem& Runner::problem() const {
  return state_->problem;
}
std::string Runner::implementation() const {
  return state_ ? state_->impl : std::string();
}

std::string version() {
  const dnnl_version_t* v = dnnl_version();
  std::string runtime = "unknown";
  if (v->cpu_runtime == DNNL_RUNTIME_OMP)
    runtime = "OpenMP";
  if (v->cpu_runtime == DNNL_RUNTIME_TBB)
    runtime = "TBB";
  if (v->cpu_runtime == DNNL_RUNTIME_SEQ)
    runtime = "sequential";
  if (v->cpu_runtime == DNNL_RUNTIME_THREADPOOL)
    runtime = "threadpool";
  return "oneDNN " + str(v->major) + "." + str(v->minor) + "." + str(v->patch) + " (cpu runtime " + runtime + ")";
}

Result<Runner> Runner::create(const ConvProblem& p, const RunnerOptions& options) {
  Runner runner;
  runner.state_ = std::make_unique<State>();
  State& st = *runner.state_;
  st.problem = p;
  if (p.n() == 0) {
    st.empty = true;
    return runner;
  }
  const int rank = p.rank();
  memory::dims strides, dilates, pad_l, pad_r, kernel;
  for (int j = 0; j < rank; ++j) {
    const AxisParams& a = p.axis(j);
    strides.push_back(a.s);
    dilates.push_back(a.d - 1); // oneDNN counts the zeros between taps
    kernel.push_back(a.k);
    pad_l.push_back(a.p_lo);
    pad_r.push_back(a.p_hi);
  }
  const memory::dims x_dims = p.x_shape(), y_dims = p.y_shape();
  const bool grouped = p.groups() > 1;
  try {
    st.engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
    st.stream = dnnl::stream(st.engine);
    const auto dt = memory::data_type::f32;
    st.x_md = memory::desc(x_dims, dt, plain_tag(x_dims.size()));
    st.y_md = memory::desc(y_dims, dt, plain_tag(y_dims.size()));
    const auto any = [&](const memory::dims& d) { return memory::desc(d, dt, Tag::any); };
    const bool blocked = options.blocked_layouts;
    const auto prop = dnnl::prop_kind::forward_inference;

    if (p.op() == Op::kConv || p.op() == Op::kConvTranspose) {
      st.has_weights = true;
      const bool transposed = p.op() == Op::kConvTranspose;
      // oneDNN's logical weight dims: (O, I, k...) or (G, O/g, I/g, k...), O = K, I = C.
      memory::dims w_dims;
      if (grouped)
        w_dims.push_back(p.groups());
      w_dims.push_back(p.k() / p.groups());
      w_dims.push_back(p.c() / p.groups());
      if (!grouped) {
        w_dims[0] = p.k();
        w_dims[1] = p.c();
      }
      for (int j = 0; j < rank; ++j)
        w_dims.push_back(p.axis(j).k);
      st.w_md = memory::desc(w_dims, dt,
                             transposed ? transposed_weight_tag(w_dims.size(), grouped) : plain_tag(w_dims.size()));
      st.b_md = memory::desc({p.k()}, dt, Tag::a);
      st.zero_bias.assign(static_cast<size_t>(p.k()), 0.0f);
      const memory::desc xs = blocked ? any(x_dims) : st.x_md, ws = blocked ? any(w_dims) : st.w_md,
                         ys = blocked ? any(y_dims) : st.y_md;
      if (!transposed) {
        dnnl::convolution_forward::desc d(prop, dnnl::algorithm::convolution_direct, xs, ws, st.b_md, ys, strides,
                                          dilates, pad_l, pad_r);
        dnnl::convolution_forward::primitive_desc pd(d, st.engine);
        st.px_md = pd.src_desc();
        st.pw_md = pd.weights_desc();
        st.py_md = pd.dst_desc();
        st.impl = pd.impl_info_str();
        st.primitive = dnnl::convolution_forward(pd);
      } else {
        for (int j = 0; j < rank; ++j) {
          pad_r[static_cast<size_t>(j)] -= p.axis(j).a; // o = s(i-1) + k' - pl - pr in oneDNN: no a term
          if (pad_r[static_cast<size_t>(j)] < 0)
            return not_supported("oneDNN deconvolution axis " + std::to_string(j) + ": output padding " +
                                 str(p.axis(j).a) + " exceeds right padding " + str(p.axis(j).p_hi) +
                                 " (oneDNN would need negative padding_r)");
        }
        dnnl::deconvolution_forward::desc d(prop, dnnl::algorithm::deconvolution_direct, xs, ws, st.b_md, ys, strides,
                                            dilates, pad_l, pad_r);
        dnnl::deconvolution_forward::primitive_desc pd(d, st.engine);
        st.px_md = pd.src_desc();
        st.pw_md = pd.weights_desc();
        st.py_md = pd.dst_desc();
        st.impl = pd.impl_info_str();
        st.primitive = dnnl::deconvolution_forward(pd);
      }
    } else {
      const bool is_max = p.op() == Op::kMaxPool;
      for (int j = 0; j < rank; ++j) {
        const AxisParams& a = p.axis(j);
        // The right padding for which oneDNN's floor formula gives our output size: any value in
        // [need, need + s - 1] does; prefer the caller's p_hi, never below 0.
        const int64_t need = (p.out(j) - 1) * a.s + effective_kernel(a.k, a.d) - a.i - a.p_lo;
        int64_t pr = std::clamp(a.p_hi, need, need + a.s - 1);
        if (pr < 0)
          pr = 0;
        if (pr < need || pr > need + a.s - 1)
          return not_supported("oneDNN pooling axis " + std::to_string(j) + ": no right padding gives output " +
                               str(p.out(j)));
        if (!is_max && p.count_include_pad() && pr > a.p_hi)
          return not_supported("oneDNN pooling axis " + std::to_string(j) +
                               ": ceil_mode window past the padded extent would be counted by "
                               "pooling_avg_include_padding (right padding " +
                               str(pr) + " > " + str(a.p_hi) + ")");
        pad_r[static_cast<size_t>(j)] = pr;
      }
      const auto alg = is_max                  ? dnnl::algorithm::pooling_max
                       : p.count_include_pad() ? dnnl::algorithm::pooling_avg_include_padding
                                               : dnnl::algorithm::pooling_avg_exclude_padding;
      const memory::desc xs = blocked ? any(x_dims) : st.x_md, ys = blocked ? any(y_dims) : st.y_md;
      // pooling_v2 needs a concrete source layout to choose the destination one.
      dnnl::pooling_v2_forward::desc d(prop, alg, blocked ? st.x_md : xs, ys, strides, kernel, dilates, pad_l, pad_r);
      dnnl::pooling_v2_forward::primitive_desc pd(d, st.engine);
      st.px_md = pd.src_desc();
      st.py_md = pd.dst_desc();
      st.impl = pd.impl_info_str();
      st.primitive = dnnl::pooling_v2_forward(pd);
    }
    const auto reorder = [&](const memory::desc& from, const memory::desc& to) {
      return dnnl::reorder(dnnl::reorder::primitive_desc(st.engine, from, st.engine, to));
    };
    if (st.px_md != st.x_md) {
      st.px = memory(st.px_md, st.engine);
      st.rx = reorder(st.x_md, st.px_md);
    }
    if (st.has_weights && st.pw_md != st.w_md) {
      st.pw = memory(st.pw_md, st.engine);
      st.rw = reorder(st.w_md, st.pw_md);
    }
    if (st.py_md != st.y_md) {
      st.py = memory(st.py_md, st.engine);
      st.ry = reorder(st.py_md, st.y_md);
    }
  } catch (const dnnl::error& e) {
    return not_supported(std::string("oneDNN cannot run ") + p.name() + ": " + e.what() + " (status " +
                         std::to_string(static_cast<int>(e.status)) + ")");
  } catch (const std::exception& e) {
    return internal_error(std::string("oneDNN adapter: ") + e.what());
  }
  return runner;
}

Status Runner::run(const float* x, const float* w, const float* bias, float* y) const {
  if (!state_)
    return invalid_argument("oneDNN Runner is empty (default-constructed or moved from)");
  const State& st = *state_;
  if (st.empty)
    return Status::ok();
  if (x == nullptr || y == nullptr || (st.has_weights && w == nullptr))
    return invalid_argument("oneDNN Runner::run: x, y (and w for conv) must not be null");
  try {
    memory xm(st.x_md, st.engine, const_cast<float*>(x));
    memory ym(st.y_md, st.engine, y);
    memory src = xm, dst = ym;
    if (st.px) {
      st.rx.execute(st.stream, xm, st.px);
      src = st.px;
    }
    if (st.py)
      dst = st.py;
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    if (st.has_weights) {
      memory wm(st.w_md, st.engine, const_cast<float*>(w));
      if (st.pw) {
        st.rw.execute(st.stream, wm, st.pw);
        wm = st.pw;
      }
      args.emplace(DNNL_ARG_WEIGHTS, wm);
      args.emplace(DNNL_ARG_BIAS,
                   memory(st.b_md, st.engine, const_cast<float*>(bias != nullptr ? bias : st.zero_bias.data())));
    }
    st.primitive.execute(st.stream, args);
    if (st.py)
      st.ry.execute(st.stream, st.py, ym);
    st.stream.wait();
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN execution failed: ") + e.what());
  }
  return Status::ok();
}

} // namespace convarith::onednn
