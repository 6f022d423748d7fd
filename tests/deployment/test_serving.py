"""The champion served by a real `mlflow models serve` on a loopback port."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from conftest import ScoringStub, distance_model, run_pipeline
from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import split_valid_rows
from kobe_mlops.deployment.serving import ModelServer, RestScoringClient, ScoringError, free_port
from kobe_mlops.tracking import names


@pytest.fixture(scope="module")
def server(pipeline_run):
    with ModelServer(config.CHAMPION_URI, tracking_uri=pipeline_run.tracking_uri) as running:
        yield running


SHOT = [34.0443, -118.2698, 5, 2, 0, 0.0]
JSON = {"Content-Type": "application/json"}


def body(row: list, columns: list[str] = config.FEATURES) -> str:
    return json.dumps({"dataframe_split": {"columns": columns, "data": [row]}})


def body_with(value: str) -> str:
    """A one-shot JSON body with ``value`` written verbatim as minutes_remaining."""
    return body([*SHOT[:2], "VALUE", *SHOT[3:]]).replace('"VALUE"', value)


def test_ping_version_and_probabilities_also_of_numbers_written_as_text(server):
    """What the README says: "34.0443" for lat is read as 34.0443 (the data contract converts it)."""
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/version", timeout=5).text.strip() == mlflow.__version__
    shots = {
        "columns": config.FEATURES,
        "data": [SHOT, [str(value) for value in SHOT], [33.97, -118.1, 10, 1, 0, 18.0]],
    }
    response = requests.post(f"{server.url}/invocations", json={"dataframe_split": shots}, timeout=10)
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert len(predictions) == 3 and predictions[0] == predictions[1]
    for row in predictions:
        assert 0 < row[config.PROBABILITY_COLUMN] < 1
        assert row[config.PREDICTION_COLUMN] == int(row[config.PROBABILITY_COLUMN] >= 0.5)


def test_served_probabilities_equal_the_embedded_model_and_refusals_name_the_reason(server, pipeline_run, tracking):
    production, _ = split_valid_rows(pd.read_parquet(pipeline_run.paths.raw_file("prod")))
    embedded = mlflow.pyfunc.load_model(config.CHAMPION_URI).predict(production[config.FEATURES])
    served = RestScoringClient(server.url, batch_rows=2000).predict(production)  # several batches
    assert len(served) == len(production) == 6426
    np.testing.assert_allclose(
        served[config.PROBABILITY_COLUMN], embedded[config.PROBABILITY_COLUMN], rtol=0, atol=1e-9
    )
    assert (served[config.PREDICTION_COLUMN].to_numpy() == embedded[config.PREDICTION_COLUMN].to_numpy()).all()
    bad = pd.DataFrame([[33.9, -118.3, 5, 99, 0, 20.0]], columns=config.FEATURES)
    with pytest.raises(
        ScoringError, match=r"(?s)answered HTTP 400: .*1 of 1 rows break the data contract: row 0: period=99"
    ):
        RestScoringClient(server.url).predict(bad)


@pytest.mark.parametrize(
    "data, headers, status, expected",
    [
        (body(SHOT[:5], config.FEATURES[:5]), JSON, 400, "Model is missing inputs ['shot_distance']"),
        (body_with('"five"'), JSON, 400, "minutes_remaining"),
        (body([*SHOT[:3], 99, *SHOT[4:]]), JSON, 400, "row 0: period=99 outside"),
        ("{", JSON, 400, "Ensure that input is a valid JSON formatted string"),
        ("a,b", {"Content-Type": "text/plain"}, 415, "only supports the following content types"),
        (body(SHOT), {}, 500, "Internal Server Error"),
        ("[" * 10_000 + "]" * 10_000, JSON, 500, "Internal Server Error"),
        (body_with("9" * 5_000), JSON, 500, "Internal Server Error"),
    ],
    ids=["missing-column", "text", "out-of-contract", "not-json", "text-plain", "no-type", "nested", "5000-digits"],
)
def test_bad_requests_get_the_answers_the_readme_lists_and_the_server_keeps_serving(
    server, data, headers, status, expected
):
    """The 500s fail in MLflow's server before the model is called: no guard inside it can answer them."""
    response = requests.post(f"{server.url}/invocations", data=data, headers=headers, timeout=30)
    assert response.status_code == status and expected in response.text, response.text
    assert requests.post(f"{server.url}/invocations", data=body(SHOT), headers=JSON, timeout=10).ok


def test_rest_client_speaks_the_mlflow_protocol_and_names_the_reason_of_errors():
    shot = dict(zip(config.FEATURES, SHOT, strict=True))
    with ScoringStub(distance_model) as stub:
        scored = RestScoringClient(stub.url).predict(pd.DataFrame([shot, {**shot, "shot_distance": 47.0}]))
    path, body = stub.requests[0]
    assert path == "/invocations" and body["dataframe_split"]["columns"] == config.FEATURES
    assert scored[config.PROBABILITY_COLUMN].tolist() == pytest.approx([1.0, 0.5])
    refusal = {"error_code": "INVALID_PARAMETER_VALUE", "message": "1 of 1 rows break the data contract: lat"}
    http_400 = pytest.raises(ScoringError, match=r"/invocations answered HTTP 400: 1 of 1 rows break")
    with ScoringStub(lambda frame: (400, refusal)) as stub, http_400:
        RestScoringClient(stub.url).predict(pd.DataFrame([shot]))
    no_predictions = pytest.raises(ScoringError, match="without a 'predictions' list")
    with ScoringStub(lambda frame: (200, {"something": []})) as stub, no_predictions:
        RestScoringClient(stub.url + "/invocations").predict(pd.DataFrame([shot]))


def test_application_step_through_the_api_matches_the_embedded_run(server, workspace_copy, pipeline_run):
    embedded = pd.read_parquet(pipeline_run.paths.predictions_prod)
    run_pipeline(workspace_copy.workspace, "--steps", "04", "--scoring-url", server.url)
    served = pd.read_parquet(workspace_copy.paths.predictions_prod)
    # The same rows, labels and model version; the scoring time is each run's own.
    per_run = [config.PROBABILITY_COLUMN, names.SCORED_AT_COLUMN]
    pd.testing.assert_frame_equal(served.drop(columns=per_run), embedded.drop(columns=per_run))
    np.testing.assert_allclose(
        served[config.PROBABILITY_COLUMN], embedded[config.PROBABILITY_COLUMN], rtol=0, atol=1e-9
    )
    client = mlflow.MlflowClient(workspace_copy.tracking_uri)
    experiment = client.get_experiment_by_name(config.EXPERIMENT_NAME)
    latest = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)[0]
    assert latest.info.run_name == "PipelineAplicacao" and latest.data.params["scoring_url"] == server.url
    metrics = latest.data.metrics
    assert metrics["rows_scored"] + metrics["rows_rejected"] == metrics["rows_input"]


def test_application_step_with_the_server_down_fails_with_one_message(workspace_copy):
    closed = f"http://127.0.0.1:{free_port()}"
    before = workspace_copy.paths.predictions_prod.stat().st_mtime_ns
    result = run_pipeline(workspace_copy.workspace, "--steps", "04", "--scoring-url", closed, check=False)
    assert result.returncode == 1
    assert f"ScoringError: Could not reach the scoring API at {closed}/invocations" in result.stderr
    assert "Traceback" not in result.stderr
    assert workspace_copy.paths.predictions_prod.stat().st_mtime_ns == before  # nothing half-written


def test_readme_serve_command_is_the_one_the_helper_runs():
    readme = " ".join((config.PROJECT_ROOT / "README.md").read_text().replace("\\\n", " ").split())
    server = ModelServer(config.CHAMPION_URI, port=5001)
    documented = " ".join(["mlflow", *server.command()[1:-2]])  # the README leaves --workers at its default
    assert documented in readme, documented
    assert 'PATH="$PWD/.venv/bin:$PATH"' in readme  # uvicorn is started by name
