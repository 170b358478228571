#!/bin/bash
# Fetches Debian 12's stock kernel (the package linux-image-amd64 points at, which has WireGuard)
# into a cache directory without installing it: apt-get download + dpkg -x + depmod -b, plus the
# uncompressed ELF vmlinux that QEMU boots through PVH. The host's /boot and /lib/modules are never
# touched.
#
#   usage: fetch-kernel.sh [CACHE_DIR]          (default: tests/vm/.cache)
#   env:   NM_VM_KVER=6.1.0-NN-amd64            (default: what linux-image-amd64 depends on)
#
# Prints one line "KVER KROOT VMLINUX" on stdout (progress goes to stderr). A kernel already in the
# cache is reused: nothing is downloaded unless the version changes. Exit 2 when the kernel cannot
# be had (no such package, no network and nothing cached).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${1:-$HERE/.cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

cached_kver() {   # newest complete kernel in the cache
        local d best=
        for d in "$CACHE"/kernel-*/.complete; do
                [ -e "$d" ] || continue
                d=${d%/.complete}; d=${d##*/kernel-}
                best=$(printf '%s\n%s\n' "$best" "$d" | sed '/^$/d' | sort -V | tail -1)
        done
        echo "$best"
}

KVER=${NM_VM_KVER:-}
if [ -z "$KVER" ]; then
        # apt-cache reads the local package lists only (no network).
        KVER=$(apt-cache depends linux-image-amd64 2>/dev/null |
               sed -n 's/^ *Depends: linux-image-\(6\.[0-9.]*-[0-9]*-amd64\)$/\1/p' | sort -V | tail -1)
fi
if [ -z "$KVER" ]; then
        KVER=$(cached_kver)
        [ -n "$KVER" ] || { echo "fetch-kernel: apt-cache knows no linux-image-amd64 (run apt-get update) and nothing is cached in $CACHE" >&2; exit 2; }
fi
case "$KVER" in
        *[!A-Za-z0-9.+_-]*) echo "fetch-kernel: bad kernel version \"$KVER\" (expected like 6.1.0-56-amd64)" >&2; exit 2 ;;
esac

KROOT=$CACHE/kernel-$KVER
VMLINUX=$KROOT/vmlinux
if [ -e "$KROOT/.complete" ]; then
        echo "$KVER $KROOT $VMLINUX"
        exit 0
fi

# Several test processes may ask at once: one downloads, the others wait for it.
exec 9>"$CACHE/.fetch.lock"
flock 9
if [ -e "$KROOT/.complete" ]; then
        echo "$KVER $KROOT $VMLINUX"
        exit 0
fi

T0=$(date +%s.%N)
WORK=$(mktemp -d "$CACHE/.fetch.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# apt-get download drops privileges to _apt, which cannot write into a root-only cache dir.
if ! (cd "$WORK" && apt-get download -q -o APT::Sandbox::User=root "linux-image-$KVER" >&2); then
        echo "fetch-kernel: apt-get download linux-image-$KVER failed (network? package lists?)" >&2
        exit 2
fi
deb=$(ls "$WORK"/linux-image-"$KVER"_*.deb)
dpkg -x "$deb" "$WORK/root"
rm -f "$deb"
[ -d "$WORK/root/lib/modules/$KVER" ] || { echo "fetch-kernel: $deb has no lib/modules/$KVER" >&2; exit 2; }
depmod -b "$WORK/root" "$KVER"
/usr/bin/python3 "$HERE/extract-vmlinux.py" "$WORK/root/boot/vmlinuz-$KVER" "$WORK/root/vmlinux" >&2
touch "$WORK/root/.complete"
rm -rf "$KROOT"
mv "$WORK/root" "$KROOT"
echo "fetch-kernel: $KVER ready in $KROOT ($(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)" >&2
echo "$KVER $KROOT $VMLINUX"
