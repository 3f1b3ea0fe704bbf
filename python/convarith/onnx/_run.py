"""--run and --bench: every conv and pooling node through convarith on the node's real input, captured from
ONNX Runtime running the whole model, compared with ONNX Runtime's own output of that node; and each node
timed on both (ONNX Runtime on a one-node model of it)."""

import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import convarith

from ._graph import Graph

_EPS = 2.0 ** -24  # fp32 unit roundoff
_UPGRADE_OPSET = 13


def _ort():
    try:
        import onnxruntime
    except ImportError:
        raise SystemExit("--run and --bench need ONNX Runtime: pip install onnxruntime") from None
    return onnxruntime


def random_inputs(g, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for i in g.inputs:
        et = i.type.tensor_type.elem_type
        if et != TensorProto.FLOAT:
            raise ValueError(f"input {i.name!r} is {TensorProto.DataType.Name(et)}: only float inputs are generated")
        out[i.name] = rng.standard_normal(g.input_shapes[i.name]).astype(np.float32)
    return out


def capture(g, model, checks, inputs, notes=None):
    """Runs `model` (g's model, perhaps with generated weights) in ONNX Runtime with every tensor a checked node
    reads or writes added as a graph output; returns name -> array. Graph optimizations are off, so that each
    captured output is the node's own."""
    ort = _ort()
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    inits = {t.name for t in m.graph.initializer}
    wanted = []
    for c in checks:
        node = g.nodes[c.index]
        for name in list(node.input[:3]) + [node.output[0]]:
            if name and name not in have and name not in inits and name not in g.input_shapes:
                wanted.append(name)
                have.add(name)
    for name in wanted:
        m.graph.output.append(helper.make_tensor_value_info(name, g.elem_types.get(name, TensorProto.FLOAT), None))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # ONNX Runtime dropped some old opsets' kernels: convert the model up and retry
        if "NOT_IMPLEMENTED" not in str(e):
            raise
        from onnx import version_converter
        m = version_converter.convert_version(m, _UPGRADE_OPSET)
        sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        if notes is not None:
            notes.append(f"ONNX Runtime has no kernel for a node at the model's opset; ran it converted to opset "
                         f"{_UPGRADE_OPSET} (onnx.version_converter; the tensors keep their names)")
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(names, inputs)))
    values.update(inputs)
    return values


def _array(name, values, model_inits):
    if not name:
        return None
    if name in values:
        return values[name]
    if name in model_inits:
        return numpy_helper.to_array(model_inits[name])
    return None


def node_arrays(g, model, c, values):
    inits = {t.name: t for t in model.graph.initializer}
    node = g.nodes[c.index]
    x = _array(node.input[0], values, inits)
    w = b = None
    if c.op in ("conv", "conv_transpose"):
        w = _array(node.input[1], values, inits)
        b = _array(node.input[2], values, inits) if len(node.input) > 2 else None
    return x, w, b, values.get(node.output[0])


def _plan(c, x, w, b):
    return convarith.Plan(c.op, x, w, bias=b, **c.attrs)


def _terms(c, x):
    """Products summed per output element: C/group * prod(kernel) (conv), C * prod(kernel) / group per output
    channel (transposed: at most), the window size (pooling)."""
    k = c.attrs.get("kernel_shape") or (list(c.w_shape[2:]) if c.w_shape is not None else list(x.shape[2:]))
    n = int(np.prod(k))
    if c.op == "conv":
        return n * int(c.w_shape[1])
    if c.op == "conv_transpose":
        return n * int(c.w_shape[0]) // max(int(c.attrs.get("group", 1)), 1)
    return n


def run_nodes(g, model, checks, values):
    """Per checked node: convarith's output on the captured input and weights against ONNX Runtime's.

    The bound is the worst-case fp32 error of a sum of n products, twice (two implementations):
    |ours - ort| <= 2 (n + 1) 2^-24 (sum |x w| + |bias|) per element, with sum |x w| computed by convarith
    itself from |x| and |w| (pooling: the window's |x|). Max pooling is exact."""
    rows = []
    for c in checks:
        row = {"index": c.index, "name": c.name, "op_type": c.op_type}
        if c.info is None or c.unsupported:
            reason = c.error or ("attributes convarith does not model: " + ", ".join(c.unsupported)
                                 if c.unsupported else "shape unknown")
            row.update(status="SKIP", reason=reason)
            rows.append(row)
            continue
        x, w, b, ref = node_arrays(g, model, c, values)
        if x is None or ref is None or (c.op in ("conv", "conv_transpose") and w is None):
            row.update(status="SKIP", reason="input or output not captured")
            rows.append(row)
            continue
        if x.dtype != np.float32 or (w is not None and w.dtype != np.float32):
            row.update(status="SKIP", reason=f"dtype {x.dtype}")
            rows.append(row)
            continue
        try:
            plan = _plan(c, x, w, b)
            ours = plan.run(x, w, b)
        except (ValueError, TypeError) as e:
            row.update(status="FAIL", reason=str(e))
            rows.append(row)
            continue
        diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
        if c.op == "max_pool":
            tol = np.zeros_like(diff)
        else:
            scale = plan.run(np.abs(x), None if w is None else np.abs(w), None if b is None else np.abs(b))
            tol = 2.0 * (_terms(c, x) + 1) * _EPS * scale.astype(np.float64)
        finite = np.isfinite(ref)
        same_nonfinite = bool(np.array_equal(np.isnan(ours), np.isnan(ref)))
        err = float(diff[finite].max()) if finite.any() else 0.0
        worst = float((diff[finite] / np.maximum(tol[finite], 1e-300)).max()) if finite.any() and c.op != "max_pool" \
            else (0.0 if err == 0 else float("inf"))
        ok = same_nonfinite and bool(np.all(diff[finite] <= tol[finite]))
        row.update(status="PASS" if ok else "FAIL", algorithm=plan.algorithm, max_abs_error=err,
                   max_abs_ort=float(np.abs(ref[finite]).max()) if finite.any() else 0.0,
                   error_over_bound=worst, shape=list(ref.shape))
        rows.append(row)
    return rows


def _median_time(fn, repeat, budget_s):
    fn()  # warm up (first-run allocations, plan caches)
    times = []
    t_end = time.perf_counter() + budget_s
    while len(times) < max(repeat, 1) and (len(times) < min(repeat, 3) or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), len(times)


def one_node_model(op_type, attributes, x_shape, w=None, b=None, opset_imports=None, ir_version=None, name="node"):
    """A model of one float node y = op_type(x[, w[, b]]): x the graph's input (shape x_shape), w and b
    initializers (NumPy arrays, or None), y the output. attributes: AttributeProtos (copied) or a dict of
    name -> value (helper.make_node's keywords). Used by --bench and by bench/ort_peer.py."""
    inits = []
    ins = ["x"]
    for arg, a in (("w", w), ("b", b)):
        if a is not None:
            inits.append(numpy_helper.from_array(a, arg))
            ins.append(arg)
    if isinstance(attributes, dict):
        n = helper.make_node(op_type, ins, ["y"], name=name, **attributes)
    else:
        n = helper.make_node(op_type, ins, ["y"], name=name)
        n.attribute.extend(attributes)
    graph = helper.make_graph([n], "one_node", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    kw = {} if ir_version is None else {"ir_version": ir_version}
    return helper.make_model(graph, opset_imports=opset_imports, **kw)


def _one_node_model(g, model, node, x, w, b):
    opsets = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    return one_node_model(node.op_type, node.attribute, x.shape, w, b, opsets, model.ir_version, node.name or "node")


def bench_nodes(g, model, checks, values, repeat=10, budget_s=0.5):
    """Median time per node on convarith (a Plan made once, run into a reused output) and on ONNX Runtime's
    CPU provider (a one-node model of the node, default optimizations and threads)."""
    ort = _ort()
    rows = []
    for c in checks:
        row = {"index": c.index, "name": c.name, "op_type": c.op_type}
        x, w, b, _ = node_arrays(g, model, c, values) if c.info is not None else (None,) * 4
        if x is None or c.unsupported or (c.op in ("conv", "conv_transpose") and w is None):
            row["status"] = "SKIP"
            rows.append(row)
            continue
        plan = _plan(c, x, w, b)
        y = plan.empty_output(x)
        t_ours, n_ours = _median_time(lambda: plan.run(x, w, b, out=y), repeat, budget_s)
        so = ort.SessionOptions()
        so.log_severity_level = 3
        sess = ort.InferenceSession(_one_node_model(g, model, g.nodes[c.index], x, w, b).SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
        feed = {"x": x}
        t_ort, n_ort = _median_time(lambda: sess.run(None, feed), repeat, budget_s)
        row.update(status="OK", algorithm=plan.algorithm, convarith_ms=t_ours * 1e3, ort_ms=t_ort * 1e3,
                   runs=[n_ours, n_ort], gflop=c.info.flops / 1e9)
        rows.append(row)
    return rows


def prepare_run(g, seed=0, keep_stripped=False):
    """(model to run, notes): the model with stripped weights replaced by deterministic ones unless
    keep_stripped."""
    notes = []
    stripped = g.stripped_weights()
    if stripped and not keep_stripped:
        model = g.with_weights(seed)
        params = sum(int(np.prod(s)) for s, _ in stripped.values())
        notes.append(f"--run/--bench: {len(stripped)} stripped weight tensors ({params} values) replaced by "
                     f"deterministic random initializers (seed {seed}); --keep-stripped runs the constants")
    else:
        model = g.model
    return model, notes


__all__ = ["Graph", "random_inputs", "capture", "run_nodes", "bench_nodes", "prepare_run", "one_node_model"]
