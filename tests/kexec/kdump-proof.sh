#!/usr/bin/env bash
# The kexec-rs proof under QEMU (issue 4 item 5), a CI check: exit 0 only when all holds,
# non-zero on any failure, nothing skipped.
#
#   tests/kexec/kdump-proof.sh
#
# 1. kdump: Debian's arm64 kernel boots under qemu-system-aarch64 (virt, GICv3, cortex-a57,
#    2 CPUs, 2 GiB, crashkernel=256M) with an initramfs of busybox and the static kexec-rs;
#    the guest runs `kexec-rs -p vmlinuz --initrd initrd --append "console=ttyAMA0 maxcpus=1
#    nr_cpus=1 reset_devices ..."` (kexec_load, the verifying purgatory), records its
#    crash_notes addresses and MPIDRs, then `echo c > /proc/sysrq-trigger`. The crash kernel
#    boots and copies /proc/vmcore to a raw virtio-blk disk. On the host `vmcore verify --json`
#    must report every CPU captured with method "cpu-map-note", and the CPU-map note's entries
#    must equal the guest's sysfs (tests/kexec/check_dump.py).
# 2. kexec -l / -e: `kexec-rs -l` the same kernel with "kexecrs.marker=<random>" and
#    `kexec-rs -e`; the second kernel's init must print that marker.
# Prints per-phase timings and panic -> crash-kernel entry measured on the host from console
# line arrival times ("sysrq: Trigger a crash" to the crash kernel's "Booting Linux").
#
# Environment: KEXECRS_CACHE (default /var/cache/kexec-rs), SKIP_SETUP=1, QEMU_TIMEOUT
# (seconds per QEMU run, default 600), IDLE_TIMEOUT (seconds without console output, default
# 240), MEM (MiB, default 2048), KEEP_VMCORE=1 (keep the vmcore copy after a pass).
# Results: $KEXECRS_CACHE/build/<release>/kexec/run-*/ and proof-summary.json there.
# Takes about 1 minute with everything built (2 host cores; QEMU TCG), plus about 2 minutes
# for a first cargo build.
set -euo pipefail
KX_NAME=kdump-proof
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

kx_setup
kx_build
kx_initramfs

# ---------------------------------------------------------------- 1. kdump with kexec-rs -p
phase qemu-kdump
run_guest kdump "kexecrs.mode=crash kexecrs.loaders=kexec-rs kexecrs.capture=copy" 1 "${CRASH_MARKS[@]}"
KD=$RUN
for m in boot init loaded panic entry capture copied; do
    [ -n "$(mark "$KD" $m)" ] || die "kdump run: console never showed the '$m' mark (console: $KD/console.log)"
done
phase_end

phase verify
rc=0
"$VMCORE" verify --json "$KD/vmcore.elf" > "$KD/verify.json" || rc=$?
kx_log "vmcore verify exit status $rc"
cat "$KD/verify.json" >&2
"$VMCORE" verify "$KD/vmcore.elf" >&2 || true
python3 "$KX_HERE/check_dump.py" "$KD/vmcore.elf" "$KD/verify.json" "$KD/out" "$IN/vmlinuz" > "$KD/check.txt" || rc=$(( rc ? rc : 1 ))
grep -v '^\[' "$KD/check.txt" | sed 's/^/  /' >&2
tail -n 1 "$KD/check.txt" > "$KD/cpumap.json"
kx_log "CPU map: $(cat "$KD/cpumap.json")"
[ "$rc" = 0 ] || die "the dump does not prove every CPU captured by the CPU-map note (see $KD/check.txt)"
phase_end

# ---------------------------------------------------------------- 2. kexec-rs -l, -e
phase qemu-exec
MARKER=kx$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
run_guest exec "kexecrs.mode=exec kexecrs.next_marker=$MARKER" 0 \
    "boot=Booting Linux on physical CPU" \
    "init=KEXECRS: init" \
    "loaded=KEXECRS: loaded \\(kexec-rs -l\\)" \
    "kexec=kexec_core: Starting new kernel" \
    "purgatory?=^purgatory: .*verified in" \
    "boot2=Booting Linux on physical CPU" \
    "marker=KEXECRS-MARKER $MARKER\$"
EX=$RUN
for m in loaded kexec boot2 marker; do
    [ -n "$(mark "$EX" $m)" ] || die "exec run: console never showed the '$m' mark (console: $EX/console.log)"
done
grep -q "kexecrs.marker=$MARKER" "$EX/out/second.cmdline" || die "exec run: second kernel's /proc/cmdline lacks the marker"
[ -e "$EX/out/second.done" ] || die "exec run: second kernel's init did not finish"
phase_end

# ---------------------------------------------------------------- report
KO=$KD/out
P2E=$(delta "$(mark "$KD" panic)" "$(mark "$KD" entry)")
PURG=$(purgatory_line "$KD")
PURG2=$(purgatory_line "$EX")
COPY=$(awk '{printf "%.1f", $2 - $1}' "$KO/capture.copy-uptime")
SUMMARY=$BUILD/proof-summary.json
python3 - "$SUMMARY" <<EOF
import json, sys
json.dump({
  "verify": json.load(open("$KD/verify.json")),
  "cpu_map": json.loads(open("$KD/cpumap.json").read()),
  "kdump_marks": json.load(open("$KD/result.json"))["marks"],
  "exec_marks": json.load(open("$EX/result.json"))["marks"],
  "panic_to_crash_entry_s": float("$P2E") if "$P2E" != "?" else None,
  "kexec_rs_load_s": "$(loads "$KO" kexec-rs)",
  "purgatory_kdump": "$PURG", "purgatory_exec": "$PURG2",
  "marker": "$MARKER",
}, open(sys.argv[1], "w"), indent=1)
EOF
printf '\n== kexec-rs kdump proof (host seconds from console line arrival) ==\n'
printf '  %-44s %s\n' \
    "QEMU start -> first kernel 'Booting Linux'" "$(mark "$KD" boot)" \
    "first kernel -> init" "$(delta "$(mark "$KD" boot)" "$(mark "$KD" init)")" \
    "init -> crash kernel loaded (facts, plan, load)" "$(delta "$(mark "$KD" init)" "$(mark "$KD" loaded)")" \
    "kexec-rs -p load (guest /proc/uptime)" "$(loads "$KO" kexec-rs)" \
    "panic -> crash kernel 'Booting Linux'" "$P2E" \
    "panic -> purgatory enters the kernel" "$(delta "$(mark "$KD" panic)" "$(mark "$KD" purgatory_exit)")" \
    "crash kernel entry -> its init" "$(delta "$(mark "$KD" entry)" "$(mark "$KD" capture)")" \
    "copy /proc/vmcore ($(cat "$KO/vmcore.size") bytes)" "$COPY (guest)" \
    "whole kdump run" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$KD/result.json")" \
    "exec: kexec-rs -e -> second 'Booting Linux'" "$(delta "$(mark "$EX" kexec)" "$(mark "$EX" boot2)")" \
    "exec: second kernel -> marker" "$(delta "$(mark "$EX" boot2)" "$(mark "$EX" marker)")"
printf '  purgatory (kdump): %s\n  purgatory (exec):  %s\n' "${PURG:-none printed}" "${PURG2:-none printed}"
printf '  verdict: %s\n' "$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print(v["verdict"], v["method"], "captured", v["captured"], "of", v["expected"])' "$KD/verify.json")"
printf '  -e marker %s seen in the second kernel\n' "$MARKER"
report_timings
# The copy holds about 250 MiB of data (sparse, 1.8 GiB long); keep it only when asked.
if [ "${KEEP_VMCORE:-0}" = 1 ]; then
    kx_log "vmcore kept: $KD/vmcore.elf"
else
    rm -f "$KD/vmcore.elf"
fi
kx_log "PASS (summary: $SUMMARY)"
