"""The monitoring calculators (monitoring/calculators.py): thresholds from noise, intervals that hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import synthetic_shots
from kobe_mlops import config
from kobe_mlops.monitoring import calculators
from kobe_mlops.monitoring.calculators import Monitor, MonitoringReference

PROB, TARGET = config.PROBABILITY_COLUMN, config.TARGET


def scored_shots(rows: int, seed: int, distance_high: int = 21, make_shift: float = 0.0) -> pd.DataFrame:
    """Shots whose probability is calibrated (outcome drawn at it), unless ``make_shift`` moves the outcome."""
    rng = np.random.default_rng(seed)
    frame = synthetic_shots(rows, seed).drop(columns=TARGET)
    frame["shot_distance"] = rng.integers(0, distance_high, rows).astype(float)
    frame[PROB] = np.clip(0.6 - frame["shot_distance"] / 50 + rng.normal(0, 0.05, rows), 0.05, 0.95)
    frame[TARGET] = (rng.random(rows) < np.clip(frame[PROB] + make_shift, 0, 1)).astype(float)
    return frame


@pytest.fixture(scope="module")
def monitor() -> Monitor:
    return Monitor(MonitoringReference(scored_shots(1500, 0), "1500 calibrated shots"))


def test_every_figure_lands_in_one_result_table_and_folded_sums_equal_the_whole_chunk(monitor):
    chunk = scored_shots(400, 1)
    table = monitor.evaluate(chunk, chunk, 0.45, "season 1")
    halves = monitor.sums(chunk[:150], chunk[:150], 0.45) + monitor.sums(chunk[150:], chunk[150:], 0.45)
    pd.testing.assert_frame_equal(monitor.table(halves, "season 1"), table, rtol=1e-9)
    assert table.columns.tolist() == calculators.RESULT_COLUMNS
    assert set(table["chunk"]) == {"season 1"}
    realized = {"log_loss", "log_loss_null", "log_loss_vs_null", "observed_make_rate"}
    estimated = {"estimated_log_loss", "estimated_log_loss_all_rows"}
    assert set(table["metric"]) == {f"psi_{f}" for f in config.FEATURES} | realized | estimated
    metrics = calculators.table_metrics(table)
    assert {"psi_lat_upper", "psi_lat_alert", "estimated_log_loss_lower", "log_loss_vs_null_upper"} <= set(metrics)


def test_no_drift_chunks_alert_at_about_the_stated_rate_whatever_their_size():
    # Over several references: one reference's own sampling error moves its rate either way.
    alerts = {16: [], 400: []}
    for reference in range(6):
        drift = calculators.FeatureDrift().fit(MonitoringReference(scored_shots(1500, 1000 + reference), "reference"))
        for rows, fired in alerts.items():
            fired += [any(r["alert"] for r in drift.calculate(scored_shots(rows, 100 + s), "c")) for s in range(50)]
    for rows, fired in alerts.items():
        assert np.mean(fired) <= 2 * calculators.FALSE_ALARM_RATE, rows


def test_a_real_shift_alerts_on_the_shifted_feature_only_and_thresholds_follow_the_chunk_size(monitor):
    small, large = monitor.drift.threshold("shot_distance", 16), monitor.drift.threshold("shot_distance", 500)
    assert small > 5 * large
    shifted = scored_shots(300, 7, distance_high=8)
    fired = [r["metric"] for r in monitor.drift.calculate(shifted, "chunk") if r["alert"]]
    assert fired == ["psi_shot_distance"]


def test_a_category_a_small_chunk_misses_costs_little_psi():
    # With a 1e-6 floor on empty shares this costs about 1.0; smoothed counts keep it small.
    reference = np.array([50.0, 50.0, 10.0])
    assert calculators.psi_from_counts(reference, np.array([10.0, 10.0, 0.0])) < 0.2


def test_a_model_worse_than_the_null_alerts_a_calibrated_one_does_not_and_a_label_shift_does(monitor):
    chunk = scored_shots(500, 3)
    calibrated = monitor.evaluate(chunk, chunk, float(chunk[TARGET].mean()), "c")
    inverted = chunk.assign(**{PROB: 1 - chunk[PROB]})
    broken = monitor.evaluate(inverted, inverted, float(chunk[TARGET].mean()), "c")
    assert not calibrated.loc[~calibrated["metric"].str.startswith("psi_"), "alert"].any()
    assert {"log_loss", "log_loss_vs_null"} <= set(broken.loc[broken["alert"], "metric"])
    shifted = scored_shots(500, 4, make_shift=0.15)
    table = monitor.evaluate(shifted, shifted, 0.45, "c")
    row = table.set_index("metric").loc["observed_make_rate"]
    assert row["alert"] and row["value"] > row["upper"]


def test_the_estimate_interval_holds_the_realized_log_loss_on_calibrated_chunks(monitor):
    covered = []
    for seed in range(60):
        chunk = scored_shots(300, 200 + seed)
        table = monitor.evaluate(chunk, chunk, 0.45, "c").set_index("metric")
        estimate, realized = table.loc["estimated_log_loss"], table.loc["log_loss", "value"]
        covered.append(estimate["lower"] <= realized <= estimate["upper"])
    assert np.mean(covered) >= 0.85


def test_the_estimate_follows_a_make_rate_the_reference_already_shows():
    reference = MonitoringReference(scored_shots(1500, 0, make_shift=-0.2), "shifted population")
    chunk = scored_shots(500, 9, make_shift=-0.2)
    table = Monitor(reference).evaluate(chunk, chunk, 0.3, "c").set_index("metric")
    assert abs(table.loc["estimated_log_loss", "value"] - table.loc["log_loss", "value"]) < 0.03


def test_a_reference_too_small_sets_no_threshold_and_says_why():
    reference = MonitoringReference(scored_shots(40, 0), "40 rows")
    monitor = Monitor(reference)
    assert not monitor.usable and "40 labelled rows" in reference.problem
    chunk = scored_shots(200, 1)
    table = monitor.evaluate(chunk, chunk, 0.45, "c")
    assert not table["metric"].str.startswith(("psi_", "estimated")).any()
    assert table.set_index("metric").loc["log_loss", ["lower", "upper"]].isna().all()


def test_the_window_keeps_whole_chunks_and_replaces_the_first_reference():
    reference = MonitoringReference(scored_shots(500, 0), "held-out development rows")
    for index in range(6):
        reference = reference.rolled(scored_shots(300, index), f"season {index}")
    assert reference.description.startswith("the newest 1200 labelled rows")
    assert set(reference.own["chunk"]) == {"season 2", "season 3", "season 4", "season 5"}
