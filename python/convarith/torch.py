"""convarith as PyTorch custom ops (PyTorch >= 2.4; torch stays an optional dependency of convarith).

    import torch, convarith.torch as ct
    y = torch.ops.convarith.conv(x, w, b, [2, 2], [1, 1], [1, 1], 1)   # or ct.conv(x, w, b, stride=2, padding=1)
    report = ct.swap_modules(model)          # nn.Conv*/ConvTranspose*/MaxPool*/AvgPool* -> convarith, in place
    err = ct.compare(model, x)               # one call: a copy of the model on convarith vs the model itself

The ops (torch.ops.convarith.conv, conv_transpose, max_pool, avg_pool) run the package's CPU plans on CPU tensors
(zero-copy NumPy views) and its CUDA plans on CUDA tensors where convarith was built with CUDA. Their fake
(meta) implementations take the output shape from convarith's own arithmetic, so torch.compile and torch.export
see the same shapes the library computes. Channels-last inputs (torch.channels_last / channels_last_3d) give
channels-last outputs. The ops have no autograd formula: they are for inference and comparison.
"""

import copy
from typing import List, Optional

import torch
from torch import Tensor, nn

import convarith

if not hasattr(torch, "library") or not hasattr(torch.library, "custom_op"):
    raise ImportError(f"convarith.torch needs PyTorch >= 2.4 (torch.library.custom_op); this is {torch.__version__}")

__all__ = ["conv", "conv_transpose", "max_pool", "avg_pool", "swap_modules", "compare", "ConvarithConv",
           "ConvarithConvTranspose", "ConvarithMaxPool", "ConvarithAvgPool"]

_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def _channels_last(x):
    """True when x is dense channels-last and not also dense NCHW (then NCHW wins, as for the output)."""
    if x.dim() == 4:
        fmt = torch.channels_last
    elif x.dim() == 5:
        fmt = torch.channels_last_3d
    else:
        return False
    return x.is_contiguous(memory_format=fmt) and not x.is_contiguous()


def _empty(shape, x):
    fmt = None
    if _channels_last(x):
        fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    if fmt is None:
        return torch.empty(shape, dtype=x.dtype, device=x.device)
    return torch.empty(shape, dtype=x.dtype, device=x.device, memory_format=fmt)


def _dense(x):
    return x if x.is_contiguous() or _channels_last(x) else x.contiguous()


def _numpy(t):
    """A zero-copy NumPy view of a CPU tensor (bfloat16 as ml_dtypes.bfloat16)."""
    if t is None:
        return None
    if t.dtype == torch.bfloat16:
        import ml_dtypes
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _check(name, x, w=None):
    if x.dtype not in _DTYPES:
        raise TypeError(f"convarith::{name}: dtype {x.dtype} is not float32, float16 or bfloat16")
    if x.dim() < 3 or x.dim() > 5:
        raise ValueError(f"convarith::{name}: x has {x.dim()} dims; expected N, C and 1 to 3 spatial dims")
    if w is not None and w.device != x.device:
        raise ValueError(f"convarith::{name}: w is on {w.device}, x on {x.device}")


def _shape(op, x, w, attrs):
    """The output shape from convarith's arithmetic (the real op and the fake one both use it)."""
    return tuple(convarith.shape(op, tuple(int(d) for d in x.shape),
                                 None if w is None else tuple(int(d) for d in w.shape), **attrs).output_shape)


def _run(op, x, w, bias, attrs):
    _check(op, x, w)
    x = _dense(x)
    w = None if w is None else w.contiguous()
    bias = None if bias is None else bias.contiguous()
    y = _empty(_shape(op, x, w, attrs), x)
    if y.numel() == 0:
        return y
    # The package's plan cache (the functional forms' one): a plan is prepared once per layer and format.
    if x.is_cuda:
        convarith._cached_plan(op, x, w, bias, None, {"device": "cuda"}, attrs).run(x, w, bias, out=y)
    else:
        xa, wa, ba, ya = _numpy(x), _numpy(w), _numpy(bias), _numpy(y)
        convarith._cached_plan(op, xa, wa, ba, None, {}, attrs).run(xa, wa, ba, out=ya)
    return y


def _conv_attrs(stride, padding, dilation, groups):
    return {"stride": list(stride), "padding": list(padding), "dilation": list(dilation), "groups": int(groups)}


# ---- the ops ------------------------------------------------------------------------------------------------
# padding: one value per spatial axis (both ends, PyTorch) or 2 x rank values (ONNX pads: begins, then ends).


@torch.library.custom_op("convarith::conv", mutates_args=())
def _conv(x: Tensor, w: Tensor, bias: Optional[Tensor], stride: List[int], padding: List[int], dilation: List[int],
          groups: int) -> Tensor:
    return _run("conv", x, w, bias, _conv_attrs(stride, padding, dilation, groups))


@_conv.register_fake
def _(x, w, bias, stride, padding, dilation, groups):
    return _empty(_shape("conv", x, w, _conv_attrs(stride, padding, dilation, groups)), x)


def _transpose_attrs(stride, padding, output_padding, groups, dilation):
    a = _conv_attrs(stride, padding, dilation, groups)
    a["output_padding"] = list(output_padding)
    return a


@torch.library.custom_op("convarith::conv_transpose", mutates_args=())
def _conv_transpose(x: Tensor, w: Tensor, bias: Optional[Tensor], stride: List[int], padding: List[int],
                    output_padding: List[int], groups: int, dilation: List[int]) -> Tensor:
    return _run("conv_transpose", x, w, bias, _transpose_attrs(stride, padding, output_padding, groups, dilation))


@_conv_transpose.register_fake
def _(x, w, bias, stride, padding, output_padding, groups, dilation):
    return _empty(_shape("conv_transpose", x, w, _transpose_attrs(stride, padding, output_padding, groups, dilation)),
                  x)


def _pool_attrs(kernel_size, stride, padding, dilation=None, ceil_mode=False, count_include_pad=None):
    a = {"kernel_size": list(kernel_size), "stride": list(stride), "padding": list(padding),
         "ceil_mode": bool(ceil_mode)}
    if dilation is not None:
        a["dilation"] = list(dilation)
    if count_include_pad is not None:
        a["count_include_pad"] = bool(count_include_pad)
    return a


@torch.library.custom_op("convarith::max_pool", mutates_args=())
def _max_pool(x: Tensor, kernel_size: List[int], stride: List[int], padding: List[int], dilation: List[int],
              ceil_mode: bool) -> Tensor:
    return _run("max_pool", x, None, None, _pool_attrs(kernel_size, stride, padding, dilation, ceil_mode))


@_max_pool.register_fake
def _(x, kernel_size, stride, padding, dilation, ceil_mode):
    return _empty(_shape("max_pool", x, None, _pool_attrs(kernel_size, stride, padding, dilation, ceil_mode)), x)


@torch.library.custom_op("convarith::avg_pool", mutates_args=())
def _avg_pool(x: Tensor, kernel_size: List[int], stride: List[int], padding: List[int], ceil_mode: bool,
              count_include_pad: bool) -> Tensor:
    return _run("avg_pool", x, None, None,
                _pool_attrs(kernel_size, stride, padding, None, ceil_mode, count_include_pad))


@_avg_pool.register_fake
def _(x, kernel_size, stride, padding, ceil_mode, count_include_pad):
    return _empty(_shape("avg_pool", x, None,
                         _pool_attrs(kernel_size, stride, padding, None, ceil_mode, count_include_pad)), x)


# ---- functional forms with torch.nn.functional's arguments ----------------------------------------------------


def _per_axis(v, rank):
    return [int(e) for e in v] if isinstance(v, (list, tuple)) else [int(v)] * rank


def _same_padding(kernel, dilation):
    """PyTorch's padding='same' (stride 1): total d(k-1) per axis, the odd unit at the end -> ONNX pads."""
    totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return [t // 2 for t in totals] + [t - t // 2 for t in totals]


def _conv_padding(padding, kernel, dilation, rank):
    if isinstance(padding, str):
        if padding == "valid":
            return [0] * rank
        if padding == "same":
            return _same_padding(kernel, dilation)
        raise ValueError(f"padding={padding!r}: expected 'valid', 'same' or integers")
    return _per_axis(padding, rank)


def conv(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv1d/2d/3d through torch.ops.convarith.conv."""
    r = x.dim() - 2
    dil = _per_axis(dilation, r)
    return torch.ops.convarith.conv(x, w, bias, _per_axis(stride, r), _conv_padding(padding, w.shape[2:], dil, r),
                                    dil, int(groups))


def conv_transpose(x, w, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose1d/2d/3d through torch.ops.convarith.conv_transpose."""
    r = x.dim() - 2
    return torch.ops.convarith.conv_transpose(x, w, bias, _per_axis(stride, r), _per_axis(padding, r),
                                              _per_axis(output_padding, r), int(groups), _per_axis(dilation, r))


def max_pool(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """torch.nn.functional.max_pool1d/2d/3d (without return_indices)."""
    r = x.dim() - 2
    k = _per_axis(kernel_size, r)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _per_axis(stride, r)
    return torch.ops.convarith.max_pool(x, k, s, _per_axis(padding, r), _per_axis(dilation, r), bool(ceil_mode))


def avg_pool(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """torch.nn.functional.avg_pool1d/2d/3d (without divisor_override)."""
    r = x.dim() - 2
    k = _per_axis(kernel_size, r)
    s = k if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) else _per_axis(stride, r)
    return torch.ops.convarith.avg_pool(x, k, s, _per_axis(padding, r), bool(ceil_mode), bool(count_include_pad))


# ---- module swapping ------------------------------------------------------------------------------------------


class ConvarithConv(nn.Module):
    """An nn.Conv1d/2d/3d's parameters (shared, not copied) run by convarith."""

    def __init__(self, m):
        super().__init__()
        self.weight, self.bias = m.weight, m.bias
        self.stride, self.dilation, self.groups = list(m.stride), list(m.dilation), m.groups
        self.padding = _conv_padding(m.padding, m.kernel_size, m.dilation, len(m.kernel_size))
        self.original = type(m).__name__

    def forward(self, x):
        return torch.ops.convarith.conv(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                                        self.groups)

    def extra_repr(self):
        return f"{self.original}, stride={self.stride}, padding={self.padding}, groups={self.groups}"


class ConvarithConvTranspose(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.weight, self.bias = m.weight, m.bias
        self.stride, self.padding, self.dilation = list(m.stride), list(m.padding), list(m.dilation)
        self.output_padding, self.groups = list(m.output_padding), m.groups
        self.original = type(m).__name__

    def forward(self, x):
        return torch.ops.convarith.conv_transpose(x, self.weight, self.bias, self.stride, self.padding,
                                                  self.output_padding, self.groups, self.dilation)


class ConvarithMaxPool(nn.Module):
    def __init__(self, m, rank):
        super().__init__()
        self.kernel_size = _per_axis(m.kernel_size, rank)
        self.stride = self.kernel_size if m.stride is None else _per_axis(m.stride, rank)
        self.padding, self.dilation = _per_axis(m.padding, rank), _per_axis(m.dilation, rank)
        self.ceil_mode = bool(m.ceil_mode)

    def forward(self, x):
        return torch.ops.convarith.max_pool(x, self.kernel_size, self.stride, self.padding, self.dilation,
                                            self.ceil_mode)


class ConvarithAvgPool(nn.Module):
    def __init__(self, m, rank):
        super().__init__()
        self.kernel_size = _per_axis(m.kernel_size, rank)
        self.stride = self.kernel_size if m.stride is None else _per_axis(m.stride, rank)
        self.padding = _per_axis(m.padding, rank)
        self.ceil_mode, self.count_include_pad = bool(m.ceil_mode), bool(m.count_include_pad)

    def forward(self, x):
        return torch.ops.convarith.avg_pool(x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                                            self.count_include_pad)


_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSE = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_MAX = {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3}
_AVG = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3}


def _replacement(m):
    """(module, None) to swap in, or (None, the reason it stays)."""
    if isinstance(m, _CONV + _TRANSPOSE) and m.padding_mode != "zeros":
        return None, f"padding_mode={m.padding_mode!r} (convarith pads with zeros)"
    if isinstance(m, _CONV):
        return ConvarithConv(m), None
    if isinstance(m, _TRANSPOSE):
        return ConvarithConvTranspose(m), None
    if type(m) in _MAX:
        if m.return_indices:
            return None, "return_indices=True"
        return ConvarithMaxPool(m, _MAX[type(m)]), None
    if type(m) in _AVG:
        if getattr(m, "divisor_override", None):
            return None, f"divisor_override={m.divisor_override}"
        return ConvarithAvgPool(m, _AVG[type(m)]), None
    return None, None


def swap_modules(model):
    """Replaces, in place, every nn.Conv1d/2d/3d, nn.ConvTranspose1d/2d/3d, nn.MaxPool1d/2d/3d and
    nn.AvgPool1d/2d/3d of `model` (the model itself too, when it is one) by a module that runs convarith's op
    with the same (shared) parameters. Returns {"swapped": [names], "skipped": [(name, reason)], "model": the
    model (a new object only when `model` itself was swapped)}."""
    swapped, skipped = [], []
    new, reason = _replacement(model)
    if new is not None:
        return {"swapped": [""], "skipped": [], "model": new}
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            new, reason = _replacement(child)
            if new is not None:
                setattr(parent, child_name, new)
                swapped.append(name)
            elif reason is not None:
                skipped.append((name, reason))
    return {"swapped": swapped, "skipped": skipped, "model": model}


@torch.no_grad()
def compare(model, *inputs):
    """Runs `model` and a deep copy of it with its conv and pooling modules swapped for convarith (the original is
    untouched: PyTorch's CPU path or cuDNN on a CUDA model) on the same inputs. Returns {"max_abs_error",
    "max_abs_reference", "swapped", "skipped", "reference", "convarith"} (outputs: the first tensor output)."""
    twin = copy.deepcopy(model)
    report = swap_modules(twin)
    ref = model(*inputs)
    ours = report["model"](*inputs)
    ref_t = ref if isinstance(ref, Tensor) else ref[0]
    ours_t = ours if isinstance(ours, Tensor) else ours[0]
    err = (ref_t.double() - ours_t.double()).abs().max().item() if ref_t.numel() else 0.0
    return {"max_abs_error": err, "max_abs_reference": ref_t.double().abs().max().item() if ref_t.numel() else 0.0,
            "swapped": report["swapped"], "skipped": report["skipped"], "reference": ref_t, "convarith": ours_t}
