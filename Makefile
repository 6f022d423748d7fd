# Shortcuts for the commands in README.md. `make help` lists them.
PY := .venv/bin/python

.PHONY: help setup run run-fast test test-quick lint format ui clean stack-start stack-status stack-stop
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup:  ## create .venv, install the pinned stack, the package and its dev tools, and the git hooks
	python3.11 -m venv .venv
	.venv/bin/pip install -e '.[dev]'
	.venv/bin/nbstripout --install
	.venv/bin/pre-commit install

run:  ## run the whole pipeline (add ARGS="--data-source ../shared/data" offline)
	$(PY) run_all.py $(ARGS)

run-fast:  ## smoke run with small grids
	$(PY) run_all.py --fast $(ARGS)

test:  ## run the test suite (what CI runs)
	$(PY) -m pytest

test-quick:  ## the quick loop: every test but the end-to-end ones (no pipeline run)
	$(PY) -m pytest -m "not e2e"

lint:  ## ruff lint, ruff format check and the import layers (what CI runs first)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

format:  ## format the code and apply ruff's safe fixes
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

ui:  ## browse runs and registered models in the MLflow UI on 127.0.0.1:5000
	MLFLOW_DISABLE_TELEMETRY=true .venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1

stack-start:  ## start PostgreSQL + an MLflow tracking server on 127.0.0.1:5000 (needs '.[scale]')
	$(PY) -m kobe_mlops.tracking_stack start

stack-status:  ## say whether that stack runs, and the MLFLOW_TRACKING_URI to export
	$(PY) -m kobe_mlops.tracking_stack status

stack-stop:  ## stop the tracking server and PostgreSQL (runs are kept; add ARGS=--purge to delete them)
	$(PY) -m kobe_mlops.tracking_stack stop $(ARGS)

clean:  ## delete everything the pipeline generated (data/, mlflow.db, mlruns/, reports/)
	rm -rf data mlflow.db mlruns reports
