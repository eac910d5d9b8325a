#!/usr/bin/env bash
# How long `cargo install` takes for a new user, and how large the binary it installs is:
# the README's install line, `cargo install --locked --path .`, into a temporary root with
# a fresh CARGO_TARGET_DIR (nothing reused from earlier builds; crates already downloaded
# in ~/.cargo are, as on a machine that has fetched them once).
#
# NOT run by CI: it is a second release build of the whole dependency tree (LTO, one
# codegen unit), minutes of CPU. Run it by hand:
#
#   bash bench/install.sh              # prints: install: 312 s wall clock, binary 9.8 MiB (10276864 bytes)
#   JOBS=2 bash bench/install.sh       # as many parallel jobs as given (default: cargo's, one per CPU)
#
# The figure depends on the machine: the line also names its CPU count and rustc.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_TAG=install
# shellcheck source=bench/lib.sh
source bench/lib.sh

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

jobs=()
if [[ -n "${JOBS:-}" ]]; then
    require_positive_int JOBS "$JOBS"
    jobs=(--jobs "$JOBS")
fi

log "cargo install --locked --path . --root $work/root (CARGO_TARGET_DIR=$work/target)"
start=$(date +%s.%N)
CARGO_TARGET_DIR="$work/target" CARGO_INCREMENTAL=0 \
    cargo install --quiet --locked "${jobs[@]}" --path . --root "$work/root" --bin strangler
end=$(date +%s.%N)

binary="$work/root/bin/strangler"
[[ -x "$binary" ]] || die "no binary at $binary"
"$binary" --version >/dev/null || die "the installed binary does not run"
bytes=$(stat -c %s "$binary")
awk -v s="$start" -v e="$end" -v b="$bytes" -v cpus="$(nproc)" -v rustc="$(rustc --version)" \
    'BEGIN { printf "install: %.0f s wall clock, binary %.1f MiB (%d bytes); %d CPUs, %s\n", e - s, b / 1048576, b, cpus, rustc }'
