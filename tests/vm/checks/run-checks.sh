#!/bin/bash
# Runs the VM checks of one guest mode inside the guest, one bash process per check (so a check
# that exits or hangs harms no other), and makes sure every check reports at least one
# "CHECK <name> ok|fail|skip" line.
#
# Env: NMVM_CHECKS_DIR (tests/vm/checks/<mode>), NMVM_CHECKS (names to run; empty = all),
#      NMVM_CHECK_TIMEOUT (seconds per check, default 120; a file's "# nmvm-timeout: N" line
#      gives its checks at least N).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=${NMVM_CHECKS_DIR:?NMVM_CHECKS_DIR is not set}
only=" ${NMVM_CHECKS:-} "
limit=${NMVM_CHECK_TIMEOUT:-120}
up() { cut -d' ' -f1 /proc/uptime; }
log=$(mktemp /run/nmvm-check.XXXXXX)
trap 'rm -f "$log"' EXIT
failed=0

for file in "$DIR"/*.sh; do
        [ -e "$file" ] || continue
        file_limit=$(sed -n 's/^#[[:space:]]*nmvm-timeout:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$file" | head -n1)
        [ -n "$file_limit" ] && [ "$file_limit" -gt "$limit" ] && this_limit=$file_limit || this_limit=$limit
        for fn in $(grep -oE '^check_[A-Za-z0-9_]+[[:space:]]*\(\)' "$file" | sed 's/[[:space:]]*()$//'); do
                name=${fn#check_}
                [ "$only" = "  " ] || [[ "$only" == *" $name "* ]] || continue
                t0=$(up)
                echo "--- check $name ($(basename "$file")) at ${t0}s"
                # Output to a file, not a pipe: a daemon left behind must not block us.
                NMVM_CHECK=$name timeout -k 5 "$this_limit" \
                        bash -c '. "$1"; . "$2"; "$3"' nmvm-check "$HERE/lib.sh" "$file" "$fn" \
                        > "$log" 2>&1 < /dev/null
                rc=$?
                cat "$log"
                t1=$(up)
                mine=$(grep -E "^CHECK ($name|$name\\.[^ ]*) " "$log")
                extra=
                if [ $rc = 124 ] || [ $rc = 137 ]; then
                        extra="CHECK $name fail timed out after ${this_limit}s (NMVM_CHECK_TIMEOUT, nmvm-timeout)"
                elif [ -z "$mine" ] && [ $rc = 0 ]; then
                        extra="CHECK $name ok (exit status 0, no CHECK line of its own)"
                elif [ -z "$mine" ]; then
                        extra="CHECK $name fail exit status $rc (no CHECK line of its own)"
                elif [ $rc != 0 ] && ! grep -qE "^CHECK [^ ]+ fail" <<< "$mine"; then
                        extra="CHECK $name fail exit status $rc after reporting only successes"
                fi
                [ -n "$extra" ] && echo "$extra" && echo "$extra" >> "$log"
                grep -qE "^CHECK [^ ]+ fail" "$log" && failed=1
                echo "--- check $name took $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s"
        done
done
exit $failed
