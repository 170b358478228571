"""nmctl's topology commands against a real netmakerd: node tags and roles, ACLs and external
clients change what the server holds and what hosts see; create writes the configuration and its
QR code to private files; the server's refusals reach the user verbatim (exit 1), bad command lines
are usage errors (exit 2)."""

import json
import re
import os
import shutil
import stat
import subprocess

import pytest

from nmtest.server import binary
from nmtest.topology import TopoNet


@pytest.fixture
def nmctl(server, tmp_path):
    exe = str(binary("nmctl"))

    def run(*args, timeout=30):
        e = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
        e.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"), LC_ALL="C",
                 NMCTL_SERVER=server.url, NMCTL_PIN=server.pin, NMCTL_MASTER_KEY=server.MASTER_KEY)
        return subprocess.run([exe, *args], env=e, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    return run


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def refused(r, message):
    assert r.returncode == 1, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.stderr == f"Error: {message}\n", r.stderr
    return r


def test_node_roles(server, hosts, nmctl):
    net = TopoNet(server, hosts, ["gw", "beta", "relayed"])
    gw, beta, relayed = net.node["gw"], net.node["beta"], net.node["relayed"]

    out = ok(nmctl("node", "egress", gw, "192.168.50.0/24", "--no-nat")).stdout
    assert "Roles:" in out and "egress 192.168.50.0/24" in out and "(NAT)" not in out
    assert net.nodes()[gw]["roles"]["egress_nat"] is False
    ok(nmctl("node", "internet-gateway", gw))
    out = ok(nmctl("node", "use-internet-gateway", beta, gw)).stdout
    assert f"uses internet gateway {gw}" in out
    out = ok(nmctl("node", "tags", beta, "web", "eu")).stdout
    assert "Tags:" in out and "web, eu" in out
    ok(nmctl("node", "ingress", gw))
    out = ok(nmctl("node", "relay", beta, relayed)).stdout
    assert "relay" in out
    shown = ok(nmctl("node", "show", relayed)).stdout
    assert f"relayed by {beta}" in shown
    node = json.loads(ok(nmctl("node", "show", gw, "--json")).stdout)
    assert node["roles"] == {"egress_ranges": ["192.168.50.0/24"], "egress_nat": False, "internet_gateway": True,
                             "ingress": True, "relay": False, "relayed_by": None, "internet_gateway_via": None,
                             "failover": False}

    net.barrier()
    assert net.roles("beta")["internet_gateway_via"] == gw
    assert set(net.peers("relayed")) == {"beta"}

    # Taking roles away.
    ok(nmctl("node", "relay", beta, "--remove"))
    ok(nmctl("node", "use-internet-gateway", beta, "--remove"))
    ok(nmctl("node", "internet-gateway", gw, "--remove"))
    ok(nmctl("node", "egress", gw, "--remove"))
    ok(nmctl("node", "tags", beta))
    out = ok(nmctl("node", "show", beta)).stdout
    assert "Roles:" in out and "Tags:" in out
    assert net.nodes()[beta]["tags"] == []
    assert net.nodes()[gw]["roles"]["egress_ranges"] is None

    # The server's refusals, verbatim; usage errors before anything is sent.
    refused(nmctl("node", "egress", gw, "0.0.0.0/0"),
            'Invalid egress range "0.0.0.0/0": the whole address space is what an internet gateway offers '
            '(PUT /nodes/{id}/internet-gateway), not a range')
    refused(nmctl("node", "relay", beta, beta), f"Node {beta} cannot relay itself")
    assert nmctl("node", "egress", gw).returncode == 2
    assert nmctl("node", "ingress", gw, "--force").returncode == 2
    assert nmctl("node", "relay", beta).returncode == 2


def test_acl(server, hosts, nmctl):
    net = TopoNet(server, hosts, ["alpha", "beta", "gamma"])
    a, b = net.node["alpha"], net.node["beta"]

    out = ok(nmctl("acl", "rule", "add", "office", f"node:{a}", f"node:{b}", "deny")).stdout
    rule_id = next(line.split()[-1] for line in out.splitlines() if line.startswith("ID:"))
    shown = ok(nmctl("acl", "show", "office")).stdout
    assert "Default: allow" in shown and rule_id in shown and f"node:{a}" in shown and "deny" in shown
    net.barrier()
    assert "beta" not in net.peers("alpha")

    out = ok(nmctl("acl", "default", "office", "deny")).stdout
    assert "Default: deny" in out
    net.barrier()
    assert net.peers("gamma") == {}
    acl = json.loads(ok(nmctl("acl", "show", "office", "--json")).stdout)
    assert acl["default"] == "deny" and [r["id"] for r in acl["rules"]] == [rule_id]

    ok(nmctl("acl", "default", "office", "allow"))
    assert ok(nmctl("acl", "rule", "delete", "office", rule_id)).stdout == f"Deleted rule {rule_id}.\n"
    net.barrier()
    assert set(net.peers("alpha")) == {"beta", "gamma"}

    refused(nmctl("acl", "rule", "add", "office", "host:alpha", "*", "deny"),
            'Invalid source "host:alpha": expected "*", "node:<node id>" or "tag:<tag>"')
    refused(nmctl("acl", "rule", "add", "office", "tag:db", "*", "deny"),
            'The source names tag "db", which no node of network "office" and no enrollment key for it has')
    refused(nmctl("acl", "rule", "delete", "office", rule_id), f'Network "office" has no ACL rule "{rule_id}"')
    assert nmctl("acl", "default", "office", "maybe").returncode == 2
    assert nmctl("acl", "rule", "add", "office", "*", "*").returncode == 2
    assert nmctl("acl", "rule", "frobnicate").returncode == 2


def test_extclients(server, hosts, nmctl, tmp_path):
    net = TopoNet(server, hosts, ["gw", "beta"])
    gw = net.node["gw"]
    ok(nmctl("node", "ingress", gw))

    conf, png = tmp_path / "phone.conf", tmp_path / "phone.png"
    out = ok(nmctl("extclient", "create", "office", "phone", "--gateway", gw, "--dns", "1.1.1.1",
                   "--extra-allowed-ips", "192.168.77.0/24", "--conf", str(conf), "--qr", str(png))).stdout
    assert "Name:" in out and "phone" in out and "Wrote the configuration" in out and str(png) in out
    assert "PrivateKey" not in out  # written to the file, not shown
    text = conf.read_text()
    assert text.startswith("[Interface]\nPrivateKey = ") and "DNS = 1.1.1.1\n" in text
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600 and stat.S_IMODE(png.stat().st_mode) == 0o600
    if shutil.which("zbarimg"):
        r = subprocess.run(["zbarimg", "--raw", "-q", str(png)], capture_output=True, text=True, timeout=30)
        assert r.stdout.rstrip("\n") == text.rstrip("\n")

    svg = tmp_path / "tablet.svg"
    out = ok(nmctl("extclient", "create", "office", "tablet", "--gateway", gw, "--qr", str(svg))).stdout
    assert "Configuration (the only copy of the private key; keep it secret):" in out
    assert "PrivateKey = " in out
    assert svg.read_text().startswith("<svg ")

    listing = ok(nmctl("extclient", "list", "office")).stdout
    assert "phone" in listing and "tablet" in listing and "10.99.0.254" in listing
    clients = {c["name"]: c for c in json.loads(ok(nmctl("extclient", "list", "office", "--json")).stdout)}
    pid = clients["phone"]["id"]
    assert "Enabled:" in ok(nmctl("extclient", "disable", pid)).stdout
    assert net.admin("GET", f"/ext-clients/{pid}", expect=200)["enabled"] is False
    ok(nmctl("extclient", "enable", pid))
    shown = ok(nmctl("extclient", "show", pid)).stdout
    assert "192.168.77.0/24" in shown and "PrivateKey" not in shown
    beta = net.node["beta"]
    out = ok(nmctl("extclient", "deny", pid, beta)).stdout
    assert re.search(r"Denied nodes:\s+" + beta, out), out
    assert net.admin("GET", f"/ext-clients/{pid}", expect=200)["denied_nodes"] == [beta]
    refused(nmctl("extclient", "deny", pid, gw), f"Node {gw} (gw) is the client's gateway: a gateway always "
            "reaches its own clients, so it cannot be denied")
    ok(nmctl("extclient", "deny", pid))
    assert net.admin("GET", f"/ext-clients/{pid}", expect=200)["denied_nodes"] == []
    assert nmctl("extclient", "deny").returncode == 2
    created = json.loads(ok(nmctl("extclient", "create", "office", "watch", "--gateway", gw, "--deny", beta,
                                  "--json")).stdout)
    assert created["denied_nodes"] == [beta]
    assert ok(nmctl("extclient", "delete", pid)).stdout == f"Deleted external client {pid}.\n"

    refused(nmctl("extclient", "create", "office", "tablet", "--gateway", gw),
            'The name "tablet" is taken in network "office" by external client ' + clients["tablet"]["id"])
    refused(nmctl("extclient", "delete", pid), f'External client "{pid}" does not exist')
    assert nmctl("extclient", "create", "office", "x").returncode == 2
    assert nmctl("extclient", "create", "office", "x", "--gateway", gw, "--qr", "x.jpg").returncode == 2
