#!/bin/sh
# Runs every fuzz target in turn for SECONDS (default 120) each, one process
# at a time, continuing past crashes (each is saved under artifacts/<target>/).
# Needs cargo-fuzz; on a stable toolchain RUSTC_BOOTSTRAP=1 unlocks the
# -Zsanitizer flags cargo-fuzz passes (see README.md).
#   fuzz/run-all.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/.."
secs=${1:-120}
[ $# -gt 0 ] && shift
targets=${*:-$(cargo fuzz list)}
RUSTC_BOOTSTRAP=1 cargo fuzz build -O --debug-assertions
# Seeds come from the builders; regenerate them into fuzz/corpus/.
FUZZ_WRITE_SEEDS=1 cargo test -q -p vmcore-tools -p kexec-rs --test fuzz_regressions >/dev/null
bin=fuzz/target/x86_64-unknown-linux-gnu/release
mkdir -p fuzz/logs
for t in $targets; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    echo "== $t (${secs}s)"
    "$bin/$t" "fuzz/corpus/$t" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="fuzz/artifacts/$t/" >"fuzz/logs/$t.log" 2>&1 || true
    grep -E '^#[0-9]+: cov:' "fuzz/logs/$t.log" | tail -1
    ls "fuzz/artifacts/$t" 2>/dev/null | sed 's/^/   artifact: /'
done
