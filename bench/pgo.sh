#!/usr/bin/env bash
# Profile-guided optimised (PGO) release build of strangler: the binary the container
# image ships (deploy/docker/Dockerfile) and bench/run.sh measures.
#
#   bash bench/pgo.sh          # logs on stderr; the optimised binary's path on stdout
#
# 1. builds strangler instrumented (rustc -Cprofile-generate) in its own target dir;
# 2. trains it: runs it in front of examples/bench_upstream (and an upstream that is
#    down) with a routing table of every route kind, under wrk with bench/pgo-train.lua
#    (a migration's request mix, keep-alive and new connections) plus admin calls and a
#    reload, then stops it with SIGTERM, which writes the profile;
# 3. merges the profile with llvm-profdata (rustup's llvm-tools, whose LLVM is rustc's);
# 4. rebuilds strangler with -Cprofile-use in a second target dir.
#
# The profile tells LLVM which branches and calls the request path really takes, so it
# inlines and lays out code for them: measured here, about 30 % less user CPU per
# proxied request than the plain release build (bench/pgo-pairs.sh measures it;
# docs/performance.md). The code and its
# behaviour are the same; only the machine code's layout and inlining change.
#
# Environment knobs (defaults in brackets):
#   PGO_TRAIN_SECONDS [10]  how long the keep-alive training load runs
#   UPSTREAM_BIN=path       use this bench_upstream binary instead of building it
#   KEEP_TMP=1              keep the temp dir (training config, logs)
#
# Needs: bash, cargo, rustup (or llvm-profdata of rustc's LLVM major version on PATH as
# llvm-profdata-N), and apt-get (as root, or sudo) if wrk/curl/python3 are missing.
# Takes about twice a release build: both builds compile every dependency.
set -euo pipefail

PGO_TRAIN_SECONDS="${PGO_TRAIN_SECONDS:-10}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

LOG_TAG=pgo
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

require_positive_int PGO_TRAIN_SECONDS "$PGO_TRAIN_SECONDS"
ensure_tools wrk=wrk curl=curl python3=python3

# --- 1. llvm-profdata of rustc's LLVM ---------------------------------------------
# The raw profile format follows LLVM's version, so the merge tool must come from the
# same LLVM major version rustc was built with.
llvm_major="$(rustc -vV | sed -n 's/^LLVM version: \([0-9][0-9]*\).*/\1/p')"
[[ -n "$llvm_major" ]] || die "cannot read rustc's LLVM version from 'rustc -vV'"
host="$(rustc -vV | sed -n 's/^host: //p')"
rustup_profdata="$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata"
find_profdata() {
    if [[ -x "$rustup_profdata" ]]; then
        echo "$rustup_profdata"
    elif command -v "llvm-profdata-$llvm_major" >/dev/null 2>&1; then
        command -v "llvm-profdata-$llvm_major"
    else
        return 1
    fi
}
PROFDATA="$(find_profdata)" || {
    command -v rustup >/dev/null 2>&1 ||
        die "need llvm-profdata of LLVM $llvm_major: install rustup's llvm-tools component or llvm-profdata-$llvm_major"
    log "rustup component add llvm-tools (llvm-profdata for LLVM $llvm_major)"
    rustup component add llvm-tools >&2 || die "rustup component add llvm-tools failed"
    PROFDATA="$(find_profdata)" || die "llvm-tools installed, but no llvm-profdata at $rustup_profdata"
}
log "llvm-profdata: $PROFDATA"

# --- 2. builds ------------------------------------------------------------------------
build_bench_bins upstream # the training upstream: a plain release build
INSTRUMENTED_DIR="$TARGET_DIR/pgo-instrumented"
OPTIMISED_DIR="$TARGET_DIR/pgo-optimised"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/strangler-pgo.XXXXXX")"
UPSTREAM_PID=""
STRANGLER_PID=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$STRANGLER_PID"
    stop_pid "$UPSTREAM_PID"
    finish_cleanup "$rc"
}
on_exit_run_cleanup

# A fixed path: RUSTFLAGS name it, and a path that changed would rebuild every dependency.
RAW="$TARGET_DIR/pgo-raw"
log "building strangler instrumented (-Cprofile-generate) in $INSTRUMENTED_DIR"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-generate=$RAW" \
    cargo build --release --locked --bin strangler --target-dir "$INSTRUMENTED_DIR" >&2 ||
    die "instrumented build failed"
# Build scripts are instrumented too and have written their profiles while compiling.
rm -rf "$RAW"

# --- 3. training --------------------------------------------------------------------
UPSTREAM_PORT=""
start_upstream upstream UPSTREAM_PID UPSTREAM_PORT
# DOWN_PORT: nothing listens there, so requests routed to it get 502.
PORT="" ADMIN_PORT="" DOWN_PORT=""
free_ports PORT ADMIN_PORT DOWN_PORT
mkdir -p "$WORK/config"
cat >"$WORK/config/routes.toml" <<EOF
[proxy]
listen = "127.0.0.1:$PORT"
admin_listen = "127.0.0.1:$ADMIN_PORT"
default_upstream = "legacy"
drain_timeout = "2s"

[upstreams.legacy]
url = "http://127.0.0.1:$UPSTREAM_PORT"
[upstreams.thoughts]
url = "http://127.0.0.1:$UPSTREAM_PORT"
[upstreams.users]
url = "http://127.0.0.1:$UPSTREAM_PORT"
[upstreams.reports]
url = "http://127.0.0.1:$DOWN_PORT"
connect_timeout = "250ms"

[[routes]]
name = "thoughts-api"
path = "/api/thoughts/"
methods = ["GET", "HEAD"]
stage = "new"
new = "thoughts"

[[routes]]
name = "thought"
path = "/api/thoughts/{id}/"
methods = ["GET", "HEAD"]
stage = "new"
new = "thoughts"

[[routes]]
name = "my-thoughts-api"
path = "/api/me/thoughts/"
stage = "legacy"
new = "thoughts"

[[routes]]
name = "login"
exact = "/api/login/"
methods = ["POST"]
stage = "new"
new = "users"

[[routes]]
name = "bench"
path = "/api/bench"
stage = "new"
new = "thoughts"

[[routes]]
name = "reports"
path = "/reports/"
stage = "new"
new = "reports"
EOF
RUST_LOG=warn "$INSTRUMENTED_DIR/release/strangler" serve --config "$WORK/config/routes.toml" \
    >"$WORK/strangler.log" 2>&1 &
STRANGLER_PID=$!
wait_http "http://127.0.0.1:$ADMIN_PORT/readyz" "$STRANGLER_PID" strangler 300 || {
    tail -n 50 "$WORK/strangler.log" >&2 || true
    die "the instrumented strangler did not become ready"
}
check_serves_upstream strangler "http://127.0.0.1:$PORT/api/thoughts/1/" 5

log "training: wrk -t2 -c50 -d${PGO_TRAIN_SECONDS}s with bench/pgo-train.lua, keep-alive"
wrk_run "$WORK/train-keepalive.txt" "$PGO_TRAIN_SECONDS" --latency -t2 -c50 -d"${PGO_TRAIN_SECONDS}s" \
    -s "$REPO/bench/pgo-train.lua" "http://127.0.0.1:$PORT"
log "training: wrk -t2 -c20 -d2s, a new connection per request"
wrk_run "$WORK/train-close.txt" 2 --latency -t2 -c20 -d2s -H "Connection: close" \
    -s "$REPO/bench/pgo-train.lua" "http://127.0.0.1:$PORT"
for ((i = 0; i < 5; i++)); do
    curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/metrics" || die "GET /metrics failed"
    curl -fsS -o /dev/null "http://127.0.0.1:$ADMIN_PORT/admin/routes" || die "GET /admin/routes failed"
done
for ((i = 0; i < 20; i++)); do
    curl -fsS -o /dev/null --head "http://127.0.0.1:$PORT/api/thoughts/$i/" || die "HEAD failed"
done
curl -fsS -o /dev/null -X POST "http://127.0.0.1:$ADMIN_PORT/admin/reload" || die "POST /admin/reload failed"
for f in "$WORK"/train-*.txt; do
    wrk_parse "$f" "$(basename "$f" .txt)"
    log "  $(basename "$f" .txt): $(printf '%.0f' "$WRK_RPS") req/s${WRK_ERRS:+ ($WRK_ERRS; the 502s are part of the mix)}"
done

# SIGTERM: strangler drains and exits 0, and the instrumented binary writes its profile.
kill -TERM "$STRANGLER_PID"
rc=0
wait "$STRANGLER_PID" || rc=$?
STRANGLER_PID=""
[[ "$rc" == 0 ]] || die "the instrumented strangler exited with $rc on SIGTERM"
shopt -s nullglob
raw_files=("$RAW"/*.profraw)
shopt -u nullglob
((${#raw_files[@]})) || die "the instrumented strangler wrote no profile to $RAW"

PROFILE="$TARGET_DIR/pgo-strangler.profdata"
"$PROFDATA" merge -o "$PROFILE" "${raw_files[@]}" >&2 || die "llvm-profdata merge failed"
log "profile: $PROFILE"

# --- 4. the optimised build ----------------------------------------------------------
log "building strangler with the profile (-Cprofile-use) in $OPTIMISED_DIR"
RUSTFLAGS="${RUSTFLAGS:-} -Cprofile-use=$PROFILE" \
    cargo build --release --locked --bin strangler --target-dir "$OPTIMISED_DIR" >&2 ||
    die "optimised build failed"
echo "$OPTIMISED_DIR/release/strangler"
