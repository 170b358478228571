"""polkit guards every state-changing method of netclientd: with the real dbus-daemon and polkitd of
a node (our bus policy and .policy installed as a package would), an unprivileged local user
without a session cannot join, leave, pull, connect or disconnect, but can read everything; root
can; and a polkit rule like the shipped example lets a group in."""

import base64
import json
import os
import xml.etree.ElementTree as ET

import pytest

from nmtest.client import encode_token
from nmtest.netns import Underlay
from nmtest.node import AgentNode
from nmtest.server import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, polkitd)")

# A well-formed token for a server that does not exist (nothing listens on the underlay).
TOKEN = encode_token({"v": 1, "api": "https://198.18.7.254:9", "key": "A" * 32,
                      "spk": base64.b64encode(bytes(range(32))).decode()})


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with Underlay(nodes=1, subnet=7) as net:
        n = AgentNode(net.nodes[0], tmp_path_factory.mktemp("polkit-node")).start()
        try:
            yield n
        finally:
            n.stop()


@pytest.fixture(scope="module")
def group_node(tmp_path_factory):
    # The shipped example rule, for a group the unprivileged test user is in.
    rules = (REPO / "polkit" / "org.netmaker.client.rules.example").read_text().replace('"netmaker"', '"nogroup"')
    with Underlay(nodes=1, subnet=8) as net:
        n = AgentNode(net.nodes[0], tmp_path_factory.mktemp("polkit-group"), polkit_rules=rules).start()
        try:
            yield n
        finally:
            n.stop()


def test_unprivileged_user_cannot_join(node):
    p = node.netclient("--no-ask-password", "join", "-t", TOKEN, user="nobody")
    assert p.returncode == 4, (p.returncode, p.stdout, p.stderr)
    assert "not authorised" in p.stderr and "org.netmaker.client.join" in p.stderr, p.stderr
    # Nothing happened: no keys were made, the daemon is still unregistered.
    assert not (node.state_dir / "identity.json").exists()
    assert node.netclient_json("status", user="nobody")["state"] == "unregistered"


def test_unprivileged_user_refused_with_interaction_allowed(node):
    """Even when the caller allows interactive authorization, 'no' for any means no."""
    p = node.netclient("join", "-t", TOKEN, user="nobody")
    assert p.returncode == 4, (p.returncode, p.stderr)


def contract_action(method):
    """The polkit action dbus/org.netmaker.Client.xml names for a method (its annotation)."""
    root = ET.parse(REPO / "dbus" / "org.netmaker.Client.xml").getroot()
    m = root.find(f"interface[@name='org.netmaker.Client']/method[@name='{method}']")
    return m.find("annotation[@name='org.netmaker.Client.PolkitAction']").get("value")


@pytest.mark.parametrize("args,method", [
    (("leave", "office"), "Leave"),
    (("pull",), "Pull"),
    (("connect", "office"), "Connect"),
    (("disconnect", "office"), "Disconnect"),
    (("internet-gateway", "office", "5d2c2a6e-1111-4222-8333-444455556666"), "SetInternetGateway"),
])
def test_unprivileged_user_cannot_change_anything(node, args, method):
    """Outside a session even connecting is refused, and the refusal names the action the XML
    documents for the method."""
    action = contract_action(method)
    assert action.startswith("org.netmaker.client."), action
    p = node.netclient("--no-ask-password", *args, user="nobody")
    assert p.returncode == 4, (args, p.returncode, p.stderr)
    assert action in p.stderr, p.stderr


def test_reads_need_no_authorisation(node):
    """GetStatus and GetPeers (annotated "none") answer an unprivileged user."""
    assert contract_action("GetStatus") == "none" and contract_action("GetPeers") == "none"
    p = node.busctl("call", "org.netmaker.Client", "/org/netmaker/Client", "org.netmaker.Client", "GetStatus",
                    user="nobody")
    assert p.returncode == 0 and '"state" s "unregistered"' in p.stdout, (p.stdout, p.stderr)
    p = node.busctl("call", "org.netmaker.Client", "/org/netmaker/Client", "org.netmaker.Client", "GetPeers",
                    "st", "office", "0", user="nobody")
    assert "NotFound" in p.stderr or "not joined" in p.stderr, p.stderr


def test_error_names_for_denied_calls(node):
    """dbus-send shows the error name busctl hides: polkit's refusal is AccessDenied."""
    p = node.run(["dbus-send", "--system", "--print-reply", "--dest=org.netmaker.Client", "/org/netmaker/Client",
                  "org.netmaker.Client.Pull"], user="nobody")
    assert p.returncode != 0
    assert "org.freedesktop.DBus.Error.AccessDenied" in p.stderr, p.stderr
    assert "polkit" in p.stderr


def test_unprivileged_user_reads_properties(node):
    status = node.netclient_json("status", user="nobody")
    assert status["version"] and status["state"] == "unregistered" and status["networks"] == []
    p = node.busctl("get-property", "org.netmaker.Client", "/org/netmaker/Client", "org.netmaker.Client",
                    "State", user="nobody")
    assert p.returncode == 0 and p.stdout.strip() == 's "unregistered"', (p.stdout, p.stderr)
    p = node.busctl("call", "org.netmaker.Client", "/org/netmaker/Client", "org.freedesktop.DBus.ObjectManager",
                    "GetManagedObjects", user="nobody")
    assert p.returncode == 0, p.stderr
    assert node.netclient("list", user="nobody").returncode == 0
    assert node.netclient("peers", user="nobody").returncode == 0


def test_root_is_authorised(node):
    """root passes polkit and gets as far as the (absent) server: a failure, not a refusal."""
    p = node.netclient("join", "-t", TOKEN)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "Cannot reach the server" in p.stderr, p.stderr
    assert node.netclient_json("status")["state"] == "unregistered"


def test_group_rule_lets_members_in(group_node):
    p = group_node.netclient("--no-ask-password", "join", "-t", TOKEN, user="nobody")
    # Authorised by the rule: refused only because the server cannot be reached.
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "Cannot reach the server" in p.stderr, p.stderr
