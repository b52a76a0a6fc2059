#!/usr/bin/python3
"""English->German sentence pairs from gettext catalogs (scripts/setup-data).

Usage: catalog-pairs.py EXTRACTED OUT

EXTRACTED holds a file `packages` (lines "PACKAGE VERSION") and, for each
package, PACKAGE/usr/share/locale/de/LC_MESSAGES/*.mo as extracted from its
.deb. Writes OUT/train.tsv, OUT/test.tsv (English<TAB>German, one pair a
line, UTF-8) and OUT/SOURCES, each atomically, and prints one summary line.
Standard library only; the output depends on nothing but the catalogs.

Each catalog entry (parsed by gettext.GNUTranslations) gives msgid -> msgstr,
msgid -> msgstr[0] for plural entries, with a msgctxt prefix removed. Both
sides are stripped of surrounding whitespace (so the trailing "\\n" of many
printf-style messages goes) and the entry is skipped when either side then is
empty, holds a control, format or other non-printing character (a newline or
tab inside the message among them), is longer than MAX_LEN code points, or
when both sides are equal. Format specifiers (%s, %qD, ...) are kept.

Per-catalog fixes: GTK's gtk20 marks keyboard accelerators with "_" ("Save
_As" -> "Speichern _unter"); a lone "_" before a letter is removed there (no
other catalog uses such markers: "_" is mostly part of identifiers like
max_connections, and no catalog uses "&"). xkeyboard-config's messages are
XML-escaped ("&lt;"), and are unescaped. e2fsprogs writes e2fsck's problem
messages with "@x" abbreviations that e2fsck expands at run time ("@i %i is
an @I @b @v"); those entries are skipped.

When catalogs translate one English sentence differently, the German given by
the most entries wins, ties going to the first in sorted order. Pairs are split
by the SHA-256 of the English (its first 8 bytes as a big-endian number,
modulo 20: 0 is test, about 5%), and each file is sorted by that hash. Test
pairs using a character that no training pair uses (on either side) are left
out.
"""

import collections
import gettext
import hashlib
import html
import os
import re
import sys
import unicodedata

MAX_LEN = 120
TEST_MODULUS = 20
LOCALE_DIR = "usr/share/locale/de/LC_MESSAGES"

# Unicode categories that make a message unusable: controls (newline, tab,
# ...), format characters (zero-width joiners, byte-order marks, bidi marks),
# line and paragraph separators, surrogates, private use, unassigned.
BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

ACCELERATOR_DOMAINS = {"gtk20"}
XML_ESCAPED_DOMAINS = {"xkeyboard-config"}
E2FSCK_ABBREV_DOMAINS = {"e2fsprogs"}
E2FSCK_ABBREV = re.compile(r"@[A-Za-z]")


def die(msg):
    sys.exit("catalog-pairs: error: " + msg)


def printable(s):
    return all(unicodedata.category(c) not in BAD_CATEGORIES for c in s)


def drop_accelerator(s):
    """Removes a lone "_" that directly precedes a letter."""
    i = s.find("_")
    if i < 0 or s.count("_") != 1 or i + 1 >= len(s) or not s[i + 1].isalpha():
        return s
    return s[:i] + s[i + 1:]


def entries(path):
    """(msgid, msgstr) of every entry of the .mo file PATH, plurals' singular."""
    with open(path, "rb") as f:
        try:
            catalog = gettext.GNUTranslations(f)._catalog
        except (OSError, UnicodeDecodeError, ValueError) as e:
            die(f"cannot parse {path}: {e}")
    for key in sorted(catalog, key=lambda k: k if isinstance(k, tuple) else (k, 0)):
        if isinstance(key, tuple):
            msgid, index = key
            if index != 0:
                continue
        else:
            msgid = key
        yield msgid, catalog[key]


def pair(domain, msgid, msgstr):
    """The cleaned (English, German) of one entry, or None with a reason."""
    if msgid == "":
        return None, "header"
    if "\x04" in msgid:
        msgid = msgid.split("\x04", 1)[1]
    en, de = msgid.strip(), msgstr.strip()
    if not en or not de:
        return None, "empty"
    if not printable(en) or not printable(de):
        return None, "control character"
    if domain in E2FSCK_ABBREV_DOMAINS and E2FSCK_ABBREV.search(en):
        return None, "e2fsck abbreviation"
    if domain in ACCELERATOR_DOMAINS:
        en, de = drop_accelerator(en), drop_accelerator(de)
    if domain in XML_ESCAPED_DOMAINS:
        en, de = html.unescape(en), html.unescape(de)
    if len(en) > MAX_LEN or len(de) > MAX_LEN:
        return None, "too long"
    if en == de:
        return None, "equal"
    return (en, de), None


def english_hash(en):
    return hashlib.sha256(en.encode("utf-8")).digest()


def write_atomically(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")
    os.replace(tmp, path)


def main():
    if len(sys.argv) != 3:
        die("usage: catalog-pairs.py EXTRACTED OUT")
    extracted, out = sys.argv[1], sys.argv[2]
    with open(os.path.join(extracted, "packages"), encoding="utf-8") as f:
        packages = [line.split() for line in f if line.strip()]

    german = collections.defaultdict(collections.Counter)  # en -> de -> count
    sources = []
    skipped = collections.Counter()
    for package, version in packages:
        locale_dir = os.path.join(extracted, package, LOCALE_DIR)
        if not os.path.isdir(locale_dir):
            die(f"{package} has no {LOCALE_DIR}")
        names = sorted(n for n in os.listdir(locale_dir) if n.endswith(".mo"))
        if not names:
            die(f"{package} has no German catalog")
        total = taken = 0
        for name in names:
            path = os.path.join(locale_dir, name)
            # A link could point into the host's /usr/share/locale.
            if os.path.islink(path) or not os.path.isfile(path):
                die(f"{package}'s {name} is not a plain file")
            domain = name[:-len(".mo")]
            for msgid, msgstr in entries(path):
                if msgid == "":
                    continue
                total += 1
                p, reason = pair(domain, msgid, msgstr)
                if p is None:
                    skipped[reason] += 1
                    continue
                taken += 1
                german[p[0]][p[1]] += 1
        sources.append(f"{package}\t{version}\t{total}\t{taken}\t"
                       + ",".join(n[:-len(".mo")] for n in names))

    pairs = []
    for en, counts in german.items():
        de = min(counts, key=lambda d: (-counts[d], d))
        pairs.append((english_hash(en), en, de))
    pairs.sort()

    train, test = [], []
    for h, en, de in pairs:
        modulus = int.from_bytes(h[:8], "big") % TEST_MODULUS
        (test if modulus == 0 else train).append((en, de))
    chars = set()
    for en, de in train:
        chars.update(en)
        chars.update(de)
    kept_test = [(en, de) for en, de in test if chars.issuperset(en + de)]
    if len(train) < 10000 or len(kept_test) < 500:
        die(f"too few pairs ({len(train)} train, {len(kept_test)} test)")

    os.makedirs(out, exist_ok=True)
    write_atomically(os.path.join(out, "train.tsv"),
                     (f"{en}\t{de}" for en, de in train))
    write_atomically(os.path.join(out, "test.tsv"),
                     (f"{en}\t{de}" for en, de in kept_test))
    write_atomically(
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
