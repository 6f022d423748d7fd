"""MLflow set-up shared by every step: the store's URI, the experiment, named and tagged runs.

The store is ``sqlite:///<workspace>/mlflow.db`` (artifacts in ``<workspace>/mlruns``) unless
``MLFLOW_TRACKING_URI`` is set; a relative SQLite path is taken from the project root.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from kobe_mlops import config

INVOCATION_ENV = "KOBE_INVOCATION_ID"
SQLITE_PREFIX = "sqlite:///"


def _sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` URI, a relative one taken from the project root; None for another store."""
    return config.project_path(uri[len(SQLITE_PREFIX) :]) if uri.startswith(SQLITE_PREFIX) else None


def tracking_uri() -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"{SQLITE_PREFIX}{config.workspace_paths().mlflow_db}"
    return f"{SQLITE_PREFIX}{path}" if (path := _sqlite_file(uri)) else uri


def is_local_store(uri: str) -> bool:
    return uri.startswith("sqlite:")


def store_exists(uri: str | None = None) -> bool:
    """False for a local SQLite store whose file is absent (opening it would create it)."""
    path = _sqlite_file(uri or tracking_uri())
    return path is None or path.is_file()


def use_project_store() -> str:
    """Point this process's MLflow at the project's store (an error when a local one is missing, never
    a new empty one) and PyCaret's log at the workspace (loading a model imports PyCaret); return the URI."""
    uri = tracking_uri()
    if not store_exists(uri):
        raise FileNotFoundError(
            f"No MLflow store at {uri} (workspace {config.workspace_paths().root}, set by $KOBE_WORKSPACE or "
            "$MLFLOW_TRACKING_URI, else the project root): run `python run_all.py` first."
        )
    mlflow.set_tracking_uri(uri)
    config.route_pycaret_log()
    return uri


def configure(experiment_name: str = config.EXPERIMENT_NAME) -> str:
    """Point MLflow at the project's store and experiment; return the experiment id."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    config.route_pycaret_log()  # the step may load a model, which imports PyCaret
    client = MlflowClient(uri)
    if experiment := client.get_experiment_by_name(experiment_name):
        experiment_id = experiment.experiment_id
    else:  # a local store's artifacts go to the workspace, not to ./mlruns of whatever the cwd is
        local = config.workspace_paths().mlflow_artifacts_dir.as_uri() if is_local_store(uri) else None
        experiment_id = client.create_experiment(experiment_name, artifact_location=local)
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def invocation_id() -> str:
    """The id shared by the runs of one pipeline invocation (one per process when run alone)."""
    return os.environ.setdefault(INVOCATION_ENV, uuid.uuid4().hex[:12])


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):  # no git, not a repository, or too slow
        return None
    return result.stdout.strip() or None


@contextmanager
def start_run(step: str, **extra_tags: str) -> Iterator[mlflow.ActiveRun]:
    """Open the named run of a pipeline step (``aquisicao``, ...) or of the retraining loop (``rollback``, ...)."""
    from kobe_mlops.tracking.recovery import process_tags  # so a dead process's RUNNING runs can be failed

    configure()
    tags = {config.INVOCATION_TAG: invocation_id(), "kobe.step": step, **process_tags(), **extra_tags}
    if commit := _git_commit():
        tags["kobe.git_commit"] = commit
    with mlflow.start_run(run_name=config.ALL_RUN_NAMES[step], tags=tags) as run:
        yield run
