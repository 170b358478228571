"""A host's broker account is its identity and nothing more: it is bound to the host's client id,
so one host's credentials cannot take another host's session (the impostor is refused and the
victim's netclientd stays online without reconnecting); accounts made before the binding are bound
when netmakerd connects; and an account never outlives its host: after netmakerd is killed with
SIGKILL in the middle of registrations, the broker's host accounts are exactly the hosts in the
database once it has reconnected, and every committed host can still log in."""

import json
import os
import random
import shutil
import sqlite3
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from nmtest import http
from nmtest.client import TestHost
from nmtest.mesh import Mesh
from nmtest.node import wait_until

MOSQUITTO_SUB = shutil.which("mosquitto_sub")

needs_sub = pytest.mark.skipif(not MOSQUITTO_SUB, reason="mosquitto-clients missing")


def login(broker, username, password, client_id, protocol=mqtt.MQTTv311, timeout=5.0):
    """The CONNACK code of one connection attempt (0 = accepted; 5 = not authorised on 3.1.1,
    135 on MQTT 5); disconnects at once."""
    done = threading.Event()
    rc = []
    kw = {"clean_session": True} if protocol != mqtt.MQTTv5 else {}
    c = broker.mqtt_client(client_id=client_id, protocol=protocol, **kw)
    c.username_pw_set(username, password)

    def on_connect(client, userdata, flags, code, properties=None):
        rc.append(int(getattr(code, "value", code)))
        done.set()
    c.on_connect = on_connect
    c.on_disconnect = lambda *a: done.set()
    try:
        c.connect(broker.host, broker.port, keepalive=10)
    except OSError as e:
        return f"connect failed: {e}"
    c.loop_start()
    try:
        done.wait(timeout)
    finally:
        c.disconnect()
        c.loop_stop()
    return rc[0] if rc else None


def impostor_sub(broker, username, password, client_id, v5=False):
    """mosquitto_sub with one host's account and another host's client id: (returncode, output)."""
    args = [MOSQUITTO_SUB, *broker.cli_args(), "-u", username, "-P", password,
            "-i", client_id, "-t", "x", "-C", "1", "-W", "2"]
    if v5:
        args += ["-V", "5"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=15)
    return p.returncode, p.stdout + p.stderr


# ---- defect 1: one identity per broker session ----------------------------------------------

@needs_sub
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")
def test_impostor_cannot_take_another_hosts_session(tmp_path):
    with Mesh(tmp_path / "mesh", nodes=2, subnet=11) as mesh:
        mesh.join_all()
        a, b = mesh.nodes
        wait_until(lambda: all(mesh.status(n)["state"] == "online" for n in (a, b)), 30, "both nodes online")
        creds_a = json.loads((a.state_dir / "server.json").read_text())["mqtt"]
        id_b = mesh.status(b)["host_id"]
        victim = f"host-{id_b}"

        # B's netclientd logs every connection to the broker (the broker's own log is buffered).
        def connects_of_b():
            return b.log().count("Connected to the broker")

        before_b = connects_of_b()
        assert before_b >= 1

        # A's own account, B's client id (which every peer of B sees): refused at CONNACK, with
        # MQTT 3.1.1 and 5 alike.
        rc, out = impostor_sub(mesh.broker, creds_a["username"], creds_a["password"], victim)
        assert rc != 0 and "not authorised" in out.lower(), (rc, out)
        rc, out = impostor_sub(mesh.broker, creds_a["username"], creds_a["password"], victim, v5=True)
        assert rc != 0 and "not authorized" in out.lower(), (rc, out)
        assert login(mesh.broker, creds_a["username"], creds_a["password"], victim) == 5

        # B notices nothing for 10 s: online throughout, no reconnection, no session taken over.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            st = mesh.status(b)
            assert st["state"] == "online", st
            time.sleep(0.5)
        assert connects_of_b() == before_b, b.log_tail()
        assert "Lost the broker connection" not in b.log()

        # A itself is as it was: its own client id still works for its own account.
        assert mesh.status(a)["state"] == "online"


def test_accounts_made_before_binding_are_bound_at_connection(server, broker, office, hosts):
    key = server.create_key(["office"], unlimited=True)
    a = hosts("alpha")
    b = hosts("beta")
    a.register(key["token"])
    b.register(key["token"])
    name_a, name_b = a.mqtt_info["username"], b.mqtt_info["username"]
    clients = {c["username"]: c for c in broker.dynsec_config()["clients"]}
    assert clients[name_a].get("clientid") == name_a and clients[name_b].get("clientid") == name_b

    # What an account made by an older netmakerd looks like: no client id. The broker is stopped
    # while its file is edited, as an upgrade would find it.
    server.stop()
    broker.stop()
    cfg = broker.dynsec_config()
    for c in cfg["clients"]:
        if c["username"] in (name_a, name_b):
            del c["clientid"]
    with open(broker.dynsec_file, "w") as f:
        json.dump(cfg, f)
    broker.restart()
    assert login(broker, name_a, a.mqtt_info["password"], name_b) == 0  # the defect, unbound

    server.restart()
    server.wait_for_text("Broker accounts:")
    wait_until(lambda: all(c.get("clientid") == c["username"] for c in broker.dynsec_config()["clients"]
                           if c["username"] in (name_a, name_b)), 10, "both accounts bound")
    assert login(broker, name_a, a.mqtt_info["password"], name_b) == 5
    assert login(broker, name_a, a.mqtt_info["password"], name_a) == 0
    assert a.connect() == 0 and b.connect() == 0
    # Binding is done once: the next connection leaves the accounts (and their sessions) alone.
    server.restart()
    server.wait_for_text("Broker accounts:")
    assert "binding 0" in server.log(since_start=True)
    assert a.connected and b.connected


# ---- defect 2: no account outlives its host ---------------------------------------------------

def host_accounts(server):
    """({host ids with a broker client}, {host ids with a broker role})."""
    def ids(names):
        return {n[len("host-"):] for n in names if n.startswith("host-")}
    return ids(server.broker_clients()), ids(server.broker_roles())


def db_hosts(server):
    with sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True, timeout=10) as c:
        return {r[0] for r in c.execute("SELECT id FROM hosts")}


def register_quietly(host, token, replies):
    """A registration that may die with the server: keeps (host, status) when there is an answer."""
    try:
        status, _ = host.register(token, expect=None, timeout=15)
        replies.append((host, status))
    except Exception as e:  # noqa: BLE001 (connection reset or refused: the server was killed)
        replies.append((host, f"{type(e).__name__}"))


def restart_after_kill(srv, port):
    """Starts the killed server again on its port and waits for its reconciliation."""
    srv.overrides["listen"] = f"127.0.0.1:{port}"
    try:
        srv.start()
    finally:
        del srv.overrides["listen"]
    srv.wait_for_text("Broker accounts:")


def test_killed_registrations_leave_no_orphan_accounts(broker, make_server):
    seed = int(os.environ.get("NM_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    srv = make_server(broker)
    port = srv.port
    srv.create_network("office", "10.99.0.0/24")
    token = srv.create_key(["office"], unlimited=True)["token"]
    registered = {}  # host id -> TestHost, for every registration that was answered 201
    orphans_left = []  # per round: accounts without a host right after the kill
    rounds, per_round = 30, 4

    for i in range(rounds):
        # Every third round holds the database's write lock, as a long transaction of another
        # process would: the accounts are made, the commits wait. The others kill at random.
        hold = sqlite3.connect(str(srv.db_path), timeout=10, isolation_level=None) if i % 3 == 0 else None
        if hold:
            hold.execute("BEGIN IMMEDIATE")
        before_clients, _ = host_accounts(srv)
        replies = []
        threads = [threading.Thread(target=register_quietly, args=(TestHost(f"r{i}h{j}"), token, replies))
                   for j in range(per_round)]
        for t in threads:
            t.start()
        if hold:
            wait_until(lambda: len(host_accounts(srv)[0] - before_clients) >= 1, 10, "an account made")
        else:
            time.sleep(rng.uniform(0, 0.12))
        srv.kill()  # SIGKILL to the PID this test started
        if hold:
            hold.rollback()
            hold.close()
        for t in threads:
            t.join(20)
        for h, status in replies:
            if status == 201:
                registered[h.host_id] = h

        clients, _ = host_accounts(srv)
        hosts = db_hosts(srv)
        orphans_left.append(len(clients - hosts))
        assert set(registered) <= hosts, "a registration answered 201 was not committed"

        restart_after_kill(srv, port)
        # Once reconnected: the broker's host accounts are exactly the hosts, clients and roles.
        wait_until(lambda: host_accounts(srv) == (db_hosts(srv), db_hosts(srv)), 10,
                   f"round {i} (seed {seed}): the broker's host accounts to be the database's hosts "
                   f"(accounts {host_accounts(srv)}, hosts {db_hosts(srv)})")
        # and nothing is left queued for deletion either.
        wait_until(lambda: srv.db_counts().get("account_cleanup", 0) == 0, 10, "the deletion queue to be empty")

    print(f"seed {seed}: accounts without a host after each kill: {orphans_left}; "
          f"{len(registered)} registrations answered, {len(db_hosts(srv))} hosts")
    # The rounds with the database held leave orphans for sure: the reconciliation was exercised.
    assert sum(orphans_left) >= rounds // 3, orphans_left

    # Every committed host whose credentials we know still logs in, with its own client id only.
    for host_id, h in registered.items():
        m = h.mqtt_info
        assert login(broker, m["username"], m["password"], m["username"]) == 0, host_id
    some = next(iter(registered.values()), None)
    if some:
        other = next((h for h in registered.values() if h is not some), some)
        assert login(broker, some.mqtt_info["username"], some.mqtt_info["password"],
                     f"host-{other.host_id}" if other is not some else "someone-else") == 5


def test_registrations_waiting_for_the_broker_keep_their_accounts(server, broker, office):
    """Registrations that wait for the broker ask for their accounts right when netmakerd
    reconnects, around its reconciliation: none of those accounts is taken for an orphan."""
    token = server.create_key(["office"], unlimited=True)["token"]
    broker.stop()
    server.wait_broker(False)
    replies = []
    threads = [threading.Thread(target=register_quietly, args=(TestHost(f"w{j}"), token, replies))
               for j in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    broker.restart()
    for t in threads:
        t.join(20)
    assert sorted(status for _, status in replies) == [201] * 4, replies
    wait_until(lambda: server.log(since_start=True).count("Broker accounts:") >= 2, 10, "the reconciliation")
    assert "deleting 0 without a host" in server.log(since_start=True).split("Broker accounts:")[-1]
    ids = {h.host_id for h, _ in replies}
    assert host_accounts(server) == (ids, ids) and db_hosts(server) == ids
    for h, _ in replies:
        m = h.mqtt_info
        assert login(broker, m["username"], m["password"], m["username"]) == 0, h.host_id
