#!/usr/bin/python3
"""What TLS costs a registration (figures, not assertions).

Starts a Mosquitto with dynamic security and a TLS listener, then netmakerd twice on loopback: once
as shipped (HTTPS with its self-signed P-256 certificate) and once with tls=no (plain HTTP, which
netmakerd allows on loopback only). Each run registers --hosts hosts one after the other, each over
a new connection as netclientd makes it (with HTTPS: a full TLS 1.3 handshake, the server's key
checked against the token's pin), and prints the wall time per registration (median, p90) and
netmakerd's CPU time per registration (utime + stime from /proc/PID/stat over the run). Each
registration also creates the host's broker account, so the broker's round trip is in both runs.

    NM_BUILD_DIR=build-test-clang /usr/bin/python3 bench/bench-register-tls.py --hosts 300

Use a build without sanitizers: AddressSanitizer dwarfs the figures.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from nmtest.broker import Broker  # noqa: E402
from nmtest.client import TestHost  # noqa: E402
from nmtest.server import Server  # noqa: E402


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(broker, tmp, tls, hosts):
    config = {"log_level": "info", "register_rate_limit": "off"}
    if not tls:
        config["tls"] = "no"
    srv = Server(Path(tmp) / ("tls" if tls else "plain"), broker, config=config).start()
    try:
        srv.create_network("office", "10.0.0.0/16")
        token = srv.create_key(["office"], unlimited=True)["token"]
        TestHost("warm-up").register(token)
        times = []
        cpu0 = cpu_seconds(srv.proc.pid)
        t0 = time.monotonic()
        for i in range(hosts):
            h = TestHost(f"h{i}")
            t = time.monotonic()
            h.register(token)
            times.append(time.monotonic() - t)
        wall = time.monotonic() - t0
        cpu = cpu_seconds(srv.proc.pid) - cpu0
    finally:
        srv.stop()
    times.sort()
    return {"scheme": "https" if tls else "http", "hosts": hosts, "wall_s": round(wall, 2),
            "median_ms": round(statistics.median(times) * 1000, 2),
            "p90_ms": round(times[int(len(times) * 0.9)] * 1000, 2),
            "server_cpu_ms_per_registration": round(cpu / hosts * 1000, 2)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", type=int, default=200)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-register-tls-") as tmp:
        broker = Broker(tmp).start()
        try:
            rows = [run(broker, tmp, False, a.hosts), run(broker, tmp, True, a.hosts)]
        finally:
            broker.stop()
    if a.json:
        print(json.dumps(rows))
        return
    print(f"{'scheme':7} {'hosts':>5} {'median ms':>10} {'p90 ms':>8} {'netmakerd CPU ms/reg':>21} {'wall s':>7}")
    for r in rows:
        print(f"{r['scheme']:7} {r['hosts']:5} {r['median_ms']:10} {r['p90_ms']:8} "
              f"{r['server_cpu_ms_per_registration']:21} {r['wall_s']:7}")
    p, t = rows
    print(f"TLS adds {t['median_ms'] - p['median_ms']:.2f} ms (median) and "
          f"{t['server_cpu_ms_per_registration'] - p['server_cpu_ms_per_registration']:.2f} ms of netmakerd CPU "
          f"per registration")


if __name__ == "__main__":
    main()
