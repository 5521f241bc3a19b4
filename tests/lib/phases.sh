# shellcheck shell=bash disable=SC2034  # T_ALL and TIMINGS are read by the sourcing script
# Logging and per-phase timings shared by the test scripts (sourced, bash).
# The sourcing script sets TOOL, the prefix of its log lines, first.
#   phase NAME ... phase_end   records "NAME 1.2s" in TIMINGS

say() { printf '[%s] %s\n' "${TOOL:?}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${TOOL:?}" "$*" >&2; exit 1; }
# Durations from bash's EPOCHREALTIME, in tenths of a second.
now_ds() { local t=${EPOCHREALTIME/[.,]/}; echo $(( t / 100000 )); }
fmt_ds() { printf '%d.%ds' $(( $1 / 10 )) $(( $1 % 10 )); }
T_ALL=$(now_ds)
TIMINGS=()
phase() { P_NAME=$1; P_T0=$(now_ds); say "== $1"; }
phase_end() {
    local d; d=$(fmt_ds $(( $(now_ds) - P_T0 )))
    TIMINGS+=("$P_NAME $d")
    say "== $P_NAME done in $d"
}
