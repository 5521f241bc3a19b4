#!/usr/bin/env bash
# Benchmark: `vmcore verify` and `vmcore cpus` on the real 2 GiB-guest
# vmcores, side by side with drgn (from PyPI, with the -dbg vmlinux) printing
# each CPU's pc, and with `readelf -n`. Prints wall times (median of runs),
# pages of the dump read, and ratios. Not a test: it prints numbers.
#
# Needs: tests/setup.sh and tests/dumps/make-dumps.sh done (it runs them).
# Downloads Debian's linux-image-<release>-dbg (about 800 MB) into the cache
# once; drgn comes from the venv tests/setup.sh makes in the cache.
set -euo pipefail
cd "$(dirname "$0")/../.."
./tests/setup.sh >/dev/null
./tests/dumps/make-dumps.sh >/dev/null
cache=${KEXECRS_CACHE:-/var/cache/kexec-rs}
release=$(cat "$cache/kernel-release")
./tests/fetch-dbg.sh
dbgdir=$cache/dbg
vmlinux=$dbgdir/root/usr/lib/debug/boot/vmlinux-$release
sysmap=$dbgdir/root/usr/lib/debug/boot/System.map-$release
cargo build --release --locked -p vmcore-tools
exec python3 tests/bench/vmcore_bench.py \
    --vmcore target/release/vmcore \
    --drgn "$cache/drgn-venv/bin/drgn" \
    --vmlinux "$vmlinux" --system-map "$sysmap" \
    "$cache/dumps/$release"
