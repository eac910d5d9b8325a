#!/usr/bin/env bash
# User-space CPU work per proxied request: strangler vs nginx, by instruction count.
#
#   bash bench/instructions.sh
#
# bench/run.sh measures req/s, which on a small shared VM moves by several percent
# from run to run; this script counts instructions instead, which barely move, so a
# change of a few percent in the proxy's own work shows up.
#
# Starts, all on 127.0.0.1 with ports picked by the OS:
#   upstream   examples/bench_upstream.rs, a minimal hyper server (run normally, once)
#   nginx      a private nginx (daemon off, master_process off, worker_processes 1; the
#              same http/upstream/location config as bench/run.sh, see write_nginx_conf
#              in bench/lib.sh) under valgrind --tool=callgrind
#   strangler  target/release/strangler (workers = 1, route /api/ -> stage "new") under
#              valgrind --tool=callgrind
# Each proxy is run twice, once loaded with N1 requests and once with N2
# (h2load --h1 -c 20 -t 1 http://127.0.0.1:PORT/api/bench), and stopped gracefully
# (nginx: SIGQUIT, strangler: SIGTERM) so callgrind writes its totals. Then
#   instructions/request = (total(N2) - total(N1)) / (N2 - N1)
# so start-up and shutdown cancel out. Only user-space instructions of the proxy
# process (all its threads) are counted: kernel time (syscalls, loopback TCP) is not.
# Repeated runs agree within about 1 % (how requests batch into event-loop wake-ups
# varies a little with timing), against several percent for req/s.
# Everything it starts is stopped on exit. Takes a few minutes (valgrind is slow).
#
# Environment knobs (defaults in brackets):
#   N1          [2000]    requests of the short run
#   N2          [12000]   requests of the long run (must be > N1)
#   STRANGLER_BIN=path    use this strangler binary instead of building it
#   UPSTREAM_BIN=path     use this bench_upstream binary instead of building it
#   KEEP_TMP=1            keep the temp dir (configs, logs, callgrind files, h2load outputs)
#
# Needs: bash, cargo, and apt-get (as root, or sudo) if valgrind/nginx/curl/h2load
# (nghttp2-client)/python3 are missing. Note: installing Debian's nginx package may
# start the system's nginx service on port 80 where the machine runs services; this
# script never uses it.
set -euo pipefail
shopt -s inherit_errexit # a failing helper inside $(...) stops the script too

N1="${N1:-2000}"
N2="${N2:-12000}"
KEEP_TMP="${KEEP_TMP:-0}"
CONNECTIONS=20
READY_TRIES=600  # wait_http tries (0.1 s apart, plus curl time): about a minute under valgrind
STOP_TRIES=1200  # 0.1 s apart: up to 2 minutes for valgrind to stop and write its file
LOAD_TIMEOUT=900 # seconds for one h2load run

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

LOG_TAG=instructions
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

require_positive_int N1 "$N1"
require_positive_int N2 "$N2"
((N2 > N1)) || die "N2 ($N2) must be larger than N1 ($N1)"

# --- 1. tools ---------------------------------------------------------------
ensure_tools valgrind=valgrind nginx=nginx curl=curl h2load=nghttp2-client python3=python3
NGINX="$(find_nginx)" || die "nginx not found after install"
command -v valgrind >/dev/null 2>&1 || die "valgrind not found after install"
command -v h2load >/dev/null 2>&1 || die "h2load not found after install"

# --- 2. build -----------------------------------------------------------------
build_bench_bins all

# --- process bookkeeping and cleanup -----------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strangler-instructions.XXXXXX")"
# in case nginx drops root privileges: let it reach its temp paths.
chmod 755 "$WORK"
UPSTREAM_PID=""
SERVER_PID="" # the proxy currently running under valgrind
LOAD_PID=""   # the h2load run in progress (its `timeout` wrapper)

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$LOAD_PID"
    stop_pid "$SERVER_PID"
    stop_pid "$UPSTREAM_PID"
    finish_cleanup "$rc"
}
on_exit_run_cleanup

# --- 3. upstream ---------------------------------------------------------------
log "starting upstream: $UPSTREAM_BIN"
UPSTREAM_PORT=""
start_upstream upstream UPSTREAM_PID UPSTREAM_PORT
log "upstream on 127.0.0.1:$UPSTREAM_PORT (pid $UPSTREAM_PID)"

# --- 4. one measured run ---------------------------------------------------------
# measure TARGET N: starts TARGET (nginx or strangler) under callgrind, loads it with
# N requests, stops it gracefully and stores callgrind's instruction total in TOTAL.
TOTAL=""
measure() {
    local target="$1" n="$2" name="$1-$2" port admin dir ready stop_sig out i
    local -a cmd
    free_ports port admin # admin: strangler's only
    case "$target" in
        nginx)
            dir="$WORK/$name"
            write_nginx_conf "$dir" "$port" "$UPSTREAM_PORT" 1024 \
                "master_process off;" "worker_processes 1;"
            "$NGINX" -q -t -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf" >&2 || {
                cat "$dir/error.log" >&2 2>/dev/null || true
                die "nginx config test failed"
            }
            cmd=("$NGINX" -p "$dir/" -e "$dir/error.log" -c "$dir/nginx.conf")
            ready="http://127.0.0.1:$port/api/bench"
            stop_sig=QUIT # graceful with master_process off (TERM would be a fast stop)
            ;;
        strangler)
            # In its own directory: strangler watches the config file's directory.
            dir="$WORK/$name"
            mkdir -p "$dir"
            cat >"$dir/routes.toml" <<EOF
[proxy]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin"
default_upstream = "app"
workers = 1

[upstreams.app]
url = "http://127.0.0.1:$UPSTREAM_PORT"

[[routes]]
name = "api"
path = "/api/"
stage = "new"
new = "app"
EOF
            cmd=("$STRANGLER_BIN" serve --config "$dir/routes.toml")
            ready="http://127.0.0.1:$admin/readyz"
            stop_sig=TERM
            ;;
        *) die "unknown target '$target'" ;;
    esac

    log "$name: starting $target under callgrind (port $port)"
    RUST_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.cg.%p" \
        "${cmd[@]}" >"$WORK/$name.log" 2>&1 &
    SERVER_PID=$!
    wait_http "$ready" "$SERVER_PID" "$target" "$READY_TRIES" || {
        tail -n 50 "$WORK/$name.log" >&2 || true
        die "$target did not become ready under valgrind (see its log above)"
    }

    # It must really serve the upstream's answer: a proxy answering 502 would be cheap.
    local url="http://127.0.0.1:$port/api/bench"
    check_serves_upstream "$name" "$url" 30

    log "$name: h2load --h1 -n $n -c $CONNECTIONS -t 1 $url"
    out="$WORK/h2load-$name.txt"
    # In the background and waited for, so that INT/TERM stop the script at once
    # (bash runs traps only after a foreground command returns).
    timeout -k 5 "$LOAD_TIMEOUT" \
        h2load --h1 -n "$n" -c "$CONNECTIONS" -t 1 "$url" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || {
        cat "$out" >&2
        die "h2load failed against $target"
    }
    LOAD_PID=""
    local ok ok2xx
    ok="$(sed -n 's/^requests: .* \([0-9][0-9]*\) succeeded,.*/\1/p' "$out")"
    ok2xx="$(sed -n 's/^status codes: \([0-9][0-9]*\) 2xx,.*/\1/p' "$out")"
    [[ "$ok" == "$n" && "$ok2xx" == "$n" ]] || {
        cat "$out" >&2
        die "$name: only '${ok:-?}' of $n requests succeeded ('${ok2xx:-?}' with 2xx)"
    }

    log "$name: stopping $target (SIG$stop_sig), waiting for callgrind to write its totals"
    kill -"$stop_sig" "$SERVER_PID" 2>/dev/null || die "$target exited before it was stopped"
    for ((i = 0; i < STOP_TRIES; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        tail -n 50 "$WORK/$name.log" >&2 || true
        die "$target did not exit within $((STOP_TRIES / 10)) s of SIG$stop_sig"
    fi
    local pid="$SERVER_PID" rc=0
    wait "$pid" || rc=$?
    SERVER_PID=""
    [[ "$rc" == 0 ]] || log "$name: $target exited with status $rc"

    local file="$WORK/$name.cg.$pid"
    [[ -s "$file" ]] || {
        tail -n 50 "$WORK/$name.log" >&2 || true
        die "callgrind wrote no file $file"
    }
    TOTAL="$(awk '/^(summary|totals):/ { print $2; exit }' "$file")"
    [[ "$TOTAL" =~ ^[0-9]+$ ]] || die "no summary/totals line in $file"
    log "$name: $TOTAL instructions in total"
}

# --- 5. runs -------------------------------------------------------------------
TARGETS=(nginx strangler)
declare -A T1 T2 PER_REQ
for t in "${TARGETS[@]}"; do
    measure "$t" "$N1"
    T1[$t]="$TOTAL"
    measure "$t" "$N2"
    T2[$t]="$TOTAL"
    PER_REQ[$t]="$(awk -v a="${T1[$t]}" -v b="${T2[$t]}" -v n1="$N1" -v n2="$N2" \
        'BEGIN { printf "%.0f", (b - a) / (n2 - n1) }')"
    log "$t: ${PER_REQ[$t]} instructions/request"
done

# --- 6. report -------------------------------------------------------------------
commit="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null || true)" ]]; then
    commit="$commit + uncommitted changes"
fi

echo
echo "## strangler user-space instructions per request"
echo
echo "| target | instructions/request |"
echo "| --- | ---: |"
for t in "${TARGETS[@]}"; do
    printf '| %s | %s |\n' "$t" "${PER_REQ[$t]}"
done
echo
echo "strangler/nginx instructions ratio: $(ratio "${PER_REQ[strangler]}" "${PER_REQ[nginx]}")"
echo
echo "User-space instructions of the proxy process (all threads) counted by callgrind, one"
echo "worker, loaded with h2load --h1 -c $CONNECTIONS -t 1; (total($N2 requests) - total($N1 requests)) / $((N2 - N1)),"
echo "so start-up and shutdown cancel out. Deterministic up to event-loop batching (repeated"
echo "runs agree within about 1 %), unlike req/s; kernel time (syscalls, loopback TCP) is not included."
echo
echo "callgrind totals: $(for t in "${TARGETS[@]}"; do printf '%s %s / %s; ' "$t" "${T1[$t]}" "${T2[$t]}"; done | sed 's/; $//') (N1 = $N1 / N2 = $N2 requests)"
echo "versions: $(valgrind --version 2>&1 | head -n 1), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //') (master_process off, worker_processes 1, upstream keepalive 64, forwarding headers + request id + Via like strangler), strangler at $commit"
