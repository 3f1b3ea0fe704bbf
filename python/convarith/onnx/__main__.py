"""python -m convarith.onnx: check an ONNX model's conv and pooling nodes with convarith."""

import argparse
import json
import sys

USAGE = """python -m convarith.onnx MODEL.onnx [options]

Walks every Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool node (shapes from
ONNX's shape inference, convarith's arithmetic where inference leaves gaps), validates each with convarith and
prints, per node, its attributes, output shape and the paper's relationship per axis. An invalid node is
explained with the library's nearest valid changes. Exit status: 0 all valid (and, with --run, every node within
its error bound), 1 otherwise, 2 on a usage error."""


def _shape_arg(text):
    name, sep, dims = text.rpartition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NAME=D0,D1,... (e.g. data=1,3,224,224)")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the dims must be integers separated by commas") from None
    if any(d < 0 for d in shape):
        raise argparse.ArgumentTypeError(f"{text!r}: dims must be >= 0")
    return name, shape


def _sweep_arg(text):
    """[INPUT:]AXIS[,AXIS...][=LO-HI]"""
    spec, _, rng = text.partition("=")
    name, _, axis = spec.rpartition(":")
    try:
        axis = tuple(int(a) for a in axis.split(","))
        sizes = None
        if rng:
            lo, _, hi = rng.partition("-")
            sizes = range(int(lo), int(hi) + 1)
            if int(lo) < 1 or int(hi) < int(lo):
                raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected [INPUT:]AXIS[,AXIS...][=LO-HI], e.g. 3, 2,3 or "
                                         "data:2=1-64") from None
    return name or None, axis, sizes


def parser():
    p = argparse.ArgumentParser(prog="python -m convarith.onnx", usage=USAGE)
    p.add_argument("model")
    p.add_argument("--input-shape", action="append", type=_shape_arg, default=[], metavar="NAME=D0,D1,...",
                   help="set an input's shape (needed for symbolic dims); repeatable")
    p.add_argument("--sweep", type=_sweep_arg, metavar="[INPUT:]AXIS[,AXIS...][=LO-HI]",
                   help="for this axis of an input (default the first input with spatial dims; several axes: all "
                        "set to each size), the smallest size every conv/pool node accepts and the sizes where two "
                        "branches (Add, Concat, ...) disagree; sizes 1..the input's own by default")
    p.add_argument("--run", action="store_true",
                   help="run each node through convarith on its real input (captured from ONNX Runtime running "
                        "the model on seeded random inputs) and report the error against ONNX Runtime's output")
    p.add_argument("--bench", action="store_true", help="time each node on convarith and ONNX Runtime (CPU)")
    p.add_argument("--repeat", type=int, default=10, help="timed runs per node and side for --bench (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated inputs and weights (default 0)")
    p.add_argument("--keep-stripped", action="store_true",
                   help="run stripped weights (ConstantOfShape) as their constant instead of generated values")
    p.add_argument("--json", metavar="FILE", help="write the whole report as JSON")
    p.add_argument("--quiet", action="store_true", help="per-node lines only for nodes that are not ok, then the summaries")
    return p


def _bench_table(rows, out, every_node=True):
    w = out.write if every_node else (lambda s: None)
    w(f"{'#':>4}  {'node':<30} {'op':<18} {'convarith ms':>12} {'ORT ms':>10} {'ORT/ours':>9}  algorithm\n")
    tot_o = tot_r = 0.0
    for r in rows:
        if r["status"] != "OK":
            w(f"{r['index']:>4}  {r['name'][:30]:<30} {r['op_type']:<18} {'skipped':>12}\n")
            continue
        tot_o += r["convarith_ms"]
        tot_r += r["ort_ms"]
        w(f"{r['index']:>4}  {r['name'][:30]:<30} {r['op_type']:<18} {r['convarith_ms']:>12.3f} {r['ort_ms']:>10.3f} "
          f"{r['ort_ms'] / r['convarith_ms']:>8.2f}x  {r['algorithm']}\n")
    if tot_o > 0:
        out.write(f"{'':6}{'total':<49} {tot_o:>12.3f} {tot_r:>10.3f} {tot_r / tot_o:>8.2f}x\n")
    return tot_o, tot_r


def _run_table(rows, out, every_node=True):
    w = out.write
    w(f"{'#':>4}  {'node':<30} {'op':<18} {'max |err|':>10} {'max |ort|':>10} {'err/bound':>9}  result\n")
    for r in rows:
        if not every_node and r["status"] == "PASS":
            continue
        if r["status"] in ("SKIP",) or "max_abs_error" not in r:
            w(f"{r['index']:>4}  {r['name'][:30]:<30} {r['op_type']:<18} {'':>10} {'':>10} {'':>9}  {r['status']}: "
              f"{r.get('reason', '')}\n")
            continue
        w(f"{r['index']:>4}  {r['name'][:30]:<30} {r['op_type']:<18} {r['max_abs_error']:>10.3g} "
          f"{r['max_abs_ort']:>10.3g} {r['error_over_bound']:>9.3g}  {r['status']}\n")


def main(argv=None, out=None):
    out = out or sys.stdout
    args = parser().parse_args(argv)
    try:
        import onnx  # noqa: F401
    except ImportError:
        print("python -m convarith.onnx needs the onnx package: pip install onnx", file=sys.stderr)
        return 2
    from . import _check, _graph, _run

    try:
        g = _graph.Graph(args.model, dict(args.input_shape))
    except (ValueError, OSError) as e:
        print(f"convarith.onnx: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a file that is not a model: protobuf's DecodeError and friends
        print(f"convarith.onnx: cannot load {args.model}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    report = _check.check_model(g)
    if args.sweep is not None:
        name, axis, sizes = args.sweep
        try:
            report.sweep = _check.sweep_axis(g, name, axis, sizes)
        except (ValueError, KeyError) as e:
            print(f"convarith.onnx: --sweep: {e}", file=sys.stderr)
            return 2
    if args.run or args.bench:
        model, notes = _run.prepare_run(g, args.seed, args.keep_stripped)
        report.notes.extend(notes)
        values = _run.capture(g, model, report.checks, _run.random_inputs(g, args.seed), report.notes)
        if args.run:
            report.run = _run.run_nodes(g, model, report.checks, values)
        if args.bench:
            report.bench = _run.bench_nodes(g, model, report.checks, values, repeat=args.repeat)
    _check.format_report(report, out, every_node=not args.quiet)
    if report.sweep is not None:
        _check.format_sweep(report.sweep, out)
    if report.run is not None:
        out.write("--run: convarith vs ONNX Runtime on each node's captured input\n")
        _run_table(report.run, out, every_node=not args.quiet)
        res = {}
        for r in report.run:
            res[r["status"]] = res.get(r["status"], 0) + 1
        worst = max((r["max_abs_error"] for r in report.run if "max_abs_error" in r), default=0.0)
        out.write("--run: " + ", ".join(f"{v} {k}" for k, v in sorted(res.items())) + f"; max |err| {worst:.3g}\n")
    if report.bench is not None:
        out.write("--bench: median time per node (ONNX Runtime: a one-node model, CPU provider)\n")
        t_o, t_r = _bench_table(report.bench, out, every_node=not args.quiet)
        if t_o > 0:
            out.write(f"--bench: total convarith {t_o:.3f} ms, ONNX Runtime {t_r:.3f} ms ({t_r / t_o:.2f}x)\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report.to_dict(), f, indent=1)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
