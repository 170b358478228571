#!/bin/bash
# Sets up a fresh Debian 12 machine and runs the whole test suite: the unit tests, the fuzz targets
# for a bounded time (tools/run-fuzzers.sh, their own clang build) and the integration tests (real
# Mosquitto, netmakerd, dbus-daemon, polkitd, wireguard-go in network namespaces) on an ASan+UBSan
# build with warnings as errors, the packages (RPM and .deb, built without sanitizers by
# tools/build-packages.sh, checked by test_packaging.py and installed in the VM guest by
# test_vm_packages.py), then the VM tier when qemu can run.
# Ends with the line "N passed, N failed". Run as root from the repository.
#
#   tools/run-tests.sh [--no-deps] [--no-vm] [--no-packages] [pytest args...]
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
deps=1
vm=1
packages=1
while [ $# -gt 0 ]; do
        case "$1" in
        --no-deps) deps=0 ;;
        --no-vm) vm=0 ;;
        --no-packages) packages=0 ;;
        *) break ;;
        esac
        shift
done

if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null; then
                exec sudo -E "$0" "$@"
        fi
        echo "run-tests.sh: the integration tests create network namespaces: run me as root" >&2
        exit 1
fi

if [ $deps = 1 ]; then
        tools/install-deps.sh || { echo "run-tests.sh: installing dependencies failed" >&2; exit 1; }
fi

builddir=${NM_BUILD_DIR:-$top/build-test}
export NM_BUILD_DIR=$builddir
if [ ! -f "$builddir/build.ninja" ]; then
        meson setup "$builddir" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false || exit 1
fi
ninja -C "$builddir" || { echo "0 passed, 1 failed"; exit 1; }

# The tree must also build warning-free with clang (a build without sanitizers, kept beside).
echo "== clang build (-Werror)"
clang_ok=0 clang_fail=0
clangdir=${NM_CLANG_BUILD_DIR:-$top/build-test-clang}
if [ ! -f "$clangdir/build.ninja" ]; then
        CC=clang meson setup "$clangdir" -Dwerror=true >/dev/null
fi
if ninja -C "$clangdir" >"$clangdir.log" 2>&1; then
        clang_ok=1
else
        clang_fail=1
        grep -E "error|warning" "$clangdir.log" | head -40
fi
rm -f "$clangdir.log"

# Every C file formatted as .clang-format says (tools/check-format.sh --fix formats them).
echo "== format"
fmt_ok=0 fmt_fail=1
tools/check-format.sh >"$builddir.format.log" 2>&1
fmt_ok=$(sed -n 's/^format: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$builddir.format.log")
fmt_fail=$(sed -n 's/^format: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$builddir.format.log")
fmt_ok=${fmt_ok:-0} fmt_fail=${fmt_fail:-1}
cat "$builddir.format.log"
rm -f "$builddir.format.log"

# The packages: built from this tree without sanitizers (the RPM's %check runs the unit tests), one
# item each for the RPM, the .debs and the `meson install` reference; test_packaging.py and
# test_vm_packages.py (integration tier) check and install them.
pkg_ok=0 pkg_fail=0
if [ $packages = 1 ]; then
        echo "== packages"
        tools/build-packages.sh | tee "$builddir.packages.log"
        pkg_ok=$(sed -n 's/^packages: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$builddir.packages.log")
        pkg_fail=$(sed -n 's/^packages: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$builddir.packages.log")
        pkg_ok=${pkg_ok:-0}
        pkg_fail=${pkg_fail:-3}
        rm -f "$builddir.packages.log"
else
        export NM_PACKAGE_TESTS=0
fi

# Sanitizers: any report fails the program that printed it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

echo "== unit tests"
meson test -C "$builddir" --suite unit --print-errorlogs 2>&1 | tee "$results/unit.log"
unit_ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$results/unit.log" | tail -1)
unit_fail=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$results/unit.log" | tail -1)
unit_to=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$results/unit.log" | tail -1)
unit_ok=${unit_ok:-0}
unit_fail=$(( ${unit_fail:-0} + ${unit_to:-0} ))
[ "$unit_ok" = 0 ] && [ "$unit_fail" = 0 ] && unit_fail=1

# libFuzzer targets (tests/fuzz): their regression corpus, then NM_FUZZ_SECONDS (20) a target;
# each target is one check. Skipped, with the reason, without clang and libFuzzer.
echo "== fuzz"
tools/run-fuzzers.sh 2>&1 | tee "$results/fuzz.log"
fuzz_ok=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$results/fuzz.log" | tail -1)
fuzz_fail=$(sed -n 's/^fuzz: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$results/fuzz.log" | tail -1)
fuzz_note=""
if grep -q "^fuzz: skipped:" "$results/fuzz.log"; then
        fuzz_ok=0 fuzz_fail=0
        fuzz_note=" ($(sed -n 's/^fuzz: //p' "$results/fuzz.log" | tail -1))"
elif [ -z "$fuzz_ok" ]; then
        fuzz_ok=0 fuzz_fail=1
fi

echo "== integration tests"
NM_VM_TESTS=$vm /usr/bin/python3 -m pytest tests/integration -q -rfEs \
        --junitxml="$results/integration.xml" -p no:cacheprovider "$@"
read -r int_ok int_fail < <(/usr/bin/python3 - "$results/integration.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
PY
)

passed=$(( clang_ok + fmt_ok + pkg_ok + unit_ok + fuzz_ok + int_ok ))
failed=$(( clang_fail + fmt_fail + pkg_fail + unit_fail + fuzz_fail + int_fail ))
echo "clang build: $clang_ok passed, $clang_fail failed; format: $fmt_ok passed, $fmt_fail failed;" \
        "packages: $pkg_ok passed, $pkg_fail failed;" \
        "unit: $unit_ok passed, $unit_fail failed; fuzz: $fuzz_ok passed, $fuzz_fail failed$fuzz_note;" \
        "integration: $int_ok passed, $int_fail failed"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
