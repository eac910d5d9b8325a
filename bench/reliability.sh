#!/usr/bin/env bash
# The reliability + security suite, with its figures: runs the test modules that state a
# figure (tests/it/{reliability,resilience,hostile,bad_configs,secrets,admin_auth,http2_timeouts,body_timeouts,upgrades,paths}.rs) with their
# output shown, and prints every `figure:` line, then the pass/fail count.
#
#   bash bench/reliability.sh            # debug build (what CI builds anyway)
#   PROFILE=release bash bench/reliability.sh
#
# Everything runs on loopback; every load loop in those tests is bounded in count and time.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=()
[[ "${PROFILE:-debug}" == release ]] && profile=(--release)

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
exit "$status"
