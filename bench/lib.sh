# shellcheck shell=bash
# Helpers shared by bench/run.sh, bench/shadow.sh and bench/instructions.sh; not a
# script of its own.
#
# Source it after `set -euo pipefail`. Log lines are prefixed with [$LOG_TAG]
# (default: bench). Helpers that start or load servers use $WORK (the temp dir)
# and $UPSTREAM_BIN, which the sourcing script sets before calling them.

log() { printf '[%s] %s\n' "${LOG_TAG:-bench}" "$*" >&2; }
die() {
    printf '[%s] ERROR: %s\n' "${LOG_TAG:-bench}" "$*" >&2
    exit 1
}

# require_positive_int NAME VALUE
require_positive_int() {
    case "$2" in '' | *[!0-9]* | 0) die "$1 must be a positive integer, got '$2'" ;; esac
}

# wrk duration (e.g. 10, 10s, 2m, 1h) -> whole seconds, for timeouts.
dur_secs() {
    local d="$1"
    case "$d" in
        *[0-9]) echo "$d" ;;
        *s) echo "${d%s}" ;;
        *m) echo $((${d%m} * 60)) ;;
        *h) echo $((${d%h} * 3600)) ;;
        *) die "cannot parse duration '$d' (use e.g. 10s, 1m)" ;;
    esac
}

# apt_install PACKAGE...: install with apt-get (as root, or with sudo).
apt_install() {
    local sudo=()
    log "installing with apt-get: $*"
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "need root or sudo to install $*"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 ||
        die "apt-get update failed"
    timeout 600 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "$@" >&2 || die "apt-get install $* failed"
}

# find_nginx: prints the nginx binary (on PATH, or Debian's /usr/sbin/nginx); fails if none.
find_nginx() {
    command -v nginx 2>/dev/null && return 0
    [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx && return 0
    return 1
}

# ensure_tools COMMAND=PACKAGE...: installs with apt-get the packages of the commands
# that are missing (nginx is looked for with find_nginx), all in one apt-get run.
ensure_tools() {
    local pair cmd missing=()
    for pair in "$@"; do
        cmd="${pair%%=*}"
        if [[ "$cmd" == nginx ]]; then
            find_nginx >/dev/null && continue
        else
            command -v "$cmd" >/dev/null 2>&1 && continue
        fi
        missing+=("${pair#*=}")
    done
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

# parse_wrk_durations DURATION WARMUP: sets DURATION_S and WARMUP_S (whole seconds) from
# the two wrk durations, or dies.
parse_wrk_durations() {
    DURATION_S="$(dur_secs "$1")"
    WARMUP_S="$(dur_secs "$2")"
    case "$DURATION_S$WARMUP_S" in *[!0-9]*) die "DURATION/WARMUP must be whole numbers with an optional s/m/h suffix" ;; esac
}

# cargo_target_dir: prints cargo's target directory (run from the repository).
cargo_target_dir() {
    local dir
    dir="$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])' 2>/dev/null)" ||
        dir=""
    [[ -n "$dir" ]] || dir="${CARGO_TARGET_DIR:-$PWD/target}"
    echo "$dir"
}

# build_bench_bins all|upstream: builds (release) what STRANGLER_BIN / UPSTREAM_BIN do not
# already name, then sets both to the binaries to run (`upstream`: UPSTREAM_BIN only) and
# TARGET_DIR to cargo's target directory. Dies if one is missing.
build_bench_bins() {
    local with_strangler=1 build_args=()
    case "$1" in
        all) ;;
        upstream) with_strangler=0 ;;
        *) die "build_bench_bins: unknown mode '$1'" ;;
    esac
    TARGET_DIR="$(cargo_target_dir)"
    [[ -n "${UPSTREAM_BIN:-}" ]] || build_args+=(--example bench_upstream)
    [[ "$with_strangler" == 0 || -n "${STRANGLER_BIN:-}" ]] || build_args+=(--bin strangler)
    if ((${#build_args[@]})); then
        log "cargo build --release ${build_args[*]}"
        cargo build --release "${build_args[@]}" >&2 || die "cargo build failed"
    fi
    UPSTREAM_BIN="${UPSTREAM_BIN:-$TARGET_DIR/release/examples/bench_upstream}"
    [[ -x "$UPSTREAM_BIN" ]] || die "upstream binary not found: $UPSTREAM_BIN"
    if [[ "$with_strangler" == 1 ]]; then
        STRANGLER_BIN="${STRANGLER_BIN:-$TARGET_DIR/release/strangler}"
        [[ -x "$STRANGLER_BIN" ]] || die "strangler binary not found: $STRANGLER_BIN"
    fi
}

# on_exit_run_cleanup: the sourcing script's `cleanup` function runs on exit, also after
# Ctrl-C (exit 130) or SIGTERM (exit 143). `cleanup` should end with `finish_cleanup`.
on_exit_run_cleanup() {
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# finish_cleanup RC: removes $WORK (unless KEEP_TMP=1) and exits with RC.
finish_cleanup() {
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then
        log "kept temp dir $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$1"
}

stop_pid() { # stop_pid PID: TERM, wait up to 5 s, then KILL
    local pid="$1" i
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    { wait "$pid"; } 2>/dev/null || true
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# free_ports VAR...: sets each VAR to a free loopback port, all different (they are bound
# at the same time while the OS picks them).
free_ports() {
    local -a ports
    local i=0 var
    read -r -a ports < <(python3 -c '
import socket, sys
sockets = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in sockets))' "$#")
    ((${#ports[@]} == $#)) || die "free_ports: could not pick $# ports"
    for var in "$@"; do
        printf -v "$var" '%s' "${ports[i]}"
        i=$((i + 1))
    done
}

# wait_http URL PID NAME TRIES: poll URL (0.1 s apart) until it answers 200.
wait_http() {
    local url="$1" pid="$2" name="$3" tries="$4" i code
    for ((i = 0; i < tries; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null || true)"
        [[ "$code" == 200 ]] && return 0
        sleep 0.1
    done
    log "$name did not answer 200 at $url after $tries tries (last status: ${code:-none})"
    return 1
}

# start_upstream NAME PID_VAR PORT_VAR [NICENESS]: starts $UPSTREAM_BIN on a port
# picked by the OS (output in $WORK/NAME.out and NAME.err; under `nice -n NICENESS`,
# default 0) and stores its pid in PID_VAR (at once, so the caller's cleanup can stop
# it) and its port in PORT_VAR.
start_upstream() {
    local name="$1" pid_var="$2" port_var="$3" niceness="${4:-0}" pid port="" i
    : >"$WORK/$name.out" # exists before the background job opens it
    nice -n "$niceness" "$UPSTREAM_BIN" --listen 127.0.0.1:0 >"$WORK/$name.out" 2>"$WORK/$name.err" &
    pid=$!
    printf -v "$pid_var" '%s' "$pid"
    for ((i = 0; i < 100; i++)); do
        port="$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$WORK/$name.out")"
        [[ -n "$port" ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$port" ]] || {
        cat "$WORK/$name.out" "$WORK/$name.err" >&2
        die "$name did not report its port"
    }
    printf -v "$port_var" '%s' "$port"
}

# What examples/bench_upstream.rs answers.
EXPECTED_BODY="hello from the upstream"

# check_serves_upstream NAME URL MAX_SECONDS: dies unless GET URL answers 200 with the
# upstream's body, so that a proxy answering 502 quickly is never measured as fast.
# The body is kept in $WORK/check-NAME.body.
check_serves_upstream() {
    local name="$1" url="$2" max="$3" code body="$WORK/check-$1.body"
    code="$(curl -s -o "$body" -w '%{http_code}' --max-time "$max" "$url" || true)"
    [[ "$code" == 200 ]] || die "$name: GET $url answered '${code:-nothing}', expected 200"
    grep -qF "$EXPECTED_BODY" "$body" || die "$name: GET $url did not return the upstream's body"
}

# "271.00us" / "1.20ms" / "2.00s" / "1.00m" -> milliseconds
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") f = 0.001; else if (u == "ms") f = 1; else if (u == "s") f = 1000;
        else if (u == "m") f = 60000; else if (u == "h") f = 3600000; else exit 1
        printf "%.3f", n * f }'
}

wrk_run() { # wrk_run OUTFILE SECONDS ARGS... (bounded even if wrk hangs)
    local out="$1" secs="$2"
    shift 2
    timeout --foreground -k 5 $((secs + 30)) wrk "$@" >"$out" 2>&1 || {
        cat "$out" >&2
        die "wrk failed: wrk $*"
    }
}

# wrk_parse OUTFILE LABEL: reads a `wrk --latency` report into WRK_RPS,
# WRK_P50 and WRK_P99 (ms), WRK_REQUESTS (completed requests) and WRK_ERRS
# (socket errors and non-2xx/3xx counts, ';'-separated; empty when none).
# shellcheck disable=SC2034 # the WRK_* globals are read by the sourcing script
wrk_parse() {
    local out="$1" label="$2"
    WRK_RPS="$(awk '/^Requests\/sec:/ { print $2 }' "$out")"
    WRK_P50="$(awk '$1 == "50%" { print $2 }' "$out")"
    WRK_P99="$(awk '$1 == "99%" { print $2 }' "$out")"
    WRK_REQUESTS="$(awk '/ requests in / { print $1 }' "$out")"
    [[ -n "$WRK_RPS" && -n "$WRK_P50" && -n "$WRK_P99" ]] || {
        cat "$out" >&2
        die "could not parse wrk output for $label"
    }
    WRK_P50="$(to_ms "$WRK_P50")" || die "unknown latency unit in '$WRK_P50'"
    WRK_P99="$(to_ms "$WRK_P99")" || die "unknown latency unit in '$WRK_P99'"
    WRK_ERRS="$(grep -E '^ *(Socket errors|Non-2xx or 3xx responses):' "$out" | sed 's/^ *//' | paste -sd ';' - || true)"
}

# write_nginx_conf DIR LISTEN_PORT UPSTREAM_PORT WORKER_CONNECTIONS [DIRECTIVE...]:
# writes DIR/nginx.conf (and creates DIR/tmp) for a private nginx listening on
# 127.0.0.1:LISTEN_PORT and proxying everything to 127.0.0.1:UPSTREAM_PORT, doing
# the same per-request work as strangler. Each DIRECTIVE is one top-level line
# placed after `daemon off;` (e.g. "master_process on;" "worker_processes auto;").
# bench/run.sh and bench/instructions.sh both use it, so they measure the same nginx.
write_nginx_conf() {
    local dir="$1" listen_port="$2" upstream_port="$3" worker_connections="$4" line
    shift 4
    mkdir -p "$dir/tmp"
    {
        echo "daemon off;"
        for line in "$@"; do echo "$line"; done
        cat <<EOF
pid $dir/nginx.pid;
error_log $dir/error.log warn;

events {
    worker_connections $worker_connections;
}

http {
    access_log off;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    # The default (1000) would make nginx close wrk's connections every 1000
    # requests; a proxy benchmark should keep client connections alive.
    keepalive_requests 1000000;

    upstream app {
        server 127.0.0.1:$upstream_port;
        keepalive 64;
        keepalive_requests 1000000;
    }

    server {
        listen 127.0.0.1:$listen_port;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # The same per-request work strangler does: keep Host, forwarding headers,
            # a request id sent upstream and returned, and Via both ways.
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header X-Request-Id \$request_id;
            proxy_set_header Via "1.1 nginx";
            add_header X-Request-Id \$request_id always;
            add_header Via "1.1 nginx" always;
        }
    }
}
EOF
    } >"$dir/nginx.conf"
}

# ratio A B: A / B with two decimals ("n/a" when B is not positive)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
