"""Recomputes the denoiser's test PSNRs from predict's outputs and the
clean test images: `denoise.test.py EVAL_JSON OUT_DIR IDX_IMAGES`."""

import json
import sys

import numpy as np

report = json.load(open(sys.argv[1]))
clean = np.fromfile(sys.argv[3], np.uint8, offset=16).reshape(-1, 784)
clean = clean.astype(np.float32) * np.float32(1 / 255)
psnr = {}
for name in ("damaged", "repaired"):
    out = np.load(f"{sys.argv[2]}/{name}.npy").astype(np.float64)
    mse = ((out - clean) ** 2).mean(axis=1)
    psnr[name] = np.minimum(100, 10 * np.log10(1 / mse)).mean()
    got = report[f"psnr_{name}"]
    print(name, got, psnr[name])
    assert abs(got - psnr[name]) < 1e-3, (name, got, psnr[name])
# Half the pixels gone costs about 12-13 dB; the network repairs much of it.
assert 11 < psnr["damaged"] < 15, psnr
assert psnr["repaired"] > psnr["damaged"] + 4, psnr
