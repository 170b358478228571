#!/bin/bash
# Builds the VM tier's initramfs: static busybox, the guest /init (guest-init.sh) and only the
# modules needed to reach the host's root filesystem (virtio-mmio, virtio-rng, virtiofs, 9p,
# overlay) and a persistent disk for tests that reboot (virtio-blk, ext4). Everything else (wireguard, tun, veth...) is loaded later from the full module tree,
# which the guest sees under /lib/modules through the host share.
#
#   usage: build-initramfs.sh KROOT KVER [OUT_DIR]      (OUT_DIR default: KROOT's parent)
#
# Prints the path of the cpio archive. Its name carries a hash of every input, so an archive is
# rebuilt only when guest-init.sh, this script, busybox or the kernel changes.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KROOT=${1:?usage: build-initramfs.sh KROOT KVER [OUT_DIR]}
KVER=${2:?usage: build-initramfs.sh KROOT KVER [OUT_DIR]}
OUT_DIR=${3:-$(dirname "$KROOT")}
BUSYBOX=${BUSYBOX:-/bin/busybox}
MODS="virtio_mmio virtio_rng virtiofs 9pnet_virtio 9p overlay virtio_blk ext4"

[ -d "$KROOT/lib/modules/$KVER" ] || { echo "build-initramfs: no modules in $KROOT/lib/modules/$KVER (run fetch-kernel.sh)" >&2; exit 2; }
# Debian's busybox (dynamic) would need its libraries inside the initramfs: want busybox-static.
case "$(LC_ALL=C ldd "$BUSYBOX" 2>&1 || true)" in
*"not a dynamic executable"*) ;;
*) echo "build-initramfs: $BUSYBOX is not statically linked (apt-get install busybox-static)" >&2; exit 2 ;;
esac

hash=$( { echo "$KVER $MODS"; cat "$HERE/guest-init.sh" "$0" "$BUSYBOX"; } | sha256sum | cut -c1-16)
OUT=$OUT_DIR/initramfs-$KVER-$hash.cpio
if [ -s "$OUT" ]; then
        echo "$OUT"
        exit 0
fi

ROOT=$(mktemp -d "$OUT_DIR/.initramfs.XXXXXX")
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,sbin,etc,proc,sys,dev,run,tmp,lower,rw,newroot}
cp "$BUSYBOX" "$ROOT/bin/busybox"
for a in $("$BUSYBOX" --list); do
        [ -e "$ROOT/bin/$a" ] || ln -s busybox "$ROOT/bin/$a"
done
ln -s ../bin/busybox "$ROOT/sbin/switch_root"

# kmod gives the load order (dependencies first); /init insmods in that order.
: > "$ROOT/etc/modules.order"
for m in $MODS; do
        modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" { print $2 }' |
        while read -r ko; do
                name=/lib/modules/$(basename "$ko")
                grep -qxF "$name" "$ROOT/etc/modules.order" && continue
                mkdir -p "$ROOT/lib/modules"
                cp "$ko" "$ROOT$name"
                echo "$name" >> "$ROOT/etc/modules.order"
        done
done
install -m 0755 "$HERE/guest-init.sh" "$ROOT/init"

tmp=$(mktemp "$OUT_DIR/.initramfs-cpio.XXXXXX")
(cd "$ROOT" && find . -print0 | cpio --null -o -H newc --quiet) > "$tmp"
mv "$tmp" "$OUT"
# Older archives of the same kernel are dead weight once their inputs changed.
find "$OUT_DIR" -maxdepth 1 -name "initramfs-$KVER-*.cpio" ! -path "$OUT" -mmin +60 -delete 2>/dev/null || true
echo "$OUT"
