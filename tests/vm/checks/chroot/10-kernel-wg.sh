# VM checks: kernel WireGuard configured over generic netlink by our library (the wgtool test
# program built from src/netclientd), observed with `wg show`, across three network namespaces.
# Until wgtool is built, the same steps run with `ip`/`wg` so the boot path stays proven, and
# kernel_wg.library reports skip.
# shellcheck shell=bash

WGNS_A=nmvmwg-a
WGNS_B=nmvmwg-b
WGNS_C=nmvmwg-c

# --- the two ways of configuring: our library (wgtool) or the reference tools ------------------
_wgtool() { nm_binary src/netclientd/wgtool; }

wgb_up() { # NETNS IFNAME PRIVATE_KEY_FILE PORT ADDRESS
        local t
        t=$(_wgtool)
        if [ -n "$t" ]; then
                # --backend kernel: never fall back to wireguard-go here
                ip netns exec "$1" "$t" --backend kernel up "$2" --private-key-file "$3" --listen-port "$4" \
                        --address "$5" | tee /dev/stderr | grep -q '"backend":"kernel"'
        else
                ip -n "$1" link add "$2" type wireguard &&
                        ip netns exec "$1" wg set "$2" private-key "$3" listen-port "$4" &&
                        ip -n "$1" addr add "$5" dev "$2" && ip -n "$1" link set "$2" up
        fi
}
wgb_peer() { # NETNS IFNAME PUBLIC_KEY ENDPOINT ALLOWED_IPS(comma-separated); prints wgtool's change summary
        local t
        t=$(_wgtool)
        if [ -n "$t" ]; then
                ip netns exec "$1" "$t" --backend kernel peer-set "$2" --public-key "$3" --endpoint "$4" --allowed-ips "$5"
        else
                ip netns exec "$1" wg set "$2" peer "$3" endpoint "$4" allowed-ips "$5"
        fi
}

# handshake/rx of one peer as seen by the observer: "SECONDS RXBYTES"
_wg_peer_state() { # NETNS IFNAME PUBLIC_KEY
        local hs rx
        hs=$(ip netns exec "$1" wg show "$2" latest-handshakes | awk -v k="$3" '$1 == k { print $2 }')
        rx=$(ip netns exec "$1" wg show "$2" transfer | awk -v k="$3" '$1 == k { print $2 }')
        echo "${hs:-0} ${rx:-0}"
}

check_kernel_wg() {
        local d n via
        if [ -n "$(_wgtool)" ]; then
                via="wgtool ($(_wgtool))"
        else
                via="ip/wg (wgtool not built in $NM_BUILD_DIR)"
        fi
        echo "configuring through $via"
        d=$(mktemp -d /run/nmvm-wg.XXXXXX)
        defer "rm -rf $d"
        for n in $WGNS_A $WGNS_B $WGNS_C; do
                ip netns add $n || return 1
                defer "ip netns del $n"
                ip -n $n link set lo up
        done
        # underlay: a-b and a-c point to point
        ip link add ab netns $WGNS_A type veth peer name ba netns $WGNS_B
        ip link add ac netns $WGNS_A type veth peer name ca netns $WGNS_C
        ip -n $WGNS_A addr add 198.18.44.1/30 dev ab
        ip -n $WGNS_B addr add 198.18.44.2/30 dev ba
        ip -n $WGNS_A addr add 198.18.44.5/30 dev ac
        ip -n $WGNS_C addr add 198.18.44.6/30 dev ca
        ip -n $WGNS_A link set ab up; ip -n $WGNS_A link set ac up
        ip -n $WGNS_B link set ba up; ip -n $WGNS_C link set ca up

        (umask 077; for n in a b c; do wg genkey > $d/$n.key; wg pubkey < $d/$n.key > $d/$n.pub; done)
        local pa pb pc
        pa=$(cat $d/a.pub) pb=$(cat $d/b.pub) pc=$(cat $d/c.pub)

        expect .up "kernel wireguard links up with key, port and address" bash -c "
                $(declare -f _wgtool nm_binary wgb_up)
                wgb_up $WGNS_A wg0 $d/a.key 51820 10.99.44.1/24 &&
                wgb_up $WGNS_B wg0 $d/b.key 51820 10.99.44.2/24 &&
                wgb_up $WGNS_C wg0 $d/c.key 51820 10.99.44.3/24" || return 1
        expect .peers "peers written" bash -c "
                $(declare -f _wgtool nm_binary wgb_peer)
                wgb_peer $WGNS_A wg0 $pb 198.18.44.2:51820 10.99.44.2/32 &&
                wgb_peer $WGNS_A wg0 $pc 198.18.44.6:51820 10.99.44.3/32 &&
                wgb_peer $WGNS_B wg0 $pa 198.18.44.1:51820 10.99.44.1/32 &&
                wgb_peer $WGNS_C wg0 $pa 198.18.44.5:51820 10.99.44.1/32" || return 1

        expect .ping "a pings b and c through the kernel tunnels" bash -c "
                ip netns exec $WGNS_A ping -c1 -W3 10.99.44.2 && ip netns exec $WGNS_A ping -c1 -W3 10.99.44.3" ||
                return 1

        # the observer: wg reads the kernel's view back over netlink
        ip netns exec $WGNS_A wg show wg0
        expect .observed "wg show lists both peers with their allowed IPs" bash -c "
                ip netns exec $WGNS_A wg show wg0 allowed-ips | grep -qxF '$pb	10.99.44.2/32' &&
                ip netns exec $WGNS_A wg show wg0 allowed-ips | grep -qxF '$pc	10.99.44.3/32' &&
                [ \$(ip netns exec $WGNS_A wg show wg0 peers | wc -l) = 2 ]" || return 1

        # a one-peer change must leave the other peer's session alone
        local before after rc
        before=$(_wg_peer_state $WGNS_A wg0 "$pc")
        sleep 1.1 # a new handshake would now carry a different second
        local change
        change=$(wgb_peer $WGNS_A wg0 "$pb" 198.18.44.2:51820 10.99.44.2/32,10.99.45.2/32 2>&1)
        rc=$?
        echo "change to b: ${change:-(no output)}"
        if [ $rc != 0 ]; then
                report .delta fail "giving peer b another allowed IP failed: $change"
                return 1
        elif [ -n "$(_wgtool)" ] && [ "$change" != '{"added":0,"updated":1,"removed":0,"replace_peers":false}' ]; then
                report .delta fail "one peer's change should be 1 update, no REPLACE_PEERS; wgtool wrote $change"
        else
                report .delta ok "peer b alone gets another allowed IP${change:+: $change}"
        fi
        expect .delta_applied "wg show sees b's new allowed IP" bash -c "
                ip netns exec $WGNS_A wg show wg0 allowed-ips | grep -F '$pb' | grep -q 10.99.45.2/32" || return 1
        ip netns exec $WGNS_A ping -c1 -W3 10.99.44.3 >/dev/null
        after=$(_wg_peer_state $WGNS_A wg0 "$pc")
        echo "peer c before the change: handshake/rx $before, after: $after"
        if [ "${before%% *}" != 0 ] && [ "${before%% *}" = "${after%% *}" ] &&
           [ "${after##* }" -gt "${before##* }" ]; then
                report .kept_session ok "peer c kept its handshake (${before%% *}) and counters ($before -> $after)"
        else
                report .kept_session fail "peer c's session was reset by a change to b: handshake/rx $before -> $after"
        fi

        if [ -n "$(_wgtool)" ]; then
                # the desired state equal to the kernel's: reading back and diffing finds nothing
                printf '{"peers":[{"public_key":"%s","endpoint":"198.18.44.2:51820","allowed_ips":["10.99.44.2/32","10.99.45.2/32"]},{"public_key":"%s","endpoint":"198.18.44.6:51820","allowed_ips":["10.99.44.3/32"]}]}' \
                        "$pb" "$pc" > $d/same.json
                change=$(ip netns exec $WGNS_A "$(_wgtool)" --backend kernel sync wg0 $d/same.json 2>&1)
                if [ "$change" = '{"added":0,"updated":0,"removed":0,"replace_peers":false}' ]; then
                        report .sync_noop ok "syncing the state the kernel already has changes nothing"
                else
                        report .sync_noop fail "syncing the state the kernel already has wrote: $change"
                fi
                report .library ok "configured through $via"
        else
                report .library skip "wgtool is not built in $NM_BUILD_DIR: configured with ip/wg"
        fi
}
