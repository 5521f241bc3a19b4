#!/usr/bin/env bash
# The project's main job, one command on a fresh Debian 12 machine.
#
# Until the crash drill lands, it makes real arm64 dumps under QEMU (Debian's
# arm64 kernel, one CPU wedged with interrupts masked, a real panic, a real
# /proc/vmcore) and shows what `vmcore verify` and `vmcore cpus` make of them.
set -euo pipefail
cd "$(dirname "$0")/.."
./tests/setup.sh
./tests/dumps/make-dumps.sh
cargo build --release --locked -p vmcore-tools
cache=${KEXECRS_CACHE:-/var/cache/kexec-rs}
dir=$cache/dumps/$(cat "$cache/kernel-release")/
vmcore=target/release/vmcore
for f in vmcore-wedged-irq.elf vmcore-plain.elf; do
    echo
    echo "### $dir$f"
    "$vmcore" info "$dir$f"
    echo
    "$vmcore" cpus "$dir$f"
    echo
    rc=0
    "$vmcore" verify "$dir$f" || rc=$?
    echo "(vmcore verify exit status $rc: 0 every CPU captured, 1 some missing, 2 unusable input)"
done
