"""Networks as an admin manages them: defaults, changes that reach every member host, adding a
registered host to another network, address exhaustion, IPv6 addressing, forced deletion, and
the health endpoint."""

import ipaddress

from nmtest.http import check_error


def joined(server, hosts, key, names, first=1):
    made = []
    for i, name in enumerate(names):
        h = hosts(name, endpoints=[f"198.18.0.{first + i}"], listen_port=51821 + i)
        h.register(key["token"])
        assert h.connect() == 0
        made.append(h)
    return made


def test_health(server):
    status, body = server.api("GET", "/health")
    assert status == 200
    assert body["status"] == "ok" and body["database"] == "sqlite" and body["broker_connected"] is True
    assert body["version"] == "0.1.0"


def test_network_defaults_and_crud(server):
    n = server.create_network("office", "10.99.0.0/24")
    assert n["name"] == "office" and n["ipv4_range"] == "10.99.0.0/24" and n.get("ipv6_range") is None
    assert (n["listen_port"], n["keepalive"], n["mtu"], n["dns_domain"]) == (51821, 20, 1420, "nm.internal")
    assert n["nodes"] == 0 and n["created_at"] > 0
    assert server.admin("GET", "/networks/office", expect=200) == n
    assert server.admin("GET", "/networks", expect=200) == [n]
    changed = server.admin("PUT", "/networks/office", json={"mtu": 1380, "keepalive": 0, "listen_port": 51900,
                                                            "dns_domain": "mesh.example"}, expect=200)
    assert (changed["mtu"], changed["keepalive"], changed["listen_port"], changed["dns_domain"]) == \
        (1380, 0, 51900, "mesh.example")
    assert changed["ipv4_range"] == "10.99.0.0/24"
    # Ranges cannot be changed in place.
    status, body = server.admin("PUT", "/networks/office", json={"ipv4_range": "10.98.0.0/24"})
    check_error(status, body, 400, None, ["ipv4_range"])
    assert server.admin("DELETE", "/networks/office")[0] == 204
    check_error(*server.admin("GET", "/networks/office"), 404, "not-found", ["office"])
    # The name and range are free again.
    server.create_network("office", "10.99.0.0/24")


def test_settings_change_reaches_hosts(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], unlimited=True)
    a, b = joined(server, hosts, key, ["alpha", "beta"])
    na, nb = len(a.messages), len(b.messages)
    server.admin("PUT", "/networks/office", json={"mtu": 1380}, expect=200)
    for h, n in ((a, na), (b, nb)):
        m = h.wait_message("network-changed", lambda m: m["network"]["mtu"] == 1380, after=n)
        assert m["network"]["network"] == "office"
        assert h.networks["office"]["state"]["mtu"] == 1380
        assert h.serial_errors == []


def test_add_registered_host_to_another_network(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    server.create_network("lab", "10.98.0.0/24")
    office = server.create_key(["office"], unlimited=True)
    lab = server.create_key(["lab"], unlimited=True)
    [a] = joined(server, hosts, office, ["alpha"])
    [b] = joined(server, hosts, lab, ["beta"], first=2)
    n = len(a.messages)
    node = server.admin("POST", f"/hosts/{a.host_id}/networks/lab", expect=201)
    assert node["host_id"] == a.host_id and node["network"] == "lab"
    assert ipaddress.ip_address(node["ipv4"]) in ipaddress.ip_network("10.98.0.0/24")
    m = a.wait_message("network-joined", lambda m: m["network"]["network"] == "lab", after=n)
    assert [p["public_key"] for p in m["network"]["peers"]] == [b.wg.public_b64]
    assert m["network"]["ipv4"].split("/")[0] == node["ipv4"]
    b.wait_for(lambda h: a.wg.public_b64 in h.peers("lab"), what="alpha as a lab peer")
    assert b.peers("lab")[a.wg.public_b64]["allowed_ips"] == [node["ipv4"] + "/32"]
    # Twice is a conflict; an unknown network or host is not found.
    check_error(*server.admin("POST", f"/hosts/{a.host_id}/networks/lab"), 409, "conflict")
    check_error(*server.admin("POST", f"/hosts/{a.host_id}/networks/nosuch"), 404, "not-found", ["nosuch"])
    check_error(*server.admin("POST", "/hosts/00000000-0000-4000-8000-000000000000/networks/lab"), 404,
                "not-found")
    assert sorted(n["network"] for n in server.admin("GET", f"/hosts/{a.host_id}", expect=200)["nodes"]) == \
        ["lab", "office"]


def test_addresses_run_out(server, hosts):
    server.create_network("tiny", "10.97.0.0/30")  # two usable addresses
    key = server.create_key(["tiny"], unlimited=True)
    got = {hosts(f"h{i}").register(key["token"])[1]["state"]["networks"][0]["ipv4"] for i in range(2)}
    assert got == {"10.97.0.1/30", "10.97.0.2/30"}
    before = server.db_dump()
    status, body = hosts("h3").register(key["token"], expect=None)
    check_error(status, body, 507, "exhausted", ["tiny"])
    server.assert_db_unchanged(before)
    # A freed address is given out again.
    nodes = server.admin("GET", "/nodes?network=tiny", expect=200)
    assert server.admin("DELETE", f"/nodes/{nodes[0]['id']}")[0] == 204
    _, body = hosts("h4").register(key["token"])
    assert body["state"]["networks"][0]["ipv4"] == nodes[0]["ipv4"] + "/30"


def test_ipv6_addressing(server, hosts):
    server.create_network("dual", "10.96.0.0/24", ipv6_range="fd00:96::/64")
    server.create_network("v6", None, ipv6_range="fd00:95::/64")
    key = server.create_key(["dual", "v6"], unlimited=True)
    a, b = joined(server, hosts, key, ["alpha", "beta"])
    a.wait_for(lambda h: b.wg.public_b64 in h.peers("dual") and b.wg.public_b64 in h.peers("v6"),
               what="beta in both networks")
    p = a.peers("dual")[b.wg.public_b64]
    assert ipaddress.ip_address(p["ipv6"]) in ipaddress.ip_network("fd00:96::/64")
    assert sorted(p["allowed_ips"]) == sorted([p["ipv4"] + "/32", p["ipv6"] + "/128"])
    p6 = a.peers("v6")[b.wg.public_b64]
    assert p6["ipv4"] is None and p6["allowed_ips"] == [p6["ipv6"] + "/128"]
    assert a.networks["v6"]["state"]["ipv6"].endswith("/64") and a.networks["v6"]["state"]["ipv4"] is None


def test_forced_network_deletion(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], unlimited=True)
    a, b = joined(server, hosts, key, ["alpha", "beta"])
    check_error(*server.admin("DELETE", "/networks/office"), 409, "conflict", ["office"])
    assert server.admin("DELETE", "/networks/office?force=true")[0] == 204
    for h in (a, b):
        h.wait_message("network-left", lambda m: m["network"] == "office")
        assert h.networks == {}
    assert server.admin("GET", "/nodes", expect=200) == []
    # The hosts stay registered, without nodes.
    assert {h["id"] for h in server.admin("GET", "/hosts", expect=200)} == {a.host_id, b.host_id}
