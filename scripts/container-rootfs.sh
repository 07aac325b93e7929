#!/bin/sh
# Builds the root file system of Ferry's container image (Dockerfile) in DEST: the binary as /usr/bin/ferry, its
# shared-library closure as ldd resolves it (the dynamic loader included, each library at the path ldd names), an
# /etc/passwd and /etc/group that name user and group 65534 (nobody, nogroup), and an empty /proc for the runtime's.
# Nothing else: no shell, no package manager, nothing writable. /data, the only writable directory, is not made here
# but by the Dockerfile's COPY --chown=65534:65534 (a COPY cannot be relied on to change the owner of a directory an
# earlier layer made). tests/integration/test_container.py builds its root with this same script and adds /data the
# same way, so what it runs is what the image holds.
# Usage: scripts/container-rootfs.sh path/to/ferry DEST
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 path/to/ferry DEST" >&2
    exit 2
fi
bin=$1
root=$2

mkdir -p "$root/usr/bin" "$root/etc" "$root/proc"
cp "$bin" "$root/usr/bin/ferry"
chmod 0755 "$root/usr/bin/ferry"

# ldd lines: "libx.so.1 => /lib/.../libx.so.1 (0x...)", "/lib64/ld-linux-x86-64.so.2 (0x...)", "linux-vdso.so.1 (...)".
libs=$(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
if [ -z "$libs" ]; then
    echo "container-rootfs: ldd found no libraries for $bin (a static binary needs none; this one is not)" >&2
    exit 1
fi
for lib in $libs; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"   # the file itself, under the name the loader asks for
done

printf 'root:x:0:0:root:/nonexistent:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
    >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
