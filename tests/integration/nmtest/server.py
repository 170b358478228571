"""Starts a real netmakerd for a test: a temporary state directory with its SQLite file, a
configuration file pointing at the test's broker, 127.0.0.1 on a kernel-chosen port, and helpers
for REST calls, the database and the server log."""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from contextlib import closing
from pathlib import Path

from . import http, tlsutil

REPO = Path(__file__).resolve().parents[3]

LISTEN_RE = re.compile(r"Listening on (https?://\S+?)/?(?:\s|$)")


def build_dir() -> Path:
    """$NM_BUILD_DIR (absolute, or relative to the repository), default `build`."""
    d = Path(os.environ.get("NM_BUILD_DIR", "build"))
    return d if d.is_absolute() else REPO / d


def binary(name: str) -> Path:
    """A built program: netmakerd, nmctl, netclientd or netclient."""
    b = build_dir()
    for p in (b / "src" / name / name, b / name):
        if p.exists():
            return p
    return b / "src" / name / name


def free_port(host="127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerError(AssertionError):
    pass


class Server:
    """One netmakerd. `broker` is an nmtest.broker.Broker (or None: the server then points at a
    closed port and runs with the broker down). `config` adds or overrides keys of the
    [netmakerd] section (None removes one; see `settings()`); `env` adds environment variables
    (NETMAKERD_<KEY> overrides the file).

        srv = Server(tmp_path, broker).start()
        status, body = srv.api("POST", "/networks", json={...}, token=srv.admin_token())
        srv.stop()          # SIGTERM; asserts a clean exit (status 0)
    """

    MASTER_KEY = "nm-test-master-key-0123456789abcdef"
    ADMIN_USER = "admin"
    ADMIN_PASSWORD = "admin-password-for-tests"

    def __init__(self, tmpdir, broker=None, *, config=None, env=None, args=(), server_name="nmtest",
                 prepare_broker=True):
        self.dir = Path(tmpdir) / "netmakerd"
        self.state_dir = self.dir / "state"
        self.config_path = self.dir / "netmakerd.conf"
        self.log_path = self.dir / "netmakerd.log"
        self.db_path = self.state_dir / "netmaker.db"
        self.broker = broker
        self.server_name = server_name
        self.overrides = dict(config or {})
        self.env = dict(env or {})
        self.args = list(args)
        self.prepare_broker = prepare_broker
        self.binary = binary("netmakerd")
        self.proc = None
        self.url = None
        self.host = None
        self.port = None
        self.pin = None
        self._log_fh = None
        self._log_offset = 0

    # ---- configuration ---------------------------------------------------------------------

    def settings(self) -> dict:
        """The configuration the harness writes ([netmakerd] keys of src/netmakerd/config.c),
        before the test's overrides."""
        b = self.broker
        return {
            "listen": "127.0.0.1:0",
            "server_name": self.server_name,
            "state_directory": str(self.state_dir),
            "database": f"sqlite://{self.db_path}",
            "master_key": self.MASTER_KEY,
            "admin_user": self.ADMIN_USER,
            "admin_password": self.ADMIN_PASSWORD,
            "broker_url": b.url if b else f"mqtts://127.0.0.1:{free_port()}",
            "broker_certificate": str(b.cert_file) if b and b.tls else None,
            "broker_username": b.admin_user if b else "admin",
            "broker_password": b.admin_password if b else "nothing",
            "log_level": "debug",
        }

    def config_text(self) -> str:
        s = self.settings()
        s.update(self.overrides)
        lines = [f"{k}={v}" for k, v in s.items() if v is not None]
        return "[netmakerd]\n" + "\n".join(lines) + "\n"

    def write_config(self):
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(mode=0o700, exist_ok=True)
        self.config_path.write_text(self.config_text())
        os.chmod(self.config_path, 0o600)

    def command(self):
        return [str(self.binary), "--config", str(self.config_path), *self.args]

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, timeout=10.0, wait_listening=True, prefix=(), pass_fds=()):
        """Starts the server (optionally under a wrapper `prefix`, e.g. systemd-socket-activate)
        and waits for its "Listening on https://HOST:PORT" line."""
        if not self.binary.exists():
            raise ServerError(f"{self.binary} does not exist: build first (meson setup/ninja), "
                              f"or set NM_BUILD_DIR")
        self.write_config()
        if self.broker and self.prepare_broker and self.broker.running():
            self._prepare_broker()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("NETMAKERD_", "LISTEN_")) and k not in ("NOTIFY_SOCKET", "STATE_DIRECTORY")}
        env.update(self.env)
        self._log_fh = open(self.log_path, "ab")
        self._log_offset = self.log_path.stat().st_size
        self.proc = subprocess.Popen([*prefix, *self.command()], stdin=subprocess.DEVNULL,
                                     stdout=self._log_fh, stderr=subprocess.STDOUT, env=env,
                                     pass_fds=pass_fds, start_new_session=True)
        if wait_listening:
            self.wait_listening(timeout)
            if self.broker and self.broker.running():
                self.wait_broker(True, timeout)
        return self

    def health(self):
        status, body = self.api("GET", "/health")
        assert status == 200, (status, body)
        return body

    def wait_broker(self, connected=True, timeout=10.0):
        """Waits until /health reports the broker (dis)connected: registrations need it."""
        return self.wait_log(lambda: self.health()["broker_connected"] is connected, timeout,
                             f"/health to say broker_connected={connected}")

    def _prepare_broker(self, timeout=5.0):
        """Gives the broker's admin account the role netmakerd would give itself at its first
        connection. netmakerd does that too, but Mosquitto then disconnects it and it reconnects
        after a backoff: preparing the broker saves every test about half a second. (Pass
        prepare_broker=False to test netmakerd's own setup.)"""
        role = f"netmakerd-{self.server_name}"
        if role in self.broker_roles():
            return
        import json as jsonlib  # noqa: PLC0415
        done = threading.Event()
        c = self.broker.mqtt_client()
        c.username_pw_set(self.broker.admin_user, self.broker.admin_password)
        c.reconnect_delay_set(0.01, 0.05)
        c.on_disconnect = lambda *a: done.set()  # adding a role to a client disconnects it
        c.on_message = lambda *a: done.set()
        c.connect(self.broker.host, self.broker.port)
        c.loop_start()
        try:
            c.subscribe("$CONTROL/dynamic-security/v1/response", 1)
            topics = f"nm/{self.server_name}/host/+"
            c.publish("$CONTROL/dynamic-security/v1", jsonlib.dumps({"commands": [
                {"command": "createRole", "rolename": role, "acls": [
                    {"acltype": "publishClientSend", "topic": f"{topics}/msg", "allow": True},
                    {"acltype": "subscribePattern", "topic": f"{topics}/report", "allow": True},
                    {"acltype": "publishClientReceive", "topic": f"{topics}/report", "allow": True}]},
                {"command": "addClientRole", "username": self.broker.admin_user, "rolename": role}]}), qos=1)
            assert done.wait(timeout), "the broker did not answer the dynamic-security commands"
        finally:
            c.disconnect()
            c.loop_stop()

    def wait_listening(self, timeout=10.0):
        def listening():
            m = LISTEN_RE.search(self.log(since_start=True))
            return m.group(1) if m else None
        url = self.wait_log(listening, timeout, "the \"Listening on https://…\" line")
        self.url = url
        hostport = url.split("://", 1)[1]
        self.host, _, port = hostport.rpartition(":")
        self.host = self.host.strip("[]")
        self.port = int(port)
        self.pin = None
        if url.startswith("https://"):
            # The pin of the served key, read from the certificate file as an admin would (and
            # as `netmakerd --print-pin` prints it); every call of the harness checks it.
            self.pin = tlsutil.pin_of_file(self.cert_path)
            http.trust(url, pin=self.pin)
            api_url = self.overrides.get("api_url")
            if api_url and api_url.startswith("https://") and self.overrides.get("token_pin") in (None, "auto"):
                http.trust(api_url, pin=self.pin)
        return url

    @property
    def cert_path(self) -> Path:
        """The API's certificate: tls_certificate, else the one netmakerd made in its state directory."""
        return Path(self.overrides.get("tls_certificate") or self.state_dir / "tls" / "server.crt")

    def wait_log(self, predicate, timeout=10.0, what="a log line"):
        """Waits until predicate() is truthy; fails at once (with the log) if the server exits."""
        deadline = time.monotonic() + timeout
        while True:
            v = predicate()
            if v:
                return v
            if self.proc.poll() is not None:
                raise ServerError(f"netmakerd exited with status {self.proc.returncode} while waiting "
                                  f"for {what}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServerError(f"timed out after {timeout} s waiting for {what}:\n{self.log_tail()}")
            time.sleep(0.01)

    def wait_for_text(self, text, timeout=10.0):
        return self.wait_log(lambda: text in self.log(since_start=True), timeout, repr(text))

    def stop(self, check=True, timeout=10.0):
        """SIGTERM; with check, asserts that the server exited by itself with status 0."""
        if not self.proc:
            return None
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close()
                if check:
                    raise ServerError(f"netmakerd did not exit within {timeout} s of SIGTERM:\n{self.log_tail()}")
                return None
        self._close()
        if check and rc != 0:
            raise ServerError(f"netmakerd exited with status {rc} after SIGTERM:\n{self.log_tail()}")
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close()

    def _close(self):
        if self._log_fh:
            self._log_fh.close()
            self._log_fh = None

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def restart(self, **kw):
        """Stops (asserting a clean exit) and starts again on the same port, so that the API URL
        in tokens and the hosts' configuration stay valid."""
        port = self.port
        self.stop()
        if port and "listen" not in self.overrides:
            self.overrides["listen"] = f"127.0.0.1:{port}"
            try:
                return self.start(**kw)
            finally:
                del self.overrides["listen"]
        return self.start(**kw)

    # ---- log -------------------------------------------------------------------------------

    def log(self, since_start=False) -> str:
        try:
            with open(self.log_path, "rb") as f:
                if since_start:
                    f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=60) -> str:
        text = self.log().splitlines()
        return "\n".join(f"  | {line}" for line in text[-lines:]) or "  | (empty log)"

    # ---- REST ------------------------------------------------------------------------------

    def admin_token(self) -> str:
        """A credential with the admin role: the configured master key."""
        return self.MASTER_KEY

    def api(self, method, path, json=http._UNSET, token=None, **kw):
        """(status, body) of one call; path relative to /api/v1 ("/networks")."""
        return http.request(self.url, method, path, json=json, token=token, **kw)

    def admin(self, method, path, json=http._UNSET, expect=None, **kw):
        """A call as admin; with `expect`, asserts the status and returns only the body."""
        status, body = self.api(method, path, json=json, token=self.admin_token(), **kw)
        if expect is not None:
            assert status == expect, f"{method} {path}: expected {expect}, got {status}: {body!r}"
            return body
        return status, body

    def admin_login(self) -> str:
        """A user token of the configured initial admin (admin_user/admin_password)."""
        return self.login(self.ADMIN_USER, self.ADMIN_PASSWORD)

    def login(self, username, password):
        status, body = self.api("POST", "/login", json={"username": username, "password": password})
        assert status == 200, f"login {username}: {status} {body!r}"
        return body["token"]

    def create_network(self, name="office", ipv4_range="10.99.0.0/24", **kw):
        return self.admin("POST", "/networks", json={"name": name, "ipv4_range": ipv4_range, **kw}, expect=201)

    def create_key(self, networks=("office",), name="k", **kw):
        """A new enrollment key; returns the key object (with "token")."""
        return self.admin("POST", "/enrollment-keys",
                          json={"name": name, "networks": list(networks), **kw}, expect=201)

    def raw_socket(self, timeout=5.0):
        """A socket connected to the API port (TLS-wrapped when it speaks HTTPS), for requests
        written by hand; use it as a context manager."""
        return http.raw_socket(self.host, self.port, timeout, tls=self.url.startswith("https://"))

    def raw(self, data: bytes, timeout=5.0):
        """Raw bytes to the API port (inside TLS when it speaks HTTPS); returns (status, headers, body)."""
        return http.raw_request(self.host, self.port, data, timeout, tls=self.url.startswith("https://"))

    # ---- broker accounts -------------------------------------------------------------------

    def broker_clients(self, timeout=5.0):
        """The broker's dynamic-security client names. Mosquitto rewrites its file in place, so
        a read can catch it half-written: retry until it parses."""
        return self._dynsec(lambda: self.broker.clients(), timeout)

    def broker_roles(self, timeout=5.0):
        return self._dynsec(lambda: self.broker.roles(), timeout)

    @staticmethod
    def _dynsec(read, timeout):
        deadline = time.monotonic() + timeout
        while True:
            try:
                return read()
            except ValueError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def wait_account(self, host_id, present=True, timeout=5.0):
        """Waits until the broker account (client and role) of a host exists, or is gone."""
        name = f"host-{host_id}"
        return self.wait_log(lambda: ((name in self.broker_clients()) == present and
                                      (name in self.broker_roles()) == present), timeout,
                             f"broker account {name} to be {'created' if present else 'deleted'}")

    # ---- database --------------------------------------------------------------------------

    def db(self) -> sqlite3.Connection:
        """A read-only connection to the live SQLite file (WAL readers do not disturb it)."""
        return sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)

    def db_dump(self, tables=None) -> dict:
        """{table: sorted rows} of every table (or `tables`), to compare before and after."""
        with closing(self.db()) as c:
            if tables is None:
                tables = [r[0] for r in c.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
            return {t: sorted(c.execute(f'SELECT * FROM "{t}"').fetchall(), key=repr) for t in tables}

    # Queue tables the server empties by itself once the broker confirms (e.g. the deletion of a
    # broker account made for a registration that then failed): they may lag for a moment.
    QUEUE_TABLES = ("account_cleanup",)

    def assert_db_unchanged(self, before, what="the request", settle=2.0):
        """Asserts that every table is as in `before` (a db_dump()): at once for the data tables,
        within `settle` seconds for the queue tables."""
        def diff(after, skip):
            return [t for t in set(after) | set(before) if t not in skip and after.get(t) != before.get(t)]
        after = self.db_dump()
        changed = diff(after, self.QUEUE_TABLES)
        assert not changed, f"{what} changed the database: " + "; ".join(
            f"{t}: {before.get(t)!r} -> {after.get(t)!r}" for t in sorted(changed))
        deadline = time.monotonic() + settle
        while diff(after, ()):
            assert time.monotonic() < deadline, f"{what} left rows behind: " + "; ".join(
                f"{t}: {before.get(t)!r} -> {after.get(t)!r}" for t in sorted(diff(after, ())))
            time.sleep(0.02)
            after = self.db_dump()

    def db_counts(self) -> dict:
        return {t: len(rows) for t, rows in self.db_dump().items()}
