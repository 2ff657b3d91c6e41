#!/usr/bin/env bash
# heat-local.sh — run a REAL OpenStack Heat (PyPI `openstack-heat`) on loopback,
# with no Keystone, no RabbitMQ and no other OpenStack service. The test suite
# (scripts/test.sh) starts one on a free port and stops it afterwards; the venv
# is cached under ~/.cache/occi-so/heat/venv so only the first run installs it.
#
#   heat-local.sh [start]   create venv if missing, write config, db_sync,
#                           start Heat (API + engine in ONE process) in the
#                           background, wait until it answers, print endpoint
#   heat-local.sh stop      stop the process whose PID this script recorded
#   heat-local.sh status    say whether the recorded process is running
#   heat-local.sh restart   stop + start
#   heat-local.sh reset     stop, delete the sqlite DB, start
#   heat-local.sh env       print export lines (HEAT_URL, ...) for the running one
#
# Everything is driven by environment variables (defaults in brackets):
#   HEAT_HOME [~/.cache/occi-so/heat]        state dir: etc/, heat.db, logs, pid file
#   HEAT_VENV [~/.cache/occi-so/heat/venv-<python version>]  virtualenv (shared, cached)
#   HEAT_PYTHON [see python-pick.sh]  interpreter for the venv: >= 3.11.8, >= 3.12.2
#                                or 3.13+ (older 3.11/3.12 fail at random under
#                                threads: CPython gh-106905)
#   HEAT_VERSION [27.0.1]        openstack-heat version to install
#   HEAT_CONSTRAINTS [<script dir>/heat-constraints.txt]  pip -c file; "none" = unpinned
#   HEAT_BIND_HOST [127.0.0.1]   listen address (keep it on loopback)
#   HEAT_PORT [8004]             listen port
#   HEAT_TENANT [admin]          tenant id used in the printed endpoint
#   HEAT_CONVERGENCE [true]      false = legacy engine (deprecated, ~2x faster)
#   HEAT_DEBUG [false]           true = debug logging (+ tracebacks in API errors)
#   HEAT_READY_TIMEOUT [180]     seconds to wait for the API to answer
#
# What this Heat can and cannot do (checked by backend/tests/openstack_heat.rs):
# * noauth, but with a service catalog: the noauth middleware answers every
#   request with etc/token.json (`[noauth] token_response`), a Keystone v3 token
#   body whose catalog lists this Heat as `orchestration`. That makes the types
#   that look for Heat in the catalog work for real: OS::Heat::SoftwareConfig,
#   CloudConfig, MultipartMime, StructuredConfig, SoftwareComponent, and
#   SoftwareDeployment / StructuredDeployment with `signal_transport: NO_SIGNAL`.
# * Still impossible without a Keystone: OS::Heat::WaitConditionHandle and
#   WaitCondition (and the AWS:: ones) fail at create ("public endpoint for
#   identity service not found"): their handle creates a Keystone user. So do
#   deployments with any other signal_transport, the default (CFN_SIGNAL)
#   included; heat.conf cannot make NO_SIGNAL the default.
# * Nova, Neutron, Cinder, ... resources are refused with 400 at create (not in
#   the catalog). Map them to OS::Heat::None in the request's environment
#   (OpenStackConfig::local_heat does this for every stack it creates).
#
# Network: pip talks to the package index; Heat itself only listens on
# HEAT_BIND_HOST:HEAT_PORT and talks to nothing (fake:// in-memory RPC, sqlite).
set -euo pipefail

HEAT_CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/occi-so/heat
HEAT_HOME=${HEAT_HOME:-$HEAT_CACHE}
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=python-pick.sh
. "$SCRIPT_DIR/python-pick.sh"
case "${1:-start}" in
  start|restart|reset)
    HEAT_PYTHON=${HEAT_PYTHON:-$(pick_python)}
    HEAT_VENV=${HEAT_VENV:-$HEAT_CACHE/venv-$(python_version_of "$HEAT_PYTHON")} ;;
  *) HEAT_PYTHON=${HEAT_PYTHON:-python3}; HEAT_VENV=${HEAT_VENV:-$HEAT_CACHE/venv} ;;
esac
HEAT_VERSION=${HEAT_VERSION:-27.0.1}
HEAT_BIND_HOST=${HEAT_BIND_HOST:-127.0.0.1}
HEAT_PORT=${HEAT_PORT:-8004}
HEAT_TENANT=${HEAT_TENANT:-admin}
HEAT_CONVERGENCE=${HEAT_CONVERGENCE:-true}
HEAT_DEBUG=${HEAT_DEBUG:-false}
HEAT_READY_TIMEOUT=${HEAT_READY_TIMEOUT:-180}
HEAT_CONSTRAINTS=${HEAT_CONSTRAINTS:-$SCRIPT_DIR/heat-constraints.txt}

PIDFILE=$HEAT_HOME/heat.pid
ETC=$HEAT_HOME/etc
LAUNCHER=$HEAT_HOME/heat_all.py
BASE_URL="http://$HEAT_BIND_HOST:$HEAT_PORT"

log() { echo "heat-local: $*" >&2; }

http_code() {  # http_code URL -> prints status code ("000" if nothing answers)
  curl -s -o /dev/null -m 5 -w '%{http_code}' "$1" 2>/dev/null || true
}

recorded_pid_alive() {
  [ -f "$PIDFILE" ] || return 1
  local pid; pid=$(cat "$PIDFILE")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  # guard against PID reuse: it must be our launcher
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "heat_all.py" || return 1
  return 0
}

ensure_venv() {
  if [ -x "$HEAT_VENV/bin/python" ] && [ -f "$HEAT_VENV/.heat-$HEAT_VERSION-installed" ]; then
    return 0
  fi
  log "creating venv $HEAT_VENV (openstack-heat==$HEAT_VERSION) — takes ~2 min"
  python_is_safe "$HEAT_PYTHON" || { log "$HEAT_PYTHON: openstack-heat 27 needs Python >= 3.11, and 3.11 before 3.11.8 or 3.12 before 3.12.2 fail at random under threads (CPython gh-106905)"; exit 1; }
  mkdir -p "$HEAT_HOME" "$(dirname "$HEAT_VENV")"
  [ -x "$HEAT_VENV/bin/python" ] || "$HEAT_PYTHON" -m venv "$HEAT_VENV"
  "$HEAT_VENV/bin/python" -m pip install -q --upgrade pip
  local cargs=()
  if [ "$HEAT_CONSTRAINTS" != none ] && [ -f "$HEAT_CONSTRAINTS" ] \
     && grep -qx "openstack-heat==$HEAT_VERSION" "$HEAT_CONSTRAINTS"; then
    cargs=(-c "$HEAT_CONSTRAINTS")
  fi
  "$HEAT_VENV/bin/python" -m pip install -q "${cargs[@]}" "openstack-heat==$HEAT_VERSION"
  touch "$HEAT_VENV/.heat-$HEAT_VERSION-installed"
}

write_config() {
  mkdir -p "$ETC"
  local share; share=$("$HEAT_VENV/bin/python" -c 'import sys; print(sys.prefix)')/etc/heat
  local tdir="$share/templates" edir="$share/environment.d"
  [ -d "$tdir" ] || { tdir=$ETC/templates; mkdir -p "$tdir"; }
  [ -d "$edir" ] || { edir=$ETC/environment.d; mkdir -p "$edir"; }

  cat >"$ETC/heat.conf" <<EOF
# generated by heat-local.sh — edits are overwritten on every start
[DEFAULT]
# in-memory RPC: API and engine must share one process (heat_all.py)
transport_url = fake://
# 'trusts' (default) makes the engine call Keystone on every stack store
deferred_auth_method = password
# long-lived dev instances collect many stacks
max_stacks_per_tenant = 10000
convergence_engine = $HEAT_CONVERGENCE
num_engine_workers = 1
host = heat-local
debug = $HEAT_DEBUG
log_file = $HEAT_HOME/heat.log
template_dir = $tdir
environment_dir = $edir

[database]
connection = sqlite:///$HEAT_HOME/heat.db

[paste_deploy]
flavor = noauth
api_paste_config = $ETC/api-paste.ini

[oslo_policy]
# noauth gives every request roles=[admin]; the new (2023+) default rules
# want role:reader/member, so fall back to the deprecated rules
enforce_new_defaults = false
enforce_scope = false

[noauth]
# a token body with a catalog that lists this Heat, so resource types that
# look for the orchestration service in the catalog are available
token_response = $ETC/token.json
EOF

  cat >"$ETC/token.json" <<EOF
{"token": {"methods": ["password"], "expires_at": "2999-12-31T00:00:00.000000Z",
 "issued_at": "2000-01-01T00:00:00.000000Z", "is_domain": false,
 "user": {"id": "admin", "name": "admin", "domain": {"id": "default", "name": "Default"}},
 "project": {"id": "$HEAT_TENANT", "name": "$HEAT_TENANT", "domain": {"id": "default", "name": "Default"}},
 "roles": [{"id": "admin", "name": "admin"}],
 "catalog": [{"type": "orchestration", "name": "heat", "id": "heat-local", "endpoints": [
   {"id": "heat-local-public", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "$BASE_URL/v1/$HEAT_TENANT"},
   {"id": "heat-local-internal", "interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": "$BASE_URL/v1/$HEAT_TENANT"},
   {"id": "heat-local-admin", "interface": "admin", "region": "RegionOne", "region_id": "RegionOne", "url": "$BASE_URL/v1/$HEAT_TENANT"}]}]}}
EOF

  # same filter/app definitions as the api-paste.ini shipped with heat,
  # reduced to the noauth pipeline
  cat >"$ETC/api-paste.ini" <<'EOF'
[composite:heat-api]
use = egg:Paste#urlmap
/: api
/healthcheck: healthcheck

[composite:api]
paste.composite_factory = heat.api:pipeline_factory
noauth = cors request_id faultwrap noauth context http_proxy_to_wsgi versionnegotiation apiv1app

[app:apiv1app]
paste.app_factory = heat.common.wsgi:app_factory
heat.app_factory = heat.api.openstack.v1:API

[app:healthcheck]
paste.app_factory = oslo_middleware:Healthcheck.app_factory

[filter:versionnegotiation]
paste.filter_factory = heat.common.wsgi:filter_factory
heat.filter_factory = heat.api.openstack:version_negotiation_filter

[filter:cors]
paste.filter_factory = oslo_middleware.cors:filter_factory
oslo_config_project = heat

[filter:faultwrap]
paste.filter_factory = heat.common.wsgi:filter_factory
heat.filter_factory = heat.api.openstack:faultwrap_filter

[filter:context]
paste.filter_factory = heat.common.context:ContextMiddleware_filter_factory

[filter:http_proxy_to_wsgi]
paste.filter_factory = oslo_middleware:HTTPProxyToWSGI.factory

[filter:noauth]
paste.filter_factory = heat.common.noauth:filter_factory

[filter:request_id]
paste.filter_factory = oslo_middleware.request_id:RequestId.factory
EOF

  cat >"$LAUNCHER" <<'EOF'
"""Single-process Heat (API + engine) for local testing (written by heat-local.sh).

openstack-heat 27 ships no `heat-all`/`heat-api` console scripts: the engine is
`heat-engine` (it forks its workers through cotyledon even for 1 worker) and
the API is only a WSGI app (`heat-wsgi-api`).  With oslo.messaging's in-memory
`fake://` transport both halves must live in the SAME process, so this starts
the EngineService directly (no launcher, no fork) and serves the paste app
with a threaded stdlib WSGI server.
"""
import os
import signal
import socketserver
import sys
import threading
from wsgiref import simple_server

from oslo_service import backend
backend.init_backend(backend.BackendType.THREADING)

from oslo_config import cfg  # noqa: E402
import oslo_i18n as i18n  # noqa: E402
from oslo_log import log as logging  # noqa: E402

from heat.common import config  # noqa: E402
from heat.common import messaging  # noqa: E402
from heat.engine import template  # noqa: E402
from heat.rpc import api as rpc_api  # noqa: E402
from heat import version  # noqa: E402

CONF = cfg.CONF


def _sqlite_serialize_transactions():
    """Make every SQLite transaction BEGIN IMMEDIATE, with a long busy wait.

    oslo.db emits a plain (deferred) BEGIN.  With the engine's many threads,
    two deferred transactions that both upgrade to a write lock make SQLite
    fail one at once with "database is locked" (no busy wait), which leaves
    stacks stuck *_IN_PROGRESS or turns a finished delete into DELETE_FAILED.
    Taking the write lock up front serialises transactions instead.
    """
    import sqlalchemy
    from sqlalchemy.engine import Engine

    @sqlalchemy.event.listens_for(Engine, "connect")
    def _busy_timeout(dbapi_con, con_record):
        if 'sqlite' in type(dbapi_con).__module__:
            dbapi_con.execute("PRAGMA busy_timeout = 60000")

    @sqlalchemy.event.listens_for(Engine, "begin", insert=True)
    def _begin_immediate(conn):
        if conn.dialect.name == 'sqlite' and 'in_transaction' not in conn.info:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info['in_transaction'] = True  # oslo.db's BEGIN is skipped


class ThreadingWSGIServer(socketserver.ThreadingMixIn,
                          simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class LoggingHandler(simple_server.WSGIRequestHandler):
    def log_message(self, fmt, *args):
        logging.getLogger('heat-all.access').info(
            '%s %s', self.address_string(), fmt % args)


def main():
    host = os.environ.get('HEAT_BIND_HOST', '127.0.0.1')
    port = int(os.environ.get('HEAT_PORT', '8004'))
    _sqlite_serialize_transactions()
    i18n.enable_lazy()
    logging.register_options(CONF)
    CONF(sys.argv[1:], project='heat', prog='heat-api',
         version=version.version_info.version_string())
    logging.setup(CONF, 'heat-all')
    config.set_config_defaults()
    messaging.setup()
    config.startup_sanity_check()
    log = logging.getLogger('heat-all')

    mgr = template._get_template_extension_manager()
    if not mgr or not mgr.names():
        sys.exit("ERROR: No template format plugins registered")

    from heat.engine import service as engine
    srv = engine.EngineService(CONF.host, rpc_api.ENGINE_TOPIC)
    srv.start()
    log.info('engine started in-process (engine_id=%s)', srv.engine_id)

    app = config.load_paste_app('heat-api')
    httpd = simple_server.make_server(host, port, app,
                                      server_class=ThreadingWSGIServer,
                                      handler_class=LoggingHandler)

    def _term(signum, frame):
        log.info('signal %s: shutting down', signum)
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _term)
    signal.signal(signal.SIGINT, _term)
    log.info('heat-api listening on http://%s:%d', host, port)
    print('heat-all: listening on http://%s:%d' % (host, port), flush=True)
    httpd.serve_forever()
    httpd.server_close()
    try:
        srv.stop()
    except Exception:  # noqa
        log.exception('engine stop failed')
    os._exit(0)


if __name__ == '__main__':
    main()
EOF
}

print_env() {
  echo "export HEAT_URL=$BASE_URL/v1/$HEAT_TENANT"
  echo "export HEAT_BASE_URL=$BASE_URL"
  echo "export HEAT_TENANT=$HEAT_TENANT"
  echo "export HEAT_PID=$(cat "$PIDFILE" 2>/dev/null || true)"
}

do_start() {
  if recorded_pid_alive; then
    log "already running (pid $(cat "$PIDFILE"))"
    echo "HEAT_URL=$BASE_URL/v1/$HEAT_TENANT"
    return 0
  fi
  local busy; busy=$(http_code "$BASE_URL/")
  if [ "$busy" != 000 ]; then
    log "something else already answers on $BASE_URL (HTTP $busy); pick another HEAT_PORT"
    return 1
  fi
  ensure_venv
  write_config
  # db_sync takes ~3 s: skip it for a database this version already migrated
  local stamp=$HEAT_HOME/heat.db.synced-$HEAT_VERSION
  if [ ! -s "$HEAT_HOME/heat.db" ] || [ ! -f "$stamp" ]; then
    rm -f "$HEAT_HOME"/heat.db.synced-*
    "$HEAT_VENV/bin/heat-manage" --config-file "$ETC/heat.conf" db_sync \
      >"$HEAT_HOME/db_sync.log" 2>&1 || { cat "$HEAT_HOME/db_sync.log" >&2; return 1; }
    # SQLite reuses the highest rowid once its row is deleted, and Heat's
    # purge of one stack's unreferenced resource_properties_data rows can
    # then delete a row another stack's resource has just been given: that
    # stack answers every GET with 404 "ResourcePropertiesData with id ...
    # not found" for good (seen with concurrent tests). AUTOINCREMENT never
    # reuses an id, as MySQL's auto_increment does not.
    "$HEAT_VENV/bin/python" - "$HEAT_HOME/heat.db" <<'PY' || return 1
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE rpd_autoincrement (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    data TEXT,
    encrypted BOOLEAN,
    created_at DATETIME,
    updated_at DATETIME
);
INSERT INTO rpd_autoincrement SELECT id, data, encrypted, created_at, updated_at FROM resource_properties_data;
DROP TABLE resource_properties_data;
ALTER TABLE rpd_autoincrement RENAME TO resource_properties_data;
COMMIT;
""")
PY
    touch "$stamp"
  fi

  local t0; t0=$(date +%s.%N)
  HEAT_BIND_HOST=$HEAT_BIND_HOST HEAT_PORT=$HEAT_PORT PYTHONWARNINGS=ignore \
    nohup "$HEAT_VENV/bin/python" "$LAUNCHER" --config-file "$ETC/heat.conf" \
    >"$HEAT_HOME/heat-all.out" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local deadline=$(( $(date +%s) + HEAT_READY_TIMEOUT ))
  # ready = API up AND engine answers RPC AND DB usable
  until [ "$(http_code "$BASE_URL/v1/$HEAT_TENANT/stacks")" = 200 ]; do
    if ! recorded_pid_alive; then
      log "heat died during startup; last output:"
      tail -n 30 "$HEAT_HOME/heat-all.out" >&2 || true
      tail -n 30 "$HEAT_HOME/heat.log" >&2 || true
      rm -f "$PIDFILE"
      return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "not ready after ${HEAT_READY_TIMEOUT}s (see $HEAT_HOME/heat.log)"
      return 1
    fi
    sleep 0.2
  done
  local t1; t1=$(date +%s.%N)
  log "ready in $(awk "BEGIN{printf \"%.1f\", $t1-$t0}")s, pid $(cat "$PIDFILE"), log $HEAT_HOME/heat.log"
  echo "HEAT_URL=$BASE_URL/v1/$HEAT_TENANT"
}

do_stop() {
  if ! recorded_pid_alive; then
    log "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  local pid; pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  for _ in $(seq 1 75); do
    recorded_pid_alive || break
    sleep 0.2
  done
  if recorded_pid_alive; then
    log "pid $pid ignored SIGTERM for 15s, sending SIGKILL"
    kill -KILL "$pid" || true
    sleep 0.5
  fi
  rm -f "$PIDFILE"
  log "stopped pid $pid"
}

case "${1:-start}" in
  start) do_start ;;
  stop) do_stop ;;
  restart) do_stop; do_start ;;
  reset) do_stop; rm -f "$HEAT_HOME/heat.db"; do_start ;;
  status)
    if recorded_pid_alive; then echo "running pid $(cat "$PIDFILE") $BASE_URL"; else echo "not running"; exit 1; fi ;;
  env) recorded_pid_alive && print_env ;;
  *) echo "usage: $0 [start|stop|status|restart|reset|env]" >&2; exit 2 ;;
esac
