"""TLS by default, pinned by the token: a capture of a whole join (taken inside the node's own
network namespace) holds neither the enrollment key, nor the host credential, nor the broker
password — while the same capture of an insecure plain-HTTP server shows all three, so the capture
does see the join. A wrong pin, another server's certificate, an expired certificate, plain HTTP to
another machine and a token whose address or pin was edited are each refused with an error that
names the problem, and nothing is registered."""

import base64
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from nmtest import tlsutil
from nmtest.client import decode_token, encode_token
from nmtest.http import check_error
from nmtest.mesh import Mesh, Relay
from nmtest.node import wait_until
from nmtest.server import Server, binary, free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, tcpdump)")


class Capture:
    """tcpdump on a namespace's interface, everything, into a file of the test's."""

    def __init__(self, netns, path, iface="eth0"):
        self.path = path
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, "tcpdump", "-i", iface, "-s", "0", "-U", "--immediate-mode",
                                      "-Z", "root", "-w", str(path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on IFACE" once its capture is active and the file is open.
        self.stderr = []
        self.listening = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        wait_until(lambda: self.listening.is_set() or self.proc.poll() is not None, 20, "tcpdump to listen")
        assert self.proc.poll() is None, "".join(self.stderr)

    def _read(self):
        for line in self.proc.stderr:
            self.stderr.append(line)
            if "listening on" in line:
                self.listening.set()

    def stop(self):
        time.sleep(0.5)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        self.reader.join(5)
        data = self.path.read_bytes()
        # Its counts ("N packets captured, N received by filter, N dropped by kernel") say why a
        # capture came out short.
        assert len(data) > 4000, f"the capture holds only {len(data)} bytes; tcpdump: {''.join(self.stderr)}"
        return data


def join_secrets(mesh, node):
    """(enrollment token — it holds the key —, host credential, broker password) of a node that
    joined."""
    server = json.loads((node.state_dir / "server.json").read_text())
    return mesh.token, server["credential"], server["mqtt"]["password"]


def captured_join(mesh, tmp_path):
    node = mesh.nodes[0]
    cap = Capture(node.netns.name, tmp_path / "join.pcap")
    try:
        mesh.join(node)
        wait_until(lambda: mesh.status(node)["state"] == "online", 20, "the node online")
        # a pull and a check-in after the join carry the credential again
        assert node.netclient("pull").returncode == 0
    finally:
        data = cap.stop()
    return node, data


def test_capture_of_a_join_holds_no_secret(tmp_path):
    with Mesh(tmp_path / "tls", nodes=1, subnet=40) as mesh:
        node, data = captured_join(mesh, tmp_path)
        api_port = int(mesh.server.overrides["api_url"].rsplit(":", 1)[1])
        assert len(data) > 4000, f"the capture holds only {len(data)} bytes"
        # the traffic is there, as TLS records (handshake 0x16 0x03) to the API and the broker
        assert b"\x16\x03" in data and api_port.to_bytes(2, "big") in data
        for secret in join_secrets(mesh, node):
            assert secret.encode() not in data, "a secret crossed the network in the clear"
        assert b"/api/v1/hosts/register" not in data and b"Authorization" not in data


def test_plain_http_shows_what_tls_hides(tmp_path):
    """The control experiment: the same join against a server allowed to speak plain HTTP (and a
    plain broker) puts all three secrets on the wire; both daemons warn about it."""
    with Mesh(tmp_path / "plain", nodes=1, subnet=41, broker_tls=False,
              server_config={"tls": "no", "insecure": "yes"},
              node_options={"env": {"NETCLIENTD_INSECURE": "yes"}}) as mesh:
        assert "INSECURE: plain HTTP for api_url" in mesh.server.log()
        node, data = captured_join(mesh, tmp_path)
        token, credential, password = join_secrets(mesh, node)
        assert token.encode() in data            # the registration's body
        assert credential.encode() in data      # the Authorization header of later requests
        assert password.encode() in data        # the MQTT CONNECT
        assert "INSECURE: plain HTTP to the server" in node.log()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with Mesh(tmp_path_factory.mktemp("tls-refusals"), nodes=1, subnet=42) as m:
        yield m


def forge(token, **change):
    t = decode_token(token)
    t.update(change)
    return encode_token({k: v for k, v in t.items() if v is not None})


def refused_join(mesh, token, *mentions, code=1):
    node = mesh.nodes[0]
    hosts_before = mesh.server.admin("GET", "/hosts", expect=200)
    p = node.netclient("join", "-t", token, "--name", node.name)
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    for m in mentions:
        assert m in p.stderr, (m, p.stderr)
    assert not (node.state_dir / "server.json").exists()
    assert mesh.server.admin("GET", "/hosts", expect=200) == hosts_before
    return p.stderr


def test_wrong_pin_is_refused(mesh):
    bad = "sha256//" + base64.b64encode(b"\x01" * 32).decode()
    msg = refused_join(mesh, forge(mesh.token, pin=bad), "not the pinned", bad, mesh.server.pin)
    assert "Unauthenticated" in msg or "refused" in msg


def test_no_pin_and_no_ca_is_refused(mesh):
    """A token without a pin leaves the server to a CA: the system's store does not vouch for a
    self-signed certificate, and the message names the store and where a CA would go."""
    refused_join(mesh, forge(mesh.token, pin=None), "not trusted by the system's trust store",
                 "[Server] CAFile=", "NETCLIENTD_CA_FILE")


def test_certificate_of_another_server_is_refused(mesh, tmp_path):
    other = Server(tmp_path, None, config={"broker_url": None}).start()
    relay = Relay(mesh.underlay.bridge, mesh.server_ip, other.port, tmp_path).start()
    try:
        # The token of mesh.server, its address pointing at the other server (same pin: ours).
        token = forge(mesh.token, api=f"https://{mesh.server_ip}:{other.port}")
        refused_join(mesh, token, "not the pinned", mesh.server.pin, other.pin)
    finally:
        relay.stop()
        other.stop()


def test_expired_certificate_is_refused(mesh, tmp_path):
    cert, key = tlsutil.make_certificate(tmp_path / "expired", "old", not_before_days=-60, not_after_days=-1)
    port = free_port()
    other = Server(tmp_path, None, config={"broker_url": None, "listen": f"127.0.0.1:{port}",
                                           "api_url": f"https://{mesh.server_ip}:{port}",
                                           "tls_certificate": str(cert), "tls_key": str(key)}).start()
    relay = Relay(mesh.underlay.bridge, mesh.server_ip, port, tmp_path).start()
    try:
        other.create_network("office", "10.98.0.0/24")
        token = other.create_key(["office"])["token"]
        assert decode_token(token)["pin"] == tlsutil.pin_of_file(cert)
        refused_join(mesh, token, "expired on")
    finally:
        relay.stop()
        other.stop()


def test_plain_http_to_another_machine_is_refused(mesh):
    token = forge(mesh.token, api=mesh.server.overrides["api_url"].replace("https://", "http://"))
    refused_join(mesh, token, "Refusing plain HTTP", "Insecure=yes")


def test_plain_http_to_the_tls_port_says_so(server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"))
    r = subprocess.run([str(binary("nmctl")), "--server", f"http://127.0.0.1:{server.port}", "health"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "https://" in r.stderr and "HTTPS on this port" in r.stderr, r


def test_nmctl_names_the_ca_option(server, tmp_path):
    """nmctl with neither a pin nor a CA for a self-signed server says which store refused it and
    how to give a CA."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"), NMCTL_MASTER_KEY=server.admin_token())
    r = subprocess.run([str(binary("nmctl")), "--server", server.url, "network", "list"],
                       env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 3, r
    assert "not trusted by the system's trust store" in r.stderr and "--ca-file or NMCTL_CA_FILE" in r.stderr, r


def test_token_edited_or_of_another_server_is_refused_by_the_server(server, office, hosts):
    """The server itself refuses a token whose address, pin or server key is not its own, and a
    version 1 token once accept_v1_tokens=no; nothing is written."""
    key = server.create_key(["office"])
    t = decode_token(key["token"])
    cases = [
        (forge(key["token"], api="https://198.18.99.1:8081"), ["198.18.99.1", "not this server"]),
        (forge(key["token"], pin="sha256//" + base64.b64encode(b"\x02" * 32).decode()), ["pin", server.pin]),
        (forge(key["token"], pin=None), ["pin"]),
        (forge(key["token"], spk=base64.b64encode(b"\x03" * 32).decode()), ["another server"]),
    ]
    for token, mentions in cases:
        before = server.db_dump()
        status, body = server.api("POST", "/hosts/register", json=hosts("x").registration(token))
        check_error(status, body, 401, "unauthenticated", mentions)
        server.assert_db_unchanged(before)
    # A version 1 token (no pin) of this server still registers...
    v1 = encode_token({"v": 1, "api": t["api"], "key": t["key"], "spk": t["spk"]})
    hosts("old").register(v1)


def test_v1_tokens_can_be_turned_off(make_server, broker, hosts):
    server = make_server(broker, config={"accept_v1_tokens": "no"})
    server.create_network("office", "10.99.0.0/24")
    t = decode_token(server.create_key(["office"])["token"])
    v1 = encode_token({"v": 1, "api": t["api"], "key": t["key"], "spk": t["spk"]})
    status, body = server.api("POST", "/hosts/register", json=hosts("old").registration(v1))
    check_error(status, body, 401, "unauthenticated", ["version 1", "nmctl key list"])


def test_plain_http_off_loopback_needs_insecure(make_server, broker):
    srv = make_server(broker, start=False, config={"tls": "no", "api_url": "http://198.18.99.1:8081"})
    srv.write_config()
    r = subprocess.run(srv.command(), capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Refusing plain HTTP for api_url" in r.stderr and "insecure=yes" in r.stderr, r
    r = subprocess.run(srv.command() + [], capture_output=True, text=True, timeout=30,
                       env={**os.environ, "NETMAKERD_BROKER_PUBLIC_URL": "mqtt://198.18.99.1:1883",
                            "NETMAKERD_API_URL": ""})
    assert r.returncode != 0 and "Refusing plain MQTT for broker_public_url" in r.stderr, r


def test_ca_issued_certificate(make_server, broker, hosts, tmp_path):
    """A server with a CA-issued certificate and token_pin=none: tokens pin nothing, clients trust
    the CA (nmctl --ca-file, a host's CA) and check the name; without the CA they refuse it."""
    from nmtest import http
    from nmtest.server import binary
    ca, cert, key = tlsutil.make_ca_signed(tmp_path / "pki", "api")
    srv = make_server(broker, start=False, config={"tls_certificate": str(cert), "tls_key": str(key),
                                                   "token_pin": "none"})
    srv.start()
    assert srv.pin == tlsutil.pin_of_file(cert)
    srv.create_network("office", "10.99.0.0/24")
    token = srv.create_key(["office"])["token"]
    assert "pin" not in decode_token(token) and decode_token(token)["v"] == 2
    # A host verifies it with the CA (and its name, 127.0.0.1): the registration goes through.
    http.trust(srv.url, ca_file=ca)
    hosts("ca-host").register(token)

    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"), NMCTL_SERVER=srv.url,
               NMCTL_MASTER_KEY=srv.MASTER_KEY)

    def nmctl(*args):
        return subprocess.run([str(binary("nmctl")), *args], env=env, capture_output=True, text=True, timeout=30)
    r = nmctl("--ca-file", str(ca), "network", "list")
    assert r.returncode == 0 and "office" in r.stdout, r
    r = nmctl("network", "list")  # the system's trust store does not know this CA
    assert r.returncode == 3 and "not trusted" in r.stderr and "--ca-file" in r.stderr, r
