"""Keyword arguments -> the ONNX attributes the C++ core takes.

ONNX names (kernel_shape, strides, pads, dilations, group, auto_pad, output_padding, output_shape,
ceil_mode, count_include_pad) pass through; PyTorch names (kernel_size, stride, padding, dilation,
groups) are translated: a scalar is repeated per spatial axis and PyTorch's symmetric `padding` becomes
ONNX's pads (all begins, then all ends). Counts, signs and sizes are checked by the library, which names
the attribute and the numbers; only Python types are checked here.
"""

import operator

_OPS = {
    "conv": "conv",
    "convtranspose": "conv_transpose",
    "maxpool": "max_pool",
    "avgpool": "avg_pool",
    "averagepool": "avg_pool",
}

ONNX_NAMES = (
    "kernel_shape", "strides", "pads", "dilations", "group", "auto_pad", "output_padding", "output_shape",
    "ceil_mode", "count_include_pad", "out_channels",
)
# PyTorch name -> ONNX name
TORCH_NAMES = {
    "kernel_size": "kernel_shape",
    "stride": "strides",
    "padding": "pads",
    "dilation": "dilations",
    "groups": "group",
}


def op_name(op):
    if not isinstance(op, str):
        raise TypeError(f"op must be a string (conv, conv_transpose, max_pool, avg_pool), got {type(op).__name__}")
    key = op.replace("-", "").replace("_", "").lower()
    if key not in _OPS:
        raise ValueError(f"unknown operation {op!r}: expected conv, conv_transpose, max_pool or avg_pool "
                         "(or the ONNX names Conv, ConvTranspose, MaxPool, AveragePool)")
    return _OPS[key]


def _int(name, v):
    if isinstance(v, bool):
        raise TypeError(f"{name}: expected an integer, got a bool ({v})")
    try:
        i = operator.index(v)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {type(v).__name__} ({v!r})") from None
    if not -(2**63) <= i < 2**63:
        raise ValueError(f"{name}: {i} does not fit in a 64-bit integer")
    return i


def ints(name, v, rank=None):
    """An int (repeated `rank` times when rank is given) or a sequence of ints -> list of ints."""
    if isinstance(v, (list, tuple)) or (hasattr(v, "__len__") and hasattr(v, "__iter__") and not isinstance(v, str)):
        return [_int(f"{name}[{i}]", e) for i, e in enumerate(v)]
    if rank is None:
        raise TypeError(f"{name}: expected a sequence of integers, got {type(v).__name__} ({v!r})")
    return [_int(name, v)] * rank


def shape_of(name, x):
    """A shape given as a sequence, or the .shape of an array."""
    if hasattr(x, "shape") and not isinstance(x, (list, tuple)):
        return [int(d) for d in x.shape]
    return ints(name, x)


def _flag(name, v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    raise TypeError(f"{name}: expected a bool (or 0/1), got {v!r}")


def onnx_attributes(op, rank, kwargs):
    """Normalises `kwargs` (consumed: unknown names raise TypeError) into make_problem's keyword arguments.

    rank: the spatial rank (len(x_shape) - 2), used to repeat scalars; the library checks every count.
    """
    out = {}
    given = {}
    for key, value in kwargs.items():
        onnx = TORCH_NAMES.get(key, key)
        if onnx not in ONNX_NAMES:
            accepted = ", ".join(ONNX_NAMES + tuple(TORCH_NAMES))
            raise TypeError(f"unknown attribute {key!r} for {op} (accepted: {accepted})")
        if onnx in given:
            raise TypeError(f"{key!r} and {given[onnx]!r} name the same attribute: give one")
        given[onnx] = key
        if value is None:
            continue
        r = max(rank, 0)
        if key == "padding":
            if isinstance(value, str):
                mode = value.lower()
                if mode not in ("valid", "same"):
                    raise ValueError(f"padding={value!r}: the strings PyTorch accepts are 'valid' and 'same'")
                if "auto_pad" in kwargs:
                    raise TypeError("padding='valid'/'same' and auto_pad name the same thing: give one")
                out["auto_pad"] = "VALID" if mode == "valid" else "SAME_UPPER"
                continue
            p = ints(key, value, r)
            # PyTorch: one value per axis applied to both ends (ONNX pads: begins..., ends...).
            out["pads"] = p + p if len(p) == r else p
        elif onnx in ("group", "out_channels"):
            out[onnx] = _int(key, value)
        elif onnx == "auto_pad":
            if not isinstance(value, str):
                raise TypeError(f"auto_pad: expected a string (NOTSET, VALID, SAME_UPPER, SAME_LOWER, HALF, FULL), "
                                f"got {value!r}")
            if "auto_pad" in out:
                raise TypeError("padding='valid'/'same' and auto_pad name the same thing: give one")
            out["auto_pad"] = value
        elif onnx in ("ceil_mode", "count_include_pad"):
            out[onnx] = _flag(key, value)
        elif onnx == "pads":
            out["pads"] = ints(key, value, 2 * r)
        else:
            out[onnx] = ints(key, value, r)
    return out
