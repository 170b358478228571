#!/bin/bash
# The README's first command: installs what is needed on Debian 12, builds, and runs the demo
# (netmakerd on SQLite with a local Mosquitto, the first admin bootstrapped, three namespaced
# netclientd nodes pinging one another, then the server left running for nmctl until Ctrl-C).
#   tools/demo.sh [--no-deps] [demo options: --nodes N --port P --exit]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null; then
                exec sudo "$0" "$@"
        fi
        echo "demo.sh: installing packages and making network namespaces needs root: run me as root" >&2
        exit 1
fi
if [ "${1:-}" = "--no-deps" ]; then
        shift
else
        tools/install-deps.sh
fi
[ -f build/build.ninja ] || meson setup build
ninja -C build
exec /usr/bin/python3 tools/demo.py "$@"
