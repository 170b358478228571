"""The harness's underlay (nmtest.netns): a port joining the bridge later — a node added to a running
mesh — leaves the bridge's MAC address alone, so the nodes already there keep reaching the server
address on the bridge at once. (A Linux bridge without an address of its own takes the lowest MAC
of its ports; the nodes' neighbour entries then point at the old one and their connections to the
server hang until the entries are found stale.)"""

import os
import subprocess
import time

import pytest

from nmtest.netns import Underlay, run

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")

SUBNET = 46
SERVER = f"198.18.{SUBNET}.254"


def bridge_mac(net):
    return run(net.bridge, ["cat", "/sys/class/net/br0/address"]).stdout.strip()


def test_new_ports_leave_the_bridge_address_alone():
    with Underlay(nodes=2, subnet=SUBNET) as net:
        run(net.bridge, ["ip", "addr", "add", f"{SERVER}/24", "dev", "br0"])
        server = subprocess.Popen(["ip", "netns", "exec", net.bridge, "socat", "TCP-LISTEN:5555,fork,reuseaddr",
                                   "SYSTEM:echo hello"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            # A node whose own port's MAC is not the bridge's (a bridge that took one of its ports'
            # MACs would still take frames for it from that port).
            node = next(n for n in net.nodes
                        if run(net.bridge, ["cat", f"/sys/class/net/v{n.index}/address"]).stdout.strip()
                        != bridge_mac(net))

            def connect_time():
                t = time.monotonic()
                r = node.run(["timeout", "3", "bash", "-c", f"exec 3<>/dev/tcp/{SERVER}/5555"], check=False)
                return time.monotonic() - t if r.returncode == 0 else None

            deadline = time.monotonic() + 5
            while connect_time() is None:  # socat starting; also fills the node's neighbour entry
                assert time.monotonic() < deadline, "no server on the bridge"
                time.sleep(0.05)
            mac = bridge_mac(net)
            assert mac == net.bridge_mac
            # A port with the lowest MAC there is (a veth of the test's, inside the bridge's
            # namespace) would become the bridge's address if the bridge had none of its own.
            run(net.bridge, ["ip", "link", "add", "low0", "address", "02:00:00:00:00:01", "type", "veth",
                             "peer", "name", "low1"])
            run(net.bridge, ["ip", "link", "set", "low0", "master", "br0", "up"])
            net.add_node()
            took = connect_time()
            assert took is not None and took < 1, \
                f"{node.name} could not reach {SERVER} at once after ports were added (br0 {mac} -> {bridge_mac(net)})"
            assert bridge_mac(net) == mac
        finally:
            server.terminate()
            server.wait(5)
