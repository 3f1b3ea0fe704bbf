// host/onednn/onednn_runner.cpp — see onednn_runner.hpp for the mapping of each op, format and
// epilogue to oneDNN.
#include "onednn/onednn_runner.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

namespace convarith::onednn {

using dnnl::memory;

namespace {

std::string str(int64_t v) {
  return std::to_string(v);
}

memory::data_type dnnl_type(DataType t) {
  switch (t) {
  case DataType::kF16:
    return memory::data_type::f16;
  case DataType::kBF16:
    return memory::data_type::bf16;
  case DataType::kF32:
    break;
  }
  return memory::data_type::f32;
}

// A tensor of the problem as oneDNN sees it: its logical dims and element strides as they are.
memory::desc activation_md(const TensorDesc& t) {
  const memory::dims dims(t.dims.begin(), t.dims.begin() + t.rank);
  const memory::dims strides(t.strides.begin(), t.strides.begin() + t.rank);
  return memory::desc(dims, dnnl_type(t.dtype), strides);
}

// Our weights (conv K x C/g x k..., transposed C x K/g x k..., either layout) as oneDNN's logical
// (O, I, k...) or, grouped, (G, O/g, I/g, k...) with O = K, I = C, each dim keeping our element stride.
memory::desc weights_md(const ConvProblem& p) {
  const TensorDesc& t = p.tensor(TensorId::kW);
  const bool transposed = p.op() == Op::kConvTranspose;
  const int64_t g = p.groups();
  // Our dim 0 / dim 1 are (K, C/g) for conv and (C, K/g) for transposed.
  const int64_t s0 = t.strides[0], s1 = t.strides[1];
  memory::dims dims, strides;
  if (g > 1) {
    dims.push_back(g);
    strides.push_back((transposed ? p.c() / g : p.k() / g) * s0); // the group steps over dim 0's block
    dims.push_back(p.k() / g);
    strides.push_back(transposed ? s1 : s0);
    dims.push_back(p.c() / g);
    strides.push_back(transposed ? s0 : s1);
  } else {
    dims.push_back(p.k());
    strides.push_back(transposed ? s1 : s0);
    dims.push_back(p.c());
    strides.push_back(transposed ? s0 : s1);
  }
  for (int j = 2; j < t.rank; ++j) {
    dims.push_back(t.dims[static_cast<size_t>(j)]);
    strides.push_back(t.strides[static_cast<size_t>(j)]);
  }
  return memory::desc(dims, dnnl_type(t.dtype), strides);
}

std::string dtypes_of(const ConvProblem& p) {
  std::string s;
  for (TensorId id : {TensorId::kX, TensorId::kW, TensorId::kBias, TensorId::kZ, TensorId::kY}) {
    if (p.tensor(id).rank == 0)
      continue;
    if (!s.empty())
      s += ", ";
    s += std::string(tensor_name(id)) + " " + dtype_name(p.dtype(id));
  }
  return s;
}

bool all_f32(const ConvProblem& p) {
  for (TensorId id : {TensorId::kX, TensorId::kW, TensorId::kBias, TensorId::kZ, TensorId::kY})
    if (p.tensor(id).rank > 0 && p.dtype(id) != DataType::kF32)
      return false;
  return true;
}

std::string fmt(float v) {
  std::string s = std::to_string(v);
  while (s.size() > 1 && s.back() == '0')
    s.pop_back();
  if (!s.empty() && s.back() == '.')
    s.pop_back();
  return s;
}

struct Eltwise {
  dnnl::algorithm alg;
  float alpha, beta;
  const char* name;
};

Eltwise eltwise_of(const Epilogue& e) {
  switch (e.activation) {
  case Activation::kRelu:
    return {dnnl::algorithm::eltwise_relu, 0.0f, 0.0f, "eltwise_relu"};
  case Activation::kLeakyRelu:
    return {dnnl::algorithm::eltwise_relu, e.leaky_alpha, 0.0f, "eltwise_relu(leaky)"};
  case Activation::kClip:
    return {dnnl::algorithm::eltwise_clip, e.clip_min, e.clip_max, "eltwise_clip"};
  case Activation::kSigmoid:
    return {dnnl::algorithm::eltwise_logistic, 0.0f, 0.0f, "eltwise_logistic"};
  case Activation::kTanh:
    return {dnnl::algorithm::eltwise_tanh, 0.0f, 0.0f, "eltwise_tanh"};
  case Activation::kSilu:
    return {dnnl::algorithm::eltwise_swish, 1.0f, 0.0f, "eltwise_swish"};
  case Activation::kGelu:
    return {dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f, "eltwise_gelu_erf"};
  case Activation::kGeluTanh:
    return {dnnl::algorithm::eltwise_gelu_tanh, 0.0f, 0.0f, "eltwise_gelu_tanh"};
  case Activation::kIdentity:
    break;
  }
  return {dnnl::algorithm::eltwise_linear, 1.0f, 0.0f, "identity"};
}

} // namespace

struct Runner::State {
  ConvProblem problem;
  bool empty = false; // N = 0: run() does nothing
  bool has_weights = false;
  bool residual = false;
  int bias_post_op = -1; // index of the binary_add post-op carrying the bias, -1: oneDNN's own bias
  dnnl::engine engine;
  mutable dnnl::stream stream; // wait() is non-const
  dnnl::primitive primitive;
  std::string impl, post_ops;
  memory::desc x_md, w_md, b_md, y_md;  // the caller's layouts (b_md: {K}, or {1, K, 1...} for binary_add)
  memory::desc px_md, pw_md, py_md;     // what the primitive wants
  std::vector<unsigned char> zero_bias; // bias when the caller passes none (zero bytes are 0 in every dtype)
  // Primitive-side buffers, used only when a layout differs (blocked_layouts). run() writes them,
  // hence one Runner per thread.
  mutable memory px, pw, py;
  dnnl::reorder rx, rw, ry, rz; // caller -> primitive layout (x, w, z) and back (y)
  memory cw;                    // set_constant_weights(): the weights in the primitive's layout, made once
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
std::string Runner::post_ops() const {
  return state_ ? state_->post_ops : std::string();
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

std::string cpu_isa() {
  switch (static_cast<unsigned>(dnnl_get_effective_cpu_isa())) {
  case dnnl_cpu_isa_sse41:
    return "sse41";
  case dnnl_cpu_isa_avx:
    return "avx";
  case dnnl_cpu_isa_avx2:
    return "avx2";
  case dnnl_cpu_isa_avx2_vnni:
    return "avx2_vnni";
  case dnnl_cpu_isa_avx512_mic:
    return "avx512_mic";
  case dnnl_cpu_isa_avx512_mic_4ops:
    return "avx512_mic_4ops";
  case dnnl_cpu_isa_avx512_core:
    return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni:
    return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16:
    return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx:
    return "avx512_core_amx";
  default:
    return "isa 0x" + [] {
      char b[16];
      std::snprintf(b, sizeof b, "%x", static_cast<unsigned>(dnnl_get_effective_cpu_isa()));
      return std::string(b);
    }();
  }
}

Result<Runner> Runner::create(const ConvProblem& p, const RunnerOptions& options) {
  Runner runner;
  runner.state_ = std::make_unique<State>();
  State& st = *runner.state_;
  st.problem = p;
  const Epilogue& e = p.epilogue();
  st.residual = e.has_residual();
  if (st.residual && p.dtype(TensorId::kZ) != p.dtype(TensorId::kY))
    return not_supported(std::string("oneDNN's sum post-op reads the residual from y's buffer: z ") +
                         dtype_name(p.dtype(TensorId::kZ)) + " must have y's dtype " +
                         dtype_name(p.dtype(TensorId::kY)));
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
  std::string stage = "describe"; // for the message: which step oneDNN refused
  try {
    st.engine = dnnl::engine(dnnl::engine::kind::cpu, 0);
    st.stream = dnnl::stream(st.engine);
    st.x_md = activation_md(p.tensor(TensorId::kX));
    st.y_md = activation_md(p.tensor(TensorId::kY));
    const auto any = [](const memory::desc& d) {
      return memory::desc(d.dims(), d.data_type(), memory::format_tag::any);
    };
    const bool blocked = options.blocked_layouts;
    const auto prop = dnnl::prop_kind::forward_inference;

    if (p.op() == Op::kConv || p.op() == Op::kConvTranspose) {
      st.has_weights = true;
      const bool transposed = p.op() == Op::kConvTranspose;
      st.w_md = weights_md(p);
      const memory::data_type bt = dnnl_type(p.dtype(TensorId::kBias));
      st.zero_bias.assign(static_cast<size_t>(p.k() * dtype_bytes(p.dtype(TensorId::kBias))), 0);
      // The post-op chain (see the header for the order).
      dnnl::post_ops po;
      std::string desc;
      const auto add = [&desc](const std::string& s) { desc += (desc.empty() ? "" : " ") + s; };
      int index = 0;
      if (e.alpha != 1.0f) {
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, e.alpha, 0.0f);
        add("linear(" + fmt(e.alpha) + ")");
        ++index;
        memory::dims bd(static_cast<size_t>(p.tensor(TensorId::kY).rank), 1);
        bd[1] = p.k();
        // {1, K, 1...}, dense: the stride of K is 1, of the unit dims K.
        memory::dims bs(bd.size(), p.k());
        bs[1] = 1;
        st.b_md = memory::desc(bd, bt, bs);
        po.append_binary(dnnl::algorithm::binary_add, st.b_md);
        add("binary_add(bias)");
        st.bias_post_op = index++;
      } else {
        st.b_md = memory::desc({p.k()}, bt, memory::format_tag::a);
      }
      if (st.residual) {
        po.append_sum(e.beta);
        add("sum(" + fmt(e.beta) + ")");
        ++index;
      }
      if (e.activation != Activation::kIdentity) {
        const Eltwise el = eltwise_of(e);
        po.append_eltwise(1.0f, el.alg, el.alpha, el.beta);
        add(el.name);
        ++index;
      }
      st.post_ops = desc;
      dnnl::primitive_attr attr;
      attr.set_post_ops(po);
      const memory::desc xs = blocked ? any(st.x_md) : st.x_md, ws = blocked ? any(st.w_md) : st.w_md,
                         ys = blocked ? any(st.y_md) : st.y_md;
      const bool native_bias = st.bias_post_op < 0;
      if (!transposed) {
        const auto d = native_bias ? dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, xs, ws,
                                                                     st.b_md, ys, strides, dilates, pad_l, pad_r)
                                   : dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, xs, ws,
                                                                     ys, strides, dilates, pad_l, pad_r);
        stage = "implement";
        dnnl::convolution_forward::primitive_desc pd(d, attr, st.engine);
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
        const auto d = native_bias ? dnnl::deconvolution_forward::desc(prop, dnnl::algorithm::deconvolution_direct, xs,
                                                                       ws, st.b_md, ys, strides, dilates, pad_l, pad_r)
                                   : dnnl::deconvolution_forward::desc(prop, dnnl::algorithm::deconvolution_direct, xs,
                                                                       ws, ys, strides, dilates, pad_l, pad_r);
        stage = "implement";
        dnnl::deconvolution_forward::primitive_desc pd(d, attr, st.engine);
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
      const memory::desc ys = blocked ? any(st.y_md) : st.y_md;
      // pooling_v2 needs a concrete source layout to choose the destination one.
      dnnl::pooling_v2_forward::desc d(prop, alg, st.x_md, ys, strides, kernel, dilates, pad_l, pad_r);
      stage = "implement";
      dnnl::pooling_v2_forward::primitive_desc pd(d, st.engine);
      st.px_md = pd.src_desc();
      st.py_md = pd.dst_desc();
      st.impl = pd.impl_info_str();
      st.primitive = dnnl::pooling_v2_forward(pd);
    }
    stage = "reorder";
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
      if (st.residual)
        st.rz = reorder(st.y_md, st.py_md); // z has y's dtype and layout
    }
  } catch (const dnnl::error& ex) {
    std::string m = std::string("oneDNN cannot run ") + p.name() + " (" + dtypes_of(p);
    if (!st.post_ops.empty())
      m += "; post-ops " + st.post_ops;
    m += "; CPU ISA " + cpu_isa() + "): ";
    if (stage == "implement" && !all_f32(p))
      m += "no implementation takes these data types on this CPU (oneDNN 2.x on x64: bf16 needs avx512_core, no "
           "f16 convolution or pooling); ";
    m += std::string("oneDNN says '") + ex.what() + "' (status " + std::to_string(static_cast<int>(ex.status)) +
         ", at the " + stage + " step)";
    return not_supported(m);
  } catch (const std::exception& ex) {
    return internal_error(std::string("oneDNN adapter: ") + ex.what());
  }
  return runner;
}

Status Runner::run(const float* x, const float* w, const float* bias, float* y) const {
  if (!state_)
    return invalid_argument("oneDNN Runner is empty (default-constructed or moved from)");
  const ConvProblem& p = state_->problem;
  if (!all_f32(p))
    return invalid_argument("oneDNN Runner::run(const float*...) takes f32 tensors only; " + p.name() + " has " +
                            dtypes_of(p) + ": use run(const Tensors&)");
  if (state_->residual)
    return invalid_argument("oneDNN Runner::run(const float*...) has no z; " + p.name() +
                            " has a residual (beta = " + fmt(p.epilogue().beta) + "): use run(const Tensors&)");
  Tensors t;
  t.x = x;
  t.w = w;
  t.bias = bias;
  t.y = y;
  return run(t);
}

Status Runner::set_constant_weights(const void* w) {
  if (!state_)
    return invalid_argument("oneDNN Runner is empty (default-constructed or moved from)");
  State& st = *state_;
  if (!st.has_weights)
    return invalid_argument(std::string("oneDNN Runner::set_constant_weights: ") + op_name(st.problem.op()) +
                            " has no weights");
  if (w == nullptr)
    return invalid_argument("oneDNN Runner::set_constant_weights: w is null");
  if (st.empty)
    return Status::ok();
  try {
    const memory::desc& to = st.pw ? st.pw_md : st.w_md;
    memory c(to, st.engine);
    if (st.pw) {
      memory wm(st.w_md, st.engine, const_cast<void*>(w));
      st.rw.execute(st.stream, wm, c);
      st.stream.wait();
    } else {
      std::memcpy(c.get_data_handle(), w, st.w_md.get_size());
    }
    st.cw = c;
  } catch (const dnnl::error& e) {
    return internal_error(std::string("oneDNN weight reorder failed: ") + e.what());
  }
  return Status::ok();
}

Status Runner::run(const Tensors& t) const {
  if (!state_)
    return invalid_argument("oneDNN Runner is empty (default-constructed or moved from)");
  const State& st = *state_;
  if (st.empty)
    return Status::ok();
  const bool constant_w = st.has_weights && t.w == nullptr && st.cw;
  if (t.x == nullptr || t.y == nullptr || (st.has_weights && t.w == nullptr && !constant_w) ||
      (st.residual && t.z == nullptr))
    return invalid_argument("oneDNN Runner::run: x, y (w for conv ops without constant weights, z with a residual) "
                            "must not be null");
  const auto mut = [](const void* v) { return const_cast<void*>(v); };
  try {
    memory xm(st.x_md, st.engine, mut(t.x));
    memory ym(st.y_md, st.engine, t.y);
    memory src = xm, dst = ym;
    if (st.px) {
      st.rx.execute(st.stream, xm, st.px);
      src = st.px;
    }
    if (st.py)
      dst = st.py;
    if (st.residual) {
      // oneDNN's sum post-op accumulates onto what dst holds: put z there.
      if (st.py) {
        memory zm(st.y_md, st.engine, mut(t.z));
        st.rz.execute(st.stream, zm, st.py);
      } else if (t.z != t.y) {
        std::memmove(t.y, t.z, static_cast<size_t>(st.problem.tensor(TensorId::kY).bytes()));
      }
    }
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
    if (st.has_weights) {
      if (constant_w) {
        args.emplace(DNNL_ARG_WEIGHTS, st.cw);
      } else {
        memory wm(st.w_md, st.engine, mut(t.w));
        if (st.pw) {
          st.rw.execute(st.stream, wm, st.pw);
          wm = st.pw;
        }
        args.emplace(DNNL_ARG_WEIGHTS, wm);
      }
      memory bm(st.b_md, st.engine, mut(t.bias != nullptr ? t.bias : st.zero_bias.data()));
      if (st.bias_post_op < 0)
        args.emplace(DNNL_ARG_BIAS, bm);
      else
        args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(st.bias_post_op) | DNNL_ARG_SRC_1, bm);
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
