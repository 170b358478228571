# Helpers for VM checks (sourced by run-checks.sh before each check file; bash, inside the guest).
#
# A check is a bash function check_<name> in tests/vm/checks/<mode>/*.sh. It reports with lines
#   CHECK <name>[.<sub>] ok|fail|skip <detail>
# through `report` or `expect` below; a function that prints none gets one from its exit status.
# $NMVM_CHECK is the running check's name. $NM_BUILD_DIR and $NM_SRC_DIR are the host's build and
# source trees (read-only; writes land in the guest's throwaway overlay).
# shellcheck shell=bash

export WG_COLOR_MODE=never SYSTEMD_COLORS=0 SYSTEMD_PAGER='' PAGER=cat SYSTEMD_LOG_COLOR=0

up() { cut -d' ' -f1 /proc/uptime; }

# The check's own name for "-", "<check>.<sub>" for ".sub"; anything else as given.
_check_name() {
        case "$1" in
        - | "") echo "$NMVM_CHECK" ;;
        .*) echo "$NMVM_CHECK$1" ;;
        *) echo "$1" ;;
        esac
}

# report SUB ok|fail|skip DETAIL...   (SUB: "-" for the check itself, ".x" for <check>.x)
report() {
        local name status=$2 detail
        name=$(_check_name "$1")
        shift 2
        detail=$(printf '%s' "$*" | tr '\n\t' '  ' | cut -c1-400)
        echo "CHECK $name $status $detail"
}

# expect SUB DESCRIPTION CMD...  runs CMD; reports ok with DESCRIPTION, or fail with DESCRIPTION,
# the exit status and the last line CMD printed (all of its output goes to the log). Returns CMD's
# status, so `expect ... || return 1` stops a check at its first broken step.
expect() {
        local sub=$1 what=$2 out rc
        shift 2
        out=$("$@" 2>&1)
        rc=$?
        if [ $rc = 0 ]; then
                report "$sub" ok "$what"
        else
                printf '%s\n' "$out" | sed 's/^/    | /'
                report "$sub" fail "$what: \`$*\` exited with $rc: $(printf '%s' "$out" | tail -n1)"
        fi
        return $rc
}

# wait_until SECONDS CMD...   polls CMD every 0.1 s; 0 as soon as it succeeds, 1 at the deadline.
wait_until() {
        local end
        end=$(awk -v u="$(up)" -v s="$1" 'BEGIN { printf "%.2f", u + s }')
        shift
        while :; do
                "$@" >/dev/null 2>&1 && return 0
                awk -v u="$(up)" -v e="$end" 'BEGIN { exit !(u >= e) }' && return 1
                sleep 0.1
        done
}

# defer CMD...   runs CMD (a string for eval) when the check ends, last registered first.
_nmvm_deferred=()
defer() { _nmvm_deferred=("$*" "${_nmvm_deferred[@]}"); }
_nmvm_run_deferred() {
        local c
        for c in "${_nmvm_deferred[@]}"; do eval "$c" >/dev/null 2>&1; done
}
trap _nmvm_run_deferred EXIT
# A check killed for taking too long (run-checks.sh's timeout) still cleans up.
trap 'exit 143' TERM

# nm_binary RELPATH   prints $NM_BUILD_DIR/RELPATH when it is an executable, nothing otherwise.
nm_binary() {
        [ -x "$NM_BUILD_DIR/$1" ] && echo "$NM_BUILD_DIR/$1"
}
