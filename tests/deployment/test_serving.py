"""The champion served by a real `mlflow models serve` on a loopback port."""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from conftest import run_pipeline
from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import split_valid_rows
from kobe_mlops.deployment.serving import ModelServer, RestScoringClient, ScoringError, free_port
from kobe_mlops.tracking import names


@pytest.fixture(scope="module")
def server(pipeline_run):
    with ModelServer(config.CHAMPION_URI, tracking_uri=pipeline_run.tracking_uri) as running:
        yield running


@pytest.fixture(scope="module")
def production(pipeline_run) -> pd.DataFrame:
    valid, _ = split_valid_rows(pd.read_parquet(pipeline_run.paths.raw_file("prod")))
    return valid


def test_ping_version_and_probabilities(server):
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200
    assert requests.get(f"{server.url}/version", timeout=5).text.strip() == mlflow.__version__
    shots = {"columns": config.FEATURES, "data": [[33.97, -118.10, 10, 1, 0, 18.0], [34.04, -118.27, 5, 3, 0, 0.0]]}
    response = requests.post(f"{server.url}/invocations", json={"dataframe_split": shots}, timeout=10)
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert len(predictions) == 2
    for row in predictions:
        assert 0 < row[config.PROBABILITY_COLUMN] < 1
        assert row[config.PREDICTION_COLUMN] == int(row[config.PROBABILITY_COLUMN] >= 0.5)


def test_served_probabilities_equal_the_embedded_model(server, production, tracking):
    embedded = mlflow.pyfunc.load_model(config.CHAMPION_URI).predict(production[config.FEATURES])
    served = RestScoringClient(server.url, batch_rows=2000).predict(production)  # several batches
    assert len(served) == len(production) == 6426
    np.testing.assert_allclose(
        served[config.PROBABILITY_COLUMN], embedded[config.PROBABILITY_COLUMN], rtol=0, atol=1e-9
    )
    assert (served[config.PREDICTION_COLUMN].to_numpy() == embedded[config.PREDICTION_COLUMN].to_numpy()).all()


@pytest.mark.parametrize(
    "columns, row, expected",
    [
        (["lat", "lon", "minutes_remaining", "period", "playoffs"], [33.9, -118.3, 5, 2, 0], "shot_distance"),
        (config.FEATURES, [33.9, -118.3, "five", 2, 0, 20.0], "minutes_remaining"),
        (config.FEATURES, [33.9, -118.3, 5, 99, 0, 20.0], "period=99 outside"),
    ],
    ids=["missing-column", "text-in-numeric-field", "out-of-contract"],
)
def test_malformed_payloads_get_a_4xx_with_the_reason(server, columns, row, expected):
    body = {"dataframe_split": {"columns": columns, "data": [row]}}
    response = requests.post(f"{server.url}/invocations", json=body, timeout=10)
    assert 400 <= response.status_code < 500, response.text
    assert expected in response.json()["message"]


SHOT = [34.0443, -118.2698, 5, 2, 0, 0.0]


def test_numeric_strings_are_scored_as_the_numbers_they_spell(server):
    """What the README says: "34.0443" for lat is read as 34.0443 (the data contract converts it)."""

    def probability(row):
        body = {"dataframe_split": {"columns": config.FEATURES, "data": [row]}}
        response = requests.post(f"{server.url}/invocations", json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["predictions"][0][config.PROBABILITY_COLUMN]

    assert probability([str(value) for value in SHOT]) == probability(SHOT)


def body_with(value: str) -> str:
    """A one-shot JSON body with ``value`` written verbatim as minutes_remaining."""
    row = ", ".join([*map(str, SHOT[:2]), value, *map(str, SHOT[3:])])
    return f'{{"dataframe_split": {{"columns": {json.dumps(config.FEATURES)}, "data": [[{row}]]}}}}'


@pytest.mark.parametrize(
    "data, headers",
    [
        ("[" * 10_000 + "]" * 10_000, {"Content-Type": "application/json"}),
        (body_with("5"), {}),
        (body_with("9" * 5_000), {"Content-Type": "application/json"}),
    ],
    ids=["json-nested-10000-deep", "no-content-type", "5000-digit-integer"],
)
def test_what_mlflow_s_server_answers_to_requests_it_cannot_parse(server, data, headers):
    """MLflow's server fails these before the model is called, so no guard inside the model can
    answer them: a bare 500, exactly as the README documents. The server keeps serving."""
    response = requests.post(f"{server.url}/invocations", data=data, headers=headers, timeout=30)
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    assert requests.get(f"{server.url}/ping", timeout=5).status_code == 200
    ok = requests.post(f"{server.url}/invocations", data=body_with("5"), headers={"Content-Type": "application/json"})
    assert ok.status_code == 200


def test_an_unknown_content_type_gets_415_and_a_body_that_is_not_json_400(server):
    url = f"{server.url}/invocations"
    response = requests.post(url, data="a,b", headers={"Content-Type": "text/plain"}, timeout=10)
    assert response.status_code == 415 and "only supports the following content types" in response.text
    response = requests.post(url, data="{", headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400 and "Ensure that input is a valid JSON formatted string" in response.text


def test_client_errors_name_the_url(server):
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ScoringError, match=f"Could not reach the scoring API at {closed}/invocations"):
        RestScoringClient(closed, timeout=5).predict(
            pd.DataFrame([[33.9, -118.3, 5, 2, 0, 20.0]], columns=config.FEATURES)
        )
    bad = pd.DataFrame([[33.9, -118.3, 5, 99, 0, 20.0]], columns=config.FEATURES)
    with pytest.raises(
        ScoringError, match=r"(?s)answered HTTP 400: .*1 of 1 rows break the data contract: row 0: period=99"
    ):
        RestScoringClient(server.url).predict(bad)


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
    assert (
        latest.data.metrics["rows_scored"] + latest.data.metrics["rows_rejected"] == latest.data.metrics["rows_input"]
    )


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
