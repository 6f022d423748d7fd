"""Trends of the retraining triggers across application runs: predictive retraining.

:mod:`triggers` says which alarm the *latest* ``PipelineAplicacao`` run crosses. This module lines
up every finished application run, oldest first, with the same three trigger figures computed by
the same functions (:func:`triggers.evaluate_triggers`), so an operator sees a figure climb
toward its threshold before it crosses it.

* :func:`trend_frame` is pure: run summaries and training metrics in, one row per run out, so it
  can be checked with hand-made runs.
* :func:`anticipation` states, for each trigger figure, its last measured value, the change since
  the previous measurement and the distance left to its threshold. No forecast: a handful of
  runs cannot support one, and the thresholds in ``triggers.py`` decide retraining.
* :func:`application_trends` reads MLflow; None when there is no store or no application run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from kobe_mlops import config
from kobe_mlops.monitoring import health, triggers
from kobe_mlops.tracking import names, reads

# In the order evaluate_triggers returns them.
TRIGGER_NAMES = (triggers.FEATURE_DRIFT, triggers.LOG_LOSS_DEGRADATION, triggers.MAKE_RATE_GAP)
TRIGGER_LABELS = {
    triggers.FEATURE_DRIFT: "largest feature PSI",
    triggers.LOG_LOSS_DEGRADATION: "production log loss",
    triggers.MAKE_RATE_GAP: "make-rate gap",
}
COUNT_METRICS = names.COUNT_METRICS
CONTEXT_METRICS = [
    names.PROD_LOG_LOSS,
    names.PROD_BASELINE_LOG_LOSS,
    names.PROD_NULL_LOG_LOSS,
    names.PREDICTED_MAKE_RATE,
    names.OBSERVED_MAKE_RATE,
    names.LABELLED_MEAN_PROBABILITY,
]
RUN_COLUMNS = ["run_id", "start_time", "model_version", "prod_data", "engine"]


def trigger_columns(name: str) -> list[str]:
    """The figure, its threshold and whether it fired: the three columns of one trigger."""
    return [name, f"{name}_threshold", f"{name}_fired"]


def psi_columns(runs: Iterable[health.RunSummary]) -> list[str]:
    """``psi_<feature>`` for the model's features, then any other PSI a run logged."""
    expected = [f"{names.PSI_PREFIX}{feature}" for feature in config.FEATURES]
    logged = {key for run in runs for key in run.metrics if key.startswith(names.PSI_PREFIX)}
    return expected + sorted(logged - set(expected))


def frame_columns(psi: list[str]) -> list[str]:
    figures = [column for name in TRIGGER_NAMES for column in trigger_columns(name)]
    return RUN_COLUMNS + COUNT_METRICS + figures + CONTEXT_METRICS + psi


def run_row(run: health.RunSummary, training_metrics: Mapping[str, float], psi: list[str]) -> dict:
    report = triggers.evaluate_triggers(run.metrics, dict(training_metrics))
    row = {
        "run_id": run.run_id,
        "start_time": run.start_time,
        "model_version": run.params.get("model_version"),
        "prod_data": run.params.get("prod_data"),
        "engine": run.params.get("engine"),
    }
    for trigger in report.triggers:
        figure, threshold, fired = trigger_columns(trigger.name)
        row[figure] = np.nan if trigger.value is None else trigger.value  # None: no labels
        row[threshold] = trigger.threshold
        row[fired] = trigger.fired
    for name in COUNT_METRICS + CONTEXT_METRICS + psi:
        row[name] = run.metrics.get(name, np.nan)
    return row


def trend_frame(runs: Iterable[health.RunSummary], training_metrics: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """One row per application run, oldest first, with each trigger's figure, threshold and verdict.

    ``training_metrics`` maps an application run id to the metrics of the training run of the
    model version it scored with; a run missing from it is judged without a test log loss, as
    :func:`triggers.latest_trigger_report` does. A figure that needs labels is NaN (and did not
    fire) for a run without labelled rows.
    """
    runs = list(runs)
    psi = psi_columns(runs)
    rows = [run_row(run, training_metrics.get(run.run_id, {}), psi) for run in runs]
    frame = pd.DataFrame(rows, columns=frame_columns(psi))
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
    if change > 0:
        return "toward the threshold"
    if change < 0:
        return "away from the threshold"
    return "unchanged"


def anticipation(frame: pd.DataFrame) -> pd.DataFrame:
    """For each trigger figure: last measured value, change since the previous one, room left.

    ``distance_to_threshold`` is threshold minus the last value (negative: crossed), and
    ``distance_share`` the same as a share of the threshold. Runs where the figure could not be
    measured (no labels) are skipped, so ``last_start_time`` says which run the value comes from.
    The log-loss threshold depends on each run's baseline: the last run's threshold is used.
    """
    rows = []
    for name in TRIGGER_NAMES:
        figure, threshold_column, fired_column = trigger_columns(name)
        measured = frame[frame[figure].notna()] if figure in frame else frame.iloc[0:0]
        if measured.empty:
            rows.append(
                {
                    "trigger": name,
                    "runs_measured": 0,
                    "last_start_time": pd.NaT,
                    "last_value": np.nan,
                    "previous_value": np.nan,
                    "change": np.nan,
                    "threshold": np.nan,
                    "distance_to_threshold": np.nan,
                    "distance_share": np.nan,
                    "direction": "not measured",
                    "fired": False,
                }
            )
            continue
        last = measured.iloc[-1]
        previous = measured[figure].iloc[-2] if len(measured) > 1 else np.nan
        threshold = last[threshold_column]
        distance = threshold - last[figure]
        change = last[figure] - previous
        rows.append(
            {
                "trigger": name,
                "runs_measured": len(measured),
                "last_start_time": last["start_time"],
                "last_value": last[figure],
                "previous_value": previous,
                "change": change,
                "threshold": threshold,
                "distance_to_threshold": distance,
                "distance_share": distance / threshold if threshold else np.nan,
                "direction": direction(change),
                "fired": bool(last[fired_column]),
            }
        )
    return pd.DataFrame(rows)


def runs_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The trend frame as an operator reads it: one line per run, oldest first, named columns."""
    table = pd.DataFrame(
        {
            "started (UTC)": frame["start_time"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "model version": frame["model_version"],
            "production file": frame["prod_data"].map(lambda path: Path(path).name if path else ""),
            "rows scored": frame["rows_scored"],
            "rows labelled": frame["rows_labeled"],
        }
    )
    for name in TRIGGER_NAMES:
        figure, threshold, fired = trigger_columns(name)
        label = TRIGGER_LABELS[name]
        table[label] = frame[figure]
        table[f"{label} threshold"] = frame[threshold]
        table[f"{label} fired"] = frame[fired]
    table["predicted make rate"] = frame[names.PREDICTED_MAKE_RATE]
    table["observed make rate"] = frame[names.OBSERVED_MAKE_RATE]
    for column in frame.columns:
        if column.startswith(names.PSI_PREFIX):
            table[f"PSI {column[len(names.PSI_PREFIX) :]}"] = frame[column]
    table["run id"] = frame["run_id"]
    return table


# --- Reading MLflow ---------------------------------------------------------------------------


def training_metrics_by_run(client: MlflowClient, runs: list[Run]) -> dict[str, dict[str, float]]:
    """For each application run, the metrics of the training run of the version it scored with.

    The same lookup as :func:`triggers.latest_trigger_report`; each version is read once.
    """
    by_version: dict[tuple[str, str], dict[str, float]] = {}
    result = {}
    for run in runs:
        version = reads.model_version_used(client, run)
        if version is None:
            result[run.info.run_id] = {}
            continue
        key = (version.name, str(version.version))
        if key not in by_version:
            training_run = reads.training_run_of(client, version)
            by_version[key] = dict(training_run.data.metrics) if training_run else {}
        result[run.info.run_id] = by_version[key]
    return result


def application_trends(client: MlflowClient | None = None) -> pd.DataFrame | None:
    """:func:`trend_frame` of every finished application run; None when there is none yet."""
    if client is None:
        if not reads.store_exists():
            return None  # no store yet: nothing ran, and reading must not create one
        client = reads.client()
    runs = reads.finished_application_runs(client)
    if not runs:
        return None
    summaries = [health.RunSummary.from_run(run) for run in runs]
    return trend_frame(summaries, training_metrics_by_run(client, runs))
