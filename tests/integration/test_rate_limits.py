"""Rate limits per source address on the anonymous endpoints (docs/netmakerd.md, "Rate limits"):
from one address, logins and registrations past the limit get 429 with Retry-After and a message
that names the limit, whatever the request (right password, valid token); another address is
unaffected; after Retry-After one more goes through; the limits are configurable and can be off.
X-Forwarded-For is not believed (it is only logged). A second source is 127.0.0.2 on the loopback
device (nothing leaves the machine)."""

import http.client
import json
import ssl
import time
import urllib.parse

from nmtest.client import TestHost
from nmtest.http import check_error

PW = "alice-password-1"
OTHER_SOURCE = "127.0.0.2"


def post(server, path, body, source="127.0.0.1", headers=None):
    """POST /api/v1<path> from a chosen loopback source address: (status, headers, body)."""
    u = urllib.parse.urlsplit(server.url)
    if u.scheme == "https":
        c = http.client.HTTPSConnection(server.host, server.port, timeout=30, source_address=(source, 0),
                                        context=ssl._create_unverified_context())
    else:
        c = http.client.HTTPConnection(server.host, server.port, timeout=30, source_address=(source, 0))
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        c.request("POST", "/api/v1" + path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        r = c.getresponse()
        raw = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(raw) if raw else None
    finally:
        c.close()


def login(server, password=PW, source="127.0.0.1", headers=None):
    return post(server, "/login", {"username": "alice", "password": password}, source, headers)


def check_limited(status, headers, body, mentions):
    """A 429 of docs/protocol.md §2.1 with Retry-After; returns the Retry-After seconds."""
    check_error(status, body, 429, "too-many-requests", mentions=["retry in", *mentions])
    retry = int(headers["retry-after"])
    assert 1 <= retry, headers
    assert f"retry in {retry} s" in body["error"]["message"], (retry, body)
    return retry


def test_logins_past_the_limit(server):
    """The default: 10 per minute from one address, 10 at once."""
    server.admin("POST", "/users", json={"username": "alice", "password": PW, "role": "user"}, expect=201)
    # Ten attempts of every kind count: right and wrong passwords, and malformed bodies (these are
    # quick, so the whole burst falls well within the 6 s in which one attempt comes back).
    assert login(server)[0] == 200
    assert login(server, "wrong-password")[0] == 401
    for _ in range(8):
        assert post(server, "/login", {"username": "alice"})[0] == 400
    # The eleventh is refused before its password is looked at, even the right one.
    status, headers, body = login(server)
    retry = check_limited(status, headers, body, ["logins", "127.0.0.1", "10 per minute", "login_rate_limit"])
    assert retry <= 6
    assert PW not in json.dumps(body)
    check_limited(*post(server, "/login", b"not json"), ["logins"])

    # Another address has its own budget, untouched.
    status, _, body = login(server, source=OTHER_SOURCE)
    assert status == 200 and body["token"].startswith("nmu."), (status, body)
    assert login(server, "wrong-password", source=OTHER_SOURCE)[0] == 401

    # Retry-After is the truth: after it one more login goes through, and only one.
    status, headers, body = login(server)
    time.sleep(int(headers["retry-after"]) if status == 429 else 0)
    assert login(server)[0] == 200
    check_limited(*login(server), ["logins"])
    # Other endpoints are not limited (an admin keeps working from the same address).
    assert server.admin("GET", "/users", expect=200)


def test_registrations_past_the_limit(server, office):
    """The default: 30 per minute from one address; a refused registration changes nothing."""
    key = server.create_key(["office"], unlimited=True)
    TestHost("first").register(key["token"])
    for i in range(29):  # a malformed token is refused at once, and counts
        reg = TestHost(f"h{i}").registration("not-a-token")
        assert post(server, "/hosts/register", reg)[0] == 400
    before = server.db_dump()
    clients = server.broker_clients()
    h = TestHost("late")
    status, headers, body = post(server, "/hosts/register", h.registration(key["token"]))
    check_limited(status, headers, body, ["registrations", "127.0.0.1", "30 per minute", "register_rate_limit"])
    server.assert_db_unchanged(before, "a registration over the limit")
    assert server.broker_clients() == clients

    # From another address the same host registers.
    status, _, body = post(server, "/hosts/register", h.registration(key["token"]), source=OTHER_SOURCE)
    assert status == 201, (status, body)
    assert server.admin("GET", f"/hosts/{body['host_id']}", expect=200)["name"] == "late"
    # The limits are separate: this address may still log in.
    server.admin("POST", "/users", json={"username": "alice", "password": PW, "role": "user"}, expect=201)
    assert login(server)[0] == 200


def test_limits_are_configured_per_server(make_server, broker):
    server = make_server(broker, config={"login_rate_limit": "2/1h", "register_rate_limit": "off",
                                         "rate_limit_sources": 4})
    server.create_network("office", "10.99.0.0/24")
    server.admin("POST", "/users", json={"username": "alice", "password": PW, "role": "user"}, expect=201)
    assert login(server)[0] == 200
    assert login(server)[0] == 200
    status, headers, body = login(server)
    retry = check_limited(status, headers, body, ["2 per hour", "login_rate_limit"])
    assert 1700 <= retry <= 1800  # one login comes back every 30 minutes
    # Off: no registration limit at all.
    for i in range(40):
        assert post(server, "/hosts/register", TestHost(f"h{i}").registration("not-a-token"))[0] == 400
    key = server.create_key(["office"])
    TestHost("last").register(key["token"])
    # With room for 4 sources, 8 addresses still get one bucket each or share one, never more.
    statuses = [login(server, source=f"127.0.1.{i}")[0] for i in range(1, 9) for _ in range(3)]
    assert statuses.count(200) <= 4 * 2 + 2, statuses
    assert statuses.count(429) >= 3 * 8 - (4 * 2 + 2), statuses


def test_forwarded_for_buys_no_budget(make_server, broker):
    """A client cannot claim to be someone else: the limit counts the connection's address
    whatever X-Forwarded-For says, and the log shows both (the header quoted, never trusted)."""
    server = make_server(broker, config={"login_rate_limit": "2/1h"})
    server.admin("POST", "/users", json={"username": "alice", "password": PW, "role": "user"}, expect=201)
    claims = ["203.0.113.1", "203.0.113.2", "198.51.100.3, 203.0.113.3"]
    assert login(server, headers={"X-Forwarded-For": claims[0]})[0] == 200
    assert login(server, headers={"X-Forwarded-For": claims[1]})[0] == 200
    status, headers, body = login(server, headers={"X-Forwarded-For": claims[2]})
    check_limited(status, headers, body, ["127.0.0.1", "login_rate_limit"])
    assert not any(c in body["error"]["message"] for c in claims), body
    # (A request is logged once its answer has gone out: wait for the line.)
    server.wait_for_text(f'POST /api/v1/login from 127.0.0.1 (X-Forwarded-For "{claims[0]}") → 200')
    server.wait_for_text(f'POST /api/v1/login from 127.0.0.1 (X-Forwarded-For "{claims[2]}") → 429')
    # Without the header, only the address.
    assert login(server, source=OTHER_SOURCE)[0] == 200
    server.wait_for_text(f"POST /api/v1/login from {OTHER_SOURCE} → 200")
