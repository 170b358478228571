#!/bin/bash
# Builds the packages of this working tree (committed or not) without sanitizers, as a distribution
# would, and lints them:
#   - the RPMs: packaging/netmaker.spec with Debian's rpmbuild (-bb, --nodeps: Debian's rpm database
#     knows no packages) and packaging/rpm-macros.debian for the Fedora macros it lacks; its %check
#     runs the unit tests; then rpmlint;
#   - the .debs: debian/ with dpkg-buildpackage -b (DEB_BUILD_OPTIONS=nocheck: the RPM build has
#     just run the same unit tests); then lintian;
#   - the reference: a plain `meson setup --prefix=/usr` (-Dtests=false) and `meson install
#     --destdir`, what the packages' file lists are checked against (test_packaging.py).
# Everything goes to build-pkg/ (or $NM_PKG_DIR): the source tarball, rpm/RPMS/*/*.rpm, deb/*.deb,
# reference/root, the logs, rpmlint.txt, lintian.txt, and stamp.rpm|deb|reference (the tree each
# was built from).
# Ends with "packages: N passed, N failed" (one each for rpm, deb, reference).
#
#   tools/build-packages.sh [--if-stale] [rpm] [deb] [reference]     (default: all three)
#
# --if-stale builds only the parts build-pkg/ does not already hold for this very tree.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
out=${NM_PKG_DIR:-$top/build-pkg}
if_stale=0
parts=()
for a; do
        case $a in
        --if-stale) if_stale=1 ;;
        rpm | deb | reference) parts+=("$a") ;;
        *) echo "usage: $0 [--if-stale] [rpm] [deb] [reference]" >&2; exit 2 ;;
        esac
done
[ ${#parts[@]} -gt 0 ] || parts=(rpm deb reference)

version=$(sed -n "s/^ *version: *'\([^']*\)'.*/\1/p" meson.build | head -1)
name=netmaker-$version
mkdir -p "$out"

# The source tarball of the working tree: tracked and untracked files that are not ignored, in a
# fixed order with fixed owners and the time of the last commit, so that its hash names the tree.
# Without the integration and VM tiers (tests/integration, tests/vm): package builds run only the
# unit tests, and editing a test does not make the packages stale.
tar_plain=$(mktemp)
trap 'rm -f "$tar_plain"' EXIT
git ls-files -z --cached --others --exclude-standard -- . ':!tests/integration' ':!tests/vm' |
        while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
        tar --null -T - --sort=name --mtime=@"$(git log -1 --format=%ct)" --owner=0 --group=0 --numeric-owner --mode=u+w,go-w \
                --transform "s,^,$name/," -cf "$tar_plain" || { echo "build-packages: cannot make the tarball" >&2; exit 1; }
tree=$(sha256sum "$tar_plain" | cut -d' ' -f1)
if [ $if_stale = 1 ]; then
        stale=()
        for p in "${parts[@]}"; do
                [ "$(cat "$out/stamp.$p" 2>/dev/null)" = "$tree" ] || stale+=("$p")
        done
        if [ ${#stale[@]} = 0 ]; then
                echo "build-packages: $out already holds ${parts[*]} of this tree ($tree)"
                exit 0
        fi
        parts=("${stale[@]}")
fi
xz -T0 -1 -c "$tar_plain" > "$out/$name.tar.xz"

passed=0 failed=0
result() { # PART ok|FAIL SECONDS DETAIL
        echo "== $1: $2 ($3 s) $4"
        if [ "$2" = ok ]; then
                passed=$((passed + 1))
                echo "$tree" > "$out/stamp.$1"
        else
                failed=$((failed + 1))
        fi
}

build_rpm() {
        local d=$out/rpm t0=$SECONDS
        rm -rf "$d" && mkdir -p "$d/SOURCES"
        cp "$out/$name.tar.xz" "$d/SOURCES/"
        if rpmbuild -bb --nodeps --load="$top/packaging/rpm-macros.debian" --define "_topdir $d" \
                "$top/packaging/netmaker.spec" > "$out/rpmbuild.log" 2>&1; then
                rpmlint -c "$top/packaging/rpmlint.toml" "$d"/RPMS/*/*.rpm "$top/packaging/netmaker.spec" > "$out/rpmlint.txt" 2>&1
                result rpm ok $((SECONDS - t0)) "$(tail -n 1 "$out/rpmlint.txt")"
        else
                tail -n 30 "$out/rpmbuild.log"
                result rpm FAIL $((SECONDS - t0)) "rpmbuild failed: $out/rpmbuild.log"
        fi
}

build_deb() {
        local d=$out/deb t0=$SECONDS
        rm -rf "$d" && mkdir -p "$d"
        tar -C "$d" -xJf "$out/$name.tar.xz"
        if (cd "$d/$name" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -b -us -uc) \
                > "$out/dpkg-buildpackage.log" 2>&1; then
                lintian --info --display-info --pedantic --tag-display-limit 0 "$d"/*.changes > "$out/lintian.txt" 2>&1
                result deb ok $((SECONDS - t0)) "lintian: $(grep -c '^[EWIP]:' "$out/lintian.txt") tag(s)"
        else
                tail -n 30 "$out/dpkg-buildpackage.log"
                result deb FAIL $((SECONDS - t0)) "dpkg-buildpackage failed: $out/dpkg-buildpackage.log"
        fi
}

build_reference() {
        local d=$out/reference t0=$SECONDS
        rm -rf "$d" && mkdir -p "$d"
        tar -C "$d" -xJf "$out/$name.tar.xz"
        if (meson setup "$d/build" "$d/$name" --prefix=/usr -Dtests=false -Dwerror=false &&
                ninja -C "$d/build" && meson install -C "$d/build" --no-rebuild --destdir "$d/root") \
                > "$out/reference.log" 2>&1; then
                result reference ok $((SECONDS - t0)) "$(find "$d/root" -type f | wc -l) files"
        else
                tail -n 30 "$out/reference.log"
                result reference FAIL $((SECONDS - t0)) "meson failed: $out/reference.log"
        fi
}

for p in "${parts[@]}"; do
        rm -f "$out/stamp.$p"
        "build_$p"
done
echo "packages: $passed passed, $failed failed"
[ "$failed" = 0 ]
