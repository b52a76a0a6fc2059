"""interrupt.test's helper.

`interrupt SIG CODE LOG COMMAND...`: runs COMMAND, sends it SIGSIG once its
first progress line appears, and checks that it exits with CODE; its output
goes to LOG.
`same A B`: checks that two checkpoints hold bitwise the same tensors."""
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "e2e"))
from step_golden import read_safetensors  # noqa: E402

if sys.argv[1] == "interrupt":
    sig, code, log = getattr(signal, "SIG" + sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    with open(log, "w") as out:
        p = subprocess.Popen(sys.argv[5:], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        sent = False
        for line in p.stdout:
            out.write(line)
            if not sent and " step " in line and "loss" in line:
                p.send_signal(sig)
                sent = True
        rc = p.wait()
    assert sent, "no progress line"
    assert rc == code, f"exit code {rc}, expected {code}"
elif sys.argv[1] == "same":
    a, b = read_safetensors(sys.argv[2]), read_safetensors(sys.argv[3])
    assert sorted(a) == sorted(b), (sorted(a), sorted(b))
    for name in a:
        assert a[name].tobytes() == b[name].tobytes(), name
    print("every tensor is bitwise the same")
