#!/usr/bin/env bash
# Hot-reload latency of declarative plugins (BENCHMARKS.md, plugins
# section): a release occi-so with --plugins on a scratch directory holding
# a copy of plugins/webapp; examples/plugin_reload_latency.rs edits the
# manifest / adds a folder and polls /-/ every millisecond until the change
# is served. Everything listens on 127.0.0.1. Settings: RUNS (30).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS=${RUNS:-30}

cargo build --release --bin occi-so --example plugin_reload_latency >&2
WORK=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/plugins"
cp -r plugins/webapp "$WORK/plugins/webapp"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
OCCI_SO_LOG=warn target/release/occi-so serve --listen "127.0.0.1:$PORT" \
  --plugins "$WORK/plugins" --state-dir "$WORK/state" --journal-fsync false 2>"$WORK/server.log" &
PID=$!
for _ in $(seq 1 200); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  sleep 0.05
done
target/release/examples/plugin_reload_latency "http://127.0.0.1:$PORT" "$WORK/plugins" "$RUNS"
