#!/usr/bin/env bash
# The reliability + security suite, with its figures: runs the test modules that state a
# figure (tests/it/{reliability,resilience,hostile,bad_configs,secrets,admin_auth,http2_timeouts,body_timeouts,upgrades,paths}.rs) with their
# output shown, and prints every `figure:` line, then the pass/fail count.
#
#   bash bench/reliability.sh               # debug build (what CI builds anyway)
#   PROFILE=release bash bench/reliability.sh
#   bash bench/reliability.sh --write-docs  # also rewrites the figures table of
#                                           # docs/reliability.md (only when every test passed)
#
# Everything runs on loopback; every load loop in those tests is bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=()
[[ "${PROFILE:-debug}" == release ]] && profile=(--release)
write_docs=false
case "${1:-}" in
    --write-docs) write_docs=true ;;
    "") ;;
    *) echo "usage: bash bench/reliability.sh [--write-docs]" >&2; exit 2 ;;
esac

# The figures as a Markdown table (a `figure: CHECK: FIGURE` line is one row, split at its
# first ": "; rows sorted, so that a rerun's diff shows changed figures only), between the markers of docs/reliability.md: generated, never copied by hand.
write_figures_table() {
    local log="$1" doc="$2" table
    table="$(mktemp)"
    {
        echo "<!-- figures: written by \`bash bench/reliability.sh --write-docs\`; do not edit by hand -->"
        echo "Figures from one run (\`bash bench/reliability.sh --write-docs\`, ${PROFILE:-debug} build,"
        echo "$(nproc) cores shared with the test runner, strangler at $(git rev-parse --short HEAD), $(date -u +%Y-%m-%d)):"
        echo
        echo "| check | figure |"
        echo "|---|---|"
        grep -E '^figure: ' "$log" | sed 's/^figure: //' | LC_ALL=C sort -f | awk '{
            at = index($0, ": ");
            if (at == 0) { print "| | " $0 " |" } else { print "| " substr($0, 1, at - 1) " | " substr($0, at + 2) " |" }
        }'
        echo "<!-- end of figures -->"
    } >"$table"
    awk -v table="$table" '
        /^<!-- figures: written by/ { while ((getline line < table) > 0) print line; skip = 1; next }
        /^<!-- end of figures -->/ { skip = 0; next }
        !skip { print }
    ' "$doc" >"$doc.new"
    grep -q '^<!-- figures: written by' "$doc" || { rm -f "$doc.new" "$table"; echo "$doc has no figures markers" >&2; return 1; }
    mv "$doc.new" "$doc"
    rm -f "$table"
}

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test "${profile[@]}" --test it -- --nocapture --test-threads=2 \
    reliability:: resilience:: hostile:: bad_configs:: secrets:: admin_auth:: http2_timeouts:: body_timeouts:: upgrades:: paths:: >"$log" 2>&1 || status=$?

echo "== reliability and security figures"
grep -E '^figure: ' "$log" | sed 's/^figure: /- /' || true
passed=$(grep -Ec '^test .* \.\.\. ok$' "$log" || true)
failed=$(grep -Ec '^test .* \.\.\. FAILED$' "$log" || true)
echo "== ${passed} tests passed, ${failed} failed"
if [[ "$status" != 0 ]]; then
    grep -E -A15 '^---- .* stdout ----' "$log" | head -80 || true
fi
if [[ "$status" == 0 && "$write_docs" == true ]]; then
    write_figures_table "$log" docs/reliability.md
    echo "== wrote the figures table of docs/reliability.md"
fi
exit "$status"
