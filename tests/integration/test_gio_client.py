"""A desktop-style client (what a GNOME Shell extension would do): Gio.DBusProxy objects on a node's
system bus read netclientd's properties from their cache and are told about changes through
PropertiesChanged (g-properties-changed) and the ObjectManager's InterfacesAdded, without
polling, when another host joins the network."""

import os
import time

import pytest
from gi.repository import Gio, GLib

from nmtest.mesh import Mesh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)")

NAME, PATH = "org.netmaker.Client", "/org/netmaker/Client"


def pump(until, timeout=20.0, what="an event"):
    ctx = GLib.MainContext.default()
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        ctx.iteration(False) or time.sleep(0.01)


def test_proxy_reads_and_follows_changes(tmp_path):
    with Mesh(tmp_path, nodes=2, subnet=4) as mesh:
        a, b = mesh.nodes
        flags = Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
        bus = Gio.DBusConnection.new_for_address_sync(a.bus_address, flags, None, None)
        mgr = Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.NONE, None, NAME, PATH, NAME, None)
        assert mgr.get_cached_property("State").unpack() == "unregistered"
        assert mgr.get_cached_property("Networks").unpack() == []

        changes = []
        mgr.connect("g-properties-changed", lambda p, changed, inval: changes.append(changed.unpack()))
        mesh.join(a)
        pump(lambda: mgr.get_cached_property("State").unpack() == "online", what="State online")
        (net_path,) = mgr.get_cached_property("Networks").unpack()
        assert net_path == "/org/netmaker/Client/network/office"
        seen = {k for c in changes for k in c}
        assert {"State", "Networks", "HostId", "Server"} <= seen, seen
        assert any(c.get("State") == "joining" for c in changes)

        net = Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.NONE, None, NAME, net_path,
                                     "org.netmaker.Client.Network", None)
        assert net.get_cached_property("Name").unpack() == "office"
        assert net.get_cached_property("Interface").unpack() == "nm-office"
        assert net.get_cached_property("Peers").unpack() == []
        net_changes = []
        net.connect("g-properties-changed", lambda p, changed, inval: net_changes.append(changed.unpack()))
        added = []
        bus.signal_subscribe(NAME, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded", PATH, None,
                             Gio.DBusSignalFlags.NONE,
                             lambda c, s, path, i, sig, params: added.append(params.unpack()))

        # Another host joins: the peer object appears and the network's Peers change.
        mesh.join(b)
        pump(lambda: len(net.get_cached_property("Peers").unpack()) == 1, what="Peers to change")
        assert any("Peers" in c for c in net_changes)
        (peer_path,) = net.get_cached_property("Peers").unpack()
        pump(lambda: any(p == peer_path for p, _ in added), what="InterfacesAdded for the peer")
        ifaces = dict(added)[peer_path]
        peer_props = ifaces["org.netmaker.Client.Peer"]
        assert peer_props["PublicKey"] == mesh.public_key(b)
        assert peer_props["Addresses"] == [mesh.mesh_address(b)]

        # Live statistics arrive as PropertiesChanged too.
        peer = Gio.DBusProxy.new_sync(bus, Gio.DBusProxyFlags.NONE, None, NAME, peer_path,
                                      "org.netmaker.Client.Peer", None)
        a.ping(mesh.mesh_address(b), count=2, timeout=3)
        pump(lambda: peer.get_cached_property("LatestHandshake").unpack() > 0, what="a handshake")
        pump(lambda: peer.get_cached_property("RxBytes").unpack() > 0, what="received bytes")
        bus.close_sync(None)
