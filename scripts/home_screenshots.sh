#!/usr/bin/env bash
# Screenshots of each role's home at 1366 px and 375 px into docs/screenshots/ (shown in the README), taken by the
# browser test that checks them. Needs PostgreSQL (DATABASE_URL) and Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/dataops}"
DATABASE_URL="$DATABASE_URL" DJANGO_SECRET_KEY="${DJANGO_SECRET_KEY:-screenshots}" \
  DATAOPS_SCREENSHOTS_DIR="$PWD/docs/screenshots" \
  .venv/bin/python -m pytest tests/console/test_browser_homes.py -q -p no:cacheprovider -k "desktop_and_phone"
