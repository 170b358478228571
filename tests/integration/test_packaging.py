"""The packages (tools/build-packages.sh: packaging/netmaker.spec with Debian's rpmbuild, debian/
with dpkg-buildpackage, built from this tree without sanitizers) are what `meson install` installs,
split the same way (netmaker-server, netmaker-client, and for the desktop the NetworkManager plugin
and the GNOME Shell extension, named as each distribution names such packages), lint clean, and their maintainer scripts never restart netclientd: the RPMs'
files are exactly those of `meson install --destdir` from a plain `meson setup --prefix=/usr`, and
so are the .debs' once Debian's two directory choices are mapped back (units in /lib/systemd/system,
zsh's vendor-completions); the server and client packages hold the same files in both formats;
rpmlint (with Fedora's settings, packaging/rpmlint.toml) reports no error and lintian no error or
warning; every file belongs to root. A file added to meson without its package entry fails here
(rpmbuild and dh_missing --fail-missing already refuse to build)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.environ.get("NM_PACKAGE_TESTS") == "0",
                                reason="NM_PACKAGE_TESTS=0 (tools/run-tests.sh --no-packages)")

TOP = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("NM_PKG_DIR", TOP / "build-pkg"))
# The packages: our name for each, its RPM name (Fedora's), its .deb name (Debian's).
PACKAGES = {"server": ("netmaker-server", "netmaker-server"),
            "client": ("netmaker-client", "netmaker-client"),
            "networkmanager": ("NetworkManager-netmaker", "network-manager-netmaker"),
            "gnome": ("gnome-shell-extension-netmaker", "gnome-shell-extension-netmaker")}
# Debian's packaging choices, mapped back to the upstream defaults.
DEB_PATHS = [("/lib/systemd/system/", "/usr/lib/systemd/system/"),
             ("/usr/share/zsh/vendor-completions/", "/usr/share/zsh/site-functions/")]


def run(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def built():
    """Builds the packages of this tree unless build-pkg/ already holds them (its stamp)."""
    r = subprocess.run([str(TOP / "tools/build-packages.sh"), "--if-stale"], capture_output=True, text=True,
                       timeout=3600)
    assert r.returncode == 0, f"tools/build-packages.sh failed:\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}"
    rpm_part = {rpm: part for part, (rpm, _) in PACKAGES.items()}
    deb_part = {deb: part for part, (_, deb) in PACKAGES.items()}
    rpms = {rpm_part.get(re.match(r"(.+)-[^-]+-[^-]+\.[^.]+\.rpm$", p.name).group(1), p.name): p
            for p in (OUT / "rpm/RPMS").glob("*/*.rpm")}
    debs = {deb_part.get(p.name.split("_")[0], p.name): p for p in (OUT / "deb").glob("*.deb")
            if "-dbgsym" not in p.name}
    assert set(rpms) == set(PACKAGES) and set(debs) == set(PACKAGES), (rpms, debs)
    return rpms, debs


def version():
    return re.search(r"version: '([^']+)'", (TOP / "meson.build").read_text()).group(1)


def reference_files():
    root = OUT / "reference/root"
    files = {"/" + str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink()}
    assert len(files) > 30, files
    return files


def unzip_man(path):
    return re.sub(r"^(/usr/share/man/man\d/.*)\.gz$", r"\1", path)


def rpm_files(rpm):
    """{path: (mode, user, group)} of the regular files and links of an RPM (not its directories,
    not the build-id links rpm adds)."""
    out = run("rpm", "-qp", "--qf", "[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]", str(rpm))
    files = {}
    for line in out.splitlines():
        perms, user, group, path = line.split(" ", 3)
        if perms.startswith("d") or path.startswith("/usr/lib/.build-id/"):
            continue
        files[unzip_man(path)] = (perms, user, group)
    return files


def deb_files(deb, package):
    """The same for a .deb: its regular files and links, Debian's own documents (copyright,
    changelog) and lintian overrides left out, Debian's directories mapped back."""
    files = {}
    for line in run("dpkg-deb", "-c", str(deb)).splitlines():
        perms, owner, _size, _date, _time, path = line.split(None, 5)
        path = path.split(" -> ")[0].lstrip(".")
        if perms.startswith("d") or path.startswith((f"/usr/share/doc/{package}/", "/usr/share/lintian/overrides/")):
            continue
        for deb_dir, upstream in DEB_PATHS:
            if path.startswith(deb_dir):
                path = upstream + path[len(deb_dir):]
        user, group = owner.split("/")
        files[unzip_man(path)] = (perms, user, group)
    return files


def test_versions_in_step():
    v = version()
    spec = (TOP / "packaging/netmaker.spec").read_text()
    assert re.search(rf"^Version:\s+{re.escape(v)}$", spec, re.M), "packaging/netmaker.spec Version"
    assert re.search(rf"^\* .* - {re.escape(v)}-\d+$", spec, re.M), "packaging/netmaker.spec %changelog"
    first = (TOP / "debian/changelog").read_text().splitlines()[0]
    assert first.startswith(f"netmaker ({v})"), f"debian/changelog: {first}"


def no_overlap(lists):
    seen = {}
    for part, files in lists.items():
        for f in files:
            assert f not in seen, (f, seen.get(f), part)
            seen[f] = part


def test_rpm_files_are_meson_install(built):
    rpms, _ = built
    lists = {part: set(rpm_files(rpm)) for part, rpm in rpms.items()}
    packaged = set().union(*lists.values())
    ref = reference_files()
    assert packaged == ref, (f"only in the RPMs: {sorted(packaged - ref)}; "
                             f"only in meson install: {sorted(ref - packaged)}")
    no_overlap(lists)


def test_deb_files_are_meson_install(built):
    _, debs = built
    lists = {part: set(deb_files(deb, PACKAGES[part][1])) for part, deb in debs.items()}
    packaged = set().union(*lists.values())
    ref = reference_files()
    assert packaged == ref, (f"only in the debs: {sorted(packaged - ref)}; "
                             f"only in meson install: {sorted(ref - packaged)}")
    no_overlap(lists)


def test_rpm_and_deb_split_alike(built):
    rpms, debs = built
    for part in PACKAGES:
        assert set(rpm_files(rpms[part])) == set(deb_files(debs[part], PACKAGES[part][1])), part
    server = set(rpm_files(rpms["server"]))
    client = set(rpm_files(rpms["client"]))
    nm = set(rpm_files(rpms["networkmanager"]))
    gnome = set(rpm_files(rpms["gnome"]))
    assert {"/usr/sbin/netmakerd", "/usr/bin/nmctl", "/usr/lib/systemd/system/netmakerd.socket",
            "/usr/lib/sysusers.d/netmakerd.conf", "/usr/share/doc/netmaker/Caddyfile.example"} <= server
    assert {"/usr/libexec/netclientd", "/usr/bin/netclient", "/usr/share/dbus-1/system.d/org.netmaker.Client.conf",
            "/usr/share/polkit-1/actions/org.netmaker.client.policy",
            "/usr/lib/NetworkManager/conf.d/50-netmaker.conf",
            "/usr/lib/systemd/network/10-netmaker.network", "/usr/share/doc/netmaker/desktop.md"} <= client
    assert nm == {"/usr/libexec/nm-netmaker-service", "/usr/lib/NetworkManager/VPN/nm-netmaker-service.name",
                  "/usr/share/dbus-1/system.d/nm-netmaker-service.conf"}, nm
    ext = "/usr/share/gnome-shell/extensions/netmaker-mesh@netmaker.org/"
    assert gnome == {ext + f for f in ("metadata.json", "extension.js", "model.js")}, gnome


def test_desktop_packages_need_the_client(built):
    """The plugin and the extension only call netclientd; the extension is architecture-independent."""
    rpms, debs = built
    for part in ("networkmanager", "gnome"):
        assert "netmaker-client" in run("rpm", "-qp", "--requires", str(rpms[part])), part
        assert "netmaker-client" in run("dpkg-deb", "-f", str(debs[part]), "Depends"), part
    assert "NetworkManager" in run("rpm", "-qp", "--requires", str(rpms["networkmanager"]))
    assert "network-manager" in run("dpkg-deb", "-f", str(debs["networkmanager"]), "Depends")
    assert rpms["gnome"].name.endswith(".noarch.rpm") and debs["gnome"].name.endswith("_all.deb")


def test_owners_and_modes(built):
    rpms, debs = built
    for files in [rpm_files(rpm) for rpm in rpms.values()] + [deb_files(deb, PACKAGES[part][1])
                                                               for part, deb in debs.items()]:
        for path, (perms, user, group) in files.items():
            assert (user, group) == ("root", "root"), (path, user, group)
            executable = path.startswith(("/usr/bin/", "/usr/sbin/", "/usr/libexec/"))
            assert perms == ("-rwxr-xr-x" if executable else "-rw-r--r--"), (path, perms)


def test_rpmlint_has_no_errors(built):
    text = (OUT / "rpmlint.txt").read_text()
    m = re.search(r"(\d+) packages and (\d+) specfiles checked; (\d+) errors, (\d+) warnings", text)
    assert m, text[-2000:]
    assert m.group(1) == str(len(PACKAGES)) and m.group(2) == "1", m.group(0)
    assert m.group(3) == "0", "\n".join(line for line in text.splitlines() if ": E: " in line)


def test_lintian_is_clean(built):
    text = (OUT / "lintian.txt").read_text()
    tags = [line for line in text.splitlines() if re.match(r"^[EWIPX]: ", line)]
    bad = [t for t in tags if t[0] in "EW"]
    assert not bad, "\n".join(bad)
    assert "netmaker-server" in run("dpkg-deb", "-f", str(built[1]["server"]), "Package")


def code(text):
    """A script without its comment lines."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def scripts_rpm(rpm):
    return code(run("rpm", "-qp", "--scripts", str(rpm)))


def scripts_deb(deb, tmp_path):
    d = tmp_path / deb.stem
    subprocess.run(["dpkg-deb", "-e", str(deb), str(d)], check=True)
    return {p.name: code(p.read_text()) for p in d.iterdir() if p.name in ("preinst", "postinst", "prerm", "postrm")}


def test_scriptlets_restart_netmakerd_never_netclientd(built, tmp_path):
    rpms, debs = built
    server = scripts_rpm(rpms["server"])
    assert "try-restart netmakerd.service" in server and "preset netmakerd.socket netmakerd.service" in server
    assert "disable --now netmakerd.socket netmakerd.service" in server
    assert "restart netmakerd.socket" not in server
    client = scripts_rpm(rpms["client"])
    assert "preset netclientd.service" in client and "disable --now netclientd.service" in client
    assert "restart" not in client, client

    s = scripts_deb(debs["server"], tmp_path)
    assert "systemd-sysusers" in s["postinst"] and "netmakerd.conf" in s["postinst"]
    assert "_dh_action=restart" in s["postinst"] and "deb-systemd-invoke $_dh_action 'netmakerd.service'" in s["postinst"]
    assert "deb-systemd-invoke start 'netmakerd.socket'" in s["postinst"]
    assert not re.search(r"restart.*netmakerd\.socket", s["postinst"])
    # Enabled again on upgrade only if the admin had enabled it (debhelper's "don't enable" block).
    assert s["postinst"].count("if deb-systemd-helper debian-installed") == 2, s["postinst"]
    c = scripts_deb(debs["client"], tmp_path)
    for name, text in c.items():
        assert "restart" not in text, (name, text)
    assert "deb-systemd-invoke stop 'netclientd.service'" in c["prerm"] and "remove" in c["prerm"]
    assert c["postinst"].count("if deb-systemd-helper debian-installed") == 1, c["postinst"]
