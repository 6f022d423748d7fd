"""The real pipeline on the course data: runs, metrics, artefacts and the champion alias."""

import json

import mlflow
import pandas as pd
import pytest

from conftest import require_shared_data, run_pipeline
from kobe_mlops import config
from kobe_mlops.modeling.metrics import evaluate_probabilities

pytestmark = pytest.mark.e2e  # every test runs run_all.py or reads the session pipeline run

RUN_NAMES = list(config.RUN_NAMES.values())  # test_config checks them against the course's names


def first_runs(client, newest: bool = False) -> dict[str, mlflow.entities.Run]:
    """The first run of each name (the session's), or with ``newest`` the latest one."""
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME)
    order = ["attributes.start_time " + ("ASC" if newest else "DESC")]
    return {run.info.run_name: run for run in client.search_runs([experiment.experiment_id], order_by=order)}


def test_progress_lines_and_total(pipeline_run):
    for notebook, _ in config.PIPELINE_STEPS:
        assert f"{notebook} ... ok (" in pipeline_run.stdout
    assert "Done in" in pipeline_run.stdout
    timings = json.loads((pipeline_run.workspace / "reports" / "last_run.json").read_text())
    assert set(timings["steps"]) == {notebook for notebook, _ in config.PIPELINE_STEPS}


def test_four_named_runs_of_one_invocation(tracking):
    runs = first_runs(tracking)
    assert len({runs[name].data.tags[config.INVOCATION_TAG] for name in RUN_NAMES}) == 1
    assert all(runs[name].info.status == "FINISHED" for name in RUN_NAMES)


def test_acquisition_logs_digests_and_shapes(tracking):
    run = first_runs(tracking)["AquisicaoDados"]
    assert run.data.params["dev_sha256"] == config.DATASET_SHA256["dataset_kobe_dev.parquet"]
    assert run.data.metrics["dev_rows"] == 24271 and run.data.metrics["prod_rows"] == 6426
    assert run.data.metrics["dev_rows_unlabelled"] == 3986
    assert run.data.metrics["dev_share_2PT"] == 1.0 and run.data.metrics["prod_share_3PT"] == 1.0


def test_preparation_outputs_and_metrics(tracking, pipeline_run):
    run = first_runs(tracking)["PreparacaoDados"]
    assert run.data.params["test_size"] == "0.2" and run.data.params["seed"] == "42"
    assert run.data.metrics["rows_filtered"] == 20285
    assert run.data.metrics["rows_train"] + run.data.metrics["rows_test"] == 20285
    assert run.data.metrics["make_rate_train"] == pytest.approx(run.data.metrics["make_rate_test"], abs=0.001)
    assert pd.read_parquet(pipeline_run.paths.data_filtered).shape == (20285, 7)
    assert len(pd.read_parquet(pipeline_run.paths.base_test)) == run.data.metrics["rows_test"]


def test_training_metrics_beat_baselines(tracking):
    metrics = first_runs(tracking)["Treinamento"].data.metrics
    names = "log_loss_lr_test f1_lr_test log_loss_dt_test f1_dt_test auc_dt_test precision_lr_test recall_dt_test"
    assert set(f"{names} brier_lr_test log_loss_baseline_test f1_baseline_test".split()) <= set(metrics)
    assert metrics["log_loss_baseline_test"] == pytest.approx(0.692, abs=0.001)
    # Probabilities through the whole pipeline: both models beat the constant-rate baseline.
    assert metrics["log_loss_dt_test"] < metrics["log_loss_baseline_test"]
    assert metrics["log_loss_lr_test"] < metrics["log_loss_baseline_test"]
    assert metrics["auc_dt_test"] > 0.55 and metrics["auc_lr_test"] > 0.55


def test_training_logs_plots_and_the_reason(tracking):
    run = first_runs(tracking)["Treinamento"]
    assert "chosen" in run.data.tags["selection_reason"]
    plots = {item.path for item in tracking.list_artifacts(run.info.run_id, "plots")}
    assert {"plots/roc_test.png", "plots/calibration_test.png", "plots/confusion_dt_test.png"} <= plots


def test_champion_alias_serves_the_logged_probabilities(tracking, pipeline_run):
    version = tracking.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    model = mlflow.pyfunc.load_model(config.CHAMPION_URI)
    base_test = pd.read_parquet(pipeline_run.paths.base_test)
    scored = model.predict(base_test[config.FEATURES])
    assert list(scored.columns) == [config.PROBABILITY_COLUMN, config.PREDICTION_COLUMN]
    recomputed = evaluate_probabilities(base_test[config.TARGET], scored[config.PROBABILITY_COLUMN])
    training = tracking.get_run(version.tags["training_run_id"]).data.metrics
    assert recomputed["log_loss"] == pytest.approx(training["log_loss_champion_test"], abs=1e-9)
    assert model.metadata.signature.inputs.input_names() == config.FEATURES
    # PyCaret's pipeline has the shape the fast scoring path needs, and matched it on base_train.
    assert version.tags["scoring_path"] == "unwrapped"


def test_application_accounts_for_every_row(tracking, pipeline_run):
    run = first_runs(tracking)["PipelineAplicacao"]
    metrics = run.data.metrics
    assert metrics["rows_input"] == 6426
    assert metrics["rows_input"] == metrics["rows_scored"] + metrics["rows_rejected"]
    assert metrics["rows_labeled"] == 6426 - 1014  # unlabelled rows are scored, not dropped
    assert 0 < metrics["log_loss"] < 1 and "f1_score" in metrics
    assert metrics["psi_shot_distance"] > 0.25  # 2PT vs 3PT: a major, expected shift
    predictions = pd.read_parquet(pipeline_run.paths.predictions_prod)
    assert len(predictions) == metrics["rows_scored"]
    columns = {"shot_id", *config.FEATURES, config.PROBABILITY_COLUMN, config.PREDICTION_COLUMN, config.TARGET}
    assert columns <= set(predictions.columns)
    assert predictions[config.PROBABILITY_COLUMN].between(0, 1).all()
    artifacts = {item.path for item in tracking.list_artifacts(run.info.run_id, "data")}
    assert "data/predictions_prod.parquet" in artifacts
    assert run.data.params["model_version"] and run.data.params["model_alias"] == "champion"


def test_rerun_gives_the_same_numbers_and_registers_a_challenger(workspace_copy):
    client = mlflow.MlflowClient(workspace_copy.tracking_uri)
    first = first_runs(client)["Treinamento"]
    run_pipeline(workspace_copy.workspace, "--steps", "02,03")
    second = first_runs(client, newest=True)["Treinamento"]
    assert second.info.run_id != first.info.run_id
    for name in ["log_loss_lr_test", "log_loss_dt_test", "f1_lr_test", "f1_dt_test", "cv_log_loss_dt"]:
        assert second.data.metrics[name] == pytest.approx(first.data.metrics[name], abs=1e-12)
    champion = client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    challenger = client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHALLENGER_ALIAS)
    assert str(champion.version) == "1" and champion.tags["training_run_id"] == first.info.run_id
    assert str(challenger.version) == "2" and challenger.tags["training_run_id"] == second.info.run_id


def test_failure_is_one_short_message(tmp_path):
    data = require_shared_data()
    result = run_pipeline(tmp_path, "--steps", "01", "--data-source", str(tmp_path / "missing"), check=False)
    assert result.returncode == 1
    assert "Step 01_aquisicao failed: AcquisitionError" in result.stderr
    assert "Traceback" not in result.stderr and "Executed notebook" in result.stderr
    assert data.is_dir()


def test_an_inherited_matplotlib_backend_does_not_break_the_kernels(tmp_path, monkeypatch):
    data = require_shared_data()
    monkeypatch.setenv("MPLBACKEND", "Agg")  # set on headless servers, and by importing Streamlit
    result = run_pipeline(tmp_path, "--steps", "01", "--data-source", str(data), check=False)
    assert result.returncode == 0, result.stderr
