"""One netclientd host for integration tests, as close to a real machine as a namespace gets: its
own network namespace (from nmtest.netns), a private mount namespace with a tmpfs on /run (so the
stock paths /run/dbus/system_bus_socket and /run/wireguard/<ifname>.sock are private to the node),
the stock system dbus-daemon with our bus policy bind-mounted into /etc/dbus-1/system.d, the real
polkitd with our actions bind-mounted into /usr/share/polkit-1/actions, and netclientd itself
with the userspace WireGuard backend (wireguard-go; wg_backend="kernel" where the kernel has WireGuard). Everything inside is started with
`nsenter -t <holder> -m -n`, so `netclient`, `wg`, `busctl`, `ping` run there unchanged.

    node = AgentNode(netns_node, workdir).start()       # dbus-daemon + polkitd + netclientd
    node.netclient("join", "-t", token)                  # CompletedProcess (text); never raises
    node.netclient("status", "--json", user="nobody")
    node.wg_peers("nm-office")                           # {public_key: {...}} from `wg show dump`
                                                         # (hidden=True: with the server's observer peer)
    node.ping("10.99.0.2")
    node.restart_netclientd()                            # SIGTERM + start; links stay
    node = AgentNode(..., resolved=True)                 # + systemd-resolved (and networkd=True: networkd)
    node = AgentNode(..., resolv_conf="nameserver 203.0.113.53\n")  # a private /etc/resolv.conf
    node.resolvectl("query", "node2.office.nm.internal")  # CompletedProcess; node.restart_resolved()
    node.bus_address                                     # for GDBus clients outside the node
    node.log()                                           # netclientd's log

Only processes started here are signalled (by PID); Underlay.cleanup() removes whatever is left
in the namespace (wireguard-go processes netclientd detached on purpose).
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from . import server as nmserver
from . import stage

REPO = nmserver.REPO
POLKITD = "/usr/lib/polkit-1/polkitd"


class NodeError(AssertionError):
    pass


def wait_until(predicate, timeout=10.0, what="condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise NodeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def _stop(proc, timeout=5.0, sig=signal.SIGTERM):
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else None
    proc.send_signal(sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


class AgentNode:
    def __init__(self, netns_node, workdir, *, name=None, polkit_rules=None, env=None, log_level="debug",
                 wg_backend="userspace", resolved=False, networkd=False, networkd_files=None, resolv_conf=None):
        self.netns = netns_node
        self.name = name or netns_node.name
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.state_dir = self.dir / "state"
        self.log_path = self.dir / "netclientd.log"
        self.polkit_rules = polkit_rules  # text of a .rules file, or None
        self.env = dict(env or {})
        self.log_level = log_level
        self.wg_backend = wg_backend  # "userspace" (wireguard-go) or "kernel" (VM tier)
        # The real systemd-resolved / systemd-networkd of the node, without PID 1 (as in
        # research/test-env.md §5b: private /run, read-only sysfs = networkd's "no udev" mode).
        # networkd_files: {name: text} for the node's /etc/systemd/network.
        self.with_resolved = resolved
        self.with_networkd = networkd
        self.networkd_files = dict(networkd_files or {})
        # The node's own /etc/resolv.conf (text), bind-mounted over the host's: the upstream a
        # forwarding responder asks must be one the test made, never the machine's.
        self.resolv_conf = resolv_conf
        self.resolved = None
        self.networkd = None
        self.holder = None
        self.dbus = None
        self.polkitd = None
        self.daemon = None
        # WireGuard peers wg_peers() leaves out: the server's observer on each link (a keepalive-only
        # peer, docs/protocol.md §3.4), which is no mesh peer. The mesh fills it in.
        self.hidden_keys = set()
        self._logs = []
        self.netclientd = nmserver.binary("netclientd")
        # Installed into a world-readable staging root, not run from the build tree: tests run it
        # as other users (runuser -u nobody), who may not be able to enter the checkout.
        self.netclient_bin = stage.installed("netclient")

    # ---- the node's private /run and configuration -------------------------------------------

    def _prepare_files(self):
        actions = self.dir / "polkit-actions"
        shutil.rmtree(actions, ignore_errors=True)
        shutil.copytree("/usr/share/polkit-1/actions", actions)
        shutil.copy(REPO / "polkit" / "org.netmaker.client.policy", actions)

        dbusd = self.dir / "dbus-system.d"
        shutil.rmtree(dbusd, ignore_errors=True)
        shutil.copytree("/etc/dbus-1/system.d", dbusd)
        shutil.copy(REPO / "dbus" / "org.netmaker.Client.conf", dbusd)

        rules = self.dir / "polkit-rules.d"
        shutil.rmtree(rules, ignore_errors=True)
        rules.mkdir()
        if self.polkit_rules:
            (rules / "50-nmtest.rules").write_text(self.polkit_rules)
        shutil.chown(rules, "polkitd", "root")
        os.chmod(rules, 0o700)
        for f in rules.iterdir():
            shutil.chown(f, "polkitd", "root")
        network = self.dir / "systemd-network"
        shutil.rmtree(network, ignore_errors=True)
        network.mkdir()
        for fname, text in self.networkd_files.items():
            (network / fname).write_text(text)
        return actions, dbusd, rules

    def _start_holder(self):
        actions, dbusd, rules = self._prepare_files()
        systemd = []
        if self.with_resolved or self.with_networkd:
            systemd = [
                "mkdir -p /run/systemd/resolve /run/systemd/netif/links /run/systemd/netif/leases "
                "/run/systemd/netif/lldp",
                "chown systemd-resolve:systemd-resolve /run/systemd/resolve",
                "chown -R systemd-network:systemd-network /run/systemd/netif",
                # This netns's sysfs, read-only: networkd's "container without udev" mode.
                "mount -o remount,bind,ro /sys",
                f"mount --bind {self.dir / 'systemd-network'} /etc/systemd/network",
            ]
        resolv = []
        if self.resolv_conf is not None:
            (self.dir / "resolv.conf").write_text(self.resolv_conf)
            resolv = [f"mount --bind {self.dir / 'resolv.conf'} /etc/resolv.conf"]
        script = " && ".join([
            "mount -t tmpfs -o mode=755 tmpfs /run",
            "mkdir -p /run/dbus /run/wireguard /run/user",
            *systemd,
            *resolv,
            f"mount --bind {actions} /usr/share/polkit-1/actions",
            f"mount --bind {dbusd} /etc/dbus-1/system.d",
            f"mount --bind {rules} /etc/polkit-1/rules.d",
            "touch /run/.nmtest-ready",
            "exec sleep infinity",
        ])
        # ip netns exec and unshare both exec: the Popen PID is the holder itself.
        self.holder = subprocess.Popen(["ip", "netns", "exec", self.netns.name, "unshare", "--mount",
                                        "--propagation", "private", "/bin/sh", "-c", script],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE)
        ready = Path(f"/proc/{self.holder.pid}/root/run/.nmtest-ready")

        def up():
            if self.holder.poll() is not None:
                raise NodeError(f"{self.name}: namespace holder exited: {self.holder.stderr.read().decode()}")
            return ready.exists()
        wait_until(up, 10, f"{self.name}'s mount namespace")

    # ---- running things inside ---------------------------------------------------------------

    def _enter(self, argv, user=None):
        # -r: the holder's root directory too (entering a mount namespace resets it; it matters
        # when the tests themselves run in a chroot, as in the VM tier).
        pre = ["nsenter", "-t", str(self.holder.pid), "-m", "-n", "-r"]
        if user:
            pre += ["runuser", "-u", user, "--"]
        return pre + [str(a) for a in argv]

    def _env(self, extra=None):
        env = {k: v for k, v in os.environ.items()
               if not k.lower().endswith("_proxy") and not k.startswith(("NETCLIENTD_", "DBUS_"))
               and k not in ("STATE_DIRECTORY", "NOTIFY_SOCKET")}
        # Some callers (the VM tier's guest) run with a minimal PATH.
        if "/usr/bin" not in env.get("PATH", "").split(":"):
            env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        env.update(self.env)
        env.update(extra or {})
        return env

    def run(self, argv, user=None, check=False, timeout=60, env=None, input=None):
        """Runs a command inside the node (as root, or as `user`); returns the CompletedProcess."""
        p = subprocess.run(self._enter(argv, user), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout, env=self._env(env), input=input)
        if check and p.returncode != 0:
            raise NodeError(f"{self.name}: {' '.join(map(str, argv))} exited with {p.returncode}\n"
                            f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def popen(self, argv, user=None, env=None, **kw):
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self._enter(argv, user), env=self._env(env), **kw)

    def netclient(self, *args, user=None, timeout=120):
        return self.run([self.netclient_bin, *args], user=user, timeout=timeout)

    def netclient_json(self, *args, user=None):
        p = self.netclient(*args, "--json", user=user)
        if p.returncode != 0:
            raise NodeError(f"{self.name}: netclient {' '.join(args)} --json: {p.returncode} {p.stderr}")
        return json.loads(p.stdout)

    def busctl(self, *args, user=None):
        return self.run(["busctl", "--system", *args], user=user)

    def ping(self, address, count=1, timeout=2):
        return self.run(["ping", "-n", "-q", "-c", str(count), "-W", str(timeout), address],
                        timeout=timeout * count + 10).returncode == 0

    @property
    def bus_address(self):
        """The node's system bus, reachable from outside through the holder's root."""
        return f"unix:path=/proc/{self.holder.pid}/root/run/dbus/system_bus_socket"

    def has_bus_name(self, name):
        p = self.busctl("call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                        "NameHasOwner", "s", name)
        return p.returncode == 0 and "true" in p.stdout

    # ---- WireGuard, observed with the stock tool --------------------------------------------

    def wg_dump(self, ifname):
        """(device, {public_key: peer}) from `wg show IF dump`; None when the link is absent."""
        p = self.run(["wg", "show", ifname, "dump"], env={"WG_COLOR_MODE": "never"})
        if p.returncode != 0:
            return None
        lines = p.stdout.strip().splitlines()
        priv, pub, port, fwmark = lines[0].split("\t")
        dev = {"public_key": pub, "listen_port": int(port)}
        peers = {}
        for line in lines[1:]:
            key, psk, endpoint, allowed, handshake, rx, tx, keepalive = line.split("\t")
            peers[key] = {
                "endpoint": None if endpoint == "(none)" else endpoint,
                "allowed_ips": [] if allowed == "(none)" else allowed.split(","),
                "latest_handshake": int(handshake),
                "rx": int(rx),
                "tx": int(tx),
                "keepalive": 0 if keepalive == "off" else int(keepalive),
            }
        return dev, peers

    def wg_peers(self, ifname, hidden=False):
        """{public_key: peer} of the link (None when absent), without the server's observer peer
        (hidden_keys) unless `hidden`."""
        d = self.wg_dump(ifname)
        if not d:
            return None
        return {k: v for k, v in d[1].items() if hidden or k not in self.hidden_keys}

    def link_exists(self, ifname):
        return self.run(["ip", "link", "show", "dev", ifname]).returncode == 0

    # ---- daemons -----------------------------------------------------------------------------

    def _log_file(self, name):
        f = open(self.dir / f"{name}.log", "ab")
        self._logs.append(f)
        return f

    def start(self, netclientd=True):
        if not self.netclientd.exists():
            raise NodeError(f"{self.netclientd} does not exist: build first (NM_BUILD_DIR)")
        self._start_holder()
        # The stock system bus: /run/dbus/system_bus_socket, drops to messagebus.
        self.dbus = self.popen(["dbus-daemon", "--system", "--nofork", "--nopidfile"],
                               stdout=self._log_file("dbus"), stderr=subprocess.STDOUT)
        sock = Path(f"/proc/{self.holder.pid}/root/run/dbus/system_bus_socket")
        wait_until(lambda: sock.exists() or self.dbus.poll() is not None, 10, f"{self.name}'s bus")
        if self.dbus.poll() is not None:
            raise NodeError(f"{self.name}: dbus-daemon exited: {(self.dir / 'dbus.log').read_text()}")
        self.polkitd = self.popen([POLKITD, "--no-debug"], stdout=self._log_file("polkitd"),
                                  stderr=subprocess.STDOUT)
        wait_until(lambda: self.has_bus_name("org.freedesktop.PolicyKit1"), 15, f"{self.name}'s polkitd")
        if self.with_networkd:
            self.start_networkd()
        if self.with_resolved:
            self.start_resolved()
        if netclientd:
            self.start_netclientd()
        return self

    def start_netclientd(self, extra_args=()):
        if self.daemon and self.daemon.poll() is None:
            raise NodeError(f"{self.name}: netclientd is already running")
        self.state_dir.mkdir(mode=0o700, exist_ok=True)
        log = open(self.log_path, "ab")
        self._logs.append(log)
        log.write(f"--- {time.strftime('%H:%M:%S')} starting netclientd\n".encode())
        log.flush()
        argv = [self.netclientd, f"--state-dir={self.state_dir}", "--config=/nonexistent",
                f"--wg-backend={self.wg_backend}", f"--log-level={self.log_level}", *extra_args]
        self.daemon = self.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: self.has_bus_name("org.netmaker.Client") or self.daemon.poll() is not None,
                   15, f"{self.name}'s netclientd on the bus")
        if self.daemon.poll() is not None:
            raise NodeError(f"{self.name}: netclientd exited with {self.daemon.returncode}:\n{self.log_tail()}")
        return self.daemon

    def stop_netclientd(self, sig=signal.SIGTERM):
        rc = _stop(self.daemon, sig=sig)
        return rc

    def restart_netclientd(self):
        rc = self.stop_netclientd()
        if rc != 0:
            raise NodeError(f"{self.name}: netclientd exited with {rc} on SIGTERM:\n{self.log_tail()}")
        return self.start_netclientd()

    # ---- systemd-resolved and systemd-networkd (with resolved=True / networkd=True) --------------

    def start_resolved(self):
        """Starts the stock systemd-resolved (it drops to systemd-resolve itself) and waits for its
        bus name; its stub listens on 127.0.0.53 of the node."""
        self.resolved = self.popen(["/lib/systemd/systemd-resolved"], stdout=self._log_file("resolved"),
                                   stderr=subprocess.STDOUT, env={"SYSTEMD_LOG_LEVEL": "debug"})
        wait_until(lambda: self.has_bus_name("org.freedesktop.resolve1") or self.resolved.poll() is not None,
                   15, f"{self.name}'s systemd-resolved")
        if self.resolved.poll() is not None:
            raise NodeError(f"{self.name}: systemd-resolved exited: {(self.dir / 'resolved.log').read_text()}")
        return self.resolved

    def stop_resolved(self):
        rc = _stop(self.resolved)
        wait_until(lambda: not self.has_bus_name("org.freedesktop.resolve1"), 10, "resolved to leave the bus")
        return rc

    def restart_resolved(self):
        self.stop_resolved()
        return self.start_resolved()

    def start_networkd(self):
        self.networkd = self.popen(["/lib/systemd/systemd-networkd"], stdout=self._log_file("networkd"),
                                   stderr=subprocess.STDOUT, env={"SYSTEMD_LOG_LEVEL": "debug"})
        wait_until(lambda: self.has_bus_name("org.freedesktop.network1") or self.networkd.poll() is not None,
                   15, f"{self.name}'s systemd-networkd")
        if self.networkd.poll() is not None:
            raise NodeError(f"{self.name}: systemd-networkd exited: {(self.dir / 'networkd.log').read_text()}")
        return self.networkd

    def resolvectl(self, *args, timeout=30):
        return self.run(["resolvectl", "--no-pager", *args], timeout=timeout,
                        env={"SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": ""})

    def netclientd_pid(self):
        return self.daemon.pid if self.daemon and self.daemon.poll() is None else None

    def rss_kib(self):
        """Resident memory of netclientd (VmRSS), in KiB."""
        with open(f"/proc/{self.daemon.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None

    def memory_kib(self):
        """netclientd's memory in KiB: rss, pss (shared pages split between their users) and private
        (pages only it uses), from /proc/PID/smaps_rollup."""
        out = {}
        with open(f"/proc/{self.daemon.pid}/smaps_rollup") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                    out[k] = int(v.split()[0])
        return {"rss": out["Rss"], "pss": out["Pss"], "private": out["Private_Clean"] + out["Private_Dirty"]}

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60):
        return "\n".join(f"  | {line}" for line in self.log().splitlines()[-lines:]) or "  | (empty)"

    def stop(self):
        """Stops what this object started, newest first (the holder last)."""
        _stop(self.daemon)
        _stop(self.resolved)
        _stop(self.networkd)
        _stop(self.polkitd)
        _stop(self.dbus)
        _stop(self.holder)
        for f in self._logs:
            f.close()
        self._logs = []

    def __repr__(self):
        return f"AgentNode({self.name}, {self.netns.address})"
