# Helpers for VM checks (sourced by run-checks.sh before each check file; bash, inside the guest).
#
# A check is a bash function check_<name> in tests/vm/checks/<mode>/*.sh. It reports with lines
#   CHECK <name>[.<sub>] ok|fail|skip <detail>
# through `report` or `expect` below; a function that prints none gets one from its exit status.
# $NMVM_CHECK is the running check's name. $NM_BUILD_DIR and $NM_SRC_DIR are the host's build and
# source trees (read-only; writes land in the guest's throwaway overlay): run installed programs
# (nm_binary, nm_install below) wherever a unit or another user runs them.
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

# The build installed as a package would be: the host stages it (`meson install --destdir`, see
# tests/integration/nmtest/stage.py) into $NM_STAGE, a world-readable directory, and lists in
# /etc/nmvm/installed where each file goes ("NAME PATH", NAME the built or shipped file's name).
# Checks copy what they need into the guest's own filesystem at those paths, so units run the
# installed programs (ProtectHome=/PrivateTmp= never hide them, wherever the checkout lives).

# nm_installed_path NAME   prints where NAME is installed (/usr/local/libexec/netclientd); 1 if not.
nm_installed_path() {
        [ -r /etc/nmvm/installed ] && [ -n "${NM_STAGE:-}" ] || return 1
        awk -v n="$1" '$1 == n { print $2; found = 1 } END { exit !found }' /etc/nmvm/installed
}

# nm_install NAME...   copies each NAME from the staged build to its installed path.
nm_install() {
        local n p
        for n; do
                p=$(nm_installed_path "$n") || { echo "nm_install: $n is not installed by the build" >&2; return 1; }
                # beside it, then renamed over it: a program that runs keeps its file
                mkdir -p "$(dirname "$p")" && cp -a "$NM_STAGE$p" "$p.nmvm-new" && mv -f "$p.nmvm-new" "$p" || return 1
        done
}

# nm_uninstall NAME...   removes what nm_install put in place.
nm_uninstall() {
        local n p
        for n; do
                p=$(nm_installed_path "$n") && rm -f "$p"
        done
        return 0
}

# nm_binary RELPATH   prints the installed program built as $NM_BUILD_DIR/RELPATH (installing it
# first), or $NM_BUILD_DIR/RELPATH for a program meson does not install (wgtool: run by the check
# itself, as root); nothing when it is not built.
nm_binary() {
        local name=${1##*/}
        if nm_installed_path "$name" >/dev/null; then
                nm_install "$name" && nm_installed_path "$name"
        elif [ -x "$NM_BUILD_DIR/$1" ]; then
                echo "$NM_BUILD_DIR/$1"
        fi
}

# nm_install_netclientd   installs netclientd as a package would: the program and its unit at their
# installed paths, a drop-in (kernel WireGuard only, debug log), the bus policy and activation
# file, the polkit actions; then reloads systemd and the bus. dbus-daemon and polkitd read only
# /usr/share and /etc (not /usr/local/share): their files go where a --prefix=/usr package puts them.
nm_install_netclientd() {
        local d=/etc/systemd/system/netclientd.service.d p
        nm_install netclientd netclientd.service || return 1
        mkdir -p $d
        # kernel: never fall back to wireguard-go here
        printf '[Service]\nEnvironment=NETCLIENTD_WG_BACKEND=kernel NETCLIENTD_LOG_LEVEL=debug ASAN_OPTIONS=detect_leaks=0\n' \
                > $d/50-nmvm.conf
        p=$(nm_installed_path org.netmaker.Client.conf) &&
                install -m 0644 "$NM_STAGE$p" /usr/share/dbus-1/system.d/ &&
                p=$(nm_installed_path org.netmaker.Client.service) &&
                install -m 0644 "$NM_STAGE$p" /usr/share/dbus-1/system-services/ &&
                p=$(nm_installed_path org.netmaker.client.policy) &&
                install -m 0644 "$NM_STAGE$p" /usr/share/polkit-1/actions/ || return 1
        systemctl daemon-reload &&
                busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig
}

# nm_uninstall_netclientd   undoes nm_install_netclientd (the state directory is the caller's).
nm_uninstall_netclientd() {
        nm_uninstall netclientd netclientd.service
        rm -rf /etc/systemd/system/netclientd.service.d
        systemctl daemon-reload
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
