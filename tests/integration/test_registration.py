"""Registration end to end: hosts register with enrollment keys, learn about each other through
sealed MQTT messages, are fenced into their own topics by the broker, see nodes leave, and keys
run out exactly when their uses do (also under concurrent registrations)."""

import ipaddress
import threading
import time

import paho.mqtt.client as mqtt

from nmtest.client import TestHost, decode_token, unb64
from nmtest.http import check_error
from nmtest.tlsutil import probe_pin

REFUSED = (0x80, 0x87)


def node_of(server, host, network="office"):
    nodes = server.admin("GET", f"/nodes?network={network}", expect=200)
    mine = [n for n in nodes if n["host_id"] == host.host_id]
    assert len(mine) == 1, f"{host.name}: nodes {nodes}"
    return mine[0]


def check_peer(peer, host, network="office"):
    """`peer` (as another host sees it) describes `host` correctly."""
    net = host.networks[network]["state"]
    ipv4 = net["ipv4"].split("/")[0]
    assert peer["host_id"] == host.host_id
    assert peer["name"] == host.name
    assert peer["public_key"] == host.wg.public_b64
    assert peer["ipv4"] == ipv4
    assert peer["allowed_ips"] == [f"{ipv4}/32"]
    # The node's port is the network's (made unique per host); hosts report changes in check-ins.
    assert peer["endpoint"] == f"{host.endpoints[0]}:{net['listen_port']}"
    assert peer["keepalive"] == 20


def test_token_and_registration_state(server, office, hosts):
    key = server.create_key(["office"], name="laptops", uses=2)
    assert key["uses_remaining"] == 2 and key["unlimited"] is False and key["networks"] == ["office"]
    t = decode_token(key["token"])
    assert set(t) == {"v", "api", "key", "spk", "pin"} and t["v"] == 2
    assert t["api"].rstrip("/") == server.url.rstrip("/") and t["api"].startswith("https://")
    # The token pins the key of the certificate the server serves (not only its file's).
    assert t["pin"] == server.pin == probe_pin(server.host, server.port)
    assert len(t["key"]) == 32 and set(t["key"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert len(unb64(t["spk"])) == 32

    a = hosts("alpha", endpoints=["198.18.0.1"])
    _, body = a.register(key["token"])
    # The secrets arrive sealed to the host's message key, nowhere in the clear.
    assert "credential" not in body and "password" not in body["mqtt"]
    assert a.credential.startswith(f"nmh.{a.host_id}.") and a.credential not in repr(body)
    assert a.mqtt_info["password"] and a.mqtt_info["password"] not in repr(body)
    m = body["mqtt"]
    assert m["username"] == f"host-{a.host_id}"
    assert m["subscribe"] == f"nm/{server.server_name}/host/{a.host_id}/msg"
    assert m["publish"] == f"nm/{server.server_name}/host/{a.host_id}/report"
    assert m["url"] == server.broker.url and m["url"].startswith("mqtts://")
    # ...and the broker's key, which the host checks before sending its password.
    assert m["pin"] == server.broker.pin == probe_pin("127.0.0.1", server.broker.port)
    state = body["state"]
    assert state["host_id"] == a.host_id and isinstance(state["serial"], int)
    [net] = state["networks"]
    assert net["network"] == "office" and net["peers"] == []
    addr = ipaddress.ip_interface(net["ipv4"])
    assert addr.network == ipaddress.ip_network("10.99.0.0/24") and addr.ip != addr.network.network_address
    assert net["listen_port"] == 51821 and net["keepalive"] == 20 and net["mtu"] == 1420

    # The broker account exists, and the key has one use left.
    server.wait_account(a.host_id)
    assert server.admin("GET", f"/enrollment-keys/{key['id']}", expect=200)["uses_remaining"] == 1
    # The host is listed without secrets.
    h = server.admin("GET", f"/hosts/{a.host_id}", expect=200)
    assert h["wg_public_key"] == a.wg.public_b64 and h["msg_public_key"] == a.msg.public_b64
    text = repr(h)
    assert a.credential not in text and a.mqtt_info["password"] not in text


def test_two_hosts_peers_isolation_leave_and_key_exhaustion(server, office, hosts):
    key = server.create_key(["office"], uses=2)
    a = hosts("alpha", endpoints=["198.18.0.1"], listen_port=51821)
    b = hosts("beta", endpoints=["198.18.0.2"], listen_port=51822)
    a.register(key["token"])
    assert a.connect() == 0
    b.register(key["token"])
    assert b.connect() == 0

    # alpha learns about beta as a delta; beta got alpha in its registration state.
    msg = a.wait_message("peers", lambda m: any(p["public_key"] == b.wg.public_b64 for p in m.get("add") or []))
    assert msg["network"] == "office"
    check_peer(a.peers("office")[b.wg.public_b64], b)
    check_peer(b.peers("office")[a.wg.public_b64], a)
    assert a.networks["office"]["state"]["ipv4"] != b.networks["office"]["state"]["ipv4"]

    # beta learns of a change of alpha as a delta too: alpha checks in from a new endpoint.
    a.endpoints = ["198.18.0.11"]
    a.checkin()
    b.wait_message("peers", lambda m: any(p["public_key"] == a.wg.public_b64 and p["endpoint"] == "198.18.0.11:51821"
                                          for p in m.get("update") or []))
    check_peer(b.peers("office")[a.wg.public_b64], a)

    # The broker fences each host into its own topics: no subscribing to beta's messages...
    assert a.subscribe(b.msg_topic)[0] in REFUSED
    assert a.subscribe(f"nm/{server.server_name}/#")[0] in REFUSED
    assert a.subscribe("#")[0] in REFUSED
    # The same over MQTT 5, in alpha's one session (its account is bound to its client id).
    a.disconnect()
    a5 = TestHost("alpha5")
    a5.mqtt_info, a5.server_key, a5.msg = a.mqtt_info, a.server_key, a.msg
    assert a5.connect(protocol=mqtt.MQTTv5, subscribe=False) == 0
    try:
        assert a5.subscribe(b.msg_topic) == [0x87]
    finally:
        a5.close()
    assert a.connect() == 0

    # ...and no publishing as beta: a snapshot request sealed with beta's own key but sent by
    # alpha's account on beta's report topic never reaches the server.
    before = len(b.messages)
    a.report({"type": "snapshot-request"}, topic=b.report_topic, sender=b)
    b.no_message("snapshot", after=before, wait=0.5)
    b.report({"type": "snapshot-request"})  # the same from beta itself is answered
    b.wait_message("snapshot", after=before)
    time.sleep(0.2)
    assert [m["type"] for m in b.messages[before:]].count("snapshot") == 1

    # Deleting beta's node: alpha is told to remove beta, beta is told it left.
    node = node_of(server, b)
    status, _ = server.admin("DELETE", f"/nodes/{node['id']}")
    assert status == 204
    a.wait_message("peers", lambda m: b.wg.public_b64 in (m.get("remove") or []))
    assert b.wg.public_b64 not in a.peers("office")
    b.wait_message("network-left", lambda m: m["network"] == "office")
    assert "office" not in b.networks
    assert a.serial_errors == [] and b.serial_errors == []
    assert a.dropped == [] and b.dropped == []

    # The key is used up: a third host is refused and nothing is written.
    before, clients = server.db_dump(), server.broker_clients()
    c = hosts("gamma")
    status, body = c.register(key["token"], expect=None)
    check_error(status, body, 410, "gone")
    server.assert_db_unchanged(before)
    assert server.broker_clients() == clients
    assert server.admin("GET", f"/enrollment-keys/{key['id']}", expect=200)["uses_remaining"] == 0


def test_one_use_key(server, office, hosts):
    key = server.create_key(["office"], uses=1)
    hosts("one").register(key["token"])
    before = server.db_dump()
    clients = server.broker_clients()
    status, body = hosts("two").register(key["token"], expect=None)
    check_error(status, body, 410, "gone")
    server.assert_db_unchanged(before)
    assert server.broker_clients() == clients


def test_unlimited_key(server, office, hosts):
    key = server.create_key(["office"], unlimited=True)
    ids = {hosts(f"h{i}").register(key["token"])[1]["host_id"] for i in range(4)}
    assert len(ids) == 4
    assert server.admin("GET", f"/enrollment-keys/{key['id']}", expect=200)["unlimited"] is True
    nodes = server.admin("GET", "/nodes?network=office", expect=200)
    addrs = {n["ipv4"] for n in nodes}
    assert len(nodes) == 4 and len(addrs) == 4


def test_race_for_the_last_use(server, office):
    """Two registrations racing for the last use of a key: exactly one wins, every round."""
    for rnd in range(6):
        key = server.create_key(["office"], name=f"race{rnd}", uses=1)
        racers = [TestHost(f"r{rnd}a"), TestHost(f"r{rnd}b")]
        barrier = threading.Barrier(len(racers))
        results = [None] * len(racers)

        def run(i):
            barrier.wait()
            results[i] = racers[i].register(key["token"], expect=None)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(racers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        statuses = sorted(r[0] for r in results)
        assert statuses == [201, 410], f"round {rnd}: {results}"
        loser = [r for r in results if r[0] == 410][0]
        check_error(*loser, 410, "gone")
        hosts_now = server.admin("GET", "/hosts", expect=200)
        assert len(hosts_now) == rnd + 1, f"round {rnd}: {len(hosts_now)} hosts"
    assert len(server.admin("GET", "/nodes?network=office", expect=200)) == 6


def test_expired_key(server, office, hosts):
    key = server.create_key(["office"], uses=5, expires_at=int(time.time()) + 3)
    hosts("early").register(key["token"])
    time.sleep(max(0.0, key["expires_at"] - time.time()) + 1.05)
    before = server.db_dump()
    status, body = hosts("late").register(key["token"], expect=None)
    check_error(status, body, 410, "gone", mentions=["expired"])
    server.assert_db_unchanged(before)


def test_deleted_host_loses_broker_account_and_peers(server, office, hosts):
    key = server.create_key(["office"], uses=2)
    a, b = hosts("alpha"), hosts("beta", endpoints=["198.18.0.2"])
    a.register(key["token"])
    a.connect()
    b.register(key["token"])
    b.connect()
    a.wait_for(lambda h: b.wg.public_b64 in h.peers("office"), what="beta as a peer")
    assert server.admin("DELETE", f"/hosts/{b.host_id}")[0] == 204
    b.wait_message("host-deleted")
    a.wait_message("peers", lambda m: b.wg.public_b64 in (m.get("remove") or []))
    server.wait_account(b.host_id, present=False)
    status, _ = b.api("GET", "/host")
    assert status == 401
    server.admin("GET", f"/hosts/{b.host_id}", expect=404)


def test_server_sets_up_a_fresh_broker(make_broker, make_server, hosts):
    """Without the harness's preparation, netmakerd gives itself the broker role it needs and
    messages flow."""
    broker = make_broker()
    server = make_server(broker, prepare_broker=False)
    assert f"netmakerd-{server.server_name}" in server.broker_roles()
    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], uses=2)
    a, b = hosts("alpha"), hosts("beta", endpoints=["198.18.0.2"])
    a.register(key["token"])
    assert a.connect() == 0
    b.register(key["token"])
    a.wait_message("peers", lambda m: any(p["public_key"] == b.wg.public_b64 for p in m.get("add") or []))
