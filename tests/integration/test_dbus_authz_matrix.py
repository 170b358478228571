"""Every method netclientd exports (found by Introspect of its whole object tree, not listed here)
answers root and an unprivileged user without a session as the shipped polkit policy and the
method → action table of docs/dbus-api.md say: root is allowed, the user gets each action's
allow_any (AccessDenied: "no" for all three actions), and the user's refused calls change nothing
(what the daemon shows on the bus, its state files, its WireGuard device, what the server knows).
The node is joined to a real netmakerd with a peer, so that an allowed Leave, Disconnect or
SetInternetGateway would have something to change. It has the real dbus-daemon, polkitd and
netclientd but no systemd-logind, so nobody here has a session: the cells of active and inactive
local sessions run in the VM tier, with logind and real sessions on seat0
(tests/vm/checks/systemd/60-dbus-authz.sh, test_vm_systemd.py::test_check[dbus_authz]), which also
runs these two columns again. A method without a row in the docs' table fails."""

import hashlib
import json
import os

import pytest

from nmtest import dbus_authz
from nmtest.mesh import Mesh
from nmtest.server import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, polkitd)")

CALLER = (REPO / "tests" / "integration" / "nmtest" / "dbus_authz.py").read_text()


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    # dbus_authz calls the methods with the network "office".
    with Mesh(tmp_path_factory.mktemp("dbus-authz"), nodes=2, subnet=84, network="office") as m:
        m.join_all()
        m.wait_full_mesh()
        yield m


def results_of(node, user):
    """What every method answered `user` (None: root), from the caller run inside the node. Its
    source goes in on stdin: `nobody` may not be able to read the checkout."""
    p = node.run(["/usr/bin/python3", "-", "call"], user=user, input=CALLER, timeout=300)
    assert p.returncode == 0, f"the caller failed ({p.returncode}): {p.stderr}"
    return json.loads(p.stdout)


def outside_state(mesh, node):
    """What the bus does not show: the state files, the WireGuard device (peers without their
    counters), the links, and the server's view of the node's host."""
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(node.state_dir.iterdir()) if p.is_file()}
    dev = node.wg_dump(mesh.ifname)
    wg = None if dev is None else (dev[0], {k: (v["endpoint"], sorted(v["allowed_ips"]), v["keepalive"])
                                            for k, v in dev[1].items()})
    links = sorted(line.split(":")[1].strip().split("@")[0]
                   for line in node.run(["ip", "-o", "link", "show"]).stdout.splitlines())
    nodes = mesh.server.admin("GET", f"/networks/{mesh.network}/nodes", expect=200)
    server = sorted(json.dumps({k: v for k, v in n.items() if k not in ("last_check_in", "status", "last_seen")},
                               sort_keys=True) for n in nodes)
    return {"files": files, "wg": wg, "links": links, "server": server}


@pytest.fixture(scope="module")
def columns(mesh):
    node = mesh.nodes[0]
    before = outside_state(mesh, node)
    out = {"none": results_of(node, "nobody")}
    out["outside"] = (before, outside_state(mesh, node))
    # root last: its calls are allowed and change things (it leaves the network).
    out["root"] = results_of(node, None)
    return out


def test_docs_and_policy_agree():
    """Each action of the docs' table is in the shipped policy with the defaults the docs give."""
    assert dbus_authz.consistency(REPO) == []


def test_methods_found(columns):
    """The caller found netclientd's methods and objects (an empty matrix would pass anything)."""
    for column in ("root", "none"):
        r = columns[column]
        assert "org.netmaker.Client.Join" in r["calls"], f"{column}: {sorted(r['calls'])} {r.get('error')}"
        assert "org.freedesktop.DBus.Properties.GetAll" in r["calls"]
    assert set(columns["root"]["calls"]) == set(columns["none"]["calls"])
    paths = set(columns["none"]["before"])
    assert any("/network/" in p and "/peer/" not in p for p in paths), paths
    assert any("/peer/" in p for p in paths), paths


@pytest.mark.parametrize("column", ["root", "none"])
def test_matrix(columns, column):
    """One column: every method's answer as the policy says, and the caller is what the column
    claims (root; not root, and no logind session); nobody's refused calls changed nothing on the
    bus (the cell "unchanged")."""
    cells = dbus_authz.evaluate(REPO, column, columns[column])
    bad = [detail for _, ok, detail in cells if not ok]
    assert not bad, f"{len(bad)} of {len(cells)} cells of {column!r} are wrong:\n" + "\n".join(bad)
    assert ("unchanged" in [c[0] for c in cells]) == (column == "none")


def test_refused_calls_change_nothing_outside_the_bus(columns):
    before, after = columns["outside"]
    assert before["wg"] and before["wg"][1], before  # joined, with a peer
    assert after == before


def test_root_changed_something(columns):
    """root's calls were really carried out (so that "unchanged" above means something): its Leave
    took the node out of the network."""
    r = columns["root"]
    assert r["calls"]["org.netmaker.Client.Leave"]["error"] is None, r["calls"]["org.netmaker.Client.Leave"]
    assert dbus_authz.state_diff(r["before"], r["after"])


def test_the_matrix_can_fail(columns):
    """The evaluation can fail: a method the docs' table does not name fails its cell, so do an
    allowed answer where the policy says no and a change after refused calls."""
    r = json.loads(json.dumps(columns["none"]))
    r["calls"]["org.netmaker.Client.NotInTheDocs"] = {"path": "/org/netmaker/Client", "error": None}
    cells = dbus_authz.evaluate(REPO, "none", r)
    assert [c for c in cells if c[0] == "org.netmaker.Client.NotInTheDocs" and not c[1]]
    r["calls"]["org.netmaker.Client.Join"]["error"] = None
    assert [c for c in dbus_authz.evaluate(REPO, "none", r) if c[0] == "org.netmaker.Client.Join" and not c[1]]
    r = json.loads(json.dumps(columns["none"]))
    r["after"] = columns["root"]["after"]
    assert [c for c in dbus_authz.evaluate(REPO, "none", r) if c[0] == "unchanged" and not c[1]]
