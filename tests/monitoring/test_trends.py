"""Trigger trends across application runs: hand-made runs first, then a real store with two runs."""

import os
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from conftest import copy_empty_store
from kobe_mlops import config
from kobe_mlops.dashboard import charts
from kobe_mlops.monitoring import trends, triggers
from kobe_mlops.monitoring.health import RunSummary
from kobe_mlops.monitoring.triggers import FEATURE_DRIFT, LOG_LOSS_DEGRADATION, MAKE_RATE_GAP
from kobe_mlops.tracking import reads

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def labelled_metrics(**overrides) -> dict[str, float]:
    """A healthy labelled application run: no alert."""
    metrics = {
        "rows_input": 1000, "rows_scored": 990, "rows_rejected": 10, "rows_labeled": 800, "rows_evaluated": 800,
        "psi_lat": 0.02, "psi_lat_upper": 0.05, "psi_lat_alert": 0.0,
        "psi_shot_distance": 0.05, "psi_shot_distance_upper": 0.06, "psi_shot_distance_alert": 0.0,
        "log_loss": 0.680, "log_loss_upper": 0.700, "log_loss_alert": 0.0,
        "log_loss_vs_null": -0.01, "log_loss_vs_null_lower": -0.02, "log_loss_vs_null_alert": 0.0,
        "observed_make_rate": 0.45, "observed_make_rate_lower": 0.42, "observed_make_rate_upper": 0.48,
        "observed_make_rate_alert": 0.0, "predicted_make_rate": 0.40,
    }  # fmt: skip
    return {**metrics, **overrides}


def unlabelled_metrics() -> dict[str, float]:
    """An application run where no scored row has a shot_made_flag: only PSI and counts."""
    metrics = labelled_metrics(rows_labeled=0, rows_evaluated=0)
    return {key: value for key, value in metrics.items() if not key.startswith(("log_loss", "observed_make_rate"))}


def application_run(run_id: str, minutes: int, metrics: dict[str, float], version: str = "1") -> RunSummary:
    start = START + timedelta(minutes=minutes)
    return RunSummary(
        run_id=run_id,
        name=config.RUN_NAMES["aplicacao"],
        status="FINISHED",
        start_time=start,
        end_time=start + timedelta(seconds=30),
        metrics=metrics,
        params={"model_version": version, "prod_data": f"/data/{run_id}.parquet", "engine": "pandas"},
    )


def frame_of(*metrics: dict[str, float]) -> pd.DataFrame:
    """The trend of one application run per ``metrics``, five minutes apart, run ids "0", "1", ..."""
    return trends.trend_frame([application_run(str(i), 5 * i, run_metrics) for i, run_metrics in enumerate(metrics)])


# --- The frame --------------------------------------------------------------------------------


def test_runs_are_ordered_by_start_time_whatever_the_input_order():
    order = [("late", 30), ("early", 0), ("middle", 10)]
    frame = trends.trend_frame([application_run(name, minutes, labelled_metrics()) for name, minutes in order])
    assert frame["run_id"].tolist() == ["early", "middle", "late"]
    assert frame["start_time"].is_monotonic_increasing and str(frame["start_time"].dt.tz) == "UTC"
    assert frame.loc[0, "prod_data"] == "/data/early.parquet" and frame.loc[0, "model_version"] == "1"


def test_figures_are_those_of_evaluate_triggers_for_every_run():
    runs = [
        application_run("healthy", 0, labelled_metrics()),
        application_run("drifted", 1, labelled_metrics(psi_lat=0.9, psi_lat_alert=1.0, log_loss_alert=1.0)),
        application_run("unlabelled", 2, unlabelled_metrics()),
    ]
    frame = trends.trend_frame(runs).set_index("run_id")
    assert list(trends.TRIGGER_NAMES) == [
        trigger.name for trigger in triggers.evaluate_triggers(runs[0].metrics).triggers
    ]
    for run in runs:
        for trigger in triggers.evaluate_triggers(run.metrics).triggers:
            expected = np.nan if trigger.value is None else trigger.value
            assert frame.loc[run.run_id, trigger.name] == pytest.approx(expected, nan_ok=True)
            assert frame.loc[run.run_id, f"{trigger.name}_threshold"] == pytest.approx(trigger.threshold, nan_ok=True)
            assert frame.loc[run.run_id, f"{trigger.name}_fired"] == trigger.fired
    assert not frame.loc["healthy", [f"{name}_fired" for name in trends.TRIGGER_NAMES]].any()
    assert frame.loc["drifted", f"{FEATURE_DRIFT}_fired"] and frame.loc["drifted", f"{LOG_LOSS_DEGRADATION}_fired"]
    assert np.isnan(frame.loc["unlabelled", LOG_LOSS_DEGRADATION])


def test_one_psi_column_per_feature_in_config_order_and_missing_counts_stay_missing():
    sparse = {"psi_shot_distance": 0.4, "psi_shot_distance_upper": 0.1}  # a run that logged almost nothing
    frame = frame_of(sparse)
    psi = [column for column in frame if column.startswith("psi_")]
    assert psi == [f"psi_{feature}" for feature in config.FEATURES]
    assert frame.loc[0, "psi_shot_distance"] == pytest.approx(0.4) and np.isnan(frame.loc[0, "psi_lat"])
    assert frame["rows_input"].dtype == "Int64" and frame["rows_input"].isna().all()


def test_runs_table_names_the_columns_an_operator_reads():
    table = trends.runs_table(frame_of(labelled_metrics()))
    assert table.loc[0, "started (UTC)"] == "2024-05-01 12:00:00"
    assert table.loc[0, "production file"] == "0.parquet" and table.loc[0, "run id"] == "0"
    assert table.loc[0, "PSI of the feature nearest its threshold"] == pytest.approx(0.05)
    assert table.loc[0, "observed make rate fired"] == False  # noqa: E712 (a numpy bool)
    assert table.loc[0, "PSI shot_distance"] == pytest.approx(0.05)


# --- Anticipation -----------------------------------------------------------------------------


def test_anticipation_gives_last_value_change_and_distance_to_the_threshold():
    frame = frame_of(labelled_metrics(psi_shot_distance=0.10), labelled_metrics(psi_shot_distance=0.20))
    drift = trends.anticipation(frame).set_index("trigger").loc[FEATURE_DRIFT]
    assert drift["runs_measured"] == 2
    assert drift["last_value"] == pytest.approx(0.20) and drift["previous_value"] == pytest.approx(0.10)
    assert drift["change"] == pytest.approx(0.10)
    assert drift["distance_to_threshold"] == pytest.approx(0.06 - 0.20)  # crossed, yet not alerted here
    assert drift["direction"] == "toward the threshold"
    assert drift["last_start_time"] == frame.loc[1, "start_time"]


def test_anticipation_of_a_crossed_threshold_is_a_negative_distance():
    frame = frame_of(
        labelled_metrics(log_loss=0.72, log_loss_alert=1.0), labelled_metrics(log_loss=0.71, log_loss_alert=1.0)
    )
    outlook = trends.anticipation(frame).set_index("trigger").loc[LOG_LOSS_DEGRADATION]
    assert outlook["last_value"] == pytest.approx(0.71) and outlook["change"] == pytest.approx(-0.01)
    assert outlook["distance_to_threshold"] == pytest.approx(-0.01)
    assert outlook["fired"] and outlook["direction"] == "away from the threshold"


def test_anticipation_skips_runs_where_a_figure_was_not_measured_and_says_when_none_was():
    frame = frame_of(labelled_metrics(log_loss=0.690), unlabelled_metrics())
    outlook = trends.anticipation(frame).set_index("trigger")
    log_loss = outlook.loc[LOG_LOSS_DEGRADATION]
    assert log_loss["runs_measured"] == 1 and log_loss["last_value"] == pytest.approx(0.690)
    assert np.isnan(log_loss["change"]) and log_loss["direction"] == "single measurement"
    assert log_loss["last_start_time"] == frame.loc[0, "start_time"]
    assert outlook.loc[FEATURE_DRIFT, "runs_measured"] == 2
    never = trends.anticipation(frame.iloc[1:]).set_index("trigger").loc[LOG_LOSS_DEGRADATION]
    assert never["runs_measured"] == 0 and never["direction"] == "not measured" and not never["fired"]
    empty = trends.trend_frame([])  # no run at all: every column, nothing measured
    assert empty.empty and {"run_id", "start_time", FEATURE_DRIFT, f"{MAKE_RATE_GAP}_fired", "psi_lat"} <= set(empty)
    assert trends.anticipation(empty)["runs_measured"].tolist() == [0, 0, 0]


# --- The chart --------------------------------------------------------------------------------


def dashed_lines(figure):
    return [line for line in figure.axes[0].get_lines() if line.get_linestyle() == "--"]


def test_a_shared_threshold_is_one_horizontal_line_and_a_varying_one_follows_the_runs():
    frame = frame_of(labelled_metrics(log_loss_upper=0.69), labelled_metrics(log_loss_upper=0.70))
    drift = charts.trigger_trend_figure(frame, FEATURE_DRIFT)
    (threshold,) = dashed_lines(drift)
    assert set(threshold.get_ydata()) == {0.06}
    assert drift.axes[0].get_xlabel() == "Application run start time (UTC)"
    log_loss = charts.trigger_trend_figure(frame, LOG_LOSS_DEGRADATION)
    (threshold,) = dashed_lines(log_loss)
    assert list(threshold.get_ydata()) == pytest.approx([0.69, 0.70])


def test_a_figure_never_measured_says_why_instead_of_an_empty_plot():
    figure = charts.trigger_trend_figure(frame_of(unlabelled_metrics()), MAKE_RATE_GAP)
    assert "no labelled production rows" in figure.axes[0].texts[0].get_text()


# --- Reading MLflow ---------------------------------------------------------------------------


def test_without_a_store_or_an_application_run_there_is_no_trend(tmp_path, monkeypatch, empty_mlflow_db):
    monkeypatch.setenv("KOBE_WORKSPACE", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert trends.application_trends() is None
    assert list(tmp_path.iterdir()) == []  # nothing read, nothing created
    assert trends.application_trends(MlflowClient(copy_empty_store(empty_mlflow_db, tmp_path / "mlflow.db"))) is None


@pytest.fixture
def two_application_runs(workspace_copy, tmp_path, monkeypatch):
    """The session pipeline's copy plus a second application run on a subset of the production file
    (the step's function, as notebook 04 calls it)."""
    import mlflow

    from kobe_mlops.monitoring.application_run import run_application_step

    production = pd.read_parquet(workspace_copy.paths.raw_file("prod"))
    subset = production[production["shot_distance"] <= 24]  # the shorter threes only
    subset_file = tmp_path / "prod_short_threes.parquet"
    subset.to_parquet(subset_file)
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace_copy.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(workspace_copy.tracking_uri)
    run_application_step(str(subset_file), paths=workspace_copy.paths)
    return workspace_copy, subset_file, len(subset)


def test_a_second_application_run_extends_the_trend(two_application_runs, pipeline_run):
    workspace, subset_file, subset_rows = two_application_runs
    client = MlflowClient(workspace.tracking_uri)
    frame = trends.application_trends(client)
    logged = reads.finished_application_runs(client)
    assert len(frame) == len(logged) == 2
    assert frame["run_id"].tolist() == [run.info.run_id for run in logged]
    assert frame.loc[0, "start_time"] < frame.loc[1, "start_time"]
    assert frame.loc[1, "prod_data"] == str(subset_file) and frame.loc[1, "rows_input"] == subset_rows
    # The first run is the session pipeline's, made before its workspace was copied.
    assert frame.loc[0, "prod_data"] == str(pipeline_run.paths.raw_file("prod"))
    for position, run in enumerate(logged):
        metrics, row = run.data.metrics, frame.loc[position]
        assert row["model_version"] == run.data.params["model_version"]
        assert row[LOG_LOSS_DEGRADATION] == pytest.approx(metrics["log_loss"])
        assert row[f"{LOG_LOSS_DEGRADATION}_threshold"] == pytest.approx(metrics["log_loss_upper"])
        assert row[MAKE_RATE_GAP] == pytest.approx(metrics["observed_make_rate"])
        assert row["rows_scored"] == metrics["rows_scored"] and row["rows_evaluated"] == metrics["rows_evaluated"]
    assert frame.loc[0, "psi_shot_distance"] != pytest.approx(frame.loc[1, "psi_shot_distance"])
    # The latest row is what the Retraining page reports.
    latest = triggers.latest_trigger_report(client)
    assert latest.application_run_id == frame.loc[1, "run_id"]
    for trigger in (t for t in latest.triggers if t.name in trends.TRIGGER_NAMES):
        assert frame.loc[1, trigger.name] == pytest.approx(trigger.value)
        assert frame.loc[1, f"{trigger.name}_fired"] == trigger.fired


def test_the_trends_page_draws_every_run(two_application_runs, monkeypatch):
    from streamlit.testing.v1 import AppTest  # imported late: importing streamlit sets MPLBACKEND

    os.environ.pop("MPLBACKEND", None)  # as test_dashboard does: later pipeline runs must not inherit it
    workspace, _, _ = two_application_runs
    monkeypatch.setenv("KOBE_WORKSPACE", str(workspace.workspace))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    page = config.PROJECT_ROOT / "Code" / "kobe_mlops" / "dashboard" / "views" / "07_Trends.py"
    app = AppTest.from_file(str(page), default_timeout=120).run()
    assert not app.exception, [item.value for item in app.exception]
    assert not [info.value for info in app.info]  # no empty state, no single-run notice
    assert "**2 application runs**" in app.markdown[0].value
    assert len(app.get("image")) == len(trends.TRIGGER_NAMES)
    assert len(app.dataframe[1].value) == 2
