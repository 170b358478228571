"""Users and logins: tokens carry the user, expire when configured, stop working when the user
goes or is tampered with; the database role is what counts; a user may change only its own
password; the last admin stays."""

import base64
import hashlib
import hmac
import json
import time

from nmtest.client import b64url, unb64url
from nmtest.http import check_error

PW = {"alice": "alice-password-1", "bob": "bob-password-1", "carol": "carol-password-1"}


def make_user(server, name, role):
    u = server.admin("POST", "/users", json={"username": name, "password": PW[name], "role": role}, expect=201)
    assert u["username"] == name and u["role"] == role
    assert PW[name] not in json.dumps(u) and not any("password" in k for k in u), u
    return u


def test_login_roles_and_self_service(server):
    make_user(server, "alice", "admin")
    make_user(server, "bob", "user")
    status, body = server.api("POST", "/login", json={"username": "alice", "password": PW["alice"]})
    assert status == 200 and body["role"] == "admin" and body["token"].startswith("nmu.")
    assert body["expires_at"] > time.time()
    alice = body["token"]
    bob = server.login("bob", PW["bob"])

    # Wrong password and unknown user look the same.
    for name, pw in (("alice", "wrong-password"), ("nobody", "whatever-password")):
        status, body = server.api("POST", "/login", json={"username": name, "password": pw})
        check_error(status, body, 401, "unauthenticated")

    # An admin user may do admin things; a user may read but not change.
    assert server.api("POST", "/networks", json={"name": "office", "ipv4_range": "10.99.0.0/24"},
                      token=alice)[0] == 201
    assert server.api("GET", "/networks", token=bob)[0] == 200
    assert server.api("GET", "/networks/office", token=bob)[0] == 200
    assert server.api("GET", "/hosts", token=bob)[0] == 200
    assert server.api("GET", "/nodes", token=bob)[0] == 200
    for method, path, body in (
            ("POST", "/networks", {"name": "lab", "ipv4_range": "10.98.0.0/24"}),
            ("DELETE", "/networks/office", None),
            ("PUT", "/networks/office", {"mtu": 1300}),
            ("GET", "/users", None),
            ("POST", "/users", {"username": "eve", "password": "eve-password-1", "role": "admin"}),
            ("GET", "/users/alice", None),
            ("DELETE", "/users/alice", None),
            ("GET", "/enrollment-keys", None),
            ("POST", "/enrollment-keys", {"name": "k", "networks": ["office"]})):
        kw = {"json": body} if body is not None else {}
        status, resp = server.api(method, path, token=bob, **kw)
        check_error(status, resp, 403, "forbidden")
    assert server.admin("GET", "/networks/office", expect=200)["mtu"] == 1420
    assert sorted(u["username"] for u in server.admin("GET", "/users", expect=200)) == ["admin", "alice", "bob"]

    # bob reads himself and changes his own password, but not his role.
    assert server.api("GET", "/users/bob", token=bob) == (200, server.admin("GET", "/users/bob", expect=200))
    status, body = server.api("PUT", "/users/bob", json={"role": "admin"}, token=bob)
    check_error(status, body, 403, "forbidden")
    status, body = server.api("PUT", "/users/bob", json={"password": "x" * 20, "role": "admin"}, token=bob)
    check_error(status, body, 403, "forbidden")
    assert server.admin("GET", "/users/bob", expect=200)["role"] == "user"
    status, body = server.api("PUT", "/users/alice", json={"password": "y" * 20}, token=bob)
    check_error(status, body, 403, "forbidden")
    status, body = server.api("PUT", "/users/bob", json={"password": "bob-new-password"}, token=bob)
    assert status == 200 and body["username"] == "bob" and body["role"] == "user"
    check_error(*server.api("POST", "/login", json={"username": "bob", "password": PW["bob"]}), 401)
    bob2 = server.login("bob", "bob-new-password")
    assert server.api("GET", "/networks", token=bob2)[0] == 200

    # The role in the database counts, not the one in the token.
    server.admin("PUT", "/users/bob", json={"role": "admin"}, expect=200)
    assert server.api("GET", "/users", token=bob2)[0] == 200
    server.admin("PUT", "/users/bob", json={"role": "user"}, expect=200)
    check_error(*server.api("GET", "/users", token=bob2), 403, "forbidden")

    # A deleted user's token stops working.
    assert server.admin("DELETE", "/users/bob")[0] == 204
    check_error(*server.api("GET", "/networks", token=bob2), 401, "unauthenticated")


def test_last_admin_cannot_be_deleted(server):
    # The configured initial admin ("admin") exists from the first start.
    users = {u["username"]: u for u in server.admin("GET", "/users", expect=200)}
    assert users["admin"]["role"] == "admin"
    admin = server.admin_login()
    make_user(server, "alice", "admin")
    make_user(server, "bob", "user")
    assert server.api("DELETE", "/users/admin", token=server.login("alice", PW["alice"]))[0] == 204
    check_error(*server.api("GET", "/networks", token=admin), 401, "unauthenticated")
    before = server.db_dump()
    check_error(*server.admin("DELETE", "/users/alice"), 409, "conflict")
    server.assert_db_unchanged(before)
    make_user(server, "carol", "admin")
    assert server.admin("DELETE", "/users/alice")[0] == 204
    carol = server.login("carol", PW["carol"])
    check_error(*server.api("DELETE", "/users/carol", token=carol), 409, "conflict")
    assert sorted(u["username"] for u in server.admin("GET", "/users", expect=200)) == ["bob", "carol"]
    check_error(*server.admin("DELETE", "/users/nobody"), 404, "not-found", mentions=["nobody"])
    # A restart does not bring back the deleted initial admin (it is made at the first start only).
    server.restart()
    assert sorted(u["username"] for u in server.admin("GET", "/users", expect=200)) == ["bob", "carol"]


def mint(server, claims):
    """A user token signed with the server's own secret (read from its database), to test what
    the server does with authentic tokens it would not issue (e.g. expired ones)."""
    with server.db() as db:
        [(secret,)] = db.execute("SELECT value FROM settings WHERE name = 'token_secret'").fetchall()
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(base64.b64decode(secret), f"nmu.{payload}".encode(), hashlib.sha256).digest()
    return f"nmu.{payload}.{b64url(mac)}"


def test_token_expiry(make_server, broker):
    server = make_server(broker, config={"token_lifetime": "90s"})
    make_user(server, "alice", "admin")
    status, body = server.api("POST", "/login", json={"username": "alice", "password": PW["alice"]})
    assert status == 200
    claims = json.loads(unb64url(body["token"].split(".")[1]))
    assert claims["exp"] - claims["iat"] == 90 and body["expires_at"] == claims["exp"]
    assert abs(claims["iat"] - time.time()) < 5

    now = int(time.time())
    fresh = mint(server, {"sub": "alice", "role": "admin", "iat": now, "exp": now + 100})
    assert server.api("GET", "/users", token=fresh)[0] == 200  # minting is right...
    expired = mint(server, {"sub": "alice", "role": "admin", "iat": now - 100, "exp": now - 1})
    check_error(*server.api("GET", "/users", token=expired), 401, "unauthenticated", mentions=["expired"])
    # ...and expiry is checked against the clock on every request.
    soon = mint(server, {"sub": "alice", "role": "admin", "iat": now, "exp": now + 2})
    assert server.api("GET", "/users", token=soon)[0] == 200
    time.sleep(max(0.0, now + 2 - time.time()) + 0.05)
    check_error(*server.api("GET", "/users", token=soon), 401, "unauthenticated", mentions=["expired"])
    # An authentic token for a user that does not exist is refused too.
    ghost = mint(server, {"sub": "ghost", "role": "admin", "iat": now, "exp": now + 100})
    check_error(*server.api("GET", "/users", token=ghost), 401, "unauthenticated")


def test_tampered_tokens(server):
    make_user(server, "alice", "admin")
    make_user(server, "bob", "user")
    bob = server.login("bob", PW["bob"])
    prefix, payload, mac = bob.split(".")
    claims = json.loads(unb64url(payload))
    assert claims["sub"] == "bob" and claims["role"] == "user"

    promoted = b64url(json.dumps(dict(claims, role="admin"), separators=(",", ":")).encode())
    other = b64url(json.dumps(dict(claims, sub="alice", role="admin"), separators=(",", ":")).encode())
    later = b64url(json.dumps(dict(claims, exp=claims["exp"] + 10 ** 6), separators=(",", ":")).encode())
    flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
    foreign_mac = b64url(hmac.new(b"k" * 32, f"nmu.{other}".encode(), hashlib.sha256).digest())
    bad = [
        f"nmu.{payload}.{flipped}",           # mac changed
        f"nmu.{promoted}.{mac}",              # payload changed, old mac
        f"nmu.{other}.{mac}",
        f"nmu.{later}.{mac}",
        f"nmu.{other}.{foreign_mac}",         # signed with another secret
        f"nmu.{payload}",                     # parts missing
        f"nmu..{mac}",
        "nmu." + "A" * 5000 + "." + mac,      # huge
        f"nmx.{payload}.{mac}",
        bob + "x",
        "Bearer",
        base64.b64encode(b"alice:alice-password-1").decode(),
    ]
    for tok in bad:
        status, body = server.api("GET", "/networks", token=tok)
        check_error(status, body, 401, "unauthenticated")
    # Other schemes and a missing credential.
    for hdr in ({"Authorization": "Basic " + base64.b64encode(b"alice:alice-password-1").decode()},
                {"Authorization": f"bearer{bob}"}, {}):
        status, body = server.api("GET", "/networks", headers=hdr)
        check_error(status, body, 401, "unauthenticated")
    # The untouched token still works.
    assert server.api("GET", "/networks", token=bob)[0] == 200
