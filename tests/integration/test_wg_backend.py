"""netclientd's WireGuard layer against real wireguard-go in network namespaces: wgtool (a thin CLI
over the library) brings interfaces up, adds, updates and removes peers, and the real `wg` tool
observes the result. Proves that packets cross, that a change to one peer leaves every other
peer's session alone (no REPLACE_PEERS: latest-handshake and counters of the others survive),
that large peer sets apply as deltas, and that mistakes get clear errors.

Needs root, wireguard-go and wireguard-tools. Binaries: $NM_BUILD_DIR/src/netclientd/wgtool."""

import base64
import json
import os
import shutil
import time

import pytest

from nmtest.netns import Underlay, run, unique_prefix
from nmtest.server import build_dir

WGTOOL = build_dir() / "src" / "netclientd" / "wgtool"
UAPI_DIR = "/run/wireguard"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root for network namespaces"),
    pytest.mark.skipif(not shutil.which("wireguard-go"), reason="wireguard-go is not installed"),
    pytest.mark.skipif(not shutil.which("wg"), reason="wireguard-tools (the observer) is not installed"),
]

PORT = 51820


def wg_keypair():
    priv = run_host(["wg", "genkey"]).strip()
    pub = run_host(["wg", "pubkey"], input=priv).strip()
    return priv, pub


def run_host(cmd, input=None):
    import subprocess
    p = subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=True)
    return p.stdout


class WgNode:
    """One namespace with one wireguard-go interface driven through wgtool."""

    def __init__(self, node, ifname, tmp_path, overlay):
        self.node = node
        self.ifname = ifname
        self.overlay = overlay  # "10.77.0.<i>"
        self.priv, self.pub = wg_keypair()
        self.keyfile = tmp_path / f"{ifname}.key"
        old = os.umask(0o077)
        self.keyfile.write_text(self.priv + "\n")
        os.umask(old)
        self.log = tmp_path / f"{ifname}.wireguard-go.log"

    def wgtool(self, *args, check=True):
        p = self.node.run([str(WGTOOL), "--wireguard-go-log", str(self.log), *args], check=False, timeout=30)
        if check and p.returncode != 0:
            raise AssertionError(f"wgtool {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def up(self):
        out = self.wgtool("up", self.ifname, "--private-key-file", str(self.keyfile), "--listen-port", str(PORT),
                          "--address", f"{self.overlay}/24", "--mtu", "1420").stdout
        assert json.loads(out) == {"ifname": self.ifname, "backend": "userspace"}

    def peer_set(self, other, endpoint=None, allowed=None, keepalive=None):
        args = ["peer-set", self.ifname, "--public-key", other.pub,
                "--endpoint", endpoint or f"{other.node.address}:{PORT}",
                "--allowed-ips", allowed or f"{other.overlay}/32"]
        if keepalive is not None:
            args += ["--keepalive", str(keepalive)]
        return json.loads(self.wgtool(*args).stdout)

    def show(self):
        return json.loads(self.wgtool("show", self.ifname, "--json").stdout)

    def observed(self, what):
        """`wg show IFNAME <what>` (the real tool, as an observer) as {public key: value}."""
        out = self.node.run(["wg", "show", self.ifname, what]).stdout
        return {line.split("\t")[0]: (line.split("\t", 1) + [""])[1] for line in out.splitlines() if line}

    def ping(self, other, tries=3):
        for _ in range(tries):
            if self.node.ping(other.overlay, count=1, timeout=2):
                return True
        return False


@pytest.fixture
def mesh(tmp_path):
    """Three namespaces on 198.18.0.0/24, each with a wireguard-go interface; not yet peered."""
    prefix = unique_prefix("wgb")
    pid = os.getpid()
    with Underlay(nodes=3, prefix=prefix) as net:
        nodes = [WgNode(n, f"wgb-{pid}-{n.index}", tmp_path, f"10.77.0.{n.index}") for n in net.nodes]
        try:
            for w in nodes:
                w.up()
            yield nodes
        finally:
            for w in nodes:
                w.wgtool("down", w.ifname, check=False)
                sock = f"{UAPI_DIR}/{w.ifname}.sock"
                if os.path.exists(sock):
                    os.unlink(sock)


def full_mesh(nodes, keepalive=None):
    for a in nodes:
        for b in nodes:
            if a is not b:
                r = a.peer_set(b, keepalive=keepalive)
                assert r["added"] == 1 and r["replace_peers"] is False


def test_ping_across_and_one_peer_update_leaves_others_alone(mesh):
    n1, n2, n3 = mesh
    full_mesh(mesh)
    assert n1.ping(n2) and n1.ping(n3) and n2.ping(n3)

    hs_before = n1.observed("latest-handshakes")
    tx_before = n1.observed("transfer")
    assert int(hs_before[n2.pub]) > 0 and int(hs_before[n3.pub]) > 0

    # n3 moves to another underlay address; n1 learns it as a one-peer update (plus a route).
    n3.node.add_address("198.18.0.103/24")
    r = n1.peer_set(n3, endpoint=f"198.18.0.103:{PORT}", allowed=f"{n3.overlay}/32,10.77.3.0/24", keepalive=15)
    assert r == {"added": 0, "updated": 1, "removed": 0, "replace_peers": False}

    endpoints = n1.observed("endpoints")
    assert endpoints[n3.pub] == f"198.18.0.103:{PORT}"
    assert endpoints[n2.pub] == f"{n2.node.address}:{PORT}"
    assert sorted(n1.observed("allowed-ips")[n3.pub].split()) == ["10.77.0.3/32", "10.77.3.0/24"]
    assert n1.observed("persistent-keepalive")[n3.pub] == "15"
    # n2's session was not touched: same handshake, counters not reset, and it still carries
    # traffic without a new handshake.
    hs_after = n1.observed("latest-handshakes")
    assert hs_after[n2.pub] == hs_before[n2.pub]
    assert int(n1.observed("transfer")[n2.pub].split("\t")[0]) >= int(tx_before[n2.pub].split("\t")[0])
    assert n1.ping(n2)
    assert n1.observed("latest-handshakes")[n2.pub] == hs_before[n2.pub]
    assert n1.ping(n3)

    # Applying the same thing again changes nothing.
    r = n1.peer_set(n3, endpoint=f"198.18.0.103:{PORT}", allowed=f"{n3.overlay}/32,10.77.3.0/24", keepalive=15)
    assert r == {"added": 0, "updated": 0, "removed": 0, "replace_peers": False}

    # Removing n3 cuts it off and still leaves n2 alone.
    r = json.loads(n1.wgtool("peer-remove", n1.ifname, "--public-key", n3.pub).stdout)
    assert r == {"added": 0, "updated": 0, "removed": 1, "replace_peers": False}
    assert n3.pub not in n1.observed("peers")
    assert not n1.node.ping(n3.overlay, count=1, timeout=1)
    assert n1.ping(n2)
    assert n1.observed("latest-handshakes")[n2.pub] == hs_before[n2.pub]


def test_show_reports_what_wg_sees(mesh):
    n1, n2, n3 = mesh
    full_mesh(mesh, keepalive=25)
    assert n1.ping(n2)
    shown = n1.show()
    assert shown["ifname"] == n1.ifname
    assert shown["public_key"] == n1.pub
    assert shown["listen_port"] == PORT
    peers = {p["public_key"]: p for p in shown["peers"]}
    assert set(peers) == {n2.pub, n3.pub}
    assert peers[n2.pub]["endpoint"] == f"{n2.node.address}:{PORT}"
    assert peers[n2.pub]["allowed_ips"] == [f"{n2.overlay}/32"]
    assert peers[n2.pub]["persistent_keepalive"] == 25
    assert peers[n2.pub]["last_handshake_sec"] == int(n1.observed("latest-handshakes")[n2.pub])
    assert peers[n2.pub]["rx_bytes"] > 0 and peers[n2.pub]["tx_bytes"] > 0
    assert peers[n2.pub]["protocol_version"] == 1
    # The private key never appears in what the tool prints.
    assert n1.priv not in json.dumps(shown)


def test_large_set_applies_as_deltas(mesh, tmp_path):
    n1, n2, _ = mesh
    n1.peer_set(n2)
    n2.peer_set(n1)
    assert n1.ping(n2)
    hs = n1.observed("latest-handshakes")[n2.pub]

    dummies = []
    for i in range(300):
        dummies.append({"public_key": base64.b64encode(os.urandom(32)).decode(), "endpoint": f"198.18.1.{i % 250 + 1}:{40000 + i}",
                        "allowed_ips": [f"10.200.{i // 250}.{i % 250 + 1}/32", f"fd77::{i + 1:x}/128"],
                        "keepalive": 0})
    real = {"public_key": n2.pub, "endpoint": f"{n2.node.address}:{PORT}", "allowed_ips": [f"{n2.overlay}/32"]}

    def sync(peers):
        f = tmp_path / "desired.json"
        f.write_text(json.dumps({"peers": peers}))
        return json.loads(n1.wgtool("sync", n1.ifname, str(f)).stdout)

    assert sync([real] + dummies) == {"added": 300, "updated": 0, "removed": 0, "replace_peers": False}
    assert len(n1.observed("peers")) == 301
    assert n1.observed("latest-handshakes")[n2.pub] == hs

    # One dummy gets another route, 100 leave: exactly that is written.
    dummies[7]["allowed_ips"].append("10.201.0.0/16")
    r = sync([real] + dummies[:200])
    assert r == {"added": 0, "updated": 1, "removed": 100, "replace_peers": False}
    assert len(n1.observed("peers")) == 201
    assert "10.201.0.0/16" in n1.observed("allowed-ips")[dummies[7]["public_key"]]
    assert n1.observed("latest-handshakes")[n2.pub] == hs
    assert n1.ping(n2)


def test_clear_errors(mesh):
    n1, n2, _ = mesh

    p = n1.wgtool("up", n1.ifname, "--private-key-file", str(n1.keyfile), check=False)
    assert p.returncode != 0 and f'"{n1.ifname}" already runs' in p.stderr

    p = n1.wgtool("show", "wgb-nosuch", check=False)
    assert p.returncode != 0 and "/run/wireguard/wgb-nosuch.sock" in p.stderr

    p = n1.wgtool("peer-set", n1.ifname, "--public-key", n2.pub, "--allowed-ips", "10.0.0.0/33", check=False)
    assert p.returncode != 0 and '"10.0.0.0/33"' in p.stderr

    p = n1.wgtool("peer-set", n1.ifname, "--public-key", n2.pub, "--endpoint", "198.18.0.2", check=False)
    assert p.returncode != 0 and 'Invalid endpoint "198.18.0.2"' in p.stderr

    p = n1.wgtool("peer-set", n1.ifname, "--public-key", "not-a-key", check=False)
    assert p.returncode != 0 and '"not-a-key"' in p.stderr
    assert n1.observed("peers") == {}

    p = n1.wgtool("--backend", "kernel", "show", n1.ifname, check=False)
    kernel_has_wg = run(n1.node.name, ["ip", "link", "add", "wgbprobe0", "type", "wireguard"],
                        check=False).returncode == 0
    if kernel_has_wg:
        run(n1.node.name, ["ip", "link", "del", "wgbprobe0"], check=False)
    else:
        assert p.returncode != 0 and "The kernel has no WireGuard" in p.stderr


def test_down_stops_wireguard_go_and_host_addresses(mesh):
    n1, n2, _ = mesh

    # The host's own addresses for endpoint reports: the underlay, not our WireGuard links.
    out = n1.wgtool("host-addresses", "--exclude-prefix", "wgb-").stdout.split("\n")
    assert f"eth0 {n1.node.cidr}" in out
    assert not any(line.startswith("wgb-") for line in out)
    n1.node.add_address("198.18.0.201/24")
    assert "eth0 198.18.0.201/24" in n1.wgtool("host-addresses", "--exclude-prefix", "wgb-").stdout
    # Without the exclusion the WireGuard link's address shows up too.
    assert f"{n1.ifname} {n1.overlay}/24" in n1.wgtool("host-addresses").stdout

    before = n1.node.pids()
    assert before, "wireguard-go should run inside the namespace"
    n1.wgtool("down", n1.ifname)
    deadline = time.monotonic() + 5
    while n1.node.pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert n1.node.pids() == []
    assert not os.path.exists(f"{UAPI_DIR}/{n1.ifname}.sock")
    assert n1.ifname not in n1.node.run(["ip", "-br", "link"]).stdout
    p = n1.wgtool("down", n1.ifname, check=False)
    assert p.returncode != 0 and f'No WireGuard interface "{n1.ifname}"' in p.stderr
