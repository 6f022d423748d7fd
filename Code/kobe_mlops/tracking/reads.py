"""Every read of the MLflow store: aliases, runs, the run behind a version, decisions.

Modules above the base layer ask this module, so "which version is the champion" has one answer.
Reads never create a store: :func:`store_exists` tells a missing SQLite file apart first.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.tracking import names, store_exists, tracking_uri  # noqa: F401 (readers call reads.store_exists)

# Finished application runs: what the triggers (and their trends) are computed from.
APPLICATION_RUNS_FILTER = f"attributes.run_name = '{config.RUN_NAMES['aplicacao']}' and attributes.status = 'FINISHED'"
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
DECISION_COLUMNS = ["start_time", "step", "decision", "versions", "reason", "run_id"]


def client(uri: str | None = None) -> MlflowClient:
    return MlflowClient(uri or tracking_uri())


def store_client(client: MlflowClient | None = None) -> MlflowClient | None:
    """``client``, else one on the project's store; None before that store exists (a read must not create it)."""
    return client or (MlflowClient(tracking_uri()) if store_exists() else None)


# --- Registry ---------------------------------------------------------------------------------


def version_by_alias(
    client: MlflowClient, alias: str = config.CHAMPION_ALIAS, model_name: str = config.REGISTERED_MODEL_NAME
) -> ModelVersion | None:
    """The version ``alias`` points at, or None (no registered model, or no such alias)."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def resolve_model_uri(model_uri: str, client: MlflowClient | None = None) -> dict[str, str]:
    """For ``models:/<name>@<alias>``: the name, alias and version it points at now; else empty (no alias)."""
    if not model_uri.startswith("models:/") or "@" not in model_uri:
        return {}
    name, alias = model_uri[len("models:/") :].split("@", 1)
    version = (client or MlflowClient()).get_model_version_by_alias(name, alias)
    return {names.MODEL_NAME: name, "model_alias": alias, names.MODEL_VERSION: str(version.version)}


def registry_aliases(client: MlflowClient, model_name: str = config.REGISTERED_MODEL_NAME) -> dict[str, str]:
    """``{alias: version}`` of the registered model (empty when nothing is registered)."""
    try:
        aliases = client.get_registered_model(model_name).aliases
    except MlflowException:
        return {}
    return {alias: str(version) for alias, version in sorted(aliases.items())}


def versions_tagged(client: MlflowClient, tag: str, value: str, model_name: str = config.REGISTERED_MODEL_NAME):
    """Every version of ``model_name`` whose tag ``tag`` equals ``value``, newest first."""
    versions = client.search_model_versions(f"name='{model_name}'")
    return sorted((v for v in versions if v.tags.get(tag) == value), key=lambda v: -int(v.version))


def training_run_of(client: MlflowClient, version: ModelVersion) -> Run | None:
    """The ``Treinamento`` run that produced ``version`` (its ``training_run_id`` tag)."""
    run_id = version.tags.get(names.TRAINING_RUN_TAG)
    if not run_id:
        return None
    try:
        return client.get_run(run_id)
    except MlflowException:  # run deleted since
        return None


@contextmanager
def no_progress_bars():
    """MLflow draws a progress bar per download; a read in a run's output or the dashboard's log needs none."""
    previous = os.environ.get(PROGRESS_BAR_ENV)
    os.environ[PROGRESS_BAR_ENV] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PROGRESS_BAR_ENV, None)
        else:
            os.environ[PROGRESS_BAR_ENV] = previous


def run_artifact(client: MlflowClient, run_id: str, artifact: str, read):
    """``read(path)`` of one artifact the run logged; None when it did not log it."""
    with tempfile.TemporaryDirectory(prefix="kobe-artifact-") as folder, no_progress_bars():
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact, dst_path=folder, tracking_uri=client.tracking_uri
            )
        except (MlflowException, OSError):  # an older run that did not log it
            return None
        return read(Path(path))


def _read_training_artifact(client: MlflowClient, version: ModelVersion, artifact: str, read):
    """:func:`run_artifact` of the training run behind ``version``; None when it was not logged."""
    run_id = version.tags.get(names.TRAINING_RUN_TAG)
    return run_artifact(client, run_id, artifact, read) if run_id else None


def learned_shot_ids(client: MlflowClient, version: ModelVersion) -> np.ndarray:
    """``shot_id`` of every production row ``version`` learned (none for a model of development data only,
    or trained before the training run logged these ids)."""
    ids = _read_training_artifact(
        client, version, names.PRODUCTION_SHOT_IDS_ARTIFACT, lambda path: pd.read_parquet(path)["shot_id"]
    )
    return np.array([], dtype="int64") if ids is None else ids.to_numpy(dtype="int64")


def reference_scores(client: MlflowClient, version: ModelVersion) -> pd.DataFrame | None:
    """Probability and outcome on the held-out rows ``version``'s training run logged (None when not logged)."""
    return _read_training_artifact(client, version, names.REFERENCE_SCORES_ARTIFACT, pd.read_parquet)


def feature_support_text(client: MlflowClient, version: ModelVersion) -> str | None:
    """The JSON training support logged by the training run of ``version`` (None when not logged)."""
    return _read_training_artifact(client, version, names.FEATURE_SUPPORT_ARTIFACT, lambda path: path.read_text())


def model_version_used(client: MlflowClient, application_run: Run) -> ModelVersion | None:
    """The registered version an application run scored with (logged when it used an alias), else the
    version the champion alias points at now."""
    params = application_run.data.params
    try:
        if params.get(names.MODEL_NAME) and params.get(names.MODEL_VERSION):
            return client.get_model_version(params[names.MODEL_NAME], params[names.MODEL_VERSION])
    except MlflowException:  # version deleted
        return None
    return version_by_alias(client)


# --- Runs -------------------------------------------------------------------------------------


def every_run(client: MlflowClient, experiment_ids: list[str], filter_string: str = "", order_by=None) -> list[Run]:
    """Every run matching ``filter_string``, over all result pages."""
    runs, page_token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, order_by=order_by, page_token=page_token)
        runs.extend(page)
        page_token = page.token
        if not page_token:
            return runs


def _runs(
    client: MlflowClient, experiment_name: str, filter_string: str = "", oldest_first=False, max_results=None
) -> list[Run]:
    """Runs of the experiment by start time (none when it does not exist); every page unless ``max_results``."""
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    order = [f"attributes.start_time {'ASC' if oldest_first else 'DESC'}"]
    if max_results is None:
        return every_run(client, [experiment.experiment_id], filter_string, order)
    return list(client.search_runs([experiment.experiment_id], filter_string, order_by=order, max_results=max_results))


def _latest(client: MlflowClient, experiment_name: str, filter_string: str) -> Run | None:
    return next(iter(_runs(client, experiment_name, filter_string, max_results=1)), None)


def recent_runs(client: MlflowClient, max_results: int, experiment_name: str = config.EXPERIMENT_NAME) -> list[Run]:
    """The newest runs of the experiment, newest first."""
    return _runs(client, experiment_name, max_results=max_results)


def latest_application_run(client: MlflowClient, experiment_name: str = config.EXPERIMENT_NAME) -> Run | None:
    """The newest finished ``PipelineAplicacao`` run, or None."""
    return _latest(client, experiment_name, APPLICATION_RUNS_FILTER)


def finished_application_runs(client: MlflowClient, experiment_name: str = config.EXPERIMENT_NAME) -> list[Run]:
    """Every finished ``PipelineAplicacao`` run of the experiment, oldest first."""
    return _runs(client, experiment_name, APPLICATION_RUNS_FILTER, oldest_first=True)


def labels_at_last_gate(client: MlflowClient) -> int:
    """Labelled production rows the store held when the retraining check last decided to retrain (0: never)."""
    name = config.RETRAINING_RUN_NAMES["verificacao_retreino"]
    run = _latest(
        client, config.EXPERIMENT_NAME, f"attributes.run_name = '{name}' and tags.{names.DECISION_TAG} = 'retrain'"
    )
    return int(run.data.metrics.get(names.LABELLED_PRODUCTION_ROWS, 0)) if run else 0


def decision_history(client: MlflowClient, limit: int = 50) -> pd.DataFrame:
    """The retraining loop's runs, newest first: checks, validations and rollbacks with their reasons."""
    runs = [
        run
        for name in config.RETRAINING_RUN_NAMES.values()  # MLflow filters run names one at a time
        for run in _runs(client, config.EXPERIMENT_NAME, f"attributes.run_name = '{name}'", max_results=limit)
    ]
    rows = []
    for run in sorted(runs, key=lambda run: run.info.start_time, reverse=True)[:limit]:
        params, tags = run.data.params, run.data.tags
        if "challenger_version" in params:
            versions = f"champion v{params[names.CHAMPION_VERSION]}, challenger v{params['challenger_version']}"
        elif names.CHAMPION_AFTER_TAG in tags:
            versions = f"v{tags[names.CHAMPION_BEFORE_TAG]} -> v{tags[names.CHAMPION_AFTER_TAG]}"
        else:
            versions = f"champion v{params[names.CHAMPION_VERSION]}" if names.CHAMPION_VERSION in params else ""
        rows.append(
            {
                "start_time": pd.to_datetime(run.info.start_time, unit="ms", utc=True),
                "step": run.info.run_name,
                "decision": tags.get(names.DECISION_TAG, ""),
                "versions": versions,
                "reason": tags.get(names.REASON_TAG, ""),
                "run_id": run.info.run_id,
            }
        )
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


# --- The replay (run_all.py --replay): experiment kobe-shot-replay ----------------------------

REPLAY_RUNS_FILTER = (
    f"attributes.run_name = '{config.REPLAY_RUN_NAMES['simulacao_operacao']}' and attributes.status = 'FINISHED'"
)


def latest_replay_run(client: MlflowClient, experiment_name: str = config.REPLAY_EXPERIMENT_NAME) -> Run | None:
    """The newest finished ``SimulacaoOperacao`` run (a failed replay is never read), or None."""
    return _latest(client, experiment_name, REPLAY_RUNS_FILTER)


def replay_batch_runs(
    client: MlflowClient, parent_run_id: str, experiment_name: str = config.REPLAY_EXPERIMENT_NAME
) -> list[Run]:
    """Every child run of one replay (one per strategy and batch), oldest first."""
    return _runs(client, experiment_name, f"tags.mlflow.parentRunId = '{parent_run_id}'", oldest_first=True)
