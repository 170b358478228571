# VM checks: netmakerd installed from the build tree with its real units (systemd/) under systemd
# as PID 1: netmakerd.socket holds the port, the first connection starts netmakerd.service, which
# reports readiness with sd_notify (Type=notify) and answers that very connection.
# Until netmakerd is built, a stand-in (netmakerd-standin.py) runs under the same units and
# netmakerd_socket.binary reports skip.
# nmvm-units: dbus.service
# shellcheck shell=bash

NMD_PORT=8081 # netmakerd.socket's ListenStream= (the guest is a machine of its own)

# The unit as meson configured it in the build tree, else the template from the source tree.
_nmd_unit() { # NAME
        if [ -f "$NM_BUILD_DIR/systemd/$1" ]; then
                cat "$NM_BUILD_DIR/systemd/$1"
        elif [ -f "$NM_SRC_DIR/systemd/$1.in" ]; then
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
        local bin exec_start state
        bin=$(nm_binary src/netmakerd/netmakerd)
        if [ -n "$bin" ]; then
                exec_start=$bin
        else
                exec_start="/usr/bin/python3 $NM_SRC_DIR/tests/vm/checks/systemd/netmakerd-standin.py"
                echo "netmakerd is not built in $NM_BUILD_DIR: using the stand-in"
        fi

        # Install as a package would, but run the binary straight from the build tree.
        expect .units "netmakerd.socket and netmakerd.service installed from the tree" bash -c "
                $(declare -f _nmd_unit)
                _nmd_unit netmakerd.socket > /etc/systemd/system/netmakerd.socket &&
                _nmd_unit netmakerd.service > /etc/systemd/system/netmakerd.service" || return 1
        mkdir -p /etc/systemd/system/netmakerd.service.d
        cat > /etc/systemd/system/netmakerd.service.d/50-nmvm.conf <<EOF
[Service]
ExecStart=
ExecStart=$exec_start
# An ASan build cannot run LeakSanitizer (ptrace) inside this sandbox.
Environment=ASAN_OPTIONS=detect_leaks=0
EOF
        expect .sysusers "systemd-sysusers creates the netmaker user" bash -c "
                systemd-sysusers '$NM_SRC_DIR/systemd/netmakerd.sysusers' && getent passwd netmaker" || return 1
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
        body=$(curl -sS -m 60 "http://127.0.0.1:$NMD_PORT/api/v1/health" 2>&1)
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
        else
                report .binary skip "netmakerd is not built in $NM_BUILD_DIR: the stand-in ran under the real units"
        fi
        systemctl stop netmakerd.service netmakerd.socket
}
