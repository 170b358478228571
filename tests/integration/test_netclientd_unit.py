"""netclientd.service as shipped: valid for systemd 252, sandboxed, and working under systemd as PID 1
(VM tier): the bus starts it on demand through dbus/org.netmaker.Client.service, it brings up its
WireGuard link inside the sandbox (wireguard-go needs /dev/net/tun and /run/wireguard), polkit
refuses an unprivileged user (`netclient pull`, `netclient join`) while root and, with the example
rule, a member of the group netmaker get past it (their join goes on to the server), and
`systemctl restart` and `stop` leave the link and its session alone (KillMode=process)."""

import os
import re
import subprocess

import pytest

from nmtest import vm
from nmtest.server import REPO, binary, build_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def unit_copy(tmp_path):
    src = build_dir() / "systemd" / "netclientd.service"
    if not src.exists():
        pytest.fail(f"{src} is missing: configure and build {build_dir()} first")
    text = src.read_text()
    assert not re.search(r"@[a-z_]+@", re.sub(r"#.*", "", text)), "unsubstituted @variables@"
    text, n = re.subn(r"^ExecStart=\S*/netclientd$", f"ExecStart={binary('netclientd')}", text, flags=re.M)
    assert n == 1
    d = tmp_path / "units"
    d.mkdir()
    (d / "netclientd.service").write_text(text)
    return d / "netclientd.service"


def test_verify(tmp_path):
    u = unit_copy(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(u)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "" and r.stderr.strip() == "", r.stdout + r.stderr


def test_sandbox_exposure(tmp_path):
    u = unit_copy(tmp_path)
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--man=no", "--threshold=30", str(u)],
                       capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for netclientd.service: (\d+\.\d+)", r.stdout)
    assert level, r.stdout + r.stderr
    # Root with CAP_NET_ADMIN in its bounding set: "OK" (below 3.0), not "medium" or worse.
    assert r.returncode == 0, f"exposure {level.group(1)} is above 3.0:\n{r.stdout}"


GUEST_SCRIPT = r"""#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin WG_COLOR_MODE=never SYSTEMD_PAGER=
S=$NM_SRC_DIR
check() { local n=$1; shift; if "$@"; then echo "CHECK $n ok"; else echo "CHECK $n fail"; fail=1; fi; }
fail=0
umask 077

# --- install as a package would: the staged build (lib.sh) at its installed paths --------------
. "$S/tests/vm/checks/lib.sh"
nm_install netclientd netclientd.service || { echo "CHECK install fail"; exit 1; }
NETCLIENT=$(nm_binary src/netclient/netclient)
mkdir -p /etc/systemd/system/netclientd.service.d
printf '[Service]\nEnvironment=NETCLIENTD_WG_BACKEND=userspace NETCLIENTD_LOG_LEVEL=debug\n' \
        > /etc/systemd/system/netclientd.service.d/test.conf
install -m 0644 "$NM_STAGE$(nm_installed_path org.netmaker.Client.conf)" /etc/dbus-1/system.d/
install -m 0644 "$NM_STAGE$(nm_installed_path org.netmaker.Client.service)" /usr/share/dbus-1/system-services/
install -m 0644 "$NM_STAGE$(nm_installed_path org.netmaker.client.policy)" /usr/share/polkit-1/actions/
systemctl daemon-reload
busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig

# --- a peer in a namespace (kernel WireGuard), and the node's saved state pointing at it ----
ip netns add peer
ip link add veth0 type veth peer name veth1 netns peer
ip addr add 198.18.20.1/24 dev veth0; ip link set veth0 up
ip -n peer addr add 198.18.20.2/24 dev veth1; ip -n peer link set veth1 up; ip -n peer link set lo up
NODE_KEY=$(wg genkey); NODE_PUB=$(echo "$NODE_KEY" | wg pubkey)
PEER_KEY=$(wg genkey); PEER_PUB=$(echo "$PEER_KEY" | wg pubkey)
ip -n peer link add wg0 type wireguard
ip netns exec peer wg set wg0 private-key <(echo "$PEER_KEY") listen-port 51821 \
        peer "$NODE_PUB" endpoint 198.18.20.1:51821 allowed-ips 10.77.0.1/32
ip -n peer addr add 10.77.0.2/24 dev wg0; ip -n peer link set wg0 up
HOST=11111111-2222-4333-8444-555555555555
mkdir -p -m 0700 /var/lib/netclient
cat > /var/lib/netclient/identity.json <<EOF
{"wg_private_key":"$NODE_KEY","msg_private_key":"$(wg genkey)"}
EOF
SPK=$(wg genkey | wg pubkey)
cat > /var/lib/netclient/server.json <<EOF
{"api":"https://198.18.20.254:9","server_msg_key":"$SPK","host_id":"$HOST","credential":"nmh.x.y",
 "mqtt":{"url":"mqtts://198.18.20.254:9","username":"host-$HOST","password":"p","subscribe":"nm/t/host/$HOST/msg","publish":"nm/t/host/$HOST/report"}}
EOF
cat > /var/lib/netclient/state.json <<EOF
{"version":1,"disconnected":[],"state":{"host_id":"$HOST","serial":3,"networks":[{"network":"office",
 "node_id":"21111111-2222-4333-8444-555555555555","ipv4":"10.77.0.1/24","listen_port":51821,"keepalive":20,"mtu":1420,
 "dns_domain":"nm.internal","connected":true,"peers":[{"host_id":"31111111-2222-4333-8444-555555555555","name":"peer",
 "public_key":"$PEER_PUB","endpoint":"198.18.20.2:51821","allowed_ips":["10.77.0.2/32"],"keepalive":20,"ipv4":"10.77.0.2"}]}]}}
EOF

# --- bus activation -------------------------------------------------------------------------
state=$(busctl --timeout=30 get-property org.netmaker.Client /org/netmaker/Client org.netmaker.Client State)
echo "State: $state"
check activation systemctl is-active -q netclientd.service
check activation.state test "$state" = 's "offline"'
for _ in $(seq 100); do ip link show nm-office >/dev/null 2>&1 && break; sleep 0.1; done
check link ip link show nm-office
check ping ping -c2 -W3 10.77.0.2
check dir_mode test "$(stat -c %a /var/lib/netclient)" = 700
check netclient_status bash -c "$NETCLIENT status | grep -q 'State: offline'"
check nobody_refused bash -c "runuser -u nobody -- $NETCLIENT --no-ask-password pull; test \$? = 4"
check nobody_reads bash -c "runuser -u nobody -- $NETCLIENT list | grep -q nm-office"

# --- polkit decides who may join: a token of this host's server (not reachable from here, so an
# authorised join gets as far as trying to reach it) -------------------------------------------
TOKEN=$(printf '{"v":1,"api":"https://198.18.20.254:9","key":"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567","spk":"%s"}' "$SPK" |
        base64 -w0 | tr '+/' '-_' | tr -d '=')
join_is() { # USER STATUS TEXT: `netclient join` as USER exits with STATUS and prints TEXT
        local run=() out rc
        [ "$1" = root ] || run=(runuser -u "$1" --)
        out=$("${run[@]}" "$NETCLIENT" --no-ask-password join -t "$TOKEN" 2>&1)
        rc=$?
        echo "join as $1: exit $rc: $out"
        [ "$rc" = "$2" ] && [[ $out == *"$3"* ]]
}
check join_nobody_refused join_is nobody 4 "not authorised"
# root has CAP_NET_ADMIN: allowed without asking polkit, like systemd's network daemons
check join_root_allowed join_is root 1 "Cannot reach the server"
# the example rule: members of the group netmaker may, without a password (polkit says yes)
groupadd -r netmaker && useradd -r -M -s /usr/sbin/nologin -G netmaker nmvmmember
install -m 0644 "$S/polkit/org.netmaker.client.rules.example" /etc/polkit-1/rules.d/50-netmaker.rules
systemctl restart polkit.service
check join_member_allowed join_is nmvmmember 1 "Cannot reach the server"
check join_nobody_still_refused join_is nobody 4 "not authorised"

# --- restart and stop keep the link and the session -----------------------------------------
hs() { ip netns exec peer wg show wg0 latest-handshakes | awk '{print $2}'; }
wgpid() { pgrep -x wireguard-go; }
before=$(hs); pid=$(wgpid); echo "handshake $before, wireguard-go $pid"
systemctl restart netclientd.service
sleep 1.2
check restart.active systemctl is-active -q netclientd.service
check restart.ping ping -c2 -W3 10.77.0.2
check restart.same_wireguard_go test "$(wgpid)" = "$pid"
check restart.no_new_handshake test "$(hs)" = "$before"
check restart.adopted bash -c "journalctl -u netclientd.service -b | grep -q 'Adopted WireGuard link nm-office'"
systemctl stop netclientd.service
check stop.link_stays ip link show nm-office
check stop.ping ping -c1 -W3 10.77.0.2
check stop.same_wireguard_go test "$(wgpid)" = "$pid"
journalctl -u netclientd.service -b --no-pager | tail -40
exit $fail
"""


def test_unit_under_systemd(tmp_path):
    ok, why = vm.Vm.available()
    if not ok:
        pytest.skip(why)
    script = tmp_path / "netclientd-unit.sh"
    script.write_text(GUEST_SCRIPT)
    r = vm.Vm().run_systemd(str(script), units=["dbus.service", "polkit.service"], timeout=600)
    failed = [n for n, c in r.checks.items() if not c.ok]
    assert r.rc == 0 and not failed and len(r.checks) == 20, f"rc={r.rc} failed: {failed}\n{r.log[-8000:]}"
