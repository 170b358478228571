"""A phone on the mesh as a user runs one (docs/dns.md "Forwarding", docs/topologies.md "Full
tunnel"): the stock wg-quick brings up an external client made with "internet_gateway": true on a
gateway that is both the ingress and the internet gateway, its configuration points DNS at the
gateway, and through the tunnel it

- resolves a mesh name (answered by the gateway) and an outside name (forwarded to the gateway's
  upstream: a dnsmasq the test runs in a namespace behind the gateway, named in the gateway's own
  private /etc/resolv.conf, so no real resolver is ever asked), over UDP and TCP;
- reaches an address behind the internet gateway (the dnsmasq's namespace);
- gets a repeated name from the gateway's cache: dnsmasq logs the name once;
- is refused past its rate limit when it floods the gateway.

And nobody else is forwarded for: a query from outside the mesh (the upstream's namespace, routed
to the gateway's mesh address) and one from a mesh node are REFUSED and never reach dnsmasq; a
client that is not full-tunnel is dropped before the internet in the gateway's nftables table.
"""

import json
import os
import re
import subprocess

import pytest

from nmtest import dns
from nmtest.mesh import Mesh
from nmtest.node import wait_until
from nmtest.sidenet import SideNet, WgQuickClient, nft_table

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

NET = "office"
IF = "nm-office"
UPSTREAM = "203.0.113.53"
OUTSIDE = "www.example.test"
DNSMASQ = "/usr/sbin/dnsmasq"


def node_id(mesh, node):
    return mesh.status(node)["networks"][0]["node_id"]


def ask(runner, server, name, qtype="A", tcp=False):
    """The decoded answer of one query made inside `runner` (a node, a client or a side net)."""
    argv = ["/usr/bin/python3", dns.__file__, server, name, qtype] + (["--tcp"] if tcp else [])
    p = runner.run(argv)
    return json.loads(p.stdout) if p.stdout.strip() else {"error": p.stderr}


def queries_seen(log, name):
    return len(re.findall(rf"query\[A\] {re.escape(name)} from", log.read_text() if log.exists() else ""))


FLOOD = r'''
import sys
sys.path.insert(0, sys.argv[1])
import dns
counts = {}
for i in range(int(sys.argv[4])):
    try:
        r = dns.query(sys.argv[2], sys.argv[3], "A", timeout=2.0)["rcode"]
    except OSError as e:
        r = type(e).__name__
    counts[r] = counts.get(r, 0) + 1
print(counts)
'''


@pytest.fixture
def mesh(tmp_path):
    # Every node's /etc/resolv.conf names the test's dnsmasq: whatever forwards, asks only it.
    with Mesh(tmp_path / "mesh", nodes=2, subnet=44,
              node_options={"resolv_conf": f"nameserver {UPSTREAM}\n"}) as m:
        m.join_all()
        m.wait_full_mesh()
        yield m


def test_phone_full_tunnel_and_dns(mesh, tmp_path):
    gw, other = mesh.nodes
    srv = mesh.server
    gw_id = node_id(mesh, gw)
    inet = SideNet(mesh, gw, "inet", "203.0.113.1/24", f"{UPSTREAM}/24").create()
    log = tmp_path / "dnsmasq.log"
    dnsmasq = None
    client = None
    try:
        # The gateway's upstream resolver, behind its internet side.
        dnsmasq = subprocess.Popen(["ip", "netns", "exec", inet.name, DNSMASQ, "--keep-in-foreground",
                                    "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces",
                                    f"--listen-address={UPSTREAM}", "--except-interface=lo", "--cache-size=0",
                                    f"--address=/{OUTSIDE}/{UPSTREAM}", "--address=/nothing.example.test/",
                                    "--local-ttl=300", "--log-queries", f"--log-facility={log}",
                                    f"--pid-file={tmp_path / 'dnsmasq.pid'}"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: "started" in (log.read_text() if log.exists() else "") or dnsmasq.poll() is not None,
                   10, "dnsmasq")
        assert dnsmasq.poll() is None, dnsmasq.stderr.read()
        assert ask(inet, UPSTREAM, OUTSIDE)["addresses"] == [UPSTREAM]
        base = queries_seen(log, OUTSIDE)

        # Both roles on the gateway; the full-tunnel client needs them.
        srv.admin("PUT", f"/nodes/{gw_id}/ingress", expect=200)
        status, body = srv.api("POST", f"/networks/{NET}/ext-clients",
                               json={"name": "phone", "gateway": gw_id, "internet_gateway": True},
                               token=srv.admin_token())
        assert status == 409 and "not an internet gateway" in body["error"]["message"], body
        srv.admin("PUT", f"/nodes/{gw_id}/internet-gateway", expect=200)
        ext = srv.admin("POST", f"/networks/{NET}/ext-clients",
                        json={"name": "phone", "gateway": gw_id, "internet_gateway": True}, expect=201)
        assert ext["internet_gateway"] is True
        gw_addr = mesh.mesh_address(gw)
        assert "AllowedIPs = 0.0.0.0/0, ::/0" in ext["config"] and f"DNS = {gw_addr}" in ext["config"]
        # A client that is not full-tunnel: kept from the internet by the gateway's table.
        laptop = srv.admin("POST", f"/networks/{NET}/ext-clients", json={"name": "laptop", "gateway": gw_id},
                           expect=201)
        assert laptop["internet_gateway"] is False
        wait_until(lambda: ext["public_key"] in (gw.wg_peers(IF) or {}), 20, "the phone on the gateway")
        def kept_out(address):
            return any(f"ip saddr {address} " in line and line.endswith('oifname != "nm-*" drop')
                       for line in (nft_table(gw, "inet", "netmaker") or "").splitlines())
        wait_until(lambda: kept_out(laptop["ipv4"]), 20, "the laptop kept from the internet")
        assert not kept_out(ext["ipv4"])
        wait_until(lambda: "forwarding names outside office.nm.internal" in gw.log(), 20,
                   "the gateway forwarding for its clients")

        client = WgQuickClient(mesh, tmp_path / "phone", "phone").start()
        client.up(ext["config"])
        assert f"nameserver {gw_addr}" in client.resolvconf_log.read_text()
        # Behind the internet gateway, through the tunnel (the client has no other way there).
        wait_until(lambda: client.ping(UPSTREAM, count=1, timeout=1), 20, "the phone reaching the internet side")
        assert "dev phone" in client.run(["ip", "route", "get", UPSTREAM]).stdout

        # A mesh name: the gateway's own answer; upstream not asked.
        r = ask(client, gw_addr, f"{other.name}.{NET}.nm.internal")
        assert r["rcode"] == "NOERROR" and r["aa"] and r["addresses"] == [mesh.mesh_address(other)], r
        # An outside name: forwarded to dnsmasq, recursion available, not authoritative.
        r = ask(client, gw_addr, OUTSIDE)
        assert r["rcode"] == "NOERROR" and r["addresses"] == [UPSTREAM] and r["ra"] and not r["aa"], r
        assert queries_seen(log, OUTSIDE) == base + 1
        # Again, over UDP and TCP: from the cache, dnsmasq asked no more.
        for tcp in (False, True):
            r = ask(client, gw_addr, OUTSIDE, tcp=tcp)
            assert r["rcode"] == "NOERROR" and r["addresses"] == [UPSTREAM], r
        assert queries_seen(log, OUTSIDE) == base + 1
        # A name the upstream does not know: its NXDOMAIN, passed on.
        r = ask(client, gw_addr, "nothing.example.test", tcp=True)
        assert r["rcode"] == "NXDOMAIN", r

        # Nobody else is forwarded for: outside the mesh, nor a mesh node.
        inet.run(["ip", "route", "add", mesh.ipv4_range, "via", "203.0.113.1"], check=True)
        for who in (inet, other):
            r = ask(who, gw_addr, "other.example.test")
            assert r["rcode"] == "REFUSED" and r["addresses"] == [], (who, r)
            r = ask(who, gw_addr, "other.example.test", tcp=True)
            assert r["rcode"] == "REFUSED", (who, r)
        assert queries_seen(log, "other.example.test") == 0
        # The mesh's own names are still answered to the outside as before (authoritative only).
        r = ask(inet, gw_addr, f"{other.name}.{NET}.nm.internal")
        assert r["rcode"] == "NOERROR" and r["addresses"] == [mesh.mesh_address(other)]

        # A flood from the phone: past its burst (100 at once) REFUSED; the upstream saw it once.
        script = tmp_path / "flood.py"
        script.write_text(FLOOD)
        p = client.run(["/usr/bin/python3", str(script), os.path.dirname(dns.__file__), gw_addr, OUTSIDE, "250"],
                       timeout=120)
        counts = eval(p.stdout.strip() or "{}", {})  # a dict printed by the script above
        assert counts.get("REFUSED", 0) >= 80 and counts.get("NOERROR", 0) >= 50, (counts, p.stderr)
        assert queries_seen(log, OUTSIDE) == base + 1
    finally:
        if client:
            client.cleanup()
        if dnsmasq and dnsmasq.poll() is None:
            dnsmasq.terminate()
            dnsmasq.wait(5)
        inet.cleanup()
