"""The DNS names of a network over REST (docs/protocol.md §5): automatic names of nodes, custom
names (add, list, delete), bad input refused with a clear message and the database unchanged, and
the delivery of names to hosts: `host_name` and `dns` in their state, and `network-changed` to
exactly the network's hosts when a custom name comes or goes."""

import pytest

from nmtest.http import check_error, quote


def joined(hosts, key, names, first=1):
    made = []
    for i, name in enumerate(names):
        h = hosts(name, endpoints=[f"198.18.0.{first + i}"], listen_port=51821 + i)
        h.register(key["token"])
        assert h.connect() == 0
        made.append(h)
    return made


def names_of(server, net="office"):
    return {(e["name"], e["automatic"]): e for e in server.admin("GET", f"/networks/{net}/dns", expect=200)}


def test_custom_names_crud_and_automatic_names(server, hosts):
    server.create_network("office", "10.99.0.0/24", ipv6_range="fd00:99::/64")
    key = server.create_key(["office"], unlimited=True)
    a, b = joined(hosts, key, ["alpha", "beta"])

    # Nodes' names are there from the start, with the nodes' addresses.
    listed = names_of(server)
    assert set(listed) == {("alpha", True), ("beta", True)}
    assert listed[("alpha", True)] == {"name": "alpha", "fqdn": "alpha.office.nm.internal", "ipv4": "10.99.0.1",
                                       "ipv6": "fd00:99::1", "automatic": True}

    e = server.admin("POST", "/networks/office/dns", json={"name": "Printer", "ipv4": "192.168.50.7"},
                     expect=201)
    assert e == {"name": "printer", "fqdn": "printer.office.nm.internal", "ipv4": "192.168.50.7", "ipv6": None,
                 "automatic": False}
    server.admin("POST", "/networks/office/dns", json={"name": "nas.lab", "ipv6": "FD00:99:0::50",
                                                       "ipv4": None}, expect=201)
    listed = server.admin("GET", "/networks/office/dns", expect=200)
    assert [x["name"] for x in listed] == ["alpha", "beta", "nas.lab", "printer"]
    assert [x for x in listed if x["name"] == "nas.lab"][0]["ipv6"] == "fd00:99::50"

    # A user (not only admins) may read; only admins may change.
    server.admin("POST", "/users", json={"username": "uma", "password": "user-password-1", "role": "user"},
                 expect=201)
    tok = server.login("uma", "user-password-1")
    status, body = server.api("GET", "/networks/office/dns", token=tok)
    assert status == 200 and len(body) == 4
    check_error(*server.api("POST", "/networks/office/dns", json={"name": "x", "ipv4": "10.0.0.1"}, token=tok),
                403, "forbidden")
    check_error(*server.api("DELETE", "/networks/office/dns/printer", token=tok), 403, "forbidden")

    # Delete (case-insensitive, like DNS); then it is gone.
    assert server.admin("DELETE", "/networks/office/dns/PRINTER")[0] == 204
    assert set(names_of(server)) == {("alpha", True), ("beta", True), ("nas.lab", False)}
    check_error(*server.admin("DELETE", "/networks/office/dns/printer"), 404, "not-found", ["printer"])

    # The names go with the network.
    assert server.admin("DELETE", "/networks/office?force=true")[0] == 204
    assert server.db_dump(["dns_names"]) == {"dns_names": []}


@pytest.mark.parametrize("body, status, code, mentions", [
    ({"name": "bad_name", "ipv4": "10.0.0.1"}, 400, "invalid-argument", ["bad_name", "a-z"]),
    ({"name": "-x", "ipv4": "10.0.0.1"}, 400, "invalid-argument", ["-x"]),
    ({"name": "a..b", "ipv4": "10.0.0.1"}, 400, "invalid-argument", ["a..b"]),
    ({"name": "x" * 64, "ipv4": "10.0.0.1"}, 400, "invalid-argument", ["x" * 20]),
    ({"name": ".".join(["abcdefghij"] * 22), "ipv4": "10.0.0.1"}, 400, "invalid-argument", ["253"]),
    ({"name": "printer"}, 400, "invalid-argument", ["printer", "address"]),
    ({"name": "printer", "ipv4": None, "ipv6": None}, 400, "invalid-argument", ["address"]),
    ({"name": "printer", "ipv4": "fd00::1"}, 400, "invalid-argument", ["ipv4", "fd00::1"]),
    ({"name": "printer", "ipv6": "10.0.0.1"}, 400, "invalid-argument", ["ipv6", "10.0.0.1"]),
    ({"name": "printer", "ipv4": "10.0.0.300"}, 400, "invalid-argument", ["10.0.0.300"]),
    ({"name": "printer", "ipv4": "10.0.0.0/24"}, 400, "invalid-argument", ["10.0.0.0/24"]),
    ({"name": "printer", "ipv4": "0.0.0.0"}, 400, "invalid-argument", ["unspecified"]),
    ({"name": "printer", "ipv4": "224.0.0.251"}, 400, "invalid-argument", ["multicast"]),
    ({"name": "printer", "ipv4": "255.255.255.255"}, 400, "invalid-argument", ["broadcast"]),
    ({"name": "printer", "ipv6": "::"}, 400, "invalid-argument", ["unspecified"]),
    ({"name": "printer", "ipv6": "ff02::fb"}, 400, "invalid-argument", ["multicast"]),
    ({"name": "printer", "ipv4": 17}, 400, "invalid-argument", ["ipv4"]),
    ({"name": "printer", "ipv4": "10.0.0.9", "ttl": 5}, 400, None, ["ttl"]),
    ({"ipv4": "10.0.0.9"}, 400, "invalid-argument", ["name"]),
    ({"name": "alpha", "ipv4": "10.0.0.9"}, 409, "conflict", ["alpha", "node"]),
    ({"name": "existing", "ipv4": "10.0.0.9"}, 409, "conflict", ["existing"]),
    ({"name": "EXISTING", "ipv6": "fd00::9"}, 409, "conflict", ["existing"]),
])
def test_bad_custom_names_change_nothing(server, hosts, body, status, code, mentions):
    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], unlimited=True)
    (a,) = joined(hosts, key, ["alpha"])
    server.admin("POST", "/networks/office/dns", json={"name": "existing", "ipv4": "10.99.0.200"}, expect=201)
    a.wait_message("network-changed")
    n = len(a.messages)
    before = server.db_dump()
    check_error(*server.admin("POST", "/networks/office/dns", json=body), status, code, mentions)
    server.assert_db_unchanged(before, f"POST {body}")
    a.no_message("network-changed", after=n, wait=0.2)


def test_other_refusals(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], unlimited=True)
    joined(hosts, key, ["alpha"])
    before = server.db_dump()
    # Unknown network, for every method.
    check_error(*server.admin("GET", "/networks/nosuch/dns"), 404, "not-found", ["nosuch"])
    check_error(*server.admin("POST", "/networks/nosuch/dns", json={"name": "x", "ipv4": "10.0.0.1"}), 404,
                "not-found", ["nosuch"])
    check_error(*server.admin("DELETE", "/networks/nosuch/dns/x"), 404, "not-found", ["nosuch"])
    # An automatic name cannot be deleted; an unknown one is not found.
    check_error(*server.admin("DELETE", "/networks/office/dns/alpha"), 409, "conflict", ["alpha", "automatic"])
    check_error(*server.admin("DELETE", "/networks/office/dns/" + quote("no such")), 404, "not-found",
                ["no such"])
    # Not JSON, not an object, and no credential at all.
    check_error(*server.admin("POST", "/networks/office/dns", body=b"{"), 400, "invalid-json")
    check_error(*server.admin("POST", "/networks/office/dns", json=["x"]), 400, "invalid-json")
    check_error(*server.api("GET", "/networks/office/dns"), 401, "unauthenticated")
    check_error(*server.admin("PUT", "/networks/office/dns"), 405, "method-not-allowed")
    server.assert_db_unchanged(before, "the refused requests")


def test_names_reach_exactly_the_networks_hosts(server, hosts):
    server.create_network("office", "10.99.0.0/24")
    server.create_network("lab", "10.98.0.0/24")
    office_key = server.create_key(["office"], unlimited=True)
    lab_key = server.create_key(["lab"], unlimited=True, name="lab")
    a, b = joined(hosts, office_key, ["alpha", "beta"])
    (c,) = joined(hosts, lab_key, ["gamma"], first=3)

    # The state carries the host's own name and (no) custom names from the start.
    st = a.networks["office"]["state"]
    assert st["host_name"] == "alpha" and st.get("dns", []) == []
    counts = {h.name: len(h.messages) for h in (a, b, c)}

    server.admin("POST", "/networks/office/dns", json={"name": "printer", "ipv4": "192.168.50.7"}, expect=201)
    for h in (a, b):
        m = h.wait_message("network-changed", after=counts[h.name])
        net = m["network"]
        assert net["network"] == "office" and "peers" not in net
        assert net["dns"] == [{"name": "printer", "ipv4": "192.168.50.7", "ipv6": None}]
        assert net["host_name"] == h.name
    c.no_message(after=counts["gamma"], wait=0.3)
    # Exactly one message each, with the next serial.
    for h in (a, b):
        assert [m["type"] for m in h.messages[counts[h.name]:]] == ["network-changed"]
        assert h.serial_errors == []

    # A snapshot (GET /api/v1/host) has them too, and so does a host that joins later.
    status, state = a.api("GET", "/host")
    assert status == 200
    (office,) = [n for n in state["networks"] if n["network"] == "office"]
    assert office["dns"] == [{"name": "printer", "ipv4": "192.168.50.7", "ipv6": None}]
    assert office["host_name"] == "alpha"
    (d,) = joined(hosts, office_key, ["delta"], first=4)
    assert d.networks["office"]["state"]["dns"] == [{"name": "printer", "ipv4": "192.168.50.7", "ipv6": None}]
    assert d.networks["office"]["state"]["host_name"] == "delta"

    counts = {h.name: len(h.messages) for h in (a, b, c, d)}
    assert server.admin("DELETE", "/networks/office/dns/printer")[0] == 204
    for h in (a, b, d):
        m = h.wait_message("network-changed", after=counts[h.name])
        assert m["network"].get("dns", []) == []
    c.no_message(after=counts["gamma"], wait=0.3)


def test_nmctl_dns(server, hosts, tmp_path):
    """nmctl dns list/add/delete: what an admin types reaches the server, tables and --json tell
    the truth, refusals exit 1 with the server's message, usage errors exit 2 sending nothing."""
    import json
    import os
    import subprocess

    from nmtest.server import binary

    def nmctl(*args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
        env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"), LC_ALL="C",
                   NMCTL_SERVER=server.url, NMCTL_PIN=server.pin, NMCTL_MASTER_KEY=server.MASTER_KEY)
        return subprocess.run([str(binary("nmctl")), *args], env=env, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], unlimited=True)
    joined(hosts, key, ["alpha"])

    r = nmctl("dns", "add", "office", "printer", "--ipv4", "192.168.50.7", "--ipv6", "fd00:50::7")
    assert r.returncode == 0, r.stderr
    assert "printer.office.nm.internal" in r.stdout and "192.168.50.7" in r.stdout
    r = nmctl("dns", "list", "office")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["NAME", "IPV4", "IPV6", "KIND"]
    assert lines[1].split() == ["alpha.office.nm.internal", "10.99.0.1", "-", "node"]
    assert lines[2].split() == ["printer.office.nm.internal", "192.168.50.7", "fd00:50::7", "custom"]
    r = nmctl("dns", "list", "office", "--json")
    assert r.returncode == 0 and [e["name"] for e in json.loads(r.stdout)] == ["alpha", "printer"]

    # The server's refusals: exit 1 with its message.
    for args, words in ((("add", "office", "alpha", "--ipv4", "10.0.0.1"), ["alpha", "node"]),
                        (("add", "office", "printer", "--ipv4", "10.0.0.1"), ["printer"]),
                        (("add", "office", "x", "--ipv4", "224.0.0.1"), ["multicast"]),
                        (("delete", "office", "alpha"), ["automatic"]),
                        (("list", "nosuch"), ["nosuch"])):
        r = nmctl("dns", *args)
        assert r.returncode == 1 and "Error: " in r.stderr, (args, r.returncode, r.stderr)
        for w in words:
            assert w in r.stderr, (args, w, r.stderr)
    # Usage errors: exit 2, nothing sent.
    before = server.db_dump()
    for args in (("add", "office", "x"), ("add", "office"), ("delete", "office"), ("list",),
                 ("add", "office", "x", "--ipv4"), ("frobnicate",)):
        r = nmctl("dns", *args)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
    server.assert_db_unchanged(before, "nmctl usage errors")

    r = nmctl("dns", "delete", "office", "printer")
    assert r.returncode == 0 and "Deleted DNS name printer" in r.stdout
    assert [e["name"] for e in server.admin("GET", "/networks/office/dns", expect=200)] == ["alpha"]


def test_external_clients_have_names_everywhere(server, hosts):
    """An external client's name is an automatic name of its network: listed, refused as a custom
    name, and delivered to every host (not only its gateway, the one host that has it as a peer)
    when it comes and goes."""
    server.create_network("office", "10.99.0.0/24")
    key = server.create_key(["office"], unlimited=True)
    a, b = joined(hosts, key, ["alpha", "beta"])
    gw = a.networks["office"]["state"]["node_id"]
    server.admin("PUT", f"/nodes/{gw}/ingress", expect=200)
    ext = server.admin("POST", "/networks/office/ext-clients", json={"name": "phone", "gateway": gw}, expect=201)

    entry = {"name": "phone", "ipv4": ext["ipv4"], "ipv6": None}
    for h in (a, b):
        h.wait_for(lambda h: entry in (h.networks["office"]["state"].get("dns") or []), 5,
                   f"{h.name} to get the name of the external client")
        assert h.serial_errors == []
    listed = names_of(server)
    assert listed[("phone", True)]["fqdn"] == "phone.office.nm.internal"
    assert listed[("phone", True)]["ipv4"] == ext["ipv4"]

    before = server.db_dump()
    check_error(*server.admin("POST", "/networks/office/dns", json={"name": "phone", "ipv4": "10.0.0.9"}), 409,
                "conflict", ["phone", "external client"])
    check_error(*server.admin("DELETE", "/networks/office/dns/phone"), 409, "conflict", ["phone", "automatic"])
    server.assert_db_unchanged(before, "refusals for the external client's name")

    assert server.admin("DELETE", f"/ext-clients/{ext['id']}")[0] == 204
    for h in (a, b):
        h.wait_for(lambda h: entry not in (h.networks["office"]["state"].get("dns") or []), 5,
                   f"{h.name} to lose the name of the external client")
    assert ("phone", True) not in names_of(server)


def test_nameservers(server, hosts, tmp_path):
    """A network's nameservers (split DNS, docs/protocol.md §5.1): created, listed, changed and deleted
    by admins only, bad input refused with the value named and the database unchanged, each change
    delivered as `nameservers` in the state of exactly the network's hosts; and nmctl nameserver."""
    import json
    import os
    import subprocess

    from nmtest.server import binary

    server.create_network("office", "10.99.0.0/24")
    server.create_network("lab", "10.98.0.0/24")
    a, b = joined(hosts, server.create_key(["office"], unlimited=True), ["alpha", "beta"])
    (c,) = joined(hosts, server.create_key(["lab"], unlimited=True, name="lab"), ["gamma"], first=3)
    counts = {h.name: len(h.messages) for h in (a, b, c)}

    ns = server.admin("POST", "/networks/office/nameservers",
                      json={"domain": "Corp.Example.", "servers": ["192.168.60.53", "FD00:60::53"]}, expect=201)
    assert ns == {"domain": "corp.example", "servers": ["192.168.60.53", "fd00:60::53"]}
    for h in (a, b):
        m = h.wait_message("network-changed", after=counts[h.name])
        assert m["network"]["nameservers"] == [ns] and "peers" not in m["network"]
    c.no_message(after=counts["gamma"], wait=0.3)
    assert server.admin("GET", "/networks/office/nameservers", expect=200) == [ns]
    assert server.admin("GET", "/networks/lab/nameservers", expect=200) == []
    # In the full state too, and for a host that joins later.
    assert {n["network"]: n for n in a.api("GET", "/host")[1]["networks"]}["office"]["nameservers"] == [ns]

    counts = {h.name: len(h.messages) for h in (a, b)}
    changed = server.admin("PUT", "/networks/office/nameservers/corp.example", json={"servers": ["192.168.60.54"]},
                           expect=200)
    assert changed == {"domain": "corp.example", "servers": ["192.168.60.54"]}
    for h in (a, b):
        h.wait_message("network-changed", lambda m: m["network"]["nameservers"] == [changed], after=counts[h.name])

    # Refusals: the value named, nothing stored, nobody told.
    server.admin("POST", "/users", json={"username": "uma", "password": "user-password-1", "role": "user"},
                 expect=201)
    tok = server.login("uma", "user-password-1")
    assert server.api("GET", "/networks/office/nameservers", token=tok)[0] == 200
    before = server.db_dump()
    counts = {h.name: len(h.messages) for h in (a, b)}
    for method, path, body, status, code, mentions in (
            ("POST", "", {"domain": "corp.example", "servers": ["192.168.60.1"]}, 409, "conflict", ["corp.example"]),
            ("POST", "", {"domain": "bad_domain", "servers": ["192.168.60.1"]}, 400, "invalid-argument",
             ["bad_domain"]),
            ("POST", "", {"domain": "x.office.nm.internal", "servers": ["192.168.60.1"]}, 409, "conflict",
             ["office.nm.internal"]),
            ("POST", "", {"domain": "office.nm.internal", "servers": ["192.168.60.1"]}, 409, "conflict",
             ["office.nm.internal"]),
            ("POST", "", {"domain": "other.example", "servers": []}, 400, "invalid-argument", ["1-8"]),
            ("POST", "", {"domain": "other.example", "servers": ["dns.other.example"]}, 400, "invalid-argument",
             ["dns.other.example"]),
            ("POST", "", {"domain": "other.example", "servers": ["127.0.0.53"]}, 400, "invalid-argument",
             ["127.0.0.53", "loopback"]),
            ("POST", "", {"domain": "other.example", "servers": ["fe80::53"]}, 400, "invalid-argument",
             ["fe80::53", "link-local"]),
            ("POST", "", {"domain": "other.example", "servers": ["10.0.0.1", "10.0.0.1"]}, 400, "invalid-argument",
             ["10.0.0.1", "twice"]),
            ("POST", "", {"domain": "other.example", "servers": [f"10.0.0.{i}" for i in range(1, 10)]}, 400,
             "invalid-argument", ["1-8"]),
            ("POST", "", {"domain": "other.example"}, 400, "invalid-argument", ["servers"]),
            ("POST", "", {"domain": "other.example", "servers": ["10.0.0.1"], "port": 5353}, 400, None, ["port"]),
            ("PUT", "/nosuch.example", {"servers": ["10.0.0.1"]}, 404, "not-found", ["nosuch.example"]),
            ("PUT", "/corp.example", {"domain": "x.example", "servers": ["10.0.0.1"]}, 400, None, ["domain"]),
            ("DELETE", "/nosuch.example", None, 404, "not-found", ["nosuch.example"])):
        check_error(*server.admin(method, "/networks/office/nameservers" + path,
                                  **({"json": body} if body is not None else {})), status, code, mentions)
    check_error(*server.admin("POST", "/networks/nosuch/nameservers",
                              json={"domain": "x.example", "servers": ["10.0.0.1"]}), 404, "not-found", ["nosuch"])
    check_error(*server.api("POST", "/networks/office/nameservers", token=tok,
                            json={"domain": "x.example", "servers": ["10.0.0.1"]}), 403, "forbidden")
    check_error(*server.api("DELETE", "/networks/office/nameservers/corp.example", token=tok), 403, "forbidden")
    server.assert_db_unchanged(before, "the refused nameserver requests")
    for h in (a, b):
        h.no_message(after=counts[h.name], wait=0.2)

    def nmctl(*args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("NMCTL_")}
        env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "cfg"), LC_ALL="C",
                   NMCTL_SERVER=server.url, NMCTL_PIN=server.pin, NMCTL_MASTER_KEY=server.MASTER_KEY)
        return subprocess.run([str(binary("nmctl")), *args], env=env, capture_output=True, text=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    r = nmctl("nameserver", "add", "office", "home.arpa", "192.168.60.1", "192.168.60.2")
    assert r.returncode == 0 and "home.arpa" in r.stdout and "192.168.60.1, 192.168.60.2" in r.stdout, r.stderr
    r = nmctl("nameserver", "list", "office")
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["DOMAIN", "SERVERS"]
    assert lines[1].split(None, 1) == ["corp.example", "192.168.60.54"]
    assert lines[2].split(None, 1) == ["home.arpa", "192.168.60.1, 192.168.60.2"]
    r = nmctl("nameserver", "set", "office", "home.arpa", "192.168.60.3", "--json")
    assert json.loads(r.stdout) == {"domain": "home.arpa", "servers": ["192.168.60.3"]}
    r = nmctl("nameserver", "add", "office", "home.arpa", "192.168.60.9")
    assert r.returncode == 1 and "home.arpa" in r.stderr, r.stderr
    for args in (("add", "office", "x.example"), ("add", "office"), ("delete", "office"), ("list",)):
        assert nmctl("nameserver", *args).returncode == 2, args
    assert "No nameservers in network lab." in nmctl("nameserver", "list", "lab").stdout
    r = nmctl("nameserver", "delete", "office", "home.arpa")
    assert r.returncode == 0 and "Deleted nameserver home.arpa" in r.stdout

    counts = {h.name: len(h.messages) for h in (a, b)}
    assert server.admin("DELETE", "/networks/office/nameservers/CORP.example")[0] == 204
    for h in (a, b):
        m = h.wait_message("network-changed", after=counts[h.name])
        assert m["network"].get("nameservers", []) == []
    # They go with their network.
    server.admin("POST", "/networks/office/nameservers", json={"domain": "corp.example", "servers": ["10.0.0.1"]},
                 expect=201)
    assert server.admin("DELETE", "/networks/office?force=true")[0] == 204
    assert server.db_dump(["nameservers"]) == {"nameservers": []}
