"""A whole mesh for tests and demos: Mosquitto (dynamic security) and netmakerd on the host's
loopback as the other integration tests run them, made reachable on the underlay at
198.18.<subnet>.254 (a relay in the bridge namespace: socat listening there, a UNIX socket, socat
on the host connecting to 127.0.0.1), and N netclientd nodes (nmtest.node.AgentNode), each with
its own network and mount namespaces, dbus-daemon and polkitd, joined with `netclient join`.

    with Mesh(tmp_path, nodes=3) as mesh:
        mesh.join_all()                     # netclient join -t TOKEN on every node
        mesh.wait_full_mesh()               # every node has every other as a WireGuard peer
        assert mesh.ping_matrix() == {}     # {(a, b): "why"} for pairs that cannot ping
        n4 = mesh.add_node(); mesh.join(n4)
        mesh.server.admin("GET", "/hosts")

Run the demo (as root, after `meson setup build && ninja -C build`):

    cd tests/integration && /usr/bin/python3 -m nmtest.mesh --nodes 3

Only loopback and the namespaces made here carry traffic; cleanup stops what was started (by PID)
and deletes the namespaces.
"""

import argparse
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .broker import Broker
from .netns import Underlay, unique_prefix
from .node import AgentNode, wait_until
from .server import Server, free_port

SOCAT = shutil.which("socat") or "/usr/bin/socat"


class MeshError(AssertionError):
    pass


class Relay:
    """Makes a TCP service on the host's 127.0.0.1:port reachable at address:port inside a namespace."""

    def __init__(self, netns, address, port, workdir):
        self.netns, self.address, self.port = netns, address, port
        self.sock = Path(workdir) / f"relay-{port}.sock"
        self.procs = []

    def start(self):
        if self.sock.exists():
            self.sock.unlink()
        host = subprocess.Popen([SOCAT, f"UNIX-LISTEN:{self.sock},fork,mode=600",
                                 f"TCP:127.0.0.1:{self.port}"], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(host)
        wait_until(lambda: self.sock.exists(), 5, f"relay socket {self.sock}")
        inner = subprocess.Popen(["ip", "netns", "exec", self.netns, SOCAT,
                                  f"TCP-LISTEN:{self.port},bind={self.address},fork,reuseaddr",
                                  f"UNIX-CONNECT:{self.sock}"], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(inner)

        def listening():
            return subprocess.run(["ip", "netns", "exec", self.netns, "bash", "-c",
                                   f"exec 3<>/dev/tcp/{self.address}/{self.port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
        wait_until(listening, 10, f"relay on {self.address}:{self.port}")
        return self

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(3)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []


class Mesh:
    def __init__(self, workdir, nodes=3, *, subnet=0, prefix=None, network="office", ipv4_range="10.99.0.0/24",
                 ipv6_range=None, server_config=None, polkit_rules=None, wg_backend="userspace", broker_tls=True,
                 node_options=None, relay_api=True):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.n_nodes = nodes
        self.subnet = subnet
        self.prefix = prefix or unique_prefix("nma")
        self.network = network
        self.ipv4_range = ipv4_range
        self.ipv6_range = ipv6_range
        self.server_config = dict(server_config or {})
        self.broker_tls = broker_tls  # False: a plain listener (tests of the insecure mode)
        self.polkit_rules = polkit_rules
        self.wg_backend = wg_backend
        self.node_options = dict(node_options or {})  # more AgentNode arguments (resolved=True, ...)
        # False: netmakerd's port is not made reachable on the underlay (a proxy in front of it is,
        # by the test: mesh.relay(port)).
        self.relay_api = relay_api
        self.server_ip = f"198.18.{subnet}.254"
        self.underlay = None
        self.broker = None
        self.server = None
        self.relays = []
        self.nodes = []
        self.key = None
        self.hidden_keys = set()  # the server's observer keys (nmtest.node.AgentNode.hidden_keys)

    # ---- lifecycle ---------------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def start(self):
        try:
            self.underlay = Underlay(nodes=self.n_nodes, prefix=self.prefix, subnet=self.subnet).create()
            subprocess.run(["ip", "-n", self.underlay.bridge, "addr", "add", f"{self.server_ip}/24", "dev", "br0"],
                           check=True)
            self.broker = Broker(self.dir, tls=self.broker_tls).start()
            api_port = free_port()
            plain = self.server_config.get("tls") == "no"
            config = {
                "listen": f"127.0.0.1:{api_port}",
                "api_url": f"{'http' if plain else 'https'}://{self.server_ip}:{api_port}",
                "broker_public_url": f"{'mqtts' if self.broker_tls else 'mqtt'}://{self.server_ip}:{self.broker.port}",
            }
            config.update(self.server_config)
            self.server = Server(self.dir, self.broker, config=config).start()
            for port in (api_port, self.broker.port) if self.relay_api else (self.broker.port,):
                self.relay(port)
            net = self.server.create_network(self.network, self.ipv4_range,
                                             **({"ipv6_range": self.ipv6_range} if self.ipv6_range else {}))
            self.hidden_keys = {net["observer"]["public_key"]} if net.get("observer") else set()
            self.key = self.server.create_key([self.network], name="mesh", unlimited=True)
            for i, netns_node in enumerate(self.underlay.nodes):
                self._start_node(netns_node)
        except Exception:
            self.cleanup()
            raise
        return self

    def hide_observer(self, network):
        """Leaves the server's observer peer of another network out of every node's wg_peers()."""
        net = self.server.admin("GET", f"/networks/{network}", expect=200)
        if net.get("observer"):
            self.hidden_keys.add(net["observer"]["public_key"])

    def relay(self, port):
        """Makes the host's 127.0.0.1:port reachable at the server address on the underlay (stopped
        at cleanup)."""
        relay = Relay(self.underlay.bridge, self.server_ip, port, self.dir).start()
        self.relays.append(relay)
        return relay

    def _start_node(self, netns_node, **options):
        name = f"node{netns_node.index}"
        node = AgentNode(netns_node, self.dir / name, name=name, polkit_rules=self.polkit_rules,
                         wg_backend=self.wg_backend, **{**self.node_options, **options})
        node.hidden_keys = self.hidden_keys
        self.nodes.append(node)
        node.start()
        return node

    def add_node(self, **options):
        """One more node on the underlay, with its daemons started (not joined yet); `options` go to
        AgentNode on top of the mesh's node_options."""
        return self._start_node(self.underlay.add_node(), **options)

    def cleanup(self):
        for n in reversed(self.nodes):
            try:
                n.stop()
            except Exception as e:  # noqa: BLE001 (keep cleaning up)
                print(f"cleanup of {n}: {e}", file=sys.stderr)
        for r in self.relays:
            r.stop()
        self.relays = []
        if self.underlay:
            self.underlay.cleanup()
        if self.server and self.server.running:
            self.server.stop(check=False)
        if self.broker:
            self.broker.stop()

    # ---- joining -----------------------------------------------------------------------------

    @property
    def token(self):
        return self.key["token"]

    @property
    def ifname(self):
        return f"nm-{self.network}" if len(self.network) <= 12 else None

    def join(self, node, token=None):
        # Every node would register the machine's one host name: give each its own.
        p = node.netclient("join", "-t", token or self.token, "--name", node.name)
        if p.returncode != 0:
            raise MeshError(f"{node.name}: netclient join failed ({p.returncode}): {p.stderr}\n{node.log_tail()}")
        return p

    def join_all(self):
        for n in self.nodes:
            self.join(n)

    def status(self, node):
        return node.netclient_json("status")

    def mesh_address(self, node, network=None):
        """The node's IPv4 address in the network, without prefix length."""
        for net in self.status(node)["networks"]:
            if net["name"] == (network or self.network):
                for a in net["addresses"]:
                    if ":" not in a:
                        return a.split("/")[0]
        return None

    def public_key(self, node):
        return self.status(node)["public_key"]

    def wait_full_mesh(self, nodes=None, timeout=30):
        """Waits until every node has every other node as a WireGuard peer (read with `wg`)."""
        nodes = nodes or self.nodes
        keys = {n.name: self.public_key(n) for n in nodes}

        def complete():
            for n in nodes:
                peers = n.wg_peers(self.ifname) or {}
                want = {keys[m.name] for m in nodes if m is not n}
                if not want <= set(peers):
                    return False
            return True
        wait_until(complete, timeout, "a full mesh of WireGuard peers")

    def ping_matrix(self, nodes=None, count=1, timeout=2, retries=3):
        """{(from, to): reason} for every ordered pair that cannot ping; {} when all can."""
        nodes = nodes or self.nodes
        addrs = {n.name: self.mesh_address(n) for n in nodes}
        failures = {}
        for a, b in itertools.permutations(nodes, 2):
            ok = any(a.ping(addrs[b.name], count=count, timeout=timeout) for _ in range(retries))
            if not ok:
                failures[(a.name, b.name)] = f"{addrs[a.name]} -> {addrs[b.name]}"
        return failures

    def wait_ping_matrix(self, nodes=None, timeout=30):
        """Like ping_matrix(), but gives each failing pair until `timeout` (a WireGuard handshake
        that was lost is retried only after 5 s)."""
        deadline = time.monotonic() + timeout
        failures = self.ping_matrix(nodes)
        while failures and time.monotonic() < deadline:
            time.sleep(0.5)
            nodes_by_name = {n.name: n for n in (nodes or self.nodes)}
            failures = {k: v for k, v in failures.items()
                        if not nodes_by_name[k[0]].ping(v.split(" -> ")[1], count=1, timeout=2)}
        return failures

    def first_ping_time(self, a, b, timeout=30):
        """Seconds until a can ping b's mesh address (polling with 0.2 s pings)."""
        addr = self.mesh_address(b)
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if a.ping(addr, count=1, timeout=1):
                return time.monotonic() - start
        raise MeshError(f"{a.name} could not ping {b.name} ({addr}) within {timeout} s")


def peer_change_check(mesh, out=print):
    """A one-peer change on a running mesh of at least two nodes: a new node joins, then leaves.
    node1 must apply each as a delta: its session with node2 keeps its handshake and its counters
    go on (a REPLACE_PEERS, or rewriting node2's entry, would reset the session), and its netclientd
    writes only the peer that changed (its debug log names every peer it writes). Prints one line
    per step; returns {} or {(step, node): why}."""
    a, b = mesh.nodes[0], mesh.nodes[1]
    ifname = mesh.ifname
    key_b = mesh.public_key(b)
    addr_b = mesh.mesh_address(b)
    failures = {}
    c = mesh.add_node()
    key_c = []  # known once it has joined

    def session():
        p = (a.wg_peers(ifname) or {}).get(key_b)
        return (p["latest_handshake"], p["rx"]) if p else (0, 0)

    def join():
        mesh.join(c)
        key_c.append(mesh.public_key(c))
        wait_until(lambda: key_c[0] in (a.wg_peers(ifname) or {}), 30, f"{c.name} as a WireGuard peer of {a.name}")
        if mesh.wait_ping_matrix([a, c], timeout=20):
            failures[("join", c.name)] = f"{a.name} and {c.name} cannot ping each other"

    def leave():
        p = c.netclient("leave", mesh.network)
        if p.returncode != 0:
            failures[("leave", c.name)] = f"netclient leave failed ({p.returncode}): {p.stderr}"
        wait_until(lambda: key_c[0] not in (a.wg_peers(ifname) or {key_c[0]: None}), 30,
                   f"{c.name} gone from {a.name}'s WireGuard peers")

    for name, change, what in ((f"{c.name} joins", join, "add"), (f"{c.name} leaves", leave, "remove")):
        a.ping(addr_b, count=1, timeout=3)  # traffic on the session being watched
        before = session()
        time.sleep(1.1)  # a new handshake would carry another second
        mark = len(a.log())
        change()
        ok = a.ping(addr_b, count=2, timeout=3)
        after = session()
        peers = re.findall(rf"{re.escape(ifname)}: peer (\S+): (\S+)", a.log()[mark:])
        kept = before[0] != 0 and after[0] == before[0] and after[1] > before[1]
        only = peers == [(key_c[0], what)]
        verdict = "session kept, one peer written" if kept and only and ok else "FAILED"
        out(f"{name}: node1 wrote {len(peers)} peer(s) ({', '.join(f'{k[:8]}... {w}' for k, w in peers)}); "
            f"node1-node2 handshake {before[0]} -> {after[0]}, rx {before[1]} -> {after[1]}, "
            f"ping {'ok' if ok else 'FAILED'}: {verdict}")
        if verdict == "FAILED":
            failures[(name, a.name)] = f"peers written {peers}, node2 session {before} -> {after}, ping {ok}"
    return failures


def main(argv=None):
    ap = argparse.ArgumentParser(description="Bring up netmakerd + Mosquitto + N netclientd nodes in "
                                             "namespaces, join them, show them pinging, clean up.")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="wait for Enter before cleaning up")
    ap.add_argument("--backend", default="userspace", choices=("userspace", "kernel"),
                    help="netclientd's WireGuard backend (kernel needs a kernel with WireGuard)")
    ap.add_argument("--restart-check", action="store_true",
                    help="also restart node1's netclientd and check that no session was reset")
    ap.add_argument("--peer-change-check", action="store_true",
                    help="also let one more node join and leave, and check that node1 applies each as a "
                         "one-peer delta (its session with node2 is not reset)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("Run as root (network namespaces).", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="nm-mesh-demo-") as d, Mesh(d, nodes=args.nodes, wg_backend=args.backend) as mesh:
        print(f"netmakerd {mesh.server.url} (underlay {mesh.server_ip}), broker {mesh.broker.url}")
        t0 = time.monotonic()
        for n in mesh.nodes:
            t = time.monotonic()
            mesh.join(n)
            print(f"{n.name}: joined {mesh.network} as {mesh.mesh_address(n)} in {time.monotonic() - t:.2f} s")
        mesh.wait_full_mesh()
        print(f"full mesh after {time.monotonic() - t0:.2f} s")
        failures = mesh.ping_matrix()
        for a, b in itertools.permutations(mesh.nodes, 2):
            ok = (a.name, b.name) not in failures
            print(f"  {a.name} -> {b.name} ({mesh.mesh_address(b)}): {'ok' if ok else 'FAILED'}")
        print(mesh.nodes[0].netclient("peers").stdout)
        kind = mesh.nodes[0].run(["ip", "-d", "link", "show", "nm-office"]).stdout
        print(f"nm-office on node1: {'kernel wireguard link' if ' wireguard ' in kind else 'tun (wireguard-go)'}")
        if args.restart_check:
            a, b = mesh.nodes[0], mesh.nodes[1]
            key_a = mesh.public_key(a)
            before = b.wg_peers("nm-office")[key_a]["latest_handshake"]
            a.restart_netclientd()
            time.sleep(1.1)
            ok = b.ping(mesh.mesh_address(a), count=2, timeout=3)
            after = b.wg_peers("nm-office")[key_a]["latest_handshake"]
            same = "Adopted WireGuard link nm-office" in a.log() and after == before and ok
            print(f"restart of node1's netclientd: handshake {before} -> {after}, ping {'ok' if ok else 'FAILED'}: "
                  f"{'sessions kept' if same else 'FAILED'}")
            failures = failures or ({} if same else {("restart", "node1"): "session reset"})
        if args.peer_change_check:
            failures = peer_change_check(mesh) or failures
        if args.keep:
            input("Press Enter to clean up... ")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
