"""The GNOME Shell extension's model (desktop/gnome-shell-extension/model.js, as installed), run by
`gjs` inside a node on that node's system bus, against a live netclientd in a real mesh: it shows
what netclient shows (state, each network's connection, this host's address, peers and peers online,
the internet gateways to choose from and the one in use), follows the daemon only through signals
(a join elsewhere, `netclient disconnect`, a netclientd restart) and makes no D-Bus call while
nothing changes; its actions connect and disconnect networks and choose the internet gateway; and
for a user outside any session polkit refuses them with a message naming the action."""

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from nmtest import stage
from nmtest.mesh import Mesh
from nmtest.node import wait_until

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)"),
    pytest.mark.skipif(shutil.which("gjs") is None, reason="gjs is not installed (apt-get install gjs)"),
]

DRIVER = Path(__file__).parent / "gjs" / "drive-model.js"


class GjsModel:
    """The model in a gjs process inside `node` (as `user`); .latest is what it shows now."""

    def __init__(self, node, user=None):
        # Readable by `user` wherever the checkout and pytest's directories are (0700 for root).
        workdir = self.workdir = Path(tempfile.mkdtemp(prefix="nmtest-gjs-", dir="/tmp"))
        os.chmod(workdir, 0o755)
        script = workdir / "drive-model.js"
        shutil.copy(DRIVER, script)
        os.chmod(script, 0o644)
        self.stderr_path = workdir / "gjs.log"
        self.stderr = open(self.stderr_path, "wb")
        model_dir = stage.installed("model.js").parent
        self.proc = node.popen(["gjs", str(script)], user=user, env={"NM_MODEL_DIR": str(model_dir)},
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr)
        self.events = queue.Queue()
        self.latest = None
        self.errors = []
        self.done = {}
        self._next_id = 0
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait(lambda s: True, 15, "the model to start")

    def _read(self):
        for line in self.proc.stdout:
            ev = json.loads(line)
            with self._lock:
                if ev["event"] in ("changed", "done") and "networks" in ev:
                    self.latest = ev
                if ev["event"] == "error":
                    self.errors.append(ev["message"])
                if ev["event"] == "done":
                    self.done[ev["id"]] = ev
            self.events.put(ev)

    def wait(self, predicate, timeout=20, what="the model"):
        def ok():
            if self.proc.poll() is not None:
                raise AssertionError(f"gjs exited with {self.proc.returncode}: {self.stderr_path.read_text()}")
            with self._lock:
                return self.latest is not None and predicate(self.latest)
        try:
            wait_until(ok, timeout, what)
        except AssertionError as e:
            raise AssertionError(f"{e}; the model shows: {json.dumps(self.latest, indent=1)}; "
                                 f"gjs: {self.stderr_path.read_text()[-2000:]}") from None
        return self.latest

    def command(self, timeout=30, **cmd):
        with self._lock:
            self._next_id += 1
            cmd["id"] = self._next_id
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()
        wait_until(lambda: cmd["id"] in self.done or self.proc.poll() is not None, timeout, f"command {cmd}")
        return self.done.get(cmd["id"])

    def network(self, name="office", snapshot=None):
        s = snapshot or self.latest
        return next((n for n in s["networks"] if n["name"] == name), None)

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write(b'{"cmd":"quit","id":0}\n')
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def net_status(mesh, node, name="office"):
    return next(n for n in mesh.status(node)["networks"] if n["name"] == name)


@pytest.fixture
def mesh(tmp_path):
    with Mesh(tmp_path, nodes=3, subnet=71) as m:
        yield m


def test_model_follows_netclientd(mesh, tmp_path):
    a, b, c = mesh.nodes
    model = GjsModel(a)
    try:
        s = model.wait(lambda s: s["available"] and s["state"] == "unregistered", what="unregistered")
        assert s["networks"] == []

        # A join (netclient, not the model): the menu shows the network, connected, with the address.
        mesh.join(a)
        s = model.wait(lambda s: s["state"] == "online" and model.network(snapshot=s) is not None, what="office")
        office = model.network(snapshot=s)
        addr = mesh.mesh_address(a)
        assert office["connected"] is True
        assert office["addresses"] == [f"{addr}/24"] and office["copy"] == [addr]
        assert office["peers"] == 0 and s["controlPlaneReachable"] is True

        # Other hosts join: PeersChanged brings them, as names in the peer array.
        mesh.join(b)
        mesh.join(c)
        # (the count comes with GetStatus, the names with GetPeers: each in its own round trip)
        s = model.wait(lambda s: model.network(snapshot=s)["peerNames"] == ["node2", "node3"]
                       and model.network(snapshot=s)["peers"] == 2, what="two peers, counted and named")
        assert a.ping(mesh.mesh_address(b), count=2, timeout=3)
        assert a.ping(mesh.mesh_address(c), count=2, timeout=3)
        # Both online after their handshakes: from here nothing changes in the peers for minutes.
        model.wait(lambda s: model.network(snapshot=s)["peersOnline"] == 2, 30, "both peers online after a handshake")

        # Quiet: no call while nothing changes (no polling), though statistics keep flowing.
        time.sleep(1)
        calls = model.latest["calls"]
        time.sleep(6)  # more than one statistics interval (5 s)
        assert model.command(cmd="dump")["calls"] == calls, "the model made D-Bus calls while nothing changed"

        # netclient disconnects: the model follows; the model's own switch works both ways.
        assert a.netclient("disconnect", "office").returncode == 0
        model.wait(lambda s: model.network(snapshot=s)["connected"] is False, what="disconnected")
        model.wait(lambda s: model.network(snapshot=s)["peersOnline"] == 0, what="nobody online while disconnected")
        r = model.command(cmd="connect", network="office")
        assert r["ok"], r
        assert net_status(mesh, a)["connected"] is True
        model.wait(lambda s: model.network(snapshot=s)["connected"] is True, what="connected")
        r = model.command(cmd="all", on=False)
        assert r["ok"], r
        assert net_status(mesh, a)["connected"] is False
        assert model.command(cmd="all", on=True)["ok"]
        assert net_status(mesh, a)["connected"] is True

        # The internet gateway: node3 offers one; the menu lists it, the model chooses it and back.
        c_id = net_status(mesh, c)["node_id"]
        mesh.server.admin("PUT", f"/nodes/{c_id}/internet-gateway", expect=200)
        s = model.wait(lambda s: model.network(snapshot=s)["gateways"] == [{"nodeId": c_id, "name": "node3"}],
                       30, "node3 as a gateway to choose")
        assert model.network(snapshot=s)["via"] == ""
        r = model.command(cmd="gateway", network="office", node=c_id)
        assert r["ok"], r
        assert net_status(mesh, a)["internet_gateway_via"] == c_id
        model.wait(lambda s: model.network(snapshot=s)["viaName"] == "node3", what="internet via node3")
        assert model.command(cmd="gateway", network="office", node="")["ok"]
        model.wait(lambda s: model.network(snapshot=s)["via"] == "", what="no gateway")

        # netclientd restarts: the model sees it go and come back, and shows the same.
        a.restart_netclientd()
        s = model.wait(lambda s: s["available"] and s["state"] == "online" and
                       model.network(snapshot=s)["peerNames"] == ["node2", "node3"], 30, "the same after a restart")
        assert not model.errors, model.errors
    finally:
        model.stop()


def test_unprivileged_user_reads_but_polkit_guards_actions(mesh, tmp_path):
    """`nobody` has no session: the menu shows everything, but connecting is refused by polkit
    (the console user of an active session would be allowed: org.netmaker.client.connect)."""
    a = mesh.nodes[0]
    mesh.join(a)
    model = GjsModel(a, user="nobody")
    try:
        model.wait(lambda s: model.network(snapshot=s) is not None and model.network(snapshot=s)["connected"],
                   what="office for nobody")
        r = model.command(cmd="disconnect", network="office")
        assert not r["ok"]
        assert "org.netmaker.client.connect" in r["error"], r
        assert net_status(mesh, a)["connected"] is True
    finally:
        model.stop()
