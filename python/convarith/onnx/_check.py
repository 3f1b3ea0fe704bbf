"""Checking a model: every conv and pooling node validated by convarith's arithmetic, explained when it is
invalid (the library's nearest valid changes), and the sweep of one input axis (the smallest valid size and
the sizes where two branches of the network disagree, the U-Net odd-size failure)."""

from dataclasses import dataclass, field

import convarith

from ._graph import AXIS_NAMES, CONV_OPS, conv_node, dependents, node_name, rule


@dataclass
class NodeCheck:
    index: int  # position among the graph's nodes
    name: str
    op_type: str
    op: str  # convarith's op
    x_shape: tuple
    w_shape: tuple
    attrs: dict  # the ONNX attributes passed to convarith
    info: object = None  # convarith.ShapeInfo when valid
    error: str = None  # the library's message when invalid
    fixes: tuple = ()  # convarith.AxisFix per axis when invalid
    onnx_shape: tuple = None  # ONNX's inferred output shape (None: inference left a gap)
    unsupported: list = field(default_factory=list)

    @property
    def status(self):
        if self.x_shape is None or (self.op in ("conv", "conv_transpose") and self.w_shape is None):
            return "unknown"
        if self.error:
            return "invalid"
        if self.unsupported:
            return "unsupported"
        if self.onnx_shape is not None and self.info is not None and self.onnx_shape != self.info.output_shape:
            return "mismatch"
        return "ok"

    def to_dict(self):
        d = {"index": self.index, "name": self.name, "op_type": self.op_type, "op": self.op,
             "x_shape": _list(self.x_shape), "w_shape": _list(self.w_shape), "attributes": self.attrs,
             "status": self.status, "onnx_shape": _list(self.onnx_shape), "unsupported": self.unsupported}
        if self.info is not None:
            d["output_shape"] = list(self.info.output_shape)
            d["pads"] = list(self.info.pads)
            d["axes"] = [{"relationship": a.relationship, "name": a.name, "formula": a.formula} for a in self.info.axes]
        if self.error:
            d["error"] = self.error
            d["fixes"] = [{"axis": f.axis, "valid": f.valid, "reason": f.reason, "changes": list(f.changes),
                           "min_input": f.min_input, "padding": _list(f.padding),
                           "output_padding_range": _list(f.output_padding_range),
                           "output_shape_range": _list(f.output_shape_range)} for f in self.fixes]
        return d


@dataclass
class Disagreement:
    index: int
    name: str
    op_type: str
    shapes: list  # the input shapes that do not fit together
    reason: str
    branches: int  # inputs computed from the model's input: 2 or more is a skip connection

    def to_dict(self):
        return {"index": self.index, "name": self.name, "op_type": self.op_type,
                "shapes": [_list(s) for s in self.shapes], "reason": self.reason, "branches": self.branches}


def _list(v):
    return None if v is None else list(v)


def propagate(g, input_shapes, base=None, dependent=None):
    """Shapes of every tensor, the conv/pool node checks and the disagreements.

    Without `base`: ONNX's inferred shapes where inference gave them, convarith's arithmetic for conv and
    pooling nodes (checked against ONNX's), the pass-through rules elsewhere. With `base` (the result of a
    first call) and `dependent` (the tensors computed from a changed input): nodes that read no dependent
    tensor keep their base shapes, the others are recomputed from the rules and convarith alone."""
    shapes = {name: tuple(t.dims) for name, t in g.initializers.items()}
    shapes.update(input_shapes)
    checks, conflicts = [], []
    for idx, node in enumerate(g.nodes):
        if base is not None and not any(i in dependent for i in node.input):
            for o in node.output:
                shapes[o] = base.get(o)
            continue
        ins = [shapes.get(i) if i else None for i in node.input]
        if base is None:
            ins = [s if s is not None or not i else g.inferred.get(i) for s, i in zip(ins, node.input)]
        outs = None
        if node.op_type in CONV_OPS:
            op, attrs, unsupported, info, error = conv_node(node, ins)
            onnx_shape = g.inferred.get(node.output[0]) if base is None else None
            c = NodeCheck(idx, node_name(node, idx), node.op_type, op, ins[0] if ins else None,
                          ins[1] if op in ("conv", "conv_transpose") and len(ins) > 1 else None, attrs, info, error,
                          onnx_shape=onnx_shape, unsupported=unsupported)
            if error:
                try:
                    c.fixes = convarith.suggest(op, c.x_shape, c.w_shape, **attrs)
                except (ValueError, TypeError):
                    c.fixes = ()
            checks.append(c)
            if info is not None:
                outs = [info.output_shape] * len(node.output)  # MaxPool's Indices have Y's shape
        else:
            outs, conflict = rule(g, node, ins)
            if conflict:
                branches = sum(1 for i in node.input if dependent is None or i in dependent)
                if base is None:
                    branches = sum(1 for i in node.input if i and not g.is_constant(i))
                conflicts.append(Disagreement(idx, node_name(node, idx), node.op_type, ins, conflict, branches))
        for j, o in enumerate(node.output):
            if not o:
                continue
            s = outs[j] if outs is not None and j < len(outs) else None
            if s is None and base is None:
                s = g.inferred.get(o)
            shapes[o] = s
    return shapes, checks, conflicts


@dataclass
class Report:
    path: str
    inputs: dict
    checks: list
    conflicts: list
    stripped: dict  # name -> (shape, value) of weights the model ships as ConstantOfShape
    inference_error: str = None
    sweep: dict = None
    run: list = None
    bench: list = None
    notes: list = field(default_factory=list)

    def counts(self):
        c = {}
        for n in self.checks:
            c[n.status] = c.get(n.status, 0) + 1
        return c

    @property
    def ok(self):
        bad = any(n.status in ("invalid", "mismatch") for n in self.checks) or bool(self.conflicts)
        if self.run:
            bad = bad or any(r.get("status") == "FAIL" for r in self.run)
        return not bad

    def to_dict(self):
        d = {"model": self.path, "inputs": {k: list(v) for k, v in self.inputs.items()},
             "counts": self.counts(), "ok": self.ok, "nodes": [n.to_dict() for n in self.checks],
             "disagreements": [c.to_dict() for c in self.conflicts],
             "stripped_weights": {"tensors": len(self.stripped),
                                  "values": sorted({float(f"{v:.6g}") for _, v in self.stripped.values()})},
             "notes": self.notes}
        if self.inference_error:
            d["inference_error"] = self.inference_error
        for k in ("sweep", "run", "bench"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        return d


def check_model(g):
    """Validates every Conv, ConvTranspose, MaxPool, AveragePool, GlobalAveragePool and GlobalMaxPool node of
    the Graph `g` with convarith; returns a Report."""
    _, checks, conflicts = propagate(g, g.input_shapes)
    return Report(g.path, dict(g.input_shapes), checks, conflicts, g.stripped_weights(), g.inference_error)


def _ranges(values):
    """[1, 2, 3, 5, 7, 8] -> '1-3, 5, 7-8'."""
    out, start, prev = [], None, None
    for v in values:
        if start is None:
            start = prev = v
        elif v == prev + 1:
            prev = v
        else:
            out.append(f"{start}-{prev}" if prev > start else f"{start}")
            start = prev = v
    if start is not None:
        out.append(f"{start}-{prev}" if prev > start else f"{start}")
    return ", ".join(out)


def _pattern(values, lo, hi):
    """'every multiple of m from a' when `values` is exactly that within [lo, hi], else None."""
    if len(values) < 2:
        return None
    step = values[1] - values[0]
    if step < 2 or any(b - a != step for a, b in zip(values, values[1:])):
        return None
    if values[0] - step >= lo or values[-1] + step <= hi:
        return None
    r = values[0] % step
    return f"every size = {r} mod {step} from {values[0]}" if r else f"every multiple of {step} from {values[0]}"


def sweep_axis(g, input_name=None, axis=None, sizes=None):
    """For one axis of one model input (or several axes set to the same size: axis=(2, 3) for square images),
    which sizes every conv/pool node accepts and where two branches disagree, the other dims as given.
    Returns a dict: input, axes, sizes checked, smallest_valid, valid (ranges, and the pattern when they are
    evenly spaced), invalid (ranges, and the failing node at the largest), disagree (the U-Net failure: every
    node valid but a join's shapes differ; the first size's node and shapes)."""
    if input_name is None:
        candidates = [n for n, s in g.input_shapes.items() if len(s) >= 3]
        if not candidates:
            raise ValueError("no model input has spatial dims to sweep")
        input_name = candidates[0]
    if input_name not in g.input_shapes:
        raise ValueError(f"{input_name!r} is not an input of the model (inputs: {', '.join(g.input_shapes)})")
    base_shape = g.input_shapes[input_name]
    rank = len(base_shape)
    given = [rank - 1] if axis is None else ([axis] if isinstance(axis, int) else list(axis))
    axes = sorted({a + rank if a < 0 else a for a in given})
    if not axes or any(not 0 <= a < rank for a in axes):
        raise ValueError(f"axis {','.join(map(str, given))} is outside input {input_name!r} of rank {rank}")
    if sizes is None:
        sizes = range(1, max(base_shape[a] for a in axes) + 1)
    base_shapes, _, _ = propagate(g, g.input_shapes)
    dep = dependents(g, input_name)
    valid, invalid, disagree = [], [], []
    first_invalid, first_disagree = {}, {}
    for v in sizes:
        shp = list(base_shape)
        for a in axes:
            shp[a] = v
        inputs = dict(g.input_shapes)
        inputs[input_name] = tuple(shp)
        _, checks, conflicts = propagate(g, inputs, base=base_shapes, dependent=dep)
        bad = [c for c in checks if c.error]
        if bad:
            invalid.append(v)
            first_invalid[v] = f"{bad[0].name} ({bad[0].op_type}): {bad[0].error}"
        elif conflicts:
            disagree.append(v)
            c = conflicts[0]
            first_disagree[v] = (f"{c.name} ({c.op_type}) inputs " + ", ".join("x".join(map(str, s)) for s in c.shapes)
                                 + f": {c.reason}")
        else:
            valid.append(v)
    lo, hi = (min(sizes), max(sizes)) if len(sizes) else (0, -1)
    return {
        "input": input_name, "axes": axes, "sizes": [lo, hi],
        "smallest_valid": valid[0] if valid else None,
        "valid": _ranges(valid), "valid_pattern": _pattern(valid, lo, hi), "valid_count": len(valid),
        "invalid": _ranges(invalid), "invalid_count": len(invalid),
        "disagree": _ranges(disagree), "disagree_count": len(disagree), "disagree_sizes": disagree,
        "example_invalid": first_invalid[invalid[-1]] if invalid else None,
        "example_disagree": ({"size": disagree[0], "where": first_disagree[disagree[0]]} if disagree else None),
    }


# ---- text -----------------------------------------------------------------------------------------------


def _x(v):
    return "?" if v is None else "x".join(str(d) for d in v)


def attribute_text(c):
    a, parts = c.attrs, []
    if "kernel_shape" in a:
        parts.append("k" + _x(a["kernel_shape"]))
    elif c.w_shape is not None:
        parts.append("k" + _x(c.w_shape[2:]))
    for key, tag in (("strides", "s"), ("dilations", "d"), ("output_padding", "a"), ("output_shape", "out")):
        if key not in a or (key in ("strides", "dilations") and all(v == 1 for v in a[key])):
            continue
        parts.append(tag + _x(a[key]))
    if "pads" in a and any(a["pads"]):
        parts.append("p" + ",".join(map(str, a["pads"])))
    if "auto_pad" in a:
        parts.append(a["auto_pad"])
    if a.get("group", 1) != 1:
        parts.append(f"g{a['group']}")
    if a.get("ceil_mode"):
        parts.append("ceil")
    if a.get("count_include_pad"):
        parts.append("incl_pad")
    return " ".join(parts) or "-"


def axis_lines(c):
    """The paper's relationship per axis; axes with the same formula share a line."""
    if c.info is None:
        return []
    names = AXIS_NAMES.get(len(c.info.axes), tuple(str(j) for j in range(len(c.info.axes))))
    groups = []
    for a in c.info.axes:
        text = f"{a.name}: {a.formula}"
        if groups and groups[-1][1] == text:
            groups[-1][0].append(names[a.axis])
        else:
            groups.append(([names[a.axis]], text))
    return [f"{','.join(n)}: {t}" for n, t in groups]


def fix_lines(c):
    if not c.fixes:
        return [f"why: {c.error}"]
    names = AXIS_NAMES.get(len(c.fixes), tuple(str(j) for j in range(len(c.fixes))))
    out = [f"why: {c.error}"]
    for f in c.fixes:
        if f.valid and not f.output_padding_range:
            continue
        if not f.valid:
            out.append(f"axis {names[f.axis]}: nearest valid changes (any one): " + "; ".join(f.changes))
        if c.op == "conv_transpose" and f.output_padding_range and f.output_shape_range:
            lo, hi = f.output_padding_range
            olo, ohi = f.output_shape_range
            out.append(f"axis {names[f.axis]}: legal output_padding {lo}..{hi}; output_shape can reach {olo}..{ohi}")
    return out


def format_report(r, out, every_node=True):
    w = out.write
    w(f"model {r.path or '(in memory)'}: inputs " + ", ".join(f"{k} {_x(v)}" for k, v in r.inputs.items()) + "\n")
    if r.stripped:
        vals = ", ".join(f"{v:.6g}" for v in sorted({v for _, v in r.stripped.values()}))
        w(f"note: {len(r.stripped)} weight tensors are stripped (ConstantOfShape filled with {vals}); the shapes "
          "are the real model's\n")
    if r.inference_error:
        w(f"note: ONNX shape inference failed ({r.inference_error}); convarith's rules only\n")
    w(f"{'node#':>5} {'name':<30} {'op':<18} {'input -> output':<34} {'attributes':<24} status\n")
    for c in r.checks:
        if not every_node and c.status == "ok":
            continue
        y = c.info.output_shape if c.info is not None else None
        io = f"{_x(c.x_shape)} -> {_x(y)}"
        w(f"{c.index:>5} {c.name[:30]:<30} {c.op_type:<18} {io:<34} {attribute_text(c)[:24]:<24} {c.status}\n")
        for line in axis_lines(c):
            w(f"{'':6}{line}\n")
        if c.status == "mismatch":
            w(f"{'':6}ONNX's shape inference says {_x(c.onnx_shape)}\n")
        if c.unsupported:
            w(f"{'':6}attributes convarith does not model: {', '.join(c.unsupported)}\n")
        if c.error:
            for line in fix_lines(c):
                w(f"{'':6}{line}\n")
    for d in r.conflicts:
        kind = "skip connection" if d.branches >= 2 else "inputs"
        w(f"DISAGREE node {d.index} {d.name} ({d.op_type}, {kind}): " + ", ".join(_x(s) for s in d.shapes) +
          f": {d.reason}\n")
    counts = r.counts()
    w(f"{len(r.checks)} conv/pool nodes: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) +
      (f"; {len(r.conflicts)} disagreeing joins" if r.conflicts else "") + "\n")
    rels = {}
    for c in r.checks:
        if c.info is not None:
            for a in c.info.axes:
                rels[a.relationship] = rels.get(a.relationship, 0) + 1
    if rels:
        w("relationships (per axis): " + ", ".join(
            (f"{k}: {v}" if k else f"general: {v}") for k, v in sorted(rels.items())) + "\n")
    for note in r.notes:
        w(f"note: {note}\n")


def format_sweep(s, out):
    w = out.write
    which = f"axis {s['axes'][0]}" if len(s["axes"]) == 1 else "axes " + ",".join(map(str, s["axes"])) + " together"
    w(f"sweep of input {s['input']} {which}, sizes {s['sizes'][0]}..{s['sizes'][1]}:\n")
    w(f"  smallest valid size: {s['smallest_valid']}\n")
    w(f"  valid ({s['valid_count']}): {s['valid_pattern'] or s['valid'] or 'none'}\n")
    if s["invalid_count"]:
        w(f"  a conv/pool node is invalid ({s['invalid_count']}): {s['invalid']}\n")
        w(f"    e.g. at the largest such size: {s['example_invalid']}\n")
    if s["disagree_count"]:
        w(f"  every node valid but branches disagree ({s['disagree_count']}): {s['disagree']}\n")
        e = s["example_disagree"]
        w(f"    e.g. size {e['size']}: {e['where']}\n")
