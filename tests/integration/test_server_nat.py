"""The server's side of hosts behind NAT (docs/protocol.md §3.4, §3.5, §4.5; docs/topologies.md
"Failover"), with test hosts that speak the protocol and WireGuard initiations built in Python
(nmtest.wgmsg, independent of the C code):

- every network state names the server's observer (its WireGuard key for the network, the endpoint,
  the keepalive, STUN) and failover_after;
- an initiation from a host's key makes the address and port it came from that node's observed
  endpoint, and the viewers get an `update` with it; the observer never answers; a replayed or older
  initiation, one for no network's key, of no host, or garbage changes nothing; two nodes seen at the
  same address reach each other on their reported addresses (one NAT);
- STUN requests are answered with the source address and port when they are at least as large as
  the answer, never when smaller; past udp_rate_limit nothing more is answered;
- check-ins that report no session between two hosts for failover_after on both sides relay the
  pair through the failover relay both have a session with (probes + the relay's allowed IPs), and
  a handshake reported since then lets it connect directly again; nobody else hears of either.
"""

import os
import socket
import time

from nmtest.client import unb64, wait_until
from nmtest.topology import TopoNet, peer_updates
from nmtest.wgmsg import initiation, stun_mapped, stun_request


def observer_of(server, network="office"):
    obs = server.admin("GET", f"/networks/{network}", expect=200)["observer"]
    host, port = obs["endpoint"].rsplit(":", 1)
    return obs, unb64(obs["public_key"]), (host, int(port))


def udp(address="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((address, 0))
    s.settimeout(2)
    return s


def barrier(sock, addr):
    """A STUN request from `sock`, answered: the observer has handled everything sent before it (one
    socket, read in order)."""
    txid = os.urandom(12)
    sock.sendto(stun_request(txid), addr)
    while True:
        data = sock.recv(1500)
        if stun_mapped(data, txid):
            return


def observed(net, name):
    return net.admin("GET", f"/nodes/{net.node[name]}", expect=200)["observed_endpoint"]


def updated(got, name):
    return [(p["name"], p["endpoint"]) for p in peer_updates(got[name], "update")]


def test_observer(server, hosts):
    net = TopoNet(server, hosts, ["a", "b", "c"])
    obs, key, addr = observer_of(server)
    assert obs["endpoint"] == f"127.0.0.1:{addr[1]}"
    state = net.state("a")
    assert state["observer"] == {"public_key": obs["public_key"], "endpoint": obs["endpoint"], "keepalive": 25,
                                 "stun": True}
    assert state["failover_after"] == 60
    a, b = net.h["a"], net.h["b"]
    sa, sb, sx = udp(), udp(), udp()
    ep_a, ep_b = f"127.0.0.1:{sa.getsockname()[1]}", f"127.0.0.1:{sb.getsockname()[1]}"

    # a's initiation: its node is where it came from; b and c hear of it, a hears nothing.
    mark = net.mark()
    first = initiation(a.wg.secret, key)
    sa.sendto(first, addr)
    wait_until(lambda: observed(net, "a") == ep_a, 10, "a's observed endpoint")
    got = net.since(mark)
    assert updated(got, "b") == [("a", ep_a)] and updated(got, "c") == [("a", ep_a)]
    assert got["a"] == []
    # Never an answer.
    sa.settimeout(0.5)
    try:
        data = sa.recv(1500)
        raise AssertionError(f"the observer answered an initiation: {data!r}")
    except socket.timeout:
        pass

    # Replayed (the same datagram) or older (a second before the first) from elsewhere: nothing.
    # A key of no network, a host the server does not know, 148 bytes of garbage: nothing.
    mark = net.mark()
    stranger = os.urandom(32)
    for datagram in (first, initiation(a.wg.secret, key, timestamp=time.time() - 1),
                     initiation(a.wg.secret, os.urandom(32)), initiation(stranger, key),
                     b"\x01\0\0\0" + os.urandom(144)):
        sx.sendto(datagram, addr)
    barrier(sx, addr)
    assert observed(net, "a") == ep_a
    assert all(m == [] for m in net.since(mark).values())

    # b is seen at the same address as a: one NAT, so a and b use each other's reported addresses
    # (b turns from a's observed endpoint to its reported one; a already used b's); c, outside,
    # sees b where it came from.
    mark = net.mark()
    sb.sendto(initiation(b.wg.secret, key), addr)
    wait_until(lambda: observed(net, "b") == ep_b, 10, "b's observed endpoint")
    got = net.since(mark)
    assert updated(got, "c") == [("b", ep_b)]
    assert updated(got, "b") == [("a", "198.18.0.1:51821")]
    assert got["a"] == [] and net.peers("a")["b"]["endpoint"] == "198.18.0.2:51821"
    assert net.peers("c")["a"]["endpoint"] == ep_a

    # STUN: the source address and port, for a request as large as the answer; a bare one (20
    # bytes, smaller than the answer) is never answered.
    txid = os.urandom(12)
    sx.sendto(stun_request(txid), addr)
    assert stun_mapped(sx.recv(1500), txid) == ("127.0.0.1", sx.getsockname()[1])
    sx.settimeout(0.5)
    sx.sendto(stun_request(os.urandom(12), padded=False), addr)
    try:
        data = sx.recv(1500)
        raise AssertionError(f"a bare STUN request was answered: {data!r}")
    except socket.timeout:
        pass
    assert "sends from " + ep_a in server.log()
    for s in (sa, sb, sx):
        s.close()


def test_udp_rate_limit(make_server, broker):
    server = make_server(broker, config={"udp_rate_limit": "3/1m"})
    server.create_network("office", "10.99.0.0/24")
    _, _, addr = observer_of(server)
    s = udp()
    s.settimeout(0.5)
    answers = 0
    for _ in range(6):
        txid = os.urandom(12)
        s.sendto(stun_request(txid), addr)
        try:
            answers += stun_mapped(s.recv(1500), txid) is not None
        except socket.timeout:
            pass
    assert answers == 3
    # Another source address has its own budget (sources are counted by address, not port).
    t = udp("127.0.0.2")
    txid = os.urandom(12)
    t.sendto(stun_request(txid), addr)
    assert stun_mapped(t.recv(1500), txid)


def report(h, peers):
    """A check-in with handshake ages: peers {name_or_host: (handshake or None, since)}."""
    h.report({"type": "checkin", "version": h.version, "listen_ports": {"office": 51821}, "endpoints": h.endpoints,
              "peers": {"office": [{"public_key": p.wg.public_b64, "handshake": hs, "since": since, "rx": 0, "tx": 0}
                                   for p, (hs, since) in peers.items()]}})


def failovers(net):
    return net.admin("GET", "/networks/office/failovers", expect=200)


def test_failover_from_reports(server, hosts):
    net = TopoNet(server, hosts, ["a", "b", "f", "c"])
    a, b, f, c = (net.h[n] for n in "abfc")
    ids = {n: net.node[n] for n in "abfc"}
    addr = {n: net.state(n)["ipv4"].split("/")[0] for n in "abfc"}
    mark = net.mark()
    node = net.admin("PUT", f"/nodes/{ids['f']}/failover", expect=200)
    assert node["roles"]["failover"] is True
    got = net.since(mark)
    assert [m["type"] for m in got["f"]] == ["network-changed"] and got["f"][0]["network"]["roles"]["failover"]
    assert got["a"] == [] and got["b"] == []

    # Only a says it cannot reach b: nothing. Then b says the same: relayed through f.
    mark = net.mark()
    report(a, {b: (None, 100), f: (5, 100), c: (5, 100)})
    net.barrier(["a"])
    assert failovers(net) == []
    report(b, {a: (None, 100), f: (7, 100), c: (5, 100)})
    wait_until(lambda: failovers(net), 10, "the failover")
    (fo,) = failovers(net)
    assert {fo["a"], fo["b"]} == {ids["a"], ids["b"]} and fo["relay"] == ids["f"]
    got = net.since(mark)
    ups = {n: {p["name"]: sorted(p["allowed_ips"]) for p in peer_updates(got[n], "update")} for n in "abfc"}
    assert ups["a"] == {"b": [], "f": sorted([f"{addr['f']}/32", f"{addr['b']}/32"])}
    assert ups["b"] == {"a": [], "f": sorted([f"{addr['f']}/32", f"{addr['a']}/32"])}
    assert got["f"] == [] and got["c"] == []
    probe = net.peers("a")["b"]
    assert probe["endpoint"] == "198.18.0.2:51821" and probe["keepalive"] == 20
    assert 'relayed through "f"' in server.log()

    # A handshake from before the failover changes nothing; one made since lets them connect
    # directly again.
    mark = net.mark()
    report(a, {b: (300, 400), f: (5, 400), c: (5, 400)})
    net.barrier(["a"])
    assert len(failovers(net)) == 1
    time.sleep(1.1)
    report(a, {b: (0, 400), f: (5, 400), c: (5, 400)})
    wait_until(lambda: failovers(net) == [], 10, "the pair direct again")
    got = net.since(mark)
    ups = {n: {p["name"]: sorted(p["allowed_ips"]) for p in peer_updates(got[n], "update")} for n in "abfc"}
    assert ups["a"] == {"b": [f"{addr['b']}/32"], "f": [f"{addr['f']}/32"]}
    assert ups["b"] == {"a": [f"{addr['a']}/32"], "f": [f"{addr['f']}/32"]}
    assert got["f"] == [] and got["c"] == []

    # Without the role nobody relays: the same reports change nothing.
    net.admin("DELETE", f"/nodes/{ids['f']}/failover", expect=200)
    report(a, {b: (None, 500), f: (5, 500), c: (5, 500)})
    report(b, {a: (None, 500), f: (5, 500), c: (5, 500)})
    net.barrier(["a", "b"])
    assert failovers(net) == []
