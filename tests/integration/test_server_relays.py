"""Relays on the server (docs/protocol.md §4.4): a relayed node's only peer is its relay, whose
allowed IPs carry every node the relayed node may reach (the ACL still counts); the others drop the
relayed node and find its addresses in the relay's allowed IPs; roles say who relays whom; taking
the relay away (or the relay leaving) gives everyone their direct peers back."""

from nmtest.topology import TopoNet, peer_updates, types


def ips(peer):
    return sorted(peer["allowed_ips"])


def test_relay_and_unrelay(server, hosts):
    net = TopoNet(server, hosts, ["alpha", "beta", "gamma", "relay"])
    a, r = net.node["alpha"], net.node["relay"]
    net.admin("PUT", f"/nodes/{net.node['beta']}/egress", json={"ranges": ["192.168.50.0/24"]}, expect=200)

    mark = net.mark()
    node = net.admin("PUT", f"/nodes/{r}/relay", json={"relayed": [a]}, expect=200)
    assert node["roles"]["relay"] is True
    assert net.nodes()[a]["roles"]["relayed_by"] == r
    got = net.since(mark)

    # alpha: its roles, and one delta: beta and gamma go, the relay carries them (and beta's range).
    assert types(got["alpha"]) == ["network-changed", "peers"]
    assert got["alpha"][0]["network"]["roles"]["relayed_by"] == r
    [m] = peer_updates(got["alpha"])
    assert sorted(m["remove"]) == sorted([net.key_of("beta"), net.key_of("gamma")])
    assert [p["name"] for p in m["update"]] == ["relay"]
    assert set(net.peers("alpha")) == {"relay"}
    assert ips(net.peers("alpha")["relay"]) == sorted(["10.99.0.4/32", "10.99.0.2/32", "192.168.50.0/24",
                                                        "10.99.0.3/32"])
    # beta, gamma: alpha goes, its address moves to the relay — in one message.
    for n in ("beta", "gamma"):
        [m] = peer_updates(got[n])
        assert m["remove"] == [net.key_of("alpha")] and m["add"] == []
        assert [(p["name"], sorted(p["allowed_ips"])) for p in m["update"]] == [
            ("relay", ["10.99.0.1/32", "10.99.0.4/32"])]
    # the relay: only its roles; alpha stays its direct peer as before.
    assert types(got["relay"]) == ["network-changed"]
    assert got["relay"][0]["network"]["roles"]["relay"] is True
    assert ips(net.peers("relay")["alpha"]) == ["10.99.0.1/32"]

    # Undo: everything as before the relay.
    mark = net.mark()
    node = net.admin("DELETE", f"/nodes/{r}/relay", expect=200)
    assert node["roles"]["relay"] is False
    got = net.since(mark)
    assert types(got["alpha"]) == ["network-changed", "peers"]
    assert got["alpha"][0]["network"].get("roles") is None
    assert set(net.peers("alpha")) == {"beta", "gamma", "relay"}
    for n in ("beta", "gamma"):
        assert [p["name"] for p in peer_updates(got[n], "add")] == ["alpha"]
        assert ips(net.peers(n)["relay"]) == ["10.99.0.4/32"]
    assert types(got["relay"]) == ["network-changed"]
    assert net.nodes()[a]["roles"]["relayed_by"] is None


def test_relay_respects_acl(server, hosts):
    net = TopoNet(server, hosts, ["alpha", "beta", "gamma", "relay"])
    a, b, r = net.node["alpha"], net.node["beta"], net.node["relay"]
    net.admin("PUT", f"/nodes/{r}/relay", json={"relayed": [a]}, expect=200)

    # alpha and beta may no longer talk: alpha's relay stops carrying beta, beta's relay stops
    # carrying alpha; gamma and the relay hear nothing.
    mark = net.mark()
    net.admin("POST", "/networks/office/acl/rules",
              json={"source": f"node:{a}", "destination": f"node:{b}", "action": "deny"}, expect=201)
    got = net.since(mark)
    assert got["gamma"] == [] and got["relay"] == []
    assert [(p["name"], ips(p)) for p in peer_updates(got["alpha"], "update")] == [
        ("relay", ["10.99.0.3/32", "10.99.0.4/32"])]
    assert [(p["name"], ips(p)) for p in peer_updates(got["beta"], "update")] == [("relay", ["10.99.0.4/32"])]
    assert "10.99.0.1/32" in net.peers("gamma")["relay"]["allowed_ips"]


def test_relay_with_two_relayed_nodes_and_a_newcomer(server, hosts):
    net = TopoNet(server, hosts, ["alpha", "beta", "gamma", "relay"])
    a, b, r = net.node["alpha"], net.node["beta"], net.node["relay"]
    net.admin("PUT", f"/nodes/{r}/relay", json={"relayed": [a, b]}, expect=200)
    net.barrier()
    # Relayed nodes reach each other through the relay too.
    assert ips(net.peers("alpha")["relay"]) == ["10.99.0.2/32", "10.99.0.3/32", "10.99.0.4/32"]
    assert set(net.peers("gamma")) == {"relay"}
    assert ips(net.peers("gamma")["relay"]) == ["10.99.0.1/32", "10.99.0.2/32", "10.99.0.4/32"]

    # A newcomer: the unrelayed see it directly, the relayed through the relay's allowed IPs.
    mark = net.mark()
    net.add("delta")
    got = net.since(mark)
    for n in ("alpha", "beta"):
        assert [p["name"] for p in peer_updates(got[n], "update")] == ["relay"]
        assert "10.99.0.5/32" in net.peers(n)["relay"]["allowed_ips"]
    for n in ("gamma", "relay"):
        assert [p["name"] for p in peer_updates(got[n], "add")] == ["delta"]
    assert set(net.peers("delta")) == {"gamma", "relay"}
    assert ips(net.peers("delta")["relay"]) == ["10.99.0.1/32", "10.99.0.2/32", "10.99.0.4/32"]

    # The PUT replaces the set: beta is released, alpha stays relayed.
    mark = net.mark()
    net.admin("PUT", f"/nodes/{r}/relay", json={"relayed": [a]}, expect=200)
    got = net.since(mark)
    assert got["beta"][0]["network"].get("roles") is None
    assert set(net.peers("beta")) == {"gamma", "relay", "delta"}
    assert set(net.peers("alpha")) == {"relay"}

    # The relay leaves: alpha gets its peers back directly.
    mark = net.mark()
    assert net.admin("DELETE", f"/nodes/{r}")[0] == 204
    got = net.since(mark)
    assert types(got["alpha"]) == ["network-changed", "peers"]
    assert set(net.peers("alpha")) == {"beta", "gamma", "delta"}
    assert net.nodes()[a]["roles"]["relayed_by"] is None
    assert set(net.peers("gamma")) == {"alpha", "beta", "delta"}
