#!/usr/bin/python3
"""The D-Bus authorisation matrix of netclientd: every method it exports × the kind of caller
(root; an unprivileged user in an active local session, in an inactive one, in none). What a
cell must answer comes from the shipped files, never from a list here: the method → polkit action
table of docs/dbus-api.md ("Authorisation"), the action's defaults in
polkit/org.netmaker.client.policy (allow_active / allow_inactive / allow_any: yes = allowed,
no = AccessDenied, auth_* = InteractiveAuthorizationRequired for a call that does not allow
interaction), and root (CAP_NET_ADMIN) allowed without polkit. A method the table does not name
fails its cell.

The caller part runs as the user under test, inside the session under test: it walks netclientd's
object tree (Introspect), calls every method with plausible arguments and no interactive
authorisation, and prints what each call answered, with its own logind session as logind reports
it (so a cell says which session it really ran in) and what it could see of the daemon's state
before and after its calls: in a column where every call that changes something must be refused,
that state must not change (the cell "unchanged"). It needs only Python's standard library and
gi, so it runs wherever it is copied to (a user may not be able to enter the checkout).

    python3 dbus_authz.py call [--wait FILE] > COLUMN.json                 (as the user under test)
    python3 dbus_authz.py check --repo DIR COLUMN=COLUMN.json ...          (CHECK lines; 1 on a failure)

COLUMN is root, active, inactive or none. The integration tier (test_dbus_authz_matrix.py) runs
root and none in a node without logind; the VM tier (tests/vm/checks/systemd/60-dbus-authz.sh)
runs all four with systemd-logind and real sessions on seat0's virtual terminals."""

import json
import os
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

NAME, ROOT = "org.netmaker.Client", "/org/netmaker/Client"
ACCESS_DENIED = "org.freedesktop.DBus.Error.AccessDenied"
INTERACTIVE = "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired"
POLKIT_ERRORS = (ACCESS_DENIED, INTERACTIVE)
COLUMNS = ("root", "active", "inactive", "none")
# The policy key polkit uses for an unprivileged caller in each kind of session.
POLICY_KEY = {"active": "allow_active", "inactive": "allow_inactive", "none": "allow_any"}
STANDARD = "org.freedesktop.DBus."
# Peer properties that change by themselves while a tunnel carries traffic.
VOLATILE = {"LatestHandshake", "RxBytes", "TxBytes"}

# A well-formed token of a server that does not exist (nothing listens at .254:9 of the underlay).
TOKEN = ("eyJ2IjoxLCJhcGkiOiJodHRwczovLzE5OC4xOC43LjI1NDo5Iiwia2V5IjoiQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB"
         "QUFBQUFBQUEiLCJzcGsiOiJBQUVDQXdRRkJnY0lDUW9MREEwT0R4QVJFaE1VRlJZWEdCa2FHeHdkSGg4PSJ9")
# Plausible values by argument name; others by type.
BY_NAME = {"token": TOKEN, "network": "office", "gateway": "", "options": {},
           "interface_name": "org.netmaker.Client", "property_name": "Version"}


# ---- expectations --------------------------------------------------------------------------------

def md_tables(text):
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| :]+\|$", lines[i + 1]):
            head = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, j = [], i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append([c.strip() for c in lines[j].strip().strip("|").split("|")])
                j += 1
            out.append((head, rows))
            i = j
        else:
            i += 1
    return out


def action_table(repo):
    """({method name or "org.freedesktop.DBus.*": action or None}, {action: defaults text}) from the
    table of docs/dbus-api.md whose first column is "polkit action"; "—" is no action (open to
    every local user)."""
    for head, rows in md_tables((Path(repo) / "docs" / "dbus-api.md").read_text()):
        if head and head[0] == "polkit action":
            methods, defaults = {}, {}
            for row in rows:
                m = re.match(r"`([^`]+)`", row[0])
                action = m.group(1) if m else None
                for name in re.findall(r"`([^`]+)`", row[1]):
                    if name in methods:
                        raise AssertionError(f"docs/dbus-api.md names {name} twice in the authorisation table")
                    methods[name] = action
                if action:
                    defaults[action] = (row[2] if len(row) > 2 else "").replace("*", "")
            return methods, defaults
    raise AssertionError("docs/dbus-api.md has no table whose first column is \"polkit action\"")


def policy_defaults(repo):
    """{action id: {"allow_any": …, "allow_inactive": …, "allow_active": …}} of the shipped policy."""
    root = ET.parse(Path(repo) / "polkit" / "org.netmaker.client.policy").getroot()
    out = {}
    for a in root.findall("action"):
        d = a.find("defaults")
        out[a.get("id")] = {k: (d.findtext(k) or "").strip() for k in ("allow_any", "allow_inactive", "allow_active")}
    return out


def xml_actions(repo):
    """{interface.method: action or None} from the annotations org.netmaker.Client.PolkitAction of
    dbus/org.netmaker.Client.xml ("none": None); a method without one is left out."""
    root = ET.parse(Path(repo) / "dbus" / "org.netmaker.Client.xml").getroot()
    out = {}
    for iface in root.findall("interface"):
        for m in iface.findall("method"):
            for a in m.findall("annotation"):
                if a.get("name") == "org.netmaker.Client.PolkitAction":
                    v = a.get("value")
                    out[f"{iface.get('name')}.{m.get('name')}"] = None if v == "none" else v
    return out


def action_of(methods, iface, member):
    """The action guarding iface.member, None when it is open to all, or KeyError."""
    for key in (f"{iface}.{member}", member):
        if key in methods:
            return methods[key]
    if iface.startswith(STANDARD) and "org.freedesktop.DBus.*" in methods:
        return methods["org.freedesktop.DBus.*"]
    raise KeyError(f"{iface}.{member}")


def expected(column, action, policy):
    """"allowed", or the error name polkit's answer becomes."""
    if column == "root" or action is None:
        return "allowed"
    value = policy[action][POLICY_KEY[column]]
    if value == "yes":
        return "allowed"
    if value == "no":
        return ACCESS_DENIED
    if value.startswith("auth_"):
        return INTERACTIVE
    raise AssertionError(f"polkit/org.netmaker.client.policy: {action} {POLICY_KEY[column]}={value!r}")


def consistency(repo):
    """Problems between the docs' table and the shipped policy (each action in both, same defaults)."""
    methods, doc_defaults = action_table(repo)
    policy = policy_defaults(repo)
    problems = []
    for action, text in doc_defaults.items():
        if action not in policy:
            problems.append(f"docs/dbus-api.md names {action}, which the policy does not define")
            continue
        want = " / ".join(policy[action][k] for k in ("allow_any", "allow_inactive", "allow_active"))
        if text != want:
            problems.append(f"docs/dbus-api.md: {action} defaults {text!r}, the policy says {want!r}")
    for action in policy:
        if action not in doc_defaults:
            problems.append(f"the policy defines {action}, which no method of docs/dbus-api.md uses")
    for key, action in sorted(xml_actions(repo).items()):
        iface, member = key.rsplit(".", 1)
        try:
            documented = action_of(methods, iface, member)
        except KeyError:
            problems.append(f"dbus/org.netmaker.Client.xml: {key} has no row in docs/dbus-api.md's table")
            continue
        if documented != action:
            problems.append(f"{key}: docs/dbus-api.md says {documented or '(none)'}, its annotation in "
                            f"dbus/org.netmaker.Client.xml {action or 'none'}")
    return problems


def evaluate(repo, column, results):
    """[(cell name, ok, detail)] for one column's results (what `call` printed)."""
    methods, _ = action_table(repo)
    policy = policy_defaults(repo)
    cells = []
    s = results.get("session")
    if column == "root":
        ok, detail = results.get("uid") == 0, f"uid {results.get('uid')}"
    elif column == "none":
        ok, detail = results.get("uid") != 0 and s is None, f"uid {results.get('uid')}, session {s}"
    else:
        ok = (results.get("uid") != 0 and s is not None and s.get("Seat") == "seat0" and not s.get("Remote") and
              s.get("Active") == (column == "active"))
        detail = f"uid {results.get('uid')}, session {s}"
    cells.append(("caller", ok, f"the {column} caller: {detail}"))
    if not results.get("calls"):
        cells.append(("methods", False, f"no method was called: {results.get('error', 'nothing exported?')}"))
    refused_all = True  # every call this column made that changes something was to be refused
    for key, r in sorted(results.get("calls", {}).items()):
        iface, member = key.rsplit(".", 1)
        try:
            action = action_of(methods, iface, member)
        except KeyError:
            cells.append((key, False, f"{key} has no row in docs/dbus-api.md's authorisation table "
                                      f"(a polkit action, or \"—\" for read-only)"))
            continue
        want = expected(column, action, policy)
        refused_all &= want != "allowed" or action is None
        got = r.get("error")
        if want == "allowed":
            ok = got not in POLKIT_ERRORS
        else:
            ok = got == want and (action in (r.get("message") or ""))
        what = f"{key} ({action or 'no action'}) on {r.get('path')}: want {want}, got {got or 'success'}"
        cells.append((key, ok, what + ("" if ok else f" ({r.get('message')})")))
    if refused_all and results.get("calls"):
        before, after = results.get("before"), results.get("after")
        if before is None or after is None:
            cells.append(("unchanged", False, f"the caller could not read the daemon's state: "
                                              f"{results.get('state_error')}"))
        else:
            diff = state_diff(before, after)
            cells.append(("unchanged", not diff, "the refused calls changed nothing the daemon shows "
                          f"({len(before)} objects)" if not diff else "refused calls changed: " + "; ".join(diff[:8])))
    return cells


def state_diff(before, after):
    """["path interface.property: old -> new", ...] between two visible_state() results."""
    out = []
    for path in sorted(set(before) | set(after)):
        if path not in after:
            out.append(f"{path} disappeared")
        elif path not in before:
            out.append(f"{path} appeared")
        else:
            for iface in sorted(set(before[path]) | set(after[path])):
                b, a = before[path].get(iface, {}), after[path].get(iface, {})
                for prop in sorted(set(b) | set(a)):
                    if b.get(prop) != a.get(prop):
                        out.append(f"{path} {iface}.{prop}: {b.get(prop)!r} -> {a.get(prop)!r}")
    return out


# ---- the caller ----------------------------------------------------------------------------------

def _value(sig, name):
    from gi.repository import GLib
    if name in BY_NAME:
        return BY_NAME[name]
    if sig == "s":
        return "x"
    if sig == "v":
        return GLib.Variant("s", "x")
    if sig == "o":
        return "/"
    if sig == "b":
        return False
    if sig in ("y", "n", "q", "i", "u", "x", "t"):
        return 0
    if sig == "d":
        return 0.0
    if sig.startswith("a{"):
        return {}
    if sig.startswith("a"):
        return []
    raise ValueError(f"no plausible value for an argument of type {sig} ({name})")


def _walk(bus, path, found):
    from gi.repository import Gio
    v = bus.call_sync(NAME, path, "org.freedesktop.DBus.Introspectable", "Introspect", None, None,
                      Gio.DBusCallFlags.NONE, 25000, None)
    node = ET.fromstring(v.unpack()[0])
    for iface in node.findall("interface"):
        for m in iface.findall("method"):
            key = f"{iface.get('name')}.{m.get('name')}"
            if key not in found:
                args = [(a.get("type"), a.get("name") or "") for a in m.findall("arg") if a.get("direction", "in") == "in"]
                found[key] = (path, args)
    for child in node.findall("node"):
        _walk(bus, path.rstrip("/") + "/" + child.get("name"), found)


def _session_props(bus, path):
    from gi.repository import Gio, GLib
    props = bus.call_sync("org.freedesktop.login1", path, "org.freedesktop.DBus.Properties", "GetAll",
                          GLib.Variant("(s)", ("org.freedesktop.login1.Session",)), None,
                          Gio.DBusCallFlags.NONE, 5000, None).unpack()[0]
    seat = props.get("Seat")
    return {"Id": props.get("Id"), "Seat": seat[0] if seat else "", "Active": props.get("Active"),
            "State": props.get("State"), "Remote": props.get("Remote"), "Type": props.get("Type"),
            "VTNr": props.get("VTNr")}


def session_of(bus, pid, uid):
    """The logind session polkit finds for this process, as logind reports it, or None (no logind,
    or no session). polkit asks for the process's session (sd_pid_get_session(): its cgroup is a
    session scope) and, when it is in none (a service with PAMName=, as here), for its user's
    display session (sd_uid_get_display()); "via" says which answered."""
    from gi.repository import Gio, GLib

    def login1(path, iface, method, sig, args):
        return bus.call_sync("org.freedesktop.login1", path, iface, method, GLib.Variant(sig, args), None,
                             Gio.DBusCallFlags.NONE, 5000, None).unpack()

    try:
        (path,) = login1("/org/freedesktop/login1", "org.freedesktop.login1.Manager", "GetSessionByPID", "(u)", (pid,))
        return dict(_session_props(bus, path), via="process")
    except GLib.Error:
        pass
    try:
        (user,) = login1("/org/freedesktop/login1", "org.freedesktop.login1.Manager", "GetUser", "(u)", (uid,))
        (display,) = login1(user, "org.freedesktop.DBus.Properties", "Get", "(ss)",
                            ("org.freedesktop.login1.User", "Display"))
        sid, spath = display
        if sid:
            return dict(_session_props(bus, spath), via="user display")
    except GLib.Error:
        pass
    return None


def visible_state(bus):
    """{object path: {interface: {property: value}}}: every object of netclientd with every property
    (the root object's own, and the ObjectManager's children), but the VOLATILE ones."""
    from gi.repository import Gio, GLib
    (objects,) = bus.call_sync(NAME, ROOT, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", None, None,
                               Gio.DBusCallFlags.NONE, 10000, None).unpack()
    (own,) = bus.call_sync(NAME, ROOT, "org.freedesktop.DBus.Properties", "GetAll",
                           GLib.Variant("(s)", ("org.netmaker.Client",)), None,
                           Gio.DBusCallFlags.NONE, 10000, None).unpack()
    objects = dict(objects)
    objects[ROOT] = {"org.netmaker.Client": own}
    return json.loads(json.dumps({path: {iface: {k: v for k, v in props.items() if k not in VOLATILE}
                                         for iface, props in ifaces.items()}
                                  for path, ifaces in objects.items()}, default=repr))


def call_all(timeout=25.0):
    """What every exported method answers this process (no interactive authorisation)."""
    from gi.repository import Gio, GLib
    out = {"uid": os.getuid(), "pid": os.getpid(), "calls": {}}
    bus = Gio.bus_get_sync(Gio.BusType.SYSTEM, None)
    out["session"] = session_of(bus, os.getpid(), os.getuid())
    found = {}
    try:
        _walk(bus, ROOT, found)
    except GLib.Error as e:
        out["error"] = f"Introspect of {ROOT}: {e.message}"
        return out
    try:
        out["before"] = visible_state(bus)
    except GLib.Error as e:
        out["state_error"] = e.message
    for key, (path, args) in sorted(found.items()):
        iface, member = key.rsplit(".", 1)
        r = {"path": path}
        try:
            sig = "(" + "".join(t for t, _ in args) + ")"
            params = GLib.Variant(sig, tuple(_value(t, n) for t, n in args)) if args else None
            bus.call_sync(NAME, path, iface, member, params, None, Gio.DBusCallFlags.NONE, int(timeout * 1000), None)
            r["error"] = None
        except GLib.Error as e:
            r["error"] = Gio.DBusError.get_remote_error(e) or f"(local) {e.message}"
            r["message"] = re.sub(r"^GDBus\.Error:[^ ]+: ", "", e.message)
        except ValueError as e:
            r["error"], r["message"] = "(test)", str(e)
        out["calls"][key] = r
    try:
        out["after"] = visible_state(bus)
    except GLib.Error as e:
        out["state_error"] = e.message
    return out


def main(argv):
    if len(argv) >= 2 and argv[1] == "call":
        from gi.repository import Gio  # noqa: F401 (slow to import: before the wait, not after)
        args = argv[2:]
        wait = args[args.index("--wait") + 1] if "--wait" in args else None
        if wait:
            # The check makes the session what the column needs, then says go.
            deadline = time.monotonic() + 240
            while not os.path.exists(wait):
                if time.monotonic() > deadline:
                    print(json.dumps({"uid": os.getuid(), "error": f"no {wait} after 240 s"}))
                    return 1
                time.sleep(0.1)
        print(json.dumps(call_all(), indent=1, sort_keys=True))
        return 0
    if len(argv) >= 2 and argv[1] == "check":
        args = argv[2:]
        repo = args[args.index("--repo") + 1] if "--repo" in args else str(Path(__file__).resolve().parents[3])
        prefix = args[args.index("--prefix") + 1] if "--prefix" in args else "dbus_authz"
        failed = False
        for problem in consistency(repo):
            print(f"CHECK {prefix}.policy fail {problem}")
            failed = True
        for spec in (a for a in args if "=" in a and not a.startswith("--")):
            column, path = spec.split("=", 1)
            try:
                results = json.loads(Path(path).read_text())
            except (OSError, ValueError) as e:
                print(f"CHECK {prefix}.{column} fail no results in {path}: {e}")
                failed = True
                continue
            for name, ok, detail in evaluate(repo, column, results):
                print(f"CHECK {prefix}.{column}.{name} {'ok' if ok else 'fail'} {detail}")
                failed |= not ok
        return 1 if failed else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
