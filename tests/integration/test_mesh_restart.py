"""Restarts do not disturb the mesh. A restarted netclientd adopts its link (the same interface and
wireguard-go process) and diffs it instead of rebuilding it, so no WireGuard session is reset: the
other nodes' latest handshake with it stays what it was while traffic keeps flowing. A restarted
broker costs nothing either: the nodes reconnect, and a change made while it was down reaches them
(they pull a snapshot), as does a change made after (a new host joins)."""

import os
import time

import pytest

from nmtest.mesh import Mesh
from nmtest.node import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with Mesh(tmp_path_factory.mktemp("mesh-restart"), nodes=3, subnet=6) as m:
        m.join_all()
        m.wait_full_mesh()
        assert m.ping_matrix() == {}
        yield m


def ifindex(node, ifname):
    p = node.run(["cat", f"/sys/class/net/{ifname}/ifindex"])
    return int(p.stdout) if p.returncode == 0 else None


def wireguard_go_pids(node):
    return sorted(pid for pid in node.netns.pids()
                  if open(f"/proc/{pid}/comm").read().strip().startswith("wireguard-go"))


def test_netclientd_restart_keeps_link_and_sessions(mesh):
    a, b, c = mesh.nodes
    key_a = mesh.public_key(a)
    addr_a = mesh.mesh_address(a)
    # Sessions in both directions, and their handshake times as the peers see them.
    for n in (b, c):
        assert n.ping(addr_a, count=2, timeout=3)
    before = {n.name: n.wg_peers("nm-office")[key_a]["latest_handshake"] for n in (b, c)}
    assert all(before.values())
    a_before = a.wg_peers("nm-office")
    idx, wg_pids = ifindex(a, "nm-office"), wireguard_go_pids(a)
    assert idx and len(wg_pids) == 1

    a.restart_netclientd()
    wait_until(lambda: mesh.status(a)["state"] == "online", 15, "a back online")
    assert "Adopted WireGuard link nm-office" in a.log()
    # The same link, the same wireguard-go, the same peers with their handshakes.
    assert ifindex(a, "nm-office") == idx
    assert wireguard_go_pids(a) == wg_pids
    a_after = a.wg_peers("nm-office")
    assert set(a_after) == set(a_before)
    for key, peer in a_before.items():
        assert a_after[key]["latest_handshake"] == peer["latest_handshake"], key

    # Traffic flows at once over the existing sessions: no peer had to handshake again.
    time.sleep(1.1)  # handshake times have 1 s resolution
    for n in (b, c):
        assert n.ping(addr_a, count=2, timeout=3)
        assert a.ping(mesh.mesh_address(n), count=1, timeout=3)
    after = {n.name: n.wg_peers("nm-office")[key_a]["latest_handshake"] for n in (b, c)}
    assert after == before


def test_broker_restart_catch_up(mesh):
    a, b, c = mesh.nodes
    key_c = mesh.public_key(c)
    assert all(key_c in n.wg_peers("nm-office") for n in (a, b))

    mesh.broker.stop()
    wait_until(lambda: all(mesh.status(n)["state"] == "offline" for n in (a, b)), 30, "nodes to go offline")
    # A change while the broker is down: c leaves (over HTTP only). The server cannot tell anyone.
    p = c.netclient("leave", "office")
    assert p.returncode == 0, p.stderr
    time.sleep(1)
    assert all(key_c in n.wg_peers("nm-office") for n in (a, b))

    mesh.broker.start()
    wait_until(lambda: all(mesh.status(n)["state"] == "online" for n in (a, b)), 60, "nodes back online")
    wait_until(lambda: all(key_c not in n.wg_peers("nm-office") for n in (a, b)), 30,
               "the change made during the outage to reach a and b")

    # A change after the restart arrives as a live message: a new host joins.
    d = mesh.add_node()
    mesh.join(d)
    key_d = mesh.public_key(d)
    wait_until(lambda: all(key_d in n.wg_peers("nm-office") for n in (a, b)), 30, "d in the mesh")
    mesh.wait_full_mesh([a, b, d])
    assert mesh.ping_matrix([a, b, d]) == {}
