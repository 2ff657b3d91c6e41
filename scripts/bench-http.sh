#!/usr/bin/env bash
# HTTP benchmarks of occi-so against a bare hyper server, same machine,
# same run (BENCHMARKS.md, server section):
#   1. wrk, 64 connections, GET /orchestrator/default (text/occi) and GET /-/
#      on occi-so, then the same wrk on examples/bare_hyper.rs;
#   2. memory (RSS) of occi-so holding 100,000 instances.
# Needs wrk (apt-get install -y wrk). Everything listens on 127.0.0.1 only.
# Settings: DURATION (10s), THREADS (2), CONNECTIONS (64), INSTANCES (100000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
INSTANCES=${INSTANCES:-100000}

command -v wrk >/dev/null || { echo "bench-http: wrk is missing (apt-get install -y wrk)" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cargo build --release --bin occi-so --example bare_hyper >&2
BIN=target/release/occi-so
BARE=target/release/examples/bare_hyper

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_port() {
  for _ in $(seq 1 200); do
    curl -s -o /dev/null "http://127.0.0.1:$1/healthz" && return 0
    curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0
    sleep 0.05
  done
  echo "bench-http: nothing answers on port $1" >&2; exit 1
}

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

# wrk with latency percentiles; prints "req/s p50 p99".
run_wrk() {
  local url=$1; shift
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" >"$WORK/wrk.out"
  local rps p50 p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$WORK/wrk.out")
  p50=$(awk '$1=="50%" {print $2}' "$WORK/wrk.out")
  p99=$(awk '$1=="99%" {print $2}' "$WORK/wrk.out")
  if grep -q "Non-2xx" "$WORK/wrk.out"; then
    echo "bench-http: non-2xx answers for $url:" >&2; cat "$WORK/wrk.out" >&2; exit 1
  fi
  echo "$rps $p50 $p99"
}

# --- occi-so -------------------------------------------------------------
PORT=$(free_port)
"$BIN" serve --listen "127.0.0.1:$PORT" --state-dir "$WORK/state" --journal-fsync false \
  --log warn >"$WORK/occi-so.log" 2>&1 &
OCCI_PID=$!; PIDS+=("$OCCI_PID")
wait_port "$PORT"
BASE="http://127.0.0.1:$PORT"
curl -sf -X PUT "$BASE/orchestrator/default" -H 'X-Tenant-Name: bench' \
  -H 'Category: orchestrator; scheme="http://schemas.mobile-cloud-networking.eu/occi/service#"' >/dev/null

echo "== occi-so GET /orchestrator/default (text/occi)" >&2
read -r O_RPS O_P50 O_P99 < <(run_wrk "$BASE/orchestrator/default" -H 'X-Tenant-Name: bench' -H 'Accept: text/occi')
echo "== occi-so GET /-/ (text/plain)" >&2
read -r Q_RPS Q_P50 Q_P99 < <(run_wrk "$BASE/-/" -H 'X-Tenant-Name: bench')

# --- bare hyper ----------------------------------------------------------
BPORT=$(free_port)
"$BARE" "127.0.0.1:$BPORT" 2>"$WORK/bare.log" &
BARE_PID=$!; PIDS+=("$BARE_PID")
wait_port "$BPORT"
echo "== bare hyper GET /orchestrator/default" >&2
read -r B_RPS B_P50 B_P99 < <(run_wrk "http://127.0.0.1:$BPORT/orchestrator/default" -H 'X-Tenant-Name: bench' -H 'Accept: text/occi')
kill "$BARE_PID"

# --- memory with many instances -------------------------------------------
RSS_IDLE=$(rss_kib "$OCCI_PID")
# Bulk creation with curl's parallel mode (keep-alive, 32 at a time).
python3 - "$INSTANCES" "$BASE" >"$WORK/create.curl" <<'PY'
import sys
n, base = int(sys.argv[1]), sys.argv[2]
for _ in range(n):
    print(f'url = "{base}/sample/"\noutput = "/dev/null"')
PY
echo "== creating $INSTANCES instances" >&2
START=$(date +%s.%N)
curl -s --no-progress-meter --parallel --parallel-max 32 -X POST -H 'X-Tenant-Name: bench' \
  -H 'Category: sample; scheme="http://schemas.mobile-cloud-networking.eu/occi/sm#"' \
  -H 'X-OCCI-Attribute: sample.greeting="hello", mcn.endpoint.maas="10.0.0.1"' \
  -K "$WORK/create.curl"
END=$(date +%s.%N)
COUNT=$(curl -s "$BASE/sample/" -H 'X-Tenant-Name: bench' -H 'Accept: text/uri-list' | grep -c '^http' || true)
RSS_FULL=$(rss_kib "$OCCI_PID")
CREATE_RPS=$(python3 -c "print(f'{$INSTANCES/($END-$START):.0f}')")
echo "== GET /orchestrator/default (text/occi) with $COUNT instances" >&2
read -r F_RPS F_P50 F_P99 < <(run_wrk "$BASE/orchestrator/default" -H 'X-Tenant-Name: bench' -H 'Accept: text/occi')

cat <<OUT
machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency

| server | request | req/s | p50 | p99 |
|---|---|---|---|---|
| bare hyper | fixed text/occi response | $B_RPS | $B_P50 | $B_P99 |
| occi-so | GET /orchestrator/default (text/occi) | $O_RPS | $O_P50 | $O_P99 |
| occi-so | GET /-/ (text/plain) | $Q_RPS | $Q_P50 | $Q_P99 |
| occi-so, $COUNT instances | GET /orchestrator/default (text/occi) | $F_RPS | $F_P50 | $F_P99 |

occi-so throughput vs bare hyper: GET instance $(python3 -c "print(f'{$O_RPS/$B_RPS:.2f}')")x, GET /-/ $(python3 -c "print(f'{$Q_RPS/$B_RPS:.2f}')")x

memory: RSS idle with 1 instance $((RSS_IDLE / 1024)) MiB; with $COUNT instances $((RSS_FULL / 1024)) MiB ($(python3 -c "print(f'{($RSS_FULL-$RSS_IDLE)*1024/max($COUNT,1):.0f}')") bytes per instance); created at $CREATE_RPS req/s ($(python3 -c "print(f'{$END-$START:.1f}')") s)
OUT
