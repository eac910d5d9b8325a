#!/usr/bin/env bash
# The profile-guided build against the plain release build: user CPU per request and req/s
# in alternating pairs on the same upstream (the "PGO pairs" of docs/performance.md).
#
#   bash bench/pgo-pairs.sh
#   PGO_BIN=path PLAIN_BIN=path bash bench/pgo-pairs.sh    # no builds
#
# Starts examples/bench_upstream.rs once on 127.0.0.1 (port picked by the OS), then PAIRS
# times: each binary in turn (the profile-guided one first in odd pairs, the plain one
# first in even pairs, so a drift of the machine's load hits both alike) is started fresh
# with bench/run.sh's table (route /api/ -> stage "new"), warmed up (wrk -t2 -c50
# -d$WARMUP), loaded with wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, and
# stopped. Its user CPU is utime of /proc/PID/stat (all its threads) before and after the
# measured run, in clock ticks, turned into µs and divided by wrk's request count.
# Prints a table per pair, then the min–max range of each column per binary and in how
# many pairs the profile-guided build served more req/s.
# Takes PAIRS x 2 x (DURATION + WARMUP + about 1 s): about 2.5 minutes with the defaults,
# plus the builds when PGO_BIN / PLAIN_BIN are not given (bench/pgo.sh: two release builds).
#
# Environment knobs (defaults in brackets):
#   PAIRS       [5]     how many pairs
#   DURATION    [10s]   wrk -d of each measured run (wrk syntax: 10s, 1m, ...)
#   WARMUP      [2s]    wrk -d of the warm-up before it
#   CONNECTIONS [100]   wrk -c of the measured run
#   THREADS     [2]     wrk -t of the measured run
#   PGO_BIN=path        the profile-guided binary (default: built by bash bench/pgo.sh)
#   PLAIN_BIN=path      the plain binary (default: cargo build --release)
#   UPSTREAM_BIN=path   use this bench_upstream binary instead of building it
#   KEEP_TMP=1          keep the temp dir (configs, logs, raw wrk outputs)
#
# Needs: bash, cargo, and apt-get (as root, or sudo) if wrk/curl/python3 are missing.
set -euo pipefail

PAIRS="${PAIRS:-5}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
CONNECTIONS="${CONNECTIONS:-100}"
THREADS="${THREADS:-2}"

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

LOG_TAG=pgo-pairs
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

require_positive_int PAIRS "$PAIRS"
require_positive_int CONNECTIONS "$CONNECTIONS"
require_positive_int THREADS "$THREADS"
parse_wrk_durations "$DURATION" "$WARMUP"

# --- 1. tools and binaries ------------------------------------------------------------
ensure_tools wrk=wrk curl=curl python3=python3
STRANGLER_BIN="${PLAIN_BIN:-}"
build_bench_bins all
PLAIN_BIN="$STRANGLER_BIN"
if [[ -z "${PGO_BIN:-}" ]]; then
    log "profile-guided build: bash bench/pgo.sh (PGO_BIN=path skips it)"
    PGO_BIN="$(UPSTREAM_BIN="$UPSTREAM_BIN" bash "$REPO/bench/pgo.sh")" ||
        die "the profile-guided build failed (see above)"
fi
[[ -x "$PGO_BIN" ]] || die "profile-guided binary not found: $PGO_BIN"
declare -A BIN=([pgo]="$PGO_BIN" [plain]="$PLAIN_BIN")

# --- 2. processes and cleanup ---------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strangler-pgo-pairs.XXXXXX")"
UPSTREAM_PID=""
SERVER_PID="" # the strangler being measured
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$SERVER_PID"
    stop_pid "$UPSTREAM_PID"
    finish_cleanup "$rc"
}
on_exit_run_cleanup
raise_nofile

UPSTREAM_PORT=""
start_upstream upstream UPSTREAM_PID UPSTREAM_PORT
log "upstream on 127.0.0.1:$UPSTREAM_PORT (pid $UPSTREAM_PID)"

# --- 3. pairs ---------------------------------------------------------------------------
declare -A RPS USER_US SYS_US P99
AHEAD=0
for ((pair = 1; pair <= PAIRS; pair++)); do
    order=(pgo plain)
    ((pair % 2)) || order=(plain pgo)
    for v in "${order[@]}"; do
        log "pair $pair/$PAIRS: $v: warm-up $WARMUP, then -t$THREADS -c$CONNECTIONS -d$DURATION"
        measure_strangler "$v-$pair" "${BIN[$v]}"
        RPS[$v,$pair]="$WRK_RPS" P99[$v,$pair]="$WRK_P99"
        USER_US[$v,$pair]="$RUN_USER_US" SYS_US[$v,$pair]="$RUN_SYS_US"
        log "  $v: $WRK_RPS req/s, user $RUN_USER_US µs/request, kernel $RUN_SYS_US µs/request"
    done
    awk -v a="${RPS[pgo,$pair]}" -v b="${RPS[plain,$pair]}" 'BEGIN { exit !(a > b) }' &&
        AHEAD=$((AHEAD + 1))
done

# --- 4. report ----------------------------------------------------------------------------
echo
echo "## profile-guided vs plain release build, $PAIRS alternating pairs"
for ((pair = 1; pair <= PAIRS; pair++)); do
    echo
    echo "pair $pair:"
    echo
    echo "| build | req/s | user µs/request | kernel µs/request | p99 ms |"
    echo "| --- | ---: | ---: | ---: | ---: |"
    for v in pgo plain; do
        printf '| %s | %.0f | %s | %s | %.3f |\n' "$v" "${RPS[$v,$pair]}" \
            "${USER_US[$v,$pair]}" "${SYS_US[$v,$pair]}" "${P99[$v,$pair]}"
    done
done
echo
echo "ranges over the $PAIRS pairs:"
echo
echo "| build | req/s | user µs/request | kernel µs/request |"
echo "| --- | ---: | ---: | ---: |"
declare -A USER_RANGE
for v in pgo plain; do
    rps=() user=() sys=()
    for ((pair = 1; pair <= PAIRS; pair++)); do
        rps+=("${RPS[$v,$pair]}") user+=("${USER_US[$v,$pair]}") sys+=("${SYS_US[$v,$pair]}")
    done
    USER_RANGE[$v]="$(range %.2f "${user[@]}")"
    printf '| %s | %s | %s | %s |\n' "$v" "$(range %.0f "${rps[@]}")" \
        "${USER_RANGE[$v]}" "$(range %.2f "${sys[@]}")"
done
echo
echo "user CPU per request ${USER_RANGE[pgo]} µs (pgo) against ${USER_RANGE[plain]} (plain), req/s ahead in $AHEAD of $PAIRS pairs"
echo
echo "load average before the run: $LOADAVG_START (other work on the machine skews the figures)"
echo "machine: $(nproc) CPUs, $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency http://127.0.0.1:PORT/api/bench after wrk -t2 -c50 -d$WARMUP, a fresh proxy per run; user/kernel CPU = utime/stime of /proc/PID/stat over the measured run ($CLK_TCK ticks/s) / wrk's requests"
echo "binaries: pgo = $PGO_BIN, plain = $PLAIN_BIN; strangler at $(bench_commit)"
