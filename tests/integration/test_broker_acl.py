"""The broker side of netmakerd, seen with Mosquitto's own command-line clients and a host's
account: a host reads its own message topic and nothing else (SUBACK 0x87), its sealed report
reaches the server, it can neither forge server messages for another host nor use the
dynamic-security API, and the broker denies by default with netmakerd's admin given exactly the
role it needs."""

import json
import shutil
import subprocess
import time

import pytest

from nmtest.client import open_sealed, seal

MOSQUITTO_SUB = shutil.which("mosquitto_sub")
MOSQUITTO_PUB = shutil.which("mosquitto_pub")

pytestmark = pytest.mark.skipif(not (MOSQUITTO_SUB and MOSQUITTO_PUB), reason="mosquitto-clients missing")


def creds(broker, host):
    """The host's account, with its client id: the account is bound to it."""
    m = host.mqtt_info
    return [*broker.cli_args(), "-u", m["username"], "-P", m["password"], "-i", m["username"]]


def sub(broker, host, topic, *, count=1, wait=3, v5=False, extra=()):
    """Starts mosquitto_sub with the host's account; returns the Popen (stdout: payloads as hex)."""
    args = [MOSQUITTO_SUB, *creds(broker, host), "-t", topic, "-C", str(count), "-W", str(wait),
            "-F", "%x", "-q", "1", *extra]
    if v5:
        args += ["-V", "5"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pub_file(broker, host, topic, payload: bytes, tmp_path, *, as_user=None):
    f = tmp_path / f"payload-{time.monotonic_ns()}"
    f.write_bytes(payload)
    who = as_user or host
    return subprocess.run([MOSQUITTO_PUB, *creds(broker, who), "-t", topic, "-f", str(f), "-q", "1"],
                          capture_output=True, text=True, timeout=10)


def registered(server, hosts, key, name, i):
    h = hosts(name, endpoints=[f"198.18.0.{i}"], listen_port=51820 + i)
    h.register(key["token"])
    return h


def test_host_account_fences(server, broker, office, hosts, tmp_path):
    key = server.create_key(["office"], unlimited=True)
    a = registered(server, hosts, key, "alpha", 1)
    b = registered(server, hosts, key, "beta", 2)

    # (b) another host's topic, everything, all reports: refused at SUBACK (0x87 on MQTT 5).
    for topic in (b.msg_topic, "#", f"nm/{server.server_name}/host/+/report", "$CONTROL/#"):
        p = sub(broker, a, topic, v5=True, wait=2)
        out, err = p.communicate(timeout=10)
        assert "All subscription requests were denied" in err, (topic, p.returncode, out, err)

    # (a) its own topic: granted, and the server's sealed messages arrive there (a snapshot the
    # host asks for over HTTP). Only one session per account: its client id is bound to it.
    own = sub(broker, a, a.msg_topic, count=1, wait=8)
    time.sleep(0.5)  # mosquitto_sub has no "subscribed" signal; give it time to land
    status, _ = a.api("PUT", "/host", json={"type": "snapshot-request"})
    assert status == 204
    out, err = own.communicate(timeout=15)
    assert own.returncode == 0, (out, err)
    sealed = bytes.fromhex(out.strip().splitlines()[0])
    msg = json.loads(open_sealed(sealed, a.server_key, a.msg.secret))
    assert msg["type"] == "snapshot" and msg["state"]["host_id"] == a.host_id

    # (c) its sealed report, sent with mosquitto_pub, reaches the server.
    checkin = {"type": "checkin", "version": "9.9.9", "listen_ports": {"office": 51821}, "endpoints": ["198.18.0.77"]}
    r = pub_file(broker, a, a.report_topic, a.seal_report(checkin), tmp_path)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 5
    while server.admin("GET", f"/hosts/{a.host_id}", expect=200)["endpoints"] != ["198.18.0.77"]:
        assert time.monotonic() < deadline, "the report did not reach the server"
        time.sleep(0.05)

    # alpha cannot forge a server message for beta: beta's subscriber sees nothing.
    watch = sub(broker, b, b.msg_topic, count=1, wait=2)
    time.sleep(0.5)
    forged = seal(b'{"type":"host-deleted","serial":999}', b.msg.public, a.msg.secret)
    pub_file(broker, a, b.msg_topic, forged, tmp_path)
    out, _ = watch.communicate(timeout=10)
    assert out.strip() == "", "a host published into another host's message topic"

    # Nor can it use the dynamic-security API to make itself an account.
    cmd = b'{"commands":[{"command":"createClient","username":"evil","password":"evilevil"}]}'
    pub_file(broker, a, "$CONTROL/dynamic-security/v1", cmd, tmp_path)
    time.sleep(0.5)
    assert "evil" not in broker.clients()

    # A made-up account, or a wrong password, does not get in at all.
    r = subprocess.run([MOSQUITTO_SUB, *broker.cli_args(), "-u", f"host-{a.host_id}",
                        "-P", "wrong-password", "-t", a.msg_topic, "-C", "1", "-W", "2"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode != 0 and "not authori" in (r.stdout + r.stderr).lower(), r


def test_broker_defaults_and_admin_role(server, broker, office):
    cfg = broker.dynsec_config()
    default = cfg["defaultACLAccess"]
    assert default["subscribe"] is False and default["publishClientSend"] is False
    role = f"netmakerd-{server.server_name}"
    [r] = [r for r in cfg["roles"] if r["rolename"] == role]
    acls = {(a["acltype"], a["topic"]) for a in r["acls"] if a["allow"]}
    assert ("publishClientSend", f"nm/{server.server_name}/host/+/msg") in acls
    assert ("subscribePattern", f"nm/{server.server_name}/host/+/report") in acls
    [admin] = [c for c in cfg["clients"] if c["username"] == broker.admin_user]
    assert role in [x["rolename"] for x in admin["roles"]]

    # Restarting the server does not add anything twice (the set-up is idempotent).
    server.restart()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not server.api("GET", "/health")[1].get("broker_connected"):
        time.sleep(0.05)
    cfg2 = broker.dynsec_config()
    [r2] = [r for r in cfg2["roles"] if r["rolename"] == role]
    assert len(r2["acls"]) == len(r["acls"])
    [admin2] = [c for c in cfg2["clients"] if c["username"] == broker.admin_user]
    assert [x["rolename"] for x in admin2["roles"]].count(role) == 1
