"""HTTP helpers for the tests: JSON calls through http.client (no third-party modules), over
HTTPS with the server's key pinned as netclientd and nmctl pin it; raw requests through a socket
(TLS-wrapped for https) for the hostile cases a client library cannot send; and the error-body check
of docs/protocol.md §2.1.

Pins are looked up by origin ("https://127.0.0.1:8443"): the harness registers each server's pin
when it starts (`trust(origin, pin)`), a test host the pin of its token. An https:// call to an
origin nobody registered fails, so no test talks to an unverified server by accident."""

import http.client
import json as jsonlib
import socket
import ssl
import time
import urllib.parse

from . import tlsutil

API_PREFIX = "/api/v1"

_UNSET = object()


def full_path(path: str) -> str:
    """'/networks' -> '/api/v1/networks'; a path already starting with '/api/' (or any path
    that does not start with '/') is used as it is."""
    if path.startswith("/api/") or path == "/api" or not path.startswith("/"):
        return path
    return API_PREFIX + path


def _decode(ctype, raw):
    if not raw:
        return None
    if ctype and "json" in ctype:
        try:
            return jsonlib.loads(raw)
        except ValueError:
            pass
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return raw


_trusted = {}  # origin -> ("pin", "sha256//...") or ("ca", path)


def origin(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def trust(url, pin=None, ca_file=None):
    """Trusts the https server at `url`'s origin by the pin of its key, or by a CA file."""
    _trusted[origin(url)] = ("pin", pin) if pin else ("ca", str(ca_file))


def trusted(url):
    return _trusted.get(origin(url))


def connection(url, timeout=10.0):
    """An http.client connection to `url`'s origin, connected and (https) verified."""
    u = urllib.parse.urlsplit(url)
    if u.scheme == "http":
        c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=timeout)
        c.connect()
        return c
    how = trusted(url)
    if how is None:
        raise AssertionError(f"no pin or CA registered for {origin(url)} (nmtest.http.trust)")
    if how[0] == "ca":
        ctx = ssl.create_default_context(cafile=how[1])
    else:
        ctx = tlsutil.unverified_context()
    c = http.client.HTTPSConnection(u.hostname, u.port or 443, timeout=timeout, context=ctx)
    c.connect()
    if how[0] == "pin":
        try:
            tlsutil.check_pin(c.sock, how[1], origin(url))
        except tlsutil.PinMismatch:
            c.close()
            raise
    return c


def request(base_url, method, path, json=_UNSET, token=None, body=None, headers=None,
            content_type="application/json", timeout=10.0):
    """One call; returns (status, body) where body is the parsed JSON, text, or None (no body).
    `json` is serialised (pass json=None to send the JSON literal null); `body` (bytes/str) is
    sent as it is. `token` becomes `Authorization: Bearer <token>`."""
    data = None
    if json is not _UNSET:
        data = jsonlib.dumps(json).encode()
    elif body is not None:
        data = body.encode() if isinstance(body, str) else body
    h = {}
    if data is not None and content_type is not None:
        h["Content-Type"] = content_type
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    h.update(headers or {})
    u = urllib.parse.urlsplit(base_url.rstrip("/") + full_path(path))
    target = u.path + (f"?{u.query}" if u.query else "")
    c = connection(base_url, timeout)
    try:
        try:
            c.request(method, target, body=data, headers=h)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
            pass  # the server answered early and closed: its answer may be there to read
        r = c.getresponse()
        return r.status, _decode(r.getheader("Content-Type"), r.read())
    finally:
        c.close()


def request_raw_body(base_url, method, path, body=None, headers=None, timeout=10.0):
    """Like request(), but returns (status, headers dict, body bytes) undecoded."""
    u = urllib.parse.urlsplit(base_url.rstrip("/") + full_path(path))
    target = u.path + (f"?{u.query}" if u.query else "")
    c = connection(base_url, timeout)
    try:
        c.request(method, target, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def raw_socket(host, port, timeout=5.0, tls=False):
    """A connected socket to host:port, TLS-wrapped (key unchecked) with tls=True."""
    raw = socket.create_connection((host, port), timeout=timeout)
    return tlsutil.unverified_context().wrap_socket(raw, server_hostname=host) if tls else raw


def raw_request(host, port, data: bytes, timeout=5.0, read_limit=1 << 20, tls=False):
    """Sends raw bytes (inside TLS with tls=True, the server's key not checked: these are the
    hostile cases) and reads the response until the server closes the connection or the
    response (headers + Content-Length body) is complete. Returns (status, headers dict, body
    bytes). Raises socket.timeout if nothing complete arrives in time."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        s = tlsutil.unverified_context().wrap_socket(raw, server_hostname=host) if tls else raw
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        return read_response(s, timeout, read_limit)


def read_response(s, timeout=5.0, read_limit=1 << 20):
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        head_end = buf.find(b"\r\n\r\n")
        if head_end >= 0:
            head = buf[:head_end].decode("iso-8859-1")
            lines = head.split("\r\n")
            status = int(lines[0].split()[1])
            hdrs = {}
            for line in lines[1:]:
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            body = buf[head_end + 4:]
            n = hdrs.get("content-length")
            if n is not None and len(body) >= int(n):
                return status, hdrs, body[:int(n)]
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout(f"no complete response within {timeout} s (got {buf[:200]!r})")
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            if head_end >= 0:
                return status, hdrs, buf[head_end + 4:]
            raise ConnectionError(f"connection closed without a response (got {buf[:200]!r})")
        buf += chunk
        if len(buf) > read_limit:
            raise AssertionError("response too large")




def check_error(status, body, want_status, want_code=None, mentions=()):
    """Asserts an error response of docs/protocol.md §2.1: the status, the JSON error body with
    the same status, the code (either may be a tuple of accepted values), and a message that
    mentions each of `mentions` (case-insensitive substrings: the message names the problem).
    Returns the message."""
    statuses = (want_status,) if isinstance(want_status, int) else tuple(want_status)
    assert status in statuses, f"expected HTTP {' or '.join(map(str, statuses))}, got {status}: {body!r}"
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"HTTP {status}: error body is not {{\"error\": {{…}}}}: {body!r}"
    err = body["error"]
    assert set(err) >= {"status", "code", "message"}, f"error members missing: {err!r}"
    assert err["status"] == status, f"error.status {err['status']} != HTTP {status}"
    if want_code is not None:
        codes = (want_code,) if isinstance(want_code, str) else tuple(want_code)
        assert err["code"] in codes, f"expected code {' or '.join(codes)}, got {err['code']!r}: {err['message']!r}"
    msg = err["message"]
    assert isinstance(msg, str) and msg.strip(), f"empty error message: {err!r}"
    for m in mentions:
        assert m.lower() in msg.lower(), f"error message {msg!r} does not mention {m!r}"
    return msg


def quote(s: str) -> str:
    return urllib.parse.quote(s, safe="")
