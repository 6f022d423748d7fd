"""The registered champion scores the course data as it comes.

Each test loads ``models:/kobe-shot-model@champion`` from the session pipeline's store, scores a
frame holding the features in some dtypes and layout, and compares, shot by shot, with the
probabilities the application step wrote to ``predictions_prod.parquet``.
"""

import mlflow
import numpy as np
import pandas as pd
import pytest

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import cast_features

pytestmark = pytest.mark.e2e

WHOLE = ["minutes_remaining", "period", "playoffs", "shot_distance"]  # whole numbers in the course files
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def champion(pipeline_run):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(pipeline_run.tracking_uri)  # the registry follows it
    try:
        yield mlflow.pyfunc.load_model(config.CHAMPION_URI)
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture(scope="module")
def raw_prod(pipeline_run) -> pd.DataFrame:
    frame = pd.read_parquet(pipeline_run.paths.raw_file("prod"))
    assert frame.shape[1] == 25  # the whole raw frame is one of the layouts scored
    assert (frame[WHOLE].dtypes == "int64").all() and (frame[["lat", "lon"]].dtypes == "float64").all()
    return frame


@pytest.fixture(scope="module")
def expected(pipeline_run) -> pd.Series:
    """P(make) by shot_id as the application step wrote it (a file, or a folder of parts)."""
    predictions = pd.read_parquet(pipeline_run.paths.predictions_prod)
    assert predictions["shot_id"].is_unique
    return predictions.set_index("shot_id")[config.PROBABILITY_COLUMN]


def assert_matches(champion, frame: pd.DataFrame, shot_ids: pd.Series, expected: pd.Series, atol=TOLERANCE):
    scored = champion.predict(frame)
    assert scored.index.equals(frame.index)
    probability = pd.Series(scored[config.PROBABILITY_COLUMN].to_numpy(), index=shot_ids.to_numpy())
    assert set(probability.index) == set(expected.index)
    np.testing.assert_allclose(probability.reindex(expected.index), expected, rtol=0, atol=atol)
    return scored


FRAMES = {
    "features-as-read": lambda raw: raw[config.FEATURES],  # int64 and float64 as stored
    "whole-raw-frame": lambda raw: raw,  # its 25 columns
    "reordered-and-shuffled": lambda raw: raw.sample(frac=1, random_state=0)[
        [*config.FEATURES[::-1], "shot_id", "action_type"]
    ],
    "all-float64": lambda raw: raw.astype(dict.fromkeys(config.FEATURES, "float64")),
    "whole-int32": lambda raw: raw.astype(dict.fromkeys(WHOLE, "int32")),
    "whole-float32": lambda raw: raw.astype(dict.fromkeys(WHOLE, "float32")),  # float32 holds these exactly
}


@pytest.mark.parametrize("frame", list(FRAMES))
def test_the_raw_prod_file_scores_as_the_application_step_did(champion, raw_prod, expected, frame):
    layout = FRAMES[frame](raw_prod)
    assert_matches(champion, layout, raw_prod.loc[layout.index, "shot_id"], expected)


def test_an_all_float32_frame_scores_its_float32_values(champion, raw_prod, expected):
    """float32 cannot hold lat=34.0443: the champion scores the value float32 holds, as float64
    would, so it differs from the file's probabilities by the rounding and no more."""
    as_float32 = raw_prod[config.FEATURES].astype("float32")
    scored = champion.predict(as_float32)
    same_values = champion.predict(as_float32.astype("float64"))
    np.testing.assert_allclose(scored[config.PROBABILITY_COLUMN], same_values[config.PROBABILITY_COLUMN], atol=1e-15)
    assert_matches(champion, as_float32, raw_prod["shot_id"], expected, atol=1e-5)


def test_the_raw_dev_feature_columns_score_as_the_trained_pipeline_does(champion, pipeline_run):
    """No prediction file for dev: the reference is the registered PyCaret pipeline itself, given the
    features in the dtypes it was trained on."""
    dev = pd.read_parquet(pipeline_run.paths.raw_file("dev"))
    assert (dev[WHOLE].dtypes == "int64").all()
    scored = champion.predict(dev[config.FEATURES])
    pipeline = champion.unwrap_python_model().pipeline
    reference = pipeline.predict_proba(cast_features(dev[config.FEATURES]))[:, 1]
    assert len(scored) == len(dev) == 24271
    np.testing.assert_allclose(scored[config.PROBABILITY_COLUMN], reference, rtol=0, atol=TOLERANCE)
