#!/usr/bin/python3
"""idx_subset.py IMAGES LABELS N OUT_DIR [SCALE]: writes the first N examples of an
IDX dataset (gzip'd or not) as OUT_DIR/image.npy (float32, times SCALE, default
1/255) and OUT_DIR/label.npy (int32), for quick evaluations in tests."""
import gzip
import os
import struct
import sys

import numpy as np


def read_idx(path, n):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        magic = struct.unpack(">I", f.read(4))[0]
        dims = [struct.unpack(">I", f.read(4))[0] for _ in range(magic & 0xFF)]
        count = min(n, dims[0])
        per = int(np.prod(dims[1:])) if len(dims) > 1 else 1
        data = np.frombuffer(f.read(count * per), dtype=np.uint8)
        return data.reshape([count] + dims[1:])


def main():
    images, labels, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    scale = float(sys.argv[5]) if len(sys.argv) > 5 else 1 / 255
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "image.npy"), (read_idx(images, n) * scale).astype(np.float32))
    np.save(os.path.join(out, "label.npy"), read_idx(labels, n).astype(np.int32))


if __name__ == "__main__":
    main()
