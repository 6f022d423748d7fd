"""The Streamlit dashboard through ``streamlit.testing.v1.AppTest``: every page, with and without a run.

Pages run in this process, so ``KOBE_WORKSPACE`` (monkeypatched) decides what they read; their
cached reads are keyed by workspace, so the empty and the full workspace never share an entry.
"""

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from kobe_mlops import config
from kobe_mlops.dashboard import common, inference, verdict
from kobe_mlops.data_acquisition.contract import FEATURE_RULES, cast_features
from kobe_mlops.modeling.support import support_from_json
from kobe_mlops.monitoring import calculators, health, triggers
from kobe_mlops.tracking import names, reads

# Importing streamlit sets MPLBACKEND=Agg for the whole process. The session pipeline's notebook
# kernels inherit the environment, and matplotlib 3.7 under IPython 9 fails to start with an
# explicit Agg backend (ImportError: backend2gui). This module only needs Agg in this process,
# where the dashboard's chart modules select it themselves.
os.environ.pop("MPLBACKEND", None)

DASHBOARD = config.PROJECT_ROOT / "Code" / "kobe_mlops" / "dashboard"
PAGES = {path.name: path for path in common.page_files()}
PAGE_TIMEOUT = 120  # seconds for one script run: a busy machine's first one imports and reads the store


def run_page(name: str) -> AppTest:
    app = AppTest.from_file(str(PAGES[name]), default_timeout=PAGE_TIMEOUT).run()
    assert not app.exception, [item.value for item in app.exception]
    return app


def page_text(app: AppTest) -> str:
    """Every text a user reads on the page, in one string."""
    parts = []
    for kind in ["title", "subheader", "markdown", "caption", "info", "warning", "error", "success"]:
        parts += [element.value for element in app.get(kind)]
    parts += [f"{metric.label}: {metric.value}" for metric in app.metric]
    return "\n".join(parts)


def metric_value(app: AppTest, label: str) -> str:
    return next(metric.value for metric in app.metric if metric.label == label)


@pytest.fixture
def dashboard_workspace(pipeline_run, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(pipeline_run.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(inference.SCORING_URL_ENV, raising=False)
    return pipeline_run


@pytest.fixture
def store(dashboard_workspace):
    client = mlflow.MlflowClient(dashboard_workspace.tracking_uri)
    state = health.load_pipeline_state(client)
    return client, state


# --- Layout -----------------------------------------------------------------------------------


def test_the_six_pages_are_discovered_in_order():
    # Later pages (07_...) may follow: adding one must not need a change here.
    assert list(PAGES)[:6] == [
        "01_Overview.py",
        "02_Data_drift.py",
        "03_Model_health_with_labels.py",
        "04_Model_health_without_labels.py",
        "05_Inference.py",
        "06_Retraining.py",
    ]


def test_a_new_page_file_is_picked_up_without_touching_the_app(tmp_path):
    for name in ["02_Second.py", "01_First.py", "10_Tenth.py", "helpers.py"]:
        (tmp_path / name).write_text("")
    assert [path.name for path in common.page_files(tmp_path)] == ["01_First.py", "02_Second.py", "10_Tenth.py"]


def test_pipeline_command_names_the_workspace_only_when_it_is_not_the_project(tmp_path):
    assert common.pipeline_command(config.PROJECT_ROOT) == ".venv/bin/python run_all.py"
    assert common.pipeline_command(tmp_path) == f".venv/bin/python run_all.py --workspace {tmp_path}"


def test_the_source_stamp_changes_when_the_pipeline_rewrites_a_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = common.current_source()
    paths = config.workspace_paths(tmp_path)
    paths.processed_dir.mkdir(parents=True)
    pd.DataFrame({"a": [1]}).to_parquet(paths.predictions_prod)
    after = common.current_source()
    assert before.workspace == after.workspace == str(tmp_path.resolve())
    assert before.tracking_uri == after.tracking_uri == f"sqlite:///{paths.mlflow_db}"
    assert before.stamp != after.stamp


# --- Every page with the session pipeline run -------------------------------------------------


def test_streamlit_run_serves_the_app_whose_sessions_run_the_navigation():
    from streamlit.web.server.app_discovery import discover_asgi_app

    assert discover_asgi_app(DASHBOARD / "app.py").is_asgi_app  # imported once, at server start


@pytest.mark.e2e  # the server's start-up, in a process of its own
def test_the_server_start_reads_an_empty_workspace_without_creating_a_store(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"} | {"KOBE_WORKSPACE": str(tmp_path)}
    started = subprocess.run(
        [sys.executable, "-c", f"import runpy; runpy.run_path({str(DASHBOARD / 'app.py')!r})"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert started.returncode == 0, started.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_navigation_opens_on_the_overview_and_navigates(dashboard_workspace):
    app = AppTest.from_file(str(DASHBOARD / "navigation.py"), default_timeout=PAGE_TIMEOUT).run()
    assert not app.exception
    assert [title.value for title in app.title] == ["Overview"]
    app.switch_page("views/06_Retraining.py").run()
    assert not app.exception and [title.value for title in app.title] == ["Retraining"]


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_a_pipeline_run_without_error(page, dashboard_workspace):
    app = run_page(page)
    assert [title.value for title in app.title] == [PAGES[page].stem.split("_", 1)[1].replace("_", " ")]
    # Alarms (a drift verdict, fired triggers) use error boxes; read failures must not appear.
    assert not [error.value for error in app.error if error.value.startswith("Cannot read")]
    assert not [info.value for info in app.info if "Nothing to show yet" in info.value]


def test_overview_shows_the_champion_metrics_and_runs(store):
    client, state = store
    app = run_page("01_Overview.py")
    text = page_text(app)
    champion = client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    assert config.REGISTERED_MODEL_NAME in text and metric_value(app, "Version") == str(champion.version)
    assert metric_value(app, "Alias") == config.CHAMPION_ALIAS
    assert champion.tags["selection_reason"] in text
    table = app.dataframe[0].value
    metrics = state.application.metrics
    assert table.loc["log_loss", "test"] == pytest.approx(state.training.metrics["log_loss_champion_test"])
    assert table.loc["log_loss", "production"] == pytest.approx(metrics[names.LOG_LOSS])
    assert table.loc["log_loss", verdict.BEFORE] == pytest.approx(metrics[names.NULL_LOG_LOSS])
    assert table.loc["log_loss", verdict.AFTER] == pytest.approx(metrics[names.PROD_NULL_LOG_LOSS])
    assert table.loc["f1", verdict.BEFORE] == pytest.approx(metrics["f1_baseline_prod"])
    # The verdict comes first, worded by the one function every page calls.
    expected = verdict.production_verdict(metrics)
    assert [box.value for box in app.get(expected.level)][0] == expected.text
    runs = app.dataframe[1].value
    assert set(config.RUN_NAMES.values()) <= set(runs["run"])


def test_data_drift_shows_the_table_step_04_logged(store, tmp_path):
    client, state = store
    path = client.download_artifacts(state.application.run_id, names.DRIFT_TABLE_ARTIFACT, str(tmp_path))
    logged = pd.read_json(path, orient="split").set_index("feature")
    app = run_page("02_Data_drift.py")
    text = page_text(app)
    assert app.error[0].value.startswith("**Verdict:** drift in") and "shot_distance" in app.error[0].value
    table = app.dataframe[0].value.set_index("feature")
    assert list(table.index) == config.FEATURES
    assert table["psi"].tolist() == pytest.approx(logged.loc[config.FEATURES, "value"].tolist())
    assert table["no-drift threshold"].tolist() == pytest.approx(logged.loc[config.FEATURES, "upper"].tolist())
    assert table.loc["shot_distance", "drift"]
    assert "Court map of shot locations" in text
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
    _, state = store
    metrics = state.application.metrics
    app = run_page("04_Model_health_without_labels.py")
    assert metric_value(app, "Realized log loss (graded rows)") == f"{metrics[names.LOG_LOSS]:.4f}"
    assert metric_value(app, "Predicted make rate in production") == f"{metrics[names.PREDICTED_MAKE_RATE]:.2%}"
    estimate = metrics[calculators.ESTIMATE_ALL]
    assert metric_value(app, "Estimated log loss (every scored row)") == f"{estimate:.4f}"
    support = app.dataframe[0].value.set_index("feature")
    assert list(support.index) == config.FEATURES
    assert len(app.get("image")) == 1


def test_retraining_lists_every_trigger_and_the_action(store):
    client, _ = store
    report = triggers.latest_trigger_report(client)
    app = run_page("06_Retraining.py")
    text = page_text(app)
    assert report.recommended_action in text
    for trigger in report.triggers:
        assert trigger.description in text
    table = app.dataframe[0].value
    assert table["fired"].tolist() == [trigger.fired for trigger in report.triggers]
    # A fresh pipeline: a champion, no challenger yet, no retraining decision.
    assert metric_value(app, "@champion") == "version 1"
    assert metric_value(app, "@challenger") == "none" and metric_value(app, "@previous") == "none"
    assert "The retraining loop has not run yet" in text


# --- Inference --------------------------------------------------------------------------------

SHOT = {"lat": 33.9723, "lon": -118.2698, "minutes_remaining": 3, "period": 2, "playoffs": 1, "shot_distance": 17.0}


def fill_and_submit(app: AppTest, values: dict) -> AppTest:
    for name, value in values.items():
        app.number_input(key=f"feature_{name}").set_value(value)
    return app.button[0].click().run()


def test_inference_form_returns_the_embedded_champion_probability(dashboard_workspace):
    mlflow.set_tracking_uri(dashboard_workspace.tracking_uri)
    expected = mlflow.pyfunc.load_model(config.CHAMPION_URI).predict(cast_features(pd.DataFrame([SHOT])))
    app = fill_and_submit(run_page("05_Inference.py"), SHOT)
    assert not app.exception and not app.error
    assert metric_value(app, "Probability of a make") == f"{expected[config.PROBABILITY_COLUMN].iloc[0]:.1%}"
    assert "embedded" in app.success[0].value


def test_inference_widgets_take_their_limits_from_the_data_contract(dashboard_workspace):
    app = run_page("05_Inference.py")
    for name, rule in FEATURE_RULES.items():
        widget = app.number_input(key=f"feature_{name}")
        assert (widget.min, widget.max) == (rule.minimum, rule.maximum)
        assert rule.minimum <= widget.value <= rule.maximum


class ScoringStub:
    """A loopback HTTP server speaking MLflow's /invocations protocol around a scoring function."""

    def __init__(self, score):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.requests.append((self.path, body))
                status, payload = score(pd.DataFrame(**body["dataframe_split"]))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.requests = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def distance_model(frame: pd.DataFrame):
    """A transparent stand-in for the served model: closer shots go in more often."""
    probability = (1 - frame["shot_distance"] / 94).round(6)
    return 200, {
        "predictions": [{config.PROBABILITY_COLUMN: p, config.PREDICTION_COLUMN: int(p >= 0.5)} for p in probability]
    }


def test_rest_client_speaks_the_mlflow_protocol():
    with ScoringStub(distance_model) as stub:
        scored = inference.RestScoringClient(stub.url).predict(pd.DataFrame([SHOT, {**SHOT, "shot_distance": 47.0}]))
    path, body = stub.requests[0]
    assert path == "/invocations"
    assert body["dataframe_split"]["columns"] == config.FEATURES
    assert scored[config.PROBABILITY_COLUMN].tolist() == pytest.approx([1 - 17 / 94, 0.5])


def test_rest_client_errors_name_the_url_and_the_reason():
    refusal = {"error_code": "INVALID_PARAMETER_VALUE", "message": "1 of 1 rows break the data contract: lat"}
    http_400 = pytest.raises(inference.ScoringError, match=r"/invocations answered HTTP 400: 1 of 1 rows break")
    with ScoringStub(lambda frame: (400, refusal)) as stub, http_400:
        inference.RestScoringClient(stub.url).predict(pd.DataFrame([SHOT]))
    no_predictions = pytest.raises(inference.ScoringError, match="without a 'predictions' list")
    with ScoringStub(lambda frame: (200, {"something": []})) as stub, no_predictions:
        inference.RestScoringClient(stub.url + "/invocations").predict(pd.DataFrame([SHOT]))
    closed = stub.url  # the server is shut down: nothing listens there any more
    with pytest.raises(inference.ScoringError, match=f"Could not reach the scoring API at {closed}/invocations"):
        inference.RestScoringClient(closed, timeout=5).predict(pd.DataFrame([SHOT]))


def test_inference_page_asks_the_served_api_when_a_url_is_set(dashboard_workspace):
    with ScoringStub(distance_model) as stub:
        app = run_page("05_Inference.py")
        app.text_input[0].set_value(stub.url)
        app = fill_and_submit(app, SHOT)
    assert not app.exception and not app.error
    assert metric_value(app, "Probability of a make") == f"{1 - 17 / 94:.1%}"
    assert f"served API at {stub.url}/invocations" in app.success[0].value
    assert len(stub.requests) == 1


def test_inference_page_reports_an_unreachable_api_clearly(dashboard_workspace, monkeypatch):
    with ScoringStub(distance_model) as stub:
        url = stub.url
    monkeypatch.setenv(inference.SCORING_URL_ENV, url)  # the page presets its URL field from it
    app = fill_and_submit(run_page("05_Inference.py"), SHOT)
    assert not app.exception
    assert app.error[0].value.startswith(f"Could not reach the scoring API at {url}/invocations")


def test_validation_names_the_column_and_value():
    assert inference.validate_shot(SHOT) is None
    message = inference.validate_shot({**SHOT, "shot_distance": 120.0, "period": 2.5})
    assert "shot_distance=120 outside number in [0, 94]" in message
    assert "period=2.5 is not a whole number" in message
    with pytest.raises(ValueError, match="shot_distance=120"):
        inference.make_probability({**SHOT, "shot_distance": 120.0}, model=None)
    with pytest.raises(ValueError, match="missing feature value"):
        inference.shot_frame({"lat": 34.0})


def test_input_limits_and_defaults_respect_the_contract():
    development = pd.DataFrame(
        {
            "lat": [34.0, 33.9, 33.95],
            "lon": [-118.2] * 3,
            "minutes_remaining": [1, 2, 4],
            "period": [1, 1, 2],
            "playoffs": [0, 0, 1],
            "shot_distance": [3.0, 90.0, 10.0],
        }
    )
    defaults = inference.default_values(development)
    assert defaults["lat"] == 33.95 and defaults["minutes_remaining"] == 2 and defaults["shot_distance"] == 10.0
    middle = inference.default_values(None)
    for name, rule in FEATURE_RULES.items():
        limits = inference.input_limits(rule)
        assert (limits["min_value"], limits["max_value"]) == (rule.minimum, rule.maximum)
        assert isinstance(middle[name], int) == rule.integer
        assert rule.minimum <= middle[name] <= rule.maximum


# --- Every page before any pipeline run --------------------------------------------------------


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_says_what_to_run_in_an_empty_workspace(page, tmp_path, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(inference.SCORING_URL_ENV, raising=False)
    app = run_page(page)
    assert "Nothing to show yet" in app.info[0].value
    assert [block.value for block in app.code] == [f".venv/bin/python run_all.py --workspace {tmp_path.resolve()}"]
    assert not app.error
    assert list(tmp_path.iterdir()) == []  # reading an empty workspace creates no store and no file


def test_readme_gives_the_exact_command_on_loopback():
    readme = (config.PROJECT_ROOT / "README.md").read_text()
    command = next(line for line in readme.splitlines() if "streamlit run" in line)
    script = command.split("streamlit run ", 1)[1].split()[0]
    assert (config.PROJECT_ROOT / script) == DASHBOARD / "app.py" and (config.PROJECT_ROOT / script).is_file()
    assert "--server.address 127.0.0.1" in command
    assert "http://127.0.0.1:8501" in readme


def test_a_corrupt_processed_file_is_named_not_a_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv(inference.SCORING_URL_ENV, "http://127.0.0.1:5001")  # the form reads data_filtered
    paths = config.workspace_paths(tmp_path)
    paths.processed_dir.mkdir(parents=True)
    paths.data_filtered.write_text("not a parquet file")
    app = run_page("05_Inference.py")
    assert app.error[0].value.startswith(f"Cannot read data/processed: {paths.data_filtered}: not a readable parquet")


def test_an_unreachable_tracking_server_is_named_not_a_traceback(tmp_path, monkeypatch):
    with ScoringStub(distance_model) as stub:
        url = stub.url  # a loopback port where nothing listens once the stub is closed
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # fail at once instead of backing off
    app = run_page("01_Overview.py")
    assert app.error[0].value.startswith(f"Cannot read the tracking store {url}:")


def test_trends_shows_the_single_application_run_and_asks_for_a_second(store):
    from kobe_mlops.monitoring import trends

    client, _ = store
    report = triggers.latest_trigger_report(client)  # the session pipeline made one application run
    app = run_page("07_Trends.py")
    text = page_text(app)
    assert "A trend needs at least two application runs" in text
    assert "Code/kobe_mlops/monitoring/triggers.py" in text
    for trigger in report.triggers:
        assert metric_value(app, common.sentence_case(trends.TRIGGER_LABELS[trigger.name])) == f"{trigger.value:.4f}"
    assert len(app.get("image")) == len(report.triggers)
    runs = app.dataframe[1].value
    assert runs["run id"].tolist() == [report.application_run_id]
    drift = next(trigger for trigger in report.triggers if trigger.name == triggers.FEATURE_DRIFT)
    assert runs[f"{trends.TRIGGER_LABELS[triggers.FEATURE_DRIFT]} fired"].tolist() == [drift.fired]


# --- Pages read what step 04 logged -----------------------------------------------------------


def test_pages_show_the_logged_figures_without_the_predictions_file(workspace_copy, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace_copy.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    metrics = health.load_pipeline_state(mlflow.MlflowClient(workspace_copy.tracking_uri)).application.metrics
    workspace_copy.paths.predictions_prod.unlink()  # nothing on these pages may come from it
    expected = verdict.production_verdict(metrics).text
    for page in ["01_Overview.py", "03_Model_health_with_labels.py", "06_Retraining.py"]:
        assert expected in page_text(run_page(page)), page
    assert run_page("02_Data_drift.py").error[0].value.startswith("**Verdict:** drift in")
    without_labels = run_page("04_Model_health_without_labels.py")
    realized = f"{metrics[names.LOG_LOSS]:.4f}"
    assert metric_value(without_labels, "Realized log loss (graded rows)") == realized


def test_after_a_promotion_every_page_shows_the_figures_the_step_logged_on_unseen_rows(workspace_copy, monkeypatch):
    """A model that learned most labelled rows scored the file: the step graded only the others and
    logged figures no regrade of the predictions file gives; each page shows those."""
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace_copy.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logged = {
        names.ROWS_INPUT: 6426,
        names.ROWS_SCORED: 6426,
        names.ROWS_REJECTED: 0,
        names.ROWS_LABELLED: 5412,
        names.ROWS_SEEN_IN_TRAINING: 4178,
        names.ROWS_EVALUATED: 1234,
        names.LOG_LOSS: 0.61234,
        names.NULL_LOG_LOSS: 0.65432,
        names.PROD_NULL_LOG_LOSS: 0.63456,
        names.prod_metric("auc"): 0.5678,
        names.prod_metric("f1"): 0.4321,
    }
    log_application_run(workspace_copy.tracking_uri, logged)
    expected = verdict.production_verdict(logged).text
    assert "1,234 graded production rows" in expected
    for page in ["01_Overview.py", "03_Model_health_with_labels.py", "06_Retraining.py"]:
        assert expected in page_text(run_page(page)), page
    with_labels = run_page("03_Model_health_with_labels.py")
    assert metric_value(with_labels, "log loss (production)") == "0.612"
    assert metric_value(with_labels, "f1 (production)") == "0.432"
    caption = page_text(with_labels)
    assert "1,234 labelled rows graded by step 04" in caption and "4,178 labelled rows it was trained on" in caption
    without_labels = run_page("04_Model_health_without_labels.py")
    assert metric_value(without_labels, "Realized log loss (graded rows)") == "0.6123"
    trends_page = run_page("07_Trends.py")
    assert metric_value(trends_page, "Production log loss") == "0.6123"


def log_application_run(tracking_uri: str, metrics: dict) -> None:
    """A PipelineAplicacao run of the registered champion with these metrics (as step 04 names them)."""
    client = mlflow.MlflowClient(tracking_uri)
    champion = client.get_model_version_by_alias(config.REGISTERED_MODEL_NAME, config.CHAMPION_ALIAS)
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME).experiment_id
    run = client.create_run(experiment, run_name=config.RUN_NAMES["aplicacao"])
    client.log_param(run.info.run_id, "model_name", config.REGISTERED_MODEL_NAME)
    client.log_param(run.info.run_id, "model_version", champion.version)
    for name, value in metrics.items():
        client.log_metric(run.info.run_id, name, value)
    client.set_terminated(run.info.run_id)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_says_so_when_the_latest_run_scored_no_row(page, workspace_copy, monkeypatch):
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace_copy.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(inference.SCORING_URL_ENV, raising=False)
    log_application_run(workspace_copy.tracking_uri, {name: 0 for name in names.COUNT_METRICS})
    predictions = workspace_copy.paths.predictions_prod
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


def test_a_model_beaten_by_the_constant_at_production_rate_does_not_fit():
    result = verdict.production_verdict(DOES_NOT_FIT)
    assert result.level == "error" and not result.fits
    assert result.text.startswith("The model does not fit production on 5,412 graded production rows")
    assert "0.6476" in result.text and "0.6787" in result.text and "0.6337" in result.text
    assert "AUC 0.4872 is below chance" in result.text


def test_a_model_that_beats_both_constants_fits_and_a_low_auc_still_flags():
    fits = verdict.production_verdict({**DOES_NOT_FIT, names.LOG_LOSS: 0.62, names.prod_metric("auc"): 0.56})
    assert fits.fits and "below chance" not in fits.text
    flagged = verdict.production_verdict({**DOES_NOT_FIT, names.LOG_LOSS: 0.62})
    assert flagged.level == "error" and "below chance" in flagged.text
    worse = verdict.production_verdict({**DOES_NOT_FIT, names.LOG_LOSS: 0.70, names.prod_metric("auc"): 0.6})
    assert "worse than the constant known before production" in worse.text
    assert verdict.production_verdict({}).level == "info"


def test_the_yardstick_table_puts_each_constant_in_its_column():
    table = verdict.yardstick_table({names.champion_test_metric("log_loss"): 0.67}, DOES_NOT_FIT)
    assert table.loc["log_loss", "test"] == 0.67
    assert table.loc["log_loss", verdict.BEFORE] == 0.6787 and table.loc["log_loss", verdict.AFTER] == 0.6337
    assert table.loc["auc", verdict.AFTER] == 0.5 and np.isnan(table.loc["f1", verdict.AFTER])


# --- Inference outside the training support ----------------------------------------------------


def test_inference_warns_when_a_shot_lies_outside_the_training_support(store):
    client, state = store
    version = client.get_model_version(config.REGISTERED_MODEL_NAME, state.champion.version)
    support = support_from_json(reads.feature_support_text(client, version))
    assert support["shot_distance"][1] < 25  # the champion learned 2PT shots only
    app = fill_and_submit(run_page("05_Inference.py"), {**SHOT, "shot_distance": 25.0})
    assert not app.exception
    assert "shot_distance=25" in app.warning[0].value and "Outside the training support" in app.warning[0].value
    inside = fill_and_submit(run_page("05_Inference.py"), SHOT)
    assert not inside.warning


def test_the_support_message_names_only_the_features_outside():
    support = {
        "lat": (33.8, 34.1),
        "lon": (-118.5, -118.0),
        "minutes_remaining": (0, 11),
        "period": (1, 4),
        "playoffs": (0, 1),
        "shot_distance": (0, 22),
    }
    assert inference.outside_support_message(SHOT, support, "1") is None
    message = inference.outside_support_message({**SHOT, "shot_distance": 25.0, "period": 5}, support, "1")
    assert "shot_distance=25 (trained on 0 to 22)" in message and "period=5" in message and "lat=" not in message


def test_the_gate_candidates_are_read_from_the_validation_run_best_first():
    from datetime import UTC, datetime

    gate = health.RunSummary(
        "run",
        config.RETRAINING_RUN_NAMES["validacao_challenger"],
        "FINISHED",
        datetime.now(UTC),
        None,
        metrics={
            "holdout_log_loss_champion": 0.6086,
            "holdout_log_loss_challenger": 0.6108,
            "holdout_log_loss_null": 0.6129,
            "holdout_rows": 1629.0,
            "holdout_gain": -0.0022,
        },
    )
    assert common.gate_candidates(gate) == {"champion": 0.6086, "challenger": 0.6108, "null": 0.6129}
