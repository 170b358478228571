#!/bin/sh
# /init of the VM tier's guest (busybox sh): puts a tmpfs overlay on the host's root filesystem
# (shared read-only by QEMU) and then either chroots into it and runs the test runner with bash
# (nmvm.mode=chroot) or boots the host's own systemd from it as PID 1 (nmvm.mode=systemd).
#
# Kernel command line (set by tests/integration/nmtest/vm.py):
#   nmvm.mode=chroot|systemd
#   nmvm.root=virtiofs|9p        how the host's / arrives (QEMU share tag "hostroot")
#   nmvm.modules=PATH            host path of the fetched kernel's lib/modules/KVER: bound on the
#                                guest's /lib/modules/KVER, so modprobe works although the host
#                                never installed that kernel
#   nmvm.fixtures=DIR[,DIR...]   host directories copied over the overlay's / in this order
#   nmvm.persist=1               the overlay's writable layer is the ext4 disk /dev/vda instead of a
#                                tmpfs, so what one boot writes is there at the next (reboot tests)
# Results go to the writable 9p share "nmvmout", mounted on /run/nmvm (the runner writes there).
# Any failure here prints "GUEST-RESULT rc=125 ..." and powers off, so the host never waits for
# a timeout because of a broken boot.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
up() { cut -d' ' -f1 /proc/uptime; }
die() {
        echo "GUEST-RESULT rc=125 at $(up)s: init: $*"
        for d in /run/nmvm /newroot/run/nmvm; do
                mountpoint -q $d 2>/dev/null && echo "rc=125" > $d/result
        done
        sync
        poweroff -f
        sleep 60
}

MODE=chroot ROOTFS=virtiofs MODPATH='' FIXTURES='' PERSIST=0
for kv in $(cat /proc/cmdline); do
        case "$kv" in
        nmvm.mode=*) MODE=${kv#nmvm.mode=} ;;
        nmvm.root=*) ROOTFS=${kv#nmvm.root=} ;;
        nmvm.modules=*) MODPATH=${kv#nmvm.modules=} ;;
        nmvm.fixtures=*) FIXTURES=${kv#nmvm.fixtures=} ;;
        nmvm.persist=*) PERSIST=${kv#nmvm.persist=} ;;
        esac
done
echo "nmvm: init at $(up)s (mode $MODE, root over $ROOTFS)"

while read -r ko; do
        insmod "$ko" || die "insmod $ko failed"
done < /etc/modules.order

case "$ROOTFS" in
9p) mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower ||
        die "cannot mount the host's / over 9p" ;;
virtiofs) mount -t virtiofs -o ro hostroot /lower || die "cannot mount the host's / over virtiofs" ;;
*) die "unknown nmvm.root=$ROOTFS (expected virtiofs or 9p)" ;;
esac
if [ "$PERSIST" = 1 ]; then
        for _ in $(seq 50); do [ -b /dev/vda ] && break; sleep 0.1; done
        mount -t ext4 /dev/vda /rw || die "cannot mount the persistent disk /dev/vda"
        echo "nmvm: the writable layer is the persistent disk (boot $(( $(cat /rw/boots 2>/dev/null || echo 0) + 1 )))"
        echo $(( $(cat /rw/boots 2>/dev/null || echo 0) + 1 )) > /rw/boots
else
        mount -t tmpfs -o mode=0755 tmpfs /rw
fi
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot ||
        die "cannot mount the overlay on the host's /"

# The host's / carries /.dockerenv: systemd would then think it runs in a container, ignore the
# kernel command line (systemd.unit=) and skip ConditionVirtualization=!container units.
rm -f /newroot/.dockerenv /newroot/run/.containerenv

KVER=$(uname -r)
if [ -n "$MODPATH" ]; then
        [ -f "/newroot$MODPATH/modules.dep" ] || die "no modules.dep in $MODPATH (host path)"
        mkdir -p "/newroot/lib/modules/$KVER"
        mount --bind "/newroot$MODPATH" "/newroot/lib/modules/$KVER" || die "cannot bind $MODPATH"
fi

for d in $(echo "$FIXTURES" | tr ',' ' '); do
        [ -d "/newroot$d" ] || die "fixture directory $d not found on the host"
        cp -af "/newroot$d/." /newroot/ || die "cannot copy fixtures from $d" # -f: over a persistent layer
done

if [ "$MODE" = chroot ]; then
        for m in dev proc sys run; do mount --bind /$m /newroot/$m; done
        mkdir -p /newroot/dev/pts /newroot/dev/shm
        mount -t devpts -o newinstance,ptmxmode=0666 devpts /newroot/dev/pts
        mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm
        mkdir -p /newroot/run/nmvm
        mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 nmvmout /newroot/run/nmvm ||
                die "cannot mount the result share"
        # Module autoloading (ip link add ... type wireguard) runs the kernel's modprobe helper in
        # this initramfs, whose /lib/modules is nearly empty: send it into the overlay root.
        printf '#!/bin/sh\nexec chroot /newroot /sbin/modprobe "$@"\n' > /sbin/nmvm-modprobe
        chmod 0755 /sbin/nmvm-modprobe
        echo /sbin/nmvm-modprobe > /proc/sys/kernel/modprobe
        hostname nmvm
        echo "nmvm: overlay root ready at $(up)s, running the test in a chroot"
        chroot /newroot /bin/bash /usr/local/sbin/nmvm-run
        echo "nmvm: runner exited with $? at $(up)s"
        sync
        poweroff -f
        sleep 60
fi

[ "$MODE" = systemd ] || die "unknown nmvm.mode=$MODE (expected chroot or systemd)"
[ -x /newroot/lib/systemd/systemd ] || die "the host has no /lib/systemd/systemd"
mkdir -p /run/nmvm
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 nmvmout /run/nmvm ||
        die "cannot mount the result share"
echo "nmvm: overlay root ready at $(up)s, starting systemd"
for m in dev proc sys run; do mount --move /$m /newroot/$m; done
exec switch_root /newroot /lib/systemd/systemd
