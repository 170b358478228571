#!/usr/bin/python3
"""The README's first command, after set-up: netmakerd on its embedded SQLite database, serving
HTTPS with the self-signed certificate it makes at its first start, a local Mosquitto (dynamic
security) with a TLS listener, the first admin bootstrapped, a demo mesh of three netclientd nodes
in network namespaces that join with an enrollment token (which pins the server's key) over TLS
and ping one another, then the server left running for you to use with nmctl until Ctrl-C.

Everything runs on loopback and inside network namespaces this script creates (underlay
198.18.0.0/24); cleanup stops only what it started and deletes only its own namespaces.

    sudo tools/demo.py [--nodes N] [--port PORT] [--exit]
"""

import argparse
import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from nmtest.broker import Broker  # noqa: E402
from nmtest.mesh import Relay  # noqa: E402
from nmtest.netns import Underlay, unique_prefix  # noqa: E402
from nmtest.node import AgentNode, wait_until  # noqa: E402
from nmtest.server import Server, binary, free_port  # noqa: E402

NETWORK = "demo"
RANGE = "10.99.0.0/24"
UNDERLAY_SERVER = "198.18.0.254"


def say(text=""):
    print(text, flush=True)


def step(text):
    say(f"\n== {text}")


def show(argv):
    say("   $ " + " ".join(str(a) for a in argv))


def nmctl(server_url, *args, stdin=None, check=True):
    argv = [str(binary("nmctl")), "--server", server_url, *args]
    show(["nmctl", *args])
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, env={**os.environ, "HOME": str(HOME)})
    out = (p.stdout + p.stderr).rstrip()
    if out:
        say("\n".join("     " + line for line in out.splitlines()))
    if check and p.returncode != 0:
        raise SystemExit(f"demo: nmctl {' '.join(args)} failed with exit status {p.returncode}")
    return p


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=3, help="mesh nodes to start (default 3)")
    ap.add_argument("--port", type=int, default=8081, help="API port on 127.0.0.1 (default 8081, else a free one)")
    ap.add_argument("--exit", action="store_true", help="stop the server after the demo instead of waiting")
    ap.add_argument("--state", default=str(REPO / ".demo"), help="state directory, wiped first (default .demo)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("demo: run me as root (the demo mesh uses network namespaces)")
    for prog in ("netmakerd", "nmctl", "netclientd", "netclient"):
        if not binary(prog).exists():
            raise SystemExit(f"demo: {binary(prog)} is missing: build first (meson setup build && ninja -C build)")

    state = Path(args.state)
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(mode=0o700)
    global HOME
    HOME = state / "home"
    HOME.mkdir(mode=0o700)

    port = args.port
    try:
        with __import__("socket").socket() as s:
            s.bind(("127.0.0.1", port))
    except OSError:
        port = free_port()

    broker = server = underlay = None
    relays, nodes = [], []
    try:
        step("Mosquitto with dynamic security, and netmakerd on SQLite")
        broker = Broker(state).start()
        say(f"   broker: {broker.url} (TLS; dynamic security: netmakerd makes one account per host)")
        say(f"           certificate {broker.cert_file}, key {broker.pin}")
        # Clear the test harness's shortcuts (master key, preset admin) so the server bootstraps
        # its first admin the way it does on a real machine.
        server = Server(state, broker, server_name="demo", prepare_broker=False, config={
            "listen": f"127.0.0.1:{port}",
            "api_url": f"https://{UNDERLAY_SERVER}:{port}",
            "broker_public_url": f"mqtts://{UNDERLAY_SERVER}:{broker.port}",
            "master_key": None, "admin_user": None, "admin_password": None, "log_level": "info",
        }).start()
        url = f"https://127.0.0.1:{port}"
        pwfile = Path(server.settings()["state_directory"]) / "initial-admin-password"
        wait_until(pwfile.exists, 10, str(pwfile))
        password = pwfile.read_text().strip()
        say(f"   netmakerd: {url} (database {server.settings()['database']})")
        say(f"   TLS: self-signed certificate {server.cert_path}, made at the first start")
        pin = subprocess.run([str(binary("netmakerd")), "--config", str(server.config_path), "--print-pin"],
                             capture_output=True, text=True, check=True).stdout.strip()
        show(["netmakerd", "--print-pin"])
        say(f"     {pin}")
        say(f"   first admin: 'admin', password in {pwfile} (0600)")

        step("The admin logs in with nmctl (pinning the server's key), creates a network and an enrollment key")
        nmctl(url, "login", "admin", "--password-stdin", "--pin", pin, stdin=password + "\n")
        nmctl(url, "network", "create", NETWORK, "--ipv4", RANGE)
        p = nmctl(url, "key", "create", "demo-key", "--network", NETWORK, "--unlimited")
        token = p.stdout.strip().splitlines()[-1]
        say("   the token carries the server's address, its message key and the pin of its TLS key:")
        say(f"     {json.loads(base64.urlsafe_b64decode(token + '=' * (-len(token) % 4)))['pin']}")

        step(f"{args.nodes} nodes, each in its own network namespace with dbus-daemon, polkitd and netclientd")
        underlay = Underlay(nodes=args.nodes, prefix=unique_prefix("nmdemo"), subnet=0).create()
        subprocess.run(["ip", "-n", underlay.bridge, "addr", "add", f"{UNDERLAY_SERVER}/24", "dev", "br0"], check=True)
        for p_ in (port, broker.port):
            relays.append(Relay(underlay.bridge, UNDERLAY_SERVER, p_, state).start())
        for ns in underlay.nodes:
            n = AgentNode(ns, state / f"node{ns.index}", name=f"node{ns.index}", log_level="info")
            nodes.append(n)
            n.start()
            say(f"   node{ns.index}: namespace {ns.name}, underlay {ns.address}")

        step("Each node joins with the token: netclient join -t TOKEN (over D-Bus, polkit-checked)")
        t0 = time.monotonic()
        for n in nodes:
            t = time.monotonic()
            show([f"[{n.name}] netclient", "join", "-t", token[:16] + "…", "--name", n.name])
            p = n.netclient("join", "-t", token, "--name", n.name)
            if p.returncode != 0:
                raise SystemExit(f"demo: {n.name} could not join: {p.stderr}\n{n.log_tail()}")
            say(f"     joined in {time.monotonic() - t:.2f} s")

        def address(n):
            st = n.netclient_json("status")
            for net in st["networks"]:
                if net["name"] == NETWORK:
                    return next(a.split("/")[0] for a in net["addresses"] if ":" not in a)
            return None

        addrs = {n.name: address(n) for n in nodes}

        step("Every node pings every other over the mesh")
        failed = 0
        for a, b in itertools.permutations(nodes, 2):
            ok = any(a.ping(addrs[b.name], count=1, timeout=2) for _ in range(10))
            failed += not ok
            say(f"   {a.name} ({addrs[a.name]}) -> {b.name} ({addrs[b.name]}): {'ok' if ok else 'FAILED'}")
        say(f"   mesh complete {time.monotonic() - t0:.2f} s after the first join")
        # netclientd refreshes peer statistics every few seconds: show them once they include the pings.
        def handshaken():
            peers = nodes[0].netclient_json("peers")
            flat = peers if isinstance(peers, list) else [p for v in peers.values() for p in v] \
                if isinstance(peers, dict) else []
            return flat and all(p.get("latest_handshake") for p in flat if isinstance(p, dict))
        try:
            wait_until(handshaken, 8, "peer statistics")
        except Exception:  # noqa: BLE001 (only cosmetic)
            pass
        say(f"\n   [{nodes[0].name}] netclient peers")
        say("\n".join("     " + line for line in nodes[0].netclient("peers").stdout.splitlines()))

        step("Cleaning up the demo nodes (the server keeps the hosts until you delete them)")
        for n in reversed(nodes):
            n.stop()
        nodes = []
        for r in relays:
            r.stop()
        relays = []
        underlay.cleanup()
        underlay = None
        if failed:
            raise SystemExit(f"demo: {failed} pings failed")

        step("netmakerd is yours")
        say(f"""   API:          {url}/api/v1/health
   admin:        admin / the password in {pwfile}
   TLS pin:      {pin}   (netmakerd --print-pin; nmctl remembers it)
   nmctl:        export NMCTL_SERVER={url} HOME={HOME}   (already logged in there)
                 {binary('nmctl')} network list
                 {binary('nmctl')} host list
                 {binary('nmctl')} key create laptops --network {NETWORK} --uses 5
   join a node:  netclient join -t <token>   (netclientd running on that machine)
   state:        {state}""")
        if args.exit:
            return 0
        say("\n   Ctrl-C stops netmakerd and Mosquitto.")
        signal.sigwait({signal.SIGINT, signal.SIGTERM}) if hasattr(signal, "sigwait") else signal.pause()
        return 0
    finally:
        for n in reversed(nodes):
            try:
                n.stop()
            except Exception as e:  # noqa: BLE001 (keep cleaning up)
                print(f"cleanup of {n.name}: {e}", file=sys.stderr)
        for r in relays:
            r.stop()
        if underlay:
            underlay.cleanup()
        if server and server.running:
            server.stop(check=False)
        if broker:
            broker.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM}) if "--exit" not in sys.argv else None
    sys.exit(main())
