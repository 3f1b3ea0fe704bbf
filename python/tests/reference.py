"""A tiny, independent NumPy (float64) reference for the tests: convolution, transposed convolution and
pooling from their definitions, written without convarith (sizes are computed here too)."""

import itertools
import math

import numpy as np


def _axis_lists(r, strides, pads, dilations):
    s = list(strides) if strides is not None else [1] * r
    d = list(dilations) if dilations is not None else [1] * r
    p = list(pads) if pads is not None else [0] * (2 * r)
    return s, p[:r], p[r:], d


def conv(x, w, bias=None, strides=None, pads=None, dilations=None, group=1):
    """x: N, C, spatial...; w: K, C/group, kernel...; pads: begins..., ends..."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    r = x.ndim - 2
    s, plo, phi, d = _axis_lists(r, strides, pads, dilations)
    n, c = x.shape[:2]
    k = w.shape[0]
    ks = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(plo[j], phi[j]) for j in range(r)])
    out = [(xp.shape[2 + j] - (d[j] * (ks[j] - 1) + 1)) // s[j] + 1 for j in range(r)]
    y = np.zeros((n, k) + tuple(out))
    cg, kg = c // group, k // group
    for g in range(group):
        for kidx in itertools.product(*[range(e) for e in ks]):
            sl = tuple(slice(kidx[j] * d[j], kidx[j] * d[j] + s[j] * (out[j] - 1) + 1, s[j]) for j in range(r))
            patch = xp[(slice(None), slice(g * cg, (g + 1) * cg)) + sl]
            wk = w[(slice(g * kg, (g + 1) * kg), slice(None)) + kidx]
            y[:, g * kg:(g + 1) * kg] += np.einsum("nc...,kc->nk...", patch, wk)
    if bias is not None:
        y += np.asarray(bias, np.float64).reshape((1, k) + (1,) * r)
    return y


def conv_transpose(x, w, bias=None, strides=None, pads=None, dilations=None, group=1, output_padding=None):
    """x: N, C, spatial...; w: C, K/group, kernel... Scatter definition: y[o] += x[i] w[kk] at o = i*s + kk*d - p_lo."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    r = x.ndim - 2
    s, plo, phi, d = _axis_lists(r, strides, pads, dilations)
    a = list(output_padding) if output_padding is not None else [0] * r
    n, c = x.shape[:2]
    kg = w.shape[1]
    k = kg * group
    ks = w.shape[2:]
    ins = x.shape[2:]
    full = [s[j] * (ins[j] - 1) + d[j] * (ks[j] - 1) + 1 + a[j] for j in range(r)]
    y = np.zeros((n, k) + tuple(full))
    cg = c // group
    for g in range(group):
        for kidx in itertools.product(*[range(e) for e in ks]):
            sl = tuple(slice(kidx[j] * d[j], kidx[j] * d[j] + s[j] * (ins[j] - 1) + 1, s[j]) for j in range(r))
            wk = w[(slice(g * cg, (g + 1) * cg), slice(None)) + kidx]
            y[(slice(None), slice(g * kg, (g + 1) * kg)) + sl] += np.einsum("nc...,ck->nk...",
                                                                            x[:, g * cg:(g + 1) * cg], wk)
    crop = tuple(slice(plo[j], full[j] - phi[j]) for j in range(r))
    y = y[(slice(None), slice(None)) + crop]
    if bias is not None:
        y = y + np.asarray(bias, np.float64).reshape((1, k) + (1,) * r)
    return y


def pool(kind, x, kernel, strides=None, pads=None, dilations=None, ceil_mode=False, count_include_pad=False):
    """Max or average pooling, window by window. Windows may run past the padded input with ceil_mode (those
    taps are skipped); the average divides by the taps inside the input, or with count_include_pad by the taps
    inside the padded extent [-p_lo, i + p_hi)."""
    x = np.asarray(x, np.float64)
    r = x.ndim - 2
    s, plo, phi, d = _axis_lists(r, strides, pads, dilations)
    ins = x.shape[2:]
    out = []
    for j in range(r):
        span = ins[j] + plo[j] + phi[j] - (d[j] * (kernel[j] - 1) + 1)
        o = (math.ceil(span / s[j]) if ceil_mode else span // s[j]) + 1
        if ceil_mode and (o - 1) * s[j] >= ins[j] + plo[j]:
            o -= 1  # the last window must start inside the input or the left padding
        out.append(o)
    y = np.zeros(x.shape[:2] + tuple(out))
    for oidx in itertools.product(*[range(e) for e in out]):
        taps, padded = [], 0
        for kidx in itertools.product(*[range(e) for e in kernel]):
            pos = [oidx[j] * s[j] + kidx[j] * d[j] - plo[j] for j in range(r)]
            if all(-plo[j] <= pos[j] < ins[j] + phi[j] for j in range(r)):
                padded += 1
            if all(0 <= pos[j] < ins[j] for j in range(r)):
                taps.append(x[(slice(None), slice(None)) + tuple(pos)])
        stack = np.stack(taps)
        if kind == "max":
            y[(slice(None), slice(None)) + oidx] = stack.max(axis=0)
        else:
            y[(slice(None), slice(None)) + oidx] = stack.sum(axis=0) / (padded if count_include_pad else len(taps))
    return y
