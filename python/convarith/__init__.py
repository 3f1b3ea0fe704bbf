"""convarith from Python: the convolution arithmetic of Dumoulin & Visin, and plans that run convolutions,
transposed convolutions and pooling on the CPU, the emulated device (the CUDA kernels' code run on the
CPU) or CUDA (when built with CONVARITH_PY_CUDA=1).

    import numpy as np, convarith
    print(convarith.shape("conv", (1, 3, 224, 224), (64, 3, 7, 7), strides=(2, 2), pads=(3, 3, 3, 3)))
    x = np.random.rand(1, 3, 32, 32).astype(np.float32)
    w = np.random.rand(8, 3, 3, 3).astype(np.float32)
    y = convarith.conv(x, w, stride=2, padding=1)          # PyTorch's argument names
    plan = convarith.Plan("conv", x, w, strides=(2, 2), pads=(1, 1, 1, 1))   # ONNX's; made once
    y = plan.run(x, w)                                       # run many times, zero-copy

Errors: ValueError (an invalid layer or argument; the library's message names the field and the
numbers), TypeError (a wrong Python type or array dtype), NotSupportedError (a ValueError: valid, but
the chosen device or algorithm cannot run it), DeviceError (a RuntimeError from CUDA).
"""

from collections import OrderedDict
from dataclasses import dataclass
import os
import threading
import warnings

import numpy as np

from . import _convarith as _core
from ._attributes import onnx_attributes as _onnx_attributes, op_name as _op_name, shape_of as _shape_of, ints as _ints

NotSupportedError = _core.NotSupportedError
DeviceError = _core.DeviceError
__version__ = _core.__version__

__all__ = [
    "shape", "ShapeInfo", "AxisRelationship", "suggest", "AxisFix", "Plan", "conv", "conv_transpose", "max_pool", "avg_pool",
    "algorithms", "cuda_device_count", "NotSupportedError", "DeviceError", "__version__",
]


def algorithms(device=None):
    """The rows of the algorithm table (dicts: name, device, ops, dtypes, layouts, ...), optionally of one device."""
    return _core.algorithms(device)


def cuda_device_count():
    """Usable CUDA devices (0 in a build without CUDA)."""
    return _core.cuda_device_count()


# ---- the arithmetic ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisRelationship:
    axis: int
    relationship: int  # the paper's relationship number; 0: outside the paper, the general formula
    name: str
    formula: str  # with the numbers filled in, ending in "= o"


@dataclass(frozen=True)
class ShapeInfo:
    op: str
    x_shape: tuple
    output_shape: tuple
    weight_shape: tuple  # () for pooling
    group: int
    auto_pad: str
    pads: tuple  # begins..., ends... (resolved)
    output_padding: tuple
    axes: tuple  # AxisRelationship per spatial axis
    flops: float
    min_bytes: int

    def __str__(self):
        def x(v):
            return "x".join(str(d) for d in v)

        r = len(self.axes)
        lines = [f"{self.op}: x {x(self.x_shape)} -> y {x(self.output_shape)}"]
        if self.weight_shape:
            lines.append(f"  weight   {x(self.weight_shape)}   group {self.group}")
        lines.append(f"  pads     begins {list(self.pads[:r])}, ends {list(self.pads[r:])} (auto_pad {self.auto_pad})")
        if self.op == "conv_transpose":
            lines.append(f"  output_padding {list(self.output_padding)}")
        for a in self.axes:
            lines.append(f"  axis {a.axis}   {a.name}: {a.formula}")
        lines.append(f"  flops {self.flops:.0f}, min bytes {self.min_bytes}")
        return "\n".join(lines)


def _shape_info(p):
    return ShapeInfo(
        op=p.op, x_shape=tuple(p.x_shape), output_shape=tuple(p.y_shape), weight_shape=tuple(p.w_shape),
        group=p.groups, auto_pad=p.auto_pad, pads=tuple(p.pads), output_padding=tuple(p.output_padding),
        axes=tuple(AxisRelationship(j, rel, name, formula) for j, (rel, name, formula) in enumerate(p.axes)),
        flops=p.flops, min_bytes=p.min_bytes)


def _problem(op, x_shape, w_shape, attrs, **formats):
    op = _op_name(op)
    x_shape = _shape_of("x_shape", x_shape)
    w_shape = None if w_shape is None else _shape_of("w_shape", w_shape)
    kw = _onnx_attributes(op, len(x_shape) - 2, attrs)
    return _core.make_problem(op, x_shape, w_shape, **kw, **formats)


def shape(op, x_shape, w_shape=None, **onnx_attributes):
    """The output shape of a layer and, per spatial axis, the paper's relationship with its numbers.

    op: conv, conv_transpose, max_pool, avg_pool (or ONNX's Conv, ConvTranspose, MaxPool, AveragePool).
    x_shape: N, C, spatial... ; w_shape: K, C/group, kernel... (conv) or C, K/group, kernel... (transposed).
    Attributes by their ONNX names (kernel_shape, strides, pads, dilations, group, auto_pad, output_padding,
    output_shape, ceil_mode, count_include_pad; plus out_channels) or PyTorch's (kernel_size, stride,
    padding, dilation, groups). An invalid layer raises ValueError with the library's message.
    """
    return _shape_info(_problem(op, x_shape, w_shape, onnx_attributes))


@dataclass(frozen=True)
class AxisFix:
    """What would make one spatial axis valid: the library's nearest changes (each checked, each minimal)."""
    axis: int
    valid: bool
    output: int  # the axis's output size when valid
    reason: str  # the library's message when not
    shortfall: int  # conv/pool: effective kernel minus padded input when the kernel does not fit
    min_input: int  # the smallest input size valid with every other attribute as given (0: none is)
    max_kernel: int  # conv/pool: the largest kernel that fits (0: none or not applicable)
    max_dilation: int
    padding: tuple  # (begin, end): the nearest valid padding, or None
    output_padding_range: tuple  # conv_transpose: (0, max(s, d) - 1), or None
    output_shape_range: tuple  # conv_transpose: the output sizes ONNX's output_shape can reach, or None
    changes: tuple  # each change in words with its numbers, nearest first


def suggest(op, x_shape, w_shape=None, **onnx_attributes):
    """Per spatial axis, an AxisFix: for an invalid layer the nearest changes that make it valid (the padding
    needed, the smallest input, the largest kernel or dilation, the legal output_padding range, the reachable
    output_shape values), computed by the library (the same ones `convarith shape` prints after an error).
    Same arguments as shape(); never raises for an invalid geometry, only for malformed arguments."""
    op = _op_name(op)
    x_shape = _shape_of("x_shape", x_shape)
    w_shape = None if w_shape is None else _shape_of("w_shape", w_shape)
    kw = _onnx_attributes(op, len(x_shape) - 2, onnx_attributes)
    return tuple(AxisFix(axis=j, **{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})
                 for j, d in enumerate(_core.suggest(op, x_shape, w_shape, **kw)))


# ---- arrays ----------------------------------------------------------------------------------------------

_DTYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}  # also accepted as Plan(dtype=...)
_SLOTS = {"x": 0, "w": 1, "bias": 2, "z": 3, "out": 4}


def _is_bf16_numpy(a):
    return isinstance(a, np.ndarray) and a.dtype.name == "bfloat16"


def _native(name, a):
    """(array to hand to the core, whether it is a uint16 view of an ml_dtypes bfloat16 array)."""
    if a is None:
        return None, False
    if isinstance(a, np.ndarray):
        if a.dtype.name == "bfloat16":
            return a.view(np.uint16), True
        if a.dtype == np.uint16:
            raise TypeError(f"{name}: dtype uint16 is not a convarith dtype (f32, f16, or bf16 as ml_dtypes.bfloat16)")
        if name == "out" and not a.flags.writeable:
            raise ValueError("out: the array is read-only")
    return a, False


def _info(name, a):
    """dtype name ('f32'...), shape, element strides, device of an array (NumPy or any DLPack producer)."""
    if _is_bf16_numpy(a):
        _, shape, strides, dev, _ = _core.array_info(a.view(np.uint16))
        return "bf16", shape, strides, dev
    if isinstance(a, np.ndarray) and a.dtype == np.uint16:
        raise TypeError(f"{name}: dtype uint16 is not a convarith dtype")
    dtype, shape, strides, dev, _ = _core.array_info(a)
    dt = {"float32": "f32", "float16": "f16", "bfloat16": "bf16"}.get(dtype)
    if dt is None:
        raise TypeError(f"{name}: dtype {dtype} is not a convarith dtype (float32, float16, bfloat16)")
    return dt, shape, strides, dev


def _dense_strides(shape, order):
    strides = [0] * len(shape)
    step = 1
    for d in reversed(order):
        strides[d] = step
        step *= shape[d]
    return strides


def _layout(name, shape, strides):
    """NCHW when the strides are C-order in logical order, NHWC when they are C-order in N, spatial..., C
    order (dims of size 1 may have any stride); otherwise ValueError with both expected strides."""
    n = len(shape)
    if n < 3:
        raise ValueError(f"{name}: shape {tuple(shape)} has {n} dims; expected N, C and 1 to 3 spatial dims")
    if 0 in shape:
        return "NCHW"  # an empty array has no layout; the plan checks no strides for it
    nchw = _dense_strides(shape, list(range(n)))
    nhwc = _dense_strides(shape, [0] + list(range(2, n)) + [1])

    def same(a, b):
        return all(s == 1 or x == y for s, x, y in zip(shape, a, b))

    if same(strides, nchw):
        return "NCHW"
    if same(strides, nhwc):
        return "NHWC"
    raise ValueError(f"{name}: strides {tuple(strides)} (in elements) are neither dense NCHW {tuple(nchw)} nor "
                     f"dense channels-last {tuple(nhwc)}; copy it with np.ascontiguousarray first")


def _logical_view(physical, layout):
    """A C-order array in memory order -> its view in logical (N, C, spatial...) order."""
    if layout == "NCHW":
        return physical
    n = physical.ndim
    # physical: N, spatial..., C ; logical dim 1 (C) is physical dim n-1.
    return physical.transpose([0, n - 1] + list(range(1, n - 1)))


def _numpy_dtype(dt):
    if dt == "f32":
        return np.float32
    if dt == "f16":
        return np.float16
    try:
        import ml_dtypes
    except ImportError:
        raise TypeError("a bf16 output needs the ml_dtypes package (pip install ml_dtypes), or pass out=") from None
    return ml_dtypes.bfloat16


# ---- plans -------------------------------------------------------------------------------------------------


class Plan:
    """A prepared layer: made once, run many times.

    Plan(op, x, w=None, *, bias=None, z=None, out=None, device="cpu", algorithm="auto", dtype=None,
         layout=None, w_layout=None, math="strict", activation=None, alpha=1, beta=0, leaky_alpha=0.01,
         clip_min=0, clip_max=6, tune_cache=None, constant_weights=False, **attributes)

    x, w, bias, z, out: arrays (their dtype and layout are read: an NCHW-shaped array with NHWC strides is
    channels last) or shapes (then dtype= and layout= say, default f32 and NCHW). bias, z and out are only
    read for their dtype here. The epilogue is y = activation(alpha * op(x, w) + bias + beta * z).
    Attributes: ONNX or PyTorch names, as for shape(). device: "cpu", "emulated" (the CUDA kernels run by
    the CPU kernel executor: slow, for checking) or "cuda" (a CUDA build only).
    algorithm: "auto" (the cheapest row by its cost estimate), a row name, or "tune": time every row that takes
    the layer on the device (on scratch buffers of its own, never x/w/out; a few runs each) and keep the fastest,
    remembered for the process and, with tune_cache="FILE", in that file (keyed by the layer, the device, the
    driver and convarith's version). A stale or corrupt cache file or a failed write is a RuntimeWarning (and in
    .warnings), never an error. .tuned, .tuning (what was measured or found) and .auto_algorithm say what
    happened.
    constant_weights=True (w an array): the weights of an inference layer, which never change. The plan reads w
    here only and keeps its own prepared form (the CPU rows: converted to f32 and packed, or Winograd-transformed,
    once); run(x) without w then uses it, with the same bits as a run handed w (a run given w uses that w).
    .constant_weight_bytes is the memory it holds.
    """

    def __init__(self, op, x, w=None, *, bias=None, z=None, out=None, device="cpu", algorithm="auto", dtype=None,
                 layout=None, w_layout=None, math="strict", activation=None, alpha=1.0, beta=0.0, leaky_alpha=0.01,
                 clip_min=0.0, clip_max=6.0, tune_cache=None, constant_weights=False, **attributes):
        if tune_cache is not None and algorithm != "tune":
            raise ValueError(f"tune_cache is for algorithm='tune' (the algorithm is {algorithm!r})")
        if constant_weights and (w is None or isinstance(w, (tuple, list))):
            raise ValueError("constant_weights=True needs the weights w as an array (the plan keeps their prepared "
                             "form), not " + ("None" if w is None else f"the shape {tuple(w)}"))
        formats = {}
        x_shape, x_dtype, x_layout = self._template("x", x)
        dt = dtype if dtype is not None else (x_dtype or "f32")
        if not isinstance(dt, str):
            dt = np.dtype(dt).name  # np.float16, ml_dtypes.bfloat16, ...
        formats["dtype"] = _DTYPES.get(dt, dt)
        lay = layout if layout is not None else (x_layout or "NCHW")
        formats["layout"] = lay
        w_shape = None
        if w is not None:
            w_shape, w_dt, w_lay = self._template("w", w)
            if w_dt is not None and w_dt != formats["dtype"]:
                formats["w_dtype"] = w_dt
            if w_layout is None and w_lay is not None:
                w_layout = w_lay
        if w_layout is not None:
            formats["w_layout"] = w_layout
        for name, key, a in (("bias", "bias_dtype", bias), ("z", "z_dtype", z), ("out", "y_dtype", out)):
            if a is not None and not isinstance(a, (bool, tuple, list)):
                a_dt = _info(name, a)[0]
                if a_dt != formats["dtype"]:
                    formats[key] = a_dt
        formats.update(math=math, activation=activation or "identity", alpha=float(alpha), beta=float(beta),
                       leaky_alpha=float(leaky_alpha), clip_min=float(clip_min), clip_max=float(clip_max))
        self._problem = _problem(op, x_shape, w_shape, attributes, **formats)
        native_w, w_bf16 = _native("w", w) if constant_weights else (None, False)
        self._plan = _core.Plan(self._problem, device, algorithm, os.fspath(tune_cache) if tune_cache else "",
                                native_w, w_bf16)
        self._y = self._problem.tensor("y")
        for message in self._plan.warnings:
            warnings.warn(f"convarith.Plan: {message}", RuntimeWarning, stacklevel=2)

    @staticmethod
    def _template(name, a):
        """(shape, dtype or None, layout or None) of an array or a shape."""
        if isinstance(a, (tuple, list)):
            return _ints(name, a), None, None
        dt, shape, strides, _ = _info(name, a)
        # Ambiguous strides (C = 1 or unit spatial dims) read as NCHW; the plan's checks ignore unit dims.
        return shape, dt, _layout(name, shape, strides)

    # -- facts
    @property
    def algorithm(self):
        return self._plan.algorithm

    @property
    def requested_algorithm(self):
        """What was asked for: "auto", "tune" or the row name."""
        return self._plan.requested_algorithm

    @property
    def auto_algorithm(self):
        """The row "auto" takes for this layer ("" for a plan made with an explicit row name)."""
        return self._plan.auto_algorithm

    @property
    def tuned(self):
        """True when the row was chosen by measurement (algorithm="tune")."""
        return self._plan.tuned

    @property
    def tuning(self):
        """What "tune" did: {"tuned", "source": "measured" | "memory" | "file", "median_us", "timings": [{"algorithm",
        "median_us", "reps", "error"}, ...]} (timings are empty on a cache hit)."""
        return self._plan.tuning

    @property
    def warnings(self):
        """create()'s warnings (a stale or corrupt tune cache, a failed cache write, ...); also issued as
        RuntimeWarning."""
        return list(self._plan.warnings)

    @property
    def device(self):
        return self._plan.device

    @property
    def deterministic(self):
        return self._plan.deterministic

    @property
    def workspace_bytes(self):
        return self._plan.workspace_bytes

    @property
    def constant_weights(self):
        """True when the plan was made with constant_weights=True: run() may leave w out."""
        return self._plan.has_constant_weights

    @property
    def constant_weight_bytes(self):
        """Memory the plan holds for its constant weights (0 without)."""
        return self._plan.constant_weight_bytes

    @property
    def output_shape(self):
        return tuple(self._problem.y_shape)

    @property
    def shape(self):
        """The layer's ShapeInfo (as convarith.shape returns it)."""
        return _shape_info(self._problem)

    @property
    def name(self):
        return self._problem.name

    def tensor(self, name):
        """The plan's format of one tensor (x, w, bias, z, y): dtype, layout, dims, strides, physical_dims."""
        return self._problem.tensor(name)

    def __repr__(self):
        return (f"convarith.Plan({self._problem.name}, device={self.device!r}, algorithm={self.algorithm!r}, "
                f"output_shape={self.output_shape})")

    # -- running
    def empty_output(self, like=None):
        """A new output array in the plan's y dtype and layout (NumPy; for CUDA, of x's library when it is
        PyTorch or CuPy)."""
        phys = tuple(self._y["physical_dims"])
        dt = self._y["dtype"]
        if self.device != "cuda":
            return _logical_view(np.empty(phys, dtype=_numpy_dtype(dt)), self._y["layout"])
        mod = type(like).__module__.split(".")[0] if like is not None else ""
        if mod == "torch":
            import torch
            tdt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[dt]
            y = torch.empty(phys, dtype=tdt, device=like.device)
            n = len(phys)
            return y if self._y["layout"] == "NCHW" else y.permute([0, n - 1] + list(range(1, n - 1)))
        if mod == "cupy":
            import cupy
            return _logical_view(cupy.empty(phys, dtype=_numpy_dtype(dt)), self._y["layout"])
        raise ValueError("a CUDA plan cannot allocate its output for this array type: pass out=")

    def _workspace(self, like):
        n = self.workspace_bytes
        if n == 0 or self.device != "cuda":
            return None  # the core allocates a host workspace itself
        mod = type(like).__module__.split(".")[0]
        if mod == "torch":
            import torch
            return torch.empty(n, dtype=torch.uint8, device=like.device)
        if mod == "cupy":
            import cupy
            return cupy.empty(n, dtype=cupy.uint8)
        raise ValueError(f"the plan needs a CUDA workspace of {n} bytes and cannot allocate one for "
                         f"{type(like).__name__} arrays")

    @staticmethod
    def _stream(stream, like):
        if stream is None:
            if type(like).__module__.split(".")[0] == "torch" and getattr(like, "is_cuda", False):
                import torch
                return torch.cuda.current_stream(like.device).cuda_stream
            return 0
        if isinstance(stream, int):
            return stream
        for attr in ("cuda_stream", "ptr"):
            if hasattr(stream, attr):
                return int(getattr(stream, attr))
        raise TypeError(f"stream: expected an int (cudaStream_t) or an object with .cuda_stream / .ptr, "
                        f"got {type(stream).__name__}")

    def run(self, x, w=None, bias=None, z=None, out=None, stream=None):
        """y = activation(alpha * op(x, w) + bias + beta * z) into `out` (allocated when None), returned.

        Every array must have the plan's dtype, logical shape and layout (checked; the error says what was
        expected). w may be None on a plan made with constant_weights=True (its own weights are used). Zero-copy; the GIL is released while the plan runs. On error nothing is written.
        """
        if out is None:
            out = self.empty_output(x)
        args = []
        mask = 0
        for name, a in (("x", x), ("w", w), ("bias", bias), ("z", z), ("out", out)):
            native, is_bf16 = _native(name, a)
            args.append(native)
            if is_bf16:
                mask |= 1 << _SLOTS[name]
        self._plan.run(*args, self._workspace(x), self._stream(stream, x) if self.device == "cuda" else 0, mask)
        return out

    __call__ = run


# ---- functional forms (PyTorch's argument names; ONNX's accepted too) -------------------------------------

_CACHE_SIZE = 64
_cache = OrderedDict()
_cache_lock = threading.Lock()


def _array_key(name, a):
    dt, shape, strides, dev = _info(name, a)
    return (dt, tuple(shape), _layout(name, shape, strides) if len(shape) >= 3 else None, dev)


def _freeze(v):
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(e) for e in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(e)) for k, e in v.items()))
    return v


def _cached_plan(op, x, w, bias, z, plan_kw, attrs):
    key = (op, _array_key("x", x), None if w is None else _array_key("w", w),
           None if bias is None else _array_key("bias", bias), None if z is None else _array_key("z", z),
           _freeze(plan_kw), _freeze(attrs))
    try:
        hash(key)
    except TypeError:
        key = None
    if key is not None:
        with _cache_lock:
            plan = _cache.get(key)
            if plan is not None:
                _cache.move_to_end(key)
                return plan
    plan = Plan(op, x, w, bias=bias, z=z, **plan_kw, **attrs)
    if key is not None:
        with _cache_lock:
            _cache[key] = plan
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return plan


_TORCH_DEFAULTS = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1}


def _merge(torch_kw, onnx_kw):
    """The PyTorch-named arguments plus the ONNX-named ones. A PyTorch argument at its default (which is
    ONNX's default too) is left out; one set to something else as well as its ONNX twin is a TypeError."""
    from ._attributes import TORCH_NAMES
    merged = dict(onnx_kw)
    for k, v in torch_kw.items():
        if v is None or (k in _TORCH_DEFAULTS and not isinstance(v, (list, tuple)) and v == _TORCH_DEFAULTS[k]):
            continue
        onnx = TORCH_NAMES.get(k, k)
        clash = onnx if onnx in onnx_kw else ("auto_pad" if onnx == "pads" and "auto_pad" in onnx_kw else None)
        if clash is not None:
            raise TypeError(f"{k}={v!r} and {clash}={onnx_kw[clash]!r} name the same attribute: give one")
        merged[k] = v
    return merged


def _epilogue_kw(activation, alpha, beta, leaky_alpha, clip_min, clip_max, device, algorithm, math):
    return dict(activation=activation, alpha=float(alpha), beta=float(beta), leaky_alpha=float(leaky_alpha),
                clip_min=float(clip_min), clip_max=float(clip_max), device=device, algorithm=algorithm, math=math)


def conv(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None, alpha=1.0, beta=0.0, z=None,
         *, out=None, leaky_alpha=0.01, clip_min=0.0, clip_max=6.0, device="cpu", algorithm="auto", math="strict",
         **onnx_attributes):
    """Convolution with PyTorch's arguments (torch.nn.functional.conv2d/1d/3d, any rank 1..3):
    y = activation(alpha * conv(x, w) + bias + beta * z). padding: int, per-axis tuple, 'valid' or 'same'.
    ONNX names (strides, pads, dilations, group, auto_pad, kernel_shape) are accepted instead."""
    attrs = _merge({"stride": stride, "padding": padding, "dilation": dilation, "groups": groups},
                   onnx_attributes)
    plan = _cached_plan("conv", x, w, bias, z,
                        _epilogue_kw(activation, alpha, beta, leaky_alpha, clip_min, clip_max, device, algorithm,
                                     math), attrs)
    return plan.run(x, w, bias, z, out)


def conv_transpose(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1, activation=None,
                   alpha=1.0, beta=0.0, z=None, *, out=None, leaky_alpha=0.01, clip_min=0.0, clip_max=6.0,
                   device="cpu", algorithm="auto", math="strict", **onnx_attributes):
    """Transposed convolution with PyTorch's arguments (torch.nn.functional.conv_transpose2d order):
    w is C x K/groups x kernel. ONNX names (strides, pads, output_padding, output_shape, group, dilations,
    auto_pad) are accepted instead."""
    torch_kw = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    if "output_shape" not in onnx_attributes or output_padding != 0:
        onnx_attributes.setdefault("output_padding", output_padding)
    attrs = _merge(torch_kw, onnx_attributes)
    plan = _cached_plan("conv_transpose", x, w, bias, z,
                        _epilogue_kw(activation, alpha, beta, leaky_alpha, clip_min, clip_max, device, algorithm,
                                     math), attrs)
    return plan.run(x, w, bias, z, out)


def _pool(op, x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, out, device, algorithm,
          onnx_attributes):
    if kernel_size is None and "kernel_shape" not in onnx_attributes:
        raise TypeError(f"{op} needs kernel_size (or kernel_shape)")
    if stride is None and kernel_size is not None and "strides" not in onnx_attributes:
        stride = kernel_size  # PyTorch's default (with ONNX's kernel_shape, ONNX's: 1)
    torch_kw = {"kernel_size": kernel_size, "stride": stride, "padding": padding}
    if dilation is not None:
        torch_kw["dilation"] = dilation
    attrs = _merge(torch_kw, onnx_attributes)
    attrs.setdefault("ceil_mode", ceil_mode)
    if count_include_pad is not None:
        attrs.setdefault("count_include_pad", count_include_pad)
    plan = _cached_plan(op, x, None, None, None, dict(device=device, algorithm=algorithm), attrs)
    return plan.run(x, None, None, None, out)


def max_pool(x, kernel_size=None, stride=None, padding=0, dilation=1, ceil_mode=False, *, out=None, device="cpu",
             algorithm="auto", **onnx_attributes):
    """Max pooling with PyTorch's arguments (torch.nn.functional.max_pool2d; stride defaults to the window).
    ONNX names (kernel_shape, strides, pads, dilations, auto_pad, ceil_mode) are accepted instead."""
    return _pool("max_pool", x, kernel_size, stride, padding, dilation, ceil_mode, None, out, device, algorithm,
                 onnx_attributes)


def avg_pool(x, kernel_size=None, stride=None, padding=0, ceil_mode=False, count_include_pad=True, *, out=None,
             device="cpu", algorithm="auto", **onnx_attributes):
    """Average pooling with PyTorch's arguments (torch.nn.functional.avg_pool2d; count_include_pad defaults to
    True as in PyTorch — ONNX's default is 0). ONNX names are accepted instead."""
    return _pool("avg_pool", x, kernel_size, stride, padding, None, ceil_mode, count_include_pad, out, device,
                 algorithm, onnx_attributes)
