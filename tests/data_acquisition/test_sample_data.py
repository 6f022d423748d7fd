"""The synthetic sample in Sample_Data/: repeatable, inside the data contract, placed like course shots, not a copy."""

import numpy as np
import pandas as pd
import pytest

from conftest import require_shared_data
from kobe_mlops import config
from kobe_mlops.data_acquisition import sample_data
from kobe_mlops.data_acquisition.contract import split_valid_rows

COMMITTED_SAMPLE = config.PROJECT_ROOT / "Sample_Data" / "synthetic_shots.csv"


def course_files() -> dict[str, pd.DataFrame]:
    data = require_shared_data()
    return {name: pd.read_parquet(data / file_name) for name, file_name in config.DATASET_FILES.items()}


def test_same_seed_same_shots_with_ids_and_dates_no_course_shot_has():
    first = sample_data.synthetic_shots(300, seed=7)
    pd.testing.assert_frame_equal(first, sample_data.synthetic_shots(300, seed=7))
    assert not first.equals(sample_data.synthetic_shots(300, seed=8))
    assert list(first.columns) == sample_data.SAMPLE_COLUMNS and len(first) == 300
    assert first["shot_id"].is_unique and first["shot_id"].min() == sample_data.FIRST_SHOT_ID
    dates = pd.to_datetime(first["game_date"], format="%Y-%m-%d")
    assert dates.between(*(pd.Timestamp(day) for day in sample_data.DATE_RANGE)).all()


@pytest.mark.parametrize("seed", [0, 1, 42, 2024])
def test_every_shot_passes_the_data_contract(seed):
    shots = sample_data.synthetic_shots(2000, seed=seed)
    valid, rejected = split_valid_rows(shots, "synthetic shots")
    assert rejected.empty, rejected["rejection_reason"].head().tolist()
    assert len(valid) == 2000
    assert set(shots[config.TARGET]) <= {0, 1}


def test_shots_are_placed_like_course_shots_and_typed_by_distance():
    shots = sample_data.synthetic_shots(2000, seed=3)
    loc_y = np.round((sample_data.BASKET_LAT - shots["lat"]) * sample_data.TENTHS_OF_FOOT_PER_DEGREE)
    loc_x = np.round((shots["lon"] - sample_data.BASKET_LON) * sample_data.TENTHS_OF_FOOT_PER_DEGREE)
    np.testing.assert_array_equal(sample_data.whole_feet(loc_x, loc_y), shots["shot_distance"])
    three = shots["shot_type"] == "3PT Field Goal"
    assert 0.4 < three.mean() < 0.6
    assert shots.loc[three, "shot_distance"].min() >= 22  # 23 ft, less a rounding of the position
    assert shots.loc[~three, "shot_distance"].max() <= sample_data.TWO_POINT_MAX_FEET


def test_committed_sample_is_what_the_generator_gives():
    assert COMMITTED_SAMPLE.read_text() == sample_data.sample_csv(), (
        "Sample_Data/synthetic_shots.csv is stale: regenerate it (Sample_Data/README.md)"
    )
    committed = pd.read_csv(COMMITTED_SAMPLE)
    assert len(committed) == sample_data.SAMPLE_ROWS
    assert split_valid_rows(committed)[1].empty


def test_the_court_geometry_is_the_course_data_own():
    for name, frame in course_files().items():
        lat, lon = sample_data.lat_lon(frame["loc_x"].to_numpy(), frame["loc_y"].to_numpy())
        np.testing.assert_allclose(lat, frame["lat"], atol=1e-9, err_msg=f"{name}: lat")
        np.testing.assert_allclose(lon, frame["lon"], atol=1e-9, err_msg=f"{name}: lon")
        np.testing.assert_array_equal(
            sample_data.whole_feet(frame["loc_x"], frame["loc_y"]),
            frame["shot_distance"],
            err_msg=f"{name}: shot_distance",
        )


def test_no_sample_row_repeats_a_course_row():
    course = pd.concat(course_files().values(), ignore_index=True)
    sample = pd.read_csv(COMMITTED_SAMPLE)
    assert not set(sample["shot_id"]) & set(course["shot_id"])
    keys = course[config.FEATURES].astype(float).round(4).apply(tuple, axis=1)
    sample_keys = sample[config.FEATURES].astype(float).round(4).apply(tuple, axis=1)
    assert not set(sample_keys) & set(keys)
