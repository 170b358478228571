"""Egress and internet gateways on the server (docs/protocol.md §4.1, §4.2): the gateway hears its
roles in `network-changed`, every other node (that the ACL lets see it) gets the gateway's new
allowed IPs as one `update`, and only the nodes that opted into an internet gateway get the default
routes in its allowed IPs; everyone else gets nothing."""

from nmtest.topology import TopoNet, peer_updates, types


def updates_of(msgs, name):
    return [p for p in peer_updates(msgs, "update") if p["name"] == name]


def test_egress_gateway(server, hosts):
    net = TopoNet(server, hosts, ["gw", "beta", "gamma", "delta"])
    gw = net.node["gw"]
    # delta may not see the gateway: it hears nothing of its ranges.
    net.admin("POST", "/networks/office/acl/rules",
              json={"source": f"node:{gw}", "destination": f"node:{net.node['delta']}", "action": "deny"},
              expect=201)

    mark = net.mark()
    node = net.admin("PUT", f"/nodes/{gw}/egress", json={"ranges": ["192.168.50.0/24", "fd50::/64"]}, expect=200)
    assert node["roles"]["egress_ranges"] == ["192.168.50.0/24", "fd50::/64"]
    assert node["roles"]["egress_nat"] is True
    got = net.since(mark)
    assert types(got["gw"]) == ["network-changed"]
    roles = got["gw"][0]["network"]["roles"]
    assert roles["egress_ranges"] == ["192.168.50.0/24", "fd50::/64"] and roles["egress_nat"] is True
    for n in ("beta", "gamma"):
        assert types(got[n]) == ["peers"]
        [p] = updates_of(got[n], "gw")
        assert p["allowed_ips"] == ["10.99.0.1/32", "192.168.50.0/24", "fd50::/64"]
    assert got["delta"] == []
    assert net.nodes()[gw]["roles"]["egress_ranges"] == ["192.168.50.0/24", "fd50::/64"]

    # Without NAT, the same ranges: only the gateway's roles change.
    mark = net.mark()
    net.admin("PUT", f"/nodes/{gw}/egress", json={"ranges": ["192.168.50.0/24", "fd50::/64"], "nat": False},
              expect=200)
    got = net.since(mark)
    assert types(got["gw"]) == ["network-changed"] and got["gw"][0]["network"]["roles"]["egress_nat"] is False
    assert got["beta"] == [] and got["gamma"] == [] and got["delta"] == []

    mark = net.mark()
    node = net.admin("DELETE", f"/nodes/{gw}/egress", expect=200)
    assert node["roles"]["egress_ranges"] is None
    got = net.since(mark)
    assert types(got["gw"]) == ["network-changed"]
    assert "roles" not in got["gw"][0]["network"]  # no role left
    for n in ("beta", "gamma"):
        [p] = updates_of(got[n], "gw")
        assert p["allowed_ips"] == ["10.99.0.1/32"]
    assert got["delta"] == []


def test_internet_gateway(server, hosts):
    net = TopoNet(server, hosts, ["gw", "beta", "gamma"], ipv6_range="fd00:99::/64")
    gw = net.node["gw"]

    mark = net.mark()
    node = net.admin("PUT", f"/nodes/{gw}/internet-gateway", expect=200)
    assert node["roles"]["internet_gateway"] is True
    got = net.since(mark)
    assert types(got["gw"]) == ["network-changed"] and got["gw"][0]["network"]["roles"]["internet_gateway"]
    # Nobody uses it yet: the others only learn that gw offers one (what a desktop menu lists as
    # a choice), in their entry of gw; its allowed IPs stay its own addresses.
    for n in ("beta", "gamma"):
        assert types(got[n]) == ["peers"]
        [p] = updates_of(got[n], "gw")
        assert p["internet_gateway"] is True
        assert p["allowed_ips"] == ["10.99.0.1/32", "fd00:99::1/128"]

    # beta opts in (admin): only beta hears of it, with both families of default route.
    mark = net.mark()
    node = net.admin("PUT", f"/nodes/{net.node['beta']}/use-internet-gateway", json={"gateway": gw}, expect=200)
    assert node["roles"]["internet_gateway_via"] == gw
    got = net.since(mark)
    assert types(got["beta"]) == ["network-changed", "peers"]
    assert got["beta"][0]["network"]["roles"]["internet_gateway_via"] == gw
    [p] = updates_of(got["beta"], "gw")
    assert p["allowed_ips"] == ["10.99.0.1/32", "fd00:99::1/128", "0.0.0.0/0", "::/0"]
    assert got["gw"] == [] and got["gamma"] == []

    # gamma opts in itself, through the host API.
    mark = net.mark()
    status, body = net.h["gamma"].api("PUT", "/host/networks/office/use-internet-gateway", json={"gateway": gw})
    assert status == 204, body
    got = net.since(mark)
    assert types(got["gamma"]) == ["network-changed", "peers"]
    assert "0.0.0.0/0" in updates_of(got["gamma"], "gw")[0]["allowed_ips"]
    assert got["gw"] == [] and got["beta"] == []

    # ... and off again with null.
    mark = net.mark()
    status, _ = net.h["gamma"].api("PUT", "/host/networks/office/use-internet-gateway", json={"gateway": None})
    assert status == 204
    got = net.since(mark)
    assert got["gamma"][0]["network"].get("roles") is None
    assert updates_of(got["gamma"], "gw")[0]["allowed_ips"] == ["10.99.0.1/32", "fd00:99::1/128"]
    assert got["gw"] == [] and got["beta"] == []
    status, _ = net.h["gamma"].api("PUT", "/host/networks/office/use-internet-gateway", json={"gateway": gw})
    assert status == 204

    # The gateway role goes: its users are switched off it (roles and routes), the gateway hears
    # its own role change.
    mark = net.mark()
    node = net.admin("DELETE", f"/nodes/{gw}/internet-gateway", expect=200)
    assert node["roles"]["internet_gateway"] is False
    got = net.since(mark)
    assert types(got["gw"]) == ["network-changed"]
    for n in ("beta", "gamma"):
        assert types(got[n]) == ["network-changed", "peers"]
        assert got[n][0]["network"].get("roles") is None
        assert updates_of(got[n], "gw")[0]["allowed_ips"] == ["10.99.0.1/32", "fd00:99::1/128"]
        assert not updates_of(got[n], "gw")[0].get("internet_gateway")  # no longer offered
    assert all(n["roles"]["internet_gateway_via"] is None for n in net.nodes().values())


def test_internet_gateway_ipv4_only_network(server, hosts):
    net = TopoNet(server, hosts, ["gw", "beta"])
    gw = net.node["gw"]
    net.admin("PUT", f"/nodes/{gw}/internet-gateway", expect=200)
    net.admin("PUT", f"/nodes/{net.node['beta']}/use-internet-gateway", json={"gateway": gw}, expect=200)
    net.barrier()
    assert net.peers("beta")["gw"]["allowed_ips"] == ["10.99.0.1/32", "0.0.0.0/0"]
    assert net.roles("beta")["internet_gateway_via"] == gw
    # Admin DELETE of the choice.
    mark = net.mark()
    node = net.admin("DELETE", f"/nodes/{net.node['beta']}/use-internet-gateway", expect=200)
    assert node["roles"]["internet_gateway_via"] is None
    got = net.since(mark)
    assert types(got["beta"]) == ["network-changed", "peers"] and got["gw"] == []


def test_gateway_leaving_switches_its_users_off(server, hosts):
    net = TopoNet(server, hosts, ["gw", "beta", "gamma"])
    gw = net.node["gw"]
    net.admin("PUT", f"/nodes/{gw}/internet-gateway", expect=200)
    net.admin("PUT", f"/nodes/{gw}/egress", json={"ranges": ["192.168.50.0/24"]}, expect=200)
    net.admin("PUT", f"/nodes/{net.node['beta']}/use-internet-gateway", json={"gateway": gw}, expect=200)
    mark = net.mark()
    assert net.admin("DELETE", f"/nodes/{gw}")[0] == 204
    got = net.since(mark)
    assert types(got["gw"]) == ["network-left"]
    assert types(got["beta"]) == ["network-changed", "peers"]
    assert got["beta"][0]["network"].get("roles") is None
    assert peer_updates(got["beta"], "remove") == [net.key_of("gw")]
    assert types(got["gamma"]) == ["peers"] and peer_updates(got["gamma"], "remove") == [net.key_of("gw")]
    assert net.nodes()[net.node["beta"]]["roles"]["internet_gateway_via"] is None
