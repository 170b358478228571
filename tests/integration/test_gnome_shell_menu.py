"""The GNOME Shell extension in Debian's real gnome-shell (43), headless: inside a mesh node (its own
system bus with netclientd joined to a network with two peers, one of them an internet gateway, one
online), `gnome-shell --headless --wayland --virtual-monitor` runs as an unprivileged user with the
extension installed as the build installs it and enabled in its settings; a perf script (the Shell's
own automation hook, tests/integration/gnome-shell/perf/netmakerMenu.js) opens Quick Settings and the
extension's menu, takes a screenshot (the test's artifact: NM_BUILD_DIR/test-artifacts/
gnome-shell-menu.png) and reports what the menu says: the network's switch, this host's address to
copy, "Peers online: 1 of 2", the internet gateway choice with node3. Skipped without gnome-shell."""

import json
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from nmtest import stage
from nmtest.mesh import Mesh
from nmtest.server import build_dir

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces)"),
    pytest.mark.skipif(shutil.which("gnome-shell") is None,
                       reason="gnome-shell is not installed (apt-get install gnome-shell)"),
]

HERE = Path(__file__).parent
UUID = "netmaker-mesh@netmaker.org"
WIDTH, HEIGHT = 1280, 800


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", head[16:24])


def test_menu_in_headless_gnome_shell(tmp_path):
    with Mesh(tmp_path, nodes=3, subnet=72) as mesh:
        a, b, c = mesh.nodes
        for n in (a, b, c):
            mesh.join(n)
        mesh.wait_full_mesh()
        c_id = next(n for n in mesh.status(c)["networks"])["node_id"]
        mesh.server.admin("PUT", f"/nodes/{c_id}/internet-gateway", expect=200)
        assert a.ping(mesh.mesh_address(b), count=2, timeout=3)

        # The user's session: its own runtime and configuration directories, the extension
        # enabled in its settings (a keyfile backend: no dconf), the build's extension found
        # through XDG_DATA_DIRS, the perf script through GNOME_SHELL_JS.
        home = Path(tempfile.mkdtemp(prefix="nmtest-gnome-shell-", dir="/tmp"))
        try:
            os.chmod(home, 0o755)
            run = home / "run"
            settings = home / "config" / "glib-2.0" / "settings"
            settings.mkdir(parents=True)
            (settings / "keyfile").write_text(
                "[org/gnome/shell]\n"
                f"enabled-extensions=['{UUID}']\n"
                "disable-user-extensions=false\n"
                "welcome-dialog-last-shown-version='999'\n")
            # No display manager here, so no screen lock: the Shell says so once per user
            # (a banner over the menu) unless it has said so before.
            shown = home / ".local" / "share" / "gnome-shell" / "lock-warning-shown"
            shown.parent.mkdir(parents=True)
            shown.touch()
            run.mkdir(mode=0o700)
            js = home / "js"
            shutil.copytree(HERE / "gnome-shell" / "perf", js / "perf")
            out = home / "shot" / "menu.png"
            out.parent.mkdir()
            subprocess.run(["chown", "-R", "nobody:nogroup", str(home)], check=True)
            metadata = stage.root() / stage.prefix_path("metadata.json").lstrip("/")
            datadir = metadata.parents[3]  # <root>/usr/local/share (…/gnome-shell/extensions/UUID/)
            env = {
                # runuser sets HOME to the user's own (/nonexistent for nobody): the XDG variables win
                "HOME": str(home), "XDG_RUNTIME_DIR": str(run), "XDG_CONFIG_HOME": str(home / "config"),
                "XDG_DATA_HOME": str(home / ".local" / "share"), "XDG_CACHE_HOME": str(home / "cache"),
                "XDG_DATA_DIRS": f"{datadir}:/usr/local/share:/usr/share",
                "GSETTINGS_BACKEND": "keyfile",
                "GNOME_SHELL_JS": f"{js}:resource:///org/gnome/shell",
                "SHELL_PERF_MODULE": "netmakerMenu", "NM_SCREENSHOT": str(out),
                "NO_AT_BRIDGE": "1", "GTK_A11Y": "none",
            }
            log = tmp_path / "gnome-shell.log"
            with open(log, "wb") as f:
                p = a.popen(["dbus-run-session", "--", "gnome-shell", "--headless", "--wayland", "--no-x11",
                             "--virtual-monitor", f"{WIDTH}x{HEIGHT}"], user="nobody", env=env,
                            stdout=f, stderr=subprocess.STDOUT)
                try:
                    rc = p.wait(180)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                    raise AssertionError(f"gnome-shell did not finish in 180 s:\n{log.read_text()[-3000:]}")
            text = log.read_text(errors="replace")
            assert rc == 0, f"gnome-shell exited with {rc}:\n{text[-3000:]}"
            report = json.loads(Path(f"{out}.json").read_text())
            assert report["extension"] and report["extension"]["error"] is None, report
            assert report["title"] == "office" and report["checked"] is True, report
            items = report["items"]
            addr = mesh.mesh_address(a)
            assert "office" in items, items
            assert f"{addr}  (click to copy)" in items, items
            assert "Peers online: 1 of 2" in items or "Peers online: 2 of 2" in items, items
            assert "Internet: direct" in items and "  node3" in items, items
            assert png_size(out) == (WIDTH, HEIGHT)
            artifacts = build_dir() / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            shutil.copy(out, artifacts / "gnome-shell-menu.png")
            (artifacts / "gnome-shell-menu.json").write_text(json.dumps(report, indent=1))
            print(f"\nscreenshot: {artifacts / 'gnome-shell-menu.png'}")
        finally:
            shutil.rmtree(home, ignore_errors=True)
