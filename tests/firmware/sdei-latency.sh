#!/usr/bin/env bash
# SDEI event 0 delivery latency, sdei-fw and TF-A side by side (issue 3 item 4).
#
#   tests/firmware/sdei-latency.sh
#
# Boots Debian's arm64 kernel on each firmware with tests/firmware/boot-linux.sh (no hotplug
# cycles) and reads the result of sdei_probe.ko: ROUNDS times, SDEI_EVENT_SIGNAL to CPU 1
# spinning with DAIF masked, latency = CNTVCT at the handler's callback minus CNTVCT just
# before the signalling SMC, in guest counter ticks (CNTFRQ 62.5 MHz on QEMU virt). It is
# TCG time: it compares the firmware paths on the same host, it is not a hardware number.
#
# Environment: ROUNDS (default 200), SMP (default 2), FIRMWARES (default "sdei-fw tfa"),
# and whatever boot-linux.sh reads (KEXECRS_CACHE, QEMU_TIMEOUT, CPU, VIRT).
# Output: one line per firmware, then a verdict; exit status 1 if a boot failed or if
# sdei-fw's average is slower than TF-A's (the issue's target).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROUNDS=${ROUNDS:-200}
FIRMWARES=${FIRMWARES:-sdei-fw tfa}
declare -A AVG

printf '%-8s %6s %10s %10s %10s %9s %9s\n' firmware rounds min_ticks avg_ticks max_ticks min_us avg_us
for fw in $FIRMWARES; do
    line=$(FIRMWARE=$fw CYCLES=0 RESETS=0 ROUNDS=$ROUNDS bash "$HERE/boot-linux.sh" 2>/dev/null | grep '^RESULT' || true)
    if [ -z "$line" ]; then
        echo "$fw: boot-linux.sh gave no RESULT (run it with FIRMWARE=$fw to see why)" >&2
        exit 1
    fi
    eval "$(echo "$line" | sed 's/^RESULT //; s/\([a-z_]*\)=\([^ ]*\)/local_\1=\2;/g')"
    # shellcheck disable=SC2154  # set by the eval above
    printf '%-8s %6s %10s %10s %10s %9s %9s\n' "$fw" "$local_rounds" "$local_min_ticks" \
        "$local_avg_ticks" "$local_max_ticks" \
        "$(( local_min_ticks * 1000000 / local_cntfrq ))" "$(( local_avg_ticks * 1000000 / local_cntfrq ))"
    AVG[$fw]=$local_avg_ticks
done
if [ -n "${AVG[sdei-fw]:-}" ] && [ -n "${AVG[tfa]:-}" ]; then
    if [ "${AVG[sdei-fw]}" -le "${AVG[tfa]}" ]; then
        echo "sdei-fw is not slower than TF-A (avg ${AVG[sdei-fw]} <= ${AVG[tfa]} ticks)"
    else
        echo "sdei-fw is slower than TF-A (avg ${AVG[sdei-fw]} > ${AVG[tfa]} ticks)"
        exit 1
    fi
fi
