"""Scoring a production frame: every row is scored or rejected with a reason, ids and labels carried."""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from deployment_support import DistanceModel, Keep, outputs, shots, write

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import REASON_COLUMN
from kobe_mlops.deployment.application import Stamp, apply_to_file, score_frame
from kobe_mlops.tracking import names


def production(rows: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "shot_id": np.arange(rows) + 101,
            "game_date": [f"2010-01-{day:02d}" for day in range(1, rows + 1)],
            "lat": [33.9] * rows,
            "lon": [-118.3] * rows,
            "minutes_remaining": [5] * rows,
            "period": [2] * rows,
            "playoffs": [0] * rows,
            "shot_distance": [10.0 * i for i in range(rows)],
            "shot_type": ["3PT Field Goal"] * rows,  # not a feature: not carried into the predictions
            config.TARGET: [1.0, 1.0, np.nan, 0.0, 0.0, 1.0][:rows],
        }
    )


def test_every_row_is_scored_or_rejected_with_its_reason_and_predictions_carry_what_scored_them():
    """The model sees only the valid rows' features; a prediction carries the row's ids, features,
    label, its own probability, the model version and the scoring time."""
    frame = production().astype({"lat": object})
    frame.loc[1, "lat"] = "north"
    frame.loc[4, "period"] = 0
    model, scored_at = DistanceModel(), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    result = score_frame(frame, model, source="prod.parquet", stamp=Stamp("7", scored_at))
    assert result.counts == {"rows_input": 6, "rows_scored": 4, "rows_rejected": 2, "rows_labeled": 3}
    assert result.source == "prod.parquet"
    rejected = result.rejected
    reasons = dict(zip(rejected["shot_id"], rejected[REASON_COLUMN], strict=True))
    assert "lat is not a number: north" in reasons[102] and "period=0 outside" in reasons[105]
    assert {"shot_type", "game_date", config.TARGET} <= set(rejected.columns)
    (given,) = model.inputs
    assert list(given.columns) == config.FEATURES
    assert given["shot_distance"].tolist() == [0.0, 20.0, 30.0, 50.0]
    predictions = result.predictions
    scores = [config.PROBABILITY_COLUMN, config.PREDICTION_COLUMN, config.TARGET]
    stamp = [names.MODEL_VERSION_COLUMN, names.SCORED_AT_COLUMN]
    assert list(predictions.columns) == [*config.ID_COLUMNS, *config.FEATURES, *scores, *stamp]
    assert predictions["shot_id"].tolist() == [101, 103, 104, 106] and predictions.index.tolist() == [0, 1, 2, 3]
    assert set(predictions[names.MODEL_VERSION_COLUMN]) == {"7"}
    assert set(predictions[names.SCORED_AT_COLUMN]) == {pd.Timestamp(scored_at)}
    assert predictions[config.PROBABILITY_COLUMN].tolist() == pytest.approx([0.94, 0.44, 0.19, 0.01])
    assert predictions[config.PREDICTION_COLUMN].tolist() == [1, 0, 0, 0]
    labels = predictions[config.TARGET]
    assert labels.iloc[[0, 2, 3]].tolist() == [1.0, 0.0, 1.0] and np.isnan(labels.iloc[1])  # 103: no label yet


def test_a_frame_without_labels_is_scored_and_counts_no_label():
    result = score_frame(production().drop(columns=config.TARGET), DistanceModel())
    assert result.counts == {"rows_input": 6, "rows_scored": 6, "rows_rejected": 0, "rows_labeled": 0}
    assert config.TARGET not in result.predictions


def test_a_frame_with_no_valid_row_never_calls_the_model():
    frame = production().assign(period=0)
    model = DistanceModel()
    result = score_frame(frame, model)
    assert model.inputs == []
    assert result.counts == {"rows_input": 6, "rows_scored": 0, "rows_rejected": 6, "rows_labeled": 0}
    assert result.predictions[config.PROBABILITY_COLUMN].dtype == "float64"
    assert result.predictions[config.PREDICTION_COLUMN].dtype == "int64"


@pytest.mark.parametrize("any_schema", [True, False], ids=["any-schema-unwrapped", "typed-schema-kept"])
def test_only_the_shot_model_with_an_any_schema_skips_mlflow_s_per_value_check(tmp_path, any_schema):
    """Unwrapped through the public ``unwrap_python_model``, it scores as the pyfunc does; a model
    with a typed schema keeps MLflow's checks."""
    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types.schema import ColSpec, Schema
    from sklearn.linear_model import LogisticRegression

    from conftest import synthetic_shots
    from kobe_mlops.deployment.application import embedded_model
    from kobe_mlops.modeling.registry import input_schema
    from kobe_mlops.modeling.shot_model import ShotMadeModel

    shots = synthetic_shots(60)
    fitted = LogisticRegression().fit(shots[config.FEATURES], shots[config.TARGET])
    schema = input_schema() if any_schema else Schema([ColSpec("double", name) for name in config.FEATURES])
    path = tmp_path / "model"
    signature = ModelSignature(inputs=schema)  # no pip_requirements inferred: seconds saved
    mlflow.pyfunc.save_model(path, python_model=ShotMadeModel(fitted), signature=signature, pip_requirements=[])
    loaded = mlflow.pyfunc.load_model(str(path))
    embedded = embedded_model(loaded)
    if not any_schema:
        assert embedded is loaded
        return
    assert isinstance(embedded.python_model, ShotMadeModel)
    rows = synthetic_shots(20, seed=1)[config.FEATURES]
    pd.testing.assert_frame_equal(embedded.predict(rows), loaded.predict(rows))


def test_small_row_groups_are_read_together_into_batches_of_the_engine_s_size(tmp_path):
    """A file an appending writer left (many small row groups) streams in batches of ``batch_rows``;
    a clean file still gets its (empty) rejected output."""
    path = write(shots(360), tmp_path / "appended.parquet", row_group_size=6)  # 60 row groups of 6 rows
    written = outputs(tmp_path)
    result = apply_to_file(path, DistanceModel(), written, [Keep()], batch_rows=100)
    assert result.counts["rows_input"] == 360
    assert sorted(batch.rows_scored for batch in result.observer(Keep).result()) == [60, 100, 100, 100]
    assert pd.read_parquet(written.rejected).empty and len(pd.read_parquet(written.predictions)) == 360


def test_ids_are_checked_over_the_whole_file_as_the_contract_checks_a_whole_frame(tmp_path):
    """A shot_id repeated in two batches, a date in another format and a missing one are rejected
    with the contract's own reasons, as when the whole file is checked at once."""
    frame = shots(60).assign(shot_id=lambda f: np.arange(len(f)) + 1)
    frame.loc[55, "shot_id"] = 3  # the repeat sits 50 rows (several batches) away
    frame.loc[[20, 45], "game_date"] = "01/21/2010"  # in two batches: a bad date is never taken as known
    frame.loc[30, "game_date"] = None
    frame.loc[21, "period"] = 0  # a feature problem too, beside a valid date
    path = tmp_path / "ids.parquet"
    frame.to_parquet(path, index=False)
    written = outputs(tmp_path)
    result = apply_to_file(path, DistanceModel(), written, batch_rows=8)
    reference = score_frame(frame, DistanceModel())
    rejected = pd.read_parquet(written.rejected).set_index("shot_id")[REASON_COLUMN].sort_index()
    expected = reference.rejected.set_index("shot_id")[REASON_COLUMN].sort_index()
    pd.testing.assert_series_equal(rejected, expected)
    assert set(expected.index) >= {3, 21, 22, 31, 46} and "appears 2 times" in expected.loc[3].iloc[0]
    assert result.counts["rows_rejected"] == len(expected)
    assert sorted(pd.read_parquet(written.predictions)["shot_id"]) == sorted(reference.predictions["shot_id"])
