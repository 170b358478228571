#!/usr/bin/env python3
"""Runs scdoc on a man page source and writes the roff, without the paragraph macros that scdoc
1.11 puts right after section headings, right before others and at the end of indented blocks
(moved after the block: the space between two items): roff ignores them, and mandoc -T lint
warns about each ("skipping paragraph macro"). Filled text lines longer than 80 bytes (scdoc keeps
the source's lines and adds escapes) are broken at spaces, which changes nothing in fill mode.

    scdoc-man.py SCDOC INPUT.scd OUTPUT"""

import subprocess
import sys

scdoc, source, output = sys.argv[1:]
with open(source, "rb") as f:
    roff = subprocess.run([scdoc], stdin=f, stdout=subprocess.PIPE, check=True).stdout.decode()

HEADS = (".TH ", ".SH ", ".SS ")
ENDS = (".SH ", ".SS ", ".P")
lines = roff.split("\n")
# A paragraph break right before the end of an indented block belongs after it (the space between
# two items of a list).
for i in range(len(lines) - 1):
    if lines[i] == ".P" and lines[i + 1] == ".RE":
        lines[i], lines[i + 1] = ".RE", ".P"
kept = []
for i, line in enumerate(lines):
    if line == ".P":
        before = kept[-1] if kept else ""
        after = next((x for x in lines[i + 1:] if x != ""), "")
        if before.startswith(HEADS) or before == ".P" or after.startswith(ENDS) or after in ("", ".RE"):
            continue
    kept.append(line)


def breakable(line, i):
    """Whether the text line may end before the space at i: the next line must not start like a
    request (. or '), and a line ending in an unescaped full stop would start a new sentence."""
    return (line[i + 1:i + 2] not in ("", " ", ".", "'") and line[i - 1:i] != " "
            and line[i - 1:i] not in (".", "!", "?"))


def wrap(line, limit=80):
    out = []
    while len(line.encode()) > limit:
        cut = [i for i, c in enumerate(line) if c == " " and breakable(line, i)]
        fits = [i for i in cut if len(line[:i].encode()) <= limit]
        i = fits[-1] if fits else (cut[0] if cut else None)
        if i is None:
            break
        out.append(line[:i])
        line = line[i + 1:]
    return out + [line]


wrapped, literal = [], False
for line in kept:
    if line.startswith((".nf", ".TS")):
        literal = True
    elif line.startswith((".fi", ".TE")):
        literal = False
    if literal or line.startswith((".", "'")):
        wrapped.append(line)
    else:
        wrapped += wrap(line)
with open(output, "w") as f:
    f.write("\n".join(wrapped))
