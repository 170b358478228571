"""Helpers for the server-side topology tests (docs/protocol.md §4): a network of registered,
connected test hosts with their node ids, and exactly what each host received for one change.

    net = TopoNet(server, hosts, ["alpha", "beta", "gamma"])
    mark = net.mark()
    net.admin("PUT", f"/nodes/{net.node['alpha']}/egress", json={...}, expect=200)
    got = net.since(mark)          # {name: [messages]} up to a barrier: nothing is still on its way
    assert got["gamma"] == []
"""

from .client import TestHost


class TopoNet:
    def __init__(self, server, hosts, names, network="office", ipv4_range="10.99.0.0/24", ipv6_range=None,
                 tags=None, endpoints=None, create=True):
        self.server = server
        self.network = network
        if create:
            body = {"name": network, "ipv4_range": ipv4_range}
            if ipv6_range:
                body["ipv6_range"] = ipv6_range
            server.admin("POST", "/networks", json=body, expect=201)
        self.key = server.create_key([network], name=f"k-{network}", unlimited=True, tags=list(tags or []))
        self.h = {}
        self.node = {}
        self._hosts = hosts
        for i, name in enumerate(names):
            self.add(name, endpoints=(endpoints or {}).get(name, [f"198.18.0.{i + 1}"]))

    def add(self, name, endpoints=None, key=None):
        """Registers and connects one more host; returns it."""
        if endpoints is None:
            endpoints = [f"198.18.0.{len(self.h) + 1}"]
        h = self._hosts(name, endpoints=endpoints)
        h.register((key or self.key)["token"])
        assert h.connect() == 0
        self.h[name] = h
        self.node[name] = h.networks[self.network]["state"]["node_id"]
        # Everyone already here hears of the newcomer (or not): settle before the next change.
        self.barrier()
        return h

    def admin(self, *a, **kw):
        return self.server.admin(*a, **kw)

    def nodes(self):
        return {n["id"]: n for n in self.admin("GET", f"/nodes?network={self.network}", expect=200)}

    def name_of(self, node_id):
        return next(k for k, v in self.node.items() if v == node_id)

    def key_of(self, name):
        return self.h[name].wg.public_b64

    def mark(self):
        """Where each host is now (after a barrier: earlier changes have all arrived): its message
        count and its peers (to replay the deltas on)."""
        self.barrier()
        return {n: (len(h.messages), h.peers(self.network)) for n, h in self.h.items()}

    def barrier(self, names=None):
        """Each host asks for a snapshot and waits for it: the broker delivers one publisher's
        messages to a subscriber in order, so everything sent before has arrived."""
        for n in names or list(self.h):
            h = self.h[n]
            before = len(h.messages)
            h.report({"type": "snapshot-request"})
            h.wait_message("snapshot", after=before)

    def since(self, mark):
        """{name: [messages after `mark`]}, snapshots (the barrier) left out. Also checks that the
        deltas, applied to what each host had at `mark`, give exactly the peers of the snapshot the
        barrier brought: the server sent what changed, no more and no less."""
        self.barrier()
        out = {}
        for n, h in self.h.items():
            start, peers = mark.get(n, (0, {}))
            with h.cond:
                msgs = h.messages[start:]
            out[n] = [m for m in msgs if m["type"] != "snapshot"]
            snap = next(m for m in reversed(msgs) if m["type"] == "snapshot")
            nets = [s for s in snap["state"]["networks"] if s["network"] == self.network]
            if not nets or n not in mark:  # a host that came later started from its registration
                continue
            applied = dict(peers)
            for m in out[n]:
                if m["type"] == "peers" and m["network"] == self.network:
                    for p in (m.get("add") or []) + (m.get("update") or []):
                        applied[p["public_key"]] = p
                    for k in m.get("remove") or []:
                        assert k in applied, f"{n}: removal of a peer it does not have: {m}"
                        del applied[k]
                    for p in m.get("add") or []:
                        assert p["public_key"] not in peers or any(
                            p["public_key"] in (x.get("remove") or []) for x in out[n]), \
                            f"{n}: add of a peer it has: {m}"
            want = {p["public_key"]: p for p in nets[0].get("peers") or []}
            assert {k: _strip(v) for k, v in applied.items()} == {k: _strip(v) for k, v in want.items()}, \
                f"{n}: deltas since the mark give {applied}, the snapshot says {want}"
        return out

    def peers(self, name):
        """{peer name: peer} as `name` has them now (after its last snapshot)."""
        return {p["name"]: p for p in self.h[name].peers(self.network).values()}

    def state(self, name):
        return self.h[name].networks[self.network]["state"]

    def roles(self, name):
        return self.state(name).get("roles") or {}

    def check_snapshots(self):
        """What the deltas built equals a fresh pull (GET /host) for every host."""
        for n, h in self.h.items():
            deltas = {k: _strip(p) for k, p in h.peers(self.network).items()}
            state = next(s for s in h.pull()["networks"] if s["network"] == self.network)
            pulled = {p["public_key"]: _strip(p) for p in state.get("peers") or []}
            assert deltas == pulled, f"{n}: deltas {deltas} != pulled {pulled}"


def _strip(p):
    q = dict(p)
    q["allowed_ips"] = sorted(q["allowed_ips"])
    return q


def peer_updates(msgs, kind=None):
    """The `peers` messages of a list; with kind ("add", "update", "remove"), their entries."""
    ps = [m for m in msgs if m["type"] == "peers"]
    if kind is None:
        return ps
    return [e for m in ps for e in (m.get(kind) or [])]


def types(msgs):
    return [m["type"] for m in msgs]


__all__ = ["TopoNet", "TestHost", "peer_updates", "types"]
