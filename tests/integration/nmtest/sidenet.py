"""Test beds around a mesh (nmtest.mesh) for the topology tests: a namespace behind one node (a LAN
behind an egress gateway, "the internet" behind an internet gateway), a plain WireGuard client
brought up with the stock wg-quick in its own network and mount namespaces (an external client),
nftables seen from inside a node, and a STUN responder on the underlay.

    lan = SideNet(mesh, node, "lan", "192.168.50.1/24", "192.168.50.10/24").create()
    lan.run(["ping", ...]); lan.cleanup()
    nft(node, "list table inet netmaker")                     # CompletedProcess
    c = WgQuickClient(mesh, workdir, "phone").start(); c.up(conf_text); c.ping("10.99.0.2"); c.down()
    stun = StunResponder(mesh, workdir).start(); stun.address  # "198.18.S.254:PORT"

Only namespaces and processes made here are touched; cleanup() removes them (by name and PID).
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

from .netns import pids_in, _stop_pids
from .node import wait_until
from .server import free_port


def nft(node, *args, input=None):
    """`nft ARGS` inside the node (its network namespace)."""
    return node.run(["nft", *args], input=input)


def nft_table(node, family, name, stateless=True):
    """The table as nft prints it (without counter values when stateless), or None when absent."""
    p = nft(node, *(["-s"] if stateless else []), "list", "table", family, name)
    return p.stdout if p.returncode == 0 else None


class SideNet:
    """A namespace joined to one node by a veth pair: `node_cidr` on the node's end (`ifname`),
    `host_cidr` on eth0 of the namespace; a default route there to the node when `default_route`."""

    def __init__(self, mesh, node, tag, node_cidr, host_cidr, ifname=None, default_route=False):
        self.mesh, self.node, self.tag = mesh, node, tag
        self.name = f"{mesh.prefix}-{tag}"
        self.ifname = ifname or f"{tag[:10]}0"
        self.node_cidr, self.host_cidr = node_cidr, host_cidr
        self.default_route = default_route
        self.created = False

    @property
    def host_address(self):
        return self.host_cidr.split("/")[0]

    def create(self):
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.created = True
        try:
            sh = lambda *a: subprocess.run(list(a), check=True, capture_output=True, text=True)  # noqa: E731
            sh("ip", "-n", self.name, "link", "set", "lo", "up")
            sh("ip", "link", "add", self.ifname, "netns", self.node.netns.name, "type", "veth",
               "peer", "name", "eth0", "netns", self.name)
            sh("ip", "-n", self.node.netns.name, "addr", "add", self.node_cidr, "dev", self.ifname)
            sh("ip", "-n", self.node.netns.name, "link", "set", self.ifname, "up")
            sh("ip", "-n", self.name, "addr", "add", self.host_cidr, "dev", "eth0")
            sh("ip", "-n", self.name, "link", "set", "eth0", "up")
            if self.default_route:
                sh("ip", "-n", self.name, "route", "add", "default", "via", self.node_cidr.split("/")[0])
        except Exception:
            self.cleanup()
            raise
        return self

    def run(self, argv, **kw):
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        kw.setdefault("timeout", 30)
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], **kw)

    def cleanup(self):
        if not self.created:
            return
        _stop_pids(pids_in(self.name))
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        self.created = False


class WgQuickClient:
    """A plain WireGuard peer the way a user runs one: `wg-quick up FILE` (falling back to
    wireguard-go) in a node of the underlay with a private mount namespace: its own /run (the UAPI
    socket), a private /etc/resolv.conf bind-mounted over the host's, and a stub `resolvconf` first
    in PATH that records what wg-quick gives it (DNS=) instead of changing anything."""

    def __init__(self, mesh, workdir, ifname="phone"):
        self.mesh = mesh
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ifname = ifname
        self.name = f"wg-quick client {ifname}"
        self.netns = None
        self.holder = None
        self.resolvconf_log = self.dir / "resolvconf.log"

    def start(self):
        self.netns = self.mesh.underlay.add_node()
        stub = self.dir / "bin"
        stub.mkdir(exist_ok=True)
        (stub / "resolvconf").write_text(
            "#!/bin/sh\n"
            f"echo \"resolvconf $*\" >> {self.resolvconf_log}\n"
            f"cat >> {self.resolvconf_log}\n")
        os.chmod(stub / "resolvconf", 0o755)
        resolv = self.dir / "resolv.conf"
        resolv.write_text("# private to the test client\n")
        script = " && ".join([
            "mount -t tmpfs -o mode=755 tmpfs /run",
            "mkdir -p /run/wireguard",
            f"mount --bind {resolv} /etc/resolv.conf",
            "touch /run/.nmtest-ready",
            "exec sleep infinity",
        ])
        self.holder = subprocess.Popen(["ip", "netns", "exec", self.netns.name, "unshare", "--mount",
                                        "--propagation", "private", "/bin/sh", "-c", script],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        ready = Path(f"/proc/{self.holder.pid}/root/run/.nmtest-ready")
        wait_until(lambda: ready.exists() or self.holder.poll() is not None, 10, "the client's mount namespace")
        if self.holder.poll() is not None:
            raise AssertionError(f"client holder exited: {self.holder.stderr.read().decode()}")
        return self

    def run(self, argv, timeout=60, input=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WG_", "DBUS_"))}
        env["PATH"] = f"{self.dir / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env["WG_COLOR_MODE"] = "never"
        return subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m", "-n", *argv], capture_output=True,
                              text=True, timeout=timeout, env=env, input=input)

    def up(self, conf_text):
        conf = self.dir / f"{self.ifname}.conf"
        conf.write_text(conf_text)
        os.chmod(conf, 0o600)
        p = self.run(["wg-quick", "up", str(conf)])
        if p.returncode != 0:
            raise AssertionError(f"wg-quick up failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p

    def down(self):
        return self.run(["wg-quick", "down", str(self.dir / f"{self.ifname}.conf")])

    def ping(self, address, count=1, timeout=2):
        return self.run(["ping", "-n", "-q", "-c", str(count), "-W", str(timeout), address],
                        timeout=timeout * count + 10).returncode == 0

    def wg_show(self, what="dump"):
        return self.run(["wg", "show", self.ifname, what])

    def cleanup(self):
        if self.holder and self.holder.poll() is None:
            self.down()
            self.holder.send_signal(signal.SIGTERM)
            try:
                self.holder.wait(5)
            except subprocess.TimeoutExpired:
                self.holder.kill()
                self.holder.wait()
        # wireguard-go daemonised itself inside the namespace; Underlay.cleanup() stops what is left.
        if self.netns:
            _stop_pids(pids_in(self.netns.name))


class StunResponder:
    """A minimal STUN server (RFC 5389 Binding, XOR-MAPPED-ADDRESS) on the underlay at the server's
    address (the bridge namespace). `mapping` {source ip: reported ip} lets it pretend a NAT."""

    def __init__(self, mesh, workdir, mapping=None):
        self.mesh = mesh
        self.dir = Path(workdir)
        self.mapping = dict(mapping or {})
        self.port = free_port()
        self.proc = None

    @property
    def address(self):
        return f"{self.mesh.server_ip}:{self.port}"

    def start(self):
        script = self.dir / "stun-server.py"
        script.write_text(_STUN_SCRIPT)
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.mesh.underlay.bridge, sys.executable, str(script),
                                      self.mesh.server_ip, str(self.port),
                                      *[f"{k}={v}" for k, v in self.mapping.items()]],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(f"STUN responder did not start: {line} {self.proc.stderr.read()}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


_STUN_SCRIPT = r'''
import socket, struct, sys
host, port = sys.argv[1], int(sys.argv[2])
mapping = dict(a.split("=") for a in sys.argv[3:])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, port))
print("ready", flush=True)
while True:
    data, (src, sport) = s.recvfrom(2048)
    if len(data) < 20 or data[0:2] != b"\x00\x01" or data[4:8] != b"\x21\x12\xa4\x42":
        continue
    seen = mapping.get(src, src)
    xaddr = bytes(a ^ b for a, b in zip(socket.inet_aton(seen), data[4:8]))
    attr = struct.pack("!HHBBH", 0x0020, 8, 0, 1, sport ^ 0x2112) + xaddr
    s.sendto(b"\x01\x01" + struct.pack("!H", len(attr)) + data[4:20] + attr, (src, sport))
'''


def wait_for(predicate, timeout=30, what="condition", interval=0.2):
    return wait_until(predicate, timeout, what, interval)


__all__ = ["SideNet", "WgQuickClient", "StunResponder", "nft", "nft_table", "wait_for"]
