#!/usr/bin/env python3
"""ONNX Runtime's CPU provider as a second CPU peer: the layers of a bench suite, each a one-node model.

    python bench/ort_peer.py [--suite default] [--layers FILE] [--only ID,ID] [--json OUT.json]
                             [--warmup 10] [--reps N] [--target-seconds 0.25] [--threads N] [--spin]

Per layer of bench/layers.csv in the suite (f32 NCHW rows; other dtypes and layouts are listed as skipped):
a one-node ONNX model (Conv, ConvTranspose, MaxPool or AveragePool with the row's attributes; the weights
are initializers, no bias, as in `convarith bench`), run by an InferenceSession on CPUExecutionProvider with
graph optimisations ORT_ENABLE_ALL, intra_op_num_threads = the cores this process may run on, inter_op 1,
sequential execution, the output bound once to a preallocated array (IOBinding, so no allocation is timed).

Correctness first: one run into a NaN-filled output is compared with convarith's CPU output of the same
inputs (a convarith.Plan, the library's own CPU row). The bound is the project's rule (oracle::accept in
reference/reference.hpp, f32, no epilogue): |ort - ours| <= F eps32 (taps + 2) magnitude + 2^-150, with
magnitude = sum |x w| per output (pooling: the window's max |x|) computed by convarith on |x| and |w|, and
F = 34 = 32 (a peer's factor in the bench) + 2 (ours): two results that each pass the rule against the fp64
oracle are within it of each other. A layer outside it is reported `wrong` and is not timed.

Timing (../shared/LAYERS.md §4, as bench/harness.cpp does it on the CPU): warm-up runs, reps from the
warm-up's median so a layer costs about --target-seconds (10..1000) unless --reps, ONNX Runtime and
convarith's Python Plan interleaved per rep (A B, B A, ...) so a busy machine's interference lands on both;
median, p10, p90 and min per side. `convarith_py` is the library through the Python binding in this
process, for a same-run ratio; the report (bench/make_report.py --ort) sets ONNX Runtime beside
`convarith bench`'s own rows.

Exit status: 0 when every layer that ran was correct, 1 when one was wrong or failed, 2 on a usage error.
"""
import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA = "convarith-ort-peer-1"
EPS32 = 2.0 ** -23
PEER_FACTOR = 32.0  # bench/harness.cpp: a peer's factor in oracle::accept
OURS_FACTOR = 2.0  # ... and convarith's
# /proc/cpuinfo flags that decide which kernels a CPU library can use (fp32 FMA width, bf16/f16, AMX).
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_fp16", "amx_int8")
OPSET = 19  # AveragePool's dilations arrived in 19; ONNX Runtime 1.16+ runs it
IR_VERSION = 9  # opset 19's IR version: older than the onnx package's default, so older runtimes load it too

_ONNX_OP = {"conv": "Conv", "conv_transpose": "ConvTranspose", "max_pool": "MaxPool", "avg_pool": "AveragePool"}


# ---- the layer file ------------------------------------------------------------------------------------------

def _axes(text, what, row_id):
    try:
        return [int(v) for v in text.split("x")]
    except ValueError:
        raise ValueError(f"{row_id}: {what} {text!r} is not 'x'-separated integers") from None


def _pads(text, rank, row_id):
    lo, hi = [], []
    for entry in text.split("x"):
        a, sep, b = entry.partition(":")
        try:
            lo.append(int(a))
            hi.append(int(b) if sep else int(a))
        except ValueError:
            raise ValueError(f"{row_id}: pad entry {entry!r} is not p or lo:hi") from None
    if len(lo) != rank:
        raise ValueError(f"{row_id}: {len(lo)} pad entries for a rank-{rank} layer")
    return lo + hi  # ONNX order: begins..., ends...


def load_layers(path, suite=None, only=None):
    """The rows of bench/layers.csv (the format its header describes), in file order, as dicts; those of
    `suite` when given, those whose id is in `only` when given."""
    rows = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            cols = [c.strip() for c in text.split(",")]
            if len(cols) == 16:
                cols += ["f32", "NCHW"]
            if len(cols) != 18:
                raise ValueError(f"{path}:{line_no}: {len(cols)} columns, expected 16 or 18")
            (row_id, network, layer, suites, op, n, c, k, g, inp, kernel, stride, pad, dil, outpad, flags, dtype,
             layout) = cols
            spatial = _axes(inp, "input", row_id)
            r = len(spatial)
            row = dict(id=row_id, network=network, layer=layer, suites=suites.split("|"), op=op, n=int(n), c=int(c),
                       k=int(k), groups=int(g), input=spatial, kernel=_axes(kernel, "kernel", row_id),
                       strides=_axes(stride, "stride", row_id), pads=_pads(pad, r, row_id),
                       dilations=_axes(dil, "dilation", row_id), output_padding=_axes(outpad, "output_padding", row_id),
                       flags=flags.split(), dtype=dtype, layout=layout)
            if op not in _ONNX_OP:
                raise ValueError(f"{path}:{line_no}: unknown op {op!r}")
            rows.append(row)
    if suite is not None:
        names = sorted({s for r in rows for s in r["suites"]})
        if suite not in names:
            raise ValueError(f"{path}: no suite {suite!r} (the file has: {', '.join(names)})")
        rows = [r for r in rows if suite in r["suites"]]
    if only:
        missing = [i for i in only if i not in {r["id"] for r in rows}]
        if missing:
            raise ValueError(f"--only: {', '.join(missing)} not in the selected rows")
        rows = [r for r in rows if r["id"] in only]
    return rows


def onnx_attributes(row):
    """The row's ONNX attributes (also convarith.Plan's keywords)."""
    a = dict(strides=row["strides"], pads=row["pads"], dilations=row["dilations"])
    if row["op"] in ("conv", "conv_transpose"):
        a.update(kernel_shape=row["kernel"], group=row["groups"])
        if row["op"] == "conv_transpose":
            a["output_padding"] = row["output_padding"]
    else:
        a["kernel_shape"] = row["kernel"]
        if "ceil" in row["flags"]:
            a["ceil_mode"] = 1
        if row["op"] == "avg_pool":
            a["count_include_pad"] = 1 if "include_pad" in row["flags"] else 0
    return a


def shapes(row):
    x = [row["n"], row["c"]] + row["input"]
    if row["op"] == "conv":
        w = [row["k"], row["c"] // row["groups"]] + row["kernel"]
    elif row["op"] == "conv_transpose":
        w = [row["c"], row["k"] // row["groups"]] + row["kernel"]
    else:
        w = None
    return x, w


def taps(row):
    """Products summed per output (oracle::taps_per_output): C/group x kernel; pooling: the window."""
    kernel = int(np.prod(row["kernel"]))
    return kernel if row["op"] in ("max_pool", "avg_pool") else (row["c"] // row["groups"]) * kernel


def make_model(row, w):
    import onnx
    from convarith.onnx import one_node_model
    return one_node_model(_ONNX_OP[row["op"]], onnx_attributes(row), shapes(row)[0], w, None,
                          [onnx.helper.make_opsetid("", OPSET)], IR_VERSION, row["id"])


def make_inputs(row, seed):
    """Deterministic inputs in [-1, 1) (the seed and the row's id decide them)."""
    rng = np.random.default_rng([seed] + [ord(ch) for ch in row["id"]])
    x_shape, w_shape = shapes(row)
    x = rng.uniform(-1.0, 1.0, x_shape).astype(np.float32)
    w = None if w_shape is None else rng.uniform(-1.0, 1.0, w_shape).astype(np.float32)
    return x, w


# ---- the check -----------------------------------------------------------------------------------------------

def check(row, got, ours, magnitude, factor=PEER_FACTOR + OURS_FACTOR):
    """The project's acceptance rule (f32 output, no epilogue) of `got` against convarith's `ours`:
    (ok, max_abs_err, worst error / bound, failing elements, message). NaN passes only where ours is NaN."""
    got = np.asarray(got, np.float64)
    want = np.asarray(ours, np.float64)
    if got.shape != want.shape:
        return False, math.inf, math.inf, int(want.size), f"shape {list(got.shape)}, expected {list(want.shape)}"
    bound = factor * EPS32 * (taps(row) + 2) * np.asarray(magnitude, np.float64) + 2.0 ** -150 + 1e-30
    both_nan = np.isnan(got) & np.isnan(want)
    same_inf = np.isinf(want) & (got == want)
    with np.errstate(invalid="ignore"):
        diff = np.abs(got - want)
        ok_elem = both_nan | same_inf | (diff <= bound)
    bad = int(np.count_nonzero(~ok_elem))
    finite = np.isfinite(diff)
    max_abs = float(diff[finite].max()) if finite.any() else 0.0
    worst = float((diff[finite] / bound[finite]).max()) if finite.any() else 0.0
    if bad == 0:
        return True, max_abs, worst, 0, "ok"
    first = int(np.flatnonzero(~ok_elem.ravel())[0])
    idx = tuple(int(i) for i in np.unravel_index(first, want.shape))
    msg = (f"{bad} of {want.size} elements outside the bound; first at {list(idx)}: ort {got[idx]!r}, convarith "
           f"{want[idx]!r}, bound {bound[idx]:.3g}")
    return False, max_abs, worst, bad, msg


def magnitude_of(row, x, w):
    """sum |x w| per output (convarith on |x|, |w|); pooling: max |x| over the window (a max pool of |x|)."""
    import convarith
    attrs = onnx_attributes(row)
    if row["op"] in ("max_pool", "avg_pool"):
        attrs.pop("count_include_pad", None)
        return convarith.Plan("max_pool", x, **attrs).run(np.abs(x))
    aw = np.abs(w)
    return convarith.Plan(row["op"], x, aw, **attrs).run(np.abs(x), aw)


# ---- timing --------------------------------------------------------------------------------------------------

def _stats(times):
    t = np.sort(np.asarray(times, np.float64))
    if t.size == 0:
        return dict(reps=0, median_s=None, p10_s=None, p90_s=None, min_s=None)
    return dict(reps=int(t.size), median_s=float(np.median(t)), p10_s=float(np.percentile(t, 10)),
                p90_s=float(np.percentile(t, 90)), min_s=float(t[0]))


def choose_reps(estimate_s, opts):
    """bench/harness.cpp's choose_reps: --reps, else about target_seconds of work, clamped to [min, max]."""
    if opts.reps > 0:
        return opts.reps
    if not estimate_s or estimate_s <= 0:
        return opts.min_reps
    return int(min(max(opts.target_seconds / estimate_s, opts.min_reps), opts.max_reps))


def time_interleaved(fns, opts):
    """Warm-ups, then reps in turns (A B, B A, ...); reps from the slowest warm-up median. -> [stats]."""
    clock = time.perf_counter
    warm = [[] for _ in fns]
    for _ in range(max(opts.warmup, 1)):
        for i, fn in enumerate(fns):
            t0 = clock()
            fn()
            warm[i].append(clock() - t0)
    reps = choose_reps(max(float(np.median(w)) for w in warm), opts)
    times = [[] for _ in fns]
    order = list(range(len(fns)))
    for rep in range(reps):
        for i in (order if rep % 2 == 0 else order[::-1]):
            t0 = clock()
            fns[i]()
            times[i].append(clock() - t0)
    return [_stats(t) for t in times]


# ---- one layer -----------------------------------------------------------------------------------------------

def session_options(ort, opts):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.intra_op_num_threads = opts.threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    # Spinning intra-op workers are ONNX Runtime's default; on a shared machine they steal the cores the
    # other side needs (as libgomp's active wait does to oneDNN: the bench asks for OMP_WAIT_POLICY=passive).
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if opts.spin else "0")
    return so


def run_layer(row, opts, model_hook=None):
    """The result dict of one layer. model_hook(model) -> model edits the ONNX model before its session is
    made (the tests use it to hand the check a wrong model)."""
    import convarith
    import onnxruntime as ort

    x_shape, w_shape = shapes(row)
    res = dict(id=row["id"], network=row["network"], layer=row["layer"], op=row["op"], n=row["n"], c=row["c"],
               k=row["k"], groups=row["groups"], input="x".join(map(str, row["input"])),
               kernel="x".join(map(str, row["kernel"])), dtype=row["dtype"], layout=row["layout"],
               x_shape=x_shape, w_shape=w_shape, attributes=onnx_attributes(row), checked=False, correct=False,
               ort=_stats([]), convarith_py=_stats([]))
    if row["dtype"] != "f32" or row["layout"] != "NCHW":
        res.update(status="skipped", reason=f"{row['dtype']} {row['layout']}: the ONNX Runtime peer runs f32 NCHW rows")
        return res
    try:
        x, w = make_inputs(row, opts.seed)
        attrs = onnx_attributes(row)
        # The weights are constant for both: ONNX Runtime's initializers, convarith's constant_weights (prepared
        # once by the plan, as `convarith bench` runs it by default).
        plan = convarith.Plan(row["op"], x, w, constant_weights=w is not None, **attrs)
        info = plan.shape
        res.update(output=list(plan.output_shape), flops=info.flops, min_bytes=info.min_bytes,
                   convarith_algorithm=plan.algorithm, convarith_weights="constant" if w is not None else "")
        ours = plan.run(x, w)
        y_ours = plan.empty_output(x)
        magnitude = magnitude_of(row, x, w)

        model = make_model(row, w)
        if model_hook is not None:
            model = model_hook(model)
        t0 = time.perf_counter()
        sess = ort.InferenceSession(model.SerializeToString(), session_options(ort, opts),
                                    providers=["CPUExecutionProvider"])
        res["ort_setup_s"] = time.perf_counter() - t0
        y = np.full(plan.output_shape, np.nan, np.float32)
        binding = sess.io_binding()
        binding.bind_cpu_input("x", x)
        binding.bind_output("y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
        sess.run_with_iobinding(binding)
    except Exception as e:  # a model ONNX Runtime refuses, a layer convarith refuses: reported, not fatal
        res.update(status="error", reason=f"{type(e).__name__}: {e}")
        return res
    ok, max_abs, worst, bad, msg = check(row, y, ours, magnitude)
    res.update(checked=True, correct=ok, max_abs_err=max_abs, error_over_bound=worst, bad_elements=bad,
               max_abs_output=float(np.nanmax(np.abs(ours))) if ours.size else 0.0)
    if not ok:
        res.update(status="wrong", reason=msg)
        return res
    t_ort, t_ours = time_interleaved([lambda: sess.run_with_iobinding(binding), lambda: plan.run(x, None, out=y_ours)],
                                     opts)
    res.update(status="ok", ort=t_ort, convarith_py=t_ours)
    return res


# ---- the environment block -----------------------------------------------------------------------------------

def cpu_info(text=None):
    """(CPU model, the ISA_FLAGS present) from /proc/cpuinfo's text (read when None)."""
    if text is None:
        try:
            with open("/proc/cpuinfo") as f:
                text = f.read()
        except OSError:
            text = ""
    model, flags = None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None:
            model = value.strip()
        elif key == "flags" and flags is None:
            flags = set(value.split())
    return model or platform.processor() or "unknown CPU", [f for f in ISA_FLAGS if f in (flags or ())]


def _git_sha():
    try:
        root = os.path.dirname(HERE)
        out = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             timeout=10)
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "bench", "python"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            one, five, fifteen = f.read().split()[:3]
        return f"{one} {five} {fifteen} (1, 5, 15 min)"
    except (OSError, ValueError):
        return ""


def environment(opts, argv):
    import convarith
    import onnx
    import onnxruntime as ort
    model, flags = cpu_info()
    return dict(
        date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), git_sha=_git_sha(),
        cpu_model=model, cpu_flags=" ".join(flags) if flags else "none of " + " ".join(ISA_FLAGS),
        logical_cores=os.cpu_count(), usable_cores=len(os.sched_getaffinity(0)), load_average=_loadavg(),
        onnxruntime=ort.__version__, onnx=onnx.__version__, numpy=np.__version__, convarith=convarith.__version__,
        python=platform.python_version(), providers="CPUExecutionProvider",
        graph_optimization_level="ORT_ENABLE_ALL", execution_mode="ORT_SEQUENTIAL",
        intra_op_num_threads=opts.threads, inter_op_num_threads=1, allow_spinning=bool(opts.spin),
        opset=OPSET, warmup=opts.warmup, reps=opts.reps or f"adaptive {opts.min_reps}..{opts.max_reps}, "
        f"~{opts.target_seconds} s per layer", check=f"vs convarith's CPU output, oracle::accept with factor "
        f"{PEER_FACTOR + OURS_FACTOR:g} (peer {PEER_FACTOR:g} + ours {OURS_FACTOR:g})",
        command=" ".join(["ort_peer.py"] + list(argv)), suite=opts.suite, layers_file=os.path.relpath(opts.layers))


# ---- main ----------------------------------------------------------------------------------------------------

def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="default", help="a suite of the layer file (default: default)")
    p.add_argument("--layers", default=os.path.join(HERE, "layers.csv"),
                   help="the layer file (default: bench/layers.csv)")
    p.add_argument("--only", type=lambda s: [t.strip() for t in s.split(",") if t.strip()], default=None,
                   metavar="ID,ID", help="only these rows of the suite")
    p.add_argument("--json", metavar="FILE", help="write the results and the environment block as JSON")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs per side before timing (default 10)")
    p.add_argument("--reps", type=int, default=0, help="timed runs per side (default 0: adaptive)")
    p.add_argument("--min-reps", type=int, default=10)
    p.add_argument("--max-reps", type=int, default=1000)
    p.add_argument("--target-seconds", type=float, default=0.25, help="adaptive reps aim at this much work per side")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                   help="ONNX Runtime's intra_op_num_threads (default: the cores this process may use)")
    p.add_argument("--spin", action="store_true", help="let ONNX Runtime's workers spin (its default; off here)")
    p.add_argument("--seed", type=int, default=0)
    return p


def fmt_us(s):
    return "-" if s is None else (f"{s * 1e6:.1f}" if s < 1e-2 else f"{s * 1e6:.0f}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    opts = parser().parse_args(argv)
    if opts.threads < 1 or opts.warmup < 0 or opts.reps < 0 or opts.min_reps < 1 or opts.max_reps < opts.min_reps:
        print("ort_peer.py: --threads and --min-reps must be >= 1, --warmup and --reps >= 0, --max-reps >= "
              "--min-reps", file=sys.stderr)
        return 2
    try:
        rows = load_layers(opts.layers, opts.suite, opts.only)
    except (OSError, ValueError) as e:
        print(f"ort_peer.py: {e}", file=sys.stderr)
        return 2
    env = environment(opts, argv)
    print(f"ONNX Runtime {env['onnxruntime']} on {env['cpu_model']} ({env['cpu_flags']}), "
          f"{opts.threads} intra-op threads, load {env['load_average']}")
    print(f"{'layer':<12} {'op':<15} {'status':<8} {'ORT us':>10} {'ours(py) us':>12} {'ORT/ours':>9}  err/bound")
    results = []
    for row in rows:
        r = run_layer(row, opts)
        results.append(r)
        ratio = (r["ort"]["median_s"] / r["convarith_py"]["median_s"]) if r["status"] == "ok" else None
        err = f"{r['error_over_bound']:.2g}" if r.get("checked") else r.get("reason", "")[:60]
        print(f"{r['id']:<12} {r['op']:<15} {r['status']:<8} {fmt_us(r['ort']['median_s']):>10} "
              f"{fmt_us(r['convarith_py']['median_s']):>12} {f'{ratio:.2f}x' if ratio else '-':>9}  {err}",
              flush=True)
    env["load_average_end"] = _loadavg()
    if opts.json:
        tmp = opts.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(schema=SCHEMA, environment=env, results=results), f, indent=1)
            f.write("\n")
        os.replace(tmp, opts.json)
    failed = [r for r in results if r["status"] in ("wrong", "error")]
    for r in failed:
        print(f"{r['id']}: {r['status'].upper()}: {r['reason']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
