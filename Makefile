# Shortcuts for the commands in README.md. `make help` lists them.
PY := .venv/bin/python

.PHONY: help setup run run-fast test ui clean
help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup:  ## create .venv and install the pinned stack and the package
	python3.11 -m venv .venv
	.venv/bin/pip install -e .
	.venv/bin/nbstripout --install

run:  ## run the whole pipeline (add ARGS="--data-source ../shared/data" offline)
	$(PY) run_all.py $(ARGS)

run-fast:  ## smoke run with small grids
	$(PY) run_all.py --fast $(ARGS)

test:  ## run the test suite (what CI runs)
	$(PY) -m pytest

ui:  ## browse runs and registered models in the MLflow UI on 127.0.0.1:5000
	.venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1

clean:  ## delete everything the pipeline generated (data/, mlflow.db, mlruns/, reports/)
	rm -rf data mlflow.db mlruns reports
