#!/usr/bin/env bash
# Call setups + teardowns per second: `switchboard call --count` against
# `switchboard carrier-sim`, two processes on 127.0.0.1 (release build).
#
#   scripts/call-rate.sh [COUNT] [CONCURRENT]      (defaults 20000 and 200)
#
# Prints the load driver's JSON summary (attempted, answered, failed, cps, setup p50/p99).
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-20000}"
concurrent="${2:-200}"
port="${CALL_RATE_PORT:-5090}"
bin="${SWITCHBOARD_BIN:-target/release/switchboard}"
if [ -z "${SWITCHBOARD_BIN:-}" ]; then
  cargo build -q --release --bin switchboard
  bin="${CARGO_TARGET_DIR:-target}/release/switchboard"
fi

"$bin" carrier-sim --bind "127.0.0.1:$port" --mix human=1 --ring-ms 0 --talk-secs 600 \
  --rtp-ports 40000-49999 --json > /dev/null &
sim=$!
trap 'kill "$sim" 2>/dev/null || true' EXIT
sleep 1

"$bin" call --to "sip:+15550100001@127.0.0.1:$port" --count "$count" \
  --concurrent "$concurrent" --rtp-ports 20000-29999 --json | tail -n 1
