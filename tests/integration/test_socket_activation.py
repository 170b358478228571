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


def test_udp_socket_from_systemd(make_server, broker):
    """Both sockets of netmakerd.socket (ListenStream= and ListenDatagram=, one name for both):
    netmakerd takes the stream one for the API and the datagram one for its UDP port (endpoint
    observer and STUN), binding neither configured address."""
    api = socket.socket()
    api.bind(("127.0.0.1", 0))
    api.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    api_port, udp_port = api.getsockname()[1], udp.getsockname()[1]
    configured_udp = free_port()
    srv = make_server(broker, start=False, config={"listen": f"127.0.0.1:{free_port()}",
                                                   "udp_listen": f"127.0.0.1:{configured_udp}"})
    # What systemd does: the sockets as fds 3 and 4, LISTEN_PID of the service's own process (the
    # wrapper execs it, so its PID), one name for both as in netmakerd.socket.
    wrapper = ["/usr/bin/python3", "-c",
               "import os, sys\n"
               f"a, u = os.dup({api.fileno()}), os.dup({udp.fileno()})\n"
               "os.dup2(a, 3); os.dup2(u, 4)\n"
               # os.dup() may have returned 3 or 4 itself (close-on-exec, which dup2 to the same
               # number would keep).
               "os.set_inheritable(3, True); os.set_inheritable(4, True)\n"
               "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='2', LISTEN_FDNAMES='api:api')\n"
               "os.execvp(sys.argv[1], sys.argv[1:])\n"]
    srv.start(prefix=wrapper, pass_fds=(api.fileno(), udp.fileno()), wait_listening=False)
    api.close()
    udp.close()
    srv.wait_for_text(f"on UDP 127.0.0.1:{udp_port} (socket from systemd)")
    srv.wait_listening()
    assert srv.port == api_port
    from nmtest.wgmsg import stun_mapped, stun_request
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(5)
    txid = os.urandom(12)
    s.sendto(stun_request(txid), ("127.0.0.1", udp_port))
    assert stun_mapped(s.recv(1500), txid) == ("127.0.0.1", s.getsockname()[1])
    s.close()
    # The configured UDP address is free: netmakerd did not bind it.
    free = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    free.bind(("127.0.0.1", configured_udp))
    free.close()
    assert srv.stop() == 0
