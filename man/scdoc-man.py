#!/usr/bin/env python3
"""Runs scdoc on a man page source and writes the roff, without the paragraph macros that scdoc
1.11 puts right after section headings, right before others and at the end of indented blocks
(moved after the block: the space between two items): roff ignores them, and mandoc -T lint
warns about each ("skipping paragraph macro").

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
with open(output, "w") as f:
    f.write("\n".join(kept))
