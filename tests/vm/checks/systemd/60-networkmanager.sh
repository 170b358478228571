# VM checks: the mesh in NetworkManager (Debian's real NetworkManager, started at boot by this
# file's nmvm-units line; tests/vm/fixtures/systemd/etc/NetworkManager/conf.d/90-nmvm.conf keeps it
# off every link but this check's uplink and the nm-* links our own drop-in governs). Installed as
# packages would be: netclientd with its unit, NetworkManager-netmaker (nm-netmaker-service, its
# .name file and bus policy) and our NetworkManager drop-in; netmakerd (no broker) under its units.
# A network joined with `netclient join` appears in `nmcli connection` and is active there without
# anyone calling NetworkManager; `nmcli connection down/up` disconnects and connects it in
# netclientd (link, peers, ping); `netclient disconnect/connect` shows in nmcli; NetworkManager never
# touches the link's addresses or routes; a 10 Hz ping across the tunnel loses nothing while
# NetworkManager restarts, after which the VPN is active again; leaving the network removes the
# profile. The checks run in order and share the machine they set up; the last one cleans up.
# nmvm-units: dbus.service polkit.service NetworkManager.service
# shellcheck shell=bash

NMN_NET=nmvmnm                # the mesh network: netclientd's link is nm-nmvmnm
NMN_IF=nm-nmvmnm
NMN_NS=nmvmnm-peer            # the peer's machine
NMN_UL=nmvmnm0                # the uplink, NetworkManager's (profile nmvm-uplink)
NMN_NODE_UL=198.18.76.1 NMN_PEER_UL=198.18.76.2
NMN_PROFILE="$NMN_NET (Netmaker)"
NMN_SAVE=/run/nmvm-nm         # what the checks hand each other
NMN_MASTER=nmvm-master-key-0123456789

_nmn_netclient() { "$(nm_installed_path netclient)" "$@"; }

# The network's state as netclient shows it: "connected" or "disconnected".
_nmn_netclient_state() {
        _nmn_netclient status --json | /usr/bin/python3 -c '
import json, sys
nets = {n["name"]: n for n in json.load(sys.stdin).get("networks", [])}
n = nets.get(sys.argv[1])
print("absent" if n is None else "connected" if n.get("connected") else "disconnected")' "$NMN_NET"
}

# The profile's state as `nmcli -t` shows it: "activated", "activating", ... or "inactive".
_nmn_nm_state() {
        local s
        s=$(nmcli -t -g GENERAL.STATE connection show "$NMN_PROFILE" 2>/dev/null)
        echo "${s:-inactive}"
}

# netclient and nmcli agree: connected <-> activated, disconnected <-> inactive.
_nmn_agree() { # connected|disconnected
        local want_nm=inactive
        [ "$1" = connected ] && want_nm=activated
        [ "$(_nmn_netclient_state)" = "$1" ] && [ "$(_nmn_nm_state)" = "$want_nm" ]
}

_nmn_states() { echo "netclient: $(_nmn_netclient_state), nmcli: $(_nmn_nm_state)"; }

# Everything of the link NetworkManager could have touched (not its up/down state).
_nmn_snapshot() {
        ip -o addr show dev $NMN_IF | awk '{ print $3, $4 }'
        ip route show table all dev $NMN_IF | sed -e 's/ linkdown//'
        ip -6 route show table all dev $NMN_IF | sed -e 's/ linkdown//'
        ip -o link show dev $NMN_IF | grep -o 'mtu [0-9]*'
}

_nmn_peer_up() { # NODE_PUB NODE_PORT NODE_IP
        . $NMN_SAVE/peer.env
        ip -n $NMN_NS link add wg0 type wireguard &&
                ip netns exec $NMN_NS wg set wg0 private-key $NMN_SAVE/peer.key listen-port "$PEER_PORT" \
                        peer "$1" endpoint $NMN_NODE_UL:"$2" allowed-ips "$3/32" persistent-keepalive 5 &&
                ip -n $NMN_NS addr add "$PEER_IP/24" dev wg0 && ip -n $NMN_NS link set wg0 up
}

# The uplink: a veth to the peer's machine, configured by NetworkManager with the default route,
# so that NetworkManager has the primary connection a VPN needs.
_nmn_uplink() {
        ip netns add $NMN_NS && ip -n $NMN_NS link set lo up &&
                ip link add $NMN_UL type veth peer name ${NMN_UL}p netns $NMN_NS &&
                ip -n $NMN_NS addr add $NMN_PEER_UL/24 dev ${NMN_UL}p && ip -n $NMN_NS link set ${NMN_UL}p up || return 1
        # NetworkManager's udev rules leave veth links alone (85-nm-unmanaged.rules): this one is
        # the machine's uplink, so it is handed over explicitly.
        ip link set $NMN_UL up
        wait_until 20 nmcli device show $NMN_UL && nmcli device set $NMN_UL managed yes &&
                wait_until 20 bash -c "nmcli -t -g GENERAL.STATE device show $NMN_UL | grep -qv unmanaged" || {
                nmcli device; return 1; }
        nmcli connection add type ethernet ifname $NMN_UL con-name nmvm-uplink ipv4.method manual \
                ipv4.addresses $NMN_NODE_UL/24 ipv4.gateway $NMN_PEER_UL ipv6.method disabled &&
                nmcli --wait 30 connection up nmvm-uplink &&
                wait_until 20 bash -c "nmcli -t -g IP4.GATEWAY device show $NMN_UL | grep -q $NMN_PEER_UL"
}

_nmn_server() {
        nm_install netmakerd netmakerd.socket netmakerd.service netmakerd.sysusers || return 1
        systemd-sysusers netmakerd.conf
        mkdir -p /etc/netmaker /etc/systemd/system/netmakerd.service.d
        printf '[netmakerd]\nbroker_url=\nmaster_key=%s\napi_url=https://127.0.0.1:8081\n' $NMN_MASTER \
                > /etc/netmaker/netmakerd.conf
        printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' > /etc/systemd/system/netmakerd.service.d/50-nmvm.conf
        chown root:netmaker /etc/netmaker/netmakerd.conf && chmod 0640 /etc/netmaker/netmakerd.conf
        systemctl daemon-reload && systemctl start netmakerd.socket &&
                curl -sk -m 60 -o /dev/null https://127.0.0.1:8081/api/v1/health
}

# NetworkManager-netmaker where NetworkManager and dbus-daemon read it (they know neither
# /usr/local/lib nor /usr/local/share), the program where its .name file says it is.
_nmn_install_plugin() {
        local p
        nm_install nm-netmaker-service || return 1
        p=$(nm_installed_path nm-netmaker-service.name) && install -D -m 0644 "$NM_STAGE$p" \
                /usr/lib/NetworkManager/VPN/nm-netmaker-service.name || return 1
        p=$(nm_installed_path nm-netmaker-service.conf) && install -m 0644 "$NM_STAGE$p" /usr/share/dbus-1/system.d/ || return 1
        p=$(nm_installed_path NetworkManager-netmaker.conf) && install -D -m 0644 "$NM_STAGE$p" \
                /usr/lib/NetworkManager/conf.d/50-netmaker.conf || return 1
        busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus ReloadConfig &&
                nmcli general reload conf
}

# The machine: NetworkManager with its uplink, our packages, a server with a network, a peer.
check_nm_setup() {
        local token bin
        rm -rf $NMN_SAVE && mkdir -p -m 0700 $NMN_SAVE
        bin=$(nm_binary desktop/NetworkManager-netmaker/nm-netmaker-service)
        [ -n "$bin" ] || { report - skip "nm-netmaker-service is not built (libnm-dev missing at meson setup)"; return 0; }
        expect .running "NetworkManager runs (started at boot)" systemctl is-active -q NetworkManager.service || return 1
        expect .uplink "NetworkManager configures the uplink $NMN_UL with the default route (its primary connection)" \
                _nmn_uplink || return 1
        expect .plugin "NetworkManager-netmaker and our NetworkManager drop-in installed" _nmn_install_plugin || return 1
        expect .vpn_type "NetworkManager knows the VPN type netmaker" \
                bash -c "nmcli -t connection add type vpn vpn-type netmaker con-name nmvm-probe vpn.data network=x && nmcli connection delete nmvm-probe" ||
                return 1
        expect .server "netmakerd (no broker) under its units" _nmn_server || return 1
        expect .installed "netclientd, its bus policy and polkit actions installed" nm_install_netclientd || return 1
        export NMCTL_SERVER=https://127.0.0.1:8081 NMCTL_MASTER_KEY=$NMN_MASTER HOME=/root
        NMCTL_PIN=$("$(nm_binary src/netmakerd/netmakerd)" --print-pin 2>&1)
        export NMCTL_PIN
        expect .network "network $NMN_NET and a key" "$(nm_binary src/nmctl/nmctl)" network create $NMN_NET --ipv4 10.76.0.0/24 || return 1
        token=$("$(nm_binary src/nmctl/nmctl)" key create nm --network $NMN_NET --unlimited | tail -n 1)
        echo "$token" > $NMN_SAVE/token
        # The peer registers as any host would; its machine comes up once the node's key is known.
        /usr/bin/python3 - "$token" > $NMN_SAVE/peer.env <<'PY' || { report .peer fail "the peer did not register"; return 1; }
import base64, os, sys
sys.path.insert(0, os.environ["NM_SRC_DIR"] + "/tests/integration")
from nmtest.client import TestHost
h = TestHost("nmpeer", listen_port=51876, endpoints=["198.18.76.2"])
h.register(sys.argv[1])
net = h.networks["nmvmnm"]["state"]
open("/run/nmvm-nm/peer.key", "w").write(base64.b64encode(h.wg.secret).decode() + "\n")
print(f"PEER_IP={net['ipv4'].split('/')[0]} PEER_PORT={net['listen_port']}")
PY
        nm_binary src/netclient/netclient > /dev/null
        report .done ok "NetworkManager with its uplink, NetworkManager-netmaker, netmakerd and a peer"
}

check_nm_join_shows_in_networkmanager() {
        [ -f $NMN_SAVE/peer.env ] || { report - skip "the setup check did not get this far"; return 0; }
        local token
        token=$(cat $NMN_SAVE/token)
        expect .join "netclient join -t TOKEN (the bus starts netclientd)" _nmn_netclient join -t "$token" --name nmnode || return 1
        local node_pub node_port node_ip
        node_pub=$(wg show $NMN_IF public-key) node_port=$(wg show $NMN_IF listen-port)
        node_ip=$(ip -4 -o addr show dev $NMN_IF | awk '{ print $4 }' | cut -d/ -f1)
        echo "NODE_PUB=$node_pub NODE_PORT=$node_port NODE_IP=$node_ip" > $NMN_SAVE/node.env
        expect .peer_machine "the peer's machine" _nmn_peer_up "$node_pub" "$node_port" "$node_ip" || return 1
        . $NMN_SAVE/peer.env
        # -I: through the mesh link only (the peer's machine also answers for its mesh address over
        # the uplink's default route, which would hide a broken tunnel)
        expect .ping "the node pings the peer over the mesh" wait_until 30 ping -I $NMN_IF -c1 -W1 "$PEER_IP" || return 1

        # Nobody called NetworkManager: netclientd made the profile and activated it.
        if wait_until 30 _nmn_agree connected; then
                report .profile ok "\"$NMN_PROFILE\" is in nmcli connection and activated ($(_nmn_states)), made by netclientd"
        else
                report .profile fail "$(_nmn_states); $(nmcli -t connection show | tr '\n' ' ')"
                journalctl -b -u netclientd.service -u NetworkManager.service --no-pager | grep -iE 'networkmanager|netmaker|vpn' | tail -n 30
                return 1
        fi
        nmcli -t -f NAME,TYPE,DEVICE,STATE connection show --active
        expect .unmanaged "the link itself stays unmanaged (networkd-integration/NetworkManager-netmaker.conf)" \
                bash -c "nmcli -t -f DEVICE,STATE device | grep -qx '$NMN_IF:unmanaged'"
        nmcli connection show "$NMN_PROFILE" | grep -E '^(GENERAL|VPN|IP4|IP6)\.'
        # NetworkManager reads the link (it shows the address netclientd set) and adds no DNS.
        expect .shows_address "nmcli shows this host's mesh address $node_ip/24 for the VPN" \
                bash -c "nmcli -t -g IP4.ADDRESS connection show '$NMN_PROFILE' | grep -qxF '$node_ip/24'"
        expect .no_dns "NetworkManager has no DNS for it (netclientd registers mesh DNS itself)" \
                bash -c "[ -z \"\$(nmcli -t -g IP4.DNS,IP6.DNS,IP4.DOMAIN,IP6.DOMAIN connection show '$NMN_PROFILE' | tr -d ':\n ')\" ]"
        _nmn_snapshot > $NMN_SAVE/link.before
        cat $NMN_SAVE/link.before
}

check_nm_up_down() {
        [ -f $NMN_SAVE/link.before ] || { report - skip "the join check did not get this far"; return 0; }
        . $NMN_SAVE/peer.env
        expect .down "nmcli connection down" nmcli connection down "$NMN_PROFILE" || return 1
        if wait_until 10 _nmn_agree disconnected && [ -z "$(wg show $NMN_IF peers)" ] &&
                ip -o link show dev $NMN_IF | grep -q 'state DOWN'; then
                report .down_in_netclientd ok "netclientd disconnected the network: link down, no peers ($(_nmn_states))"
        else
                report .down_in_netclientd fail "$(_nmn_states); $(ip -o link show dev $NMN_IF); peers: $(wg show $NMN_IF peers | wc -l)"
        fi
        . $NMN_SAVE/node.env
        if ip netns exec $NMN_NS ping -c1 -W2 "$NODE_IP" >/dev/null 2>&1; then
                report .no_tunnel fail "the node still answers the peer through the tunnel while disconnected"
        else
                report .no_tunnel ok "the peer cannot reach the node through the tunnel while disconnected"
        fi
        expect .up "nmcli connection up" nmcli --wait 60 connection up "$NMN_PROFILE" || return 1
        expect .up_in_netclientd "netclientd connected the network ($(_nmn_states))" wait_until 10 _nmn_agree connected
        expect .tunnel "the peer answers again, through the tunnel" wait_until 30 ping -I $NMN_IF -c1 -W1 "$PEER_IP"

        expect .netclient_disconnect "netclient disconnect $NMN_NET" _nmn_netclient disconnect $NMN_NET || return 1
        if wait_until 15 _nmn_agree disconnected; then
                report .nm_follows_down ok "nmcli shows it inactive too ($(_nmn_states))"
        else
                report .nm_follows_down fail "$(_nmn_states)"
        fi
        expect .netclient_connect "netclient connect $NMN_NET" _nmn_netclient connect $NMN_NET || return 1
        if wait_until 30 _nmn_agree connected; then
                report .nm_follows_up ok "nmcli shows it activated again, netclientd activated it ($(_nmn_states))"
        else
                report .nm_follows_up fail "$(_nmn_states)"
        fi
        wait_until 30 ping -I $NMN_IF -c1 -W1 "$PEER_IP"
        _nmn_snapshot > $NMN_SAVE/link.after
        if diff -u $NMN_SAVE/link.before $NMN_SAVE/link.after; then
                report .untouched ok "after down/up through both: the link's addresses, routes and MTU are as netclientd set them ($(wc -l < $NMN_SAVE/link.before) lines)"
        else
                report .untouched fail "the link changed: $(diff $NMN_SAVE/link.before $NMN_SAVE/link.after | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
        fi
}

check_nm_restart() {
        [ -f $NMN_SAVE/link.before ] || { report - skip "the join check did not get this far"; return 0; }
        . $NMN_SAVE/peer.env
        local pid sent got out
        _nmn_agree connected || wait_until 30 _nmn_agree connected
        echo "ping from $(up) s, then NetworkManager restarts"

        out=$NMN_SAVE/ping.log
        # A fixed count, so that ping waits for the last answers itself (an interrupt would count
        # the packets still on their way as lost); -O names every packet without an answer.
        ping -n -O -I $NMN_IF -i 0.1 -c 300 -w 90 "$PEER_IP" > $out 2>&1 &
        pid=$!
        defer "kill $pid"
        sleep 2
        expect .restart "systemctl restart NetworkManager" systemctl restart NetworkManager.service || return 1
        if wait_until 40 _nmn_agree connected; then
                report .active_again ok "after the restart the VPN is active again in NetworkManager ($(_nmn_states))"
        else
                report .active_again fail "$(_nmn_states)"
                journalctl -b -u netclientd.service -u NetworkManager.service --no-pager | grep -iE 'networkmanager|netmaker|vpn' | tail -n 20
        fi
        echo "NetworkManager back and the VPN active $(up) s"
        wait $pid
        tail -n 3 $out
        sent=$(awk '/packets transmitted/ { print $1 }' $out)
        got=$(awk '/packets transmitted/ { print $4 }' $out)
        if [ "$sent" = 300 ] && [ "$got" = 300 ]; then
                report .no_loss ok "10 Hz ping across the tunnel, 30 s through the restart: $got of $sent answered"
        else
                report .no_loss fail "10 Hz ping across the tunnel through the restart: ${got:-?} of ${sent:-?} answered; unanswered: $(grep -o 'no answer yet for icmp_seq=[0-9]*' $out | cut -d= -f2 | tr '\n' ' ')"
        fi
        _nmn_snapshot > $NMN_SAVE/link.restart
        if diff -u $NMN_SAVE/link.before $NMN_SAVE/link.restart; then
                report .untouched ok "the restart left the link's addresses, routes and MTU alone"
        else
                report .untouched fail "the link changed: $(diff $NMN_SAVE/link.before $NMN_SAVE/link.restart | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
        fi
}

_nmn_cleanup() {
        systemctl stop netclientd.service netmakerd.service netmakerd.socket
        ip link del $NMN_IF
        rm -rf /var/lib/netclient /var/lib/netmaker /etc/netmaker $NMN_SAVE
        nmcli connection delete nmvm-uplink "$NMN_PROFILE"
        ip link del $NMN_UL
        ip netns del $NMN_NS
        rm -f /usr/lib/NetworkManager/VPN/nm-netmaker-service.name /usr/lib/NetworkManager/conf.d/50-netmaker.conf \
                /usr/share/dbus-1/system.d/nm-netmaker-service.conf
        nm_uninstall nm-netmaker-service netmakerd netmakerd.socket netmakerd.service
        nm_uninstall_netclientd
        nmcli general reload conf
}

check_nm_leave_removes_profile() {
        [ -f $NMN_SAVE/node.env ] || { report - skip "the join check did not get this far"; _nmn_cleanup; return 0; }
        defer _nmn_cleanup
        expect .leave "netclient leave $NMN_NET" _nmn_netclient leave $NMN_NET || return 1
        if wait_until 15 bash -c "! nmcli -t -f NAME connection show | grep -qxF '$NMN_PROFILE'"; then
                report .profile_gone ok "the profile left nmcli connection with the network"
        else
                report .profile_gone fail "still there: $(nmcli -t -f NAME,STATE connection show | tr '\n' ' ')"
        fi
}
