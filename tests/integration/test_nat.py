"""Hosts behind NAT connect directly, else relayed automatically (docs/topologies.md "Endpoints",
"Failover"), on a test bed of namespaces (nmtest.natbed): netmakerd in a "public" namespace, a public
host f with the failover relay role, and four sites, each a NAT router (nftables) with a netclientd
host behind it: a and b behind endpoint-independent NATs with port remapping (20000-30000), c and d
behind symmetric NATs (`masquerade random`); a second host a2 shares a's NAT and LAN.

- Each router behaves as it should, measured from behind it with a UDP probe: the same mapping for
  two destinations and unsolicited packets let in (eim), or a new mapping per destination and
  unsolicited packets dropped (symmetric).
- The server learns each node's endpoint from its WireGuard packets (address and NAT-mapped port)
  and from the source of its HTTPS requests; hosts learn the public address from the server's STUN.
- The matrix: a-b direct through both NATs' mapped ports, a-c/a-d/b-c/b-d direct (the EIM side learns
  the symmetric side's mapping from its initiation), a-a2 on their LAN addresses (one NAT), c-d
  relayed through f automatically: `wg show`
  on each side shows the endpoint and allowed IPs of every path, and every pair pings. The time from
  join to first ping is printed for each pair (a figure, not an assertion).
- d's NAT turns endpoint-independent: c and d find each other directly, the server stops relaying
  them, the pings go on.
"""

import itertools
import threading
import time

import pytest

from nmtest.natbed import NatBed
from nmtest.node import wait_until

FAILOVER_AFTER = 10
SITES = (("a", "eim", 1), ("b", "eim", 2), ("c", "symmetric", 3), ("d", "symmetric", 4))
RELAYED = {("c", "d")}


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    b = NatBed(tmp_path_factory.mktemp("natbed"), subnet=50,
               server_config={"failover_after": f"{FAILOVER_AFTER}s"},
               node_env={"NETCLIENTD_CHECKIN_INTERVAL": "5"})
    try:
        b.start()
        b.add_public_host("f", 20)
        for name, kind, index in SITES:
            b.add_site(name, kind, index)
        b.add_lan_host("a", "a2")
        yield b
    finally:
        b.cleanup()


def wan(bed, name):
    """Where the outside sees a host: its site's WAN address, or its own (public)."""
    return bed.sites[bed.site_of[name]]["wan"] if name in bed.site_of else bed.nodes[name].netns.address


def kind(bed, name):
    return bed.sites[bed.site_of[name]]["kind"] if name in bed.site_of else "public"


def test_nat_behaviour(bed):
    for name, kind, _ in SITES:
        got = bed.probe_nat(name)
        want = "independent" if kind == "eim" else "dependent"
        assert got["mapping"] == want and got["filtering"] == want, (name, kind, got)
        ports = [int(m.rsplit(":", 1)[1]) for m in got["mapped"]]
        assert all(m.startswith(bed.sites[name]["wan"] + ":") for m in got["mapped"]), got
        if kind == "eim":
            assert all(20000 <= p <= 30000 for p in ports), got


def ping_until(node, address, deadline, out, key):
    while time.monotonic() < deadline:
        if node.ping(address, count=1, timeout=1):
            out[key] = time.monotonic()
            return
        time.sleep(0.2)


def endpoint_host(ep):
    return ep.rsplit(":", 1)[0] if ep else None


def endpoint_port(ep):
    return int(ep.rsplit(":", 1)[1]) if ep else None


def test_matrix(bed):
    f = bed.nodes["f"]
    bed.join(f)
    bed.server.admin("PUT", f"/nodes/{bed.node_id(f)}/failover", expect=200)
    names = ["f"] + [s[0] for s in SITES] + ["a2"]
    addr = {"f": bed.mesh_address(f)}
    # Every pair is pinged from its first node, from the moment its second node has joined, until it
    # answers: the time from the start of the later `netclient join` to the first answer.
    first_ping, threads = {}, []
    deadline = time.monotonic() + 120
    for name in names[1:]:
        bed.join(bed.nodes[name])
        addr[name] = bed.mesh_address(bed.nodes[name])
        for x in names[:names.index(name)]:
            t = threading.Thread(target=ping_until, args=(bed.nodes[x], addr[name], deadline, first_ping, (x, name)))
            t.start()
            threads.append(t)
    key = {n: bed.public_key(bed.nodes[n]) for n in names}
    for t in threads:
        t.join()
    missing = [p for p in itertools.combinations(names, 2) if p not in first_ping]
    assert not missing, f"no ping for {missing}:\n" + "\n".join(
        f"{n}:\n{bed.nodes[n].log_tail(30)}" for n in sorted({x for p in missing for x in p}))

    # The server's view: every node's observed endpoint on its router's WAN address (f: its own),
    # the HTTPS source addresses, the public addresses STUN gave the hosts.
    nodes = {n["host_name"]: n for n in bed.server.admin("GET", f"/nodes?network={bed.network}", expect=200)}
    hosts = {h["name"]: h for h in bed.server.admin("GET", "/hosts", expect=200)}
    for n in names:
        assert endpoint_host(nodes[n]["observed_endpoint"]) == wan(bed, n), nodes[n]
        assert hosts[n]["http_address"] == wan(bed, n), hosts[n]
        wait_until(lambda: bed.status(bed.nodes[n]).get("public_address") == wan(bed, n), 20,
                   f"{n}'s public address from the server's STUN")
    for n in ("a", "b", "a2"):
        assert 20000 <= endpoint_port(nodes[n]["observed_endpoint"]) <= 30000, nodes[n]
    assert nodes["a"]["observed_endpoint"] != nodes["a2"]["observed_endpoint"]
    assert endpoint_port(nodes["f"]["observed_endpoint"]) == 51821

    # c and d: relayed through f, automatically.
    wait_until(lambda: bed.server.admin("GET", f"/networks/{bed.network}/failovers", expect=200), 30, "a failover")
    (fo,) = bed.server.admin("GET", f"/networks/{bed.network}/failovers", expect=200)
    assert {fo["a"], fo["b"]} == {nodes["c"]["id"], nodes["d"]["id"]} and fo["relay"] == nodes["f"]["id"]

    # What each side's WireGuard says about every path.
    wg = {n: bed.nodes[n].wg_peers(bed.ifname) for n in names}
    rows = []
    for x, y in itertools.combinations(names, 2):
        px, py = wg[x][key[y]], wg[y][key[x]]
        if (x, y) in RELAYED:
            # Probes both ways (endpoint, keepalive, no allowed IPs); f carries each other's address.
            assert px["allowed_ips"] == [] and py["allowed_ips"] == [], (px, py)
            assert px["keepalive"] > 0 and py["keepalive"] > 0
            assert f"{addr[y]}/32" in wg[x][key["f"]]["allowed_ips"]
            assert f"{addr[x]}/32" in wg[y][key["f"]]["allowed_ips"]
            assert f"{addr[y]}/32" not in wg["f"][key[x]]["allowed_ips"]
            path = "relayed via f"
        elif bed.site_of.get(x) and bed.site_of.get(x) == bed.site_of.get(y):
            # Behind one NAT: each other's LAN address and listen port.
            assert f"{addr[y]}/32" in px["allowed_ips"] and f"{addr[x]}/32" in py["allowed_ips"], (px, py)
            assert px["endpoint"] == f"{bed.nodes[y].netns.address}:51821", (x, y, px)
            assert py["endpoint"] == f"{bed.nodes[x].netns.address}:51821", (x, y, py)
            assert px["latest_handshake"] > 0 and py["latest_handshake"] > 0, (x, y, px, py)
            path = "direct (LAN)"
        else:
            assert f"{addr[y]}/32" in px["allowed_ips"] and f"{addr[x]}/32" in py["allowed_ips"], (px, py)
            assert px["latest_handshake"] > 0 and py["latest_handshake"] > 0, (x, y, px, py)
            # Each side sends to the other's NAT (f: its own address).
            assert endpoint_host(px["endpoint"]) == wan(bed, y), (x, y, px)
            assert endpoint_host(py["endpoint"]) == wan(bed, x), (x, y, py)
            for end, other in ((px, y), (py, x)):
                if kind(bed, other) == "eim":
                    assert 20000 <= endpoint_port(end["endpoint"]) <= 30000, (other, end)
            path = "direct"
        took = first_ping[(x, y)] - max(bed.joined_at[x], bed.joined_at[y])
        rows.append((x, y, path, px["endpoint"], py["endpoint"], took))

    # Both directions ping, relayed or not.
    for x, y in itertools.permutations(names, 2):
        assert bed.nodes[x].ping(addr[y], count=1, timeout=2) or bed.nodes[x].ping(addr[y], count=2, timeout=2), (x, y)

    kinds = {n: kind(bed, n) for n in names}
    print(f"\nNAT matrix (failover_after={FAILOVER_AFTER}s, check-ins every 5 s, wireguard-go; join to first ping):")
    for x, y, path, ex, ey, took in rows:
        print(f"  {x} ({kinds[x]}) - {y} ({kinds[y]}): {path:14} {x}->{ex}  {y}->{ey}  {took:5.1f} s")


def test_revert_when_direct_works(bed):
    c, d = bed.nodes["c"], bed.nodes["d"]
    key_c, key_d = bed.public_key(c), bed.public_key(d)
    addr_c, addr_d = bed.mesh_address(c), bed.mesh_address(d)
    assert bed.server.admin("GET", f"/networks/{bed.network}/failovers", expect=200), "test_matrix relays c-d"

    t0 = time.monotonic()
    bed.set_nat("d", "eim")
    wait_until(lambda: bed.server.admin("GET", f"/networks/{bed.network}/failovers", expect=200) == [], 90,
               "c and d direct again")
    took = time.monotonic() - t0
    # The deltas reach c and d a moment after the server decided.
    wait_until(lambda: f"{addr_d}/32" in c.wg_peers(bed.ifname)[key_d]["allowed_ips"] and
               f"{addr_c}/32" in d.wg_peers(bed.ifname)[key_c]["allowed_ips"], 10, "the direct entries")
    wc, wd = c.wg_peers(bed.ifname), d.wg_peers(bed.ifname)
    key_f = bed.public_key(bed.nodes["f"])
    assert f"{addr_d}/32" not in wc[key_f]["allowed_ips"] and f"{addr_c}/32" not in wd[key_f]["allowed_ips"]
    assert endpoint_host(wc[key_d]["endpoint"]) == bed.sites["d"]["wan"]
    assert endpoint_host(wd[key_c]["endpoint"]) == bed.sites["c"]["wan"]
    assert c.ping(addr_d, count=2, timeout=2) and d.ping(addr_c, count=2, timeout=2)
    assert "reach each other directly again" in bed.server.log()
    print(f"\nd's NAT became endpoint-independent: c-d direct again after {took:.1f} s "
          f"(c->{wc[key_d]['endpoint']}, d->{wd[key_c]['endpoint']})")
