"""kill.test's helper: `EXE CKPT EPOCHS KILLS`.

Starts `EXE train --epochs EPOCHS --checkpoint CKPT` (with --resume CKPT once
it exists) KILLS times, killing it with SIGKILL after a random time (seeded);
after each kill the checkpoint, if any, must load (`EXE eval`). Then runs the
training to its end and checks that no temporary file of the checkpoint
remains."""
import glob
import os
import random
import signal
import subprocess
import sys
import time

exe, ckpt, epochs, kills = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(7)


def command():
    c = [exe, "train", "--epochs", epochs, "--checkpoint", ckpt, "--quiet"]
    return c + (["--resume", ckpt] if os.path.exists(ckpt) else [])


for k in range(kills):
    p = subprocess.Popen(command(), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.2, 2.5))
    p.send_signal(signal.SIGKILL)
    p.wait()
    if os.path.exists(ckpt):
        subprocess.run([exe, "eval", "--checkpoint", ckpt], check=True,
                       stdout=subprocess.DEVNULL)
subprocess.run(command(), check=True)
left = glob.glob(ckpt + ".tmp-*")
assert not left, left
print(f"{kills} kills: every checkpoint left loaded; the finished run left no"
      " temporary file")
