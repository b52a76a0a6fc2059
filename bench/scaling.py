"""Data-parallel scaling (kilnc --mpi): measured on this machine, projected
for clusters. See docs/scaling.md, which this script's report fills.

Measured: the CNN's training throughput (samples/s, `bench` on one resident
synthetic batch) as 1 process x 2 threads at batch 64 against 2 processes x
1 thread at batch 32 each (the same global batch of 64), and the share of the
2-process step that the gradients' all-reduce takes (Open MPI over shared
memory; its wall time includes waiting for the slower process).

Projected: for every models/*.kiln, its single-process step time at 1 thread
(`bench`), the bytes its step averages (4 per parameter, plus the loss), and
the step time on K machines of one such process each (the same per-machine
batch, so K x the global batch) over a 10 and a 100 Gbit/s network: the step
plus a ring all-reduce of 2 (K - 1) / K x bytes / bandwidth + 2 (K - 1) x
latency (5 us a message). Kiln does not overlap the all-reduce with the
backward pass, so the two add up.

    bench/scaling.py [--steps N] [--models mlp cnn ...] [--no-docs]

The markdown report goes to stdout and into docs/scaling.md between
<!-- scaling:begin --> and <!-- scaling:end -->. No test asserts any timing.
"""

import argparse
import datetime
import glob
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import describe_machine, machine_info  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BUILD = os.path.join(ROOT, "build")
KILNC = os.path.join(BUILD, "bin", "kilnc")
WORK = os.path.join(BUILD, "bench", "scaling")
DOC = os.path.join(ROOT, "docs", "scaling.md")
BEGIN, END = "<!-- scaling:begin -->", "<!-- scaling:end -->"
MPIRUN = ["mpirun", "--oversubscribe", "--allow-run-as-root", "-np"]
MACHINES = [2, 8, 64]
NETWORKS = [("10 Gbit/s", 10e9 / 8), ("100 Gbit/s", 100e9 / 8)]
LATENCY = 5e-6


def run(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env=env)
    return out.stdout


def compile_model(src, name, mpi=False):
    exe = os.path.join(WORK, name)
    cmd = [KILNC, src, "-o", exe] + (["--mpi"] if mpi else [])
    run(cmd)
    return exe


def bench(cmd, steps, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = run(cmd + ["bench", "--steps", str(steps), "--warmup", "3",
                     "--json"], env)
    return json.loads(out.strip().splitlines()[-1])


def parameters(exe):
    m = re.search(r"total: ([\d,]+) parameters", run([exe, "info"]))
    return int(m.group(1).replace(",", ""))


def with_batch(src, n, out):
    """SRC with batch N instead of 64 (input shapes and the train block)."""
    text = open(src).read()
    text, inputs = re.subn(r"(input \w+: [fi]32\[)64\b", rf"\g<1>{n}", text)
    text, blocks = re.subn(r"\bbatch 64\b", f"batch {n}", text)
    assert inputs >= 1 and blocks == 1, (src, inputs, blocks)
    open(out, "w").write(text)


def measure_cnn(steps):
    src = os.path.join(ROOT, "models", "cnn.kiln")
    half = os.path.join(WORK, "cnn32.kiln")
    with_batch(src, 32, half)
    one = compile_model(src, "cnn")
    two = compile_model(half, "cnn32-mpi", mpi=True)
    rows = []
    # Alternate, three times each: the machine is shared and noisy.
    for _ in range(3):
        rows.append(("1 process x 2 threads", bench([one], steps, 2)))
        rows.append(("2 processes x 1 thread",
                     bench(MPIRUN + ["2", two], steps, 1)))
    return rows


def project(models, steps):
    table = []
    for src in models:
        name = os.path.splitext(os.path.basename(src))[0]
        exe = compile_model(src, name)
        r = bench([exe], steps, 1)
        params = parameters(exe)
        table.append((name, params, 4 * (params + 1), r["median_ms"] / 1e3,
                      r["batch"]))
    return table


def ring(bytes_, machines, bandwidth):
    k = machines
    return 2 * (k - 1) / k * bytes_ / bandwidth + 2 * (k - 1) * LATENCY


def report(cnn, projected, steps):
    lines = [f"Measured {datetime.date.today()} on "
             f"{describe_machine(machine_info())}, {steps} timed steps per "
             f"run, `bench/scaling.py`.", ""]
    lines += ["**The CNN on this machine** (global batch 64; median step "
              "time of three alternating runs each):", "",
              "| layout | median step | samples/s | all-reduce share |",
              "|---|---|---|---|"]
    for layout in ("1 process x 2 threads", "2 processes x 1 thread"):
        runs = sorted((r for l, r in cnn if l == layout),
                      key=lambda r: r["median_ms"])
        r = runs[len(runs) // 2]
        share = (f"{100 * r['allreduce_share']:.1f}% "
                 f"({r['allreduce_ms']:.2f} ms, "
                 f"{r['allreduce_bytes'] / 1e6:.2f} MB)"
                 if r.get("processes", 1) > 1 else "-")
        lines.append(f"| {layout} | {r['median_ms']:.1f} ms | "
                     f"{1e3 * r['batch'] / r['median_ms']:.0f} | {share} |")
    lines += ["", "**Projected on K machines** (one process of 1 thread per "
              "machine at this machine's measured step time; step time with "
              "the ring all-reduce, and the speed-up over one machine):", ""]
    header = "| model | parameters | MB a step | step (1 machine) |"
    rule = "|---|---|---|---|"
    for label, _ in NETWORKS:
        for k in MACHINES:
            header += f" {k} @ {label} |"
            rule += "---|"
    lines += [header, rule]
    for name, params, bytes_, step, batch in projected:
        row = (f"| {name} | {params:,} | {bytes_ / 1e6:.2f} | "
               f"{1e3 * step:.1f} ms |")
        for _, bandwidth in NETWORKS:
            for k in MACHINES:
                t = step + ring(bytes_, k, bandwidth)
                row += f" {1e3 * t:.1f} ms ({k * step / t:.1f}x) |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--models", nargs="*",
                   help="model names of models/ to project (default: all)")
    p.add_argument("--no-docs", action="store_true",
                   help="print the report only")
    args = p.parse_args()
    os.makedirs(WORK, exist_ok=True)
    srcs = sorted(glob.glob(os.path.join(ROOT, "models", "*.kiln")))
    if args.models:
        srcs = [s for s in srcs
                if os.path.splitext(os.path.basename(s))[0] in args.models]
    cnn = measure_cnn(args.steps)
    projected = project(srcs, args.steps)
    text = report(cnn, projected, args.steps)
    print(text)
    if not args.no_docs:
        doc = open(DOC).read()
        i, j = doc.index(BEGIN) + len(BEGIN), doc.index(END)
        with open(DOC + ".tmp", "w") as f:
            f.write(doc[:i] + "\n" + text + doc[j:])
        os.replace(DOC + ".tmp", DOC)


if __name__ == "__main__":
    sys.exit(main())
