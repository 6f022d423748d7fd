import numpy as np
import pandas as pd
import pytest

from conftest import require_shared_data, synthetic_shots
from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import DataContractError
from kobe_mlops.data_acquisition.prepare import MODEL_COLUMNS, class_ratio, filter_shots, split_train_test


def make_shots(rows: int, seed: int = 0) -> pd.DataFrame:
    """The course files' dtypes (whole shot_distance, float target) and a column the model does not use."""
    shots = synthetic_shots(rows, seed).astype({"shot_distance": "int64", config.TARGET: "float64"})
    return shots.assign(action_type="Jump Shot")


def test_filter_keeps_model_columns_and_complete_rows_and_names_a_missing_column():
    shots = make_shots(10)
    shots.loc[2, "shot_made_flag"] = np.nan
    shots.loc[5, "lat"] = np.nan
    filtered = filter_shots(shots)
    assert list(filtered.columns) == MODEL_COLUMNS
    assert len(filtered) == 8
    assert filtered[config.TARGET].dtype == "int64"
    assert filtered["shot_distance"].dtype == "float64" and filtered["period"].dtype == "int64"
    with pytest.raises(DataContractError, match="'shot_distance'"):
        filter_shots(make_shots(5).drop(columns="shot_distance"), source="dev.parquet")


def test_split_is_stratified_seeded_and_complete():
    shots = filter_shots(make_shots(1000))
    train, test = split_train_test(shots, test_size=0.2, seed=7)
    assert (len(train), len(test)) == (800, 200)
    assert abs(class_ratio(train) - class_ratio(test)) < 0.01
    again_train, _ = split_train_test(shots, test_size=0.2, seed=7)
    pd.testing.assert_frame_equal(train, again_train)
    other_train, _ = split_train_test(shots, test_size=0.2, seed=8)
    assert not train.equals(other_train)
    rows = pd.concat([train, test]).sort_values(MODEL_COLUMNS).reset_index(drop=True)
    pd.testing.assert_frame_equal(rows, shots.sort_values(MODEL_COLUMNS).reset_index(drop=True))


def test_course_data_filters_to_20285_rows():
    data = require_shared_data()
    filtered = filter_shots(pd.read_parquet(data / config.DATASET_FILES["dev"]))
    assert filtered.shape == (20285, 7)
