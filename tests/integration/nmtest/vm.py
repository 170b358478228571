"""The VM test tier's Python API: boots Debian 12's stock kernel (which has WireGuard) under
QEMU/TCG with the host's own root filesystem (read-only share + tmpfs overlay) and runs a bash
script in it, either in a chroot (about 5 s a boot) or from a unit under systemd as PID 1
(about 25-40 s a boot), and reads back its exit status and its `CHECK` lines.

    from nmtest import vm
    ok, why = vm.Vm.available()              # (False, reason) -> pytest.skip(reason)
    r = vm.Vm().run_chroot("/abs/script.sh", timeout=120)
    rc, log = r                              # a VmResult unpacks as (rc, log)
    r.checks["kernel_wg.ping"]               # CheckResult(status="ok", detail="...")
    r = vm.Vm().run_systemd("/abs/script.sh", units=["dbus.service", "polkit.service"])
    r = vm.Vm().run_checks("chroot")         # every check_* in tests/vm/checks/chroot/*.sh

How the tier works, its knobs and timings: docs/testing.md. Boots never overlap (a lock file), so
parallel pytest workers queue instead of starving each other of the 2 CPU cores."""

import fcntl
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from . import stage

REPO = Path(__file__).resolve().parents[3]
VMDIR = REPO / "tests" / "vm"
CHECKS_DIR = VMDIR / "checks"
QEMU = "qemu-system-x86_64"
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
LOCK_FILE = "/run/lock/nmtest-vm.lock" if os.path.isdir("/run/lock") else "/tmp/nmtest-vm.lock"

# What the systemd guest starts before the test when the caller does not say.
DEFAULT_UNITS = ("dbus.service",)
# Loaded before every test script (tun: wireguard-go and TUN-based tests).
DEFAULT_MODULES = ("wireguard", "tun", "veth", "bridge")

# Host environment variables every guest script sees as well.
FORWARDED_ENV = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "G_DEBUG", "G_SLICE")

CHECK_RE = re.compile(r"^CHECK (\S+) (ok|fail|skip)(?: (.*))?$")
RESULT_RE = re.compile(r"GUEST-RESULT rc=(\d+)")


class VmError(Exception):
    pass


class CheckResult(NamedTuple):
    status: str  # "ok", "fail" or "skip"
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class VmResult:
    """What one boot produced. Unpacks as `(rc, log)`.

    rc:       the script's exit status; 124 when the host's timeout hit, 125 when the guest's
              /init failed, 126 when no result came back (QEMU died, kernel panic...)
    log:      everything in one text: QEMU's console, the script's output, and on failure in
              systemd mode the guest's journal
    output:   the script's own stdout+stderr
    checks:   {name: CheckResult} from the script's `CHECK <name> ok|fail|skip <detail>` lines
    seconds:  QEMU start to QEMU exit (wall clock, host)
    boot_seconds: guest uptime when the test script started (boot cost)
    script_seconds: guest time the script took
    """

    def __init__(self, mode, rc, console, output, journal, seconds, boot_seconds,
                 script_seconds, timed_out):
        self.mode = mode
        self.rc = rc
        self.console = console
        self.output = output
        self.journal = journal
        self.seconds = seconds
        self.boot_seconds = boot_seconds
        self.script_seconds = script_seconds
        self.timed_out = timed_out
        self.checks = parse_checks(output)

    def __iter__(self):
        yield self.rc
        yield self.log

    @property
    def log(self) -> str:
        parts = [f"=== console ({self.mode} guest, rc={self.rc}, {self.seconds:.1f} s)\n{self.console}"]
        if self.output and self.output not in self.console:
            parts.append(f"=== script output\n{self.output}")
        if self.journal:
            parts.append(f"=== guest journal\n{self.journal}")
        return "\n".join(parts)

    def timing(self) -> str:
        boot = f"{self.boot_seconds:.1f}" if self.boot_seconds is not None else "?"
        script = f"{self.script_seconds:.1f}" if self.script_seconds is not None else "?"
        return (f"{self.mode} guest: qemu start -> exit {self.seconds:.1f} s "
                f"(guest boot -> script {boot} s, script {script} s)")

    def check_names(self, prefix):
        """Names reported for the check `prefix` itself or its sub-checks `prefix.*`."""
        return [n for n in self.checks if n == prefix or n.startswith(prefix + ".")]

    def assert_check(self, name):
        """For tests: fails when check `name` (or one of its `name.*` sub-checks) failed or
        reported nothing; skips when all of them reported skip."""
        import pytest

        names = self.check_names(name)
        assert names, f"check {name} reported nothing (rc={self.rc})\n{self.failure_context()}"
        failed = [f"{n}: {self.checks[n].detail}" for n in names if self.checks[n].status == "fail"]
        assert not failed, "\n".join(failed) + "\n--- guest output (tail)\n" + self.failure_context()
        if all(self.checks[n].status == "skip" for n in names):
            pytest.skip("; ".join(f"{n}: {self.checks[n].detail}" for n in names))

    def assert_finished(self):
        """For tests: fails when the guest did not come back with the checks' results."""
        assert self.rc not in (124, 125, 126), (
            f"the {self.mode} guest did not finish (rc={self.rc})\n{self.log[-6000:]}")
        assert self.checks, f"the {self.mode} guest reported no CHECK line\n{self.log[-6000:]}"

    def failure_context(self, tail=60) -> str:
        lines = self.output.splitlines() or self.console.splitlines()
        text = "\n".join(lines[-tail:])
        if self.journal:
            text += "\n--- journal (tail)\n" + "\n".join(self.journal.splitlines()[-tail:])
        return text


def parse_checks(text) -> dict:
    checks = {}
    for line in text.splitlines():
        m = CHECK_RE.match(line.strip())
        if m:
            name, status, detail = m.group(1), m.group(2), m.group(3) or ""
            # A name reported twice keeps its worst outcome.
            prev = checks.get(name)
            if prev is None or prev.status != "fail":
                checks[name] = CheckResult(status, detail)
    return checks


def discover_checks(mode) -> list:
    """Names of the checks (functions `check_<name>`) in tests/vm/checks/<mode>/*.sh, in file and
    definition order."""
    names = []
    for f in sorted((CHECKS_DIR / mode).glob("*.sh")):
        for line in f.read_text().splitlines():
            m = re.match(r"^check_([A-Za-z0-9_]+)\s*\(\)", line)
            if m:
                names.append(m.group(1))
    return names


def _check_units(mode) -> list:
    """Units the check files of a mode ask for with a `# nmvm-units: a.service b.service` line."""
    units = []
    for f in sorted((CHECKS_DIR / mode).glob("*.sh")):
        for line in f.read_text().splitlines():
            m = re.match(r"^#\s*nmvm-units:\s*(.*)$", line)
            if m:
                units += [u for u in m.group(1).split() if u not in units]
    return units


def build_dir() -> Path:
    d = Path(os.environ.get("NM_BUILD_DIR", "build"))
    return d if d.is_absolute() else REPO / d


def _cache_dir() -> Path:
    return Path(os.environ.get("NM_VM_CACHE", VMDIR / ".cache"))


class _Prepared(NamedTuple):
    kver: str
    kroot: Path
    vmlinux: Path
    initramfs: Path


_prepared = None  # (ok, reason, _Prepared|None), once per process


def _prepare():
    """Fetches the kernel and builds the initramfs (both cached on disk). (ok, reason, prep)."""
    global _prepared
    if _prepared is not None:
        return _prepared
    if os.environ.get("NM_VM_TESTS", "1") == "0":
        _prepared = (False, "the VM tier is disabled (NM_VM_TESTS=0)", None)
        return _prepared
    if os.geteuid() != 0:
        _prepared = (False, "the VM tier needs root (virtiofsd, 9p shares of /)", None)
        return _prepared
    if shutil.which(QEMU) is None:
        _prepared = (False, f"{QEMU} is missing (apt-get install qemu-system-x86)", None)
        return _prepared
    for tool, pkg in (("cpio", "cpio"), ("depmod", "kmod"), ("apt-get", "apt")):
        if shutil.which(tool) is None:
            _prepared = (False, f"{tool} is missing (apt-get install {pkg})", None)
            return _prepared
    cache = _cache_dir()
    r = subprocess.run([str(VMDIR / "fetch-kernel.sh"), str(cache)], capture_output=True, text=True)
    if r.returncode != 0 or len(r.stdout.split()) != 3:
        _prepared = (False, "cannot fetch Debian's kernel: " + (r.stderr.strip().splitlines() or ["?"])[-1], None)
        return _prepared
    kver, kroot, vmlinux = r.stdout.split()
    r = subprocess.run([str(VMDIR / "build-initramfs.sh"), kroot, kver, str(cache)],
                       capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        _prepared = (False, "cannot build the initramfs: " + (r.stderr.strip().splitlines() or ["?"])[-1], None)
        return _prepared
    _prepared = (True, "", _Prepared(kver, Path(kroot), Path(vmlinux), Path(r.stdout.strip())))
    return _prepared


def _host_khz() -> int:
    # microvm has no HPET/PM timer: under TCG the kernel's PIT calibration of the TSC sometimes
    # fails and the boot hangs (about 1 in 3). Telling it the rate avoids that.
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return int(float(line.split(":")[1]) * 1000)
    except (OSError, ValueError):
        pass
    return 2000000


def _write_fixture(root: Path, guest_path: str, content):
    if not guest_path.startswith("/"):
        raise VmError(f"fixture path {guest_path!r} is not absolute (a path inside the guest)")
    dst = root / guest_path.lstrip("/")
    dst.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Path) and content == Path("/dev/null"):
        os.symlink("/dev/null", dst)  # a masked unit
    elif isinstance(content, Path):
        if content.is_dir():
            shutil.copytree(content, dst, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(content, dst)
    elif isinstance(content, bytes):
        dst.write_bytes(content)
    else:
        dst.write_text(content)


class Vm:
    """One configuration of the guest. Knobs (arguments, or environment for all tests):
    share   how the host's / reaches the guest: "virtiofs" (default) or "9p" (NM_VM_SHARE)
    smp     vCPUs (NM_VM_SMP; default 1 in chroot mode, 2 in systemd mode: MTTCG helps a boot)
    mem_mb  guest RAM (NM_VM_MEM; default 512 chroot, 1024 systemd)
    keep    keep the per-boot directory with console.log, output.log... (NM_VM_KEEP=1)
    persist a host directory: the guest's writable layer is an ext4 disk image kept there, so what
            one boot writes is there at the next boot with the same `persist` (a reboot)"""

    def __init__(self, share=None, smp=None, mem_mb=None, keep=None, persist=None):
        self.share = share or os.environ.get("NM_VM_SHARE") or (
            "virtiofs" if os.access(VIRTIOFSD, os.X_OK) else "9p")
        if self.share not in ("virtiofs", "9p"):
            raise VmError(f"share {self.share!r} is not one of virtiofs, 9p")
        self.smp = smp or (int(os.environ["NM_VM_SMP"]) if os.environ.get("NM_VM_SMP") else None)
        self.mem_mb = mem_mb or (int(os.environ["NM_VM_MEM"]) if os.environ.get("NM_VM_MEM") else None)
        self.keep = keep if keep is not None else os.environ.get("NM_VM_KEEP") == "1"
        self.persist = Path(persist) if persist else None
        self.last_run_dir = None

    @staticmethod
    def available():
        """(True, "") when a guest can boot here; else (False, a reason for pytest.skip). The
        first call fetches and caches the kernel (a few seconds, once per machine)."""
        ok, reason, _ = _prepare()
        return ok, reason

    # --------------------------------------------------------------------------------------

    def run_chroot(self, script, timeout=120, env=None, fixtures=None, modules=DEFAULT_MODULES):
        """Runs `script` (an absolute host path) with bash in a chroot of the host's / (tmpfs
        overlay on top) on the guest kernel, with `modules` loaded. No systemd, no D-Bus."""
        return self._run("chroot", script, timeout, env, fixtures, modules, units=())

    def run_systemd(self, script, units=DEFAULT_UNITS, fixtures=None, timeout=300, env=None,
                    modules=DEFAULT_MODULES):
        """Boots systemd as PID 1 from the host's / (tmpfs overlay on top) and runs `script` with
        bash from a oneshot unit ordered after `units` (e.g. "dbus.service", "polkit.service",
        "systemd-networkd.service", "systemd-resolved.service"), which the boot pulls in."""
        return self._run("systemd", script, timeout, env, fixtures, modules, units=tuple(units))

    def run_checks(self, mode, names=None, timeout=None, env=None, fixtures=None, units=None):
        """Runs the checks of tests/vm/checks/<mode>/ (all, or `names`) in one boot; systemd mode
        starts the union of the units the check files name in `# nmvm-units:` lines."""
        script = str(CHECKS_DIR / "run-checks.sh")
        env = dict(env or {})
        env["NMVM_CHECKS_DIR"] = str(CHECKS_DIR / mode)
        env["NMVM_CHECKS"] = " ".join(names or [])
        if mode == "chroot":
            return self.run_chroot(script, timeout=timeout or 240, env=env, fixtures=fixtures)
        if mode == "systemd":
            want = list(DEFAULT_UNITS) + [u for u in (units or _check_units(mode)) if u not in DEFAULT_UNITS]
            return self.run_systemd(script, units=want, fixtures=fixtures, timeout=timeout or 480, env=env)
        raise VmError(f"unknown guest mode {mode!r} (expected chroot or systemd)")

    # --------------------------------------------------------------------------------------

    def _run(self, mode, script, timeout, env, fixtures, modules, units):
        ok, reason, prep = _prepare()
        if not ok:
            raise VmError(f"the VM tier is not available: {reason}")
        script = os.path.abspath(script)
        if not os.path.isfile(script):
            raise VmError(f"test script {script!r} does not exist (it must be a file on the host)")
        for u in units:
            if not re.fullmatch(r"[A-Za-z0-9@._:\\-]+\.(service|socket|target|path|timer|mount)", u):
                raise VmError(f"unit name {u!r} is not a unit (like dbus.service)")
        run = Path(tempfile.mkdtemp(prefix=f"nmvm-{mode}-", dir="/tmp"))
        self.last_run_dir = run
        try:
            self._write_run_fixtures(run, mode, script, env, fixtures, modules, units)
            # another boot may be a long benchmark: wait for it rather than fail
            with _vm_lock(max(timeout + 600, 1800)):
                return self._boot(run, mode, prep, timeout)
        finally:
            if not self.keep:
                shutil.rmtree(run, ignore_errors=True)

    def _write_run_fixtures(self, run, mode, script, env, fixtures, modules, units):
        (run / "out").mkdir()
        root = run / "root"
        root.mkdir()
        variables = {
            "NMVM_MODE": mode,
            "NMVM_SCRIPT": script,
            "NMVM_MODULES": " ".join(modules or ()),
            "NM_SRC_DIR": str(REPO),
            "NM_BUILD_DIR": str(build_dir()),
            "NMVM_UNITS": " ".join(units),
        }
        # The sanitizer settings of the test run reach the programs the guest runs, too.
        for k in FORWARDED_ENV:
            if k in os.environ:
                variables[k] = os.environ[k]
        # The build, installed as a package would be (nmtest.stage), in a world-readable directory
        # of the host: the checks copy from there into the guest's own filesystem (lib.sh's
        # nm_install), so units run installed programs that their ProtectHome=/PrivateTmp= never
        # hide, wherever the checkout lives. /etc/nmvm/installed: "NAME PATH" lines.
        if (build_dir() / "build.ninja").exists():
            variables["NM_STAGE"] = str(stage.root())
            _write_fixture(root, "/etc/nmvm/installed",
                           "".join(f"{name} {path}\n" for name, path in sorted(stage.manifest().items())))
        for k, v in (env or {}).items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                raise VmError(f"environment variable name {k!r} is not a shell variable name")
            variables[k] = str(v)
        _write_fixture(root, "/etc/nmvm/env",
                       "".join(f"{k}={shlex.quote(v)}\n" for k, v in variables.items()))
        _write_fixture(root, "/usr/local/sbin/nmvm-run", Path(VMDIR / "guest-run.sh"))
        os.chmod(root / "usr/local/sbin/nmvm-run", 0o755)
        if mode == "systemd":
            lines = ["[Unit]"]
            if units:
                lines += [f"Wants={' '.join(units)}", f"After={' '.join(units)}"]
            _write_fixture(root, "/etc/systemd/system/nmvm.service.d/50-units.conf", "\n".join(lines) + "\n")
            # The host enables systemd-resolved in sysinit.target; under TCG it costs seconds.
            if "systemd-resolved.service" not in units:
                (root / "etc/systemd/system").mkdir(parents=True, exist_ok=True)
                os.symlink("/dev/null", root / "etc/systemd/system/systemd-resolved.service")
        if fixtures is not None:
            for item in fixtures if isinstance(fixtures, (list, tuple)) else [fixtures]:
                if isinstance(item, dict):
                    for path, content in item.items():
                        _write_fixture(root, path, content)
                else:
                    src = Path(item)
                    if not src.is_dir():
                        raise VmError(f"fixture tree {str(src)!r} is not a directory")
                    shutil.copytree(src, root, symlinks=True, dirs_exist_ok=True)

    def _boot(self, run, mode, prep, timeout):
        smp = self.smp or (2 if mode == "systemd" else 1)
        mem = self.mem_mb or (1024 if mode == "systemd" else 512)
        fixture_dirs = [str(run / "root")]
        if mode == "systemd":
            fixture_dirs.insert(0, str(VMDIR / "fixtures" / "systemd"))
        append = [
            "console=ttyS0", "quiet", "loglevel=3", "panic=-1", "rdinit=/init",
            f"tsc_early_khz={_host_khz()}",
            # TCG's TSC follows the host clock; without this the watchdog compares it with jiffies
            # (ticks get lost when the host is busy), marks it unstable and guest time then lags
            "tsc=reliable",
            f"nmvm.mode={mode}", f"nmvm.root={self.share}",
            f"nmvm.modules={prep.kroot}/lib/modules/{prep.kver}",
            f"nmvm.fixtures={','.join(fixture_dirs)}",
        ]
        if mode == "systemd":
            # status lines on the console only for failures; PID 1 still logs to the journal
            append += ["systemd.unit=nmvm.target", "systemd.show_status=error"]
        disk = []
        if self.persist:
            image = self._persist_image()
            append.append("nmvm.persist=1")
            disk = ["-drive", f"file={image},if=none,id=persist,format=raw,cache=writeback",
                    "-device", "virtio-blk-device,drive=persist"]
        for a in append:
            if any(c.isspace() for c in a):
                raise VmError(f"kernel command line argument {a!r} contains white space "
                              "(move the repository or the cache to a path without spaces)")
        console_log = run / "console.log"
        args = [QEMU,
                "-M", "microvm,acpi=on,memory-backend=mem",
                # virtio 1.0 transport: vhost-user-fs (virtiofs) needs it on microvm
                "-global", "virtio-mmio.force-legacy=false",
                # memfd + share=on: the guest RAM virtiofsd must map
                "-object", f"memory-backend-memfd,id=mem,size={mem}M,share=on",
                "-accel", "tcg", "-cpu", "max", "-m", str(mem), "-smp", str(smp),
                "-display", "none", "-no-reboot", "-nodefaults",
                "-serial", f"file:{console_log}",
                "-kernel", str(prep.vmlinux), "-initrd", str(prep.initramfs),
                # getrandom() and key generation never block on an entropy-less guest
                "-device", "virtio-rng-device",
                # the result share: the guest's /run/nmvm
                "-fsdev", f"local,id=nmvmout,path={run / 'out'},security_model=none",
                "-device", "virtio-9p-device,fsdev=nmvmout,mount_tag=nmvmout", *disk]
        helpers = []
        try:
            if self.share == "virtiofs":
                sock = run / "vfsd.sock"
                # virtiofsd on a read-only view of / (it has no read-only option itself)
                vlog = open(run / "virtiofsd.log", "wb")
                vp = subprocess.Popen([str(VMDIR / "virtiofsd-ro.sh"), str(run), str(sock)],
                                      stdin=subprocess.DEVNULL, stdout=vlog, stderr=subprocess.STDOUT,
                                      preexec_fn=_die_with_parent)
                vlog.close()
                helpers.append(vp)
                deadline = time.monotonic() + 10
                while not sock.exists():
                    if vp.poll() is not None or time.monotonic() > deadline:
                        raise VmError("virtiofsd did not start: " + (run / "virtiofsd.log").read_text(errors="replace"))
                    time.sleep(0.01)
                args += ["-chardev", f"socket,id=hostroot,path={sock}",
                         "-device", "vhost-user-fs-device,chardev=hostroot,tag=hostroot"]
            else:
                # multidevs=remap: the host's / spans several filesystems (inode numbers collide)
                args += ["-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
                         "-device", "virtio-9p-device,fsdev=hostroot,mount_tag=hostroot"]
            args += ["-append", " ".join(append)]
            qlog = open(run / "qemu.log", "wb")
            t0 = time.monotonic()
            qemu = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=qlog, stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent)
            qlog.close()
            helpers.append(qemu)
            timed_out = False
            try:
                qemu.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
            seconds = time.monotonic() - t0
        finally:
            # Only the processes started here, newest first (virtiofsd leaves when QEMU does).
            for p in reversed(helpers):
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            sock = run / "vfsd.sock"
            if sock.exists() or sock.is_symlink():
                sock.unlink()
        return self._collect(run, mode, seconds, timed_out, timeout)

    def _persist_image(self) -> Path:
        """The persistent disk (a sparse 1 GiB ext4 image), made at the first boot that uses it."""
        self.persist.mkdir(parents=True, exist_ok=True)
        image = self.persist / "disk.img"
        if not image.exists():
            with open(image, "wb") as f:
                f.truncate(1 << 30)
            r = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "nmvm", str(image)], capture_output=True, text=True)
            if r.returncode != 0:
                image.unlink()
                raise VmError(f"mkfs.ext4 {image} failed: {r.stderr.strip()}")
        return image

    def _collect(self, run, mode, seconds, timed_out, timeout):
        def read(p):
            try:
                return (run / p).read_text(errors="replace")
            except OSError:
                return ""

        console = read("console.log")
        qemu_log = read("qemu.log").strip()
        if qemu_log:
            console += "\n=== qemu\n" + qemu_log
        output, journal, result = read("out/output.log"), read("out/journal.log"), read("out/result")
        started = dict(kv.split("=", 1) for kv in read("out/started").split() if "=" in kv)
        res = dict(kv.split("=", 1) for kv in result.split() if "=" in kv)
        rc = None
        if "rc" in res:
            rc = int(res["rc"])
        else:
            m = RESULT_RE.findall(console)
            if m:
                rc = int(m[-1])
        if timed_out:
            console += f"\n=== host: timed out after {timeout} s, QEMU killed"
            rc = 124
        elif rc is None:
            rc = 126

        def f(k, d):
            try:
                return float(d[k])
            except (KeyError, ValueError):
                return None

        start, end = f("start", started) or f("start", res), f("end", res)
        script_seconds = end - start if start is not None and end is not None else None
        return VmResult(mode, rc, console, output, journal, seconds, start, script_seconds, timed_out)


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when the Python process that started it dies, so a
    killed test run never leaves a QEMU spinning on a core."""
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class _vm_lock:
    """Holds the machine-wide lock for one boot, so VMs never run two at a time."""

    def __init__(self, wait):
        self.wait = wait
        self.fd = None

    def __enter__(self):
        self.fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self.fd)
                    raise VmError(f"another VM held {LOCK_FILE} for more than {self.wait} s")
                time.sleep(0.2)

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def print_timing(request, result):
    """For module fixtures: shows the boot's timing line in pytest's output (past the capture)."""
    line = f"[vm] {result.timing()}"
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    if capman is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line("\n" + line)
    else:
        reporter.write_line("\n" + line)


def require():
    """For tests: a Vm, or pytest.skip() with the reason the tier cannot run here."""
    import pytest

    ok, reason = Vm.available()
    if not ok:
        pytest.skip(reason)
    return Vm()
