#!/usr/bin/env bash
# Benchmark: `vmcore save` against Debian's makedumpfile 1.7.2 (issue 6). Prints numbers side
# by side; asserts no times. Not a test.
#
#   tests/bench/save-bench.sh [--runs N] [--guest] [--no-host]
#
# Host part: on the real /proc/vmcore copies of the 2 GiB guest (vmcore-wedged-daif.elf,
# vmcore-wedged-irq.elf; 1.8 GiB apparent, sparse), each tool writes a real -d 31 file:
#   makedumpfile -d 31 -l / -c        Debian's arm64 binary under qemu-aarch64-static
#   vmcore save -d 31 -c lzo|zlib|zstd  the static aarch64 musl build under qemu-aarch64-static
#                                     (same emulation cost as makedumpfile), and the native
#                                     x86_64 build for reference
# min/median wall seconds of N runs (default 3) until the output is on disk (the tool, then an
# fsync of its output file), input MB/s, output size, peak RSS, ratios.
# A `vmcore` without the `save` subcommand is reported and left out.
#
# Then the LZO encoders alone (liblzo2 lzo1x_1_compress against vmcore save's, both arm64 under
# qemu-aarch64-static) on the pages -d 31 keeps.
#
# --guest: also runs `tests/drill/crash-drill --bench-save` (the capture kernel under QEMU TCG,
# 1 CPU, runs both tools on /proc/vmcore; guest clock and busybox `time -v`) and prints its table.
#
# Needs tests/setup.sh and tests/dumps/make-dumps.sh done (it runs them). Scratch output goes to
# /tmp/save-bench (about 100 MiB at a time, removed at the end).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=3 GUEST=0 HOST=1
while [ $# -gt 0 ]; do
    case $1 in
    --runs) RUNS=${2:?}; shift 2 ;;
    --guest) GUEST=1; shift ;;
    --no-host) HOST=0; shift ;;
    *) echo "usage: save-bench.sh [--runs N] [--guest] [--no-host]" >&2; exit 2 ;;
    esac
done
cache=${KEXECRS_CACHE:-/var/cache/kexec-rs}
./tests/setup.sh >/dev/null
./tests/dumps/make-dumps.sh >/dev/null
release=$(cat "$cache/kernel-release")
root=$cache/root-arm64
musl=aarch64-unknown-linux-musl
cargo build -q --release --locked -p vmcore-tools
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
    cargo build -q --release --locked -p vmcore-tools --target $musl
native=target/release/vmcore
# Stripped, as installed and as the drill's initramfs carries it (Debian's makedumpfile is
# stripped too; qemu-user reads the symbol table of the binary it loads).
mkdir -p /tmp/save-bench-bin
arm=/tmp/save-bench-bin/vmcore
aarch64-linux-gnu-strip -o "$arm" "target/$musl/release/vmcore"
vmcore_args=()
if "$native" save --help >/dev/null 2>&1; then
    vmcore_args=(--vmcore-native "$native" --vmcore-arm64 "$arm")
else
    echo "save-bench: this tree's vmcore has no 'save' subcommand: makedumpfile only" >&2
fi
echo "# host: $(nproc) cores, $(qemu-aarch64-static --version | head -n1), makedumpfile" \
    "$(QEMU_LD_PREFIX=$root qemu-aarch64-static "$root/usr/bin/makedumpfile" -v 2>&1 | head -n1)"
if [ "$HOST" = 1 ]; then
    scratch=/tmp/save-bench
    python3 tests/bench/save_bench.py --root "$root" "${vmcore_args[@]}" --scratch "$scratch" \
        --runs "$RUNS" "$cache/dumps/$release/vmcore-wedged-daif.elf" "$cache/dumps/$release/vmcore-wedged-irq.elf"
    rm -rf "${scratch:?}"
fi
if [ "$HOST" = 1 ]; then
    # The encoders alone, on the same pages: the pages `-d 31` keeps of vmcore-wedged-daif.elf
    # (the tail of an uncompressed save: after the headers and the shared zero page).
    echo
    echo "# LZO and deflate encoders alone under qemu-aarch64-static, the kept pages of vmcore-wedged-daif.elf"
    scratch=/tmp/save-bench-lzo
    mkdir -p "$scratch"
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
        cargo build -q --release --locked -p vmcore-tools --example encode_pages --target $musl
    aarch64-linux-gnu-gcc -O2 -o "$scratch/encode_pages" tests/bench/encode_pages.c \
        "$root/lib/aarch64-linux-gnu/liblzo2.so.2" "$root/lib/aarch64-linux-gnu/libz.so.1"
    kept=$("$native" save -j 1 -d 31 -c none --json "$cache/dumps/$release/vmcore-wedged-daif.elf" \
        "$scratch/none.kdump" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pages_written"])')
    tail -c $((kept * 4096)) "$scratch/none.kdump" >"$scratch/pages.bin"
    rm -f "$scratch/none.kdump"
    for _ in $(seq "$RUNS"); do
        for kind in lzo zlib; do
            QEMU_LD_PREFIX=$root qemu-aarch64-static "$scratch/encode_pages" $kind "$scratch/pages.bin"
            qemu-aarch64-static "target/$musl/release/examples/encode_pages" $kind "$scratch/pages.bin"
        done
    done
    rm -rf "${scratch:?}"
fi
rm -rf /tmp/save-bench-bin
if [ "$GUEST" = 1 ]; then
    echo
    echo "# guest: crash kernel under QEMU TCG (1 CPU), /proc/vmcore of a 2 GiB guest"
    SKIP_SETUP=1 ./tests/drill/crash-drill --bench-save
fi
