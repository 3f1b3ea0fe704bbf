#!/usr/bin/env python3
"""tools/inspect/kernel_inspect.py — kernel inspection without a GPU.

Compiles every kernels/*.cu to cubins (sm_90 and sm_80 by default) with the CMake build's nvcc flags, reads
ptxas's resource report and the SASS (nvdisasm from the PyPI wheel nvidia-cuda-nvdisasm, installed into a venv
under build/inspect/ on first use), and reports per kernel instantiation:
  registers, spill stores/loads, stack frame, static shared memory, barriers;
  dynamic shared memory from the launch configuration (tools/inspect/kernel_facts.cpp prints the kernels'
  own launch constants) and the occupancy per SM from the device profile (kernels/device_profile.hpp, the
  one place for limits and rates: kernel_facts.cpp prints it, nothing is copied here);
  the instruction mix of every innermost loop (a loop is the range from a backward branch's target to the
  branch; innermost: no other loop inside it) and of the hot loop (the innermost loop with the most
  FFMA/HFMA2/HMMA instructions, else the one with the most global loads): FMA share, LDG/LDS/STS/STG with
  widths, integer/address overhead, constant-bank reads, branches, barriers.
These are static counts of the loop bodies' SASS (every instruction in the address range once), not issued
instructions measured on a GPU; a loop body with skipped branches counts the skipped code too.

Usage:
  python3 tools/inspect/kernel_inspect.py [--arch sm_90,sm_80] [--json FILE] [--quiet]
  python3 tools/inspect/kernel_inspect.py --check tools/inspect/baseline.json     (the CI gate, .ci/inspect.sh)
  python3 tools/inspect/kernel_inspect.py --update                                 (rewrite the baseline)
Exit status: 0 ok; 1 a kernel is worse than the baseline beyond the tolerances (or spills), or a compile
failed; 2 bad arguments or a tool that cannot be installed.
"""
import argparse
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import venv

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WORK = os.path.join(ROOT, "build", "inspect")
BASELINE = os.path.join(ROOT, "tools", "inspect", "baseline.json")
# Wheels that read nvcc 13.0 cubins (13.x); pinned to a major version, not a build, so pip can resolve offline
# from its cache.
WHEELS = ["nvidia-cuda-nvdisasm>=13,<14"]

# Gate tolerances (stated in .ci/inspect.sh's header and bench/README.md too).
TOL_REGS_ABS = 4          # registers may grow by at most 4 ...
TOL_REGS_REL = 0.10       # ... or 10 %, whichever is larger
TOL_FMA_SHARE_ABS = 0.02  # the hot loop's FMA share may drop by at most 2 percentage points

FMA_OPS = {"FFMA": "ffma", "FFMA2": "ffma", "HFMA2": "hfma2", "HMMA": "hmma", "DFMA": "dfma"}
FP_OPS = {"FADD", "FMUL", "FMNMX", "FSETP", "FSEL", "FCHK", "MUFU", "FADD2", "FMUL2", "HADD2", "HMUL2", "FRND",
          "FSET", "DADD", "DMUL", "DSETP"}
INT_OPS = {"LEA", "SHF", "LOP3", "SEL", "MOV", "PRMT", "S2R", "S2UR", "R2UR", "P2R", "R2P", "PLOP3", "VIADD",
           "VIMNMX", "FLO", "POPC", "BREV", "SGXT", "BMSK", "CS2R", "I2F", "F2I", "I2FP", "F2IP", "SHFL",
           "VOTE", "VOTEU", "MATCH", "CCTL"}
BRANCH_OPS = {"BRA", "BRX", "JMP", "JMX", "CALL", "RET", "EXIT", "BSSY", "BSYNC", "BREAK", "WARPSYNC", "BPT",
              "KILL", "YIELD"}
BARRIER_OPS = {"BAR", "MEMBAR", "DEPBAR", "ERRBAR", "FENCE", "SYNCS", "ARRIVES"}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- tools ----------------------------------------------------------------------------------------------------
def find_nvcc():
    nvcc = os.environ.get("NVCC") or shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
    return nvcc if os.path.exists(nvcc) else None


def ensure_nvdisasm():
    """nvdisasm: $NVDISASM, else the venv under build/inspect (created and filled from PyPI on first use)."""
    if os.environ.get("NVDISASM"):
        return os.environ["NVDISASM"]
    venv_dir = os.path.join(WORK, "venv")
    py = os.path.join(venv_dir, "bin", "python")

    def found():
        for base, _, files in os.walk(os.path.join(venv_dir, "lib")):
            if "nvdisasm" in files and base.endswith("bin"):
                return os.path.join(base, "nvdisasm")
        return None

    hit = found() if os.path.exists(py) else None
    if hit:
        return hit
    log("inspect: installing %s into %s" % (" ".join(WHEELS), venv_dir))
    venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
    r = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check"] + WHEELS)
    if r.returncode != 0:
        return None
    return found()


def kernel_facts(nvcc):
    """Device profiles and launch constants from the C++ headers (tools/inspect/kernel_facts.cpp)."""
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    exe = os.path.join(WORK, "kernel_facts")
    src = os.path.join(ROOT, "tools", "inspect", "kernel_facts.cpp")
    cmd = [cxx, "-std=c++17", "-O0", "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "kernels"),
           "-I" + os.path.join(ROOT, "host"), src, "-o", exe]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("kernel_facts.cpp failed to compile:\n" + r.stderr)
    return json.loads(subprocess.run([exe], capture_output=True, text=True, check=True).stdout)


# ---- compile ---------------------------------------------------------------------------------------------------
def compile_cubin(nvcc, src, arch):
    name = os.path.splitext(os.path.basename(src))[0]
    out_dir = os.path.join(WORK, arch)
    os.makedirs(out_dir, exist_ok=True)
    cubin = os.path.join(out_dir, name + ".cubin")
    # The CMake build's CUDA flags (CMakeLists.txt: -lineinfo -Xptxas=--warn-on-spills --expt-relaxed-constexpr)
    # at -O3 (nvcc's default for device code).
    cmd = [nvcc, "-std=c++17", "-arch=" + arch, "-cubin", "--expt-relaxed-constexpr", "-lineinfo",
           "-Xptxas=--warn-on-spills", "--resource-usage", "-I" + os.path.join(ROOT, "include"),
           "-I" + os.path.join(ROOT, "host"), "-I" + os.path.join(ROOT, "kernels"), src, "-o", cubin]
    r = subprocess.run(cmd, capture_output=True, text=True)
    return name, arch, cubin, r.returncode, r.stdout + r.stderr


def prebuilt_cubin(cubins, src, arch):
    """The cubin and ptxas report the build kept (kernels/resource_usage.sh with CONVARITH_RESOURCE_KEEP=DIR, same
    flags as compile_cubin), in compile_cubin's shape; a missing or stale one (older than a kernel source or header)
    is a failure that names it, never a silent fallback."""
    name = os.path.splitext(os.path.basename(src))[0]
    cubin = os.path.join(cubins, arch, name + ".cubin")
    log_file = os.path.join(cubins, arch, name + ".log")
    if not (os.path.exists(cubin) and os.path.exists(log_file)):
        return name, arch, cubin, 1, "no %s or %s (build the CUDA preset first)" % (cubin, log_file)
    inputs = [os.path.join(d, f) for d in (os.path.join(ROOT, "kernels"), os.path.join(ROOT, "include", "convarith"))
              for f in os.listdir(d) if f.endswith((".cu", ".cuh", ".hpp"))]  # not kernel_resources.inc: an output
    newest = max(os.path.getmtime(f) for f in inputs)
    if os.path.getmtime(cubin) < newest:
        return name, arch, cubin, 1, "%s is older than the kernel sources: rebuild" % cubin
    with open(log_file) as f:
        return name, arch, cubin, 0, f.read()


def parse_ptxas(text):
    """Per mangled entry: regs, spill stores/loads, stack, static smem, barriers (ptxas --resource-usage)."""
    res = {}
    fn = None
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '([^']+)'", line)
        if m:
            fn = m.group(1)
            res[fn] = {"regs": 0, "spill_stores": 0, "spill_loads": 0, "stack": 0, "static_smem": 0, "barriers": 0}
            continue
        m = re.search(r"Function properties for (\S+)", line)
        if m:
            fn = m.group(1) if m.group(1) in res else fn
            continue
        if fn is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            res[fn].update(stack=int(m.group(1)), spill_stores=int(m.group(2)), spill_loads=int(m.group(3)))
            continue
        m = re.search(r"Used (\d+) registers", line)
        if m:
            res[fn]["regs"] = int(m.group(1))
            b = re.search(r"used (\d+) barriers", line)
            s = re.search(r"(\d+) bytes smem", line)
            res[fn]["barriers"] = int(b.group(1)) if b else 0
            res[fn]["static_smem"] = int(s.group(1)) if s else 0
    return res


# ---- SASS ------------------------------------------------------------------------------------------------------
INSN_RE = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)\s*([^;]*);")
LABEL_RE = re.compile(r"^(\.L_x_\d+):")
FUNC_RE = re.compile(r"^\.text\.(\S+):")


def parse_sass(text):
    """{mangled: {"insns": [(addr, opcode, operands)], "labels": {label: addr}}}."""
    funcs = {}
    cur = None
    pending = []
    for line in text.splitlines():
        line = line.strip()
        m = FUNC_RE.match(line)
        if m:
            cur = {"insns": [], "labels": {}}
            funcs[m.group(1)] = cur
            pending = []
            continue
        if cur is None:
            continue
        m = LABEL_RE.match(line)
        if m:
            pending.append(m.group(1))
            continue
        m = INSN_RE.search(line)
        if m:
            addr = int(m.group(1), 16)
            for lab in pending:
                cur["labels"][lab] = addr
            pending = []
            cur["insns"].append((addr, m.group(3), m.group(4)))
    return funcs


def width_bits(mods):
    for w, bits in (("128", 128), ("64", 64), ("U16", 16), ("S16", 16), ("U8", 8), ("S8", 8)):
        if w in mods:
            return bits
    return 32


def classify(opcode):
    parts = opcode.split(".")
    base, mods = parts[0], parts[1:]
    if base in FMA_OPS:
        return FMA_OPS[base], None
    if base in ("LDG", "LD"):
        return "ldg", width_bits(mods)
    if base in ("STG", "ST"):
        return "stg", width_bits(mods)
    if base in ("LDS", "LDSM"):
        return "lds", width_bits(mods)
    if base == "STS":
        return "sts", width_bits(mods)
    if base in ("LDL", "STL"):
        return "local", width_bits(mods)
    if base in ("LDC", "ULDC"):
        return "const", None
    if base in ("ATOM", "ATOMG", "RED", "ATOMS", "REDG"):
        return "atomic", None
    if base in BRANCH_OPS:
        return "branch", None
    if base in BARRIER_OPS:
        return "barrier", None
    if base == "NOP":
        return "nop", None
    if base in FP_OPS:
        return "fp_other", None
    if base in INT_OPS or base.startswith("I") or base.startswith("U"):
        return "int", None
    return "other", None


def mix(insns):
    m = {"instructions": 0, "ffma": 0, "hfma2": 0, "hmma": 0, "dfma": 0, "fp_other": 0, "int": 0, "const": 0,
         "branch": 0, "barrier": 0, "atomic": 0, "local": 0, "nop": 0, "other": 0,
         "ldg": {}, "stg": {}, "lds": {}, "sts": {}}
    for _, op, _ in insns:
        cls, width = classify(op)
        if cls == "nop":
            m["nop"] += 1
            continue  # padding, not work
        m["instructions"] += 1
        if width is not None and cls in ("ldg", "stg", "lds", "sts"):
            key = str(width)
            m[cls][key] = m[cls].get(key, 0) + 1
        elif cls == "local":
            m["local"] += 1
        else:
            m[cls] += 1
    n = max(1, m["instructions"])
    m["fma"] = m["ffma"] + m["hfma2"] + m["hmma"] + m["dfma"]
    m["fma_share"] = round(m["fma"] / n, 4)
    m["int_share"] = round((m["int"] + m["const"]) / n, 4)
    for k in ("ldg", "stg", "lds", "sts"):
        m[k + "_count"] = sum(m[k].values())
        m[k + "_bytes_per_thread"] = sum(int(w) // 8 * c for w, c in m[k].items())
    return m


def loops(func):
    """Innermost loops: [start, end] address ranges closed by a backward branch."""
    labels = func["labels"]
    ranges = {}
    for addr, op, operands in func["insns"]:
        if not op.startswith("BRA"):
            continue
        t = re.search(r"\(?(\.L_x_\d+)\)?", operands)
        if not t or t.group(1) not in labels:
            continue
        target = labels[t.group(1)]
        if target <= addr:
            ranges[target] = max(ranges.get(target, addr), addr)
    rs = sorted(ranges.items())
    inner = []
    for a, b in rs:
        if not any((a <= c and d <= b and (c, d) != (a, b)) for c, d in rs):
            inner.append((a, b))
    return inner, rs


def fmas_per_tap(short):
    """FMAs per filter tap of one thread: tiled_kernel<T, kCpt, kTaps> multiplies kCpt output channels per tap (its
    first integer template argument); every other kernel one."""
    m = re.fullmatch(r"tiled_kernel<(?:[^,<>]+,\s*)?(\d+)(?:,\s*\d+)?>", short)
    return int(m.group(1)) if m else 1


def useful(m, per_tap):
    """Taps one pass over a body handles: FMAs / FMAs per tap, else atomics (scatter), else global loads (pool)."""
    if m["fma"] > 0:
        return m["fma"] / per_tap
    if m["atomic"] > 0:
        return m["atomic"]
    return m["ldg_count"]


def analyse_function(func, per_tap):
    inner, all_loops = loops(func)
    nloops = len(all_loops)
    out = []
    for a, b in inner:
        body = [i for i in func["insns"] if a <= i[0] <= b]
        m = mix(body)
        m["start"] = "0x%04x" % a
        m["end"] = "0x%04x" % b
        out.append(m)
    hot = None
    if out:
        with_fma = [m for m in out if m["fma"] > 0]
        if with_fma:
            hot = max(with_fma, key=lambda m: (m["fma"], m["fma_share"]))
        else:
            hot = max(out, key=lambda m: (m["ldg_count"], m["instructions"]))
    staging = [m for m in out if m["sts_count"] > 0 and m is not hot]
    # The tap path: the kernels' innermost source loop (the filter row, t < KW) is unrolled by nvcc into one or
    # more loops of several taps per pass plus straight-line remainder code in the enclosing loop's own body
    # (its body minus its inner loops). A row of KW taps runs the unrolled loops greedily, then the remainder
    # once. The model (cli/cmd_model.cpp) walks this; per_tap = FMAs per tap (tiled<kCpt>: kCpt, else 1).
    path = None
    if hot is not None:
        ha, hb = int(hot["start"], 16), int(hot["end"], 16)
        parents = [(a, b) for a, b in all_loops if a <= ha and hb <= b and (a, b) != (ha, hb)]
        siblings = []
        own = None
        if parents:
            pa, pb = min(parents, key=lambda r: r[1] - r[0])
            kids = [(a, b) for a, b in inner if pa <= a and b <= pb]
            for m in out:
                if (int(m["start"], 16), int(m["end"], 16)) in kids and useful(m, per_tap) > 0 and (
                        m["fma"] > 0 or hot["fma"] == 0):
                    siblings.append({"start": m["start"], "instructions": m["instructions"],
                                     "taps": useful(m, per_tap), "fma": m["fma"]})
            nested = [(a, b) for a, b in all_loops if pa <= a and b <= pb and (a, b) != (pa, pb)]
            own_insns = [i for i in func["insns"] if pa <= i[0] <= pb and not any(a <= i[0] <= b for a, b in nested)]
            om = mix(own_insns)
            own = {"start": "0x%04x" % pa, "end": "0x%04x" % pb, "instructions": om["instructions"],
                   "taps": useful(om, per_tap), "fma": om["fma"], "ldg_count": om["ldg_count"],
                   "lds_count": om["lds_count"]}
        else:
            siblings.append({"start": hot["start"], "instructions": hot["instructions"],
                             "taps": useful(hot, per_tap), "fma": hot["fma"]})
        siblings.sort(key=lambda x: -x["taps"])
        path = {"fma_per_tap": per_tap, "unrolled_loops": siblings, "remainder_body": own}
    return {"loops_total": nloops, "innermost_loops": out, "hot_loop": hot, "tap_path": path,
            "staging_loops": staging, "whole_function": mix(func["insns"])}


# ---- names and occupancy ---------------------------------------------------------------------------------------
def demangle(names):
    filt = shutil.which("c++filt")
    if not filt or not names:
        return {n: n for n in names}
    r = subprocess.run([filt], input="\n".join(names), capture_output=True, text=True)
    outs = r.stdout.splitlines()
    return dict(zip(names, outs)) if len(outs) == len(names) else {n: n for n in names}


def short_name(pretty):
    """'void convarith::kernels::cuda::tiled_kernel<8>(convarith::kernels::TiledParams)' -> 'tiled_kernel<8>'."""
    s = pretty.replace("void ", "", 1)
    s = re.sub(r"\(.*\)$", "", s)
    s = s.replace("convarith::kernels::cuda::", "")
    s = s.replace("(int)", "").replace("int", "i32" if "<int>" in s else "int")
    return s.replace("<i32>", "<int32_t>").replace("<long>", "<int64_t>")


def occupancy(prof, regs, threads, smem_bytes):
    warp = prof["warp_size"]
    warps = (threads + warp - 1) // warp
    unit = prof["reg_alloc_unit"]
    regs_per_warp = ((max(regs, 1) * warp + unit - 1) // unit) * unit
    by_regs = (prof["regs_per_sm"] // regs_per_warp) // warps if regs_per_warp * warps <= prof["regs_per_block"] else 0
    by_threads = prof["max_threads_per_sm"] // threads
    per_block_smem = smem_bytes + prof["smem_reserved_per_block"]
    by_smem = prof["smem_per_sm"] // per_block_smem
    blocks = min(by_regs, by_threads, by_smem, prof["max_blocks_per_sm"])
    limiter = min((by_regs, "registers"), (by_threads, "threads"), (by_smem, "shared memory"),
                  (prof["max_blocks_per_sm"], "blocks"))[1]
    max_warps = prof["max_threads_per_sm"] // warp
    return {"threads": threads, "smem_bytes": smem_bytes, "blocks_per_sm": blocks,
            "warps_per_sm": blocks * warps, "occupancy": round(blocks * warps / max_warps, 4), "limited_by": limiter}


# ---- the whole inspection --------------------------------------------------------------------------------------
def inspect(archs, jobs, cubins=None):
    nvcc = find_nvcc()
    if not nvcc:
        log("inspect: nvcc not found (set NVCC or PATH)")
        sys.exit(2)
    nvdisasm = ensure_nvdisasm()
    if not nvdisasm:
        log("inspect: could not install nvdisasm from PyPI (%s)" % WHEELS)
        sys.exit(2)
    facts = kernel_facts(nvcc)
    profile_for_arch = {}
    for name, prof in facts["profiles"].items():
        profile_for_arch.setdefault(prof["arch"], (name, prof))  # h100 for sm_90 (same SM as h200), a100 sm_80
    sources = sorted(os.path.join(ROOT, "kernels", f) for f in os.listdir(os.path.join(ROOT, "kernels"))
                     if f.endswith(".cu"))
    tasks = [(s, a) for a in archs for s in sources]
    kernels = {}
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        if cubins:
            results = [prebuilt_cubin(cubins, src, arch) for src, arch in tasks]
        else:
            results = list(ex.map(lambda t: compile_cubin(nvcc, t[0], t[1]), tasks))
    for name, arch, cubin, rc, text in results:
        if rc != 0:
            failed.append("%s.cu (%s):\n%s" % (name, arch, text))
            continue
        res = parse_ptxas(text)
        sass_r = subprocess.run([nvdisasm, "-c", cubin], capture_output=True, text=True)
        if sass_r.returncode != 0:
            failed.append("nvdisasm %s: %s" % (cubin, sass_r.stderr))
            continue
        funcs = parse_sass(sass_r.stdout)
        pretty = demangle(sorted(set(res) | set(funcs)))
        pname, prof = profile_for_arch.get(arch, (None, None))
        for mangled in sorted(set(res) | set(funcs)):
            short = short_name(pretty[mangled])
            base = short.split("<")[0]
            entry = {"file": "kernels/%s.cu" % name, "arch": arch, "kernel": base, "specialisation": short,
                     "mangled": mangled}
            entry.update(res.get(mangled, {}))
            entry["spills"] = entry.get("spill_stores", 0) + entry.get("spill_loads", 0)
            launch = facts["launch"].get(base, {})
            entry["launch"] = launch
            if prof and launch:
                occ = []
                dyn = [0] + ([launch["dynamic_smem_max"]] if launch.get("dynamic_smem_max") else [])
                for threads in launch["block"]:
                    for d in dyn:
                        occ.append(occupancy(prof, entry.get("regs", 0), threads, entry.get("static_smem", 0) + d))
                entry["occupancy_profile"] = pname
                entry["occupancy"] = occ
            if mangled in funcs:
                entry.update(analyse_function(funcs[mangled], fmas_per_tap(short)))
            kernels["%s/%s" % (arch, short)] = entry
    return {"schema": "convarith-inspect-1",
            "note": "static SASS counts from nvcc cubins (nvdisasm); not measured on a GPU",
            "nvcc": subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout.strip().splitlines()[-1],
            "archs": archs, "profiles": facts["profiles"], "kernels": kernels}, failed


def fmt_widths(d):
    return "+".join("%sx%s" % (c, w) for w, c in sorted(d.items(), key=lambda x: int(x[0]))) or "-"


def table(report):
    lines = []
    hdr = ("%-34s %4s %5s %5s %6s %-22s | %5s %5s %5s %5s %-9s %-9s %-9s %4s %4s %4s" %
           ("kernel", "regs", "spill", "stack", "smem", "occupancy (thr:occ)", "loop", "fma%", "ffma", "int%",
            "ldg", "lds", "sts", "cst", "bra", "bar"))
    lines.append(hdr)
    lines.append("-" * len(hdr))
    for key in sorted(report["kernels"]):
        e = report["kernels"][key]
        occ = " ".join("%d:%.0f%%" % (o["threads"], 100 * o["occupancy"]) for o in e.get("occupancy", [])
                       if o["smem_bytes"] == e.get("static_smem", 0)) or "-"
        h = e.get("hot_loop")
        if h:
            loop = "%5d %5.1f %5d %5.1f %-9s %-9s %-9s %4d %4d %4d" % (
                h["instructions"], 100 * h["fma_share"], h["fma"], 100 * h["int_share"], fmt_widths(h["ldg"]),
                fmt_widths(h["lds"]), fmt_widths(h["sts"]), h["const"], h["branch"], h["barrier"])
        else:
            loop = "(no loop)"
        lines.append("%-34s %4d %5d %5d %6d %-22s | %s" % (key, e.get("regs", 0), e.get("spills", 0),
                                                           e.get("stack", 0), e.get("static_smem", 0), occ, loop))
    lines.append("loop = instructions in the hot (innermost, most-FMA) loop body; fma% = FFMA+HFMA2+HMMA share; "
                 "ldg/lds/sts = count x width in bits; cst = constant-bank reads; static SASS counts, not measured")
    return "\n".join(lines)


# ---- the gate --------------------------------------------------------------------------------------------------
def gate_fields(e):
    h = e.get("hot_loop") or {}
    return {"regs": e.get("regs", 0), "spills": e.get("spills", 0),
            "hot_loop_fma_share": h.get("fma_share", 0.0), "hot_loop_instructions": h.get("instructions", 0)}


def check(report, baseline):
    problems, notes = [], []
    base = baseline.get("kernels", {})
    for key, e in sorted(report["kernels"].items()):
        now = gate_fields(e)
        if now["spills"] > 0:
            problems.append("%s: spills %d bytes (stores %d, loads %d); must be 0" %
                            (key, now["spills"], e.get("spill_stores", 0), e.get("spill_loads", 0)))
        if key not in base:
            notes.append("%s: new kernel, not in the baseline (re-baseline with .ci/inspect.sh --update)" % key)
            continue
        was = gate_fields(base[key])
        reg_limit = was["regs"] + max(TOL_REGS_ABS, int(was["regs"] * TOL_REGS_REL))
        if now["regs"] > reg_limit:
            problems.append("%s: registers %d, baseline %d (tolerance: at most %d)" %
                            (key, now["regs"], was["regs"], reg_limit))
        if now["hot_loop_fma_share"] < was["hot_loop_fma_share"] - TOL_FMA_SHARE_ABS:
            problems.append("%s: hot-loop FMA share %.1f %%, baseline %.1f %% (tolerance: -%.0f points; loop now %d "
                            "instructions, was %d)" % (key, 100 * now["hot_loop_fma_share"],
                                                      100 * was["hot_loop_fma_share"], 100 * TOL_FMA_SHARE_ABS,
                                                      now["hot_loop_instructions"], was["hot_loop_instructions"]))
    for key in sorted(set(base) - set(report["kernels"])):
        notes.append("%s: in the baseline but no longer built" % key)
    return problems, notes


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--arch", default="sm_90,sm_80")
    ap.add_argument("--json", help="write the full report here")
    ap.add_argument("--check", metavar="BASELINE", help="compare with a baseline; exit 1 when a kernel is worse")
    ap.add_argument("--update", action="store_true", help="rewrite tools/inspect/baseline.json from this run")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--quiet", action="store_true", help="no table")
    ap.add_argument("--cubins", metavar="DIR", help="read DIR/<arch>/<name>.cubin and .log that the CUDA build kept "
                    "(build/default/generated/kernel_cubins) instead of compiling")
    a = ap.parse_args(argv)
    archs = [x.strip() for x in a.arch.split(",") if x.strip()]
    if not archs or any(not re.fullmatch(r"sm_\d+a?", x) for x in archs):
        log("inspect: --arch wants e.g. sm_90,sm_80, got '%s'" % a.arch)
        return 2
    os.makedirs(WORK, exist_ok=True)
    report, failed = inspect(archs, a.jobs, a.cubins)
    for f in failed:
        log("inspect: FAILED " + f)
    if not a.quiet:
        print(table(report))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)
            f.write("\n")
    status = 1 if failed else 0
    if a.update:
        if failed:
            log("inspect: not updating the baseline: a compile failed")
            return 1
        with open(BASELINE, "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)
            f.write("\n")
        print("inspect: baseline written: %s (%d kernels)" % (os.path.relpath(BASELINE, ROOT), len(report["kernels"])))
    if a.check:
        with open(a.check) as f:
            baseline = json.load(f)
        problems, notes = check(report, baseline)
        for n in notes:
            print("inspect: note: " + n)
        for p in problems:
            print("inspect: WORSE: " + p)
        if problems:
            print("inspect: FAILED: %d kernel figure(s) worse than %s beyond the tolerances (registers +max(%d, %d%%), "
                  "spills 0, hot-loop FMA share -%d points); if intended, re-baseline: bash .ci/inspect.sh --update"
                  % (len(problems), os.path.relpath(a.check, ROOT), TOL_REGS_ABS, int(100 * TOL_REGS_REL),
                     int(100 * TOL_FMA_SHARE_ABS)))
            status = 1
        elif not failed:
            print("inspect: OK: %d kernels within the baseline's tolerances" % len(report["kernels"]))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
