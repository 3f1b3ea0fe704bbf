"""bench/ort_peer.py, ONNX Runtime as the bench's second CPU peer: on two tiny layers of the smoke suite (a 3x3
conv and a transposed conv) it writes the JSON the report reads, its one-node models compute the layer's
definition (checked against the tests' own fp64 reference, not against convarith), and its correctness check
rejects a wrong model and a wrong output so a wrong peer is never timed."""

import importlib.util
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime", reason="the ONNX Runtime peer needs onnxruntime (CI installs it)")
onnx = pytest.importorskip("onnx", reason="the ONNX Runtime peer needs onnx (CI installs it)")

import reference  # noqa: E402  (python/tests/reference.py: fp64, written without convarith)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "ort_peer.py")


def _load():
    spec = importlib.util.spec_from_file_location("ort_peer", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


peer = _load()


def smoke_row(row_id):
    (row,) = peer.load_layers(os.path.join(ROOT, "bench", "layers.csv"), "smoke", [row_id])
    return row


def opts(*extra):
    return peer.parser().parse_args(["--warmup", "1", "--reps", "3", *extra])


def fp64(row, x, w):
    """The smoke rows' definitions, their attributes written out from bench/layers.csv (not parsed by the script)."""
    if row["id"] == "S01":  # conv 3x3 4->8, stride 1, pad 1
        return reference.conv(x, w, strides=(1, 1), pads=(1, 1, 1, 1), dilations=(1, 1), group=1)
    assert row["id"] == "S03"  # transposed 4x4/2 p1, 8->4
    return reference.conv_transpose(x, w, strides=(2, 2), pads=(1, 1, 1, 1), dilations=(1, 1), group=1,
                                    output_padding=(0, 0))


def test_two_tiny_layers_write_the_json_the_report_reads(tmp_path):
    out = tmp_path / "ort.json"
    p = subprocess.run([sys.executable, SCRIPT, "--suite", "smoke", "--only", "S01,S03", "--warmup", "2", "--reps",
                        "3", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    data = json.loads(out.read_text())
    assert data["schema"] == "convarith-ort-peer-1"
    env = data["environment"]
    with open("/proc/cpuinfo") as f:
        cpuinfo = f.read()
    m = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M)
    assert env["cpu_model"] == (m.group(1).strip() if m else env["cpu_model"])
    flags = set(re.search(r"^flags\s*:(.*)$", cpuinfo, re.M).group(1).split()) if "flags" in cpuinfo else set()
    assert env["cpu_flags"].split() == [f for f in peer.ISA_FLAGS if f in flags] or env["cpu_flags"].startswith(
        "none of")
    assert env["onnxruntime"] == ort.__version__
    assert env["intra_op_num_threads"] == len(os.sched_getaffinity(0)) and env["inter_op_num_threads"] == 1
    assert env["graph_optimization_level"] == "ORT_ENABLE_ALL" and env["execution_mode"] == "ORT_SEQUENTIAL"
    assert env["logical_cores"] == os.cpu_count()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", env["date"])
    assert env["suite"] == "smoke" and env["warmup"] == 2 and env["reps"] == 3
    rows = data["results"]
    assert [r["id"] for r in rows] == ["S01", "S03"]
    assert [r["op"] for r in rows] == ["conv", "conv_transpose"]
    for r in rows:
        assert r["status"] == "ok" and r["checked"] and r["correct"], r
        assert 0 <= r["error_over_bound"] <= 1 and r["bad_elements"] == 0
        for side in ("ort", "convarith_py"):
            t = r[side]
            assert t["reps"] == 3
            assert 0 < t["min_s"] <= t["p10_s"] <= t["median_s"] <= t["p90_s"]
        assert r["flops"] > 0
    assert rows[0]["output"] == [2, 8, 9, 9]  # 3x3 pad 1 keeps 9x9
    assert rows[1]["output"] == [1, 4, 10, 10]  # 4x4/2 pad 1: 2 * (5 - 1) + 4 - 2
    assert "S01" in p.stdout and "S03" in p.stdout


@pytest.mark.parametrize("row_id", ["S01", "S03"])
def test_the_one_node_model_computes_the_layer_definition(row_id):
    row = smoke_row(row_id)
    x, w = peer.make_inputs(row, 0)
    sess = ort.InferenceSession(peer.make_model(row, w).SerializeToString(), peer.session_options(ort, opts()),
                                providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": x})
    want = fp64(row, x, w)
    assert y.shape == want.shape
    mag = np.abs(fp64(row, np.abs(x), np.abs(w)))
    # The bench's peer rule against the fp64 oracle: factor 32.
    ok, _, worst, bad, msg = peer.check(row, y, want, mag, factor=peer.PEER_FACTOR)
    assert ok, msg
    assert worst < 0.1, worst  # well inside: a real fp32 sum, not something the bound barely lets through


def test_a_wrong_model_is_rejected_and_not_timed():
    def flip(model):  # the classic slip: the kernel not flipped / flipped once too often
        from onnx import numpy_helper
        (init,) = model.graph.initializer
        w = numpy_helper.to_array(init)
        init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(w[..., ::-1, ::-1]), init.name))
        return model

    for row_id in ("S01", "S03"):
        r = peer.run_layer(smoke_row(row_id), opts(), model_hook=flip)
        assert r["status"] == "wrong" and r["checked"] and not r["correct"], r
        assert r["bad_elements"] > 0 and r["error_over_bound"] > 1
        assert r["ort"]["reps"] == 0 and r["ort"]["median_s"] is None
        assert r["convarith_py"]["reps"] == 0
    # The same layers unmodified pass.
    assert peer.run_layer(smoke_row("S01"), opts())["status"] == "ok"


def test_the_check_rejects_one_element_just_outside_the_bound():
    row = smoke_row("S01")
    rng = np.random.default_rng(1)
    want = rng.standard_normal((2, 8, 9, 9))
    mag = np.abs(want) + 1.0
    bound = (peer.PEER_FACTOR + peer.OURS_FACTOR) * peer.EPS32 * (peer.taps(row) + 2) * mag
    assert peer.taps(row) == 4 * 9
    inside = want.copy()
    inside[1, 2, 3, 4] += 0.9 * bound[1, 2, 3, 4]
    assert peer.check(row, inside, want, mag)[0]
    outside = want.copy()
    outside[1, 2, 3, 4] += 1.1 * bound[1, 2, 3, 4]
    ok, _, worst, bad, msg = peer.check(row, outside, want, mag)
    assert not ok and bad == 1 and 1.0 < worst < 1.2 and "[1, 2, 3, 4]" in msg
    unwritten = want.copy()
    unwritten[0, 0, 0, 0] = np.nan  # the NaN poison the output starts as
    ok, _, _, bad, _ = peer.check(row, unwritten, want, mag)
    assert not ok and bad == 1
    assert not peer.check(row, want[:, :4], want, mag)[0]  # a wrong shape


def test_rows_it_cannot_run_are_skipped_with_the_reason():
    rows = peer.load_layers(os.path.join(ROOT, "bench", "layers.csv"), "smoke_fmt")
    assert rows
    r = peer.run_layer(rows[0], opts())
    assert r["status"] == "skipped" and "f32 NCHW" in r["reason"]


def test_layer_file_errors_are_usage_errors(tmp_path):
    bad = tmp_path / "layers.csv"
    bad.write_text("A1, net, l, smoke, conv, 1, 2, 2, 1, 5x5, 3x3, 1x1, 1:2:3, 1x1, 0x0, , f32, NCHW\n")
    p = subprocess.run([sys.executable, SCRIPT, "--layers", str(bad), "--suite", "smoke"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2 and "A1" in p.stderr and "pad" in p.stderr
    p = subprocess.run([sys.executable, SCRIPT, "--suite", "nosuch"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "nosuch" in p.stderr and "default" in p.stderr
