"""Writing the files of scripts/setup-data's datasets (standard library only).

Each file is written to PATH.tmp and renamed onto PATH, so an interrupted run
never leaves a half-written dataset behind that a STAMP would vouch for.
"""

import os


def write_text_atomically(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(tmp, path)


def write_lines_atomically(path, lines):
    """LINES, each followed by a newline."""
    write_text_atomically(path, "".join(line + "\n" for line in lines))
