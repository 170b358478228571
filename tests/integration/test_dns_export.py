"""A network's names for machines outside the mesh (docs/dns.md "Export", docs/protocol.md §5):
`GET /networks/{net}/dns/hosts` and `nmctl dns export` give every name with each of its addresses
in hosts(5) format; a real dnsmasq serves the file (`--addn-hosts`) in one namespace and a machine
in another namespace, outside the mesh, resolves mesh names through it; after a host is deleted the
next export (and a SIGHUP to dnsmasq) drops its name. Readers need a user token; the name "hosts"
stays a valid custom name (deleted through its own route)."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from nmtest import dns
from nmtest.http import check_error
from nmtest.netns import Underlay
from nmtest.node import wait_until
from nmtest.server import binary

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

DNSMASQ = "/usr/sbin/dnsmasq"
ZONE = "office.nm.internal"


def nmctl(server, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
    env.update(NMCTL_SERVER=server.url, NMCTL_PIN=server.pin, NMCTL_MASTER_KEY=server.MASTER_KEY, LC_ALL="C",
               HOME="/nonexistent", XDG_CONFIG_HOME="/nonexistent")
    return subprocess.run([str(binary("nmctl")), *args], env=env, capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)


def lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def ask(node, name, qtype="A"):
    r = node.run(["/usr/bin/python3", dns.__file__, node.peer, name, qtype], check=False)
    return json.loads(r.stdout) if r.stdout.strip() else {"error": r.stderr}


@pytest.fixture
def names(server, hosts):
    """The network office (IPv4 and IPv6) with two hosts and custom names, one of them "hosts"."""
    server.create_network("office", "10.99.0.0/24", ipv6_range="fd00:99::/64")
    key = server.create_key(["office"], unlimited=True)
    made = []
    for i, name in enumerate(["alpha", "beta"]):
        h = hosts(name, endpoints=[f"198.18.93.{10 + i}"], listen_port=51821 + i)
        h.register(key["token"])
        made.append(h)
    server.admin("POST", "/networks/office/dns", json={"name": "printer", "ipv4": "192.168.50.7"}, expect=201)
    server.admin("POST", "/networks/office/dns", json={"name": "nas.lab", "ipv6": "fd00:99::50"}, expect=201)
    server.admin("POST", "/networks/office/dns", json={"name": "hosts", "ipv4": "192.168.50.8"}, expect=201)
    return made


def test_export_format_and_access(server, names):
    status, body = server.admin("GET", "/networks/office/dns/hosts")
    assert status == 200, body
    assert body.startswith(f"# DNS names of the netmaker network office (zone {ZONE})")
    assert lines(body) == [
        f"10.99.0.1 alpha.{ZONE}", f"fd00:99::1 alpha.{ZONE}",
        f"10.99.0.2 beta.{ZONE}", f"fd00:99::2 beta.{ZONE}",
        f"192.168.50.8 hosts.{ZONE}",
        f"fd00:99::50 nas.lab.{ZONE}",
        f"192.168.50.7 printer.{ZONE}",
    ]
    # nmctl prints the same text, or writes it to a file.
    r = nmctl(server, "dns", "export", "office")
    assert r.returncode == 0 and r.stdout == body, r
    # A user may read it, nobody else; an unknown network is 404.
    server.admin("POST", "/users", json={"username": "uma", "password": "user-password-1", "role": "user"},
                 expect=201)
    status, text = server.api("GET", "/networks/office/dns/hosts", token=server.login("uma", "user-password-1"))
    assert status == 200 and text == body
    check_error(*server.api("GET", "/networks/office/dns/hosts"), 401, "unauthenticated")
    check_error(*server.admin("GET", "/networks/nowhere/dns/hosts"), 404, "not-found", ["nowhere"])
    r = nmctl(server, "dns", "export", "nowhere")
    assert r.returncode == 1 and "nowhere" in r.stderr, r
    r = nmctl(server, "dns", "export")
    assert r.returncode == 2, r

    # The custom name "hosts" shares the export's path; it can still be deleted.
    check_error(*server.admin("POST", "/networks/office/dns/hosts"), 405, "method-not-allowed")
    assert server.admin("DELETE", "/networks/office/dns/hosts")[0] == 204
    assert "hosts." not in server.admin("GET", "/networks/office/dns/hosts", expect=200)
    check_error(*server.admin("DELETE", "/networks/office/dns/hosts"), 404, "not-found", ["hosts"])


@pytest.fixture
def public_dir():
    """A directory dnsmasq (which drops root for nobody) can read, unlike the test's tmp_path."""
    d = Path(tempfile.mkdtemp(prefix="nmtest-dns-export-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_dnsmasq_serves_the_export_outside_the_mesh(server, names, tmp_path, public_dir):
    hosts_file = public_dir / "office.hosts"
    r = nmctl(server, "dns", "export", "office", "--output", str(hosts_file))
    assert r.returncode == 0 and r.stdout == "", r
    assert f"10.99.0.2 beta.{ZONE}" in hosts_file.read_text()

    log = tmp_path / "dnsmasq.log"
    with Underlay(nodes=2, subnet=93) as net:
        resolver, outside = net.nodes
        outside.peer = resolver.address
        # The resolver answers the zone from the file alone: never from upstream, and NXDOMAIN
        # for names the file does not have (local=).
        p = resolver.popen([DNSMASQ, "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll",
                            "--bind-interfaces", f"--listen-address={resolver.address}", "--except-interface=lo",
                            f"--addn-hosts={hosts_file}", f"--local=/{ZONE}/", "--log-queries",
                            f"--log-facility={log}", f"--pid-file={tmp_path / 'dnsmasq.pid'}"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: "read " in (log.read_text() if log.exists() else "") or p.poll() is not None, 10,
                   "dnsmasq reading the export")
        assert p.poll() is None, p.stderr.read()
        assert f"read {hosts_file} - 7 names" in log.read_text(), log.read_text()

        r = ask(outside, f"alpha.{ZONE}")
        assert r["rcode"] == "NOERROR" and r["addresses"] == ["10.99.0.1"], r
        assert ask(outside, f"beta.{ZONE}", "AAAA")["addresses"] == ["fd00:99::2"]
        assert ask(outside, f"printer.{ZONE}")["addresses"] == ["192.168.50.7"]
        assert ask(outside, f"nas.lab.{ZONE}", "AAAA")["addresses"] == ["fd00:99::50"]
        assert ask(outside, f"nothing.{ZONE}")["rcode"] == "NXDOMAIN"

        # beta is deleted: the next export drops it, and dnsmasq rereads the file on SIGHUP.
        server.admin("DELETE", f"/hosts/{names[1].host_id}", expect=204)
        r = nmctl(server, "dns", "export", "office", "--output", str(hosts_file))
        assert r.returncode == 0, r
        assert "beta." not in hosts_file.read_text()
        os.kill(p.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while ask(outside, f"beta.{ZONE}")["rcode"] != "NXDOMAIN":
            assert time.monotonic() < deadline, "dnsmasq still answers for the deleted host"
            time.sleep(0.2)
        assert ask(outside, f"alpha.{ZONE}")["addresses"] == ["10.99.0.1"]
