#!/bin/bash
# The README's first command: installs what is needed on Debian 12, builds, and runs the demo
# (netmakerd on SQLite with a local Mosquitto, the first admin bootstrapped, three namespaced
# netclientd nodes pinging one another, then the server left running for nmctl until Ctrl-C).
#   tools/demo.sh [--no-deps] [demo options: --nodes N --port P --exit]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ "$(id -u)" != 0 ]; then
        exec sudo "$0" "$@"
fi
if [ "${1:-}" = "--no-deps" ]; then
        shift
else
        tools/install-deps.sh
fi
[ -f build/build.ninja ] || meson setup build
ninja -C build
exec /usr/bin/python3 tools/demo.py "$@"
