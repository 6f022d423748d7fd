"""Every read of the store (kobe_mlops.tracking.reads), on a small store made here by hand: runs
with chosen names, statuses, start times, params and tags, and a registered model with aliases;
no pipeline run, no course data.
"""

import pytest
from mlflow import MlflowClient

from conftest import copy_empty_store
from kobe_mlops import config
from kobe_mlops.tracking import names, reads

NAME = config.REGISTERED_MODEL_NAME
APPLICATION = config.RUN_NAMES["aplicacao"]
VALIDATED = {"champion_version": "1", "challenger_version": "2"}  # the params of a champion-challenger check


def test_store_exists_tells_a_missing_sqlite_file_apart_and_creates_nothing(tmp_path, monkeypatch, empty_mlflow_db):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert reads.store_exists() is False
    assert reads.store_exists(f"sqlite:///{tmp_path / 'absent.db'}") is False
    assert reads.store_exists("http://127.0.0.1:5000") is True  # a server: assume it is there
    assert list(tmp_path.iterdir()) == []
    copy_empty_store(empty_mlflow_db, tmp_path / "mlflow.db")
    assert reads.store_exists() is True


@pytest.fixture(scope="module")
def store(tmp_path_factory, empty_mlflow_db):
    """Runs of the experiment (start times 1000, 2000, ... ms) and a registered model.

    ``runs`` maps a label to its run id. Version 1 (champion before) was trained by ``training``;
    version 2 (champion now) has no training tag; ``previous`` points at 1.
    """
    folder = tmp_path_factory.mktemp("store")
    client = MlflowClient(copy_empty_store(empty_mlflow_db, folder / "mlflow.db"))
    experiment_id = client.create_experiment(config.EXPERIMENT_NAME, artifact_location=(folder / "mlruns").as_uri())
    specs = [
        # label, run name, status, params, tags
        ("training", "Treinamento", "FINISHED", {}, {}),
        ("app_old", APPLICATION, "FINISHED", {"model_name": NAME, "model_version": "1"}, {}),
        ("check", "VerificacaoRetreino", "FINISHED", {"champion_version": "1"}, {"decision": "retrain", "reason": "x"}),
        ("validation", "ValidacaoChallenger", "FINISHED", VALIDATED, {"decision": "promote", "reason": "better"}),
        ("app_new", APPLICATION, "FINISHED", {}, {}),  # no model params: scored with the champion
        ("app_failed", APPLICATION, "FAILED", {}, {}),
        ("rollback", "Rollback", "FINISHED", {}, {"champion_version_before": "2", "champion_version_after": "1"}),
    ]
    runs = {}
    for order, (label, run_name, status, params, tags) in enumerate(specs, start=1):
        run = client.create_run(experiment_id, start_time=order * 1000, tags=tags, run_name=run_name)
        for key, value in params.items():
            client.log_param(run.info.run_id, key, value)
        client.log_metric(run.info.run_id, "order", order)
        client.set_terminated(run.info.run_id, status=status, end_time=order * 1000 + 500)
        runs[label] = run.info.run_id
    client.create_registered_model(NAME)
    client.create_model_version(NAME, source=str(folder), tags={names.TRAINING_RUN_TAG: runs["training"]})
    client.create_model_version(NAME, source=str(folder))
    client.set_registered_model_alias(NAME, config.CHAMPION_ALIAS, "2")
    client.set_registered_model_alias(NAME, config.PREVIOUS_ALIAS, "1")
    return client, runs


def test_versions_by_alias_the_alias_table_and_the_version_behind_a_uri(store):
    client, _ = store
    assert str(reads.version_by_alias(client).version) == "2"
    assert str(reads.version_by_alias(client, config.PREVIOUS_ALIAS).version) == "1"
    assert reads.version_by_alias(client, config.CHALLENGER_ALIAS) is None
    assert reads.version_by_alias(client, model_name="no-such-model") is None
    assert reads.registry_aliases(client) == {config.CHAMPION_ALIAS: "2", config.PREVIOUS_ALIAS: "1"}
    assert reads.registry_aliases(client, "no-such-model") == {}
    champion = {"model_name": NAME, "model_alias": config.CHAMPION_ALIAS, "model_version": "2"}
    assert reads.resolve_model_uri(config.CHAMPION_URI, client) == champion
    assert reads.resolve_model_uri("runs:/abc/model", client) == {}
    assert reads.resolve_model_uri(f"models:/{NAME}/1", client) == {}


def test_the_training_run_behind_a_version_and_the_version_behind_an_application_run(store):
    client, runs = store
    first, second = (client.get_model_version(NAME, version) for version in ("1", "2"))
    assert reads.training_run_of(client, first).info.run_id == runs["training"]
    assert reads.training_run_of(client, second) is None  # no tag
    client.set_model_version_tag(NAME, "2", names.TRAINING_RUN_TAG, "0" * 32)
    try:
        assert reads.training_run_of(client, client.get_model_version(NAME, "2")) is None  # no such run
    finally:
        client.delete_model_version_tag(NAME, "2", names.TRAINING_RUN_TAG)
    assert [v.version for v in reads.versions_tagged(client, names.TRAINING_RUN_TAG, runs["training"])] == [1]
    assert str(reads.model_version_used(client, client.get_run(runs["app_old"])).version) == "1"
    assert str(reads.model_version_used(client, client.get_run(runs["app_new"])).version) == "2"  # the champion


class OneRunPerPage(MlflowClient):
    """A client whose searches return one run per page, to exercise the page loop."""

    def search_runs(self, *args, **kwargs):
        return super().search_runs(*args, **{**kwargs, "max_results": 1})


def test_run_searches_skip_failed_and_other_runs_and_read_every_page(store):
    client, runs = store
    assert reads.latest_application_run(client).info.run_id == runs["app_new"]
    assert reads.latest_application_run(client, "no-such-experiment") is None
    expected = [runs["app_old"], runs["app_new"]]  # oldest first
    assert [run.info.run_id for run in reads.finished_application_runs(client)] == expected
    paged = OneRunPerPage(client.tracking_uri)
    assert [run.info.run_id for run in reads.finished_application_runs(paged)] == expected
    assert reads.finished_application_runs(client, "no-such-experiment") == []
    assert [run.info.run_id for run in reads.recent_runs(client, 2)] == [runs["rollback"], runs["app_failed"]]


def test_decision_history_lists_the_loop_s_runs_newest_first_with_versions_and_reasons(store):
    client, runs = store
    history = reads.decision_history(client)
    assert list(history.columns) == reads.DECISION_COLUMNS
    assert history["run_id"].tolist() == [runs["rollback"], runs["validation"], runs["check"]]
    assert history["step"].tolist() == ["Rollback", "ValidacaoChallenger", "VerificacaoRetreino"]
    assert history["versions"].tolist() == ["v2 -> v1", "champion v1, challenger v2", "champion v1"]
    assert history["decision"].tolist() == ["", "promote", "retrain"]
    assert history["reason"].tolist() == ["", "better", "x"]
    assert history["start_time"].is_monotonic_decreasing
    assert reads.decision_history(client, limit=1)["run_id"].tolist() == [runs["rollback"]]


def test_decision_history_of_a_store_without_the_experiment_is_empty(tmp_path, empty_mlflow_db):
    history = reads.decision_history(MlflowClient(copy_empty_store(empty_mlflow_db, tmp_path / "mlflow.db")))
    assert history.empty and list(history.columns) == reads.DECISION_COLUMNS
