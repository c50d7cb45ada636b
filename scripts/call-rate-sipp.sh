#!/usr/bin/env bash
# Call setups + teardowns per second against a third-party UAS: SIPp's built-in UAS
# (`sipp -sn uas`, Debian package `sip-tester`) on 127.0.0.1, dialled by
#   1. `switchboard call --count N --concurrent C [--rate R]` (release build), then
#   2. the baseline: SIPp's own UAC (`sipp -sn uac -m N -l C -r R`) against the same UAS.
# Each call: INVITE, 180, 200 (with SDP), ACK, BYE, 200 (SIPp's default scenarios).
#
#   scripts/call-rate-sipp.sh [COUNT] [CONCURRENT] [RATE]    (defaults 20000, 200, 0 = unpaced)
#
# SIPp's sockets get SIPP_BUFF bytes of buffer (default 4 MiB, as our endpoint asks for); with
# SIPP_BUFF=0 SIPp keeps its own 64 KiB default, which overflows (RcvbufErrors, retransmissions)
# from about 2,000 calls/s. Prints the load average, switchboard's JSON summary, a
# {"sipp_uac": {...}} line, and after each phase the UDP receive-buffer overflows: machine-wide
# (`RcvbufErrors` of /proc/net/snmp; this includes the RTP our calls send to SIPp's media port,
# which SIPp never reads) and on the UAS's SIP socket. SIPp is a benchmark tool only, no test
# needs it: apt-get install sip-tester.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-20000}"
concurrent="${2:-200}"
rate="${3:-0}"
port="${CALL_RATE_PORT:-5091}"
buff="${SIPP_BUFF:-4194304}"
command -v sipp >/dev/null || { echo "sipp not found: apt-get install sip-tester" >&2; exit 1; }
bin="${SWITCHBOARD_BIN:-target/release/switchboard}"
if [ -z "${SWITCHBOARD_BIN:-}" ]; then
  cargo build -q --release --bin switchboard
  bin="${CARGO_TARGET_DIR:-target}/release/switchboard"
fi
work="$(mktemp -d)"
uas=""
cleanup() {
  if [ -n "$uas" ]; then kill "$uas" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

sipp_buff=()
[ "$buff" != 0 ] && sipp_buff=(-buff_size "$buff")
rcvbuf_errors() { awk '/^Udp:/ && $2 ~ /^[0-9]+$/ {print $6}' /proc/net/snmp; }
# Datagrams the UAS's SIP socket dropped (the last column of /proc/net/udp for its port).
uas_sip_drops() {
  awk -v p="$(printf ':%04X' "$port")" '$2 ~ p"$" {print $NF; exit}' /proc/net/udp
}
report() {
  echo "{\"rcvbuf_errors\": $(( $(rcvbuf_errors) - e0 )), \"uas_sip_socket_drops\": $(uas_sip_drops)," \
    "\"loadavg\": \"$(loadavg)\"}"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

start_uas() {
  # -mp: SIPp's RTP echo port (what its SDP advertises). -bg prints "Background mode - PID=[N]".
  # Its output goes to a file: a pipe would close when the foreground parent exits and the
  # daemon would die of SIGPIPE at its next write.
  (cd "$work" && sipp -sn uas -i 127.0.0.1 -p "$port" -mp "$((port + 2))" -nostdin -bg \
    "${sipp_buff[@]}" >"$work/uas.out" 2>&1) || true
  uas="$(sed -n 's/.*PID=\[\([0-9]*\)\].*/\1/p' "$work/uas.out")"
  [ -n "$uas" ] || { echo "sipp UAS did not start on 127.0.0.1:$port: $(cat "$work/uas.out")" >&2; exit 1; }
  sleep 1
}
stop_uas() {
  kill "$uas" 2>/dev/null || true
  uas=""
  sleep 1
}

# 1. switchboard call -> sipp UAS.
start_uas
echo "{\"phase\": \"switchboard call -> sipp -sn uas\", \"loadavg\": \"$(loadavg)\"}"
paced=()
[ "$rate" != 0 ] && paced=(--rate "$rate")
e0=$(rcvbuf_errors)
set +e
"$bin" call --to "sip:service@127.0.0.1:$port" --count "$count" "${paced[@]}" \
  --concurrent "$concurrent" --rtp-ports 20000-29999 --json | tail -n 1
set -e
report
stop_uas

# 2. Baseline: sipp UAC -> sipp UAS, same count and concurrency.
start_uas
echo "{\"phase\": \"sipp -sn uac -> sipp -sn uas\", \"loadavg\": \"$(loadavg)\"}"
sipp_rate="$rate"
[ "$rate" = 0 ] && sipp_rate=100000
e0=$(rcvbuf_errors)
t0=$(date +%s.%N)
set +e
(cd "$work" && sipp -sn uac -i 127.0.0.1 -p 0 -nostdin "${sipp_buff[@]}" -m "$count" \
  -r "$sipp_rate" -l "$concurrent" -timeout 600s -trace_stat -stf uac.csv -fd 1 \
  "127.0.0.1:$port" >/dev/null 2>&1)
rc=$?
set -e
t1=$(date +%s.%N)
python3 - "$work/uac.csv" "$count" "$t0" "$t1" "$rc" <<'PY'
import csv, json, sys
path, count, t0, t1, rc = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rows = list(csv.reader(open(path), delimiter=";"))
head, last = rows[0], rows[-1]
col = lambda name: int(last[head.index(name)])
wall = t1 - t0
print(json.dumps({"sipp_uac": {
    "attempted": count,
    "successful": col("SuccessfulCall(C)"),
    "failed": col("FailedCall(C)"),
    "retransmissions": col("Retransmissions(C)"),
    "cps": round(count / wall, 2),
    "wall_s": round(wall, 3),
    "exit": rc,
}}))
PY
report
