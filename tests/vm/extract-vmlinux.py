#!/usr/bin/python3
"""Writes the uncompressed ELF kernel found inside a Debian bzImage (XZ payload), so QEMU can boot
it through its PVH entry point and skip the in-guest decompression that costs seconds under TCG.

usage: extract-vmlinux.py /path/to/vmlinuz OUT"""
import lzma
import os
import sys

XZ_MAGIC = b"\xfd7zXZ\x00"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        data = f.read()
    pos = data.find(XZ_MAGIC)
    while pos != -1:
        try:
            elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[pos:])
        except lzma.LZMAError:
            elf = b""
        if elf[:4] == b"\x7fELF":
            tmp = out + ".tmp"
            with open(tmp, "wb") as f:
                f.write(elf)
            os.replace(tmp, out)
            print(f"{out}: {len(elf)} bytes (XZ payload at offset {pos} of {src})")
            return
        pos = data.find(XZ_MAGIC, pos + 1)
    sys.exit(f"extract-vmlinux: no XZ-compressed ELF kernel inside {src!r} (expected a Debian bzImage)")


if __name__ == "__main__":
    main()
