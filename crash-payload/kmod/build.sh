#!/usr/bin/env bash
# Builds sdei-stop.ko for a Debian arm64 kernel, out of tree (the checkout stays clean).
#
#   crash-payload/kmod/build.sh [OUT]
#
# 1. The Rust core (crash-payload/kmod/src, which links crash-payload) for
#    aarch64-unknown-none-softfloat: no FP/SIMD (softfloat target), static relocation model
#    (the module loader applies no GOT relocations), small code model (ADRP; module PLTs
#    cover far calls), panic=abort, no unwind tables, fat LTO into one object.
# 2. That object is taken out of the staticlib (compiler_builtins stays behind: the object
#    may only need memcpy/memset, which the kernel exports), stripped of debug info and
#    .eh_frame, and checked by check_object.py: no FP/SIMD instruction, only relocation
#    types arm64's module loader applies, no unexpected undefined symbol.
# 3. Kbuild links glue.c and the object (rust_core.o_shipped) into sdei-stop.ko against
#    Debian's linux-headers with Debian's aarch64-linux-gnu-gcc; the .ko is checked for
#    FP/SIMD too.
#
# Environment:
#   KEXECRS_CACHE  cache root tests/setup.sh fills (default /var/cache/kexec-rs)
#   KVER           kernel release (default: $KEXECRS_CACHE/kernel-release)
#   KDIR           headers (default: $KEXECRS_CACHE/root-arm64/usr/src/linux-headers-$KVER)
#   OUT            build directory (default $KEXECRS_CACHE/build/sdei-stop); the module is
#                  $OUT/sdei-stop.ko
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${KEXECRS_CACHE:-/var/cache/kexec-rs}
KVER=${KVER:-$(cat "$CACHE/kernel-release" 2>/dev/null || true)}
[ -n "$KVER" ] || { echo "[sdei-stop] ERROR: no kernel release: run tests/setup.sh first" >&2; exit 1; }
KDIR=${KDIR:-$CACHE/root-arm64/usr/src/linux-headers-$KVER}
OUT=${1:-${OUT:-$CACHE/build/sdei-stop}}
TARGET=aarch64-unknown-none-softfloat
CROSS=aarch64-linux-gnu-

log() { printf '[sdei-stop] %s\n' "$*" >&2; }
die() { printf '[sdei-stop] ERROR: %s\n' "$*" >&2; exit 1; }

[ -d "$KDIR" ] || die "no kernel headers at $KDIR (tests/setup.sh unpacks them)"
for t in cargo ${CROSS}gcc ${CROSS}objcopy ${CROSS}objdump ${CROSS}nm ${CROSS}readelf ar python3 make; do
    command -v "$t" >/dev/null || die "$t not found"
done
mkdir -p "$OUT"

# ---------------------------------------------------------------- 1. the Rust core
log "building the Rust core for $TARGET"
export CARGO_TARGET_DIR=$OUT/cargo-target
(cd "$HERE" && cargo rustc -q --release --target "$TARGET" -- \
    -C relocation-model=static -C code-model=small -C force-unwind-tables=no \
    -C force-frame-pointers=yes)
LIB=$CARGO_TARGET_DIR/$TARGET/release/libsdei_stop_core.a

# ---------------------------------------------------------------- 2. one object, checked
KB=$OUT/kbuild
rm -rf "$KB" && mkdir -p "$KB/x"
member=$(ar t "$LIB" | grep '^sdei_stop_core-.*\.o$' || true)
[ "$(printf '%s\n' "$member" | grep -c .)" = 1 ] \
    || die "expected one sdei_stop_core object in $LIB (fat LTO, one codegen unit), got: $member"
(cd "$KB/x" && ar x "$LIB" "$member")
${CROSS}objcopy --strip-debug --remove-section=.eh_frame --remove-section=.comment \
    "$KB/x/$member" "$KB/rust_core.o_shipped"
rm -rf "$KB/x"
python3 "$HERE/check_object.py" "$KB/rust_core.o_shipped" "$CROSS" >&2 \
    || die "the Rust object is not fit for the kernel"

# ---------------------------------------------------------------- 3. Kbuild
cp "$HERE/glue.c" "$HERE/Kbuild" "$KB/"
# Kbuild's _shipped rule copies the object without the .cmd file modpost reads for every
# object of a module; write the one line it would hold.
printf 'cmd_%s := cat %s > %s\n' "$KB/rust_core.o" "$KB/rust_core.o_shipped" "$KB/rust_core.o" \
    > "$KB/.rust_core.o.cmd"
log "building sdei-stop.ko against $KDIR"
make -s -C "$KDIR" M="$KB" ARCH=arm64 CROSS_COMPILE=$CROSS modules >&2 \
    || die "Kbuild failed"
cp "$KB/sdei-stop.ko" "$OUT/sdei-stop.ko"
# The glue is built with the kernel's -mgeneral-regs-only; check the whole module anyway.
${CROSS}objcopy --strip-debug "$OUT/sdei-stop.ko" "$KB/check.o"
python3 "$HERE/check_object.py" --fp-only "$KB/check.o" "$CROSS" >&2 \
    || die "FP/SIMD instruction in sdei-stop.ko"
log "built $OUT/sdei-stop.ko ($(stat -c %s "$OUT/sdei-stop.ko") bytes, vermagic $(modinfo -F vermagic "$OUT/sdei-stop.ko" 2>/dev/null || echo '?'))"
echo "$OUT/sdei-stop.ko"
