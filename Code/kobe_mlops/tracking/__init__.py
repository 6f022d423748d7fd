"""MLflow set-up shared by every step.

By default runs go to a SQLite store in the workspace (``sqlite:///<workspace>/mlflow.db``,
MLflow's own default location) with artifacts under ``<workspace>/mlruns``. Setting
``MLFLOW_TRACKING_URI`` sends everything to another store or tracking server instead.
Every run of one ``run_all.py`` invocation carries the same ``kobe.invocation_id`` tag.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
from mlflow.tracking import MlflowClient

from kobe_mlops import config

INVOCATION_ENV = "KOBE_INVOCATION_ID"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{config.workspace_paths().mlflow_db}"


def is_local_store(uri: str) -> bool:
    return uri.startswith("sqlite:")


def configure(experiment_name: str = config.EXPERIMENT_NAME) -> str:
    """Point MLflow at the project's store and experiment; return the experiment id."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        artifact_location = None
        if is_local_store(uri):
            # Without this, artifacts land in ./mlruns relative to whatever the cwd is.
            artifact_location = config.workspace_paths().mlflow_artifacts_dir.as_uri()
        experiment_id = client.create_experiment(experiment_name, artifact_location=artifact_location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def invocation_id() -> str:
    """The id shared by the runs of one pipeline invocation (one per process when run alone)."""
    if INVOCATION_ENV not in os.environ:
        os.environ[INVOCATION_ENV] = uuid.uuid4().hex[:12]
    return os.environ[INVOCATION_ENV]


def _git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=config.PROJECT_ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


@contextmanager
def start_run(step: str, **extra_tags: str) -> Iterator[mlflow.ActiveRun]:
    """Open the named run of a pipeline step (``aquisicao``, ...) or of the retraining loop (``rollback``, ...)."""
    from kobe_mlops.tracking.recovery import process_tags  # so a dead process's RUNNING runs can be failed

    configure()
    tags = {config.INVOCATION_TAG: invocation_id(), "kobe.step": step, **process_tags(), **extra_tags}
    commit = _git_commit()
    if commit:
        tags["kobe.git_commit"] = commit
    with mlflow.start_run(run_name=config.ALL_RUN_NAMES[step], tags=tags) as run:
        yield run
