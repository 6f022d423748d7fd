"""Trends of the retraining triggers: every finished ``PipelineAplicacao`` run, oldest first, with the
figures and thresholds of :func:`triggers.evaluate_triggers`, so an operator sees a figure climb toward
its threshold before it crosses it (Docs/Model/Retraining.md). Only :func:`application_trends` reads MLflow.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.monitoring import health, triggers
from kobe_mlops.tracking import names, reads

# In the order evaluate_triggers returns them.
TRIGGER_NAMES = (triggers.FEATURE_DRIFT, triggers.LOG_LOSS_DEGRADATION, triggers.MAKE_RATE_GAP)
TRIGGER_LABELS = {
    triggers.FEATURE_DRIFT: "PSI of the feature nearest its threshold",
    triggers.LOG_LOSS_DEGRADATION: "production log loss",
    triggers.MAKE_RATE_GAP: "observed make rate",
}
COUNT_METRICS = [*names.COUNT_METRICS, names.ROWS_EVALUATED]
CONTEXT_METRICS = [
    names.LOG_LOSS,
    names.NULL_LOG_LOSS,
    names.PROD_NULL_LOG_LOSS,
    names.PREDICTED_MAKE_RATE,
    names.OBSERVED_MAKE_RATE,
    names.LABELLED_MEAN_PROBABILITY,
]
RUN_PARAMS = [names.MODEL_VERSION, names.PROD_DATA, names.ENGINE]
OUTLOOK_FIGURES = ["last_value", "previous_value", "change", "threshold", "distance_to_threshold", "distance_share"]


def trigger_columns(name: str) -> list[str]:
    """The figure, its threshold and whether it fired: the three columns of one trigger."""
    return [name, f"{name}_threshold", f"{name}_fired"]


def psi_columns(runs: Iterable[health.RunSummary]) -> list[str]:
    """``psi_<feature>`` for the model's features, then any other PSI a run logged."""
    expected = [names.psi_metric(feature) for feature in config.FEATURES]
    logged = {key for run in runs for key in run.metrics if key.startswith(names.PSI_PREFIX)}
    bands = {key for key in logged if key.endswith(("_lower", "_upper", "_alert"))}
    return expected + sorted(logged - bands - set(expected))


def run_row(run: health.RunSummary, psi: list[str]) -> dict:
    row = {"run_id": run.run_id, "start_time": run.start_time, **{name: run.params.get(name) for name in RUN_PARAMS}}
    for trigger in triggers.evaluate_triggers(run.metrics).triggers:
        figure, threshold, fired = trigger_columns(trigger.name)
        row[figure] = np.nan if trigger.value is None else trigger.value  # None: no labels
        row[threshold], row[fired] = trigger.threshold, trigger.fired
    return {**row, **{name: run.metrics.get(name, np.nan) for name in COUNT_METRICS + CONTEXT_METRICS + psi}}


def trend_frame(runs: Iterable[health.RunSummary]) -> pd.DataFrame:
    """One row per application run, oldest first, with each trigger's figure, threshold and verdict
    (a figure that needs labels is NaN, and did not fire, on a run without labelled rows)."""
    runs = list(runs)
    psi = psi_columns(runs)
    figures = [column for name in TRIGGER_NAMES for column in trigger_columns(name)]
    columns = ["run_id", "start_time", *RUN_PARAMS, *COUNT_METRICS, *figures, *CONTEXT_METRICS, *psi]
    frame = pd.DataFrame([run_row(run, psi) for run in runs], columns=columns)
    if frame.empty:
        return frame
    frame["start_time"] = pd.to_datetime(frame["start_time"], utc=True)
    frame[COUNT_METRICS] = frame[COUNT_METRICS].astype("Int64")  # row counts; missing stays <NA>
    # A stable sort keeps the given order for runs that started in the same millisecond.
    return frame.sort_values("start_time", kind="stable").reset_index(drop=True)


def direction(change: float) -> str:
    """Every trigger fires when its figure rises, so a rise moves toward the threshold."""
    if np.isnan(change):
        return "single measurement"
    return "toward the threshold" if change > 0 else "away from the threshold" if change < 0 else "unchanged"


def anticipation(frame: pd.DataFrame) -> pd.DataFrame:
    """Per trigger figure: last measured value, change since the previous one, room left to the last
    run's threshold (negative: crossed). Runs that could not measure it (no labels) are skipped."""
    rows = []
    for name in TRIGGER_NAMES:
        figure, threshold_column, fired_column = trigger_columns(name)
        measured = frame[frame[figure].notna()]
        row = {"trigger": name, "runs_measured": len(measured), "last_start_time": pd.NaT}
        row.update({**dict.fromkeys(OUTLOOK_FIGURES, np.nan), "direction": "not measured", "fired": False})
        if len(measured):
            last = measured.iloc[-1]
            previous = measured[figure].iloc[-2] if len(measured) > 1 else np.nan
            threshold, change = last[threshold_column], last[figure] - previous
            row.update(
                last_start_time=last["start_time"],
                last_value=last[figure],
                previous_value=previous,
                change=change,
                threshold=threshold,
                distance_to_threshold=threshold - last[figure],
                distance_share=(threshold - last[figure]) / threshold if threshold else np.nan,
                direction=direction(change),
                fired=bool(last[fired_column]),
            )
        rows.append(row)
    return pd.DataFrame(rows)


def runs_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The trend frame as an operator reads it: one line per run, oldest first, named columns."""
    table = pd.DataFrame(
        {
            "started (UTC)": frame["start_time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "model version": frame["model_version"],
            "production file": frame["prod_data"].map(lambda path: Path(path).name if path else ""),
            "rows scored": frame["rows_scored"],
            "rows graded": frame[names.ROWS_EVALUATED],
        }
    )
    for name in TRIGGER_NAMES:
        for column, suffix in zip(trigger_columns(name), ["", " threshold", " fired"], strict=True):
            table[TRIGGER_LABELS[name] + suffix] = frame[column]
    table["predicted make rate"] = frame[names.PREDICTED_MAKE_RATE]
    table["observed make rate"] = frame[names.OBSERVED_MAKE_RATE]
    for column in frame.columns:
        if column.startswith(names.PSI_PREFIX):
            table[f"PSI {column[len(names.PSI_PREFIX) :]}"] = frame[column]
    table["run id"] = frame["run_id"]
    return table


# --- Reading MLflow ---------------------------------------------------------------------------


def application_trends(client: MlflowClient | None = None) -> pd.DataFrame | None:
    """:func:`trend_frame` of every finished application run; None when there is none yet."""
    client = reads.store_client(client)
    runs = reads.finished_application_runs(client) if client is not None else []  # no store yet: nothing ran
    return trend_frame([health.RunSummary.from_run(run) for run in runs]) if runs else None
