#!/bin/bash
# Builds the libFuzzer targets (clang, ASan + UBSan, a build directory of their own) and runs each
# one: first every input of its regression corpus tests/fuzz/corpus/<name>/ once (each must pass),
# then new inputs for a bounded time. A crash, a leak, a sanitizer report, a timeout or a target
# without a corpus is a failure; a crash's input is kept and the commands to reproduce it and to
# add it to the corpus are printed. tools/run-tests.sh runs this; it ends with the line
# "fuzz: N passed, N failed" (one check per target), or "fuzz: skipped: <reason>" when clang or
# libFuzzer is missing.
#
#   tools/run-fuzzers.sh [--seconds N] [TARGET...]     (TARGET: rest, token, ... or fuzz-rest)
#
# Environment: NM_FUZZ_BUILD_DIR (default build-fuzz), NM_FUZZ_SECONDS (default 20 a target),
# NM_FUZZ_ARTIFACTS (where crashing inputs are kept; default $NM_FUZZ_BUILD_DIR/artifacts).
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
seconds=${NM_FUZZ_SECONDS:-20}
while [ $# -gt 0 ]; do
        case "$1" in
        --seconds) seconds=$2; shift ;;
        --seconds=*) seconds=${1#--seconds=} ;;
        -*) echo "run-fuzzers.sh: unknown option $1" >&2; exit 2 ;;
        *) break ;;
        esac
        shift
done
builddir=${NM_FUZZ_BUILD_DIR:-$top/build-fuzz}
artifacts=${NM_FUZZ_ARTIFACTS:-$builddir/artifacts}

skip() {
        echo "fuzz: skipped: $*"
        exit 0
}

# libFuzzer comes with clang's compiler-rt; Debian ships it with clang itself.
command -v clang >/dev/null || skip "clang is not installed (apt-get install clang)"
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' >"$probe/p.c"
clang -fsanitize=fuzzer,address,undefined -o "$probe/p" "$probe/p.c" 2>"$probe/err" ||
        skip "clang cannot link a libFuzzer target: $(head -1 "$probe/err")"

if [ ! -f "$builddir/build.ninja" ]; then
        CC=clang meson setup "$builddir" -Dfuzzers=true -Dtests=false >"$probe/setup.log" 2>&1 || {
                tail -20 "$probe/setup.log"
                echo "fuzz: 0 passed, 1 failed"
                exit 1
        }
fi
# Only the fuzz targets (and what they need): the rest of the tree has its own clang build.
t0=$(date +%s)
# build.ninja first: a target added to meson.build since the last build is listed only after meson
# has regenerated it.
ninja -C "$builddir" build.ninja >"$probe/regen.log" 2>&1 || {
        tail -20 "$probe/regen.log"
        echo "fuzz: the fuzz build does not configure"
        echo "fuzz: 0 passed, 1 failed"
        exit 1
}
mapfile -t ninja_targets < <(ninja -C "$builddir" -t targets all 2>/dev/null |
        sed -n 's|^\(tests/fuzz/fuzz-[a-z0-9-]*\): .*|\1|p' | sort -u)
if [ ${#ninja_targets[@]} = 0 ] || ! ninja -C "$builddir" "${ninja_targets[@]}" >"$probe/build.log" 2>&1; then
        grep -E "error|FAILED" "$probe/build.log" | head -40
        echo "fuzz: the fuzz targets do not build"
        echo "fuzz: 0 passed, 1 failed"
        exit 1
fi
echo "fuzz: built the targets in $(($(date +%s) - t0)) s"

# Findings abort (UBSan too: the targets are built with -fno-sanitize-recover).
export ASAN_OPTIONS=${NM_FUZZ_ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:symbolize=1}
export UBSAN_OPTIONS=${NM_FUZZ_UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$artifacts"

targets=()
if [ $# -gt 0 ]; then
        for t in "$@"; do targets+=("fuzz-${t#fuzz-}"); done
else
        for exe in "$builddir"/tests/fuzz/fuzz-*; do
                [ -x "$exe" ] && [ -f "$exe" ] && targets+=("$(basename "$exe")")
        done
fi
[ ${#targets[@]} -gt 0 ] || { echo "fuzz: no targets in $builddir/tests/fuzz"; echo "fuzz: 0 passed, 1 failed"; exit 1; }

# The finding: from the sanitizer's or the target's first line of it, else the end of the log.
report() {
        local first
        first=$(grep -nE "==[0-9]+==ERROR|runtime error:|ERROR: libFuzzer|ERROR \*\*|fuzz-[a-z-]+: |assertion|Assertion" "$1" |
                head -1 | cut -d: -f1)
        if [ -n "$first" ]; then
                tail -n +"$first" "$1" | grep -v "^    #[0-9]* 0x[0-9a-f]* in \(fuzzer::\|main\|__libc\|_start\)" | head -40 |
                        sed 's/^/    /'
        else
                tail -20 "$1" | sed 's/^/    /'
        fi
}

passed=0 failed=0 total_start=$(date +%s)
for target in "${targets[@]}"; do
        name=${target#fuzz-}
        exe=$builddir/tests/fuzz/$target
        corpus=tests/fuzz/corpus/$name
        log=$probe/$name.log
        if [ ! -x "$exe" ]; then
                echo "fuzz-$name: FAIL: no such target ($exe)"
                failed=$((failed + 1)); continue
        fi
        if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
                echo "fuzz-$name: FAIL: no seed corpus in $corpus/ (every target needs one)"
                failed=$((failed + 1)); continue
        fi

        # 1. The regression corpus: every input once.
        n_corpus=$(find "$corpus" -maxdepth 1 -type f | wc -l)
        if ! "$exe" -timeout=30 "$corpus"/* >"$log" 2>&1; then
                bad=$(sed -n 's/^Running: //p' "$log" | tail -1)
                echo "fuzz-$name: FAIL: the regression corpus fails at ${bad:-an input} (of $n_corpus):"
                report "$log"
                echo "    reproduce: $exe $bad"
                failed=$((failed + 1)); continue
        fi

        # 2. New inputs for a bounded time, starting from the corpus; what they find stays in a
        # scratch directory (add an input to the corpus by hand when it is worth keeping).
        work=$probe/work-$name
        mkdir -p "$work"
        start=$(date +%s)
        "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1 \
                -artifact_prefix="$artifacts/$name-" "$work" "$corpus" >"$log" 2>&1
        rc=$?
        took=$(($(date +%s) - start))
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        cov=$(grep -oE "cov: [0-9]+" "$log" | tail -1 | cut -d' ' -f2)
        if [ $rc -ne 0 ]; then
                artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
                echo "fuzz-$name: FAIL after $took s (exit status $rc); the log: $artifacts/$name.log"
                cp "$log" "$artifacts/$name.log"
                report "$log"
                if [ -n "$artifact" ]; then
                        echo "    the input: $artifact ($(stat -c %s "$artifact") bytes)"
                        echo "    reproduce: $exe $artifact"
                        echo "    after the fix, keep it as a regression case:"
                        echo "        cp $artifact $corpus/$(basename "$artifact")"
                else
                        tail -20 "$log"
                fi
                failed=$((failed + 1))
                continue
        fi
        line="fuzz-$name: ok: $n_corpus corpus inputs pass; ${took} s, ${execs:-?} executions (${rate:-?}/s), coverage ${cov:-?}"
        echo "$line"
        passed=$((passed + 1))
        rm -rf "$work"
done

echo "fuzz: $seconds s a target, $(($(date +%s) - total_start)) s in all"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
