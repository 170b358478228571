# VM checks: the systemd guest itself: systemd is PID 1 of this boot, the units the check files
# asked for (their "# nmvm-units:" lines) and udevd are active, and modules load from the fetched
# kernel.
# shellcheck shell=bash

check_boot() {
        expect .pid1 "systemd is PID 1" bash -c '[ "$(cat /proc/1/comm)" = systemd ]'
        local u bad=
        for u in $NMVM_UNITS; do
                systemctl is-active -q "$u" || bad="$bad $u($(systemctl is-active "$u"))"
        done
        if [ -z "$bad" ]; then
                report .units ok "active: $NMVM_UNITS"
        else
                report .units fail "not active:$bad"
        fi
        # networkd treats a writable /sys as "udev is here" and waits for it on every link
        expect .udev "systemd-udevd is active (networkd needs it; apt-get install udev)" \
                systemctl is-active -q systemd-udevd.service
        expect .modules "wireguard loaded from /lib/modules/$(uname -r)" bash -c \
                'modprobe wireguard && [ -d /sys/module/wireguard ] && [ -f "/lib/modules/$(uname -r)/modules.dep" ]'
}
