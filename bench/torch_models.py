"""PyTorch equivalents of models/*.kiln, their analytic FLOP counts, and a
train-step timer.

Each model is a list of layer specs (the same list builds the torch module and
counts the FLOPs), an input shape (batch first), a class count, and the
optimizer, all as in the .kiln file of the same name:

  mlp    784-256-128-10 ReLU, cross-entropy, Adam lr 1e-3, batch 64
  lenet  conv5x5-6 pad 2, relu, maxpool 2, conv5x5-16, relu, maxpool 2,
         flatten 400, fc 120-84-10 relu, Adam lr 1e-3, batch 64, 1x28x28
  cnn    conv3x3-32, relu, conv3x3-64, relu, maxpool 2, dropout 0.25, flatten,
         fc-128 relu, dropout 0.5, fc-10, Adam lr 1e-3, batch 64, 1x28x28
  gru_rows         MNIST rows: GRU 28-128 over 28 steps, last state, fc-10,
                   Adam lr 2e-3, batch 64
  rnn_fashion      two tanh RNN layers 28-128-128 over 28 steps, last state,
                   fc-10, Adam lr 1e-3, batch 64
  lstm_classifier  bench/models/: LSTM 32-128 over 32 steps, last state, fc-10,
                   Adam lr 1e-3, batch 32
  gru_classifier   bench/models/: the same with a GRU
  autoencoder      784-128-32-128-784 ReLU, sigmoid, MSE against the input,
                   Adam lr 1e-3, batch 64
  vae              PyTorch's VAE example: 784-400-(20, 20), a Gaussian latent
                   (torch.randn_like noise each step), 20-400-784, BCE with
                   logits summed over pixels + KL, Adam lr 2e-3, batch 64

Recurrent layers are torch.nn.RNN/LSTM/GRU (batch first, PyTorch's fused
kernels); ("last",) keeps the final step's state.

Run as a script (by bench/bench.py, with /usr/bin/python3, Debian's torch):

  python3 bench/torch_models.py MODEL --steps N --warmup W --threads T

prints one JSON object like the Kiln executable's `bench --json`. The caller
sets OMP_NUM_THREADS / OPENBLAS_NUM_THREADS / MKL_NUM_THREADS before the
interpreter starts; torch.set_num_threads(T) is called here too.
"""

import json
import sys

BATCH = 64

# Layer specs: ("linear", in, out), ("conv", in_ch, out_ch, k, pad),
# ("relu",), ("maxpool", k), ("dropout", p), ("flatten",), ("reshape", dims),
# ("rnn" | "lstm" | "gru", in, hidden) over [B, T, in] -> [B, T, hidden],
# ("last",) [B, T, H] -> [B, H], ("sigmoid",), ("vae", in, hidden, latent):
# a VAE's encoder, reparameterization and decoder [B, in] -> [B, in] (logits).
# A model's "loss" is cross_entropy against labels unless it says "mse" (of
# the output against the input) or "vae" (BCE with logits summed + KL).
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
MODELS = {
    "mlp": {
        "input": (BATCH, 784),
        "layers": [
            ("linear", 784, 256), ("relu",),
            ("linear", 256, 128), ("relu",),
            ("linear", 128, 10),
        ],
        "classes": 10,
        "lr": 1e-3,
    },
    "lenet": {
        "input": (BATCH, 1, 28, 28),
        "layers": [
            ("conv", 1, 6, 5, 2), ("relu",), ("maxpool", 2),
            ("conv", 6, 16, 5, 0), ("relu",), ("maxpool", 2),
            ("flatten",),
            ("linear", 400, 120), ("relu",),
            ("linear", 120, 84), ("relu",),
            ("linear", 84, 10),
        ],
        "classes": 10,
        "lr": 1e-3,
    },
    "cnn": {
        "input": (BATCH, 1, 28, 28),
        "layers": [
            ("conv", 1, 32, 3, 0), ("relu",),
            ("conv", 32, 64, 3, 0), ("relu",),
            ("maxpool", 2), ("dropout", 0.25),
            ("flatten",),
            ("linear", 9216, 128), ("relu",), ("dropout", 0.5),
            ("linear", 128, 10),
        ],
        "classes": 10,
        "lr": 1e-3,
    },
    "gru_rows": {
        "input": (BATCH, 784),
        "layers": [("reshape", (BATCH, 28, 28)), ("gru", 28, 128), ("last",),
                   ("linear", 128, 10)],
        "classes": 10,
        "lr": 2e-3,
    },
    "rnn_fashion": {
        "input": (BATCH, 784),
        "layers": [("reshape", (BATCH, 28, 28)), ("rnn", 28, 128),
                   ("rnn", 128, 128), ("last",), ("linear", 128, 10)],
        "classes": 10,
        "lr": 1e-3,
    },
    "lstm_classifier": {
        "input": (32, 32, 32),
        "layers": [("lstm", 32, 128), ("last",), ("linear", 128, 10)],
        "classes": 10,
        "lr": 1e-3,
    },
    "gru_classifier": {
        "input": (32, 32, 32),
        "layers": [("gru", 32, 128), ("last",), ("linear", 128, 10)],
        "classes": 10,
        "lr": 1e-3,
    },
    "autoencoder": {
        "input": (BATCH, 784),
        "layers": [
            ("linear", 784, 128), ("relu",), ("linear", 128, 32), ("relu",),
            ("linear", 32, 128), ("relu",), ("linear", 128, 784), ("sigmoid",),
        ],
        "classes": 784,
        "loss": "mse",
        "lr": 1e-3,
    },
    "vae": {
        "input": (BATCH, 784),
        "layers": [("vae", 784, 400, 20)],
        "classes": 784,
        "loss": "vae",
        "lr": 2e-3,
    },
}

# Transformers (bench/models/): an embedding, learned positions, pre-norm
# torch.nn.TransformerEncoderLayer(GELU, no dropout, batch first) layers, a
# final LayerNorm and a dense layer per token; "causal" predicts each next
# character of [batch, seq + 1] windows through a causal mask.
TRANSFORMERS = {
    "token_classifier": {"vocab": 1000, "seq": 64, "width": 128, "heads": 4,
                         "ff": 512, "layers": 2, "classes": 16, "batch": 16,
                         "causal": False, "lr": 1e-3},
    "transformer_charlm": {"vocab": 96, "seq": 64, "width": 128, "heads": 4,
                           "ff": 512, "layers": 2, "classes": 96, "batch": 16,
                           "causal": True, "lr": 1e-3},
}
# Attention alone: q, k, v [batch, heads, seq, width] as parameters, the loss
# mean(softmax(q k^T / sqrt(width)) v * x), SGD.
ATTENTION = {"attention": {"shape": (16, 4, 256, 32), "lr": 0.1}}
for _name, _spec in list(TRANSFORMERS.items()) + list(ATTENTION.items()):
    MODELS[_name] = dict(_spec, custom=True)


def transformer_flops(spec):
    """Forward FLOPs of the projections, attention products and head."""
    b, t, d = spec["batch"], spec["seq"], spec["width"]
    rows = b * t
    layer = 2 * rows * (3 * d * d + d * d + 2 * d * spec["ff"])
    layer += 2 * 2 * b * t * t * d  # q k^T and p v, all heads
    return spec["layers"] * layer + 2 * rows * d * spec["classes"]


def layer_shapes(name):
    """[(spec, input shape, output shape)] through the model's layers."""
    model = MODELS[name]
    shape = tuple(model["input"])
    out = []
    for spec in model["layers"]:
        kind = spec[0]
        if kind == "linear":
            assert shape[-1] == spec[1], (name, spec, shape)
            new = shape[:-1] + (spec[2],)
        elif kind == "conv":
            n, c, h, w = shape
            _, cin, cout, k, pad = spec
            assert c == cin, (name, spec, shape)
            new = (n, cout, h + 2 * pad - k + 1, w + 2 * pad - k + 1)
        elif kind == "maxpool":
            n, c, h, w = shape
            new = (n, c, h // spec[1], w // spec[1])
        elif kind == "reshape":
            new = tuple(spec[1])
        elif kind in GATES:
            assert shape[-1] == spec[1], (name, spec, shape)
            new = shape[:-1] + (spec[2],)
        elif kind == "last":
            new = (shape[0], shape[2])
        elif kind == "vae":
            assert shape[-1] == spec[1], (name, spec, shape)
            new = shape
        elif kind == "flatten":
            size = 1
            for d in shape[1:]:
                size *= d
            new = (shape[0], size)
        else:  # relu, dropout
            new = shape
        out.append((spec, shape, new))
        shape = new
    assert shape == (model["input"][0], model["classes"]), (name, shape)
    return out


def flops(name):
    """Analytic FLOPs of one training step of the matmuls and convolutions.

    Returns (forward, train_3x, train_exact): forward counts 2*M*N*K per
    matmul (2*N*O*OH*OW*C*KH*KW per convolution); train_3x is the usual
    convention, 3x forward (forward, gradient of the input, gradient of the
    weights); train_exact leaves out the input gradient of the first layer,
    which neither Kiln nor PyTorch computes (the input needs no gradient).
    Elementwise ops, pooling, the loss and the optimizer are not counted.
    """
    if name in TRANSFORMERS:
        f = transformer_flops(TRANSFORMERS[name])
        # The embedding is a gather: every product has its gradients.
        return f, 3 * f, 3 * f
    if name in ATTENTION:
        b, h, t, d = ATTENTION[name]["shape"]
        f = 2 * 2 * b * h * t * t * d
        return f, 3 * f, 3 * f
    forward = 0
    first = None
    for spec, shape_in, shape_out in layer_shapes(name):
        if spec[0] == "linear":
            m = 1
            for d in shape_in[:-1]:
                m *= d
            f = 2 * m * spec[1] * spec[2]
        elif spec[0] == "conv":
            n, o, oh, ow = shape_out
            _, c, _, k, _ = spec
            f = 2 * n * o * oh * ow * c * k * k
        elif spec[0] in GATES:
            # Per step: [B, I] x [I, G*H] and [B, H] x [H, G*H].
            b, t, _ = shape_in
            g = GATES[spec[0]] * spec[2]
            f = 2 * b * t * (spec[1] + spec[2]) * g
        elif spec[0] == "vae":
            _, i, h, z = spec
            f = 2 * shape_in[0] * (i * h + 2 * h * z + z * h + h * i)
        else:
            continue
        forward += f
        if first is None:
            first = f
    return forward, 3 * forward, 3 * forward - (first or 0)


def param_count(name):
    if name in TRANSFORMERS:
        t = TRANSFORMERS[name]
        d, ff = t["width"], t["ff"]
        layer = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (d * ff + ff) + (ff * d + d)
        return (t["vocab"] * d + t["seq"] * d + t["layers"] * layer + 2 * d
                + d * t["classes"] + t["classes"])
    if name in ATTENTION:
        b, h, t, d = ATTENTION[name]["shape"]
        return 3 * b * h * t * d
    total = 0
    for spec, _, _ in layer_shapes(name):
        if spec[0] == "linear":
            total += spec[1] * spec[2] + spec[2]
        elif spec[0] == "conv":
            total += spec[2] * spec[1] * spec[3] * spec[3] + spec[2]
        elif spec[0] in GATES:
            g = GATES[spec[0]] * spec[2]
            total += (spec[1] + spec[2]) * g + 2 * g  # two biases
        elif spec[0] == "vae":
            _, i, h, z = spec
            total += (i * h + h) + 2 * (h * z + z) + (z * h + h) + (h * i + i)
    return total


def build(name):
    import torch.nn as nn

    class Recurrent(nn.Module):
        """torch.nn.RNN/LSTM/GRU (batch first) returning the states only."""

        def __init__(self, kind, inputs, hidden):
            super().__init__()
            cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
            self.layer = cls(inputs, hidden, batch_first=True)

        def forward(self, x):
            return self.layer(x)[0]

    class Last(nn.Module):
        def forward(self, x):
            return x[:, -1]

    class Vae(nn.Module):
        """PyTorch's VAE example; returns (logits, mu, logvar)."""

        def __init__(self, inputs, hidden, latent):
            super().__init__()
            self.fc1 = nn.Linear(inputs, hidden)
            self.fc21 = nn.Linear(hidden, latent)
            self.fc22 = nn.Linear(hidden, latent)
            self.fc3 = nn.Linear(latent, hidden)
            self.fc4 = nn.Linear(hidden, inputs)

        def forward(self, x):
            import torch
            h = torch.relu(self.fc1(x))
            mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            return self.fc4(torch.relu(self.fc3(z))), mu, logvar

    class Reshape(nn.Module):
        def __init__(self, dims):
            super().__init__()
            self.dims = dims

        def forward(self, x):
            return x.reshape(self.dims)

    layers = []
    for spec in MODELS[name]["layers"]:
        kind = spec[0]
        if kind == "linear":
            layers.append(nn.Linear(spec[1], spec[2]))
        elif kind == "conv":
            layers.append(nn.Conv2d(spec[1], spec[2], spec[3], padding=spec[4]))
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(spec[1]))
        elif kind == "dropout":
            layers.append(nn.Dropout(spec[1]))
        elif kind == "flatten":
            layers.append(nn.Flatten())
        elif kind in GATES:
            layers.append(Recurrent(kind, spec[1], spec[2]))
        elif kind == "last":
            layers.append(Last())
        elif kind == "reshape":
            layers.append(Reshape(spec[1]))
        elif kind == "sigmoid":
            layers.append(nn.Sigmoid())
        elif kind == "vae":
            layers.append(Vae(spec[1], spec[2], spec[3]))
        else:
            raise ValueError(kind)
    return nn.Sequential(*layers)


def build_custom(name):
    """(module, example batch, loss function) of a transformer or attention
    model."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    if name in ATTENTION:
        shape = ATTENTION[name]["shape"]

        class Attention(nn.Module):
            def __init__(self):
                super().__init__()
                self.q, self.k, self.v = (nn.Parameter(torch.randn(shape))
                                          for _ in range(3))

            def forward(self, x):
                scores = self.q @ self.k.transpose(-2, -1) / shape[-1] ** 0.5
                return (torch.softmax(scores, -1) @ self.v * x).mean()

        return Attention(), (torch.rand(shape),), lambda out, *_: out

    t = TRANSFORMERS[name]

    class Transformer(nn.Module):
        def __init__(self):
            super().__init__()
            d = t["width"]
            self.embed = nn.Embedding(t["vocab"], d)
            self.position = nn.Parameter(torch.randn(t["seq"], d) * 0.02)
            self.layers = nn.ModuleList(
                nn.TransformerEncoderLayer(d, t["heads"], t["ff"], dropout=0.0,
                                           activation="gelu", batch_first=True,
                                           norm_first=True)
                for _ in range(t["layers"]))
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, t["classes"])
            self.mask = None
            if t["causal"]:
                self.mask = torch.triu(
                    torch.full((t["seq"], t["seq"]), float("-inf")), diagonal=1)

        def forward(self, ids):
            h = self.embed(ids) + self.position
            for layer in self.layers:
                h = layer(h, src_mask=self.mask)
            return self.head(self.norm(h))

    b, n = t["batch"], t["seq"]
    if t["causal"]:
        text = torch.randint(0, t["vocab"], (b, n + 1))
        batch = (text[:, :-1], text[:, 1:])
    else:
        batch = (torch.randint(0, t["vocab"], (b, n)),
                 torch.randint(0, t["classes"], (b, n)))

    def loss_of(out, _, target):
        return F.cross_entropy(out.reshape(-1, t["classes"]), target.reshape(-1))

    return Transformer(), batch, loss_of


def bench(name, steps, warmup, threads, seed=42):
    import resource
    import time

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    spec = MODELS[name]
    if spec.get("custom"):
        model, batch, custom_loss = build_custom(name)
    else:
        model = build(name)
    model.train()
    if name in ATTENTION:
        opt = torch.optim.SGD(model.parameters(), lr=spec["lr"])
    else:
        opt = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    # One resident synthetic batch, as `model bench` uses.
    if spec.get("custom"):
        x = batch[0]
    else:
        x = torch.rand(*spec["input"])
        y = torch.randint(0, spec["classes"], (spec["input"][0],))

    def loss_of(out):
        if spec.get("custom"):
            return custom_loss(out, *batch)
        kind = spec.get("loss", "cross_entropy")
        if kind == "mse":
            return F.mse_loss(out, x)
        if kind == "vae":
            logits, mu, logvar = out
            bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu * mu - logvar.exp())
            return (bce + kl) / x.shape[0]
        return F.cross_entropy(out, y)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_of(model(x))
        loss.backward()
        opt.step()
        return loss

    loss = None
    for _ in range(warmup):
        loss = step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t0) * 1e3)
    s = sorted(times)
    n = len(s)
    med = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return {
        "model": name,
        "batch": x.shape[0],
        "warmup": warmup,
        "steps": steps,
        "threads": torch.get_num_threads(),
        "min_ms": s[0],
        "median_ms": med,
        "mean_ms": sum(s) / n,
        "max_ms": s[-1],
        "steps_per_s": 1e3 * n / sum(s),
        "max_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "loss": float(loss) if loss is not None else None,
        "torch": torch.__version__,
        "params": sum(p.numel() for p in model.parameters()),
    }


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args(argv)
    print(json.dumps(bench(a.model, a.steps, a.warmup, a.threads, a.seed)))


if __name__ == "__main__":
    main(sys.argv[1:])
