"""Bad input to the topology API (docs/protocol.md §4.2): overlapping or invalid egress ranges,
gateways and relays of other networks, chains and self-relays, ACL rules with bad selectors or
unknown nodes and tags. Each gets its status, an error that names the value, and the database is
exactly as before."""

import pytest

from nmtest.http import check_error
from nmtest.topology import TopoNet

UNKNOWN = "5f0cd1b4-6d9c-4c4e-9a77-0b0cfa2c5a11"


@pytest.fixture
def nets(server, hosts):
    office = TopoNet(server, hosts, ["alpha", "beta", "gamma", "delta"])
    lab = TopoNet(server, hosts, ["labhost"], network="lab", ipv4_range="10.98.0.0/24")
    n = office.node
    office.admin("PUT", f"/nodes/{n['alpha']}/egress", json={"ranges": ["192.168.50.0/24"]}, expect=200)
    office.admin("PUT", f"/nodes/{n['beta']}/internet-gateway", expect=200)
    office.admin("PUT", f"/nodes/{n['gamma']}/relay", json={"relayed": [n["delta"]]}, expect=200)
    office.admin("PUT", f"/nodes/{n['alpha']}/tags", json={"tags": ["web"]}, expect=200)
    return office, lab


@pytest.fixture
def bad(server):
    def call(method, path, status, code=None, mentions=(), **kw):
        before = server.db_dump()
        got, body = server.admin(method, path, **kw)
        msg = check_error(got, body, status, code, mentions)
        server.assert_db_unchanged(before, f"{method} {path}")
        return msg
    return call


def test_egress(nets, bad):
    office, lab = nets
    n = office.node
    path = f"/nodes/{n['beta']}/egress"
    for ranges, status, mentions in [
        (["10.0.0.0/33"], 400, ["10.0.0.0/33"]),
        (["not-a-cidr"], 400, ["not-a-cidr"]),
        (["192.168.60.1/24"], 400, ["192.168.60.1/24", "192.168.60.0/24"]),
        (["0.0.0.0/0"], 400, ["0.0.0.0/0", "internet gateway"]),
        (["::/0"], 400, ["::/0", "internet gateway"]),
        (["192.168.60.0/24", "192.168.60.128/25"], 400, ["192.168.60.0/24", "192.168.60.128/25"]),
        (["192.168.60.0/24", "192.168.60.0/24"], 400, ["192.168.60.0/24"]),
        (["10.99.0.128/25"], 409, ["10.99.0.128/25", "office", "10.99.0.0/24"]),
        (["10.0.0.0/8"], 409, ["10.0.0.0/8", "office"]),
        (["192.168.50.0/25"], 409, ["192.168.50.0/25", n["alpha"], "192.168.50.0/24"]),
        (["192.168.0.0/16"], 409, ["192.168.0.0/16", "alpha"]),
        ([], 400, ["range"]),
    ]:
        bad("PUT", path, status, "invalid-argument" if status == 400 else "conflict", mentions,
            json={"ranges": ranges})
    bad("PUT", path, 400, None, ["ranges"], json={"ranges": "192.168.60.0/24"})
    bad("PUT", path, 400, None, ["nat"], json={"ranges": ["192.168.60.0/24"], "nat": "yes"})
    bad("PUT", path, 400, None, ["masquerade"], json={"ranges": ["192.168.60.0/24"], "masquerade": True})
    bad("PUT", path, 400, "invalid-json", [], body=b"")
    bad("PUT", f"/nodes/{UNKNOWN}/egress", 404, "not-found", [UNKNOWN], json={"ranges": ["192.168.60.0/24"]})
    # The gateway replacing its own ranges does not overlap itself.
    office.admin("PUT", f"/nodes/{n['alpha']}/egress", json={"ranges": ["192.168.50.0/25"]}, expect=200)


def test_internet_gateway(nets, bad):
    office, lab = nets
    n = office.node
    use = f"/nodes/{n['gamma']}/use-internet-gateway"
    bad("PUT", use, 409, "conflict", ["lab", "office"], json={"gateway": lab.node["labhost"]})
    bad("PUT", use, 409, "conflict", [n["alpha"], "not an internet gateway"], json={"gateway": n["alpha"]})
    bad("PUT", use, 400, "invalid-argument", ["itself"], json={"gateway": n["gamma"]})
    bad("PUT", use, 404, "not-found", [UNKNOWN], json={"gateway": UNKNOWN})
    bad("PUT", use, 404, "not-found", ["junk"], json={"gateway": "junk"})
    bad("PUT", use, 400, None, ["gateway"], json={})
    bad("PUT", use, 400, None, ["gateway"], json={"gateway": None})
    bad("PUT", f"/nodes/{n['beta']}/internet-gateway", 400, None, ["colour"], json={"colour": 1})
    # A gateway does not use another; a user does not become one.
    office.admin("PUT", f"/nodes/{n['alpha']}/internet-gateway", expect=200)
    bad("PUT", f"/nodes/{n['beta']}/use-internet-gateway", 409, "conflict", ["internet gateway itself"],
        json={"gateway": n["alpha"]})
    office.admin("PUT", use, json={"gateway": n["beta"]}, expect=200)
    bad("PUT", f"/nodes/{n['gamma']}/internet-gateway", 409, "conflict", ["cannot use another"])
    # The host API: only its own networks, and "gateway" must be there (null stops).
    status, body = office.h["alpha"].api("PUT", "/host/networks/lab/use-internet-gateway", json={"gateway": None})
    check_error(status, body, 404, "not-found", ["lab"])
    status, body = office.h["alpha"].api("PUT", "/host/networks/office/use-internet-gateway", json={})
    check_error(status, body, 400, "invalid-argument", ["gateway"])
    status, body = office.h["delta"].api("PUT", "/host/networks/office/use-internet-gateway",
                                         json={"gateway": lab.node["labhost"]})
    check_error(status, body, 409, "conflict", ["lab"])
    # Hosts may not use the admin endpoints, users may not change anything.
    status, body = office.h["alpha"].api("PUT", use, json={"gateway": n["beta"]})
    check_error(status, body, 403, "forbidden")


def test_relays(nets, bad):
    office, lab = nets
    n = office.node
    path = f"/nodes/{n['alpha']}/relay"
    bad("PUT", path, 400, "invalid-argument", ["itself"], json={"relayed": [n["alpha"]]})
    bad("PUT", path, 409, "conflict", [n["delta"], "already relayed"], json={"relayed": [n["delta"]]})
    bad("PUT", path, 409, "conflict", [n["gamma"], "relay itself", "chained"], json={"relayed": [n["gamma"]]})
    bad("PUT", f"/nodes/{n['delta']}/relay", 409, "conflict", ["relayed by", "chained"],
        json={"relayed": [n["beta"]]})
    bad("PUT", path, 404, "not-found", [UNKNOWN], json={"relayed": [UNKNOWN]})
    bad("PUT", path, 409, "conflict", ["lab", "office"], json={"relayed": [lab.node["labhost"]]})
    bad("PUT", path, 400, "invalid-argument", ["twice"], json={"relayed": [n["beta"], n["beta"]]})
    bad("PUT", path, 400, "invalid-argument", ["at least one"], json={"relayed": []})
    bad("PUT", path, 400, None, ["relayed"], json={"relayed": n["beta"]})
    bad("PUT", path, 400, None, ["relayed"], json={})


def test_acl(nets, bad, server):
    office, lab = nets
    n = office.node
    rules = "/networks/office/acl/rules"
    for sel in ["node:not-a-uuid", "tag:", "host:alpha", "", "node:", "*x", "tag:" + "x" * 65, "tag:a\u0001b"]:
        bad("POST", rules, 400, "invalid-argument", ["source"],
            json={"source": sel, "destination": "*", "action": "deny"})
    bad("POST", rules, 400, "invalid-argument", ["destination", "nodes:"],
        json={"source": "*", "destination": "nodes:x", "action": "deny"})
    bad("POST", rules, 404, "not-found", [UNKNOWN], json={"source": f"node:{UNKNOWN}", "destination": "*",
                                                          "action": "deny"})
    bad("POST", rules, 409, "conflict", ["lab", "office"],
        json={"source": f"node:{lab.node['labhost']}", "destination": "*", "action": "deny"})
    bad("POST", rules, 404, "not-found", ["db", "office"], json={"source": "tag:db", "destination": "*",
                                                                 "action": "deny"})
    bad("POST", rules, 400, "invalid-argument", ["action", "block"],
        json={"source": "*", "destination": "*", "action": "block"})
    bad("POST", rules, 400, None, ["action"], json={"source": "*", "destination": "*"})
    bad("POST", rules, 400, None, ["port"], json={"source": "*", "destination": "*", "action": "deny", "port": 22})
    bad("POST", "/networks/nowhere/acl/rules", 404, "not-found", ["nowhere"],
        json={"source": "*", "destination": "*", "action": "deny"})
    rule = office.admin("POST", rules, json={"source": "tag:web", "destination": f"node:{n['beta']}",
                                             "action": "deny"}, expect=201)
    bad("POST", rules, 409, "conflict", [rule["id"]],
        json={"source": f"node:{n['beta']}", "destination": "tag:web", "action": "deny"})
    bad("DELETE", f"{rules}/{UNKNOWN}", 404, "not-found", [UNKNOWN])
    bad("DELETE", f"/networks/lab/acl/rules/{rule['id']}", 404, "not-found", [rule["id"]])
    bad("PUT", "/networks/office/acl", 400, "invalid-argument", ["default", "maybe"], json={"default": "maybe"})
    bad("PUT", "/networks/office/acl", 400, None, ["default"], json={})
    # A tag known only from an enrollment key for the network is fine.
    server.create_key(["office"], name="dbs", tags=["db"])
    office.admin("POST", rules, json={"source": "tag:db", "destination": "*", "action": "allow"}, expect=201)
    # Users may read the ACL, not change it.
    server.admin("POST", "/users", json={"username": "carol", "password": "carol-password-1", "role": "user"},
                 expect=201)
    token = server.login("carol", "carol-password-1")
    assert server.api("GET", "/networks/office/acl", token=token)[0] == 200
    check_error(*server.api("PUT", "/networks/office/acl", token=token, json={"default": "deny"}), 403,
                "forbidden")


def test_tags(nets, bad):
    office, lab = nets
    path = f"/nodes/{office.node['beta']}/tags"
    bad("PUT", path, 400, "invalid-argument", ["tag"], json={"tags": [""]})
    bad("PUT", path, 400, "invalid-argument", ["tag"], json={"tags": ["x" * 65]})
    bad("PUT", path, 400, "invalid-argument", ["web", "twice"], json={"tags": ["web", "web"]})
    bad("PUT", path, 400, None, ["tags"], json={"tags": "web"})
    bad("PUT", path, 400, None, ["tags"], json={"tags": [f"t{i}" for i in range(33)]})
    bad("PUT", f"/nodes/{UNKNOWN}/tags", 404, "not-found", [UNKNOWN], json={"tags": ["x"]})
