#!/usr/bin/python3
"""Turns a `convarith bench --json` results file into a Markdown table and a plot.

    bench/make_report.py RESULTS.json [--out PREFIX]

writes PREFIX.md (environment, per-layer table, geometric means per group) and PREFIX.png and
PREFIX.svg (speedup vs the peer per layer on a log axis, and % of the device roofline when the
results have one; on the CPU, where no peak is measured, the second panel shows both medians).
PREFIX defaults to RESULTS without .json. Uses only the standard library and matplotlib (Debian's
python3-matplotlib): run it with /usr/bin/python3 if another python3 comes first on PATH.
Speedup = peer median / our best median (> 1: convarith is faster); aggregates are geometric
means, never arithmetic means of ratios.

    bench/make_report.py RESULTS.json --ort ORT.json

adds a second CPU peer: ORT.json is bench/ort_peer.py's output (ONNX Runtime's CPU provider on one-node
models of the same layers). The Markdown then also has, per layer, our best, oneDNN and ONNX Runtime
medians, both ratios (peer time / ours), the geometric mean per group and overall, and each ratio's lowest
layer. Layers are matched by id; ONNX Runtime's medians come from its own run (the same machine: the CPU
models of the two files are compared), and its same-run ratio against convarith's Python binding is shown
beside them.
"""
import argparse
import json
import math
import os
import sys


def group_of(layer):
    if layer["op"] == "conv_transpose":
        return "transposed"
    if layer["op"] in ("max_pool", "avg_pool"):
        return "pooling"
    if layer["groups"] > 1 and layer["groups"] == layer["c"]:
        return "depthwise"
    if layer["groups"] > 1:
        return "grouped"
    return "conv"


def geomean(values):
    values = [v for v in values if v and v > 0 and math.isfinite(v)]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def summarize(data):
    env = data["environment"]
    peak_f, peak_b = env.get("peak_flops") or 0, env.get("peak_bytes_per_s") or 0
    rows = []
    for layer in data["layers"]:
        cases = [r for r in data["results"] if r["layer"] == layer["id"]]
        good = [r for r in cases if r["correct"] and r["reps"] > 0]
        ours = [r for r in good if r["impl"] == "convarith"]
        peers = [r for r in good if r["impl"] != "convarith"]
        best = min(ours, key=lambda r: r["median_s"]) if ours else None
        peer = min(peers, key=lambda r: r["median_s"]) if peers else None
        wrong = [r for r in cases if r["checked"] and not r["correct"]]
        errors = [r for r in cases if r["status"].startswith("error")]
        speedup = peer["median_s"] / best["median_s"] if best and peer else None
        roof = None
        if best and peak_f > 0 and peak_b > 0:
            roof = 100.0 * max(layer["flops"] / peak_f, layer["min_bytes"] / peak_b) / best["median_s"]
        rows.append(dict(layer=layer, best=best, peer=peer, speedup=speedup, roof=roof, wrong=wrong,
                         errors=errors, cases=cases, group=group_of(layer)))
    return rows


def fmt_us(seconds):
    if seconds is None:
        return "-"
    us = seconds * 1e6
    return f"{us:.1f}" if us < 1e4 else f"{us:.0f}"


def markdown(data, rows, title, note=None):
    env = data["environment"]
    peer_name = "cuDNN" if env.get("gpu") else "oneDNN"
    out = [f"# {title}", ""]
    out.append("| environment | |")
    out.append("|---|---|")
    for key in ("date", "git_sha", "host", "cpu_model", "cpu_flags", "cpu_isa", "onednn_isa", "load_average",
                "thread_env", "gpu", "driver", "cuda_runtime", "cudnn", "onednn", "convarith", "command", "suite",
                "peak_note"):
        if env.get(key):
            out.append(f"| {key} | {env[key]} |")
    out.append("")
    if note:
        out.append(f"**Note:** {note}")
        out.append("")
    out.append(f"Median of the timed runs (after warm-up) per case; every case was checked against the fp64 "
               f"reference before it was timed. speedup = {peer_name} median / our best median (> 1: convarith "
               f"is faster). GFLOP and bytes are ConvProblem::flops() / min_bytes() (nominal counts).")
    out.append("")
    # The rows `auto` and `tune` take (convarith bench writes auto_algorithm per layer; tune_algorithm with --tune).
    has_auto = any(r["layer"].get("auto_algorithm") for r in rows)
    has_tune = any(r["layer"].get("tune_algorithm") for r in rows)
    chose_head = (" auto takes |" if has_auto else "") + (" tune takes |" if has_tune else "")
    chose_rule = ("---|" if has_auto else "") + ("---|" if has_tune else "")
    out.append(f"| layer | network | layer name | op | N | GFLOP | ours (best) |{chose_head} ours us | p10-p90 us | "
               f"{peer_name} | {peer_name} us | speedup | % roofline | cases |")
    out.append(f"|---|---|---|---|---:|---:|---|{chose_rule}---:|---:|---|---:|---:|---:|---|")
    for r in rows:
        l, b, p = r["layer"], r["best"], r["peer"]
        chose = (f" {l.get('auto_algorithm') or '-'} |" if has_auto else "") + (
            f" {l.get('tune_algorithm') or '-'} |" if has_tune else "")
        spread = f"{fmt_us(b['p10_s'])}-{fmt_us(b['p90_s'])}" if b else "-"
        cases = ", ".join(
            f"{c['algorithm']}: {'ok' if c['correct'] else c['status'].split(':')[0]}" for c in r["cases"])
        speedup = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        roof = f"{r['roof']:.1f}" if r["roof"] else "-"
        out.append(
            f"| {l['id']} | {l['network']} | {l['layer']} | {l['op']} | {l['n']} | {l['flops'] * 1e-9:.3f} | "
            f"{b['algorithm'] if b else '(none correct)'} |{chose} {fmt_us(b['median_s'] if b else None)} | {spread} | "
            f"{p['algorithm'] if p else '-'} | {fmt_us(p['median_s'] if p else None)} | {speedup} | {roof} | "
            f"{cases} |")
    out.append("")
    out.append("| group | layers with both | geomean speedup | min speedup |")
    out.append("|---|---:|---:|---:|")
    groups = sorted({r["group"] for r in rows})
    for g in groups + ["all"]:
        sp = [r["speedup"] for r in rows if r["speedup"] and (g == "all" or r["group"] == g)]
        gm = geomean(sp)
        out.append(f"| {g} | {len(sp)} | {f'{gm:.2f}x' if gm else '-'} | {f'{min(sp):.2f}x' if sp else '-'} |")
    wrong = [c for r in rows for c in r["wrong"]]
    errors = [c for r in rows for c in r["errors"]]
    out.append("")
    if wrong or errors:
        out.append("**Failures:**")
        for c in wrong + errors:
            out.append(f"- {c['layer']} {c['algorithm']}: {c['status']}")
    else:
        out.append("No wrong results and no failed runs.")
    out.append("")
    return "\n".join(out)


def ort_rows(rows, ort):
    """Per bench row (in its order), the merged record: ours, oneDNN, the ONNX Runtime result, both ratios."""
    by_id = {r["id"]: r for r in ort["results"]}
    out = []
    for r in rows:
        o = by_id.get(r["layer"]["id"])
        ort_s = o["ort"]["median_s"] if o and o["status"] == "ok" else None
        ours = r["best"]["median_s"] if r["best"] else None
        one = r["peer"]["median_s"] if r["peer"] else None
        same = (o["ort"]["median_s"] / o["convarith_py"]["median_s"]
                if o and o["status"] == "ok" and o["convarith_py"]["median_s"] else None)
        out.append(dict(id=r["layer"]["id"], group=r["group"], row=r, ort=o, ours_s=ours, onednn_s=one, ort_s=ort_s,
                        onednn_ratio=one / ours if one and ours else None,
                        ort_ratio=ort_s / ours if ort_s and ours else None, ort_same_run=same))
    return out


def _ratio(v):
    return f"{v:.2f}x" if v else "-"


def ort_markdown(data, merged, ort):
    """The three-way section: convarith, oneDNN, ONNX Runtime."""
    env, oenv = data["environment"], ort["environment"]
    out = ["## convarith vs oneDNN vs ONNX Runtime (CPU)", ""]
    out.append("| ONNX Runtime run | |")
    out.append("|---|---|")
    for key in ("date", "git_sha", "cpu_model", "cpu_flags", "logical_cores", "usable_cores", "load_average",
                "load_average_end", "onnxruntime", "onnx", "convarith", "graph_optimization_level", "execution_mode",
                "intra_op_num_threads", "inter_op_num_threads", "allow_spinning", "warmup", "reps", "check", "command"):
        if oenv.get(key) not in (None, ""):
            out.append(f"| {key} | {oenv[key]} |")
    out.append("")
    bench_cpu = env.get("cpu_model") or (env.get("host") or "").split(",")[0]
    if bench_cpu and oenv.get("cpu_model") and bench_cpu != oenv["cpu_model"]:
        out.append(f"**Warning:** the bench ran on {bench_cpu!r}, ONNX Runtime on {oenv['cpu_model']!r}: the ONNX "
                   f"Runtime ratios compare different machines.")
        out.append("")
    out.append("Medians in us. ours = convarith's best CPU row and oneDNN from `convarith bench`; ONNX Runtime = "
               "bench/ort_peer.py (a one-node model per layer, CPUExecutionProvider, ORT_ENABLE_ALL), checked "
               "against convarith's output before it was timed. ratio = peer time / ours (> 1: convarith is faster). "
               "same run = ONNX Runtime / convarith's Python binding, timed in turns in the peer's process.")
    out.append("")
    out.append("| layer | network | layer name | group | ours us | oneDNN us | ONNX Runtime us | oneDNN / ours | "
               "ORT / ours | ORT / ours (same run) |")
    out.append("|---|---|---|---|---:|---:|---:|---:|---:|---:|")
    for m in merged:
        l, o = m["row"]["layer"], m["ort"]
        ort_cell = fmt_us(m["ort_s"]) if m["ort_s"] else ("-" if o is None else o["status"].upper())
        out.append(f"| {m['id']} | {l['network']} | {l['layer']} | {m['group']} | {fmt_us(m['ours_s'])} | "
                   f"{fmt_us(m['onednn_s'])} | {ort_cell} | {_ratio(m['onednn_ratio'])} | {_ratio(m['ort_ratio'])} | "
                   f"{_ratio(m['ort_same_run'])} |")
    out.append("")
    out.append("| group | layers with all three | geomean oneDNN / ours | lowest (layer) | geomean ORT / ours | "
               "lowest (layer) | geomean ORT / ours (same run) | lowest (layer) |")
    out.append("|---|---:|---:|---|---:|---|---:|---|")
    for g in sorted({m["group"] for m in merged}) + ["all"]:
        sel = [m for m in merged if m["onednn_ratio"] and m["ort_ratio"] and (g == "all" or m["group"] == g)]
        if not sel:
            out.append(f"| {g} | 0 | - | - | - | - | - | - |")
            continue
        cells = []
        for key in ("onednn_ratio", "ort_ratio", "ort_same_run"):
            have = [m for m in sel if m[key]]
            lo = min(have, key=lambda m: m[key]) if have else None
            cells += [_ratio(geomean([m[key] for m in have])), f"{_ratio(lo[key])} ({lo['id']})" if lo else "-"]
        out.append(f"| {g} | {len(sel)} | " + " | ".join(cells) + " |")
    out.append("")
    missing = [m["id"] for m in merged if m["ort"] is None]
    skipped = [f"{m['id']} ({m['ort']['reason']})" for m in merged if m["ort"] and m["ort"]["status"] == "skipped"]
    bad = [f"{m['id']}: {m['ort']['status']}: {m['ort']['reason']}" for m in merged
           if m["ort"] and m["ort"]["status"] in ("wrong", "error")]
    if skipped:
        out.append("ONNX Runtime skipped: " + "; ".join(skipped) + ".")
    if missing:
        out.append("Not in the ONNX Runtime file: " + ", ".join(missing) + ".")
    if bad:
        out.append("**ONNX Runtime failures (not timed):**")
        out.extend(f"- {b}" for b in bad)
    elif not missing:
        out.append("Every ONNX Runtime row that ran matched convarith's output within the bound.")
    out.append("")
    return "\n".join(out)


def plot(data, rows, prefix, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env = data["environment"]
    peer_name = "cuDNN" if env.get("gpu") else "oneDNN"
    ids = [r["layer"]["id"] for r in rows]
    x = list(range(len(rows)))
    colors = {"conv": "#4c72b0", "grouped": "#8172b2", "depthwise": "#55a868", "transposed": "#c44e52",
              "pooling": "#dd8452"}
    have_roof = any(r["roof"] for r in rows)
    fig, axes = plt.subplots(2, 1, figsize=(max(10, 0.42 * len(rows) + 3), 9), sharex=True)
    ax = axes[0]
    for i, r in enumerate(rows):
        if r["speedup"]:
            # From 1.0 up (faster) or down (slower), so a bar's length is the log of the ratio.
            ax.bar(i, r["speedup"] - 1.0, bottom=1.0, color=colors.get(r["group"], "gray"))
        else:
            ax.text(i, 1, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_yscale("log")
    sp = [r["speedup"] for r in rows if r["speedup"]]
    if sp:
        # Head room above the tallest bar for the legend; always show 1.0.
        ax.set_ylim(min(min(sp), 1.0) / 1.3, max(max(sp), 1.0) * 2.5)
    ax.axhline(1.0, color="black", linewidth=0.8)
    gm = geomean([r["speedup"] for r in rows])
    if gm:
        ax.axhline(gm, color="black", linestyle="--", linewidth=0.8)
        ax.text(len(rows) - 0.5, gm, f" geomean {gm:.2f}x", va="bottom", ha="right", fontsize=8)
    ax.set_ylabel(f"speedup vs {peer_name}\n({peer_name} time / our time, log)")
    ax.set_title(title, fontsize=10)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    ax.legend(handles, list(colors.keys()), fontsize=7, ncol=5, loc="upper left")
    ax.grid(axis="y", which="both", alpha=0.3)

    ax = axes[1]
    if have_roof:
        ax.bar(x, [r["roof"] or 0 for r in rows], color=[colors.get(r["group"], "gray") for r in rows])
        ax.set_ylabel("our best, % of roofline")
        ax.set_ylim(0, max(100, max(r["roof"] or 0 for r in rows) * 1.1))
    else:
        ours = [r["best"]["median_s"] * 1e6 if r["best"] else float("nan") for r in rows]
        peer = [r["peer"]["median_s"] * 1e6 if r["peer"] else float("nan") for r in rows]
        ax.scatter(x, ours, marker="o", label="convarith (best)", zorder=3)
        ax.scatter(x, peer, marker="x", label=peer_name, zorder=3)
        ax.set_yscale("log")
        ax.set_ylabel("median time, us (log)")
        ax.legend(fontsize=8)
        ax.text(0.99, 0.02, env.get("peak_note", ""), transform=ax.transAxes, ha="right",
                fontsize=7)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.set_xticks(x)
    ax.set_xticklabels(ids, rotation=70, fontsize=8)
    fig.tight_layout()
    fig.savefig(prefix + ".png", dpi=110)
    fig.savefig(prefix + ".svg")
    plt.close(fig)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--out", help="output prefix (default: results path without .json)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--note", help="a paragraph on how the numbers were taken (conditions, caveats)")
    ap.add_argument("--ort", metavar="ORT.json", help="bench/ort_peer.py's results: adds ONNX Runtime beside oneDNN")
    args = ap.parse_args(argv)
    with open(args.results) as f:
        data = json.load(f)
    if data.get("schema") != "convarith-bench-1":
        sys.exit(f"{args.results}: not a convarith-bench-1 results file")
    ort = None
    if args.ort:
        with open(args.ort) as f:
            ort = json.load(f)
        if ort.get("schema") != "convarith-ort-peer-1":
            sys.exit(f"{args.ort}: not a convarith-ort-peer-1 results file (bench/ort_peer.py --json)")
        if data["environment"].get("gpu"):
            sys.exit(f"{args.results}: a GPU run; ONNX Runtime is a CPU peer")
    prefix = args.out or os.path.splitext(args.results)[0]
    env = data["environment"]
    device = env.get("gpu") or env.get("host")
    title = f"convarith vs {'cuDNN' if env.get('gpu') else 'oneDNN'}: suite {env.get('suite')} on {device}, {env.get('date')}"
    rows = summarize(data)
    text = markdown(data, rows, title, args.note)
    if ort is not None:
        text += "\n" + ort_markdown(data, ort_rows(rows, ort), ort)
    with open(prefix + ".md", "w") as f:
        f.write(text)
    if not args.no_plot:
        plot(data, rows, prefix, title)
    wrong = sum(len(r["wrong"]) for r in rows)
    print(f"{prefix}.md{'' if args.no_plot else ', .png, .svg'}: {len(rows)} layers, {wrong} wrong result(s)")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
