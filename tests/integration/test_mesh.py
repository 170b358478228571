"""A real mesh: netmakerd on SQLite, Mosquitto with dynamic security, and netclientd nodes, each in
its own network and mount namespaces with its own dbus-daemon and polkitd, joined with
`netclient join -t TOKEN` over D-Bus and carrying traffic through wireguard-go. Every node pings
every other's mesh address; a fourth node joins and is reached with no restart anywhere;
Disconnect/Connect take a link's peers away and back, and the server has the other nodes drop the
disconnected node and take it back; an address change reaches the server and the
other nodes; a node that leaves, or that the admin deletes, disappears from the others' WireGuard
peers (read with `wg`, an outside observer)."""

import os

import pytest

from nmtest.mesh import Mesh
from nmtest.node import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with Mesh(tmp_path_factory.mktemp("mesh"), nodes=3, subnet=3) as m:
        m.join_all()
        yield m


def pids(mesh):
    return {n.name: n.netclientd_pid() for n in mesh.nodes}


def test_join_over_dbus(mesh):
    for n in mesh.nodes:
        st = mesh.status(n)
        assert st["state"] == "online", (n.name, st)
        assert st["server"].startswith(f"https://{mesh.server_ip}:")
        assert [net["name"] for net in st["networks"]] == ["office"]
        net = st["networks"][0]
        assert net["interface"] == "nm-office" and net["connected"]
        assert net["addresses"][0].startswith("10.99.0.") and net["addresses"][0].endswith("/24")
        assert n.link_exists("nm-office")
    # The server sees three hosts, each with a node in office.
    nodes = mesh.server.admin("GET", "/networks/office/nodes", expect=200)
    assert len(nodes) == 3


def test_every_node_pings_every_other(mesh):
    mesh.wait_full_mesh()
    assert mesh.ping_matrix() == {}


def test_peers_seen_by_wg_and_dbus(mesh):
    a = mesh.nodes[0]
    others = {mesh.public_key(n): n for n in mesh.nodes[1:]}
    wg = a.wg_peers("nm-office")
    assert set(wg) == set(others)
    for key, n in others.items():
        assert wg[key]["allowed_ips"] == [f"{mesh.mesh_address(n)}/32"]
        assert wg[key]["endpoint"] == f"{n.netns.address}:51821"
    peers = a.netclient_json("peers")
    assert {p["public_key"] for p in peers} == set(others)
    assert all(p["network"] == "office" and p["name"] for p in peers)
    # Statistics come from the device: after the pings every peer has had a handshake.
    a.ping(mesh.mesh_address(mesh.nodes[1]))
    wait_until(lambda: all(p["latest_handshake_usec"] > 0 and p["rx_bytes"] > 0
                           for p in a.netclient_json("peers")), 15, "handshakes on the bus")


def test_fourth_node_joins_without_restart(mesh):
    before = pids(mesh)
    n4 = mesh.add_node()
    mesh.join(n4)
    mesh.wait_full_mesh()
    addr4 = mesh.mesh_address(n4)
    for n in mesh.nodes[:-1]:
        assert n.ping(addr4, count=1, timeout=3) or n.ping(addr4, count=2, timeout=3), n.name
        assert n4.ping(mesh.mesh_address(n), count=2, timeout=3), n.name
    assert {k: v for k, v in pids(mesh).items() if k in before} == before


def test_disconnect_and_connect(mesh):
    a, b = mesh.nodes[0], mesh.nodes[1]
    others = [n for n in mesh.nodes if n is not a]
    key_a = mesh.public_key(a)
    host_a = mesh.status(a)["host_id"]
    addr_b = mesh.mesh_address(b)
    p = a.netclient("disconnect", "office")
    assert p.returncode == 0, p.stderr
    # Still joined, but the link is down and has no peers.
    st = mesh.status(a)
    assert st["networks"][0]["connected"] is False and st["networks"][0]["peers"] == len(mesh.nodes) - 1
    assert a.wg_peers("nm-office") == {}
    assert "state DOWN" in a.run(["ip", "link", "show", "nm-office"]).stdout
    assert not a.ping(addr_b, count=1, timeout=1)
    # The server is told: the node is disconnected there, and every peer drops it from its device.
    wait_until(lambda: all(key_a not in n.wg_peers("nm-office") for n in others), 15,
               "the other nodes to drop the disconnected node")
    [node] = mesh.server.admin("GET", f"/hosts/{host_a}", expect=200)["nodes"]
    assert node["connected"] is False
    # The choice survives a restart of the daemon.
    a.restart_netclientd()
    wait_until(lambda: mesh.status(a)["state"] == "online", 15, "a online again")
    assert mesh.status(a)["networks"][0]["connected"] is False and a.wg_peers("nm-office") == {}
    assert all(key_a not in n.wg_peers("nm-office") for n in others)

    p = a.netclient("connect", "office")
    assert p.returncode == 0, p.stderr
    # Its own peers come back at once (it kept them); the others take it back when the server knows.
    assert len(a.wg_peers("nm-office")) == len(mesh.nodes) - 1
    wait_until(lambda: all(key_a in n.wg_peers("nm-office") for n in others), 15,
               "the other nodes to take the node back")
    assert mesh.server.admin("GET", f"/hosts/{host_a}", expect=200)["nodes"][0]["connected"] is True
    assert a.ping(addr_b, count=2, timeout=3) or a.ping(addr_b, count=2, timeout=3)


def test_pull(mesh):
    a = mesh.nodes[0]
    before = mesh.status(a)["networks"][0]["serial"]
    p = a.netclient("pull")
    assert p.returncode == 0 and "Pulled" in p.stdout, p.stderr
    assert mesh.status(a)["networks"][0]["serial"] >= before


def test_address_change_is_reported(mesh):
    """A new underlay address on a node reaches the server as a check-in and the other nodes as a
    peer update (their saved desired state names the new endpoint)."""
    b = mesh.nodes[1]
    host_id = mesh.status(b)["host_id"]
    new = f"198.18.{mesh.subnet}.{100 + b.netns.index}"
    # Keep the new address when the old (primary) one goes, as a moving laptop would.
    b.run(["sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1"], check=True)
    b.run(["ip", "addr", "add", f"{new}/24", "dev", "eth0"], check=True)
    b.run(["ip", "addr", "del", b.netns.cidr, "dev", "eth0"], check=True)
    wait_until(lambda: mesh.server.admin("GET", f"/hosts/{host_id}", expect=200)["endpoints"] == [new], 15,
               "the server to learn b's new address")
    key_b = mesh.public_key(b)

    def others_know():
        import json
        for n in mesh.nodes:
            if n is b:
                continue
            st = json.loads((n.state_dir / "state.json").read_text())
            peers = {p["public_key"]: p for p in st["state"]["networks"][0]["peers"]}
            if peers[key_b]["endpoint"] != f"{new}:51821":
                return False
        return True
    wait_until(others_know, 15, "the other nodes to get b's new endpoint")
    for n in mesh.nodes:
        if n is not b:
            assert n.wg_peers("nm-office")[key_b]["endpoint"] == f"{new}:51821"
    # Sessions move to the new address (a handshake lost on the way is retried after 5 s).
    assert mesh.wait_ping_matrix(timeout=30) == {}


def test_forged_messages_are_dropped(mesh):
    """Someone who can publish on a host's topic (here the broker admin) but does not hold the
    server's key cannot change anything: the payload is dropped and logged without its content."""
    import base64
    import json
    import subprocess
    from nmtest.client import KeyPair, seal

    a = mesh.nodes[0]
    st = json.loads((a.state_dir / "server.json").read_text())
    victim_key = mesh.public_key(mesh.nodes[1])
    msg_pub = mesh.server.admin("GET", f"/hosts/{st['host_id']}", expect=200)["msg_public_key"]
    forged = json.dumps({"type": "peers", "serial": 10 ** 6, "network": "office", "remove": [victim_key]})
    payload = seal(forged.encode(), base64.b64decode(msg_pub), KeyPair().secret)
    for data in (payload, b"not sealed at all"):
        subprocess.run(["mosquitto_pub", *mesh.broker.cli_args(), "-u",
                        mesh.broker.admin_user, "-P", mesh.broker.admin_password, "-t", st["mqtt"]["subscribe"],
                        "-q", "1", "-s"], input=data, check=True, timeout=10)
    wait_until(lambda: a.log().count("Dropped ") >= 2, 10, "both payloads to be dropped")
    assert victim_key in a.wg_peers("nm-office")
    assert "not sealed by the server" in a.log()
    assert "remove" not in "".join(l for l in a.log().splitlines() if "Dropped" in l)


def test_second_network_on_the_same_host(mesh):
    """A token for another network of the same server adds a network (and a link) to the host;
    leaving it again leaves the first one alone."""
    a, b = mesh.nodes[0], mesh.nodes[1]
    mesh.server.create_network("lab", "10.98.0.0/24")
    mesh.hide_observer("lab")
    key = mesh.server.create_key(["lab"], name="lab", unlimited=True)
    host_a = mesh.status(a)["host_id"]
    for n in (a, b):
        p = n.netclient("join", "-t", key["token"])
        assert p.returncode == 0, p.stderr
        assert "Joined network lab on nm-lab" in p.stdout, p.stdout
    assert mesh.status(a)["host_id"] == host_a  # the same host, not a new registration
    st = {net["name"]: net for net in mesh.status(a)["networks"]}
    assert set(st) == {"office", "lab"} and st["lab"]["interface"] == "nm-lab"
    assert st["lab"]["listen_port"] != st["office"]["listen_port"]
    wait_until(lambda: len(a.wg_peers("nm-lab") or {}) == 1, 15, "a's lab peer")
    lab_b = mesh.mesh_address(b, "lab")
    assert lab_b.startswith("10.98.0.")
    assert a.ping(lab_b, count=2, timeout=3)

    p = a.netclient("leave", "lab")
    assert p.returncode == 0, p.stderr
    assert not a.link_exists("nm-lab") and a.link_exists("nm-office")
    st = mesh.status(a)
    assert [net["name"] for net in st["networks"]] == ["office"] and st["state"] == "online"
    assert b.netclient("leave", "lab").returncode == 0


def test_token_of_another_server_is_refused(mesh):
    import base64
    from nmtest.client import encode_token
    other = encode_token({"v": 1, "api": "https://198.18.250.1:8081", "key": "B" * 32,
                          "spk": base64.b64encode(bytes(range(32))).decode()})
    p = mesh.nodes[0].netclient("join", "-t", other)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "registered with the server at" in p.stderr and "198.18.250.1" in p.stderr, p.stderr


def test_leave_removes_the_peer_everywhere(mesh):
    leaver = mesh.nodes[-1]
    key = mesh.public_key(leaver)
    stayers = mesh.nodes[:-1]
    assert all(key in n.wg_peers("nm-office") for n in stayers)

    p = leaver.netclient("leave", "office")
    assert p.returncode == 0, p.stderr
    assert "Left network office" in p.stdout
    # Gone locally: no link, no network object; it was the last network, so the host deregistered.
    assert not leaver.link_exists("nm-office")
    st = mesh.status(leaver)
    assert st["networks"] == [] and st["state"] == "unregistered"
    # Gone from every other node's device, and only that peer.
    wait_until(lambda: all(key not in n.wg_peers("nm-office") for n in stayers), 15,
               "the leaver to disappear from the other nodes' peers")
    for n in stayers:
        assert len(n.wg_peers("nm-office")) == len(stayers) - 1
    assert mesh.ping_matrix(stayers) == {}


def test_host_deleted_by_the_admin(mesh):
    """An admin deletes a host: it is told, removes its link and forgets the server; the others
    drop it as a peer."""
    victim = mesh.nodes[-2]
    stayers = [n for n in mesh.nodes if n is not victim and mesh.status(n)["networks"]]
    st = mesh.status(victim)
    key = st["public_key"]
    mesh.server.admin("DELETE", f"/hosts/{st['host_id']}", expect=204)
    wait_until(lambda: mesh.status(victim)["state"] == "unregistered", 15, "the host to forget the server")
    assert not victim.link_exists("nm-office")
    assert not (victim.state_dir / "server.json").exists()
    assert (victim.state_dir / "identity.json").exists()
    wait_until(lambda: all(key not in n.wg_peers("nm-office") for n in stayers), 15, "the others to drop it")
    assert mesh.ping_matrix(stayers) == {}
