# VM checks: the D-Bus authorisation matrix of netclientd as installed (bus policy, activation
# file, polkit actions), with the real polkitd and systemd-logind deciding: every exported method ×
# root, an unprivileged user in an active local session, one in an inactive local session and one
# in none. The sessions are real logind sessions on seat0's virtual terminals, made as a login
# would make them (systemd-run -p PAMName=login -p TTYPath=/dev/ttyN: pam_systemd registers them);
# seat0's foreground terminal decides which is active (logind's Seat.SwitchTo, i.e. chvt). No
# polkit rule is added: the shipped policy answers. The expectations come from docs/dbus-api.md
# and the policy (tests/integration/nmtest/dbus_authz.py); each cell is a line
# dbus_authz.<column>.<interface.method>, and dbus_authz.<column>.caller says in which session the
# caller really ran, as logind reports it. netclientd runs from a saved registration with the
# network "office" and a peer on kernel WireGuard (the server need not exist), so that an allowed
# Leave, Disconnect or SetInternetGateway would have something to change: the callers all of whose
# calls that change something are to be refused (inactive, none) go first, and those calls must
# change nothing, neither on the bus (dbus_authz.<column>.unchanged) nor outside it
# (dbus_authz.outside: the state files, the device); then the active session's user (the shipped
# policy lets it connect, disconnect and choose the gateway), then root.
# nmvm-units: dbus.service polkit.service systemd-logind.service
# Two logins (each starts its user's manager) and four Python callers under TCG: about 80-100 s.
# nmvm-timeout: 300
# shellcheck shell=bash

AZ_DIR=/run/nmvm-authz
AZ_USERS="nmauthz-act nmauthz-ina nmauthz-none"
AZ_IF=nm-office # dbus_authz.py calls the methods with the network "office"

# The saved state: registered with a server that does not exist, the network "office" with a peer.
_az_state() {
        local host=42333333-2222-4333-8444-555555555555
        nm_saved_registration $host https://198.18.26.254:9 mqtts://198.18.26.254:9 "$(wg genkey)" || return 1
        (umask 077
        cat > /var/lib/netclient/state.json <<EOF
{"version":1,"disconnected":[],"state":{"host_id":"$host","serial":3,"networks":[{"network":"office",
 "node_id":"52333333-2222-4333-8444-555555555555","ipv4":"10.77.26.1/24","listen_port":51833,"keepalive":20,"mtu":1420,
 "dns_domain":"nm.internal","connected":true,
 "peers":[{"host_id":"62333333-2222-4333-8444-555555555555","name":"peer",
 "public_key":"$(wg genkey | wg pubkey)","endpoint":"198.18.26.2:51833","allowed_ips":["10.77.26.2/32"],"keepalive":20,"ipv4":"10.77.26.2"}]}]}}
EOF
        )
}

# What the bus does not show: the state files and the device (its peers without their counters).
_az_outside() {
        (cd /var/lib/netclient && sha256sum -- *)
        wg show $AZ_IF dump | cut -f1-4,8
        ip -br link show dev $AZ_IF
}

# _az_session USER VT COLUMN GO   a logind session of USER on /dev/ttyVT whose process is the
# caller; it calls once the file GO exists and writes what it got to $AZ_DIR/COLUMN.json.
_az_session() {
        systemd-run --quiet --collect --unit="nmvm-authz-$3" --uid="$1" -p PAMName=login -p TTYPath="/dev/tty$2" \
                -p StandardInput=tty -p StandardOutput="file:$AZ_DIR/$3.json" -p StandardError=journal \
                /usr/bin/python3 $AZ_DIR/dbus_authz.py call --wait "$4"
}

_az_session_of() { # USER: "ID ACTIVE" of USER's session
        local s
        s=$(loginctl list-sessions --no-legend | awk -v u="$1" '$3 == u { print $1; exit }')
        [ -n "$s" ] && echo "$s $(loginctl show-session "$s" -p Active --value)"
}

_az_both_sessions() {
        _az_session_of nmauthz-act | grep -q . && _az_session_of nmauthz-ina | grep -q .
}

_az_states_right() {
        [ "$(_az_session_of nmauthz-act | cut -d' ' -f2)" = yes ] && [ "$(_az_session_of nmauthz-ina | cut -d' ' -f2)" = no ]
}

_az_done() { # COLUMN...: their callers have finished
        local u
        for u; do
                ! systemctl is-active -q nmvm-authz-$u.service || return 1
        done
}

_az_cleanup() {
        systemctl stop nmvm-authz-active.service nmvm-authz-inactive.service nmvm-authz-none.service
        local u
        for u in $AZ_USERS; do
                loginctl terminate-user "$u"
                userdel -r "$u"
        done
        systemctl stop netclientd.service
        ip link del $AZ_IF
        rm -rf /var/lib/netclient $AZ_DIR
        nm_uninstall_netclientd
}

check_dbus_authz() {
        local bin u
        bin=$(nm_binary src/netclientd/netclientd)
        [ -n "$bin" ] || { report - skip "netclientd is not built in $NM_BUILD_DIR"; return 0; }
        [ -r /sys/class/tty/tty0/active ] || { report - skip "no virtual terminals: logind's seat0 has no VTs here"; return 0; }
        if systemctl is-active -q netclientd.service; then
                echo "netclientd.service was running (an earlier check): stopping it"
                systemctl stop netclientd.service
        fi
        defer _az_cleanup
        expect .installed "unit, bus policy, activation file and polkit actions installed" nm_install_netclientd || return 1
        _az_state || { report .state fail "could not write the saved state"; return 1; }
        systemctl start netclientd.service || { report .state fail "netclientd.service did not start"; return 1; }
        if ! wait_until 30 bash -c "wg show $AZ_IF peers | grep -q ."; then
                report .state fail "no $AZ_IF with its peer 30 s after netclientd started"
                journalctl -b -u netclientd.service --no-pager | tail -n 30
                return 1
        fi
        report .state ok "netclientd runs the saved network office: $AZ_IF with its peer"
        mkdir -p -m 0755 $AZ_DIR
        install -m 0644 "$NM_SRC_DIR/tests/integration/nmtest/dbus_authz.py" $AZ_DIR/dbus_authz.py || return 1
        for u in $AZ_USERS; do
                useradd -m -s /bin/bash "$u" || { report .users fail "useradd $u failed"; return 1; }
        done

        # The callers wait for their go file: two in sessions (the inactive one on tty3, the active
        # one on tty2), one without a session (a service of the user, without PAM).
        _az_session nmauthz-ina 3 inactive $AZ_DIR/go && _az_session nmauthz-act 2 active $AZ_DIR/go-active || {
                report .sessions fail "systemd-run of the session callers failed"
                return 1
        }
        systemd-run --quiet --collect --unit=nmvm-authz-none --uid=nmauthz-none \
                -p StandardOutput="file:$AZ_DIR/none.json" -p StandardError=journal \
                /usr/bin/python3 $AZ_DIR/dbus_authz.py call --wait $AZ_DIR/go || return 1
        if ! wait_until 30 _az_both_sessions; then
                report .sessions fail "logind made no sessions in 30 s: $(loginctl list-sessions --no-legend | tr '\n' ';')"
                journalctl -b -u systemd-logind -u nmvm-authz-active -u nmvm-authz-inactive --no-pager | tail -n 30
                return 1
        fi
        # tty2 to the foreground: its session is the active one of seat0, tty3's is not.
        busctl call org.freedesktop.login1 /org/freedesktop/login1/seat/seat0 org.freedesktop.login1.Seat \
                SwitchTo u 2 || { report .sessions fail "Seat.SwitchTo 2 failed"; return 1; }
        if ! wait_until 10 _az_states_right; then
                report .sessions fail "sessions not active/inactive as wanted: act: $(_az_session_of nmauthz-act), ina: $(_az_session_of nmauthz-ina), foreground $(cat /sys/class/tty/tty0/active)"
                return 1
        fi
        report .sessions ok "seat0: $(_az_session_of nmauthz-act | cut -d' ' -f1) of nmauthz-act on tty2 active, $(_az_session_of nmauthz-ina | cut -d' ' -f1) of nmauthz-ina on tty3 inactive (foreground $(cat /sys/class/tty/tty0/active))"

        # Go: the callers that may change nothing at once; then the active session's (some of its
        # calls are allowed), then root.
        _az_outside > $AZ_DIR/outside.before 2>&1
        touch $AZ_DIR/go
        if ! wait_until 150 _az_done inactive none; then
                report .calls fail "the inactive and none callers did not finish in 150 s"
                return 1
        fi
        _az_outside > $AZ_DIR/outside.after 2>&1
        if ! grep -q "$AZ_IF" $AZ_DIR/outside.before; then
                report .outside fail "no state to compare: $(tr '\n' ' ' < $AZ_DIR/outside.before)"
        elif cmp -s $AZ_DIR/outside.before $AZ_DIR/outside.after; then
                report .outside ok "the refused calls changed neither the state files nor $AZ_IF ($(wc -l < $AZ_DIR/outside.before) lines)"
        else
                report .outside fail "the refused calls changed: $(diff $AZ_DIR/outside.before $AZ_DIR/outside.after | grep '^[<>]' | tr '\n' ' ')"
        fi
        # (The inactive session has ended with its caller, its only process.)
        if [ "$(_az_session_of nmauthz-act | cut -d' ' -f2)" = yes ]; then
                report .still_active ok "the active session is still active when its caller goes: $(_az_session_of nmauthz-act)"
        else
                report .still_active fail "the active session is no longer active: $(_az_session_of nmauthz-act); foreground $(cat /sys/class/tty/tty0/active)"
        fi
        touch $AZ_DIR/go-active
        if ! wait_until 150 _az_done active; then
                report .calls fail "the active caller did not finish in 150 s"
                return 1
        fi
        timeout 120 /usr/bin/python3 $AZ_DIR/dbus_authz.py call > $AZ_DIR/root.json
        /usr/bin/python3 $AZ_DIR/dbus_authz.py check --repo "$NM_SRC_DIR" --prefix "$NMVM_CHECK" \
                root=$AZ_DIR/root.json active=$AZ_DIR/active.json inactive=$AZ_DIR/inactive.json none=$AZ_DIR/none.json
}
