"""The build installed as a package would be, into a world-readable staging root the test run
owns (`meson install --destdir`), so that what runs as another user (`runuser -u nobody netclient`)
or inside a unit's sandbox (ProtectHome=, PrivateTmp= in the VM guest) never depends on where the
checkout lives or who may enter it. A checkout under /root (0700) or /tmp works like any other.

    from nmtest import stage
    stage.root()                   # Path of the staging root: <root>/usr/local/bin/netclient, ...
    stage.installed("netclient")   # Path inside the root of a built or shipped file, by its name
    stage.prefix_path("netclient") # its path on a machine it is installed on: /usr/local/bin/netclient
    stage.manifest()               # {name: installed path} for every file meson installs

Staged once per process (about 0.3 s) and removed at exit. The staging root sits in /tmp, which
every user may traverse; its directories are 0755 and its files keep meson's modes."""

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import server as nmserver


class StageError(AssertionError):
    pass


_root = None
_manifest = None


def manifest() -> dict:
    """{basename of the built or source file: absolute installed path}, from
    `meson introspect --installed` (the build's own install plan)."""
    global _manifest
    if _manifest is None:
        b = nmserver.build_dir()
        r = subprocess.run(["meson", "introspect", str(b), "--installed"], capture_output=True, text=True,
                           timeout=60)
        if r.returncode != 0:
            raise StageError(f"meson introspect {b} --installed failed: {r.stderr.strip()} "
                             "(configure and build NM_BUILD_DIR first)")
        plan = json.loads(r.stdout)
        _manifest = {}
        for src, dst in plan.items():
            name = Path(src).name
            if name in _manifest and _manifest[name] != dst:
                raise StageError(f"two installed files are built from files named {name!r}: "
                                 f"{_manifest[name]} and {dst}")
            _manifest[name] = dst
    return _manifest


def root() -> Path:
    """The staging root, made on first use: `meson install --no-rebuild --destdir ROOT`."""
    global _root
    if _root is not None:
        return _root
    b = nmserver.build_dir()
    if not (b / "build.ninja").exists():
        raise StageError(f"{b} is not a configured build directory: build first (NM_BUILD_DIR)")
    d = Path(tempfile.mkdtemp(prefix="nmtest-stage-", dir="/tmp"))
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    os.chmod(d, 0o755)
    old = os.umask(0o022)
    try:
        r = subprocess.run(["meson", "install", "-C", str(b), "--no-rebuild", "--quiet", "--destdir", str(d)],
                           capture_output=True, text=True, timeout=300)
    finally:
        os.umask(old)
    if r.returncode != 0:
        raise StageError(f"meson install -C {b} --destdir {d} failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    for p in [d, *d.rglob("*")]:
        if p.is_dir() and not p.is_symlink():
            os.chmod(p, 0o755)
    _root = d
    return _root


def prefix_path(name) -> str:
    """Where meson installs the file built as (or shipped as) `name`, e.g.
    "netclientd" -> "/usr/local/libexec/netclientd"."""
    m = manifest()
    if name not in m:
        raise StageError(f"{name!r} is not installed by the build (installed: {', '.join(sorted(m))})")
    return m[name]


def installed(name) -> Path:
    """The staged copy of `name` (inside root())."""
    p = root() / prefix_path(name).lstrip("/")
    if not p.exists():
        raise StageError(f"{p} is missing after meson install")
    return p
