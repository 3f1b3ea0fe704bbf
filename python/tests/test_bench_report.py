"""bench/make_report.py --ort: `convarith bench --json` (ours and oneDNN) merged with bench/ort_peer.py's JSON
(ONNX Runtime), on small fixture files whose ratios are known: per layer the three medians and both ratios,
the geometric mean per group and overall, the lowest layer, and a wrong ONNX Runtime row shown, never used."""

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load():
    spec = importlib.util.spec_from_file_location("make_report", os.path.join(ROOT, "bench", "make_report.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


report = _load()
CPU = "AMD EPYC 7B13"


def layer(lid, op, groups=1, c=8):
    return dict(id=lid, network="net", layer=f"{op} {lid}", op=op, n=1, c=c, k=8, groups=groups, flops=1e6,
                min_bytes=1000)


def case(lid, impl, algorithm, median_us, correct=True):
    return dict(layer=lid, impl=impl, algorithm=algorithm, device="cpu", status="ok" if correct else "wrong: x",
                checked=True, correct=correct, reps=10 if correct else 0, median_s=median_us * 1e-6,
                p10_s=median_us * 0.9e-6, p90_s=median_us * 1.1e-6, min_s=median_us * 0.8e-6)


def ort_row(lid, status, ort_us=None, py_us=None, reason=""):
    t = (lambda us: dict(reps=10, median_s=us * 1e-6, p10_s=us * 1e-6, p90_s=us * 1e-6, min_s=us * 1e-6)
         if us else dict(reps=0, median_s=None, p10_s=None, p90_s=None, min_s=None))
    return dict(id=lid, status=status, reason=reason, ort=t(ort_us), convarith_py=t(py_us))


def fixtures(tmp_path, ort_cpu=CPU):
    bench = dict(schema="convarith-bench-1",
                 environment=dict(date="2026-12-02T07:00:00Z", host=f"{CPU}, 2 logical cores", cpu_model=CPU,
                                  cpu_flags="avx2 fma", cpu_isa="avx2 (6x16 fp32 GEMM tile)", onednn_isa="avx2",
                                  suite="default", gpu="", peak_note="CPU peak not measured"),
                 layers=[layer("A", "conv"), layer("B", "conv"), layer("T", "conv_transpose"), layer("P", "max_pool"),
                         layer("Q", "avg_pool")],
                 results=[
                     # A: ours 100 (the faster of two rows), oneDNN 200 -> 2.00x; ORT 50 -> 0.50x
                     case("A", "convarith", "cpu_im2col", 100), case("A", "convarith", "cpu_direct", 150),
                     case("A", "onednn", "onednn", 200),
                     # B: ours 100, oneDNN 50 -> 0.50x; ORT 200 -> 2.00x
                     case("B", "convarith", "cpu_im2col", 100), case("B", "onednn", "onednn", 50),
                     # T: ours 10, oneDNN 40 -> 4.00x; ORT 10 -> 1.00x
                     case("T", "convarith", "cpu_transposed", 10), case("T", "onednn", "onednn", 40),
                     # P: ours 10, oneDNN 10; ORT wrong -> no ORT ratio
                     case("P", "convarith", "cpu_pool", 10), case("P", "onednn", "onednn", 10),
                     # Q: ours 10, oneDNN 20; ORT skipped
                     case("Q", "convarith", "cpu_pool", 10), case("Q", "onednn", "onednn", 20)])
    ort = dict(schema="convarith-ort-peer-1",
               environment=dict(date="2026-12-02T07:05:00Z", cpu_model=ort_cpu, cpu_flags="avx2 fma", logical_cores=2,
                                onnxruntime="1.32.0", intra_op_num_threads=2, inter_op_num_threads=1),
               results=[ort_row("A", "ok", 50, 80), ort_row("B", "ok", 200, 100), ort_row("T", "ok", 10, 20),
                        ort_row("P", "wrong", reason="3 of 64 elements outside the bound"),
                        ort_row("Q", "skipped", reason="f16 NHWC: the ONNX Runtime peer runs f32 NCHW rows")])
    b, o = tmp_path / "bench.json", tmp_path / "ort.json"
    b.write_text(json.dumps(bench))
    o.write_text(json.dumps(ort))
    return str(b), str(o)


def table_row(md, first_cell):
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell and len(cells) >= 6:
            yield cells


def test_merge_puts_three_times_and_both_ratios_per_layer(tmp_path):
    b, o = fixtures(tmp_path)
    assert report.main([b, "--ort", o, "--no-plot", "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r.md").read_text()
    sec = md[md.index("## convarith vs oneDNN vs ONNX Runtime"):]
    rows = {c[0]: c for c in (next(table_row(sec, lid)) for lid in "ABTPQ")}
    # layer | network | layer name | group | ours | oneDNN | ORT | oneDNN/ours | ORT/ours | same run
    assert rows["A"][3:] == ["conv", "100.0", "200.0", "50.0", "2.00x", "0.50x", "0.62x"]
    assert rows["B"][3:] == ["conv", "100.0", "50.0", "200.0", "0.50x", "2.00x", "2.00x"]
    assert rows["T"][3:] == ["transposed", "10.0", "40.0", "10.0", "4.00x", "1.00x", "0.50x"]
    assert rows["P"][6:9] == ["WRONG", "1.00x", "-"]
    assert rows["Q"][6:9] == ["SKIPPED", "2.00x", "-"]
    groups = {c[0]: c for c in (next(table_row(sec.split("| group |")[-1], g)) for g in ("conv", "transposed", "all"))}
    # conv: oneDNN sqrt(2 * 0.5) = 1, lowest B; ORT 1, lowest A; same run sqrt(0.625 * 2), lowest A
    assert groups["conv"][1:] == ["2", "1.00x", "0.50x (B)", "1.00x", "0.50x (A)", f"{1.25 ** 0.5:.2f}x", "0.62x (A)"]
    assert groups["transposed"][1:] == ["1", "4.00x", "4.00x (T)", "1.00x", "1.00x (T)", "0.50x", "0.50x (T)"]
    # all three layers with both ratios: oneDNN (2 * 0.5 * 4)^(1/3), ORT (0.5 * 2 * 1)^(1/3), same run
    # (0.625 * 2 * 0.5)^(1/3)
    assert groups["all"][1:] == ["3", f"{4 ** (1 / 3):.2f}x", "0.50x (B)", "1.00x", "0.50x (A)",
                                 f"{0.625 ** (1 / 3):.2f}x", "0.50x (T)"]
    assert "P: wrong: 3 of 64 elements outside the bound" in sec
    assert "Q (f16 NHWC" in sec
    assert "Warning" not in sec
    # The bench's environment block shows the CPU and the ISAs of the rows.
    assert "| cpu_isa | avx2 (6x16 fp32 GEMM tile) |" in md and "| onednn_isa | avx2 |" in md
    assert f"| cpu_model | {CPU} |" in sec and "| onnxruntime | 1.32.0 |" in sec


def test_merge_warns_when_the_two_files_come_from_different_cpus(tmp_path):
    b, o = fixtures(tmp_path, ort_cpu="Intel(R) Xeon(R) Platinum 8481C")
    assert report.main([b, "--ort", o, "--no-plot", "--out", str(tmp_path / "r")]) == 0
    md = (tmp_path / "r.md").read_text()
    assert "**Warning:**" in md and "8481C" in md


def test_merge_refuses_a_file_that_is_not_the_peers(tmp_path):
    b, _ = fixtures(tmp_path)
    with pytest.raises(SystemExit, match="convarith-ort-peer-1"):
        report.main([b, "--ort", b, "--no-plot", "--out", str(tmp_path / "r")])


def test_markdown_shows_the_rows_auto_and_tune_take():
    data = dict(schema="convarith-bench-1", environment=dict(date="2026-12-02T07:00:00Z", cpu_model=CPU, gpu=""),
                layers=[dict(layer("A", "conv"), auto_algorithm="cpu_gemm", tune_algorithm="cpu_gemm"),
                        dict(layer("B", "conv"), auto_algorithm="igemm", tune_algorithm="")],
                results=[case("A", "convarith", "cpu_gemm", 100), case("A", "onednn", "onednn", 200),
                         case("B", "convarith", "igemm", 100), case("B", "onednn", "onednn", 50)])
    md = report.markdown(data, report.summarize(data), "t")
    lines = md.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| layer |"))
    head, rule = lines[at], lines[at + 1]
    cols = [c.strip() for c in head.strip("|").split("|")]
    assert cols[6:9] == ["ours (best)", "auto takes", "tune takes"]
    assert rule.count("|") == head.count("|")
    row_b = next(line for line in md.splitlines() if line.startswith("| B |"))
    assert [c.strip() for c in row_b.strip("|").split("|")][6:9] == ["igemm", "igemm", "-"]
    # Without the fields (a bench run before `tune` existed) the columns are absent.
    for l in data["layers"]:
        l.pop("auto_algorithm")
        l.pop("tune_algorithm")
    md = report.markdown(data, report.summarize(data), "t")
    assert "auto takes" not in md and "tune takes" not in md
