#!/bin/bash
# Runs inside the guest (installed as /usr/local/sbin/nmvm-run): loads the modules the test wants,
# runs the test script with bash, and leaves its output and exit status in /run/nmvm, a 9p share
# the host reads back. Started by /init in chroot mode and by nmvm.service in systemd mode.
#
# /etc/nmvm/env (written by the host for each boot) sets NMVM_SCRIPT, NMVM_MODE, NMVM_MODULES,
# NM_SRC_DIR, NM_BUILD_DIR and the caller's extra variables.
set -u
up() { cut -d' ' -f1 /proc/uptime; }
OUT=/run/nmvm
start=$(up)
set -a
# shellcheck disable=SC1091
. /etc/nmvm/env
set +a
export NMVM_OUT=$OUT NMVM_START_UPTIME=$start
echo "nmvm: runner start at ${start}s"
[ "$NMVM_MODE" = systemd ] && echo "nmvm: runner start at ${start}s" > /dev/console
echo "start=$start" > "$OUT/started"

if [ -n "${NMVM_MODULES:-}" ]; then
        # shellcheck disable=SC2086
        modprobe -a $NMVM_MODULES || echo "nmvm: modprobe -a $NMVM_MODULES failed"
fi

cd /
# Straight into a file, not through a pipe: a daemon the test leaves behind would hold a pipe open
# and the runner would wait for it. The host reads the file even when the guest hangs.
bash "$NMVM_SCRIPT" > "$OUT/output.log" 2>&1 < /dev/null
rc=$?
end=$(up)
cat "$OUT/output.log"

if [ "$NMVM_MODE" = systemd ] &&
   { [ "$rc" != 0 ] || grep -q '^CHECK [^ ]* fail' "$OUT/output.log" || [ "${NMVM_JOURNAL:-0}" = 1 ]; }; then
        # What the daemons said, for the failure report on the host.
        journalctl -b --no-pager -o short-monotonic > "$OUT/journal.log" 2>&1
        systemctl list-units --failed --no-pager --no-legend >> "$OUT/journal.log" 2>&1
fi
echo "rc=$rc start=$start end=$end" > "$OUT/result"
sync
echo "GUEST-RESULT rc=$rc at ${end}s"
[ "$NMVM_MODE" = systemd ] && echo "GUEST-RESULT rc=$rc at ${end}s" > /dev/console
exit "$rc"
