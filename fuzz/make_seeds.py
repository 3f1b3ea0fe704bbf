#!/usr/bin/env python3
"""Writes the committed seed corpus of fuzz_problem (fuzz/corpus/fuzz_problem/), encoding each
problem the way fuzz/fuzz_input.hpp and problem_harness.hpp decode it. Run from the repository
root after changing the decoder: python3 fuzz/make_seeds.py"""
import os
import struct

EDGES = [0, 1, -1, 2, 1 << 31, (1 << 31) - 1, 1 << 32, 1 << 62, (1 << 63) - 1, (1 << 63) - 2,
         ((1 << 63) - 1) // 2, -(1 << 63), -(1 << 63) + 1, 3037000499, 3037000500, 2097152]
CONV, CONVT, MAXPOOL, AVGPOOL = 0, 1, 2, 3
EXPLICIT, VALID, SAME_UPPER, SAME_LOWER, HALF, FULL = range(6)


def val(v):
    if 0 <= v <= 9:
        return bytes([0, v])
    if v in EDGES:
        return bytes([4, EDGES.index(v)])
    if -128 <= v <= 127:
        return bytes([3, v & 0xFF])
    if 0 <= v <= 65535:
        return bytes([7, v & 0xFF, v >> 8])
    return bytes([5]) + struct.pack("<q", v)


def problem(op, rank, n, c, k, groups=1, i=(4,), ker=(1,), s=(1,), plo=(0,), phi=(0,), d=(1,), a=(0,),
            out_shape=None, pad_mode=EXPLICIT, ceil=False, cip=False):
    flags = (1 if out_shape else 0) | (2 if ceil else 0) | (4 if cip else 0)
    b = bytes([op, rank - 1, pad_mode, flags]) + val(n) + val(c) + val(k) + val(groups)

    def at(t, j, default):
        return t[j] if j < len(t) else (t[-1] if t else default)

    for j in range(3):
        b += val(at(i, j, 4)) + val(at(ker, j, 1)) + val(at(s, j, 1)) + val(at(plo, j, 0)) + val(at(phi, j, 0))
        b += val(at(d, j, 1)) + val(at(a, j, 0)) + val(at(out_shape or (1,), j, 1))
    return b


SEEDS = {
    "conv2d_pad1": problem(CONV, 2, 1, 2, 3, i=(5, 5), ker=(3, 3), plo=(1,), phi=(1,)),
    "conv1d_stride2_dil2_asym": problem(CONV, 1, 2, 1, 2, i=(9,), ker=(3,), s=(2,), plo=(1,), phi=(2,), d=(2,)),
    "conv3d_groups2": problem(CONV, 3, 1, 4, 4, groups=2, i=(4, 4, 4), ker=(2, 2, 2)),
    "conv2d_depthwise_same": problem(CONV, 2, 1, 3, 3, groups=3, i=(6, 5), ker=(3, 3), s=(2, 2), pad_mode=SAME_UPPER),
    "conv2d_full": problem(CONV, 2, 1, 1, 1, i=(3, 3), ker=(3, 3), pad_mode=FULL),
    "convt2d_stride2_a1": problem(CONVT, 2, 1, 2, 2, i=(3, 3), ker=(3, 3), s=(2, 2), plo=(1,), phi=(1,), a=(1,)),
    "convt1d_output_shape": problem(CONVT, 1, 1, 2, 4, groups=2, i=(5,), ker=(4,), s=(3,), out_shape=(16,),
                                    pad_mode=SAME_UPPER),
    "convt2d_dilated": problem(CONVT, 2, 1, 1, 1, i=(4, 3), ker=(2, 3), s=(1, 2), d=(3, 2), a=(2, 1)),
    "maxpool2d_ceil": problem(MAXPOOL, 2, 1, 2, 2, i=(7, 6), ker=(3, 2), s=(2, 2), plo=(1,), phi=(1,), ceil=True),
    "avgpool2d_count_pad": problem(AVGPOOL, 2, 2, 1, 1, i=(5, 5), ker=(3, 3), s=(2, 2), plo=(1,), phi=(1,), cip=True),
    "maxpool1d_dilated": problem(MAXPOOL, 1, 1, 3, 3, i=(10,), ker=(3,), s=(1,), d=(2,)),
    "conv_overflow_n": problem(CONV, 2, 1 << 62, 2, 2, i=(3, 3), ker=(1, 1)),
    "conv_overflow_dilation": problem(CONV, 1, 1, 1, 1, i=(5,), ker=(3,), d=((1 << 63) - 1,)),
    "convt_overflow_stride": problem(CONVT, 3, 1, 1, 1, i=(3037000500,) * 3, ker=(2,), s=(3037000500,)),
    "conv_big_spatial": problem(CONV, 3, 1, 1, 1, i=(2097152,) * 3, ker=(1,)),
}

I64_MAX = (1 << 63) - 1
# Inputs that crashed fuzz_problem (UBSan: signed overflow in host/arithmetic.cpp), kept as regression
# tests (tests/regressions/problem/, replayed by tests/test_bad_input.cpp). Each is the smallest
# hand-written input for the bug the fuzzer found.
REGRESSIONS = {
    # conv_transpose_output_size: s(i-1)+a+k' - p_lo - p_hi overflowed for huge padding.
    "convt_huge_pads_overflow": problem(CONVT, 1, 1, 1, 1, i=(5,), ker=(3,), plo=(I64_MAX - 1,), phi=(I64_MAX,)),
    # pool_output_size with ceil_mode: (o-1)*s overflowed for a huge stride.
    "pool_ceil_huge_stride_overflow": problem(MAXPOOL, 1, 1, 1, 1, i=(I64_MAX - 1,), ker=(1,), s=(1 << 62,),
                                              ceil=True),
    # fit_transpose_output: s(i-1)+k' + a overflowed.
    "convt_output_shape_overflow": problem(CONVT, 1, 1, 1, 1, i=(2,), ker=((1 << 62) - 1,), s=(1 << 62,), a=(1,),
                                           out_shape=(5,)),
}


def args(*words):
    """fuzz_attributes input: a count for the parse_count round trip, then each word as a raw string."""
    b = val(7)
    for w in words:
        data = w.encode()
        assert len(data) <= 24
        b += bytes([7, len(data)]) + data
    return b


ATTRIBUTE_SEEDS = {
    "conv2d": args("conv", "--x-shape", "1,3,8,8", "--w-shape", "4,3,3,3", "--pads", "1,1,1,1"),
    "conv2d_strided_dilated": args("conv", "--x-shape=2,4,9,7", "--kernel-shape", "3,2", "--strides", "2,1",
                                   "--dilations", "2,3", "--group", "2", "--out-channels", "6"),
    "conv1d_same": args("conv", "--x-shape", "1,1,10", "--kernel-shape", "4", "--auto-pad", "SAME_LOWER",
                        "--strides", "3"),
    "convt2d": args("conv-transpose", "--x-shape", "1,2,3,3", "--w-shape", "2,3,3,3", "--strides", "2,2",
                    "--output-padding", "1,1"),
    "convt_output_shape": args("conv-transpose", "--x-shape", "1,1,4", "--kernel-shape", "3", "--strides",
                               "2", "--output-shape", "9", "--auto-pad", "SAME_UPPER"),
    "maxpool3d": args("max-pool", "--x-shape", "1,2,4,5,6", "--kernel-shape", "2,2,3", "--ceil-mode", "1",
                      "--strides", "2,2,2"),
    "avgpool": args("avg-pool", "--x-shape", "2,1,5,5", "--kernel-shape", "3,3", "--pads", "1,1,1,1",
                    "--count-include-pad", "1"),
    "overflow": args("conv", "--x-shape", "9223372036854775807,2,2", "--kernel-shape", "1"),
}


def npy(header_dict, payload, version=1):
    header = header_dict.encode()
    pad = (64 - (10 + len(header) + 1) % 64) % 64
    header += b" " * pad + b"\n"
    if version == 1:
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(header)) + header + payload


def floats(*v):
    return struct.pack("<%df" % len(v), *v)


NPY_SEEDS = {  # mode byte 0: the file as is
    "f4_2x3": b"\x00" + npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", floats(1, 2, 3, 4, 5, 6)),
    "f4_scalar": b"\x00" + npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", floats(7)),
    "f4_empty": b"\x00" + npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4), }", b""),
    "f4_v2_1d": b"\x00" + npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", floats(1, -2, 3), 2),
    "f8_rejected": b"\x00" + npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", b"\0" * 8),
    "fortran_rejected": b"\x00" + npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", floats(1, 2, 3, 4)),
    # mode byte 1: header text, 0xFF, payload; the harness writes magic, version and length.
    "wrapped_header": b"\x01" + b"{'shape': (1, 2), 'fortran_order': False, 'descr': '<f4'}" + b"\xff" + floats(1, 2),
    "wrapped_lying_shape": b"\x01" + b"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 2), }" +
                           b"\xff" + floats(1),
}


# fuzz_npy_file: byte 0 chooses the kind (fuzz/cli_harness.hpp check_npy_file_bytes), the rest is a
# fuzz_npy input. Kind 0: a regular file; kind 4 + 8*(e-10): the file plus a hole of 2^e bytes; kind 6 with
# the decoded file's first byte % 4 choosing /dev/zero, a FIFO, a directory or a symlink to /dev/zero.
def hole(e):
    assert 10 <= e <= 41
    return bytes([4 + 8 * (e - 10)])


DEVICE = bytes([6])
NPY_FILE_SEEDS = {
    "file_f4_2x3": b"\x00" + NPY_SEEDS["f4_2x3"],
    "file_v2_1d": b"\x00" + NPY_SEEDS["f4_v2_1d"],
    "file_wrapped_header": b"\x00" + NPY_SEEDS["wrapped_header"],
    "file_lying_shape": b"\x00" + NPY_SEEDS["wrapped_lying_shape"],
    "hole_1MiB_after_valid": hole(20) + NPY_SEEDS["f4_2x3"],
    "hole_1TiB_after_valid": hole(40) + NPY_SEEDS["f4_scalar"],
    "dev_zero": DEVICE + b"\x00\x00",
    "fifo": DEVICE + b"\x00\x01",
    "directory": DEVICE + b"\x00\x02",
    "symlink_to_dev_zero": DEVICE + b"\x00\x03",
}

# The issue-18 cases, kept as regressions of fuzz_npy_file (tests/regressions/npy_file/): before the
# fix read_npy read the whole stream first (a device filled memory; gigabytes after a valid header
# were read before the "extra bytes" check) and allocated whatever a matching header declared.
NPY_FILE_REGRESSIONS = {
    "dev_zero_as_input": DEVICE + b"\x00\x00",
    "fifo_without_writer": DEVICE + b"\x00\x01",
    "valid_header_then_4GiB": hole(32) + NPY_SEEDS["f4_2x3"],
    # shape (1, 2^28) with no data, then a 2^30-byte hole: exactly the declared 1 GiB, so only the
    # memory limit stands between the header and the allocation.
    "huge_shape_hole_matches": hole(30) + b"\x01" + b"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 268435456), }" +
                               b"\xff",
    "huge_declared_tiny_file": b"\x00" + b"\x01" +
                               b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000, 1000), }" +
                               b"\xff" + floats(1),
}


def write_all(directory, items):
    os.makedirs(directory, exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(items)} inputs to {directory}")


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    write_all(os.path.join(here, "corpus", "fuzz_problem"), SEEDS)
    write_all(os.path.join(here, "corpus", "fuzz_attributes"), ATTRIBUTE_SEEDS)
    write_all(os.path.join(here, "corpus", "fuzz_npy"), NPY_SEEDS)
    write_all(os.path.join(here, "corpus", "fuzz_npy_file"), NPY_FILE_SEEDS)
    write_all(os.path.join(here, "..", "tests", "regressions", "npy_file"), NPY_FILE_REGRESSIONS)
    write_all(os.path.join(here, "..", "tests", "regressions", "problem"), REGRESSIONS)
