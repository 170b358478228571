"""A throwaway Mosquitto broker with the dynamic-security plugin on 127.0.0.1 for the integration
tests: its own directory, a free port, a TLS listener (a self-signed certificate made for it;
tls=False for the tests that prove plain MQTT is refused or warned about), an admin account, and
stop/restart that keep the port and the dynamic-security file (so broker accounts survive a
restart, as they do in production)."""

import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

DYNSEC_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_CTRL = shutil.which("mosquitto_ctrl") or "/usr/bin/mosquitto_ctrl"
HOST = "127.0.0.1"


_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # A test run that is killed must not leave brokers behind (runs in the child, before exec).
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class BrokerError(Exception):
    pass


class Broker:
    """Usage: `b = Broker(tmpdir).start()`; `b.url`, `b.port`, `b.admin_user`, `b.admin_password`,
    `b.dynsec_file`; `b.stop()`, `b.restart()`. Only ever signals the PID it started."""

    def __init__(self, tmpdir=None, admin_user="admin", admin_password=None, port=None, tls=True):
        if tmpdir is None:
            tmpdir = tempfile.mkdtemp(prefix="nmtest-broker-")
        self.dir = Path(tmpdir) / f"mosquitto-{uuid.uuid4().hex[:8]}"
        self.dir.mkdir(parents=True)
        self.host = HOST
        self.port = port
        self.admin_user = admin_user
        self.admin_password = admin_password or uuid.uuid4().hex
        self.dynsec_file = str(self.dir / "dynamic-security.json")
        self.conf_file = str(self.dir / "mosquitto.conf")
        self.log_file = str(self.dir / "broker.log")
        self.proc = None
        self._initialised = False
        self.tls = tls
        self.cert_file = self.key_file = self.pin = None
        if tls:
            from . import tlsutil
            self.cert_file, self.key_file = tlsutil.make_self_signed(self.dir, "broker")
            self.pin = tlsutil.pin_of_file(self.cert_file)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    def cli_args(self):
        """Where mosquitto_sub/_pub/_ctrl reach this broker: host, port and its certificate."""
        return ["-h", self.host, "-p", str(self.port), *(["--cafile", str(self.cert_file)] if self.tls else [])]

    def mqtt_client(self, client_id="", **kw):
        """A paho client set up for this broker's listener (TLS with its certificate as the CA).
        Connect it with .connect(broker.host, broker.port)."""
        import paho.mqtt.client as mqtt  # noqa: PLC0415 (only the tests with a broker need it)
        c = mqtt.Client(client_id=client_id, **kw)
        if self.tls:
            import ssl  # noqa: PLC0415
            c.tls_set_context(ssl.create_default_context(cafile=str(self.cert_file)))
        return c

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -----------------------------------------------------------------------------------------

    def _init_dynsec(self):
        # mosquitto_ctrl prompts for the password when it is not on the command line; a test
        # broker's password is no secret.
        subprocess.run([MOSQUITTO_CTRL, "dynsec", "init", self.dynsec_file, self.admin_user,
                        self.admin_password], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=10)
        os.chmod(self.dynsec_file, 0o600)
        self._initialised = True

    def _write_conf(self):
        # PITFALL (research/test-env.md §6): started as root, mosquitto drops to user "mosquitto"
        # before the plugin reads its file, then rejects every login; a test broker stays root.
        conf = "\n".join([
            "user root" if os.geteuid() == 0 else "# not root: no user switch",
            "per_listener_settings false",
            "allow_anonymous false",
            "persistence false",
            f"listener {self.port} {self.host}",
            *([f"certfile {self.cert_file}", f"keyfile {self.key_file}"] if self.tls else []),
            f"plugin {DYNSEC_PLUGIN}",
            f"plugin_opt_config_file {self.dynsec_file}",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp_format %H:%M:%S",
            "",
        ])
        Path(self.conf_file).write_text(conf)

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return True
            except OSError:
                time.sleep(0.01)
        return False

    def _spawn(self, timeout):
        self._write_conf()
        with open(self.log_file, "ab") as log:
            log.write(f"--- starting on port {self.port}\n".encode())
            log.flush()
            self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf_file], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=_die_with_parent)
        if self._wait_ready(timeout):
            return True
        self._kill_proc()
        return False

    def start(self, timeout=10.0):
        """Starts the broker (a new free port unless one was given) and waits until it accepts
        TCP connections. Returns self."""
        if self.running():
            return self
        if not self._initialised:
            self._init_dynsec()
        fixed = self.port is not None
        for _ in range(1 if fixed else 5):
            if not fixed:
                self.port = free_port()
            if self._spawn(timeout):
                return self
        raise BrokerError(f"mosquitto did not start on {self.host}:{self.port}; log:\n{self.log()}")

    def _kill_proc(self, sig=signal.SIGTERM, timeout=5.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def stop(self, timeout=5.0):
        """Stops the broker (SIGTERM, SIGKILL after `timeout`). The port and files stay."""
        self._kill_proc(signal.SIGTERM, timeout)

    def kill(self):
        """Stops the broker the hard way, like a crash."""
        self._kill_proc(signal.SIGKILL)

    def restart(self, timeout=10.0, down_for=0.0):
        """Stops and starts again on the same port with the same dynamic-security file."""
        self.stop()
        if down_for:
            time.sleep(down_for)
        # The port was ours a moment ago; retry briefly in case something grabbed it.
        deadline = time.monotonic() + timeout
        while True:
            if self._spawn(timeout):
                return self
            if time.monotonic() > deadline:
                raise BrokerError(f"mosquitto did not restart on port {self.port}; log:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        try:
            return Path(self.log_file).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -----------------------------------------------------------------------------------------
    # Looking at the dynamic-security state (for assertions in tests)

    def ctrl(self, *args, check=True, timeout=10.0) -> str:
        """Runs `mosquitto_ctrl dynsec ARGS...` as the admin; returns its output."""
        r = subprocess.run([MOSQUITTO_CTRL, *self.cli_args(), "-u", self.admin_user, "-P", self.admin_password,
                            "dynsec", *args],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise BrokerError(f"mosquitto_ctrl dynsec {args[0] if args else ''} failed: "
                              f"{(r.stdout + r.stderr).strip()}")
        return r.stdout

    def dynsec_config(self) -> dict:
        """The plugin's saved state (clients, roles, default ACL access). Passwords there are
        salted hashes. Mosquitto rewrites the file in place (truncate, then write) after every
        change: a read in between sees it empty or cut, so such a read is done again."""
        deadline = time.monotonic() + 5
        while True:
            with open(self.dynsec_file) as f:
                text = f.read()
            try:
                return json.loads(text)
            except json.JSONDecodeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def clients(self) -> list:
        return sorted(c["username"] for c in self.dynsec_config().get("clients", []))

    def roles(self) -> list:
        return sorted(r["rolename"] for r in self.dynsec_config().get("roles", []))

    # -----------------------------------------------------------------------------------------

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def __del__(self):
        try:
            self._kill_proc(signal.SIGKILL)
        except Exception:
            pass
