#!/usr/bin/python3
"""Language identification data from gettext catalogs (scripts/setup-data).

Usage: catalog-langid.py EXTRACTED OUT

EXTRACTED holds a file `packages` (lines "PACKAGE VERSION") and, for each
package, PACKAGE/usr/share/locale/LANG/LC_MESSAGES/*.mo as extracted from its
.deb for the LANGUAGES below. Writes OUT/train.tsv, OUT/test.tsv
(LANGUAGE<TAB>message, one a line, UTF-8) and OUT/SOURCES, each atomically,
and prints one summary line. Standard library only; the output depends on
nothing but the catalogs.

Entries are read and cleaned as catalogs.py describes; a message is the
translation (msgstr) of an entry, kept when it has MIN_LEN to MAX_LEN code
points of which at least MIN_LETTERS are letters (short strings such as
"Ja" or "%s: %s" say little about their language). A message found in two
languages ("Version %s", "Standard") is left out of both.

The split follows the English: a message goes to the test set when the
English sentence it translates (the one with the smallest SHA-256, if it
translates several) is held out by catalogs.is_test (about 5%), so the
translations of one sentence are all on the same side and no message is in
both sets. Each language then keeps at most TRAIN_PER_LANGUAGE training and
TEST_PER_LANGUAGE test messages (the first by the SHA-256 of the message),
so the classes are balanced; test messages with a character that no training
message uses are left out. Both files are sorted by the SHA-256 of the line.
"""

import collections
import hashlib
import os
import sys

from catalogs import (catalogs, clean, die, english_hash, entries, is_test,
                      read_packages)
from datafiles import write_lines_atomically

# Label -> the locale directories read for it (Portuguese: Portugal and
# Brazil). Twelve languages in the Latin alphabet, among them close pairs
# (Danish and Swedish, Spanish, Italian and Portuguese, Czech and Polish).
LANGUAGES = {
    "cs": ["cs"], "da": ["da"], "de": ["de"], "es": ["es"], "fi": ["fi"],
    "fr": ["fr"], "it": ["it"], "nl": ["nl"], "pl": ["pl"],
    "pt": ["pt", "pt_BR"], "sv": ["sv"], "tr": ["tr"],
}
MIN_LEN = 15
MAX_LEN = 62
MIN_LETTERS = 10
TEST_MODULUS = 20
TRAIN_PER_LANGUAGE = 8000
TEST_PER_LANGUAGE = 400


def sha(s):
    return hashlib.sha256(s.encode("utf-8")).digest()


def main():
    if len(sys.argv) != 3:
        die("usage: catalog-langid.py EXTRACTED OUT")
    extracted, out = sys.argv[1], sys.argv[2]
    packages = read_packages(extracted)

    # (language, message) -> the English sentences it translates.
    english = collections.defaultdict(set)
    sources = []
    skipped = collections.Counter()
    for package, version in packages:
        counts = []
        for label, dirs in LANGUAGES.items():
            taken = 0
            for lang in dirs:
                for domain, path in catalogs(extracted, package, lang):
                    for msgid, msgstr in entries(path):
                        p, reason = clean(domain, msgid, msgstr, MAX_LEN)
                        if p is None:
                            skipped[reason] += 1
                            continue
                        en, text = p
                        if len(text) < MIN_LEN:
                            skipped["too short"] += 1
                            continue
                        if sum(c.isalpha() for c in text) < MIN_LETTERS:
                            skipped["too few letters"] += 1
                            continue
                        taken += 1
                        english[label, text].add(en)
            counts.append(f"{label}:{taken}")
        sources.append(f"{package}\t{version}\t" + " ".join(counts))

    languages_of = collections.defaultdict(set)
    for label, text in english:
        languages_of[text].add(label)
    train = collections.defaultdict(list)
    test = collections.defaultdict(list)
    shared = 0
    for (label, text), ens in english.items():
        if len(languages_of[text]) > 1:
            shared += 1
            continue
        en = min(ens, key=english_hash)
        side = test if is_test(en, TEST_MODULUS) else train
        side[label].append((sha(text), text))

    train_rows, test_rows = [], []
    for label in LANGUAGES:
        train_rows += [(label, t) for _, t in sorted(train[label])[:TRAIN_PER_LANGUAGE]]
        test_rows += [(label, t) for _, t in sorted(test[label])[:TEST_PER_LANGUAGE]]
    chars = set()
    for _, text in train_rows:
        chars.update(text)
    kept_test = [(l, t) for l, t in test_rows if chars.issuperset(t)]
    per_language = {label: (sum(l == label for l, _ in train_rows),
                            sum(l == label for l, _ in kept_test))
                    for label in LANGUAGES}
    for label, (n_train, n_test) in per_language.items():
        if n_train < 2000 or n_test < 100:
            die(f"too few '{label}' messages ({n_train} train, {n_test} test)")

    def lines(rows):
        return [line for _, line in
                sorted((sha(line), line) for line in (f"{l}\t{t}" for l, t in rows))]

    os.makedirs(out, exist_ok=True)
    write_lines_atomically(os.path.join(out, "train.tsv"), lines(train_rows))
    write_lines_atomically(os.path.join(out, "test.tsv"), lines(kept_test))
    write_lines_atomically(
        os.path.join(out, "SOURCES"),
        ["# package\tversion\tmessages taken per language (from the .deb)"]
        + sources
        + [f"# {sum(skipped.values())} entries skipped: "
           + ", ".join(f"{n} {r}" for r, n in sorted(skipped.items())),
           f"# {shared} messages left out for being in two or more languages",
           "# language\ttrain\ttest (available: train, test)"]
        + [f"# {label}\t{n_train}\t{n_test} ({len(train[label])},"
           f" {len(test[label])})"
           for label, (n_train, n_test) in per_language.items()])
    print(f"setup-data: {len(train_rows)} training and {len(kept_test)} test"
          f" messages in {len(LANGUAGES)} languages in {out} ({len(chars)}"
          f" distinct characters; test messages left out for other characters:"
          f" {len(test_rows) - len(kept_test)})")


if __name__ == "__main__":
    main()
