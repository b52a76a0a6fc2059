"""langid.test's helper.

`classes CKPT`: the checkpoint's class names (kiln.classes), on one line.
`rows CKPT L OUT.npy TEXT...`: the texts (their first L - 2 characters) as
the model's input rows (boundary, character ids in the checkpoint's
vocabulary, boundary, padding).
`compare CKPT PRINTED.txt OUT`: checks that what predict --text printed
(prediction and the three likeliest languages with their probabilities, to
three decimals) is what predict --input wrote in OUT/prediction.npy and
OUT/probability.npy."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "e2e"))
from step_golden import _safetensors_header  # noqa: E402
from step_golden import checkpoint_vocabulary as vocabulary  # noqa: E402


def classes(path):
    return _safetensors_header(path)[0]["__metadata__"]["kiln.classes"].split("\n")[:-1]


if sys.argv[1] == "classes":
    print(" ".join(classes(sys.argv[2])))
elif sys.argv[1] == "rows":
    vocab, length = vocabulary(sys.argv[2]), int(sys.argv[3])
    rows = np.zeros((len(sys.argv) - 5, length), dtype=np.int32)
    for r, text in enumerate(sys.argv[5:]):
        text = text[:length - 2]
        rows[r, 0] = 1
        rows[r, 1:len(text) + 1] = [vocab.index(c) for c in text]
        rows[r, len(text) + 1] = 1
    np.save(sys.argv[4], rows)
elif sys.argv[1] == "compare":
    names = classes(sys.argv[2])
    with open(sys.argv[3], encoding="utf-8") as f:
        printed = f.read().split("\n")[:-1]
    prediction = np.load(os.path.join(sys.argv[4], "prediction.npy"))
    probability = np.load(os.path.join(sys.argv[4], "probability.npy"))
    texts = len(printed) // 3
    assert len(printed) == 3 * texts and texts == len(prediction), printed
    for t in range(texts):
        label = printed[3 * t + 1].removeprefix("  prediction: ")
        assert label == names[prediction[t]], (label, prediction[t])
        shown = printed[3 * t + 2].removeprefix("  probability: ").split(", ")
        order = np.argsort(-probability[t], kind="stable")[:3]
        for (name, value), c in zip((s.split(" ") for s in shown), order):
            assert name == names[c], (shown, order)
            assert abs(float(value) - probability[t, c]) <= 5e-4, (value, probability[t, c])
        assert abs(probability[t].sum() - 1) < 1e-5
    print(f"{texts} texts: the printed predictions and probabilities are"
          " predict --input's")
