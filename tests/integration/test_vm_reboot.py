"""The mesh survives a reboot (VM tier, systemd as PID 1, kernel WireGuard, a persistent disk):
the guest joins a real netmakerd with `netclient join` — which makes netclientd.service start at
boot —, is powered off and booted again into multi-user.target, and its netclientd comes up at boot
and restores its link before anyone calls org.netmaker.Client: the peer answers pings. Leaving
the last network makes the unit stop starting at boot. Skipped where the VM tier cannot run."""

import os
from pathlib import Path

import pytest

from nmtest import vm

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the VM tier)")

COMMON = r"""
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin WG_COLOR_MODE=never SYSTEMD_PAGER=
. "$NM_SRC_DIR/tests/vm/checks/lib.sh"
NMVM_CHECK=reboot
NET=nmvmboot IF=nm-nmvmboot NS=nmvmboot-peer UL=nmvmboot0
SAVE=/var/lib/nmvm-reboot
NODE_UL=198.18.26.1 PEER_UL=198.18.26.2

# The peer machine: a namespace with a veth to the guest and a kernel WireGuard link.
peer_up() { # KEY_FILE PEER_IP PEER_PORT NODE_PUB NODE_IP NODE_PORT
        ip netns add $NS && ip -n $NS link set lo up &&
                ip link add $UL type veth peer name ${UL}p netns $NS &&
                ip addr add $NODE_UL/24 dev $UL && ip link set $UL up &&
                ip -n $NS addr add $PEER_UL/24 dev ${UL}p && ip -n $NS link set ${UL}p up &&
                ip -n $NS link add wg0 type wireguard &&
                ip netns exec $NS wg set wg0 private-key "$1" listen-port "$3" \
                        peer "$4" endpoint $NODE_UL:"$6" allowed-ips "$5/32" persistent-keepalive 5 &&
                ip -n $NS addr add "$2/24" dev wg0 && ip -n $NS link set wg0 up
}
"""

BOOT1 = COMMON + r"""
# --- the server: netmakerd from the staged install under its real units, no broker -----------
expect .server_installed "netmakerd and its units installed" nm_install netmakerd netmakerd.socket netmakerd.service netmakerd.sysusers || exit 1
systemd-sysusers netmakerd.conf
mkdir -p /etc/netmaker /etc/systemd/system/netmakerd.service.d
printf '[netmakerd]\nbroker_url=\nmaster_key=nmvm-master-key-0123456789\napi_url=https://127.0.0.1:8081\n' \
        > /etc/netmaker/netmakerd.conf
printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' > /etc/systemd/system/netmakerd.service.d/50-nmvm.conf
chown root:netmaker /etc/netmaker/netmakerd.conf && chmod 0640 /etc/netmaker/netmakerd.conf
systemctl daemon-reload && systemctl start netmakerd.socket
expect .installed "netclientd, its bus policy and polkit actions installed" nm_install_netclientd || exit 1
NMCTL=$(nm_binary src/nmctl/nmctl) NETCLIENT=$(nm_binary src/netclient/netclient)
curl -sk -m 60 -o /dev/null https://127.0.0.1:8081/api/v1/health  # starts netmakerd, which makes its key
export NMCTL_SERVER=https://127.0.0.1:8081 NMCTL_MASTER_KEY=nmvm-master-key-0123456789
PIN=$("$(nm_binary src/netmakerd/netmakerd)" --print-pin 2>&1)
case "$PIN" in sha256//*) ;; *) report .pin fail "netmakerd --print-pin: $PIN"; exit 1 ;; esac
export NMCTL_PIN=$PIN HOME=/root
expect .network "a network and a key" "$NMCTL" network create $NET --ipv4 10.77.26.0/24 || exit 1
TOKEN=$("$NMCTL" key create boot --network $NET --unlimited | tail -n 1)

# --- the peer registers (as any host would), then the node joins for real -----------------
mkdir -p -m 0700 $SAVE
/usr/bin/python3 - "$TOKEN" > $SAVE/peer.env <<'PY' || { report .peer fail "the peer did not register"; exit 1; }
import base64, os, sys
sys.path.insert(0, os.environ["NM_SRC_DIR"] + "/tests/integration")
from nmtest.client import TestHost
h = TestHost("vmpeer", listen_port=51851, endpoints=["198.18.26.2"])
h.register(sys.argv[1])
net = h.networks["nmvmboot"]["state"]
open("/var/lib/nmvm-reboot/peer.key", "w").write(base64.b64encode(h.wg.secret).decode() + "\n")
print(f"PEER_IP={net['ipv4'].split('/')[0]} PEER_PORT={net['listen_port']}")
PY
. $SAVE/peer.env
expect .join "netclient join -t TOKEN (the bus starts netclientd)" "$NETCLIENT" join -t "$TOKEN" --name vmnode || exit 1
NODE_PUB=$(wg show $IF public-key) NODE_PORT=$(wg show $IF listen-port)
NODE_IP=$(ip -4 -o addr show dev $IF | awk '{ print $4 }' | cut -d/ -f1)
echo "NODE_PUB=$NODE_PUB NODE_PORT=$NODE_PORT NODE_IP=$NODE_IP" >> $SAVE/peer.env
expect .peer "the peer's machine" peer_up $SAVE/peer.key $PEER_IP $PEER_PORT $NODE_PUB $NODE_IP $NODE_PORT || exit 1
expect .ping "the node pings the peer over the mesh" wait_until 20 ping -c1 -W1 $PEER_IP || exit 1
wait_until 10 bash -c "[ \"\$(systemctl is-enabled netclientd.service)\" = enabled ]"
expect .enabled "the join enabled netclientd.service (it starts at boot)" \
        bash -c "[ \"\$(systemctl is-enabled netclientd.service)\" = enabled ]"
journalctl -b -u netclientd.service --no-pager | grep -i "boot" | tail -n 3
"""

BOOT2 = COMMON + r"""
. $SAVE/peer.env
t0=$(up)
# Nothing here calls org.netmaker.Client: netclientd was started by multi-user.target.
expect .started_at_boot "netclientd.service active at boot" wait_until 60 systemctl is-active -q netclientd.service || exit 1
if journalctl -b -u dbus.service --no-pager | grep -q "Activating via systemd: service name='org.netmaker.Client'"; then
        report .not_bus_activated fail "the bus activated netclientd this boot: something called it"
else
        report .not_bus_activated ok "no bus activation this boot: the boot started it"
fi
expect .link "netclientd restored $IF from its saved state" wait_until 60 ip link show $IF || exit 1
expect .peer "the peer's machine is back" peer_up $SAVE/peer.key $PEER_IP $PEER_PORT $NODE_PUB $NODE_IP $NODE_PORT || exit 1
if wait_until 30 ping -c1 -W1 $PEER_IP; then
        report .ping ok "first ping $(up) s after the kernel started (netclientd active since $(systemctl show -p ActiveEnterTimestampMonotonic --value netclientd.service | awk '{ printf "%.1f", $1 / 1e6 }') s)"
else
        report .ping fail "no ping to $PEER_IP within 30 s; $(wg show $IF | tr '\n' ' ')"
        journalctl -b -u netclientd.service --no-pager | tail -n 30
        exit 1
fi
# Leaving the last network: netclientd stops starting at boot (the server is needed again).
systemctl start netmakerd.socket
expect .leave "netclient leave $NET" "$(nm_binary src/netclient/netclient)" leave $NET || exit 1
wait_until 10 bash -c "[ \"\$(systemctl is-enabled netclientd.service)\" = disabled ]"
expect .disabled "leaving the last network disabled netclientd.service" \
        bash -c "[ \"\$(systemctl is-enabled netclientd.service)\" = disabled ]"
"""


@pytest.fixture(scope="module")
def boots(tmp_path_factory, request):
    machine = vm.require()
    d = tmp_path_factory.mktemp("reboot")
    machine.persist = d / "disk"
    (d / "boot1.sh").write_text(BOOT1)
    (d / "boot2.sh").write_text(BOOT2)
    first = machine.run_systemd(str(d / "boot1.sh"), units=["dbus.service", "polkit.service"], timeout=600)
    vm.print_timing(request, first)
    # The second boot is a machine's ordinary boot (multi-user.target), without the services this
    # host happens to have enabled (they are not ours and only cost time under emulation).
    masks = {f"/etc/systemd/system/{u.name}": Path("/dev/null")
             for u in Path("/etc/systemd/system/multi-user.target.wants").glob("*.service")}
    second = None
    if first.rc == 0:
        second = machine.run_systemd(str(d / "boot2.sh"), units=["multi-user.target"], timeout=600,
                                     fixtures=[masks] if masks else None)
        vm.print_timing(request, second)
    return first, second


def test_join_enables_the_unit(boots):
    first, _ = boots
    first.assert_finished()
    for name in ("reboot.join", "reboot.ping", "reboot.enabled"):
        first.assert_check(name)


def test_after_the_reboot_the_link_is_back_without_the_bus(boots):
    first, second = boots
    assert second is not None, f"the first boot failed (rc={first.rc}):\n{first.failure_context()}"
    second.assert_finished()
    for name in ("reboot.started_at_boot", "reboot.not_bus_activated", "reboot.link", "reboot.ping"):
        second.assert_check(name)


def test_leaving_disables_the_unit(boots):
    _, second = boots
    assert second is not None
    second.assert_check("reboot.disabled")
