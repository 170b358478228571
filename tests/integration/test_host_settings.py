"""A host's settings after it joined (PUT /hosts/{id}: name, listen port, static endpoint, persistent
keepalive, MTU; docs/protocol.md §2.4), seen by test hosts that speak the protocol: bad values are
refused with a message naming the value and what is accepted, and change nothing; only admins may
change them; each change reaches exactly the hosts that see it (the host's endpoint, port, name and
keepalive its peers; its MTU and port only itself; hosts of other networks nothing); they survive a
server restart. Also: a network's keepalive change reaches every peer entry, the host's Connect and
Disconnect (its peers drop it and take it back), and online/offline/stale hosts by check-in age with
the removal of stale hosts."""

import re
import subprocess
import time

import pytest

from nmtest.client import wait_until
from nmtest.http import check_error


def joined(hosts, key, names, first=1):
    made = []
    for i, name in enumerate(names):
        h = hosts(name, endpoints=[f"198.18.0.{first + i}"], listen_port=51821 + i)
        h.register(key["token"])
        assert h.connect() == 0
        made.append(h)
    return made


def updates_of(h, target, after):
    """The entries of `target` in `peers` updates `h` received since message `after`."""
    return [p for m in h.messages[after:] if m["type"] == "peers"
            for p in (m.get("update") or []) if p["public_key"] == target.wg.public_b64]


def marks(*hs):
    return {h.name: len(h.messages) for h in hs}


@pytest.fixture
def mesh(server, hosts):
    """alpha, beta and gamma in office; delta only in lab (with alpha)."""
    server.create_network("office", "10.99.0.0/24")
    server.create_network("lab", "10.98.0.0/24", listen_port=51830)
    a, b, c = joined(hosts, server.create_key(["office"], unlimited=True), ["alpha", "beta", "gamma"])
    [d] = joined(hosts, server.create_key(["lab"], unlimited=True), ["delta"], first=4)
    server.admin("POST", f"/hosts/{a.host_id}/networks/lab", expect=201)
    a.wait_for(lambda h: "lab" in h.networks and d.wg.public_b64 in h.peers("lab"), what="alpha in lab")
    for h in (b, c):
        h.wait_for(lambda x: a.wg.public_b64 in x.peers("office"), what="alpha as a peer")
    d.wait_for(lambda x: a.wg.public_b64 in x.peers("lab"), what="alpha in lab")
    return a, b, c, d


@pytest.mark.parametrize("body, mentions", [
    ({"name": "Bad_Name"}, ["Bad_Name", "a-z"]),
    ({"name": "x" * 64}, ["x" * 20, "1-63"]),
    ({"name": None}, ["name", "null"]),
    ({"listen_port": 0}, ["listen_port", "1-65535"]),
    ({"listen_port": 65536}, ["listen_port", "65536"]),
    ({"listen_port": "51900"}, ["listen_port", "integer"]),
    ({"endpoint": "203.0.113.7:51900"}, ["203.0.113.7:51900", "without a port"]),
    ({"endpoint": "vpn.example.com"}, ["vpn.example.com", "IPv4 or IPv6"]),
    ({"endpoint": "127.0.0.1"}, ["127.0.0.1", "loopback"]),
    ({"endpoint": "0.0.0.0"}, ["0.0.0.0", "unspecified"]),
    ({"endpoint": "fe80::1"}, ["fe80::1", "link-local"]),
    ({"keepalive": -1}, ["keepalive", "0-3600"]),
    ({"keepalive": 3601}, ["keepalive", "3601"]),
    ({"mtu": 1279}, ["mtu", "1280-9000"]),
    ({"mtu": 9001}, ["mtu", "9001"]),
    ({"mtu": 1400.5}, ["mtu", "integer"]),
    ({"mtu": 1400, "colour": "red"}, ["colour"]),
    ({}, ["Nothing to change", "listen_port"]),
])
def test_bad_settings_are_refused(server, hosts, body, mentions):
    server.create_network("office", "10.99.0.0/24")
    [a] = joined(hosts, server.create_key(["office"], unlimited=True), ["alpha"])
    before = server.db_dump()
    status, resp = server.admin("PUT", f"/hosts/{a.host_id}", json=body)
    check_error(status, resp, 400, ("invalid-argument", "invalid-json"), mentions)
    server.assert_db_unchanged(before)
    a.no_message(wait=0.2)


def test_who_may_change_settings(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    [a] = joined(hosts, server.create_key(["office"], unlimited=True), ["alpha"])
    server.admin("POST", "/users", json={"username": "uma", "password": "user-password-1", "role": "user"},
                 expect=201)
    tok = server.login("uma", "user-password-1")
    # Users read hosts (with their settings and status), only admins change them.
    status, got = server.api("GET", f"/hosts/{a.host_id}", token=tok)
    assert status == 200 and got["settings"] == {"listen_port": None, "endpoint": None, "keepalive": None,
                                                 "mtu": None}
    check_error(*server.api("PUT", f"/hosts/{a.host_id}", json={"mtu": 1300}, token=tok), 403, "forbidden")
    check_error(*server.api("PUT", f"/hosts/{a.host_id}", json={"mtu": 1300}), 401, "unauthenticated")
    # A host may not change its own settings (its credential is for /host only).
    check_error(*a.api("PUT", f"/hosts/{a.host_id}", json={"mtu": 1300}), 403, "forbidden")
    check_error(*server.admin("PUT", "/hosts/00000000-0000-4000-8000-000000000000", json={"mtu": 1300}), 404,
                "not-found")
    assert server.admin("GET", f"/hosts/{a.host_id}", expect=200)["settings"]["mtu"] is None


def test_endpoint_and_keepalive_reach_its_peers_only(server, mesh):
    a, b, c, d = mesh
    m = marks(a, b, c, d)
    h = server.admin("PUT", f"/hosts/{a.host_id}", json={"endpoint": "203.0.113.7"}, expect=200)
    assert h["settings"]["endpoint"] == "203.0.113.7" and h["endpoints"] == ["198.18.0.1"]
    # Every peer hears the endpoint, in each network with that network's port of alpha.
    for peer, net, port in ((b, "office", 51821), (c, "office", 51821), (d, "lab", 51830)):
        peer.wait_for(lambda x: x.peers(net)[a.wg.public_b64]["endpoint"] == f"203.0.113.7:{port}",
                      what=f"alpha's static endpoint at {peer.name}")
        assert len(updates_of(peer, a, m[peer.name])) == 1
    # alpha itself hears nothing: nothing of its own or of its view changed.
    a.no_message(after=m["alpha"], wait=0.3)
    # Whatever alpha reports afterwards, the admin's endpoint stays.
    m = marks(b)
    a.checkin(endpoints=["198.18.0.99"])
    wait_until(lambda: server.admin("GET", f"/hosts/{a.host_id}", expect=200)["endpoints"] == ["198.18.0.99"],
               5, "the check-in")
    b.no_message("peers", after=m["beta"], wait=0.3)
    assert b.peers("office")[a.wg.public_b64]["endpoint"] == "203.0.113.7:51821"

    # Keepalive: the pairs alpha is in, both ways; nobody else's.
    m = marks(a, b, c, d)
    server.admin("PUT", f"/hosts/{a.host_id}", json={"keepalive": 7}, expect=200)
    for peer, net in ((b, "office"), (c, "office"), (d, "lab")):
        peer.wait_for(lambda x: x.peers(net)[a.wg.public_b64]["keepalive"] == 7, what=f"keepalive at {peer.name}")
    a.wait_for(lambda x: {p["keepalive"] for n in ("office", "lab") for p in x.peers(n).values()} == {7},
               what="alpha's own pairs")
    # beta's entry of gamma is not alpha's business.
    assert b.peers("office")[c.wg.public_b64]["keepalive"] == 20
    assert not [x for x in b.messages[m["beta"]:] if x["type"] == "peers"
                for p in x.get("update") or [] if p["public_key"] != a.wg.public_b64]
    assert all(x["type"] == "peers" for x in a.messages[m["alpha"]:]), a.describe_messages()

    # null puts both back: the reported address, the network's keepalive.
    server.admin("PUT", f"/hosts/{a.host_id}", json={"endpoint": None, "keepalive": None}, expect=200)
    b.wait_for(lambda x: x.peers("office")[a.wg.public_b64]["endpoint"] == "198.18.0.99:51821" and
               x.peers("office")[a.wg.public_b64]["keepalive"] == 20, what="the defaults again")
    assert server.admin("GET", f"/hosts/{a.host_id}", expect=200)["settings"] == {
        "listen_port": None, "endpoint": None, "keepalive": None, "mtu": None}
    for h in (a, b, c, d):
        assert h.serial_errors == [], (h.name, h.serial_errors)


def test_mtu_reaches_the_host_only(server, mesh):
    a, b, c, d = mesh
    m = marks(a, b, c, d)
    server.admin("PUT", f"/hosts/{a.host_id}", json={"mtu": 1380}, expect=200)
    for net in ("office", "lab"):
        a.wait_message("network-changed", lambda x: x["network"]["network"] == net and x["network"]["mtu"] == 1380,
                       after=m["alpha"])
    for h in (b, c, d):
        h.no_message(after=m[h.name], wait=0.2)
    # A network MTU change no longer reaches alpha, whose own MTU wins; it reaches the others.
    m = marks(a, b, c)
    server.admin("PUT", "/networks/office", json={"mtu": 1300}, expect=200)
    for h in (b, c):
        h.wait_message("network-changed", lambda x: x["network"]["mtu"] == 1300, after=m[h.name])
    a.no_message(after=m["alpha"], wait=0.3)
    # Back to the network's.
    server.admin("PUT", f"/hosts/{a.host_id}", json={"mtu": None}, expect=200)
    a.wait_message("network-changed", lambda x: x["network"]["network"] == "office" and x["network"]["mtu"] == 1300,
                   after=m["alpha"])
    a.wait_message("network-changed", lambda x: x["network"]["network"] == "lab" and x["network"]["mtu"] == 1420,
                   after=m["alpha"])


def test_listen_port_for_every_network_of_the_host(server, mesh):
    a, b, c, d = mesh
    nodes = {n["network"]: n for n in server.admin("GET", f"/hosts/{a.host_id}", expect=200)["nodes"]}
    assert (nodes["office"]["listen_port"], nodes["lab"]["listen_port"]) == (51821, 51830)
    m = marks(a, b, c, d)
    h = server.admin("PUT", f"/hosts/{a.host_id}", json={"listen_port": 51900}, expect=200)
    # One link per network: the link with the lowest port before gets the port, the next the one after it.
    assert h["settings"]["listen_port"] == 51900
    assert {n["network"]: n["listen_port"] for n in h["nodes"]} == {"office": 51900, "lab": 51901}
    a.wait_for(lambda x: x.networks["office"]["state"]["listen_port"] == 51900 and
               x.networks["lab"]["state"]["listen_port"] == 51901, what="alpha's new ports")
    for peer, net, port in ((b, "office", 51900), (c, "office", 51900), (d, "lab", 51901)):
        peer.wait_for(lambda x: x.peers(net)[a.wg.public_b64]["endpoint"] == f"198.18.0.1:{port}",
                      what=f"alpha's new port at {peer.name}")
    # A check-in with the old ports (one crossing the change) does not undo the admin's ports.
    a.checkin(listen_ports={"office": 51821, "lab": 51830})
    time.sleep(0.3)
    assert {n["network"]: n["listen_port"] for n in server.admin("GET", f"/hosts/{a.host_id}", expect=200)[
        "nodes"]} == {"office": 51900, "lab": 51901}
    # A network alpha joins later takes the next port after its own.
    server.create_network("dev", "10.97.0.0/24")
    node = server.admin("POST", f"/hosts/{a.host_id}/networks/dev", expect=201)
    assert node["listen_port"] == 51902
    # null: back to the networks' ports.
    server.admin("PUT", f"/hosts/{a.host_id}", json={"listen_port": None}, expect=200)
    assert {n["network"]: n["listen_port"] for n in server.admin("GET", f"/hosts/{a.host_id}", expect=200)[
        "nodes"]} == {"office": 51821, "lab": 51830, "dev": 51821 + 1}
    b.wait_for(lambda x: x.peers("office")[a.wg.public_b64]["endpoint"] == "198.18.0.1:51821",
               what="alpha's network port again")


def test_rename(server, mesh):
    a, b, c, d = mesh
    m = marks(a, b, c, d)
    h = server.admin("PUT", f"/hosts/{a.host_id}", json={"name": "alpha2"}, expect=200)
    assert h["name"] == "alpha2"
    for peer, net in ((b, "office"), (c, "office"), (d, "lab")):
        peer.wait_for(lambda x: x.peers(net)[a.wg.public_b64]["name"] == "alpha2", what=f"the name at {peer.name}")
    for net in ("office", "lab"):
        a.wait_message("network-changed", lambda x: x["network"]["network"] == net and
                       x["network"]["host_name"] == "alpha2", after=m["alpha"])
    # DNS follows: the automatic name is the new one, and only it.
    names = {e["name"] for e in server.admin("GET", "/networks/office/dns", expect=200)}
    assert "alpha2" in names and "alpha" not in names
    assert [n["host_name"] for n in server.admin("GET", "/nodes?network=office", expect=200)
            if n["host_id"] == a.host_id] == ["alpha2"]
    # A custom name of one of its networks is not free for a host.
    server.admin("POST", "/networks/lab/dns", json={"name": "printer", "ipv4": "192.168.50.7"}, expect=201)
    before = server.db_dump()
    check_error(*server.admin("PUT", f"/hosts/{a.host_id}", json={"name": "printer"}), 409, "conflict",
                ["printer", "lab"])
    server.assert_db_unchanged(before)
    # beta is not in lab: the name is free for it (it is no name in office).
    server.admin("PUT", f"/hosts/{b.host_id}", json={"name": "printer"}, expect=200)


def test_settings_survive_a_restart(server, mesh):
    a, b, c, d = mesh
    settings = {"listen_port": 51900, "endpoint": "203.0.113.7", "keepalive": 9, "mtu": 1400}
    server.admin("PUT", f"/hosts/{a.host_id}", json=dict(settings, name="alpha9"), expect=200)
    server.restart()
    h = server.admin("GET", f"/hosts/{a.host_id}", expect=200)
    assert h["settings"] == settings and h["name"] == "alpha9"
    state = a.api("GET", "/host")[1]
    office = {n["network"]: n for n in state["networks"]}["office"]
    assert (office["mtu"], office["listen_port"], office["host_name"]) == (1400, 51900, "alpha9")
    assert {p["keepalive"] for p in office["peers"]} == {9}
    peer = {p["public_key"]: p for p in {n["network"]: n for n in b.api("GET", "/host")[1]["networks"]}[
        "office"]["peers"]}[a.wg.public_b64]
    assert (peer["endpoint"], peer["keepalive"], peer["name"]) == ("203.0.113.7:51900", 9, "alpha9")


def test_network_keepalive_reaches_every_peer_entry(server, mesh):
    """A network's keepalive is in its hosts' peer entries, not only their state: a change must reach
    the entries (as updates), or the links would keep the old keepalive."""
    a, b, c, d = mesh
    server.admin("PUT", f"/hosts/{c.host_id}", json={"keepalive": 5}, expect=200)
    m = marks(a, b, c, d)
    server.admin("PUT", "/networks/office", json={"keepalive": 11}, expect=200)
    b.wait_for(lambda x: x.peers("office")[a.wg.public_b64]["keepalive"] == 11, what="beta's entry of alpha")
    a.wait_for(lambda x: x.peers("office")[b.wg.public_b64]["keepalive"] == 11, what="alpha's entry of beta")
    # gamma's own keepalive wins for its pairs; lab is another network.
    time.sleep(0.3)
    assert b.peers("office")[c.wg.public_b64]["keepalive"] == 5 and a.peers("lab")[d.wg.public_b64]["keepalive"] == 20
    d.no_message(after=m["delta"], wait=0)
    # A new default port alone changes nothing for the nodes there.
    m = marks(a, b, c)
    server.admin("PUT", "/networks/office", json={"listen_port": 52000}, expect=200)
    for h in (a, b, c):
        h.no_message(after=m[h.name], wait=0.2)


def test_connect_and_disconnect(server, mesh):
    a, b, c, d = mesh
    m = marks(a, b, c, d)
    assert a.api("PUT", "/host/networks/office/connected", json={"connected": False})[0] == 204
    for h in (b, c):
        h.wait_for(lambda x: a.wg.public_b64 not in x.peers("office"), what=f"{h.name} to drop alpha")
    a.wait_message("network-changed", lambda x: x["network"]["network"] == "office" and
                   x["network"]["connected"] is False, after=m["alpha"])
    # Only office: delta (lab) keeps alpha.
    d.no_message(after=m["delta"], wait=0.2)
    assert [n for n in server.admin("GET", f"/hosts/{a.host_id}", expect=200)["nodes"]
            if n["network"] == "office"][0]["connected"] is False
    # alpha keeps its own peers for when it connects again.
    office = {n["network"]: n for n in a.api("GET", "/host")[1]["networks"]}["office"]
    assert office["connected"] is False and len(office["peers"]) == 2
    # Twice is fine and sends nothing.
    m = marks(a, b)
    assert a.api("PUT", "/host/networks/office/connected", json={"connected": False})[0] == 204
    b.no_message(after=m["beta"], wait=0.2)
    assert a.api("PUT", "/host/networks/office/connected", json={"connected": True})[0] == 204
    for h in (b, c):
        h.wait_for(lambda x: a.wg.public_b64 in x.peers("office"), what=f"{h.name} to take alpha back")
    check_error(*a.api("PUT", "/host/networks/office/connected", json={"connected": "yes"}), 400,
                "invalid-argument", ["connected"])
    check_error(*a.api("PUT", "/host/networks/office/connected", json={}), 400, "invalid-argument", ["connected"])
    check_error(*b.api("PUT", "/host/networks/lab/connected", json={"connected": False}), 404, "not-found",
                ["lab"])


def test_online_offline_stale_and_removal(make_server, broker, hosts):
    server = make_server(broker, config={"host_offline_after": "2s", "host_stale_after": "5s",
                                         "host_remove_stale": "yes"})
    server.create_network("office", "10.99.0.0/24")
    a, b = joined(hosts, server.create_key(["office"], unlimited=True), ["alpha", "beta"])
    assert {h["name"]: h["status"] for h in server.admin("GET", "/hosts", expect=200)} == {
        "alpha": "online", "beta": "online"}
    # alpha checks in, beta does not.
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        a.checkin()
        time.sleep(0.5)
    listed = {h["name"]: h for h in server.admin("GET", "/hosts", expect=200)}
    assert listed["alpha"]["status"] == "online" and listed["beta"]["status"] == "offline", listed
    assert listed["beta"]["last_checkin"] <= int(time.time()) - 2

    # beta goes stale and is removed as DELETE /hosts/{id} would: its peers drop it, its account goes.
    def alive():
        a.checkin()
        return b.host_id not in {h["id"] for h in server.admin("GET", "/hosts", expect=200)}
    wait_until(alive, 10, "the stale host to be removed", interval=0.5)
    a.wait_for(lambda x: b.wg.public_b64 not in x.peers("office"), what="alpha to drop beta")
    assert b.host_deleted or b.wait_for(lambda x: x.host_deleted, what="beta told")
    server.wait_account(b.host_id, present=False)
    assert f"Host \"beta\" ({b.host_id}) has not checked in for" in server.log()
    assert [h["name"] for h in server.admin("GET", "/hosts", expect=200)] == ["alpha"]


def test_stale_hosts_are_kept_unless_asked(make_server, broker, hosts):
    server = make_server(broker, config={"host_offline_after": "1s", "host_stale_after": "2s"})
    server.create_network("office", "10.99.0.0/24")
    [a] = joined(hosts, server.create_key(["office"], unlimited=True), ["alpha"])
    wait_until(lambda: server.admin("GET", "/hosts", expect=200)[0]["status"] == "stale", 6, "stale")
    assert server.admin("GET", f"/hosts/{a.host_id}", expect=200)["status"] == "stale"
    # A check-in brings it back.
    a.checkin()
    wait_until(lambda: server.admin("GET", "/hosts", expect=200)[0]["status"] == "online", 5, "online again")


@pytest.mark.parametrize("config, mentions", [
    ({"host_offline_after": "0"}, ["host_offline_after", "1-86400"]),
    ({"host_stale_after": "soon"}, ["host_stale_after", "soon"]),
    ({"host_offline_after": "10m", "host_stale_after": "5m"}, ["host_stale_after", "host_offline_after"]),
    ({"host_remove_stale": "maybe"}, ["host_remove_stale", "maybe", "yes or no"]),
])
def test_bad_stale_configuration(make_server, broker, config, mentions):
    server = make_server(broker, config=config, start=False)
    server.write_config()
    p = subprocess.run(server.command(), capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and all(m in p.stderr for m in mentions), (p.returncode, p.stderr)


def test_nmctl_host_set_and_list(server, hosts, tmp_path):
    """nmctl host set changes what the server holds (and says what it did), `default` puts a setting
    back, bad values exit 2 without asking the server, the server's refusals exit 1 with its message;
    nmctl host list shows each host's status and last check-in."""
    import json
    import os

    from nmtest.server import binary

    def nmctl(*args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
        env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"), LC_ALL="C",
                   NMCTL_SERVER=server.url, NMCTL_PIN=server.pin, NMCTL_MASTER_KEY=server.MASTER_KEY)
        return subprocess.run([str(binary("nmctl")), *args], env=env, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    server.create_network("office", "10.99.0.0/24")
    a, b = joined(hosts, server.create_key(["office"], unlimited=True), ["alpha", "beta"])
    r = nmctl("host", "set", "alpha", "--mtu", "1380", "--keepalive", "15", "--endpoint", "203.0.113.7",
              "--listen-port", "51900", "--name", "alpha2")
    assert r.returncode == 0, r.stderr
    shown = dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line and not line.startswith(" "))
    assert shown["Name"].strip() == "alpha2" and shown["MTU"].strip() == "1380 (set by the admin)"
    assert shown["Keepalive"].strip() == "15 s (set by the admin)"
    assert shown["Static endpoint"].strip() == "203.0.113.7 (set by the admin)"
    assert shown["Listen port"].strip() == "51900 (set by the admin)"
    assert server.admin("GET", f"/hosts/{a.host_id}", expect=200)["settings"] == {
        "listen_port": 51900, "endpoint": "203.0.113.7", "keepalive": 15, "mtu": 1380}
    b.wait_for(lambda x: x.peers("office")[a.wg.public_b64]["endpoint"] == "203.0.113.7:51900", what="beta told")

    r = nmctl("host", "set", "alpha2", "--mtu", "default", "--endpoint", "default", "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["settings"] == {"listen_port": 51900, "endpoint": None, "keepalive": 15, "mtu": None}
    r = nmctl("host", "show", "alpha2")
    assert "each network's" in r.stdout and "none (what it reports)" in r.stdout, r.stdout

    # Usage errors: nothing sent.
    before = server.db_dump()
    for args in (("set", "alpha2"), ("set", "alpha2", "--mtu", "100"), ("set", "alpha2", "--mtu", "lots"),
                 ("set", "alpha2", "--listen-port", "0"), ("set", "alpha2", "--keepalive", "3601"),
                 ("set", "--mtu", "1400")):
        r = nmctl("host", *args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
    r = nmctl("host", "set", "alpha2", "--mtu", "100")
    assert "1280 to 9000" in r.stderr and "default" in r.stderr, r.stderr
    server.assert_db_unchanged(before, "nmctl usage errors")
    # The server's refusals.
    for args, words in ((("set", "alpha2", "--endpoint", "vpn.example.com"), ["vpn.example.com"]),
                        (("set", "alpha2", "--name", "Not_A_Label"), ["Not_A_Label"]),
                        (("set", "nobody", "--mtu", "1400"), ["nobody"])):
        r = nmctl("host", *args)
        assert r.returncode == 1 and "Error: " in r.stderr, (args, r.returncode, r.stderr)
        for w in words:
            assert w in r.stderr, (args, w, r.stderr)

    r = nmctl("host", "list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["ID", "NAME", "STATUS", "OS", "VERSION", "ENDPOINT", "LAST CHECK-IN"]
    rows = {re.split(r"\s{2,}", line)[1]: re.split(r"\s{2,}", line) for line in lines[1:]}
    assert rows["alpha2"][2] == "online" and rows["beta"][2] == "online"
    assert rows["alpha2"][5] == "198.18.0.1" and re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", rows["beta"][6])
