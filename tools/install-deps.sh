#!/bin/bash
# Installs every build and test dependency on Debian 12 (bookworm) with apt-get.
# Fedora equivalents are listed at the bottom. Run as root. Safe to run again.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
        echo "install-deps.sh: run me as root (apt-get needs it)" >&2
        exit 1
fi

# Build
BUILD_PKGS=(
        meson ninja-build pkg-config gcc clang clang-format gettext
        libsystemd-dev libglib2.0-dev libjson-glib-dev libmicrohttpd-dev libcurl4-openssl-dev
        libmosquitto-dev libsqlite3-dev libpq-dev libsodium-dev
        libnl-3-dev libnl-genl-3-dev libnl-route-3-dev libnftables-dev libqrencode-dev libpng-dev
        libclang-rt-14-dev libssl-dev
        libnm-dev               # desktop/NetworkManager-netmaker (-Dnetworkmanager=auto builds it when found)
)

# Run and test: the real components the tests start
TEST_PKGS=(
        systemd dbus polkitd
        mosquitto mosquitto-clients
        wireguard-go wireguard-tools iproute2 iputils-ping socat netcat-openbsd nftables
        python3 python3-pytest python3-gi gir1.2-glib-2.0 python3-nacl python3-paho-mqtt
        sqlite3 curl zbar-tools
        openssl python3-cryptography tcpdump caddy
        dnsmasq-base
        gjs                     # the GNOME Shell extension's model against a live netclientd (test_gnome_model)
        gnome-shell             # the extension in a headless gnome-shell, screenshot artifact (test_gnome_shell_menu)
        network-manager         # the VM check 60-networkmanager.sh (Debian's NetworkManager in the guest)
)

# Man pages (scdoc; mandoc -T lint checks them), shell completion (tested in bash with compgen, in
# zsh with zsh -n and compinit), the packages (rpmbuild and rpmlint from Debian's rpm, a shim for
# Fedora's macros in packaging/; dpkg-buildpackage, debhelper, lintian).
DOC_PKGS=(scdoc mandoc bash-completion zsh)
PKG_PKGS=(rpm rpmlint dpkg-dev debhelper fakeroot lintian)

# The VM tier (tests/vm/): QEMU (with virtiofsd), the initramfs tools and the systemd guest's
# services (it boots the host's own /: without udevd there, networkd leaves every link pending).
# The guest kernel is not installed: tests/vm/fetch-kernel.sh unpacks it into a cache.
VM_PKGS=(qemu-system-x86 busybox-static cpio kmod procps udev systemd-resolved e2fsprogs)

if [ "${1:-}" = "--list" ]; then
        echo "${BUILD_PKGS[@]} ${TEST_PKGS[@]} ${DOC_PKGS[@]} ${PKG_PKGS[@]} ${VM_PKGS[@]}"
        exit 0
fi

# Installing systemd-resolved (pulled in by later tiers) replaces /etc/resolv.conf with a symlink
# to a stub nobody serves on machines without systemd as PID 1; keep the original.
resolv_backup=$(mktemp)
cp -a /etc/resolv.conf "$resolv_backup" 2>/dev/null || true

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${DOC_PKGS[@]}" "${PKG_PKGS[@]}" \
        "${VM_PKGS[@]}"

if [ -s "$resolv_backup" ] && [ -L /etc/resolv.conf ] && [ ! -e /etc/resolv.conf ]; then
        rm -f /etc/resolv.conf
        cp -a "$resolv_backup" /etc/resolv.conf
fi
rm -f "$resolv_backup"

# network-manager's postinst enables NetworkManager.service, its dispatcher and
# NetworkManager-wait-online.service (wanted by network-online.target). The VM tier boots this very
# root file system, and netclientd.service wants network-online.target: every systemd guest would
# then start a NetworkManager that takes the links the checks make. Only the check that asks for
# it (its nmvm-units line) may start it.
if [ -e /lib/systemd/system/NetworkManager.service ]; then
        systemctl disable NetworkManager.service NetworkManager-wait-online.service \
                NetworkManager-dispatcher.service 2>/dev/null || true
fi

# Fedora (dnf install): meson ninja-build gcc clang gettext systemd-devel glib2-devel json-glib-devel
#   libmicrohttpd-devel libcurl-devel mosquitto-devel sqlite-devel libpq-devel libsodium-devel
#   libnl3-devel nftables-devel qrencode-devel libpng-devel compiler-rt openssl-devel
#   systemd dbus-daemon polkit mosquitto wireguard-tools iproute iputils socat nmap-ncat nftables
#   python3 python3-pytest python3-gobject python3-pynacl python3-paho-mqtt sqlite curl zbar
#   openssl python3-cryptography tcpdump caddy dnsmasq NetworkManager-libnm-devel NetworkManager gjs gnome-shell
#   scdoc mandoc bash-completion zsh rpm-build rpmlint systemd-rpm-macros
# (Fedora has no wireguard-go package: its kernel has WireGuard; build wireguard-go from source for
#  the userspace test tier.)
