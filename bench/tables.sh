#!/usr/bin/env bash
# Tables at scale (issue 21, goal 1): how long `strangler check` takes on a table of N prefix
# routes, valid and with an error in every route, at 1 000, 10 000 and 100 000 routes.
# Prints seconds per run and the growth from one size to the next (10x the routes should
# cost about 10x, not 100x).
#
#   bash bench/tables.sh                 # release build
#   SIZES="1000 10000" bash bench/tables.sh
#
# Everything is local: the tables are generated into a temp dir; nothing listens.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/strangler"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# A table of $1 prefix routes, each to its own path; with $2 = bad, every route names an
# upstream that does not exist (one error per route, all reported).
table() {
    local n="$1" kind="$2" new=new
    [[ "$kind" == bad ]] && new=missing
    printf '[upstreams.legacy]\nurl = "http://127.0.0.1:3000"\n\n[upstreams.new]\nurl = "http://127.0.0.1:3001"\n'
    for ((i = 0; i < n; i++)); do
        printf '\n[[routes]]\nname = "route-%d"\npath = "/api/r%d/"\nstage = "new"\nnew = "%s"\n' "$i" "$i" "$new"
    done
}

# Seconds `strangler check` takes on $1 (best of 3; its exit status is not the point).
seconds() {
    local best=""
    for _ in 1 2 3; do
        local start end took
        start=$(date +%s.%N)
        "$bin" check "$1" >/dev/null 2>&1 || true
        end=$(date +%s.%N)
        took=$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')
        if [[ -z "$best" ]] || awk -v t="$took" -v b="$best" 'BEGIN { exit !(t < b) }'; then best="$took"; fi
    done
    printf '%.3f' "$best"
}

printf '%-8s %-6s %10s %8s\n' routes table seconds growth
for kind in good bad; do
    previous=""
    for n in ${SIZES:-1000 10000 100000}; do
        table "$n" "$kind" > "$work/routes.toml"
        took=$(seconds "$work/routes.toml")
        growth="-"
        [[ -n "$previous" ]] && growth=$(awk -v t="$took" -v p="$previous" 'BEGIN { printf "%.1fx", t / p }')
        printf '%-8s %-6s %10s %8s\n' "$n" "$kind" "$took" "$growth"
        previous="$took"
    done
done
