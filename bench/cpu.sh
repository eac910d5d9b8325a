#!/usr/bin/env bash
# CPU per proxied request, counting every process, and system calls per request:
# strangler vs nginx (the "CPU per request" and "system calls per request" figures of
# docs/performance.md).
#
#   bash bench/cpu.sh
#   STRANGLER_BIN=path UPSTREAM_BIN=path bash bench/cpu.sh     # no build
#
# Starts examples/bench_upstream.rs once on 127.0.0.1 (port picked by the OS), then:
#
# 1. CPU per request, ROUNDS alternating rounds (strangler first in odd rounds, nginx first
#    in even ones): each proxy is started fresh (strangler with bench/run.sh's table; nginx
#    as bench/run.sh's `nginx` row: master process, workers auto, same proxying work),
#    warmed up (wrk -t2 -c50 -d$WARMUP), loaded with wrk -t$THREADS -c$CONNECTIONS
#    -d$DURATION run under /usr/bin/time, and stopped. utime and stime of the proxy's
#    processes (strangler; nginx's master and workers) and of the upstream are read from
#    /proc/PID/stat (every thread of the process, exited ones included) before and after
#    that run; wrk's own user + system time comes from /usr/bin/time. Each is divided by
#    wrk's request count: proxy user µs, proxy kernel µs, upstream µs, wrk µs and their
#    total per request.
# 2. System calls per request (SYSCALL_REQUESTS > 0): each proxy is started fresh, warmed
#    up, then `strace -f -c` is attached to it (strangler's process, every thread; nginx's
#    workers) for exactly SYSCALL_REQUESTS requests (h2load --h1 -n SYSCALL_REQUESTS
#    -c SYSCALL_CONNECTIONS -t 1) and detached; each system call's count divided by the
#    request count, the top SYSCALL_TOP and the total. strace slows the proxy down a lot,
#    which changes how many requests one wake-up serves, so read these as counts of the
#    work per request, not of a proxy at full speed.
#
# Takes ROUNDS x 2 x (DURATION + WARMUP + about 1 s) plus about 30 s for the system calls:
# about 1.5 minutes with the defaults, plus the profile-guided build (bench/pgo.sh) when
# STRANGLER_BIN is not given.
#
# Environment knobs (defaults in brackets):
#   ROUNDS              [3]      alternating rounds of the CPU measurement
#   DURATION            [10s]    wrk -d of each measured run (wrk syntax: 10s, 1m, ...)
#   WARMUP              [2s]     wrk -d of the warm-up before it
#   CONNECTIONS         [100]    wrk -c of the measured run
#   THREADS             [2]      wrk -t of the measured run
#   SYSCALL_REQUESTS    [20000]  requests counted under strace (0: no system-call count)
#   SYSCALL_CONNECTIONS [100]    h2load -c of that run
#   SYSCALL_TOP         [6]      how many system calls to list per proxy
#   PGO                 [1]      0: the plain `cargo build --release` instead of the
#                                profile-guided build
#   STRANGLER_BIN=path  use this strangler binary instead of building one
#   UPSTREAM_BIN=path   use this bench_upstream binary instead of building it
#   KEEP_TMP=1          keep the temp dir (configs, logs, wrk/time/strace outputs)
#
# Needs: bash, cargo, and apt-get (as root, or sudo) if nginx/wrk/curl/python3/time
# (/usr/bin/time)/strace/h2load (nghttp2-client) are missing; attaching strace needs the
# right to ptrace the proxy (root, or the same user with kernel.yama.ptrace_scope <= 1).
# Note: installing Debian's nginx package may start the system's nginx service on port 80
# where the machine runs services; this script never uses it.
set -euo pipefail

ROUNDS="${ROUNDS:-3}"
DURATION="${DURATION:-10s}"
WARMUP="${WARMUP:-2s}"
CONNECTIONS="${CONNECTIONS:-100}"
THREADS="${THREADS:-2}"
SYSCALL_REQUESTS="${SYSCALL_REQUESTS:-20000}"
SYSCALL_CONNECTIONS="${SYSCALL_CONNECTIONS:-100}"
SYSCALL_TOP="${SYSCALL_TOP:-6}"

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

LOG_TAG=cpu
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

require_positive_int ROUNDS "$ROUNDS"
require_positive_int CONNECTIONS "$CONNECTIONS"
require_positive_int THREADS "$THREADS"
require_positive_int SYSCALL_CONNECTIONS "$SYSCALL_CONNECTIONS"
require_positive_int SYSCALL_TOP "$SYSCALL_TOP"
[[ "$SYSCALL_REQUESTS" == 0 ]] || require_positive_int SYSCALL_REQUESTS "$SYSCALL_REQUESTS"
parse_wrk_durations "$DURATION" "$WARMUP"

# --- 1. tools and binaries ------------------------------------------------------------
tools=(nginx=nginx wrk=wrk curl=curl python3=python3)
[[ -x /usr/bin/time ]] || tools+=(/usr/bin/time=time)
[[ "$SYSCALL_REQUESTS" == 0 ]] || tools+=(strace=strace h2load=nghttp2-client)
ensure_tools "${tools[@]}"
[[ -x /usr/bin/time ]] || die "/usr/bin/time not found after install"
NGINX="$(find_nginx)" || die "nginx not found after install"
resolve_strangler_bin

# --- 2. processes and cleanup ---------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strangler-cpu.XXXXXX")"
# nginx workers drop root privileges; let them reach their temp paths.
chmod 755 "$WORK"
UPSTREAM_PID=""
SERVER_PID=""  # the proxy being measured (nginx: its master)
SERVER_KIND="" # strangler or nginx
STRACE_PID=""
LOAD_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$LOAD_PID"
    stop_pid "$STRACE_PID"
    stop_proxy
    stop_pid "$UPSTREAM_PID"
    finish_cleanup "$rc"
}
on_exit_run_cleanup
raise_nofile

UPSTREAM_PORT=""
start_upstream upstream UPSTREAM_PID UPSTREAM_PORT
log "upstream on 127.0.0.1:$UPSTREAM_PORT (pid $UPSTREAM_PID)"

# start_proxy TARGET NAME: starts a fresh strangler or nginx (config in $WORK/NAME), checks
# it serves the upstream and warms it up; sets SERVER_PID, SERVER_KIND, PROXY_URL and
# PROXY_PIDS (the processes whose CPU is the proxy's: nginx's master and workers).
PROXY_URL=""
PROXY_PIDS=()
start_proxy() {
    local target="$1" name="$2" port=""
    SERVER_KIND="$target"
    case "$target" in
        strangler) start_bench_strangler "$name" "$STRANGLER_BIN" SERVER_PID port ;;
        nginx) start_bench_nginx "$name" SERVER_PID port ;;
        *) die "unknown target '$target'" ;;
    esac
    PROXY_URL="http://127.0.0.1:$port/api/bench"
    check_serves_upstream "$name" "$PROXY_URL" 5
    wrk_run "$WORK/$name.warmup.txt" "$WARMUP_S" -t2 -c50 -d"$WARMUP" "$PROXY_URL"
    PROXY_PIDS=("$SERVER_PID")
    if [[ "$target" == nginx ]]; then
        local w
        for w in $(pgrep -P "$SERVER_PID"); do PROXY_PIDS+=("$w"); done
        ((${#PROXY_PIDS[@]} > 1)) || die "$name: no nginx worker processes found"
    fi
}

stop_proxy() {
    case "$SERVER_KIND" in
        nginx) stop_nginx "$SERVER_PID" ;;
        *) stop_pid "$SERVER_PID" ;;
    esac
    SERVER_PID=""
    SERVER_KIND=""
}

# --- 3. CPU per request -------------------------------------------------------------------
TARGETS=(strangler nginx)
declare -A PROXY_USER PROXY_SYS UPSTREAM_US WRK_US TOTAL_US RPS
# measure_cpu TARGET ROUND: one measured run; fills the arrays above at [TARGET,ROUND].
measure_cpu() {
    local t="$1" round="$2" name="$1-$2" out time_file proxy0 proxy1 up0 up1 wrk_s requests
    start_proxy "$t" "$name"
    out="$WORK/$name.wrk.txt"
    time_file="$WORK/$name.time.txt"
    proxy0="$(proc_cpu_ticks "${PROXY_PIDS[@]}")"
    up0="$(proc_cpu_ticks "$UPSTREAM_PID")"
    timeout --foreground -k 5 $((DURATION_S + 30)) /usr/bin/time -f '%U %S' -o "$time_file" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$PROXY_URL" >"$out" 2>&1 || {
        cat "$out" "$time_file" >&2 2>/dev/null || true
        die "wrk failed against $name"
    }
    proxy1="$(proc_cpu_ticks "${PROXY_PIDS[@]}")"
    up1="$(proc_cpu_ticks "$UPSTREAM_PID")"
    stop_proxy
    wrk_parse "$out" "$name"
    [[ -z "$WRK_ERRS" ]] || log "WARNING: $name: $WRK_ERRS"
    requests="$WRK_REQUESTS"
    # /usr/bin/time's last line is "USER SYSTEM" in seconds (earlier lines: wrk's exit status).
    wrk_s="$(tail -n 1 "$time_file" | awk 'NF == 2 { print $1 + $2 }')"
    [[ -n "$wrk_s" ]] || die "cannot read wrk's CPU time from $time_file"
    RPS[$t,$round]="$WRK_RPS"
    PROXY_USER[$t,$round]="$(ticks_per_request_us $((${proxy1% *} - ${proxy0% *})) "$requests")"
    PROXY_SYS[$t,$round]="$(ticks_per_request_us $((${proxy1#* } - ${proxy0#* })) "$requests")"
    UPSTREAM_US[$t,$round]="$(ticks_per_request_us \
        $((${up1% *} + ${up1#* } - ${up0% *} - ${up0#* })) "$requests")"
    WRK_US[$t,$round]="$(awk -v s="$wrk_s" -v n="$requests" 'BEGIN { printf "%.2f", s * 1e6 / n }')"
    TOTAL_US[$t,$round]="$(awk -v a="${PROXY_USER[$t,$round]}" -v b="${PROXY_SYS[$t,$round]}" \
        -v c="${UPSTREAM_US[$t,$round]}" -v d="${WRK_US[$t,$round]}" 'BEGIN { printf "%.2f", a + b + c + d }')"
    log "  $t: $WRK_RPS req/s; µs/request: proxy user ${PROXY_USER[$t,$round]}, kernel ${PROXY_SYS[$t,$round]}, upstream ${UPSTREAM_US[$t,$round]}, wrk ${WRK_US[$t,$round]}, total ${TOTAL_US[$t,$round]}"
}

for ((round = 1; round <= ROUNDS; round++)); do
    order=(strangler nginx)
    ((round % 2)) || order=(nginx strangler)
    for t in "${order[@]}"; do
        log "round $round/$ROUNDS: $t: warm-up $WARMUP, then wrk -t$THREADS -c$CONNECTIONS -d$DURATION"
        measure_cpu "$t" "$round"
    done
done

# --- 4. system calls per request ------------------------------------------------------------
declare -A SYSCALL_TABLE SYSCALL_TOTAL
# count_syscalls TARGET: SYSCALL_REQUESTS requests to a fresh TARGET under strace -f -c;
# fills SYSCALL_TABLE[TARGET] ("name per-request" lines, most first) and SYSCALL_TOTAL.
count_syscalls() {
    local t="$1" name="syscalls-$1" pid tasks=0 attached i out summary n="$SYSCALL_REQUESTS"
    local -a traced strace_args=()
    start_proxy "$t" "$name"
    traced=("${PROXY_PIDS[@]}")
    [[ "$t" == nginx ]] && traced=("${PROXY_PIDS[@]:1}") # the workers: the master only waits
    for pid in "${traced[@]}"; do
        strace_args+=(-p "$pid")
        tasks=$((tasks + $(find "/proc/$pid/task" -mindepth 1 -maxdepth 1 | wc -l)))
    done
    summary="$WORK/$name.strace.txt"
    log "$name: strace -f -c on ${traced[*]} ($tasks threads), then h2load --h1 -n $n -c $SYSCALL_CONNECTIONS -t 1"
    strace -f -c -o "$summary" "${strace_args[@]}" 2>"$WORK/$name.strace.err" &
    STRACE_PID=$!
    # strace reports the threads it has attached to ("Process N attached [with K threads]");
    # the load starts once all are.
    for ((i = 0; i < 100; i++)); do
        attached="$(awk '/ attached with [0-9]+ threads$/ { n += $(NF - 1); next }
            / attached$/ { n++ } END { print n + 0 }' "$WORK/$name.strace.err")"
        ((attached >= tasks)) && break
        kill -0 "$STRACE_PID" 2>/dev/null || break
        sleep 0.1
    done
    ((attached >= tasks)) || {
        cat "$WORK/$name.strace.err" >&2
        die "$name: strace attached to $attached of $tasks threads"
    }
    out="$WORK/$name.h2load.txt"
    timeout -k 5 300 h2load --h1 -n "$n" -c "$SYSCALL_CONNECTIONS" -t 1 "$PROXY_URL" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || {
        cat "$out" >&2
        die "h2load failed against $name"
    }
    LOAD_PID=""
    grep -q "^status codes: $n 2xx," "$out" || {
        cat "$out" >&2
        die "$name: not all $n requests answered 2xx"
    }
    # SIGINT: strace detaches and writes its summary.
    kill -INT "$STRACE_PID"
    wait "$STRACE_PID" || true
    STRACE_PID=""
    stop_proxy
    # The summary's rows: % time, seconds, usecs/call, calls, [errors], syscall.
    SYSCALL_TABLE[$t]="$(awk -v n="$n" '/^-/ { part++; next }
        part == 1 && NF >= 5 { printf "%s %.2f\n", $NF, $4 / n }' "$summary" | sort -k2,2nr)"
    [[ -n "${SYSCALL_TABLE[$t]}" ]] || {
        cat "$summary" >&2
        die "$name: no system calls in strace's summary"
    }
    SYSCALL_TOTAL[$t]="$(awk '{ s += $2 } END { printf "%.2f", s }' <<<"${SYSCALL_TABLE[$t]}")"
    log "$name: ${SYSCALL_TOTAL[$t]} system calls per request"
}
if [[ "$SYSCALL_REQUESTS" != 0 ]]; then
    for t in "${TARGETS[@]}"; do count_syscalls "$t"; done
fi

# --- 5. report ----------------------------------------------------------------------------
echo
echo "## CPU per request, every process ($ROUNDS alternating rounds)"
echo
echo "| round | target | req/s | proxy user µs | proxy kernel µs | upstream µs | wrk µs | total µs |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for ((round = 1; round <= ROUNDS; round++)); do
    for t in "${TARGETS[@]}"; do
        printf '| %s | %s | %.0f | %s | %s | %s | %s | %s |\n' "$round" "$t" "${RPS[$t,$round]}" \
            "${PROXY_USER[$t,$round]}" "${PROXY_SYS[$t,$round]}" "${UPSTREAM_US[$t,$round]}" \
            "${WRK_US[$t,$round]}" "${TOTAL_US[$t,$round]}"
    done
done
echo
echo "ranges (µs per request):"
echo
echo "| target | proxy user | proxy kernel | upstream | wrk | total |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for t in "${TARGETS[@]}"; do
    row="| $t"
    for col in PROXY_USER PROXY_SYS UPSTREAM_US WRK_US TOTAL_US; do
        declare -n values="$col"
        vals=()
        for ((round = 1; round <= ROUNDS; round++)); do vals+=("${values[$t,$round]}"); done
        unset -n values
        row="$row | $(range %.1f "${vals[@]}")"
    done
    echo "$row |"
done
if [[ "$SYSCALL_REQUESTS" != 0 ]]; then
    echo
    echo "## system calls per request (strace -f -c, $SYSCALL_REQUESTS requests, h2load --h1 -c $SYSCALL_CONNECTIONS)"
    for t in "${TARGETS[@]}"; do
        echo
        echo "$t: ${SYSCALL_TOTAL[$t]} in total; top $SYSCALL_TOP: $(head -n "$SYSCALL_TOP" <<<"${SYSCALL_TABLE[$t]}" | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')"
    done
    echo
    echo "system calls per request: strangler ${SYSCALL_TOTAL[strangler]} against nginx ${SYSCALL_TOTAL[nginx]}"
fi
echo
echo "load average before the run: $LOADAVG_START (other work on the machine skews the figures)"
echo "machine: $(nproc) CPUs, $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency http://127.0.0.1:PORT/api/bench after wrk -t2 -c50 -d$WARMUP, a fresh proxy per run; CPU from /proc/PID/stat ($CLK_TCK ticks/s) and /usr/bin/time, divided by wrk's requests; wrk, upstream and proxy share the same CPUs"
echo "versions: $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }'), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') (as bench/run.sh's nginx row)$([[ "$SYSCALL_REQUESTS" == 0 ]] || echo ", $(strace -V | head -n 1)"); strangler = $STRANGLER_BIN at $(bench_commit)"
