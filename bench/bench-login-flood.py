#!/usr/bin/python3
"""Peak memory of netmakerd under a login flood (figures, not assertions).

Starts a netmakerd on loopback without a broker (tests/integration/nmtest), makes one user, and
then, for --seconds, has --clients threads post logins (wrong passwords, a few right ones) as fast
as the answers come, each thread from its own rotating set of loopback source addresses
(127.1.x.y, --sources in all) so that the per-source rate limit lets plenty through and the
argon2id workers (64 MiB per check) are what the flood meets. Prints the answers by status, the
password checks per second, netmakerd's resident memory sampled every 50 ms, and its peak (VmHWM
from /proc/PID/status) before and after the flood: the peak must stay put however long the flood
lasts, because at most two checks run at once and at most 32 wait.

    NM_BUILD_DIR=build /usr/bin/python3 bench/bench-login-flood.py --seconds 30
    ... --login-rate-limit off      # every login reaches the workers (no per-source limit)

Use a build without sanitizers: AddressSanitizer's shadow memory and quarantine dwarf the figures.
"""

import argparse
import collections
import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from nmtest.server import Server  # noqa: E402

PASSWORD = "bench-user-password"


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def flood(server, clients, sources, seconds):
    counts = collections.Counter()
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    per_client = max(1, sources // clients)

    def run(i):
        mine = collections.Counter()
        n = 0
        while time.monotonic() < stop:
            k = (i * per_client + n % per_client) % sources
            source = f"127.1.{k // 250}.{k % 250 + 1}"
            n += 1
            password = PASSWORD if n % 10 == 0 else f"wrong-{n}"
            body = json.dumps({"username": "bench", "password": password})
            try:
                c = http.client.HTTPConnection(server.host, server.port, timeout=30, source_address=(source, 0))
                c.request("POST", "/api/v1/login", body=body, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                r.read()
                mine[r.status] += 1
                c.close()
            except OSError as e:
                mine[type(e).__name__] += 1
        with lock:
            counts.update(mine)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    samples = []
    while any(t.is_alive() for t in threads):
        samples.append(status_kib(server.proc.pid, "VmRSS"))
        time.sleep(0.05)
    for t in threads:
        t.join()
    return counts, samples


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--clients", type=int, default=64, help="concurrent connections")
    ap.add_argument("--sources", type=int, default=4096, help="distinct source addresses")
    ap.add_argument("--login-rate-limit", default=None, help="netmakerd's login_rate_limit (default: its own)")
    args = ap.parse_args()

    config = {"broker_url": "", "log_level": "info"}  # the default level (the harness uses debug)
    if args.login_rate_limit:
        config["login_rate_limit"] = args.login_rate_limit
    with tempfile.TemporaryDirectory(prefix="bench-login-") as d:
        server = Server(d, None, config=config).start()
        try:
            server.admin("POST", "/users", json={"username": "bench", "password": PASSWORD, "role": "user"},
                         expect=201)
            pid = server.proc.pid
            rss0, hwm0 = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
            t = time.monotonic()
            counts, samples = flood(server, args.clients, args.sources, args.seconds)
            took = time.monotonic() - t
            rss1, hwm1 = status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM")
        finally:
            server.stop()

    checked = counts[200] + counts[401]
    print(f"netmakerd {server.binary}, login_rate_limit={args.login_rate_limit or 'default'}, "
          f"{args.clients} clients from {args.sources} source addresses for {took:.1f} s")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str)))
    print(f"password checks: {checked} ({checked / took:.1f}/s); refused at once: "
          f"{counts[429]} by the rate limit, {counts[503]} with the workers busy")
    print(f"VmRSS: {rss0} KiB before, max {max(samples, default=0)} KiB sampled during, {rss1} KiB after")
    print(f"VmHWM (peak): {hwm0} KiB before the flood (start-up and one password hash), "
          f"{hwm1} KiB after it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
