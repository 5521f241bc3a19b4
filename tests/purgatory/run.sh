#!/bin/sh
# QEMU test of the purgatory without Linux (crash-payload/purgatory):
# boots it directly on qemu-system-aarch64 -machine virt -cpu cortex-a57,
# with segments and a filled parameter block made by the `mkimage` example
# (the same layout::fill kexec-rs uses) and a fake kernel that prints the
# registers it was entered with and exits QEMU through semihosting.
#
#   a) all digests right, at EL1, at EL2 and at EL2 with E2H = 1 (-cpu max,
#      entered through the fake kernel's VHE stub): the purgatory prints
#      "purgatory: N segments, B bytes verified in X ms" and the fake kernel
#      reports x0 = DTB, x1..x3 = 0, MMU and D-cache off;
#   b) one bit flipped in the initrd: the purgatory names segment 1, its
#      address, expected and actual digests, and parks; the fake kernel's
#      marker never appears (QEMU is stopped by `timeout`);
#   c) the verification time of ~40 MiB (32 MiB kernel + 8 MiB initrd) with
#      the SHA-256 instructions / in software, MMU and caches on / off.
#
# Needs qemu-system-aarch64 and the aarch64-unknown-none-softfloat target.
# Exit status 0 when every assertion holds.
set -eu
cd "$(dirname "$0")/../.."
OUT=${PURGATORY_TEST_DIR:-target/purgatory-test}
REL=target/aarch64-unknown-none-softfloat/release
KERNEL_MIB=${KERNEL_MIB:-32}
INITRD_MIB=${INITRD_MIB:-8}

command -v qemu-system-aarch64 >/dev/null || { echo "run.sh: qemu-system-aarch64 missing (apt-get install qemu-system-arm)" >&2; exit 1; }
cargo build -q -p purgatory --target aarch64-unknown-none-softfloat --release
cargo build -q -p purgatory --example mkimage --release
MKIMAGE=target/release/examples/mkimage

fail=0
pass() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

# run NAME TIMEOUT_S MACHINE_OPTS MKIMAGE_OPTS...: console in $OUT/NAME.log, status in $rc
run() {
    name=$1 secs=$2 machine=$3 cpu=${CPU:-cortex-a57}
    shift 3
    dir=$OUT/$name
    rm -rf "$dir"
    mkdir -p "$dir"
    args=$($MKIMAGE $REL/purgatory $REL/purgatory-fake-kernel "$dir" --kernel-mib "$KERNEL_MIB" --initrd-mib "$INITRD_MIB" "$@" 2>"$dir/mkimage.err") || { cat "$dir/mkimage.err"; exit 1; }
    set +e
    # shellcheck disable=SC2086 # $args is a list of -device options
    timeout "$secs" qemu-system-aarch64 -machine "$machine" -cpu "$cpu" -m 512 -nographic -no-reboot \
        -semihosting-config enable=on,target=native $args </dev/null >"$OUT/$name.log" 2>&1
    rc=$?
    set -e
    tr -d '\r' <"$OUT/$name.log" >"$OUT/$name.txt"
}

# check_boot NAME: the purgatory verified and the fake kernel got the boot protocol.
check_boot() {
    name=$1
    log=$OUT/$name.txt
    dtb=$(sed -n 's/.*dtb \(0x[0-9a-f]*\).*/\1/p' "$OUT/$name/mkimage.err")
    if [ "$rc" -ne 0 ]; then bad "$name: QEMU exit status $rc (expected 0 from the fake kernel)"; sed 's/^/    /' "$log"; return; fi
    grep -q "^purgatory: 3 segments, [0-9]* bytes verified in [0-9.]* ms" "$log" || { bad "$name: no verification line"; sed 's/^/    /' "$log"; return; }
    line=$(grep "^fake-kernel: " "$log") || { bad "$name: fake kernel marker missing"; return; }
    x0=$(echo "$line" | sed -n 's/.*x0=\(0x[0-9a-f]*\).*/\1/p')
    sctlr=$(echo "$line" | sed -n 's/.*sctlr=\(0x[0-9a-f]*\).*/\1/p')
    [ $((x0)) -eq $((dtb)) ] || { bad "$name: x0=$x0, DTB is $dtb"; return; }
    echo "$line" | grep -q "x1=0x0000000000000000 x2=0x0000000000000000 x3=0x0000000000000000" || { bad "$name: x1..x3 not zero: $line"; return; }
    [ $((sctlr & 5)) -eq 0 ] || { bad "$name: SCTLR $sctlr has M or C set at kernel entry"; return; }
    pass "$name: $(grep '^purgatory: 3 segments' "$log" | sed 's/^purgatory: //'); kernel entered with x0=DTB, x1..x3=0, MMU/D-cache off, $(echo "$line" | sed 's/.* //')"
}

run good-el1 60 virt
check_boot good-el1
run good-el2 60 virt,virtualization=on
check_boot good-el2
# EL2 with HCR_EL2.E2H = 1, as a VHE kernel hands over (-cpu max has VHE).
CPU=max run good-el2-vhe 60 virt,virtualization=on --vhe
check_boot good-el2-vhe

# b) corrupted initrd: message, then parked (timeout kills QEMU).
run corrupt 20 virt --corrupt 1
log=$OUT/corrupt.txt
if [ "$rc" -ne 124 ]; then bad "corrupt: QEMU exit status $rc, expected 124 (parked until timeout)"; fi
if grep -q "^fake-kernel:" "$log"; then bad "corrupt: the fake kernel ran"; fi
if grep -q "^purgatory: segment 1 at 0x0000000042200000 (8388608 bytes): SHA-256 mismatch" "$log" &&
    grep -q "^purgatory:   expected [0-9a-f]\{64\}$" "$log" && grep -q "^purgatory:   got      [0-9a-f]\{64\}$" "$log" &&
    grep -q "^purgatory: not entering the kernel; parked" "$log"; then
    pass "corrupt: $(grep 'mismatch' "$log" | sed 's/^purgatory: //'); parked, kernel never entered"
else
    bad "corrupt: mismatch report missing"
    sed 's/^/    /' "$log"
fi

# c) timings (flags: 1 = MMU off, 2 = software SHA-256).
echo "verification of $((KERNEL_MIB + INITRD_MIB)) MiB + 4 KiB under TCG (-cpu cortex-a57):"
for f in 0 1 2 3; do
    run "time-$f" 120 virt --flags "$f"
    t=$(sed -n 's/^purgatory: .* verified in \([0-9.]*\) ms (\(.*\))$/\1 ms  (\2)/p' "$OUT/time-$f.txt")
    if [ "$rc" -eq 0 ] && [ -n "$t" ]; then echo "     $t"; else bad "time-$f: no result (status $rc)"; fi
done

[ "$fail" -eq 0 ] && echo "purgatory QEMU tests: all passed" || echo "purgatory QEMU tests: FAILED"
exit "$fail"
