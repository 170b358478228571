#!/bin/bash
# Benchmark (not a test): applying 1000 peers to a kernel WireGuard link through netclientd's
# WireGuard backend (src/netclientd wg-netlink.c: read the device, diff, write only the changes over
# generic netlink) next to `wg setconf` with the same peers, in a VM-tier guest running Debian's
# kernel (QEMU/TCG, chroot guest; see docs/testing.md). Prints the medians and the ratios for the
# initial apply and for a one-peer update; `wg setconf` has no delta, so for it a one-peer update
# costs a full rewrite (with REPLACE_PEERS, which also resets every session).
#
#   bench/vm-apply-1000.sh [--peers N] [--ips K] [--rounds R] [--keep]
#
# Environment: NM_BUILD_DIR (default build; must hold bench/bench-wg-apply), the VM tier's knobs
# (NM_VM_*). Run as root. Figures measured with it: docs/system-integration.md.
set -euo pipefail

peers=1000 ips=1 rounds=5 keep=()
while [ $# -gt 0 ]; do
        case "$1" in
        --peers) peers=$2; shift 2 ;;
        --ips) ips=$2; shift 2 ;;
        --rounds) rounds=$2; shift 2 ;;
        --keep) keep=(1); shift ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "vm-apply-1000.sh: unknown argument '$1' (--peers N, --ips K, --rounds R, --keep)" >&2; exit 2 ;;
        esac
done
for v in "$peers" "$ips" "$rounds"; do
        [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "vm-apply-1000.sh: '$v' is not a positive number" >&2; exit 2; }
done

here=$(cd "$(dirname "$0")/.." && pwd)
build=${NM_BUILD_DIR:-build}
[[ $build = /* ]] || build=$here/$build
bench=$build/bench/bench-wg-apply
[ -x "$bench" ] || { echo "vm-apply-1000.sh: $bench is missing: meson setup $build && ninja -C $build" >&2; exit 1; }

guest=$(mktemp /tmp/nm-vm-apply.XXXXXX.sh)
trap 'rm -f "$guest"' EXIT
cat > "$guest" <<EOF
#!/bin/bash
# Runs in the guest: a throwaway kernel WireGuard link in a namespace of its own, then
# bench-wg-apply --device ... --compare-wg $rounds times.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
set -e
ip netns add nmbench
ip -n nmbench link set lo up
ip -n nmbench link add nmb0 type wireguard
(umask 077; wg genkey > /run/nmbench.key)  # no /dev/fd in the chroot guest: a file, not <(...)
ip netns exec nmbench wg set nmb0 private-key /run/nmbench.key listen-port 51999
ip -n nmbench link set nmb0 up
# every other round wg setconf goes first, so neither side always pays for a cold start
for i in \$(seq $rounds); do
        order=; [ \$((i % 2)) = 0 ] && order=--wg-first
        ip netns exec nmbench "$bench" --device nmb0 --backend kernel --peers $peers --ips $ips --compare-wg \$order --json
done > /run/nmvm/apply.jsonl
cat /run/nmvm/apply.jsonl
/usr/bin/python3 - /run/nmvm/apply.jsonl <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
keys = ("add_ms", "update_one_ms", "get_ms", "remove_all_ms", "wg_setconf_ms", "wg_setconf_again_ms")
m = {k: statistics.median(r[k] for r in rows) for k in keys}
lo = {k: min(r[k] for r in rows) for k in keys}
hi = {k: max(r[k] for r in rows) for k in keys}
def f(k):
    return f"{m[k]:.1f} ms ({lo[k]:.0f}-{hi[k]:.0f})"
r0 = rows[0]
print(f"kernel WireGuard in the guest ({r0['backend']} backend), {r0['peers']} peers x {r0['ips_per_peer']} allowed IP(s),"
      f" median (min-max) of {len(rows)} rounds:")
print(f"  initial apply: netclientd backend {f('add_ms')}, wg setconf {f('wg_setconf_ms')}"
      f" -> ratio backend/setconf {m['add_ms'] / m['wg_setconf_ms']:.2f}")
print(f"  one-peer update: netclientd backend {f('update_one_ms')} (of which reading the device {m['get_ms']:.1f} ms),"
      f" wg setconf {f('wg_setconf_again_ms')} (rewrites all) -> ratio backend/setconf"
      f" {m['update_one_ms'] / m['wg_setconf_again_ms']:.3f} ({m['wg_setconf_again_ms'] / m['update_one_ms']:.0f}x faster)")
print(f"  remove all: netclientd backend {f('remove_all_ms')}")
PY
EOF
chmod 755 "$guest"
NM_BUILD_DIR=$build NM_VM_KEEP=${#keep[@]} PYTHONPATH=$here/tests/integration /usr/bin/python3 - "$guest" <<'EOF'
import sys
from nmtest import vm
ok, why = vm.Vm.available()
if not ok:
    sys.exit(f"vm-apply-1000.sh: the VM tier cannot run here: {why}")
machine = vm.Vm()
# the benchmark itself takes seconds; a busy machine makes TCG slow
r = machine.run_chroot(sys.argv[1], timeout=900)
print(r.output if r.output else r.log[-4000:])
print(r.timing())
if machine.keep:
    print(f"kept: {machine.last_run_dir}")
sys.exit(r.rc)
EOF
