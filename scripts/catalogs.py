"""Reading Debian's gettext catalogs for scripts/setup-data's datasets.

Shared by catalog-pairs.py (English->German sentence pairs) and
catalog-langid.py (language identification). Standard library only.

EXTRACTED directories hold a file `packages` (lines "PACKAGE VERSION") and,
for each package, PACKAGE/usr/share/locale/LANG/LC_MESSAGES/*.mo as extracted
from its .deb.

Each catalog entry (parsed by gettext.GNUTranslations) gives msgid -> msgstr,
msgid -> msgstr[0] for plural entries, with a msgctxt prefix removed. Both
sides are stripped of surrounding whitespace (so the trailing "\\n" of many
printf-style messages goes) and the entry is skipped when either side then is
empty, holds a control, format or other non-printing character (a newline or
tab inside the message among them), is longer than the caller's limit, or
when both sides are equal. Format specifiers (%s, %qD, ...) are kept.

Per-catalog fixes: GTK's gtk20 marks keyboard accelerators with "_" ("Save
_As" -> "Speichern _unter"); a lone "_" before a letter is removed there (no
other catalog uses such markers: "_" is mostly part of identifiers like
max_connections, and no catalog uses "&"). xkeyboard-config's messages are
XML-escaped ("&lt;"), and are unescaped. e2fsprogs writes e2fsck's problem
messages with "@x" abbreviations that e2fsck expands at run time ("@i %i is
an @I @b @v"); those entries are skipped.
"""

import gettext
import hashlib
import html
import os
import re
import sys
import unicodedata

# Unicode categories that make a message unusable: controls (newline, tab,
# ...), format characters (zero-width joiners, byte-order marks, bidi marks),
# line and paragraph separators, surrogates, private use, unassigned.
BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}

ACCELERATOR_DOMAINS = {"gtk20"}
XML_ESCAPED_DOMAINS = {"xkeyboard-config"}
E2FSCK_ABBREV_DOMAINS = {"e2fsprogs"}
E2FSCK_ABBREV = re.compile(r"@[A-Za-z]")

PROGRAM = os.path.basename(sys.argv[0]).removesuffix(".py")


def die(msg):
    sys.exit(f"{PROGRAM}: error: {msg}")


def printable(s):
    return all(unicodedata.category(c) not in BAD_CATEGORIES for c in s)


def drop_accelerator(s):
    """Removes a lone "_" that directly precedes a letter."""
    i = s.find("_")
    if i < 0 or s.count("_") != 1 or i + 1 >= len(s) or not s[i + 1].isalpha():
        return s
    return s[:i] + s[i + 1:]


def read_packages(extracted):
    """[(package, version)] of EXTRACTED/packages."""
    with open(os.path.join(extracted, "packages"), encoding="utf-8") as f:
        return [tuple(line.split()) for line in f if line.strip()]


def catalogs(extracted, package, lang):
    """The (domain, path) of PACKAGE's .mo files for LANG, sorted; [] if none."""
    locale_dir = os.path.join(extracted, package, "usr/share/locale", lang,
                              "LC_MESSAGES")
    if not os.path.isdir(locale_dir):
        return []
    found = []
    for name in sorted(os.listdir(locale_dir)):
        if not name.endswith(".mo"):
            continue
        path = os.path.join(locale_dir, name)
        # A link could point into the host's /usr/share/locale.
        if os.path.islink(path) or not os.path.isfile(path):
            die(f"{package}'s {lang}/{name} is not a plain file")
        found.append((name[:-len(".mo")], path))
    return found


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


def clean(domain, msgid, msgstr, max_len):
    """The cleaned (English, translation) of one entry, or None with a reason."""
    if msgid == "":
        return None, "header"
    if "\x04" in msgid:
        msgid = msgid.split("\x04", 1)[1]
    en, tr = msgid.strip(), msgstr.strip()
    if not en or not tr:
        return None, "empty"
    if not printable(en) or not printable(tr):
        return None, "control character"
    if domain in E2FSCK_ABBREV_DOMAINS and E2FSCK_ABBREV.search(en):
        return None, "e2fsck abbreviation"
    if domain in ACCELERATOR_DOMAINS:
        en, tr = drop_accelerator(en), drop_accelerator(tr)
    if domain in XML_ESCAPED_DOMAINS:
        en, tr = html.unescape(en), html.unescape(tr)
    if len(en) > max_len or len(tr) > max_len:
        return None, "too long"
    if en == tr:
        return None, "equal"
    return (en, tr), None


def english_hash(en):
    return hashlib.sha256(en.encode("utf-8")).digest()


def is_test(en, modulus):
    """Whether the messages of English sentence EN are held out: the first 8
    bytes of its SHA-256 as a big-endian number, modulo MODULUS, are 0."""
    return int.from_bytes(english_hash(en)[:8], "big") % modulus == 0
