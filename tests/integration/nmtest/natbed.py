"""A test bed of real networks, entirely in namespaces this process makes: a "public" namespace whose
bridge is the internet (198.18.<subnet>.0/24), netmakerd running inside it (so its UDP port sees the
real, NATed source addresses), Mosquitto on the host's loopback relayed in, public hosts on the
bridge, and sites: a NAT router namespace per site (WAN on the public bridge, a LAN behind it) with a
netclientd host behind it. The routers' NAT is nftables:

- "eim": endpoint-independent mapping with port remapping (`snat to WAN:20000-30000`: Linux reuses a
  source's mapping for every destination) and endpoint-independent filtering (a "full cone": every
  mapping is learned into a map and unsolicited UDP to it is forwarded to its owner), as home
  routers with "full cone NAT" do;
- "symmetric": `masquerade random`, a new random port for every destination, and Linux conntrack's
  filtering: only the destination a mapping was made for may answer.

Unsolicited packets to a router itself are dropped (before conntrack confirms an entry for them, so
they cannot take a port away from a later mapping).

    with NatBed(tmp_path, subnet=50) as bed:
        f = bed.add_public_host("f")
        a = bed.add_site("a", "eim")            # AgentNode behind its router
        bed.join(a)
        bed.probe_nat("a")                      # {"mapping": "independent", "filtering": "independent"}
        bed.add_lan_host("a", "a2")             # another host behind the same NAT
        bed.set_nat("a", "symmetric")
        bed.server.admin(...)                   # through a loopback relay into the public namespace

Only this process's namespaces carry traffic; cleanup stops what it started (by PID) and deletes
the namespaces.
"""

import subprocess
import sys
import time
from pathlib import Path

from .broker import Broker
from .mesh import SOCAT, Relay
from .netns import _stop_pids, pids_in, unique_prefix
from .node import AgentNode, wait_until
from .server import Server, free_port
from . import http

UDP_PORT = 3478
FULLCONE_TIMEOUT = "3m"


class Ns:
    """What AgentNode needs of a namespace: its name (and an address for messages)."""

    def __init__(self, name, address, index=0):
        self.name, self.address, self.index = name, address, index

    def __repr__(self):
        return f"Ns({self.name}, {self.address})"


def sh(*argv, check=True, input=None):
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, input=input, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))}: {p.returncode}: {p.stderr}")
    return p


def in_ns(ns, *argv, check=True, input=None):
    return sh("ip", "netns", "exec", ns, *argv, check=check, input=input)


class ReverseRelay:
    """Makes address:port inside namespace `netns` reachable at 127.0.0.1:<local_port> of the host
    (the reverse of nmtest.mesh.Relay): socat on the host, a UNIX socket, socat in the namespace."""

    def __init__(self, netns, address, port, workdir):
        self.netns, self.address, self.port = netns, address, port
        self.local_port = free_port()
        self.sock = Path(workdir) / f"rrelay-{port}.sock"
        self.procs = []

    def start(self):
        if self.sock.exists():
            self.sock.unlink()
        self.procs.append(subprocess.Popen(
            ["ip", "netns", "exec", self.netns, SOCAT, f"UNIX-LISTEN:{self.sock},fork,mode=600",
             f"TCP:{self.address}:{self.port}"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
        wait_until(lambda: self.sock.exists(), 5, f"relay socket {self.sock}")
        self.procs.append(subprocess.Popen(
            [SOCAT, f"TCP-LISTEN:{self.local_port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{self.sock}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{self.local_port}"],
                                          capture_output=True).returncode == 0, 10, "the reverse relay")
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


def nat_rules(kind, wan_ip, lan_ip, wan="wan0", lan="lan0"):
    """The router's whole nftables ruleset for a NAT of `kind` ("eim" or "symmetric")."""
    if kind == "eim":
        nat = f"""
        map fullcone {{ type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout {FULLCONE_TIMEOUT}; }}
        chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
                iifname "{wan}" ip daddr {wan_ip} meta l4proto udp ct state new dnat ip addr . port to udp dport map @fullcone
        }}
        chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;
                oifname "{wan}" meta l4proto udp snat ip to {wan_ip}:20000-30000
                oifname "{wan}" masquerade
        }}
        chain learn {{ type filter hook postrouting priority srcnat + 10; policy accept;
                oifname "{wan}" meta l4proto udp ct direction original update @fullcone {{ ct reply proto-dst : ct original ip saddr . ct original proto-src }}
        }}"""
    elif kind == "symmetric":
        nat = f"""
        chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;
                oifname "{wan}" masquerade random
        }}"""
    else:
        raise ValueError(f"unknown NAT kind {kind!r}")
    return f"""flush ruleset
table ip natbed {{{nat}
        chain forward {{ type filter hook forward priority filter; policy drop;
                ct state established,related accept
                ct status dnat accept
                iifname "{lan}" accept
        }}
        chain input {{ type filter hook input priority filter; policy drop;
                iifname "lo" accept
                ct state established,related accept
                iifname "{lan}" accept
        }}
}}
"""


# Run in a namespace: reports the source address and port it sees for each datagram (two ports,
# so a client can compare its mappings), and on "poke IP:PORT" sends a datagram to IP:PORT from a
# third port (an unsolicited sender, to test filtering).
REFLECTOR = r'''
import socket, select, sys
host, base = sys.argv[1], int(sys.argv[2])
socks = []
for i in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((host, base + i)); socks.append(s)
print("ready", flush=True)
while True:
    for s in select.select(socks[:2], [], [])[0]:
        data, src = s.recvfrom(512)
        if data.startswith(b"poke "):
            ip, port = data[5:].decode().rsplit(":", 1)
            socks[2].sendto(b"poked", (ip, int(port)))
        else:
            s.sendto(f"{src[0]}:{src[1]}".encode(), src)
'''

# Run behind a NAT: one socket asks both reflector ports what they see, then asks for a poke at the
# first mapping and waits for it. Prints "MAP1 MAP2 poked|silent".
PROBE = r'''
import socket, sys
host, base = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 0)); s.settimeout(2)
seen = []
for port in (base, base + 1):
    s.sendto(b"probe", (host, port)); seen.append(s.recv(512).decode())
s.sendto(b"poke " + seen[0].encode(), (host, base))
try:
    poked = s.recv(512) == b"poked"
except socket.timeout:
    poked = False
print(seen[0], seen[1], "poked" if poked else "silent")
'''


class NatBed:
    def __init__(self, workdir, subnet=50, prefix=None, server_config=None, node_env=None, network="office",
                 ipv4_range="10.50.0.0/24"):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.subnet = subnet
        self.prefix = prefix or unique_prefix("nat")
        self.pub = f"{self.prefix}-pub"
        self.server_ip = f"198.18.{subnet}.254"
        self.server_config = dict(server_config or {})
        self.node_env = dict(node_env or {})
        self.network = network
        self.ipv4_range = ipv4_range
        self.namespaces = []
        self.relays = []
        self.nodes = {}  # name -> AgentNode
        self.sites = {}  # name -> {"router": ns, "wan": ip, "lan": ip, "net": "198.18.X", "kind", "hosts"}
        self.site_of = {}  # host name -> site name
        self.hidden_keys = set()
        self.broker = self.server = None
        self.reflector = None
        self.joined_at = {}
        self._veths = 0

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False

    # ---- namespaces ------------------------------------------------------------------------------

    def _ns(self, name):
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def _veth(self, ns_a, if_a, ns_b, if_b):
        sh("ip", "link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)

    def _on_bridge(self, ns, ifname, cidr):
        """A link of namespace `ns` on the public bridge, with address `cidr`."""
        self._veths += 1
        port = f"p{self._veths}"
        self._veth(self.pub, port, ns, ifname)
        sh("ip", "-n", self.pub, "link", "set", port, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", cidr, "dev", ifname)
        sh("ip", "-n", ns, "link", "set", ifname, "up")

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self):
        try:
            self._ns(self.pub)
            sh("ip", "-n", self.pub, "link", "add", "br0", "address", f"02:00:c6:12:{self.subnet:02x}:fe",
               "type", "bridge")
            sh("ip", "-n", self.pub, "addr", "add", f"{self.server_ip}/24", "dev", "br0")
            sh("ip", "-n", self.pub, "link", "set", "br0", "up")
            self.broker = Broker(self.dir, tls=True).start()
            self.relays.append(Relay(self.pub, self.server_ip, self.broker.port, self.dir).start())
            api_port = free_port()
            config = {
                "listen": f"{self.server_ip}:{api_port}",
                "broker_url": f"mqtts://{self.server_ip}:{self.broker.port}",
                "udp_listen": f"{self.server_ip}:{UDP_PORT}",
                "register_rate_limit": "off",
            }
            config.update(self.server_config)
            self.server = Server(self.dir, self.broker, config=config)
            self.server.start(prefix=["ip", "netns", "exec", self.pub], wait_listening=False)
            self.server.wait_listening()
            # The harness reaches the API through a relay into the namespace: same certificate, pin.
            relay = ReverseRelay(self.pub, self.server_ip, api_port, self.dir).start()
            self.relays.append(relay)
            self.api_url = self.server.url
            self.server.url = f"https://127.0.0.1:{relay.local_port}"
            http.trust(self.server.url, pin=self.server.pin)
            self.server.wait_broker(True, 20)
            net = self.server.create_network(self.network, self.ipv4_range)
            if net.get("observer"):
                self.hidden_keys.add(net["observer"]["public_key"])
            self.key = self.server.create_key([self.network], name="natbed", unlimited=True)
            self._start_reflector()
        except Exception:
            self.cleanup()
            raise
        return self

    def _start_reflector(self):
        script = self.dir / "reflector.py"
        script.write_text(REFLECTOR)
        self.reflector_port = 7001
        self.reflector = subprocess.Popen(["ip", "netns", "exec", self.pub, sys.executable, str(script),
                                           self.server_ip, str(self.reflector_port)],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True)
        line = self.reflector.stdout.readline()
        if line.strip() != "ready":
            raise AssertionError(f"reflector did not start: {line} {self.reflector.stderr.read()}")

    def cleanup(self):
        """Stops and deletes everything; raises afterwards when netmakerd did not exit cleanly (its
        sanitizers report that way)."""
        rc = None
        for n in self.nodes.values():
            try:
                n.stop()
            except Exception as e:  # noqa: BLE001 (keep cleaning up)
                print(f"cleanup of {n}: {e}", file=sys.stderr)
        if self.reflector and self.reflector.poll() is None:
            self.reflector.terminate()
            self.reflector.wait(5)
        for r in self.relays:
            r.stop()
        self.relays = []
        if self.server and self.server.running:
            rc = self.server.stop(check=False)
        if self.broker:
            self.broker.stop()
        for ns in self.namespaces:
            _stop_pids(pids_in(ns))
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces = []
        if rc not in (None, 0):
            raise AssertionError(f"netmakerd exited with status {rc}:\n{self.server.log_tail()}")

    # ---- hosts and sites -------------------------------------------------------------------------

    def _agent(self, name, ns, address, env=None):
        node = AgentNode(Ns(ns, address), self.dir / name, name=name, env={**self.node_env, **(env or {})})
        node.hidden_keys = self.hidden_keys
        self.nodes[name] = node
        node.start()
        return node

    def add_public_host(self, name, index, env=None):
        """A host with an address on the public bridge (198.18.<subnet>.<index>), no NAT."""
        ns = self._ns(f"{self.prefix}-{name}")
        address = f"198.18.{self.subnet}.{index}"
        self._on_bridge(ns, "eth0", f"{address}/24")
        return self._agent(name, ns, address, env)

    def add_site(self, name, kind, index, env=None):
        """A NAT router (WAN 198.18.<subnet>.<index>, LAN bridge 198.18.<subnet + index>.1/24) with one
        host behind it (.2), named like the site; add_lan_host() puts more on the same LAN."""
        router = self._ns(f"{self.prefix}-{name}r")
        wan, lan_net = f"198.18.{self.subnet}.{index}", f"198.18.{self.subnet + index}"
        self._on_bridge(router, "wan0", f"{wan}/24")
        sh("ip", "-n", router, "link", "add", "lan0", "type", "bridge")
        sh("ip", "-n", router, "addr", "add", f"{lan_net}.1/24", "dev", "lan0")
        sh("ip", "-n", router, "link", "set", "lan0", "up")
        in_ns(router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        self.sites[name] = {"router": router, "wan": wan, "lan": f"{lan_net}.1", "net": lan_net, "kind": None,
                            "hosts": []}
        self.set_nat(name, kind)
        return self.add_lan_host(name, name, env)

    def add_lan_host(self, site, name, env=None):
        """One more netclientd host on the site's LAN (.2, .3, ...), behind its NAT."""
        s = self.sites[site]
        host = self._ns(f"{self.prefix}-{name}")
        address = f"{s['net']}.{len(s['hosts']) + 2}"
        port = f"h{len(s['hosts'])}"
        self._veth(s["router"], port, host, "eth0")
        sh("ip", "-n", s["router"], "link", "set", port, "master", "lan0", "up")
        sh("ip", "-n", host, "addr", "add", f"{address}/24", "dev", "eth0")
        sh("ip", "-n", host, "link", "set", "eth0", "up")
        sh("ip", "-n", host, "route", "add", "default", "via", s["lan"])
        s["hosts"].append(name)
        self.site_of[name] = site
        return self._agent(name, host, address, env)

    def set_nat(self, site, kind):
        s = self.sites[site]
        in_ns(s["router"], "nft", "-f", "-", input=nat_rules(kind, s["wan"], s["lan"]))
        s["kind"] = kind

    def probe_nat(self, site):
        """What the site's NAT does with one UDP socket talking to two public ports, and whether a
        third public port may send to it unsolicited: {"mapping": "independent"|"dependent",
        "filtering": "independent"|"dependent", "mapped": [MAP1, MAP2]}."""
        script = self.dir / "probe.py"
        script.write_text(PROBE)
        out = self.nodes[self.sites[site]["hosts"][0]].run([sys.executable, str(script), self.server_ip, str(self.reflector_port)],
                                   check=True).stdout.split()
        return {"mapping": "independent" if out[0] == out[1] else "dependent",
                "filtering": "independent" if out[2] == "poked" else "dependent", "mapped": out[:2]}

    # ---- the mesh --------------------------------------------------------------------------------

    def join(self, node):
        """`netclient join` on the node; joined_at[name] is when the command started."""
        started = time.monotonic()
        p = node.netclient("join", "-t", self.key["token"], "--name", node.name)
        if p.returncode != 0:
            raise AssertionError(f"{node.name}: netclient join failed ({p.returncode}): {p.stderr}\n{node.log_tail()}")
        self.joined_at[node.name] = started
        return p

    def status(self, node):
        return node.netclient_json("status")

    def mesh_address(self, node):
        for net in self.status(node)["networks"]:
            if net["name"] == self.network:
                return next(a.split("/")[0] for a in net["addresses"] if ":" not in a)
        return None

    def public_key(self, node):
        return self.status(node)["public_key"]

    def node_id(self, node):
        host_id = self.status(node)["host_id"]
        return next(n["id"] for n in self.server.admin("GET", f"/nodes?network={self.network}", expect=200)
                    if n["host_id"] == host_id)

    @property
    def ifname(self):
        return f"nm-{self.network}"
