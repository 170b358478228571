"""netmakerd as systemd runs it: started by socket activation it serves its first request on the
passed socket (and does not bind the configured port), and it tells the service manager when it
is ready and when it stops (Type=notify)."""

import json
import os
import socket
import time

import pytest

from nmtest import http, tlsutil
from nmtest.server import free_port


class NotifySocket:
    """The service manager's end of $NOTIFY_SOCKET: collects sd_notify datagrams."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, line, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not any(line in m.split("\n") for m in self.messages):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {line!r} on $NOTIFY_SOCKET within {timeout} s; got {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return self.messages

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(tmp_path / "notify")
    yield n
    n.close()


def sanitizer_env():
    """systemd-socket-activate passes only the environment it is told to (-E)."""
    out = []
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if k in os.environ:
            out += ["-E", k]
    return out


def test_socket_activation(make_server, broker, notify):
    port = free_port()
    configured = free_port()
    srv = make_server(broker, start=False, config={"listen": f"127.0.0.1:{configured}"})
    srv.start(prefix=["systemd-socket-activate", "-l", f"127.0.0.1:{port}", "--fdname=api",
                      "-E", f"NOTIFY_SOCKET={notify.path}", *sanitizer_env()], wait_listening=False)
    srv.wait_for_text(f"Listening on 127.0.0.1:{port} as 3.")  # systemd-socket-activate's line
    # systemd-socket-activate execs netmakerd on the first connection: this request starts it
    # and must be answered on the passed socket.
    url = f"https://127.0.0.1:{port}"
    # The key is made at the first start, which this very request causes: check it afterwards.
    with http.raw_socket("127.0.0.1", port, timeout=15, tls=True) as s:
        s.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status, _, raw = http.read_response(s, timeout=15)
        body = json.loads(raw)
        assert tlsutil.pin_of_der(s.getpeercert(binary_form=True)) == tlsutil.pin_of_file(srv.cert_path)
    assert status == 200, (status, body, srv.log_tail())
    assert body["status"] == "ok"
    notify.wait_for("READY=1")
    # It did not bind the configured address as well.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", configured), timeout=2).close()
    srv.url, srv.host, srv.port = url, "127.0.0.1", port
    http.trust(url, pin=tlsutil.pin_of_file(srv.cert_path))
    # The whole API works on the passed socket.
    srv.create_network("office", "10.99.0.0/24")
    assert [n["name"] for n in srv.admin("GET", "/networks", expect=200)] == ["office"]
    assert srv.stop() == 0
    notify.wait_for("STOPPING=1", timeout=1)


def test_notify_standalone(make_server, broker, notify):
    srv = make_server(broker, env={"NOTIFY_SOCKET": notify.path})
    notify.wait_for("READY=1")
    assert srv.api("GET", "/health")[0] == 200
    srv.stop()
    notify.wait_for("STOPPING=1", timeout=1)
