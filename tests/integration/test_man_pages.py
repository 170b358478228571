"""The man pages as the build makes and installs them (man/*.scd through scdoc): `mandoc -T lint`
finds nothing in them but the lower-case title, and each documents what its program says it has. Every option
in each program's --help (for nmctl: every command and sub-command, found by walking their --help)
is in its page, every command of netclient and nmctl is, every configuration key netmakerd --help
lists (with its environment variable) is in netmakerd.conf(5), every key netclientd reads
(src/netclientd/daemon-config.c) is in netclientd.conf(5), and every method, signal and property
of the D-Bus contract (dbus/org.netmaker.Client.xml) is in org.netmaker.Client(5). A program that
gains an option without its page fails here."""

import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nmtest import server as nmserver
from nmtest import stage

SRC = Path(__file__).resolve().parents[2]
PAGES = {
    "netclient.1": "/usr/share/man/man1",
    "nmctl.1": "/usr/share/man/man1",
    "netclientd.conf.5": "/usr/share/man/man5",
    "netmakerd.conf.5": "/usr/share/man/man5",
    "org.netmaker.Client.5": "/usr/share/man/man5",
    "netclientd.8": "/usr/share/man/man8",
    "netmakerd.8": "/usr/share/man/man8",
}
OPTION = re.compile(r"(?<![\w-])(--?[A-Za-z][A-Za-z0-9-]*)")


def page_file(name) -> Path:
    p = nmserver.build_dir() / "man" / name
    assert p.exists(), (f"{p} was not built: install scdoc (tools/install-deps.sh) and configure with "
                        "-Dman=enabled")
    return p


def page_text(name) -> str:
    """The page as a reader sees it, one paragraph a line (no breaks inside option names)."""
    r = subprocess.run(["mandoc", "-T", "utf8", "-O", "width=1000", str(page_file(name))],
                       capture_output=True, text=True, check=True)
    return re.sub(".\b", "", r.stdout)


def help_text(*argv) -> str:
    r = subprocess.run([*argv, "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"{argv} --help: {r.returncode} {r.stderr}"
    return r.stdout


def options_in(text):
    return {o for o in OPTION.findall(text) if o not in ("--", "-")}


def missing(words, text):
    return sorted(w for w in words if not re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text))


@pytest.mark.parametrize("name", sorted(PAGES))
def test_mandoc_lint(name):
    """Nothing at any level (STYLE included) but the one note every page of a command with a
    lower-case name gets, as systemd's do."""
    r = subprocess.run(["mandoc", "-T", "lint", str(page_file(name))], capture_output=True, text=True)
    notes = [line for line in (r.stdout + r.stderr).splitlines()
             if line.strip() and "STYLE: lower case character in document title" not in line]
    assert not notes, "\n".join(notes)
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(page_file(name))], capture_output=True)
    assert r.returncode == 0, r


def test_installed_where_man_looks():
    installed = {n: str(Path(p).parent) for n, p in stage.manifest().items() if n in PAGES}
    assert set(installed) == set(PAGES), installed
    prefix = str(Path(stage.prefix_path("nmctl")).parents[1])     # /usr/local or /usr
    for name, d in installed.items():
        assert d == PAGES[name].replace("/usr", prefix, 1), (name, d)


def test_netclient():
    text = page_text("netclient.1")
    h = help_text(nmserver.binary("netclient"))
    assert not missing(options_in(h), text), missing(options_in(h), text)
    commands = re.findall(r"^  ([a-z][a-z-]+) ", h.split("Commands:")[1].split("\n\n")[0], re.M)
    assert len(commands) >= 9 and not missing(commands, text), missing(commands, text)


def test_netclientd():
    text = page_text("netclientd.8")
    h = help_text(nmserver.binary("netclientd"))
    assert not missing(options_in(h), text), missing(options_in(h), text)
    conf = page_text("netclientd.conf.5")
    keys = re.findall(r'\{"(\w+)", "(\w+)", "(NETCLIENTD_\w+)"\}', (SRC / "src/netclientd/daemon-config.c").read_text())
    assert len(keys) >= 13
    sections = {s for s, _, _ in keys}
    assert not missing([f"[{s}] SECTION" for s in sections], conf)
    assert not missing([f"{k}=" for _, k, _ in keys], conf), missing([f"{k}=" for _, k, _ in keys], conf)
    assert not missing([e for _, _, e in keys], conf), missing([e for _, _, e in keys], conf)


def test_netmakerd():
    text = page_text("netmakerd.8")
    h = help_text(nmserver.binary("netmakerd"))
    options, keys = h.split("Configuration keys")
    assert not missing(options_in(options), text), missing(options_in(options), text)
    conf = page_text("netmakerd.conf.5")
    found = re.findall(r"^  ([a-z_0-9]+) +\$(NETMAKERD_[A-Z_0-9]+)", keys, re.M)
    assert len(found) >= 30, keys
    assert not missing([f"{k}=" for k, _ in found], conf), missing([f"{k}=" for k, _ in found], conf)
    assert not missing([e for _, e in found], conf), missing([e for _, e in found], conf)


def nmctl_commands(nm, path=()):
    """{command path: its --help}, walking every command group and sub-command."""
    h = help_text(nm, *path)
    found = {path: h}
    if not path:
        subs = re.findall(r"^  ([a-z][a-z-]*)", h.split("Commands:")[1].split("\n\n")[0], re.M)
    else:
        # "  nmctl GROUP VERB ..." lines (a sub-group lists "  nmctl ... LAST VERB")
        subs = []
        for line in h.splitlines():
            w = line.split()
            if line.startswith("  nmctl ") and path[-1] in w[1:-1]:
                v = w[w.index(path[-1], 1) + 1]
                if re.fullmatch(r"[a-z][a-z-]*", v):
                    subs.append(v)
    for s in dict.fromkeys(subs):
        if s in path:
            continue
        found.update(nmctl_commands(nm, (*path, s)))
    return found


def test_nmctl():
    text = page_text("nmctl.1")
    commands = nmctl_commands(nmserver.binary("nmctl"))
    assert ("dns", "export") in commands and ("acl", "rule", "add") in commands, sorted(commands)
    # Plural aliases (networks, hosts...) need no entry of their own.
    leaves = [p for p in commands if not any(q[:len(p)] == p and q != p for q in commands)]
    assert not missing([" ".join(p) for p in leaves], text), missing([" ".join(p) for p in leaves], text)
    gaps = {" ".join(p): missing(options_in(h), text) for p, h in commands.items()}
    assert not {k: v for k, v in gaps.items() if v}, {k: v for k, v in gaps.items() if v}


def test_dbus_api():
    text = page_text("org.netmaker.Client.5")
    root = ET.parse(SRC / "dbus/org.netmaker.Client.xml").getroot()
    names = []
    for iface in root.iter("interface"):
        if iface.get("name").startswith("org.netmaker."):
            names.append(iface.get("name"))
            names += [m.get("name") for kind in ("method", "signal", "property") for m in iface.iter(kind)]
    assert len(names) > 30, names
    assert not missing(names, text), missing(names, text)


def test_the_matching_can_fail():
    """The matching itself: a word the page lacks is reported, also as part of a longer word."""
    assert missing(["--output", "--out"], "nmctl dns export NETWORK --output FILE") == ["--out"]
    assert options_in("  -t --token=TOKEN  join -t TOKEN [--name NAME]") == {"-t", "--token", "--name"}
