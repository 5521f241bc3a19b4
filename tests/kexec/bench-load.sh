#!/usr/bin/env bash
# Benchmark: kexec-rs against Debian's kexec-tools (2.0.25) loading the same crash kernel in the
# same guest, and panic -> crash-kernel entry for each. Exit non-zero on any failure.
#
#   tests/kexec/bench-load.sh
#
# Two kinds of QEMU run, PANICS of each (same machine as kdump-proof.sh: virt, GICv3,
# cortex-a57, 2 CPUs, 2 GiB, crashkernel=256M). Every run loads with both loaders REPS times
# (every load but the run's last is unloaded again), so each run gives load times of both:
#   bench-rs-N: kexec-tools then kexec-rs; the panic is taken with kexec-rs loaded
#               (its purgatory verifies the SHA-256 of every segment)
#   bench-kt-N: kexec-rs then kexec-tools; the panic is taken with kexec-tools loaded
#               (its purgatory checks sha256 too: Debian's default, no -i)
# The crash kernel records that it came up and powers off (no vmcore copy).
# Load time: the loader's wall time in the guest (/proc/uptime, 10 ms resolution); inputs in
# tmpfs. Panic -> entry: host arrival time of the crash kernel's first "Booting Linux" console
# line minus that of "sysrq: Trigger a crash" (the crash kernel prints its first line when its
# console registers, the same delay for both loaders); for kexec-rs also panic -> the
# purgatory's "entering" line (the jump to the kernel).
# kexec-tools needs _text in /proc/kallsyms, which Debian 6.1 does not list: the guest adds it
# (tests/kexec/init, as tests/dumps/init does).
#
# Environment: as kdump-proof.sh (KEXECRS_CACHE, SKIP_SETUP, QEMU_TIMEOUT, IDLE_TIMEOUT, MEM),
# REPS (loads per loader per run, default 3), PANICS (runs of each kind, default 2).
# Results: $KEXECRS_CACHE/build/<release>/kexec/run-bench-*/ and bench-summary.json there.
set -euo pipefail
KX_NAME=bench-load
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"
REPS=${REPS:-3}
PANICS=${PANICS:-2}

kx_setup
kx_build
kx_initramfs

BENCH_MARKS=(
    "boot=Booting Linux on physical CPU"
    "init=KEXECRS: init"
    "loaded=KEXECRS: loaded"
    "panic=sysrq: Trigger a crash"
    "purgatory?=^purgatory: .*verified in"
    "purgatory_exit?=^purgatory: entering"
    "entry=Booting Linux on physical CPU"
    "capture=KEXECRS: capture kernel up"
)
stats() {  # stats "x y z" -> "median s (min-max, n=N)"
    echo "$1" | tr ' ' '\n' | grep -v '^?*$' | sort -g | awk '{v[NR]=$1} END {
        if (NR == 0) { print "?"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f s (%.2f-%.2f, n=%d)", m, v[1], v[NR], NR }'
}
L_RS="" L_KT="" P_RS="" P_KT="" X_RS="" VERIFY_RS="" RUNS_JSON=""
for i in $(seq 1 "$PANICS"); do
    for r in rs:kexec-tools,kexec-rs kt:kexec-rs,kexec-tools; do
        n=${r%%:*}
        phase "qemu-bench-$n-$i"
        run_guest "bench-$n-$i" "kexecrs.mode=crash kexecrs.loaders=${r#*:} kexecrs.reps=$REPS kexecrs.capture=none" 0 "${BENCH_MARKS[@]}"
        for m in boot init loaded panic entry capture; do
            [ -n "$(mark "$RUN" $m)" ] || die "bench-$n-$i: console never showed the '$m' mark (console: $RUN/console.log)"
        done
        [ -e "$RUN/out/capture.done" ] || die "bench-$n-$i: the crash kernel's init did not finish"
        [ "$(cat "$RUN/out/panic-loader")" = "${r##*,}" ] || die "bench-$n-$i: panicked with $(cat "$RUN/out/panic-loader") loaded"
        L_RS="$L_RS $(loads "$RUN/out" kexec-rs)"
        L_KT="$L_KT $(loads "$RUN/out" kexec-tools)"
        p=$(delta "$(mark "$RUN" panic)" "$(mark "$RUN" entry)")
        if [ "$n" = rs ]; then
            P_RS="$P_RS $p"
            X_RS="$X_RS $(delta "$(mark "$RUN" panic)" "$(mark "$RUN" purgatory_exit)")"
            v=$(purgatory_line "$RUN")
            [ -n "$v" ] || die "bench-$n-$i: kexec-rs's purgatory printed no verification line (was the verifying purgatory embedded?)"
            VERIFY_RS="$VERIFY_RS${VERIFY_RS:+; }${v#purgatory: }"
        else
            P_KT="$P_KT $p"
        fi
        RUNS_JSON="$RUNS_JSON${RUNS_JSON:+, }\"bench-$n-$i\": $(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["marks"]))' "$RUN/result.json")"
        phase_end
    done
done

python3 - "$BUILD/bench-summary.json" <<PYEOF
import json, sys
json.dump({
  "load_s": {"kexec-rs": "$L_RS".split(), "kexec-tools": "$L_KT".split()},
  "panic_to_booting_linux_s": {"kexec-rs": "$P_RS".split(), "kexec-tools": "$P_KT".split()},
  "panic_to_purgatory_exit_s": {"kexec-rs": "$X_RS".split()},
  "kexec_rs_purgatory": "$VERIFY_RS",
  "runs": json.loads('{'+'''$RUNS_JSON'''+'}'),
}, open(sys.argv[1], "w"), indent=1)
PYEOF

KT_VER=$(find "$CACHE/debs" -name 'kexec-tools_*_arm64.deb' | head -n1 | sed 's/.*kexec-tools_\([^_]*\)_.*/\1/; s/%3a/:/')
printf '\n== crash-kernel load and panic -> crash-kernel entry (same guests, kernel, initrd, command line) ==\n'
printf '  %-40s %-34s %s\n' "" "kexec-rs" "kexec-tools $KT_VER"
printf '  %-40s %-34s %s\n' "load -p (guest wall time)" "$(stats "$L_RS")" "$(stats "$L_KT")"
printf '  %-40s %-34s %s\n' "panic -> crash 'Booting Linux' (host)" "$(stats "$P_RS")" "$(stats "$P_KT")"
printf '  %-40s %-34s %s\n' "panic -> purgatory jumps to the kernel" "$(stats "$X_RS")" "(its purgatory prints nothing)"
printf '  %-40s %-34s %s\n' "digests checked before entry" "SHA-256 of every segment" "sha256 of every segment (no -i)"
printf '  kexec-rs purgatory: %s\n' "$VERIFY_RS"
MED_RS=$(stats "$P_RS" | cut -d' ' -f1)
if awk -v p="$MED_RS" 'BEGIN { exit !(p <= 1.5) }'; then
    kx_log "kexec-rs panic -> entry median $MED_RS s: within the 1.5 s target"
else
    kx_log "NOTE: kexec-rs panic -> entry median $MED_RS s is above the 1.5 s target (host load $(cut -d' ' -f1-3 /proc/loadavg))"
fi
report_timings
kx_log "PASS (summary: $BUILD/bench-summary.json)"
