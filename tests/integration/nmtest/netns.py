"""Network namespaces for integration tests: one bridge namespace and N node namespaces joined by
veth pairs on the underlay 198.18.0.0/15 (no default route, no link to the host's interfaces),
commands run inside them, and a cleanup that removes only what it created.

API
---
    from nmtest.netns import Underlay, run, unique_prefix

    with Underlay(nodes=3) as net:              # or: net = Underlay(nodes=3).create(); ...; net.cleanup()
        n1, n2, n3 = net.nodes                  # Node objects, index 1..N
        n1.name        # the namespace name, "<prefix>-n1"
        n1.index       # 1
        n1.address     # "198.18.0.1"  (underlay IPv4 on eth0)
        n1.cidr        # "198.18.0.1/24"
        n1.address6    # "fd00:198:18::1" when Underlay(ipv6=True), else None
        n1.iface       # "eth0"
        n1.run(["ip", "-br", "addr"])           # CompletedProcess(text); check=True raises NetnsError with stderr
        n1.run("ping -c1 -W2 198.18.0.2", check=False).returncode
        p = n1.popen(["netclientd", ...], stdout=f)   # Popen inside the namespace, tracked for cleanup
        n1.pids()      # PIDs of every process inside the namespace (whoever started it)
        n1.ping("198.18.0.2", count=1, timeout=2)  # -> bool
        n1.add_address("198.18.0.101/24")       # a second underlay address (e.g. a new endpoint)
        net.add_node()                          # grows the underlay by one node
        net.bridge                              # the bridge namespace's name, "<prefix>-br"
        net.bridge_mac                          # br0's fixed MAC address (ports never change it)

    run(ns, cmd, check=True, timeout=30, **kw)  # the same as Node.run for any namespace name
    unique_prefix("wgb")                         # "wgb-<pid>"; with a suffix if that is taken

Naming: namespaces are "<prefix>-br" and "<prefix>-n<i>"; the default prefix is "nmt-<pid>", so
parallel runs by other people do not collide. Pass `prefix="wgb-1234"` etc. to choose your own.

Addresses: node i gets 198.18.<subnet>.<i>/24 on eth0 (subnet=0 by default; pick another per
Underlay when one test builds several), up to 250 nodes. No namespace gets a default route, so
nothing can leave for the host's network.

Cleanup (also on exceptions inside `with`): processes started with popen() get SIGTERM (SIGKILL
after 3 s); then every process still running inside one of our namespaces (e.g. a wireguard-go
a tool started and detached) is signalled the same way, found by comparing /proc/PID/ns/net with
the namespace; then the namespaces are deleted. Nothing outside our namespaces is touched.

Pitfall for wireguard-go: its UAPI socket /run/wireguard/<ifname>.sock is a file path shared by
every network namespace (ip netns exec shares /run): give interfaces unique names per node (for
example f"{prefix}-{i}", at most 15 characters), or run each node in a private mount namespace.
"""

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

NETNS_DIR = Path("/run/netns")


class NetnsError(Exception):
    pass


def unique_prefix(base: str = "nmt") -> str:
    """`base-<pid>`, or `base-<pid>-<n>` when a namespace of that prefix already exists."""
    prefix = f"{base}-{os.getpid()}"
    existing = [p.name for p in NETNS_DIR.iterdir()] if NETNS_DIR.exists() else []
    candidate, n = prefix, 0
    while any(name.startswith(candidate + "-") for name in existing):
        n += 1
        candidate = f"{prefix}-{n}"
    return candidate


def _argv(cmd):
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def run(ns: str, cmd, check: bool = True, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    """Runs cmd (a list, or a string split like a shell would) inside namespace `ns` and returns
    the CompletedProcess with text stdout/stderr. check=True raises NetnsError with the output."""
    argv = ["ip", "netns", "exec", ns] + _argv(cmd)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    p = subprocess.run(argv, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise NetnsError(f"in {ns}: {' '.join(argv[4:])} exited with {p.returncode}\n"
                         f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def _host(cmd):
    p = subprocess.run(_argv(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    if p.returncode != 0:
        raise NetnsError(f"{cmd} exited with {p.returncode}: {p.stderr.strip()}")
    return p


def _netns_inode(ns: str):
    st = os.stat(NETNS_DIR / ns)
    return (st.st_dev, st.st_ino)


def pids_in(ns: str):
    """PIDs of the processes whose network namespace is `ns`."""
    try:
        want = _netns_inode(ns)
    except FileNotFoundError:
        return []
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            st = os.stat(d / "ns" / "net")
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue
        if (st.st_dev, st.st_ino) == want:
            pids.append(int(d.name))
    return pids


def _stop_pids(pids, grace=3.0):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _alive(p)]
        if alive:
            time.sleep(0.05)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class Node:
    def __init__(self, underlay, index):
        self.underlay = underlay
        self.index = index
        self.name = f"{underlay.prefix}-n{index}"
        self.address = f"198.18.{underlay.subnet}.{index}"
        self.cidr = f"{self.address}/24"
        self.address6 = f"fd00:198:18:{underlay.subnet:x}::{index:x}" if underlay.ipv6 else None
        self.iface = "eth0"
        self.procs = []

    def run(self, cmd, check=True, timeout=30, **kw):
        return run(self.name, cmd, check=check, timeout=timeout, **kw)

    def popen(self, cmd, **kw) -> subprocess.Popen:
        p = subprocess.Popen(["ip", "netns", "exec", self.name] + _argv(cmd), **kw)
        self.procs.append(p)
        return p

    def pids(self):
        return pids_in(self.name)

    def ping(self, address, count=1, timeout=2) -> bool:
        cmd = ["ping", "-n", "-q", "-c", str(count), "-W", str(timeout), address]
        return self.run(cmd, check=False, timeout=timeout * count + 10).returncode == 0

    def add_address(self, cidr, iface=None):
        self.run(["ip", "addr", "add", cidr, "dev", iface or self.iface]
                 + (["nodad"] if ":" in cidr else []))

    def __repr__(self):
        return f"Node({self.name}, {self.address})"


class Underlay:
    def __init__(self, nodes=2, prefix=None, subnet=0, ipv6=False):
        if not 1 <= nodes <= 250:
            raise ValueError(f"nodes={nodes}: 1-250 nodes are accepted")
        self.prefix = prefix or unique_prefix("nmt")
        self.subnet = subnet
        self.ipv6 = ipv6
        self.bridge = f"{self.prefix}-br"
        self.bridge_mac = f"02:00:c6:12:{subnet:02x}:fe"  # locally administered; each bridge has its own namespace
        self.nodes = []
        self._n = nodes
        self._created = []  # namespaces we made, in order

    def __enter__(self):
        return self.create()

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def create(self):
        try:
            self._add_ns(self.bridge)
            # A MAC address of its own: a bridge without one takes the lowest of its ports', so a
            # node added later could change it, and the nodes already there would keep sending to
            # the old one (their neighbour entries) until they notice: connections to an address on
            # br0 (the server's) would hang for many seconds.
            _host(["ip", "-n", self.bridge, "link", "add", "br0", "address", self.bridge_mac, "type", "bridge"])
            _host(["ip", "-n", self.bridge, "link", "set", "br0", "up"])
            for _ in range(self._n):
                self.add_node()
        except Exception:
            self.cleanup()
            raise
        return self

    def _add_ns(self, name):
        _host(["ip", "netns", "add", name])
        self._created.append(name)
        _host(["ip", "-n", name, "link", "set", "lo", "up"])

    def add_node(self) -> Node:
        node = Node(self, len(self.nodes) + 1)
        self._add_ns(node.name)
        veth = f"v{node.index}"
        # Both ends are created directly in their namespaces: no temporary name on the host.
        _host(["ip", "link", "add", veth, "netns", self.bridge, "type", "veth",
               "peer", "name", node.iface, "netns", node.name])
        _host(["ip", "-n", self.bridge, "link", "set", veth, "master", "br0", "up"])
        _host(["ip", "-n", node.name, "addr", "add", node.cidr, "dev", node.iface])
        if node.address6:
            _host(["ip", "-n", node.name, "addr", "add", f"{node.address6}/64", "dev", node.iface, "nodad"])
        _host(["ip", "-n", node.name, "link", "set", node.iface, "up"])
        self.nodes.append(node)
        return node

    def cleanup(self):
        for node in self.nodes:
            _stop_pids([p.pid for p in node.procs if p.poll() is None])
            for p in node.procs:
                try:
                    p.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    pass
        for ns in self._created:
            _stop_pids(pids_in(ns))
        for ns in reversed(self._created):
            subprocess.run(["ip", "netns", "del", ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._created = []
