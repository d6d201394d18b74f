#!/usr/bin/env bash
# `make demo`: migrate, seed, start Airflow (opt out: DEMO_AIRFLOW=0), run the three jobs (through Airflow when it
# runs), serve the admin. Ctrl-C (or any exit) stops everything this script started: the admin server, Airflow
# and the emulators it found stopped; emulators that were already running are left alone.
#
# Settings (environment): HOST (127.0.0.1), PORT (8000), DEMO_AIRFLOW (1), DEMO_SALES_ROWS (1000000),
# AIRFLOW_PORT (8080), and everything scripts/airflow.sh and the project's settings read.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${VENV:-$ROOT/.venv}/bin"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
cd "$ROOT"

before="$("$BIN/python" manage.py demo_jobs running)"
airflow_started=0
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
  if [ "$airflow_started" = 1 ]; then bash "$ROOT/scripts/airflow.sh" stop || true; fi
  local started=()
  for name in looker bigquery sheets; do
    case " $before " in *" $name "*) ;; *) started+=("$name") ;; esac
  done
  if [ "${#started[@]}" -gt 0 ]; then "$BIN/python" manage.py demo_jobs stop "${started[@]}" || true; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

"$BIN/python" manage.py migrate --no-input -v0
"$BIN/python" manage.py demo_setup --sales-rows "${DEMO_SALES_ROWS:-1000000}"

if [ "${DEMO_AIRFLOW:-1}" != 0 ]; then
  out="$(bash "$ROOT/scripts/airflow.sh" start)" || { echo "$out"; exit 1; }
  airflow_started=1
  echo "$out"
  exports="$(printf '%s\n' "$out" | grep -E '^\s*export AIRFLOW_API_URL=' | sed 's/^ *//')"
  eval "$exports"
  export AIRFLOW_API_URL AIRFLOW_USERNAME AIRFLOW_PASSWORD
  # The admin's Airflow links open the UI; the jobs' DAG runs show there.
  export AIRFLOW_UI_URL="${AIRFLOW_UI_URL:-$AIRFLOW_API_URL}"
fi

# The demo's cleanup plan is above CLEANUP_APPROVAL_THRESHOLD: it waits in Approvals for a second Content Admin.
"$BIN/python" manage.py demo_jobs run || echo "!! a demo job could not be started (see above); the admin still runs"

echo ""
echo "Admin: http://$HOST:$PORT/admin/  (users and passwords above)"
[ "$airflow_started" = 1 ] && echo "Airflow: $AIRFLOW_API_URL/  (user $AIRFLOW_USERNAME, password $AIRFLOW_PASSWORD)"
echo "Ctrl-C stops the admin server, Airflow and the emulators the demo started."
"$BIN/python" manage.py runserver --noreload "$HOST:$PORT" &
server_pid=$!
wait "$server_pid"
