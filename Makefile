# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: venv demo test test-fast lint bench-looker bench-quality clean airflow airflow-stop

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

## demo: install, migrate SQLite, seed the emulators (Looker, BigQuery 1M sales rows, Sheets), one user per role,
## run the cleanup and a sales report once, serve the admin
demo: venv
	$(BIN)/python manage.py migrate --no-input -v0
	$(BIN)/python manage.py demo_setup
	@# The demo's cleanup plan is above CLEANUP_APPROVAL_THRESHOLD: it waits in Approvals for a second Content Admin
	@# (log in as platform_admin to approve what content_admin asked for).
	$(BIN)/python manage.py run_job looker_cleanup --param max_deletions=500 --principal cli:content_admin || true
	$(BIN)/python manage.py run_job sales_report --param start=$$(date -d '30 days ago' +%F) \
		--param end=$$(date -d yesterday +%F) --principal cli:analyst || true
	@echo ""
	@echo "Admin: http://$(HOST):$(PORT)/admin/  (users and passwords above; Ctrl-C stops the server)"
	@echo "Airflow: 'make airflow' starts Airflow 3.3 with this project's DAGs and prints AIRFLOW_API_URL/USERNAME/PASSWORD;"
	@echo "         export those before 'make demo' and every trigger runs through Airflow ('make airflow-stop' stops it)."
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## test: install (venv, chromium), start PostgreSQL/Redis if needed, run the suite on SQLite then on PostgreSQL
test: venv
	bash scripts/test.sh

## test-fast: the SQLite pass only, no browser
test-fast: venv
	$(BIN)/python -m pytest -q -m "not postgres and not redis and not browser"

lint: venv
	$(BIN)/ruff check .

bench-looker: venv
	$(BIN)/python bench/looker_cleanup_bench.py

## bench-quality: the quality suite against Great Expectations and pandera (their own venv, .venv-bench)
bench-quality: venv
	test -x .venv-bench/bin/python || $(PYTHON) -m venv .venv-bench
	.venv-bench/bin/python -m pip install -q -r requirements-bench.txt
	PYTHONPATH=. .venv-bench/bin/python bench/quality_bench.py --rows 1000000 5000000

## airflow: Airflow 3.3 in .venv-airflow (api-server, scheduler, dag-processor on 127.0.0.1:$${AIRFLOW_PORT:-8080})
## running dags/ against this project's venv and settings; prints the AIRFLOW_* variables for the control plane
airflow: venv
	bash scripts/airflow.sh start

## airflow-stop: SIGTERM each Airflow component started by `make airflow`
airflow-stop:
	bash scripts/airflow.sh stop

clean:
	rm -rf var/ .pytest_cache
