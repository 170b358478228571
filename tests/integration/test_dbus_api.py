"""The D-Bus API of netclientd as a program sees it (GDBus on the node's system bus): the objects and
members of dbus/org.netmaker.Client.xml are what the daemon exports, and wrong arguments get a
stable error name with a message that names the argument, quotes the value (never a token) and
says what is accepted."""

import base64
import os
import xml.etree.ElementTree as ET

import pytest
from gi.repository import Gio, GLib

from nmtest.client import encode_token
from nmtest.netns import Underlay
from nmtest.node import AgentNode
from nmtest.server import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

NAME, PATH, IFACE = "org.netmaker.Client", "/org/netmaker/Client", "org.netmaker.Client"
SECRET = "QWERTYUIOPASDFGHJKLZXCVBNM234567"  # a key value (the secret part of a token)
TOKEN = encode_token({"v": 1, "api": "https://198.18.9.254:9", "key": SECRET,
                      "spk": base64.b64encode(bytes(range(32))).decode()})


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with Underlay(nodes=1, subnet=9) as net:
        n = AgentNode(net.nodes[0], tmp_path_factory.mktemp("dbus-api")).start()
        try:
            yield n
        finally:
            n.stop()


@pytest.fixture(scope="module")
def bus(node):
    flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    c = Gio.DBusConnection.new_for_address_sync(node.bus_address, flags, None, None)
    yield c
    c.close_sync(None)


def call(bus, method, args, sig=None, iface=IFACE, path=PATH):
    """(error name, message) or (None, result)."""
    try:
        v = bus.call_sync(NAME, path, iface, method, GLib.Variant(sig, args) if sig else None, None,
                          Gio.DBusCallFlags.NONE, 20000, None)
        return None, v.unpack()
    except GLib.Error as e:
        name = Gio.DBusError.get_remote_error(e)
        Gio.DBusError.strip_remote_error(e)
        return name, e.message


def opts(**kw):
    return {k.replace("_", "-"): v for k, v in kw.items()}


def join(bus, token=TOKEN, **options):
    return call(bus, "Join", (token, options), "(sa{sv})")


def test_exported_interfaces_match_the_contract(bus):
    """Every method, signal and property of the XML is exported with the same signature."""
    contract = ET.parse(REPO / "dbus" / "org.netmaker.Client.xml").getroot()
    err, (xml,) = call(bus, "Introspect", None, iface="org.freedesktop.DBus.Introspectable")
    assert err is None
    live = ET.fromstring(xml)

    def members(root, iface):
        el = root.find(f"interface[@name='{iface}']")
        assert el is not None, f"{iface} is not exported"
        out = {}
        for m in el:
            if m.tag in ("method", "signal"):
                out[(m.tag, m.get("name"))] = [(a.get("type"), a.get("direction", "out" if m.tag == "signal" else "in"))
                                                for a in m.findall("arg")]
            elif m.tag == "property":
                out[(m.tag, m.get("name"))] = m.get("type")
        return out
    assert members(live, IFACE) == members(contract, IFACE)
    assert live.find("interface[@name='org.freedesktop.DBus.ObjectManager']") is not None


def test_bad_token(bus):
    err, msg = join(bus, token="not a token!")
    assert err == "org.netmaker.Client.Error.InvalidArgument", (err, msg)
    assert "token" in msg and "base64url" in msg
    err, msg = join(bus, token="")
    assert err == "org.netmaker.Client.Error.InvalidArgument" and "empty" in msg
    # A well-formed token with a bad key value: refused without quoting the secret.
    bad = encode_token({"v": 1, "api": "https://198.18.9.254:9", "key": SECRET[:-1] + "1",
                        "spk": base64.b64encode(bytes(32)).decode()})
    err, msg = join(bus, token=bad)
    assert err == "org.netmaker.Client.Error.InvalidArgument", (err, msg)
    assert SECRET[:10] not in msg and bad not in msg


def test_bad_options(bus):
    err, msg = join(bus, color=GLib.Variant("s", "blue"))
    assert err == "org.netmaker.Client.Error.InvalidArgument"
    assert '"color"' in msg and "name" in msg and "listen-port" in msg
    err, msg = join(bus, name=GLib.Variant("u", 5))
    assert err == "org.netmaker.Client.Error.InvalidArgument" and '"name"' in msg and "string" in msg
    err, msg = join(bus, name=GLib.Variant("s", "Bad_Name"))
    assert err == "org.netmaker.Client.Error.InvalidArgument" and "Bad_Name" in msg
    # Too long: refused (never shortened) with the message the server gives for the same name
    # (test_bad_input.test_long_host_name_is_refused), which names the limit.
    for n in (64, 4096):
        err, msg = join(bus, name=GLib.Variant("s", "x" * n))
        assert err == "org.netmaker.Client.Error.InvalidArgument", (err, msg)
        assert msg.removeprefix(f"GDBus.Error:{err}: ") == (f'Invalid host name "{"x" * 64}" ({n} characters): use 1-63 characters of a-z, '
                       "0-9 and '-', not starting or ending with '-'"), msg
    # 63 characters pass the check: the join goes on and fails only at the unreachable server.
    err, msg = join(bus, name=GLib.Variant("s", "x" * 63))
    assert err == "org.netmaker.Client.Error.Unavailable", (err, msg)
    for port in (0, 70000):
        err, msg = join(bus, **opts(listen_port=GLib.Variant("u", port)))
        assert err == "org.netmaker.Client.Error.InvalidArgument" and str(port) in msg and "1-65535" in msg
    err, msg = join(bus, **opts(listen_port=GLib.Variant("s", "51821")))
    assert err == "org.netmaker.Client.Error.InvalidArgument" and "listen-port" in msg


def test_bad_network_names(bus):
    for method in ("Leave", "Connect", "Disconnect"):
        err, msg = call(bus, method, ("Not/A/Network",), "(s)")
        assert err == "org.netmaker.Client.Error.InvalidArgument", (method, err, msg)
        assert "Not/A/Network" in msg and "a-z" in msg


def test_unknown_and_unregistered(bus):
    err, msg = call(bus, "Connect", ("ghost",), "(s)")
    assert err == "org.netmaker.Client.Error.NotFound" and '"ghost"' in msg
    err, msg = call(bus, "Leave", ("ghost",), "(s)")
    assert err == "org.netmaker.Client.Error.NotRegistered", (err, msg)
    err, msg = call(bus, "Pull", None)
    assert err == "org.netmaker.Client.Error.NotRegistered", (err, msg)


def test_wrong_signature(bus):
    err, msg = call(bus, "Join", ("only-a-token",), "(s)")
    assert err == "org.freedesktop.DBus.Error.InvalidArgs", (err, msg)
    err, msg = call(bus, "Leave", (5,), "(u)")
    assert err == "org.freedesktop.DBus.Error.InvalidArgs", (err, msg)


def test_server_unreachable_is_unavailable(bus):
    err, msg = join(bus)
    assert err == "org.netmaker.Client.Error.Unavailable", (err, msg)
    assert "198.18.9.254" in msg and SECRET not in msg


def test_properties(bus):
    err, (props,) = call(bus, "GetAll", (IFACE,), "(s)", iface="org.freedesktop.DBus.Properties")
    assert err is None
    assert props["State"] == "unregistered" and props["Networks"] == [] and props["Version"]
    assert set(props) == {"Version", "HostId", "PublicKey", "State", "Server", "Networks", "PublicAddress"}
    assert props["PublicAddress"] == ""


def test_cli_exit_codes(node):
    """The exit statuses scripts rely on: 2 for usage, 3 when netclientd is not there."""
    for args in (("frobnicate",), ("leave",), ("join",), ("peers", "a", "b"), ("--bogus", "list")):
        p = node.netclient(*args)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert "--help" in p.stderr
    assert node.netclient("--help").returncode == 0
    node.stop_netclientd()
    try:
        for args in (("status",), ("list",), ("pull",), ("join", "-t", TOKEN)):
            p = node.netclient(*args)
            assert p.returncode == 3, (args, p.returncode, p.stderr)
            assert "not reachable" in p.stderr
    finally:
        node.start_netclientd()
    assert node.netclient("status").returncode == 0
