#!/bin/bash
# The kdump service end to end in QEMU (Debian's arm64 kernel, -smp 2, crashkernel=256M):
#   first kernel (busybox /init): kexec-rs kdump start (builds the capture initramfs, loads the
#   crash kernel, enables crash_kexec_post_notifiers), status, estimate, `test` refused without
#   --yes, then `test --yes` (sysrq c);
#   capture kernel: kexec-rs as /init of the built initramfs loads the virtio/9p modules, mounts
#   the 9p share, runs `vmcore save` into out/<stamp>/vmcore, writes status, powers off.
# Passes when out/<stamp>/status says "complete" and the console shows every step.
# Needs: qemu-system-aarch64, aarch64-linux-gnu-strip, cpio, $KEXECRS_CACHE (tests/setup.sh).
# Usage: tests/kdump/boot-smoke.sh [WORKDIR]   (default /tmp/kexec-rs-kdump-smoke)
# VMCORE_BIN=path: a static aarch64 vmcore to use instead of this tree's (which is built).
# CRASHKERNEL=128M: another reservation (default 256M, as the drill).
# SDEI_FW=sdei-fw.bin SDEI_KO=sdei-stop.ko (as tests/drill/crash-drill builds them): boot under the
#   project's EL3 firmware; start must then load sdei-stop.ko and status must say every CPU.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${KEXECRS_CACHE:-/var/cache/kexec-rs}
KVER=$(cat "$CACHE/kernel-release")
ROOT=$CACHE/root-arm64
MODS=$ROOT/lib/modules/$KVER
W=${1:-/tmp/kexec-rs-kdump-smoke}
MUSL=aarch64-unknown-linux-musl
die() { echo "boot-smoke: FAIL: $*" >&2; exit 1; }

(cd "$REPO" && CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
    cargo build -q --release -p kexec-rs -p vmcore-tools --target $MUSL) || die "cargo build"
mkdir -p "$W"
F=$W/first
rm -rf "${F:?}" "${W:?}/out"
mkdir -p "$W/out" "$F"/{bin,usr/sbin,usr/bin,etc/kexec-rs,boot,proc,sys,dev,tmp,mnt} "$F/lib/modules/$KVER"
aarch64-linux-gnu-strip -o "$F/usr/sbin/kexec-rs" "$REPO/target/$MUSL/release/kexec-rs"
aarch64-linux-gnu-strip -o "$F/usr/bin/vmcore" "${VMCORE_BIN:-$REPO/target/$MUSL/release/vmcore}"
cp "$ROOT/bin/busybox" "$F/bin/"
cp "$ROOT/boot/vmlinuz-$KVER" "$F/boot/"
cp "$MODS/modules.order" "$MODS/modules.builtin" "$F/lib/modules/$KVER/"
# shellcheck disable=SC2054  # commas inside one QEMU option
fwargs=(-machine virt,gic-version=3)
status_rc=3
if [ -n "${SDEI_FW:-}" ]; then
    mkdir -p "$F/lib/modules/$KVER/extra"
    cp "${SDEI_KO:?SDEI_KO with SDEI_FW}" "$F/lib/modules/$KVER/extra/sdei-stop.ko"
    # shellcheck disable=SC2054
    fwargs=(-machine virt,secure=on,gic-version=3 -bios "$SDEI_FW")
    status_rc=0
fi
for m in drivers/virtio/virtio_mmio net/9p/9pnet net/9p/9pnet_virtio fs/netfs/netfs fs/fscache/fscache fs/9p/9p; do
    mkdir -p "$F/lib/modules/$KVER/kernel/$(dirname $m)"
    cp "$MODS/kernel/$m.ko" "$F/lib/modules/$KVER/kernel/$m.ko"
done
sed -e "s#^image = .*#image = \"/boot/vmlinuz-$KVER\"#" -e "s#^modules_dir = .*#modules_dir = \"/lib/modules/$KVER\"#" \
    "$REPO/kexec-rs/etc/kdump.toml" > "$F/etc/kexec-rs/kdump.toml"
cat > "$F/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/usr/sbin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
echo "SMOKE: first kernel $(uname -r)"
kexec-rs kdump start; echo "SMOKE: start rc=$?"
echo "SMOKE: kexec_crash_loaded=$(cat /sys/kernel/kexec_crash_loaded) post_notifiers=$(cat /sys/module/kernel/parameters/crash_kexec_post_notifiers)"
kexec-rs kdump status; echo "SMOKE: status rc=$?"
kexec-rs kdump estimate
kexec-rs kdump test < /dev/null; echo "SMOKE: test without --yes rc=$?"
kexec-rs kdump test --yes
echo "SMOKE: still alive"; poweroff -f
INIT
chmod +x "$F/init"
(cd "$F" && find . | cpio -o -H newc --quiet | gzip -1) > "$W/first.cpio.gz"
timeout "${QEMU_TIMEOUT:-300}" qemu-system-aarch64 "${fwargs[@]}" -cpu cortex-a57 -smp 2 -m 2048 \
    -nographic -no-reboot -kernel "$ROOT/boot/vmlinuz-$KVER" -initrd "$W/first.cpio.gz" \
    -append "console=ttyAMA0 crashkernel=${CRASHKERNEL:-256M}" \
    -fsdev "local,id=fs0,path=$W/out,security_model=none" -device virtio-9p-device,fsdev=fs0,mount_tag=out \
    > "$W/console.log" 2>&1 || die "QEMU exit $? (console: $W/console.log)"
for mark in "SMOKE: start rc=0" "kexec_crash_loaded=1 post_notifiers=Y" "SMOKE: status rc=$status_rc" "crashkernel=" \
    "SMOKE: test without --yes rc=1" "Starting crashdump kernel" "kexec-rs kdump: capture init" \
    "kexec-rs kdump: module 9p loaded" "kexec-rs kdump: saving /proc/vmcore to /mnt/out/"; do
    grep -qF "$mark" "$W/console.log" || die "console lacks \"$mark\" ($W/console.log)"
done
if [ -n "${SDEI_FW:-}" ]; then
    for mark in "done: load /lib/modules/$KVER/extra/sdei-stop.ko" "sdei-stop: ready: SDEI event 0" \
        "SDEI rung:                  sdei-stop.ko"; do
        grep -qF "$mark" "$W/console.log" || die "console lacks \"$mark\" ($W/console.log)"
    done
fi
st=$(cat "$W"/out/*/status 2>/dev/null) || die "no out/<dump>/status written"
[ "$st" = complete ] || die "capture: $st"
ls -l "$W"/out/*/
# The saved dump on the host: every CPU captured, numbered by the loader's CPU-map note.
(cd "$REPO" && cargo build -q --release -p vmcore-tools) || die "cargo build (host vmcore)"
"$REPO/target/release/vmcore" verify "$W"/out/*/vmcore || die "vmcore verify of the saved dump"
echo "boot-smoke: ok"
