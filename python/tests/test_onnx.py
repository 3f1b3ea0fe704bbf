"""python -m convarith.onnx on the real models the onnx wheel ships (onnx/backend/test/data: the 'light' model-zoo
architectures, whose big weights are stripped to ConstantOfShape, and PyTorch-exported single layers with their
real weights, inputs and outputs), and on small generated models: an invalid node's explanation and a U-Net-like
network at an odd input size (the skip connection that disagrees)."""

import glob
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the ONNX checker's tests need the onnx package (CI installs it)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import convarith  # noqa: E402
from convarith import onnx as cxo  # noqa: E402
from convarith.onnx.__main__ import main as cli_main  # noqa: E402

DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
LIGHT = os.path.join(DATA, "light")


def light(name):
    path = os.path.join(LIGHT, f"light_{name}.onnx")
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: the onnx wheel no longer ships its light models")
    return path


def ort():
    return pytest.importorskip("onnxruntime", reason="--run needs onnxruntime (CI installs it)")


# ---- the light model-zoo architectures: every conv and pool node validated -----------------------------------

# (model, Conv, MaxPool, AveragePool, GlobalAveragePool) node counts, as in the model files.
LIGHT_MODELS = [
    ("bvlc_alexnet", 5, 3, 0, 0), ("densenet121", 121, 1, 3, 1), ("inception_v1", 57, 13, 1, 0),
    ("inception_v2", 69, 5, 8, 0), ("resnet50", 53, 1, 1, 0), ("shufflenet", 49, 1, 4, 0),
    ("squeezenet", 26, 3, 0, 1), ("vgg19", 16, 5, 0, 0), ("zfnet512", 5, 3, 0, 0),
]


@pytest.mark.parametrize("name,conv,maxpool,avgpool,gap", LIGHT_MODELS)
def test_light_models_every_node_valid(name, conv, maxpool, avgpool, gap):
    g = cxo.Graph(light(name))
    r = cxo.check_model(g)
    by_op = {}
    for c in r.checks:
        by_op[c.op_type] = by_op.get(c.op_type, 0) + 1
    assert by_op == {k: v for k, v in (("Conv", conv), ("MaxPool", maxpool), ("AveragePool", avgpool),
                                       ("GlobalAveragePool", gap)) if v}
    assert r.counts() == {"ok": len(r.checks)}, [(c.name, c.status, c.error) for c in r.checks if c.status != "ok"]
    assert not r.conflicts
    # Every output shape convarith computes equals ONNX's own shape inference.
    assert all(c.onnx_shape == c.info.output_shape for c in r.checks)
    assert r.stripped, "the light models ship their big weights as ConstantOfShape"
    assert r.ok


def test_resnet50_numbers_and_relationships():
    r = cxo.check_model(cxo.Graph(light("resnet50")))
    first = r.checks[0]
    assert (first.op_type, first.x_shape, first.w_shape) == ("Conv", (1, 3, 224, 224), (64, 3, 7, 7))
    assert first.info.output_shape == (1, 64, 112, 112)
    assert [a.relationship for a in first.info.axes] == [6, 6]  # zero padding 3, stride 2
    assert first.info.axes[0].formula == "o = floor((i + 2p - k) / s) + 1 = floor((224 + 2*3 - 7) / 2) + 1 = 112"
    pool = [c for c in r.checks if c.op_type == "MaxPool"][0]
    assert pool.info.output_shape == (1, 64, 56, 56)
    last = [c for c in r.checks if c.op_type == "AveragePool"][0]
    assert last.x_shape == (1, 2048, 7, 7) and last.info.output_shape == (1, 2048, 1, 1)
    assert [a.relationship for a in last.info.axes] == [7, 7]  # the paper's pooling relationship
    rels = {a.relationship for c in r.checks for a in c.info.axes}
    assert rels == {1, 3, 5, 6, 7, 0}  # 1x1, 3x3 same, strided 1x1, 7x7/2, pooling; MaxPool 3x3/2 pad 1: general


def test_resnet50_sweep_smallest_width():
    g = cxo.Graph(light("resnet50"))
    s = cxo.sweep_axis(g, axis=3, sizes=range(150, 230))
    # conv1 7x7/2 p3, maxpool 3x3/2 p1, three stride-2 stages: width w -> ceil(w/32); the final 7x7 average pool
    # needs 7, i.e. w >= 193. The Sum joins (residual adds) agree at every size: both branches stride alike.
    assert s["smallest_valid"] == 193
    assert s["invalid"] == "150-192" and s["valid"] == "193-229"
    assert s["disagree_count"] == 0
    assert "AveragePool" in s["example_invalid"] and "exceeds padded input 6" in s["example_invalid"]


def test_densenet_text_report():
    out = io.StringIO()
    rc = cli_main([light("densenet121"), "--quiet"], out=out)
    text = out.getvalue()
    assert rc == 0, text
    assert "126 conv/pool nodes: 126 ok" in text
    assert "836 weight tensors are stripped (ConstantOfShape filled with 0.02)" in text


def test_squeezenet_run_every_node_against_onnxruntime(tmp_path):
    ort()
    js = tmp_path / "squeezenet.json"
    out = io.StringIO()
    rc = cli_main([light("squeezenet"), "--run", "--json", str(js)], out=out)
    text = out.getvalue()
    assert rc == 0, text
    rep = json.loads(js.read_text())
    assert rep["counts"] == {"ok": 30}
    assert len(rep["run"]) == 30 and {r["status"] for r in rep["run"]} == {"PASS"}
    conv = [r for r in rep["run"] if r["op_type"] == "Conv"]
    assert len(conv) == 26
    # Generated weights (the light model's are stripped): real-sized activations, errors far inside the bound.
    assert all(r["max_abs_ort"] > 0.1 for r in conv)
    assert all(r["error_over_bound"] < 0.05 for r in conv)
    assert all(r["max_abs_error"] == 0 for r in rep["run"] if r["op_type"] == "MaxPool")
    assert "replaced by deterministic random initializers" in text
    assert "--run: 30 PASS" in text


def test_squeezenet_bench_table():
    ort()
    out = io.StringIO()
    rc = cli_main([light("squeezenet"), "--bench", "--repeat", "1"], out=out)
    text = out.getvalue()
    assert rc == 0, text
    rows = [line.split() for line in text.splitlines()
            if line.strip().endswith(("cpu_gemm", "cpu_winograd", "cpu_pool"))]
    assert len(rows) == 30  # 26 Conv, 3 MaxPool, 1 GlobalAveragePool, each timed on both
    assert all(float(r[-4]) > 0 and float(r[-3]) > 0 for r in rows)  # convarith ms, ORT ms
    total = [line for line in text.splitlines() if line.startswith("--bench: total convarith")]
    assert len(total) == 1 and "ONNX Runtime" in total[0]


# ---- PyTorch-exported layers with their real weights --------------------------------------------------------

CONVERTED = sorted(d for d in glob.glob(os.path.join(DATA, "pytorch-converted", "test_*"))
                   if os.path.basename(d).split("_")[1].startswith(("Conv", "MaxPool", "AvgPool")))


def test_converted_layers_exist():
    names = {os.path.basename(d) for d in CONVERTED}
    assert {"test_Conv2d_dilated", "test_ConvTranspose2d", "test_MaxPool2d_stride_padding_dilation",
            "test_AvgPool3d_stride", "test_Conv1d_groups"} <= names
    assert len(CONVERTED) >= 30


@pytest.mark.parametrize("case", CONVERTED, ids=os.path.basename)
def test_converted_layers_against_pytorch_outputs(case):
    """Each layer's real input and PyTorch's output ship with it: convarith on the node vs that output."""
    g = cxo.Graph(os.path.join(case, "model.onnx"))
    r = cxo.check_model(g)
    assert r.counts() == {"ok": len(r.checks)} and r.checks, [(c.name, c.error) for c in r.checks]
    inputs = {}
    for i, inp in enumerate(g.inputs):
        t = onnx.TensorProto()
        with open(os.path.join(case, "test_data_set_0", f"input_{i}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        inputs[inp.name] = numpy_helper.to_array(t)
    want = onnx.TensorProto()
    with open(os.path.join(case, "test_data_set_0", "output_0.pb"), "rb") as f:
        want.ParseFromString(f.read())
    want = numpy_helper.to_array(want)
    if len(r.checks) == 1 and g.nodes[r.checks[0].index].output[0] == g.model.graph.output[0].name:
        c = r.checks[0]
        x = inputs[g.nodes[c.index].input[0]]
        node = g.nodes[c.index]
        w = b = None
        if c.op in ("conv", "conv_transpose"):
            w = g.constant(node.input[1])
            b = g.constant(node.input[2]) if len(node.input) > 2 else None
        got = convarith.Plan(c.op, x, w, bias=b, **c.attrs).run(x, w, b)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(want).max())))
    if "onnxruntime" in sys.modules or _has_ort():
        notes = []
        rows = cxo.run_nodes(g, g.model, r.checks, cxo.capture(g, g.model, r.checks, inputs, notes))
        assert {row["status"] for row in rows} == {"PASS"}, rows
        if "AvgPool" in case:  # exported at opset 6, whose AveragePool ONNX Runtime no longer has
            assert notes and "converted to opset 13" in notes[0]


def _has_ort():
    try:
        import onnxruntime  # noqa: F401
        return True
    except ImportError:
        return False


# ---- generated models -----------------------------------------------------------------------------------------


def _weights(name, shape, seed):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def unet(size, channels=4):
    """A two-level U-Net: conv, 2x2 max pool, conv, 2x2/2 transposed conv back up, Concat with the skip, conv."""
    c = channels
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["e1"], name="enc1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["e1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="down", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "w2"], ["e2"], name="enc2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("ConvTranspose", ["e2", "w3"], ["u1"], name="up", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Concat", ["r1", "u1"], ["cat"], name="skip", axis=1),
        helper.make_node("Conv", ["cat", "w4"], ["y"], name="head", kernel_shape=[1, 1]),
    ]
    inits = [_weights("w1", (c, 1, 3, 3), 1), _weights("w2", (2 * c, c, 3, 3), 2),
             _weights("w3", (2 * c, c, 2, 2), 3), _weights("w4", (1, 2 * c, 1, 1), 4)]
    graph = helper.make_graph(nodes, "unet", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_unet_odd_size_skip_connection(tmp_path):
    path = tmp_path / "unet33.onnx"
    onnx.save(unet(33), str(path))
    g = cxo.Graph(str(path))
    r = cxo.check_model(g)
    # Every conv/pool node is valid at 33; the join is not: 33 -> pool 16 -> up 32 against the skip's 33, so the
    # head after it has no input shape.
    assert r.counts() == {"ok": 4, "unknown": 1}
    assert [c.name for c in r.checks if c.status == "unknown"] == ["head"]
    up = [c for c in r.checks if c.name == "up"][0]
    assert up.info.output_shape == (1, 4, 32, 32)
    assert [a.relationship for a in up.info.axes] == [12, 12]
    assert len(r.conflicts) == 1
    d = r.conflicts[0]
    assert (d.name, d.op_type, d.branches) == ("skip", "Concat", 2)
    assert d.shapes == [(1, 4, 33, 33), (1, 4, 32, 32)]
    assert not r.ok
    s = cxo.sweep_axis(g, axis=(2, 3), sizes=range(1, 41))  # square inputs
    assert s["axes"] == [2, 3]
    assert s["smallest_valid"] == 2
    assert s["invalid"] == "1"  # width 1: the 2x2 pool's window exceeds it
    assert s["disagree_sizes"] == list(range(3, 41, 2))  # every odd width from 3
    assert s["valid_pattern"] == "every multiple of 2 from 2"
    assert s["example_disagree"]["size"] == 3
    assert "skip (Concat) inputs 1x4x3x3, 1x4x2x2" in s["example_disagree"]["where"]
    # One axis, the other at an even size: the same odd widths fail.
    even = cxo.Graph(str(path), {"x": (1, 1, 32, 32)})
    assert cxo.sweep_axis(even, axis=3, sizes=range(1, 41))["disagree_sizes"] == list(range(3, 41, 2))
    # At 33 on axis 2, no width can help: every one disagrees (or fails the pool).
    one = cxo.sweep_axis(g, axis=3, sizes=range(1, 13))
    assert one["smallest_valid"] is None and one["disagree"] == "2-12" and one["invalid"] == "1"
    # The command line: exit 1, the DISAGREE line and the sweep's summary.
    out = io.StringIO()
    rc = cli_main([str(path), "--sweep", "x:2,3=1-40"], out=out)
    text = out.getvalue()
    assert rc == 1
    assert "DISAGREE node 5 skip (Concat, skip connection): 1x4x33x33, 1x4x32x32: axis 2: sizes [33, 32] differ" \
        in text
    assert "smallest valid size: 2" in text
    assert "every node valid but branches disagree (19): 3, 5, 7" in text
    # At an even size the model is valid and runs.
    out = io.StringIO()
    rc = cli_main([str(path), "--input-shape", "x=1,1,32,32"] + (["--run"] if _has_ort() else []), out=out)
    assert rc == 0, out.getvalue()
    if _has_ort():
        assert "--run: 5 PASS" in out.getvalue()  # 3 Conv, MaxPool, ConvTranspose


def test_invalid_nodes_explained(tmp_path):
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], name="too_big", kernel_shape=[5, 5]),
        helper.make_node("ConvTranspose", ["x", "wt"], ["z"], name="unreachable", kernel_shape=[3, 3],
                         strides=[2, 2], output_shape=[10, 7]),
    ]
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
                              [_weights("w", (2, 2, 5, 5), 5), _weights("wt", (2, 2, 3, 3), 6)])
    path = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    r = cxo.check_model(cxo.Graph(str(path)))
    conv, tr = r.checks
    assert conv.status == "invalid" and "exceeds padded input 3" in conv.error
    assert conv.fixes[0].padding == (1, 1) and conv.fixes[0].min_input == 5 and conv.fixes[0].shortfall == 2
    assert conv.fixes[1].padding == (0, 1) and conv.fixes[1].min_input == 5
    assert tr.status == "invalid"
    assert tr.fixes[0].output_shape_range == (1, 8) and tr.fixes[0].output_padding_range == (0, 1)
    assert tr.fixes[1].valid and tr.fixes[1].output == 7
    js = tmp_path / "bad.json"
    out = io.StringIO()
    assert cli_main([str(path), "--json", str(js)], out=out) == 1
    text = out.getvalue()
    assert "axis H: nearest valid changes (any one): pads 0+0 -> 1+1 (the padded input must reach the effective " \
           "kernel 5, short by 2); input size i=3 -> 5" in text
    assert "axis H: nearest valid changes (any one): output_shape 10 -> one of 1..8 (reachable from i=3)" in text
    assert "axis H: legal output_padding 0..1; output_shape can reach 1..8" in text
    rep = json.loads(js.read_text())
    assert rep["counts"] == {"invalid": 2} and rep["ok"] is False
    assert rep["nodes"][0]["fixes"][0]["changes"][0].startswith("pads 0+0 -> 1+1")


def test_usage_errors(tmp_path, capsys):
    p = tmp_path / "m.onnx"
    onnx.save(unet(8), str(p))
    # The module entry point, once in a child process: a bad input name is exit 2 with the model's inputs.
    res = subprocess.run([sys.executable, "-m", "convarith.onnx", str(p), "--input-shape", "nope=1,1,8,8"],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "not an input of the model (inputs: x)" in res.stderr
    with pytest.raises(SystemExit) as e:
        cli_main([str(p), "--input-shape", "x=1,a"])
    assert e.value.code == 2 and "integers separated by commas" in capsys.readouterr().err
    assert cli_main([str(tmp_path / "missing.onnx")]) == 2
    assert "convarith.onnx:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main([str(p), "--sweep", "x:two"])
    assert "expected [INPUT:]AXIS[,AXIS...][=LO-HI]" in capsys.readouterr().err
    assert cli_main([str(p), "--sweep", "x:7"]) == 2
    assert "axis 7 is outside input 'x' of rank 4" in capsys.readouterr().err