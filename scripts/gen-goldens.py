#!/usr/bin/python3
"""Regenerates Kiln's PyTorch goldens (needs Debian's python3-torch).

  /usr/bin/python3 scripts/gen-goldens.py [MODEL...]

For each model of test/e2e/step_golden.py, writes test/e2e/goldens/MODEL-step.json:
the loss, the gradients and the parameters after one SGD step and one Adam step,
from the deterministic weights and batch that step_golden.py defines. Tensors are
summarized by their norm and fixed samples to keep the goldens small.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "e2e"))
import step_golden  # noqa: E402

torch.set_num_threads(1)


def mlp(p, x):
    h = F.relu(x @ p["fc1.w"] + p["fc1.b"])
    h = F.relu(h @ p["fc2.w"] + p["fc2.b"])
    return h @ p["logits.w"] + p["logits.b"]


def lenet(p, x):
    h = F.max_pool2d(F.relu(F.conv2d(x, p["c1.w"], p["c1.b"], padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["c2.w"], p["c2.b"])), 2)
    h = F.relu(h.flatten(1) @ p["f3.w"] + p["f3.b"])
    h = F.relu(h @ p["f4.w"] + p["f4.b"])
    return h @ p["logits.w"] + p["logits.b"]


def convs(p, x):
    c1 = torch.tanh(F.conv2d(x, p["w1"], p["b1"], stride=2, padding=1))
    c2 = torch.sigmoid(F.conv2d(c1, p["w2"], padding=2, dilation=2))
    p2 = F.avg_pool2d(c2, 3, stride=2, padding=1)
    c3 = F.relu(F.conv2d(p2, p["w3"], p["b3"], padding=1))
    p3 = F.max_pool2d(c3, 2, stride=1)
    return p3.flatten(1) @ p["fw"] + p["fb"]


def bn(p, x):
    h = F.conv2d(x, p["w"])
    h = F.batch_norm(h, p["mean"], p["var"], p["gamma"], p["beta"],
                     training=True, momentum=0.1, eps=1e-5)
    return F.relu(h).flatten(1) @ p["fw"] + p["fb"]


def torch_layer(kind, p, prefix, x, reverse=False):
    """PyTorch's own nn.RNN/LSTM/GRU (batch first) with the weights of an
    nn.kiln layer (stored transposed: x @ w_ih), so that the gate order, the
    biases and the GRU's reset-after-matmul are PyTorch's, not a copy of
    Kiln's. Returns the states of every step and the final carries."""
    cell = {"rnn": "rnn_cell", "lstm": "lstm_cell", "gru": "gru_cell"}[kind]
    w_ih = p[prefix + "." + cell + ".w_ih"]
    hidden = p[prefix + "." + cell + ".w_hh"].shape[0]
    layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](
        w_ih.shape[0], hidden, batch_first=True)
    # The layer's parameters become functions of Kiln's, so gradients flow back.
    for name in ["w_ih", "w_hh", "b_ih", "b_hh"]:
        value = p[prefix + "." + cell + "." + name]
        delattr(layer, name.replace("w_", "weight_").replace("b_", "bias_") + "_l0")
        setattr(layer, name.replace("w_", "weight_").replace("b_", "bias_") + "_l0",
                value.t() if name.startswith("w_") else value)
    if reverse:
        x = torch.flip(x, [1])
    states, final = layer(x)
    if reverse:
        states = torch.flip(states, [1])
    return states, final


def rnn_seq(p, x):
    _, h = torch_layer("rnn", p, "fwd", x)
    bwd, _ = torch_layer("rnn", p, "bwd", x, reverse=True)
    return (h[0] @ p["last.w"] + p["last.b"]) + (bwd.mean(1) @ p["avg.w"] + p["avg.b"])


def lstm_seq(p, x):
    lower, _ = torch_layer("lstm", p, "lower", x)
    _, (h, c) = torch_layer("lstm", p, "upper", lower)
    return torch.cat([h[0], c[0]], 1) @ p["logits.w"] + p["logits.b"]


def gru_seq(p, x):
    states, h = torch_layer("gru", p, "states", x)
    return (h[0] @ p["last.w"] + p["last.b"]) + (states.mean(1) @ p["avg.w"] + p["avg.b"])


def autoencoder(p, x):
    """The loss: models/autoencoder.kiln has no labels."""
    h = F.relu(x @ p["hidden.w"] + p["hidden.b"])
    h = F.relu(h @ p["code.w"] + p["code.b"])
    h = F.relu(h @ p["expanded.w"] + p["expanded.b"])
    return F.mse_loss(torch.sigmoid(h @ p["decoded.w"] + p["decoded.b"]), x)


def vae(p, x):
    """The loss: the negative ELBO of models/vae.kiln with Kiln's noise, whose
    row r the runtime's shuffled row r draws."""
    x = x[step_golden.first_batch_order(x.shape[0])]
    h = F.relu(x @ p["hidden.w"] + p["hidden.b"])
    mu = h @ p["mu.w"] + p["mu.b"]
    logvar = h @ p["logvar.w"] + p["logvar.b"]
    eps = torch.tensor(step_golden.noise("vae"))
    z = mu + torch.exp(0.5 * logvar) * eps
    d = F.relu(z @ p["logits.hidden.w"] + p["logits.hidden.b"])
    logits = d @ p["logits.dense.w"] + p["logits.dense.b"]
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / x.shape[0]
    kl = -0.5 * torch.sum(1 + logvar - mu * mu - torch.exp(logvar)) / x.shape[0]
    return reconstruction + kl


def attention_weights(p, prefix, module, name):
    """nn.MultiheadAttention `module`'s weights from nn.kiln's attention
    parameters PREFIX.NAME.{w_in, b_in, w_out, b_out} (stored transposed)."""
    q = prefix + "." + name + "."
    return {
        (module, "in_proj_weight"): p[q + "w_in"].t(),
        (module, "in_proj_bias"): p[q + "b_in"],
        (module.out_proj, "weight"): p[q + "w_out"].t(),
        (module.out_proj, "bias"): p[q + "b_out"],
    }


def block_weights(p, prefix, layer, norms):
    """A Transformer layer's feed-forward and layer norm weights."""
    tensors = {
        (layer.linear1, "weight"): p[prefix + ".ff.inner.w"].t(),
        (layer.linear1, "bias"): p[prefix + ".ff.inner.b"],
        (layer.linear2, "weight"): p[prefix + ".ff.project.w"].t(),
        (layer.linear2, "bias"): p[prefix + ".ff.project.b"],
    }
    for i in range(1, norms + 1):
        norm = getattr(layer, "norm%d" % i)
        tensors[(norm, "weight")] = p[prefix + ".norm%d.weight" % i]
        tensors[(norm, "bias")] = p[prefix + ".norm%d.bias" % i]
    return tensors


def assign(tensors):
    """The layers' parameters become functions of Kiln's, so gradients flow
    back."""
    for (module, name), value in tensors.items():
        delattr(module, name)
        setattr(module, name, value)


def causal_mask(t):
    return torch.triu(torch.full((t, t), float("-inf")), diagonal=1)


def torch_encoder_layer(p, prefix, x, heads, causal, keep=None):
    """PyTorch's own nn.TransformerEncoderLayer (pre-norm, GELU, batch first)
    with the weights of nn.kiln's encoder_layer (dense weights stored
    transposed), the causal one through an additive -inf mask; with `keep`,
    padded_encoder_layer's: the positions where it is 0 hidden
    (src_key_padding_mask)."""
    width = x.shape[-1]
    hidden = p[prefix + ".ff.inner.w"].shape[1]
    layer = torch.nn.TransformerEncoderLayer(
        width, heads, hidden, dropout=0.0, activation="gelu", batch_first=True,
        norm_first=True)
    assign({**attention_weights(p, prefix, layer.self_attn, "attn"),
            **block_weights(p, prefix, layer, 2)})
    return layer(x, src_mask=causal_mask(x.shape[1]) if causal else None,
                 src_key_padding_mask=None if keep is None else keep == 0)


def torch_decoder_layer(p, prefix, x, memory, keep, heads):
    """PyTorch's own nn.TransformerDecoderLayer (pre-norm, GELU, batch first)
    with the weights of nn.kiln's decoder_layer: causal self-attention, and
    the memory positions where `keep` is 0 hidden (memory_key_padding_mask)."""
    width = x.shape[-1]
    hidden = p[prefix + ".ff.inner.w"].shape[1]
    layer = torch.nn.TransformerDecoderLayer(
        width, heads, hidden, dropout=0.0, activation="gelu", batch_first=True,
        norm_first=True)
    assign({**attention_weights(p, prefix, layer.self_attn, "attn"),
            **attention_weights(p, prefix, layer.multihead_attn, "cross"),
            **block_weights(p, prefix, layer, 3)})
    return layer(x, memory, tgt_mask=causal_mask(x.shape[1]),
                 memory_key_padding_mask=keep == 0)


def encoder(p, x):
    lower = torch_encoder_layer(p, "lower", x, 4, causal=False)
    upper = torch_encoder_layer(p, "upper", lower, 2, causal=True)
    return upper.mean(1) @ p["logits.w"] + p["logits.b"]


def decoder(p, x):
    keep = (x[:, :, 0] > 0.3).float()
    memory = torch_encoder_layer(p, "memory", x, 2, causal=False, keep=keep)
    # A position that sees no memory is NaN in PyTorch, 0 in Kiln: none here.
    assert bool((keep.sum(1) > 0).all())
    target = x @ p["target.w"] + p["target.b"]
    layer = torch_decoder_layer(p, "layer", target, memory, keep, 4)
    return layer.mean(1) @ p["logits.w"] + p["logits.b"]


FORWARD = {"mlp": mlp, "lenet": lenet, "convs": convs, "bn": bn,
           "rnn_seq": rnn_seq, "lstm_seq": lstm_seq, "gru_seq": gru_seq,
           "autoencoder": autoencoder, "vae": vae, "encoder": encoder,
           "decoder": decoder}


def summarize(t):
    flat = t.detach().double().reshape(-1)
    idx = step_golden.sample_indices(flat.numel())
    return {"norm": float(flat.norm()), "samples": [float(flat[i]) for i in idx]}


def step(model, optimizer_name):
    names = step_golden.param_names(model)
    buffers = step_golden.buffers(model)
    params = {k: torch.tensor(v, requires_grad=k not in buffers)
              for k, v in step_golden.init_params(model).items()}
    image, label = step_golden.batch(model)
    image = torch.tensor(image)
    ordered = [params[n] for n in names if n not in buffers]
    if optimizer_name == "sgd":
        opt = torch.optim.SGD(ordered, lr=step_golden.sgd_lr(model))
    else:
        opt = torch.optim.Adam(ordered, lr=step_golden.ADAM_LR,
                               betas=(0.9, 0.999), eps=1e-8)
    opt.zero_grad()
    if label is None:  # the model computes its own loss
        loss = FORWARD[model](params, image)
    else:
        loss = F.cross_entropy(FORWARD[model](params, image),
                               torch.tensor(label, dtype=torch.long))
    loss.backward()
    grads = {n: summarize(params[n].grad) for n in names if n not in buffers}
    opt.step()
    after = {n: summarize(params[n]) for n in names}
    return float(loss), grads, after


def main():
    only = sys.argv[1:]
    for model in step_golden.MODELS:
        if only and model not in only:
            continue
        sgd_loss, grads, sgd_after = step(model, "sgd")
        adam_loss, _, adam_after = step(model, "adam")
        golden = {
            "source": "scripts/gen-goldens.py, torch " + torch.__version__,
            "grads": grads,
            "sgd": {"lr": step_golden.sgd_lr(model), "loss": sgd_loss, "params": sgd_after},
            "adam": {"lr": step_golden.ADAM_LR, "loss": adam_loss, "params": adam_after},
        }
        out = os.path.join(ROOT, "test", "e2e", "goldens", model + "-step.json")
        with open(out, "w") as f:
            json.dump(golden, f, indent=1)
            f.write("\n")
        print(f"wrote {out} (loss {sgd_loss:.6f})")


if __name__ == "__main__":
    main()
