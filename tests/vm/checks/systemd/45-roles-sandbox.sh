# VM checks: the roles of a node applied by netclientd.service as shipped (its sandbox:
# ProtectKernelTunables= with ReadWritePaths= for the forwarding sysctls, ProtectKernelModules=,
# RestrictAddressFamilies=, SystemCallFilter=) on kernel WireGuard: an egress gateway turns on IP
# forwarding and installs our nftables table through libnftables; an internet gateway client gets
# its routing table, policy rules and the fwmark on the kernel device, and reaches an "internet"
# address through the tunnel while the tunnel's own packets, whose endpoint the main table reaches
# only through its default route, keep that route (the fwmark works); a restart of the service
# keeps all of it.
# nmvm-units: dbus.service polkit.service
# shellcheck shell=bash

RL_NS=nmvmrl-peer      # the peer (the internet gateway) in its own namespace
RL_UL=nmvmrl0          # the underlay link in the guest
RL_NET=nmvmrl          # the network: netclientd's link is nm-nmvmrl
RL_IF=nm-nmvmrl
RL_PORT=51831
RL_TABLE=$((0x4e4d0000 | RL_PORT)) # src/netclientd/routing.h: base | listen port
RL_ENDPOINT=198.18.25.2            # the peer's endpoint: reached through the guest's default route only
RL_INET=203.0.113.77               # "the internet", behind the peer

# The peer: kernel WireGuard in a namespace, its endpoint on its loopback (so the guest reaches it
# only through its default route), "the internet" on its loopback too.
_rl_peer() { # NODE_PUB PEER_KEY
        ip netns add $RL_NS || return 1
        ip -n $RL_NS link set lo up
        ip link add $RL_UL type veth peer name ${RL_UL}p netns $RL_NS || return 1
        ip addr add 198.18.24.1/24 dev $RL_UL && ip link set $RL_UL up || return 1
        ip -n $RL_NS addr add 198.18.24.2/24 dev ${RL_UL}p && ip -n $RL_NS link set ${RL_UL}p up || return 1
        ip -n $RL_NS addr add $RL_ENDPOINT/32 dev lo && ip -n $RL_NS addr add $RL_INET/32 dev lo || return 1
        ip -n $RL_NS link add wg0 type wireguard &&
                ip netns exec $RL_NS wg set wg0 private-key <(echo "$2") listen-port $RL_PORT \
                        peer "$1" allowed-ips 10.77.10.1/32 &&
                ip -n $RL_NS addr add 10.77.10.2/24 dev wg0 && ip -n $RL_NS link set wg0 up || return 1
        # The guest's uplink: its default route goes to the peer's namespace (metric 5 wins over any
        # default the guest may have).
        ip route add default via 198.18.24.2 dev $RL_UL metric 5
}

_rl_state() { # NODE_KEY PEER_PUB
        local host=42222222-2222-4333-8444-555555555555 gw=62222222-2222-4333-8444-555555555555
        nm_saved_registration $host https://198.18.24.254:9 mqtts://198.18.24.254:9 "$1" || return 1
        (umask 077
        cat > /var/lib/netclient/state.json <<EOF
{"version":1,"disconnected":[],"state":{"host_id":"$host","serial":3,"networks":[{"network":"$RL_NET",
 "node_id":"52222222-2222-4333-8444-555555555555","ipv4":"10.77.10.1/24","listen_port":$RL_PORT,"keepalive":20,"mtu":1420,
 "dns_domain":"nm.internal","connected":true,
 "roles":{"egress_ranges":["192.168.77.0/24"],"egress_nat":true,"internet_gateway_via":"$gw"},
 "peers":[{"host_id":"72222222-2222-4333-8444-555555555555","name":"gateway","public_key":"$2",
 "endpoint":"$RL_ENDPOINT:$RL_PORT","allowed_ips":["10.77.10.2/32","0.0.0.0/0"],"keepalive":20,"ipv4":"10.77.10.2"}]}]}}
EOF
        )
}

_rl_rules() {
        ip rule | grep -q "^32700:.*lookup main suppress_prefixlength 0" &&
                ip rule | grep -q "^32701:.*not from all fwmark $(printf '0x%x' $RL_TABLE) lookup $RL_TABLE"
}

_rl_everything() {
        [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ] &&
                nft list table inet netmaker | grep -q "192.168.77.0/24" &&
                nft list table inet netmaker | grep -q masquerade && _rl_rules &&
                ip route show table $RL_TABLE | grep -q "^default dev $RL_IF" &&
                [ "$(wg show $RL_IF fwmark)" = "$(printf '0x%x' $RL_TABLE)" ]
}

_rl_cleanup() {
        systemctl stop netclientd.service
        ip link del $RL_IF
        ip route del default via 198.18.24.2 dev $RL_UL metric 5
        ip link del $RL_UL
        ip netns del $RL_NS
        ip rule del priority 32701
        ip rule del priority 32700
        nft delete table inet netmaker
        rm -rf /var/lib/netclient
        nm_uninstall_netclientd
}

check_roles_sandbox() {
        local bin node_key node_pub peer_key peer_pub state fwd0
        bin=$(nm_binary src/netclientd/netclientd)
        [ -n "$bin" ] || { report - skip "netclientd is not built in $NM_BUILD_DIR"; return 0; }
        if systemctl is-active -q netclientd.service; then
                systemctl stop netclientd.service
        fi
        fwd0=$(cat /proc/sys/net/ipv4/ip_forward)
        defer "echo $fwd0 > /proc/sys/net/ipv4/ip_forward"
        defer _rl_cleanup
        echo 0 > /proc/sys/net/ipv4/ip_forward

        expect .installed "unit, bus policy, activation file and polkit actions installed" nm_install_netclientd || return 1
        node_key=$(wg genkey) peer_key=$(wg genkey)
        node_pub=$(wg pubkey <<< "$node_key") peer_pub=$(wg pubkey <<< "$peer_key")
        expect .peer "the gateway peer (kernel WireGuard) in $RL_NS, the guest's default route to it" \
                _rl_peer "$node_pub" "$peer_key" || return 1
        _rl_state "$node_key" "$peer_pub"

        state=$(busctl --timeout=60 get-property org.netmaker.Client /org/netmaker/Client org.netmaker.Client State 2>&1)
        echo "State: $state"
        systemctl is-active -q netclientd.service || {
                report .started fail "netclientd.service is $(systemctl is-active netclientd.service): $state"
                return 1
        }
        if ! wait_until 20 _rl_everything; then
                report .applied fail "not everything in place 20 s after the start: ip_forward=$(cat /proc/sys/net/ipv4/ip_forward), table: $(nft list table inet netmaker 2>&1 | head -n 3 | tr '\n' ' '), rules: $(ip rule | tr '\n' ' '), fwmark: $(wg show $RL_IF fwmark 2>&1)"
                journalctl -b -u netclientd.service --no-pager | tail -n 40
                return 1
        fi
        report .forwarding ok "inside the sandbox (ProtectKernelTunables=yes) netclientd turned on net.ipv4.ip_forward"
        report .nftables ok "and installed table inet netmaker through libnftables ($(nft list table inet netmaker | grep -c .) lines, masquerade for 192.168.77.0/24)"
        report .routing ok "internet gateway: table $RL_TABLE with the default route, rules 32700/32701, fwmark $(wg show $RL_IF fwmark) on the kernel device, src_valid_mark=$(cat /proc/sys/net/ipv4/conf/all/src_valid_mark)"
        nft list table inet netmaker
        ip rule

        # The tunnel's UDP packets go to an endpoint only the main default route reaches: without
        # the mark they would be routed into the tunnel itself and nothing would arrive.
        expect .internet "$RL_INET answers through the tunnel (its packets are marked and keep the main table)" \
                ping -c2 -W3 $RL_INET || return 1
        ip route get $RL_INET
        expect .route_get "ip route get $RL_INET chooses $RL_IF in table $RL_TABLE" \
                bash -c "ip route get $RL_INET | grep -q 'dev $RL_IF table $RL_TABLE'"

        systemctl restart netclientd.service
        if _rl_everything && ping -c1 -W3 $RL_INET >/dev/null; then
                report .restart ok "systemctl restart: forwarding, the table, the rules and the route were kept and traffic flows"
        else
                report .restart fail "after systemctl restart: $(ip rule | tr '\n' ' ') / $(nft list table inet netmaker 2>&1 | head -n 2)"
        fi
        sleep 2
        if _rl_everything; then
                report .reconciled ok "the restarted service reconciled them without change"
        else
                report .reconciled fail "the restarted service changed what it should have kept"
        fi
        if journalctl -b -u netclientd.service --no-pager | grep -qiE "Failed to (turn on|set up forwarding|add the routing rule|set net)"; then
                report .journal fail "$(journalctl -b -u netclientd.service --no-pager | grep -iE 'Failed to' | head -n 2)"
        else
                report .journal ok "no forwarding or routing failure in netclientd's journal"
        fi
}
