"""Every REST route answers every kind of credential as docs/protocol.md §2.2 says for the route's
access level, and a refused request changes nothing. Nothing here lists routes: they come from the
server itself (`netmakerd --list-routes`, made from the router's own tables), and the expected
answers from the table in §2.2, so a new route is tested the moment it exists, and a route whose
access level §2.2 does not define fails. Each route is also in one of protocol.md's endpoint
tables with the same "who".

Kinds of credential: none; forged (a user token with a MAC that is not the server's, a host
credential with a wrong secret, a string of no known form); expired (an admin's token past its
`exp`, signed with the server's own secret); a host's credential; the token of a user of the role
`user`; an admin's token; the master key.

How a cell is called: a refused one with real objects in the path and a valid body, so that a
missing check would change something (the database is compared before and after); an allowed one
with objects that do not exist and a body with an unknown member, so that the handler refuses it
after the access check without changing anything either (GET: real objects, and 200 when every
parameter was filled with one). A route without parameters that deletes (DELETE /host) is allowed
with a host registered for it alone."""

import base64
import hashlib
import hmac
import json
import re
import sqlite3
import subprocess
import time
from contextlib import closing

import pytest

from nmtest import server as nmserver
from nmtest.broker import Broker
from nmtest.client import TestHost
from nmtest.server import REPO

API = "/api/v1"
PROTOCOL = REPO / "docs" / "protocol.md"
KINDS = ["none", "forged", "expired", "host", "user", "admin", "master key"]
MISSING_UUID = "00000000-0000-4000-8000-000000000000"
MISSING_NAME = "zz-authz-none"
INVALID_BODY = {"authz_matrix_unknown_member": True}


def list_routes():
    """The router's table, or the reason it could not be read."""
    try:
        p = subprocess.run([str(nmserver.binary("netmakerd")), "--list-routes"], capture_output=True, text=True,
                           timeout=60)
        if p.returncode != 0:
            return f"netmakerd --list-routes failed ({p.returncode}): {p.stderr.strip()}"
        return json.loads(p.stdout)
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        return f"netmakerd --list-routes: {e}"


ROUTES = list_routes()


def route_id(r):
    return f"{r['method']} {r['path'][len(API):]}"


def pytest_generate_tests(metafunc):
    if "route" in metafunc.fixturenames:
        if isinstance(ROUTES, str):
            metafunc.parametrize("route", [ROUTES], ids=["route-list"])
        else:
            metafunc.parametrize("route", ROUTES, ids=[route_id(r) for r in ROUTES])


# ---- what the docs say ---------------------------------------------------------------------------

def md_tables(text):
    """Every Markdown table of `text` as (header cells, rows of cells, the line before it)."""
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| :]+\|$", lines[i + 1]):
            head = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, j = [], i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append([c.strip() for c in re.split(r"(?<!\\)\|", lines[j].strip().strip("|"))])
                j += 1
            out.append((head, rows, lines[i - 1] if i else ""))
            i = j
        else:
            i += 1
    return out


def expectations():
    """{access level: {kind: cell}} from the table after the "authz-matrix" marker in §2.2; a cell
    is ("allowed",), ("status", N) or ("own name", N): N for another user's {name}, allowed for
    one's own."""
    for head, rows, before in md_tables(PROTOCOL.read_text()):
        if "authz-matrix" not in before:
            continue
        assert head[1:] == KINDS, f"protocol.md §2.2: the matrix's columns are {head[1:]}, expected {KINDS}"
        table = {}
        for row in rows:
            level = row[0].strip("`")
            cells = {}
            for kind, cell in zip(KINDS, row[1:]):
                if cell == "✓":
                    cells[kind] = ("allowed",)
                elif re.fullmatch(r"\d{3}", cell):
                    cells[kind] = ("status", int(cell))
                elif m := re.fullmatch(r"(\d{3}); ✓ for its own `\{name\}`", cell):
                    cells[kind] = ("own name", int(m.group(1)))
                else:
                    raise AssertionError(f"protocol.md §2.2: cannot read the cell {cell!r} ({level}, {kind})")
            table[level] = cells
        return table
    raise AssertionError("protocol.md has no table after an \"authz-matrix\" marker (§2.2)")


def documented_routes():
    """{(method, path below /api/v1): who} from every endpoint table of protocol.md."""
    routes = {}
    for head, rows, _ in md_tables(PROTOCOL.read_text()):
        if head[:3] != ["method", "path", "who"]:
            continue
        for row in rows:
            routes[(row[0], row[1].strip("`"))] = row[2]
    return routes


def level_of_who(who):
    if who.startswith("anyone"):
        return "anyone"
    if "self" in who:
        return "self"
    return who


# ---- the server and its objects -------------------------------------------------------------------

class World:
    """One server with one of each object, the credentials of every kind, and the path values."""


def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def resign(server, token, **claims):
    """`token` with other claims, signed with the server's own token secret (read from its
    database), as the server would sign it."""
    with closing(sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True)) as c:
        (secret,) = c.execute("SELECT value FROM settings WHERE name = 'token_secret'").fetchone()
    prefix, payload, _ = token.split(".")
    body = json.loads(unb64url(payload))
    body.update(claims)
    signed = f"{prefix}.{b64url(json.dumps(body, separators=(',', ':')).encode())}"
    mac = hmac.new(base64.b64decode(secret), signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{b64url(mac)}"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("authz")
    broker = Broker(d).start()
    srv = nmserver.Server(d, broker, config={"login_rate_limit": "off", "register_rate_limit": "off"})
    made = []
    try:
        srv.start()
        w = World()
        w.server, w.hosts = srv, made
        srv.create_network("office", "10.99.0.0/24")
        w.key = srv.create_key(["office"], name="authz", unlimited=True, tags=["laptop"])
        for name, ep in (("alpha", "198.18.0.1"), ("beta", "198.18.0.2")):
            h = TestHost(name, endpoints=[ep])
            made.append(h)
            h.register(w.key["token"])
        w.alpha, w.beta = made
        nodes = {n["host_id"]: n["id"] for n in srv.admin("GET", "/nodes", expect=200)}
        w.node, w.node2 = nodes[w.alpha.host_id], nodes[w.beta.host_id]
        srv.admin("POST", "/users", json={"username": "alice", "password": "alice-password-1", "role": "user"},
                  expect=201)
        srv.admin("POST", "/networks/office/dns", json={"name": "printer", "ipv4": "10.99.0.50"}, expect=201)
        srv.admin("POST", "/networks/office/nameservers", json={"domain": "corp.example", "servers": ["192.0.2.53"]},
                  expect=201)
        srv.admin("PUT", f"/nodes/{w.node}/ingress", expect=200)
        w.ext = srv.admin("POST", "/networks/office/ext-clients", json={"name": "phone", "gateway": w.node},
                          expect=201)["id"]
        w.rule = srv.admin("POST", "/networks/office/acl/rules",
                           json={"source": f"node:{w.node2}", "destination": "tag:laptop", "action": "deny"},
                           expect=201)["id"]

        admin = srv.admin_login()
        now = int(time.time())
        w.creds = {
            "none": [None],
            "forged": [admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB"),
                       f"nmh.{w.alpha.host_id}.{'x' * 43}", "not-a-credential-of-any-kind"],
            "expired": [resign(srv, admin, iat=now - 7200, exp=now - 3600)],
            "host": [w.alpha.credential],
            "user": [srv.login("alice", "alice-password-1")],
            "admin": [admin],
            "master key": [srv.admin_token()],
        }
        # The expired token is refused for its age, not its form: the one thing it differs in.
        st, body = srv.api("GET", "/networks", token=resign(srv, admin, iat=now - 7200, exp=now + 3600))
        assert st == 200, f"a token re-signed with the server's secret is not accepted: {st} {body!r}"
        yield w
    finally:
        for h in made:
            h.close()
        srv.stop(check=True)
        broker.stop()


@pytest.fixture(autouse=True)
def _logs_on_failure(request):
    # conftest's report hook shows these logs when a test fails.
    if "world" in request.fixturenames:
        w = request.getfixturevalue("world")
        request.node._nm_servers = [w.server]
        request.node._nm_brokers = [w.server.broker]


def params_of(pattern):
    """[(name, previous segment)] of a path pattern's {parameters}."""
    parts = pattern.split("/")
    return [(p[1:-1], parts[i - 1]) for i, p in enumerate(parts) if p.startswith("{")]


def existing(w, name, prev, self_name="alice"):
    """The fixture's object for a parameter, or None when the test does not know it."""
    if name == "net":
        return "office"
    if name == "name":
        return {"users": self_name, "dns": "printer"}.get(prev)
    if name == "domain":
        return {"nameservers": "corp.example"}.get(prev)
    if name == "id":
        return {"hosts": w.alpha.host_id, "nodes": w.node, "enrollment-keys": w.key["id"],
                "ext-clients": w.ext, "rules": w.rule}.get(prev)
    return None


def fill(pattern, values):
    out = pattern
    for name, value in values.items():
        out = out.replace("{" + name + "}", value, 1)
    return out


def valid_body(w, method, pattern):
    """A body the handler would accept: a request that passed the check by mistake would write."""
    bodies = {
        ("POST", "/networks"): {"name": "authz", "ipv4_range": "10.77.0.0/24"},
        ("PUT", "/networks/{net}"): {"mtu": 1300},
        ("PUT", "/hosts/{id}"): {"mtu": 1300},
        ("POST", "/networks/{net}/nameservers"): {"domain": "authz.example", "servers": ["192.0.2.54"]},
        ("PUT", "/networks/{net}/nameservers/{domain}"): {"servers": ["192.0.2.55"]},
        ("PUT", "/host/networks/{net}/connected"): {"connected": False},
        ("POST", "/enrollment-keys"): {"name": "authz", "networks": ["office"]},
        ("POST", "/users"): {"username": "mallory", "password": "mallory-password-1", "role": "admin"},
        ("PUT", "/users/{name}"): {"role": "admin"},
        ("POST", "/networks/{net}/dns"): {"name": "authz", "ipv4": "10.99.0.77"},
        ("PUT", "/networks/{net}/acl"): {"default": "deny"},
        ("POST", "/networks/{net}/acl/rules"): {"source": "*", "destination": "*", "action": "deny"},
        ("PUT", "/nodes/{id}/tags"): {"tags": ["authz"]},
        ("PUT", "/nodes/{id}/egress"): {"ranges": ["192.168.77.0/24"], "nat": True},
        ("PUT", "/nodes/{id}/relay"): {"relayed": [w.node2]},
        ("PUT", "/nodes/{id}/use-internet-gateway"): {"gateway": w.node2},
        ("PUT", "/host/networks/{net}/use-internet-gateway"): {"gateway": None},
        ("POST", "/networks/{net}/ext-clients"): {"name": "authz", "gateway": w.node},
        ("PUT", "/ext-clients/{id}"): {"enabled": False},
        ("PUT", "/host"): {"type": "checkin", "version": "9.9.9", "endpoints": ["198.18.0.77"]},
        ("POST", "/host/networks"): {"token": w.key["token"]},
        ("POST", "/login"): {"username": "admin", "password": nmserver.Server.ADMIN_PASSWORD},
    }
    return bodies.get((method, pattern))


def call(w, method, path, token, body):
    kw = {} if body is None else {"json": body}
    return w.server.api(method, path, token=token, **kw)


def message(body):
    return body.get("error", {}).get("message", "") if isinstance(body, dict) else ""


def check_refused(w, method, path, token, body, want, kind):
    before = w.server.db_dump()
    status, answer = call(w, method, path, token, body)
    assert status == want, f"{kind}: {method} {path} answered {status}, §2.2 says {want}: {answer!r}"
    msg = message(answer).lower()
    # The refusal is for the documented reason, not another one.
    if kind == "expired" and want == 401:
        assert "expired" in msg, f"{kind}: {method} {path}: 401 for another reason: {msg!r}"
    if kind == "forged" and want == 401:
        assert "invalid" in msg, f"{kind}: {method} {path}: 401 for another reason: {msg!r}"
    w.server.assert_db_unchanged(before, f"{kind}: refused {method} {path}")


def check_allowed(w, route, pattern, token, kind, self_name=None):
    method = route["method"]
    params = params_of(pattern)
    if method == "GET":
        values = {n: existing(w, n, prev, self_name or "alice") for n, prev in params}
        known = all(values.values())
        values = {n: v or MISSING_NAME for n, v in values.items()}
        path = fill(pattern, values)
        status, answer = call(w, method, path, token, None)
        if known:
            assert status == 200, f"{kind}: GET {path} answered {status}: {answer!r}"
    else:
        # Objects that do not exist (one's own name on a `self` route) and a body with an unknown
        # member: refused by the handler, after the access check, without a write.
        values = {}
        for n, prev in params:
            if self_name and n == "name" and prev == "users":
                values[n] = self_name
            elif n != "id":
                values[n] = MISSING_NAME
            else:
                values[n] = MISSING_UUID
        path = fill(pattern, values)
        if not params and method == "DELETE":
            if kind != "host":
                pytest.fail(f"{method} {pattern} deletes the caller: the test knows how to call it safely "
                            f"only with a host credential, not {kind!r}")
            h = TestHost(f"zz-throwaway-{len(w.hosts)}", endpoints=["198.18.0.9"])
            w.hosts.append(h)
            h.register(w.key["token"])
            status, answer = call(w, method, path, h.credential, None)
            # The deletion queues the broker account's removal: let it finish, so that the next
            # cell's "before" is what stays.
            if status < 300:
                w.server.wait_account(h.host_id, present=False)
                w.server.wait_log(lambda: not any(w.server.db_dump(w.server.QUEUE_TABLES).values()), 10,
                                  "the account clean-up queue to empty")
        else:
            before = w.server.db_dump()
            status, answer = call(w, method, path, token, INVALID_BODY)
            w.server.assert_db_unchanged(before, f"{kind}: {method} {path} with an invalid body")
    assert status not in (401, 403), f"{kind}: {method} {path}: §2.2 allows it, got {status}: {answer!r}"
    assert status != 405 and not (status == 404 and message(answer).startswith("No such resource")), \
        f"--list-routes names {method} {pattern}, but the router does not know it: {status} {answer!r}"


def test_route(world, route):
    """One route × every kind of credential."""
    if isinstance(route, str):
        pytest.fail(route)
    w = world
    table = expectations()
    level = route["access"]
    assert level in table, (f"{route_id(route)} has the access level {level!r}, which docs/protocol.md §2.2 "
                            f"does not define (known: {sorted(table)}): add it to the matrix there")
    pattern = route["path"][len(API):]
    method = route["method"]
    params = params_of(pattern)
    refused_values = {n: existing(w, n, prev) or (MISSING_UUID if n == "id" else MISSING_NAME)
                      for n, prev in params}
    body = valid_body(w, method, pattern)

    for kind in KINDS:
        cell = table[level][kind]
        for token in w.creds[kind]:
            if cell[0] == "status":
                check_refused(w, method, fill(pattern, refused_values), token, body, cell[1], kind)
            elif cell[0] == "own name":
                # Another user's {name}: refused; its own: allowed.
                other = {**refused_values, "name": "admin"}
                check_refused(w, method, fill(pattern, other), token, body, cell[1], kind)
                check_allowed(w, route, pattern, token, kind, self_name="alice")
            else:
                check_allowed(w, route, pattern, token, kind)


def test_every_level_has_a_row():
    """The matrix names every access level the server uses (else test_route fails for each route of
    it, with the same message)."""
    if isinstance(ROUTES, str):
        pytest.fail(ROUTES)
    used = {r["access"] for r in ROUTES}
    missing = used - set(expectations())
    assert not missing, f"access levels without a row in docs/protocol.md §2.2: {sorted(missing)}"


def test_every_route_is_documented():
    """Each route of the router is in an endpoint table of docs/protocol.md, with the same "who";
    and each documented endpoint is a route."""
    if isinstance(ROUTES, str):
        pytest.fail(ROUTES)
    docs = documented_routes()
    served = {(r["method"], r["path"][len(API):]): r["access"] for r in ROUTES}
    undocumented = sorted(f"{m} {p} ({a})" for (m, p), a in served.items() if (m, p) not in docs)
    assert not undocumented, f"routes missing from docs/protocol.md's endpoint tables: {undocumented}"
    wrong = sorted(f"{m} {p}: docs say {docs[(m, p)]!r}, the router {a!r}" for (m, p), a in served.items()
                   if level_of_who(docs[(m, p)]) != a)
    assert not wrong, f"the docs' \"who\" differs from the router's access level: {wrong}"
    extra = sorted(f"{m} {p}" for (m, p) in docs if (m, p) not in served)
    assert not extra, f"documented endpoints the router does not have: {extra}"
