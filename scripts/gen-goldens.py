#!/usr/bin/python3
"""Regenerates Kiln's PyTorch goldens (needs Debian's python3-torch).

  /usr/bin/python3 scripts/gen-goldens.py

Writes test/e2e/goldens/mlp-step.json: the loss, the gradients and the parameters
after one SGD step and one Adam step of models/mlp.kiln (784-256-128-10, ReLU,
cross-entropy) from the deterministic weights and batch of test/e2e/mlp_step.py.
Tensors are summarized by their norm and fixed samples to keep the golden small.
"""
import json
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "e2e"))
import mlp_step  # noqa: E402

torch.set_num_threads(1)


def forward(params, image, label):
    h = image
    for k, (layer, _, _) in enumerate(mlp_step.LAYERS):
        h = h @ params[layer + ".w"] + params[layer + ".b"]
        if k + 1 < len(mlp_step.LAYERS):
            h = torch.relu(h)
    return torch.nn.functional.cross_entropy(h, label)


def summarize(t):
    flat = t.detach().double().reshape(-1)
    idx = mlp_step.sample_indices(flat.numel())
    return {"norm": float(flat.norm()), "samples": [float(flat[i]) for i in idx]}


def step(optimizer_name):
    params = {k: torch.tensor(v, requires_grad=True) for k, v in mlp_step.init_params().items()}
    image, label = mlp_step.batch()
    image, label = torch.tensor(image), torch.tensor(label, dtype=torch.long)
    ordered = [params[n] for n in mlp_step.param_names()]
    if optimizer_name == "sgd":
        opt = torch.optim.SGD(ordered, lr=mlp_step.SGD_LR)
    else:
        opt = torch.optim.Adam(ordered, lr=mlp_step.ADAM_LR, betas=(0.9, 0.999), eps=1e-8)
    opt.zero_grad()
    loss = forward(params, image, label)
    loss.backward()
    grads = {n: summarize(params[n].grad) for n in mlp_step.param_names()}
    opt.step()
    after = {n: summarize(params[n]) for n in mlp_step.param_names()}
    return float(loss), grads, after


def main():
    sgd_loss, grads, sgd_after = step("sgd")
    adam_loss, _, adam_after = step("adam")
    golden = {
        "source": "scripts/gen-goldens.py, torch " + torch.__version__,
        "grads": grads,
        "sgd": {"lr": mlp_step.SGD_LR, "loss": sgd_loss, "params": sgd_after},
        "adam": {"lr": mlp_step.ADAM_LR, "loss": adam_loss, "params": adam_after},
    }
    out = os.path.join(ROOT, "test", "e2e", "goldens", "mlp-step.json")
    with open(out, "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"wrote {out} (loss {sgd_loss:.6f})")


if __name__ == "__main__":
    main()
