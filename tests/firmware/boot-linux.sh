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
#   FIRMWARE       sdei-fw (default) or tfa: the reference lane, TF-A 2.12.1 built from Debian
#                  trixie's arm-trusted-firmware source package (PLAT=qemu SDEI_SUPPORT=1
#                  EL3_EXCEPTION_HANDLING=1 QEMU_USE_GIC_DRIVER=QEMU_GICV3, the kernel as BL33),
#                  cached in $KEXECRS_CACHE/tfa. TF-A reads neither fw_cfg nor adds
#                  /firmware/sdei, so this lane passes a DTB edited with dtc (-dtb) and loads
#                  the initrd with -device loader at 0x48000000.
#   RESETS         sdei-fw only: also boot an initramfs whose init calls `reboot -f` (PSCI
#                  SYSTEM_RESET; QEMU then resets the machine and sdei-fw boots again) and
#                  check Linux came up this many times (default 2; 0 skips)
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
FIRMWARE=${FIRMWARE:-sdei-fw}
RESETS=${RESETS:-2}
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
KVER=$(basename "$KERNEL"); KVER=${KVER#vmlinuz-}
case $FIRMWARE in
sdei-fw)
    log "building sdei-fw for $TARGET"
    (cd "$REPO" && cargo build -q -p sdei-fw --target "$TARGET" --release)
    ELF=$REPO/target/$TARGET/release/sdei-fw
    aarch64-linux-gnu-objcopy -O binary "$ELF" "$OUT/sdei-fw.bin"
    log "sdei-fw.bin $(stat -c %s "$OUT/sdei-fw.bin") bytes"
    ;;
tfa)
    # Debian trixie's source package through a private apt configuration: the host's
    # sources stay untouched.
    TFA=$CACHE/tfa
    APT=$TFA/apt
    APTO=(-o "Dir::Etc::sourcelist=$APT/sources.list" -o Dir::Etc::sourceparts=- \
          -o "Dir::State::Lists=$APT/lists" -o "Dir::Cache=$APT/cache" -o APT::Get::List-Cleanup=0)
    if [ ! -d "$TFA/src" ]; then
        for t in dpkg-source make aarch64-linux-gnu-gcc dtc python3; do
            command -v "$t" >/dev/null || die "$t not found (needed to build TF-A)"
        done
        mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial"
        echo "deb-src http://deb.debian.org/debian trixie main" > "$APT/sources.list"
        log "fetching arm-trusted-firmware source (Debian trixie)"
        apt-get -q "${APTO[@]}" update >&2
        rm -rf "$TFA/dl" && mkdir -p "$TFA/dl"
        (cd "$TFA/dl" && apt-get -q "${APTO[@]}" source --download-only arm-trusted-firmware >&2)
        dpkg-source -x --no-check "$TFA"/dl/arm-trusted-firmware_*.dsc "$TFA/src.tmp" >&2
        mv "$TFA/src.tmp" "$TFA/src"
    fi
    FLASH=$TFA/flash-$KVER.bin
    if [ ! -e "$FLASH" ]; then
        log "building TF-A (PLAT=qemu, SDEI, kernel $KVER as BL33)"
        make -s -C "$TFA/src" -j"$(nproc)" PLAT=qemu SDEI_SUPPORT=1 EL3_EXCEPTION_HANDLING=1 \
            QEMU_USE_GIC_DRIVER=QEMU_GICV3 ARM_LINUX_KERNEL_AS_BL33=1 BL33="$KERNEL" \
            CROSS_COMPILE=aarch64-linux-gnu- all fip >&2
        # BL1 at 0x0, the FIP at 256 KiB of the secure flash (docs/plat/qemu.rst).
        cp "$TFA/src/build/qemu/release/bl1.bin" "$FLASH.tmp"
        dd if="$TFA/src/build/qemu/release/fip.bin" of="$FLASH.tmp" seek=64 bs=4096 \
            conv=notrunc status=none
        mv "$FLASH.tmp" "$FLASH"
    fi
    ;;
*) die "FIRMWARE must be sdei-fw or tfa" ;;
esac

# ---------------------------------------------------------------- sdei_probe.ko
# The SDEI delivery check (tests/firmware/sdei_probe/sdei_probe.c), built against the
# Debian headers in the cache, out of tree in $OUT so the repository stays clean.
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
log "booting on $FIRMWARE: -smp $SMP -m $MEM, timeout ${QEMU_TIMEOUT}s, console in $LOG"
MACHINE="virt,secure=on,gic-version=3,virtualization=$VIRT"
BOOTARGS="console=ttyAMA0 panic=-1 rdinit=/init"
if [ "$FIRMWARE" = tfa ]; then
    # QEMU's DTB for this machine, plus what TF-A does not add: /firmware/sdei, and /chosen
    # bootargs and initrd (TF-A's BL2 adds /psci and the CPUs' enable-method itself).
    INITRD_AT=0x48000000
    timeout 30 qemu-system-aarch64 -machine "$MACHINE,dumpdtb=$OUT/qemu.dtb" -cpu "$CPU" \
        -smp "$SMP" -m "$MEM" -nographic -bios "$FLASH" >/dev/null 2>&1
    dtc -q -I dtb -O dts -o "$OUT/qemu.dts" "$OUT/qemu.dtb"
    python3 - "$OUT/qemu.dts" "$OUT/boot.dts" "$BOOTARGS" "$INITRD_AT" \
        "$(stat -c %s "$OUT/initrd.cpio.gz")" <<'PY'
import sys
src, dst, args, start, size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4], 0), int(sys.argv[5])
s = open(src).read()
chosen = ('\tchosen {\n\t\tbootargs = "%s";\n\t\tlinux,initrd-start = <0x00 0x%x>;\n'
          '\t\tlinux,initrd-end = <0x00 0x%x>;\n' % (args, start, start + size))
assert '\tchosen {\n' in s, "no /chosen in QEMU's DTB"
s = s.replace('\tchosen {\n', chosen, 1)
i = s.rstrip().rfind('};')
s = (s[:i] + '\tfirmware {\n\t\tsdei {\n\t\t\tcompatible = "arm,sdei-1.0";\n'
     '\t\t\tmethod = "smc";\n\t\t};\n\t};\n' + s[i:])
open(dst, 'w').write(s)
PY
    dtc -q -I dts -O dtb -o "$OUT/boot.dtb" "$OUT/boot.dts"
    FW_ARGS=(-bios "$FLASH" -dtb "$OUT/boot.dtb"
             -device "loader,file=$OUT/initrd.cpio.gz,addr=$INITRD_AT,force-raw=on")
else
    FW_ARGS=(-bios "$OUT/sdei-fw.bin" -kernel "$KERNEL" -initrd "$OUT/initrd.cpio.gz"
             -append "$BOOTARGS")
fi
set +e
timeout --foreground -k 5 "$QEMU_TIMEOUT" qemu-system-aarch64 \
    -machine "$MACHINE" -cpu "$CPU" -smp "$SMP" -m "$MEM" \
    -nographic -no-reboot -monitor none -serial stdio "${FW_ARGS[@]}" \
    </dev/null > "$LOG" 2>&1
rc=$?
set -e
tr -d '\r' < "$LOG" > "$LOG.txt"
grep -E '^sdei-fw:|^NOTICE:|^ERROR:|psci:|sdei:|sdei_probe:|smp:|CPU[0-9]+: (shutdown|Booted)|^T: |Kernel panic|Unable to handle' "$LOG.txt" | sed 's/^/  | /' >&2 || true

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
[ "$FIRMWARE" = sdei-fw ] && check "firmware entered Linux" '^sdei-fw: entering Linux at 0x40200000'
check "psci: PSCIv1.1 detected"              'psci: PSCIv1\.1 detected in firmware'
check "psci: SMCCC 1.1 or later"             'psci: SMC Calling Convention v1\.[1-9]'
check "sdei: SDEIv1.0 detected"              'sdei: SDEIv1\.0 \(0x0\) detected in firmware'
check "all $SMP CPUs up"                     "smp: Brought up 1 node, $SMP CPUs"
check "DT /firmware/sdei"                    '^T: dt sdei compatible=arm,sdei-1\.0 method=smc'
check "DT /psci method smc"                  '^T: dt psci method=smc'
# /sys/devices/system/cpu/online with CPU 1 off: 0 / 0,2 / 0,2-N
case $SMP in 2) OFF_SET=0 ;; 3) OFF_SET=0,2 ;; *) OFF_SET=0,2-$((SMP - 1)) ;; esac
for i in $(seq 1 "$CYCLES"); do
    check "hotplug cycle $i: cpu1 off"       "^T: cycle $i off online=$OFF_SET\$"
    check "hotplug cycle $i: cpu1 on"        "^T: cycle $i on online=0-$((SMP - 1))\$"
done
check "sdei_probe: event 0 hit the DAIF-masked spinner" 'sdei_probe: round 0: event 0 on cpu1, interrupted pc=sdei_probe_spin\+0x[0-9a-f]+/0x[0-9a-f]+ \[sdei_probe\] pstate=0x[0-9a-f]+ \(DAIF masked\)'
check "sdei_probe: all rounds delivered"     "sdei_probe: $ROUNDS/$ROUNDS delivered"
check "sdei_probe: PASS"                     'sdei_probe: PASS'
check "insmod sdei_probe.ko succeeded"       '^T: sdei_probe ok'
check "init finished"                        '^T: done'
if [ "$FIRMWARE" = sdei-fw ]; then
    check "PSCI SYSTEM_OFF reached firmware" '^sdei-fw: PSCI SYSTEM_OFF'
else
    check "PSCI SYSTEM_OFF reached firmware" 'QEMU System Power off'
fi
refute "no kernel panic or oops"             'Kernel panic|Unable to handle|Internal error|sdei: .*(fail|Fail)|psci: .*fail'
refute "firmware saw no unexpected exception" '^sdei-fw: (unexpected|panic|cannot)|^PANIC|Unhandled Exception'

# SYSTEM_RESET: the firmware must come up again after QEMU resets the machine (GICD_CTLR
# resets to 0, which holds the secondaries until core 0 has re-initialised everything).
if [ "$FIRMWARE" = sdei-fw ] && [ "$RESETS" -gt 0 ]; then
    RST=$OUT/reset
    rm -rf "$RST" && mkdir -p "$RST/bin" "$RST/proc"
    cp "$ROOT/bin/busybox" "$RST/bin/busybox"
    printf '#!/bin/busybox sh\n/bin/busybox mount -t proc proc /proc\necho "T: reset boot"\n/bin/busybox reboot -f\n' > "$RST/init"
    chmod +x "$RST/init"
    (cd "$RST" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 > "$OUT/reset.cpio.gz"
    # No -no-reboot: QEMU resets the machine; stop it once Linux came up $RESETS times.
    timeout -k 5 "$QEMU_TIMEOUT" qemu-system-aarch64 \
        -machine "virt,secure=on,gic-version=3,virtualization=$VIRT" -cpu "$CPU" -smp "$SMP" -m "$MEM" \
        -nographic -monitor none -serial stdio \
        -bios "$OUT/sdei-fw.bin" -kernel "$KERNEL" -initrd "$OUT/reset.cpio.gz" \
        -append "console=ttyAMA0 panic=-1 rdinit=/init" </dev/null > "$OUT/reset.raw" 2>&1 &
    qpid=$!
    for _ in $(seq 1 "$QEMU_TIMEOUT"); do
        [ "$(grep -c 'T: reset boot' "$OUT/reset.raw" || true)" -ge "$RESETS" ] && break
        kill -0 "$qpid" 2>/dev/null || break
        sleep 1
    done
    kill "$qpid" 2>/dev/null || true   # the timeout wrapper passes it on to QEMU
    wait "$qpid" 2>/dev/null || true
    tr -d '\r' < "$OUT/reset.raw" > "$OUT/reset.log"
    boots=$(grep -c '^T: reset boot' "$OUT/reset.log" || true)
    sdei=$(grep -c 'sdei: SDEIv1\.0' "$OUT/reset.log" || true)
    if [ "$boots" -ge "$RESETS" ] && [ "$sdei" -ge "$RESETS" ] \
        && grep -q '^sdei-fw: PSCI SYSTEM_RESET' "$OUT/reset.log"; then
        echo "PASS SYSTEM_RESET: Linux and SDEI came up $boots times"
    else
        echo "FAIL SYSTEM_RESET: $boots boot(s), SDEI found $sdei time(s) (log: $OUT/reset.log)"
        fails=$((fails + 1))
    fi
fi

# One machine-readable line for the latency benchmark (tests/firmware/sdei-latency.sh).
lat=$(sed -n 's/.*sdei_probe: \([0-9]*\)\/[0-9]* delivered; latency signal->handler min \([0-9]*\) avg \([0-9]*\) max \([0-9]*\) ticks at \([0-9]*\) Hz.*/\1 \2 \3 \4 \5/p' "$LOG.txt" | tail -n1)
[ -n "$lat" ] && set -- $lat && echo "RESULT firmware=$FIRMWARE smp=$SMP rounds=$1 min_ticks=$2 avg_ticks=$3 max_ticks=$4 cntfrq=$5"

if [ $fails -eq 0 ]; then
    log "all checks passed"
    [ -z "${KEEP:-}" ] && [ "${OUT#/tmp/sdei-fw-boot.}" != "$OUT" ] && rm -rf "$OUT"
    exit 0
fi
log "$fails check(s) failed; console log kept in $LOG"
exit 1
