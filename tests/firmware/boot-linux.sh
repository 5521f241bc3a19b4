#!/usr/bin/env bash
# Boots Debian's arm64 kernel on sdei-fw (our EL3 firmware) under QEMU and checks that Linux
# finds PSCI 1.1 and SDEI 1.0, brings up every CPU, survives CPU hotplug off/on, gets SDEI
# event 0 delivered to a CPU spinning with DAIF masked, and powers the machine off through
# PSCI SYSTEM_OFF.
#
#   tests/firmware/boot-linux.sh
#
# What it runs:
#   then, in the guest: CPU 1 hotplug off/on $CYCLES times, and insmod sdei_probe.ko, which
#   registers SDEI event 0 through Linux's own SDEI driver and signals it to CPU 1 while CPU 1
#   spins with DAIF fully masked (see tests/firmware/sdei_probe/sdei_probe.c).
#   qemu-system-aarch64 -machine virt,secure=on,gic-version=3 -cpu cortex-a57 -smp $SMP -m $MEM
#     -bios sdei-fw.bin -kernel vmlinuz -initrd initrd.cpio.gz -append "console=ttyAMA0 ..."
# With -bios, QEMU hands -kernel/-initrd/-append to the firmware through fw_cfg; sdei-fw loads
# them, adds /psci, /firmware/sdei and /chosen to QEMU's DTB and enters Linux at EL1.
#
# Needs: the cache tests/setup.sh fills (Debian kernel and busybox-static, unpacked under
# $KEXECRS_CACHE/root-arm64), qemu-system-aarch64, aarch64-linux-gnu-objcopy, cpio, gzip, and
# the Rust target aarch64-unknown-none-softfloat. If the kernel is missing and we are root,
# tests/setup.sh is run; otherwise the script fails (it never passes by skipping).
#
# Environment:
#   KEXECRS_CACHE  cache root (default /var/cache/kexec-rs)
#   SMP            vCPUs (default 2; more than the host's cores makes TCG slow)
#   MEM            guest memory in MiB (default 1024)
#   QEMU_TIMEOUT   seconds for the QEMU run (default 240)
#   CYCLES         hotplug off/on cycles of CPU 1 (default 3)
#   ROUNDS         SDEI event 0 signals sdei_probe.ko sends (default 20)
#   CPU            QEMU -cpu (default cortex-a57: no EL2 in QEMU, Linux at EL1; "max" has VHE)
#   VIRT           -machine virtualization=on|off (default off). With on, cortex-a57 gets an
#                  EL2 without VHE (Linux still at EL1) and max gets VHE (Linux at EL2)
#   OUT            where the console log and build products go (default: a temp dir, kept
#                  on failure)
#
# Output: the console log's firmware and kernel lines that matter, one PASS/FAIL line per check,
# exit status 0 only if every check passed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${KEXECRS_CACHE:-/var/cache/kexec-rs}
ROOT=$CACHE/root-arm64
SMP=${SMP:-2}
MEM=${MEM:-1024}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-240}
CYCLES=${CYCLES:-3}
ROUNDS=${ROUNDS:-20}
CPU=${CPU:-cortex-a57}
VIRT=${VIRT:-off}
TARGET=aarch64-unknown-none-softfloat

log() { printf '[boot-linux] %s\n' "$*" >&2; }
die() { printf '[boot-linux] ERROR: %s\n' "$*" >&2; exit 1; }

OUT=${OUT:-$(mktemp -d /tmp/sdei-fw-boot.XXXXXX)}
mkdir -p "$OUT"

# ---------------------------------------------------------------- inputs
KERNEL=$(ls "$ROOT"/boot/vmlinuz-*-arm64 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$KERNEL" ] || [ ! -x "$ROOT/bin/busybox" ]; then
    if [ "$(id -u)" = 0 ]; then
        log "kernel or busybox missing under $ROOT: running tests/setup.sh"
        bash "$REPO/tests/setup.sh"
        KERNEL=$(ls "$ROOT"/boot/vmlinuz-*-arm64 | sort -V | tail -n1)
    else
        die "no Debian arm64 kernel under $ROOT: run tests/setup.sh as root first"
    fi
fi
for t in qemu-system-aarch64 aarch64-linux-gnu-objcopy cpio gzip timeout; do
    command -v "$t" >/dev/null || die "$t not found (tests/setup.sh installs it)"
done
log "kernel $KERNEL"

# ---------------------------------------------------------------- firmware
log "building sdei-fw for $TARGET"
(cd "$REPO" && cargo build -q -p sdei-fw --target "$TARGET" --release)
ELF=$REPO/target/$TARGET/release/sdei-fw
aarch64-linux-gnu-objcopy -O binary "$ELF" "$OUT/sdei-fw.bin"
log "sdei-fw.bin $(stat -c %s "$OUT/sdei-fw.bin") bytes"

# ---------------------------------------------------------------- sdei_probe.ko
# The SDEI delivery check (tests/firmware/sdei_probe/sdei_probe.c), built against the
# Debian headers in the cache, out of tree in $OUT so the repository stays clean.
KVER=$(basename "$KERNEL"); KVER=${KVER#vmlinuz-}
HDR=$ROOT/usr/src/linux-headers-$KVER
[ -d "$HDR" ] || die "missing $HDR (tests/setup.sh unpacks it)"
rm -rf "$OUT/sdei_probe"
cp -r "$HERE/sdei_probe" "$OUT/sdei_probe"
log "building sdei_probe.ko against $KVER"
make -s -C "$HDR" M="$OUT/sdei_probe" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- modules >&2 2>/dev/null \
    || make -C "$HDR" M="$OUT/sdei_probe" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- modules >&2 \
    || die "building sdei_probe.ko failed"

# ---------------------------------------------------------------- initramfs
ST=$OUT/initramfs
rm -rf "$ST"
mkdir -p "$ST/bin" "$ST/proc" "$ST/sys" "$ST/dev"
cp "$ROOT/bin/busybox" "$ST/bin/busybox"
cp "$OUT/sdei_probe/sdei_probe.ko" "$ST/sdei_probe.ko"
cat > "$ST/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "T: init up, online=\$(cat /sys/devices/system/cpu/online)"
echo "T: dt sdei compatible=\$(tr -d '\\000' < /proc/device-tree/firmware/sdei/compatible) method=\$(tr -d '\\000' < /proc/device-tree/firmware/sdei/method)"
echo "T: dt psci method=\$(tr -d '\\000' < /proc/device-tree/psci/method)"
i=0
while [ \$i -lt $CYCLES ]; do
    i=\$((i + 1))
    if echo 0 > /sys/devices/system/cpu/cpu1/online; then
        echo "T: cycle \$i off online=\$(cat /sys/devices/system/cpu/online)"
    else
        echo "T: cycle \$i off FAILED"
    fi
    if echo 1 > /sys/devices/system/cpu/cpu1/online; then
        echo "T: cycle \$i on online=\$(cat /sys/devices/system/cpu/online)"
    else
        echo "T: cycle \$i on FAILED"
    fi
done
# Event 0 registered through Linux's SDEI driver, signalled to CPU 1 spinning with DAIF masked.
if insmod /sdei_probe.ko cpu=1 rounds=$ROUNDS; then echo "T: sdei_probe ok"; else echo "T: sdei_probe FAILED"; fi
echo "T: done"
poweroff -f
EOF
chmod +x "$ST/init"
(cd "$ST" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 > "$OUT/initrd.cpio.gz"

# ---------------------------------------------------------------- boot
LOG=$OUT/console.log
log "booting: -smp $SMP -m $MEM, timeout ${QEMU_TIMEOUT}s, console in $LOG"
set +e
timeout --foreground -k 5 "$QEMU_TIMEOUT" qemu-system-aarch64 \
    -machine "virt,secure=on,gic-version=3,virtualization=$VIRT" -cpu "$CPU" -smp "$SMP" -m "$MEM" \
    -nographic -no-reboot -monitor none -serial stdio \
    -bios "$OUT/sdei-fw.bin" -kernel "$KERNEL" -initrd "$OUT/initrd.cpio.gz" \
    -append "console=ttyAMA0 panic=-1 rdinit=/init" \
    </dev/null > "$LOG" 2>&1
rc=$?
set -e
tr -d '\r' < "$LOG" > "$LOG.txt"
grep -E '^sdei-fw:|psci:|sdei:|sdei_probe:|smp:|CPU[0-9]+: (shutdown|Booted)|^T: |Kernel panic|Unable to handle' "$LOG.txt" | sed 's/^/  | /' >&2 || true

# ---------------------------------------------------------------- checks
fails=0
check() { # check NAME EGREP-PATTERN
    if grep -Eq -- "$2" "$LOG.txt"; then
        echo "PASS $1"
    else
        echo "FAIL $1 (no line matching: $2)"
        fails=$((fails + 1))
    fi
}
refute() { # refute NAME EGREP-PATTERN
    if grep -Eq -- "$2" "$LOG.txt"; then
        echo "FAIL $1 (found: $(grep -Em1 -- "$2" "$LOG.txt"))"
        fails=$((fails + 1))
    else
        echo "PASS $1"
    fi
}
[ $rc -eq 0 ] && echo "PASS qemu exited by itself" || { echo "FAIL qemu exit status $rc (124 = timeout)"; fails=$((fails + 1)); }
check "firmware entered Linux"               '^sdei-fw: entering Linux at 0x40200000'
check "psci: PSCIv1.1 detected"              'psci: PSCIv1\.1 detected in firmware'
check "psci: SMCCC 1.1"                      'psci: SMC Calling Convention v1\.1'
check "sdei: SDEIv1.0 detected"              'sdei: SDEIv1\.0 \(0x0\) detected in firmware'
check "all $SMP CPUs up"                     "smp: Brought up 1 node, $SMP CPUs"
check "DT /firmware/sdei"                    '^T: dt sdei compatible=arm,sdei-1\.0 method=smc'
check "DT /psci method smc"                  '^T: dt psci method=smc'
for i in $(seq 1 "$CYCLES"); do
    check "hotplug cycle $i: cpu1 off"       "^T: cycle $i off online=0\$"
    check "hotplug cycle $i: cpu1 on"        "^T: cycle $i on online=0-$((SMP - 1))\$"
done
check "sdei_probe: event 0 hit the DAIF-masked spinner" 'sdei_probe: round 0: event 0 on cpu1, interrupted pc=sdei_probe_spin\+0x[0-9a-f]+/0x[0-9a-f]+ \[sdei_probe\] pstate=0x[0-9a-f]+ \(DAIF masked\)'
check "sdei_probe: all rounds delivered"     "sdei_probe: $ROUNDS/$ROUNDS delivered"
check "sdei_probe: PASS"                     'sdei_probe: PASS'
check "insmod sdei_probe.ko succeeded"       '^T: sdei_probe ok'
check "init finished"                        '^T: done'
check "PSCI SYSTEM_OFF reached firmware"     '^sdei-fw: PSCI SYSTEM_OFF'
refute "no kernel panic or oops"             'Kernel panic|Unable to handle|Internal error|sdei: .*(fail|Fail)|psci: .*fail'
refute "firmware saw no unexpected exception" '^sdei-fw: (unexpected|panic|cannot)'

if [ $fails -eq 0 ]; then
    log "all checks passed"
    [ -z "${KEEP:-}" ] && [ "${OUT#/tmp/sdei-fw-boot.}" != "$OUT" ] && rm -rf "$OUT"
    exit 0
fi
log "$fails check(s) failed; console log kept in $LOG"
exit 1
