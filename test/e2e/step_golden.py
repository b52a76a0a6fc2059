"""One training step of a compiled model against PyTorch goldens.

The inputs (weights and one batch) are given by closed-form integer formulas, so
that this file (numpy only) and scripts/gen-goldens.py (PyTorch) produce exactly
the same bits without sharing large files. Commands:

  step_golden.py make MODEL DIR OPT        writes DIR/init.safetensors, image.npy,
                                           label.npy for optimizer OPT (sgd | adam)
  step_golden.py sgd-lr MODEL              prints the SGD learning rate of its step
  step_golden.py check MODEL CKPT METRICS OPT
                                           compares a checkpoint after one step
                                           (and the loss in the metrics CSV) with
                                           the golden in goldens/MODEL-step.json

MODELS lists each model's parameters (in manifest order) and input shapes; the
PyTorch definitions are in scripts/gen-goldens.py.
"""
import json
import os
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import kiln_random  # noqa: E402

SGD_LR = 1.0
ADAM_LR = 1e-3
TOLERANCE = 1e-4
SAMPLES = 48
# The training seed run-step.sh passes (the random ops' key).
SEED = 5
VAE_BATCH = 64

MODELS = {
    # models/mlp.kiln: 784-256-128-10.
    "mlp": {
        "params": [("fc1.w", (784, 256)), ("fc1.b", (256,)),
                   ("fc2.w", (256, 128)), ("fc2.b", (128,)),
                   ("logits.w", (128, 10)), ("logits.b", (10,))],
        "image": (64, 784), "classes": 10, "scale": 0.1,
    },
    # models/lenet.kiln: conv5x5-6 (pad 2), pool, conv5x5-16, pool, 120-84-10.
    "lenet": {
        "params": [("c1.w", (6, 1, 5, 5)), ("c1.b", (6,)),
                   ("c2.w", (16, 6, 5, 5)), ("c2.b", (16,)),
                   ("f3.w", (400, 120)), ("f3.b", (120,)),
                   ("f4.w", (120, 84)), ("f4.b", (84,)),
                   ("logits.w", (84, 10)), ("logits.b", (10,))],
        "image": (64, 1, 28, 28), "classes": 10, "scale": 0.3,
    },
    # test/e2e/models/convs.kiln: strides, padding, dilation, both poolings.
    "convs": {
        "params": [("w1", (3, 2, 3, 3)), ("b1", (3,)), ("w2", (4, 3, 2, 3)),
                   ("w3", (5, 4, 3, 2)), ("b3", (5,)), ("fw", (45, 3)),
                   ("fb", (3,))],
        "image": (4, 2, 11, 9), "classes": 3, "scale": 1.0,
    },
    # test/e2e/models/bn.kiln: conv, batch_norm (training mode), dense. `mean`
    # and `var` are buffers (running statistics): updated, not trained.
    "bn": {
        "params": [("w", (3, 2, 3, 3)), ("gamma", (3,)), ("beta", (3,)),
                   ("mean", (3,)), ("var", (3,)), ("fw", (48, 4)), ("fb", (4,))],
        "image": (8, 2, 6, 6), "classes": 4, "scale": 1.0,
        "buffers": ["mean", "var"],
    },
}


def _cell(prefix, cell, inputs, hidden):
    """The parameters of an nn.kiln cell: w_ih [I, G*H], w_hh [H, G*H], b_ih, b_hh."""
    gates = {"rnn_cell": 1, "lstm_cell": 4, "gru_cell": 3}[cell] * hidden
    p = prefix + "." + cell + "."
    return [(p + "w_ih", (inputs, gates)), (p + "w_hh", (hidden, gates)),
            (p + "b_ih", (gates,)), (p + "b_hh", (gates,))]


# test/e2e/models/{rnn,lstm,gru}_seq.kiln: the recurrent layers of lib/nn.kiln.
MODELS["rnn_seq"] = {
    "params": _cell("fwd", "rnn_cell", 3, 6) + _cell("bwd", "rnn_cell", 3, 6)
    + [("last.w", (6, 3)), ("last.b", (3,)), ("avg.w", (6, 3)), ("avg.b", (3,))],
    "image": (4, 5, 3), "classes": 3, "scale": 0.8,
}
MODELS["lstm_seq"] = {
    "params": _cell("lower", "lstm_cell", 3, 6) + _cell("upper", "lstm_cell", 6, 5)
    + [("logits.w", (10, 3)), ("logits.b", (3,))],
    "image": (4, 5, 3), "classes": 3, "scale": 0.8,
}
MODELS["gru_seq"] = {
    "params": _cell("states", "gru_cell", 3, 6)
    + [("last.w", (6, 3)), ("last.b", (3,)), ("avg.w", (6, 3)), ("avg.b", (3,))],
    "image": (4, 5, 3), "classes": 3, "scale": 0.8,
}


# models/autoencoder.kiln: 784-128-32-128-784, mean squared error (no labels).
MODELS["autoencoder"] = {
    "params": [("hidden.w", (784, 128)), ("hidden.b", (128,)),
               ("code.w", (128, 32)), ("code.b", (32,)),
               ("expanded.w", (32, 128)), ("expanded.b", (128,)),
               ("decoded.w", (128, 784)), ("decoded.b", (784,))],
    "image": (64, 784), "classes": None, "scale": 0.1,
    # Its gradients are ~1e-6: a step of lr 1 would change the f32 weights
    # by less than their rounding, and recover no gradient.
    "sgd_lr": 1000.0,
}
# models/vae.kiln: encoder 784-400-(20, 20), decoder 20-400-784. Its noise is
# kiln.random_normal with salt 1 at step 1 under the seed run-step.sh passes
# (SEED), which kiln_random.py reproduces.
MODELS["vae"] = {
    "params": [("hidden.w", (784, 400)), ("hidden.b", (400,)),
               ("mu.w", (400, 20)), ("mu.b", (20,)),
               ("logvar.w", (400, 20)), ("logvar.b", (20,)),
               ("logits.hidden.w", (20, 400)), ("logits.hidden.b", (400,)),
               ("logits.dense.w", (400, 784)), ("logits.dense.b", (784,))],
    "image": (VAE_BATCH, 784), "classes": None, "scale": 0.1,
    "noise": {"salt": 1, "shape": (VAE_BATCH, 20)},
}



def _encoder_layer(prefix, width, hidden):
    """The parameters of nn.kiln's encoder_layer (weights stored [in, out])."""
    p = prefix + "."
    return [(p + "norm1.weight", (width,)), (p + "norm1.bias", (width,)),
            (p + "attn.w_in", (width, 3 * width)), (p + "attn.b_in", (3 * width,)),
            (p + "attn.w_out", (width, width)), (p + "attn.b_out", (width,)),
            (p + "norm2.weight", (width,)), (p + "norm2.bias", (width,)),
            (p + "ff.inner.w", (width, hidden)), (p + "ff.inner.b", (hidden,)),
            (p + "ff.project.w", (hidden, width)), (p + "ff.project.b", (width,))]


# test/e2e/models/encoder.kiln: two pre-norm Transformer encoder layers (4
# heads, then 2 heads and causal), mean over positions, dense.
MODELS["encoder"] = {
    "params": _encoder_layer("lower", 16, 32) + _encoder_layer("upper", 16, 24)
    + [("logits.w", (16, 3)), ("logits.b", (3,))],
    "image": (4, 6, 16), "classes": 3, "scale": 0.8,
}

# test/e2e/models/decoder.kiln: an encoder layer makes the memory, a dense
# layer the target, then a pre-norm decoder layer (causal self-attention,
# attention to the memory with padding hidden, feed-forward), mean, dense.
MODELS["decoder"] = {
    "params": _encoder_layer("memory", 16, 24)
    + [("target.w", (16, 16)), ("target.b", (16,))]
    + _encoder_layer("layer", 16, 32)[:8]
    + [("layer.cross.w_in", (16, 48)), ("layer.cross.b_in", (48,)),
       ("layer.cross.w_out", (16, 16)), ("layer.cross.b_out", (16,)),
       ("layer.norm3.weight", (16,)), ("layer.norm3.bias", (16,))]
    + _encoder_layer("layer", 16, 32)[8:]
    + [("logits.w", (16, 3)), ("logits.b", (3,))],
    "image": (4, 6, 16), "classes": 3, "scale": 0.8,
}


_M64 = (1 << 64) - 1


class HostRng:
    """The runtime's Rng (runtime/Init.cpp): xoshiro256** seeded by splitmix64
    from seed ^ fnv1a(tag)."""

    def __init__(self, seed, tag):
        h = 0xCBF29CE484222325
        for c in tag.encode():
            h = ((h ^ c) * 0x100000001B3) & _M64
        state, self.s = (seed ^ h) & _M64, []
        for _ in range(4):
            state = (state + 0x9E3779B97F4A7C15) & _M64
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
            self.s.append(z ^ (z >> 31))

    def next(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & _M64
        result = (rotl((s[1] * 5) & _M64, 7) * 9) & _M64
        t = (s[1] << 17) & _M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        limit = _M64 - _M64 % n
        while True:
            x = self.next()
            if x < limit:
                return x % n


def first_batch_order(n):
    """The examples of the first training step, in the order the runtime
    gathers them: its epoch-0 shuffle under SEED (rows matter to a model that
    draws a random number per row)."""
    order = list(range(n))
    rng = HostRng(SEED, "epoch:0")
    for i in range(n, 1, -1):
        j = rng.below(i)
        order[i - 1], order[j] = order[j], order[i - 1]
    return order


def noise(model):
    """The standard normal noise of the model's first train step, or None."""
    spec = MODELS[model].get("noise")
    if not spec:
        return None
    return kiln_random.normal(1, SEED, spec["salt"], spec["shape"]).astype(np.float32)


def sgd_lr(model):
    """The SGD learning rate of the model's golden step."""
    return MODELS[model].get("sgd_lr", SGD_LR)


def param_names(model):
    return [name for name, _ in MODELS[model]["params"]]


def buffers(model):
    return MODELS[model].get("buffers", [])


def init_params(model):
    """Deterministic weights in (-scale/2, scale/2): integer hashing, scaled."""
    spec = MODELS[model]
    params = {}
    for k, (name, shape) in enumerate(spec["params"]):
        n = int(np.prod(shape))
        i = np.arange(n, dtype=np.int64)
        h = (i * 2654435761 + (k // 2 + 1) * 40503 + len(name) * 97) % 1000003
        value = (h.astype(np.float64) / 1000003.0 - 0.5) * spec["scale"]
        if name == "var" and name in buffers(model):
            value = 1.0 + value  # a variance is positive
        params[name] = value.astype(np.float32).reshape(shape)
    return params


def batch(model):
    spec = MODELS[model]
    shape = spec["image"]
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.int64)
    image = (((i * 7919) % 1009) / 1009.0).astype(np.float32).reshape(shape)
    if not spec["classes"]:
        return image, None
    label = ((np.arange(shape[0], dtype=np.int64) * 7 + 3) % spec["classes"]).astype(np.int32)
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


def _safetensors_header(path):
    """A safetensors file's JSON header, its length and the whole file."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + n]), n, raw


def checkpoint_vocabulary(path):
    """The characters a checkpoint's ids stand for (its kiln.vocab), in id
    order."""
    return _safetensors_header(path)[0]["__metadata__"]["kiln.vocab"]


def read_safetensors(path):
    header, n, raw = _safetensors_header(path)
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (name, e["dtype"])
        b, end = e["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + end], dtype=np.float32).reshape(e["shape"])
    return out


def make(model, directory, optimizer):
    os.makedirs(directory, exist_ok=True)
    params = init_params(model)
    tensors = dict(params)
    if optimizer == "adam":
        for name in param_names(model):
            if name in buffers(model):
                continue
            tensors[name + ":m"] = np.zeros_like(params[name])
            tensors[name + ":v"] = np.zeros_like(params[name])
    write_safetensors(os.path.join(directory, "init.safetensors"), tensors,
                      {"kiln.model": model, "kiln.step": "0", "kiln.format": "1"})
    image, label = batch(model)
    np.save(os.path.join(directory, "image.npy"), image)
    if label is not None:
        np.save(os.path.join(directory, "label.npy"), label)


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def check(model, checkpoint, metrics, optimizer):
    with open(os.path.join(HERE, "goldens", model + "-step.json")) as f:
        golden = json.load(f)
    g = golden[optimizer]
    after = read_safetensors(checkpoint)
    before = init_params(model)
    worst = []
    # The loss of the step (computed before the update).
    with open(metrics) as f:
        rows = [line.strip().split(",") for line in f if line.strip()]
    column = rows[0].index("train_loss")
    loss = float(rows[1][column])
    worst.append(("loss", abs(loss - g["loss"]) / abs(g["loss"])))
    for name in param_names(model):
        p = after[name].astype(np.float64).ravel()
        idx = sample_indices(p.size)
        got, expected = p[idx], np.array(g["params"][name]["samples"])
        if optimizer == "adam" and name in golden["grads"]:
            # Adam divides a gradient by its own size, so where the exact
            # gradient is 0 (attention's key bias: softmax ignores a constant
            # added to all of a query's scores) it turns rounding noise into
            # steps of +-lr in both frameworks: compare only the others.
            gg = golden["grads"][name]
            real = np.abs(np.array(gg["samples"])) > 1e-6 * gg["norm"]
            got, expected = got[real], expected[real]
        worst.append((name + " after step (samples)", rel(got, expected)))
        worst.append((name + " after step (norm)",
                      abs(np.linalg.norm(p) - g["params"][name]["norm"]) / g["params"][name]["norm"]))
        if optimizer == "sgd" and name not in buffers(model):
            grad = (before[name].astype(np.float64).ravel() - p) / sgd_lr(model)
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
    if len(sys.argv) == 5 and sys.argv[1] == "make" and sys.argv[2] in MODELS:
        make(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 3 and sys.argv[1] == "sgd-lr" and sys.argv[2] in MODELS:
        print(sgd_lr(sys.argv[2]))
    elif len(sys.argv) == 6 and sys.argv[1] == "check" and sys.argv[2] in MODELS:
        check(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        print(__doc__)
        sys.exit(2)
