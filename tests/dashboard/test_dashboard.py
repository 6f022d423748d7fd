"""The Streamlit dashboard through ``streamlit.testing.v1.AppTest``: every page, with and without a run.

Pages run in this process, so ``KOBE_WORKSPACE`` (monkeypatched) decides what they read; their cached reads
are keyed by workspace, so two workspaces never share an entry. The Timeline page reads the synthetic replay
``conftest.logged_replay`` logs with the real logging code.
"""

import os
import subprocess
import sys
from datetime import UTC, datetime

import mlflow
import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ScoringStub, copy_empty_store, distance_model
from kobe_mlops import config
from kobe_mlops.dashboard import common, inference, verdict
from kobe_mlops.data_acquisition.contract import FEATURE_RULES, cast_features
from kobe_mlops.deployment.serving import SCORING_URL_ENV, free_port
from kobe_mlops.modeling.support import support_from_json
from kobe_mlops.monitoring import health, replay, trends, triggers
from kobe_mlops.monitoring.calculators import APPLICABLE, ESTIMATE_ALL, NOT_APPLICABLE, QUESTIONABLE
from kobe_mlops.tracking import names, reads

# Importing streamlit sets MPLBACKEND=Agg for the whole process; the session pipeline's notebook
# kernels inherit it, and matplotlib 3.7 under IPython 9 fails to start with it (backend2gui).
os.environ.pop("MPLBACKEND", None)

DASHBOARD = config.PROJECT_ROOT / "Code" / "kobe_mlops" / "dashboard"
PAGES = {path.name: path for path in common.page_files()}
LABELLED_PAGES = ["01_Overview.py", "03_Model_health_with_labels.py", "06_Retraining.py"]
SHOT = {"lat": 33.9723, "lon": -118.2698, "minutes_remaining": 3, "period": 2, "playoffs": 1, "shot_distance": 17.0}


def run_page(name: str) -> AppTest:
    """The page run once, without an exception, under the title Streamlit gives it in the navigation."""
    app = AppTest.from_file(str(PAGES[name]), default_timeout=120).run()  # 120 s: a busy machine's first run
    assert not app.exception, [item.value for item in app.exception]
    assert [title.value for title in app.title] == [PAGES[name].stem.split("_", 1)[1].replace("_", " ")]
    return app


def page_text(app: AppTest) -> str:
    """Every text a user reads on the page, in one string."""
    parts = []
    for kind in ["title", "subheader", "markdown", "caption", "info", "warning", "error", "success"]:
        parts += [element.value for element in app.get(kind)]
    return "\n".join(parts + [f"{metric.label}: {metric.value}" for metric in app.metric])


def metric_value(app: AppTest, label: str) -> str:
    return next(metric.value for metric in app.metric if metric.label == label)


def point_at(monkeypatch, workspace) -> None:
    """The pages read ``workspace`` and its own store; the Inference page has no scoring URL preset."""
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(SCORING_URL_ENV, raising=False)


@pytest.fixture
def store(pipeline_run, monkeypatch):
    """The session pipeline's store, with the pages pointed at its workspace: ``(client, state)``."""
    point_at(monkeypatch, pipeline_run.workspace)
    client = mlflow.MlflowClient(pipeline_run.tracking_uri)
    return client, health.load_pipeline_state(client)


@pytest.fixture
def copied(workspace_copy, monkeypatch):
    point_at(monkeypatch, workspace_copy.workspace)
    return workspace_copy


# --- Layout and plumbing ----------------------------------------------------------------------


def test_pages_are_the_numbered_files_of_views_in_order(tmp_path):
    assert list(PAGES)[:6] == [  # later pages may follow: adding one needs no change here
        "01_Overview.py",
        "02_Data_drift.py",
        "03_Model_health_with_labels.py",
        "04_Model_health_without_labels.py",
        "05_Inference.py",
        "06_Retraining.py",
    ]
    for name in ["02_Second.py", "01_First.py", "10_Tenth.py", "helpers.py"]:
        (tmp_path / name).write_text("")
    assert [path.name for path in common.page_files(tmp_path)] == ["01_First.py", "02_Second.py", "10_Tenth.py"]


def test_pipeline_command_names_the_workspace_only_when_it_is_not_the_project(tmp_path):
    assert common.pipeline_command(config.PROJECT_ROOT) == ".venv/bin/python run_all.py"
    assert (
        common.pipeline_command(tmp_path, "--replay") == f".venv/bin/python run_all.py --workspace {tmp_path} --replay"
    )


def test_the_source_stamp_changes_when_the_pipeline_rewrites_a_file(tmp_path, monkeypatch):
    point_at(monkeypatch, tmp_path)
    before = common.current_source()
    paths = config.workspace_paths(tmp_path)
    paths.processed_dir.mkdir(parents=True)
    pd.DataFrame({"a": [1]}).to_parquet(paths.predictions_prod)
    after = common.current_source()
    assert before.workspace == after.workspace == str(tmp_path.resolve())
    assert before.tracking_uri == after.tracking_uri == f"sqlite:///{paths.mlflow_db}"
    assert before.stamp != after.stamp


def test_the_readme_command_serves_the_app_on_loopback():
    from streamlit.web.server.app_discovery import discover_asgi_app

    readme = (config.PROJECT_ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "streamlit run" in line)
    script = config.PROJECT_ROOT / command.split("streamlit run ", 1)[1].split()[0]
    assert script == DASHBOARD / "app.py" and discover_asgi_app(script).is_asgi_app  # imported once, at server start
    assert "--server.address 127.0.0.1" in command and "http://127.0.0.1:8501" in readme


@pytest.mark.e2e  # the server's start-up, in a process of its own
def test_the_server_start_reads_an_empty_workspace_without_creating_a_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"KOBE_WORKSPACE": str(tmp_path)}
    code = f"import runpy; runpy.run_path({str(DASHBOARD / 'app.py')!r})"
    started = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    assert list(tmp_path.iterdir()) == []


# --- Before any run, and stores that cannot be read -------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_says_what_to_run_in_an_empty_workspace(page, tmp_path, monkeypatch):
    point_at(monkeypatch, tmp_path)
    app = run_page(page)
    assert "Nothing to show yet" in app.info[0].value and not app.error
    assert [block.value for block in app.code] == [f".venv/bin/python run_all.py --workspace {tmp_path.resolve()}"]
    assert list(tmp_path.iterdir()) == []  # reading an empty workspace creates no store and no file


def test_a_corrupt_processed_file_is_named_not_a_traceback(tmp_path, monkeypatch):
    point_at(monkeypatch, tmp_path)
    monkeypatch.setenv(SCORING_URL_ENV, "http://127.0.0.1:5001")  # the form, which reads data_filtered, is shown
    paths = config.workspace_paths(tmp_path)
    paths.processed_dir.mkdir(parents=True)
    paths.data_filtered.write_text("not a parquet file")
    app = run_page("05_Inference.py")
    assert app.error[0].value.startswith(f"Cannot read data/processed: {paths.data_filtered}: not a readable parquet")


def test_an_unreachable_tracking_server_is_named_not_a_traceback(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    point_at(monkeypatch, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once instead of backing off
    app = run_page("01_Overview.py")
    assert app.error[0].value.startswith(f"Cannot read the tracking store {url}:")


# --- Every page with the session pipeline run -------------------------------------------------


def test_the_navigation_opens_on_the_overview_and_navigates(store):
    app = AppTest.from_file(str(DASHBOARD / "navigation.py"), default_timeout=120).run()
    assert not app.exception and [title.value for title in app.title] == ["Overview"]
    app.switch_page("views/06_Retraining.py").run()
    assert not app.exception and [title.value for title in app.title] == ["Retraining"]


def test_overview_shows_the_champion_metrics_and_runs(store):
    client, state = store
    app = run_page("01_Overview.py")
    text = page_text(app)
    champion = client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    assert config.REGISTERED_MODEL_NAME in text and metric_value(app, "Version") == str(champion.version)
    assert metric_value(app, "Alias") == config.CHAMPION_ALIAS and champion.tags["selection_reason"] in text
    table, metrics = app.dataframe[0].value, state.application.metrics
    assert table.loc["log_loss", "test"] == pytest.approx(state.training.metrics["log_loss_champion_test"])
    assert table.loc["log_loss", "production"] == pytest.approx(metrics[names.LOG_LOSS])
    assert table.loc["log_loss", verdict.BEFORE] == pytest.approx(metrics[names.NULL_LOG_LOSS])
    assert table.loc["log_loss", verdict.AFTER] == pytest.approx(metrics[names.PROD_NULL_LOG_LOSS])
    assert table.loc["f1", verdict.BEFORE] == pytest.approx(metrics["f1_baseline_prod"])
    # The verdict comes first, worded by the one function every page calls.
    expected = verdict.production_verdict(metrics)
    assert [box.value for box in app.get(expected.level)][0] == expected.text
    assert set(config.RUN_NAMES.values()) <= set(app.dataframe[1].value["run"])


def test_data_drift_shows_the_table_step_04_logged(store, tmp_path):
    client, state = store
    path = client.download_artifacts(state.application.run_id, names.DRIFT_TABLE_ARTIFACT, str(tmp_path))
    logged = pd.read_json(path, orient="split").set_index("feature").loc[config.FEATURES]
    app = run_page("02_Data_drift.py")
    assert app.error[0].value.startswith("**Verdict:** drift in") and "shot_distance" in app.error[0].value
    table = app.dataframe[0].value.set_index("feature")
    assert list(table.index) == config.FEATURES and table.loc["shot_distance", "drift"]
    assert table["psi"].tolist() == pytest.approx(logged["value"].tolist())
    assert table["no-drift threshold"].tolist() == pytest.approx(logged["upper"].tolist())
    assert "Court map of shot locations" in page_text(app)
    assert len(app.get("image")) >= 2  # PSI per feature and the court map (histograms once logged)


def test_model_health_with_labels_shows_the_graded_figures_and_follows_the_threshold(store):
    client, state = store
    metrics = state.application.metrics
    app = run_page("03_Model_health_with_labels.py")
    text = page_text(app)
    for heading in ["Threshold explorer", "ROC and calibration", "Confusion matrices"]:
        assert heading in text
    # The figures step 04 graded (rows the model never learned), not a regrade of the file.
    for name in ["log_loss", "auc", "f1", "precision", "recall"]:
        assert metric_value(app, f"{name.replace('_', ' ')} (production)") == f"{metrics[names.prod_metric(name)]:.3f}"
    assert verdict.production_verdict(metrics).text in text
    assert len(app.get("image")) >= 4  # yardsticks, threshold, ROC, calibration
    version = client.get_model_version(config.REGISTERED_MODEL_NAME, state.scored_model.version)
    assert int(app.table[0].value.to_numpy().sum()) == len(reads.reference_scores(client, version))
    before = app.dataframe[1].value
    app.slider[0].set_value(0.05).run()
    assert not app.exception
    after = app.dataframe[1].value
    # Every held-out probability is above 0.05: the model then always says "make", recall 1.
    assert (after.loc["recall"] == 1.0).all() and not after.equals(before)


def test_model_health_without_labels_shows_the_logged_estimate_rates_and_support(store):
    metrics = store[1].application.metrics
    app = run_page("04_Model_health_without_labels.py")
    assert metric_value(app, "Realized log loss (graded rows)") == f"{metrics[names.LOG_LOSS]:.4f}"
    assert metric_value(app, "Predicted make rate in production") == f"{metrics[names.PREDICTED_MAKE_RATE]:.2%}"
    estimate = metrics[ESTIMATE_ALL]
    assert metric_value(app, "Estimated log loss (every scored row)") == f"{estimate:.4f}"
    assert list(app.dataframe[0].value["feature"]) == config.FEATURES  # the training support
    assert len(app.get("image")) == 1


def test_retraining_lists_every_trigger_and_the_action(store):
    report = triggers.latest_trigger_report(store[0])
    app = run_page("06_Retraining.py")
    text = page_text(app)
    assert report.recommended_action in text
    assert all(trigger.description in text for trigger in report.triggers)
    assert app.dataframe[0].value["fired"].tolist() == [trigger.fired for trigger in report.triggers]
    # A fresh pipeline: a champion, no challenger yet, no retraining decision.
    assert metric_value(app, "@champion") == "version 1"
    assert metric_value(app, "@challenger") == "none" and metric_value(app, "@previous") == "none"
    assert "The retraining loop has not run yet" in text


def test_trends_shows_the_single_application_run_and_asks_for_a_second(store):
    report = triggers.latest_trigger_report(store[0])  # the session pipeline made one application run
    app = run_page("07_Trends.py")
    text = page_text(app)
    assert "A trend needs at least two application runs" in text and "Code/kobe_mlops/monitoring/triggers.py" in text
    alerts = [trigger for trigger in report.triggers if trigger.name in trends.TRIGGER_NAMES]  # new labels: no trend
    for trigger in alerts:
        assert metric_value(app, common.sentence_case(trends.TRIGGER_LABELS[trigger.name])) == f"{trigger.value:.4f}"
    assert len(app.get("image")) == len(alerts) == len(trends.TRIGGER_NAMES)
    runs = app.dataframe[1].value
    assert runs["run id"].tolist() == [report.application_run_id]
    drift = next(trigger for trigger in report.triggers if trigger.name == triggers.FEATURE_DRIFT)
    assert runs[f"{trends.TRIGGER_LABELS[triggers.FEATURE_DRIFT]} fired"].tolist() == [drift.fired]


# --- Pages read what step 04 logged -----------------------------------------------------------


def log_application_run(tracking_uri: str, metrics: dict) -> None:
    """A PipelineAplicacao run of the registered champion with these metrics (as step 04 names them)."""
    client = mlflow.MlflowClient(tracking_uri)
    champion = client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME).experiment_id
    run_id = client.create_run(experiment, run_name=config.RUN_NAMES["aplicacao"]).info.run_id
    client.log_param(run_id, "model_name", config.REGISTERED_MODEL_NAME)
    client.log_param(run_id, "model_version", champion.version)
    for name, value in metrics.items():
        client.log_metric(run_id, name, value)
    client.set_terminated(run_id)


def test_pages_show_the_logged_figures_without_the_predictions_file(copied):
    """Without the predictions file, then after a run of a model that learned most labelled rows (the step
    graded only the others and logged figures no regrade of the file gives), each page shows what was logged."""
    metrics = health.load_pipeline_state(mlflow.MlflowClient(copied.tracking_uri)).application.metrics
    copied.paths.predictions_prod.unlink()  # nothing on these pages may come from it
    for page in LABELLED_PAGES:
        assert verdict.production_verdict(metrics).text in page_text(run_page(page)), page
    assert run_page("02_Data_drift.py").error[0].value.startswith("**Verdict:** drift in")
    realized = metric_value(run_page("04_Model_health_without_labels.py"), "Realized log loss (graded rows)")
    assert realized == f"{metrics[names.LOG_LOSS]:.4f}"

    logged = {
        **{names.ROWS_INPUT: 6426, names.ROWS_SCORED: 6426, names.ROWS_REJECTED: 0, names.ROWS_LABELLED: 5412},
        **{names.ROWS_SEEN_IN_TRAINING: 4178, names.ROWS_EVALUATED: 1234, names.LOG_LOSS: 0.61234},
        **{names.NULL_LOG_LOSS: 0.65432, names.PROD_NULL_LOG_LOSS: 0.63456},
        **{names.prod_metric("auc"): 0.5678, names.prod_metric("f1"): 0.4321},
    }
    log_application_run(copied.tracking_uri, logged)
    expected = verdict.production_verdict(logged).text
    assert "1,234 graded production rows" in expected
    for page in LABELLED_PAGES:
        assert expected in page_text(run_page(page)), page
    with_labels = run_page("03_Model_health_with_labels.py")
    assert metric_value(with_labels, "log loss (production)") == "0.612"
    assert metric_value(with_labels, "f1 (production)") == "0.432"
    caption = page_text(with_labels)
    assert "1,234 labelled rows graded by step 04" in caption and "4,178 labelled rows it was trained on" in caption
    without_labels = run_page("04_Model_health_without_labels.py")
    assert metric_value(without_labels, "Realized log loss (graded rows)") == "0.6123"
    assert metric_value(run_page("07_Trends.py"), "Production log loss") == "0.6123"


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_says_so_when_the_latest_run_scored_no_row(page, copied):
    log_application_run(copied.tracking_uri, {name: 0 for name in names.COUNT_METRICS})
    predictions = copied.paths.predictions_prod
    pd.read_parquet(predictions).iloc[0:0].to_parquet(predictions)  # a 0-row predictions file
    app = run_page(page)
    assert not [error.value for error in app.error if "Cannot read" in error.value]
    if page in ["02_Data_drift.py", "03_Model_health_with_labels.py", "04_Model_health_without_labels.py"]:
        assert "scored no row" in app.info[0].value


# --- The verdict, worded once ------------------------------------------------------------------

# The champion on the course's production base: it beats the development-rate constant, not the
# constant at production's own rate, and ranks below chance.
DOES_NOT_FIT = {
    names.LOG_LOSS: 0.6476,
    names.NULL_LOG_LOSS: 0.6787,
    names.PROD_NULL_LOG_LOSS: 0.6337,
    names.prod_metric("auc"): 0.4872,
    names.ROWS_EVALUATED: 5412,
}


@pytest.mark.parametrize(
    "changes, level, words, below_chance",
    [
        ({}, "error", ["not fit production on 5,412 graded production rows", "0.6476", "0.6787", "but not"], True),
        ({names.LOG_LOSS: 0.62, names.prod_metric("auc"): 0.56}, "success", ["The model fits production"], False),
        ({names.LOG_LOSS: 0.62}, "error", ["The model fits production"], True),
        ({names.LOG_LOSS: 0.70, names.prod_metric("auc"): 0.6}, "error", ["worse than the constant known"], False),
    ],
)
def test_the_verdict_says_which_constants_the_model_beats(changes, level, words, below_chance):
    result = verdict.production_verdict({**DOES_NOT_FIT, **changes})
    assert result.level == level
    assert all(word in result.text for word in words), result.text
    assert ("is below chance (0.5)" in result.text) == below_chance


def test_without_graded_rows_there_is_no_verdict_and_each_constant_has_its_column():
    assert verdict.production_verdict({}).level == "info"
    table = verdict.yardstick_table({names.champion_test_metric("log_loss"): 0.67}, DOES_NOT_FIT)
    assert table.loc["log_loss", "test"] == 0.67
    assert table.loc["log_loss", verdict.BEFORE] == 0.6787 and table.loc["log_loss", verdict.AFTER] == 0.6337
    assert table.loc["auc", verdict.AFTER] == 0.5 and np.isnan(table.loc["f1", verdict.AFTER])


def test_the_gate_candidates_are_read_from_the_validation_run_best_first():
    logged = {"null": 0.6129, "champion": 0.6086, "challenger": 0.6108}  # as logged, not best first
    metrics = {f"holdout_log_loss_{name}": value for name, value in logged.items()} | {"holdout_rows": 1629.0}
    gate = health.RunSummary("run", "ValidacaoChallenger", "FINISHED", datetime.now(UTC), None, metrics=metrics)
    candidates = common.gate_candidates(gate)
    assert list(candidates) == ["champion", "challenger", "null"] and candidates == logged


# --- Inference --------------------------------------------------------------------------------


def fill_and_submit(app: AppTest, values: dict) -> AppTest:
    for name, value in values.items():
        app.number_input(key=f"feature_{name}").set_value(value)
    return app.button[0].click().run()


def test_validation_names_the_column_and_value():
    assert inference.validate_shot(SHOT) is None
    message = inference.validate_shot({**SHOT, "shot_distance": 120.0, "period": 2.5})
    assert "shot_distance=120 outside number in [0, 94]" in message and "period=2.5 is not a whole number" in message
    with pytest.raises(ValueError, match="missing feature value"):
        inference.shot_frame({"lat": 34.0})


def test_input_limits_and_defaults_respect_the_contract():
    development = pd.DataFrame({"lat": [34.0, 33.9, 33.95], "lon": [-118.2] * 3, "minutes_remaining": [1, 2, 4]})
    development = development.assign(period=[1, 1, 2], playoffs=[0, 0, 1], shot_distance=[3.0, 90.0, 10.0])
    defaults = inference.default_values(development)
    assert defaults["lat"] == 33.95 and defaults["minutes_remaining"] == 2 and defaults["shot_distance"] == 10.0
    middle = inference.default_values(None)
    for name, rule in FEATURE_RULES.items():
        limits = inference.input_limits(rule)
        assert (limits["min_value"], limits["max_value"]) == (rule.minimum, rule.maximum)
        assert isinstance(middle[name], int) == rule.integer and rule.minimum <= middle[name] <= rule.maximum


def test_the_support_message_names_only_the_features_outside():
    support = {"lat": (33.8, 34.1), "lon": (-118.5, -118.0), "minutes_remaining": (0, 11), "period": (1, 4)}
    support |= {"playoffs": (0, 1), "shot_distance": (0, 22)}
    assert inference.outside_support_message(SHOT, support, "1") is None
    message = inference.outside_support_message({**SHOT, "shot_distance": 25.0, "period": 5}, support, "1")
    assert "shot_distance=25 (trained on 0 to 22)" in message and "period=5" in message and "lat=" not in message


def test_inference_form_takes_the_contract_limits_answers_with_the_champion_and_warns_outside_its_support(store):
    client, state = store
    mlflow.set_tracking_uri(client.tracking_uri)
    expected = mlflow.pyfunc.load_model(config.CHAMPION_URI).predict(cast_features(pd.DataFrame([SHOT])))
    app = run_page("05_Inference.py")
    for name, rule in FEATURE_RULES.items():
        widget = app.number_input(key=f"feature_{name}")
        assert (widget.min, widget.max) == (rule.minimum, rule.maximum) and rule.minimum <= widget.value <= rule.maximum
    app = fill_and_submit(app, SHOT)
    assert not app.exception and not app.error and not app.warning
    assert metric_value(app, "Probability of a make") == f"{expected[config.PROBABILITY_COLUMN].iloc[0]:.1%}"
    assert "embedded" in app.success[0].value
    version = client.get_model_version(config.REGISTERED_MODEL_NAME, state.champion.version)
    assert support_from_json(reads.feature_support_text(client, version))["shot_distance"][1] < 25  # 2PT shots only
    app = fill_and_submit(app, {"shot_distance": 25.0})
    assert not app.exception
    assert "shot_distance=25" in app.warning[0].value and "Outside the training support" in app.warning[0].value


def test_inference_page_asks_the_served_api_and_names_it_when_unreachable(store, monkeypatch):
    with ScoringStub(distance_model) as stub:
        app = run_page("05_Inference.py")
        app.text_input[0].set_value(stub.url)
        app = fill_and_submit(app, SHOT)
    assert not app.exception and not app.error
    assert metric_value(app, "Probability of a make") == f"{1 - 17 / 94:.1%}"
    assert f"served API at {stub.url}/invocations" in app.success[0].value and len(stub.requests) == 1
    monkeypatch.setenv(SCORING_URL_ENV, stub.url)  # the page presets its URL field from it; nothing listens now
    app = fill_and_submit(run_page("05_Inference.py"), SHOT)
    assert not app.exception
    assert app.error[0].value.startswith(f"Could not reach the scoring API at {stub.url}/invocations")


# --- The Timeline page: the replay ------------------------------------------------------------


def test_timeline_shows_the_summary_the_chart_and_the_verdicts(logged_replay, monkeypatch):
    point_at(monkeypatch, logged_replay.workspace)
    result, batches = logged_replay.outcome, logged_replay.batches
    app = run_page("08_Timeline.py")
    assert common.page_files()[-1].name == "08_Timeline.py"
    summary = app.dataframe[0].value
    assert summary["strategy"].tolist() == [*replay.STRATEGIES, "null"]
    for strategy in replay.STRATEGIES:
        row = summary[summary["strategy"] == strategy].iloc[0]
        assert row["log_loss"] == pytest.approx(result.strategies[strategy].log_loss)
        assert row["retrains"] == result.strategies[strategy].retrains
    # Each strategy's verdict in words, once (the summary table holds the same column).
    markdown = " ".join(element.value for element in app.markdown)
    for row in summary[summary["strategy"] != "null"].itertuples():
        assert f"**{row.strategy}**: {row.verdict}." in markdown
    assert len(app.get("image")) == 1
    applicability = app.dataframe[1].value
    assert applicability.columns.tolist() == ["batch_number", "batch", *replay.STRATEGIES]
    assert applicability["batch_number"].tolist() == list(range(1, len(batches) + 1))
    assert set(applicability[list(replay.STRATEGIES)].to_numpy().ravel()) <= {APPLICABLE, QUESTIONABLE, NOT_APPLICABLE}
    every = app.dataframe[2].value
    assert len(every) == len(replay.STRATEGIES) * len(batches)
    assert (every["trained_through_batch"].fillna(0) < every["batch_number"]).all()
    assert str(every["rows_input"].dtype) == "Int64"  # counts read as integers
    # Numbered from 1, as the replay prints "[ 1/20]".
    assert "**First alert** (strategy never): batch 1 (2001-02)" in markdown
    assert result.run_id in " ".join(element.value for element in app.caption)


def test_timeline_before_any_replay_gives_the_replay_command(tmp_path, monkeypatch, empty_mlflow_db):
    point_at(monkeypatch, tmp_path)
    client = mlflow.MlflowClient(copy_empty_store(empty_mlflow_db, tmp_path / "mlflow.db"))
    client.create_experiment(config.EXPERIMENT_NAME)  # a store with a pipeline's experiment, no replay
    app = run_page("08_Timeline.py")
    assert "No replay yet: no finished replay" in app.info[0].value
    assert [block.value for block in app.code] == [f".venv/bin/python run_all.py --workspace {tmp_path} --replay"]
    assert not app.error


def timeline(strategies: dict[str, list[float]]) -> pd.DataFrame:
    """A hand-made timeline_frame, batches numbered from 1, with these log losses per strategy."""
    losses = [(name, number, loss) for name, values in strategies.items() for number, loss in enumerate(values, 1)]
    frame = pd.DataFrame(losses, columns=["strategy", "batch_index", "log_loss"])
    number = frame["batch_index"]
    frame = frame.assign(batch="season " + number.astype(str), trained_through_batch=number - 1, rows_input=10.0)
    frame = frame.assign(fired=number == 2, fired_triggers=np.where(number == 2, "feature_drift", ""))
    return common.numbered_batches(frame.assign(retrained=frame["strategy"] != "never", promoted=False))


def test_batches_are_numbered_from_one_and_counts_are_integers():
    shown = timeline({"never": [0.6, 0.7]})
    assert shown["batch_number"].tolist() == [1, 2]
    assert shown["trained_through_batch"].isna().tolist() == [True, False]  # 0: the development champion
    assert shown.loc[1, "trained_through_batch"] == 1 and str(shown["rows_input"].dtype) == "Int64"
    assert common.first_alert_text(shown) == "batch 2 (season 2): feature_drift"


def test_strategies_with_the_same_path_are_said_to_coincide():
    frame = timeline({"never": [0.6, 0.7], "reactive": [0.6, 0.65], "scheduled": [0.6, 0.65]})
    assert common.coinciding_strategies(frame) == [("reactive", "scheduled")]
    assert common.coinciding_strategies(timeline({"reactive": [0.6, 0.65], "scheduled": [0.6, 0.66]})) == []
