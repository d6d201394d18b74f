#!/usr/bin/env bash
# `make demo`: start Airflow (opt out: DEMO_AIRFLOW=0) while the database is migrated and the demo seeded, serve the
# admin as soon as the database is migrated, then run the three jobs (through Airflow when it runs). Ctrl-C (or any exit)
# stops everything this script started: the admin server, Airflow and the emulators it found stopped; emulators
# that were already running are left alone.
#
# Settings (environment): HOST (127.0.0.1), PORT (8000), DEMO_AIRFLOW (1), DEMO_SALES_ROWS (1000000),
# AIRFLOW_PORT (8080), and everything scripts/airflow.sh and the project's settings read.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${VENV:-$ROOT/.venv}/bin"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/var/airflow}"
cd "$ROOT"

before="$("$BIN/python" manage.py demo_jobs running)"
airflow_started=0
airflow_start_pid=""
server_pid=""
stopping=0

stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  trap - INT TERM
  echo ""
  echo "== stopping what the demo started"
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    echo "stopped the admin server (pid $server_pid)"
  fi
  if [ -n "$airflow_start_pid" ] && kill -0 "$airflow_start_pid" 2>/dev/null; then
    kill -TERM "$airflow_start_pid" 2>/dev/null || true  # a start still under way; its components stop below
    wait "$airflow_start_pid" 2>/dev/null || true
  fi
  if [ "$airflow_started" = 1 ]; then bash "$ROOT/scripts/airflow.sh" stop || true; fi
  local started=()
  for name in looker bigquery sheets; do
    case " $before " in *" $name "*) ;; *) started+=("$name") ;; esac
  done
  if [ "${#started[@]}" -gt 0 ]; then "$BIN/python" manage.py demo_jobs stop "${started[@]}" || true; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

if [ "${DEMO_AIRFLOW:-1}" != 0 ]; then
  # Its address and credentials first (the admin server gets them), then it comes up in the background.
  exports="$(bash "$ROOT/scripts/airflow.sh" env)" || { echo "!! Airflow could not be installed (DEMO_AIRFLOW=0 skips it)"; exit 1; }
  eval "$exports"
  export AIRFLOW_API_URL AIRFLOW_USERNAME AIRFLOW_PASSWORD
  # The admin's Airflow links open the UI; the jobs' DAG runs show there.
  export AIRFLOW_UI_URL="${AIRFLOW_UI_URL:-$AIRFLOW_API_URL}"
  echo "== starting Airflow in the background (log: $AIRFLOW_HOME/logs/start.log)"
  bash "$ROOT/scripts/airflow.sh" start >"$AIRFLOW_HOME/logs/start.log" 2>&1 &
  airflow_start_pid=$!
  airflow_started=1
fi

"$BIN/python" manage.py migrate --no-input -v0
# The admin answers while the demo seeds (the million sales rows take a minute or two); the system checks ran with
# the migration.
"$BIN/python" manage.py runserver --noreload --skip-checks "$HOST:$PORT" &
server_pid=$!
echo "== the admin answers at http://$HOST:$PORT/admin/ (its users and passwords follow once the demo is seeded)"
"$BIN/python" manage.py demo_setup --sales-rows "${DEMO_SALES_ROWS:-1000000}"

airflow_up=0
if [ -n "$airflow_start_pid" ]; then
  if wait "$airflow_start_pid"; then
    airflow_up=1
  else
    echo "!! Airflow did not start (below); the jobs run without it and the admin still runs"
  fi
  airflow_start_pid=""
  cat "$AIRFLOW_HOME/logs/start.log"
fi

# The demo's cleanup plan is above CLEANUP_APPROVAL_THRESHOLD: it waits in Approvals for a second Content Admin.
if [ "$airflow_up" = 1 ]; then
  "$BIN/python" manage.py demo_jobs run || echo "!! a demo job could not be started (see above); the admin still runs"
else
  env -u AIRFLOW_API_URL "$BIN/python" manage.py demo_jobs run \
    || echo "!! a demo job could not be started (see above); the admin still runs"
fi

echo ""
echo "Admin: http://$HOST:$PORT/admin/  (users and passwords above)"
[ "$airflow_up" = 1 ] && echo "Airflow: $AIRFLOW_API_URL/  (user $AIRFLOW_USERNAME, password $AIRFLOW_PASSWORD)"
echo "Ctrl-C stops the admin server, Airflow and the emulators the demo started."
wait "$server_pid"
