#!/bin/bash
# Runs QEMU's virtiofsd on a read-only view of the host's / (it has no read-only option of its own):
# in a private mount namespace, / is bound recursively under RUNDIR/ro and every mount there is
# remounted read-only, so not even a misbehaving guest can change a host file.
#
#   usage: virtiofsd-ro.sh RUNDIR SOCKET      (execs virtiofsd: the PID stays the caller's child)
set -euo pipefail
RUNDIR=${1:?usage: virtiofsd-ro.sh RUNDIR SOCKET}
SOCKET=${2:?usage: virtiofsd-ro.sh RUNDIR SOCKET}
mkdir -p "$RUNDIR/ro"
exec unshare --mount --propagation private -- /bin/bash -c '
        set -euo pipefail
        ro=$1 sock=$2
        mount --rbind / "$ro"
        findmnt -R -n -r -o TARGET "$ro" | while read -r m; do
                m=$(printf "%b" "$m") # findmnt -r escapes blanks as \x20
                mount -o remount,bind,ro "$m" 2>/dev/null || true
        done
        case ",$(findmnt -n -o OPTIONS "$ro")," in
        *,ro,*) ;;
        *) echo "virtiofsd-ro: cannot make the view of / read-only" >&2; exit 1 ;;
        esac
        # without announce_submounts: host submounts would turn into automount points and the
        # guest overlay on top fails with EREMOTE
        exec /usr/lib/qemu/virtiofsd --socket-path="$sock" -o source="$ro" -o cache=always -o sandbox=chroot
' virtiofsd-ro "$RUNDIR/ro" "$SOCKET"
