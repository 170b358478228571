"""The .debs, installed (VM tier, systemd as PID 1, one boot): `dpkg -i` of netmaker-server,
netmaker-client and the desktop's network-manager-netmaker and gnome-shell-extension-netmaker
(tools/build-packages.sh; their dependencies are the guest's own Debian packages) in the guest's
throwaway overlay runs their maintainer scripts for real: the user netmaker exists, nothing is enabled or started. Then the packaged pieces
run a mesh as an admin would set them up: Mosquitto with dynamic security and a TLS listener
(docs/netmakerd.md "The broker"), /etc/netmaker/netmakerd.conf, `systemctl enable --now
netmakerd.socket` (the first request starts the Type=notify service as netmaker), the packaged
nmctl creates a network and a key, `netclient join` bus-activates the packaged netclientd (polkit
refuses `nobody`, reading stays open), a peer registers from a namespace and reaches the node as an
MQTT delta over TLS, the two ping over kernel WireGuard, systemd-resolved answers the peer's name
through netclientd, and `nmctl dns export` lists both. Installing the packages again (an upgrade)
restarts netmakerd.service and leaves netclientd's process and the tunnel alone; purging them
stops the daemons and the tunnel still carries pings. Skipped where the VM tier cannot run."""

import os
import subprocess
from pathlib import Path

import pytest

from nmtest import vm

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the VM tier)"),
              pytest.mark.skipif(os.environ.get("NM_PACKAGE_TESTS") == "0",
                                 reason="NM_PACKAGE_TESTS=0 (tools/run-tests.sh --no-packages)")]

TOP = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("NM_PKG_DIR", TOP / "build-pkg"))

SCRIPT = r"""
export PATH=/usr/sbin:/usr/bin:/sbin:/bin WG_COLOR_MODE=never SYSTEMD_PAGER= HOME=/root
. "$NM_SRC_DIR/tests/vm/checks/lib.sh"
NMVM_CHECK=pkg
NET=nmvmpkg IF=nm-nmvmpkg NS=nmvmpkg-peer UL=nmvmpkg0
NODE_UL=198.18.95.1 PEER_UL=198.18.95.2
API=https://$NODE_UL:8081
MASTER=nmvm-package-master-key-0123456789
BROKER_PW=nmvm-broker-admin-password

# A Docker image's guard that keeps maintainer scripts from starting services (no real machine has
# one), and man-db's index rebuild (minutes under emulation; `man -w` finds pages without it).
rm -f /usr/sbin/policy-rc.d /var/lib/man-db/auto-update

# --- installation ------------------------------------------------------------------------------
expect .install "dpkg -i $(basename -a $NM_DEBS | tr '\n' ' ')" dpkg -i $NM_DEBS || exit 1
expect .files "programs, units, bus policy, polkit actions, drop-ins, man pages and completion in place" bash -c '
        test -x /usr/sbin/netmakerd -a -x /usr/bin/nmctl -a -x /usr/libexec/netclientd -a -x /usr/bin/netclient &&
        test -f /lib/systemd/system/netmakerd.socket -a -f /lib/systemd/system/netclientd.service &&
        test -f /usr/share/dbus-1/system.d/org.netmaker.Client.conf -a -f /usr/share/polkit-1/actions/org.netmaker.client.policy &&
        test -f /usr/lib/systemd/network/10-netmaker.network -a -f /usr/lib/NetworkManager/conf.d/50-netmaker.conf &&
        test -f /usr/share/bash-completion/completions/nmctl -a -f /usr/share/zsh/vendor-completions/_netclient &&
        [ "$(man -w netclient)" = /usr/share/man/man1/netclient.1.gz ] && [ "$(man -w 5 org.netmaker.Client)" = /usr/share/man/man5/org.netmaker.Client.5.gz ]' || exit 1
expect .desktop_files "the NetworkManager plugin (its .name file names the installed service) and the GNOME Shell extension in place" bash -c '
        test -x /usr/libexec/nm-netmaker-service -a -f /usr/share/dbus-1/system.d/nm-netmaker-service.conf &&
        grep -qx program=/usr/libexec/nm-netmaker-service /usr/lib/NetworkManager/VPN/nm-netmaker-service.name &&
        test -f /usr/share/gnome-shell/extensions/netmaker-mesh@netmaker.org/metadata.json &&
        dpkg -s network-manager-netmaker gnome-shell-extension-netmaker | grep -c "^Status: install ok installed" | grep -qx 2' || exit 1
expect .sysusers "postinst made the user netmaker (sysusers.d)" getent passwd netmaker || exit 1
expect .nothing_enabled "nothing enabled or started by the installation" bash -c '
        for u in netmakerd.socket netmakerd.service netclientd.service; do
                ! systemctl is-enabled -q $u && ! systemctl is-active -q $u || { echo "$u: $(systemctl is-enabled $u) $(systemctl is-active $u)"; exit 1; }
        done'
expect .polkit_actions "polkitd knows the packaged actions" pkaction --action-id org.netmaker.client.join

# --- the peer's machine: a namespace on the underlay ---------------------------------------------
ip netns add $NS && ip -n $NS link set lo up &&
        ip link add $UL type veth peer name ${UL}p netns $NS &&
        ip addr add $NODE_UL/24 dev $UL && ip link set $UL up &&
        ip -n $NS addr add $PEER_UL/24 dev ${UL}p && ip -n $NS link set ${UL}p up || { report .underlay fail "veth"; exit 1; }

# --- the broker, as docs/netmakerd.md "The broker" says ---------------------------------------
mkdir -p /etc/mosquitto/certs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj /CN=mqtt.nmvm \
        -keyout /etc/mosquitto/certs/broker.key -out /etc/mosquitto/certs/broker.crt 2>/dev/null
chown mosquitto /etc/mosquitto/certs/broker.key && chmod 0600 /etc/mosquitto/certs/broker.key
mosquitto_ctrl dynsec init /var/lib/mosquitto/dynamic-security.json admin "$BROKER_PW" >/dev/null
chown mosquitto: /var/lib/mosquitto/dynamic-security.json
cat > /etc/mosquitto/conf.d/netmaker.conf <<EOF
plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so
plugin_opt_config_file /var/lib/mosquitto/dynamic-security.json
per_listener_settings false
allow_anonymous false
listener 8883
certfile /etc/mosquitto/certs/broker.crt
keyfile /etc/mosquitto/certs/broker.key
EOF
expect .broker "mosquitto.service with dynamic security and TLS on 8883" bash -c '
        systemctl restart mosquitto.service && systemctl is-active -q mosquitto.service' || exit 1

# --- the server ----------------------------------------------------------------------------------
mkdir -p /etc/netmaker
cat > /etc/netmaker/netmakerd.conf <<EOF
[netmakerd]
api_url=$API
broker_url=mqtts://127.0.0.1:8883
broker_public_url=mqtts://$NODE_UL:8883
broker_certificate=/etc/mosquitto/certs/broker.crt
broker_username=admin
broker_password=$BROKER_PW
master_key=$MASTER
log_level=debug
EOF
chown root:netmaker /etc/netmaker/netmakerd.conf && chmod 0640 /etc/netmaker/netmakerd.conf
expect .socket "systemctl enable --now netmakerd.socket" systemctl enable --now netmakerd.socket || exit 1
if systemctl is-active -q netmakerd.service; then
        report .socket_activation fail "netmakerd.service runs before any connection"
else
        curl -sSk -m 90 -o /dev/null $API/api/v1/health
        if [ "$(systemctl show -p Type --value netmakerd.service)" = notify ] && systemctl is-active -q netmakerd.service &&
           [ "$(ps -o user= -p "$(systemctl show -p MainPID --value netmakerd.service)" | tr -d ' ')" = netmaker ]; then
                report .socket_activation ok "the first request started netmakerd.service (Type=notify, user netmaker)"
        else
                report .socket_activation fail "$(systemctl show -p Type,ActiveState,MainPID netmakerd.service | tr '\n' ' ')"
        fi
fi
export NMCTL_SERVER=$API NMCTL_MASTER_KEY=$MASTER
NMCTL_PIN=$(netmakerd --print-pin 2>&1); export NMCTL_PIN
expect .broker_connected "netmakerd connected to the broker over TLS (the pinned certificate)" \
        wait_until 60 bash -c 'nmctl --json health | grep -q "\"broker_connected\" *: *true"' || {
        journalctl -b -u netmakerd.service -u mosquitto.service --no-pager | tail -n 30; exit 1; }
expect .network "nmctl network create, key create" nmctl network create $NET --ipv4 10.95.0.0/24 || exit 1
TOKEN=$(nmctl key create pkg --network $NET --unlimited | tail -n 1)

# --- the client ----------------------------------------------------------------------------------
expect .join "netclient join -t TOKEN" netclient join -t "$TOKEN" --name vmnode || {
        journalctl -b -u netclientd.service --no-pager | tail -n 30; exit 1; }
if journalctl -b -u dbus.service --no-pager | grep -q "Activating via systemd: service name='org.netmaker.Client' unit='netclientd.service'"; then
        report .bus_activation ok "the bus started netclientd.service for the join"
else
        report .bus_activation fail "no bus activation of netclientd.service in dbus.service's log"
fi
expect .online "netclientd online (its own broker account over TLS)" wait_until 60 bash -c \
        '[ "$(busctl get-property org.netmaker.Client /org/netmaker/Client org.netmaker.Client State)" = "s \"online\"" ]'
expect .polkit_refuses "nobody may not pull (polkit: exit 4)" bash -c \
        'runuser -u nobody -- netclient --no-ask-password pull; [ $? = 4 ]'
expect .reading_open "nobody may read" bash -c "runuser -u nobody -- netclient list | grep -q '^$NET '"

# --- a peer registers from its namespace; the node hears of it over MQTT ---------------------------
mkdir -p -m 0700 /run/nmvm-pkg
ip netns exec $NS /usr/bin/python3 - "$TOKEN" > /run/nmvm-pkg/peer.env <<'PY' || { report .peer fail "the peer did not register"; exit 1; }
import base64, os, sys
sys.path.insert(0, os.environ["NM_SRC_DIR"] + "/tests/integration")
from nmtest.client import TestHost
h = TestHost("vmpeer", listen_port=51895, endpoints=["198.18.95.2"])
h.register(sys.argv[1])
assert h.connect() == 0, "the peer's broker connection"
net = h.networks["nmvmpkg"]["state"]
open("/run/nmvm-pkg/peer.key", "w").write(base64.b64encode(h.wg.secret).decode() + "\n")
print(f"PEER_IP={net['ipv4'].split('/')[0]} PEER_PORT={net['listen_port']} PEER_PUB={h.wg.public_b64}")
h.close()
PY
. /run/nmvm-pkg/peer.env
expect .delta "the peer reached the node as an MQTT delta" wait_until 60 bash -c "wg show $IF peers | grep -qF '$PEER_PUB'" || {
        journalctl -b -u netclientd.service --no-pager | tail -n 30; exit 1; }
NODE_PUB=$(wg show $IF public-key) NODE_PORT=$(wg show $IF listen-port)
NODE_IP=$(ip -4 -o addr show dev $IF | awk '{ print $4 }' | cut -d/ -f1)
expect .peer_link "the peer's kernel WireGuard link" bash -c "
        ip -n $NS link add wg0 type wireguard &&
        ip netns exec $NS wg set wg0 private-key /run/nmvm-pkg/peer.key listen-port $PEER_PORT \
                peer $NODE_PUB endpoint $NODE_UL:$NODE_PORT allowed-ips $NODE_IP/32 persistent-keepalive 5 &&
        ip -n $NS addr add $PEER_IP/24 dev wg0 && ip -n $NS link set wg0 up" || exit 1
expect .ping "the node pings the peer over the mesh" wait_until 30 ping -c1 -W1 $PEER_IP || exit 1
expect .resolved "systemd-resolved answers vmpeer.$NET.nm.internal through netclientd" wait_until 30 bash -c \
        "resolvectl query --cache=no vmpeer.$NET.nm.internal | grep -q '$PEER_IP'"
expect .dns_export "nmctl dns export lists the node and the peer" bash -c \
        "nmctl dns export $NET | grep -qx '$PEER_IP vmpeer.$NET.nm.internal' && nmctl dns export $NET | grep -qx '$NODE_IP vmnode.$NET.nm.internal'"

# --- an upgrade: the same packages again -----------------------------------------------------------
ncd=$(systemctl show -p MainPID --value netclientd.service)
nmd=$(systemctl show -p MainPID --value netmakerd.service)
expect .upgrade "dpkg -i again (an upgrade)" dpkg -i $NM_DEBS || exit 1
if [ "$(systemctl show -p MainPID --value netclientd.service)" = "$ncd" ] && systemctl is-active -q netclientd.service; then
        report .upgrade_keeps_netclientd ok "netclientd still runs as PID $ncd"
else
        report .upgrade_keeps_netclientd fail "netclientd was $ncd, is $(systemctl show -p MainPID,ActiveState netclientd.service | tr '\n' ' ')"
fi
new=$(systemctl show -p MainPID --value netmakerd.service)
if [ "$new" != "$nmd" ] && [ "$new" != 0 ] && systemctl is-active -q netmakerd.service netmakerd.socket; then
        report .upgrade_restarts_netmakerd ok "netmakerd.service restarted ($nmd -> $new), the socket stayed"
else
        report .upgrade_restarts_netmakerd fail "netmakerd.service was $nmd, is $new; $(systemctl is-active netmakerd.service netmakerd.socket | tr '\n' ' ')"
fi
expect .ping_after_upgrade "the mesh still carries pings" ping -c1 -W2 $PEER_IP
expect .health_after_upgrade "the restarted netmakerd answers" bash -c "nmctl health >/dev/null"

# --- removal: the daemons stop, the tunnel stays --------------------------------------------------
expect .purge "dpkg --purge of the four packages" dpkg --purge gnome-shell-extension-netmaker network-manager-netmaker \
        netmaker-client netmaker-server || exit 1
expect .stopped "netclientd and netmakerd stopped, their units gone" bash -c '
        ! systemctl is-active -q netclientd.service && ! systemctl is-active -q netmakerd.service netmakerd.socket &&
        [ ! -e /lib/systemd/system/netclientd.service ] && [ ! -e /usr/libexec/netclientd ]'
expect .tunnel_stays "the link outlives netclientd: the peer still answers" ping -c1 -W2 $PEER_IP
"""


@pytest.fixture(scope="module")
def boot(request):
    machine = vm.require()
    r = subprocess.run([str(TOP / "tools/build-packages.sh"), "--if-stale", "deb"], capture_output=True, text=True,
                       timeout=3600)
    assert r.returncode == 0, f"tools/build-packages.sh deb failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
    debs = sorted(str(p) for p in (OUT / "deb").glob("*.deb") if "-dbgsym" not in p.name)
    assert len(debs) == 4, debs
    script = Path(os.environ.get("TMPDIR", "/tmp")) / f"nmvm-packages-{os.getpid()}.sh"
    script.write_text(SCRIPT)
    try:
        result = machine.run_systemd(str(script), units=["dbus.service", "polkit.service",
                                                          "systemd-resolved.service"],
                                     env={"NM_DEBS": " ".join(debs)}, timeout=900)
    finally:
        script.unlink()
    vm.print_timing(request, result)
    return result


STEPS = ["install", "files", "desktop_files", "sysusers", "nothing_enabled", "polkit_actions", "broker", "socket",
         "socket_activation", "broker_connected", "network", "join", "bus_activation", "online", "polkit_refuses",
         "reading_open", "delta", "peer_link", "ping", "resolved", "dns_export", "upgrade",
         "upgrade_keeps_netclientd", "upgrade_restarts_netmakerd", "ping_after_upgrade", "health_after_upgrade",
         "purge", "stopped", "tunnel_stays"]


def test_guest_ran_the_script(boot):
    boot.assert_finished()


@pytest.mark.parametrize("step", STEPS)
def test_step(boot, step):
    boot.assert_check(f"pkg.{step}")
