#!/usr/bin/env bash
# Shadow-traffic benchmark: what mirroring a route to the new upstream costs the client.
#
#   bash bench/shadow.sh
#
# Starts, all on 127.0.0.1 with ports picked by the OS:
#   legacy     examples/bench_upstream.rs (the "fast upstream"), playing the legacy side
#   new        a second bench_upstream, playing the new side
#   strangler  target/release/strangler with one route, `api` (prefix /api/), whose
#              legacy is `legacy` and new is `new`
# One strangler process serves both phases; between phases the table is rewritten and
# reloaded with POST /admin/reload (connection pools survive it), and /admin/routes is
# checked to show the stage asked for. The two tables differ only in the stage line:
#   legacy     stage = "legacy": every request goes to legacy, nothing is mirrored
#   shadow     stage = "shadow", shadow = { sample = 1.0 } (default bounds: max_inflight
#              64, max_body 65536, timeout 2s, safe methods only, noise_sample 0): the
#              client still gets legacy's answer; a copy goes to new and is compared
# Each phase gets a warm-up, then a measured `wrk --latency` run. Rounds alternate the
# order (odd rounds legacy first, even rounds shadow first); the best req/s round per
# phase is reported. The parity evidence of the shadow phase comes from
# GET /admin/parity, read once the mirrors in flight have settled: the counts of the
# best shadow round's measured run, and the totals of the whole run. Everything it
# starts is stopped on exit.
#
# Environment knobs (defaults in brackets):
#   CONNECTIONS [100]   wrk -c for the measured run
#   DURATION    [10s]   wrk -d for the measured run (wrk syntax: 10s, 1m, ...)
#   THREADS     [2]     wrk -t
#   ROUNDS      [2]     how many times the legacy/shadow pair is run
#   WARMUP      [2s]    wrk -d of the warm-up (always -t2 -c50)
#   STRANGLER_BIN=path  use this strangler binary instead of building it
#   UPSTREAM_BIN=path   use this bench_upstream binary instead of building it
#   KEEP_TMP=1          keep the temp dir (tables, logs, raw wrk outputs, parity JSON)
#
# Needs: bash, cargo, and apt-get (as root, or sudo) if wrk/curl/python3 are missing.
set -euo pipefail
shopt -s inherit_errexit # a failing helper inside $(...) stops the script too

CONNECTIONS="${CONNECTIONS:-100}"
DURATION="${DURATION:-10s}"
THREADS="${THREADS:-2}"
ROUNDS="${ROUNDS:-2}"
WARMUP="${WARMUP:-2s}"
KEEP_TMP="${KEEP_TMP:-0}"
ROUTE=api
PHASES=(legacy shadow)

LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

LOG_TAG=shadow
# shellcheck source=bench/lib.sh
source "$REPO/bench/lib.sh"

require_positive_int ROUNDS "$ROUNDS"
require_positive_int CONNECTIONS "$CONNECTIONS"
require_positive_int THREADS "$THREADS"
parse_wrk_durations "$DURATION" "$WARMUP"

# --- 1. tools ---------------------------------------------------------------
ensure_tools wrk=wrk curl=curl python3=python3

# --- 2. build -----------------------------------------------------------------
build_bench_bins all

# --- process bookkeeping and cleanup -----------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/strangler-shadow.XXXXXX")"
# The table lives in a directory of its own: strangler watches the table's directory,
# and the raw wrk outputs written to $WORK must not wake it during a measured run.
CONF_DIR="$WORK/config"
mkdir -p "$CONF_DIR"
LEGACY_PID=""
NEW_PID=""
STRANGLER_PID=""

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_pid "$STRANGLER_PID"
    stop_pid "$NEW_PID"
    stop_pid "$LEGACY_PID"
    finish_cleanup "$rc"
}
on_exit_run_cleanup

# Raise the soft open-files limit as far as the hard limit allows (inherited by wrk and
# the servers).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- 3. upstreams --------------------------------------------------------------
LEGACY_PORT=""
NEW_PORT=""
log "starting two upstreams (legacy, new): $UPSTREAM_BIN"
start_upstream upstream-legacy LEGACY_PID LEGACY_PORT
# The new service normally runs on its own hosts; here it shares the two cores, so it
# runs at the lowest priority (NEW_NICE, default 19) to stand in for "elsewhere" and keep
# the figure about what the proxy does to its clients. NEW_NICE=0 shows the worst case.
start_upstream upstream-new NEW_PID NEW_PORT "${NEW_NICE:-19}"
log "legacy upstream on 127.0.0.1:$LEGACY_PORT (pid $LEGACY_PID), new upstream on 127.0.0.1:$NEW_PORT (pid $NEW_PID)"

# --- 4. strangler --------------------------------------------------------------
PROXY_PORT="" ADMIN_PORT=""
free_ports PROXY_PORT ADMIN_PORT
PROXY="127.0.0.1:$PROXY_PORT"
ADMIN="127.0.0.1:$ADMIN_PORT"
CONFIG="$CONF_DIR/routes.toml"

# write_table STAGE: writes the table (temp file + rename, so a watcher never sees half).
write_table() {
    cat >"$CONF_DIR/.routes.toml.tmp" <<EOF
[proxy]
listen = "$PROXY"
admin_listen = "$ADMIN"
default_upstream = "legacy"

[upstreams.legacy]
url = "http://127.0.0.1:$LEGACY_PORT"

[upstreams.new]
url = "http://127.0.0.1:$NEW_PORT"

[[routes]]
name = "$ROUTE"
path = "/api/"
stage = "$1"
legacy = "legacy"
new = "new"
shadow = { sample = 1.0 }
EOF
    mv -f "$CONF_DIR/.routes.toml.tmp" "$CONFIG"
}

# admin_json PATH PYTHON_EXPR: GET http://ADMIN/PATH and print PYTHON_EXPR evaluated
# with the decoded JSON as `j`.
admin_json() {
    local body
    body="$(curl -sf --max-time 5 "http://$ADMIN$1")" || die "GET http://$ADMIN$1 failed"
    python3 -c 'import json, sys; j = json.load(sys.stdin); print(eval(sys.argv[1]))' "$2" <<<"$body" ||
        die "unexpected answer from GET http://$ADMIN$1: $body"
}

# set_stage STAGE: rewrite the table, reload it, and check the route's stage in force.
set_stage() {
    local stage="$1" code got
    write_table "$stage"
    code="$(curl -s -o "$WORK/reload.json" -w '%{http_code}' --max-time 10 -X POST "http://$ADMIN/admin/reload" || true)"
    [[ "$code" == 200 ]] || {
        cat "$WORK/reload.json" >&2 2>/dev/null || true
        die "POST http://$ADMIN/admin/reload answered '${code:-nothing}', expected 200"
    }
    got="$(admin_json /admin/routes "[r['stage'] for r in j['routes'] if r['name'] == '$ROUTE'][0]")"
    [[ "$got" == "$stage" ]] || die "route $ROUTE is at stage '$got' after the reload, expected '$stage'"
}

# parity_counts: "match noise mismatch error dropped skipped" of the route, since start.
PARITY_FIELDS=(match noise mismatch error dropped skipped)
parity_counts() {
    admin_json /admin/parity "' '.join(str(j['routes'].get('$ROUTE', {}).get(k, 0)) for k in '${PARITY_FIELDS[*]}'.split())"
}

# parity_settled: parity_counts once two reads 0.3 s apart agree (mirrors in flight have
# finished), or after about 5 s (beyond the mirror timeout of 2 s).
parity_settled() {
    local prev cur i
    prev="$(parity_counts)"
    for ((i = 0; i < 16; i++)); do
        sleep 0.3
        cur="$(parity_counts)"
        [[ "$cur" == "$prev" ]] && break
        prev="$cur"
    done
    echo "$cur"
}

# counts_delta "A..." "B...": B - A, field by field
counts_delta() {
    local -a a b
    local i diff=()
    read -ra a <<<"$1"
    read -ra b <<<"$2"
    for i in "${!a[@]}"; do diff+=("$((b[i] - a[i]))"); done
    echo "${diff[*]}"
}

write_table legacy
"$STRANGLER_BIN" check "$CONFIG" >"$WORK/check.log" 2>&1 || {
    cat "$WORK/check.log" >&2
    die "strangler check rejected the benchmark's table"
}
log "starting strangler: $STRANGLER_BIN (proxy $PROXY, admin $ADMIN)"
RUST_LOG=warn "$STRANGLER_BIN" serve --config "$CONFIG" >"$WORK/strangler.log" 2>&1 &
STRANGLER_PID=$!
wait_http "http://$ADMIN/readyz" "$STRANGLER_PID" strangler 300 || {
    tail -n 50 "$WORK/strangler.log" >&2 || true
    die "strangler did not become ready (see its log above)"
}
log "strangler ready (pid $STRANGLER_PID)"

# --- 5. load -------------------------------------------------------------------
URL="http://$PROXY/api/bench"
declare -A BEST_RPS BEST_P50 BEST_P99 BEST_ROUND BEST_ERRS BEST_REQS BEST_PARITY ALL_RPS
LEGACY_MIRRORED=0

for ((round = 1; round <= ROUNDS; round++)); do
    order=("${PHASES[@]}")
    ((round % 2)) || order=(shadow legacy)
    for phase in "${order[@]}"; do
        set_stage "$phase"
        # The proxy must really serve the upstream's answer before it is loaded: a
        # proxy answering 502 quickly would otherwise look fast.
        check_serves_upstream "$phase" "$URL" 5

        log "round $round/$ROUNDS: $phase: warm-up ${WARMUP}, then -t$THREADS -c$CONNECTIONS -d$DURATION"
        wrk_run "$WORK/warmup-$phase-$round.txt" "$WARMUP_S" -t2 -c50 -d"$WARMUP" "$URL"
        before="$(parity_settled)"
        out="$WORK/wrk-$phase-$round.txt"
        wrk_run "$out" "$DURATION_S" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$URL"
        kill -0 "$STRANGLER_PID" 2>/dev/null || {
            tail -n 50 "$WORK/strangler.log" >&2 || true
            die "strangler exited during the benchmark"
        }
        after="$(parity_settled)"
        delta="$(counts_delta "$before" "$after")"

        wrk_parse "$out" "$phase"
        rps="$WRK_RPS" p50="$WRK_P50" p99="$WRK_P99" errs="$WRK_ERRS"
        log "  $phase: $rps req/s, p50 $p50 ms, p99 $p99 ms${errs:+ ($errs)}; parity delta (${PARITY_FIELDS[*]}): $delta"
        if [[ "$phase" == legacy ]]; then
            read -ra d <<<"$delta"
            for n in "${d[@]}"; do LEGACY_MIRRORED=$((LEGACY_MIRRORED + n)); done
        fi

        ALL_RPS[$phase]="${ALL_RPS[$phase]:+${ALL_RPS[$phase]}, }$(printf '%.0f' "$rps")"
        if [[ -z "${BEST_RPS[$phase]:-}" ]] || awk -v a="$rps" -v b="${BEST_RPS[$phase]}" 'BEGIN { exit !(a > b) }'; then
            BEST_RPS[$phase]="$rps"
            BEST_P50[$phase]="$p50"
            BEST_P99[$phase]="$p99"
            BEST_ROUND[$phase]="$round"
            BEST_ERRS[$phase]="$errs"
            BEST_REQS[$phase]="${WRK_REQUESTS:-?}"
            BEST_PARITY[$phase]="$delta"
        fi
    done
done
curl -sf --max-time 5 "http://$ADMIN/admin/parity" >"$WORK/parity.json" || die "GET http://$ADMIN/admin/parity failed"
TOTAL="$(parity_counts)"
MATCH_RATE="$(admin_json /admin/parity "j['routes'].get('$ROUTE', {}).get('match_rate') or 'n/a'")"

# --- 6. report -------------------------------------------------------------------
echo
echo "## strangler shadow-traffic benchmark"
echo
echo "Route \`/api/\` at stage legacy vs stage shadow (sample 1.0, default bounds), one strangler reloaded between phases."
echo "Best req/s round of $ROUNDS per phase (p50/p99 from that same round)."
echo
echo "| phase | req/s | p50 ms | p99 ms |"
echo "| --- | ---: | ---: | ---: |"
for phase in "${PHASES[@]}"; do
    printf '| %s | %.0f | %.3f | %.3f |\n' "$phase" "${BEST_RPS[$phase]}" "${BEST_P50[$phase]}" "${BEST_P99[$phase]}"
done
echo
echo "shadow/legacy p50 ratio: $(ratio "${BEST_P50[shadow]}" "${BEST_P50[legacy]}")"
echo "shadow/legacy p99 ratio: $(ratio "${BEST_P99[shadow]}" "${BEST_P99[legacy]}")"
echo "shadow/legacy req/s ratio: $(ratio "${BEST_RPS[shadow]}" "${BEST_RPS[legacy]}")"
echo
echo "Note: on this $(nproc)-CPU machine wrk, strangler and both upstreams share the same CPUs, so the"
echo "mirror's extra upstream exchange (and comparison) per request competes with the client's"
echo "traffic: req/s drops by design. The client-latency ratios are the figure that matters."
echo "Caveat: wrk is closed-loop (each connection waits for its answer), so at saturation"
echo "latency ~ connections / req/s and the latency ratios carry that CPU contention as well;"
echo "only spare cores (or a fixed request rate below saturation) show the mirror's own cost."
echo
echo "Parity evidence, GET http://$ADMIN/admin/parity, route \`$ROUTE\`:"
echo
echo "| scope | client requests (wrk) | match | noise | mismatch | error | dropped | skipped |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
echo "| shadow round ${BEST_ROUND[shadow]}, measured run | ${BEST_REQS[shadow]} | ${BEST_PARITY[shadow]// / | } |"
echo "| whole run (warm-ups included) | - | ${TOTAL// / | } |"
echo
echo "match rate (match + noise) / compared, whole run: $MATCH_RATE"
echo "dropped: not mirrored because max_inflight (64) mirrors were already in flight (the cap at work);"
echo "those clients were served as usual, only the comparison was skipped."
if ((LEGACY_MIRRORED == 0)); then
    echo "legacy phases: nothing mirrored (parity counts unchanged), as expected."
else
    echo "WARNING: the parity counts moved by $LEGACY_MIRRORED during legacy-phase measured runs."
fi
echo
echo "req/s per round:"
for phase in "${PHASES[@]}"; do
    echo "- $phase: ${ALL_RPS[$phase]} (best: round ${BEST_ROUND[$phase]})"
done
for phase in "${PHASES[@]}"; do
    [[ -z "${BEST_ERRS[$phase]}" ]] || echo "WARNING: $phase (round ${BEST_ROUND[$phase]}): ${BEST_ERRS[$phase]}"
done
echo
echo "load average before the run: $LOADAVG_START (other work on the machine skews the figures)"
echo "machine: $(nproc) CPUs, $(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(uname -sr)"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency $URL, after a warm-up wrk -t2 -c50 -d$WARMUP; rounds alternate the phase order"
echo "versions: $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }'), strangler $("$STRANGLER_BIN" --version 2>/dev/null | awk '{ print $NF }')"
