"""Kiln's benchmark: compiled models against PyTorch, kernels against
OpenBLAS and oneDNN. Run it through bench/run (see bench/README.md).

Models: every models/*.kiln is compiled with kilnc (timed), and its train step
is timed by the executable's `bench --json` (one resident synthetic batch),
interleaved with the same model in PyTorch (bench/torch_models.py) at each
thread count, R times, alternating Kiln and torch; medians are reported.

Kernels: kiln.matmul and kiln.conv2d written as kiln IR (one @predict
function), lowered by `kiln-opt --kiln-lower`, translated by mlir-translate,
compiled by clang -O3 -march=native and linked with bench/kernels/harness.cpp,
which times them against cblas_sgemm and oneDNN on one thread.

The markdown report goes to stdout and into bench/README.md between
<!-- results:begin --> and <!-- results:end -->; the raw measurements to
build/bench/results.json.
"""

import argparse
import datetime
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import torch_models  # noqa: E402  (no torch import at module level)

LLVM_BIN = "/usr/lib/llvm-19/bin"
TORCH_PYTHON = "/usr/bin/python3"  # Debian's python3-torch
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

# The models the brief names, in report order; others found in models/ follow.
KNOWN_MODELS = ["mlp", "lenet", "cnn", "gru_rows", "rnn_fashion",
                "lstm_classifier", "gru_classifier"]
# Models that exist for the benchmark only (the recurrent classifiers of the
# issue's table), beside the ones of --models-dir.
BENCH_MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "models")

# Kernels: (label, kind, dims). matmul dims: M N K. conv dims: N C H W O KH KW
# PAD (stride 1, NCHW).
KERNELS = [
    ("matmul 256", "matmul", (256, 256, 256)),
    ("matmul 512", "matmul", (512, 512, 512)),
    ("matmul 1024", "matmul", (1024, 1024, 1024)),
    ("lenet conv1", "conv", (64, 1, 28, 28, 6, 5, 5, 2)),
    ("lenet conv2", "conv", (64, 6, 14, 14, 16, 5, 5, 0)),
    ("cnn conv1", "conv", (64, 1, 28, 28, 32, 3, 3, 0)),
    ("cnn conv2", "conv", (64, 32, 26, 26, 64, 3, 3, 0)),
    # The three products of cnn conv2 in a training step (im2col lowering):
    # forward, input gradient (columns), filter gradient (transposed).
    ("cnn conv2 fwd gemm", "matmul", (64, 36864, 288)),
    ("cnn conv2 dx gemm", "matmul", (288, 36864, 64)),
    ("cnn conv2 dw gemm", "matmul", (288, 64, 36864)),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def median(values):
    s = sorted(values)
    n = len(s)
    if not n:
        return float("nan")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def run(cmd, env=None, timeout=None, cwd=None):
    """Runs CMD; returns (returncode, stdout, stderr, seconds)."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return 124, e.stdout or "", (e.stderr or "") + "\ntimed out", \
            time.perf_counter() - t0
    return p.returncode, p.stdout, p.stderr, time.perf_counter() - t0


def first_error(text):
    for line in text.splitlines():
        if "error" in line:
            return line.strip()[:200]
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1].strip()[:200] if lines else "(no output)"


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError("no JSON in output: " + text[-300:])


def thread_env(threads):
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(threads)
    return env


# --------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------

def machine_info():
    info = {"model_name": platform.processor() or "unknown", "cores": os.cpu_count()}
    rc, out, _, _ = run(["lscpu"])
    if rc == 0:
        for line in out.splitlines():
            k, _, v = line.partition(":")
            v = v.strip()
            if k.strip() == "Model name":
                info["model_name"] = v
            elif k.strip() == "CPU(s)":
                info["cores"] = int(v)
    try:
        cpuinfo = open("/proc/cpuinfo").read()
        fam = re.search(r"cpu family\s*:\s*(\d+)", cpuinfo)
        mod = re.search(r"model\s*:\s*(\d+)", cpuinfo)
        if fam and mod:
            info["family_model"] = "%s/%s" % (fam.group(1), mod.group(1))
        flags = re.search(r"flags\s*:(.*)", cpuinfo)
        flags = flags.group(1).split() if flags else []
        info["isa"] = "AVX-512" if "avx512f" in flags else (
            "AVX2+FMA" if "avx2" in flags and "fma" in flags else "SSE")
    except OSError:
        pass
    return info


def describe_machine(info):
    s = "%s, %s cores" % (info["model_name"], info["cores"])
    if info.get("family_model"):
        s += ", family/model %s" % info["family_model"]
    if info.get("isa"):
        s += ", %s" % info["isa"]
    return s


def cpu_time_others():
    """Total busy CPU seconds of the machine (from /proc/stat)."""
    try:
        fields = open("/proc/stat").readline().split()[1:]
        vals = [int(x) for x in fields]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return (sum(vals) - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

class Tools:
    def __init__(self, build):
        self.build = build
        self.kilnc = os.path.join(build, "bin", "kilnc")
        self.kiln_opt = os.path.join(build, "bin", "kiln-opt")
        self.translate = os.path.join(LLVM_BIN, "mlir-translate")
        self.clang = os.path.join(LLVM_BIN, "clang")
        self.clangxx = os.path.join(LLVM_BIN, "clang++")
        self.work = os.path.join(build, "bench")
        os.makedirs(self.work, exist_ok=True)


def list_models(models_dir, selected):
    found = {os.path.splitext(os.path.basename(p))[0]: p
             for d in (models_dir, BENCH_MODELS_DIR)
             for p in glob.glob(os.path.join(d, "*.kiln"))}
    names = [m for m in KNOWN_MODELS if m in found]
    names += sorted(m for m in found if m not in KNOWN_MODELS)
    notes = []
    for m in KNOWN_MODELS:
        if m not in found and (not selected or m in selected):
            rel = os.path.relpath(models_dir, ROOT)
            notes.append("%s/%s.kiln is not present: skipped" % (
                models_dir if rel.startswith("..") else rel, m))
    if selected:
        names = [m for m in names if m in selected]
    return [(m, found[m]) for m in names], notes


def kiln_param_count(exe):
    rc, out, _, _ = run([exe, "info"], timeout=60)
    m = re.search(r"total: ([\d,]+) parameters", out) if rc == 0 else None
    return int(m.group(1).replace(",", "")) if m else None


def compile_model(tools, name, path, extra_args):
    exe = os.path.join(tools.work, name)
    if os.path.exists(exe):
        os.remove(exe)
    env = dict(os.environ)
    env["PATH"] = LLVM_BIN + ":" + env.get("PATH", "")
    rc, out, err, secs = run([tools.kilnc, path, "-o", exe] + extra_args,
                             env=env, timeout=600)
    if rc != 0:
        return None, secs, "kilnc failed: " + first_error(err + out)
    rc, out, err, _ = run([exe, "bench", "--help"], timeout=60)
    if rc != 0:
        return None, secs, ("the executable has no `bench` command: rebuild "
                            "kiln_runtime (ninja -C build kiln_runtime)")
    return exe, secs, None


def kiln_bench(exe, threads, steps, warmup, timeout):
    rc, out, err, _ = run([exe, "bench", "--steps", str(steps), "--warmup",
                           str(warmup), "--json"], env=thread_env(threads),
                          timeout=timeout)
    if rc != 0:
        raise RuntimeError("kiln bench failed: " + first_error(err + out))
    return last_json(out)


def torch_bench(name, threads, steps, warmup, timeout):
    cmd = [TORCH_PYTHON, os.path.join(HERE, "torch_models.py"), name,
           "--steps", str(steps), "--warmup", str(warmup), "--threads",
           str(threads)]
    rc, out, err, _ = run(cmd, env=thread_env(threads), timeout=timeout)
    if rc != 0:
        raise RuntimeError("torch failed: " + first_error(err + out))
    return last_json(out)


def plan(probe_ms, args):
    """Steps, warm-up and repeats so that one model at one thread count costs
    about args.model_budget seconds of Kiln time: fewer steps first (down to
    args.min_steps), then fewer repeats, then less warm-up and fewer steps."""
    step_s = max(probe_ms, 1e-3) * 1e-3
    steps, warmup, repeats = args.steps, args.warmup, args.repeats
    budget = args.model_budget

    def cost():
        return step_s * (steps + warmup) * repeats

    if cost() > budget:
        steps = min(steps, max(args.min_steps, int(budget / (step_s * repeats)) - warmup))
    while cost() > budget and repeats > 1:
        repeats -= 1
    if cost() > budget:
        warmup = min(warmup, 1)
    if cost() > budget:
        steps = max(1, min(steps, int(budget / step_s) - warmup))
    if cost() > budget:
        warmup = 0
    return steps, warmup, repeats


def bench_models(tools, args, results):
    models, notes = list_models(args.models_dir, args.models)
    results["notes"] += notes
    for name, path in models:
        log("== %s: compiling %s" % (name, os.path.relpath(path, ROOT)))
        exe, compile_s, error = compile_model(tools, name, path, args.kilnc_args)
        entry = {"model": name, "compile_s": compile_s, "runs": {}}
        results["models"].append(entry)
        if error:
            entry["error"] = error
            results["notes"].append("%s: %s" % (name, error))
            log("   " + error)
            continue
        has_torch = name in torch_models.MODELS
        kp = kiln_param_count(exe)
        entry["kiln_params"] = kp
        if has_torch:
            tp = torch_models.param_count(name)
            entry["torch_params"] = tp
            fwd, tr3, exact = torch_models.flops(name)
            if kp is not None and kp != tp:
                # A few biases apart (<1%) the FLOPs stand; more means another
                # architecture.
                close = abs(kp - tp) <= 0.01 * tp
                results["notes"].append(
                    "%s: Kiln has %d parameters, the PyTorch model %d: %s" % (
                        name, kp, tp,
                        "nearly the same architecture" if close else
                        "the architectures differ (no GFLOP/s given; fix "
                        "bench/torch_models.py or the .kiln file)"))
            if kp is None or abs(kp - tp) <= 0.01 * tp:
                entry["flops"] = {"forward": fwd, "train_3x": tr3,
                                  "train_exact": exact}
        else:
            results["notes"].append(
                "%s: no PyTorch equivalent in bench/torch_models.py: Kiln only" % name)
        if shutil.which("nm"):
            # Threads need pthread_create or an OpenMP runtime (__kmpc_*, GOMP_*).
            rc, out, _, _ = run(["nm", "-D", "--undefined-only", exe])
            if rc == 0:
                entry["threaded"] = bool(re.search(
                    r"pthread_create|__kmpc_fork|GOMP_parallel|omp_get", out))
        try:
            probe = kiln_bench(exe, 1, 1, 0, timeout=args.timeout)
        except (RuntimeError, ValueError) as e:
            entry["error"] = str(e)
            results["notes"].append("%s: %s" % (name, e))
            log("   " + str(e))
            continue
        probe_ms = probe["median_ms"]
        steps, warmup, repeats = plan(probe_ms, args)
        entry.update({"steps": steps, "warmup": warmup, "repeats": repeats,
                      "probe_ms": probe_ms})
        log("   compiled in %.2f s; probe step %.2f ms -> %d warm-up + %d "
            "steps x %d" % (compile_s, probe_ms, warmup, steps, repeats))
        timeout = max(args.timeout, 5 * probe_ms * 1e-3 * (steps + warmup))
        for threads in args.threads:
            runs = {"kiln": [], "torch": []}
            entry["runs"][str(threads)] = runs
            for r in range(repeats):
                try:
                    if (threads, r, steps, warmup) == (1, 0, 1, 0):
                        k = probe  # the probe was exactly this run
                    else:
                        k = kiln_bench(exe, threads, steps, warmup, timeout)
                    runs["kiln"].append(k)
                    msg = "kiln %.3f ms" % k["median_ms"]
                except (RuntimeError, ValueError) as e:
                    runs.setdefault("errors", []).append(str(e))
                    msg = str(e)
                if has_torch:
                    try:
                        t = torch_bench(name, threads, steps, warmup, timeout + 120)
                        runs["torch"].append(t)
                        msg += ", torch %.3f ms" % t["median_ms"]
                    except (RuntimeError, ValueError) as e:
                        runs.setdefault("errors", []).append(str(e))
                        msg += ", " + str(e)
                log("   %d thread(s), run %d/%d: %s" % (threads, r + 1, repeats, msg))
            if runs.get("errors"):
                results["notes"].append("%s, %d thread(s): %d failed run(s), e.g. %s" % (
                    name, threads, len(runs["errors"]), runs["errors"][0]))


# --------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------

def kernel_mlir(kind, dims):
    if kind == "matmul":
        m, n, k = dims
        return """module attributes {kiln.model = "matmul"} {
  func.func @predict(%%a: tensor<%(m)dx%(k)dxf32> {kiln.input = "a"}, %%b: tensor<%(k)dx%(n)dxf32> {kiln.input = "b"}) -> (tensor<%(m)dx%(n)dxf32> {kiln.output = "c"}) {
    %%c = kiln.matmul %%a, %%b : (tensor<%(m)dx%(k)dxf32>, tensor<%(k)dx%(n)dxf32>) -> tensor<%(m)dx%(n)dxf32>
    return %%c : tensor<%(m)dx%(n)dxf32>
  }
}
""" % {"m": m, "n": n, "k": k}
    n, c, h, w, o, kh, kw, pad = dims
    oh, ow = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
    x = "tensor<%dx%dx%dx%dxf32>" % (n, c, h, w)
    f = "tensor<%dx%dx%dx%dxf32>" % (o, c, kh, kw)
    y = "tensor<%dx%dx%dx%dxf32>" % (n, o, oh, ow)
    return """module attributes {kiln.model = "conv2d"} {
  func.func @predict(%%x: %(x)s {kiln.input = "x"}, %%w: %(f)s {kiln.input = "w"}) -> (%(y)s {kiln.output = "y"}) {
    %%y = kiln.conv2d %%x, %%w strides = [1, 1] padding = [%(p)d, %(p)d] dilation = [1, 1] : (%(x)s, %(f)s) -> %(y)s
    return %%y : %(y)s
  }
}
""" % {"x": x, "f": f, "y": y, "p": pad}


def build_harness(tools, no_kiln):
    out = os.path.join(tools.work, "kernels",
                       "harness-nokiln.o" if no_kiln else "harness.o")
    src = os.path.join(HERE, "kernels", "harness.cpp")
    if os.path.exists(out) and os.path.getmtime(out) > os.path.getmtime(src):
        return out, None
    cmd = [tools.clangxx, "-std=c++17", "-O2", "-march=native", "-c", src,
           "-o", out]
    if no_kiln:
        cmd.insert(1, "-DKBENCH_NO_KILN")
    rc, out_, err, _ = run(cmd, timeout=300)
    if rc != 0:
        return None, "harness does not compile: " + first_error(err + out_)
    return out, None


def build_kernel(tools, label, kind, dims):
    """Returns (executable, note): the harness linked with Kiln's kernel, or
    without it (note says why)."""
    d = os.path.join(tools.work, "kernels")
    base = os.path.join(d, re.sub(r"\W+", "_", label))
    text = kernel_mlir(kind, dims)
    obj = base + ".o"
    # The object is rebuilt when the IR or kiln-opt changed.
    try:
        fresh = (open(base + ".mlir").read() == text and
                 os.path.getmtime(obj) > os.path.getmtime(tools.kiln_opt))
    except OSError:
        fresh = False
    if not fresh:
        for stale in (obj, base + ".mlir"):
            if os.path.exists(stale):
                os.remove(stale)
        with open(base + ".mlir", "w") as f:
            f.write(text)
    note = None
    steps = [] if fresh else [
        [tools.kiln_opt, "--kiln-lower", base + ".mlir", "-o", base + ".llvm.mlir"],
        [tools.translate, "--mlir-to-llvmir", base + ".llvm.mlir", "-o", base + ".ll"],
        [tools.clang, "-O3", "-march=native", "-Wno-override-module", "-c",
         base + ".ll", "-o", obj],
    ]
    for cmd in steps:
        rc, out, err, _ = run(cmd, timeout=600)
        if rc != 0:
            note = "%s: Kiln's kernel is pending (%s: %s)" % (
                label, os.path.basename(cmd[0]), first_error(err + out))
            obj = None
            break
    harness, error = build_harness(tools, no_kiln=obj is None)
    if error:
        return None, error
    exe = base + ".bin"
    objs = [harness] + ([obj] if obj else [])
    # Kiln's large matmuls are OpenMP loops: LLVM's libomp (as kilnc links).
    omp = ["-L/usr/lib/llvm-19/lib", "-lomp", "-Wl,-rpath,/usr/lib/llvm-19/lib"]
    rc, out, err, _ = run([tools.clangxx] + objs + ["-o", exe, "-lopenblas",
                                                    "-ldnnl", "-lm"] + omp,
                          timeout=300)
    if rc != 0:
        return None, "%s: link failed: %s" % (label, first_error(err + out))
    return exe, note


def bench_kernels(tools, args, results):
    os.makedirs(os.path.join(tools.work, "kernels"), exist_ok=True)
    for label, kind, dims in KERNELS:
        if args.kernels and not any(k in label for k in args.kernels):
            continue
        log("== kernel %s %s" % (label, "x".join(map(str, dims))))
        exe, note = build_kernel(tools, label, kind, dims)
        entry = {"label": label, "kind": kind, "dims": dims}
        results["kernels"].append(entry)
        if note:
            results["notes"].append(note)
            entry["note"] = note
            log("   " + note)
        if not exe:
            continue
        cmd = [exe, kind] + [str(x) for x in dims] + [
            "--min-time", str(args.kernel_time), "--min-reps",
            str(args.kernel_reps)]
        rc, out, err, secs = run(cmd, env=thread_env(1), timeout=900)
        if rc != 0:
            entry["error"] = first_error(err + out)
            results["notes"].append("%s: %s" % (label, entry["error"]))
            continue
        entry.update(last_json(out))
        log("   " + ", ".join(
            "%s %.1f GFLOP/s" % (k, entry[k]["gflops"])
            for k in ("kiln", "openblas", "onednn") if entry.get(k)))


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def fmt_ms(v):
    if v is None or v != v:
        return "-"
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v if v >= 1 else "%.3f" % v


def fmt_num(v, digits=1):
    return "-" if v is None or v != v else ("%%.%df" % digits) % v


def fmt_ratio(v):
    if v is None or v != v:
        return "-"
    return "%.2f" % v if v >= 0.1 else "%.3f" % v


def summarize(runs):
    """min of the runs' min, median of the runs' medians, max RSS."""
    if not runs:
        return None
    return {
        "min_ms": min(r["min_ms"] for r in runs),
        "median_ms": median([r["median_ms"] for r in runs]),
        "rss_mib": max(r["max_rss_kb"] for r in runs) / 1024.0,
    }


def report(results, args):
    lines = []
    m = results["machine"]
    lines.append("Measured %s by `bench/run%s` on %s." % (
        results["date"], " --quick" if args.quick else "", describe_machine(m)))
    load = results["load"]
    busy = load.get("others_busy_cores")
    load_note = ("Load average %.2f at the start, %.2f at the end (%d cores)" %
                 (load["start"][0], load["end"][0], m["cores"]))
    if busy is not None:
        load_note += ("; other processes kept about %.1f cores busy on average "
                      "during the run" % busy)
    if load["start"][0] > 0.5 or (busy or 0) > 0.3:
        load_note += (": the machine was shared, so absolute times are "
                      "pessimistic and noisy (Kiln and torch were interleaved, "
                      "so the ratios are fairer than the absolute numbers)")
    lines.append(load_note + ".")
    lines.append("")

    lines.append("### Models: one training step on a resident batch (each model's batch: 64, 32 for the classifiers of bench/models)")
    lines.append("")
    lines.append("| model | threads | W+N x R | Kiln min / median ms | torch min / median ms "
                 "| Kiln / torch | Kiln GFLOP/s | torch GFLOP/s | kilnc s "
                 "| Kiln RSS MiB | torch RSS MiB |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for e in results["models"]:
        if e.get("error"):
            lines.append("| %s | - | - | %s | | | | | %.2f | | |" % (
                e["model"], e["error"].replace("|", "/"), e["compile_s"]))
            continue
        flops = e.get("flops", {}).get("train_3x")
        for threads, runs in e["runs"].items():
            k, t = summarize(runs["kiln"]), summarize(runs["torch"])
            ratio = k["median_ms"] / t["median_ms"] if k and t else None
            gk = flops / (k["median_ms"] * 1e6) if k and flops else None
            gt = flops / (t["median_ms"] * 1e6) if t and flops else None
            lines.append("| %s | %s | %d+%d x %d | %s / %s | %s / %s | %s | %s | %s | %.2f | %s | %s |" % (
                e["model"], threads, e["warmup"], e["steps"], e["repeats"],
                fmt_ms(k and k["min_ms"]), fmt_ms(k and k["median_ms"]),
                fmt_ms(t and t["min_ms"]), fmt_ms(t and t["median_ms"]),
                fmt_ratio(ratio), fmt_num(gk), fmt_num(gt), e["compile_s"],
                fmt_num(k and k["rss_mib"], 0), fmt_num(t and t["rss_mib"], 0)))
    lines.append("")
    with_flops = [e for e in results["models"] if "flops" in e]
    if with_flops:
        lines.append("GFLOP/s count 3x the forward matmul/conv FLOPs per step "
                     "(bench/torch_models.py, `flops`); neither framework computes "
                     "the first layer's input gradient, so the work actually done "
                     "is smaller:")
        lines.append("")
        lines.append("| model | forward MFLOP | train MFLOP (3x) | train MFLOP (exact) "
                     "| Kiln GFLOP/s exact, 1 thread |")
        lines.append("|---|---|---|---|---|")
        for e in with_flops:
            f = e["flops"]
            k = summarize(e["runs"].get("1", {}).get("kiln", []))
            lines.append("| %s | %.1f | %.1f | %.1f | %s |" % (
                e["model"], f["forward"] / 1e6, f["train_3x"] / 1e6,
                f["train_exact"] / 1e6,
                fmt_num(f["train_exact"] / (k["median_ms"] * 1e6) if k else None)))
        lines.append("")

    if results["kernels"]:
        lines.append("### Kernels: one thread, f32, GFLOP/s from the median time")
        lines.append("")
        lines.append("| kernel | shape | MFLOP | Kiln | OpenBLAS | oneDNN | Kiln / OpenBLAS "
                     "| Kiln / oneDNN | Kiln ms | Kiln max rel err |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for e in results["kernels"]:
            dims = e["dims"]
            if e["kind"] == "matmul":
                shape = "%dx%d * %dx%d" % (dims[0], dims[2], dims[2], dims[1])
            else:
                n, c, h, w, o, kh, kw, pad = dims
                shape = "%dx%dx%dx%d * %dx%dx%dx%d%s" % (
                    n, c, h, w, o, c, kh, kw, ", pad %d" % pad if pad else "")
            if "gflop" not in e:
                lines.append("| %s | %s | | %s | | | | | | |" % (
                    e["label"], shape, e.get("error", "failed")))
                continue
            g = {k: (e[k]["gflops"] if e.get(k) else None)
                 for k in ("kiln", "openblas", "onednn")}
            kiln = fmt_num(g["kiln"]) if g["kiln"] else "pending"
            lines.append("| %s | %s | %.1f | %s | %s | %s | %s | %s | %s | %s |" % (
                e["label"], shape, e["gflop"] * 1e3, kiln,
                fmt_num(g["openblas"]), fmt_num(g["onednn"]),
                fmt_ratio(g["kiln"] / g["openblas"]) if g["kiln"] and g["openblas"] else "-",
                fmt_ratio(g["kiln"] / g["onednn"]) if g["kiln"] and g["onednn"] else "-",
                fmt_ms(e["kiln"]["median_ms"]) if e.get("kiln") else "-",
                "%.1e" % e["kiln_max_rel_err"] if e.get("kiln_max_rel_err", -1) >= 0 else "-"))
        impls = sorted({e["onednn"]["impl"] for e in results["kernels"] if e.get("onednn")})
        lines.append("")
        lines.append("OpenBLAS conv = im2col per image + `cblas_sgemm` (im2col timed); "
                     "oneDNN conv = `convolution_direct` forward with layouts of its "
                     "choice (reorders not timed); oneDNN implementations: %s." %
                     ", ".join("`%s`" % i for i in impls))
        lines.append("")

    notes = list(results["notes"])
    for e in results["models"]:
        by_threads = {int(t): summarize(r["torch"]) for t, r in e.get("runs", {}).items()}
        one = by_threads.get(1)
        for t, s in sorted(by_threads.items()):
            if t > 1 and one and s and s["median_ms"] > 3 * one["median_ms"]:
                notes.append(
                    "%s: torch with %d threads was %.0fx slower than with 1: its "
                    "spinning OpenMP/OpenBLAS threads collapse when other processes "
                    "hold cores (MLIR-NOTES.md, Threads)" % (
                        e["model"], t, s["median_ms"] / one["median_ms"]))
        if e.get("threaded") is False:
            notes.append("%s: the Kiln executable starts no threads (no "
                         "pthread_create or OpenMP symbols): its train step runs on "
                         "one core whatever OMP_NUM_THREADS says" % e["model"])
        elif e.get("threaded"):
            notes.append("%s: the Kiln executable can start threads (pthread or "
                         "OpenMP symbols); OMP_NUM_THREADS was set per row" % e["model"])
    if notes:
        lines.append("Notes:")
        lines.append("")
        for n in notes:
            lines.append("- " + n)
        lines.append("")
    lines.append("Total time of this run: %.0f s." % results["seconds"])
    return "\n".join(lines)


def update_readme(path, text):
    block = "%s\n%s\n%s" % (BEGIN, text, END)
    try:
        old = open(path).read()
    except OSError:
        old = "# Kiln benchmarks\n\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + block + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n## Results\n\n" + block + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)


def main(argv):
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Kiln vs PyTorch (models) and vs OpenBLAS/oneDNN (kernels).")
    p.add_argument("--quick", action="store_true",
                   help="about one minute: 1 repeat, fewer steps, short kernel timings")
    p.add_argument("--repeats", type=int, help="measurements per model and thread count (default 3; quick 1)")
    p.add_argument("--steps", type=int, help="timed steps (default 50; quick 20), fewer for slow models")
    p.add_argument("--warmup", type=int, help="warm-up steps (default 5; quick 2)")
    p.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    p.add_argument("--models", nargs="*", help="only these models (file stems)")
    p.add_argument("--models-dir", default=os.path.join(ROOT, "models"),
                   help="where the .kiln files are (default: models/)")
    p.add_argument("--kernels", nargs="*",
                   help="only kernels whose label contains one of these words")
    p.add_argument("--no-models", action="store_true")
    p.add_argument("--no-kernels", action="store_true")
    p.add_argument("--no-readme", action="store_true",
                   help="print the table but leave bench/README.md alone")
    p.add_argument("--build", default=os.environ.get("KILN_BUILD_DIR", os.path.join(ROOT, "build")),
                   help="Kiln's build directory (default: build/)")
    p.add_argument("--kilnc-args", default="", help="extra kilnc flags, e.g. '--fuse'")
    p.add_argument("--from-json", metavar="FILE",
                   help="measure nothing: rebuild the report from a results.json")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (1 if args.quick else 3)
    args.steps = args.steps or (20 if args.quick else 50)
    args.warmup = args.warmup if args.warmup is not None else (2 if args.quick else 5)
    args.min_steps = 2 if args.quick else 5
    args.model_budget = 4.0 if args.quick else 60.0  # Kiln seconds per model and thread count
    args.kernel_time = 0.1 if args.quick else 0.5
    args.kernel_reps = 1 if args.quick else 3
    args.timeout = 600
    args.threads = [int(t) for t in args.threads.split(",") if t]
    args.kilnc_args = args.kilnc_args.split()

    tools = Tools(os.path.abspath(args.build))
    if args.from_json:
        with open(args.from_json) as f:
            results = json.load(f)
        args.quick = results.get("args", {}).get("quick", False)
        text = report(results, args)
        print(text)
        if not args.no_readme:
            update_readme(os.path.join(HERE, "README.md"), text)
        return 0
    missing = [t for t in (tools.kilnc, tools.kiln_opt, tools.translate, tools.clang)
               if not os.path.exists(t)]
    if missing:
        log("error: missing %s; build Kiln first: ninja -C build kilnc kiln-opt "
            "kiln_runtime" % ", ".join(missing))
        return 1
    if not args.no_models and not os.path.exists(TORCH_PYTHON):
        log("error: %s (with Debian's python3-torch) is needed" % TORCH_PYTHON)
        return 1

    t0 = time.time()
    busy0 = cpu_time_others()
    results = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "machine": machine_info(),
        "load": {"start": os.getloadavg()},
        "models": [], "kernels": [], "notes": [],
        "args": {k: v for k, v in vars(args).items()},
    }
    own0 = os.times()
    if not args.no_models:
        bench_models(tools, args, results)
    if not args.no_kernels:
        bench_kernels(tools, args, results)
    results["seconds"] = time.time() - t0
    results["load"]["end"] = os.getloadavg()
    busy1 = cpu_time_others()
    own1 = os.times()
    if busy0 is not None and busy1 is not None and results["seconds"] > 0:
        own = (own1.children_user + own1.children_system + own1.user + own1.system) - \
              (own0.children_user + own0.children_system + own0.user + own0.system)
        results["load"]["others_busy_cores"] = max(
            0.0, (busy1 - busy0 - own) / results["seconds"])

    text = report(results, args)
    print(text)
    with open(os.path.join(tools.work, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    if not args.no_readme:
        update_readme(os.path.join(HERE, "README.md"), text)
        log("wrote the table into bench/README.md; raw data: %s" %
            os.path.relpath(os.path.join(tools.work, "results.json"), ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
