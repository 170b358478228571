#!/bin/bash
# Checks that every C file in the repository is formatted as .clang-format says (Debian 12's
# clang-format 14). Prints each file that differs and how to fix it; ends with
# "format: N passed, N failed" (one item: the tree).
#
#   tools/check-format.sh          check
#   tools/check-format.sh --fix    format the files in place
set -uo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang-format >/dev/null; then
        echo "check-format.sh: clang-format is missing (apt-get install clang-format)" >&2
        echo "format: 0 passed, 1 failed"
        exit 1
fi
mapfile -t files < <(git ls-files '*.c' '*.h')
if [ "${1:-}" = --fix ]; then
        clang-format -i "${files[@]}"
        exit 0
fi
bad=()
for f in "${files[@]}"; do
        clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
        echo "check-format.sh: ${#bad[@]} of ${#files[@]} files differ from .clang-format ($(clang-format --version)):"
        printf '  %s\n' "${bad[@]}"
        echo "Fix with: tools/check-format.sh --fix (or clang-format -i FILE); see what changes with"
        echo "  clang-format FILE | diff -u FILE -"
        echo "format: 0 passed, 1 failed"
        exit 1
fi
echo "check-format.sh: ${#files[@]} files formatted as .clang-format says"
echo "format: 1 passed, 0 failed"
