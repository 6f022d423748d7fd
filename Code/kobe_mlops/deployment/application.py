"""Apply the champion to a production file: validate, score, account for every row.

``rows_input == rows_scored + rows_rejected`` always holds: rows that break the data contract
are written to a rejected file with the reason, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kobe_mlops import config
from kobe_mlops.data_acquisition.contract import read_table, split_valid_rows
from kobe_mlops.io import write_parquet_atomic
from kobe_mlops.modeling.metrics import evaluate_probabilities


@dataclass
class ApplicationResult:
    source: str
    predictions: pd.DataFrame  # ids, features, probability, label, truth
    rejected: pd.DataFrame  # original columns plus rejection_reason

    @property
    def labelled(self) -> pd.DataFrame:
        if config.TARGET not in self.predictions:
            return self.predictions.iloc[0:0]
        return self.predictions[self.predictions[config.TARGET].notna()]

    @property
    def counts(self) -> dict[str, int]:
        return {
            "rows_input": len(self.predictions) + len(self.rejected),
            "rows_scored": len(self.predictions),
            "rows_rejected": len(self.rejected),
            "rows_labeled": len(self.labelled),
        }

    def labelled_metrics(self) -> dict[str, float] | None:
        """Metrics on rows whose outcome is known; None when no scored row has a label."""
        labelled = self.labelled
        if labelled.empty:
            return None
        return evaluate_probabilities(labelled[config.TARGET], labelled[config.PROBABILITY_COLUMN])


def score_frame(frame: pd.DataFrame, model, source: str = "input") -> ApplicationResult:
    """Validate ``frame`` against the data contract and score its valid rows with ``model``.

    ``model`` is anything with the pyfunc ``predict`` interface returning the probability
    column (the embedded MLflow model, or a client of the served API).
    """
    valid, rejected = split_valid_rows(frame, source)
    keep = [c for c in config.ID_COLUMNS if c in valid] + config.FEATURES
    predictions = valid[keep].copy()
    if len(valid):
        scored = model.predict(valid[config.FEATURES])
        predictions[config.PROBABILITY_COLUMN] = scored[config.PROBABILITY_COLUMN].to_numpy()
        predictions[config.PREDICTION_COLUMN] = scored[config.PREDICTION_COLUMN].to_numpy()
    else:
        predictions[config.PROBABILITY_COLUMN] = pd.Series(dtype="float64")
        predictions[config.PREDICTION_COLUMN] = pd.Series(dtype="int64")
    if config.TARGET in valid:
        predictions[config.TARGET] = valid[config.TARGET]
    return ApplicationResult(source, predictions.reset_index(drop=True), rejected.reset_index(drop=True))


def apply_to_file(path: str | Path, model) -> ApplicationResult:
    return score_frame(read_table(path), model, source=str(path))


def write_outputs(result: ApplicationResult, predictions_path: Path, rejected_path: Path) -> None:
    """Write both outputs atomically (the rejected file is written even when empty)."""
    rejected = result.rejected.copy()
    # Mixed-type object columns (text in a numeric field) must survive the parquet round trip.
    for column in rejected.columns:
        if rejected[column].dtype == object:
            rejected[column] = rejected[column].map(lambda v: None if pd.isna(v) else str(v))
    write_parquet_atomic(result.predictions, predictions_path)
    write_parquet_atomic(rejected, rejected_path)
