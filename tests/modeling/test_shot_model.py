"""The pyfunc's unwrapped scoring path gives the PyCaret pipeline's own probabilities, or is not used."""

import numpy as np
import pandas as pd
import pytest
from pycaret.internal.pipeline import Pipeline
from pycaret.internal.preprocess.transformers import TransformerWrapper
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from conftest import synthetic_shots
from kobe_mlops import config
from kobe_mlops.modeling.shot_model import ShotMadeModel


def shots(rows: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    frame = synthetic_shots(rows, seed)
    return frame[config.FEATURES], frame[config.TARGET]


def fitted_pipeline(first_step_columns: list[str] | None = None) -> Pipeline:
    """PyCaret's own pipeline shape: wrapped imputers (one with no columns), wrapped scaler, model."""
    features, made = shots()
    pipeline = Pipeline(
        [
            ("numerical_imputer", TransformerWrapper(SimpleImputer(), include=first_step_columns or config.FEATURES)),
            ("categorical_imputer", TransformerWrapper(SimpleImputer(strategy="most_frequent"), include=[])),
            ("normalize", TransformerWrapper(StandardScaler())),
            ("trained_model", LogisticRegression()),
        ]
    )
    return pipeline.fit(features, made)


@pytest.mark.parametrize(
    "first_step_columns, checked, path, tolerance",
    [(None, True, "unwrapped", 1e-12), (["lat", "lon"], True, "pycaret", 0), (None, False, "pycaret", 0)],
    ids=["checked-and-equal", "a-step-on-some-columns", "no-check-rows"],
)
def test_the_unwrapped_path_is_used_only_when_checked_and_gives_the_pipeline_s_probabilities(
    first_step_columns, checked, path, tolerance
):
    pipeline = fitted_pipeline(first_step_columns)
    model = ShotMadeModel(pipeline, check_features=shots(seed=1)[0] if checked else None)
    assert model.scoring_path == path
    new_rows, _ = shots(rows=50, seed=2)
    scored = model.predict(None, new_rows)
    expected = pipeline.predict_proba(new_rows)[:, 1]
    np.testing.assert_allclose(scored[config.PROBABILITY_COLUMN], expected, rtol=0, atol=tolerance)
    assert (scored[config.PREDICTION_COLUMN] == (expected >= 0.5)).all()


def test_a_direct_call_names_the_row_with_text_in_a_feature_and_a_missing_feature():
    model = ShotMadeModel(fitted_pipeline(), check_features=shots()[0])
    features = shots(rows=3)[0].astype({"lat": object})
    features.loc[2, "lat"] = "north"
    with pytest.raises(Exception, match="row 2: lat is not a number: north"):
        model.predict(None, features)
    with pytest.raises(Exception, match="model input: missing required column\\(s\\) 'period'"):
        model.predict(None, shots(rows=3)[0].drop(columns="period"))


@pytest.mark.parametrize("first_step_columns", [None, ["lat", "lon"]], ids=["unwrapped", "pycaret"])
def test_both_paths_score_the_same_values_alike_whatever_the_dtypes(first_step_columns):
    pipeline = fitted_pipeline(first_step_columns)
    model = ShotMadeModel(pipeline, check_features=shots(seed=1)[0])
    rows = shots(rows=20, seed=2)[0].assign(shot_distance=lambda f: f["shot_distance"].round())
    expected = model.predict(None, rows)
    for variant in [rows.astype("float64"), rows.astype({"shot_distance": "int64", "period": "int32"})]:
        pd.testing.assert_frame_equal(model.predict(None, variant), expected)
    as_objects = rows.astype(object).astype({"period": str})
    pd.testing.assert_frame_equal(model.predict(None, as_objects), expected)
