# VM checks: netclientd next to a running systemd-networkd. First without our drop-ins, to show
# what they prevent: a catch-all .network makes networkd take a WireGuard link it did not create,
# and a reload then strips its address and removes a routing policy rule networkd did not make.
# Then installed as a package would be (networkd-integration/ drop-ins, unit, bus policy and
# activation file, polkit actions), started by the bus, on kernel WireGuard: `networkctl reload`
# (with every .network file changed) and a networkd restart leave netclientd's link, addresses,
# routes (in its own routing table too), peers, the policy routing rules of an internet gateway and
# its WireGuard session exactly as they were.
# nmvm-units: dbus.service polkit.service systemd-networkd.service
# shellcheck shell=bash

ND_NS=nmvmnd-peer      # the peer's namespace
ND_UL=nmvmnd0          # the underlay link in the guest's own namespace (networkd configures it)
ND_NET=nmvmnd          # the mesh network, so netclientd's link is nm-nmvmnd
ND_IF=nm-nmvmnd
ND_NEG=nm-nmvmneg      # the throwaway link of the negative check
ND_PORT=51830
# netclientd's policy routing for an internet gateway (src/netclientd/routing.h): rules at
# priorities 32700/32701 and a table of its own, 0x4e4d0000 | listen port
ND_TABLE=$((0x4e4d0000 | ND_PORT))
ND_NETDIR=/etc/systemd/network

_nd_setup_state() { # LINK: networkd's SETUP column (configured, unmanaged, configuring, ...)
        networkctl list --no-legend --no-pager 2>/dev/null | awk -v l="$1" '$2 == l { print $5 }'
}

# networkd has (re)configured the underlay and nothing is pending.
_nd_settled() {
        [ "$(_nd_setup_state $ND_UL)" = configured ] &&
                ! networkctl list --no-legend --no-pager | awk '{ print $5 }' | grep -qE 'configuring|pending'
}

# The underlay: a veth pair to the peer's namespace, our end configured by networkd (a machine
# whose uplink networkd manages; its reconfiguration is what drops foreign routing rules).
_nd_underlay() {
        ip netns add $ND_NS || return 1
        ip -n $ND_NS link set lo up
        ip link add $ND_UL type veth peer name ${ND_UL}p netns $ND_NS || return 1
        ip -n $ND_NS addr add 198.18.22.2/24 dev ${ND_UL}p
        ip -n $ND_NS link set ${ND_UL}p up
        cat > $ND_NETDIR/20-nmvmnd-underlay.network <<EOF
[Match]
Name=$ND_UL
[Network]
Address=198.18.22.1/24
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
        networkctl reload && wait_until 30 _nd_settled
}

# A catch-all .network as servers and images often have one: every other link is networkd's, and
# what networkd did not configure on it is removed.
_nd_catchall() { # COMMENT (a changed file makes networkd reconfigure the links it matches)
        cat > $ND_NETDIR/99-nmvmnd-catchall.network <<EOF
# $1
[Match]
Name=!lo $ND_UL
[Network]
LinkLocalAddressing=no
IPv6AcceptRA=no
KeepConfiguration=no
EOF
}

_nd_cleanup_networkd() {
        rm -f $ND_NETDIR/20-nmvmnd-underlay.network $ND_NETDIR/99-nmvmnd-catchall.network
        ip link del $ND_UL 2>/dev/null
        ip netns del $ND_NS 2>/dev/null
        networkctl reload
}

check_networkd_without_dropins() {
        local d pub rules
        if [ -e "$(nm_installed_path 10-netmaker.network)" ] || [ -e /usr/lib/systemd/network/10-netmaker.network ]; then
                report - skip "the drop-ins are already installed in this guest"
                return 0
        fi
        defer _nd_cleanup_networkd
        expect .underlay "networkd configures the underlay $ND_UL from a .network file" _nd_underlay || return 1

        # A WireGuard link set up by hand, as netclientd would: key, peer, address, a routing rule.
        d=$(mktemp -d /run/nmvm-nd.XXXXXX)
        defer "rm -rf $d; ip link del $ND_NEG; ip rule del priority 4208"
        (umask 077; wg genkey > $d/key; wg genkey | wg pubkey > $d/peer.pub)
        pub=$(cat $d/peer.pub)
        ip link add $ND_NEG type wireguard && wg set $ND_NEG private-key $d/key listen-port 51839 \
                peer "$pub" endpoint 198.18.22.2:51839 allowed-ips 10.77.8.2/32 &&
                ip addr add 10.77.8.1/24 dev $ND_NEG && ip link set $ND_NEG up &&
                ip rule add from 10.77.8.0/24 lookup 4208 priority 4208 || {
                report .setup fail "could not set up $ND_NEG by hand"
                return 1
        }
        echo "networkd's view before the catch-all: $ND_NEG is $(_nd_setup_state $ND_NEG)"

        _nd_catchall "negative check"
        networkctl reload
        local gone=yes
        wait_until 20 bash -c "! ip -4 addr show dev $ND_NEG | grep -q 10.77.8.1 && ! ip rule | grep -q '^4208:'" ||
                gone=no
        echo "after the reload: $ND_NEG is $(_nd_setup_state $ND_NEG)"
        ip addr show dev $ND_NEG
        ip rule
        rules=$(ip rule)
        if [ $gone = yes ]; then
                report - ok "without the drop-ins, a catch-all .network and 'networkctl reload' made networkd take $ND_NEG ($(_nd_setup_state $ND_NEG)), remove its address 10.77.8.1/24 and the routing rule 4208 it did not make"
        else
                report - fail "networkd left $ND_NEG alone even without the drop-ins (state $(_nd_setup_state $ND_NEG)); the coexistence check below proves nothing: $(ip -br addr show dev $ND_NEG) / rules: $(echo "$rules" | tr '\n' ' ')"
        fi
        # networkd never touches the peers of a link it did not create from a .netdev
        if wg show $ND_NEG peers | grep -qxF "$pub"; then
                echo "the peer stays: networkd configures WireGuard only on links of its own .netdev files"
        fi
}

# --- netclientd installed as a package would be ------------------------------------------------

_nd_install() {
        nm_install 10-netmaker.network networkd-netmaker.conf && nm_install_netclientd
}

# The node's saved state: registered with a server that is not reachable here (netclientd works
# offline from its saved state), one network with one peer in $ND_NS. The peer also routes
# 10.98.9.0/24 (a gateway's range), so netclientd adds a route through the link.
_nd_state() { # NODE_KEY PEER_PUB
        local host=41111111-2222-4333-8444-555555555555
        nm_saved_registration $host https://198.18.22.254:9 mqtts://198.18.22.254:9 "$1" || return 1
        (umask 077
        cat > /var/lib/netclient/state.json <<EOF
{"version":1,"disconnected":[],"state":{"host_id":"$host","serial":3,"networks":[{"network":"$ND_NET",
 "node_id":"51111111-2222-4333-8444-555555555555","ipv4":"10.77.9.1/24","listen_port":$ND_PORT,"keepalive":20,"mtu":1420,
 "dns_domain":"nm.internal","connected":true,"peers":[{"host_id":"61111111-2222-4333-8444-555555555555","name":"peer",
 "public_key":"$2","endpoint":"198.18.22.2:$ND_PORT","allowed_ips":["10.77.9.2/32","10.98.9.0/24"],"keepalive":20,"ipv4":"10.77.9.2"}]}]}}
EOF
        )
}

# Everything networkd could have touched, without counters and timestamps (the handshake is
# compared on its own).
_nd_snapshot() {
        echo "## link"
        ip -d link show dev $ND_IF | sed -e 's/ qlen [0-9]*//'
        echo "## addresses"
        ip addr show dev $ND_IF | grep -E '^ +inet'
        echo "## routes (all tables)"
        ip route show table all dev $ND_IF
        echo "## routing rules"
        ip rule show
        echo "## wireguard: public key, port, peers (key, endpoint, allowed IPs, keepalive)"
        wg show $ND_IF public-key
        wg show $ND_IF listen-port
        wg show $ND_IF dump | tail -n +2 | cut -f1,3,4,8
}

_nd_handshake() { wg show $ND_IF latest-handshakes | awk '{ print $2 }'; }

_nd_compare() { # SUB WHAT BEFORE_FILE
        local after
        after=$(mktemp /run/nmvm-nd.XXXXXX)
        _nd_snapshot > "$after"
        if diff -u "$3" "$after"; then
                report "$1" ok "$2 left $ND_IF's link, addresses, routes, peers and the routing rules as they were ($(grep -c . "$3") lines compared)"
        else
                report "$1" fail "$2 changed what netclientd set up: $(diff "$3" "$after" | grep '^[<>]' | head -n 4)"
        fi
        rm -f "$after"
}

_nd_cleanup_netclientd() {
        systemctl stop netclientd.service
        ip link del $ND_IF
        rm -rf /var/lib/netclient
        nm_uninstall 10-netmaker.network networkd-netmaker.conf
        nm_uninstall_netclientd
        _nd_cleanup_networkd
        # the next checks get networkd as the boot left it (networkd.conf.d is read at start)
        systemctl restart systemd-networkd.service
}

check_networkd_coexistence() {
        local bin node_key node_pub peer_key peer_pub before hs0 hs t0 state
        bin=$(nm_binary src/netclientd/netclientd)
        [ -n "$bin" ] || { report - skip "netclientd is not built in $NM_BUILD_DIR"; return 0; }
        if systemctl is-active -q netclientd.service; then
                echo "netclientd.service was running (an earlier check): stopping it"
                systemctl stop netclientd.service
        fi
        defer _nd_cleanup_netclientd

        expect .installed "drop-ins, unit, bus policy, activation file and polkit actions installed" _nd_install ||
                return 1
        # networkd reads networkd.conf.d only when it starts
        expect .networkd_restarted "systemd-networkd restarted with networkd.conf.d/50-netmaker.conf" \
                systemctl restart systemd-networkd.service || return 1
        expect .underlay "networkd configures the underlay $ND_UL from a .network file" _nd_underlay || return 1
        # the catch-all that took the link in the negative check is here too: our file must win
        _nd_catchall "coexistence check"
        networkctl reload
        wait_until 30 _nd_settled

        # the peer: kernel WireGuard in its own namespace
        node_key=$(wg genkey) peer_key=$(wg genkey)
        node_pub=$(wg pubkey <<< "$node_key") peer_pub=$(wg pubkey <<< "$peer_key")
        ip -n $ND_NS link add wg0 type wireguard &&
                ip netns exec $ND_NS wg set wg0 private-key <(echo "$peer_key") listen-port $ND_PORT \
                        peer "$node_pub" endpoint 198.18.22.1:$ND_PORT allowed-ips 10.77.9.1/32 &&
                ip -n $ND_NS addr add 10.77.9.2/24 dev wg0 && ip -n $ND_NS link set wg0 up || {
                report .peer fail "could not set up the peer in $ND_NS"
                return 1
        }
        _nd_state "$node_key" "$peer_pub"

        # D-Bus activation: the first call to the name makes the bus ask systemd for the unit
        state=$(busctl --timeout=60 get-property org.netmaker.Client /org/netmaker/Client org.netmaker.Client State 2>&1)
        echo "State: $state"
        if systemctl is-active -q netclientd.service &&
           journalctl -b -u dbus.service --no-pager | grep -q "Activating via systemd: service name='org.netmaker.Client' unit='netclientd.service'"; then
                report .bus_activation ok "the bus started netclientd.service for the first call (State $state)"
        else
                report .bus_activation fail "netclientd.service is $(systemctl is-active netclientd.service) after a call to org.netmaker.Client: $state"
                return 1
        fi
        if ! wait_until 20 ip link show dev $ND_IF; then
                report .link fail "no link $ND_IF 20 s after netclientd started"
                return 1
        fi
        expect .kernel "$ND_IF is a kernel WireGuard link (generic netlink backend)" \
                bash -c "ip -d link show dev $ND_IF | grep -qw wireguard && journalctl -b -u netclientd.service | grep -q 'WireGuard backend: kernel'" ||
                return 1
        expect .ping "the peer answers through $ND_IF" ping -c2 -W3 10.77.9.2 || return 1
        wait_until 10 bash -c "ip route show dev $ND_IF | grep -q '^10.98.9.0/24'" ||
                report .route fail "netclientd added no route to 10.98.9.0/24 through $ND_IF"
        state=$(_nd_setup_state $ND_IF)
        if [ "$state" = unmanaged ]; then
                report .unmanaged ok "networkctl: $ND_IF is unmanaged (10-netmaker.network wins over the catch-all)"
        else
                report .unmanaged fail "networkctl: $ND_IF is '$state', expected unmanaged"
        fi

        # the rules and the table route netclientd makes for an internet gateway (made with ip here:
        # this network has none), with a harmless destination instead of the default route
        defer "ip rule del priority 32700; ip rule del priority 32701"
        ip rule add priority 32700 lookup main suppress_prefixlength 0 &&
                ip rule add priority 32701 not fwmark $ND_TABLE lookup $ND_TABLE &&
                ip route add 10.97.0.0/16 dev $ND_IF table $ND_TABLE proto static || {
                report .rules fail "could not add the internet gateway rules and route by hand"
                return 1
        }
        before=$(mktemp /run/nmvm-nd.XXXXXX)
        defer "rm -f $before"
        _nd_snapshot > "$before"
        cat "$before"
        hs0=$(_nd_handshake)
        t0=$(up)

        # reload with every .network file changed: networkd re-reads them and reconfigures links
        _nd_catchall "reloaded"
        echo "# reloaded" >> $ND_NETDIR/20-nmvmnd-underlay.network
        networkctl reload
        sleep 1
        wait_until 30 _nd_settled
        sleep 2 # what networkd removes, it removes right after configuring
        networkctl list --no-pager
        _nd_compare .reload_kept "networkctl reload (every .network changed)" "$before"

        systemctl restart systemd-networkd.service
        sleep 1
        wait_until 30 _nd_settled
        sleep 2
        _nd_compare .restart_kept "systemctl restart systemd-networkd" "$before"

        ping -c1 -W3 10.77.9.2 >/dev/null
        hs=$(_nd_handshake)
        if [ "$hs" = "$hs0" ] && [ "$hs0" != 0 ]; then
                report .session ok "the WireGuard session survived both (latest handshake $hs0 unchanged) and the peer still answers"
        elif awk -v a="$t0" -v b="$(up)" 'BEGIN { exit !(b - a > 110) }'; then
                report .session skip "the handshake changed ($hs0 -> $hs), but more than 110 s passed: a normal rekey"
        else
                report .session fail "the WireGuard session was reset: latest handshake $hs0 -> $hs"
        fi
        journalctl -b -u systemd-networkd.service --no-pager -o short-monotonic | grep -E "$ND_IF|$ND_UL|rule" | tail -n 20
}
