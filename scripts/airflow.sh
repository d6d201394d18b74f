#!/usr/bin/env bash
# A local Airflow 3.3 for this project: `scripts/airflow.sh install|env|start|stop|status`.
#
# install: Airflow in its own venv (AIRFLOW_VENV, default .venv-airflow; about 40 s and 290 MB).
# start:   `airflow db migrate`, then api-server, scheduler and dag-processor as separate processes on loopback
#          (SQLite + LocalExecutor, parallelism 4), with this project's dags/ and the env the DAG tasks need
#          (DATAOPS_PYTHON, DATAOPS_PROJECT_DIR; the tasks inherit this shell's environment, so DATABASE_URL
#          and friends set here reach `manage.py run_job`). Waits until the API answers.
# env:     install and configure only (no start): print the AIRFLOW_* exports the control plane needs, so a caller
#          can start its own processes with them while Airflow comes up (scripts/demo.sh does).
# stop:    SIGTERM to each component's PID, waiting for each (SIGKILL to its group after 30 s).
#
# Settings (environment): AIRFLOW_HOME (var/airflow), AIRFLOW_PORT (8080), AIRFLOW_PASSWORD (generated once
# and kept in $AIRFLOW_HOME/passwords.json), DATAOPS_RETRY_DELAY_S (the DAGs' first retry delay).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${AIRFLOW_VENV:-$ROOT/.venv-airflow}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$ROOT/var/airflow}"
PORT="${AIRFLOW_PORT:-8080}"
PIDS="$AIRFLOW_HOME/pids"
COMPONENTS=(api-server scheduler dag-processor)

install() {
  if [ -x "$VENV/bin/airflow" ]; then return 0; fi
  echo "== installing apache-airflow 3.3.2 in $VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q "apache-airflow==3.3.2"
}

configure() {
  mkdir -p "$AIRFLOW_HOME/logs" "$PIDS"
  umask 077
  [ -s "$AIRFLOW_HOME/secrets.env" ] || {
    printf 'JWT_SECRET=%s\nSECRET_KEY=%s\n' "$(head -c 48 /dev/urandom | base64 -w0)$(head -c 48 /dev/urandom | base64 -w0)" \
      "$(head -c 32 /dev/urandom | base64 -w0)" >"$AIRFLOW_HOME/secrets.env"
  }
  # shellcheck disable=SC1091
  . "$AIRFLOW_HOME/secrets.env"
  local password="${AIRFLOW_PASSWORD:-}"
  if [ -z "$password" ] && [ -s "$AIRFLOW_HOME/passwords.json" ]; then
    password="$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["admin"])' "$AIRFLOW_HOME/passwords.json")"
  fi
  password="${password:-$(head -c 18 /dev/urandom | base64 -w0 | tr '+/' '-_')}"
  "$VENV/bin/python" -c 'import json,sys; json.dump({"admin": sys.argv[2]}, open(sys.argv[1], "w"))' \
    "$AIRFLOW_HOME/passwords.json" "$password"
  umask 022
  export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}"
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__CORE__EXECUTOR=LocalExecutor
  export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
  export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-False}"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
  export AIRFLOW__API__HOST=127.0.0.1
  export AIRFLOW__API__PORT="$PORT"
  export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT"
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"
  export AIRFLOW__API_AUTH__JWT_SECRET="$JWT_SECRET"
  export AIRFLOW__API__SECRET_KEY="$SECRET_KEY"
  export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
  export AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK=False
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
  # How the DAG tasks reach this project (see dags/dataops_jobs.py).
  export DATAOPS_PROJECT_DIR="${DATAOPS_PROJECT_DIR:-$ROOT}"
  export DATAOPS_PYTHON="${DATAOPS_PYTHON:-$ROOT/.venv/bin/python}"
  AIRFLOW_PASSWORD="$password"
}

running() { [ -s "$PIDS/$1.pid" ] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

start() {
  install
  configure
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then echo "!! $c is already running (pid $(cat "$PIDS/$c.pid")): make airflow-stop first" >&2; exit 1; fi
  done
  # Every task starts `manage.py run_job` in a new interpreter: with PYTHONDONTWRITEBYTECODE set (common in
  # containers and CI) and no compiled project, each of them would compile the project's modules again (issue 15).
  "$DATAOPS_PYTHON" -m compileall -q -j 0 -x '/(\.venv[^/]*|var|node_modules)/' "$DATAOPS_PROJECT_DIR" >/dev/null 2>&1 || true
  echo "== airflow db migrate ($AIRFLOW_HOME)"
  "$VENV/bin/airflow" db migrate >"$AIRFLOW_HOME/logs/db-migrate.log" 2>&1 || { tail -20 "$AIRFLOW_HOME/logs/db-migrate.log"; exit 1; }
  local -A args=([api-server]="api-server --host 127.0.0.1 --port $PORT --workers 1" [scheduler]="scheduler --skip-serve-logs" [dag-processor]="dag-processor")
  for c in "${COMPONENTS[@]}"; do
    # shellcheck disable=SC2086
    setsid "$VENV/bin/airflow" ${args[$c]} >"$AIRFLOW_HOME/logs/$c.log" 2>&1 </dev/null &
    echo $! >"$PIDS/$c.pid"
  done
  for _ in $(seq 1 120); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/v2/monitor/health" 2>/dev/null; then break; fi
    for c in "${COMPONENTS[@]}"; do
      running "$c" || { echo "!! $c died:" >&2; tail -30 "$AIRFLOW_HOME/logs/$c.log" >&2; stop; exit 1; }
    done
    sleep 0.5
  done
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/api/v2/monitor/health" || { echo "!! the API did not come up" >&2; stop; exit 1; }
  echo "Airflow 3.3 is up: http://127.0.0.1:$PORT/ (user admin, password in $AIRFLOW_HOME/passwords.json)"
  echo "Point the control plane at it:"
  echo "  export AIRFLOW_API_URL=http://127.0.0.1:$PORT AIRFLOW_USERNAME=admin AIRFLOW_PASSWORD='$AIRFLOW_PASSWORD'"
}

stop() {
  for c in "${COMPONENTS[@]}"; do
    [ -s "$PIDS/$c.pid" ] || continue
    local pid; pid="$(cat "$PIDS/$c.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then
        echo "!! $c (pid $pid) ignored SIGTERM for 30 s: killing its process group" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
      fi
      echo "stopped $c (pid $pid)"
    fi
    rm -f "$PIDS/$c.pid"
  done
}

status() {
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then echo "$c: running (pid $(cat "$PIDS/$c.pid"))"; else echo "$c: stopped"; fi
  done
}

print_env() {
  install >&2
  configure
  echo "export AIRFLOW_API_URL=http://127.0.0.1:$PORT AIRFLOW_USERNAME=admin AIRFLOW_PASSWORD='$AIRFLOW_PASSWORD'"
}

case "${1:-}" in
  install) install ;;
  env) print_env ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|env|start|stop|status" >&2; exit 2 ;;
esac
