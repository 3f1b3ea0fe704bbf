#!/usr/bin/env python3
# fuzz/make_huge_seeds.py — writes the issue-18 examples in fuzz_huge's byte format (huge_harness.hpp)
# as tests/regressions/huge/<name> (replayed by tests/test_numeric_edges.cpp) and as seeds in
# fuzz/corpus/fuzz_huge/. Usage: python3 fuzz/make_huge_seeds.py (from the repository root).
import os
import struct

OPS = {"conv": 0, "conv_transpose": 1, "max_pool": 2, "avg_pool": 3}


def value(v):
    # selector 5 (% 8): a raw 64-bit value, little-endian
    return bytes([5]) + struct.pack("<q", v)


def case(op, axes, flags=0, n=1, c=1, k=1, groups=1):
    """axes: list of (input, kernel, stride, pad_lo, pad_hi, dilation, output_padding)."""
    out = bytes([OPS[op], len(axes) - 1, flags, n - 1, c - 1, k - 1, groups - 1])
    for (i, ker, s, pl, ph, d, a) in axes:
        out += bytes([i - 1]) + value(ker) + value(s) + value(pl) + value(ph) + value(d) + value(a)
    return out


T = 10**12
D = 288230376151711745  # dilation of the UBSan finding (2^58 + 1)
P = (8 * D + 1 - 4 + 1) // 2  # pads so that a 9-tap kernel at that dilation fits a 4-wide input
cases = {
    "max_pool_window_1e12_w": case("max_pool", [(3, T, T, T - 1, T - 1, 1, 0)]),
    "max_pool_window_1e12_h": case("max_pool", [(3, T, T, T - 1, T - 1, 1, 0), (2, 1, 1, 0, 0, 1, 0)]),
    "avg_pool_window_1e12_d_nan": case("avg_pool", [(3, T, T, T - 1, T - 1, 1, 0), (2, 1, 1, 0, 0, 1, 0),
                                                    (2, 2, 1, 0, 0, 1, 0)], flags=4 | 2),
    "avg_pool_include_pad_65536_squared": case("avg_pool", [(1, 65536, 65536, 65535, 65535, 1, 0)] * 2, flags=2),
    "conv_dilation_2p58_plus_1": case("conv", [(4, 9, 1, P, P, D, 0)], k=2),
    "conv_inf_weight_padded": case("conv", [(3, 3, 1, 1, 1, 1, 0), (3, 3, 1, 1, 1, 1, 0)], flags=8, k=3),
    "conv_transpose_huge_stride": case("conv_transpose", [(3, 2, T, 0, 0, 1, 0)], flags=8, k=2),
    "max_pool_nan_first": case("max_pool", [(4, 2, 1, 0, 0, 1, 0)], flags=4),
}
root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
for name, data in cases.items():
    for folder in ("tests/regressions/huge", "fuzz/corpus/fuzz_huge"):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        with open(os.path.join(root, folder, name), "wb") as f:
            f.write(data)
