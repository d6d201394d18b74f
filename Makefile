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

## demo: install, migrate SQLite, seed the emulators (Looker, BigQuery sales rows, Sheets, a sync target), one user
## per role, start Airflow 3.3 (opt out: DEMO_AIRFLOW=0), run the cleanup, a sales report and a sheets sync through
## it, serve the admin. Ctrl-C stops everything the demo started (server, Airflow, emulators): scripts/demo.sh
demo: venv
	HOST=$(HOST) PORT=$(PORT) bash scripts/demo.sh

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
