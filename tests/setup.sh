#!/usr/bin/env bash
# Idempotent setup for a fresh Debian 12 (bookworm) x86_64 box, run as root.
#
# What it does:
#   1. dpkg --add-architecture arm64, apt-get update (once per boot of this script's stamp)
#   2. apt-get install the host tools (QEMU, cross gcc, dtc, cpio, zstd, kbuild, python3)
#   3. rustup target add aarch64-unknown-linux-musl aarch64-unknown-none-softfloat
#   4. apt-get download (never install) the arm64 debs the tests need, and unpack them with
#      dpkg-deb -x into one arm64 root outside the clone:
#        $KEXECRS_CACHE/debs/         the .deb files
#        $KEXECRS_CACHE/root-arm64/   the unpacked tree (kernel, modules, headers, busybox,
#                                     kexec-tools, makedumpfile, libc and their libraries)
#        $KEXECRS_CACHE/kernel-release  the Debian kernel release, e.g. 6.1.0-56-arm64
#   5. checks every DT_NEEDED of the arm64 programs resolves inside the tree, downloading
#      the package of any library still missing (recursively), and fails if one cannot be found.
#
# Environment: KEXECRS_CACHE (default /var/cache/kexec-rs), FORCE=1 redoes everything.
# Output: the cache paths above; prints one line per phase with its duration.
set -euo pipefail

CACHE=${KEXECRS_CACHE:-/var/cache/kexec-rs}
FORCE=${FORCE:-0}
STAMPS=$CACHE/stamps
DEBS=$CACHE/debs
ROOT=$CACHE/root-arm64
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# Durations from bash's EPOCHREALTIME, in tenths of a second.
now_ds() { local t=${EPOCHREALTIME/[.,]/}; echo $(( t / 100000 )); }
phase() { phase_start=$(now_ds); phase_name=$1; log "phase $1 ..."; }
phase_end() {
    local d=$(( $(now_ds) - phase_start ))
    log "phase $phase_name done in $(( d / 10 )).$(( d % 10 ))s"
}

[ "$(id -u)" = 0 ] || die "run as root (apt-get install, dpkg --add-architecture)"
mkdir -p "$STAMPS" "$DEBS" "$ROOT" "$CACHE/filelists"
[ "$FORCE" = 1 ] && rm -f "$STAMPS"/*

# ---------------------------------------------------------------- 1. apt sources
phase apt-update
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
    rm -f "$STAMPS/apt-update"
fi
# Re-run apt-get update when the lists are older than a day or never fetched for arm64.
if [ ! -e "$STAMPS/apt-update" ] || [ -n "$(find "$STAMPS/apt-update" -mmin +1440)" ] \
   || ! apt-cache show linux-image-arm64:arm64 >/dev/null 2>&1; then
    apt-get update -q
    touch "$STAMPS/apt-update"
fi
phase_end

# ---------------------------------------------------------------- 2. host packages
phase host-packages
KVER_RESOLVED=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null \
    | sed -n 's/^ *Depends: linux-image-\(.*-arm64\)\(:arm64\)\{0,1\}$/\1/p' | head -n1)
[ -n "$KVER_RESOLVED" ] || die "cannot resolve linux-image-arm64:arm64 to a kernel release"
# linux-kbuild-X.Y matches the kernel's major.minor (6.1.0-56-arm64 -> 6.1)
KBUILD_PKG=linux-kbuild-$(echo "$KVER_RESOLVED" | cut -d. -f1-2)
HOST_PKGS="qemu-system-arm qemu-user-static device-tree-compiler gcc-aarch64-linux-gnu
  binutils-aarch64-linux-gnu cpio zstd gzip python3 python3-venv make kmod util-linux coreutils $KBUILD_PKG"
missing=""
for p in $HOST_PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
    log "installing:$missing"
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi
phase_end

# ---------------------------------------------------------------- 3. rust targets
phase rust-targets
if command -v rustup >/dev/null; then
    have=$(rustup target list --installed)
    for t in aarch64-unknown-linux-musl aarch64-unknown-none-softfloat; do
        echo "$have" | grep -qx "$t" || rustup target add "$t"
    done
    # CI runs cargo fmt --check and cargo clippy.
    comps=$(rustup component list --installed)
    for c in rustfmt clippy; do
        echo "$comps" | grep -q "^$c-" || rustup component add "$c"
    done
else
    die "rustup not found (the Rust toolchain is expected on this machine)"
fi
phase_end

# ---------------------------------------------------------------- 4. arm64 debs
phase arm64-debs
KVER=$KVER_RESOLVED
# Packages named directly; their library dependencies are added below from apt's
# dependency graph and then checked against DT_NEEDED.
ARM64_PKGS="linux-image-$KVER:arm64 linux-headers-$KVER:arm64
  linux-headers-${KVER%-arm64}-common busybox-static:arm64 kexec-tools:arm64
  makedumpfile:arm64 crash:arm64 libc6:arm64"

# Direct library dependencies (Depends/Pre-Depends, lib* only, one level) of the given
# packages. The DT_NEEDED walk below uses it for a soname whose package name does not follow
# the SONAME rule: it then takes the library dependencies of the package owning the requester.
lib_deps() {  # PKG... -> direct run-time deps, one per line
    apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
        --no-replaces --no-enhances "$@" 2>/dev/null \
        | sed -n 's/^ *|\{0,1\}\(Pre\)\{0,1\}Depends: \([^<>]*\)$/\2/p' \
        | sed 's/:arm64$//; s/:any$//' \
        | grep -Evx 'debconf|cdebconf|perl|perl-base|dpkg|tar|install-info|debianutils' \
        | sed 's/$/:arm64/' | sort -u
}

# download_unpack PKG...: apt-get download (one call for all missing .debs, candidate
# versions) into $DEBS, then dpkg-deb -x each into $ROOT once (stamp per .deb file).
deb_of() {  # NAME VERSION -> path of the downloaded .deb, if there
    ls "$DEBS/${1}_${2//:/%3a}_"*.deb 2>/dev/null | head -n1 || true
}
download_unpack() {
    local p name ver deb want=() names=() vers=() i
    for p in "$@"; do
        name=${p%%:*}
        ver=$(apt-cache policy "$p" | sed -n 's/^ *Candidate: //p')
        [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "no candidate for $p"
        names+=("$name"); vers+=("$ver")
        [ -n "$(deb_of "$name" "$ver")" ] || want+=("$p=$ver")
    done
    if [ ${#want[@]} -gt 0 ]; then
        log "download ${want[*]}"
        # -o APT::Sandbox::User=root: the cache directory need not be writable by _apt
        (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "${want[@]}" >&2)
    fi
    for i in "${!names[@]}"; do
        name=${names[$i]}
        deb=$(deb_of "$name" "${vers[$i]}")
        [ -n "$deb" ] || die "download of $name ${vers[$i]} failed"
        if [ ! -e "$STAMPS/unpacked-$(basename "$deb")" ]; then
            log "unpack $(basename "$deb")"
            dpkg-deb -x "$deb" "$ROOT"
            touch "$STAMPS/unpacked-$(basename "$deb")"
        fi
        if [ ! -s "$CACHE/filelists/$name.list" ]; then
            # file list, to find which package owns a library
            dpkg-deb --fsys-tarfile "$deb" | tar -t | sed 's|^\./|/|' > "$CACHE/filelists/$name.list"
        fi
    done
}

# The stamp names the package set: adding a package to ARM64_PKGS bumps it (v2: crash).
if [ ! -e "$STAMPS/arm64-debs-v2-$KVER" ]; then
    # shellcheck disable=SC2046,SC2086
    download_unpack $(echo $ARM64_PKGS $(lib_deps kexec-tools:arm64 makedumpfile:arm64 crash:arm64) \
        | tr ' ' '\n' | sort -u)
    touch "$STAMPS/arm64-debs-v2-$KVER"
fi
phase_end

# ---------------------------------------------------------------- 5. DT_NEEDED closure
phase dt-needed
# Where the arm64 dynamic loader looks in this tree.
LIBDIRS="$ROOT/lib/aarch64-linux-gnu $ROOT/usr/lib/aarch64-linux-gnu $ROOT/lib $ROOT/usr/lib"
find_lib() {
    local d
    for d in $LIBDIRS; do [ -e "$d/$1" ] && { echo "$d/$1"; return 0; }; done
    return 1
}
# Debian policy names a shared-library package after its SONAME: libfoo.so.N -> libfooN,
# libfoo-1.2.so.3 -> libfoo-1.2-3, a name ending in a digit gets a dash (libfoo2.so.0 -> libfoo2-0).
soname_pkg() {
    local s=$1 base num
    base=${s%%.so*}; num=${s#*.so.}
    [ "$num" = "$s" ] && return 1
    case $base in *[0-9]) echo "$base-$num" ;; *) echo "$base$num" ;; esac
}
# owner_pkg /path/in/tree: the unpacked package whose file list holds it (by basename match
# on the path inside the package, with or without the /usr merge prefix).
owner_pkg() {
    local rel=${1#"$ROOT"} l
    l=$(grep -lxF -e "$rel" -e "/usr$rel" -e "${rel#/usr}" "$CACHE"/filelists/*.list 2>/dev/null | head -n1)
    [ -n "$l" ] && basename "$l" .list
}
# Walk DT_NEEDED from the programs we run, breadth first; download what is missing.
resolve_closure() {
    local f n pk lib owner missing_pkgs unresolved queue seen next
    for _ in 1 2 3 4 5 6 7 8; do
        missing_pkgs=""; unresolved=""; seen=" "
        queue="$ROOT/sbin/kexec $ROOT/sbin/vmcore-dmesg $ROOT/usr/bin/makedumpfile $ROOT/usr/bin/crash"
        while [ -n "$queue" ]; do
            next=""
            for f in $queue; do
                for n in $(aarch64-linux-gnu-readelf -d "$f" 2>/dev/null \
                            | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
                    case $seen in *" $n "*) continue ;; esac
                    seen="$seen$n "
                    if lib=$(find_lib "$n"); then
                        next="$next $(readlink -f "$lib")"
                        continue
                    fi
                    pk=$(soname_pkg "$n" || true)
                    if [ -n "$pk" ] && apt-cache policy "$pk:arm64" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
                        missing_pkgs="$missing_pkgs $pk:arm64"
                    elif owner=$(owner_pkg "$f") && [ -n "$owner" ]; then
                        missing_pkgs="$missing_pkgs $(lib_deps "$owner:arm64" | tr '\n' ' ')"
                    else
                        unresolved="$unresolved $n(needed by ${f#"$ROOT"})"
                    fi
                done
            done
            queue=$next
        done
        [ -z "$unresolved" ] || die "libraries not found in $ROOT and no package guessed:$unresolved"
        [ -n "$missing_pkgs" ] || { log "DT_NEEDED closure complete:$seen"; return 0; }
        # shellcheck disable=SC2046
        download_unpack $(echo "$missing_pkgs" | tr ' ' '\n' | grep . | sort -u)
    done
    die "DT_NEEDED closure did not settle after 8 rounds"
}
resolve_closure
for b in sbin/kexec sbin/vmcore-dmesg usr/bin/makedumpfile usr/bin/crash bin/busybox; do
    [ -x "$ROOT/$b" ] || die "missing $ROOT/$b"
done
phase_end

# ---------------------------------------------------------------- 6. kernel headers for Kbuild
phase headers
HDR=$ROOT/usr/src/linux-headers-$KVER
[ -d "$HDR" ] || die "missing $HDR"
# The -arm64 headers point at the amd64 linux-kbuild package through relative symlinks
# (scripts, tools -> ../../lib/linux-kbuild-X.Y/...). Inside the unpacked tree, make
# $ROOT/usr/lib/linux-kbuild-X.Y point at the host's installed copy.
KB=$ROOT/usr/lib/$KBUILD_PKG
if [ ! -e "$KB" ]; then
    ln -sfn "/usr/lib/$KBUILD_PKG" "$KB"
fi
# The -arm64 Makefile includes the -common one by absolute path (/usr/src/...): point it into
# the unpacked tree instead.
if grep -q '^include /usr/src/' "$HDR/Makefile"; then
    sed -i "s|^include /usr/src/|include $ROOT/usr/src/|" "$HDR/Makefile"
fi
[ -e "$HDR/scripts/Makefile.build" ] || die "$HDR/scripts does not resolve (is $KBUILD_PKG installed?)"
[ -e "$ROOT/usr/src/linux-headers-${KVER%-arm64}-common/Makefile" ] || die "common headers missing"
echo "$KVER" > "$CACHE/kernel-release"
phase_end

# ---------------------------------------------------------------- 7. drgn (from PyPI)
# drgn with libkdumpfile reads kdump-compressed dumps; tests/save/readers.sh and the
# benchmarks use it as an independent reader.
phase drgn
if [ ! -x "$CACHE/drgn-venv/bin/drgn" ]; then
    python3 -m venv "$CACHE/drgn-venv"
    "$CACHE/drgn-venv/bin/pip" install -q drgn
fi
"$CACHE/drgn-venv/bin/drgn" --version | grep -q 'with libkdumpfile' \
    || die "drgn in $CACHE/drgn-venv was built without libkdumpfile"
phase_end

log "ready: kernel $KVER, root $ROOT"
