#!/usr/bin/env bash
# sdei-stop.ko on QEMU: Debian's arm64 kernel on sdei-fw, CPU 1 wedged with DAIF fully masked,
# a panic with crash_kexec_post_notifiers; checks that the module's SDEI rung captured CPU 1.
#
#   tests/kmod/sdei-stop-test.sh
#
# Scenario "sdei" (sdei-fw as EL3 firmware, -smp 2):
#   insmod sdei-stop.ko; rmmod it (clean unload); insmod it again; insmod wedge.ko cpu=1
#   mode=daif (tests/wedge); echo c > /proc/sysrq-trigger. panic() then runs the kernel's
#   crash_smp_send_stop() (CPU 1 ignores the IPI: "SMP: failed to stop secondary CPUs 1"),
#   then the module's panic notifier, which signals SDEI event 0 to CPU 1 and waits 100 ms at
#   most; CPU 1's handler writes its crash note, goes offline and parks. The notifier prints
#   the note it finds: its pc must symbolize to wedge_spin [wedge]. No crash kernel is loaded,
#   so panic=-1 reboots and QEMU (-no-reboot) exits.
# Scenario "nofw" (QEMU's built-in PSCI, no SDEI): insmod must refuse with -ENODEV and say why.
#
# Needs the cache tests/setup.sh fills (Debian kernel, headers, busybox under
# $KEXECRS_CACHE/root-arm64), qemu-system-aarch64, Debian's gcc-aarch64-linux-gnu, cargo with
# aarch64-unknown-none-softfloat. Fails (never skips) when something is missing.
#
# Environment:
#   KEXECRS_CACHE  cache root (default /var/cache/kexec-rs)
#   QEMU_TIMEOUT   seconds per QEMU run (default 300)
#   SCENARIOS      which to run (default "sdei nofw")
#   OUT            build products and console logs (default: a temp dir, kept on failure)
#
# Output: the console lines that matter, PASS/FAIL per check; exit 0 only if all passed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${KEXECRS_CACHE:-/var/cache/kexec-rs}
ROOT=$CACHE/root-arm64
QEMU_TIMEOUT=${QEMU_TIMEOUT:-300}
SCENARIOS=${SCENARIOS:-sdei nofw}
TARGET=aarch64-unknown-none-softfloat

log() { printf '[sdei-stop-test] %s\n' "$*" >&2; }
die() { printf '[sdei-stop-test] ERROR: %s\n' "$*" >&2; exit 1; }

OUT=${OUT:-$(mktemp -d /tmp/sdei-stop-test.XXXXXX)}
mkdir -p "$OUT"

KERNEL=$(ls "$ROOT"/boot/vmlinuz-*-arm64 2>/dev/null | sort -V | tail -n1 || true)
[ -n "$KERNEL" ] && [ -x "$ROOT/bin/busybox" ] || die "no Debian arm64 kernel/busybox under $ROOT: run tests/setup.sh"
for t in qemu-system-aarch64 aarch64-linux-gnu-objcopy aarch64-linux-gnu-gcc cpio gzip timeout make; do
    command -v "$t" >/dev/null || die "$t not found (tests/setup.sh installs it)"
done
KVER=$(basename "$KERNEL"); KVER=${KVER#vmlinuz-}
HDR=$ROOT/usr/src/linux-headers-$KVER
[ -d "$HDR" ] || die "missing $HDR (tests/setup.sh unpacks it)"

# ---------------------------------------------------------------- builds
log "building sdei-fw"
(cd "$REPO" && cargo build -q -p sdei-fw --target "$TARGET" --release)
aarch64-linux-gnu-objcopy -O binary "$REPO/target/$TARGET/release/sdei-fw" "$OUT/sdei-fw.bin"

log "building sdei-stop.ko"
KVER=$KVER "$REPO/crash-payload/kmod/build.sh" "$OUT/sdei-stop" >/dev/null

log "building wedge.ko"
rm -rf "$OUT/wedge" && cp -r "$REPO/tests/wedge" "$OUT/wedge"
make -s -C "$HDR" M="$OUT/wedge" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- modules >&2 2>/dev/null \
    || die "building wedge.ko failed"

# ---------------------------------------------------------------- initramfs
mkinitrd() { # mkinitrd NAME: init script on stdin
    local st=$OUT/initramfs-$1
    rm -rf "$st" && mkdir -p "$st/bin" "$st/proc" "$st/sys" "$st/dev"
    cp "$ROOT/bin/busybox" "$st/bin/busybox"
    cp "$OUT/sdei-stop/sdei-stop.ko" "$OUT/wedge/wedge.ko" "$st/"
    cat > "$st/init"
    chmod +x "$st/init"
    (cd "$st" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -1 > "$OUT/$1.cpio.gz"
}

PRELUDE='#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Keep init on CPU 0 so the wedged CPU 1 cannot starve it; the panic happens on CPU 0.
taskset -p 1 $$ >/dev/null 2>&1 || echo "T: taskset failed"
echo "T: init up, online=$(cat /sys/devices/system/cpu/online) cmdline=$(cat /proc/cmdline)"'

mkinitrd sdei <<EOF
$PRELUDE
insmod /sdei-stop.ko && echo "T: insmod 1 ok" || echo "T: insmod 1 FAILED"
rmmod sdei_stop && echo "T: rmmod ok" || echo "T: rmmod FAILED"
insmod /sdei-stop.ko && echo "T: insmod 2 ok" || echo "T: insmod 2 FAILED"
echo "T: crash_notes cpu1=\$(cat /sys/devices/system/cpu/cpu1/crash_notes)"
insmod /wedge.ko cpu=1 mode=daif && echo "T: wedge ok" || echo "T: wedge FAILED"
echo "T: panicking"
echo c > /proc/sysrq-trigger
echo "T: still alive after panic?"
poweroff -f
EOF

mkinitrd nofw <<EOF
$PRELUDE
if insmod /sdei-stop.ko; then echo "T: insmod unexpectedly ok"; else echo "T: insmod refused rc=\$?"; fi
poweroff -f
EOF

# ---------------------------------------------------------------- run + checks
fails=0
check() { # check LOG NAME EGREP-PATTERN
    if grep -Eq -- "$3" "$1"; then echo "PASS $2"; else echo "FAIL $2 (no line matching: $3)"; fails=$((fails + 1)); fi
}
refute() { # refute LOG NAME EGREP-PATTERN
    if grep -Eq -- "$3" "$1"; then echo "FAIL $2 (found: $(grep -Em1 -- "$3" "$1"))"; fails=$((fails + 1)); else echo "PASS $2"; fi
}
run_qemu() { # run_qemu NAME MACHINE EXTRA-ARGS...
    local name=$1 machine=$2; shift 2
    local raw=$OUT/$name.console.raw rc
    log "booting scenario $name ($machine, -smp 2), timeout ${QEMU_TIMEOUT}s"
    set +e
    timeout --foreground -k 5 "$QEMU_TIMEOUT" qemu-system-aarch64 \
        -machine "$machine" -cpu cortex-a57 -smp 2 -m 1024 \
        -nographic -no-reboot -monitor none -serial stdio "$@" \
        -kernel "$KERNEL" -initrd "$OUT/$name.cpio.gz" \
        </dev/null > "$raw" 2>&1
    rc=$?
    set -e
    tr -d '\r' < "$raw" > "$OUT/$name.console.log"
    grep -E 'sdei-stop|^T: |wedge:|SMP:|Kernel panic|sdei:|Unable to handle|Internal error|WARNING|Rebooting|PSCI SYSTEM' \
        "$OUT/$name.console.log" | sed "s/^/  $name | /" >&2 || true
    return $rc
}

for sc in $SCENARIOS; do
    L=$OUT/$sc.console.log
    case $sc in
    sdei)
        rc=0
        run_qemu sdei "virt,secure=on,gic-version=3" -bios "$OUT/sdei-fw.bin" \
            -append "console=ttyAMA0 panic=-1 rdinit=/init crash_kexec_post_notifiers" || rc=$?
        [ $rc -eq 0 ] && echo "PASS sdei: qemu exited by itself (panic=-1 reboot)" \
            || { echo "FAIL sdei: qemu exit status $rc (124 = timeout)"; fails=$((fails + 1)); }
        check "$L" "sdei: SDEI found by the module"         'sdei-stop: SDEI 1\.[0-9]+ \(vendor 0x[0-9a-f]+\) via smc'
        check "$L" "sdei: event 0 registered on CPUs 0-1"   'sdei-stop: ready: SDEI event 0 registered and enabled on CPUs 0-1; panic notifier installed'
        check "$L" "sdei: insmod, rmmod, insmod"            '^T: insmod 1 ok'
        check "$L" "sdei: clean unload"                     'sdei-stop: unloaded: SDEI event 0 disabled and unregistered'
        check "$L" "sdei: rmmod ok"                         '^T: rmmod ok'
        check "$L" "sdei: reload ok"                        '^T: insmod 2 ok'
        check "$L" "sdei: CPU 1 wedged with DAIF masked"    'wedge: cpu1 wedged \(mode=daif\)'
        check "$L" "sdei: panic"                            'Kernel panic - not syncing: sysrq triggered crash'
        check "$L" "sdei: the kernel's IPI missed CPU 1"    'SMP: failed to stop secondary CPUs 1$'
        check "$L" "sdei: module announced"                 'sdei-stop: panic on CPU0: crash-stopping CPUs 1 that the kernel.s stop IPI did not stop: SDEI event 0 via smc, 100 ms at most'
        check "$L" "sdei: module signalled SDEI to CPU 1"   'sdei-stop: sending SDEI crash stop to CPUs 1$'
        check "$L" "sdei: CPU 1 answered SDEI"              'sdei-stop: SDEI rung: CPUs 1 answered, [0-9]+ us after signalling CPUs 1$'
        check "$L" "sdei: CPU 1's note pc is wedge_spin"    'sdei-stop: CPU1 saved by SDEI: pc wedge_spin\+0x[0-9a-f]+/0x[0-9a-f]+ \[wedge\] lr .+ sp [0-9a-f]{16} pstate [0-9a-f]{8} pid [1-9][0-9]*'
        check "$L" "sdei: every CPU stopped"                'sdei-stop: SMP: stopped secondary CPUs 1$'
        refute "$L" "sdei: nobody left unanswered"          'sdei-stop: .*(did not answer|failed to stop)'
        refute "$L" "sdei: no oops, no Rust panic"          'Unable to handle|Internal error|Rust panic|sdei-stop: .*FAILED|^T: .*FAILED'
        # The wedged CPU's saved PSTATE: EL1h with D, A, I, F all masked (0x3c5).
        check "$L" "sdei: CPU 1 interrupted at EL1h with DAIF masked" 'sdei-stop: CPU1 saved by SDEI: .* pstate [0-9a-f]{5}3c5 '
        us=$(sed -n 's/.*sdei-stop: SDEI rung: CPUs 1 answered, \([0-9]*\) us.*/\1/p' "$L" | tail -n1)
        [ -n "$us" ] && echo "RESULT sdei_rung_us=$us"
        ;;
    nofw)
        rc=0
        run_qemu nofw "virt,gic-version=3" -append "console=ttyAMA0 panic=-1 rdinit=/init" || rc=$?
        [ $rc -eq 0 ] && echo "PASS nofw: qemu exited by itself" \
            || { echo "FAIL nofw: qemu exit status $rc (124 = timeout)"; fails=$((fails + 1)); }
        check "$L" "nofw: module refused to load"          '^T: insmod refused'
        check "$L" "nofw: and said why"                    'sdei-stop: no SDEI firmware described \(no DT "arm,sdei-1\.0" node, no ACPI SDEI table\); not loading'
        refute "$L" "nofw: no oops"                        'Unable to handle|Internal error|Kernel panic'
        ;;
    *) die "unknown scenario $sc (sdei, nofw)" ;;
    esac
done

if [ $fails -eq 0 ]; then
    log "all checks passed (logs in $OUT)"
    exit 0
fi
log "$fails check(s) failed; console logs kept in $OUT"
exit 1
