"""Debian's real Caddy in front of netmakerd, configured from the shipped example
(systemd/Caddyfile.example) so that the example is what the tests run: only the public name, the
ports and the `tls internal` line are changed, and two global options keep Caddy on this machine's
loopback (`default_bind 127.0.0.1`; `http_port`, Caddy's HTTP->HTTPS redirect listener, on a free
port instead of 80). Its data (the local CA, certificates) and configuration live in the test's
directory (XDG_DATA_HOME, XDG_CONFIG_HOME), its admin API on a free loopback port.

    caddy = Caddy(tmp_path, site="198.18.43.254", port=free_port(), upstream_port=8081).start()
    caddy.url            # https://198.18.43.254:PORT (reached through a Relay from the namespaces)
    caddy.root_ca        # Caddy's local root certificate (PEM), for NETCLIENTD_CA_FILE
    caddy.stop()         # SIGTERM to the PID it started; asserts a clean exit
"""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

from .broker import _die_with_parent
from .server import REPO, free_port

CADDY = shutil.which("caddy") or "/usr/bin/caddy"
EXAMPLE = REPO / "systemd" / "Caddyfile.example"
EXAMPLE_NAME = "netmaker.example.com"
EXAMPLE_UPSTREAM = "127.0.0.1:8081"


class CaddyError(AssertionError):
    pass


def _replace_once(text, old, new, what):
    n = text.count(old)
    if n != 1:
        raise CaddyError(f"{EXAMPLE}: expected {what} ({old!r}) once, found it {n} times")
    return text.replace(old, new)


def caddyfile_from_example(site, port, upstream_port, admin_port, http_port, example=None):
    """The shipped example with the test's addresses: `site` (the name or address hosts use) on
    `port`, netmakerd on 127.0.0.1:`upstream_port`, Caddy's own CA (`tls internal`), and Caddy kept
    on loopback. Fails when the example no longer has what is replaced, so that a changed example
    cannot silently leave the test running something else."""
    text = (example or EXAMPLE).read_text()
    text = _replace_once(text, "\tadmin localhost:2019\n", f"\tadmin 127.0.0.1:{admin_port}\n",
                         "the admin endpoint")
    text = _replace_once(text, f"\tdefault_sni {EXAMPLE_NAME}\n", f"\tdefault_sni {site}\n", "default_sni")
    text = _replace_once(text, f"\n{EXAMPLE_NAME} {{\n", f"\n{site}:{port} {{\n", "the site block")
    text = _replace_once(text, "\t# tls internal\n", "\ttls internal\n", "the commented `tls internal`")
    text = _replace_once(text, f"\t\treverse_proxy {EXAMPLE_UPSTREAM}\n",
                         f"\t\treverse_proxy 127.0.0.1:{upstream_port}\n", "the API's upstream")
    # Only on this machine's loopback: the site's port, and the redirect listener (else :80).
    text = _replace_once(text, "\n{\n", f"\n{{\n\tdefault_bind 127.0.0.1\n\thttp_port {http_port}\n",
                         "the global options block")
    if EXAMPLE_NAME in re.sub(r"#.*", "", text):
        raise CaddyError(f"{EXAMPLE}: {EXAMPLE_NAME} is left outside comments:\n{text}")
    return text


class Caddy:
    def __init__(self, workdir, *, site, port, upstream_port):
        self.dir = Path(workdir) / "caddy"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.site, self.port, self.upstream_port = site, port, upstream_port
        self.admin_port = free_port()
        self.http_port = free_port()
        self.config_path = self.dir / "Caddyfile"
        self.log_path = self.dir / "caddy.log"
        self.data_dir = self.dir / "data"
        self.proc = None

    @property
    def url(self):
        return f"https://{self.site}:{self.port}"

    @property
    def root_ca(self) -> Path:
        """The root certificate of Caddy's local CA (`tls internal`), made at its first start."""
        return self.data_dir / "caddy" / "pki" / "authorities" / "local" / "root.crt"

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(HOME=str(self.dir), XDG_DATA_HOME=str(self.data_dir),
                   XDG_CONFIG_HOME=str(self.dir / "config"))
        return env

    def start(self, timeout=20.0):
        self.config_path.write_text(caddyfile_from_example(self.site, self.port, self.upstream_port,
                                                           self.admin_port, self.http_port))
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([CADDY, "run", "--config", str(self.config_path), "--adapter", "caddyfile"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env(), cwd=self.dir, preexec_fn=_die_with_parent)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        why = "not started"
        while True:
            if self.proc.poll() is not None:
                raise CaddyError(f"caddy exited with status {self.proc.returncode}:\n{self.log_tail()}")
            why = self._handshake_problem()
            if why is None:
                return self
            if time.monotonic() > deadline:
                self.stop(check=False)
                raise CaddyError(f"caddy did not serve {self.url} within {timeout} s ({why}):\n{self.log_tail()}")
            time.sleep(0.05)

    def _handshake_problem(self):
        """None once Caddy presents, on 127.0.0.1:port and without SNI (a client connecting by
        address sends none), a certificate for the site that its root CA vouches for."""
        if not self.root_ca.exists():
            return "no root CA yet"
        try:
            ctx = ssl.create_default_context(cafile=str(self.root_ca))
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as raw:
                with ctx.wrap_socket(raw, server_hostname=self.site):
                    return None
        except (OSError, ssl.SSLError) as e:
            return str(e)

    def stop(self, check=True, timeout=10.0):
        """SIGTERM to the caddy this object started; with check, asserts it exited with status 0."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    raise CaddyError(f"caddy did not exit within {timeout} s of SIGTERM:\n{self.log_tail()}")
        rc = self.proc.returncode
        if check and rc != 0:
            raise CaddyError(f"caddy exited with status {rc} after SIGTERM:\n{self.log_tail()}")
        return rc

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines=40):
        return "\n".join(f"  | {line}" for line in self.log().splitlines()[-lines:]) or "  | (empty log)"
