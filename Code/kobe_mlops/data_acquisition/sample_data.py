"""Synthetic shots for ``Sample_Data/``: the course's columns, court geometry and data contract, none
of its rows; the outcome is a coin toss (the sample shows the schema, no signal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import DATE_FORMAT, cast_features

# Where the course data puts the basket, in its lat/lon coordinates.
BASKET_LAT = 34.0443
BASKET_LON = -118.2698
TENTHS_OF_FOOT_PER_DEGREE = 1000  # lat/lon move by 0.001 for each tenth of a foot
TWO_POINT_MAX_FEET = 21.0
THREE_POINT_FEET = (23.0, 28.0)
# Angles from the baseline: 0.2 pi to 0.8 pi keeps every shot inside the court's 25 ft half width.
ANGLE_RANGE = (0.2 * np.pi, 0.8 * np.pi)
PLAYOFF_SHARE = 0.15
FIRST_SHOT_ID = 1_000_001  # far above the course's ids (1 to 30697): never mistaken for a real shot
DATE_RANGE = ("1996-11-01", "2016-04-13")
SAMPLE_ROWS = 20
SAMPLE_COLUMNS = ["shot_id", "game_date", "shot_type", *config.FEATURES, config.TARGET]


def lat_lon(loc_x: np.ndarray, loc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The course data's latitude and longitude of a court position."""
    lat = np.round(BASKET_LAT - loc_y / TENTHS_OF_FOOT_PER_DEGREE, 4)
    lon = np.round(BASKET_LON + loc_x / TENTHS_OF_FOOT_PER_DEGREE, 4)
    return lat, lon


def whole_feet(loc_x: np.ndarray, loc_y: np.ndarray) -> np.ndarray:
    """The course data's ``shot_distance``: the distance in feet, rounded down."""
    return np.floor(np.hypot(loc_x, loc_y) / 10)


def synthetic_shots(rows: int = SAMPLE_ROWS, seed: int = config.SEED) -> pd.DataFrame:
    """``rows`` made-up shots, half of them three-pointers on average; same seed, same rows."""
    rng = np.random.default_rng(seed)
    three_pointer = rng.random(rows) < 0.5
    distance = np.where(three_pointer, rng.uniform(*THREE_POINT_FEET, rows), rng.uniform(0, TWO_POINT_MAX_FEET, rows))
    angle = rng.uniform(*ANGLE_RANGE, rows)
    # The court position in whole tenths of a foot from the basket.
    loc_x, loc_y = (np.round(10 * distance * trig(angle)).astype(int) for trig in (np.cos, np.sin))
    lat, lon = lat_lon(loc_x, loc_y)
    first_day, last_day = (pd.Timestamp(day) for day in DATE_RANGE)
    days = rng.integers(0, (last_day - first_day).days + 1, rows)
    shots = pd.DataFrame(
        {
            "shot_id": np.arange(FIRST_SHOT_ID, FIRST_SHOT_ID + rows),
            "game_date": (first_day + pd.to_timedelta(days, unit="D")).strftime(DATE_FORMAT),
            "shot_type": np.where(three_pointer, "3PT Field Goal", "2PT Field Goal"),
            "lat": lat,
            "lon": lon,
            "minutes_remaining": rng.integers(0, 12, rows),
            "period": rng.integers(1, 5, rows),
            "playoffs": (rng.random(rows) < PLAYOFF_SHARE).astype(int),
            "shot_distance": whole_feet(loc_x, loc_y),
            config.TARGET: (rng.random(rows) < 0.5).astype(int),
        }
    )
    return cast_features(shots)[SAMPLE_COLUMNS]


def sample_csv(rows: int = SAMPLE_ROWS, seed: int = config.SEED) -> str:
    """The CSV text committed as ``Sample_Data/synthetic_shots.csv``."""
    return synthetic_shots(rows, seed).to_csv(index=False, lineterminator="\n")


def write_sample(target: str | Path, rows: int = SAMPLE_ROWS, seed: int = config.SEED) -> Path:
    Path(target).write_text(sample_csv(rows, seed))
    return Path(target)
