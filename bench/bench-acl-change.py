#!/usr/bin/python3
"""Messages and bytes netmakerd publishes when one ACL rule changes (figures, not assertions).

Starts a Mosquitto (dynamic security) and a netmakerd on loopback, registers N test hosts that
speak the real protocol (tests/integration/nmtest), all connected to the broker with their own
accounts, in one network; a few carry tags. An observer account subscribed to every host's message
topic counts what the server publishes (sealed payload bytes, as they cross the broker) for:

  1. a deny rule between two tags of 5 hosts each (25 pairs, 10 hosts concerned),
  2. a deny rule between two single nodes,
  3. deleting the first rule again,
  4. the ACL default flipped to deny and back with no rule (every pair: the worst case),

and, for comparison, what one full snapshot to every host weighs (what a design that recomputes
and broadcasts every host's peers after any change, as Netmaker does, would send for each).

    sudo NM_BUILD_DIR=build /usr/bin/python3 bench/bench-acl-change.py --hosts 50
"""

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

import paho.mqtt.client as mqtt  # noqa: E402

from nmtest.broker import Broker  # noqa: E402
from nmtest.client import TestHost  # noqa: E402
from nmtest.server import Server  # noqa: E402

SEAL_OVERHEAD = 1 + 24 + 16  # version, nonce, Poly1305 tag (docs/protocol.md §3.2)


class Observer:
    """A broker account that may read every host's message topic of this server."""

    def __init__(self, broker, server_name):
        topic = f"nm/{server_name}/host/+/msg"
        broker.ctrl("createRole", "bench-observer")
        broker.ctrl("addRoleACL", "bench-observer", "subscribePattern", topic, "allow", "1")
        broker.ctrl("addRoleACL", "bench-observer", "publishClientReceive", topic, "allow", "1")
        broker.ctrl("createClient", "bench-observer", "-p", "bench-observer-password")
        broker.ctrl("addClientRole", "bench-observer", "bench-observer", "1")
        self.lock = threading.Lock()
        self.messages = 0
        self.bytes = 0
        self.hosts = set()
        subscribed = threading.Event()
        c = mqtt.Client(client_id="bench-observer")
        c.username_pw_set("bench-observer", "bench-observer-password")
        c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
        c.on_subscribe = lambda *a: subscribed.set()
        c.on_message = self._on_message
        c.connect(broker.host, broker.port)
        c.loop_start()
        if not subscribed.wait(10):
            raise SystemExit("the observer could not subscribe")
        self.client = c

    def _on_message(self, client, userdata, m):
        with self.lock:
            self.messages += 1
            self.bytes += len(m.payload)
            self.hosts.add(m.topic.split("/")[3])

    def reset(self):
        with self.lock:
            self.messages = self.bytes = 0
            self.hosts = set()

    def settle(self, quiet=0.5, timeout=30):
        """Waits until nothing arrived for `quiet` seconds; returns (messages, bytes, hosts)."""
        deadline = time.monotonic() + timeout
        last = -1
        while time.monotonic() < deadline:
            with self.lock:
                n = self.messages
            if n == last:
                break
            last = n
            time.sleep(quiet)
        with self.lock:
            return self.messages, self.bytes, len(self.hosts)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def measure(obs, what, change):
    obs.reset()
    t = time.monotonic()
    change()
    ms = (time.monotonic() - t) * 1000
    n, b, h = obs.settle()
    print(f"{what}: {n} message(s) to {h} host(s), {b} bytes published (request {ms:.1f} ms)")
    return n, b


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=50)
    args = ap.parse_args()
    if args.hosts < 12 or args.hosts > 250:
        raise SystemExit("--hosts: 12-250")

    with tempfile.TemporaryDirectory(prefix="bench-acl-") as d:
        broker = Broker(d).start()
        server = Server(d, broker, config={"log_level": "info"}).start()
        hosts = []
        obs = None
        try:
            admin = server.admin
            admin("POST", "/networks", json={"name": "office", "ipv4_range": "10.99.0.0/24"}, expect=201)
            plain = server.create_key(["office"], name="plain", unlimited=True)
            web = server.create_key(["office"], name="web", unlimited=True, tags=["web"])
            db = server.create_key(["office"], name="db", unlimited=True, tags=["db"])
            t = time.monotonic()
            for i in range(args.hosts):
                key = web if i < 5 else db if i < 10 else plain
                h = TestHost(f"h{i}", endpoints=[f"198.18.{i // 250}.{i % 250 + 1}"])
                h.register(key["token"])
                assert h.connect() == 0
                hosts.append(h)
            print(f"registered and connected {args.hosts} hosts in {time.monotonic() - t:.1f} s")
            obs = Observer(broker, server.server_name)
            nodes = {n["host_name"]: n["id"] for n in admin("GET", "/nodes?network=office", expect=200)}
            time.sleep(1)

            rule = {}

            def add_tags():
                rule["tags"] = admin("POST", "/networks/office/acl/rules",
                                     json={"source": "tag:web", "destination": "tag:db", "action": "deny"},
                                     expect=201)

            def add_pair():
                admin("POST", "/networks/office/acl/rules",
                      json={"source": f"node:{nodes['h20']}", "destination": f"node:{nodes['h21']}",
                            "action": "deny"}, expect=201)

            figures = [
                measure(obs, "rule added, deny tag:web <-> tag:db (5 x 5 hosts)", add_tags),
                measure(obs, "rule added, deny node <-> node", add_pair),
                measure(obs, "rule deleted, the tag rule", lambda: admin(
                    "DELETE", f"/networks/office/acl/rules/{rule['tags']['id']}", expect=None)),
            ]
            acl = admin("GET", "/networks/office/acl", expect=200)
            for r in acl["rules"]:
                admin("DELETE", f"/networks/office/acl/rules/{r['id']}")
            obs.settle()
            measure(obs, "default flipped to deny (every pair)",
                    lambda: admin("PUT", "/networks/office/acl", json={"default": "deny"}, expect=200))
            measure(obs, "default flipped back to allow (every pair)",
                    lambda: admin("PUT", "/networks/office/acl", json={"default": "allow"}, expect=200))

            # What broadcasting every host's full peer set after a change would cost.
            total = 0
            for h in hosts:
                state = h.pull()
                total += len(json.dumps({"type": "snapshot", "serial": state["serial"], "state": state},
                                        separators=(",", ":"))) + SEAL_OVERHEAD
            print(f"for comparison, a full snapshot to every host: {len(hosts)} messages, {total} bytes")
            n, b = figures[0]
            print(f"one ACL rule change (the tag rule): {n} messages / {b} bytes, "
                  f"{100.0 * b / total:.1f} % of a full broadcast")
        finally:
            if obs:
                obs.close()
            for h in hosts:
                h.close()
            server.stop(check=False)
            broker.stop()
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("Run as root (the test broker runs as root).", file=sys.stderr)
    sys.exit(main())
