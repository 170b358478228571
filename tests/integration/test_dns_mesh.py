"""Mesh DNS on real nodes (docs/dns.md): every node's netclientd answers the network's names on its
mesh addresses (UDP and TCP, IPv4 and IPv6) — the peers, itself, and the custom names an admin
adds with nmctl, which come and go on every node without restarts — refuses names outside its
zone, answers a node that joins later, and closes its listeners when the node leaves. With the real
systemd-resolved in each node: the link is registered (DNS server, ~domain, not the default route),
`resolvectl query` is answered through our responder, a resolved restart gets the settings again,
Disconnect and leave take them away, and a link that networkd manages goes through networkd."""

import json
import os
import subprocess
import time

import pytest

from nmtest import dns
from nmtest.mesh import Mesh
from nmtest.node import wait_until
from nmtest.server import binary

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

ZONE = "office.nm.internal"


def ask(node, server, name, qtype="A", tcp=False):
    """Runs the tiny DNS client inside the node; the decoded answer, or {"error": ...}."""
    argv = ["/usr/bin/python3", dns.__file__, server, name, qtype] + (["--tcp"] if tcp else [])
    p = node.run(argv, timeout=20)
    assert p.stdout.strip(), f"{node.name}: no output from the DNS client: {p.stderr}"
    return json.loads(p.stdout)


def addresses(node, server, name, qtype="A", tcp=False):
    r = ask(node, server, name, qtype, tcp)
    assert "error" not in r, f"{node.name}: {name} {qtype} at {server}: {r['error']}\n{node.log_tail()}"
    return r["rcode"], sorted(r["addresses"])


def nmctl(mesh, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
    env.update(NMCTL_SERVER=mesh.server.url, NMCTL_PIN=mesh.server.pin, NMCTL_MASTER_KEY=mesh.server.MASTER_KEY,
               LC_ALL="C")
    p = subprocess.run([str(binary("nmctl")), *args], env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"nmctl {' '.join(args)}: {p.returncode} {p.stderr}"
    return p


def listening_on(node, address):
    """The local sockets on address:53, as `ss` sees them inside the node."""
    out = node.run(["ss", "-H", "-l", "-n", "-u", "-t"]).stdout
    return [line for line in out.splitlines() if f"{address}:53 " in line or f"[{address}]:53 " in line]


def test_names_answered_on_every_node(tmp_path):
    with Mesh(tmp_path, nodes=3, ipv6_range="fd00:99::/64") as mesh:
        mesh.join_all()
        mesh.wait_full_mesh()
        n1, n2, n3 = mesh.nodes
        v4 = {n.name: mesh.mesh_address(n) for n in mesh.nodes}
        assert v4 == {"node1": "10.99.0.1", "node2": "10.99.0.2", "node3": "10.99.0.3"}
        v6 = {"node1": "fd00:99::1", "node2": "fd00:99::2", "node3": "fd00:99::3"}

        # Each node asks its own responder about the others and itself, over UDP and TCP, on its
        # IPv4 and IPv6 mesh address.
        for asker in mesh.nodes:
            for server in (v4[asker.name], v6[asker.name]):
                for tcp in (False, True):
                    for target in mesh.nodes:
                        name = f"{target.name}.{ZONE}"
                        assert addresses(asker, server, name, "A", tcp) == ("NOERROR", [v4[target.name]])
                        assert addresses(asker, server, name, "AAAA", tcp) == ("NOERROR", [v6[target.name]])
        # Another node's responder answers through the tunnel just the same.
        assert addresses(n1, v4["node2"], f"node3.{ZONE}") == ("NOERROR", ["10.99.0.3"])

        # No resolved on these nodes: the responder answers all the same, the registration waits.
        p = n1.busctl("get-property", "org.netmaker.Client", "/org/netmaker/Client/network/office",
                      "org.netmaker.Client.Network", "DNSState")
        assert p.stdout.strip() == 's "pending"', p.stdout + p.stderr

        # Authoritative NXDOMAIN in the zone (with the SOA), REFUSED outside it, never recursion.
        r = ask(n1, v4["node1"], f"nobody.{ZONE}")
        assert (r["rcode"], r["aa"], r["authority"], r["ra"]) == ("NXDOMAIN", True, 1, False)
        r = ask(n1, v4["node1"], "example.com", tcp=True)
        assert (r["rcode"], r["aa"], r["answers"]) == ("REFUSED", False, 0)
        assert ask(n1, v4["node1"], "nm.internal")["rcode"] == "REFUSED"
        # The zone's apex exists (NODATA); names are case-insensitive.
        r = ask(n1, v4["node1"], ZONE)
        assert (r["rcode"], r["answers"]) == ("NOERROR", 0)
        assert addresses(n1, v4["node1"], f"NODE2.Office.NM.internal") == ("NOERROR", ["10.99.0.2"])

        # A custom name reaches every node without a restart...
        pids = [n.netclientd_pid() for n in mesh.nodes]
        nmctl(mesh, "dns", "add", "office", "printer.lab", "--ipv4", "192.168.50.7", "--ipv6", "fd00:50::7")
        for n in mesh.nodes:
            wait_until(lambda: ask(n, v4[n.name], f"printer.lab.{ZONE}")["addresses"] == ["192.168.50.7"], 10,
                       f"{n.name} to answer printer.lab")
            assert addresses(n, v6[n.name], f"printer.lab.{ZONE}", "AAAA", tcp=True) == ("NOERROR", ["fd00:50::7"])
            # ...and its parent exists now (NODATA, not NXDOMAIN).
            assert ask(n, v4[n.name], f"lab.{ZONE}")["rcode"] == "NOERROR"
        # ...and goes again.
        nmctl(mesh, "dns", "delete", "office", "printer.lab")
        for n in mesh.nodes:
            wait_until(lambda: ask(n, v4[n.name], f"printer.lab.{ZONE}")["rcode"] == "NXDOMAIN", 10,
                       f"{n.name} to forget printer.lab")
        assert [n.netclientd_pid() for n in mesh.nodes] == pids

        # A node that joins later is answered by the others, and answers for them.
        n4 = mesh.add_node()
        mesh.join(n4)
        mesh.wait_full_mesh()
        v4["node4"] = mesh.mesh_address(n4)
        for n in (n1, n2):
            wait_until(lambda: ask(n, v4[n.name], f"node4.{ZONE}")["addresses"] == [v4["node4"]], 10,
                       f"{n.name} to answer node4")
        assert addresses(n4, v4["node4"], f"node1.{ZONE}", tcp=True) == ("NOERROR", ["10.99.0.1"])

        # A node that leaves: its responder's listeners are gone, and the others forget its name.
        assert listening_on(n3, "10.99.0.3") and listening_on(n3, "fd00:99::3")
        p = n3.netclient("leave", "office")
        assert p.returncode == 0, p.stderr
        assert listening_on(n3, "10.99.0.3") == [] and listening_on(n3, "fd00:99::3") == []
        for n in (n1, n2, n4):
            wait_until(lambda: ask(n, v4[n.name], f"node3.{ZONE}")["rcode"] == "NXDOMAIN", 10,
                       f"{n.name} to forget node3")


def test_resolved_registration(tmp_path):
    with Mesh(tmp_path, nodes=2, node_options={"resolved": True}) as mesh:
        mesh.join_all()
        mesh.wait_full_mesh()
        n1, n2 = mesh.nodes

        def dns_state(node):
            p = node.busctl("get-property", "org.netmaker.Client", "/org/netmaker/Client/network/office",
                            "org.netmaker.Client.Network", "DNSState")
            return p.stdout.strip().split(" ", 1)[1].strip('"') if p.returncode == 0 else p.stderr

        def registered(node, address):
            st = node.resolvectl("status", "nm-office").stdout
            return f"DNS Servers: {address}" in st and f"~{ZONE}" in st and "-DefaultRoute" in st

        def resolves(node, name, want):
            p = node.resolvectl("query", "--cache=no", name)
            return p.returncode == 0 and want in p.stdout and "link: nm-office" in p.stdout

        for n, addr in ((n1, "10.99.0.1"), (n2, "10.99.0.2")):
            wait_until(lambda: dns_state(n) == "resolved", 10, f"{n.name}'s DNSState to be resolved")
            assert registered(n, addr), n.resolvectl("status", "nm-office").stdout
            p = n.busctl("get-property", "org.netmaker.Client", "/org/netmaker/Client/network/office",
                         "org.netmaker.Client.Network", "DNSZone")
            assert p.stdout.strip() == f's "{ZONE}"'
        # netclient shows it too.
        [net] = n1.netclient_json("status")["networks"]
        assert (net["dns_zone"], net["dns_state"]) == (ZONE, "resolved"), net
        out = n1.netclient("status").stdout
        assert f"office: names *.{ZONE} answered on the mesh address, registered with systemd-resolved" in out, out
        # resolvectl (and so every program using NSS or the stub) is answered through our responder.
        assert resolves(n1, f"node2.{ZONE}", "10.99.0.2"), n1.resolvectl("query", f"node2.{ZONE}")
        assert resolves(n2, f"node1.{ZONE}", "10.99.0.1")
        assert resolves(n1, f"node1.{ZONE}", "10.99.0.1")
        p = n1.resolvectl("query", "--cache=no", f"nobody.{ZONE}")
        assert p.returncode != 0 and "nobody" in p.stderr
        # Only our domain goes to us: nothing else was routed to the mesh link.
        st = n1.resolvectl("status").stdout
        assert "Global" in st and "DNS Domain: ~office.nm.internal" in n1.resolvectl("status", "nm-office").stdout

        # resolved restarts: netclientd sees it come back and registers the link again.
        n1.restart_resolved()
        wait_until(lambda: registered(n1, "10.99.0.1"), 10, "the registration after a resolved restart")
        assert resolves(n1, f"node2.{ZONE}", "10.99.0.2")
        # resolved stopped: the responder still answers; the state says what is missing.
        n1.stop_resolved()
        wait_until(lambda: dns_state(n1) == "pending", 10, "DNSState pending without resolved")
        assert "not registered yet (systemd-resolved is not running" in n1.netclient("status").stdout
        assert addresses(n1, "10.99.0.1", f"node2.{ZONE}") == ("NOERROR", ["10.99.0.2"])
        n1.start_resolved()
        wait_until(lambda: registered(n1, "10.99.0.1") and dns_state(n1) == "resolved", 10,
                   "the registration when resolved is back")

        # Disconnect reverts the link's DNS settings (the link stays); Connect brings them back.
        assert n1.netclient("disconnect", "office").returncode == 0
        wait_until(lambda: "DNS Servers" not in n1.resolvectl("status", "nm-office").stdout, 10,
                   "the link's DNS settings to be reverted")
        st = n1.resolvectl("status", "nm-office").stdout
        assert ZONE not in st, st
        assert dns_state(n1) == "off"
        assert listening_on(n1, "10.99.0.1") == []
        assert n1.netclient("connect", "office").returncode == 0
        wait_until(lambda: registered(n1, "10.99.0.1"), 10, "the registration after Connect")
        assert resolves(n1, f"node2.{ZONE}", "10.99.0.2")

        # netclientd restarts: the registration is made again, nothing is lost. (node1's Disconnect
        # had the server take node1 from node2's peers, and so its name; its Connect brings both back
        # through the server, which may still be on its way when node2 restarts.)
        n2.restart_netclientd()
        wait_until(lambda: dns_state(n2) == "resolved", 10, "DNSState after a netclientd restart")
        wait_until(lambda: resolves(n2, f"node1.{ZONE}", "10.99.0.1"), 15, "node1's name on node2")

        # Leave: the link goes, and with it every DNS setting; resolved no longer routes the zone.
        assert n1.netclient("leave", "office").returncode == 0
        wait_until(lambda: not n1.link_exists("nm-office"), 10, "nm-office to be gone")
        assert ZONE not in n1.resolvectl("status").stdout
        assert not resolves(n1, f"node2.{ZONE}", "10.99.0.2")


NETWORKD_MANAGES_OUR_LINK = """\
# The admin let networkd manage the mesh link (not what networkd-integration/ ships): resolved then
# refuses SetLinkDNS with LinkBusy and netclientd goes through networkd.
[Match]
Name=nm-*

[Network]
KeepConfiguration=yes
LinkLocalAddressing=no
IPv6AcceptRA=no
"""


def test_networkd_fallback_when_resolved_says_busy(tmp_path):
    opts = {"resolved": True, "networkd": True, "networkd_files": {"50-mesh.network": NETWORKD_MANAGES_OUR_LINK}}
    with Mesh(tmp_path, nodes=2, node_options=opts) as mesh:
        mesh.join_all()
        mesh.wait_full_mesh()
        n1 = mesh.nodes[0]

        def dns_state():
            p = n1.busctl("get-property", "org.netmaker.Client", "/org/netmaker/Client/network/office",
                          "org.netmaker.Client.Network", "DNSState")
            return p.stdout.strip()

        # networkd sees the link; resolved then says LinkBusy: the settings go through networkd,
        # which hands them to resolved itself.
        wait_until(lambda: dns_state() == 's "networkd"', 15, "DNSState networkd")
        st = n1.resolvectl("status", "nm-office").stdout
        assert "DNS Servers: 10.99.0.1" in st and f"~{ZONE}" in st, st
        p = n1.resolvectl("query", "--cache=no", f"node2.{ZONE}")
        assert p.returncode == 0 and "10.99.0.2" in p.stdout, p.stdout + p.stderr


CORP = "corp.example"
CORP_DNS = "192.168.61.53"
INTRANET = "192.168.61.80"


def test_nameservers_with_resolved(tmp_path):
    """Split DNS (docs/dns.md, "Nameservers"): the admin gives the network a nameserver for
    corp.example, a dnsmasq in a namespace behind node1 (an egress gateway to its LAN). Every node's
    link gets ~corp.example as a routing domain in its real systemd-resolved, beside the mesh zone;
    `resolvectl query` on either node is answered by dnsmasq through the node's own responder (node2's
    queries cross the mesh and node1's egress); mesh names still come from the mesh; another node's
    responder does not forward for a peer; and the domain goes from every link with the nameserver,
    after a restart of resolved or netclientd it is back, and Disconnect takes it away."""
    import subprocess

    from nmtest.sidenet import SideNet

    with Mesh(tmp_path / "mesh", nodes=2, subnet=61, node_options={"resolved": True}) as mesh:
        mesh.join_all()
        mesh.wait_full_mesh()
        n1, n2 = mesh.nodes
        srv = mesh.server
        corp = SideNet(mesh, n1, "corp", "192.168.61.1/24", f"{CORP_DNS}/24", default_route=True).create()
        log = tmp_path / "dnsmasq.log"
        dnsmasq = None
        try:
            dnsmasq = subprocess.Popen(
                ["ip", "netns", "exec", corp.name, "/usr/sbin/dnsmasq", "--keep-in-foreground", "--no-resolv",
                 "--no-hosts", "--no-poll", "--bind-interfaces", f"--listen-address={CORP_DNS}",
                 "--except-interface=lo", "--cache-size=0", f"--local=/{CORP}/",
                 f"--host-record=intranet.{CORP},{INTRANET}", "--log-queries", f"--log-facility={log}",
                 f"--pid-file={tmp_path / 'dnsmasq.pid'}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_until(lambda: "started" in (log.read_text() if log.exists() else "") or dnsmasq.poll() is not None,
                       10, "dnsmasq")
            assert dnsmasq.poll() is None, dnsmasq.stderr.read()

            def seen(name):
                return (log.read_text() if log.exists() else "").count(f"query[A] {name} from")

            def status(node):
                return node.resolvectl("status", "nm-office").stdout

            def routed(node):
                st = status(node)
                return f"~{CORP}" in st and f"~{ZONE}" in st and "-DefaultRoute" in st

            def resolves(node, name, want):
                p = node.resolvectl("query", "--cache=no", name)
                return p.returncode == 0 and want in p.stdout and "link: nm-office" in p.stdout

            # node1 routes its LAN for the mesh (with NAT, so dnsmasq answers node1).
            [n1_node] = srv.admin("GET", f"/hosts/{mesh.status(n1)['host_id']}", expect=200)["nodes"]
            srv.admin("PUT", f"/nodes/{n1_node['id']}/egress", json={"ranges": ["192.168.61.0/24"], "nat": True},
                      expect=200)
            wait_until(lambda: n2.ping(CORP_DNS, count=1, timeout=1), 20, "node2 reaching the LAN behind node1")

            # Before: nothing routes corp.example to the mesh.
            for n in (n1, n2):
                wait_until(lambda: f"~{ZONE}" in status(n), 15, f"{n.name}'s registration")
                assert f"~{CORP}" not in status(n)
            srv.admin("POST", "/networks/office/nameservers", json={"domain": CORP, "servers": [CORP_DNS]},
                      expect=201)
            for n in (n1, n2):
                wait_until(lambda: routed(n), 15, f"~{CORP} on {n.name}'s link")
                assert f"DNS Servers: {mesh.mesh_address(n)}" in status(n)
                assert "nameservers corp.example -> 192.168.61.53" in n.log()
            # Answered by dnsmasq through each node's own responder: node1 directly, node2 across the
            # mesh and node1's egress.
            base = seen(f"intranet.{CORP}")
            for n in (n1, n2):
                wait_until(lambda: resolves(n, f"intranet.{CORP}", INTRANET), 15, f"{n.name} resolving intranet")
            assert seen(f"intranet.{CORP}") >= base + 2
            p = n2.resolvectl("query", "--cache=no", f"nothing.{CORP}")
            assert p.returncode != 0, p.stdout
            # The mesh's names are still the mesh's.
            assert resolves(n2, f"node1.{ZONE}", mesh.mesh_address(n1))
            assert resolves(n1, f"node2.{ZONE}", mesh.mesh_address(n2))
            # A peer asking node1's responder directly is not forwarded for.
            before = seen(f"intranet.{CORP}")
            r = json.loads(n2.run(["/usr/bin/python3", dns.__file__, mesh.mesh_address(n1), f"intranet.{CORP}",
                                   "A"], timeout=20).stdout)
            assert r["rcode"] == "REFUSED", r
            assert seen(f"intranet.{CORP}") == before

            # resolved restarts, netclientd restarts: the routing domain is registered again.
            n1.restart_resolved()
            wait_until(lambda: routed(n1), 15, "the domain after a resolved restart")
            assert resolves(n1, f"intranet.{CORP}", INTRANET)
            n2.restart_netclientd()
            wait_until(lambda: routed(n2) and resolves(n2, f"intranet.{CORP}", INTRANET), 20,
                       "the domain after a netclientd restart")

            # Disconnect takes it away with the rest of the link's DNS; Connect brings it back.
            assert n2.netclient("disconnect", "office").returncode == 0
            wait_until(lambda: f"~{CORP}" not in status(n2) and "DNS Servers" not in status(n2), 15,
                       "the reverted link")
            assert n2.netclient("connect", "office").returncode == 0
            wait_until(lambda: routed(n2), 15, "the domain after Connect")

            # The nameserver goes: the domain leaves every link, and the names are no longer ours.
            assert srv.admin("DELETE", f"/networks/office/nameservers/{CORP}")[0] == 204
            for n in (n1, n2):
                wait_until(lambda: f"~{CORP}" not in status(n) and f"~{ZONE}" in status(n), 15,
                           f"~{CORP} gone from {n.name}")
                assert not resolves(n, f"intranet.{CORP}", INTRANET)
            assert resolves(n1, f"node2.{ZONE}", mesh.mesh_address(n2))
        finally:
            if dnsmasq and dnsmasq.poll() is None:
                dnsmasq.terminate()
                dnsmasq.wait(5)
            corp.cleanup()
