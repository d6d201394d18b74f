#!/usr/bin/env bash
# The test command behind `make test` and .ci/run. Installs what the tests need beyond the venv (Debian's
# chromium for the browser test), starts PostgreSQL and Redis when they are not running, then runs the suite
# twice: on SQLite (the embedded default) and on PostgreSQL (production's database, with the audit trigger,
# a real Celery worker on Redis and the browser test).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }

if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing Debian's chromium for the browser test"
  { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >/dev/null; } \
    || echo "!! could not install chromium: browser tests will skip (or fail under CI=true)"
fi

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "== starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break; sleep 1; done
fi
if ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "== starting Redis"
  as_root mkdir -p /var/lib/redis /var/log/redis || true
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  sleep 1
fi

# The Airflow e2e tests start their own Airflow (with the test database and emulators in its env) from
# .venv-airflow; install it here once (about 40 s).
bash scripts/airflow.sh install || echo "!! could not install Airflow: airflow tests will skip (or fail under CI=true)"

export PYTHONDONTWRITEBYTECODE=1
# Known vulnerabilities fail the run; an unreachable vulnerability database is said loudly (never a silent pass)
# and fails it too when DEPENDENCY_AUDIT_REQUIRED=true (issue 12).
echo "== dependency audit (pip-audit on requirements.txt)"
audit_rc=0
"$BIN/python" scripts/dependency_audit.py || audit_rc=$?
if [ "$audit_rc" = 1 ] || { [ "$audit_rc" != 0 ] && [ "${DEPENDENCY_AUDIT_REQUIRED:-false}" = true ]; }; then
  exit 1
fi
echo "== pass 1/2: SQLite (embedded default)"
env -u DATABASE_URL -u CELERY_BROKER_URL "$BIN/python" -m pytest -m "not postgres" -p no:cacheprovider "$@"
echo "== pass 2/2: PostgreSQL ${DATAOPS_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/dataops}"
DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-test-only-secret-key}" DATABASE_URL="${DATAOPS_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/dataops}" \
  env -u CELERY_BROKER_URL "$BIN/python" -m pytest -p no:cacheprovider "$@"
