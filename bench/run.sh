#!/usr/bin/env bash
# HTTP load benchmark: strangler vs nginx vs the upstream hit directly.
#
#   bash bench/run.sh
#
# Starts, all on 127.0.0.1 with ports picked by the OS:
#   direct     examples/bench_upstream.rs, a minimal hyper server (the "fast upstream")
#   nginx      a private nginx instance (own prefix/config in a temp dir) proxying to it
#   nginx-pinned  the same with `worker_cpu_affinity auto` (strangler pins its workers
#              one per CPU by default; this row shows nginx placed the same way)
#   strangler  strangler's profile-guided build (bench/pgo.sh; what deploy/docker
#              ships) proxying to it (route /api/ -> stage "new")
#   strangler-nopgo  the plain `cargo build --release` binary, same config
# then loads each with wrk (warm-up, then a measured run with --latency), in the
# order direct, nginx, nginx-pinned, strangler, strangler-nopgo, repeated ROUNDS times; the best
# req/s round per target is reported. Everything it starts is stopped on exit.
#
# Environment knobs (defaults in brackets):
#   CONNECTIONS [100]   wrk -c for the measured run
#   DURATION    [10s]   wrk -d for the measured run (wrk syntax: 10s, 1m, ...)
#   THREADS     [2]     wrk -t
#   ROUNDS      [2]     how many times the direct/nginx/strangler trio is run
#   WARMUP      [2s]    wrk -d of the warm-up (always -t2 -c50)
#   PGO         [1]     0: no profile-guided build; the plain release build is then
#                       the `strangler` row and there is no strangler-nopgo row
#   STRANGLER_BIN=path  use this strangler binary instead of the profile-guided build
#                       (with PGO=0: instead of the plain release build)
#   STRANGLER_NOPGO_BIN=path  use this binary for the strangler-nopgo row
#   UPSTREAM_BIN=path   use this bench_upstream binary instead of building it
#   SKIP_STRANGLER=1    leave out the strangler rows (bench direct and nginx only)
#   KEEP_TMP=1          keep the temp dir (configs, logs, raw wrk outputs)
#
# bench/instructions.sh measures the same nginx and strangler setups by callgrind
# instruction counts instead (deterministic, for changes of a few percent).
#
# Needs: bash, cargo, and apt-get (as root, or sudo) if nginx/wrk/curl/python3
# are missing. Note: installing Debian's nginx package may start the system's
# nginx service on port 80 where the machine runs services; this script never
# uses it.
set -euo pipefail

CONNECTIONS="${CONNECTIONS:-100}"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
WARMUP="${WARMUP:-2s}"
SKIP_STRANGLER="${SKIP_STRANGLER:-0}"
PGO="${PGO:-1}"
KEEP_TMP="${KEEP_TMP:-0}"

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

LOG_TAG=bench
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

require_positive_int ROUNDS "$ROUNDS"
require_positive_int CONNECTIONS "$CONNECTIONS"
require_positive_int THREADS "$THREADS"

parse_wrk_durations "$DURATION" "$WARMUP"

# --- 1. tools ---------------------------------------------------------------
ensure_tools nginx=nginx wrk=wrk curl=curl python3=python3
NGINX="$(find_nginx)" || die "nginx not found after install"

# --- 2. build -----------------------------------------------------------------
# STRANGLER_VARIANTS: the strangler rows, each with its binary in STRANGLER_BINS.
STRANGLER_VARIANTS=()
declare -A STRANGLER_BINS
if [[ "$SKIP_STRANGLER" == 1 ]]; then
    build_bench_bins upstream
elif [[ "$PGO" == 0 ]]; then
    build_bench_bins all
    STRANGLER_VARIANTS=(strangler)
    STRANGLER_BINS[strangler]="$STRANGLER_BIN"
else
    PGO_BIN="${STRANGLER_BIN:-}"
    STRANGLER_BIN="${STRANGLER_NOPGO_BIN:-}"
    build_bench_bins all
    if [[ -z "$PGO_BIN" ]]; then
        log "profile-guided build: bash bench/pgo.sh (PGO=0 skips it)"
        PGO_BIN="$(UPSTREAM_BIN="$UPSTREAM_BIN" bash "$REPO/bench/pgo.sh")" ||
            die "the profile-guided build failed (see above); PGO=0 benches the plain release build"
    fi
    [[ -x "$PGO_BIN" ]] || die "strangler binary not found: $PGO_BIN"
    STRANGLER_VARIANTS=(strangler strangler-nopgo)
    STRANGLER_BINS[strangler]="$PGO_BIN"
    STRANGLER_BINS[strangler-nopgo]="$STRANGLER_BIN"
fi

# --- process bookkeeping and cleanup -----------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strangler-bench.XXXXXX")"
# nginx workers drop root privileges; let them reach their temp paths.
chmod 755 "$WORK"
UPSTREAM_PID=""
declare -A NGINX_PIDS
declare -A STRANGLER_PIDS

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    for v in "${!STRANGLER_PIDS[@]}"; do stop_pid "${STRANGLER_PIDS[$v]}"; done
    for n in "${!NGINX_PIDS[@]}"; do stop_nginx "${NGINX_PIDS[$n]}"; done
    stop_pid "$UPSTREAM_PID"
    finish_cleanup "$rc"
}
on_exit_run_cleanup

# Raise the soft open-files limit as far as the hard limit allows (inherited
# by wrk and the servers); nginx is told the same figure.
raise_nofile

# --- 3a. upstream --------------------------------------------------------------
log "starting upstream: $UPSTREAM_BIN"
UPSTREAM_PORT=""
start_upstream upstream UPSTREAM_PID UPSTREAM_PORT
log "upstream on 127.0.0.1:$UPSTREAM_PORT (pid $UPSTREAM_PID)"

# --- 3b. nginx -----------------------------------------------------------------
declare -A NGINX_PORTS
# start_nginx NAME [DIRECTIVE...]: starts a private nginx (config in $WORK/NAME) with the
# benchmark's settings plus the given top-level directives, and waits until it proxies.
start_nginx() {
    local name="$1"
    shift
    start_bench_nginx "$name" "NGINX_PIDS[$name]" "NGINX_PORTS[$name]" "$@"
}
start_nginx nginx
start_nginx nginx-pinned "worker_cpu_affinity auto;"

# --- 4. strangler --------------------------------------------------------------
declare -A STRANGLER_PORTS
# start_strangler VARIANT: starts STRANGLER_BINS[VARIANT] with the benchmark's routing
# table on ports picked here, and waits until it is ready.
start_strangler() {
    local v="$1" port admin pid
    free_ports port admin
    # In its own directory: strangler watches the config file's directory, and the
    # files this script writes to $WORK must not wake it.
    write_strangler_conf "$WORK/$v" "$port" "$admin" "$UPSTREAM_PORT"
    log "starting $v: ${STRANGLER_BINS[$v]} (port $port, admin $admin)"
    RUST_LOG=warn "${STRANGLER_BINS[$v]}" serve --config "$WORK/$v/routes.toml" >"$WORK/$v.log" 2>&1 &
    pid=$!
    STRANGLER_PIDS[$v]="$pid"
    STRANGLER_PORTS[$v]="$port"
    wait_http "http://127.0.0.1:$admin/readyz" "$pid" "$v" 300 || {
        tail -n 50 "$WORK/$v.log" >&2 || true
        die "$v did not become ready (see its log above)"
    }
    log "$v ready (pid $pid)"
}
for v in "${STRANGLER_VARIANTS[@]}"; do start_strangler "$v"; done

# --- 5. load -------------------------------------------------------------------
TARGETS=(direct nginx nginx-pinned)
declare -A PORT=([direct]="$UPSTREAM_PORT" [nginx]="${NGINX_PORTS[nginx]}" [nginx-pinned]="${NGINX_PORTS[nginx-pinned]}")
for v in "${STRANGLER_VARIANTS[@]}"; do
    TARGETS+=("$v")
    PORT[$v]="${STRANGLER_PORTS[$v]}"
done

# Every target must really serve the upstream's answer before it is loaded:
# a proxy answering 502 quickly would otherwise look fast.
for t in "${TARGETS[@]}"; do
    check_serves_upstream "$t" "http://127.0.0.1:${PORT[$t]}/api/bench" 5
done

declare -A BEST_RPS BEST_P50 BEST_P99 BEST_ROUND BEST_ERRS ALL_RPS RSS_KIB

for ((round = 1; round <= ROUNDS; round++)); do
    for t in "${TARGETS[@]}"; do
        url="http://127.0.0.1:${PORT[$t]}/api/bench"
        log "round $round/$ROUNDS: $t: warm-up ${WARMUP}, then -t$THREADS -c$CONNECTIONS -d$DURATION"
        wrk_run "$WORK/warmup-$t-$round.txt" "$WARMUP_S" -t2 -c50 -d"$WARMUP" "$url"
        out="$WORK/wrk-$t-$round.txt"
        wrk_run "$out" "$DURATION_S" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url"

        wrk_parse "$out" "$t"
        rps="$WRK_RPS" p50="$WRK_P50" p99="$WRK_P99" errs="$WRK_ERRS"
        log "  $t: $rps req/s, p50 $p50 ms, p99 $p99 ms${errs:+ ($errs)}"

        ALL_RPS[$t]="${ALL_RPS[$t]:+${ALL_RPS[$t]}, }$(printf '%.0f' "$rps")"
        if [[ -z "${BEST_RPS[$t]:-}" ]] || awk -v a="$rps" -v b="${BEST_RPS[$t]}" 'BEGIN { exit !(a > b) }'; then
            BEST_RPS[$t]="$rps"
            BEST_P50[$t]="$p50"
            BEST_P99[$t]="$p99"
            BEST_ROUND[$t]="$round"
            BEST_ERRS[$t]="$errs"
        fi

        if [[ -n "${STRANGLER_PIDS[$t]:-}" ]]; then
            # VmHWM is the peak resident set since the process started, so
            # reading it right after the load run captures the peak under load.
            kill -0 "${STRANGLER_PIDS[$t]}" 2>/dev/null || {
                tail -n 50 "$WORK/$t.log" >&2 || true
                die "$t exited during the benchmark"
            }
            RSS_KIB[$t]="$(awk '/^VmHWM:/ { print $2 }' "/proc/${STRANGLER_PIDS[$t]}/status")"
        fi
    done
done

# --- 6. report -------------------------------------------------------------------
echo
echo "## strangler HTTP benchmark"
echo
echo "Best req/s round of $ROUNDS per target (p50/p99 from that same round)."
echo
echo "| target | req/s | p50 ms | p99 ms |"
echo "| --- | ---: | ---: | ---: |"
for t in "${TARGETS[@]}"; do
    printf '| %s | %.0f | %.3f | %.3f |\n' "$t" "${BEST_RPS[$t]}" "${BEST_P50[$t]}" "${BEST_P99[$t]}"
done
echo
for v in "${STRANGLER_VARIANTS[@]}"; do
    echo "$v/nginx req/s ratio: $(ratio "${BEST_RPS[$v]}" "${BEST_RPS[nginx]}")"
    echo "$v/direct req/s ratio: $(ratio "${BEST_RPS[$v]}" "${BEST_RPS[direct]}")"
    echo "$v/nginx p99 ratio: $(ratio "${BEST_P99[$v]}" "${BEST_P99[nginx]}")"
    echo "$v/nginx-pinned req/s ratio: $(ratio "${BEST_RPS[$v]}" "${BEST_RPS[nginx-pinned]}"), p99 ratio: $(ratio "${BEST_P99[$v]}" "${BEST_P99[nginx-pinned]}")"
    echo "$v peak RSS: $(awk -v k="${RSS_KIB[$v]}" 'BEGIN { printf "%.1f", k / 1024 }') MiB (VmHWM)"
done
[[ "$SKIP_STRANGLER" != 1 ]] || echo "strangler: skipped (SKIP_STRANGLER=1)"
echo "nginx/direct req/s ratio: $(ratio "${BEST_RPS[nginx]}" "${BEST_RPS[direct]}")"
echo
echo "req/s per round:"
for t in "${TARGETS[@]}"; do
    echo "- $t: ${ALL_RPS[$t]} (best: round ${BEST_ROUND[$t]})"
done
for t in "${TARGETS[@]}"; do
    [[ -z "${BEST_ERRS[$t]}" ]] || echo "WARNING: $t (round ${BEST_ROUND[$t]}): ${BEST_ERRS[$t]}"
done
echo
echo "load average before the run: $LOADAVG_START (other work on the machine skews the figures)"
echo "machine: $(nproc) CPUs, $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency http://127.0.0.1:PORT/api/bench, after a warm-up wrk -t2 -c50 -d$WARMUP; wrk, upstream and proxy share the same CPUs"
echo "versions: $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }'), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') (worker_processes auto, upstream keepalive 64, forwarding headers + request id + Via like strangler; nginx-pinned adds worker_cpu_affinity auto)"
if [[ "$SKIP_STRANGLER" != 1 ]]; then
    if [[ "$PGO" == 0 ]]; then
        echo "build: strangler = ${STRANGLER_BINS[strangler]} (PGO=0: no profile-guided build)"
    else
        echo "builds: strangler = profile-guided (bench/pgo.sh, as deploy/docker ships it), strangler-nopgo = cargo build --release; both with the default worker_cpu_affinity = \"auto\" (pinned one per CPU when the workers are as many as the CPUs)"
    fi
fi
