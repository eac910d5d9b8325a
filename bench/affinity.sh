#!/usr/bin/env bash
# Workers pinned one per CPU against left to the kernel: p99 and req/s in alternating
# rounds (the "pinned vs unpinned" figure of docs/performance.md).
#
#   bash bench/affinity.sh
#   STRANGLER_BIN=path bash bench/affinity.sh     # no build
#
# Starts examples/bench_upstream.rs once on 127.0.0.1 (port picked by the OS), then ROUNDS
# times: strangler with `[proxy] worker_cpu_affinity = "auto"` (the default: pinned one per
# CPU when the workers are as many as the CPUs the process may use) and with
# `worker_cpu_affinity = "off"`, in turn (auto first in odd rounds, off first in even ones),
# each started fresh with bench/run.sh's table, warmed up (wrk -t2 -c50 -d$WARMUP), loaded
# with wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, and stopped. Prints req/s, p50
# and p99 per round and mode, the CPUs each worker thread was allowed (so a run where
# "auto" did not pin says so), and the min–max ranges.
# Takes ROUNDS x 2 x (DURATION + WARMUP + about 1 s): about 3 minutes with the defaults,
# plus the profile-guided build (bench/pgo.sh) when STRANGLER_BIN is not given.
#
# Environment knobs (defaults in brackets):
#   ROUNDS      [6]     how many rounds (each runs both modes)
#   DURATION    [10s]   wrk -d of each measured run (wrk syntax: 10s, 1m, ...)
#   WARMUP      [2s]    wrk -d of the warm-up before it
#   CONNECTIONS [100]   wrk -c of the measured run
#   THREADS     [2]     wrk -t of the measured run
#   PGO         [1]     0: the plain `cargo build --release` instead of the profile-guided build
#   STRANGLER_BIN=path  use this strangler binary instead of building one
#   UPSTREAM_BIN=path   use this bench_upstream binary instead of building it
#   KEEP_TMP=1          keep the temp dir (configs, logs, raw wrk outputs)
#
# Needs: bash, cargo, and apt-get (as root, or sudo) if wrk/curl/python3 are missing.
set -euo pipefail

ROUNDS="${ROUNDS:-6}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
CONNECTIONS="${CONNECTIONS:-100}"
THREADS="${THREADS:-2}"

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

LOG_TAG=affinity
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

require_positive_int ROUNDS "$ROUNDS"
require_positive_int CONNECTIONS "$CONNECTIONS"
require_positive_int THREADS "$THREADS"
parse_wrk_durations "$DURATION" "$WARMUP"

# --- 1. tools and binaries ------------------------------------------------------------
ensure_tools wrk=wrk curl=curl python3=python3
resolve_strangler_bin

# --- 2. processes and cleanup ---------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strangler-affinity.XXXXXX")"
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

# --- 3. rounds --------------------------------------------------------------------------
MODES=(auto off)
declare -A LABEL=([auto]=pinned [off]=unpinned)
declare -A RPS P50 P99 CPUS
for ((round = 1; round <= ROUNDS; round++)); do
    order=(auto off)
    ((round % 2)) || order=(off auto)
    for m in "${order[@]}"; do
        log "round $round/$ROUNDS: worker_cpu_affinity = \"$m\": warm-up $WARMUP, then -t$THREADS -c$CONNECTIONS -d$DURATION"
        measure_strangler "$m-$round" "$STRANGLER_BIN" "worker_cpu_affinity = \"$m\""
        RPS[$m,$round]="$WRK_RPS" P50[$m,$round]="$WRK_P50" P99[$m,$round]="$WRK_P99"
        CPUS[$m,$round]="$RUN_WORKER_CPUS"
        log "  $m: $WRK_RPS req/s, p50 $WRK_P50 ms, p99 $WRK_P99 ms, worker CPUs: $RUN_WORKER_CPUS"
    done
done

# --- 4. report ----------------------------------------------------------------------------
echo
echo "## workers pinned (worker_cpu_affinity = \"auto\") vs unpinned (\"off\"), $ROUNDS rounds"
echo
echo "| round | mode | req/s | p50 ms | p99 ms | worker threads' CPUs |"
echo "| ---: | --- | ---: | ---: | ---: | --- |"
for ((round = 1; round <= ROUNDS; round++)); do
    for m in "${MODES[@]}"; do
        printf '| %s | %s | %.0f | %.3f | %.3f | %s |\n' "$round" "${LABEL[$m]}" \
            "${RPS[$m,$round]}" "${P50[$m,$round]}" "${P99[$m,$round]}" "${CPUS[$m,$round]}"
    done
done
echo
echo "| mode | req/s | p50 ms | p99 ms |"
echo "| --- | ---: | ---: | ---: |"
declare -A P99_RANGE RPS_RANGE
for m in "${MODES[@]}"; do
    rps=() p50=() p99=()
    for ((round = 1; round <= ROUNDS; round++)); do
        rps+=("${RPS[$m,$round]}") p50+=("${P50[$m,$round]}") p99+=("${P99[$m,$round]}")
    done
    P99_RANGE[$m]="$(range %.2f "${p99[@]}")"
    RPS_RANGE[$m]="$(range %.0f "${rps[@]}")"
    printf '| %s | %s | %s | %s |\n' "${LABEL[$m]}" "${RPS_RANGE[$m]}" "$(range %.2f "${p50[@]}")" "${P99_RANGE[$m]}"
done
echo
echo "p99 ${P99_RANGE[auto]} ms pinned against ${P99_RANGE[off]} ms unpinned; req/s ${RPS_RANGE[auto]} pinned, ${RPS_RANGE[off]} unpinned"
pinned_rounds=0
for ((round = 1; round <= ROUNDS; round++)); do
    [[ "${CPUS[auto,$round]}" =~ ^[0-9]+( [0-9]+)*$ ]] && pinned_rounds=$((pinned_rounds + 1))
done
((pinned_rounds == ROUNDS)) ||
    echo "WARNING: \"auto\" pinned the workers in $pinned_rounds of $ROUNDS rounds only (it pins when the workers are as many as the CPUs the process may use)"
echo
echo "load average before the run: $LOADAVG_START (other work on the machine skews the figures)"
echo "machine: $(nproc) CPUs, $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency http://127.0.0.1:PORT/api/bench after wrk -t2 -c50 -d$WARMUP, a fresh proxy per run; wrk, upstream and proxy share the same CPUs"
echo "binary: $STRANGLER_BIN; strangler at $(bench_commit)"
