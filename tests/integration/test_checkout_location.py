"""The suite does not depend on where the checkout lives: from a copy of the tree (sources and the
build) in a 0700 directory under /root, which neither `nobody` nor a unit with ProtectHome= can
enter, the polkit tests (which run `netclient` as nobody) and the VM check that runs netmakerd
under its real sandboxed units still pass. They would fail if a test ran a program from the build
tree as another user or pointed a unit at it."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from nmtest import vm
from nmtest.server import REPO, build_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, runuser, the VM tier)")


@pytest.fixture(scope="module")
def private_checkout():
    """A copy of the tree's tracked files and of the build directory under a 0700 directory of
    root's home (/root, itself 0700 on Debian; /var/tmp where there is no /root)."""
    if not (build_dir() / "build.ninja").exists():
        pytest.fail(f"{build_dir()} is not a configured build: build first (NM_BUILD_DIR)")
    home = "/root" if os.path.isdir("/root") else "/var/tmp"
    parent = Path(tempfile.mkdtemp(prefix="nmtest-checkout-", dir=home))  # 0700
    try:
        tree = parent / "netmaker"
        files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others",
                                "--exclude-standard"], capture_output=True, check=True).stdout.split(b"\0")
        for f in filter(None, files):
            src = REPO / os.fsdecode(f)
            if src.is_file():
                dst = tree / os.fsdecode(f)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        shutil.copytree(build_dir(), tree / "build-copy", symlinks=True)
        assert os.stat(parent).st_mode & 0o777 == 0o700
        yield tree
    finally:
        shutil.rmtree(parent, ignore_errors=True)


def run_in(tree, argv, timeout):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["NM_BUILD_DIR"] = str(tree / "build-copy")
    # the kernel and initramfs of the VM tier are a cache of this machine's, not of the tree
    env.setdefault("NM_VM_CACHE", str(vm._cache_dir()))
    return subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)


def test_nobody_cannot_enter_the_copy(private_checkout):
    """The premise: the build tree of the copy is out of reach of an unprivileged user."""
    netclient = private_checkout / "build-copy" / "src" / "netclient" / "netclient"
    r = subprocess.run(["runuser", "-u", "nobody", "--", str(netclient), "--help"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode != 0 and "Permission denied" in r.stderr, (r.returncode, r.stderr)


def test_polkit_tests_pass_from_the_copy(private_checkout, tmp_path):
    r = run_in(private_checkout, [sys.executable, "-m", "pytest", "tests/integration/test_polkit.py", "-q",
                                  "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'inner'}"], timeout=600)
    # every test passed: nothing failed, errored or skipped
    assert r.returncode == 0 and re.search(r"^\d+ passed in ", r.stdout, re.M), r.stdout[-6000:] + r.stderr[-2000:]


def test_vm_check_passes_from_the_copy(private_checkout):
    ok, why = vm.Vm.available()
    if not ok:
        pytest.skip(why)
    r = run_in(private_checkout, [sys.executable, "tests/vm/run.py", "--quiet", "checks", "systemd",
                                  "netmakerd_socket"], timeout=900)
    lines = [line for line in r.stdout.splitlines() if "netmakerd_socket" in line]
    assert r.returncode == 0 and lines and all(line.startswith("ok ") for line in lines), \
        r.stdout[-6000:] + r.stderr[-2000:]
    assert any("netmakerd_socket.binary" in line for line in lines), r.stdout[-3000:]
