"""MLflow set-up (kobe_mlops.tracking): the store's URI, the experiment, named and tagged runs."""

import os
import re

import mlflow
import pytest
from mlflow import MlflowClient

from conftest import copy_empty_store
from kobe_mlops import config, tracking

APPLICATION = config.RUN_NAMES["aplicacao"]


def test_the_default_store_is_sqlite_in_the_workspace_and_the_environment_overrides_it(
    mlflow_workspace, monkeypatch, tmp_path
):
    assert tracking.tracking_uri() == f"sqlite:///{mlflow_workspace.resolve() / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.tracking_uri() == "http://127.0.0.1:5000"
    assert tracking.is_local_store("sqlite:///x.db") and not tracking.is_local_store("http://127.0.0.1:5000")
    monkeypatch.chdir(tmp_path)  # a relative SQLite store is taken from the project root, not the cwd
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")  # as in the README's serving command
    assert tracking.tracking_uri() == f"sqlite:///{config.PROJECT_ROOT / 'mlflow.db'}"


def test_use_project_store_points_mlflow_at_the_workspace_store_and_never_creates_one(mlflow_workspace, monkeypatch):
    kernel_folder = mlflow_workspace / "notebooks"
    kernel_folder.mkdir()
    monkeypatch.chdir(kernel_folder)
    monkeypatch.delenv(config.PYCARET_LOG_ENV, raising=False)
    assert tracking.use_project_store() == f"sqlite:///{mlflow_workspace.resolve() / 'mlflow.db'}"
    assert mlflow.get_tracking_uri() == tracking.tracking_uri()
    assert os.environ[config.PYCARET_LOG_ENV] == str(mlflow_workspace.resolve() / "reports" / "pycaret.log")
    (mlflow_workspace / "mlflow.db").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(mlflow_workspace.resolve() / "mlflow.db"))):
        tracking.use_project_store()
    assert not (mlflow_workspace / "mlflow.db").exists() and not list(kernel_folder.iterdir())


def test_configure_creates_the_experiment_once_with_artifacts_in_the_workspace(mlflow_workspace):
    first = tracking.configure()
    assert tracking.configure() == first
    assert mlflow.get_tracking_uri() == tracking.tracking_uri()
    experiment = MlflowClient(tracking.tracking_uri()).get_experiment(first)
    assert experiment.name == config.EXPERIMENT_NAME
    assert experiment.artifact_location == (mlflow_workspace.resolve() / "mlruns").as_uri()


def test_configure_follows_mlflow_tracking_uri(mlflow_workspace, monkeypatch, empty_mlflow_db):
    elsewhere = copy_empty_store(empty_mlflow_db, mlflow_workspace / "other.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)
    experiment_id = tracking.configure()
    assert mlflow.get_tracking_uri() == elsewhere
    assert MlflowClient(elsewhere).get_experiment(experiment_id).name == config.EXPERIMENT_NAME
    workspace_store = MlflowClient(f"sqlite:///{mlflow_workspace / 'mlflow.db'}")
    assert workspace_store.get_experiment_by_name(config.EXPERIMENT_NAME) is None


def test_start_run_names_the_run_and_tags_the_invocation_step_and_commit(mlflow_workspace):
    with tracking.start_run("aplicacao", **{"kobe.role": "champion"}) as run:
        mlflow.log_metric("rows_input", 3)
    logged = MlflowClient(tracking.tracking_uri()).get_run(run.info.run_id)
    assert logged.info.run_name == APPLICATION and logged.info.status == "FINISHED"
    tags = logged.data.tags
    assert tags[config.INVOCATION_TAG] == "unit-test-invocation"
    assert tags["kobe.step"] == "aplicacao" and tags["kobe.role"] == "champion"
    assert re.fullmatch(r"[0-9a-f]{40}", tags["kobe.git_commit"])  # the tests run in the repository
    assert logged.data.metrics == {"rows_input": 3}


def test_retraining_steps_have_their_run_names_and_unknown_steps_are_refused(mlflow_workspace):
    with tracking.start_run("rollback") as run:
        pass
    assert run.info.run_name == "Rollback"
    with pytest.raises(KeyError):
        with tracking.start_run("not_a_step"):
            pass


def test_one_invocation_id_per_process_unless_given(monkeypatch):
    monkeypatch.setenv(tracking.INVOCATION_ENV, "given")
    assert tracking.invocation_id() == "given"
    monkeypatch.delenv(tracking.INVOCATION_ENV)
    made = tracking.invocation_id()  # monkeypatch restores the variable it sets
    assert re.fullmatch(r"[0-9a-f]{12}", made) and tracking.invocation_id() == made
