"""nmctl against a real netmakerd: what an admin types changes what the server holds, tables and
--json tell the truth, the stored login is private and used only for its server, the server's
refusals reach the user with its message, and the exit codes say who was at fault (1 the server
refused, 2 the command line, 3 no server)."""

import json
import os
import pty
import re
import select
import stat
import subprocess
import time

import pytest

from nmtest.client import decode_token
from nmtest.server import binary, free_port

ADMIN_PW = "alice-password-1"


@pytest.fixture
def nmctl(server, tmp_path):
    """nmctl(*args, input=None, env={...}, master=True, pin=True) -> CompletedProcess. HOME and
    XDG_CONFIG_HOME are the test's; NMCTL_SERVER points at `server`; with master=True the master
    key comes from $NMCTL_MASTER_KEY; with pin=True $NMCTL_PIN is the server's pin."""
    exe = str(binary("nmctl"))
    home = tmp_path / "home"
    home.mkdir()

    def run(*args, input=None, env=None, master=True, server_url=True, pin=True, timeout=30):
        e = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
        e.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "cfg"), LC_ALL="C")
        if server_url:
            e["NMCTL_SERVER"] = server.url
        if pin:
            e["NMCTL_PIN"] = server.pin
        if master:
            e["NMCTL_MASTER_KEY"] = server.MASTER_KEY
        e.update(env or {})
        return subprocess.run([exe, *args], input=input, env=e, capture_output=True, text=True,
                              timeout=timeout, stdin=None if input is not None else subprocess.DEVNULL)

    run.home = home
    run.token_file = home / "cfg" / "nmctl" / "token"
    return run


def ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    return r


def refused(r, *words):
    assert r.returncode == 1, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert "Error: " in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    return r


def usage(r, *words):
    assert r.returncode == 2, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    return r


def rows(table_text):
    """The rows of an aligned table as lists of cells (split on runs of 2+ spaces)."""
    lines = [line for line in table_text.splitlines() if line.strip()]
    return [re.split(r"\s{2,}", line.strip()) for line in lines]


def items(list_text):
    """"Key: value" lines as a dict."""
    out = {}
    for line in list_text.splitlines():
        k, _, v = line.partition(":")
        out[k.strip()] = v.strip()
    return out


def test_health_and_unreachable(nmctl, server):
    r = ok(nmctl("health", master=False))
    h = items(r.stdout)
    assert h["Status"] == "ok" and h["Database"] == "sqlite" and h["Broker"] == "connected"
    assert json.loads(ok(nmctl("--json", "health")).stdout)["status"] == "ok"
    # Nobody listens there: exit 3, and it says where it tried.
    url = f"http://127.0.0.1:{free_port()}"
    r = nmctl("--server", url, "network", "list")
    assert r.returncode == 3, r
    assert "cannot reach the server at " + url in r.stderr.lower()


def test_usage_errors_never_reach_the_server(nmctl):
    dead = {"NMCTL_SERVER": f"http://127.0.0.1:{free_port()}"}  # would be exit 3 if contacted
    usage(nmctl(env=dead))
    usage(nmctl("frobnicate", env=dead), "unknown command")
    usage(nmctl("network", env=dead))
    usage(nmctl("network", "frob", env=dead), "unknown command")
    usage(nmctl("network", "create", env=dead), "NAME")
    usage(nmctl("network", "create", "x", env=dead), "--ipv4")
    usage(nmctl("network", "create", "x", "--ipv4", "10.1.0.0/24", "--mtu", "99999", env=dead),
          '--mtu "99999"', "1280 to 9000")
    usage(nmctl("network", "update", "x", env=dead), "at least one")
    usage(nmctl("network", "list", "--bogus", env=dead), "--bogus")
    usage(nmctl("key", "create", "k", env=dead), "--network")
    usage(nmctl("key", "create", "k", "--network", "n", "--uses", "2", "--unlimited", env=dead), "either")
    usage(nmctl("key", "create", "k", "--network", "n", "--expires", "soon", env=dead), '"soon"')
    usage(nmctl("user", "create", "bob", "--role", "root", env=dead), '"root"')
    usage(nmctl("--server", "ftp://x", "health"), "invalid server URL")
    usage(nmctl("node", "show", env=dead), "ID")
    # Help is not an error, and every command has one.
    r = ok(nmctl("--help", env=dead))
    assert "Exit status" in r.stdout
    for cmd in (["network", "create"], ["key", "create"], ["host", "join"], ["node", "list"],
                ["user", "update"], ["login"], ["health"]):
        r = ok(nmctl(*cmd, "--help", env=dead))
        assert r.stdout.startswith("nmctl " + " ".join(cmd)), (cmd, r.stdout)
    assert "list" in ok(nmctl("network", "--help", env=dead)).stdout
    assert ok(nmctl("--version", env=dead)).stdout.startswith("nmctl ")


def test_networks(nmctl, server):
    r = ok(nmctl("network", "create", "office", "--ipv4", "10.99.0.0/24", "--ipv6", "fd00:99::/64",
                 "--mtu", "1380", "--keepalive", "25"))
    assert items(r.stdout)["IPv4 range"] == "10.99.0.0/24"
    net = server.admin("GET", "/networks/office", expect=200)
    assert net["mtu"] == 1380 and net["keepalive"] == 25 and net["ipv6_range"] == "fd00:99::/64"
    ok(nmctl("network", "create", "lab", "--ipv4", "10.98.0.0/24"))

    table = rows(ok(nmctl("network", "list")).stdout)
    assert table[0][:3] == ["NAME", "IPV4", "IPV6"]
    by_name = {row[0]: row for row in table[1:]}
    assert set(by_name) == {"office", "lab"}
    assert by_name["office"][1:5] == ["10.99.0.0/24", "fd00:99::/64", "51821", "1380"]
    assert by_name["lab"][2] == "-"
    as_json = json.loads(ok(nmctl("network", "list", "--json")).stdout)
    assert sorted(n["name"] for n in as_json) == ["lab", "office"]

    # Options may follow the arguments; the server's view changes.
    ok(nmctl("network", "update", "lab", "--mtu", "1300", "--dns-domain", "lab.example"))
    lab = server.admin("GET", "/networks/lab", expect=200)
    assert lab["mtu"] == 1300 and lab["dns_domain"] == "lab.example"
    assert json.loads(ok(nmctl("--json", "network", "show", "lab")).stdout) == lab

    # The server's refusals, with its own words.
    refused(nmctl("network", "create", "bad", "--ipv4", "10.97.0.0/33"), "10.97.0.0/33")
    refused(nmctl("network", "create", "office2", "--ipv4", "10.99.0.0/25"))  # overlaps office
    refused(nmctl("network", "show", "nope"), "nope")
    r = refused(nmctl("network", "show", "nope", "--json"))
    assert json.loads(r.stdout)["error"]["code"] == "not-found"

    ok(nmctl("network", "delete", "lab"))
    assert server.admin("GET", "/networks/lab")[0] == 404
    refused(nmctl("network", "delete", "lab"))


def test_keys_hosts_and_nodes(nmctl, server, hosts):
    ok(nmctl("network", "create", "office", "--ipv4", "10.99.0.0/24"))
    ok(nmctl("network", "create", "lab", "--ipv4", "10.98.0.0/24"))
    r = ok(nmctl("key", "create", "laptops", "--network", "office", "--uses", "2", "--tag", "laptop",
                 "--expires", "+7d"))
    # Only the token, so that TOKEN=$(nmctl key create ...) works.
    token = r.stdout.strip()
    assert "\n" not in token and r.stderr == ""
    t = decode_token(token)
    assert t["api"] == server.url and t["v"] == 2 and t["pin"] == server.pin
    [key] = server.admin("GET", "/enrollment-keys", expect=200)
    assert key["token"] == token and key["uses_remaining"] == 2 and key["tags"] == ["laptop"]

    table = rows(ok(nmctl("key", "list")).stdout)
    assert table[1][:4] == [key["id"], "laptops", "office", "2"]
    shown = items(ok(nmctl("key", "show", key["id"])).stdout)
    assert shown["Token"] == token and shown["Uses left"] == "2"
    unlimited = json.loads(ok(nmctl("--json", "key", "create", "--name", "servers", "--network", "office,lab",
                                    "--unlimited")).stdout)
    assert unlimited["unlimited"] is True and unlimited["networks"] == ["office", "lab"]

    # A host joins with the token nmctl printed; nmctl then finds it by name.
    a = hosts("alpha")
    a.register(token)
    table = rows(ok(nmctl("host", "list")).stdout)
    assert table[0][:2] == ["ID", "NAME"] and table[1][:2] == [a.host_id, "alpha"]
    shown = ok(nmctl("host", "show", "alpha")).stdout
    assert a.host_id in shown and "office" in shown
    assert a.wg.public_b64 in shown

    node = items(ok(nmctl("host", "join", "alpha", "lab")).stdout)
    assert node["Network"] == "lab" and node["IPv4"].startswith("10.98.0.")
    refused(nmctl("host", "join", "alpha", "lab"))  # already there (409)
    refused(nmctl("host", "show", "nobody-by-that-name"), "nobody-by-that-name")

    table = rows(ok(nmctl("node", "list", "--network", "lab")).stdout)
    assert len(table) == 2 and table[1][1:3] == ["alpha", "lab"]
    assert len(json.loads(ok(nmctl("--json", "node", "list")).stdout)) == 2
    lab_node = table[1][0]
    assert items(ok(nmctl("node", "show", lab_node)).stdout)["Host"] == "alpha"
    ok(nmctl("node", "delete", lab_node))
    assert server.admin("GET", f"/nodes/{lab_node}")[0] == 404

    ok(nmctl("key", "delete", key["id"]))
    assert server.admin("GET", f"/enrollment-keys/{key['id']}")[0] == 404
    ok(nmctl("host", "delete", "alpha"))
    assert server.admin("GET", f"/hosts/{a.host_id}")[0] == 404
    assert "No hosts." in ok(nmctl("host", "list")).stdout


def test_login_stores_a_private_token(nmctl, server):
    ok(nmctl("user", "create", "alice", "--role", "user", "--password-stdin", input=ADMIN_PW + "\n"))
    ok(nmctl("network", "create", "office", "--ipv4", "10.99.0.0/24"))

    # A wrong password stores nothing.
    refused(nmctl("login", "alice", "--password-stdin", input="wrong-password\n", master=False))
    assert not nmctl.token_file.exists()

    r = ok(nmctl("login", "alice", "--password-stdin", input=ADMIN_PW + "\n", master=False))
    assert "as alice (user)" in r.stdout
    st = nmctl.token_file.stat()
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(nmctl.token_file.parent.stat().st_mode) == 0o700
    assert ADMIN_PW not in nmctl.token_file.read_text()

    # Later commands use it, even without NMCTL_SERVER: the login remembers its server.
    table = rows(ok(nmctl("network", "list", master=False, server_url=False)).stdout)
    assert table[1][0] == "office"
    # A user may not do admin things: the server's message comes through, exit 1.
    refused(nmctl("user", "list", master=False), "admin")
    refused(nmctl("network", "delete", "office", master=False))
    assert server.admin("GET", "/networks/office")[0] == 200
    # It may change its own password; the server then wants a new login (even within the second
    # of the login: docs/protocol.md §2.2), and nmctl says so.
    ok(nmctl("user", "update", "alice", "--password-stdin", input="alice-new-password\n", master=False))
    server.login("alice", "alice-new-password")
    r = nmctl("network", "list", master=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Hint: the stored login may have expired" in r.stderr
    ok(nmctl("login", "alice", "--password-stdin", input="alice-new-password\n", master=False))
    ok(nmctl("network", "list", master=False))

    # Another server never gets this token.
    other = f"http://127.0.0.1:{free_port()}"
    r = nmctl("--server", other, "network", "list", master=False)
    assert r.returncode == 3

    # A token file others can read is not used.
    os.chmod(nmctl.token_file, 0o644)
    r = refused(nmctl("network", "list", master=False), "Hint: log in")
    assert "readable by others" in r.stderr
    os.chmod(nmctl.token_file, 0o600)
    ok(nmctl("network", "list", master=False))

    ok(nmctl("logout", master=False))
    assert not nmctl.token_file.exists()
    refused(nmctl("network", "list", master=False), "Hint: log in")


def run_in_pty(argv, env, answers, timeout=20):
    """Runs argv with a pseudo-terminal as its controlling terminal (so /dev/tty is the pty);
    writes each answer after the prompt that precedes it. Returns (exit status, everything the
    terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            shown += data
        while pending and pending[0][0].encode() in shown.split(b"\x00")[-1]:
            prompt, answer = pending.pop(0)
            shown += b"\x00"  # answer each prompt once
            os.write(fd, answer.encode() + b"\n")
    # Never hang the test run on a program that waits for more.
    end = max(deadline, time.monotonic()) + 5
    done, status = os.waitpid(pid, os.WNOHANG)
    while done == 0 and time.monotonic() < end:
        time.sleep(0.02)
        done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.replace(b"\x00", b"").decode(errors="replace")


def test_login_asks_without_echo(nmctl, server):
    ok(nmctl("user", "create", "alice", "--password-stdin", input=ADMIN_PW + "\n"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
    env.update(HOME=str(nmctl.home), XDG_CONFIG_HOME=str(nmctl.home / "cfg"), NMCTL_SERVER=server.url)
    known = nmctl.home / "cfg" / "nmctl" / "known-servers"
    # The first login to this self-signed server shows its key and asks, like ssh; "no" sends nothing.
    code, shown = run_in_pty([str(binary("nmctl")), "login"], env,
                             [("Username:", "alice"), ("Trust this server", "no")])
    assert code == 1 and server.pin in shown and "Not trusted" in shown, shown
    assert not known.exists() and not nmctl.token_file.exists()
    assert "POST /api/v1/login" not in server.log()
    code, shown = run_in_pty([str(binary("nmctl")), "login"], env,
                             [("Username:", "alice"), ("Trust this server", "yes"), ("Password for alice", ADMIN_PW)])
    assert code == 0, shown
    assert "alice" in shown and "Logged in" in shown
    assert ADMIN_PW not in shown, "the password was echoed"
    assert nmctl.token_file.exists()
    # The key is remembered (0600) and later commands check it without asking.
    assert f"{server.url} {server.pin}" in known.read_text() and known.stat().st_mode & 0o777 == 0o600
    ok(nmctl("network", "list", master=False, pin=False))
    # user create asks twice; different answers are refused and nothing is created.
    env["NMCTL_MASTER_KEY"] = server.MASTER_KEY
    code, shown = run_in_pty([str(binary("nmctl")), "user", "create", "bob"], env,
                             [("Password for the new user bob", "bob-password-1"), ("Again", "bob-password-2")])
    assert code == 2 and "differ" in shown, shown
    assert "bob-password" not in shown
    assert server.admin("GET", "/users/bob")[0] == 404


def test_credential_precedence(nmctl, server):
    ok(nmctl("user", "create", "alice", "--password-stdin", input=ADMIN_PW + "\n"))
    alice_token = server.login("alice", ADMIN_PW)
    # $NMCTL_TOKEN is a user token: alice may read networks, not users.
    ok(nmctl("network", "list", master=False, env={"NMCTL_TOKEN": alice_token}))
    refused(nmctl("user", "list", master=False, env={"NMCTL_TOKEN": alice_token}))
    # The master key (env) wins over $NMCTL_TOKEN; --master-key wins over the env.
    ok(nmctl("user", "list", env={"NMCTL_TOKEN": alice_token}))
    refused(nmctl("--master-key", "not-the-key", "user", "list"), "")
    ok(nmctl("user", "list", "--master-key", server.MASTER_KEY, master=False))
    # No credential at all: the server says so and nmctl says how to get one.
    refused(nmctl("network", "list", master=False), "Hint: log in")


def test_users(nmctl, server):
    r = ok(nmctl("user", "create", "bob", "--role", "admin", "--password-stdin", input="bob-password-1\n"))
    assert items(r.stdout)["Role"] == "admin"
    table = rows(ok(nmctl("user", "list")).stdout)
    assert {row[0]: row[1] for row in table[1:]} == {"admin": "admin", "bob": "admin"}
    ok(nmctl("user", "update", "bob", "--role", "user"))
    assert server.admin("GET", "/users/bob", expect=200)["role"] == "user"
    assert json.loads(ok(nmctl("--json", "user", "show", "bob")).stdout)["role"] == "user"
    refused(nmctl("user", "create", "bob", "--password-stdin", input="bob-password-2\n"))  # exists
    refused(nmctl("user", "create", "carol", "--password-stdin", input="short\n"), "password")
    usage(nmctl("user", "create", "carol", "--password-stdin", input=""), "no password")
    ok(nmctl("user", "delete", "bob"))
    refused(nmctl("user", "show", "bob"))
    # The last admin stays.
    refused(nmctl("user", "delete", "admin"))
    assert server.admin("GET", "/users/admin")[0] == 200


def test_login_pins_the_server_like_ssh(nmctl, server, make_server, broker):
    """Without a terminal, a first login to a self-signed server is refused unless the pin is
    given (or --accept-new); the pin is then remembered, and a server that later presents another
    key (a second netmakerd on the same address) is refused with a warning, nothing sent."""
    ok(nmctl("user", "create", "alice", "--password-stdin", input=ADMIN_PW + "\n"))
    known = nmctl.home / "cfg" / "nmctl" / "known-servers"

    r = nmctl("login", "alice", "--password-stdin", input=ADMIN_PW + "\n", master=False, pin=False)
    assert r.returncode == 1 and server.pin in r.stderr and "--pin" in r.stderr, r
    assert not known.exists() and not nmctl.token_file.exists()

    bad = "sha256//" + "A" * 43 + "="
    r = nmctl("login", "alice", "--password-stdin", "--pin", bad, input=ADMIN_PW + "\n", master=False, pin=False)
    assert r.returncode == 3 and "not the pinned" in r.stderr and bad in r.stderr, r
    assert not known.exists() and not nmctl.token_file.exists()

    ok(nmctl("login", "alice", "--password-stdin", "--pin", server.pin, input=ADMIN_PW + "\n", master=False,
             pin=False))
    assert known.read_text().splitlines()[-1] == f"{server.url} {server.pin}"
    ok(nmctl("network", "list", master=False, pin=False))

    # Another server (its own key) where this one was: refused before the token goes out.
    port = server.port
    server.stop()
    other = make_server(broker, config={"listen": f"127.0.0.1:{port}"})
    assert other.pin != server.pin
    before = other.log()
    r = nmctl("network", "list", master=False, pin=False)
    assert r.returncode == 3 and "WARNING" in r.stderr and str(known) in r.stderr, r
    assert "GET /api/v1/networks" not in other.log()[len(before):]

    # Plain HTTP to another machine is refused before any connection; --insecure allows it.
    r = nmctl("--server", "http://198.18.0.1:9", "health", master=False, pin=False)
    assert r.returncode == 2 and "plain HTTP" in r.stderr and "--insecure" in r.stderr, r
