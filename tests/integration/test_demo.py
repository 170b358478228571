"""The README's first command keeps working: tools/demo.py brings up netmakerd with Mosquitto, a
bootstrapped admin, nmctl, and a three-node namespaced mesh in which every node pings every other,
then cleans up after itself (no namespaces or processes left)."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_demo_runs_and_cleans_up(tmp_path):
    before = namespaces()
    p = subprocess.run([sys.executable, str(REPO / "tools" / "demo.py"), "--exit", "--state", str(tmp_path / "demo")],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    out = p.stdout
    assert "first admin: 'admin'" in out
    assert "Logged in to https://" in out
    assert "TLS pin:      sha256//" in out
    assert out.count(": ok") == 6, out
    assert "FAILED" not in out
    assert "netmakerd is yours" in out
    left = {n for n in namespaces() - before if n.startswith("nmdemo-")}
    assert not left, f"namespaces left behind: {left}"
