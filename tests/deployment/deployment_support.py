"""Small production files, broken ones, and a model stand-in shared by the deployment tests."""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kobe_mlops import config
from kobe_mlops.deployment.outputs import OutputPaths


class DistanceModel:
    """A pyfunc stand-in: the probability falls with distance and lifts with the period; it keeps
    what it was given."""

    def __init__(self):
        self.inputs: list[pd.DataFrame] = []

    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        self.inputs.append(features.copy())
        probability = np.clip(0.9 - features["shot_distance"].to_numpy() / 40 + features["period"] / 50, 0.01, 0.99)
        return pd.DataFrame(
            {
                config.PROBABILITY_COLUMN: probability,
                config.PREDICTION_COLUMN: (probability >= config.DECISION_THRESHOLD).astype("int64"),
            },
            index=features.index,
        )


class Keep:
    """An observer that keeps every batch it sees (a real one never keeps rows)."""

    def __init__(self):
        self.batches = []

    def update(self, batch):
        self.batches.append(batch)

    def merge(self, other):
        self.batches.extend(other.batches)
        return self

    def result(self):
        return self.batches


def outputs(folder) -> OutputPaths:
    return OutputPaths(folder / "predictions.parquet", folder / "rejected.parquet")


def shots(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "shot_id": np.arange(rows, dtype="int64") + 1000,
            "game_date": [f"2015-01-{1 + i % 28:02d}" for i in range(rows)],
            "lat": rng.uniform(33.5, 34.0, rows).round(4),
            "lon": rng.uniform(-118.5, -118.1, rows).round(4),
            "minutes_remaining": rng.integers(0, 12, rows),
            "period": rng.integers(1, 5, rows),
            "playoffs": rng.integers(0, 2, rows),
            "shot_distance": rng.integers(0, 35, rows).astype("float64"),
            "shot_type": "2PT Field Goal",  # not a feature: kept in the rejected output only
            config.TARGET: np.where(rng.random(rows) < 0.2, np.nan, rng.integers(0, 2, rows)),
        }
    )


def write(frame: pd.DataFrame, path, row_group_size: int = 16) -> str:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)
    return str(path)


def garble_row_group(path: Path, group: int, column: int = 2) -> None:
    """Overwrite the page headers of one column chunk: the footer still opens, the rows do not."""
    start = pq.ParquetFile(path).metadata.row_group(group).column(column).data_page_offset
    data = bytearray(path.read_bytes())
    data[start : start + 24] = b"\xff" * 24
    path.write_bytes(bytes(data))


def _truncated(path: Path) -> None:
    write(shots(6), path)
    path.write_bytes(path.read_bytes()[:300])  # the footer is gone


# Files both engines refuse before scoring a row, and the end of their message (after "{path}: ").
UNUSABLE_FILES = {
    "missing": (lambda path: None, "file not found"),
    "empty": (lambda path: path.write_bytes(b""), "file is empty (0 bytes)"),
    "not-parquet": (lambda path: path.write_text("lat,lon\n1,2\n"), "not a readable parquet file"),
    "truncated": (_truncated, "not a readable parquet file"),
    "no-rows": (lambda path: shots(3).head(0).to_parquet(path), "has no rows"),
    "missing-columns": (
        lambda path: shots(3).drop(columns=["lat", "playoffs"]).to_parquet(path),
        "missing required column(s) 'lat', 'playoffs'",
    ),
}
