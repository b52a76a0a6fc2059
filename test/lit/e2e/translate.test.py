"""translate.test's helper.

`pick PAIRS.tsv N LENGTH OUT.tsv`: the first N English sentences of at most
LENGTH characters, one a line.
`rows CKPT SENTENCES.tsv TRANSLATIONS.txt L SOURCE.npy TARGET.npy`: the
sentences and their translations as the model's source and target rows
(boundary, character ids in the checkpoint's vocabulary, boundary, padding).
`compare CKPT TRANSLATIONS.txt PREDICTION.npy`: counts the translated
characters (and each final boundary) that the teacher-forced pass ranks
first at the position before them.
`same A.txt B.txt`: counts the lines two files have in common, place by
place."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "e2e"))
from step_golden import checkpoint_vocabulary as vocabulary  # noqa: E402


def lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().split("\n")[:-1]


def row(text, vocab, length):
    r = np.zeros(length, dtype=np.int32)
    r[0] = 1
    r[1:len(text) + 1] = [vocab.index(c) for c in text]
    r[len(text) + 1] = 1
    return r


if sys.argv[1] == "pick":
    n, length = int(sys.argv[3]), int(sys.argv[4])
    picked = [p.split("\t")[0] for p in lines(sys.argv[2])]
    picked = [s for s in picked if len(s) <= length][:n]
    with open(sys.argv[5], "w", encoding="utf-8") as f:
        f.write("".join(s + "\n" for s in picked))
    sys.exit(0)

if sys.argv[1] == "same":
    a, b = lines(sys.argv[2]), lines(sys.argv[3])
    assert len(a) == len(b)
    print(f"{sum(x == y for x, y in zip(a, b))} of {len(a)} translations are "
          f"the same")
    sys.exit(0)

vocab = vocabulary(sys.argv[2])
if sys.argv[1] == "rows":
    sentences, translations = lines(sys.argv[3]), lines(sys.argv[4])
    length = int(sys.argv[5])
    assert len(sentences) == len(translations)
    np.save(sys.argv[6], np.stack([row(s, vocab, length) for s in sentences]))
    np.save(sys.argv[7],
            np.stack([row(t, vocab, length) for t in translations]))
    sys.exit(0)

translations = lines(sys.argv[3])
prediction = np.load(sys.argv[4])
same = total = 0
for i, t in enumerate(translations):
    ids = [vocab.index(c) for c in t] + [1]
    for j, token in enumerate(ids):
        same += int(prediction[i, j]) == token
        total += 1
print(f"{same} of {total} characters are the teacher-forced pass's first "
      f"choice, {total - same} differ")
