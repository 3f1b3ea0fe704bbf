#!/usr/bin/env python3
"""tools/gpu/compare.py — each measured GPU time beside the model's prediction (measured / modeled), to
calibrate the bound model (cli/cmd_model.cpp). Reads a `convarith bench --json` file (measured) and a
`convarith model --json` file (modeled, not measured) and writes a table and a JSON of the joined rows.

  python3 tools/gpu/compare.py BENCH.json MODEL.json [--json OUT.json] [--sgemm SGEMM.jsonl]
  python3 tools/gpu/compare.py --self-test

Rows join on (layer id, algorithm); the peer (cuDNN) rows are shown beside ours, unmodeled. measured/modeled
> 1: the kernel is slower than the model's bound (expected: the model is a lower bound on time); < 1 means the
model is wrong somewhere (a limit it over-counts) and is flagged. Exit 0; 2 on unreadable input.
"""
import json
import sys


def load_jsonl(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                rows.append(json.loads(line))
    return rows


def join(bench, model):
    modeled = {(r["layer_id"], r["algorithm"]): r for r in model.get("rows", []) if r.get("status") == "ok"}
    peers = {}
    for r in bench.get("results", []):
        if r.get("impl") != "convarith" and r.get("reps", 0) > 0:
            peers[r["layer"]] = r
    out = []
    for r in bench.get("results", []):
        if r.get("impl") != "convarith":
            continue
        algo = r.get("algorithm", "")
        m = modeled.get((r["layer"], algo))
        row = {"layer": r["layer"], "algorithm": algo, "status": r.get("status"),
               "measured_us": r["median_s"] * 1e6 if r.get("reps", 0) > 0 else None,
               "modeled_us": m["modeled_us"] if m else None, "binding": m["binding"] if m else None,
               "modeled_pct_of_peak": m["pct_of_peak"] if m else None}
        if row["measured_us"] and row["modeled_us"]:
            row["measured_over_modeled"] = row["measured_us"] / row["modeled_us"]
            row["flag"] = "model above measured" if row["measured_over_modeled"] < 1 else ""
        p = peers.get(r["layer"])
        if p:
            row["peer"] = p.get("algorithm")
            row["peer_us"] = p["median_s"] * 1e6
        out.append(row)
    return out


def table(rows, sgemm):
    lines = ["measured (GPU, convarith bench) beside modeled (convarith model: modeled, not measured)",
             "%-8s %-8s %12s %12s %9s %-6s %12s  %s" % ("layer", "kernel", "measured us", "modeled us", "meas/mod",
                                                     "bound", "peer us", "flag")]
    for r in rows:
        def f(v, fmt="%12.2f"):
            return fmt % v if isinstance(v, (int, float)) else "%12s" % "-"
        lines.append("%-8s %-8s %s %s %s %-6s %s  %s" % (
            r["layer"], r["algorithm"], f(r["measured_us"]), f(r["modeled_us"]),
            f(r.get("measured_over_modeled"), "%9.2f") if r.get("measured_over_modeled") else "%9s" % "-",
            r.get("binding") or "-", f(r.get("peer_us")), r.get("flag", "") or ("" if r["status"] == "ok" else
                                                                             r["status"])))
    ratios = [r["measured_over_modeled"] for r in rows if r.get("measured_over_modeled")]
    if ratios:
        ratios.sort()
        lines.append("measured/modeled over %d rows: min %.2f, median %.2f, max %.2f" %
                     (len(ratios), ratios[0], ratios[len(ratios) // 2], ratios[-1]))
    for s in sgemm:
        lines.append("cuBLAS SGEMM %d^3 (%s): %.2f TFLOP/s measured" % (s["m"], s["math"], s["tflops"]))
    return "\n".join(lines)


def self_test():
    bench = {"results": [
        {"layer": "R03", "impl": "convarith", "algorithm": "tiled", "status": "ok", "reps": 10, "median_s": 2e-4},
        {"layer": "R03", "impl": "convarith", "algorithm": "direct", "status": "ok", "reps": 10, "median_s": 1e-4},
        {"layer": "R03", "impl": "cudnn", "algorithm": "cudnn:IMPLICIT_GEMM", "status": "ok", "reps": 10,
         "median_s": 5e-5}]}
    model = {"rows": [{"layer_id": "R03", "algorithm": "tiled", "status": "ok", "modeled_us": 100.0,
                       "binding": "issue", "pct_of_peak": 20.0},
                      {"layer_id": "R03", "algorithm": "direct", "status": "ok", "modeled_us": 200.0,
                       "binding": "issue", "pct_of_peak": 10.0}]}
    rows = join(bench, model)
    assert len(rows) == 2, rows
    assert abs(rows[0]["measured_over_modeled"] - 2.0) < 1e-9, rows[0]
    assert rows[0]["peer_us"] == 50.0, rows[0]
    assert rows[1]["flag"] == "model above measured", rows[1]
    t = table(rows, [{"m": 4096, "math": "fp32", "tflops": 50.0}])
    assert "modeled, not measured" in t and "2.00" in t and "50.00 TFLOP/s" in t, t
    print("compare: self-test ok")
    return 0


def main(argv):
    if argv[:1] == ["--self-test"]:
        return self_test()
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out_json, sgemm_path = None, None
    if "--json" in argv:
        out_json = argv[argv.index("--json") + 1]
    if "--sgemm" in argv:
        sgemm_path = argv[argv.index("--sgemm") + 1]
    try:
        with open(argv[0]) as f:
            bench = json.load(f)
        with open(argv[1]) as f:
            model = json.load(f)
        sgemm = load_jsonl(sgemm_path) if sgemm_path else []
    except (OSError, ValueError) as e:
        print("compare: %s" % e, file=sys.stderr)
        return 2
    rows = join(bench, model)
    print(table(rows, sgemm))
    if out_json:
        with open(out_json, "w") as f:
            json.dump({"schema": "convarith-gpu-compare-1",
                       "label": "measured on the GPU beside modeled (not measured) bounds",
                       "gpu": model.get("gpu"), "environment": bench.get("environment"), "sgemm": sgemm,
                       "rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
