#!/usr/bin/env bash
# The release tarball, as Prometheus projects ship theirs: OUT_DIR/ferry-<version>.linux-<arch>.tar.gz holding one
# directory of that name with the binary (stripped), its man page, LICENSE, README.md, docs/ and a sha256sums.txt of
# those files, and OUT_DIR/sha256sums.txt for the tarball itself (the file Prometheus releases publish).
# Usage: scripts/dist.sh BUILD_DIR [OUT_DIR]   (make dist: BUILD_DIR build, OUT_DIR build/dist)
#
# What goes in is what the CMake install() rules install (`cmake --install BUILD_DIR`), laid out flat. The version and
# the arch come from the binary's --version (CMake's project version, Go's arch names), so the name cannot disagree
# with what the binary says. Reproducible: same build, same bytes (sorted members, owner 0, fixed modes, mtime from
# SOURCE_DATE_EPOCH or else the commit time of HEAD, gzip without a time stamp).
set -euo pipefail

build=${1:?usage: scripts/dist.sh BUILD_DIR [OUT_DIR]}
out=${2:-$build/dist}
src=$(cd "$(dirname "$0")/.." && pwd)
ferry="$build/ferry"

[ -x "$ferry" ] || { echo "dist.sh: $ferry is missing: build first (make build)" >&2; exit 1; }
info=$("$ferry" --version 2>&1)
version=$(sed -n '1s/^ferry, version \([^ ]*\) .*/\1/p' <<<"$info")
platform=$(sed -n 's/^  platform: *//p' <<<"$info")
tags=$(sed -n 's/^  tags: *//p' <<<"$info")
[ -n "$version" ] && [ -n "$platform" ] || { echo "dist.sh: cannot read the version and platform from $ferry --version:" \
    "$info" >&2; exit 1; }
case ",$tags," in
    *,asan,* | *,ubsan,* | *,tsan,*) echo "dist.sh: $ferry is a sanitizer build (tags: $tags); package a release tree" >&2
        exit 1 ;;
esac
name="ferry-$version.${platform/\//-}" # linux/amd64 -> ferry-0.1.0.linux-amd64

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || echo 0)}
stage=$(mktemp -d "${TMPDIR:-/tmp}/ferry-dist.XXXXXX")
trap 'rm -rf "$stage"' EXIT

cmake --install "$build" --prefix "$stage/root" --strip >/dev/null
dir="$stage/$name"
mkdir -p "$dir"
mv "$stage/root/bin/ferry" "$stage/root/share/man/man1/ferry.1" "$dir/"
mv "$stage/root/share/doc/ferry/"* "$dir/"
leftover=$(find "$stage/root" -type f | sed "s|^$stage/root/||")
[ -z "$leftover" ] || { echo "dist.sh: the install rules installed files the tarball has no place for: $leftover" >&2
    exit 1; }
(cd "$dir" && find . -type f -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum) >"$stage/sha256sums.txt"
mv "$stage/sha256sums.txt" "$dir/"

mkdir -p "$out"
tar --create --format=gnu --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
    --mode='u+rwX,go+rX,go-w' -C "$stage" "$name" | gzip -9n >"$out/$name.tar.gz.tmp"
mv "$out/$name.tar.gz.tmp" "$out/$name.tar.gz"
(cd "$out" && sha256sum "$name.tar.gz" >sha256sums.txt)
echo "$out/$name.tar.gz"
