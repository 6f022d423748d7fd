"""The logged model takes the six features as whatever numeric dtypes a pandas user holds.

A small fitted pipeline is logged with ``log_and_register`` to a SQLite store in a temporary
folder and loaded back through ``models:/...@champion``, the way a user loads the champion: MLflow's
schema enforcement runs before the model, so these tests see what a user sees.
"""

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import scoring_server
from mlflow.types.schema import AnyType
from test_shot_model import fitted_pipeline, shots

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import cast_features
from kobe_mlops.modeling.registry import input_contract, log_and_register
from kobe_mlops.modeling.train import Candidate


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """(the loaded champion, its model version, the fitted pipeline) from a private SQLite store."""
    folder = tmp_path_factory.mktemp("store")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")  # the registry follows it
    try:
        experiment = mlflow.create_experiment("signature", artifact_location=(folder / "artifacts").as_uri())
        pipeline = fitted_pipeline()
        candidate = Candidate("lr", pipeline, {}, 0.6, pd.DataFrame())
        with mlflow.start_run(experiment_id=experiment):
            _, version = log_and_register(candidate, cast_features(shots(seed=1)[0]))
        model = mlflow.pyfunc.load_model(config.CHAMPION_URI)
        yield model, mlflow.MlflowClient().get_model_version(config.REGISTERED_MODEL_NAME, version), pipeline
    finally:
        mlflow.set_tracking_uri(previous)


def course_like(rows: int = 40, seed: int = 3) -> pd.DataFrame:
    """Rows in the course files' dtypes, index not from 0; lat and lon are multiples of 1/64, so every
    dtype variant below (float32 too) holds the same values."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "lat": rng.integers(33 * 64 + 16, 34 * 64 + 4, rows) / 64,
            "lon": -rng.integers(118 * 64, 118 * 64 + 32, rows) / 64,
            "minutes_remaining": rng.integers(0, 12, rows),
            "period": rng.integers(1, 5, rows),
            "playoffs": rng.integers(0, 2, rows),
            "shot_distance": rng.integers(0, 30, rows),
        },
        index=np.arange(10, 10 + rows)[::-1],
    )
    assert (frame.dtypes[["minutes_remaining", "period", "playoffs", "shot_distance"]] == "int64").all()
    return frame


WHOLE = ["minutes_remaining", "period", "playoffs", "shot_distance"]
VARIANTS = {
    "course-files": lambda f: f,
    "all-float64": lambda f: f.astype("float64"),
    "all-float32": lambda f: f.astype("float32"),
    "whole-int32": lambda f: f.astype(dict.fromkeys(WHOLE, "int32")),
    "whole-float32-lat-lon-float64": lambda f: f.astype(dict.fromkeys(WHOLE, "float32")),
    "all-int64": lambda f: f.assign(lat=34, lon=-118),  # the only whole lat/lon inside the contract
    "numbers-as-text": lambda f: f.astype({"minutes_remaining": str, "lat": object}),
    "reordered-with-extra-columns": lambda f: f[config.FEATURES[::-1]].assign(
        shot_id=np.arange(len(f)), action_type="Jump Shot", shot_made_flag=np.nan
    ),
}


def test_the_schema_names_the_six_required_features_and_the_contract_documents_them(logged):
    model, version, _ = logged
    inputs = model.metadata.get_input_schema()
    assert inputs.input_names() == config.FEATURES
    assert inputs.required_input_names() == config.FEATURES
    assert all(isinstance(kind, AnyType) for kind in inputs.input_types())
    assert model.metadata.get_output_schema().input_names() == [config.PROBABILITY_COLUMN, config.PREDICTION_COLUMN]
    contract = model.metadata.metadata["input_contract"]
    assert contract == input_contract() and list(contract) == config.FEATURES
    assert contract["period"].startswith("whole number in [1, 10]")
    assert contract["lat"].startswith("number in [33.2, 34.1]")
    for name, text in contract.items():
        assert f"| `{name}` | {text.split(': ')[0]} |" in version.description


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_the_same_values_give_the_same_probabilities_whatever_the_dtypes(logged, variant):
    """Each variant holds the values of its float64 twin, and is scored exactly as the twin is."""
    model, _, pipeline = logged
    frame = VARIANTS[variant](course_like())
    twin = frame[config.FEATURES].astype("float64")
    scored = model.predict(frame)
    assert scored.index.equals(frame.index)
    np.testing.assert_array_equal(scored.to_numpy(), model.predict(twin).to_numpy())
    expected = pipeline.predict_proba(cast_features(twin))[:, 1]  # in the dtypes the pipeline was trained on
    np.testing.assert_allclose(scored[config.PROBABILITY_COLUMN], expected, rtol=0, atol=1e-12)
    assert (scored[config.PREDICTION_COLUMN] == (scored[config.PROBABILITY_COLUMN] >= 0.5)).all()


@pytest.mark.parametrize(
    "column, dtype, value, message",
    [
        ("lat", object, "north", "1 of 4 rows break the data contract: row 2: lat is not a number: north"),
        ("period", "float64", 12, "row 2: period=12 outside whole number in [1, 10]"),
        ("minutes_remaining", "float64", 5.5, "row 2: minutes_remaining=5.5 is not a whole number"),
        ("shot_distance", "float64", np.nan, "row 2: shot_distance is missing"),
        ("lon", "float32", -117.5, "row 2: lon=-117.5 outside number in [-118.55, -118]"),
    ],
    ids=["text", "out-of-range", "fraction-in-whole-column", "missing-value", "float32-out-of-range"],
)
def test_values_outside_the_contract_get_its_message(logged, column, dtype, value, message):
    model, _, _ = logged
    frame = course_like(rows=4).reset_index(drop=True).astype({column: dtype})
    frame.loc[2, column] = value
    with pytest.raises(MlflowException, match=message.replace("[", r"\[").replace("]", r"\]")):
        model.predict(frame)


def serve(model, body: dict):
    """What ``mlflow models serve`` runs for a JSON request, in process: parse, enforce, predict."""
    return scoring_server.invocations(json.dumps(body), "application/json", model, model.metadata.get_input_schema())


def test_served_json_takes_ints_and_floats(logged):
    model, _, _ = logged
    frame = course_like(rows=3)
    as_ints = frame.astype({"shot_distance": "int64"}).to_dict(orient="split", index=False)
    as_floats = frame.astype("float64").to_dict(orient="split", index=False)
    answers = [serve(model, {"dataframe_split": body}) for body in (as_ints, as_floats)]
    assert [answer.status for answer in answers] == [200, 200]
    predictions = [pd.DataFrame(json.loads(answer.response)["predictions"]) for answer in answers]
    pd.testing.assert_frame_equal(predictions[0], predictions[1])
    np.testing.assert_allclose(
        predictions[0][config.PROBABILITY_COLUMN], model.predict(frame)[config.PROBABILITY_COLUMN], rtol=0, atol=1e-15
    )


@pytest.mark.parametrize(
    "columns, row, message",
    [
        (config.FEATURES[:-1], [33.9, -118.3, 5, 2, 0], "Model is missing inputs ['shot_distance']"),
        (config.FEATURES, [33.9, -118.3, "five", 2, 0, 20.0], "row 0: minutes_remaining is not a number: five"),
        (config.FEATURES, [33.9, -118.3, 5, 99, 0, 20.0], "row 0: period=99 outside whole number in [1, 10]"),
        # A long-typed schema cast 5.5 to 5 before the model saw it; now the contract refuses it.
        (config.FEATURES, [33.9, -118.3, 5.5, 2, 0, 20.0], "row 0: minutes_remaining=5.5 is not a whole number"),
    ],
    ids=["missing-column", "text-in-numeric-field", "out-of-contract", "fraction-in-whole-column"],
)
def test_served_malformed_payloads_get_a_400_with_the_reason(logged, columns, row, message):
    model, _, _ = logged
    with pytest.raises(MlflowException) as refused:
        serve(model, {"dataframe_split": {"columns": columns, "data": [row]}})
    assert refused.value.get_http_status_code() == 400
    assert message in refused.value.message
