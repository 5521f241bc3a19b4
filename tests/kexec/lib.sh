# shellcheck shell=bash disable=SC2034  # variables here are used by the scripts that source it
# Shared by tests/kexec/kdump-proof.sh and tests/kexec/bench-load.sh (sourced, bash).
#
# Builds (cached by content under $KEXECRS_CACHE/build/<kernel-release>/kexec/):
#   kexec-rs      static aarch64 musl binary (cargo, linker rust-lld given in the environment)
#                 with the verifying purgatory embedded by kexec-rs/build.rs
#   vmcore        the host analyzer (target/release/vmcore)
#   sparsecopy    tests/dumps/sparsecopy.rs for the capture kernel (same build as make-dumps.sh)
#   in/initrd.cpio.gz   busybox, kexec-rs, sparsecopy, Debian's kexec + its libraries, the
#                 virtio/9p modules, tests/kexec/init; in/vmlinuz: Debian's arm64 kernel
# and runs guests: run_guest NAME MODE_APPEND DISK(0|1) MARK...  (tests/kexec/console_run.py).
#
# Environment: KEXECRS_CACHE (default /var/cache/kexec-rs), SKIP_SETUP=1 (do not run
# tests/setup.sh), QEMU_TIMEOUT (seconds per QEMU run, default 600), MEM (MiB, default 2048).

KX_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KX_TESTS=$(dirname "$KX_HERE")
KX_REPO=$(dirname "$KX_TESTS")
CACHE=${KEXECRS_CACHE:-/var/cache/kexec-rs}
export KEXECRS_CACHE=$CACHE
MEM=${MEM:-2048}
SMP=2
CRASHKERNEL=256M
QEMU_TIMEOUT=${QEMU_TIMEOUT:-600}
QEMU=qemu-system-aarch64
MUSL=aarch64-unknown-linux-musl

TOOL=${KX_NAME:?}
# shellcheck source=../lib/phases.sh
. "$KX_TESTS/lib/phases.sh"
# shellcheck source=../lib/stage.sh
. "$KX_TESTS/lib/stage.sh"
kx_log() { say "$@"; }
report_timings() {
    kx_log "phase timings:"
    local t; for t in "${TIMINGS[@]}"; do printf '  %-28s %s\n' "${t% *}" "${t##* }" >&2; done
    printf '  %-28s %s\n' total "$(fmt_ds $(( $(now_ds) - T_ALL )))" >&2
}

# ---------------------------------------------------------------- setup and builds
kx_setup() {
    phase setup
    if [ "${SKIP_SETUP:-0}" != 1 ]; then
        FORCE=0 bash "$KX_TESTS/setup.sh" || die "tests/setup.sh failed"
    fi
    KVER=$(cat "$CACHE/kernel-release")
    ROOT=$CACHE/root-arm64
    BUILD=$CACHE/build/$KVER/kexec
    IN=$BUILD/in
    mkdir -p "$BUILD" "$IN"
    command -v $QEMU >/dev/null || die "$QEMU missing (run tests/setup.sh)"
    command -v aarch64-linux-gnu-strip >/dev/null || die "aarch64-linux-gnu-strip missing (binutils-aarch64-linux-gnu, tests/setup.sh)"
    kx_log "kernel $KVER, $($QEMU --version | head -n1), MEM=${MEM}M, smp $SMP, $(nproc) host cores, build $BUILD"
    phase_end
}

kx_build() {
    phase build-kexec-rs
    # Static musl binary; rust-lld links it (no cross gcc needed). Given here rather than in a
    # .cargo/config.toml so nothing else in the workspace changes.
    (cd "$KX_REPO" && CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld \
        cargo build -q --release -p kexec-rs --target $MUSL) || die "cargo build kexec-rs for $MUSL failed"
    KEXEC_RS_BIN=$KX_REPO/target/$MUSL/release/kexec-rs
    if aarch64-linux-gnu-readelf -l "$KEXEC_RS_BIN" | grep -q 'INTERP\|DYNAMIC'; then
        die "$KEXEC_RS_BIN is not a static executable"
    fi
    aarch64-linux-gnu-strip -o "$BUILD/kexec-rs" "$KEXEC_RS_BIN"
    phase_end

    phase build-vmcore
    (cd "$KX_REPO" && cargo build -q --release -p vmcore-tools) || die "cargo build vmcore-tools failed"
    VMCORE=$KX_REPO/target/release/vmcore
    phase_end

    phase build-sparsecopy
    local sum; sum=$(sha256sum "$KX_TESTS/dumps/sparsecopy.rs" | cut -c1-16)
    if [ ! -x "$BUILD/sparsecopy" ] || [ "$(cat "$BUILD/sparsecopy.sum" 2>/dev/null)" != "$sum" ]; then
        rustc --edition 2021 -O -C strip=symbols --target $MUSL -C linker=rust-lld \
            -o "$BUILD/sparsecopy" "$KX_TESTS/dumps/sparsecopy.rs" || die "sparsecopy build failed"
        echo "$sum" > "$BUILD/sparsecopy.sum"
    fi
    phase_end
}

kx_initramfs() {
    phase initramfs
    local moddir=$ROOT/lib/modules/$KVER
    local mods="virtio_mmio virtio_blk 9pnet 9pnet_virtio netfs fscache 9p"
    local sum; sum=$(cat "$KX_HERE/init" "$BUILD/kexec-rs" "$BUILD/sparsecopy" "$ROOT/sbin/kexec" | sha256sum | cut -c1-16)
    if [ ! -e "$IN/initrd.cpio.gz" ] || [ "$(cat "$IN/initrd.sum" 2>/dev/null)" != "$sum" ]; then
        local st=$BUILD/initramfs
        rm -rf "$st"
        mkdir -p "$st/bin" "$st/sbin" "$st/lib/modules" "$st/lib/aarch64-linux-gnu"
        cp "$ROOT/bin/busybox" "$st/bin/busybox"
        cp "$BUILD/sparsecopy" "$st/bin/sparsecopy"
        cp "$BUILD/kexec-rs" "$st/sbin/kexec-rs"
        install -m 0755 "$KX_HERE/init" "$st/init"
        stage_modules "$moddir" "$st" $mods
        # Debian's kexec (for the benchmark), its DT_NEEDED closure and the dynamic loader.
        cp "$ROOT/sbin/kexec" "$st/sbin/kexec"
        stage_dynamic "$ROOT" "$st" "$ROOT/sbin/kexec"
        (cd "$st" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) \
            | gzip -6 > "$IN/initrd.cpio.gz.tmp"
        mv "$IN/initrd.cpio.gz.tmp" "$IN/initrd.cpio.gz"
        echo "$sum" > "$IN/initrd.sum"
    fi
    cmp -s "$ROOT/boot/vmlinuz-$KVER" "$IN/vmlinuz" || cp "$ROOT/boot/vmlinuz-$KVER" "$IN/vmlinuz"
    kx_log "initrd $(stat -c %s "$IN/initrd.cpio.gz") bytes, vmlinuz $(stat -c %s "$IN/vmlinuz") bytes"
    phase_end
}

# ---------------------------------------------------------------- one guest
# run_guest NAME APPEND DISK MARK...: boots the Debian kernel with APPEND added to
# "console=ttyAMA0 crashkernel=256M"; DISK=1 attaches a MEM-sized raw disk for /proc/vmcore.
# MARK: NAME=REGEX for console_run.py (NAME? optional). Results in $RUN (= $BUILD/run-NAME):
# console.log, result.json (host times of the marks), out/ (what the guest wrote), vmcore.elf.
run_guest() {
    local name=$1 append=$2 disk=$3; shift 3
    RUN=$BUILD/run-$name
    local out=$RUN/out m
    rm -rf "$RUN"; mkdir -p "$out"
    local diskargs=()
    if [ "$disk" = 1 ]; then
        # The copy is sparse (about 250 MiB written of a 2 GiB guest); a full disk would only
        # show up as an I/O error inside the guest.
        local avail; avail=$(df --output=avail -k "$RUN" | tail -n1)
        [ "$avail" -ge $(( 1024 * 1024 )) ] || die "run $name: only $(( avail / 1024 )) MiB free under $RUN; the vmcore copy needs about 1 GiB"
        truncate -s "${MEM}M" "$RUN/vmcore.part"
        # shellcheck disable=SC2054  # commas inside one QEMU option
        diskargs=(-drive "if=none,id=d0,file=$RUN/vmcore.part,format=raw,detect-zeroes=unmap,discard=unmap"
                  -device virtio-blk-device,drive=d0)
    fi
    local markargs=()
    for m in "$@"; do markargs+=(--mark "$m"); done
    python3 "$KX_HERE/console_run.py" --log "$RUN/console.log" --result "$RUN/result.json" \
        --timeout "$QEMU_TIMEOUT" --idle "${IDLE_TIMEOUT:-240}" "${markargs[@]}" -- \
        $QEMU -machine virt,gic-version=3 -cpu cortex-a57 -smp $SMP -m "$MEM" \
        -nographic -no-reboot -nic none \
        -kernel "$IN/vmlinuz" -initrd "$IN/initrd.cpio.gz" \
        -append "console=ttyAMA0 crashkernel=$CRASHKERNEL $append" \
        "${diskargs[@]}" \
        -fsdev "local,id=fsin,path=$IN,security_model=none,readonly=on" \
        -device virtio-9p-device,fsdev=fsin,mount_tag=in \
        -fsdev "local,id=fsout,path=$out,security_model=none" \
        -device virtio-9p-device,fsdev=fsout,mount_tag=out \
        || { tail -n 40 "$RUN/console.log" >&2; die "QEMU run $name failed (console: $RUN/console.log)"; }
    [ ! -e "$out/FAIL" ] || die "run $name: guest failed: $(cat "$out/FAIL")"
    if [ "$disk" = 1 ]; then
        [ -e "$out/capture.done" ] || die "run $name: capture kernel did not finish"
        local size; size=$(cat "$out/vmcore.size")
        truncate -s "$size" "$RUN/vmcore.part"
        mv "$RUN/vmcore.part" "$RUN/vmcore.elf"
    fi
}

# mark RUN NAME: host seconds of a mark in $RUN/result.json (empty when it never matched)
mark() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["marks"].get(sys.argv[2]); print("" if v is None else v)' "$1/result.json" "$2"; }
# delta A B: B - A in seconds, 3 decimals ("?" when either is empty)
delta() { if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", b - a}'; else echo "?"; fi; }
# loads OUT LOADER: the load durations (seconds, from the guest's /proc/uptime) of LOADER, space-separated
loads() { awk -v l="$2" '$1 == l { printf "%s%.2f", sep, $3 - $2; sep = " " }' "$1/loads.txt"; }
# purgatory_line RUN: the purgatory's "verified in" line, if printed
purgatory_line() { sed -n 's/^\[+ *[0-9.]*\] \(purgatory: .*verified in.*\)$/\1/p' "$1/console.log" | head -n1 | tr -d '\r'; }

# The console marks of a crash run (first kernel -> panic -> crash kernel -> capture).
CRASH_MARKS=(
    "boot=Booting Linux on physical CPU"
    "init=KEXECRS: init"
    "loaded=KEXECRS: loaded"
    "panic=sysrq: Trigger a crash"
    "purgatory?=^purgatory: .*verified in"
    "purgatory_exit?=^purgatory: entering"
    "entry=Booting Linux on physical CPU"
    "capture=KEXECRS: capture kernel up"
    "copied?=KEXECRS: copied"
)
