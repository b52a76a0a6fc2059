#!/usr/bin/python3
"""One training step of models/mlp.kiln against PyTorch goldens.

The inputs (weights and one batch) are given by closed-form integer formulas, so
that this file (numpy only) and scripts/gen-goldens.py (PyTorch) produce exactly
the same bits without sharing large files. Commands:

  mlp_step.py make DIR                writes DIR/init.safetensors, image.npy, label.npy
  mlp_step.py check CKPT METRICS OPT  compares a checkpoint after one step (and the
                                      loss in the metrics CSV) with the golden of
                                      optimizer OPT (sgd | adam)
"""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "goldens", "mlp-step.json")

BATCH = 64
LAYERS = [("fc1", 784, 256), ("fc2", 256, 128), ("logits", 128, 10)]
SGD_LR = 1.0
ADAM_LR = 1e-3
TOLERANCE = 1e-4
SAMPLES = 48


def param_names():
    return [n for layer, _, _ in LAYERS for n in (layer + ".w", layer + ".b")]


def init_params():
    """Deterministic weights in (-0.05, 0.05): integer hashing, then scaling."""
    params = {}
    for k, (layer, fan_in, fan_out) in enumerate(LAYERS):
        for name, shape in ((layer + ".w", (fan_in, fan_out)), (layer + ".b", (fan_out,))):
            n = int(np.prod(shape))
            i = np.arange(n, dtype=np.int64)
            h = (i * 2654435761 + (k + 1) * 40503 + len(name) * 97) % 1000003
            params[name] = ((h.astype(np.float64) / 1000003.0 - 0.5) * 0.1).astype(np.float32).reshape(shape)
    return params


def batch():
    i = np.arange(BATCH * 784, dtype=np.int64)
    image = (((i * 7919) % 1009) / 1009.0).astype(np.float32).reshape(BATCH, 784)
    label = ((np.arange(BATCH, dtype=np.int64) * 7 + 3) % 10).astype(np.int32)
    return image, label


def sample_indices(n):
    return [(j * 7877 + 13) % n for j in range(SAMPLES)]


def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + end], dtype=np.float32).reshape(e["shape"])
    return out


def make(directory, optimizer):
    os.makedirs(directory, exist_ok=True)
    params = init_params()
    tensors = dict(params)
    if optimizer == "adam":
        for name in param_names():
            tensors[name + ":m"] = np.zeros_like(params[name])
            tensors[name + ":v"] = np.zeros_like(params[name])
    write_safetensors(os.path.join(directory, "init.safetensors"), tensors,
                      {"kiln.model": "mlp", "kiln.step": "0", "kiln.format": "1"})
    image, label = batch()
    np.save(os.path.join(directory, "image.npy"), image)
    np.save(os.path.join(directory, "label.npy"), label)


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def check(checkpoint, metrics, optimizer):
    with open(GOLDEN) as f:
        golden = json.load(f)
    g = golden[optimizer]
    after = read_safetensors(checkpoint)
    before = init_params()
    worst = []
    # The loss of the step (computed before the update).
    with open(metrics) as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    column = rows[0].index("train_loss")
    loss = float(rows[1][column])
    worst.append(("loss", abs(loss - g["loss"]) / abs(g["loss"])))
    for name in param_names():
        p = after[name].astype(np.float64).ravel()
        idx = sample_indices(p.size)
        worst.append((name + " after step (samples)", rel(p[idx], np.array(g["params"][name]["samples"]))))
        worst.append((name + " after step (norm)",
                      abs(np.linalg.norm(p) - g["params"][name]["norm"]) / g["params"][name]["norm"]))
        if optimizer == "sgd":
            grad = (before[name].astype(np.float64).ravel() - p) / SGD_LR
            gg = golden["grads"][name]
            worst.append((name + " gradient (samples)", rel(grad[idx], np.array(gg["samples"]))))
            worst.append((name + " gradient (norm)", abs(np.linalg.norm(grad) - gg["norm"]) / gg["norm"]))
    bad = [(what, err) for what, err in worst if not err <= TOLERANCE]
    for what, err in worst:
        print(f"{what:40s} relative error {err:.2e}")
    if bad:
        print(f"FAIL: {len(bad)} comparisons above {TOLERANCE}: " + ", ".join(w for w, _ in bad))
        sys.exit(1)
    print(f"OK: {len(worst)} comparisons within {TOLERANCE} of PyTorch")


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "sgd")
    elif len(sys.argv) == 5 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        print(__doc__)
        sys.exit(2)
