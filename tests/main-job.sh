#!/usr/bin/env bash
# The project's main job, one command on a fresh Debian 12 machine: the
# crash drill's headline scenario.
#
# Debian's arm64 kernel boots under QEMU on sdei-fw (the project's EL3
# firmware, which gives the machine SDEI), kexec-rs loads the crash kernel,
# sdei-stop.ko adds the SDEI rung to the kernel's stop path, CPU 1 is wedged
# with every DAIF mask set, and the kernel panics. The crash kernel copies
# /proc/vmcore out, saves it again with `vmcore save -d 31 -c lzo` (checked
# by `vmcore verify` and makedumpfile --dump-dmesg on the host), and `vmcore`
# shows every CPU, the wedged one included,
# next to the same scenario without the payload (CPU 1 missing: the stop IPI
# cannot reach it).
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/setup.sh
cargo build --release --locked -p vmcore-tools
./tests/drill/crash-drill --scenario sdei-fw/daif/sdei-stop --scenario sdei-fw/daif/none
cache=${KEXECRS_CACHE:-/var/cache/kexec-rs}
runs=$cache/drill/$(cat "$cache/kernel-release")/runs
for run in sdei-fw_daif_sdei-stop sdei-fw_daif_none; do
    echo
    echo "### $run: vmcore cpus"
    target/release/vmcore cpus "$runs/$run/vmcore.elf"
done
