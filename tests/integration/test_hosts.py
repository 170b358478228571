"""The host side of the REST API (host credential): the full snapshot, reports over HTTP when
MQTT is not at hand, joining another network with a token, leaving a network, deregistering;
and a server restart that keeps every host, key and credential working."""

import time

from nmtest.client import decode_token
from nmtest.http import check_error


def joined(server, hosts, key, names, first=1):
    made = []
    for i, name in enumerate(names):
        h = hosts(name, endpoints=[f"198.18.0.{first + i}"], listen_port=51821 + i)
        h.register(key["token"])
        assert h.connect() == 0
        made.append(h)
    return made


def test_snapshot_over_http(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], unlimited=True)
    a, b = joined(server, hosts, key, ["alpha", "beta"])
    a.wait_for(lambda h: b.wg.public_b64 in h.peers("office"), what="beta")
    status, state = a.api("GET", "/host")
    assert status == 200 and state["host_id"] == a.host_id
    [net] = state["networks"]
    assert net["network"] == "office" and net["node_id"]
    assert {p["public_key"]: p for p in net["peers"]} == a.peers("office")
    assert state["serial"] == a.serial


def test_report_over_http(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], unlimited=True)
    a, b = joined(server, hosts, key, ["alpha", "beta"])
    n = len(b.messages)
    status, body = a.api("PUT", "/host", json={"type": "checkin", "version": "0.1.1",
                                                "listen_ports": {"office": 51999}, "endpoints": ["198.18.0.77"]})
    assert status == 204, body
    m = b.wait_message("peers", lambda m: any(p["public_key"] == a.wg.public_b64 for p in m.get("update") or []),
                       after=n)
    [p] = m["update"]
    assert p["endpoint"] == "198.18.0.77:51999"
    h = server.admin("GET", f"/hosts/{a.host_id}", expect=200)
    assert h["version"] == "0.1.1" and h["endpoints"] == ["198.18.0.77"]
    assert h["last_checkin"] >= int(time.time()) - 5
    # A report that changes nothing sends nothing.
    n = len(b.messages)
    assert a.api("PUT", "/host", json={"type": "checkin", "version": "0.1.1", "listen_ports": {"office": 51999},
                                       "endpoints": ["198.18.0.77"]})[0] == 204
    b.no_message("peers", after=n, wait=0.3)
    # Bad reports are refused with a reason, and change nothing. (A port for a network the host
    # is not in is ignored: it may have just left it.)
    before = server.db_dump()
    for body, mention in (({"type": "checkin", "endpoints": ["nope"]}, "nope"),
                          ({"type": "reboot"}, "reboot"),
                          ({"type": "checkin", "listen_ports": {"office": 0}}, "office")):
        status, resp = a.api("PUT", "/host", json=body)
        check_error(status, resp, 400, ("invalid-argument", "invalid-json"), [mention])
    server.assert_db_unchanged(before)


def test_join_another_network_with_a_token(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    server.create_network("lab", "10.98.0.0/24")
    [a] = joined(server, hosts, server.create_key(["office"], unlimited=True), ["alpha"])
    lab_key = server.create_key(["lab"], uses=1)
    [b] = joined(server, hosts, server.create_key(["lab"], uses=1), ["beta"], first=2)
    n = len(a.messages)
    status, nodes = a.api("POST", "/host/networks", json={"token": lab_key["token"]})
    assert status == 201 or status == 200, (status, nodes)
    assert [x["network"] for x in nodes] == ["lab"] and nodes[0]["host_id"] == a.host_id
    a.wait_message("network-joined", lambda m: m["network"]["network"] == "lab", after=n)
    assert b.wg.public_b64 in a.peers("lab")
    b.wait_for(lambda h: a.wg.public_b64 in h.peers("lab"), what="alpha in lab")
    # The key was one-use.
    assert server.admin("GET", f"/enrollment-keys/{lab_key['id']}", expect=200)["uses_remaining"] == 0
    status, body = a.api("POST", "/host/networks", json={"token": lab_key["token"]})
    check_error(status, body, 410, "gone")


def test_leave_a_network(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    a, b = joined(server, hosts, server.create_key(["office"], unlimited=True), ["alpha", "beta"])
    a.wait_for(lambda h: b.wg.public_b64 in h.peers("office"), what="beta")
    n = len(a.messages)
    assert b.api("DELETE", "/host/networks/office")[0] == 204
    a.wait_message("peers", lambda m: b.wg.public_b64 in (m.get("remove") or []), after=n)
    assert server.admin("GET", "/nodes?network=office", expect=200)[0]["host_id"] == a.host_id
    check_error(*b.api("DELETE", "/host/networks/office"), 404, "not-found", ["office"])


def test_deregister(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    a, b = joined(server, hosts, server.create_key(["office"], unlimited=True), ["alpha", "beta"])
    a.wait_for(lambda h: b.wg.public_b64 in h.peers("office"), what="beta")
    n = len(a.messages)
    assert b.api("DELETE", "/host")[0] == 204
    a.wait_message("peers", lambda m: b.wg.public_b64 in (m.get("remove") or []), after=n)
    server.wait_account(b.host_id, present=False)
    check_error(*b.api("GET", "/host"), 401, "unauthenticated")
    assert [h["id"] for h in server.admin("GET", "/hosts", expect=200)] == [a.host_id]


def test_server_restart_keeps_everything(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], unlimited=True)
    [a] = joined(server, hosts, key, ["alpha"])
    spk = decode_token(key["token"])["spk"]
    before = server.db_dump()
    server.restart()
    # The server key, the key's token, the host credential and the broker account all survive.
    [k] = server.admin("GET", "/enrollment-keys", expect=200)
    assert k["token"] == key["token"] and decode_token(k["token"])["spk"] == spk
    assert a.api("GET", "/host")[0] == 200
    assert {t: len(r) for t, r in server.db_dump().items()} == {t: len(r) for t, r in before.items()}
    [b] = joined(server, hosts, key, ["beta"], first=2)
    a.wait_for(lambda h: b.wg.public_b64 in h.peers("office"), what="beta after the restart", timeout=10)
    # Serials continue where they were.
    assert a.serial_errors == [] or any(m["type"] == "snapshot" for m in a.messages), a.describe_messages()
