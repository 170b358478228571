# VM checks: mesh DNS with systemd as PID 1 and the real systemd-resolved. netclientd is installed
# as a package would be and started by the bus, with a saved network (names of itself, a peer and a
# custom name; the server is a small stand-in on loopback that only answers the leave calls). Its
# responder on the mesh address is registered with resolved for ~<network>.<domain> (not the
# default route), `resolvectl query` and the stub 127.0.0.53 are answered through it, a resolved
# restart gets the registration back, and after `netclient leave` the link's DNS settings are gone.
# nmvm-units: dbus.service polkit.service systemd-resolved.service
# shellcheck shell=bash

DR_NET=nmvmdns
DR_IF=nm-nmvmdns
DR_ZONE=$DR_NET.nm.internal
DR_PORT=18099 # the stand-in server on 127.0.0.1 (inside the guest only)

_dr_install() {
        nm_install 10-netmaker.network && nm_install_netclientd || return 1
        if systemctl is-active -q systemd-networkd.service; then networkctl reload; fi
        return 0
}

# The saved state: registered with the stand-in, one network with this host's name, a peer and a
# custom name.
_dr_state() {
        local host=42111111-2222-4333-8444-555555555555
        nm_saved_registration $host http://127.0.0.1:$DR_PORT mqtt://127.0.0.1:9 "$(wg genkey)" || return 1
        (umask 077
        cat > /var/lib/netclient/state.json <<EOF
{"version":1,"disconnected":[],"state":{"host_id":"$host","serial":3,"networks":[{"network":"$DR_NET",
 "node_id":"52111111-2222-4333-8444-555555555555","ipv4":"10.77.10.1/24","listen_port":51831,"keepalive":20,"mtu":1420,
 "dns_domain":"nm.internal","connected":true,"host_name":"vmnode","dns":[{"name":"printer","ipv4":"192.168.50.7"}],
 "peers":[{"host_id":"62111111-2222-4333-8444-555555555555","name":"peer",
 "public_key":"$(wg genkey | wg pubkey)","endpoint":"198.18.23.2:51831","allowed_ips":["10.77.10.2/32"],"keepalive":20,"ipv4":"10.77.10.2"}]}]}}
EOF
        )
}

# Plays netmakerd for Leave: DELETE /api/v1/host/networks/NET and DELETE /api/v1/host answer 204,
# anything else 503 (netclientd then simply stays offline).
_dr_standin() {
        cat > /run/nmvm-dns-standin.py <<'EOF'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def _answer(self):
        code = 204 if self.command == "DELETE" and self.path.startswith("/api/v1/host") else 503
        self.send_response(code)
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_PUT = do_POST = do_DELETE = _answer
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
        systemd-run --unit=nmvm-dns-standin /usr/bin/python3 /run/nmvm-dns-standin.py $DR_PORT
}

_dr_cleanup() {
        systemctl stop netclientd.service nmvm-dns-standin.service
        ip link del $DR_IF 2>/dev/null
        rm -rf /var/lib/netclient /run/nmvm-dns-standin.py
        nm_uninstall 10-netmaker.network
        nm_uninstall_netclientd
}

_dr_registered() {
        local st
        st=$(resolvectl status $DR_IF 2>&1)
        grep -q "DNS Servers: 10.77.10.1" <<< "$st" && grep -q "~$DR_ZONE" <<< "$st" && grep -q -- "-DefaultRoute" <<< "$st"
}

_dr_query() { # NAME WANT: resolvectl answers through the link
        local out
        out=$(resolvectl query --cache=no "$1" 2>&1)
        echo "$out"
        grep -q "$2" <<< "$out" && grep -q "link: $DR_IF" <<< "$out"
}

check_dns_resolved() {
        local bin state out
        bin=$(nm_binary src/netclientd/netclientd)
        [ -n "$bin" ] || { report - skip "netclientd is not built in $NM_BUILD_DIR"; return 0; }
        systemctl is-active -q systemd-resolved.service || { report - fail "systemd-resolved is not running"; return 1; }
        if systemctl is-active -q netclientd.service; then
                echo "netclientd.service was running (an earlier check): stopping it"
                systemctl stop netclientd.service
        fi
        defer _dr_cleanup
        expect .installed "unit, bus policy, activation file, polkit actions and networkd drop-in installed" _dr_install ||
                return 1
        _dr_state
        expect .standin "the stand-in server runs on 127.0.0.1:$DR_PORT" _dr_standin || return 1

        # The bus starts the unit; it makes the link from the saved state and registers its DNS.
        state=$(busctl --timeout=60 get-property org.netmaker.Client /org/netmaker/Client org.netmaker.Client State 2>&1)
        echo "State: $state"
        if ! wait_until 30 _dr_registered; then
                report .registered fail "resolved has no DNS for $DR_IF 30 s after netclientd started: $(resolvectl status $DR_IF 2>&1 | tr '\n' ' ')"
                journalctl -b -u netclientd.service --no-pager | tail -n 30
                return 1
        fi
        report .registered ok "resolvectl status $DR_IF: DNS server 10.77.10.1, domain ~$DR_ZONE, not the default route"
        resolvectl status $DR_IF
        state=$(busctl get-property org.netmaker.Client /org/netmaker/Client/network/$DR_NET org.netmaker.Client.Network DNSState)
        if [ "$state" = 's "resolved"' ]; then
                report .state ok "DNSState is resolved"
        else
                report .state fail "DNSState is $state"
        fi

        expect .query_peer "resolvectl query peer.$DR_ZONE is answered (10.77.10.2) through $DR_IF" \
                _dr_query peer.$DR_ZONE 10.77.10.2
        expect .query_self "resolvectl query vmnode.$DR_ZONE (this host) is answered (10.77.10.1)" \
                _dr_query vmnode.$DR_ZONE 10.77.10.1
        expect .query_custom "resolvectl query printer.$DR_ZONE (a custom name) is answered (192.168.50.7)" \
                _dr_query printer.$DR_ZONE 192.168.50.7
        out=$(/usr/bin/python3 "$NM_SRC_DIR/tests/integration/nmtest/dns.py" 127.0.0.53 peer.$DR_ZONE A)
        echo "stub: $out"
        if grep -q '"addresses": \["10.77.10.2"\]' <<< "$out"; then
                report .stub ok "the stub resolver 127.0.0.53 answers peer.$DR_ZONE"
        else
                report .stub fail "the stub resolver 127.0.0.53 said: $out"
        fi
        out=$(resolvectl query --cache=no nobody.$DR_ZONE 2>&1)
        if grep -qi "not found\|does not exist\|NXDOMAIN" <<< "$out"; then
                report .nxdomain ok "an unknown name in the zone does not exist: $(head -n1 <<< "$out")"
        else
                report .nxdomain fail "nobody.$DR_ZONE: $out"
        fi

        # resolved restarts: netclientd notices and registers the link again.
        systemctl restart systemd-resolved.service
        if wait_until 20 _dr_registered && _dr_query peer.$DR_ZONE 10.77.10.2 > /dev/null; then
                report .resolved_restart ok "after systemctl restart systemd-resolved the link is registered again and answers"
        else
                report .resolved_restart fail "after a resolved restart: $(resolvectl status $DR_IF 2>&1 | tr '\n' ' ')"
        fi

        # Leave: the link and its DNS settings go; resolved no longer knows the zone.
        expect .leave "netclient leave $DR_NET" "$(nm_binary src/netclient/netclient)" leave $DR_NET || return 1
        wait_until 20 bash -c "! ip link show dev $DR_IF" >/dev/null 2>&1
        out=$(resolvectl status 2>&1)
        if ip link show dev $DR_IF >/dev/null 2>&1 || grep -q "$DR_ZONE" <<< "$out"; then
                report .left fail "after leave: $(ip -br link show dev $DR_IF 2>&1) / $(grep -c "$DR_ZONE" <<< "$out") mention(s) of the zone in resolvectl status"
        else
                report .left ok "after leave $DR_IF and its DNS settings are gone (resolvectl status names no $DR_ZONE)"
        fi
        if resolvectl query --cache=no peer.$DR_ZONE > /dev/null 2>&1; then
                report .left_query fail "peer.$DR_ZONE still resolves after leave"
        else
                report .left_query ok "peer.$DR_ZONE no longer resolves"
        fi
}
