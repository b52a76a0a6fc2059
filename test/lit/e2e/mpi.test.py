"""The data-parallel tests' helper.

`batch SRC N OUT`: writes the model SRC with batch N instead of 64 (its input
shapes and its train block's batch).
`same-training A B`: checks that checkpoints A (one process, batch 64) and B
(a data-parallel job of batch 64 in all) hold the same parameters, within
1e-5 relative (the norm of the difference over the norm of the tensor), and
the same optimizer state within 1e-4: the sums over the batch are added in
another order, nothing else differs.
`same-eval A B`: checks that two `eval --json` outputs report the same
examples and accuracy, and losses within 1e-6 relative.
`signal SIG LOG CKPT -- MPIRUN...`: starts the job, waits for its first
checkpoint, sends process 1 SIGSIG (KILL: it dies; STOP: it hangs), and
checks that the job ends within 60 s with a non-zero exit code; its output
goes to LOG."""
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "e2e"))
from step_golden import read_safetensors  # noqa: E402


def relative(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30)


def rank_of(pid):
    """The MPI rank of process PID, from its environment; None if none."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return None
    for v in env:
        if v.startswith(b"OMPI_COMM_WORLD_RANK="):
            return int(v.split(b"=", 1)[1])
    return None


def processes_with(arg):
    """PIDs of processes whose command line holds ARG."""
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if arg.encode() in cmd and b"mpirun" not in os.path.basename(cmd[0]):
            pids.append(int(pid))
    return pids


if sys.argv[1] == "batch":
    src, n, out = sys.argv[2], sys.argv[3], sys.argv[4]
    text = open(src).read()
    text, inputs = re.subn(r"(input \w+: [fi]32\[)64\b", rf"\g<1>{n}", text)
    text, blocks = re.subn(r"\bbatch 64\b", f"batch {n}", text)
    assert inputs >= 2 and blocks == 1, (inputs, blocks)
    open(out, "w").write(text)
elif sys.argv[1] == "same-training":
    a, b = read_safetensors(sys.argv[2]), read_safetensors(sys.argv[3])
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    params = [k for k in a if ":" not in k]
    state = [k for k in a if ":" in k]
    worst_p = max(relative(a[k], b[k]) for k in params)
    worst_s = max([relative(a[k], b[k]) for k in state] or [0])
    assert worst_p < 1e-5, f"parameters differ by {worst_p:.2e}"
    assert worst_s < 1e-4, f"optimizer state differs by {worst_s:.2e}"
    assert any(relative(a[k], np.zeros_like(a[k])) > 0 for k in params)
    print(f"same training: {len(params)} parameters within 1e-5 "
          f"(worst {worst_p:.1e}), {len(state)} state tensors within 1e-4")
elif sys.argv[1] == "same-eval":
    import json
    a, b = (json.load(open(p)) for p in sys.argv[2:4])
    assert a["examples"] == b["examples"], (a, b)
    assert a["accuracy"] == b["accuracy"], (a, b)
    assert abs(a["loss"] - b["loss"]) <= 1e-6 * abs(a["loss"]), (a, b)
    print(f"same evaluation: {a['examples']} examples, accuracy "
          f"{100 * a['accuracy']:.2f}%")
elif sys.argv[1] == "signal":
    sig = getattr(signal, "SIG" + sys.argv[2])
    log, ckpt, command = sys.argv[3], sys.argv[4], sys.argv[6:]
    with open(log, "w") as out:
        job = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while not os.path.exists(ckpt):
            assert job.poll() is None, "the job ended before its checkpoint"
            assert time.time() < deadline, "no checkpoint after 300 s"
            time.sleep(0.05)
        victims = [p for p in processes_with(ckpt) if rank_of(p) == 1]
        assert len(victims) == 1, victims
        os.kill(victims[0], sig)
        killed = time.time()
        try:
            rc = job.wait(timeout=60)
        except subprocess.TimeoutExpired:
            job.kill()
            raise AssertionError(f"the job still runs 60 s after {sig.name}")
    assert rc != 0, f"the job succeeded despite {sig.name}"
    print(f"process 1 got {sig.name}: the job ended with exit code {rc} "
          f"after {time.time() - killed:.0f} s")
