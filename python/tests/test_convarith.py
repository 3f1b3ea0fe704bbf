"""The convarith package against NumPy loops (reference.py, float64) and bad inputs."""

import threading

import numpy as np
import pytest

import convarith
import reference as ref

try:
    import ml_dtypes
except ImportError:  # bf16 is optional
    ml_dtypes = None

RNG = np.random.default_rng(16)


def rand(*shape, dtype=np.float32):
    return RNG.uniform(-1.0, 1.0, size=shape).astype(dtype)


def close(got, want, rtol=1e-5):
    got = np.asarray(got, np.float64)
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale)


def channels_last(a):
    """The same logical (N, C, spatial...) array stored channels last."""
    n = a.ndim
    return np.ascontiguousarray(a.transpose([0] + list(range(2, n)) + [1])).transpose([0, n - 1] + list(range(1, n - 1)))


# ---- shape() -----------------------------------------------------------------------------------------


def test_shape_done_criterion():
    info = convarith.shape("conv", (1, 3, 224, 224), (64, 3, 7, 7), strides=(2, 2), pads=(3, 3, 3, 3))
    assert info.output_shape == (1, 64, 112, 112)
    assert info.weight_shape == (64, 3, 7, 7)
    assert info.pads == (3, 3, 3, 3)
    assert [a.relationship for a in info.axes] == [6, 6]
    assert info.axes[0].formula.endswith("= 112")
    assert "224" in info.axes[0].formula and "7" in info.axes[0].formula
    text = str(info)
    assert "1x64x112x112" in text and "relationship 6" in text


@pytest.mark.parametrize("op,x,w,attrs,out,rel", [
    ("conv", (1, 1, 5, 5), (1, 1, 3, 3), {}, (1, 1, 3, 3), 1),
    ("conv", (1, 1, 5, 5), (1, 1, 3, 3), {"pads": (1, 1, 1, 1)}, (1, 1, 5, 5), 3),
    ("conv", (1, 1, 5, 5), (1, 1, 3, 3), {"pads": (2, 2, 2, 2)}, (1, 1, 7, 7), 4),
    ("conv", (1, 1, 5, 5), (1, 1, 3, 3), {"strides": (2, 2)}, (1, 1, 2, 2), 5),
    ("conv", (1, 1, 7, 7), (1, 1, 3, 3), {"dilations": (2, 2)}, (1, 1, 3, 3), 15),
    ("conv_transpose", (1, 1, 3, 3), (1, 1, 3, 3), {"strides": (2, 2), "pads": (1, 1, 1, 1),
                                                    "output_padding": (1, 1)}, (1, 1, 6, 6), 14),
    ("max_pool", (1, 1, 5, 5), None, {"kernel_shape": (3, 3), "strides": (2, 2)}, (1, 1, 2, 2), 7),
])
def test_shape_relationships(op, x, w, attrs, out, rel):
    info = convarith.shape(op, x, w, **attrs)
    assert info.output_shape == out
    assert all(a.relationship == rel for a in info.axes), info.axes


def test_shape_onnx_op_names_and_pytorch_attribute_names_agree():
    a = convarith.shape("Conv", (1, 4, 10, 10), (8, 2, 3, 3), strides=(2, 2), pads=(1, 1, 1, 1), group=2)
    b = convarith.shape("conv", (1, 4, 10, 10), (8, 2, 3, 3), stride=2, padding=1, groups=2)
    assert a == b
    assert a.output_shape == (1, 8, 5, 5)
    c = convarith.shape("AveragePool", (1, 4, 10, 10), kernel_shape=(3, 3), auto_pad="SAME_UPPER", strides=(2, 2))
    assert c.output_shape == (1, 4, 5, 5) and c.auto_pad == "SAME_UPPER"


def test_shape_invalid_layer_raises_the_librarys_message():
    with pytest.raises(ValueError, match=r"effective kernel 7 .*k=7.*padded input 4"):
        convarith.shape("conv", (1, 3, 4, 4), (64, 3, 7, 7))
    with pytest.raises(ValueError, match=r"strides .* expected 2"):
        convarith.shape("conv", (1, 3, 8, 8), (4, 3, 3, 3), strides=(1,))
    with pytest.raises(ValueError, match="p_lo=-1"):
        convarith.shape("conv", (1, 3, 8, 8), (4, 3, 3, 3), pads=(-1, 0, 0, 0))
    with pytest.raises(ValueError, match="ceil_mode does not apply to conv"):
        convarith.shape("conv", (1, 3, 8, 8), (4, 3, 3, 3), ceil_mode=True)
    with pytest.raises(ValueError, match=r"is not C=3"):
        convarith.shape("conv", (1, 3, 8, 8), (4, 2, 3, 3))
    with pytest.raises(ValueError, match="output padding|output_padding"):
        convarith.shape("conv_transpose", (1, 1, 3, 3), (1, 1, 3, 3), strides=(2, 2), output_padding=(2, 2))
    with pytest.raises(ValueError, match="unknown operation"):
        convarith.shape("deconv", (1, 1, 3, 3))


def test_shape_python_type_errors():
    with pytest.raises(TypeError, match="unknown attribute 'stides'"):
        convarith.shape("conv", (1, 1, 5, 5), (1, 1, 3, 3), stides=(2, 2))
    with pytest.raises(TypeError, match="name the same attribute"):
        convarith.shape("conv", (1, 1, 5, 5), (1, 1, 3, 3), stride=2, strides=(2, 2))
    with pytest.raises(TypeError, match="expected an integer"):
        convarith.shape("conv", (1, 1, 5, 5), (1, 1, 3, 3), strides=(2.5, 2))


def test_suggest_api_matches_shape_errors():
    with pytest.raises(ValueError, match="exceeds padded input 4"):
        convarith.shape("conv", (1, 1, 2, 2), (1, 1, 3, 3), dilations=(2, 2), pads=(1, 1, 1, 1))
    f = convarith.suggest("conv", (1, 1, 2, 2), (1, 1, 3, 3), dilations=(2, 2), pads=(1, 1, 1, 1))
    assert len(f) == 2 and not f[0].valid
    assert f[0].padding == (1, 2) and f[0].min_input == 3 and f[0].max_kernel == 2 and f[0].max_dilation == 1
    assert f[0].changes[0] == "pads 1+1 -> 1+2 (the padded input must reach the effective kernel 5, short by 1)"
    ok = convarith.suggest("conv_transpose", (1, 1, 3, 3), (1, 1, 3, 3), strides=(2, 2))
    assert ok[0].valid and ok[0].output == 7 and ok[0].output_shape_range == (1, 8) and ok[0].changes == ()


# ---- plans and the functional forms against NumPy -----------------------------------------------------------

CONV_CASES = [
    # x shape, w shape, attributes (ONNX names), group
    ((2, 3, 9, 9), (4, 3, 3, 3), dict(strides=(2, 2), pads=(1, 1, 1, 1)), 1),
    ((1, 4, 8, 7), (6, 2, 3, 2), dict(pads=(0, 1, 2, 0), dilations=(2, 1)), 2),
    ((1, 4, 6, 6), (4, 1, 3, 3), dict(pads=(1, 1, 1, 1)), 4),  # depthwise
    ((2, 2, 11), (3, 2, 4), dict(strides=(3,), pads=(2, 1)), 1),  # rank 1
    ((1, 2, 4, 5, 5), (3, 2, 2, 3, 3), dict(strides=(1, 2, 2), pads=(1, 0, 1, 0, 1, 1)), 1),  # rank 3
]


@pytest.mark.parametrize("device", ["cpu", "emulated"])
@pytest.mark.parametrize("xs,ws,attrs,group", CONV_CASES)
def test_conv_matches_numpy(device, xs, ws, attrs, group):
    x, w, b = rand(*xs), rand(*ws), rand(ws[0])
    want = ref.conv(x, w, b, group=group, **attrs)
    plan = convarith.Plan("conv", x, w, group=group, device=device, **attrs)
    assert plan.output_shape == want.shape
    close(plan.run(x, w, b), want)
    # The plan is reusable with new data, and writes into a given output.
    x2 = rand(*xs)
    out = np.full(want.shape, np.nan, np.float32)
    res = plan.run(x2, w, None, out=out)
    assert res is out
    close(out, ref.conv(x2, w, None, group=group, **attrs))


def test_conv_functional_pytorch_names():
    x, w, b = rand(2, 4, 10, 10), rand(6, 2, 3, 3), rand(6)
    want = ref.conv(x, w, b, strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 1), group=2)
    close(convarith.conv(x, w, b, stride=2, padding=1, groups=2), want)
    close(convarith.conv(x, w, b, 2, 1, 1, 2), want)  # positional, in PyTorch's order
    close(convarith.conv(x, w, b, strides=(2, 2), pads=(1, 1, 1, 1), group=2), want)
    with pytest.raises(TypeError, match="name the same attribute"):
        convarith.conv(x, w, b, stride=2, strides=(2, 2), groups=2)
    # padding='same' keeps the size at stride 1.
    assert convarith.conv(x, rand(6, 4, 3, 3), padding="same").shape == (2, 6, 10, 10)


TRANSPOSE_CASES = [
    ((1, 2, 3, 3), (2, 3, 3, 3), dict(strides=(2, 2), pads=(1, 1, 1, 1), output_padding=(1, 1)), 1),
    ((2, 4, 4, 5), (4, 1, 2, 3), dict(strides=(2, 1), pads=(0, 1, 0, 0), dilations=(1, 2)), 2),
    ((1, 3, 6), (3, 2, 3), dict(strides=(3,), output_padding=(2,)), 1),
]


@pytest.mark.parametrize("device", ["cpu", "emulated"])
@pytest.mark.parametrize("xs,ws,attrs,group", TRANSPOSE_CASES)
def test_conv_transpose_matches_numpy(device, xs, ws, attrs, group):
    x, w, b = rand(*xs), rand(*ws), rand(ws[1] * group)
    want = ref.conv_transpose(x, w, b, group=group, **attrs)
    plan = convarith.Plan("conv_transpose", x, w, group=group, device=device, **attrs)
    assert plan.output_shape == want.shape
    close(plan.run(x, w, b), want)


def test_conv_transpose_functional():
    x, w = rand(1, 2, 4, 4), rand(2, 3, 3, 3)
    want = ref.conv_transpose(x, w, None, strides=(2, 2), pads=(1, 1, 1, 1), output_padding=(1, 1))
    close(convarith.conv_transpose(x, w, stride=2, padding=1, output_padding=1), want)
    got = convarith.conv_transpose(x, w, strides=(2, 2), output_shape=(8, 8))
    assert got.shape == (1, 3, 8, 8)


POOL_CASES = [
    (kind,) + case
    for case in [
        ((2, 3, 7, 7), (3, 3), dict(strides=(2, 2)), False, False),
        ((1, 2, 7, 6), (3, 2), dict(strides=(2, 2), pads=(1, 0, 1, 1)), True, False),
        ((1, 2, 7, 6), (3, 3), dict(strides=(2, 2), pads=(1, 1, 1, 1)), True, True),
    ]
    for kind in ("max", "avg")
] + [("max", (1, 2, 9), (3,), dict(strides=(2,), dilations=(2,)), False, False)]  # AveragePool has no dilations


@pytest.mark.parametrize("device", ["cpu", "emulated"])
@pytest.mark.parametrize("kind,xs,kernel,attrs,ceil,include_pad", POOL_CASES)
def test_pool_matches_numpy(device, kind, xs, kernel, attrs, ceil, include_pad):
    x = rand(*xs)
    extra = {"count_include_pad": include_pad} if kind == "avg" else {}
    want = ref.pool(kind, x, kernel, ceil_mode=ceil, count_include_pad=include_pad, **attrs)
    plan = convarith.Plan(kind + "_pool", x, kernel_shape=kernel, ceil_mode=ceil, device=device, **attrs, **extra)
    assert plan.output_shape == want.shape
    close(plan.run(x), want)


def test_pool_functional_pytorch_defaults():
    x = rand(1, 2, 8, 8)
    close(convarith.max_pool(x, 2), ref.pool("max", x, (2, 2), strides=(2, 2)))  # stride defaults to the window
    close(convarith.max_pool(x, kernel_shape=(2, 2)), ref.pool("max", x, (2, 2)))  # ONNX: strides default to 1
    # PyTorch's avg_pool default counts the padding; ONNX's does not.
    close(convarith.avg_pool(x, 3, 2, 1), ref.pool("avg", x, (3, 3), strides=(2, 2), pads=(1,) * 4,
                                                   count_include_pad=True))
    close(convarith.avg_pool(x, 3, 2, 1, count_include_pad=False),
          ref.pool("avg", x, (3, 3), strides=(2, 2), pads=(1,) * 4))


# ---- formats ----------------------------------------------------------------------------------------------


def test_channels_last_is_read_from_strides():
    x, w = rand(2, 3, 8, 8), rand(5, 3, 3, 3)
    want = ref.conv(x, w, None, pads=(1, 1, 1, 1))
    xl = channels_last(x)
    plan = convarith.Plan("conv", xl, w, pads=(1, 1, 1, 1))
    assert plan.tensor("x")["layout"] == "NHWC" and plan.tensor("w")["layout"] == "NCHW"
    y = plan.run(xl, w)
    assert y.shape == want.shape
    assert y.strides == channels_last(np.empty(want.shape, np.float32)).strides  # the output is channels last too
    close(y, want)
    # Channels-last weights (KRSC) as well.
    wl = channels_last(w)
    plan2 = convarith.Plan("conv", xl, wl, pads=(1, 1, 1, 1))
    assert plan2.tensor("w")["layout"] == "NHWC"
    close(plan2.run(xl, wl), want)
    # A channels-last plan refuses an NCHW array, naming both strides.
    with pytest.raises(ValueError, match=r"x: strides \(192, 64, 8, 1\).*NHWC strides \(192, 1, 24, 3\)"):
        plan.run(x, w)


def test_f16():
    x, w, b = rand(1, 3, 6, 6), rand(4, 3, 3, 3), rand(4)
    xh, wh, bh = x.astype(np.float16), w.astype(np.float16), b.astype(np.float16)
    want = ref.conv(xh, wh, bh, pads=(1, 1, 1, 1))
    y = convarith.conv(xh, wh, bh, padding=1)
    assert y.dtype == np.float16
    close(y, want, rtol=3e-3)
    # An f32 bias on an f16 plan is allowed when the plan is made with it.
    plan = convarith.Plan("conv", xh, wh, bias=b, pads=(1, 1, 1, 1))
    close(plan.run(xh, wh, b), ref.conv(xh, wh, b, pads=(1, 1, 1, 1)), rtol=3e-3)


@pytest.mark.skipif(ml_dtypes is None, reason="ml_dtypes is not installed (bf16 arrays need it)")
def test_bf16_with_ml_dtypes():
    bf16 = ml_dtypes.bfloat16
    x, w = rand(1, 3, 6, 6).astype(bf16), rand(4, 3, 3, 3).astype(bf16)
    y = convarith.conv(x, w, padding=1)
    assert y.dtype == bf16
    close(y.astype(np.float32), ref.conv(x.astype(np.float32), w.astype(np.float32), pads=(1, 1, 1, 1)),
          rtol=2e-2)
    with pytest.raises(TypeError, match="uint16 is not a convarith dtype"):
        convarith.conv(x.view(np.uint16), w.view(np.uint16))


def test_epilogue_relu_and_residual():
    x, w, b = rand(2, 3, 6, 6), rand(4, 3, 3, 3), rand(4)
    z = rand(2, 4, 6, 6)
    lin = ref.conv(x, w, b, pads=(1, 1, 1, 1)) - b.reshape(1, 4, 1, 1)
    want = np.maximum(0.5 * lin + b.reshape(1, 4, 1, 1) + 2.0 * z, 0)
    y = convarith.conv(x, w, b, padding=1, activation="relu", alpha=0.5, beta=2.0, z=z)
    close(y, want)
    assert (y >= 0).all() and (y == 0).any()


# ---- bad inputs -------------------------------------------------------------------------------------------


@pytest.fixture
def plan_and_arrays():
    x, w = rand(1, 2, 5, 5), rand(3, 2, 3, 3)
    return convarith.Plan("conv", x, w), x, w


def test_wrong_dtype_says_what_was_expected(plan_and_arrays):
    plan, x, w = plan_and_arrays
    with pytest.raises(TypeError, match="x: dtype float64 is not the plan's f32"):
        plan.run(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="w: dtype float16 is not the plan's f32"):
        plan.run(x, w.astype(np.float16))
    with pytest.raises(TypeError, match="out: dtype int32 is not the plan's f32"):
        plan.run(x, w, out=np.zeros((1, 3, 3, 3), np.int32))
    with pytest.raises(TypeError, match="not a convarith dtype"):
        convarith.Plan("conv", x.astype(np.float64), w)


def test_wrong_shape_and_strides(plan_and_arrays):
    plan, x, w = plan_and_arrays
    with pytest.raises(ValueError, match=r"x: shape \(1, 2, 6, 5\) is not the plan's \(1, 2, 5, 5\)"):
        plan.run(rand(1, 2, 6, 5), w)
    with pytest.raises(ValueError, match=r"out: shape \(1, 3, 4, 3\) is not the plan's \(1, 3, 3, 3\)"):
        plan.run(x, w, out=np.zeros((1, 3, 4, 3), np.float32))
    strided = rand(1, 2, 5, 10)[:, :, :, ::2]
    with pytest.raises(ValueError, match=r"x: strides \(100, 50, 10, 2\).*\(50, 25, 5, 1\)"):
        plan.run(strided, w)
    with pytest.raises(ValueError, match="neither dense NCHW"):
        convarith.Plan("conv", strided, w)
    with pytest.raises(ValueError, match="bias: shape"):
        plan.run(x, w, rand(4))


def test_missing_or_extra_tensors(plan_and_arrays):
    plan, x, w = plan_and_arrays
    with pytest.raises(ValueError, match="needs the weights"):
        plan.run(x)
    with pytest.raises(ValueError, match="beta=0"):
        plan.run(x, w, z=rand(1, 3, 3, 3))
    pool = convarith.Plan("max_pool", x, kernel_shape=(2, 2))
    with pytest.raises(ValueError, match="takes no weights"):
        pool.run(x, w)
    res = convarith.Plan("conv", x, w, beta=1.0)
    with pytest.raises(ValueError, match="reads the residual z"):
        res.run(x, w)
    with pytest.raises(TypeError, match="x: expected an array .* got list"):
        plan.run(x.tolist(), w)
    with pytest.raises(TypeError, match="got str"):
        plan.run("x", w)


def test_read_only_or_overlapping_output_is_refused_and_nothing_written():
    x, w = rand(1, 3, 4, 4), rand(3, 3, 1, 1)
    plan = convarith.Plan("conv", x, w)
    ro = np.zeros((1, 3, 4, 4), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        plan.run(x, w, out=ro)
    before = x.copy()
    with pytest.raises(ValueError, match="overlap"):
        plan.run(x, w, out=x)  # the library's own check: an output may not overlap an input
    np.testing.assert_array_equal(x, before)


def test_devices_and_algorithms():
    x, w = rand(1, 2, 5, 5), rand(3, 2, 3, 3)
    with pytest.raises(ValueError, match="tpu"):
        convarith.Plan("conv", x, w, device="tpu")
    with pytest.raises(convarith.NotSupportedError):
        convarith.Plan("conv", x, w, algorithm="cpu_pool")
    assert issubclass(convarith.NotSupportedError, ValueError)
    with pytest.raises(ValueError, match="no_such_row|not|unknown"):
        convarith.Plan("conv", x, w, algorithm="no_such_row")
    if convarith.cuda_device_count() == 0:
        with pytest.raises((convarith.DeviceError, convarith.NotSupportedError)):
            convarith.Plan("conv", x, w, device="cuda")
    names = {(r["device"], r["name"]) for r in convarith.algorithms()}
    assert ("cpu", "cpu_gemm") in names
    assert any(d == "emulated" for d, _ in names)
    plan = convarith.Plan("conv", x, w, algorithm="cpu_gemm")
    assert plan.algorithm == "cpu_gemm" and plan.device == "cpu" and plan.deterministic


@pytest.mark.parametrize("device", ["cpu", "emulated"])
def test_algorithm_tune_times_the_rows_and_caches_the_winner(device, tmp_path):
    x, w, b = rand(1, 2, 5, 6), rand(3, 2, 3, 3), rand(3)
    want = ref.conv(x, w, b, pads=(1, 1, 1, 1))
    cache = tmp_path / "tune.cache"
    plan = convarith.Plan("conv", x, w, pads=(1, 1, 1, 1), device=device, algorithm="tune", tune_cache=cache)
    assert plan.tuned and plan.requested_algorithm == "tune" and plan.warnings == []
    t = plan.tuning
    assert t["source"] in ("measured", "memory")
    rows = {r["name"] for r in convarith.algorithms(device)}
    assert plan.algorithm in rows and plan.auto_algorithm in rows
    if t["source"] == "measured":
        assert t["timings"] and all(r["median_us"] > 0 and not r["error"] for r in t["timings"])
        assert plan.algorithm == min(t["timings"], key=lambda r: r["median_us"])["algorithm"]
    close(plan.run(x, w, b), want)
    assert cache.read_text().startswith("convarith-tune-cache 1\n")
    # Made again: a cache hit (this process's memory), nothing timed.
    again = convarith.Plan("conv", x, w, pads=(1, 1, 1, 1), device=device, algorithm="tune", tune_cache=str(cache))
    assert again.tuned and again.tuning["source"] in ("memory", "file") and again.tuning["timings"] == []
    assert again.algorithm == plan.algorithm
    close(again.run(x, w, b), want)


def test_tune_cache_warnings_are_runtime_warnings(tmp_path):
    x, w = rand(1, 2, 5, 5), rand(3, 2, 3, 3)
    bad = tmp_path / "bad.cache"
    bad.write_text("not a cache\n")
    with pytest.warns(RuntimeWarning, match="corrupt or truncated"):
        plan = convarith.Plan("conv", x, w, strides=(2, 2), algorithm="tune", tune_cache=bad)
    assert plan.tuned and any("corrupt" in m for m in plan.warnings)
    close(plan.run(x, w, None), ref.conv(x, w, None, strides=(2, 2)))
    with pytest.warns(RuntimeWarning, match="not written"):
        convarith.Plan("conv", x, w, strides=(2, 1), algorithm="tune", tune_cache=tmp_path / "no" / "dir" / "c")
    with pytest.raises(ValueError, match="tune_cache is for algorithm='tune'"):
        convarith.Plan("conv", x, w, tune_cache=bad)
    assert convarith.Plan("conv", x, w).auto_algorithm == "cpu_gemm"


@pytest.mark.parametrize("algorithm", ["cpu_gemm", "cpu_winograd", "auto"])
def test_constant_weights_are_read_once_and_give_the_same_bits(algorithm):
    x, b = rand(2, 6, 9, 8), rand(5)
    for w in (rand(5, 6, 3, 3), channels_last(rand(5, 6, 3, 3)), rand(5, 6, 3, 3, dtype=np.float16)):
        xx = x.astype(w.dtype)
        plain = convarith.Plan("conv", xx, w, pads=(1, 1, 1, 1), algorithm=algorithm)
        const = convarith.Plan("conv", xx, w, pads=(1, 1, 1, 1), algorithm=algorithm, constant_weights=True)
        assert const.constant_weights and not plain.constant_weights
        assert const.constant_weight_bytes >= w.nbytes and plain.constant_weight_bytes == 0
        want = plain.run(xx, w, b.astype(w.dtype))
        w_before = w.copy()
        w[...] = np.nan  # read by the plan's constructor only
        got = const.run(xx, None, b.astype(w.dtype))
        assert got.tobytes() == want.tobytes()
        assert np.isnan(const.run(xx, w, b.astype(w.dtype))).all()  # a given w is used
        w[...] = w_before
    with pytest.raises(ValueError, match="needs the weights w"):
        plain.run(xx, None, None)
    with pytest.raises(ValueError, match="constant_weights=True needs the weights w as an array"):
        convarith.Plan("conv", (1, 6, 9, 8), (5, 6, 3, 3), constant_weights=True)


def test_concurrent_runs_of_one_plan():
    # The plan's host workspace comes from a pool kept between runs: concurrent runs each take their own, and a
    # reused (dirty) workspace gives the same bits as a fresh one.
    x, w = rand(2, 8, 24, 24), rand(8, 8, 3, 3)
    plan = convarith.Plan("conv", x, w, pads=(1, 1, 1, 1))
    assert plan.workspace_bytes > 0
    want = plan.run(x, w)
    outs = [np.empty_like(want) for _ in range(6)]

    def run_thrice(o):
        for _ in range(3):
            o.fill(np.nan)
            plan.run(x, w, None, None, o)

    threads = [threading.Thread(target=run_thrice, args=(o,)) for o in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for o in outs:
        np.testing.assert_array_equal(o, want)


def test_reused_workspace_gives_the_same_bits():
    # Rows that use their workspace as an accumulator (scatter's f32 sums) clear it themselves: the second run on
    # the pooled, dirty workspace equals the first.
    x, w = rand(1, 4, 5, 6), rand(4, 3, 3, 3)
    for device, algorithm in (("emulated", "scatter"), ("cpu", "auto")):
        plan = convarith.Plan("conv_transpose", x, w, device=device, algorithm=algorithm, strides=(2, 2))
        assert plan.workspace_bytes > 0, (device, algorithm)
        first = plan.run(x, w)
        second = plan.run(x, w)
        np.testing.assert_array_equal(second, first)


def test_odd_sizes_are_errors_not_crashes():
    with pytest.raises(ValueError, match="does not fit in a 64-bit integer"):
        convarith.shape("conv", (1, 3, 2**70, 4), (4, 3, 3, 3))
    with pytest.raises(ValueError, match="overflows 64 bits"):
        convarith.shape("conv", (2**40, 2**40, 2**20, 4), (4, 2**40, 3, 3))
    with pytest.raises(ValueError, match="i=-5"):
        convarith.shape("conv", (1, 3, -5, 4), (4, 3, 3, 3))
    with pytest.raises(ValueError, match="auto_pad 'bogus'"):
        convarith.shape("conv", (1, 3, 5, 5), (4, 3, 3, 3), auto_pad="bogus")
    # An empty batch is a valid no-op.
    assert convarith.conv(np.zeros((0, 3, 5, 5), np.float32), rand(4, 3, 3, 3)).shape == (0, 4, 3, 3)


def test_plan_from_shapes_with_dtype_and_layout():
    plan = convarith.Plan("conv", (1, 3, 5, 5), (4, 3, 3, 3), dtype=np.float16, layout="NHWC", pads=(1, 1, 1, 1))
    assert plan.tensor("x")["layout"] == "NHWC" and plan.tensor("y")["dtype"] == "f16"
    x, w = rand(1, 3, 5, 5, dtype=np.float16), rand(4, 3, 3, 3, dtype=np.float16)
    y = plan.run(channels_last(x), channels_last(w))
    assert y.dtype == np.float16 and y.shape == (1, 4, 5, 5)
    close(y, ref.conv(x, w, None, pads=(1, 1, 1, 1)), rtol=3e-3)
