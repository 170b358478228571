"""ACLs on the server (docs/protocol.md §4.2.1): a denied pair never appears in each other's
peers; a rule, a default or a node's tags that change send `peers` deltas only to the hosts whose
allowed pairs change, and nothing to anyone else."""

import pytest

from nmtest.topology import TopoNet, peer_updates


def test_deny_rule_reaches_only_the_pair(server, hosts):
    net = TopoNet(server, hosts, ["alpha", "beta", "gamma", "delta"])
    a, b = net.node["alpha"], net.node["beta"]
    assert set(net.peers("alpha")) == {"beta", "gamma", "delta"}

    mark = net.mark()
    rule = net.admin("POST", "/networks/office/acl/rules",
                     json={"source": f"node:{a}", "destination": f"node:{b}", "action": "deny"}, expect=201)
    assert set(rule) == {"id", "source", "destination", "action"}
    assert rule["action"] == "deny" and rule["source"] == f"node:{a}"
    got = net.since(mark)
    assert [m["remove"] for m in peer_updates(got["alpha"])] == [[net.key_of("beta")]]
    assert [m["remove"] for m in peer_updates(got["beta"])] == [[net.key_of("alpha")]]
    assert got["gamma"] == [] and got["delta"] == []
    assert set(net.peers("alpha")) == {"gamma", "delta"}
    assert set(net.peers("beta")) == {"gamma", "delta"}

    acl = net.admin("GET", "/networks/office/acl", expect=200)
    assert acl == {"network": "office", "default": "allow", "rules": [rule]}

    # Deleting it gives the pair back to exactly the two of them.
    mark = net.mark()
    assert net.admin("DELETE", f"/networks/office/acl/rules/{rule['id']}")[0] == 204
    got = net.since(mark)
    assert [[p["name"] for p in m["add"]] for m in peer_updates(got["alpha"])] == [["beta"]]
    assert [[p["name"] for p in m["add"]] for m in peer_updates(got["beta"])] == [["alpha"]]
    assert got["gamma"] == [] and got["delta"] == []
    assert net.admin("GET", "/networks/office/acl", expect=200)["rules"] == []


def test_rules_are_symmetric_and_deny_wins(server, hosts):
    net = TopoNet(server, hosts, ["alpha", "beta", "gamma"])
    a, b = net.node["alpha"], net.node["beta"]
    # Written from beta's side, it still separates alpha and beta.
    net.admin("POST", "/networks/office/acl/rules",
              json={"source": f"node:{b}", "destination": "*", "action": "allow"}, expect=201)
    mark = net.mark()
    net.admin("POST", "/networks/office/acl/rules",
              json={"source": f"node:{a}", "destination": f"node:{b}", "action": "deny"}, expect=201)
    got = net.since(mark)
    assert "beta" not in net.peers("alpha") and "alpha" not in net.peers("beta")
    assert got["gamma"] == []
    # An allow in the other direction does not beat the deny.
    mark = net.mark()
    net.admin("POST", "/networks/office/acl/rules",
              json={"source": f"node:{b}", "destination": f"node:{a}", "action": "allow"}, expect=201)
    got = net.since(mark)
    assert got == {"alpha": [], "beta": [], "gamma": []}
    assert "beta" not in net.peers("alpha")


def test_default_deny_and_tags(server, hosts):
    net = TopoNet(server, hosts, ["web1", "web2", "db1", "misc"])
    nodes = net.node
    for name, tags in (("web1", ["web"]), ("web2", ["web"]), ("db1", ["db"])):
        node = net.admin("PUT", f"/nodes/{nodes[name]}/tags", json={"tags": tags}, expect=200)
        assert node["tags"] == tags
    # Tags alone change nothing while everything is allowed.
    assert set(net.peers("misc")) == {"web1", "web2", "db1"}

    net.admin("POST", "/networks/office/acl/rules",
              json={"source": "tag:web", "destination": "tag:db", "action": "allow"}, expect=201)
    mark = net.mark()
    acl = net.admin("PUT", "/networks/office/acl", json={"default": "deny"}, expect=200)
    assert acl["default"] == "deny" and len(acl["rules"]) == 1
    got = net.since(mark)
    # Only web <-> db stays; every host was told exactly what it lost.
    assert set(net.peers("web1")) == {"db1"}
    assert set(net.peers("web2")) == {"db1"}
    assert set(net.peers("db1")) == {"web1", "web2"}
    assert net.peers("misc") == {}
    assert sorted(len(peer_updates(got[n], "remove")) for n in got) == [1, 2, 2, 3]  # db1; web1, web2; misc
    assert all(len(peer_updates(got[n])) == 1 for n in got)

    # misc joins the web tag: it gains db1, db1 gains misc; the web hosts get nothing (web <-> web
    # is no rule's pair).
    mark = net.mark()
    net.admin("PUT", f"/nodes/{nodes['misc']}/tags", json={"tags": ["web", "other"]}, expect=200)
    got = net.since(mark)
    assert set(net.peers("misc")) == {"db1"}
    assert set(net.peers("db1")) == {"web1", "web2", "misc"}
    assert got["web1"] == [] and got["web2"] == []
    assert [p["name"] for p in peer_updates(got["db1"], "add")] == ["misc"]

    # A host that joins later with a key's tags is allowed by the same rule, and only db1 hears of it.
    key = server.create_key(["office"], name="dbkey", tags=["db"])
    mark = net.mark()
    net.add("db2", key=key)
    got = net.since(mark)
    assert set(net.peers("db2")) == {"web1", "web2", "misc"}
    assert got["db1"] == []
    assert all(len(peer_updates(got[n], "add")) == 1 for n in ("web1", "web2", "misc"))
    assert net.nodes()[net.node["db2"]]["tags"] == ["db"]


def test_one_rule_in_a_bigger_network_touches_only_its_pairs(server, hosts):
    names = [f"h{i}" for i in range(8)]
    net = TopoNet(server, hosts, names)
    net.admin("PUT", f"/nodes/{net.node['h0']}/tags", json={"tags": ["x"]}, expect=200)
    net.admin("PUT", f"/nodes/{net.node['h1']}/tags", json={"tags": ["y"]}, expect=200)
    mark = net.mark()
    net.admin("POST", "/networks/office/acl/rules",
              json={"source": "tag:x", "destination": "tag:y", "action": "deny"}, expect=201)
    got = net.since(mark)
    assert {n for n, m in got.items() if m} == {"h0", "h1"}
    # A rule that matches nothing that is not already allowed changes nothing at all.
    mark = net.mark()
    net.admin("POST", "/networks/office/acl/rules",
              json={"source": "tag:x", "destination": "*", "action": "allow"}, expect=201)
    assert all(m == [] for m in net.since(mark).values())


@pytest.mark.parametrize("default", ["allow", "deny"])
def test_default_is_reported_and_idempotent(server, hosts, default):
    net = TopoNet(server, hosts, ["alpha", "beta"])
    net.admin("PUT", "/networks/office/acl", json={"default": default}, expect=200)
    mark = net.mark()
    assert net.admin("PUT", "/networks/office/acl", json={"default": default}, expect=200)["default"] == default
    assert all(m == [] for m in net.since(mark).values())
    assert (net.peers("alpha") == {}) == (default == "deny")


def test_tags_come_from_the_key_of_each_join(server, hosts):
    net = TopoNet(server, hosts, ["alpha"], tags=["office-tag"])
    server.create_network("lab", "10.98.0.0/24")
    lab_key = server.create_key(["lab"], name="labkey", tags=["lab-tag"])
    status, body = net.h["alpha"].api("POST", "/host/networks", json={"token": lab_key["token"]})
    assert status == 200, body
    tags = {n["network"]: n["tags"] for n in server.admin("GET", "/nodes", expect=200)}
    assert tags == {"office": ["office-tag"], "lab": ["lab-tag"]}
