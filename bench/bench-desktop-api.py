#!/usr/bin/python3
"""What a desktop client pays to follow netclientd's peers (figures, not assertions).

Starts one netclientd (nmtest.node.AgentNode: its own namespace, system bus and polkitd, wireguard-go)
from a saved state with one network of N peers (registered with a server that does not exist:
netclientd works from its saved state), then, as a GDBus client on that bus would, measures: the
per-peer objects (GetManagedObjects, and Gio.DBusObjectManagerClient, which is what a GNOME Shell
extension or nm-applet-style client builds: a proxy per object), against the desktop API
(GetStatus, GetPeers with since=0 and with the latest serial). Reply sizes are the D-Bus messages'
bytes; times are medians of the rounds, client side (round trip through dbus-daemon); netclientd's
own CPU time per call is from /proc. Also netclientd's memory with the N peers.

    sudo NM_BUILD_DIR=build /usr/bin/python3 bench/bench-desktop-api.py --peers 1000 --rounds 20
"""

import argparse
import base64
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from gi.repository import Gio, GLib  # noqa: E402
from nacl.public import PrivateKey  # noqa: E402

from nmtest.netns import Underlay  # noqa: E402
from nmtest.node import AgentNode  # noqa: E402

NAME, PATH, IFACE = "org.netmaker.Client", "/org/netmaker/Client", "org.netmaker.Client"


def b64key():
    return base64.b64encode(bytes(PrivateKey.generate())).decode()


def pubkey(priv_b64):
    return base64.b64encode(bytes(PrivateKey(base64.b64decode(priv_b64)).public_key)).decode()


def write_state(state_dir, peers, network="office"):
    """A registration and one network with `peers` peers, as netclientd saves them at a join."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    host = str(uuid.uuid4())
    (state_dir / "identity.json").write_text(json.dumps({"wg_private_key": b64key(), "msg_private_key": b64key()}))
    (state_dir / "server.json").write_text(json.dumps({
        "api": "https://198.18.79.254:9", "server_msg_key": pubkey(b64key()), "host_id": host,
        "credential": "nmh.x.y",
        "mqtt": {"url": "mqtts://198.18.79.254:9", "username": f"host-{host}", "password": "p",
                 "subscribe": f"nm/t/host/{host}/msg", "publish": f"nm/t/host/{host}/report"}}))
    entries = []
    for i in range(peers):
        ip = f"10.{70 + i // 62500}.{i // 250 % 250}.{i % 250 + 2}"
        entries.append({"host_id": str(uuid.uuid4()), "node_id": str(uuid.uuid4()), "name": f"peer{i}",
                        "public_key": pubkey(b64key()), "endpoint": f"198.18.{79 - i % 2}.{i % 250 + 2}:51821",
                        "allowed_ips": [f"{ip}/32"], "keepalive": 0, "ipv4": ip})
    state = {"version": 1, "disconnected": [], "state": {"host_id": host, "serial": 3, "networks": [{
        "network": network, "node_id": str(uuid.uuid4()), "ipv4": "10.70.255.1/16", "listen_port": 51821,
        "keepalive": 20, "mtu": 1420, "dns_domain": "nm.internal", "connected": True, "peers": entries}]}}
    (state_dir / "state.json").write_text(json.dumps(state))
    for f in state_dir.iterdir():
        os.chmod(f, 0o600)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def timed_call(bus, pid, method, args=None, iface=IFACE, path=PATH, rounds=10):
    """(median ms, reply bytes, netclientd CPU ms per call)."""
    times, size = [], 0
    tick = os.sysconf("SC_CLK_TCK")
    c0 = cpu_ticks(pid)
    for _ in range(rounds):
        msg = Gio.DBusMessage.new_method_call(NAME, path, iface, method)
        if args is not None:
            msg.set_body(args)
        t = time.perf_counter()
        reply, _ = bus.send_message_with_reply_sync(msg, Gio.DBusSendMessageFlags.NONE, 60000, None)
        times.append((time.perf_counter() - t) * 1000)
        if reply.get_message_type() == Gio.DBusMessageType.ERROR:
            raise SystemExit(f"{method}: {reply.get_error_name()} {reply.get_body()}")
        size = len(reply.to_blob(Gio.DBusCapabilityFlags.NONE))
        last = reply
    cpu = (cpu_ticks(pid) - c0) * 1000 / tick / rounds
    return statistics.median(times), size, cpu, last


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("Run as root (network namespaces).", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="bench-desktop-") as d, Underlay(nodes=1, subnet=79) as net:
        node = AgentNode(net.nodes[0], Path(d) / "node", log_level="info")
        write_state(node.state_dir, args.peers)
        node.start()
        try:
            flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
            bus = Gio.DBusConnection.new_for_address_sync(node.bus_address, flags, None, None)
            pid = node.netclientd_pid()
            # the peers are all exported once GetPeers lists them
            deadline = time.monotonic() + 120
            while True:
                _, _, _, r = timed_call(bus, pid, "GetPeers", GLib.Variant("(st)", ("office", 0)), rounds=1)
                if len(r.get_body()[2]) == args.peers:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit("netclientd did not list all peers in 120 s")
                time.sleep(0.5)
            mem = node.memory_kib()
            print(f"netclientd with {args.peers} peers: RSS {mem['rss']} KiB, private {mem['private']} KiB")
            rows = []
            ms, size, cpu, _ = timed_call(bus, pid, "GetManagedObjects", iface="org.freedesktop.DBus.ObjectManager",
                                          rounds=args.rounds)
            rows.append(("GetManagedObjects (per-peer objects)", ms, size, cpu))
            ms, size, cpu, _ = timed_call(bus, pid, "Introspect", iface="org.freedesktop.DBus.Introspectable",
                                          path=PATH + "/network/office", rounds=args.rounds)
            rows.append(("Introspect of the network object (lists the peers)", ms, size, cpu))
            ms, size, cpu, r = timed_call(bus, pid, "GetStatus", rounds=args.rounds)
            rows.append(("GetStatus", ms, size, cpu))
            ms, size, cpu, r = timed_call(bus, pid, "GetPeers", GLib.Variant("(st)", ("office", 0)), rounds=args.rounds)
            rows.append(("GetPeers(office, 0): all peers", ms, size, cpu))
            serial = r.get_body()[0]
            ms, size, cpu, _ = timed_call(bus, pid, "GetPeers", GLib.Variant("(st)", ("office", serial)),
                                          rounds=args.rounds)
            rows.append(("GetPeers(office, serial): nothing new", ms, size, cpu))

            # What a client that wants the objects builds: an object manager client with a proxy per
            # object (GetManagedObjects once, then its signals).
            times = []
            for _ in range(max(3, args.rounds // 4)):
                t = time.perf_counter()
                om = Gio.DBusObjectManagerClient.new_sync(bus, Gio.DBusObjectManagerClientFlags.NONE, NAME, PATH,
                                                          None, None, None)
                n = len(om.get_objects())
                times.append((time.perf_counter() - t) * 1000)
                del om
            rows.append((f"Gio.DBusObjectManagerClient ({n} objects) in Python", statistics.median(times), 0, 0))

            print(f"\n{args.peers} peers, {args.rounds} rounds, medians (client round trip through dbus-daemon):")
            print(f"{'call':58} {'ms':>8} {'bytes':>10} {'netclientd CPU ms/call':>24}")
            for what, ms, size, cpu in rows:
                print(f"{what:58} {ms:8.2f} {size or '':>10} {cpu:24.2f}")
            bus.close_sync(None)
        finally:
            node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
