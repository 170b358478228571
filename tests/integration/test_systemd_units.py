"""The shipped systemd units are valid for systemd 252 (`systemd-analyze verify` with no warnings),
keep their sandbox (offline `systemd-analyze security` exposure), wire the socket to the service
under the name netmakerd looks for, and the sysusers.d entry creates the user the service runs as."""

import re
import socket
import shutil
import subprocess

import pytest

from nmtest.server import REPO, binary, build_dir
from nmtest.tlsutil import make_certificate


def configured_unit(name):
    p = build_dir() / "systemd" / name
    if not p.exists():
        pytest.fail(f"{p} is missing: configure and build {build_dir()} first")
    return p


def unit_copies(tmp_path):
    """The configured units in a temporary directory, ExecStart pointing at the built binary
    (verify checks that the program exists; it is not installed on this machine)."""
    d = tmp_path / "units"
    d.mkdir()
    netmakerd = binary("netmakerd")
    assert netmakerd.exists(), f"{netmakerd} is missing: build first"
    for name in ("netmakerd.socket", "netmakerd.service"):
        text = configured_unit(name).read_text()
        assert not re.search(r"@[a-z_]+@", text), f"{name}: unsubstituted @variables@"
        text, n = re.subn(r"^ExecStart=\S*/netmakerd\b", f"ExecStart={netmakerd}", text, flags=re.M)
        if name.endswith(".service"):
            assert n == 1, "netmakerd.service: no ExecStart=…/netmakerd line"
        (d / name).write_text(text)
    return d


def directives(path):
    out = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def test_verify(tmp_path):
    d = unit_copies(tmp_path)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(d / "netmakerd.socket"),
                        str(d / "netmakerd.service")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # Unknown keys and other problems are only warnings to verify: none is allowed.
    assert r.stderr.strip() == "" and r.stdout.strip() == "", r.stdout + r.stderr


def test_verify_notices_a_broken_unit(tmp_path):
    """The check above can fail: a typo and a missing program are reported."""
    d = unit_copies(tmp_path)
    svc = d / "netmakerd.service"
    svc.write_text(svc.read_text().replace("ProtectHome=yes", "ProtectHome=yes\nProtectHomme=yes")
                   .replace(f"ExecStart={binary('netmakerd')}", "ExecStart=/nonexistent/netmakerd"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(d / "netmakerd.socket"), str(svc)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "ProtectHomme" in r.stderr and "/nonexistent/netmakerd" in r.stderr, r.stderr


def test_sandbox_exposure(tmp_path):
    d = unit_copies(tmp_path)
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", "--man=no", "--threshold=20",
                        str(d / "netmakerd.service")], capture_output=True, text=True, timeout=60)
    level = re.search(r"Overall exposure level for netmakerd.service: (\d+\.\d+)", r.stdout)
    assert level, r.stdout + r.stderr
    assert r.returncode == 0, f"exposure {level.group(1)} is above 2.0:\n{r.stdout}"


def test_unit_contents():
    svc = directives(configured_unit("netmakerd.service"))
    sock = directives(configured_unit("netmakerd.socket"))
    want = {
        "Type": "notify", "User": "netmaker", "StateDirectory": "netmaker", "StateDirectoryMode": "0700",
        "ConfigurationDirectory": "netmaker", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "PrivateDevices": "yes", "NoNewPrivileges": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
        "RestrictNamespaces": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
        "SystemCallArchitectures": "native", "CapabilityBoundingSet": "",
    }
    for k, v in want.items():
        assert svc.get(("Service", k)) == [v], f"netmakerd.service: {k}={svc.get(('Service', k))}, want {v!r}"
    assert "@system-service" in svc[("Service", "SystemCallFilter")]
    assert svc[("Unit", "Requires")] == ["netmakerd.socket"]
    assert sock[("Socket", "ListenStream")] == ["8081"]
    # netmakerd picks its socket by this name (sd_listen_fds_with_names).
    assert sock[("Socket", "FileDescriptorName")] == ["api"]
    src = "\n".join(p.read_text() for p in (REPO / "src" / "netmakerd").glob("*.c"))
    assert '"api"' in src, "netmakerd's sources never mention the fd name \"api\""


def test_sysusers_creates_the_user(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    r = subprocess.run(["systemd-sysusers", f"--root={root}", str(REPO / "systemd" / "netmakerd.sysusers")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    passwd = (root / "etc" / "passwd").read_text()
    group = (root / "etc" / "group").read_text()
    user = [line.split(":") for line in passwd.splitlines() if line.startswith("netmaker:")]
    assert len(user) == 1, passwd
    _, _, uid, gid, _, home, shell = user[0]
    assert 0 < int(uid) < 1000 and home == "/var/lib/netmaker" and shell.endswith("nologin")
    assert re.search(rf"^netmaker:x:{gid}:", group, re.M), group


def test_units_are_installed(tmp_path):
    """`meson install` puts the units, the sysusers entry and the example configurations (netmakerd's,
    Caddy's) where systemd and admins look for them."""
    dest = tmp_path / "dest"
    r = subprocess.run(["meson", "install", "-C", str(build_dir()), "--no-rebuild", "--destdir", str(dest)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    found = {p.name: p for p in dest.rglob("*") if p.is_file()}
    for name in ("netmakerd.socket", "netmakerd.service"):
        assert name in found and "/systemd/system/" in str(found[name]), sorted(found)
    assert "/sysusers.d/" in str(found["netmakerd.conf"])
    assert "/doc/" in str(found["netmakerd.conf.example"])
    assert found["Caddyfile.example"].parent == found["netmakerd.conf.example"].parent
    exec_start = directives(found["netmakerd.service"])[("Service", "ExecStart")][0]
    assert exec_start.endswith("/netmakerd") and (dest / exec_start.lstrip("/")).exists(), exec_start
    shutil.rmtree(dest)


def test_example_configuration_is_complete_and_valid(tmp_path):
    """The shipped example names every key netmakerd knows (and no other), and with every
    line uncommented it is a configuration netmakerd accepts."""
    example = (REPO / "systemd" / "netmakerd.conf.example").read_text()
    documented = re.findall(r"^#([a-z_]+)=", example, re.M)
    out = subprocess.run([str(binary("netmakerd")), "--help"], capture_output=True, text=True, timeout=30).stdout
    known = re.findall(r"^  ([a-z_]+) +\$NETMAKERD_", out, re.M)
    assert known, out
    assert sorted(documented) == sorted(known), \
        f"missing from the example: {sorted(set(known) - set(documented))}; " \
        f"unknown to netmakerd: {sorted(set(documented) - set(known))}"
    # Uncommented (with the state in tmp_path and values for the empty secrets), it is valid:
    # netmakerd gets past the configuration and fails only where the test wants it to, at the
    # port that is already taken.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cert, key = make_certificate(tmp_path / "tls", "example")
        values = {"listen": f"127.0.0.1:{port}", "state_directory": str(tmp_path / "state"),
                  "tls_certificate": str(cert), "tls_key": str(key), "broker_certificate": str(cert),
                  "database": f"sqlite://{tmp_path}/state/netmaker.db", "broker_url": "",
                  "broker_password": "x", "admin_password": "a-long-password", "master_key": "m" * 32}
        text = re.sub(r"^#([a-z_]+)=(.*)$", lambda m: f"{m[1]}={values.get(m[1], m[2])}", example, flags=re.M)
        conf = tmp_path / "netmakerd.conf"
        conf.write_text(text)
        r = subprocess.run([str(binary("netmakerd")), "--config", str(conf)], capture_output=True, text=True,
                           timeout=30)
    assert r.returncode != 0 and f"Failed to listen on 127.0.0.1:{port}" in r.stderr, r.stderr
