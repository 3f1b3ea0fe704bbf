#!/usr/bin/env python3
"""Makes the .npy fixtures for tests/test_cli_commands.cpp (`convarith run` end to end).

The expected outputs are computed here with numpy, written from the definitions of ONNX Conv,
ConvTranspose, MaxPool and AveragePool (scatter form for the transposed convolution, which is
how ONNX defines it), independently of the C++ code. Inputs are small nonzero integers, so every
conv sum is exact in float32.

Run from anywhere:  python3 tests/data/make_fixtures.py   (needs numpy; CI does not: the
generated files are committed). Writes tests/data/<name>.{x,w,b,y}.npy and fixtures.txt, one line
per fixture: the name, then the arguments of `convarith run` other than the files.
"""
import math
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RNG = np.random.default_rng(20261124)


def ints(shape):
    """Nonzero integers in [-3, 3] as float32."""
    v = RNG.integers(1, 4, size=shape) * RNG.choice([-1, 1], size=shape)
    return v.astype(np.float32)


def conv_out(i, k, s, lo, hi, d):
    return (i + lo + hi - (d * (k - 1) + 1)) // s + 1


def pool_out(i, k, s, lo, hi, d, ceil_mode):
    span = i + lo + hi - (d * (k - 1) + 1)
    o = (-(-span // s) if ceil_mode else span // s) + 1
    # The last window has to start inside the input or the left padding.
    if ceil_mode and (o - 1) * s >= i + lo:
        o -= 1
    return o


def conv(x, w, b, strides, pads, dilations, group):
    n, c = x.shape[:2]
    kk = w.shape[0]
    rank = x.ndim - 2
    ins, ks = x.shape[2:], w.shape[2:]
    lo, hi = pads[:rank], pads[rank:]
    outs = [conv_out(ins[j], ks[j], strides[j], lo[j], hi[j], dilations[j]) for j in range(rank)]
    xp = np.zeros((n, c) + tuple(ins[j] + lo[j] + hi[j] for j in range(rank)), np.float64)
    xp[(slice(None), slice(None)) + tuple(slice(lo[j], lo[j] + ins[j]) for j in range(rank))] = x
    cg, kg = c // group, kk // group
    y = np.zeros((n, kk) + tuple(outs), np.float64)
    for o in np.ndindex(*outs):
        for tap in np.ndindex(*ks):
            idx = tuple(o[j] * strides[j] + tap[j] * dilations[j] for j in range(rank))
            for g in range(group):
                xs = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + idx]  # n x cg
                ws = w[(slice(g * kg, (g + 1) * kg), slice(None)) + tap]  # kg x cg
                y[(slice(None), slice(g * kg, (g + 1) * kg)) + o] += xs @ ws.T.astype(np.float64)
    if b is not None:
        y += b.reshape((1, kk) + (1,) * rank)
    return y


def conv_transpose(x, w, b, strides, pads, dilations, group, output_padding):
    # ONNX: output_shape[j] = stride*(in-1) + output_padding + ((k-1)*dilation + 1) - pad_lo - pad_hi.
    # Scatter every input element into a full-size buffer, then crop pad_lo at the start.
    n, c = x.shape[:2]
    rank = x.ndim - 2
    kg = w.shape[1]
    kk = kg * group
    cg = c // group
    ins, ks = x.shape[2:], w.shape[2:]
    lo, hi = pads[:rank], pads[rank:]
    outs = [strides[j] * (ins[j] - 1) + output_padding[j] + (ks[j] - 1) * dilations[j] + 1 - lo[j] - hi[j]
            for j in range(rank)]
    full = [strides[j] * (ins[j] - 1) + (ks[j] - 1) * dilations[j] + 1 + output_padding[j] for j in range(rank)]
    buf = np.zeros((n, kk) + tuple(full), np.float64)
    for i in np.ndindex(*ins):
        for tap in np.ndindex(*ks):
            pos = tuple(i[j] * strides[j] + tap[j] * dilations[j] for j in range(rank))
            for g in range(group):
                xs = x[(slice(None), slice(g * cg, (g + 1) * cg)) + i].astype(np.float64)  # n x cg
                ws = w[(slice(g * cg, (g + 1) * cg), slice(None)) + tap].astype(np.float64)  # cg x kg
                buf[(slice(None), slice(g * kg, (g + 1) * kg)) + pos] += xs @ ws
    y = buf[(slice(None), slice(None)) + tuple(slice(lo[j], lo[j] + outs[j]) for j in range(rank))]
    assert y.shape[2:] == tuple(outs)
    if b is not None:
        y = y + b.reshape((1, kk) + (1,) * rank)
    return y


def pool(x, kind, ks, strides, pads, dilations, ceil_mode, count_include_pad):
    n, c = x.shape[:2]
    rank = x.ndim - 2
    ins = x.shape[2:]
    lo, hi = pads[:rank], pads[rank:]
    outs = [pool_out(ins[j], ks[j], strides[j], lo[j], hi[j], dilations[j], ceil_mode) for j in range(rank)]
    y = np.zeros((n, c) + tuple(outs), np.float64)
    for o in np.ndindex(*outs):
        vals, padded_taps = [], 0
        for tap in np.ndindex(*ks):
            pos = [o[j] * strides[j] - lo[j] + tap[j] * dilations[j] for j in range(rank)]
            # Taps past the padded extent (ceil_mode) never count; padding counts only when asked.
            if all(-lo[j] <= pos[j] < ins[j] + hi[j] for j in range(rank)):
                padded_taps += 1
            if all(0 <= pos[j] < ins[j] for j in range(rank)):
                vals.append(x[(slice(None), slice(None)) + tuple(pos)].astype(np.float64))
        stack = np.stack(vals)
        if kind == "max":
            y[(slice(None), slice(None)) + o] = stack.max(axis=0)
        else:
            divisor = padded_taps if count_include_pad else len(vals)
            y[(slice(None), slice(None)) + o] = stack.sum(axis=0) / divisor
    return y


def fmt(v):
    return ",".join(str(int(t)) for t in v)


FIXTURES = []


def add(name, args, x, w=None, b=None, y=None):
    FIXTURES.append((name, args))
    np.save(os.path.join(HERE, name + ".x.npy"), x.astype(np.float32))
    if w is not None:
        np.save(os.path.join(HERE, name + ".w.npy"), w.astype(np.float32))
    if b is not None:
        np.save(os.path.join(HERE, name + ".b.npy"), b.astype(np.float32))
    np.save(os.path.join(HERE, name + ".y.npy"), y.astype(np.float32))


def self_check():
    """The transposed convolution is the adjoint of the convolution with the same weight and
    attributes: <conv(z, w), x> == <z, conv_transpose(x, w)>. Checks the two numpy references
    against each other (exact: integer data)."""
    for s, p, d, a, g, xs, ws in [([2, 3], [1, 0, 0, 1], [1, 1], [1, 2], 2, (1, 4, 4, 5), (4, 3, 3, 3)),
                                  ([2], [1, 2], [2], [1], 1, (2, 2, 5), (2, 3, 3))]:
        x, w = ints(xs), ints(ws)
        y = conv_transpose(x, w, None, s, p, d, g, a)
        z = ints(y.shape)
        cz = conv(z, w, None, s, p, d, g)
        assert cz.shape == x.shape and np.sum(cz * x) == np.sum(z * y), "conv / conv_transpose are not adjoint"


def main():
    # conv 2-D: groups, strides, dilation, asymmetric pads, bias.
    s, p, d, g = [2, 1], [1, 0, 2, 1], [1, 2], 2
    x, w, b = ints((2, 4, 7, 6)), ints((6, 2, 3, 2)), ints((6,))
    add("conv2d_groups_asym", f"conv --strides {fmt(s)} --pads {fmt(p)} --dilations {fmt(d)} --group {g}",
        x, w, b, conv(x, w, b, s, p, d, g))

    # conv 3-D, no bias, stride and padding on some axes.
    s, p, d = [1, 2, 1], [0, 1, 1, 1, 0, 0], [1, 1, 1]
    x, w = ints((1, 2, 4, 5, 3)), ints((3, 2, 2, 3, 2))
    add("conv3d", f"conv --strides {fmt(s)} --pads {fmt(p)}", x, w, None, conv(x, w, None, s, p, d, 1))

    # conv 1-D with ONNX SAME_UPPER: o = ceil(i/s), odd total padding at the end.
    i, k, st = 10, 4, 3
    o = -(-i // st)
    total = max((o - 1) * st + k - i, 0)
    x, w, b = ints((1, 3, i)), ints((2, 3, k)), ints((2,))
    add("conv1d_same_upper", f"conv --strides {st} --auto-pad SAME_UPPER", x, w, b,
        conv(x, w, b, [st], [total // 2, total - total // 2], [1], 1))

    # depthwise conv (C = K = group).
    s, p, d = [1, 1], [1, 1, 1, 1], [1, 1]
    x, w = ints((1, 3, 5, 4)), ints((3, 1, 3, 3))
    add("conv2d_depthwise", f"conv --pads {fmt(p)} --group 3", x, w, None, conv(x, w, None, s, p, d, 3))

    # conv-transpose 2-D: groups, unequal strides, asymmetric pads, output padding, bias.
    s, p, d, a, g = [2, 3], [1, 0, 0, 1], [1, 1], [1, 2], 2
    x, w, b = ints((1, 4, 4, 5)), ints((4, 3, 3, 3)), ints((6,))
    add("convt2d_groups_outpad",
        f"conv-transpose --strides {fmt(s)} --pads {fmt(p)} --output-padding {fmt(a)} --group {g}",
        x, w, b, conv_transpose(x, w, b, s, p, d, g, a))

    # conv-transpose 1-D with dilation 2 (output padding 1 < max(s, d) = 2).
    s, p, d, a = [2], [1, 2], [2], [1]
    x, w, b = ints((2, 2, 5)), ints((2, 3, 3)), ints((3,))
    add("convt1d_dilated", f"conv-transpose --strides 2 --pads {fmt(p)} --dilations 2 --output-padding 1",
        x, w, b, conv_transpose(x, w, b, s, p, d, 1, a))

    # max pool: padding, stride, ceil_mode.
    k, s, p = [3, 3], [2, 2], [1, 1, 1, 1]
    x = ints((1, 3, 7, 8))
    add("maxpool2d_ceil", f"max-pool --kernel-shape {fmt(k)} --strides {fmt(s)} --pads {fmt(p)} --ceil-mode 1",
        x, y=pool(x, "max", k, s, p, [1, 1], True, False))

    # max pool with dilation, 1-D.
    x = ints((2, 2, 11))
    add("maxpool1d_dilated", "max-pool --kernel-shape 3 --strides 2 --dilations 2",
        x, y=pool(x, "max", [3], [2], [0, 0], [2], False, False))

    # avg pool: asymmetric pads, ceil_mode, count_include_pad (taps past the padded extent do not count).
    k, s, p = [3, 2], [2, 2], [1, 0, 1, 1]
    x = ints((1, 2, 6, 7))
    add("avgpool2d_ceil_include_pad",
        f"avg-pool --kernel-shape {fmt(k)} --strides {fmt(s)} --pads {fmt(p)} --ceil-mode 1 --count-include-pad 1",
        x, y=pool(x, "avg", k, s, p, [1, 1], True, True))

    # avg pool excluding padding from the divisor.
    k, s, p = [3, 3], [2, 1], [1, 1, 1, 1]
    x = ints((2, 2, 5, 5))
    add("avgpool2d_exclude_pad", f"avg-pool --kernel-shape {fmt(k)} --strides {fmt(s)} --pads {fmt(p)}",
        x, y=pool(x, "avg", k, s, p, [1, 1], False, False))

    self_check()
    with open(os.path.join(HERE, "fixtures.txt"), "w") as f:
        f.write("# name, then the `convarith run` arguments other than the files (made by make_fixtures.py)\n")
        for name, args in FIXTURES:
            f.write(f"{name} {args}\n")


if __name__ == "__main__":
    main()
