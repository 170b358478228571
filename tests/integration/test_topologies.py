"""Topologies end to end (docs/protocol.md §4): netmakerd, Mosquitto and netclientd nodes in
namespaces with wireguard-go and the real nftables, every role applied by the agent and checked
with packets and with the stock tools (`wg`, `ip`, `nft`) as outside observers:

- egress: a LAN behind a gateway node is reached from the other nodes (routes, forwarding, NAT in
  our own nftables table) while unrelated nftables tables stay byte for byte the same; removing the
  role removes our table and the routes; a restart of the gateway's netclientd keeps forwarding;
- ingress: an external client made over REST, brought up with the stock wg-quick from its .conf,
  reaches a mesh node through the gateway; its QR codes (PNG and SVG) decode to the same text;
  disabled it cannot, enabled it can again; denied one node, that node and it cannot reach each
  other while the rest can, until the denial is lifted; deleted it is gone from the gateway's peers;
- ACLs: a denied pair neither pings nor has each other as WireGuard peers while other pairs do,
  lifting the rule restores it without restarts; default deny with an allow rule by tag;
- relays: a node whose direct path to another is blocked on the underlay reaches it through its
  relay, and has only the relay as a WireGuard peer;
- endpoints: a node whose underlay address changes is followed by the others without restarts;
  STUN gives a node its public address, which reaches the server;
- internet gateway: a node that opts in (netclient internet-gateway) sends "internet" traffic
  through the gateway while it still reaches the server, the broker and its peers; opting out
  restores its routes and rules;
- IPv6: a dual-stack egress gateway in a second network (ip6 rules, IPv6 forwarding, NAT66);
  leaving the network takes the table and the others' routes along;
- restarts: routes and the table of roles that went while netclientd was stopped are removed when
  it starts; roles on the bus emit PropertiesChanged;
- bad input to SetInternetGateway, the CLI and STUNServers=.
"""

import base64
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from nmtest.mesh import Mesh
from nmtest.node import AgentNode, wait_until
from nmtest.sidenet import SideNet, StunResponder, WgQuickClient, nft, nft_table

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

NET = "office"
IF = "nm-office"


@pytest.fixture
def mesh(tmp_path):
    with Mesh(tmp_path / "mesh", nodes=3, subnet=7) as m:
        m.join_all()
        m.wait_full_mesh()
        yield m


def node_id(mesh, node):
    return mesh.status(node)["networks"][0]["node_id"]


def network_status(node):
    return node.netclient_json("status")["networks"][0]


def routes(node, *args):
    return node.run(["ip", *args, "route", "show", "dev", IF]).stdout


def pids(mesh):
    return {n.name: n.netclientd_pid() for n in mesh.nodes}


def eventually_ping(src, address, timeout=20):
    """A first ping may wait for a handshake that a lost packet delayed (5 s retries)."""
    return wait_until(lambda: src.ping(address, count=1, timeout=1), timeout, f"{src.name} pinging {address}",
                      interval=0.2)


def never_pings(src, address, tries=3):
    return not any(src.ping(address, count=1, timeout=1) for _ in range(tries))


class PropertyWatch:
    """Collects PropertiesChanged of org.netmaker.Client.Network on a node's bus (Gio)."""

    def __init__(self, node):
        import gi
        gi.require_version("Gio", "2.0")
        from gi.repository import Gio, GLib
        self.GLib = GLib
        flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
        self.bus = Gio.DBusConnection.new_for_address_sync(node.bus_address, flags, None, None)
        self.changes = []
        self.sub = self.bus.signal_subscribe("org.netmaker.Client", "org.freedesktop.DBus.Properties",
                                             "PropertiesChanged", None, None, 0, self._on, None)

    def _on(self, conn, sender, path, iface, signal, params, data):
        name, changed, _ = params.unpack()
        if name == "org.netmaker.Client.Network":
            self.changes.append(changed)

    def wait(self, predicate, timeout=20):
        ctx = self.GLib.MainContext.default()

        def seen():
            while ctx.iteration(False):
                pass
            return any(predicate(c) for c in self.changes)
        return wait_until(seen, timeout, "a PropertiesChanged signal", interval=0.02)

    def close(self):
        self.bus.signal_unsubscribe(self.sub)
        self.bus.close_sync(None)


# ---- egress -------------------------------------------------------------------------------------------

OTHER_TABLES = """table inet other {
        chain c {
                type filter hook forward priority 10; policy accept;
                counter
        }
}
table ip filter {
        chain FORWARD {
                type filter hook forward priority 0; policy accept;
                ip daddr 10.1.2.3 drop
        }
}
"""


def test_egress_gateway(mesh, tmp_path):
    gw, client, other = mesh.nodes
    lan = SideNet(mesh, gw, "lan", "192.168.50.1/24", "192.168.50.10/24").create()
    try:
        # Somebody else's firewall on the gateway: it must come out exactly as it went in.
        assert nft(gw, "-f", "-", input=OTHER_TABLES).returncode == 0
        other_before = (nft_table(gw, "inet", "other"), nft_table(gw, "ip", "filter"))
        assert all(other_before)
        assert nft_table(gw, "inet", "netmaker") is None
        assert not client.ping(lan.host_address)

        gw_id = node_id(mesh, gw)
        watch = PropertyWatch(gw)
        node = mesh.server.admin("PUT", f"/nodes/{gw_id}/egress", json={"ranges": ["192.168.50.0/24"], "nat": True},
                                 expect=200)
        assert node["roles"]["egress_ranges"] == ["192.168.50.0/24"]
        # Watchers hear of the new role.
        watch.wait(lambda c: c.get("Roles") == ["egress"])
        watch.wait(lambda c: c.get("EgressRanges") == ["192.168.50.0/24"])
        watch.close()

        # The other nodes route the range through their link; the gateway forwards and NATs.
        for n in (client, other):
            wait_until(lambda: "192.168.50.0/24" in routes(n), 20, f"{n.name}'s route to the LAN")
            eventually_ping(n, lan.host_address)
        ours = nft_table(gw, "inet", "netmaker")
        assert ours and "192.168.50.0/24" in ours and "masquerade" in ours and f'iifname "{IF}"' in ours
        assert gw.run(["cat", "/proc/sys/net/ipv4/ip_forward"]).stdout.strip() == "1"
        st = network_status(gw)
        assert st["roles"] == ["egress"] and st["egress_ranges"] == ["192.168.50.0/24"] and st["egress_nat"]
        assert network_status(client)["roles"] == []
        # The LAN host saw the gateway's address (NAT), it has no route to the mesh at all.
        assert "10.99.0.0" not in lan.run(["ip", "route"]).stdout

        # A restart of the gateway's agent keeps forwarding: the table is kept and adopted.
        gw.restart_netclientd()
        assert nft_table(gw, "inet", "netmaker") == ours
        assert client.ping(lan.host_address, count=1, timeout=2)
        wait_until(lambda: "Forwarding rules" in gw.log().split("starting netclientd")[-1], 10, "reconciled rules")
        assert nft_table(gw, "inet", "netmaker") == ours

        # The role goes: our table goes, the routes go, the LAN is out of reach.
        mesh.server.admin("DELETE", f"/nodes/{gw_id}/egress", expect=200)
        wait_until(lambda: nft_table(gw, "inet", "netmaker") is None, 20, "our table to go")
        for n in (client, other):
            wait_until(lambda: "192.168.50.0/24" not in routes(n), 20, f"{n.name}'s route to go")
        assert never_pings(client, lan.host_address)
        assert network_status(gw)["roles"] == []

        assert (nft_table(gw, "inet", "other"), nft_table(gw, "ip", "filter")) == other_before
        # Nothing else appeared either.
        tables = nft(gw, "list", "tables").stdout.split("\n")
        assert sorted(t for t in tables if t) == ["table inet other", "table ip filter"]
    finally:
        lan.cleanup()


def test_routes_reconciled_after_a_restart(mesh):
    """A route whose peer lost it while netclientd was stopped goes when it starts again."""
    gw, client, _ = mesh.nodes
    gw_id = node_id(mesh, gw)
    mesh.server.admin("PUT", f"/nodes/{gw_id}/egress",
                      json={"ranges": ["192.168.60.0/24", "192.168.61.0/24"], "nat": False}, expect=200)
    wait_until(lambda: "192.168.61.0/24" in routes(client), 20, "the client's routes")
    # The gateway applies its role on its own message: it may come after the client's.
    wait_until(lambda: nft_table(gw, "inet", "netmaker"), 20, "the gateway's table")
    assert "masquerade" not in nft_table(gw, "inet", "netmaker")
    client.stop_netclientd()
    mesh.server.admin("PUT", f"/nodes/{gw_id}/egress", json={"ranges": ["192.168.60.0/24"], "nat": False}, expect=200)
    assert "192.168.61.0/24" in routes(client)
    client.start_netclientd()
    wait_until(lambda: "192.168.61.0/24" not in routes(client), 20, "the stale route to go")
    assert "192.168.60.0/24" in routes(client)
    # And the gateway's table follows a restart without a role: it is removed at start.
    gw.stop_netclientd()
    mesh.server.admin("DELETE", f"/nodes/{gw_id}/egress", expect=200)
    assert nft_table(gw, "inet", "netmaker") is not None
    gw.start_netclientd()
    wait_until(lambda: nft_table(gw, "inet", "netmaker") is None, 20, "the gateway's table to go")
    wait_until(lambda: "192.168.60.0/24" not in routes(client), 20, "the client's route to go")


# ---- ingress and external clients ---------------------------------------------------------------------

def rasterize_qr_svg(svg, scale=4):
    """The SVG netmakerd draws (one white rect, one path of "Mx yhNv1h-Nz" runs) as a PGM image: a
    renderer for exactly that form, so the test fails loudly if the form changes."""
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
    vb = [int(v) for v in root.attrib["viewBox"].split()]
    assert vb[:2] == [0, 0] and vb[2] == vb[3], vb
    size = vb[2]
    paths = root.findall("{http://www.w3.org/2000/svg}path")
    assert len(paths) == 1 and paths[0].attrib["fill"] == "#000000"
    d = paths[0].attrib["d"]
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z", d)
    assert "".join(f"M{x} {y}h{n}v1h-{m}z" for x, y, n, m in runs) == d, "unexpected path commands"
    black = [[False] * size for _ in range(size)]
    for x, y, n, m in runs:
        assert n == m
        for i in range(int(n)):
            black[int(y)][int(x) + i] = True
    rows = []
    for y in range(size):
        row = bytes(0 if black[y][x] else 255 for x in range(size) for _ in range(scale))
        rows.extend([row] * scale)
    w = size * scale
    return b"P5\n%d %d\n255\n" % (w, w) + b"".join(rows)


def zbar(path):
    p = subprocess.run(["zbarimg", "--raw", "-q", "-Sbinary", str(path)], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode()


def test_ingress_external_client(mesh, tmp_path):
    gw, target, third = mesh.nodes
    gw_id = node_id(mesh, gw)
    srv = mesh.server
    # Only an ingress gateway takes external clients.
    status, body = srv.api("POST", f"/networks/{NET}/ext-clients", json={"name": "phone", "gateway": gw_id},
                           token=srv.admin_token())
    assert status in (400, 409) and "ingress" in body["error"]["message"], body

    srv.admin("PUT", f"/nodes/{gw_id}/ingress", expect=200)
    wait_until(lambda: network_status(gw)["roles"] == ["ingress"], 20, "the ingress role on the bus")
    ext = srv.admin("POST", f"/networks/{NET}/ext-clients", json={"name": "phone", "gateway": gw_id}, expect=201)
    conf = ext["config"]
    assert "PrivateKey = " in conf and f"Endpoint = {gw.netns.address}:51821" in conf
    assert f"DNS = {mesh.mesh_address(gw)}" in conf

    # The QR codes carry exactly the configuration.
    png = tmp_path / "phone.png"
    png.write_bytes(base64.b64decode(ext["qr_png"]))
    assert zbar(png).rstrip("\n") == conf.rstrip("\n")
    pgm = tmp_path / "phone-svg.pgm"
    pgm.write_bytes(rasterize_qr_svg(ext["qr_svg"]))
    assert zbar(pgm).rstrip("\n") == conf.rstrip("\n")

    # The gateway has the client as an external peer; the others reach it through the gateway.
    gw_peers = lambda: gw.wg_peers(IF) or {}  # noqa: E731
    wait_until(lambda: ext["public_key"] in gw_peers(), 20, "the client on the gateway")
    assert gw_peers()[ext["public_key"]]["allowed_ips"] == [f"{ext['ipv4']}/32"]
    peers = {p["public_key"]: p for p in gw.netclient_json("peers")}
    assert peers[ext["public_key"]]["external"] is True
    assert all(not p["external"] for k, p in peers.items() if k != ext["public_key"])
    assert "phone (ext)" in gw.netclient("peers").stdout
    gw_key = mesh.public_key(gw)
    wait_until(lambda: f"{ext['ipv4']}/32" in target.wg_peers(IF)[gw_key]["allowed_ips"], 20,
               "the client's address in the gateway's allowed IPs")

    client = WgQuickClient(mesh, tmp_path / "phone", "phone").start()
    try:
        client.up(conf)
        # wg-quick handed DNS= to (our stub) resolvconf; the host's resolv.conf is untouched.
        assert f"nameserver {mesh.mesh_address(gw)}" in client.resolvconf_log.read_text()
        eventually_ping(client, mesh.mesh_address(target))
        eventually_ping(client, mesh.mesh_address(third))
        assert target.ping(ext["ipv4"], count=1, timeout=2)
        ours = nft_table(gw, "inet", "netmaker")
        assert f'iifname "{IF}" oifname "{IF}" accept' in ours

        # Disabled: gone from the gateway, no traffic; enabled: back.
        srv.admin("PUT", f"/ext-clients/{ext['id']}", json={"enabled": False}, expect=200)
        wait_until(lambda: ext["public_key"] not in gw_peers(), 20, "the disabled client to go")
        wait_until(lambda: f"{ext['ipv4']}/32" not in target.wg_peers(IF)[gw_key]["allowed_ips"], 20,
                   "the disabled client's address to go")
        assert never_pings(client, mesh.mesh_address(target))
        srv.admin("PUT", f"/ext-clients/{ext['id']}", json={"enabled": True}, expect=200)
        wait_until(lambda: ext["public_key"] in gw_peers(), 20, "the enabled client")
        eventually_ping(client, mesh.mesh_address(target))

        # Denied one node: that node stops routing the client (its packets are dropped there),
        # the others still reach it and it them; no restart anywhere. Lifted: back.
        pids_before = pids(mesh)
        target_id = node_id(mesh, target)
        third_key_ips = lambda: third.wg_peers(IF)[gw_key]["allowed_ips"]  # noqa: E731
        body = srv.admin("PUT", f"/ext-clients/{ext['id']}", json={"denied_nodes": [target_id]}, expect=200)
        assert body["denied_nodes"] == [target_id] and body["enabled"] is True
        wait_until(lambda: f"{ext['ipv4']}/32" not in target.wg_peers(IF)[gw_key]["allowed_ips"], 20,
                   "the denied node to drop the client's address")
        assert f"{ext['ipv4']}/32" in third_key_ips()
        assert ext["public_key"] in gw_peers()
        assert never_pings(client, mesh.mesh_address(target))
        assert not target.ping(ext["ipv4"], count=1, timeout=1)
        eventually_ping(client, mesh.mesh_address(third))
        assert srv.admin("GET", f"/ext-clients/{ext['id']}", expect=200)["denied_nodes"] == [target_id]
        srv.admin("PUT", f"/ext-clients/{ext['id']}", json={"denied_nodes": []}, expect=200)
        wait_until(lambda: f"{ext['ipv4']}/32" in target.wg_peers(IF)[gw_key]["allowed_ips"], 20,
                   "the lifted node to route the client again")
        eventually_ping(client, mesh.mesh_address(target))
        assert pids(mesh) == pids_before

        # Deleted: gone for good, from the gateway's peers and the others' allowed IPs.
        before = pids(mesh)
        srv.admin("DELETE", f"/ext-clients/{ext['id']}", expect=204)
        wait_until(lambda: ext["public_key"] not in gw_peers(), 20, "the deleted client to go")
        wait_until(lambda: f"{ext['ipv4']}/32" not in target.wg_peers(IF)[gw_key]["allowed_ips"], 20,
                   "the deleted client's address to go")
        assert never_pings(client, mesh.mesh_address(target))
        assert pids(mesh) == before
    finally:
        client.cleanup()


# ---- ACLs ---------------------------------------------------------------------------------------------

def wg_keys(node):
    return set(node.wg_peers(IF) or {})


def test_acl_deny_pair_and_default_deny_with_tags(mesh):
    a, b, c = mesh.nodes
    ka, kb, kc = (mesh.public_key(n) for n in (a, b, c))
    ida, idb, idc = (node_id(mesh, n) for n in (a, b, c))
    addr = {n.name: mesh.mesh_address(n) for n in mesh.nodes}
    srv = mesh.server
    before = pids(mesh)

    rule = srv.admin("POST", f"/networks/{NET}/acl/rules",
                     json={"source": f"node:{ida}", "destination": f"node:{idb}", "action": "deny"}, expect=201)
    wait_until(lambda: wg_keys(a) == {kc} and wg_keys(b) == {kc}, 20, "a and b to drop each other")
    assert wg_keys(c) == {ka, kb}
    assert never_pings(a, addr[b.name]) and never_pings(b, addr[a.name])
    for x, y in ((a, c), (c, a), (b, c), (c, b)):
        eventually_ping(x, addr[y.name])
    assert {p["name"] for p in a.netclient_json("peers")} == {c.name}

    # Lifting the rule brings the pair back, with no restart anywhere.
    srv.admin("DELETE", f"/networks/{NET}/acl/rules/{rule['id']}", expect=204)
    wait_until(lambda: wg_keys(a) == {kb, kc} and wg_keys(b) == {ka, kc}, 20, "a and b to be peers again")
    eventually_ping(a, addr[b.name])
    eventually_ping(b, addr[a.name])

    # Default deny: nobody is anybody's peer; an allow rule by tag lets the tagged pair in.
    srv.admin("PUT", f"/networks/{NET}/acl", json={"default": "deny"}, expect=200)
    wait_until(lambda: not wg_keys(a) and not wg_keys(b) and not wg_keys(c), 20, "every peer to go")
    assert never_pings(a, addr[b.name])
    for i in (ida, idb):
        srv.admin("PUT", f"/nodes/{i}/tags", json={"tags": ["web"]}, expect=200)
    srv.admin("POST", f"/networks/{NET}/acl/rules", json={"source": "tag:web", "destination": "tag:web",
                                                          "action": "allow"}, expect=201)
    wait_until(lambda: wg_keys(a) == {kb} and wg_keys(b) == {ka} and not wg_keys(c), 20, "the web pair")
    eventually_ping(a, addr[b.name])
    eventually_ping(b, addr[a.name])
    assert never_pings(c, addr[a.name])
    assert pids(mesh) == before


# ---- relays -------------------------------------------------------------------------------------------

def test_relay_around_a_blocked_path(mesh):
    relay, relayed, far = mesh.nodes
    kr, kx, ky = (mesh.public_key(n) for n in mesh.nodes)
    addr = {n.name: mesh.mesh_address(n) for n in mesh.nodes}
    srv = mesh.server
    # The underlay between `relayed` and `far` is cut, in a table of the test's own.
    block = (f"table inet nmtest-block {{\n"
             f" chain in {{ type filter hook input priority 0; policy accept; ip saddr {far.netns.address} drop; }}\n"
             f" chain out {{ type filter hook output priority 0; policy accept; ip daddr {far.netns.address} drop; }}\n"
             f"}}\n")
    assert nft(relayed, "-f", "-", input=block).returncode == 0
    try:
        assert never_pings(relayed, addr[far.name])

        srv.admin("PUT", f"/nodes/{node_id(mesh, relay)}/relay", json={"relayed": [node_id(mesh, relayed)]},
                  expect=200)
        wait_until(lambda: wg_keys(relayed) == {kr} and wg_keys(far) == {kr}, 20, "the relay as the only path")
        assert f"{addr[far.name]}/32" in relayed.wg_peers(IF)[kr]["allowed_ips"]
        assert f"{addr[relayed.name]}/32" in far.wg_peers(IF)[kr]["allowed_ips"]
        eventually_ping(relayed, addr[far.name])
        eventually_ping(far, addr[relayed.name])
        eventually_ping(relayed, addr[relay.name])
        assert network_status(relay)["roles"] == ["relay"]
        st = network_status(relayed)
        assert st["roles"] == ["relayed"] and st["relayed_by"] == node_id(mesh, relay)
        assert f'iifname "{IF}" oifname "{IF}" accept' in nft_table(relay, "inet", "netmaker")
        # The relayed node itself forwards nothing: no table of ours there.
        assert nft_table(relayed, "inet", "netmaker") is None

        # Without the relay the direct path is back in the peers, and blocked.
        srv.admin("DELETE", f"/nodes/{node_id(mesh, relay)}/relay", expect=200)
        wait_until(lambda: wg_keys(relayed) == {kr, ky} and wg_keys(far) == {kr, kx}, 20, "direct peers again")
        wait_until(lambda: nft_table(relay, "inet", "netmaker") is None, 20, "the relay's table to go")
        assert never_pings(relayed, addr[far.name])
    finally:
        nft(relayed, "delete", "table", "inet", "nmtest-block")
    eventually_ping(relayed, addr[far.name], timeout=30)


# ---- endpoints ----------------------------------------------------------------------------------------

def desired_endpoint(viewer, peer_key):
    """The endpoint the server last gave `viewer` for a peer (its saved state, not the device's
    roamed one)."""
    st = json.loads((viewer.state_dir / "state.json").read_text())
    for net in st["state"]["networks"]:
        for p in net.get("peers") or []:
            if p["public_key"] == peer_key:
                return p.get("endpoint")
    return None


def test_endpoint_move_is_followed(mesh):
    a, moving, c = mesh.nodes
    key = mesh.public_key(moving)
    old, new = moving.netns.address, moving.netns.address.rsplit(".", 1)[0] + ".102"
    before = pids(mesh)
    for n in (a, c):
        assert desired_endpoint(n, key) == f"{old}:51821"
        eventually_ping(n, mesh.mesh_address(moving))

    # Like a new DHCP lease (deleting a primary IPv4 address first would take secondaries with it).
    moving.run(["ip", "addr", "del", f"{old}/24", "dev", "eth0"], check=True)
    moving.run(["ip", "addr", "add", f"{new}/24", "dev", "eth0"], check=True)
    for n in (a, c):
        wait_until(lambda: desired_endpoint(n, key) == f"{new}:51821", 30, f"{n.name} to learn the new endpoint")
        wait_until(lambda: n.wg_peers(IF)[key]["endpoint"] == f"{new}:51821", 10, f"{n.name}'s device endpoint")
        eventually_ping(n, mesh.mesh_address(moving))
    host = mesh.server.admin("GET", f"/hosts/{mesh.status(moving)['host_id']}", expect=200)
    assert host["endpoints"] == [new]
    # The moved host still talks to the server and the broker.
    wait_until(lambda: mesh.status(moving)["state"] == "online", 30, "the moved host online again")
    assert moving.netclient("pull").returncode == 0
    assert pids(mesh) == before


def test_stun_public_address_reaches_the_server(mesh, tmp_path):
    # A NAT in front of a fourth node: the STUN server sees it as .204, an address the node also has.
    n4_addr = f"198.18.7.{len(mesh.nodes) + 1}"
    nat_addr = "198.18.7.204"
    stun = StunResponder(mesh, tmp_path, mapping={n4_addr: nat_addr}).start()
    try:
        netns_node = mesh.underlay.add_node()
        assert netns_node.address == n4_addr
        n4 = AgentNode(netns_node, mesh.dir / "node4", name="node4",
                       env={"NETCLIENTD_STUN_SERVERS": f"192.0.2.1:9, {stun.address}"})
        mesh.nodes.append(n4)
        n4.start()
        netns_node.add_address(f"{nat_addr}/24")
        mesh.join(n4)
        wait_until(lambda: n4.netclient_json("status")["public_address"] == nat_addr, 30, "the public address")
        host = mesh.server.admin("GET", f"/hosts/{mesh.status(n4)['host_id']}", expect=200)
        wait_until(lambda: mesh.server.admin("GET", f"/hosts/{mesh.status(n4)['host_id']}",
                                             expect=200)["public_endpoint"] == nat_addr, 20, "the server's record")
        # The others (no public address of their own) reach it at its public address and port.
        key = mesh.public_key(n4)
        for n in mesh.nodes[:3]:
            wait_until(lambda: desired_endpoint(n, key) == f"{nat_addr}:51821", 20, f"{n.name}'s endpoint for node4")
            eventually_ping(n, mesh.mesh_address(n4))
        assert "Public address: 198.18.7.204" in n4.log()
        assert host["endpoints"][0] == n4_addr
    finally:
        stun.stop()


# ---- internet gateway ---------------------------------------------------------------------------------

TABLE = 0x4E4D0000 | 51821  # ROUTING_TABLE_BASE | listen port (src/netclientd/routing.h)


def our_rules(node):
    return [line for line in node.run(["ip", "rule"]).stdout.splitlines()
            if line.startswith(("32700:", "32701:"))]


def test_internet_gateway(mesh, tmp_path):
    gw, client, other = mesh.nodes
    inet = SideNet(mesh, gw, "inet", "203.0.113.1/24", "203.0.113.10/24").create()
    try:
        # The client's own uplink: a default route towards the underlay (which has no internet).
        client.run(["ip", "route", "add", "default", "via", mesh.server_ip], check=True)
        assert not client.ping(inet.host_address)
        gw_id = node_id(mesh, gw)
        mesh.server.admin("PUT", f"/nodes/{gw_id}/internet-gateway", expect=200)
        wait_until(lambda: "internet-gateway" in network_status(gw)["roles"], 20, "the gateway role")
        ours = nft_table(gw, "inet", "netmaker")
        assert f'iifname "{IF}" oifname != "nm-*" accept' in ours and "masquerade" in ours

        # Opting in, from the host itself (D-Bus SetInternetGateway -> PUT /host/networks/…).
        p = client.netclient("internet-gateway", NET, gw_id)
        assert p.returncode == 0, p.stderr
        st = network_status(client)
        assert "uses-internet-gateway" in st["roles"] and st["internet_gateway_via"] == gw_id
        text = client.netclient("status").stdout
        assert "uses-internet-gateway" in text and f"office: internet traffic through node {gw_id}" in text, text
        gw_key = mesh.public_key(gw)
        wait_until(lambda: "0.0.0.0/0" in client.wg_peers(IF)[gw_key]["allowed_ips"], 20, "0.0.0.0/0 for the gateway")
        wait_until(lambda: len(our_rules(client)) == 2, 20, "the routing rules")
        rules = our_rules(client)
        assert "32700:\tfrom all lookup main suppress_prefixlength 0" in rules[0]
        assert f"32701:\tnot from all fwmark {hex(TABLE)} lookup {TABLE}" in rules[1], rules
        assert client.run(["ip", "route", "show", "table", str(TABLE)]).stdout.startswith(f"default dev {IF}")
        assert client.run(["wg", "show", IF, "fwmark"]).stdout.strip() == hex(TABLE)
        # The main table is untouched: the host's own default is still there.
        assert f"default via {mesh.server_ip} dev eth0" in client.run(["ip", "route"]).stdout

        eventually_ping(client, inet.host_address)
        assert f"dev {IF} table {TABLE}" in client.run(["ip", "route", "get", inet.host_address]).stdout
        # The server, the broker and the peers' endpoints stay on the host's own routes.
        assert "dev eth0" in client.run(["ip", "route", "get", mesh.server_ip]).stdout
        assert "dev eth0" in client.run(["ip", "route", "get", other.netns.address]).stdout
        assert client.netclient("pull").returncode == 0
        assert mesh.status(client)["state"] == "online"
        eventually_ping(client, mesh.mesh_address(other))
        assert client.ping(other.netns.address)
        # Nobody else got the gateway's default.
        assert "0.0.0.0/0" not in other.wg_peers(IF)[gw_key]["allowed_ips"]
        assert not our_rules(other) and not our_rules(gw)

        # A restart keeps the internet routes (no gap), and finds them again.
        client.restart_netclientd()
        assert len(our_rules(client)) == 2
        assert client.ping(inet.host_address, count=1, timeout=2)
        wait_until(lambda: mesh.status(client)["state"] == "online", 20, "online after the restart")
        assert len(our_rules(client)) == 2

        # Opting out restores everything.
        p = client.netclient("internet-gateway", NET, "off")
        assert p.returncode == 0, p.stderr
        assert "uses-internet-gateway" not in network_status(client)["roles"]
        wait_until(lambda: not our_rules(client), 20, "the rules to go")
        assert client.run(["ip", "route", "show", "table", str(TABLE)]).stdout == ""
        assert client.run(["wg", "show", IF, "fwmark"]).stdout.strip() == "off"
        wait_until(lambda: "0.0.0.0/0" not in client.wg_peers(IF)[gw_key]["allowed_ips"], 20, "0.0.0.0/0 to go")
        assert never_pings(client, inet.host_address)
        assert "dev eth0" in client.run(["ip", "route", "get", inet.host_address]).stdout
        eventually_ping(client, mesh.mesh_address(gw))
    finally:
        inet.cleanup()


# ---- bad input ----------------------------------------------------------------------------------------

def dbus_call(node, method, args, sig):
    """(error name, message) or (None, result), over the node's bus as root."""
    import gi
    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib
    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    c = Gio.DBusConnection.new_for_address_sync(node.bus_address, flags, None, None)
    try:
        v = c.call_sync("org.netmaker.Client", "/org/netmaker/Client", "org.netmaker.Client", method,
                        GLib.Variant(sig, args), None, Gio.DBusCallFlags.NONE, 20000, None)
        return None, v.unpack()
    except GLib.Error as e:
        name = Gio.DBusError.get_remote_error(e)
        Gio.DBusError.strip_remote_error(e)
        return name, e.message
    finally:
        c.close_sync(None)


def test_set_internet_gateway_bad_input(mesh):
    node, plain = mesh.nodes[0], mesh.nodes[1]
    E = "org.netmaker.Client.Error."
    err, msg = dbus_call(node, "SetInternetGateway", ("Not/A/Net", ""), "(ss)")
    assert err == E + "InvalidArgument" and "Not/A/Net" in msg, (err, msg)
    err, msg = dbus_call(node, "SetInternetGateway", (NET, "gw1"), "(ss)")
    assert err == E + "InvalidArgument" and '"gw1"' in msg and "UUID" in msg, (err, msg)
    err, msg = dbus_call(node, "SetInternetGateway", ("ghost", ""), "(ss)")
    assert err == E + "NotFound" and '"ghost"' in msg, (err, msg)
    err, msg = dbus_call(node, "SetInternetGateway", (NET,), "(s)")
    assert err == "org.freedesktop.DBus.Error.InvalidArgs", (err, msg)
    # The server's refusal comes through with its own message: that node offers no internet.
    plain_id = node_id(mesh, plain)
    err, msg = dbus_call(node, "SetInternetGateway", (NET, plain_id), "(ss)")
    assert err in (E + "InvalidArgument", E + "Conflict"), (err, msg)
    assert "internet" in msg and plain_id in msg, msg
    assert network_status(node)["roles"] == []
    # Unprivileged callers are refused before anything happens.
    p = node.busctl("call", "org.netmaker.Client", "/org/netmaker/Client", "org.netmaker.Client",
                    "SetInternetGateway", "ss", NET, "", user="nobody")
    assert p.returncode != 0 and ("denied" in p.stderr.lower() or "authori" in p.stderr.lower()), p.stderr

    # The CLI: usage errors are 2, refusals 1 with the daemon's message.
    for args in (("internet-gateway",), ("internet-gateway", NET), ("internet-gateway", NET, "a", "b")):
        p = node.netclient(*args)
        assert p.returncode == 2 and "--help" in p.stderr, (args, p.returncode, p.stderr)
    p = node.netclient("internet-gateway", NET, "gw1")
    assert p.returncode == 1 and '"gw1"' in p.stderr, p.stderr
    p = node.netclient("internet-gateway", NET, "off")
    assert p.returncode == 0 and "no longer" in p.stdout, (p.stdout, p.stderr)


def test_bad_stun_configuration_is_refused(mesh):
    n = mesh.nodes[0]
    n.stop_netclientd()
    try:
        for value, quoted in (("stun.example.org:0", "stun.example.org:0"), ("[2001:db8::1", "[2001:db8::1")):
            p = n.run([n.netclientd, f"--state-dir={n.state_dir}", "--config=/nonexistent"],
                      env={"NETCLIENTD_STUN_SERVERS": value}, timeout=20)
            assert p.returncode != 0, p
            out = p.stdout + p.stderr
            assert f'Invalid STUN server "{quoted}"' in out and "$NETCLIENTD_STUN_SERVERS" in out, out
    finally:
        n.start_netclientd()


# ---- IPv6, a second network, leaving ------------------------------------------------------------------

def test_dual_stack_egress_in_a_second_network_and_leave(mesh):
    gw, client, _ = mesh.nodes
    mesh.server.create_network("lab", "10.98.0.0/24", ipv6_range="fd00:98::/64")
    key = mesh.server.create_key(["lab"], name="lab", unlimited=True)
    for n in (gw, client):
        p = n.netclient("join", "-t", key["token"], "--name", n.name)
        assert p.returncode == 0, p.stderr
    lan = SideNet(mesh, gw, "lan6", "192.168.70.1/24", "192.168.70.10/24").create()
    try:
        gw.run(["ip", "-6", "addr", "add", "fd00:70::1/64", "dev", lan.ifname, "nodad"], check=True)
        lan.run(["ip", "-6", "addr", "add", "fd00:70::10/64", "dev", "eth0", "nodad"], check=True)
        lab_id = next(n["node_id"] for n in mesh.status(gw)["networks"] if n["name"] == "lab")
        mesh.server.admin("PUT", f"/nodes/{lab_id}/egress", json={"ranges": ["192.168.70.0/24", "fd00:70::/64"],
                                                                  "nat": True}, expect=200)
        wait_until(lambda: "fd00:70::/64" in client.run(["ip", "-6", "route", "show", "dev", "nm-lab"]).stdout, 20,
                   "the client's IPv6 route")
        assert "192.168.70.0/24" in client.run(["ip", "route", "show", "dev", "nm-lab"]).stdout
        eventually_ping(client, "fd00:70::10")
        eventually_ping(client, "192.168.70.10")
        assert gw.run(["cat", "/proc/sys/net/ipv6/conf/all/forwarding"]).stdout.strip() == "1"
        ours = nft_table(gw, "inet", "netmaker")
        assert 'iifname "nm-lab" ip6 daddr fd00:70::/64 accept' in ours
        assert "ip6 saddr fd00:98::/64 ip6 daddr fd00:70::/64 masquerade" in ours
        # The office network has no role: nothing of it in the table.
        assert IF not in ours

        # Leaving the network takes its roles along: no table, and the client loses the routes.
        assert gw.netclient("leave", "lab").returncode == 0
        assert nft_table(gw, "inet", "netmaker") is None
        wait_until(lambda: client.run(["ip", "-6", "route", "show", "dev", "nm-lab"]).stdout.find("fd00:70::") < 0,
                   20, "the client's IPv6 route to go")
        assert never_pings(client, "fd00:70::10")
        eventually_ping(client, mesh.mesh_address(gw))
    finally:
        lan.cleanup()
