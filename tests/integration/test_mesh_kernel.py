"""The mesh again, with netclientd's kernel WireGuard backend (generic netlink) instead of
wireguard-go: in a QEMU guest running Debian's kernel (which has WireGuard) on the host's root
filesystem, two nodes join with `netclient join`, get kernel `wireguard` links, ping each other,
and a restarted netclientd adopts its kernel link without resetting the session (VM tier: about
a minute under TCG; skipped where no guest can boot). Then a third node joins and leaves: node1
applies each as a one-peer delta, and its session with node2 keeps its handshake (no REPLACE_PEERS,
node2's entry never rewritten)."""

import os

import pytest

from nmtest import vm
from nmtest.server import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (namespaces, QEMU)")


def test_kernel_backend_mesh(tmp_path):
    ok, why = vm.Vm.available()
    if not ok:
        pytest.skip(why)
    script = tmp_path / "mesh-kernel.sh"
    script.write_text(f"""#!/bin/bash
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ip link set lo up  # the guest starts with loopback down
cd {REPO}/tests/integration || exit 1
/usr/bin/python3 -m nmtest.mesh --nodes 2 --backend kernel --restart-check --peer-change-check
rc=$?
echo "CHECK mesh_kernel $([ $rc = 0 ] && echo ok || echo fail) rc=$rc"
exit $rc
""")
    r = vm.Vm(mem_mb=1024).run_chroot(str(script), timeout=600)
    assert r.rc == 0, r.log[-6000:]
    out = r.output
    assert "nm-office on node1: kernel wireguard link" in out, out
    assert "node1 -> node2 (10.99.0.2): ok" in out and "node2 -> node1 (10.99.0.1): ok" in out, out
    assert "sessions kept" in out, out
    for step in ("node3 joins", "node3 leaves"):
        line = next((x for x in out.splitlines() if x.startswith(step + ":")), None)
        assert line and line.endswith("session kept, one peer written"), line or out
