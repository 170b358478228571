# VM checks: netmakerd installed as a package would be (the staged `meson install`: the program,
# its real units and sysusers entry at their installed paths) under systemd as PID 1:
# netmakerd.socket holds the port, the first connection starts netmakerd.service, which reports
# readiness with sd_notify (Type=notify) and answers that very connection.
# Without a build, a stand-in (netmakerd-standin.py) runs under the units of the source tree and
# netmakerd_socket.binary reports skip.
# nmvm-units: dbus.service
# shellcheck shell=bash

NMD_PORT=8081 # netmakerd.socket's ListenStream= (the guest is a machine of its own)

# The unit from the template in the source tree (the stand-in's case: nothing is built).
_nmd_unit() { # NAME
        if [ -f "$NM_SRC_DIR/systemd/$1.in" ]; then
                sed -e 's|@sbindir@|/usr/local/sbin|g' -e 's|@docdir@|/usr/local/share/doc/netmaker|g' \
                        "$NM_SRC_DIR/systemd/$1.in"
        elif [ -f "$NM_SRC_DIR/systemd/$1" ]; then
                cat "$NM_SRC_DIR/systemd/$1"
        else
                return 1
        fi
}

_nmd_show() { systemctl show -p "$1" --value netmakerd.service; }

check_netmakerd_socket() {
        local bin state
        bin=$(nm_binary src/netmakerd/netmakerd)
        mkdir -p /etc/systemd/system/netmakerd.service.d
        if [ -n "$bin" ]; then
                expect .units "netmakerd.socket, netmakerd.service and the sysusers entry installed from the build" \
                        nm_install netmakerd.socket netmakerd.service netmakerd.sysusers || return 1
                # An ASan build cannot run LeakSanitizer (ptrace) inside this sandbox.
                printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' \
                        > /etc/systemd/system/netmakerd.service.d/50-nmvm.conf
                expect .sysusers "systemd-sysusers creates the netmaker user" bash -c "
                        systemd-sysusers netmakerd.conf && getent passwd netmaker" || return 1
        else
                echo "netmakerd is not built in $NM_BUILD_DIR: using the stand-in"
                expect .units "netmakerd.socket and netmakerd.service installed from the source tree" bash -c "
                        $(declare -f _nmd_unit)
                        _nmd_unit netmakerd.socket > /etc/systemd/system/netmakerd.socket &&
                        _nmd_unit netmakerd.service > /etc/systemd/system/netmakerd.service" || return 1
                printf '[Service]\nExecStart=\nExecStart=%s\n' \
                        "/usr/bin/python3 $NM_SRC_DIR/tests/vm/checks/systemd/netmakerd-standin.py" \
                        > /etc/systemd/system/netmakerd.service.d/50-nmvm.conf
                expect .sysusers "systemd-sysusers creates the netmaker user" bash -c "
                        systemd-sysusers '$NM_SRC_DIR/systemd/netmakerd.sysusers' && getent passwd netmaker" || return 1
        fi
        mkdir -p /etc/netmaker
        # No broker in this guest: an empty broker_url runs without one.
        printf '[netmakerd]\nbroker_url=\nlog_level=debug\n' > /etc/netmaker/netmakerd.conf
        chown root:netmaker /etc/netmaker/netmakerd.conf
        chmod 0640 /etc/netmaker/netmakerd.conf
        systemctl daemon-reload
        expect .socket "netmakerd.socket listens on port $NMD_PORT" bash -c "
                systemctl start netmakerd.socket && systemctl is-active -q netmakerd.socket" || return 1

        state=$(_nmd_show ActiveState)
        if [ "$state" = inactive ]; then
                report .inactive_before ok "netmakerd.service is inactive before the first connection"
        else
                report .inactive_before fail "netmakerd.service is $state before any connection (expected inactive)"
        fi

        # The first connection starts the service; the request waits in the socket's backlog and
        # is answered once netmakerd takes the socket.
        local body t0 t1
        t0=$(up)
        local scheme=https
        [ -n "$bin" ] || scheme=http # the stand-in speaks plain HTTP
        # -k: the certificate (and the key to pin) is made by this very start; pinned below.
        body=$(curl -sS -k -m 60 "$scheme://127.0.0.1:$NMD_PORT/api/v1/health" 2>&1)
        t1=$(up)
        echo "health answer after $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s: $body"
        if printf '%s' "$body" | /usr/bin/python3 -c 'import json,sys; sys.exit(json.load(sys.stdin).get("status") != "ok")' 2>/dev/null; then
                report .first_request ok "the connection that triggered the start got /api/v1/health: $body"
        else
                report .first_request fail "GET /api/v1/health through the activated socket: $body"
        fi

        local show pid user
        show=$(systemctl show -p Type,ActiveState,SubState,MainPID,Result,NRestarts,StatusText netmakerd.service)
        echo "$show"
        pid=$(_nmd_show MainPID)
        if [ "$(_nmd_show Type)" = notify ] && [ "$(_nmd_show ActiveState)" = active ] &&
           [ "$(_nmd_show SubState)" = running ] && [ "${pid:-0}" -gt 0 ]; then
                report .notify_ready ok "Type=notify service active/running with MainPID $pid (systemd saw READY=1)"
        else
                report .notify_ready fail "after the first request: $(echo "$show" | tr '\n' ' ')"
        fi
        user=$(ps -o user= -p "$pid" 2>/dev/null | tr -d ' ')
        if [ "$user" = netmaker ]; then
                report .user ok "MainPID $pid runs as user netmaker"
        else
                report .user fail "MainPID $pid runs as '${user:-?}', expected netmaker"
        fi
        journalctl -b -u netmakerd.socket -u netmakerd.service --no-pager -o short-monotonic | tail -n 20

        if [ -n "$bin" ]; then
                report .binary ok "ran $bin"
                local pin
                pin=$("$bin" --print-pin 2>&1)
                if [ "$(stat -c '%U %a' /var/lib/netmaker/tls/server.key 2>&1)" = "netmaker 600" ] &&
                   curl -sS -m 30 -k --pinnedpubkey "$pin" "https://127.0.0.1:$NMD_PORT/api/v1/health" >/dev/null; then
                        report .tls ok "HTTPS with the self-signed certificate made at the first start (key 0600, owner netmaker), pin $pin"
                else
                        report .tls fail "pin $pin: $(ls -l /var/lib/netmaker/tls 2>&1 | tr '\n' ' ')"
                fi
        else
                report .binary skip "netmakerd is not built in $NM_BUILD_DIR: the stand-in ran under the real units"
        fi
        systemctl stop netmakerd.service netmakerd.socket
}
