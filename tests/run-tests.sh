#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine and runs every test of the project:
# unit tests, lints, the mutation test, and the integration tests on real
# arm64 dumps made here under QEMU (tests/dumps/make-dumps.sh).
#
# Downloads and dumps are cached outside the clone in ${KEXECRS_CACHE:-/var/cache/kexec-rs}.
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
phase() { printf '\n=== %s (%ds) ===\n' "$1" "$(( $(date +%s) - t0 ))"; }

phase "setup"
./tests/setup.sh

phase "real dumps"
./tests/dumps/make-dumps.sh
./tests/fetch-dbg.sh

phase "build"
cargo build --workspace --all-targets --locked

phase "lint"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

phase "tests"
cargo test --workspace --locked

phase "purgatory under QEMU (digests right: kernel entered; one bit flipped: parked)"
./tests/purgatory/run.sh

phase "sdei-fw on real Linux (PSCI, SDEI, hotplug, event 0 to a DAIF-masked CPU)"
./tests/firmware/boot-linux.sh

phase "kexec-rs in QEMU: -p with the verifying purgatory, panic, capture, vmcore verify (CPU-map note); -l/-e"
SKIP_SETUP=1 ./tests/kexec/kdump-proof.sh

phase "sdei-stop.ko (refuses without SDEI; with sdei-fw, captures a DAIF-masked CPU at panic)"
./tests/kmod/sdei-stop-test.sh

phase "crash drill, default matrix (sdei-fw + sdei-stop.ko captures the DAIF-masked CPU; without it, missing; the crash kernel also saves with vmcore save -d 31 -c lzo: verify and makedumpfile --dump-dmesg read it)"
SKIP_SETUP=1 ./tests/drill/crash-drill --json "${KEXECRS_CACHE:-/var/cache/kexec-rs}/drill/ci-matrix.json"

phase "crash drill, two-CPU capture kernel on sdei-fw (CPU_ON of a core CPU_OFF took out of Linux's stop IPI: both CPUs come up; the save runs with -j 2)"
SKIP_SETUP=1 ./tests/drill/crash-drill --scenario sdei-fw/none/none --capture-cpus 2

phase "vmcore save on a real /proc/vmcore copy; crash, drgn (libkdumpfile), makedumpfile and vmcore read the result"
SAVED=$(mktemp -d)
trap 'rm -rf "${SAVED:?}"' EXIT
DUMPS=${KEXECRS_CACHE:-/var/cache/kexec-rs}/dumps/$(cat "${KEXECRS_CACHE:-/var/cache/kexec-rs}/kernel-release")
for c in lzo zstd; do
    ./target/debug/vmcore save -d 31 -c "$c" --progress never \
        "$DUMPS/vmcore-wedged-daif.elf" "$SAVED/wedged-daif.$c.kdump"
done
./tests/save/readers.sh --vmcore ./target/debug/vmcore \
    --expect-log "Kernel panic - not syncing: sysrq triggered crash" \
    --source "$DUMPS/vmcore-wedged-daif.elf" "$SAVED"/wedged-daif.*.kdump

phase "kexec-rs kdump in QEMU under sdei-fw: start (capture initramfs, module), status, test, capture saves with vmcore save"
DRILL_BUILD=${KEXECRS_CACHE:-/var/cache/kexec-rs}/drill/$(cat "${KEXECRS_CACHE:-/var/cache/kexec-rs}/kernel-release")
SDEI_FW=$DRILL_BUILD/sdei-fw.bin SDEI_KO=$DRILL_BUILD/sdei-stop/sdei-stop.ko \
    ./tests/kdump/boot-smoke.sh "$SAVED/kdump-smoke"

phase "done"
