#!/usr/bin/python3
"""Boots one VM-tier guest by hand (the same code the pytest tier uses: nmtest/vm.py) and prints
its console, its checks and its timing; exits with the guest script's status.

  tests/vm/run.py checks chroot|systemd [NAME...]     the checks of tests/vm/checks/<mode>/
  tests/vm/run.py chroot SCRIPT                        any bash script (a host path)
  tests/vm/run.py systemd SCRIPT [--units dbus.service,polkit.service]
options: --timeout S, --env K=V (repeatable), --share virtiofs|9p, --smp N, --keep (leave the
per-boot directory in /tmp: console.log, out/output.log, out/journal.log), --quiet"""
import argparse
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from nmtest import vm  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["checks", "chroot", "systemd"])
    p.add_argument("args", nargs="*", help="checks: MODE [NAME...]; chroot/systemd: SCRIPT")
    p.add_argument("--units", default=None, help="systemd: comma-separated units to start first")
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--share", choices=["virtiofs", "9p"], default=None)
    p.add_argument("--smp", type=int, default=None)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--quiet", action="store_true", help="no console log, only checks and timing")
    a = p.parse_args()
    # SIGTERM/SIGHUP: leave through the normal path, which stops QEMU and removes the boot's files
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda s, f: sys.exit(128 + s))

    env = {}
    for kv in a.env:
        if "=" not in kv:
            p.error(f"--env {kv!r}: expected K=V")
        k, v = kv.split("=", 1)
        env[k] = v
    ok, reason = vm.Vm.available()
    if not ok:
        print(f"run.py: the VM tier cannot run here: {reason}", file=sys.stderr)
        return 77
    machine = vm.Vm(share=a.share, smp=a.smp, keep=a.keep or None)
    units = a.units.split(",") if a.units else None
    if a.what == "checks":
        if not a.args or a.args[0] not in ("chroot", "systemd"):
            p.error("checks: give the mode (chroot or systemd) and optionally check names")
        r = machine.run_checks(a.args[0], names=a.args[1:] or None, timeout=a.timeout, env=env, units=units)
    else:
        if len(a.args) != 1:
            p.error(f"{a.what}: give exactly one script")
        if a.what == "chroot":
            r = machine.run_chroot(a.args[0], timeout=a.timeout or 120, env=env)
        else:
            r = machine.run_systemd(a.args[0], units=units or vm.DEFAULT_UNITS, timeout=a.timeout or 300, env=env)
    if not a.quiet:
        print(r.log)
    for name, c in r.checks.items():
        print(f"{c.status:4} {name}: {c.detail}")
    print(r.timing())
    if machine.keep:
        print(f"kept: {machine.last_run_dir}")
    return r.rc


if __name__ == "__main__":
    sys.exit(main())
