"""A host's broker account is its identity and nothing more: it is bound to the host's client id,
so one host's credentials cannot take another host's session (the impostor is refused and the
victim's netclientd stays online without reconnecting)."""

import json
import os
import shutil
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

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
    c = mqtt.Client(client_id=client_id, protocol=protocol, **kw)
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
    args = [MOSQUITTO_SUB, "-h", broker.host, "-p", str(broker.port), "-u", username, "-P", password,
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
