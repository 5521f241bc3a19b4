#!/usr/bin/env bash
# readers.sh: do the tools people use accept a kdump-compressed dump? (issue 6: `vmcore save`
# output must be readable by crash, by drgn through libkdumpfile, and by makedumpfile.)
#
#   tests/save/readers.sh --expect-log TEXT [--source DUMP] [--vmcore BIN] FILE...
#
# For each FILE (kdump-compressed; reassemble a flattened stream with `makedumpfile -R` first):
#   vmcore        `vmcore verify --json` runs; with --source, its result (every field but the
#                 file name and format line) equals the result on DUMP, the dump FILE was saved from;
#   makedumpfile  Debian's arm64 makedumpfile under qemu-aarch64-static, `--dump-dmesg`: exits 0
#                 and the log holds TEXT. Debian 12's makedumpfile 1.7.2 is built without zstd, so a
#                 zstd FILE is not given to it (said on the output, never silently);
#   crash         Debian's arm64 crash 8.0.2 under qemu-aarch64-static with the -dbg vmlinux:
#                 `log` holds TEXT and `bt` of the panic task shows panic();
#   drgn          drgn from PyPI with libkdumpfile and the -dbg vmlinux: the kernel release is
#                 read from memory, the crashed thread's stack shows panic(), the log holds TEXT.
# Exit 0 when every reader accepted every FILE; the failures are listed otherwise.
#
# Needs tests/setup.sh (crash, makedumpfile, drgn venv) and tests/fetch-dbg.sh (vmlinux) done.
# Environment: KEXECRS_CACHE (default /var/cache/kexec-rs).
set -euo pipefail
TOOL=readers
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib/phases.sh
. "$REPO/tests/lib/phases.sh"

CACHE=${KEXECRS_CACHE:-/var/cache/kexec-rs}
ROOT=$CACHE/root-arm64
RELEASE=$(cat "$CACHE/kernel-release")
VMLINUX=$CACHE/dbg/root/usr/lib/debug/boot/vmlinux-$RELEASE
DRGN=$CACHE/drgn-venv/bin/drgn
VMCORE=$REPO/target/release/vmcore
EXPECT=""
SOURCE=""
FILES=()
while [ $# -gt 0 ]; do
    case $1 in
    --expect-log) EXPECT=${2:?--expect-log needs TEXT}; shift 2 ;;
    --source) SOURCE=${2:?--source needs DUMP}; shift 2 ;;
    --vmcore) VMCORE=${2:?--vmcore needs BIN}; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) FILES+=("$1"); shift ;;
    esac
done
[ -n "$EXPECT" ] || die "--expect-log TEXT is required"
[ ${#FILES[@]} -gt 0 ] || die "no FILE given"
for need in "$ROOT/usr/bin/crash" "$ROOT/usr/bin/makedumpfile" "$VMLINUX" "$DRGN" "$VMCORE"; do
    [ -e "$need" ] || die "missing $need (run tests/setup.sh and tests/fetch-dbg.sh)"
done

arm64() { QEMU_LD_PREFIX="$ROOT" qemu-aarch64-static "$@"; }
WORK=$(mktemp -d)
trap 'rm -rf "${WORK:?}"' EXIT
FAILED=()
fail() { say "FAIL $*"; FAILED+=("$*"); }

# verify JSON minus the fields that name the file itself.
verdict() {
    "$VMCORE" verify --json "$1" > "$2.json" || true
    python3 -c 'import json,sys
j = json.load(open(sys.argv[1])); j.pop("file", None); j.pop("format", None)
print(json.dumps(j, sort_keys=True))' "$2.json"
}

[ -z "$SOURCE" ] || verdict "$SOURCE" "$WORK/source" > "$WORK/source.verdict"

for f in "${FILES[@]}"; do
    name=$(basename "$f")
    desc=$("$VMCORE" info --json "$f" | python3 -c 'import json,sys; print(json.load(sys.stdin)["format"])') \
        || { fail "$name: vmcore info"; continue; }
    say "$name: $desc"

    phase "$name vmcore"
    verdict "$f" "$WORK/$name" > "$WORK/$name.verdict" || fail "$name: vmcore verify"
    if [ -n "$SOURCE" ] && ! cmp -s "$WORK/source.verdict" "$WORK/$name.verdict"; then
        fail "$name: vmcore verify differs from $SOURCE"
        diff <(tr ',' '\n' < "$WORK/source.verdict") <(tr ',' '\n' < "$WORK/$name.verdict") >&2 || true
    fi
    phase_end

    phase "$name makedumpfile"
    case $desc in
    *zstd*) say "$name: zstd pages; Debian's makedumpfile 1.7.2 has no zstd: not given to it" ;;
    *)
        if arm64 "$ROOT/usr/bin/makedumpfile" --dump-dmesg "$f" "$WORK/$name.mdf-dmesg" \
                > "$WORK/$name.mdf-log" 2>&1; then
            grep -qF -- "$EXPECT" "$WORK/$name.mdf-dmesg" \
                || fail "$name: makedumpfile --dump-dmesg log lacks '$EXPECT'"
        else
            cat "$WORK/$name.mdf-log" >&2
            fail "$name: makedumpfile --dump-dmesg refused it"
        fi ;;
    esac
    phase_end

    phase "$name crash"
    printf 'log\nbt\nquit\n' | arm64 "$ROOT/usr/bin/crash" -s "$VMLINUX" "$f" \
        > "$WORK/$name.crash" 2>&1 || true
    grep -qF -- "$EXPECT" "$WORK/$name.crash" || fail "$name: crash 'log' lacks '$EXPECT'"
    grep -Eq '^ *#[0-9]+ \[[0-9a-f]+\] panic at ' "$WORK/$name.crash" \
        || fail "$name: crash 'bt' shows no panic frame"
    grep -Eq 'crash: (cannot|invalid|read error)' "$WORK/$name.crash" \
        && fail "$name: crash reported: $(grep -E 'crash: (cannot|invalid|read error)' "$WORK/$name.crash" | head -n1)"
    phase_end

    phase "$name drgn"
    if "$DRGN" -q -c "$f" -s "$VMLINUX" -e '
import sys
from drgn.helpers.linux.printk import get_printk_records
print("release", prog["init_uts_ns"].name.release.string_().decode())
print(prog.crashed_thread().stack_trace())
for r in get_printk_records(prog):
    print("log", r.text.decode(errors="replace"))
' > "$WORK/$name.drgn" 2>&1; then
        grep -qx "release $RELEASE" "$WORK/$name.drgn" || fail "$name: drgn read no release $RELEASE"
        grep -Eq '^#[0-9]+ +panic ' "$WORK/$name.drgn" || fail "$name: drgn stack shows no panic frame"
        grep -qF -- "$EXPECT" "$WORK/$name.drgn" || fail "$name: drgn log lacks '$EXPECT'"
    else
        tail -n 5 "$WORK/$name.drgn" >&2
        fail "$name: drgn could not open it"
    fi
    phase_end
done

for t in "${TIMINGS[@]}"; do say "timing $t"; done
if [ ${#FAILED[@]} -gt 0 ]; then
    say "${#FAILED[@]} failure(s):"
    printf '  %s\n' "${FAILED[@]}" >&2
    exit 1
fi
say "all readers accepted ${#FILES[@]} file(s)"
