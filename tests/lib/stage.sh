# shellcheck shell=bash disable=SC2034  # STAGED_LIBS and STAGED_ORDER are read by the caller
# Staging arm64 guest initramfs trees from the unpacked Debian root (sourced, bash; needs die()
# from tests/lib/phases.sh). Used by tests/dumps/make-dumps.sh, tests/kexec/lib.sh and the drill.

# stage_dynamic ROOT DEST PROGRAM: copies the DT_NEEDED closure of PROGRAM (an arm64 ELF) from
# ROOT's multiarch library directories into DEST/lib/aarch64-linux-gnu, and its program
# interpreter to the same path under DEST. Sets STAGED_LIBS to the library names.
stage_dynamic() {
    local root=$1 dest=$2 prog=$3 queue next seen=" " f n lib d interp
    mkdir -p "$dest/lib/aarch64-linux-gnu"
    queue=$prog
    while [ -n "$queue" ]; do
        next=""
        for f in $queue; do
            for n in $(aarch64-linux-gnu-readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
                case $seen in *" $n "*) continue ;; esac
                seen="$seen$n "
                lib=""
                for d in "$root/lib/aarch64-linux-gnu" "$root/usr/lib/aarch64-linux-gnu"; do
                    [ -e "$d/$n" ] && { lib=$d/$n; break; }
                done
                [ -n "$lib" ] || die "$n (for $f) not in $root; run tests/setup.sh"
                cp -L "$lib" "$dest/lib/aarch64-linux-gnu/$n"
                next="$next $lib"
            done
        done
        queue=$next
    done
    interp=$(aarch64-linux-gnu-readelf -l "$prog" | sed -n 's/.*interpreter: \(.*\)\]/\1/p')
    [ -n "$interp" ] || die "no program interpreter in $prog"
    mkdir -p "$dest$(dirname "$interp")"
    cp -L "$root$interp" "$dest$interp"
    STAGED_LIBS=$seen
}

# stage_modules MODDIR DEST MODULE...: copies each MODULE's .ko (found under MODDIR/kernel) to
# DEST/lib/modules/NAME.ko and writes DEST/lib/modules/order, one name a line, each module after
# the ones its modinfo depends= names (Debian ships no modules.dep for these). Every dependency
# must be among the MODULEs. Sets STAGED_ORDER to the order.
stage_modules() {
    local moddir=$1 dest=$2 m
    shift 2
    local -A KO DEP
    STAGED_ORDER=""
    for m in "$@"; do
        KO[$m]=$(find "$moddir/kernel" -name "$m.ko" | head -n1)
        [ -n "${KO[$m]}" ] || die "module $m not found under $moddir"
        DEP[$m]=$(modinfo -F depends "${KO[$m]}" | tr , ' ')
    done
    _stage_mod() {
        local m=$1 d
        case " $STAGED_ORDER " in *" $m "*) return ;; esac
        for d in ${DEP[$m]}; do
            [ -n "${KO[$d]:-}" ] || die "$m depends on $d, which is not in the module list"
            _stage_mod "$d"
        done
        STAGED_ORDER="$STAGED_ORDER $m"
    }
    for m in "$@"; do _stage_mod "$m"; done
    mkdir -p "$dest/lib/modules"
    for m in $STAGED_ORDER; do cp "${KO[$m]}" "$dest/lib/modules/$m.ko"; done
    printf '%s\n' $STAGED_ORDER > "$dest/lib/modules/order"
}
