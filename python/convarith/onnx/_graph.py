"""An ONNX graph as convarith sees it: constants, shapes (ONNX's shape inference, and convarith's own
arithmetic and a few pass-through rules where inference leaves gaps), and the attributes of the
convolution and pooling nodes translated into convarith's arguments.

Sizes of Conv, ConvTranspose and pooling nodes always come from convarith (the library's arithmetic);
the rules here only carry shapes through element-wise nodes, broadcasts, Concat and resizes.
"""

import zlib

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

import convarith

CONV_OPS = ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
_OP = {"Conv": "conv", "ConvTranspose": "conv_transpose", "MaxPool": "max_pool", "AveragePool": "avg_pool",
       "GlobalAveragePool": "avg_pool", "GlobalMaxPool": "max_pool"}
# The ONNX attributes convarith takes, by op; anything else on a node is reported as unsupported.
_ATTRS = {
    "conv": {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"},
    "conv_transpose": {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad", "output_padding",
                       "output_shape"},
    "max_pool": {"kernel_shape", "strides", "pads", "dilations", "auto_pad", "ceil_mode"},
    "avg_pool": {"kernel_shape", "strides", "pads", "dilations", "auto_pad", "ceil_mode", "count_include_pad"},
}

# Nodes whose first output has the shape of their first input.
_SAME_SHAPE = {
    "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Celu", "HardSigmoid", "HardSwish", "Clip", "Softplus",
    "Softsign", "Mish", "Gelu", "Erf", "Identity", "Dropout", "LRN", "BatchNormalization", "InstanceNormalization",
    "LayerNormalization", "GroupNormalization", "MeanVarianceNormalization", "LpNormalization", "Softmax",
    "LogSoftmax", "Hardmax", "Cast", "Neg", "Abs", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil", "Round",
    "Sign", "Not", "IsNaN", "IsInf", "ThresholdedRelu", "Shrink", "PRelu",
}
# Element-wise nodes over broadcast inputs: where two branches of the network meet.
_BROADCAST = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "And", "Or", "Xor", "Equal",
              "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Where", "Mod"}
AXIS_NAMES = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}


def attributes(node):
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else (list(v) if isinstance(v, (list, tuple)) else v)
    return out


def node_name(node, index):
    return node.name or (node.output[0] if node.output else f"node{index}")


def convarith_args(node, x_shape):
    """(op, attrs, unsupported) for convarith.shape / suggest / Plan from an ONNX conv or pooling node.

    attrs are ONNX-named; unsupported lists the node's attributes convarith does not model (or values it
    does not take), which make its numbers untrustworthy for this node."""
    a = attributes(node)
    op = _OP[node.op_type]
    if node.op_type.startswith("Global"):
        return op, {"kernel_shape": list(x_shape[2:])}, []
    keep = _ATTRS[op]
    attrs = {k: v for k, v in a.items() if k in keep}
    unsupported = sorted(k for k in a if k not in keep and not (k == "storage_order" and a[k] == 0))
    if attrs.get("auto_pad") == "NOTSET":
        del attrs["auto_pad"]
    if "output_shape" in attrs and len(attrs["output_shape"]) == len(x_shape):
        attrs["output_shape"] = attrs["output_shape"][2:]  # some exporters give N and C too
    if op in ("max_pool", "avg_pool"):
        for k in ("ceil_mode", "count_include_pad"):
            if k in attrs:
                attrs[k] = bool(attrs[k])
    return op, attrs, unsupported


def _stable_seed(name, seed):
    return (zlib.crc32(name.encode()) ^ (seed * 0x9E3779B1)) & 0xFFFFFFFF


class Graph:
    """A loaded model: its real inputs (not initializers) with their shapes, constants, inferred shapes."""

    def __init__(self, model, input_shapes=None):
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            self.path = str(model)
            model = onnx.load(self.path)
        else:
            self.path = None
        self.model = model
        g = model.graph
        self.initializers = {t.name: t for t in g.initializer}
        self.nodes = list(g.node)
        self.inputs = [i for i in g.input if i.name not in self.initializers]
        self._const = {}
        self.constant_nodes = {n.output[0]: n for n in self.nodes if n.op_type == "Constant" and n.output}
        given = dict(input_shapes or {})
        unknown = set(given) - {i.name for i in self.inputs}
        if unknown:
            names = ", ".join(i.name for i in self.inputs)
            raise ValueError(f"--input-shape names {', '.join(sorted(unknown))}, not an input of the model "
                             f"(inputs: {names})")
        self.input_shapes = {}
        for i in self.inputs:
            dims = i.type.tensor_type.shape.dim
            if i.name in given:
                shape = tuple(int(d) for d in given[i.name])
                # Write the override into the model so that ONNX's inference and ONNX Runtime see it too.
                t = i.type.tensor_type
                del t.shape.dim[:]
                for d in shape:
                    t.shape.dim.add().dim_value = d
            else:
                if any(not d.HasField("dim_value") for d in dims):
                    sym = [d.dim_param or "?" for d in dims]
                    raise ValueError(f"input {i.name!r} has symbolic dims {sym}: give them with "
                                     f"--input-shape {i.name}=N,C,H,W")
                shape = tuple(d.dim_value for d in dims)
            self.input_shapes[i.name] = shape
        self.inferred, self.elem_types, self.inference_error = self._infer()

    def _infer(self):
        try:
            m = shape_inference.infer_shapes(self.model, strict_mode=False)
        except Exception as e:  # inference gives up on some graphs: convarith's own rules still apply
            return {}, {}, f"{type(e).__name__}: {e}"
        shapes, types = {}, {}
        g = m.graph
        for v in list(g.value_info) + list(g.output) + list(g.input):
            t = v.type.tensor_type
            types[v.name] = t.elem_type
            if t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim):
                shapes[v.name] = tuple(d.dim_value for d in t.shape.dim)
        return shapes, types, None

    # ---- constants ----------------------------------------------------------------------------------

    def is_constant(self, name):
        return name in self.initializers or name in self.constant_nodes

    def constant(self, name):
        """The value of an initializer or a Constant node's output (NumPy), else None."""
        if name in self._const:
            return self._const[name]
        v = None
        if name in self.initializers:
            v = numpy_helper.to_array(self.initializers[name])
        elif name in self.constant_nodes:
            a = attributes(self.constant_nodes[name])
            if "value" in a:
                v = numpy_helper.to_array(a["value"])
            elif "value_ints" in a:
                v = np.array(a["value_ints"], dtype=np.int64)
            elif "value_floats" in a:
                v = np.array(a["value_floats"], dtype=np.float32)
        self._const[name] = v
        return v

    def stripped_weights(self):
        """ConstantOfShape nodes with a constant shape: the form the onnx wheel's 'light' models use for
        weights removed from the real model. name -> (shape, fill value)."""
        out = {}
        for n in self.nodes:
            if n.op_type == "ConstantOfShape" and n.input and self.is_constant(n.input[0]):
                shape = self.constant(n.input[0])
                a = attributes(n)
                value = float(numpy_helper.to_array(a["value"]).ravel()[0]) if "value" in a else 0.0
                out[n.output[0]] = (tuple(int(d) for d in np.asarray(shape).ravel()), value)
        return out

    def consumers(self):
        c = {}
        for n in self.nodes:
            for j, name in enumerate(n.input):
                c.setdefault(name, []).append((n, j))
        return c

    def with_weights(self, seed=0):
        """A copy of the model whose stripped weights (see stripped_weights) are deterministic random
        initializers: He-normal for Conv/ConvTranspose/Gemm/MatMul weights, O(1) positive values where a
        scale or variance is expected, small normals for biases and shifts. Seeded by the tensor's name."""
        stripped = self.stripped_weights()
        if not stripped:
            return self.model
        consumers = self.consumers()
        m = onnx.ModelProto()
        m.CopyFrom(self.model)
        keep = [n for n in m.graph.node if not (n.op_type == "ConstantOfShape" and n.output[0] in stripped)]
        del m.graph.node[:]
        m.graph.node.extend(keep)
        for name, (shape, _) in stripped.items():
            rng = np.random.default_rng(_stable_seed(name, seed))
            uses = consumers.get(name, [])
            if any(n.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul") and j == 1 for n, j in uses):
                fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
                v = rng.standard_normal(shape) * np.sqrt(2.0 / max(fan_in, 1))
            elif any((n.op_type == "BatchNormalization" and j in (1, 4)) or n.op_type in ("Mul", "Div")
                     for n, j in uses):
                v = rng.uniform(0.5, 1.5, shape)
            else:
                v = 0.1 * rng.standard_normal(shape)
            m.graph.initializer.append(numpy_helper.from_array(v.astype(np.float32), name))
        return m


# ---- shape rules ------------------------------------------------------------------------------------


def broadcast(shapes):
    """NumPy broadcasting of several shapes: (shape, None) or (None, description of the conflict)."""
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out = []
    for axis in range(rank):
        dims = {p[axis] for p in padded} - {1}
        if len(dims) > 1:
            return None, f"axis {axis}: sizes {sorted(dims)} do not broadcast"
        out.append(dims.pop() if dims else 1)
    return tuple(out), None


def _resize(g, node, x, shapes):
    """Upsample / Resize with constant scales or sizes."""
    a = attributes(node)
    if node.op_type == "Upsample" and "scales" in a:
        scales = a["scales"]
    else:
        idx_scales, idx_sizes = (1, None) if node.op_type == "Upsample" else (2, 3)
        sizes = None
        if idx_sizes is not None and len(node.input) > idx_sizes and node.input[idx_sizes]:
            sizes = g.constant(node.input[idx_sizes])
        if sizes is not None and sizes.size:
            return tuple(int(v) for v in sizes)
        scales = g.constant(node.input[idx_scales]) if len(node.input) > idx_scales and node.input[idx_scales] \
            else None
        if scales is None or not np.size(scales):
            return None
        scales = list(np.asarray(scales).ravel())
    if len(scales) != len(x):
        return None
    return tuple(int(np.floor(d * float(s))) for d, s in zip(x, scales))


def rule(g, node, ins):
    """Output shapes of a node that is not a conv or pooling node, from its input shapes (None: unknown),
    and a conflict message when its inputs disagree (a broadcast or Concat that cannot be formed)."""
    op = node.op_type
    n_out = len(node.output)
    if op in _SAME_SHAPE:
        return ([ins[0]] * n_out if ins and ins[0] is not None else None), None
    if op in _BROADCAST:
        known = [s for s in ins if s is not None]
        if len(known) < len(ins) or not known:
            return None, None
        shape, conflict = broadcast(known)
        return ([shape] if shape is not None else None), conflict
    if op == "Concat":
        if not ins or any(s is None for s in ins):
            return None, None
        rank = len(ins[0])
        axis = attributes(node).get("axis", 1)
        axis = axis + rank if axis < 0 else axis
        if any(len(s) != rank for s in ins):
            return None, f"ranks {[len(s) for s in ins]} differ"
        for j in range(rank):
            if j != axis and len({s[j] for s in ins}) > 1:
                return None, f"axis {j}: sizes {[s[j] for s in ins]} differ (Concat along axis {axis})"
        out = list(ins[0])
        out[axis] = sum(s[axis] for s in ins)
        return [tuple(out)], None
    if op in ("Upsample", "Resize") and ins and ins[0] is not None:
        r = _resize(g, node, ins[0], ins)
        return ([r] if r is not None else None), None
    if op == "ConstantOfShape" and node.input and g.is_constant(node.input[0]):
        return [tuple(int(d) for d in np.asarray(g.constant(node.input[0])).ravel())], None
    if op == "Constant":
        v = g.constant(node.output[0])
        return ([tuple(v.shape)] if v is not None else None), None
    return None, None


def conv_node(node, ins):
    """convarith's view of a conv or pooling node given its input shapes: (op, attrs, unsupported, info,
    error). info is convarith.shape's ShapeInfo, error its ValueError message."""
    x = ins[0] if ins else None
    if x is None:
        return None, {}, [], None, None
    op, attrs, unsupported = convarith_args(node, x)
    w = ins[1] if op in ("conv", "conv_transpose") and len(ins) > 1 else None
    if op in ("conv", "conv_transpose") and w is None:
        return op, attrs, unsupported, None, None
    try:
        return op, attrs, unsupported, convarith.shape(op, x, w, **attrs), None
    except ValueError as e:
        return op, attrs, unsupported, None, str(e)
    except TypeError as e:
        return op, attrs, unsupported + [f"({e})"], None, None


def dependents(g, name):
    """Every tensor computed from `name` (it included)."""
    dep = {name}
    for n in g.nodes:
        if any(i in dep for i in n.input):
            dep.update(o for o in n.output if o)
    return dep
