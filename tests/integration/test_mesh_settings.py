"""Host and network settings on real devices: netclientd nodes in namespaces (wireguard-go), changed
by the admin after they joined, checked with the stock tools (`wg show`, `ip link`) as an outside
observer would. A host's MTU changes its own links only; its keepalive every pair it is in, on both
ends; its listen port its links' port and its peers' endpoints of it; its static endpoint what its
peers send to; its name its DNS names on every node. A network's MTU and keepalive reach every link.
Sessions of unchanged peers are never reset (their latest handshake stays), and everything holds
across restarts of netclientd (from its saved state, and from what the server says meanwhile) and
of netmakerd."""

import json
import os
import time

import pytest

from nmtest import dns
from nmtest.mesh import Mesh
from nmtest.node import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

ZONE = "office.nm.internal"
IF = "nm-office"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with Mesh(tmp_path_factory.mktemp("settings"), nodes=3, subnet=60) as m:
        m.join_all()
        m.wait_full_mesh()
        assert m.wait_ping_matrix() == {}
        yield m


def link_mtu(node, ifname=IF):
    p = node.run(["ip", "-j", "link", "show", "dev", ifname])
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)[0]["mtu"]


def host_id(mesh, node):
    return mesh.status(node)["host_id"]


def key(mesh, node):
    return mesh.public_key(node)


def session(node, peer_key):
    """(latest handshake, rx bytes) of the peer on the node's device."""
    p = (node.wg_peers(IF) or {}).get(peer_key)
    return (p["latest_handshake"], p["rx"]) if p else (0, 0)


class Sessions:
    """The latest handshakes of chosen pairs, to prove that a change did not reset their sessions.
    WireGuard itself starts a new handshake every 2 minutes of traffic: a session older than 100 s
    when it was recorded proves nothing either way and is not judged."""

    def __init__(self, mesh, pairs):
        self.mesh = mesh
        self.pairs = [(a, b, key(mesh, b)) for a, b in pairs]
        for a, b, _ in self.pairs:
            assert a.ping(mesh.mesh_address(b), count=1, timeout=3) or a.ping(mesh.mesh_address(b), count=2,
                                                                                timeout=3), (a, b)
        self.before = {(a.name, b.name): session(a, k) for a, b, k in self.pairs}
        self.at = time.time()

    def assert_kept(self, what):
        for a, b, k in self.pairs:
            hs, rx = self.before[(a.name, b.name)]
            assert hs > 0, f"{a.name}-{b.name} had no session before {what}"
            if self.at - hs > 100:
                continue
            # Traffic on the session, then the same handshake: nothing reset it.
            assert a.ping(self.mesh.mesh_address(b), count=1, timeout=3) or \
                a.ping(self.mesh.mesh_address(b), count=2, timeout=3), f"{a.name} -> {b.name} after {what}"
            now = session(a, k)
            assert now[0] == hs, f"{what} reset the session {a.name}-{b.name}: handshake {hs} -> {now[0]}"
            assert now[1] > rx, (a.name, b.name, rx, now)


def test_host_mtu_changes_its_own_links_only(mesh):
    n1, n2, n3 = mesh.nodes
    kept = Sessions(mesh, [(n1, n2), (n2, n3), (n3, n1)])
    assert {n.name: link_mtu(n) for n in mesh.nodes} == {"node1": 1420, "node2": 1420, "node3": 1420}
    mesh.server.admin("PUT", f"/hosts/{host_id(mesh, n1)}", json={"mtu": 1380}, expect=200)
    wait_until(lambda: link_mtu(n1) == 1380, 15, "node1's link MTU")
    time.sleep(0.5)
    assert link_mtu(n2) == 1420 and link_mtu(n3) == 1420
    assert mesh.status(n1)["networks"][0]["mtu"] == 1380
    kept.assert_kept("node1's MTU")
    # Packets that fit 1380 and not 1420-sized ones... the path still carries the mesh's traffic.
    assert n1.run(["ping", "-n", "-q", "-c", "1", "-W", "3", "-M", "do", "-s", str(1380 - 28),
                   mesh.mesh_address(n2)]).returncode == 0
    assert n1.run(["ping", "-n", "-q", "-c", "1", "-W", "2", "-M", "do", "-s", str(1381 - 28),
                   mesh.mesh_address(n2)]).returncode != 0

    # A network MTU change reaches the others, not node1 (its own MTU wins), then back to defaults.
    mesh.server.admin("PUT", "/networks/office", json={"mtu": 1400}, expect=200)
    wait_until(lambda: link_mtu(n2) == 1400 and link_mtu(n3) == 1400, 15, "the network's MTU on node2 and node3")
    assert link_mtu(n1) == 1380
    mesh.server.admin("PUT", f"/hosts/{host_id(mesh, n1)}", json={"mtu": None}, expect=200)
    wait_until(lambda: link_mtu(n1) == 1400, 15, "node1 back to the network's MTU")
    mesh.server.admin("PUT", "/networks/office", json={"mtu": 1420}, expect=200)
    wait_until(lambda: {link_mtu(n) for n in mesh.nodes} == {1420}, 15, "the default MTU everywhere")
    kept.assert_kept("the network's MTU")


def test_keepalive_of_a_host_and_of_the_network(mesh):
    n1, n2, n3 = mesh.nodes
    k1, k2, k3 = (key(mesh, n) for n in mesh.nodes)
    kept = Sessions(mesh, [(n1, n2), (n2, n3), (n3, n1)])
    assert n2.wg_peers(IF)[k1]["keepalive"] == 20
    mesh.server.admin("PUT", f"/hosts/{host_id(mesh, n1)}", json={"keepalive": 7}, expect=200)
    # Every pair node1 is in, on both ends; node2-node3 untouched.
    wait_until(lambda: n2.wg_peers(IF)[k1]["keepalive"] == 7 and n3.wg_peers(IF)[k1]["keepalive"] == 7, 15,
               "node1's keepalive at its peers")
    wait_until(lambda: {p["keepalive"] for p in n1.wg_peers(IF).values()} == {7}, 15, "node1's own entries")
    assert n2.wg_peers(IF)[k3]["keepalive"] == 20 and n3.wg_peers(IF)[k2]["keepalive"] == 20
    kept.assert_kept("node1's keepalive")

    # The network's keepalive: every entry whose pair has no host keepalive.
    mesh.server.admin("PUT", "/networks/office", json={"keepalive": 9}, expect=200)
    wait_until(lambda: n2.wg_peers(IF)[k3]["keepalive"] == 9 and n3.wg_peers(IF)[k2]["keepalive"] == 9, 15,
               "the network's keepalive on node2 and node3")
    assert n2.wg_peers(IF)[k1]["keepalive"] == 7
    mesh.server.admin("PUT", "/networks/office", json={"keepalive": 0}, expect=200)
    wait_until(lambda: n2.wg_peers(IF)[k3]["keepalive"] == 0, 15, "keepalive off")
    mesh.server.admin("PUT", f"/hosts/{host_id(mesh, n1)}", json={"keepalive": None}, expect=200)
    wait_until(lambda: n2.wg_peers(IF)[k1]["keepalive"] == 0 and
               {p["keepalive"] for p in n1.wg_peers(IF).values()} == {0}, 15, "node1 back to the network's")
    mesh.server.admin("PUT", "/networks/office", json={"keepalive": 20}, expect=200)
    wait_until(lambda: all(p["keepalive"] == 20 for n in mesh.nodes for p in n.wg_peers(IF).values()), 15,
               "the default keepalive everywhere")
    kept.assert_kept("the network's keepalive")


def test_listen_port_and_static_endpoint(mesh):
    n1, n2, n3 = mesh.nodes
    k1 = key(mesh, n1)
    kept = Sessions(mesh, [(n2, n3)])
    assert n1.wg_dump(IF)[0]["listen_port"] == 51821
    mesh.server.admin("PUT", f"/hosts/{host_id(mesh, n1)}", json={"listen_port": 51900}, expect=200)
    wait_until(lambda: n1.wg_dump(IF)[0]["listen_port"] == 51900, 15, "node1's device port")
    for n in (n2, n3):
        wait_until(lambda: n.wg_peers(IF)[k1]["endpoint"] == f"{n1.netns.address}:51900", 15,
                   f"{n.name}'s endpoint of node1")
    assert mesh.status(n1)["networks"][0]["listen_port"] == 51900
    assert mesh.wait_ping_matrix(timeout=30) == {}
    kept.assert_kept("node1's port")

    # A static endpoint: node1's second address, which it reports only after its first.
    second = f"198.18.{mesh.subnet}.{200 + n1.netns.index}"
    n1.run(["ip", "addr", "add", f"{second}/24", "dev", "eth0"], check=True)
    mesh.server.admin("PUT", f"/hosts/{host_id(mesh, n1)}", json={"endpoint": second}, expect=200)
    for n in (n2, n3):
        wait_until(lambda: n.wg_peers(IF)[k1]["endpoint"] == f"{second}:51900", 15, f"{n.name} to use {second}")
    # node1 checking in (its address list changed) does not move it.
    wait_until(lambda: second in mesh.server.admin("GET", f"/hosts/{host_id(mesh, n1)}", expect=200)["endpoints"],
               15, "node1's check-in with both addresses")
    time.sleep(0.5)
    assert n2.wg_peers(IF)[k1]["endpoint"] == f"{second}:51900"
    # Traffic from node2 goes to that address: node1 sees it arrive there.
    n1.run(["ip", "route", "flush", "cache"])
    assert n2.ping(mesh.mesh_address(n1), count=2, timeout=3) or n2.ping(mesh.mesh_address(n1), count=2, timeout=3)
    assert n1.wg_peers(IF)[key(mesh, n2)]["endpoint"].startswith(n2.netns.address)

    # Back to the defaults.
    mesh.server.admin("PUT", f"/hosts/{host_id(mesh, n1)}", json={"endpoint": None, "listen_port": None},
                      expect=200)
    wait_until(lambda: n1.wg_dump(IF)[0]["listen_port"] == 51821, 15, "node1's network port")
    for n in (n2, n3):
        wait_until(lambda: n.wg_peers(IF)[k1]["endpoint"] == f"{n1.netns.address}:51821", 15,
                   f"{n.name}'s endpoint of node1 again")
    n1.run(["ip", "addr", "del", f"{second}/24", "dev", "eth0"])
    assert mesh.wait_ping_matrix(timeout=30) == {}
    kept.assert_kept("the defaults")


def test_rename_keeps_dns_consistent(mesh):
    n1, n2, n3 = mesh.nodes
    addr1 = mesh.mesh_address(n1)

    def ask(node, name):
        p = node.run(["/usr/bin/python3", dns.__file__, mesh.mesh_address(node), name, "A"], timeout=20)
        return json.loads(p.stdout)

    assert ask(n2, f"node1.{ZONE}")["addresses"] == [addr1]
    mesh.server.admin("PUT", f"/hosts/{host_id(mesh, n1)}", json={"name": "first"}, expect=200)
    for n in mesh.nodes:
        wait_until(lambda: ask(n, f"first.{ZONE}")["addresses"] == [addr1], 15, f"{n.name} to answer first")
        assert ask(n, f"node1.{ZONE}")["rcode"] == "NXDOMAIN"
    # The bus and netclient show the new name too.
    peers = {p["public_key"]: p for p in n2.netclient_json("peers")}
    assert peers[key(mesh, n1)]["name"] == "first"
    mesh.server.admin("PUT", f"/hosts/{host_id(mesh, n1)}", json={"name": "node1"}, expect=200)
    wait_until(lambda: ask(n3, f"node1.{ZONE}")["addresses"] == [addr1], 15, "the old name back")


def test_settings_survive_restarts(mesh):
    n1, n2, n3 = mesh.nodes
    k1 = key(mesh, n1)
    hid = host_id(mesh, n1)
    mesh.server.admin("PUT", f"/hosts/{hid}", json={"mtu": 1360, "keepalive": 11}, expect=200)
    wait_until(lambda: link_mtu(n1) == 1360 and n2.wg_peers(IF)[k1]["keepalive"] == 11, 15, "the settings")

    # netclientd stops; the link drifts meanwhile; its saved state puts it right at the start.
    assert n1.stop_netclientd() == 0
    n1.run(["ip", "link", "set", "dev", IF, "mtu", "1500"], check=True)
    n1.start_netclientd()
    wait_until(lambda: link_mtu(n1) == 1360, 15, "node1's MTU from its saved state")
    assert {p["keepalive"] for p in n1.wg_peers(IF).values()} == {11}

    # netclientd is away while the admin changes a setting: it applies it when it is back.
    assert n1.stop_netclientd() == 0
    mesh.server.admin("PUT", f"/hosts/{hid}", json={"listen_port": 51950}, expect=200)
    wait_until(lambda: n2.wg_peers(IF)[k1]["endpoint"] == f"{n1.netns.address}:51950", 15, "node2 told")
    n1.start_netclientd()
    wait_until(lambda: n1.wg_dump(IF)[0]["listen_port"] == 51950, 20, "node1's port after its restart")
    assert mesh.wait_ping_matrix(timeout=30) == {}

    # netmakerd restarts: the settings are in its database.
    kept = Sessions(mesh, [(n1, n2), (n2, n3)])
    mesh.server.restart()
    h = mesh.server.admin("GET", f"/hosts/{hid}", expect=200)
    assert h["settings"] == {"listen_port": 51950, "endpoint": None, "keepalive": 11, "mtu": 1360}
    n1.netclient("pull")
    assert link_mtu(n1) == 1360 and n1.wg_dump(IF)[0]["listen_port"] == 51950
    kept.assert_kept("the server's restart")

    mesh.server.admin("PUT", f"/hosts/{hid}", json={"mtu": None, "keepalive": None, "listen_port": None},
                      expect=200)
    wait_until(lambda: link_mtu(n1) == 1420 and n1.wg_dump(IF)[0]["listen_port"] == 51821, 15, "the defaults")
    assert mesh.wait_ping_matrix(timeout=30) == {}
