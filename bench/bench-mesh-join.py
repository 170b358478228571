#!/usr/bin/python3
"""Join-to-first-ping and memory of netclientd in a real mesh (figures, not assertions).

Brings up netmakerd + Mosquitto + N netclientd nodes in namespaces (tests/integration/nmtest/mesh.py),
joins them one after the other with `netclient join -t TOKEN`, and prints for every node after the
first: the time from starting `netclient join` until it can ping the first node's mesh address
(registration, link set-up, peer fan-out to the others, WireGuard handshake), then netclientd's
resident memory on every node with N-1 peers, and how long a restart of one netclientd takes until it
is back on the bus with its link adopted.

    sudo NM_BUILD_DIR=build /usr/bin/python3 bench/bench-mesh-join.py --nodes 5
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from nmtest.mesh import Mesh  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("Run as root (network namespaces).", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory(prefix="bench-mesh-") as d, Mesh(d, nodes=args.nodes, subnet=5) as mesh:
        first = mesh.nodes[0]
        t = time.monotonic()
        mesh.join(first)
        print(f"{first.name}: join {time.monotonic() - t:.3f} s (first host, no peers)")
        first_addr = mesh.mesh_address(first)
        times = []
        for n in mesh.nodes[1:]:
            t = time.monotonic()
            mesh.join(n)
            joined = time.monotonic() - t
            while not n.ping(first_addr, count=1, timeout=1):
                if time.monotonic() - t > 60:
                    raise SystemExit(f"{n.name} could not ping {first_addr}")
            total = time.monotonic() - t
            times.append(total)
            print(f"{n.name}: join {joined:.3f} s, join-to-first-ping {total:.3f} s")
        mesh.wait_full_mesh()
        print(f"join-to-first-ping: median {statistics.median(times):.3f} s, max {max(times):.3f} s "
              f"over {len(times)} joins")

        mem = [n.memory_kib() for n in mesh.nodes]
        for k in ("rss", "pss", "private"):
            v = [m[k] for m in mem]
            print(f"netclientd {k.upper()} with {args.nodes - 1} peers: median {statistics.median(v)} KiB, "
                  f"max {max(v)} KiB")
        print("(RSS counts shared library pages, mostly libcrypto/gnutls/glib mapped by every process "
              "that uses them; private is what this daemon alone costs)")

        t = time.monotonic()
        first.restart_netclientd()
        print(f"restart of {first.name}'s netclientd until back on the bus: {time.monotonic() - t:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
