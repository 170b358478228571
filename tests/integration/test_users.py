"""Users and logins: tokens carry the user, expire when configured, stop working when the user
goes, changes password (even within the second the token was issued) or is tampered with; the
database role is what counts; a user may change only its own password; the last admin stays."""

import base64
import hashlib
import hmac
import json
import threading
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


def generation(server, username):
    """The user's current token generation, from the database (docs/protocol.md §2.2)."""
    with server.db() as db:
        [(gen,)] = db.execute("SELECT token_generation FROM users WHERE username = ?", (username,)).fetchall()
    return gen


def mint(server, claims):
    """A user token signed with the server's own secret (read from its database), to test what
    the server does with authentic tokens it would not issue (e.g. expired ones). Without a
    "gen" claim it gets the user's current generation, as the server's own tokens do; "gen": None
    leaves it out (a token from before generations)."""
    with server.db() as db:
        [(secret,)] = db.execute("SELECT value FROM settings WHERE name = 'token_secret'").fetchall()
        row = db.execute("SELECT token_generation FROM users WHERE username = ?", (claims["sub"],)).fetchone()
    if "gen" not in claims and row is not None:
        claims = dict(claims, gen=row[0])
    claims = {k: v for k, v in claims.items() if v is not None}
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
    # So is one of another generation, or of none (a token from before generations counts as 0,
    # which no user made since has).
    for gen in (generation(server, "alice") + 1, 0, None):
        other = mint(server, {"sub": "alice", "role": "admin", "iat": now, "exp": now + 100, "gen": gen})
        check_error(*server.api("GET", "/users", token=other), 401, "unauthenticated",
                    mentions=["password change"])


def claims_of(token):
    return json.loads(unb64url(token.split(".")[1]))


def test_password_change_revokes_a_token_of_the_same_second(make_server, broker):
    """Defect 3 of "Secure by default": a token's issue time has whole seconds, so a token issued in
    the second of a password change used to outlive it for its whole lifetime. The per-user token
    generation in the token revokes it all the same."""
    # Up to 13 logins from one address in a few seconds: more than the default limit allows.
    server = make_server(broker, config={"login_rate_limit": "30/1m"})
    make_user(server, "alice", "user")
    passwords = [PW["alice"]] + [f"alice-password-{i}" for i in range(2, 8)]
    same_second = 0
    for i in range(len(passwords) - 1):
        # Start right after a second begins, so that the login and the change share it.
        time.sleep(1 - time.time() % 1)
        old = server.login("alice", passwords[i])
        status, body = server.api("PUT", "/users/alice", json={"password": passwords[i + 1]}, token=old)
        assert status == 200, (status, body)
        with server.db() as db:
            [(changed_at,)] = db.execute(
                "SELECT password_changed_at FROM users WHERE username = 'alice'").fetchall()
        same_second += claims_of(old)["iat"] == changed_at
        msg = check_error(*server.api("GET", "/users/alice", token=old), 401, "unauthenticated",
                          mentions=["password change", "log in again"])
        assert passwords[i] not in msg
        new = server.login("alice", passwords[i + 1])
        assert claims_of(new)["gen"] == claims_of(old)["gen"] + 1
        assert server.api("GET", "/users/alice", token=new)[0] == 200
        if same_second >= 2:
            break
    assert same_second >= 2, "no login shared the second of the password change: the case was not tried"
    # A change by an admin revokes the user's tokens alike.
    tok = server.login("alice", passwords[i + 1])
    server.admin("PUT", "/users/alice", json={"password": "alice-password-by-admin"}, expect=200)
    check_error(*server.api("GET", "/users/alice", token=tok), 401, "unauthenticated", mentions=["password change"])


def test_login_racing_a_password_change_gets_no_lasting_token(server):
    """A login whose password check runs while the password changes gets either 401 or a token
    that the change has already revoked: never one that works with the old password."""
    make_user(server, "bob", "user")
    passwords = [PW["bob"], "bob-password-2", "bob-password-3", "bob-password-4"]
    for i in range(len(passwords) - 1):
        result = {}

        def login(pw=passwords[i]):
            result["r"] = server.api("POST", "/login", json={"username": "bob", "password": pw})
        t = threading.Thread(target=login)
        t.start()
        time.sleep(0.02)  # the check of the old password has begun on a worker thread
        server.admin("PUT", "/users/bob", json={"password": passwords[i + 1]}, expect=200)
        t.join(30)
        status, body = result["r"]
        if status == 200:
            check_error(*server.api("GET", "/users/bob", token=body["token"]), 401, "unauthenticated")
        else:
            check_error(status, body, 401, "unauthenticated")


def test_user_made_again_does_not_inherit_tokens(server):
    """A user deleted and created again under the same name (usually within the second) does not
    accept the first one's tokens: new users start at a random generation."""
    make_user(server, "carol", "admin")
    first = server.login("carol", PW["carol"])
    assert server.admin("DELETE", "/users/carol")[0] == 204
    make_user(server, "carol", "admin")
    check_error(*server.api("GET", "/users", token=first), 401, "unauthenticated")
    assert server.api("GET", "/users", token=server.login("carol", PW["carol"]))[0] == 200


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
