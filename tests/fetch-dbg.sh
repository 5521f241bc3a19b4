#!/usr/bin/env bash
# Fetches the real System.map and vmlinux of the kernel the test dumps come
# from: Debian's linux-image-<release>-dbg (about 800 MB), unpacked once into
# ${KEXECRS_CACHE:-/var/cache/kexec-rs}/dbg/root/usr/lib/debug/boot/.
# The System.map in /boot of Debian's arm64 kernel package is a one-line stub.
set -euo pipefail
cache=${KEXECRS_CACHE:-/var/cache/kexec-rs}
release=$(cat "$cache/kernel-release")
dir=$cache/dbg
boot=$dir/root/usr/lib/debug/boot
if [ -s "$boot/System.map-$release" ] && [ -s "$boot/vmlinux-$release" ]; then
    exit 0
fi
mkdir -p "$dir/root"
cd "$dir"
t0=$(date +%s)
ls linux-image-"$release"-dbg_*_arm64.deb >/dev/null 2>&1 || apt-get download -q "linux-image-$release-dbg:arm64"
dpkg-deb --fsys-tarfile linux-image-"$release"-dbg_*_arm64.deb \
    | tar -x -C root --wildcards './usr/lib/debug/boot/*'
rm -f linux-image-"$release"-dbg_*_arm64.deb
echo "fetch-dbg: System.map and vmlinux for $release in $(( $(date +%s) - t0 ))s"
