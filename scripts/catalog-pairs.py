#!/usr/bin/python3
"""English->German sentence pairs from gettext catalogs (scripts/setup-data).

Usage: catalog-pairs.py EXTRACTED OUT

EXTRACTED holds a file `packages` (lines "PACKAGE VERSION") and, for each
package, PACKAGE/usr/share/locale/de/LC_MESSAGES/*.mo as extracted from its
.deb. Writes OUT/train.tsv, OUT/test.tsv (English<TAB>German, one pair a
line, UTF-8) and OUT/SOURCES, each atomically, and prints one summary line.
Standard library only; the output depends on nothing but the catalogs.

Entries are read and cleaned as catalogs.py describes, with messages of at
most MAX_LEN code points on either side.

When catalogs translate one English sentence differently, the German given by
the most entries wins, ties going to the first in sorted order. Pairs are split
by the SHA-256 of the English (its first 8 bytes as a big-endian number,
modulo 20: 0 is test, about 5%), and each file is sorted by that hash. Test
pairs using a character that no training pair uses (on either side) are left
out.
"""

import collections
import os
import sys

from catalogs import (catalogs, clean, die, english_hash, entries, is_test,
                      read_packages)
from datafiles import write_lines_atomically

MAX_LEN = 120
TEST_MODULUS = 20


def main():
    if len(sys.argv) != 3:
        die("usage: catalog-pairs.py EXTRACTED OUT")
    extracted, out = sys.argv[1], sys.argv[2]
    packages = read_packages(extracted)

    german = collections.defaultdict(collections.Counter)  # en -> de -> count
    sources = []
    skipped = collections.Counter()
    for package, version in packages:
        found = catalogs(extracted, package, "de")
        if not found:
            die(f"{package} has no German catalog")
        names = [domain for domain, _ in found]
        total = taken = 0
        for domain, path in found:
            for msgid, msgstr in entries(path):
                if msgid == "":
                    continue
                total += 1
                p, reason = clean(domain, msgid, msgstr, MAX_LEN)
                if p is None:
                    skipped[reason] += 1
                    continue
                taken += 1
                german[p[0]][p[1]] += 1
        sources.append(f"{package}\t{version}\t{total}\t{taken}\t"
                       + ",".join(names))

    pairs = []
    for en, counts in german.items():
        de = min(counts, key=lambda d: (-counts[d], d))
        pairs.append((english_hash(en), en, de))
    pairs.sort()

    train, test = [], []
    for _, en, de in pairs:
        (test if is_test(en, TEST_MODULUS) else train).append((en, de))
    chars = set()
    for en, de in train:
        chars.update(en)
        chars.update(de)
    kept_test = [(en, de) for en, de in test if chars.issuperset(en + de)]
    if len(train) < 10000 or len(kept_test) < 500:
        die(f"too few pairs ({len(train)} train, {len(kept_test)} test)")

    os.makedirs(out, exist_ok=True)
    write_lines_atomically(os.path.join(out, "train.tsv"),
                     (f"{en}\t{de}" for en, de in train))
    write_lines_atomically(os.path.join(out, "test.tsv"),
                     (f"{en}\t{de}" for en, de in kept_test))
    write_lines_atomically(
        os.path.join(out, "SOURCES"),
        ["# package\tversion\tmessages\ttaken\tcatalogs (German, from the .deb)"]
        + sources
        + [f"# {sum(skipped.values())} messages skipped: "
           + ", ".join(f"{n} {r}" for r, n in sorted(skipped.items())),
           f"# {len(german)} distinct English sentences: {len(train)} train,"
           f" {len(test)} test of which {len(test) - len(kept_test)} left out"
           " for characters not in train"])
    print(f"setup-data: {len(train)} training and {len(kept_test)} test"
          f" English->German pairs in {out} ({len(chars)} distinct characters;"
          f" test pairs left out for other characters: {len(test) - len(kept_test)})")


if __name__ == "__main__":
    main()
