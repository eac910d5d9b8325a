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

# --- shared by bench/run.sh, bench/pgo-pairs.sh, bench/affinity.sh and bench/cpu.sh ---

# raise_nofile: raises the soft open-files limit as far as the hard limit allows
# (inherited by wrk and the servers) and sets NOFILE to it (65536 when "unlimited").
raise_nofile() {
    ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    NOFILE="$(ulimit -n)"
    [[ "$NOFILE" =~ ^[0-9]+$ ]] || NOFILE=65536
}

# write_strangler_conf DIR LISTEN_PORT ADMIN_PORT UPSTREAM_PORT [PROXY_LINE...]: writes
# DIR/routes.toml, the benchmark's table (route /api/ at stage "new" on the upstream),
# each PROXY_LINE added at the end of [proxy] (e.g. 'worker_cpu_affinity = "off"').
# DIR should be strangler's own: it watches the config file's directory.
write_strangler_conf() {
    local dir="$1" port="$2" admin="$3" upstream_port="$4" line
    shift 4
    mkdir -p "$dir"
    {
        cat <<EOT
[proxy]
listen = "127.0.0.1:$port"
admin_listen = "127.0.0.1:$admin"
default_upstream = "app"
EOT
        for line in "$@"; do echo "$line"; done
        cat <<EOT

[upstreams.app]
url = "http://127.0.0.1:$upstream_port"

[[routes]]
name = "api"
path = "/api/"
stage = "new"
new = "app"
EOT
    } >"$dir/routes.toml"
}

# start_bench_strangler NAME BIN PID_VAR PORT_VAR [PROXY_LINE...]: starts `BIN serve` with
# write_strangler_conf's table in $WORK/NAME (log in $WORK/NAME.log) in front of
# 127.0.0.1:$UPSTREAM_PORT, stores its pid in PID_VAR at once (so the caller's cleanup can
# stop it) and its port in PORT_VAR, and waits until /readyz answers.
start_bench_strangler() {
    local name="$1" bin="$2" pid_var="$3" port_var="$4" sbs_port sbs_admin sbs_pid
    shift 4
    free_ports sbs_port sbs_admin
    # shellcheck disable=SC2153 # UPSTREAM_PORT is the sourcing script's (start_upstream)
    write_strangler_conf "$WORK/$name" "$sbs_port" "$sbs_admin" "$UPSTREAM_PORT" "$@"
    log "starting $name: $bin (port $sbs_port, admin $sbs_admin)"
    RUST_LOG=warn "$bin" serve --config "$WORK/$name/routes.toml" >"$WORK/$name.log" 2>&1 &
    sbs_pid=$!
    printf -v "$pid_var" '%s' "$sbs_pid"
    printf -v "$port_var" '%s' "$sbs_port"
    wait_http "http://127.0.0.1:$sbs_admin/readyz" "$sbs_pid" "$name" 300 || {
        tail -n 50 "$WORK/$name.log" >&2 || true
        die "$name did not become ready (see its log above)"
    }
}

# start_bench_nginx NAME PID_VAR PORT_VAR [DIRECTIVE...]: starts $NGINX (a private
# instance, config in $WORK/NAME) with bench/run.sh's settings (master process, workers
# auto, $NOFILE files, write_nginx_conf's proxying to 127.0.0.1:$UPSTREAM_PORT) plus the
# given top-level directives; stores the master's pid in PID_VAR at once and the port in
# PORT_VAR (either may be an array element, e.g. "PIDS[nginx]"); waits until it proxies.
start_bench_nginx() {
    local name="$1" pid_var="$2" port_var="$3" sbn_port sbn_dir sbn_pid
    shift 3
    sbn_port="$(free_port)"
    sbn_dir="$WORK/$name"
    write_nginx_conf "$sbn_dir" "$sbn_port" "$UPSTREAM_PORT" \
        "$((NOFILE / 2 < 4096 ? NOFILE / 2 : 4096))" \
        "master_process on;" "worker_processes auto;" "worker_rlimit_nofile $NOFILE;" "$@"
    "$NGINX" -q -t -p "$sbn_dir/" -e "$sbn_dir/error.log" -c "$sbn_dir/nginx.conf" >&2 || {
        cat "$sbn_dir/error.log" >&2 2>/dev/null || true
        die "$name: nginx config test failed"
    }
    log "starting $name: $NGINX (port $sbn_port)"
    "$NGINX" -p "$sbn_dir/" -e "$sbn_dir/error.log" -c "$sbn_dir/nginx.conf" >"$sbn_dir/stdout.log" 2>&1 &
    sbn_pid=$!
    printf -v "$pid_var" '%s' "$sbn_pid"
    printf -v "$port_var" '%s' "$sbn_port"
    wait_http "http://127.0.0.1:$sbn_port/api/bench" "$sbn_pid" "$name" 100 || {
        cat "$sbn_dir/error.log" "$sbn_dir/stdout.log" >&2 2>/dev/null || true
        die "$name did not become ready"
    }
    log "$name ready (master pid $sbn_pid)"
}

# stop_nginx PID: stops an nginx master (stop_pid) and then KILLs its workers, so none
# survive a master that had to be KILLed.
stop_nginx() {
    local pid="$1" workers w
    [[ -n "$pid" ]] || return 0
    workers="$(pgrep -P "$pid" 2>/dev/null || true)"
    stop_pid "$pid"
    for w in $workers; do kill -KILL "$w" 2>/dev/null || true; done
}

# resolve_strangler_bin: sets STRANGLER_BIN (and UPSTREAM_BIN, TARGET_DIR) to the binary
# bench/run.sh's `strangler` row measures: STRANGLER_BIN when set; else, with PGO=0, the
# plain `cargo build --release`; else the profile-guided build of bench/pgo.sh.
resolve_strangler_bin() {
    if [[ -n "${STRANGLER_BIN:-}" || "${PGO:-1}" == 0 ]]; then
        build_bench_bins all
        return 0
    fi
    build_bench_bins upstream
    log "profile-guided build: bash bench/pgo.sh (PGO=0 or STRANGLER_BIN=path skips it)"
    STRANGLER_BIN="$(UPSTREAM_BIN="$UPSTREAM_BIN" bash "$REPO/bench/pgo.sh")" ||
        die "the profile-guided build failed (see above); PGO=0 uses the plain release build"
    [[ -x "$STRANGLER_BIN" ]] || die "strangler binary not found: $STRANGLER_BIN"
}

# CPU accounting: clock ticks per second of /proc's utime/stime.
CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"

# proc_cpu_ticks PID...: prints "USER SYSTEM", the clock ticks the processes have spent
# in user space and in the kernel (fields 14 and 15 of /proc/PID/stat: every thread of
# the process, exited ones included), summed over the PIDs. Dies if one is gone.
proc_cpu_ticks() {
    local pid stat user=0 sys=0
    local -a f
    for pid in "$@"; do
        stat="$(cat "/proc/$pid/stat" 2>/dev/null)" || die "process $pid is gone"
        # Fields after the command name (which may hold spaces): state is f[0], utime f[11].
        read -r -a f <<<"${stat##*) }"
        user=$((user + f[11]))
        sys=$((sys + f[12]))
    done
    echo "$user $sys"
}

# ticks_per_request_us TICKS REQUESTS: clock ticks -> microseconds per request (2 decimals).
ticks_per_request_us() {
    awk -v t="$1" -v n="$2" -v hz="$CLK_TCK" 'BEGIN { if (n > 0) printf "%.2f", t * 1e6 / hz / n; else print "n/a" }'
}

# range FORMAT VALUE...: "MIN–MAX" of the numbers, each printed with the printf FORMAT
# (e.g. %.2f), or the one value when they are all equal.
range() {
    local fmt="$1"
    shift
    printf '%s\n' "$@" | awk -v fmt="$fmt" 'NR == 1 || $1 < lo { lo = $1 } NR == 1 || $1 > hi { hi = $1 }
        END { a = sprintf(fmt, lo); b = sprintf(fmt, hi); if (a == b) print a; else print a "–" b }'
}

# bench_commit: the repository's short commit, with "+ uncommitted changes" when dirty.
bench_commit() {
    local commit
    commit="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(GIT_OPTIONAL_LOCKS=0 git -C "$REPO" status --porcelain --untracked-files=no 2>/dev/null || true)" ]]; then
        commit="$commit + uncommitted changes"
    fi
    echo "$commit"
}

# measure_strangler NAME BIN [PROXY_LINE...]: one measured run of a fresh strangler (BIN,
# start_bench_strangler's table plus the PROXY_LINEs): starts it (pid in SERVER_PID, which
# the caller's cleanup stops), checks it serves the upstream, warms it up (wrk -t2 -c50
# -d$WARMUP), loads it with wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, reads its
# CPU time from /proc before and after that run, and stops it. Sets WRK_* (wrk_parse) and
# RUN_USER_US / RUN_SYS_US (the proxy's user / kernel CPU per request, µs) and
# RUN_WORKER_CPUS (worker_cpus: the CPUs each worker thread may run on).
# Outputs in $WORK/NAME.* (wrk reports, log, table).
# shellcheck disable=SC2034,SC2153 # RUN_* are read, WARMUP/DURATION/... set by the sourcing script
measure_strangler() {
    local name="$1" bin="$2" port="" url before after
    shift 2
    start_bench_strangler "$name" "$bin" SERVER_PID port "$@"
    url="http://127.0.0.1:$port/api/bench"
    check_serves_upstream "$name" "$url" 5
    wrk_run "$WORK/$name.warmup.txt" "$WARMUP_S" -t2 -c50 -d"$WARMUP" "$url"
    before="$(proc_cpu_ticks "$SERVER_PID")"
    wrk_run "$WORK/$name.wrk.txt" "$DURATION_S" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url"
    after="$(proc_cpu_ticks "$SERVER_PID")"
    RUN_WORKER_CPUS="$(worker_cpus "$SERVER_PID")"
    stop_pid "$SERVER_PID"
    SERVER_PID=""
    wrk_parse "$WORK/$name.wrk.txt" "$name"
    [[ -z "$WRK_ERRS" ]] || log "WARNING: $name: $WRK_ERRS"
    RUN_USER_US="$(ticks_per_request_us $((${after% *} - ${before% *})) "$WRK_REQUESTS")"
    RUN_SYS_US="$(ticks_per_request_us $((${after#* } - ${before#* })) "$WRK_REQUESTS")"
}

# worker_cpus PID: the CPUs each strangler-worker-N thread of PID may run on, in thread
# order, e.g. "0 1" (pinned one per CPU) or "0-1 0-1" (left to the kernel).
worker_cpus() {
    local task
    for task in /proc/"$1"/task/*; do
        [[ "$(cat "$task/comm" 2>/dev/null)" == strangler-work* ]] || continue
        awk '/^Cpus_allowed_list:/ { print $2 }' "$task/status"
    done | paste -sd ' ' -
}
