#!/usr/bin/env bash
# HTTP load benchmark: strangler vs nginx vs the upstream hit directly.
#
#   bash bench/run.sh
#
# Starts, all on 127.0.0.1 with ports picked by the OS:
#   direct     examples/bench_upstream.rs, a minimal hyper server (the "fast upstream")
#   nginx      a private nginx instance (own prefix/config in a temp dir) proxying to it
#   strangler  target/release/strangler proxying to it (route /api/ -> stage "new")
# then loads each with wrk (warm-up, then a measured run with --latency), in the
# order direct, nginx, strangler, repeated ROUNDS times; the best req/s round per
# target is reported. Everything it starts is stopped on exit.
#
# Environment knobs (defaults in brackets):
#   CONNECTIONS [100]   wrk -c for the measured run
#   DURATION    [10s]   wrk -d for the measured run (wrk syntax: 10s, 1m, ...)
#   THREADS     [2]     wrk -t
#   ROUNDS      [2]     how many times the direct/nginx/strangler trio is run
#   WARMUP      [2s]    wrk -d of the warm-up (always -t2 -c50)
#   STRANGLER_BIN=path  use this strangler binary instead of building it
#   UPSTREAM_BIN=path   use this bench_upstream binary instead of building it
#   SKIP_STRANGLER=1    leave out the strangler row (bench direct and nginx only)
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
if [[ "$SKIP_STRANGLER" == 1 ]]; then build_bench_bins upstream; else build_bench_bins all; fi

# --- process bookkeeping and cleanup -----------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strangler-bench.XXXXXX")"
# nginx workers drop root privileges; let them reach their temp paths.
chmod 755 "$WORK"
UPSTREAM_PID=""
NGINX_PID=""
STRANGLER_PID=""

cleanup() {
    local rc=$? workers=""
    trap - EXIT INT TERM
    stop_pid "$STRANGLER_PID"
    if [[ -n "$NGINX_PID" ]]; then
        # Remember the workers so none survive a master that had to be KILLed.
        workers="$(pgrep -P "$NGINX_PID" 2>/dev/null || true)"
        stop_pid "$NGINX_PID"
        for w in $workers; do kill -KILL "$w" 2>/dev/null || true; done
    fi
    stop_pid "$UPSTREAM_PID"
    finish_cleanup "$rc"
}
on_exit_run_cleanup

# Raise the soft open-files limit as far as the hard limit allows (inherited
# by wrk and the servers); nginx is told the same figure.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE="$(ulimit -n)"
[[ "$NOFILE" =~ ^[0-9]+$ ]] || NOFILE=65536 # "unlimited"

# --- 3a. upstream --------------------------------------------------------------
log "starting upstream: $UPSTREAM_BIN"
UPSTREAM_PORT=""
start_upstream upstream UPSTREAM_PID UPSTREAM_PORT
log "upstream on 127.0.0.1:$UPSTREAM_PORT (pid $UPSTREAM_PID)"

# --- 3b. nginx -----------------------------------------------------------------
NGINX_PORT="$(free_port)"
NG="$WORK/nginx"
write_nginx_conf "$NG" "$NGINX_PORT" "$UPSTREAM_PORT" \
    "$((NOFILE / 2 < 4096 ? NOFILE / 2 : 4096))" \
    "master_process on;" "worker_processes auto;" "worker_rlimit_nofile $NOFILE;"
"$NGINX" -q -t -p "$NG/" -e "$NG/error.log" -c "$NG/nginx.conf" >&2 || {
    cat "$NG/error.log" >&2 2>/dev/null || true
    die "nginx config test failed"
}
log "starting nginx: $NGINX (port $NGINX_PORT)"
"$NGINX" -p "$NG/" -e "$NG/error.log" -c "$NG/nginx.conf" >"$NG/stdout.log" 2>&1 &
NGINX_PID=$!
wait_http "http://127.0.0.1:$NGINX_PORT/api/bench" "$NGINX_PID" nginx 100 || {
    cat "$NG/error.log" "$NG/stdout.log" >&2 2>/dev/null || true
    die "nginx did not become ready"
}
log "nginx ready (master pid $NGINX_PID)"

# --- 4. strangler --------------------------------------------------------------
if [[ "$SKIP_STRANGLER" != 1 ]]; then
    STRANGLER_PORT="$(free_port)"
    ADMIN_PORT="$(free_port)"
    while [[ "$ADMIN_PORT" == "$STRANGLER_PORT" ]]; do ADMIN_PORT="$(free_port)"; done
    # In its own directory: strangler watches the config file's directory, and the
    # files this script writes to $WORK must not wake it.
    mkdir -p "$WORK/strangler"
    cat >"$WORK/strangler/routes.toml" <<EOF
[proxy]
listen = "127.0.0.1:$STRANGLER_PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"
default_upstream = "app"

[upstreams.app]
url = "http://127.0.0.1:$UPSTREAM_PORT"

[[routes]]
name = "api"
path = "/api/"
stage = "new"
new = "app"
EOF
    log "starting strangler: $STRANGLER_BIN (port $STRANGLER_PORT, admin $ADMIN_PORT)"
    RUST_LOG=warn "$STRANGLER_BIN" serve --config "$WORK/strangler/routes.toml" >"$WORK/strangler.log" 2>&1 &
    STRANGLER_PID=$!
    wait_http "http://127.0.0.1:$ADMIN_PORT/readyz" "$STRANGLER_PID" strangler 300 || {
        tail -n 50 "$WORK/strangler.log" >&2 || true
        die "strangler did not become ready (see its log above)"
    }
    log "strangler ready (pid $STRANGLER_PID)"
fi

# --- 5. load -------------------------------------------------------------------
TARGETS=(direct nginx)
declare -A PORT=([direct]="$UPSTREAM_PORT" [nginx]="$NGINX_PORT")
if [[ "$SKIP_STRANGLER" != 1 ]]; then
    TARGETS+=(strangler)
    PORT[strangler]="$STRANGLER_PORT"
fi

# Every target must really serve the upstream's answer before it is loaded:
# a proxy answering 502 quickly would otherwise look fast.
for t in "${TARGETS[@]}"; do
    check_serves_upstream "$t" "http://127.0.0.1:${PORT[$t]}/api/bench" 5
done

declare -A BEST_RPS BEST_P50 BEST_P99 BEST_ROUND BEST_ERRS ALL_RPS
RSS_KIB=""

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

        if [[ "$t" == strangler ]]; then
            # VmHWM is the peak resident set since the process started, so
            # reading it right after the load run captures the peak under load.
            kill -0 "$STRANGLER_PID" 2>/dev/null || {
                tail -n 50 "$WORK/strangler.log" >&2 || true
                die "strangler exited during the benchmark"
            }
            RSS_KIB="$(awk '/^VmHWM:/ { print $2 }' "/proc/$STRANGLER_PID/status")"
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
if [[ "$SKIP_STRANGLER" != 1 ]]; then
    echo "strangler/nginx req/s ratio: $(ratio "${BEST_RPS[strangler]}" "${BEST_RPS[nginx]}")"
    echo "strangler/direct req/s ratio: $(ratio "${BEST_RPS[strangler]}" "${BEST_RPS[direct]}")"
    echo "strangler/nginx p99 ratio: $(ratio "${BEST_P99[strangler]}" "${BEST_P99[nginx]}")"
    echo "strangler peak RSS: $(awk -v k="$RSS_KIB" 'BEGIN { printf "%.1f", k / 1024 }') MiB (VmHWM)"
else
    echo "strangler: skipped (SKIP_STRANGLER=1)"
fi
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
echo "versions: $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }'), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') (worker_processes auto, upstream keepalive 64, forwarding headers + request id + Via like strangler)"
