"""Server → host messages: serials rise by exactly one per message, a snapshot request is answered
with a snapshot that matches what the deltas built, reports that do not open are ignored, and a
broker restart neither loses the server nor leaves hosts behind."""

import threading
import time

from nmtest.client import seal


def register_connected(server, hosts, key, names):
    made = []
    for i, name in enumerate(names):
        h = hosts(name, endpoints=[f"198.18.0.{i + 1}"], listen_port=51821 + i)
        h.register(key["token"])
        assert h.connect() == 0
        made.append(h)
    return made


def peer_keys(state, network="office"):
    [net] = [n for n in state["networks"] if n["network"] == network]
    return {p["public_key"]: p for p in net["peers"]}


def test_serials_and_snapshot(server, office, hosts):
    key = server.create_key(["office"], unlimited=True)
    [a] = register_connected(server, hosts, key, ["alpha"])
    first = a.serial
    b, c, d = register_connected(server, hosts, key, ["beta", "gamma", "delta"])
    a.wait_for(lambda h: len(h.peers("office")) == 3, what="three peers")
    # One delta per newcomer, each serial one more than the last.
    serials = [m["serial"] for m in a.messages]
    assert serials == list(range(first + 1, first + 1 + len(serials))), serials
    assert len(serials) >= 3 and a.serial_errors == []

    # A snapshot request gets the next serial and the same peers the deltas built.
    n = len(a.messages)
    a.report({"type": "snapshot-request"})
    snap = a.wait_message("snapshot", after=n)
    assert snap["serial"] == serials[-1] + 1
    assert snap["state"]["host_id"] == a.host_id
    peers = peer_keys(snap["state"])
    assert set(peers) == {b.wg.public_b64, c.wg.public_b64, d.wg.public_b64}
    assert peers == a.peers("office")
    assert a.serial_errors == []

    # The REST snapshot agrees and carries the host's current serial.
    state = a.pull()
    assert peer_keys(state) == peers
    assert state["serial"] >= snap["serial"]

    # Other hosts' serials ran independently and without gaps too.
    for h in (b, c, d):
        assert h.serial_errors == [], (h.name, h.serial_errors)


def test_reports_that_do_not_open_are_dropped(server, office, hosts):
    key = server.create_key(["office"], unlimited=True)
    [a] = register_connected(server, hosts, key, ["alpha"])
    n = len(a.messages)
    # Garbage, a wrong version byte, a report sealed for the wrong key, and valid sealing
    # around JSON that is not a report: none is answered, and the server keeps running.
    a.publish(a.report_topic, b"not sealed at all")
    good = a.seal_report({"type": "snapshot-request"})
    a.publish(a.report_topic, b"\x02" + good[1:])
    a.publish(a.report_topic, seal(b'{"type":"snapshot-request"}', a.msg.public, a.msg.secret))
    a.publish(a.report_topic, seal(b'{"type":"snapshot-request","extra":1}', a.server_key, a.msg.secret))
    a.publish(a.report_topic, seal(b'[1,2,3]', a.server_key, a.msg.secret))
    a.no_message("snapshot", after=n, wait=0.4)
    a.report({"type": "snapshot-request"})
    a.wait_message("snapshot", after=n)
    assert server.running
    log = server.log()
    assert "not sealed at all" not in log


def test_broker_restart(server, broker, office, hosts):
    key = server.create_key(["office"], unlimited=True)
    a, b, c = register_connected(server, hosts, key, ["alpha", "beta", "gamma"])
    a.wait_for(lambda h: len(h.peers("office")) == 2, what="two peers")
    # A real agent asks for a snapshot whenever it reconnects (it may have missed messages).
    for h in (a, b, c):
        h.resync_on_reconnect = True
    assert server.api("GET", "/health")[1]["broker_connected"] is True

    broker.stop()
    # The server notices, and still does what needs no broker: c's node leaves the network.
    server.wait_log(lambda: server.api("GET", "/health")[1]["broker_connected"] is False, 10,
                    "/health to report the broker down")
    nodes = server.admin("GET", "/nodes?network=office", expect=200)
    [node] = [n for n in nodes if n["host_id"] == c.host_id]
    assert server.admin("DELETE", f"/nodes/{node['id']}")[0] == 204
    n_a = len(a.messages)

    broker.restart()
    server.wait_log(lambda: server.api("GET", "/health")[1]["broker_connected"] is True, 10,
                    "/health to report the broker back")
    # alpha is brought up to date: it no longer has gamma as a peer, beta stays.
    a.wait_for(lambda h: c.wg.public_b64 not in h.peers("office") and b.wg.public_b64 in h.peers("office"),
               timeout=10, what="gamma gone after the restart")
    assert any(m["type"] in ("snapshot", "peers") for m in a.messages[n_a:])
    # gamma is told (by a snapshot without the network, or network-left).
    c.wait_for(lambda h: "office" not in h.networks, timeout=10, what="gamma out of office")
    # Messages flow as before: a new host reaches the others as a delta.
    [e] = register_connected(server, hosts, key, ["epsilon"])
    a.wait_for(lambda h: e.wg.public_b64 in h.peers("office"), what="epsilon as a peer")
    # Serials: whatever was lost while the broker was away, a snapshot set things straight
    # (a snapshot resets the count; any gap was followed by one).
    for h in (a, b):
        for expected, got in h.serial_errors:
            i = next(i for i, m in enumerate(h.messages) if m["serial"] == got)
            assert h.messages[i]["type"] == "snapshot" or any(
                m["type"] == "snapshot" for m in h.messages[i:]), (h.name, h.serial_errors, h.describe_messages())


def test_registration_while_broker_down(server, broker, office, hosts):
    """A registration that arrives while the broker is away waits for it (up to 10 s) rather
    than failing the join; past that it gets 503 and nothing is written."""
    key = server.create_key(["office"], unlimited=True)

    def broker_down():
        broker.stop()
        server.wait_log(lambda: server.api("GET", "/health")[1]["broker_connected"] is False, 10,
                        "/health to report the broker down")

    def broker_up():
        broker.restart()
        # After a long outage the reconnect backoff may be anywhere up to its cap of 30 s.
        server.wait_log(lambda: server.api("GET", "/health")[1]["broker_connected"] is True, 35,
                        "/health to report the broker back")

    # Broker back within the wait: the waiting registration completes with a working account.
    broker_down()
    waiting = hosts("waiting")
    result = {}
    t = threading.Thread(target=lambda: result.update(r=waiting.register(key["token"], expect=None)))
    t.start()
    time.sleep(1.0)
    assert t.is_alive() and not result, f"the registration did not wait for the broker: {result}"
    broker.restart()
    t.join(20)
    status, body = result["r"]
    assert status == 201, (status, body)
    assert waiting.connect() == 0
    waiting.disconnect()

    # Broker away for longer than the wait: 503 naming the broker, the database unchanged.
    broker_down()
    before = server.db_dump()
    started = time.monotonic()
    status, body = hosts("late").register(key["token"], expect=None)
    waited = time.monotonic() - started
    assert status == 503, (status, body)
    assert body["error"]["code"] == "unavailable"
    assert "broker" in body["error"]["message"], body
    assert waited >= 9.0, f"answered after {waited:.1f} s: the registration did not wait for the broker"
    server.assert_db_unchanged(before)
    broker_up()
    h = hosts("later")
    h.register(key["token"])
    assert h.connect() == 0
