#!/usr/bin/env bash
# Makes real arm64 vmcores for the vmcore analyzer's tests, from a Debian arm64 kernel booted
# under qemu-system-aarch64 (TCG, QEMU's built-in PSCI), with Debian's kexec-tools and
# makedumpfile. Output: $KEXECRS_CACHE/dumps/<kernel-release>/ with truth.json describing
# every file.
#
#   tests/dumps/make-dumps.sh            (after or including tests/setup.sh)
#
# Environment:
#   KEXECRS_CACHE  cache root (default /var/cache/kexec-rs); setup.sh fills it
#   MEM            guest memory in MiB (default 2048); crashkernel=256M is reserved from it
#   SCENARIOS      runs to do (default "plain irq daif"): plain = kdump without wedge (plus
#                  QEMU's dumps at the "booted" checkpoint); irq / daif = CPU1 wedged by
#                  wedge.ko with that mode (plus a QEMU ELF dump of the wedged state).
#                  Later steps and truth.json cover every run present in the output directory.
#   FORCE=1        redo every step (default: skip what exists)
#   SKIP_SETUP=1   do not run tests/setup.sh first
#   QEMU_TIMEOUT   seconds allowed for one QEMU run (default 420)
#   KEXEC_CHECKS   1: let kexec-tools' purgatory verify its sha256 digests before entering the
#                  capture kernel (Debian's default; 12-40 s more per run under TCG); default 0
#                  loads with kexec -i. The dumps are the same either way.
#
# Steps (each prints its duration): setup, wedge.ko, sparsecopy, initramfs, one QEMU run per scenario,
# _text check, makedumpfile conversions, dmesg goldens, truth.json.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TESTS=$(dirname "$HERE")
CACHE=${KEXECRS_CACHE:-/var/cache/kexec-rs}
MEM=${MEM:-2048}
SMP=2
CRASHKERNEL=256M
SCENARIOS=${SCENARIOS:-plain irq daif}
FORCE=${FORCE:-0}
QEMU_TIMEOUT=${QEMU_TIMEOUT:-420}
KEXEC_CHECKS=${KEXEC_CHECKS:-0}
MDF_TIMEOUT=${MDF_TIMEOUT:-600}
export KEXECRS_CACHE=$CACHE

TOOL=make-dumps
# shellcheck source=../lib/phases.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/phases.sh"
# shellcheck source=../lib/stage.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/stage.sh"
log() { say "$@"; }
# need_build FILE...: true if FORCE=1 or one of the files is missing
need_build() {
    [ "$FORCE" = 1 ] && return 0
    local f; for f in "$@"; do [ -e "$f" ] || return 0; done
    return 1
}

# ---------------------------------------------------------------- setup
phase setup
if [ "${SKIP_SETUP:-0}" != 1 ]; then
    FORCE=0 bash "$TESTS/setup.sh"
fi
KVER=$(cat "$CACHE/kernel-release")
ROOT=$CACHE/root-arm64
BUILD=$CACHE/build/$KVER
OUT=$CACHE/dumps/$KVER
IN=$BUILD/in
mkdir -p "$BUILD" "$OUT" "$IN"
QEMU=qemu-system-aarch64
command -v $QEMU >/dev/null || die "$QEMU missing (run tests/setup.sh)"
QEMU_VERSION=$($QEMU --version | sed -n '1s/.*version //p')
arm64() { QEMU_LD_PREFIX=$ROOT qemu-aarch64-static "$@"; }
log "kernel $KVER, qemu $QEMU_VERSION, MEM=${MEM}M, smp $SMP, out $OUT"
phase_end

# ---------------------------------------------------------------- wedge.ko
phase wedge.ko
WB=$BUILD/wedge
SRC_SUM=$(cat "$TESTS/wedge/wedge.c" "$TESTS/wedge/Kbuild" "$TESTS/wedge/Makefile" | sha256sum | cut -c1-16)
if need_build "$WB/wedge.ko" || [ "$(cat "$WB/src.sum" 2>/dev/null)" != "$SRC_SUM" ]; then
    rm -rf "$WB"; mkdir -p "$WB"
    cp "$TESTS/wedge/wedge.c" "$TESTS/wedge/Kbuild" "$TESTS/wedge/Makefile" "$WB/"
    make -s -C "$WB" KDIR="$ROOT/usr/src/linux-headers-$KVER" > "$WB/build.log" 2>&1 \
        || { cat "$WB/build.log" >&2; die "wedge.ko build failed"; }
    echo "$SRC_SUM" > "$WB/src.sum"
fi
modinfo -F vermagic "$WB/wedge.ko" | grep -q "^$KVER " || die "wedge.ko vermagic mismatch"
phase_end

# ---------------------------------------------------------------- sparsecopy
phase sparsecopy
# The capture kernel's copier (see sparsecopy.rs): one file, rustc without Cargo, static musl.
SC_SUM=$(sha256sum "$HERE/sparsecopy.rs" | cut -c1-16)
if need_build "$BUILD/sparsecopy" || [ "$(cat "$BUILD/sparsecopy.sum" 2>/dev/null)" != "$SC_SUM" ]; then
    rustc --edition 2021 -O -C strip=symbols --target aarch64-unknown-linux-musl \
        -C linker=rust-lld -o "$BUILD/sparsecopy" "$HERE/sparsecopy.rs"
    echo "$SC_SUM" > "$BUILD/sparsecopy.sum"
fi
phase_end

# ---------------------------------------------------------------- initramfs
phase initramfs
MODDIR=$ROOT/lib/modules/$KVER
# qemu_fw_cfg lets the guest hand QEMU its VMCOREINFO (-device vmcoreinfo).
MODS="qemu_fw_cfg virtio_mmio virtio_blk 9pnet 9pnet_virtio netfs fscache 9p"
INIT_SUM=$(cat "$HERE/init" "$WB/wedge.ko" "$BUILD/sparsecopy" | sha256sum | cut -c1-16)
if need_build "$IN/initrd.cpio.gz" "$IN/vmlinuz" || [ "$(cat "$IN/initrd.sum" 2>/dev/null)" != "$INIT_SUM" ]; then
    ST=$BUILD/initramfs
    rm -rf "$ST"
    mkdir -p "$ST/bin" "$ST/sbin" "$ST/lib/modules" "$ST/lib/aarch64-linux-gnu"
    cp "$ROOT/bin/busybox" "$ST/bin/busybox"
    cp "$BUILD/sparsecopy" "$ST/bin/sparsecopy"
    install -m 0755 "$HERE/init" "$ST/init"
    stage_modules "$MODDIR" "$ST" $MODS
    log "module order:$STAGED_ORDER"
    cp "$WB/wedge.ko" "$ST/lib/modules/wedge.ko"
    # kexec, its DT_NEEDED closure and the dynamic loader.
    cp "$ROOT/sbin/kexec" "$ST/sbin/kexec"
    stage_dynamic "$ROOT" "$ST" "$ROOT/sbin/kexec"
    log "kexec libraries:$STAGED_LIBS"
    (cd "$ST" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) \
        | gzip -1 > "$IN/initrd.cpio.gz.tmp"
    mv "$IN/initrd.cpio.gz.tmp" "$IN/initrd.cpio.gz"
    cp "$ROOT/boot/vmlinuz-$KVER" "$IN/vmlinuz"
    echo "$INIT_SUM" > "$IN/initrd.sum"
fi
log "initrd $(stat -c %s "$IN/initrd.cpio.gz") bytes, vmlinuz $(stat -c %s "$IN/vmlinuz") bytes"
phase_end

# ---------------------------------------------------------------- QEMU runs
# run_guest NAME WEDGE CHECKPOINTS DUMPSPEC...   (DUMPSPEC = checkpoint:format:file)
# Leaves $OUT/vmcore-NAME.elf (the capture kernel's /proc/vmcore), NAME.console.log,
# guest-NAME/ (facts the guest wrote) and guest-NAME/qemu_run.json.
run_guest() {
    local name=$1 wedge=$2 cps=$3; shift 3
    local vmcore=$OUT/vmcore-$name.elf run=$BUILD/run-$name
    local dumpargs=() d
    for d in "$@"; do dumpargs+=(--dump "$d"); done
    rm -rf "$run"; mkdir -p "$run"
    rm -f "$vmcore" "$vmcore.part"
    truncate -s "${MEM}M" "$vmcore.part"
    python3 "$HERE/qemu_run.py" --console "$OUT/$name.console.log" --qmp "$BUILD/qmp-$name.sock" \
        --outdir "$run" --timeout "$QEMU_TIMEOUT" --result "$run/qemu_run.json" "${dumpargs[@]}" -- \
        $QEMU -machine virt,gic-version=3 -cpu cortex-a57 -smp $SMP -m "$MEM" \
        -nographic -no-reboot \
        -kernel "$IN/vmlinuz" -initrd "$IN/initrd.cpio.gz" \
        -append "console=ttyAMA0 crashkernel=$CRASHKERNEL kexecrs.wedge=$wedge kexecrs.checkpoints=$cps kexecrs.kexec_checks=$KEXEC_CHECKS" \
        -device vmcoreinfo \
        -qmp "unix:$BUILD/qmp-$name.sock,server=on,wait=off" \
        -drive "if=none,id=d0,file=$vmcore.part,format=raw,detect-zeroes=unmap,discard=unmap" \
        -device virtio-blk-device,drive=d0 \
        -fsdev "local,id=fsin,path=$IN,security_model=none,readonly=on" \
        -device virtio-9p-device,fsdev=fsin,mount_tag=in \
        -fsdev "local,id=fsout,path=$run,security_model=none" \
        -device virtio-9p-device,fsdev=fsout,mount_tag=out \
        || { tail -n 40 "$OUT/$name.console.log" >&2; die "QEMU run $name failed (console: $OUT/$name.console.log)"; }
    [ -e "$run/capture.done" ] || die "run $name: capture kernel did not finish"
    local size; size=$(cat "$run/vmcore.size")
    truncate -s "$size" "$vmcore.part"
    mv "$vmcore.part" "$vmcore"
    # QEMU writes its dumps 0600 and in full; make them readable and sparse.
    for d in "$@"; do
        d=${d#*:*:}
        [ -e "$d" ] || continue
        chmod 0644 "$d"
        fallocate --dig-holes "$d" 2>/dev/null || true
    done
    echo "$MEM" > "$run/mem"
    echo "$RUN_INPUTS" > "$run/inputs"
    rm -rf "$OUT/guest-$name"
    mkdir -p "$OUT/guest-$name"
    cp "$run"/* "$OUT/guest-$name/"
    rm -f "$OUT/guest-$name"/go-*
    log "run $name: /proc/vmcore $size bytes; guest copy took" \
        "$(awk '{printf "%.1fs", $2 - $1}' "$run/capture.copy-uptime")"
}

# same_inputs RUN: the run's results were made from these inputs (initramfs incl. init and
# wedge.ko, kernel, MEM, KEXEC_CHECKS); a change redoes the run.
RUN_INPUTS="$(cat "$IN/initrd.sum") $(stat -c %s "$IN/vmlinuz") MEM=$MEM KEXEC_CHECKS=$KEXEC_CHECKS"
same_inputs() { [ "$(cat "$OUT/guest-$1/inputs" 2>/dev/null)" = "$RUN_INPUTS" ]; }
for sc in $SCENARIOS; do
    phase "qemu-run-$sc"
    case $sc in
        plain)
            if need_build "$OUT/vmcore-plain.elf" "$OUT/guest-plain/qemu_run.json" || ! same_inputs plain; then
                rm -f "$OUT/vmcore-plain".* "$OUT/qemu-booted".*
                run_guest plain none booted \
                    "booted:elf:$OUT/qemu-booted.elf" \
                    "booted:kdump-zlib:$OUT/qemu-booted.kdump-zlib" \
                    "booted:kdump-lzo:$OUT/qemu-booted.kdump-lzo" \
                    "booted:kdump-snappy:$OUT/qemu-booted.kdump-snappy"
            fi ;;
        irq|daif)
            if need_build "$OUT/vmcore-wedged-$sc.elf" "$OUT/guest-wedged-$sc/qemu_run.json" \
                    || ! same_inputs "wedged-$sc"; then
                rm -f "$OUT/vmcore-wedged-$sc".* "$OUT/qemu-wedged-$sc".*
                run_guest "wedged-$sc" "$sc" wedged "wedged:elf:$OUT/qemu-wedged-$sc.elf"
            fi ;;
        *) die "unknown scenario $sc" ;;
    esac
    phase_end
done

# Every run whose results are in $OUT, whether done now or earlier.
ALL_SC=""
for sc in plain irq daif; do
    case $sc in plain) g=plain ;; *) g=wedged-$sc ;; esac
    [ -e "$OUT/guest-$g/qemu_run.json" ] && [ -e "$OUT/vmcore-$g.elf" ] && same_inputs "$g" \
        && ALL_SC="$ALL_SC $sc"
done
ALL_SC=${ALL_SC# }
log "runs present: $ALL_SC"

# ---------------------------------------------------------------- checks on the dumps
phase checks
# _text: the guest gave kexec-tools _text = _stext - 0x10000 (see the comment in init).
# Confirm it three ways (coreinfo.py check-text): KIMAGE_VADDR + VMCOREINFO's KERNELOFFSET,
# the Image file's bytes at 0x10000 against memory at "Kernel code" start, and the kernel-text
# PT_LOAD kexec-tools wrote. (The 64 KiB before _stext cannot be checked directly: arm64 only
# memblock-reserves from _stext, so the Image head's page is reused after boot.)
CHECKS=$OUT/checks.txt
: > "$CHECKS"
for sc in $ALL_SC; do
    case $sc in plain) g=plain ;; *) g=wedged-$sc ;; esac
    { echo "$g:"; python3 "$HERE/coreinfo.py" check-text "$OUT/vmcore-$g.elf" "$IN/vmlinuz" \
        "$OUT/guest-$g/iomem" "$OUT/guest-$g/kallsyms-fixup.txt" "$OUT/guest-$g/kexec-load.log" \
        | sed 's/^/  /'; } >> "$CHECKS" || die "$g: _text check failed"
done
# Notes in each core: count NT_PRSTATUS, and what each says
for f in "$OUT"/qemu-*.elf "$OUT"/vmcore-*.elf; do
    [ -e "$f" ] || continue
    python3 "$HERE/coreinfo.py" notes "$f" > "$f.notes.json"
done
cat "$CHECKS" >&2
phase_end

# ---------------------------------------------------------------- makedumpfile
phase makedumpfile
MDF_VERSION=$(arm64 "$ROOT/usr/bin/makedumpfile" -v 2>&1 | sed -n '1s/^makedumpfile: version \([^ ]*\).*/\1/p')
MDF_FEAT=$(arm64 "$ROOT/usr/bin/makedumpfile" -v 2>&1)
mdf_supports() { echo "$MDF_FEAT" | grep -qx "$1[[:space:]]*enabled"; }
MDF_UNSUPPORTED=()
mdf_supports snappy || MDF_UNSUPPORTED+=(snappy)
mdf_supports zstd || MDF_UNSUPPORTED+=(zstd)
# convert SRC DST ARGS...: makedumpfile -d 31 ARGS SRC DST (flattened: to stdout)
mdf() {
    local src=$1 dst=$2; shift 2
    if need_build "$dst"; then
        local t0; t0=$(date +%s)
        rm -f "$dst" "$dst.tmp"
        if [ "$1" = -F ]; then
            timeout "$MDF_TIMEOUT" env QEMU_LD_PREFIX="$ROOT" qemu-aarch64-static \
                "$ROOT/usr/bin/makedumpfile" "$@" -d 31 "$src" > "$dst.tmp" 2> "$dst.log" \
                || { cat "$dst.log" >&2; die "makedumpfile $* failed"; }
        else
            timeout "$MDF_TIMEOUT" env QEMU_LD_PREFIX="$ROOT" qemu-aarch64-static \
                "$ROOT/usr/bin/makedumpfile" "$@" -d 31 "$src" "$dst.tmp" > "$dst.log" 2>&1 \
                || { cat "$dst.log" >&2; die "makedumpfile $* failed"; }
        fi
        mv "$dst.tmp" "$dst"
        log "makedumpfile $* -> $(basename "$dst"): $(stat -c %s "$dst") bytes, $(( $(date +%s) - t0 ))s"
    fi
}
MDF_JOBS=()
for sc in $ALL_SC; do
    [ "$sc" = plain ] && continue
    src=$OUT/vmcore-wedged-$sc.elf
    base=$OUT/vmcore-wedged-$sc.d31
    # Two at a time (2 host cores).
    mdf "$src" "$base.kdump-zlib" -c & MDF_JOBS+=($!)
    mdf "$src" "$base.kdump-lzo" -l & MDF_JOBS+=($!)
    for j in "${MDF_JOBS[@]}"; do wait "$j" || die "makedumpfile job failed"; done; MDF_JOBS=()
    mdf "$src" "$base.flat" -F -c & MDF_JOBS+=($!)
    mdf "$src" "$base.elf" -E & MDF_JOBS+=($!)
    for j in "${MDF_JOBS[@]}"; do wait "$j" || die "makedumpfile job failed"; done; MDF_JOBS=()
    mdf_supports snappy && mdf "$src" "$base.kdump-snappy" -p
    mdf_supports zstd && mdf "$src" "$base.kdump-zstd" -z
done
phase_end

# ---------------------------------------------------------------- dmesg goldens
phase dmesg
# Golden dmesg of every dump, by two tools where they can:
#   vmcore-dmesg (kexec-tools)      ELF cores with virtual addresses in their PT_LOADs: the
#                                   /proc/vmcore copies and makedumpfile -E. QEMU's ELF dumps
#                                   (paging=false) carry physical addresses only: refused.
#   makedumpfile --dump-dmesg       ELF and kdump-compressed (it translates through VMCOREINFO);
#                                   flattened streams need makedumpfile -R first: not done.
# Required: vmcore-dmesg on every kdump /proc/vmcore copy and -E file. The rest is recorded in
# dmesg-results.txt and truth.json ("golden_dmesg").
: > "$OUT/dmesg-results.txt.tmp"
for f in $(ls "$OUT"/vmcore-* "$OUT"/qemu-* | LC_ALL=C sort -u); do
    case $f in *.txt|*.log|*.err|*.tmp|*.json|*.flat|*.part) continue ;; esac
    [ -e "$f" ] || continue
    b=$(basename "$f")
    case $b in *.elf)
        if need_build "$f.vmcore-dmesg.txt"; then
            rm -f "$f.vmcore-dmesg.txt"
            if timeout 300 env QEMU_LD_PREFIX="$ROOT" qemu-aarch64-static "$ROOT/sbin/vmcore-dmesg" "$f" \
                    > "$f.vmcore-dmesg.txt.tmp" 2> "$f.vmcore-dmesg.err"; then
                mv "$f.vmcore-dmesg.txt.tmp" "$f.vmcore-dmesg.txt"
                rm -f "$f.vmcore-dmesg.err"
            else
                rm -f "$f.vmcore-dmesg.txt.tmp"
                case $b in qemu-*) ;; *) cat "$f.vmcore-dmesg.err" >&2; die "vmcore-dmesg $b failed" ;; esac
            fi
        fi
        if [ -e "$f.vmcore-dmesg.txt" ]; then
            echo "$b vmcore-dmesg ok $(wc -l < "$f.vmcore-dmesg.txt") lines"
        else
            echo "$b vmcore-dmesg refused: $(head -c 200 "$f.vmcore-dmesg.err" | tr '\n' ' ')"
        fi ;;
    esac >> "$OUT/dmesg-results.txt.tmp"
    if need_build "$f.makedumpfile-dmesg.txt"; then
        rm -f "$f.makedumpfile-dmesg.txt"
        if timeout 300 env QEMU_LD_PREFIX="$ROOT" qemu-aarch64-static "$ROOT/usr/bin/makedumpfile" \
                --dump-dmesg "$f" "$f.makedumpfile-dmesg.txt" > "$f.makedumpfile-dmesg.err" 2>&1; then
            rm -f "$f.makedumpfile-dmesg.err"
        else
            rm -f "$f.makedumpfile-dmesg.txt"
        fi
    fi
    if [ -e "$f.makedumpfile-dmesg.txt" ]; then
        echo "$b makedumpfile--dump-dmesg ok $(wc -l < "$f.makedumpfile-dmesg.txt") lines"
    else
        echo "$b makedumpfile--dump-dmesg refused: $(grep -v '^$' "$f.makedumpfile-dmesg.err" | head -n 3 | tr '\n' ' ')"
    fi >> "$OUT/dmesg-results.txt.tmp"
done
mv "$OUT/dmesg-results.txt.tmp" "$OUT/dmesg-results.txt"
cat "$OUT/dmesg-results.txt" >&2
phase_end

# ---------------------------------------------------------------- truth.json
phase truth
KPKG_VERSION=$(dpkg-deb -f "$(ls "$CACHE/debs/linux-image-${KVER}_"*.deb | head -n1)" Version)
FACTS=$(python3 -c 'import json, sys; a = sys.argv[1:]; print(json.dumps({
    "scenarios": a[0].split(), "kver": a[1], "kpkg_version": a[2], "qemu_version": a[3],
    "mem": int(a[4]), "crashkernel": a[5], "mdf_version": a[6], "mdf_unsupported": a[7].split(),
    "qemu_command": a[8]}))' "$ALL_SC" "$KVER" "$KPKG_VERSION" "$QEMU_VERSION" "$MEM" \
    "$CRASHKERNEL" "$MDF_VERSION" "${MDF_UNSUPPORTED[*]:-}" \
    "$QEMU -machine virt,gic-version=3 -cpu cortex-a57 -smp $SMP -m $MEM -nographic -no-reboot -kernel vmlinuz -initrd initrd.cpio.gz -append 'console=ttyAMA0 crashkernel=$CRASHKERNEL ...' -device vmcoreinfo (TCG, QEMU's built-in PSCI)")
python3 "$HERE/coreinfo.py" truth "$OUT" "$FACTS"
chmod a+r "$OUT"/* "$OUT"/guest-*/*
phase_end

# ---------------------------------------------------------------- expected notes
phase verify
python3 - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
t = json.load(open(os.path.join(out, "truth.json")))
bad = []
for f in t["files"]:
    nj = os.path.join(out, f["file"] + ".notes.json")
    if not os.path.exists(nj):
        continue
    n = sum(1 for x in json.load(open(nj)) if x["name"] == "CORE" and x["type"] == 1)
    if n != len(f["expected_captured"]):
        bad.append(f"{f['file']}: {n} NT_PRSTATUS notes, expected {len(f['expected_captured'])}")
if bad:
    sys.exit("note counts wrong:\n  " + "\n  ".join(bad))
print("note counts match truth.json", file=sys.stderr)
EOF
for sc in $ALL_SC; do
    [ "$sc" = plain ] && continue
    grep -q 'SMP: failed to stop secondary CPUs' "$OUT/wedged-$sc.console.log" \
        || die "wedged-$sc: no 'SMP: failed to stop secondary CPUs' in the console log"
done
phase_end

TOTAL=$(fmt_ds $(( $(now_ds) - T_ALL )))
log "timings: ${TIMINGS[*]/%/;} total $TOTAL"
printf '%s\n' "${TIMINGS[@]}" "total $TOTAL (MEM=$MEM SCENARIOS=$SCENARIOS FORCE=$FORCE, $(nproc) host cores)" > "$OUT/timings.txt"
ls -ls "$OUT" >&2
