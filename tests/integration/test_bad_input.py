"""Bad and hostile input to the REST API: each request gets the right status and an error body
whose message names the problem, and the database is exactly as it was before (compared
table by table in the SQLite file)."""

import json
import ssl
import time

import pytest

from nmtest.client import TestHost, b64, b64url, decode_token, encode_token
from nmtest.http import check_error

KIB = 1024


@pytest.fixture
def bad(server):
    """bad(method, path, status, code, mentions=[...], json=/body=/token=/headers=...): makes
    the call (as admin unless token= is given), checks the error, and checks that no table of
    the database changed. Returns the error message."""
    def call(method, path, status, code=None, mentions=(), token="admin", **kw):
        before = server.db_dump()
        if token == "admin":
            token = server.admin_token()
        got_status, body = server.api(method, path, token=token, **kw)
        msg = check_error(got_status, body, status, code, mentions)
        assert len(msg) < 1024, f"error message of {len(msg)} characters"
        server.assert_db_unchanged(before, f"{method} {path}")
        return msg
    return call


def net(name="lab", ipv4_range="10.98.0.0/24", **kw):
    return {"name": name, "ipv4_range": ipv4_range, **kw}


# ---- JSON ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("body,mentions", [
    (b'{"name":', ["json"]),
    (b"name=lab", ["json"]),
    (b"", []),
    (b'{"name":"lab","ipv4_range":"10.98.0.0/24"} trailing', ["json"]),
    (b'{"name":"l\xff\xfeab","ipv4_range":"10.98.0.0/24"}', ["utf-8"]),
    (b"[" * 5000 + b"]" * 5000, ["json"]),
    (b'{"a":' * 3000 + b"1" + b"}" * 3000, ["json"]),
])
def test_malformed_json(bad, body, mentions):
    bad("POST", "/networks", 400, "invalid-json", mentions, body=body)


@pytest.mark.parametrize("payload,mentions", [
    ([], []),
    ("lab", []),
    (None, []),
    (42, []),
    ({"name": 5, "ipv4_range": "10.98.0.0/24"}, ["name"]),
    ({"name": ["lab"], "ipv4_range": "10.98.0.0/24"}, ["name"]),
    ({"name": "lab", "ipv4_range": 10}, ["ipv4_range"]),
    ({"name": "lab", "ipv4_range": "10.98.0.0/24", "mtu": "1420"}, ["mtu"]),
    ({"name": "lab", "ipv4_range": "10.98.0.0/24", "mtu": 1420.5}, ["mtu"]),
    ({"name": "lab", "ipv4_range": "10.98.0.0/24", "keepalive": True}, ["keepalive"]),
])
def test_wrong_shape(bad, payload, mentions):
    bad("POST", "/networks", 400, ("invalid-json", "invalid-argument"), mentions, json=payload)


def test_unknown_members(server, bad, hosts):
    server.create_network("office", "10.99.0.0/24")
    bad("POST", "/networks", 400, ("invalid-json", "invalid-argument"), ["colour"], json=net(colour="red"))
    bad("POST", "/networks", 400, None, ["ipv4range"], json={"name": "lab", "ipv4range": "10.98.0.0/24"})
    bad("PUT", "/networks/office", 400, None, ["mut"], json={"mut": 1300})
    bad("POST", "/enrollment-keys", 400, None, ["use"], json={"name": "k", "networks": ["office"], "use": 3})
    bad("POST", "/users", 400, None, ["admin"], json={"username": "eve", "password": "eve-password-1",
                                                      "role": "user", "admin": True})
    bad("POST", "/login", 400, None, ["remember"], token=None,
        json={"username": "admin", "password": "x" * 10, "remember": True})
    key = server.create_key(["office"])
    reg = TestHost("h").registration(key["token"], wg_private_key=b64(b"\0" * 32))
    bad("POST", "/hosts/register", 400, None, ["wg_private_key"], token=None, json=reg)


# ---- sizes and media types -----------------------------------------------------------------------

def test_body_over_64k(server, bad):
    pad = "a" * (64 * KIB)
    bad("POST", "/networks", 413, "too-large", [], json=net(pad=pad))
    # Exactly at the limit is read (and refused for its content, not its size).
    body = json.dumps(net(pad="")).encode()
    body = body[:-1] + b" " * (64 * KIB - len(body)) + b"}"
    assert len(body) == 64 * KIB
    bad("POST", "/networks", 400, None, ["pad"], body=body)


def test_huge_content_length_is_refused_before_reading(server):
    """A client announcing 1 GiB gets 413 at once: the server does not wait for (or read) the
    body."""
    before = server.db_dump()
    head = (f"POST /api/v1/networks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.admin_token()}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {1 << 30}\r\n\r\n").encode()
    with server.raw_socket() as s:
        s.sendall(head + b'{"name":"lab",')
        t0 = time.monotonic()
        from nmtest.http import read_response
        status, hdrs, body = read_response(s, timeout=5)
        elapsed = time.monotonic() - t0
    check_error(status, json.loads(body), 413, "too-large")
    assert elapsed < 4, f"413 took {elapsed:.1f} s"
    server.assert_db_unchanged(before)


def test_chunked_body_over_64k(server):
    before = server.db_dump()
    head = (f"POST /api/v1/networks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.admin_token()}\r\n"
            f"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    chunk = b"a" * 8192
    with server.raw_socket() as s:
        s.sendall(head)
        try:
            for _ in range(64):  # 512 KiB at most; the server should stop us well before
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        from nmtest.http import read_response
        status, hdrs, body = read_response(s, timeout=5)
    check_error(status, json.loads(body), 413, "too-large")
    server.assert_db_unchanged(before)


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                                   "multipart/form-data; boundary=x", "application/xml"])
def test_wrong_content_type(bad, ctype):
    bad("POST", "/networks", 415, "unsupported-media-type", ["application/json"],
        body=json.dumps(net()), content_type=ctype)


def test_missing_content_type(server):
    before = server.db_dump()
    body = json.dumps(net()).encode()
    req = (f"POST /api/v1/networks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {server.admin_token()}\r\n"
           f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    status, _, resp = server.raw(req)
    check_error(status, json.loads(resp), 415, "unsupported-media-type")
    server.assert_db_unchanged(before)


def test_json_content_type_with_charset(server):
    status, body = server.api("POST", "/networks", body=json.dumps(net()), token=server.admin_token(),
                              content_type="application/json; charset=utf-8")
    assert status == 201, body


# ---- networks --------------------------------------------------------------------------------------

@pytest.mark.parametrize("rng,mentions", [
    ("10.98.0.0/33", ["10.98.0.0/33"]),
    ("10.98.0.1/24", ["10.98.0.1/24"]),   # host bits set
    ("10.98.0.0/31", ["10.98.0.0/31"]),   # prefixes 8-30
    ("10.0.0.0/7", ["10.0.0.0/7"]),
    ("10.98.0.0", ["10.98.0.0"]),
    ("10.98.0.0/", ["10.98.0.0/"]),
    ("10.98.0/24", ["10.98.0/24"]),
    ("10.98.0.256/24", ["10.98.0.256/24"]),
    ("banana", ["banana"]),
    ("", ["ipv4_range"]),
    (" 10.98.0.0/24", ["10.98.0.0/24"]),
    ("010.098.000.000/24", ["010.098"]),
    ("fd00:98::/64", ["fd00:98::/64"]),   # an IPv6 range in the IPv4 member
])
def test_invalid_ipv4_range(bad, rng, mentions):
    bad("POST", "/networks", 400, "invalid-argument", mentions, json=net(ipv4_range=rng))


@pytest.mark.parametrize("rng", ["fd00:98::/63", "fd00:98::/127", "fd00:98::1/64", "fd00:98::/129",
                                 "10.98.0.0/24", "fd00:98:::/64", "fd00:98::/64/1"])
def test_invalid_ipv6_range(bad, rng):
    bad("POST", "/networks", 400, "invalid-argument", [rng], json={"name": "lab", "ipv6_range": rng})


def test_network_needs_a_range(bad):
    bad("POST", "/networks", 400, "invalid-argument", ["range"], json={"name": "lab"})


@pytest.mark.parametrize("name", ["Office", "-office", "office-", "a" * 33, "off ice", "off.ice", "off_ice",
                                  "ofﬁce", "../x", "off\u0000ice", "é"])
def test_invalid_network_names(bad, name):
    msg = bad("POST", "/networks", 400, "invalid-argument", ["name"], json=net(name=name))
    if len(name) < 20 and "\u0000" not in name:
        assert name in msg, msg


def test_missing_network_name(bad):
    bad("POST", "/networks", 400, "invalid-argument", ["name"], json={"ipv4_range": "10.98.0.0/24"})


def test_hostile_network_name_is_truncated_in_message(bad):
    msg = bad("POST", "/networks", 400, "invalid-argument", ["name"], json=net(name="x" * 20000))
    assert "x" * 200 not in msg


@pytest.mark.parametrize("member,value", [
    ("listen_port", 0), ("listen_port", 65536), ("listen_port", -1),
    ("keepalive", 3601), ("keepalive", -1),
    ("mtu", 1279), ("mtu", 9001), ("mtu", 2 ** 63),
    ("dns_domain", "not a domain"), ("dns_domain", "-bad.example"), ("dns_domain", "a" * 300),
])
def test_out_of_range_network_settings(server, bad, member, value):
    mention = "dns" if member == "dns_domain" else member
    bad("POST", "/networks", 400, "invalid-argument", [mention], json=net(**{member: value}))
    server.create_network("office", "10.99.0.0/24")
    bad("PUT", "/networks/office", 400, "invalid-argument", [mention], json={member: value})


@pytest.mark.parametrize("payload", [
    net("lab", "10.99.0.128/25"),        # inside office
    net("lab", "10.0.0.0/8"),            # contains office
    net("lab", "10.99.0.0/24"),          # the same
    {"name": "lab", "ipv6_range": "fd00:99::/64"},
    {"name": "lab", "ipv6_range": "fd00:99::8000:0:0:0/65"},
    net("office", "10.97.0.0/24"),       # the same name
])
def test_conflicts(server, bad, payload):
    server.create_network("office", "10.99.0.0/24", ipv6_range="fd00:99::/64")
    msg = bad("POST", "/networks", 409, "conflict", [], json=payload)
    assert "office" in msg, msg


def test_not_found_objects(server, bad):
    bad("GET", "/networks/nosuch", 404, "not-found", ["nosuch"])
    bad("PUT", "/networks/nosuch", 404, "not-found", ["nosuch"], json={"mtu": 1400})
    bad("DELETE", "/networks/nosuch", 404, "not-found", ["nosuch"])
    bad("GET", "/hosts/00000000-0000-4000-8000-000000000000", 404, "not-found")
    bad("GET", "/nodes/00000000-0000-4000-8000-000000000000", 404, "not-found")
    bad("DELETE", "/enrollment-keys/00000000-0000-4000-8000-000000000000", 404, "not-found")
    bad("GET", "/users/nobody", 404, "not-found", ["nobody"])
    bad("POST", "/enrollment-keys", (400, 404), None, ["nosuch"], json={"name": "k", "networks": ["nosuch"]})


def test_network_in_use(server, bad, hosts):
    server.create_network("office", "10.99.0.0/24")
    hosts("a").register(server.create_key(["office"])["token"])
    bad("DELETE", "/networks/office", 409, "conflict", ["office"])
    assert server.admin("DELETE", "/networks/office?force=true")[0] == 204


# ---- enrollment keys ---------------------------------------------------------------------------------

@pytest.mark.parametrize("payload,mentions", [
    ({"name": "k", "networks": ["office"], "uses": 0}, ["uses"]),
    ({"name": "k", "networks": ["office"], "uses": -3}, ["uses"]),
    ({"name": "k", "networks": "office"}, ["networks"]),
    ({"name": "k", "networks": ["office"], "expires_at": -1}, ["expires_at"]),
    ({"name": "k", "networks": ["office"], "tags": "laptop"}, ["tags"]),
    ({"name": "k", "networks": ["Office!"]}, ["Office!"]),
])
def test_invalid_keys(server, bad, payload, mentions):
    server.create_network("office", "10.99.0.0/24")
    bad("POST", "/enrollment-keys", 400, ("invalid-argument", "invalid-json"), mentions, json=payload)


# ---- registration tokens -------------------------------------------------------------------------------

@pytest.fixture
def office_key(server):
    server.create_network("office", "10.99.0.0/24")
    return server.create_key(["office"], uses=5)


def forged(enrollment_key, **change):
    t = decode_token(enrollment_key["token"])
    t.update(change)
    return encode_token({k: v for k, v in t.items() if v is not None})


def test_garbage_tokens(server, bad, office_key):
    uses = office_key["uses_remaining"]
    t = decode_token(office_key["token"])
    cases = [
        ("", ["token"]),
        ("!!!!", ["token"]),
        ("not a token at all", ["token"]),
        (b64url(b"hello"), ["token"]),                                   # base64url, not JSON
        (office_key["token"] + "=", ["token"]),                           # padding is not base64url
        (office_key["token"].replace("-", "+").replace("_", "/"), ["token"]) if any(
            c in office_key["token"] for c in "-_") else ("@" + office_key["token"], ["token"]),
        ("A" * 3000, ["2048"]),                                           # huge
        ("A" * 70000, []),                                                # over the body limit
        (encode_token("[" * 3000 + "]" * 3000), ["token"]),               # nested JSON bomb
        (encode_token({"v": 1, "api": t["api"], "key": t["key"], "spk": t["spk"],
                       "x": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}), ["token"]),
        (forged(office_key, v=3), ["version"]),
        (forged(office_key, api="ftp://x"), ["token"]),
        (forged(office_key, key=t["key"].lower()), ["token"]),
        (forged(office_key, key=t["key"][:-1]), ["token"]),
        (forged(office_key, spk=b64(b"\1" * 31)), ["token"]),
        (forged(office_key, spk=None), ["spk"]),
        (forged(office_key, extra="x"), ["extra"]),
    ]
    for tok, mentions in cases:
        reg = TestHost("h").registration(tok)
        status = 413 if len(tok) > 64 * KIB else 400
        code = "too-large" if status == 413 else ("invalid-argument", "invalid-json")
        bad("POST", "/hosts/register", status, code, mentions, token=None, json=reg)
    assert server.admin("GET", f"/enrollment-keys/{office_key['id']}", expect=200)["uses_remaining"] == uses


def test_forged_tokens(server, bad, office_key):
    """Tokens of the right shape that this server did not issue."""
    clients = server.broker_clients()
    unknown = forged(office_key, key="A" * 32)
    bad("POST", "/hosts/register", 401, "unauthenticated", [], token=None, json=TestHost("h").registration(unknown))
    other_spk = forged(office_key, spk=b64(b"\7" * 32))
    bad("POST", "/hosts/register", 401, "unauthenticated", ["another server"], token=None,
        json=TestHost("h").registration(other_spk))
    assert server.broker_clients() == clients
    assert server.admin("GET", f"/enrollment-keys/{office_key['id']}", expect=200)["uses_remaining"] == 5


def test_deleted_key(server, bad, office_key):
    assert server.admin("DELETE", f"/enrollment-keys/{office_key['id']}")[0] == 204
    bad("POST", "/hosts/register", 401, "unauthenticated", [], token=None,
        json=TestHost("h").registration(office_key["token"]))


def test_expired_and_used_up_keys(server, bad):
    server.create_network("office", "10.99.0.0/24")
    expired = server.create_key(["office"], uses=3, expires_at=int(time.time()) + 1)
    used = server.create_key(["office"], uses=1)
    TestHost("first").register(used["token"])
    time.sleep(max(0.0, expired["expires_at"] - time.time()) + 1.1)
    bad("POST", "/hosts/register", 410, "gone", ["expired"], token=None,
        json=TestHost("h").registration(expired["token"]))
    bad("POST", "/hosts/register", 410, "gone", ["used up"], token=None,
        json=TestHost("h").registration(used["token"]))


@pytest.mark.parametrize("member,value", [
    ("wg_public_key", "not base64"), ("wg_public_key", b64(b"\1" * 31)), ("wg_public_key", b64(b"\1" * 33)),
    ("wg_public_key", b64(b"\0" * 32)),
    ("msg_public_key", "AAAA"), ("msg_public_key", None),
    ("name", ""), ("name", "!!!"), ("name", "x" * 64), ("name", "x" * 4096), ("name", "Laptop"),
    ("name", "laptop.example.com"), ("name", "my_laptop"),
    ("listen_port", 0), ("listen_port", 70000), ("listen_port", "51821"),
    ("endpoints", ["not-an-ip"]), ("endpoints", "198.18.0.1"), ("endpoints", ["198.18.0.1/24"]),
    ("endpoints", ["198.18.0.1:51821"]),
    ("endpoints", [f"198.18.0.{i}" for i in range(1, 40)]),
    ("os", "x" * 1000),
])
def test_invalid_registrations(server, bad, office_key, member, value):
    h = TestHost("h")
    reg = h.registration(office_key["token"])
    if value is None:
        del reg[member]
    else:
        reg[member] = value
    mention = "endpoint" if member == "endpoints" else member
    bad("POST", "/hosts/register", 400, ("invalid-argument", "invalid-json"), [mention], token=None, json=reg)


def test_long_host_name_is_refused(server, bad, office_key):
    """Defect 4 of "Secure by default": a 4096-character name used to be registered (201), cut to
    63 characters. It is refused with the limit named, in the words netclientd's Join uses for the
    same name (test_dbus_api.test_bad_options); 63 characters are registered as they are."""
    for n in (64, 4096):
        reg = TestHost("h").registration(office_key["token"])
        reg["name"] = "x" * n
        msg = bad("POST", "/hosts/register", 400, "invalid-argument", ["63"], token=None, json=reg)
        assert msg == (f'Invalid host name "{"x" * 64}" ({n} characters): use 1-63 characters of a-z, '
                       "0-9 and '-', not starting or ending with '-'"), msg
    h = TestHost("y" * 63)
    status, body = h.register(office_key["token"])
    assert status == 201
    assert server.admin("GET", f"/hosts/{body['host_id']}", expect=200)["name"] == "y" * 63


def test_same_wireguard_key_twice(server, bad, office_key):
    a = TestHost("a")
    a.register(office_key["token"])
    b = TestHost("b")
    b.wg = a.wg
    bad("POST", "/hosts/register", 409, "conflict", [], token=None, json=b.registration(office_key["token"]))


# ---- authentication and roles -----------------------------------------------------------------------------

ADMIN_CALLS = [
    ("GET", "/networks", None),
    ("POST", "/networks", net()),
    ("GET", "/users", None),
    ("GET", "/enrollment-keys", None),
    ("GET", "/hosts", None),
    ("GET", "/nodes", None),
    ("DELETE", "/networks/office", None),
]


@pytest.mark.parametrize("token", [
    None, "", "garbage", "nm-test-master-key-0123456789abcdeX", "nmu.x.y", "nmh.x.y",
    "nmh.00000000-0000-4000-8000-000000000000." + "A" * 43, "x" * 10000, "\u00e9\u00e9",
])
def test_unauthenticated(server, bad, token):
    server.create_network("office", "10.99.0.0/24")
    for method, path, body in ADMIN_CALLS:
        kw = {"json": body} if body is not None else {}
        tok = token
        headers = {}
        if tok is not None and not tok.isascii():
            headers = {"Authorization": "Bearer " + tok.encode().decode("latin-1")}
            tok = None
        bad(method, path, 401, "unauthenticated", [], token=tok, headers=headers, **kw)


def test_host_credentials_only_for_host_endpoints(server, bad, office_key):
    a = TestHost("a")
    a.register(office_key["token"])
    assert a.api("GET", "/host")[0] == 200
    for method, path, body in ADMIN_CALLS:
        kw = {"json": body} if body is not None else {}
        before = server.db_dump()
        status, resp = server.api(method, path, token=a.credential, **kw)
        check_error(status, resp, 403, "forbidden")
        server.assert_db_unchanged(before)
    # A tampered host credential, and another host's id with this secret.
    prefix, hid, secret = a.credential.split(".", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    for cred in (f"nmh.{hid}.{flipped}", f"nmh.00000000-0000-4000-8000-000000000000.{secret}", f"nmh.{hid}.",
                 f"nmh.{hid}", "nmh." + "A" * 5000):
        status, body = server.api("GET", "/host", token=cred)
        check_error(status, body, 401, "unauthenticated")
    # User tokens and the master key are no host credentials (valid, but not for this: 403).
    check_error(*server.api("GET", "/host", token=server.admin_login()), 403, "forbidden")
    check_error(*server.api("GET", "/host", token=server.admin_token()), 403, "forbidden")


def test_user_role_cannot_do_admin_things(server, bad):
    server.create_network("office", "10.99.0.0/24")
    server.admin("POST", "/users", json={"username": "bob", "password": "bob-password-1", "role": "user"},
                 expect=201)
    bob = server.login("bob", "bob-password-1")
    bad("POST", "/networks", 403, "forbidden", [], token=bob, json=net())
    bad("DELETE", "/networks/office", 403, "forbidden", [], token=bob)
    bad("POST", "/enrollment-keys", 403, "forbidden", [], token=bob, json={"name": "k", "networks": ["office"]})
    bad("PUT", "/users/bob", 403, "forbidden", [], token=bob, json={"role": "admin"})


# ---- paths and methods --------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/networks", "/", "/api", "/api/v1",
                                  "/api/v1/networks/office/extra", "/api/v1/health/x", "/api/v1//networks",
                                  "/api/v1/networks/%00", "/api/v1/" + "x" * 4000])
def test_unknown_paths(server, bad, path):
    status, body = server.api("GET", path, token=server.admin_token())
    assert status in (400, 404, 414), (status, body)
    if status == 404 and "%00" not in path and "//" not in path:
        check_error(status, body, 404, "not-found")


def test_encoded_nul_does_not_cut_the_path(server, bad):
    """"office%00garbage" is not "office": an encoded NUL must not shorten a name."""
    server.create_network("office", "10.99.0.0/24")
    for method in ("GET", "DELETE"):
        before = server.db_dump()
        status, body = server.admin(method, "/networks/office%00garbage")
        assert status in (400, 404), (method, status, body)
        server.assert_db_unchanged(before, f"{method} /networks/office%00garbage")
    assert [n["name"] for n in server.admin("GET", "/networks", expect=200)] == ["office"]


@pytest.mark.parametrize("method,path", [
    ("PATCH", "/networks"), ("DELETE", "/networks"), ("PUT", "/health"), ("POST", "/health"),
    ("GET", "/login"), ("POST", "/networks/office"), ("PUT", "/hosts/register"),
    ("PUT", "/nodes"), ("POST", "/users/admin"),
])
def test_unknown_methods(server, bad, method, path):
    server.create_network("office", "10.99.0.0/24")
    kw = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    bad(method, path, 405, "method-not-allowed", [method], **kw)
    req = f"{method} /api/v1{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    status, hdrs, _ = server.raw(req.encode())
    assert status == 405 and hdrs.get("allow"), (status, hdrs)


def test_server_survives(server):
    """After a burst of hostile requests (the whole module does this), the server still works."""
    for data in (b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00" * 1000 + b"\r\n\r\n",
                 b"GET /api/v1/health HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100000 + b"\r\n\r\n"):
        try:
            server.raw(data, timeout=1)
        except (OSError, AssertionError):
            pass
    assert server.api("GET", "/health")[0] == 200
