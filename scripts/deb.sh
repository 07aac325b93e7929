#!/usr/bin/env bash
# The Debian package of an already-built tree: OUT_DIR/ferry_<version>_<arch>.deb (and its -dbgsym, .buildinfo and
# .changes), made by dpkg-buildpackage from a copy of debian/ in OUT_DIR, with FERRY_PREBUILT pointing debian/rules at
# BUILD_DIR: the install() rules of that tree, no second build (debian/rules has the from-source way too).
# Usage: scripts/deb.sh BUILD_DIR [OUT_DIR]   (make deb: build, build/deb; tests/integration/test_package.py)
#
# Nothing is written into the source tree: dpkg-buildpackage works in OUT_DIR/ferry-<version>/ and puts what it makes
# in OUT_DIR. The version of debian/changelog must be the binary's (CMake's project version): a package that says
# another version than the program it holds is refused here, with both named.
set -euo pipefail

build=${1:?usage: scripts/deb.sh BUILD_DIR [OUT_DIR]}
[ -d "$build" ] || { echo "deb.sh: no build tree at $build: run make build first" >&2; exit 1; }
build=$(cd "$build" && pwd)
out=${2:-$build/deb}
src=$(cd "$(dirname "$0")/.." && pwd)

[ -x "$build/ferry" ] || { echo "deb.sh: $build/ferry is missing: run make build first" >&2; exit 1; }
info=$("$build/ferry" --version 2>&1)
version=$(sed -n '1s/^ferry, version \([^ ]*\) .*/\1/p' <<<"$info")
case "$(sed -n 's/^  tags: *//p' <<<"$info")" in
    *asan* | *tsan*) echo "deb.sh: $build/ferry is a sanitizer build; package a release tree" >&2; exit 1 ;;
esac
deb_version=$(cd "$src" && dpkg-parsechangelog -S Version)
if [ "$deb_version" != "$version" ]; then
    echo "deb.sh: debian/changelog says $deb_version, $build/ferry --version says $version (CMakeLists.txt's" \
        "project()): add a changelog entry (dch -v $version) or fix the version" >&2
    exit 1
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage="$out/ferry-$version"
rm -rf "$stage"
rm -f "$out"/ferry_*.deb "$out"/ferry-dbgsym_*.deb "$out"/ferry_*.buildinfo "$out"/ferry_*.changes
mkdir -p "$stage"
cp -a "$src/debian" "$stage/"
# -b: binary packages only (a source package would need the whole source); -us -uc: unsigned.
(cd "$stage" && FERRY_PREBUILT="$build" dpkg-buildpackage -b -us -uc >"$out/build.log" 2>&1) || {
    echo "deb.sh: dpkg-buildpackage failed; its output, from $out/build.log:" >&2
    tail -n 30 "$out/build.log" >&2
    exit 1
}
rm -rf "$stage"
ls "$out"/ferry_"$version"_*.deb
