"""Endpoint choice per pair on the server (docs/protocol.md §4.5): hosts behind the same NAT (the
same reported public address) reach each other on their local addresses, others on the public
address; a changed report reaches exactly the viewers whose chosen endpoint changed, as `update`."""

from nmtest.topology import TopoNet, peer_updates


def report(h, endpoints, public_ip=None):
    r = {"type": "checkin", "version": h.version, "listen_ports": {"office": 51821}, "endpoints": endpoints}
    if public_ip:
        r["public_ip"] = public_ip
    h.report(r)


def endpoints(net, viewer):
    return {n: p["endpoint"] for n, p in net.peers(viewer).items()}


def updated(got, name):
    return [(p["name"], p["endpoint"]) for p in peer_updates(got[name], "update")]


def test_endpoint_per_pair(server, hosts):
    eps = {"a": ["192.168.1.10"], "b": ["10.0.0.5", "192.168.1.20"], "c": ["172.16.0.3"], "d": ["198.18.0.4"]}
    net = TopoNet(server, hosts, ["a", "b", "c", "d"], endpoints=eps)
    report(net.h["a"], eps["a"], "203.0.113.1")
    report(net.h["b"], eps["b"], "203.0.113.1")
    report(net.h["c"], eps["c"], "198.51.100.7")
    net.barrier()

    # a and b share a NAT: b's address on a's subnet (not its first); the others see b's public one.
    assert endpoints(net, "a") == {"b": "192.168.1.20:51821", "c": "198.51.100.7:51821", "d": "198.18.0.4:51821"}
    assert endpoints(net, "b")["a"] == "192.168.1.10:51821"
    assert endpoints(net, "c")["b"] == "203.0.113.1:51821"
    assert endpoints(net, "d") == {"a": "203.0.113.1:51821", "b": "203.0.113.1:51821",
                                   "c": "198.51.100.7:51821"}
    host_b = server.admin("GET", f"/hosts/{net.h['b'].host_id}", expect=200)
    assert host_b["public_endpoint"] == "203.0.113.1"

    # b's local address changes: only a (which uses it) hears of it.
    mark = net.mark()
    eps["b"] = ["10.0.0.5", "192.168.1.21"]
    report(net.h["b"], eps["b"], "203.0.113.1")
    got = net.since(mark)
    assert updated(got, "a") == [("b", "192.168.1.21:51821")]
    assert got["b"] == [] and got["c"] == [] and got["d"] == []

    # The same report again: nothing.
    mark = net.mark()
    report(net.h["b"], eps["b"], "203.0.113.1")
    assert all(m == [] for m in net.since(mark).values())

    # b moves behind another NAT: everybody sees its new public address, and b now reaches a on
    # a's public address.
    mark = net.mark()
    report(net.h["b"], eps["b"], "203.0.113.2")
    got = net.since(mark)
    assert updated(got, "a") == [("b", "203.0.113.2:51821")]
    assert updated(got, "c") == [("b", "203.0.113.2:51821")]
    assert updated(got, "d") == [("b", "203.0.113.2:51821")]
    assert updated(got, "b") == [("a", "203.0.113.1:51821")]

    # The same over HTTP, without a public address (none found): the viewers that used it change.
    mark = net.mark()
    status, body = net.h["b"].api("PUT", "/host", json={"version": "0.1.0", "listen_ports": {"office": 51821},
                                                          "endpoints": eps["b"]})
    assert status == 204, body
    got = net.since(mark)
    for n in ("a", "c", "d"):
        assert updated(got, n) == [("b", "10.0.0.5:51821")]
    assert got["b"] == []
    assert server.admin("GET", f"/hosts/{net.h['b'].host_id}", expect=200)["public_endpoint"] is None


def test_port_change_reaches_every_viewer(server, hosts):
    net = TopoNet(server, hosts, ["a", "b", "c"])
    mark = net.mark()
    net.h["a"].report({"type": "checkin", "version": "0.1.0", "listen_ports": {"office": 51999},
                       "endpoints": ["198.18.0.1"]})
    got = net.since(mark)
    assert updated(got, "b") == [("a", "198.18.0.1:51999")]
    assert updated(got, "c") == [("a", "198.18.0.1:51999")]
    assert got["a"] == []
