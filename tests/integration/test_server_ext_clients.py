"""Ingress gateways and external clients on the server (docs/protocol.md §4.3): addresses from the
top of the range, a key pair whose private half is only in the creation answer, the configuration
file exactly as documented, QR codes (PNG and SVG) that a real scanner reads back as that file, and
the deltas: the gateway gets the client as an external peer, every other node its addresses in the
gateway's allowed IPs; disabling, enabling and deleting undo and redo exactly that."""

import base64
import re
import shutil
import struct
import subprocess
import zlib

import pytest

from nmtest.client import b64
from nmtest.http import check_error
from nmtest.topology import TopoNet, peer_updates

ZBARIMG = shutil.which("zbarimg")


def peer_messages(msgs):
    """The `peers` messages; other messages may only be `network-changed` (the network's DNS names
    include external clients)."""
    assert all(m["type"] in ("peers", "network-changed") for m in msgs), msgs
    return peer_updates(msgs)


def gateway_net(server, hosts, **kw):
    net = TopoNet(server, hosts, ["gw", "beta", "gamma"], **kw)
    node = net.admin("PUT", f"/nodes/{net.node['gw']}/ingress", expect=200)
    assert node["roles"]["ingress"] is True
    return net


def scan(png: bytes, tmp_path, name="qr.png"):
    if not ZBARIMG:
        pytest.skip("zbarimg is not installed")
    p = tmp_path / name
    p.write_bytes(png)
    r = subprocess.run([ZBARIMG, "--raw", "-q", str(p)], capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def write_png(rows):
    """A greyscale PNG of 0/255 rows (for rasterised SVGs)."""
    h, w = len(rows), len(rows[0])
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def rasterise_svg(svg, scale=4):
    """The modules of our one-path SVG (runs "Mx yhNv1h-Nz" on integer coordinates) as a PNG."""
    assert svg.count("<path") == 1, svg[:200]
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).group(1))
    d = re.search(r' d="([^"]*)"', svg).group(1)
    runs = re.findall(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z", d)
    assert "".join(f"M{x} {y}h{n}v1h-{m}z" for x, y, n, m in runs) == d, "path is not only unit runs"
    grid = [[255] * size for _ in range(size)]
    for x, y, n, m in runs:
        x, y, n = int(x), int(y), int(n)
        assert n == int(m) and 4 <= x and x + n <= size - 4 and 4 <= y < size - 4, "outside the quiet zone"
        for i in range(n):
            grid[y][x + i] = 0
    rows = [[v for v in row for _ in range(scale)] for row in grid for _ in range(scale)]
    return write_png(rows)


def test_create_config_qr_and_deltas(server, hosts, tmp_path):
    net = gateway_net(server, hosts)
    gw = net.node["gw"]
    net.admin("PUT", f"/nodes/{gw}/egress", json={"ranges": ["192.168.50.0/24"]}, expect=200)

    mark = net.mark()
    c = net.admin("POST", "/networks/office/ext-clients", json={"name": "phone", "gateway": gw}, expect=201)
    assert c["name"] == "phone" and c["network"] == "office" and c["gateway"] == gw
    assert c["ipv4"] == "10.99.0.254" and c["ipv6"] is None
    assert c["enabled"] is True and c["extra_allowed_ips"] == [] and c["dns"] == "10.99.0.1"
    priv = re.search(r"PrivateKey = (\S+)", c["config"]).group(1)
    # The private key belongs to the public key the server shows, and is stored nowhere.
    import nacl.bindings
    assert b64(nacl.bindings.crypto_scalarmult_base(base64.b64decode(priv))) == c["public_key"]
    assert priv not in repr(server.db_dump())
    assert c["config"] == (
        "[Interface]\n"
        f"PrivateKey = {priv}\n"
        "Address = 10.99.0.254/32\n"
        "DNS = 10.99.0.1\n"
        "MTU = 1420\n"
        "\n"
        "[Peer]\n"
        f"PublicKey = {net.key_of('gw')}\n"
        "Endpoint = 198.18.0.1:51821\n"
        "AllowedIPs = 10.99.0.0/24, 192.168.50.0/24\n"
        "PersistentKeepalive = 20\n")

    # The QR codes carry exactly the configuration.
    assert scan(base64.b64decode(c["qr_png"]), tmp_path).rstrip("\n") == c["config"].rstrip("\n")
    assert scan(rasterise_svg(c["qr_svg"]), tmp_path, "svg.png").rstrip("\n") == c["config"].rstrip("\n")

    got = net.since(mark)
    [m] = peer_messages(got["gw"])
    assert m["update"] == [] and m["remove"] == []
    [p] = m["add"]
    assert p["external"] is True and p["name"] == "phone" and p["public_key"] == c["public_key"]
    assert p["allowed_ips"] == ["10.99.0.254/32"] and p["endpoint"] is None and p["host_id"] == c["id"]
    for n in ("beta", "gamma"):
        [m] = peer_messages(got[n])
        [p] = m["update"]
        assert p["name"] == "gw" and p["allowed_ips"] == ["10.99.0.1/32", "192.168.50.0/24", "10.99.0.254/32"]

    # Reading it back never shows a private key.
    one = net.admin("GET", f"/ext-clients/{c['id']}", expect=200)
    assert "config" not in one and priv not in repr(one)
    assert one == {k: v for k, v in c.items() if k not in ("config", "qr_svg", "qr_png")}
    assert net.admin("GET", "/networks/office/ext-clients", expect=200) == [one]


def test_formats_and_addresses_from_the_top(server, hosts, tmp_path):
    net = gateway_net(server, hosts, ipv6_range="fd00:99::/64")
    gw = net.node["gw"]
    status, conf = server.api("POST", "/networks/office/ext-clients?format=conf", token=server.admin_token(),
                              json={"name": "laptop", "gateway": gw, "dns": "1.1.1.1, 2606:4700::1111",
                                    "extra_allowed_ips": ["192.168.77.0/24"]})
    assert status == 201, conf
    assert conf.startswith("[Interface]\nPrivateKey = ")
    assert "Address = 10.99.0.254/32, fd00:99::7fff:ffff:ffff:ffff/128\n" in conf
    assert "DNS = 1.1.1.1, 2606:4700::1111\n" in conf
    assert "AllowedIPs = 10.99.0.0/24, fd00:99::/64\n" in conf

    # The raw answers: headers and bodies.
    from nmtest.http import request_raw_body
    hdrs = {"Authorization": f"Bearer {server.admin_token()}", "Content-Type": "application/json"}
    status, h, png = request_raw_body(server.url, "POST", "/networks/office/ext-clients?format=png",
                                      body=b'{"name":"tablet","gateway":"%s"}' % gw.encode(), headers=hdrs)
    assert status == 201 and h["content-type"] == "image/png"
    assert png.startswith(b"\x89PNG") and scan(png, tmp_path).startswith("[Interface]\nPrivateKey = ")
    status, h, _ = request_raw_body(server.url, "POST", "/networks/office/ext-clients?format=conf",
                                    body=b'{"name":"watch","gateway":"%s"}' % gw.encode(), headers=hdrs)
    assert status == 201 and h["content-type"].startswith("text/plain")
    assert h["content-disposition"] == 'attachment; filename="watch.conf"'
    status, svg = server.api("POST", "/networks/office/ext-clients?format=svg", token=server.admin_token(),
                             json={"name": "tv", "gateway": gw})
    assert status == 201 and svg.startswith("<svg ")

    clients = {c["name"]: c for c in net.admin("GET", "/networks/office/ext-clients", expect=200)}
    assert {n: c["ipv4"] for n, c in clients.items()} == {
        "laptop": "10.99.0.254", "tablet": "10.99.0.253", "watch": "10.99.0.252", "tv": "10.99.0.251"}
    assert clients["laptop"]["extra_allowed_ips"] == ["192.168.77.0/24"]
    assert clients["laptop"]["dns"] == "1.1.1.1, 2606:4700::1111"
    # Nodes still take theirs from the bottom, and the gateway's peers carry the extra range.
    net.add("delta")
    assert net.nodes()[net.node["delta"]]["ipv4"] == "10.99.0.4"
    net.barrier()
    ext = {p["name"]: p for p in net.peers("gw").values() if p.get("external")}
    assert set(ext) == {"laptop", "tablet", "watch", "tv"}
    assert ext["laptop"]["allowed_ips"] == ["10.99.0.254/32", "fd00:99::7fff:ffff:ffff:ffff/128",
                                            "192.168.77.0/24"]
    assert "192.168.77.0/24" in net.peers("delta")["gw"]["allowed_ips"]


def test_disable_enable_delete(server, hosts):
    net = gateway_net(server, hosts)
    gw = net.node["gw"]
    c = net.admin("POST", "/networks/office/ext-clients", json={"name": "phone", "gateway": gw}, expect=201)

    mark = net.mark()
    assert net.admin("PUT", f"/ext-clients/{c['id']}", json={"enabled": False}, expect=200)["enabled"] is False
    got = net.since(mark)
    [m] = peer_messages(got["gw"])
    assert m["remove"] == [c["public_key"]] and m["add"] == [] and m["update"] == []
    for n in ("beta", "gamma"):
        [m] = peer_messages(got[n])
        assert [p["allowed_ips"] for p in m["update"]] == [["10.99.0.1/32"]]

    # Disabled twice: nothing to say.
    mark = net.mark()
    net.admin("PUT", f"/ext-clients/{c['id']}", json={"enabled": False}, expect=200)
    assert all(peer_messages(m) == [] for m in net.since(mark).values())

    mark = net.mark()
    assert net.admin("PUT", f"/ext-clients/{c['id']}", json={"enabled": True}, expect=200)["enabled"] is True
    got = net.since(mark)
    assert [p["name"] for p in peer_updates(got["gw"], "add")] == ["phone"]
    assert all(len(peer_updates(got[n], "update")) == 1 for n in ("beta", "gamma"))

    mark = net.mark()
    assert net.admin("DELETE", f"/ext-clients/{c['id']}")[0] == 204
    got = net.since(mark)
    assert peer_updates(got["gw"], "remove") == [c["public_key"]]
    assert all(len(peer_updates(got[n], "update")) == 1 for n in ("beta", "gamma"))
    check_error(*net.admin("GET", f"/ext-clients/{c['id']}"), 404, "not-found", [c["id"]])
    # A disabled client's addresses are still its own: the next one gets the next address.
    d = net.admin("POST", "/networks/office/ext-clients", json={"name": "p2", "gateway": gw, "enabled": False},
                  expect=201)
    e = net.admin("POST", "/networks/office/ext-clients", json={"name": "p3", "gateway": gw}, expect=201)
    assert (d["ipv4"], e["ipv4"]) == ("10.99.0.254", "10.99.0.253")


def test_ingress_role_removal(server, hosts):
    net = gateway_net(server, hosts)
    gw = net.node["gw"]
    c = net.admin("POST", "/networks/office/ext-clients", json={"name": "phone", "gateway": gw}, expect=201)
    before = server.db_dump()
    msg = check_error(*net.admin("DELETE", f"/nodes/{gw}/ingress"), 409, "conflict", ["external client", "force"])
    assert "1" in msg
    server.assert_db_unchanged(before)

    mark = net.mark()
    node = net.admin("DELETE", f"/nodes/{gw}/ingress?force=true", expect=200)
    assert node["roles"]["ingress"] is False
    got = net.since(mark)
    assert peer_updates(got["gw"], "remove") == [c["public_key"]]
    assert [p["allowed_ips"] for p in peer_updates(got["beta"], "update")] == [["10.99.0.1/32"]]
    assert net.admin("GET", "/networks/office/ext-clients", expect=200) == []


def test_gateway_leaving_takes_its_clients(server, hosts):
    net = gateway_net(server, hosts)
    gw = net.node["gw"]
    net.admin("POST", "/networks/office/ext-clients", json={"name": "phone", "gateway": gw}, expect=201)
    mark = net.mark()
    assert net.admin("DELETE", f"/nodes/{gw}")[0] == 204
    got = net.since(mark)
    for n in ("beta", "gamma"):
        assert peer_updates(got[n], "remove") == [net.key_of("gw")]
        assert peer_updates(got[n], "update") == []
    assert net.admin("GET", "/networks/office/ext-clients", expect=200) == []


def test_refusals(server, hosts):
    net = gateway_net(server, hosts)
    gw, beta = net.node["gw"], net.node["beta"]
    net.admin("POST", "/networks/office/ext-clients", json={"name": "phone", "gateway": gw}, expect=201)
    lab = TopoNet(server, hosts, ["labhost"], network="lab", ipv4_range="10.98.0.0/24")

    def bad(path, body, status, code, mentions):
        before = server.db_dump()
        check_error(*net.admin("POST", path, json=body), status, code, mentions)
        server.assert_db_unchanged(before)

    bad("/networks/office/ext-clients", {"name": "tab", "gateway": beta}, 409, "conflict",
        [beta, "not an ingress gateway"])
    bad("/networks/office/ext-clients", {"name": "tab", "gateway": lab.node["labhost"]}, 409, "conflict",
        ["lab", "office"])
    bad("/networks/office/ext-clients", {"name": "tab", "gateway": "5f0cd1b4-6d9c-4c4e-9a77-0b0cfa2c5a11"}, 404,
        "not-found", ["5f0cd1b4-6d9c-4c4e-9a77-0b0cfa2c5a11"])
    bad("/networks/office/ext-clients", {"name": "phone", "gateway": gw}, 409, "conflict", ["phone"])
    bad("/networks/office/ext-clients", {"name": "beta", "gateway": gw}, 409, "conflict", ["beta"])
    bad("/networks/office/ext-clients", {"name": "Bad Name!", "gateway": gw}, 400, "invalid-argument", ["Bad Name!"])
    bad("/networks/office/ext-clients", {"name": "tab", "gateway": gw, "dns": "not-an-ip"}, 400,
        "invalid-argument", ["not-an-ip"])
    bad("/networks/office/ext-clients", {"name": "tab", "gateway": gw, "extra_allowed_ips": ["10.99.0.128/25"]},
        409, "conflict", ["10.99.0.128/25", "office"])
    bad("/networks/office/ext-clients", {"name": "tab", "gateway": gw, "extra_allowed_ips": ["192.168.1.1/24"]},
        400, "invalid-argument", ["192.168.1.1/24", "192.168.1.0/24"])
    bad("/networks/office/ext-clients?format=jpeg", {"name": "tab", "gateway": gw}, 400, "invalid-argument",
        ["jpeg"])
    bad("/networks/nowhere/ext-clients", {"name": "tab", "gateway": gw}, 404, "not-found", ["nowhere"])
    bad("/networks/office/ext-clients", {"name": "tab", "gateway": gw, "private_key": "x"}, 400, None,
        ["private_key"])

    # A gateway whose host reported no address cannot be in a configuration yet.
    quiet = net.add("quiet", endpoints=[])
    q = net.node["quiet"]
    net.admin("PUT", f"/nodes/{q}/ingress", expect=200)
    bad("/networks/office/ext-clients", {"name": "tab", "gateway": q}, 409, "conflict", ["no endpoint"])
    # Once it checks in with an address, it can.
    quiet.checkin(endpoints=["198.18.0.9"])
    net.barrier()
    c = net.admin("POST", "/networks/office/ext-clients", json={"name": "tab", "gateway": q}, expect=201)
    assert "Endpoint = 198.18.0.9:51821\n" in c["config"]


def test_denied_nodes(server, hosts):
    """A client's denied nodes: only those nodes get an update of the gateway (without the client's
    addresses), the gateway and the others hear nothing; lifting it sends the same back; bad lists
    are refused with nothing written; a denied node that leaves drops off the list."""
    net = gateway_net(server, hosts)
    gw, beta, gamma = net.node["gw"], net.node["beta"], net.node["gamma"]
    c = net.admin("POST", "/networks/office/ext-clients",
                  json={"name": "phone", "gateway": gw, "denied_nodes": [beta, beta]}, expect=201)
    assert c["denied_nodes"] == [beta]
    # beta never had the client's address in the gateway's allowed IPs; gamma has.
    net.barrier()
    assert net.peers("beta")["gw"]["allowed_ips"] == ["10.99.0.1/32"]
    assert net.peers("gamma")["gw"]["allowed_ips"] == ["10.99.0.1/32", "10.99.0.254/32"]

    # Deny gamma too: gamma alone hears of it.
    mark = net.mark()
    body = net.admin("PUT", f"/ext-clients/{c['id']}", json={"denied_nodes": [beta, gamma]}, expect=200)
    assert body["denied_nodes"] == [beta, gamma] and body["enabled"] is True
    got = net.since(mark)
    assert peer_messages(got["gw"]) == [] and peer_messages(got["beta"]) == []
    [m] = peer_messages(got["gamma"])
    assert [p["allowed_ips"] for p in m["update"]] == [["10.99.0.1/32"]] and m["add"] == m["remove"] == []

    # Lifted for both: both get the address back; the gateway still hears nothing.
    mark = net.mark()
    assert net.admin("PUT", f"/ext-clients/{c['id']}", json={"denied_nodes": []}, expect=200)["denied_nodes"] == []
    got = net.since(mark)
    assert peer_messages(got["gw"]) == []
    for n in ("beta", "gamma"):
        [m] = peer_messages(got[n])
        assert [p["allowed_ips"] for p in m["update"]] == [["10.99.0.1/32", "10.99.0.254/32"]]

    # Bad lists and bodies: clear errors, nothing written.
    lab = TopoNet(server, hosts, ["labhost"], network="lab", ipv4_range="10.98.0.0/24")
    cases = [
        ({"denied_nodes": [gw]}, 409, "conflict", [gw, "gateway"]),
        ({"denied_nodes": [lab.node["labhost"]]}, 409, "conflict", ["lab", "office"]),
        ({"denied_nodes": ["5f0cd1b4-6d9c-4c4e-9a77-0b0cfa2c5a11"]}, 404, "not-found",
         ["5f0cd1b4-6d9c-4c4e-9a77-0b0cfa2c5a11"]),
        ({"denied_nodes": [beta, "no such node"]}, 404, "not-found", ["no such node"]),
        ({"denied_nodes": "beta"}, 400, "invalid-argument", ["denied_nodes"]),
        ({"denied_nodes": [7]}, 400, "invalid-argument", ["denied_nodes"]),
        ({}, 400, "invalid-argument", ["enabled", "denied_nodes"]),
    ]
    for body, status, code, mentions in cases:
        before = server.db_dump()
        check_error(*net.admin("PUT", f"/ext-clients/{c['id']}", json=body), status, code, mentions)
        server.assert_db_unchanged(before)
    before = server.db_dump()
    check_error(*net.admin("POST", "/networks/office/ext-clients",
                           json={"name": "tab", "gateway": gw, "denied_nodes": [gw]}), 409, "conflict", ["gateway"])
    server.assert_db_unchanged(before)

    # A denied node that leaves the network is dropped from the list.
    net.admin("PUT", f"/ext-clients/{c['id']}", json={"denied_nodes": [gamma, beta]}, expect=200)
    assert net.admin("DELETE", f"/nodes/{gamma}")[0] == 204
    assert net.admin("GET", f"/ext-clients/{c['id']}", expect=200)["denied_nodes"] == [beta]


def test_full_tunnel_client(server, hosts):
    """A full-tunnel client ("internet_gateway": true) needs a gateway that is also the internet
    gateway (409 naming it, nothing stored), gets AllowedIPs = 0.0.0.0/0, ::/0 in an IPv4-only
    network, and reaches its gateway marked "internet"; the others see it as any client; a plain
    client is not marked; the member is a boolean (400) and shows in the REST object."""
    net = gateway_net(server, hosts)
    gw = net.node["gw"]
    before = server.db_dump()
    status, body = server.api("POST", "/networks/office/ext-clients",
                              json={"name": "phone", "gateway": gw, "internet_gateway": True},
                              token=server.admin_token())
    check_error(status, body, 409, mentions=[gw, "internet gateway", f"/nodes/{gw}/internet-gateway"])
    status, body = server.api("POST", "/networks/office/ext-clients",
                              json={"name": "phone", "gateway": gw, "internet_gateway": "yes"},
                              token=server.admin_token())
    assert status == 400 and "internet_gateway" in body["error"]["message"], body
    server.assert_db_unchanged(before, "refused full-tunnel clients")

    net.admin("PUT", f"/nodes/{gw}/internet-gateway", expect=200)
    mark = net.mark()
    c = net.admin("POST", "/networks/office/ext-clients",
                  json={"name": "phone", "gateway": gw, "internet_gateway": True}, expect=201)
    assert c["internet_gateway"] is True
    assert "AllowedIPs = 0.0.0.0/0, ::/0\n" in c["config"] and "DNS = 10.99.0.1\n" in c["config"]
    plain = net.admin("POST", "/networks/office/ext-clients", json={"name": "laptop", "gateway": gw}, expect=201)
    assert plain["internet_gateway"] is False and "AllowedIPs = 10.99.0.0/24\n" in plain["config"]
    got = net.since(mark)
    added = {p["name"]: p for m in peer_messages(got["gw"]) for p in m["add"]}
    assert added["phone"]["internet"] is True and added["phone"]["allowed_ips"] == [f"{c['ipv4']}/32"]
    assert "internet" not in added["laptop"]
    # The gateway's peers after the deltas, and its snapshot, say the same.
    peers = net.peers("gw")
    assert peers["phone"].get("internet") is True and not peers["laptop"].get("internet")
    net.check_snapshots()
    one = net.admin("GET", f"/ext-clients/{c['id']}", expect=200)
    assert one["internet_gateway"] is True
