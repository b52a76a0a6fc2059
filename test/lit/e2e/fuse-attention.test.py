"""fuse-attention.test's helper: `make` writes a batch and initial weights,
`compare F U FM UM` checks that the two runs' updates of every parameter
(after - initial) and their losses agree to 1e-4 relative."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "e2e"))
import step_golden  # noqa: E402

SHAPES = {"w_in": (16, 48), "logits.w": (16, 3), "logits.b": (3,)}
rng = np.random.default_rng(7)
initial = {name: rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
           for name, shape in SHAPES.items()}
if sys.argv[1] == "make":
    np.save("image.npy", rng.normal(size=(4, 70, 16)).astype(np.float32))
    np.save("label.npy", np.array([0, 2, 1, 2], dtype=np.int32))
    step_golden.write_safetensors("init.safetensors", initial, {
        "kiln.model": "attention_written", "kiln.step": "0", "kiln.format": "1"})
    sys.exit(0)

fused, unfused = (step_golden.read_safetensors(p) for p in sys.argv[2:4])
worst = 0.0
for name, start in initial.items():
    start = start.astype(np.float64)
    updates = [c[name].astype(np.float64) - start for c in (fused, unfused)]
    err = step_golden.rel(updates[0], updates[1])
    print(f"{name:20s} update relative difference {err:.2e}")
    worst = max(worst, err)
losses = []
for path in sys.argv[4:6]:
    with open(path) as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    column = rows[0].index("train_loss")
    losses.append(np.array([float(r[column]) for r in rows[1:]]))
err = step_golden.rel(losses[0], losses[1])
print(f"{'losses':20s} relative difference {err:.2e}")
worst = max(worst, err)
if not worst <= 1e-4:
    print(f"FAIL: fused and unfused differ by {worst:.2e}")
    sys.exit(1)
print("same parameters and losses")
