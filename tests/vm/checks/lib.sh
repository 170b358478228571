# Helpers for VM checks (sourced by run-checks.sh before each check file; bash, inside the guest).
#
# A check is a bash function check_<name> in tests/vm/checks/<mode>/*.sh. It reports with lines
#   CHECK <name>[.<sub>] ok|fail|skip <detail>
# through `report` or `expect` below; a function that prints none gets one from its exit status.
# $NMVM_CHECK is the running check's name. $NM_BUILD_DIR and $NM_SRC_DIR are the host's build and
# source trees (read-only; writes land in the guest's throwaway overlay).
# shellcheck shell=bash

export WG_COLOR_MODE=never SYSTEMD_COLORS=0 SYSTEMD_PAGER='' PAGER=cat SYSTEMD_LOG_COLOR=0

up() { cut -d' ' -f1 /proc/uptime; }

# The check's own name for "-", "<check>.<sub>" for ".sub"; anything else as given.
_check_name() {
        case "$1" in
        - | "") echo "$NMVM_CHECK" ;;
        .*) echo "$NMVM_CHECK$1" ;;
        *) echo "$1" ;;
        esac
}

# report SUB ok|fail|skip DETAIL...   (SUB: "-" for the check itself, ".x" for <check>.x)
report() {
        local name status=$2 detail
        name=$(_check_name "$1")
        shift 2
        detail=$(printf '%s' "$*" | tr '\n\t' '  ' | cut -c1-400)
        echo "CHECK $name $status $detail"
}

# expect SUB DESCRIPTION CMD...  runs CMD; reports ok with DESCRIPTION, or fail with DESCRIPTION,
# the exit status and the last line CMD printed (all of its output goes to the log). Returns CMD's
# status, so `expect ... || return 1` stops a check at its first broken step.
expect() {
        local sub=$1 what=$2 out rc
        shift 2
        out=$("$@" 2>&1)
        rc=$?
        if [ $rc = 0 ]; then
                report "$sub" ok "$what"
        else
                printf '%s\n' "$out" | sed 's/^/    | /'
                report "$sub" fail "$what: \`$*\` exited with $rc: $(printf '%s' "$out" | tail -n1)"
        fi
        return $rc
}

# wait_until SECONDS CMD...   polls CMD every 0.1 s; 0 as soon as it succeeds, 1 at the deadline.
wait_until() {
        local end
        end=$(awk -v u="$(up)" -v s="$1" 'BEGIN { printf "%.2f", u + s }')
        shift
        while :; do
                "$@" >/dev/null 2>&1 && return 0
                awk -v u="$(up)" -v e="$end" 'BEGIN { exit !(u >= e) }' && return 1
                sleep 0.1
        done
}

# defer CMD...   runs CMD (a string for eval) when the check ends, last registered first.
_nmvm_deferred=()
defer() { _nmvm_deferred=("$*" "${_nmvm_deferred[@]}"); }
_nmvm_run_deferred() {
        local c
        for c in "${_nmvm_deferred[@]}"; do eval "$c" >/dev/null 2>&1; done
}
trap _nmvm_run_deferred EXIT
# A check killed for taking too long (run-checks.sh's timeout) still cleans up.
trap 'exit 143' TERM

# nm_binary RELPATH   prints $NM_BUILD_DIR/RELPATH when it is an executable, nothing otherwise.
nm_binary() {
        [ -x "$NM_BUILD_DIR/$1" ] && echo "$NM_BUILD_DIR/$1"
}

# nm_install_netclientd   installs netclientd as a package would, from the build: the unit (its
# ExecStart= the build's binary, kernel WireGuard only, debug log), the bus policy and activation
# file, the polkit actions; then reloads systemd and the bus.
nm_install_netclientd() {
        local B=$NM_BUILD_DIR S=$NM_SRC_DIR d=/etc/systemd/system/netclientd.service.d
        sed "s|^ExecStart=.*|ExecStart=$B/src/netclientd/netclientd|" "$B/systemd/netclientd.service" \
                > /etc/systemd/system/netclientd.service || return 1
        mkdir -p $d
        # kernel: never fall back to wireguard-go here
        printf '[Service]\nEnvironment=NETCLIENTD_WG_BACKEND=kernel NETCLIENTD_LOG_LEVEL=debug ASAN_OPTIONS=detect_leaks=0\n' \
                > $d/50-nmvm.conf
        # A build tree under /tmp would be hidden by PrivateTmp= (an installed binary never is).
        case "$B" in /tmp/* | /var/tmp/*) printf 'PrivateTmp=no\n' >> $d/50-nmvm.conf ;; esac
        install -m 0644 "$S/dbus/org.netmaker.Client.conf" /usr/share/dbus-1/system.d/ &&
                install -m 0644 "$S/dbus/org.netmaker.Client.service" /usr/share/dbus-1/system-services/ &&
                install -m 0644 "$S/polkit/org.netmaker.client.policy" /usr/share/polkit-1/actions/ || return 1
        systemctl daemon-reload &&
                busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
}

# nm_saved_registration HOST_ID API_URL MQTT_URL WG_PRIVATE_KEY   a fresh /var/lib/netclient (0700)
# with the identity and the server registration netclientd saves at a join (secrets 0600); the
# caller adds state.json. The server need not exist: netclientd works from its saved state.
nm_saved_registration() {
        local host=$1
        rm -rf /var/lib/netclient
        mkdir -p -m 0700 /var/lib/netclient
        (umask 077
        cat > /var/lib/netclient/identity.json <<EOF
{"wg_private_key":"$4","msg_private_key":"$(wg genkey)"}
EOF
        cat > /var/lib/netclient/server.json <<EOF
{"api":"$2","server_msg_key":"$(wg genkey | wg pubkey)","host_id":"$host","credential":"nmh.x.y",
 "mqtt":{"url":"$3","username":"host-$host","password":"p","subscribe":"nm/t/host/$host/msg","publish":"nm/t/host/$host/report"}}
EOF
        )
}
