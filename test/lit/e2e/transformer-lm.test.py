"""transformer-lm.test's helper. `window CKPT TEXT OUT.npy` writes the text
(prompt and greedy continuation) as one window of character ids in the
checkpoint's vocabulary; `compare CKPT TEXT PREDICTION.npy PROMPT` counts the
generated characters that are the forward pass's argmax at the position
before them."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "e2e"))
from step_golden import checkpoint_vocabulary as vocabulary  # noqa: E402


def text(path):
    with open(path, encoding="utf-8") as f:
        return f.read()[:-1]  # generate ends its output with a newline


vocab = vocabulary(sys.argv[2])
t = text(sys.argv[3])
if sys.argv[1] == "window":
    ids = np.zeros((1, 129), dtype=np.int32)
    ids[0, :len(t)] = [vocab.index(c) for c in t]
    np.save(sys.argv[4], ids)
    sys.exit(0)
prediction = np.load(sys.argv[4])[0]
start = len(sys.argv[5])
same = sum(int(prediction[i - 1]) == vocab.index(t[i]) for i in range(start, len(t)))
print(f"{same} of {len(t) - start} generated characters are the full forward "
      f"pass's first choice")
