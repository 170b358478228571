"""Caddy in front of netmakerd, as systemd/Caddyfile.example sets it up: Debian's caddy, configured
from the shipped example with `tls internal`, terminates TLS and passes /api/ to netmakerd, which
speaks plain HTTP on 127.0.0.1 only (tls=no, api_url = Caddy's URL, token_pin=none). Real netclientd
nodes in namespaces join through it with a token that names Caddy and pins nothing, trusting
Caddy's local root CA (NETCLIENTD_CA_FILE), and ping each other over the mesh; the broker is
reached directly (Caddy does not proxy MQTT), its key pinned. A node without the CA is refused with
a message that says why, and netmakerd's log shows the requests arriving through Caddy."""

import json
import os
import re
import subprocess

import pytest

from nmtest import caddy as nmcaddy
from nmtest.caddy import Caddy
from nmtest.client import decode_token
from nmtest.mesh import Mesh
from nmtest.node import wait_until
from nmtest.server import Server, binary, free_port

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(not os.path.exists(nmcaddy.CADDY), reason="caddy is not installed (tools/install-deps.sh)"),
]

SUBNET = 43
SITE = f"198.18.{SUBNET}.254"  # the mesh's server address on the underlay


@pytest.fixture(scope="module")
def behind_caddy(tmp_path_factory):
    d = tmp_path_factory.mktemp("caddy")
    caddy_port, api_port = free_port(), free_port()
    caddy = Caddy(d, site=SITE, port=caddy_port, upstream_port=api_port).start()
    try:
        mesh = Mesh(d / "mesh", nodes=2, subnet=SUBNET, relay_api=False,
                    server_config={"tls": "no", "listen": f"127.0.0.1:{api_port}", "api_url": caddy.url,
                                   "token_pin": "none"},
                    node_options={"env": {"NETCLIENTD_CA_FILE": str(caddy.root_ca)}})
        assert mesh.server_ip == SITE
        with mesh:
            # The nodes reach Caddy (and the broker) at the server address; netmakerd itself not.
            mesh.relay(caddy_port)
            mesh.join_all()
            yield mesh, caddy
    finally:
        caddy.stop()


def test_the_shipped_example_is_valid(tmp_path):
    """The example as shipped is a configuration Caddy accepts, passing /api/* to netmakerd on
    loopback; the test below runs it with nothing changed but addresses, ports and `tls internal`."""
    env = Caddy(tmp_path, site=SITE, port=1, upstream_port=1).env()
    r = subprocess.run([nmcaddy.CADDY, "adapt", "--config", str(nmcaddy.EXAMPLE), "--adapter", "caddyfile"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    config = r.stdout
    assert '"path":["/api/*"]' in config and '"dial":"127.0.0.1:8081"' in config, config
    assert '"host":["netmaker.example.com"]' in config and '"default_sni":"netmaker.example.com"' in config
    # A changed example that the test could no longer adapt fails the test rather than being skipped.
    text = nmcaddy.caddyfile_from_example(SITE, 8443, 18081, 12019, 18080)
    assert "tls internal" in text and f"{SITE}:8443 {{" in text and "reverse_proxy 127.0.0.1:18081" in text
    broken = tmp_path / "Caddyfile.broken"
    broken.write_text(nmcaddy.EXAMPLE.read_text().replace("# tls internal", "# tls  internal"))
    with pytest.raises(nmcaddy.CaddyError, match="tls internal"):
        nmcaddy.caddyfile_from_example(SITE, 8443, 18081, 12019, 18080, example=broken)


def test_nodes_join_through_caddy_and_ping(behind_caddy):
    mesh, caddy = behind_caddy  # joined already
    token = decode_token(mesh.token)
    assert token["api"] == caddy.url and "pin" not in token, token
    mesh.wait_full_mesh()
    assert mesh.wait_ping_matrix() == {}
    for node in mesh.nodes:
        wait_until(lambda: mesh.status(node)["state"] == "online", 20, f"{node.name} online")
        server = json.loads((node.state_dir / "server.json").read_text())
        assert server["api"] == caddy.url and not server.get("pin"), server
        # The broker is Mosquitto's own TLS listener, its key pinned (not through Caddy).
        assert server["mqtt"]["url"] == f"mqtts://{SITE}:{mesh.broker.port}" and server["mqtt"]["pin"]
        # Later requests go through Caddy as well.
        assert node.netclient("pull").returncode == 0


def test_admin_cli_through_caddy(behind_caddy):
    """nmctl on a node reaches the API through Caddy too, trusting Caddy's CA (--ca-file); without
    it, it says which option is missing."""
    mesh, caddy = behind_caddy
    node = mesh.nodes[0]
    env = {"NMCTL_MASTER_KEY": Server.MASTER_KEY, "HOME": str(caddy.dir), "XDG_CONFIG_HOME": str(caddy.dir / "nmctl")}
    nmctl = [binary("nmctl"), "--server", caddy.url, "--json"]
    r = node.run([*nmctl, "--ca-file", caddy.root_ca, "network", "list"], env=env)
    assert r.returncode == 0, r.stderr
    assert [n["name"] for n in json.loads(r.stdout)] == [mesh.network]
    r = node.run([*nmctl, "network", "list"], env=env)
    assert r.returncode == 3 and "not trusted by the system's trust store" in r.stderr and "--ca-file" in r.stderr, r


def test_node_without_the_ca_is_refused(behind_caddy):
    """Without Caddy's CA the node does not trust Caddy's certificate, says so, and registers
    nothing."""
    mesh, caddy = behind_caddy
    hosts_before = mesh.server.admin("GET", "/hosts", expect=200)
    node = mesh.add_node(env={})
    p = node.netclient("join", "-t", mesh.token, "--name", node.name)
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert f"The server at {caddy.url}" in p.stderr and "not trusted by the system's trust store" in p.stderr
    assert "NETCLIENTD_CA_FILE" in p.stderr, p.stderr
    assert not (node.state_dir / "server.json").exists()
    assert mesh.server.admin("GET", "/hosts", expect=200) == hosts_before


def test_requests_reached_netmakerd_through_caddy(behind_caddy):
    """netmakerd's log shows each node's registration, pulls and check-ins arriving from Caddy's
    address with Caddy's forwarding headers; its plain port is not reachable from the nodes."""
    mesh, caddy = behind_caddy
    # Caddy's own address (the relay's, 127.0.0.1, is what Caddy saw and forwards).
    via_caddy = '127.0.0.1 (X-Forwarded-For "127.0.0.1")'
    register = f"POST /api/v1/hosts/register from {via_caddy} → 201"
    mesh.server.wait_log(lambda: mesh.server.log().count(register) == 2, 10, "two registrations through Caddy")
    mesh.server.wait_for_text(f"GET /api/v1/host from {via_caddy} → 200")
    log = mesh.server.log()
    # Every request came this way (the test's own calls go to netmakerd directly, without the header).
    for line in re.findall(r"(?:GET|POST|PUT|DELETE) /api/v1/(?:hosts/register|host\b).*", log):
        assert via_caddy in line, line
    node = mesh.nodes[0]

    def connects(port):
        return node.run(["timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{SITE}/{port}"]).returncode == 0
    assert connects(caddy.port) and not connects(mesh.server.port), "netmakerd's port is reachable from the nodes"


def test_only_the_api_is_passed_on(behind_caddy):
    """/api/ goes to netmakerd; anything else is Caddy's 404 until netmakerd serves the UI."""
    mesh, caddy = behind_caddy
    node = mesh.nodes[0]

    def get(path):
        r = node.run(["curl", "-sS", "--cacert", caddy.root_ca, "-o", "/dev/null", "-w", "%{http_code}",
                      f"{caddy.url}{path}"], timeout=30)
        assert r.returncode == 0, r.stderr
        return int(r.stdout)
    assert get("/api/v1/health") == 200
    assert get("/") == 404 and get("/index.html") == 404
    mesh.server.wait_for_text("GET /api/v1/health from 127.0.0.1 (X-Forwarded-For")
    assert "GET / from" not in mesh.server.log() and "GET /index.html" not in mesh.server.log()


def test_netmakerd_down_behind_caddy(behind_caddy):
    """With netmakerd down, Caddy answers 502 itself, before it has read the request's body; the
    node reports that answer (not an HTTP/2 framing error) and retries, and the join goes through
    once netmakerd is back."""
    mesh, caddy = behind_caddy
    node = mesh.add_node()
    mesh.server.stop()
    try:
        p = node.netclient("join", "-t", mesh.token, "--name", node.name)
        assert p.returncode != 0, (p.stdout, p.stderr)
        assert "HTTP 502" in p.stderr and "a proxy in front of netmakerd could not reach it" in p.stderr, p.stderr
        nmctl = [binary("nmctl"), "--server", caddy.url, "--ca-file", caddy.root_ca, "key", "create", "late",
                 "--network", mesh.network]
        r = node.run(nmctl, env={"NMCTL_MASTER_KEY": Server.MASTER_KEY, "HOME": str(caddy.dir),
                                 "XDG_CONFIG_HOME": str(caddy.dir / "nmctl")})
        assert r.returncode != 0 and "HTTP 502" in r.stderr and "could not reach it" in r.stderr, r
    finally:
        mesh.server.start()
    mesh.join(node)
    assert mesh.wait_ping_matrix([mesh.nodes[0], node]) == {}
